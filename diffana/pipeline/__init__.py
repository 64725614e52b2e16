"""Soft operations, column blocks, execution on Dask and the optimisation loop."""

from __future__ import annotations

from diffana.pipeline.binning import Regular, Variable, bin_index
from diffana.pipeline.cuts import cut, logical_and, logical_not, logical_or, window
from diffana.pipeline.fill import kde_histogram, sigmoid_histogram
from diffana.pipeline.hardness import HARD, is_hard
from diffana.pipeline.histogram import SoftHistogram

__all__ = [
    "HARD",
    "Regular",
    "SoftHistogram",
    "Variable",
    "bin_index",
    "cut",
    "is_hard",
    "kde_histogram",
    "logical_and",
    "logical_not",
    "logical_or",
    "sigmoid_histogram",
    "window",
]
