"""The yields of a model: every number of a spec that a histogram can change, as a pytree of arrays.

The static :class:`~diffana.stats.structure.ModelStructure` says which modifier touches which
sample and bin; :class:`Yields` holds the numbers. :func:`yields_from_spec` reads them from a spec
whose numeric leaves may be JAX arrays (even tracers inside ``jit``/``grad``), so a model builder can
assemble a spec in ``jax.numpy`` and differentiate through every likelihood function of this package.

Shapes (``S`` samples, ``B`` bins of all channels, ``C`` channels, ``H``/``N``/``T``/``P`` histosys,
normsys, staterror and shapesys modifiers, in the structure's sorted order). A normsys factor is one
number per sample and channel. Entries a modifier does not touch hold neutral values (pyhf's
convention): the nominal for histosys, 1 for normsys, 0 for uncertainties.

Examples:
    >>> import jax, jax.numpy as jnp
    >>> from diffana.stats.structure import structure_from_spec
    >>> def spec(s, b):
    ...     return {"channels": [{"name": "sr", "samples": [
    ...         {"name": "sig", "data": s, "modifiers": [
    ...             {"name": "mu", "type": "normfactor", "data": None}]},
    ...         {"name": "bkg", "data": b, "modifiers": [
    ...             {"name": "unc", "type": "shapesys", "data": [5.0]}]}]}]}
    >>> structure = structure_from_spec(spec([5.0], [50.0]))
    >>> y = jax.jit(lambda s: yields_from_spec(structure, spec(s, jnp.array([50.0]))))(
    ...     jnp.array([6.0]))
    >>> y.nominal.tolist()  # samples sorted: bkg, sig
    [[50.0], [6.0]]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from diffana.errors import ModelError
from diffana.stats._speccheck import where
from diffana.stats.structure import ModelStructure

__all__ = ["Yields", "yields_from_spec"]


class Yields(NamedTuple):
    """Sample yields and systematic templates of a model (a pytree of float arrays)."""

    nominal: Float[Array, "S B"]
    histosys_lo: Float[Array, "H S B"]
    histosys_hi: Float[Array, "H S B"]
    normsys_lo: Float[Array, "N S C"]
    normsys_hi: Float[Array, "N S C"]
    staterror: Float[Array, "T S B"]
    shapesys: Float[Array, "P S B"]


def _is_traced(x) -> bool:
    return isinstance(x, jnp.ndarray) or (
        isinstance(x, (list, tuple)) and any(isinstance(v, jnp.ndarray) for v in x)
    )


def yields_from_spec(structure: ModelStructure, spec: Mapping) -> Yields:
    """Read the yields of ``spec`` (a pyhf model spec) laid out for ``structure``.

    ``spec`` must have the same channels, samples, bin counts and modifiers as the spec the
    structure was built from; its numbers may differ and may be JAX arrays or tracers.

    Raises:
        ModelError: a channel, sample or modifier missing from or extra to the structure, or a bin
            count that differs.
    """
    samples, channels = structure.samples, structure.channels
    sidx = {s: i for i, s in enumerate(samples)}
    t = structure.tables
    rows = {
        mtype: {n: i for i, n in enumerate(t[f"{mtype}_names"])}
        for mtype in ("histosys", "normsys", "staterror", "shapesys")
    }
    ns, nb = len(samples), structure.nbins
    traced = False
    # entries: (array name, row or None, sample index, bin slice) -> values
    entries: list[tuple[str, int | None, int, slice, object]] = []
    seen_channels = set()
    for channel in spec.get("channels", []):
        cname = channel["name"]
        if cname not in channels:
            msg = f"{where(cname)} is not part of the model structure (channels: {channels}); "
            msg += "build a new structure for a spec with different channels"
            raise ModelError(msg)
        seen_channels.add(cname)
        sl = structure.channel_slice(cname)
        n = sl.stop - sl.start
        for sample in channel["samples"]:
            sname = sample["name"]
            if sname not in sidx:
                msg = f"{where(cname, sname)} is not part of the model structure"
                raise ModelError(msg)
            si = sidx[sname]
            data = sample["data"]
            _check_len(data, n, where(cname, sname), "data")
            traced |= _is_traced(data)
            entries.append(("nominal", None, si, sl, data))
            for mod in sample.get("modifiers", []):
                mtype, mname = mod["type"], mod["name"]
                if mtype not in rows:
                    continue
                row = rows[mtype].get(mname)
                if row is None or not t[f"{mtype}_mask"][row, si, sl.start]:
                    msg = f"{where(cname, sname, mod)} is not part of the model structure; "
                    msg += "build a new structure for a spec with different modifiers"
                    raise ModelError(msg)
                d = mod["data"]
                if mtype == "histosys":
                    for key, target in (("lo_data", "histosys_lo"), ("hi_data", "histosys_hi")):
                        _check_len(d[key], n, where(cname, sname, mod), key)
                        traced |= _is_traced(d[key])
                        entries.append((target, row, si, sl, d[key]))
                elif mtype == "normsys":
                    traced |= _is_traced(d["lo"]) or _is_traced(d["hi"])
                    ci = channels.index(cname)
                    entries.append(("normsys_lo", row, si, slice(ci, ci + 1), d["lo"]))
                    entries.append(("normsys_hi", row, si, slice(ci, ci + 1), d["hi"]))
                else:
                    _check_len(d, n, where(cname, sname, mod), "data")
                    traced |= _is_traced(d)
                    entries.append((mtype, row, si, sl, d))
    if seen_channels != set(channels):
        msg = f"the spec lacks channels {sorted(set(channels) - seen_channels)} of the structure"
        raise ModelError(msg)
    shapes = {
        "nominal": (ns, nb),
        **{k: (len(t[f"{k.split('_')[0]}_names"]), ns, nb) for k in Yields._fields[1:]},
    }
    nc = len(channels)
    shapes["normsys_lo"] = shapes["normsys_hi"] = (len(t["normsys_names"]), ns, nc)
    return _assemble(entries, shapes, t, traced)


def _check_len(values, n: int, place: str, what: str) -> None:
    length = len(values) if hasattr(values, "__len__") else None
    if length != n:
        msg = f"{place}: {what} has {length} bins but the structure's channel has {n}"
        raise ModelError(msg)


def _assemble(entries, shapes, tables, traced: bool) -> Yields:
    if not traced:
        arrays = {k: np.zeros(shape) for k, shape in shapes.items()}
        arrays["normsys_lo"][:] = 1.0
        arrays["normsys_hi"][:] = 1.0
        for name, row, si, sl, values in entries:
            target = arrays[name] if row is None else arrays[name][row]
            target[si, sl] = np.asarray(values, dtype=float)
        for key in ("histosys_lo", "histosys_hi"):
            unset = ~tables["histosys_mask"]
            arrays[key] = np.where(unset, arrays["nominal"][None], arrays[key])
        return Yields(**{k: jnp.asarray(v) for k, v in arrays.items()})
    arrays = {k: jnp.zeros(shape) for k, shape in shapes.items()}
    arrays["normsys_lo"] = arrays["normsys_lo"] + 1.0
    arrays["normsys_hi"] = arrays["normsys_hi"] + 1.0
    for name, row, si, sl, values in entries:
        values = jnp.broadcast_to(jnp.asarray(values, dtype=jnp.float64), (sl.stop - sl.start,))
        index = (si, sl) if row is None else (row, si, sl)
        arrays[name] = arrays[name].at[index].set(values)
    mask = tables["histosys_mask"]
    for key in ("histosys_lo", "histosys_hi"):
        arrays[key] = jnp.where(mask, arrays[key], arrays["nominal"][None])
    return Yields(**arrays)
