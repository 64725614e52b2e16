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

    return flat_f, np.asarray(flat_in)


def _central_differences(flat_f: Callable, x: jax.Array, step: float) -> jax.Array:
    shifts = jnp.eye(x.size, dtype=x.dtype) * step
    up, down = jax.vmap(flat_f)(x + shifts), jax.vmap(flat_f)(x - shifts)
    return ((up - down) / (2 * step)).T


def finite_difference_jacobian(f: Callable[..., Any], *args: Any, step: float = 1e-6) -> np.ndarray:
    """Central finite-difference Jacobian of ``f`` at ``args``, flattened to ``[outputs, inputs]``.

    Examples:
        >>> jac = finite_difference_jacobian(lambda a: a**2, np.array([1.0, 3.0]))
        >>> np.round(jac, 6).tolist()
        [[2.0, 0.0], [0.0, 6.0]]
    """
    flat_f, x = _flat_function(f, args)
    return np.asarray(jax.jit(_central_differences, static_argnums=(0, 2))(flat_f, x, step))


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
    rules = {"fwd": jax.jacfwd, "rev": jax.jacrev}

    @jax.jit  # one compilation for the differences and both derivative modes
    def jacobians(x: jax.Array) -> tuple[jax.Array, ...]:
        return _central_differences(flat_f, x, step), *(rules[m](flat_f)(x) for m in modes)

    reference, *derived = (np.asarray(j) for j in jacobians(jnp.asarray(x)))
    scale = max(float(np.max(np.abs(reference))), np.finfo(float).tiny)
    for mode, jac in zip(modes, derived, strict=True):
        jac = jac.reshape(reference.shape)
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
