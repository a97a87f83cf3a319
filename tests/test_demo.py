"""`gest-showcases demo --quick` end to end: every stage runs and the report holds the photos, texts and tables."""

import html
import json
import re

import pytest

from demo_output import quick_demo_output, quick_demo_stdout
from gest_showcases.report import parse_markdown_table


def _html_rows(page: str, title: str) -> list[list[str]]:
    """Cells of the HTML table under the `<h3>` whose text starts with `title`."""
    section = page.split(f"<h3>{title}", 1)[1].split("</table>", 1)[0]
    return [
        [html.unescape(cell) for cell in re.findall(r"<t[hd]>(.*?)</t[hd]>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", section, flags=re.S)
    ]


@pytest.mark.slow
def test_quick_demo_writes_the_report():
    # The one quick demo of the test session (the README-snippet and card tests read it too), run in its folder.
    output = quick_demo_output()
    report = output / "report.html"
    assert f"Report: {report}" in quick_demo_stdout()
    page = report.read_text(encoding="utf-8")

    # Self-contained: photos and plots inlined, nothing fetched.
    assert len(re.findall(r'<img src="data:image/jpeg;base64,', page)) >= 3
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 3  # Figures 3, 6a, 6b
    assert not re.search(r'src="(?!data:)', page)

    # The showcases: generated texts of PC2L and the ground-truth reviews of the first test examples.
    generations = [json.loads(line) for line in (output / "generations.jsonl").read_text().splitlines()]
    systems = {record["system"] for record in generations}
    assert systems == {
        "PC2L", "PC2L, text target, lambda 0.05", "CCL on likelihoods, entity negatives", "PC2L, separate normalisers",
        "Baseline (CE only)"
    }  # fmt: skip
    shown = [record for record in generations if record["system"] == "PC2L"][:4]
    assert page.count('<p class="explanation">') == 4  # --num_examples' default
    for record in shown:
        assert f'<p class="explanation">{html.escape(record["generated"])}</p>' in page
        user, business = record["id"].split("_")  # review_id = f"{user_id}_{business_id}"
        assert f"User {user} &middot; business {business}" in page
    # Each showcase's photos are ones the selector picked among the business's candidates (3 = K).
    assert all(len(record["pic_ids"]) == 3 for record in generations)

    # Tables 2, 3 and 4 in the report are the run's own numbers.
    for title in ("Table 2", "Table 3", "Table 4"):
        assert f"<h3>{title}" in page
    table2 = _html_rows(page, "Table 2")
    header2, rows2 = parse_markdown_table((output / "evaluation" / "table2.md").read_text())
    assert table2 == [header2, *rows2]
    assert [row[0] for row in rows2] == [
        "PC2L", "PC2L, text target, lambda 0.05", "CCL on likelihoods, entity negatives", "PC2L, separate normalisers",
        "Baseline (CE only)", "GT"
    ]  # fmt: skip
    # CLIP-Align by the classifier with the product term, right after the paper's CLIP-Align, for GT too.
    assert header2[header2.index("CLIP-Align") + 1] == "CLIP-Align (t*v)"
    assert all(re.fullmatch(r"\d+\.\d\d", row[header2.index("CLIP-Align (t*v)")]) for row in rows2)
    # The interval table says whether each PC2L differs from the baseline: paired rows, over the same resamples.
    intervals = _html_rows(page, "Table 2 with 95% intervals")
    assert [row[0] for row in intervals[1:]] == [
        "PC2L", "PC2L, text target, lambda 0.05", "CCL on likelihoods, entity negatives", "PC2L, separate normalisers",
        "Baseline (CE only)", "GT",
        "PC2L - Baseline (CE only) (paired)", "PC2L, text target, lambda 0.05 - Baseline (CE only) (paired)",
        "CCL on likelihoods, entity negatives - Baseline (CE only) (paired)",
        "PC2L, separate normalisers - Baseline (CE only) (paired)",
    ]  # fmt: skip
    assert all(re.fullmatch(r"[+-]\d+\.\d \[-?\d+\.\d, -?\d+\.\d\] \(A>B \d+\.\d%\)", cell) for cell in intervals[-1][1:3])
    table3 = _html_rows(page, "Table 3")
    assert [row[0] for row in table3[1:]] == ["random", "history-cosine", "img", "text", "img+text"]
    results3 = json.loads((output / "selector" / "table3.json").read_text())["results"]
    assert float(table3[5][1]) == pytest.approx(results3["img+text"]["precision@3"], abs=0.006)
    table4 = _html_rows(page, "Table 4")
    assert table4[0] == ["Method", "Image loss", "Review loss", "BLEU-1", "Distinct-2", "CLIP-Align"]
    # Table 4's cells are Table 2's for the same system and metric.
    by_system = {row[0]: dict(zip(header2, row, strict=True)) for row in rows2}
    for row in table4[1:]:
        assert row[3:] == [by_system[row[0]][name] for name in ("BLEU-1", "Distinct-2", "CLIP-Align")]
    assert {tuple(row[:3]) for row in table4[1:]} == {
        ("Baseline (CE only)", "none", "none"),
        ("PC2L", "ccl", "pcl"),
        ("PC2L, text target, lambda 0.05", "ccl", "pcl"),
        ("CCL on likelihoods, entity negatives", "ccl", "none"),
        ("PC2L, separate normalisers", "ccl", "pcl"),
    }

    # Every stage left its checkpoint behind, loadable the usual way.
    for folder in ("clip", "gpt2", "pc2l", "pc2l_text", "ccl_entity", "pc2l_separate", "baseline",
                   "selector/selector-img+text", "classifier"):  # fmt: skip
        assert (output / folder / "config.json").is_file(), folder
    assert json.loads((output / "pc2l_separate" / "config.json").read_text())["contrastive_normaliser"] == "separate"
    assert json.loads((output / "pc2l_text" / "config.json").read_text())["contrastive_target"] == "text"
    entity = json.loads((output / "ccl_entity" / "config.json").read_text())
    assert (entity["contrastive_score"], entity["likelihood_image_negatives"], entity["review_contrastive"]) == (
        "likelihood", "entity", "none"
    )  # fmt: skip
    assert json.loads((output / "classifier-interaction" / "config.json").read_text())["interaction"] is True
    assert json.loads((output / "classifier" / "config.json").read_text())["interaction"] is False
    assert "What was run" in page


def test_table4_prints_an_unscored_metric_as_a_dash_not_nan():
    # CLIP-Align with no photo to score is NaN (nothing scored); the demo's Table 4 prints "-" as Table 2 does.
    from gest_showcases.commands.demo import SYSTEMS, table4

    rows = {name: {"bleu_1": 0.25, "distinct_2": 0.5, "clip_align": float("nan")} for name in SYSTEMS.values()}
    header, body = parse_markdown_table(table4(rows))
    table = [dict(zip(header, row, strict=True)) for row in body]
    assert [row["CLIP-Align"] for row in table] == ["-"] * len(SYSTEMS)
    assert {row["BLEU-1"] for row in table} == {"25.00"}
