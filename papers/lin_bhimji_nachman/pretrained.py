"""Produce the shipped Lin, Bhimji & Nachman jet-mass generators (``gan4hep generate --pretrained
lin_bhimji_nachman[:gan|:flow]``) from quick-preset runs.

    python -m papers.lin_bhimji_nachman.pretrained                 # train both (quick preset, seed 1), then ship
    python -m papers.lin_bhimji_nachman.pretrained --gan-run runs/lbn_gan_s1 --flow-run runs/lbn_flow_s1 \\
        --spread runs/lbn_gan_s2 runs/lbn_gan_s3 runs/lbn_flow_s2 runs/lbn_flow_s3   # ship existing runs

Without ``--gan-run`` / ``--flow-run`` it runs ``templates.py --preset quick --seed SEED --variant vanilla --noise
skew`` (the paper's headline GAN, the one of its Figs. 5 and 6) and ``templates.py --preset quick --seed SEED --model
flow``, then writes ``gan4hep/pretrained_models/lin_bhimji_nachman/{gan,flow}/``: ``model.keras`` (the initialisation
with the best early-stopping separation power: it emits m / pT for a jet's (pT, eta, N_track)), ``context.parquet``
(``CONTEXT_ROWS`` control-region jets of the run's sample: pt, eta, ntrk and the event weight), ``card.json`` and
``MODEL_CARD.md``. Everything on the card is read from the run folders or measured here; nothing is typed in.

The model is conditional: ``gan4hep.pretrained.Pretrained.generate(context=...)`` takes the user's jets; without a
context it resamples the shipped table. The card's ``derived`` column ``mass`` = m / pT x pT, at least 0 GeV, is what
the paper's method produces (``model.to_mass``).
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np
import pandas as pd

from gan4hep import pretrained, summary
from gan4hep.io import atomic_path, markdown_table
from gan4hep.runs import Run
from papers.lin_bhimji_nachman import data, model

__all__ = ["TARGET", "CONTEXT_ROWS", "best_member", "context_table", "spread", "build_card", "model_card", "ship",
           "main"]

#: Where the shipped models go (package data of gan4hep): TARGET / "gan", TARGET / "flow".
TARGET = pretrained.ROOT / "lin_bhimji_nachman"

#: Control-region jets in the shipped context table.
CONTEXT_ROWS = 5000

UNITS = {"pt": "GeV", "eta": "1", "ntrk": "1 (charged constituents with pT > 0.5 GeV)", "m_over_pt": "1",
         "mass": "GeV"}

#: The reference table: events and seed of the model's own output (contexts resampled from the shipped table) it is
#: computed from, and the tolerances the test applies to a fresh draw of ``TEST_EVENTS`` with another seed, in
#: reference standard deviations. The mass has a long upper tail: its 99 % quantile scatters by 0.08 std between
#: 20,000-event draws (measured, 8 seeds), hence 100,000 test events (~0.035 std) and a quantile tolerance of 0.2
#: (~6 standard errors; mean: 0.05, > 10 standard errors): a sound model passes, a stale or broken one does not.
REFERENCE_EVENTS, REFERENCE_SEED, TEST_EVENTS, TEST_SEED = 200_000, 20231130, 100_000, 7
TOLERANCE = {"mean": 0.05, "quantile": 0.2}

KIND_TEXT = {
    "gan": "the paper's vanilla conditional GAN with skew-normal noise (alpha = 5), generator 160-80-40 with 50 % "
           "dropout (off when sampling)",
    "flow": "our conditional rational-quadratic spline flow (issue 20; not in the paper): each step an element-wise "
            "spline of m / pT whose parameters come from a ResidualNet of the context",
}

MUST_NOT = """- Not a detector simulation and not ATLAS: particle-level Pythia 8 QCD jets (`HardQCD:all`, MPI off,
  anti-kt R = 1.0 trimmed, pT > 200 GeV, |eta| < 2), our sample, not the paper's Delphes sample.
- Only for jets like those it was trained on: control-region jets (exactly 3 jets with pT > 200 GeV) of a pT-hat^4
  biased sample, pT between {pt_lo:.0f} and {pt_hi:.0f} GeV, N_track between {n_lo:.0f} and {n_hi:.0f}. Contexts
  outside that range are extrapolation; nothing stops it.
- Not for precision: the quick preset ({n_train:,} training jets, {epochs} epochs, trained on unweighted jets while
  the evaluation is weighted); compare the separation power above with its floor and your tolerance first. The
  validation-region numbers rest on ~100 effective jets.
- The shipped context table is a convenience, not a physics sample: its jets were drawn without their event weights
  from a biased generation, so its pT spectrum is harder than QCD's; weight with its `weight` column, or pass your own
  jets as the context.
