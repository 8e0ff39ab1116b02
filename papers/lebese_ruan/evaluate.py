"""Regenerate Table 1 and Figs. 3-5 of Lebese & Ruan from a trained run folder.

    python papers/lebese_ruan/evaluate.py --run runs/lebese_ruan_quick

The model is rebuilt from the run's own recipe (model.build_gan) with the checkpoint selected on the validation MC
(best.npz) and compared with the held-out test MC (test_mc.parquet). One function per artefact:

| artefact | function |
| --- | --- |
| Table 1: ``table1.csv``, ``table1.md`` | ``write_table1`` |
| Fig. 3, histograms with mean lines and ratio: ``fig3.png/.pdf`` | ``write_fig3`` |
| Fig. 4, cumulative distributions: ``fig4.png/.pdf`` | ``write_fig4`` |
| Fig. 5, correlation matrices MC, GAN and difference: ``fig5.png/.pdf`` | ``write_fig5`` |
| every number of the comparison: ``metrics.json`` (headline numbers also in ``results.json``) | ``write_metrics`` |
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from gan4hep import metrics, plotting
from gan4hep.io import atomic_path, markdown_table, write_json
from gan4hep.models import GAN
from gan4hep.recipes import deviations, from_dict
from gan4hep.runs import Run

from papers.lebese_ruan import data, model, published
from papers.lebese_ruan.model import FEATURES
from papers.lebese_ruan.recipe import PAPER, Recipe, preset_name

LABELS = {"pt_l0": r"$p_T^{\ell_0}$ [GeV]", "pt_l1": r"$p_T^{\ell_1}$ [GeV]", "pt_ll": r"$p_T^{\ell\ell}$ [GeV]",
          "m_ll": r"$m_{\ell\ell}$ [GeV]", "met": r"$E_T^{miss}$ [GeV]", "mt": r"$m_T$ [GeV]",
          "dphi_ll": r"$\Delta\phi^{\ell\ell}$ [rad]", "dr_ll": r"$\Delta R^{\ell\ell}$"}


def load_run(run: Run) -> tuple[GAN, Recipe]:
    """The run's GAN, rebuilt from its recipe, preprocessing and kinematic ranges, with the selected
    (best-on-validation) weights, and the recipe.

    Raises:
        FileNotFoundError: not a run folder, or no checkpoint yet.
    """
    recipe = from_dict(Recipe, run.recipe(), base=PAPER)
    gan = model.build_gan(recipe, run.load_preprocessing(), model.load_kinematics(run))
    run.restore(gan)
    return gan, recipe


@dataclasses.dataclass
class Comparison:
    """The selected generator against the test MC; every number the artefacts show.

    Attributes:
        test, validation, generated: ``(n, 8)`` events in physical units.
        report: ``gan4hep.metrics.fidelity_report`` of test MC vs generated (one row per feature).
        table: Table 1 (``table1``).
        separation: per-feature separation power (50 bins).
        floor: the same numbers for validation vs test MC: the level MC statistics can resolve.
    """

    test: np.ndarray
    validation: np.ndarray
    generated: np.ndarray
    report: pd.DataFrame
    table: pd.DataFrame
    separation: np.ndarray
    floor: dict

    @property
    def worst_rmd(self) -> float:
        return float(self.table["relative difference"].max())

    @property
    def worst_ks(self) -> float:
        return float(self.table["KS"].max())

    @property
    def auc(self) -> tuple[float, float]:
        return self.report.attrs["classifier_auc"], self.report.attrs["classifier_auc_uncertainty"]


def table1(report: pd.DataFrame) -> pd.DataFrame:
    """Table 1 from a fidelity report of the test MC vs the GAN: the paper's columns, shape metrics, and the
    published columns (labelled as such)."""
    rows = []
    for name, r in report.iterrows():
        pub = published.TABLE1[name]
        rows.append({
            "feature": name, "MC mean": r["mean_ref"], "GAN mean": r["mean_gen"],
            "relative difference": r["relative_mean_difference"], "KS": r["ks"],
            "W1 / std(MC)": r["wasserstein_over_std"], "published MC mean": pub["mc"],
            "published WGAN-GP mean": pub["wgan_gp"], "published relative difference": pub["rel_diff"],
            "MC mean / published MC mean": r["mean_ref"] / pub["mc"],
        })
    return pd.DataFrame(rows)


def compare(gan: GAN, test: np.ndarray, validation: np.ndarray, seed: int = 12345,
            n_generated: int = 20000) -> Comparison:
    """Draw ``max(len(test), n_generated)`` events (cheap: the MC sets the statistical precision) and compute
    every metric of the artefacts.

    Raises:
        RuntimeError: the generator emits non-finite numbers.
    """
    gen = gan.sample(max(len(test), n_generated), seed=seed, physical=False)
    if not np.all(np.isfinite(gen)):
        raise RuntimeError("the selected generator produced non-finite events")
    gen = gan.preprocessing.inverse_transform(gen)
    report = metrics.fidelity_report(test, gen, list(FEATURES), seed=seed, n_splits=5)
    c2st = metrics.classifier_two_sample_test(test, validation, n_splits=5, seed=seed)
    floor = {"worst_relative_mean_difference": float(np.max(metrics.relative_mean_difference(test, validation))),
             "worst_ks": float(np.max(metrics.ks_statistic(test, validation))),
             "classifier_auc": c2st["auc"], "classifier_auc_uncertainty": c2st["auc_uncertainty"]}
    return Comparison(test, validation, gen, report, table1(report),
                      metrics.separation_power(test, gen, bins=50), floor)


def write_table1(run: Run, comparison: Comparison, recipe: Recipe) -> Path:
    """Table 1 as ``table1.csv`` and ``table1.md`` (with the run's description, its deviations from the paper,
    and the shape metrics and MC floor under the table); returns the Markdown path."""
    results, counts, c = run.results(), data.load_counts(run), comparison
    seconds = results.get("train_seconds")
    took = "unknown time" if seconds is None else f"{seconds / 60:.1f} min"
    if results.get("resumed_from"):
        took += f", resumed at step {results['resumed_from']}"
    ema = f"EMA {recipe.ema_decay}" if recipe.ema_decay else "no EMA"
    header = [
        f"# Lebese & Ruan Table 1, reproduced (preset: {preset_name(recipe)})",
        "",
        f"preset **{preset_name(recipe)}**, generator **{recipe.generator}**, objective {recipe.objective}, "
        f"{results.get('trained_steps')} generator iterations ({took}), n_critic {recipe.n_critic}, {ema}, "
        f"tail treatment {recipe.tail_treatment}; {counts.get('n_train')} training / {counts.get('n_val')} "
        f"validation / {counts.get('n_test')} test MC events; checkpoint at step {results.get('selected_step')} "
        f"selected by worst-feature {recipe.select_by} on the validation MC (never the test MC). Table computed on "
        f"the test MC vs {len(c.generated)} generated events.",
        f"Made {datetime.date.today().isoformat()} on {platform.node() or 'unknown'} ({platform.machine()}).",
    ]
    differs = deviations(recipe, PAPER)
    if differs:
        header += ["", "Differs from the paper: " + "; ".join(differs) + "."]
    pub_worst = max(v["rel_diff"] for v in published.TABLE1.values())
    auc, auc_err = c.auc
    floor = c.floor
    footer = [
        f"Worst relative mean difference: {c.worst_rmd:.4f} (published worst: {pub_worst:.3f}); "
        f"{'meets' if c.worst_rmd <= pub_worst else 'DOES NOT meet'} the paper's level.",
        f"Worst KS: {c.worst_ks:.4f}. Classifier two-sample test on all 8 features (boosted trees, ROC AUC on "
        f"held-out halves, 0.5 = indistinguishable): AUC = {auc:.3f} +- {auc_err:.3f}.",
        f"Largest |Pearson correlation difference|: {c.report.attrs['max_abs_correlation_difference']:.3f}.",
        f"MC statistical floor (validation MC vs test MC, {len(c.validation)} vs {len(c.test)} events): worst "
        f"relative mean difference {floor['worst_relative_mean_difference']:.4f}, worst KS {floor['worst_ks']:.4f}, "
        f"classifier AUC {floor['classifier_auc']:.3f} +- {floor['classifier_auc_uncertainty']:.3f}.",
        "Published columns are from the paper's Table 1, for comparison only; " + published.NOTE,
    ]
    with atomic_path(run / "table1.csv") as tmp:
        c.table.to_csv(tmp, index=False)
    with atomic_path(run / "table1.md") as tmp:
        tmp.write_text("\n".join(header + ["", markdown_table(c.table)] + footer) + "\n")
    return run / "table1.md"


def _frames(comparison: Comparison) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (pd.DataFrame(comparison.test, columns=FEATURES), pd.DataFrame(comparison.generated, columns=FEATURES))


def write_fig3(run: Run, comparison: Comparison, recipe: Recipe) -> list[Path]:
    """Fig. 3: per-feature histograms of MC and GAN with their mean lines and a ratio panel (fig3.png/.pdf)."""
    ref, gen = _frames(comparison)
    fig, _ = plotting.grid_hist_ratio(ref, gen, list(FEATURES), labels=[LABELS[f] for f in FEATURES], bins=40,
                                      ref_label="MC", gen_label=f"WGAN-GP ({recipe.generator})", show_means=True)
    return plotting.save_figure(fig, run / "fig3")


def write_fig4(run: Run, comparison: Comparison) -> list[Path]:
    """Fig. 4: per-feature cumulative distributions of MC and GAN (fig4.png/.pdf)."""
    ref, gen = _frames(comparison)
    fig = plotting.grid_cdf_plot(ref, gen, list(FEATURES), labels=[LABELS[f] for f in FEATURES], ref_label="MC",
                                 gen_label="WGAN-GP")
    return plotting.save_figure(fig, run / "fig4")


def write_fig5(run: Run, comparison: Comparison) -> list[Path]:
    """Fig. 5: Pearson correlation matrices of MC, GAN and their difference (fig5.png/.pdf)."""
    fig, _ = plotting.correlation_heatmaps(comparison.test, comparison.generated, names=list(FEATURES))
    return plotting.save_figure(fig, run / "fig5")


def write_metrics(run: Run, comparison: Comparison, recipe: Recipe) -> dict:
    """metrics.json: per-feature relative mean difference, KS, W1 (absolute and over the MC std) and separation
    power, the classifier AUC, the correlation difference, the MC floor and the selection; the headline numbers
    also go to results.json (``table1``). Returns the metrics."""
    c, results = comparison, run.results()
    auc, auc_err = c.auc
    out = {
        "preset": preset_name(recipe), "generator": recipe.generator, "objective": recipe.objective,
        "features": {name: {"relative_mean_difference": float(c.table["relative difference"][i]),
                            "ks": float(c.table["KS"][i]), "wasserstein_over_std": float(c.table["W1 / std(MC)"][i]),
                            "wasserstein": float(c.report["wasserstein"].iloc[i]),
                            "separation_power": float(c.separation[i])}
                     for i, name in enumerate(FEATURES)},
        "worst_relative_mean_difference": c.worst_rmd, "worst_ks": c.worst_ks,
        "classifier_auc": auc, "classifier_auc_uncertainty": auc_err,
        "max_abs_correlation_difference": float(c.report.attrs["max_abs_correlation_difference"]),
        "mc_floor": c.floor, "n_generated": len(c.generated),
        "selected_checkpoint": results.get("selected_step"), "select_by": recipe.select_by,
        "selection_sample": "validation MC", "table_sample": "test MC", "n_test": len(c.test),
        "trained_steps": results.get("trained_steps"), "train_seconds": results.get("train_seconds"),
    }
    write_json(out, run / "metrics.json")
    run.update_results(table1={k: out[k] for k in ("worst_relative_mean_difference", "worst_ks", "classifier_auc",
                                                   "classifier_auc_uncertainty")})
    return out


def evaluate_run(run, seed: int = 12345, n_generated: int = 20000) -> dict:
    """Every artefact of the run folder ``run``: Table 1, Figs. 3-5, metrics.json; prints Table 1 and returns the
    metrics."""
    run = Run(run)
    gan, recipe = load_run(run)
    test, validation = data.load_mc(run)
    comparison = compare(gan, test, validation, seed=seed, n_generated=n_generated)
    table = write_table1(run, comparison, recipe)
    write_fig3(run, comparison, recipe)
    write_fig4(run, comparison)
    write_fig5(run, comparison)
    result = write_metrics(run, comparison, recipe)
    print(table.read_text())
    return result


def main(argv: list[str] | None = None) -> None:
    """Every artefact of ``--run`` (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="run folder written by train.py")
    p.add_argument("--seed", type=int, default=12345, help="seed of the generated sample")
    args = p.parse_args(argv)
    evaluate_run(args.run, seed=args.seed)


if __name__ == "__main__":
    main()
