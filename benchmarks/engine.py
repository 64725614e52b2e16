"""Benchmark of the two-phase engine (issue 5): one phase-2 step vs coffea, scaling, bytes, memory.

Measured, each against its peer in this script:

1. ``step_speedup_vs_coffea``: one hard pass of an AGC-like analysis through coffea's own runner
   (``processor.Runner`` + ``IterativeExecutor``, NanoAODSchema, native awkward + ``hist``) over the
   synthetic AGC dataset, vs one phase-2 step of the engine in the same single process over the same
   events (soft histograms of every sample and variation plus the gradient of an objective in every
   cut parameter), after the skim and the first (compiling) step; both on one XLA thread / one
   core, coffea's time the better of two passes (the first warms the page cache). The engine's
   hard histograms are checked against coffea's.
2. ``two_worker_speedup_skim`` / ``two_worker_speedup_evaluate``: a LocalCluster with 2 single-threaded
   workers vs 1 worker, for the skim and for one step (the median of 3); ``..._10M`` the same on
   the 10x dataset of 4. (blocks in worker memory).
3. ``bytes_read_fraction``: bytes delivered by uproot's source during the skim (entry counts and
   forms included) over the size of the file, on a NanoAOD-width file (the 947 branches of the real
   CMS file in ``../shared``, its 200 events resampled to the 1.2 M of the AGC's median ttbar
   file); ``bytes_read_fraction_baskets``, the compressed baskets of the branches read, is its floor;
   ``bytes_read_fraction_synthetic`` on the synthetic files, which hold only the ~30 branches an
   AGC analysis needs.
4. ``peak_memory_ratio_10M_vs_1M``: peak RSS of the workers (psutil, sampled every 20 ms inside each
   worker) over skim + one step, 10x the events vs 1x, with blocks kept on disk (``keep="disk"``, the
   bounded-memory mode); ``..._in_memory`` with blocks held in worker memory, for comparison. The 10x
   dataset lists every file of the 1x dataset ten times (symbolic links), so it needs no generation.

Run ``python benchmarks/engine.py`` (``--quick`` for a small smoke run). The last line printed is a
JSON object with the figures.
"""

from __future__ import annotations

import os

# One XLA thread in this process too, as in the Dask workers (diffana.pipeline.cluster.WORKER_ENV),
# so that the single-process comparisons are one core against one core.
os.environ.setdefault("NPROC", "1")

import argparse
import json
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path

import awkward as ak
import hist
import jax
import jax.numpy as jnp
import numpy as np
import uproot

from diffana.pipeline import at_least, cut, exactly, sigmoid_histogram
from diffana.pipeline.engine import Engine
from diffana.pipeline.observables import Trijets, best_trijet_mass, scalar_sum, trijet_candidates
from diffana.processors.base import ColumnBlock, Parameter, Processor

LUMI = 3378.0
EDGES = np.linspace(50.0, 550.0, 26)
NJ, NL = 6, 2  # leading identified jets and leptons of each flavour kept per event
SHARED = Path(__file__).resolve().parents[2] / "shared"
warnings.filterwarnings("ignore", message="Missing cross-reference", category=RuntimeWarning)
warnings.filterwarnings("ignore", message="Found duplicate branch", category=RuntimeWarning)
warnings.filterwarnings("ignore", category=UserWarning, module="diffana.processors.agc_ttbar")


_trijets = jax.jit(trijet_candidates)


def _pad(x, n):
    return ak.fill_none(ak.pad_none(x, n, clip=True), np.float32(0))


def _objects(events):
    """Identified electrons, muons and jets (fixed AGC identification); pT cuts come later."""
    e_ok = (
        (abs(events["Electron", "eta"]) < 2.1)
        & (events["Electron", "cutBased"] == 4)
        & (events["Electron", "sip3d"] < 4)
    )
    m_ok = (
        (abs(events["Muon", "eta"]) < 2.1)
        & events["Muon", "tightId"]
        & (events["Muon", "sip3d"] < 4)
        & (events["Muon", "pfRelIso04_all"] < 0.15)
    )
    j_ok = (abs(events["Jet", "eta"]) < 2.4) & (events["Jet", "jetId"] == 6)
    jets = {f: events["Jet", f][j_ok][:, :NJ] for f in ("pt", "eta", "phi", "mass", "btagCSVV2")}
    return events["Electron", "pt"][e_ok][:, :NL], events["Muon", "pt"][m_ok][:, :NL], jets


