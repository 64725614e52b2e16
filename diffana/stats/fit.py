r"""Maximum-likelihood fits of a model, differentiable with respect to yields, data and fixed values.

:func:`fit` minimises ``twice_nll`` with the projected Newton method of
:mod:`diffana.stats.optimize` inside ``jit``; :func:`fixed_poi_fit` holds the POI at a value. Both
return a :class:`FitResult` with a convergence status and run under ``vmap`` (over data, POI values,
yields).

Derivatives never unroll the solver. The best-fit point carries the implicit-function-theorem
tangent (Krantz & Parks, *The Implicit Function Theorem*; Blondel et al. 2022, arXiv:2105.15183):
with the free parameters :math:`F` (not fixed, not held on a bound or kink) and the gradient
:math:`\nabla_x f(\hat x(y), y) = 0` on :math:`F`,

.. math:: \frac{\partial \hat x_F}{\partial y} = -H_{FF}^{-1}\,\frac{\partial^2 f}{\partial x_F\,\partial y},
    \qquad \frac{\partial \hat x_{\rm fixed}}{\partial y} = \frac{\partial x_{\rm fixed}}{\partial y}.

The fitted ``twice_nll`` uses the envelope theorem instead:
:math:`\mathrm{d}f(\hat x(y), y)/\mathrm{d}y = \partial_y f` at :math:`\hat x` (plus the fixed values'
contribution), which needs no linear solve.

Examples:
    >>> import jax, jax.numpy as jnp
    >>> from diffana.stats.structure import structure_from_spec
    >>> from diffana.stats.yields import yields_from_spec
    >>> from diffana.stats.likelihood import auxdata
    >>> spec = {"channels": [{"name": "sr", "samples": [
    ...     {"name": "sig", "data": [12.0, 11.0], "modifiers": [
    ...         {"name": "mu", "type": "normfactor", "data": None}]},
    ...     {"name": "bkg", "data": [50.0, 52.0], "modifiers": [
    ...         {"name": "unc", "type": "shapesys", "data": [3.0, 7.0]}]}]}]}
    >>> s = structure_from_spec(spec)
    >>> y = yields_from_spec(s, spec)
    >>> data = jnp.concatenate([jnp.array([51.0, 48.0]), auxdata(s, y)])
    >>> result = fixed_poi_fit(s, y, data, 1.0)
    >>> [round(float(v), 6) for v in result.bestfit], round(float(result.twice_nll), 6)
    ([1.0, 0.972247, 0.875536], 28.92218)
    >>> int(result.status)  # Status.CONVERGED
    0
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from diffana.errors import ModelError
from diffana.stats._jit import jit
from diffana.stats.derivatives import deviance_derivatives, prepare, prepared_derivatives
from diffana.stats.likelihood import deviance, twice_nll
from diffana.stats.optimize import Options, Status, autodiff_derivatives, minimize
from diffana.stats.structure import ModelStructure
from diffana.stats.yields import Yields

__all__ = [
    "FitResult",
    "fit",
    "fixed_poi_fit",
    "hessian",
    "parameter_uncertainties",
    "resolve_fit_settings",
]


class FitResult(NamedTuple):
    """Result of a fit (a pytree; batched along a leading axis under ``vmap``).

    Attributes:
        bestfit: fitted parameters (implicitly differentiable).
        twice_nll: :math:`-2\\ln L` at ``bestfit`` (differentiable by the envelope theorem).
        status: :class:`~diffana.stats.optimize.Status` code (0 = converged).
        n_iter: Newton iterations used.
        free: parameters neither fixed nor held on a bound or kink at the optimum.
    """

    bestfit: Float[Array, " npars"]
    twice_nll: Float[Array, ""]
    status: Int[Array, ""]
    n_iter: Int[Array, ""]
    free: Bool[Array, " npars"]

    @property
    def converged(self) -> Array:
        return self.status == Status.CONVERGED


def resolve_fit_settings(structure: ModelStructure, init=None, bounds=None, fixed=None):
    """Fill missing ``init``/``bounds``/``fixed`` with the model's suggestions (as arrays)."""
    t = structure.tables
    init = jnp.asarray(t["init"] if init is None else init, dtype=jnp.float64)
    bounds = jnp.asarray(t["bounds"] if bounds is None else bounds, dtype=jnp.float64)
    fixed = jnp.asarray(t["fixed"] if fixed is None else fixed, dtype=bool)
    if init.shape[-1] != structure.npars or bounds.shape[-2:] != (structure.npars, 2):
        msg = f"init/bounds have shapes {init.shape}/{bounds.shape} but the model has "
        msg += f"{structure.npars} parameters; give one init and one (low, high) pair each"
        raise ModelError(msg)
    return init, bounds, fixed


def _grad_x(structure, x, yields, data):
    return deviance_derivatives(structure, yields, x, data, order=1)[1]


def _hess_x(structure, x, yields, data):
    return deviance_derivatives(structure, yields, x, data, order=2)[2]


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _implicit(structure, x, free, fixed, yields, data, init):
    """Identity on ``x`` whose tangent is the implicit-function-theorem tangent of the optimum."""
    del free, fixed, yields, data, init
    return x


