"""XLA's CPU backend settings diffana relies on, applied when diffana is imported.

XLA runs a ``while`` loop as a sequence of separately compiled kernels, one per fused operation,
unless the loop is *small*: then the whole loop is compiled into one function. A small model's
fit (a Newton loop over a handful of parameters) is hundreds of tiny kernels that way, each costing
a compilation and a dispatch per iteration; compiled as one function, a hypothesis test compiles in
about 1.5 s instead of 2.2 s and runs about 1.5x faster (``benchmarks/README.md``). The size limit
(bytes the loop accesses, XLA's default 1 KiB) is raised to :data:`SMALL_LOOP_BYTES`; loops with a
scatter or a library call (LAPACK, for models of more than 8 parameters) are never merged.

XLA reads ``XLA_FLAGS`` once, when JAX starts its CPU backend, so this only takes effect if diffana
is imported before the first JAX computation of the process. A user's own
``--xla_backend_extra_options`` in ``XLA_FLAGS`` is left as it is.

Examples:
    >>> env = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"}
    >>> configure(env)
    >>> env["XLA_FLAGS"]
    '--xla_cpu_multi_thread_eigen=false --xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=262144'
    >>> env = {"XLA_FLAGS": "--xla_backend_extra_options=xla_cpu_disable_loop_unrolling"}
    >>> configure(env)  # the user's own extra options are kept as they are
    >>> env["XLA_FLAGS"]
    '--xla_backend_extra_options=xla_cpu_disable_loop_unrolling'
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

__all__ = ["FLAG", "SMALL_LOOP_BYTES", "configure"]

SMALL_LOOP_BYTES = 262144
"""Loops accessing fewer bytes are compiled as one function (XLA's default: 1024)."""

FLAG = f"--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold={SMALL_LOOP_BYTES}"
"""The ``XLA_FLAGS`` entry (the Dask workers' environment carries it too)."""


def configure(environ: MutableMapping[str, str] = os.environ) -> None:
    """Add diffana's settings to ``XLA_FLAGS`` unless the user set the same option there."""
    flags = environ.get("XLA_FLAGS", "")
    if "--xla_backend_extra_options" in flags:
        return
    environ["XLA_FLAGS"] = f"{flags} {FLAG}".strip()
