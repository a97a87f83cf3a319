"""The comparison grid of `gest-showcases experiment`: its cells, what each is given, and how a trained one is read.

- Table 4's loss configurations (`LOSS_CONFIGS`) and the PC2L cells' `train-pc2l` options (`PC2L_CELL_OPTIONS`);
  Table 2's rows (`PC2L`, `CE_ONLY` and the baselines of `baselines.registry`, at the world GPT-2's width:
  `baseline_overrides`), with the paper's input column (`table2_inputs`);
- which cells a run has (`pc2l_systems`, `trained_baselines`), from its `ExperimentArguments`
  (`gest_showcases.commands.experiment`, which trains them);
- a trained PC2L cell, loaded (`load_generator_cell`), and its perplexity on the test references (`reference_nll`).

The statistics over seeds and the tables are in `experiments.summary`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from transformers import AutoTokenizer

from gest_showcases.baselines.registry import BASELINES
from gest_showcases.generation.collator import PC2LCollator
from gest_showcases.generation.probe import per_example_loss
from gest_showcases.pipeline import load_generator
from gest_showcases.selection.training import METHODS

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
# Table 3's rows, as `train-selector` writes them (one home: `selection.training.METHODS`).
SELECTOR_METHODS = METHODS
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


def pc2l_systems(args) -> list[str]:
    """The PC2L cells of the run: Table 4's five, or Table 2's `--generators`."""
    if "4" in args.tables:
        return list(LOSS_CONFIGS)
    if "2" not in args.tables:
        return []
    return [system for system, name in ((CE_ONLY, "ce-only"), (PC2L, "pc2l")) if name in args.generators]


def trained_baselines(args) -> list[str]:
    """The `--baselines` names the run trains (Table 2 rows only)."""
    if "2" not in args.tables or "none" in args.baselines:
        return []
    return [name for name in BASELINE_NAMES if name in args.baselines]


def table2_inputs(args) -> dict[str, str]:
    """Table 2's rows with the paper's input column: PC2L's two, then the baselines the run trains."""
    inputs = {CE_ONLY: PC2L_INPUT, PC2L: PC2L_INPUT}
    return inputs | {BASELINES[name].row: BASELINES[name].input for name in trained_baselines(args)}


def load_generator_cell(folder: Path):
    """(PC2L model in eval mode, tokenizer) of a grid cell: loaded as the pipeline loads a generator
    (`pipeline.load_generator`: a LoRA run, `--decoder smollm2`, merged into its base), with the run's own tokenizer."""
    return load_generator(folder).eval(), AutoTokenizer.from_pretrained(folder, trust_remote_code=False)


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
