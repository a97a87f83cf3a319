"""The model cards' Hub metadata: `pipeline_tag`, `base_model` (a Hub name, never a local path) and a `model-index`
read from the results files the run commands wrote (train-pc2l's `all_results.json`, evaluate's `table2.json`,
train-selector's `table3.json`), never typed in. Oracles: the markdown tables the same commands print."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from huggingface_hub import ModelCard
from transformers import GPT2Config, GPT2LMHeadModel, Trainer

import gest_showcases.metrics.paper_tables as report
from demo_output import quick_demo_output
from gest_showcases.cards import generator_card, selector_card, split_front_matter
from gest_showcases.errors import InputError
from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration
from gest_showcases.report import parse_markdown_table
from gest_showcases.selection import DPPImageSelector, DPPSelectorConfig
from gest_showcases.selection.training import write_selection_table

DECODER = {"n_embd": 16, "n_layer": 1, "n_head": 2, "n_positions": 32, "vocab_size": 50}
TRAIN_METRICS = {"epoch": 3.0, "eval_loss": 4.5, "eval_loss_ce": 4.123456789, "train_loss": 5.0}
TABLE2_ROWS = {
    "PC2L": {
        "bleu_1": 0.1234567,
        "bleu_4": 0.01,
        "meteor": float("nan"),
        "distinct_1": 0.5,
        "clip_align": 0.8531,
    },
    "GT": {"distinct_1": 0.9},
}


def tiny_config(**overrides) -> PC2LConfig:
    return PC2LConfig(decoder=dict(DECODER), encoder_attention_heads=2, **overrides)


def load_card(card, folder: Path) -> ModelCard:
    """The card as the Hub reads it back: saved, then parsed from its YAML."""
    card.save(folder / "README.md")
    return ModelCard.load(folder / "README.md")


def write_train_results(run: Path, metrics: dict) -> None:
    """`all_results.json` as train-pc2l writes it: `Trainer.save_metrics("all", ...)` itself."""
    Trainer.save_metrics(
        SimpleNamespace(is_world_process_zero=lambda: True, args=SimpleNamespace(output_dir=str(run))),
        "all",
        metrics,
    )


def write_table2(folder: Path, rows: dict, monkeypatch) -> list[list[str]]:
    """`table2.json` and `table2.md` as `gest-showcases evaluate` writes them (`write_evaluation`, Figure 6 stubbed out:
    plotting takes seconds); returns the markdown table's rows, the oracle."""
    monkeypatch.setattr(report, "length_distribution_png", lambda values: b"")
    monkeypatch.setattr(report, "pos_coverage_png", lambda values: b"")
    monkeypatch.setattr(report, "pos_tagger", lambda: ("none", lambda texts: [[] for _ in texts]))
    records = [
        report.Generation(id="a", system=name, generated="Rich ramen.", reference="Ramen.") for name in rows
    ]
    report.write_evaluation(rows | {"GT": TABLE2_ROWS["GT"]}, records, folder)
    header, table = parse_markdown_table((folder / "table2.md").read_text())
    return [dict(zip(header, row, strict=True)) for row in table]


def metrics_of(card: ModelCard) -> dict[str, object]:
    return {entry.metric_name: entry.metric_value for entry in card.data.eval_results or []}


def test_generator_card_model_index_is_the_runs_own_results(tmp_path, monkeypatch):
    run = tmp_path / "pc2l"
    run.mkdir()
    write_train_results(run, TRAIN_METRICS)
    table = write_table2(run, {"PC2L": TABLE2_ROWS["PC2L"]}, monkeypatch)
    card = load_card(generator_card(tiny_config(), "me/gen", results_dir=run, dataset="me/data"), run)
    data = card.data
    assert (data.pipeline_tag, data.library_name, data.license, data.datasets) == (
        "text-generation", "transformers", "apache-2.0", ["me/data"]
    )  # fmt: skip
    assert {entry.task_type for entry in data.eval_results} == {"text-generation"}
    assert {entry.dataset_type for entry in data.eval_results} == {"me/data"}
    # Every defined Table 2 cell of the PC2L row, as the table prints it (x100, 2 decimals); "-" cells are absent.
    row = next(row for row in table if row["Model"] == "PC2L")
    expected = {
        f"{name} (x100)": float(value) for name, value in row.items() if name != "Model" and value != "-"
    }
    expected["Validation cross-entropy (L_CE, nats per token)"] = 4.1235
    assert metrics_of(card) == expected
    assert set(expected) == {
        "BLEU-1 (x100)", "BLEU-4 (x100)", "Distinct-1 (x100)", "CLIP-Align (x100)",
        "Validation cross-entropy (L_CE, nats per token)",
    }  # fmt: skip
    loss = next(entry for entry in data.eval_results if entry.metric_type == "loss")
    assert (loss.dataset_config, loss.dataset_split) == ("s2", "validation")
    assert "| CLIP-Align (x100) | 85.31 | - | `table2.json` (evaluate, row PC2L) |" in card.text


