"""`gest-showcases serve` against a hostile dataset and a careless launch (issue 13, item 2):

- every stored image path goes through the one path policy: a row pointing outside the dataset and
  `--images` folders stops the server at startup, naming the review;
- Gradio shares exactly the folders of the dataset's photos: over real HTTP, `/etc/passwd` and files
  beside the photos answer 403, a photo 200; a folder that would share more (`/`, home, one that holds
  the dataset) is refused;
- `--auth USER:PASSWORD` puts Gradio's login in front of the page, `/config` and the files; a bind beyond
  localhost is warned about, louder without a login.
"""

import json
import logging
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from gest_showcases.app import (
    DatasetCatalog,
    ServeArguments,
    ShowcaseApp,
    check_can_listen,
    exposure_warning,
    launch_options,
    parse_auth,
    url_host,
)
from gest_showcases.cli import main as cli_main
from gest_showcases.commands.showcase import PipelineArguments
from gest_showcases.errors import InputError
from tiny_assets import rewrite_s1_rows as rewrite
from tiny_assets import write_built_dataset, write_jpegs

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read when gradio is imported: no network

REVIEWS = [
    # review_id, user, business, text, pics, split
    ("u1_b1", "u1", "b1", "Great ramen! The broth was rich.", ["pic0", "pic1"], "train"),
    ("u1_b2", "u1", "b2", "Tiny place with good dumplings.", ["pic2"], "train"),
    ("u2_b1", "u2", "b1", "Cozy room with candles.", ["pic3"], "test"),
]


def make_dataset(root: Path, images: Path) -> Path:
    """A built dataset folder `root/dataset` whose photos `pic0..pic3` are in `images`."""
    write_jpegs(images, [f"pic{i}" for i in range(4)], size=(8, 8))
    reviews = REVIEWS
    dataset = write_built_dataset(root / "dataset", images, reviews)
    if images.parent != root:  # write_built_dataset stores `../<name>/`: point at where `images` really is
        relative = os.path.relpath(images, dataset)
        rewrite(dataset, lambda row: row | {
            key: [f"{relative}/{Path(p).name}" for p in row[key]] for key in ("pic_paths", "candidate_paths")
        })  # fmt: skip
    return dataset


@pytest.fixture
def dataset(tmp_path):
    """A dataset in the builder's usual layout: `dataset/` and its photos in the sibling `images/`."""
    return make_dataset(tmp_path, tmp_path / "images")


# -- the path policy at startup ---------------------------------------------------------------------


@pytest.mark.parametrize("stored", ["/etc/x.jpg", "../images/../../../../../../etc/x.jpg"])
def test_a_row_pointing_outside_the_dataset_stops_the_server_at_startup(dataset, tmp_path, stored):
    def hostile(row):
        if row["review_id"] != "u1_b2":
            return row
        return row | {"candidate_paths": [stored, *row["candidate_paths"][1:]]}

    rewrite(dataset, hostile)
    with pytest.raises(InputError, match=rf"review 'u1_b2': image path '{stored}'"):
        DatasetCatalog(dataset, "s1", images=tmp_path / "images")
    # The command: one line, exit 2, before any model is loaded (the checkpoints need not exist).
    argv = ["serve", "--dataset", str(dataset), "--images", str(tmp_path / "images"),
            "--selector", "none", "--generator", "none", "--clip_model", "none"]  # fmt: skip
    assert cli_main(argv) == 2


def test_photos_outside_the_dataset_need_images(dataset, tmp_path):
    with pytest.raises(InputError, match="leads outside the dataset folder.*pass --images"):
        DatasetCatalog(dataset, "s1")
    catalog = DatasetCatalog(dataset, "s1", images=tmp_path / "images")
    assert catalog.image_dirs() == [str((tmp_path / "images").resolve())]
    assert catalog.paths["pic3"] == (tmp_path / "images" / "pic3.jpg").resolve()


