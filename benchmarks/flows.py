"""Speed of the normalising flows: events/s of ``sample`` (noise -> data, spline inverse) and of ``log_prob``
(data -> noise, spline forward), for a small flow and for the FlashSim-size jet flow (47,986,595 parameters).

Each rate is printed beside a reference measured in the same run, the float32 matmul throughput of this machine
(``tf.matmul`` of two 1024 x 1024 matrices), as a ratio: the flow's weight-FLOP rate (2 FLOP per trainable weight
per event, the cost of one pass through the conditioners) over the matmul rate. The first call of each function
(tracing) is excluded from the timing. This is a benchmark, not a test: numbers depend on the machine and on what
else runs on it.

    python benchmarks/flows.py --preset quick
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODELS = ("small", "flashsim")


def matmul_gflops(n: int = 1024, repeats: int = 20) -> float:
    """Measured float32 ``tf.matmul`` throughput in GFLOP/s (2 n^3 FLOP per product)."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))

    @tf.function
    def chain(a, b):
        for _ in range(repeats):
            a = tf.matmul(a, b) * 1e-3
        return a

    chain(a, b).numpy()
    t0 = time.perf_counter()
    chain(a, b).numpy()
    return 2 * n ** 3 * repeats / (time.perf_counter() - t0) / 1e9


def build(name):
    from gan4hep.flows import flashsim_flow, spline_flow

    if name == "small":
        return spline_flow(4, 2, steps=4, bins=8, tail_bound=3.0, hidden_features=64, num_blocks=2,
                           batch_norm=True, name="small")
    return flashsim_flow()


def time_flow(name, events, repeats, seed):
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()
    flow = build(name)
    build_s = time.perf_counter() - t0
    params = sum(int(np.prod(v.shape)) for v in flow.trainable_weights)
    rng = np.random.default_rng(seed)
    context = rng.normal(size=(events, flow.context_dim)).astype("float32")
    flow.sample(events, context=context, seed=seed)  # trace
    t0 = time.perf_counter()
    for i in range(repeats):
        x = flow.sample(events, context=context, seed=seed + i, batch_size=events)
    sample_rate = events * repeats / (time.perf_counter() - t0)
    flow.log_prob_numpy(x, context, batch_size=events)  # trace
    t0 = time.perf_counter()
    for _ in range(repeats):
        flow.log_prob_numpy(x, context, batch_size=events)
    density_rate = events * repeats / (time.perf_counter() - t0)
    return {"model": name, "params": params, "build_s": build_s, "sample": sample_rate, "log_prob": density_rate}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=["paper", "quick"], default="quick",
                   help="quick: 2048 small / 512 FlashSim events per call, 2 calls; paper: 65536 / 8192, 5 calls")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {MODELS}")
    p.add_argument("--events", type=int, help="events per call (overrides the preset for every model)")
    p.add_argument("--repeats", type=int, help="timed calls per function")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the table as Markdown here (atomically)")
    args = p.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(MODELS)
    if unknown:
        p.error(f"unknown model(s) {sorted(unknown)}; choose from {MODELS}")
    quick = args.preset == "quick"
    repeats = args.repeats or (2 if quick else 5)

    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    device = f"GPU: {gpus[0].name}" if gpus else \
        f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores visible)"
    reference = matmul_gflops()
    rows = []
    for m in models:
        events = args.events or {"small": 2048 if quick else 65536, "flashsim": 512 if quick else 8192}[m]
        rows.append((events, time_flow(m, events, repeats, args.seed)))

    lines = [f"flow benchmark [preset {args.preset}]: {repeats} timed calls per function, {device}; reference "
             f"float32 matmul (1024^2): {reference:,.1f} GFLOP/s",
             "", "| model | trainable params | events / call | sample events/s | log_prob events/s | "
             "sample / matmul | log_prob / matmul |", "|---|---|---|---|---|---|---|"]
    for events, r in rows:
        ratio = {k: r[k] * 2 * r["params"] / 1e9 / reference for k in ("sample", "log_prob")}
        lines.append(f"| {r['model']} | {r['params']:,} | {events:,} | {r['sample']:,.0f} | {r['log_prob']:,.0f} | "
                     f"{ratio['sample']:.3f} | {ratio['log_prob']:.3f} |")
    lines += ["", "ratio = (events/s x 2 FLOP x trainable weights) / measured matmul FLOP/s: the fraction of this "
              "machine's matmul rate the flow's conditioner arithmetic reaches."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        from pathlib import Path

        from gan4hep.io import atomic_path

        with atomic_path(args.out) as tmp:
            Path(tmp).write_text(text)


if __name__ == "__main__":
    main()
