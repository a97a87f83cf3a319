"""Non-neural text metrics on 10,000 generated explanations: ours vs calling NLTK directly, same run.

    python benchmarks/bench_metrics.py --output bench_metrics.json [--size 10000]

Both sides score the same synthetic explanations against the same references with the same tokens
(lower-case + TreebankWordTokenizer). Reference side: NLTK's `corpus_bleu` (weights 1-gram and
4-gram), `corpus_nist(n=4)`, `meteor_score` per example, and a plain Python Distinct-n over
`nltk.util.ngrams` (no library ships Distinct). Ours: `gest_showcases.metrics.text.text_metrics`.
WordNet is loaded and its synset cache warmed before either side is timed, and our per-word caches
are cleared, so neither side inherits the other's work. Agreement is checked on the same numbers.
CPU only: 1 thread is enough, the metrics are not parallel.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from dataclasses import dataclass, field

import _env
from transformers import HfArgumentParser

from gest_showcases.metrics import text as text_metrics_module
from gest_showcases.metrics.assets import install_wordnet, require_wordnet
from gest_showcases.metrics.text import text_metrics, tokenize

DISHES = [
    "pizza",
    "pho",
    "ramen",
    "burger",
    "tacos",
    "sushi",
    "dumplings",
    "noodles",
    "curry",
    "salad",
    "soup",
    "steak",
    "fries",
    "rolls",
    "brisket",
]
ADJECTIVES = [
    "crispy",
    "fresh",
    "spicy",
    "tender",
    "juicy",
    "rich",
    "bland",
    "salty",
    "sweet",
    "creamy",
    "smoky",
    "delicious",
    "huge",
    "tiny",
]
ADVERBS = ["really", "very", "perfectly", "super", "quite", "surprisingly", "absolutely"]
OTHERS = [
    "the",
    "a",
    "was",
    "were",
    "and",
    "with",
    "we",
    "ordered",
    "it",
    "came",
    "loved",
    "tried",
    "place",
    "service",
    "staff",
    "friendly",
    "our",
]


@dataclass
class BenchmarkArguments:
    output: str = field(default="bench_metrics.json", metadata={"help": "JSON results file"})
    size: int = field(default=10_000, metadata={"help": "number of generated explanations"})
    seed: int = field(default=0)


def synthetic_corpus(size: int, seed: int) -> tuple[list[str], list[str]]:
    """Review-like explanations (1-4 sentences, ~5-60 words) and references sharing some words."""
    rng = random.Random(seed)

    def sentence() -> str:
        words = [
            rng.choice(OTHERS),
            rng.choice(DISHES),
            rng.choice(OTHERS),
            rng.choice(ADVERBS),
            rng.choice(ADJECTIVES),
        ]
        words += [rng.choice(DISHES + ADJECTIVES + OTHERS) for _ in range(rng.randint(0, 10))]
        return " ".join(words).capitalize() + rng.choice([".", "!", "."])

    def text(low: int, high: int) -> str:
        return " ".join(sentence() for _ in range(rng.randint(low, high)))

    return [text(1, 3) for _ in range(size)], [text(1, 4) for _ in range(size)]


def reference_metrics(
    hypotheses: list[str], references: list[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """The same numbers from NLTK directly; returns (scores, seconds per part)."""
    from nltk.translate.bleu_score import corpus_bleu
    from nltk.translate.meteor_score import meteor_score
    from nltk.translate.nist_score import corpus_nist
    from nltk.util import ngrams

    seconds = {}
    start = time.perf_counter()
    hyp = [tokenize(t) for t in hypotheses]
    refs = [[tokenize(t)] for t in references]
    seconds["tokenize"] = time.perf_counter() - start
    scores = {}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores["bleu_1"] = corpus_bleu(refs, hyp, weights=(1, 0, 0, 0))
        scores["bleu_4"] = corpus_bleu(refs, hyp)
    seconds["bleu"] = time.perf_counter() - start
    start = time.perf_counter()
    scores["nist_4"] = corpus_nist(refs, hyp, n=4)
    seconds["nist"] = time.perf_counter() - start
    start = time.perf_counter()
    scores["meteor"] = math.fsum(meteor_score(r, h) for r, h in zip(refs, hyp, strict=True)) / len(hyp)
    seconds["meteor"] = time.perf_counter() - start
    start = time.perf_counter()
    for n in (1, 2):
        grams = [g for tokens in hyp for g in ngrams(tokens, n)]
        scores[f"distinct_{n}"] = len(set(grams)) / len(grams)
    seconds["distinct"] = time.perf_counter() - start
    return scores, seconds


def main() -> None:
    parser = HfArgumentParser(BenchmarkArguments)
    _env.add_noisy_argument(parser)
    args, shared = parser.parse_args_into_dataclasses()
    environment = _env.start(shared.noisy)
    install_wordnet()
    require_wordnet()
    hypotheses, references = synthetic_corpus(args.size, args.seed)
    start = time.perf_counter()
    text_metrics(hypotheses, references)  # loads WordNet and warms its synset cache for both sides
    warmup = time.perf_counter() - start
    text_metrics_module._synonyms.cache_clear()
    text_metrics_module._stem.cache_clear()

    start = time.perf_counter()
    ours = text_metrics(hypotheses, references)
    ours_seconds = time.perf_counter() - start
    reference, parts = reference_metrics(hypotheses, references)
    reference_seconds = sum(parts.values())
    agreement = {key: abs(ours[key] - reference[key]) / max(abs(reference[key]), 1e-300) for key in reference}

    rows = [
        "| | seconds | explanations/s |",
        "|---|---:|---:|",
        f"| ours (`text_metrics`, all six metrics, tokenisation included) | {ours_seconds:.2f} | {args.size / ours_seconds:,.0f} |",
        f"| NLTK directly (same tokens) | {reference_seconds:.2f} | {args.size / reference_seconds:,.0f} |",
    ]
    rows += [f"| NLTK: {name} | {value:.2f} | |" for name, value in parts.items()]
    print(f"{args.size} explanations; speed-up ours vs NLTK: {reference_seconds / ours_seconds:.2f}x")
    print("\n".join(rows))
    print("max relative difference:", max(agreement.values()))
    result = {
        "size": args.size,
        "ours_seconds": ours_seconds,
        "reference_seconds": reference_seconds,
        "reference_seconds_by_part": parts,
        "speedup": reference_seconds / ours_seconds,
        "first_call_seconds_incl_wordnet_load": warmup,
        "scores": ours,
        "relative_difference": agreement,
    }
    _env.finish(result, environment, args.output)


if __name__ == "__main__":
    main()
