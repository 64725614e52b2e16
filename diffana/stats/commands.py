"""The statistics commands of the ``diffana`` CLI: ``cls``, ``fit``, ``limit`` and ``inspect``.

They mirror pyhf's CLI (``pyhf cls``, ``pyhf fit``, ``pyhf inspect``) and print JSON with pyhf's
key names on stdout:

* ``diffana cls WS`` -> ``{"CLs_obs": x, "CLs_exp": [5 numbers]}`` (the band at -2..+2 sigma)
* ``diffana fit WS`` -> ``{"bestfit": [...], "uncertainty": [...], "labels": [...],
  "twice_nll": x, "converged": true}``
* ``diffana limit WS`` -> ``{"obs": x, "exp": [5 numbers]}`` (95% CL upper limits on the POI)
* ``diffana inspect WS`` -> channels, samples, modifiers, parameters and measurements: rich
  tables on stdout, or pyhf's ``inspect`` JSON with ``--json``.

``WS`` is a pyhf JSON workspace file (``-`` reads stdin). ``--patch FILE`` (repeatable) applies a
JSON Patch to the model spec, as ``pyhf cls -p``; a PatchSet file needs ``--patch-name`` (a patch
name, or its values separated by commas) and is applied to the workspace after the PatchSet's
digests are checked. ``--modifier-setting normsys=code1`` sets interpolation codes as pyhf's
``modifier_settings`` (without it: pyhf's defaults, code4 for normsys and code4p for histosys).
Bad files and options raise :class:`~diffana.errors.ConfigError` or
:class:`~diffana.errors.WorkspaceError` naming the file or option.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from diffana.errors import ConfigError, FitError, WorkspaceError
from diffana.stats._spec_checks import parameter_table
from diffana.stats.patchset import PatchSet, apply_patches
from diffana.stats.workspace import Workspace

__all__ = [
    "cls_result",
    "fit_result",
    "inspect_result",
    "limit_result",
    "load_inputs",
    "modifier_settings",
    "parse_scan",
    "run",
]

_INTERP_TYPES = ("normsys", "histosys")


def _read_json(path: str, what: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read the {what} {path!r}: {exc.strerror or exc}; check the path"
        raise ConfigError(msg) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"the {what} {path!r} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        raise WorkspaceError(msg) from None


def _in_file(path: str, exc: WorkspaceError) -> WorkspaceError:
    err = WorkspaceError(f"{path}: {exc}")
    err.path, err.value = getattr(exc, "path", None), getattr(exc, "value", None)
    return err


def _patch_key(name: str) -> Any:
    """A PatchSet key from the command line: a name, or comma-separated values."""
    if "," not in name:
        return name
    values: list[Any] = []
    for item in name.split(","):
        try:
            number = float(item)
        except ValueError:
            values.append(item.strip())
        else:
            values.append(int(number) if number.is_integer() else number)
    return tuple(values)


def load_inputs(
    workspace: str, patches: Sequence[str] = (), patch_name: str | None = None
) -> tuple[Workspace, list[Any]]:
    """Read a workspace and its patches: PatchSets are applied, JSON patches returned.

    Returns:
        The workspace (with the PatchSet patch applied, if any) and the JSON patches to pass to
        ``Workspace.model(patches=...)``.
    """
    spec = _read_json(workspace, "workspace")
    try:
        ws = Workspace(spec)
    except WorkspaceError as exc:
        raise _in_file(workspace, exc) from None
    json_patches, used_name = [], False
    for path in patches:
        doc = _read_json(path, "patch file")
        if isinstance(doc, Mapping) and "patches" in doc:
            if patch_name is None:
                msg = f"{path} is a PatchSet: choose one of its patches with --patch-name"
                raise ConfigError(msg)
            try:
                ws = PatchSet(doc).apply(ws, _patch_key(patch_name))
            except WorkspaceError as exc:
                raise _in_file(path, exc) from None
            used_name = True
        elif isinstance(doc, list):
            json_patches.append(doc)
        else:
            msg = f"{path} is neither a JSON Patch (a list of operations) nor a PatchSet"
            raise WorkspaceError(msg)
    if patch_name is not None and not used_name:
        msg = f"--patch-name {patch_name!r} given but no --patch file is a PatchSet"
        raise ConfigError(msg)
    return ws, json_patches


def modifier_settings(items: Sequence[str]) -> dict[str, dict[str, str]] | None:
    """``["normsys=code1", ...]`` as pyhf's ``modifier_settings`` (``None`` if empty).

    Examples:
        >>> modifier_settings(["normsys=code1", "histosys=code0"])
        {'normsys': {'interpcode': 'code1'}, 'histosys': {'interpcode': 'code0'}}
    """
    if not items:
        return None
    out: dict[str, dict[str, str]] = {}
    for item in items:
        mtype, sep, code = item.partition("=")
        if not sep or mtype not in _INTERP_TYPES or not code:
            msg = f"--modifier-setting {item!r}: write TYPE=CODE with TYPE in {list(_INTERP_TYPES)}"
            raise ConfigError(msg)
        out[mtype] = {"interpcode": code}
    return out


def parse_scan(text: str | None) -> Any:
    """``LOW:HIGH:N`` as N evenly spaced POI values (``None``: root finding instead).

    Examples:
        >>> parse_scan("0:5:11").tolist()[:3]
        [0.0, 0.5, 1.0]
    """
    if text is None:
        return None
    import numpy as np

    parts = text.split(":")
    try:
        low, high, n = float(parts[0]), float(parts[1]), int(parts[2])
    except (ValueError, IndexError):
        n = 0
    if len(parts) != 3 or n < 2 or not low < high:
        msg = f"--scan {text!r}: write LOW:HIGH:N with LOW < HIGH and N >= 2, e.g. 0:5:41"
        raise ConfigError(msg)
    return np.linspace(low, high, n)


def _model_and_data(ws: Workspace, patches: list[Any], measurement: str | None, settings: Any):
    model = ws.model(measurement_name=measurement, patches=patches, modifier_settings=settings)
    return model, ws.data(model)


def _floats(values: Any) -> list[float]:
    import numpy as np

    return [float(x) for x in np.asarray(values, dtype=float).ravel()]


def cls_result(
    ws: Workspace,
    patches: list[Any],
    *,
    measurement: str | None = None,
    settings: Any = None,
    test_poi: float = 1.0,
    test_stat: str = "qtilde",
    calctype: str = "asymptotics",
    ntoys: int = 2000,
) -> dict[str, Any]:
    """``{"CLs_obs": x, "CLs_exp": [5 numbers]}`` as ``pyhf cls``."""
    model, data = _model_and_data(ws, patches, measurement, settings)
    from diffana.stats import infer

    kwargs: dict[str, Any] = {"test_stat": test_stat, "calctype": calctype}
    if calctype == "toybased":
        kwargs["ntoys"] = ntoys
    obs, expected = infer.hypotest(test_poi, data, model, return_expected_set=True, **kwargs)
    return {"CLs_obs": _floats(obs)[0], "CLs_exp": _floats(expected)}


def fit_result(
    ws: Workspace, patches: list[Any], *, measurement: str | None = None, settings: Any = None
) -> dict[str, Any]:
    """The maximum-likelihood fit: best fit, Hessian uncertainties, labels, twice_nll, status."""
    model, data = _model_and_data(ws, patches, measurement, settings)
    from diffana.stats import infer

    pars, twice_nll, result = infer.mle.fit(
        data, model, return_uncertainties=True, return_fitted_val=True, return_result_obj=True
    )
    pars = _floats(pars)
    return {
        "bestfit": pars[0::2],
        "uncertainty": pars[1::2],
        "labels": list(model.config.par_names),
        "twice_nll": _floats(twice_nll)[0],
        "converged": bool(result.converged),
    }


def limit_result(
    ws: Workspace,
    patches: list[Any],
    *,
    measurement: str | None = None,
    settings: Any = None,
    scan: Any = None,
) -> dict[str, Any]:
    """``{"obs": x, "exp": [5 numbers]}``: 95% CL upper limits on the POI (CLs, q~mu)."""
    model, data = _model_and_data(ws, patches, measurement, settings)
    from diffana.stats import infer

    obs, expected = infer.intervals.upper_limit(data, model, scan)
    return {"obs": _floats(obs)[0], "exp": _floats(expected)}


def inspect_result(ws: Workspace) -> dict[str, Any]:
    """pyhf's ``inspect`` summary, from the spec alone (no model: works without a POI)."""
    table = parameter_table(ws["channels"])
    parameters = sorted((name, info.constraint) for name, info in table.items())
    return {
        "samples": ws.samples,
        "channels": [[channel, ws.channel_nbins[channel]] for channel in ws.channels],
        "modifiers": dict(ws.modifiers),
        "parameters": [list(p) for p in parameters],
        "systematics": [
            [name, constraint, [t for n, t in ws.modifiers if n == name]]
            for name, constraint in parameters
        ],
        "measurements": [
            [m["name"], m["config"]["poi"], [p["name"] for p in m["config"]["parameters"]]]
            for m in ws["measurements"]
        ],
    }


