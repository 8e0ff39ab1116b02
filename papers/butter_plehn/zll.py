"""The Z -> mu mu GAN with the regression terms of Eq. (19): the review's Figs. 7-8 (R Sec. 4.1; Hashemi, Amin,
Datta, Olivito & Pierini, arXiv:1901.05282).

    python papers/butter_plehn/zll.py --preset quick --out runs/bp_zll --seed 1

The detector-level Drell-Yan sample (``data_prep.drell_yan``, our response): two muons (pT, eta, phi), five jets
(pT, eta, phi, m; zero-padded), the missing-pT vector, the number of primary vertices (with pile-up) and the two
muons' isolation. Two GANs with the BCE objective are trained on the same events, one with the two batch-level
terms ``lambda_m (m_Z - m_ll)^2 + lambda_sigma (sigma_Z - sigma_ll)^2`` (``gan4hep.penalties.PeakPenalty``; m_ll,
sigma_ll: mean and standard deviation of the generated batch's dimuon mass) and one without. m_Z and sigma_Z are
the mean and standard deviation of m_ll in our training sample (the batch estimator's own target; the review's
7.7 GeV belongs to their Delphes card).

Compared on the held-out events: the fitted Z peak position and width (Gaussian core, ``fit_peak``), the batch
mean and standard deviation, the jet multiplicity (pT > 15 GeV) up to three jets, and with pile-up the missing
pT in the low and high pile-up halves (Fig. 8). Writes ``RUN/metrics.json`` (``width`` and ``mass``, each with
``truth``, ``with_terms``, ``without_terms`` in GeV), ``RUN/peak.{md,csv}``, ``RUN/njets.{md,csv}``,
``RUN/met_pileup.{md,csv}`` (with pile-up), ``RUN/fig7.{png,pdf}`` and ``RUN/fig8.{png,pdf}`` (with pile-up).
Each GAN is a run folder ``RUN/<variant>/r<k>``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize

from gan4hep import plotting, training
from gan4hep.physics import pair_mass
from gan4hep.preprocessing import Pipeline, Standardise
from gan4hep.recipes import to_dict
from gan4hep.runs import Run

from papers.butter_plehn import data, model, published, report
from papers.butter_plehn.recipe import Zll

PART = "zll"
VARIANTS = ("with_terms", "without_terms")
JET_PT_MIN = published.ZLL["jet_pt_min_gev"]


def stored_lambdas(run: Run) -> tuple[float, float]:
    """(lambda_m, lambda_sigma) stored in a trained variant's recipe (they do not enter a without-terms GAN, but
    its run folder's recipe holds them)."""
    stored = run.recipe()
    return float(stored["lambda_m"]), float(stored["lambda_sigma"])


def fit_peak(m: np.ndarray, iterations: int = 4, n_sigma: float = 2.0) -> tuple[float, float]:
    """Position and width [GeV] of the Gaussian core of a mass peak.

    Starting from the median and 1.4826 x the median absolute deviation, a Gaussian is fitted (least squares, to
    a 40-bin histogram with Poisson errors) inside position +- ``n_sigma`` width, ``iterations`` times, each
    time in the window of the previous fit.

    Args:
        m: ``(n,)`` masses [GeV].

    Returns:
        ``(position, width)`` [GeV] (the fitted mean and standard deviation of the core).

    Raises:
        ValueError: fewer than 50 finite values.
    """
    m = np.asarray(m, dtype=np.float64)
    m = m[np.isfinite(m)]
    if m.size < 50:
        raise ValueError(f"fit_peak needs at least 50 values, got {m.size}")
    mu = float(np.median(m))
    sigma = float(1.4826 * np.median(np.abs(m - mu))) or 1.0
    for _ in range(iterations):
        lo, hi = mu - n_sigma * sigma, mu + n_sigma * sigma
        counts, edges = np.histogram(m, 40, (lo, hi))
        centres = 0.5 * (edges[1:] + edges[:-1])
        err = np.sqrt(np.maximum(counts, 1.0))

        def gauss(x, a, c, s):
            return a * np.exp(-0.5 * ((x - c) / s) ** 2)

        try:
            (a, mu_new, s_new), _ = optimize.curve_fit(gauss, centres, counts, p0=(counts.max(), mu, sigma),
                                                       sigma=err, maxfev=5000)
        except RuntimeError:
            break
        if not (np.isfinite(mu_new) and np.isfinite(s_new)) or abs(s_new) <= 0:
            break
        mu, sigma = float(mu_new), float(abs(s_new))
    return mu, sigma


