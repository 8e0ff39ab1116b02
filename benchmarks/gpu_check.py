"""A device check in one script with a time limit: the papers' ``paper``-preset networks trained for a fixed
number of generator steps through ``model.fit`` (as the papers' training scripts do), steps/s against the rates
the papers report, and generation events/s at large batch, beside the float32 matmul peak measured first.

Papers' rates: Lebese & Ruan, 1e6 steps in ~4.5 days on a P100 (2.6 steps/s); Butter, Plehn & Winterhalder,
1e6 steps in ~26 h (10.7 steps/s); Lin, Bhimji & Nachman report none. On a GPU: 200 timed steps per model and
batches up to 2^20 events; on a CPU the same script runs with 10 steps and smaller batches (training rates
are wall-clock and include ``fit``'s fixed cost per call; generation rates are per core on a CPU). Results are written
to ``--out`` after every stage, so a run stopped by the time limit keeps what it measured; a stage that would
not fit in the time left is skipped and listed.

    python benchmarks/gpu_check.py --out gpu_check.json            # < 8 minutes on one large GPU
    python benchmarks/gpu_check.py --time-limit 120 --steps 3       # a CPU smoke run
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import common  # noqa: E402
from benchmarks.paper_models import CASES  # noqa: E402

# steps/s the papers report (None: not reported), with the source
PAPER_RATES = {
    "lebese_ruan": (1e6 / (4.5 * 86400), "1e6 steps in ~4.5 days on a P100"),
    "butter_plehn_winterhalder": (1e6 / (26 * 3600), "1e6 steps in ~26 h"),
    "lin_bhimji_nachman": (None, "not reported"),
}
GEN_BATCHES = {"gpu": (65536, 262144, 1048576), "cpu": (4096, 16384)}
FLOW_BATCHES = {"gpu": (8192, 32768), "cpu": (512,)}


def train_rate(name, steps, warmup=3):
    import numpy as np
    import tensorflow as tf

    case = CASES[name]("paper")
    data = case.training_data(case.batch_size * 8, np.random.default_rng(0))
    ds = tf.data.Dataset.from_tensor_slices(data).repeat().batch(case.batch_size, drop_remainder=True).prefetch(8)
    t0 = time.perf_counter()
    case.model.fit(ds, epochs=1, steps_per_epoch=warmup, verbose=0)
    first = time.perf_counter() - t0
    t = common.timed(lambda: case.model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0), steps, min_seconds=0)
    paper, source = PAPER_RATES[name]
    return {"batch_size": case.batch_size, "n_critic": case.n_critic, "jit_compile": str(case.model.jit_compile),
            "steps": steps, "steps_per_s": t.rate_wall, "steps_per_s_per_core": t.rate_cpu, "warmup_s": first,
            "paper_steps_per_s": paper, "paper_source": source,
            "ratio_to_paper": t.rate_wall / paper if paper else None,
            "hours_for_1e6_steps": 1e6 / t.rate_wall / 3600}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--time-limit", type=float, default=450.0, help="seconds for the whole script (default 450)")
    p.add_argument("--steps", type=int, help="timed generator steps per model (GPU 200, CPU 5)")
    p.add_argument("--models", default=",".join(PAPER_RATES))
    p.add_argument("--no-flow", action="store_true", help="skip the FlashSim flow's generation")
    p.add_argument("--out", help="JSON results, rewritten after every stage")
    args = p.parse_args(argv)
    start = time.perf_counter()
    common.quiet_tf()
    m = common.machine()
    kind = "gpu" if m["gpus"] else "cpu"
    steps = args.steps or (200 if kind == "gpu" else 10)
    peak = common.matmul_peak(min_seconds=2.0)
    print(common.header(f"device check ({kind}): paper-preset training steps/s and generation events/s", m, peak),
          flush=True)
    res = {"machine": m, "matmul": peak, "matmul_peak_gflops": peak["gflops_wall"], "training": {},
           "generation": {}, "skipped": []}
    models = [x for x in args.models.split(",") if x]

    def left():
        return args.time_limit - (time.perf_counter() - start)

    def save():
        if args.out:
            common.write_json(res, args.out)

    # rough cost of each stage relative to the limit: training first (the papers' rates), then generation
    budget = {"train": 0.15, "generate": 0.08}
    for name in models:
        if left() < budget["train"] * args.time_limit:
            res["skipped"].append(f"training {name}")
            continue
        try:
            r = train_rate(name, steps)
        except Exception as e:  # noqa: BLE001 - report and go on
            r = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        res["training"][name] = r
        if "error" in r:
            print(f"{name}: training failed: {r['error']}", flush=True)
        else:
            paper = f"{r['paper_steps_per_s']:.2f} ({r['paper_source']}), ratio {r['ratio_to_paper']:.2f}" \
                if r["paper_steps_per_s"] else r["paper_source"]
            print(f"{name}: batch {r['batch_size']}, n_critic {r['n_critic']}, XLA {r['jit_compile']}: "
                  f"{r['steps_per_s']:.2f} generator steps/s (paper: {paper}); 1e6 steps in "
                  f"{r['hours_for_1e6_steps']:.1f} h; first {3} steps {r['warmup_s']:.1f} s", flush=True)
        save()

    from benchmarks import generation

    per = "wall clock" if kind == "gpu" else "per core: events per CPU-second"
    gen_models = models + ([] if args.no_flow else ["flashsim_flow"])
    for name in gen_models:
        if left() < budget["generate"] * args.time_limit:
            res["skipped"].append(f"generation {name}")
            continue
        try:
            case = CASES[name]("paper")
            flop = common.dense_flops(case.network if case.network is not None else case.model.transform)
            batches = (FLOW_BATCHES if case.network is None else GEN_BATCHES)[kind]
            rows = generation.scan(case, batches, peak, flop, min_seconds=1.0, xla=False)
            ok = [r for r in rows if "error" not in r]
            best = max(ok, key=lambda r: r["events_per_s"]) if ok else None
            res["generation"][name] = {"flop_per_event": flop, "scan": rows,
                                       **({"events_per_s": best["events_per_s"], "batch_size": best["batch_size"],
                                           "fraction_of_peak": best["fraction_of_peak"]} if best else {})}
            print(f"{name} generation ({per}): " + ", ".join(
                f"batch {r['batch_size']:,}: {r['events_per_s']:,.0f} events/s "
                f"({r['fraction_of_peak']:.2f} of peak)" if "error" not in r else
                f"batch {r['batch_size']:,}: {r['error'][:80]}" for r in rows), flush=True)
        except Exception as e:  # noqa: BLE001
            res["generation"][name] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
            print(f"{name} generation failed: {res['generation'][name]['error']}", flush=True)
        save()
    res["seconds"] = time.perf_counter() - start
    if res["skipped"]:
        print(f"skipped (time limit {args.time_limit:.0f} s): {', '.join(res['skipped'])}")
    print(f"done in {res['seconds']:.0f} s")
    save()


if __name__ == "__main__":
    main()
