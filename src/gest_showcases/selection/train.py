"""The files of the paper's Table 3: `table3.md` and `table3.json` (percent), as `gest-showcases train-selector`
writes them beside its `selector-<mode>` folders (the command is `gest_showcases.commands.train_selector`)."""

from __future__ import annotations

import json
from pathlib import Path

from .training import format_selection_table


def write_table(
    results: dict[str, dict[str, float]], k: int, output_dir: Path, counts: dict[str, int]
) -> str:
    """Writes `table3.md` and `table3.json` (percent) to `output_dir`; returns the markdown."""
    markdown = format_selection_table(results, k)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "table3.md").write_text(markdown + "\n")
    payload = {
        "k": k,
        "unit": "percent",
        "examples": counts,
        "results": {
            method: {key: 100 * value for key, value in metrics.items()}
            for method, metrics in results.items()
        },
    }
    (output_dir / "table3.json").write_text(json.dumps(payload, indent=2) + "\n")
    return markdown
