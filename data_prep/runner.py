"""Shared machinery of the sample commands: seeded blocks of events, the engines that run them (in-process, local
processes, a Dask cluster), part files with a manifest so that an interrupted sample resumes, and the assembly of
the output in block order.

Work is cut into blocks of ``block_size`` generated events; block ``k`` runs its own generator seeded with
``block_seed(seed, k)``. The same ``--seed`` and ``--block-size`` therefore give the same events whatever the
engine, the number of processes or workers, or the order in which blocks finish:

* ``--jobs N``: N spawned local processes (no extra packages);
* ``--cluster local|slurm|htcondor --workers N [--cluster-config FILE]``: a Dask cluster started for the run
  (``distributed.LocalCluster``, or ``dask_jobqueue.SLURMCluster`` / ``HTCondorCluster``; see ``data_prep.cluster``);
* ``--scheduler ADDRESS``: the workers of an already running ``dask.distributed`` scheduler;
* ``--job-index i --n-jobs n``: keep blocks ``i, i + n, ...`` only, so a batch system can split a sample by hand
  (merge the outputs with ``python -m data_prep.merge``; it restores the block order from their manifests).

Every finished block is written by whoever generated it as its own part files, ``FILE.parts/block_KKKKKK.root``
and ``..._features.root`` (atomically: temporary name, then rename), and the driving process appends one line per
block to ``FILE.parts/manifest.jsonl`` (block index, seed, first event, events, entries per tree, rows of the
feature table, the table's content hash, the part files' sha256, seconds, Pythia statistics). A block whose task
fails or whose worker dies is resubmitted (``--retries``); a rerun of an interrupted sample reads the manifest,
checks the part files against their hashes and generates only the missing blocks. At the end the parts are
concatenated in block order into ``FILE.root`` and ``FILE_features.root`` one block at a time (``data_prep.merge``),
never holding the whole sample in memory; the manifest goes into the output's metadata and the parts folder is
removed (``--keep-parts`` keeps it).

Fault injection (tests only): ``GAN4HEP_DATA_PREP_FAULT="MODE:BLOCK:MARKER"`` makes the task of block ``BLOCK``
fail once, across all processes: the first task that creates the file ``MARKER`` raises (``MODE`` = ``raise``) or
kills its own process with ``os._exit(1)`` (``MODE`` = ``exit``, a dying worker).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import contextlib
import dataclasses
import functools
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["Block", "BlockTables", "Sample", "make_blocks", "block_seed", "run_blocks", "produce", "block_job",
           "table_hash", "parts_dir", "read_manifest", "add_common_args", "add_engine_args", "engine_kwargs", "common_kwargs", "features_path",
           "check_out", "configured_pythia", "init_pythia", "cli_errors", "rate_text", "InputError", "EngineError",
           "BlocksFailed", "FAULT_ENV"]

MAX_PYTHIA_SEED = 900_000_000
FAULT_ENV = "GAN4HEP_DATA_PREP_FAULT"
MANIFEST = "manifest.jsonl"
RUN_FILE = "run.json"


class InputError(ValueError):
    """Bad input to a sample command: an argument, an option combination or a config file (one-line message)."""


class EngineError(RuntimeError):
    """The engine cannot be used: a missing package, a scheduler that cannot be reached (one-line message)."""


class BlocksFailed(RuntimeError):
    """Some blocks still failed after all retries; the others are in the parts folder and a rerun resumes."""


# ------------------------------------------------------------------------------------------------- Pythia

def configured_pythia(seed, settings):
    """A quiet Pythia seeded with ``seed`` with every setting in ``settings`` applied (each one checked), not yet
    initialised, so user processes can still be attached."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for s in ["Print:quiet = on", "Next:numberCount = 0", "Random:setSeed = on", f"Random:seed = {seed}", *settings]:
        if not pythia.readString(s):
            raise RuntimeError(f"Pythia rejected the setting {s!r}")
    return pythia


def init_pythia(pythia):
    """Initialise ``pythia``, raising if Pythia refuses."""
    if not pythia.init():
        raise RuntimeError("Pythia initialisation failed")
    return pythia


# ------------------------------------------------------------------------------------------------- blocks

@dataclasses.dataclass(frozen=True)
class Block:
    """One seeded unit of work: ``events`` generated events, the first being global event number ``first``."""

    index: int
    first: int  # global number of the block's first generated event
    events: int
    seed: int


