"""Lebese & Ruan paper folder: recipe, networks, the kinematic feature layer, Table 1's numbers against scipy on a
known shift, our sample means beside the published ones, and small runs through train.py (every output and its
numbers recomputed, resume, a run's own recipe on --resume); the flow (--model flow: support, a tiny run, its
metrics) and the held-out check against a fresh reference sample (issue 20)."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import vector
from scipy import stats

from gan4hep.layers import TrainableSwish
from gan4hep.models import load_sampler
from gan4hep.physics import (DILEPTON_FEATURES, DILEPTON_UNDERLYING, dilepton_features,
                             dilepton_features_from_underlying, dilepton_underlying)
from gan4hep.recipes import deviations, from_dict, to_dict
from gan4hep.runs import Run
from papers.lebese_ruan import data, evaluate, generate, model, published, sample_means, train
from papers.lebese_ruan.recipe import (FLOW_PRESETS, FLOW_QUICK, PAPER, PRESETS, QUICK, Recipe, preset_name,
                                       unused_fields)

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "papers" / "lebese_ruan"
TINY = ["--steps", "6", "--eval-every", "3", "--checkpoint-every", "3", "--batch-size", "64"]


def _events(n, seed=0):
    """Random lepton pairs and MET turned into the 8 features with gan4hep.physics (consistent by construction)."""
    rng = np.random.default_rng(seed)
    pt0, pt1 = 25 + rng.exponential(40, n), 25 + rng.exponential(20, n)
    f = dilepton_features(pt0, rng.uniform(-2.5, 2.5, n), rng.uniform(-np.pi, np.pi, n), 0.0,
                          pt1, rng.uniform(-2.5, 2.5, n), rng.uniform(-np.pi, np.pi, n), 0.0,
                          rng.exponential(60, n), rng.uniform(-np.pi, np.pi, n))
    return pd.DataFrame({k: f[k] for k in model.FEATURES})


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("lebese_ruan") / "events.parquet"
    _events(3000).to_parquet(path)
    return path


# ---------------------------------------------------------------------------------------------------- recipe

def test_quick_differs_from_the_paper_only_in_schedule_and_sample():
    lines = deviations(QUICK, PAPER)
    names = {line.split(":")[0] for line in lines}
    differing = {f.name for f in dataclasses.fields(Recipe) if getattr(QUICK, f.name) != getattr(PAPER, f.name)}
    assert names == differing
    assert names == {"events", "mpi", "lr", "beta2", "n_critic", "ema_decay", "steps", "checkpoint_every",
                     "eval_every"}
    assert "n_critic: 5 (paper: 1)" in lines
    assert deviations(PAPER, PAPER) == []


def test_recipe_round_trips_through_json_and_names_its_preset():
    for name, recipe in PRESETS.items():
        assert from_dict(Recipe, json.loads(json.dumps(to_dict(recipe))), base=PAPER) == recipe
        assert preset_name(recipe) == name
    assert preset_name(dataclasses.replace(QUICK, steps=6, batch_size=64)) == "quick"
    assert PAPER.split == (0.6, 0.2, 0.2) and PAPER.batch_size == 1024 and PAPER.gp_weight == 10.0


def test_paper_folder_has_no_sys_path_and_evaluate_does_not_import_train():
    for path in FOLDER.glob("*.py"):
        assert "sys.path" not in path.read_text(), path
    text = (FOLDER / "evaluate.py").read_text()
    assert "import train" not in text and "lebese_ruan.train" not in text
    assert model.FEATURES is DILEPTON_FEATURES


def test_train_help_runs_as_a_script():
    out = subprocess.run([sys.executable, str(FOLDER / "train.py"), "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    for flag in ("--preset", "--resume", "--input", "--events", "--ema-decay", "--objective", "--no-evaluate"):
        assert flag in out.stdout


# ---------------------------------------------------------------------------------------------------- data

def test_split_and_tail_cut_fitted_on_the_training_split():
    df = _events(2000)
    recipe = dataclasses.replace(QUICK, batch_size=64)
    sample = data.prepare(df, recipe)
    x = df[list(model.FEATURES)].to_numpy()
    train_x, val_x, test_x = data.split(x, recipe.seed, recipe.split)
    assert (len(train_x), len(val_x), len(test_x)) == (1200, 400, 400)
    threshold = np.quantile(train_x, 0.9, axis=0)
    np.testing.assert_array_equal(sample.train, train_x[np.all(train_x <= threshold, axis=1)])
    np.testing.assert_array_equal(sample.test, test_x[np.all(test_x <= threshold, axis=1)])
    scaled = sample.pipeline.transform(sample.train)
    assert scaled.min() == pytest.approx(0.0) and scaled.max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="fewer than one batch"):
        data.prepare(df, QUICK)


# ---------------------------------------------------------------------------------------------------- networks

def test_generator_and_critic_structure():
    g, c = model.build_generator(), model.build_critic()
    dense_g = [l for l in g.layers if l.__class__.__name__ == "Dense"]
    assert [l.units for l in dense_g] == [16, 32, 64, 128, 256, 512, 8]
    assert sum(isinstance(l, TrainableSwish) for l in g.layers) == 6
    assert g.layers[-1].get_config()["activation"] == "sigmoid"
    assert g.input_shape == (None, 128) and g.output_shape == (None, 8)
    dense_c = [l for l in c.layers if l.__class__.__name__ == "Dense"]
    assert [l.units for l in dense_c] == [512, 256, 128, 64, 32, 16, 1]
    assert sum(l.__class__.__name__ == "LeakyReLU" for l in c.layers) == 6
    assert not any("BatchNormalization" in l.__class__.__name__ for l in c.layers)
    assert dense_c[-1].get_config()["activation"] == "linear"
    out = np.asarray(g(np.random.default_rng(0).uniform(size=(64, 128)).astype("float32")))
    assert out.min() >= 0 and out.max() <= 1


def test_build_gan_follows_the_recipe():
    pipeline = data.prepare(_events(2000), dataclasses.replace(QUICK, batch_size=64)).pipeline
    gan = model.build_gan(dataclasses.replace(QUICK, objective="wgan_clip", clip=0.05), pipeline)
    assert gan.objective.name == "wgan_clip" and gan.objective.clip == 0.05
    assert gan.n_critic == 5 and gan.ema_decay == 0.99 and gan.noise.name == "normal_to_uniform"
    assert float(gan.g_optimizer.learning_rate) == pytest.approx(1e-4)
    assert float(gan.d_optimizer.beta_2) == pytest.approx(0.9)
    assert model.build_gan(PAPER, pipeline).ema_generator is None
    assert model.build_gan(dataclasses.replace(PAPER, objective="bce"), pipeline).objective.name == "bce"
    with pytest.raises(ValueError, match="kinematic generator needs"):
        model.build_gan(dataclasses.replace(PAPER, generator="kinematic"), pipeline)


def test_kinematic_layer_matches_vector_on_hand_made_events():
    kin = model.DileptonKinematics(pt0_range=[20, 300], deta_max=5.0, met_max=400.0,
                                   feature_min=[0] * 8, feature_max=[1] * 8)
    rng = np.random.default_rng(3)
    u = rng.uniform(0.01, 0.99, size=(200, 6)).astype("float64")
    feats = np.asarray(kin.physical(u.astype("float32")), dtype=np.float64)
    pt0 = 20 + u[:, 0] * 280
    pt1 = pt0 * u[:, 1]
    deta, dphi, met, phi_rel = u[:, 2] * 5, np.pi * u[:, 3], u[:, 4] * 400, np.pi * u[:, 5]
    l0 = vector.array({"pt": pt0, "eta": np.zeros(200), "phi": np.zeros(200), "mass": np.zeros(200)})
    l1 = vector.array({"pt": pt1, "eta": deta, "phi": dphi, "mass": np.zeros(200)})
    ll = l0 + l1
    metv = vector.array({"pt": met, "phi": ll.phi + phi_rel})
    et_ll = np.sqrt(ll.pt**2 + ll.mass**2)
    mt = np.sqrt((et_ll + met) ** 2 - ((ll.px + metv.px) ** 2 + (ll.py + metv.py) ** 2))
    expected = np.stack([pt0, pt1, ll.pt, ll.mass, met, mt, np.abs(l0.deltaphi(l1)), l0.deltaR(l1)], axis=1)
    np.testing.assert_allclose(feats, expected, rtol=2e-4, atol=2e-3)


def test_kinematic_generator_identities_hold():
    cfg = model.kinematics_config(_events(2000).to_numpy())
    gen = model.build_kinematic_generator(model.DileptonKinematics(**cfg))
    z = np.random.default_rng(1).uniform(size=(500, 128)).astype("float32")
    scaled = np.asarray(gen(z), dtype=np.float64)
    lo, hi = np.array(cfg["feature_min"]), np.array(cfg["feature_max"])
    x = scaled * (hi - lo) + lo
    pt0, pt1, ptll, mll, met, mt, dphi, dr = x.T
    np.testing.assert_allclose(ptll**2, pt0**2 + pt1**2 + 2 * pt0 * pt1 * np.cos(dphi), rtol=1e-4, atol=1e-2)
    deta = np.sqrt(np.maximum(dr**2 - dphi**2, 0))
    np.testing.assert_allclose(mll**2, 2 * pt0 * pt1 * (np.cosh(deta) - np.cos(dphi)), rtol=1e-4, atol=1e-2)
    assert np.all(pt1 <= pt0 + 1e-3) and np.all(mt >= 0)


# ---------------------------------------------------------------------------------------------------- Table 1

class _Fixed:
    """Stands in for the selected generator: ``sample`` returns the given events (its scaled space is physical)."""

    def __init__(self, events):
        self.events = np.asarray(events, dtype=np.float64)

    def sample(self, n, seed=None, physical=True):
        assert n == len(self.events) and physical  # the evaluation reads physical units from the contract
        return self.events.copy()


def _mc(n, seed):
    return _events(n, seed)[list(model.FEATURES)].to_numpy(np.float64)


def test_table1_numbers_on_a_known_shift(tmp_path, monkeypatch):
    """The generated sample is the test MC shifted by known amounts: every column of Table 1 (and metrics.json)
    is the known answer or scipy's, the published columns are published.TABLE1; the MC against itself gives 0.
    The classifier test (tested in test_metrics.py, seconds per call) is replaced by a stand-in whose AUC says
    which pair of samples it was given, so that the wiring of its numbers is checked."""
    test, validation = _mc(1000, 1), _mc(1000, 2)

    def classifier(reference, generated, **kwargs):
        auc = 0.52 if np.array_equal(generated, validation) else 0.5 if np.array_equal(generated, test) else 0.61
        return {"auc": auc, "auc_uncertainty": {0.52: 0.004, 0.5: 0.003, 0.61: 0.006}[auc], "aucs": [auc]}

    monkeypatch.setattr(evaluate.metrics, "classifier_two_sample_test", classifier)
    shift = np.array([0.05, -0.1, 0.2, 0.4, -0.3, 0.15, 0.08, -0.25]) * test.std(axis=0)
    gen = test + shift
    c = evaluate.compare(_Fixed(gen), test, validation, n_generated=len(test))
    t, mean = c.table, test.mean(axis=0)
    assert list(t["feature"]) == list(model.FEATURES)
    np.testing.assert_allclose(t["MC mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(t["GAN mean"], mean + shift, rtol=1e-12)
    np.testing.assert_allclose(t["relative difference"], np.abs(shift) / np.abs(mean), rtol=1e-9)
    ks = [stats.ks_2samp(test[:, j], gen[:, j]).statistic for j in range(8)]
    np.testing.assert_allclose(t["KS"], ks, rtol=1e-12)
    assert min(ks) > 0.01  # the shifts are visible to KS
    w1 = [stats.wasserstein_distance(test[:, j], gen[:, j]) for j in range(8)]
    np.testing.assert_allclose(w1, np.abs(shift), rtol=1e-6)  # a translation moves every quantile by the shift
    np.testing.assert_allclose(t["W1 / std(MC)"], np.abs(shift) / test.std(axis=0), rtol=1e-6)
    for col, key in (("published MC mean", "mc"), ("published WGAN-GP mean", "wgan_gp"),
                     ("published relative difference", "rel_diff")):
        assert list(t[col]) == [published.TABLE1[f][key] for f in model.FEATURES]
    np.testing.assert_allclose(t["MC mean / published MC mean"],
                               mean / [published.TABLE1[f]["mc"] for f in model.FEATURES], rtol=1e-12)
    assert c.worst_rmd == pytest.approx(np.max(np.abs(shift) / np.abs(mean))) and c.worst_ks == max(ks)
    floor_rmd = np.max(np.abs(validation.mean(axis=0) - mean) / np.abs(mean))
    assert c.floor["worst_relative_mean_difference"] == pytest.approx(floor_rmd, rel=1e-9)
    assert c.floor["worst_ks"] == max(stats.ks_2samp(test[:, j], validation[:, j]).statistic for j in range(8))
    assert c.auc == (0.61, 0.006) and (c.floor["classifier_auc"], c.floor["classifier_auc_uncertainty"]) == \
        (0.52, 0.004)

    # the files carry the same numbers
    run = Run(tmp_path / "run")
    run.start(to_dict(QUICK))
    evaluate.write_table1(run, c, QUICK)
    m = evaluate.write_metrics(run, c, QUICK)
    on_disk = pd.read_csv(run / "table1.csv")
    for col in ("MC mean", "GAN mean", "relative difference", "KS", "W1 / std(MC)"):
        np.testing.assert_allclose(on_disk[col], t[col], rtol=1e-12, err_msg=col)
    assert json.loads((run / "metrics.json").read_text()) == json.loads(json.dumps(m))
    for j, f in enumerate(model.FEATURES):
        assert m["features"][f]["ks"] == ks[j]
        assert m["features"][f]["relative_mean_difference"] == pytest.approx(abs(shift[j]) / abs(mean[j]), rel=1e-9)
        assert m["features"][f]["wasserstein"] == pytest.approx(abs(shift[j]), rel=1e-6)
    assert m["worst_ks"] == max(ks) and _read(run, "results.json")["table1"]["worst_ks"] == max(ks)
    assert (m["classifier_auc"], m["mc_floor"]["classifier_auc"]) == (0.61, 0.52)
    md = (run / "table1.md").read_text()
    assert f"Worst KS: {max(ks):.4f}" in md and "AUC = 0.610 +- 0.006" in md and "classifier AUC 0.520" in md

    same = evaluate.compare(_Fixed(test), test, validation, n_generated=len(test))
    assert np.all(same.table["KS"] == 0) and np.all(same.table["W1 / std(MC)"] == 0)
    np.testing.assert_allclose(same.table["relative difference"], 0, atol=1e-14)
    assert np.all(same.separation == 0) and same.auc == (0.5, 0.003)


def test_sample_means_beside_published_table1(tmp_path):
    """papers/lebese_ruan/sample_means.py (moved out of data_prep.validate): our weighted means raw and after the
    event-level 90 % tail cut, computed by hand, beside published.TABLE1's MC means."""
    df = _events(1000, seed=4)
    df["weight"] = np.random.default_rng(5).uniform(0.5, 2.0, len(df))
    table, frac = sample_means.dilepton_means(df)
    cols = list(model.FEATURES)
    x, w = df[cols].to_numpy(), df["weight"].to_numpy()
    keep = np.all(x <= np.quantile(x, 0.9, axis=0), axis=1)
    assert frac == keep.mean() and 0.4 < frac < 0.9
    assert list(table["feature"]) == cols
    np.testing.assert_allclose(table["ours_raw"], (w[:, None] * x).sum(0) / w.sum(), rtol=1e-12)
    np.testing.assert_allclose(table["ours_tail_cut"], (w[keep, None] * x[keep]).sum(0) / w[keep].sum(), rtol=1e-12)
    pub = np.array([published.TABLE1[c]["mc"] for c in cols])
    assert list(table["published"]) == list(pub)
    np.testing.assert_allclose(table["ratio_raw"], table["ours_raw"] / pub, rtol=1e-12)
    np.testing.assert_allclose(table["ratio_tail_cut"], table["ours_tail_cut"] / pub, rtol=1e-12)
    assert (table["note"] != "").tolist() == [c in ("dphi_ll", "dr_ll") for c in cols]

    path = tmp_path / "events.parquet"
    df.to_parquet(path)
    text = sample_means.write_means(path, tmp_path / "out")
    on_disk = pd.read_csv(tmp_path / "out" / "dilepton_means_vs_published.csv")
    np.testing.assert_allclose(on_disk["ours_tail_cut"], table["ours_tail_cut"], rtol=1e-12)
    assert f"| m_ll | {table['ours_raw'][3]:.3f} | {table['ours_tail_cut'][3]:.3f} | 89.262 |" in text
    assert "published" in text and (tmp_path / "out" / "dilepton_means_vs_published.md").exists()


