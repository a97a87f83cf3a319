"""Self-contained HTML: showcases (selected photos, explanation, ground truth, history), result tables and plots.

`build_report` renders one HTML file with every image inlined as a base64 data URI, so it can be mailed or
opened anywhere; all text (reviews, explanations, table cells) is escaped.
"""

from gest_showcases.markdown_tables import markdown_cell, markdown_row, split_markdown_row

from .html import (
    ReportExample,
    ReportFigure,
    ReportTable,
    build_report,
    image_data_uri,
    parse_markdown_table,
    write_report,
)

__all__ = [
    "ReportExample",
    "ReportFigure",
    "ReportTable",
    "build_report",
    "image_data_uri",
    "markdown_cell",
    "markdown_row",
    "parse_markdown_table",
    "split_markdown_row",
    "write_report",
]
