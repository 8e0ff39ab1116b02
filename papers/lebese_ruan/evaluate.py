"""Regenerate Table 1 and Figs. 3-5 of Lebese & Ruan from a trained run folder.

    python papers/lebese_ruan/evaluate.py --run runs/lebese_ruan_quick

Uses the checkpoint selected on the validation MC (best.npz) and the held-out test MC (test_mc.parquet); writes
table1.csv/.md, fig3/fig4/fig5 (PNG+PDF) and metrics.json into the run folder.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from gan4hep import metrics, plotting  # noqa: E402
from gan4hep.callbacks import latest_checkpoint  # noqa: E402
from gan4hep.io import atomic_path, markdown_table, read_table, write_json  # noqa: E402
from gan4hep.preprocessing import load as load_pipeline  # noqa: E402

import published  # noqa: E402
from model import FEATURES  # noqa: E402

LABELS = {"pt_l0": r"$p_T^{\ell_0}$ [GeV]", "pt_l1": r"$p_T^{\ell_1}$ [GeV]", "pt_ll": r"$p_T^{\ell\ell}$ [GeV]",
          "m_ll": r"$m_{\ell\ell}$ [GeV]", "met": r"$E_T^{miss}$ [GeV]", "mt": r"$m_T$ [GeV]",
          "dphi_ll": r"$\Delta\phi^{\ell\ell}$ [rad]", "dr_ll": r"$\Delta R^{\ell\ell}$"}


def load_generator(run):
    """The run's GAN with the selected (best-on-validation) weights, and the config."""
    from train import build_gan

    cfg = json.loads((run / "config.json").read_text())
    gan = build_gan(cfg, load_pipeline(run / "preprocessing.json"))
    best = run / "best.npz"
    path = best if best.exists() else latest_checkpoint(run / "checkpoints")
    if path is None:
        raise FileNotFoundError(f"{run}: no best.npz and no checkpoint: has this run trained?")
    gan.load_checkpoint(path)
    return gan, cfg


def table1(report):
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


