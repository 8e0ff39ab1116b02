"""Histogram mass templates vs conditional GANs for the large-R jet mass (Lin, Bhimji & Nachman 2019), end to end.

Generates (or reads) the QCD jet sample, writes Table 1 with our yields, builds the baseline templates (control-region
jets in 4 |eta| x 15 log10(pT) bins = 60 weighted mass histograms), dresses validation- and signal-region jets with
masses drawn from their bin, trains the conditional GANs (train.py: vanilla / circle-WGAN x skew / noskew), and
evaluates both with the separation power of section 3.3 (Fig. 4), the mass in bins of pT, eta and N_track (Fig. 5),
the Sum m_J ratio error with N_track cuts (Fig. 6) and gan4hep's fidelity report.

    python papers/lin_bhimji_nachman/templates.py --preset quick --out runs/lin_bhimji_nachman
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import pandas as pd

from gan4hep import io, metrics
from papers.lin_bhimji_nachman import common, published

PT_MIN = 200.0  # jet selection, section 3.2
MIN_JETS = 100  # regions with fewer jets are not evaluated (our choice)


class MassTemplates:
    """The baseline of section 3.2: weighted jet-mass histograms in ``n_eta`` |eta| bins uniform in [0, eta_max] x
    ``n_pt`` pT bins uniform in log10(pT) ("This results in 60 mass histograms in total").

    Our choices (the paper gives none): pT bins span [200 GeV, highest control-region pT] (jets outside go to the
    end bins); mass bins are ``mass_bin`` GeV wide from 0 to above the highest control-region mass; a (pT, |eta|)
    bin without control jets borrows the nearest filled pT bin of the same |eta| bin. Dressing draws a mass bin with
    probability proportional to its weighted content, then a mass uniformly inside it.
    """

    def __init__(self, n_eta=4, eta_max=2.0, n_pt=15, pt_range=None, mass_bin=5.0):
        self.n_eta, self.eta_max, self.n_pt, self.pt_range, self.mass_bin = n_eta, eta_max, n_pt, pt_range, mass_bin

    def fit(self, pt, eta, mass, weight=None):
        pt, eta, mass = (np.asarray(a, dtype=float) for a in (pt, eta, mass))
        weight = np.ones_like(pt) if weight is None else np.asarray(weight, dtype=float)
        lo, hi = self.pt_range or (PT_MIN, pt.max())
        self.eta_edges = np.linspace(0.0, self.eta_max, self.n_eta + 1)
        self.pt_edges = np.logspace(np.log10(lo), np.log10(hi), self.n_pt + 1)
        self.mass_edges = np.arange(0.0, mass.max() + 2 * self.mass_bin, self.mass_bin)
        idx = self.bin_index(pt, eta)
        hist = np.zeros((self.n_eta * self.n_pt, len(self.mass_edges) - 1))
        for b in np.unique(idx):
            hist[b], _ = np.histogram(mass[idx == b], self.mass_edges, weights=weight[idx == b])
        self.counts = hist.copy()
        self.source = np.arange(len(hist))  # which histogram each bin draws from (itself unless empty)
        for b in np.flatnonzero(hist.sum(axis=1) <= 0):
            e = b // self.n_pt
            filled = [e * self.n_pt + p for p in range(self.n_pt) if hist[e * self.n_pt + p].sum() > 0]
            filled = filled or list(np.flatnonzero(hist.sum(axis=1) > 0))
            self.source[b] = min(filled, key=lambda f: abs(f % self.n_pt - b % self.n_pt))
        self.cdf = np.cumsum(hist[self.source], axis=1)
        self.cdf /= self.cdf[:, -1:]
        return self

    def save(self, path):
        """The 60 weighted histograms and their edges (.npz, atomically)."""
        with io.atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, counts=self.counts, source=self.source, eta_edges=self.eta_edges,
                         pt_edges=self.pt_edges, mass_edges=self.mass_edges)

    @property
    def n_templates(self):
        return self.n_eta * self.n_pt

    def bin_index(self, pt, eta):
        """Template index = |eta| bin * n_pt + pT bin (values outside the edges go to the end bins)."""
        ie = np.clip(np.searchsorted(self.eta_edges, np.abs(eta), side="right") - 1, 0, self.n_eta - 1)
        ip = np.clip(np.searchsorted(self.pt_edges, pt, side="right") - 1, 0, self.n_pt - 1)
        return ie * self.n_pt + ip

    def dress(self, pt, eta, copies=1, seed=0):
        """Masses drawn from each jet's template: array (copies, n_jets)."""
        rng = np.random.default_rng(seed)
        b = np.tile(self.bin_index(np.asarray(pt, float), np.asarray(eta, float)), copies)
        u = rng.random(b.size)
        k = np.minimum((self.cdf[b] < u[:, None]).sum(axis=1), self.cdf.shape[1] - 1)
        m = self.mass_edges[k] + rng.random(b.size) * np.diff(self.mass_edges)[k]
        return m.reshape(copies, -1)


