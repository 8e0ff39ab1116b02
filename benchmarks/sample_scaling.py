"""Sample generation on Dask: events/s with 1 and 2 workers and the scaling ratio, and the per-core cost of each
paper's ``paper``-preset sample, extrapolated from a short measured run and printed as core-hours.

    python benchmarks/sample_scaling.py                       # ~3 minutes on two free cores
    python benchmarks/sample_scaling.py --scaling-events 2400 --scaling-block 300 --cost-events 400   # a quick look

Scaling: a ``distributed.LocalCluster`` of N worker processes (one thread each) is started and warmed up (the
workers import Pythia) before the clock starts; the timed part is ``make_sample`` through ``--scheduler``, i.e.
generating the blocks on the workers, writing the part files and assembling the output in block order.

Cost: each paper sample is generated in-process with its paper settings as two blocks, one of ``--cost-events``
events and one of a quarter of that; the manifest's per-block CPU times (``cpu_seconds``: the generating thread's
CPU time, so other jobs on the machine do not inflate it) give the Pythia initialisation per block
(intercept) and the time per event (slope), so that
``core-hours = (n_blocks x init + events x per_event) / 3600`` with the paper's block size. Paper sizes come from
the papers' recipes (``PAPER``), with the numbers below as fallback.

A benchmark, not a test: numbers depend on the machine and on what else runs on it (the load average is printed;
the scaling ratio is only meaningful with two free cores, the CPU-time costs are robust to other load).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the paper recipes import TensorFlow

# name -> (module, make_sample settings of the paper preset, paper events (fallback), paper block size, source)
PAPERS = {
    "dilepton": ("data_prep.dilepton", {"mpi": True, "wt": True}, 3_600_000, 2000,
                 "Lebese & Ruan (papers/lebese_ruan, PAPER.events)"),
    "qcd_jets": ("data_prep.qcd_jets", {"mpi": False, "pthat_min": 120.0, "bias": True}, 10_000_000, 5000,
                 "Lin, Bhimji & Nachman (papers/lin_bhimji_nachman, PAPER.events)"),
    "ttbar_partons": ("data_prep.ttbar_partons", {}, 1_100_000, 20000,
                      "Butter, Plehn & Winterhalder (papers/butter_plehn_winterhalder, train + test events)"),
}


def paper_events():
    """Events of each paper's ``paper`` preset, read from the recipes (fallback: the constants above)."""
    events = {k: v[2] for k, v in PAPERS.items()}
    try:
        from papers.butter_plehn_winterhalder.recipe import PAPER as bpw
        from papers.lebese_ruan.recipe import PAPER as lr
        from papers.lin_bhimji_nachman.recipe import PAPER as lbn

        events.update(dilepton=lr.events, qcd_jets=lbn.events, ttbar_partons=bpw.train_events + bpw.test_events)
        if not lr.mpi:
            PAPERS["dilepton"][1]["mpi"] = False
    except Exception as e:  # noqa: BLE001 - the papers are optional here
        print(f"(paper recipes not importable, using the built-in sizes: {type(e).__name__}: {e})")
    return events


def scaling(sample, events, block, workers, tmp):
    """events/s of ``sample`` through a LocalCluster of ``workers`` processes (startup excluded)."""
    import importlib
    import logging

    import distributed

    mod = importlib.import_module(PAPERS[sample][0])
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  silence_logs=logging.ERROR, dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        client.run(importlib.import_module, PAPERS[sample][0])
        client.run(importlib.import_module, "pythia8mc")
        out = Path(tmp) / f"scaling_{workers}.root"
        t0 = time.perf_counter()
        mod.make_sample(out, events=events, seed=11, block_size=block, progress=False, scheduler=client,
                        **PAPERS[sample][1])
        return events / (time.perf_counter() - t0)


def cost(sample, events, tmp):
    """(init CPU seconds per block, CPU seconds per event, wall events/s) of ``sample`` with its paper settings,
    in-process."""
    import importlib

    from gan4hep import io

    mod = importlib.import_module(PAPERS[sample][0])
    small = max(events // 4, 1)
    out = Path(tmp) / f"cost_{sample}.root"
    path = mod.make_sample(out, events=events + small, seed=12, block_size=events, progress=False,
                           **PAPERS[sample][1])
    manifest = io.read_metadata(path)["manifest"]
    s0, s1 = (e["cpu_seconds"] for e in manifest)
    wall_rate = (events + small) / sum(e["seconds"] for e in manifest)
    per_event = (s0 - s1) / (events - small)
    if per_event <= 0:  # noise beat the slope: charge everything to the events
        return 0.0, s0 / events, wall_rate
    return max(s1 - per_event * small, 0.0), per_event, wall_rate


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scaling-sample", default="qcd_jets", choices=list(PAPERS))
    p.add_argument("--scaling-events", type=int, default=16000, help="events per scaling run")
    p.add_argument("--scaling-block", type=int, default=2000, help="block size of the scaling runs")
    p.add_argument("--cost-events", type=int, default=None,
                   help="events of the long block of each cost run (default: dilepton 1000, qcd 2000, partons 20000)")
    p.add_argument("--skip-scaling", action="store_true")
    p.add_argument("--skip-cost", action="store_true")
    args = p.parse_args(argv)
    from benchmarks import common

    print(common.machine_line(common.machine(with_tf=False)))
    print("reference: the 1-worker rate of the same run (scaling ratio); the costs are CPU time of one core")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_scaling:
            rates = {}
            for n in (1, 2):
                rates[n] = scaling(args.scaling_sample, args.scaling_events, args.scaling_block, n, tmp)
                print(f"{args.scaling_sample}: {args.scaling_events} events in blocks of {args.scaling_block}, "
                      f"{n} Dask worker(s): {rates[n]:.0f} events/s", flush=True)
            print(f"scaling 2 workers / 1 worker: {rates[2] / rates[1]:.2f} (ideal 2.00)")
        if not args.skip_cost:
            sizes = paper_events()
            default = {"dilepton": 1000, "qcd_jets": 2000, "ttbar_partons": 20000}
            print("\n| sample | paper | paper events | block | init CPU s/block | CPU ms/event | events/s/core | "
                  "core-hours | wall hours on 100 cores | events/s wall here |")
            print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
            for name, (_, _, _, block, source) in PAPERS.items():
                m = args.cost_events or default[name]
                init, per_event, wall_rate = cost(name, m, tmp)
                n = sizes[name]
                core_s = math.ceil(n / block) * init + n * per_event
                print(f"| {name} | {source.split(' (')[0]} | {n:.2g} | {block} | {init:.2f} | {1e3 * per_event:.2f} | "
                      f"{1 / per_event:.0f} | {core_s / 3600:.1f} | {core_s / 3600 / 100:.2f} | {wall_rate:.0f} |", flush=True)
            print(f"(CPU time of blocks of {args.cost_events or 'default'} + 1/4 events, one core, in-process, "
                  f"including the part files; load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