def evaluate_run(run, seed=12345, n_generated=20000):
    """Compare the selected generator with the test MC; ``n_generated`` (at least the test size) GAN events are
    drawn, since they are cheap: the statistical precision is then set by the MC."""
    run = Path(run)
    gan, cfg = load_generator(run)
    test = read_table(run / "test_mc.parquet")[list(FEATURES)].to_numpy(np.float64)
    val = read_table(run / "validation_mc.parquet")[list(FEATURES)].to_numpy(np.float64)
    gen = gan.generate(max(len(test), n_generated), seed=seed, physical=False)
    if not np.all(np.isfinite(gen)):
        raise RuntimeError(f"{run}: the selected generator produced non-finite events")
    gen = gan.preprocessing.inverse_transform(gen)
    report = metrics.fidelity_report(test, gen, list(FEATURES), seed=seed, n_splits=5)
    df = table1(report)
    c2st = {"auc": report.attrs["classifier_auc"], "auc_uncertainty": report.attrs["classifier_auc_uncertainty"]}
    corr = report.attrs["max_abs_correlation_difference"]
    sep = metrics.separation_power(test, gen, bins=50)
    worst_rmd, worst_ks = float(df["relative difference"].max()), float(df["KS"].max())
    # The same numbers for two independent MC samples (validation vs test): the floor set by MC statistics.
    floor_rmd = float(np.max(metrics.relative_mean_difference(test, val)))
    floor_ks = float(np.max(metrics.ks_statistic(test, val)))
    floor_auc = metrics.classifier_two_sample_test(test, val, n_splits=5, seed=seed)
    pub_worst = max(v["rel_diff"] for v in published.TABLE1.values())

    took = "unknown time" if cfg["train_seconds"] is None else f"{cfg['train_seconds'] / 60:.1f} min"
    if cfg.get("resumed_from"):
        took += f", resumed at step {cfg['resumed_from']}"
    header = [
        f"# Lebese & Ruan Table 1, reproduced (preset: {cfg['preset']})",
        "",
        f"preset **{cfg['preset']}**, generator **{cfg['generator']}**, objective {cfg['objective']}, "
        f"{cfg['trained_steps']} generator iterations ({took}), n_critic "
        f"{cfg['n_critic']}, EMA {cfg['ema']}, tail treatment {cfg['tail_treatment']}; "
        f"{cfg['n_train']} training / {cfg['n_val']} validation / {cfg['n_test']} test MC events; checkpoint "
        f"at step {cfg['selected_checkpoint']} selected by worst-feature {cfg['select_by']} on the validation MC "
        f"(never the test MC). Table computed on the test MC vs {len(gen)} generated events.",
        f"Made {datetime.date.today().isoformat()} on {platform.node() or 'unknown'} ({platform.machine()}).",
    ]
    if cfg.get("deviations"):
        header += ["", "Differs from the paper: " + "; ".join(cfg["deviations"]) + "."]
    footer = [
        f"Worst relative mean difference: {worst_rmd:.4f} (published worst: {pub_worst:.3f}); "
        f"{'meets' if worst_rmd <= pub_worst else 'DOES NOT meet'} the paper's level.",
        f"Worst KS: {worst_ks:.4f}. Classifier two-sample test on all 8 features (boosted trees, ROC AUC on held-out "
        f"halves, 0.5 = indistinguishable): AUC = {c2st['auc']:.3f} +- {c2st['auc_uncertainty']:.3f}.",
        f"Largest |Pearson correlation difference|: {corr:.3f}.",
        f"MC statistical floor (validation MC vs test MC, {len(val)} vs {len(test)} events): worst relative mean "
        f"difference {floor_rmd:.4f}, worst KS {floor_ks:.4f}, classifier AUC {floor_auc['auc']:.3f} +- "
        f"{floor_auc['auc_uncertainty']:.3f}.",
        "Published columns are from the paper's Table 1, for comparison only; " + published.NOTE,
    ]
    with atomic_path(run / "table1.csv") as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(run / "table1.md") as tmp:
        tmp.write_text("\n".join(header + ["", markdown_table(df)] + footer) + "\n")

    labels = [LABELS[f] for f in FEATURES]
    ref_df, gen_df = pd.DataFrame(test, columns=FEATURES), pd.DataFrame(gen, columns=FEATURES)
    fig, _ = plotting.grid_hist_ratio(ref_df, gen_df, list(FEATURES), labels=labels, bins=40, ref_label="MC",
                                      gen_label=f"WGAN-GP ({cfg['generator']})", show_means=True)
    plotting.save_figure(fig, run / "fig3")
    fig = plotting.grid_cdf_plot(ref_df, gen_df, list(FEATURES), labels=labels, ref_label="MC",
                                 gen_label="WGAN-GP")
    plotting.save_figure(fig, run / "fig4")
    fig, _ = plotting.correlation_heatmaps(test, gen, names=list(FEATURES))
    plotting.save_figure(fig, run / "fig5")

    result = {
        "preset": cfg["preset"], "generator": cfg["generator"], "objective": cfg["objective"],
        "features": {name: {"relative_mean_difference": float(df["relative difference"][i]),
                            "ks": float(df["KS"][i]), "wasserstein_over_std": float(df["W1 / std(MC)"][i]),
                            "wasserstein": float(report["wasserstein"].iloc[i]),
                            "separation_power": float(sep[i])}
                     for i, name in enumerate(FEATURES)},
        "worst_relative_mean_difference": worst_rmd, "worst_ks": worst_ks,
        "classifier_auc": c2st["auc"], "classifier_auc_uncertainty": c2st["auc_uncertainty"],
        "max_abs_correlation_difference": float(corr),
        "mc_floor": {"worst_relative_mean_difference": floor_rmd, "worst_ks": floor_ks,
                     "classifier_auc": floor_auc["auc"], "classifier_auc_uncertainty": floor_auc["auc_uncertainty"]},
        "n_generated": len(gen),
        "selected_checkpoint": cfg["selected_checkpoint"], "select_by": cfg["select_by"],
        "selection_sample": "validation MC", "table_sample": "test MC", "n_test": len(test),
        "trained_steps": cfg["trained_steps"], "train_seconds": cfg["train_seconds"],
    }
    write_json(result, run / "metrics.json")
    print((run / "table1.md").read_text())
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="run folder written by train.py")
    p.add_argument("--seed", type=int, default=12345, help="seed of the generated sample")
    args = p.parse_args(argv)
    evaluate_run(args.run, seed=args.seed)


if __name__ == "__main__":
    main()
