"""Every shipped `evaluate` module loads offline by path and equals the plain function; the CLIP modules load
their CLIP (and CLIP-Align its classifier) from a checkpoint folder themselves, once per name."""

import os

import evaluate
import pytest
import torch
from PIL import Image
from transformers import CLIPModel, CLIPProcessor

from gest_showcases.data.images import open_image
from gest_showcases.errors import InputError
from gest_showcases.features.configuration_explanation import ExplanationClassifierConfig
from gest_showcases.features.modeling_explanation import ExplanationClassifier
from gest_showcases.features.tiny import save_tiny_clip
from gest_showcases.metrics import EVALUATE_MODULES, grounding, module_path
from gest_showcases.metrics.grounding import clip_align_from_embeddings, clip_score_from_embeddings
from gest_showcases.metrics.selection import diversity_at_k
from gest_showcases.metrics.text import distinct
from tiny_assets import CLIP_DIM, write_jpegs

PAPER_URL = "https://arxiv.org/abs/2207.00422"
MEASUREMENTS = {"distinct", "div_at_k"}  # no references: evaluate's Measurement kind


def _load(name, *config, **kwargs):
    assert os.environ["HF_EVALUATE_OFFLINE"] == "1"
    return evaluate.load(module_path(name), *config, **kwargs)


