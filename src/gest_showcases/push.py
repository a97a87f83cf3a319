"""Publishing the selector, the generator, the dataset and the evaluate modules to the Hub (`gest-showcases push`).

Everything is first staged into folders, one per Hub repository, holding exactly what is uploaded:

- `selector/` -> model repo `ORG/<prefix>-selector`, `generator/` -> `ORG/<prefix>-generator`: the
  `save_pretrained` output (config.json with its `auto_map`, safetensors weights, and the
  configuration/modeling `.py` files, so `AutoModel.from_pretrained(repo, trust_remote_code=True)` works
  without the package), the generator's tokenizer and generation config, and a model card (`cards.py`).
- `dataset/` -> dataset repo `ORG/gest` (`--dataset_name`): the built folder (parquet configs and whatever else it
  holds) with a dataset card that keeps its `configs:`.
- `evaluate/<name>/` -> Space `ORG/<name>` (Gradio SDK): the module folder as `metrics/modules/README.md`
  describes, so `evaluate.load("ORG/<name>")` works.

What is published names no folder of this machine: the JSON files `save_pretrained` writes have every
absolute path in them (a config's `_name_or_path`, the decoder's among them) emptied, and the cards
have them replaced by their last component (`cards.strip_local_paths`). The dataset's own files are
published as they are (hard links: they are never rewritten in place).

`PushArguments.dry_run` (a folder) stages into it (plus `push_plan.json`, the repositories and their files) and
uploads nothing. Without it the staged folders go up with `create_repo` + `upload_folder`, staged in `output_dir`
(kept) or a temporary folder. With `HF_HUB_OFFLINE=1` an upload stops at once and says so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PureWindowsPath

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features, Image, List
from huggingface_hub import HfApi, ModelCard, ModelCardData, is_offline_mode
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled
from huggingface_hub.utils import validate_repo_id
from tqdm.auto import tqdm
from transformers import AutoTokenizer

from gest_showcases import __version__
from gest_showcases.cards import DATASET_LICENSE, dataset_card, generator_card, selector_card, showcase_card
from gest_showcases.data.build import COPIED_IMAGES, embedded_images, stored_image_paths
from gest_showcases.data.folder import IMAGE_COLUMNS, dataset_configs, dataset_image_paths, read_rows
from gest_showcases.data.images import EMBEDDED_IMAGES_COLUMN, link_or_copy
from gest_showcases.data.records import normalize_pic_id
from gest_showcases.errors import InputError, one_line
from gest_showcases.files import holds_the_current_folder, saving_into
from gest_showcases.generation.lora import BASE_FOLDER
from gest_showcases.metrics import EVALUATE_MODULES, module_path
from gest_showcases.model_folders import loading, without_chat_template
from gest_showcases.pipeline import ShowcasePipeline, load_generator, load_selector, require_saved_pipeline

logger = logging.getLogger(__name__)

# Rows per batch when a dataset file is rewritten with its images embedded (~25 MB of Gest photos).
_PARQUET_BATCH = 256
OFFLINE_MESSAGE = (
    "HF_HUB_OFFLINE is set (Hub offline mode): nothing can be pushed. Unset HF_HUB_OFFLINE to publish, "
    "or run with --dry_run DIR to write exactly what would be uploaded."
)


@dataclass
class PushArguments:
    namespace: str = field(metadata={"help": "Hub user or organisation that will own the repositories"})
    selector: str | None = field(default=None, metadata={"help": "trained DPPImageSelector folder"})
    generator: str | None = field(default=None, metadata={"help": "trained PC2L folder (with its tokenizer)"})
    showcase: str | None = field(
        default=None,
        metadata={
            "help": "folder saved by ShowcasePipeline.save_pretrained, published whole as PREFIX-showcase"
        },
    )
    dataset: str | None = field(
        default=None, metadata={"help": "built dataset folder (gest-showcases build)"}
    )
    dataset_images: str | None = field(
        default=None,
        metadata={
            "help": "the image folder --dataset was built with, when its photos lie outside it (a build without "
            "--copy_images): the published copy holds the photos it uses"
        },
    )
    dataset_license: str = field(
        default=DATASET_LICENSE,
        metadata={
            "help": "Hub license id of the dataset; 'other' (the default: Google Maps users' reviews and photos, "
            "under the Gest release's terms), e.g. 'apache-2.0' for a generated Gest-Synth world"
        },
    )
    evaluate_modules: list[str] = field(
        default_factory=list,
        metadata={
            "help": f"evaluate modules to publish, each as the Space ORG/<name> that evaluate.load('ORG/<name>') "
            f"loads: any of {', '.join(EVALUATE_MODULES)}"
        },
    )
    selector_results: str | None = field(default=None, metadata={"help": "Table 3 markdown for the card"})
    generator_results: str | None = field(default=None, metadata={"help": "Table 2/4 markdown for the card"})
    clip_model: str = field(
        default="openai/clip-vit-base-patch32", metadata={"help": "CLIP checkpoint the features came from"}
    )
    base_model: str | None = field(
        default=None,
        metadata={
            "help": "Hub id of the causal LM the decoder started from, e.g. gpt2 or HuggingFaceTB/SmolLM2-135M "
            "(default: the decoder's own checkpoint when it is a Hub id; none for a local folder)"
        },
    )
    image_kind: str | None = field(
        default=None,
        metadata={"help": "generator image features: vision or image (default: the generator config's image_kind)"},
    )
    prefix: str = field(default="gest-showcases", metadata={"help": "model repository name prefix"})
    dataset_name: str = field(
        default="gest",
        metadata={"help": "dataset repository name: ORG/gest loads with load_dataset(\"ORG/gest\", \"s2\")"},
    )
    private: bool = field(default=False, metadata={"help": "create private repositories"})
    output_dir: str | None = field(
        default=None,
        metadata={"help": "stage the repositories into this folder and keep it (default: a temporary one)"},
    )
    dry_run: str | None = field(default=None, metadata={"help": "stage into this folder and upload nothing"})

    def __post_init__(self):
        # The longest model repo name, and the dataset's when it is pushed: a name the Hub refuses would fail
        # after staging.
        names = [("--namespace/--prefix", f"{self.namespace}/{self.prefix}-generator-base")]
        if self.dataset:
            names.append(("--namespace/--dataset_name", f"{self.namespace}/{self.dataset_name}"))
        for option, repo_id in names:
            try:
                validate_repo_id(repo_id)
            except HFValidationError as error:
                raise InputError(f"{option}: {repo_id!r} is no Hub repository id ({one_line(error)})") from None


@dataclass
class StagedRepo:
    """One Hub repository and the folder holding exactly its files."""

    repo_id: str
    repo_type: str  # "model", "dataset" or "space"
    folder: Path

    def files(self) -> list[str]:
        return sorted(str(path.relative_to(self.folder)) for path in self.folder.rglob("*") if path.is_file())


def _read(path: str | None) -> str | None:
    return Path(path).read_text(encoding="utf-8") if path else None


def _is_absolute_path(value: str) -> bool:
    """Whether a string is an absolute path of some machine (`/a/b`, `C:\\a`); `/` alone is not."""
    return (os.path.isabs(value) and len(Path(value).parts) > 1) or bool(PureWindowsPath(value).drive)


def _without_local_paths(value):
    """`value` (parsed JSON) with every string that is an absolute path emptied, at any depth."""
    if isinstance(value, dict):
        return {key: _without_local_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_local_paths(item) for item in value]
    if isinstance(value, str) and _is_absolute_path(value):
        return ""
    return value


# What transformers writes into a `tokenizer_config.json` saved offline: how this machine loaded it, not the repo.
_LOADING_STATE = ("local_files_only", "is_local")


def _strip_saved_paths(folder: Path, source: Path | None = None) -> None:
    """Empty the absolute paths in the JSON files `save_pretrained` wrote into `folder`: a config's
    `_name_or_path` (a nested decoder config keeps the local folder the decoder was loaded from); and drop the
    loading state of a tokenizer's config (`local_files_only: true` would be published as the repo's own).
    `tokenizer.json` is left alone: its strings are tokens and merges, where `/x` is text, not a path. `source`: the
    folder `folder` was copied from, which an error names (not the staged copy)."""
    for path in sorted(folder.glob("*.json")):
        if path.name == "tokenizer.json":
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as error:  # the generic message would name no file
            named = path if source is None else source / path.name  # the user's file, not its staged copy
            raise InputError(f"{named}: not valid JSON ({one_line(error)}); fix or remove the file") from error
        cleaned = _without_local_paths(data)
        if path.name == "tokenizer_config.json" and isinstance(cleaned, dict):
            cleaned = {key: value for key, value in cleaned.items() if key not in _LOADING_STATE}
        if cleaned != data:
            path.write_text(json.dumps(cleaned, indent=2) + "\n", encoding="utf-8")


def dataset_repo_id(args: PushArguments) -> str:
    """The dataset repository: `ORG/gest` by default, the name `load_dataset("ORG/gest", "s2")` uses."""
    return f"{args.namespace}/{args.dataset_name}"


def stage_selector(args: PushArguments, output: Path) -> StagedRepo:
    repo_id = f"{args.namespace}/{args.prefix}-selector"
    model = load_selector(args.selector, "--selector")
    model.save_pretrained(output)  # the class is registered for AutoModel: the .py files are copied too
    _strip_saved_paths(output)
    card = selector_card(model.config, repo_id, results=_read(args.selector_results), clip=args.clip_model,
                         dataset=dataset_repo_id(args) if args.dataset else None)  # fmt: skip
    card.save(output / "README.md")
    return StagedRepo(repo_id, "model", output)


def _stage_tokenizer(source: Path, output: Path) -> None:
    """The generator's tokenizer, staged without a chat template (`without_chat_template`)."""
    with loading("--generator", source):
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    without_chat_template(tokenizer).save_pretrained(output)


