"""The showcase request of a user and a business of a built dataset, and what the dataset knows of the pair.

Used by `gest-showcases showcase` and the web demo (`gest_showcases.app`), so both show the same showcase for the
same pair. The candidates are the business's photo pool (`candidate_pics` of the dataset config). The user's
history: when the user reviewed this business, the history stored with that review (their OTHER reviews, never
the review itself), and the review is the ground truth; otherwise every review of the user in the config. A user
absent from the dataset is a cold user (see `gest_showcases.pipeline`). The request itself is built by
`ShowcaseInput.from_row`, the one dataset row -> request conversion.

Every stored image path goes through the package's one path policy (`dataset_image_paths` of
`gest_showcases.data.folder`): it must be relative and lead inside the dataset folder or the `images` folder (the
build's `--images`); a row whose path is absolute or leads anywhere else is refused with its review id, so no
dataset can make the package read a file the user did not point at.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gest_showcases.data.folder import dataset_image_paths, read_rows
from gest_showcases.errors import InputError
from gest_showcases.pipeline import ShowcaseInput

REQUEST_CONFIGS = ("s1", "s2")

logger = logging.getLogger(__name__)


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
    pool = [pic for row in rows if row["business_id"] == business for pic in row["candidate_pics"]]
    if not pool:
        raise InputError(f"business {business!r} has no photos in {where}; check --business")
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
    if config not in REQUEST_CONFIGS:  # raw rows hold no photo pools nor histories
        raise InputError(f"--dataset_config_name {config}: a showcase reads {' or '.join(REQUEST_CONFIGS)}")
    rows = read_rows(folder, config)
    # Only the rows this request reads have their paths resolved: the rest of the dataset costs nothing.
    rows = [row for row in rows if row["business_id"] == business or row["user_id"] == user]
    paths = dataset_image_paths(folder, rows, images)
    return request_from_rows(rows, paths, user, business, f"{folder} (config {config!r})")
