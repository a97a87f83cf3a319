"""Oracle features: image and review features built from a Gest-Synth world's ground truth plus noise.

The stand-in CLIP trained inside the demo is weak (it tells dishes apart far less reliably than a real CLIP
would), so with its features a generator that ignores its inputs and one that reads them can look alike.
Oracle features remove that confound: the generator and the selector are judged on inputs that carry exactly
what the world knows, blurred by a chosen amount of noise.

- Each subject `s` (a dish or an aspect; plus one "no subject" entry) gets a fixed random unit vector `e_s`
  in `dim` dimensions.
- A photo's feature is `normalize(e_subject + noise * z)`, `z ~ N(0, I / dim)` so `||noise * z|| ~ noise`.
- A review's feature is `normalize(mean of e_s over the subjects its text names + noise * z)`; a review
  naming no subject is `normalize(z)` (pure noise: it carries nothing the world knows).

Features go into an ordinary feature folder (`image` and `review` kinds, the cache's format and checksums),
so every command that reads features reads these unchanged. The folder's checkpoint name records the noise
and seed, so oracle features of another setting are refused instead of mixed in.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch

from gest_showcases.features.cache import FeatureCache
from gest_showcases.features.inputs import read_config_rows, review_texts
from gest_showcases.metrics.synth_truth import SynthTruth

logger = logging.getLogger(__name__)

NO_SUBJECT = "<none>"


def _noisy_unit_rows(centres: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    dim = centres.shape[1]
    rows = centres + noise * rng.standard_normal(centres.shape) / np.sqrt(dim)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.maximum(norms, 1e-12)).astype(np.float32)


def write_oracle_features(
    truth_path: str | Path,
    dataset: str | Path,
    output_dir: str | Path,
    noise: float = 0.5,
    dim: int = 64,
    seed: int = 0,
    config: str = "s1",
) -> Path:
    """Write oracle `image` and `review` features for every photo and review of `dataset`'s `config`.

    Args:
        truth_path: the world's `ground_truth.json`.
        dataset: the built dataset folder (its rows say which photos and reviews need features).
        output_dir: the feature folder to write (FEATDIR).
        noise: the norm of the Gaussian noise added to each unit subject vector (0: exact truth).
        dim: feature dimension.
        seed: seed of the subject vectors and of the noise.
        config: the dataset config whose rows are covered (`s1` holds every review `s2` has).

    Returns:
        `output_dir` as a `Path`.
    """
    truth = SynthTruth.load(truth_path)
    rng = np.random.default_rng(seed)
    subjects = [*sorted(truth.subject_kinds), NO_SUBJECT]
    index = {name: i for i, name in enumerate(subjects)}
    vectors = rng.standard_normal((len(subjects), dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    rows = read_config_rows(dataset, config)
    checkpoint = f"oracle(noise={noise}, dim={dim}, seed={seed})"
    fingerprint = hashlib.sha256(checkpoint.encode() + Path(truth_path).read_bytes()).hexdigest()
    output_dir = Path(output_dir)

    # Ids only: oracle features never open a photo, so no stored path is followed.
    pic_ids = list(
        dict.fromkeys(
            pic for row in rows for key in ("pics", "candidate_pics", "history_pics") for pic in row[key]
        )
    )
    unknown = [pic for pic in pic_ids if pic not in truth.pic_subjects]
    if unknown:
        raise ValueError(f"{len(unknown)} photos of {dataset} are not in {truth_path} (e.g. {unknown[0]})")
    centres = vectors[[index[truth.pic_subjects[pic] or NO_SUBJECT] for pic in pic_ids]]
    image_rows = _noisy_unit_rows(centres, noise, rng)

    review_ids = []
    texts = review_texts(rows)
    review_centres = np.zeros((len(texts), dim))
    for row, (review_id, text) in enumerate(texts):
        review_ids.append(review_id)
        named = truth.named_subjects(text)
        if named:
            review_centres[row] = vectors[[index[name] for name in named]].mean(0)
    review_rows = _noisy_unit_rows(review_centres, noise, rng)
    # A review that names nothing is pure noise of unit norm, whatever `noise` is.
    silent = ~review_centres.any(axis=1)
    review_rows[silent] = _noisy_unit_rows(np.zeros((int(silent.sum()), dim)), 1.0, rng)

    for kind, ids, matrix in (("image", pic_ids, image_rows), ("review", review_ids, review_rows)):
        cache = FeatureCache(output_dir, kind, checkpoint, fingerprint, normalized=True)
        done = cache.done_ids()
        pending = [i for i, key in enumerate(ids) if key not in done]
        if pending:
            cache.start_run()
            cache.write([ids[i] for i in pending], torch.from_numpy(matrix[pending]))
            cache.finish_run()
        logger.info(
            "oracle %s features: %d written, %d already there", kind, len(pending), len(ids) - len(pending)
        )
    return output_dir


__all__ = ["write_oracle_features"]
