"""JSON Patch application and pyhf PatchSet files.

A *JSON Patch* (RFC 6902) is a list of operations (``add``, ``remove``, ``replace``, ...) applied
to a workspace or model spec; published likelihoods ship a background-only workspace plus one patch
per signal point. A *PatchSet* (pyhf schema ``patchset.json``) bundles many named patches with the
signal-point values they stand for and the digests of the background-only workspace they apply to.
:class:`PatchSet` and :class:`Patch` behave as pyhf 0.7.6's; every failure (schema violation,
unknown patch, digest mismatch, a patch that does not apply) is a
:class:`~diffana.errors.WorkspaceError` naming the patch, the operation and the fix.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jsonpatch
import jsonpointer

from diffana.errors import WorkspaceError
from diffana.stats._schema import validate

__all__ = ["Patch", "PatchSet", "apply_patches", "digest"]


def digest(obj: Any, algorithm: str = "sha256") -> str:
    """The digest of a JSON document as pyhf computes it (sorted keys, UTF-8).

    Examples:
        >>> digest({"a": 2.0, "b": 3.0, "c": 1.0})
        'a38f6093800189b79bc22ef677baf90c75705af2cfc7ff594159eca54eaa7928'
        >>> digest({"a": 2.0, "b": 3.0, "c": 1.0}, algorithm="md5")
        '2c0633f242928eb55c3672fed5ba8612'
    """
    try:
        text = json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf8")
    except TypeError as exc:
        msg = f"cannot digest a document that is not JSON-serialisable ({exc})"
        raise WorkspaceError(msg) from None
    if algorithm not in hashlib.algorithms_available:
        msg = f"unknown digest algorithm {algorithm!r}; use one of md5, sha1, sha256"
        raise WorkspaceError(msg)
    return hashlib.new(algorithm, text).hexdigest()


def _operations(patch: Any, label: str) -> list[Any]:
    ops = patch.patch if isinstance(patch, jsonpatch.JsonPatch) else patch
    validate(ops, "jsonpatch", what=f"JSON patch {label}")
    return list(ops)


def _brief(op: Any) -> str:
    """An operation without its (possibly huge) value."""
    if isinstance(op, Mapping):
        return repr({k: v for k, v in op.items() if k != "value"})
    return repr(op)[:80]


def apply_patches(doc: Mapping[str, Any], patches: Sequence[Any], *, what: str = "spec") -> dict:
    """Apply JSON patches in order to a copy of ``doc``; name the failing operation on error.

    Args:
        doc: the document to patch (left unchanged).
        patches: JSON patches (lists of operations), :class:`jsonpatch.JsonPatch` or
            :class:`Patch` objects.
        what: a word for the document in error messages.

    Examples:
        >>> apply_patches({"a": [1]}, [[{"op": "add", "path": "/a/-", "value": 2}]])
        {'a': [1, 2]}
        >>> apply_patches({"a": [1]}, [[{"op": "remove", "path": "/b"}]], what="workspace")
        Traceback (most recent call last):
        ...
        diffana.errors.WorkspaceError: patch 0, operation 0 ({'op': 'remove', 'path': '/b'}) does not apply to the workspace: can't remove a non-existent object 'b'; check the patch was made for this workspace (its channel and sample order)
    """
    out = copy.deepcopy(dict(doc))
    for p, patch in enumerate(patches):
        label = getattr(patch, "name", None) or str(p)
        for o, op in enumerate(_operations(patch, label)):
            try:
                out = jsonpatch.JsonPatch([op]).apply(out, in_place=True)
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
                msg = (
                    f"patch {label}, operation {o} ({_brief(op)}) does not apply to the {what}: "
                    f"{exc}; check the patch was made for this workspace (its channel and "
                    "sample order)"
                )
                raise WorkspaceError(msg) from None
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                msg = f"patch {label}, operation {o} ({_brief(op)}) is malformed for the {what}: {exc!r}"
                raise WorkspaceError(msg) from None
    return out


class Patch(jsonpatch.JsonPatch):
    """One patch of a :class:`PatchSet`: a JSON patch plus its ``name`` and ``values``."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec["patch"])
        self._metadata = dict(spec["metadata"])

    @property
    def metadata(self) -> dict[str, Any]:
        """The patch's metadata (``name``, ``values`` and anything else)."""
        return self._metadata

    @property
    def name(self) -> str:
        """The patch's name."""
        return self._metadata["name"]

    @property
    def values(self) -> tuple[Any, ...]:
        """The signal-point values of this patch, one per label of the PatchSet."""
        return tuple(self._metadata["values"])

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__qualname__} {self.name!r}{self.values}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Patch):
            return False
        return jsonpatch.JsonPatch.__eq__(self, other) and self.metadata == other.metadata

    __hash__ = jsonpatch.JsonPatch.__hash__