# ---------------------------------------------------------------------------------------------------- runs

def _read(run, name):
    return json.loads((run / name).read_text())


@pytest.mark.parametrize("generator", ["paper", pytest.param("kinematic", marks=pytest.mark.slow)])
def test_smoke_run_writes_every_output(tmp_path, table, generator):
    run = tmp_path / "run"
    train.main(["--preset", "quick", "--input", str(table), "--out", str(run), *TINY, "--generator", generator])
    names = ["recipe.json", "results.json", "sample.json", "preprocessing.json", "best.npz", "model.keras",
             "test_mc.parquet", "validation_mc.parquet", "evaluation.json", "table1.csv", "table1.md",
             "metrics.json", "losses.json"]
    for name in names + (["kinematics.json"] if generator == "kinematic" else []):
        assert (run / name).stat().st_size > 0, name
    for stem in ("fig3", "fig4", "fig5"):
        for ext in ("png", "pdf"):
            assert (run / f"{stem}.{ext}").stat().st_size > 1000
    table1 = pd.read_csv(run / "table1.csv")
    assert list(table1.columns) == ["feature", "MC mean", "GAN mean", "relative difference", "KS", "W1 / std(MC)",
                                    "published MC mean", "published WGAN-GP mean", "published relative difference",
                                    "MC mean / published MC mean"]
    assert list(table1["feature"]) == list(model.FEATURES)
    test = pd.read_parquet(run / "test_mc.parquet")
    np.testing.assert_allclose(table1["MC mean"], test[list(model.FEATURES)].mean().to_numpy(), rtol=1e-9)
    # every number of the table, recomputed from the run's selected generator with numpy and scipy
    gan, _ = evaluate.load_run(Run(run))
    mc = test[list(model.FEATURES)].to_numpy(np.float64)
    gen = gan.preprocessing.inverse_transform(gan.sample(max(len(mc), 20000), seed=12345, physical=False))
    np.testing.assert_allclose(table1["GAN mean"], gen.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(table1["relative difference"],
                               np.abs(gen.mean(axis=0) - mc.mean(axis=0)) / np.abs(mc.mean(axis=0)), rtol=1e-9)
    np.testing.assert_allclose(table1["KS"], [stats.ks_2samp(mc[:, j], gen[:, j]).statistic for j in range(8)])
    np.testing.assert_allclose(table1["W1 / std(MC)"], [stats.wasserstein_distance(mc[:, j], gen[:, j])
                                                        / mc[:, j].std() for j in range(8)], rtol=1e-9)
    m = _read(run, "metrics.json")
    for key in ("features", "classifier_auc", "classifier_auc_uncertainty", "selected_checkpoint", "select_by",
                "generator"):
        assert key in m
    assert set(m["features"]) == set(model.FEATURES)
    assert [m["features"][f]["ks"] for f in model.FEATURES] == list(table1["KS"])
    assert m["worst_ks"] == table1["KS"].max() and m["worst_relative_mean_difference"] == \
        table1["relative difference"].max()
    assert m["generator"] == generator and m["selected_checkpoint"] in (3, 6)
    assert "preset **quick**" in (run / "table1.md").read_text()
    recipe = from_dict(Recipe, _read(run, "recipe.json"), base=PAPER)
    assert recipe == dataclasses.replace(QUICK, steps=6, eval_every=3, checkpoint_every=3, batch_size=64,
                                         generator=generator)
    results = _read(run, "results.json")
    assert results["deviations"] == deviations(recipe, PAPER)
    assert results["selected_step"] == m["selected_checkpoint"] and results["trained_steps"] == 6
    assert results["table1"]["worst_ks"] == m["worst_ks"]
    assert _read(run, "sample.json")["input"] == str(table.resolve())

    # the exported sampler carries its preprocessing: the selected generator's physical events, without the run
    gan, _ = evaluate.load_run(Run(run))
    np.testing.assert_allclose(load_sampler(run / "model.keras").sample(500, seed=4), gan.sample(500, seed=4),
                               rtol=1e-5, atol=1e-4)
    out = tmp_path / "toys.parquet"
    generate.main(["--run", str(run), "--samples", "1000", "--out", str(out)])
    assert pd.read_parquet(out).shape == (1000, 8)

    # --resume with --steps extends the run from its last checkpoint and accumulates the training time
    first = _read(run, "results.json")
    train.main(["--out", str(run), "--resume", "--steps", "9", "--no-evaluate"])
    second = _read(run, "results.json")
    assert second["trained_steps"] == 9 and second["resumed_from"] == 6
    assert second["train_seconds"] > first["train_seconds"]
    assert [r["step"] for r in _read(run, "evaluation.json")] == [3, 6, 9]
    assert from_dict(Recipe, _read(run, "recipe.json"), base=PAPER) == recipe  # written once


def test_resume_with_another_preset_continues_the_runs_own_recipe(tmp_path, table, capsys):
    run = tmp_path / "run"
    tiny = [*TINY, "--n-critic", "1"]
    train.main(["--preset", "quick", "--input", str(table), "--out", str(run), *tiny, "--no-evaluate"])
    stored = _read(run, "recipe.json")
    (run / "checkpoints" / "ckpt-000000006.npz").unlink()  # as if the first invocation had stopped at step 3

    train.main(["--preset", "paper", "--out", str(run), "--resume", "--no-evaluate"])
    assert _read(run, "recipe.json") == stored
    results = _read(run, "results.json")
    assert results["trained_steps"] == 6 and results["resumed_from"] == 3  # the run's 6 steps, not the paper's 1e6
    assert "ignored: events: 3600000 (run: 300000)" in capsys.readouterr().out

    # the same recipe again continues (nothing left to do); another recipe without --resume is a one-line error
    train.main(["--preset", "quick", "--out", str(run), *tiny, "--no-evaluate"])
    assert _read(run, "results.json")["trained_steps"] == 6
    with pytest.raises(SystemExit) as err:
        train.main(["--preset", "quick", "--out", str(run), *tiny, "--lr", "3e-4", "--no-evaluate"])
    message = str(err.value)
    assert message.startswith("error:") and "another recipe" in message and "lr" in message and "\n" not in message
    with pytest.raises(SystemExit, match="was trained on"):
        train.main(["--preset", "quick", "--out", str(run), "--input", str(tmp_path / "other.parquet"), *tiny])
    with pytest.raises(SystemExit, match="nothing to resume"):
        train.main(["--out", str(tmp_path / "empty"), "--resume"])


# ---------------------------------------------------------------------------------------------------- flow (issue 20)

TINY_FLOW = [*TINY, "--model", "flow", "--flow-transforms", "2", "--flow-bins", "4", "--flow-hidden", "8",
             "--flow-blocks", "1"]


def _fast_classifier(reference, generated, **kwargs):
    """Stands in for the boosted-tree classifier test (tested in test_metrics.py, seconds per call)."""
    return {"auc": 0.5, "auc_uncertainty": 0.01, "aucs": [0.5]}


def test_flow_presets_change_only_the_model_and_its_schedule():
    for name, flow in FLOW_PRESETS.items():
        assert flow.model == "flow" and preset_name(flow) == name
        gan = PRESETS[name]
        assert gan.model == "gan"
        same = ("events", "mpi", "seed", "split", "tail_treatment", "tail_quantile", "select_by", "select_events")
        assert all(getattr(flow, f) == getattr(gan, f) for f in same)  # the same data, split, cut and selection
        assert from_dict(Recipe, json.loads(json.dumps(to_dict(flow))), base=PAPER) == flow
    assert (FLOW_QUICK.flow_transforms, FLOW_QUICK.flow_bins, FLOW_QUICK.flow_hidden, FLOW_QUICK.flow_blocks) == \
        (6, 8, 64, 2)
    # a flow run's deviations name what the flow reads, not the GAN's n_critic (5 in the quick presets)
    flow_devs = {line.split(":")[0] for line in deviations(FLOW_QUICK, PAPER, unused=unused_fields(FLOW_QUICK))}
    assert "n_critic" not in flow_devs and {"model", "lr", "flow_space"} <= flow_devs
    assert "n_critic" in {line.split(":")[0] for line in deviations(QUICK, PAPER, unused=unused_fields(QUICK))}
    with pytest.raises(ValueError, match="drop_events"):
        data.prepare(_events(2000), dataclasses.replace(FLOW_QUICK, batch_size=64, tail_treatment="clip"))


def test_flow_preprocessing_keeps_every_value_inside_the_support():
    """The support box: lower edges of the selection, upper edges the tail cut fitted on the training split. The
    flow's pipeline maps the box onto R and any real number back into the box; interior values round-trip."""
    recipe = dataclasses.replace(FLOW_QUICK, batch_size=64, flow_space="features")
    df = _events(3000)
    sample = data.prepare(df, recipe)
    train_x = data.split(df[list(model.FEATURES)].to_numpy(), recipe.seed, recipe.split)[0]
    threshold = np.quantile(train_x, 0.9, axis=0)
    low, high = data.support(sample.train, threshold)
    np.testing.assert_array_equal(high, threshold)
    np.testing.assert_array_equal(low, [25, 25, 0, 0, 0, 0, 0, 0])
    z = sample.pipeline.transform(sample.train)
    assert np.all(np.isfinite(z)) and abs(z.mean()) < 1e-6
    np.testing.assert_allclose(sample.pipeline.inverse_transform(z), sample.train, rtol=1e-6, atol=1e-4)
    wild = np.random.default_rng(0).normal(0, 30, size=(20000, 8))
    wild[:8] = np.diag(np.full(8, 700.0))  # far beyond any spline: sigmoid saturates at the edge
    wild[8:16] = -np.diag(np.full(8, 700.0))
    with np.errstate(over="ignore"):  # exp overflow in the sigmoid is its saturation at the edge
        back = sample.pipeline.inverse_transform(wild)
    assert not data.outside_support(back, low, high).any()
    assert np.all(back <= high) and np.all(back >= low)
    outside = np.vstack([sample.train[:3], high + 1.0, low - 1.0])
    assert data.outside_support(outside, low, high).tolist() == [False, False, False, True, True]


def test_flow_run_trains_and_writes_metrics_with_model_flow(tmp_path, table, monkeypatch):
    run = tmp_path / "flow"
    train.main(["--preset", "quick", "--input", str(table), "--out", str(run), *TINY_FLOW, "--flow-space",
                "features", "--no-evaluate"])  # the underlying space: the next test
    recipe = from_dict(Recipe, _read(run, "recipe.json"), base=PAPER)
    assert recipe == dataclasses.replace(FLOW_QUICK, steps=6, eval_every=3, checkpoint_every=3, batch_size=64,
                                         flow_transforms=2, flow_bins=4, flow_hidden=8, flow_blocks=1,
                                         flow_space="features")
    results = _read(run, "results.json")
    assert results["trained_steps"] == 6 and results["selected_step"] in (3, 6)
    assert [r["step"] for r in _read(run, "evaluation.json")] == [3, 6]
    flow, _ = evaluate.load_run(Run(run))
    assert type(flow).__name__ == "Flow" and flow.step == results["selected_step"]
    # the exported sampler is the selected flow, in physical units
    np.testing.assert_allclose(load_sampler(run / "model.keras").sample(300, seed=2), flow.sample(300, seed=2),
                               rtol=1e-5, atol=1e-3)

    monkeypatch.setattr(evaluate.metrics, "classifier_two_sample_test", _fast_classifier)
    m = evaluate.evaluate_run(run, n_generated=3000, figures=False)
    assert m["model"] == "flow" and m["reference"] == "test" and m["preset"] == "quick"
    for key in ("features", "classifier_auc", "classifier_auc_uncertainty", "worst_ks",
                "worst_relative_mean_difference", "selected_checkpoint", "mc_floor", "generator"):
        assert key in m
    assert m["outside_support"] == 0 and m["n_generated"] == 3000 and m["generation_events_per_second"] > 0
    test = pd.read_parquet(run / "test_mc.parquet")[list(model.FEATURES)].to_numpy()
    gen = flow.sample(3000, seed=12345)
    np.testing.assert_allclose([m["features"][f]["ks"] for f in model.FEATURES],
                               [stats.ks_2samp(test[:, j], gen[:, j]).statistic for j in range(8)], atol=2e-3)
    assert _read(run, "metrics.json") == json.loads(json.dumps(m))
    assert "model: flow" in (run / "table1.md").read_text()


def test_underlying_flow_emits_consistent_events_inside_the_support(tmp_path, table):
    """--flow-space underlying: a 6-dimensional flow on the quantities the features are functions of, the exact map
    to the 8 features and the selection's support: every event inside the support, pT(l1) <= pT(l0), Delta R >=
    Delta phi and pT(ll), m(ll), m_T equal to their values recomputed from the others (the features flow breaks
    them); the exported sampler gives the same events."""
    run = tmp_path / "flowu"
    train.main(["--preset", "quick", "--input", str(table), "--out", str(run), *TINY_FLOW, "--no-evaluate"])
    flow, recipe = evaluate.load_run(Run(run))
    assert recipe.flow_space == "underlying" == FLOW_QUICK.flow_space and flow.n_features == 6
    assert json.loads((run / "preprocessing.json").read_text())["names"] == list(DILEPTON_UNDERLYING)
    gen = flow.sample(4000, seed=3)
    low, high = data.run_support(Run(run))
    assert gen.shape == (4000, 8) and not data.outside_support(gen, low, high).any()
    f = {name: gen[:, j] for j, name in enumerate(model.FEATURES)}
    assert np.all(f["pt_l1"] <= f["pt_l0"] * (1 + 1e-6)) and np.all(f["dr_ll"] >= f["dphi_ll"] * (1 - 1e-6))
    again = dilepton_features_from_underlying(dilepton_underlying(gen))
    np.testing.assert_allclose(again, gen, rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(load_sampler(run / "model.keras").sample(500, seed=2), flow.sample(500, seed=2),
                               rtol=1e-5, atol=1e-3)


def test_fresh_reference_check(tmp_path, table, monkeypatch):
    """The held-out check: a fresh table with the run's own tail cut, artefacts in their own folder, the run's own
    metrics untouched; --fresh-seed refuses the run's own seed and a run trained on a user's table."""
    run = tmp_path / "gan"
    train.main(["--preset", "quick", "--input", str(table), "--out", str(run), *TINY, "--n-critic", "1",
                "--no-evaluate"])
    monkeypatch.setattr(evaluate.metrics, "classifier_two_sample_test", _fast_classifier)
    own = evaluate.evaluate_run(run, n_generated=2000, figures=False)
    assert own["model"] == "gan" and own["reference"] == "test"
    fresh = tmp_path / "fresh_mc.parquet"
    fresh_df = _events(2500, seed=77)
    fresh_df.to_parquet(fresh)

    m = evaluate.evaluate_run(run, n_generated=2000, reference=fresh, figures=False)
    out = run / "fresh_fresh_mc"
    assert _read(out, "metrics.json") == json.loads(json.dumps(m)) and (out / "table1.md").exists()
    assert _read(run, "metrics.json") == json.loads(json.dumps(own))  # the run's own evaluation is left alone
    assert m["reference"] == "fresh" and m["model"] == "gan" and m["table_sample"] == "fresh MC"
    x = fresh_df[list(model.FEATURES)].to_numpy()
    train_x = data.split(pd.read_parquet(table)[list(model.FEATURES)].to_numpy(), QUICK.seed, QUICK.split)[0]
    kept = x[np.all(x <= np.quantile(train_x, 0.9, axis=0), axis=1)]
    assert m["n_test"] == len(kept) and m["reference_sample"]["n_before_tail_cut"] == 2500
    assert m["reference_sample"]["n"] == len(kept) and m["reference_sample"]["file"] == str(fresh)
    gan, _ = evaluate.load_run(Run(run))
    gen = gan.sample(max(len(kept), 2000), seed=12345)
    np.testing.assert_allclose([m["features"][f]["relative_mean_difference"] for f in model.FEATURES],
                               np.abs(gen.mean(0) - kept.mean(0)) / np.abs(kept.mean(0)), rtol=1e-4)
    test = pd.read_parquet(run / "test_mc.parquet")[list(model.FEATURES)].to_numpy()
    assert m["mc_floor"]["worst_ks"] == pytest.approx(
        max(stats.ks_2samp(kept[:, j], test[:, j]).statistic for j in range(8)))

    with pytest.raises(SystemExit, match="trained on"):
        evaluate.main(["--run", str(run), "--fresh-seed", "5"])
    with pytest.raises(SystemExit, match="one of"):
        evaluate.main(["--run", str(run), "--fresh-seed", "5", "--reference", str(fresh)])


def test_fresh_events_are_generated_once_with_a_new_seed(tmp_path, monkeypatch):
    import data_prep.dilepton

    calls = []

    def make_sample(out, events, seed, jobs, mpi):
        calls.append((Path(out).name, events, seed, mpi))
        path = Path(str(out).replace(".root", "_features.root"))
        _events(100, seed).to_parquet(path)  # the cache is read by content, not by suffix
        return path

    monkeypatch.setattr(data_prep.dilepton, "make_sample", make_sample)
    monkeypatch.setattr(data, "read_table", lambda path, columns: pd.read_parquet(path, columns=columns))
    recipe = dataclasses.replace(QUICK, events=1000)
    df, path = data.fresh_events(recipe, 1001, data_dir=tmp_path)
    assert calls == [("dilepton_fresh_e1000_s1001_nompi.root", 1000, 1001, False)]
    assert path == tmp_path / "dilepton_fresh_e1000_s1001_nompi_features.root" and len(df) == 100
    data.fresh_events(recipe, 1001, data_dir=tmp_path)
    assert len(calls) == 1  # cached
    with pytest.raises(ValueError, match="seed of the run's own sample"):
        data.fresh_events(recipe, recipe.seed, data_dir=tmp_path)


def test_a_run_made_before_the_flow_fields_continues(tmp_path, table):
    run = Run(tmp_path / "old")
    old = {k: v for k, v in to_dict(dataclasses.replace(QUICK, steps=6, eval_every=3, checkpoint_every=3,
                                                        batch_size=64)).items() if k not in train.ADDED_FIELDS}
    run.start(old)
    args = train.parse_args(["--preset", "quick", "--out", str(run.path), *TINY])
    _, recipe = train.start_run(args)
    assert recipe.model == "gan" and _read(run.path, "recipe.json") == json.loads(json.dumps(old))
