"""The tables and figures of Lin, Bhimji & Nachman, one named function each:

| artefact | function |
| --- | --- |
| table1.csv (Table 1 with our yields) | ``table1`` |
| separation power of the templates (dressing spread, floor) | ``template_scores`` |
| separation power of the GANs (mean over kept initialisations) | ``gan_scores`` |
| separation_power.csv (Fig. 4's end points, both methods) | ``separation_power_table`` |
| fig4.png/pdf (separation power vs epoch) | ``fig4`` |
| fig5.png/pdf (mass in bins of pT, abs(eta), N_track) | ``fig5`` |
| fig6.png/pdf (Sum m_J ratio error with N_track cuts) | ``fig6`` |
| fidelity.csv (gan4hep fidelity report of the jet mass) | ``fidelity`` |
| comparison.md (ours vs the paper's statements) | ``compare_with_paper`` |

The functions take the data, the fitted templates and the trained models as arguments; this module never trains
(it does not import train.py). Masses and pT in GeV.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from gan4hep import io, metrics
from papers.lin_bhimji_nachman import data, model, observables, published
from papers.lin_bhimji_nachman.recipe import Recipe

__all__ = ["table1", "regions_to_evaluate", "template_scores", "gan_scores", "separation_power_table", "fig4",
           "epochs_to_reach", "fig5", "fig6", "fidelity_report", "fidelity", "compare_with_paper"]

EVALUATED = ("control_es", "validation", "signal")


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    with io.atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return Path(path)


# ---- Table 1 ---------------------------------------------------------------------------------------------------
def table1(df: pd.DataFrame, out: Path | None = None) -> pd.DataFrame:
    """Table 1 with the number of events and jets (raw, weighted and Kish-effective) per row in our sample; written
    to ``OUT/table1.csv`` if ``out`` is given."""
    rows = []
    for name, n, pt1, deta, msum in data.TABLE1:
        code = {v: k for k, v in data.REGIONS.items()}[name]
        jets = df[df["region"] == code]
        nj = jets["njet"]
        part = jets[nj == 3] if n == "= 3" else (jets[nj == 4] if n == "= 4" else jets[nj >= 5])
        rows.append({"region": name, "N_jet(pT>200 GeV)": n, "pT,1": pt1, "|deta_12|": deta, "M_J^Sigma": msum,
                     "events": int(part["event"].nunique()), "jets": len(part),
                     "weighted_jets": float(part["weight"].sum()),
                     "effective_jets": float(observables.effective_n(part["weight"])) if len(part) else 0.0})
    table = pd.DataFrame(rows)
    if out is not None:
        _write_csv(table, Path(out) / "table1.csv")
    return table


# ---- separation power (section 3.3, Fig. 4) --------------------------------------------------------------------
def regions_to_evaluate(jets: Mapping, min_jets: int) -> list[str]:
    """The regions among control_es, validation and signal with at least ``min_jets`` jets."""
    return [r for r in EVALUATED if jets.get(r) is not None and len(jets[r]) >= min_jets]


def template_scores(jets: Mapping, templates, recipe: Recipe, regions: list[str]) -> tuple[dict, dict]:
    """The templates' evaluation: each jet of each region dressed ``recipe.dress`` times (dressing seed
    ``recipe.seed + 1``) and scored with ``observables.separation_power_8``; the spread over five dressing seeds is
    the template's uncertainty.

    Args:
        jets: ``data.prepare`` output.
        templates: fitted ``templates.MassTemplates`` (anything with ``dress(pt, eta, copies, seed)``).
    Returns:
        ({region: separation power dict + dressing_spread, n_jets, n_eff, unweighted}, {region: dressed masses
        (dress, n_jets)}).
    """
    scores, dressed = {}, {}
    for r in regions:
        j = jets[r]
        dressed[r] = templates.dress(j["pt"], j["eta"], copies=recipe.dress, seed=recipe.seed + 1)
        s = observables.separation_power_8(j, dressed[r], recipe.mass_bins)
        spread = [observables.separation_power_8(j, templates.dress(j["pt"], j["eta"], recipe.dress,
                                                                    seed=recipe.seed + 100 + k),
                                                 recipe.mass_bins)["value"] for k in range(4)]
        scores[r] = {**s, "dressing_spread": float(np.std(spread + [s["value"]], ddof=1)), "n_jets": len(j),
                     "n_eff": observables.effective_n(j["weight"]),
                     "unweighted": observables.separation_power_8(j, dressed[r], recipe.mass_bins, False)}
    return scores, dressed


def _std(values) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def gan_scores(runs: Mapping, jets: Mapping, recipe: Recipe, regions: list[str],
               figure_key: tuple[str, str]) -> tuple[dict, dict]:
    """The GANs' (or flows') separation power per variant and region: mean +- std over the initialisations that
    started below ``recipe.init_threshold`` (all of them if none did; every flow is kept), each at its selected
    epoch, with ``recipe.dress`` masses per jet (sampling seed ``recipe.seed + 2``).

    Args:
        runs: {(variant, noise): [(model, record), ...]} as ``train.train_all`` returns.
        figure_key: the (variant, noise) whose initialisation with the best early-stopping value is drawn in
            Figs. 5 and 6 and the fidelity report.
    Returns:
        ({"<variant>_<noise>" or "flow": {region: {mean, std, values, unweighted_mean, unweighted_std, n_kept,
        n_init}}},
        {region: generated masses (dress, n_jets) of the figure model}).
    """
    scores, figure_masses = {}, {}
    for (variant, noise), pairs in runs.items():
        kept = [(g, r) for g, r in pairs if r["kept"]] or list(pairs)
        best = int(np.argmin([rec["best"]["sp_control_es"] for _, rec in kept]))
        key = "_".join(p for p in (variant, noise) if p)  # the flow: ("flow", "") -> "flow"
        scores[key] = {}
        for r in regions:
            vals, unw = [], []
            for i, (g, _) in enumerate(kept):
                gm = model.generate_mass(g, jets[r], copies=recipe.dress, seed=recipe.seed + 2)
                vals.append(observables.separation_power_8(jets[r], gm, recipe.mass_bins)["value"])
                unw.append(observables.separation_power_8(jets[r], gm, recipe.mass_bins, False)["value"])
                if (variant, noise) == figure_key and i == best:
                    figure_masses[r] = gm
            scores[key][r] = {"mean": float(np.mean(vals)), "std": _std(vals), "values": vals,
                              "unweighted_mean": float(np.mean(unw)), "unweighted_std": _std(unw),
                              "n_kept": sum(rec["kept"] for _, rec in pairs), "n_init": len(pairs)}
    return scores, figure_masses


def separation_power_table(sp: Mapping, regions: list[str], recipe: Recipe, n_templates: int,
                           out: Path) -> pd.DataFrame:
    """``OUT/separation_power.csv``: per region the floor (a perfect model), the templates (+- dressing spread)
    and each GAN variant or the flow (mean +- std over kept initialisations); columns preset, method (floor,
    template, gan, flow), variant, region, value, uncertainty, unweighted."""
    rows = []
    for r in regions:
        t = sp["template"][r]
        rows.append({"method": "floor", "variant": "real vs independent real (expected)", "region": r,
                     "value": t["floor"], "uncertainty": np.nan, "unweighted": t["unweighted"]["floor"]})
        rows.append({"method": "template", "variant": f"{n_templates} histograms", "region": r,
                     "value": t["value"], "uncertainty": t["dressing_spread"], "unweighted": t["unweighted"]["value"]})
        for key, v in sp.items():
            if key != "template":
                rows.append({"method": "flow" if key == "flow" else "gan", "variant": f"{key} ({recipe.target})",
                             "region": r,
                             "value": v[r]["mean"], "uncertainty": v[r]["std"], "unweighted": v[r]["unweighted_mean"]})
    table = pd.DataFrame(rows)
    table.insert(0, "preset", recipe.preset)
    _write_csv(table, Path(out) / "separation_power.csv")
    return table


def _canvas(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def fig4(records: Mapping, template_sp: Mapping, floors: Mapping, out: Path, preset: str) -> dict:
    """Fig. 4, ``OUT/fig4.png|pdf``: separation power vs epoch in the validation region and on the early-stopping
    half, averaged over the initialisations that start below the threshold (``record["kept"]``; all if none do),
    the template flat.

    Args:
        records: {(variant, noise): [train record, ...]}.
        template_sp, floors: {"validation": S, "control_es": S} of the templates and of a perfect model.
    Returns:
        {"<variant>_<noise>": {"sp_validation": [S per epoch], "sp_control_es": [...]}}.
    """
    import matplotlib.style

    from gan4hep import plotting

    curves = {}
    with matplotlib.style.context(plotting.STYLE):
        fig = _canvas((13, 5))
        axes = fig.subplots(1, 2)
        for ax, key, title in zip(axes, ("sp_validation", "sp_control_es"),
                                  ("validation region (test)", "control region, early-stopping half")):
            for (variant, noise), recs in records.items():
                kept = [r for r in recs if r["kept"]] or recs
                n_ep = max(len(r["history"]) for r in kept)
                avg = [np.mean([r["history"][i][key] for r in kept if i < len(r["history"])]) for i in range(n_ep)]
                name = " ".join(p for p in (variant, noise) if p)
                ax.plot(range(n_ep), avg, label=f"{name} ({sum(r['kept'] for r in recs)}/{len(recs)} kept)")
                curves.setdefault("_".join(p for p in (variant, noise) if p), {})[key] = [float(a) for a in avg]
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


def epochs_to_reach(curves: Mapping, frac: float = 0.1) -> dict[str, int]:
    """Per variant, the first epoch at which the averaged validation curve is within ``frac`` of its minimum (the
    training-speed statements of section 3.3)."""
    result = {}
    for key, c in curves.items():
        avg = np.asarray(c["sp_validation"])
        result[key] = int(np.argmax(avg <= avg.min() * (1 + frac)))
    return result


# ---- Fig. 5 ----------------------------------------------------------------------------------------------------
def _tertiles(x, w):
    e = metrics.quantile_edges(x, 3, weights=w)
    e[0], e[-1] = -np.inf, np.inf
    return e


def fig5(jets: pd.DataFrame, masses: Mapping[str, np.ndarray], out: Path, preset: str) -> dict:
    """Fig. 5, ``OUT/fig5.png|pdf``: the jet mass in the validation region, real vs each of ``masses`` ({label:
    (copies, n_jets) GeV}) in three (weighted) tertiles each of pT, |eta| and N_track. Returns the jets and mean
    mass per panel."""
    import matplotlib.style

    from gan4hep import plotting

    w = jets["weight"].to_numpy(float)
    rows = [("pt", "p_T", "GeV", jets["pt"].to_numpy(float)), ("abs_eta", "|\\eta|", "", np.abs(jets["eta"])),
            ("ntrk", "N_{track}", "", jets["ntrk"].to_numpy(float))]
    summary = {}
    with matplotlib.style.context(plotting.STYLE):
        fig = _canvas((15, 15))
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


# ---- Fig. 6 ----------------------------------------------------------------------------------------------------
def fig6(jets: pd.DataFrame, masses: Mapping[str, np.ndarray], out: Path, preset: str, n_bins: int = 8) -> dict:
    """Fig. 6, ``OUT/fig6.png|pdf``: Sum m_J of the four leading jets in the validation region, ratio error of each
    of ``masses`` ({label: (copies, n_jets) GeV}) to real, inclusive and with N_track < X on all four jets (X for
    ~50 % event efficiency, and for ~50 % per-jet efficiency, the paper's N_track < 26). ``n_bins`` bins of equal
    weighted real statistics; "high Sum m_J" = bins above the real 75 % quantile. Returns the cuts and per panel
    the ratios, errors and mean high-Sum m_J error."""
    import matplotlib.style

    from gan4hep import plotting

    events, real = observables.sum_mj(jets, jets["mass"].to_numpy(float))
    real = real[0]
    ev_w = jets.groupby("event")["weight"].first().reindex(events).to_numpy(float)
    gens = {lab: observables.sum_mj(jets, mm)[1] for lab, mm in masses.items()}
    maxn = observables.max_ntrk_leading4(jets).reindex(events).to_numpy(float)
    lead = jets[jets["rank"] < 4]
    x_jet, eff_jet = observables.ntrk_cut_for_efficiency(lead["ntrk"], lead["weight"], 0.5)
    x_evt, eff_evt = observables.ntrk_cut_for_efficiency(maxn, ev_w, 0.5)
    cuts = [("inclusive", None), (f"N_track < {x_evt} (50% of events)", x_evt),
            (f"N_track < {x_jet} (50% per jet)", x_jet)]
    edges = metrics.quantile_edges(real, n_bins, weights=ev_w)
    tail_from = float(metrics.quantile_edges(real, 4, weights=ev_w)[3])
    result = {"ntrk_cut_event50": x_evt, "event_efficiency_event50": eff_evt, "ntrk_cut_jet50": x_jet,
              "per_jet_efficiency_jet50": eff_jet, "edges": edges.tolist(), "tail_from_GeV": tail_from,
              "panels": {}}
    colors = {"Template": "tab:blue", "GAN": "tab:red", "Flow": "tab:green"}
    with matplotlib.style.context(plotting.STYLE):
        fig = _canvas((16, 5))
        axes = fig.subplots(1, 3)
        for ax, (label, x) in zip(axes, cuts):
            sel = np.ones(len(events), bool) if x is None else maxn < x
            panel = {"events": int(sel.sum()), "event_efficiency": float(ev_w[sel].sum() / ev_w.sum())}
            tail = edges[:-1] >= tail_from - 1e-9
            for lab, g in gens.items():
                copies = g.shape[0]
                r, sig, err = observables.ratio_error(real[sel], ev_w[sel], g[:, sel].ravel(),
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


# ---- fidelity --------------------------------------------------------------------------------------------------
def _frame(jets: pd.DataFrame, mass) -> pd.DataFrame:
    """Tile the kinematics of ``jets`` once per row of ``mass`` (copies, n) with those masses."""
    mass = np.atleast_2d(mass)
    return pd.DataFrame({"pt": np.tile(jets["pt"].to_numpy(float), len(mass)),
                         "abs_eta": np.tile(np.abs(jets["eta"].to_numpy(float)), len(mass)),
                         "ntrk": np.tile(jets["ntrk"].to_numpy(float), len(mass)), "mass": mass.ravel()})


def fidelity_report(jets: pd.DataFrame, gen_mass: np.ndarray, seed: int, classifier: bool = True) -> pd.DataFrame:
    """``gan4hep.metrics.fidelity_report`` of real vs dressed jets (pT, |eta|, N_track, mass; weighted);
    ``gen_mass`` (copies, n_jets) GeV. Only the mass row can differ; the classifier AUC tests the joint
    distribution, i.e. the conditional mass."""
    ref = _frame(jets, jets["mass"].to_numpy(float)[None])
    gen = _frame(jets, gen_mass)
    w = jets["weight"].to_numpy(float)
    copies = len(np.atleast_2d(gen_mass))
    return metrics.fidelity_report(ref, gen, seed=seed, weights_ref=w, weights_gen=np.tile(w, copies),
                                   classifier=classifier)


def fidelity(jets: Mapping, masses: Mapping, regions: list[str], seed: int, preset: str, out: Path,
             classifier: bool = True) -> pd.DataFrame:
    """``OUT/fidelity.csv``: the jet-mass row of ``fidelity_report`` and the classifier AUC per region and method.

    Args:
        masses: {region: {method label: (copies, n_jets) masses in GeV}}.
        classifier: run the classifier two-sample test (``--no-classifier`` turns it off).
    """
    rows = []
    for r in regions:
        for lab, mm in masses[r].items():
            rep = fidelity_report(jets[r], mm, seed, classifier=classifier)
            rows.append({"preset": preset, "region": r, "method": lab, **rep.loc["mass"].to_dict(),
                         "classifier_auc": rep.attrs["classifier_auc"],
                         "classifier_auc_uncertainty": rep.attrs["classifier_auc_uncertainty"]})
    table = pd.DataFrame(rows)
    _write_csv(table, Path(out) / "fidelity.csv")
    return table


# ---- comparison with the paper ----------------------------------------------------------------------------------
def compare_with_paper(res: Mapping, out: Path | None = None) -> list[str]:
    """Lines comparing our numbers (``res``: the metrics.json record) with the paper's statements and numbers
    (published.py); written to ``OUT/comparison.md`` if ``out`` is given."""
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
        txt = ", ".join(f"{lab} {panel[lab]['high_summj_error']:.0%}" for lab in ("Template", "GAN", "Flow")
                        if lab in panel)
        lines.append(f"[Fig. 6, N_track < {pub['ntrk_cut'][0]} (published), per-jet eff. "
                     f"{pub['per_jet_efficiency'][0]:.0%}: GAN ~{pub['gan_high_summj_error'][0]:.0%}, template > "
                     f"{pub['template_high_summj_error_above'][0]:.0%} (published)] ours: N_track < "
                     f"{f6['ntrk_cut_jet50']} (per-jet eff. {f6['per_jet_efficiency_jet50']:.0%}, event eff. "
                     f"{panel['event_efficiency']:.0%}; published ~{pub['event_efficiency'][0]:.0%}), high-Sum m_J "
                     f"ratio error: {txt}")
    n = res["table1_jets"]
    lines.append(f"[sample, published: {published.SAMPLE['control_jets'][0]:.3g} control / "
                 f"{published.SAMPLE['validation_jets'][0]:.3g} validation jets] ours: {n['control']} / "
                 f"{n['validation']}")
    if out is not None:
        text = f"# Comparison with the paper (preset {res['preset']})\n\n" + "".join(f"- {line}\n" for line in lines)
        with io.atomic_path(Path(out) / "comparison.md") as tmp:
            Path(tmp).write_text(text)
    return lines