def mll(x: np.ndarray, names) -> np.ndarray:
    """m_ll [GeV] of ``(n, d)`` events in physical units (massless muons)."""
    c = {n: x[:, i] for i, n in enumerate(names)}
    return pair_mass(c["mu0_pt"], c["mu1_pt"], c["mu0_eta"] - c["mu1_eta"], c["mu0_phi"] - c["mu1_phi"])


def n_jets(x: np.ndarray, names, pt_min: float = JET_PT_MIN) -> np.ndarray:
    """Number of jets with pT > ``pt_min`` [GeV] among the five jet slots."""
    cols = [i for i, n in enumerate(names) if n.startswith("jet") and n.endswith("_pt")]
    return (x[:, cols] > pt_min).sum(axis=1)


def train_variant(recipe: Zll, run: Run, train: np.ndarray, pipeline, names, targets, seed: int,
                  verbose: int = 0) -> np.ndarray:
    """Train one GAN (``targets``: (m_Z, sigma_Z) or None for no terms) and return ``recipe.n_generate`` events
    in physical units (cached in the run folder)."""
    run.start({**to_dict(recipe), "targets": None if targets is None else list(targets), "run_seed": seed})
    cached = run / "generated.npy"
    if cached.exists() and run.results().get("trained_steps") == recipe.steps:
        return np.load(cached)
    run.save_preprocessing(pipeline)
    mass, width = targets if targets is not None else (None, None)
    trained = training.train(lambda: model.build_zll_gan(recipe, pipeline, names, mass, width),
                             pipeline.transform(train).astype(np.float32), run, steps=recipe.steps,
                             batch_size=recipe.batch_size, seed=seed, steps_per_epoch=min(recipe.steps, 500),
                             keep_checkpoints=1, verbose=verbose)
    gen = trained.model.sample(recipe.n_generate, seed=seed + 1)
    np.save(cached, gen.astype(np.float32))
    return gen


def peak_table(truth_m: np.ndarray, gens: dict[str, list[np.ndarray]], names) -> pd.DataFrame:
    """Fitted peak position and width, and batch mean and standard deviation of m_ll [GeV]: truth (test
    events), and each variant (mean and std over repeats)."""
    rows = []
    pos, wid = fit_peak(truth_m)
    rows.append({"sample": "truth (test)", "peak position": pos, "peak width": wid, "position std": 0.0,
                 "width std": 0.0, "mean m_ll": truth_m.mean(), "std m_ll": truth_m.std(), "repeats": 1})
    for variant, xs in gens.items():
        fits = np.array([fit_peak(mll(x, names)) for x in xs])
        ms = [mll(x, names) for x in xs]
        rows.append({"sample": variant, "peak position": fits[:, 0].mean(), "peak width": fits[:, 1].mean(),
                     "position std": fits[:, 0].std(), "width std": fits[:, 1].std(),
                     "mean m_ll": np.mean([m.mean() for m in ms]), "std m_ll": np.mean([m.std() for m in ms]),
                     "repeats": len(xs)})
    df = pd.DataFrame(rows)
    df["width / truth"] = df["peak width"] / wid
    return df


def njet_table(test: np.ndarray, gens: dict[str, list[np.ndarray]], names) -> pd.DataFrame:
    """Fractions of events with 0, 1, 2, 3 and >= 4 jets above 15 GeV."""
    rows = []
    for label, xs in {"truth (test)": [test], **gens}.items():
        counts = np.mean([np.bincount(np.minimum(n_jets(x, names), 4), minlength=5) / len(x) for x in xs], axis=0)
        rows.append({"sample": label, **{("N_j >= 4" if j == 4 else f"N_j = {j}"): counts[j] for j in range(5)}})
    return pd.DataFrame(rows)