def _stage_pc2l(args: PushArguments, checkpoint: Path, tokenizer: Path, repo_id: str, output: Path) -> StagedRepo:
    model = load_generator(checkpoint, "--generator")
    model.save_pretrained(output)
    _stage_tokenizer(tokenizer, output)
    _strip_saved_paths(output)
    card = generator_card(
        model.config,
        repo_id,
        results=_read(args.generator_results),
        base_model=args.base_model,
        image_kind=args.image_kind,
        dataset=dataset_repo_id(args) if args.dataset else None,
    )
    card.save(output / "README.md")
    return StagedRepo(repo_id, "model", output)


def stage_generator(args: PushArguments, root: Path) -> list[StagedRepo]:
    """The generator's repository; a `train-pc2l --lora` run becomes two: its `base/` checkpoint as
    `PREFIX-generator-base` and the adapter as `PREFIX-generator`, whose adapter config names the base repo,
    so `AutoPeftModel.from_pretrained("ORG/PREFIX-generator")` works (with `gest_showcases` imported)."""
    run = Path(args.generator)
    repo_id = f"{args.namespace}/{args.prefix}-generator"
    if (run / BASE_FOLDER).exists():  # a `base` that is itself a link out would publish another model
        _inside(run / BASE_FOLDER, run, "generator")
    for folder in (run, run / BASE_FOLDER):  # what it loads from there is published
        _refuse_links_out(folder, "generator", files_only=True)
    if not (run / "adapter_config.json").is_file():
        return [_stage_pc2l(args, run, run, repo_id, root / "generator")]
    if not (run / BASE_FOLDER).is_dir():
        raise InputError(
            f"{run} is a LoRA run without its {BASE_FOLDER}/ checkpoint (made by train-pc2l --lora since "
            "issue 15): retrain it, or push the merged model"
        )
    # The adapter is copied, not saved from a loaded model: loaded first with every check of a LoRA run (its config,
    # weights that fit, no NaN), so that what is published is a model that loads (session 43's review).
    load_generator(run, "--generator")
    base_id = f"{repo_id}-base"
    base = _stage_pc2l(args, run / BASE_FOLDER, run, base_id, root / "generator-base")
    output = root / "generator"
    output.mkdir(parents=True)
    shutil.copy2(run / "adapter_model.safetensors", output / "adapter_model.safetensors")
    adapter_config = json.loads((run / "adapter_config.json").read_text(encoding="utf-8"))
    if not isinstance(adapter_config, dict):
        raise InputError(f"{run / 'adapter_config.json'} is not a JSON object: not a train-pc2l --lora run")
    adapter_config["base_model_name_or_path"] = base_id  # the run's absolute base path means nothing on the Hub
    (output / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2) + "\n", encoding="utf-8")
    _stage_tokenizer(run, output)
    _strip_saved_paths(output)
    data = ModelCardData(library_name="peft", base_model=base_id, license="apache-2.0",
                         tags=["gest-showcases", "pc2l", "lora", "personalized-showcases"])  # fmt: skip
    ModelCard(
        f"---\n{data.to_yaml()}\n---\n\n# {repo_id}\n\nA LoRA adapter of the PC2L explanation generator "
        f"([{base_id}](https://huggingface.co/{base_id}) is the model it applies to), trained with "
        "`gest-showcases train-pc2l --lora`.\n\n```python\nimport gest_showcases  # registers PC2L with AutoModel\n"
        f"from peft import AutoPeftModel\n\nmodel = AutoPeftModel.from_pretrained({repo_id!r})\n```\n"
    ).save(output / "README.md")
    return [base, StagedRepo(repo_id, "model", output)]


