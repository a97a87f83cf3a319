"""The canonical review record every reader yields, and the bookkeeping of what was dropped.

Every published format (Gest-raw JSON Lines, the filtered `filter_all_t.json`, Google Local dumps)
is read into [`Review`]; everything downstream (the builder, the features, the models) sees only
this shape. Reviewer names are not part of it, so they can never reach an output.

Review ids: `make_review_id(user_id, business_id)` is `"<user>_<business>"` with `%` and `_` inside
either part written as `%25` and `%5F`, so the id names exactly one (user, business) pair (user `a_b`
at `c` is `a%5Fb_c`, user `a` at `b_c` is `a_b%5Fc`). Gest's and Google Local's ids hold neither
character, so for them it is the published `f"{user_id}_{business_id}"` form that
`filter_all_t.json`'s `history_reviews` use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gest_showcases.files import write_text_atomically

SPLITS = ("train", "validation", "test")
CONFIGS = ("raw", "s1", "s2")  # a built dataset folder's configs, one folder each

# Pic ids become file names (`<pic_id>.jpg`): only URL-safe characters, so an id can never climb
# out of the image folder.
_PIC_ID = re.compile(r"[A-Za-z0-9_-]+")
# Google image URLs: https://lh5.googleusercontent.com/p/<pic_id>=w150-h150-k-no-p
_PIC_URL = re.compile(r"/p/([A-Za-z0-9_-]+)(?:=|$|\?)")
# A sentence ends at . ! or ? (possibly repeated or followed by a closing quote) before white space,
# or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?][\"')\]])\s+|(?<=[.!?])\s+|\s*\n+\s*")


@dataclass(frozen=True, slots=True)
class Review:
    """One review, in the Gest schema.

    Args:
        user_id (`str`):
            The reviewer (21 digits in Gest).
        business_id (`str`):
            The business (24 hex characters in Gest, the `gmap_id` for Google Local).
        rating (`int`, *optional*):
            Star rating 1-5, `None` when the source has none.
        review_text (`str`):
            The review, `""` when empty or null.
        pics (`tuple[str, ...]`):
            Normalised image ids (`AF1Qip...`), the files are `<image_dir>/<pic_id>.jpg`.
        time (`int`, *optional*):
            Unix epoch milliseconds when the source has it (Google Local).
        history_reviews (`tuple[tuple[str, str], ...]`):
            `(review_id, review_text)` of the user's other reviews, as published in `filter_all_t.json`.
        split (`str`, *optional*):
            `"train"`, `"validation"` or `"test"` when the source file carries splits.
    """

    user_id: str
    business_id: str
    rating: int | None
    review_text: str
    pics: tuple[str, ...]
    time: int | None = None
    history_reviews: tuple[tuple[str, str], ...] = ()
    split: str | None = None

    @property
    def review_id(self) -> str:
        """`make_review_id(user_id, business_id)`: unambiguous, and the published form for real ids."""
        return make_review_id(self.user_id, self.business_id)


def _escape_id_part(part: str) -> str:
    # `%` first, so the `%` of an escaped `_` is not escaped again.
    return part.replace("%", "%25").replace("_", "%5F")


def make_review_id(user_id: str, business_id: str) -> str:
    """The review id of a (user, business) pair: `"<user>_<business>"`, each part escaped.

    `%` and `_` inside a part are written `%25` and `%5F`, so the one unescaped `_` separates the
    parts and two different pairs never share an id (a user reviews a business once: the id is the
    review's key). Ids without those characters (all of Gest's and Google Local's) are unchanged
    from the published `f"{user_id}_{business_id}"`.

    Example:

    ```python
    >>> make_review_id("110922565534353024196", "604a5d09d863393130a413fa")
    '110922565534353024196_604a5d09d863393130a413fa'
    >>> make_review_id("a_b", "c"), make_review_id("a", "b_c")
    ('a%5Fb_c', 'a_b%5Fc')
    ```
    """
    # The common case (no `_` or `%`: every real id) is checked, not copied: this runs once per review.
    if "_" in user_id or "%" in user_id or "_" in business_id or "%" in business_id:
        return f"{_escape_id_part(user_id)}_{_escape_id_part(business_id)}"
    return f"{user_id}_{business_id}"


def _short(value: object, limit: int = 80) -> str:
    text = repr(value) if isinstance(value, str) else repr([_short(v, 20) for v in value[:5]])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def normalize_pic_id(item: str | dict) -> str:
    """Turn one published `pics` item into its `AF1Qip...` id.

    Accepts a plain id, an image URL, `{"id": ...}` (either of those inside) and Google Local's
    `{"url": [url, ...]}` (the first URL carrying an id wins).

    Raises:
        ValueError: when the item holds no id made of URL-safe characters.
    """
    # A loop rather than recursion: `{"id": {"id": ...}}` nested a thousand deep is a bad record,
    # not a RecursionError.
    while isinstance(item, dict) and "id" in item:
        item = item["id"]
    if isinstance(item, dict):
        urls = item.get("url")
        for url in [urls] if isinstance(urls, str) else urls if isinstance(urls, list) else []:
            if isinstance(url, str) and (match := _PIC_URL.search(url)):
                return match.group(1)
        # Not `{item!r}`: a hostile item may be huge or nested too deep to print.
        raise ValueError(f"pics item has no image id (a dict with keys {_short(list(item))})")
    if not isinstance(item, str):
        raise ValueError(f"pics item must be a string or a dict, got {type(item).__name__}")
    if "/" in item:
        if match := _PIC_URL.search(item):
            return match.group(1)
        raise ValueError(f"image URL has no /p/<id> part: {_short(item)}")
    if not _PIC_ID.fullmatch(item):
        raise ValueError(f"invalid pic id {_short(item)}: expected URL-safe characters only")
    return item


def split_sentences(text: str) -> list[str]:
    """Split a review into sentences (the units the explanation classifier keeps or drops).

    A rule-based splitter (NLTK's punkt data cannot be installed here): a sentence ends at `.`,
    `!` or `?` followed by white space, or at a line break.

    Example:

    ```python
    >>> split_sentences("Great ramen!  The broth was rich.\nService slow")
    ['Great ramen!', 'The broth was rich.', 'Service slow']
    ```
    """
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]


@dataclass
class DropReport:
    """Counts of skipped items by reason, with the first few places each reason was seen.

    A place is `"<file>:<line>"` for lines of JSON Lines files, `"<file>:<split>[<index>]"` for
    records of `filter_all_t.json`, and `"<pic_id>.jpg"` for image files. A compressed file that ends
    early or is corrupt counts once, at the line where reading stopped (the records before it are kept).

    Args:
        max_examples (`int`, *optional*, defaults to `5`):
            How many places to keep per reason.
    """

    max_examples: int = 5
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, where: str, count: int = 1) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + count
        kept = self.examples.setdefault(reason, [])
        if len(kept) < self.max_examples:
            kept.append(where)

    def add_many(self, reason: str, places: Iterable[str], count: int) -> None:
        """Count `count` drops for `reason`, taking examples from the first of `places`."""
        if count == 0:
            return
        self.counts[reason] = self.counts.get(reason, 0) + count
        kept = self.examples.setdefault(reason, [])
        for where in places:
            if len(kept) >= self.max_examples:
                break
            kept.append(where)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, dict]:
        return {
            reason: {"count": self.counts[reason], "examples": self.examples.get(reason, [])}
            for reason in sorted(self.counts)
        }

    def summary(self, title: str) -> str:
        """Human-readable lines: one per reason, most frequent first."""
        if not self.counts:
            return f"{title}: nothing dropped"
        lines = [f"{title}: {self.total:,} dropped"]
        for reason, count in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            where = ", ".join(self.examples.get(reason, []))
            lines.append(f"  {reason}: {count:,}" + (f" (first: {where})" if where else ""))
        return "\n".join(lines)


def write_drop_reports(path: str | Path, reports: dict[str, DropReport]) -> None:
    """Write `{stage: {reason: {"count", "examples"}}}` as JSON (sorted keys, so rebuilds match)."""
    payload = {stage: report.to_dict() for stage, report in reports.items()}
    write_text_atomically(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
