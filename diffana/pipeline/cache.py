"""An optional on-disk cache of column blocks, so that a rerun skips reading ROOT files.

One ``.npz`` file per chunk (numpy's zip of ``.npy`` arrays, loaded with ``allow_pickle=False``: no
pickle ever). The key hashes the file's identity (the ROOT file UUID, or path, size and
modification time when there is none), the tree, the entry range and the processor's fingerprint
(its code and state), so a changed file or processor misses the cache instead of reading stale
blocks. Writes are atomic (a temporary file renamed into place), so concurrent workers and
interrupted runs never leave a half-written entry. The folder must be visible to every worker.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from diffana.pipeline.blocks import ChunkBlocks
from diffana.processors.base import Chunk, ColumnBlock

__all__ = ["BlockCache", "CachedBlocks"]


class CachedBlocks(NamedTuple):
    """A reference to a chunk's blocks on disk: what a worker holds when blocks are kept on disk."""

    chunk: Chunk
    directory: str
    fingerprint: str
    kept: dict[str, int]
    nbytes: int

    def load(self) -> ChunkBlocks:
        return BlockCache(self.directory).load(self.chunk, self.fingerprint)


class BlockCache:
    """Blocks of chunks stored as ``.npz`` files under ``directory``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def key(self, chunk: Chunk, fingerprint: str) -> str:
        identity = chunk.file_id
        if not identity:
            stat = Path(chunk.file).stat()
            identity = f"{Path(chunk.file).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        text = f"{identity}|{chunk.treename}|{chunk.entry_start}|{chunk.entry_stop}|{fingerprint}"
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def path(self, chunk: Chunk, fingerprint: str) -> Path:
        return self.directory / f"{self.key(chunk, fingerprint)}.npz"

    def __contains__(self, item: tuple[Chunk, str]) -> bool:
        return self.path(*item).is_file()

    def load(self, chunk: Chunk, fingerprint: str) -> ChunkBlocks:
        """The blocks stored for ``chunk`` (raises ``FileNotFoundError`` when there are none)."""
        blocks: dict[str, dict[str, np.ndarray]] = {}
        kept: dict[str, int] = {}
        slab = None
        with np.load(self.path(chunk, fingerprint), allow_pickle=False) as data:
            for name in data.files:
                parts = name.split("/")
                if parts[0] == "slab":
                    slab = int(data[name]) or None
                elif parts[0] == "kept":
                    kept[parts[1]] = int(data[name])
                else:
                    blocks.setdefault(parts[1], {})[parts[2]] = data[name]
        return ChunkBlocks(chunk, {s: ColumnBlock(c) for s, c in blocks.items()}, kept, slab)

    def store(self, blocks: ChunkBlocks, fingerprint: str) -> ChunkBlocks:
        """Write ``blocks`` atomically and return them (so it chains after a skim task)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        arrays = {"slab": np.asarray(blocks.slab or 0)}
        for systematic, block in blocks.blocks.items():
            if "/" in systematic or any("/" in c for c in block.columns):
                msg = f"systematic and column names must not contain '/': {systematic!r}, {sorted(block.columns)}"
                raise ValueError(msg)
            arrays[f"kept/{systematic}"] = np.asarray(blocks.kept[systematic])
            arrays.update(
                {f"block/{systematic}/{c}": np.asarray(a) for c, a in block.columns.items()}
            )
        target = self.path(blocks.chunk, fingerprint)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as stream:
                np.savez(stream, **arrays)
            Path(tmp).replace(target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return blocks

    def reference_existing(self, chunk: Chunk, fingerprint: str) -> CachedBlocks:
        """A reference to blocks already stored for ``chunk``."""
        return self.reference(self.load(chunk, fingerprint), fingerprint)

    def reference(self, blocks: ChunkBlocks, fingerprint: str) -> CachedBlocks:
        """Store ``blocks`` (unless stored) and return a reference to them instead of the arrays."""
        if not self.path(blocks.chunk, fingerprint).is_file():
            self.store(blocks, fingerprint)
        return CachedBlocks(
            blocks.chunk, str(self.directory), fingerprint, dict(blocks.kept), blocks.nbytes
        )