# ------------------------------------------------------------------------------------------------------------
def _frame(jets, mass):
    """Tile the kinematics of ``jets`` once per row of ``mass`` (copies, n) with those masses."""
    mass = np.atleast_2d(mass)
    return pd.DataFrame({"pt": np.tile(jets["pt"].to_numpy(float), len(mass)),
                         "abs_eta": np.tile(np.abs(jets["eta"].to_numpy(float)), len(mass)),
                         "ntrk": np.tile(jets["ntrk"].to_numpy(float), len(mass)), "mass": mass.ravel()})


def fidelity(jets, gen_mass, seed, classifier=True):
    """gan4hep.metrics.fidelity_report of real vs dressed jets (pT, |eta|, N_track, mass; weighted); only the mass
    row can differ, the classifier AUC tests the joint distribution, i.e. the conditional mass."""
    ref = _frame(jets, jets["mass"].to_numpy(float)[None])
    gen = _frame(jets, gen_mass)
    w = jets["weight"].to_numpy(float)
    rep = metrics.fidelity_report(ref, gen, seed=seed, weights_ref=w, weights_gen=np.tile(w, len(gen_mass)),
                                  classifier=classifier)
    return rep


def _tertiles(x, w):
    e = metrics.quantile_edges(x, 3, weights=w)
    e[0], e[-1] = -np.inf, np.inf
    return e


def fig5(jets, masses, out, preset):
    """Mass in the validation region: real vs template vs GAN in three bins each of pT, |eta| and N_track."""
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from gan4hep import plotting

    w = jets["weight"].to_numpy(float)
    rows = [("pt", "p_T", "GeV", jets["pt"].to_numpy(float)), ("abs_eta", "|\\eta|", "", np.abs(jets["eta"])),
            ("ntrk", "N_{track}", "", jets["ntrk"].to_numpy(float))]
    summary = {}
    with matplotlib.style.context(plotting.STYLE):
        fig = Figure(figsize=(15, 15))
        FigureCanvasAgg(fig)
        outer = fig.add_gridspec(3, 3, hspace=0.4, wspace=0.3)
        for r, (name, tex, unit, x) in enumerate(rows):
            x = np.asarray(x, float)
            edges = _tertiles(x, w)
            for c in range(3):
                m = (x >= edges[c]) & (x < edges[c + 1])
                inner = outer[r, c].subgridspec(2, 1, height_ratios=(3, 1), hspace=0.05)
                ax, rax = fig.add_subplot(inner[0]), fig.add_subplot(inner[1])
                ax.sharex(rax)
                real = jets["mass"].to_numpy(float)[m]
                gens = {lab: mm[:, m].ravel() for lab, mm in masses.items()}
                wts = {"Real": w[m], **{lab: np.tile(w[m], len(mm)) for lab, mm in masses.items()}}
                hi = np.quantile(real, 0.99) if len(real) > 1 else 1.0
                res = plotting.hist_ratio(real, gens, bins=np.linspace(0, max(hi, 1.0), 21), ax=(ax, rax),
                                          weights=wts, ref_label="Real", show_means=True, ratio_range=(0, 2.5),
                                          xlabel="jet mass [GeV]")
                lo_s = f"{edges[c]:.3g}" if np.isfinite(edges[c]) else ""
                hi_s = f"{edges[c + 1]:.3g}" if np.isfinite(edges[c + 1]) else ""
                title = f"${lo_s}{' < ' if lo_s else ''}{tex}{' < ' if hi_s else ''}{hi_s}$ {unit}"
                ax.set_title(f"{title} ({preset})", fontsize=10)
                summary[f"{name}_{c}"] = {"range": [float(edges[c]), float(edges[c + 1])], "jets": int(m.sum()),
                                          "mean_mass": {k: float(v) for k, v in res.means.items()}}
        plotting.save_figure(fig, Path(out) / "fig5")
    return summary


