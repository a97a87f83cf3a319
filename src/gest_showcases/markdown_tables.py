"""Markdown pipe tables whose cells cannot break them: one writer and one reader for every table.

A cell is user data (a system name from a generations file, a dataset name, ...): a `|` in it would
start a new column and a line break a new row, shifting every value after it. `markdown_cell` puts
every run of whitespace (line breaks included) on one space and escapes `\\` and `|` the GitHub
Flavored Markdown way (`\\\\`, `\\|`), so a renderer shows the text unchanged; `split_markdown_row`
undoes exactly that, so `parse_markdown_table(table)` gives back the cells that were written.
"""

from __future__ import annotations

from collections.abc import Iterable

_ESCAPED = {"\\": "\\\\", "|": "\\|"}


def markdown_cell(value: object) -> str:
    """`value` as the text of one table cell: on one line, with `\\` and `|` escaped."""
    text = " ".join(str(value).split())  # str.split() also breaks on \\r, \\x0b, \\x85, \\u2028, ...
    return "".join(_ESCAPED.get(char, char) for char in text)


def markdown_row(cells: Iterable[object]) -> str:
    """One table line, `| a | b |`, every cell through `markdown_cell`."""
    return "| " + " | ".join(markdown_cell(cell) for cell in cells) + " |"


def split_markdown_row(line: str) -> list[str]:
    """The cells of one table line, stripped and unescaped (the inverse of `markdown_row`).

    Cells are split at `|` that no backslash escapes; the pipes opening and closing the line are
    optional, as in GitHub Flavored Markdown.
    """
    cells, current, chars = [], [], iter(line.strip())
    closed = False  # whether the line ends with an unescaped pipe
    for char in chars:
        closed = char == "|"
        if char == "\\":
            following = next(chars, "")
            # Only the two escapes `markdown_cell` writes are undone; any other backslash is text.
            current.append(following if following in _ESCAPED else char + following)
        elif char == "|":
            cells.append("".join(current))
            current = []
        else:
            current.append(char)
    if not closed:
        cells.append("".join(current))
    if line.strip().startswith("|"):
        cells = cells[1:]
    return [cell.strip() for cell in cells]
