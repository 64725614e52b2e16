"""Every error diffana raises on purpose.

Each concrete class also subclasses the matching built-in, so ``except KeyError`` still catches a
missing branch. Messages say what the bad value was, why it is wrong and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "ChunkError",
    "ConfigError",
    "DatasetError",
    "DiffanaError",
    "FitError",
    "InputFileError",
    "MissingBranchError",
    "MissingDependencyError",
    "ModelError",
    "WorkspaceError",
]


class DiffanaError(Exception):
    """Base class of every error diffana raises on purpose."""


class ConfigError(DiffanaError, ValueError):
    """A workflow file, a command-line option or a processor parameter is invalid."""


class DatasetError(DiffanaError, ValueError):
    """A dataset cannot be generated or a fileset is malformed."""


class InputFileError(DiffanaError, OSError):
    """An input ROOT file is missing, unreadable, truncated or lacks the expected tree."""


class MissingBranchError(DiffanaError, KeyError):
    """A branch a processor needs is not in the file."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ChunkError(DiffanaError, RuntimeError):
    """Processing one chunk failed; the message names the dataset, file and entry range."""


class WorkspaceError(DiffanaError, ValueError):
    """A pyhf JSON workspace, patch or measurement is invalid."""


class ModelError(DiffanaError, ValueError):
    """A statistical model cannot be built from the given structure or yields."""


class FitError(DiffanaError, RuntimeError):
    """A fit did not converge or returned a non-finite value."""


class MissingDependencyError(DiffanaError, ImportError):
    """An optional dependency is not installed; the message gives the install command."""


def missing_dependency(package: str, extra: str) -> MissingDependencyError:
    """Build the error for an optional dependency that is not installed.

    Examples:
        >>> str(missing_dependency("dask_jobqueue", "jobqueue"))
        "dask_jobqueue is not installed; install it with: pip install 'diffana[jobqueue]'"
    """
    msg = f"{package} is not installed; install it with: pip install 'diffana[{extra}]'"
    return MissingDependencyError(msg)
