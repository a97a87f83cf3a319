"""Benchmark of the PC2L generator at GPT-2-small size (random weights): training step and generation.

Measured in one run, each against its baseline:
- training step (forward, eq. 11, backward, AdamW step) of full PC2L (CCL + PCL, the hard negatives batched into the
  decoder call), of the same with each hard negative computed from its first swapped token on (its prefix shared
  with the target, `_negative_prefix_sharing`), of the same with the hard negatives detached
  (`hard_negative_gradients="detached"`, a deviation from the paper: their decoder pass without gradients, same
  loss), and of "img CL + PCL" (no hard negatives), against CE-only (Table 4 "baseline"); target: PC2L at most
  1.35x CE-only. The options that combine eq. 11's two gradients otherwise (`generation/gradients.py`, H28 and H30
  of docs/experiments.md), each with cross-entropy's and the contrastive gradient apart (two backward passes through
  the targets' decoder pass): `gradient_conflicts="projected"` and `contrastive_normaliser="separate"` (with its
  own optimizer, `SeparateNormaliserAdamW`). The synthetic negatives are the targets with two tokens swapped where
  the first swap of `negatives.make_hard_negatives` falls on Gest-Synth explanations (`FIRST_SWAP_DECILES`);
- generation throughput (explanations/s, 2 beams, 64 new tokens, the encoder included) against a plain
  `GPT2LMHeadModel` with cross-attention of the same size fed the same encoder states through `generate`;
  target: at least 0.9x;
- what a training step saves for backward (its activations, every device), the memory of a step of each variant
  (its peak, and what it adds to the model and Adam states, measured in a step of its own: `memory_stats.py`),
  target tokens/s, and the share of the matmul rate of the step's precision (bf16 on CUDA, float32 on CPU; measured
  in the same run by a large matmul) that the training step achieves, its FLOPs counted by
  `torch.utils.flop_counter`; and what each variant adds to a CE-only step (FLOPs, seconds, and the ratio to CE-only
  the step would have if those FLOPs ran at the matmul rate: the bound of a FLOP-bound variant).

All variants train one model with one optimizer, each step setting its variant's losses (a step's cost does not
depend on the weights' values), so that the process holds one GPT-2-small with its Adam states: one per
configuration put the CPU process's peak at 8.3 GiB. `memory_pc2l.py` accounts for the memory phase by phase.

Imports only the model, configuration and losses (torch + transformers), so it runs on the GPU machine:

    PYTHONPATH=src python benchmarks/bench_pc2l.py --device cuda --output $OUT/pc2l.json
    PYTHONPATH=src python benchmarks/bench_pc2l.py --device cpu --batch-size 4 --output pc2l_cpu.json
"""

import argparse
import contextlib
import platform
import statistics
import time
from collections.abc import Callable

import _env
import torch
from memory_stats import optimizer_state_gib, peak_during, process_peak_gib, tensor_gib
from torch.utils.flop_counter import FlopCounterMode
from transformers import GPT2LMHeadModel

from gest_showcases.generation.configuration_pc2l import PC2LConfig
from gest_showcases.generation.gradients import SeparateNormaliserAdamW, combined_gradient_loss
from gest_showcases.generation.losses import total_loss
from gest_showcases.generation.modeling_pc2l import PC2LForConditionalGeneration