def block_seed(seed: int, index: int) -> int:
    """A distinct, reproducible Pythia seed (1..9e8) for block ``index`` of a run with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0] % MAX_PYTHIA_SEED) + 1


def make_blocks(events: int, seed: int, block_size: int, job_index: int = 0, n_jobs: int = 1) -> list[Block]:
    """The blocks this job generates: all blocks of ``events`` events, taken every ``n_jobs`` from ``job_index``.

    Raises:
        InputError (a ValueError): non-positive ``events`` or ``block_size``, ``job_index`` outside [0, n_jobs).
    """
    if events <= 0:
        raise InputError(f"--events must be positive, got {events}")
    if block_size <= 0:
        raise InputError(f"--block-size must be positive, got {block_size}")
    if not 0 <= job_index < n_jobs:
        raise InputError(f"--job-index must be in [0, --n-jobs={n_jobs}), got {job_index}")
    blocks = []
    for k, first in enumerate(range(0, events, block_size)):
        blocks.append(Block(k, first, min(block_size, events - first), block_seed(seed, k)))
    return blocks[job_index::n_jobs]


_COUNTER = None


def _init_worker(counter):
    global _COUNTER
    _COUNTER = counter


def _report(n):
    if _COUNTER is not None:
        with _COUNTER.get_lock():
            _COUNTER.value += n


def _call(worker, config, block):
    return worker(config, block, _report)


def _bar(total, desc, progress, initial=0):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="ev", disable=not progress, file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1, mininterval=1.0)


def run_blocks(worker, config, blocks, jobs=1, desc="events", progress=True):
    """Run ``worker(config, block, report)`` on every block in memory; return the results in block order.

    The sample commands use ``produce`` (part files, resume, Dask); this in-memory runner is kept for callers
    that want the raw block results. ``report(n)`` is called by the worker after each chunk of n generated events;
    it feeds the progress bar. ``jobs > 1`` uses that many spawned processes (safe when TensorFlow is loaded).
    """
    bar = _bar(sum(b.events for b in blocks), desc, progress)
    try:
        if jobs <= 1 or len(blocks) == 1:
            return [worker(config, b, bar.update) for b in blocks]
        ctx = mp.get_context("spawn")
        counter = ctx.Value("q", 0)
        with ctx.Pool(min(jobs, len(blocks)), initializer=_init_worker, initargs=(counter,)) as pool:
            pending = [pool.apply_async(_call, (worker, config, b)) for b in blocks]
            while not all(p.ready() for p in pending):
                time.sleep(0.25)
                bar.update(counter.value - bar.n)
            results = [p.get() for p in pending]
            bar.update(counter.value - bar.n)
            return results
    finally:
        bar.close()


# ---------------------------------------------------------------------------------------------- samples

class BlockTables(tuple):
    """What one block becomes on disk: ``(trees, delphes_trees, features, stats)``.

    ``trees``: tree name -> {branch: numpy array or awkward record array}, as ``gan4hep.io.write_root`` takes
    (the event record); ``delphes_trees``: the trees whose record branches get Delphes names; ``features``: the
    block's rows of the flat feature table (pandas); ``stats``: small JSON-able numbers kept in the manifest
    (cross-sections, counts) from which ``Sample.summarize`` computes the sample's metadata.
    """

    def __new__(cls, trees: Mapping[str, Mapping[str, Any]], delphes_trees: Sequence[str], features: pd.DataFrame,
                stats: Mapping[str, Any]):
        return super().__new__(cls, (trees, tuple(delphes_trees), features, dict(stats)))


@dataclasses.dataclass(frozen=True)
class Sample:
    """A sample command's block functions, all module-level (so they pickle by reference to any worker).

    Attributes:
        name: the sample (``"ttbar_partons"``; also the module ``data_prep.<name>``).
        generate: ``generate(config, block, report) -> result``: the events of one block; ``report(n)`` after
            every chunk of n events.
        tables: ``tables(result) -> BlockTables``.
        summarize: ``summarize(entries) -> dict``: metadata computed from the manifest entries of all blocks, in
            block order (events generated and selected, cross-sections, ...).
    """

    name: str
    generate: Callable[[Mapping[str, Any], Block, Callable[[int], None]], Any]
    tables: Callable[[Any], BlockTables]
    summarize: Callable[[Sequence[Mapping[str, Any]]], dict]

    @classmethod
    def of(cls, name: str) -> "Sample":
        """The sample of module ``data_prep.<name>`` (its ``_generate_block``, ``_block_tables``, ``_summarize``).

        Taken from the imported module, never from ``__main__``, so the functions pickle by reference to spawned
        processes and Dask workers also when the command runs as ``python -m data_prep.<name>``.

        Raises:
            InputError: no such sample module.
        """
        import importlib

        try:
            mod = importlib.import_module(f"data_prep.{name}")
            return cls(name, mod._generate_block, mod._block_tables, mod._summarize)
        except (ImportError, AttributeError) as e:
            raise InputError(f"no data_prep sample {name!r}: {e}") from None


def table_hash(df: pd.DataFrame) -> str:
    """sha256 (hex) of a feature table's content: column names, dtypes and values in row order.

    Categorical / string columns enter as their labels and int64 codes, so a table hashes the same before writing
    and after ``gan4hep.io.read_table``. Two tables have the same hash iff they hold bit-identical values.
    """
    h = hashlib.sha256()
    h.update(str(len(df)).encode())
    for c in df.columns:
        s = df[c]
        h.update(f"|{c}|".encode())
        if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or pd.api.types.is_string_dtype(s):
            cat = s.astype("category")
            h.update(json.dumps([str(x) for x in cat.cat.categories]).encode())
            h.update(np.ascontiguousarray(cat.cat.codes.to_numpy().astype(np.int64)).tobytes())
        else:
            v = np.ascontiguousarray(s.to_numpy())
            h.update(v.dtype.str.encode())
            h.update(v.tobytes())
    return h.hexdigest()


def _file_hash(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(functools.partial(f.read, 1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parts_dir(out) -> Path:
    """The parts folder of sample ``out`` (FILE.root): FILE.parts next to it."""
    out = Path(out)
    return out.with_name(out.stem + ".parts")


def _part_name(index):
    return f"block_{index:06d}.root"


def _fault(block):
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    mode, index, marker = spec.split(":", 2)
    if int(index) != block.index:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    if mode == "exit":
        os._exit(1)
    raise RuntimeError(f"injected fault in block {block.index} ({FAULT_ENV})")


def block_job(sample: Sample, config: Mapping[str, Any], parts: str, block: Block,
              report: Callable[[int], None] | None = None) -> dict:
    """Generate one block and write it as part files in the folder ``parts``; return its manifest entry.

    Runs wherever the engine puts it (this process, a local process, a Dask worker); ``parts`` must be visible
    there (a shared file system on a cluster). Files are written atomically, so a worker dying mid-block leaves
    no part behind. The entry (JSON-able dict): ``block, seed, first, events, entries`` (tree -> entries),
    ``rows`` (feature table rows), ``sha256`` (``table_hash`` of the block's features), ``files`` (part file ->
    sha256 of its bytes), ``seconds`` (wall time of the block), ``cpu_seconds`` (CPU time of the thread that ran
    it: the block's cost on one core, whatever else loads the machine), ``host``, ``stats``.
    """
    from gan4hep import io

    t0, c0 = time.time(), time.thread_time()
    _fault(block)
    result = sample.generate(config, block, report or _report)
    trees, delphes, features, stats = sample.tables(result)
    parts = Path(parts)
    root = parts / _part_name(block.index)
    feats = features_path(root)
    part_meta = {"sample": sample.name, "block": block.index, "seed": block.seed, "first": block.first}
    io.write_root(root, trees, metadata=part_meta, delphes_trees=delphes)
    io.write_table(features, feats, metadata=part_meta)
    return {
        "block": block.index, "seed": block.seed, "first": block.first, "events": block.events,
        "entries": {name: len(next(iter(b.values()))) if b else 0 for name, b in trees.items()},
        "rows": len(features), "sha256": table_hash(features),
        "files": {root.name: _file_hash(root), feats.name: _file_hash(feats)},
        "seconds": time.time() - t0, "cpu_seconds": time.thread_time() - c0, "host": socket.gethostname(),
        "stats": json.loads(json.dumps(stats, default=float)),
    }


def read_manifest(parts) -> dict[int, dict]:
    """The manifest of a parts folder: block index -> its latest entry (``{}`` if there is none).

    Lines that do not parse (a run killed while appending) are skipped."""
    path = Path(parts) / MANIFEST
    entries = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                e = json.loads(line)
                entries[int(e["block"])] = e
            except (ValueError, KeyError, TypeError):
                continue
    return entries


def _valid(entry, block, parts):
    if entry is None or (entry.get("seed"), entry.get("first"), entry.get("events")) != \
            (block.seed, block.first, block.events):
        return False
    for name, digest in entry.get("files", {}).items():
        p = parts / name
        if not p.exists() or _file_hash(p) != digest:
            return False
    return bool(entry.get("files"))


def _claim(parts, identity):
    """Create the parts folder with its run identity, or check that an existing one belongs to the same run."""
    run_file = parts / RUN_FILE
    if run_file.exists():
        try:
            old = json.loads(run_file.read_text())
        except ValueError:
            old = None
        if old != identity:
            diff = [k for k in identity if (old or {}).get(k) != identity[k]]
            raise InputError(f"{parts} holds blocks of another run (differs in {', '.join(diff) or 'everything'}); "
                             f"remove it or choose another --out")
        return
    parts.mkdir(parents=True, exist_ok=True)
    tmp = parts / f".{RUN_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(identity, indent=1))
    os.replace(tmp, run_file)


# ------------------------------------------------------------------------------------------------ engines

def _check_engine(jobs, scheduler, cluster, workers, cluster_config, retries):
    if jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {jobs}")
    if retries < 0:
        raise InputError(f"--retries must be >= 0, got {retries}")
    if scheduler is not None and cluster is not None:
        raise InputError("give --scheduler (a running Dask scheduler) or --cluster (start one), not both")
    dask = scheduler is not None or cluster is not None
    if dask and jobs > 1:
        raise InputError("--jobs is for local processes; with --scheduler/--cluster the Dask workers run the "
                         "blocks (size them with --workers)")
    if workers is not None and cluster is None:
        raise InputError("--workers needs --cluster local|slurm|htcondor")
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if cluster in ("slurm", "htcondor") and workers is None:
        raise InputError(f"--cluster {cluster} needs --workers N (the number of Dask workers to submit)")
    if cluster_config is not None and cluster is None:
        raise InputError("--cluster-config needs --cluster local|slurm|htcondor")
    if cluster is not None:
        from data_prep import cluster as _cluster

        _cluster.check_kind(cluster)


def _describe_error(exc):
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]


def _run_inprocess(task, todo, retries, bar, on_entry, log):
    failures = {}
    for b in todo:
        for attempt in range(1, retries + 2):
            start = bar.n
            try:
                on_entry(task(b, report=bar.update))
                break
            except Exception as e:  # noqa: BLE001 - any failure of a block is retried
                bar.update(start - bar.n)
                if attempt <= retries:
                    log(f"block {b.index} failed ({_describe_error(e)}); retry {attempt}/{retries}")
                else:
                    failures[b.index] = e
    return failures


def _run_processes(task, todo, jobs, retries, bar, on_entry, log):
    """Local spawned processes; a failed block is resubmitted, a process pool broken by a dying process is
    replaced (the blocks it was running count one attempt each)."""
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    base = bar.n
    attempts = {b.index: 0 for b in todo}
    failures, remaining = {}, list(todo)
    while remaining:
        with cf.ProcessPoolExecutor(min(jobs, len(remaining)), mp_context=ctx, initializer=_init_worker,
                                    initargs=(counter,)) as pool:
            pending, queue, remaining = {}, list(remaining), []

            def submit(b):
                attempts[b.index] += 1
                try:
                    pending[pool.submit(task, b)] = b
                except cf.process.BrokenProcessPool:
                    remaining.append(b)

            for b in queue:
                submit(b)
            while pending:
                done, _ = cf.wait(pending, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                bar.update(max(0, min(base + counter.value, bar.total) - bar.n))
                for f in done:
                    b = pending.pop(f)
                    try:
                        entry = f.result()
                    except Exception as e:  # noqa: BLE001 - any failure of a block is retried
                        if attempts[b.index] > retries:
                            failures[b.index] = e
                            continue
                        log(f"block {b.index} failed ({_describe_error(e)}); retry {attempts[b.index]}/{retries}")
                        if isinstance(e, cf.process.BrokenProcessPool):
                            remaining.append(b)  # the pool is gone: the next pool runs it
                        else:
                            submit(b)
                        continue
                    on_entry(entry)
    if not failures:
        bar.update(max(0, bar.total - bar.n))
    return failures


def _run_dask(client, task, todo, retries, bar, on_entry, log, name):
    """Submit one task per block; resubmit a block whose task raised or whose worker was lost."""
    import uuid
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]
    attempts, futures, failures = {}, {}, {}

    def submit(b):
        attempts[b.index] = attempts.get(b.index, 0) + 1
        f = client.submit(task, b, key=f"{name}-block{b.index:06d}-try{attempts[b.index]}-{token}", pure=False)
        futures[f] = b
        return f

    ac = as_completed([submit(b) for b in todo])
    try:
        for f in ac:
            b = futures.pop(f)
            try:
                entry = f.result()
            except (Exception, asyncio.CancelledError) as e:  # noqa: BLE001 - task error, KilledWorker, cancelled
                if attempts[b.index] <= retries:
                    log(f"block {b.index} failed ({_describe_error(e)}); resubmitted, retry "
                        f"{attempts[b.index]}/{retries}")
                    ac.add(submit(b))
                else:
                    failures[b.index] = e
                continue
            finally:
                f.release()
            on_entry(entry)
            bar.update(b.events)
    except BaseException:
        client.cancel(list(futures))
        raise
    return failures


def _run_engine(task, todo, name, jobs, scheduler, cluster, workers, cluster_config, retries, bar, desc, on_entry,
                log):
    """Run ``task`` on the blocks ``todo`` with the chosen engine; returns (failures, engine description)."""
    if not todo:
        return {}, "none (all blocks from the manifest)"
    if scheduler is None and cluster is None:
        if jobs <= 1 or len(todo) == 1:
            return _run_inprocess(task, todo, retries, bar, on_entry, log), "in-process"
        return _run_processes(task, todo, jobs, retries, bar, on_entry, log), f"local processes ({jobs})"
    from data_prep import cluster as _cluster

    with _cluster.dask_client(scheduler=scheduler, cluster=cluster, workers=workers, cluster_config=cluster_config,
                              log=log) as (client, engine):
        bar.set_description(f"{desc} [{engine}]")
        return _run_dask(client, task, todo, retries, bar, on_entry, log, name), engine


# --------------------------------------------------------------------------------------------- produce

def produce(sample: Sample, config: Mapping[str, Any], out, blocks: Sequence[Block], meta: Mapping[str, Any], *,
            progress: bool = True, jobs: int = 1, scheduler=None, cluster: str | None = None,
            workers: int | None = None, cluster_config=None, retries: int = 2, keep_parts: bool = False,
            desc: str | None = None) -> Path:
    """Generate ``blocks`` of ``sample`` with an engine into part files, then assemble ``out`` and its feature
    table in block order; return the feature table's path (FILE_features.root).

    Args:
        sample: the sample's block functions.
        config: the sample's settings, passed to ``sample.generate`` (JSON-able; part of the run's identity).
        out: the output FILE.root; parts go to FILE.parts/ (see ``parts_dir``).
        blocks: the blocks of this job (``make_blocks``).
        meta: metadata of the sample; must hold ``seed`` and ``block_size``. ``sample.summarize(entries)``, the
            manifest (``manifest``: the entries without the part file names, in block order), ``sha256`` (over
            the blocks' table hashes in block order), ``blocks``, ``blocks_generated`` / ``blocks_reused`` (this
            run), ``engine``, ``seconds`` (wall time of this run), ``core_seconds`` (CPU time of the generating
            threads summed over all blocks) and ``events_per_second`` (events generated in this run per wall
            second; None if none) are added.
        progress: show a progress bar (events) across all processes or workers.
        jobs: local processes (no Dask).
        scheduler: the address of a running Dask scheduler (``tcp://host:8786``), or a ``distributed.Client``.
        cluster: ``"local"``, ``"slurm"`` or ``"htcondor"``: start a Dask cluster (``data_prep.cluster``).
        workers: Dask workers to start with ``cluster`` (default: local -> CPU count; batch -> required).
        cluster_config: YAML/JSON file of cluster options (``data_prep/cluster.yaml`` documents them).
        retries: resubmissions of a failing block before giving up on it.
        keep_parts: keep FILE.parts/ after the output is written.
        desc: progress bar label.

    Raises:
        InputError: bad options, an unreadable config, a parts folder of another run (seed, block size, config).
        EngineError: Dask missing, a scheduler that cannot be reached, a cluster that cannot start.
        BlocksFailed: blocks that failed ``1 + retries`` times (the other blocks are kept; rerun to resume).
    """
    from data_prep import merge

    out = check_out(out)
    _check_engine(jobs, scheduler, cluster, workers, cluster_config, retries)
    if not blocks:
        raise InputError(f"no blocks to generate for {out} (more --n-jobs than blocks of --block-size?)")
    parts = parts_dir(out).resolve()  # absolute: workers may start in another directory
    identity = json.loads(json.dumps({"sample": sample.name, "seed": meta["seed"], "block_size": meta["block_size"],
                                      "config": dict(config)}, default=str))
    _claim(parts, identity)
    manifest = read_manifest(parts)
    done = {b.index: manifest[b.index] for b in blocks if _valid(manifest.get(b.index), b, parts)}
    todo = [b for b in blocks if b.index not in done]
    total = sum(b.events for b in blocks)
    initial = sum(b.events for b in blocks if b.index in done)
    desc = desc or sample.name
    bar = _bar(total, desc, progress, initial=initial)

    def log(msg):
        if progress:
            bar.write(f"{desc}: {msg}", file=sys.stderr)
        else:
            print(f"{desc}: {msg}", file=sys.stderr, flush=True)

    if done:
        log(f"resuming: {len(done)} of {len(blocks)} blocks already in {parts}")

    def on_entry(entry):
        done[entry["block"]] = entry
        with open(parts / MANIFEST, "a") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())

    task = functools.partial(block_job, sample, dict(config), str(parts))
    t0 = time.time()
    try:
        failures, engine = _run_engine(task, todo, sample.name, jobs, scheduler, cluster, workers, cluster_config,
                                       retries, bar, desc, on_entry, log)
    except BaseException:
        if not (parts / MANIFEST).exists():  # nothing generated yet (e.g. the engine did not start): no trace
            shutil.rmtree(parts, ignore_errors=True)
        raise
    finally:
        bar.close()
    seconds = time.time() - t0
    if failures:
        first = min(failures)
        raise BlocksFailed(f"{len(failures)} of {len(blocks)} blocks failed after {1 + retries} attempt(s) (block "
                           f"{first}: {_describe_error(failures[first])}); the {len(done)} finished blocks are in "
                           f"{parts}: rerun the same command to generate only the missing ones")
    entries = [done[b.index] for b in blocks]
    generated = [b.index for b in todo]
    chain = hashlib.sha256("".join(e["sha256"] for e in entries).encode()).hexdigest()
    full = dict(meta)
    full.update(sample.summarize(entries))
    full.update({
        "blocks": [b.index for b in blocks], "blocks_generated": generated,
        "blocks_reused": [b.index for b in blocks if b.index not in set(generated)], "engine": engine,
        "seconds": seconds, "core_seconds": float(sum(e.get("cpu_seconds", e["seconds"]) for e in entries)),
        "events_per_second": (sum(b.events for b in todo) / seconds) if todo and seconds > 0 else None,
        "sha256": chain,
        "sha256_definition": "sha256 of the concatenated per-block table hashes (data_prep.runner.table_hash) in "
                             "block order",
        "manifest": [{k: v for k, v in e.items() if k != "files"} for e in entries],
    })
    full = json.loads(json.dumps(full, default=float))
    pieces = [merge.Piece(parts / _part_name(e["block"]), features_path(parts / _part_name(e["block"])),
                          block=e["block"]) for e in entries]
    path = merge.assemble(pieces, out, full)
    if not keep_parts:
        shutil.rmtree(parts, ignore_errors=True)
    return path


# ------------------------------------------------------------------------------------------------- paths

def features_path(out):
    """Where the flat feature table of sample ``out`` (FILE.root) goes: FILE_features.root."""
    out = Path(out)
    return out.with_name(out.stem + "_features.root")


def check_out(out):
    """``out`` as a Path; raises InputError unless it ends in .root."""
    out = Path(out)
    if out.suffix != ".root":
        raise InputError(f"--out must end in .root, got {out}")
    return out


# --------------------------------------------------------------------------------------------------- CLI

def add_common_args(parser: argparse.ArgumentParser, events, block_size, out):
    """The options every sample command shares (events, seed, blocks, output, engines)."""
    parser.add_argument("--events", type=int, default=events, help="generated events (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="random seed; same seed -> same events")
    parser.add_argument("--block-size", type=int, default=block_size,
                        help="events per seeded block; part of the sample's identity (default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path(out), help="output ROOT file (default %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_engine_args(parser)
    return parser


def add_engine_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The engine options (--jobs, --scheduler, --cluster, --workers, --cluster-config, --retries, --keep-parts,
    --job-index, --n-jobs), for the sample commands and for paper scripts that generate their sample."""
    eng = parser.add_argument_group("engines (same --seed and --block-size -> the same events with any of them)")
    eng.add_argument("--jobs", type=int, default=1, help="local processes (default %(default)s)")
    eng.add_argument("--scheduler", metavar="ADDRESS", default=None,
                     help="run the blocks on the workers of a running Dask scheduler (tcp://host:8786)")
    eng.add_argument("--cluster", metavar="KIND", default=None,
                     help="start a Dask cluster for the run: local, slurm or htcondor (dask-jobqueue)")
    eng.add_argument("--workers", type=int, default=None,
                     help="Dask workers to start with --cluster (local default: the CPU count)")
    eng.add_argument("--cluster-config", type=Path, default=None, metavar="FILE",
                     help="YAML/JSON options of the cluster (see data_prep/cluster.yaml)")
    eng.add_argument("--retries", type=int, default=2,
                     help="resubmissions of a failing block (task error or lost worker; default %(default)s)")
    eng.add_argument("--keep-parts", action="store_true",
                     help="keep FILE.parts/ (one file per block + manifest) after writing the output")
    eng.add_argument("--job-index", type=int, default=0, help="this job's index when split over --n-jobs")
    eng.add_argument("--n-jobs", type=int, default=1, help="number of batch jobs sharing the sample")
    return parser


def engine_kwargs(args) -> dict:
    """``make_sample`` engine keyword arguments from options added by ``add_engine_args``."""
    return dict(jobs=args.jobs, job_index=args.job_index, n_jobs=args.n_jobs, scheduler=args.scheduler,
                cluster=args.cluster, workers=args.workers, cluster_config=args.cluster_config,
                retries=args.retries, keep_parts=args.keep_parts)


def common_kwargs(args):
    """``make_sample`` keyword arguments from the parsed common options."""
    return dict(events=args.events, seed=args.seed, block_size=args.block_size, progress=not args.no_progress,
                **engine_kwargs(args))


def cross_section_summary(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Sample metadata of a single-process sample from the manifest entries of all blocks (block order): events
    generated and selected, and Pythia's generated cross section combined over the blocks (event-weighted mean,
    errors added in quadrature with the same weights), in pb. A sample module whose blocks report ``events``,
    ``sigma_pb`` and ``sigma_err_pb`` in their stats uses it as its ``_summarize``."""
    events = np.array([e["stats"]["events"] for e in entries], dtype=float)
    sig = np.array([e["stats"]["sigma_pb"] for e in entries])
    err = np.array([e["stats"]["sigma_err_pb"] for e in entries])
    w = events / events.sum()
    return {"events_generated": int(events.sum()), "events_selected": int(sum(e["rows"] for e in entries)),
            "sigma_pb": float(np.sum(w * sig)), "sigma_err_pb": float(np.sqrt(np.sum((w * err) ** 2)))}


def rate_text(meta: Mapping[str, Any]) -> str:
    """``"123 events/s (engine)"`` from a sample's metadata, with the number of blocks reused on a resume."""
    eps = meta.get("events_per_second")
    text = f"{eps:.0f} events/s" if eps else "nothing generated"
    text += f" ({meta.get('engine', '?')})"
    reused = len(meta.get("blocks_reused") or [])
    if reused:
        text += f", {reused} of {len(meta.get('blocks', []))} blocks resumed from the parts folder"
    return text


@contextlib.contextmanager
def cli_errors(prog: str) -> Iterator[None]:
    """Turn InputError, EngineError and BlocksFailed into a one-line ``PROG: error: ...`` and exit status 2
    (bad input) or 1 (engine, failed blocks)."""
    try:
        yield
    except InputError as e:
        print(f"{prog}: error: {' '.join(str(e).split())}", file=sys.stderr)
        raise SystemExit(2) from None
    except (EngineError, BlocksFailed) as e:
        print(f"{prog}: error: {' '.join(str(e).split())}", file=sys.stderr)
        raise SystemExit(1) from None
