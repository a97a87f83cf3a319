"""`gest-showcases serve` in headless Chromium: the server starts, the page loads, a request shows the photos and
the text, and they are the ones `ShowcasePipeline` gives for the same request (the oracle).

The world is a small Gest-Synth built with the real builder; the checkpoints are tiny random ones saved like
real ones. Chromium and its driver come from Debian (`apt-get install chromium chromium-driver`); nothing is
downloaded. A screenshot of each showcase is saved under test-artifacts/.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
from markupsafe import escape

from gest_showcases.app import (
    DATASET_USER,
    DESCRIBED_USER,
    MAX_DESCRIBED_REVIEWS,
    MAX_DESCRIPTION_CHARACTERS,
    DatasetCatalog,
    ShowcaseApp,
    markdown_text,
    showcase_file_name,
)
from gest_showcases.data.build import build_dataset
from gest_showcases.dataset_requests import request_from_dataset
from gest_showcases.features.inputs import read_config_rows
from gest_showcases.pipeline import ShowcasePipeline
from gest_showcases.synth import SynthConfig, generate_world, write_world
from tiny_assets import few_threads, save_tiny_checkpoints  # noqa: F401  (few_threads: one thread, as the server runs)

pytestmark = pytest.mark.slow

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="headless browser test: needs Debian's chromium and chromium-driver "
    "(apt-get install -y chromium chromium-driver)",
)
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
MAX_NEW_TOKENS = 8
SERVER_START_S, RESULT_S = 240, 120  # bounds on the server's start and on one showcase (2 shared CPU cores)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A built Gest-Synth dataset folder (60 reviews, 32-pixel photos) and the tiny checkpoints."""
    root = tmp_path_factory.mktemp("serve")
    write_world(
        generate_world(SynthConfig(seed=0, num_reviews=60, num_annotated_reviews=5)), root / "synth", 32
    )
    build_dataset([root / "synth" / "filter_all_t.json"], root / "synth" / "images", root / "dataset")
    rows = read_config_rows(root / "dataset", "s1")
    checkpoints = save_tiny_checkpoints(root, [row["review_text"] for row in rows])
    images = root / "synth" / "images"  # beside the dataset: `serve` and `showcase` are told with --images
    return {"root": root, "dataset": root / "dataset", "images": images, "rows": rows, **checkpoints}


@pytest.fixture(scope="module")
def pipeline(world):
    return ShowcasePipeline.from_pretrained(
        world["selector"], world["generator"], world["clip"], device="cpu", max_new_tokens=MAX_NEW_TOKENS
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(world):
    """`gest-showcases serve` in a subprocess on a free port; its URL. Stopped (then killed) afterwards."""
    port = free_port()
    log = world["root"] / "server.log"
    command = [
        sys.executable, "-m", "gest_showcases.cli", "serve", "--dataset", str(world["dataset"]),
        "--images", str(world["images"]), "--selector", world["selector"], "--generator", world["generator"], "--clip", world["clip"],
        "--device", "cpu", "--max_new_tokens", str(MAX_NEW_TOKENS), "--port", str(port),
    ]  # fmt: skip
    env = os.environ | {"GRADIO_TEMP_DIR": str(world["root"] / "gradio"), "OMP_NUM_THREADS": "1"}
    url = f"http://127.0.0.1:{port}/"
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with status {process.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the server did not answer within {SERVER_START_S} s:\n{log.read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="gest-showcases-chromium-")
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1280,1400", f"--user-data-dir={profile}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(browser, condition, timeout: float, message: str):
    """Poll `condition` until it is truthy. An element Gradio redrew while the condition read it (stale) counts as
    not yet: the next poll finds the new one."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(
        browser, timeout, poll_frequency=0.5, ignored_exceptions=(StaleElementReferenceException,)
    ).until(lambda _: condition(), message=message)


def click(browser, element, message: str) -> None:
    """Click `element`, retrying while a spinner of a running event covers it."""
    from selenium.common.exceptions import ElementClickInterceptedException

    def attempt() -> bool:
        try:
            element.click()
        except ElementClickInterceptedException:
            return False
        return True

    wait(browser, attempt, 30, message)


def settled(browser, elem_id: str) -> bool:
    """No event is updating `#elem_id` (its status tracker is hidden: no spinner covers it)."""
    from selenium.webdriver.common.by import By

    trackers = browser.find_elements(By.CSS_SELECTOR, f"#{elem_id} [data-testid=status-tracker]")
    return all("hide" in (tracker.get_attribute("class") or "").split() for tracker in trackers)


def pick(browser, elem_id: str, value: str, label_has: str = "") -> None:
    """Choose `value` in the Gradio dropdown `#elem_id`: type it into the filter, click its option (one whose label
    also holds `label_has`: the label an earlier pick's update gives it, so the pick waits for that update)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = wait(
        browser,
        lambda: next(iter(browser.find_elements(By.CSS_SELECTOR, f"#{elem_id} input[role=combobox]")), None),
        30,
        f"no dropdown #{elem_id} on the page",
    )
    wait(browser, lambda: settled(browser, elem_id), 30, f"#{elem_id} stayed busy")
    click(browser, box, f"#{elem_id} stayed covered")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE, value)
    option = wait(
        browser,
        lambda: next(
            (
                item
                for item in browser.find_elements(By.CSS_SELECTOR, "[role=option]")
                if item.is_displayed()
                and (item.get_attribute("aria-label") or "").startswith(value)
                and label_has in (item.get_attribute("aria-label") or "")
            ),
            None,
        ),
        30,
        f"no option {value!r} in #{elem_id}",
    )
    click(browser, option, f"option {value!r} stayed covered")
    wait(
        browser,
        lambda: box.get_attribute("value").startswith(value),
        30,
        f"#{elem_id} did not take {value!r}",
    )


def show_and_read(browser, name: str) -> dict:
    """Click Show, wait for the photos and the explanation, save a screenshot; what the page shows."""
    from selenium.webdriver.common.by import By

    def text(elem_id):
        return browser.find_element(By.CSS_SELECTOR, f"#{elem_id} textarea").get_attribute("value")

    wait(
        browser,
        lambda: all(settled(browser, picker) for picker in ("user", "business")),
        30,
        "the pickers stayed busy",
    )
    click(browser, browser.find_element(By.ID, "show"), "the Show button stayed covered")
    wait(
        browser,
        lambda: browser.find_elements(By.CSS_SELECTOR, "#photos img") and text("explanation"),
        RESULT_S,
        "no photos or no explanation appeared",
    )

    def decoded_photos():
        # Found again at each poll: the gallery may redraw while its photos load.
        found = browser.find_elements(By.CSS_SELECTOR, "#photos img")
        loaded = all(browser.execute_script("return arguments[0].naturalWidth", image) > 0 for image in found)
        return found if found and loaded else None

    # Every photo decoded in the browser: served by the app, not a broken link.
    images = wait(browser, decoded_photos, 30, "a selected photo did not load")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"serve-{name}.png"))
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
    )
    return {
        "photos": [Path(image.get_attribute("src").split("?")[0]).stem for image in images],
        "explanation": text("explanation"),
        "truth": text("truth"),
        "history": text("history"),
        "truth_photos": len(browser.find_elements(By.CSS_SELECTOR, "#truth-photos img")),
        "resources": resources,
    }


