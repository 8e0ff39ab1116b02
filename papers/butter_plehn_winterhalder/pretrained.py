"""Produce the shipped Butter, Plehn & Winterhalder generators (``gan4hep generate --pretrained
butter_plehn_winterhalder[:gan|:flow]``) from quick-preset runs.

    python -m papers.butter_plehn_winterhalder.pretrained          # train what is missing (seed 0), then ship both
    python -m papers.butter_plehn_winterhalder.pretrained --gan-run runs/bpw_gan_quick_s0 \\
        --flow-run runs/bpw_flow_quick_s0 --flow-spread runs/bpw_flow_quick_s1 runs/bpw_flow_quick_s2

Trains ``train.py --preset quick [--model flow] --seed 0 --out runs/bpw_{gan,flow}_quick_s0`` for a kind whose run
is not given (or not finished), then writes ``gan4hep/pretrained_models/butter_plehn_winterhalder/{gan,flow}/``:
``model.keras`` (the run's exported sampler: (n, 24) four-vectors in GeV), ``card.json`` (data, seed, preset,
training time, the run's fidelity numbers, the spread over the ``--*-spread`` runs, the support, the SHA-256, and
the reference table of the model's own output that the tests check) and ``MODEL_CARD.md``. Everything on the card
is read from the run folders or measured here.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np
import pandas as pd

from gan4hep import pretrained, summary
from gan4hep.io import markdown_table
from gan4hep.runs import Run

from papers.butter_plehn_winterhalder import observables as obs
from papers.butter_plehn_winterhalder.model import COLUMNS

PAPER_NAME = "butter_plehn_winterhalder"
ROOT = pretrained.ROOT / PAPER_NAME
KINDS = ("gan", "flow")

#: Reference table: events and seed of the model's own output, and the draw the test compares with it, with the
#: tolerances in reference standard deviations. The 1 % / 99 % quantiles of the long-tailed p_z and E are the
#: noisiest numbers: between draws of 1e5 and 2e5 flow events they differed by up to 0.093 std (measured
#: 2026-11-30; 0.16 std with 2e4 events, so the lebese_ruan tolerance of 0.1 std for 2e4 events would fail a sound
#: model here), i.e. a standard error of ~0.04 std; 0.2 std is ~5 standard errors.
REFERENCE_EVENTS, REFERENCE_SEED, TEST_EVENTS, TEST_SEED = 200_000, 20231130, 100_000, 7
#: The quick-preset GAN is mode-collapsed (standard deviations of 3-30 GeV instead of ~50-200) and multi-modal, so
#: its quantiles in units of its own tiny std are noisier: up to 0.20 std between draws of 1e5 events (seeds 7, 8,
#: 9 against the reference, measured 2026-11-30); 0.5 std (a few GeV) still fails a changed or broken model.
TOLERANCE = {"gan": {"mean": 0.05, "quantile": 0.5}, "flow": {"mean": 0.05, "quantile": 0.2}}
#: Tolerance of the W / top peak check of tests/test_pretrained_bpw.py: the fraction of candidates within 5 GeV of
#: the pole in a fresh draw may differ from the card's by this much (binomial error for 2e5 candidates: 0.001).
PEAK_FRACTION_TOLERANCE = 0.02

#: The support written on the card: the kinematic limit of 13 TeV collisions (a parton carries at most half the
#: beam energies, 6.5 TeV). It is NOT a hard edge of the models (see ``SUPPORT_NOTE``).
BEAM_GEV = 6500.0
SUPPORT_NOTE = ("The momenta are unbounded: neither the GAN's linear output layer nor the flow's linear spline tails "
                "have a hard edge, so the support given is the kinematic limit of 13 TeV collisions (|p_x|, |p_y|, "
                "|p_z| <= 6.5 TeV, 0 <= E <= 6.5 TeV), not the range of the training data; gan4hep.pretrained's "
                "outside_support (written for bounded features, range of the training data plus 1e-5 slack) needs "
                "an 'unbounded' entry (e.g. null bounds) to express this exactly.")

MUST_NOT = """- Not a physics measurement and not the paper's generator: it reproduces *our* parton-level sample
  (Pythia 8 LO ttbar -> 6 quarks, hard process only, no ISR: the ttbar pT is 0), not the paper's MadGraph sample.
