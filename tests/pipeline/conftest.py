"""Fixtures of the engine tests: small NanoAOD-like files, a toy processor, executors.

The toy processor mimics the AGC selection in miniature (soft jet pT and b-tag cuts, H_T and jet
multiplicity histograms, a jet-energy-scale block). ``reference_hard`` recomputes its hard
histograms from the files with uproot + awkward + hist only, as the independent truth.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import awkward as ak
import cloudpickle
import hist
import jax.numpy as jnp
import numpy as np
import pytest
import uproot

from diffana.pipeline import cut, sigmoid_histogram
from diffana.processors.base import Parameter, Processor

# workers cannot import this conftest: ship its classes by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])

HT_EDGES = np.linspace(0.0, 600.0, 13)
NJ_EDGES = np.arange(-0.5, 5.0, 1.0)
XSEC = {"ttbar": 2.0, "wjets": 5.0}


def write_nanoaod(path: Path, n: int, seed: int, *, basket: int = 250) -> None:
    """A NanoAOD-like file (NanoAOD branch names, event-ID branches, one basket per ``basket`` events)."""
    rng = np.random.default_rng(seed)
    nj = rng.poisson(4, n)
    tot = int(nj.sum())
    jets = ak.zip(
        {
            "pt": ak.unflatten(rng.exponential(40, tot).astype(np.float32) + 15, nj),
            "eta": ak.unflatten(rng.normal(0, 1.5, tot).astype(np.float32), nj),
            "phi": ak.unflatten(rng.uniform(-3.1, 3.1, tot).astype(np.float32), nj),
            "mass": ak.unflatten(rng.uniform(5, 15, tot).astype(np.float32), nj),
            "btagCSVV2": ak.unflatten(rng.uniform(0, 1, tot).astype(np.float32), nj),
            "qgl": ak.unflatten(rng.uniform(0, 1, tot).astype(np.float32), nj),
        }
    )
    flat = {
        "run": np.ones(n, np.uint32),
        "luminosityBlock": np.ones(n, np.uint32),
        "event": np.arange(n, dtype=np.uint64),
        "genWeight": rng.choice([1.0, -1.0], n, p=[0.9, 0.1]).astype(np.float32),
        "MET_pt": rng.exponential(50, n).astype(np.float32),
        "PV_npvs": rng.poisson(20, n).astype(np.int32),
    }
    with uproot.recreate(path) as f:
        tree = f.mktree(
            "Events",
            {"Jet": jets.type.content, **{k: v.dtype for k, v in flat.items()}},
            field_name=lambda outer, inner: f"{outer}_{inner}",
            counter_name=lambda c: "n" + c,
        )
        for start in range(0, n, basket):
            tree.extend(
                {
                    "Jet": jets[start : start + basket],
                    **{k: v[start : start + basket] for k, v in flat.items()},
                }
            )


class ToyProcessor(Processor):
    """Soft jet-pT and b-tag cuts; H_T and jet-count histograms with diffana's soft ops; a JES block."""

    name = "toy"
    parameters = (
        Parameter("jet_pt", 30.0, (20.0, 60.0), 5.0, unit="GeV"),
        Parameter("btag", 0.5, (0.1, 0.9), 0.1),
    )

    def skim(self, events):
        meta = events.metadata
        pt = events["Jet", "pt"]
        btag = ak.fill_none(ak.pad_none(events["Jet", "btagCSVV2"], 4, clip=True), np.float32(0))
        weight = events["genWeight"] * np.float32(meta["xsec"])
        out = {}
        variations = (
            {"nominal": 1.0, "jes_up": 1.03} if meta["variation"] == "nominal" else {"nominal": 1.0}
        )
        for systematic, factor in variations.items():
            jpt = ak.fill_none(ak.pad_none(pt * np.float32(factor), 4, clip=True), np.float32(0))
            keep = ak.any(jpt > 15.0, axis=1)  # loose preselection below every allowed jet_pt cut
            out[systematic] = {"jet_pt": jpt[keep], "jet_btag": btag[keep], "weight": weight[keep]}
        return out

    def histograms(self, params, block, *, hardness):
        pt, btag = (
            jnp.asarray(block["jet_pt"], jnp.float64),
            jnp.asarray(block["jet_btag"], jnp.float64),
        )
        wj = cut(pt, params["jet_pt"], width=5.0, hardness=hardness)
        bj = cut(btag, params["btag"], width=0.1, hardness=hardness)
        tagged = 1.0 - jnp.prod(1.0 - wj * bj, axis=1)  # at least one selected b-tagged jet
        w = jnp.asarray(block.weight, jnp.float64) * tagged
        ht = jnp.sum(wj * pt, axis=1)
        nj = jnp.sum(wj, axis=1)
        return {
            "ht": sigmoid_histogram(
                ht, HT_EDGES, width=20.0, hardness=hardness, weights=w, axis_name="ht", label="H_T"
            ),
            "njet": sigmoid_histogram(
                nj,
                NJ_EDGES,
                width=0.5,
                hardness=hardness,
                weights=w,
                axis_name="njet",
                label="jets",
            ),
        }

    def output_name(self, key, chunk, systematic):
        if key == "njet" and systematic != "nominal":
            return None
        variation = chunk.metadata["variation"] if systematic == "nominal" else systematic
        return f"{key}__{chunk.metadata['process']}__{variation}"


