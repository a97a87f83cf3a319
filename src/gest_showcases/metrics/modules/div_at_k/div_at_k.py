"""div@K (Yan et al. 2023, eq. 13) as an `evaluate` measurement: visual diversity of a selected image set.

A measurement (evaluate's kind for what needs no references): it reads the selections and features only.

Mean over selected pairs m < n of `1 - cos(f_m, f_n)` of the images' CLIP features, 0 when fewer than
two images were selected; averaged over examples. Wraps
`gest_showcases.metrics.selection.diversity_at_k`, the implementation the selector uses.

Inputs:
    selected (`list[list[int]]`): per example, positions in its candidate pool, `-1`-padded.
    features (`list[list[list[float]]]`): per example, the candidates' CLIP features `[N_i, D]`; pools may differ
        in size (businesses have different numbers of photos, also across `add_batch` calls).
    k (`int`, *optional*, defaults to 3): the K of the metric (the paper's K is 3); the first K positions of each
        selection count.

Outputs:
    `div@<k>` (`float`, in [0, 2], higher is more diverse).

Example:
    >>> import evaluate
    >>> from gest_showcases.metrics import module_path
    >>> div_at_k = evaluate.load(module_path("div_at_k"))
    >>> div_at_k.compute(selected=[[0, 1]], features=[[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]], k=2)
    {'div@2': 1.0}
"""

import datasets
import evaluate
import torch

from gest_showcases.metrics.selection import diversity_at_k

_CITATION = """\
@inproceedings{yan2023personalized,
  title={Personalized Showcases: Generating Multi-Modal Explanations for Recommendations},
  author={Yan, An and He, Zhankui and Li, Jiacheng and Zhang, Tianyang and McAuley, Julian},
  booktitle={Proceedings of the 46th International ACM SIGIR Conference on Research and Development in Information Retrieval},
  year={2023}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(__doc__)
class DivAtK(evaluate.Measurement):
    def _info(self):
        return evaluate.MeasurementInfo(
            description=__doc__,
            citation=_CITATION,
            inputs_description=__doc__,
            homepage="https://arxiv.org/abs/2207.00422",
            reference_urls=["https://arxiv.org/abs/2207.00422"],
            license="apache-2.0",
            features=datasets.Features(
                {
                    "selected": datasets.List(datasets.Value("int64")),
                    "features": datasets.List(datasets.List(datasets.Value("float32"))),
                }
            ),
        )

    def _compute(self, selected, features, k=3):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"div_at_k: k must be a whole number >= 1, got {k!r}")
        for row, (positions, pool) in enumerate(zip(selected, features, strict=True)):
            outside = [position for position in positions if position != -1 and not 0 <= position < len(pool)]
            if outside:
                raise ValueError(f"div_at_k: example {row} selects position {outside[0]}, outside its pool of "
                                 f"{len(pool)} (positions are 0..{len(pool) - 1}, -1 pads)")
        widths = {len(row) for pool in features for row in pool}
        if len(widths) > 1:
            raise ValueError(f"div_at_k: the features differ in width: {sorted(widths)}")
        # One [B, N, D] tensor, pools zero-padded to the largest: a padding row is never selected (checked above).
        pools = torch.zeros(len(features), max(map(len, features), default=0), widths.pop() if widths else 0)
        for row, pool in enumerate(features):
            if pool:
                pools[row, : len(pool)] = torch.tensor(pool, dtype=torch.float32)
        width = max((len(s) for s in selected), default=0)
        padded = torch.full((len(selected), width), -1, dtype=torch.long)  # [B, K']
        for row, positions in enumerate(selected):
            padded[row, : len(positions)] = torch.tensor(positions, dtype=torch.long)
        per_example = diversity_at_k(padded, pools, k)  # [B]
        return {f"div@{k}": float(per_example.mean()) if len(selected) else 0.0}
