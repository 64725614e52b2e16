"""A box-constrained Newton minimiser that runs inside ``jit`` and ``vmap`` and reports a status.

Algorithm (projected Newton, Bertsekas 1982, with Levenberg-Marquardt damping):

1. At ``x`` compute the value, gradient ``g``, Hessian ``H`` and a positive semi-definite
   fallback ``G`` (the Gauss-Newton part of ``H`` for the HistFactory deviance).
2. Parameters that are fixed, or sit on a bound with the gradient pointing outwards, are *active*:
   they stay (or are moved exactly) on the bound. So is a parameter on a bound whose last Newton
   step pointed out of the box, while the gradient predicted after the step (``g + H d``) still
   does; without this it would enter and leave the active set on alternate iterations, each time
   with a projected step that needs halvings. The others take the Newton step
   ``d = -(H_FF + lambda D)^{-1} g_F``. Where ``H_FF + lambda D`` has no Cholesky factor, ``G``
   takes its place (far from the minimum a Poisson likelihood's Hessian is often indefinite and
   Gauss-Newton steps are the good ones there), and then ``lambda`` is raised tenfold until one
   exists, within the iteration (a factorisation costs little next to the derivatives).
   ``lambda`` also grows when no step decreases the objective and shrinks after full steps.
3. A projected Armijo backtracking line search (``t = 1, 1/2, 1/4, ...``) takes the longest step
   that decreases the objective enough.
4. Stop when the Newton decrement ``-g.d`` falls below ``tol * (1 + |f|)``, after taking that last
   step in full (the decrease it promises is below the rounding of ``f``): it leaves an error of
   order the decrement squared.

Kinks. Interpolation codes 0 and 1 make the objective non-differentiable at ``alpha = 0``; Newton's
method oscillates there and pyhf's JAX backend stalls. Each kinked parameter is kept in one
half-line (``alpha >= +tiny`` or ``alpha <= -tiny``), on which the objective is smooth, and treats the
kink as a bound. When it sits on the kink and the gradient pushes it across, the one-sided
derivative on the other side decides: if it also points away from the kink the parameter changes
side, otherwise the kink is the minimum along that parameter and it stays pinned there (active).

Failures are values: the :class:`Solution` carries a :class:`Status`, never an exception, so fits
can run under ``jit``/``vmap`` and the caller decides whether to raise.

Examples:
    >>> import jax.numpy as jnp, numpy as np
    >>> fun = lambda x: (x[0] - 1.0) ** 2 + jnp.abs(x[1]) + (x[1] - 0.3) ** 2
    >>> kinks = np.array([False, True])
    >>> sol = minimize(autodiff_derivatives(fun, kinks), jnp.array([0.0, 0.0]), jnp.array([-5.0, -5.0]),
    ...                jnp.array([0.5, 5.0]), jnp.zeros(2, bool), kinks)
    >>> [round(float(v), 9) for v in sol.x], Status(int(sol.status)).name
    ([0.5, 0.0], 'CONVERGED')
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, Int

__all__ = [
    "KINK_OFFSET",
    "SMALL_MODEL",
    "Derivatives",
    "Options",
    "Solution",
    "Status",
    "autodiff_derivatives",
    "minimize",
]

KINK_OFFSET = 1e-100
"""Distance from a kink at which a kinked parameter is kept (numerically the kink itself)."""

_MAX_HALVINGS = 14
_ARMIJO = 1e-4
_LAMBDA_MAX = 1e30
SMALL_MODEL = 8
"""Up to this many parameters a fit's linear algebra is written out (see :func:`_cholesky`), no
LAPACK call, so that XLA compiles its loops as one function (:mod:`diffana._xla`)."""


class Status(enum.IntEnum):
    """Outcome of a fit."""

    CONVERGED = 0
    MAX_ITERATIONS = 1
    NONFINITE = 2
    STALLED = 3


@dataclass(frozen=True)
class Options:
    """Settings of :func:`minimize` (hashable, so they can be static arguments of ``jit``).

    Attributes:
        maxiter: maximal number of Newton iterations.
        tol: stop when the Newton decrement is below ``tol * (1 + |f|)``.
    """

    maxiter: int = 200
    tol: float = 1e-13


class Solution(NamedTuple):
    """Result of :func:`minimize`.

    Attributes:
        x: the minimiser.
        value: the objective at ``x``.
        status: a :class:`Status` code.
        n_iter: Newton iterations used.
        free: parameters that are neither fixed nor held on a bound or kink at ``x`` (the ones the
            implicit function theorem differentiates).
    """

    x: Float[Array, " n"]
    value: Float[Array, ""]
    status: Int[Array, ""]
    n_iter: Int[Array, ""]
    free: Bool[Array, " n"]


class _State(NamedTuple):
    x: Array
    side: Array
    lam: Array
    it: Array
    status: Array
    done: Array
    free: Array
    value: Array
    hold: Array


Derivatives = Callable[[Array, int], tuple[Array, ...]]
"""``derivs(x, order)``: ``(value,)`` (order 0) or ``(value, grad, hessian, fallback)`` (order 2)
at ``x``, ``fallback`` a positive semi-definite approximation of the Hessian (Gauss-Newton) used
where the Hessian is not positive definite, or the Hessian itself; with kinks, order 2 appends the
gradient at ``x`` with the kinked parameters' signs flipped."""


