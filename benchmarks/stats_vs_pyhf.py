"""diffana.stats against pyhf 0.7.6 (numpy and jax backends), side by side in one process.

Measures, after compilation (diffana) and warm-up (pyhf):

* asymptotic q-tilde hypotest with the expected band on the validation models and on a 50-bin
  shapesys model (pyhf numpy),
* the first call of a hypotest on a new structure (compilation), and a second structure of the same
  layout (no compilation),
* the sbottom likelihood (64 parameters), signal points of one region batched in one call,
  against pyhf's fastest configuration (jax backend + scipy) and numpy,
* the AGC workspace: a fit and a hypotest (pyhf numpy),
* a 41-point upper-limit scan (pyhf ``upper_limit(scan=...)``),
* toys per second on a small model (pyhf's ``ToyCalculator`` test statistics).

Run: ``python benchmarks/stats_vs_pyhf.py [--quick]``. The last line printed is one JSON object.
Timings are the best of several repeats (the machine may be shared); ratios are what count.
"""

from __future__ import annotations

import argparse
import json
import tarfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import jsonpatch
import numpy as np
import pyhf

from diffana.stats import Model, Workspace
from diffana.stats.asymptotics import hypotest
from diffana.stats.fit import fit
from diffana.stats.limits import upper_limit
from diffana.stats.toys import sample, toy_teststats

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def best_of(fun, repeats: int, number: int = 1) -> float:
    """Best time per call in seconds (``fun`` must block until its result is ready)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fun()
        best = min(best, (time.perf_counter() - start) / number)
    return best


SHORT = 6
"""diffana's calls (timing windows of a few milliseconds) are timed over ``SHORT`` times more
windows than pyhf's: one pause of a shared machine decides a best of 5 such short windows, where
pyhf's calls, 20-1000x longer, average over such pauses."""


def ready(x):
    return jax.block_until_ready(x)


def pyhf_numpy():
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())


def validation_models():
    cases = json.loads((SHARED / "oracles/pyhf-validation/reference_cases.json").read_text())
    out = []
    for case in cases["validation_cases"]:
        if case["hypotest"]["calctype"] == "asymptotics" and case["hypotest"]["test_stat"] != "q0":
            out.append(
                (case["name"], case["workspace"], case["model_settings"]["modifier_settings"])
            )
    readme = cases["additional_references"][1]
    out.append((readme["name"], readme["workspace"], None))
    return out


def bench_validation(repeats: int) -> tuple[float, list[dict]]:
    rows = []
    for name, workspace, settings in validation_models():
        kw = {} if settings is None else {"modifier_settings": settings}
        ws = Workspace(workspace)
        model = ws.model(**kw)
        data = jnp.asarray(ws.data(model))
        run = lambda m=model, d=data: ready(hypotest(m.structure, m.yields, d, 1.0))  # noqa: E731
        run()
        ours = best_of(run, SHORT * repeats, number=20)
        pyhf_numpy()
        pws = pyhf.Workspace(workspace)
        pmodel = pws.model(**kw)
        pdata = pws.data(pmodel)
        theirs = best_of(
            lambda m=pmodel, d=pdata: pyhf.infer.hypotest(1.0, d, m, return_expected_set=True),
            repeats,
            number=3,
        )
        rows.append({"model": name, "diffana_ms": ours * 1e3, "pyhf_numpy_ms": theirs * 1e3})
        print(
            f"hypotest {name:40s} diffana {ours * 1e3:8.3f} ms  pyhf numpy {theirs * 1e3:8.2f} ms"
            f"  x{theirs / ours:7.1f}"
        )
    speedups = [r["pyhf_numpy_ms"] / r["diffana_ms"] for r in rows]
    return float(np.median(speedups)), rows


