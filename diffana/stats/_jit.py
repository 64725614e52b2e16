"""The ``jax.jit`` used for the compiled entry points of :mod:`diffana.stats`.

The structure of a model is always a static argument (hashable, compared by the program it compiles
to). Compiler options cannot be set here: ``jax.jit`` refuses them on jits nested in other jits,
and every entry point may be called inside a user's ``jit``.

Examples:
    >>> import jax.numpy as jnp
    >>> double = jit(lambda x: 2 * x)
    >>> int(double(jnp.asarray(2)))
    4
"""

from __future__ import annotations

from functools import partial

import jax

__all__ = ["jit"]


def jit(fun=None, **kwargs):
    """``jax.jit``, usable as ``@jit(static_argnums=0)`` too."""
    if fun is None:
        return partial(jit, **kwargs)
    return jax.jit(fun, **kwargs)
