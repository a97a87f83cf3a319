"""Benchmark of the Table 2 generators at the size the experiment grid trains them: training and generation throughput
of each baseline against PC2L's, measured in the same run (issue 16).

The seven `train-generator --model` rows (`baselines.registry.MODEL_NAMES`), random weights:
- `pc2l` (CCL + PCL, the paper's) and `gpt2-ce` (CE only) in the grid's shape (`Experiment.train_generator`): the
  world's GPT-2 decoder (2 layers, `--width` wide, 2 heads, 128 positions), a 1-layer 2-head encoder, projection 64;
  the hard negatives batched into the decoder call as `train-pc2l` does;
- `st`, `r2gen`, `ref2seq`, `peter`, `pepler` built as `train_baseline` builds them (the package's defaults, the
  input sizes the data sets, then the grid's `--config_overrides`: `experiments.grid.baseline_overrides` at `--width`);
  PEPLER around the world's GPT-2 shape, as the grid starts it from that checkpoint.

One synthetic batch in the grid's shape (batch 16; 48 target tokens; 5 photo and 10 history-review features; 5 user
and 5 item reference texts of 20 tokens; user and item ids); each model reads only the keys its
`conditioning_inputs` name, as `GeneratorCollator` batches them. Measured:
- training step (forward, the trainer's loss, backward, AdamW step): median seconds over `--steps` rounds after
  `--warmup`, the models interleaved one step each per round, so load from other processes falls on all alike;
  target tokens/s and the ratio to PC2L's;
- generation (`generate`, 2 beams, 32 new tokens forced, batch 8, the encoders included): median over
  `--gen-repeats` interleaved rounds after one warm-up call; new tokens/s and the ratio to PC2L's. CE-only PC2L is
  the same network as PC2L at inference (the contrastive heads only feed the loss), so it has no generation row.

Imports only the models (torch + transformers), so it runs on the GPU machine:

    PYTHONPATH=src python benchmarks/bench_baselines.py --device cuda --dtype bf16 --output $OUT/baselines.json
    PYTHONPATH=src nice -n 10 python benchmarks/bench_baselines.py --noisy --output bench_baselines.json
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import time

import _env
import torch
from transformers import HfArgumentParser

from gest_showcases.baselines.data import GeneratorDataArguments, IdVocabulary
from gest_showcases.baselines.registry import BASELINES, MODEL_NAMES, PC2L_RUNS
from gest_showcases.baselines.training import _input_config, _overrides
from gest_showcases.experiments.grid import PC2L_CELL_OPTIONS, baseline_overrides
from gest_showcases.generation.configuration_pc2l import PC2LConfig
from gest_showcases.generation.losses import total_loss
from gest_showcases.generation.modeling_pc2l import PC2LForConditionalGeneration
from gest_showcases.generation.training_run import PC2LDataArguments, PC2LModelArguments, config_kwargs

PC2L_NAMES = tuple(PC2L_RUNS)
# The default world's GPT-2 (`demo.init_gpt2` at `DemoSize`): its layers, heads and positions; the width is --width.
WORLD_GPT2 = {"n_layer": 2, "n_head": 2, "n_positions": 128}
# Batch keys per conditioning input, as `GeneratorCollator` names them.
INPUT_KEYS = {
    "image": ("image_features", "image_mask"),
    "review": ("review_features", "review_mask"),
    "ids": ("user_ids", "item_ids"),
    "references": ("user_reference_ids", "user_reference_mask", "item_reference_ids", "item_reference_mask"),
}
TARGET_KEYS = ("input_ids", "attention_mask", "labels")
NEGATIVE_KEYS = ("negative_input_ids", "negative_attention_mask")
BOS = 0  # the world tokenizer's `<|endoftext|>`: BOS, EOS and padding
# The arguments that set what is measured, recorded in the JSON.
SHAPE_ARGUMENTS = ("width", "vocab_size", "num_users", "num_items", "feature_dim", "batch_size", "target_tokens",
                   "images", "reviews", "references", "reference_tokens", "gen_batch_size", "new_tokens", "steps",
                   "warmup", "gen_repeats", "dtype")  # fmt: skip


def world_gpt2(args) -> dict:
    return {**WORLD_GPT2, "n_embd": args.width, "vocab_size": args.vocab_size, "bos_token_id": BOS,
            "eos_token_id": BOS}  # fmt: skip


def build_pc2l(name: str, args) -> PC2LForConditionalGeneration:
    """PC2L run `name` as the grid's `train-pc2l` call configures it, around the world's GPT-2 shape."""
    model_args, data_args = HfArgumentParser(
        (PC2LModelArguments, PC2LDataArguments)
    ).parse_args_into_dataclasses(
        args=["--tokenizer", "", "--dataset", "", "--features", "", *PC2L_CELL_OPTIONS, *PC2L_RUNS[name]]
    )
    config = PC2LConfig(decoder=world_gpt2(args), image_feature_dim=args.feature_dim,
                        review_feature_dim=args.feature_dim, **config_kwargs(model_args, data_args))  # fmt: skip
    return PC2LForConditionalGeneration(config)


def build_baseline(name: str, args):
    """Baseline `name` with the configuration `train_baseline` gives it on the grid (defaults, input sizes,
    overrides); PEPLER's decoder in the world GPT-2's shape, the checkpoint the grid starts it from."""
    baseline = BASELINES[name]
    model_class = baseline.model_class()
    inputs = tuple(model_class.conditioning_inputs)
    data_args = GeneratorDataArguments(dataset="", features="", max_length=args.target_tokens)
    example = {
        "image_features": torch.zeros(1, args.feature_dim),
        "review_features": torch.zeros(1, args.feature_dim),
    }
    vocabulary = IdVocabulary(
        tuple(map(str, range(args.num_users - 1))), tuple(map(str, range(args.num_items - 1)))
    )
    kwargs = baseline.defaults | {"vocab_size": args.vocab_size, "bos_token_id": BOS, "eos_token_id": BOS,
                                  "pad_token_id": BOS}  # fmt: skip
    kwargs |= _input_config(inputs, [example], data_args, vocabulary)
    kwargs |= _overrides(baseline.config_class(), kwargs, baseline_overrides(name, args.width))
    if baseline.pretrained_decoder:
        kwargs["decoder"] = world_gpt2(args)
    return model_class(baseline.config_class()(**kwargs))


def build(name: str, args):
    return build_pc2l(name, args) if name in PC2L_NAMES else build_baseline(name, args)


def model_keys(model) -> tuple[str, ...]:
    """The conditioning keys of the batch `model` reads (PC2L: photos and reviews, plus the hard negative for CCL)."""
    if isinstance(model, PC2LForConditionalGeneration):
        negatives = NEGATIVE_KEYS if model.config.image_contrastive == "ccl" else ()
        return (*INPUT_KEYS["image"], *INPUT_KEYS["review"], *negatives)
    return tuple(key for name in model.conditioning_inputs for key in INPUT_KEYS[name])


def synthetic_batch(args, device: torch.device) -> dict[str, torch.Tensor]:
    """Every key any model reads, all full: targets and negatives of `target_tokens`, every photo, review,
    reference text and reference token present; ids past the unknown id 0."""
    generator = torch.Generator().manual_seed(0)
    size = max(args.batch_size, args.gen_batch_size)

    def tokens(*shape):
        return torch.randint(1, args.vocab_size, shape, generator=generator)

    ids = tokens(size, args.target_tokens)
    references = (size, args.references, args.reference_tokens)
    batch = {
        "input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids,
        "negative_input_ids": tokens(size, args.target_tokens), "negative_attention_mask": torch.ones_like(ids),
        "image_features": torch.randn(size, args.images, args.feature_dim, generator=generator),
        "image_mask": torch.ones(size, args.images, dtype=torch.bool),
        "review_features": torch.randn(size, args.reviews, args.feature_dim, generator=generator),
        "review_mask": torch.ones(size, args.reviews, dtype=torch.bool),
        "user_ids": torch.randint(1, args.num_users, (size,), generator=generator),
        "item_ids": torch.randint(1, args.num_items, (size,), generator=generator),
        "user_reference_ids": tokens(*references), "user_reference_mask": torch.ones(references, dtype=torch.long),
        "item_reference_ids": tokens(*references), "item_reference_mask": torch.ones(references, dtype=torch.long),
    }  # fmt: skip
    return {key: value.to(device) for key, value in batch.items()}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def autocast(args, device: torch.device):
    if args.dtype == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def training_step(name: str, batch: dict, args, device: torch.device):
    """A closure running one training step of `name`: forward, the loss its trainer optimises (`PC2LTrainer`: eq. 11
    by `total_loss`; `GeneratorTrainer`: the model's own loss, PETER's context loss included), backward, AdamW."""
    torch.manual_seed(0)
    model = build(name, args).to(device).train()
    # Fused on every device: the Trainer's default optim (adamw_torch_fused) builds it so, CPU included.
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    inputs = {key: batch[key][: args.batch_size] for key in (*TARGET_KEYS, *model_keys(model))}

    def step():
        with autocast(args, device):
            outputs = model(**inputs)
            loss = total_loss(model.config, outputs, inputs)[0] if name in PC2L_NAMES else outputs.loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step.parameters = sum(parameter.numel() for parameter in model.parameters())
    step.tokens = int(inputs["attention_mask"].sum())
    return step


def interleaved_medians(calls: dict, rounds: int, warmup: int, device: torch.device) -> dict[str, float]:
    """Median seconds of each call over `rounds` rounds of one call each, after `warmup` such rounds."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    durations = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            synchronize(device)
            start = time.perf_counter()
            call()
            synchronize(device)
            durations[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in durations.items()}


