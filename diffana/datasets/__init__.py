"""Synthetic NanoAOD-like datasets and coffea-format filesets.

``diffana generate OUTDIR`` (or :func:`generate`) writes the built-in AGC-like dataset: ROOT files
with a NanoAOD tree ``Events`` per sample and ``OUTDIR/fileset.json``; :func:`load_fileset` reads
it back with absolute file paths, ready for coffea or the diffana engine.
"""

from __future__ import annotations

from diffana.datasets.fileset import (
    FILESET_NAME,
    event_weight,
    load_fileset,
    validate_fileset,
    write_fileset,
)
from diffana.datasets.generate import GeneratedDataset, generate
from diffana.datasets.samples import LUMI, PSEUDODATA, SAMPLES

__all__ = [
    "FILESET_NAME",
    "LUMI",
    "PSEUDODATA",
    "SAMPLES",
    "GeneratedDataset",
    "event_weight",
    "generate",
    "load_fileset",
    "validate_fileset",
    "write_fileset",
]
