r"""pyhf-shaped profile-likelihood test statistics (arXiv:1007.1727).

``q0``, ``qmu``, ``qmu_tilde``, ``tmu``, ``tmu_tilde`` with the signatures of
``pyhf.infer.test_statistics``; each returns a 0-d NumPy array, and with ``return_fitted_pars`` also
the conditional and unconditional best-fit parameters. The computations are those of
:mod:`diffana.stats.teststat` (jit-compiled once per model structure).

Examples:
    >>> from diffana.stats import Model
    >>> spec = {"channels": [{"name": "sr", "samples": [
    ...     {"name": "sig", "data": [12.0, 11.0], "modifiers": [
    ...         {"name": "mu", "type": "normfactor", "data": None}]},
    ...     {"name": "bkg", "data": [50.0, 52.0], "modifiers": [
    ...         {"name": "unc", "type": "shapesys", "data": [3.0, 7.0]}]}]}]}
    >>> model = Model(spec)
    >>> round(float(qmu_tilde(1.0, [51.0, 48.0] + model.config.auxdata, model)), 4)
    3.9382
"""

from __future__ import annotations

import logging

import numpy as np

from diffana.errors import ModelError
from diffana.stats import teststat
from diffana.stats.infer._common import as_data, check_status, fit_settings

__all__ = ["q0", "qmu", "qmu_tilde", "tmu", "tmu_tilde"]

log = logging.getLogger(__name__)


def _compute(kind, mu, data, pdf, init_pars, par_bounds, fixed_params, return_fitted_pars):
    if pdf.config.poi_index is None:
        msg = "no POI is defined; a POI is required for profile likelihood based test statistics"
        raise ModelError(msg)
    init, bounds, fixed = fit_settings(pdf, init_pars, par_bounds, fixed_params)
    lower = float(bounds[pdf.config.poi_index][0])
    if kind in ("qmu", "tmu") and lower == 0:
        log.warning("%s used with the POI bounded at zero; use %s_tilde instead", kind, kind)
    if kind in ("qmu_tilde", "tmu_tilde") and lower != 0:
        log.warning("%s used with the POI not bounded at zero; use %s instead", kind, kind[:-6])
    if kind == "q0" and mu != 0:
        log.warning("q0 is only defined at mu = 0; setting mu = 0")
    value, fits = teststat.statistic(
        kind,
        pdf.structure,
        pdf.yields,
        as_data(data, pdf),
        float(mu),
        init=init,
        bounds=bounds,
        fixed=fixed,
    )
    check_status(np.maximum(fits.fixed_poi.status, fits.free.status), f"the {kind} fits")
    value = np.asarray(value)
    if return_fitted_pars:
        return value, (np.asarray(fits.fixed_poi.bestfit), np.asarray(fits.free.bestfit))
    return value


def qmu(
    mu, data, pdf, init_pars=None, par_bounds=None, fixed_params=None, return_fitted_pars=False
):
    r""":math:`q_\mu` (Eq. 14): :math:`t_\mu`, but zero when :math:`\hat\mu > \mu`."""
    return _compute("qmu", mu, data, pdf, init_pars, par_bounds, fixed_params, return_fitted_pars)


def qmu_tilde(
    mu, data, pdf, init_pars=None, par_bounds=None, fixed_params=None, return_fitted_pars=False
):
    r""":math:`\tilde q_\mu` (Eq. 16): :math:`q_\mu` with the POI bounded below at zero."""
    return _compute(
        "qmu_tilde", mu, data, pdf, init_pars, par_bounds, fixed_params, return_fitted_pars
    )


def tmu(
    mu, data, pdf, init_pars=None, par_bounds=None, fixed_params=None, return_fitted_pars=False
):
    r""":math:`t_\mu = -2\ln\lambda(\mu)` (Eq. 8)."""
    return _compute("tmu", mu, data, pdf, init_pars, par_bounds, fixed_params, return_fitted_pars)


def tmu_tilde(
    mu, data, pdf, init_pars=None, par_bounds=None, fixed_params=None, return_fitted_pars=False
):
    r""":math:`\tilde t_\mu` (Eq. 11): :math:`t_\mu` with the POI bounded below at zero."""
    return _compute(
        "tmu_tilde", mu, data, pdf, init_pars, par_bounds, fixed_params, return_fitted_pars
    )


def q0(mu, data, pdf, init_pars=None, par_bounds=None, fixed_params=None, return_fitted_pars=False):
    r""":math:`q_0` (Eq. 12): discovery test statistic, zero when :math:`\hat\mu < 0`."""
    return _compute("q0", 0.0, data, pdf, init_pars, par_bounds, fixed_params, return_fitted_pars)
