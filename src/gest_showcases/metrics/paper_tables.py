"""The paper's Table 2 from a generations file, and the files `gest-showcases evaluate` writes.

The generations format is described in `gest_showcases.metrics.generations`; Figure 6's numbers come
from `gest_showcases.metrics.coverage`, its PNGs from `gest_showcases.metrics.plots`.

Outputs (`write_evaluation`): ``table2.md`` and ``table2.json`` (one row per system plus a ``GT`` row with
the reference-free metrics of the references, as in the paper), ``figure6a_length.png`` and
``figure6b_coverage.png`` with their numbers in ``figure6.json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch

from gest_showcases.data.images import photo_files
from gest_showcases.errors import InputError
from gest_showcases.files import writing_together
from gest_showcases.markdown_tables import markdown_row
from gest_showcases.metrics import intervals
from gest_showcases.metrics._bertscore import BertScorer
from gest_showcases.metrics.coverage import LENGTH_BINS, length_distribution, pos_coverage, pos_tagger
from gest_showcases.metrics.generations import GROUND_TRUTH, Generation, ground_truth_records, group_by_system
from gest_showcases.metrics.grounding import (
    CLIP_SCORE_PREFIX,
    Scorer,
    clip_align_from_embeddings,
    clip_score_from_embeddings,
    embed_image_files,
    embed_texts,
)
from gest_showcases.metrics.per_example import text_statistics
from gest_showcases.metrics.plots import length_distribution_png, pos_coverage_png
from gest_showcases.metrics.synth_truth import SYNTH_TRUTH_COLUMNS
from gest_showcases.metrics.text import bert_score, distinct, split_sentences, text_metrics

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
# CLIP-Align scored by a classifier with the product term (`distill --interaction`; `evaluate
# --interaction_classifier`), printed after CLIP-Align when scored. The paper's linear `[t; v]` classifier gives every
# photo the same best sentence (its score is a sum of a text part and an image part), so its CLIP-Align cannot tell
# which photo a sentence describes; this one can (docs/experiments.md, CLIP-Align).
INTERACTION_ALIGN_COLUMN = ("clip_align_interaction", "CLIP-Align (t*v)")


def table2_columns(rows: Iterable[Mapping[str, object]], synth_truth: bool = True) -> list[tuple[str, str]]:
    """Table 2's (metric key, column) for the rows' metrics (each row a mapping keyed by metric): the paper's columns,
    CLIP-Align (t*v) after CLIP-Align and (with `synth_truth`) Gest-Synth's ground-truth columns (`evaluate
    --synth_truth`) at the end, each of these only when some row has it."""
    present = {key for metrics in rows for key in metrics}
    columns = []
    for column in TABLE2_COLUMNS:
        columns.append(column)
        if column[0] == "clip_align" and INTERACTION_ALIGN_COLUMN[0] in present:
            columns.append(INTERACTION_ALIGN_COLUMN)
    if synth_truth:
        columns += [column for column in SYNTH_TRUTH_COLUMNS if column[0] in present]
    return columns


def _grounding_rows(
    texts_by_row: dict[str, list[str]],
    pics_by_row: dict[str, list[tuple[str, ...]]],
    image_dir: Path,
    clip,
    scorers: dict[str, Scorer],
) -> dict[str, dict[str, float]]:
    """CLIP-Score of every row, and for each `scorers` entry (metric key -> scorer) the CLIP-Align it gives, under
    that key; each image and sentence embedded once."""
    model, processor = clip
    unique = {p for pics in pics_by_row.values() for ids in pics for p in ids}
    found, _ = embed_image_files(photo_files(image_dir, sorted(unique)), model, processor)
    if unique and not found:  # else CLIP-Score and CLIP-Align print 0.00 as if measured
        raise InputError(
            f"none of the {len(unique):,} photos the generations name is a readable <pic_id>.jpg in {image_dir}: "
            "check --images"
        )
    empty = torch.zeros(0, model.config.projection_dim)
    out = {}
    for row, texts in texts_by_row.items():
        images = [
            torch.stack([found[p] for p in ids if p in found]) if any(p in found for p in ids) else empty
            for ids in pics_by_row[row]
        ]
        prefixed = embed_texts([CLIP_SCORE_PREFIX + t.strip() for t in texts], model, processor)
        out[row] = clip_score_from_embeddings(images, prefixed)
        if scorers:
            sentences = [split_sentences(t) for t in texts]
            flat = embed_texts([s for ss in sentences for s in ss], model, processor)
            per_text = list(torch.split(flat, [len(ss) for ss in sentences]))
            for key, scorer in scorers.items():
                align = clip_align_from_embeddings(images, per_text, scorer)
                out[row][key] = align["clip_align"]
                out[row][f"{key}_examples"] = align["clip_align_examples"]
    return out


def score_generations(
    records: Sequence[Generation],
    bertscore_model: str | Path | None = None,
    bertscore_layers: int | None = None,
    clip=None,
    image_dir: str | Path | None = None,
    scorer: Scorer | None = None,
    device: str = "cpu",
    interaction_scorer: Scorer | None = None,
) -> dict[str, dict[str, float]]:
    """Every Table 2 metric per system, plus the ``GT`` row (reference-free metrics of the references).

    Args:
        records: the generations (see the module docstring).
        bertscore_model: BERTScore encoder path; None skips BERTScore.
        bertscore_layers: BERTScore layer (default: the model's last).
        clip: ``(CLIPModel, CLIPProcessor)`` (see `grounding.load_clip_checkpoint`); with ``image_dir``, adds
            CLIP-Score, and CLIP-Align when ``scorer`` is given too.
        image_dir: folder of ``<pic_id>.jpg`` files.
        scorer: the explanation classifier, ``scorer(text_embeds=, image_embeds=) -> probabilities``.
        interaction_scorer: a classifier with the product term (`distill --interaction`): adds
            ``clip_align_interaction``, CLIP-Align by it (`INTERACTION_ALIGN_COLUMN`).

    Returns: ``{row name: flat metric dict}``, systems in file order, then ``GT``.
    """
    systems = group_by_system(records)
    truth = ground_truth_records(records)
    rows: dict[str, dict[str, float]] = {}
    bertscore = None
    if bertscore_model is not None:
        # One encoder for every system, the shared references encoded once and kept; each system's own texts are
        # dropped once scored, so memory holds the references and one system's texts, not every system's.
        bertscore = BertScorer(bertscore_model, bertscore_layers, device=device)
        all_references = {r.reference for r in records}
        bertscore.prepare(all_references)
    for name, recs in systems.items():
        generated, references = [r.generated for r in recs], [r.reference for r in recs]
        rows[name] = text_metrics(generated, references)
        if bertscore is not None:
            rows[name].update(bert_score(generated, references, scorer=bertscore))
            bertscore.forget(set(generated) - all_references)
        logger.info("%s: %s", name, rows[name])
    rows[GROUND_TRUTH] = distinct([r.reference for r in truth])
    if clip is not None and image_dir is not None:
        texts = {name: [r.generated for r in recs] for name, recs in systems.items()}
        texts[GROUND_TRUTH] = [r.reference for r in truth]
        pics = {name: [r.pic_ids for r in recs] for name, recs in systems.items()}
        pics[GROUND_TRUTH] = [r.pic_ids for r in truth]
        scorers = {"clip_align": scorer, INTERACTION_ALIGN_COLUMN[0]: interaction_scorer}
        scorers = {key: value for key, value in scorers.items() if value is not None}
        for name, values in _grounding_rows(texts, pics, Path(image_dir), clip, scorers).items():
            rows[name].update(values)
    return rows


def table2_markdown(rows: dict[str, dict[str, float]]) -> str:
    """The paper's Table 2 layout: one row per system, metrics x100 with 2 decimals, "-" when absent.

    System names are escaped (`markdown_cell`): a `|` or a line break in a name stays in its cell.
    """
    columns = table2_columns(rows.values())
    header = markdown_row(["Model", *(name for _, name in columns)])
    rule = "|---|" + "---:|" * len(columns)
    lines = [header, rule]
    for system, metrics in rows.items():
        cells = [table2_cell(metrics.get(key), key) for key, _ in columns]
        lines.append(markdown_row([system, *cells]))
    return "\n".join(lines) + "\n"


def table2_cell(value: float | None, key: str) -> str:
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
    records: Sequence[Generation],
    truth_scores: dict | None,
    num_resamples: int = 1000,
    compare_to: str | None = None,
) -> str:
    """Table 2's metrics that resample exactly, with paired bootstrap 95% intervals over the examples.

    Every system is scored on the same resampled example sets (one index matrix; rows aligned by example
    id), so two rows compare as paired samples. BLEU-1, Distinct-2 and distinct outputs come from
    per-example parts (`metrics.per_example`); the ground-truth columns from `synth_truth` (when given).
    Cells: estimate [95% interval], x100 but distinct outputs. Systems that do not cover the same examples
    as the first one are left out, with a warning.

    `compare_to` (a system's name) adds a row "A - compare_to (paired)" for every other system A but GT: the
    interval of the difference over the same resamples, which is what says whether two systems differ (two
    rows' own intervals can overlap while their paired difference excludes 0), and the share of resamples
    where A is ahead.
    """
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
    systems = systems | {GROUND_TRUTH: ground_truth_records(records)}
    if compare_to is not None and compare_to not in systems:
        raise InputError(f"--compare_to {compare_to!r} is not a system of the generations: {sorted(systems)}")
    statistics_of = {}
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
        statistics_of[name] = statistics
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
    if compare_to is not None:
        if compare_to not in statistics_of:
            raise InputError(f"--compare_to {compare_to!r} does not cover the same examples as the other systems")
        reference = statistics_of[compare_to]
        for name, statistics in statistics_of.items():
            if name in (compare_to, GROUND_TRUTH):
                continue
            cells = [
                intervals.paired_difference(statistics[key], reference[key], indices).format_cell(scale, 1)
                if key in statistics and key in reference
                else "-"
                for key, _, scale in INTERVAL_COLUMNS
            ]
            lines.append(markdown_row([f"{name} - {compare_to} (paired)", *cells]))
    return "\n".join(lines) + "\n"


def write_evaluation(
    rows: dict[str, dict[str, float]],
    records: Sequence[Generation],
    output_dir: str | Path,
    intervals_markdown: str | None = None,
) -> dict[str, Path]:
    """Write Table 2 (markdown + JSON) and Figure 6 (two PNGs + their numbers) into ``output_dir``.

    Args:
        rows: metrics per table row (systems and ``GT``), flat dicts as the metric functions return.
        records: the generations, for Figure 6.
        intervals_markdown: Table 2's intervals (`table2_intervals_markdown`), written with the rest when given.

    Returns: the written paths by name (``table2_md``, ``table2_json``, ``figure6a``, ``figure6b``,
    ``figure6_json``, and ``table2_intervals_md`` when given).
    """
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    # Everything is computed and rendered first (the POS tagging and the figures take a while), then written and
    # renamed into place together: a run stopped midway leaves the previous evaluation's files, not a new Table 2
    # beside old figures.
    systems = group_by_system(records)
    truth = ground_truth_records(records)
    lengths = {name: length_distribution([r.generated for r in recs]) for name, recs in systems.items()}
    lengths[GROUND_TRUTH] = length_distribution([r.reference for r in truth])
    tagger_name, tag = pos_tagger()
    coverage = {
        name: pos_coverage([r.generated for r in recs], [r.reference for r in recs], tag)
        for name, recs in systems.items()
    }
    figure = {
        "length_bins": LENGTH_BINS.tolist(),
        "length_distribution": lengths,
        "pos_tagger": tagger_name,
        "pos_coverage": coverage,
    }
    # NaN (a ratio with nothing to count) is not JSON: written as null.
    clean = {name: {k: (None if v != v else v) for k, v in metrics.items()} for name, metrics in rows.items()}
    table = {"scale": "fractions; the markdown table prints them x100", "rows": clean}
    files = {  # name: (file, contents)
        "table2_md": ("table2.md", table2_markdown(rows).encode()),
        "table2_json": ("table2.json", (json.dumps(table, indent=2) + "\n").encode()),
        "figure6a": ("figure6a_length.png", length_distribution_png(lengths)),
        "figure6b": ("figure6b_coverage.png", pos_coverage_png(coverage)),
        "figure6_json": ("figure6.json", (json.dumps(figure, indent=2) + "\n").encode()),
    }
    if intervals_markdown is not None:
        files["table2_intervals_md"] = ("table2_intervals.md", intervals_markdown.encode())
    paths = {name: output / file for name, (file, _) in files.items()}
    with writing_together(paths.values()) as temporaries:
        for (_, contents), temporary in zip(files.values(), temporaries, strict=True):
            temporary.write_bytes(contents)
    logger.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return paths
