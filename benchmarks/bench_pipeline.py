"""Benchmark `ShowcasePipeline` end to end: batched requests against one request at a time, same inputs.

Each request: a business pool of `--pool` JPEG photos (the paper's average is 36), three history reviews
and three history photos; K = 3, 2 beams, exactly `--new_tokens` generated tokens (min = max, so every run
does the same work). Checkpoints are random, saved and loaded through `ShowcasePipeline.from_pretrained`:
`--size paper` is CLIP ViT-B/32, the paper's selector MLPs and a GPT-2-small-sized PC2L (vocabulary:
a 320-token BPE trained here); `--size small` is a hidden-64 version for CPUs. Reports showcases per
second, the batched/unbatched speed-up, and whether the batched picks and texts equal the unbatched ones.

Imports torch, transformers, tokenizers, PIL and `gest_showcases.pipeline` only, so it runs on the GPU machine:

    PYTHONPATH=src python benchmarks/bench_pipeline.py --device cuda --output $OUT/pipeline.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _env
import numpy as np
import torch
from PIL import Image
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

from gest_showcases.features.tiny import tiny_clip_tokenizer
from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration
from gest_showcases.pipeline import ShowcaseInput, ShowcasePipeline
from gest_showcases.selection import DPPImageSelector, DPPSelectorConfig
from gest_showcases.testing import gpt2_tokenizer

CORPUS = ["The ramen broth was rich and the noodles chewy.", "Crispy fries and a juicy burger.",
          "Fresh sushi, the tuna roll was great.", "Thin crust pizza with basil."]  # fmt: skip
SIZES = {
    # clip (hidden, layers, heads, projection, image size), selector hidden, pc2l (width, layers, heads, encoder layers)
    "paper": {"clip": (768, 12, 12, 512, 224), "text_clip": (512, 12, 8), "selector": [512, 512, 256],
              "pc2l": (768, 12, 12, 3)},
    "small": {"clip": (64, 2, 2, 32, 64), "text_clip": (64, 2, 2), "selector": [32], "pc2l": (64, 2, 2, 1)},
}  # fmt: skip


def save_checkpoints(root: Path, size: str) -> dict[str, str]:
    """Random CLIP, selector and PC2L checkpoints (with tokenizers) saved under `root`."""
    spec = SIZES[size]
    hidden, layers, heads, projection, image_size = spec["clip"]
    text_hidden, text_layers, text_heads = spec["text_clip"]
    clip_tokenizer = tiny_clip_tokenizer()
    torch.manual_seed(0)
    clip = CLIPModel(
        CLIPConfig(
            text_config={
                "hidden_size": text_hidden,
                "intermediate_size": 4 * text_hidden,
                "num_hidden_layers": text_layers,
                "num_attention_heads": text_heads,
                "vocab_size": len(clip_tokenizer),
                "bos_token_id": 0,
                "eos_token_id": 1,
            },
            vision_config={
                "hidden_size": hidden,
                "intermediate_size": 4 * hidden,
                "num_hidden_layers": layers,
                "num_attention_heads": heads,
                "image_size": image_size,
                "patch_size": 32,
            },
            projection_dim=projection,
        )  # fmt: skip
    )
    clip.save_pretrained(root / "clip")
    clip_tokenizer.save_pretrained(root / "clip")
    crop = {"height": image_size, "width": image_size}
    CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size=crop).save_pretrained(root / "clip")
    DPPImageSelector(
        DPPSelectorConfig(
            text_dim=projection,
            image_dim=projection,
            user_hidden_sizes=spec["selector"],
            image_hidden_sizes=spec["selector"],
        )  # fmt: skip
    ).save_pretrained(root / "selector")
    tokenizer = gpt2_tokenizer(CORPUS * 4, 320)
    width, decoder_layers, decoder_heads, encoder_layers = spec["pc2l"]
    special = tokenizer.eos_token_id
    decoder = {"n_embd": width, "n_layer": decoder_layers, "n_head": decoder_heads, "vocab_size": len(tokenizer),
               "bos_token_id": special, "eos_token_id": special, "pad_token_id": special}  # fmt: skip
    generator = PC2LForConditionalGeneration(
        PC2LConfig(
            decoder=decoder,
            image_feature_dim=hidden,
            review_feature_dim=projection,
            encoder_layers=encoder_layers,
            encoder_attention_heads=decoder_heads,
            encoder_ffn_dim=4 * width,
        )  # fmt: skip
    )
    generator.save_pretrained(root / "generator")
    tokenizer.save_pretrained(root / "generator")
    return {name: str(root / name) for name in ("clip", "selector", "generator")}


def make_requests(root: Path, count: int, pool: int, seed: int = 0) -> list[ShowcaseInput]:
    """`count` requests over 4 businesses of `pool` random 320x240 JPEGs each, varied histories."""
    rng = np.random.default_rng(seed)
    folder = root / "photos"
    folder.mkdir()
    businesses = []
    for business in range(4):
        paths = []
        for index in range(pool):
            path = folder / f"b{business}_{index}.jpg"
            Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(path, quality=85)
            paths.append(path)
        businesses.append(paths)
    return [
        ShowcaseInput(
            candidates=businesses[request % 4],
            history_texts=[CORPUS[(request + shift) % 4] for shift in range(3)],
            history_images=[businesses[(request + 1) % 4][shift] for shift in range(3)],
            user_id=f"user{request}",
            business_id=f"b{request % 4}",
        )
        for request in range(count)
    ]


def timed(function, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = function()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--size", choices=sorted(SIZES), default=None, help="default: paper on cuda, small on cpu"
    )
    parser.add_argument("--requests", type=int, default=None, help="default: 64 on cuda, 8 on cpu")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--pool", type=int, default=36)
    parser.add_argument("--new_tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default="bench_pipeline.json")
    _env.add_noisy_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    environment = _env.start(args.noisy)
    device = torch.device(args.device)
    size = args.size or ("paper" if device.type == "cuda" else "small")
    count = args.requests or (64 if device.type == "cuda" else 8)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        checkpoints = save_checkpoints(root, size)
        requests = make_requests(root, count, args.pool)
        pipeline = ShowcasePipeline.from_pretrained(**checkpoints, device=device)
        decoding = {"num_beams": 2, "max_new_tokens": args.new_tokens, "min_new_tokens": args.new_tokens}
        pipeline(requests[: args.batch_size], batch_size=args.batch_size, **decoding)  # warm-up
        batched_s, batched = timed(lambda: pipeline(requests, batch_size=args.batch_size, **decoding), device)
        single_s, single = timed(lambda: pipeline(requests, batch_size=1, **decoding), device)
    same_picks = sum(
        [p.id for p in a.photos] == [p.id for p in b.photos] for a, b in zip(batched, single, strict=True)
    )
    same_texts = sum(a.explanation == b.explanation for a, b in zip(batched, single, strict=True))
    result = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({args.threads} threads)",
        "size": size,
        "requests": count,
        "pool": args.pool,
        "batch_size": args.batch_size,
        "new_tokens": args.new_tokens,
        "batched_showcases_per_s": count / batched_s,
        "unbatched_showcases_per_s": count / single_s,
        "speedup": single_s / batched_s,
        "same_picks": f"{same_picks}/{count}",
        "same_texts": f"{same_texts}/{count}",
    }
    print(
        "| device | size | requests | pool | batch | showcases/s batched | one at a time | speed-up | same picks | same texts |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    print(f"| {result['device']} | {size} | {count} | {args.pool} | {args.batch_size} | "
          f"{result['batched_showcases_per_s']:.2f} | {result['unbatched_showcases_per_s']:.2f} | "
          f"{result['speedup']:.2f}x | {result['same_picks']} | {result['same_texts']} |")  # fmt: skip
    _env.finish(result, environment, args.output)


if __name__ == "__main__":
    main()
