"""All the benchmarks in one process, so every ratio compares numbers measured in the same run.

1. the hardware limit: float32 matmul of large square matrices (``common.matmul_peak``);
2. generation of each paper's generator: events/s per core, batch scan, fraction of the peak, the preprocessing
   inverse and the writers beside the network (``generation``);
3. the simulation each one replaces: Pythia (+ response) per core, selected fraction, profile, speed-up
   (``simulation``);
4. training: ``fit`` against a minimal loop, with and without XLA (``training``);
5. the flows' ``sample`` and ``log_prob`` (``flows``: the small flow with ``--quick``, both flows without).

    python benchmarks/run.py --quick --out results.json          # under ~10 minutes on 2 free cores
    python benchmarks/run.py --out results.json --markdown table.md

``--out`` holds at least ``machine``, ``matmul_peak_gflops``, ``generation: {MODEL: {events_per_s, batch_size,
fraction_of_peak}}``, ``fit_overhead_ratio: {MODEL: ratio}``, ``speedup_vs_simulation: {SAMPLE: ratio}``,
``simulation_profile: {SAMPLE: {PART: seconds_per_event}}``, and every detail under ``details``. Rates are per core
(per CPU-second) and ``fraction_of_peak`` divides per-core rates; ``matmul_peak_gflops`` is the wall-clock rate of
the whole machine at the time of the run, ``matmul_peak_gflops_per_core`` the per-core one.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import common  # noqa: E402

STAGES = ("generation", "simulation", "training", "flows")


def _fraction(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def summary_table(res: dict) -> str:
    """The Markdown summary of a results dict (the README's table)."""
    m = res["machine"]
    peak = res["matmul"]
    lines = [f"{m['date']}; {common.machine_line(m).removeprefix('machine: ').rsplit(';', 1)[0]}; "
             f"{'--quick' if res.get('quick') else 'full'} run in {res.get('seconds', 0) / 60:.1f} min "
             f"({res.get('cpu_seconds', 0) / 60:.1f} CPU-min)",
             "",
             f"Reference: float32 matmul {peak['n']}x{peak['n']}: **{peak['gflops_per_core']:.0f} GFLOP/s per core** "
             f"({peak['gflops_wall']:.0f} GFLOP/s wall with {peak['cores_used']:.2f} cores busy)"
             + (f"; measured again at the end: {res['matmul_end']['gflops_per_core']:.0f} GFLOP/s per core (every "
                "ratio divides by the first)." if res.get("matmul_end") else "."), ""]
    gen = res.get("generation", {})
    sims = res.get("details", {}).get("simulation", {}).get("simulation", {})
    if gen:
        from benchmarks.simulation import SAMPLES

        sample_of = {}
        for k, v in SAMPLES.items():  # the paper's chain first (dilepton before dilepton_quick)
            sample_of.setdefault(v[3], k)
        rows = []
        for name, g in gen.items():
            s = sample_of.get(name)
            sim = sims.get(s, {})
            rows.append([name, f"{g['flop_per_event'] / 1e6:.3g}", g["batch_size"], g["events_per_s"],
                         g["gflops_per_core"], f"{g['fraction_of_peak']:.2f}",
                         _fraction(g.get("network_fraction_of_peak")),
                         _fraction(g.get("sample_xla_fraction_of_peak")),
                         _fraction(g.get("xla_network_alone_fraction_of_peak")), s or "-",
                         sim.get("selected_per_s"), sim.get("selected_fraction"),
                         res.get("speedup_vs_simulation", {}).get(s),
                         f"{sim['selected_rel_err']:.0%}" if sim else "-"])
        lines.append(common.markdown(["generator", "MFLOP/event", "best batch", "sample() events/s/core",
                                      "GFLOP/s/core", "fraction of peak", "network call (noise inside)",
                                      "sample(jit_compile=True)", "network alone, XLA", "simulated sample",
                                      "simulation selected/s/core", "selected fraction", "speed-up",
                                      "+- (selected count)"], rows))
        lines.append("")
    tr = res.get("details", {}).get("training", {}).get("training", {})
    if tr:
        rows = []
        for name, t in tr.items():
            r = t["runs"]

            def rate(key):
                return r.get(key, {}).get("steps_per_s")

            rows.append([name, t["preset"], t["batch_size"], t["n_critic"], t["recipe_jit_compile"], rate("fit"),
                         rate("loop"), rate("fit_xla"), rate("loop_xla"), t["fit_overhead_ratio"].get("no_xla"),
                         t["fit_overhead_ratio"].get("xla"), t["xla_speedup_fit"],
                         (r.get("fit") or {}).get("fraction_of_peak")])
        lines.append(common.markdown(["training", "preset", "batch", "n_critic", "recipe XLA", "fit steps/s/core",
                                      "loop steps/s/core", "fit XLA", "loop XLA", "fit overhead",
                                      "fit overhead XLA", "XLA speed-up (fit)", "fit fraction of peak"], rows))
        lines.append("")
    prof = res.get("simulation_profile", {})
    if prof:
        rows = []
        for s, parts in prof.items():
            total = sum(parts.values())
            top = sorted(parts.items(), key=lambda kv: -kv[1])[:3]
            rows.append([s, 1e3 * total] + [f"{k} {v / total:.0%}" for k, v in top])
        lines.append(common.markdown(["simulation profile", "ms/event/core", "slowest", "second", "third"], rows))
        lines.append("")
    fl = res.get("details", {}).get("flows")
    if fl:
        rows = [[r["model"], r["params"], r["events"], r["sample"], r["log_prob"], r["sample_fraction"],
                 r["log_prob_fraction"]] for r in fl]
        lines.append(common.markdown(["flow", "parameters", "events/call", "sample events/s/core",
                                      "log_prob events/s/core", "sample fraction of peak",
                                      "log_prob fraction of peak"], rows))
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short measurements (the whole set in minutes)")
    p.add_argument("--out", help="results JSON")
    p.add_argument("--markdown", help="write the summary table (Markdown) here")
    p.add_argument("--skip", default="", help=f"comma-separated stages to skip, of {STAGES}")
    args = p.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    if skip - set(STAGES):
        p.error(f"unknown stage(s) {sorted(skip - set(STAGES))}; choose from {STAGES}")
    start = time.perf_counter()
    common.quiet_tf()
    m = common.machine()
    peak = common.matmul_peak(min_seconds=2.0 if args.quick else 5.0)
    print(common.header("gan4hep benchmarks" + (" (--quick)" if args.quick else ""), m, peak), flush=True)
    res = {"machine": m, "quick": args.quick, "matmul": peak, "matmul_peak_gflops": peak["gflops_wall"],
           "matmul_peak_gflops_per_core": peak["gflops_per_core"], "generation": {}, "fit_overhead_ratio": {},
           "speedup_vs_simulation": {}, "simulation_profile": {}, "details": {}}

    def say(text):
        print(text, flush=True)

    def save():
        res["seconds"] = time.perf_counter() - start
        res["cpu_seconds"] = time.process_time()
        if args.out:
            common.write_json(res, args.out)

    from benchmarks.paper_models import CASES

    if "generation" not in skip:
        from benchmarks import generation

        say("\n== generation")
        g = generation.run(list(CASES), args.quick, peak, print_fn=say)["generation"]
        res["details"]["generation"] = g
        res["generation"] = {k: {"events_per_s": v["events_per_s"], "batch_size": v["batch_size"],
                                 "fraction_of_peak": v["fraction_of_peak"], "flop_per_event": v["flop_per_event"],
                                 "gflops_per_core": v["gflops_per_core"],
                                 "events_per_s_wall": v["events_per_s_wall"],
                                 "network_fraction_of_peak": v["network"]["fraction_of_peak"],
                                 "xla_network_alone_fraction_of_peak": (v.get("xla_network_alone") or {}).get(
                                     "fraction_of_peak"),
                                 "sample_xla_fraction_of_peak": v.get("sample_xla_fraction_of_peak")}
                             for k, v in g.items()}
        save()
    if "simulation" not in skip:
        from benchmarks import simulation

        say("\n== simulation (Pythia + response) and speed-up")
        s = simulation.run(list(simulation.SAMPLES), args.quick, generation=res["details"].get("generation"),
                           print_fn=say)
        res["details"]["simulation"] = s
        res["simulation_profile"] = s["simulation_profile"]
        res["speedup_vs_simulation"] = s.get("speedup_vs_simulation", {})
        save()
    if "training" not in skip:
        from benchmarks import training

        say("\n== training: fit against a minimal loop")
        t = training.run(list(CASES), args.quick, peak, print_fn=say)
        res["details"]["training"] = t
        res["fit_overhead_ratio"] = t["fit_overhead_ratio"]
        save()
    if "flows" not in skip:
        from benchmarks import flows

        say("\n== flows: sample and log_prob")
        res["details"]["flows"] = flows.run(["small"] if args.quick else list(flows.MODELS), args.quick, peak,
                                            print_fn=say)
        save()
    # the reference again at the end: if the machine's load changed during the run, the ratios above say so
    res["matmul_end"] = common.matmul_peak(min_seconds=2.0 if args.quick else 5.0)
    save()
    table = summary_table(res)
    say("\n== summary\n" + table)
    if args.markdown:
        from pathlib import Path

        from gan4hep.io import atomic_path

        with atomic_path(args.markdown) as tmp:
            Path(tmp).write_text(table)


if __name__ == "__main__":
    main()
