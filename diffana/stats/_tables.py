"""Index tables and masks of a model: which modifier touches which sample and bin, through which
parameter. Built by walking the spec exactly as pyhf's builders do (sorted channels x sorted samples
x sorted modifiers), which also fixes the order of the parameter requirements.

Shapes use ``S`` samples, ``B`` bins (all channels concatenated) and ``C`` channels; ``H``, ``N`` are the numbers of
histosys and normsys modifiers, ``M`` of the per-bin multiplicative factors (normfactor, lumi,
shapefactor, shapesys, staterror), ``T`` of staterror and ``P`` of shapesys modifiers.
"""

from __future__ import annotations

import numpy as np

from diffana.errors import ModelError
from diffana.stats import parameters
from diffana.stats._speccheck import MODIFIER_TYPES, where

__all__ = ["FACTOR_TYPES", "build_tables", "parameter_tables"]

FACTOR_TYPES = ("lumi", "normfactor", "shapefactor", "shapesys", "staterror")
"""Modifier types that multiply a bin by (one of) their parameters."""


def _helper(spec) -> dict:
    helper: dict = {}
    for c in spec["channels"]:
        for s in c["samples"]:
            mods = {(m["name"], m["type"]): m for m in s.get("modifiers", [])}
            helper.setdefault(c["name"], {})[s["name"]] = (s, mods)
    return helper


def build_tables(spec, summary) -> tuple[dict[str, list[dict]], dict]:
    """Walk the spec: the parameter requirements in pyhf order, and the masks of every modifier."""
    channels, samples, modifiers = summary["channels"], summary["samples"], summary["modifiers"]
    offsets, nbins = summary["offsets"], summary["nbins_by_name"]
    nb, ns = sum(nbins.values()), len(samples)
    helper = _helper(spec)
    nominal = np.zeros((ns, nb))
    masks = {key: np.zeros((ns, nb), dtype=bool) for key in modifiers}
    uncert = {key: np.zeros((ns, nb)) for key in modifiers if key[1] in ("staterror", "shapesys")}
    required: dict[str, dict[str, list[dict]]] = {t: {} for t in MODIFIER_TYPES}
    shapesys_seen: dict[str, str] = {}
    for c in channels:
        sl = slice(offsets[c], offsets[c] + nbins[c])
        for si, s in enumerate(samples):
            sample, mods = helper[c].get(s, (None, {}))
            if sample is not None:
                nominal[si, sl] = np.asarray(sample["data"], dtype=float)
            for key in modifiers:
                mod = mods.get(key)
                if mod is None:
                    continue
                name, mtype = key
                masks[key][si, sl] = True
                if mtype in ("staterror", "shapesys"):
                    uncert[key][si, sl] = np.asarray(mod["data"], dtype=float)
                if mtype == "shapesys":
                    here = where(c, s, mod)
                    if name in shapesys_seen:
                        msg = f"{here}: shapesys {name!r} is already used by {shapesys_seen[name]}"
                        msg += "; a shapesys belongs to one sample, give each its own name"
                        raise ModelError(msg)
                    shapesys_seen[name] = here
                    req = parameters.shapesys_requirement(sample["data"], mod["data"])
                elif mtype == "staterror":
                    continue  # needs all samples first (see below)
                elif mtype == "shapefactor":
                    req = parameters.shapefactor_requirement(nbins[c])
                else:
                    req = getattr(parameters, f"{mtype}_requirement")()
                required[mtype].setdefault(name, [req])
    staterror_valid = []
    for key in modifiers:
        if key[1] == "staterror":
            req, valid = _staterror_requirement(key, masks[key], nominal, uncert[key], samples)
            required["staterror"][key[0]] = [req]
            staterror_valid.append(valid)
    requirements: dict[str, list[dict]] = {}
    for mtype in MODIFIER_TYPES:
        for name, reqs in required[mtype].items():
            requirements.setdefault(name, []).extend(reqs)
    tables = {"nominal_spec": nominal}
    for mtype in ("histosys", "normsys", "staterror", "shapesys"):
        keys = [k for k in modifiers if k[1] == mtype]
        tables[f"{mtype}_names"] = tuple(k[0] for k in keys)
        tables[f"{mtype}_mask"] = _stack([masks[k] for k in keys], (ns, nb), bool)
    first_bins = [offsets[c] for c in channels]
    tables["bin_channel"] = np.repeat(np.arange(len(channels)), [nbins[c] for c in channels])
    tables["normsys_cmask"] = tables["normsys_mask"][:, :, first_bins]
    fkeys = [k for k in modifiers if k[1] in FACTOR_TYPES]
    tables["factor_keys"] = tuple(fkeys)
    tables["factor_mask"] = _stack([masks[k] for k in fkeys], (ns, nb), bool)
    tables["factor_local"] = _stack([_local_index(k, masks[k], summary) for k in fkeys], (nb,), int)
    tables["staterror_valid"] = _stack(staterror_valid, (nb,), bool)
    ss_keys = [k for k in modifiers if k[1] == "shapesys"]
    tables["shapesys_sample"] = np.array(
        [int(np.flatnonzero(masks[k].any(axis=1))[0]) for k in ss_keys], dtype=int
    )
    tables["shapesys_valid"] = _stack(
        [(nominal * masks[k] > 0) & (uncert[k] > 0) for k in ss_keys], (ns, nb), bool
    )
    return requirements, tables


