r"""pyhf-shaped calculators: ``AsymptoticCalculator`` and ``ToyCalculator``.

They expose pyhf's methods (``teststatistic``, ``distributions``, ``pvalues``, ``expected_pvalues``)
over the functional core (:mod:`diffana.stats.asymptotics`, :mod:`diffana.stats.toys`), so code
written against ``pyhf.infer.calculators`` keeps working. The asymptotic distributions are those of
arXiv:1007.1727 in the :math:`\sqrt{q}` variable (pyhf's ``AsymptoticTestStatDistribution``).

Examples:
    >>> from diffana.stats import Model
    >>> spec = {"channels": [{"name": "sr", "samples": [
    ...     {"name": "sig", "data": [12.0, 11.0], "modifiers": [
    ...         {"name": "mu", "type": "normfactor", "data": None}]},
    ...     {"name": "bkg", "data": [50.0, 52.0], "modifiers": [
    ...         {"name": "unc", "type": "shapesys", "data": [3.0, 7.0]}]}]}]}
    >>> model = Model(spec)
    >>> calc = AsymptoticCalculator([51.0, 48.0] + model.config.auxdata, model)
    >>> round(float(calc.teststatistic(1.0)), 6)
    0.140446
"""

from __future__ import annotations

import jax
import numpy as np
from scipy.special import ndtr

from diffana.errors import ModelError
from diffana.stats import asymptotics, toys
from diffana.stats.infer._common import as_data, check_status, fit_settings

__all__ = [
    "AsymptoticCalculator",
    "AsymptoticTestStatDistribution",
    "EmpiricalDistribution",
    "ToyCalculator",
]

_NSIGMA = (2, 1, 0, -1, -2)


class AsymptoticTestStatDistribution:
    """Normal distribution of the asymptotic test statistic, shifted by ``shift``."""

    def __init__(self, shift, cutoff=float("-inf")) -> None:
        self.shift = shift
        self.cutoff = cutoff

    def cdf(self, value):
        return np.asarray(ndtr(value - self.shift))

    def pvalue(self, value):
        p = np.asarray(ndtr(-(value - self.shift)))
        return np.where(np.asarray(value) >= self.cutoff, p, np.nan)

    def expected_value(self, nsigma):
        return np.asarray(max(self.shift + nsigma, self.cutoff))


class EmpiricalDistribution:
    """Distribution of sampled test statistics."""

    def __init__(self, samples) -> None:
        self.samples = np.ravel(np.asarray(samples))

    def pvalue(self, value):
        return np.asarray(np.mean(self.samples >= value))

    def expected_value(self, nsigma):
        return np.percentile(self.samples, ndtr(nsigma) * 100, method="linear")


class _Base:
    def __init__(
        self, data, pdf, init_pars=None, par_bounds=None, fixed_params=None, test_stat="qtilde"
    ) -> None:
        if test_stat not in ("qtilde", "q", "q0"):
            msg = f"unknown test statistic {test_stat!r}; use 'qtilde', 'q' or 'q0'"
            raise ModelError(msg)
        self.data = data
        self.pdf = pdf
        self.test_stat = test_stat
        self._data = as_data(data, pdf)
        self._init, self._bounds, self._fixed = fit_settings(
            pdf, init_pars, par_bounds, fixed_params
        )
        self.result = None

    def pvalues(self, teststat, sig_plus_bkg_distribution, bkg_only_distribution):
        clsb = sig_plus_bkg_distribution.pvalue(teststat)
        clb = bkg_only_distribution.pvalue(teststat)
        return clsb, clb, np.asarray(clsb / clb)