def reviewed_pair(world) -> dict:
    """A test-split s1 review with photos: its user, business, text and pics."""
    return next(row for row in world["rows"] if row["split"] == "test" and row["pics"])


@needs_browser
def test_dataset_user_showcase_in_the_browser(world, server, browser, pipeline):
    row = reviewed_pair(world)
    expected = pipeline(
        request_from_dataset(
            world["dataset"], "s1", row["user_id"], row["business_id"], images=world["images"]
        ).request
    )
    browser.get(server)
    pick(browser, "user", row["user_id"])
    # The business list is rebuilt for the user picked, the businesses they reviewed marked: wait for that update.
    pick(browser, "business", row["business_id"], label_has="reviewed by this user")
    shown = show_and_read(browser, "dataset-user")

    assert shown["photos"] == [photo.id for photo in expected.photos] and len(shown["photos"]) == 3
    assert shown["explanation"] == expected.explanation and shown["explanation"].strip()
    assert shown["truth"] == row["review_text"] and shown["truth_photos"] == len(row["pics"])
    assert shown["history"] == "\n".join(row["history_texts"])
    # Offline: the page and its fonts, scripts and photos all come from the app itself.
    assert shown["resources"] and all(name.startswith(server) for name in shown["resources"])


@needs_browser
def test_described_user_showcase_in_the_browser(world, server, browser, pipeline):
    from selenium.webdriver.common.by import By

    business = world["rows"][-1]["business_id"]
    reviews = ["The pasta was fresh and the sauce rich.", "Friendly staff, a cozy room."]
    # The business's pool as the dataset gives it to an unknown user, with the described history.
    unknown = request_from_dataset(world["dataset"], "s1", "nobody", business, images=world["images"]).request
    expected = pipeline(replace(unknown, history_texts=reviews))
    browser.get(server)
    wait(browser, lambda: browser.find_elements(By.ID, "mode"), 30, "the page did not load")
    choice = browser.find_element(By.CSS_SELECTOR, f'#mode [data-testid="{DESCRIBED_USER}-radio-label"]')
    click(browser, choice, "the user choice stayed covered")
    description = wait(
        browser,
        lambda: next(iter(browser.find_elements(By.CSS_SELECTOR, "#description textarea")), None),
        30,
        "the description box did not appear",
    )
    description.send_keys("\n".join(reviews))
    pick(browser, "business", business)
    box = browser.find_element(By.CSS_SELECTOR, "#business input[role=combobox]")
    wait(
        browser,
        lambda: "reviewed" not in box.get_attribute("value"),
        30,
        "a described user has reviewed nothing",
    )
    shown = show_and_read(browser, "described-user")

    assert shown["photos"] == [photo.id for photo in expected.photos]
    assert shown["explanation"] == expected.explanation
    assert shown["history"] == "\n".join(reviews)
    assert shown["truth"].startswith("No ground truth") and shown["truth_photos"] == 0


