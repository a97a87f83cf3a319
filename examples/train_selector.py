"""Train the DPP image selectors and print the paper's Table 3 (random, img, text, img+text).

The same code as `gest-showcases train-selector`; run it under accelerate for multi-process training:

    accelerate launch examples/train_selector.py --dataset DATASET_DIR --features FEATURE_DIR \
        --output_dir selector-runs

See `python examples/train_selector.py --help` for every option.
"""

import sys

from gest_showcases.commands.running import run_command
from gest_showcases.commands.train_selector import main

if __name__ == "__main__":
    sys.exit(run_command(main, "train-selector"))  # the CLI's one-line errors and clean exit
