"""The paper's Table 1 for a built dataset folder: #Image, #Review, #User, #Bus., Avg. R. Len.

```bash
gest-showcases stats path/to/gest   # gest_showcases.commands.stats
```

Counts are per config and split, plus an `all` row per config: #Image counts distinct ids in
`pics`, Avg. R. Len. is the mean number of words (white-space separated, as `str.split`) of
`review_text`, or of `explanation` for `s2`, whose reviews are the explanations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gest_showcases.errors import InputError

from .folder import dataset_configs, read_table

# Runs of characters that are not white space in the sense of Python's str.split(): RE2's \s
# covers ASCII white space only, the rest is listed.
_WORD = r"[^\s\x0b\x1c-\x1f\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]+"
_COLUMNS = ["Config", "Split", "#Image", "#Review", "#User", "#Bus.", "Avg. R. Len."]
_BATCH = 100_000


def word_counts(texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Words per text, `len(text.split())` for each, vectorised."""
    return pc.count_substring_regex(texts, _WORD).to_numpy(zero_copy_only=False).astype(np.int64)


def _row(config: str, split: str, table: pa.Table, text_column: str) -> dict:
    words = sum(int(word_counts(batch.column(text_column)).sum()) for batch in table.to_batches(_BATCH))
    return {
        "Config": config,
        "Split": split,
        "#Image": len(pc.unique(pc.list_flatten(table["pics"]))),
        "#Review": table.num_rows,
        "#User": pc.count_distinct(table["user_id"]).as_py(),
        "#Bus.": pc.count_distinct(table["business_id"]).as_py(),
        "Avg. R. Len.": words / table.num_rows if table.num_rows else 0.0,
    }


def dataset_stats(folder: str | Path) -> list[dict]:
    """One dict per config and split (plus `all` for configs with several splits), keys as Table 1."""
    rows = []
    for config, splits in dataset_configs(folder).items():
        text_column = "explanation" if config == "s2" else "review_text"
        columns = ["user_id", "business_id", "pics", text_column]
        tables = {}
        for split, paths in splits.items():
            if not paths:
                raise InputError(f"{folder}: no parquet file for {config}/{split}; rebuild the folder")
            tables[split] = read_table(paths, config, columns)
        rows += [_row(config, split, table, text_column) for split, table in tables.items()]
        if len(tables) > 1:
            rows.append(_row(config, "all", pa.concat_tables(tables.values()), text_column))
    return rows


def format_markdown(rows: list[dict]) -> str:
    """Table 1 as a markdown table."""
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|---|---|" + "---:|" * (len(_COLUMNS) - 2)]
    for row in rows:
        cells = [row["Config"], row["Split"]]
        cells += [f"{row[name]:,}" for name in _COLUMNS[2:-1]] + [f"{row['Avg. R. Len.']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

