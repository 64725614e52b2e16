r"""Asymptotic CLs hypothesis tests with pyhf's conventions (arXiv:1007.1727, Wald approximation).

For a tested POI value :math:`\mu`:

1. fit the data freely and with the POI fixed at the Asimov value (0 for limits, 1 for discovery);
   the latter gives :math:`\hat{\hat\theta}_A` and the Asimov data set
   :math:`A = \mathrm{expected\_data}(\mu_A, \hat{\hat\theta}_A)`, auxiliary data included (pyhf's
   convention: nuisance parameters profiled on the observed data);
2. :math:`q = q(\mu; \mathrm{data})` and :math:`q_A = q(\mu; A)`; the free fit to :math:`A` is exactly
   :math:`\hat{\hat\theta}_A` (every likelihood term is saturated there), so it is not re-run;
3. in the "asymptotic" variable :math:`t = \sqrt q - \sqrt{q_A}` (for ``q``, ``q0``; for
   :math:`\tilde q`, :math:`(q - q_A)/(2\sqrt{q_A})` when :math:`\sqrt q > \sqrt{q_A}`, Eq. 66):
   :math:`\mathrm{CL}_{s+b} = \Phi(-(t + \sqrt{q_A}))`, :math:`\mathrm{CL}_b = \Phi(-t)`,
   :math:`\mathrm{CL}_s = \mathrm{CL}_{s+b}/\mathrm{CL}_b`;
4. the expected band puts :math:`t = n \in (2, 1, 0, -1, -2)`, i.e. CLs at
   :math:`(-2\sigma, \dots, +2\sigma)` (Eq. 89).

Everything is one pure function of (structure, yields, data, POI): jit once per structure, vmap over
POI values (:func:`hypotest_scan` shares the free and Asimov-generating fits), differentiate with
respect to yields and data (envelope theorem for the profiled values, implicit differentiation for
the Asimov data's dependence on :math:`\hat{\hat\theta}_A`).

Examples:
    >>> import jax.numpy as jnp
    >>> from diffana.stats import Model
    >>> spec = {"channels": [{"name": "singlechannel", "samples": [
    ...     {"name": "signal", "data": [12.0, 11.0], "modifiers": [
    ...         {"name": "mu", "type": "normfactor", "data": None}]},
    ...     {"name": "background", "data": [50.0, 52.0], "modifiers": [
    ...         {"name": "uncorr_bkguncrt", "type": "shapesys", "data": [3.0, 7.0]}]}]}]}
    >>> m = Model(spec)
    >>> data = jnp.array([51.0, 48.0] + m.config.auxdata)
    >>> r = hypotest(m.structure, m.yields, data, 1.0)
    >>> round(float(r.cls_obs), 6), [round(float(x), 6) for x in r.cls_exp]
    (0.052516, [0.002606, 0.013821, 0.064455, 0.235261, 0.573042])
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, ArrayLike, Float, Int

from diffana.errors import ModelError
from diffana.stats._jit import jit
from diffana.stats.fit import FitResult, _fit, resolve_fit_settings
from diffana.stats.likelihood import expected_data, twice_nll
from diffana.stats.optimize import Options
from diffana.stats.structure import ModelStructure
from diffana.stats.teststat import clipped_difference
from diffana.stats.yields import Yields

__all__ = ["ASYMPTOTIC_TEST_STATS", "HypotestResult", "hypotest", "hypotest_scan", "pvalues"]

ASYMPTOTIC_TEST_STATS = ("qtilde", "q", "q0")
_NSIGMA = (2.0, 1.0, 0.0, -1.0, -2.0)


class HypotestResult(NamedTuple):
    """Asymptotic p-values of one tested POI value (leading axis = POI values for scans).

    ``cls_exp``, ``clsb_exp``, ``clb_exp`` are ordered from -2 sigma to +2 sigma, as pyhf's band.
    For ``q0``, pyhf reports ``clsb_obs`` (the discovery p-value) and ``clsb_exp``.
    """

    cls_obs: Float[Array, ""]
    cls_exp: Float[Array, " 5"]
    clsb_obs: Float[Array, ""]
    clb_obs: Float[Array, ""]
    clsb_exp: Float[Array, " 5"]
    clb_exp: Float[Array, " 5"]
    teststat: Float[Array, ""]
    q_obs: Float[Array, ""]
    q_asimov: Float[Array, ""]
    status: Int[Array, ""]


def _normal_cdf(x: Array) -> Array:
    """Standard normal CDF as ``erfc(-x/sqrt 2)/2``: relative precision in both tails, one kernel."""
    return 0.5 * lax.erfc(-x * 0.7071067811865476)


def _safe_sqrt(x: Array) -> Array:
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def pvalues(q: Array, q_asimov: Array, test_stat: str, calc_base_dist: str = "normal"):
    """CLs+b, CLb, CLs of the observed and of the expected (-2..+2 sigma) test statistic.

    Returns:
        ``(teststat, (clsb, clb, cls), (clsb_exp, clb_exp, cls_exp))`` in the asymptotic variable.
    """
    sqrt_q, sqrt_qa = _safe_sqrt(q), _safe_sqrt(q_asimov)
    if test_stat in ("q", "q0"):
        t = sqrt_q - sqrt_qa
    else:
        safe_qa = jnp.where(sqrt_qa > 0, sqrt_qa, 1.0)
        t = jnp.where(sqrt_q <= sqrt_qa, sqrt_q - sqrt_qa, (q - q_asimov) / (2 * safe_qa))
    cutoff = -sqrt_qa if calc_base_dist == "clipped_normal" else -jnp.inf
    values = jnp.concatenate([t[None], jnp.maximum(jnp.asarray(_NSIGMA), cutoff)])
    # one normal CDF call for the 12 tail probabilities
    tails = _normal_cdf(-jnp.concatenate([values + sqrt_qa, values]))
    valid = values >= cutoff
    clsb = jnp.where(valid, tails[:6], jnp.nan)
    clb = jnp.where(valid, tails[6:], jnp.nan)
    cls = clsb / clb
    return t, (clsb[0], clb[0], cls[0]), (clsb[1:], clb[1:], cls[1:])


def _check(structure: ModelStructure, test_stat: str) -> int:
    if test_stat not in ASYMPTOTIC_TEST_STATS:
        msg = f"unknown test statistic {test_stat!r}; use 'qtilde', 'q' or 'q0'"
        raise ModelError(msg)
    if structure.poi_index is None:
        msg = "a hypothesis test needs a parameter of interest; build the model with poi_name=..."
        raise ModelError(msg)
    return structure.poi_index


def _batched_fit(structure, yields, data, inits, bounds, fixeds, options) -> FitResult:
    in_axes = (0 if data.ndim == 2 else None, 0, None, 0)
    return jax.vmap(
        lambda d, i, b, f: _fit(structure, yields, d, i, b, f, options), in_axes=in_axes
    )(data, inits, bounds, fixeds)


class Stages(NamedTuple):
    """The two fit stages of an asymptotic test, as closures (see :func:`hypotest_scan`)."""

    first: object
    second: object
    run: object
    finish: object


def stages(structure, yields, data, pois, test_stat, init, bounds, fixed, calc_base_dist, options):
    """Stage 1: free and Asimov-generating fits; stage 2: conditional fits at ``pois``; finish."""
    poi = _check(structure, test_stat)
    asimov_mu = 1.0 if test_stat == "q0" else 0.0
    k = pois.shape[0]
    fixed_poi = jnp.broadcast_to(fixed.at[poi].set(True), (2 * k, structure.npars))

    def first():
        """Free fit and Asimov-generating fit to the data."""
        starts = jnp.stack([init, init.at[poi].set(asimov_mu)])
        masks = jnp.stack([fixed, fixed.at[poi].set(True)])
        return jnp.broadcast_to(data, (2, data.size)), starts, masks

    def second(gen_x, mus=pois):
        """Conditional fits at every POI value to data and to Asimov data.

        Like pyhf, every fit starts at ``init`` (with the POI at its value): on a likelihood with
        several local minima the start decides which one a fit finds, and this one is pyhf's.
        """
        asimov = expected_data(structure, yields, gen_x)
        datasets = jnp.concatenate(
            [jnp.broadcast_to(data, (k, data.size)), jnp.broadcast_to(asimov, (k, data.size))]
        )
        starts = jnp.broadcast_to(init, (2 * k, structure.npars)).at[:, poi].set(jnp.tile(mus, 2))
        return datasets, starts, fixed_poi

    def run(inputs) -> FitResult:
        return _batched_fit(structure, yields, inputs[0], inputs[1], bounds, inputs[2], options)

    def finish(shared: FitResult, cond: FitResult, mus=pois, asimov=None) -> HypotestResult:
        """The test statistics and p-values (``asimov``: the Asimov data, if already made)."""
        free, gen = (jax.tree.map(lambda x, j=j: x[j], shared) for j in range(2))
        if asimov is None:
            asimov = expected_data(structure, yields, gen.bestfit)
        free_asimov = twice_nll(structure, yields, jax.lax.stop_gradient(gen.bestfit), asimov)
        q = clipped_difference(cond.twice_nll[:k], free.twice_nll)
        q_asimov = clipped_difference(cond.twice_nll[k:], free_asimov)
        if test_stat == "q0":
            q = jnp.where(free.bestfit[poi] < 0, 0.0, q)
        else:
            q = jnp.where(free.bestfit[poi] > mus, 0.0, q)
            q_asimov = jnp.where(asimov_mu > mus, 0.0, q_asimov)
        t, obs, exp = jax.vmap(lambda a, b: pvalues(a, b, test_stat, calc_base_dist))(q, q_asimov)
        status = jnp.maximum(
            jnp.maximum(free.status, gen.status),
            jnp.maximum(cond.status[:k], cond.status[k:]),
        )
        return HypotestResult(
            obs[2], exp[2], obs[0], obs[1], exp[0], exp[1], t, q, q_asimov, status
        )

    return Stages(first, second, run, finish)


@jit(static_argnums=0, static_argnames=("test_stat", "calc_base_dist", "options"))
def hypotest_scan(
    structure: ModelStructure,
    yields: Yields,
    data: Float[ArrayLike, " B+A"],
    pois: Float[ArrayLike, " K"],
    *,
    test_stat: str = "qtilde",
    init: ArrayLike | None = None,
    bounds: ArrayLike | None = None,
    fixed: ArrayLike | None = None,
    calc_base_dist: str = "normal",
    options: Options = Options(),  # noqa: B008 (immutable)
) -> HypotestResult:
    """Asymptotic hypothesis tests of every POI value in ``pois`` (fields get a leading axis).

    The free fit and the Asimov-generating fit are shared by all POI values; the conditional fits
    to data and to the Asimov data set run as one batched solve.
    """
    _check(structure, test_stat)
    pois = jnp.atleast_1d(jnp.asarray(pois, dtype=jnp.float64))
    if test_stat == "q0":
        pois = jnp.zeros_like(pois)
    data = jnp.asarray(data, dtype=jnp.float64)
    init, bounds, fixed = resolve_fit_settings(structure, init, bounds, fixed)
    st = stages(
        structure, yields, data, pois, test_stat, init, bounds, fixed, calc_base_dist, options
    )
    if pois.shape[0] == 1:
        # the four fits one after the other through one traced solver (no vmap: its batching of
        # the solver's loops is most of the tracing time)
        def stage(gen_x, j):
            first, second = st.first(), st.second(gen_x)
            data_j, start_j, mask_j = (
                jnp.concatenate([a, b])[j] for a, b in zip(first, second, strict=True)
            )
            result = _fit(structure, yields, data_j, start_j, bounds, mask_j, options)
            return jnp.where(j == 1, result.bestfit, gen_x), (result, second[0][1])

        _, (fits, asimov) = jax.lax.scan(stage, init, jnp.arange(4))
        shared, cond = (jax.tree.map(lambda x, j=j: x[2 * j : 2 * j + 2], fits) for j in range(2))
        # the Asimov data of the last two steps, made from the Asimov-generating fit's result
        return st.finish(shared, cond, asimov=asimov[3])
    shared = st.run(st.first())
    cond = st.run(st.second(shared.bestfit[1]))
    return st.finish(shared, cond)


@jit(static_argnums=0, static_argnames=("test_stat", "calc_base_dist", "options"))
def hypotest(
    structure: ModelStructure,
    yields: Yields,
    data: Float[ArrayLike, " B+A"],
    poi_test: Float[ArrayLike, ""],
    **kwargs,
) -> HypotestResult:
    """Asymptotic hypothesis test of one POI value (keywords as :func:`hypotest_scan`)."""
    result = hypotest_scan(structure, yields, data, jnp.reshape(poi_test, (1,)), **kwargs)
    return jax.tree.map(lambda x: x[0], result)
