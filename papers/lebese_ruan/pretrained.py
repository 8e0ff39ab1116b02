"""Produce the shipped Lebese & Ruan generators (``gan4hep generate --pretrained lebese_ruan[:gan|:flow]``) from
quick-preset runs.

    python -m papers.lebese_ruan.pretrained                                   # train (quick preset, seed 1), then ship
    python -m papers.lebese_ruan.pretrained --run runs/lr_pretrained_s1 --spread runs/lr_gan_quick_s2 runs/lr_gan_quick_s3
    python -m papers.lebese_ruan.pretrained --model flow --run runs/lr_flowu_s1 --spread runs/lr_flowu_s2 runs/lr_flowu_s3

Trains ``python papers/lebese_ruan/train.py --preset quick --seed SEED --out RUN`` unless ``--run`` names a finished
run, then writes ``gan4hep/pretrained_models/lebese_ruan/gan/``: ``model.keras`` (the run's exported generator with
its preprocessing), ``card.json`` (data, seed, preset, training time, the run's Table 1 fidelity numbers, the support
of each feature, the model's SHA-256, and the reference table of its own output that the tests check) and
``MODEL_CARD.md``. ``--spread`` names the other runs of the same preset and model (other seeds): the card then gives
each fidelity number's mean and spread over all of them, on the test MC and, where every run has one, on the fresh
MC sample (``evaluate.py --fresh-seed``). Everything on the card is read from the run folders or measured here;
nothing is typed in.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import pandas as pd

from gan4hep import pretrained, summary
from gan4hep.io import markdown_table
from gan4hep.runs import Run

from papers.lebese_ruan import data, train
from papers.lebese_ruan.model import FEATURES

#: Where each shipped model goes (package data of gan4hep), by model family.
TARGETS = {kind: pretrained.ROOT / "lebese_ruan" / kind for kind in ("gan", "flow")}

#: The fidelity numbers whose spread over runs the card gives.
SPREAD_KEYS = ("worst_relative_mean_difference", "worst_ks", "classifier_auc")

UNITS = {"pt_l0": "GeV", "pt_l1": "GeV", "pt_ll": "GeV", "m_ll": "GeV", "met": "GeV", "mt": "GeV",
         "dphi_ll": "rad", "dr_ll": "1"}

#: The reference table: events and seed of the model's own output it is computed from, and the tolerances the
#: test applies to a fresh draw of ``test_events`` events with another seed, in reference standard deviations.
#: For 20,000 events the statistical error of a mean is 0.007 std and that of the 1 % / 99 % quantiles at most
#: ~0.02 std, so the tolerances are >= 4 standard errors: a sound model passes, a stale or broken one does not.
REFERENCE_EVENTS, REFERENCE_SEED, TEST_EVENTS, TEST_SEED = 200_000, 20231130, 20_000, 7
TOLERANCE = {"mean": 0.05, "quantile": 0.1}

MUST_NOT = """- Not a detector simulation and not a physics measurement: it reproduces 8 features of *our* sample
  (Pythia 8 ttbar + Wt, MPI off, our simple detector response, data_prep/README.md), not ATLAS data or the paper's
  Delphes sample.
- Only background-only toys of the dilepton + b selection (opposite-sign leptons, >= 1 b-jet) with the event-level
  10 % tail cut of the paper (every feature below the 90 % quantile of the training split): it cannot emit events
  outside the support listed above, so it must not be used for tails, for other selections or for signal.
- Not for precision: the quick preset ({steps} {what} steps, {n_train:,} training events); the classifier
  test separates its events from MC (AUC above). Fine for look-elsewhere toys where a few-percent mismatch of the
  shapes is acceptable; check the fidelity table above against your tolerance first.
- Not as evidence of the paper's published numbers: see papers/lebese_ruan/README.md for that comparison."""


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _fresh_metrics(run: Run) -> dict:
    """metrics.json of the run's held-out check on a fresh MC sample (``evaluate.py --fresh-seed``), or {}."""
    found = sorted(run.path.glob("fresh*/metrics.json"))
    return _read(found[0]) if found else {}