def test_respond_reads_the_dataset_and_names_what_is_missing(world, pipeline):
    catalog = DatasetCatalog(world["dataset"], "s1", images=world["images"])
    app = ShowcaseApp(pipeline, catalog, k=2)
    row = reviewed_pair(world)
    users = [user for _, user in catalog.user_choices()]
    assert sorted(users) == sorted({r["user_id"] for r in world["rows"]})
    # The user's reviewed businesses come first and are marked.
    choices = catalog.business_choices(row["user_id"])
    reviewed = {r["business_id"] for r in world["rows"] if r["user_id"] == row["user_id"]}
    assert {business for _, business in choices[: len(reviewed)]} == reviewed
    assert all(label.endswith("reviewed by this user)") for label, _ in choices[: len(reviewed)])

    view = app.respond(DATASET_USER, row["user_id"], "", row["business_id"])
    assert len(view.photos) == 2 and view.truth_text == row["review_text"]
    assert [Path(path).stem for path, _ in view.truth_photos] == row["pics"]
    cold = app.respond(DESCRIBED_USER, None, "  \n", row["business_id"])
    assert "cold user" in cold.notes and cold.history.startswith("(no history")
    with pytest.raises(ValueError, match="pick a business"):
        app.respond(DESCRIBED_USER, None, "Nice.", None)
    with pytest.raises(ValueError, match="pick a user"):
        app.respond(DATASET_USER, None, "", row["business_id"])
    with pytest.raises(ValueError, match="business 'nowhere' has no photos"):
        app.respond(DESCRIBED_USER, None, "Nice.", "nowhere")
    # A described history is CLIP-encoded whole: bounded.
    too_many = "\n".join(f"Review {i}." for i in range(MAX_DESCRIBED_REVIEWS + 1))
    with pytest.raises(ValueError, match=f"at most {MAX_DESCRIBED_REVIEWS} reviews"):
        app.respond(DESCRIBED_USER, None, too_many, row["business_id"])
    with pytest.raises(ValueError, match=f"at most {MAX_DESCRIBED_REVIEWS} reviews"):
        app.respond(DESCRIBED_USER, None, "x" * (MAX_DESCRIPTION_CHARACTERS + 1), row["business_id"])


def test_notes_show_dataset_text_as_text():
    """A warning quotes dataset ids; Markdown would have made `![x](http://...)` an image the page loads."""
    hostile = "photo ![x](http://evil.example/a.png) <img src=x> [y](http://e) a_b"
    escaped = markdown_text(hostile)
    assert re.search(r"(?<!\\)[<>\[\]()!]", escaped) is None  # every bracket and `!` escaped
    assert re.sub(r"\\(.)", r"\1", escaped) == hostile  # unescaped, the same text


def test_respond_with_output_dir_writes_the_showcase_it_shows(world, pipeline, tmp_path):
    """`serve --output_dir`: the real pipeline's showcase, as the page shows it, in a self-contained HTML file."""
    catalog = DatasetCatalog(world["dataset"], "s1", images=world["images"])
    app = ShowcaseApp(pipeline, catalog, k=2, output_dir=tmp_path / "out")
    row = reviewed_pair(world)
    view = app.respond(DATASET_USER, row["user_id"], "", row["business_id"])
    written = list((tmp_path / "out").iterdir())
    assert written == [tmp_path / "out" / showcase_file_name(row["user_id"], row["business_id"])]
    html = written[0].read_text(encoding="utf-8")
    # The text is escaped as the report's template escapes it (generated text is data, never markup).
    assert view.explanation and str(escape(view.explanation)) in html
    assert str(escape(row["review_text"])) in html
    assert html.count("data:image/jpeg;base64,") >= len(view.photos) + len(row["pics"])


def test_an_alert_shows_the_datasets_text_as_text():
    """Session 26's audit: a business id holding HTML reached `gr.Error`, whose message Gradio renders as HTML (a
    remote image, a link)."""
    gr = pytest.importorskip("gradio")

    class Failing:
        def respond(self, *args):
            raise ValueError('<img src=http://evil.example/p.png>: none of its 2 candidate photos could be read')

    with pytest.raises(gr.Error) as caught:
        ShowcaseApp._respond_or_alert(Failing(), "mode", "user", "", "business")
    assert caught.value.message == "&lt;img src=http://evil.example/p.png&gt;: none of its 2 candidate photos could be read"