@pytest.mark.parametrize(
    "layout", ["images is home", "images holds home", "images holds the dataset", "photos in the dataset"]
)
def test_a_photo_folder_that_would_share_more_than_photos_is_refused(tmp_path, monkeypatch, layout):
    home = tmp_path / "home" / "me"
    monkeypatch.setenv("HOME", str(home))  # Path.home()
    if layout == "images is home":  # `build --images ~`: the photos lie loose in the home folder
        dataset, images = make_dataset(tmp_path / "work", home), home
    elif layout == "images holds home":
        dataset, images = make_dataset(tmp_path / "work", home / "photos"), tmp_path / "home"
    elif layout == "images holds the dataset":
        dataset, images = make_dataset(tmp_path, tmp_path / "images"), tmp_path
    else:  # stored as `pic0.jpg`: the served folder would be the dataset folder itself
        dataset = make_dataset(tmp_path, tmp_path / "dataset-photos")
        for photo in (tmp_path / "dataset-photos").iterdir():
            photo.rename(dataset / photo.name)
        rewrite(dataset, lambda row: row | {
            key: [Path(p).name for p in row[key]] for key in ("pic_paths", "candidate_paths")
        })  # fmt: skip
        images = None
    catalog = DatasetCatalog(dataset, "s1", images=images)
    with pytest.raises(InputError, match="refusing to serve .*(home folder|holds the dataset folder)"):
        launch_options(ServeArguments(), catalog)