TARGET_TOKENS, NUM_IMAGES, NUM_REVIEWS, FEATURE_DIM = 64, 5, 10, 512
VARIANTS = {
    "ce_only": ("none", "none"),
    "img_cl_pcl": ("cl", "pcl"),
    "pc2l": ("ccl", "pcl"),
    "pc2l_shared_prefix": ("ccl", "pcl"),  # `_negative_prefix_sharing` on
    "pc2l_detached_negatives": ("ccl", "pcl"),  # `hard_negative_gradients="detached"` (a deviation)
    "pc2l_projected": ("ccl", "pcl"),  # `gradient_conflicts="projected"` (H28, an option)
    "pc2l_separate": ("ccl", "pcl"),  # `contrastive_normaliser="separate"` (H30, an option)
}
SEPARATE = "pc2l_separate"  # the variant that steps with `SeparateNormaliserAdamW` instead of AdamW
# Where a hard negative first differs from its target, as a share of the target's tokens (BOS and EOS included):
# deciles (0%, 10%, ..., 100%) over the 503 s2 training explanations of the Gest-Synth demo dataset, negatives from
# `make_hard_negatives` with the spaCy parser, GPT-2-style BPE of the demo. Mean 0.29: a negative shares 27% of
# its tokens with its target. The first noun chunk comes early in a sentence, and at least one chunk is swapped.
FIRST_SWAP_DECILES = (0.048, 0.111, 0.146, 0.174, 0.222, 0.25, 0.286, 0.333, 0.424, 0.545, 0.87)


