"""`gest-showcases showcase`: a dataset's user and business in, the showcase printed and written as HTML."""

import base64
import io
import re

import pytest
from markupsafe import escape
from PIL import Image

from gest_showcases.cli import main as cli_main
from gest_showcases.dataset_requests import request_from_dataset


def args(checkpoints, dataset, user, business, *extra):
    return ["showcase", "--dataset", str(dataset), "--user", user, "--business", business,
            "--selector", checkpoints["selector"], "--generator", checkpoints["generator"],
            "--clip_model", checkpoints["clip"], "--max_new_tokens", "6", "--device", "cpu",
            "--images", str(dataset.parent / "images"), *extra]  # fmt: skip


def request(dataset, user, business):
    """`request_from_dataset` of the fixture dataset, whose photos are in the sibling folder `images`."""
    return request_from_dataset(dataset, "s1", user, business, images=dataset.parent / "images")


def test_request_uses_the_stored_history_of_a_reviewed_business(built_dataset):
    found = request(built_dataset, "u2", "b1")
    assert list(found.request.candidates) == ["pic0", "pic1", "pic3", "pic4", "pic6", "pic7"]
    assert list(found.request.history_texts) == [
        "Noodles and tea. Friendly staff!"
    ]  # never the target review
    assert [path.name for path in found.request.history_images] == ["pic5.jpg"]
    assert found.truth_text.startswith("Cozy room") and [pic for pic, _ in found.truth_photos] == [
        "pic3",
        "pic4",
    ]


def test_request_for_an_unreviewed_business_and_unknown_ids(built_dataset):
    found = request(built_dataset, "u3", "b2")
    assert list(found.request.candidates) == ["pic2", "pic5"]
    assert list(found.request.history_texts) == ["Best pizza in town."] and not found.truth_text
    cold = request(built_dataset, "nobody", "b2")
    assert not cold.request.history_texts and not cold.request.history_images
    with pytest.raises(ValueError, match="business 'b9' has no photos"):
        request(built_dataset, "u1", "b9")


def test_showcase_command_prints_and_writes_self_contained_html(checkpoints, built_dataset, tmp_path, capsys):
    out = tmp_path / "showcase"
    assert cli_main(args(checkpoints, built_dataset, "u2", "b1", "--output_dir", str(out))) == 0
    printed = capsys.readouterr().out
    explanation = printed.split("Explanation:\n", 1)[1].splitlines()[0].strip()
    selected = re.findall(r"^\s+\d\. (pic\d)", printed, flags=re.MULTILINE)
    assert explanation and len(selected) == 3
    html = (out / "showcase.html").read_text()
    # The selected photos, the truth photos and the history photo, all inline; nothing fetched from disk.
    assert not re.search(r'src="(?!data:)', html)
    uris = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', html)
    assert len(uris) == 3 + 2 + 1
    first = Image.open(built_dataset.parent / "images" / f"{selected[0]}.jpg").convert("RGB")
    inlined = Image.open(io.BytesIO(base64.b64decode(uris[0]))).convert("RGB")
    assert inlined.size == first.size  # small photos are not enlarged
    assert sum(abs(a - b) for a, b in zip(inlined.getpixel((5, 5)), first.getpixel((5, 5)), strict=True)) < 60
    assert f'<p class="explanation">{escape(explanation)}</p>' in html
    assert "Noodles and tea. Friendly staff!" in html
    assert "Cozy room with candles &amp; &lt;b&gt;jazz&lt;/b&gt;." in html  # the ground truth, escaped
    assert all(f"{pic} (log q" in html for pic in selected)


def test_showcase_command_for_a_cold_user(checkpoints, built_dataset, capsys):
    assert cli_main(args(checkpoints, built_dataset, "stranger", "b2")) == 0
    printed = capsys.readouterr().out
    assert "cold user" in printed and "fewer than k=3" in printed
    assert sorted(re.findall(r"^\s+\d\. (pic\d)", printed, flags=re.MULTILINE)) == ["pic2", "pic5"]
