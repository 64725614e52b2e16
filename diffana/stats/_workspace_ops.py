"""Workspace operations on plain pyhf specs: combine, prune/rename, sort and build.

These follow pyhf 0.7.6 (``pyhf.workspace``) so that the same operation gives the same
specification; invalid operations raise :class:`~diffana.errors.WorkspaceError` where pyhf raises
``InvalidWorkspaceOperation`` or ``ValueError``.
"""

from __future__ import annotations

import collections
import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from diffana.errors import WorkspaceError
from diffana.stats._schema import SCHEMA_VERSION

__all__ = ["VALID_JOINS", "build_spec", "combine_specs", "prune_and_rename", "sorted_spec"]

VALID_JOINS = ("none", "outer", "left outer", "right outer")


def _join_items(
    join: str, left: Sequence[Any], right: Sequence[Any], deep_merge_key: str | None = None
) -> list[Any]:
    """Join two lists of named dicts by name (pyhf's ``_join_items``)."""
    primary, secondary = (right, left) if join == "right outer" else (left, right)
    joined = copy.deepcopy(list(primary))
    keys = [item["name"] for item in joined]
    for item in secondary:
        if item["name"] in keys and deep_merge_key is not None:
            target = joined[keys.index(item["name"])]
            target[deep_merge_key] = _join_items(
                "left outer", target[deep_merge_key], item[deep_merge_key]
            )
        elif (
            join == "none"
            or (join == "outer" and item not in primary)
            or (join in ("left outer", "right outer") and item["name"] not in keys)
        ):
            joined.append(copy.deepcopy(item))
    return joined


def _fail(msg: str) -> WorkspaceError:
    return WorkspaceError(f"{msg}; pick another join from {list(VALID_JOINS)} or rename first")


def _join_named(join: str, left: Sequence[Any], right: Sequence[Any], what: str, **kw: Any) -> list:
    joined = _join_items(join, left, right, **kw)
    if join == "none":
        common = sorted({x["name"] for x in left} & {x["name"] for x in right})
        if common:
            msg = f"cannot combine workspaces that both have the {what}s {common} with join='none'"
            raise _fail(msg)
    elif join == "outer":
        counts = collections.Counter(x["name"] for x in joined)
        clash = sorted(name for name, count in counts.items() if count > 1)
        if clash:
            msg = f"the {what}s {clash} differ between the two workspaces (join='outer')"
            raise _fail(msg)
    return joined


def _join_measurements(join: str, left: Sequence[Any], right: Sequence[Any]) -> list:
    if join != "outer":
        return _join_named(join, left, right, "measurement")
    by_name: dict[str, list[Any]] = {}
    for meas in _join_items("outer", left, right):
        by_name.setdefault(meas["name"], []).append(meas)
    out = []
    for name, group in by_name.items():
        if len({m["config"]["poi"] for m in group}) > 1:
            pois = sorted({m["config"]["poi"] for m in group})
            msg = f"measurement {name!r} has different POIs {pois} in the two workspaces"
            raise _fail(msg)
        if len(group) == 1:
            out.append(group[0])
            continue
        params = _join_items("outer", *(m["config"]["parameters"] for m in group))
        counts = collections.Counter(p["name"] for p in params)
        clash = sorted(p for p, count in counts.items() if count > 1)
        if clash:
            msg = f"measurement {name!r} configures the parameters {clash} differently"
            raise _fail(msg)
        out.append(
            {"name": name, "config": {"poi": group[0]["config"]["poi"], "parameters": params}}
        )
    return out


def combine_specs(
    left: Mapping[str, Any],
    right: Mapping[str, Any],
    join: str = "none",
    merge_channels: bool = False,
) -> dict[str, Any]:
    """Combine two workspace specs as ``pyhf.Workspace.combine`` does."""
    if join not in VALID_JOINS:
        msg = f"unknown join {join!r}; use one of {list(VALID_JOINS)}"
        raise WorkspaceError(msg)
    if merge_channels and join not in ("outer", "left outer", "right outer"):
        msg = f"merge_channels=True needs join='outer', 'left outer' or 'right outer', not {join!r}"
        raise WorkspaceError(msg)
    if left["version"] != right["version"]:
        msg = f"cannot combine workspaces of versions {left['version']} and {right['version']}"
        raise WorkspaceError(msg)
    merge = {"deep_merge_key": "samples"} if merge_channels else {}
    return {
        "channels": _join_named(join, left["channels"], right["channels"], "channel", **merge),
        "measurements": _join_measurements(join, left["measurements"], right["measurements"]),
        "observations": _join_named(
            join, left["observations"], right["observations"], "observation"
        ),
        "version": left["version"],
    }


def _require_known(names: Sequence[str], known: Sequence[str], what: str) -> None:
    for name in names:
        if name not in known:
            msg = f"{name!r} is not one of the {what}s in this workspace ({sorted(set(known))})"
            raise WorkspaceError(msg)


