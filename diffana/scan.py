"""``diffana scan``: the same objective evaluated hard on a grid of the optimised parameters.

The brute-force competitor of the gradient: ``grid`` points per optimised parameter (bounds
included, evenly spaced), every point a hard pass over the skimmed blocks and the objective of its
histograms. It reports the best point and its compute: wall time, number of passes over the data
and events evaluated, so the gradient optimisation of ``diffana run`` can be compared with it
(``benchmarks/optimise_vs_grid.py``).

:func:`polish_session` is the same hard evaluation along lines: from the gradient's end point, one
parameter at a time over its range. The hard objective is a step function of the cuts whose
statistical scatter (the modelling variations are independent samples) makes local minima closer
together than the soft cuts' width, which the gradient cannot tell apart; a line per parameter costs
``points`` hard passes, where the grid costs ``points`` to the power of the parameters.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from diffana.config import PolishSpec, Workflow, load_workflow
from diffana.session import Session, open_session

__all__ = [
    "SCAN_RESULT",
    "command",
    "grid_points",
    "polish_session",
    "scan_session",
    "scan_workflow",
]

SCAN_RESULT = "scan.json"


def _axes(session: Session, points: int) -> dict[str, np.ndarray]:
    """``points`` evenly spaced values of each optimised parameter's range, bounds included."""
    return {p.name: np.linspace(p.bounds[0], p.bounds[1], points) for p in session.free}


def _compute(session: Session, steps_before: int, start: float) -> dict[str, Any]:
    """Wall time since ``start`` and the engine passes made since ``steps_before`` of them."""
    steps = session.engine.report.steps[steps_before:]
    return {
        "wall_seconds": time.perf_counter() - start,
        "passes": len(steps),
        "kernel_seconds": sum(s.seconds for s in steps),
        "events_evaluated": sum(s.events for s in steps),
    }


def grid_points(session: Session, grid: int) -> list[dict[str, float]]:
    """Every point of the grid: ``grid`` values per optimised parameter, the others at init.

    Examples:
        >>> from types import SimpleNamespace
        >>> from diffana.processors.base import Parameter
        >>> s = SimpleNamespace(free=[Parameter("a", 1.0, (0.0, 2.0), 1.0)],
        ...                     initial_params={"a": 1.0, "b": 5.0})
        >>> grid_points(s, 3)
        [{'a': 0.0, 'b': 5.0}, {'a': 1.0, 'b': 5.0}, {'a': 2.0, 'b': 5.0}]
    """
    axes = _axes(session, grid)
    return [
        {**session.initial_params, **dict(zip(axes, map(float, values), strict=True))}
        for values in itertools.product(*axes.values())
    ]


def scan_session(session: Session, grid: int, *, progress: bool = True) -> dict[str, Any]:
    """Evaluate the objective hard at every grid point; the best point and the compute spent."""
    points = grid_points(session, grid)
    objective = session.objective
    steps_before = len(session.engine.report.steps)
    start = time.perf_counter()
    values = []
    with Progress(console=session.console, disable=not progress, transient=True) as bar:
        task = bar.add_task(f"hard grid of {len(points)} points", total=len(points))
        for params in points:
            values.append(session.hard_value(params, value_only=True))
            bar.advance(task)
    compute = _compute(session, steps_before, start)
    finite = [i for i, v in enumerate(values) if math.isfinite(v)]
    if not finite:
        best = None
    else:
        key = (lambda i: values[i]) if objective.sign > 0 else (lambda i: -values[i])
        best = min(finite, key=key)
    return {
        "objective": objective.kind,
        "grid": grid,
        "parameters": [p.name for p in session.free],
        "points": [{"params": p, "objective": v} for p, v in zip(points, values, strict=True)],
        "invalid_points": len(points) - len(finite),
        "best_params": None if best is None else points[best],
        "best_objective": None if best is None else values[best],
        "compute": compute,
    }


