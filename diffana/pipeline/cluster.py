"""The one place where diffana builds or connects to a Dask cluster.

A cluster is given as any of:

- ``None`` or ``"inprocess"``: no Dask cluster, everything runs in this process;
- ``"local"`` or a :class:`LocalClusterConfig`: a ``distributed.LocalCluster`` on the loopback
  interface with process workers and one thread each;
- ``"tcp://host:port"`` or an :class:`AddressConfig`: an existing scheduler;
- a :class:`JobqueueConfig` (``kind`` ``"slurm"``, ``"htcondor"`` or ``"pbs"``): a dask-jobqueue
  cluster, one single-threaded worker process per core;
- a ``distributed.Client`` or any ``distributed``-compatible cluster object (``scheduler_address``).

A workflow file embeds :data:`ClusterConfig` (a mapping with ``kind``). Every worker runs JAX with
one XLA thread (:data:`WORKER_ENV`): Dask parallelises over processes, not threads.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from diffana import _xla
from diffana.errors import ConfigError, missing_dependency

__all__ = [
    "MALLOC_ENV",
    "WORKER_ENV",
    "WORKER_PRELOAD",
    "AddressConfig",
    "ClusterConfig",
    "Connection",
    "InProcessConfig",
    "JobqueueConfig",
    "LocalClusterConfig",
    "build_cluster",
    "connect",
    "parse_cluster_config",
]

WORKER_ENV: dict[str, str] = {
    # XLA's CPU client sizes its thread pool from NPROC (else the core count); the XLA_FLAGS alone
    # left a "single-threaded" worker running its kernels on two threads of a 2-core machine.
    "NPROC": "1",
    # with diffana's own setting (diffana._xla), which the worker would otherwise add on import
    "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1 {_xla.FLAG}",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}

#: imported by every worker as it starts (:mod:`diffana.pipeline.worker`)
WORKER_PRELOAD = "diffana.pipeline.worker"

MALLOC_ENV: dict[str, str] = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),
    "MALLOC_TRIM_THRESHOLD_": str(128 * 2**20),
}
"""glibc settings a worker process must have from its start. distributed's nanny sets
``MALLOC_TRIM_THRESHOLD_=65536``, which also fixes glibc's mmap threshold at 128 KiB: every array
then comes from a fresh ``mmap`` and the skim ran at half the speed of the same code in one
process. A 32 MiB mmap threshold and a 128 MiB trim threshold gave the in-process speed at the same
peak RSS. LocalCluster workers get both through ``distributed.nanny.pre-spawn-environ``; dask-jobqueue
jobs export both, but the nanny there still sets its own trim threshold (the mmap threshold keeps
most of the speed)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InProcessConfig(_Model):
    """No cluster: phases run in the calling process (tests, small runs)."""

    kind: Literal["inprocess"] = "inprocess"


class LocalClusterConfig(_Model):
    """A ``distributed.LocalCluster`` on this machine (the default cluster)."""

    kind: Literal["local"] = "local"
    n_workers: int = Field(2, ge=1)
    threads_per_worker: int = Field(1, ge=1)
    processes: bool = True
    memory_limit: str | None = "auto"
    host: str = "127.0.0.1"
    dashboard_address: str | None = "127.0.0.1:0"


class AddressConfig(_Model):
    """An existing Dask scheduler, e.g. ``tcp://10.0.0.1:8786``."""

    kind: Literal["address"] = "address"
    address: str


class JobqueueConfig(_Model):
    """A dask-jobqueue cluster on a batch system: ``jobs`` jobs of ``cores`` single-threaded workers.

    ``job_extra_directives`` are lines of the batch system's header (``--exclusive`` for SLURM,
    ``Key = Value`` for HTCondor); ``extra`` is passed to the dask-jobqueue class unchanged (for
    example ``scheduler_options`` or HTCondor's ``disk``).
    """

    kind: Literal["slurm", "htcondor", "pbs"]
    jobs: int = Field(1, ge=0)
    cores: int = Field(1, ge=1)
    memory: str = "4GiB"
    queue: str | None = None
    account: str | None = None
    walltime: str | None = "01:00:00"
    python: str | None = None
    interface: str | None = None
    local_directory: str | None = None
    log_directory: str | None = None
    job_extra_directives: list[str] = Field(default_factory=list)
    job_script_prologue: list[str] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


ClusterConfig = Annotated[
    InProcessConfig | LocalClusterConfig | AddressConfig | JobqueueConfig,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ClusterConfig)


