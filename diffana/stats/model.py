"""A pyhf-shaped ``Model`` over the functional core, so a pyhf script changes only its import.

``Model(spec)`` builds a :class:`~diffana.stats.structure.ModelStructure` and the
:class:`~diffana.stats.yields.Yields` of the spec; ``model.config`` answers with pyhf's names and return
types, and the likelihood methods call the jit-compiled functions of
:mod:`diffana.stats.likelihood` (one compilation per structure, shared by every model with it).

Examples:
    >>> spec = {"channels": [{"name": "singlechannel", "samples": [
    ...     {"name": "signal", "data": [12.0, 11.0], "modifiers": [
    ...         {"name": "mu", "type": "normfactor", "data": None}]},
    ...     {"name": "background", "data": [50.0, 52.0], "modifiers": [
    ...         {"name": "uncorr_bkguncrt", "type": "shapesys", "data": [3.0, 7.0]}]}]}]}
    >>> model = Model(spec)
    >>> model.config.par_names
    ['mu', 'uncorr_bkguncrt[0]', 'uncorr_bkguncrt[1]']
    >>> model.config.suggested_bounds()
    [(0, 10), (1e-10, 10.0), (1e-10, 10.0)]
    >>> [round(x, 4) for x in model.config.auxdata]
    [277.7778, 55.1837]
    >>> model.expected_actualdata(model.config.suggested_init()).tolist()
    [62.0, 63.0]
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from diffana.errors import ModelError
from diffana.stats import likelihood
from diffana.stats._jit import jit
from diffana.stats.structure import ModelStructure, structure_from_spec
from diffana.stats.yields import Yields, yields_from_spec

__all__ = ["Model", "ModelConfig"]

_jit = jit(static_argnums=0)
_logpdf = _jit(likelihood.logpdf)
_expected_data = jit(likelihood.expected_data, static_argnums=(0, 3))
_expected_actualdata = _jit(likelihood.expected_actualdata)
_expected_auxdata = _jit(likelihood.expected_auxdata)
_auxdata = _jit(likelihood.auxdata)


class ModelConfig:
    """pyhf's ``_ModelConfig``: names, layout and suggested settings of a model's parameters."""

    def __init__(self, structure: ModelStructure, yields: Yields, modifier_settings) -> None:
        self._structure = structure
        self.modifier_settings = modifier_settings
        self.auxdata = [float(x) for x in np.asarray(_auxdata(structure, yields))]

    @property
    def structure(self) -> ModelStructure:
        return self._structure

    channels = property(lambda self: list(self._structure.channels))
    samples = property(lambda self: list(self._structure.samples))
    modifiers = property(lambda self: list(self._structure.modifiers))
    par_order = property(lambda self: list(self._structure.par_order))
    par_names = property(lambda self: list(self._structure.par_names))
    parameters = property(lambda self: sorted(self._structure.par_order))
    poi_name = property(lambda self: self._structure.poi_name)
    poi_index = property(lambda self: self._structure.poi_index)
    npars = property(lambda self: self._structure.npars)
    nmaindata = property(lambda self: self._structure.nbins)
    nauxdata = property(lambda self: self._structure.nauxdata)

    @property
    def channel_nbins(self) -> dict[str, int]:
        s = self._structure
        return dict(zip(s.channels, s.channel_nbins, strict=True))

    @property
    def channel_slices(self) -> dict[str, slice]:
        return {c: self._structure.channel_slice(c) for c in self._structure.channels}

    @property
    def auxdata_order(self) -> list[str]:
        return [p.name for p in self._structure.paramsets if p.constrained]

    @property
    def par_map(self) -> dict[str, dict]:
        return {
            p.name: {"slice": self.par_slice(p.name), "paramset": p}
            for p in self._structure.paramsets
        }

    def suggested_init(self) -> list[float]:
        return [v for p in self._structure.paramsets for v in p.suggested_init]

    def suggested_bounds(self) -> list:
        return [b for p in self._structure.paramsets for b in p.suggested_bounds]

    def suggested_fixed(self) -> list[bool]:
        return [f for p in self._structure.paramsets for f in p.suggested_fixed]

    def par_slice(self, name: str) -> slice:
        return self._structure.par_slice(name)

    def param_set(self, name: str):
        return self._structure.param_set(name)

    def set_poi(self, name: str | None) -> None:
        """Make ``name`` the parameter of interest (``None`` unsets it)."""
        s = self._structure
        if name is None:
            index = None
        else:
            pset = s.param_set(name)
            if pset.n_parameters > 1:
                msg = f"the parameter {name!r} has {pset.n_parameters} components; a POI must "
                msg += "be a scalar parameter"
                raise ModelError(msg)
            index = s.par_slice(name).start
        new = dataclasses.replace(s, poi_name=name, poi_index=index)
        object.__setattr__(new, "_key", s._key + repr((name, index)).encode())
        self._structure = new


class Model:
    """A HistFactory model with pyhf's interface (``pyhf.Model``).

    Args:
        spec: ``{"channels": [...], "parameters": [...]}``.
        poi_name: the parameter of interest (``None`` or ``""`` for none).
        modifier_settings: interpolation codes, as pyhf's.
        **config_kwargs: ``validate`` (accepted; specs are always checked), ``batch_size`` (only
            ``None``), ``clip_sample_data``, ``clip_bin_data``.

    Attributes:
        structure: the static :class:`~diffana.stats.structure.ModelStructure` (also
            ``model.config.structure``).
        yields: the :class:`~diffana.stats.yields.Yields` of the spec.
    """

    def __init__(
        self,
        spec: Mapping,
        *,
        poi_name: str | None = "mu",
        modifier_settings: Mapping | None = None,
        **config_kwargs,
    ) -> None:
        config_kwargs.pop("validate", None)
        if config_kwargs.pop("batch_size", None) is not None:
            msg = "batch_size is not supported; use jax.vmap over parameters or data instead"
            raise ModelError(msg)
        clips = {k: config_kwargs.pop(k, None) for k in ("clip_sample_data", "clip_bin_data")}
        if config_kwargs:
            msg = f"unsupported options {sorted(config_kwargs)}; Model takes poi_name, "
            msg += "modifier_settings, clip_sample_data, clip_bin_data"
            raise ModelError(msg)
        self.spec = copy.deepcopy(dict(spec))
        structure = structure_from_spec(
            self.spec, poi_name=poi_name, modifier_settings=modifier_settings, **clips
        )
        self.yields = yields_from_spec(structure, self.spec)
        settings = modifier_settings
        if settings is None:
            settings = {"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": "code4p"}}
        self._config = ModelConfig(structure, self.yields, settings)
        self.batch_size = None

    @property
    def config(self) -> ModelConfig:
        return self._config

    @property
    def structure(self) -> ModelStructure:
        return self._config.structure

    def _check(self, pars, data=None):
        pars = jnp.asarray(pars, dtype=jnp.float64)
        if pars.shape[-1] != self.config.npars:
            msg = f"pars has length {pars.shape[-1]} but the model has {self.config.npars} "
            msg += f"parameters ({self.config.par_names})"
            raise ModelError(msg)
        if data is None:
            return pars
        data = jnp.asarray(data, dtype=jnp.float64)
        expected = self.config.nmaindata + self.config.nauxdata
        if data.shape[-1] != expected:
            msg = f"data has length {data.shape[-1]} but the model expects {expected} "
            msg += f"({self.config.nmaindata} observations + {self.config.nauxdata} auxdata)"
            raise ModelError(msg)
        return pars, data

    def logpdf(self, pars, data) -> jax.Array:
        """Log-likelihood, shape ``(1,)`` as pyhf returns it."""
        pars, data = self._check(pars, data)
        return jnp.reshape(_logpdf(self.structure, self.yields, pars, data), (1,))

    def pdf(self, pars, data) -> jax.Array:
        return jnp.exp(self.logpdf(pars, data))

    def expected_data(self, pars, include_auxdata: bool = True) -> jax.Array:
        return _expected_data(self.structure, self.yields, self._check(pars), include_auxdata)

    def expected_actualdata(self, pars) -> jax.Array:
        return _expected_actualdata(self.structure, self.yields, self._check(pars))

    def expected_auxdata(self, pars) -> jax.Array:
        return _expected_auxdata(self.structure, self.yields, self._check(pars))