# -- what the running server answers ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def status(opener, url: str, data: bytes | None = None) -> tuple[int, bytes]:
    try:
        with opener.open(url, data=data, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def served(dataset, tmp_path, monkeypatch):
    """Launch the app (no models: the page and its files only) with the options `serve` uses; its URL."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    catalog = DatasetCatalog(dataset, "s1", images=tmp_path / "images")
    pages = []

    def launch(auth=None, host="127.0.0.1"):
        page = ShowcaseApp(pipeline=None, catalog=catalog).build()
        pages.append(page)
        serve = ServeArguments(host=host, port=free_port(), auth=auth)
        check_can_listen(serve.host, serve.port)
        page.launch(**launch_options(serve, catalog), prevent_thread_lock=True, quiet=True)
        return f"http://{url_host(host)}:{serve.port}"

    yield launch
    for page in pages:
        page.close()


def test_the_server_shares_the_photos_and_nothing_else(served, dataset, tmp_path):
    (tmp_path / "secret.txt").write_text("not a photo")
    url = served()
    opener = urllib.request.build_opener()

    def file(path) -> int:
        return status(opener, f"{url}/gradio_api/file={urllib.parse.quote(str(path))}")[0]

    assert file(tmp_path / "images" / "pic0.jpg") == 200
    assert file("/etc/passwd") == 403
    assert file(tmp_path / "secret.txt") == 403  # beside the photo folder
    assert file(dataset / "README.md") == 403  # the dataset's own files
    assert file(f"{tmp_path}/images/../secret.txt") == 403
    # Without a login the page's config lists every user id: what the warning of a public bind says.
    code, body = status(opener, f"{url}/config")
    assert code == 200 and all(f'"{user}"' in body.decode() for user in ("u1", "u2"))


@pytest.mark.skipif(not socket.has_ipv6, reason="this Python was built without IPv6")
def test_an_ipv6_host_is_served_as_given(served):
    """`--host ::1` passed the listen check, then failed in Gradio's launch (`Invalid port: ':1:7860'`) after the
    models had loaded: Gradio takes an IPv6 address in brackets."""
    opener = urllib.request.build_opener()
    assert url_host("::1") == url_host("[::1]") == "[::1]" and url_host("127.0.0.1") == "127.0.0.1"
    assert status(opener, f"{served(host='::1')}/config")[0] == 200


def test_auth_guards_the_page_config_and_files(served, tmp_path):
    url = served(auth="demo:pa:ss")
    photo = f"{url}/gradio_api/file={urllib.parse.quote(str(tmp_path / 'images' / 'pic0.jpg'))}"
    stranger = urllib.request.build_opener()
    code, body = status(stranger, f"{url}/config")
    assert code in (401, 403) and b'"u1"' not in body
    assert status(stranger, photo)[0] in (401, 403)

    user = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    wrong = urllib.parse.urlencode({"username": "demo", "password": "pa"}).encode()
    assert status(user, f"{url}/login", wrong)[0] in (400, 401)
    login = urllib.parse.urlencode({"username": "demo", "password": "pa:ss"}).encode()
    assert status(user, f"{url}/login", login)[0] == 200
    code, body = status(user, f"{url}/config")
    assert code == 200 and '"u1"' in body.decode()
    assert status(user, photo)[0] == 200


# -- --auth and the exposure warning ----------------------------------------------------------------


def test_auth_is_user_colon_password():
    assert parse_auth(None) is None
    assert parse_auth("demo:pa:ss") == ("demo", "pa:ss")  # the password may hold colons
    for bad in ("demo", "demo:", ":secret", " :secret", ""):
        with pytest.raises(InputError, match="--auth must be USER:PASSWORD"):
            parse_auth(bad)


def test_binding_beyond_localhost_is_warned_about():
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert exposure_warning(ServeArguments(host=host)) is None
    for host in ("0.0.0.0", "::", "192.168.1.20", "demo.example.org"):
        open_warning = exposure_warning(ServeArguments(host=host))
        assert "WITHOUT A LOGIN" in open_warning and "/config" in open_warning and "--auth" in open_warning
        guarded = exposure_warning(ServeArguments(host=host, auth="demo:secret"))
        assert "login required" in guarded and "WITHOUT" not in guarded


def test_serve_command_wires_the_policy_the_login_and_the_warning(dataset, tmp_path, monkeypatch, caplog):
    """`main` as a user runs it, up to Gradio's `launch` (recorded, not run) and without loading models."""
    import gradio

    launched = []
    monkeypatch.setattr(gradio.Blocks, "launch", lambda page, **options: launched.append(options))
    monkeypatch.setattr("gest_showcases.commands.serve.check_can_listen", lambda host, port: None)  # none bound
    monkeypatch.setattr(PipelineArguments, "load_pipeline", lambda args: None)
    argv = ["serve", "--dataset", str(dataset), "--images", str(tmp_path / "images"),
            "--selector", "none", "--generator", "none", "--clip_model", "none", "--host", "0.0.0.0"]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="gest_showcases.commands.serve"):
        assert cli_main(argv) == 0
        assert cli_main([*argv, "--auth", "demo:secret"]) == 0
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2 and "WITHOUT A LOGIN" in warnings[0] and "login required" in warnings[1]
    images = str((tmp_path / "images").resolve())
    assert [options["allowed_paths"] for options in launched] == [[images], [images]]
    assert [options["auth"] for options in launched] == [None, ("demo", "secret")]
    assert not any(options["show_error"] for options in launched)  # no raw error text to the network
    assert json.dumps([options["share"] for options in launched]) == "[false, false]"
    # A malformed --auth stops the command, exit 2.
    assert cli_main([*argv, "--auth", "demo"]) == 2


def test_serve_refuses_a_busy_port_or_an_unknown_host_before_loading_any_model(capsys):
    from gest_showcases import cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # `not..a..host`: the IDNA codec's UnicodeError, a traceback before session 24's audit.
        for host, reason in (("127.0.0.1", "Address already in use"), ("no-such-host.invalid", ""), ("not..a..host", "")):
            argv = ["serve", "--dataset", "d", "--selector", "s", "--generator", "g", "--clip_model", "c",
                    "--host", host, "--port", str(port)]  # fmt: skip
            assert cli.main(argv) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and "Traceback" not in err
            assert f"error: --host {host} --port {port}: cannot listen there ({reason}" in err
