"""Lebese & Ruan paper folder: networks, the kinematic feature layer, and a smoke run writing every output."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import vector

PAPER = Path(__file__).resolve().parents[1] / "papers" / "lebese_ruan"
sys.path.insert(0, str(PAPER))

import evaluate  # noqa: E402
import model  # noqa: E402
import train  # noqa: E402
from gan4hep.layers import TrainableSwish  # noqa: E402
from gan4hep.physics import dilepton_features  # noqa: E402


def _events(n, seed=0):
    """Random lepton pairs and MET turned into the 8 features with gan4hep.physics (consistent by construction)."""
    rng = np.random.default_rng(seed)
    pt0, pt1 = 25 + rng.exponential(40, n), 25 + rng.exponential(20, n)
    f = dilepton_features(pt0, rng.uniform(-2.5, 2.5, n), rng.uniform(-np.pi, np.pi, n), 0.0,
                          pt1, rng.uniform(-2.5, 2.5, n), rng.uniform(-np.pi, np.pi, n), 0.0,
                          rng.exponential(60, n), rng.uniform(-np.pi, np.pi, n))
    return pd.DataFrame({k: f[k] for k in model.FEATURES})


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
    cfg = train.kinematics_config(_events(2000).to_numpy())
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


@pytest.mark.parametrize("generator", ["paper", "kinematic"])
def test_smoke_run_writes_every_output(tmp_path, generator):
    data = tmp_path / "events.parquet"
    _events(3000).to_parquet(data)
    run = tmp_path / "run"
    train.main(["--preset", "quick", "--input", str(data), "--out", str(run), "--steps", "6", "--eval-every", "3",
                "--checkpoint-every", "3", "--batch-size", "64", "--generator", generator])
    for name in ("config.json", "preprocessing.json", "best.npz", "test_mc.parquet", "validation_mc.parquet",
                 "validation_history.json", "table1.csv", "table1.md", "metrics.json", "losses.json"):
        assert (run / name).stat().st_size > 0, name
    for stem in ("fig3", "fig4", "fig5"):
        for ext in ("png", "pdf"):
            assert (run / f"{stem}.{ext}").stat().st_size > 1000
    table = pd.read_csv(run / "table1.csv")
    assert list(table.columns) == ["feature", "MC mean", "GAN mean", "relative difference", "KS", "W1 / std(MC)",
                                   "published MC mean", "published WGAN-GP mean", "published relative difference",
                                   "MC mean / published MC mean"]
    assert list(table["feature"]) == list(model.FEATURES)
    test = pd.read_parquet(run / "test_mc.parquet")
    np.testing.assert_allclose(table["MC mean"], test[list(model.FEATURES)].mean().to_numpy(), rtol=1e-9)
    m = json.loads((run / "metrics.json").read_text())
    for key in ("features", "classifier_auc", "classifier_auc_uncertainty", "selected_checkpoint", "select_by",
                "generator"):
        assert key in m
    assert set(m["features"]) == set(model.FEATURES)
    assert m["generator"] == generator and m["selected_checkpoint"] in (3, 6)
    assert "preset **quick**" in (run / "table1.md").read_text()
    out = tmp_path / "toys.parquet"
    import generate

    generate.main(["--run", str(run), "--events", "1000", "--out", str(out)])
    assert pd.read_parquet(out).shape == (1000, 8)

    # resuming to more steps continues from the last checkpoint and accumulates the training time
    first = json.loads((run / "config.json").read_text())
    train.main(["--preset", "quick", "--input", str(data), "--out", str(run), "--steps", "9", "--eval-every", "3",
                "--checkpoint-every", "3", "--batch-size", "64", "--generator", generator, "--no-evaluate"])
    second = json.loads((run / "config.json").read_text())
    assert second["trained_steps"] == 9 and second["resumed_from"] == 6
    assert second["train_seconds"] > first["train_seconds"]
    assert [r["step"] for r in json.loads((run / "validation_history.json").read_text())] == [3, 6, 9]