def _stack(arrays, shape, dtype) -> np.ndarray:
    return np.stack(arrays).astype(dtype) if arrays else np.zeros((0, *shape), dtype=dtype)


def _canonical_mask(key, mask, samples) -> np.ndarray:
    """The bins a per-bin modifier covers; every sample carrying it must cover the same bins."""
    rows = [r for r in mask if r.any()]
    for si, row in enumerate(mask):
        if row.any() and not np.array_equal(row, rows[0]):
            msg = (
                f"{key[1]} {key[0]!r} covers different bins on sample {samples[si]!r} than on "
                "the other samples; use one name per channel (e.g. staterror_<channel>)"
            )
            raise ModelError(msg)
    return rows[0]


def _staterror_requirement(key, mask, nominal, uncert, samples) -> dict:
    """pyhf's staterror: relative uncertainty of the summed yield of the samples carrying it."""
    bins = _canonical_mask(key, mask, samples)
    carrying = mask.any(axis=1)
    total = nominal[carrying].sum(axis=0)
    safe = np.where(total > 0, total, 1.0)
    relerr = np.sqrt(np.sum(np.where(total > 0, (uncert / safe) ** 2, 0.0), axis=0))
    sigmas = relerr[bins]
    fixed = sigmas == 0
    req = parameters.staterror_requirement(
        tuple(float(x) for x in np.where(fixed, 1.0, sigmas)), tuple(bool(f) for f in fixed)
    )
    return req, bins & (relerr > 0)


def _local_index(key, mask, summary) -> np.ndarray:
    """Offset, within the parameter set, of the parameter acting on each bin (0 for scalars)."""
    nb = sum(summary["nbins"])
    local = np.zeros(nb, dtype=int)
    if key[1] == "shapefactor":
        for c in summary["channels"]:
            start, n = summary["offsets"][c], summary["nbins_by_name"][c]
            local[start : start + n] = np.arange(n)
    elif key[1] in ("shapesys", "staterror"):
        bins = mask.any(axis=0)
        local[bins] = np.arange(int(bins.sum()))
    return local


def parameter_tables(tables: dict, starts: dict[str, int]) -> dict:
    """Parameter indices of every modifier, once the parameter layout is known."""
    out = {
        "histosys_par": np.array([starts[n] for n in tables["histosys_names"]], dtype=int),
        "normsys_par": np.array([starts[n] for n in tables["normsys_names"]], dtype=int),
    }
    fstart = np.array([starts[name] for name, _ in tables["factor_keys"]], dtype=int)
    out["factor_par"] = fstart[:, None] + tables["factor_local"]
    # derived constraint widths: staterror sigma of (modifier row, bin), shapesys tau of
    # (modifier row, sample, bin); the *_src dicts map a parameter index to its derived entry.
    se_rows, se_bins, se_src = [], [], {}
    for t, name in enumerate(tables["staterror_names"]):
        bins = np.flatnonzero(tables["staterror_mask"][t].any(axis=0))
        for j, b in enumerate(bins):
            if tables["staterror_valid"][t, b]:
                se_src[starts[name] + j] = len(se_rows)
                se_rows.append(t)
                se_bins.append(int(b))
    ss_rows, ss_bins, ss_src = [], [], {}
    for p, name in enumerate(tables["shapesys_names"]):
        s = tables["shapesys_sample"][p]
        bins = np.flatnonzero(tables["shapesys_mask"][p].any(axis=0))
        for j, b in enumerate(bins):
            if tables["shapesys_valid"][p, s, b]:
                ss_src[starts[name] + j] = len(ss_rows)
                ss_rows.append(p)
                ss_bins.append(int(b))
    out["staterror_rows"] = np.array(se_rows, dtype=int)
    out["staterror_bins"] = np.array(se_bins, dtype=int)
    out["shapesys_rows"] = np.array(ss_rows, dtype=int)
    out["shapesys_bins"] = np.array(ss_bins, dtype=int)
    out["staterror_src"] = se_src
    out["shapesys_src"] = ss_src
    return out
