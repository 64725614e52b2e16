"""Parameter sets of a HistFactory model: names, sizes, inits, bounds, constraints and their order.

Each modifier asks for a parameter set (pyhf's "paramset requirements"); requirements of modifiers
that share a name must agree, and the measurement's ``parameters`` entries override inits, bounds,
``fixed``, ``auxdata``, ``sigmas`` and ``factors``. The order of the parameters is pyhf's: by modifier
type (histosys, lumi, normfactor, normsys, shapefactor, shapesys, staterror), then by first
appearance walking channels, samples and modifiers in sorted order.

Examples:
    >>> reqs = {"mu": [normfactor_requirement()]}
    >>> [p.suggested_bounds for p in reduce_requirements(reqs, [])]
    [[(0, 10)]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffana.errors import ModelError

__all__ = [
    "ParamSet",
    "histosys_requirement",
    "lumi_requirement",
    "normfactor_requirement",
    "normsys_requirement",
    "reduce_requirements",
    "shapefactor_requirement",
    "shapesys_requirement",
    "staterror_requirement",
]

_KEYS = ("constraint", "n_parameters", "is_scalar", "inits", "bounds", "auxdata", "factors")
_KEYS += ("sigmas", "fixed")
_USER_KEYS = frozenset({"inits", "bounds", "auxdata", "factors", "sigmas", "fixed"})
_UNDEFINED = "undefined"


@dataclass(frozen=True)
class ParamSet:
    """One named parameter set (a scalar, or one parameter per bin), as pyhf's ``paramset``.

    ``constraint`` is ``None`` (unconstrained), ``"normal"`` or ``"poisson"``. ``user_keys`` names
    the entries the measurement configuration set explicitly; the others are the modifiers'
    defaults (which, for ``staterror`` sigmas and ``shapesys`` factors, follow the yields).
    """

    name: str
    n_parameters: int
    is_scalar: bool
    suggested_init: list
    suggested_bounds: list
    fixed: bool | tuple
    constraint: str | None
    auxdata: list | None = None
    sigmas: list | None = None
    factors: list | None = None
    user_keys: frozenset = frozenset()

    @property
    def suggested_fixed(self) -> list[bool]:
        """Per-parameter fixed flags (a single bool applies to every parameter of the set)."""
        if isinstance(self.fixed, bool):
            return [self.fixed] * self.n_parameters
        return [bool(f) for f in self.fixed]

    @property
    def constrained(self) -> bool:
        return self.constraint is not None

    @property
    def pdf_type(self) -> str | None:
        """``"normal"``, ``"poisson"`` or ``None``, as pyhf's ``paramset.pdf_type``."""
        return self.constraint

    def width(self) -> list[float]:
        """Width of the constraint term of each parameter (pyhf's ``paramset.width()``)."""
        if self.constraint == "normal":
            return list(self.sigmas) if self.sigmas else [1.0] * self.n_parameters
        if self.constraint == "poisson":
            return [(1.0 / f) ** 0.5 for f in self.factors]
        msg = f"parameter set {self.name!r} is unconstrained and has no constraint width"
        raise ModelError(msg)


def _scalar(constraint, init, bounds, auxdata=_UNDEFINED, sigmas=_UNDEFINED) -> dict[str, Any]:
    req = {"constraint": constraint, "n_parameters": 1, "is_scalar": True, "inits": init}
    req.update({"bounds": bounds, "fixed": False})
    if auxdata != _UNDEFINED:
        req["auxdata"] = auxdata
    if sigmas != _UNDEFINED:
        req["sigmas"] = sigmas
    return req


def normfactor_requirement() -> dict[str, Any]:
    """Unconstrained scale factor: init 1, bounds [0, 10]."""
    return _scalar(None, (1.0,), ((0, 10),))


def histosys_requirement() -> dict[str, Any]:
    """Unit-Gaussian-constrained shape variation: init 0, bounds [-5, 5], auxdata 0."""
    return _scalar("normal", (0.0,), ((-5.0, 5.0),), auxdata=(0.0,))


def normsys_requirement() -> dict[str, Any]:
    """Unit-Gaussian-constrained normalisation variation: init 0, bounds [-5, 5], auxdata 0."""
    return _scalar("normal", (0.0,), ((-5.0, 5.0),), auxdata=(0.0,))


def lumi_requirement() -> dict[str, Any]:
    """Luminosity: Gaussian whose inits, bounds, auxdata and sigma the measurement must give."""
    return _scalar("normal", None, None, auxdata=None, sigmas=None)


