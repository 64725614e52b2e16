"""Speed of the soft ops on AGC-like events, and the accuracy studies behind their defaults.

Events (synthetic, NumPy): one lepton, 8 padded jets (pT, |eta|, b-tag score), a trijet mass chosen
once at skim time (the choice held fixed), a per-event weight. Two regions with 25 bins of 20 GeV
over 50-550 GeV: 4j1b (exactly one b-tag, H_T) and 4j2b (at least two, m_bjj). Four cut parameters:
lepton pT, jet pT, b-tag score and jet |eta|.

Measured, events per second on one core (``NPROC`` and ``XLA_FLAGS`` set below), float32 kernels:

* ``numpy_hist``: boolean selection with NumPy and ``hist.Hist`` fills (the ordinary analysis);
* ``hard``: diffana's hard twin (``hardness=HARD``), jit-compiled;
* ``soft``: the soft histograms, hardness a traced argument (as the engine passes it);
* ``soft_jacobian``: soft + forward Jacobian in the 4 parameters (one ``linearize``, one tangent
  per parameter, as the engine does);
* ``soft_vjp``: soft + reverse-mode VJP of a cotangent on all bins;
* ``soft_10_variations``: soft with a ``[events, 10]`` weight matrix per region;
* ``..._object_major``: hard, soft, Jacobian and VJP with the jet columns ``[8, events]`` (the ops'
  ``axis=0``) instead of ``[events, 8]``.

Then the studies: counting formulations (sigmoid of the soft count vs Poisson-binomial) against the
hard count, and the bias of the soft trijet choice against the hard one. The last line is JSON.

Usage: ``python benchmarks/soft_ops.py [--events 1000000] [--repeat 5] [--quick]``
"""

from __future__ import annotations

import os

# One core, as the Dask workers run (diffana.pipeline.cluster.WORKER_ENV): XLA's CPU client sizes
# its thread pool from NPROC; the XLA_FLAGS alone still left it two threads on this machine.
os.environ.setdefault("NPROC", "1")
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)

import argparse
import json
import time
from collections.abc import Callable

import hist
import jax
import jax.numpy as jnp
import numpy as np

from diffana.pipeline import (
    HARD,
    Regular,
    at_least,
    best_trijet_mass,
    cut,
    exactly,
    kde_histogram,
    scalar_sum,
    trijet_candidates,
)

AGC = Regular(25, 50.0, 550.0)
NOMINAL = np.array([30.0, 30.0, 0.5, 2.4])  # lepton pT, jet pT, b-tag, jet |eta|
WIDTHS = (5.0, 5.0, 0.05, 0.1)
BANDWIDTH = 10.0  # GeV, KDE bandwidth at hardness 1


