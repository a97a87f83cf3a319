"""The experiment's scoring stages against oracles: the PC2L decoders' perplexity on the test references, Table 2 with
every metric across seeds, and the per-seed caches that a second run reuses instead of recomputing."""

import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "generation"))
from pc2l_fixtures import CORPUS, FEATURE_DIM, build_tokenizer, tiny_config  # noqa: E402

from gest_showcases.commands import experiment as experiment_command  # noqa: E402
from gest_showcases.commands.experiment import Experiment, ExperimentArguments  # noqa: E402
from gest_showcases.experiments import summary  # noqa: E402
from gest_showcases.experiments.grid import CE_ONLY, PC2L, reference_nll  # noqa: E402
from gest_showcases.experiments.summary import summarise, summarise_every_metric, tables_markdown  # noqa: E402
from gest_showcases.generation import PC2LForConditionalGeneration  # noqa: E402
from gest_showcases.generation.collator import PC2LCollator, PC2LDataset  # noqa: E402
from gest_showcases.metrics import intervals  # noqa: E402
from gest_showcases.metrics.generations import GROUND_TRUTH  # noqa: E402
from gest_showcases.metrics.paper_tables import INTERACTION_ALIGN_COLUMN  # noqa: E402

ALIGN = INTERACTION_ALIGN_COLUMN[0]

# The last reference is longer than the training collator's 64 tokens: the perplexity must read all of it.
TARGETS = [CORPUS[0], CORPUS[1], "the soup", " ".join(CORPUS[:6])]


