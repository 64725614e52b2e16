"""Soft operations, column blocks, execution on Dask and the optimisation loop."""

from __future__ import annotations

from typing import Any

from diffana.pipeline.binning import Regular, Variable, bin_index
from diffana.pipeline.counting import at_least, count_distribution, exactly, object_sum
from diffana.pipeline.cuts import cut, logical_and, logical_not, logical_or, window
from diffana.pipeline.fill import kde_histogram, sigmoid_histogram
from diffana.pipeline.hardness import HARD, is_hard
from diffana.pipeline.histogram import SoftHistogram
from diffana.pipeline.jagged import Flat, Padded, flatten, pad, per_event_sum, segment_ids
from diffana.pipeline.observables import (
    Trijets,
    best_trijet_mass,
    scalar_sum,
    trijet_candidates,
    trijet_indices,
)

__all__ = [
    "HARD",
    "ClusterConfig",
    "Engine",
    "Flat",
    "Padded",
    "Regular",
    "RunReport",
    "SoftHistogram",
    "Trijets",
    "Variable",
    "at_least",
    "best_trijet_mass",
    "bin_index",
    "count_distribution",
    "cut",
    "exactly",
    "flatten",
    "is_hard",
    "kde_histogram",
    "logical_and",
    "logical_not",
    "logical_or",
    "object_sum",
    "pad",
    "per_event_sum",
    "scalar_sum",
    "segment_ids",
    "sigmoid_histogram",
    "trijet_candidates",
    "trijet_indices",
    "window",
]

# The engine pulls in dask and coffea (slow imports): load it on first use.
_ENGINE = {
    "ClusterConfig": "diffana.pipeline.cluster",
    "Engine": "diffana.pipeline.engine",
    "RunReport": "diffana.pipeline.report",
}


def __getattr__(name: str) -> Any:
    if name in _ENGINE:
        import importlib

        return getattr(importlib.import_module(_ENGINE[name]), name)
    msg = f"module 'diffana.pipeline' has no attribute {name!r}"
    raise AttributeError(msg)
