"""Vaselli (FlashSim) paper folder: recipe and readings, the preprocessing round trip, the evaluation metrics on
constructed data with known answers, and tiny runs through train.py (metrics.json keys, the paper configuration's
parameter count, --resume with the run's own recipe, --help)."""

import contextlib
import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_prep.flashsim_jets import CONDITIONING, TARGETS
from gan4hep.recipes import deviations, from_dict, to_dict
from gan4hep.runs import Run
from papers.vaselli import data, evaluate, model, train
from papers.vaselli.recipe import PAPER, PRESETS, QUICK, Recipe, preset_name

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "papers" / "vaselli"
QUANTUM = 0.00997
TINY = ["--preset", "quick", "--reading", "abstract", "--hidden-features", "8", "--num-blocks", "1", "--bins", "4",
        "--batch-size", "64", "--epochs", "2", "--oversample", "3", "--no-speed"]
KEYS = {"targets", "classifier_auc", "classifier_auc_uncertainty", "btag_roc_auc", "jets_per_s", "speedup",
        "paper_configuration_parameters"}


def _jets(n_events=400, seed=0) -> pd.DataFrame:
    """A constructed jet table with the feature table's columns, value sets and point masses (not physics)."""
    rng = np.random.default_rng(seed)
    per_event = rng.integers(3, 9, n_events)
    n = int(per_event.sum())
    d = {"event": np.repeat(np.arange(n_events), per_event).astype(np.int64)}
    has_mu = rng.uniform(size=n) < 0.1
    for k in (1, 2):
        mu = has_mu & (rng.uniform(size=n) < (1.0 if k == 1 else 0.1))
        d[f"mu{k}_dr"] = np.where(mu, rng.uniform(0, 0.4, n), 0.5)
        d[f"mu{k}_pt"] = np.where(mu, rng.exponential(5, n), 0.0)
        d[f"mu{k}_deta"] = np.where(mu, rng.uniform(-0.3, 0.3, n), 0.5)
        d[f"mu{k}_dphi"] = np.where(mu, rng.uniform(-0.3, 0.3, n), 0.5)
    d["gen_eta"] = rng.uniform(-2.5, 2.5, n)
    d["gen_pt"] = 15 + rng.exponential(45, n)
    d["gen_mass"] = d["gen_pt"] * rng.uniform(0.05, 0.2, n)
    d["gen_phi"] = rng.uniform(-np.pi, np.pi, n)
    pf = rng.choice([1, 2, 3, -1, -2, 4, -4, 5, -5, 21, 0], n)
    d["parton_flavour"] = pf.astype(float)
    d["hadron_flavour"] = np.where(np.abs(pf) == 5, 5.0, np.where(np.abs(pf) == 4, 4.0, 0.0))
    is_b = np.abs(pf) == 5
    d["area"] = np.rint(rng.normal(0.5, 0.04, n) / QUANTUM) * QUANTUM
    d["btag"] = np.where(rng.uniform(size=n) < 0.11, 0.0, np.clip(rng.beta(np.where(is_b, 5, 1), 2), 0, 0.999))
    d["ctag"] = np.where(d["btag"] == 0, 0.0, rng.uniform(0, 0.87, n))
    d["eta_minus_gen"] = rng.normal(0, 0.017, n)
    d["mass_ratio"] = np.clip(rng.normal(0.85, 0.3, n), 0, 6.5)
    d["n_constituents"] = 1.0 + rng.poisson(13, n)
    d["phi_minus_gen"] = rng.normal(0, 0.016, n)
    d["pt_ratio"] = np.clip(rng.normal(0.99, 0.08, n) + 0.5 / d["gen_pt"], 0.05, 2.5)
    d["qgl"] = rng.uniform(0, 0.86, n)
    frac = rng.dirichlet([0.05, 2, 1, 0.05, 1], n)
    frac[rng.uniform(size=n) < 0.9, 0] = 0.0
    frac[rng.uniform(size=n) < 0.005] = [1, 0, 0, 0, 0]
    frac /= frac.sum(axis=1, keepdims=True)
    for j, name in enumerate(("mu_ef", "ch_had_ef", "ne_had_ef", "ch_em_ef", "ne_em_ef")):
        d[name] = frac[:, j]
    d["jet_id"] = rng.choice([0.0, 2.0, 6.0], n, p=[0.04, 0.03, 0.93])
    d["pt"] = d["pt_ratio"] * d["gen_pt"]
    d["eta"] = d["gen_eta"] + d["eta_minus_gen"]
    d["phi"] = d["gen_phi"] + d["phi_minus_gen"]
    d["mass"] = d["mass_ratio"] * d["gen_mass"]
    return pd.DataFrame(d)[list(CONDITIONING) + list(TARGETS) + list(data.AUX_KEPT)]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("vaselli") / "jets.parquet"
    _jets().to_parquet(path)
    return path


