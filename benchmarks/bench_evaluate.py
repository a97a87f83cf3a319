"""`gest-showcases evaluate`'s scoring without the neural metrics: each text tokenised once vs every time, same run.

    python benchmarks/bench_evaluate.py --output bench_evaluate.json [--size 11015] [--systems 2] [--rounds 2]

What the command computes between reading the generations and writing the files, on `--size` test examples
(default: the real Gest s2 test split's 11,015) x `--systems` systems sharing the references: Table 2's text
metrics and GT row (`score_generations`, no BERTScore or CLIP), the paired-bootstrap intervals
(`table2_intervals_markdown`, 1,000 resamples) and Figure 6 (b)'s POS coverage (`pos_coverage`, a fresh tagger per
pass, so neither side inherits the other's tags). Memoised: all of it inside `tokens_memoised()`, as the command
runs it since session 38; the baseline: the same calls outside it (the code before). Both sides' outputs are compared
and must be identical. Rounds alternate the two sides; medians are reported. Texts: `bench_metrics`' synthetic
review-like explanations, each system's drawn with its own seed, a third of them repeated (generators repeat
themselves). CPU; nothing here runs in parallel.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass, field

import _env
from bench_metrics import synthetic_corpus
from transformers import HfArgumentParser

from gest_showcases.metrics.assets import install_wordnet
from gest_showcases.metrics.coverage import pos_coverage, pos_tagger
from gest_showcases.metrics.generations import Generation, group_by_system
from gest_showcases.metrics.paper_tables import score_generations, table2_intervals_markdown
from gest_showcases.metrics.text import tokens_memoised


@dataclass
class BenchmarkArguments:
    output: str = field(default="bench_evaluate.json", metadata={"help": "JSON results file"})
    size: int = field(default=11_015, metadata={"help": "test examples (the real s2 test split has 11,015)"})
    systems: int = field(default=2, metadata={"help": "systems scored against the same references"})
    rounds: int = field(default=2, metadata={"help": "alternating rounds of each side; medians reported"})
    seed: int = field(default=0)


def generations(size: int, systems: int, seed: int) -> list[Generation]:
    """`systems` systems' texts for the same `size` references; every third text repeats the one before it."""
    _, references = synthetic_corpus(size, seed)
    records = []
    for system in range(systems):
        texts, _ = synthetic_corpus(size, seed + 1 + system)
        texts = [texts[i - 1] if i % 3 == 2 else text for i, text in enumerate(texts)]
        records += [
            Generation(id=str(i), system=f"system-{system}", generated=text, reference=reference)
            for i, (text, reference) in enumerate(zip(texts, references, strict=True))
        ]
    return records


def score(records: list[Generation], memoised: bool) -> tuple[dict, dict[str, float]]:
    """The command's scoring of `records` (without BERTScore and CLIP); returns (outputs, seconds per part)."""
    seconds = {}
    with tokens_memoised() if memoised else contextlib.nullcontext():
        start = time.perf_counter()
        rows = score_generations(records)
        seconds["table 2 metrics"] = time.perf_counter() - start
        start = time.perf_counter()
        intervals = table2_intervals_markdown(records, None, num_resamples=1000)
        seconds["intervals"] = time.perf_counter() - start
        start = time.perf_counter()
        _, tag = pos_tagger()
        coverage = {
            name: pos_coverage([r.generated for r in recs], [r.reference for r in recs], tag)
            for name, recs in group_by_system(records).items()
        }
        seconds["figure 6 coverage"] = time.perf_counter() - start
    seconds["total"] = sum(seconds.values())
    return {"rows": rows, "intervals": intervals, "coverage": coverage}, seconds


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser(BenchmarkArguments)
    _env.add_noisy_argument(parser)
    args, shared = parser.parse_args_into_dataclasses(args=argv)
    environment = _env.start(shared.noisy)
    install_wordnet()
    records = generations(args.size, args.systems, args.seed)
    score(records[: 2 * args.systems], memoised=False)  # loads WordNet and the tagger outside the timings
    runs = {"memoised": [], "baseline": []}
    outputs = {}
    for _ in range(args.rounds):
        for side in ("baseline", "memoised"):
            outputs[side], seconds = score(records, memoised=side == "memoised")
            runs[side].append(seconds)
    medians = {side: {part: statistics.median(run[part] for run in runs[side]) for part in runs[side][0]} for side in runs}
    identical = outputs["memoised"] == outputs["baseline"]
    speedup = medians["baseline"]["total"] / medians["memoised"]["total"]
    print(f"{args.size} examples x {args.systems} systems; evaluate's scoring, each text tokenised once: "
          f"{medians['memoised']['total']:.2f} s vs {medians['baseline']['total']:.2f} s ({speedup:.2f}x); "
          f"identical outputs: {identical}")  # fmt: skip
    print("| part | memoised s | baseline s |\n|---|---:|---:|")
    for part in medians["memoised"]:
        print(f"| {part} | {medians['memoised'][part]:.2f} | {medians['baseline'][part]:.2f} |")
    result = {
        "size": args.size,
        "systems": args.systems,
        "rounds": args.rounds,
        "seconds": runs,
        "median_seconds": medians,
        "speedup": speedup,
        "identical_outputs": identical,
    }
    return _env.finish(result, environment, args.output)


if __name__ == "__main__":
    main()
