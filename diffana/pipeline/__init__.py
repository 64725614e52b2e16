"""Soft operations, column blocks, execution on Dask and the optimisation loop."""

from __future__ import annotations

from diffana.pipeline.histogram import SoftHistogram

__all__ = ["SoftHistogram"]