def reference_hard(
    fileset: dict, params: dict, entry_stop: dict[str, int] | None = None
) -> dict[str, hist.Hist]:
    """The toy processor's hard histograms from uproot + awkward + hist alone.

    ``entry_stop`` limits the entries read from the files it names.
    """
    out: dict[str, hist.Hist] = {}
    for entry in fileset.values():
        meta = entry["metadata"]
        for file in entry["files"]:
            arrays = uproot.open(file)["Events"].arrays(
                ["Jet_pt", "Jet_btagCSVV2", "genWeight"], entry_stop=(entry_stop or {}).get(file)
            )
            variations = (
                {"nominal": 1.0, "jes_up": 1.03}
                if meta["variation"] == "nominal"
                else {"nominal": 1.0}
            )
            for systematic, factor in variations.items():
                pt = (arrays["Jet_pt"] * np.float32(factor))[:, :4]
                sel = pt > params["jet_pt"]
                tagged = ak.any(sel & (arrays["Jet_btagCSVV2"][:, :4] > params["btag"]), axis=1)
                w = ak.to_numpy(arrays["genWeight"] * np.float32(meta["xsec"])).astype(
                    np.float64
                ) * ak.to_numpy(tagged)
                ht = ak.to_numpy(
                    ak.sum(ak.where(sel, ak.values_astype(pt, np.float64), 0.0), axis=1)
                )
                nj = ak.to_numpy(ak.sum(sel, axis=1)).astype(np.float64)
                variation = meta["variation"] if systematic == "nominal" else systematic
                fills = [("ht", HT_EDGES, ht)] + (
                    [("njet", NJ_EDGES, nj)] if systematic == "nominal" else []
                )
                for key, edges, x in fills:
                    name = f"{key}__{meta['process']}__{variation}"
                    h = out.setdefault(
                        name, hist.Hist(hist.axis.Variable(edges), storage=hist.storage.Weight())
                    )
                    h.fill(x, weight=w)
    return out


def assert_same_hists(got: dict, ref: dict, rtol: float = 1e-12) -> None:
    """Same names, and values and variances (flow bins included) equal to ``rtol``."""
    assert sorted(got) == sorted(ref)
    for name, h in ref.items():
        for attr in ("values", "variances"):
            expected = getattr(h, attr)(flow=True)
            np.testing.assert_allclose(
                getattr(got[name], attr)(flow=True), expected, rtol=rtol, atol=0
            )


def make_fileset(folder: Path, files_per_dataset: int = 1, events: int = 1500) -> dict:
    fileset = {}
    seed = 0
    for process, variation in (("ttbar", "nominal"), ("ttbar", "scaleup"), ("wjets", "nominal")):
        files = []
        for i in range(files_per_dataset):
            seed += 1
            path = folder / f"{process}_{variation}_{i}.root"
            write_nanoaod(path, events, seed)
            files.append(str(path))
        meta = {
            "process": process,
            "variation": variation,
            "xsec": XSEC[process],
            "nevts": events * files_per_dataset,
        }
        fileset[f"{process}__{variation}"] = {
            "files": {f: "Events" for f in files},
            "metadata": meta,
        }
    return fileset


@pytest.fixture(scope="session")
def toy_fileset(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three datasets (ttbar nominal and scaleup, wjets nominal), one 1500-event file each."""
    return make_fileset(tmp_path_factory.mktemp("engine_data"))


@pytest.fixture(scope="session")
def local_client():
    """ONE real distributed.LocalCluster (2 process workers, loopback) shared by every engine test."""
    from diffana.pipeline.cluster import LocalClusterConfig, connect

    connection = connect(LocalClusterConfig(n_workers=2, dashboard_address="127.0.0.1:0"))
    yield connection.client
    connection.close()


@pytest.fixture(params=["inprocess", "local"])
def executor(request: pytest.FixtureRequest):
    """The cluster argument of an engine: in process, then on the shared LocalCluster."""
    if request.param == "inprocess":
        return None
    return request.getfixturevalue("local_client")


@pytest.fixture(scope="session")
def toy_engines(toy_fileset, local_client):
    """The toy processor skimmed once in process and once on the LocalCluster (500-entry chunks,
    blocks of 1 to 2 slabs of 256 events)."""
    from diffana.pipeline.engine import Engine

    engines = {
        "inprocess": Engine(ToyProcessor(), toy_fileset, chunk_size=500, block_size=256),
        "local": Engine(
            ToyProcessor(), toy_fileset, cluster=local_client, chunk_size=500, block_size=256
        ),
    }
    for engine in engines.values():
        engine.skim()
    yield engines
    for engine in engines.values():
        engine.close()


@pytest.fixture(params=["inprocess", "local"])
def toy_engine(request: pytest.FixtureRequest, toy_engines):
    """Each skimmed toy engine in turn."""
    return toy_engines[request.param]


@pytest.fixture(scope="session")
def toy():
    """The helpers of this conftest (test modules cannot import it under --import-mode=importlib)."""
    return SimpleNamespace(
        Processor=ToyProcessor,
        reference_hard=reference_hard,
        assert_same_hists=assert_same_hists,
        make_fileset=make_fileset,
        write_nanoaod=write_nanoaod,
        HT_EDGES=HT_EDGES,
    )
