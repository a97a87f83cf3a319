"""Score generated explanations: the paper's Table 2 (markdown + JSON) and Figure 6 (two PNGs).

The same code as `gest-showcases evaluate`:

    python examples/evaluate_showcases.py --generations generations.jsonl --output_dir report \
        --images IMAGE_DIR --clip_model CLIP_PATH --classifier CLASSIFIER_PATH

`generations.jsonl` has one line per generated explanation:
{"id": ..., "system": ..., "generated": ..., "reference": ..., "pic_ids": [...]}.
METEOR needs WordNet once: `gest-showcases setup-assets`.
See `python examples/evaluate_showcases.py --help` for every option.
"""

import sys

from gest_showcases.commands.evaluate import main
from gest_showcases.commands.running import run_command

if __name__ == "__main__":
    sys.exit(run_command(main, "evaluate"))  # the CLI's one-line errors and clean exit
