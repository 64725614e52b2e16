"""Export a pyhf workspace to HS3 JSON (the HEP Statistics Serialization Standard), version 0.2.

HS3 (https://hep-statistics-serialization-standard.github.io) describes a HistFactory channel as a
``histfactory_dist`` distribution. :func:`to_hs3` writes one per channel of a measurement, with
the binned observed ``data``, a ``likelihood`` pairing them, the parameter ``domains`` (the
model's suggested bounds), ``parameter_points`` (its suggested inits; fixed parameters are
``const``) and an ``analyses`` entry naming the POI. ``metadata.hs3_version`` is ``"0.2"``.

pyhf's modifiers map onto HS3's as ROOT's HS3 reader expects (ROOT 6.30+, also pyhs3):

========== =====================================================================================
pyhf       HS3
========== =====================================================================================
normfactor ``normfactor`` with ``parameter``
normsys    ``normsys``, ``constraint: "Gauss"``, ``data: {hi, lo}``
histosys   ``histosys``, ``constraint: "Gauss"``, ``data: {hi: {contents}, lo: {contents}}``
           (absolute variation templates)
shapefactor ``shapefactor`` with one parameter per bin in ``parameters``
shapesys   ``shapesys``, ``constraint: "Poisson"``, ``data.vals`` = the Poisson aux count
           tau = (nominal / uncertainty)^2 of each bin (0 for a bin without yield or uncertainty,
           whose parameter is then constant, as pyhf fixes it)
staterror  ``staterror``, ``constraint: "Gauss"``; the per-sample uncertainties go to the sample's
           ``data.errors``, from which the relative uncertainty sqrt(sum errors^2)/sum contents of
           each bin is recomputed (the Barlow-Beeston-lite combination pyhf does)
lumi       ``normfactor`` on ``lumi`` with ``constraint_name`` naming a ``gaussian_dist``
           ``lumi_constraint`` (``x``: the constant global observable ``nom_lumi``, ``mean``:
           ``lumi``, ``sigma``: the measurement's lumi sigma)
========== =====================================================================================

A scalar parameter keeps its pyhf name; component ``i`` of a per-bin parameter ``name`` is
``name_bin_i`` (pyhf: ``name[i]``). The interpolation codes are HS3's defaults (pyhf's code4 for
normsys, code4p for histosys, as in ROOT) unless ``modifier_settings`` choose others, which are
written as the modifier's ``interpolation``: normsys code1 ``log``, histosys code0 ``lin`` and
code2 ``parabolic`` (HS3's parabolic extrapolates continuously beyond |alpha| = 1, where pyhf
0.7.6's code2 does not; the two agree within [-1, 1]). Measurements that override the auxdata or constraint widths of parameters other
than lumi cannot be written (HS3's HistFactory constraints are unit Gaussians around 0 and
Poissons around tau) and raise :class:`~diffana.errors.WorkspaceError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from diffana.errors import WorkspaceError

__all__ = ["HS3_VERSION", "to_hs3"]

HS3_VERSION = "0.2"
# (modifier type, pyhf code) -> HS3 "interpolation" (None: HS3's default, written as no key)
_INTERPOLATION = {
    ("normsys", "code4"): None,
    ("normsys", "code1"): "log",
    ("histosys", "code4p"): None,
    ("histosys", "code0"): "lin",
    ("histosys", "code2"): "parabolic",
}
_COMPONENT = re.compile(r"^(.*)\[(\d+)\]$")


def hs3_parameter_name(par_name: str) -> str:
    """The HS3 name of a pyhf parameter label (``name[i]`` becomes ``name_bin_i``).

    Examples:
        >>> hs3_parameter_name("uncorr_bkguncrt[1]"), hs3_parameter_name("mu")
        ('uncorr_bkguncrt_bin_1', 'mu')
    """
    match = _COMPONENT.match(par_name)
    return f"{match[1]}_bin_{match[2]}" if match else par_name


def _version() -> str:
    try:
        return metadata.version("diffana")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _interpolation(mtype: str, code: str) -> dict[str, str]:
    if (mtype, code) not in _INTERPOLATION:
        msg = f"{mtype} interpolation {code} has no HS3 name; use one of {sorted(_INTERPOLATION)}"
        raise WorkspaceError(msg)
    name = _INTERPOLATION[(mtype, code)]
    return {"interpolation": name} if name else {}


def _check_representable(parameters: list[Mapping[str, Any]], names: set[str]) -> None:
    for config in parameters:
        if config["name"] == "lumi" or config["name"] not in names:
            continue
        for key in ("auxdata", "sigmas", "factors"):
            if key in config:
                msg = (
                    f"the measurement sets {key} of {config['name']!r}; HS3 histfactory_dist "
                    "constraints have fixed widths and centres, so this cannot be exported: "
                    f"remove {key!r} from the parameter configuration"
                )
                raise WorkspaceError(msg)


class _Components:
    """HS3 parameter names of the components a channel's per-bin modifier uses."""

    def __init__(self, channels: list[Mapping[str, Any]]) -> None:
        self._offset: dict[tuple[str, str], int] = {}
        seen: dict[str, int] = {}
        for channel in sorted(channels, key=lambda c: c["name"]):  # pyhf concatenates in this order
            nbins = len(channel["samples"][0]["data"])
            mods = {
                m["name"]
                for s in channel["samples"]
                for m in s["modifiers"]
                if m["type"] == "staterror"
            }
            for name in sorted(mods):
                self._offset[(name, channel["name"])] = seen.get(name, 0)
                seen[name] = seen.get(name, 0) + nbins

    def __call__(self, mod: Mapping[str, Any], channel: str, nbins: int) -> list[str]:
        offset = self._offset.get((mod["name"], channel), 0) if mod["type"] == "staterror" else 0
        return [hs3_parameter_name(f"{mod['name']}[{offset + i}]") for i in range(nbins)]


