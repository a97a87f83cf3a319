"""Session 19's research script for issue 12 (H13b in docs/experiments.md; not part of the package): how far each
SmolLM2 generator opened its gated cross-attention. Every gated block adds `tanh(gate) * output` to the residual
stream and starts at gate 0 (the pretrained LM unchanged), so |tanh(gate)| is how much of each block's photo and
review reading reaches the text. A descriptive reading beside the input-reliance probe (dCE photos swapped), which
measures the same thing end to end; it is not part of H13b's declared reading.

Reads the LoRA adapters (where peft keeps the fully trained gates) of a finished
`gest-showcases experiment --decoder smollm2` folder and prints one Markdown row per seed and generator.

    python docs/results/h13b_gates.py EXPERIMENT_DIR [FEATURES] [SEEDS] > out.md
"""

import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

GENERATORS = (("none-none", "CE only"), ("ccl-pcl", "PC2L (CCL + PCL)"))
GATES = ("attention_gate", "mlp_gate")


def gate_openings(adapter: Path) -> dict[str, list[float]]:
    """|tanh(gate)| of every block, in layer order, for each of the two gates of a block."""
    weights = load_file(adapter)
    openings = {}
    for gate in GATES:
        names = [name for name in weights if name.endswith(f"cross_attention.{gate}.weight")]
        if not names:
            raise SystemExit(f"{adapter}: no {gate} weights; is this a SmolLM2 (gated) generator?")
        names.sort(key=lambda name: int(name.split(".layers.")[1].split(".")[0]))
        openings[gate] = [float(torch.tanh(weights[name]).abs()) for name in names]
    return openings


def main() -> None:
    work = Path(sys.argv[1])
    features = sys.argv[2] if len(sys.argv) > 2 else "clip"
    seeds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    print("| seed | generator | attention gates, by layer | mean | feed-forward gates, by layer | mean |")
    print("|---:|---|---|---:|---|---:|")
    for seed in range(seeds):
        for folder, label in GENERATORS:
            adapter = (
                work / features / f"seed-{seed}" / "generators-smollm2" / folder / "adapter_model.safetensors"
            )
            if not adapter.is_file():
                print(f"| {seed} | {label} | not trained yet | | | |")
                continue
            openings = gate_openings(adapter)
            cells = []
            for gate in GATES:
                values = openings[gate]
                cells += [" / ".join(f"{value:.3f}" for value in values), f"{sum(values) / len(values):.3f}"]
            print(f"| {seed} | {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