def _variations(meta):
    return (
        {"nominal": 1.0, "pt_scale_up": 1.03}
        if meta["variation"] == "nominal"
        else {"nominal": 1.0}
    )


def _name(key, meta, systematic):
    variation = meta["variation"] if systematic == "nominal" else systematic
    return f"{key}_{meta['process']}_{variation}"


class BenchAGC(Processor):
    """The AGC ttbar selection in miniature: soft lepton pT, jet pT and b-tag cuts; 4j1b H_T and
    4j2b trijet mass; a jet-energy-scale block. Leading 6 identified jets and 2 leptons per flavour."""

    name = "bench_agc"
    parameters = (
        Parameter("lepton_pt", 30.0, (25.0, 60.0), 5.0, unit="GeV"),
        Parameter("jet_pt", 30.0, (25.0, 60.0), 5.0, unit="GeV"),
        Parameter("btag", 0.5, (0.2, 0.9), 0.05),
    )

    def skim(self, events):
        meta = events.metadata
        ele, mu, jets = _objects(events)
        ele_pt, mu_pt = _pad(ele, NL), _pad(mu, NL)
        weight = ak.values_astype(ak.num(jets["pt"], axis=1) * 0, np.float32) + np.float32(
            meta["xsec"] * LUMI / meta["nevts"]
        )
        out = {}
        for systematic, factor in _variations(meta).items():
            pt = _pad(jets["pt"] * np.float32(factor), NJ)
            keep = (ak.sum(pt > 25.0, axis=1) >= 4) & (
                (ak.sum(ele_pt > 25.0, axis=1) + ak.sum(mu_pt > 25.0, axis=1)) >= 1
            )
            cols = {
                "ele_pt": ele_pt,
                "mu_pt": mu_pt,
                "jet_pt": pt,
                "jet_eta": _pad(jets["eta"], NJ),
                "jet_phi": _pad(jets["phi"], NJ),
                "jet_mass": _pad(jets["mass"] * np.float32(factor), NJ),
                "jet_btag": _pad(jets["btagCSVV2"], NJ),
                "weight": weight,
            }
            out[systematic] = {k: v[keep] for k, v in cols.items()}
        return out

    def prepare(self, block, systematic):
        """Trijet kinematics once per block (float64 sums, stored as float32)."""
        c = {
            k: jnp.asarray(block[k], jnp.float64)
            for k in ("jet_pt", "jet_eta", "jet_phi", "jet_mass")
        }
        t = _trijets(c["jet_pt"], c["jet_eta"], c["jet_phi"], c["jet_mass"])
        keep = ("ele_pt", "mu_pt", "jet_pt", "jet_btag", "weight")
        columns = {k: block[k] for k in keep}
        for field, value in t._asdict().items():
            value = np.asarray(value)
            columns[f"trijet_{field}"] = value.astype(
                np.float32 if value.dtype.kind == "f" else np.int32
            )
        return ColumnBlock(columns)

    def histograms(self, params, block, *, hardness):
        f32 = jnp.float32
        lep = jnp.concatenate([block["ele_pt"], block["mu_pt"]], axis=1)
        wl = cut(lep, params["lepton_pt"].astype(f32), width=5.0, hardness=hardness, mask=lep > 0)
        pt, btag = block["jet_pt"], block["jet_btag"]
        wj = cut(pt, params["jet_pt"].astype(f32), width=5.0, hardness=hardness, mask=pt > 0)
        bj = cut(btag, params["btag"].astype(f32), width=0.05, hardness=hardness)
        base = block.weight * exactly(wl, 1, hardness=hardness) * at_least(wj, 4, hardness=hardness)
        w1 = base * exactly(wj * bj, 1, hardness=hardness)
        w2 = base * at_least(wj * bj, 2, hardness=hardness)
        ht = scalar_sum(pt, wj)
        trijets = Trijets(**{f: block[f"trijet_{f}"] for f in Trijets._fields})
        mbjj = best_trijet_mass(trijets, wj, bj, hardness=hardness)
        fill = {"width": 10.0, "hardness": hardness, "axis_name": "observable"}
        return {
            "4j1b": sigmoid_histogram(ht, EDGES, weights=w1, label="H_T [GeV]", **fill),
            "4j2b": sigmoid_histogram(mbjj, EDGES, weights=w2, label="m_bjj [GeV]", **fill),
        }

    def output_name(self, key, chunk, systematic):
        return _name(key, chunk.metadata, systematic)


