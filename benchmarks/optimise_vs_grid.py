"""Gradient optimisation vs a hard grid scan of the same cuts, on the same skimmed blocks.

Both search the AGC workflow's parameters for the best hard objective (sigma of ttbar_norm by
default):

- **gradient**: ``diffana run``'s loop (Adam on the soft objective, forward-mode Jacobians on the
  workers), then, as ``diffana run`` does with the workflow's ``optimizer.polish``, hard lines
  through its end point, one parameter at a time (``diffana.scan.polish_session``); the hard
  objective at the loop's own end point is reported too (``objective_gradient_only_hard``);
- **grid**: ``diffana scan``: ``--grid`` points per parameter (bounds included), one hard pass and
  one objective evaluation per point.

They share one session (dataset, cluster, skim, the hard pass at the AGC's cuts). Compute is the
wall time each method spends after that, compilation included (the gradient compiles the JVP
kernels and the objective's gradient; the grid the value-only objective), and, as a count that does
not depend on the machine's load, the events evaluated by the kernels (passes x events).

Run: ``python benchmarks/optimise_vs_grid.py [--events N] [--grid N] [--steps N] [--cluster C]``.
The last line printed is a JSON object with ``objective_gradient_hard``, ``objective_grid_best``,
``relative_difference`` (gradient vs grid, positive when the gradient is worse) and
``compute_fraction`` (gradient wall time / grid wall time).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from rich.console import Console


def main() -> None:
    from diffana.config import load_workflow
    from diffana.scan import polish_session, scan_session
    from diffana.session import open_session

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflow", default=None, help="default: workflows/agc_ttbar.yaml")
    parser.add_argument("--events", type=int, default=None, help="events_per_sample override")
    parser.add_argument("--data", default=None, help="dataset folder override")
    parser.add_argument("--grid", type=int, default=10, help="grid points per parameter")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps override")
    parser.add_argument("--cluster", default="local", help="inprocess, local or tcp://...")
    args = parser.parse_args()

    workflow = load_workflow(args.workflow)
    dataset = {}
    if args.events is not None:
        dataset["events_per_sample"] = args.events
    if args.data is not None:
        dataset["folder"] = Path(args.data)
    workflow = workflow.model_copy(update={"dataset": workflow.dataset.model_copy(update=dataset)})
    spec = workflow.optimizer
    if args.steps is not None:
        spec = spec.model_copy(update={"steps": args.steps})
    console = Console(stderr=True)
    with open_session(workflow, cluster=args.cluster, console=console) as session:
        objective, report = session.objective, session.engine.report
        initial = objective.value(session.initial_histograms)

        def passes_since(n: int) -> tuple[int, int]:
            steps = report.steps[n:]
            return len(steps), sum(s.events for s in steps)

        n0, start = len(report.steps), time.perf_counter()
        result = session.optimise(
            spec,
            on_step=lambda r: console.print(
                f"step {r['step'] + 1}/{spec.steps}: {objective.sign * r['loss']:.5g} {r['params']}"
            ),
        )
        if spec.polish is not None:
            polish = polish_session(session, result.params, spec.polish)
            gradient_only, gradient_hard = polish["start_objective"], polish["objective"]
            gradient_params = polish["params"]
        else:
            gradient_only = gradient_hard = session.hard_value(result.params, value_only=True)
            gradient_params = result.params
        gradient_seconds = time.perf_counter() - start
        gradient_passes, gradient_events = passes_since(n0)

        n0 = len(report.steps)
        grid = scan_session(session, args.grid)
        grid_passes, grid_events = passes_since(n0)
    grid_best = grid["best_objective"]
    grid_seconds = grid["compute"]["wall_seconds"]
    relative = objective.sign * (gradient_hard - grid_best) / abs(grid_best)
    doc = {
        "objective": objective.kind,
        "parameters": grid["parameters"],
        "events_per_sample": workflow.dataset.events_per_sample,
        "objective_initial_hard": initial,
        "objective_gradient_hard": gradient_hard,
        "gradient_params": gradient_params,
        "objective_gradient_only_hard": gradient_only,
        "gradient_only_params": result.params,
        "relative_difference_gradient_only": objective.sign
        * (gradient_only - grid_best)
        / abs(grid_best),
        "gradient_steps": len(result.history),
        "objective_grid_best": grid_best,
        "grid_best_params": grid["best_params"],
        "grid_points": len(grid["points"]),
        "grid_invalid_points": grid["invalid_points"],
        "relative_difference": relative,
        "gradient_at_least_as_good_within_1_percent": relative <= 0.01,
        "gradient_seconds": gradient_seconds,
        "grid_seconds": grid_seconds,
        "compute_fraction": gradient_seconds / grid_seconds,
        "gradient_passes": gradient_passes,
        "grid_passes": grid_passes,
        "events_fraction": gradient_events / grid_events if grid_events else math.nan,
    }
    console.print(
        f"initial {initial:.5g}; gradient {gradient_only:.5g} at {result.params}, with the hard"
        f" lines {gradient_hard:.5g} at {gradient_params}, in "
        f"{gradient_seconds:.0f} s; grid {grid_best:.5g} at {grid['best_params']} in "
        f"{grid_seconds:.0f} s ({len(grid['points'])} points)"
    )
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
