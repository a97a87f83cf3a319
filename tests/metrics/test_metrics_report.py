"""Generations file, Table 2, Figure 6 and `gest-showcases evaluate` end to end."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gest_showcases.cli import main as cli_main
from gest_showcases.data.records import DropReport
from gest_showcases.errors import InputError
from gest_showcases.features import ExplanationClassifier, ExplanationClassifierConfig
from gest_showcases.features.tiny import save_tiny_clip
from gest_showcases.metrics import paper_tables
from gest_showcases.metrics.assets import install_wordnet
from gest_showcases.metrics.coverage import length_distribution, pos_coverage, pos_tagger
from gest_showcases.metrics.generations import Generation, read_generations
from gest_showcases.metrics.paper_tables import table2_markdown, write_evaluation

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROWS = [
    {"id": "1", "system": "PC2L", "generated": "The rolls were crispy. Great pho!", "reference": "We ordered crispy spring rolls. The pho was really great.", "pic_ids": ["p1", "p2"]},
    {"id": "2", "system": "PC2L", "generated": "Nice juicy burger.", "reference": "The burger was juicy and the fries were perfectly crispy.", "pic_ids": ["p3"]},
    {"id": "1", "system": "baseline", "generated": "Good food.", "reference": "We ordered crispy spring rolls. The pho was really great.", "pic_ids": ["p1", "p2"]},
    {"id": "2", "system": "baseline", "generated": "", "reference": "The burger was juicy and the fries were perfectly crispy.", "pic_ids": ["p3", "missing"]},
]  # fmt: skip


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_read_generations(tmp_path):
    records = read_generations(_write_jsonl(tmp_path / "g.jsonl", ROWS))
    assert records[0] == Generation("1", "PC2L", ROWS[0]["generated"], ROWS[0]["reference"], ("p1", "p2"))
    # Bad lines are skipped and counted with their place; the good ones are kept.
    _write_jsonl(tmp_path / "bad.jsonl", [ROWS[0], {"id": "2", "system": "x", "generated": "a"}, ROWS[0]])
    report = DropReport()
    assert read_generations(tmp_path / "bad.jsonl", report) == records[:1]
    assert report.to_dict() == {
        "duplicate id for its system (the first line is kept)": {"count": 1, "examples": ["bad.jsonl:3"]},
        "missing or non-string field(s) ['reference']": {"count": 1, "examples": ["bad.jsonl:2"]},
    }
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="holds no usable generations"):
        read_generations(tmp_path / "empty.jsonl")


def test_table2_markdown_layout():
    table = table2_markdown({"PC2L": {"bleu_1": 0.104, "distinct_2": 0.2858, "clip_align": 0.8531}, "GT": {}})
    lines = table.splitlines()
    assert lines[0] == (
        "| Model | BLEU-1 | BLEU-4 | METEOR | NIST | Distinct-1 | Distinct-2 | CLIP-Align | CLIP-Score | BERT-Score |"
    )
    assert lines[2] == "| PC2L | 10.40 | - | - | - | - | 28.58 | 85.31 | - | - |"
    assert lines[3] == "| GT | - | - | - | - | - | - | - | - | - |"


def test_length_distribution_bins():
    texts = [
        "",
        "one two",
        " ".join(["w"] * 10),
        " ".join(["w"] * 59),
        " ".join(["w"] * 60),
        " ".join(["w"] * 61),
    ]
    dist = length_distribution(texts)
    # [0,10): 0 and 2 words; [10,20): 10; [50,60]: 59 and 60; 61 is over.
    assert dist["shares"] == pytest.approx([2 / 6, 1 / 6, 0, 0, 0, 2 / 6])
    assert dist["over_60"] == pytest.approx(1 / 6)
    assert length_distribution([]) == {"shares": [0.0] * 6, "over_60": 0.0}


def test_pos_coverage_hand_computed():
    tags = {"pizza": "NOUN", "crust": "NOUN", "crispy": "ADJ", "really": "ADV", "the": "DET"}

    def tag(texts):
        return [[(w, tags.get(w, "X")) for w in t.lower().split()] for t in texts]

    coverage = pos_coverage(
        ["the pizza was crispy", "nothing"], ["the pizza crust really crispy", "pizza"], tag
    )
    # nouns: {pizza, crust} -> 1 covered, {pizza} -> 0 covered => 1/3; adj 1/1; adv 0/1.
    assert coverage == {"noun": pytest.approx(1 / 3), "adj": 1.0, "adv": 0.0}
    assert pos_coverage([], [], tag) == {"noun": 0.0, "adj": 0.0, "adv": 0.0}
    with pytest.raises(ValueError, match="differ in length"):
        pos_coverage(["a"], [], tag)


@pytest.mark.slow  # loads spaCy's model (or WordNet)
def test_pos_tagger_tags_nouns_adjectives_adverbs():
    name, tag = pos_tagger()
    if name == "wordnet":
        install_wordnet()
    (tagged,) = tag(["The pizza was really delicious"])
    tags = dict(tagged)
    assert tags["pizza"] == "NOUN" and tags["delicious"] == "ADJ" and tags["really"] == "ADV"
    assert tags["the"] not in ("NOUN", "ADJ", "ADV")


def test_the_tagger_tags_each_distinct_text_once(monkeypatch):
    """Figure 6 (b) tags the same references for every system: each text goes through the tagger once, in order."""
    from gest_showcases.metrics import coverage

    calls = []

    def counting(texts):
        calls.append(list(texts))
        return [[(word, "NOUN") for word in text.split()] for text in texts]

    tag = coverage._remembered(counting)
    assert tag(["a b", "c", "a b"]) == [[("a", "NOUN"), ("b", "NOUN")], [("c", "NOUN")], [("a", "NOUN"), ("b", "NOUN")]]
    assert tag(["c", "d"]) == [[("c", "NOUN")], [("d", "NOUN")]]
    assert tag(["a b"]) == [[("a", "NOUN"), ("b", "NOUN")]]
    assert calls == [["a b", "c"], ["d"]]
    name, real = coverage.pos_tagger()
    if name == "wordnet":
        install_wordnet()
    assert real(["The pizza was great", "The pizza was great"]) == real(["The pizza was great"]) * 2


@pytest.mark.slow  # loads WordNet
def test_wordnet_fallback_tagger(monkeypatch):
    from gest_showcases.metrics import coverage as report

    install_wordnet()
    monkeypatch.setattr(report, "_spacy_pipeline", lambda: None)
    name, tag = report.pos_tagger()
    assert name == "wordnet"
    (tagged,) = tag(["The pizza was really delicious, in a box."])
    assert tagged == [
        ("the", "X"), ("pizza", "NOUN"), ("was", "X"), ("really", "ADV"), ("delicious", "ADJ"),
        (",", "X"), ("in", "X"), ("a", "X"), ("box", "NOUN"), (".", "X"),
    ]  # fmt: skip


@pytest.mark.slow  # loads spaCy and matplotlib
def test_write_evaluation_files(tmp_path):
    install_wordnet()  # the fallback POS tagger's data, when no spaCy model is installed
    records = read_generations(_write_jsonl(tmp_path / "g.jsonl", ROWS))
    rows = {"PC2L": {"bleu_1": 0.1}, "baseline": {"bleu_1": 0.05}, "GT": {"distinct_1": 0.5}}
    paths = write_evaluation(rows, records, tmp_path / "out")
    assert paths["table2_md"].read_text() == table2_markdown(rows)
    assert json.loads(paths["table2_json"].read_text())["rows"] == rows
    for key in ("figure6a", "figure6b"):
        assert paths[key].read_bytes()[:8] == PNG_MAGIC
    figure = json.loads(paths["figure6_json"].read_text())
    assert list(figure["length_distribution"]) == ["PC2L", "baseline", "GT"]
    assert list(figure["pos_coverage"]) == ["PC2L", "baseline"]
    assert figure["pos_coverage"]["baseline"]["noun"] == 0.0


def test_a_stop_while_the_figures_render_leaves_the_previous_evaluation_whole(tmp_path, monkeypatch):
    """Session 28's resume audit: the six files were each atomic but written one after another around the figures'
    rendering (~100 ms), so a kill then left a new Table 2 beside the previous figures, or the reverse."""
    records = read_generations(_write_jsonl(tmp_path / "g.jsonl", ROWS))
    names = ["table2.md", "table2.json", "figure6a_length.png", "figure6b_coverage.png", "figure6.json",
             "table2_intervals.md"]  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    for name in names:
        (out / name).write_text("previous")
    monkeypatch.setattr(paper_tables, "pos_tagger", lambda: ("none", lambda texts: [[] for _ in texts]))

    def stopped(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(paper_tables, "length_distribution_png", lambda lengths: PNG_MAGIC)
    monkeypatch.setattr(paper_tables, "pos_coverage_png", stopped)
    with pytest.raises(KeyboardInterrupt):
        write_evaluation({"PC2L": {"bleu_1": 0.1}}, records, out, "| intervals |")
    assert {path.name: path.read_bytes() for path in out.iterdir()} == dict.fromkeys(names, b"previous")
    # Stopped while the six files are written (after the first): the same, and no temporary file is left.
    monkeypatch.setattr(paper_tables, "pos_coverage_png", lambda coverage: PNG_MAGIC)
    write_bytes = Path.write_bytes

    def stopped_at_the_third(path, data):
        if len(list(out.glob(".*.tmp"))) == 2:
            raise KeyboardInterrupt
        return write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", stopped_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        write_evaluation({"PC2L": {"bleu_1": 0.1}}, records, out, "| intervals |")
    assert {path.name: path.read_bytes() for path in out.iterdir()} == dict.fromkeys(names, b"previous")
    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    paths = write_evaluation({"PC2L": {"bleu_1": 0.1}}, records, out, "| intervals |")
    assert sorted(path.name for path in out.iterdir()) == sorted(names)  # no temporary file left either
    assert paths["table2_intervals_md"].read_text() == "| intervals |"
    assert paths["figure6b"].read_bytes() == PNG_MAGIC and paths["table2_md"].read_text() != "previous"


@pytest.mark.slow
def test_reference_pic_ids_are_read_and_the_gt_row_scores_its_clip_metrics_on_them(tmp_path, monkeypatch):
    own = [row | {"reference_pic_ids": ["own1"] if row["id"] == "1" else ["own2", "own3"]} for row in ROWS]
    records = read_generations(_write_jsonl(tmp_path / "g.jsonl", own))
    assert records[0].pic_ids == ("p1", "p2") and records[0].reference_pic_ids == ("own1",)
    report = DropReport()
    read_generations(_write_jsonl(tmp_path / "bad.jsonl", [own[0], ROWS[1] | {"reference_pic_ids": "own"}]), report)
    assert list(report.to_dict()) == ["reference_pic_ids is not a list of image ids"]
    seen = {}

    def capture(texts, pics, image_dir, clip, scorer):
        seen.update(pics)
        return {name: {"clip_align": 0.5} for name in texts}

    monkeypatch.setattr(paper_tables, "_grounding_rows", capture)
    paper_tables.score_generations(records, clip=object(), image_dir=tmp_path, scorer=None)
    assert seen["PC2L"] == [("p1", "p2"), ("p3",)]  # the systems: the photos they were shown
    assert seen["GT"] == [("own1",), ("own2", "own3")]  # the references: the photos they were written about
    # A file without them: GT reads the shown photos, as before.
    plain = read_generations(_write_jsonl(tmp_path / "plain.jsonl", ROWS))
    paper_tables.score_generations(plain, clip=object(), image_dir=tmp_path, scorer=None)
    assert seen["GT"] == [("p1", "p2"), ("p3",)]


def _random_photos(folder, seed: int):
    """`folder` with p1.jpg, p2.jpg and p3.jpg of random pixels: ROWS' photos but "missing"."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for pic in ("p1", "p2", "p3"):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / f"{pic}.jpg")
    return folder


