"""Lin, Bhimji & Nachman with ``--model flow`` (issue 20): the conditional 1-d spline flow is a normalised density of
the target for every context, learns a context-dependent conditional, exports a sampler that reproduces it, and runs
through templates.py with the same split, selection and evaluation as the GANs (numbers recomputed from the outputs);
the flow presets, seeds and the compatibility of runs made before the flow fields existed."""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gan4hep.recipes import deviations, to_dict
from gan4hep.runs import Run
from papers.lin_bhimji_nachman import data, model, observables, templates, train
from papers.lin_bhimji_nachman.recipe import (FLOW_PAPER, FLOW_PRESETS, FLOW_QUICK, PAPER, QUICK, Recipe,
                                              presets)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_paper_lin_bhimji_nachman import synthetic_sample  # noqa: E402

TINY = dataclasses.replace(FLOW_QUICK, flow_transforms=2, flow_bins=6, flow_hidden=16, flow_blocks=1)


def test_flow_presets_differ_from_the_gan_presets_only_in_the_model():
    assert FLOW_PRESETS == {"paper": FLOW_PAPER, "quick": FLOW_QUICK} and presets("flow") is FLOW_PRESETS
    assert deviations(FLOW_QUICK, QUICK, label="gan") == ["variants: () (gan: ('vanilla', 'wgan'))",
                                                          "noises: () (gan: ('skew', 'noskew'))",
                                                          "model: flow (gan: gan)"]
    assert (FLOW_QUICK.epochs, FLOW_QUICK.n_init, FLOW_QUICK.batch_size) == (QUICK.epochs, QUICK.n_init, 128)
    with pytest.raises(ValueError, match="model"):
        dataclasses.replace(PAPER, model="vae")
    with pytest.raises(ValueError, match="flow_bins"):
        dataclasses.replace(FLOW_QUICK, flow_bins=0)
    assert train.members(FLOW_QUICK) == [train.FLOW_KEY]
    assert train.initialisation_seed(dataclasses.replace(FLOW_QUICK, seed=2), *train.FLOW_KEY, 1) == 2901


def test_conditional_flow_is_a_normalised_density_for_every_context():
    """An untrained 1-d conditional spline flow: the integral of p(x | c) over x is 1 for several contexts (the
    spline's tails are linear, so a wide grid holds all the mass), and the density changes with the context."""
    import keras

    keras.utils.set_random_seed(3)
    flow = model.build_flow(TINY)
    grid = np.linspace(-40, 40, 16001, dtype=np.float32)[:, None]
    integrals, densities = [], []
    for c in ([0.0, 0.0, 0.0], [1.5, -1.0, 2.0], [-2.0, 1.0, -1.0]):
        p = np.exp(flow.log_prob_numpy(grid, np.tile(np.float32(c), (len(grid), 1))))
        integrals.append(np.trapezoid(p, grid[:, 0]))
        densities.append(p)
    np.testing.assert_allclose(integrals, 1.0, atol=2e-3)
    assert np.max(np.abs(densities[0] - densities[1])) > 1e-3