def fig6(jets, masses, out, preset, n_bins=8):
    """Sum m_J of the four leading jets in the validation region: ratio error of template and GAN to real, inclusive
    and with N_track < X on all four jets (X for ~50 % event efficiency, and for ~50 % per-jet efficiency)."""
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from gan4hep import plotting

    events, real = common.sum_mj(jets, jets["mass"].to_numpy(float))
    real = real[0]
    ev_w = jets.groupby("event")["weight"].first().reindex(events).to_numpy(float)
    gens = {lab: common.sum_mj(jets, mm)[1] for lab, mm in masses.items()}
    maxn = common.max_ntrk_leading4(jets).reindex(events).to_numpy(float)
    lead = jets[jets["rank"] < 4]
    x_jet, eff_jet = common.ntrk_cut_for_efficiency(lead["ntrk"], lead["weight"], 0.5)
    x_evt, eff_evt = common.ntrk_cut_for_efficiency(maxn, ev_w, 0.5)
    cuts = [("inclusive", None), (f"N_track < {x_evt} (50% of events)", x_evt),
            (f"N_track < {x_jet} (50% per jet)", x_jet)]
    edges = metrics.quantile_edges(real, n_bins, weights=ev_w)
    tail_from = float(metrics.quantile_edges(real, 4, weights=ev_w)[3])
    result = {"ntrk_cut_event50": x_evt, "event_efficiency_event50": eff_evt, "ntrk_cut_jet50": x_jet,
              "per_jet_efficiency_jet50": eff_jet, "edges": edges.tolist(), "tail_from_GeV": tail_from,
              "panels": {}}
    colors = {"Template": "tab:blue", "GAN": "tab:red"}
    with matplotlib.style.context(plotting.STYLE):
        fig = Figure(figsize=(16, 5))
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, 3)
        for ax, (label, x) in zip(axes, cuts):
            sel = np.ones(len(events), bool) if x is None else maxn < x
            panel = {"events": int(sel.sum()), "event_efficiency": float(ev_w[sel].sum() / ev_w.sum())}
            tail = edges[:-1] >= tail_from - 1e-9
            for lab, g in gens.items():
                copies = g.shape[0]
                r, sig, err = common.ratio_error(real[sel], ev_w[sel], g[:, sel].ravel(),
                                                 np.tile(ev_w[sel] / copies, copies), edges)
                panel[lab] = {"ratio": r.tolist(), "stat": sig.tolist(), "error": err.tolist(),
                              "high_summj_error": float(np.nanmean(err[tail])) if np.isfinite(err[tail]).any()
                              else float("nan"), "last_bin_error": float(err[-1])}
                e = np.nan_to_num(err, nan=0.0)
                ax.stairs(1 + e, edges, baseline=1 - e, fill=True, alpha=0.35, color=colors.get(lab, "gray"),
                          label=f"{lab}: tail {panel[lab]['high_summj_error']:.0%}")
            ax.axhline(1.0, color="black", lw=1)
            ax.axvline(tail_from, color="gray", ls=":", lw=1)
            ax.set_xlabel(r"$\Sigma m_J$ of the 4 leading jets [GeV]")
            ax.set_ylabel("1 $\\pm$ ratio error")
            ax.set_title(f"{label}, {panel['events']} events ({preset})", fontsize=10)
            ax.set_ylim(0, 3)
            ax.legend(fontsize="small", loc="upper left")
            result["panels"][label] = panel
        plotting.save_figure(fig, Path(out) / "fig6")
    return result


def fig4(records, template_sp, floors, out, preset):
    """Separation power vs epoch, averaged over the initialisations that start below 0.6, template flat."""
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from gan4hep import plotting

    curves = {}
    with matplotlib.style.context(plotting.STYLE):
        fig = Figure(figsize=(13, 5))
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, 2)
        for ax, key, title in zip(axes, ("sp_validation", "sp_control_es"),
                                  ("validation region (test)", "control region, early-stopping half")):
            for (variant, noise), recs in records.items():
                kept = [r for r in recs if r["kept"]] or recs
                n_ep = max(len(r["history"]) for r in kept)
                avg = [np.mean([r["history"][i][key] for r in kept if i < len(r["history"])]) for i in range(n_ep)]
                ep = [i for i in range(n_ep)]
                ax.plot(ep, avg, label=f"{variant} {noise} ({sum(r['kept'] for r in recs)}/{len(recs)} kept)")
                curves.setdefault(f"{variant}_{noise}", {})[key] = avg
            tkey = "validation" if key == "sp_validation" else "control_es"
            ax.axhline(template_sp[tkey], color="black", ls="--", label="template")
            ax.axhline(floors[tkey], color="gray", ls=":", label="floor (perfect model)")
            ax.set_xlabel("epoch")
            ax.set_ylabel("separation power")
            ax.set_yscale("log")
            ax.set_title(f"{title} ({preset})", fontsize=10)
            ax.legend(fontsize="small")
        plotting.save_figure(fig, Path(out) / "fig4")
    return curves


