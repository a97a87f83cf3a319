"""Model cards for the selector and the generator, and the dataset card, from a run's config and metrics.

The templates are `gest_showcases/model_cards/{selector,generator,dataset}.md` (Jinja, shipped with the
package); `huggingface_hub.ModelCard.from_template` / `DatasetCard.from_template` fill them, offline (only
`card.validate()` needs the network). Results are given as the runs write them: a markdown table (e.g.
`table3.md`, `table2.md`) or `{row: {column: value}}`.

A card is published, so it names no folder of this machine: every absolute path in a card's text
(a local `--clip` folder, the classifier folder a dataset's build notes mention, ...) is replaced by its
last component (`strip_local_paths`).

Example:

```python
>>> from gest_showcases.cards import selector_card
>>> from gest_showcases.selection import DPPSelectorConfig
>>> card = selector_card(DPPSelectorConfig(), "me/gest-showcases-selector", results=open("table3.md").read())
>>> card.save("README.md")
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import yaml
from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, ModelCardData
from transformers import PreTrainedConfig

TEMPLATES = Path(__file__).parent / "model_cards"
PAPER_URL = "https://arxiv.org/abs/2207.00422"
CITATION = """@inproceedings{yan2023personalized,
  title     = {Personalized Showcases: Generating Multi-Modal Explanations for Recommendations},
  author    = {Yan, An and He, Zhankui and Li, Jiacheng and Zhang, Tianyang and McAuley, Julian},
  booktitle = {Proceedings of the 46th International ACM SIGIR Conference on Research and Development
               in Information Retrieval},
  year      = {2023}
}"""
TAGS = ["gest-showcases", "personalized-showcases", "recommendation", "explanation", "custom_code"]
IMAGE_FEATURES = {
    "vision": "the pooled output of the generator's image backbone (by default CLIP's vision tower)",
    "image": "CLIP image embeddings, L2-normalised",
}
Results = str | Mapping[str, Mapping[str, object]] | None
Run = Mapping[str, object] | None
# An absolute path as it appears in free text: POSIX `/a/b`, Windows `C:\a\b` or `C:/a/b`; the whole of a
# `code span` (a path there may hold spaces), else up to a space, quote, bracket or separator. A slash after
# a word, a dot, `:` or `/` (URLs, `s1/train-*`, `../x`) does not start one.
_ABSOLUTE_PATH = re.compile(
    r"(?<=`)(?:/|[A-Za-z]:[\\/])[^`\n]+(?=`)|(?<![\w.:/~-])(?:/|[A-Za-z]:[\\/])[^\s`'\"()<>\[\]{}|,;]+"
)


def strip_local_paths(text: str) -> str:
    """`text` with every absolute path replaced by its last component (`/home/me/runs/phi` -> `phi`)."""

    def name(match: re.Match) -> str:
        return re.split(r"[\\/]", match.group(0).rstrip("\\/"))[-1] or match.group(0)

    return _ABSOLUTE_PATH.sub(name, text)


def _published(card):
    """The card as it is published: no absolute path of this machine in its metadata or its text."""
    return type(card)(strip_local_paths(card.content))


def results_markdown(results: Results) -> str:
    """A markdown table from rows `{name: {column: value}}` (floats with 4 significant digits); strings as given."""
    if results is None or isinstance(results, str):
        return (results or "").strip()
    columns = list(dict.fromkeys(column for row in results.values() for column in row))
    lines = ["| | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, row in results.items():
        cells = [f"{row[c]:.4g}" if isinstance(row.get(c), float) else str(row.get(c, "-")) for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _config_rows(config: PreTrainedConfig, keys: tuple[str, ...]) -> list[tuple[str, object]]:
    values = config.to_dict()
    return [(key, values[key]) for key in keys]


def _run_rows(run: Run) -> list[tuple[str, object]]:
    return [(key, value) for key, value in (run or {}).items()]


def selector_card(
    config: PreTrainedConfig,
    repo_id: str,
    results: Results = None,
    clip: str = "openai/clip-vit-base-patch32",
    dataset: str | None = None,
    run: Run = None,
) -> ModelCard:
    """The card of a `DPPImageSelector`.

    Args:
        config (`DPPSelectorConfig`): the trained model's configuration.
        repo_id (`str`): where it is (to be) published, e.g. `"me/gest-showcases-selector"`.
        results: Table 3 style results (`table3.md`, or rows by method).
        clip (`str`): the CLIP checkpoint its features come from.
        dataset (`str`, *optional*): the Hub dataset it was trained on.
        run (`Mapping[str, object]`, *optional*): training settings to list (epochs, batch size, seed...).
    """
    keys = ("input_mode", "text_dim", "image_dim", "user_hidden_sizes", "image_hidden_sizes", "embed_dim",
            "max_log_quality", "similarity_eps", "top_k")  # fmt: skip
    data = ModelCardData(
        library_name="transformers",
        license="apache-2.0",
        model_name=repo_id.split("/")[-1],
        datasets=[dataset] if dataset else None,
        tags=[*TAGS, "dpp", "image-selection"],
    )
    card = ModelCard.from_template(
        data,
        template_path=str(TEMPLATES / "selector.md"),
        repo_id=repo_id,
        top_k=config.top_k,
        input_mode=config.input_mode,
        clip=clip,
        config_rows=_config_rows(config, keys),
        results=results_markdown(results),
        run=_run_rows(run),
        citation=CITATION,
    )
    return _published(card)


def generator_card(
    config: PreTrainedConfig,
    repo_id: str,
    results: Results = None,
    base_model: str | None = None,
    image_kind: str | None = None,
    dataset: str | None = None,
    run: Run = None,
) -> ModelCard:
    """The card of a `PC2LForConditionalGeneration`.

    Args:
        config (`PC2LConfig`): the trained model's configuration.
        repo_id (`str`): where it is (to be) published.
        results: Table 2/4 style results (`table2.md`, or rows by system).
        base_model (`str`, *optional*): the GPT-2 checkpoint the decoder started from (e.g. `"gpt2"`).
        image_kind (`str`, *optional*): `"vision"` or `"image"`, the image features it was trained on; default:
            `config.image_kind`, or `"vision"` for a checkpoint that records none.
        dataset (`str`, *optional*), run (*optional*): as in [`selector_card`].
    """
    if image_kind is None:
        image_kind = config.image_features_read
    if image_kind not in IMAGE_FEATURES:
        raise ValueError(f"image_kind must be one of {tuple(IMAGE_FEATURES)}, got {image_kind!r}")
    keys = ("input_mode", "image_feature_dim", "review_feature_dim", "encoder_layers", "encoder_attention_heads",
            "max_images", "max_reviews", "image_contrastive", "review_contrastive", "lambda1", "lambda2",
            "pcl_alpha", "contrastive_temperature")  # fmt: skip
    decoder = config.decoder
    data = ModelCardData(
        library_name="transformers",
        license="apache-2.0",
        model_name=repo_id.split("/")[-1],
        base_model=base_model,
        datasets=[dataset] if dataset else None,
        tags=[*TAGS, "gpt2", "multimodal", "pc2l"],
    )
    decoder_rows = [("decoder n_layer", decoder.n_layer), ("decoder n_embd", decoder.n_embd),
                    ("decoder n_head", decoder.n_head), ("vocab_size", decoder.vocab_size)]  # fmt: skip
    card = ModelCard.from_template(
        data,
        template_path=str(TEMPLATES / "generator.md"),
        repo_id=repo_id,
        base_model=base_model,
        encoder_layers=config.encoder_layers,
        decoder_layers=decoder.n_layer,
        width=decoder.n_embd,
        max_images=config.max_images,
        max_reviews=config.max_reviews,
        input_mode=config.input_mode,
        image_contrastive=config.image_contrastive,
        review_contrastive=config.review_contrastive,
        lambda1=config.lambda1,
        lambda2=config.lambda2,
        image_features=IMAGE_FEATURES[image_kind],
        image_feature_dim=config.image_feature_dim,
        review_feature_dim=config.review_feature_dim,
        config_rows=_config_rows(config, keys) + decoder_rows,
        results=results_markdown(results),
        run=_run_rows(run),
        citation=CITATION,
    )
    return _published(card)


def split_front_matter(card_text: str) -> tuple[dict, str]:
    """(YAML front matter as a dict, the body) of a card; ValueError when there is no front matter."""
    parts = card_text.split("---\n", 2)
    if len(parts) < 3 or parts[0]:
        raise ValueError("the card has no YAML front matter")
    return yaml.safe_load(parts[1]) or {}, parts[2].strip()


def dataset_card(folder: str | Path, repo_id: str, statistics: str | None = None) -> DatasetCard:
    """The card of a built dataset folder: its `configs:` kept (so `load_dataset(repo, "s1")` still works),
    Table 1 statistics, and the builder's own card body as the build notes.

    Args:
        folder (`str` or `Path`): a `gest-showcases build` output.
        repo_id (`str`): where it is (to be) published.
        statistics (`str`, *optional*): a markdown table; by default `gest-showcases stats` of the folder.
    """
    from gest_showcases.data.stats import dataset_stats, format_markdown

    folder = Path(folder)
    front, body = split_front_matter((folder / "README.md").read_text(encoding="utf-8"))
    if "configs" not in front:
        raise ValueError(f"{folder / 'README.md'} lists no `configs:`: not a built dataset folder")
    data = DatasetCardData(
        pretty_name=f"{repo_id.split('/')[-1]}: personalized showcases",
        task_categories=["image-to-text", "text-generation"],
        language=["en"],
        tags=["gest-showcases", "personalized-showcases", "recommendation", "reviews"],
        configs=front["configs"],
    )
    card = DatasetCard.from_template(
        data,
        template_path=str(TEMPLATES / "dataset.md"),
        pretty_name=data.pretty_name,
        repo_id=repo_id,
        config_names=[config["config_name"] for config in front["configs"]],
        statistics=statistics if statistics is not None else format_markdown(dataset_stats(folder)),
        build_notes=re.sub(r"^#", "###", body, flags=re.MULTILINE),  # its headings under "How it was built"
        citation=CITATION,
    )
    return _published(card)


__all__ = [
    "dataset_card",
    "generator_card",
    "results_markdown",
    "selector_card",
    "split_front_matter",
    "strip_local_paths",
]