def test_evaluate_command_end_to_end(tmp_path, capsys, treebank_splits):
    install_wordnet()
    clip_dir = save_tiny_clip(tmp_path / "clip")
    classifier_dir = tmp_path / "classifier"
    ExplanationClassifier(ExplanationClassifierConfig(text_dim=16, image_dim=16)).save_pretrained(
        classifier_dir
    )
    images = _random_photos(tmp_path / "images", seed=0)
    generations = _write_jsonl(tmp_path / "g.jsonl", ROWS)
    argv = ["evaluate", "--generations", str(generations), "--output_dir", str(tmp_path / "out")]
    argv += ["--images", str(images), "--clip_model", str(clip_dir), "--classifier", str(classifier_dir)]
    assert cli_main([*argv, "--no_bertscore"]) == 0
    assert "| PC2L |" in capsys.readouterr().out
    # Every metric, interval and Figure 6 read the same texts: each is split once (`tokens_memoised`).
    texts = {row[key].lower() for row in ROWS for key in ("generated", "reference")}
    assert sorted(treebank_splits) == sorted(texts)
    table = json.loads((tmp_path / "out" / "table2.json").read_text())["rows"]
    assert list(table) == ["PC2L", "baseline", "GT"]
    for key in (
        "bleu_1",
        "bleu_4",
        "meteor",
        "nist_4",
        "distinct_1",
        "distinct_2",
        "clip_align",
        "clip_score",
    ):
        assert np.isfinite(table["PC2L"][key])
    # The missing image is skipped; the empty generation still counts, with 0 on its image.
    assert table["baseline"]["clip_align_examples"] == table["baseline"]["clip_score_examples"] == 2
    assert set(table["GT"]) == {
        "distinct_1", "distinct_2", "clip_score", "clip_score_cosine", "clip_score_examples",
        "clip_align", "clip_align_examples",
    }  # fmt: skip
    assert (tmp_path / "out" / "figure6a_length.png").read_bytes()[:8] == PNG_MAGIC
    # A rerun stopped while resampling the intervals (session 26's audit: with one system, it had already replaced
    # Table 2 and Figure 6, leaving the old intervals beside them) leaves the evaluation as it was.
    import gest_showcases.commands.evaluate as evaluate_command

    before = {path.name: path.read_bytes() for path in (tmp_path / "out").iterdir()}
    _write_jsonl(tmp_path / "one.jsonl", [row for row in ROWS if row["system"] == "PC2L"])

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    original = evaluate_command.table2_intervals_markdown
    evaluate_command.table2_intervals_markdown = stopped
    try:
        with pytest.raises(KeyboardInterrupt):
            evaluate_command.main(["--generations", str(tmp_path / "one.jsonl"), "--output_dir", str(tmp_path / "out"),
                                   "--no_bertscore"])  # fmt: skip
    finally:
        evaluate_command.table2_intervals_markdown = original
    assert {path.name: path.read_bytes() for path in (tmp_path / "out").iterdir()} == before