# ------------------------------------------------------------------------------------------------------------
def compare_with_paper(res):
    """Lines comparing our numbers with the paper's statements (published.py)."""
    lines = []
    sp = res["separation_power"]
    t = sp["template"]["validation"]["value"]
    gans = {k: v for k, v in sp.items() if k != "template"}
    if gans:
        below = {k: v["validation"]["mean"] < t for k, v in gans.items()}
        lines.append(f"[{published.STATEMENTS['gan_below_template']}] ours (validation region): template {t:.4f}; "
                     + ", ".join(f"{k} {v['validation']['mean']:.4f}" for k, v in gans.items())
                     + f" -> {'all below' if all(below.values()) else 'NOT all below'} the template "
                     f"(floor {sp['template']['validation']['floor']:.4f})")
        speed = res.get("epochs_to_reach", {})
        if speed:
            lines.append(f"[{published.STATEMENTS['skew_faster']} / vanilla faster than WGAN] ours: epochs until the "
                         "averaged validation curve first gets within 10% of its minimum: "
                         + ", ".join(f"{k} {v}" for k, v in speed.items()))
    f6 = res.get("fig6")
    if f6:
        pub = published.FIG6
        panel = f6["panels"][[k for k in f6["panels"] if "per jet" in k][0]]
        txt = ", ".join(f"{lab} {panel[lab]['high_summj_error']:.0%}" for lab in ("Template", "GAN") if lab in panel)
        lines.append(f"[Fig. 6, N_track < {pub['ntrk_cut'][0]} (published), per-jet eff. {pub['per_jet_efficiency'][0]:.0%}: "
                     f"GAN ~{pub['gan_high_summj_error'][0]:.0%}, template > {pub['template_high_summj_error_above'][0]:.0%}"
                     f" (published)] ours: N_track < {f6['ntrk_cut_jet50']} (per-jet eff. "
                     f"{f6['per_jet_efficiency_jet50']:.0%}, event eff. {panel['event_efficiency']:.0%}; published "
                     f"~{pub['event_efficiency'][0]:.0%}), high-Sum m_J ratio error: {txt}")
    n = res["table1_jets"]
    lines.append(f"[sample, published: {published.SAMPLE['control_jets'][0]:.3g} control / "
                 f"{published.SAMPLE['validation_jets'][0]:.3g} validation jets] ours: {n['control']} / {n['validation']}")
    return lines