def met_table(test: np.ndarray, gens: dict[str, list[np.ndarray]], names) -> pd.DataFrame:
    """Mean and standard deviation of the missing pT [GeV] in the low and high pile-up halves (split at the truth's
    median number of primary vertices): Fig. 8."""
    i_pv, ix, iy = (list(names).index(c) for c in ("n_pv", "met_x", "met_y"))
    cut = np.median(test[:, i_pv])
    rows = []
    for label, xs in {"truth (test)": [test], **gens}.items():
        for half, sel in (("low", lambda x: x[:, i_pv] <= cut), ("high", lambda x: x[:, i_pv] > cut)):
            met = [np.hypot(x[sel(x), ix], x[sel(x), iy]) for x in xs]
            rows.append({"sample": label, "pile-up": f"{half} (n_pv {'<=' if half == 'low' else '>'} {cut:g})",
                         "mean MET": np.mean([m.mean() for m in met]), "std MET": np.mean([m.std() for m in met])})
    return pd.DataFrame(rows)


def write_figures(run: Run, test: np.ndarray, gens, names, recipe: Zll, prov: dict) -> None:
    """Fig. 7 (m_ll, N_jets, leading muon and jet pT) and, with pile-up, Fig. 8 (MET in low / high pile-up)."""
    import matplotlib.pyplot as plt

    first = {v: xs[0] for v, xs in gens.items()}
    idx = {n: i for i, n in enumerate(names)}
    fig, axes = plt.subplots(2, 2, figsize=(13, 12))
    fig.subplots_adjust(hspace=0.45, wspace=0.3)
    plotting.hist_ratio(mll(test, names), {v: mll(x, names) for v, x in first.items()},
                        bins=np.linspace(recipe.m_min, recipe.m_max, 61), xlabel=r"$m_{\mu\mu}$ [GeV]",
                        ax=axes[0, 0], ref_label="truth", show_means=False)
    edges = np.arange(-0.5, 6.5)
    axes[0, 1].hist(n_jets(test, names), edges, density=True, histtype="step", color="black", label="truth")
    for v, x in first.items():
        axes[0, 1].hist(n_jets(x, names), edges, density=True, histtype="step", label=v)
    axes[0, 1].set_yscale("log")
    axes[0, 1].set_xlabel(rf"$N_j$ ($p_T > {JET_PT_MIN:g}$ GeV)")
    axes[0, 1].legend(fontsize="small")
    axes[0, 1].set_title(f"preset {prov['preset']}, seed {prov['seed']}", fontsize="small")
    plotting.hist_ratio(test[:, idx["mu0_pt"]], {v: x[:, idx["mu0_pt"]] for v, x in first.items()},
                        bins=np.linspace(20, 120, 51), xlabel=r"$p_{T,\mu_1}$ [GeV]", ax=axes[1, 0],
                        ref_label="truth", show_means=False)
    plotting.hist_ratio(test[:, idx["jet0_pt"]], {v: x[:, idx["jet0_pt"]] for v, x in first.items()},
                        bins=np.linspace(-10, 150, 65), xlabel=r"$p_{T,j_1}$ [GeV] (0: no jet)", ax=axes[1, 1],
                        ref_label="truth", show_means=False, logy=True)
    plotting.save_figure(fig, run / "fig7")
    if "n_pv" in idx:
        cut = np.median(test[:, idx["n_pv"]])
        fig, axes = plt.subplots(1, 2, figsize=(13, 6))
        fig.subplots_adjust(wspace=0.3)
        for ax, (half, op) in zip(axes, (("low", np.less_equal), ("high", np.greater))):
            sel = {"truth": test[op(test[:, idx["n_pv"]], cut)],
                   **{v: x[op(x[:, idx["n_pv"]], cut)] for v, x in first.items()}}
            met = {k: np.hypot(v[:, idx["met_x"]], v[:, idx["met_y"]]) for k, v in sel.items()}
            truth = met.pop("truth")
            plotting.hist_ratio(truth, met, bins=np.linspace(0, 100, 41), xlabel=r"$E_T^{miss}$ [GeV]", ax=ax,
                                ref_label=f"truth, {half} pile-up", show_means=False)
        plotting.save_figure(fig, run / "fig8")


