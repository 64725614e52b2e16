"""Reads counted at uproot's source; a file's metadata read once per process, never stale."""

from __future__ import annotations

import awkward as ak
import uproot

from diffana.pipeline.readstats import CountingSource, read_totals, reset_read_totals


def _read(path, **options):
    with uproot.open(path, **options) as f:
        return f["Events"].arrays(["nJet", "Jet_pt"])


def test_metadata_is_read_once_and_a_rewritten_file_afresh(toy, tmp_path):
    path = tmp_path / "a.root"
    toy.write_nanoaod(path, 600, 1)
    with uproot.open(path) as f:
        metadata = f.key("Events").fNbytes
        baskets = sum(f["Events"][b].compressed_bytes for b in ("nJet", "Jet_pt"))
    reset_read_totals()
    first = _read(path, handler=CountingSource)
    once = read_totals().bytes
    assert once > metadata + baskets
    second = _read(path, handler=CountingSource)
    again = read_totals().bytes - once
    assert baskets <= again < baskets + metadata / 2  # the baskets again, not the tree
    assert ak.array_equal(first, second)
    assert ak.array_equal(second, _read(path))

    toy.write_nanoaod(path, 900, 2)  # another file at the same path
    rewritten = _read(path, handler=CountingSource)
    assert len(rewritten) == 900
    assert ak.array_equal(rewritten, _read(path))
    assert read_totals().bytes - once - again > metadata


def test_a_copy_elsewhere_is_read_from_its_own_path(toy, tmp_path):
    path, copy = tmp_path / "a.root", tmp_path / "b.root"
    toy.write_nanoaod(path, 600, 3)
    copy.write_bytes(path.read_bytes())  # the same header and UUID
    with uproot.open(path) as f:
        metadata = f.key("Events").fNbytes
    _read(path, handler=CountingSource)
    reset_read_totals()
    _read(copy, handler=CountingSource)
    assert read_totals().bytes > metadata