- Not as evidence for or against the paper's statements: see papers/lin_bhimji_nachman/README.md."""


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def best_member(run: Run) -> tuple[Path, dict]:
    """The trained initialisation of a templates.py run with the lowest early-stopping separation power among its
    first member (vanilla skew GAN, or the flow): (its folder, its training record).

    Raises:
        FileNotFoundError: the run has no training.json (not trained).
    """
    summary = _read(run / "training.json")
    if not summary:
        raise FileNotFoundError(f"{run.path}: no training.json; run templates.py first")
    records = summary["runs"]
    first = (records[0]["variant"], records[0]["noise"])
    mine = [(i, r) for i, r in enumerate(records) if (r["variant"], r["noise"]) == first]
    i, rec = min(mine, key=lambda p: p[1]["best"]["sp_control_es"])
    index = sum(1 for j, _ in mine if j < i)
    name = "_".join(p for p in (rec["variant"], rec["noise"], str(index)) if p)
    return run.path / "runs" / name, rec


def context_table(run: Run, seed: int, rows: int = CONTEXT_ROWS) -> pd.DataFrame:
    """``rows`` control-region jets of the run's sample (drawn without replacement with ``seed``): pt (GeV), eta,
    ntrk and the event weight."""
    source = _read(run / "input.json").get("input")
    recipe = run.recipe()
    df = data.load_sample(None if source is None else Path(source), run.path, recipe["events"], recipe["seed"])
    control = data.region(df, "control")
    pick = np.sort(np.random.default_rng([seed, 23]).choice(len(control), size=min(rows, len(control)),
                                                           replace=False))
    return control.iloc[pick][["pt", "eta", "ntrk", "weight"]].astype(np.float64).reset_index(drop=True)


def _method_rows(run_path: Path, kind: str) -> pd.DataFrame:
    sp = pd.read_csv(run_path / "separation_power.csv")
    return sp[sp["method"].isin(["floor", "template", kind])]


def spread(runs: list[Path], kind: str) -> dict:
    """Mean and standard deviation over runs (seeds) of the separation power per region and method (floor,
    template, ``kind``) from each run's separation_power.csv, and the classifier AUC of fidelity.csv."""
    rows = []
    for path in runs:
        t = _method_rows(path, kind)
        for _, r in t.iterrows():
            rows.append({"region": r["region"], "method": r["method"], "value": r["value"]})
        fid = pd.read_csv(path / "fidelity.csv")
        label = "Flow" if kind == "flow" else "GAN"
        for _, r in fid[fid["method"].isin(["Template", label])].iterrows():
            rows.append({"region": r["region"], "method": f"AUC {r['method']}", "value": r["classifier_auc"]})
    df = pd.DataFrame(rows)
    out = {}
    for (region, method), g in df.groupby(["region", "method"], sort=False):
        v = g["value"].to_numpy(float)
        out.setdefault(region, {})[method] = {"mean": float(np.mean(v)),
                                              "std": float(np.std(v, ddof=1)) if len(v) > 1 else None,
                                              "values": v.tolist()}
    return {"runs": [str(p) for p in runs], "n_runs": len(runs), "by_region": out}


