"""Model cards for the selector, the generator and a saved showcase pipeline, and the dataset card, from a run's
config and results.

The templates are `gest_showcases/model_cards/{selector,generator,showcase,dataset}.md` (Jinja, shipped with the
package); `huggingface_hub.ModelCard.from_template` / `DatasetCard.from_template` fill them, offline (only
`card.validate()` needs the network). Results to show can be given as the runs print them: a markdown table (e.g.
`table3.md`, `table2.md`) or `{row: {column: value}}`.

A model card's YAML has the Hub's `pipeline_tag` (`PIPELINE_TAGS`, why each in its comment), `library_name`,
`license`, `datasets`, `base_model` only when the decoder started from a Hub model, and a `model-index` of
`huggingface_hub.EvalResult`s read from the results files the run commands wrote into the run folder
(`generator_eval_results`, `selector_eval_results`): no number in it is typed by hand, and a run with no results
file gets none (the card says so).

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

import html
import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path, PureWindowsPath

from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import PreTrainedConfig

from gest_showcases.data.folder import split_front_matter  # the one card-header parser; re-exported
from gest_showcases.errors import InputError
from gest_showcases.markdown_tables import markdown_cell, markdown_row

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "model_cards"
DATASET_LICENSE = "other"  # the Gest reviews and photos are Google Maps users' content, not the package's
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
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")  # `</a>` is a closing tag, not the path `/a`


def strip_local_paths(text: str) -> str:
    """`text` with every absolute path replaced by its last component (`/home/me/runs/phi` -> `phi`)."""

    def name(match: re.Match) -> str:
        text, start, end = match.string, match.start(), match.end()
        if text[start - 1 : start] == "<" and text[end : end + 1] == ">" and _TAG_NAME.fullmatch(match.group(0)[1:]):
            return match.group(0)  # an HTML closing tag (`</a>`), not a path; a one-part path names nothing local
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
    lines = [markdown_row(["", *columns]), "|---|" + "---:|" * len(columns)]
    for name, row in results.items():
        cells = [f"{row[c]:.4g}" if isinstance(row.get(c), float) else row.get(c, "-") for c in columns]
        lines.append(markdown_row([name, *cells]))  # a `|` or a line break in a name stays in its cell
    return "\n".join(lines)


def _plain(value: object) -> str:
    """User data (a system's name from a generations file) as plain text in a card's Markdown: on one line, `|` and
    `\\` escaped (`markdown_cell`), no code span and no link or image syntax, and `<`, `>`, `&` as entities, so that a
    name cannot add HTML, a tracking image or a heading to a published card (a bare URL in it is still autolinked,
    as text)."""
    text = markdown_cell(value).replace("`", "'").replace("[", "\\[").replace("]", "\\]")
    return html.escape(text, quote=False)


def _config_rows(config: PreTrainedConfig, keys: tuple[str, ...]) -> list[tuple[str, object]]:
    values = config.to_dict()
    return [(key, values[key]) for key in keys]


def _run_rows(run: Run) -> list[tuple[str, object]]:
    return [(key, value) for key, value in (run or {}).items()]


# -- Hub metadata: the task, the base model and the model-index -----------------------------------------------

# Each card's `pipeline_tag`, one of the Hub's tasks (huggingface.js `PIPELINE_DATA`; huggingface_hub checks no
# value). No stock transformers pipeline of these tasks runs these models; the tag files each where a Hub user
# looks for it:
# - the generator writes text with a causal-LM decoder conditioned on precomputed image and review features:
#   "text-generation" ("image-to-text" or "image-text-to-text" would promise raw images in);
# - the selector picks a subset of photos from their features, which no Hub task is: "other";
# - the showcase pipeline takes photos and review texts and writes an explanation of the photos it picks:
#   "image-text-to-text". Its transformers task, "personalized-showcase", is the package's own (registered on
#   import), not a Hub task, so the card carries it as a tag.
PIPELINE_TAGS = {"generator": "text-generation", "selector": "other", "showcase": "image-text-to-text"}
# What the run commands write into their output folders: the cards' only source of numbers.
TRAIN_RESULTS = "all_results.json"  # train-pc2l (`Trainer.save_metrics("all")`): `eval_*` on s2 validation
TABLE2_RESULTS = "table2.json"  # gest-showcases evaluate --output_dir: Table 2 rows by system, as fractions
TABLE3_RESULTS = "table3.json"  # train-selector --output_dir, beside its selector-<mode> folders: percent
LOOKED_FOR = {
    "generator": f"`{TRAIN_RESULTS}` with a validation loss from `gest-showcases train-pc2l`, `{TABLE2_RESULTS}` "
    "from `gest-showcases evaluate --output_dir` the run folder",
    "selector": f"`{TABLE3_RESULTS}` from `gest-showcases train-selector`, beside the `selector-<mode>` folder",
}
# A model-index entry must name a dataset; without a Hub dataset id, it says what it was.
LOCAL_DATASET = {
    "dataset_type": "local",
    "dataset_name": "a dataset built with gest-showcases build, not on the Hub",
}
# Table 2 columns (`metrics.paper_tables.TABLE2_COLUMNS`) as metric ids: hf.co/metrics, else the package's modules.
TABLE2_METRIC_TYPES = {
    "bleu_1": "bleu", "bleu_4": "bleu", "meteor": "meteor", "nist_4": "nist_mt", "distinct_1": "distinct",
    "distinct_2": "distinct", "clip_align": "clip_align", "clip_align_interaction": "clip_align",
    "clip_score_cosine": "clip_score", "bertscore_f1": "bertscore",
}  # fmt: skip
# Table 3 measures (`precision@3`, ...) as (metric id, the table's column name).
TABLE3_METRICS = {"precision": ("precision", "Prec"), "recall": ("recall", "Recall"), "f1": ("f1", "F1"),
                  "div": ("div_at_k", "Div")}  # fmt: skip
EvalResults = dict[str, list[EvalResult]]  # a run's model-index entries by the file they were read from


def hub_model_id(name: str | None) -> str | None:
    """`name` when it names a Hub model (`gpt2`, `org/model`); None for nothing or a local folder: an absolute path,
    or a relative one that exists here (`runs/gpt2-ft` is also a valid repo id)."""
    if not name or os.path.isabs(name) or PureWindowsPath(name).drive or Path(name).exists():
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def _base_model(config: PreTrainedConfig, base_model: str | None) -> str | None:
    """The card's `base_model`: `base_model` when given, else the checkpoint the decoder was loaded from when that
    is a Hub name (none for a local or from-scratch decoder: a published card names no folder of this machine)."""
    if base_model is None:
        return hub_model_id(config.decoder.name_or_path)
    try:
        validate_repo_id(base_model)
        local = os.path.isabs(base_model) or bool(PureWindowsPath(base_model).drive)
    except HFValidationError:
        local = True
    if local:
        # `push --base_model <folder>` names where the decoder came from on this machine: the published card
        # cannot name that folder, and the push itself is still right, so the field is left out, loudly.
        logger.warning("base_model %s is a local folder, not a Hub model id: the card leaves base_model out", base_model)
        return None
    return base_model


def _run_folder(config: PreTrainedConfig, results_dir: str | Path | None) -> Path | None:
    """Where the run's results files are: `results_dir`, else the folder the model was loaded from."""
    if results_dir is not None:
        return Path(results_dir)
    loaded_from = Path(config.name_or_path) if config.name_or_path else None
    return loaded_from if loaded_from is not None and loaded_from.is_dir() else None


def _read_results(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _eval_result(task_type: str, dataset: str | None, **fields) -> EvalResult:
    where = {"dataset_type": dataset, "dataset_name": dataset} if dataset else LOCAL_DATASET
    return EvalResult(task_type=task_type, **where, **fields)


def generator_eval_results(
    folder: str | Path,
    task_type: str = PIPELINE_TAGS["generator"],
    dataset: str | None = None,
    system: str | None = None,
) -> EvalResults:
    """The model-index entries of a generator's run folder, from the files the commands wrote there:
    `all_results.json` (train-pc2l: the cross-entropy L_CE on the s2 validation split, when it had one) and
    `table2.json` (`gest-showcases evaluate --output_dir <run folder>`: Table 2, x100 as the table prints it).

    Args:
        folder: the run folder. task_type: the model-index task. dataset: the Hub dataset id, if any.
        system (`str`, *optional*): this model's row of `table2.json`; needed when it scores several systems.
    """
    from gest_showcases.metrics.generations import GROUND_TRUTH
    from gest_showcases.metrics.paper_tables import table2_columns

    folder = Path(folder)
    found: EvalResults = {}
    train = _read_results(folder / TRAIN_RESULTS) or {}
    if train.get("eval_loss_ce") is not None:
        found[f"`{TRAIN_RESULTS}` (train-pc2l)"] = [
            _eval_result(
                task_type,
                dataset,
                dataset_config="s2",
                dataset_split="validation",
                metric_type="loss",
                metric_name="Validation cross-entropy (L_CE, nats per token)",
                metric_value=round(train["eval_loss_ce"], 4),
            )
        ]
    table2 = _read_results(folder / TABLE2_RESULTS)
    if table2 is not None:
        systems = [name for name in table2["rows"] if name != GROUND_TRUTH]
        if system is None and len(systems) == 1:
            system = systems[0]
        if system not in systems:
            raise InputError(
                f"{folder / TABLE2_RESULTS} scores {systems}: say which row is this model (system=)"
            )
        row = table2["rows"][system]
        found[f"`{TABLE2_RESULTS}` (evaluate, row {_plain(system)})"] = [
            _eval_result(
                task_type,
                dataset,
                metric_type=TABLE2_METRIC_TYPES.get(key, key),
                metric_name=f"{name} (x100)",
                metric_value=round(100 * row[key], 2),
            )
            for key, name in table2_columns([row], synth_truth=False)
            if row.get(key) is not None and row[key] == row[key]  # absent, or NaN: nothing was scored
        ]
    return found


def selector_eval_results(
    folder: str | Path,
    input_mode: str,
    task_type: str = PIPELINE_TAGS["selector"],
    dataset: str | None = None,
) -> EvalResults:
    """The model-index entries of a selector, from `table3.json` of train-selector (in its `--output_dir`, beside
    the `selector-<input_mode>` folder, or in the folder itself): the row of `input_mode`, in percent.

    Args:
        folder: the selector's folder. input_mode: its `config.input_mode`, the row. task_type, dataset: as in
            [`generator_eval_results`].
    """
    folder = Path(folder)
    candidates = [folder / TABLE3_RESULTS]
    if folder.name == f"selector-{input_mode}":  # train-selector's layout; any other parent is not its run
        candidates.append(folder.parent / TABLE3_RESULTS)
    for path in candidates:
        table = _read_results(path)
        if table is not None and input_mode in table["results"]:
            break
    else:
        return {}
    k, unit = table["k"], " (%)" if table.get("unit") == "percent" else ""
    split = list(table.get("examples", {}))[-1:]  # the counts are {train split: n, evaluation split: n}
    entries = []
    for key, value in table["results"][input_mode].items():
        metric_type, column = TABLE3_METRICS.get(key.split("@")[0], (key, key))
        entries.append(
            _eval_result(
                task_type,
                dataset,
                dataset_config="s1",
                dataset_split=split[0] if split else None,
                metric_type=metric_type,
                metric_name=f"{column}@{k}{unit}",
                metric_value=round(value, 2),
                metric_args={"k": k},
            )
        )
    return {f"`{TABLE3_RESULTS}` (train-selector, row `{input_mode}`)": entries}


def eval_results_markdown(found: EvalResults, looked_for: str) -> str:
    """The card's account of its model-index: the numbers and the files they came from, or that there are none."""
    if not found:
        return f"No results file of the run was found ({looked_for}), so this card has no `model-index`."
    lines = ["The card's `model-index` holds these numbers, read from the run's own results files:", "",
             "| metric | value | split | file |", "|---|---:|---|---|"]  # fmt: skip
    for source, entries in found.items():
        lines += [
            f"| {entry.metric_name} | {entry.metric_value} | {entry.dataset_split or '-'} | {source} |"
            for entry in entries
        ]
    return "\n".join(lines)


def _decoder_name(decoder: PreTrainedConfig) -> str:
    return "GPT-2" if decoder.model_type == "gpt2" else f"`{decoder.model_type}`"


def _model_index(found: EvalResults) -> list[EvalResult] | None:
    return [entry for entries in found.values() for entry in entries] or None


def selector_card(
    config: PreTrainedConfig,
    repo_id: str,
    results: Results = None,
    clip: str = "openai/clip-vit-base-patch32",
    dataset: str | None = None,
    run: Run = None,
    results_dir: str | Path | None = None,
) -> ModelCard:
    """The card of a `DPPImageSelector`.

    Args:
        config (`DPPSelectorConfig`): the trained model's configuration.
        repo_id (`str`): where it is (to be) published, e.g. `"me/gest-showcases-selector"`.
        results: Table 3 style results to show (`table3.md`, or rows by method); not part of the model-index.
        clip (`str`): the CLIP checkpoint its features come from.
        dataset (`str`, *optional*): the Hub dataset it was trained on.
        run (`Mapping[str, object]`, *optional*): training settings to list (epochs, batch size, seed...).
        results_dir (*optional*): the selector's folder, whose train-selector `table3.json` gives the model-index
            ([`selector_eval_results`]); default: the folder the model was loaded from (`config.name_or_path`).
    """
    keys = ("input_mode", "text_dim", "image_dim", "user_hidden_sizes", "image_hidden_sizes", "embed_dim",
            "max_log_quality", "similarity_eps", "top_k", "history_prior")  # fmt: skip
    folder = _run_folder(config, results_dir)
    task = PIPELINE_TAGS["selector"]
    found = selector_eval_results(folder, config.input_mode, task, dataset) if folder is not None else {}
    data = ModelCardData(
        library_name="transformers",
        license="apache-2.0",
        model_name=repo_id.split("/")[-1],
        pipeline_tag=task,
        datasets=[dataset] if dataset else None,
        tags=[*TAGS, "dpp", "image-selection"],
        eval_results=_model_index(found),
    )
    card = ModelCard.from_template(
        data,
        template_path=str(TEMPLATES / "selector.md"),
        model_name=data.model_name,  # with a model-index, `card_data` moves the name there
        repo_id=repo_id,
        top_k=config.top_k,
        input_mode=config.input_mode,
        clip=clip,
        config_rows=_config_rows(config, keys),
        results=results_markdown(results),
        evaluation=eval_results_markdown(found, LOOKED_FOR["selector"]),
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
    results_dir: str | Path | None = None,
    system: str | None = None,
) -> ModelCard:
    """The card of a `PC2LForConditionalGeneration`.

    Args:
        config (`PC2LConfig`): the trained model's configuration.
        repo_id (`str`): where it is (to be) published.
        results: Table 2/4 style results to show (`table2.md`, or rows by system); not part of the model-index.
        base_model (`str`, *optional*): the Hub model the decoder started from (e.g. `"gpt2"`); default: the
            checkpoint the decoder was loaded from (`config.decoder.name_or_path`) when it is a Hub name, none for a
            local or from-scratch decoder. A local path is refused (`InputError`).
        image_kind (`str`, *optional*): `"vision"` or `"image"`, the image features it was trained on; default:
            `config.image_kind`, or `"vision"` for a checkpoint that records none.
        dataset (`str`, *optional*), run (*optional*): as in [`selector_card`].
        results_dir (*optional*): the run folder, whose results files give the model-index
            ([`generator_eval_results`]); default: the folder the model was loaded from (`config.name_or_path`).
        system (`str`, *optional*): this model's row of a `table2.json` that scores several systems.
    """
    if image_kind is None:
        image_kind = config.image_features_read
    if image_kind not in IMAGE_FEATURES:
        raise ValueError(f"image_kind must be one of {tuple(IMAGE_FEATURES)}, got {image_kind!r}")
    keys = ("input_mode", "image_feature_dim", "review_feature_dim", "encoder_layers", "encoder_attention_heads",
            "max_images", "max_reviews", "image_contrastive", "review_contrastive", "lambda1", "lambda2",
            "pcl_alpha", "contrastive_temperature", "contrastive_target", "contrastive_score",
            "likelihood_image_negatives", "mined_negative_candidates", "hard_negative_gradients",
            "decoder_contrastive_gradients", "encoder_contrastive_gradients", "contrastive_warmup_ratio",
            "in_batch_labels", "gradient_conflicts", "contrastive_normaliser", "contrastive_step_scale",
            "review_pooling", "review_pooling_temperature", "image_feature_noise")  # fmt: skip
    decoder = config.decoder
    base_model = _base_model(config, base_model)
    folder = _run_folder(config, results_dir)
    task = PIPELINE_TAGS["generator"]
    found = generator_eval_results(folder, task, dataset, system) if folder is not None else {}
    data = ModelCardData(
        library_name="transformers",
        license="apache-2.0",
        model_name=repo_id.split("/")[-1],
        pipeline_tag=task,
        base_model=base_model,
        datasets=[dataset] if dataset else None,
        tags=[*TAGS, decoder.model_type, "multimodal", "pc2l"],
        eval_results=_model_index(found),
    )
    # The generic names (GPT-2's `n_layer`, `n_embd`, `n_head` are aliases of them): any causal-LM decoder has them.
    decoder_rows = [("decoder", decoder.model_type), ("decoder layers", decoder.num_hidden_layers),
                    ("decoder width", decoder.hidden_size), ("decoder heads", decoder.num_attention_heads),
                    ("vocab_size", decoder.vocab_size)]  # fmt: skip
    card = ModelCard.from_template(
        data,
        template_path=str(TEMPLATES / "generator.md"),
        model_name=data.model_name,  # with a model-index, `card_data` moves the name there
        repo_id=repo_id,
        base_model=base_model,
        encoder_layers=config.encoder_layers,
        decoder_name=_decoder_name(decoder),
        decoder_layers=decoder.num_hidden_layers,
        width=decoder.hidden_size,
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
        evaluation=eval_results_markdown(found, LOOKED_FOR["generator"]),
        run=_run_rows(run),
        citation=CITATION,
    )
    return _published(card)


def showcase_card(
    folder: str | Path,
    repo_id: str,
    results: Results = None,
    base_model: str | None = None,
    dataset: str | None = None,
    system: str | None = None,
) -> ModelCard:
    """The card of a saved `ShowcasePipeline` (the folder `save_pretrained` writes), published as one model repo.

    The model-index comes from the results files the folder holds, as for the parts' own cards: the generator's
    (`all_results.json`, `table2.json`) at the root, where the generator is, and the selector's `table3.json` in
    `selector/` or at the root. `save_pretrained` copies none of them, so a pipeline saved as it is has no
    model-index, and the card says so.

    Args:
        folder (`str` or `Path`): the saved pipeline.
        repo_id (`str`): where it is (to be) published.
        results: results to show (markdown, or rows by system); not part of the model-index.
        base_model (*optional*), dataset (*optional*), system (*optional*): as in [`generator_card`].
    """
    from transformers import GenerationConfig

    from gest_showcases.generation import PC2LConfig
    from gest_showcases.generation.configuration_pc2l import PAPER_DECODING
    from gest_showcases.pipeline import TASK, _read_showcase_config, require_saved_pipeline
    from gest_showcases.selection import DPPSelectorConfig

    folder = Path(folder)
    require_saved_pipeline(folder)
    saved = _read_showcase_config(folder)
    generator = PC2LConfig.from_pretrained(folder / saved["generator"])
    selector = DPPSelectorConfig.from_pretrained(folder / saved["selector"])
    base_model = _base_model(generator, base_model)
    task = PIPELINE_TAGS["showcase"]
    found = generator_eval_results(folder / saved["generator"], task, dataset, system)
    found |= selector_eval_results(folder / saved["selector"], selector.input_mode, task, dataset) or (
        selector_eval_results(folder, selector.input_mode, task, dataset)
    )
    data = ModelCardData(
        library_name="transformers",
        license="apache-2.0",
        model_name=repo_id.split("/")[-1],
        pipeline_tag=task,
        base_model=base_model,
        datasets=[dataset] if dataset else None,
        tags=[*TAGS, TASK, "pc2l", "dpp", "multimodal"],
        eval_results=_model_index(found),
    )
    k = saved.get("k") or selector.top_k  # an unset k is the selector's
    image_kind = saved.get("image_kind") or generator.image_features_read  # as the pipeline resolves it
    # Decoding the pipeline leaves unset is the generator's generation_config (64 new tokens where it sets none).
    try:
        decoding = GenerationConfig.from_pretrained(folder / saved["generator"])
    except OSError:  # a generator saved without one: generate's defaults
        decoding = GenerationConfig()
    settings = [
        ("k", k),
        ("image_kind", image_kind),
        ("num_beams", saved.get("num_beams") or decoding.num_beams),
        ("max_new_tokens", saved.get("max_new_tokens") or decoding.max_new_tokens or PAPER_DECODING["max_new_tokens"]),
        ("batch_size", saved.get("batch_size")),
    ]
    card = ModelCard.from_template(
        data,
        template_path=str(TEMPLATES / "showcase.md"),
        model_name=data.model_name,  # with a model-index, `card_data` moves the name there
        repo_id=repo_id,
        task=TASK,
        pipeline_tag=task,
        base_model=base_model,
        k=k,
        selector_input_mode=selector.input_mode,
        generator_input_mode=generator.input_mode,
        encoder_layers=generator.encoder_layers,
        decoder_name=_decoder_name(generator.decoder),
        decoder_layers=generator.decoder.num_hidden_layers,
        width=generator.decoder.hidden_size,
        vision=saved.get("vision"),
        settings=settings,
        image_features=IMAGE_FEATURES[image_kind],
        results=results_markdown(results),
        evaluation=eval_results_markdown(
            found, f"{LOOKED_FOR['generator']}; {LOOKED_FOR['selector']} or in `{saved['selector']}/`"
        ),
        citation=CITATION,
    )
    return _published(card)


def dataset_card(
    folder: str | Path, repo_id: str, statistics: str | None = None, license: str = DATASET_LICENSE
) -> DatasetCard:
    """The card of a published dataset (`push --dataset` stages it self-contained: its images in `images/` and
    embedded in the `images` column): the built folder's `configs:` kept (so `load_dataset(repo, "s1")` still
    works), `license`, `citation` and `pretty_name` in the YAML, Table 1 statistics, and the builder's own card
    body as the build notes, less its `## Images` section (where the images were on this machine).

    Args:
        folder (`str` or `Path`): a `gest-showcases build` output.
        repo_id (`str`): where it is (to be) published.
        statistics (`str`, *optional*): a markdown table; by default `gest-showcases stats` of the folder.
        license (`str`, *optional*, defaults to `"other"`): a Hub license id. `"other"` (the reviews and photos
            are Google Maps users' content, under the terms of the Gest release) adds `license_name` and
            `license_link`; a generated Gest-Synth world can say `"apache-2.0"`.
    """
    from gest_showcases.data.build import IMAGES_HEADING
    from gest_showcases.data.stats import dataset_stats, format_markdown

    folder = Path(folder)
    front, body = split_front_matter((folder / "README.md").read_text(encoding="utf-8"))
    if "configs" not in front:
        raise ValueError(f"{folder / 'README.md'} lists no `configs:`: not a built dataset folder")
    other = {"license_name": "gest-release-terms", "license_link": PAPER_URL} if license == "other" else {}
    data = DatasetCardData(
        pretty_name=f"{repo_id.split('/')[-1]}: personalized showcases",
        license=license,
        **other,
        task_categories=["image-to-text", "text-generation"],
        language=["en"],
        tags=["gest-showcases", "personalized-showcases", "recommendation", "reviews"],
        configs=front["configs"],
        citation=CITATION,
    )
    # The build's note on where its images were describes this machine; the template describes the published layout.
    body = re.sub(rf"^{re.escape(IMAGES_HEADING)}\n.*?(?=^#|\Z)", "", body, flags=re.MULTILINE | re.DOTALL)
    card = DatasetCard.from_template(
        data,
        template_path=str(TEMPLATES / "dataset.md"),
        pretty_name=data.pretty_name,
        license=license,
        repo_id=repo_id,
        config_names=[config["config_name"] for config in front["configs"]],
        statistics=statistics if statistics is not None else format_markdown(dataset_stats(folder)),
        build_notes=re.sub(r"^#", "###", body, flags=re.MULTILINE),  # its headings under "How it was built"
        citation=CITATION,
    )
    return _published(card)


__all__ = [
    "dataset_card",
    "eval_results_markdown",
    "generator_card",
    "generator_eval_results",
    "hub_model_id",
    "results_markdown",
    "selector_card",
    "selector_eval_results",
    "showcase_card",
    "split_front_matter",
    "strip_local_paths",
]