def save_tiny_classifier(path, dim: int = CLIP_DIM, seed: int = 0) -> str:
    """An explanation classifier over `dim`-wide CLIP embeddings whose probabilities spread over (0, 1)."""
    torch.manual_seed(seed)
    model = ExplanationClassifier(ExplanationClassifierConfig(text_dim=dim, image_dim=dim, interaction=True))
    torch.nn.init.normal_(model.classifier.weight, std=3.0)
    model.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Two tiny CLIPs (different weights), a classifier for their width, and five JPEGs."""
    root = tmp_path_factory.mktemp("module-assets")
    return {
        "clip": str(save_tiny_clip(root / "clip", projection_dim=CLIP_DIM)),
        "clip2": str(save_tiny_clip(root / "clip2", projection_dim=CLIP_DIM, seed=1)),
        "classifier": save_tiny_classifier(root / "classifier"),
        "photos": {k: str(v) for k, v in write_jpegs(root / "photos", [f"p{i}" for i in range(5)]).items()},
    }


TEXTS = ["The ramen was rich. Friendly staff!", "Crispy fries.", ""]


def _inputs(photos):
    """Per example: a path and an in-memory PIL image; a path; a PIL image loaded from a file."""
    in_memory = Image.open(photos["p1"]).convert("RGB")  # no filename: reaches the module as bytes
    return [[photos["p0"], in_memory], [photos["p2"]], [Image.open(photos["p3"])]]


def _pil(photos):
    return [
        [open_image(photos["p0"]), open_image(photos["p1"])],
        [open_image(photos["p2"])],
        [open_image(photos["p3"])],
    ]


def _probabilities(folder):
    model = ExplanationClassifier.from_pretrained(folder).eval()
    return lambda text_embeds, image_embeds: (
        model(text_embeds=text_embeds, image_embeds=image_embeds).probabilities
    )


def _real_clip(path):
    """The oracle's CLIP, loaded directly (the tests count the module's loads through `grounding.load_clip_model`)."""
    return CLIPModel.from_pretrained(path).eval(), CLIPProcessor.from_pretrained(path)


def _counting_loads(monkeypatch):
    """Count the CLIP checkpoints `grounding.load_clip_checkpoint` (where every module route ends) reads."""
    loads = []

    real_load_clip_model = grounding.load_clip_model

    def counting_load_clip_model(path, *args, **kwargs):
        loads.append(path)
        return real_load_clip_model(path, *args, **kwargs)

    monkeypatch.setattr(grounding, "load_clip_model", counting_load_clip_model)
    return loads


def test_module_path_points_at_the_script():
    for name in EVALUATE_MODULES:
        assert os.path.isfile(os.path.join(module_path(name), f"{name}.py"))
        assert os.path.isfile(os.path.join(module_path(name), "README.md"))
    with pytest.raises(ValueError, match="unknown evaluate module 'bleu'"):
        module_path("bleu")


def test_every_module_has_its_kind_homepage_citation_and_references():
    for name in EVALUATE_MODULES:
        module = _load(name, "embeddings") if name in ("clip_align", "clip_score") else _load(name)
        assert module.module_type == ("measurement" if name in MEASUREMENTS else "metric"), name
        assert module.homepage == PAPER_URL, name
        assert PAPER_URL in module.reference_urls, name
        assert "@inproceedings{yan2023personalized," in module.citation, name
        assert module.license == "apache-2.0", name
    # The original metric papers, where the metric is not the paper's own.
    assert "@inproceedings{li2016diversity," in _load("distinct").citation
    assert "https://aclanthology.org/N16-1014" in _load("distinct").reference_urls
    assert "@inproceedings{hessel2021clipscore," in _load("clip_score", "embeddings").citation
    assert "https://arxiv.org/abs/2104.08718" in _load("clip_score", "embeddings").reference_urls


def test_distinct_module():
    texts = ["the pizza was great", "the pizza was cold", "", "ok"]
    assert _load("distinct").compute(predictions=texts) == distinct(texts)
    assert _load("distinct").compute(predictions=texts, orders=[3]) == distinct(texts, orders=(3,))
    # evaluate split a lone string into characters and scored them (session 25's audit).
    with pytest.raises(ValueError, match="got a single string"):
        _load("distinct").compute(predictions="the pizza was great")
    with pytest.raises(ValueError, match="got a single string"):
        _load("distinct").add_batch(predictions="the pizza was great")


def test_clip_align_embeddings_module():
    generator = torch.Generator().manual_seed(0)
    images = [torch.randn(n, 8, generator=generator) for n in (2, 1, 0)]
    sentences = [torch.randn(m, 8, generator=generator) for m in (3, 0, 1)]
    linear = torch.nn.Linear(16, 1)

    def scorer(text_embeds, image_embeds):
        return torch.sigmoid(linear(torch.cat([text_embeds, image_embeds], -1))).squeeze(-1)

    result = _load("clip_align", "embeddings").compute(
        image_embeds=[e.tolist() for e in images],
        sentence_embeds=[e.tolist() for e in sentences],
        scorer=scorer,
    )
    expected = clip_align_from_embeddings(images, sentences, scorer)
    assert result["clip_align_examples"] == expected["clip_align_examples"] == 2
    assert result["clip_align"] == pytest.approx(expected["clip_align"], abs=1e-6)


def test_clip_align_embeddings_module_reads_the_classifier_folder(assets):
    generator = torch.Generator().manual_seed(3)
    images = [torch.randn(n, CLIP_DIM, generator=generator) for n in (2, 3)]
    sentences = [torch.randn(m, CLIP_DIM, generator=generator) for m in (1, 2)]
    module = _load("clip_align", "embeddings", classifier=assets["classifier"])
    result = module.compute(
        image_embeds=[e.tolist() for e in images], sentence_embeds=[e.tolist() for e in sentences]
    )
    expected = clip_align_from_embeddings(images, sentences, _probabilities(assets["classifier"]))
    assert result == {key: pytest.approx(value, abs=1e-6) for key, value in expected.items()}
    assert 0.05 < result["clip_align"] < 0.95  # the classifier's scores, not a constant


def test_clip_score_embeddings_module():
    generator = torch.Generator().manual_seed(1)
    images = [torch.randn(n, 8, generator=generator) for n in (2, 3)]
    texts = torch.randn(2, 8, generator=generator)
    result = _load("clip_score", "embeddings").compute(
        image_embeds=[e.tolist() for e in images], text_embeds=texts.tolist()
    )
    expected = clip_score_from_embeddings(images, texts)
    assert result == {key: pytest.approx(value, abs=1e-6) for key, value in expected.items()}


def test_clip_score_module_loads_its_clip_by_name_once(assets, monkeypatch):
    loads = _counting_loads(monkeypatch)
    module = _load("clip_score", clip_model=assets["clip"], device="cpu")
    result = module.compute(predictions=TEXTS, images=_inputs(assets["photos"]))
    model, processor = _real_clip(assets["clip"])
    expected = grounding.clip_score(_pil(assets["photos"]), TEXTS, model, processor)
    assert result == {key: pytest.approx(value, abs=1e-6) for key, value in expected.items()}
    assert result["clip_score_examples"] == 3
    assert module.compute(predictions=TEXTS, images=_inputs(assets["photos"])) == result
    # A compute-time checkpoint overrides the loaded one; each name is loaded once per module instance.
    other = module.compute(predictions=TEXTS, images=_inputs(assets["photos"]), clip_model=assets["clip2"])
    model2, processor2 = _real_clip(assets["clip2"])
    expected2 = grounding.clip_score(_pil(assets["photos"]), TEXTS, model2, processor2)
    assert other["clip_score_cosine"] == pytest.approx(expected2["clip_score_cosine"], abs=1e-6)
    assert other["clip_score_cosine"] != pytest.approx(result["clip_score_cosine"], abs=1e-4)
    module.compute(predictions=TEXTS[:1], images=_inputs(assets["photos"])[:1], clip_model=assets["clip2"])
    assert loads == [assets["clip"], assets["clip2"]]


def test_clip_align_module_loads_its_clip_and_classifier(assets, monkeypatch):
    loads = _counting_loads(monkeypatch)
    module = _load("clip_align", clip_model=assets["clip"], classifier=assets["classifier"], device="cpu")
    result = module.compute(predictions=TEXTS, images=_inputs(assets["photos"]))
    model, processor = _real_clip(assets["clip"])
    expected = grounding.clip_align(
        _pil(assets["photos"]), TEXTS, model, processor, _probabilities(assets["classifier"])
    )
    assert result == {key: pytest.approx(value, abs=1e-6) for key, value in expected.items()}
    assert result["clip_align_examples"] == 3 and 0.0 < result["clip_align"] < 1.0
    # A callable scorer stays an option, and a compute-time classifier folder works the same.
    scorer = _probabilities(assets["classifier"])
    assert module.compute(
        predictions=TEXTS, images=_inputs(assets["photos"]), scorer=scorer
    ) == pytest.approx(result)
    bare = _load("clip_align", clip_model=assets["clip"], device="cpu")
    assert bare.compute(
        predictions=TEXTS, images=_inputs(assets["photos"]), classifier=assets["classifier"]
    ) == pytest.approx(result)
    assert loads == [assets["clip"], assets["clip"]]  # once per module instance


def test_clip_align_module_refuses_a_missing_or_wrong_classifier(assets):
    module = _load("clip_align", clip_model=assets["clip"], device="cpu")
    inputs = {"predictions": TEXTS[:1], "images": _inputs(assets["photos"])[:1]}
    with pytest.raises(InputError, match="needs the explanation classifier"):
        module.compute(**inputs)
    with pytest.raises(InputError, match="not both"):
        module.compute(**inputs, classifier=assets["classifier"], scorer=lambda **kw: kw["text_embeds"][:, 0])
    with pytest.raises(InputError, match="model, not .explanation_classifier."):
        module.compute(**inputs, classifier=assets["clip"])  # a folder, but a CLIP's
    with pytest.raises(InputError, match="no model config there"):
        module.compute(**inputs, classifier="me/not-a-classifier")  # offline: a Hub repo id that is not there


def test_clip_score_module_refuses_what_is_not_a_clip(assets, tmp_path):
    module = _load("clip_score", clip_model=str(tmp_path), device="cpu")
    with pytest.raises(InputError, match="not a loadable CLIP checkpoint"):
        module.compute(predictions=TEXTS[:1], images=_inputs(assets["photos"])[:1])


def test_unknown_configuration_is_refused():
    with pytest.raises(ValueError, match="unknown configuration 'pixels'"):
        _load("clip_score", "pixels")


def test_div_at_k_module():
    generator = torch.Generator().manual_seed(2)
    features = torch.randn(3, 5, 8, generator=generator)
    selected = [[0, 3, 1], [4], [2, 0]]
    padded = torch.tensor([[0, 3, 1], [4, -1, -1], [2, 0, -1]])
    result = _load("div_at_k").compute(selected=selected, features=features.tolist(), k=3)
    assert result == {"div@3": pytest.approx(float(diversity_at_k(padded, features, 3).mean()), abs=1e-6)}


def test_div_at_k_module_defaults_to_the_papers_k_and_refuses_bad_input():
    features = [[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]]
    module = _load("div_at_k")
    assert module.compute(selected=[[0, 1]], features=features) == {"div@3": pytest.approx(1.0)}
    for bad_k in (0, 2.5, True):
        with pytest.raises(ValueError, match="k must be a whole number >= 1"):
            module.compute(selected=[[0, 1]], features=features, k=bad_k)
    for outside in (3, -2):
        with pytest.raises(ValueError, match=f"example 0 selects position {outside}, outside its pool of 3"):
            module.compute(selected=[[0, outside]], features=features, k=2)
    with pytest.raises(ValueError, match=r"example 1 selects position 1, outside its pool of 1"):
        module.compute(selected=[[0], [0, 1]], features=features + [[[1.0, 0.0]]], k=2)
    with pytest.raises(ValueError, match=r"the features differ in width: \[2, 3\]"):
        module.compute(selected=[[0], [0]], features=features + [[[1.0, 0.0, 0.0]]], k=2)


def test_div_at_k_module_takes_pools_of_different_sizes_across_batches():
    """Session 28's audit: businesses have different numbers of photos, and across `add_batch` calls a user cannot
    know the largest pool to pad to. Oracle: the library function on the pools padded by hand."""
    generator = torch.Generator().manual_seed(3)
    small, large = torch.randn(3, 4, generator=generator), torch.randn(6, 4, generator=generator)
    module = _load("div_at_k")
    module.add_batch(selected=[[0, 2]], features=[small.tolist()])
    module.add_batch(selected=[[5, 1, 3]], features=[large.tolist()])
    padded = torch.zeros(2, 6, 4)
    padded[0, :3], padded[1] = small, large
    expected = diversity_at_k(torch.tensor([[0, 2, -1], [5, 1, 3]]), padded, 3).mean()
    assert module.compute(k=3) == {"div@3": pytest.approx(float(expected), abs=1e-6)}
