"""`gest-showcases showcase`: one personalized showcase for a user and a business of a built dataset.

    gest-showcases showcase --dataset DIR --images PHOTOS --user USER_ID --business BUSINESS_ID \\
        --selector runs/selector-img+text --generator runs/pc2l --clip_model openai/clip-vit-base-patch32 \\
        [--output_dir DIR] [--dataset_config_name s1] [--config FILE.yaml]

Prints the showcase: the photos the selector picks from the business's photo pool and the explanation the
generator writes from them. The request and its ground truth are `gest_showcases.dataset_requests`' (its module
says which history is used and which photo paths are read: pass the build's `--images`). `--output_dir DIR` also
writes the showcase as one self-contained HTML file, `DIR/showcase.html` (photos inlined as data URIs). Options
come from the command line, a YAML file (`--config`, which the command line overrides), or both.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gest_showcases.dataset_requests import request_from_dataset
from gest_showcases.errors import InputError, check_at_least, check_at_most
from gest_showcases.generation.configuration_pc2l import MAX_NEW_TOKENS, MAX_NUM_BEAMS
from gest_showcases.pipeline import Showcase, ShowcasePipeline
from gest_showcases.report import ReportExample, write_report
from gest_showcases.selection.configuration_dpp import MAX_TOP_K

from .arguments import (
    DatasetArguments,
    DatasetConfigArguments,
    OutputArguments,
    check_device,
    output_file,
    parse_args,
    take_deprecated_file_option,
    take_deprecated_spelling,
)

HTML_FILE = "showcase.html"
# How the pipeline's errors name its parts: these commands' flags (the tokenizer is the generator's).
PIPELINE_FLAGS = {
    "selector": "--selector",
    "generator": "--generator",
    "clip": "--clip_model",
    "vision": "--vision_model",
    "tokenizer": "--generator",
}


@dataclass
class PipelineArguments:
    """What builds a `ShowcasePipeline`; shared by `showcase` and `serve`."""

    selector: str = field(metadata={"help": "DPPImageSelector checkpoint, Hub name or folder"})
    generator: str = field(metadata={"help": "PC2L checkpoint, Hub name or folder (with its tokenizer)"})
    # Not required by the parser, so that the deprecated --clip alone still works; checked in __post_init__.
    clip_model: str | None = field(
        default=None, metadata={"help": "CLIP checkpoint the selector's features came from (required)"}
    )
    clip: str | None = field(
        default=None, metadata={"help": "deprecated spelling of --clip_model (kept for one release)"}
    )
    vision_model: str | None = field(
        default=None, metadata={"help": "generator backbone checkpoint (default: CLIP's vision tower)"}
    )
    vision: str | None = field(
        default=None, metadata={"help": "deprecated spelling of --vision_model (kept for one release)"}
    )
    image_kind: str | None = field(
        default=None,
        metadata={
            "help": "generator image features: vision or image (CLIP); default: the kind recorded in the "
            "generator's config (vision for checkpoints that record none)"
        },
    )
    k: int | None = field(default=None, metadata={"help": "photos to select (default: the selector's top_k)"})
    num_beams: int | None = field(
        default=None,
        metadata={"help": "beams of the explanation's beam search (default: the generator's generation_config; 2)"},
    )
    max_new_tokens: int | None = field(
        default=None,
        metadata={"help": "most tokens of the explanation (default: the generator's generation_config; 64)"},
    )
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ... (default: cuda if available)"})

    def __post_init__(self):
        take_deprecated_spelling(self, "clip", "clip_model")
        take_deprecated_spelling(self, "vision", "vision_model")
        check_at_least(self, k=1, num_beams=1, max_new_tokens=1)
        check_at_most(self, k=MAX_TOP_K, num_beams=MAX_NUM_BEAMS, max_new_tokens=MAX_NEW_TOKENS)
        check_device(self)
        if self.clip_model is None:
            raise InputError(
                "give the CLIP checkpoint the selector's features came from: --clip_model NAME_OR_DIR"
            )

    def load_pipeline(self) -> ShowcasePipeline:
        """The `ShowcasePipeline` these arguments name."""
        return ShowcasePipeline.from_pretrained(
            selector=self.selector,
            generator=self.generator,
            clip=self.clip_model,
            vision=self.vision_model,
            device=self.device,
            option_names=PIPELINE_FLAGS,
            image_kind=self.image_kind,
            num_beams=self.num_beams,
            max_new_tokens=self.max_new_tokens,
        )


@dataclass
class ShowcaseArguments:
    user: str = field(metadata={"help": "user_id whose history personalises the showcase"})
    business: str = field(metadata={"help": "business_id whose photo pool the photos come from"})

    def __post_init__(self):
        for option in ("user", "business"):  # an empty id would be shown as a cold user or no photos at all
            if not getattr(self, option).strip():
                raise InputError(f"--{option} is empty: give the {option}'s id as the dataset writes it")


@dataclass
class ShowcaseOutputArguments(OutputArguments):
    """`--output_dir DIR` writes `DIR/showcase.html`; the old `--html FILE` wrote the HTML to FILE itself."""

    output_dir: str | None = field(
        default=None,
        metadata={"help": f"also write the showcase there as a self-contained HTML file ({HTML_FILE})"},
    )
    html: str | None = field(
        default=None,
        metadata={
            "help": f"deprecated: the HTML file to write (use --output_dir DIR, which writes DIR/{HTML_FILE})"
        },
    )

    def __post_init__(self):
        super().__post_init__()
        take_deprecated_file_option(self, "html", HTML_FILE)

    def html_path(self) -> Path | None:
        return output_file(self, "html", HTML_FILE)


def format_showcase(showcase: Showcase) -> str:
    """A plain-text view of a `Showcase`."""
    lines = [
        f"Showcase for user {showcase.user_id} at business {showcase.business_id}",
        "",
        "Selected photos:",
    ]
    lines += [
        f"  {rank}. {photo.id}  (log relevance {photo.score:.3f})  {photo.path or ''}"
        for rank, photo in enumerate(showcase.photos, start=1)
    ]
    lines += ["", "Explanation:", f"  {showcase.explanation}"]
    if showcase.warnings:
        lines += ["", "Notes:", *(f"  - {warning}" for warning in showcase.warnings)]
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    dataset, data, pipeline_args, showcase_args, output = parse_args(
        (
            DatasetArguments,
            DatasetConfigArguments,
            PipelineArguments,
            ShowcaseArguments,
            ShowcaseOutputArguments,
        ),
        argv,
        prog,
        description=__doc__.split("\n")[0],
    )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    user, business, config = showcase_args.user, showcase_args.business, data.dataset_config_name
    found = request_from_dataset(dataset.dataset, config, user, business, images=dataset.images)
    pipeline = pipeline_args.load_pipeline()
    showcase = pipeline(found.request, k=pipeline_args.k)
    print(format_showcase(showcase))
    path = output.html_path()
    if path is not None:
        example = ReportExample.from_showcase(
            showcase,
            truth_text=found.truth_text,
            truth_photos=found.truth_photos,
            history_texts=list(found.request.history_texts),
            history_photos=found.history_photos,
        )
        statement = (
            f"One showcase for user {user} at business {business}: candidates are the business's photos and "
            f"the history is the user's reviews in {dataset.dataset} (config {config})."
        )
        details = {
            "selector": pipeline_args.selector,
            "generator": pipeline_args.generator,
            "CLIP": pipeline_args.clip_model,
        }
        path = write_report(
            path,
            f"Showcase: user {user} at {business}",
            examples=[example],
            statement=statement,
            details=details,
        )
        print(f"\nHTML: {path}")
    return 0


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "showcase"))
