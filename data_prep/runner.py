"""Shared machinery of the sample commands: blocks of events with fixed seeds, local processes, batch splitting,
a progress bar with events/s, and atomic output.

Work is cut into blocks of ``block_size`` generated events; block ``k`` runs its own generator seeded with
``block_seed(seed, k)``. The same ``--seed`` and ``--block-size`` therefore give the same events whatever
``--jobs`` or ``--n-jobs`` are: ``--jobs`` spreads the blocks over local processes, ``--job-index/--n-jobs``
keeps blocks ``job_index, job_index + n_jobs, ...`` so a batch system can split a sample (merge the parts with
``python -m data_prep.merge``).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import sys
import time
from pathlib import Path

__all__ = ["Block", "make_blocks", "block_seed", "run_blocks", "add_common_args", "features_path", "check_out",
           "configured_pythia", "init_pythia"]

MAX_PYTHIA_SEED = 900_000_000


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


@dataclasses.dataclass(frozen=True)
class Block:
    index: int
    first: int  # global number of the block's first generated event
    events: int
    seed: int


def block_seed(seed, index):
    """A distinct, reproducible Pythia seed (1..9e8) for block ``index`` of a run with ``seed``."""
    import numpy as np

    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0] % MAX_PYTHIA_SEED) + 1


def make_blocks(events, seed, block_size, job_index=0, n_jobs=1):
    """The blocks this job generates: all blocks of ``events`` events, taken every ``n_jobs`` from ``job_index``."""
    if events <= 0:
        raise ValueError(f"--events must be positive, got {events}")
    if block_size <= 0:
        raise ValueError(f"--block-size must be positive, got {block_size}")
    if not 0 <= job_index < n_jobs:
        raise ValueError(f"--job-index must be in [0, --n-jobs={n_jobs}), got {job_index}")
    blocks = []
    for k, first in enumerate(range(0, events, block_size)):
        blocks.append(Block(k, first, min(block_size, events - first), block_seed(seed, k)))
    return blocks[job_index::n_jobs]


_COUNTER = None


def _init_worker(counter):
    global _COUNTER
    _COUNTER = counter


def _report(n):
    with _COUNTER.get_lock():
        _COUNTER.value += n


def _call(worker, config, block):
    return worker(config, block, _report)


def run_blocks(worker, config, blocks, jobs=1, desc="events", progress=True):
    """Run ``worker(config, block, report)`` on every block; return the results in block order.

    ``report(n)`` is called by the worker after each chunk of n generated events; it feeds the progress bar.
    ``jobs > 1`` uses that many spawned processes (spawn: safe when TensorFlow is loaded in the parent).
    """
    from tqdm import tqdm

    total = sum(b.events for b in blocks)
    bar = tqdm(total=total, desc=desc, unit="ev", disable=not progress, file=sys.stderr, dynamic_ncols=True,
               smoothing=0.1, mininterval=1.0)
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


def features_path(out):
    """Where the flat feature table of sample ``out`` (FILE.root) goes: FILE_features.root."""
    out = Path(out)
    return out.with_name(out.stem + "_features.root")


def check_out(out):
    out = Path(out)
    if out.suffix != ".root":
        raise ValueError(f"--out must end in .root, got {out}")
    return out


def add_common_args(parser: argparse.ArgumentParser, events, block_size, out):
    parser.add_argument("--events", type=int, default=events, help="generated events (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="random seed; same seed -> same events")
    parser.add_argument("--jobs", type=int, default=1, help="local processes (default %(default)s)")
    parser.add_argument("--job-index", type=int, default=0, help="this job's index when split over --n-jobs")
    parser.add_argument("--n-jobs", type=int, default=1, help="number of batch jobs sharing the sample")
    parser.add_argument("--block-size", type=int, default=block_size,
                        help="events per seeded block; part of the sample's identity (default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path(out), help="output ROOT file (default %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def common_kwargs(args):
    return dict(events=args.events, seed=args.seed, jobs=args.jobs, job_index=args.job_index, n_jobs=args.n_jobs,
                block_size=args.block_size, progress=not args.no_progress)
