"""Evaluate a trained Butter, Plehn & Winterhalder run: figures, tables, metrics.json, generated events (ROOT + LHE).

    python papers/butter_plehn_winterhalder/evaluate.py --run runs/bpw_quick [--baseline runs/bpw_quick/no_mmd]

Writes into the run folder (or --out): network_parameters.csv/.md, distributions_particles / _candidates (ratio
panels), mass_peaks (with and without MMD, Breit-Wigner fits) + mass_peaks.csv/.md, width_comparison.csv/.md (with
a baseline), corr_pt_t_pt_b (review Fig. 16), momentum_conservation, tail_pt (N_tail), fidelity.csv/.md,
metrics.json, generated_events.root, generated_events.lhe.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import model as bpw  # noqa: E402
import observables as obs  # noqa: E402
import published  # noqa: E402


def _write_table(df, stem, preset, title):
    """CSV + Markdown (with the preset in the heading), printed as well."""
    from gan4hep.io import atomic_path, markdown_table

    with atomic_path(f"{stem}.csv") as tmp:
        df.to_csv(tmp, index=False)
    text = f"### {title} (preset: {preset})\n\n{markdown_table(df)}\n"
    with atomic_path(f"{stem}.md") as tmp:
        Path(tmp).write_text(text)
    print(text)


def load_gan(run):
    """Rebuild the run's GAN from config.json and load its final weights."""
    import train

    cfg = json.loads((Path(run) / "config.json").read_text())
    gan = train.build({**cfg, "jit_compile": False}, cfg["use_mmd"])
    ckpt = Path(run) / "model.npz"
    if not ckpt.exists():
        raise FileNotFoundError(f"{ckpt}: no trained model in run folder {run} (run train.py first)")
    gan.load_checkpoint(ckpt)
    return gan, cfg


def network_parameters(cfg, gan, seconds):
    from gan4hep.networks import count_trainable

    pub = published.NETWORK_PARAMETERS
    paper = {**cfg, **__import__("train").PRESETS["paper"]}
    rows = [
        ("Input dimension G", "18 (+ 6 masses in the on-shell layer)", "18 (+ 6)", pub["input_dimension_G"]),
        ("Layers", bpw.LAYERS, bpw.LAYERS, pub["layers"]),
        ("Units per layer", bpw.UNITS, bpw.UNITS, pub["units_per_layer"]),
        ("Trainable weights G", count_trainable(gan.generator), count_trainable(gan.generator),
         pub["trainable_weights_G"]),
        ("Trainable weights D", count_trainable(gan.critic), count_trainable(gan.critic), pub["trainable_weights_D"]),
        ("lambda_D", cfg["reg_weight"], 1e-3, pub["lambda_D"]),
        ("lambda_G", cfg["mmd_weight"] if cfg["use_mmd"] else 0, 1, pub["lambda_G"]),
        ("Batch size", cfg["batch_size"], paper["batch_size"], pub["batch_size"]),
        ("Epochs", cfg["steps"] // cfg["steps_per_epoch"], paper["steps"] // paper["steps_per_epoch"],
         pub["epochs"]),
        ("Iterations per epoch", cfg["steps_per_epoch"], paper["steps_per_epoch"], pub["iterations_per_epoch"]),
        ("Training time", f"{seconds / 60:.1f} min (this machine)" if seconds else "n/a", "GPU", pub["training_time"]),
        ("Size of training data", cfg["train_events"], paper["train_events"], pub["training_data_size"]),
    ]
    return pd.DataFrame(rows, columns=["parameter", "this run", "paper preset", "published (slides)"]).astype(str)


def _plot_peaks(truth, gens, fits, path):
    from gan4hep import plotting

    fig = Figure(figsize=(11, 4.5))
    axes = fig.subplots(1, 2)
    for ax, key, lo, hi, label in ((axes[0], "W", 60, 100, r"$m_W$ [GeV]"), (axes[1], "top", 150, 200,
                                                                                r"$m_t$ [GeV]")):
        edges = np.linspace(lo, hi, 81)
        for name, m in [("Truth", truth[key]), *[(n, g[key]) for n, g in gens.items()]]:
            f = fits[name][key]
            lab = f"{name}: M={f['position']:.1f}, Γ={f['width']:.2f} GeV" if np.isfinite(f["width"]) else \
                f"{name}: no peak fit"
            ax.hist(np.clip(m, lo, hi), edges, density=True, histtype="step", label=lab,
                    color="black" if name == "Truth" else None, lw=1.5)
        ax.set_xlabel(label + " (outside the range: in the end bins)")
        ax.set_ylabel("Normalised entries")
        ax.legend(fontsize="small", loc="upper left")
    fig.tight_layout()
    plotting.save_figure(fig, path)


