"""The AGC processor's soft histograms: they converge to the hard ones as the hardness grows, and
their derivatives in every parameter match central finite differences through the engine."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from diffana.pipeline.engine import Engine
from diffana.processors.agc_ttbar import AGCTtbarProcessor

POINT = {"lepton_pt": 32.0, "jet_pt": 33.0, "btag": 0.55}


def _distance(soft: dict, hard: dict) -> float:
    """Summed absolute bin differences over every histogram, relative to the hard total."""
    diff = sum(np.abs(np.asarray(soft[n].sumw) - hard[n].values(flow=True)).sum() for n in hard)
    return diff / sum(np.abs(h.values(flow=True)).sum() for h in hard.values())


def test_soft_histograms_converge_to_hard(agc_engine):
    hard = agc_engine.hard_histograms(POINT)
    distances = []
    for hardness in (1.0, 10.0, 100.0, 1000.0):
        soft = agc_engine.evaluate(POINT, hardness=hardness)
        assert sorted(soft) == sorted(hard)
        distances.append(_distance(soft, hard))
    assert all(a > b for a, b in itertools.pairwise(distances)), distances
    assert distances[0] > 0.05  # hardness 1 is really soft
    assert distances[-1] < 3e-3, distances


@pytest.fixture(scope="module")
def smooth_engine(agc_fileset, agc):
    """float64 kernel with the soft trijet choice: every histogram is smooth in the parameters
    (6 jets: C(6, 3) trijets keep the soft choice's compilation short; clipping is irrelevant here)."""
    processor = AGCTtbarProcessor(dtype="float64", trijet_choice="soft", max_jets=6)
    fileset = {"ttbar__nominal": agc_fileset["ttbar__nominal"]}
    with Engine(processor, fileset, chunk_size=agc.chunk, block_size=agc.block) as engine:
        engine.skim()
        yield engine


@pytest.mark.filterwarnings("ignore::diffana.processors.agc_ttbar.ClippedObjectsWarning")
def test_jacobian_matches_central_finite_differences(smooth_engine):
    hardness = 3.0
    hists, jac = smooth_engine.jacobian(POINT, hardness=hardness)
    assert len(hists) == 2 * (1 + 8 + 2)  # nominal, b-tag variations, jet-pT variations
    for k, param in enumerate(smooth_engine.processor.parameters):
        step = 1e-4 * param.scale  # the central difference error (~ step**2) is below 1e-5
        up = smooth_engine.evaluate(
            {**POINT, param.name: POINT[param.name] + step}, hardness=hardness
        )
        down = smooth_engine.evaluate(
            {**POINT, param.name: POINT[param.name] - step}, hardness=hardness
        )
        for name in hists:
            for field in ("sumw", "sumw2"):
                fd = (
                    np.asarray(getattr(up[name], field)) - np.asarray(getattr(down[name], field))
                ) / (2 * step)
                got = getattr(jac[name], field)[..., k]
                scale = np.abs(fd).max() + 1e-12
                np.testing.assert_allclose(
                    got, fd, rtol=1e-4, atol=1e-4 * scale, err_msg=f"{name} {field} d/d{param.name}"
                )
        total = sum(np.abs(jac[n].sumw[..., k]).sum() for n in hists)
        assert total > 0, f"no histogram depends on {param.name}"


def test_fixed_trijet_choice_gives_the_hard_mass_at_high_hardness(agc_engine):
    """With the default fixed choice, 4j2b converges like the soft-choice histograms do."""
    hard = agc_engine.hard_histograms(POINT)
    soft = agc_engine.evaluate(POINT, hardness=1e4)
    for name in (n for n in hard if n.startswith("4j2b_ttbar")):
        np.testing.assert_allclose(
            np.asarray(soft[name].sumw),
            hard[name].values(flow=True),
            rtol=0,
            atol=2e-3 * hard[name].values().sum() + 1e-9,
        )
    assert not math.isnan(float(np.sum(soft["4j2b_ttbar"].sumw)))
