r"""Differentiable physics objectives: pure functions of the yields (and data), for optimisation loops.

Each returns an :class:`Objective` (value and fit status) and is differentiable with respect to the
:class:`~diffana.stats.yields.Yields` (and data) by ``jax.grad``/``jax.jacfwd``:

* :func:`poi_uncertainty` -- :math:`\sigma(\hat\mu) = \sqrt{(2 H^{-1})_{\mu\mu}}` from the Hessian of
  :math:`-2\ln L` at the best fit, all nuisance parameters profiled (Cramér-Rao / Wald). With no data,
  the Asimov data set at the nominal parameters (POI = ``poi_value``) is fitted: the AGC loop's
  default objective. :math:`\hat\theta` enters through the implicit function theorem.
* :func:`discovery_significance` -- :math:`Z_0 = \sqrt{q_0}`; with no data, on the Asimov data set
  with :math:`\mu = 1` it is the Asimov significance :math:`Z_A` (arXiv:1007.1727, Eq. 97).
* :func:`q0`, :func:`qmu` -- profile-likelihood test statistics (envelope theorem).
* :func:`cls` -- observed and expected CLs with pyhf's asymptotic conventions; with no data, the
  background-only Asimov data set is the observation (observed = median expected).

Examples:
    >>> import jax
    >>> from diffana.stats import Model
    >>> spec = {"channels": [{"name": "sr", "samples": [
    ...     {"name": "sig", "data": [12.0, 11.0], "modifiers": [
    ...         {"name": "mu", "type": "normfactor", "data": None}]},
    ...     {"name": "bkg", "data": [50.0, 52.0], "modifiers": [
    ...         {"name": "unc", "type": "shapesys", "data": [3.0, 7.0]}]}]}]}
    >>> m = Model(spec)
    >>> round(float(poi_uncertainty(m.structure, m.yields).value), 6)  # pyhf: 0.567182 (finite-difference Hessian)
    0.567182
    >>> grad = jax.grad(lambda y: poi_uncertainty(m.structure, y).value)(m.yields)
    >>> bool(grad.nominal[1, 0] < 0)  # more signal, smaller uncertainty
    True
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from diffana.errors import ModelError
from diffana.stats import asymptotics, teststat
from diffana.stats._jit import jit
from diffana.stats.fit import _fit, _hess_x, resolve_fit_settings
from diffana.stats.likelihood import auxdata, expected_data
from diffana.stats.optimize import Options
from diffana.stats.structure import ModelStructure
from diffana.stats.yields import Yields

__all__ = [
    "Objective",
    "asimov_data",
    "cls",
    "discovery_significance",
    "observed_data",
    "poi_uncertainty",
    "q0",
    "qmu",
]

_STATIC = {"static_argnums": 0, "static_argnames": ("options",)}


class Objective(NamedTuple):
    """An objective's value and the worst status of the fits behind it (0 = converged)."""

    value: Float[Array, " ..."]
    status: Int[Array, ""]


def _poi(structure: ModelStructure) -> int:
    if structure.poi_index is None:
        msg = "objectives need a parameter of interest; build the model with poi_name=..."
        raise ModelError(msg)
    return structure.poi_index


def asimov_data(structure: ModelStructure, yields: Yields, poi_value=1.0, init=None) -> Array:
    """Expected main and auxiliary data at the nominal parameters with the POI at ``poi_value``."""
    init, _, _ = resolve_fit_settings(structure, init)
    return expected_data(structure, yields, init.at[_poi(structure)].set(poi_value))


def observed_data(structure: ModelStructure, yields: Yields, observations: ArrayLike) -> Array:
    """Observed counts followed by the auxiliary data of ``yields`` (which follow the yields)."""
    return jnp.concatenate([jnp.asarray(observations, jnp.float64), auxdata(structure, yields)])


