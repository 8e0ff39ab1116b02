"""GANplification on the 1-d camel back: the review's Fig. 1 (R Sec. 2; Butter, Diefenbacher, Kasieczka, Nachman &
Plehn, arXiv:2008.06545).

    python papers/butter_plehn/camel.py --preset quick --out runs/bp_camel --seed 1

For each training size ``n_train`` (the review: 100) and each of ``repeats`` seeds: draw the training sample from
the camel back, fit the 5 parameters by maximum likelihood, train a GAN on the sample and generate 1e6 events.
The quantile error (20 truth quantiles; ``gan4hep.metrics.quantile_error``) of the sample, the fit (its exact
probabilities) and the first N GAN events, averaged over the seeds, is converted into the number of events
sampled from the truth that has the same expected error (``expected_quantile_error``: (n_q - 1) / (n_q^2 N)):
the amplification factor is that number over ``n_train``. Its spread is the bootstrap standard deviation over
the seeds.

Writes ``RUN/metrics.json`` (``amplification.{fit,gan,sample}.{mean,spread}`` for the first n_train, the same per
n_train under ``by_n_train``, ``n_train``, ``n_quantiles``), ``RUN/quantile_error.{md,csv}`` (the curve),
``RUN/amplification.{md,csv}`` and ``RUN/fig1.{png,pdf}``. Each seed's GAN is a run folder
``RUN/n<n_train>/r<k>`` (resumable; a finished one is not retrained).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd

from gan4hep import metrics, plotting, training
from gan4hep.preprocessing import Pipeline, Standardise
from gan4hep.recipes import to_dict
from gan4hep.runs import Run

from papers.butter_plehn import data, model, published, report
from papers.butter_plehn.recipe import Camel

PART = "camel"


def repeat_seed(recipe: Camel, n_train: int, k: int) -> int:
    """The seed of repeat ``k`` at training size ``n_train`` (training sample, GAN weights and noise)."""
    return int(np.random.SeedSequence([recipe.seed, n_train, k]).generate_state(1)[0] % 2**31)


def fit_quantile_error(fit: data.CamelBack, truth: data.CamelBack, n_quantiles: int) -> float:
    """Quantile error of a fitted density: its exact probabilities in the truth quantiles, through
    ``gan4hep.metrics.quantile_error`` (one point per quantile, at the quantile's median, weighted by the fit's
    probability of that quantile)."""
    edges = truth.ppf(np.arange(n_quantiles + 1) / n_quantiles)
    probs = np.diff(fit.cdf(edges))
    centres = truth.ppf((np.arange(n_quantiles) + 0.5) / n_quantiles)
    return metrics.quantile_error(centres, truth, n_quantiles, weights=probs)


def one_repeat(recipe: Camel, n_train: int, k: int, run: Run, verbose: int = 0) -> dict:
    """Train sample, fit and GAN of repeat ``k``: the quantile errors of each, the GAN's at every
    ``recipe.n_generate``. Stored in (and, when finished, read back from) ``run/results.json``."""
    run.start({**to_dict(recipe), "n_train": n_train, "repeat": k})  # RunMismatch for another recipe
    done = run.results().get("quantile_errors")
    if done is not None:
        return done
    truth = data.CamelBack.of(recipe)
    seed = repeat_seed(recipe, n_train, k)
    x = truth.sample(n_train, np.random.default_rng(seed))
    fit = data.fit_camel(x, seed=seed)
    pipeline = Pipeline([Standardise()]).fit(x[:, None])
    run.save_preprocessing(pipeline)
    batch = min(recipe.batch_size, n_train)
    trained = training.train(lambda: model.build_camel_gan(recipe, pipeline),
                             pipeline.transform(x[:, None]).astype(np.float32), run, steps=recipe.steps,
                             batch_size=batch, seed=seed, steps_per_epoch=recipe.steps, keep_checkpoints=1,
                             verbose=verbose)
    gen = trained.model.sample(max(recipe.n_generate), seed=seed + 1)[:, 0]
    out = {"sample": metrics.quantile_error(x, truth, recipe.n_quantiles),
           "fit": fit_quantile_error(fit, truth, recipe.n_quantiles),
           "gan": [metrics.quantile_error(gen[:n], truth, recipe.n_quantiles) for n in recipe.n_generate],
           "fit_parameters": dataclasses.asdict(fit)}
    run.update_results(quantile_errors=out)
    np.save(run / "generated_head.npy", gen[:100_000].astype(np.float32))
    np.save(run / "train.npy", x)
    return out


def amplification(mses: np.ndarray, n_train: int, n_quantiles: int, n_boot: int = 2000,
                  seed: int = 0) -> dict:
    """Amplification factor ``N_eq / n_train`` of quantile errors averaged over seeds, with its bootstrap spread.

    ``N_eq = (n_q - 1) / (n_q^2 <MSE>)`` (inverse of ``gan4hep.metrics.expected_quantile_error``); the mean MSE
    is taken before converting, since one small sample scatters a lot.

    Args:
        mses: ``(repeats,)`` quantile errors, one per seed.
        n_train: training events.
        n_quantiles: quantiles of the error.

    Returns:
        ``{"mean": amplification of the mean MSE, "spread": bootstrap std over seeds, "equivalent_events": N_eq,
        "mse": mean MSE, "repeats": len(mses)}``.
    """
    mses = np.asarray(mses, dtype=np.float64)
    unit = metrics.expected_quantile_error(1, n_quantiles)  # E[MSE] * N
    rng = np.random.default_rng(seed)
    boot = mses[rng.integers(0, len(mses), (n_boot, len(mses)))].mean(axis=1)
    amp = unit / mses.mean() / n_train
    return {"mean": float(amp), "spread": float(np.std(unit / boot / n_train)) if len(mses) > 1 else float("nan"),
            "equivalent_events": float(unit / mses.mean()), "mse": float(mses.mean()), "repeats": int(len(mses))}


def summarise(recipe: Camel, results: dict[int, list[dict]]) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """The amplification factors per n_train and the quantile-error curve (mean and standard error over seeds).

    Args:
        results: ``{n_train: [one_repeat output, ...]}``.

    Returns:
        (``{n_train: {"sample", "fit", "gan": amplification()}}``, the amplification table, the curve table).
    """
    amps, rows, curve = {}, [], []
    for n_train, reps in results.items():
        a = {name: amplification([r[name] for r in reps], n_train, recipe.n_quantiles)
             for name in ("sample", "fit")}
        gan = np.array([r["gan"] for r in reps])  # (repeats, len(n_generate))
        a["gan"] = amplification(gan[:, -1], n_train, recipe.n_quantiles)
        amps[n_train] = a
        for name, v in a.items():
            rows.append({"n_train": n_train, "model": name, "amplification": v["mean"], "spread": v["spread"],
                         "equivalent events": v["equivalent_events"], "mean quantile MSE": v["mse"],
                         "seeds": v["repeats"]})
        for j, n in enumerate(recipe.n_generate):
            curve.append({"n_train": n_train, "N generated": n, "GAN MSE": gan[:, j].mean(),
                          "GAN MSE std. error": gan[:, j].std(ddof=1) / np.sqrt(len(gan)) if len(gan) > 1 else np.nan,
                          "truth sample E[MSE]": metrics.expected_quantile_error(n, recipe.n_quantiles),
                          "fit MSE": a["fit"]["mse"]})
    return amps, pd.DataFrame(rows), pd.DataFrame(curve)


def write_figure(recipe: Camel, run: Run, amps: dict, curve: pd.DataFrame, prov: dict) -> None:
    """Fig. 1: left, truth, the first seed's training sample, its fit and GAN events (first n_train); right, the
    quantile error against the number of events for sampling (expectation), the fit and the GAN (per n_train)."""
    import matplotlib.pyplot as plt

    truth = data.CamelBack.of(recipe)
    n0 = recipe.n_train[0]
    first = Run(run / f"n{n0}" / "r000")
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.5))
    xs = np.linspace(truth.ppf(1e-4)[0], truth.ppf(1 - 1e-4)[0], 400)
    ax.plot(xs, truth.pdf(xs), color="black", label="truth")
    if (first / "train.npy").exists():
        x = np.load(first / "train.npy")
        gen = np.load(first / "generated_head.npy")
        fit = data.CamelBack(**first.results()["quantile_errors"]["fit_parameters"])
        ax.hist(x, bins=20, density=True, histtype="step", color="tab:blue", label=f"{n0} sampled points")
        ax.plot(xs, fit.pdf(xs), color="tab:green", label="5-parameter fit")
        ax.hist(gen, bins=80, range=(xs[0], xs[-1]), density=True, histtype="step", color="tab:orange",
                label="GAN")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    ns = np.array(recipe.n_generate, dtype=float)
    bx.plot(ns, [metrics.expected_quantile_error(n, recipe.n_quantiles) for n in ns], color="tab:blue",
            label="sampling (expected)")
    for i, n_train in enumerate(recipe.n_train):
        c = curve[curve["n_train"] == n_train]
        ls = "-" if i == 0 else "--"
        bx.axhline(amps[n_train]["fit"]["mse"], color="tab:green", ls=ls, label=f"fit, {n_train} points")
        bx.errorbar(c["N generated"], c["GAN MSE"], yerr=c["GAN MSE std. error"], color="tab:orange", ls=ls,
                    marker="o", ms=3, label=f"GAN, {n_train} points")
        bx.plot([n_train], [amps[n_train]["sample"]["mse"]], "s", color="tab:blue")
    bx.set_xscale("log")
    bx.set_yscale("log")
    bx.set_xlabel("number of events")
    bx.set_ylabel(f"quantile error ({recipe.n_quantiles} quantiles)")
    bx.set_title(f"preset {prov['preset']}, {amps[n0]['gan']['repeats']} seeds", fontsize="small")
    bx.legend(fontsize="small")
    plotting.save_figure(fig, run / "fig1")


def main(argv=None) -> dict:
    """The command line (``--preset --out --seed``, ``--repeats --steps --n-train``); returns the metrics."""
    p = report.parser(__doc__)
    p.add_argument("--repeats", type=int, help="seeds per training size (preset: quick 10, paper 50)")
    p.add_argument("--steps", type=int, help="GAN generator updates")
    p.add_argument("--n-train", type=int, nargs="+", help="training sizes (preset: 100 1000)")
    p.add_argument("--verbose", type=int, default=0)
    args = p.parse_args(argv)
    run, recipe = report.start(args, PART, repeats=args.repeats, steps=args.steps,
                               n_train=tuple(args.n_train) if args.n_train else None)
    prov = report.provenance(recipe, PART, None if args.resume else args.preset)
    t0 = time.time()
    results = {}
    for n_train in recipe.n_train:
        results[n_train] = []
        for k in range(recipe.repeats):
            results[n_train].append(one_repeat(recipe, n_train, k, Run(run / f"n{n_train}" / f"r{k:03d}"),
                                               args.verbose))
            print(f"n_train {n_train} seed {k}: quantile MSE sample {results[n_train][-1]['sample']:.2e}, fit "
                  f"{results[n_train][-1]['fit']:.2e}, GAN {results[n_train][-1]['gan'][-1]:.2e} "
                  f"({time.time() - t0:.0f} s)", flush=True)
    amps, table, curve = summarise(recipe, results)
    n0 = recipe.n_train[0]
    print(report.write_table(table, run, "amplification", prov,
                             f"Amplification factors (GAN at {max(recipe.n_generate)} events; review: fit ~"
                             f"{published.CAMEL['fit_amplification']}, GAN ~{published.CAMEL['gan_amplification']})"))
    report.write_table(curve, run, "quantile_error", prov, "Quantile error against the number of events")
    write_figure(recipe, run, amps, curve, prov)
    out = {"amplification": {k: {"mean": v["mean"], "spread": v["spread"]} for k, v in amps[n0].items()},
           "by_n_train": {str(k): v for k, v in amps.items()}, "n_train": n0, "n_quantiles": recipe.n_quantiles,
           "repeats": recipe.repeats, "spread_definition": "bootstrap std over seeds of the amplification of the "
                                                           "seed-averaged quantile MSE",
           "published": published.CAMEL, "seconds": time.time() - t0}
    report.write_metrics(run, out, prov)
    return out


if __name__ == "__main__":
    main()
