"""CLIP-Align (Yan et al. 2023, eq. 12) as an `evaluate` module: visual grounding of a generated text.

For each image of an example, the highest confidence, over the generated text's sentences, of the
explanation classifier that the sentence describes the image; averaged over the example's images, then
over examples with at least one image. An example with images but no sentence scores 0.

The module loads what it needs itself, each checkpoint once per module instance:
    clip_model: any transformers CLIP checkpoint, a Hub name or a local folder (default
        `openai/clip-vit-base-patch32`, the paper's); it embeds the images and the sentences.
    classifier: the explanation classifier (paper Section 3.3) that scores a sentence against an
        image: the folder `gest-showcases distill` writes, or a Hub repo holding it
        (`ExplanationClassifier.from_pretrained(folder).push_to_hub("ORG/name")`). It is loaded with the
        package's own class from safetensors only; no code of the folder runs. It must read embeddings
        of the same CLIP as `clip_model`.
    scorer: instead of `classifier`, any Python callable
        `scorer(text_embeds=Tensor[M, Dt], image_embeds=Tensor[M, Di]) -> Tensor[M]` probabilities
        (`compute` only).
`clip_model` and `classifier` go to `evaluate.load` or to `compute` (which overrides the former).

Configurations:
    "default": generated texts and their images; texts are split into sentences with
        `gest_showcases.metrics.text.split_sentences` and every sentence is embedded on its own.
    "embeddings": precomputed CLIP embeddings (no CLIP is loaded; `classifier` or `scorer` still needed).

Inputs ("default"):
    predictions (`list[str]`): generated texts, one per example.
    images (`list[list[image]]`): per example, its images: file paths, PIL images or `datasets.Image()`
        values (`{"bytes": ..., "path": ...}`); opened with `gest_showcases.data.images.open_image`.

Inputs ("embeddings"):
    image_embeds (`list[list[list[float]]]`): per example, the CLIP embeddings `[n_i, Di]` of its images.
    sentence_embeds (`list[list[list[float]]]`): per example, the CLIP embeddings `[m_i, Dt]` of the
        generated text's sentences.

Other `compute` arguments: clip_model (`str`), classifier (`str`), scorer (`Callable`), as above.
`evaluate.load` arguments: clip_model (`str`, defaults to `"openai/clip-vit-base-patch32"`), classifier
(`str`), device (`str`, defaults to `"cuda"` when available, else `"cpu"`).

Outputs:
    clip_align (`float`, in [0, 1], higher is better); clip_align_examples (`int`): examples scored.

Examples:
    >>> import evaluate  # once published; classifier: the folder `gest-showcases distill` wrote
    >>> clip_align = evaluate.load("ORG/clip_align", clip_model="openai/clip-vit-base-patch32",
    ...                            classifier="runs/classifier")  # doctest: +SKIP
    >>> clip_align.compute(predictions=["The ramen was rich. Friendly staff."],
    ...                    images=[["photos/ramen.jpg", "photos/room.jpg"]])  # doctest: +SKIP

    >>> import torch
    >>> from gest_showcases.metrics import module_path
    >>> clip_align = evaluate.load(module_path("clip_align"), "embeddings")  # offline, no CLIP needed
    >>> scorer = lambda text_embeds, image_embeds: torch.sigmoid((text_embeds * image_embeds).sum(-1))
    >>> clip_align.compute(image_embeds=[[[1.0, 0.0]]], sentence_embeds=[[[0.0, 1.0], [2.0, 0.0]]], scorer=scorer)
    {'clip_align': 0.8807970285415649, 'clip_align_examples': 1}
"""

import datasets
import evaluate
import torch

from gest_showcases.data.images import open_image_value
from gest_showcases.errors import InputError
from gest_showcases.features.clip import DEFAULT_CLIP
from gest_showcases.metrics.grounding import (
    clip_align,
    clip_align_from_embeddings,
    load_classifier_scorer,
    load_clip_checkpoint,
)

_CITATION = """\
@inproceedings{yan2023personalized,
  title={Personalized Showcases: Generating Multi-Modal Explanations for Recommendations},
  author={Yan, An and He, Zhankui and Li, Jiacheng and Zhang, Tianyang and McAuley, Julian},
  booktitle={Proceedings of the 46th International ACM SIGIR Conference on Research and Development in Information Retrieval},
  year={2023}
}
"""

_MATRIX = datasets.List(datasets.List(datasets.Value("float32")))
_FEATURES = {
    "default": datasets.Features(
        # decode=False: the module opens every image itself, with the package's guarded opener.
        {"predictions": datasets.Value("string"), "images": datasets.List(datasets.Image(decode=False))}
    ),
    "embeddings": datasets.Features({"image_embeds": _MATRIX, "sentence_embeds": _MATRIX}),
}


@evaluate.utils.file_utils.add_start_docstrings(__doc__)
class ClipAlign(evaluate.Metric):
    def __init__(self, *args, clip_model=DEFAULT_CLIP, classifier=None, device=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.clip_model = clip_model
        self.classifier = classifier
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._loaded = {}  # ("clip" | "classifier", name or folder) -> what it loaded, loaded once

    def _info(self):
        if self.config_name not in _FEATURES:
            raise ValueError(f"unknown configuration {self.config_name!r}; choose one of {sorted(_FEATURES)}")
        return evaluate.MetricInfo(
            description=__doc__,
            citation=_CITATION,
            inputs_description=__doc__,
            homepage="https://arxiv.org/abs/2207.00422",
            reference_urls=["https://arxiv.org/abs/2207.00422"],
            license="apache-2.0",
            features=_FEATURES[self.config_name],
        )

    def _load(self, kind, name, loader):
        if (kind, name) not in self._loaded:
            self._loaded[kind, name] = loader(name, self.device, f"clip_align {kind}=")
        return self._loaded[kind, name]

    def _scorer(self, classifier, scorer):
        if scorer is not None:
            if classifier is not None:
                raise InputError(
                    "clip_align: give classifier= (a checkpoint) or scorer= (a callable), not both"
                )
            return scorer
        name = classifier or self.classifier
        if name is None:
            raise InputError(
                "clip_align needs the explanation classifier: classifier=<folder of `gest-showcases distill` "
                "or Hub repo> (to evaluate.load or compute), or scorer=<callable>"
            )
        return self._load("classifier", name, load_classifier_scorer)

    def _compute(
        self,
        predictions=None,
        images=None,
        image_embeds=None,
        sentence_embeds=None,
        clip_model=None,
        classifier=None,
        scorer=None,
    ):
        scorer = self._scorer(classifier, scorer)
        if self.config_name == "embeddings":
            return clip_align_from_embeddings(
                [torch.tensor(e, dtype=torch.float32) for e in image_embeds],
                [torch.tensor(e, dtype=torch.float32) for e in sentence_embeds],
                scorer,
            )
        model, processor = self._load("clip_model", clip_model or self.clip_model, load_clip_checkpoint)
        return clip_align(
            [[open_image_value(v) for v in values] for values in images], predictions, model, processor, scorer
        )
