import os
import stat

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


def test_saving_into_moves_a_whole_save_in_or_leaves_the_previous_one(tmp_path):
    """`saving_into`: train-clip and distill saved weights, tokenizer and processor straight into their folder, so a
    run stopped between them (or a rerun into a finished folder) paired new weights with an old tokenizer."""
    from gest_showcases.files import saving_into

    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "model.safetensors").write_text("old weights")
    (folder / "tokenizer.json").write_text("old tokenizer")
    (folder / "notes.txt").write_text("yours")
    with pytest.raises(KeyboardInterrupt), saving_into(folder) as staging:
        (staging / "model.safetensors").write_text("new weights")
        raise KeyboardInterrupt  # stopped before the tokenizer was saved
    assert (folder / "model.safetensors").read_text() == "old weights"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip"]  # no staging folder left
    (tmp_path / ".clip.saving").mkdir()  # what a SIGKILL leaves: replaced by the next save
    (tmp_path / ".clip.saving" / "stale.bin").write_text("stale")
    with saving_into(folder) as staging:
        (staging / "model.safetensors").write_text("new weights")
        (staging / "sub").mkdir()
        (staging / "sub" / "tokenizer.json").write_text("new tokenizer")
    assert (folder / "model.safetensors").read_text() == "new weights"
    assert (folder / "sub" / "tokenizer.json").read_text() == "new tokenizer"
    assert (folder / "notes.txt").read_text() == "yours" and not (folder / "stale.bin").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip"]
    with saving_into(tmp_path / "new" / "classifier") as staging:  # a folder not there yet is made
        (staging / "config.json").write_text("{}")
    assert (tmp_path / "new" / "classifier" / "config.json").read_text() == "{}"
    # Killed between the two renames (session 26's audit: with files moved one by one, a kill there paired new
    # weights with the old tokenizer, and every command loaded the mix): the previous folder comes back whole.
    folder.rename(tmp_path / ".clip.previous")
    with saving_into(folder) as staging:
        assert (folder / "model.safetensors").read_text() == "new weights"  # put back before this save
        (staging / "model.safetensors").write_text("newest weights")
    assert (folder / "model.safetensors").read_text() == "newest weights"
    assert (folder / "sub" / "tokenizer.json").read_text() == "new tokenizer"  # not in this save: kept
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip", "new"]


def test_saving_into_a_link_to_a_folder_replaces_the_folder_it_names(tmp_path):
    from gest_showcases.files import saving_into

    (tmp_path / "disk" / "clip").mkdir(parents=True)
    (tmp_path / "disk" / "clip" / "model.safetensors").write_text("old")
    (tmp_path / "clip").symlink_to(tmp_path / "disk" / "clip")
    with saving_into(tmp_path / "clip") as staging:
        (staging / "model.safetensors").write_text("new")
    assert (tmp_path / "clip").is_symlink() and (tmp_path / "disk" / "clip" / "model.safetensors").read_text() == "new"
    assert sorted(path.name for path in (tmp_path / "disk").iterdir()) == ["clip"]


def test_saving_into_keeps_the_folders_permissions_empty_subfolders_and_links(tmp_path, monkeypatch):
    """Session 28's audit: a private output folder came back world-readable and its empty subfolders were gone."""
    from gest_showcases.files import saving_into

    folder = tmp_path / "mine"
    (folder / "empty").mkdir(parents=True)
    (folder / "private").mkdir()
    (folder / "private" / "a.txt").write_text("yours")
    (tmp_path / "elsewhere").mkdir()
    (folder / "linked").symlink_to(tmp_path / "elsewhere")
    (folder / "private").chmod(0o700)
    folder.chmod(0o700)
    with saving_into(folder) as staging:
        (staging / "config.json").write_text("{}")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "private").stat().st_mode) == 0o700
    assert (folder / "empty").is_dir() and (folder / "private" / "a.txt").read_text() == "yours"
    assert (folder / "linked").is_symlink() and (folder / "linked").resolve() == tmp_path / "elsewhere"
    monkeypatch.chdir(folder / "private")  # the folder holds the current one: it would be renamed away
    with pytest.raises(ValueError, match="current folder"), saving_into(folder):
        pass
    monkeypatch.chdir(folder)
    with pytest.raises(ValueError, match="current folder"), saving_into("."):
        pass
    assert (folder / "config.json").is_file()


def test_a_write_removes_the_temporary_files_of_killed_writers_only(tmp_path):
    import subprocess
    import sys

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(finished.stdout)  # a process that has exited: its temporary file is a leftover
    host = files._WRITER_TAG
    killed = tmp_path / f".out.json.{host}-{dead}-0123.tmp"
    live = tmp_path / f".out.json.{host}-{os.getpid()}-4567.tmp"  # a writer still running
    elsewhere = tmp_path / f".out.json.0000ffff-{dead}-89ab.tmp"  # another machine's writer
    other_file = tmp_path / f".other.json.{host}-{dead}-cdef.tmp"
    for path in (killed, live, elsewhere, other_file):
        path.write_text("half")
    write_text_atomically(tmp_path / "out.json", "{}")
    assert (tmp_path / "out.json").read_text() == "{}"
    assert not killed.exists()
    assert live.exists() and elsewhere.exists() and other_file.exists()


def test_the_writer_tag_differs_between_pid_namespaces_of_one_machine(monkeypatch):
    """The diff review (session 27): containers sharing a hostname and a folder, each with its own pids, deleted each
    other's live temporary files (a pid not running here may be running in the other namespace)."""
    monkeypatch.setattr(os, "readlink", lambda path: "pid:[4026531836]")
    first = files._writer_tag()
    monkeypatch.setattr(os, "readlink", lambda path: "pid:[4026532999]")
    assert files._writer_tag() != first and len(first) == 8


def test_the_temporary_name_is_about_as_long_as_before_the_writer_tag(tmp_path):
    # `.NAME.<32 hex>.tmp` before: 38 characters beside the name. Now `.NAME.<tag 8>-<pid>-<16 hex>.tmp`: 32 plus the
    # pid's digits, so no longer for pids up to 6 digits and one character longer for 7 (the diff review found the
    # first version 9-17 characters longer: names near the file system's limit stopped fitting).
    with files.writing_atomically(tmp_path / "out.json") as temporary:
        assert len(temporary.name) - len("out.json") == 32 + len(str(os.getpid()))
        temporary.write_text("{}")
    assert (tmp_path / "out.json").read_text() == "{}"


def test_writing_together_replaces_every_file_or_none(tmp_path):
    """Session 29's review: a writer that wrote nothing for one file of the set (a stubbed figure) made the renames
    fail half way, after the first files were replaced."""
    paths = [tmp_path / "table.md", tmp_path / "figure.png"]
    for path in paths:
        path.write_text("previous")
    with (
        pytest.raises(FileNotFoundError, match="nothing was written for figure.png"),
        files.writing_together(paths) as (table, _figure),
    ):
        table.write_text("new")
    assert [path.read_text() for path in paths] == ["previous", "previous"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["figure.png", "table.md"]
    with files.writing_together(paths) as temporaries:
        for temporary in temporaries:
            temporary.write_text("new")
    assert [path.read_text() for path in paths] == ["new", "new"]