def parse_cluster_config(spec: Any) -> Any:
    """A cluster config model from a model, a mapping with ``kind``, or a shorthand string.

    Examples:
        >>> parse_cluster_config("local").n_workers
        2
        >>> parse_cluster_config({"kind": "slurm", "cores": 4}).cores
        4
        >>> parse_cluster_config("tcp://127.0.0.1:8786").address
        'tcp://127.0.0.1:8786'
    """
    if spec is None:
        return InProcessConfig()
    if isinstance(spec, BaseModel):
        return spec
    if isinstance(spec, str):
        if spec in ("inprocess", "local"):
            spec = {"kind": spec}
        elif "://" in spec:
            spec = {"kind": "address", "address": spec}
        else:
            msg = f"cluster {spec!r} is not 'inprocess', 'local' or a scheduler address like 'tcp://host:8786'"
            raise ConfigError(msg)
    try:
        return _ADAPTER.validate_python(spec)
    except Exception as exc:
        msg = f"invalid cluster configuration {spec!r}: {exc}"
        raise ConfigError(msg) from exc


def _jobqueue_class(kind: str) -> Any:
    try:
        import dask_jobqueue
    except ImportError as exc:
        error = missing_dependency("dask_jobqueue", "jobqueue")
        raise error from exc
    return {
        "slurm": dask_jobqueue.SLURMCluster,
        "htcondor": dask_jobqueue.HTCondorCluster,
        "pbs": dask_jobqueue.PBSCluster,
    }[kind]


def build_cluster(config: Any) -> Any:
    """A new cluster object for a local or jobqueue config (the caller closes it)."""
    config = parse_cluster_config(config)
    if isinstance(config, LocalClusterConfig):
        import dask
        from distributed import LocalCluster

        spawn_env = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **MALLOC_ENV}
        with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env}):
            return LocalCluster(
                n_workers=config.n_workers,
                threads_per_worker=config.threads_per_worker,
                processes=config.processes,
                memory_limit=config.memory_limit,
                host=config.host,
                dashboard_address=config.dashboard_address,
                env=dict(WORKER_ENV),
                preload=[WORKER_PRELOAD],
            )
    if isinstance(config, JobqueueConfig):
        exports = [f"export {k}='{v}'" for k, v in {**WORKER_ENV, **MALLOC_ENV}.items()]
        kwargs: dict[str, Any] = {
            "cores": config.cores,
            "processes": config.cores,
            "memory": config.memory,
            "walltime": config.walltime,
            "job_extra_directives": list(config.job_extra_directives),
            "job_script_prologue": exports + list(config.job_script_prologue),
            "worker_extra_args": ["--preload", WORKER_PRELOAD],
        }
        for name in ("queue", "account", "python", "interface", "local_directory", "log_directory"):
            value = getattr(config, name)
            if value is not None:
                kwargs[name] = value
        if config.kind == "htcondor":  # no queue, account or walltime; a disk request; Key = Value
            for name in ("queue", "account", "walltime"):
                kwargs.pop(name, None)
            kwargs["disk"] = config.extra.get("disk", config.memory)
            kwargs["job_extra_directives"] = _condor_directives(config.job_extra_directives)
        extra = {k: v for k, v in config.extra.items() if k != "disk"}
        kwargs["worker_extra_args"] += list(extra.pop("worker_extra_args", []))
        kwargs.update(extra)
        cluster = _jobqueue_class(config.kind)(**kwargs)
        if config.jobs:
            cluster.scale(jobs=config.jobs)
        return cluster
    msg = f"build_cluster builds local and jobqueue clusters, not {config.kind!r}"
    raise ConfigError(msg)


def _condor_directives(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if not sep:
            msg = f"HTCondor job directive {line!r} is not of the form 'Key = Value'"
            raise ConfigError(msg)
        out[key.strip()] = value.strip()
    return out


class Connection:
    """A ``distributed.Client`` (or ``None`` in process) plus whatever diffana started for it."""

    def __init__(self, client: Any = None, owned: tuple[Any, ...] = ()) -> None:
        self.client = client
        self._owned = owned

    @property
    def dashboard_link(self) -> str | None:
        return None if self.client is None else self.client.dashboard_link

    def close(self) -> None:
        for obj in self._owned:
            with contextlib.suppress(Exception):
                obj.close()
        self._owned = ()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(cluster: Any = None) -> Connection:
    """Connect to a cluster given in any of the forms of the module docstring."""
    from distributed import Client

    if isinstance(cluster, Client):
        return Connection(cluster)
    if hasattr(cluster, "scheduler_address"):
        client = Client(cluster)
        return Connection(client, (client,))
    config = parse_cluster_config(cluster)
    if isinstance(config, InProcessConfig):
        return Connection()
    if isinstance(config, AddressConfig):
        client = Client(config.address)
        return Connection(client, (client,))
    built = build_cluster(config)
    client = Client(built)
    return Connection(client, (client, built))