def polish_session(
    session: Session, params: dict[str, float], spec: PolishSpec, *, progress: bool = True
) -> dict[str, Any]:
    """Coordinate search on the hard objective from ``params`` (see :class:`PolishSpec`).

    Returns the point reached and its objective, the start and its objective, every line (the
    parameter, the point it went through, the values tried and their objective; non-finite where
    the model is invalid) and the compute spent. A point is evaluated once however often the lines
    cross it; a move needs a strictly better objective.
    """
    objective = session.objective
    axes = _axes(session, spec.points)
    names = list(axes)
    seen: dict[tuple[float, ...], float] = {}
    steps_before = len(session.engine.report.steps)
    start = time.perf_counter()

    def value(point: dict[str, float]) -> float:
        key = tuple(point[n] for n in names)
        if key not in seen:
            seen[key] = session.hard_value(point, value_only=True)
        return seen[key]

    def loss(statistic: float) -> float:
        return objective.sign * statistic if math.isfinite(statistic) else math.inf

    current = {**params}
    start_objective = value(current)
    best = loss(start_objective)
    lines = []
    with Progress(console=session.console, disable=not progress, transient=True) as bar:
        task = bar.add_task("hard lines through the gradient's point", total=None)
        for sweep in range(spec.sweeps):
            moved = False
            for name in names:
                values = sorted({*map(float, axes[name]), current[name]})
                objectives = [value({**current, name: v}) for v in values]
                bar.advance(task, len(values))
                lines.append(
                    {
                        "parameter": name,
                        "sweep": sweep,
                        "through": dict(current),
                        "values": values,
                        "objective": objectives,
                    }
                )
                losses = [loss(o) for o in objectives]
                i = int(np.argmin(losses))
                if losses[i] < best:
                    current, best, moved = {**current, name: values[i]}, losses[i], True
            if not moved:
                break
    return {
        "params": current,
        "objective": value(current),
        "start_params": dict(params),
        "start_objective": start_objective,
        "lines": lines,
        "compute": _compute(session, steps_before, start),
    }


def scan_workflow(
    workflow: Workflow,
    *,
    grid: int | None = None,
    output: str | Path | None = None,
    cluster: Any = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Open a session for ``workflow``, scan, write ``OUTPUT/scan.json``; returns its dict."""
    console = console or Console(stderr=True)
    out = Path(output if output is not None else workflow.outputs.folder)
    out.mkdir(parents=True, exist_ok=True)
    with open_session(workflow, cluster=cluster, console=console) as session:
        doc = scan_session(session, grid or workflow.scan.grid)
        doc["initial_params"] = session.initial_params
        doc["objective_initial_hard"] = session.objective.value(
            session.initial_histograms, value_only=True
        )
    (out / SCAN_RESULT).write_text(json.dumps(doc, indent=1) + "\n")
    doc["path"] = str(out / SCAN_RESULT)
    return doc


def _table(doc: dict[str, Any]) -> Table:
    table = Table(
        title=f"diffana scan: {doc['objective']} on a grid of {doc['grid']} per parameter"
    )
    table.add_column("")
    table.add_column("initial", justify="right")
    table.add_column("grid optimum", justify="right")
    best = doc["best_params"] or {}
    for name, value in doc["initial_params"].items():
        table.add_row(name, f"{value:.4g}", f"{best.get(name, math.nan):.4g}")
    best_value = doc["best_objective"]
    table.add_row(
        doc["objective"],
        f"{doc['objective_initial_hard']:.5g}",
        "none valid" if best_value is None else f"{best_value:.5g}",
    )
    c = doc["compute"]
    table.caption = (
        f"{len(doc['points'])} points ({doc['invalid_points']} without a valid model), "
        f"{c['passes']} hard passes, {c['events_evaluated']:,} events, {c['wall_seconds']:.1f} s; "
        f"{doc['path']}"
    )
    return table


def command(args: argparse.Namespace) -> int:
    """The ``diffana scan`` command line."""
    from diffana.run import parse_cluster

    workflow = load_workflow(args.workflow)
    doc = scan_workflow(
        workflow, grid=args.grid, output=args.output, cluster=parse_cluster(args.cluster)
    )
    Console().print(_table(doc))
    return 0
