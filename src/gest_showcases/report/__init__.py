"""Self-contained HTML: showcases (selected photos, explanation, ground truth, history), result tables and plots.

`build_report` renders one HTML file with every image inlined as a base64 data URI, so it can be mailed or
opened anywhere; all text (reviews, explanations, table cells) is escaped.
"""

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
    "parse_markdown_table",
    "write_report",
]
