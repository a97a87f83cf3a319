"""Per-example CLIP-Align of CE only, PC2L and GT (on its own photos / on the shown ones); paired bootstrap, seeds pooled.

Session 11's measurement behind docs/experiments.md ("CLIP-Align separates the ground truth ..."), on a finished
`gest-showcases experiment` folder:

    python docs/results/clip_align_own_photos.py RUN CLASSIFIER FEATURES   # FEATURES: clip | oracle

RUN: the experiment's --output_dir (its world/ and FEATURES/seed-{0,1,2}/generations.jsonl); CLASSIFIER: an
explanation classifier folder, e.g. RUN/world/classifier (the paper's [t; v]) or one trained with
`gest-showcases distill --interaction` on the world's annotations.
"""
import sys
from pathlib import Path

import numpy as np
import torch

from gest_showcases.data.build import load_built
from gest_showcases.metrics.generations import group_by_system, read_generations
from gest_showcases.metrics.grounding import (
    clip_align_from_embeddings,
    embed_image_files,
    embed_texts,
    load_classifier_scorer,
    load_clip_checkpoint,
)
from gest_showcases.metrics.text import split_sentences

torch.set_num_threads(1)
RUN, cls, feats = sys.argv[1], sys.argv[2], sys.argv[3]
W = RUN + "/world"
model, processor = load_clip_checkpoint(W + "/clip", "cpu", "clip")
scorer = load_classifier_scorer(cls, "cpu", "classifier")

own = {r["review_id"]: tuple(r["pics"]) for r in load_built(W + "/dataset", "s2")["test"]}
per = {}
for seed in range(3):
    recs = group_by_system(read_generations(f"{RUN}/{feats}/seed-{seed}/generations.jsonl"))
    ce, pc = recs["CE only"], recs["PC2L (CCL + PCL)"]
    rows = {"CE only": [(r.generated, r.pic_ids) for r in ce], "PC2L": [(r.generated, r.pic_ids) for r in pc],
            "GT own photos": [(r.reference, own[r.id]) for r in ce], "GT shown photos": [(r.reference, r.pic_ids) for r in ce]}
    pics = sorted({p for v in rows.values() for _, ids in v for p in ids})
    found, _ = embed_image_files({p: Path(W) / "synth/images" / f"{p}.jpg" for p in pics}, model, processor)
    for name, items in rows.items():
        vals = []
        for text, ids in items:
            img = torch.stack([found[p] for p in ids if p in found])
            sents = split_sentences(text)
            emb = embed_texts(sents, model, processor)
            vals.append(clip_align_from_embeddings([img], [emb], scorer)["clip_align"])
        per.setdefault(name, []).append(np.array(vals))
n = len(per["CE only"][0])
idx = np.random.default_rng(0).integers(0, n, (1000, n))
for name, v in per.items():
    m = np.mean(v, axis=0)
    b = m[idx].mean(1)
    print(f"{name}: {100*m.mean():.1f} [{100*np.percentile(b,2.5):.1f}, {100*np.percentile(b,97.5):.1f}]  per seed {[round(100*x.mean(),1) for x in v]}")
for a, c in (("GT own photos", "CE only"), ("GT own photos", "PC2L"), ("PC2L", "CE only")):
    d = np.mean(per[a], axis=0) - np.mean(per[c], axis=0)
    b = d[idx].mean(1)
    print(f"{a} - {c}: {100*d.mean():+.1f} [{100*np.percentile(b,2.5):+.1f}, {100*np.percentile(b,97.5):+.1f}]")