- Not for anything beyond the hard process: no showers, no detector; for a full event feed the LHE output of
  `train.py`/`evaluate.py` to Pythia (README).
- Not for precision or for tails: the quick preset ({steps} steps, {n_train:,} training events); check the fidelity
  numbers above (classifier AUC, bulk deviation, peak widths) against your tolerance first.
{extra}"""
MUST_NOT_EXTRA = {
    "gan": "- Not as an event generator for the bulk: the quick-preset GAN is mode-collapsed away from the mass peaks "
           "(classifier AUC 1.0, quark energies a third of the truth); it shows what the MMD does to the W and top "
           "peaks and nothing more. Use the flow (`butter_plehn_winterhalder:flow`) for events.",
    "flow": "- Not as evidence for the paper: the flow is our comparison model (issue 20), not in the paper.",
}


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _summary(metrics: dict) -> dict:
    """The headline numbers of one run's metrics.json."""
    fits = metrics["mass_peaks"]
    label = next(k for k in fits if k != "Truth")
    out = {"bulk_mean_abs_dev": metrics["bulk_mean_abs_dev_all_observables"],
           "bulk_truth_floor": metrics["bulk_mean_abs_dev_truth_halves"],
           "classifier_auc": metrics["fidelity"]["classifier_auc"],
           "classifier_auc_uncertainty": metrics["fidelity"]["classifier_auc_uncertainty"]}
    for res in ("W", "top"):
        g, t = fits[label][res], fits["Truth"][res]
        out[f"{res}_position"], out[f"{res}_width"] = g["position"], g["width"]
        out[f"{res}_width_truth"], out[f"{res}_within_5GeV"] = t["width"], g["fraction_within_5GeV"]
        out[f"{res}_width_ratio"] = g["width"] / t["width"]
    return out


def spread(runs: list[Path]) -> dict:
    """Mean, standard deviation (ddof 1), min and max over the runs of each headline number, and the runs."""
    rows = pd.DataFrame([_summary(_read(Path(r) / "metrics.json")) for r in runs])
    table = {c: {"mean": float(rows[c].mean()), "std": float(rows[c].std(ddof=1)) if len(rows) > 1 else None,
                 "min": float(rows[c].min()), "max": float(rows[c].max())} for c in rows.columns}
    return {"runs": [str(r) for r in runs], "n_runs": len(runs), "statistics": table}


