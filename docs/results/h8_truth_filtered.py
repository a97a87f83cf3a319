"""H8 with a ground-truth filter (session 13): an upper bound for subject-aware mining, not a method.

H8's diagnosis (`mined_negatives_diagnosis.py`) found that, with oracle features, 67.4% of a trained CE only's
likeliest swaps name the target's very subjects (51.0% another alias of the same dish). This probe asks what mining could give if it knew the
world's subjects: the shortlist keeps only swaps that change which subjects the text names (by the world's
ground truth, `SynthTruth.named_subjects`), everything else as in H8. The method cannot do this on real data (no
list of dishes and aliases exists there), so a gain here would only say that a learnt alias detector is worth
building.

    python docs/results/h8_truth_filtered.py EXPERIMENT_DIR [gest-showcases experiment options...]
    # e.g. /tmp/s12/demo-world --features clip --num_reviews 1000 --pc2l_epochs 30 --seeds 3 --tables 2 \
    #      --baselines none --variant mined_truth_filtered --generator_args '--contrastive_score likelihood
    #      --likelihood_image_negatives entity --review_contrastive none --mined_negative_candidates 4'

EXPERIMENT_DIR is the experiment's `--output_dir`, whose world (`world/synth/ground_truth.json`) must exist.
"""

import functools
import sys
from pathlib import Path

from gest_showcases import cli
from gest_showcases.commands import train_pc2l
from gest_showcases.generation.mined_negatives import NegativeMiningCallback
from gest_showcases.metrics.synth_truth import SynthTruth

output_dir, options = sys.argv[1], sys.argv[2:]
truth = SynthTruth.load(Path(output_dir) / "world" / "synth" / "ground_truth.json")


tested = [0]


def names_other_subjects(target: str, swap: str) -> bool:
    tested[0] += 1
    return set(truth.named_subjects(swap)) != set(truth.named_subjects(target))


# train-pc2l builds its callback by this name: every generator the experiment trains mines through the filter.
train_pc2l.NegativeMiningCallback = functools.partial(NegativeMiningCallback, keep=names_other_subjects)
status = cli.main(["experiment", "--output_dir", output_dir, *options])
# Zero with cells trained in this call means the patch no longer reaches the callback: the run was plain H8.
print(f"ground-truth filter: {tested[0]} swaps tested in this call (0 when every cell was already done)")
sys.exit(status)
