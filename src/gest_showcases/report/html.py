"""One self-contained HTML report: showcases, tables and plots, every image inlined as a data URI.

Sections, each optional: a plain statement of what was run and on what data (with a key/value table of
details), the showcases of several test users (selected photos, generated explanation, ground-truth
review and photos, the user's history), result tables (Table 2/3/4 style, from markdown or from
`{row: {column: value}}` dicts), and PNG figures (Figure 3/6 style, e.g. from
`features.diversity.plot_diversity` and `metrics.paper_tables.write_evaluation`).

The template is Jinja2 with autoescaping on: review texts and explanations are data, never markup.
Photos become JPEG thumbnails (longest side `thumbnail_size`); plots are inlined as the PNG files are.
"""

from __future__ import annotations

import base64
import io
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from PIL import Image

from gest_showcases.data.images import open_image
from gest_showcases.files import write_text_atomically
from gest_showcases.markdown_tables import split_markdown_row

if TYPE_CHECKING:
    from gest_showcases.pipeline import Showcase

logger = logging.getLogger(__name__)

PhotoSource = str | Path | Image.Image
_UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
_SEPARATOR_CELL = re.compile(r"^:?-+:?$")


def image_data_uri(source: PhotoSource, thumbnail_size: int = 320) -> str | None:
    """A `data:image/jpeg;base64,...` URI of a photo (file or PIL image) shrunk to `thumbnail_size` on its
    longest side; None when the file is missing or unreadable."""
    try:
        # A file goes through the package's one image opener: a decompression bomb or an image over
        # the pixel limit is refused from its header, before gigabytes are decoded.
        image = source.convert("RGB") if isinstance(source, Image.Image) else open_image(source)
        with image:
            image.thumbnail((thumbnail_size, thumbnail_size))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=85)
    except _UNREADABLE as error:
        logger.warning("photo %s left out of the report: %s", source, error)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def png_data_uri(path: str | Path) -> str:
    """The PNG file as a `data:image/png;base64,...` URI (bytes unchanged)."""
    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG"):
        raise ValueError(f"{path} is not a PNG file")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def parse_markdown_table(text: str) -> tuple[list[str], list[list[str]]]:
    """A pipe table (`| a | b |` lines, one `|---|` rule) -> (header cells, body rows); ValueError if none.

    Cells are unescaped as `markdown.split_markdown_row` does, so escaped `|` stay inside their cell.
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip().startswith("|")]
    rows = [split_markdown_row(line) for line in lines]
    rows = [row for row in rows if not all(_SEPARATOR_CELL.match(cell) for cell in row)]
    if not rows:
        raise ValueError(f"no markdown table in {text[:80]!r}")
    return rows[0], rows[1:]


def _format(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclass
class ReportTable:
    """A result table.

    Args:
        title (`str`): e.g. "Table 3: image selection (K = 3)".
        content (`str` or `Mapping[str, Mapping[str, object]]`): a markdown pipe table, or rows by name with
            their values by column (floats printed with 4 significant digits, missing cells as "-").
        caption (`str`, *optional*): a sentence under the table.
    """

    title: str
    content: str | Mapping[str, Mapping[str, object]]
    caption: str = ""

    def cells(self) -> tuple[list[str], list[list[str]]]:
        if isinstance(self.content, str):
            return parse_markdown_table(self.content)
        columns = list(dict.fromkeys(column for row in self.content.values() for column in row))
        body = [
            [name, *(_format(row.get(column, "-")) for column in columns)]
            for name, row in self.content.items()
        ]
        return ["", *columns], body


@dataclass
class ReportFigure:
    """A PNG plot (`path`) with a title and an optional caption."""

    title: str
    path: str | Path
    caption: str = ""


@dataclass
class ReportExample:
    """One showcase shown in full.

    Args:
        user_id (`str`), business_id (`str`): who and where.
        photos (`list[tuple[str, PhotoSource]]`): the selected photos as (caption, file or PIL image).
        explanation (`str`): the generated explanation.
        truth_text (`str`, *optional*): the review the user actually wrote.
        truth_photos (`list[tuple[str, PhotoSource]]`, *optional*): the photos they actually posted.
        history_texts (`list[str]`, *optional*), history_photos (`list[tuple[str, PhotoSource]]`, *optional*):
            the user's other reviews and photos, what the models were given.
        notes (`list[str]`, *optional*): warnings of the pipeline (cold user, skipped photos, ...).
    """

    user_id: str
    business_id: str
    photos: list[tuple[str, PhotoSource]]
    explanation: str
    truth_text: str = ""
    truth_photos: list[tuple[str, PhotoSource]] = field(default_factory=list)
    history_texts: list[str] = field(default_factory=list)
    history_photos: list[tuple[str, PhotoSource]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_showcase(cls, showcase: Showcase, **fields) -> ReportExample:
        """From a pipeline `Showcase` (photos captioned with id and log relevance); `fields` add the rest."""
        photos = [
            (f"{photo.id} (log q {photo.score:.2f})", photo.image or photo.path) for photo in showcase.photos
        ]
        defaults = {"user_id": showcase.user_id or "", "business_id": showcase.business_id or ""}
        return cls(
            photos=photos,
            explanation=showcase.explanation,
            notes=list(showcase.warnings),
            **(defaults | fields),
        )


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; padding: 0 1.5rem; max-width: 72rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2.2rem; }
.example { border: 1px solid #ddd; border-radius: 8px; padding: 1rem 1.2rem; margin: 1.2rem 0; }
.photos { display: flex; flex-wrap: wrap; gap: .6rem; }
figure { margin: 0; } figure img { max-height: 180px; border-radius: 4px; display: block; }
figcaption { font-size: .78rem; color: #666; }
.explanation { font-size: 1.1rem; background: #f4f8ff; border-left: 4px solid #4a7bd0; padding: .5rem .8rem; }
.truth { background: #f6f6f6; padding: .5rem .8rem; }
.notes { color: #9a5b00; font-size: .85rem; }
table { border-collapse: collapse; margin: .6rem 0; } th, td { border: 1px solid #ccc; padding: .25rem .6rem; }
td { text-align: right; } td:first-child, th:first-child, .details td { text-align: left; }
.plot img { max-width: 100%; } .missing { color: #999; font-style: italic; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
{% if statement %}<h2>What was run</h2>
{% for paragraph in statement.split("\\n\\n") %}<p>{{ paragraph }}</p>
{% endfor %}{% endif %}
{% if details %}<table class="details">{% for key, value in details.items() %}
<tr><th>{{ key }}</th><td>{{ value }}</td></tr>{% endfor %}
</table>{% endif %}
{% macro gallery(photos) %}<div class="photos">{% for caption, uri in photos %}<figure>
{% if uri %}<img src="{{ uri }}" alt="{{ caption }}">{% else %}<span class="missing">unreadable photo</span>{% endif %}
<figcaption>{{ caption }}</figcaption></figure>{% endfor %}</div>{% endmacro %}
{% if examples %}<h2>Showcases</h2>{% endif %}
{% for example in examples %}<section class="example">
<h3>User {{ example.user_id }} &middot; business {{ example.business_id }}</h3>
<h4>Selected photos</h4>
{{ gallery(example.photos) }}
<h4>Generated explanation</h4>
<p class="explanation">{{ example.explanation }}</p>
{% if example.notes %}<ul class="notes">{% for note in example.notes %}<li>{{ note }}</li>{% endfor %}</ul>{% endif %}
{% if example.truth_text or example.truth_photos %}<h4>Ground truth: what the user wrote and posted</h4>
{% if example.truth_text %}<p class="truth">{{ example.truth_text }}</p>{% endif %}
{{ gallery(example.truth_photos) }}{% endif %}
{% if example.history_texts or example.history_photos %}<h4>The user's history</h4>
<ul>{% for text in example.history_texts %}<li>{{ text }}</li>{% endfor %}</ul>
{{ gallery(example.history_photos) }}{% endif %}
</section>
{% endfor %}
{% if tables %}<h2>Results</h2>{% endif %}
{% for table in tables %}<h3>{{ table.title }}</h3>
<table><tr>{% for cell in table.header %}<th>{{ cell }}</th>{% endfor %}</tr>
{% for row in table.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% if table.caption %}<p>{{ table.caption }}</p>{% endif %}
{% endfor %}
{% if figures %}<h2>Figures</h2>{% endif %}
{% for figure in figures %}<figure class="plot"><h3>{{ figure.title }}</h3><img src="{{ figure.uri }}" alt="{{ figure.title }}">
{% if figure.caption %}<figcaption>{{ figure.caption }}</figcaption>{% endif %}</figure>
{% endfor %}
</body>
</html>
"""