class PatchSet:
    """A set of named patches for one background-only workspace (pyhf's ``PatchSet``).

    Look a patch up by name or by its values (``patchset["sbottom_1300_205_60"]``,
    ``patchset[1300, 205, 60]``), iterate over the patches, and ``apply`` one to a workspace after
    checking the workspace's digests.

    Examples:
        >>> ps = PatchSet({
        ...     "metadata": {"references": {"hepdata": "ins1234567"}, "description": "demo",
        ...                  "digests": {"md5": "098f6bcd4621d373cade4e832627b4f6"}, "labels": ["x"]},
        ...     "patches": [{"metadata": {"name": "p_100", "values": [100]},
        ...                  "patch": [{"op": "add", "path": "/foo", "value": 1}]}],
        ...     "version": "1.0.0"})
        >>> ps["p_100"].values, ps[100].name, len(ps)
        ((100,), 'p_100', 1)
    """

    def __init__(self, spec: Mapping[str, Any], **config_kwargs: Any) -> None:
        version = config_kwargs.pop("version", None)
        if config_kwargs:
            msg = f"unsupported PatchSet options {sorted(config_kwargs)}; only version= is accepted"
            raise WorkspaceError(msg)
        if not isinstance(spec, Mapping):
            msg = f"a PatchSet must be a JSON object, got {type(spec).__name__}"
            raise WorkspaceError(msg)
        self._version = version if version is not None else spec.get("version")
        validate(spec, "patchset", version=self._version, what="PatchSet")
        self._metadata = dict(spec["metadata"])
        self._patches: list[Patch] = []
        self._by_key: dict[Any, Patch] = {}
        for i, patch_spec in enumerate(spec["patches"]):
            patch = Patch(patch_spec)
            where = f"patches[{i}] ({patch.name!r})"
            if patch.name in self._by_key:
                msg = (
                    f"PatchSet {where}: the name {patch.name!r} is used twice; names must be unique"
                )
                raise WorkspaceError(msg)
            if patch.values in self._by_key:
                msg = f"PatchSet {where}: the values {list(patch.values)} are used twice"
                raise WorkspaceError(msg)
            if len(patch.values) != len(self.labels):
                msg = (
                    f"PatchSet {where}: {len(patch.values)} values {list(patch.values)} for "
                    f"{len(self.labels)} labels {self.labels}; give one value per label"
                )
                raise WorkspaceError(msg)
            self._patches.append(patch)
            self._by_key[patch.name] = patch
            self._by_key[patch.values] = patch

    @property
    def version(self) -> str:
        """The PatchSet schema version."""
        return self._version

    @property
    def metadata(self) -> dict[str, Any]:
        """The PatchSet metadata."""
        return self._metadata

    @property
    def references(self) -> dict[str, str]:
        """Where the PatchSet comes from (e.g. ``{"hepdata": "ins1748602"}``)."""
        return self._metadata["references"]

    @property
    def description(self) -> str:
        """A description of the patches."""
        return self._metadata["description"]

    @property
    def digests(self) -> dict[str, str]:
        """Digests of the background-only workspace the patches apply to."""
        return self._metadata["digests"]

    @property
    def labels(self) -> list[str]:
        """The names of the signal-point coordinates (``values`` of each patch)."""
        return self._metadata["labels"]

    @property
    def patches(self) -> list[Patch]:
        """The patches, in file order."""
        return self._patches

    def __repr__(self) -> str:
        n = len(self._patches)
        return f"<{type(self).__module__}.{type(self).__qualname__} with {n} patch{'es' if n != 1 else ''}>"

    def __getitem__(self, key: Any) -> Patch:
        lookup = tuple(key) if isinstance(key, list) else key
        if not isinstance(lookup, tuple | str):
            lookup = (lookup,)
        try:
            return self._by_key[lookup]
        except (KeyError, TypeError):
            names = [p.name for p in self._patches]
            shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
            msg = f"no patch {key!r} in the PatchSet; give a name ({shown}) or values for {self.labels}"
            raise WorkspaceError(msg) from None

    def __iter__(self) -> Iterator[Patch]:
        return iter(self._patches)

    def __len__(self) -> int:
        return len(self._patches)

    def verify(self, spec: Mapping[str, Any]) -> None:
        """Check that ``spec`` is the background-only workspace the digests describe."""
        for algorithm, expected in self.digests.items():
            got = digest(dict(spec), algorithm=algorithm)
            if got != expected:
                msg = (
                    f"the workspace does not match the PatchSet: its {algorithm} digest is {got}, "
                    f"the PatchSet expects {expected}; use the background-only workspace the "
                    "PatchSet was made for"
                )
                raise WorkspaceError(msg)

    def apply(self, spec: Mapping[str, Any], key: Any) -> Any:
        """Verify ``spec`` and return it as a :class:`~diffana.stats.Workspace` with patch ``key``."""
        from diffana.stats.workspace import Workspace  # workspace.py imports this module

        self.verify(spec)
        patch = self[key]
        return Workspace(apply_patches(spec, [patch], what="workspace"))
