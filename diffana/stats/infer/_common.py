"""Conversions between pyhf's calling conventions and the functional core."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from diffana.errors import FitError, ModelError
from diffana.stats.optimize import Status

__all__ = ["as_data", "check_status", "fit_settings"]


def as_data(data, model) -> jnp.ndarray:
    """``data`` (observations + auxdata, any sequence) as a float64 array of the right length."""
    try:
        array = jnp.asarray(np.asarray(data, dtype=float))
    except (TypeError, ValueError) as exc:
        msg = f"data must be a flat list of numbers (observations then auxdata): {exc}"
        raise ModelError(msg) from exc
    expected = model.config.nmaindata + model.config.nauxdata
    if array.ndim != 1 or array.shape[0] != expected:
        msg = (
            f"data has shape {array.shape} but the model expects {expected} numbers "
            f"({model.config.nmaindata} observations in channel order {model.config.channels} "
            f"followed by {model.config.nauxdata} auxdata, e.g. "
            "observations + model.config.auxdata)"
        )
        raise ModelError(msg)
    return array


def fit_settings(model, init_pars=None, par_bounds=None, fixed_params=None):
    """pyhf's defaults and checks for ``init_pars``, ``par_bounds`` and ``fixed_params``."""
    config = model.config
    init = list(config.suggested_init() if init_pars is None else init_pars)
    bounds = list(config.suggested_bounds() if par_bounds is None else par_bounds)
    fixed = list(config.suggested_fixed() if fixed_params is None else fixed_params)
    if not len(init) == len(bounds) == len(fixed) == config.npars:
        msg = (
            f"init_pars, par_bounds and fixed_params need {config.npars} entries each "
            f"(got {len(init)}, {len(bounds)}, {len(fixed)})"
        )
        raise ModelError(msg)
    for index, (value, bound) in enumerate(zip(init, bounds, strict=True)):
        if not bound[0] <= value <= bound[1]:
            msg = (
                f"fit initialization parameter {config.par_names[index]!r} (index {index}) = "
                f"{value} lies outside its bounds {list(bound)}; adjust init_pars or par_bounds"
            )
            raise ModelError(msg)
    return (
        jnp.asarray(init, dtype=jnp.float64),
        jnp.asarray(bounds, dtype=jnp.float64),
        jnp.asarray(fixed, dtype=bool),
    )


def check_status(status, what: str) -> None:
    """Raise :class:`~diffana.errors.FitError` unless every status is ``CONVERGED``."""
    codes = np.atleast_1d(np.asarray(status))
    bad = codes[codes != Status.CONVERGED]
    if bad.size:
        name = Status(int(bad.max())).name
        msg = (
            f"{what} did not converge (status {name}); check the model for degenerate or "
            "unconstrained parameters, or pass options=Options(maxiter=...) to the functional API"
        )
        raise FitError(msg)
