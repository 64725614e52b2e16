"""The pieces of the event generator against analytic truths."""

from __future__ import annotations

import numpy as np
import pytest

from diffana.datasets.kinematics import (
    from_pt_eta_phi_m,
    logistic_cdf,
    logistic_eta,
    lomax,
    lomax_sf,
    pt_eta_phi_m,
    two_body_decay,
)
from diffana.datasets.processes import _W_INCLUSIVE, decay_modes
from diffana.datasets.samples import JetSource
from diffana.datasets.sources import complete_jets, count_jets, draw_jets


def test_two_body_decays_conserve_four_momentum_and_give_the_daughter_masses():
    rng = np.random.default_rng(1)
    n = 1000
    parent = from_pt_eta_phi_m(
        rng.uniform(0, 500, n), rng.normal(0, 2, n), rng.uniform(-3, 3, n), np.full(n, 172.5)
    )
    d1, d2 = two_body_decay(parent, 80.4, 4.8, rng)
    total = d1 + d2
    for a, b in zip(total, parent, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(d1.mass, 80.4, rtol=1e-6)
    np.testing.assert_allclose(d2.mass, 4.8, rtol=1e-4)
    # the momentum in the rest frame is p* = sqrt((M^2-(m1+m2)^2)(M^2-(m1-m2)^2)) / 2M
    at_rest = from_pt_eta_phi_m(np.zeros(n), np.zeros(n), np.zeros(n), np.full(n, 172.5))
    r1, _ = two_body_decay(at_rest, 80.4, 4.8, rng)
    m, a, b = 172.5, 80.4, 4.8
    pstar = np.sqrt((m**2 - (a + b) ** 2) * (m**2 - (a - b) ** 2)) / (2 * m)
    np.testing.assert_allclose(np.sqrt(r1.px**2 + r1.py**2 + r1.pz**2), pstar, rtol=1e-9)


def test_pt_eta_phi_round_trip():
    rng = np.random.default_rng(2)
    pt, eta, phi = rng.uniform(1, 100, 50), rng.uniform(-4, 4, 50), rng.uniform(-3, 3, 50)
    back = pt_eta_phi_m(from_pt_eta_phi_m(pt, eta, phi, np.full(50, 5.0)))
    for x, y in zip(back, (pt, eta, phi, np.full(50, 5.0)), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-9)


def test_lomax_samples_follow_the_survival_function_and_its_truncations():
    u = np.random.default_rng(3).random(200_000)
    x = lomax(u, 15.0, 10.0, 2.5)
    for cut in (20.0, 30.0, 60.0):
        assert np.mean(x > cut) == pytest.approx(lomax_sf(cut, 15.0, 10.0, 2.5), abs=0.003)
    truncated = lomax(u, 15.0, 10.0, 2.5, 20.0)
    assert truncated.min() >= 15.0
    assert truncated.max() < 20.0
    # truncation is conditioning: P(X > 17 | X < 20) = (S(17) - S(20)) / (1 - S(20))
    s17, s20 = lomax_sf(17.0, 15.0, 10.0, 2.5), lomax_sf(20.0, 15.0, 10.0, 2.5)
    assert np.mean(truncated > 17.0) == pytest.approx((s17 - s20) / (1 - s20), abs=0.003)


def test_truncated_logistic_eta_follows_the_conditional_distribution():
    u = np.random.default_rng(4).random(200_000)
    eta = logistic_eta(u, 1.3, -4.7, 4.7)
    total = logistic_cdf(4.7, 1.3) - logistic_cdf(-4.7, 1.3)
    central = (logistic_cdf(2.4, 1.3) - logistic_cdf(-2.4, 1.3)) / total
    assert np.mean(np.abs(eta) < 2.4) == pytest.approx(central, abs=0.003)


def test_counting_first_draws_exactly_the_untruncated_jet_spectrum():
    """Counts, then momenta from truncated spectra, reproduce the spectra drawn directly."""
    source = JetSource(mean=2.0, shape=3.0, pt_scale=20.0, pt_alpha=2.2, eta_width=1.4)
    rng = np.random.default_rng(5)
    counts = complete_jets(source, count_jets(source, 100_000, rng), rng)
    assert counts.total.mean() == pytest.approx(2.0, rel=0.02)
    assert counts.total.var() == pytest.approx(2.0 + 2.0**2 / 3.0, rel=0.05)  # negative binomial
    jets = draw_jets(source, counts, rng)
    passing = (jets.pt > 20.0) & (np.abs(jets.eta) < 2.5)
    assert np.array_equal(np.bincount(jets.event[passing], minlength=100_000), counts.passing)
    assert jets.pt.min() >= 15.0
    assert np.abs(jets.eta).max() < 4.7
    for cut in (18.0, 25.0, 50.0):
        expected = lomax_sf(cut, 15.0, 20.0, 2.2)
        assert np.mean(jets.pt > cut) == pytest.approx(expected, abs=0.004)
    width = 1.4
    total = logistic_cdf(4.7, width) - logistic_cdf(-4.7, width)
    expected = (logistic_cdf(1.0, width) - logistic_cdf(-1.0, width)) / total
    assert np.mean(np.abs(jets.eta) < 1.0) == pytest.approx(expected, abs=0.004)


def test_w_decay_modes_follow_the_pdg_branching_ratios():
    modes = decay_modes(400_000, np.random.default_rng(6), (False,))[:, 0]
    observed = np.bincount(modes, minlength=7) / modes.size
    np.testing.assert_allclose(observed, _W_INCLUSIVE / _W_INCLUSIVE.sum(), atol=0.003)
    assert observed[:2].sum() == pytest.approx(0.676, abs=0.004)  # W -> hadrons