# ---------------------------------------------------------------------------------------------------- recipe

def test_quick_changes_sample_size_conditioner_bins_schedule_and_preprocessing_only():
    names = {line.split(":")[0] for line in deviations(QUICK, PAPER)}
    assert names == {"events", "validation_fraction", "test_fraction", "preprocessing", "hidden_features",
                     "num_blocks", "bins", "tail_bound", "lr", "epochs", "batch_size", "oversample", "speed_events"}
    assert (PAPER.lr, PAPER.epochs, PAPER.batch_size, PAPER.max_train_jets) == (1e-5, 600, 2048, 5_000_000)
    assert (PAPER.hidden_features, PAPER.num_blocks, PAPER.bins, PAPER.tail_bound) == (298, 10, 128, 1.0)
    for name, recipe in PRESETS.items():
        assert from_dict(Recipe, json.loads(json.dumps(to_dict(recipe))), base=PAPER) == recipe
        assert preset_name(recipe) == name



def test_train_step_under_xla_by_recipe_and_off_with_no_xla():
    small = dataclasses.replace(QUICK, reading="abstract", hidden_features=8, num_blocks=1, bins=4)
    assert model.build_compiled(small, 3, 2, steps_per_epoch=10).jit_compile is True
    off = dataclasses.replace(small, jit_compile=False)
    assert model.build_compiled(off, 3, 2, steps_per_epoch=10).jit_compile is False
    assert train.parse_args(["--no-xla"]).jit_compile is False and train.parse_args([]).jit_compile is None
    # a run folder made before the field existed (no "jit_compile" in its recipe.json) continues with PAPER's value
    assert from_dict(Recipe, {k: v for k, v in to_dict(QUICK).items() if k != "jit_compile"}, base=PAPER) == QUICK


def test_readings_and_parameter_counts():
    assert model.flow_steps(PAPER) == 17 and model.flow_steps(dataclasses.replace(PAPER, reading="abstract")) == 15
    with pytest.raises(ValueError, match="unknown reading"):
        model.flow_steps(dataclasses.replace(PAPER, reading="seventeen"))
    assert model.parameter_count(17, 14, 17, 298, 10, 128) == model.PAPER_CONFIGURATION_PARAMETERS == 47_986_595
    for reading in ("public_code", "abstract"):
        recipe = dataclasses.replace(QUICK, reading=reading, hidden_features=8, num_blocks=1, bins=4)
        flow = model.build_flow(recipe, 15, 14)
        assert model.count_parameters(flow) == model.parameter_count(15, 14, model.flow_steps(recipe), 8, 1, 4)
        couplings = [t for t in flow.transform.transforms if type(t).__name__ == "Coupling"]
        assert len(couplings) == model.READINGS[reading]


def test_paper_folder_has_no_sys_path_and_evaluate_does_not_import_train():
    for path in FOLDER.glob("*.py"):
        assert "sys.path" not in path.read_text(), path
    text = (FOLDER / "evaluate.py").read_text()
    assert "import train" not in text and "vaselli.train" not in text
    assert "## Ambiguities" in (FOLDER / "README.md").read_text()