@jit(**_STATIC)
def poi_uncertainty(
    structure: ModelStructure,
    yields: Yields,
    data: ArrayLike | None = None,
    *,
    poi_value: float = 1.0,
    init: ArrayLike | None = None,
    bounds: ArrayLike | None = None,
    fixed: ArrayLike | None = None,
    options: Options = Options(),  # noqa: B008 (immutable)
) -> Objective:
    r"""Uncertainty of the POI from the profile likelihood's curvature at the best fit."""
    poi = _poi(structure)
    init, bounds, fixed = resolve_fit_settings(structure, init, bounds, fixed)
    if data is None:
        data = asimov_data(structure, yields, poi_value, init)
    start = init.at[poi].set(poi_value)
    result = _fit(structure, yields, jnp.asarray(data), start, bounds, fixed, options)
    hess = _hess_x(structure, result.bestfit, yields, jnp.asarray(data))
    floating = ~fixed
    both = floating[:, None] & floating[None, :]
    hess = jnp.where(both, hess, jnp.eye(structure.npars))
    unit = jnp.zeros(structure.npars).at[poi].set(1.0)
    variance = 2.0 * jnp.dot(unit, jnp.linalg.solve(hess, unit))
    return Objective(jnp.sqrt(variance), result.status)


def _statistic(kind, structure, yields, data, mu, init, bounds, fixed, options) -> Objective:
    value, fits = teststat.statistic(
        kind, structure, yields, data, mu, init=init, bounds=bounds, fixed=fixed, options=options
    )
    return Objective(value, jnp.maximum(fits.fixed_poi.status, fits.free.status))


@jit(**_STATIC)
def q0(
    structure: ModelStructure,
    yields: Yields,
    data: ArrayLike | None = None,
    *,
    init: ArrayLike | None = None,
    bounds: ArrayLike | None = None,
    fixed: ArrayLike | None = None,
    options: Options = Options(),  # noqa: B008 (immutable)
) -> Objective:
    """Discovery test statistic :math:`q_0`; Asimov data at :math:`\\mu = 1` if ``data`` is None."""
    if data is None:
        data = asimov_data(structure, yields, 1.0, init)
    return _statistic("q0", structure, yields, data, 0.0, init, bounds, fixed, options)


@jit(**_STATIC)
def discovery_significance(
    structure: ModelStructure,
    yields: Yields,
    data: ArrayLike | None = None,
    **kwargs,
) -> Objective:
    """:math:`Z_0 = \\sqrt{q_0}`; the Asimov significance :math:`Z_A` if ``data`` is None."""
    value, status = q0(structure, yields, data, **kwargs)
    positive = value > 0
    return Objective(jnp.where(positive, jnp.sqrt(jnp.where(positive, value, 1.0)), 0.0), status)


@jit(**_STATIC)
def qmu(
    structure: ModelStructure,
    yields: Yields,
    data: ArrayLike | None = None,
    mu: float = 1.0,
    *,
    init: ArrayLike | None = None,
    bounds: ArrayLike | None = None,
    fixed: ArrayLike | None = None,
    options: Options = Options(),  # noqa: B008 (immutable)
) -> Objective:
    r""":math:`\tilde q_\mu` (POI bounded at 0); background-only Asimov data if ``data`` is None."""
    if data is None:
        data = asimov_data(structure, yields, 0.0, init)
    return _statistic("qmu_tilde", structure, yields, data, mu, init, bounds, fixed, options)


@jit(**_STATIC)
def cls(
    structure: ModelStructure,
    yields: Yields,
    data: ArrayLike | None = None,
    mu: float = 1.0,
    *,
    init: ArrayLike | None = None,
    bounds: ArrayLike | None = None,
    fixed: ArrayLike | None = None,
    options: Options = Options(),  # noqa: B008 (immutable)
) -> Objective:
    """Observed CLs and the expected band: ``value`` has 6 entries (observed, -2..+2 sigma)."""
    if data is None:
        data = asimov_data(structure, yields, 0.0, init)
    result = asymptotics.hypotest(
        structure, yields, data, mu, init=init, bounds=bounds, fixed=fixed, options=options
    )
    return Objective(jnp.concatenate([result.cls_obs[None], result.cls_exp]), result.status)