def _print_tables(result: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    summary = Table(title="Summary", show_header=False)
    for key in ("channels", "samples", "parameters", "modifiers"):
        summary.add_row(key, str(len(result[key])))
    console.print(summary)
    channels = Table("channel", "nbins", title="Channels")
    for name, nbins in result["channels"]:
        channels.add_row(name, str(nbins))
    console.print(channels)
    samples = Table("sample", title="Samples")
    for name in result["samples"]:
        samples.add_row(name)
    console.print(samples)
    parameters = Table("parameter", "constraint", "modifiers", title="Parameters")
    for name, constraint, types in result["systematics"]:
        parameters.add_row(name, constraint, ",".join(sorted(set(types))))
    console.print(parameters)
    measurements = Table("measurement", "poi", "parameters", title="Measurements")
    for i, (name, poi, params) in enumerate(result["measurements"]):
        label = f"(*) {name}" if i == 0 else name
        measurements.add_row(label, poi, ",".join(params) or "(none)")
    console.print(measurements)


def run(command: str, args: argparse.Namespace) -> int:
    """Run a CLI command on parsed arguments and print its result (JSON on stdout)."""
    ws, patches = load_inputs(args.workspace, args.patch, args.patch_name)
    if command == "inspect":
        if patches:
            ws = Workspace(apply_patches(ws, patches, what="workspace"))
        result = inspect_result(ws)
        if not args.json:
            _print_tables(result)
            return 0
    else:
        common = {
            "measurement": args.measurement,
            "settings": modifier_settings(args.modifier_setting),
        }
        if command == "cls":
            if args.ntoys < 1:
                msg = f"--ntoys {args.ntoys}: give a positive number of toys"
                raise ConfigError(msg)
            result = cls_result(
                ws,
                patches,
                test_poi=args.test_poi,
                test_stat=args.test_stat,
                calctype=args.calctype,
                ntoys=args.ntoys,
                **common,
            )
        elif command == "fit":
            result = fit_result(ws, patches, **common)
        else:
            result = limit_result(ws, patches, scan=parse_scan(args.scan), **common)
    print(json.dumps(result, indent=4, sort_keys=True))
    if command == "fit" and not result["converged"]:
        msg = "the fit did not converge; the numbers above are not a minimum"
        raise FitError(msg)
    return 0