def native_coffea_processor(params):
    """The same hard analysis written the usual coffea way: awkward arrays and ``hist.Hist.fill``."""
    from coffea.processor import ProcessorABC

    class NativeAGC(ProcessorABC):
        def process(self, events):
            meta = events.metadata
            ele, mu, jets = _objects(events)
            n_lep = ak.sum(ele > params["lepton_pt"], axis=1) + ak.sum(
                mu > params["lepton_pt"], axis=1
            )
            out = {}
            for systematic, factor in _variations(meta).items():
                sel = jets["pt"] * np.float32(factor) > params["jet_pt"]
                j = {f: jets[f][sel] for f in jets}
                j["pt"], j["mass"] = j["pt"] * np.float32(factor), j["mass"] * np.float32(factor)
                nb = ak.sum(j["btagCSVV2"] > params["btag"], axis=1)
                base = (n_lep == 1) & (ak.num(j["pt"], axis=1) >= 4)
                w = meta["xsec"] * LUMI / meta["nevts"]
                ht = ak.sum(j["pt"], axis=1)
                p = {f: ak.values_astype(v, np.float64) for f, v in j.items()}
                px, py = p["pt"] * np.cos(p["phi"]), p["pt"] * np.sin(p["phi"])
                pz = p["pt"] * np.sinh(p["eta"])
                e = np.sqrt(px * px + py * py + pz * pz + p["mass"] * p["mass"])
                tri = ak.combinations(
                    ak.zip({"px": px, "py": py, "pz": pz, "e": e, "b": j["btagCSVV2"]}), 3
                )
                a, b, c = tri["0"], tri["1"], tri["2"]
                sx, sy, sz, se = ((a[f] + b[f]) + c[f] for f in ("px", "py", "pz", "e"))
                tpt = np.sqrt(sx * sx + sy * sy)
                tmass = np.sqrt(np.maximum(se * se - (sx * sx + sy * sy + sz * sz), 0.0))
                tagged = (a.b > params["btag"]) | (b.b > params["btag"]) | (c.b > params["btag"])
                best = ak.argmax(ak.where(tagged, tpt, -np.inf), axis=1, keepdims=True)
                mbjj = ak.fill_none(ak.firsts(tmass[best]), 0.0)
                for key, mask, x in (
                    ("4j1b", base & (nb == 1), ht),
                    ("4j2b", base & (nb >= 2), mbjj),
                ):
                    h = hist.Hist(
                        hist.axis.Regular(25, 50, 550, name="observable"),
                        storage=hist.storage.Weight(),
                    )
                    h.fill(ak.to_numpy(x[mask]).astype(np.float64), weight=w)
                    out[_name(key, meta, systematic)] = h
            return out

        def postprocess(self, accumulator):
            return accumulator

    return NativeAGC()


def build_processor(name: str) -> Processor:
    """``agc``: diffana's AGC ttbar processor; ``builtin``: :class:`BenchAGC` above."""
    if name == "builtin":
        return BenchAGC()
    from diffana.processors.agc_ttbar import AGCTtbarProcessor

    return AGCTtbarProcessor()


BACKGROUNDS = ("single_top_s_chan", "single_top_t_chan", "single_top_tW", "wjets")


def _region_sum(hists, region, process):
    names = (f"{region}_{process}", f"{region}_{process}_nominal")
    return sum(h.sumw for n, h in hists.items() if n in names)


def objective(hists):
    """An Asimov-significance-like figure of merit: -sum over bins of s^2 / (s + b + 1)."""
    total = 0.0
    for region in ("4j1b", "4j2b"):
        s = _region_sum(hists, region, "ttbar")
        b = sum(_region_sum(hists, region, p) for p in BACKGROUNDS)
        total = total - jnp.sum(s * s / (s + b + 1.0))
    return total


