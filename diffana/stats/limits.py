r"""Upper limits on the POI: the smallest :math:`\mu` with :math:`\mathrm{CL}_s(\mu) \le \alpha`.

:func:`interpolated_limits` is pyhf's ``linear_grid_scan``: CLs on a grid, then linear
interpolation of :math:`\mu` as a function of CLs at the level. :func:`upper_limit` starts from such
a grid (one batched hypotest, sharing the free and Asimov-generating fits), brackets the crossing of
each of the six curves (observed and the -2..+2 sigma expected band) and refines all six at once by
safeguarded secant steps on :math:`\ln \mathrm{CL}_s` (Illinois variant of regula falsi), each step one
batched set of conditional fits. The refined limits carry implicit-function derivatives,
:math:`\mathrm{d}\mu^*/\mathrm{d}y = -(\partial \mathrm{CL}_s/\partial y)/(\partial \mathrm{CL}_s/\partial\mu)`,
so an expected limit can be an objective of the optimisation loop.

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
    >>> limit = upper_limit(m.structure, m.yields, data, jnp.linspace(0, 5, 11))
    >>> round(float(limit.obs), 4), int(limit.status)
    (1.0116, 0)
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from diffana.stats._jit import jit
from diffana.stats.asymptotics import HypotestResult, hypotest_scan, stages
from diffana.stats.fit import resolve_fit_settings
from diffana.stats.optimize import Options, Status
from diffana.stats.structure import ModelStructure
from diffana.stats.yields import Yields

__all__ = ["UpperLimit", "interpolated_limits", "upper_limit"]


class UpperLimit(NamedTuple):
    """Observed and expected (-2..+2 sigma) upper limits, the status, and the grid's tests."""

    obs: Float[Array, ""]
    exp: Float[Array, " 5"]
    status: Int[Array, ""]
    scan: Float[Array, " K"]
    results: HypotestResult


def _curves(result: HypotestResult) -> Array:
    """CLs of the six curves (observed, then the band), last axis = curve."""
    return jnp.concatenate([result.cls_obs[..., None], result.cls_exp], axis=-1)


def interpolated_limits(scan: ArrayLike, result: HypotestResult, level: float = 0.05) -> Array:
    """pyhf's grid limits: ``interp(level, CLs[::-1], scan[::-1])`` for each of the six curves."""
    scan = jnp.asarray(scan)
    curves = _curves(result)
    return jax.vmap(lambda c: jnp.interp(level, c[::-1], scan[::-1]), in_axes=1)(curves)


@jit(
    static_argnums=0,
    static_argnames=("level", "test_stat", "refine", "max_steps", "rtol", "options"),
)
def upper_limit(
    structure: ModelStructure,
    yields: Yields,
    data: Float[ArrayLike, " B+A"],
    scan: Float[ArrayLike, " K"],
    *,
    level: float = 0.05,
    test_stat: str = "qtilde",
    init: ArrayLike | None = None,
    bounds: ArrayLike | None = None,
    fixed: ArrayLike | None = None,
    refine: bool = True,
    rtol: float = 1e-8,
    max_steps: int = 40,
    options: Options = Options(),  # noqa: B008 (immutable)
) -> UpperLimit:
    """Observed and expected upper limits at CLs ``level``.

    Args:
        scan: increasing grid of POI values that brackets every crossing.
        refine: if False, return pyhf's linear interpolation on the grid.
        rtol: relative tolerance of the refined limits.

    The status is non-zero if a fit failed or a curve does not cross ``level`` inside the grid.
    """
    data = jnp.asarray(data, dtype=jnp.float64)
    scan = jnp.asarray(scan, dtype=jnp.float64)
    init, bounds, fixed = resolve_fit_settings(structure, init, bounds, fixed)
    kw = {"test_stat": test_stat, "init": init, "bounds": bounds, "fixed": fixed}
    grid = hypotest_scan(structure, yields, data, scan, options=options, **kw)
    curves = _curves(grid)
    crossing = (curves[:-1] >= level) & (curves[1:] < level)
    bracketed = jnp.any(crossing, axis=0)
    status = jnp.maximum(jnp.max(grid.status), jnp.where(jnp.all(bracketed), 0, Status.STALLED))
    if not refine:
        limits = interpolated_limits(scan, grid, level)
        return UpperLimit(limits[0], limits[1:], status, scan, grid)
    first = jnp.argmax(crossing, axis=0)
    args = (structure, yields, data, init, bounds, fixed, test_stat, options, level)
    lo, hi = scan[first], scan[first + 1]
    f_lo = jnp.log(curves[first, jnp.arange(6)] / level)
    f_hi = jnp.log(curves[first + 1, jnp.arange(6)] / level)
    roots, st = _refine(args, (lo, hi, f_lo, f_hi), rtol, max_steps)
    static = (structure, test_stat, options, level)
    roots = _implicit_root(static, roots, yields, data, init, bounds, fixed)
    limits = jnp.where(bracketed, roots, jnp.nan)
    return UpperLimit(limits[0], limits[1:], jnp.maximum(status, st), scan, grid)