def build_card(kind: str, run: Run, seconds: tuple[float, float], reference: dict, peaks: dict,
               spread_runs: list[Path], extremes: dict) -> dict:
    """The card of the run's model, read from the run folder plus what ``ship`` measured.

    Raises:
        FileNotFoundError: the run has no model.keras or no metrics.json (not trained or not evaluated).
    """
    run.require(Run.MODEL, "metrics.json", "fidelity.csv")
    recipe, results, metrics = run.recipe(), run.results(), _read(run / "metrics.json")
    flow = kind == "flow"
    command = (f"python papers/butter_plehn_winterhalder/train.py --preset quick{' --model flow' if flow else ''} "
               f"--seed {recipe['seed']} --out {run.path}")
    runs = [run.path, *[Path(r) for r in spread_runs]]
    return {
        "name": f"{PAPER_NAME}:{kind}",
        "paper": "Butter, Plehn & Winterhalder (2019), How to GAN LHC events, arXiv:1907.03764 "
                 "(papers/butter_plehn_winterhalder)" + ("; the flow is ours (issue 20), not in the paper" if flow
                                                          else ""),
        "features": list(COLUMNS),
        "units": {c: "GeV" for c in COLUMNS},
        "preset": "quick",
        "model": kind,
        "seed": recipe["seed"],
        "recipe": recipe,
        "data": {"sample": "data_prep.ttbar_partons: Pythia 8 pp -> ttbar -> (b q q')(b~ q q') at 13 TeV, hard "
                           "process only (Breit-Wigner t and W line shapes, light quarks massless, b 4.7 GeV)",
                 "pythia_seed": recipe["sample_seed"], "train_events": recipe["train_events"],
                 "validation_events": results.get("n_validation"), "test_events": recipe["test_events"],
                 "columns": "p{i}_px, p{i}_py, p{i}_pz, p{i}_E, i = 0..5: q, q', b of the top, then of the anti-top"},
        "training": {"steps": results.get("trained_steps"), "selected_step": results.get("selected_step"),
                     "select_by": "peak_distance on the validation part (W/top masses)",
                     "train_minutes": round(results["train_seconds"] / 60, 1),
                     "machine": "vm: 2 shared x86_64 cores, no GPU", "date": datetime.date.today().isoformat(),
                     "command": command},
        "fidelity": {"sample": f"test sample ({recipe['test_events']} events, never seen in training or selection) "
                               f"vs {metrics.get('n_generated')} generated events",
                     "this_run": _summary(metrics),
                     "spread_over_runs": spread(runs) if len(runs) > 1 else None,
                     "note": (f"spread over {len(runs)} runs (seeds) of the same preset" if len(runs) > 1
                              else "one run (one seed): no spread over runs"),
                     "table": pd.read_csv(run / "fidelity.csv").to_dict(orient="records"),
                     "mass_peaks": metrics["mass_peaks"]},
        "support": {c: [0.0 if c.endswith("_E") else -BEAM_GEV, BEAM_GEV] for c in COLUMNS},
        "support_note": SUPPORT_NOTE,
        "largest_abs_value_in_reference_draw": extremes,
        "generation": pretrained.generation_record(seconds, "papers/butter_plehn_winterhalder/pretrained.py"),
        "sha256": pretrained.sha256(run / Run.MODEL),
        "reference": reference,
        "peaks": peaks,
    }


def model_card(card: dict) -> str:
    """MODEL_CARD.md from the card."""
    kind, fid, tr, data = card["model"], card["fidelity"], card["training"], card["data"]
    this = fid["this_run"]
    ref = card["reference"]
    headline = pd.DataFrame({"this run": {k: this[k] for k in this}})
    if fid["spread_over_runs"]:
        headline[f"mean +- std over {fid['spread_over_runs']['n_runs']} runs"] = {
            k: summary.mean_spread(v, ".3f") for k, v in fid["spread_over_runs"]["statistics"].items()}
    what = ("the GAN of Butter, Plehn & Winterhalder (10 x 512 generator, on-shell layer, MMD on the W and top "
            "masses)" if kind == "gan" else
            "our normalising flow (issue 20, not in the paper): a rational-quadratic spline coupling flow on 16 "
            "decay coordinates, rebuilt into four-vectors by the core's `TTbarDecayChain` and `OnShell` layers")
    name = card["name"]
    lines = [
        f"# Model card: {name}", "",
        f"{what[0].upper()}{what[1:]}, trained with our **quick** preset; it emits the 24 four-vector components of the six quarks of "
        "pp -> ttbar -> (b q q')(b~ q q') in GeV (columns p{i}_px, p{i}_py, p{i}_pz, p{i}_E, i = 0..5: q, q', b "
        "of the top, then of the anti-top).", "",
        "```bash",
        f"gan4hep generate --pretrained {name if kind == 'flow' else PAPER_NAME} --events 100000 --out ttbar.parquet",
        "```", "",
        "## Data and training", "",
        f"- Data: {data['sample']}; Pythia seed {data['pythia_seed']}; {data['train_events']:,} training events "
        f"(of which {data['validation_events']:,} validation for the checkpoint selection), {data['test_events']:,} "
        "test events.",
        f"- Seed {card['seed']} (split, weights, noise); preset quick; {tr['steps']} steps in {tr['train_minutes']} "
        f"min on {tr['machine']} ({tr['date']}); checkpoint of step {tr['selected_step']} selected by the "
        f"{tr['select_by']}.",
        f"- Made by `python -m papers.butter_plehn_winterhalder.pretrained` (training command: `{tr['command']}`).",
        f"- Generation: {card['generation']['seconds_per_million_events']} s wall-clock, "
        f"{card['generation']['cpu_seconds_per_million_events']} s CPU per million events "
        f"({card['generation']['machine']}).", "",
        f"## Fidelity ({fid['note']})", "",
        f"{fid['sample']}. Peaks: Breit-Wigner fits (position, FWHM in GeV) pooled over both W (top) candidates; "
        "bulk: mean bin-wise |model/truth - 1| over 44 observables (truth vs truth floor beside it); classifier "
        "AUC of a boosted-tree two-sample test on the 24 components and the 4 masses (0.5: indistinguishable).", "",
        markdown_table(headline, index=True).rstrip(), "",
        "## Support", "",
        card["support_note"], "",
        *pretrained.reference_section(
            card, f", {ref['events']:,} events with seed {ref['seed']}",
            also=f", the fractions of W / top candidates within 5 GeV of the pole "
                 f"({card['peaks']['W_within_5GeV']:.4f} / {card['peaks']['top_within_5GeV']:.4f} in the reference "
                 f"draw) within {card['peaks']['tolerance']}",
            checked_by="tests/test_pretrained.py and tests/test_pretrained_bpw.py"),
        "## What it must not be used for", "",
        MUST_NOT.format(steps=tr["steps"], n_train=data["train_events"], extra=MUST_NOT_EXTRA[kind]), "",
    ]
    return "\n".join(lines)