def width_comparison(fits, mmd="GAN (MMD)", no_mmd="GAN (no MMD)", truth="Truth"):
    """Peak widths with and without MMD against the truth, per resonance and width measure.

    Two measures: the Breit-Wigner fit's FWHM (NaN where there is no peak to fit) and the interquartile range,
    defined for any distribution (equal to the FWHM for a Breit-Wigner). ``mmd_closer`` compares |width - truth|;
    a model without a fitted peak counts as farther from the truth than one with a peak (None: no truth peak).
    """
    rows = []
    for res in ("W", "top"):
        for measure, key in (("Breit-Wigner FWHM", "width"), ("interquartile range", "iqr")):
            t, a, b = fits[truth][res][key], fits[mmd][res][key], fits[no_mmd][res][key]
            da, db = abs(a - t), abs(b - t)
            if not np.isfinite(t):
                closer = None
            elif np.isfinite(da) and np.isfinite(db):
                closer = bool(da < db)
            else:
                closer = bool(np.isfinite(da))
            rows.append({"resonance": res, "measure": measure, "truth": t, "with MMD": a, "without MMD": b,
                         "|MMD - truth|": da, "|no MMD - truth|": db, "mmd_closer": closer})
    return pd.DataFrame(rows)


def _plot_correlation(truth_t, gen_t, path, pt_slice=(95.0, 105.0)):
    """pT,t1 vs pT,b1 for truth and GAN, their relative difference and a pT,b slice (review Fig. 16)."""
    from gan4hep import plotting

    xe, ye = np.linspace(0, 400, 41), np.linspace(0, 300, 31)
    ct, _, _ = np.histogram2d(truth_t.pt_t1, truth_t.pt_b1, (xe, ye))
    cg, _, _ = np.histogram2d(gen_t.pt_t1, gen_t.pt_b1, (xe, ye))
    ct, cg = ct / ct.sum(), cg / cg.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(ct > 0, (cg - ct) / ct, np.nan)
    fig = Figure(figsize=(11, 9))
    axes = fig.subplots(2, 2).ravel()
    vmax = max(ct.max(), cg.max())
    for ax, c, title in ((axes[0], ct, "Truth"), (axes[1], cg, "GAN")):
        mesh = ax.pcolormesh(xe, ye, c.T, vmin=0, vmax=vmax, cmap="viridis")
        fig.colorbar(mesh, ax=ax, label="Fraction of events")
        ax.set_title(title)
    mesh = axes[2].pcolormesh(xe, ye, rel.T, vmin=-1, vmax=1, cmap="coolwarm")
    fig.colorbar(mesh, ax=axes[2], label="(GAN - Truth) / Truth")
    axes[2].set_title("Relative difference")
    for ax in axes[:3]:
        ax.set_xlabel(r"$p_{T,t}$ [GeV]")
        ax.set_ylabel(r"$p_{T,b}$ [GeV]")
    lo, hi = pt_slice
    edges = np.linspace(0, 300, 31)
    for df, name, col in ((truth_t, "Truth", "black"), (gen_t, "GAN", "tab:red")):
        sel = df.pt_b1[(df.pt_t1 > lo) & (df.pt_t1 < hi)]
        if len(sel):
            axes[3].hist(sel, edges, density=True, histtype="step", color=col, label=f"{name} ({len(sel)} ev.)")
    axes[3].set_xlabel(rf"$p_{{T,b}}$ [GeV] at {lo:.0f} < $p_{{T,t}}$ < {hi:.0f} GeV")
    axes[3].set_ylabel("Normalised entries")
    axes[3].legend(fontsize="small")
    fig.tight_layout()
    plotting.save_figure(fig, path)
    ok = np.isfinite(rel) & (ct * 1.0 > 0)
    return float(np.nanmedian(np.abs(rel[ok]))) if ok.any() else float("nan")


def _plot_balance(truth, gens, path):
    from gan4hep import plotting

    fig = Figure(figsize=(11, 4.5))
    axes = fig.subplots(1, 2)
    edges = np.linspace(-6, 0, 61)
    for k, (ax, comp) in enumerate(zip(axes, ("x", "y"))):
        for name, x in [("Truth", truth), *gens.items()]:
            r = obs.momentum_balance(x)[k]
            ax.hist(np.log10(np.clip(r, 1e-6, 1)), edges, density=True, histtype="step", label=name,
                    color="black" if name == "Truth" else None)
        ax.set_xlabel(rf"$\log_{{10}}(|\sum p_{comp}| / \sum p_T)$  (truth exact: clipped at $10^{{-6}}$)")
        ax.set_ylabel("Normalised entries")
        ax.legend(fontsize="small")
    fig.tight_layout()
    plotting.save_figure(fig, path)


