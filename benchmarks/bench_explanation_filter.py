"""Benchmark the explanation filter that distils s2 from s1: `ExplanationFilter.filter_many` (the builder's call, a
block of reviews per classifier call) against the filter as the builder called it before session 27, once per review
(`filter_before`, that code verbatim), and against today's per-review call, on the same reviews in the same run. The
kept sentences must be identical.

Shapes follow a 6,000-review Gest-Synth world's s1 (5.5 sentences and 1.75 photos per review, about 5% of the photos
without features), CLIP width 512, with the paper's linear classifier and with `--interaction`. Sentence embeddings are
set up front, as `distill` embeds every sentence before the build, so the figures are the filter's own cost.

    PYTHONPATH=src python benchmarks/bench_explanation_filter.py --output explanation_filter.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import _env
import torch

from gest_showcases.features.cache import FeatureTable
from gest_showcases.features.configuration_explanation import ExplanationClassifierConfig
from gest_showcases.features.distill import ExplanationFilter
from gest_showcases.features.modeling_explanation import ExplanationClassifier


def reviews(num_reviews: int, num_photos: int, seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """Sentence lists (Poisson 5.5, at most 30) and photo paths (Poisson 1.75, 1-10; 5% unknown ids)."""
    generator = torch.Generator().manual_seed(seed)
    sentences = torch.poisson(torch.full((num_reviews,), 5.5), generator=generator).clamp(0, 30).long().tolist()
    photos = torch.poisson(torch.full((num_reviews,), 1.75), generator=generator).clamp(1, 10).long().tolist()
    picks = torch.randint(0, num_photos * 21 // 20, (sum(photos),), generator=generator).tolist()
    sentence_lists = [[f"review {i} sentence {j}" for j in range(count)] for i, count in enumerate(sentences)]
    image_lists, position = [], 0
    for count in photos:
        image_lists.append([f"/images/pic{pick}.jpg" for pick in picks[position : position + count]])
        position += count
    return sentence_lists, image_lists


def make_filter(sentence_lists, dim: int, num_photos: int, interaction: bool, seed: int) -> ExplanationFilter:
    generator = torch.Generator().manual_seed(seed)
    config = ExplanationClassifierConfig(
        text_dim=dim, image_dim=dim, interaction=interaction, clip_fingerprint="bench", threshold=0.5
    )
    classifier = ExplanationClassifier(config)
    with torch.no_grad():
        classifier.classifier.weight.normal_(0, 0.5, generator=generator)
    images = FeatureTable(
        [f"pic{i}" for i in range(num_photos)],
        torch.nn.functional.normalize(torch.randn(num_photos, dim, generator=generator), dim=-1),
        "bench",
        "bench",
        True,
    )
    explanation_filter = ExplanationFilter(classifier, text_model=None, images=images)
    flat = [sentence for group in sentence_lists for sentence in group]
    embeddings = torch.nn.functional.normalize(torch.randn(len(flat), dim, generator=generator), dim=-1)
    explanation_filter._sentences.update(zip(flat, embeddings, strict=True))  # what `prepare` would have cached
    return explanation_filter


def filter_before(self: ExplanationFilter, sentences, images) -> list[str]:
    """`ExplanationFilter.__call__` before session 27 (commit 9679f47), the baseline: one classifier call per review."""
    if not sentences or not images:
        return []
    image_embeds, found = self.images.lookup([Path(image).stem for image in images])
    if not found.any():
        return []
    self.prepare(sentences)
    text_embeds = torch.stack([self._sentences[s] for s in sentences])
    probabilities = self.classifier.pair_probabilities(text_embeds, image_embeds[found])  # [S, I]
    keep = probabilities.max(dim=1).values >= self.threshold
    return [sentence for sentence, kept in zip(sentences, keep.tolist(), strict=True) if kept]


def timed(function, repeats: int) -> tuple[float, object]:
    """Median wall time of `repeats` calls and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=20_000)
    parser.add_argument("--photos", type=int, default=40_000, help="photos with features")
    parser.add_argument("--dim", type=int, default=512, help="CLIP width")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default="explanation_filter.json")
    _env.add_noisy_argument(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    environment = _env.start(args.noisy)
    sentence_lists, image_lists = reviews(args.reviews, args.photos, seed=0)
    pairs = list(zip(sentence_lists, image_lists, strict=True))
    rows = []
    for interaction in (False, True):
        explanation_filter = make_filter(sentence_lists, args.dim, args.photos, interaction, seed=1)
        with torch.no_grad():
            before, expected = timed(lambda f=explanation_filter: [filter_before(f, s, i) for s, i in pairs], args.repeats)
        per_review, alone = timed(lambda f=explanation_filter: [f(s, i) for s, i in pairs], args.repeats)
        batched, kept = timed(
            lambda f=explanation_filter: f.filter_many(sentence_lists, image_lists), args.repeats
        )
        rows.append(
            {
                "classifier": "[t; v; t*v] (--interaction)" if interaction else "[t; v] (paper)",
                "before_seconds": before,
                "per_review_seconds": per_review,
                "filter_many_seconds": batched,
                "speedup": before / batched,
                "identical_kept_sentences": kept == expected and alone == expected,
                "kept_sentences": sum(map(len, kept)),
            }
        )
    report = {"reviews": args.reviews, "photos": args.photos, "dim": args.dim, "threads": args.threads, "rows": rows}
    print(f"### ExplanationFilter on {args.reviews:,} reviews (CPU, {args.threads} threads)\n")
    print("| classifier | before: one call per review | filter_many | speedup | today's per-review call | identical |")
    print("|---|---:|---:|---:|---:|---|")
    for row in rows:
        print(
            f"| {row['classifier']} | {row['before_seconds']:.2f} s | {row['filter_many_seconds']:.3f} s | "
            f"{row['speedup']:.1f}x | {row['per_review_seconds']:.2f} s | {row['identical_kept_sentences']} |"
        )
    return _env.finish(report, environment, args.output)


if __name__ == "__main__":
    main()
