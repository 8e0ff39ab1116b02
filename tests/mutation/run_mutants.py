"""Hand-made mutants of the paper evaluation and observable modules and data_prep/validate.py (issue 22).

    python tests/mutation/run_mutants.py            # every mutant (about 25 minutes on 2 cores)
    python tests/mutation/run_mutants.py LR1 BO7    # some of them

Each mutant replaces one computed output (a table column, an observable) by its published value or a constant,
is applied alone, runs the tests named with it (pytest -x) and is restored (checked by SHA-256). A mutant that no
test catches is printed as SURVIVED: add a test that fails on it. Results of the last full run: README.md here.
"""
import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
PYTHON = sys.executable

# (id, file, old, new, tests (run in order, -x))
LR = "papers/lebese_ruan/evaluate.py"
LRT = ["tests/test_paper_lebese_ruan.py::test_table1_numbers_on_a_known_shift"]
SM = "papers/lebese_ruan/sample_means.py"
V = "data_prep/validate.py"
VT = ["tests/test_data_prep_dilepton.py::test_validate_means_on_known_events",
      "tests/test_paper_lebese_ruan.py::test_sample_means_beside_published_table1",
      "tests/test_data_prep_dilepton.py::test_validate_writes_means_table"]
BE = "papers/butter_plehn_winterhalder/evaluate.py"
BO = "papers/butter_plehn_winterhalder/observables.py"
B = "tests/test_paper_butter_plehn_winterhalder.py::"
BT = [B + t for t in ("test_observables_table_against_vector", "test_momentum_balance_on_a_known_imbalance", "test_bulk_deviation_known_answer",
                      "test_observable_deviations_and_the_truth_floor", "test_pt_t_vs_pt_b_relative_difference",
                      "test_network_parameters_this_run_column_is_the_published_table",
                      "test_peak_fractions_and_distance", "test_peak_summary_of_a_sampler",
                      "test_peak_fit_recovers_breit_wigner", "test_width_comparison_with_and_without_mmd",
                      "test_resonance_masses_match_numpy_kinematics", "test_momentum_balance_and_tail",
                      "test_baseline_chain_with_tiny_networks")]
NE = "papers/lin_bhimji_nachman/evaluate.py"
NO = "papers/lin_bhimji_nachman/observables.py"
N = "tests/test_paper_lin_bhimji_nachman.py::"
NT = [N + t for t in ("test_separation_power_identical_and_disjoint", "test_eight_equal_statistics_regions",
                      "test_sum_mj_and_ntrk_cut", "test_ratio_error_hand_computation",
                      "test_fig6_numbers_on_constructed_masses", "test_fig5_panels_on_constructed_masses", "test_separation_power_table_and_comparison_lines",
                      "test_region_selection_and_table1")] + [N + "test_smoke_run_writes_every_output"]

