"""A rich progress bar for the skim: chunks done, events per second, elapsed time, dashboard link."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

__all__ = ["SkimProgress"]


class _EventRate(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.fields.get("events", 0) / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:,.0f} events/s", style="progress.data.speed")


class SkimProgress:
    """Context manager that shows the skim's progress; a no-op when ``enabled`` is false.

    Examples:
        >>> with SkimProgress(2, enabled=False) as bar:
        ...     bar.advance(100)
        >>> bar.events
        100
    """

    def __init__(
        self,
        chunks: int,
        *,
        enabled: bool = True,
        dashboard: str | None = None,
        console: Console | None = None,
    ) -> None:
        self.chunks, self.enabled, self.events = chunks, enabled, 0
        description = "skim" + (f" [dim]({dashboard})[/]" if dashboard else "")
        self._progress: Any = None
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("chunks"),
                _EventRate(),
                TimeElapsedColumn(),
                console=console or Console(stderr=True),
                transient=False,
            )
            self._task = self._progress.add_task(description, total=chunks, events=0)

    def advance(self, events: int) -> None:
        self.events += events
        if self._progress is not None:
            self._progress.update(self._task, advance=1, events=self.events)

    def __enter__(self) -> SkimProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
