"""Clusters built in one place: configs, the LocalCluster's worker environment, scheduler addresses,
cluster objects, and dask-jobqueue job scripts for SLURM, HTCondor and PBS."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from diffana.errors import ConfigError, MissingDependencyError
from diffana.pipeline.cluster import (
    MALLOC_ENV,
    WORKER_ENV,
    WORKER_PRELOAD,
    AddressConfig,
    InProcessConfig,
    JobqueueConfig,
    LocalClusterConfig,
    build_cluster,
    connect,
    parse_cluster_config,
)

SCHEDULER = {"scheduler_options": {"host": "127.0.0.1", "dashboard_address": ":0"}}


def test_parse_shorthands_and_mappings():
    assert parse_cluster_config(None) == InProcessConfig()
    assert parse_cluster_config("local") == LocalClusterConfig()
    assert parse_cluster_config("tcp://127.0.0.1:8786") == AddressConfig(
        address="tcp://127.0.0.1:8786"
    )
    config = parse_cluster_config({"kind": "pbs", "cores": 8, "queue": "long"})
    assert isinstance(config, JobqueueConfig)
    assert (config.kind, config.cores, config.queue) == ("pbs", 8, "long")
    with pytest.raises(
        ConfigError, match="'lokal' is not 'inprocess', 'local' or a scheduler address"
    ):
        parse_cluster_config("lokal")
    with pytest.raises(ConfigError, match="invalid cluster configuration"):
        parse_cluster_config({"kind": "slurm", "cores": 0})
    with pytest.raises(ConfigError, match="invalid cluster configuration"):
        parse_cluster_config({"kind": "local", "n_wrkers": 2})


def test_local_cluster_workers_are_processes_on_loopback_with_one_xla_thread(local_client):
    assert local_client.scheduler.address.startswith("tcp://127.0.0.1:")
    assert set(local_client.nthreads().values()) == {1}
    assert len(local_client.nthreads()) == 2
    pids = local_client.run(os.getpid)
    assert os.getpid() not in pids.values()
    assert len(set(pids.values())) == 2
    env = local_client.run(lambda: {k: os.environ.get(k) for k in WORKER_ENV})
    assert all(e == WORKER_ENV for e in env.values())
    assert "--xla_cpu_multi_thread_eigen=false" in WORKER_ENV["XLA_FLAGS"]
    # glibc reads its malloc settings at process start: they must be in the environment the
    # worker process was started with, not set later
    started = local_client.run(lambda: Path("/proc/self/environ").read_bytes().split(b"\0"))
    for initial in started.values():
        for key, value in MALLOC_ENV.items():
            assert f"{key}={value}".encode() in initial, (key, initial)
    # JAX, coffea and the kernels are imported as the workers start, not by the first skim task
    preloaded = local_client.run(
        lambda: [m in sys.modules for m in ("jax", "coffea.nanoevents", "diffana.pipeline.skim")]
    )
    assert all(all(found) for found in preloaded.values()), preloaded


def test_connect_to_an_address_and_to_a_cluster_object(local_client):
    for spec in (local_client.scheduler.address, local_client.cluster):
        with connect(spec) as connection:
            assert connection.client is not local_client
            assert connection.client.submit(sum, [1, 2]).result() == 3
    with connect(local_client) as connection:
        assert connection.client is local_client
    assert local_client.submit(sum, [3]).result() == 3  # a borrowed client stays open
    with connect(None) as connection:
        assert connection.client is None
        assert connection.dashboard_link is None


@pytest.mark.parametrize(
    ("kind", "directive", "expected"),
    [
        (
            "slurm",
            "--exclusive",
            [
                "#SBATCH -p short",
                "#SBATCH -A phys",
                "#SBATCH --cpus-per-task=4",
                "#SBATCH --mem=",
                "#SBATCH -t 02:00:00",
                "#SBATCH --exclusive",
            ],
        ),
        (
            "pbs",
            "-l place=excl",
            ["#PBS -q short", "#PBS -A phys", "ncpus=4", "walltime=02:00:00", "#PBS -l place=excl"],
        ),
        (
            "htcondor",
            "+MaxRuntime = 7200",
            [
                "MY.DaskWorkerCores = 4",
                "MY.DaskWorkerMemory = 17179869184",
                "RequestDisk",
                "+MaxRuntime = 7200",
            ],
        ),
    ],
)
def test_jobqueue_job_scripts(kind, directive, expected):
    config = JobqueueConfig(
        kind=kind,
        jobs=0,
        cores=4,
        memory="16GiB",
        queue="short",
        account="phys",
        walltime="02:00:00",
        job_extra_directives=[directive],
        job_script_prologue=["source /opt/venv/bin/activate"],
        extra=SCHEDULER,
    )
    cluster = build_cluster(config)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in expected:
        assert line in script, (line, script)
    for key, value in {**WORKER_ENV, **MALLOC_ENV}.items():  # HTCondor doubles inner quotes
        assert f"export {key}='{value}'" in script.replace("''", "'")
    assert "source /opt/venv/bin/activate" in script
    # one single-threaded worker process per core, the job's memory shared among them
    assert "--nthreads 1 " in script
    assert "--nworkers 4 " in script
    assert "--memory-limit 4.00GiB" in script
    assert f"--preload {WORKER_PRELOAD}" in script


def test_missing_dask_jobqueue_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'diffana\[jobqueue\]'"):
        build_cluster({"kind": "slurm"})
    with pytest.raises(ConfigError, match="'--exclusive' is not of the form 'Key = Value'"):
        build_cluster(
            {
                "kind": "htcondor",
                "jobs": 0,
                "job_extra_directives": ["--exclusive"],
                "extra": SCHEDULER,
            }
        )
    with pytest.raises(ConfigError, match="builds local and jobqueue clusters"):
        build_cluster("inprocess")
