"""The processor contract: what a diffana processor declares, reads and computes.

A processor is stateless. It says which cut parameters it has (:class:`Parameter`), turns the
NanoEvents of one chunk into dense column blocks once (:meth:`Processor.skim`), and computes its
histograms from a block and the parameters as a pure JAX function (:meth:`Processor.histograms`),
soft or hard depending on ``hardness``. The engine jit-compiles ``histograms`` once per block shape,
so nothing that varies between chunks or samples may be static in a block: everything that varies is
an array in ``ColumnBlock.columns``, and sample names are attached afterwards by
:meth:`Processor.output_name`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import equinox as eqx
from jaxtyping import Array

from diffana.pipeline.histogram import SoftHistogram

__all__ = ["Chunk", "ColumnBlock", "Parameter", "Processor"]


@dataclass(frozen=True)
class Parameter:
    """A differentiable cut parameter.

    Attributes:
        name: identifier used in workflow files, histories and ``--param NAME=VALUE``.
        init: starting value (for the AGC processor, the AGC's own cut).
        bounds: the optimiser keeps the value inside ``[low, high]``.
        scale: the natural size of the variable in its units (GeV for a pT cut); the optimiser steps
            in units of ``scale`` and the sigmoid width of the cut is proportional to it.
        unit: unit for tables and plots, e.g. ``"GeV"``.
        description: one line for tables and plots.
    """

    name: str
    init: float
    bounds: tuple[float, float]
    scale: float
    unit: str = ""
    description: str = ""


@dataclass(frozen=True)
class Chunk:
    """One unit of reading: an entry range of one file of one dataset of a fileset."""

    dataset: str
    file: str
    treename: str
    entry_start: int
    entry_stop: int
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def num_entries(self) -> int:
        return self.entry_stop - self.entry_start

    def __str__(self) -> str:
        return f"{self.dataset}: {self.file}:{self.treename} entries [{self.entry_start}, {self.entry_stop})"


class ColumnBlock(eqx.Module):
    """Dense arrays of the events of one chunk under one object-level systematic variation.

    Every array's first axis runs over events. Padding events, if any, carry zero weight.
    """

    columns: dict[str, Array]

    @property
    def num_events(self) -> int:
        first = next(iter(self.columns.values()))
        return int(first.shape[0])


class Processor(abc.ABC):
    """Base class of diffana processors."""

    name: ClassVar[str]
    parameters: ClassVar[tuple[Parameter, ...]]

    @abc.abstractmethod
    def skim(self, events: Any, chunk: Chunk) -> dict[str, ColumnBlock]:
        """Turn the NanoEvents of one chunk into column blocks, keyed by systematic variation.

        The key ``"nominal"`` is always present; object-level variations (jet energy scale, ...)
        add one block each.
        """

    @abc.abstractmethod
    def histograms(
        self, params: Mapping[str, Array], block: ColumnBlock, *, hardness: float
    ) -> dict[str, SoftHistogram]:
        """Histograms of one block, pure JAX; keys do not depend on the sample."""

    @abc.abstractmethod
    def output_name(self, key: str, chunk: Chunk, systematic: str) -> str | None:
        """Global name of histogram ``key`` of a block of ``chunk``; ``None`` drops it."""

    def default_params(self) -> dict[str, float]:
        return {p.name: p.init for p in self.parameters}
