"""The run report: what was read, what was kept, what was skipped and how long each step took.

Examples:
    >>> r = RunReport(chunks=2, events_read=100, bytes_read=50, file_bytes=1000)
    >>> r.skipped.append(SkippedChunk("tt", "a.root", 0, 10, 10, "OSError: truncated"))
    >>> r.events_lost, r.bytes_read_fraction
    (10, 0.05)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.table import Table

__all__ = ["RunReport", "SkippedChunk", "StepTiming"]


@dataclass(frozen=True)
class SkippedChunk:
    """A chunk (or a whole file, when its entry range is unknown) left out of the run, and why."""

    dataset: str
    file: str
    entry_start: int | None
    entry_stop: int | None
    events: int | None
    error: str

    def __str__(self) -> str:
        where = (
            f"entries [{self.entry_start}, {self.entry_stop})"
            if self.entry_start is not None
            else "whole file"
        )
        lost = "unknown" if self.events is None else str(self.events)
        return f"{self.dataset}: {self.file} {where}, events lost {lost}: {self.error}"


@dataclass(frozen=True)
class StepTiming:
    """One phase-2 pass: which kernel, how long, over how many (unpadded) events."""

    kind: str
    seconds: float
    events: int

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class RunReport:
    """Counters of a run; the engine fills it, ``rich`` prints it."""

    chunks: int = 0
    chunks_done: int = 0
    chunks_from_cache: int = 0
    events_read: int = 0
    events_kept: int = 0
    blocks: int = 0
    block_bytes: int = 0
    branches: tuple[str, ...] = ()
    bytes_read: int = 0
    read_requests: int = 0
    file_bytes: int = 0
    skim_seconds: float = 0.0
    skipped: list[SkippedChunk] = field(default_factory=list)
    steps: list[StepTiming] = field(default_factory=list)
    dashboard: str | None = None

    @property
    def events_lost(self) -> int | None:
        """Events of skipped chunks; ``None`` if a skipped file's entry count is unknown."""
        counts = [s.events for s in self.skipped]
        return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)

    @property
    def bytes_read_fraction(self) -> float | None:
        return self.bytes_read / self.file_bytes if self.file_bytes else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["events_lost"] = self.events_lost
        out["bytes_read_fraction"] = self.bytes_read_fraction
        return out

    def __rich__(self) -> Table:
        table = Table(title="diffana run", show_header=False)
        table.add_column(style="bold")
        table.add_column()
        fraction = self.bytes_read_fraction
        rows = [
            ("chunks", f"{self.chunks_done}/{self.chunks} ({self.chunks_from_cache} from cache)"),
            ("events read / kept", f"{self.events_read:,} / {self.events_kept:,}"),
            ("blocks", f"{self.blocks} ({self.block_bytes / 2**20:.1f} MiB)"),
            ("branches read", f"{len(self.branches)}: {', '.join(self.branches)}"),
            (
                "bytes read",
                f"{self.bytes_read:,} of {self.file_bytes:,}"
                + (f" ({fraction:.2%})" if fraction is not None else ""),
            ),
            ("skim", f"{self.skim_seconds:.2f} s"),
        ]
        rows += [
            (f"step {i} ({s.kind})", f"{s.seconds:.3f} s, {s.events_per_second:,.0f} events/s")
            for i, s in enumerate(self.steps[-5:])
        ]
        if self.dashboard:
            rows.append(("dashboard", self.dashboard))
        lost = self.events_lost
        rows.append(
            ("skipped", f"{len(self.skipped)} (events lost: {'unknown' if lost is None else lost})")
        )
        rows += [("", str(s)) for s in self.skipped]
        for key, value in rows:
            table.add_row(key, value)
        return table
