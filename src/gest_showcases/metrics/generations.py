"""The generations file that `gest-showcases evaluate` reads: generated explanations, one per line.

Generations file (JSON Lines, one generated explanation per line)::

    {"id": "110922565534353024196_604a5d09d863393130a413fa", "system": "PC2L",
     "generated": "The spring rolls were crispy.", "reference": "We ordered pork spring rolls ...",
     "pic_ids": ["AF1Qip..."]}

- ``id`` (str): the example, e.g. the review id; unique within a system. The same id under several
  systems is the same example (same reference, same images).
- ``system`` (str): the model that wrote ``generated``; one table row per system, in file order.
  ``GT`` is reserved for the ground-truth row and refused.
- ``generated`` (str), ``reference`` (str): the generated explanation and the ground truth.
- ``pic_ids`` (list of str, optional): the example's images (files ``<images dir>/<pic_id>.jpg``),
  needed only for CLIP-Align and CLIP-Score. Ids are URL-safe characters only, as in Gest.
- ``reference_pic_ids`` (list of str, optional): the images the reference was written about (the user's
  own photos of the review). The ``GT`` row's CLIP-Align and CLIP-Score read them; without them it reads
  ``pic_ids``, the photos the systems were shown, which a reference need not describe when a selector
  picked them (at Prec@3 ~8%, most do not), so GT's CLIP scores would then say little.

A line that breaks these rules is skipped and counted with its ``file:line`` (see `read_generations`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gest_showcases.data.readers import iter_json_lines
from gest_showcases.data.records import DropReport, normalize_pic_id
from gest_showcases.errors import InputError
from gest_showcases.files import write_text_atomically

logger = logging.getLogger(__name__)

GROUND_TRUTH = "GT"  # the reference-free row of the references; reserved, no system may use it
_REQUIRED_FIELDS = ("id", "system", "generated", "reference")


@dataclass(frozen=True)
class Generation:
    """One line of a generations file (see the module docstring)."""

    id: str
    system: str
    generated: str
    reference: str
    pic_ids: tuple[str, ...] = ()
    reference_pic_ids: tuple[str, ...] = ()


class _BadGeneration(ValueError):
    """One generations line that cannot be used; the message is the drop reason."""


def _generation(obj: object) -> Generation:
    """One parsed generations line as a `Generation`; `_BadGeneration` with the reason otherwise."""
    if not isinstance(obj, dict):
        raise _BadGeneration("not a JSON object")
    missing = [key for key in _REQUIRED_FIELDS if not isinstance(obj.get(key), str)]
    if missing:
        raise _BadGeneration(f"missing or non-string field(s) {missing}")
    if not obj["system"].strip():
        raise _BadGeneration("empty system name")
    pics, reference_pics = (_pic_ids(obj, key) for key in ("pic_ids", "reference_pic_ids"))
    return Generation(obj["id"], obj["system"], obj["generated"], obj["reference"], pics, reference_pics)


def _pic_ids(obj: dict, key: str) -> tuple[str, ...]:
    """The optional list of image ids under `key`, checked; `_BadGeneration` naming `key` otherwise."""
    pic_ids = obj.get(key)
    if pic_ids is None:
        return ()
    # A string is iterable too: without this check "abc" would be read as the images a, b and c.
    if not isinstance(pic_ids, list):
        raise _BadGeneration(f"{key} is not a list of image ids")
    try:
        # The dataset's one pic id policy: URL-safe characters only, so an id names a file of the
        # --images folder and nothing outside it.
        return tuple(normalize_pic_id(p) for p in pic_ids)
    except (ValueError, TypeError):
        raise _BadGeneration(f"{key} is not a list of image ids") from None


def _drops_line(report: DropReport) -> str:
    """A `DropReport` on one line: reason: count (first: file:line, ...); ..."""
    parts = []
    for reason, count in sorted(report.counts.items(), key=lambda kv: (-kv[1], kv[0])):
        where = ", ".join(report.examples.get(reason, []))
        parts.append(f"{reason}: {count:,}" + (f" (first: {where})" if where else ""))
    return "; ".join(parts)


def write_generations(path: str | Path, records: Iterable[dict]) -> Path:
    """Write a generations file: one JSON object per line (this module's format), atomically, its folder made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomically(path, "".join(json.dumps(record) + "\n" for record in records))


def read_generations(path: str | Path, report: DropReport | None = None) -> list[Generation]:
    """Read a generations JSON Lines file (plain or gzip; format in the module docstring).

    A line that cannot be used (not UTF-8, malformed JSON, not an object, a missing or non-string
    field, ``pic_ids`` or ``reference_pic_ids`` not a list of image ids, a repeated ``(system, id)``) is skipped and counted in
    `report` with its ``file:line``, and logged as one warning: one bad line never costs the run.

    Raises:
        `InputError`: when no line is usable (the message names the first bad lines), or when a system
            is named ``GT``, the ground-truth row's name: scoring it would merge it into that row, or when two
            systems give one example id different references.
    """
    report = report if report is not None else DropReport()
    before = report.total
    records: list[Generation] = []
    seen: set[tuple[str, str]] = set()
    for place, obj in iter_json_lines(path, report):
        try:
            record = _generation(obj)
        except _BadGeneration as bad:
            report.add(str(bad), place)
            continue
        if record.system == GROUND_TRUTH:
            raise InputError(
                f"{place}: the system name {GROUND_TRUTH!r} is reserved for the ground-truth row of Table 2; "
                "rename that system in the generations file"
            )
        if (record.system, record.id) in seen:
            report.add("duplicate id for its system (the first line is kept)", place)
            continue
        seen.add((record.system, record.id))
        records.append(record)
    dropped = report.total - before
    if not records:
        why = f"{dropped:,} bad line(s): {_drops_line(report)}" if dropped else "it has no lines"
        raise InputError(
            f"{path} holds no usable generations ({why}); expected one JSON object per line with string "
            "id, system, generated and reference, and optional pic_ids and reference_pic_ids (lists of image ids)"
        )
    if dropped:
        logger.warning("skipped %d bad line(s) of %s: %s", dropped, path, _drops_line(report))
    _check_one_reference_per_id(records, path)
    return records


def _check_one_reference_per_id(records: Sequence[Generation], path: str | Path) -> None:
    """Refuse systems that give one example id different references: the GT row keeps the first, and every
    paired difference would compare systems scored against different texts."""
    first: dict[str, Generation] = {}
    for record in records:
        seen = first.setdefault(record.id, record)
        if seen.reference != record.reference:
            raise InputError(
                f"{path}: example {record.id!r} has another reference for system {record.system!r} than for "
                f"{seen.system!r}; every system's line of an example must give the same reference"
            )


def group_by_system(records: Sequence[Generation]) -> dict[str, list[Generation]]:
    """Records per system, systems in order of first appearance."""
    groups: dict[str, list[Generation]] = {}
    for record in records:
        groups.setdefault(record.system, []).append(record)
    return groups


def ground_truth_records(records: Sequence[Generation]) -> list[Generation]:
    """One record per example id whose ``generated`` is the reference (the table's GT row), with the images the
    reference was written about when the file gives them (``reference_pic_ids``), else the shown ones."""
    unique = {}
    for r in records:
        pics = r.reference_pic_ids or r.pic_ids
        unique.setdefault(r.id, Generation(r.id, GROUND_TRUTH, r.reference, r.reference, pics, pics))
    return list(unique.values())