def shapefactor_requirement(nbins: int) -> dict[str, Any]:
    """One unconstrained factor per bin: init 1, bounds [0, 10]."""
    return {
        "constraint": None,
        "n_parameters": nbins,
        "is_scalar": False,
        "inits": (1.0,) * nbins,
        "bounds": ((0.0, 10.0),) * nbins,
        "fixed": False,
    }


def staterror_requirement(sigmas: tuple[float, ...], fixed: tuple[bool, ...]) -> dict[str, Any]:
    """One Gaussian-constrained factor per bin, width the relative MC uncertainty of the bin."""
    n = len(sigmas)
    return {
        "constraint": "normal",
        "n_parameters": n,
        "is_scalar": False,
        "inits": (1.0,) * n,
        "bounds": ((1e-10, 10.0),) * n,
        "fixed": tuple(fixed),
        "auxdata": (1.0,) * n,
        "sigmas": tuple(sigmas),
    }


def shapesys_requirement(nominal, uncertainty) -> dict[str, Any]:
    """One Poisson-constrained factor per bin with ``tau = (nominal / uncertainty)**2``.

    Bins whose nominal or uncertainty is not positive get ``tau = 1`` and a fixed parameter.
    """
    valid = [n > 0 and u > 0 for n, u in zip(nominal, uncertainty, strict=True)]
    factors = tuple(
        (n**2 / u**2) if ok else 1.0 for ok, n, u in zip(valid, nominal, uncertainty, strict=True)
    )
    n = len(factors)
    return {
        "constraint": "poisson",
        "n_parameters": n,
        "is_scalar": False,
        "inits": (1.0,) * n,
        "bounds": ((1e-10, 10.0),) * n,
        "fixed": tuple(not ok for ok in valid),
        "auxdata": factors,
        "factors": factors,
    }


def _combine(name: str, requirements: list[dict], user: dict) -> ParamSet:
    combined: dict[str, Any] = {}
    for key in _KEYS:
        values = {req.get(key, _UNDEFINED) for req in requirements}
        if len(values) != 1:
            msg = (
                f"parameter {name!r}: modifiers sharing this name disagree on {key!r} "
                f"({sorted(map(repr, values))}); give modifiers of different kinds different names"
            )
            raise ModelError(msg)
        default = values.pop()
        value = user.get(key, default)
        if value == _UNDEFINED:
            continue
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, list) and default and len(value) != len(default):
            msg = (
                f"parameter {name!r}: the measurement gives {len(value)} value(s) for {key!r} "
                f"but the parameter has {len(default)}; give one value per parameter"
            )
            raise ModelError(msg)
        elif value and default == _UNDEFINED:
            msg = (
                f"parameter {name!r} does not use {key!r}; remove it from the measurement's "
                "parameter configuration"
            )
            raise ModelError(msg)
        combined[key] = value
    for key in ("inits", "bounds") + (("auxdata", "sigmas") if combined["constraint"] else ()):
        if key in combined and combined[key] is None:
            msg = (
                f"parameter {name!r} needs {key!r} from the measurement configuration "
                f'(e.g. {{"name": "{name}", "auxdata": [1.0], "sigmas": [0.02], '
                f'"bounds": [[0.5, 1.5]], "inits": [1.0]}})'
            )
            raise ModelError(msg)
    fixed = combined["fixed"]
    if isinstance(fixed, list):
        fixed = tuple(bool(f) for f in fixed)
    return ParamSet(
        name=name,
        n_parameters=combined["n_parameters"],
        is_scalar=combined["is_scalar"],
        suggested_init=list(combined["inits"]),
        suggested_bounds=list(combined["bounds"]),
        fixed=fixed,
        constraint=combined["constraint"],
        auxdata=combined.get("auxdata"),
        sigmas=combined.get("sigmas"),
        factors=combined.get("factors"),
        user_keys=frozenset(k for k in user if k in _USER_KEYS),
    )


def reduce_requirements(requirements: dict[str, list[dict]], user_parameters) -> list[ParamSet]:
    """Merge the modifiers' requirements with the measurement's ``parameters`` entries.

    Args:
        requirements: parameter name to the requirement dicts of every modifier using it, in
            pyhf's parameter order.
        user_parameters: the ``parameters`` list of a measurement configuration.

    Returns:
        The parameter sets in model order.
    """
    user: dict[str, dict] = {}
    for entry in user_parameters or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            msg = f"parameter configuration {entry!r} must be an object with a string 'name'"
            raise ModelError(msg)
        if entry["name"] in user:
            msg = (
                f"parameter {entry['name']!r} is configured more than once in the measurement; "
                "merge the entries into one"
            )
            raise ModelError(msg)
        user[entry["name"]] = entry
    return [_combine(name, reqs, user.get(name, {})) for name, reqs in requirements.items()]
