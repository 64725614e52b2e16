"""Write synthetic events to a NanoAOD-like ROOT file with uproot.

The tree is ``Events``; branch names, types and jaggedness are NanoAOD's and the dtypes those of
the CMS 2015 open-data NanoAOD of the AGC (``Jet_jetId`` int32, ``Muon_tightId`` bool, counts
``nJet`` uint32, ...). Events are written in baskets of :data:`BASKET_EVENTS` events so that readers
that process chunks of a file decompress only what they read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

__all__ = ["BASKET_EVENTS", "BRANCHES", "COLLECTIONS", "COMPRESSIONS", "write_events"]

#: event-level branches and their dtypes
BRANCHES = {
    "run": np.uint32,
    "luminosityBlock": np.uint32,
    "event": np.uint64,
    "genWeight": np.float32,
    "MET_pt": np.float32,
    "MET_phi": np.float32,
    "PV_npvs": np.int32,
    "PV_x": np.float32,
    "PV_y": np.float32,
    "PV_z": np.float32,
}

#: jagged collections: the fields of each and their dtypes (the counts branch is ``n<Name>``, uint32)
COLLECTIONS = {
    "Jet": {
        "pt": np.float32,
        "eta": np.float32,
        "phi": np.float32,
        "mass": np.float32,
        "btagCSVV2": np.float32,
        "jetId": np.int32,
        "hadronFlavour": np.int32,
    },
    "Electron": {
        "pt": np.float32,
        "eta": np.float32,
        "phi": np.float32,
        "mass": np.float32,
        "charge": np.int32,
        "cutBased": np.int32,
        "sip3d": np.float32,
    },
    "Muon": {
        "pt": np.float32,
        "eta": np.float32,
        "phi": np.float32,
        "mass": np.float32,
        "charge": np.int32,
        "tightId": np.bool_,
        "sip3d": np.float32,
        "pfRelIso04_all": np.float32,
    },
}

#: the choices of ``--compression`` and the uproot codec each stands for
COMPRESSIONS = {
    "lz4": uproot.LZ4(1),
    "zlib": uproot.ZLIB(1),
    "zstd": uproot.ZSTD(1),
    "none": None,
}

BASKET_EVENTS = 50_000


def _unsigned_counters(tree: uproot.WritableTree) -> None:
    """Declare the generated counter branches (``nJet``, ...) uint32, as NanoAOD does.

    uproot creates counters as int32; this rewrites the tree's metadata before any entry is
    written. If uproot's internals change, the counters stay int32 (a test checks the dtypes).
    """
    cascading = getattr(tree, "_cascading", None)
    data = getattr(cascading, "_branch_data", None)
    if data is None:
        return
    for datum in data:
        if datum.get("kind") == "counter":
            datum["dtype"] = np.dtype(">u4")
            datum["fTitle"] = datum["fTitle"][:-1] + "i"
    cascading.write_anew(tree._file.sink)


def _collection(name: str, cols: Mapping[str, np.ndarray], offsets: np.ndarray) -> ak.Array:
    fields = COLLECTIONS[name]
    contents = [
        ak.contents.NumpyArray(np.asarray(cols[f"{name}_{f}"], dtype=dt))
        for f, dt in fields.items()
    ]
    record = ak.contents.RecordArray(contents, list(fields))
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), record))


def write_events(path: Path, cols: Mapping[str, np.ndarray], compression: str = "lz4") -> None:
    """Write the events of ``cols`` (event branches, ``n<Name>`` counts, flat contents) to ``path``.

    Examples:
        >>> import tempfile
        >>> cols = {k: np.zeros(2) for k in BRANCHES}
        >>> for name, fields in COLLECTIONS.items():
        ...     cols["n" + name] = np.array([1, 0], dtype=np.uint32)
        ...     cols.update({f"{name}_{f}": np.ones(1) for f in fields})
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     write_events(Path(tmp) / "x.root", cols)
        ...     tree = uproot.open(Path(tmp) / "x.root")["Events"]
        ...     tree.num_entries, str(tree["nJet"].interpretation), tree["Jet_jetId"].array().tolist()
        (2, "AsDtype('>u4')", [[1], []])
    """
    n = len(cols["run"])
    offsets = {
        name: np.concatenate([[0], np.cumsum(cols["n" + name], dtype=np.int64)])
        for name in COLLECTIONS
    }
    types: dict[str, object] = {k: np.dtype(dt) for k, dt in BRANCHES.items()}
    types.update(
        {name: _collection(name, cols, offsets[name][:1]).type.content for name in COLLECTIONS}
    )
    with uproot.recreate(path, compression=COMPRESSIONS[compression]) as f:
        tree = f.mktree(
            "Events",
            types,
            field_name=lambda outer, inner: f"{outer}_{inner}",
            counter_name=lambda counts: "n" + counts,
        )
        _unsigned_counters(tree)
        for start in range(0, max(n, 1), BASKET_EVENTS):
            stop = min(start + BASKET_EVENTS, n)
            basket: dict[str, object] = {
                k: np.asarray(cols[k][start:stop], dtype=dt) for k, dt in BRANCHES.items()
            }
            for name, off in offsets.items():
                lo, hi = off[start], off[stop]
                sub = {f"{name}_{f}": cols[f"{name}_{f}"][lo:hi] for f in COLLECTIONS[name]}
                basket[name] = _collection(name, sub, off[start : stop + 1] - lo)
            tree.extend(basket)
