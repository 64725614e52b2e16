"""``diffana run``: the main job. Skim once, optimise the cuts, re-evaluate hard, write it all.

1. make or reuse the dataset, start the cluster, skim (:func:`diffana.session.open_session`);
2. the hard pass at the initial parameters (the AGC's cuts) and the objective built from it;
3. the optimisation loop (:func:`diffana.pipeline.loop.optimise`) on the soft objective, one line
   per step, a checkpoint after every step (``--resume`` continues from it);
4. with ``optimizer.polish``, hard lines through the gradient's end point, one parameter at a time
   (:func:`diffana.scan.polish_session`), whose best point is the final one;
5. the hard pass at the final parameters; for both points the histograms, the pyhf workspace, the
   fit of the pseudo-data and the plots (:mod:`diffana.report`, :mod:`diffana.plotting`);
6. ``OUTPUT/result.json`` and a summary table.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from diffana.config import Workflow, load_workflow
from diffana.errors import ConfigError
from diffana.session import Session, open_session

__all__ = ["CHECKPOINT", "RESULT", "command", "parse_cluster", "run_workflow"]

RESULT = "result.json"
CHECKPOINT = "checkpoint.json"


def parse_cluster(value: str | None) -> Any:
    """``--cluster``: ``inprocess``, ``local``, ``tcp://host:port`` or a YAML file with a cluster
    mapping (``kind: slurm``, ...) or a ``cluster:`` section; ``None`` keeps the workflow's."""
    if value is None:
        return None
    from diffana.pipeline.cluster import parse_cluster_config

    path = Path(value)
    if path.suffix in (".yaml", ".yml"):
        import yaml

        if not path.is_file():
            msg = f"--cluster {value}: no such file; give inprocess, local, tcp://host:port or a YAML file"
            raise ConfigError(msg)
        data = yaml.safe_load(path.read_text()) or {}
        data = data.get("cluster", data) if isinstance(data, Mapping) else data
        try:
            return parse_cluster_config(data)
        except ConfigError as exc:
            msg = f"--cluster {value}: {exc}"
            raise ConfigError(msg) from None
    return parse_cluster_config(value)


def _fingerprint(session: Session) -> str:
    from diffana.pipeline.loop import fingerprint_of

    wf = session.workflow
    parts = wf.model_dump(mode="json", exclude={"outputs", "cluster", "scan", "name"})
    parts["optimizer"].pop("steps", None)  # more steps may be asked for when resuming
    return fingerprint_of(parts, session.processor.fingerprint())


def _step_line(session: Session, total: int, started: list[float]) -> Any:
    units = {p.name: p.unit for p in session.parameters}
    sign, kind = session.objective.sign, session.objective.kind

    def show(record: dict[str, Any]) -> None:
        now = time.perf_counter()
        seconds, started[0] = now - started[0], now
        values = "  ".join(
            f"{n} {v:.4g}{' ' + units[n] if units[n] else ''}" for n, v in record["params"].items()
        )
        hard = f"  hard {sign * record['hard_loss']:.5g}" if "hard_loss" in record else ""
        session.console.print(
            f"step {record['step'] + 1:>3}/{total}  hardness {record['hardness']:.3g}  "
            f"{kind} {sign * record['loss']:.5g}{hard}  {values}  ({seconds:.1f} s)",
            highlight=False,
        )

    return show


def _history(records: list[dict[str, Any]], sign: float) -> list[dict[str, Any]]:
    out = []
    for r in records:
        entry = {**r, "objective": sign * r["loss"]}
        if "hard_loss" in r:
            entry["hard_objective"] = sign * r["hard_loss"]
        out.append(entry)
    return out


def _engine_compute(session: Session) -> dict[str, Any]:
    steps = session.engine.report.steps
    by_kind: dict[str, dict[str, float]] = {}
    for s in steps:
        k = by_kind.setdefault(s.kind, {"passes": 0, "seconds": 0.0, "events": 0})
        k["passes"] += 1
        k["seconds"] += s.seconds
        k["events"] += s.events
    return by_kind