def _hub_blobs(folder: Path) -> Path | None:
    """The `blobs/` of the Hub cache repository that `folder` lies in (`.../models--ORG--NAME/snapshots/REV[/sub]`),
    whose files are links into it; None for any other folder."""
    for snapshot in (folder, *folder.parents):
        repository = snapshot.parent.parent
        if snapshot.parent.name == "snapshots" and repository.name.startswith(("models--", "datasets--", "spaces--")):
            return repository / "blobs"
    return None


def _inside(path: Path, folder: Path, what: str = "dataset") -> Path:
    """`path`, refused unless it lies inside `folder` once resolved: a symlink in a folder to publish must not
    publish a file from elsewhere on this machine. In a Hub download, links into its repository's `blobs/` are its
    own files."""
    root, target = folder.resolve(), path.resolve()
    blobs = _hub_blobs(root)
    if not (target.is_relative_to(root) or (blobs is not None and target.is_relative_to(blobs))):
        raise InputError(f"{path} leads outside the {what} folder {folder}: refusing to publish it")
    return path


def _refuse_links_out(folder: Path, what: str, *, files_only: bool = False) -> None:
    """Refuse `folder` when a link in it leads outside it (`_inside`): any file or folder at any depth, or with
    `files_only` the files directly in it (what a model and its tokenizer load; a run's checkpoints and logs are
    not published)."""
    if files_only:
        for path in folder.iterdir() if folder.is_dir() else ():
            if path.is_file():
                _inside(path, folder, what)
        return
    for parent, folders, files in os.walk(folder):  # links to folders are listed, not followed
        for name in [*folders, *files]:
            _inside(Path(parent) / name, folder, what)