MUTANTS = [
    # ---- Lebese & Ruan Table 1 / metrics.json
    ("LR1 GAN mean := published WGAN-GP mean", LR, '"GAN mean": r["mean_gen"]', '"GAN mean": pub["wgan_gp"]', LRT),
    ("LR2 relative difference := published", LR, '"relative difference": r["relative_mean_difference"]',
     '"relative difference": pub["rel_diff"]', LRT),
    ("LR3 KS := 0", LR, '"KS": r["ks"]', '"KS": 0.0', LRT),
    ("LR4 W1/std := 0", LR, '"W1 / std(MC)": r["wasserstein_over_std"]', '"W1 / std(MC)": 0.0', LRT),
    ("LR5 MC mean := published MC mean", LR, '"MC mean": r["mean_ref"]', '"MC mean": pub["mc"]', LRT),
    ("LR6 metrics.json ks := 0", LR, '"ks": float(c.table["KS"][i])', '"ks": 0.0', LRT),
    ("LR7 floor worst KS := 0", LR, '"worst_ks": float(np.max(metrics.ks_statistic(test, validation)))',
     '"worst_ks": 0.0', LRT),
    ("LR8 worst rel. diff := published worst 0.04", LR, 'return float(self.table["relative difference"].max())',
     'return 0.04', LRT),
    ("LR9 classifier AUC := 0.5", LR, 'return self.report.attrs["classifier_auc"], self.report.attrs',
     'return 0.5, self.report.attrs', LRT),
    # ---- our sample means beside Table 1 (moved from data_prep/validate.py) and data_prep/validate.py
    ("SM1 ours raw := published MC means", SM, 'table["published"] = pub\n',
     'table["published"] = pub\n    table["ours_raw"] = pub\n', VT),
    ("SM2 ours tail-cut := published MC means", SM, 'table["published"] = pub\n',
     'table["published"] = pub\n    table["ours_tail_cut"] = pub\n', VT),
    ("SM3 ratio := 1", SM, 'table["ratio_raw"] = table["ours_raw"] / pub', 'table["ratio_raw"] = 1.0', VT),
    ("V1 ours raw := constant", V, '"ours_raw": np.average(df[c], weights=w)', '"ours_raw": 1.0', VT),
    ("V2 tail cut keeps every event", V, "    return df[keep]", "    return df", VT),
    ("V3 tail-cut mean := raw mean", V, '"ours_tail_cut": np.average(cut[c], weights=wc)',
     '"ours_tail_cut": np.average(df[c], weights=w)', VT),
    ("V4 unweighted means", V, 'w = df["weight"].to_numpy() if "weight" in df else np.ones(len(df))',
     'w = np.ones(len(df))', VT),
    # ---- Butter, Plehn & Winterhalder evaluate.py
    ("BE1 this-run layers := published", BE, '("Layers", n_layers, model.LAYERS, pub["layers"])',
     '("Layers", pub["layers"], model.LAYERS, pub["layers"])', BT),
    ("BE2 this-run weights G := published", BE, '("Trainable weights G", n_g, n_g, pub["trainable_weights_G"])',
     '("Trainable weights G", pub["trainable_weights_G"], n_g, pub["trainable_weights_G"])', BT),
    ("BE3 this-run units := literal 512", BE, '("Units per layer", units, model.UNITS, pub["units_per_layer"])',
     '("Units per layer", 512, model.UNITS, pub["units_per_layer"])', BT),
    ("BE4 bulk mean := published 10 % level", BE,
     'bulk_mean_abs_dev_all_observables=float(np.mean([v["mean_abs_dev"] for v in per_obs.values()]))',
     'bulk_mean_abs_dev_all_observables=published.BULK_AGREEMENT_LEVEL', BT),
    ("BE5 momentum balance median := published 1 % level", BE,
     '"median_px_over_sumpt": float(np.median(rx))', '"median_px_over_sumpt": published.MOMENTUM_CONSERVATION_LEVEL',
     BT),
    ("BE6 pT,t vs pT,b rel. diff := 0", BE,
     'return float(np.nanmedian(np.abs(rel[ok]))) if ok.any() else float("nan")', 'return 0.0', BT),
    ("BE7 per-observable W1 := 0", BE, '{"w1": float(metrics.wasserstein(truth_t[c].to_numpy(), gen_t[c].to_numpy())),',
     '{"w1": 0.0,', BT),
    ("BE8 truth floor := README's 0.05", BE,
     'return float(np.mean([v["mean_abs_dev"] for v in observable_deviations(even, odd, min_count=50).values()]))',
     'return 0.05', BT),
    ("BE9 mmd_closer := True", BE, "closer = bool(da < db)", "closer = True", BT),
    ("BE10 GAN peak fits := truth fits", BE, '**{k: obs.peaks(v) for k, v in gens.items()}}',
     '**{k: obs.peaks(truth) for k, v in gens.items()}}', BT),
    ("BE11 generated_events.root := truth", BE, 'generated_events_root(gens[name], out / "generated_events.root"',
     'generated_events_root(truth[:n], out / "generated_events.root"', BT),
    ("BE12 fidelity on truth vs truth", BE, 'rep = fidelity_table(truth, gens[name], name',
     'rep = fidelity_table(truth, truth, name', BT),
    # ---- Butter, Plehn & Winterhalder observables.py
    ("BO1 momentum_balance := zeros", BO,
     "return np.abs(sum(p[0] for p in v)) / spt, np.abs(sum(p[1] for p in v)) / spt",
     "return 0 * spt, 0 * spt", BT),
    ("BO2 bulk_deviation mean := 0", BO, '"mean_abs_dev": float(dev.mean())', '"mean_abs_dev": 0.0', BT),
    ("BO3 bulk_deviation max := mean", BO, '"max_abs_dev": float(dev.max())', '"max_abs_dev": float(dev.mean())', BT),
    ("BO4 bulk_deviation stat := 0", BO, '"stat_rel_uncertainty_mean": float(stat.mean())',
     '"stat_rel_uncertainty_mean": 0.0', BT),
    ("BO5 tail_fraction := ones", BO,
     "return 1.0 - np.searchsorted(values, thresholds, side=\"right\") / len(values)",
     "return np.ones(np.shape(thresholds))", BT),
    ("BO6 masses := pole masses", BO, 'return t[["m_W1", "m_W2", "m_t1", "m_t2"]].to_numpy()',
     'return np.tile([80.4, 80.4, 173.0, 173.0], (len(t), 1))', BT),
    ("BO7 table: quark energies := 0", BO, 'cols[f"E_{name}"] = p[3]', 'cols[f"E_{name}"] = 0 * p[3]', BT),
    ("BO8 fit_peak position := pole", BO, "out.update(position=float(p[1]),", "out.update(position=centre,", BT),
    ("BO9 fit_peak iqr := 2.1", BO, '"iqr": float(q75 - q25)', '"iqr": 2.1', BT),
    ("BO10 peak_fractions := 0.9", BO, "return {f\"{name}_within_{d}GeV\": float(np.mean(np.abs(v - pole) < d))",
     "return {f\"{name}_within_{d}GeV\": 0.9", BT),
    ("BO11 peak_distance := 0", BO, "return float(np.mean(wasserstein(np.clip(m_ref, lo, hi), np.clip(m, lo, hi))))",
     "return 0.0", BT),
    # ---- Lin, Bhimji & Nachman evaluate.py
    ("NE1 Fig. 6 N_track cut := published 26", NE, '"ntrk_cut_jet50": x_jet,', '"ntrk_cut_jet50": 26,', NT),
    ("NE2 high-Sum m_J error := published 0.20", NE,
     '"high_summj_error": float(np.nanmean(err[tail])) if np.isfinite(err[tail]).any()',
     '"high_summj_error": 0.20 if np.isfinite(err[tail]).any()', NT),
    ("NE3 event efficiency := published 0.06", NE,
     'panel = {"events": int(sel.sum()), "event_efficiency": float(ev_w[sel].sum() / ev_w.sum())}',
     'panel = {"events": int(sel.sum()), "event_efficiency": 0.06}', NT),
    ("NE4 template value := its floor", NE,
     '"value": t["value"], "uncertainty": t["dressing_spread"]', '"value": t["floor"], "uncertainty": t["dressing_spread"]',
     NT),
    ("NE5 GAN value := template value", NE, '"value": v[r]["mean"], "uncertainty": v[r]["std"]',
     '"value": sp["template"][r]["value"], "uncertainty": v[r]["std"]', NT),
    ("NE6 comparison: our jets := published", NE,
     'f"{n[\'validation\']}")', 'f"{published.SAMPLE[\'validation_jets\'][0]:.3g}")', NT),
    ("NE7 comparison: GAN below template always", NE, "below = {k: v[\"validation\"][\"mean\"] < t for k, v in gans.items()}",
     "below = {k: True for k, v in gans.items()}", NT),
    ("NE8 Table 1 jets := 0", NE, '"events": int(part["event"].nunique()), "jets": len(part),',
     '"events": int(part["event"].nunique()), "jets": 0,', NT),
    ("NE9 GAN mean over inits := 0", NE, 'scores[key][r] = {"mean": float(np.mean(vals))',
     'scores[key][r] = {"mean": 0.0', NT),
    ("NE10 template dressing seed := GAN's", NE, "copies=recipe.dress, seed=recipe.seed + 1)",
     "copies=recipe.dress, seed=recipe.seed + 2)", NT),
    # ---- Lin, Bhimji & Nachman observables.py
    ("NO1 ratio_error without the stat. error", NO, "return r, sig, np.sqrt((r - 1.0) ** 2 + sig**2)",
     "return r, sig, np.abs(r - 1.0)", NT),
    ("NO2 ratio_error := ones", NO, "return r, sig, np.sqrt((r - 1.0) ** 2 + sig**2)",
     "return np.ones_like(r), sig, np.ones_like(r)", NT),
    ("NO3 sum_mj := 0", NO, "sums[k] = np.bincount(idx, weights=mass[k][lead], minlength=len(events))",
     "sums[k] = 0.0", NT),
    ("NO4 separation power := its floor", NO, 'return {"value": float(np.dot(fracs, values))',
     'return {"value": float(np.dot(fracs, floors))', NT),
    ("NO5 effective_n := number of jets", NO, "return float(w.sum() ** 2 / np.sum(w * w))", "return float(len(w))", NT),
    ("NO6 N_track cut := published (26, 0.5)", NO, "return int(cands[i]), float(fr[i])", "return 26, 0.5", NT),
    ("NO7 max N_track := 0", NO, 'return lead.groupby("event")["ntrk"].max().sort_index()',
     'return lead.groupby("event")["ntrk"].max().sort_index() * 0', NT),
    ("NO8 all jets in region 0", NO, "return 4 * hp + 2 * he + hn", "return 0 * hp", NT),
    ("NE11 Fig. 5 jets per panel := 0", NE, '"jets": int(m.sum()),', '"jets": 0,', NT),
    ("NE12 Fig. 5 generated masses := real", NE, "gens = {lab: mm[:, m].ravel() for lab, mm in masses.items()}",
     "gens = {lab: np.tile(real, len(mm)) for lab, mm in masses.items()}", NT),
]


if __name__ == "__main__":
    only = sys.argv[1:]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    for mid, path, old, new, tests in MUTANTS:
        if only and not any(mid.split()[0] == o or mid.startswith(o) for o in only):
            continue
        full = os.path.join(ROOT, path)
        original = open(full, "rb").read()
        digest = hashlib.sha256(original).hexdigest()
        text = original.decode()
        n = text.count(old)
        if n != 1:
            print(f"{mid}: SKIPPED (pattern found {n} times)", flush=True)
            continue
        t0 = time.time()
        try:
            open(full, "w").write(text.replace(old, new))
            r = subprocess.run(["nice", "-n", "10", PYTHON, "-m", "pytest", "-q", "-x", "-rf",
                                "-p", "no:cacheprovider", *tests], cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=1800)
        finally:
            open(full, "wb").write(original)
            assert hashlib.sha256(open(full, "rb").read()).hexdigest() == digest, f"{full} not restored"
        failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", r.stdout, re.M)
        status = f"CAUGHT by {failed[0]}" if failed else ("SURVIVED" if r.returncode == 0 else f"rc {r.returncode}: " + r.stdout[-300:])
        print(f"{mid}: {status} ({time.time() - t0:.0f} s)", flush=True)