def test_train_help_runs_as_a_script():
    out = subprocess.run([sys.executable, str(FOLDER / "train.py"), "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    for flag in ("--preset", "--resume", "--input", "--reading", "--preprocessing", "--oversample", "--no-speed"):
        assert flag in out.stdout


# ---------------------------------------------------------------------------------------------------- data

def test_split_is_by_event_and_disjoint():
    df = _jets()
    recipe = dataclasses.replace(QUICK, batch_size=64)
    train_df, val, test, n_events = data.split(df, recipe)
    assert len(train_df) + len(val) + len(test) == len(df)
    sets = [set(x["event"]) for x in (train_df, val, test)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert (n_events["test"], n_events["validation"]) == (80, 40)
    assert data.area_quantum(df["area"].to_numpy()) == pytest.approx(QUANTUM, rel=1e-6)


@pytest.mark.parametrize("preprocessing", ["thesis", "ours"])
def test_preprocessing_round_trip(preprocessing):
    df = _jets()
    recipe = dataclasses.replace(QUICK, preprocessing=preprocessing, batch_size=64)
    sample = data.prepare(df, recipe)
    names = sample.targets
    x = sample.test[names].to_numpy()
    np.testing.assert_allclose(data.postprocess(x, names, sample.area_quantum), x, rtol=1e-12)  # valid values stay
    model_x, model_c = data.model_arrays(sample.test, sample, recipe)
    back = data.postprocess(sample.pipeline.inverse_transform(model_x.astype(np.float64)), names,
                            sample.area_quantum)
    discrete = [names.index(n) for n in ("n_constituents", "jet_id")]
    np.testing.assert_array_equal(back[:, discrete], x[:, discrete])
    j = names.index("area")
    np.testing.assert_allclose(back[:, j], x[:, j], rtol=1e-12)  # back on the ghost-area grid
    np.testing.assert_allclose(back, x, atol=2e-5 * (1 + np.abs(x)).max())  # float32 model space
    c = sample.context_pipeline.inverse_transform(model_c.astype(np.float64))
    np.testing.assert_allclose(c, sample.test[list(CONDITIONING)].to_numpy(), rtol=1e-5, atol=1e-4)
    if preprocessing == "ours":
        assert abs(model_x.mean()) < 0.2 and model_x.std() == pytest.approx(1.0, abs=0.2)
        spread = data.spread(x, names, recipe, sample.area_quantum, np.random.default_rng(0))
        j = names.index("btag")
        assert (spread[x[:, j] == 0, j] < 0).all() and (spread[x[:, j] > 0, j] == x[x[:, j] > 0, j]).all()
    # the flag snaps to its admissible values
    odd = data.postprocess(np.array([[3.4], [4.1], [-0.7]]), ["jet_id"])
    assert odd.ravel().tolist() == [2.0, 6.0, 0.0]


# ---------------------------------------------------------------------------------------------------- metrics

def _comparison(shift=0.0, seed=0, n_events=400):
    df = evaluate.with_kinematics(_jets(n_events, seed=seed))
    gen = df.copy()
    gen["pt_ratio"] = gen["pt_ratio"] + shift
    gen = evaluate.with_kinematics(gen)
    return evaluate.Comparison(df, gen, evaluate.with_kinematics(_jets(n_events, seed=seed + 1)), list(TARGETS))


def test_target_table_shifted_copy_gives_the_shift():
    comp = _comparison(shift=0.05)
    table = evaluate.target_table(comp.test, comp.flow, comp.names)
    assert table.loc["pt_ratio", "wasserstein"] == pytest.approx(0.05, abs=1e-9)
    assert table.loc["pt_ratio", "wasserstein_over_std"] == pytest.approx(0.05 / comp.test["pt_ratio"].std(ddof=0))
    others = table.drop(index="pt_ratio")
    assert (others["wasserstein"] == 0).all() and (others["ks"] == 0).all()
    assert not table.loc["jet_id", "continuous"] and table.loc["btag", "continuous"]


def test_identical_tables_give_chance_auc_equal_roc_and_full_coverage():
    comp = _comparison(n_events=200)
    clf = evaluate.classifier(comp, seed=0, n_splits=2)
    assert clf["auc"] == pytest.approx(0.5, abs=0.06) and clf["auc"] == clf["floor_auc"]  # identical: the floor
    roc = evaluate.btag_roc(comp, n_boot=10)
    assert roc["flow"] == roc["full_chain"] and roc["difference_uncertainty"] == 0
    assert roc["full_chain"] > 0.7  # b jets have a harder btag in the constructed table
    for entry in evaluate.contour_coverage(comp.test, comp.flow).values():
        for q, cov in entry.items():
            assert cov["flow"] == cov["full_chain"] and cov["flow"] == pytest.approx(float(q), abs=0.15)
    profile = evaluate.pt_ratio_profile(comp.test, comp.flow)
    np.testing.assert_array_equal(profile["mean_flow"], profile["mean_full_chain"])
    assert len(profile) >= 3


def test_oversampling_error_formula():
    edges = np.linspace(0, 1, 5)
    rng = np.random.default_rng(0)
    one = rng.uniform(size=4000)
    c1, e1 = evaluate.bin_errors(one, 4000, 1, edges)
    np.testing.assert_allclose(e1, np.sqrt(c1))  # Poisson for one jet per generator jet
    same = np.repeat(one, 10)  # ten identical copies: fully correlated, no gain
    cs, es = evaluate.bin_errors(same, 4000, 10, edges)
    np.testing.assert_allclose((cs, es), (c1, e1))
    indep = rng.uniform(size=40_000)  # ten independent draws, bin probability p = 1/4: compound Poisson
    ci, ei = evaluate.bin_errors(indep, 4000, 10, edges)
    p, n, k = 0.25, 4000, 10
    expected = np.sqrt(n * (p / k + p * p * (1 - 1 / k))) / (n * p)  # sqrt(n E[c^2]) / (n p)
    np.testing.assert_allclose(ei / ci, expected, rtol=0.03)
    assert (ei / ci < 0.6 * e1 / c1).all()  # oversampling reduces the error, not by sqrt(10): p^2 stays


# ---------------------------------------------------------------------------------------------------- runs

@pytest.fixture(scope="module")
def tiny_run(table, tmp_path_factory):
    """A tiny quick-preset run trained for two epochs, its newest checkpoint removed (as if interrupted after the
    first epoch), then continued with --resume under another preset and evaluated (without the speed check)."""
    out = tmp_path_factory.mktemp("vaselli_run") / "run"
    first, second = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(first):
        train.main([*TINY, "--input", str(table), "--out", str(out), "--no-evaluate"])
    run = Run(out)
    recipe, spe = run.recipe(), run.results()["steps_per_epoch"]
    sorted(run.checkpoints.glob("ckpt-*.npz"), key=lambda p: int(p.stem.split("-")[1]))[-1].unlink()
    with contextlib.redirect_stdout(second):
        train.main(["--preset", "paper", "--epochs", "9", "--out", str(out), "--resume", "--no-speed"])
    return {"out": out, "first": first.getvalue(), "second": second.getvalue(), "recipe": recipe, "spe": spe}


def test_paper_configuration_parameter_count_is_printed(tiny_run):
    assert "47,986,595 trainable parameters" in tiny_run["first"]
    assert "differs from the paper: preprocessing: ours (paper: thesis)" in tiny_run["first"]


def test_resume_continues_the_runs_own_recipe(tiny_run):
    run = Run(tiny_run["out"])
    assert "with its own recipe" in tiny_run["second"] and f"from step {tiny_run['spe']}" in tiny_run["second"]
    assert run.recipe() == tiny_run["recipe"] and run.recipe()["epochs"] == 2
    assert run.recipe()["reading"] == "abstract" and "15 steps (abstract reading)" in tiny_run["first"]
    assert run.results()["trained_steps"] == 2 * tiny_run["spe"]


def test_metrics_json_has_the_issue_keys(tiny_run):
    out = tiny_run["out"]
    m = json.loads((out / "metrics.json").read_text())
    assert KEYS <= set(m)
    assert set(m["targets"]) == set(TARGETS)
    for v in m["targets"].values():
        assert {"wasserstein", "wasserstein_over_std", "ks"} <= set(v)
    assert set(m["btag_roc_auc"]) == {"flow", "full_chain"} and set(m["jets_per_s"]) == {"flow", "full_chain"}
    assert m["paper_configuration_parameters"] == 47_986_595
    assert 0 <= m["classifier_auc"] <= 1 and m["speedup"] is None  # --no-speed
    for name in ("model.keras", "targets.md", "contours.png", "pt_ratio_profile.png", "btag_roc.png",
                 "btag_by_flavour.png", "oversampling.png", "test_jets.parquet"):
        assert (out / name).exists(), name
    assert m["oversampling"]["factor"] == 3
    assert set(m["acceptance"]) == {"max_wasserstein_over_std_continuous", "btag_roc_auc_difference",
                                    "classifier_auc", "speedup"}


@pytest.mark.slow
def test_speed_is_measured_in_one_process():
    flow = model.build_flow(dataclasses.replace(QUICK, hidden_features=8, num_blocks=1, bins=4), 15, 14,
                            *(lambda s: (s.pipeline, s.context_pipeline))(
                                data.prepare(_jets(), dataclasses.replace(QUICK, batch_size=64))))
    rate = evaluate.flow_rate(flow, _jets()[list(CONDITIONING)].to_numpy(), seed=0)
    chain = evaluate.full_chain_rate(QUICK, 10)
    assert rate["jets"] == len(_jets()) and rate["jets_per_s"] > 0
    assert chain["events"] == 10 and chain["jets"] > 0 and chain["jets_per_s"] > 0