def _modifier(mod: Mapping[str, Any], sample: Mapping[str, Any], ctx: dict[str, Any]) -> dict:
    name, mtype, data = mod["name"], mod["type"], mod["data"]
    nbins = len(sample["data"])
    if mtype == "normfactor":
        return {"name": name, "type": "normfactor", "parameter": name}
    if mtype == "lumi":
        return {
            "name": name,
            "type": "normfactor",
            "parameter": name,
            "constraint_name": "lumi_constraint",
        }
    if mtype == "normsys":
        out = {"name": name, "type": "normsys", "parameter": name, "constraint": "Gauss"}
        out["data"] = {"hi": float(data["hi"]), "lo": float(data["lo"])}
        return out | _interpolation("normsys", ctx["normsys_code"])
    if mtype == "histosys":
        out = {"name": name, "type": "histosys", "parameter": name, "constraint": "Gauss"}
        out["data"] = {
            "hi": {"contents": [float(x) for x in data["hi_data"]]},
            "lo": {"contents": [float(x) for x in data["lo_data"]]},
        }
        return out | _interpolation("histosys", ctx["histosys_code"])
    parameters = ctx["components"](mod, ctx["channel"], nbins)
    if mtype == "shapefactor":
        return {"name": name, "type": "shapefactor", "parameters": parameters}
    if mtype == "staterror":
        return {"name": name, "type": "staterror", "parameters": parameters, "constraint": "Gauss"}
    taus = [
        float(b) ** 2 / float(u) ** 2 if b > 0 and u > 0 else 0.0
        for b, u in zip(sample["data"], data, strict=True)
    ]
    return {
        "name": name,
        "type": "shapesys",
        "parameters": parameters,
        "constraint": "Poisson",
        "data": {"vals": taus},
    }


def _channel(channel: Mapping[str, Any], ctx: dict[str, Any]) -> tuple[dict, dict]:
    nbins = len(channel["samples"][0]["data"])
    axes = [{"name": f"obs_x_{channel['name']}", "min": 0.0, "max": float(nbins), "nbins": nbins}]
    ctx = {**ctx, "channel": channel["name"]}
    samples = []
    for sample in channel["samples"]:
        data: dict[str, Any] = {"contents": [float(x) for x in sample["data"]]}
        stat = [m for m in sample["modifiers"] if m["type"] == "staterror"]
        if len(stat) > 1:
            msg = (
                f"sample {sample['name']!r} of channel {channel['name']!r} has "
                f"{len(stat)} staterror modifiers; HS3 takes one per sample (its data errors)"
            )
            raise WorkspaceError(msg)
        if stat:
            data["errors"] = [float(x) for x in stat[0]["data"]]
        modifiers = [_modifier(m, sample, ctx) for m in sample["modifiers"]]
        samples.append({"name": sample["name"], "data": data, "modifiers": modifiers})
    dist = {
        "name": f"model_{channel['name']}",
        "type": "histfactory_dist",
        "axes": axes,
        "samples": samples,
    }
    if any(m["type"] == "staterror" for s in channel["samples"] for m in s["modifiers"]):
        dist["staterror"] = {"constraint": "Gauss", "relThreshold": 0.0}  # ROOT reads this
    observed = ctx["observations"].get(channel["name"])
    if observed is None:
        msg = f"the workspace has no observation for channel {channel['name']!r}; add one"
        raise WorkspaceError(msg)
    data_entry = {
        "name": f"obsData_{channel['name']}",
        "type": "binned",
        "contents": [float(x) for x in observed],
        "axes": axes,
    }
    return dist, data_entry