def spread(runs: list[Run]) -> dict:
    """Mean, standard deviation and per-run values of ``SPREAD_KEYS`` over ``runs``: ``{"test": {...}, "fresh":
    {...}}`` (fresh only where every run has a fresh-sample check).

    Raises:
        FileNotFoundError: a run without metrics.json (not evaluated).
    """
    out = {}
    for where, read in (("test", lambda r: _read(r / "metrics.json")), ("fresh", _fresh_metrics)):
        found = [read(r) for r in runs]
        if where == "test" and not all(found):
            missing = [str(r.path) for r, m in zip(runs, found) if not m]
            raise FileNotFoundError(f"no metrics.json in {', '.join(missing)}; evaluate the runs first")
        if not all(found):
            continue
        stats = summary.summarise(found, SPREAD_KEYS)  # mean, sample std (None for one run), values
        out[where] = {k: {f: stats[k][f] for f in ("mean", "std", "values")} for k in SPREAD_KEYS}
        out[where]["runs"] = [str(r.path) for r in runs]
    return out


def build_card(run: Run, seconds: tuple[float, float], reference: dict, others: list[Run] = ()) -> dict:
    """The card of the run's model: read from the run folder (recipe, results, sample counts, preprocessing,
    Table 1 metrics) plus the generation speed (wall-clock and CPU seconds per million events) and the reference
    table measured here; ``others``: the other runs of the same preset and model, for the spread over runs.

    Raises:
        FileNotFoundError: the run has no model.keras or no metrics.json (not trained or not evaluated).
    """
    run.require(Run.MODEL, "metrics.json", "table1.csv")
    recipe, results, sample = run.recipe(), run.results(), _read(run / "sample.json")
    metrics = _read(run / "metrics.json")
    kind = recipe.get("model", "gan")
    if kind == "flow":  # the selection's support box: the flow's sampler keeps every event inside it
        box = data.run_support(run)
        support = {f: [float(lo), float(hi)] for f, lo, hi in zip(FEATURES, *box)}
    else:  # the range of the training data: the sigmoid output layer cannot leave it
        minmax = next(s for s in _read(run / "preprocessing.json")["steps"] if s["class"] == "MinMax")["state"]
        support = {f: [lo, hi] for f, lo, hi in zip(FEATURES, minmax["min_"], minmax["max_"])}
    runs = [run, *others]
    over_runs = spread(runs)
    flags = "" if kind == "gan" else " --model flow" + (f" --flow-space {recipe['flow_space']}"
                                                        if recipe.get("flow_space", "features") != "features" else "")
    table = pd.read_csv(run / "table1.csv")
    keep = ["feature", "MC mean", "GAN mean", "relative difference", "KS", "W1 / std(MC)"]
    table = table[keep].rename(columns={"GAN mean": "generated mean"})
    cut = (sample.get("tail_cut") or {}).get("state", {}).get("threshold_")
    return {
        "name": f"lebese_ruan:{kind}",
        "paper": "Lebese & Ruan (2021), WGAN-GP for dilepton + b final states (papers/lebese_ruan)",
        "features": list(FEATURES),
        "units": UNITS,
        "preset": "quick",
        "seed": recipe["seed"],
        "recipe": recipe,
        "data": {"sample": "data_prep.dilepton: Pythia 8 ttbar (dileptonic) + Wt, 13 TeV, MPI off, our detector "
                           "response and the paper's selection (section 4.2)",
                 "pythia_events": recipe["events"], **{k: sample.get(k) for k in ("n_selected", "n_train", "n_val",
                                                                                   "n_test")},
                 "tail_cut_90pct": dict(zip(FEATURES, cut)) if cut else None},
        "training": {"steps": results.get("trained_steps"), "selected_step": results.get("selected_step"),
                     "select_by": recipe["select_by"], "train_minutes": round(results["train_seconds"] / 60, 1),
                     "machine": "vm: 2 shared x86_64 cores, no GPU", "date": datetime.date.today().isoformat(),
                     "command": f"python papers/lebese_ruan/train.py --preset quick{flags} --seed {recipe['seed']} "
                                f"--out {run.path}"},
        "fidelity": {"runs": len(runs),
                     "note": (f"this model's run; spread over {len(runs)} runs (seeds "
                              f"{', '.join(str(Run(r.path).recipe().get('seed')) for r in runs)}) below"
                              if others else "one run (one seed): no spread over runs"),
                     "spread": over_runs,
                     "sample": f"test MC ({metrics.get('n_test')} events, never seen in training or selection) vs "
                               f"{metrics.get('n_generated')} generated events",
                     "table": table.to_dict(orient="records"),
                     **{k: metrics.get(k) for k in ("worst_relative_mean_difference", "worst_ks", "classifier_auc",
                                                    "classifier_auc_uncertainty", "max_abs_correlation_difference",
                                                    "mc_floor")}},
        "support": support,
        "generation": pretrained.generation_record(seconds, "papers/lebese_ruan/pretrained.py"),
        "sha256": pretrained.sha256(run / Run.MODEL),
        "reference": reference,
    }


