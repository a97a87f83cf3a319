"""Model and dataset cards filled from a run's config and metrics, offline."""

import pytest
import yaml
from huggingface_hub import DatasetCard, ModelCard

from gest_showcases.cards import (
    dataset_card,
    generator_card,
    results_markdown,
    selector_card,
    split_front_matter,
)
from gest_showcases.features.inputs import read_config_rows
from gest_showcases.generation import PC2LConfig
from gest_showcases.selection import DPPSelectorConfig

TABLE3 = "| Method | P@3 | R@3 |\n|---|---:|---:|\n| random | 8.10 | 9.00 |\n| img+text | 21.40 | 25.00 |"


def test_results_markdown_from_rows():
    rows = {"random": {"P@3": 8.1, "R@3": 9.0}, "img+text": {"P@3": 21.456789}}
    assert results_markdown(rows).splitlines() == [
        "|  | P@3 | R@3 |",
        "|---|---:|---:|",
        "| random | 8.1 | 9 |",
        "| img+text | 21.46 | - |",
    ]
    assert results_markdown(TABLE3) == TABLE3 and results_markdown(None) == ""
    # A name with a `|` or a line break stays in its cell (the architecture audit, session 27: it split the row).
    assert results_markdown({"a|b\nc": {"P@3": 1.0}}).splitlines()[-1] == "| a\\|b c | 1 |"


def test_selector_card(tmp_path):
    config = DPPSelectorConfig(input_mode="img", embed_dim=64, top_k=4)
    card = selector_card(config, "me/gest-showcases-selector", results=TABLE3, clip="my/clip",
                         dataset="me/gest-showcases-data", run={"num_epochs": 30, "seed": 7})  # fmt: skip
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    assert loaded.data.library_name == "transformers" and loaded.data.license == "apache-2.0"
    assert "custom_code" in loaded.data.tags and loaded.data.datasets == ["me/gest-showcases-data"]
    text = loaded.text
    assert 'AutoModel.from_pretrained("me/gest-showcases-selector", trust_remote_code=True)' in text
    assert "pick the 4 that this user cares about" in text and "Input mode: `img`" in text
    assert "| embed_dim | 64 |" in text and "| num_epochs | 30 |" in text and "| seed | 7 |" in text
    assert (
        "| img+text | 21.40 | 25.00 |" in text
        and "`my/clip`" in text
        and "@inproceedings{yan2023personalized" in text
    )


def test_generator_card_describes_inputs_losses_and_base_model():
    config = PC2LConfig(decoder={"n_embd": 48, "n_layer": 3, "n_head": 2, "vocab_size": 100},
                        encoder_attention_heads=2, image_contrastive="cl", review_contrastive="none")  # fmt: skip
    card = generator_card(
        config, "me/gen", results={"PC2L": {"BLEU-1": 0.25}}, base_model="gpt2", image_kind="image"
    )
    front, body = split_front_matter(str(card))
    assert front["base_model"] == "gpt2" and "pc2l" in front["tags"]
    assert "GPT-2\ndecoder (3 layers, width 48, started from `gpt2`)" in body
    assert (
        "cross-entropy\n+ 0.2 x image CL." in body
        and "review" not in body.split("Training losses:")[1].split(".")[0]
    )
    assert "CLIP image embeddings, L2-normalised (512-d)" in body
    assert "| image_contrastive | cl |" in body and "| review_contrastive | none |" in body
    assert "| PC2L | 0.25 |" in body
    with pytest.raises(ValueError, match="image_kind must be one of"):
        generator_card(config, "me/gen", image_kind="clip")


def test_dataset_card_keeps_configs_and_adds_statistics(built_dataset, tmp_path):
    original = (built_dataset / "README.md").read_text()
    card = dataset_card(built_dataset, "me/gest-showcases-data")
    assert (built_dataset / "README.md").read_text() == original  # the folder is not touched
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / "s1").symlink_to(built_dataset / "s1")
    card.save(folder / "README.md")
    loaded = DatasetCard.load(folder / "README.md")
    assert loaded.data.configs == yaml.safe_load(original.split("---\n")[1])["configs"]
    assert loaded.data.task_categories == ["image-to-text", "text-generation"]
    # Still a loadable dataset folder: the same rows through the card's configs.
    assert len(read_config_rows(folder, "s1")) == len(read_config_rows(built_dataset, "s1")) == 5
    text = loaded.text
    assert 'load_dataset("me/gest-showcases-data", "s2")' in text and "Configs: `s1`." in text
    assert "| s1 | all | 8 | 5 | 3 | 2 |" in text  # Table 1: images, reviews, users, businesses
    assert "## How it was built\n\n### test dataset" in text


def test_dataset_card_needs_a_built_folder(tmp_path):
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\nhello")
    with pytest.raises(ValueError, match="lists no `configs:`"):
        dataset_card(tmp_path, "me/data")
    (tmp_path / "README.md").write_text("no front matter")
    with pytest.raises(ValueError, match="no YAML front matter"):
        dataset_card(tmp_path, "me/data")