def _self_contained_parquet(source: Path, destination: Path, images: Path) -> None:
    """Rewrite one `s1`/`s2` file of a built folder for the published layout: `pic_paths`/`candidate_paths` name
    `images/<pic_id>.jpg`, and an `images` column embeds the bytes of `pics` (kept when the build embedded them).
    Streamed by batches of rows, so only one batch's images are in memory."""
    parquet = pq.ParquetFile(source)
    features = Features.from_arrow_schema(parquet.schema_arrow)
    embed = EMBEDDED_IMAGES_COLUMN not in features
    if embed:
        features[EMBEDDED_IMAGES_COLUMN] = List(Image())
    schema = features.arrow_schema
    with pq.ParquetWriter(destination, schema, compression="zstd") as writer:
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH):
            columns = dict(zip(batch.schema.names, batch.columns, strict=True))
            columns["pic_paths"] = stored_image_paths(columns["pics"], f"{COPIED_IMAGES}/")
            columns["candidate_paths"] = stored_image_paths(columns["candidate_pics"], f"{COPIED_IMAGES}/")
            if embed:
                columns[EMBEDDED_IMAGES_COLUMN] = embedded_images(columns["pics"], images)
            writer.write_table(pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema))


def stage_dataset(args: PushArguments, output: Path) -> StagedRepo:
    """The dataset repository, self-contained whatever the build's layout: every photo the `s1`/`s2` rows name
    (found through the package's path policy, in the folder or `--dataset_images`) as `images/<pic_id>.jpg`, the
    path columns naming those files, the bytes of `pics` embedded as an `images` column (`datasets` opens an image
    stored by path relative to the current directory, so only bytes decode wherever the repository is loaded),
    and the card of `cards.dataset_card`. Other files (the `raw` config, `drop_report.json`) are hard-linked."""
    repo_id = dataset_repo_id(args)
    folder = Path(args.dataset)
    card = dataset_card(folder, repo_id, license=args.dataset_license)
    configs = dataset_configs(folder)
    with_images = [
        name
        for name, splits in configs.items()
        if any("pic_paths" in pq.read_schema(path).names for paths in splits.values() for path in paths)
    ]
    rows = [row for name in with_images for row in read_rows(folder, name, IMAGE_COLUMNS)]
    photos = dataset_image_paths(folder, rows, args.dataset_images, option="--dataset_images")
    images = output / COPIED_IMAGES
    output.mkdir(parents=True)
    if photos:
        images.mkdir()
    for pic, path in photos.items():
        try:
            if normalize_pic_id(pic) != pic:
                raise ValueError("not a plain id")
        except ValueError as error:  # it names a file of the published folder: no separators, no `..`
            message = f"{folder}: photo id {pic!r} cannot name a file ({error}); rebuild the dataset"
            raise InputError(message) from error
        link_or_copy(path, images / f"{pic}.jpg")
    staged = set()
    for name, splits in configs.items():
        for path in (_inside(path, folder) for paths in splits.values() for path in paths):
            destination = output / path.resolve().relative_to(folder.resolve())
            destination.parent.mkdir(parents=True, exist_ok=True)
            if name in with_images:
                _self_contained_parquet(path, destination, images)
            else:
                link_or_copy(path, destination)
            staged.add(destination)
    # The rest as built, less the card (rewritten) and the build's own image folder (staged above from the rows).
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if output / relative in staged or relative.parts[0] in ("README.md", COPIED_IMAGES) or not path.is_file():
            continue
        (output / relative).parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(_inside(path, folder), output / relative)
    card.save(output / "README.md")
    return StagedRepo(repo_id, "dataset", output)


