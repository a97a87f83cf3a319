"""On-disk feature cache: safetensors shards keyed by id, tied to one checkpoint, checksummed.

Layout of a feature folder (one sub-folder per kind, each written independently)::

    FEATDIR/
      image/manifest.json            {"kind", "checkpoint", "fingerprint", "normalized", "dtype",
                                      "shards": {"shard-00000.safetensors": "<sha256 of its bytes>", ...}}
      image/shard-00000.safetensors  tensor "embeddings" [n, dim] float32, metadata "ids" (JSON list)
      review/...  sentence/...  vision/...

Each shard is written to a temporary name and renamed, then recorded in the manifest with the
SHA-256 of the bytes written, so an interrupted run leaves only whole shards behind and a rerun
skips the ids they hold. The manifest records the checkpoint's name and a fingerprint of its config
and weights: a cache written by another checkpoint is refused instead of being mixed in. It also records the
precision the model ran in (`dtype`: `features --dtype auto` is bf16 on a GPU, float32 on a CPU), which the
fingerprint leaves out on purpose: a run resumed in another precision is refused too, so one kind's rows are
all computed alike, and `train-pc2l` passes the precision on so that `ShowcasePipeline` encodes in it.

Integrity: loading verifies every shard against its checksum and refuses a damaged one (flipped
bytes, a partial copy) by name, and refuses NaN/inf rows by id; a rerun of the extraction recomputes
a damaged or unrecorded shard instead of trusting it. Folders written before checksums existed
still load, with a warning; the next extraction into them records their checksums.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from gest_showcases.errors import InputError
from gest_showcases.files import remove_killed_writers_files, write_text_atomically, writing_atomically
from gest_showcases.numerics import check_finite_rows

logger = logging.getLogger(__name__)

FEATURE_KINDS = ("image", "review", "sentence", "vision")
MANIFEST = "manifest.json"
_MANIFEST_KEYS = ("kind", "checkpoint", "fingerprint", "normalized")
# The precisions a feature model runs in (`features --dtype`), as manifests name them.
FEATURE_DTYPES = ("float32", "bfloat16", "float16")
_SHARD_NAME = re.compile(r"shard-\d{5,}\.safetensors")
# Config keys that change with where or how a checkpoint was loaded, not with what it computes.
_VOLATILE_CONFIG_KEYS = {"_name_or_path", "transformers_version", "dtype", "torch_dtype", "_commit_hash"}


class CacheMismatchError(InputError):
    """Raised when a feature folder was written by another checkpoint than the one in use, or in another precision."""


class CorruptCacheError(InputError):
    """A file of a feature folder that is truncated, altered or not what the cache writes; the message names it."""


def dtype_name(dtype: torch.dtype) -> str:
    """How a manifest and a `PC2LConfig` name a precision: `torch.bfloat16` -> `"bfloat16"`."""
    name = str(dtype).removeprefix("torch.")
    if name not in FEATURE_DTYPES:
        raise ValueError(f"features are computed in one of {', '.join(FEATURE_DTYPES)}, not {name}")
    return name


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
        dtype (`str`, *optional*): the precision the model ran in (`"float32"`, `"bfloat16"`, `"float16"`); None
            for folders written before it was recorded.
    """

    ids: list[str]
    embeddings: torch.Tensor
    checkpoint: str
    fingerprint: str
    normalized: bool
    dtype: str | None = None
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
    """Writer side of one kind's folder: checks the manifest and the shards, lists done ids, appends shards.

    Opening a folder that already holds shards verifies each against the manifest's checksum: a shard
    that fails (altered or truncated bytes), or that the manifest does not record (the run stopped
    between writing it and recording it), is deleted, so its ids are computed again.

    Args:
        root (`str` or `Path`): the feature folder (FEATDIR).
        kind (`str`): one of `FEATURE_KINDS`.
        checkpoint (`str`): name or path of the model computing the features.
        fingerprint (`str`): `checkpoint_fingerprint` of that model.
        normalized (`bool`): whether the stored rows are L2-normalised.
        dtype (`str`, *optional*): the precision the model runs in (`dtype_name`); None when not known.

    Raises:
        CacheMismatchError: the folder already holds features of another checkpoint, or of this one run in another
            precision.
        CorruptCacheError: the folder's manifest is not a valid manifest.
    """

    def __init__(
        self,
        root: str | Path,
        kind: str,
        checkpoint: str,
        fingerprint: str,
        normalized: bool,
        dtype: str | None = None,
    ):
        if kind not in FEATURE_KINDS:
            raise ValueError(f"unknown feature kind {kind!r}; expected one of {FEATURE_KINDS}")
        self.directory = Path(root) / kind
        self.kind = kind
        self.directory.mkdir(parents=True, exist_ok=True)
        self.manifest_path = self.directory / MANIFEST
        if self.manifest_path.exists():
            self.manifest = _read_manifest_file(self.manifest_path)
            if self.manifest["fingerprint"] != fingerprint:
                raise CacheMismatchError(
                    f"{self.directory} holds {kind!r} features of checkpoint {self.manifest['checkpoint']!r} "
                    f"(fingerprint {self.manifest['fingerprint'][:12]}), not of {checkpoint!r} "
                    f"(fingerprint {fingerprint[:12]}); use another output folder or delete it"
                )
            # A folder from before precisions were recorded has none: its rows' precision is unknown, so it
            # is neither checked nor recorded now (that would vouch for rows this run did not compute).
            recorded = self.manifest.get("dtype")
            if recorded is not None and dtype is not None and recorded != dtype:
                raise CacheMismatchError(
                    f"{self.directory} holds {kind!r} features computed in {recorded}, not {dtype}: pass "
                    f"--dtype {recorded} to finish it, or use another output folder"
                )
        else:
            self.manifest = {
                "kind": kind,
                "checkpoint": checkpoint,
                "fingerprint": fingerprint,
                "normalized": normalized,
                "dtype": dtype,
                "shards": {},
            }
            write_text_atomically(self.manifest_path, json.dumps(self.manifest, indent=2))
        # Leftovers of a run killed while writing: never renamed, so never counted as done. Removed here when their
        # writer is gone (`files.remove_killed_writers_files`: never another live rank's); `.tmp-*`: the old name.
        remove_killed_writers_files(self.directory)
        for partial in self.directory.glob(".tmp-*"):
            partial.unlink(missing_ok=True)
        self._verify_shards()

    def _verify_shards(self) -> None:
        """Keep the shards whose bytes match their recorded checksum; delete the others (recomputed later).

        A folder written before checksums existed has no `shards` entry: its shards that parse are
        trusted once and their checksums recorded, those that don't are deleted.
        """
        recorded = self.manifest.get("shards")
        verified: dict[str, str] = {}
        for path in self.shard_paths():
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if recorded is None:
                try:
                    _parse_shard(path, data)
                except CorruptCacheError as error:
                    problem = str(error)
                else:
                    verified[path.name] = digest
                    continue
            elif recorded.get(path.name) == digest:
                verified[path.name] = digest
                continue
            elif path.name in recorded:
                problem = f"{path}: checksum mismatch (the file changed after it was written)"
            else:
                problem = f"{path}: not recorded in {self.manifest_path} (a run stopped while writing it)"
            logger.warning("%s; deleting it, its features are computed again", problem)
            path.unlink()
        if recorded is None:
            logger.warning(
                "%s was written without shard checksums; recorded them for its %d readable shards",
                self.directory,
                len(verified),
            )
        if verified != recorded:
            self.manifest["shards"] = verified
            write_text_atomically(self.manifest_path, json.dumps(self.manifest, indent=2))

    def shard_paths(self) -> list[Path]:
        return sorted(self.directory.glob("shard-*.safetensors"))

    def done_ids(self) -> set[str]:
        done: set[str] = set()
        for name in self.manifest["shards"]:
            done.update(_read_shard_ids(self.directory / name))
        return done

    def start_run(self) -> None:
        """Record that a run with ids to compute started: until `finish_run`, `load_features` refuses the kind, so
        that a run killed midway is not read as the features of the whole dataset (its missing ids would be
        dropped from every example, silently)."""
        self.manifest["complete"] = False
        write_text_atomically(self.manifest_path, json.dumps(self.manifest, indent=2))

    def finish_run(self) -> None:
        """Record that the run computed every id it was given (those that failed are reported, not pending)."""
        if self.manifest.get("complete") is not False:  # already finished, or never started: nothing to record
            return
        self.manifest["complete"] = True
        write_text_atomically(self.manifest_path, json.dumps(self.manifest, indent=2))

    def write(self, ids: list[str], embeddings: torch.Tensor) -> Path | None:
        """Append one shard atomically and record its checksum; returns its path (None when `ids` is empty)."""
        if not ids:
            return None
        if len(ids) != embeddings.shape[0]:
            raise ValueError(f"{len(ids)} ids for {embeddings.shape[0]} embedding rows")
        existing = self.shard_paths()
        number = int(existing[-1].stem.split("-")[1]) + 1 if existing else 0
        path = self.directory / f"shard-{number:05d}.safetensors"
        tensors = {"embeddings": embeddings.detach().to("cpu", torch.float32).contiguous()}
        # Serialised in memory, so the checksum is of the very bytes written (no second read).
        data = save_safetensors(tensors, metadata={"ids": json.dumps(ids)})
        with writing_atomically(path) as temporary:
            temporary.write_bytes(data)
        # Recorded after the rename: a shard on disk but not in the manifest is one a killed run never
        # finished recording, and the next run recomputes it.
        self.manifest["shards"][path.name] = hashlib.sha256(data).hexdigest()
        write_text_atomically(self.manifest_path, json.dumps(self.manifest, indent=2))
        return path


