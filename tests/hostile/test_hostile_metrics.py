"""Hostile inputs to `evaluate` and the reports (issue 13 items 1, 5, 6): no code runs from a model
folder, one bad generations line is counted and named by `file:line`, huge or bomb images are counted
as unreadable, no system is merged into the ground-truth row, and table cells cannot break a table."""

import json
import logging
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from gest_showcases.errors import InputError
from gest_showcases.features import ExplanationClassifier, ExplanationClassifierConfig
from gest_showcases.features.tiny import save_tiny_clip
from gest_showcases.metrics.generations import read_generations
from gest_showcases.metrics.grounding import embed_image_files, load_classifier_scorer, load_clip_checkpoint
from gest_showcases.metrics.paper_tables import table2_markdown
from gest_showcases.report import image_data_uri, parse_markdown_table

GOOD = {"id": "1", "system": "PC2L", "generated": "Crispy rolls.", "reference": "The rolls were crispy."}


def _line(**changes) -> bytes:
    return (json.dumps({**GOOD, **changes}) + "\n").encode()


# (bad line, words the report must give): each is the second line of a file whose first is good.
BAD_LINES = {
    "not_an_object": (b"[1, 2, 3]\n", "not a JSON object"),
    "string": (b'"just text"\n', "not a JSON object"),
    "malformed": (b'{"id": "2", "system": \n', "malformed JSON"),
    "latin1": (
        json.dumps({**GOOD, "id": "2", "generated": "café"}, ensure_ascii=False).encode("latin-1") + b"\n",
        "non-UTF-8 bytes",
    ),
    "deeply_nested": (b"[" * 200_000 + b"]" * 200_000 + b"\n", "nested too deep"),
    "huge_integer": (b'{"id": ' + b"9" * 5000 + b"}\n", "malformed JSON"),
    "lone_surrogate": (_line(id="2", generated="\ud800"), "non-UTF-8 bytes"),
    "empty_system": (_line(id="2", system=" "), "empty system name"),
    "pic_ids_int": (_line(id="2", pic_ids=5), "pic_ids"),
    "pic_ids_string": (_line(id="2", pic_ids="abc"), "pic_ids"),
    "pic_ids_numbers": (_line(id="2", pic_ids=[1, 2]), "pic_ids"),
    "pic_ids_path": (_line(id="2", pic_ids=["../../secret"]), "pic_ids"),
    "missing_reference": (
        json.dumps({"id": "2", "system": "PC2L", "generated": "x"}).encode() + b"\n",
        "reference",
    ),
    "non_string_id": (_line(id=2), "'id'"),
    "duplicate": (_line(), "duplicate id"),
}


@pytest.mark.parametrize("name", sorted(BAD_LINES))
def test_one_bad_generations_line_is_counted_not_fatal(name, tmp_path, caplog):
    bad, words = BAD_LINES[name]
    path = tmp_path / "g.jsonl"
    path.write_bytes(_line() + bad + _line(id="3"))
    with caplog.at_level(logging.WARNING, logger="gest_showcases.metrics.generations"):
        records = read_generations(path)
    assert [r.id for r in records] == ["1", "3"]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "skipped 1 bad line" in warning and "g.jsonl:2" in warning and words in warning
    assert "\n" not in warning


@pytest.mark.parametrize("name", sorted(set(BAD_LINES) - {"duplicate"}))
def test_a_file_of_only_bad_lines_is_refused_naming_the_line(name, tmp_path):
    bad, words = BAD_LINES[name]
    path = tmp_path / "g.jsonl"
    path.write_bytes(b"\n" + bad)
    with pytest.raises(InputError) as excinfo:
        read_generations(path)
    message = str(excinfo.value)
    assert (
        f"{path} holds no usable generations" in message
        and "g.jsonl:2" in message
        and words in message
        and "\n" not in message
    )