def build_card(kind: str, run: Run, member: Path, record: dict, context: pd.DataFrame, seconds: tuple[float, float],
               reference: dict, runs: list[Path]) -> dict:
    """The card of the shipped ``kind`` ("gan" or "flow") model: read from the run folder (recipe, training
    record, separation power and fidelity tables) plus the generation speed, the context table's summary and the
    reference table measured here; ``runs``: the runs (seeds) whose spread the card quotes (``run`` first)."""
    run.require("separation_power.csv", "fidelity.csv", "metrics.json",
                hint="run templates.py (training and evaluation) first")
    recipe = run.recipe()
    metrics = _read(run / "metrics.json")
    sp = _method_rows(run.path, kind)
    fid = pd.read_csv(run / "fidelity.csv")
    command = (f"python papers/lin_bhimji_nachman/templates.py --preset quick --seed {recipe['seed']} "
               + ("--model flow " if kind == "flow" else "--variant vanilla --noise skew ") + f"--out {run.path}")
    return {
        "name": f"lin_bhimji_nachman:{kind}",
        "paper": "Lin, Bhimji & Nachman (2019), machine-learning templates for the jet mass "
                 "(papers/lin_bhimji_nachman)",
        "model": KIND_TEXT[kind],
        "features": ["m_over_pt"],
        "context": {"columns": list(model.CONTEXT), "file": "context.parquet", "rows": len(context),
                    "description": "control-region jets (exactly 3 jets with pT > 200 GeV, |eta| < 2) of the run's "
                                   "sample, drawn without replacement, without their event weights (column "
                                   "'weight' holds them); resampled with replacement when generate() gets no "
                                   "context",
                    "range": {c: [float(context[c].min()), float(context[c].max())] for c in model.CONTEXT}},
        "derived": [{"name": "mass", "product": ["m_over_pt", "pt"], "min": 0.0}],
        "units": UNITS,
        "preset": "quick",
        "seed": recipe["seed"],
        "recipe": recipe,
        "data": {"sample": "data_prep.qcd_jets: Pythia 8 HardQCD:all, pTHatMin 120 GeV with a pT-hat^4 bias "
                           "(weighted events), MPI off, anti-kt R = 1.0 trimmed jets, pT > 200 GeV, |eta| < 2",
                 "pythia_events": recipe["events"], "jets": metrics.get("table1_jets"),
                 "training_jets": "half of the control region (split by event with the seed)"},
        "training": {"member": member.name, "init_seed": record["seed"], "best_epoch": record["best_epoch"],
                     "epochs": recipe["epochs"], "select_by": "separation power on the control region's "
                                                             "early-stopping half",
                     "train_minutes": round((record["seconds"] or 0) / 60, 2),
                     "machine": "vm: 2 shared x86_64 cores, no GPU", "date": datetime.date.today().isoformat(),
                     "command": command},
        "fidelity": {"runs": len(runs), "note": f"this run (seed {recipe['seed']}), and the spread over "
                                                f"{len(runs)} run(s) below",
                     "sample": "separation power (section 3.3, 8 regions x 20 mass bins, weighted): control = the "
                               "early-stopping half of the control region, validation = the validation region (the "
                               "paper's test); AUC: classifier on (pT, |eta|, N_track, mass)",
                     "table": sp.to_dict(orient="records"),
                     "classifier": fid.to_dict(orient="records"),
                     "spread": spread(runs, kind)},
        "support": {},  # unbounded output: m / pT may leave the training range (mass clipped at 0)
        "generation": pretrained.generation_record(seconds, "papers/lin_bhimji_nachman/pretrained.py"),
        "sha256": pretrained.sha256(member / Run.MODEL),
        "reference": reference,
    }


def model_card(card: dict) -> str:
    """MODEL_CARD.md from the card."""
    kind = card["name"].split(":")[1]
    fid, tr, ctx, ref = card["fidelity"], card["training"], card["context"], card["reference"]
    label = "Flow" if kind == "flow" else "GAN"
    sp = pd.DataFrame(fid["table"])[["method", "variant", "region", "value", "uncertainty"]]
    spr = fid["spread"]
    spread_rows = [{"region": r, **{m: summary.mean_spread(v, ".4f") for m, v in d.items()}}
                   for r, d in spr["by_region"].items()]
    rng = ctx["range"]
    lines = [
        f"# Model card: {card['name']}", "",
        f"{card['model'][0].upper() + card['model'][1:]}, trained with our **quick** preset on Lin, Bhimji & "
        "Nachman's task (papers/lin_bhimji_nachman): it generates a large-R jet's m / pT given the jet's "
        f"({', '.join(ctx['columns'])}); the column `mass` = m / pT x pT (at least 0 GeV) is the jet mass in GeV.",
        "",
        "```bash",
        f"gan4hep generate --pretrained {card['name']} --context my_jets.parquet --out masses.parquet  # your jets",
        f"gan4hep generate --pretrained {card['name']} --events 100000 --out masses.parquet  # shipped contexts",
        "```", "",
        "```python",
        "from gan4hep import pretrained",
        f"jets = pretrained.get({card['name']!r}).generate(context=my_jets[{ctx['columns']!r}], seed=1)",
        "```", "",
        "## Context", "",
        f"Columns {', '.join(ctx['columns'])} (pt in GeV). Shipped: `{ctx['file']}`, {ctx['rows']:,} "
        f"{ctx['description']}. "
        f"Range of the shipped jets: pt {rng['pt'][0]:.0f}-{rng['pt'][1]:.0f} GeV, eta {rng['eta'][0]:.2f} to "
        f"{rng['eta'][1]:.2f}, ntrk {rng['ntrk'][0]:.0f}-{rng['ntrk'][1]:.0f}.", "",
        "## Data and training", "",
        f"- Data: {card['data']['sample']}; {card['data']['pythia_events']:,} Pythia events; jets per region "
        f"{card['data']['jets']}; trained on {card['data']['training_jets']}.",
        f"- Seed {card['seed']} (sample split, networks); initialisation `{tr['member']}` (seed {tr['init_seed']}), "
        f"epoch {tr['best_epoch']:.0f} of {tr['epochs']} selected by the {tr['select_by']}; "
        f"{tr['train_minutes']} min of training on {tr['machine']} ({tr['date']}).",
        f"- Made by `python -m papers.lin_bhimji_nachman.pretrained` (run: `{tr['command']}`).",
        f"- Generation: {card['generation']['seconds_per_million_events']} s wall-clock, "
        f"{card['generation']['cpu_seconds_per_million_events']} s CPU per million jets "
        f"({card['generation']['machine']}).", "",
        f"## Fidelity: {fid['note']}", "",
        f"{fid['sample']}. This run:", "",
        markdown_table(sp).rstrip(), "",
        f"Mean +- standard deviation over {spr['n_runs']} run(s) ({', '.join(spr['runs'])}; floor: expected value "
        f"for a perfect model; template: the paper's 60-histogram baseline; {label}: this model's family):", "",
        markdown_table(pd.DataFrame(spread_rows).fillna("")).rstrip(), "",
        *pretrained.reference_section(
            card, f" for {ref['events']:,} shipped contexts resampled with seed {ref['seed']}"),
        "## What it must not be used for", "",
        MUST_NOT.format(pt_lo=rng["pt"][0], pt_hi=rng["pt"][1], n_lo=rng["ntrk"][0], n_hi=rng["ntrk"][1],
                        n_train=int(card["data"]["jets"]["control"] / 2) if card["data"]["jets"] else 0,
                        epochs=tr["epochs"]), "",
    ]
    return "\n".join(lines)


