"""pyhf-shaped upper limits: ``upper_limit``, ``linear_grid_scan``, ``toms748_scan``.

``upper_limit(data, model, scan)`` interpolates CLs on the grid as pyhf does; without a grid it
brackets and solves ``CLs(mu) = level`` with TOMS 748 (scipy, pyhf's tolerances) on the jit-compiled
hypotest. :func:`diffana.stats.limits.upper_limit` is the jit-compiled, differentiable counterpart.

Examples:
    >>> import numpy as np
    >>> from diffana.stats import Model
    >>> spec = {"channels": [{"name": "singlechannel", "samples": [
    ...     {"name": "signal", "data": [12.0, 11.0], "modifiers": [
    ...         {"name": "mu", "type": "normfactor", "data": None}]},
    ...     {"name": "background", "data": [50.0, 52.0], "modifiers": [
    ...         {"name": "uncorr_bkguncrt", "type": "shapesys", "data": [3.0, 7.0]}]}]}]}
    >>> model = Model(spec)
    >>> data = [51.0, 48.0] + model.config.auxdata
    >>> obs, exp = upper_limit(data, model, np.linspace(0, 5, 11))
    >>> round(float(obs), 6)  # pyhf at its default tolerance: 1.0262704738584554
    1.026276
"""

from __future__ import annotations

import jax
import numpy as np
from scipy.optimize import toms748

from diffana.stats import asymptotics
from diffana.stats.infer._common import as_data, check_status, fit_settings
from diffana.stats.limits import interpolated_limits

__all__ = ["linear_grid_scan", "toms748_scan", "upper_limit"]


def _hypotest_kwargs(model, kwargs):
    init, bounds, fixed = fit_settings(
        model,
        kwargs.pop("init_pars", None),
        kwargs.pop("par_bounds", None),
        kwargs.pop("fixed_params", None),
    )
    kwargs.pop("calctype", None)
    return {"init": init, "bounds": bounds, "fixed": fixed, **kwargs}


def _as_pyhf(result):
    """One test as pyhf's ``hypotest(..., return_expected_set=True)`` returns it."""
    return np.asarray(result.cls_obs), [np.asarray(x) for x in result.cls_exp]


def linear_grid_scan(data, model, scan, level=0.05, return_results=False, **hypotest_kwargs):
    """CLs on ``scan``, limits by linear interpolation (pyhf's ``linear_grid_scan``)."""
    kw = _hypotest_kwargs(model, hypotest_kwargs)
    scan = np.asarray(scan, dtype=float)
    result = asymptotics.hypotest_scan(
        model.structure, model.yields, as_data(data, model), scan, **kw
    )
    check_status(result.status, "a fit of the limit scan")
    limits = np.asarray(interpolated_limits(scan, result, level))
    obs, exp = limits[0], list(limits[1:])
    if return_results:
        per_point = [_as_pyhf(jax.tree.map(lambda x, i=i: x[i], result)) for i in range(len(scan))]
        return np.asarray(obs), [np.asarray(e) for e in exp], (scan, per_point)
    return np.asarray(obs), [np.asarray(e) for e in exp]


def toms748_scan(
    data,
    model,
    bounds_low,
    bounds_up,
    level=0.05,
    atol=2e-12,
    rtol=1e-4,
    from_upper_limit_fn=False,
    **hypotest_kwargs,
):
    """Solve ``CLs(mu) = level`` for the observed and expected curves (pyhf's ``toms748_scan``)."""
    kw = _hypotest_kwargs(model, hypotest_kwargs)
    data = as_data(data, model)
    cache: dict[float, tuple] = {}

    def evaluate(poi):
        if poi not in cache:
            result = asymptotics.hypotest(model.structure, model.yields, data, float(poi), **kw)
            check_status(result.status, f"a fit of the hypotest at {poi}")
            cache[poi] = _as_pyhf(result)
        return cache[poi]

    def f(poi, curve):
        obs, exp = evaluate(poi)
        return float((obs if curve == 0 else exp[curve - 1]) - level)

    def best_bracket(curve):
        keys = np.asarray(list(cache))
        values = np.asarray([f(k, curve) for k in keys])
        pos, neg = values >= 0, values < 0
        return keys[pos][np.argmin(values[pos])], keys[neg][np.argmax(values[neg])]

    low = evaluate(bounds_low)
    while np.any(np.asarray([low[0], *low[1]]) < level):
        bounds_low /= 2
        low = evaluate(bounds_low)
    up = evaluate(bounds_up)
    while np.any(np.asarray([up[0], *up[1]]) > level):
        bounds_up *= 2
        up = evaluate(bounds_up)
    options = {"k": 2, "xtol": atol, "rtol": rtol}
    obs = np.asarray(toms748(f, bounds_low, bounds_up, args=(0,), **options))
    exp = [np.asarray(toms748(f, *best_bracket(i), args=(i,), **options)) for i in range(1, 6)]
    if from_upper_limit_fn:
        return obs, exp, (list(cache), list(cache.values()))
    return obs, exp


def upper_limit(data, model, scan=None, level=0.05, return_results=False, **hypotest_kwargs):
    """Observed and expected upper limits (pyhf's ``infer.intervals.upper_limit``)."""
    if scan is not None:
        return linear_grid_scan(data, model, scan, level, return_results, **hypotest_kwargs)
    bounds = model.config.suggested_bounds()[model.config.poi_index]
    obs, exp, results = toms748_scan(
        data,
        model,
        bounds[0],
        bounds[1],
        level=level,
        from_upper_limit_fn=True,
        **hypotest_kwargs,
    )
    if return_results:
        return obs, exp, results
    return obs, exp
