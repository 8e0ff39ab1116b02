"""Produce the shipped FlashSim quick-preset flow (``gan4hep generate --pretrained vaselli:flow``) from quick-preset
runs.

    python -m papers.vaselli.pretrained --run runs/vaselli_quick_s1 \\
        --spread runs/vaselli_quick_s2 runs/vaselli_quick_s3          # ship an existing run (what we did)
    python -m papers.vaselli.pretrained --seed 1                        # train the quick preset first, then ship

Writes ``gan4hep/pretrained_models/vaselli/flow/``: ``model.keras`` (the run's exported flow, the checkpoint with the
lowest validation NLL, with its fitted target and conditioning preprocessing: it emits the 15 jet targets in
physical units for a generator jet's 14 conditioning values), ``context.parquet`` (``CONTEXT_ROWS`` generator jets of
the run's own held-out test jets: the 14 conditioning columns), ``card.json`` and ``MODEL_CARD.md``. Everything on
the card is read from the run folders (recipe.json, results.json, metrics.json, sample.json) or measured here.

The shipped sampler's output is the flow's output *before* ``papers.vaselli.data.postprocess`` (Vaselli 2022 [FS
generation/nbd_func.py] post-processes too): bounded targets may lie up to ~0.02 outside [0, 1], the area is not
snapped to its grid, the energy fractions do not sum exactly to 1. The card's derived columns ``pt`` = pt_ratio x
gen_pt and ``mass`` = mass_ratio x gen_mass (at least 0) are FlashSim's reconstructed pT and mass (GeV); eta = gen_eta
+ eta_minus_gen and phi are sums, which a card cannot derive yet.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np
import pandas as pd

from gan4hep import pretrained, summary
from gan4hep.io import atomic_path, markdown_table, read_table
from gan4hep.runs import Run
from papers.vaselli import data

__all__ = ["TARGET", "CONTEXT_ROWS", "context_table", "spread", "build_card", "model_card", "ship", "main"]

#: Where the shipped model goes (package data of gan4hep).
TARGET = pretrained.ROOT / "vaselli" / "flow"

#: Generator jets (rows of the run's test jets) in the shipped context table.
CONTEXT_ROWS = 5000

#: Derived columns (FlashSim's postprocessing of pT and mass [FS generation/nbd_func.py]).
DERIVED = [{"name": "pt", "product": ["pt_ratio", "gen_pt"], "min": 0.0},
           {"name": "mass", "product": ["mass_ratio", "gen_mass"], "min": 0.0}]

UNITS = {"mu1_dr": "1", "mu1_pt": "GeV", "mu1_deta": "1", "mu1_dphi": "rad", "mu2_dr": "1", "mu2_pt": "GeV",
         "mu2_deta": "1", "mu2_dphi": "rad", "gen_eta": "1", "gen_mass": "GeV", "gen_phi": "rad", "gen_pt": "GeV",
         "parton_flavour": "PDG code (0: none)", "hadron_flavour": "0, 4 or 5",
         "area": "1 (eta-phi area)", "btag": "1 (our b-tag discriminant)", "ctag": "1 (our c-tag discriminant)",
         "eta_minus_gen": "1", "mass_ratio": "1", "n_constituents": "1", "phi_minus_gen": "rad", "pt_ratio": "1",
         "qgl": "1 (our quark/gluon likelihood)", "mu_ef": "1", "ch_had_ef": "1", "ne_had_ef": "1", "ch_em_ef": "1",
         "ne_em_ef": "1", "jet_id": "0, 2 or 6", "pt": "GeV", "mass": "GeV"}

#: The reference table: events and seed of the model's own output (contexts resampled from the shipped table), and
#: the fresh draw of ``TEST_EVENTS`` with another seed the test compares with it, tolerances in reference standard
#: deviations. Measured on the shipped flow (6 draws of 60,000 events, seeds 7-12, against the 200,000-event
#: reference): the largest quantile deviation was 0.19 std (mass_ratio q01, in the sparse low tail below q05), the
#: largest mean deviation 0.013 std; a flip of one constituent in the integer n_constituents is 0.14 std, and the
#: jetId quantiles sit > 1.8 % of jets away from a flip (P(jetId = 0) = 3.6 %, P(jetId <= 2) = 6.8 %). Hence 0.25
#: (quantiles) and 0.05 (means, ~13 standard errors). 60,000 jets take ~6 s on one shared core (~10,000 jets/s).
REFERENCE_EVENTS, REFERENCE_SEED, TEST_EVENTS, TEST_SEED = 200_000, 20231130, 60_000, 7
TOLERANCE = {"mean": 0.05, "quantile": 0.25}

MUST_NOT = """- Not CMS and not a detector simulation: it imitates our own FlashSim-style jets (data_prep.flashsim_jets:
  Pythia 8 ttbar, MPI on, no pile-up, anti-kt R = 0.4 generator jets with pT > 15 GeV and |eta| < 2.5, and *our*
  simple parametric response). The b/c-tag discriminants, qgl and jetId are our stand-ins, not DeepJet, CMVA or the
  CMS quark/gluon likelihood: never apply CMS working points or scale factors to them.
