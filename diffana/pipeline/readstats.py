"""Bytes actually read from ROOT files, counted at uproot's source.

coffea's ``bytesread`` counts the compressed size of the baskets it asked for; what matters for a
facility is what the storage delivered, headers and metadata included. :class:`CountingSource` is
uproot's default :class:`~uproot.source.fsspec.FSSpecSource` with every requested byte range added to
a per-process total. The engine opens files with ``handler=CountingSource`` and collects the totals
from every worker process after the skim.

Examples:
    >>> reset_read_totals()
    >>> read_totals()
    ReadTotals(bytes=0, requests=0)
"""

from __future__ import annotations

import threading
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


_lock = threading.Lock()
_totals = [0, 0]


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


class CountingSource(FSSpecSource):
    """uproot's default source (local files and every fsspec protocol) that counts what it reads."""

    def chunk(self, start: int, stop: int) -> uproot.source.chunk.Chunk:
        _add(stop - start, 1)
        return super().chunk(start, stop)

    def chunks(self, ranges, notifications):  # type: ignore[no-untyped-def]
        _add(sum(stop - start for start, stop in ranges), len(ranges))
        return super().chunks(ranges, notifications)
