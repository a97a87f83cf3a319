"""Session 9's research script for issue 12 item 5 (kept so docs/experiments.md's CNN figures can be rerun; not part
of the package): the stand-in CLIP's training (`clip_training.train`, unchanged) with its ViT image tower swapped
for a small CNN (4 x conv3x3-BN-ReLU-maxpool, widths 16-128, global average pool), `pair_with` review or sentences;
then the dish / subject nearest-centroid probe (`metrics.clip_quality.subject_probe`) on the test photos. The CNN
checkpoint it saves is not loadable as a CLIP (its vision weights do not fit CLIPModel): the probe runs in memory.

    WORLD=W python docs/results/item5_cnn_tower.py OUT sentences 32 10 0   # OUT.json: the probes

W is a folder with `synth/` and `dataset/` as docs/experiments.md builds them (the experiment's world)."""
import json
import os
import sys
import time

import torch
from torch import nn
from transformers import CLIPImageProcessor
from transformers.modeling_outputs import BaseModelOutputWithPooling

import gest_showcases.features.clip_training as ct
from gest_showcases.data.images import open_image
from gest_showcases.features.inputs import IMAGE_COLUMNS, dataset_image_paths, read_config_rows
from gest_showcases.features.loading import ImagePreprocessing
from gest_showcases.metrics.clip_quality import subject_probe
from gest_showcases.metrics.synth_truth import SynthTruth

out, pair_with, size, epochs, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
W = os.environ.get("WORLD", "/tmp/h5/world")
WIDTHS = (16, 32, 64, 128)


class CNNTower(nn.Module):
    """4 x (conv3x3-BN-ReLU-maxpool2), widths 16-128, global average pool: session 8's true-label CNN."""

    def __init__(self):
        super().__init__()
        layers, cin = [], 3
        for w in WIDTHS:
            layers += [nn.Conv2d(cin, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2)]
            cin = w
        self.body = nn.Sequential(*layers)

    def forward(self, pixel_values=None, **kwargs):
        pooled = self.body(pixel_values).mean(dim=(2, 3))
        return BaseModelOutputWithPooling(last_hidden_state=None, pooler_output=pooled)


captured = {}
original_build = ct.build_clip


def build_with_cnn(tokenizer, image_size, patch_size, hidden_size, num_layers, num_heads, projection_dim):
    model = original_build(tokenizer, image_size, patch_size, hidden_size, num_layers, num_heads, projection_dim)
    model.vision_model = CNNTower()
    model.visual_projection = nn.Linear(WIDTHS[-1], projection_dim, bias=False)
    captured["model"] = model
    return model


ct.build_clip = build_with_cnn
start = time.time()
summary = ct.train(f"{W}/dataset", out, images=f"{W}/synth/images", image_size=size, patch_size=size, hidden_size=64,
                   pair_with=pair_with, num_train_epochs=epochs, batch_size=64, seed=seed, num_threads=1)
model = captured["model"].eval()
truth = SynthTruth.load(f"{W}/synth/ground_truth.json")
rows = [r for r in read_config_rows(f"{W}/dataset", "s1", columns=["review_text", *IMAGE_COLUMNS])
        if r["split"] in ("train", "test")]
files = dataset_image_paths(f"{W}/dataset", rows, f"{W}/synth/images")
prep = ImagePreprocessing.from_image_processor(
    CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}))
pics = list(dict.fromkeys(p for r in rows for p in r["pics"]))
pixels = torch.stack([prep.pil_to_uint8(open_image(files[p])) for p in pics])
with torch.inference_mode():
    embeds = torch.cat([model.get_image_features(pixel_values=prep.normalize(b)).pooler_output
                        for b in pixels.split(256)])
embeds = dict(zip(pics, torch.nn.functional.normalize(embeds, dim=-1), strict=True))
result = {}
for name, kinds in (("subject_probe", ("dish", "aspect")), ("dish_probe", ("dish",))):
    lab = {s: [(p, truth.pic_subjects[p]) for r in rows if r["split"] == s for p in r["pics"]
               if truth.subject_kinds.get(truth.pic_subjects.get(p)) in kinds] for s in ("train", "test")}
    result[name] = subject_probe(torch.stack([embeds[p] for p, _ in lab["train"]]), [s for _, s in lab["train"]],
                                 torch.stack([embeds[p] for p, _ in lab["test"]]), [s for _, s in lab["test"]])
result |= {"pair_with": pair_with, "image_size": size, "epochs": epochs, "seed": seed,
           "seconds": time.time() - start, "epoch_losses": summary["epoch_losses"]}
with open(f"{out}.json", "w") as file:
    json.dump(result, file, indent=1)
print(json.dumps({k: (v["nearest_centroid"] if isinstance(v, dict) else v) for k, v in result.items()}))