def _epochs_to_reach(avg, frac=0.1):
    avg = np.asarray(avg)
    target = avg.min() * (1 + frac)
    return int(np.argmax(avg <= target))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_common_args(p)
    p.add_argument("--out", type=Path, default=Path("runs/lin_bhimji_nachman"), help="output folder")
    p.add_argument("--no-gan", action="store_true", help="templates only (no GAN training)")
    p.add_argument("--target", default="m_over_pt", choices=("mass", "m_over_pt"),
                   help="GAN target: m_over_pt (default) or mass (literal reading, reported as such)")
    p.add_argument("--n-init", type=int, default=None, help="initialisations per GAN variant (default: preset)")
    p.add_argument("--epochs", type=int, default=None, help="GAN epochs (default: preset)")
    p.add_argument("--variant", choices=("vanilla", "wgan"), nargs="+", default=["vanilla", "wgan"],
                   help="GAN variants (default both)")
    p.add_argument("--noise", choices=("skew", "noskew"), nargs="+", default=["skew", "noskew"],
                   help="noise: skew-normal alpha 5 and/or alpha 0 (default both)")
    p.add_argument("--no-classifier", action="store_true", help="fidelity report without the classifier test")
    p.add_argument("--template-mass-bin", type=float, default=5.0, help="template mass bin width in GeV (ours)")
    args = p.parse_args(argv)
    cfg = common.preset(args)
    cfg.update({k: v for k, v in (("n_init", args.n_init), ("epochs", args.epochs)) if v})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    df = common.load_sample(args, out, cfg["events"])
    t_data = time.time() - t_start
    print(f"preset: {args.preset}  sample: {df.attrs['path']} ({len(df)} jets, {df['event'].nunique()} events "
          f"with jets; {t_data:.0f} s)")

    t1 = common.table1(df)
    with io.atomic_path(out / "table1.csv") as tmp:
        t1.to_csv(tmp, index=False)
    print(f"\nTable 1 (preset {args.preset}; events/jets in our sample, weighted = sum of event weights):")
    print(t1.to_string(index=False))

    from papers.lin_bhimji_nachman import model as lbn_model, train as lbn_train

    data = lbn_train.prepare(df, args.seed)
    control = common.region(df, "control")
    tmpl = MassTemplates(mass_bin=args.template_mass_bin).fit(control["pt"], control["eta"], control["mass"],
                                                              control["weight"])
    print(f"\ntemplates: {tmpl.n_templates} histograms ({tmpl.n_eta} |eta| x {tmpl.n_pt} log10 pT bins, pT "
          f"{tmpl.pt_edges[0]:.0f}-{tmpl.pt_edges[-1]:.0f} GeV, {len(tmpl.mass_edges) - 1} mass bins of "
          f"{args.template_mass_bin:g} GeV) from {len(control)} control jets; "
          f"{int((tmpl.counts.sum(axis=1) <= 0).sum())} empty bins borrow a neighbour")
    tmpl.save(out / "templates.npz")
    evaluated = ("control_es", "validation", "signal")
    regions = [r for r in evaluated if data.get(r) is not None and len(data[r]) >= MIN_JETS]
    skipped = [r for r in evaluated if r not in regions]
    if skipped:
        print(f"not evaluated (fewer than {MIN_JETS} jets in our sample): {', '.join(skipped)}")
    dressed = {r: tmpl.dress(data[r]["pt"], data[r]["eta"], copies=cfg["dress"], seed=args.seed + 1) for r in regions}
    sp = {"template": {}}
    for r in regions:
        s = common.separation_power_8(data[r], dressed[r], cfg["mass_bins"])
        spread = [common.separation_power_8(data[r], tmpl.dress(data[r]["pt"], data[r]["eta"], cfg["dress"],
                                                                 seed=args.seed + 100 + k), cfg["mass_bins"])["value"]
                  for k in range(4)]
        sp["template"][r] = {**s, "dressing_spread": float(np.std(spread + [s["value"]], ddof=1)),
                             "n_jets": len(data[r]), "n_eff": common.effective_n(data[r]["weight"]),
                             "unweighted": common.separation_power_8(data[r], dressed[r], cfg["mass_bins"], False)}

    res = {"preset": args.preset, "config": cfg, "seed": args.seed, "sample": df.attrs["path"],
           "sample_seconds": t_data, "table1_jets": {n: int((df["region"] == c).sum())
                                                    for c, n in common.REGIONS.items()},
           "templates": {"n": tmpl.n_templates, "pt_edges": tmpl.pt_edges.tolist(),
                         "eta_edges": tmpl.eta_edges.tolist(), "mass_bin_GeV": args.template_mass_bin}}
    masses = {r: {"Template": dressed[r]} for r in regions}
    records = {}
    if not args.no_gan:
        print(f"\ntraining GANs (preset {args.preset}: {cfg['n_init']} initialisations x {cfg['epochs']} epochs per "
              f"variant, target {args.target}, {len(data['train'])} training / {len(data['control_es'])} "
              "early-stopping jets)", flush=True)
        runs = lbn_train.train_all(data, out, cfg, args.seed, tuple(args.variant), tuple(args.noise), args.target)
        records = {k: [rec for _, rec in v] for k, v in runs.items()}
        res["training"] = {f"{v}_{n}": recs for (v, n), recs in records.items()}
        # Figs. 5, 6 and the fidelity report use the vanilla skew GAN, as the paper's Fig. 5 (or the first trained
        # variant): the initialisation with the best early-stopping value
        fig_key = ("vanilla", "skew") if ("vanilla", "skew") in runs else next(iter(runs))
        res["figure_gan"] = "_".join(fig_key)
        for (variant, noise), pairs in runs.items():
            kept = [(g, r) for g, r in pairs if r["kept"]] or pairs
            key = f"{variant}_{noise}"
            sp[key] = {}
            for r in regions:
                vals, unw = [], []
                for i, (g, rec) in enumerate(kept):
                    gm = lbn_model.generate_mass(g, data[r], copies=cfg["dress"], seed=args.seed + 2)
                    vals.append(common.separation_power_8(data[r], gm, cfg["mass_bins"])["value"])
                    unw.append(common.separation_power_8(data[r], gm, cfg["mass_bins"], False)["value"])
                    if (variant, noise) == fig_key and i == int(np.argmin(
                            [rr["best"]["sp_control_es"] for _, rr in kept])):
                        masses[r]["GAN"] = gm
                sp[key][r] = {"mean": float(np.mean(vals)), "std": float(np.std(vals, ddof=1)) if len(vals) > 1
                              else 0.0, "values": vals, "unweighted_mean": float(np.mean(unw)),
                              "unweighted_std": float(np.std(unw, ddof=1)) if len(unw) > 1 else 0.0,
                              "n_kept": sum(rr["kept"] for _, rr in pairs),
                              "n_init": len(pairs)}
        curves = fig4(records, {r: sp["template"][r]["value"] for r in regions},
                      {r: sp["template"][r]["floor"] for r in regions}, out, args.preset)
        res["fig4_curves"] = curves
        res["epochs_to_reach"] = {k: _epochs_to_reach(v["sp_validation"]) for k, v in curves.items()}
    res["separation_power"] = sp

    rows = []
    for r in regions:
        t = sp["template"][r]
        rows.append({"method": "floor", "variant": "real vs independent real (expected)", "region": r,
                     "value": t["floor"], "uncertainty": np.nan, "unweighted": t["unweighted"]["floor"]})
        rows.append({"method": "template", "variant": f"{tmpl.n_templates} histograms", "region": r,
                     "value": t["value"], "uncertainty": t["dressing_spread"], "unweighted": t["unweighted"]["value"]})
        for key, v in sp.items():
            if key != "template":
                rows.append({"method": "gan", "variant": f"{key} ({args.target})", "region": r, "value": v[r]["mean"],
                             "uncertainty": v[r]["std"], "unweighted": v[r]["unweighted_mean"]})
    table = pd.DataFrame(rows)
    table.insert(0, "preset", args.preset)
    with io.atomic_path(out / "separation_power.csv") as tmp:
        table.to_csv(tmp, index=False)
    print(f"\nSeparation power (section 3.3: 8 equal-statistics regions x {cfg['mass_bins']} mass bins; preset "
          f"{args.preset}; GAN: mean +- std over kept initialisations at the early-stopping epoch; template: +- "
          "spread over dressing seeds; floor: expected value for a perfect model; 'unweighted': the same without event "
          "weights, a diagnostic with more effective statistics):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))

    res["fig5"] = fig5(data["validation"], masses["validation"], out, args.preset)
    res["fig6"] = fig6(data["validation"], masses["validation"], out, args.preset)

    fid_rows = []
    for r in regions:
        for lab, mm in masses[r].items():
            rep = fidelity(data[r], mm, args.seed, classifier=not args.no_classifier)
            row = {"preset": args.preset, "region": r, "method": lab, **rep.loc["mass"].to_dict(),
                   "classifier_auc": rep.attrs["classifier_auc"],
                   "classifier_auc_uncertainty": rep.attrs["classifier_auc_uncertainty"]}
            fid_rows.append(row)
    fid = pd.DataFrame(fid_rows)
    with io.atomic_path(out / "fidelity.csv") as tmp:
        fid.to_csv(tmp, index=False)
    res["fidelity"] = fid_rows
    print(f"\nFidelity report, jet mass per region (preset {args.preset}; classifier AUC on (pT, |eta|, N_track, "
          "mass), 0.5 = indistinguishable):")
    print(fid.to_string(index=False, float_format=lambda v: f"{v:.4f}"))

    print(f"\nComparison with the paper (preset {args.preset}; published values from published.py):")
    res["comparison"] = compare_with_paper(res)
    for line in res["comparison"]:
        print("  - " + line)
    res["seconds"] = time.time() - t_start
    io.write_json(res, out / "metrics.json")
    print(f"\nwrote {out}/table1.csv, separation_power.csv, fidelity.csv, fig4/5/6 (.png/.pdf), metrics.json "
          f"[{res['seconds']:.0f} s]")
    return res


if __name__ == "__main__":
    main()