def autodiff_derivatives(fun: Callable[[Array], Array], kinks=None) -> Derivatives:
    """Derivatives of a scalar function by automatic differentiation (forward over reverse).

    With ``kinks`` (a bool array), order 2 also returns the gradient at the point with the kinked
    parameters' signs flipped (see :func:`minimize`).
    """

    def derivs(x: Array, order: int) -> tuple[Array, ...]:
        if order == 0:
            return (fun(x),)
        if order == 1:
            return jax.value_and_grad(fun)(x)

        def grad_aux(z):
            value, grad = jax.value_and_grad(fun)(z)
            return grad, (value, grad)

        hess, (value, grad) = jax.jacfwd(grad_aux, has_aux=True)(x)
        if kinks is None:
            return value, grad, hess, hess
        return value, grad, hess, hess, jax.grad(fun)(jnp.where(jnp.asarray(kinks), -x, x))

    return derivs


def _damped_cholesky(hess, fallback, free, lam):
    """Cholesky factor of the free block of ``hess + lam D``, with ``fallback`` and larger ``lam``.

    If the Hessian's block does not factorise, the positive semi-definite ``fallback`` is tried at
    the same ``lam``, then ``lam`` is raised tenfold until it factorises. Only factorisations are
    repeated (no new derivatives); above ``_LAMBDA_MAX`` ``factored`` is false.
    """
    eye = jnp.eye(hess.shape[0], dtype=hess.dtype)
    both = free[:, None] & free[None, :]

    def factor(matrix, lam):
        block = jnp.where(both, matrix, eye)
        scale = jnp.maximum(jnp.abs(jnp.diag(block)), 1e-12)
        chol = _cholesky(block + lam * jnp.diag(scale))
        return chol, jnp.all(jnp.isfinite(chol))

    # every attempt in the loop (none before it), so that the factorisation is traced once
    def attempt(carry):
        lam, _, _, tries = carry
        # the Hessian, then the fallback at the same lam, then the fallback with lam raised
        lam = jnp.where(tries <= 1, lam, jnp.maximum(lam * 10.0, 1e-6))
        return (lam, *factor(jnp.where(tries == 0, hess, fallback), lam), tries + 1)

    lam, chol, factored, _ = lax.while_loop(
        lambda c: ~c[2] & (c[0] <= _LAMBDA_MAX), attempt, (lam, eye, False, 0)
    )
    return lam, jnp.where(factored, chol, eye), factored


def _solve(chol, g, free):
    """``-A^{-1} g`` on the free parameters, ``A = chol chol^T``."""
    g = jnp.where(free, g, 0.0)
    n = g.shape[0]
    if n > SMALL_MODEL:
        return -jax.scipy.linalg.cho_solve((chol, True), g)
    y = []
    for j in range(n):  # column-oriented forward substitution, then backward with chol^T
        y.append(g[j] / chol[j, j])
        g = g - chol[:, j] * y[j]
    y = jnp.stack(y)
    x = [None] * n
    for i in reversed(range(n)):
        x[i] = y[i] / chol[i, i]
        y = y - chol[i, :] * x[i]
    return -jnp.stack(x)


