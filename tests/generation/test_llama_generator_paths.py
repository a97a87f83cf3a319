"""A Llama-family generator through every path after training (issue 17): `gest-showcases train-pc2l` around a tiny
Llama GGUF with its own tokenizer (a full fine-tune and a `--lora` run) -> `ShowcasePipeline.from_pretrained(selector,
generator=<run folder>, clip)` -> a showcase -> `save_pretrained` -> `from_pretrained(folder)` -> `gest-showcases push
--generator --showcase --dry_run` -> the staged repos loaded offline in fresh processes.

Oracles: the run's own model (`load_lora_pc2l` for a LoRA run, the adapter unmerged) and tokenizer, fed the features
the pipeline computes; the showcase of the pipeline that was saved. The features train-pc2l reads are written with
the tiny CLIP's fingerprint, so the pipeline's encoders are the ones the generator was trained on.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from pc2l_fixtures import write_built_dataset
from test_train_pc2l_any_decoder import GGUF_FILE, TRAINING, write_tiny_llama_gguf
from transformers import AutoTokenizer

from gest_showcases import cli
from gest_showcases.features.cache import FeatureCache
from gest_showcases.features.clip import load_clip
from gest_showcases.generation import PC2LForConditionalGeneration
from gest_showcases.generation.lora import load_lora_pc2l
from gest_showcases.pipeline import ShowcasePipeline
from tiny_assets import (
    CLIP_DIM,
    few_threads,  # noqa: F401  (an autouse fixture: importing it applies it here)
    save_tiny_clip,
    save_tiny_selector,
    write_jpegs,
)

HISTORY = ["Great ramen! The broth was rich.", "Tiny place.\nGood dumplings"]
# A random tiny Llama ends at once (its EOS scores highest): a few tokens make the explanations worth comparing.
GENERATE = {"min_new_tokens": 3}
SETTINGS = {"device": "cpu", "k": 2, "num_beams": 2, "max_new_tokens": 5}


def write_features(folder: Path, clip: str) -> None:
    """The image and history-review features of `write_built_dataset`'s ids, as if `gest-showcases features` had
    computed them with the CLIP at `clip` (its fingerprint): random unit vectors of its width."""
    encoder, _ = load_clip(clip)
    generator = torch.Generator().manual_seed(0)
    ids = {"image": [f"p{i}{side}" for i in range(8) for side in "ab"],
           "review": [f"u{i}_h{j}" for i in range(8) for j in range(3)]}  # fmt: skip
    for kind, keys in ids.items():
        rows = torch.nn.functional.normalize(torch.randn(len(keys), CLIP_DIM, generator=generator), dim=-1)
        FeatureCache(folder, kind, encoder.checkpoint, encoder.fingerprint, normalized=True).write(keys, rows)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """The tiny CLIP and selector, and two train-pc2l runs around the tiny Llama GGUF: `run-full`, `run-lora`."""
    root = tmp_path_factory.mktemp("llama-paths")
    (root / "lm").mkdir()
    write_tiny_llama_gguf(root / "lm" / GGUF_FILE)
    write_built_dataset(root / "dataset")
    save_tiny_clip(root / "clip", projection_dim=CLIP_DIM)
    save_tiny_selector(root / "selector")
    write_features(root / "features", str(root / "clip"))
    for kind, extra in (("full", []), ("lora", ["--lora"])):
        argv = ["train-pc2l", "--dataset", str(root / "dataset"), "--features", str(root / "features"), "--decoder",
                str(root / "lm"), "--decoder_gguf_file", GGUF_FILE, "--tokenizer", str(root / "lm"),
                "--cross_attention_every_n_layers", "2", "--image_contrastive", "cl", "--output_dir",
                str(root / f"run-{kind}"), *extra, *TRAINING]  # fmt: skip
        assert cli.main(argv) == 0
    return root


@pytest.fixture(scope="module", params=["full", "lora"])
def run(assets, request) -> Path:
    return assets / f"run-{request.param}"


@pytest.fixture(scope="module")
def original(assets, run) -> ShowcasePipeline:
    """The pipeline of the run folder as train-pc2l wrote it, no tokenizer given."""
    return ShowcasePipeline.from_pretrained(
        selector=assets / "selector", generator=run, clip=assets / "clip", **SETTINGS
    )


@pytest.fixture(scope="module")
def saved(original, tmp_path_factory) -> Path:
    return original.save_pretrained(tmp_path_factory.mktemp("saved") / "llama-showcase")


@pytest.fixture(scope="module")
def staged(run, saved, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("staged") / "out"
    argv = [
        "push",
        "--namespace",
        "me",
        "--generator",
        str(run),
        "--showcase",
        str(saved),
        "--output_dir",
        str(out),
        "--dry_run",
    ]
    assert cli.main(argv) == 0
    return out


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict:
    return write_jpegs(tmp_path_factory.mktemp("images"), [f"pic{i}" for i in range(6)], size=(36, 48))


def showcase_request(photos) -> dict:
    return {"candidates": [str(photos[f"pic{i}"]) for i in range(6)], "history_texts": HISTORY}


def run_model(run: Path):
    """The model train-pc2l left in `run`, as its own loaders read it (a LoRA run: the adapter on its base)."""
    if (run / "adapter_config.json").is_file():
        return load_lora_pc2l(run)
    return PC2LForConditionalGeneration.from_pretrained(run).eval()


def oracle_inputs(pipeline: ShowcasePipeline, photos: dict, picked: list[str]) -> dict:
    """What train-pc2l fed the generator (`--image_kind image`): CLIP image embeddings of the picked photos, in pick
    order, and the CLIP embeddings of the history reviews."""
    images = torch.stack(pipeline._clip_features([photos[name] for name in picked]))  # noqa: SLF001
    reviews = pipeline.review_embeddings(HISTORY)
    return {"image_features": images[None], "image_mask": torch.ones(1, len(picked), dtype=torch.bool),
            "review_features": reviews[None], "review_mask": torch.ones(1, len(reviews), dtype=torch.bool)}  # fmt: skip


def assert_same_showcase(got: dict, expected: dict) -> None:
    assert [photo["id"] for photo in got["photos"]] == [photo["id"] for photo in expected["photos"]]
    assert got["explanation"] == expected["explanation"]
    torch.testing.assert_close(
        torch.tensor([photo["score"] for photo in got["photos"]]),
        torch.tensor([photo["score"] for photo in expected["photos"]]),
    )


@pytest.mark.slow
def test_a_llama_run_folder_makes_a_pipeline_that_saves_and_reloads_the_same_showcase(
    run, original, saved, photos
):
    # The run's own tokenizer (the GGUF's: BOS <s> is not EOS </s>), though a LoRA run's weights load from base/.
    tokenizer = AutoTokenizer.from_pretrained(run)
    assert (original.tokenizer.bos_token, original.tokenizer.eos_token) == ("<s>", "</s>")
    assert original.tokenizer.get_vocab() == tokenizer.get_vocab()
    result = original(showcase_request(photos), **GENERATE)
    picked = [photo.id for photo in result.photos]
    assert len(picked) == 2
    with torch.no_grad():
        ids = run_model(run).generate(
            **oracle_inputs(original, photos, picked), num_beams=2, max_new_tokens=5, **GENERATE
        )
    assert ids.shape[1] > 3 and ids[0, 0] == tokenizer.bos_token_id
    assert result.explanation == tokenizer.decode(ids[0], skip_special_tokens=True).strip()

    # The saved root is a plain PC2L checkpoint (a LoRA run's adapter merged), with the run's tokenizer.
    names = {path.name for path in saved.iterdir()}
    assert {"model.safetensors", "gated_cross_attention.py", "tokenizer.json"} <= names
    assert "adapter_config.json" not in names
    loaded = ShowcasePipeline.from_pretrained(saved, device="cpu")
    assert loaded.tokenizer.get_vocab() == tokenizer.get_vocab()
    assert loaded.generator.config.decoder.model_type == "llama"
    assert_same_showcase(loaded(showcase_request(photos), **GENERATE).to_dict(), result.to_dict())


@pytest.mark.slow
def test_push_dry_run_stages_the_llama_generator_and_showcase_with_cards_that_say_llama(run, staged):
    lora = (run / "adapter_config.json").is_file()
    plan = {
        entry["repo_id"]: entry["folder"] for entry in json.loads((staged / "push_plan.json").read_text())
    }
    generator = "generator-base" if lora else "generator"  # the repo of the PC2L checkpoint
    assert plan == {"me/gest-showcases-generator": "generator", "me/gest-showcases-showcase": "showcase"} | (
        {"me/gest-showcases-generator-base": "generator-base"} if lora else {}
    )
    cards = {name: ModelCard.load(staged / name / "README.md") for name in (generator, "showcase")}
    for name, card in cards.items():
        # A decoder from a local folder is no Hub base model, and the decoder is a Llama, not GPT-2.
        assert card.data.base_model is None and "GPT-2" not in card.text and "gpt2" not in card.content
        assert "a `llama`" in " ".join(card.text.split()), name
    assert cards[generator].data.pipeline_tag == "text-generation" and "llama" in cards[generator].data.tags
    assert cards["showcase"].data.pipeline_tag == "image-text-to-text"
    if lora:
        adapter = ModelCard.load(staged / "generator" / "README.md").data
        assert (adapter.library_name, adapter.base_model) == ("peft", "me/gest-showcases-generator-base")
    staged_config = json.loads((staged / generator / "config.json").read_text())
    assert (
        staged_config["decoder"]["model_type"] == "llama" and staged_config["decoder"]["_name_or_path"] == ""
    )


def _python(script: str, env: dict, cwd: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, cwd=cwd, env=env,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_staged_llama_repos_load_offline_in_fresh_processes(run, original, staged, photos, tmp_path):
    """The showcase repo with the package (`ShowcasePipeline`, `pipeline("personalized-showcase")`); the generator
    repo(s) without it, through remote code (a LoRA run: peft's adapter on the staged base)."""
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"}  # fmt: skip
    request = showcase_request(photos)
    out = _python(
        f"""
        import json
        import gest_showcases
        from gest_showcases import ShowcasePipeline
        from transformers import pipeline
        loaded = ShowcasePipeline.from_pretrained({str(staged / "showcase")!r}, device="cpu")
        pipe = pipeline("personalized-showcase", model={str(staged / "showcase")!r}, device="cpu")
        print(json.dumps({{"loaded": loaded({request!r}, **{GENERATE!r}).to_dict(),
                          "pipe": pipe({request!r}, **{GENERATE!r}).to_dict()}}))
        """,
        env,
        tmp_path,
    )
    expected = original(request, **GENERATE).to_dict()
    assert_same_showcase(out["loaded"], expected)
    assert_same_showcase(out["pipe"], expected)

    features = torch.randn(1, 3, CLIP_DIM, generator=torch.Generator().manual_seed(1))
    inputs = {"image_features": features, "image_mask": torch.ones(1, 3, dtype=torch.bool),
              "review_features": features[:, :2], "review_mask": torch.ones(1, 2, dtype=torch.bool)}  # fmt: skip
    with torch.no_grad():
        expected_ids = run_model(run).generate(**inputs, num_beams=2, max_new_tokens=5, **GENERATE).tolist()
    values = {name: value.tolist() for name, value in inputs.items()}
    lora = (run / "adapter_config.json").is_file()
    load = (
        f"model = PeftModel.from_pretrained(AutoModel.from_pretrained({str(staged / 'generator-base')!r}, "
        f"trust_remote_code=True), {str(staged / 'generator')!r}).eval()"
        if lora
        else f"model = AutoModel.from_pretrained({str(staged / 'generator')!r}, trust_remote_code=True)"
    )
    out = _python(
        f"""
        import json, sys
        sys.modules["gest_showcases"] = None  # any import of the package now fails
        import torch
        from peft import PeftModel
        from transformers import AutoModel, AutoTokenizer
        {load}
        tokenizer = AutoTokenizer.from_pretrained({str(staged / "generator")!r}, trust_remote_code=True)
        inputs = {{name: torch.tensor(value) for name, value in {values!r}.items()}}
        with torch.no_grad():
            ids = model.generate(**inputs, num_beams=2, max_new_tokens=5, **{GENERATE!r})
        print(json.dumps({{"module": type(model.get_base_model() if {lora} else model).__module__,
                          "ids": ids.tolist(), "bos": tokenizer.bos_token}}))
        """,
        env,
        tmp_path,
    )
    assert out["module"].startswith("transformers_modules.") and out["bos"] == "<s>"
    assert out["ids"] == expected_ids
