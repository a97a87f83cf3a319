"""`gest-showcases diversity`: the paper's visual diversity in three levels (Section 3.2, Appendix B).

With `dis(m, n) = 1 - cos(CLIP(m), CLIP(n))` over images of one business:

- Intra-Business Div = sum over businesses b, pairs {m, n} of b's images, of dis / Z1 (Z1 = #pairs);
- Inter-User Div: the same over pairs whose two images come from different users (Z2 = #pairs);
- Intra-User Div: the same over pairs from one user at one business (Z3 = #pairs).

Higher is more diverse; the paper reports Intra-Business 0.39 for Gest. Computed without a loop over
pairs: for a group of unit vectors with sum S, the sum of cosines over its pairs is
`(|S|^2 - sum_i |v_i|^2) / 2`, so each level needs one scatter-add of the vectors per group.
Inter-user pairs are the business pairs that are not same-user pairs.

The command (`gest_showcases.commands.diversity`):

    gest-showcases diversity --dataset BUILT_DIR --features FEATDIR --plot diversity.png
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from gest_showcases.files import writing_atomically

logger = logging.getLogger(__name__)

LEVELS = ("intra_business", "inter_user", "intra_user")
LABELS = {
    "intra_business": "Intra-Business Div",
    "inter_user": "Inter-User Div",
    "intra_user": "Intra-User Div",
}


def _pair_sums(vectors: torch.Tensor, groups: torch.Tensor) -> tuple[float, float]:
    """(number of within-group pairs, sum of their cosines) for unit `vectors` `[N, D]` in `groups` `[N]`."""
    _, inverse, counts = torch.unique(groups, return_inverse=True, return_counts=True)
    sums = torch.zeros(len(counts), vectors.shape[1], dtype=vectors.dtype).index_add_(
        0, inverse, vectors
    )  # [G, D]
    squared = torch.zeros(len(counts), dtype=vectors.dtype).index_add_(
        0, inverse, (vectors * vectors).sum(1)
    )  # [G]
    cosine_sum = ((sums * sums).sum(1) - squared).sum() / 2
    pairs = (counts * (counts - 1) // 2).sum()
    return float(pairs), float(cosine_sum)


def visual_diversity(
    embeddings: torch.Tensor, business: torch.Tensor, user: torch.Tensor
) -> dict[str, float]:
    """Intra-Business, Inter-User and Intra-User diversity of images, one row per image.

    Args:
        embeddings (`torch.FloatTensor` of shape `(N, D)`): CLIP image embeddings (normalised here).
        business (`torch.LongTensor` of shape `(N,)`): business index of each image.
        user (`torch.LongTensor` of shape `(N,)`): user index of each image.

    Returns:
        `{"intra_business", "inter_user", "intra_user"}` mean dissimilarities (NaN where a level has
        no pair) and `{level}_pairs`, the counts Z1, Z2, Z3.
    """
    vectors = torch.nn.functional.normalize(embeddings.double(), dim=-1)
    business_user = business * (int(user.max()) + 1 if len(user) else 1) + user  # one id per (business, user)
    business_pairs, business_cos = _pair_sums(vectors, business)
    user_pairs, user_cos = _pair_sums(vectors, business_user)
    totals = {
        "intra_business": (business_pairs, business_cos),
        "inter_user": (business_pairs - user_pairs, business_cos - user_cos),
        "intra_user": (user_pairs, user_cos),
    }
    result: dict[str, float] = {}
    for level, (pairs, cosine_sum) in totals.items():
        result[level] = (pairs - cosine_sum) / pairs if pairs else float("nan")
        result[f"{level}_pairs"] = int(pairs)
    return result


def dataset_diversity(rows: Sequence[dict], images) -> dict[str, float]:
    """Diversity of the images the `rows`' reviews posted (`pics`), from a CLIP image `FeatureTable`.

    Each image counts once, for the business and user of the review that posted it; images without
    features are left out and counted in `images_without_features`.
    """
    owner: dict[str, tuple[str, str]] = {}
    for row in rows:
        for pic in row["pics"]:
            owner.setdefault(pic, (row["business_id"], row["user_id"]))
    pics = list(owner)
    embeddings, found = images.lookup(pics)
    kept = [pic for pic, ok in zip(pics, found.tolist(), strict=True) if ok]
    business_index = {b: i for i, b in enumerate(dict.fromkeys(owner[p][0] for p in kept))}
    user_index = {u: i for i, u in enumerate(dict.fromkeys(owner[p][1] for p in kept))}
    business = torch.tensor([business_index[owner[p][0]] for p in kept], dtype=torch.long)
    user = torch.tensor([user_index[owner[p][1]] for p in kept], dtype=torch.long)
    result = visual_diversity(embeddings[found], business, user)
    result["images"] = len(kept)
    result["images_without_features"] = len(pics) - len(kept)
    return result


def diversity_table(results: dict[str, dict[str, float]]) -> str:
    """Markdown table, one row per dataset: the three diversities and their pair counts."""
    lines = [
        "| dataset | " + " | ".join(LABELS[level] for level in LEVELS) + " | images |",
        "|---|" + "---|" * (len(LEVELS) + 1),
    ]
    for name, result in results.items():
        cells = [f"{result[level]:.4f} ({result[f'{level}_pairs']:,} pairs)" for level in LEVELS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {result['images']:,} |")
    return "\n".join(lines)


def plot_diversity(results: dict[str, dict[str, float]], path: str | Path) -> Path:
    """Grouped bar chart like the paper's Figure 3: one group per dataset, one bar per level."""
    import matplotlib  # optional dependency (extra "metrics"), only needed for the chart

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    width = 0.8 / len(LEVELS)
    figure, axes = plt.subplots(figsize=(1.6 + 1.4 * len(names), 3.2))
    for offset, level in enumerate(LEVELS):
        positions = [i + (offset - (len(LEVELS) - 1) / 2) * width for i in range(len(names))]
        bars = axes.bar(positions, [results[n][level] for n in names], width, label=LABELS[level])
        axes.bar_label(bars, fmt="%.2f", fontsize=7)
    axes.set_xticks(range(len(names)), names)
    axes.set_ylabel("mean CLIP dissimilarity (1 - cos)")
    axes.set_title("Visual diversity")
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    path = Path(path)
    if not path.suffix:  # matplotlib would add .png itself, and the caller would report a path that is not there
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    with writing_atomically(path) as temporary:  # a run stopped mid-save leaves the previous figure
        figure.savefig(temporary, dpi=150, format=path.suffix.lstrip(".").lower())
    plt.close(figure)
    return path

