"""What every worker of a cluster diffana starts imports as it starts (distributed's ``preload``,
:data:`diffana.pipeline.cluster.WORKER_PRELOAD`).

JAX (and its CPU backend), coffea's NanoEvents, dask-awkward and diffana's skim and kernels take
1.5-2 s to import. Imported by the first skim task instead, that time fell inside the skim on every
worker at once, before any file was read: a fixed cost that a second worker cannot share. Preloaded,
it is paid while the cluster starts, on all workers in parallel.
"""

from __future__ import annotations

from typing import Any

import coffea.nanoevents  # noqa: F401
import dask_awkward  # noqa: F401
import jax

import diffana.pipeline.evaluate
import diffana.pipeline.skim  # noqa: F401

__all__ = ["dask_setup"]


def dask_setup(worker: Any) -> None:
    """Start JAX's CPU backend (distributed calls this once the worker is set up)."""
    jax.devices()
