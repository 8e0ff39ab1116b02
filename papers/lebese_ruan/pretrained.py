"""Produce the shipped Lebese & Ruan generator (``gan4hep generate --pretrained lebese_ruan``) from a quick-preset run.

    python -m papers.lebese_ruan.pretrained                                   # train (quick preset, seed 1), then ship
    python -m papers.lebese_ruan.pretrained --run runs/lr_pretrained_s1       # ship an existing, evaluated run

Trains ``python papers/lebese_ruan/train.py --preset quick --seed SEED --out RUN`` unless ``--run`` names a finished
run, then writes ``gan4hep/pretrained_models/lebese_ruan/gan/``: ``model.keras`` (the run's exported generator with
its preprocessing), ``card.json`` (data, seed, preset, training time, the run's Table 1 fidelity numbers, the support
of each feature, the model's SHA-256, and the reference table of its own output that the tests check) and
``MODEL_CARD.md``. Everything on the card is read from the run folder or measured here; nothing is typed in.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import time
from pathlib import Path

import pandas as pd

from gan4hep import pretrained
from gan4hep.io import atomic_path, markdown_table, write_json
from gan4hep.runs import Run

from papers.lebese_ruan import train
from papers.lebese_ruan.model import FEATURES

#: Where the shipped model goes (package data of gan4hep).
TARGET = pretrained.ROOT / "lebese_ruan" / "gan"

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
- Not for precision: the quick preset ({steps} generator steps, {n_train:,} training events); the classifier
  test separates its events from MC (AUC above). Fine for look-elsewhere toys where a few-percent mismatch of the
  shapes is acceptable; check the fidelity table above against your tolerance first.
- Not as evidence of the paper's published numbers: see papers/lebese_ruan/README.md for that comparison."""


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def build_card(run: Run, seconds: tuple[float, float], reference: dict) -> dict:
    """The card of the run's model: read from the run folder (recipe, results, sample counts, preprocessing,
    Table 1 metrics) plus the generation speed (wall-clock and CPU seconds per million events) and the reference
    table measured here.

    Raises:
        FileNotFoundError: the run has no model.keras or no metrics.json (not trained or not evaluated).
    """
    for name in (Run.MODEL, "metrics.json", "table1.csv"):
        if not (run / name).exists():
            raise FileNotFoundError(f"{run.path}: no {name}; train and evaluate the run first")
    recipe, results, sample = run.recipe(), run.results(), _read(run / "sample.json")
    metrics = _read(run / "metrics.json")
    prep = _read(run / "preprocessing.json")
    minmax = next(s for s in prep["steps"] if s["class"] == "MinMax")["state"]
    table = pd.read_csv(run / "table1.csv")
    keep = ["feature", "MC mean", "GAN mean", "relative difference", "KS", "W1 / std(MC)"]
    cut = (sample.get("tail_cut") or {}).get("state", {}).get("threshold_")
    return {
        "name": "lebese_ruan:gan",
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
                     "command": f"python papers/lebese_ruan/train.py --preset quick --seed {recipe['seed']} "
                                f"--out {run.path}"},
        "fidelity": {"runs": 1, "note": "one run (one seed): no spread over runs",
                     "sample": f"test MC ({metrics.get('n_test')} events, never seen in training or selection) vs "
                               f"{metrics.get('n_generated')} generated events",
                     "table": table[keep].to_dict(orient="records"),
                     **{k: metrics.get(k) for k in ("worst_relative_mean_difference", "worst_ks", "classifier_auc",
                                                    "classifier_auc_uncertainty", "max_abs_correlation_difference",
                                                    "mc_floor")}},
        "support": {f: [lo, hi] for f, lo, hi in zip(FEATURES, minmax["min_"], minmax["max_"])},
        "generation": {"seconds_per_million_events": round(seconds[0], 2),
                       "cpu_seconds_per_million_events": round(seconds[1], 2),
                       "machine": f"vm: 2 shared x86_64 cores ({platform.machine()}), no GPU, shared with other jobs; "
                                  "measured by papers/lebese_ruan/pretrained.py"},
        "sha256": pretrained.sha256(run / Run.MODEL),
        "reference": reference,
    }


