"""Lin, Bhimji & Nachman reproduction: template binning and dressing, separation power (section 3.3), regions, the
recipe and its presets, the command lines (--help, --resume with another preset), and a smoke run of templates.py
writing every output."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gan4hep.recipes import deviations, to_dict
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
    # a perfect but independent model sits near the floor, a shifted one well above it
    rng = np.random.default_rng(0)
    shuffled = jets["mass"].to_numpy() * rng.gamma(100, 0.01, len(jets))
    assert observables.separation_power_8(jets, shuffled)["value"] < 0.5


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
    return sp


def test_smoke_run_writes_every_output(tmp_path):
    sp = _smoke(tmp_path, ["--variant", "wgan", "--noise", "noskew", "--no-classifier"])
    assert list(sp.loc[sp["method"] == "gan", "variant"].unique()) == ["wgan_noskew (m_over_pt)"]


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
    from gan4hep.recipes import from_dict

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
