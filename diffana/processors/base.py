"""The processor contract: what a diffana processor declares, reads and computes.

A processor is stateless and has four parts:

1. :attr:`Processor.parameters`: the differentiable cut parameters (:class:`Parameter`).
2. :meth:`Processor.skim` (phase 1, once per chunk): coffea NanoEvents of one chunk →
   ``{systematic: {column: array}}``. It is traced by dask-awkward first (``events`` is then a
   typetracer and only the branches it touches are read), so it uses awkward operations only:
   jagged collections are made dense with ``ak.pad_none(x, n, clip=True)`` + ``ak.fill_none``. Each
   systematic maps to the columns of one :class:`ColumnBlock`: arrays whose first axis runs over the
   events kept for that systematic and whose other axes are regular, plus a ``"weight"`` column of
   per-event weights. ``"nominal"`` is always present; object-level variations (jet energy scale,
   ...) add one entry each. Dataset-level facts (``process``, ``xsec``, ``nevts``, ...) come from
   ``events.metadata``, which holds the fileset metadata of the dataset plus ``dataset`` and
   ``treename`` (a dataset's files are one collection, as in coffea's dask mode). Events may be dropped by a loose preselection that no parameter
   value within the bounds can undo.
3. :meth:`Processor.prepare` (optional, once per block): dense numpy/JAX work that does not depend
   on the parameters (trijet kinematics, ...), done once after the skim instead of at every step.
4. :meth:`Processor.histograms` (phase 2, every step): a pure JAX function of the parameters and one
   block, returning ``{key: SoftHistogram}``. ``hardness`` is a positive traced scalar for the soft
   pass and the Python float ``math.inf`` for the exact hard twin. The engine compiles it once per
   block *shape*, so nothing sample-specific may be static: keys do not depend on the sample, and
   :meth:`Processor.output_name` attaches sample names outside ``jit``.

The engine pads each block's event axis to whole slabs of a fixed size (``Engine(block_size=...)``),
repeating the last event (zeros for an empty block) with weight 0, and calls ``prepare`` and
``histograms`` slab by slab, so each compiles for one shape. ``histograms`` must therefore weight
every event's contribution by ``block.weight`` and stay finite on padding rows. An optional class
attribute ``schemaclass`` chooses the coffea NanoEvents schema (default ``NanoAODSchema``).
"""

from __future__ import annotations

import abc
import hashlib
import inspect
import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import equinox as eqx
from jaxtyping import Array

from diffana.errors import ConfigError
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

    Examples:
        >>> Parameter("jet_pt", 30.0, (20.0, 60.0), 5.0, unit="GeV").init
        30.0
    """

    name: str
    init: float
    bounds: tuple[float, float]
    scale: float
    unit: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        low, high = self.bounds
        if not (low <= self.init <= high):
            msg = f"parameter {self.name!r}: init {self.init} lies outside its bounds {self.bounds}; move init inside [low, high]"
            raise ConfigError(msg)
        if not (self.scale > 0 and math.isfinite(self.scale)):
            msg = (
                f"parameter {self.name!r}: scale must be a positive finite number, got {self.scale}"
            )
            raise ConfigError(msg)


@dataclass(frozen=True)
class Chunk:
    """One unit of reading: an entry range of one file of one dataset of a fileset.

    ``metadata`` is the dataset's fileset metadata; ``file_id`` identifies the file's content (the
    ROOT file UUID) for the block cache.

    Examples:
        >>> c = Chunk("ttbar__nominal", "a.root", "Events", 0, 1000)
        >>> c.num_entries, str(c)
        (1000, 'ttbar__nominal: a.root:Events entries [0, 1000)')
    """

    dataset: str
    file: str
    treename: str
    entry_start: int
    entry_stop: int
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    file_id: str = field(default="", compare=False)

    @property
    def num_entries(self) -> int:
        return self.entry_stop - self.entry_start

    def __str__(self) -> str:
        return f"{self.dataset}: {self.file}:{self.treename} entries [{self.entry_start}, {self.entry_stop})"


class ColumnBlock(eqx.Module):
    """Dense arrays of the events of one chunk under one object-level systematic variation.

    Every array's first axis runs over events; ``columns["weight"]`` holds the per-event weights.
    Padding events, if any, carry zero weight.

    Examples:
        >>> import numpy as np
        >>> b = ColumnBlock({"ht": np.ones(3), "weight": np.array([1.0, 1.0, 0.0])})
        >>> b.num_events, float(b.weight.sum())
        (3, 2.0)
    """

    columns: dict[str, Array]

    @property
    def weight(self) -> Array:
        return self.columns["weight"]

    @property
    def num_events(self) -> int:
        first = next(iter(self.columns.values()))
        return int(first.shape[0])

    def __getitem__(self, name: str) -> Array:
        return self.columns[name]


class Processor(abc.ABC):
    """Base class of diffana processors (see the module docstring for the full contract)."""

    name: ClassVar[str]
    parameters: ClassVar[tuple[Parameter, ...]]

    @abc.abstractmethod
    def skim(self, events: Any) -> Mapping[str, Mapping[str, Any]]:
        """Dense columns of one chunk, keyed by systematic variation, then by column name.

        ``events`` is a coffea NanoEvents array (a typetracer during dask-awkward's tracing pass).
        Every column is an awkward or numpy array with the events on its first axis and regular
        inner axes; each systematic has a ``"weight"`` column. ``"nominal"`` is always present.
        """

    def prepare(self, block: ColumnBlock, systematic: str) -> ColumnBlock:
        """Add parameter-independent columns to a dense block, once (default: unchanged).

        Runs on the padded numpy block of ``systematic`` right after the skim (before the block
        cache), outside ``jit``; it may use numpy or (jit-compiled) JAX and must keep the event
        axis, padding rows included.
        """
        return block

    @abc.abstractmethod
    def histograms(
        self, params: Mapping[str, Array], block: ColumnBlock, *, hardness: float | Array
    ) -> dict[str, SoftHistogram]:
        """Histograms of one block, pure JAX; keys do not depend on the sample."""

    @abc.abstractmethod
    def output_name(self, key: str, chunk: Chunk, systematic: str) -> str | None:
        """Global name of histogram ``key`` of block ``systematic`` of ``chunk``; ``None`` drops it.

        Runs outside ``jit``; ``chunk.metadata`` has the dataset's fileset metadata.
        """

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    def default_params(self) -> dict[str, float]:
        return {p.name: p.init for p in self.parameters}

    def fingerprint(self) -> str:
        """Hash of the processor's code and state: a cache key that changes when either does."""
        digest = hashlib.sha256()
        for cls in type(self).__mro__:
            if cls in (Processor, abc.ABC, object):
                continue
            try:
                digest.update(inspect.getsource(inspect.getmodule(cls)).encode())
            except (OSError, TypeError):
                digest.update(cls.__qualname__.encode())
        state = {k: v for k, v in sorted(vars(self).items()) if not k.startswith("_diffana")}
        try:
            digest.update(pickle.dumps(state, protocol=4))
        except (pickle.PicklingError, TypeError, AttributeError):
            digest.update(repr(state).encode())
        return digest.hexdigest()[:32]
