"""The self-contained HTML report: inlined photos and plots, tables from markdown and dicts, escaped text."""

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from gest_showcases.report import (
    ReportExample,
    ReportFigure,
    ReportTable,
    build_report,
    image_data_uri,
    parse_markdown_table,
    write_report,
)

TABLE3 = """| Method | P@3 | R@3 | F1@3 |
|---|---:|---:|---:|
| random | 8.10 | 9.00 | 8.53 |
| img+text | 21.40 | 25.00 | 23.06 |
"""


def jpeg(path, colour, size=(600, 400)):
    Image.new("RGB", size, colour).save(path)
    return path


def png(path):
    Image.fromarray(np.zeros((10, 20, 3), dtype=np.uint8)).save(path, format="PNG")
    return path


def decode_uri(uri):
    header, payload = uri.split(",", 1)
    return header, base64.b64decode(payload)


def test_image_data_uri_is_a_thumbnail_jpeg(tmp_path):
    uri = image_data_uri(jpeg(tmp_path / "a.jpg", (200, 30, 30)), thumbnail_size=64)
    header, data = decode_uri(uri)
    assert header == "data:image/jpeg;base64"
    image = Image.open(io.BytesIO(data))
    assert image.size == (64, 43)  # 600x400 shrunk to 64 on the long side, aspect kept
    assert abs(image.getpixel((30, 20))[0] - 200) < 8
    assert image_data_uri(tmp_path / "missing.jpg") is None
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    assert image_data_uri(tmp_path / "bad.jpg") is None
    assert image_data_uri(Image.new("RGB", (10, 10))).startswith("data:image/jpeg;base64,")


def test_parse_markdown_table():
    header, rows = parse_markdown_table(TABLE3)
    assert header == ["Method", "P@3", "R@3", "F1@3"]
    assert rows == [["random", "8.10", "9.00", "8.53"], ["img+text", "21.40", "25.00", "23.06"]]
    with pytest.raises(ValueError, match="no markdown table"):
        parse_markdown_table("just text")


def test_dict_tables_fill_missing_cells():
    table = ReportTable("Table 4", {"baseline": {"bleu_1": 0.123456, "meteor": 0.2}, "PC2L": {"bleu_1": 0.3}})
    assert table.cells() == (["", "bleu_1", "meteor"], [["baseline", "0.1235", "0.2"], ["PC2L", "0.3", "-"]])


def test_report_holds_examples_tables_plots_and_statement(tmp_path):
    photos = {name: jpeg(tmp_path / f"{name}.jpg", colour) for name, colour in
              [("sel", (10, 200, 10)), ("gt", (10, 10, 200)), ("hist", (200, 200, 10))]}  # fmt: skip
    example = ReportExample(
        user_id="u1",
        business_id="b1",
        photos=[("sel (log q 0.50)", photos["sel"]), ("gone", tmp_path / "missing.jpg")],
        explanation="The ramen broth was rich.",
        truth_text="Loved the <script>alert('x')</script> ramen & gyoza.",
        truth_photos=[("gt", photos["gt"])],
        history_texts=["Best pizza <b>ever</b>."],
        history_photos=[("hist", photos["hist"])],
        notes=["cold user (no history)"],
    )
    path = write_report(
        tmp_path / "out" / "report.html",
        "Demo report",
        examples=[example],
        tables=[
            ReportTable("Table 3", TABLE3, caption="K = 3"),
            ReportTable("Table 2", {"PC2L": {"BLEU-1": 12.5}}),
        ],
        figures=[ReportFigure("Figure 3: visual diversity", png(tmp_path / "fig3.png"), "intra-business")],
        statement="Trained on Gest-Synth.\n\nNumbers are what this run produced.",
        details={"dataset": "gest-synth (240 reviews)", "selector": "runs/selector-img+text"},
    )
    html = path.read_text()
    # Self-contained: no reference to a file or URL, every image inline.
    assert not re.search(r'src="(?!data:)', html)
    uris = re.findall(r'src="(data:[^"]+)"', html)
    assert len(uris) == 4  # 3 readable photos + 1 plot; the missing photo is a placeholder
    assert sum(uri.startswith("data:image/png") for uri in uris) == 1
    assert decode_uri(uris[-1])[1] == (tmp_path / "fig3.png").read_bytes()
    assert "unreadable photo" in html
    for text in ("The ramen broth was rich.", "cold user (no history)", "gest-synth (240 reviews)",
                 "Trained on Gest-Synth.", "Numbers are what this run produced.", "Figure 3: visual diversity"):  # fmt: skip
        assert text in html
    # Table cells, in order.
    assert re.search(r"<td>img\+text</td><td>21.40</td><td>25.00</td><td>23.06</td>", html)
    assert "<td>PC2L</td><td>12.5</td>" in html
    # Review text is escaped: no markup from the data.
    assert "<script>" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "<b>ever</b>" not in html and "&lt;b&gt;ever&lt;/b&gt;" in html
    assert "ramen &amp; gyoza" in html


def test_report_sections_are_optional_and_png_is_checked(tmp_path):
    html = build_report("Only a table", tables=[ReportTable("T", TABLE3)])
    assert "<h2>Results</h2>" in html and "Showcases" not in html and "Figures" not in html
    with pytest.raises(ValueError, match="is not a PNG"):
        build_report("x", figures=[ReportFigure("bad", jpeg(tmp_path / "x.jpg", (0, 0, 0)))])


@pytest.mark.slow  # matplotlib's first import
def test_figure3_and_figure6_pngs_of_the_plotting_functions_are_inlined(tmp_path):
    pytest.importorskip("matplotlib")
    from gest_showcases.features.diversity import plot_diversity
    from gest_showcases.metrics.plots import length_distribution_png

    diversity = {"Gest-Synth": {"intra_business": 0.61, "inter_user": 0.70, "intra_user": 0.55}}
    figure3 = plot_diversity(diversity, tmp_path / "figure3.png")
    figure6 = tmp_path / "figure6a.png"
    figure6.write_bytes(length_distribution_png({"PC2L": {"shares": [0.1, 0.5, 0.4, 0, 0, 0]}}))
    html = build_report(
        "Figures", figures=[ReportFigure("Figure 3", figure3), ReportFigure("Figure 6 (a)", figure6)]
    )
    uris = re.findall(r'src="(data:image/png;base64,[^"]+)"', html)
    assert [decode_uri(uri)[1] for uri in uris] == [figure3.read_bytes(), figure6.read_bytes()]
