r"""Toy-based hypothesis tests: pseudo-experiments sampled from the model, fitted in batches.

As pyhf's ``ToyCalculator``: fit the data with the POI fixed at the tested value (signal
hypothesis) and at 0 (background; 1 and 0 swap roles for ``q0``), sample ``ntoys`` pseudo-data sets
(main counts Poisson, Gaussian auxiliary data normal, shapesys auxiliary data Poisson) from each,
compute the test statistic of every toy, and take
:math:`\mathrm{CL}_{s+b} = P(q \ge q_{\rm obs} \mid s+b)`, :math:`\mathrm{CL}_b = P(q \ge q_{\rm obs}\mid b)`,
:math:`\mathrm{CL}_s = \mathrm{CL}_{s+b}/\mathrm{CL}_b`; the expected band takes the
:math:`\Phi(\pm 2, \pm 1, 0)` percentiles of the p-values of the background toys.

Toys are fitted with ``lax.map(..., batch_size=...)``: each batch is one vmapped solve (a vmapped
while-loop runs until its slowest member converges, so batches bound the waste), started from the
generating parameters. Small batches are faster on a CPU: with 16 toys per batch (the default) a
small model's batched fit is small enough for XLA to compile each of its loops as one function
(:mod:`diffana._xla`), and a 3-parameter model fitted 219k toys/s where 64 gave 88k, 256 gave
64k (2-core machine, ``benchmarks/stats_vs_pyhf.py``). Randomness comes from an explicit
``jax.random`` key: same key, same toys.

Examples:
    >>> import jax, jax.numpy as jnp
    >>> from diffana.stats import Model
    >>> spec = {"channels": [{"name": "sr", "samples": [
    ...     {"name": "sig", "data": [25.0], "modifiers": [
    ...         {"name": "mu", "type": "normfactor", "data": None}]},
    ...     {"name": "bkg", "data": [50.0], "modifiers": [
    ...         {"name": "unc", "type": "shapesys", "data": [7.0]}]}]}]}
    >>> m = Model(spec)
    >>> toys = sample(m.structure, m.yields, jnp.array([1.0, 1.0]), jax.random.key(0), (3,))
    >>> toys.shape  # 3 toys x (1 bin + 1 auxdata)
    (3, 2)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from diffana.errors import ModelError
from diffana.stats._jit import jit
from diffana.stats.fit import _fit, resolve_fit_settings
from diffana.stats.likelihood import constraint_widths, expected_actualdata
from diffana.stats.optimize import Options
from diffana.stats.structure import ModelStructure
from diffana.stats.teststat import TEST_STATISTICS, clipped_difference
from diffana.stats.yields import Yields

__all__ = ["ToyResult", "sample", "toy_hypotest", "toy_teststats"]

_PERCENTILES = (2.27501319, 15.86552539, 50.0, 84.13447461, 97.72498681)
_KINDS = {"qtilde": "qmu_tilde", "q": "qmu", "q0": "q0"}


class ToyResult(NamedTuple):
    """Toy-based p-values; bands ordered from -2 sigma to +2 sigma as pyhf's."""

    cls_obs: Float[Array, ""]
    cls_exp: Float[Array, " 5"]
    clsb_obs: Float[Array, ""]
    clb_obs: Float[Array, ""]
    clsb_exp: Float[Array, " 5"]
    clb_exp: Float[Array, " 5"]
    teststat: Float[Array, ""]
    signal_teststats: Float[Array, " ntoys"]
    background_teststats: Float[Array, " ntoys"]
    status: Int[Array, ""]


def sample(
    structure: ModelStructure,
    yields: Yields,
    pars: Float[ArrayLike, " npars"],
    key: Array,
    shape: tuple[int, ...] = (),
) -> Float[Array, "*shape B+A"]:
    """Pseudo-data (main counts then auxiliary data) drawn from the model at ``pars``."""
    t = structure.tables
    pars = jnp.asarray(pars)
    k_main, k_gauss, k_pois = jax.random.split(key, 3)
    lam = expected_actualdata(structure, yields, pars)
    main = jax.random.poisson(k_main, lam, (*shape, lam.shape[0])).astype(jnp.float64)
    sigma, tau = constraint_widths(structure, yields)
    aux = jnp.zeros((*shape, structure.nauxdata))
    if len(t["gauss_par"]):
        noise = jax.random.normal(k_gauss, (*shape, len(t["gauss_par"])))
        aux = aux.at[..., t["gauss_pos"]].set(pars[t["gauss_par"]] + sigma * noise)
    if len(t["pois_par"]):
        rate = pars[t["pois_par"]] * tau
        draws = jax.random.poisson(k_pois, rate, (*shape, rate.shape[0])).astype(jnp.float64)
        aux = aux.at[..., t["pois_pos"]].set(draws)
    return jnp.concatenate([main, aux], axis=-1)


