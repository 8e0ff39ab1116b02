"""The simulation each generator replaces, measured in the same run: Pythia (+ detector response) events per
core-second, the fraction that passes the selection, a profile of where the time goes, and the speed-up of the
generator per selected event.

Each sample runs one block in this process through ``data_prep.runner.block_job`` (the real chain: Pythia, the
sample's response, the selection, the part files and their hashes) with the paper's settings. Timers are wrapped
around the chain's named steps for the duration of the run (nothing in ``data_prep`` is changed): Pythia
initialisation, Pythia's event generation (``next`` / ``nextBatch``; for the dilepton sample without the Wt matrix
element, which Pythia calls back into Python for and is timed on its own), the detector-response steps,
clustering, the selection and table building, writing the part files, hashing them. All times are CPU time of
this thread (``time.thread_time``): the chain is single-threaded, so they are per core and robust to other jobs.

Per-event cost = (block CPU time - initialisation) / events + initialisation / (the paper's block size);
selected events per core-second = selected fraction / per-event cost; speed-up = generator events per
core-second (``benchmarks.generation``, best batch) / selected events per core-second.

    python benchmarks/simulation.py --quick
    python benchmarks/simulation.py --samples dilepton --events 500 --no-generators
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import common  # noqa: E402

# sample -> (make_sample settings as the block config, paper block size, events quick / full, generator, paper,
#            what counts as selected)
SAMPLES = {
    "dilepton": ({"mpi": True, "wt": True, "hadronisation": True, "detector": {}}, 2000, (300, 1500),
                 "lebese_ruan", "Lebese & Ruan (MPI on, Wt, ATLAS-like response)", "events passing the selection"),
    "dilepton_quick": ({"mpi": False, "wt": True, "hadronisation": True, "detector": {}}, 2000, (300, 1500),
                       "lebese_ruan", "Lebese & Ruan quick preset (MPI off): the README's main job",
                       "events passing the selection"),
    "ttbar_partons": ({}, 20000, (2000, 20000), "butter_plehn_winterhalder",
                      "Butter, Plehn & Winterhalder (hard process + decays only)", "all events"),
    "qcd_jets": ({"mpi": False, "pthat_min": 120.0, "bias": True}, 5000, (600, 3000), "lin_bhimji_nachman",
                 "Lin, Bhimji & Nachman (trimmed R=1 jets)", "control-region jets (the GAN's training jets)"),
    "flashsim_jets": ({"mpi": True, "pileup": 0.0, "chunk": 100, "detector": {}, "gen": {}}, 500, (100, 500),
                      "flashsim_flow", "FlashSim jets (ttbar, MPI on, particle-level response)", "matched jets"),
}

# sample -> its data_prep module, where it is not the sample's own name
MODULE = {"dilepton_quick": "dilepton"}

# module -> (function, profile part): steps timed inside the chain (nested ones are subtracted from their parent)
STEPS = {
    "dilepton": [("detector_response", "detector response (other)"), ("reconstruct_leptons", "detector: leptons"),
                 ("cluster_jets", "jet clustering (FastJet)"), ("b_tag", "detector: b-tagging"),
                 ("missing_et", "detector: missing ET"), ("process_id", "process id")],
    "ttbar_partons": [("decay_chain", "decay-chain record walk (Python)")],
    "qcd_jets": [("cluster_and_trim", "jet clustering + trimming (FastJet)")],
    "flashsim_jets": [("flatten_events", "particle arrays (flatten)"),
                      ("process_events", "detector response (other)"),
                      ("generator_jets", "generator-jet clustering"), ("cluster_reco_jets", "reco-jet clustering")],
}
PARENT = {"detector: leptons": "detector response (other)", "jet clustering (FastJet)": "detector response (other)",
          "detector: b-tagging": "detector response (other)", "detector: missing ET": "detector response (other)",
          "generator-jet clustering": "detector response (other)",
          "reco-jet clustering": "detector response (other)", "Wt matrix element (Python)": "pythia"}


def _timed(fn, store, key):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with common.stopwatch(store, key):
            return fn(*args, **kwargs)

    return wrapper


class _TimedPythia:
    """A Pythia whose ``init``, ``next`` and ``nextBatch`` are timed; everything else passes through."""

    def __init__(self, pythia, store):
        object.__setattr__(self, "_pythia", pythia)
        object.__setattr__(self, "_store", store)

    def __getattr__(self, name):
        return getattr(self._pythia, name)

    def __setattr__(self, name, value):
        setattr(self._pythia, name, value)

    def init(self):
        with common.stopwatch(self._store, "pythia init"):
            return self._pythia.init()

    def next(self):
        with common.stopwatch(self._store, "pythia"):
            return self._pythia.next()

    def nextBatch(self, *args, **kwargs):  # noqa: N802 - Pythia's name
        with common.stopwatch(self._store, "pythia"):
            return self._pythia.nextBatch(*args, **kwargs)


@contextlib.contextmanager
def _patch(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


@contextlib.contextmanager
def instrumented(sample: str, store: dict):
    """Timers around the chain's steps of ``sample`` while the block runs; all removed on exit."""
    from gan4hep import io

    from data_prep import runner

    module = MODULE.get(sample, sample)
    mod = importlib.import_module(f"data_prep.{module}")
    configured = runner.configured_pythia
    with contextlib.ExitStack() as stack:
        stack.enter_context(_patch(runner, "configured_pythia",
                                   lambda *a, **k: _TimedPythia(configured(*a, **k), store)))
        for fn, key in STEPS[module]:
            stack.enter_context(_patch(mod, fn, _timed(getattr(mod, fn), store, key)))
        stack.enter_context(_patch(mod, "_block_tables", _timed(mod._block_tables, store, "selection + tables")))
        for fn in ("write_root", "write_table"):
            stack.enter_context(_patch(io, fn, _timed(getattr(io, fn), store, "I/O: write part files")))
        for fn in ("table_hash", "_file_hash"):
            stack.enter_context(_patch(runner, fn, _timed(getattr(runner, fn), store, "I/O: hashes")))
        if module == "dilepton" and SAMPLES[sample][0].get("wt"):
            from data_prep import wt_process

            cls = wt_process.SigmaGB2TW
            stack.enter_context(_patch(cls, "sigmaKin", _timed(cls.sigmaKin, store, "Wt matrix element (Python)")))
        yield mod