def _cholesky(a):
    """Lower Cholesky factor (NaN where ``a`` is not positive definite).

    Up to :data:`SMALL_MODEL` parameters it is computed column by column with rank-one updates of
    the whole matrix: no LAPACK call, which would keep XLA from compiling the fit's loops as one
    function, and under ``vmap`` (toys) they run vectorised over the batch, where LAPACK's
    ``potrf`` is called once per matrix.
    """
    n = a.shape[0]
    if n > SMALL_MODEL:
        return jnp.linalg.cholesky(a)
    below = jnp.arange(n)
    cols = []
    for j in range(n):
        pivot = a[j, j]
        d = jnp.where(pivot > 0, jnp.sqrt(jnp.where(pivot > 0, pivot, 1.0)), jnp.nan)
        col = jnp.where(below >= j, a[:, j] / d, 0.0)
        cols.append(col)
        a = a - jnp.outer(col, col)
    return jnp.stack(cols, axis=1)


def _line_search(derivs, x, f, g, d, project, side):
    """Longest step ``t = 2**-k`` (k < 14) with sufficient decrease along the projected arc.

    Returns the point, its value, whether it decreases enough, ``k``, and the full step's point
    and value.
    """

    def trial(t):
        xt = project(x + t * d, side)
        (ft,) = derivs(xt, 0)
        ok = jnp.isfinite(ft) & (ft <= f + _ARMIJO * jnp.sum(g * (xt - x)))
        return xt, ft, ok

    def cond(carry):
        return ~carry[3] & (carry[4] <= _MAX_HALVINGS)

    def body(carry):
        t, _, _, _, k, x1, f1 = carry
        xt, ft, ok = trial(t)
        return t * 0.5, xt, ft, ok, k + 1, jnp.where(k == 0, xt, x1), jnp.where(k == 0, ft, f1)

    # the full step is the loop's first pass (not a call before it): the objective is traced and
    # compiled once, which is most of a small model's compile time
    start = (jnp.asarray(1.0), x, f, jnp.asarray(False), 0, x, f)
    _, xt, ft, ok, k, x1, f1 = lax.while_loop(cond, body, start)
    return xt, ft, ok, k - 1, x1, f1