def test_a_system_name_adds_no_html_link_or_heading_to_the_card(tmp_path, monkeypatch):
    """Session 26's audit: a generations file's system name went verbatim into the published card's table."""
    name = 'PC2L` |\n\n<img src="https://x.example/t.png">\n[click](javascript:alert(1))\n## Injected'
    run = tmp_path / "pc2l"
    run.mkdir()
    write_table2(run, {name: TABLE2_ROWS["PC2L"]}, monkeypatch)
    card = load_card(generator_card(tiny_config(), "me/gen", results_dir=run), run)
    rows = [line for line in card.text.splitlines() if "table2.json" in line]
    assert len(rows) == len(metrics_of(card)) > 0  # one line each: the name broke no row
    for row in rows:
        assert row.endswith(
            "(evaluate, row PC2L' \\| &lt;img src=\"https://x.example/t.png\"&gt; \\[click\\](javascript:alert(1)) "
            "## Injected) |"
        )
    assert "<img" not in card.text and "\n## Injected" not in card.text


def test_the_run_folder_defaults_to_where_the_model_was_loaded_from(tmp_path):
    run = tmp_path / "pc2l"
    torch.manual_seed(0)
    PC2LForConditionalGeneration(tiny_config()).save_pretrained(run)
    write_train_results(run, TRAIN_METRICS)
    config = PC2LForConditionalGeneration.from_pretrained(run).config
    assert metrics_of(generator_card(config, "me/gen")) == {
        "Validation cross-entropy (L_CE, nats per token)": 4.1235
    }
    # No results file (a run without a validation split writes no `eval_` metric): no model-index, and the card says so.
    (run / "all_results.json").unlink()
    write_train_results(run, {"train_loss": 5.0})
    card = load_card(generator_card(config, "me/gen"), tmp_path)
    assert card.data.eval_results is None and "model-index" not in split_front_matter(str(card))[0]
    assert (
        "No results file of the run was found" in card.text
        and "so this card has no `model-index`" in card.text
    )
    # A config built in memory comes from no folder.
    assert generator_card(tiny_config(), "me/gen").data.eval_results is None


def test_a_table2_of_several_systems_needs_this_models_row(tmp_path, monkeypatch):
    rows = {"A": {"bleu_1": 0.1}, "B": {"bleu_1": 0.2}}
    write_table2(tmp_path, rows, monkeypatch)
    with pytest.raises(InputError, match=r"scores \['A', 'B'\]: say which row"):
        generator_card(tiny_config(), "me/gen", results_dir=tmp_path)
    assert metrics_of(generator_card(tiny_config(), "me/gen", results_dir=tmp_path, system="B")) == {
        "BLEU-1 (x100)": 20.0
    }


def test_base_model_is_the_decoders_hub_name_and_never_a_local_path(tmp_path, monkeypatch):
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(**DECODER)).save_pretrained(tmp_path / "gpt2")
    local = PC2LForConditionalGeneration.from_decoder_pretrained(
        str(tmp_path / "gpt2"), encoder_attention_heads=2
    )
    assert local.config.decoder.name_or_path == str(tmp_path / "gpt2")
    card = generator_card(local.config, "me/gen")
    assert card.data.base_model is None and str(tmp_path) not in str(card)
    # A relative folder that exists here is local too, though it looks like a repo id.
    monkeypatch.chdir(tmp_path)
    local.config.decoder._name_or_path = "gpt2"
    assert generator_card(local.config, "me/gen").data.base_model is None
    local.config.decoder._name_or_path = "openai-community/gpt2"
    card = generator_card(local.config, "me/gen")
    assert (
        card.data.base_model == "openai-community/gpt2"
        and "started from `openai-community/gpt2`" in card.text
    )
    # Given, it wins.
    assert generator_card(local.config, "me/gen", base_model="gpt2").data.base_model == "gpt2"
    # A local folder given as the base model is left out of the card (with a warning), never published.
    card = generator_card(local.config, "me/gen", base_model=str(tmp_path / "gpt2"))
    assert card.data.base_model is None and str(tmp_path) not in str(card)


def test_a_decoder_other_than_gpt2_is_described_by_its_own_config():
    llama = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
             "num_key_value_heads": 2, "intermediate_size": 64, "vocab_size": 50}  # fmt: skip
    config = PC2LConfig(decoder=llama, encoder_attention_heads=2)
    config.decoder._name_or_path = "HuggingFaceTB/SmolLM2-135M"
    card = generator_card(config, "me/gen")
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M" and "llama" in card.data.tags
    assert "a `llama`\ndecoder (1 layers, width 32, started from `HuggingFaceTB/SmolLM2-135M`)" in card.text
    assert "| decoder | llama |" in card.text and "| decoder width | 32 |" in card.text


