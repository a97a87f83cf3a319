"""H8 (session 13): what do CCL's negatives swap in? Random negatives (the paper's) against negatives mined by trained
generators, classified with the world's ground truth.

For every s2 training example of the world: the subjects its target names, and the subjects its negative names
that the target does not (the swapped-in subjects). A swapped-in subject is *shown* (a photo of this example shows
it: the negative then names a right subject, so CCL pushes the decoder away from a grounded text), *in business*
(another photo of the business shows it), or *elsewhere* (no photo of the business: a hallucination). A negative
that swaps in no subject either drops one of the target's (*subject dropped*: replaced by a chunk that is no
subject's alias), or names exactly the target's subjects: with other alias words (*same subjects, other words*:
mostly another alias of the same subject, "kung pao" for "kung pao chicken", or a second mention of a subject
replaced), or with the same ones (*no subject word changed*: the swapped chunk names no subject). A negative of
the last two classes is no grounding error at all. Per kind of negative, the
share of examples in each class with a 95% bootstrap interval over the examples (1,000 resamples).

    python docs/results/mined_negatives_diagnosis.py EXPERIMENT_DIR FEATURES SEED GENERATOR...
    # e.g. /tmp/s12/demo-world clip 0 generators/none-none generators-mined_entity_likelihood/ccl-pcl

Each GENERATOR (a folder under EXPERIMENT_DIR/FEATURES/seed-SEED) mines with 4 candidates, as H8 trained.
"""

import sys
from pathlib import Path

import numpy as np
from transformers import AutoModel, AutoTokenizer

from gest_showcases.data.build import load_built
from gest_showcases.features import load_features
from gest_showcases.generation.collator import PC2LCollator, PC2LDataset
from gest_showcases.generation.mined_negatives import NegativeMiningCallback, mine_hard_negatives
from gest_showcases.generation.negatives import entity_spans, load_parser, make_hard_negatives
from gest_showcases.generation.training_run import PC2LDataArguments, load_split
from gest_showcases.metrics.synth_truth import SynthTruth

experiment, feature_kind, seed, generators = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4:]
world = experiment / "world"
features = world / "features" if feature_kind == "clip" else next(experiment.glob("oracle-features-*"))
seed_dir = experiment / feature_kind / f"seed-{seed}"
truth = SynthTruth.load(world / "synth" / "ground_truth.json")
tokenizer = AutoTokenizer.from_pretrained(world / "gpt2-tokenizer")

first = AutoModel.from_pretrained(seed_dir / generators[0])
data_args = PC2LDataArguments(dataset=str(world / "dataset"), features=str(features), image_kind="image")
tables = {kind: load_features(str(features), kind) for kind in ("image", "review")}
split = load_split(data_args, "train", first.config, tables)
pics = dict(zip(*[load_built(data_args.dataset, "s2", split="train")[c] for c in ("review_id", "pics")], strict=True))
parser = load_parser()
spans = entity_spans(split["target"], parser)
negatives = {"random (the paper's, seed 0)": make_hard_negatives(split["target"], seed=seed, spans=spans)}
dataset = PC2LDataset(split["target"], split["image_features"], split["review_features"], negatives["random (the paper's, seed 0)"])
collator = PC2LCollator(tokenizer, max_images=first.config.max_images, max_reviews=first.config.max_reviews, with_negatives=True)
located = NegativeMiningCallback(dataset, collator, candidates=4, spans=spans)
for name in generators:
    model = AutoModel.from_pretrained(seed_dir / name)
    mined, summary = mine_hard_negatives(model, dataset, collator, located.slots, located.pool, candidates=4)
    negatives[f"mined by {name}"] = mined
    print(f"{name}: mined {summary['mined']} of {len(mined)}, mean margin {summary['margin']:.2f} nats")

CLASSES = ("shown", "in business", "elsewhere", "subject dropped", "same subjects, other words", "no subject word changed")


def aliases(text):
    """The subject aliases `text` uses, as written (lower case), in order."""
    return sorted(" ".join(match.group().lower().split()) for match in truth.pattern.finditer(text))



def classify(review_id, target, negative):
    _, business = truth.split_review_id(review_id)
    named = set(truth.named_subjects(target))
    swapped_in = set(truth.named_subjects(negative)) - named
    if not swapped_in:
        # A subject replaced by a chunk that names none ("the food"), or the target's very subjects named.
        if named - set(truth.named_subjects(negative)):
            return "subject dropped"
        return "same subjects, other words" if aliases(negative) != aliases(target) else "no subject word changed"
    shown = {truth.pic_subjects.get(p) for p in pics[review_id]}
    # The most harmful class first: one right subject in the negative is enough to push against grounding.
    if swapped_in & shown:
        return "shown"
    return "in business" if swapped_in & truth.business_subjects[business] else "elsewhere"


rng = np.random.default_rng(0)
resamples = rng.integers(len(split["target"]), size=(1000, len(split["target"])))
print(f"\n{len(split['target'])} s2 training examples of {world}, seed {seed}\n")
print("| Negatives | " + " | ".join(CLASSES) + " |")
print("|---|" + "---:|" * len(CLASSES))
examples = {}
for name, texts in negatives.items():
    labels = np.array([classify(r, t, n) for r, t, n in zip(split["review_id"], split["target"], texts, strict=True)])
    cells = []
    for label in CLASSES:
        hits = (labels == label).astype(float)
        low, high = np.percentile(hits[resamples].mean(1), [2.5, 97.5])
        cells.append(f"{100 * hits.mean():.1f} [{100 * low:.1f}, {100 * high:.1f}]")
    print(f"| {name} | " + " | ".join(cells) + " |")
    examples[name] = [(t, n) for t, n, label in zip(split["target"], texts, labels, strict=True) if label == "same subjects, other words"]

print("\nThe first three 'same subjects, other words' negatives of each kind (target, then negative):")
for name, pairs in examples.items():
    print(f"\n{name}:")
    for target, negative in pairs[:3]:
        print(f"  {target}\n  {negative}")
