"""`gest-showcases showcase`: one personalized showcase for a user and a business of a built dataset.

    gest-showcases showcase --dataset DIR --user USER_ID --business BUSINESS_ID \\
        --selector runs/selector-img+text --generator runs/pc2l --clip openai/clip-vit-base-patch32 \\
        [--html showcase.html]

The candidates are the business's photo pool (`candidate_pics` of the dataset config). The user's history:
when the user reviewed this business, the history stored with that review (their OTHER reviews, never
the review itself), and the review is shown as the ground truth; otherwise every review of the user in
the config. A user absent from the dataset is a cold user (see `gest_showcases.pipeline`). `--html`
writes the showcase as one self-contained HTML file (photos inlined as data URIs).

Every stored image path goes through the package's one path policy (`dataset_image_paths` of
`gest_showcases.data.folder`): it must be relative and lead inside the dataset folder or the
`--images` folder. A build keeps its photos where its `--images` pointed (stored as
`../images/<pic_id>.jpg` when that folder is beside the dataset), so pass the same folder here; a row
whose path is absolute or leads anywhere else stops the command with its review id, so no dataset can
make the package read a file the user did not point at.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from transformers import HfArgumentParser

from gest_showcases.data.folder import dataset_image_paths, read_rows

if TYPE_CHECKING:
    from gest_showcases.pipeline import Showcase, ShowcaseInput

logger = logging.getLogger(__name__)


@dataclass
class PipelineArguments:
    """What builds a `ShowcasePipeline` over a built dataset; shared by `showcase` and `serve`."""

    dataset: str = field(metadata={"help": "built dataset folder (gest-showcases build --output)"})
    selector: str = field(metadata={"help": "DPPImageSelector checkpoint, Hub name or folder"})
    generator: str = field(metadata={"help": "PC2L checkpoint, Hub name or folder (with its tokenizer)"})
    clip: str = field(metadata={"help": "CLIP checkpoint the selector's features came from"})
    vision: str | None = field(
        default=None, metadata={"help": "generator backbone (default: CLIP's vision tower)"}
    )
    image_kind: str | None = field(
        default=None,
        metadata={
            "help": "generator image features: vision or image (CLIP); default: the kind recorded in the "
            "generator's config (vision for checkpoints that record none)"
        },
    )
    config: str = field(default="s1", metadata={"help": "dataset config to read (s1 or s2)"})
    images: str | None = field(
        default=None,
        metadata={
            "help": "folder of the dataset's photos when they are outside the dataset folder (the build's "
            "--images); stored image paths may only lead into the dataset folder or this one"
        },
    )
    k: int | None = field(default=None, metadata={"help": "photos to select (default: the selector's top_k)"})
    num_beams: int = field(default=2, metadata={"help": "beams of the explanation's beam search"})
    max_new_tokens: int = field(default=64, metadata={"help": "most tokens of the explanation"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ... (default: cuda if available)"})

    def load_pipeline(self):
        """The `ShowcasePipeline` these arguments name."""
        from gest_showcases.pipeline import ShowcasePipeline

        return ShowcasePipeline.from_pretrained(
            selector=self.selector,
            generator=self.generator,
            clip=self.clip,
            vision=self.vision,
            device=self.device,
            image_kind=self.image_kind,
            num_beams=self.num_beams,
            max_new_tokens=self.max_new_tokens,
        )


@dataclass
class ShowcaseArguments:
    user: str = field(metadata={"help": "user_id whose history personalises the showcase"})
    business: str = field(metadata={"help": "business_id whose photo pool the photos come from"})
    html: str | None = field(
        default=None, metadata={"help": "also write the showcase as a self-contained HTML file"}
    )


@dataclass
class DatasetRequest:
    """What a dataset knows about one (user, business) pair: the pipeline input and what the report shows."""

    request: ShowcaseInput
    truth_text: str
    truth_photos: list[tuple[str, Path]]
    history_photos: list[tuple[str, Path]]


def request_from_rows(
    rows: list[dict], paths: dict[str, Path], user: str, business: str, where: str
) -> DatasetRequest:
    """The `ShowcaseInput` of `user` at `business` from dataset rows and their resolved image files
    (`gest_showcases.data.folder.dataset_image_paths`); `rows` need hold only the business's and the
    user's rows. `where` names the dataset in messages."""
    from gest_showcases.pipeline import ShowcaseInput

    pool = [pic for row in rows if row["business_id"] == business for pic in row["candidate_pics"]]
    if not pool:
        raise ValueError(f"business {business!r} has no photos in {where}")
    own = [row for row in rows if row["user_id"] == user]
    target = next((row for row in own if row["business_id"] == business), None)
    if target is not None:
        texts, pics = list(target["history_texts"]), list(target["history_pics"])
    else:
        texts = [row["review_text"] for row in own]
        pics = [pic for row in own for pic in row["pics"]]
    if not own:
        logger.warning("user %r has no review in %s: a cold user", user, where)
    # What the dataset knows of the pair, in a row's shape: the business's whole pool, the user's history.
    known = {
        "candidate_pics": pool,
        "history_texts": texts,
        "history_pics": pics,
        "user_id": user,
        "business_id": business,
    }
    request = ShowcaseInput.from_row(known, paths)
    return DatasetRequest(
        request=request,
        truth_text=target["review_text"] if target is not None else "",
        truth_photos=[(pic, paths[pic]) for pic in target["pics"]] if target is not None else [],
        history_photos=[(pic, paths[pic]) for pic in pics],
    )


def request_from_dataset(
    folder: str | Path, config: str, user: str, business: str, images: str | Path | None = None
) -> DatasetRequest:
    """The `ShowcaseInput` of `user` at `business` from a built dataset's `config` (see the module docstring);
    `images` is the `--images` folder, when the photos lie outside `folder`."""
    rows = read_rows(folder, config)
    # Only the rows this request reads have their paths resolved: the rest of the dataset costs nothing.
    rows = [row for row in rows if row["business_id"] == business or row["user_id"] == user]
    paths = dataset_image_paths(folder, rows, images)
    return request_from_rows(rows, paths, user, business, f"{folder} (config {config!r})")


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
    parser = HfArgumentParser((PipelineArguments, ShowcaseArguments), prog=prog)
    args, showcase_args = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from gest_showcases.report import ReportExample, write_report

    found = request_from_dataset(
        args.dataset, args.config, showcase_args.user, showcase_args.business, images=args.images
    )
    pipeline = args.load_pipeline()
    showcase = pipeline(found.request, k=args.k)
    print(format_showcase(showcase))
    if showcase_args.html:
        example = ReportExample.from_showcase(
            showcase,
            truth_text=found.truth_text,
            truth_photos=found.truth_photos,
            history_texts=list(found.request.history_texts),
            history_photos=found.history_photos,
        )
        statement = (
            f"One showcase for user {showcase_args.user} at business {showcase_args.business}: candidates are the business's "
            f"photos and the history is the user's reviews in {args.dataset} (config {args.config})."
        )
        details = {"selector": args.selector, "generator": args.generator, "CLIP": args.clip}
        path = write_report(
            showcase_args.html,
            f"Showcase: user {showcase_args.user} at {showcase_args.business}",
            examples=[example],
            statement=statement,
            details=details,
        )
        print(f"\nHTML: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