def _read_shard_ids(path: Path) -> list[str]:
    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["ids"])


def _parse_shard(path: Path, data: bytes) -> tuple[list[str], torch.Tensor]:
    """(ids, embeddings `[n, dim]`) of a shard's bytes; `CorruptCacheError` naming `path` when they are not a shard."""
    try:
        # safetensors layout: 8-byte little-endian header length, JSON header (with our metadata), tensors.
        header_length = int.from_bytes(data[:8], "little")
        ids = json.loads(json.loads(data[8 : 8 + header_length])["__metadata__"]["ids"])
        embeddings = load_safetensors(data)["embeddings"]
    # A damaged file breaks the parsers in many ways (SafetensorError, JSONDecodeError, KeyError, ...).
    except Exception as error:  # noqa: BLE001
        raise CorruptCacheError(
            f"{path} is not a readable feature shard ({type(error).__name__}: {error}); "
            "rerun `gest-showcases features` with the same --output to recompute it"
        ) from error
    if not isinstance(ids, list) or embeddings.ndim != 2 or len(ids) != embeddings.shape[0]:
        raise CorruptCacheError(
            f"{path} holds {len(ids) if isinstance(ids, list) else 'no list of'} ids for embeddings of shape "
            f"{tuple(embeddings.shape)}; rerun `gest-showcases features` with the same --output to recompute it"
        )
    # A shard the writer did not make, even with its checksum recorded to match (a hand-made or foreign one).
    if not all(isinstance(key, str) for key in ids) or not embeddings.is_floating_point():
        raise CorruptCacheError(
            f"{path} holds {'ids that are not all strings' if embeddings.is_floating_point() else embeddings.dtype} "
            "where the writer stores string ids and float embeddings; rerun `gest-showcases features` with the same "
            "--output to recompute it"
        )
    return ids, embeddings


