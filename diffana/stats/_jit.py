"""The ``jax.jit`` used for the compiled entry points of :mod:`diffana.stats`.

LLVM's expensive optimisation passes cost about a third of the compilation time of a fit and buy no
measurable speed for these small, loop-bound programs, so they are switched off. The structure of a
model is always a static argument (it is hashable and compared by content).

Examples:
    >>> import jax.numpy as jnp
    >>> double = jit(lambda x: 2 * x)
    >>> int(double(jnp.asarray(2)))
    4
"""

from __future__ import annotations

from functools import partial

import jax

__all__ = ["COMPILER_OPTIONS", "jit"]

COMPILER_OPTIONS = {"xla_llvm_disable_expensive_passes": True}


def jit(fun=None, **kwargs):
    """``jax.jit`` with :data:`COMPILER_OPTIONS`; usable as ``@jit(static_argnums=0)`` too."""
    if fun is None:
        return partial(jit, **kwargs)
    return jax.jit(fun, compiler_options=COMPILER_OPTIONS, **kwargs)