def test_evaluate_adds_clip_align_by_the_interaction_classifier(tmp_path, capsys):
    install_wordnet()
    clip_dir = save_tiny_clip(tmp_path / "clip")
    linear, product = tmp_path / "linear", tmp_path / "product"
    torch.manual_seed(0)
    ExplanationClassifier(ExplanationClassifierConfig(text_dim=16, image_dim=16)).save_pretrained(linear)
    ExplanationClassifier(ExplanationClassifierConfig(text_dim=16, image_dim=16, interaction=True)).save_pretrained(
        product
    )
    images = _random_photos(tmp_path / "images", seed=1)
    generations = _write_jsonl(tmp_path / "g.jsonl", ROWS)
    argv = ["evaluate", "--generations", str(generations), "--images", str(images), "--clip_model", str(clip_dir)]
    argv += ["--no_bertscore"]
    assert cli_main([*argv, "--output_dir", str(tmp_path / "both"), "--classifier", str(linear),
                     "--interaction_classifier", str(product)]) == 0  # fmt: skip
    # The oracle: the interaction classifier given as the paper's --classifier scores the same CLIP-Align.
    assert cli_main([*argv, "--output_dir", str(tmp_path / "alone"), "--classifier", str(product)]) == 0
    both = json.loads((tmp_path / "both" / "table2.json").read_text())["rows"]
    alone = json.loads((tmp_path / "alone" / "table2.json").read_text())["rows"]
    for row in ("PC2L", "baseline", "GT"):
        assert both[row]["clip_align_interaction"] == pytest.approx(alone[row]["clip_align"])
        assert both[row]["clip_align_interaction_examples"] == alone[row]["clip_align_examples"]
    assert any(both[row]["clip_align"] != pytest.approx(both[row]["clip_align_interaction"]) for row in both)
    header = (tmp_path / "both" / "table2.md").read_text().splitlines()[0]
    assert "| CLIP-Align | CLIP-Align (t*v) | CLIP-Score |" in header
    assert "CLIP-Align (t*v)" not in (tmp_path / "alone" / "table2.md").read_text()
    # A linear classifier is refused as the interaction one: the column would hold the paper's metric.
    assert cli_main([*argv, "--output_dir", str(tmp_path / "bad"), "--interaction_classifier", str(linear)]) == 2
    assert "no sentence x photo product term" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # refused before anything is scored or written


def test_write_generations_writes_what_read_generations_reads(tmp_path):
    from gest_showcases.metrics.generations import write_generations

    records = [
        {"id": "r1", "system": "PC2L", "generated": "Crispy rolls.", "reference": "We had rolls.", "pic_ids": ["p1"]},
        {"id": "r1", "system": "CE | only", "generated": "Rolls\nagain.", "reference": "We had rolls.", "pic_ids": []},
    ]
    path = write_generations(tmp_path / "new" / "generations.jsonl", records)
    assert path == tmp_path / "new" / "generations.jsonl" and not list(path.parent.glob(".*"))
    assert read_generations(path) == [
        Generation("r1", "PC2L", "Crispy rolls.", "We had rolls.", ("p1",)),
        Generation("r1", "CE | only", "Rolls\nagain.", "We had rolls.", ()),
    ]
