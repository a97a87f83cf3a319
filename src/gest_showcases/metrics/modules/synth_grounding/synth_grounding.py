"""Gest-Synth ground-truth grounding as an `evaluate` module: do explanations name what the photos show?

Scores generated explanations against a Gest-Synth world's `ground_truth.json` (which subject each
photo shows, each subject's aliases, each user's favourite dishes). Definitions: the docstring of
`gest_showcases.metrics.synth_truth` (a text names a subject when one of its aliases occurs as whole
words, case-insensitively, longest alias first; a subject named twice counts once).

Inputs:
    predictions (`list[str]`): generated explanations, one per example.
    user_ids (`list[str]`): each example's user (for `personal_share`).
    business_ids (`list[str]`): each example's business (for `hallucination` and the chance level).
    pic_ids (`list[list[str]]`): each example's shown (selected) photos.
    ground_truth (`str` or `dict`): path of the world's `ground_truth.json`, or its parsed content.

Outputs (fractions in [0, 1]; NaN where a ratio has nothing to count, e.g. no subject named at all):
    mention_rate (share of texts naming a subject), grounded_precision (named subjects shown by a shown
    photo, micro over named subjects), grounded_recall (shown subjects named, micro), hallucination
    (named subjects in no photo of the business, lower is better), personal_share (named dishes among
    the user's favourite dishes), each also as `<name>_macro` (mean over the examples where it is
    defined); grounded_precision_chance (the precision of naming random subjects of the business);
    distinct_outputs (number of different texts); num_examples.

Example:
    >>> import evaluate
    >>> from gest_showcases.metrics import MODULES_DIR
    >>> truth = {
    ...     "subjects": {"ramen": {"kind": "dish", "aliases": ["ramen"]},
    ...                  "gyoza": {"kind": "dish", "aliases": ["gyoza", "potstickers"]}},
    ...     "pics": {"p1": {"subject": "ramen", "business_id": "b1"},
    ...              "p2": {"subject": "gyoza", "business_id": "b1"}},
    ...     "users": {"u1": {"favourite_dishes": ["gyoza"]}},
    ...     "businesses": {"b1": {}},
    ... }
    >>> metric = evaluate.load(str(MODULES_DIR / "synth_grounding"))
    >>> result = metric.compute(predictions=["The ramen and potstickers were great."], user_ids=["u1"],
    ...                         business_ids=["b1"], pic_ids=[["p1"]], ground_truth=truth)
    >>> result["grounded_precision"], result["grounded_recall"], result["personal_share"]
    (0.5, 1.0, 0.5)
"""

import datasets
import evaluate

from gest_showcases.metrics.synth_truth import SynthTruth, score_texts

_CITATION = """\
@inproceedings{yan2023personalized,
  title={Personalized Showcases: Generating Multi-Modal Explanations for Recommendations},
  author={Yan, An and He, Zhankui and Li, Jiacheng and Zhang, Tianyang and McAuley, Julian},
  booktitle={Proceedings of the 46th International ACM SIGIR Conference on Research and Development in Information Retrieval},
  year={2023}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(__doc__)
class SynthGrounding(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation=_CITATION,
            inputs_description=__doc__,
            homepage="https://arxiv.org/abs/2207.00422",
            reference_urls=["https://arxiv.org/abs/2207.00422"],
            license="apache-2.0",
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "user_ids": datasets.Value("string"),
                    "business_ids": datasets.Value("string"),
                    "pic_ids": datasets.List(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, user_ids, business_ids, pic_ids, ground_truth):
        truth = SynthTruth.load(ground_truth)
        return score_texts(predictions, user_ids, business_ids, pic_ids, truth).metrics()