def save_selector(folder: Path, input_mode: str) -> DPPImageSelector:
    torch.manual_seed(0)
    config = DPPSelectorConfig(text_dim=8, image_dim=8, user_hidden_sizes=[8], image_hidden_sizes=[8], embed_dim=4,
                               input_mode=input_mode)  # fmt: skip
    DPPImageSelector(config).save_pretrained(folder)
    return DPPImageSelector.from_pretrained(folder)


def test_selector_card_model_index_is_its_row_of_train_selectors_table3(tmp_path):
    run = tmp_path / "selector-runs"
    results = {
        "random": {"precision@3": 0.05, "recall@3": 0.1, "f1@3": 0.0667, "div@3": 0.11},
        "img+text": {"precision@3": 0.0625, "recall@3": 0.1875, "f1@3": 0.09375, "div@3": 0.34919},
    }
    markdown = write_selection_table(results, 3, run, {"train": 173, "test": 16})
    model = save_selector(run / "selector-img+text", "img+text")
    card = load_card(selector_card(model.config, "me/sel"), tmp_path)
    assert (card.data.pipeline_tag, card.data.library_name) == ("other", "transformers")
    header, rows = parse_markdown_table(markdown)
    oracle = dict(zip(header, next(row for row in rows if row[0] == "img+text"), strict=True))
    assert metrics_of(card) == {f"{column} (%)": float(oracle[column]) for column in header[1:]}
    assert {(entry.dataset_config, entry.dataset_split) for entry in card.data.eval_results} == {
        ("s1", "test")
    }
    assert {entry.metric_type for entry in card.data.eval_results} == {
        "precision",
        "recall",
        "f1",
        "div_at_k",
    }
    # The row is the model's input mode; a table without it, or a parent folder that is not train-selector's
    # layout (`<output_dir>/selector-<mode>`), gives no model-index.
    assert (
        selector_card(save_selector(run / "selector-img", "img").config, "me/sel").data.eval_results is None
    )
    other = save_selector(run / "my-selector", "img+text")
    assert selector_card(other.config, "me/sel").data.eval_results is None


@pytest.mark.slow
def test_cards_of_the_quick_demo_hold_its_own_tables():
    """End to end: the files the demo's commands wrote, the numbers its printed tables show."""
    demo = quick_demo_output()
    generator = PC2LForConditionalGeneration.from_pretrained(demo / "pc2l")
    card = generator_card(generator.config, "me/gen", results_dir=demo / "evaluation", system="PC2L")
    header, rows = parse_markdown_table((demo / "evaluation" / "table2.md").read_text())
    row = dict(zip(header, next(row for row in rows if row[0] == "PC2L"), strict=True))
    # Every score column of the printed table, CLIP-Align (t*v) included (the ground-truth columns are not Table 2's).
    scores = dict(report.table2_columns([{report.INTERACTION_ALIGN_COLUMN[0]: 0.0}], synth_truth=False))
    assert "CLIP-Align (t*v)" in header  # the demo scores it, so the card must carry it
    table2 = {name: value for name, value in row.items() if name in scores.values()}
    assert metrics_of(card) == {
        f"{name} (x100)": float(value) for name, value in table2.items() if value != "-"
    }
    results = json.loads((demo / "pc2l" / "all_results.json").read_text())
    card = generator_card(generator.config, "me/gen")  # the run folder itself: train-pc2l's validation loss
    assert metrics_of(card) == {
        "Validation cross-entropy (L_CE, nats per token)": round(results["eval_loss_ce"], 4)
    }
    assert card.data.base_model is None  # the demo's decoder is a local from-scratch GPT-2
    selector = DPPImageSelector.from_pretrained(demo / "selector" / "selector-img+text")
    header, rows = parse_markdown_table((demo / "selector" / "table3.md").read_text())
    row = dict(zip(header, next(row for row in rows if row[0] == "img+text"), strict=True))
    assert metrics_of(selector_card(selector.config, "me/sel")) == {
        f"{column} (%)": float(row[column]) for column in header[1:]
    }


@pytest.mark.parametrize(
    ("text", "published"),
    [
        ("trained in /home/me/runs/pc2l on `/data/my gest/s2`", "trained in pc2l on `s2`"),
        ('<a href="x">run</a> from C:\\Users\\me\\runs\\phi', '<a href="x">run</a> from phi'),
        ("<details><summary>log</summary>/srv/job/out.txt</details>", "<details><summary>log</summary>out.txt</details>"),
        ("see https://hf.co/a/b and s1/train-0.parquet", "see https://hf.co/a/b and s1/train-0.parquet"),
    ],
)
def test_published_cards_keep_closing_tags_and_drop_local_paths(text, published):
    from gest_showcases.cards import strip_local_paths

    assert strip_local_paths(text) == published
