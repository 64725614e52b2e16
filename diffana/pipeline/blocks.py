"""Column blocks: from a processor's skim output to dense, padded numpy arrays.

The skim runs inside ``dask_awkward.map_partitions``, whose result must be one awkward array, so the
``{systematic: {column: array}}`` mapping a processor returns is packed into a length-1 record array
(:func:`pack_skim`) and unpacked into :class:`ColumnBlock` objects once the partition is real
(:func:`unpack_skim`). The event axis of every block is then padded to a whole number of slabs of
a fixed size (:data:`DEFAULT_SLAB` events) and the kernels run slab by slab, so each kernel is
compiled for ONE shape per worker process, whatever the chunk sizes and selection efficiencies.
:func:`bucket_size` offers a few-shapes padding for processors' own compiled work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import awkward as ak
import numpy as np

from diffana.errors import ConfigError
from diffana.processors.base import Chunk, ColumnBlock

__all__ = [
    "DEFAULT_SLAB",
    "ChunkBlocks",
    "bucket_size",
    "dense_block",
    "pack_skim",
    "pad_block",
    "slab_rows",
    "slabs",
    "unpack_skim",
]

#: events per slab: the one event-axis length the kernels are compiled for
DEFAULT_SLAB = 8192

_MIN_BUCKET = 64


def bucket_size(n: int) -> int:
    """Smallest size ``m * 2**k`` with ``8 <= m <= 15`` (at least 64) that holds ``n`` events.

    Padding costs at most 12.5 % extra work, and block sizes within a factor of two share at most
    eight shapes, so the kernels compile a few times per run, not once per chunk.

    Examples:
        >>> [bucket_size(n) for n in (0, 64, 65, 100_000, 131_072)]
        [64, 64, 72, 106496, 131072]
    """
    if n <= _MIN_BUCKET:
        return _MIN_BUCKET
    shift = max(int(n).bit_length() - 4, 0)
    m = -(-n // (1 << shift))
    return m << shift


def slab_rows(n: int, slab: int) -> int:
    """Rows of a block of ``n`` events padded to whole slabs (at least one).

    Examples:
        >>> [slab_rows(n, 1024) for n in (0, 1, 1024, 1025)]
        [1024, 1024, 1024, 2048]
    """
    return max(1, -(-n // slab)) * slab


def slabs(block: ColumnBlock, slab: int | None) -> list[dict[str, Any]]:
    """The columns of each slab of a block (views, in order); the whole block if ``slab`` is None."""
    n = block.num_events
    if slab is None:
        return [dict(block.columns)]
    return [{k: v[i : i + slab] for k, v in block.columns.items()} for i in range(0, n, slab)]


class ChunkBlocks(NamedTuple):
    """The blocks of one chunk: one per systematic, padded, with the event counts behind them."""

    chunk: Chunk
    blocks: dict[str, ColumnBlock]
    kept: dict[str, int]
    slab: int | None = None

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for b in self.blocks.values() for a in b.columns.values())


def pack_skim(skimmed: Mapping[str, Mapping[str, Any]]) -> ak.Array:
    """One awkward array of length 1 holding every systematic's columns (typetracer-safe)."""
    if "nominal" not in skimmed:
        msg = f"the skim returned systematics {sorted(skimmed)} without 'nominal'; always return a 'nominal' block"
        raise ConfigError(msg)
    fields = {}
    for systematic, columns in skimmed.items():
        if "weight" not in columns:
            msg = f"systematic {systematic!r}: the skim returned no 'weight' column (columns: {sorted(columns)}); add the per-event weights as 'weight'"
            raise ConfigError(msg)
        fields[systematic] = ak.zip(dict(columns), depth_limit=1)[np.newaxis]
    return ak.zip(fields, depth_limit=1)


def dense_block(columns: Mapping[str, Any], *, where: str = "") -> ColumnBlock:
    """Dense numpy :class:`ColumnBlock` from eager awkward or numpy columns."""
    out = {}
    for name, col in columns.items():
        try:
            arr = (
                ak.to_numpy(col, allow_missing=False)
                if isinstance(col, ak.Array)
                else np.asarray(col)
            )
        except (ValueError, TypeError) as exc:
            msg = f"{where}column {name!r} is not dense ({exc}); pad jagged columns with ak.pad_none(x, n, clip=True) and ak.fill_none"
            raise ConfigError(msg) from exc
        if arr.dtype.kind not in "biuf":
            msg = f"{where}column {name!r} has dtype {arr.dtype}; columns must be numeric"
            raise ConfigError(msg)
        out[name] = np.ascontiguousarray(arr)
    if "weight" not in out:
        msg = f"{where}no 'weight' column (columns: {sorted(out)}); add the per-event weights as 'weight'"
        raise ConfigError(msg)
    lengths = {name: (a.shape[0] if a.ndim else None) for name, a in out.items()}
    if None in lengths.values() or len(set(lengths.values())) != 1:
        msg = f"{where}columns must share their first (event) axis, got lengths {lengths}"
        raise ConfigError(msg)
    return ColumnBlock(out)


def pad_block(block: ColumnBlock, size: int) -> ColumnBlock:
    """Pad the event axis to ``size``: the last event repeated (zeros if none), weight 0.

    Examples:
        >>> import numpy as np
        >>> b = pad_block(ColumnBlock({"x": np.array([1.0, 2.0]), "weight": np.ones(2)}), 4)
        >>> b["x"].tolist(), b.weight.tolist()
        ([1.0, 2.0, 2.0, 2.0], [1.0, 1.0, 0.0, 0.0])
    """
    n = block.num_events
    if size < n:
        msg = f"cannot pad a block of {n} events to {size}"
        raise ValueError(msg)
    out = {}
    for name, arr in block.columns.items():
        if name == "weight" or n == 0:
            pad = np.zeros((size - n, *arr.shape[1:]), dtype=arr.dtype)
        else:
            pad = np.repeat(arr[-1:], size - n, axis=0)
        out[name] = np.concatenate([arr, pad], axis=0)
    return ColumnBlock(out)


def unpack_skim(
    packed: ak.Array, chunk: Chunk, *, prepare: Any = None, slab: int | None = DEFAULT_SLAB
) -> ChunkBlocks:
    """The blocks of one chunk, padded to whole slabs, from the packed output of :func:`pack_skim`.

    ``prepare(block, systematic)`` (a processor's :meth:`~Processor.prepare`) runs slab by slab
    after padding, so jit-compiled work in it sees one shape too. ``slab=None``: no padding.
    """
    blocks, kept = {}, {}
    for systematic in packed.fields:
        record = packed[systematic][0]
        columns = {name: record[name] for name in record.fields}
        where = f"{chunk}, systematic {systematic!r}: "
        block = dense_block(columns, where=where)
        kept[systematic] = block.num_events
        if slab is not None:
            block = pad_block(block, slab_rows(block.num_events, slab))
        if prepare is not None:
            parts = []
            for cols in slabs(block, slab):
                size = next(iter(cols.values())).shape[0]
                part = dense_block(
                    prepare(ColumnBlock(cols), systematic).columns, where=f"{where}after prepare: "
                )
                if part.num_events != size:
                    msg = f"{where}prepare changed the number of events from {size} to {part.num_events}"
                    raise ConfigError(msg)
                parts.append(part.columns)
            block = ColumnBlock({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
        blocks[systematic] = block
    return ChunkBlocks(chunk, blocks, kept, slab)
