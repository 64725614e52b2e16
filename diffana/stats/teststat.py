r"""Profile-likelihood test statistics (Cowan, Cranmer, Gross, Vitells, arXiv:1007.1727).

With :math:`t = -2\ln\lambda(\mu) = 2\mathrm{NLL}(\mu, \hat{\hat\theta}) - 2\mathrm{NLL}(\hat\mu, \hat\theta)`
clipped at zero (Eq. 8):

* ``tmu`` / ``tmu_tilde``: :math:`t_\mu` / :math:`\tilde t_\mu` (Eqs. 8, 11),
* ``qmu`` / ``qmu_tilde``: :math:`q_\mu` / :math:`\tilde q_\mu`, zero when :math:`\hat\mu > \mu` (Eqs. 14, 16),
* ``q0``: discovery, zero when :math:`\hat\mu < 0` (Eq. 12), at :math:`\mu = 0`.

As in pyhf, the "tilde" variants are the same computation with the POI bounded below at zero (the
model's suggested bounds); which one a number is depends on the ``bounds`` given. Every function is
pure, jit/vmap-able, and differentiable in yields and data by the envelope theorem (the two fitted
values need no derivative of the fitted parameters).

Examples:
    >>> import jax.numpy as jnp
    >>> from diffana.stats import Model
    >>> spec = {"channels": [{"name": "sr", "samples": [
    ...     {"name": "sig", "data": [12.0, 11.0], "modifiers": [
    ...         {"name": "mu", "type": "normfactor", "data": None}]},
    ...     {"name": "bkg", "data": [50.0, 52.0], "modifiers": [
    ...         {"name": "unc", "type": "shapesys", "data": [3.0, 7.0]}]}]}]}
    >>> m = Model(spec)
    >>> data = jnp.array([51.0, 48.0] + m.config.auxdata)
    >>> round(float(qmu_tilde(m.structure, m.yields, data, 1.0)[0]), 4)  # pyhf: 3.9382
    3.9382
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from diffana.errors import ModelError
from diffana.stats._jit import jit
from diffana.stats.fit import FitResult, _fit, resolve_fit_settings
from diffana.stats.optimize import Options
from diffana.stats.structure import ModelStructure
from diffana.stats.yields import Yields

__all__ = [
    "TEST_STATISTICS",
    "ProfileFits",
    "profile_fits",
    "q0",
    "qmu",
    "qmu_tilde",
    "statistic",
    "tmu",
    "tmu_tilde",
]

TEST_STATISTICS = ("q0", "qmu", "qmu_tilde", "tmu", "tmu_tilde")


class ProfileFits(NamedTuple):
    """The conditional fit (POI fixed at ``mu``) and the unconditional fit of one data set."""

    fixed_poi: FitResult
    free: FitResult


def _stack(*trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def profile_fits(
    structure: ModelStructure,
    yields: Yields,
    data: Float[ArrayLike, " B+A"],
    mu: Float[ArrayLike, ""],
    *,
    init: ArrayLike | None = None,
    bounds: ArrayLike | None = None,
    fixed: ArrayLike | None = None,
    options: Options = Options(),  # noqa: B008 (immutable)
) -> ProfileFits:
    """Run the fixed-POI and the free fit together (one batched solve)."""
    poi = _poi(structure)
    init, bounds, fixed = resolve_fit_settings(structure, init, bounds, fixed)
    inits = jnp.stack([init.at[poi].set(mu), init])
    fixeds = jnp.stack([fixed.at[poi].set(True), fixed])
    fits = jax.vmap(lambda i, f: _fit(structure, yields, data, i, bounds, f, options))(
        inits, fixeds
    )
    return ProfileFits(*(jax.tree.map(lambda x, k=k: x[k], fits) for k in range(2)))


def _poi(structure: ModelStructure) -> int:
    if structure.poi_index is None:
        msg = "profile-likelihood test statistics need a parameter of interest; build the model "
        msg += "with poi_name=..."
        raise ModelError(msg)
    return structure.poi_index


def clipped_difference(fixed_value: Array, free_value: Array) -> Array:
    """:math:`t = \\max(0, 2\\mathrm{NLL}_{\\rm fixed} - 2\\mathrm{NLL}_{\\rm free})`."""
    return jnp.clip(fixed_value - free_value, 0.0, None)


def _statistic(kind: str, mu, fits: ProfileFits, poi: int) -> Array:
    t = clipped_difference(fits.fixed_poi.twice_nll, fits.free.twice_nll)
    muhat = fits.free.bestfit[..., poi]
    if kind in ("qmu", "qmu_tilde"):
        return jnp.where(muhat > mu, 0.0, t)
    if kind == "q0":
        return jnp.where(muhat < 0, 0.0, t)
    return t


@jit(static_argnums=(0, 1), static_argnames=("options",))
def statistic(
    kind: str,
    structure: ModelStructure,
    yields: Yields,
    data: Float[ArrayLike, " B+A"],
    mu: Float[ArrayLike, ""],
    **fit_kwargs,
) -> tuple[Array, ProfileFits]:
    """The test statistic ``kind`` (one of :data:`TEST_STATISTICS`) and the two fits behind it."""
    if kind not in TEST_STATISTICS:
        msg = f"unknown test statistic {kind!r}; use one of {', '.join(TEST_STATISTICS)}"
        raise ModelError(msg)
    mu = 0.0 if kind == "q0" else mu
    fits = profile_fits(structure, yields, data, mu, **fit_kwargs)
    return _statistic(kind, mu, fits, _poi(structure)), fits


def qmu(structure, yields, data, mu, **fit_kwargs):
    r""":math:`q_\mu` (Eq. 14 of arXiv:1007.1727): zero for :math:`\hat\mu > \mu`."""
    return statistic("qmu", structure, yields, data, mu, **fit_kwargs)


def qmu_tilde(structure, yields, data, mu, **fit_kwargs):
    r""":math:`\tilde q_\mu` (Eq. 16): :math:`q_\mu` with the POI bounded below at zero."""
    return statistic("qmu_tilde", structure, yields, data, mu, **fit_kwargs)


def tmu(structure, yields, data, mu, **fit_kwargs):
    r""":math:`t_\mu = -2\ln\lambda(\mu)` (Eq. 8)."""
    return statistic("tmu", structure, yields, data, mu, **fit_kwargs)


def tmu_tilde(structure, yields, data, mu, **fit_kwargs):
    r""":math:`\tilde t_\mu` (Eq. 11): :math:`t_\mu` with the POI bounded below at zero."""
    return statistic("tmu_tilde", structure, yields, data, mu, **fit_kwargs)


def q0(structure, yields, data, mu=0.0, **fit_kwargs):
    r""":math:`q_0` (Eq. 12): discovery test statistic; ``mu`` is ignored (always 0)."""
    return statistic("q0", structure, yields, data, mu, **fit_kwargs)