def _kind(test_stat: str) -> str:
    if test_stat not in _KINDS and test_stat not in TEST_STATISTICS:
        msg = f"unknown test statistic {test_stat!r}; use 'qtilde', 'q' or 'q0'"
        raise ModelError(msg)
    return _KINDS.get(test_stat, test_stat)


@jit(static_argnums=0, static_argnames=("test_stat", "batch_size", "options"))
def toy_teststats(
    structure: ModelStructure,
    yields: Yields,
    toys: Float[ArrayLike, "ntoys B+A"],
    poi_test: Float[ArrayLike, ""],
    start: Float[ArrayLike, " npars"],
    *,
    test_stat: str = "qtilde",
    bounds: ArrayLike | None = None,
    fixed: ArrayLike | None = None,
    batch_size: int = 16,
    options: Options = Options(),  # noqa: B008 (immutable)
) -> tuple[Array, Array]:
    """Test statistic of every toy (fits started at ``start``), and the worst fit status."""
    kind = _kind(test_stat)
    poi = structure.poi_index
    mu = 0.0 if kind == "q0" else poi_test
    _, bounds, fixed = resolve_fit_settings(structure, start, bounds, fixed)
    start = jnp.asarray(start, dtype=jnp.float64)
    inits = jnp.stack([start.at[poi].set(mu), start])
    masks = jnp.stack([fixed.at[poi].set(True), fixed])

    def one(data):
        fits = jax.vmap(lambda i, f: _fit(structure, yields, data, i, bounds, f, options))(
            inits, masks
        )
        t = clipped_difference(fits.twice_nll[0], fits.twice_nll[1])
        muhat = fits.bestfit[1, poi]
        if kind in ("qmu", "qmu_tilde"):
            t = jnp.where(muhat > mu, 0.0, t)
        elif kind == "q0":
            t = jnp.where(muhat < 0, 0.0, t)
        return t, jnp.max(fits.status)

    values, status = jax.lax.map(one, jnp.asarray(toys), batch_size=batch_size)
    return values, jnp.max(status)


def _pvalues(teststat, signal, background):
    clsb = jnp.mean(signal >= teststat)
    clb = jnp.mean(background >= teststat)
    return clsb, clb, clsb / clb


@jit(static_argnums=0, static_argnames=("ntoys", "test_stat", "batch_size", "options"))
def toy_hypotest(
    structure: ModelStructure,
    yields: Yields,
    data: Float[ArrayLike, " B+A"],
    poi_test: Float[ArrayLike, ""],
    key: Array,
    *,
    ntoys: int = 2000,
    test_stat: str = "qtilde",
    init: ArrayLike | None = None,
    bounds: ArrayLike | None = None,
    fixed: ArrayLike | None = None,
    batch_size: int = 16,
    options: Options = Options(),  # noqa: B008 (immutable)
) -> ToyResult:
    """Toy-based CLs of ``poi_test`` with ``ntoys`` signal and ``ntoys`` background toys."""
    kind = _kind(test_stat)
    poi = structure.poi_index
    if poi is None:
        msg = "a hypothesis test needs a parameter of interest; build the model with poi_name=..."
        raise ModelError(msg)
    data = jnp.asarray(data, dtype=jnp.float64)
    init, bounds, fixed = resolve_fit_settings(structure, init, bounds, fixed)
    signal_mu = 0.0 if kind == "q0" else poi_test
    background_mu = 1.0 if kind == "q0" else 0.0
    inits = jnp.stack([init.at[poi].set(signal_mu), init.at[poi].set(background_mu)])
    masks = jnp.broadcast_to(fixed.at[poi].set(True), (2, structure.npars))
    gen = jax.vmap(lambda i, f: _fit(structure, yields, data, i, bounds, f, options))(inits, masks)
    k_sig, k_bkg = jax.random.split(key)
    common = {"test_stat": test_stat, "bounds": bounds, "fixed": fixed, "batch_size": batch_size}
    common["options"] = options
    stats = []
    status = jnp.max(gen.status)
    for j, k in ((0, k_sig), (1, k_bkg)):
        toys = sample(structure, yields, gen.bestfit[j], k, (ntoys,))
        values, st = toy_teststats(structure, yields, toys, poi_test, gen.bestfit[j], **common)
        stats.append(values)
        status = jnp.maximum(status, st)
    observed, st = toy_teststats(structure, yields, data[None], poi_test, init, **common)
    observed = observed[0]
    clsb, clb, cls = _pvalues(observed, *stats)
    per_toy = jax.vmap(lambda q: jnp.stack(_pvalues(q, *stats)))(stats[1])
    band = jnp.percentile(per_toy, jnp.asarray(_PERCENTILES), axis=0, method="linear").T
    return ToyResult(
        cls_obs=cls,
        cls_exp=band[2],
        clsb_obs=clsb,
        clb_obs=clb,
        clsb_exp=band[0],
        clb_exp=band[1],
        teststat=observed,
        signal_teststats=stats[0],
        background_teststats=stats[1],
        status=jnp.maximum(status, st),
    )
