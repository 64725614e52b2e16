"""Bytes actually read from ROOT files, counted at uproot's source, and kept few.

coffea's ``bytesread`` counts the compressed size of the baskets it asked for; what matters for a
facility is what the storage delivered, headers and metadata included. :class:`CountingSource` is
uproot's default :class:`~uproot.source.fsspec.FSSpecSource` with every requested byte range added to
a per-process total. The engine opens files with ``handler=CountingSource`` and collects the totals
from every worker process after the skim.

It also keeps a file's metadata reads. A TTree's metadata is read whole: for NanoAOD's ~1000
branches 2-3 MB per opening, a third of what a 100 000-event chunk reads for the AGC's branches,
and uproot opens the file again for every chunk. Single byte ranges (the directory, streamers, the
tree; uproot reads baskets in batches, which are never kept) are kept per process, up to
``METADATA_KEPT`` bytes, keyed by path, range and the file's first bytes (its header, which holds
its UUID and length): a worker reads a tree's metadata once and every later chunk of that file
only its baskets, and a file rewritten at the same path is read afresh.

Examples:
    >>> reset_read_totals()
    >>> read_totals()
    ReadTotals(bytes=0, requests=0)
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import NamedTuple

import uproot
from uproot.source.fsspec import FSSpecSource

__all__ = ["CountingSource", "ReadTotals", "read_totals", "reset_read_totals"]


class ReadTotals(NamedTuple):
    """Bytes and byte-range requests delivered by the sources of one process."""

    bytes: int
    requests: int

    def __add__(self, other: tuple) -> ReadTotals:  # type: ignore[override]
        return ReadTotals(self.bytes + other[0], self.requests + other[1])


#: bytes of metadata ranges a process keeps: a few files' worth (a NanoAOD tree's is 0.3-3 MB), as
#: a worker reads a file's chunks one after another
METADATA_KEPT = 16 * 2**20

_lock = threading.Lock()
_totals = [0, 0]
_kept: OrderedDict[tuple, bytes] = OrderedDict()
_kept_bytes = [0]


def _add(nbytes: int, nrequests: int) -> None:
    with _lock:
        _totals[0] += nbytes
        _totals[1] += nrequests


def reset_read_totals() -> None:
    """Set this process's counters to zero."""
    with _lock:
        _totals[0] = 0
        _totals[1] = 0


def read_totals() -> ReadTotals:
    """Bytes and requests read by :class:`CountingSource` in this process since the last reset."""
    with _lock:
        return ReadTotals(_totals[0], _totals[1])


def _keep(key: tuple, data: bytes) -> None:
    with _lock:
        if key in _kept or len(data) > METADATA_KEPT:
            return
        _kept[key] = data
        _kept_bytes[0] += len(data)
        while _kept_bytes[0] > METADATA_KEPT:
            _kept_bytes[0] -= len(_kept.popitem(last=False)[1])


def _kept_range(key: tuple) -> bytes | None:
    with _lock:
        data = _kept.get(key)
        if data is not None:
            _kept.move_to_end(key)
        return data


class CountingSource(FSSpecSource):
    """uproot's default source (local files and every fsspec protocol) that counts what it reads
    and keeps single-range (metadata) reads for later openings of the same file in this process."""

    _identity: bytes | None = None

    def chunk(self, start: int, stop: int) -> uproot.source.chunk.Chunk:
        key = (self.file_path, self._identity, start, stop)
        if self._identity is not None and (data := _kept_range(key)) is not None:
            return uproot.source.chunk.Chunk.wrap(self, data, start)
        out = super().chunk(start, stop)
        _add(stop - start, 1)
        data = bytes(out.raw_data)
        if start == 0:  # the header uproot reads first: the file's identity for this opening
            self._identity = hashlib.blake2b(data, digest_size=16).digest()
        elif self._identity is not None:
            _keep(key, data)
        return out

    def chunks(self, ranges, notifications):  # type: ignore[no-untyped-def]
        _add(sum(stop - start for start, stop in ranges), len(ranges))
        return super().chunks(ranges, notifications)