def bench_training(batch: dict, args, device: torch.device) -> dict:
    steps = {name: training_step(name, batch, args, device) for name in MODEL_NAMES}
    seconds = interleaved_medians(steps, args.steps, args.warmup, device)
    results = {}
    for name, step in steps.items():
        tokens_per_s = step.tokens / seconds[name]
        results[name] = {"step_s": seconds[name], "tokens_per_s": tokens_per_s, "parameters": step.parameters}
    for row in results.values():
        row["tokens_per_s_over_pc2l"] = row["tokens_per_s"] / results["pc2l"]["tokens_per_s"]
    return results


def bench_generation(batch: dict, args, device: torch.device) -> dict:
    """New tokens/s of each model's `generate` (2 beams, `new_tokens` forced, greedy) from its conditioning inputs."""
    decoding = {"num_beams": 2, "max_new_tokens": args.new_tokens, "min_new_tokens": args.new_tokens,
                "do_sample": False, "pad_token_id": BOS}  # fmt: skip
    calls = {}
    for name in MODEL_NAMES:
        if name != "pc2l" and name in PC2L_NAMES:
            continue  # the same network as PC2L at inference
        torch.manual_seed(0)
        model = build(name, args).to(device).eval()
        keys = [key for key in model_keys(model) if key not in NEGATIVE_KEYS]
        inputs = {key: batch[key][: args.gen_batch_size] for key in keys}

        def run(model=model, inputs=inputs):
            with torch.no_grad(), autocast(args, device):
                ids = model.generate(**inputs, **decoding)
            # Forced length: every model writes the same tokens, whatever its random weights would stop at.
            assert ids.shape == (args.gen_batch_size, 1 + args.new_tokens), ids.shape

        calls[name] = run
    seconds = interleaved_medians(calls, args.gen_repeats, 1, device)
    new_tokens = args.gen_batch_size * args.new_tokens
    results = {
        name: {"generate_s": value, "new_tokens_per_s": new_tokens / value} for name, value in seconds.items()
    }
    for row in results.values():
        row["new_tokens_per_s_over_pc2l"] = row["new_tokens_per_s"] / results["pc2l"]["new_tokens_per_s"]
    return results


