"""MMD kernels on the W and top mass peaks of the ttbar -> 6 quark GAN: the review's Fig. 15 (R Sec. 4.3,
Eq. (23); Butter, Plehn & Winterhalder 2019, Ref. [5]).

    python papers/butter_plehn/kernels.py --preset quick --out runs/bp_kernels --seed 0

The GAN, its sample, loss and schedule are those of ``papers/butter_plehn_winterhalder`` (imported, not copied:
``recipe.PRESETS[base]``, ``data.load_events``, ``train.fit``, ``observables.peaks``); each run changes only the
MMD kernel (``gan4hep.kernels``: Gaussian exp(-d^2 / 2 w^2), Cauchy 1 / (1 + d^2 / w^2), Breit-Wigner
1 / (1 + 4 d^2 / w^2)) and its widths for m(W1), m(W2), m(t1), m(t2):

* ``card``: the public code's paper card (EventGAN ``cards/params_paper.yaml``), 1.49 GeV for the W pairs and 2.05
  GeV for the tops: the physical widths swapped (Gamma_t ~ 1.5, Gamma_W ~ 2.1), kept as the published reading;
* ``physical``: the W pairs 2.1 GeV and the tops 1.5 GeV (``butter_plehn_winterhalder.model.PHYSICAL_WIDTHS``).

Every run has the same budget (the base preset's steps, or ``steps``). Compared with the truth (the held-out
events): the Breit-Wigner fit of the pooled W and top peaks (``observables.fit_peak``: position and FWHM).
Writes ``RUN/metrics.json`` (``kernels.<kernel>[_physical].{w_mass, w_width, top_mass, top_width}`` and ``truth``,
GeV), ``RUN/peaks.{md,csv}`` and ``RUN/fig15.{png,pdf}``; each GAN is a run folder ``RUN/<kernel>_<assignment>``
of that folder's layout.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd

from gan4hep import plotting
from gan4hep.runs import Run

from papers.butter_plehn import report
from papers.butter_plehn.recipe import Kernels
from papers.butter_plehn_winterhalder import data as bpw_data
from papers.butter_plehn_winterhalder import model as bpw_model
from papers.butter_plehn_winterhalder import observables as bpw_observables
from papers.butter_plehn_winterhalder import recipe as bpw_recipe
from papers.butter_plehn_winterhalder import train as bpw_train

PART = "kernels"
ASSIGNMENTS = ("card", "physical")


def run_name(kernel: str, assignment: str) -> str:
    """The metrics key of a run: the kernel for the card's widths (the published reading), ``<kernel>_physical``
    for the physical ones."""
    return kernel if assignment == "card" else f"{kernel}_{assignment}"


def widths(recipe: Kernels, assignment: str) -> tuple[float, ...]:
    """Kernel widths [GeV] for m(W1), m(W2), m(t1), m(t2) of an assignment.

    Raises:
        ValueError: an unknown assignment.
    """
    if assignment == "card":
        return tuple(recipe.card_widths)
    if assignment == "physical":
        return tuple(bpw_model.PHYSICAL_WIDTHS)
    raise ValueError(f"unknown width assignment {assignment!r}; choose one of {ASSIGNMENTS}")


def bpw_recipe_of(recipe: Kernels, kernel: str, assignment: str):
    """The butter_plehn_winterhalder recipe of one run: its preset ``base`` with the kernel, widths, seed and
    (if set) steps changed."""
    base = bpw_recipe.PRESETS[recipe.base]
    changes = {"kernel": kernel, "widths": widths(recipe, assignment), "seed": recipe.seed, "use_mmd": True}
    if recipe.steps:
        changes["steps"] = recipe.steps
    return bpw_recipe.validate(dataclasses.replace(base, **changes))


def peak_numbers(fits: dict) -> dict:
    """``observables.peaks`` output -> ``{"w_mass", "w_width", "top_mass", "top_width"}`` [GeV] (FWHM widths)."""
    return {"w_mass": fits["W"]["position"], "w_width": fits["W"]["width"], "top_mass": fits["top"]["position"],
            "top_width": fits["top"]["width"]}


def train_one(recipe: Kernels, kernel: str, assignment: str, run: Run, x_train: np.ndarray) -> np.ndarray:
    """Train (or reuse, when finished) one GAN; returns ``recipe.n_generate`` events ``(n, 24)`` in GeV."""
    cached = run / "generated.npy"
    r = bpw_train.start(run, bpw_recipe_of(recipe, kernel, assignment), resume=False)
    if cached.exists() and run.results().get("trained_steps") == r.steps:
        return np.load(cached)
    trained = bpw_train.fit(r, run, x_train)
    gen = trained.model.sample(recipe.n_generate, seed=recipe.seed + 1)
    np.save(cached, gen.astype(np.float32))
    return gen


def write_figure(run: Run, truth: np.ndarray, gens: dict, prov: dict) -> None:
    """Fig. 15: the pooled W and top mass peaks of the truth and every kernel."""
    import matplotlib.pyplot as plt

    t = bpw_observables.table(truth)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, (name, pole, cols) in zip(axes, (("W", 80.4, ("m_W1", "m_W2")), ("top", 173.0, ("m_t1", "m_t2")))):
        edges = np.linspace(pole - 15, pole + 15, 61)
        ax.hist(np.r_[t[cols[0]], t[cols[1]]], edges, density=True, histtype="stepfilled", color="0.85",
                label="truth")
        for label, g in gens.items():
            tg = bpw_observables.table(g)
            ax.hist(np.r_[tg[cols[0]], tg[cols[1]]], edges, density=True, histtype="step", label=label)
        ax.set_xlabel(rf"$m_{{{name}}}$ [GeV]")
        ax.set_title(f"preset {prov['preset']}, seed {prov['seed']}", fontsize="small")
        ax.legend(fontsize="x-small")
    plotting.save_figure(fig, run / "fig15")


def main(argv=None) -> dict:
    """The command line (``--preset --out --seed``, ``--steps --only --jobs``); returns the metrics."""
    p = report.parser(__doc__)
    p.add_argument("--steps", type=int, help="generator steps of every run (default: the base preset's)")
    p.add_argument("--only", nargs="+", metavar="KERNEL:ASSIGNMENT",
                   help="a subset of the runs, e.g. gaussian:card breit_wigner:physical")
    p.add_argument("--jobs", type=int, default=1, help="processes for the Pythia sample")
    args = p.parse_args(argv)
    runs = tuple(tuple(s.split(":")) for s in args.only) if args.only else None
    run, recipe = report.start(args, PART, steps=args.steps, runs=runs)
    prov = report.provenance(recipe, PART, None if args.resume else args.preset)
    t0 = time.time()
    base = bpw_recipe.PRESETS[recipe.base]
    x_train, x_test = bpw_data.load_events(dataclasses.replace(base, seed=recipe.seed), jobs=args.jobs)
    truth = peak_numbers(bpw_observables.peaks(x_test))
    rows = [{"run": "truth (test)", "kernel": "-", "widths W, top [GeV]": "-", **truth}]
    out, gens = {}, {}
    for kernel, assignment in recipe.runs:
        name = run_name(kernel, assignment)
        gen = train_one(recipe, kernel, assignment, Run(run / f"{kernel}_{assignment}"), x_train)
        gens[name] = gen
        out[name] = peak_numbers(bpw_observables.peaks(gen))
        w = widths(recipe, assignment)
        rows.append({"run": name, "kernel": kernel, "widths W, top [GeV]": f"{w[0]:g}, {w[2]:g}", **out[name]})
        print(f"{name}: {out[name]} ({time.time() - t0:.0f} s)", flush=True)
    table = pd.DataFrame(rows)
    print(report.write_table(table, run, "peaks", prov,
                             "W and top peaks (Breit-Wigner fit: position and FWHM, GeV) per MMD kernel"))
    write_figure(run, x_test, gens, prov)
    metrics = {"kernels": out, "truth": truth, "base_preset": recipe.base,
               "steps": bpw_recipe_of(recipe, *recipe.runs[0]).steps,
               "width_assignments": {a: list(widths(recipe, a)) for a in ASSIGNMENTS},
               "note": "card widths (1.49 W, 2.05 top) are the public card's, the physical widths swapped",
               "seconds": time.time() - t0}
    report.write_metrics(run, metrics, prov)
    return metrics


if __name__ == "__main__":
    main()
