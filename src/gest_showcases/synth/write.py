"""Writes a Gest-Synth world in the published file formats, plus its annotations and ground truth.

Every file is deterministic: JSON with sorted keys, gzip with `mtime=0` and no file name, JPEGs
encoded without an optimisation pass, images rendered in fixed-size batches whose noise is seeded
by batch index (so the number of worker processes does not change a byte).

Synth writes only its own names (`OUTPUT_NAMES`) and never overwrites what it did not write: a
folder where one of those names already exists is refused unless it is an earlier Gest-Synth output,
recognised by `ground_truth.json` (the file real Gest data never has) or by the `.synth-writing` marker of a run
that was interrupted, or `overwrite=True` (`--overwrite`) is given. A run renders the photos first, then writes
each review file whole (`image_review_all.json` last), so an interrupted run leaves no reviews file that `build`
could read beside missing photos.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from gest_showcases.data.records import make_review_id
from gest_showcases.errors import InputError
from gest_showcases.files import write_text_atomically, writing_atomically
from gest_showcases.synth.catalog import ASPECTS, CUISINES, DISHES, DRINKS, STOREFRONT_COLORS
from gest_showcases.synth.render import encode_jpeg, photo_params, render_batch
from gest_showcases.synth.world import NUM_DISHES, World

logger = logging.getLogger(__name__)

RENDER_BATCH = 256
GEST_RAW = "image_review_all.json"
GEST_FILTERED = "filter_all_t.json"
GOOGLE_REVIEWS = "review-Synth.json.gz"
GOOGLE_META = "meta-Synth.json.gz"
ANNOTATIONS = "annotations.jsonl"
GROUND_TRUTH = "ground_truth.json"
IMAGE_DIR = "images"
# Present while synth writes a folder (with GROUND_TRUTH, it marks the folder as synth's); removed when done.
WRITING_MARKER = ".synth-writing"
# Every name synth writes in its output folder; GROUND_TRUTH or WRITING_MARKER marks the folder as synth's.
OUTPUT_NAMES = (GROUND_TRUTH, GEST_RAW, GEST_FILTERED, GOOGLE_REVIEWS, GOOGLE_META, ANNOTATIONS, IMAGE_DIR)
# The files that describe the world's reviews, each written whole; the photos come first, so that a folder holding
# these holds every photo they name.
REVIEW_FILES = (GROUND_TRUTH, GEST_FILTERED, GOOGLE_REVIEWS, GOOGLE_META, ANNOTATIONS, GEST_RAW)
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True)


def _write_lines(path: Path, rows: Iterable[dict]) -> None:
    with writing_atomically(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(_dumps(row) + "\n")


def _write_gzip_lines(path: Path, rows: Iterable[dict]) -> None:
    with (
        writing_atomically(path) as temporary,
        open(temporary, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as handle,
    ):
        for row in rows:
            handle.write((_dumps(row) + "\n").encode("utf-8"))


def review_id(world: World, index: int) -> str:
    """The review id of review `index`, as the readers make it (`make_review_id`: `f"{user_id}_{business_id}"`)."""
    review = world.reviews[index]
    return make_review_id(world.users[review.user].user_id, world.businesses[review.business].business_id)


def _is_restaurant(world: World, index: int) -> bool:
    return world.businesses[world.reviews[index].business].cuisine is not None


def _pic_ids(world: World, index: int) -> list[str]:
    return [world.photos[p].pic_id for p in world.reviews[index].photos]


def gest_raw_rows(world: World) -> Iterable[dict]:
    """`image_review_all.json` rows: every restaurant review, as crawled (no filtering)."""
    for i, review in enumerate(world.reviews):
        if _is_restaurant(world, i):
            yield {
                "business_id": world.businesses[review.business].business_id,
                "user_id": world.users[review.user].user_id,
                "rating": review.rating,
                "review_text": review.text,
                "pics": _pic_ids(world, i),
            }


def gest_filtered(world: World) -> dict[str, list[dict]]:
    """`filter_all_t.json`: the Gest-s2 records the paper's processing would keep.

    A restaurant review is kept when it has at least 5 words, at most 10 photos, a user with another
    kept-by-length review, and at least one sentence describing one of its photos. Its `review_text` is
    those sentences (what the paper's distillation keeps) and `pics` the photos they describe;
    `history_reviews` lists the user's other restaurant reviews with text. Splits are by user, 8:1:1.
    """
    usable = [
        i
        for i, r in enumerate(world.reviews)
        if _is_restaurant(world, i) and len(r.text.split()) >= 5 and len(r.photos) <= 10
    ]
    per_user: dict[int, list[int]] = defaultdict(list)
    for i in usable:
        per_user[world.reviews[i].user].append(i)
    with_text = defaultdict(list)
    for i, r in enumerate(world.reviews):
        if _is_restaurant(world, i) and r.text:
            with_text[r.user].append(i)
    records: dict[int, dict] = {}
    for user, indices in per_user.items():
        if len(indices) < 2:
            continue
        for i in indices:
            review = world.reviews[i]
            described = sorted({p for d in review.describes for p in d})
            if not described:
                continue
            records[i] = {
                "business_id": world.businesses[review.business].business_id,
                "user_id": world.users[user].user_id,
                "rating": review.rating,
                "review_text": " ".join(
                    s for s, d in zip(review.sentences, review.describes, strict=True) if d
                ),
                "pics": list(dict.fromkeys(world.photos[review.photos[p]].pic_id for p in described)),
                "history_reviews": [
                    [review_id(world, j), world.reviews[j].text] for j in with_text[user] if j != i
                ],
            }
    users = sorted({world.reviews[i].user for i in records})
    order = np.random.default_rng([world.config.seed, 3]).permutation(len(users))
    cut_train = round(SPLIT_FRACTIONS[0] * len(users))
    cut_val = cut_train + round(SPLIT_FRACTIONS[1] * len(users))
    split_of = {}
    for rank, position in enumerate(order):
        split_of[users[position]] = "train" if rank < cut_train else "val" if rank < cut_val else "test"
    splits: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for i, record in records.items():
        splits[split_of[world.reviews[i].user]].append(record)
    return splits


def google_review_rows(world: World) -> Iterable[dict]:
    """`review-Synth.json.gz` rows: every review of every business, Google Local 2021 style."""
    for i, review in enumerate(world.reviews):
        user = world.users[review.user]
        pics = [
            {"url": [f"https://lh5.googleusercontent.com/p/{pid}=w150-h150-k-no-p"]}
            for pid in _pic_ids(world, i)
        ]
        reply = None
        if review.reply is not None:
            reply = {"time": review.time + 86_400_000 * (1 + review.time % 9), "text": review.reply}
        yield {
            "user_id": user.user_id,
            "name": user.name,
            "time": review.time,
            "rating": review.rating,
            "text": review.text or None,
            "pics": pics or None,
            "resp": reply,
            "gmap_id": world.businesses[review.business].gmap_id,
        }


def google_meta_rows(world: World) -> Iterable[dict]:
    """`meta-Synth.json.gz` rows: one per business; only restaurants have "restaurant" in `category`."""
    ratings: dict[int, list[int]] = defaultdict(list)
    for review in world.reviews:
        ratings[review.business].append(review.rating)
    n = len(world.businesses)
    for b, business in enumerate(world.businesses):
        mean = round(sum(ratings[b]) / len(ratings[b]), 1) if ratings[b] else None
        description = f"Casual {CUISINES[business.cuisine][0]} spot." if business.cuisine else None
        yield {
            "name": business.name,
            "address": f"{business.name}, {100 + (37 * b) % 900} Main St, Synthville, SY {10000 + b}",
            "gmap_id": business.gmap_id,
            "description": description,
            "latitude": business.latitude,
            "longitude": business.longitude,
            "category": list(business.category),
            "avg_rating": mean,
            "num_of_reviews": len(ratings[b]),
            "price": "$" * (1 + b % 3) if business.cuisine else None,
            "hours": [[day, "11AM\u201310PM"] for day in DAYS],
            "MISC": {"Service options": ["Dine-in", "Takeout"]} if business.cuisine else None,
            "state": "Open \u22c5 Closes 10PM",
            "relative_results": [world.businesses[(b + k) % n].gmap_id for k in (1, 2, 3)],
            "url": f"https://www.google.com/maps/place//data=!4m2!3m1!1s{business.gmap_id}",
        }


def annotation_rows(world: World) -> Iterable[dict]:
    """Image-sentence pairs of `num_annotated_reviews` restaurant reviews (every photo x every sentence).

    `label` is 1 when the sentence describes the photo (names its dish or aspect), else 0.
    """
    candidates = [
        i
        for i, r in enumerate(world.reviews)
        if _is_restaurant(world, i) and r.photos and len(r.sentences) >= 2 and len(r.photos) <= 10
    ]
    size = min(world.config.num_annotated_reviews, len(candidates))
    chosen = np.random.default_rng([world.config.seed, 4]).choice(len(candidates), size=size, replace=False)
    for c in sorted(chosen.tolist()):
        i = candidates[c]
        review = world.reviews[i]
        rid = review_id(world, i)
        for position, p in enumerate(review.photos):
            for s, (sentence, describes) in enumerate(zip(review.sentences, review.describes, strict=True)):
                yield {
                    "pic_id": world.photos[p].pic_id,
                    "review_id": rid,
                    "sentence_index": s,
                    "sentence": sentence,
                    "label": int(position in describes),
                }


def _subject(index: int) -> tuple[str, str, str | None]:
    """(name, kind, cuisine) of a subject index."""
    if index < NUM_DISHES:
        return DISHES[index].name, "dish", DISHES[index].cuisine
    return ASPECTS[index - NUM_DISHES].name, "aspect", None


def ground_truth(world: World) -> dict:
    """What the files do not say: each subject's words and look, each photo's subject, each user's tastes."""
    subjects = {
        d.name: {
            "kind": "dish",
            "cuisine": d.cuisine,
            "aliases": list(d.aliases),
            "layout": d.layout,
            "texture": d.texture,
            "colors": [d.primary, d.secondary, d.tertiary],
        }
        for d in DISHES
    }
    subjects.update(
        {
            a.name: {
                "kind": "aspect",
                "cuisine": None,
                "aliases": list(a.aliases),
                "layout": a.layout,
                "texture": "none",
                "colors": [],
            }
            for a in ASPECTS
        }
    )
    pics = {}
    for photo in world.photos:
        review = world.reviews[photo.review]
        name, kind, cuisine = _subject(photo.subject)
        business = world.businesses[review.business]
        pics[photo.pic_id] = {
            "subject": name,
            "kind": kind,
            "cuisine": business.cuisine if kind == "aspect" else cuisine,
            "variant": DRINKS[photo.variant][0] if photo.variant >= 0 else None,
            "storefront_color": STOREFRONT_COLORS[business.decor["storefront"]][0]
            if name == "storefront"
            else None,
            "business_id": business.business_id,
            "user_id": world.users[review.user].user_id,
            "review_id": review_id(world, photo.review),
        }
    active = sorted({r.user for r in world.reviews})
    users = {}
    for u in active:
        user = world.users[u]
        users[user.user_id] = {
            "favourite_dishes": [DISHES[d].name for d in user.favourite_dishes],
            "favourite_aspects": [ASPECTS[a].name for a in user.favourite_aspects],
            "cuisine_prefs": dict(zip(CUISINES, user.cuisine_prefs, strict=True)),
            "style": user.voice.style,
            "adjectives": list(user.voice.adjectives),
            "topics": list(user.voice.topics),
            "zoom": round(user.zoom, 6),
            "brightness": round(user.brightness, 6),
        }
    businesses = {
        b.business_id: {
            "gmap_id": b.gmap_id,
            "name": b.name,
            "cuisine": b.cuisine,
            "category": list(b.category),
            "is_restaurant": b.cuisine is not None,
            "menu": [DISHES[d].name for d in b.menu],
        }
        for b in world.businesses
    }
    config = dict(vars(world.config))
    return {"config": config, "subjects": subjects, "pics": pics, "users": users, "businesses": businesses}


def _render_files(task: tuple[dict[str, np.ndarray], list[str], int, int, int, str]) -> int:
    params, pic_ids, size, seed, batch_index, folder = task
    pixels = render_batch(params, size, seed, batch_index)
    for pic_id, image in zip(pic_ids, pixels, strict=True):
        # os.open/os.write: half the system calls of open(); file creation dominates at 200k images
        fd = os.open(os.path.join(folder, f"{pic_id}.jpg"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, encode_jpeg(image))
        finally:
            os.close(fd)
    return len(pic_ids)


def write_images(world: World, folder: str | Path, image_size: int = 64, num_workers: int = 1) -> int:
    """Renders every photo of `world` to `folder/<pic_id>.jpg`; returns the number written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    params = photo_params(world, world.config.seed)
    n = len(world.photos)
    tasks = (
        (
            {k: v[start : start + RENDER_BATCH] for k, v in params.items()},
            [p.pic_id for p in world.photos[start : start + RENDER_BATCH]],
            image_size,
            world.config.seed,
            start // RENDER_BATCH,
            str(folder),
        )
        for start in range(0, n, RENDER_BATCH)
    )
    bar = tqdm(total=n, desc="rendering photos", unit="img")
    if num_workers <= 1:
        for task in tasks:
            bar.update(_render_files(task))
    else:
        with ProcessPoolExecutor(num_workers) as pool:
            for done in pool.map(_render_files, tasks):
                bar.update(done)
    bar.close()
    return n


def check_output_folder(output_dir: str | Path, overwrite: bool = False) -> None:
    """Refuse to write into a folder holding files of synth's names that synth did not write.

    Raises:
        `InputError`: when `output_dir` is a file, or holds one of `OUTPUT_NAMES` without the
            `ground_truth.json` (or the `WRITING_MARKER`) of an earlier Gest-Synth run, and `overwrite` is False.
    """
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} is a file: choose a folder")
    if overwrite or not out.is_dir() or (out / GROUND_TRUTH).is_file() or (out / WRITING_MARKER).is_file():
        return
    taken = [name for name in OUTPUT_NAMES if os.path.lexists(out / name)]
    if taken:
        raise InputError(
            f"{out} already holds {', '.join(taken)}, not written by synth (no {GROUND_TRUTH}): "
            "choose another --output_dir, or pass --overwrite to replace them"
        )


def write_world(
    world: World, output_dir: str | Path, image_size: int = 64, num_workers: int = 1, overwrite: bool = False
) -> dict[str, int]:
    """Writes every Gest-Synth file of `world` into `output_dir`; returns counts for a summary.

    Raises:
        `InputError`: when the folder holds files of synth's names that synth did not write
            (see `check_output_folder`), unless `overwrite`.
    """
    out = Path(output_dir)
    check_output_folder(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    # The marker keeps the folder synth's while no ground truth is there, so a rerun after a kill is not refused.
    marker = out / WRITING_MARKER
    marker.touch()
    # A previous world's reviews must not stay beside photos of this one if the run is killed: `build` would read
    # them, and drop every review whose photo is missing as if the photo had been lost.
    for name in REVIEW_FILES:
        (out / name).unlink(missing_ok=True)
    images = write_images(world, out / IMAGE_DIR, image_size, num_workers)
    write_text_atomically(out / GROUND_TRUTH, _dumps(ground_truth(world)))
    splits = gest_filtered(world)
    write_text_atomically(out / GEST_FILTERED, _dumps(splits))
    _write_gzip_lines(out / GOOGLE_REVIEWS, google_review_rows(world))
    _write_gzip_lines(out / GOOGLE_META, google_meta_rows(world))
    annotations = list(annotation_rows(world))
    _write_lines(out / ANNOTATIONS, annotations)
    _write_lines(out / GEST_RAW, gest_raw_rows(world))  # last: the file `build` reads
    marker.unlink()
    return {
        "users": len({r.user for r in world.reviews}),
        "businesses": len(world.businesses),
        "reviews": len(world.reviews),
        "images": images,
        "filtered_train": len(splits["train"]),
        "filtered_val": len(splits["val"]),
        "filtered_test": len(splits["test"]),
        "annotation_pairs": len(annotations),
        "annotated_reviews": len({a["review_id"] for a in annotations}),
    }
