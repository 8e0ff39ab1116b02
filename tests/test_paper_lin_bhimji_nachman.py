"""Lin, Bhimji & Nachman reproduction: template binning and dressing, separation power (section 3.3), regions, the
Fig. 6 ratio error and Sum m_J panels against hand / numpy computations, the comparison lines, the recipe and its
presets, the command lines (--help, --resume with another preset), and smoke runs of templates.py (the circle-WGAN
and the vanilla GAN with skew-normal noise) whose numbers are recomputed from their outputs."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gan4hep.recipes import deviations, from_dict, to_dict
from gan4hep.runs import Run
from papers.lin_bhimji_nachman import data, evaluate, observables, templates, train
from papers.lin_bhimji_nachman.recipe import PAPER, PRESETS, QUICK, Recipe

ROOT = Path(__file__).resolve().parents[1]


def synthetic_sample(n_events=600, seed=0):
    """Events of 3 jets (control), 4 jets (validation) and 4 jets (signal) with mass rising with pT and N_track."""
    rng = np.random.default_rng(seed)
    rows = []
    for ev in range(n_events):
        region = [1, 1, 2, 3][ev % 4]
        njet = 3 if region == 1 else 4
        w = rng.uniform(0.5, 2.0)
        pts = np.sort(rng.uniform(200, 1500, njet))[::-1]
        for pt in pts:
            ntrk = rng.integers(5, 60)
            mass = 0.08 * pt * (0.5 + ntrk / 60) * rng.gamma(4, 0.25)
            rows.append((ev, pt, rng.uniform(-2, 2), mass, ntrk, njet, region, w))
    df = pd.DataFrame(rows, columns=data.COLUMNS)
    df["ntrk"] = df["ntrk"].astype(np.int32)
    return df


def test_template_binning_60_histograms_and_edges():
    pt = np.array([200.0, 350.0, 900.0, 2000.0])
    t = templates.MassTemplates().fit(pt, [0.1, -0.7, 1.2, 1.9], [50, 60, 70, 80])
    assert t.n_templates == 60 and t.cdf.shape[0] == 60
    np.testing.assert_allclose(t.eta_edges, [0, 0.5, 1.0, 1.5, 2.0])
    assert len(t.pt_edges) == 16
    np.testing.assert_allclose(np.diff(np.log10(t.pt_edges)), np.log10(2000 / 200) / 15)
    assert t.pt_edges[0] == pytest.approx(200) and t.pt_edges[-1] == pytest.approx(2000)
    # |eta| bins: eta = -0.7 and 0.7 share a bin; pT at the upper edge stays in the last bin
    assert t.bin_index(350.0, -0.7) == t.bin_index(350.0, 0.7) == 1 * 15 + int(np.log10(350 / 200) / (1 / 15))
    assert t.bin_index(2000.0, 1.9) == 59 and t.bin_index(5000.0, 3.0) == 59 and t.bin_index(100.0, 0.0) == 0


def test_dressing_draws_from_the_jets_bin():
    rng = np.random.default_rng(1)
    pt = 10 ** rng.uniform(np.log10(200), np.log10(2000), 20000)
    eta = rng.uniform(-2, 2, 20000)
    t0 = templates.MassTemplates(mass_bin=1.0, pt_range=(200.0, 2000.0))
    t0.fit([200.0, 2000.0], [0.0, 0.0], [0.0, 1.0])
    idx = t0.bin_index(pt, eta)
    mass = 10.0 * idx + rng.uniform(0, 9, idx.size)  # bin b holds masses in [10 b, 10 b + 9)
    t = templates.MassTemplates(mass_bin=1.0, pt_range=(200.0, 2000.0)).fit(pt, eta, mass)
    q_pt = 10 ** rng.uniform(np.log10(200), np.log10(2000), 3000)
    q_eta = rng.uniform(-2, 2, 3000)
    m = t.dress(q_pt, q_eta, copies=3, seed=5)
    b = t.bin_index(q_pt, q_eta)
    assert m.shape == (3, 3000)
    assert np.all(m >= 10.0 * b) and np.all(m < 10.0 * b + 9.0 + 1e-9)
    # weights enter: a bin filled with two masses weighted 1:9 draws them 1:9
    t2 = templates.MassTemplates(mass_bin=1.0).fit([300.0, 300.0], [0.2, 0.2], [10.5, 20.5], [1.0, 9.0])
    d = t2.dress(np.full(20000, 300.0), np.full(20000, 0.2), seed=2).ravel()
    assert np.mean(d > 15) == pytest.approx(0.9, abs=0.01)


def test_separation_power_identical_and_disjoint():
    df = synthetic_sample(800)
    jets = df[df["region"] == 1].reset_index(drop=True)
    same = observables.separation_power_8(jets, jets["mass"].to_numpy()[None])
    assert same["value"] == pytest.approx(0.0, abs=1e-12)
    assert len(same["regions"]) == 8
    disjoint = observables.separation_power_8(jets, jets["mass"].to_numpy()[None] + 1e4)
    assert disjoint["value"] == pytest.approx(1.0)
    # a nearly perfect model (each mass smeared by 10 %) sits near the floor, a mass scale x2 far above it
    rng = np.random.default_rng(0)
    smeared = observables.separation_power_8(jets, jets["mass"].to_numpy() * rng.gamma(100, 0.01, len(jets)))
    assert smeared["value"] < 1.5 * smeared["floor"]
    doubled = observables.separation_power_8(jets, 2 * jets["mass"].to_numpy()[None])
    assert doubled["floor"] == smeared["floor"] and doubled["value"] > 3 * doubled["floor"]
    assert np.dot(doubled["fractions"], doubled["regions"]) == pytest.approx(doubled["value"])
    assert sum(doubled["fractions"]) == pytest.approx(1.0)
    # the floor B/4 (1/N_eff,real + 1/N_eff,gen) per region, combined with the regions' fractions: unweighted, with
    # 20 bins and `copies` generated masses per jet, 8 regions x 20/4 (1 + 1/copies) / N_jets
    for copies in (1, 10):
        gen = np.tile(jets["mass"].to_numpy(), (copies, 1))
        unweighted = observables.separation_power_8(jets, gen, weighted=False)
        assert unweighted["floor"] == pytest.approx(8 * 5 * (1 + 1 / copies) / len(jets), rel=1e-9)
    assert observables.effective_n([1.0, 1.0, 1.0, 1.0]) == 4.0
    assert observables.effective_n([1.0, 3.0]) == pytest.approx(16 / 10)


def test_eight_equal_statistics_regions():
    rng = np.random.default_rng(3)
    n = 40000
    pt, eta, ntrk, w = rng.uniform(200, 900, n), rng.uniform(0, 2, n), rng.integers(5, 80, n), rng.uniform(0.5, 2, n)
    cuts = observables.kinematic_cuts(pt, eta, ntrk, w)
    reg = observables.assign_kinematic_region(pt, eta, ntrk, cuts)
    frac = np.bincount(reg, weights=w, minlength=8) / w.sum()
    np.testing.assert_allclose(frac, 1 / 8, atol=0.01)
    assert set(reg) == set(range(8))
    # region 7: high pT, high |eta| (within high pT), high N_track (within that quarter)
    sel = reg == 7
    assert np.all(pt[sel] >= cuts["pt"]) and np.all(eta[sel] >= cuts["eta"][1]) and np.all(ntrk[sel] >= cuts["ntrk"][3])


def test_region_selection_and_table1(tmp_path):
    df = synthetic_sample(400)
    path = tmp_path / "jets.parquet"
    df.to_parquet(path)
    jets = data.read_jets(path)
    assert set(data.region(jets, "validation")["region"]) == {2}
    assert len(data.region(jets, "control")) == (df["region"] == 1).sum()
    t1 = evaluate.table1(jets, tmp_path)
    assert list(t1["region"]) == ["control", "validation", "validation", "signal", "signal"]
    assert t1.loc[0, "jets"] == (df["region"] == 1).sum() and t1.loc[1, "events"] == 100
    w = df.loc[df["region"] == 1, "weight"]
    assert t1.loc[0, "weighted_jets"] == pytest.approx(w.sum())
    assert t1.loc[0, "effective_jets"] == pytest.approx(w.sum() ** 2 / (w**2).sum())  # Kish
    assert pd.read_csv(tmp_path / "table1.csv")["jets"].tolist() == t1["jets"].tolist()
    train, es = data.split_control(data.region(jets, "control"), seed=1)
    assert not set(train["event"]) & set(es["event"]) and abs(len(train) - len(es)) <= 3
    # data_prep's Table 1 selection, as used for the sample
    from data_prep.qcd_jets import assign_region
    np.testing.assert_array_equal(assign_region([3, 4, 4, 5, 5, 4], [300, 500, 500, 300, 300, 350],
                                                [0.5, 2.0, 0.5, 2.0, 0.5, 2.0], [0, 0, 1200, 0, 900, 0]),
                                  [1, 2, 3, 2, 3, 0])
    empty = jets[jets["region"] != 3]
    empty.attrs["path"] = str(path)
    with pytest.raises(ValueError, match="signal region.*region"):
        data.region(empty, "signal")
    df.drop(columns="ntrk").to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(KeyError, match="ntrk"):
        data.read_jets(tmp_path / "bad.parquet")


def test_sum_mj_and_ntrk_cut():
    jets = pd.DataFrame({"event": [0, 0, 0, 0, 0, 1, 1, 1, 1], "rank": [0, 1, 2, 3, 4, 0, 1, 2, 3],
                         "ntrk": [10, 20, 30, 40, 99, 5, 6, 7, 8]})
    events, s = observables.sum_mj(jets, np.arange(9.0))
    np.testing.assert_array_equal(events, [0, 1])
    np.testing.assert_allclose(s[0], [0 + 1 + 2 + 3, 5 + 6 + 7 + 8])  # the fifth jet is not summed
    assert list(observables.max_ntrk_leading4(jets)) == [40, 8]
    x, eff = observables.ntrk_cut_for_efficiency(np.arange(100), np.ones(100), 0.5)
    assert x == 50 and eff == pytest.approx(0.5)


def test_ratio_error_hand_computation():
    """Two bins of 100 real events (weight 1); the generated sample has 100 and 200: r = (1, 2), sigma_r = r
    sqrt(1/100 + 1/n_gen), error = sqrt((r - 1)^2 + sigma_r^2)."""
    real = np.r_[np.full(100, 10.0), np.full(100, 30.0)]
    gen = np.r_[np.full(100, 10.0), np.full(200, 30.0)]
    r, sig, err = observables.ratio_error(real, np.ones(200), gen, np.ones(300), [0.0, 20.0, 40.0])
    np.testing.assert_allclose(r, [1.0, 2.0])
    np.testing.assert_allclose(sig, [np.sqrt(0.02), 2 * np.sqrt(0.015)])
    np.testing.assert_allclose(err, [np.sqrt(0.02), np.sqrt(1 + 0.06)])
    # weights: each generated copy weighted 1/2 (two copies per real event) gives the same ratio, a smaller error
    r2, sig2, _ = observables.ratio_error(real, np.ones(200), np.r_[gen, gen], np.full(600, 0.5), [0.0, 20.0, 40.0])
    np.testing.assert_allclose(r2, r)
    np.testing.assert_allclose(sig2, r * np.sqrt(1 / 100 + 0.5 / np.array([100, 200])))


def _validation_jets(tmp_path, n_events=2400):
    path = tmp_path / "jets.parquet"
    synthetic_sample(n_events).to_parquet(path)
    return data.region(data.read_jets(path), "validation")


def _numpy_sum_mj(jets, mass):
    """Per-event Sum m_J of the four leading jets and the per-event weight and max N_track, with pandas."""
    lead = jets.assign(m=mass)[jets["rank"] < 4]
    g = lead.groupby("event")
    return g["m"].sum().to_numpy(), g["weight"].first().to_numpy(), g["ntrk"].max().to_numpy()


def test_fig6_numbers_on_constructed_masses(tmp_path):
    """Fig. 6's cuts, efficiencies and ratio errors against a pandas / numpy recomputation: a generator that
    returns the real masses (ratio 1, error = the statistical error only) and one that doubles them."""
    val = _validation_jets(tmp_path)
    mass = val["mass"].to_numpy(float)
    res = evaluate.fig6(val, {"Same": mass[None], "Double": 2 * mass[None]}, tmp_path, "quick", n_bins=4)
    assert (tmp_path / "fig6.png").stat().st_size > 1000

    real, w, maxn = _numpy_sum_mj(val, mass)
    lead = val[val["rank"] < 4]
    x_jet = min(range(100), key=lambda x: abs(lead["weight"][lead["ntrk"] < x].sum() / lead["weight"].sum() - 0.5))
    x_evt = min(range(100), key=lambda x: abs(w[maxn < x].sum() / w.sum() - 0.5))
    assert (res["ntrk_cut_jet50"], res["ntrk_cut_event50"]) == (x_jet, x_evt)
    assert res["per_jet_efficiency_jet50"] == pytest.approx(lead["weight"][lead["ntrk"] < x_jet].sum()
                                                            / lead["weight"].sum())
    edges = np.asarray(res["edges"])
    assert len(edges) == 5 and edges[0] == pytest.approx(real.min()) and edges[-1] == pytest.approx(real.max())
    tail = edges[:-1] >= res["tail_from_GeV"] - 1e-9
    assert tail.sum() == 1  # the top quarter of 4 equal-statistics bins
    for label, x in (("inclusive", None), (f"N_track < {x_evt} (50% of events)", x_evt),
                     (f"N_track < {x_jet} (50% per jet)", x_jet)):
        panel = res["panels"][label]
        sel = np.ones(len(real), bool) if x is None else maxn < x
        assert panel["events"] == sel.sum() and panel["event_efficiency"] == pytest.approx(w[sel].sum() / w.sum())
        hist = lambda v, wt: np.histogram(np.clip(v, edges[0], edges[-1]), edges, weights=wt)[0]  # noqa: E731
        rc, rv = hist(real[sel], w[sel]), hist(real[sel], w[sel] ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = np.sqrt(2 * rv) / rc
            np.testing.assert_allclose(panel["Same"]["ratio"], np.where(rc > 0, 1.0, np.nan))
            np.testing.assert_allclose(panel["Same"]["error"], stat, rtol=1e-9)
            gc, gv = hist(2 * real[sel], w[sel]), hist(2 * real[sel], w[sel] ** 2)
            ratio = gc / rc
            error = np.sqrt((ratio - 1) ** 2 + ratio**2 * (rv / rc**2 + np.where(gc > 0, gv / gc**2, 0.0)))
        np.testing.assert_allclose(panel["Double"]["ratio"], ratio, rtol=1e-9)
        np.testing.assert_allclose(panel["Double"]["error"], error, rtol=1e-9)
        for lab, err in (("Same", stat), ("Double", error)):
            want = np.nanmean(err[tail]) if np.isfinite(err[tail]).any() else np.nan
            np.testing.assert_allclose(panel[lab]["high_summj_error"], want, rtol=1e-9)
            np.testing.assert_allclose(panel[lab]["last_bin_error"], err[-1], rtol=1e-9)


def test_fig5_panels_on_constructed_masses(tmp_path):
    """Fig. 5's panels: weighted tertiles of pT, |eta| and N_track, the jets in each and the weighted mean masses,
    real and a generator that doubles every mass (its means are twice the real ones)."""
    val = _validation_jets(tmp_path)
    mass, w = val["mass"].to_numpy(float), val["weight"].to_numpy(float)
    summary = evaluate.fig5(val, {"GAN": 2 * mass[None]}, tmp_path, "quick")
    assert (tmp_path / "fig5.png").stat().st_size > 1000 and len(summary) == 9
    for name, x in (("pt", val["pt"]), ("abs_eta", np.abs(val["eta"])), ("ntrk", val["ntrk"])):
        x = np.asarray(x, float)
        for c in range(3):
            lo, hi = summary[f"{name}_{c}"]["range"]
            sel = (x >= lo) & (x < hi)
            panel = summary[f"{name}_{c}"]
            assert panel["jets"] == sel.sum() > 0
            assert panel["mean_mass"]["Real"] == pytest.approx(np.average(mass[sel], weights=w[sel]), rel=1e-9)
            assert panel["mean_mass"]["GAN"] == pytest.approx(2 * panel["mean_mass"]["Real"], rel=1e-9)
            if name != "ntrk":  # continuous: equal weighted thirds (integer N_track splits where its values allow)
                assert w[sel].sum() / w.sum() == pytest.approx(1 / 3, abs=0.02)
        assert sum(summary[f"{name}_{c}"]["jets"] for c in range(3)) == len(val)


def test_separation_power_table_and_comparison_lines(tmp_path):
    """separation_power.csv holds the scores it is given; comparison.md quotes our numbers beside the published
    ones (published.py) and says whether the GANs are below the template."""
    from papers.lin_bhimji_nachman import published

    t = {"value": 0.3, "floor": 0.05, "dressing_spread": 0.01, "unweighted": {"value": 0.2, "floor": 0.02}}
    sp = {"template": {"validation": t}, "vanilla_skew": {"validation": {"mean": 0.25, "std": 0.02,
                                                                          "unweighted_mean": 0.15}}}
    table = evaluate.separation_power_table(sp, ["validation"], QUICK, 60, tmp_path)
    on_disk = pd.read_csv(tmp_path / "separation_power.csv")
    assert on_disk["value"].tolist() == [0.05, 0.3, 0.25] == table["value"].tolist()
    assert on_disk["unweighted"].tolist() == [0.02, 0.2, 0.15]
    assert on_disk["uncertainty"].tolist()[1:] == [0.01, 0.02]
    assert on_disk["method"].tolist() == ["floor", "template", "gan"]

    panel = {"event_efficiency": 0.07, "Template": {"high_summj_error": 1.5}, "GAN": {"high_summj_error": 0.4}}
    res = {"preset": "quick", "separation_power": sp, "epochs_to_reach": {"vanilla_skew": 7},
           "fig6": {"panels": {"N_track < 25 (50% per jet)": panel}, "ntrk_cut_jet50": 25,
                    "per_jet_efficiency_jet50": 0.49},
           "table1_jets": {"control": 15732, "validation": 502, "signal": 4}}
    lines = evaluate.compare_with_paper(res, tmp_path)
    text = (tmp_path / "comparison.md").read_text()
    assert all(line in text for line in lines) and "(preset quick)" in text
    assert "template 0.3000; vanilla_skew 0.2500 -> all below the template (floor 0.0500)" in lines[0]
    assert "vanilla_skew 7" in lines[1]
    assert f"N_track < {published.FIG6['ntrk_cut'][0]} (published)" in lines[2]
    assert "ours: N_track < 25 (per-jet eff. 49%, event eff. 7%" in lines[2]
    assert "ratio error: Template 150%, GAN 40%" in lines[2]
    assert lines[3].endswith("ours: 15732 / 502")
    sp["vanilla_skew"]["validation"]["mean"] = 0.35
    assert "NOT all below" in evaluate.compare_with_paper(res)[0]


def _smoke(tmp_path, extra):
    sample = tmp_path / "jets.parquet"
    synthetic_sample(1200).to_parquet(sample)
    out = tmp_path / "run"
    res = templates.main(["--input", str(sample), "--out", str(out), "--epochs", "1", "--n-init", "1",
                          "--seed", "3", *extra])
    for name in ["table1.csv", "separation_power.csv", "fidelity.csv", "metrics.json", "templates.npz"] + \
            [f"fig{i}.{ext}" for i in (4, 5, 6) for ext in ("png", "pdf")]:
        assert (out / name).stat().st_size > 0, name
    sp = pd.read_csv(out / "separation_power.csv")
    assert {"method", "variant", "value"} <= set(sp.columns) and set(sp["preset"]) == {"quick"}
    assert {"template", "gan", "floor"} == set(sp["method"])
    m = json.loads((out / "metrics.json").read_text())
    assert m["preset"] == "quick" and m["comparison"]
    assert res["separation_power"]["template"]["validation"]["value"] > 0
    regions = synthetic_sample(1200)["region"]
    assert m["table1_jets"] == {"control": int((regions == 1).sum()), "validation": int((regions == 2).sum()),
                                "signal": int((regions == 3).sum())}
    assert pd.read_csv(out / "table1.csv")["jets"].tolist()[0] == (regions == 1).sum()
    # the template and GAN rows of separation_power.csv, recomputed from the sample, the refitted templates and the
    # exported generator (one initialisation: its value is the mean)
    recipe = from_dict(Recipe, json.loads((out / "recipe.json").read_text()), base=PAPER)
    jets = data.prepare(data.read_jets(sample), recipe.seed)
    tmpl = templates.fit_templates(jets["control"], recipe, tmp_path)
    val = jets["validation"]
    row = sp[(sp["region"] == "validation")].set_index("method")
    dressed = tmpl.dress(val["pt"], val["eta"], copies=recipe.dress, seed=recipe.seed + 1)
    assert row.loc["template", "value"] == pytest.approx(
        observables.separation_power_8(val, dressed, recipe.mass_bins)["value"], rel=1e-9)
    assert row.loc["floor", "value"] == pytest.approx(
        observables.separation_power_8(val, dressed, recipe.mass_bins)["floor"], rel=1e-9)
    from gan4hep.models import load_sampler
    from papers.lin_bhimji_nachman import model

    gan_rows = sp[(sp["region"] == "validation") & (sp["method"] == "gan")].set_index("variant")
    for variant in recipe.variants:
        for noise in recipe.noises:
            sampler = load_sampler(out / "runs" / f"{variant}_{noise}_0" / "model.keras")
            sampler.target = recipe.target
            gm = model.generate_mass(sampler, val, copies=recipe.dress, seed=recipe.seed + 2)
            assert gan_rows.loc[f"{variant}_{noise} ({recipe.target})", "value"] == pytest.approx(
                observables.separation_power_8(val, gm, recipe.mass_bins)["value"], rel=1e-6)
    return sp


@pytest.mark.parametrize("variant, noise", [("wgan", "noskew"), ("vanilla", "skew")])
def test_smoke_run_writes_every_output(tmp_path, variant, noise):
    """templates.py end to end, in the default run for the circle-WGAN and for the paper's headline variant, the
    vanilla GAN with skew-normal noise (the one drawn in Figs. 5 and 6)."""
    sp = _smoke(tmp_path, ["--variant", variant, "--noise", noise, "--no-classifier"])
    assert list(sp.loc[sp["method"] == "gan", "variant"].unique()) == [f"{variant}_{noise} (m_over_pt)"]


@pytest.mark.slow
def test_smoke_run_all_variants(tmp_path):
    sp = _smoke(tmp_path, [])
    assert sp.loc[sp["method"] == "gan", "variant"].nunique() == 4


# ---- recipe and presets -----------------------------------------------------------------------------------------
def test_presets_keep_their_values():
    """The presets as before the redesign (common.PRESETS), now PAPER and QUICK = replace(PAPER, ...)."""
    assert set(PRESETS) == {"paper", "quick"} and PRESETS["paper"] is PAPER and PRESETS["quick"] is QUICK
    for recipe, values in ((QUICK, dict(events=150_000, n_init=2, epochs=30, patience=None)),
                           (PAPER, dict(events=10_000_000, n_init=10, epochs=200, patience=40))):
        for name, value in dict(values, batch_size=128, dress=10, mass_bins=20, seed=1, init_threshold=0.6,
                                hidden=(160, 80, 40), dropout=0.5, target="m_over_pt").items():
            assert getattr(recipe, name) == value, name


def test_deviations_quick_vs_paper():
    assert deviations(QUICK, PAPER) == ["preset: quick (paper: paper)", "events: 150000 (paper: 10000000)",
                                        "n_init: 2 (paper: 10)", "epochs: 30 (paper: 200)",
                                        "patience: None (paper: 40)"]
    assert deviations(PAPER, PAPER) == []
    # the recipe survives its run folder's JSON
    assert from_dict(Recipe, json.loads(json.dumps(to_dict(QUICK))), base=PAPER) == QUICK


def test_recipe_rejects_bad_values():
    with pytest.raises(ValueError, match="variants"):
        dataclasses.replace(PAPER, variants=("vanilla", "gan"))
    with pytest.raises(ValueError, match="target"):
        dataclasses.replace(PAPER, target="pt")
    with pytest.raises(ValueError, match="epochs"):
        dataclasses.replace(PAPER, epochs=0)


def test_initialisation_seeds():
    """seed * 1000 + 100 * variant + 10 * noise + i, positions within the recipe's own lists."""
    assert train.initialisation_seed(PAPER, "wgan", "noskew", 1) == 1111
    assert train.initialisation_seed(dataclasses.replace(PAPER, seed=3), "vanilla", "skew", 4) == 3004
    assert train.initialisation_seed(dataclasses.replace(PAPER, variants=("wgan",)), "wgan", "noskew", 0) == 1010


