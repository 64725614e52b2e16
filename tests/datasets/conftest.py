from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffana.datasets import generate, load_fileset

#: generated ttbar nominal events of the test dataset (the default is 500 000)
TEST_EVENTS = 300_000
#: W+jets and the s-channel are rare after the selection: a bigger sample of them alone
RARE_EVENTS = 800_000
RARE = ("wjets__nominal", "single_top_s_chan__nominal")


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in dataset at 300 000 generated ttbar events (other samples scale with it)."""
    return generate(
        tmp_path_factory.mktemp("datasets") / "agc", events_per_sample=TEST_EVENTS
    ).outdir


@pytest.fixture(scope="session")
def rare_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """W+jets and single top s-channel only, at 800 000 events per sample, one file each."""
    out = tmp_path_factory.mktemp("datasets") / "rare"
    return generate(out, events_per_sample=RARE_EVENTS, files_per_sample=1, samples=RARE).outdir


@pytest.fixture(scope="session")
def fileset(dataset: Path, rare_dataset: Path) -> dict:
    """Every dataset from the test dataset, W+jets and s-channel from the bigger one."""
    main, rare = load_fileset(dataset), load_fileset(rare_dataset)
    return {name: rare.get(name, entry) for name, entry in main.items()}


@pytest.fixture(scope="session")
def reference(shared: Path) -> dict:
    path = shared / "oracles" / "agc-reference" / "histos_all_file_per_process.json"
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def real_file(shared: Path) -> Path:
    return shared / "data" / "nanoAOD_2015_CMS_Open_Data_ttbar.root"


def _agc_objects(events):
    """The AGC's electrons, muons and jets (analysis version 2) of coffea NanoEvents."""
    ele, muo, jet = events.Electron, events.Muon, events.Jet
    ele = ele[(ele.pt > 30) & (abs(ele.eta) < 2.1) & (ele.cutBased == 4) & (ele.sip3d < 4)]
    muo = muo[
        (muo.pt > 30)
        & (abs(muo.eta) < 2.1)
        & muo.tightId
        & (muo.sip3d < 4)
        & (muo.pfRelIso04_all < 0.15)
    ]
    jet = jet[(jet.pt > 30) & (abs(jet.eta) < 2.4) & (jet.jetId == 6)]
    return ele, muo, jet


@pytest.fixture(scope="session")
def agc_objects():
    """A function: NanoEvents -> the AGC's selected (electrons, muons, jets)."""
    return _agc_objects
