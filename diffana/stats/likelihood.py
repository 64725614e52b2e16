r"""The HistFactory likelihood as pure functions of (structure, yields, parameters, data).

.. math::

    L(\mu,\theta) = \prod_{b} \mathrm{Pois}\big(n_b \mid \lambda_b(\mu,\theta)\big)
        \prod_{g} \mathcal{N}(a_g \mid \theta_g, \sigma_g)
        \prod_{p} \mathrm{Pois}(a_p \mid \gamma_p \tau_p),
    \qquad
    \lambda_b = \sum_s \Big(\nu_{sb} + \sum_h \delta_{hsb}(\alpha_h)\Big)
        \prod_{k} f_{ksb}(\alpha_k) \prod_{m} \kappa_{msb}

(HistFactory, CERN-OPEN-2012-016; pyhf's ``Model.logpdf``). ``data`` is pyhf's: the observed counts of
all channels followed by the auxiliary data. Staterror widths and shapesys ``tau`` follow the yields,
so their gradients flow too. Every function here is jit-, vmap- and grad-compatible; ``structure`` is
static (a Python object closed over or passed as a static argument).

Examples:
    >>> import jax.numpy as jnp
    >>> from diffana.stats.structure import structure_from_spec
    >>> from diffana.stats.yields import yields_from_spec
    >>> spec = {"channels": [{"name": "sr", "samples": [
    ...     {"name": "sig", "data": [12.0, 11.0], "modifiers": [
    ...         {"name": "mu", "type": "normfactor", "data": None}]},
    ...     {"name": "bkg", "data": [50.0, 52.0], "modifiers": [
    ...         {"name": "unc", "type": "shapesys", "data": [3.0, 7.0]}]}]}]}
    >>> s = structure_from_spec(spec)
    >>> y = yields_from_spec(s, spec)
    >>> data = jnp.concatenate([jnp.array([51.0, 48.0]), auxdata(s, y)])
    >>> pars = jnp.array([0.0, 1.0030512, 0.96266961])
    >>> round(float(twice_nll(s, y, pars, data)), 6)  # pyhf: 24.98393521
    24.983935
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln
from jaxtyping import Array, ArrayLike, Float

from diffana.stats.interpolation import histosys_delta, normsys_factor
from diffana.stats.structure import ModelStructure
from diffana.stats.yields import Yields

__all__ = [
    "auxdata",
    "constraint_widths",
    "deviance",
    "expected_actualdata",
    "expected_auxdata",
    "expected_by_sample",
    "expected_data",
    "logpdf",
    "twice_nll",
]

_LOG_2PI = math.log(2.0 * math.pi)


def expected_by_sample(
    structure: ModelStructure, yields: Yields, pars: Float[ArrayLike, " npars"]
) -> Float[Array, "S B"]:
    """Expected yield of every sample in every bin (pyhf's ``return_by_sample=True``)."""
    t = structure.tables
    pars = jnp.asarray(pars)
    rates = yields.nominal
    if len(t["histosys_par"]):
        alpha = pars[t["histosys_par"]][:, None, None]
        delta = histosys_delta(
            structure.histosys_code, alpha, yields.histosys_lo, yields.nominal, yields.histosys_hi
        )
        rates = rates + jnp.sum(jnp.where(t["histosys_mask"], delta, 0.0), axis=0)
    if len(t["normsys_par"]):
        alpha = pars[t["normsys_par"]][:, None, None]
        factor = normsys_factor(structure.normsys_code, alpha, yields.normsys_lo, yields.normsys_hi)
        factor = jnp.prod(jnp.where(t["normsys_cmask"], factor, 1.0), axis=0)
        rates = rates * factor[:, t["bin_channel"]]
    if len(t["factor_par"]):
        kappa = pars[t["factor_par"]][:, None, :]
        rates = rates * jnp.prod(jnp.where(t["factor_mask"], kappa, 1.0), axis=0)
    if structure.clip_sample_data is not None:
        rates = jnp.clip(rates, structure.clip_sample_data, None)
    return rates


def expected_actualdata(
    structure: ModelStructure, yields: Yields, pars: Float[ArrayLike, " npars"]
) -> Float[Array, " B"]:
    """Expected counts in every bin (no auxiliary data)."""
    rates = jnp.sum(expected_by_sample(structure, yields, pars), axis=0)
    if structure.clip_bin_data is not None:
        rates = jnp.clip(rates, structure.clip_bin_data, None)
    return rates


def constraint_widths(structure: ModelStructure, yields: Yields) -> tuple[Array, Array]:
    """Gaussian widths ``sigma_g`` and Poisson scale factors ``tau_p`` of the constraint terms.

    Staterror widths are the relative uncertainty of the summed yield of the samples carrying the
    modifier, :math:`\\sqrt{\\sum_s u_{sb}^2} / \\sum_s \\nu_{sb}`; shapesys factors are
    :math:`\\tau = (\\nu / u)^2`. Entries the measurement fixed stay constant.
    """
    t = structure.tables
    sigma = jnp.asarray(t["gauss_sigma"])
    if len(t["staterror_rows"]):
        rows, bins = t["staterror_rows"], t["staterror_bins"]
        unc = yields.staterror[rows, :, bins]
        mask = t["staterror_mask"][rows, :, bins]
        total = jnp.sum(jnp.where(mask, yields.nominal[:, bins].T, 0.0), axis=1)
        derived = jnp.sqrt(jnp.sum(unc**2, axis=1)) / total
        src = t["gauss_sigma_src"]
        sigma = jnp.where(src >= 0, derived[jnp.maximum(src, 0)], sigma)
    tau = _from_shapesys(structure, yields, t["pois_factor_src"], t["pois_factor"])
    return sigma, tau


def _from_shapesys(structure: ModelStructure, yields: Yields, src, const) -> Array:
    """Per Poisson constraint: ``(nominal / uncertainty)**2`` where ``src >= 0``, else ``const``."""
    t = structure.tables
    if not len(t["shapesys_rows"]):
        return jnp.asarray(const)
    rows, bins = t["shapesys_rows"], t["shapesys_bins"]
    samples = t["shapesys_sample"][rows]
    derived = (yields.nominal[samples, bins] / yields.shapesys[rows, samples, bins]) ** 2
    return jnp.where(src >= 0, derived[jnp.maximum(src, 0)], const)


def _aux_vector(structure: ModelStructure, gauss: Array, pois: Array) -> Array:
    """The auxiliary data vector from its Gaussian and Poisson entries.

    A static permutation (a gather) where the two cover every position, as they do for every
    model: a scatter would keep XLA's CPU backend from compiling the loops around it as one
    function (see :func:`diffana.stats.derivatives._add_at`).
    """
    t = structure.tables
    pos = np.concatenate([t["gauss_pos"], t["pois_pos"]]).astype(int)
    both = jnp.concatenate([gauss, pois])
    if np.array_equal(np.sort(pos), np.arange(structure.nauxdata)):
        return both[np.argsort(pos)]
    return jnp.zeros(structure.nauxdata).at[pos].set(both)


def auxdata(structure: ModelStructure, yields: Yields) -> Float[Array, " A"]:
    """Nominal auxiliary data (pyhf's ``model.config.auxdata``), following the yields."""
    t = structure.tables
    pois_aux = _from_shapesys(structure, yields, t["pois_aux_src"], t["pois_aux"])
    return _aux_vector(structure, jnp.asarray(t["gauss_aux"]), pois_aux)


def expected_auxdata(
    structure: ModelStructure, yields: Yields, pars: Float[ArrayLike, " npars"]
) -> Float[Array, " A"]:
    """Expected auxiliary data: the parameter (Gaussian) or ``gamma * tau`` (Poisson)."""
    t = structure.tables
    pars = jnp.asarray(pars)
    _, tau = constraint_widths(structure, yields)
    return _aux_vector(structure, pars[t["gauss_par"]], pars[t["pois_par"]] * tau)


def expected_data(
    structure: ModelStructure,
    yields: Yields,
    pars: Float[ArrayLike, " npars"],
    include_auxdata: bool = True,
) -> Array:
    """Expected main data, followed by the expected auxiliary data if ``include_auxdata``."""
    main = expected_actualdata(structure, yields, pars)
    if not include_auxdata:
        return main
    return jnp.concatenate([main, expected_auxdata(structure, yields, pars)])


def _xlogy(x, y):
    """``x * log(y)`` with ``0 * log(0) = 0`` and finite gradients where ``x = 0``."""
    return jnp.where(x == 0, 0.0, x * jnp.log(jnp.where(x == 0, 1.0, y)))


def _poisson_logpdf(n, lam):
    return _xlogy(n, lam) - lam - gammaln(n + 1.0)


def logpdf(
    structure: ModelStructure,
    yields: Yields,
    pars: Float[ArrayLike, " npars"],
    data: Float[ArrayLike, " B+A"],
) -> Array:
    """Log-likelihood of ``data`` (main counts then auxiliary data), a scalar."""
    t = structure.tables
    pars, data = jnp.asarray(pars), jnp.asarray(data)
    nb = structure.nbins
    main, aux = data[:nb], data[nb:]
    value = jnp.sum(_poisson_logpdf(main, expected_actualdata(structure, yields, pars)))
    sigma, tau = constraint_widths(structure, yields)
    if len(t["gauss_par"]):
        z = (aux[t["gauss_pos"]] - pars[t["gauss_par"]]) / sigma
        value += jnp.sum(-0.5 * z**2 - jnp.log(sigma) - 0.5 * _LOG_2PI)
    if len(t["pois_par"]):
        value += jnp.sum(_poisson_logpdf(aux[t["pois_pos"]], pars[t["pois_par"]] * tau))
    return value


def twice_nll(
    structure: ModelStructure,
    yields: Yields,
    pars: Float[ArrayLike, " npars"],
    data: Float[ArrayLike, " B+A"],
) -> Array:
    r"""Twice the negative log-likelihood, :math:`-2\ln L` (pyhf's ``twice_nll``)."""
    return -2.0 * logpdf(structure, yields, pars, data)


def _poisson_deviance(n, lam):
    """``2 (lam - n - n log(lam/n))``, accurate near ``lam = n``; ``2 lam`` where ``n = 0``."""
    safe_n = jnp.where(n > 0, n, 1.0)
    u = (lam - n) / safe_n
    return 2.0 * jnp.where(n > 0, n * (u - jnp.log1p(u)), lam)


def deviance(
    structure: ModelStructure,
    yields: Yields,
    pars: Float[ArrayLike, " npars"],
    data: Float[ArrayLike, " B+A"],
) -> Array:
    """``twice_nll`` minus its parameter-independent part: the objective the fits minimise.

    Every term is zero when the expectation equals the data, which keeps the value small near the
    optimum and line searches precise. ``twice_nll = deviance + c(yields, data)``.
    """
    t = structure.tables
    pars, data = jnp.asarray(pars), jnp.asarray(data)
    nb = structure.nbins
    main, aux = data[:nb], data[nb:]
    value = jnp.sum(_poisson_deviance(main, expected_actualdata(structure, yields, pars)))
    sigma, tau = constraint_widths(structure, yields)
    if len(t["gauss_par"]):
        value += jnp.sum(((aux[t["gauss_pos"]] - pars[t["gauss_par"]]) / sigma) ** 2)
    if len(t["pois_par"]):
        value += jnp.sum(_poisson_deviance(aux[t["pois_pos"]], pars[t["pois_par"]] * tau))
    return value
