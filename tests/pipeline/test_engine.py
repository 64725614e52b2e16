"""The engine end to end: hard pass vs an independent computation, executors agree, gradients vs
finite differences, phase 2 reads nothing, the run report."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import uproot

from diffana.errors import ConfigError
from diffana.pipeline.evaluate import _KERNELS
from diffana.pipeline.readstats import read_totals, reset_read_totals

PARAMS = {"jet_pt": 34.0, "btag": 0.45}


def _objective(hists):
    """A smooth scalar of every histogram: sum of sumw * c + sumw2 * d with fixed c, d."""
    total = 0.0
    for i, name in enumerate(sorted(hists)):
        h = hists[name]
        c = jnp.linspace(0.5, 1.5 + i, h.sumw.shape[-1])
        total = (
            total + jnp.sum(c * h.sumw) + 0.01 * jnp.sum(h.sumw2 / c) + 1e-4 * jnp.sum(h.sumw**2)
        )
    return total


def test_hard_pass_matches_uproot_awkward_hist(toy_engine, toy_fileset, toy):
    for params in (None, PARAMS):
        got = toy_engine.hard_histograms(params)
        ref = toy.reference_hard(toy_fileset, params or toy.Processor().default_params())
        toy.assert_same_hists(got, ref)
        for name, h in ref.items():
            # diffana gives a Regular axis where hist's Regular edges match (to a few ulp)
            np.testing.assert_allclose(
                got[name].axes[0].edges, h.axes[0].edges, rtol=8 * np.finfo(float).eps, atol=0
            )


def test_executors_give_the_same_histograms_and_gradients(toy_engines):
    local, inproc = toy_engines["local"], toy_engines["inprocess"]
    for hardness in (2.0, math.inf):
        a, b = inproc.evaluate(PARAMS, hardness=hardness), local.evaluate(PARAMS, hardness=hardness)
        assert sorted(a) == sorted(b)
        for name in a:
            np.testing.assert_allclose(a[name].sumw, b[name].sumw, rtol=1e-12, atol=1e-300)
            np.testing.assert_allclose(a[name].sumw2, b[name].sumw2, rtol=1e-12, atol=1e-300)
    (_, ja), (_, jb) = inproc.jacobian(PARAMS), local.jacobian(PARAMS)
    for name in ja:
        np.testing.assert_allclose(ja[name].sumw, jb[name].sumw, rtol=1e-12, atol=1e-12)
    for mode in ("forward", "reverse"):
        inproc.mode = local.mode = mode
        try:
            va, ga = inproc.value_and_grad(_objective)(PARAMS)
            vb, gb = local.value_and_grad(_objective)(PARAMS)
        finally:
            inproc.mode = local.mode = "auto"
        assert va == pytest.approx(vb, rel=1e-12)
        for p in ga:
            assert ga[p] == pytest.approx(gb[p], rel=1e-12)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_gradient_matches_central_finite_differences(toy_engine, mode):
    toy_engine.mode = mode
    try:
        value, grad = toy_engine.value_and_grad(_objective, hardness=1.0)(PARAMS)
    finally:
        toy_engine.mode = "auto"
    assert value == pytest.approx(float(_objective(toy_engine.evaluate(PARAMS))), rel=1e-12)
    for p in toy_engine.processor.parameters:
        h = 1e-3 * p.scale
        up = float(_objective(toy_engine.evaluate({**PARAMS, p.name: PARAMS[p.name] + h})))
        down = float(_objective(toy_engine.evaluate({**PARAMS, p.name: PARAMS[p.name] - h})))
        fd = (up - down) / (2 * h)
        assert abs(fd) > 1e-3  # the cut matters: the check is not vacuous
        assert grad[p.name] == pytest.approx(fd, rel=1e-6)


def test_jacobian_matches_finite_differences_per_bin(toy_engines):
    engine = toy_engines["inprocess"]
    hists, jac = engine.jacobian(PARAMS, hardness=2.0)
    h = 1e-3
    up = engine.evaluate({**PARAMS, "jet_pt": PARAMS["jet_pt"] + h}, hardness=2.0)
    down = engine.evaluate({**PARAMS, "jet_pt": PARAMS["jet_pt"] - h}, hardness=2.0)
    for name, j in jac.items():
        assert j.sumw.shape == (*hists[name].sumw.shape, 2)
        fd = (np.asarray(up[name].sumw) - np.asarray(down[name].sumw)) / (2 * h)
        np.testing.assert_allclose(j.sumw[..., 0], fd, rtol=1e-5, atol=1e-6 * np.abs(fd).max())


def test_vjp_is_the_cotangent_contracted_with_the_jacobian(toy_engines):
    engine = toy_engines["inprocess"]
    hists, jac = engine.jacobian(PARAMS)
    rng = np.random.default_rng(3)
    ct = {
        n: (rng.normal(size=h.sumw.shape), rng.normal(size=h.sumw.shape)) for n, h in hists.items()
    }
    _, grad = engine.vjp(PARAMS, ct)
    expected = sum(
        np.tensordot(ct[n][0], jac[n].sumw, 1) + np.tensordot(ct[n][1], jac[n].sumw2, 1) for n in ct
    )
    np.testing.assert_allclose([grad[p] for p in engine.parameter_names], expected, rtol=1e-10)


def test_gradient_mode_counts_parameters_against_bins(toy_engines):
    engine = toy_engines["inprocess"]
    assert engine.gradient_mode() == "forward"
    assert engine.gradient_mode(num_bins=1) == "reverse"
    engine.forward_max_params = 1
    try:
        assert engine.gradient_mode() == "reverse"
    finally:
        engine.forward_max_params = 8


def test_phase_two_reads_no_file_and_compiles_once_per_shape(toy_engines, local_client):
    from diffana.pipeline.readstats import read_totals as worker_totals

    reset_read_totals()
    local_client.run(reset_read_totals)
    for engine in toy_engines.values():
        engine.evaluate(PARAMS)
        engine.jacobian({**PARAMS, "btag": 0.6})
    assert read_totals().bytes == 0
    assert all(t.bytes == 0 for t in local_client.run(worker_totals).values())
    engine = toy_engines["inprocess"]
    assert {b.num_events % 256 for cb in engine._blocks for b in cb.blocks.values()} == {0}
    assert max(b.num_events for cb in engine._blocks for b in cb.blocks.values()) > 256
    value_kernel = _KERNELS[(engine.fingerprint, "value", False)]
    compiled = value_kernel._cache_size()  # other tests may have run this processor's kernel too
    engine.evaluate({**PARAMS, "jet_pt": 41.0}, hardness=5.0)
    engine.evaluate({**PARAMS, "btag": 0.55}, hardness=3.0)
    assert value_kernel._cache_size() == compiled  # new parameters and hardness: no compilation


def test_first_pass_on_one_chunk_gives_the_same_histograms(toy, toy_fileset, toy_engines, tmp_path):
    # with a compilation cache folder, the first pass of each kernel kind runs one chunk alone
    # before the others (Engine._compile_first); the sums are those of the in-process engine
    from diffana.pipeline.engine import Engine

    local = toy_engines["local"]
    before = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", str(tmp_path))
    try:
        engine = Engine(toy.Processor(), toy_fileset, cluster=local.client, chunk_size=500)
        with engine:
            engine.skim()
            assert engine._compile_first("value", 2.0)
            assert not engine._compile_first("value", 2.0)  # once per kind
            engine._compiled.clear()
            got = engine.evaluate(PARAMS, hardness=2.0)
            (_, jac) = engine.jacobian(PARAMS, hardness=2.0)
            assert engine._compiled == {("value", False), ("jvp", False)}
            again = engine.evaluate(PARAMS, hardness=2.0)  # no chunk alone: the same sums
            for name in got:
                np.testing.assert_array_equal(again[name].sumw, got[name].sumw)
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
    inproc = toy_engines["inprocess"]
    want, (_, want_jac) = (
        inproc.evaluate(PARAMS, hardness=2.0),
        inproc.jacobian(PARAMS, hardness=2.0),
    )
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_allclose(got[name].sumw, want[name].sumw, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(jac[name].sumw, want_jac[name].sumw, rtol=1e-12, atol=1e-12)


def test_each_worker_evaluates_an_equal_share_of_blocks_it_holds(toy_engines, local_client):
    import distributed

    engine = toy_engines["local"]
    holders = local_client.who_has(engine._blocks)
    assert all(w in holders[b.key] for b, w in zip(engine._blocks, engine._plan, strict=True))
    loads: dict[str, int] = {}
    for worker, cost in zip(engine._plan, engine._costs, strict=True):
        loads[worker] = loads.get(worker, 0) + cost
    assert sorted(loads) == sorted(local_client.nthreads())
    assert max(loads.values()) - min(loads.values()) <= max(engine._costs)
    with distributed.get_task_stream(client=local_client) as stream:
        engine.jacobian(PARAMS)
    tasks = [t for t in stream.data if "evaluate_group" in str(t["key"])]
    assert sorted(t["worker"] for t in tasks) == sorted(loads)  # one task per worker and step


def test_report_counts_chunks_events_branches_and_bytes(toy_engines, toy_fileset):
    reports = {name: e.report for name, e in toy_engines.items()}
    baskets = metadata = 0
    for entry in toy_fileset.values():
        for file in entry["files"]:
            with uproot.open(file) as f:
                metadata += f.key("Events").fNbytes
                baskets += sum(f["Events"][b].compressed_bytes for b in reports["local"].branches)
    for processes, report in zip((1, 2), reports.values(), strict=True):
        assert report.chunks == report.chunks_done == 9
        assert report.events_read == 4500
        assert 0 < report.events_kept <= 4500
        assert report.branches == ("Jet_btagCSVV2", "Jet_pt", "genWeight", "nJet")
        # every basket of the four branches once; a tree's metadata at most once per process that
        # reads its file (this one, or the two workers), not once per chunk and again for the
        # entry count and form (4x here); each of the 13 openings reads ~1 kB of file header
        assert baskets <= report.bytes_read <= baskets + processes * metadata + 13 * 1024
        assert report.bytes_read < report.file_bytes
        assert report.skipped == []
        assert report.events_lost == 0
    assert reports["local"].dashboard is None or reports["local"].dashboard.startswith("http")


def test_bad_parameters_are_reported(toy_engines):
    engine = toy_engines["inprocess"]
    with pytest.raises(ConfigError, match=r"unknown \['jet_eta'\], missing \['btag'\]"):
        engine.evaluate({"jet_pt": 30.0, "jet_eta": 2.4})
    with pytest.raises(ConfigError, match="hardness must be positive"):
        engine.evaluate(None, hardness=0.0)
