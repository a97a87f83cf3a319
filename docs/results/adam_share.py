"""H29 (session 35): how much of Adam's step size the contrastive losses take from cross-entropy in the paper's PC2L.

Retrains one grid cell's paper's PC2L (CCL + PCL) exactly as `gest-showcases experiment` does (the same
`train-pc2l` options and seed, into a new folder), and measures along the way, without changing the training (the
cross-entropy gradient is taken with `torch.autograd.grad` from the graph of the step's own forward: no `.grad`
written, no random draw):

- per step, the cross-entropy gradient `g_ce` and the step's whole gradient `g` (eq. 11, after backward, before
  clipping); the contrastive part is `g - g_ce`;
- per coordinate, exponential moving averages of `g_ce^2` and `g^2` with Adam's beta2 (bias corrections cancel in
  their ratio; the Trainer's clipping scales both alike within a step and is left out);
- at every logging step, per parameter group, `sqrt(sum v_ce / sum v)`: the factor by which Adam's normaliser,
  shared by the two losses, shrinks cross-entropy's step against a normaliser that saw cross-entropy alone (1: the
  contrastive losses take nothing; 0.5: cross-entropy moves at half its pace), and the median of the per-coordinate
  factor; with the global norms of `g_ce` and `g - g_ce` and their cosine.

Usage (from the repository root, with the world folder of a finished grid and its seed), then the table of H29's
declared reading (each group's factor averaged over the logging steps, per seed, and the mean of the seeds):

    python docs/results/adam_share.py /tmp/s32/demo 0 /tmp/s35/adam-demo-0.json
    python docs/results/adam_share.py --summary /tmp/s35/adam-*.json
"""

import json
import sys
from pathlib import Path

import torch

from gest_showcases.commands import train_pc2l
from gest_showcases.experiments.grid import PC2L_CELL_OPTIONS
from gest_showcases.experiments.world import generator_decoder_argv, trainer_argv
from gest_showcases.generation.trainer import PC2LTrainer

GROUPS = {  # first match wins
    "projection heads": ("image_head.", "review_head.", "target_head."),
    "encoder": ("encoder.", "image_projection", "review_projection"),
    "decoder cross-attention": ("crossattention", "ln_cross_attn"),
    "decoder (the rest)": ("",),
}


def group_of(name: str) -> str:
    return next(group for group, marks in GROUPS.items() if any(mark in name for mark in marks))


class Recorder:
    def __init__(self, beta2: float):
        self.beta2, self.ce_gradients, self.rows = beta2, None, []
        self.v_ce: dict[str, torch.Tensor] = {}
        self.v: dict[str, torch.Tensor] = {}
        self.norms: list[tuple[float, float, float]] = []

    def after_backward(self, trainer, model) -> None:
        names = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
        parameters = dict(model.named_parameters())
        inner = ce_norm2 = rest_norm2 = 0.0
        for name in names:
            g = parameters[name].grad
            g_ce = self.ce_gradients.get(name)
            g_ce = torch.zeros_like(g) if g_ce is None else g_ce
            if name not in self.v:
                self.v[name], self.v_ce[name] = torch.zeros_like(g), torch.zeros_like(g)
            self.v[name].mul_(self.beta2).add_((1 - self.beta2) * g.square())
            self.v_ce[name].mul_(self.beta2).add_((1 - self.beta2) * g_ce.square())
            rest = g - g_ce
            inner += float((g_ce * rest).sum())
            ce_norm2 += float(g_ce.square().sum())
            rest_norm2 += float(rest.square().sum())
        self.norms.append((ce_norm2**0.5, rest_norm2**0.5, inner / max((ce_norm2 * rest_norm2) ** 0.5, 1e-30)))
        step = trainer.state.global_step + 1
        if step % trainer.args.logging_steps == 0:
            row = {"step": step}
            for group in GROUPS:
                members = [name for name in names if group_of(name) == group]
                if not members:
                    continue
                v = torch.cat([self.v[name].reshape(-1) for name in members])
                v_ce = torch.cat([self.v_ce[name].reshape(-1) for name in members])
                row[group] = {
                    "share": float((v_ce.sum() / v.sum()).sqrt()),
                    "median": float((v_ce / v.clamp(min=1e-30)).sqrt().median()),
                }
            window = self.norms[-trainer.args.logging_steps :]
            row["ce_norm"] = sum(n[0] for n in window) / len(window)
            row["contrastive_norm"] = sum(n[1] for n in window) / len(window)
            row["cosine"] = sum(n[2] for n in window) / len(window)
            self.rows.append(row)


