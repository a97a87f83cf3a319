"""README.md's Python snippets run verbatim: every ```python block, each in a fresh process, offline, from a folder
holding the outputs of `gest-showcases demo --quick --output_dir demo-output` (the paths the snippets name), made
once per test session.

A block that cannot run here (it needs the Hub, or files the demo does not make) must say so in the README: a line
`<!-- skip-test: why -->` right before its fence. Such blocks are listed, each must give its reason, and there may
be at most `MAX_SKIPPED` of them; every other block runs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo_output import quick_demo_output

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```python\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
SKIP_MARK = re.compile(r"<!--\s*skip-test\b:?(.*?)-->")
MAX_SKIPPED = 1


@dataclass
class Snippet:
    line: int  # of the opening fence, 1-based
    code: str
    skip_reason: str | None  # None: it runs; "" would be a mark without a reason

    @property
    def name(self) -> str:
        return f"README.md:{self.line}"


def python_snippets(text: str) -> list[Snippet]:
    """The ```python blocks of a markdown text, each with the reason of a `skip-test` mark on the line before it."""
    snippets = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rpartition("\n")[2]
        mark = SKIP_MARK.fullmatch(before.strip())
        reason = mark.group(1).strip() if mark else None
        snippets.append(Snippet(text.count("\n", 0, match.start()) + 1, match.group(1), reason))
    return snippets


SNIPPETS = python_snippets(README.read_text(encoding="utf-8"))
RUNNABLE = [snippet for snippet in SNIPPETS if snippet.skip_reason is None]


def test_snippet_extraction():
    text = (
        "Intro\n\n```python\nprint(1)\n```\n\n```bash\necho no\n```\n\n<!-- skip-test: needs the Hub repo ORG/x -->\n"
        "```python\nimport x\n```\n<!-- skip-test -->\n```python\nprint(3)\n\n```\n"
    )
    assert [(s.line, s.code, s.skip_reason) for s in python_snippets(text)] == [
        (3, "print(1)\n", None),
        (12, "import x\n", "needs the Hub repo ORG/x"),
        (16, "print(3)\n\n", ""),
    ]


def test_the_readme_runs_its_snippets_and_skips_few_each_for_a_reason():
    assert RUNNABLE, "README.md has no runnable ```python block"
    skipped = {snippet.name: snippet.skip_reason for snippet in SNIPPETS if snippet.skip_reason is not None}
    assert len(skipped) <= MAX_SKIPPED, f"too many README snippets marked skip-test: {skipped}"
    assert all(skipped.values()), f"a skip-test mark without its reason: {skipped}"


@pytest.mark.slow
@pytest.mark.parametrize("snippet", RUNNABLE, ids=lambda snippet: snippet.name)
def test_readme_snippet_runs_verbatim(snippet, tmp_path):
    (tmp_path / "demo-output").symlink_to(quick_demo_output(), target_is_directory=True)
    result = subprocess.run(
        [sys.executable, "-c", snippet.code], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"{snippet.name} failed:\n{result.stderr[-4000:]}"