def ship(kind: str, run_path: Path, spread_runs: list[Path] = (), target: Path = TARGET) -> Path:
    """Copy the best initialisation of ``run_path`` into ``target / kind`` with its context table and card;
    returns that folder.

    Args:
        kind: "gan" or "flow" (which model family the run trained).
        run_path: a finished templates.py run (quick preset).
        spread_runs: further runs of the same kind (other seeds) whose separation power enters the card's spread.

    Raises:
        FileNotFoundError: the run is not trained and evaluated.
        ValueError: the run trained another family than ``kind``.
    """
    run = Run(run_path)
    if run.recipe().get("model", "gan") != kind:
        raise ValueError(f"{run.path} trained a {run.recipe().get('model', 'gan')}, not a {kind}")
    member, record = best_member(run)
    out = Path(target) / kind
    out.mkdir(parents=True, exist_ok=True)
    context = context_table(run, seed=run.recipe()["seed"])
    with atomic_path(out / "context.parquet") as tmp:
        context.to_parquet(tmp, index=False)
    card0 = {"features": ["m_over_pt"], "context": {"columns": list(model.CONTEXT), "file": "context.parquet"},
             "derived": [{"name": "mass", "product": ["m_over_pt", "pt"], "min": 0.0}]}
    staging = pretrained.Pretrained(f"lin_bhimji_nachman:{kind}", out, card0)
    sampler = pretrained.Pretrained(staging.name, member, card0).load()
    _, reference, seconds = pretrained.measure_reference(staging, sampler, REFERENCE_EVENTS, REFERENCE_SEED,
                                                         TEST_EVENTS, TEST_SEED, TOLERANCE, ["m_over_pt", "mass"])
    card = build_card(kind, run, member, record, context, seconds, reference, [run.path, *map(Path, spread_runs)])
    return pretrained.write_shipped(out, member / Run.MODEL, card, model_card(card))


def main(argv: list[str] | None = None) -> None:
    """Train the quick preset's vanilla skew GAN and flow (unless given runs), then ship both with their cards."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gan-run", type=Path, help="a finished templates.py GAN run (vanilla skew first) to ship")
    p.add_argument("--flow-run", type=Path, help="a finished templates.py --model flow run to ship")
    p.add_argument("--spread", type=Path, nargs="*", default=[],
                   help="further runs (other seeds) of either family, for the cards' spread over runs")
    p.add_argument("--seed", type=int, default=1, help="seed of the runs trained without --gan-run / --flow-run")
    p.add_argument("--input", type=Path, default=None, help="jet table for the runs trained here (default: "
                                                            "generate the quick sample)")
    p.add_argument("--target", type=Path, default=TARGET, help="where to write the shipped models")
    args = p.parse_args(argv)
    from papers.lin_bhimji_nachman import templates

    extra = [] if args.input is None else ["--input", str(args.input)]
    runs = {"gan": args.gan_run, "flow": args.flow_run}
    for kind, flags in (("gan", ["--variant", "vanilla", "--noise", "skew"]), ("flow", ["--model", "flow"])):
        if runs[kind] is None:
            runs[kind] = Path("runs") / f"lbn_pretrained_{kind}_s{args.seed}"
            templates.main(["--preset", "quick", "--seed", str(args.seed), "--out", str(runs[kind]), *flags, *extra])
    for kind, run in runs.items():
        others = [r for r in args.spread if Run(r).recipe().get("model", "gan") == kind]
        try:
            out = ship(kind, run, others, args.target)
        except (FileNotFoundError, ValueError) as err:
            raise SystemExit(f"error: {err}") from None
        print(pretrained.shipped_line(run, out, "jets"))


if __name__ == "__main__":
    main()