def test_model_shapes_and_exported_sampler(tmp_path):
    from gan4hep.models import load_sampler
    from papers.lin_bhimji_nachman import model

    jets = synthetic_sample(200)
    tgt, ctx = model.fit_preprocessing(jets, "m_over_pt")
    gan = model.build(QUICK, "wgan", "skew", tgt, ctx, seed=5)
    assert gan.n_critic == 5 and gan.context_dim == 3
    assert [layer.units for layer in gan.generator.layers if hasattr(layer, "units")] == [160, 80, 40, 1]
    x, c = model.training_arrays(jets, "m_over_pt", tgt, ctx)
    assert x.shape == (len(jets), 1) and c.shape == (len(jets), 3)
    np.testing.assert_allclose([x.mean(), x.std()], [0, 1], atol=1e-4)
    m = model.generate_mass(gan, jets, copies=3, seed=2)
    assert m.shape == (3, len(jets)) and np.all(m >= 0)
    # the exported sampler carries the preprocessing: it emits m / pT in physical units, as the model does
    gan.export(tmp_path / "model.keras")
    context = jets[list(model.CONTEXT)].to_numpy(float)
    np.testing.assert_allclose(load_sampler(tmp_path / "model.keras").sample(len(jets), context, seed=4),
                               gan.sample(len(jets), context, seed=4), rtol=1e-5)
    with pytest.raises(ValueError, match="variant"):
        model.build(QUICK, "gan", "skew")


