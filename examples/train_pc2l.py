"""Train the PC2L explanation generator (same code as `gest-showcases train-pc2l`).

One process or several (DDP), on CPU or GPUs:

    accelerate launch examples/train_pc2l.py --config examples/configs/pc2l.yaml \
        --dataset data/gest --features data/features --output_dir runs/pc2l
    accelerate launch --multi_gpu --num_processes 2 examples/train_pc2l.py --config examples/configs/pc2l.yaml \
        --dataset data/gest --features data/features --output_dir runs/pc2l --use_cpu True

The YAML files in examples/configs/ are the rows of the paper's Table 4 (baseline, img_cl_text_cl, ccl_text_cl,
img_cl_pcl, pc2l); options given on the command line override them. For Table 5's "FT" row, first run
`gest-showcases finetune-lm` and pass its output folder as `--decoder`.
"""

import sys

from gest_showcases.commands.running import run_command
from gest_showcases.commands.train_pc2l import main

if __name__ == "__main__":
    sys.exit(run_command(main, "train-pc2l"))  # the CLI's one-line errors and clean exit