def stage_evaluate_module(args: PushArguments, name: str, output: Path) -> StagedRepo:
    """The Space `ORG/<name>`: what `evaluate.load("ORG/<name>")` downloads is `<name>.py` of this folder.

    The shipped module folder (script named as the folder, the Space's `app.py` and README with its YAML
    header), with the README's `<org>` filled in and `requirements.txt` asking for this package at
    least at the version that staged it, since the script imports the package."""
    shutil.copytree(module_path(name), output, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    readme = output / "README.md"
    text = readme.read_text(encoding="utf-8").replace("<org>/", f"{args.namespace}/")
    readme.write_text(text, encoding="utf-8")
    (output / "requirements.txt").write_text(f"gest-showcases>={__version__}\n", encoding="utf-8")
    return StagedRepo(f"{args.namespace}/{name}", "space", output)


def stage_showcase(args: PushArguments, output: Path) -> StagedRepo:
    """The folder `ShowcasePipeline.save_pretrained` wrote, whole, as the model repo `PREFIX-showcase` with its card
    (`cards.showcase_card`): `ShowcasePipeline.from_pretrained("ORG/PREFIX-showcase")` and, with the package
    imported, `pipeline("personalized-showcase", model="ORG/PREFIX-showcase")` load it. The JSON files of every
    folder in it (the generator at the root, `selector/`, `clip/`, `vision/`) are copied and cleared of local
    paths; the other files, weights among them, are hard-linked (never rewritten)."""
    source = Path(args.showcase)
    repo_id = f"{args.namespace}/{args.prefix}-showcase"
    # copytree follows symlinks: one leading out of the folder (a file, or a folder such as /etc) is refused first.
    _refuse_links_out(source, "showcase")
    require_saved_pipeline(source)
    # Every part loaded with the pipeline's own checks (its kind, weights that fit, no NaN) before anything is staged:
    # the folder is copied, not saved from the loaded parts, and was published as it lay (session 43's review).
    ShowcasePipeline.from_pretrained(source, device="cpu")
    dataset = dataset_repo_id(args) if args.dataset else None
    card = showcase_card(source, repo_id, base_model=args.base_model, dataset=dataset)

    def copy(path: str, destination: str) -> None:
        (shutil.copy2 if path.endswith(".json") else link_or_copy)(path, destination)

    # README.md: the card replaces it; .cache: what `snapshot_download(local_dir=...)` keeps beside a download.
    ignore = shutil.ignore_patterns("README.md", ".cache", "__pycache__", "*.pyc")
    shutil.copytree(source, output, copy_function=copy, ignore=ignore)
    for folder in [output, *(path for path in output.rglob("*") if path.is_dir())]:
        _strip_saved_paths(folder, source / folder.relative_to(output))
    card.save(output / "README.md")
    return StagedRepo(repo_id, "model", output)


def stage(args: PushArguments, root: Path) -> list[StagedRepo]:
    """Write every repository's files under `root` and `root/push_plan.json`; returns the repositories."""
    unknown = sorted(set(args.evaluate_modules) - set(EVALUATE_MODULES))
    if unknown:
        raise InputError(f"--evaluate_modules: unknown {unknown}; choose from {EVALUATE_MODULES}")
    if not (args.selector or args.generator or args.showcase or args.dataset or args.evaluate_modules):
        raise InputError(
            "nothing to push: give --selector, --generator, --showcase, --dataset or --evaluate_modules"
        )
    if holds_the_current_folder(root):
        raise InputError(f"{root} is the current folder or holds it: stage into a subfolder")
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise InputError(f"{root} is not empty: stage into a new folder")
    # Staged beside `root` and moved in whole: a run stopped midway leaves `root` empty, so its rerun is allowed. A
    # mount point cannot be renamed, nor can a folder whose parent is not writable: staged in place there, as before.
    target = root.resolve()  # a link to the folder: `saving_into` replaces the folder it names
    movable = not target.is_mount() and os.access(target.parent, os.W_OK)
    with saving_into(root) if movable else contextlib.nullcontext(root) as staging:
        repos = []
        if args.selector:
            repos.append(stage_selector(args, staging / "selector"))
        if args.generator:
            repos.extend(stage_generator(args, staging))
        if args.showcase:
            repos.append(stage_showcase(args, staging / "showcase"))
        if args.dataset:
            repos.append(stage_dataset(args, staging / "dataset"))
        for name in args.evaluate_modules:
            repos.append(stage_evaluate_module(args, name, staging / "evaluate" / name))
        plan = [
            asdict(repo) | {"folder": str(repo.folder.relative_to(staging)), "files": repo.files()} for repo in repos
        ]
        (staging / "push_plan.json").write_text(json.dumps(plan, indent=2) + "\n", encoding="utf-8")
    return [replace(repo, folder=root / repo.folder.relative_to(staging)) for repo in repos]


def _hub_http_error() -> type[Exception]:
    """The base error of huggingface_hub's HTTP client (httpx's `HTTPError`): a failed connection arrives as
    one subclass of it, an HTTP error status (401 without a token, 403) as another, `HfHubHTTPError`."""
    return next(base for base in HfHubHTTPError.__mro__ if base.__name__ == "HTTPError")


def _upload(repos: list[StagedRepo], private: bool, kept: Path | None) -> list[str]:
    """Create each repository (if needed) and upload its staged folder; returns the commit URLs. `kept` is
    the staging folder when the user chose it (`--output_dir`), named when the Hub cannot be reached."""
    api = HfApi()
    urls = []
    for repo in tqdm(repos, desc="pushing"):
        try:
            api.create_repo(
                repo.repo_id,
                repo_type=repo.repo_type,
                private=private,
                exist_ok=True,
                space_sdk="gradio" if repo.repo_type == "space" else None,
            )
            commit = api.upload_folder(
                repo_id=repo.repo_id,
                repo_type=repo.repo_type,
                folder_path=repo.folder,
                commit_message="Upload from gest-showcases push",
            )
        except _hub_http_error() as error:
            staged = f"the staged files are in {kept}" if kept else "--output_dir DIR keeps the staged files"
            raise InputError(
                f"pushing {repo.repo_id}: {type(error).__name__}: {one_line(error, 200)}; check the network "
                f"and your token (`hf auth login`); {len(urls)} of {len(repos)} repositories pushed; {staged}"
            ) from error
        urls.append(commit.commit_url)
        logger.info("pushed %s (%s)", repo.repo_id, repo.repo_type)
    return urls


def push(args: PushArguments) -> list[str]:
    """Stage and publish (see the module docstring). With `dry_run`, stage only and return the staged folders."""
    if args.dry_run:
        return [str(repo.folder) for repo in stage(args, Path(args.dry_run))]
    if is_offline_mode():  # before any staging work
        raise OfflineModeIsEnabled(OFFLINE_MESSAGE)
    if args.output_dir:
        return _upload(stage(args, Path(args.output_dir)), args.private, Path(args.output_dir))
    with tempfile.TemporaryDirectory(prefix="gest-showcases-push-") as root:
        return _upload(stage(args, Path(root) / "staged"), args.private, None)
