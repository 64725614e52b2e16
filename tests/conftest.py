from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    """The read-only reference folder ``../shared`` (real data and numeric oracles)."""
    if not SHARED.is_dir():
        pytest.fail(
            f"the reference folder {SHARED} is missing; tests need ../shared beside the checkout"
        )
    return SHARED


@pytest.fixture(scope="session")
def agc_histograms(shared) -> dict[str, dict]:
    """The AGC's 5-files-per-process reference histograms (25 bins with flow, ``values``) with
    variances ``w x content``, ``w = xsec x lumi / generated events`` (as cabinetry's reference
    workspace was built), without the pseudo-data."""
    import json

    xsec = {
        "ttbar": 729.84,
        "single_top_s_chan": 3.2944,
        "single_top_t_chan": (36.993 + 22.175) / 0.252,
        "single_top_tW": 75.842,
        "wjets": 61457 * 0.252,
    }
    ref = shared / "oracles" / "agc-reference"
    inputs = json.loads((ref / "nanoaod_inputs.json").read_text())
    out = {}
    for name, h in json.loads((ref / "histos_5_file_per_process.json").read_text()).items():
        if "pseudodata" in name:
            continue
        rest = name.split("_", 1)[1]
        process = next(p for p in sorted(xsec, key=len, reverse=True) if rest.startswith(p))
        variation = rest[len(process) + 1 :]
        if variation not in ("scaledown", "scaleup", "ME_var", "PS_var"):
            variation = "nominal"
        nevts = sum(f["nevts"] for f in inputs[process][variation]["files"][:5])
        weight = xsec[process] * 3378.0 / nevts
        out[name] = {
            "values": h["contents"],
            "edges": h["edges"],
            "variances": [weight * c for c in h["contents"]],
        }
    return out


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    Every compiled XLA program keeps a few memory mappings for its code; the whole suite compiles
    enough of them to pass the kernel's limit of 65,530 mappings per process
    (``vm.max_map_count``), and the next compilation then dies with a segmentation fault inside
    XLA (seen in CI from test_run and test_report, near the end of the suite).
    """
    yield
    import gc

    import jax

    jax.clear_caches()
    gc.collect()