def main(argv=None) -> dict:
    """The command line (``--preset --out --seed``, ``--steps --events --repeats --jobs``); returns the
    metrics."""
    p = report.parser(__doc__)
    p.add_argument("--steps", type=int)
    p.add_argument("--events", type=int, help="generated Pythia events")
    p.add_argument("--repeats", type=int)
    p.add_argument("--lambda-m", type=float, help="lambda_m of Eq. (19) [1/GeV^2] (paper: 1e-4)")
    p.add_argument("--lambda-sigma", type=float, help="lambda_sigma of Eq. (19) [1/GeV^2] (paper: 1e-4)")
    p.add_argument("--without-from", type=Path, default=None,
                   help="reuse the without-terms GANs of this earlier zll run folder (same sample and networks; "
                        "the terms' lambdas do not enter them)")
    p.add_argument("--jobs", type=int, default=1, help="processes for the Pythia sample")
    p.add_argument("--verbose", type=int, default=0)
    args = p.parse_args(argv)
    run, recipe = report.start(args, PART, steps=args.steps, events=args.events, repeats=args.repeats,
                               lambda_m=args.lambda_m, lambda_sigma=args.lambda_sigma)
    prov = report.provenance(recipe, PART, None if args.resume else args.preset)
    t0 = time.time()
    table, path = data.zll_sample(recipe, jobs=args.jobs)
    names = data.zll_features(recipe)
    tr, te = data.split(len(table), recipe.test_fraction, recipe.seed)
    x = table[list(names)].to_numpy(np.float64)
    train, test = x[tr], x[te]
    m_train = mll(train, names)
    targets = (float(m_train.mean()), float(m_train.std()))
    pipeline = Pipeline([Standardise()]).fit(train)
    print(f"{path}: {len(table)} selected events ({len(train)} train, {len(test)} test); targets m_Z = "
          f"{targets[0]:.2f} GeV, sigma_Z = {targets[1]:.2f} GeV (batch mean / std of m_ll)", flush=True)
    gens = {}
    for variant in VARIANTS:
        gens[variant] = []
        for k in range(recipe.repeats):
            seed = int(np.random.SeedSequence([recipe.seed, k]).generate_state(1)[0] % 2**31)  # same per variant
            folder = run / variant / f"r{k:03d}"
            if variant == "without_terms" and args.without_from is not None:
                folder = Path(args.without_from) / variant / f"r{k:03d}"
                if not (folder / "generated.npy").exists():
                    raise SystemExit(f"zll.py: error: {folder} holds no finished without-terms GAN")
                lam_m, lam_s = stored_lambdas(Run(folder))
                recipe_k = dataclasses.replace(recipe, lambda_m=lam_m, lambda_sigma=lam_s)
            else:
                recipe_k = recipe
            gens[variant].append(train_variant(recipe_k, Run(folder), train, pipeline, names,
                                               targets if variant == "with_terms" else None, seed, args.verbose))
            print(f"{variant} repeat {k}: peak {fit_peak(mll(gens[variant][-1], names))} "
                  f"({time.time() - t0:.0f} s)", flush=True)
    peak = peak_table(mll(test, names), gens, names)
    print(report.write_table(peak, run, "peak", prov,
                             "Z peak of m_ll [GeV] (review: without the terms the width is ~2x too wide)"))
    print(report.write_table(njet_table(test, gens, names), run, "njets", prov,
                             f"Jet multiplicity, pT > {JET_PT_MIN:g} GeV (fractions)"))
    if "n_pv" in names:
        print(report.write_table(met_table(test, gens, names), run, "met_pileup", prov,
                                 "Missing pT in low and high pile-up [GeV] (Fig. 8)"))
    write_figures(run, test, gens, names, recipe, prov)
    rows = peak.set_index("sample")
    key = {"truth": "truth (test)", "with_terms": "with_terms", "without_terms": "without_terms"}
    out = {"width": {k: float(rows.loc[v, "peak width"]) for k, v in key.items()},
           "mass": {k: float(rows.loc[v, "peak position"]) for k, v in key.items()},
           "batch_std": {k: float(rows.loc[v, "std m_ll"]) for k, v in key.items()},
           "targets": {"m_z": targets[0], "sigma_z": targets[1]},
           "width_ratio_without_over_truth": float(rows.loc["without_terms", "width / truth"]),
           "width_ratio_with_over_truth": float(rows.loc["with_terms", "width / truth"]),
           "repeats": recipe.repeats, "sample": str(path), "events_selected": int(len(table)),
           "features": list(names), "published": published.ZLL, "seconds": time.time() - t0,
           "definitions": {"width": "sigma of a Gaussian fitted to the m_ll core (fit_peak)",
                           "mass": "mean of that Gaussian", "batch_std": "standard deviation of all m_ll"}}
    report.write_metrics(run, out, prov)
    return out


if __name__ == "__main__":
    main()
