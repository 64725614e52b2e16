"""The ``jax.jit`` used for the compiled entry points of :mod:`diffana.stats`.

The structure of a model is always a static argument (hashable, compared by the program it compiles
to). Called at the top level (not inside a user's ``jit``, ``vmap`` or ``grad``), an entry point
is compiled with :data:`COMPILER_OPTIONS`: XLA's CPU backend then emits the fused kernels outside
the fits' loops with its older emitters, which compile about a quarter faster (the first hypotest
on a new structure: ~0.2-0.3 s less, the fits as fast; ``benchmarks/README.md``). ``jax.jit``
refuses compiler options on a jit nested in another transformation, so there the same function is
compiled with the enclosing one's settings.

Examples:
    >>> import jax, jax.numpy as jnp
    >>> double = jit(lambda x: 2 * x)
    >>> int(double(jnp.asarray(2)))
    4
    >>> int(jax.jit(lambda x: double(x) + 1)(jnp.asarray(2)))  # nested: no compiler options
    5
    >>> int(jax.jit(lambda: double(jnp.asarray(3)))())  # nested, with constant arguments
    6
"""

from __future__ import annotations

import functools

import jax

__all__ = ["COMPILER_OPTIONS", "jit"]

COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False}
"""Compiler options of the top-level calls (options of other backends ignore them)."""


def jit(fun=None, **kwargs):
    """``jax.jit`` with :data:`COMPILER_OPTIONS` at the top level; usable as ``@jit(...)`` too.

    The result has ``jax.jit``'s ``lower`` and ``trace`` (of the top-level compilation).
    """
    if fun is None:
        return functools.partial(jit, **kwargs)
    top = jax.jit(fun, compiler_options=COMPILER_OPTIONS, **kwargs)
    nested = jax.jit(fun, **kwargs)

    @functools.wraps(fun)
    def call(*args, **kw):
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves((args, kw))):
            return nested(*args, **kw)
        try:
            return top(*args, **kw)
        except ValueError as error:
            # inside a transformation, called with constants only: jax.jit refuses the options
            if "compiler_options" not in str(error):
                raise
            return nested(*args, **kw)

    call.lower, call.trace = top.lower, top.trace
    return call