def minimize(
    derivs: Derivatives,
    x0: Float[Array, " n"],
    lower: Float[Array, " n"],
    upper: Float[Array, " n"],
    fixed: Bool[Array, " n"],
    kinks: np.ndarray,
    options: Options = Options(),
) -> Solution:
    """Minimise over the box ``[lower, upper]`` with ``fixed`` parameters held at ``x0``.

    Args:
        derivs: ``derivs(x, order)`` (see :data:`Derivatives`; :func:`autodiff_derivatives`
            builds it from a scalar function).
        x0: starting point (also the values of the fixed parameters).
        lower, upper: bounds.
        fixed: parameters held constant.
        kinks: NumPy bool array, the parameters along which the objective may have a kink at 0.
        options: iteration limit and tolerance.
    """
    x0 = jnp.asarray(x0, dtype=jnp.float64)
    lower = jnp.asarray(lower, dtype=x0.dtype)
    upper = jnp.asarray(upper, dtype=x0.dtype)
    fixed = jnp.asarray(fixed, dtype=bool)
    has_kinks = bool(np.any(kinks))
    flippable = jnp.asarray(kinks, bool) & ~fixed & (lower < 0) & (upper > 0)
    eps = 1e-10 * jnp.maximum(1.0, upper - lower)

    def box(side):
        lo = jnp.where(flippable & (side > 0), jnp.maximum(lower, KINK_OFFSET), lower)
        hi = jnp.where(flippable & (side < 0), jnp.minimum(upper, -KINK_OFFSET), upper)
        return lo, hi

    def project(x, side):
        lo, hi = box(side)
        return jnp.where(fixed, x0, jnp.clip(x, lo, hi))

    side0 = jnp.where(x0 >= 0, 1.0, -1.0)
    x_start = project(x0, side0)

    def body(state: _State) -> _State:
        x, side = state.x, state.side
        f, g, hess, fallback, *mirror = derivs(x, 2)
        finite = jnp.isfinite(f) & jnp.all(jnp.isfinite(g))
        lo, hi = box(side)
        # kink flips: on the kink with the gradient pushing across it, and the one-sided
        # derivative on the other side (the mirrored gradient) pointing away from it too
        if has_kinks:
            on_kink = flippable & (jnp.abs(x) <= 2 * KINK_OFFSET) & (side * g > 0)
            x_flip = jnp.where(on_kink, -x, x)
            flip = on_kink & (side * mirror[0] > 0)
        else:
            flip = jnp.zeros_like(fixed)
        any_flip = jnp.any(flip)
        # active set and Newton direction on the free parameters; ``hold``: parameters on a bound
        # whose Newton step pointed out of the box, held there while the gradient predicted after
        # the step still points out (without it they enter and leave the active set on alternate
        # iterations, each time with a projected step that needs halvings)
        on_lo, on_hi = x <= lo + eps, x >= hi - eps
        held = state.hold & (on_lo | on_hi)
        at_lo = on_lo & ((g > 0) | held)
        at_hi = on_hi & ((g < 0) | held)
        active = fixed | at_lo | at_hi
        free = ~active
        lam, chol, factored = _damped_cholesky(hess, fallback, free, state.lam)
        newton = _solve(chol, g, free)
        predicted = g + jnp.sum(hess * jnp.where(free, newton, 0.0), axis=1)
        keep = held & ((on_lo & (predicted > 0)) | (on_hi & (predicted < 0)))
        leaving = free & ((on_lo & (newton < 0)) | (on_hi & (newton > 0)))
        released = jnp.any(held & ~keep)
        target = jnp.where(at_lo, lo, hi)
        d = jnp.where(free, newton, jnp.where(fixed, 0.0, target - x))
        decrement = -jnp.sum(g * (project(x + d, side) - x))
        small = decrement <= options.tol * (1.0 + jnp.abs(f))
        converged = factored & small & (decrement >= 0) & ~any_flip & ~released
        new_x, new_f, ok, halvings, full_x, full_f = _line_search(derivs, x, f, g, d, project, side)
        stepped = ok & factored
        # the converged step is taken in full: the decrease it promises is below the rounding of
        # f, so the line search may cut it, but it removes an error of order the decrement's root
        final = converged & jnp.isfinite(full_f)
        new_x = jnp.where(final, full_x, jnp.where(stepped, new_x, x))
        new_f = jnp.where(final, full_f, jnp.where(stepped, new_f, f))
        lam = jnp.where(
            stepped,
            jnp.where(halvings == 0, lam * 0.1, jnp.maximum(lam, 1e-6)),
            jnp.maximum(lam * 10.0, 1e-6),
        )
        lam = jnp.where(lam < 1e-12, 0.0, lam)
        status = jnp.where(
            ~finite,
            Status.NONFINITE,
            jnp.where(lam > _LAMBDA_MAX, Status.STALLED, Status.CONVERGED),
        )
        done = ~finite | converged | (lam > _LAMBDA_MAX)
        # a kink flip replaces the Newton step of this iteration
        return _State(
            x=jnp.where(any_flip, jnp.where(flip, x_flip, x), new_x) if has_kinks else new_x,
            side=jnp.where(flip, -side, side),
            lam=jnp.where(any_flip, state.lam, lam),
            it=state.it + 1,
            status=status.astype(jnp.int32),
            done=done & ~(any_flip & finite),
            free=free & ~flip,
            value=jnp.where(any_flip, f, new_f),
            hold=keep | leaving,
        )

    def cond(state: _State) -> Array:
        return ~state.done & (state.it < options.maxiter)

    init = _State(
        x=x_start,
        side=side0,
        lam=jnp.asarray(0.0),
        it=jnp.asarray(0, jnp.int32),
        status=jnp.asarray(Status.MAX_ITERATIONS, jnp.int32),
        done=jnp.asarray(False),
        free=~fixed,
        value=jnp.asarray(jnp.inf),
        hold=jnp.zeros_like(fixed),
    )
    final = lax.while_loop(cond, body, init)
    status = jnp.where(final.done, final.status, Status.MAX_ITERATIONS).astype(jnp.int32)
    return Solution(final.x, final.value, status, final.it, final.free)