def to_hs3(
    workspace: Any,
    measurement_name: str | None = None,
    *,
    modifier_settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a measurement of a :class:`~diffana.stats.Workspace` as an HS3 v0.2 document.

    Args:
        workspace: the workspace (a :class:`diffana.stats.Workspace`).
        measurement_name: the measurement to export (default: the first).
        modifier_settings: interpolation codes as for ``Workspace.model`` (default: pyhf's).

    Returns:
        The HS3 document as a JSON-serialisable dict (``json.dump`` it to a file).

    Raises:
        WorkspaceError: the measurement sets constraint widths or centres HS3 cannot express, or
            an interpolation code has no HS3 name.

    Examples:
        >>> from diffana.stats import Workspace
        >>> ws = Workspace({"channels": [{"name": "sr", "samples": [
        ...     {"name": "sig", "data": [5.0], "modifiers": [
        ...         {"name": "mu", "type": "normfactor", "data": None}]},
        ...     {"name": "bkg", "data": [50.0], "modifiers": [
        ...         {"name": "unc", "type": "shapesys", "data": [5.0]}]}]}],
        ...     "observations": [{"name": "sr", "data": [52.0]}],
        ...     "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": []}}],
        ...     "version": "1.0.0"})
        >>> doc = to_hs3(ws)
        >>> doc["metadata"]["hs3_version"], doc["analyses"][0]["parameters_of_interest"]
        ('0.2', ['mu'])
        >>> doc["distributions"][0]["samples"][1]["modifiers"][0]["data"]
        {'vals': [100.0]}
    """
    measurement = workspace.get_measurement(measurement_name=measurement_name)
    meas = measurement["name"]
    poi = measurement["config"]["poi"]
    poi = poi if poi in workspace.parameters else None
    model = workspace.model(meas, poi_name=poi, modifier_settings=modifier_settings)
    config = model.config
    _check_representable(measurement["config"]["parameters"], set(config.par_order))
    structure = config.structure
    ctx = {
        "normsys_code": structure.normsys_code,
        "histosys_code": structure.histosys_code,
        "components": _Components(workspace["channels"]),
        "observations": workspace.observations,
    }
    pairs = [_channel(ch, ctx) for ch in workspace["channels"]]
    distributions = [dist for dist, _ in pairs]
    names = [hs3_parameter_name(p) for p in config.par_names]
    bounds, inits, fixed = (
        config.suggested_bounds(),
        config.suggested_init(),
        config.suggested_fixed(),
    )
    points = []
    for name, value, const in zip(names, inits, fixed, strict=True):
        points.append({"name": name, "value": float(value)} | ({"const": True} if const else {}))
    if "lumi" in config.par_order and config.param_set("lumi").constraint is not None:
        lumi = next(p for p in measurement["config"]["parameters"] if p["name"] == "lumi")
        distributions.append(
            {
                "name": "lumi_constraint",
                "type": "gaussian_dist",
                "x": "nom_lumi",
                "mean": "lumi",
                "sigma": float(lumi["sigmas"][0]),
            }
        )
        points.append({"name": "nom_lumi", "value": float(lumi["auxdata"][0]), "const": True})
    analysis: dict[str, Any] = {
        "name": meas,
        "likelihood": f"{meas}_likelihood",
        "domains": [f"{meas}_domain"],
        "init": f"{meas}_inits",
    }
    if poi is not None:
        analysis["parameters_of_interest"] = [poi]
    return {
        "metadata": {
            "hs3_version": HS3_VERSION,
            "packages": [{"name": "diffana", "version": _version()}],
            "description": f"pyhf workspace, measurement {meas!r}, exported by diffana",
        },
        "distributions": distributions,
        "data": [data for _, data in pairs],
        "likelihoods": [
            {
                "name": f"{meas}_likelihood",
                "distributions": [dist["name"] for dist, _ in pairs],
                "data": [data["name"] for _, data in pairs],
            }
        ],
        "domains": [
            {
                "name": f"{meas}_domain",
                "type": "product_domain",
                "axes": [
                    {"name": name, "min": float(lo), "max": float(hi)}
                    for name, (lo, hi) in zip(names, bounds, strict=True)
                ],
            }
        ],
        "parameter_points": [{"name": f"{meas}_inits", "parameters": points}],
        "analyses": [analysis],
    }
