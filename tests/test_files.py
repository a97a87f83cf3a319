import os

import pytest

from gest_showcases import files
from gest_showcases.files import write_text_atomically


def test_writes_the_text_and_leaves_no_temporary(tmp_path):
    path = write_text_atomically(tmp_path / "table.md", "| a |\n| é |\n")
    assert path.read_text(encoding="utf-8") == "| a |\n| é |\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.md"]


def test_a_failed_write_keeps_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    path.write_text("old", encoding="utf-8")

    def crash(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomically(path, "new")
    assert path.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # the temporary file is gone


def test_replaces_an_existing_file_by_rename(tmp_path, monkeypatch):
    path = tmp_path / "report.html"
    path.write_text("old", encoding="utf-8")
    renames = []
    real = os.replace
    monkeypatch.setattr(files.os, "replace", lambda a, b: (renames.append((a, b)), real(a, b)))
    write_text_atomically(path, "new")
    assert path.read_text(encoding="utf-8") == "new"
    assert len(renames) == 1 and renames[0][1] == path and renames[0][0].parent == tmp_path
