"""``diffana histograms``: the hard pass of a processor alone, written as JSON.

The JSON file maps every histogram name to its bin edges and contents, flow bins included, as the
AGC's reference histograms (``histos_*_file_per_process.json``) keep them::

    {"4j1b_ttbar": {"edges": [50.0, 70.0, ..., 550.0],        # n + 1 edges
                    "values": [underflow, b_1, ..., b_n, overflow],   # n + 2 sums of weights
                    "variances": [underflow, ..., overflow]},       # n + 2 sums of squared weights
     "4j1b_ttbar_btag_var_0_up": {...}, ...}

Names are sorted; the AGC processor names them as the AGC does (``4j1b_ttbar``,
``4j2b_wjets_pt_scale_up``, ``4j2b_ttbar_btag_var_0_up``, ...).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from diffana.errors import ConfigError, InputFileError
from diffana.processors.base import Processor

__all__ = ["command", "histograms_json", "parse_options", "parse_params", "write_histograms"]


def histograms_json(hists: Mapping[str, Any]) -> dict[str, dict[str, list[float]]]:
    """``{name: {"edges", "values", "variances"}}`` with flow bins, from ``hist.Hist`` or
    :class:`~diffana.pipeline.SoftHistogram` objects (one-dimensional).

    Examples:
        >>> from diffana.pipeline import SoftHistogram
        >>> h = SoftHistogram(np.array([0.0, 2.0, 1.0]), np.array([0.0, 4.0, 1.0]), np.array([0.0, 1.0]))
        >>> histograms_json({"a": h})
        {'a': {'edges': [0.0, 1.0], 'values': [0.0, 2.0, 1.0], 'variances': [0.0, 4.0, 1.0]}}
    """
    out = {}
    for name in sorted(hists):
        h = hists[name]
        if len(h.axes) != 1:
            msg = f"histogram {name!r} has {len(h.axes)} axes; the JSON format holds one-dimensional histograms"
            raise ConfigError(msg)
        edges = h.axes[0].edges if hasattr(h.axes[0], "edges") else np.asarray(h.edges)
        out[name] = {
            "edges": [float(e) for e in edges],
            "values": [float(v) for v in np.asarray(h.values(flow=True))],
            "variances": [float(v) for v in np.asarray(h.variances(flow=True))],
        }
    return out


def write_histograms(path: str | os.PathLike, hists: Mapping[str, Any]) -> Path:
    """Write :func:`histograms_json` of ``hists`` to ``path`` (folders are created)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(histograms_json(hists), indent=1) + "\n")
    except OSError as exc:
        msg = f"cannot write {path}: {exc.strerror or exc}; choose a writable output path with -o"
        raise InputFileError(msg) from exc
    return path


def _split(item: str, flag: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        msg = f"{flag} {item!r} is not NAME=VALUE"
        raise ConfigError(msg)
    return name.strip(), value.strip()


def parse_params(processor: Processor, items: Sequence[str]) -> dict[str, float]:
    """The processor's parameters with ``NAME=VALUE`` overrides; unknown names and values outside
    the bounds (where the skim's preselection would no longer hold) raise :class:`ConfigError`.

    Examples:
        >>> from diffana.processors import get_processor
        >>> parse_params(get_processor("agc_ttbar"), ["jet_pt=35"])["jet_pt"]
        35.0
    """
    params = processor.default_params()
    by_name = {p.name: p for p in processor.parameters}
    valid = ", ".join(
        f"{p.name} in [{p.bounds[0]:g}, {p.bounds[1]:g}]" for p in processor.parameters
    )
    for item in items:
        name, text = _split(item, "--param")
        if name not in by_name:
            msg = f"--param {item!r}: unknown parameter {name!r}; the parameters of {processor.name!r} are {valid}"
            raise ConfigError(msg)
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        low, high = by_name[name].bounds
        if not low <= value <= high:
            msg = f"--param {item!r}: {name} must be a number in [{low:g}, {high:g}] (the skim keeps objects down to the lower bound); the parameters are {valid}"
            raise ConfigError(msg)
        params[name] = value
    return params


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """Processor options ``KEY=VALUE`` (VALUE read as JSON, else as a string).

    Examples:
        >>> parse_options(["max_jets=12", "jet_eta=true", "fill=sigmoid"])
        {'max_jets': 12, 'jet_eta': True, 'fill': 'sigmoid'}
    """
    options = {}
    for item in items:
        key, text = _split(item, "--option")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
    return options


def command(args: argparse.Namespace) -> int:
    """Run ``diffana histograms``: resolve the input, skim, run the hard pass, write the JSON."""
    from rich.console import Console

    from diffana.pipeline.engine import Engine
    from diffana.processors.inputs import resolve_input
    from diffana.processors.registry import get_processor

    processor = get_processor(args.processor, **parse_options(args.option))
    params = parse_params(processor, args.param)
    fileset = resolve_input(
        args.input,
        process=args.process,
        variation=args.variation,
        xsec=args.xsec,
        nevts=args.nevts,
        max_files=args.max_files,
        treename=args.treename,
    )
    console = Console(stderr=True)
    sizes = {} if args.block_size is None else {"block_size": args.block_size}
    with Engine(
        processor,
        fileset,
        cluster=args.cluster,
        chunk_size=args.chunk_size,
        treename=args.treename,
        skip_bad_files=args.skip_bad_files,
        progress=not args.quiet,
        **sizes,
    ) as engine:
        hists = engine.hard_histograms(params)
        report = engine.report
    path = write_histograms(args.output, hists)
    if not args.quiet:
        console.print(report)
    console.print(f"{len(hists)} histograms at {params} written to {path}", highlight=False)
    return 0
