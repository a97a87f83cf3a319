"""CLIP-Score as an `evaluate` module: cosine of CLIP image and text embeddings (Hessel et al. 2021).

Per image of an example, `c = cos(E_image, E_text)` with the example's whole generated text embedded
as "A photo depicts " + text (truncated to 77 CLIP tokens keeping the end-of-text token); averaged over
the example's images, then over examples with at least one image.

Inputs:
    image_embeds (`list[list[list[float]]]`): per example, the CLIP embeddings `[n_i, D]` of its images.
    text_embeds (`list[list[float]]`): per example, the CLIP embedding `[D]` of its prefixed text.

Outputs:
    clip_score (`float`, in [0, 2.5], higher is better): Hessel et al.'s CLIP-S, `2.5 * max(c, 0)`.
    clip_score_cosine (`float`, in [-1, 1], higher is better): raw `c`; x100 the paper's Table 2 column.
    clip_score_examples (`int`): examples scored.

Example:
    >>> import evaluate
    >>> from gest_showcases.metrics import module_path
    >>> clip_score = evaluate.load(module_path("clip_score"))
    >>> clip_score.compute(image_embeds=[[[1.0, 0.0], [0.0, 1.0]]], text_embeds=[[1.0, 0.0]])
    {'clip_score': 1.25, 'clip_score_cosine': 0.5, 'clip_score_examples': 1}
"""

import datasets
import evaluate
import torch

from gest_showcases.metrics.grounding import clip_score_from_embeddings

_CITATION = """\
@inproceedings{hessel2021clipscore,
  title={CLIPScore: A Reference-free Evaluation Metric for Image Captioning},
  author={Hessel, Jack and Holtzman, Ari and Forbes, Maxwell and Le Bras, Ronan and Choi, Yejin},
  booktitle={EMNLP},
  year={2021}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(__doc__)
class ClipScore(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation=_CITATION,
            inputs_description=__doc__,
            features=datasets.Features(
                {
                    "image_embeds": datasets.List(datasets.List(datasets.Value("float32"))),
                    "text_embeds": datasets.List(datasets.Value("float32")),
                }
            ),
        )

    def _compute(self, image_embeds, text_embeds):
        return clip_score_from_embeddings(
            [torch.tensor(e, dtype=torch.float32) for e in image_embeds],
            torch.tensor(text_embeds, dtype=torch.float32),
        )
