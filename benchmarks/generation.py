"""Generation speed of each paper's generator against this machine's matmul peak, measured in one run.

For every model (``benchmarks.paper_models``): events/s of the sampling network as one compiled call per batch
(``tf.function``; "network": a GAN draws its noise inside the call with its own sampler, a flow runs the compiled
inverse its ``sample`` uses on noise drawn before) for a range of batch sizes, and with XLA (``jit_compile=True``,
noise drawn inside, and for a GAN also the network alone on noise drawn before) at the best of them; the FLOP per event counted from the
layer shapes (``common.dense_flops``: 2 n_in n_out + n_out per dense kernel); achieved GFLOP/s and its fraction
of the float32 matmul rate measured first in the same process. Then, at the best batch size, the model contract's
``sample(n, batch_size=...)`` (numpy noise, one network call per batch; model space and physical units), the
preprocessing inverse and writing the events (ROOT and parquet through ``gan4hep.io.write_table``), each in
microseconds per event beside the network time, and for a GAN ``sample(..., jit_compile=True)`` (the generator
under XLA, noise drawn before). The headline events/s, fraction of the peak and the speed-up over
the simulation are those of ``sample()`` (model space) at the best batch: what a user's call achieves.

Every rate is the median of 3 timed windows. Rates are per core (events per CPU-second of this process, all
threads), which other jobs on the machine affect much less than wall-clock rates; the wall-clock rates are printed
too. A benchmark, not a test.

    python benchmarks/generation.py --quick
    python benchmarks/generation.py --models lebese_ruan --batches 1024,16384,65536
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import common  # noqa: E402
from benchmarks.paper_models import CASES  # noqa: E402

# batch sizes scanned per model: quick / full (bounded by the FLOP of one call: a few seconds on 2 CPU cores)
BATCHES = {
    "lebese_ruan": ((1024, 16384, 65536), (256, 4096, 65536, 262144)),
    "lin_bhimji_nachman": ((1024, 16384, 131072), (256, 4096, 65536, 262144)),
    "butter_plehn_winterhalder": ((256, 2048, 8192), (256, 2048, 16384, 65536)),
    "flashsim_flow": ((1024,), (128, 1024, 4096)),
}
GPU_BATCHES = (4096, 65536, 262144, 1048576)
REPEATS = 3  # every rate: the median of 3 timed windows (one window slowed by another job does not decide it)


def compiled_sampler(case, batch: int, xla: bool, noise_inside: bool = True):
    """A callable drawing ``batch`` events in model space in one compiled call (see the module docstring);
    ``noise_inside=False``: a GAN's noise is drawn once before (numpy) and passed in, so only the network runs
    in the call (what XLA does to the network alone)."""
    import keras
    import tensorflow as tf
    from keras import ops

    rng = __import__("numpy").random.default_rng(0)
    context = None if not case.context_dim else tf.constant(case.model_context(batch, rng))
    if case.network is not None and not noise_inside:  # a GAN, the network alone
        net = case.network
        z = tf.constant(case.model.noise.sample(batch, case.latent_dim, seed=0))
        inp = z if context is None else tf.concat([z, context], axis=-1)
        fn = tf.function(lambda x: net(x, training=False), jit_compile=xla)
        return lambda: fn(inp).numpy()
    if case.network is not None:  # a GAN
        net, noise, latent = case.network, case.model.noise, case.latent_dim

        def draw(c):
            z = noise.tf_sample(batch, latent)
            return net(z if c is None else ops.concatenate([z, c], axis=-1), training=False)
    elif not xla:  # a flow, without XLA: the contract's own compiled inverse (``sample`` reuses its trace)
        flow = case.model
        z = tf.constant(flow.base.sample(batch, 0))
        inverse = flow._function("inverse", context is not None)
        args = (z,) if context is None else (z, context)
        return lambda: inverse(*args).numpy()
    else:  # a flow with XLA: noise -> data through the transform's inverse
        flow = case.model
        seed = keras.random.SeedGenerator(0)

        def draw(c):
            z = keras.random.normal((batch, case.n_features), seed=seed)
            return flow.transform.inverse(z, c, training=False)[0]

    fn = tf.function(draw, jit_compile=xla)
    return lambda: fn(context).numpy()


def scan(case, batches, peak, flop, min_seconds, xla=True, noise_inside=True):
    rows = []
    for b in batches:
        t0 = time.perf_counter()
        try:
            fn = compiled_sampler(case, b, xla, noise_inside)
            fn()
        except Exception as e:  # noqa: BLE001 - report and go on (an op without an XLA kernel)
            rows.append({"batch_size": b, "xla": xla, "error": f"{type(e).__name__}: {str(e)[:200]}"})
            continue
        compile_s = time.perf_counter() - t0
        t = common.timed(fn, b, min_seconds=min_seconds, min_calls=2, repeats=REPEATS)
        rows.append({"batch_size": b, "xla": xla, "noise_inside": noise_inside, "compile_s": compile_s, "events_per_s": common.device_rate(t),
                     "events_per_s_wall": t.rate_wall, "cores_used": t.cores_used,
                     "gflops_per_core": common.gflops(common.device_rate(t), flop),
                     "fraction_of_peak": common.fraction_of_peak(common.device_rate(t), flop,
                                                                 peak["gflops_per_core"]),
                     "fraction_of_peak_wall": common.fraction_of_peak(t.rate_wall, flop, peak["gflops_wall"])})
    return rows


def contract_costs(case, batch, n_write, min_seconds):
    """µs per event (per core) of ``sample`` (model space, physical), the inverse preprocessing and the writers."""
    import numpy as np
    import pandas as pd

    from gan4hep.io import write_table

    rng = np.random.default_rng(3)
    n = batch
    ctx = case.context(n, rng) if case.context_dim else None
    model = case.model
    out = {}
    model.sample(n, context=ctx, seed=0, batch_size=batch)  # warm-up (a flow's trace at this batch size)
    t = common.timed(lambda: model.sample(n, context=ctx, seed=1, batch_size=batch, physical=False), n,
                     min_seconds=min_seconds, min_calls=2, repeats=REPEATS)
    out["sample_model_space"] = 1e6 / common.device_rate(t)
    out["sample_model_space_events_per_s"] = common.device_rate(t)
    out["sample_model_space_events_per_s_wall"] = t.rate_wall
    if case.network is not None:  # a GAN: the same call with the generator under XLA (noise drawn before)
        model.sample(n, context=ctx, seed=0, batch_size=batch, jit_compile=True)  # warm-up: the XLA compilation
        t = common.timed(lambda: model.sample(n, context=ctx, seed=1, batch_size=batch, physical=False,
                                              jit_compile=True), n, min_seconds=min_seconds, min_calls=2,
                         repeats=REPEATS)
        out["sample_xla_model_space"] = 1e6 / common.device_rate(t)
        out["sample_xla_model_space_events_per_s"] = common.device_rate(t)
    x = model.sample(n, context=ctx, seed=1, batch_size=batch, physical=False)
    if model.preprocessing is not None:
        t = common.timed(lambda: model.to_physical(x), n, min_seconds=min_seconds / 2)
        out["preprocessing_inverse"] = 1e6 / t.rate_cpu
        phys = model.to_physical(x)
    else:
        out["preprocessing_inverse"] = 0.0
        phys = np.asarray(x)
    if getattr(model, "context_preprocessing", None) is not None:
        t = common.timed(lambda: model.context_preprocessing.transform(ctx), n, min_seconds=min_seconds / 2)
        out["context_preprocessing"] = 1e6 / t.rate_cpu
    reps = -(-n_write // len(phys))
    table = pd.DataFrame(np.tile(np.asarray(phys, dtype=np.float32), (reps, 1))[:n_write],
                         columns=case.columns[:phys.shape[1]])
    with tempfile.TemporaryDirectory() as tmp:
        for ext in ("root", "parquet"):
            path = Path(tmp) / f"events.{ext}"
            t = common.timed(lambda: write_table(table, path), n_write, min_seconds=min_seconds / 2)
            out[f"write_{ext}"] = 1e6 / t.rate_cpu
            out[f"write_{ext}_mb"] = path.stat().st_size / 1e6
    return out


def run(models, quick=True, peak=None, min_seconds=None, batches=None, print_fn=print):
    """Measure ``models``; returns ``{"matmul": peak, "generation": {name: result}}``."""
    min_seconds = min_seconds or (0.5 if quick else 2.0)
    common.quiet_tf()
    peak = peak or common.matmul_peak(min_seconds=min_seconds * 2)
    gpu = common.has_gpu()
    results = {}
    for name in models:
        t0 = time.perf_counter()
        case = CASES[name]("paper")
        build_s = time.perf_counter() - t0
        flop = common.dense_flops(case.network if case.network is not None else case.model.transform)
        bs = batches or (GPU_BATCHES if gpu else BATCHES[name][0 if quick else 1])
        rows = scan(case, bs, peak, flop, min_seconds, xla=False)
        best = max((r for r in rows if "error" not in r), key=lambda r: r["events_per_s"])
        skip_xla = quick and case.network is None  # a flow: XLA compilation takes minutes here
        xla = [] if skip_xla else scan(case, [best["batch_size"]], peak, flop, min_seconds, xla=True)
        if case.network is not None:  # the network alone under XLA: how much of the XLA cost is the noise
            xla += scan(case, [best["batch_size"]], peak, flop, min_seconds, xla=True, noise_inside=False)
        # the best full generation (noise included): the network-alone row is for comparison only
        best = max((r for r in rows + xla[:1] if "error" not in r), key=lambda r: r["events_per_s"])
        contract = contract_costs(case, best["batch_size"], min(best["batch_size"] * 4, 262144 if not quick
                                                                 else 65536), min_seconds)
        network_us = 1e6 / best["events_per_s"]
        # the headline is what a user calls: ``sample()`` (model space) at the best batch; the compiled network
        # call (noise drawn inside it) is kept beside it
        rate = contract["sample_model_space_events_per_s"]
        res = {"paper": case.paper, "flop_per_event": flop, "build_s": build_s,
               "events_per_s": rate, "events_per_s_wall": contract["sample_model_space_events_per_s_wall"],
               "batch_size": best["batch_size"], "xla": False,
               "fraction_of_peak": common.fraction_of_peak(rate, flop, peak["gflops_per_core"]),
               "fraction_of_peak_wall": common.fraction_of_peak(contract["sample_model_space_events_per_s_wall"],
                                                                flop, peak["gflops_wall"]),
               "gflops_per_core": common.gflops(rate, flop),
               "network": {k: best[k] for k in ("events_per_s", "events_per_s_wall", "xla", "fraction_of_peak",
                                                "gflops_per_core")},
               "sample_xla_fraction_of_peak": (common.fraction_of_peak(contract["sample_xla_model_space_events_per_s"],
                                                                       flop, peak["gflops_per_core"])
                                               if "sample_xla_model_space_events_per_s" in contract else None),
               "scan": rows, "xla_at_best": xla[0] if xla else None,
               "xla_network_alone": xla[1] if len(xla) > 1 else None,
               "us_per_event": {"network": network_us, **contract}}
        results[name] = res
        print_fn(report(name, res))
    return {"matmul": peak, "generation": results}


def report(name, r):
    lines = [f"\n{name} ({r['paper']}): {r['flop_per_event'] / 1e6:.4g} MFLOP/event (dense layers), "
             f"built in {r['build_s']:.1f} s"]
    rows = []
    extra = [r[k] for k in ("xla_at_best", "xla_network_alone") if r.get(k)]
    for s in r["scan"] + extra:
        mode = ("XLA" if s["xla"] else "no") + ("" if s.get("noise_inside", True) else ", noise outside")
        if "error" in s:
            rows.append([s["batch_size"], mode, "-", "-", "-", "-", "-", s["error"][:60]])
        else:
            rows.append([s["batch_size"], mode, s["events_per_s"], s["events_per_s_wall"], s["cores_used"],
                         s["gflops_per_core"], s["fraction_of_peak"], f"{s['compile_s']:.1f}"])
    lines.append(common.markdown(["batch", "XLA", "events/s/core", "events/s wall", "cores busy", "GFLOP/s/core",
                                  "fraction of peak", "trace+compile s"], rows))
    u = r["us_per_event"]
    parts = [("network, compiled call (best)", u["network"]),
             ("sample() model space (contract: numpy noise, a call per batch)", u["sample_model_space"]),
             *([("sample(jit_compile=True) model space", u["sample_xla_model_space"])]
               if "sample_xla_model_space" in u else []),
             ("preprocessing inverse", u["preprocessing_inverse"])]
    if "context_preprocessing" in u:
        parts.append(("context preprocessing", u["context_preprocessing"]))
    parts += [(f"write ROOT ({u['write_root_mb']:.1f} MB)", u["write_root"]),
              (f"write parquet ({u['write_parquet_mb']:.1f} MB)", u["write_parquet"])]
    lines.append("\nper event, one core, at batch {:,}:".format(r["batch_size"]))
    lines.append(common.markdown(["step", "µs/event", "x network"], [[k, v, v / u["network"]] for k, v in parts]))
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer batch sizes, windows of >= 0.5 s")
    p.add_argument("--models", default=",".join(CASES), help=f"comma-separated subset of {list(CASES)}")
    p.add_argument("--batches", help="comma-separated batch sizes (overrides the per-model lists)")
    p.add_argument("--min-seconds", type=float, help="seconds per measurement")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(CASES)
    if unknown:
        p.error(f"unknown model(s) {sorted(unknown)}; choose from {list(CASES)}")
    m = common.machine()
    peak = common.matmul_peak(min_seconds=2.0 if args.quick else 4.0)
    print(common.header("generation: events/s of each generator against the matmul peak", m, peak))
    batches = [int(b) for b in args.batches.split(",")] if args.batches else None
    res = run(models, args.quick, peak, args.min_seconds, batches)
    if args.out:
        common.write_json({"machine": m, **res}, args.out)


if __name__ == "__main__":
    main()