def bench_shapesys50(repeats: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(0)
    signal = rng.uniform(1, 10, 50).tolist()
    bkg = rng.uniform(50, 100, 50).tolist()
    unc = (np.asarray(bkg) * 0.1).tolist()
    pmodel = pyhf.simplemodels.uncorrelated_background(signal, bkg, unc)
    data = bkg + pmodel.config.auxdata
    model = Model(pmodel.spec)
    observed = jnp.asarray(data)  # once, as for the validation models
    start = time.perf_counter()
    ready(hypotest(model.structure, model.yields, observed, 1.0))
    compile_seconds = time.perf_counter() - start
    run = lambda: ready(hypotest(model.structure, model.yields, observed, 1.0))  # noqa: E731
    ours = best_of(run, SHORT * repeats, number=10)
    pyhf_numpy()
    theirs = best_of(
        lambda: pyhf.infer.hypotest(1.0, data, pmodel, return_expected_set=True), repeats
    )
    print(
        f"hypotest 50-bin shapesys (51 pars)            diffana {ours * 1e3:8.3f} ms  "
        f"pyhf numpy {theirs * 1e3:8.2f} ms  x{theirs / ours:7.1f}"
    )
    return theirs / ours, compile_seconds, ours


def bench_compile() -> tuple[float, float]:
    """First call on a new structure, then a model of the same layout with other yields."""
    spec = {
        "channels": [
            {
                "name": "sr",
                "samples": [
                    {
                        "name": "s",
                        "data": [3.0, 4.0, 5.0],
                        "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                    },
                    {
                        "name": "b",
                        "data": [30.0, 40.0, 35.0],
                        "modifiers": [
                            {"name": "unc_b", "type": "shapesys", "data": [3.0, 4.0, 3.5]},
                            {"name": "norm", "type": "normsys", "data": {"lo": 0.93, "hi": 1.08}},
                        ],
                    },
                ],
            }
        ]
    }
    model = Model(spec)
    data = jnp.asarray([33.0, 45.0, 38.0, *model.config.auxdata])
    start = time.perf_counter()
    ready(hypotest(model.structure, model.yields, data, 1.0))
    first = time.perf_counter() - start
    other = json.loads(json.dumps(spec))
    other["channels"][0]["samples"][1]["data"] = [31.0, 41.0, 36.0]
    model2 = Model(other)
    start = time.perf_counter()
    ready(hypotest(model2.structure, model2.yields, data, 1.0))
    second = time.perf_counter() - start
    print(
        f"first hypotest call on a new structure: {first:.2f} s; same layout, other yields: "
        f"{second * 1e3:.1f} ms"
    )
    return first, second


def sbottom_region_a():
    path = SHARED / "oracles/published-likelihoods/pyhf-ins1748602-probability-models.tar.gz"
    patches = ["1300_205_60", "1400_950_60", "1500_850_60"]
    with tarfile.open(path) as archive:
        bkg = json.load(archive.extractfile("RegionA/BkgOnly.json"))
        return [
            jsonpatch.apply_patch(
                bkg, json.load(archive.extractfile(f"RegionA/patch.sbottom_{p}.json"))
            )
            for p in patches
        ]


def bench_sbottom(repeats: int) -> tuple[float, float, float, float]:
    specs = sbottom_region_a()
    models = [Workspace(s).model() for s in specs]
    datas = jnp.asarray([Workspace(s).data(m) for s, m in zip(specs, models, strict=True)])
    structure = models[0].structure
    yields = jax.tree.map(lambda *x: jnp.stack(x), *(m.yields for m in models))
    # one compiled call for the points, one after the other: vmap was ~10 % slower per point (its
    # loops run until the slowest point converges, and LAPACK is called per matrix anyway)
    batched = jax.jit(
        lambda ys, ds: jax.lax.map(lambda a: hypotest(structure, a[0], a[1], 1.0), (ys, ds))
    )
    ready(batched(yields, datas))
    ours = best_of(lambda: ready(batched(yields, datas)), SHORT * repeats) / len(models)
    single = best_of(
        lambda: ready(hypotest(structure, models[0].yields, datas[0], 1.0)), SHORT * repeats
    )
    pyhf.set_backend("jax", pyhf.optimize.scipy_optimizer())
    pws = pyhf.Workspace(specs[0])
    pmodel = pws.model()
    pdata = pws.data(pmodel)
    pyhf.infer.hypotest(1.0, pdata, pmodel, return_expected_set=True)  # jax warm-up
    pyhf_jax = best_of(
        lambda: pyhf.infer.hypotest(1.0, pdata, pmodel, return_expected_set=True), repeats
    )
    pyhf_numpy()
    pmodel = pyhf.Workspace(specs[0]).model()
    pyhf_np = best_of(lambda: pyhf.infer.hypotest(1.0, pdata, pmodel, return_expected_set=True), 1)
    print(
        f"sbottom (64 pars) per signal point: diffana {ours * 1e3:.2f} ms batched "
        f"({single * 1e3:.2f} ms alone), pyhf jax+scipy {pyhf_jax * 1e3:.1f} ms, "
        f"pyhf numpy {pyhf_np * 1e3:.0f} ms  x{pyhf_jax / ours:.1f} vs pyhf's fastest"
    )
    return pyhf_jax / ours, ours, pyhf_jax, pyhf_np


def bench_agc(repeats: int) -> tuple[float, dict]:
    workspace = json.loads(
        (SHARED / "oracles/agc-reference/workspace_5_files_per_process.json").read_text()
    )
    model = Workspace(workspace).model()
    data = jnp.asarray(Workspace(workspace).data(model))
    s, y = model.structure, model.yields
    ready(fit(s, y, data))
    ready(hypotest(s, y, data, 1.0))
    fit_ours = best_of(lambda: ready(fit(s, y, data)), SHORT * repeats, number=5)
    test_ours = best_of(lambda: ready(hypotest(s, y, data, 1.0)), SHORT * repeats, number=3)
    pyhf_numpy()
    pws = pyhf.Workspace(workspace)
    pmodel = pws.model()
    pdata = pws.data(pmodel)
    fit_pyhf = best_of(lambda: pyhf.infer.mle.fit(pdata, pmodel), 1)
    test_pyhf = best_of(
        lambda: pyhf.infer.hypotest(1.0, pdata, pmodel, return_expected_set=True), 1
    )
    print(
        f"AGC (34 pars) fit: diffana {fit_ours * 1e3:.2f} ms, pyhf numpy {fit_pyhf * 1e3:.0f} ms"
        f"  x{fit_pyhf / fit_ours:.0f}; hypotest: diffana {test_ours * 1e3:.2f} ms, pyhf numpy "
        f"{test_pyhf * 1e3:.0f} ms  x{test_pyhf / test_ours:.0f}"
    )
    figures = {"fit_speedup": fit_pyhf / fit_ours, "hypotest_speedup": test_pyhf / test_ours}
    return min(figures.values()), figures


def readme_model():
    return pyhf.simplemodels.uncorrelated_background([12.0, 11.0], [50.0, 52.0], [3.0, 7.0])


def bench_scan(repeats: int) -> float:
    pmodel = readme_model()
    data = [51.0, 48.0, *pmodel.config.auxdata]
    model = Model(pmodel.spec)
    observed = jnp.asarray(data)
    scan = np.linspace(0, 5, 41)

    def run():
        return ready(
            upper_limit(
                model.structure,
                model.yields,
                observed,
                scan,
                refine=False,
            )
        )

    run()
    ours = best_of(run, SHORT * repeats, number=10)
    pyhf_numpy()
    theirs = best_of(lambda: pyhf.infer.intervals.upper_limits.upper_limit(data, pmodel, scan), 1)
    print(
        f"41-point upper-limit scan: diffana {ours * 1e3:.2f} ms, pyhf numpy {theirs * 1e3:.0f} ms"
        f"  x{theirs / ours:.0f}"
    )
    return theirs / ours


def bench_toys(ntoys: int, batch_size: int) -> tuple[float, float]:
    pmodel = readme_model()
    model = Model(pmodel.spec)
    start = jnp.asarray(model.config.suggested_init())
    toys = sample(model.structure, model.yields, start, jax.random.key(0), (ntoys,))

    def run():
        return ready(
            toy_teststats(
                model.structure,
                model.yields,
                toys,
                1.0,
                start,
                batch_size=batch_size,
            )
        )

    run()
    ours = ntoys / best_of(run, 2)
    pyhf_numpy()
    data = [51.0, 48.0, *pmodel.config.auxdata]
    calc = pyhf.infer.calculators.ToyCalculator(data, pmodel, ntoys=100, track_progress=False)
    calc.teststatistic(1.0)
    theirs = 2 * 100 / best_of(lambda: calc.distributions(1.0), 1)  # signal + background toys
    print(f"toys (qtilde, 3 pars): diffana {ours:,.0f} /s, pyhf numpy {theirs:,.0f} /s")
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    print(f"jax {jax.__version__}, pyhf {pyhf.__version__}, devices {jax.devices()}")
    compile_first, compile_same_layout = bench_compile()
    validation, _rows = bench_validation(repeats)
    shapesys50, _, _ = bench_shapesys50(repeats)
    sbottom, sbottom_ms, _pyhf_jax_ms, _ = bench_sbottom(repeats)
    agc, agc_figures = bench_agc(repeats)
    scan = bench_scan(repeats)
    toys, pyhf_toys = bench_toys(20_000 if args.quick else 100_000, 16)
    print(
        json.dumps(
            {
                "hypotest_speedup_vs_pyhf_numpy": round(validation, 1),
                "shapesys50_speedup_vs_pyhf_numpy": round(shapesys50, 1),
                "compile_seconds": round(compile_first, 2),
                "same_layout_first_call_seconds": round(compile_same_layout, 4),
                "sbottom_speedup_vs_pyhf_fastest": round(sbottom, 1),
                "sbottom_ms_per_point": round(sbottom_ms * 1e3, 3),
                "agc_speedup_vs_pyhf_numpy": round(agc, 1),
                "agc_fit_speedup": round(agc_figures["fit_speedup"], 1),
                "agc_hypotest_speedup": round(agc_figures["hypotest_speedup"], 1),
                "scan_speedup_vs_pyhf": round(scan, 1),
                "toys_per_second": round(toys),
                "pyhf_toys_per_second": round(pyhf_toys),
            }
        )
    )


if __name__ == "__main__":
    main()