def gpt2_small_config(image_contrastive: str, review_contrastive: str) -> PC2LConfig:
    """The paper's sizes: GPT-2 small decoder (12 x 768, 12 heads), 3-layer 768-wide encoder, CLIP-sized features."""
    decoder = {"n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257, "n_positions": 1024}
    return PC2LConfig(
        decoder=decoder,
        image_feature_dim=FEATURE_DIM,
        review_feature_dim=FEATURE_DIM,
        image_contrastive=image_contrastive,
        review_contrastive=review_contrastive,
    )


def first_swap_positions(batch_size: int) -> torch.Tensor:
    """First swapped token of each example's negative: the `FIRST_SWAP_DECILES` quantiles at (k + 0.5) / B."""
    levels = (torch.arange(batch_size) + 0.5) / batch_size * 10  # in deciles
    deciles = torch.tensor(FIRST_SWAP_DECILES)
    below = levels.floor().long()
    shares = deciles[below] + (levels - below) * (deciles[below + 1] - deciles[below])
    return (shares * TARGET_TOKENS).round().long().clamp(1, TARGET_TOKENS - 2)


def synthetic_batch(batch_size: int, vocab_size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Full-length targets, their entity-swapped negatives (`first_swap_positions`, two tokens swapped), 5 images
    and 10 reviews per example (the paper's maxima)."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(vocab_size, (batch_size, TARGET_TOKENS), generator=generator)
    swapped = first_swap_positions(batch_size)[:, None] + torch.arange(2)  # [B, 2]
    shift = torch.randint(1, vocab_size, swapped.shape, generator=generator)  # + 1..V-1 mod V: another token
    negatives = ids.scatter(1, swapped, (ids.gather(1, swapped) + shift) % vocab_size)
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": ids,
        "negative_input_ids": negatives,
        "negative_attention_mask": torch.ones_like(ids),
        "image_features": torch.randn(batch_size, NUM_IMAGES, FEATURE_DIM, generator=generator),
        "image_mask": torch.ones(batch_size, NUM_IMAGES, dtype=torch.bool),
        "review_features": torch.randn(batch_size, NUM_REVIEWS, FEATURE_DIM, generator=generator),
        "review_mask": torch.ones(batch_size, NUM_REVIEWS, dtype=torch.bool),
    }
    return {key: value.to(device) for key, value in batch.items()}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def build_model(device: torch.device, image_contrastive: str = "ccl", review_contrastive: str = "pcl"):
    """A GPT-2-small PC2L in training mode and its AdamW, fused on every device as the Trainer's default optim
    (`adamw_torch_fused`) builds it (until session 40 the CPU runs here stepped the slower unfused AdamW).

    The default configuration has every module of every variant (the projection heads), so one model serves all
    of `VARIANTS` (`training_step`); `SEPARATE` steps with `separate_normaliser_optimizer(model)` instead.
    """
    torch.manual_seed(0)
    model = PC2LForConditionalGeneration(gpt2_small_config(image_contrastive, review_contrastive))
    model = model.to(device).train()
    return model, torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)


def separate_normaliser_optimizer(model: PC2LForConditionalGeneration) -> SeparateNormaliserAdamW:
    """The optimizer `PC2LTrainer` builds for `contrastive_normaliser="separate"`, at the scale H30 ran (0.2)."""
    return SeparateNormaliserAdamW(model.parameters(), lr=1e-4, contrastive_step_scale=0.2)


def training_step(
    name: str, batch: dict, model: PC2LForConditionalGeneration, optimizer: torch.optim.Optimizer
):
    """A closure running one training step of the Table 4 variant `name` (forward, eq. 11, backward, AdamW) on
    `model`; it returns the loss (detached).

    Each step sets the model's contrastive losses (and prefix sharing, hard-negative gradients) to the variant's, so
    variants can share one model (`build_model`): CE-only leaves the projection heads without gradients, and AdamW
    skips them as it would absent heads.
    """
    losses = VARIANTS[name]
    if losses[0] != "ccl":
        batch = {key: value for key, value in batch.items() if not key.startswith("negative")}
    device = next(model.parameters()).device

    def step():
        model.config.image_contrastive, model.config.review_contrastive = losses
        model._negative_prefix_sharing = name == "pc2l_shared_prefix"
        model.config.hard_negative_gradients = "detached" if name == "pc2l_detached_negatives" else "full"
        model.config.gradient_conflicts = "projected" if name == "pc2l_projected" else "kept"
        model.config.contrastive_normaliser = "separate" if name == SEPARATE else "shared"
        with autocast(device):
            loss, parts = total_loss(model.config, model(**batch), batch)
            loss, _ = combined_gradient_loss(model.config, loss, parts, step.parameters)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    step.parameters = list(model.parameters())
    return step


@contextlib.contextmanager
def saved_for_backward(parameters: list[torch.Tensor]):
    """Yields a dict whose `"gib"` is, on exit, what the autograd graph kept for backward in the block (distinct
    storages, the parameters' own not counted): a step's activation memory, on any device."""
    parameter_storages = {parameter.untyped_storage().data_ptr() for parameter in parameters}
    storages, result = {}, {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameter_storages:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield result
    result["gib"] = sum(storages.values()) / 2**30


def bench_training(
    batch: dict, args, device: torch.device, phase: Callable[[str], None] = lambda name: None
) -> tuple[dict, dict]:
    """Median seconds per training step of each variant, FLOPs of one step, and its memory; and the memory the
    shared model holds (`parameters`, `optimizer_states`, and `separate_normaliser_states`: the second optimizer's,
    in GiB).

    The variants' steps are interleaved (one step of each per round), so that load from other processes on a shared
    machine falls on all of them alike. Memory is measured in a step of its own per variant, after the timed ones
    (`peak_during`): on CPU it releases the heap memory that glibc kept, which the next step would pay for in page
    faults. `phase(name)` is called after each phase (`memory_pc2l.py` reads the process's memory there).
    """
    model, optimizer = build_model(device)
    separate = separate_normaliser_optimizer(model)
    steps = {
        name: training_step(name, batch, model, separate if name == SEPARATE else optimizer) for name in VARIANTS
    }
    phase("model and optimizer built")
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    phase("warm-up steps (Adam states allocated)")
    durations = {name: [] for name in VARIANTS}
    for _ in range(args.steps):
        for name, step in steps.items():
            synchronize(device)
            start = time.perf_counter()
            step()
            synchronize(device)
            durations[name].append(time.perf_counter() - start)
    phase("timed steps")
    tokens = batch["input_ids"].numel()
    results = {}
    for name, step in steps.items():
        with FlopCounterMode(display=False) as counter, saved_for_backward(step.parameters) as saved:
            step()
        seconds = statistics.median(durations[name])
        flops = counter.get_total_flops()
        results[name] = {"step_s": seconds, "tokens_per_s": tokens / seconds, "flops_per_step": flops,
                         "achieved_tflops": flops / seconds / 1e12, "saved_for_backward_gib": saved["gib"]}  # fmt: skip
    phase("FLOP counter and saved-for-backward steps")
    for name, step in steps.items():
        with peak_during(device) as memory:
            step()
        results[name]["step_memory_gib"] = memory["added"]
        results[name]["step_peak_memory_gib"] = memory["peak"]
    phase("memory steps")
    resident = {
        "parameters": tensor_gib(model.parameters()),
        "optimizer_states": optimizer_state_gib(optimizer),
        "separate_normaliser_states": optimizer_state_gib(separate),
    }
    return results, resident


def bench_generation(
    batch: dict, args, device: torch.device, phase: Callable[[str], None] = lambda name: None
) -> dict:
    """Explanations/s of PC2L `generate` (encoder included) and of plain GPT-2 fed the same encoder states, and the
    peak memory of each's untimed warm-up call (`peak_during`; both models resident). `phase`: as `bench_training`'s.
    """
    torch.manual_seed(0)
    model = PC2LForConditionalGeneration(gpt2_small_config("none", "none")).to(device).eval()
    baseline = GPT2LMHeadModel(model.config.decoder).to(device).eval()
    baseline.load_state_dict(model.decoder.state_dict())
    inputs = {key: batch[key][: args.gen_batch_size] for key in ("image_features", "image_mask", "review_features",
                                                                  "review_mask")}  # fmt: skip
    bos = model.config.decoder.bos_token_id
    generate_kwargs = {"num_beams": 2, "max_new_tokens": TARGET_TOKENS, "min_new_tokens": TARGET_TOKENS,
                       "do_sample": False, "pad_token_id": bos}  # fmt: skip
    with torch.no_grad(), autocast(device):
        states, mask = model.encode(**inputs)
    start_ids = torch.full((args.gen_batch_size, 1), bos, dtype=torch.long, device=device)
    phase("generation models built")

    def run_pc2l():
        with autocast(device):
            return model.generate(**inputs, **generate_kwargs)

    def run_baseline():
        with autocast(device):
            return baseline.generate(start_ids, attention_mask=torch.ones_like(start_ids),
                                     encoder_hidden_states=states, encoder_attention_mask=mask,
                                     **generate_kwargs)  # fmt: skip

    results = {}
    for name, run in (("pc2l", run_pc2l), ("gpt2_cross_attention", run_baseline)):
        with peak_during(device) as memory:
            run()  # warm-up
        start = time.perf_counter()
        for _ in range(args.gen_repeats):
            ids = run()
        synchronize(device)
        seconds = (time.perf_counter() - start) / args.gen_repeats
        assert ids.shape == (args.gen_batch_size, TARGET_TOKENS + 1), ids.shape
        results[name] = {"explanations_per_s": args.gen_batch_size / seconds,
                         "new_tokens_per_s": args.gen_batch_size * TARGET_TOKENS / seconds,
                         "peak_memory_gib": memory["peak"]}  # fmt: skip
    phase("generation")
    return results


def matmul_tflops(device: torch.device, dtype: torch.dtype, size: int, repeats: int = 20) -> float:
    """The attainable dense matmul rate of this device in `dtype`, measured now (square products of `size`)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e12


def add_rate_shares(training: dict, rate_name: str, rate_tflops: float) -> None:
    """Add to each variant's row its share of the matmul rate `rate_tflops` and what it adds to a CE-only step.

    `extra_over_ce_only`: the FLOPs and seconds over CE-only's, the rate they run at, and the ratio to CE-only the
    step would have if they ran at the matmul rate (`x_ce_only_if_extra_at_matmul_rate`: the bound of a variant
    whose extra work is matrix products)."""
    ce_only = training["ce_only"]
    for name, row in training.items():
        row[f"share_of_{rate_name.removesuffix('_tflops')}_rate"] = row["achieved_tflops"] / rate_tflops
        if name == "ce_only":
            continue
        extra_flops = row["flops_per_step"] - ce_only["flops_per_step"]
        extra_s = row["step_s"] - ce_only["step_s"]
        row["extra_over_ce_only"] = {
            "flops": extra_flops,
            "seconds": extra_s,
            "tflops": extra_flops / extra_s / 1e12 if extra_s > 0 else None,
            "x_ce_only_if_extra_at_matmul_rate": 1 + extra_flops / (rate_tflops * 1e12) / ce_only["step_s"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--batch-size", type=int, default=None, help="training batch (default: 32 cuda, 4 cpu)"
    )
    parser.add_argument(
        "--gen-batch-size", type=int, default=None, help="generation batch (default: 32 cuda, 4 cpu)"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="timed training steps (default: 20 cuda, 3 cpu)"
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="warm-up training steps (default: 5 cuda, 1 cpu)"
    )
    parser.add_argument(
        "--gen-repeats", type=int, default=None, help="timed generate calls (default: 3 cuda, 1 cpu)"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--output", default="bench_pc2l.json", help="write the results as JSON here")
    _env.add_noisy_argument(parser)
    args = parser.parse_args()
    cuda = args.device == "cuda"
    args.batch_size = args.batch_size or (32 if cuda else 4)
    args.gen_batch_size = args.gen_batch_size or (32 if cuda else 4)
    args.steps = args.steps or (20 if cuda else 3)
    args.warmup = args.warmup or (5 if cuda else 1)
    args.gen_repeats = args.gen_repeats or (3 if cuda else 1)
    if args.threads:
        torch.set_num_threads(args.threads)
    environment = _env.start(args.noisy)
    device = torch.device(args.device)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True

    batch = synthetic_batch(max(args.batch_size, args.gen_batch_size), 50257, device)
    train_batch = {key: value[: args.batch_size] for key, value in batch.items()}
    training, training_resident = bench_training(train_batch, args, device)
    if cuda:
        torch.cuda.empty_cache()
    generation = bench_generation(batch, args, device)
    measured_peaks = [row["step_peak_memory_gib"] for row in training.values()]
    measured_peaks += [row["peak_memory_gib"] for row in generation.values()]
    results = {
        "device": torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "precision": "bf16 autocast" if cuda else "fp32",
        "batch_size": args.batch_size,
        "gen_batch_size": args.gen_batch_size,
        "training": training,
        "generation": generation,
        "pc2l_over_ce_step_time": training["pc2l"]["step_s"] / training["ce_only"]["step_s"],
        "pc2l_shared_prefix_over_ce_step_time": training["pc2l_shared_prefix"]["step_s"]
        / training["ce_only"]["step_s"],
        # A deviation from the paper (no gradients through the hard negatives), never the default: not the target's.
        "pc2l_detached_negatives_over_ce_step_time": training["pc2l_detached_negatives"]["step_s"]
        / training["ce_only"]["step_s"],
        "img_cl_pcl_over_ce_step_time": training["img_cl_pcl"]["step_s"] / training["ce_only"]["step_s"],
        # Options (H28, H30), not the paper's default: the two gradients taken apart, two backward passes.
        "pc2l_projected_over_ce_step_time": training["pc2l_projected"]["step_s"] / training["ce_only"]["step_s"],
        "pc2l_separate_over_ce_step_time": training[SEPARATE]["step_s"] / training["ce_only"]["step_s"],
        "generation_pc2l_over_gpt2": generation["pc2l"]["explanations_per_s"]
        / generation["gpt2_cross_attention"]["explanations_per_s"],
        "pc2l_over_ce_flops": training["pc2l"]["flops_per_step"] / training["ce_only"]["flops_per_step"],
        # CPU: the process's peak resident set over the run; CUDA: the most allocated in a measured step or
        # generate call (one training model, or the two generation models, resident).
        "peak_memory_gib": max(measured_peaks) if cuda else process_peak_gib(),
        # What the training model holds between steps (GiB): its parameters and AdamW's exp_avg / exp_avg_sq.
        "training_resident_gib": training_resident,
    }
    # The rate the step's precision attains in a large matrix product (CUDA: bf16 at 8192; CPU: float32 at 2048, the
    # size of the step's largest products), the rate that bounds a FLOP-bound step.
    rate_name = "bf16_matmul_tflops" if cuda else "fp32_matmul_tflops"
    results[rate_name] = matmul_tflops(device, *((torch.bfloat16, 8192) if cuda else (torch.float32, 2048)))
    add_rate_shares(training, rate_name, results[rate_name])

    print(f"\nPC2L benchmark on {results['device']} ({results['precision']}, torch {results['torch']}, "
          f"{results['threads']} threads)\n")  # fmt: skip
    print(f"| training (batch {args.batch_size}, 64 tokens) | step s (median) | x CE-only | FLOPs x CE-only "
          "| tokens/s | TFLOP/s | step peak GiB | step adds GiB | saved for backward GiB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, row in training.items():
        ratio = row["step_s"] / training["ce_only"]["step_s"]
        flops_ratio = row["flops_per_step"] / training["ce_only"]["flops_per_step"]
        print(f"| {name} | {row['step_s']:.3f} | {ratio:.2f} | {flops_ratio:.2f} | {row['tokens_per_s']:.0f} | "
              f"{row['achieved_tflops']:.2f} | {row['step_peak_memory_gib']:.2f} | {row['step_memory_gib']:.2f} | "
              f"{row['saved_for_backward_gib']:.2f} |")  # fmt: skip
    print("\npc2l_detached_negatives: hard_negative_gradients='detached', a deviation from the paper (no gradients "
          "through CCL's hard negatives; same loss), never the default; pc2l_projected, pc2l_separate: the options "
          "gradient_conflicts='projected' and contrastive_normaliser='separate' (H28, H30); the latter's "
          f"optimizer holds {training_resident['separate_normaliser_states']:.2f} GiB of moments of its own")  # fmt: skip
    print(f"\n| generation (batch {args.gen_batch_size}, 2 beams, 64 new tokens) | explanations/s | new tokens/s "
          "| x GPT-2 | peak GiB |")  # fmt: skip
    print("|---|---|---|---|---|")
    for name, row in generation.items():
        ratio = row["explanations_per_s"] / generation["gpt2_cross_attention"]["explanations_per_s"]
        print(f"| {name} | {row['explanations_per_s']:.2f} | {row['new_tokens_per_s']:.0f} | {ratio:.2f} | "
              f"{row['peak_memory_gib']:.2f} |")  # fmt: skip
    share = f"share_of_{rate_name.removesuffix('_tflops')}_rate"
    print(
        f"\n{rate_name.removesuffix('_tflops').replace('_', ' ')} rate measured: {results[rate_name]:.2f} TFLOP/s; "
        "training share: " + ", ".join(f"{name} {row[share]:.1%}" for name, row in training.items())
    )
    print("what each variant adds to a CE-only step: " + ", ".join(
        f"{name} {row['extra_over_ce_only']['flops'] / 1e9:.0f} GFLOP in {row['extra_over_ce_only']['seconds']:.3f} s "
        f"(x{row['extra_over_ce_only']['x_ce_only_if_extra_at_matmul_rate']:.2f} CE-only if at the matmul rate)"
        for name, row in training.items() if name != "ce_only"))  # fmt: skip
    print(
        f"\npeak memory: {results['peak_memory_gib']:.2f} GiB ({'CUDA allocated' if cuda else 'process RSS'}); "
        f"the training model holds {training_resident['parameters']:.2f} GiB of parameters and "
        f"{training_resident['optimizer_states']:.2f} GiB of Adam states"
    )
    _env.finish(results, environment, args.output)


if __name__ == "__main__":
    main()
