"""`gest-showcases evaluate --synth_truth`: the ground-truth columns in Table 2 and the interval table."""

import json

import pytest

from gest_showcases import cli
from gest_showcases.synth import SynthConfig, generate_world, write_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("world")
    write_world(generate_world(SynthConfig(seed=0, num_reviews=150)), folder, image_size=16)
    return folder


def test_evaluate_adds_ground_truth_columns_and_intervals(world, tmp_path):
    truth = json.loads((world / "ground_truth.json").read_text())
    reviews: dict[str, list[str]] = {}
    for pic, info in truth["pics"].items():
        if info["subject"] and info["kind"] == "dish":
            reviews.setdefault(info["review_id"], []).append(pic)
    examples = sorted(reviews.items())[:30]
    all_subjects = set(truth["subjects"])
    lines = []
    for review_id, pics in examples:
        business = truth["pics"][pics[0]]["business_id"]
        shown = {truth["pics"][pic]["subject"] for pic in pics}
        named = truth["subjects"][sorted(shown)[0]]["aliases"][0]
        # A subject no photo of the business shows: every name it writes is a hallucination.
        in_business = {info["subject"] for info in truth["pics"].values() if info["business_id"] == business}
        foreign = sorted(s for s in all_subjects - in_business if truth["subjects"][s]["kind"] == "dish")[0]
        wrong = truth["subjects"][foreign]["aliases"][0]
        for system, text in (("Grounded", f"The {named} was great."), ("Wrong", f"Loved the {wrong} here.")):
            lines.append({"id": review_id, "system": system, "generated": text,
                          "reference": f"The {named} was great.", "pic_ids": pics})  # fmt: skip
    generations = tmp_path / "generations.jsonl"
    generations.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "evaluation"
    argv = ["evaluate", "--generations", str(generations), "--output_dir", str(out), "--no_bertscore",
            "--synth_truth", str(world / "ground_truth.json"), "--num_resamples", "200"]  # fmt: skip
    assert cli.main(argv) == 0
    rows = json.loads((out / "table2.json").read_text())["rows"]
    assert rows["Grounded"]["grounded_precision"] == 1.0 and rows["Grounded"]["hallucination"] == 0.0
    assert rows["Wrong"]["grounded_precision"] == 0.0 and rows["Wrong"]["hallucination"] == 1.0
    assert rows["Grounded"]["distinct_outputs"] == pytest.approx(len({line["generated"] for line in lines[::2]}))
    assert rows["GT"]["grounded_precision"] == 1.0  # references name a subject of their own photos
    table = (out / "table2.md").read_text()
    assert "Grounded P" in table.splitlines()[0]
    intervals = (out / "table2_intervals.md").read_text()
    grounded_row = next(line for line in intervals.splitlines() if line.startswith("| Grounded |"))
    assert "100.0 [100.0, 100.0]" in grounded_row
    wrong_row = next(line for line in intervals.splitlines() if line.startswith("| Wrong |"))
    assert wrong_row.split("|")[4].strip().startswith("0.0 [0.0, 0.0]")  # Grounded P of Wrong
    assert any(line.startswith("| GT |") for line in intervals.splitlines())


def _generations(world, tmp_path, count: int = 30):
    """Per dish review: "Grounded" names a shown dish, "Half" names it on even examples and a dish no photo of the
    business shows on odd ones."""
    truth = json.loads((world / "ground_truth.json").read_text())
    reviews: dict[str, list[str]] = {}
    for pic, info in truth["pics"].items():
        if info["subject"] and info["kind"] == "dish":
            reviews.setdefault(info["review_id"], []).append(pic)
    lines = []
    for k, (review_id, pics) in enumerate(sorted(reviews.items())[:count]):
        business = truth["pics"][pics[0]]["business_id"]
        named = truth["subjects"][sorted(truth["pics"][pic]["subject"] for pic in pics)[0]]["aliases"][0]
        in_business = {info["subject"] for info in truth["pics"].values() if info["business_id"] == business}
        foreign = sorted(s for s in set(truth["subjects"]) - in_business if truth["subjects"][s]["kind"] == "dish")
        wrong = truth["subjects"][foreign[0]]["aliases"][0]
        half = f"The {named} was great." if k % 2 == 0 else f"Loved the {wrong} here."
        for system, text in (("Grounded", f"The {named} was great."), ("Half", half)):
            lines.append({"id": review_id, "system": system, "generated": text,
                          "reference": f"The {named} was great.", "pic_ids": pics})  # fmt: skip
    generations = tmp_path / "generations.jsonl"
    generations.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return generations


def test_compare_to_adds_paired_difference_rows(world, tmp_path):
    generations = _generations(world, tmp_path)
    out = tmp_path / "evaluation"
    argv = ["evaluate", "--generations", str(generations), "--output_dir", str(out), "--no_bertscore",
            "--synth_truth", str(world / "ground_truth.json"), "--num_resamples", "300",
            "--compare_to", "Grounded"]  # fmt: skip
    assert cli.main(argv) == 0
    lines = (out / "table2_intervals.md").read_text().splitlines()
    paired = [line for line in lines if "(paired)" in line]
    # One row per other system, GT and the reference itself left out.
    assert [line.split("|")[1].strip() for line in paired] == ["Half - Grounded (paired)"]
    cells = [cell.strip() for cell in paired[0].split("|")[2:-1]]
    # Grounded P: Half names a shown dish on half the examples, Grounded on all: -50 points, behind on every resample.
    grounded_p = cells[2]
    estimate, low, high = (float(x) for x in grounded_p.split(" (")[0].replace("[", "").replace("]", "").replace(",", "").split())
    assert estimate == pytest.approx(-50.0, abs=1e-6) and low < -50.0 < high < 0.0
    assert grounded_p.endswith("(A>B 0.0%)")
    # Hallucination: +50 points for Half.
    assert cells[4].startswith("+50.0 [")


def test_compare_to_an_unknown_system_is_one_clear_error(world, tmp_path, capsys):
    generations = _generations(world, tmp_path, count=4)
    argv = ["evaluate", "--generations", str(generations), "--output_dir", str(tmp_path / "e"), "--no_bertscore",
            "--compare_to", "CE only"]  # fmt: skip
    assert cli.main(argv) != 0
    error = capsys.readouterr().err
    assert "--compare_to 'CE only' is not a system of" in error and "['Grounded', 'Half']" in error
    assert not (tmp_path / "e").exists()