def _read_manifest_file(path: Path) -> dict:
    """A manifest's contents, checked; `CorruptCacheError` naming the file when it is not a valid manifest."""
    try:
        manifest = json.loads(path.read_bytes())
    except (ValueError, OSError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        manifest, problem = None, f"is not valid JSON ({error})"
    else:
        problem = "is not a feature cache manifest"
    shards = manifest.get("shards", {}) if isinstance(manifest, dict) else None
    if (
        not isinstance(manifest, dict)
        or any(key not in manifest for key in _MANIFEST_KEYS)
        or not all(isinstance(manifest[key], str) for key in ("checkpoint", "fingerprint"))
        or manifest.get("dtype") not in (None, *FEATURE_DTYPES)
        or not isinstance(shards, dict)
        # Shard names are joined to the folder: only names the writer makes, never a path elsewhere.
        or not all(_SHARD_NAME.fullmatch(name) and isinstance(digest, str) for name, digest in shards.items())
    ):
        raise CorruptCacheError(
            f"{path} {problem}; delete {path.parent} and rerun `gest-showcases features` to recompute it"
        )
    return manifest


def read_manifest(root: str | Path, kind: str) -> dict:
    """The manifest of one kind's folder (checkpoint, fingerprint, normalized, shard checksums)."""
    path = Path(root) / kind / MANIFEST
    if not path.exists():
        raise FileNotFoundError(
            f"no {kind!r} features in {root} (missing {path}); run `gest-showcases features`"
        )
    return _read_manifest_file(path)


def load_features(root: str | Path, kind: str) -> FeatureTable:
    """Load every shard of one kind into a `FeatureTable` (first occurrence of an id wins), verified.

    Args:
        root (`str` or `Path`): the feature folder written by `gest-showcases features`.
        kind (`str`): `"image"` (CLIP image embeds, key pic_id), `"review"` (CLIP text embeds, key
            review_id), `"sentence"` (key `f"{review_id}#{i}"`) or `"vision"` (generator backbone,
            key pic_id).

    Raises:
        CorruptCacheError: naming the file, when the manifest is invalid or a shard is missing,
            truncated or fails its checksum.
        NonFiniteError: naming the ids, when rows hold NaN or inf.
    """
    if kind not in FEATURE_KINDS:
        raise ValueError(f"unknown feature kind {kind!r}; expected one of {FEATURE_KINDS}")
    manifest = read_manifest(root, kind)
    directory = Path(root) / kind
    if manifest.get("complete") is False:  # absent: written before the flag, or by a run that had nothing to do
        raise CorruptCacheError(
            f"{directory}: the `gest-showcases features` run that writes it stopped before it finished; rerun it "
            "with the same --output_dir to finish it (the features it cached are kept)"
        )
    recorded = manifest.get("shards")
    on_disk = [path.name for path in sorted(directory.glob("shard-*.safetensors"))]
    if recorded is None:
        logger.warning(
            "%s was written without shard checksums (an older version): its shards are not verified; rerun "
            "`gest-showcases features` with it as --output to record them",
            directory,
        )
        names = on_disk
    else:
        names = sorted(recorded)
        unrecorded = sorted(set(on_disk) - set(recorded))
        if unrecorded:
            logger.warning(
                "%s: ignoring %d shard(s) its manifest does not record (a run stopped while writing): %s; rerun "
                "`gest-showcases features` with it as --output to finish it",
                directory,
                len(unrecorded),
                ", ".join(unrecorded),
            )
    ids: list[str] = []
    blocks: list[torch.Tensor] = []
    seen: set[str] = set()
    for name in names:
        path = directory / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CorruptCacheError(
                f"{path} is recorded in {directory / MANIFEST} but missing; rerun `gest-showcases features` "
                "with the same --output to recompute it"
            ) from None
        if recorded is not None and hashlib.sha256(data).hexdigest() != recorded[name]:
            raise CorruptCacheError(
                f"{path}: checksum mismatch, the file changed after it was written (disk error, partial copy); "
                "rerun `gest-showcases features` with the same --output to recompute it"
            )
        shard_ids, block = _parse_shard(path, data)
        keep = [row for row, key in enumerate(shard_ids) if key not in seen]
        seen.update(shard_ids)
        ids.extend(shard_ids[row] for row in keep)
        blocks.append(block[keep])
    dim = blocks[0].shape[1] if blocks else 0
    widths = {block.shape[1] for block in blocks}
    if len(widths) > 1:
        raise CorruptCacheError(
            f"{directory}: its shards hold features of different widths {sorted(widths)} (shards of two models?); "
            f"delete {directory} and rerun `gest-showcases features` to re-extract them"
        )
    embeddings = torch.cat(blocks) if blocks else torch.zeros(0, dim)
    check_finite_rows(
        embeddings,
        ids,
        f"{kind} features in {directory}",
        f"delete {directory} and rerun `gest-showcases features` to re-extract them",
    )
    logger.info("loaded %d %s features (dim %d) from %s", len(ids), kind, dim, root)
    return FeatureTable(
        ids=ids,
        embeddings=embeddings,
        checkpoint=manifest["checkpoint"],
        fingerprint=manifest["fingerprint"],
        normalized=manifest["normalized"],
        dtype=manifest.get("dtype"),
    )
