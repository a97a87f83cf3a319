"""Distinct-n (Li et al. 2016) as an `evaluate` measurement: corpus-level diversity of generated texts.

A measurement (evaluate's kind for what needs no references): it reads the predictions only.

Inputs:
    predictions (`list[str]`): generated texts.
    orders (`list[int]`, *optional*, defaults to `[1, 2]`): n-gram orders.

Outputs:
    `distinct_<n>` (`float`, one per order, in [0, 1], higher is more diverse):
    |unique n-grams over all predictions| / |n-gram occurrences over all predictions|, 0 when the
    predictions hold no n-gram. Tokens: lower-cased text split by NLTK's TreebankWordTokenizer.

Example:
    >>> import evaluate
    >>> from gest_showcases.metrics import module_path
    >>> distinct = evaluate.load(module_path("distinct"))
    >>> distinct.compute(predictions=["the pizza was great", "the pizza was cold"])
    {'distinct_1': 0.625, 'distinct_2': 0.6666666666666666}
"""

import datasets
import evaluate

from gest_showcases.metrics.text import distinct

_CITATION = """\
@inproceedings{li2016diversity,
  title={A Diversity-Promoting Objective Function for Neural Conversation Models},
  author={Li, Jiwei and Galley, Michel and Brockett, Chris and Gao, Jianfeng and Dolan, Bill},
  booktitle={Proceedings of the 2016 Conference of the North American Chapter of the Association for Computational Linguistics: Human Language Technologies},
  pages={110--119},
  year={2016}
}
@inproceedings{yan2023personalized,
  title={Personalized Showcases: Generating Multi-Modal Explanations for Recommendations},
  author={Yan, An and He, Zhankui and Li, Jiacheng and Zhang, Tianyang and McAuley, Julian},
  booktitle={Proceedings of the 46th International ACM SIGIR Conference on Research and Development in Information Retrieval},
  year={2023}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(__doc__)
class Distinct(evaluate.Measurement):
    def _info(self):
        return evaluate.MeasurementInfo(
            description=__doc__,
            citation=_CITATION,
            inputs_description=__doc__,
            homepage="https://arxiv.org/abs/2207.00422",
            reference_urls=["https://aclanthology.org/N16-1014", "https://arxiv.org/abs/2207.00422"],
            license="apache-2.0",
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    # evaluate would split a lone string into its characters (and score them) before `_compute` sees it.
    def compute(self, *, predictions=None, references=None, **kwargs):
        """Distinct-n of `predictions` (a list of strings; a lone string is refused)."""  # evaluate appends its inputs
        _refuse_a_lone_string(predictions)
        return super().compute(predictions=predictions, references=references, **kwargs)

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of `predictions` (a list of strings; a lone string is refused)."""  # evaluate appends its inputs
        _refuse_a_lone_string(predictions)
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def _compute(self, predictions, orders=(1, 2)):
        return distinct(predictions, orders=orders)


def _refuse_a_lone_string(predictions) -> None:
    if isinstance(predictions, str):
        raise ValueError("distinct: predictions must be a list of strings, got a single string")
