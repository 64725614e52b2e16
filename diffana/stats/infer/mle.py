"""pyhf-shaped maximum-likelihood fits: ``fit``, ``fixed_poi_fit``, ``twice_nll``.

Same signatures and return conventions as ``pyhf.infer.mle`` (pyhf 0.7.6): the best-fit parameters,
optionally stacked with their uncertainties (as pyhf with MINUIT), followed by the correlation matrix
and the fitted ``twice_nll``. Results are NumPy arrays; a fit that does not converge raises
:class:`~diffana.errors.FitError` instead of returning a number.

Examples:
    >>> from diffana.stats import Model
    >>> spec = {"channels": [{"name": "sr", "samples": [
    ...     {"name": "sig", "data": [12.0, 11.0], "modifiers": [
    ...         {"name": "mu", "type": "normfactor", "data": None}]},
    ...     {"name": "bkg", "data": [50.0, 52.0], "modifiers": [
    ...         {"name": "unc", "type": "shapesys", "data": [3.0, 7.0]}]}]}]}
    >>> model = Model(spec)
    >>> data = [51.0, 48.0] + model.config.auxdata
    >>> bestfit, twice_nll = fit(data, model, return_fitted_val=True)
    >>> bestfit.round(6).tolist(), round(float(twice_nll), 6)
    ([0.0, 1.003051, 0.962681], 24.983935)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from diffana.errors import ModelError
from diffana.stats import fit as _fit
from diffana.stats._jit import jit
from diffana.stats.infer._common import as_data, check_status, fit_settings
from diffana.stats.optimize import Options

__all__ = ["fit", "fixed_poi_fit", "twice_nll"]

_uncertainties = jit(_fit.parameter_uncertainties, static_argnums=0)


def options_from_kwargs(kwargs: dict) -> Options:
    """``options=Options(...)`` or pyhf's ``maxiter``/``tolerance`` keywords as :class:`Options`."""
    options = kwargs.pop("options", Options())
    if "maxiter" in kwargs:
        options = dataclasses.replace(options, maxiter=int(kwargs.pop("maxiter")))
    if "tolerance" in kwargs:
        tol = kwargs.pop("tolerance")
        if tol is not None:
            options = dataclasses.replace(options, tol=float(tol))
    if kwargs:
        msg = f"unsupported fit options {sorted(kwargs)}; use options=Options(maxiter=..., tol=...)"
        raise ModelError(msg)
    return options


def twice_nll(pars, data, pdf):
    r"""Twice the negative log-likelihood, :math:`-2\ln L`, shape ``(1,)`` as pyhf's."""
    return -2 * pdf.logpdf(pars, data)


def _returns(
    result,
    data,
    pdf,
    fixed,
    return_uncertainties,
    return_correlations,
    return_fitted_val,
    return_result_obj,
):
    check_status(result.status, "the maximum-likelihood fit")
    bestfit = np.asarray(result.bestfit)
    out = [bestfit]
    if return_uncertainties or return_correlations:
        sigma, corr = _uncertainties(pdf.structure, pdf.yields, result.bestfit, data, fixed)
        if return_uncertainties:
            out[0] = np.stack([bestfit, np.asarray(sigma)], axis=1)
        if return_correlations:
            out.append(np.asarray(corr))
    if return_fitted_val:
        out.append(np.asarray(result.twice_nll))
    if return_result_obj:
        out.append(result)
    return tuple(out) if len(out) > 1 else out[0]


def fit(
    data,
    pdf,
    init_pars=None,
    par_bounds=None,
    fixed_params=None,
    *,
    return_uncertainties: bool = False,
    return_correlations: bool = False,
    return_fitted_val: bool = False,
    return_result_obj: bool = False,
    **kwargs,
):
    """Maximum-likelihood fit (pyhf's ``infer.mle.fit``).

    Returns:
        ``bestfit`` (``(n, 2)`` with uncertainties if ``return_uncertainties``), then the
        correlation matrix, the fitted ``twice_nll`` and the :class:`~diffana.stats.fit.FitResult`
        when asked for, in that order.

    Raises:
        FitError: the fit did not converge.
    """
    options = options_from_kwargs(kwargs)
    data = as_data(data, pdf)
    init, bounds, fixed = fit_settings(pdf, init_pars, par_bounds, fixed_params)
    result = _fit.fit(
        pdf.structure, pdf.yields, data, init=init, bounds=bounds, fixed=fixed, options=options
    )
    flags = (return_uncertainties, return_correlations, return_fitted_val, return_result_obj)
    return _returns(result, data, pdf, fixed, *flags)


def fixed_poi_fit(
    poi_val,
    data,
    pdf,
    init_pars=None,
    par_bounds=None,
    fixed_params=None,
    **kwargs,
):
    """Fit with the POI held at ``poi_val`` (pyhf's ``infer.mle.fixed_poi_fit``)."""
    if pdf.config.poi_index is None:
        msg = "no POI is defined; a POI is required to fit with a fixed POI (set poi_name)"
        raise ModelError(msg)
    init = list(pdf.config.suggested_init() if init_pars is None else init_pars)
    fixed = list(pdf.config.suggested_fixed() if fixed_params is None else fixed_params)
    init[pdf.config.poi_index] = float(poi_val)
    fixed[pdf.config.poi_index] = True
    return fit(data, pdf, init, par_bounds, fixed, **kwargs)
