"""Session 17's research script for issue 12's H11 (docs/experiments.md): is PC2L's gap to CE only made at decoding?
Kept so the run can be repeated; not part of the package.

    python docs/results/h11_decoding.py EXPERIMENT_DIR OUT_DIR

EXPERIMENT_DIR is a finished `gest-showcases experiment --features clip --num_reviews 1000 --pc2l_epochs 30 --seeds 3
--tables 2 --baselines none --output_dir EXPERIMENT_DIR`. Every seed's trained PC2L and CE-only generators re-decode
the seed's test examples from the photos the grid showed them (each record's `pic_ids`), once per decoding below,
through the grid's own `Experiment.generate`. Writes OUT_DIR/<decoding>.jsonl, a generations file whose ids are
`s<seed>-<review id>`, so that `gest-showcases evaluate --synth_truth` pools the seeds' examples with each pair kept
(PC2L and CE only on the same seed and example), and prints how many default-decoding texts equal the grid's.
"""

import json
import sys
from pathlib import Path

import torch

from gest_showcases.commands.experiment import Experiment, ExperimentArguments
from gest_showcases.experiments.grid import CE_ONLY, PC2L

SEEDS = 3
SAMPLING_SEED = 1234
# Changes to the grid's decoding (beam 2, no repeated trigram, up to 64 new tokens).
DECODINGS = {
    "default": {},
    "greedy": {"num_beams": 1, "no_repeat_ngram_size": 0},
    "beam4": {"num_beams": 4},
    "sampling": {"num_beams": 1, "do_sample": True, "top_p": 0.9, "temperature": 1.0},
}


def main() -> None:
    work, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    args = ExperimentArguments(
        output_dir=str(work), features="clip", num_reviews=1000, pc2l_epochs=30, seeds=SEEDS, tables=["2"],
        baselines=["none"],
    )  # fmt: skip
    experiment = Experiment(args)
    rows = {row["review_id"]: row for row in experiment.test_rows()}
    files = {name: [] for name in DECODINGS}
    same_as_grid, total = 0, 0
    for seed in range(SEEDS):
        lines = (experiment.seed_dir(seed) / "generations.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines if line]
        for system in (PC2L, CE_ONLY):
            mine = [record for record in records if record["system"] == system]
            test_rows = [rows[record["id"]] for record in mine]
            shown = [record["pic_ids"] for record in mine]
            for name, decoding in DECODINGS.items():
                torch.manual_seed(SAMPLING_SEED)  # the same draws for both systems (only sampling draws any)
                texts = experiment.generate(experiment.generator_dir(seed, system), test_rows, shown, **decoding)
                if name == "default":
                    same_as_grid += sum(text == record["generated"] for text, record in zip(texts, mine, strict=True))
                    total += len(mine)
                files[name] += [
                    record | {"id": f"s{seed}-{record['id']}", "generated": text}
                    for record, text in zip(mine, texts, strict=True)
                ]
            print(f"seed {seed}: {system} decoded {len(DECODINGS)} ways", flush=True)
    for name, records in files.items():
        (out / f"{name}.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    print(f"default decoding: {same_as_grid} of {total} texts equal the grid's")


if __name__ == "__main__":
    main()