- Only for generator jets like those it was trained on (ttbar jets, pT {pt_lo:.0f}-{pt_hi:.0f} GeV in the shipped
  table, |eta| < 2.5, muon conditioning as data_prep.flashsim_jets computes it: no muon within dR < 0.4 -> dR = 0.5,
  pT = 0, dEta = dPhi = 0.5). Other processes, pile-up or |eta| > 2.5 are extrapolation; nothing stops it.
- Not for precision: the quick preset ({n_train:,} training jets, {epochs} epochs, a 744k-parameter flow instead of
  the paper's 48M); read the fidelity table and its spread over seeds above first. The output is before FlashSim's
  postprocessing (bounded targets up to ~0.02 outside [0, 1], area not on its grid, jetId and constituent count
  already integers): apply papers.vaselli.data.postprocess if you need reconstruction-like values.
- The shipped context table is a convenience (held-out test jets of one seed), not a physics sample: pass your own
  generator jets as the context.
- Not as evidence for or against the paper's statements: see papers/vaselli/README.md."""


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def context_table(run: Run, seed: int, rows: int = CONTEXT_ROWS) -> pd.DataFrame:
    """``rows`` generator jets of the run's held-out test jets (drawn without replacement with
    ``numpy.random.default_rng([seed, 23])``, kept in file order): the 14 conditioning columns as float64.

    Raises:
        FileNotFoundError: the run has no test_jets.parquet.
    """
    test = read_table(run / data.TEST)
    pick = np.sort(np.random.default_rng([seed, 23]).choice(len(test), size=min(rows, len(test)), replace=False))
    return test.iloc[pick][list(data.CONDITIONING)].astype(np.float64).reset_index(drop=True)


def _stat(values: list[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else None, "values": v.tolist()}


def spread(runs: list[Path]) -> dict:
    """Mean and standard deviation over runs (seeds) of each run's metrics.json: W1 / std per target, the
    classifier AUC, the b vs udsg ROC AUC (flow and full chain) and the worst continuous W1 / std."""
    metrics = [_read(Path(p) / "metrics.json") for p in runs]
    names = list(metrics[0]["targets"])
    return {"runs": [str(p) for p in runs], "n_runs": len(runs),
            "wasserstein_over_std": {t: _stat([m["targets"][t]["wasserstein_over_std"] for m in metrics])
                                     for t in names},
            "classifier_auc": _stat([m["classifier_auc"] for m in metrics]),
            "btag_roc_auc_flow": _stat([m["btag_roc_auc"]["flow"] for m in metrics]),
            "btag_roc_auc_full_chain": _stat([m["btag_roc_auc"]["full_chain"] for m in metrics]),
            "max_wasserstein_over_std_continuous": _stat([m["max_wasserstein_over_std_continuous"]
                                                          for m in metrics])}


def build_card(run: Run, context: pd.DataFrame, seconds: tuple[float, float], reference: dict,
               runs: list[Path]) -> dict:
    """The card of the shipped flow, read from the run folder (recipe, results, metrics, sample) plus the
    generation speed, the context table's summary and the reference table measured here; ``runs``: the runs (seeds)
    whose spread the card quotes (``run`` first).

    Raises:
        FileNotFoundError: the run is not trained and evaluated (names the missing file).
    """
    run.require("metrics.json", "results.json", data.SAMPLE, Run.MODEL,
                hint="run papers/vaselli/train.py (training and evaluation) first")
    recipe = run.recipe()
    results, metrics, info = _read(run / "results.json"), _read(run / "metrics.json"), data.load_info(run)
    table = [{"target": t, **{k: v for k, v in m.items()}} for t, m in metrics["targets"].items()]
    roc = metrics["btag_roc"]
    return {
        "name": "vaselli:flow",
        "paper": "Vaselli (2022), FlashSim: a normalising flow for the reconstruction of jets (papers/vaselli)",
        "model": f"FlashSim's jet flow (nflows layout: {recipe['reading']} reading, RQ-spline couplings with "
                 f"ResidualNet conditioners) at quick-preset size: hidden {recipe['hidden_features']}, "
                 f"{recipe['num_blocks']} blocks, {recipe['bins']} bins, tail bound {recipe['tail_bound']}, "
                 f"{results.get('run_parameters'):,} parameters",
        "features": list(info["targets"]),
        "context": {"columns": list(data.CONDITIONING), "file": "context.parquet", "rows": len(context),
                    "description": "generator jets of the run's held-out test jets (ttbar, pT > 15 GeV, |eta| < 2.5), "
                                   "drawn without replacement; resampled with replacement when generate() gets no "
                                   "context",
                    "range": {c: [float(context[c].min()), float(context[c].max())] for c in data.CONDITIONING}},
        "derived": DERIVED,
        "postprocessed": False,
        "units": UNITS,
        "preset": "quick",
        "seed": recipe["seed"],
        "recipe": recipe,
        "data": {"sample": "data_prep.flashsim_jets: Pythia 8 ttbar (MPI on, no pile-up), anti-kt R = 0.4 generator "
                           "jets matched to reconstructed jets of our parametric response (not CMS)",
                 "pythia_events": recipe["events"], "jets": {k: info.get(k) for k in ("n_train", "n_val", "n_test")},
                 "split": "by event: 70 % training, 10 % validation (checkpoint), 20 % test (every number below)"},
        "training": {"selected_step": results.get("selected_step"), "trained_steps": results.get("trained_steps"),
                     "epochs": recipe["epochs"], "select_by": "validation negative log-likelihood",
                     "train_minutes": round((results.get("train_seconds") or 0) / 60, 2),
                     "machine": "vm: 2 shared x86_64 cores, no GPU", "date": metrics.get("date"),
                     "command": f"python papers/vaselli/train.py --preset quick --seed {recipe['seed']} "
                                f"--out {run.path}"},
        "fidelity": {"runs": len(runs),
                     "note": f"this run (seed {recipe['seed']}), and the spread over {len(runs)} run(s) below",
                     "sample": f"{info.get('n_test'):,} test jets, one flow jet per generator jet, postprocessed "
                               "(papers/vaselli/evaluate.py): W1 / std per target, classifier AUC (0.5 = "
                               "indistinguishable), b vs udsg ROC AUC of btag",
                     "table": table,
                     "classifier_auc": metrics["classifier_auc"],
                     "max_wasserstein_over_std_continuous": metrics["max_wasserstein_over_std_continuous"],
                     "worst_continuous_target": metrics["worst_continuous_target"],
                     "classifier_auc_uncertainty": metrics["classifier_auc_uncertainty"],
                     "btag_roc_auc": {k: roc[k] for k in ("flow", "full_chain", "flow_uncertainty",
                                                          "full_chain_uncertainty")},
                     "spread": spread(runs)},
        "support": {},  # unbounded output (before postprocessing)
        "generation": pretrained.generation_record(
            seconds, f"papers/vaselli/pretrained.py on {datetime.date.today().isoformat()}"),
        "sha256": pretrained.sha256(run / Run.MODEL),
        "reference": reference,
    }


def model_card(card: dict) -> str:
    """MODEL_CARD.md from the card."""
    fid, tr, ctx, ref, spr = card["fidelity"], card["training"], card["context"], card["reference"], \
        card["fidelity"]["spread"]
    rows = [{"target": r["target"], "W1 / std (this run)": f"{r['wasserstein_over_std']:.4f}",
             f"W1 / std ({spr['n_runs']} runs)": summary.mean_spread(spr["wasserstein_over_std"][r["target"]],
                                                                     ".4f"),
             "continuous": r["continuous"]} for r in fid["table"]]
    overall = [{"quantity": "classifier AUC", "this run": f"{fid['classifier_auc']:.4f} +- "
                                                         f"{fid['classifier_auc_uncertainty']:.4f}",
                f"{spr['n_runs']} runs": summary.mean_spread(spr["classifier_auc"], ".4f")},
               {"quantity": "b vs udsg ROC AUC, flow", "this run": f"{fid['btag_roc_auc']['flow']:.4f}",
                f"{spr['n_runs']} runs": summary.mean_spread(spr["btag_roc_auc_flow"], ".4f")},
               {"quantity": "b vs udsg ROC AUC, full chain", "this run": f"{fid['btag_roc_auc']['full_chain']:.4f}",
                f"{spr['n_runs']} runs": summary.mean_spread(spr["btag_roc_auc_full_chain"], ".4f")},
               {"quantity": "worst continuous W1 / std",
                "this run": f"{fid['max_wasserstein_over_std_continuous']:.4f} ({fid['worst_continuous_target']})",
                f"{spr['n_runs']} runs": summary.mean_spread(spr["max_wasserstein_over_std_continuous"], ".4f")}]
    rng = ctx["range"]
    lines = [
        f"# Model card: {card['name']}", "",
        f"{card['model']}, trained with our **quick** preset on our FlashSim-style jets (papers/vaselli): for a "
        f"generator jet's 14 conditioning values it generates the 15 reconstructed-jet targets "
        f"({', '.join(card['features'])}); the columns `pt` = pt_ratio x gen_pt and `mass` = mass_ratio x gen_mass "
        "(at least 0) are the reconstructed pT and mass in GeV. The output is the flow's, before FlashSim's "
        "postprocessing (see below).", "",
        "```bash",
        f"gan4hep generate --pretrained {card['name']} --context my_genjets.parquet --out jets.parquet  # your jets",
        f"gan4hep generate --pretrained {card['name']} --events 100000 --out jets.parquet  # shipped contexts",
        "```", "",
        "## Context", "",
        f"Columns {', '.join(ctx['columns'])} (momenta and masses in GeV, flavours as PDG / hadron codes). Shipped: "
        f"`{ctx['file']}`, {ctx['rows']:,} {ctx['description']}. Range of the shipped jets: gen_pt "
        f"{rng['gen_pt'][0]:.0f}-{rng['gen_pt'][1]:.0f} GeV, gen_eta {rng['gen_eta'][0]:.2f} to "
        f"{rng['gen_eta'][1]:.2f}.", "",
        "## Data and training", "",
        f"- Data: {card['data']['sample']}; {card['data']['pythia_events']:,} ttbar events; "
        + ", ".join(f"{v:,} {k[2:]}" for k, v in card["data"]["jets"].items())
        + f" jets; split {card['data']['split']}.",
        f"- Seed {card['seed']} (sample, split, weights, noise); step {tr['selected_step']} of {tr['trained_steps']} "
        f"({tr['epochs']} epochs) selected by the {tr['select_by']}; {tr['train_minutes']} min of training on "
        f"{tr['machine']} ({tr['date']}).",
        f"- Made by `python -m papers.vaselli.pretrained --run {spr['runs'][0]} --spread "
        f"{' '.join(spr['runs'][1:])}` (run: `{tr['command']}`).",
        f"- Generation: {card['generation']['seconds_per_million_events']} s wall-clock, "
        f"{card['generation']['cpu_seconds_per_million_events']} s CPU per million jets "
        f"({card['generation']['machine']}).", "",
        f"## Fidelity: {fid['note']}", "",
        f"{fid['sample']}. Mean +- standard deviation over {spr['n_runs']} runs ({', '.join(spr['runs'])}):", "",
        markdown_table(pd.DataFrame(rows)).rstrip(), "",
        markdown_table(pd.DataFrame(overall)).rstrip(), "",
        *pretrained.reference_section(
            card, f" for {ref['events']:,} shipped contexts resampled with seed {ref['seed']}"),
        "## What it must not be used for", "",
        MUST_NOT.format(pt_lo=rng["gen_pt"][0], pt_hi=rng["gen_pt"][1], n_train=card["data"]["jets"]["n_train"],
                        epochs=tr["epochs"]), "",
    ]
    return "\n".join(lines)


def ship(run_path: Path, spread_runs: list[Path] = (), target: Path = TARGET) -> Path:
    """Copy the run's exported flow into ``target`` with its context table and card; returns that folder.

    Args:
        run_path: a finished papers/vaselli/train.py run (quick preset, trained and evaluated).
        spread_runs: further runs of the same recipe (other seeds) for the card's spread over runs.

    Raises:
        FileNotFoundError: the run is not trained and evaluated.
        ValueError: a spread run has another recipe than ``run_path`` (other than its seed).
    """
    run = Run(run_path)
    recipe = run.recipe()
    for other in spread_runs:
        theirs = Run(other).recipe()
        differ = sorted(k for k in set(recipe) | set(theirs) if k != "seed" and recipe.get(k) != theirs.get(k))
        if differ:
            raise ValueError(f"{other}: recipe differs from {run.path} in {', '.join(differ)}")
    if not (run / Run.MODEL).exists():
        raise FileNotFoundError(f"{run.path}: no {Run.MODEL}; run papers/vaselli/train.py first")
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    context = context_table(run, seed=recipe["seed"])
    with atomic_path(out / "context.parquet") as tmp:
        context.to_parquet(tmp, index=False)
    card0 = {"features": list(data.load_info(run)["targets"]),
             "context": {"columns": list(data.CONDITIONING), "file": "context.parquet"}, "derived": DERIVED}
    staging = pretrained.Pretrained("vaselli:flow", out, card0)
    sampler = pretrained.Pretrained(staging.name, run.path, card0).load()
    columns = card0["features"] + [d["name"] for d in DERIVED]
    _, reference, seconds = pretrained.measure_reference(staging, sampler, REFERENCE_EVENTS, REFERENCE_SEED,
                                                         TEST_EVENTS, TEST_SEED, TOLERANCE, columns)
    card = build_card(run, context, seconds, reference, [run.path, *map(Path, spread_runs)])
    return pretrained.write_shipped(out, run / Run.MODEL, card, model_card(card))


def main(argv: list[str] | None = None) -> None:
    """Train the quick preset (unless given a run), then ship its flow with its card."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="a finished papers/vaselli/train.py quick run to ship")
    p.add_argument("--spread", type=Path, nargs="*", default=[], help="further runs (other seeds) for the spread")
    p.add_argument("--seed", type=int, default=1, help="seed of the run trained without --run")
    p.add_argument("--target", type=Path, default=TARGET, help="where to write the shipped model")
    args = p.parse_args(argv)
    run = args.run
    if run is None:
        from papers.vaselli import train

        run = Path("runs") / f"vaselli_pretrained_s{args.seed}"
        train.main(["--preset", "quick", "--seed", str(args.seed), "--out", str(run)])
    try:
        out = ship(run, args.spread, args.target)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    print(pretrained.shipped_line(run, out, "jets"))


if __name__ == "__main__":
    main()