def split_profile(store: dict, total: float, events: int, paper_block: int) -> dict:
    """The per-event profile of a block from its timers.

    Args:
        store: CPU seconds per timed part (nested parts included in their ``PARENT``'s time), with
            ``"pythia init"``.
        total: CPU seconds of the whole block; events: its events; paper_block: the paper's block size, over which
            the initialisation is amortised.

    Returns:
        ``{"init_s", "s_per_event", "profile"}``: ``s_per_event`` = (total - init) / events + init / paper_block;
        ``profile``: seconds per event of each part, each parent without its children, the untimed rest as
        ``"other (Python glue, awkward)"``, the initialisation amortised over the paper block; the parts sum to
        ``s_per_event``.
    """
    own = dict(store)
    for child, parent in PARENT.items():
        if child in own and parent in own:
            own[parent] -= own[child]
    own["other (Python glue, awkward)"] = total - sum(own.values())
    init = own.pop("pythia init", 0.0)
    cost = common.per_event_cost(init, (total - init) / events, paper_block)
    profile = {"pythia init (over the paper block)": init / paper_block,
               **{k: v / events for k, v in sorted(own.items(), key=lambda kv: -kv[1])}}
    return {"init_s": init, "s_per_event": cost, "profile": profile}


def selected_count(sample: str, features) -> int:
    """Selected events (objects) of a block's feature table: rows, or control-region jets for ``qcd_jets``."""
    if sample == "qcd_jets":
        return int((features["region"] == 1).sum())
    return len(features)


def measure(sample: str, events: int, seed: int = 5) -> dict:
    """Run one block of ``sample`` with its paper settings, instrumented; the per-core cost and its profile."""
    from data_prep import runner

    config, paper_block = SAMPLES[sample][0], SAMPLES[sample][1]
    store: dict = {}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp, instrumented(sample, store) as mod:
        tables = mod._block_tables

        def counting(result):  # keep the selected count of this block
            out = tables(result)
            rows["selected"] = selected_count(sample, out[2])
            return out

        block = runner.make_blocks(events, seed, events)[0]
        job = runner.Sample(MODULE.get(sample, sample), mod._generate_block, counting, mod._summarize)
        parts = Path(tmp) / "parts"
        parts.mkdir()
        w0 = time.perf_counter()
        entry = runner.block_job(job, config, str(parts), block, report=lambda n: None)
        wall = time.perf_counter() - w0
    prof = split_profile(store, entry["cpu_seconds"], events, paper_block)
    fraction = rows["selected"] / events
    cost, init, total, profile = prof["s_per_event"], prof["init_s"], entry["cpu_seconds"], prof["profile"]
    return {"paper": SAMPLES[sample][4], "events": events, "selected": rows["selected"],
            "selected_fraction": fraction, "selected_rel_err": common.counting_error(rows["selected"]), "selected_means": SAMPLES[sample][5], "cpu_s": total, "wall_s": wall,
            "init_s": init, "paper_block": paper_block, "s_per_event": cost,
            "events_per_s": 1.0 / cost, "selected_per_s": fraction / cost if fraction else 0.0,
            "s_per_selected": common.selected_cost(cost, fraction), "profile_s_per_event": profile}


