"""Ground-truth metrics of generated explanations on a Gest-Synth world (`ground_truth.json`).

Gest-Synth knows what every photo shows, so an explanation can be checked against the photos it was
shown instead of against one human reference. Every metric reads which *subjects* a text names.

Subjects and matching
    The world's subjects are its dishes (``kind == "dish"``) and non-dish aspects (interior, drinks,
    menu board, storefront, dessert display); each has ``aliases``, the phrases a review uses to name
    it. A text names subject ``s`` when one of ``s``'s aliases occurs in it as whole words
    (not inside a longer word: "ribs" is not in "cribs"), case-insensitively, any run of whitespace
    matching a space. Texts are scanned left to right; at each position the longest alias wins and
    matches do not overlap, so "yangzhou fried rice" names that dish once and never also a dish
    called "fried rice" or "rice". Every drink alias names the one subject ``drinks`` (which drink a
    photo shows is not checked). A subject named twice counts once: ``N_i`` is a set.

Per example ``i`` (one generated text for one request):
    - ``N_i``: subjects the text names; ``D_i`` the dishes among them.
    - ``S_i``: subjects of the shown photos (the selected ``pic_ids``); a photo whose ``subject`` is
      null shows none.
    - ``B_i``: subjects of every photo of the example's business in the world (all its reviews).
    - ``F_i``: the user's ``favourite_dishes``.

Metrics (fractions in [0, 1] except ``distinct_outputs``; arrows say which way is better):
    - ``mention_rate`` (↑ informative): share of texts with ``N_i`` non-empty.
    - ``grounded_precision`` (↑): named subjects that a shown photo shows, micro-averaged over named
      subjects: ``sum_i |N_i ∩ S_i| / sum_i |N_i|``. ``grounded_precision_macro``: the mean of
      ``|N_i ∩ S_i| / |N_i|`` over the examples that name a subject.
    - ``grounded_recall`` (↑): shown subjects that the text names, ``sum_i |S_i ∩ N_i| / sum_i |S_i|``;
      ``_macro``: mean of ``|S_i ∩ N_i| / |S_i|`` over examples with at least one shown subject.
    - ``hallucination`` (↓): named subjects that no photo of the business shows,
      ``sum_i |N_i \\ B_i| / sum_i |N_i|``; ``_macro`` as for precision.
    - ``personal_share`` (↑ personalised): named dishes that are favourites of the user,
      ``sum_i |D_i ∩ F_i| / sum_i |D_i|``; ``_macro``: mean over examples that name a dish.
    - ``grounded_precision_chance``: the chance level of ``grounded_precision``: its expected value if
      each named subject were replaced by a uniformly random subject of the business (of ``B_i``),
      ``sum_i |N_i| p_i / sum_i |N_i|`` with ``p_i = |S_i ∩ B_i| / |B_i|`` (0 when the business
      has no photo of a subject: no random subject of it can be grounded), weighted like the
      system's own precision so the two compare directly. `random_subject_baseline` gives the
      system-free version (the mean of ``p_i``).
    - ``distinct_outputs`` (↑ varied): the number of different texts (compared after collapsing
      whitespace). Written as a sum of per-example parts ``1 / (copies of text_i)`` so that the
      bootstrap (`intervals`) resamples it without the downward bias of counting duplicated draws.
    - ``num_examples``: the number of texts scored.

A ratio whose denominator is 0 over the whole set (no subject named, no photo shown) is NaN, not 0:
"never named anything" is not "named only wrong things". Every metric but ``distinct_outputs`` and
``num_examples`` is ``sum(numerator_i) / sum(denominator_i)`` of per-example parts
(`SynthTruthScores.ratio_parts`), so `SynthTruthScores.value` evaluates it on a whole batch of
resamples at once (indices ``[B, n]``) and `SynthTruthScores.statistic` hands it to `intervals`.

Example::

    truth = SynthTruth.load("gest-synth/ground_truth.json")
    rows = score_synth_generations(read_generations("generations.jsonl"), truth)  # systems + "GT"
    rows["PC2L"].metrics()["grounded_precision"]
    indices = intervals.resample_indices(len(rows["PC2L"]))  # shared by every system: paired
    intervals.bootstrap_interval(rows["PC2L"].statistic("grounded_precision"), indices).format_cell()
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gest_showcases.errors import InputError
from gest_showcases.metrics.intervals import distinct_share_parts

if TYPE_CHECKING:
    from gest_showcases.metrics.generations import Generation

REFERENCE_ROW = "GT"
# (metric key, column name); the tables print fractions x100 and distinct_outputs as a count.
SYNTH_TRUTH_COLUMNS = (
    ("mention_rate", "Mention"),
    ("grounded_precision", "Grounded P"),
    ("grounded_precision_chance", "Chance P"),
    ("grounded_recall", "Grounded R"),
    ("hallucination", "Halluc."),
    ("personal_share", "Personal"),
    ("distinct_outputs", "Distinct outputs"),
)
# (metric, numerator count, denominator count) of every micro/macro ratio metric.
_RATIOS = (
    ("grounded_precision", "grounded", "named"),
    ("grounded_recall", "grounded", "shown"),
    ("hallucination", "hallucinated", "named"),
    ("personal_share", "personal", "dishes"),
)
# Every key of `SynthTruthScores.metrics`, in that order.
METRICS = (
    "mention_rate",
    *(key for metric, _, _ in _RATIOS for key in (metric, f"{metric}_macro")),
    "grounded_precision_chance",
    "distinct_outputs",
    "num_examples",
)


def _is_text_list(value, empty: bool = False) -> bool:
    """A list of strings (a string itself is not: it would be read character by character)."""
    return isinstance(value, list) and (empty or bool(value)) and all(isinstance(item, str) for item in value)


def _normalise(phrase: str) -> str:
    return " ".join(phrase.lower().split())


def _section(truth: Mapping, key: str, source: str) -> Mapping:
    value = truth.get(key)
    if not isinstance(value, Mapping):
        raise InputError(
            f"{source}: no {key!r} object; pass the ground_truth.json that `gest-showcases synth` wrote"
        )
    return value


@dataclass(frozen=True)
class SynthTruth:
    """What `score_texts` needs from a world's ``ground_truth.json``; build it with `SynthTruth.load`.

    Args:
        subject_kinds (`dict[str, str]`): subject name -> ``"dish"`` or ``"aspect"``.
        alias_subjects (`dict[str, str]`): lower-cased, whitespace-collapsed alias -> subject name.
        pattern (`re.Pattern`): every alias, longest first, whole words, case-insensitive.
        pic_subjects (`dict[str, str | None]`): pic id -> subject it shows (None: no subject).
        business_subjects (`dict[str, frozenset[str]]`): business id -> subjects of its photos.
        favourite_dishes (`dict[str, frozenset[str]]`): user id -> favourite dishes.
        review_pics (`dict[str, tuple[str, ...]]`): review id -> its photos (pics' ``review_id``).
    """

    subject_kinds: dict[str, str]
    alias_subjects: dict[str, str]
    pattern: re.Pattern
    pic_subjects: dict[str, str | None]
    business_subjects: dict[str, frozenset[str]]
    favourite_dishes: dict[str, frozenset[str]]
    review_pics: dict[str, tuple[str, ...]]

    @classmethod
    def load(cls, source: str | Path | Mapping) -> SynthTruth:
        """From a ``ground_truth.json`` path or its parsed dict; InputError for anything malformed."""
        if isinstance(source, Mapping):
            return cls.from_dict(source, "ground truth")
        if not isinstance(source, (str, Path)):
            raise InputError(f"ground truth: give the path of a ground_truth.json or its parsed dict, got "
                             f"{type(source).__name__}")  # fmt: skip
        try:
            truth = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise InputError(f"cannot read the Gest-Synth ground truth {source}: {error}") from error
        except RecursionError as error:  # nesting deeper than the parser's stack
            raise InputError(f"{source}: JSON nested too deep; not a Gest-Synth ground_truth.json") from error
        if not isinstance(truth, Mapping):
            raise InputError(f"{source}: not a Gest-Synth ground_truth.json (expected a JSON object)")
        return cls.from_dict(truth, str(source))

    @classmethod
    def from_dict(cls, truth: Mapping, source: str = "ground truth") -> SynthTruth:
        subjects = _section(truth, "subjects", source)
        kinds, alias_subjects = {}, {}
        for name, subject in subjects.items():
            if (
                not isinstance(subject, Mapping)
                or subject.get("kind") not in ("dish", "aspect")
                or not _is_text_list(subject.get("aliases"))
            ):
                raise InputError(f"{source}: subject {name!r} needs a kind (dish or aspect) and a list of aliases")
            kinds[name] = subject["kind"]
            for alias in subject["aliases"]:
                key = _normalise(alias)
                if not key:
                    raise InputError(f"{source}: subject {name!r} has an empty alias")
                if alias_subjects.setdefault(key, name) != name:
                    raise InputError(
                        f"{source}: alias {alias!r} names both {alias_subjects[key]!r} and {name!r}; "
                        "an alias must name one subject"
                    )
        if not alias_subjects:
            raise InputError(f"{source}: no subjects; pass the ground_truth.json of a Gest-Synth world")
        # Longest first: Python's alternation takes the first alternative that matches at a position.
        alternatives = sorted(alias_subjects, key=lambda a: (-len(a), a))
        body = "|".join(r"\s+".join(re.escape(word) for word in a.split()) for a in alternatives)
        pattern = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)

        pic_subjects: dict[str, str | None] = {}
        review_pics: dict[str, list[str]] = {}
        business_subjects: dict[str, set[str]] = {b: set() for b in _section(truth, "businesses", source)}
        for pic_id, pic in _section(truth, "pics", source).items():
            if not isinstance(pic, Mapping) or not isinstance(pic.get("business_id"), str):
                raise InputError(f"{source}: photo {pic_id!r} has no business_id")
            subject = pic.get("subject")
            if not isinstance(subject, str | None) or not isinstance(pic.get("review_id", ""), str):
                raise InputError(f"{source}: photo {pic_id!r}: subject and review_id must be text")
            if subject is not None and subject not in kinds:
                raise InputError(f"{source}: photo {pic_id!r} shows unknown subject {subject!r}")
            pic_subjects[pic_id] = subject
            if "review_id" in pic:
                review_pics.setdefault(pic["review_id"], []).append(pic_id)
            photos_of = business_subjects.setdefault(pic["business_id"], set())
            if subject is not None:
                photos_of.add(subject)
        favourites = {}
        for user_id, user in _section(truth, "users", source).items():
            if not isinstance(user, Mapping):
                raise InputError(f"{source}: user {user_id!r} is not an object")
            if not _is_text_list(user.get("favourite_dishes", []), empty=True):
                raise InputError(f"{source}: user {user_id!r}: favourite_dishes must be a list of dish names")
            dishes = frozenset(user.get("favourite_dishes", ()))
            unknown = sorted(d for d in dishes if kinds.get(d) != "dish")
            if unknown:
                raise InputError(
                    f"{source}: user {user_id!r} has favourite dishes that are not dishes: {unknown}"
                )
            favourites[user_id] = dishes
        return cls(
            subject_kinds=kinds,
            alias_subjects=alias_subjects,
            pattern=pattern,
            pic_subjects=pic_subjects,
            business_subjects={b: frozenset(s) for b, s in business_subjects.items()},
            favourite_dishes=favourites,
            review_pics={r: tuple(p) for r, p in review_pics.items()},
        )

    def named_subjects(self, text: str) -> tuple[str, ...]:
        """The subjects ``text`` names (see the module docstring), each once, in order of first mention."""
        found = (self.alias_subjects[_normalise(m.group())] for m in self.pattern.finditer(text))
        return tuple(dict.fromkeys(found))

    def split_review_id(self, review_id: str) -> tuple[str, str]:
        """``(user_id, business_id)`` of a Gest review id ``f"{user_id}_{business_id}"`` of this world."""
        candidates = [
            (review_id[:cut], review_id[cut + 1 :])
            for cut in range(len(review_id))
            if review_id[cut] == "_"
            and review_id[:cut] in self.favourite_dishes
            and review_id[cut + 1 :] in self.business_subjects
        ]
        if len(candidates) != 1:
            raise InputError(
                f"example id {review_id!r} is not <user_id>_<business_id> of a user and business of this "
                "world; score generations with the ground truth of the world they were made on"
            )
        return candidates[0]


@dataclass(frozen=True)
class SynthTruthScores:
    """Per-example counts of a list of texts; every metric is computed from them (module docstring).

    Args (all aligned arrays of length ``n``, one entry per text):
        named (`np.ndarray`): ``|N_i|``. grounded: ``|N_i ∩ S_i|``. shown: ``|S_i|``.
        hallucinated: ``|N_i \\ B_i|``. dishes: ``|D_i|``. personal: ``|D_i ∩ F_i|``.
        chance (`np.ndarray`, float): ``p_i = |S_i ∩ B_i| / |B_i|`` (0 when ``B_i`` is empty).
        distinct_parts (`np.ndarray`, float): ``1 / (number of texts equal to text_i)``.
        subjects (`tuple[tuple[str, ...], ...]`): ``N_i`` in order of first mention, for inspection.
    """

    named: np.ndarray
    grounded: np.ndarray
    shown: np.ndarray
    hallucinated: np.ndarray
    dishes: np.ndarray
    personal: np.ndarray
    chance: np.ndarray
    distinct_parts: np.ndarray
    subjects: tuple[tuple[str, ...], ...]

    def __len__(self) -> int:
        return len(self.named)

    def per_example(self) -> dict[str, np.ndarray]:
        """Each ratio metric per text (NaN where its denominator is 0) and ``mention`` (0/1)."""
        out = {"mention": (self.named > 0).astype(np.float64)}
        with np.errstate(divide="ignore", invalid="ignore"):
            for metric, numerator, denominator in _RATIOS:
                den = getattr(self, denominator)
                out[metric] = np.where(den > 0, getattr(self, numerator) / np.maximum(den, 1), np.nan)
        return out

    @cached_property
    def ratio_parts(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-example ``(numerator, denominator)`` of every ratio metric: its value on a set of examples
        is ``sum(numerator) / sum(denominator)`` over them (micro: counts; macro: the per-example value
        and 1 where it is defined; ``mention_rate``: 0/1 and 1)."""
        per_example = self.per_example()
        parts = {"mention_rate": (per_example["mention"], np.ones(len(self)))}
        for metric, numerator, denominator in _RATIOS:
            den = getattr(self, denominator)
            parts[metric] = (getattr(self, numerator).astype(np.float64), den.astype(np.float64))
            defined = den > 0
            parts[f"{metric}_macro"] = (
                np.where(defined, per_example[metric], 0.0),
                defined.astype(np.float64),
            )
        parts["grounded_precision_chance"] = (self.named * self.chance, self.named.astype(np.float64))
        return parts

    def value(self, metric: str, indices: np.ndarray | None = None) -> np.ndarray:
        """``metric`` over the examples ``indices`` (int ``[n']``, or a batch of resamples ``[B, n']``).

        Returns an array of shape ``indices.shape[:-1]`` (0-d for 1-D indices); NaN where a ratio's
        denominator is 0 over the selected examples.
        """
        index = np.arange(len(self)) if indices is None else np.asarray(indices)
        if index.ndim == 0 or index.shape[-1] == 0:
            raise InputError("indices must have shape [n] or [B, n] with n >= 1")
        if metric == "distinct_outputs":
            return self.distinct_parts[index].sum(-1)
        if metric == "num_examples":
            return np.full(index.shape[:-1], float(index.shape[-1]))
        if metric not in self.ratio_parts:
            raise InputError(f"unknown synth-truth metric {metric!r}; choose one of {', '.join(METRICS)}")
        numerator, denominator = self.ratio_parts[metric]
        top, bottom = numerator[index].sum(-1), denominator[index].sum(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1), np.nan)

    def aggregate(self, indices: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every metric (`METRICS`) over the examples ``indices``, as `value` computes each."""
        return {metric: self.value(metric, indices) for metric in METRICS}

    def metrics(self) -> dict[str, float]:
        """Every metric over all texts, as a flat dict of floats (see the module docstring)."""
        return {key: float(value) for key, value in self.aggregate().items()}

    def statistic(self, metric: str):
        """``indices [B, n] -> values [B]`` of ``metric``, for `gest_showcases.metrics.intervals`."""
        if metric not in METRICS:
            raise InputError(f"unknown synth-truth metric {metric!r}; choose one of {', '.join(METRICS)}")

        def statistic(indices):
            if np.shape(indices)[-1] != len(self):
                raise InputError(
                    f"resamples of {np.shape(indices)[-1]} examples for scores of {len(self)}; build the "
                    "indices from the same test set"
                )
            return self.value(metric, indices)

        return statistic


def score_texts(
    texts: Sequence[str],
    user_ids: Sequence[str],
    business_ids: Sequence[str],
    pic_ids: Sequence[Sequence[str]],
    truth: SynthTruth,
) -> SynthTruthScores:
    """Count what each text names against the world's truth (metrics: `SynthTruthScores.metrics`).

    Args:
        texts: the explanations, one per example.
        user_ids, business_ids: each example's user (for ``personal_share``) and business.
        pic_ids: each example's shown photos (the selected pic ids).
        truth: the world (`SynthTruth.load`).

    Raises InputError for lists of different lengths, or a user, business or photo the world lacks.
    """
    if isinstance(texts, str):
        raise InputError("texts must be a list of strings, got a single string")
    n = len(texts)
    if n == 0:
        raise InputError("no texts to score")
    if not len(user_ids) == len(business_ids) == len(pic_ids) == n:
        raise InputError(
            f"texts, user_ids, business_ids and pic_ids differ in length: "
            f"{n}, {len(user_ids)}, {len(business_ids)}, {len(pic_ids)}"
        )
    counts = np.zeros((6, n), dtype=np.int64)
    chance = np.zeros(n)
    subjects = []
    for i, (text, user, business, pics) in enumerate(
        zip(texts, user_ids, business_ids, pic_ids, strict=True)
    ):
        if user not in truth.favourite_dishes or business not in truth.business_subjects:
            raise InputError(
                f"example {i}: user {user!r} or business {business!r} is not in this world's ground truth"
            )
        missing = [p for p in pics if p not in truth.pic_subjects]
        if missing:
            raise InputError(f"example {i}: photos {missing} are not in this world's ground truth")
        named = truth.named_subjects(text)
        shown = {truth.pic_subjects[p] for p in pics} - {None}
        of_business = truth.business_subjects[business]
        dishes = {s for s in named if truth.subject_kinds[s] == "dish"}
        counts[:, i] = (
            len(named),
            len(shown.intersection(named)),
            len(shown),
            len(set(named) - of_business),
            len(dishes),
            len(dishes & truth.favourite_dishes[user]),
        )
        if of_business:
            chance[i] = len(shown & of_business) / len(of_business)
        subjects.append(named)
    distinct_parts, _ = distinct_share_parts([[" ".join(t.split())] for t in texts])
    named, grounded, shown, hallucinated, dishes, personal = counts
    return SynthTruthScores(
        named=named,
        grounded=grounded,
        shown=shown,
        hallucinated=hallucinated,
        dishes=dishes,
        personal=personal,
        chance=chance,
        distinct_parts=distinct_parts,
        subjects=tuple(subjects),
    )


def _score_records(
    texts: Sequence[str], records: Sequence[Generation], pic_ids: Sequence[Sequence[str]], truth: SynthTruth
) -> SynthTruthScores:
    if not records:
        raise InputError("no generations to score")
    users, businesses = zip(*(truth.split_review_id(r.id) for r in records), strict=True)
    return score_texts(texts, users, businesses, pic_ids, truth)


def score_references(
    records: Sequence[Generation], truth: SynthTruth, own_photos: bool = False
) -> SynthTruthScores:
    """The ceiling: the reference texts scored like the systems' texts, one per example id.

    Args:
        records: generations (`gest_showcases.metrics.generations.Generation`); the first record of an id
            gives its reference and shown photos, as the Table 2 ``GT`` row does.
        own_photos: score each reference against the photos of the review it was written about (every
            photo whose ``review_id`` is the example id) instead of the shown photos; the ceiling of the
            text itself rather than of the text given the selection.
    """
    first: dict[str, Generation] = {}
    for record in records:
        first.setdefault(record.id, record)
    examples = list(first.values())
    pic_ids = [truth.review_pics.get(r.id, ()) if own_photos else r.pic_ids for r in examples]
    return _score_records([r.reference for r in examples], examples, pic_ids, truth)


def score_synth_generations(records: Sequence[Generation], truth: SynthTruth) -> dict[str, SynthTruthScores]:
    """Scores per system of a generations file (`metrics.generations.read_generations`), then the ``GT`` row.

    Example ids are Gest review ids ``<user_id>_<business_id>``; each record's ``pic_ids`` are the
    photos shown with its text. Systems in file order; ``GT`` scores the references (`score_references`).
    Every row lists its examples in one order (ids by first appearance in ``records``), so rows of
    systems that cover the same examples are aligned, as a paired bootstrap needs.
    """
    position = {example: i for i, example in enumerate(dict.fromkeys(r.id for r in records))}
    groups: dict[str, list[Generation]] = {}
    for record in sorted(records, key=lambda r: position[r.id]):
        groups.setdefault(record.system, []).append(record)
    rows = {
        system: _score_records([r.generated for r in recs], recs, [r.pic_ids for r in recs], truth)
        for system, recs in groups.items()
    }
    rows[REFERENCE_ROW] = score_references(records, truth)
    return rows


def random_subject_baseline(scores: SynthTruthScores) -> float:
    """Expected grounded precision of naming one uniformly random subject of the business per example.

    ``mean_i p_i`` with ``p_i = |S_i ∩ B_i| / |B_i|`` (0 when ``B_i`` is empty). It depends only on the
    shown photos and the world, not on the texts.
    """
    return float(scores.chance.mean())
