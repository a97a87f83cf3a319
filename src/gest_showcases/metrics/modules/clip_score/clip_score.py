"""CLIP-Score as an `evaluate` module: cosine of CLIP image and text embeddings (Hessel et al. 2021).

Per image of an example, `c = cos(E_image, E_text)` with the example's whole generated text embedded
as "A photo depicts " + text (truncated to 77 CLIP tokens keeping the end-of-text token); averaged over
the example's images, then over examples with at least one image.

The module loads the CLIP itself: `clip_model` is any transformers CLIP checkpoint, a Hub name or a
local folder (default `openai/clip-vit-base-patch32`, the paper's), given to `evaluate.load` or to
`compute`; each checkpoint is loaded once per module instance.

Configurations:
    "default": generated texts and their images, embedded with `clip_model`.
    "embeddings": precomputed CLIP embeddings (no CLIP is loaded).

Inputs ("default"):
    predictions (`list[str]`): generated texts, one per example.
    images (`list[list[image]]`): per example, its images: file paths, PIL images or `datasets.Image()`
        values (`{"bytes": ..., "path": ...}`); opened with `gest_showcases.data.images.open_image`.
    clip_model (`str`, *optional*): overrides the checkpoint given to `evaluate.load`.

Inputs ("embeddings"):
    image_embeds (`list[list[list[float]]]`): per example, the CLIP embeddings `[n_i, D]` of its images.
    text_embeds (`list[list[float]]`): per example, the CLIP embedding `[D]` of its prefixed text.

`evaluate.load` arguments: `clip_model` (`str`, defaults to `"openai/clip-vit-base-patch32"`), `device`
(`str`, defaults to `"cuda"` when available, else `"cpu"`).

Outputs:
    clip_score (`float`, in [0, 2.5], higher is better): Hessel et al.'s CLIP-S, `2.5 * max(c, 0)`.
    clip_score_cosine (`float`, in [-1, 1], higher is better): raw `c`; x100 the paper's Table 2 column.
    clip_score_examples (`int`): examples scored.

Examples:
    >>> import evaluate
    >>> clip_score = evaluate.load("ORG/clip_score", clip_model="openai/clip-vit-base-patch32")  # doctest: +SKIP
    >>> clip_score.compute(predictions=["A bowl of ramen."], images=[["photos/ramen.jpg"]])  # doctest: +SKIP

    >>> from gest_showcases.metrics import module_path
    >>> clip_score = evaluate.load(module_path("clip_score"), "embeddings")  # offline, no CLIP needed
    >>> clip_score.compute(image_embeds=[[[1.0, 0.0], [0.0, 1.0]]], text_embeds=[[1.0, 0.0]])
    {'clip_score': 1.25, 'clip_score_cosine': 0.5, 'clip_score_examples': 1}
"""

import datasets
import evaluate
import torch

from gest_showcases.data.images import open_image_value
from gest_showcases.features.clip import DEFAULT_CLIP
from gest_showcases.metrics.grounding import clip_score, clip_score_from_embeddings, load_clip_checkpoint

_CITATION = """\
@inproceedings{hessel2021clipscore,
  title={{CLIPScore}: A Reference-free Evaluation Metric for Image Captioning},
  author={Hessel, Jack and Holtzman, Ari and Forbes, Maxwell and Le Bras, Ronan and Choi, Yejin},
  booktitle={Proceedings of the 2021 Conference on Empirical Methods in Natural Language Processing (EMNLP)},
  pages={7514--7528},
  year={2021}
}
@inproceedings{yan2023personalized,
  title={Personalized Showcases: Generating Multi-Modal Explanations for Recommendations},
  author={Yan, An and He, Zhankui and Li, Jiacheng and Zhang, Tianyang and McAuley, Julian},
  booktitle={Proceedings of the 46th International ACM SIGIR Conference on Research and Development in Information Retrieval},
  year={2023}
}
"""

_FEATURES = {
    "default": datasets.Features(
        # decode=False: the module opens every image itself, with the package's guarded opener.
        {"predictions": datasets.Value("string"), "images": datasets.List(datasets.Image(decode=False))}
    ),
    "embeddings": datasets.Features(
        {
            "image_embeds": datasets.List(datasets.List(datasets.Value("float32"))),
            "text_embeds": datasets.List(datasets.Value("float32")),
        }
    ),
}


@evaluate.utils.file_utils.add_start_docstrings(__doc__)
class ClipScore(evaluate.Metric):
    def __init__(self, *args, clip_model=DEFAULT_CLIP, device=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.clip_model = clip_model
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._clips = {}  # checkpoint name or folder -> (CLIPModel, CLIPProcessor), loaded once

    def _info(self):
        if self.config_name not in _FEATURES:
            raise ValueError(f"unknown configuration {self.config_name!r}; choose one of {sorted(_FEATURES)}")
        return evaluate.MetricInfo(
            description=__doc__,
            citation=_CITATION,
            inputs_description=__doc__,
            homepage="https://arxiv.org/abs/2207.00422",
            codebase_urls=["https://github.com/jmhessel/clipscore"],
            reference_urls=["https://arxiv.org/abs/2104.08718", "https://arxiv.org/abs/2207.00422"],
            license="apache-2.0",
            features=_FEATURES[self.config_name],
        )

    def _clip(self, name):
        if name not in self._clips:
            self._clips[name] = load_clip_checkpoint(name, self.device, "clip_score clip_model=")
        return self._clips[name]

    def _compute(self, predictions=None, images=None, image_embeds=None, text_embeds=None, clip_model=None):
        if self.config_name == "embeddings":
            return clip_score_from_embeddings(
                [torch.tensor(e, dtype=torch.float32) for e in image_embeds],
                torch.tensor(text_embeds, dtype=torch.float32),
            )
        model, processor = self._clip(clip_model or self.clip_model)
        return clip_score([[open_image_value(v) for v in values] for values in images], predictions, model, processor)
