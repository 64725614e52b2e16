r"""pyhf-shaped inference: ``hypotest``, ``mle``, ``intervals``, ``test_statistics``, ``calculators``.

A pyhf script keeps working after changing ``pyhf.infer`` to ``diffana.stats.infer``: same
arguments, same return conventions (pyhf 0.7.6, NumPy backend). Fits that do not converge raise
:class:`~diffana.errors.FitError`.

Examples:
    >>> from diffana.stats import Model
    >>> spec = {"channels": [{"name": "singlechannel", "samples": [
    ...     {"name": "signal", "data": [12.0, 11.0], "modifiers": [
    ...         {"name": "mu", "type": "normfactor", "data": None}]},
    ...     {"name": "background", "data": [50.0, 52.0], "modifiers": [
    ...         {"name": "uncorr_bkguncrt", "type": "shapesys", "data": [3.0, 7.0]}]}]}]}
    >>> model = Model(spec)
    >>> data = [51.0, 48.0] + model.config.auxdata
    >>> cls_obs, cls_exp = hypotest(1.0, data, model, test_stat="qtilde", return_expected_set=True)
    >>> round(float(cls_obs), 6), [round(float(x), 6) for x in cls_exp]
    (0.052516, [0.002606, 0.013821, 0.064455, 0.235261, 0.573042])
"""

from __future__ import annotations

import numpy as np

from diffana.errors import ModelError
from diffana.stats.infer import calculators, intervals, mle, test_statistics
from diffana.stats.infer.calculators import AsymptoticCalculator, ToyCalculator

__all__ = ["calculators", "hypotest", "intervals", "mle", "test_statistics"]

_CALCULATORS = {"asymptotics": AsymptoticCalculator, "toybased": ToyCalculator}


def hypotest(
    poi_test,
    data,
    pdf,
    init_pars=None,
    par_bounds=None,
    fixed_params=None,
    calctype: str = "asymptotics",
    return_tail_probs: bool = False,
    return_expected: bool = False,
    return_expected_set: bool = False,
    return_calculator: bool = False,
    **kwargs,
):
    r"""p-values of one POI value (pyhf's ``infer.hypotest``).

    :math:`\mathrm{CL}_s = \mathrm{CL}_{s+b}/\mathrm{CL}_b` (arXiv:1007.1727; Read, J. Phys. G 28
    (2002) 2693) from the asymptotic formulae or from toys (``calctype="toybased"``, keywords
    ``ntoys``, ``seed``, ``batch_size``). For ``test_stat="q0"`` the first value is
    :math:`p_0 = \mathrm{CL}_{s+b}`.

    Returns:
        ``CLs_obs``, then ``[CLsb, CLb]`` (``return_tail_probs``), ``CLs_exp`` (``return_expected``),
        the five-point band from -2 to +2 sigma (``return_expected_set``) and the calculator
        (``return_calculator``), as pyhf.
    """
    if calctype not in _CALCULATORS:
        msg = f"unknown calctype {calctype!r}; use 'asymptotics' or 'toybased'"
        raise ModelError(msg)
    if pdf.config.poi_index is None:
        msg = "the model has no parameter of interest; build it with poi_name=..."
        raise ModelError(msg)
    calc = _CALCULATORS[calctype](data, pdf, init_pars, par_bounds, fixed_params, **kwargs)
    teststat = calc.teststatistic(poi_test)
    sig_plus_bkg, bkg_only = calc.distributions(poi_test)
    clsb_obs, clb_obs, cls_obs = calc.pvalues(teststat, sig_plus_bkg, bkg_only)
    clsb_exp, _, cls_exp = calc.expected_pvalues(sig_plus_bkg, bkg_only)
    is_q0 = calc.test_stat == "q0"
    out = [np.asarray(clsb_obs if is_q0 else cls_obs)]
    if return_tail_probs:
        out.append([np.asarray(clb_obs)] if is_q0 else [np.asarray(clsb_obs), np.asarray(clb_obs)])
    band = [np.asarray(p) for p in (clsb_exp if is_q0 else cls_exp)]
    if return_expected:
        out.append(band[2])
    if return_expected_set:
        out.append(band)
    if return_calculator:
        out.append(calc)
    return tuple(out) if len(out) > 1 else out[0]
