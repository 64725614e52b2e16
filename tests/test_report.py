"""Hard re-evaluation: hist.Hist in both binnings, a pyhf-valid workspace, the fit against pyhf."""

from __future__ import annotations

import json

import hist
import numpy as np
import pyhf
import pytest

from diffana.config import load_workflow
from diffana.pipeline.histogram import SoftHistogram
from diffana.pipeline.objective import Objective
from diffana.report import hard_result, write_hard


@pytest.fixture(scope="module")
def evaluated(agc_histograms):
    """The AGC's reference histograms taken as the hard pass of some cuts."""
    soft = {
        name: SoftHistogram(
            np.asarray(h["values"]), np.asarray(h["variances"]), np.asarray(h["edges"])
        )
        for name, h in agc_histograms.items()
    }
    model = load_workflow().model
    objective = Objective(model.to_cabinetry(), soft, pseudodata=model.pseudodata)
    return objective, hard_result(objective, {"jet_pt": 30.0}, soft), agc_histograms


def test_histograms_in_the_agc_and_the_model_binning(evaluated):
    _, result, reference = evaluated
    h = result.histograms["4j2b_ttbar_btag_var_1_up"]
    assert isinstance(h, hist.Hist)
    np.testing.assert_allclose(h.axes[0].edges, np.linspace(50, 550, 26), rtol=1e-12)
    np.testing.assert_allclose(h.values(flow=True), reference["4j2b_ttbar_btag_var_1_up"]["values"])
    model = result.model_histograms["4j2b_ttbar_btag_var_1_up"]
    np.testing.assert_allclose(model.axes[0].edges, np.arange(110, 551, 40), rtol=1e-12)
    # the AGC's own rebinning: h[110j::hist.rebin(2)]
    agc = h[110j :: hist.rebin(2)]
    np.testing.assert_allclose(model.values(), agc.values(), rtol=1e-12)
    np.testing.assert_allclose(model.variances(), agc.variances(), rtol=1e-12)
    # pseudo-data, as the AGC makes it
    pseudo = result.model_histograms["4j1b_pseudodata"]
    parts = [
        result.histograms[f"4j1b_{s}"][110j :: hist.rebin(2)].values()
        for s in ("ttbar_ME_var", "ttbar_PS_var", "wjets")
    ]
    np.testing.assert_allclose(pseudo.values(), (parts[0] + parts[1]) / 2 + parts[2], rtol=1e-12)


def test_workspace_is_pyhf_valid_and_the_fit_matches_pyhf(evaluated):
    """The fit of the pseudo-data against pyhf (numpy, SLSQP at tolerance 1e-14): a likelihood at
    least as high as pyhf's best fit and the same ttbar_norm (pyhf's optimum sits ~1.6e-5 away),
    the uncertainty equal to the inverse of a finite-difference Hessian of pyhf's likelihood."""
    _, result, _ = evaluated
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-14))
    workspace = pyhf.Workspace(result.workspace)  # validates against pyhf's schema
    model = workspace.model()
    data = workspace.data(model)
    bestfit = pyhf.infer.mle.fit(data, model)
    poi = model.config.poi_index
    nll = lambda p: -float(model.logpdf(p, data)[0])  # noqa: E731
    ours = np.array([result.fit["bestfit"][n] for n in model.config.par_names])
    assert nll(ours) <= nll(bestfit) + 1e-9
    assert result.fit["poi"] == "ttbar_norm"
    assert result.fit["converged"]
    assert result.fit["ttbar_norm"] == pytest.approx(float(bestfit[poi]), rel=3e-5)
    x = np.asarray(bestfit, dtype=float)
    n, h = x.size, 1e-4
    hess = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            e_i, e_j = np.eye(n)[i] * h, np.eye(n)[j] * h
            hess[i, j] = hess[j, i] = (
                nll(x + e_i + e_j) - nll(x + e_i - e_j) - nll(x - e_i + e_j) + nll(x - e_i - e_j)
            ) / (4 * h * h)
    expected = float(np.sqrt(np.linalg.inv(hess)[poi, poi]))
    assert result.fit["uncertainty"] == pytest.approx(expected, rel=2e-3)
    assert set(result.fit["bestfit"]) == set(model.config.par_names)


def test_write_hard_writes_workspace_histograms_and_plot(evaluated, tmp_path):
    objective, result, _ = evaluated
    paths = write_hard(result, objective, tmp_path, "final", formats=["png"])
    workspace = json.loads((tmp_path / "workspace_final.json").read_text())
    assert workspace == result.workspace
    saved = json.loads((tmp_path / "histograms_final.json").read_text())
    assert len(saved["4j1b_ttbar"]["values"]) == 27  # 25 bins and the flow bins
    model = json.loads((tmp_path / "model_histograms_final.json").read_text())
    assert model["4j2b_pseudodata"]["edges"] == [float(e) for e in range(110, 551, 40)]
    assert paths["stacked"] == [str(tmp_path / "stacked_final.png")]
    assert (tmp_path / "stacked_final.png").read_bytes()[:4] == b"\x89PNG"


def test_bins_that_hard_cuts_empty_are_merged_and_reported(evaluated):
    """Cuts that empty the lowest H_T bin of 4j1b in every sample (as jet pT > 37.5 GeV does on
    the built-in dataset): the bin is merged into the next, the workspace is pyhf-valid with 10
    bins there, and the objective and the fit are finite."""
    objective, _, reference = evaluated
    emptied = {}
    for name, h in reference.items():
        values, variances = np.asarray(h["values"], float), np.asarray(h["variances"], float)
        if name.startswith("4j1b_"):  # fine bins 110-130 and 130-150: flow bin first
            values[4:6], variances[4:6] = 0.0, 0.0
        emptied[name] = SoftHistogram(values, variances, np.asarray(h["edges"]))
    result = hard_result(objective, {"jet_pt": 40.0}, emptied)
    assert result.notes == [
        "4j1b CR: bin [110, 150) is empty in every nominal sample; merged into [150, 190) (now [110, 190))"
    ]
    channels = {c["name"]: c for c in result.workspace["channels"]}
    assert len(channels["4j1b CR"]["samples"][0]["data"]) == 10
    assert len(channels["4j2b SR"]["samples"][0]["data"]) == 11
    pyhf.Workspace(result.workspace)
    assert np.isfinite(result.objective)
    assert result.fit["converged"]
    np.testing.assert_allclose(
        result.model_histograms["4j1b_ttbar"].axes[0].edges, [110, *range(190, 551, 40)]
    )
