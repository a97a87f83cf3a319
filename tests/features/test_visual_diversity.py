"""Intra-Business, Inter-User, Intra-User diversity against a brute-force loop over pairs."""

from __future__ import annotations

import itertools

import pytest
import torch

from gest_showcases.commands.diversity import main
from gest_showcases.features.cache import FeatureTable
from gest_showcases.features.diversity import (
    dataset_diversity,
    diversity_table,
    plot_diversity,
    visual_diversity,
)


def _brute_force(embeddings, business, user):
    vectors = torch.nn.functional.normalize(embeddings.double(), dim=-1)
    sums = {"intra_business": [0.0, 0], "inter_user": [0.0, 0], "intra_user": [0.0, 0]}
    for m, n in itertools.combinations(range(len(vectors)), 2):
        if business[m] != business[n]:
            continue
        dis = 1 - float(vectors[m] @ vectors[n])
        level = "intra_user" if user[m] == user[n] else "inter_user"
        for key in ("intra_business", level):
            sums[key][0] += dis
            sums[key][1] += 1
    return {key: total / count for key, (total, count) in sums.items()}, {k: c for k, (_, c) in sums.items()}


@pytest.mark.parametrize("seed", [0, 1])
def test_three_levels_match_brute_force(seed):
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(60, 8, generator=generator) + 0.5
    business = torch.randint(0, 5, (60,), generator=generator)
    user = torch.randint(0, 7, (60,), generator=generator)
    result = visual_diversity(embeddings, business, user)
    expected, counts = _brute_force(embeddings, business, user)
    for level, value in expected.items():
        assert result[level] == pytest.approx(value, abs=1e-10)
        assert result[f"{level}_pairs"] == counts[level]


def test_hand_computed_example():
    # Business 0: user 0 posts two identical images, user 1 an orthogonal one. Business 1: one image.
    embeddings = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    result = visual_diversity(embeddings, torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 1, 0]))
    assert result["intra_user"] == pytest.approx(0.0)  # the one same-user pair is identical
    assert result["inter_user"] == pytest.approx(1.0)  # two orthogonal pairs
    assert result["intra_business"] == pytest.approx(2 / 3)
    assert (result["intra_business_pairs"], result["inter_user_pairs"], result["intra_user_pairs"]) == (
        3,
        2,
        1,
    )


def test_level_without_pairs_is_nan():
    result = visual_diversity(torch.randn(3, 4), torch.tensor([0, 1, 2]), torch.tensor([0, 0, 0]))
    assert result["intra_business_pairs"] == 0 and result["intra_business"] != result["intra_business"]


def test_dataset_diversity_uses_posted_images_and_skips_missing_features(tmp_path):
    rows = [
        {"business_id": "b1", "user_id": "u1", "pics": ["a", "b"]},
        {"business_id": "b1", "user_id": "u2", "pics": ["c", "gone"]},
        {"business_id": "b2", "user_id": "u1", "pics": ["d"]},
    ]
    table = FeatureTable(["a", "b", "c", "d"], torch.eye(4), "clip", "f", True)
    result = dataset_diversity(rows, table)
    assert (result["images"], result["images_without_features"]) == (4, 1)
    assert result["intra_user"] == pytest.approx(1.0) and result["intra_business_pairs"] == 3
    markdown = diversity_table({"toy": result})
    assert "Intra-User Div" in markdown and "| toy |" in markdown
    png = plot_diversity({"toy": result, "again": result}, tmp_path / "div.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Without an extension the chart is a PNG, and the path returned (which the command prints) is the one written.
    written = plot_diversity({"toy": result}, tmp_path / "figure3")
    assert written == tmp_path / "figure3.png" and written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_command_prints_table_and_draws_chart(tmp_path, built_dataset, image_dir, tiny_clip, capsys):
    from gest_showcases.commands.features import main as features_main

    features_main(["--dataset", str(built_dataset), "--images", str(image_dir), "--output_dir", str(tmp_path / "f"), "--clip_model", tiny_clip,
                   "--kinds", "image", "--num_workers", "0"])  # fmt: skip
    assert main(["--dataset", str(built_dataset), "--features", str(tmp_path / "f"), "--names", "tiny",
                 "--plot", str(tmp_path / "div.png"), "--output_dir", str(tmp_path / "div")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "| tiny |" in out and (tmp_path / "div.png").exists() and (tmp_path / "div" / "diversity.json").exists()


def test_command_refuses_features_of_another_dataset_and_writes_strict_json(tmp_path, built_dataset, monkeypatch):
    import json

    from gest_showcases.commands import diversity
    from gest_showcases.errors import InputError

    other = FeatureTable(["elsewhere"], torch.ones(1, 4), "clip", "f", True)
    monkeypatch.setattr(diversity, "load_features", lambda folder, kind: other)
    with pytest.raises(InputError, match="--features f holds none of the .* photos of .*: give the features made"):
        main(["--dataset", str(built_dataset), "--features", "f", "--output_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
    first = next(pic for row in diversity.read_config_rows(built_dataset, "s1") for pic in row["pics"])
    one = FeatureTable([first], torch.ones(1, 4), "clip", "f", True)  # one photo: no pair at any level
    monkeypatch.setattr(diversity, "load_features", lambda folder, kind: one)
    assert main(["--dataset", str(built_dataset), "--features", "f", "--output_dir", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "diversity.json").read_text()
    assert "NaN" not in text and json.loads(text)["dataset"]["intra_business"] is None