def prune_and_rename(
    spec: Mapping[str, Any],
    summary: Mapping[str, Sequence[Any]],
    prune: Mapping[str, Sequence[str]],
    rename: Mapping[str, Mapping[str, str]],
) -> dict[str, Any]:
    """Prune and rename channels, samples, modifiers and measurements as pyhf does.

    ``summary`` holds the workspace's ``modifiers`` (name, type pairs), ``samples``, ``channels``
    and ``measurement_names``; ``prune``/``rename`` are keyed by ``modifiers``, ``modifier_types``,
    ``samples``, ``channels`` and ``measurements``.
    """
    p = {
        k: list(prune.get(k) or [])
        for k in ("modifiers", "modifier_types", "samples", "channels", "measurements")
    }
    r = {k: dict(rename.get(k) or {}) for k in ("modifiers", "samples", "channels", "measurements")}
    modifier_names = [name for name, _ in summary["modifiers"]]
    _require_known(p["modifier_types"], [t for _, t in summary["modifiers"]], "modifier type")
    _require_known([*p["modifiers"], *r["modifiers"]], modifier_names, "modifier")
    _require_known([*p["samples"], *r["samples"]], summary["samples"], "sample")
    _require_known([*p["channels"], *r["channels"]], summary["channels"], "channel")
    _require_known(
        [*p["measurements"], *r["measurements"]], summary["measurement_names"], "measurement"
    )

    def keep(mod: Mapping[str, Any]) -> bool:
        return mod["name"] not in p["modifiers"] and mod["type"] not in p["modifier_types"]

    channels = [
        {
            "name": r["channels"].get(ch["name"], ch["name"]),
            "samples": [
                {
                    "name": r["samples"].get(s["name"], s["name"]),
                    "data": s["data"],
                    "modifiers": [
                        dict(m, name=r["modifiers"].get(m["name"], m["name"]))
                        for m in s["modifiers"]
                        if keep(m)
                    ],
                }
                for s in ch["samples"]
                if s["name"] not in p["samples"]
            ],
        }
        for ch in spec["channels"]
        if ch["name"] not in p["channels"]
    ]
    dropped = set(p["modifiers"])
    measurements = [
        {
            "name": r["measurements"].get(m["name"], m["name"]),
            "config": {
                "parameters": [
                    dict(par, name=r["modifiers"].get(par["name"], par["name"]))
                    for par in m["config"]["parameters"]
                    if par["name"] not in dropped
                ],
                "poi": r["modifiers"].get(m["config"]["poi"], m["config"]["poi"]),
            },
        }
        for m in spec["measurements"]
        if m["name"] not in p["measurements"]
    ]
    observations = [
        dict(copy.deepcopy(obs), name=r["channels"].get(obs["name"], obs["name"]))
        for obs in spec["observations"]
        if obs["name"] not in p["channels"]
    ]
    return {
        "channels": channels,
        "measurements": measurements,
        "observations": observations,
        "version": spec["version"],
    }


def sorted_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Sort channels, samples, modifiers, measurements, parameters and observations by name."""
    new = copy.deepcopy(dict(spec))
    new["channels"].sort(key=lambda e: e["name"])
    for channel in new["channels"]:
        channel["samples"].sort(key=lambda e: e["name"])
        for sample in channel["samples"]:
            sample["modifiers"].sort(key=lambda e: (e["name"], e["type"]))
    new["measurements"].sort(key=lambda e: e["name"])
    for measurement in new["measurements"]:
        measurement["config"]["parameters"].sort(key=lambda e: e["name"])
    new["observations"].sort(key=lambda e: e["name"])
    return new


def build_spec(model: Any, data: Sequence[float], name: str) -> dict[str, Any]:
    """The workspace spec of a model and its observed main data (``pyhf.Workspace.build``).

    Where pyhf fails on a parameter with fixed and free components (a shapesys or staterror with
    bins without uncertainty), the ``fixed`` flag is left out so the defaults fix the same ones.
    """
    config = model.config
    bounds = [list(map(float, b)) for b in config.suggested_bounds()]
    inits = [float(x) for x in config.suggested_init()]
    fixed = [bool(x) for x in config.suggested_fixed()]
    parameters = []
    for par in config.par_order:
        sl = config.par_slice(par)
        entry = {"bounds": bounds[sl], "inits": inits[sl], "name": par}
        if len(set(fixed[sl])) == 1:  # mixed (e.g. bins without uncertainty): the defaults
            entry["fixed"] = fixed[sl][0]
        parameters.append(entry)
    values = np.asarray(data, dtype=float).tolist()
    spec = {
        "channels": copy.deepcopy(model.spec["channels"]),
        "version": SCHEMA_VERSION,
        "measurements": [
            {"name": name, "config": {"poi": config.poi_name, "parameters": parameters}}
        ],
        "observations": [
            {"name": ch, "data": values[config.channel_slices[ch]]} for ch in config.channels
        ],
    }
    return spec
