"""CLIP-Align (Yan et al. 2023, eq. 12) as an `evaluate` module: visual grounding of a generated text.

For each image of an example, the highest confidence, over the generated text's sentences, of the
explanation classifier that the sentence describes the image; averaged over the example's images, then
over examples with at least one image. An example with images but no sentence scores 0.

Inputs:
    image_embeds (`list[list[list[float]]]`): per example, the CLIP embeddings `[n_i, Di]` of its images.
    sentence_embeds (`list[list[list[float]]]`): per example, the CLIP embeddings `[m_i, Dt]` of the
        generated text's sentences (split with `gest_showcases.metrics.text.split_sentences`).
    scorer (`Callable`): `scorer(text_embeds=Tensor[M, Dt], image_embeds=Tensor[M, Di]) -> Tensor[M]`
        probabilities, e.g. `lambda **kw: classifier(**kw).probabilities` for the package's
        `ExplanationClassifier`.

Outputs:
    clip_align (`float`, in [0, 1], higher is better); clip_align_examples (`int`): examples scored.

Example:
    >>> import evaluate, torch
    >>> from gest_showcases.metrics import module_path
    >>> clip_align = evaluate.load(module_path("clip_align"))
    >>> scorer = lambda text_embeds, image_embeds: torch.sigmoid((text_embeds * image_embeds).sum(-1))
    >>> clip_align.compute(image_embeds=[[[1.0, 0.0]]], sentence_embeds=[[[0.0, 1.0], [2.0, 0.0]]], scorer=scorer)
    {'clip_align': 0.8807970285415649, 'clip_align_examples': 1}
"""

import datasets
import evaluate
import torch

from gest_showcases.metrics.grounding import clip_align_from_embeddings

_CITATION = """\
@inproceedings{yan2023personalized,
  title={Personalized Showcases: Generating Multi-Modal Explanations for Recommendations},
  author={Yan, An and He, Zhankui and Li, Jiacheng and Zhang, Tianyang and McAuley, Julian},
  booktitle={SIGIR},
  year={2023}
}
"""

_MATRIX = datasets.List(datasets.List(datasets.Value("float32")))


@evaluate.utils.file_utils.add_start_docstrings(__doc__)
class ClipAlign(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation=_CITATION,
            inputs_description=__doc__,
            features=datasets.Features({"image_embeds": _MATRIX, "sentence_embeds": _MATRIX}),
        )

    def _compute(self, image_embeds, sentence_embeds, scorer):
        return clip_align_from_embeddings(
            [torch.tensor(e, dtype=torch.float32) for e in image_embeds],
            [torch.tensor(e, dtype=torch.float32) for e in sentence_embeds],
            scorer,
        )
