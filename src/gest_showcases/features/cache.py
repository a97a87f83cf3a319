"""On-disk feature cache: safetensors shards keyed by id, tied to one checkpoint.

Layout of a feature folder (one sub-folder per kind, each written independently)::

    FEATDIR/
      image/manifest.json            {"kind", "checkpoint", "fingerprint", "dim", "normalized"}
      image/shard-00000.safetensors  tensor "embeddings" [n, dim] float32, metadata "ids" (JSON list)
      review/...  sentence/...  vision/...

Each shard is written to a temporary name and renamed, so an interrupted run leaves only whole
shards behind and a rerun skips the ids they hold. The manifest records the checkpoint's name and
a fingerprint of its config and weights: a cache written by another checkpoint is refused instead of
being mixed in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

logger = logging.getLogger(__name__)

FEATURE_KINDS = ("image", "review", "sentence", "vision")
# Config keys that change with where or how a checkpoint was loaded, not with what it computes.
_VOLATILE_CONFIG_KEYS = {"_name_or_path", "transformers_version", "dtype", "torch_dtype", "_commit_hash"}


class CacheMismatchError(ValueError):
    """Raised when a feature folder was written by another checkpoint than the one in use."""


def checkpoint_fingerprint(model: torch.nn.Module, config_dict: dict) -> str:
    """SHA-256 of a model's config and weights, stable across load paths and library versions.

    Hash the weights as loaded (before any cast to fp16/bf16), so the same checkpoint run in another
    precision keeps its fingerprint.
    """
    digest = hashlib.sha256()

    def stable(value):
        if isinstance(value, dict):
            return {k: stable(v) for k, v in value.items() if k not in _VOLATILE_CONFIG_KEYS}
        return value

    digest.update(json.dumps(stable(config_dict), sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass
class FeatureTable:
    """Embeddings of one kind, keyed by id.

    Args:
        ids (`list[str]`): one id per row (`pic_id`, `review_id` or `f"{review_id}#{i}"`).
        embeddings (`torch.FloatTensor` of shape `(len(ids), dim)`): the features, float32.
        checkpoint (`str`): name or path of the model that computed them.
        fingerprint (`str`): hash of that model's config and weights.
        normalized (`bool`): whether rows are L2-normalised (CLIP kinds are; `vision` is not).
    """

    ids: list[str]
    embeddings: torch.Tensor
    checkpoint: str
    fingerprint: str
    normalized: bool
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        if len(self.ids) != self.embeddings.shape[0]:
            raise ValueError(f"{len(self.ids)} ids for {self.embeddings.shape[0]} embedding rows")
        self._index = {key: row for row, key in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def lookup(self, ids: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows for `ids`: (embeddings `[len(ids), dim]`, zeros where missing; found mask `[len(ids)]`)."""
        rows = torch.tensor([self._index.get(key, -1) for key in ids], dtype=torch.long)
        found = rows >= 0
        out = torch.zeros(len(ids), self.embeddings.shape[1], dtype=self.embeddings.dtype)
        out[found] = self.embeddings[rows[found]]
        return out, found