def test_pic_ids_null_or_absent_mean_no_images(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_bytes(_line(pic_ids=None) + _line(id="2", pic_ids=["p1", "p2"]))
    assert [r.pic_ids for r in read_generations(path)] == [(), ("p1", "p2")]


def test_a_system_named_like_the_ground_truth_row_is_refused(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_bytes(_line() + _line(system="GT"))
    with pytest.raises(InputError, match=r"^g.jsonl:2: .*'GT' is reserved for the ground-truth row"):
        read_generations(path)


def test_table2_cells_cannot_break_the_table():
    rows = {"a|b": {"bleu_1": 0.5}, "two\nlines": {"bleu_1": 0.25}, "back\\slash|": {}, "GT": {}}
    table = table2_markdown(rows)
    lines = table.splitlines()
    assert len(lines) == 2 + len(rows)
    header, body = parse_markdown_table(table)
    assert all(len(row) == len(header) for row in body)
    assert [row[0] for row in body] == ["a|b", "two lines", "back\\slash|", "GT"]
    assert body[0][1] == "50.00" and body[1][1] == "25.00"


def _forget_package_auto_classes(monkeypatch):
    """Undo the package's AutoConfig/AutoModel registration, as in a `gest-showcases evaluate` process
    that has not imported `gest_showcases.features`: an Auto loader would then run the folder's code."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    configs = {k: v for k, v in CONFIG_MAPPING._extra_content.items() if k != "explanation_classifier"}
    models = {k: v for k, v in MODEL_MAPPING._extra_content.items() if k is not ExplanationClassifierConfig}
    monkeypatch.setattr(CONFIG_MAPPING, "_extra_content", configs)
    monkeypatch.setattr(MODEL_MAPPING, "_extra_content", models)


def test_classifier_folder_code_never_runs(tmp_path, monkeypatch):
    folder = tmp_path / "classifier"
    model = ExplanationClassifier(ExplanationClassifierConfig(text_dim=4, image_dim=4))
    model.save_pretrained(folder)
    marker = tmp_path / "code-ran"
    planted = f"\nimport pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    for name in ("modeling_explanation.py", "configuration_explanation.py"):
        with open(folder / name, "a", encoding="utf-8") as handle:
            handle.write(planted)
    _forget_package_auto_classes(monkeypatch)
    scorer = load_classifier_scorer(str(folder), "cpu")
    text, image = torch.randn(3, 4), torch.randn(3, 4)
    probabilities = scorer(text_embeds=text, image_embeds=image)
    assert not marker.exists()
    expected = model(text_embeds=text, image_embeds=image).probabilities
    torch.testing.assert_close(probabilities, expected.detach())


def test_a_folder_of_another_model_is_refused_as_classifier(tmp_path):
    folder = tmp_path / "not-a-classifier"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(InputError, match="model, not .explanation_classifier."):
        load_classifier_scorer(str(folder), "cpu")
    with pytest.raises(InputError, match="no model config there"):
        load_classifier_scorer(str(tmp_path / "missing"), "cpu")


def _png_header_only(path, width, height):
    """A PNG that declares `width` x `height` pixels but holds almost no data: a bomb's header."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)))
    return path


def _huge_valid_png(path, side=7000):
    """A real, decodable `side` x `side` grey PNG (49 MP, over the package's pixel limit), a few KB on disk."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor, row = zlib.compressobj(9), b"\0" * (side + 1)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def test_bomb_and_huge_images_are_counted_unreadable_in_evaluate(tmp_path):
    model, processor = load_clip_checkpoint(str(save_tiny_clip(tmp_path / "clip")))
    ok = tmp_path / "ok.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(ok)
    paths = {
        "bomb": _png_header_only(tmp_path / "bomb.jpg", 20_000, 20_000),
        "huge": _huge_valid_png(tmp_path / "huge.jpg"),
        "ok": ok,
    }
    embeddings, failed = embed_image_files(paths, model, processor)
    assert sorted(failed) == ["bomb", "huge"]
    assert list(embeddings) == ["ok"]


def test_bomb_and_huge_photos_are_left_out_of_the_html_report(tmp_path):
    assert image_data_uri(_png_header_only(tmp_path / "bomb.png", 20_000, 20_000)) is None
    assert image_data_uri(_huge_valid_png(tmp_path / "huge.png")) is None
    small = tmp_path / "small.png"
    Image.new("RGB", (8, 6)).save(small)
    assert image_data_uri(small).startswith("data:image/jpeg;base64,")


def test_a_classifier_whose_weights_a_killed_save_cut_is_one_line(tmp_path):
    """Session 26's audit: `evaluate --classifier` on a distill output cut mid-save was a SafetensorError traceback."""
    folder = tmp_path / "classifier"
    ExplanationClassifier(ExplanationClassifierConfig(text_dim=4, image_dim=4)).save_pretrained(folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(InputError, match=rf"^--classifier {folder}: the weights do not load \(Error while deserializing header"):
        load_classifier_scorer(str(folder), "cpu", option="--classifier")


def test_a_classifier_whose_weights_do_not_fit_is_one_line_not_a_random_model(tmp_path):
    """Session 26's audit: a classifier folder whose weights file held other tensor names loaded with random weights
    (a warning on stderr) and CLIP-Align (t*v) came out 50.95 against 11.28."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "classifier"
    ExplanationClassifier(ExplanationClassifierConfig(text_dim=4, image_dim=4)).save_pretrained(folder)
    weights = load_file(folder / "model.safetensors")
    save_file({f"other.{name.rsplit('.', 1)[-1]}": value for name, value in weights.items()}, folder / "model.safetensors")
    with pytest.raises(InputError, match=rf"^--classifier {folder}: its weights do not fit the model \(missing: "):
        load_classifier_scorer(str(folder), "cpu", option="--classifier")


def test_a_classifier_for_another_clip_width_is_one_line_before_any_scoring(tmp_path):
    """Session 26's audit: a shape RuntimeError traceback after the CLIP work had run."""
    folder = tmp_path / "classifier"
    ExplanationClassifier(ExplanationClassifierConfig(text_dim=64, image_dim=64)).save_pretrained(folder)
    with pytest.raises(InputError, match=r"reads 64-d sentence and 64-d photo embeddings, but the CLIP gives 128-d"):
        load_classifier_scorer(str(folder), "cpu", option="--classifier", clip_dim=128)
    assert load_classifier_scorer(str(folder), "cpu", option="--classifier", clip_dim=64) is not None