def main(world_folder: str, seed: int, out: str) -> None:
    work = Path(world_folder)
    world = work / "world"
    recorder = Recorder(beta2=0.999)  # TrainingArguments' adam_beta2 default, which the grid keeps
    loss_and_parts, training_step = PC2LTrainer.loss_and_parts, PC2LTrainer.training_step

    def recording_loss_and_parts(self, model, outputs, inputs):
        if model.training and torch.is_grad_enabled():
            named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
            gradients = torch.autograd.grad(outputs.loss, [p for _, p in named], retain_graph=True, allow_unused=True)
            recorder.ce_gradients = {name: g for (name, _), g in zip(named, gradients, strict=True) if g is not None}
        return loss_and_parts(self, model, outputs, inputs)

    def recording_training_step(self, model, inputs, num_items_in_batch=None):
        loss = training_step(self, model, inputs, num_items_in_batch)
        recorder.after_backward(self, model)
        return loss

    PC2LTrainer.loss_and_parts = recording_loss_and_parts
    PC2LTrainer.training_step = recording_training_step
    run = Path(out).with_suffix("")
    status = train_pc2l.main([
        *generator_decoder_argv("gpt2", world, "gpt2"),
        "--dataset", str(world / "dataset"), "--features", str(world / "features"), "--image_kind", "image",
        *PC2L_CELL_OPTIONS, "--image_contrastive", "ccl", "--review_contrastive", "pcl",
        "--negative_seed", str(seed), *trainer_argv(run, 30, seed, 16, 1e-3),
    ])  # fmt: skip
    if status:
        raise SystemExit(status)
    Path(out).write_text(json.dumps({"world": world_folder, "seed": seed, "rows": recorder.rows}, indent=1))


def summary(paths: list[str]) -> str:
    runs = [json.loads(Path(path).read_text()) for path in paths]
    lines = ["| world | seeds | " + " | ".join(GROUPS) + " | norm CE / contrastive | cosine |",
             "|---|---|" + "---:|" * (len(GROUPS) + 2)]  # fmt: skip
    for world in dict.fromkeys(run["world"] for run in runs):
        mine = [run for run in runs if run["world"] == world]
        cells = []
        for group in GROUPS:
            per_seed = [sum(row[group]["share"] for row in run["rows"]) / len(run["rows"]) for run in mine]
            medians = [sum(row[group]["median"] for row in run["rows"]) / len(run["rows"]) for run in mine]
            cells.append(f"{sum(per_seed) / len(per_seed):.3f} ({' / '.join(f'{v:.3f}' for v in per_seed)}; "
                         f"median {sum(medians) / len(medians):.3f})")  # fmt: skip
        ratio = [sum(r["ce_norm"] / r["contrastive_norm"] for r in run["rows"]) / len(run["rows"]) for run in mine]
        cosine = [sum(r["cosine"] for r in run["rows"]) / len(run["rows"]) for run in mine]
        lines.append(f"| {world} | {', '.join(str(run['seed']) for run in mine)} | " + " | ".join(cells)
                     + f" | {sum(ratio) / len(ratio):.2f} | {sum(cosine) / len(cosine):.3f} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1] == "--summary":
        print(summary(sys.argv[2:]))
    else:
        main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