class UniformLogits(torch.nn.Module):
    """A decoder whose next-token distribution is uniform over `vocab` tokens: perplexity `vocab` per token."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab

    def forward(self, input_ids, **_):
        return SimpleNamespace(logits=torch.zeros(*input_ids.shape, self.vocab))


def _dataset(targets=TARGETS):
    generator = torch.Generator().manual_seed(0)
    return PC2LDataset(
        targets,
        [torch.randn(2, FEATURE_DIM, generator=generator) for _ in targets],
        [torch.randn(1, FEATURE_DIM, generator=generator) for _ in targets],
    )


def test_reference_nll_of_uniform_logits_gives_perplexity_vocab_per_token_and_the_word_oracle():
    tokenizer = build_tokenizer()
    vocab = len(tokenizer)  # every target id must be a class of the logits
    parts = reference_nll(
        UniformLogits(vocab), _dataset(), tokenizer, max_images=5, max_reviews=10, batch_size=3
    )
    # Every body token and the end token are predicted, never truncated (the long reference has > 64 tokens).
    lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) + 1 for t in TARGETS]
    assert lengths[-1] > 64
    assert parts["tokens"].tolist() == lengths
    assert parts["words"].tolist() == [len(t.split()) for t in TARGETS]
    np.testing.assert_allclose(parts["nll"], np.asarray(lengths) * math.log(vocab), rtol=1e-6)

    # Perplexities as Table 2 / 4 report them, per seed and across seeds (the same parts twice: no spread).
    cell = {"texts": ["a"] * len(TARGETS), "truth_parts": {}, "probe": {},
            "perplexity": {key: value.tolist() for key, value in parts.items()}}  # fmt: skip
    per_seed = {seed: {"references": TARGETS, "selection": {}, "generation": {PC2L: cell}} for seed in (0, 1)}
    results = summarise(per_seed, num_resamples=50)["generation"][PC2L]
    assert results["ppl_token"]["per_seed"][0]["estimate"] == pytest.approx(vocab, rel=1e-6)
    assert results["ppl_token"]["estimate"] == pytest.approx(vocab, rel=1e-6)
    per_word = math.exp(sum(lengths) * math.log(vocab) / sum(len(t.split()) for t in TARGETS))
    assert results["ppl_word"]["per_seed"][1]["estimate"] == pytest.approx(per_word, rel=1e-5)


def test_reference_nll_sums_the_model_loss_over_each_reference():
    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    model = PC2LForConditionalGeneration(
        tiny_config(tokenizer, image_contrastive="none", review_contrastive="none")
    ).eval()
    dataset = _dataset(TARGETS[:3])
    parts = reference_nll(model, dataset, tokenizer, max_images=5, max_reviews=10, batch_size=2)
    collator = PC2LCollator(tokenizer)
    for index in range(len(dataset)):
        batch = collator([dataset[index]])
        with torch.no_grad():
            mean = model(**batch).loss.item()  # the mean over the predicted tokens
        count = int((batch["labels"][:, 1:] != -100).sum())
        assert parts["tokens"][index] == count
        assert parts["nll"][index] == pytest.approx(mean * count, rel=1e-5)


def _every_metric_rows(seed):
    # BLEU-1 of PC2L 0.10 / 0.20 / 0.40 over seeds; CLIP-Align undefined (None) in seed 1; GT without BLEU.
    bleu = {0: 0.1, 1: 0.2, 2: 0.4}[seed]
    return {
        CE_ONLY: {"bleu_1": 0.3, "nist_4": 1.2, "clip_align": 0.5},
        PC2L: {"bleu_1": bleu, "clip_align": None if seed == 1 else 0.25 + seed / 10},
        "ST": {"bleu_1": 0.05},
        GROUND_TRUTH: {"distinct_1": 0.124, "clip_align": 0.4},
    }


def _section(markdown, title):
    lines = markdown.split(title)[1].strip().splitlines()
    table = [line for line in lines if line.startswith("|")]
    return lines, [[cell.strip() for cell in line.strip("|").split("|")] for line in table]


def test_every_metric_means_and_t_intervals_across_seeds_and_its_table():
    summary = summarise_every_metric({seed: _every_metric_rows(seed) for seed in range(3)})
    bleu = summary[PC2L]["bleu_1"]
    expected = intervals.seed_interval([0.1, 0.2, 0.4])
    assert bleu["per_seed"] == {0: 0.1, 1: 0.2, 2: 0.4}
    assert bleu["estimate"] == pytest.approx(expected.estimate)
    assert bleu["ci95"] == pytest.approx([expected.low, expected.high])
    # By hand: mean 7/30, sd = sqrt(7/300), t(0.975, 2 dof) = 4.302653.
    assert bleu["ci95"][1] - bleu["estimate"] == pytest.approx(4.302653 * math.sqrt(7 / 300) / math.sqrt(3))
    clip_align = summary[PC2L]["clip_align"]  # seed 1 has none: the mean of seeds 0 and 2
    assert clip_align["per_seed"][1] is None
    assert clip_align["estimate"] == pytest.approx(0.35)
    assert summary[PC2L]["bertscore_f1"]["estimate"] is None

    args = ExperimentArguments(tables=["2"], baselines=["st", "peter"], seeds=3)
    results = {"generation": {}, "selection": {}, "differences": {}, "table2_all": summary}
    lines, rows = _section(tables_markdown(results, args, 10, 60.0), "## Table 2, every metric")
    assert "mean over the 3 seeds [95% t-interval across seeds]" in lines[0]
    assert rows[0] == ["System", "Input", "BLEU-1", "BLEU-4", "METEOR", "NIST", "Distinct-1", "Distinct-2",
                       "CLIP-Align", "CLIP-Score", "BERT-Score"]  # fmt: skip
    body = {row[0]: row[1:] for row in rows[2:]}
    assert list(body) == [CE_ONLY, PC2L, "ST", GROUND_TRUTH]  # PETER was asked for but has no scores: no row
    low, high = 100 * expected.low, 100 * expected.high
    assert body[PC2L][:2] == ["img+text", f"23.3 [{low:.1f}, {high:.1f}]"]
    assert body[CE_ONLY][:5] == ["img+text", "30.0 [30.0, 30.0]", "-", "-", "120.0 [120.0, 120.0]"]
    assert body["ST"][:2] == ["img", "5.0 [5.0, 5.0]"]
    assert body[GROUND_TRUTH][:2] == ["-", "-"] and body[GROUND_TRUTH][5] == "12.4 [12.4, 12.4]"

    # One seed: the estimate alone, and the caption says so.
    one = {"generation": {}, "selection": {}, "differences": {},
           "table2_all": summarise_every_metric({0: _every_metric_rows(0)})}  # fmt: skip
    lines, rows = _section(tables_markdown(one, ExperimentArguments(tables=["2"], seeds=1), 10, 60.0),
                           "## Table 2, every metric")  # fmt: skip
    assert "one seed: no interval across seeds" in lines[0]
    assert rows[3][:3] == [PC2L, "img+text", "10.0"]


def _write_generations(path, systems, n=3):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        for system in systems:
            for i in range(n):
                handle.write(json.dumps({"id": f"r{i}", "system": system, "generated": f"{system} text {i}",
                                         "reference": f"reference {i}", "pic_ids": [f"p{i}"]}) + "\n")  # fmt: skip


def test_every_metric_is_cached_per_seed_and_scores_only_the_systems_it_lacks(tmp_path, monkeypatch):
    calls = []

    def fake_score_generations(records, **kwargs):
        systems = list(dict.fromkeys(record.system for record in records))
        calls.append(systems)
        rows = {system: {"bleu_1": 0.1 * (len(calls)), "meteor": float("nan"), ALIGN: 0.4} for system in systems}
        return rows | {GROUND_TRUTH: {"distinct_1": 0.5, ALIGN: 0.6}}

    monkeypatch.setattr(experiment_command, "score_generations", fake_score_generations)
    args = ExperimentArguments(output_dir=str(tmp_path), tables=["2"], baselines=["peter"], seeds=1)
    experiment = Experiment(args)
    # No encoder, CLIP or classifier to load: the fake scorer needs none.
    experiment.__dict__ |= {"bertscore_model": None, "clip_metric_models": (None, None, None)}
    generations = experiment.seed_dir(0) / "generations.jsonl"
    _write_generations(generations, [CE_ONLY, PC2L])

    first = experiment.every_metric(0)
    assert calls == [[CE_ONLY, PC2L]]
    assert list(first) == [CE_ONLY, PC2L, GROUND_TRUTH]
    assert first[PC2L]["meteor"] is None  # NaN: nothing measured
    assert experiment.every_metric(0) == first  # cached: no second scoring
    assert len(calls) == 1
    # The recorded scoring time counts in the run's compute time (nothing else ran in this folder).
    seconds = json.loads(experiment.every_metric_path(0).read_text())["seconds"]
    assert seconds > 0 and experiment.compute_seconds(range(1)) == pytest.approx(seconds)

    _write_generations(generations, ["PETER"])  # the seed's generations gained a system
    third = experiment.every_metric(0)
    assert calls == [[CE_ONLY, PC2L], ["PETER"]]
    assert third[PC2L] == first[PC2L] and third["PETER"]["bleu_1"] == pytest.approx(0.2)
    assert list(third) == [CE_ONLY, PC2L, "PETER", GROUND_TRUTH]


def test_a_generations_file_without_reference_photos_gains_them_and_every_row_is_scored_again(tmp_path, monkeypatch):
    calls = []

    def fake_score_generations(records, **kwargs):
        calls.append({(record.system, record.id): record.reference_pic_ids for record in records})
        return {record.system: {"bleu_1": 0.1, ALIGN: 0.4} for record in records} | {GROUND_TRUTH: {"distinct_1": 0.5}}

    monkeypatch.setattr(experiment_command, "score_generations", fake_score_generations)
    experiment = Experiment(ExperimentArguments(output_dir=str(tmp_path), tables=["2"], baselines=["none"], seeds=1))
    experiment.__dict__ |= {"bertscore_model": None, "clip_metric_models": (None, None, None)}
    generations = experiment.seed_dir(0) / "generations.jsonl"
    _write_generations(generations, [CE_ONLY, PC2L], n=2)  # a file from before reference_pic_ids
    experiment.every_metric(0)  # without the rows nothing can be filled in: scored on the shown photos
    assert calls[0][(PC2L, "r1")] == ()
    rows = [{"review_id": "r0", "pics": ["own0"]}, {"review_id": "r1", "pics": ["own1a", "own1b"]}]
    experiment.every_metric(0, rows)
    assert len(calls) == 2 and calls[1][(CE_ONLY, "r1")] == ("own1a", "own1b")  # every row again, own photos now
    lines = [json.loads(line) for line in generations.read_text().splitlines()]
    assert [line["reference_pic_ids"] for line in lines] == [["own0"], ["own1a", "own1b"]] * 2
    assert [line["pic_ids"] for line in lines] == [["p0"], ["p1"]] * 2  # the shown photos are kept
    experiment.every_metric(0, rows)
    assert len(calls) == 2  # cached


def test_a_cached_seed_gains_its_perplexities_without_retraining_or_regenerating(tmp_path, monkeypatch):
    args = ExperimentArguments(output_dir=str(tmp_path), tables=["2"], baselines=["none"], seeds=1)
    experiment = Experiment(args)
    cell = {"texts": ["a", "b"], "truth_parts": {}, "probe": {}}
    scores = {"selection": {}, "generation": {CE_ONLY: dict(cell), PC2L: dict(cell), GROUND_TRUTH: dict(cell)},
              "references": ["x y", "z"], "seconds": 10.0, "scoring_seconds": 4.0}  # fmt: skip
    scores_path = experiment.seed_dir(0) / "scores.json"
    scores_path.parent.mkdir(parents=True)
    scores_path.write_text(json.dumps(scores))
    for system in (CE_ONLY, PC2L):
        marker = experiment.generator_dir(0, system) / ".done"
        marker.parent.mkdir(parents=True)
        marker.write_text("{}")

    def no_cells(*_):
        raise AssertionError("the seed's cells are cached: nothing may be trained or generated")

    calls = []

    def fake_parts(folder, rows):
        calls.append(folder)
        return {"nll": np.array([2.0, 3.0]), "tokens": np.array([2, 1]), "words": np.array([2, 1])}

    monkeypatch.setattr(experiment, "_run_cells", no_cells)
    monkeypatch.setattr(experiment, "train_generator", no_cells)
    monkeypatch.setattr(experiment, "perplexity_parts", fake_parts)
    rows = [{"review_id": "r0"}, {"review_id": "r1"}]
    result = experiment.run_seed(0, rows)
    assert calls == [experiment.generator_dir(0, CE_ONLY), experiment.generator_dir(0, PC2L)]
    saved = json.loads(scores_path.read_text())
    assert saved["generation"][PC2L]["perplexity"] == {"nll": [2.0, 3.0], "tokens": [2, 1], "words": [2, 1]}
    assert "perplexity" not in saved["generation"][GROUND_TRUTH]
    assert saved["scoring_seconds"] > 4.0 and result["generation"][CE_ONLY]["perplexity"]["nll"] == [2.0, 3.0]
    experiment.run_seed(0, rows)  # cached now
    assert len(calls) == 2
    ppl = summarise({0: saved}, num_resamples=20)["generation"][PC2L]
    assert ppl["ppl_token"]["estimate"] == pytest.approx(math.exp(5 / 3))
    assert "ppl_token" not in summarise({0: saved}, num_resamples=20)["generation"][GROUND_TRUTH]


def test_perplexity_columns_show_only_on_pc2l_rows():
    generation = {
        CE_ONLY: {"ppl_word": {"estimate": 31.25, "ci95": [30.0, 32.5]}},
        PC2L: {"ppl_word": {"estimate": 8.5, "ci95": None}},
        "PETER": {"bleu_1": {"estimate": 0.1, "ci95": None}},
        GROUND_TRUTH: {"bleu_1": {"estimate": 1.0, "ci95": None}},
    }
    results = {"generation": generation, "selection": {}, "differences": {}}
    markdown = tables_markdown(results, ExperimentArguments(tables=["2"], baselines=["peter"]), 10, 60.0)
    _, rows = _section(markdown, "## Table 2: PC2L")
    column = rows[0].index("PPL/word")
    assert rows[0][column - 1] == "PPL/token"
    assert {row[0]: row[column] for row in rows[2:]} == {
        CE_ONLY: "31.2 [30.0, 32.5]", PC2L: "8.50", "PETER": "-", GROUND_TRUTH: "-",
    }  # fmt: skip
    assert summary.GENERATION_COLUMNS[-2:] == (("delta_images", "dCE photos swapped", 1),
                                               ("delta_reviews", "dCE reviews swapped", 1))  # fmt: skip
    assert "Variant" not in markdown
    variant = ExperimentArguments(tables=["2"], baselines=["peter"], variant="h7", generator_args="--review_contrastive none")
    assert "Variant `h7`: every contrastive row below was trained with `--review_contrastive none`" in tables_markdown(
        results, variant, 10, 60.0
    )
    variant.variant_ce_only = True
    assert "every row trained by train-pc2l (CE only included) below was trained with" in tables_markdown(results, variant, 10, 60.0)
    # A variant without options (its cells kept apart, e.g. for a research script) says so, not "with ``".
    bare = tables_markdown(results, ExperimentArguments(tables=["2"], baselines=["peter"], variant="probe"), 10, 60.0)
    assert "``" not in bare
    assert "Variant `probe`: every contrastive row below was trained with the loss configuration its name gives and no other options" in bare


def test_a_seed_scored_before_the_interaction_classifier_gains_clip_align_interaction(tmp_path, monkeypatch):
    calls = []

    def fake_score_generations(records, **kwargs):
        calls.append(kwargs["interaction_scorer"])
        systems = dict.fromkeys(record.system for record in records)
        return {system: {"bleu_1": 0.1, ALIGN: 0.3} for system in systems} | {GROUND_TRUTH: {ALIGN: 0.7}}

    monkeypatch.setattr(experiment_command, "score_generations", fake_score_generations)
    experiment = Experiment(ExperimentArguments(output_dir=str(tmp_path), tables=["2"], baselines=["none"], seeds=1))
    experiment.__dict__ |= {"bertscore_model": None, "clip_metric_models": (None, None, "interaction scorer")}
    _write_generations(experiment.seed_dir(0) / "generations.jsonl", [CE_ONLY, PC2L])
    # A cache written before the column existed: every row but the metric.
    old_rows = {CE_ONLY: {"bleu_1": 0.1}, PC2L: {"bleu_1": 0.1}, GROUND_TRUTH: {"distinct_1": 0.5}}
    experiment.every_metric_path(0).write_text(json.dumps({"rows": old_rows, "seconds": 1.0}))
    rows = experiment.every_metric(0)
    assert calls == ["interaction scorer"]  # rescored once, with the interaction classifier
    assert rows[PC2L][ALIGN] == 0.3 and rows[GROUND_TRUTH][ALIGN] == 0.7
    experiment.every_metric(0)
    assert len(calls) == 1  # cached now