def _evaluator(args):
    structure, yields, data, init, bounds, fixed, test_stat, options, level = args
    mus = jnp.zeros(6)
    st = stages(structure, yields, data, mus, test_stat, init, bounds, fixed, "normal", options)
    shared = st.run(st.first())

    def log_ratio(mus):
        cond = st.run(st.second(shared.bestfit[1], mus))
        result = st.finish(shared, cond, mus)
        values = jnp.diagonal(_curves(result))  # curve c at its own mu_c
        return jnp.log(values / level), jnp.max(result.status)

    return log_ratio


def _refine(args, bracket, rtol, max_steps):
    """Illinois regula falsi on ``ln(CLs / level)`` for the six curves at once."""
    stop = jax.lax.stop_gradient
    args = jax.tree.map(lambda x: stop(x) if isinstance(x, jax.Array) else x, args)
    log_ratio = _evaluator(args)

    def body(state):
        lo, hi, f_lo, f_hi, side, it, status = state
        mid = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        mid = jnp.where(jnp.isfinite(mid) & (mid > lo) & (mid < hi), mid, 0.5 * (lo + hi))
        f_mid, st = log_ratio(mid)
        above = f_mid >= 0  # root lies above mid
        new_lo = jnp.where(above, mid, lo)
        new_hi = jnp.where(above, hi, mid)
        # Illinois: halve the value kept at an end that stays twice in a row
        f_lo_new = jnp.where(above, f_mid, jnp.where(side < 0, 0.5 * f_lo, f_lo))
        f_hi_new = jnp.where(above, jnp.where(side > 0, 0.5 * f_hi, f_hi), f_mid)
        side = jnp.where(above, 1, -1).astype(jnp.int32)
        return new_lo, new_hi, f_lo_new, f_hi_new, side, it + 1, jnp.maximum(status, st)

    def cond(state):
        lo, hi = state[0], state[1]
        width = jnp.max(jnp.where(jnp.isfinite(hi - lo), (hi - lo) / jnp.maximum(hi, 1e-12), 0))
        return (width > rtol) & (state[5] < max_steps)

    lo, hi, f_lo, f_hi = bracket
    init = (lo, hi, f_lo, f_hi, jnp.zeros(6, jnp.int32), jnp.asarray(0), jnp.asarray(0, jnp.int32))
    lo, hi, f_lo, f_hi, _, it, status = jax.lax.while_loop(cond, body, init)
    root = jnp.where(jnp.abs(f_lo) < jnp.abs(f_hi), lo, hi)
    return root, jnp.where(it >= max_steps, Status.MAX_ITERATIONS, status)


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _implicit_root(static, roots, yields, data, init, bounds, fixed):
    del yields, data, init, bounds, fixed
    return roots


@_implicit_root.defjvp
def _implicit_root_jvp(static, primals, tangents):
    roots, yields, data, init, bounds, fixed = primals
    d_yields, d_data = tangents[1], tangents[2]
    structure, test_stat, options, level = static

    def curve(mus, y, d):
        inner = (structure, y, d, init, bounds, fixed, test_stat, options, level)
        return _evaluator(inner)(mus)[0]

    _, by_inputs = jax.jvp(lambda y, d: curve(roots, y, d), (yields, data), (d_yields, d_data))
    _, by_mu = jax.jvp(lambda m: curve(m, yields, data), (roots,), (jnp.ones_like(roots),))
    return roots, -by_inputs / by_mu