def run_workflow(
    workflow: Workflow,
    *,
    output: str | Path | None = None,
    resume: bool = False,
    cluster: Any = None,
    console: Console | None = None,
    workflow_path: str | None = None,
) -> dict[str, Any]:
    """Run the main job of ``workflow`` (see the module docstring); returns ``result.json``'s dict."""
    from diffana.plotting import plot_polish, plot_soft_vs_hard, plot_trajectories, save
    from diffana.report import hard_evaluation, hard_result, write_hard
    from diffana.scan import polish_session

    start = time.perf_counter()
    console = console or Console(stderr=True)
    out = Path(output if output is not None else workflow.outputs.folder)
    out.mkdir(parents=True, exist_ok=True)
    formats = list(workflow.outputs.plot_formats)
    # Everything JAX compiles here is compiled in this thread. (A background thread compiling the
    # objective once crashed the test process; the cause was later found to be the test process's
    # count of memory mappings, not the thread, but one thread is simpler to reason about.)
    with open_session(workflow, cluster=cluster, console=console) as session:
        objective, engine, init = session.objective, session.engine, session.initial_params
        loop_start = time.perf_counter()
        result = session.optimise(
            checkpoint=out / CHECKPOINT,
            resume=resume,
            fingerprint=_fingerprint(session),
            on_step=_step_line(session, workflow.optimizer.steps, [loop_start]),
        )
        loop_seconds = time.perf_counter() - loop_start
        polish, final_params = None, result.params
        if workflow.optimizer.polish is not None:
            polish = polish_session(session, result.params, workflow.optimizer.polish)
            final_params = polish["params"]
            console.print(
                f"hard lines: {objective.kind} {polish['start_objective']:.5g} at the gradient's"
                f" point, {polish['objective']:.5g} at {final_params}"
            )
        hard_start = time.perf_counter()
        final = hard_evaluation(engine, objective, final_params)
        initial = hard_result(objective, init, session.initial_histograms)
        hard_seconds = time.perf_counter() - hard_start
        compute = _engine_compute(session)
    paths: dict[str, Any] = {}
    for tag, evaluation in (("initial", initial), ("final", final)):
        written = write_hard(
            evaluation, objective, out, tag, plots=workflow.outputs.plots, formats=formats
        )
        paths.update({f"{key}_{tag}": value for key, value in written.items()})
    history = _history(result.history, objective.sign)
    gradient_hard = final.objective if polish is None else polish["start_objective"]
    hard_points = {0: initial.objective, history[-1]["step"]: gradient_hard}
    if workflow.outputs.plots:
        units = {p.name: p.unit for p in session.parameters}
        fig = plot_trajectories(history, objective=objective.kind, units=units, hard=hard_points)
        paths["trajectories"] = [str(p) for p in save(fig, out / "trajectories", formats)]
        fig = plot_soft_vs_hard(history, objective=objective.kind, hard=hard_points)
        paths["soft_vs_hard"] = [str(p) for p in save(fig, out / "soft_vs_hard", formats)]
        if polish is not None:
            fig = plot_polish(
                polish["lines"], polish["params"], objective=objective.kind, units=units
            )
            paths["polish"] = [str(p) for p in save(fig, out / "polish", formats)]
    paths["checkpoint"] = str(out / CHECKPOINT)
    report = engine.report
    doc = {
        "workflow": workflow_path or workflow.name,
        "objective": objective.kind,
        "poi": objective.config.poi,
        "initial_params": initial.params,
        "final_params": final.params,
        "objective_initial_hard": initial.objective,
        "objective_final_hard": final.objective,
        "objective_initial_soft": history[0]["objective"],
        "objective_final_soft": history[-1]["objective"],
        "gradient_params": result.params,
        "objective_gradient_hard": gradient_hard,
        "polish": polish,
        "objective_history": [h["objective"] for h in history],
        "history": history,
        "stopped": result.stopped,
        "steps": len(history),
        "fit": final.fit,
        "fit_initial": initial.fit,
        "model_notes": {"initial": initial.notes, "final": final.notes},
        "paths": paths,
        "events": {"read": report.events_read, "kept": report.events_kept},
        "compute": compute,
        "timings": {
            **{k: round(v, 3) for k, v in session.timings.items()},
            "optimisation": round(loop_seconds, 3),
            "polish": round(polish["compute"]["wall_seconds"], 3) if polish else 0.0,
            "hard_evaluation": round(hard_seconds, 3),
            "total": round(time.perf_counter() - start, 3),
        },
    }
    (out / RESULT).write_text(json.dumps(doc, indent=1, default=float) + "\n")
    doc["paths"]["result"] = str(out / RESULT)
    return doc


def summary_table(doc: Mapping[str, Any]) -> Table:
    """The rich table ``diffana run`` prints at the end."""
    table = Table(title=f"diffana run: {doc['workflow']}", show_lines=False)
    for column in ("", "initial (AGC cuts)", "final (optimised)"):
        table.add_column(column, justify="right" if column else "left")
    for name, value in doc["initial_params"].items():
        table.add_row(name, f"{value:.4g}", f"{doc['final_params'][name]:.4g}")
    table.add_row(
        f"{doc['objective']} (hard)",
        f"{doc['objective_initial_hard']:.5g}",
        f"{doc['objective_final_hard']:.5g}",
    )
    if doc.get("polish"):
        table.add_row(
            f"{doc['objective']} (hard) at the gradient's end",
            "",
            f"{doc['objective_gradient_hard']:.5g}",
        )
    table.add_row(
        f"{doc['objective']} (soft)",
        f"{doc['objective_initial_soft']:.5g}",
        f"{doc['objective_final_soft']:.5g}",
    )

    def fitted(fit: Mapping[str, Any]) -> str:
        if "error" in fit:
            return "fit failed"
        return f"{fit[fit['poi']]:.4f} ± {fit['uncertainty']:.4f}"

    table.add_row(f"fit {doc['poi']}", fitted(doc["fit_initial"]), fitted(doc["fit"]))
    t = doc["timings"]
    table.caption = (
        f"{doc['steps']} steps ({doc['stopped']}); {doc['events']['read']:,} events read, "
        f"{doc['events']['kept']:,} kept; total {t['total']:.1f} s (dataset {t['dataset']:.1f} s, "
        f"skim {t['skim']:.1f} s, optimisation {t['optimisation']:.1f} s, hard lines"
        f" {t['polish']:.1f} s); "
        f"results in {Path(doc['paths']['result']).parent}"
    )
    return table


def command(args: argparse.Namespace) -> int:
    """The ``diffana run`` command line."""
    workflow = load_workflow(args.workflow)
    console = Console(stderr=True)
    doc = run_workflow(
        workflow,
        output=args.output,
        resume=args.resume,
        cluster=parse_cluster(args.cluster),
        console=console,
        workflow_path=str(args.workflow or "workflows/agc_ttbar.yaml"),
    )
    Console().print(summary_table(doc))
    for tag, notes in doc["model_notes"].items():
        for note in notes:
            console.print(f"[yellow]{tag} model: {note}[/]")
    if not math.isfinite(doc["objective_final_hard"]):
        console.print("[yellow]the hard objective at the final parameters is not finite[/]")
    return 0
