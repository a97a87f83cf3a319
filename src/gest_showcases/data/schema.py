"""The columns `build` writes into each config of a built folder, in Arrow types, and the check of a read table.

The one home of the built schema: `build.dataset_features` turns it into the `datasets.Features` the builder writes
with, and every reader of a built folder (`folder.read_rows` / `read_table`, `build.load_built`) checks what it read
against it with `check_built_table`. Every command downstream takes the schema for granted, so a hand-edited or
foreign parquet file would otherwise fail as a traceback deep in its work (`TypeError` on a null, `KeyError` on a
missing column, an Arrow kernel refusing a column of another type). Imports pyarrow only, so the light readers stay
light.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from gest_showcases.errors import InputError

STRINGS = pa.list_(pa.string())
NULLABLE_COLUMNS = ("rating", "time")  # a source may have neither (`Review`); every other value is always written
_FIX = "rebuild it with `gest-showcases build`"


def built_columns(config: str) -> dict[str, pa.DataType]:
    """`{column: Arrow type}` that `build` writes into `config` (`"raw"`, `"s1"` or `"s2"`), in its order."""
    columns = {
        "review_id": pa.string(),
        "user_id": pa.string(),
        "business_id": pa.string(),
        "rating": pa.int64(),
        "review_text": pa.string(),
        "pics": STRINGS,
        "time": pa.int64(),
    }
    if config != "raw":
        columns |= dict.fromkeys(
            ("pic_paths", "history_review_ids", "history_texts", "history_pics", "candidate_pics", "candidate_paths"),
            STRINGS,
        )
    if config == "s2":
        columns |= {"explanation": pa.string(), "explanation_sentences": STRINGS}
    return columns


def _same_type(actual: pa.DataType, expected: pa.DataType) -> bool:
    # A list's item field may be named `item` or `element` (parquet writers differ): the values' type is what counts.
    if pa.types.is_list(expected):
        return pa.types.is_list(actual) and _same_type(actual.value_type, expected.value_type)
    return actual == expected


def _type_name(data_type: pa.DataType) -> str:
    return f"list<{_type_name(data_type.value_type)}>" if pa.types.is_list(data_type) else str(data_type)


def check_built_table(table: pa.Table, where: str, config: str, columns: list[str] | None = None) -> None:
    """Refuse a table read from a built folder's `config` that does not hold what `build` writes: a missing column,
    a column of another type, or an empty (null) value where `build` always writes one. `columns`: only those were
    read (None: all). Extra columns are allowed.

    Raises:
        `InputError`: "WHERE: column 'explanation' ...; rebuild it with `gest-showcases build`".
    """
    for name, expected in built_columns(config).items():
        if columns is not None and name not in columns:
            continue
        if name not in table.column_names:
            raise InputError(f"{where}: no column {name!r}, which `build` writes; {_FIX}")
        column = table.column(name)
        if not _same_type(column.type, expected):
            raise InputError(f"{where}: column {name!r} holds {_type_name(column.type)}, not {_type_name(expected)}; "
                             f"{_FIX}")  # fmt: skip
        if name in NULLABLE_COLUMNS:
            continue
        values = pc.list_flatten(column) if pa.types.is_list(column.type) else None
        empty = column.null_count + (values.null_count if values is not None else 0)
        if empty:
            raise InputError(f"{where}: column {name!r} has {empty} empty (null) value(s), which `build` never "
                             f"writes; {_FIX}")  # fmt: skip
