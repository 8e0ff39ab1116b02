"""The Dask engine of the sample commands: a client on a running scheduler (``--scheduler``) or on a cluster started
for the run (``--cluster local|slurm|htcondor --workers N [--cluster-config FILE]``).

* ``local``: ``distributed.LocalCluster`` with N worker processes of one thread each (Pythia is run in processes).
* ``slurm`` / ``htcondor``: ``dask_jobqueue.SLURMCluster`` / ``HTCondorCluster``; the scheduler runs in this
  (driving) process, worker jobs are submitted with ``cluster.scale(n=N)`` (N workers in all; with
  ``processes: P`` in the config each job holds P of them). The workers import ``data_prep`` and write the part
  files themselves, so the Python environment and the output folder must be on a file system the worker nodes see.

``--cluster-config FILE`` (YAML or JSON) holds one section per kind; each section's keys are passed unchanged as
keyword arguments to the cluster class (``data_prep/cluster.yaml`` is a documented example; dask-jobqueue's own
``~/.config/dask/jobqueue.yaml`` still supplies defaults for keys not given). Check a config without submitting
anything with

    python -m data_prep.cluster --cluster slurm --cluster-config cluster.yaml --workers 100

which prints the batch job script (or the LocalCluster options).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from data_prep.runner import EngineError, InputError

__all__ = ["KINDS", "check_kind", "load_config", "make_cluster", "dask_client", "main"]

#: The cluster kinds of ``--cluster``.
KINDS = ("local", "slurm", "htcondor")
_JOBQUEUE = {"slurm": "SLURMCluster", "htcondor": "HTCondorCluster"}
#: How long ``--scheduler ADDRESS`` tries to connect before giving up (a Dask time string).
CONNECT_TIMEOUT = "20s"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def check_kind(kind: str) -> str:
    """``kind`` if it is one of ``KINDS``.

    Raises:
        InputError: an unknown kind (the message names it and the known ones).
    """
    if kind not in KINDS:
        raise InputError(f"unknown --cluster {kind!r}: choose one of {', '.join(KINDS)}")
    return kind


def load_config(path: str | os.PathLike | None, kind: str) -> dict[str, Any]:
    """The options of cluster ``kind`` from the YAML/JSON file ``path`` (``{}`` when ``path`` is None or the file
    has no section for ``kind``).

    The file is a mapping from cluster kinds (``local``, ``slurm``, ``htcondor``) to mappings of keyword arguments.

    Raises:
        InputError: the file cannot be read or parsed, is not such a mapping, or has a section of an unknown kind.
    """
    check_kind(kind)
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise InputError(f"cannot read --cluster-config {path}: {_one_line(e)}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise InputError(f"--cluster-config {path}: expected a mapping of cluster kinds ({', '.join(KINDS)}) to "
                         f"options, got {type(data).__name__}")
    unknown = [k for k in data if k not in KINDS]
    if unknown:
        raise InputError(f"--cluster-config {path}: unknown section(s) {unknown}; sections: {', '.join(KINDS)}")
    section = data.get(kind) or {}
    if not isinstance(section, dict):
        raise InputError(f"--cluster-config {path}: section {kind!r} must be a mapping of options")
    return dict(section)


def make_cluster(kind: str, workers: int | None, options: dict[str, Any], source: str = "defaults"):
    """Start a Dask cluster of ``kind`` with ``workers`` workers (local default: the CPU count; required for the
    batch kinds) and the keyword ``options``; returns ``(cluster, description)``.

    Raises:
        InputError: unknown kind, missing ``workers`` for a batch kind, options the cluster class rejects.
        EngineError: dask / distributed / dask-jobqueue not installed, or the cluster fails to start.
    """
    check_kind(kind)
    try:
        import distributed
    except ImportError as e:
        raise EngineError(f"--cluster {kind} needs dask and distributed (pip install -e .[dask]): "
                          f"{_one_line(e)}") from None
    if kind == "local":
        n = workers or os.cpu_count() or 1
        kwargs = dict(n_workers=n, threads_per_worker=1, processes=True, silence_logs=logging.ERROR,
                      dashboard_address=None)
        kwargs.update(options)
        try:
            cluster = distributed.LocalCluster(**kwargs)
        except TypeError as e:
            raise InputError(f"--cluster-config ({source}) [local]: LocalCluster rejected the options: "
                             f"{_one_line(e)}") from None
        except Exception as e:  # noqa: BLE001
            raise EngineError(f"the LocalCluster did not start: {_one_line(e)}") from None
        return cluster, f"dask LocalCluster, {len(cluster.workers)} workers"
    if not workers:
        raise InputError(f"--cluster {kind} needs --workers N (the number of Dask workers to submit)")
    try:
        import dask_jobqueue
    except ImportError as e:
        raise EngineError(f"--cluster {kind} needs dask-jobqueue (pip install -e .[dask]): {_one_line(e)}") from None
    cls = getattr(dask_jobqueue, _JOBQUEUE[kind])
    kwargs = {"silence_logs": "error"}
    kwargs.update(options)
    try:
        cluster = cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise InputError(f"--cluster-config ({source}) [{kind}]: {cls.__name__} rejected the options: "
                         f"{_one_line(e)}") from None
    except Exception as e:  # noqa: BLE001
        raise EngineError(f"the {cls.__name__} did not start: {_one_line(e)}") from None
    try:
        cluster.scale(n=workers)
    except Exception as e:  # noqa: BLE001
        cluster.close()
        raise EngineError(f"{cls.__name__} could not submit worker jobs: {_one_line(e)}") from None
    return cluster, f"dask {cls.__name__}, {workers} workers requested"


@contextlib.contextmanager
def dask_client(scheduler=None, cluster: str | None = None, workers: int | None = None, cluster_config=None,
                log: Callable[[str], None] = print, connect_timeout: str | None = None) -> Iterator[tuple[Any, str]]:
    """A ``distributed.Client`` on a running scheduler (``scheduler``: an address such as ``tcp://host:8786``, or
    an existing Client, which is left open) or on a cluster of kind ``cluster`` started (and closed) here.
    ``connect_timeout`` defaults to ``CONNECT_TIMEOUT``.

    Yields:
        ``(client, description)``.

    Raises:
        InputError: bad cluster kind or options (see ``make_cluster``, ``load_config``).
        EngineError: dask missing, a scheduler that cannot be reached within ``connect_timeout``.
    """
    if scheduler is not None and not isinstance(scheduler, (str, os.PathLike)):
        yield scheduler, "dask client (given)"
        return
    try:
        import distributed
    except ImportError as e:
        raise EngineError(f"--scheduler/--cluster need dask and distributed (pip install -e .[dask]): "
                          f"{_one_line(e)}") from None
    if scheduler is not None:
        try:
            client = distributed.Client(str(scheduler), timeout=connect_timeout or CONNECT_TIMEOUT)
        except Exception as e:  # noqa: BLE001 - OSError, TimeoutError, ValueError (bad address)
            raise EngineError(f"cannot reach the Dask scheduler at {str(scheduler)!r}: {_one_line(e)}") from None
        try:
            n = len(client.scheduler_info().get("workers", {}))
            if not n:
                log(f"the scheduler at {scheduler} has no workers yet: blocks start when workers join")
            yield client, f"dask scheduler {scheduler}"
        finally:
            client.close()
        return
    options = load_config(cluster_config, cluster)
    source = str(cluster_config) if cluster_config is not None else "defaults"
    dcluster, desc = make_cluster(cluster, workers, options, source)
    try:
        client = distributed.Client(dcluster)
        try:
            if cluster != "local":
                log(f"{desc}: blocks start as the worker jobs start (dashboard: {dcluster.dashboard_link})")
            yield client, desc
        finally:
            client.close()
    finally:
        dcluster.close()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m data_prep.cluster",
                                description="Check a Dask cluster config: print the batch job script (slurm, "
                                            "htcondor) or the LocalCluster options, without submitting anything.")
    p.add_argument("--cluster", required=True, metavar="KIND", help="local, slurm or htcondor")
    p.add_argument("--cluster-config", type=Path, default=None, metavar="FILE", help="YAML/JSON options")
    p.add_argument("--workers", type=int, default=None, help="workers the sample command would start")
    args = p.parse_args(argv)
    try:
        options = load_config(args.cluster_config, check_kind(args.cluster))
        if args.cluster == "local":
            print(f"LocalCluster(n_workers={args.workers or os.cpu_count()}, threads_per_worker=1, processes=True, "
                  + ", ".join(f"{k}={v!r}" for k, v in options.items()) + ")")
            return
        import dask_jobqueue

        cls = getattr(dask_jobqueue, _JOBQUEUE[args.cluster])
        kwargs = {"silence_logs": "error"}
        kwargs.update(options)
        try:
            cluster = cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise InputError(f"--cluster-config ({args.cluster_config}) [{args.cluster}]: {cls.__name__} rejected "
                             f"the options: {_one_line(e)}") from None
        try:
            print(cluster.job_script())
            if args.workers:
                per_job = cluster._dummy_job.worker_processes if hasattr(cluster, "_dummy_job") else 1
                print(f"# --workers {args.workers}: {-(-args.workers // max(per_job, 1))} jobs of {per_job} "
                      f"worker(s)")
        finally:
            cluster.close()
    except ImportError as e:
        raise SystemExit(f"{p.prog}: error: {args.cluster} needs dask-jobqueue (pip install -e .[dask]): "
                         f"{_one_line(e)}") from None
    except (InputError, EngineError) as e:
        raise SystemExit(f"{p.prog}: error: {_one_line(e)}") from None


if __name__ == "__main__":
    main()
