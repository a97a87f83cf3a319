import json

import pytest

from gest_showcases.data import DropReport, Review, normalize_pic_id, split_sentences
from gest_showcases.data.records import write_drop_reports

PIC = "AF1QipN" + "a" * 36 + "_-"


@pytest.mark.parametrize(
    "item",
    [
        PIC,
        {"id": PIC},
        {"url": [f"https://lh5.googleusercontent.com/p/{PIC}=w150-h150-k-no-p"]},
        {"url": ["https://example.com/no-id.png", f"https://lh5.googleusercontent.com/p/{PIC}=w2048"]},
        {"url": f"https://lh5.googleusercontent.com/p/{PIC}"},
        f"https://lh5.googleusercontent.com/p/{PIC}=s0",
        {"id": f"https://lh5.googleusercontent.com/p/{PIC}=w150"},
    ],
)
def test_every_pic_form_normalises_to_the_id(item):
    assert normalize_pic_id(item) == PIC


@pytest.mark.parametrize(
    "item",
    ["../../etc/passwd", "", "a b", {"url": []}, {"url": ["https://example.com/x.jpg"]}, {}, 42, None],
)
def test_items_without_a_safe_id_are_rejected(item):
    with pytest.raises(ValueError):
        normalize_pic_id(item)


def test_review_id_joins_user_and_business():
    review = Review("110922565534353024196", "604a5d09d863393130a413fa", 5, "ok", ())
    assert review.review_id == "110922565534353024196_604a5d09d863393130a413fa"


@pytest.mark.parametrize(
    "text, sentences",
    [
        (
            "Great ramen!  The broth was rich.\nService slow",
            ["Great ramen!", "The broth was rich.", "Service slow"],
        ),
        ('He said "wow." Then left... Ok? yes', ['He said "wow."', "Then left...", "Ok?", "yes"]),
        ("3.5 stars for the pho", ["3.5 stars for the pho"]),
        ("", []),
        ("  \n ", []),
    ],
)
def test_split_sentences(text, sentences):
    assert split_sentences(text) == sentences


def test_drop_report_counts_everything_but_keeps_few_examples(tmp_path):
    report = DropReport(max_examples=2)
    for line in range(1, 6):
        report.add("malformed JSON", f"f.json:{line}")
    report.add_many("missing image", ["a.jpg", "b.jpg", "c.jpg"], 3)
    report.add_many("nothing", [], 0)
    assert report.total == 8
    assert report.to_dict() == {
        "malformed JSON": {"count": 5, "examples": ["f.json:1", "f.json:2"]},
        "missing image": {"count": 3, "examples": ["a.jpg", "b.jpg"]},
    }
    summary = report.summary("read")
    assert summary.splitlines()[0] == "read: 8 dropped"
    assert "malformed JSON: 5 (first: f.json:1, f.json:2)" in summary
    assert DropReport().summary("s1") == "s1: nothing dropped"
    write_drop_reports(tmp_path / "r.json", {"raw": report})
    assert json.loads((tmp_path / "r.json").read_text())["raw"]["missing image"]["count"] == 3


def test_a_build_summary_says_which_config_was_not_written(tmp_path):
    """`build` from Gest-raw printed "s2: nothing dropped" although it wrote no s2 (session 25's README check)."""
    from gest_showcases.data.build import BuildResult

    reports = {"raw": DropReport(), "s1": DropReport(), "s2": DropReport()}
    written = BuildResult(tmp_path, {"raw": {"train": 3}, "s1": {"train": 2}}, reports)
    assert written.summary().splitlines() == ["raw: nothing dropped", "s1: nothing dropped", "s2: not written"]
