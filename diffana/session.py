"""What ``diffana run`` and ``diffana scan`` share: dataset, processor, engine, objective.

:func:`open_session` makes (or reuses) the built-in synthetic dataset or reads a fileset, builds
the processor with the workflow's parameter overrides, starts the engine on the workflow's cluster,
skims once, runs the hard pass at the initial parameters and builds the objective from it. A
:class:`Session` is a context manager that closes the engine (and the cluster it started).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from diffana.config import (
    FilesetDataset,
    ProcessorSpec,
    SyntheticDataset,
    Workflow,
)
from diffana.errors import ConfigError, DatasetError
from diffana.processors.base import Parameter, Processor

__all__ = [
    "DATASET_MARKER",
    "Session",
    "ensure_dataset",
    "open_session",
    "resolve_parameters",
    "use_compilation_cache",
]

#: the file beside ``fileset.json`` that records how a synthetic dataset was made
DATASET_MARKER = "diffana-dataset.json"


def _settings(spec: SyntheticDataset) -> dict[str, Any]:
    return {
        "events_per_sample": spec.events_per_sample,
        "files_per_sample": spec.files_per_sample,
        "seed": spec.seed,
    }


def ensure_dataset(spec: Any, console: Console | None = None) -> tuple[dict[str, Any], float]:
    """The fileset of the workflow's dataset (generated first if needed) and the seconds spent.

    A synthetic dataset is reused when its folder holds one made with the same size and seed (the
    folder's ``diffana-dataset.json`` says); a folder holding anything else is an error, never
    overwritten.
    """
    from diffana.datasets.fileset import FILESET_NAME, load_fileset

    start = time.perf_counter()
    if isinstance(spec, FilesetDataset):
        from diffana.processors.inputs import resolve_input

        return resolve_input(spec.path), time.perf_counter() - start
    assert isinstance(spec, SyntheticDataset)
    folder = Path(spec.folder)
    marker = folder / DATASET_MARKER
    if (folder / FILESET_NAME).is_file():
        made = json.loads(marker.read_text()) if marker.is_file() else None
        if made != _settings(spec):
            msg = (
                f"dataset.folder {folder} holds a dataset made with {made or 'unknown settings'}, "
                f"not {_settings(spec)}; remove the folder or choose another dataset.folder"
            )
            raise DatasetError(msg)
        if console is not None:
            console.print(f"dataset: reusing {folder}")
        return load_fileset(folder / FILESET_NAME), time.perf_counter() - start
    from rich.progress import Progress

    from diffana.datasets.generate import generate

    with Progress(console=console or Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"generating the synthetic dataset into {folder}", total=None)
        dataset = generate(
            folder,
            events_per_sample=spec.events_per_sample,
            files_per_sample=spec.files_per_sample,
            seed=spec.seed,
            compression=spec.compression,
            jobs=spec.jobs,
            progress=lambda _: bar.advance(task),
        )
    marker.write_text(json.dumps(_settings(spec), indent=1) + "\n")
    seconds = time.perf_counter() - start
    if console is not None:
        console.print(f"dataset: generated {folder} ({len(dataset.files)} files, {seconds:.1f} s)")
    return load_fileset(dataset.fileset), seconds


def resolve_parameters(
    spec: ProcessorSpec, processor: Processor
) -> tuple[list[Parameter], list[str]]:
    """The processor's parameters with the workflow's overrides, and the names held fixed.

    Raises:
        ConfigError: an unknown parameter name, or bounds outside the processor's own (its skim
            keeps only objects that can pass within them), naming ``processor.parameters.NAME``.
    """
    import difflib

    by_name = {p.name: p for p in processor.parameters}
    for name in spec.parameters:
        if name not in by_name:
            close = difflib.get_close_matches(name, list(by_name), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            msg = f"processor.parameters.{name}: {spec.name!r} has no parameter {name!r}{hint}; its parameters are {list(by_name)}"
            raise ConfigError(msg)
    out, frozen = [], []
    for p in processor.parameters:
        o = spec.parameters.get(p.name)
        if o is None:
            out.append(p)
            continue
        low, high = o.bounds or p.bounds
        if low < p.bounds[0] or high > p.bounds[1]:
            msg = (
                f"processor.parameters.{p.name}.bounds: [{low:g}, {high:g}] reaches outside the "
                f"processor's bounds {list(p.bounds)} (its skim keeps only what passes within "
                "them); choose bounds inside them"
            )
            raise ConfigError(msg)
        init = p.init if o.init is None else o.init
        try:
            out.append(
                Parameter(p.name, init, (low, high), o.scale or p.scale, p.unit, p.description)
            )
        except ConfigError as exc:
            msg = f"processor.parameters.{p.name}: {exc}"
            raise ConfigError(msg) from None
        if not o.optimise:
            frozen.append(p.name)
    return out, frozen


@dataclass
class Session:
    """A skimmed engine, its processor and parameters, the objective and the initial hard pass."""

    workflow: Workflow
    processor: Processor
    parameters: list[Parameter]
    frozen: list[str]
    engine: Any
    objective: Any
    initial_histograms: dict[str, Any]
    console: Console
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def initial_params(self) -> dict[str, float]:
        return {p.name: p.init for p in self.parameters}

    @property
    def free(self) -> list[Parameter]:
        return [p for p in self.parameters if p.name not in self.frozen]

    def hard_value(self, params: dict[str, float], *, value_only: bool = False) -> float:
        """The objective (statistic, not loss) of the hard pass at ``params``."""
        hists = self.engine.evaluate(params, hardness=math.inf)
        return self.objective.value(hists, value_only=value_only)

    def optimise(
        self,
        spec: Any = None,
        *,
        checkpoint: str | Path | None = None,
        resume: bool = False,
        fingerprint: str = "",
        on_step: Callable[[dict[str, Any]], None] | None = None,
    ) -> Any:
        """Run :func:`diffana.pipeline.loop.optimise` on the engine's soft objective.

        ``spec`` defaults to the workflow's optimiser.
        """
        from diffana.pipeline.loop import optimise

        objective, engine = self.objective, self.engine

        def value_and_grad(params: dict[str, float], hardness: float) -> Any:
            return engine.value_and_grad(objective, hardness=hardness)(params)

        return optimise(
            value_and_grad,
            self.parameters,
            spec or self.workflow.optimizer,
            frozen=self.frozen,
            checkpoint=checkpoint,
            resume=resume,
            fingerprint=fingerprint,
            hard_value=lambda p: objective.sign * self.hard_value(p),
            on_step=on_step,
        )


def use_compilation_cache(folder: str | Path) -> Path:
    """Keep compiled JAX programs in ``folder`` (``~`` expanded) for this process and for the
    worker processes it starts later (through the environment they inherit)."""
    import os

    import jax

    path = Path(folder).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(path)
    jax.config.update("jax_compilation_cache_dir", str(path))
    return path


@contextmanager
def open_session(
    workflow: Workflow,
    *,
    cluster: Any = None,
    console: Console | None = None,
    on_dataset: Callable[[float], None] | None = None,
) -> Iterator[Session]:
    """Dataset, processor, engine (skimmed) and objective of ``workflow`` (see the module doc).

    ``cluster`` overrides the workflow's cluster (anything the engine's ``cluster`` accepts).
    """
    from diffana.pipeline.blocks import DEFAULT_SLAB
    from diffana.pipeline.engine import Engine
    from diffana.pipeline.objective import Objective
    from diffana.processors.registry import get_processor

    console = console or Console(stderr=True)
    timings: dict[str, float] = {}
    if workflow.engine.compilation_cache is not None:
        use_compilation_cache(workflow.engine.compilation_cache)
    processor = get_processor(workflow.processor.name, **workflow.processor.options)
    parameters, frozen = resolve_parameters(workflow.processor, processor)
    fileset, timings["dataset"] = ensure_dataset(workflow.dataset, console)
    if on_dataset is not None:
        on_dataset(timings["dataset"])
    e = workflow.engine
    start = time.perf_counter()
    engine = Engine(
        processor,
        fileset,
        cluster=workflow.cluster if cluster is None else cluster,
        chunk_size=e.chunk_size,
        block_size=DEFAULT_SLAB if e.block_size is None else e.block_size,
        treename=e.treename,
        cache=e.cache,
        keep=e.keep,
        skip_bad_files=e.skip_bad_files,
        retries=e.retries,
        mode=e.mode,
        progress=True,
    )
    try:
        timings["cluster"] = time.perf_counter() - start
        if engine.client is not None:
            console.print(f"cluster: {engine.client.dashboard_link or engine.client}")
        start = time.perf_counter()
        report = engine.skim()
        timings["skim"] = time.perf_counter() - start
        console.print(
            f"skim: {report.events_read:,} events read, {report.events_kept:,} kept, "
            f"{report.chunks_done} chunks, {len(report.skipped)} skipped ({timings['skim']:.1f} s)"
        )
        start = time.perf_counter()
        params = {p.name: p.init for p in parameters}
        initial = engine.evaluate(params, hardness=math.inf)
        m = workflow.model
        objective = Objective(
            m.to_cabinetry(),
            initial,
            kind=workflow.objective.kind,
            poi_test=workflow.objective.poi_test,
            pseudodata=m.pseudodata,
        )
        timings["initial_hard"] = time.perf_counter() - start
        yield Session(
            workflow, processor, parameters, frozen, engine, objective, initial, console, timings
        )
    finally:
        engine.close()