class FeatureCache:
    """Writer side of one kind's folder: checks the manifest, lists done ids, appends shards.

    Args:
        root (`str` or `Path`): the feature folder (FEATDIR).
        kind (`str`): one of `FEATURE_KINDS`.
        checkpoint (`str`): name or path of the model computing the features.
        fingerprint (`str`): `checkpoint_fingerprint` of that model.
        normalized (`bool`): whether the stored rows are L2-normalised.

    Raises:
        CacheMismatchError: the folder already holds features of another checkpoint.
    """

    def __init__(self, root: str | Path, kind: str, checkpoint: str, fingerprint: str, normalized: bool):
        if kind not in FEATURE_KINDS:
            raise ValueError(f"unknown feature kind {kind!r}; expected one of {FEATURE_KINDS}")
        self.directory = Path(root) / kind
        self.kind = kind
        self.directory.mkdir(parents=True, exist_ok=True)
        manifest_path = self.directory / "manifest.json"
        manifest = {
            "kind": kind,
            "checkpoint": checkpoint,
            "fingerprint": fingerprint,
            "normalized": normalized,
        }
        if manifest_path.exists():
            existing = json.loads(manifest_path.read_text())
            if existing["fingerprint"] != fingerprint:
                raise CacheMismatchError(
                    f"{self.directory} holds {kind!r} features of checkpoint {existing['checkpoint']!r} "
                    f"(fingerprint {existing['fingerprint'][:12]}), not of {checkpoint!r} "
                    f"(fingerprint {fingerprint[:12]}); use another output folder or delete it"
                )
        else:
            _atomic_write_text(manifest_path, json.dumps(manifest, indent=2))
        # Leftovers of a run killed while writing: never renamed, so never counted as done.
        for partial in self.directory.glob(".tmp-*"):
            partial.unlink()

    def shard_paths(self) -> list[Path]:
        return sorted(self.directory.glob("shard-*.safetensors"))

    def done_ids(self) -> set[str]:
        done: set[str] = set()
        for path in self.shard_paths():
            done.update(_read_shard_ids(path))
        return done

    def write(self, ids: list[str], embeddings: torch.Tensor) -> Path | None:
        """Append one shard atomically; returns its path (None when `ids` is empty)."""
        if not ids:
            return None
        if len(ids) != embeddings.shape[0]:
            raise ValueError(f"{len(ids)} ids for {embeddings.shape[0]} embedding rows")
        existing = self.shard_paths()
        number = int(existing[-1].stem.split("-")[1]) + 1 if existing else 0
        path = self.directory / f"shard-{number:05d}.safetensors"
        tmp = self.directory / f".tmp-{path.name}"
        tensors = {"embeddings": embeddings.detach().to("cpu", torch.float32).contiguous()}
        save_file(tensors, str(tmp), metadata={"ids": json.dumps(ids)})
        os.replace(tmp, path)
        return path


def _read_shard_ids(path: Path) -> list[str]:
    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["ids"])


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_manifest(root: str | Path, kind: str) -> dict:
    """The manifest of one kind's folder (checkpoint, fingerprint, normalized)."""
    path = Path(root) / kind / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no {kind!r} features in {root} (missing {path}); run `gest-showcases features`"
        )
    return json.loads(path.read_text())


def load_features(root: str | Path, kind: str) -> FeatureTable:
    """Load every shard of one kind into a `FeatureTable` (first occurrence of an id wins).

    Args:
        root (`str` or `Path`): the feature folder written by `gest-showcases features`.
        kind (`str`): `"image"` (CLIP image embeds, key pic_id), `"review"` (CLIP text embeds, key
            review_id), `"sentence"` (key `f"{review_id}#{i}"`) or `"vision"` (generator backbone,
            key pic_id).
    """
    if kind not in FEATURE_KINDS:
        raise ValueError(f"unknown feature kind {kind!r}; expected one of {FEATURE_KINDS}")
    manifest = read_manifest(root, kind)
    ids: list[str] = []
    blocks: list[torch.Tensor] = []
    seen: set[str] = set()
    for path in sorted((Path(root) / kind).glob("shard-*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            shard_ids = json.loads(handle.metadata()["ids"])
            block = handle.get_tensor("embeddings")
        keep = [row for row, key in enumerate(shard_ids) if key not in seen]
        seen.update(shard_ids)
        ids.extend(shard_ids[row] for row in keep)
        blocks.append(block[keep])
    dim = blocks[0].shape[1] if blocks else 0
    embeddings = torch.cat(blocks) if blocks else torch.zeros(0, dim)
    logger.info("loaded %d %s features (dim %d) from %s", len(ids), kind, dim, root)
    return FeatureTable(
        ids=ids,
        embeddings=embeddings,
        checkpoint=manifest["checkpoint"],
        fingerprint=manifest["fingerprint"],
        normalized=manifest["normalized"],
    )