def _environment() -> jinja2.Environment:
    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def build_report(
    title: str,
    examples: Sequence[ReportExample] = (),
    tables: Sequence[ReportTable] = (),
    figures: Sequence[ReportFigure] = (),
    statement: str = "",
    details: Mapping[str, object] | None = None,
    thumbnail_size: int = 320,
) -> str:
    """Render the report as one HTML string (see the module docstring).

    Args:
        title (`str`): the page title.
        examples (`Sequence[ReportExample]`): showcases to show in full.
        tables (`Sequence[ReportTable]`), figures (`Sequence[ReportFigure]`): results.
        statement (`str`): what was run and on what data, plain text (blank lines separate paragraphs).
        details (`Mapping[str, object]`, *optional*): key facts (dataset, checkpoints, commands, timings).
        thumbnail_size (`int`): longest side of the inlined photos, in pixels.
    """

    def gallery(photos):
        return [(caption, image_data_uri(source, thumbnail_size)) for caption, source in photos]

    rendered_examples = [
        {
            "user_id": example.user_id,
            "business_id": example.business_id,
            "photos": gallery(example.photos),
            "explanation": example.explanation,
            "notes": example.notes,
            "truth_text": example.truth_text,
            "truth_photos": gallery(example.truth_photos),
            "history_texts": example.history_texts,
            "history_photos": gallery(example.history_photos),
        }
        for example in examples
    ]
    rendered_tables = []
    for table in tables:
        header, rows = table.cells()
        rendered_tables.append(
            {"title": table.title, "header": header, "rows": rows, "caption": table.caption}
        )
    rendered_figures = [
        {"title": figure.title, "uri": png_data_uri(figure.path), "caption": figure.caption}
        for figure in figures
    ]
    return (
        _environment()
        .from_string(_TEMPLATE)
        .render(
            title=title,
            statement=statement,
            details=dict(details or {}),
            examples=rendered_examples,
            tables=rendered_tables,
            figures=rendered_figures,
        )
    )


def write_report(path: str | Path, title: str, **kwargs) -> Path:
    """`build_report(title, **kwargs)` written to `path` (UTF-8); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, build_report(title, **kwargs))
    logger.info("wrote the report %s (%.1f kB)", path, path.stat().st_size / 1024)
    return path


__all__ = [
    "ReportExample",
    "ReportFigure",
    "ReportTable",
    "build_report",
    "image_data_uri",
    "parse_markdown_table",
    "png_data_uri",
    "write_report",
]