def ship(kind: str, run_path: Path, spread_runs: list[Path] = (), target: Path | None = None) -> Path:
    """Copy the run's model into ``target`` (default ``ROOT / kind``) with its card; returns ``target``.

    Raises:
        FileNotFoundError: the run is not trained and evaluated.
    """
    target = Path(target) if target is not None else ROOT / kind
    run = Run(run_path)
    if not (run / Run.MODEL).exists():
        raise FileNotFoundError(f"{run.path}: no {Run.MODEL}; train the run first")
    item = pretrained.Pretrained(f"{PAPER_NAME}:{kind}", run.path, {"features": list(COLUMNS)})
    ref_events, reference, seconds = pretrained.measure_reference(
        item, item.load(), REFERENCE_EVENTS, REFERENCE_SEED, TEST_EVENTS, TEST_SEED, TOLERANCE[kind], list(COLUMNS))
    fractions = obs.peak_fractions(obs.masses(ref_events.to_numpy()))
    peaks = {"W_within_5GeV": fractions["W_within_5GeV"], "top_within_5GeV": fractions["top_within_5GeV"],
             "tolerance": PEAK_FRACTION_TOLERANCE}
    extremes = {c: float(np.abs(ref_events[c]).max()) for c in COLUMNS}
    card = build_card(kind, run, seconds, reference, peaks, list(spread_runs), extremes)
    return pretrained.write_shipped(target, run / Run.MODEL, card, model_card(card))


def main(argv: list[str] | None = None) -> None:
    """Train the quick presets that are not given (seed ``--seed``), then ship both models with their cards."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gan-run", type=Path, help="a trained and evaluated quick-preset GAN run (default: train one)")
    p.add_argument("--flow-run", type=Path, help="a trained and evaluated quick-preset flow run (default: train one)")
    p.add_argument("--gan-spread", type=Path, nargs="*", default=[], help="further GAN runs (other seeds) whose "
                   "numbers give the spread on the card")
    p.add_argument("--flow-spread", type=Path, nargs="*", default=[], help="further flow runs (other seeds)")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="which models to ship")
    p.add_argument("--seed", type=int, default=0, help="seed of the training runs made here")
    args = p.parse_args(argv)
    from papers.butter_plehn_winterhalder import train

    for kind in args.kinds:
        run = getattr(args, f"{kind}_run")
        if run is None:
            run = Path("runs") / f"bpw_{kind}_quick_s{args.seed}"
            if not (run / "metrics.json").exists():
                train.main(["--preset", "quick", "--model", kind, "--seed", str(args.seed), "--out", str(run)])
        try:
            target = ship(kind, run, getattr(args, f"{kind}_spread"))
        except FileNotFoundError as err:
            raise SystemExit(f"error: {err}") from None
        print(pretrained.shipped_line(run, target))


if __name__ == "__main__":
    main()