def _steps(kind: str) -> str:
    return "generator" if kind == "gan" else "flow"


def model_card(card: dict) -> str:
    """MODEL_CARD.md from the card."""
    fid, tr, data = card["fidelity"], card["training"], card["data"]
    rows = pd.DataFrame(fid["table"]).set_index("feature")
    floor = fid.get("mc_floor") or {}
    ref = card["reference"]
    support = pd.DataFrame(card["support"], index=["min", "max"]).T
    kind = card["name"].split(":")[1]
    what = {"gan": "The generator of Lebese & Ruan's WGAN-GP (papers/lebese_ruan)",
            "flow": "Our normalising flow for the features of Lebese & Ruan (papers/lebese_ruan, `--model flow`, not "
                    "in the paper)"}[kind]
    over = fid.get("spread") or {}
    spread_lines = []
    for where, label in (("test", "each run's own test MC"), ("fresh", "a fresh MC sample (held-out seed)")):
        if where in over:
            o = over[where]
            spread_lines.append(f"- on {label}: " + "; ".join(
                f"{k.replace('_', ' ')} {summary.mean_spread(o[k], '.4f')} "
                f"({', '.join(f'{v:.4f}' for v in o[k]['values'])})" for k in SPREAD_KEYS))
    lines = [
        f"# Model card: {card['name']}", "",
        f"{what} trained with our **quick** preset; it emits the 8 dilepton features "
        f"{', '.join(card['features'])} in physical units (GeV, rad).", "",
        "```bash",
        f"gan4hep generate --pretrained {card['name']} --events 1000000 --out toys.parquet   # or .root / .csv / .h5",
        f"python papers/lebese_ruan/generate.py --pretrained {kind} --samples 1000000 --out toys.root",
        "```", "",
        "## Data and training", "",
        f"- Data: {data['sample']}; {data['pythia_events']:,} Pythia events, {data['n_selected']:,} selected, "
        f"{data['n_train']:,} training / {data['n_val']:,} validation / {data['n_test']:,} test events after the "
        "event-level 90 % tail cut.",
        f"- Seed {card['seed']} (sample, split, weights, noise); preset quick; {tr['steps']} {_steps(kind)} steps in "
        f"{tr['train_minutes']} min on {tr['machine']} ({tr['date']}); checkpoint at step {tr['selected_step']} "
        f"selected by the worst-feature {tr['select_by'].upper()} on the validation MC.",
        f"- Made by `python -m papers.lebese_ruan.pretrained` (training command: `{tr['command']}`).",
        f"- Generation: {card['generation']['seconds_per_million_events']} s wall-clock, "
        f"{card['generation']['cpu_seconds_per_million_events']} s CPU per million events "
        f"({card['generation']['machine']}).", "",
        f"## Fidelity: {fid['note']}", "",
        f"{fid['sample']}:", "",
        markdown_table(rows, index=True).rstrip(), "",
        f"Worst relative mean difference {fid['worst_relative_mean_difference']:.4f}, worst KS "
        f"{fid['worst_ks']:.4f}, classifier AUC {fid['classifier_auc']:.3f} +- "
        f"{fid['classifier_auc_uncertainty']:.3f} (0.5: indistinguishable), largest correlation difference "
        f"{fid['max_abs_correlation_difference']:.3f}."
        + (f" MC statistical floor (validation vs test MC): worst relative mean difference "
           f"{floor['worst_relative_mean_difference']:.4f}, worst KS {floor['worst_ks']:.4f}, AUC "
           f"{floor['classifier_auc']:.3f}." if floor else ""), "",
        *([f"Spread over {fid['runs']} runs of the same preset and model (mean +- standard deviation, then each "
           "run):", "", *spread_lines, ""] if spread_lines else []),
        "## Support", "",
        ("The range of the training data (after the tail cut), which the sigmoid output layer cannot leave:"
         if kind == "gan" else "The selection's support (lepton pT >= 25 GeV, every feature below its tail cut); the "
         "sampler redraws the events outside it, so none is emitted:"), "",
        markdown_table(support, index=True).rstrip(), "",
        *pretrained.reference_section(card, f", {ref['events']:,} events with seed {ref['seed']}"),
        "## What it must not be used for", "",
        MUST_NOT.format(steps=tr["steps"], what=_steps(kind), n_train=data["n_train"]), "",
    ]
    return "\n".join(lines)