def markdown(results: dict) -> str:
    training, generation = results["training"], results["generation"]
    shape = results["shape"]
    lines = [
        "| model | input | parameters | training target tokens/s | x PC2L | generation new tokens/s | x PC2L |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in training.items():
        generated = generation.get(name, generation["pc2l"] if name in PC2L_NAMES else None)
        same = " (= pc2l)" if name in PC2L_NAMES and name != "pc2l" else ""
        lines.append(
            f"| {name} | {results['inputs'][name]} | {row['parameters'] / 1e6:.2f} M | {row['tokens_per_s']:.0f} | "
            f"{row['tokens_per_s_over_pc2l']:.2f} | {generated['new_tokens_per_s']:.0f}{same} | "
            f"{generated['new_tokens_per_s_over_pc2l']:.2f}{same} |"
        )
    caption = (f"Training: batch {shape['batch_size']} x {shape['target_tokens']} target tokens, forward + loss + "
               f"backward + AdamW, median of {shape['steps']} interleaved steps. Generation: batch "
               f"{shape['gen_batch_size']}, 2 beams, {shape['new_tokens']} new tokens forced, median of "
               f"{shape['gen_repeats']} calls. Width {shape['width']}, vocabulary {shape['vocab_size']}.")  # fmt: skip
    return "\n".join(lines) + "\n\n" + caption


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default=None, choices=["fp32", "bf16"],
                        help="fp32, or bf16 autocast (default: bf16 cuda, fp32 cpu)")  # fmt: skip
    parser.add_argument(
        "--width",
        type=int,
        default=64,
        help="the world GPT-2's width, which the grid gives PC2L, PEPLER and the baselines' overrides",
    )
    parser.add_argument("--vocab-size", type=int, default=1737, help="the default world's tokenizer's")
    parser.add_argument(
        "--num-users", type=int, default=467, help="user id vocabulary, the unknown id included"
    )
    parser.add_argument(
        "--num-items", type=int, default=172, help="item id vocabulary, the unknown id included"
    )
    parser.add_argument(
        "--feature-dim",
        type=int,
        default=512,
        help="photo and review feature width: CLIP ViT-B/32's (the default world's 64-wide stand-in CLIP: 64)",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="training batch (the grid's)")
    parser.add_argument(
        "--target-tokens", type=int, default=48, help="target tokens per example, BOS/EOS included"
    )
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--reviews", type=int, default=10)
    parser.add_argument("--references", type=int, default=5, help="reference texts per side")
    parser.add_argument("--reference-tokens", type=int, default=20, help="tokens per reference text")
    parser.add_argument("--gen-batch-size", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument(
        "--steps", type=int, default=None, help="timed training rounds (default: 30 cuda, 10 cpu)"
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="warm-up training rounds (default: 5 cuda, 2 cpu)"
    )
    parser.add_argument("--gen-repeats", type=int, default=None,
                        help="timed generation rounds (default: 5 cuda, 3 cpu)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--output", default="bench_baselines.json", help="write the results as JSON here")
    _env.add_noisy_argument(parser)
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    args.dtype = args.dtype or ("bf16" if cuda else "fp32")
    args.steps = args.steps or (30 if cuda else 10)
    args.warmup = args.warmup if args.warmup is not None else (5 if cuda else 2)
    args.gen_repeats = args.gen_repeats or (5 if cuda else 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    environment = _env.start(args.noisy)
    device = torch.device(args.device)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True

    batch = synthetic_batch(args, device)
    training = bench_training(batch, args, device)
    if cuda:
        torch.cuda.empty_cache()
    generation = bench_generation(batch, args, device)
    results = {
        "device": torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "precision": "bf16 autocast" if args.dtype == "bf16" else "fp32",
        "shape": {name: getattr(args, name) for name in SHAPE_ARGUMENTS},
        "inputs": {name: "img+text" if name in PC2L_NAMES else BASELINES[name].input for name in MODEL_NAMES},
        "training": training,
        "generation": generation,
    }
    print(f"\nTable 2 generators on {results['device']} ({results['precision']}, torch {results['torch']}, "
          f"{results['threads']} threads)\n")  # fmt: skip
    print(markdown(results))
    return _env.finish(results, environment, args.output)


if __name__ == "__main__":
    main()
