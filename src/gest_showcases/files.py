"""Atomic file writes: a reader, or the next run after a crash, sees the old file or the new one, never half of one.

This module imports only the standard library, so every layer may use it.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import socket
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


# Temporary files name their writer: a tag of this machine and its process-id namespace (a container with its own
# pids shares a hostname, not pids), then its pid. A file that a killed writer left is removed by the next write of
# the same path under the same tag, never a live writer's, nor one another machine or namespace may be writing.
def _writer_tag() -> str:
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # Linux: "pid:[4026531836]"
    except OSError:
        namespace = ""
    return hashlib.sha256(f"{socket.gethostname()}|{namespace}".encode()).hexdigest()[:8]


_WRITER_TAG = _writer_tag()


@contextmanager
def writing_atomically(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write the whole file to; renamed over `path` when the block ends.

    The temporary name is unique (two processes writing the same file at once each rename a whole file; the last
    one wins) and starts with a dot; it is removed when the block fails, and by the next write of `path` when its
    writer was killed.
    """
    with writing_together([path]) as (temporary,):
        yield temporary


@contextmanager
def writing_together(paths: Iterable[str | Path]) -> Iterator[list[Path]]:
    """`writing_atomically` for files that describe one result (a table, its JSON, its figures): a temporary path
    beside each of `paths`, all renamed over them one after another when the block ends, in microseconds. A run
    stopped while they are written (a figure takes a while to render) leaves every previous file, never a new table
    beside old figures."""
    paths = [Path(path) for path in paths]
    temporaries = []
    try:
        for path in paths:
            remove_killed_writers_files(path.parent, path.name)
            # 64 random bits beside the pid: the name is no longer than a 128-bit one without the writer's tag.
            temporaries.append(path.with_name(f".{path.name}.{_WRITER_TAG}-{os.getpid()}-{uuid.uuid4().hex[:16]}.tmp"))
        yield temporaries
        unwritten = [path.name for temporary, path in zip(temporaries, paths, strict=True) if not temporary.exists()]
        if unwritten:  # checked before the first rename: else the set would be half replaced
            raise FileNotFoundError(f"nothing was written for {', '.join(unwritten)}: no file of the set replaced")
        for temporary, path in zip(temporaries, paths, strict=True):
            os.replace(temporary, path)
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)


def remove_killed_writers_files(folder: str | Path, name: str | None = None) -> None:
    """Remove the temporary files in `folder` (of the file `name`, or of any file) that `writing_atomically`
    left when its writer was killed: written under this machine's and namespace's tag by a process that is gone."""
    own = glob.escape(f".{name}.{_WRITER_TAG}-") if name is not None else f".*.{_WRITER_TAG}-"
    for leftover in glob.glob(glob.escape(f"{Path(folder)}{os.sep}") + own + "*.tmp"):
        pid = Path(leftover).name.rsplit(f".{_WRITER_TAG}-", 1)[-1].split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            Path(leftover).unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def holds_the_current_folder(folder: str | Path) -> bool:
    """Whether `folder` is the current folder or one above it: replacing it whole would leave this process (and the
    shell that started it) in a removed folder."""
    return Path.cwd().resolve().is_relative_to(Path(folder).resolve())


@contextmanager
def saving_into(folder: str | Path) -> Iterator[Path]:
    """A folder beside `folder` (`.NAME.saving`) to save a whole model into: weights, config, tokenizer, processor.

    When the block ends, the staging folder takes `folder`'s place in two renames, with the files of `folder` that
    this save did not write (your notes, an earlier metrics file) hard-linked into it first. A run stopped while
    saving leaves the previous folder whole, never new weights beside an old tokenizer; one stopped between the two
    renames leaves it as `.NAME.previous`, which the next save (or run) puts back. The staging folder is removed
    when the block fails, and one a killed run left is replaced by the next save. The folder keeps its permissions
    and its empty subfolders.

    Raises:
        ValueError: when `folder` is the current folder or holds it (it would be renamed away under the process).
    """
    folder = Path(folder)
    if folder.is_symlink():  # the folder it names is the one to replace, not the link
        folder = folder.resolve()
    if holds_the_current_folder(folder):
        raise ValueError(f"{folder} is the current folder or holds it: save into a subfolder")
    folder = folder.absolute()
    staging = folder.with_name(f".{folder.name}.saving")
    previous = folder.with_name(f".{folder.name}.previous")
    if previous.is_dir() and not folder.exists():  # a save killed between its two renames: the old folder is whole
        os.rename(previous, folder)
    shutil.rmtree(previous, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
        if folder.is_dir():
            for parent, folders, names in os.walk(folder):
                for name in folders:  # the empty ones too, with their permissions
                    source = Path(parent) / name
                    target = staging / source.relative_to(folder)
                    if os.path.lexists(target):
                        continue
                    if source.is_symlink():  # a link to a folder is kept as the link
                        target.parent.mkdir(parents=True, exist_ok=True)
                        os.link(source, target, follow_symlinks=False)
                    else:
                        target.mkdir(parents=True)
                        shutil.copymode(source, target)
                for name in names:
                    source = Path(parent) / name
                    target = staging / source.relative_to(folder)
                    if not os.path.lexists(target):
                        target.parent.mkdir(parents=True, exist_ok=True)
                        os.link(source, target, follow_symlinks=False)
            shutil.copymode(folder, staging)  # a private folder stays private
            os.rename(folder, previous)
        os.rename(staging, folder)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_text_atomically(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` through a temporary file beside it (`writing_atomically`). Returns `path`."""
    with writing_atomically(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


__all__ = [
    "holds_the_current_folder",
    "saving_into",
    "write_text_atomically",
    "writing_atomically",
    "writing_together",
]