# ---- command lines -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("script", ["templates.py", "train.py"])
def test_scripts_help(script):
    out = subprocess.run([sys.executable, str(ROOT / "papers" / "lin_bhimji_nachman" / script), "--help"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    for flag in ("--input", "--events", "--resume", "--out", "--seed", "--jobs", "--batch-size"):
        assert flag in out.stdout, flag
    assert "[--sample" not in out.stdout  # renamed --input
    assert ("--no-classifier" in out.stdout) == (script == "templates.py")


def test_resume_with_another_preset_continues_the_stored_recipe(tmp_path, capsys):
    sample = tmp_path / "jets.parquet"
    synthetic_sample(400).to_parquet(sample)
    out = tmp_path / "run"
    stored = dataclasses.replace(QUICK, seed=2, variants=("vanilla",), noises=("skew",), n_init=1, epochs=2)
    Run(out).start(to_dict(stored))  # a run started with a quick-based recipe, not trained yet
    for argv, message in ((["--preset", "paper", "--out", str(out), "--input", str(sample)], "another recipe"),
                          (["--resume", "--out", str(tmp_path / "empty")], "nothing to resume"),
                          (["--out", str(tmp_path / "new"), "--epochs", "0"], "epochs must be >= 1")):
        with pytest.raises(SystemExit) as exit_:
            train.main(argv)
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    train.main(["--preset", "paper", "--resume", "--out", str(out), "--input", str(sample), "--epochs", "50"])
    summary = json.loads((out / "training.json").read_text())
    assert summary["preset"] == "quick" and summary["recipe"] == to_dict(stored)
    (rec,) = summary["runs"]
    assert (rec["variant"], rec["noise"], rec["seed"]) == ("vanilla", "skew", 2000)
    assert [h["epoch"] for h in rec["history"]] == [0, 1, 2]  # epoch 0 (the initialised network) + 2 epochs
    sub = Run(out / "runs" / "vanilla_skew_0")
    assert sub.results()["trained_steps"] == 2 * rec["steps_per_epoch"] and sub.results()["completed"]
    # resuming a finished run (the input read back from the run) does not train on and reproduces the record
    evaluation = (sub / "evaluation.json").read_text()
    train.main(["--resume", "--out", str(out)])
    assert (sub / "evaluation.json").read_text() == evaluation
    assert json.loads((out / "training.json").read_text())["runs"][0]["best"] == rec["best"]


def test_interrupted_initialisation_continues_from_its_checkpoint(tmp_path, monkeypatch):
    sample = tmp_path / "jets.parquet"
    synthetic_sample(400).to_parquet(sample)
    out = tmp_path / "run"
    args = ["--out", str(out), "--input", str(sample), "--variant", "vanilla", "--noise", "noskew", "--n-init", "1",
            "--epochs", "3"]
    real_train = train.training.train

    def interrupted(*a, steps, steps_per_epoch, **kw):  # stops after one epoch, as a killed job would
        real_train(*a, steps=steps_per_epoch, steps_per_epoch=steps_per_epoch, **kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(train.training, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train.main(args)
    sub = Run(out / "runs" / "vanilla_noskew_0")
    assert "completed" not in sub.results() and sub.latest_checkpoint() is not None
    monkeypatch.setattr(train.training, "train", real_train)
    train.main(["--resume", "--out", str(out)])
    (rec,) = json.loads((out / "training.json").read_text())["runs"]
    assert [h["epoch"] for h in rec["history"]] == [0, 1, 2, 3]
    assert sub.results()["resumed_from"] == rec["steps_per_epoch"]
    assert sub.results()["trained_steps"] == 3 * rec["steps_per_epoch"]