class AsymptoticCalculator(_Base):
    """pyhf's asymptotic calculator (Asimov data from the background-only fit to the data)."""

    def __init__(
        self,
        data,
        pdf,
        init_pars=None,
        par_bounds=None,
        fixed_params=None,
        test_stat="qtilde",
        calc_base_dist="normal",
    ) -> None:
        super().__init__(data, pdf, init_pars, par_bounds, fixed_params, test_stat)
        if calc_base_dist not in ("normal", "clipped_normal"):
            msg = f"unknown base distribution {calc_base_dist!r}; use 'normal' or 'clipped_normal'"
            raise ModelError(msg)
        self.calc_base_dist = calc_base_dist
        self.sqrtqmuA_v = None

    def teststatistic(self, poi_test):
        """Observed test statistic in the asymptotic variable (runs the fits)."""
        result = asymptotics.hypotest(
            self.pdf.structure,
            self.pdf.yields,
            self._data,
            float(poi_test),
            test_stat=self.test_stat,
            init=self._init,
            bounds=self._bounds,
            fixed=self._fixed,
            calc_base_dist=self.calc_base_dist,
        )
        check_status(result.status, "a fit of the hypothesis test")
        self.result = jax.tree.map(np.asarray, result)
        self.sqrtqmuA_v = np.sqrt(self.result.q_asimov)
        return self.result.teststat

    def distributions(self, poi_test):
        if self.sqrtqmuA_v is None:
            msg = "call .teststatistic(poi_test) before .distributions(poi_test)"
            raise ModelError(msg)
        cutoff = -self.sqrtqmuA_v if self.calc_base_dist == "clipped_normal" else float("-inf")
        return (
            AsymptoticTestStatDistribution(-self.sqrtqmuA_v, cutoff),
            AsymptoticTestStatDistribution(0.0, cutoff),
        )

    def expected_pvalues(self, sig_plus_bkg_distribution, bkg_only_distribution):
        values = [bkg_only_distribution.expected_value(n) for n in _NSIGMA]
        per_value = [
            self.pvalues(v, sig_plus_bkg_distribution, bkg_only_distribution) for v in values
        ]
        return [list(band) for band in zip(*per_value, strict=True)]


class ToyCalculator(_Base):
    """pyhf's toy calculator; ``seed`` (or ``key``) makes it reproducible."""

    def __init__(
        self,
        data,
        pdf,
        init_pars=None,
        par_bounds=None,
        fixed_params=None,
        test_stat="qtilde",
        ntoys=2000,
        track_progress=False,
        seed=0,
        key=None,
        batch_size=16,
    ) -> None:
        super().__init__(data, pdf, init_pars, par_bounds, fixed_params, test_stat)
        del track_progress  # toys run as one compiled program
        self.ntoys = int(ntoys)
        self.key = jax.random.key(seed) if key is None else key
        self.batch_size = int(batch_size)
        self._poi = None

    def _run(self, poi_test):
        if self.result is None or self._poi != poi_test:
            result = toys.toy_hypotest(
                self.pdf.structure,
                self.pdf.yields,
                self._data,
                float(poi_test),
                self.key,
                ntoys=self.ntoys,
                test_stat=self.test_stat,
                init=self._init,
                bounds=self._bounds,
                fixed=self._fixed,
                batch_size=self.batch_size,
            )
            check_status(result.status, "a toy fit")
            self.result = jax.tree.map(np.asarray, result)
            self._poi = poi_test
        return self.result

    def teststatistic(self, poi_test):
        return self._run(poi_test).teststat

    def distributions(self, poi_test, track_progress=None):
        del track_progress
        result = self._run(poi_test)
        return (
            EmpiricalDistribution(result.signal_teststats),
            EmpiricalDistribution(result.background_teststats),
        )

    def expected_pvalues(self, sig_plus_bkg_distribution, bkg_only_distribution):
        pvalues = np.asarray(
            [
                self.pvalues(q, sig_plus_bkg_distribution, bkg_only_distribution)
                for q in bkg_only_distribution.samples
            ]
        )
        percentiles = [2.27501319, 15.86552539, 50.0, 84.13447461, 97.72498681]
        band = np.percentile(pvalues, percentiles, axis=0, method="linear").T
        return [[np.asarray(p) for p in row] for row in band]
