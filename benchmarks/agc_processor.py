"""Benchmark of the AGC ttbar processor (issue 6, item 1): what one optimisation step costs.

On the built-in synthetic dataset, in one process (one core), after the skim:

1. the hard pass (the AGC's exact selection, the peer every soft pass is compared with);
2. one soft pass (``value``), one forward Jacobian in the three cuts (``jvp``, what the
   optimisation loop uses for few parameters) and one reverse pass (``vjp``), each timed after a
   first, compiling call; rates are in block events (events kept by the skim, every jet-pT
   variation counted) per second;
3. the same soft passes with ``trijet_choice="soft"`` instead of the default hard choice of the
   4j2b trijet, and with the float64 kernel instead of float32.

Run ``python benchmarks/agc_processor.py`` (``--quick`` for a small run, ``--data DIR`` to reuse a
dataset). The last line printed is a JSON object with the figures.
"""

from __future__ import annotations

import os

# One XLA thread in this process too, as in the Dask workers (diffana.pipeline.cluster.WORKER_ENV),
# so that the single-process comparisons are one core against one core.
os.environ.setdefault("NPROC", "1")

import argparse
import json
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import jax.numpy as jnp

from diffana.datasets.fileset import load_fileset
from diffana.datasets.generate import generate
from diffana.pipeline.engine import Engine
from diffana.processors.agc_ttbar import AGCTtbarProcessor, ClippedObjectsWarning

PARAMS = {"lepton_pt": 30.0, "jet_pt": 30.0, "btag": 0.5}


def _objective(hists):
    return sum(jnp.sum(h.sumw[..., 4:26]) for h in hists.values())


def _timed(fn, repeats: int) -> tuple[float, float]:
    """(first call, best of ``repeats`` later calls) in seconds."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return first, best


def measure(processor: AGCTtbarProcessor, fileset: dict, repeats: int, hard: bool) -> dict:
    out: dict[str, float] = {}
    with Engine(processor, fileset, chunk_size=100_000) as engine:
        start = time.perf_counter()
        report = engine.skim()
        out["skim_s"] = time.perf_counter() - start
        out["events_read"], out["block_events"] = report.events_read, report.events_kept
        out["block_mib"] = report.block_bytes / 2**20
        if hard:
            out["hard_first_s"], out["hard_s"] = _timed(
                lambda: engine.hard_histograms(PARAMS), repeats
            )
        out["value_first_s"], out["value_s"] = _timed(
            lambda: engine.evaluate(PARAMS, hardness=3.0), repeats
        )
        kept = engine.report.steps[-1].events  # block events, every jet-pT variation counted
        out["block_events_all_variations"] = kept
        for mode in ("forward", "reverse"):
            engine.mode = mode
            step = engine.value_and_grad(_objective, hardness=3.0)
            kind = "jvp" if mode == "forward" else "vjp"
            out[f"{kind}_first_s"], out[f"{kind}_s"] = _timed(
                lambda step=step: step(PARAMS), repeats
            )
        for kind in ("value", "jvp", "vjp"):
            out[f"{kind}_mhz"] = kept / out[f"{kind}_s"] / 1e6
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small dataset, one repeat")
    parser.add_argument("--data", default=None, help="a dataset folder written by diffana generate")
    parser.add_argument("--events", type=int, default=100_000, help="--events-per-sample")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ClippedObjectsWarning)
    repeats = 1 if args.quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data
        if folder is None:
            events = 10_000 if args.quick else args.events
            folder = generate(Path(tmp) / "data", events_per_sample=events, jobs=2).outdir
        fileset = load_fileset(folder)
        results: dict[str, object] = {}
        runs = {
            "": (AGCTtbarProcessor(), True),
            "soft_trijet_": (AGCTtbarProcessor(trijet_choice="soft"), False),
            "float64_": (AGCTtbarProcessor(dtype="float64"), False),
        }
        for prefix, (processor, hard) in runs.items():
            figures = measure(processor, fileset, repeats, hard)
            print(
                f"{prefix or 'default_'}: " + ", ".join(f"{k}={v:.4g}" for k, v in figures.items())
            )
            results.update({prefix + k: v for k, v in figures.items()})
    for kind in ("value", "jvp", "vjp"):
        results[f"{kind}_vs_hard"] = results[f"{kind}_s"] / results["hard_s"]
        results[f"soft_trijet_{kind}_slowdown"] = (
            results[f"soft_trijet_{kind}_s"] / results[f"{kind}_s"]
        )
        results[f"float64_{kind}_slowdown"] = results[f"float64_{kind}_s"] / results[f"{kind}_s"]
    results["cpu"] = f"{os.cpu_count()} cores, one process, shared with other jobs while measured"
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
