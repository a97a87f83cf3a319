"""Session 17's research script for issue 12's H11 (docs/experiments.md): is PC2L's gap to CE only made at decoding?
Kept so the run can be repeated; not part of the package.

    python docs/results/h11_decoding.py EXPERIMENT_DIR OUT_DIR

EXPERIMENT_DIR is a finished `gest-showcases experiment --features clip --num_reviews 1000 --pc2l_epochs 30 --seeds 3
--tables 2 --baselines none --output_dir EXPERIMENT_DIR`. Every seed's trained PC2L and CE-only generators re-decode
the seed's test examples from the photos the grid showed them (each record's `pic_ids`), once per decoding below,
through the grid's own `Experiment.generate`, and are scored as the grid scores them: ground-truth parts by
`metrics.synth_truth.score_texts`, PC2L - CE only by `experiments.summary.pooled_differences` (paired bootstrap over
the test examples, the seeds pooled on the same resamples, 1,000 resamples as the grid). The default decoding must
reproduce the grid's texts and its paired row. Writes OUT_DIR/<decoding>.jsonl (the texts) and OUT_DIR/h11.json, and
prints the table.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

from gest_showcases.commands.experiment import Experiment, ExperimentArguments
from gest_showcases.experiments.grid import CE_ONLY, PC2L
from gest_showcases.experiments.summary import generation_statistics, pooled_differences
from gest_showcases.metrics.synth_truth import SynthTruth, score_texts

SEEDS = 3
SAMPLING_SEED = 1234
METRICS = (("grounded_precision", "Grounded P", 100), ("distinct_outputs", "Distinct outputs", 1),
           ("distinct_2", "Distinct-2", 100), ("hallucination", "Halluc.", 100), ("bleu_1", "BLEU-1", 100))  # fmt: skip
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
    truth = SynthTruth.load(experiment.world / "synth" / "ground_truth.json")
    files = {name: [] for name in DECODINGS}
    cells = {
        name: {PC2L: [], CE_ONLY: []} for name in DECODINGS
    }  # per decoding and system: one cell per seed
    references = []
    same_as_grid, total = 0, 0
    for seed in range(SEEDS):
        lines = (experiment.seed_dir(seed) / "generations.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines if line]
        for system in (PC2L, CE_ONLY):
            mine = [record for record in records if record["system"] == system]
            test_rows = [rows[record["id"]] for record in mine]
            shown = [record["pic_ids"] for record in mine]
            users, businesses = (
                [row["user_id"] for row in test_rows],
                [row["business_id"] for row in test_rows],
            )
            for name, decoding in DECODINGS.items():
                torch.manual_seed(SAMPLING_SEED)  # the same draws for both systems (only sampling draws any)
                texts = experiment.generate(
                    experiment.generator_dir(seed, system), test_rows, shown, **decoding
                )
                if name == "default":
                    same_as_grid += sum(
                        text == record["generated"] for text, record in zip(texts, mine, strict=True)
                    )
                    total += len(mine)
                parts = score_texts(texts, users, businesses, shown, truth).ratio_parts
                cells[name][system].append({"texts": texts, "probe": {},
                                            "truth_parts": {k: [a, b] for k, (a, b) in parts.items()}})  # fmt: skip
                files[name] += [
                    record | {"id": f"s{seed}-{record['id']}", "generated": text}
                    for record, text in zip(mine, texts, strict=True)
                ]
            if system == PC2L:
                references.append([record["reference"] for record in mine])
            print(f"seed {seed}: {system} decoded {len(DECODINGS)} ways", flush=True)
    print(f"default decoding: {same_as_grid} of {total} texts equal the grid's\n")
    results = {}
    for name, by_system in cells.items():
        (out / f"{name}.jsonl").write_text("".join(json.dumps(record) + "\n" for record in files[name]))
        means = {}
        for system, seed_cells in by_system.items():
            per_seed = [
                generation_statistics(cell, refs) for cell, refs in zip(seed_cells, references, strict=True)
            ]
            means[system] = {
                key: float(np.mean([stats[key][0](np.arange(stats[key][1])[None])[0] for stats in per_seed]))
                for key, _, _ in METRICS
            }
        differences = pooled_differences(by_system[PC2L], by_system[CE_ONLY], references, 1000)
        results[name] = {"means": means, "differences": {key: differences[key] for key, _, _ in METRICS}}
    # Within each system: sampling - the grid's decoding, paired the same way (does sampling lower grounding?).
    results["sampling_minus_default"] = {
        system: pooled_differences(cells["sampling"][system], cells["default"][system], references, 1000)[
            "grounded_precision"
        ]
        for system in (PC2L, CE_ONLY)
    }
    (out / "h11.json").write_text(json.dumps(results, indent=1))
    header = " | ".join(f"{label}: PC2L / CE only / paired PC2L - CE only" for _, label, _ in METRICS[:2])
    print(f"| decoding | {header} |\n|---|---|---|")
    for name, result in results.items():
        if name == "sampling_minus_default":
            continue
        cells_text = []
        for key, _, scale in METRICS[:2]:
            low, high = (scale * value for value in result["differences"][key]["ci95"])
            estimate = scale * result["differences"][key]["estimate"]
            pc2l, ce = scale * result["means"][PC2L][key], scale * result["means"][CE_ONLY][key]
            cells_text.append(f"{pc2l:.1f} / {ce:.1f} / {estimate:+.1f} [{low:+.1f}, {high:+.1f}]")
        print(f"| {name} | " + " | ".join(cells_text) + " |")
    for system, difference in results["sampling_minus_default"].items():
        low, high = (100 * value for value in difference["ci95"])
        estimate = 100 * difference["estimate"]
        print(
            f"{system}: grounded precision, sampling - the grid's decoding {estimate:+.1f} [{low:+.1f}, {high:+.1f}]"
        )


if __name__ == "__main__":
    main()