def model_card(card: dict) -> str:
    """MODEL_CARD.md from the card."""
    fid, tr, data = card["fidelity"], card["training"], card["data"]
    rows = pd.DataFrame(fid["table"]).set_index("feature")
    floor = fid.get("mc_floor") or {}
    ref = card["reference"]
    stats = pd.DataFrame(ref["statistics"]).T
    support = pd.DataFrame(card["support"], index=["min", "max"]).T
    lines = [
        "# Model card: lebese_ruan:gan", "",
        "The generator of Lebese & Ruan's WGAN-GP (papers/lebese_ruan) trained with our **quick** preset; it emits "
        f"the 8 dilepton features {', '.join(card['features'])} in physical units (GeV, rad).", "",
        "```bash",
        "gan4hep generate --pretrained lebese_ruan --events 1000000 --out toys.parquet   # or .root / .csv / .h5",
        "python papers/lebese_ruan/generate.py --pretrained --samples 1000000 --out toys.root",
        "```", "",
        "## Data and training", "",
        f"- Data: {data['sample']}; {data['pythia_events']:,} Pythia events, {data['n_selected']:,} selected, "
        f"{data['n_train']:,} training / {data['n_val']:,} validation / {data['n_test']:,} test events after the "
        "event-level 90 % tail cut.",
        f"- Seed {card['seed']} (sample, split, weights, noise); preset quick; {tr['steps']} generator steps in "
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
        "## Support", "",
        "The range of the training data (after the tail cut), which the sigmoid output layer cannot leave:", "",
        markdown_table(support, index=True).rstrip(), "",
        "## Reference table (checked by tests/test_pretrained.py)", "",
        f"The model's own output, {ref['events']:,} events with seed {ref['seed']}. A fresh draw of "
        f"{ref['test_events']:,} events (seed {ref['test_seed']}) must match every mean within "
        f"{ref['tolerance']['mean']} and every quantile within {ref['tolerance']['quantile']} reference standard "
        f"deviations, and `model.keras` must have SHA-256 `{card['sha256'][:16]}...`:", "",
        markdown_table(stats, index=True).rstrip(), "",
        "## What it must not be used for", "",
        MUST_NOT.format(steps=tr["steps"], n_train=data["n_train"]), "",
    ]
    return "\n".join(lines)


def ship(run_path: Path, target: Path = TARGET) -> Path:
    """Copy the run's model into ``target`` with its card; returns ``target``.

    Raises:
        FileNotFoundError: the run is not trained and evaluated.
    """
    run = Run(run_path)
    if not (run / Run.MODEL).exists():
        raise FileNotFoundError(f"{run.path}: no {Run.MODEL}; train the run first")
    item = pretrained.Pretrained("lebese_ruan:gan", run.path, {"features": list(FEATURES)})
    sampler = item.load()
    item.generate(1000, seed=1, sampler=sampler)  # graph tracing, not timed
    t0, c0 = time.perf_counter(), time.process_time()
    ref_events = item.generate(REFERENCE_EVENTS, seed=REFERENCE_SEED, sampler=sampler)
    per_million = 1e6 / REFERENCE_EVENTS
    seconds = ((time.perf_counter() - t0) * per_million, (time.process_time() - c0) * per_million)
    reference = {"events": REFERENCE_EVENTS, "seed": REFERENCE_SEED, "chunk": pretrained.CHUNK,
                 "test_events": TEST_EVENTS, "test_seed": TEST_SEED,
                 "tolerance": {**TOLERANCE, "unit": "reference standard deviation"},
                 "statistics": pretrained.reference_statistics(ref_events, list(FEATURES))}
    card = build_card(run, seconds, reference)
    target.mkdir(parents=True, exist_ok=True)
    with atomic_path(target / "model.keras") as tmp:
        shutil.copyfile(run / Run.MODEL, tmp)
    write_json(card, target / "card.json")
    with atomic_path(target / "MODEL_CARD.md") as tmp:
        Path(tmp).write_text(model_card(card))
    return target


def main(argv: list[str] | None = None) -> None:
    """Train the quick preset (unless ``--run``), then ship its model with the card."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="a trained and evaluated quick-preset run to ship (default: train one)")
    p.add_argument("--seed", type=int, default=1, help="seed of the training run made without --run")
    p.add_argument("--out", type=Path, default=None,
                   help="run folder of the training made without --run (default runs/lebese_ruan_pretrained_sSEED)")
    p.add_argument("--target", type=Path, default=TARGET, help="where to write the shipped model")
    args = p.parse_args(argv)
    run = args.run
    if run is None:
        run = args.out or Path("runs") / f"lebese_ruan_pretrained_s{args.seed}"
        train.main(["--preset", "quick", "--seed", str(args.seed), "--out", str(run)])
    try:
        target = ship(run, args.target)
    except FileNotFoundError as err:
        raise SystemExit(f"error: {err}") from None
    card = json.loads((target / "card.json").read_text())
    print(f"shipped {run} -> {target} ({(target / 'model.keras').stat().st_size / 1e6:.2f} MB, "
          f"{card['generation']['seconds_per_million_events']} s wall-clock per million events)")


if __name__ == "__main__":
    main()
