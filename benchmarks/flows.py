"""Speed of the normalising flows: events/s of ``sample`` (noise -> data, spline inverse) and of ``log_prob``
(data -> noise, spline forward), for a small flow and for the FlashSim-size jet flow (47,986,595 parameters).

Each rate is printed beside the reference measured first in the same process, the float32 matmul throughput of
this machine (``benchmarks.common.matmul_peak``: large square matrices), as a fraction: the flow's dense FLOP per
event (``common.dense_flops``: 2 n_in n_out + n_out per conditioner kernel, each evaluated once per event in
either direction of a coupling flow) times its events/s, over the matmul rate. Rates are per core (per CPU-second
of this process); the wall-clock rates are printed too. The first call of each function (tracing) is excluded from
the timing. A benchmark, not a test.

    python benchmarks/flows.py --preset quick
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import common  # noqa: E402

MODELS = ("small", "flashsim")


def build(name):
    from gan4hep.flows import flashsim_flow, spline_flow

    if name == "small":
        return spline_flow(4, 2, steps=4, bins=8, tail_bound=3.0, hidden_features=64, num_blocks=2,
                           batch_norm=True, name="small")
    return flashsim_flow()


def time_flow(name, events, min_seconds, seed, peak=None):
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()
    flow = build(name)
    build_s = time.perf_counter() - t0
    params = sum(int(np.prod(v.shape)) for v in flow.trainable_weights)
    flop = common.dense_flops(flow.transform)
    rng = np.random.default_rng(seed)
    context = rng.normal(size=(events, flow.context_dim)).astype("float32")
    flow.sample(events, context=context, seed=seed, batch_size=events)  # trace
    ts = common.timed(lambda: flow.sample(events, context=context, seed=seed, batch_size=events), events,
                      min_seconds=min_seconds, min_calls=2)
    x = flow.sample(events, context=context, seed=seed, batch_size=events, physical=False)
    flow.log_prob_numpy(x, context, batch_size=events)  # trace
    td = common.timed(lambda: flow.log_prob_numpy(x, context, batch_size=events), events,
                      min_seconds=min_seconds, min_calls=2)
    row = {"model": name, "params": params, "flop_per_event": flop, "events": events, "build_s": build_s,
           "sample": ts.rate_cpu, "log_prob": td.rate_cpu, "sample_wall": ts.rate_wall, "log_prob_wall": td.rate_wall}
    if peak:
        for k in ("sample", "log_prob"):
            row[f"{k}_fraction"] = common.fraction_of_peak(row[k], flop, peak["gflops_per_core"])
    return row


def run(models, quick=True, peak=None, events=None, min_seconds=None, seed=0, print_fn=print):
    """Rows (dicts) of ``time_flow`` for ``models``, printed as a table."""
    common.quiet_tf()
    peak = peak or common.matmul_peak(min_seconds=2.0)
    min_seconds = min_seconds or (0.5 if quick else 3.0)
    rows = [time_flow(m, events or {"small": 2048 if quick else 65536, "flashsim": 512 if quick else 8192}[m],
                      min_seconds, seed, peak) for m in models]
    print_fn(common.markdown(["model", "trainable params", "MFLOP/event", "events / call", "sample events/s/core",
                              "log_prob events/s/core", "sample events/s wall", "log_prob events/s wall",
                              "sample fraction of peak", "log_prob fraction of peak"],
                             [[r["model"], r["params"], r["flop_per_event"] / 1e6, r["events"], r["sample"],
                               r["log_prob"], r["sample_wall"], r["log_prob_wall"], r["sample_fraction"],
                               r["log_prob_fraction"]] for r in rows]))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=["paper", "quick"], default="quick",
                   help="quick: 2048 small / 512 FlashSim events per call, ~0.5 s each; paper: 65536 / 8192, ~3 s")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {MODELS}")
    p.add_argument("--events", type=int, help="events per call (overrides the preset for every model)")
    p.add_argument("--min-seconds", type=float, help="seconds per timed function")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the table as Markdown here (atomically)")
    args = p.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(MODELS)
    if unknown:
        p.error(f"unknown model(s) {sorted(unknown)}; choose from {MODELS}")
    m = common.machine()
    peak = common.matmul_peak(min_seconds=2.0)
    head = common.header(f"flow benchmark [preset {args.preset}]", m, peak)
    print(head)
    lines = []
    run(models, args.preset == "quick", peak, args.events, args.min_seconds, args.seed, print_fn=lines.append)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        from pathlib import Path

        from gan4hep.io import atomic_path

        with atomic_path(args.out) as tmp:
            Path(tmp).write_text(head + "\n\n" + text)


if __name__ == "__main__":
    main()