def report(sample: str, r: dict) -> str:
    lines = [f"\n{sample} ({r['paper']}): {r['events']} events in {r['cpu_s']:.1f} CPU s ({r['wall_s']:.1f} s wall), "
             f"Pythia init {r['init_s']:.2f} s (amortised over the paper's blocks of {r['paper_block']}); "
             f"{r['events_per_s']:.3g} events/s per core; {r['selected']} selected ({r['selected_means']}): "
             f"fraction {r['selected_fraction']:.3g} (+-{r['selected_rel_err']:.0%} from the count), "
             f"{r['selected_per_s']:.3g} selected/s per core"]
    cost = r["s_per_event"]
    lines.append(common.markdown(["part", "ms/event", "share"],
                                 [[k, 1e3 * v, v / cost] for k, v in r["profile_s_per_event"].items()]))
    return "\n".join(lines)


def run(samples, quick=True, events=None, generation=None, print_fn=print):
    """Measure ``samples``; with ``generation`` (``benchmarks.generation.run`` output) also the speed-ups."""
    sims = {}
    for s in samples:
        n = events or SAMPLES[s][2][0 if quick else 1]
        sims[s] = measure(s, n)
        print_fn(report(s, sims[s]))
    out = {"simulation": sims,
           "simulation_profile": {s: r["profile_s_per_event"] for s, r in sims.items()}}
    if generation:
        out["speedup_vs_simulation"] = speedups(sims, generation, print_fn)
    return out


def speedups(sims, generation, print_fn=print) -> dict:
    rows, ratios = [], {}
    for s, r in sims.items():
        g = generation.get(SAMPLES[s][3])
        if g is None or not r["selected_per_s"]:
            continue
        ratios[s] = common.speedup(g["events_per_s"], r["selected_per_s"])
        rows.append([s, SAMPLES[s][3], r["selected_per_s"], g["events_per_s"], ratios[s],
                     f"{r['selected_rel_err']:.0%}"])
    print_fn("\nspeed-up per selected event, one core each (CPU time; generator at its best batch):")
    print_fn(common.markdown(["sample", "generator", "simulation selected/s/core", "generator events/s/core",
                              "speed-up", "+- (selected count)"], rows))
    if "qcd_jets" in ratios:
        print_fn("(qcd_jets: the Lin et al. generator only replaces the jet mass given pT, eta, N_track; the jets "
                 "themselves still come from the simulation)")
    return ratios


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short blocks (seconds of CPU each)")
    p.add_argument("--samples", default=",".join(SAMPLES), help=f"comma-separated subset of {list(SAMPLES)}")
    p.add_argument("--events", type=int, help="events per sample (overrides the defaults)")
    p.add_argument("--no-generators", action="store_true", help="skip the generators (no speed-up)")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    samples = [s for s in args.samples.split(",") if s]
    unknown = set(samples) - set(SAMPLES)
    if unknown:
        p.error(f"unknown sample(s) {sorted(unknown)}; choose from {list(SAMPLES)}")
    m = common.machine(with_tf=not args.no_generators)
    print(common.header("simulation: Pythia (+ response) per core, its profile, and the generators' speed-up", m))
    gen = None
    if not args.no_generators:
        from benchmarks import generation

        peak = common.matmul_peak(min_seconds=2.0)
        print(common.peak_line(peak))
        gen = generation.run(list(dict.fromkeys(SAMPLES[s][3] for s in samples)), args.quick, peak)["generation"]
    res = run(samples, args.quick, args.events, gen)
    if args.out:
        common.write_json({"machine": m, **res, "generation": gen}, args.out)


if __name__ == "__main__":
    main()