# ------------------------------------------------------------------------- data
def synthetic(workdir: Path, events_per_sample: int, files: int) -> dict:
    from diffana.datasets.generate import generate

    out = workdir / f"synthetic_{events_per_sample}_{files}"
    if not (out / "fileset.json").is_file():
        generate(out, events_per_sample=events_per_sample, files_per_sample=files, jobs=2)
    return absolute_fileset(out / "fileset.json")


def absolute_fileset(path: Path) -> dict:
    fileset = json.loads(path.read_text())
    for entry in fileset.values():
        entry["files"] = {str((path.parent / f).resolve()): t for f, t in entry["files"].items()}
    return fileset


def replicated(fileset: dict, copies: int, folder: Path) -> dict:
    """``copies`` symbolic links of every file: the same events ``copies`` times, no generation."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for dataset, entry in fileset.items():
        files = {}
        for file, tree in entry["files"].items():
            for k in range(copies):
                link = folder / f"{k}_{Path(file).name}"
                if not link.exists():
                    link.symlink_to(file)
                files[str(link)] = tree
        meta = {**entry["metadata"], "nevts": entry["metadata"]["nevts"] * copies}
        out[dataset] = {"files": files, "metadata": meta}
    return out


#: events per file of the NanoAOD-width file: the median of the AGC's ttbar files (1,189,800)
WIDE_EVENTS = 1_200_000
#: entries per basket as written (one basket per branch per ``extend``)
WIDE_BASKET = 10_000


def nanoaod_width(workdir: Path, events: int) -> dict:
    """The real CMS NanoAOD file's 947 branches with its 200 events resampled to ``events``.

    uproot writes a tree's metadata uncompressed, with room for ``initial_basket_capacity``
    baskets per branch (growing tenfold when full, zeros included); the capacity is set to the
    baskets written, so the metadata holds what ROOT's would (ROOT also compresses it: the real
    file's is 1.56 MB, 336 kB on disk).
    """
    dst = workdir / f"nanoaod_width_{events}_{WIDE_BASKET}.root"
    if not dst.is_file():
        tree = uproot.open(SHARED / "data" / "nanoAOD_2015_CMS_Open_Data_ttbar.root")["Events"]
        arrays = tree.arrays(library="ak")
        idx = np.random.default_rng(5).integers(0, tree.num_entries, events)
        names = list(tree.keys())  # branch names (iterating a TTree gives TBranch objects)
        counters = {tree[b].count_branch.name for b in names if tree[b].count_branch is not None}
        flat, collections = {}, {}
        for b in names:
            count = tree[b].count_branch
            if count is None and b not in counters:
                flat[b] = ak.to_numpy(arrays[b][idx])
            elif count is not None:
                prefix = count.name[1:]
                collections.setdefault(prefix, {})[b[len(prefix) + 1 :]] = arrays[b][idx]
        data = {**flat, **{c: ak.zip(f) for c, f in collections.items()}}
        types = {
            k: (v.type.content if isinstance(v, ak.Array) else v.dtype) for k, v in data.items()
        }
        tmp = dst.with_suffix(".tmp")
        with uproot.recreate(tmp, compression=uproot.LZ4(1)) as f:
            t = f.mktree(
                "Events",
                types,
                field_name=lambda o, i: f"{o}_{i}",
                counter_name=lambda c: "n" + c,
                initial_basket_capacity=-(-events // WIDE_BASKET) + 1,
            )
            for s in range(0, events, WIDE_BASKET):
                t.extend({k: v[s : s + WIDE_BASKET] for k, v in data.items()})
        tmp.rename(dst)
    meta = {"process": "ttbar", "variation": "nominal", "xsec": 729.84, "nevts": events}
    return {"ttbar__nominal": {"files": {str(dst): "Events"}, "metadata": meta}}


def count_events(fileset: dict) -> int:
    return sum(uproot.open(f)["Events"].num_entries for e in fileset.values() for f in e["files"])


# ------------------------------------------------------------------------- measurements
def _start_sampler(dask_worker):
    import threading

    import psutil

    proc = psutil.Process(os.getpid())
    state = {"peak": proc.memory_info().rss, "stop": False}

    def loop():
        while not state["stop"]:
            state["peak"] = max(state["peak"], proc.memory_info().rss)
            time.sleep(0.02)

    threading.Thread(target=loop, daemon=True).start()
    dask_worker._diffana_rss = state


def _peak(dask_worker):
    return dask_worker._diffana_rss["peak"]


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def step_times(engine, repeats):
    step = engine.value_and_grad(objective)
    step(None)  # compiles
    return [timed(step, None)[1] for _ in range(repeats)]


def compare_hard(engine_hists, coffea_hists):
    worst = 0.0
    assert sorted(engine_hists) == sorted(coffea_hists), (
        sorted(engine_hists),
        sorted(coffea_hists),
    )
    for name, h in coffea_hists.items():
        a, b = engine_hists[name].values(), h.values()
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))))
    return worst


def cluster_run(
    processor, fileset, args, workers, *, keep="memory", cache=None, sample=False, repeats=3
):
    from diffana.pipeline.cluster import LocalClusterConfig, connect

    with connect(LocalClusterConfig(n_workers=workers, dashboard_address="127.0.0.1:0")) as conn:
        client = conn.client
        if sample:
            client.run(_start_sampler)
        options = {"chunk_size": args.chunk_size, "block_size": args.block_size}
        with Engine(
            processor, fileset, cluster=client, keep=keep, cache=cache, **options
        ) as engine:
            report, skim_s = timed(engine.skim)
            steps = step_times(engine, repeats)
        peak = max(client.run(_peak).values()) if sample else None
    return {
        "skim_s": skim_s,
        "step_s": statistics.median(steps),
        "report": report,
        "peak_rss": peak,
    }


def scaling(one: dict, two: dict, suffix: str) -> dict[str, float]:
    """Two workers vs one, skim and step, from two :func:`cluster_run` results."""
    print(
        f"LocalCluster 1 vs 2 workers{suffix}: skim {one['skim_s']:.2f} / {two['skim_s']:.2f} s,"
        f" step {one['step_s']:.3f} / {two['step_s']:.3f} s"
    )
    figures = {
        "two_worker_speedup_skim": one["skim_s"] / two["skim_s"],
        "two_worker_speedup_evaluate": one["step_s"] / two["step_s"],
        "skim_s_1_worker": one["skim_s"],
        "skim_s_2_workers": two["skim_s"],
        "step_s_1_worker": one["step_s"],
        "step_s_2_workers": two["step_s"],
    }
    return {k + suffix: v for k, v in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--processor", default="builtin", help="'builtin' or 'agc' (diffana.processors.agc_ttbar)"
    )
    parser.add_argument("--workdir", default="/tmp/diffana-bench-engine", type=Path)
    parser.add_argument(
        "--events-per-sample",
        type=int,
        default=650_000,
        help="generated ttbar events (about 1M written in all)",
    )
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument(
        "--block-size", type=int, default=4096, help="events per slab (Engine block_size)"
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    args = parser.parse_args()
    if args.quick:
        args.events_per_sample, args.chunk_size, args.block_size = 30_000, 10_000, 1024
    args.workdir.mkdir(parents=True, exist_ok=True)
    processor = build_processor(args.processor)
    results: dict = {"processor": type(processor).__name__}

    fileset, gen_s = timed(synthetic, args.workdir, args.events_per_sample, 2)
    n_events = count_events(fileset)
    print(
        f"dataset: {n_events:,} events in {sum(len(e['files']) for e in fileset.values())} files ({gen_s:.0f} s to make)"
    )
    results["events"] = n_events

    # 1. one phase-2 step vs one hard pass through coffea's runner (single process each)
    from coffea import processor as coffea_processor
    from coffea.nanoevents import NanoAODSchema

    params = processor.default_params()
    runner = coffea_processor.Runner(
        coffea_processor.IterativeExecutor(), schema=NanoAODSchema, chunksize=args.chunk_size
    )
    native = native_coffea_processor(params) if args.processor == "builtin" else None
    if native is None:
        from diffana.processors.coffea_adapter import CoffeaProcessor

        native = CoffeaProcessor(processor)
    # best of two: the first pass also warms the page cache for every later reader
    coffea_hists, first_s = timed(runner, fileset, treename="Events", processor_instance=native)
    coffea_s = min(first_s, timed(runner, fileset, treename="Events", processor_instance=native)[1])
    print(
        f"coffea runner, hard pass: {coffea_s:.2f} s ({n_events / coffea_s / 1e6:.2f} M events/s)"
    )
    with Engine(
        processor, fileset, chunk_size=args.chunk_size, block_size=args.block_size
    ) as engine:
        report, skim_s = timed(engine.skim)
        steps = step_times(engine, 3)
        hard = engine.hard_histograms()
        mode = engine.gradient_mode()
    step_s = statistics.median(steps)
    worst = compare_hard(hard, coffea_hists)
    print(
        f"engine skim (in process): {skim_s:.2f} s; kept {report.events_kept:,} of {report.events_read:,} events"
    )
    print(
        f"engine step ({mode} mode, soft histograms + gradient in {len(params)} parameters): {step_s:.3f} s"
        f" ({n_events / step_s / 1e6:.1f} M events/s); hard histograms vs coffea: max rel diff {worst:.1e}"
    )
    results.update(
        step_speedup_vs_coffea=coffea_s / step_s,
        coffea_hard_pass_s=coffea_s,
        engine_step_s=step_s,
        engine_skim_s=skim_s,
        hard_max_rel_diff_vs_coffea=worst,
        bytes_read_fraction_synthetic=report.bytes_read_fraction,
        branches_read=len(report.branches),
    )

    # 2. two workers vs one
    one = cluster_run(processor, fileset, args, 1)
    two = cluster_run(processor, fileset, args, 2)
    results.update(scaling(one, two, ""))

    # 3. bytes read on NanoAOD-width files
    wide = nanoaod_width(args.workdir, 20_000 if args.quick else WIDE_EVENTS)
    with Engine(processor, wide, chunk_size=args.chunk_size, block_size=args.block_size) as engine:
        wide_report = engine.skim()
    (wide_file,) = wide["ttbar__nominal"]["files"]
    with uproot.open(wide_file) as f:
        tree = f["Events"]
        metadata = f.key("Events").fNbytes
        baskets = sum(tree[b].compressed_bytes for b in wide_report.branches)
    results["bytes_read_fraction"] = wide_report.bytes_read_fraction
    results["bytes_read_fraction_baskets"] = baskets / wide_report.file_bytes
    results["wide_file_events"] = wide_report.events_read
    print(
        f"bytes read, 947-branch NanoAOD ({wide_report.events_read:,} events, {wide_report.chunks}"
        f" chunks): {wide_report.bytes_read:,} of {wide_report.file_bytes:,}"
        f" ({wide_report.bytes_read_fraction:.2%}), {len(wide_report.branches)} branches whose"
        f" baskets are {baskets:,} ({baskets / wide_report.file_bytes:.2%}), tree metadata"
        f" {metadata:,}; synthetic files: {report.bytes_read_fraction:.2%}"
    )

    # 4. peak worker memory, 10x vs 1x the events (and 2 workers vs 1 on the 10x dataset)
    ten = replicated(fileset, 10, args.workdir / "x10")
    for keep in ("disk", "memory"):
        peaks = {}
        for label, fs in (("1x", fileset), ("10x", ten)):
            cache = args.workdir / f"cache_{keep}_{label}"
            shutil.rmtree(cache, ignore_errors=True)  # a fresh skim, not one from an earlier run
            run = cluster_run(
                processor,
                fs,
                args,
                2,
                keep=keep,
                cache=cache if keep == "disk" else None,
                sample=True,
                repeats=3 if (keep, label) == ("memory", "10x") else 1,
            )
            peaks[label] = run["peak_rss"]
            print(
                f"peak worker RSS, blocks in {keep}, {label} ({run['report'].events_read:,} events): {run['peak_rss'] / 2**20:.0f} MiB;"
                f" blocks {run['report'].block_bytes / 2**20:.0f} MiB"
            )
        suffix = "" if keep == "disk" else "_in_memory"
        results[f"peak_memory_ratio_10M_vs_1M{suffix}"] = peaks["10x"] / peaks["1x"]
        results[f"peak_rss_mib_1x{suffix}"] = peaks["1x"] / 2**20
        results[f"peak_rss_mib_10x{suffix}"] = peaks["10x"] / 2**20
    two_10 = run  # the last run: 2 workers, 10x, blocks in memory
    results.update(scaling(cluster_run(processor, ten, args, 1), two_10, "_10M"))
    results["cpu"] = f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end"
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in results.items()}))


if __name__ == "__main__":
    sys.exit(main())