def make_events(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """AGC-like events: jets pT-ordered, padded to 8 with zeros, b-tag scores of b and light jets."""
    rng = np.random.default_rng(seed)
    njet = np.clip(rng.poisson(5.5, n), 2, 8)
    mask = np.arange(8)[None, :] < njet[:, None]
    pt = np.sort(rng.exponential(45.0, (n, 8)) + 20.0, axis=1)[:, ::-1]
    eta = rng.normal(0.0, 1.4, (n, 8))
    is_b = rng.uniform(size=(n, 8)) < 0.25
    btag = np.where(is_b, rng.beta(5.0, 1.5, (n, 8)), rng.beta(1.0, 6.0, (n, 8)))
    phi = rng.uniform(-np.pi, np.pi, (n, 8))
    mass = rng.uniform(4.0, 15.0, (n, 8))
    zero = ~mask
    for a in (pt, eta, btag, phi, mass):
        a[zero] = 0.0
    return {
        "lepton_pt": (rng.exponential(30.0, n) + 20.0).astype(np.float32),
        "jet_pt": pt.astype(np.float32),
        "jet_eta": eta.astype(np.float32),
        "jet_btag": btag.astype(np.float32),
        "jet_phi": phi.astype(np.float32),
        "jet_mass": mass.astype(np.float32),
        "jet_mask": mask,
        "weight": rng.normal(1.0, 0.1, n).astype(np.float32),
    }


@jax.jit
def _fixed_mbjj(pt, eta, phi, mass, btag, jet_mask):
    """Skim time: the trijet chosen with the hard cuts at the nominal parameters."""
    selected = (pt > NOMINAL[1]) & (jnp.abs(eta) < NOMINAL[3]) & jet_mask
    trijets = trijet_candidates(pt, eta, phi, mass)
    return best_trijet_mass(trijets, selected, selected & (btag > NOMINAL[2]), hardness=HARD)


def skim(events: dict[str, np.ndarray], chunk: int = 50_000) -> dict[str, np.ndarray]:
    """The dense columns of the kernel: the trijet mass computed once, in chunks."""
    keys = ("jet_pt", "jet_eta", "jet_phi", "jet_mass", "jet_btag", "jet_mask")
    mbjj = [
        np.asarray(_fixed_mbjj(*(events[k][i : i + chunk] for k in keys)))
        for i in range(0, len(events["weight"]), chunk)
    ]
    columns = {k: events[k] for k in ("lepton_pt", "jet_pt", "jet_eta", "jet_btag", "jet_mask")}
    return {**columns, "mbjj": np.concatenate(mbjj).astype(np.float32), "weight": events["weight"]}


def histograms(theta, columns, hardness, weights=None, axis=-1):
    """The two AGC regions; ``weights`` (``[events, variations]``) replaces the event weight.

    Jet columns ``[events, 8]``, or object-major ``[8, events]`` with ``axis=0``."""
    lep_cut, jet_cut, btag_cut, eta_cut = (theta[i] for i in range(4))
    lepton = cut(columns["lepton_pt"], lep_cut, width=WIDTHS[0], hardness=hardness)
    jets = cut(
        columns["jet_pt"], jet_cut, width=WIDTHS[1], hardness=hardness, mask=columns["jet_mask"]
    )
    jets = jets * cut(
        jnp.abs(columns["jet_eta"]), eta_cut, width=WIDTHS[3], hardness=hardness, op="<"
    )
    tagged = jets * cut(columns["jet_btag"], btag_cut, width=WIDTHS[2], hardness=hardness)
    base = lepton * at_least(jets, 4, hardness=hardness, axis=axis)
    weight = columns["weight"] if weights is None else weights
    expand = (lambda w: w) if weights is None else (lambda w: w[:, None])
    w1b = expand(base * exactly(tagged, 1, hardness=hardness, axis=axis)) * weight
    w2b = expand(base * at_least(tagged, 2, hardness=hardness, axis=axis)) * weight
    ht = scalar_sum(columns["jet_pt"], jets, axis=axis)
    return {
        "4j1b": kde_histogram(ht, AGC, bandwidth=BANDWIDTH, hardness=hardness, weights=w1b),
        "4j2b": kde_histogram(
            columns["mbjj"], AGC, bandwidth=BANDWIDTH, hardness=hardness, weights=w2b
        ),
    }


def numpy_hist(theta, columns):
    """The ordinary analysis: NumPy booleans and hist fills."""
    jets = (
        columns["jet_mask"]
        & (columns["jet_pt"] > theta[1])
        & (np.abs(columns["jet_eta"]) < theta[3])
    )
    tagged = jets & (columns["jet_btag"] > theta[2])
    base = (columns["lepton_pt"] > theta[0]) & (jets.sum(axis=1) >= 4)
    nb = tagged.sum(axis=1)
    out = {}
    for name, region, values in [
        ("4j1b", base & (nb == 1), np.where(jets, columns["jet_pt"], 0.0).sum(axis=1)),
        ("4j2b", base & (nb >= 2), columns["mbjj"]),
    ]:
        h = hist.Hist(hist.axis.Regular(25, 50, 550), storage=hist.storage.Weight())
        h.fill(values[region], weight=columns["weight"][region])
        out[name] = h
    return out


def _sumw(hists):
    return {k: (h.sumw, h.sumw2) for k, h in hists.items()}


def kernels(axis: int = -1) -> dict[str, Callable]:
    """The compiled passes, for jet columns with the object axis ``axis``."""

    def sums(theta, columns, hardness, weights=None):
        return _sumw(histograms(theta, columns, hardness, weights, axis))

    def jacobian(theta, columns, hardness):
        # As the engine's forward kernel: one linearisation, then one tangent per parameter.
        out, push = jax.linearize(lambda t: sums(t, columns, hardness), theta)
        tangents = [push(t) for t in jnp.eye(theta.shape[0], dtype=theta.dtype)]
        return out, jax.tree.map(lambda *c: jnp.stack(c, axis=-1), *tangents)

    def vjp(theta, columns, hardness, cotangent):
        out, pullback = jax.vjp(lambda t: sums(t, columns, hardness), theta)
        return out, pullback(cotangent)[0]

    return {
        "hard": jax.jit(lambda theta, columns: sums(theta, columns, HARD)),
        "soft": jax.jit(sums),
        "jacobian": jax.jit(jacobian),
        "vjp": jax.jit(vjp),
    }


def best_time(fn: Callable[[], object], repeat: int) -> float:
    jax.block_until_ready(fn())  # compile / warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def pass_timings(kernel, cols, theta, hardness, cotangent, repeat, suffix):
    """Best times of the hard, soft, soft + Jacobian and soft + VJP passes of one layout."""
    calls = {
        "hard": lambda: kernel["hard"](theta, cols),
        "soft": lambda: kernel["soft"](theta, cols, hardness),
        "soft_jacobian": lambda: kernel["jacobian"](theta, cols, hardness),
        "soft_vjp": lambda: kernel["vjp"](theta, cols, hardness, cotangent),
    }
    return {name + suffix: best_time(call, repeat) for name, call in calls.items()}


def speed(events: int, repeat: int) -> dict[str, float]:
    raw = make_events(events)
    columns_np = skim(raw)
    columns = {k: jnp.asarray(v) for k, v in columns_np.items()}
    theta = jnp.asarray(NOMINAL, jnp.float32)
    hardness = jnp.float32(1.0)
    variations = jnp.asarray(
        columns_np["weight"][:, None] * np.random.default_rng(1).normal(1.0, 0.05, (events, 10)),
        jnp.float32,
    )
    event_major, object_major = kernels(), kernels(axis=0)
    jets = ("jet_pt", "jet_eta", "jet_btag", "jet_mask")
    transposed = {
        k: jnp.asarray(v.T) if k in jets else jnp.asarray(v) for k, v in columns_np.items()
    }
    cotangent = jax.tree.map(jnp.ones_like, event_major["soft"](theta, columns, hardness))

    # The hard twin is the ordinary analysis, in either layout.
    reference = numpy_hist(NOMINAL, columns_np)
    for kernel, cols in ((event_major, columns), (object_major, transposed)):
        hard = kernel["hard"](theta, cols)
        for key in hard:
            np.testing.assert_allclose(
                hard[key][0], reference[key].view(flow=True).value, rtol=1e-4
            )
    soft = event_major["soft"](theta, columns, hardness)
    for key, (sumw, _) in object_major["soft"](theta, transposed, hardness).items():
        np.testing.assert_allclose(sumw, soft[key][0], rtol=1e-5, atol=1e-3)

    timings = {"numpy_hist": best_time(lambda: numpy_hist(NOMINAL, columns_np), repeat)}
    for suffix, kernel, cols in (
        ("", event_major, columns),
        ("_object_major", object_major, transposed),
    ):
        timings.update(pass_timings(kernel, cols, theta, hardness, cotangent, repeat, suffix))
    timings["soft_10_variations"] = best_time(
        lambda: event_major["soft"](theta, columns, hardness, variations), repeat
    )
    rates = {f"{k}_events_per_second": events / t for k, t in timings.items()}
    print(f"{events} events, best of {repeat} (seconds; M events/s; ratio to the hard twin):")
    for k, t in timings.items():
        print(f"  {k:20s} {t:8.4f} s  {events / t / 1e6:7.2f} M/s  x{timings['hard'] / t:6.3f}")
    return rates


def counting_study(events: int = 200_000) -> dict[str, dict[str, list[float]]]:
    """Sigmoid-of-soft-count vs Poisson-binomial: accuracy and yield derivative vs the hard count."""
    ev = make_events(events, seed=2)
    pt, mask, btag = (
        ev["jet_pt"].astype(np.float64),
        ev["jet_mask"],
        ev["jet_btag"].astype(np.float64),
    )

    def hard_yields(t):  # derivative target: central differences of the hard yield in the pT cut
        jets = mask & (pt > t)
        return np.array([np.sum(jets.sum(1) >= 4), np.sum((jets & (btag > 0.5)).sum(1) == 1)])

    step = 1.0
    fd = (hard_yields(30.0 + step) - hard_yields(30.0 - step)) / (2 * step)
    hard_jets = (mask & (pt > 30.0)).astype(float)
    hard_b = hard_jets * (btag > 0.5)
    truth = [
        np.asarray(at_least(hard_jets, 4, hardness=HARD)),
        np.asarray(exactly(hard_b, 1, hardness=HARD)),
    ]

    def soft(t, h, method):
        jets = cut(pt, t, width=5.0, hardness=h, mask=mask)
        tagged = jets * cut(btag, 0.5, width=0.05, hardness=h)
        return (
            at_least(jets, 4, hardness=h, method=method),
            exactly(tagged, 1, hardness=h, method=method),
        )

    study = {}
    print("\ncounting: mean |soft - hard| per event (>= 4 jets, == 1 b) and d yield / d jet-pT cut")
    print(
        f"  finite-difference derivative of the hard yield (+-{step} GeV): {fd.round(1).tolist()}"
    )
    for method in ("poisson_binomial", "sigmoid"):
        rows = {"hardness": [], "abs_error": [], "derivative": []}
        for h in (1.0, 2.0, 5.0, 10.0, 30.0):
            weights = soft(30.0, h, method)
            errors = [
                float(np.mean(np.abs(np.asarray(w) - t)))
                for w, t in zip(weights, truth, strict=True)
            ]
            derivative = jax.jacfwd(
                lambda t, h=h, method=method: [jnp.sum(w) for w in soft(t, h, method)]
            )(30.0)
            rows["hardness"].append(h)
            rows["abs_error"].append(errors)
            rows["derivative"].append([float(d) for d in derivative])
            print(
                f"  {method:16s} h={h:5.1f}  error {np.round(errors, 4).tolist()}  derivative {np.round(rows['derivative'][-1], 1).tolist()}"
            )
        study[method] = rows
    return study


def trijet_study(events: int = 20_000) -> dict[str, list[float]]:
    """Bias of the soft trijet choice against the hard one, and of the resulting histogram."""
    ev = make_events(events, seed=3)
    f64 = {k: v.astype(np.float64) for k, v in ev.items() if v.dtype != bool}
    trijets = trijet_candidates(f64["jet_pt"], f64["jet_eta"], f64["jet_phi"], f64["jet_mass"])
    hard_jets = ev["jet_mask"] & (f64["jet_pt"] > 30.0)
    hard_b = (f64["jet_btag"] > 0.5).astype(float)
    hard = np.asarray(best_trijet_mass(trijets, hard_jets.astype(float), hard_b, hardness=HARD))
    valid = hard > 0
    hard_h = np.asarray(kde_histogram(hard[valid], AGC, bandwidth=BANDWIDTH, hardness=HARD).sumw)
    rows = {"hardness": [], "mean_abs_mass_bias": [], "histogram_l1_over_total": []}
    print("\ntrijet choice: soft (first valid in pT order) vs hard, events with a hard trijet")
    for h in (1.0, 3.0, 10.0, 30.0, 100.0):
        jets = cut(f64["jet_pt"], 30.0, width=5.0, hardness=h, mask=ev["jet_mask"])
        tagged = cut(f64["jet_btag"], 0.5, width=0.05, hardness=h)
        soft = np.asarray(best_trijet_mass(trijets, jets, tagged, hardness=h))
        bias = float(np.mean(np.abs(soft - hard)[valid]))
        soft_h = np.asarray(
            kde_histogram(soft[valid], AGC, bandwidth=BANDWIDTH, hardness=HARD).sumw
        )
        l1 = float(np.abs(soft_h - hard_h).sum() / hard_h.sum())
        rows["hardness"].append(h)
        rows["mean_abs_mass_bias"].append(bias)
        rows["histogram_l1_over_total"].append(l1)
        print(
            f"  h={h:6.1f}  mean |m_soft - m_hard| = {bias:7.3f} GeV   histogram L1 / total = {l1:.4f}"
        )
    print("  choice held fixed: m = m_hard exactly (bias 0); only the event weights are soft")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="100k events, 2 repeats, no studies")
    args = parser.parse_args()
    events, repeat = (100_000, 2) if args.quick else (args.events, args.repeat)
    print(
        f"jax {jax.__version__}, NPROC={os.environ['NPROC']}, XLA_FLAGS={os.environ['XLA_FLAGS']!r},"
        f" cpus={os.cpu_count()}"
    )
    rates = speed(events, repeat)
    result = {"events": events, **rates}
    result["soft_over_hard"] = rates["soft_events_per_second"] / rates["hard_events_per_second"]
    result["hard_over_numpy_hist"] = (
        rates["hard_events_per_second"] / rates["numpy_hist_events_per_second"]
    )
    if not args.quick:
        result["counting"] = counting_study()
        result["trijet"] = trijet_study()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