def ship(run_path: Path, target: Path | None = None, others: list[Path] = ()) -> Path:
    """Copy the run's model into ``target`` (default: ``TARGETS`` of the run's model family) with its card;
    ``others``: the other runs of the same preset and model, for the spread over runs. Returns ``target``.

    Raises:
        FileNotFoundError: the run is not trained and evaluated.
        ValueError: an ``others`` run of another model family or preset.
    """
    run = Run(run_path)
    if not (run / Run.MODEL).exists():
        raise FileNotFoundError(f"{run.path}: no {Run.MODEL}; train the run first")
    kind = run.recipe().get("model", "gan")
    other_runs = [Run(p) for p in others]
    for o in other_runs:
        if o.recipe().get("model", "gan") != kind or o.recipe().get("steps") != run.recipe().get("steps"):
            raise ValueError(f"{o.path}: not a run of the same model and preset as {run.path}")
    target = Path(target) if target is not None else TARGETS[kind]
    item = pretrained.Pretrained(f"lebese_ruan:{kind}", run.path, {"features": list(FEATURES)})
    _, reference, seconds = pretrained.measure_reference(item, item.load(), REFERENCE_EVENTS, REFERENCE_SEED,
                                                         TEST_EVENTS, TEST_SEED, TOLERANCE, list(FEATURES))
    card = build_card(run, seconds, reference, other_runs)
    return pretrained.write_shipped(target, run / Run.MODEL, card, model_card(card))


def main(argv: list[str] | None = None) -> None:
    """Train the quick preset (unless ``--run``), then ship its model with the card."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="a trained and evaluated quick-preset run to ship (default: train one)")
    p.add_argument("--seed", type=int, default=1, help="seed of the training run made without --run")
    p.add_argument("--out", type=Path, default=None,
                   help="run folder of the training made without --run (default runs/lebese_ruan_pretrained_sSEED)")
    p.add_argument("--model", choices=sorted(TARGETS), default="gan",
                   help="the model family of the training made without --run (flow: --flow-space underlying)")
    p.add_argument("--spread", type=Path, nargs="*", default=[],
                   help="the other runs of the same preset and model (other seeds): the card gives the spread")
    p.add_argument("--target", type=Path, default=None, help="where to write the shipped model (default: "
                   "gan4hep/pretrained_models/lebese_ruan/<model>)")
    args = p.parse_args(argv)
    run = args.run
    if run is None:
        run = args.out or Path("runs") / f"lebese_ruan_{args.model}_pretrained_s{args.seed}"
        flags = ["--model", "flow", "--flow-space", "underlying"] if args.model == "flow" else []
        train.main(["--preset", "quick", *flags, "--seed", str(args.seed), "--out", str(run)])
    try:
        target = ship(run, args.target, args.spread)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    print(pretrained.shipped_line(run, target))


if __name__ == "__main__":
    main()
