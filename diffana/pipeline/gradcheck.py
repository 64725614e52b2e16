"""Check a function's forward Jacobian and reverse VJP against central finite differences.

The reference is the central difference ``(f(x + h e_i) - f(x - h e_i)) / 2h`` for each input
coordinate ``i``, whose error is ``O(h^2 f''')`` plus ``O(eps_machine / h)`` rounding: use float64
and a step small against the scale on which ``f`` varies (the sigmoid width divided by the hardness).
The forward Jacobian comes from ``jax.jacfwd`` (one JVP per input coordinate), the reverse one from
``jax.jacrev`` (one VJP per output coordinate), so both derivative rules of a ``custom_jvp`` op (the
rule and its transpose) are checked. Useful to test processors as well as the soft ops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

__all__ = ["check_gradients", "finite_difference_jacobian"]


def _flat_function(f: Callable[..., Any], args: Sequence[Any]) -> tuple[Callable, np.ndarray]:
    flat_in, unravel = ravel_pytree(tuple(args))

    def flat_f(v: jax.Array) -> jax.Array:
        return ravel_pytree(f(*unravel(v)))[0]

    return jax.jit(flat_f), np.asarray(flat_in)


def finite_difference_jacobian(f: Callable[..., Any], *args: Any, step: float = 1e-6) -> np.ndarray:
    """Central finite-difference Jacobian of ``f`` at ``args``, flattened to ``[outputs, inputs]``.

    Examples:
        >>> jac = finite_difference_jacobian(lambda a: a**2, np.array([1.0, 3.0]))
        >>> np.round(jac, 6).tolist()
        [[2.0, 0.0], [0.0, 6.0]]
    """
    flat_f, x = _flat_function(f, args)
    shifts = np.eye(x.size, dtype=x.dtype) * step
    up = np.asarray(jax.vmap(flat_f)(jnp.asarray(x + shifts)))
    down = np.asarray(jax.vmap(flat_f)(jnp.asarray(x - shifts)))
    return ((up - down) / (2 * step)).T


def check_gradients(
    f: Callable[..., Any],
    *args: Any,
    step: float = 1e-6,
    rtol: float = 1e-5,
    modes: Sequence[str] = ("fwd", "rev"),
) -> np.ndarray:
    """Assert that ``jacfwd`` and ``jacrev`` of ``f`` match central finite differences.

    Entries may differ by ``rtol`` times the largest entry of the finite-difference Jacobian (so
    entries that should vanish are checked against the scale of the others). All derivatives must be
    finite. Returns the finite-difference Jacobian ``[outputs, inputs]``.

    Raises:
        AssertionError: naming the mode, the worst entry and both values.

    Examples:
        >>> _ = check_gradients(lambda a, b: jnp.sin(a) * b, np.array([0.3, 1.2]), 2.0)
    """
    flat_f, x = _flat_function(f, args)
    reference = finite_difference_jacobian(f, *args, step=step)
    scale = max(float(np.max(np.abs(reference))), np.finfo(float).tiny)
    rules = {"fwd": jax.jacfwd, "rev": jax.jacrev}
    for mode in modes:
        jac = np.asarray(jax.jit(rules[mode](flat_f))(jnp.asarray(x))).reshape(reference.shape)
        if not np.all(np.isfinite(jac)):
            msg = f"{mode}-mode Jacobian has non-finite entries at {np.argwhere(~np.isfinite(jac))[:5].tolist()}"
            raise AssertionError(msg)
        error = np.abs(jac - reference)
        worst = np.unravel_index(np.argmax(error), error.shape)
        if error[worst] > rtol * scale:
            msg = (
                f"{mode}-mode Jacobian differs from central finite differences at [output, input] "
                f"{[int(i) for i in worst]}: {jac[worst]!r} vs {reference[worst]!r} "
                f"(tolerance {rtol} x {scale:.3g})"
            )
            raise AssertionError(msg)
    return reference
