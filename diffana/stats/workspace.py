"""pyhf JSON workspaces: the model spec, the observed data and the measurements.

:class:`Workspace` is pyhf 0.7.6's ``pyhf.Workspace`` for diffana: a ``dict`` of the spec with the
same constructor, properties, ``model``/``data`` methods and operations, building a
:class:`diffana.stats.Model` instead of a ``pyhf.Model``. A spec is validated against pyhf's JSON
schema 1.0.0 and then by the checks of :mod:`diffana.stats._spec_checks`; every problem is a
:class:`~diffana.errors.WorkspaceError` naming the JSON path, the bad value and the fix.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from diffana.errors import WorkspaceError
from diffana.stats import _spec_checks as checks
from diffana.stats._schema import spec_error, validate
from diffana.stats._workspace_ops import (
    VALID_JOINS,
    build_spec,
    combine_specs,
    prune_and_rename,
    sorted_spec,
)
from diffana.stats.patchset import apply_patches

__all__ = ["Workspace"]

log = logging.getLogger(__name__)
_LUMI_KEYS = ("auxdata", "sigmas", "bounds", "inits")


class Workspace(dict):
    """A pyhf JSON workspace (``channels``, ``observations``, ``measurements``, ``version``).

    Args:
        spec: the decoded JSON document; it is copied, never modified.
        validate: check the spec (schema and consistency); ``False`` trusts it as pyhf does.
        **config_kwargs: only ``version``, to override the spec's schema version.

    Raises:
        WorkspaceError: the spec is invalid; the message names the place and the fix.

    Examples:
        >>> ws = Workspace({
        ...     "channels": [{"name": "sr", "samples": [
        ...         {"name": "sig", "data": [5.0, 2.0],
        ...          "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
        ...         {"name": "bkg", "data": [50.0, 52.0],
        ...          "modifiers": [{"name": "unc", "type": "shapesys", "data": [3.0, 7.0]}]}]}],
        ...     "observations": [{"name": "sr", "data": [51.0, 48.0]}],
        ...     "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": []}}],
        ...     "version": "1.0.0"})
        >>> ws.channels, ws.samples, ws.modifiers, ws.parameters
        (['sr'], ['bkg', 'sig'], [('mu', 'normfactor'), ('unc', 'shapesys')], ['mu', 'unc'])
        >>> ws.channel_nbins, ws.measurement_names
        ({'sr': 2}, ['meas'])
    """

    valid_joins: ClassVar[list[str]] = list(VALID_JOINS)

    def __init__(self, spec: Mapping[str, Any], validate: bool = True, **config_kwargs: Any):
        if not isinstance(spec, Mapping):
            msg = f"a workspace must be a JSON object (dict), got {type(spec).__name__}"
            raise WorkspaceError(msg)
        spec = copy.deepcopy(dict(spec))
        self.version = config_kwargs.pop("version", spec.get("version"))
        if config_kwargs:
            msg = (
                f"unsupported Workspace options {sorted(config_kwargs)}; only version= is accepted"
            )
            raise WorkspaceError(msg)
        self._validate = validate
        if validate:
            _check_workspace(spec, self.version)
        super().__init__(spec)
        try:
            self._summarise()
        except (KeyError, IndexError, TypeError) as exc:
            msg = f"the workspace is malformed ({exc!r}); build it with validate=True to see where"
            raise WorkspaceError(msg) from None

    def _summarise(self) -> None:
        channels = self["channels"]
        nbins = {ch["name"]: len(ch["samples"][0]["data"]) for ch in channels}
        self._channels = sorted(nbins)
        self._channel_nbins = {name: nbins[name] for name in self._channels}
        self._samples = sorted({s["name"] for ch in channels for s in ch["samples"]})
        self._modifiers = sorted(
            {
                (m["name"], m["type"])
                for ch in channels
                for s in ch["samples"]
                for m in s["modifiers"]
            }
        )
        begin, self._channel_slices = 0, {}
        for name in self._channels:
            self._channel_slices[name] = slice(begin, begin + nbins[name])
            begin += nbins[name]
        self.measurement_names = [m["name"] for m in self.get("measurements", [])]
        self.observations = {obs["name"]: obs["data"] for obs in self["observations"]}

    # ---- summary, as pyhf's _ChannelSummaryMixin -------------------------------------------------
    @property
    def channels(self) -> list[str]:
        """Channel names, sorted (the order of the model's bins)."""
        return self._channels

    @property
    def samples(self) -> list[str]:
        """Sample names over all channels, sorted."""
        return self._samples

    @property
    def modifiers(self) -> list[tuple[str, str]]:
        """(name, type) of every modifier, sorted."""
        return self._modifiers

    @property
    def parameters(self) -> list[str]:
        """Names of the parameters the modifiers define, sorted (pyhf has no such property)."""
        return sorted({name for name, _ in self._modifiers})

    @property
    def channel_nbins(self) -> dict[str, int]:
        """Number of bins of each channel."""
        return self._channel_nbins

    @property
    def channel_slices(self) -> dict[str, slice]:
        """The slice of each channel in the concatenated bins."""
        return self._channel_slices

    # ---- equality as pyhf: equal dicts --------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and dict(self) == dict(other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __repr__(self) -> str:
        return object.__repr__(self)

    # ---- measurements, model and data -------------------------------------------------------------
    def get_measurement(
        self, measurement_name: str | None = None, measurement_index: int | None = None
    ) -> dict[str, Any]:
        """The measurement named ``measurement_name``, else number ``measurement_index``, else the first."""
        return self._measurement(measurement_name, measurement_index)[1]

    def _measurement(self, name: str | None, index: int | None) -> tuple[int, dict[str, Any]]:
        if not self.measurement_names:
            msg = "the workspace defines no measurements; add one to 'measurements'"
            raise WorkspaceError(msg)
        if name is not None:
            if name not in self.measurement_names:
                msg = f"no measurement {name!r}; the workspace has {self.measurement_names}"
                raise WorkspaceError(msg)
            index = self.measurement_names.index(name)
        elif index is None:
            if len(self.measurement_names) > 1:
                log.warning(
                    "several measurements defined; taking the first, %r", self.measurement_names[0]
                )
            index = 0
        if not isinstance(index, int) or not -len(self.measurement_names) <= index < len(
            self.measurement_names
        ):
            msg = f"measurement index {index!r} is out of range: there are {len(self.measurement_names)}"
            raise WorkspaceError(msg)
        measurement = self["measurements"][index]
        if self._validate:
            validate(measurement, "measurement", version=self.version, what="measurement")
        return index % len(self.measurement_names), measurement

    def model(
        self,
        measurement_name: str | None = None,
        measurement_index: int | None = None,
        patches: Sequence[Any] | None = None,
        **config_kwargs: Any,
    ) -> Any:
        """Build the :class:`diffana.stats.Model` of a measurement, optionally patched.

        As ``pyhf.Workspace.model``: the model spec is the channels plus the measurement's
        parameter configurations, JSON patches are applied to it in order, and ``poi_name``
        defaults to the measurement's POI (pass ``poi_name=None`` for a POI-less model).

        Args:
            measurement_name: the measurement to use (see :meth:`get_measurement`).
            measurement_index: its index, if no name is given.
            patches: JSON patches (lists of operations, ``jsonpatch.JsonPatch`` or
                :class:`~diffana.stats.patchset.Patch`) applied to the model spec.
            **config_kwargs: passed to :class:`diffana.stats.Model` (``poi_name``,
                ``modifier_settings``, ...).

        Raises:
            WorkspaceError: a patch does not apply, the patched spec is invalid, the POI is not a
                parameter of the model, or a parameter configuration is wrong.
        """
        index, measurement = self._measurement(measurement_name, measurement_index)
        config_kwargs.setdefault("poi_name", measurement["config"]["poi"])
        modelspec = {
            "channels": self["channels"],
            "parameters": measurement["config"]["parameters"],
        }
        if patches:
            modelspec = apply_patches(modelspec, list(patches), what="model spec")
            if self._validate:
                validate(modelspec, "model", version=self.version, what="patched model spec")
                checks.check_channels(modelspec["channels"])
        if self._validate:
            self._check_model_spec(modelspec, index, measurement, config_kwargs["poi_name"])
        from diffana.stats.model import Model  # JAX: imported on first use

        return Model(modelspec, **config_kwargs)

    def _check_model_spec(
        self, modelspec: Mapping[str, Any], index: int, measurement: Mapping[str, Any], poi: Any
    ) -> None:
        table = checks.parameter_table(modelspec["channels"])
        path = ["measurements", index, "config", "parameters"]
        checks.check_measurement_parameters(modelspec["parameters"], path, table, warn_unknown=True)
        where = f"measurement {measurement['name']!r}"
        if poi is not None and poi == measurement["config"]["poi"]:
            info = table.get(poi)
            if info is None:
                msg = f"the POI {poi!r} of {where} is not a parameter of the model"
                fix = (
                    f"apply the signal patch that adds it (patches=..., --patch), set the POI to "
                    f"one of {sorted(table)}, or pass poi_name=None for a model without POI"
                )
                raise spec_error(
                    msg, path=["measurements", index, "config", "poi"], value=poi, fix=fix
                )
            if info.n_parameters != 1:
                msg = f"the POI {poi!r} of {where} is a {info.mtype} with {info.n_parameters} components"
                fix = "choose a scalar parameter (a normfactor) as POI"
                raise spec_error(
                    msg, path=["measurements", index, "config", "poi"], value=poi, fix=fix
                )
        if table.get("lumi") is not None and table["lumi"].mtype == "lumi":
            config = next((p for p in modelspec["parameters"] if p["name"] == "lumi"), {})
            missing = [key for key in _LUMI_KEYS if key not in config]
            if missing:
                msg = f"the model has a lumi modifier but {where} does not configure lumi {missing}"
                fix = (
                    'add {"name": "lumi", "auxdata": [1.0], "sigmas": [0.02], "bounds": '
                    '[[0.5, 1.5]], "inits": [1.0]} (your values) to its parameters'
                )
                raise spec_error(msg, path=path, value=config or None, fix=fix)

    def data(self, model: Any, include_auxdata: bool = True) -> list[float]:
        """The observed counts of the model's channels (in its order), then its auxdata.

        Raises:
            WorkspaceError: the workspace has no observation for one of the model's channels.
        """
        observed: list[float] = []
        for channel in model.config.channels:
            if channel not in self.observations:
                msg = (
                    f"the workspace has no observation for channel {channel!r} of the model "
                    f"(observations: {sorted(self.observations)}); add one to 'observations'"
                )
                raise WorkspaceError(msg)
            observed += list(self.observations[channel])
        if include_auxdata:
            observed += np.asarray(model.config.auxdata, dtype=float).tolist()
        return observed

    # ---- operations -----------------------------------------------------------------------------
    def _summary(self) -> dict[str, Any]:
        return {
            "modifiers": self.modifiers,
            "samples": self.samples,
            "channels": self.channels,
            "measurement_names": self.measurement_names,
        }

    def prune(
        self,
        modifiers: Sequence[str] | None = None,
        modifier_types: Sequence[str] | None = None,
        samples: Sequence[str] | None = None,
        channels: Sequence[str] | None = None,
        measurements: Sequence[str] | None = None,
    ) -> Workspace:
        """A new workspace without the named modifiers, modifier types, samples, channels, measurements."""
        prune = {
            "modifiers": modifiers,
            "modifier_types": modifier_types,
            "samples": samples,
            "channels": channels,
            "measurements": measurements,
        }
        return Workspace(prune_and_rename(self, self._summary(), prune, {}))

    def rename(
        self,
        modifiers: Mapping[str, str] | None = None,
        samples: Mapping[str, str] | None = None,
        channels: Mapping[str, str] | None = None,
        measurements: Mapping[str, str] | None = None,
    ) -> Workspace:
        """A new workspace with modifiers, samples, channels and measurements renamed (old -> new)."""
        rename = {
            "modifiers": modifiers,
            "samples": samples,
            "channels": channels,
            "measurements": measurements,
        }
        return Workspace(prune_and_rename(self, self._summary(), {}, rename))

    @classmethod
    def combine(
        cls, left: Workspace, right: Workspace, join: str = "none", merge_channels: bool = False
    ) -> Workspace:
        """Combine two workspaces: channels, observations and measurements (``join`` as pyhf)."""
        if join in ("left outer", "right outer"):
            log.warning("join=%r silences the consistency checks of join='outer'", join)
        return cls(combine_specs(left, right, join=join, merge_channels=merge_channels))

    @classmethod
    def sorted(cls, workspace: Workspace) -> Workspace:
        """A new workspace with every list sorted by name."""
        return cls(sorted_spec(workspace))

    @classmethod
    def build(
        cls, model: Any, data: Sequence[float], name: str = "measurement", validate: bool = True
    ) -> Workspace:
        """A workspace from a model and its observed data, as ``pyhf.Workspace.build``.

        The measurement ``name`` records every parameter's suggested bounds, inits and fixed flag;
        where pyhf fails on a parameter with fixed and free components (a shapesys or staterror
        with bins without uncertainty), the flag is left out so the rebuilt model fixes the same
        components.
        """
        return cls(build_spec(model, data, name), validate=validate)


def _check_workspace(spec: dict[str, Any], version: Any) -> None:
    validate(spec, "workspace", version=version, what="workspace")
    checks.check_channels(spec["channels"])
    checks.check_observations(spec["observations"], spec["channels"])
    checks.check_unique(spec["measurements"], ["measurements"], "measurement")
    table = checks.parameter_table(spec["channels"])
    for m, measurement in enumerate(spec["measurements"]):
        path = ["measurements", m, "config", "parameters"]
        checks.check_measurement_parameters(measurement["config"]["parameters"], path, table)