def test_flow_learns_a_context_dependent_conditional(tmp_path):
    """x | c ~ N(0.8 c_0, 0.3^2) in model space (c_1, c_2 irrelevant): after a short maximum-likelihood training
    the sampled conditional mean and width at c_0 = -1, +1 match within 0.1."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    c = rng.normal(size=(8000, 3)).astype(np.float32)
    x = (0.8 * c[:, :1] + 0.3 * rng.normal(size=(8000, 1))).astype(np.float32)
    flow = model.build_flow(dataclasses.replace(TINY, lr_flow=1e-2), steps=600)
    flow.fit(tf.data.Dataset.from_tensor_slices((x, c)).shuffle(8000, seed=1).batch(256).repeat(),
             steps_per_epoch=600, epochs=1, verbose=0)
    for c0 in (-1.0, 1.0):
        ctx = np.zeros((4000, 3), np.float32)
        ctx[:, 0] = c0
        s = flow.sample(4000, context=ctx, seed=2, physical=False)[:, 0]
        assert abs(s.mean() - 0.8 * c0) < 0.1 and abs(s.std() - 0.3) < 0.1


def test_flow_on_jets_exports_a_sampler_that_reproduces_it(tmp_path):
    from gan4hep.models import load_sampler

    jets = synthetic_sample(200)
    tgt, ctx = model.fit_preprocessing(jets, "m_over_pt")
    flow = model.build_flow(TINY, tgt, ctx)
    assert flow.context_dim == 3 and flow.target == "m_over_pt"
    m = model.generate_mass(flow, jets, copies=3, seed=2)
    assert m.shape == (3, len(jets)) and np.all(m >= 0) and np.isfinite(m).all()
    flow.export(tmp_path / "model.keras")
    sampler = load_sampler(tmp_path / "model.keras")
    context = jets[list(model.CONTEXT)].to_numpy(float)
    np.testing.assert_allclose(sampler.sample(len(jets), context, seed=4), flow.sample(len(jets), context, seed=4),
                               rtol=1e-5, atol=1e-7)


def test_templates_with_model_flow_end_to_end(tmp_path):
    """templates.py --model flow: the flow's rows of separation_power.csv recomputed from the exported flow, beside
    the templates and the floor; metrics.json names the family and the reference; the run trains one flow per
    initialisation in runs/flow_<i>/."""
    sample = tmp_path / "jets.parquet"
    synthetic_sample(1200).to_parquet(sample)
    out = tmp_path / "run"
    templates.main(["--input", str(sample), "--out", str(out), "--epochs", "1", "--n-init", "1", "--seed", "3",
                    "--model", "flow", "--flow-transforms", "2", "--flow-bins", "6", "--flow-hidden", "16",
                    "--flow-blocks", "1", "--no-classifier"])
    sp = pd.read_csv(out / "separation_power.csv")
    assert set(sp["method"]) == {"floor", "template", "flow"}
    m = json.loads((out / "metrics.json").read_text())
    assert (m["model"], m["reference"]) == ("flow", "test") and m["figure_gan"] == "flow"
    assert m["generation_events_per_second"]["Flow"] > 0
    summary = json.loads((out / "training.json").read_text())
    (rec,) = summary["runs"]
    assert summary["model"] == "flow" and (rec["variant"], rec["noise"], rec["seed"], rec["kept"]) == ("flow", "", 3900,
                                                                                                    True)
    assert [h["epoch"] for h in rec["history"]] == [0, 1]
    from gan4hep.models import load_sampler

    recipe = Run(out).recipe()
    assert recipe["model"] == "flow" and recipe["flow_hidden"] == 16
    jets = data.prepare(data.read_jets(sample), 3)
    sampler = load_sampler(out / "runs" / "flow_0" / "model.keras")
    sampler.target = "m_over_pt"
    for region in ("validation", "control_es"):
        gm = model.generate_mass(sampler, jets[region], copies=10, seed=3 + 2)
        row = sp[(sp["region"] == region) & (sp["method"] == "flow")]
        assert row["value"].item() == pytest.approx(
            observables.separation_power_8(jets[region], gm, 20)["value"], rel=1e-6)
        assert row["variant"].item() == "flow (m_over_pt)"
    fid = pd.read_csv(out / "fidelity.csv")
    assert set(fid["method"]) == {"Template", "Flow"}


def test_a_run_made_before_the_flow_fields_continues(tmp_path):
    """A run folder whose recipe.json predates the flow fields (issue 20) is the same recipe, not another one."""
    sample = tmp_path / "jets.parquet"
    synthetic_sample(400).to_parquet(sample)
    out = tmp_path / "run"
    old = {k: v for k, v in to_dict(dataclasses.replace(QUICK, variants=("vanilla",), noises=("skew",), n_init=1,
                                                        epochs=1)).items() if k not in train.ADDED_FIELDS}
    Run(out).start(old)
    train.main(["--out", str(out), "--input", str(sample), "--variant", "vanilla", "--noise", "skew", "--n-init", "1",
                "--epochs", "1"])
    assert "model" not in Run(out).recipe()
    assert json.loads((out / "training.json").read_text())["model"] == "gan"
    assert isinstance(Recipe(), Recipe)