@_implicit.defjvp
def _implicit_jvp(structure, primals, tangents):
    x, free, fixed, yields, data, _ = primals
    _, _, _, d_yields, d_data, d_init = tangents
    d_fixed = jnp.where(fixed, d_init, 0.0)
    _, rhs = jax.jvp(
        lambda x_, y_, d_: _grad_x(structure, x_, y_, d_),
        (x, yields, data),
        (d_fixed, d_yields, d_data),
    )
    hess = _hess_x(structure, x, yields, data)
    both = free[:, None] & free[None, :]
    h_free = jnp.where(both, hess, jnp.eye(x.shape[0], dtype=x.dtype))
    d_free = -jnp.linalg.solve(h_free, jnp.where(free, rhs, 0.0))
    return x, jnp.where(free, d_free, d_fixed)


def _fit(structure, yields, data, init, bounds, fixed, options) -> FitResult:
    data = jnp.asarray(data, dtype=jnp.float64)
    stop = lax.stop_gradient
    y0, d0 = stop(yields), stop(data)
    kinks = structure.tables["kinks"]
    has_kinks = bool(kinks.any())
    if structure.clip_sample_data is None and structure.clip_bin_data is None:
        prep = prepare(structure, y0)

        def derivs(x, order):
            return prepared_derivatives(
                structure, prep, x, d0, order, mirrored=has_kinks, gauss_newton=True
            )
    else:
        derivs = autodiff_derivatives(
            lambda x: deviance(structure, y0, x, d0), kinks if has_kinks else None
        )

    solution = minimize(
        derivs,
        stop(init),
        bounds[..., 0],
        bounds[..., 1],
        fixed,
        structure.tables["kinks"],
        options,
    )
    x = _implicit(structure, solution.x, solution.free, fixed, yields, data, init)
    # envelope theorem: the free parameters' tangents do not change the optimal value
    x_env = jnp.where(solution.free, stop(x), x)
    value = twice_nll(structure, yields, x_env, data)
    return FitResult(x, value, solution.status, solution.n_iter, solution.free)


@jit(static_argnums=0, static_argnames=("options",))
def fit(
    structure: ModelStructure,
    yields: Yields,
    data: Float[ArrayLike, " B+A"],
    *,
    init: ArrayLike | None = None,
    bounds: ArrayLike | None = None,
    fixed: ArrayLike | None = None,
    options: Options = Options(),  # noqa: B008 (immutable)
) -> FitResult:
    """Maximum-likelihood fit of all parameters not ``fixed`` (defaults: the model's suggestions)."""
    init, bounds, fixed = resolve_fit_settings(structure, init, bounds, fixed)
    return _fit(structure, yields, data, init, bounds, fixed, options)


@jit(static_argnums=0, static_argnames=("options",))
def fixed_poi_fit(
    structure: ModelStructure,
    yields: Yields,
    data: Float[ArrayLike, " B+A"],
    poi_value: Float[ArrayLike, ""],
    *,
    init: ArrayLike | None = None,
    bounds: ArrayLike | None = None,
    fixed: ArrayLike | None = None,
    options: Options = Options(),  # noqa: B008 (immutable)
) -> FitResult:
    """Fit with the parameter of interest held at ``poi_value`` (differentiable in it too)."""
    if structure.poi_index is None:
        msg = "the model has no parameter of interest; build it with poi_name=... to fix the POI"
        raise ModelError(msg)
    init, bounds, fixed = resolve_fit_settings(structure, init, bounds, fixed)
    init = init.at[..., structure.poi_index].set(poi_value)
    fixed = fixed.at[..., structure.poi_index].set(True)
    return _fit(structure, yields, data, init, bounds, fixed, options)


def hessian(
    structure: ModelStructure, yields: Yields, pars: ArrayLike, data: ArrayLike
) -> Float[Array, "npars npars"]:
    """Hessian of ``twice_nll`` with respect to the parameters."""
    return _hess_x(structure, jnp.asarray(pars), yields, jnp.asarray(data))


def parameter_uncertainties(
    structure: ModelStructure,
    yields: Yields,
    pars: ArrayLike,
    data: ArrayLike,
    fixed: ArrayLike | None = None,
) -> tuple[Float[Array, " npars"], Float[Array, "npars npars"]]:
    r"""Uncertainties and correlations from the inverse Hessian, :math:`C = 2 H_{2\mathrm{NLL}}^{-1}`.

    Fixed parameters get zero uncertainty and zero correlation rows (as pyhf with MINUIT).
    """
    fixed = jnp.asarray(structure.tables["fixed"] if fixed is None else fixed, dtype=bool)
    hess = hessian(structure, yields, pars, data)
    floating = ~fixed
    both = floating[:, None] & floating[None, :]
    cov = 2.0 * jnp.linalg.inv(jnp.where(both, hess, jnp.eye(hess.shape[0])))
    cov = jnp.where(both, cov, 0.0)
    sigma = jnp.sqrt(jnp.diag(cov))
    safe = jnp.where(sigma > 0, sigma, 1.0)
    corr = jnp.where(both, cov / jnp.outer(safe, safe), 0.0)
    return sigma, corr