def _plot_tails(truth_t, gens_t, n_train, path):
    """N_tail(pT) = 1 - N_cum(pT) of the six quarks with the statistical uncertainty of the training sample."""
    from gan4hep import plotting

    fig = Figure(figsize=(15, 8))
    outer = fig.add_gridspec(2, 3, hspace=0.3, wspace=0.3)
    for k, name in enumerate(obs.PARTICLES):
        inner = outer[k // 3, k % 3].subgridspec(2, 1, height_ratios=(3, 1), hspace=0.05)
        ax, rax = fig.add_subplot(inner[0]), fig.add_subplot(inner[1])
        col = f"pt_{name}"
        thr = np.linspace(0, np.quantile(truth_t[col], 0.9999), 100)
        ref = obs.tail_fraction(truth_t[col], thr)
        ax.plot(thr, ref, color="black", label="Truth")
        unc = 1.0 / np.sqrt(np.maximum(ref * n_train, 1))
        rax.fill_between(thr, 1 - unc, 1 + unc, color="grey", alpha=0.3, label="training stat.")
        for gname, g in gens_t.items():
            gt = obs.tail_fraction(g[col], thr)
            line, = ax.plot(thr, gt, label=gname)
            with np.errstate(divide="ignore", invalid="ignore"):
                rax.plot(thr, np.where(ref > 0, gt / ref, np.nan), color=line.get_color())
        ax.set_yscale("log")
        ax.set_ylabel(r"$N_{tail}(p_T)$")
        ax.tick_params(labelbottom=False)
        ax.legend(fontsize="x-small")
        rax.set_ylim(0.5, 1.5)
        rax.axhline(1, color="black", lw=0.8)
        rax.set_xlabel(rf"$p_{{T,{name}}}$ [GeV]")
        rax.set_ylabel("GAN/Truth")
    plotting.save_figure(fig, path)


def evaluate_run(run, baseline=None, out=None, n_events=None, classifier=True, seed=2024):
    """Write every figure and table of the paper's comparison for the run (and its no-MMD baseline)."""
    import train
    from gan4hep import io, metrics, plotting

    run = Path(run)
    out = Path(out) if out else run
    gan, cfg = load_gan(run)
    preset = cfg["preset"]
    _, truth = train.load_events(cfg)
    n = int(n_events or len(truth))
    label = "GAN (MMD)" if cfg["use_mmd"] else "GAN (no MMD)"
    gens = {label: gan.generate(n, seed=seed)}
    if baseline is not None:
        gens["GAN (no MMD)"] = load_gan(baseline)[0].generate(n, seed=seed)
    hist = json.loads((run / "history.json").read_text()) if (run / "history.json").exists() else {}

    _write_table(network_parameters(cfg, gan, hist.get("seconds")), out / "network_parameters", preset,
                 "Network parameters: this run, the paper preset, and the published table")

    truth_t = obs.table(truth)
    gens_t = {k: obs.table(v) for k, v in gens.items()}
    main_t = gens_t[label]
    kin_p = [f"{k}_{p}" for p in obs.PARTICLES for k in obs.KINEMATICS]
    kin_c = [f"{k}_{c}" for c, _ in obs.CANDIDATES for k in (*obs.KINEMATICS, "m")]
    bins = {c: np.linspace(60, 100, 41) for c in ("m_W1", "m_W2")}
    bins.update({c: np.linspace(150, 200, 51) for c in ("m_t1", "m_t2")})
    for names, stem, ncols in ((kin_p, "distributions_particles", 4), (kin_c, "distributions_candidates", 5)):
        fig, _ = plotting.grid_hist_ratio(truth_t, gens_t, names, bins={n: bins.get(n, 50) for n in names},
                                          ncols=ncols, ref_label="Truth", show_means=False)
        plotting.save_figure(fig, out / stem)

    # mass peaks with and without MMD
    def pooled(t):
        return {"W": np.r_[t.m_W1, t.m_W2], "top": np.r_[t.m_t1, t.m_t2]}

    fits = {"Truth": obs.peaks(truth), **{k: obs.peaks(v) for k, v in gens.items()}}
    _plot_peaks(pooled(truth_t), {k: pooled(v) for k, v in gens_t.items()}, fits, out / "mass_peaks")
    rows = []
    for name, f in fits.items():
        for res in ("W", "top"):
            rows.append({"sample": name, "resonance": res, **f[res]})
    _write_table(pd.DataFrame(rows), out / "mass_peaks", preset,
                 "Breit-Wigner fits of the W and top peaks (position, FWHM width in GeV) within +-15 GeV")
    widths = None
    if "GAN (MMD)" in fits and "GAN (no MMD)" in fits:
        widths = width_comparison(fits)
        _write_table(widths, out / "width_comparison", preset,
                     "W and top peak widths (GeV) with and without MMD vs truth")

    rel_corr = _plot_correlation(truth_t, main_t, out / "corr_pt_t_pt_b")
    _plot_balance(truth, gens, out / "momentum_conservation")
    _plot_tails(truth_t, gens_t, cfg["train_events"], out / "tail_pt")

    # fidelity report on the 24 components and the four masses
    feat = bpw.COLUMNS + ["m_W1", "m_W2", "m_t1", "m_t2"]
    ref_f = np.c_[truth, obs.masses(truth)]
    gen_f = np.c_[gens[label], obs.masses(gens[label])]
    rep = metrics.fidelity_report(ref_f, gen_f, names=feat, classifier=classifier, seed=seed)
    rep_df = rep.reset_index()
    _write_table(rep_df, out / "fidelity", preset, f"Fidelity report, {label} vs truth")
    print(f"classifier AUC {rep.attrs['classifier_auc']:.4f} +- {rep.attrs['classifier_auc_uncertainty']:.4f}, "
          f"max |corr diff| {rep.attrs['max_abs_correlation_difference']:.4f}")

    per_obs = {}
    for c in kin_p + kin_c:
        per_obs[c] = {"w1": float(metrics.wasserstein(truth_t[c].to_numpy(), main_t[c].to_numpy())),
                      **obs.bulk_deviation(truth_t[c], main_t[c])}
    balance = {}
    for name, x in [("Truth", truth), *gens.items()]:
        rx, ry = obs.momentum_balance(x)
        balance[name] = {"median_px_over_sumpt": float(np.median(rx)), "median_py_over_sumpt": float(np.median(ry)),
                         "q90_px_over_sumpt": float(np.quantile(rx, 0.9))}
    result = {
        "preset": preset, "run": str(run), "label": label, "steps": gan.step, "n_generated": n,
        "trained_steps": cfg.get("trained_steps", gan.step), "selected_step": cfg.get("selected_step"),
        "deviations_from_paper": cfg.get("deviations", []),
        "n_train": cfg["train_events"], "n_validation": cfg.get("n_validation", 0),
        "training_seconds": hist.get("seconds"),
        "mass_peaks": fits, "momentum_balance": balance,
        "width_comparison": None if widths is None else widths.to_dict(orient="records"),
        "corr_pt_t_pt_b_median_abs_rel_diff": rel_corr,
        "bulk_mean_abs_dev_all_observables": float(np.mean([v["mean_abs_dev"] for v in per_obs.values()])),
        "observables": per_obs,
        "fidelity": {"classifier_auc": rep.attrs["classifier_auc"],
                     "classifier_auc_uncertainty": rep.attrs["classifier_auc_uncertainty"],
                     "max_abs_correlation_difference": rep.attrs["max_abs_correlation_difference"]},
        "published_for_comparison": {"momentum_conservation_level": published.MOMENTUM_CONSERVATION_LEVEL,
                                     "bulk_agreement_level": published.BULK_AGREEMENT_LEVEL},
    }
    io.write_json(result, out / "metrics.json")

    gen_df = pd.DataFrame(gens[label], columns=bpw.COLUMNS)
    io.write_table(gen_df, out / "generated_events.root", metadata={"generator": label, "preset": preset,
                                                                    "steps": gan.step})
    import lhe

    lhe.write_lhe(gens[label][: min(n, 10000)], out / "generated_events.lhe",
                  comment=f"gan4hep Butter-Plehn-Winterhalder GAN, {label}, preset {preset}, {gan.step} steps")
    s = fits[label]
    print(f"[preset: {preset}] W peak {s['W']['position']:.2f} GeV width {s['W']['width']:.2f} "
          f"(truth {fits['Truth']['W']['position']:.2f}, {fits['Truth']['W']['width']:.2f}); top peak "
          f"{s['top']['position']:.2f} width {s['top']['width']:.2f} (truth {fits['Truth']['top']['position']:.2f}, "
          f"{fits['Truth']['top']['width']:.2f}); bulk mean |dev| {result['bulk_mean_abs_dev_all_observables']:.3f}")
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run folder written by train.py")
    p.add_argument("--baseline", help="no-MMD run folder to compare with (default: RUN/no_mmd if present)")
    p.add_argument("--out", help="output folder (default: the run folder)")
    p.add_argument("--preset", choices=["paper", "quick"],
                   help="accepted for uniformity; the preset is the one the run was trained with")
    p.add_argument("--seed", type=int, default=2024, help="seed of the generated events")
    p.add_argument("--events", type=int, help="events to generate (default: as many as the test sample)")
    p.add_argument("--no-classifier", action="store_true")
    args = p.parse_args(argv)
    baseline = args.baseline or (Path(args.run) / "no_mmd" if (Path(args.run) / "no_mmd" / "model.npz").exists()
                                 else None)
    evaluate_run(args.run, baseline, args.out, args.events, not args.no_classifier, args.seed)


if __name__ == "__main__":
    main()
