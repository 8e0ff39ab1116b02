"""Tests for the flow of papers/butter_plehn_winterhalder (issue 20) and the core hook it uses: the decay coordinates
against events built independently (numpy boosts, known masses), the ``DecayChain`` output layer as their exact
inverse, ``Flow(output_layer=...)`` through export and ``load_sampler``, the flow recipe, and ``train.py --model flow``
-> evaluation with a tiny flow (the sampler emits (n, 24) four-vectors in GeV; metrics.json says model "flow")."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

from gan4hep import io
from gan4hep.flows import spline_flow
from gan4hep.layers import OnShell
from gan4hep.models import load_sampler
from gan4hep.preprocessing import Standardise
from papers.butter_plehn_winterhalder import model as bpw
from papers.butter_plehn_winterhalder import observables as obs
from papers.butter_plehn_winterhalder import recipe as rc
from papers.butter_plehn_winterhalder import train


def _two_body(rng, m, m1, m2):
    p = np.sqrt((m**2 - (m1 + m2) ** 2) * (m**2 - (m1 - m2) ** 2)) / (2 * m)
    cos, phi = rng.uniform(-1, 1, len(m)), rng.uniform(-np.pi, np.pi, len(m))
    sin = np.sqrt(1 - cos**2)
    v = p[:, None] * np.stack([sin * np.cos(phi), sin * np.sin(phi), cos], 1)
    return np.c_[v, np.sqrt(p**2 + m1**2)], np.c_[-v, np.sqrt(p**2 + m2**2)]


def _boost(p4, parent):
    b = parent[:, :3] / parent[:, 3:4]
    b2 = (b**2).sum(1, keepdims=True)
    g = 1 / np.sqrt(1 - b2)
    bp = (b * p4[:, :3]).sum(1, keepdims=True)
    return np.c_[p4[:, :3] + ((g - 1) * bp / b2 + g * p4[:, 3:4]) * b, g * (p4[:, 3:4] + bp)]


def _events(n=3000, seed=0):
    """ttbar -> 6 quark events with zero ttbar pT built with textbook boosts (the W via the top's rest frame, as
    Pythia does), and their true W and top masses (n, 4): W1, W2, t1, t2."""
    rng = np.random.default_rng(seed)
    p_top = rng.normal(0, 80, (n, 3)) * [1, 1, 2]
    out, masses = [], []
    for sign, pz2 in ((1, 1.0), (-1, -0.3)):
        mw = 80.4 + 1.0 * rng.standard_cauchy(n).clip(-20, 20)
        mt = 173.0 + 0.7 * rng.standard_cauchy(n).clip(-20, 20)
        top = np.c_[sign * p_top[:, :2], pz2 * p_top[:, 2], np.zeros(n)]
        top[:, 3] = np.sqrt((top[:, :3] ** 2).sum(1) + mt**2)
        w, b = _two_body(rng, mt, mw, np.full(n, bpw.MASSES[2]))
        q1, q2 = _two_body(rng, mw, np.zeros(n), np.zeros(n))
        w_lab = _boost(w, top)
        out += [_boost(q1, w_lab), _boost(q2, w_lab), _boost(b, top)]
        masses.append((mw, mt))
    m = np.stack([masses[0][0], masses[1][0], masses[0][1], masses[1][1]], 1)
    return np.concatenate(out, axis=1), m


def test_decay_coordinates_of_known_events():
    x, m = _events()
    c = pd.DataFrame(bpw.decay_coordinates(x), columns=bpw.FLOW_COLUMNS)
    top1 = x[:, 0:4] + x[:, 4:8] + x[:, 8:12]
    np.testing.assert_allclose(c["px_t1"], top1[:, 0], rtol=1e-9)
    np.testing.assert_allclose(c["y_t1"], np.arctanh(top1[:, 2] / top1[:, 3]), rtol=1e-7, atol=1e-9)
    for col, j, (pole, width) in (("u_W1", 0, (80.4, 2.1)), ("u_W2", 1, (80.4, 2.1)), ("u_t1", 2, (173.0, 1.4)),
                                  ("u_t2", 3, (173.0, 1.4))):
        # u is the Breit-Wigner CDF: m = pole + width/2 tan(pi (u - 1/2)) gives the true mass back
        np.testing.assert_allclose(pole + width / 2 * np.tan(np.pi * (c[col] - 0.5)), m[:, j], rtol=1e-7, atol=1e-6)
    assert (c[bpw.FLOW_COS].abs() <= 1).all().all() and (c[bpw.FLOW_PHI].abs() <= np.pi).all().all()
    # the W of an unpolarised isotropic decay: cos theta uniform in the top rest frame (mean 0, variance 1/3)
    assert abs(c["cos_W1"].mean()) < 0.04 and c["cos_W1"].var() == pytest.approx(1 / 3, abs=0.03)


def test_decay_chain_is_the_inverse_and_on_shell():
    x, m = _events(seed=1)
    c = bpw.decay_coordinates(x)
    back = np.asarray(bpw.DecayChain()(c.astype(np.float32)), dtype=np.float64)
    assert back.shape == (len(x), 24)
    np.testing.assert_allclose(back, x, rtol=1e-5, atol=0.02)  # GeV; float32 in the layer
    np.testing.assert_allclose(obs.masses(back), m, atol=0.02)
    p = back.reshape(-1, 6, 4)
    quark_m2 = p[:, :, 3] ** 2 - (p[:, :, :3] ** 2).sum(-1)
    np.testing.assert_allclose(np.sqrt(np.clip(quark_m2, 0, None)).mean(0), bpw.MASSES, atol=0.05)
    np.testing.assert_allclose(p[:, :, :2].sum(1), 0, atol=1e-3)  # ttbar pT = 0 exactly (up to float32)
    # coordinates outside the physical range are clamped into allowed decays, never NaN
    wild = np.tile(c[:1], (4, 1)).astype(np.float32)
    wild[0, 4] = wild[1, 6] = 0.0      # u_t1, u_W2 at the lower edge
    wild[2, 5] = wild[3, 7] = 1.0      # u_t2, u_W2 at the upper edge
    wild[3, 8] = 3.0                   # cos theta beyond 1
    assert np.isfinite(np.asarray(bpw.DecayChain()(wild))).all()


def test_flow_output_layer_survives_export(tmp_path):
    """Core hook: ``Flow(output_layer=...)`` applies the layer in ``sample`` (physical units, width may change), not
    in ``log_prob``, and the exported ``FlowSampler`` carries it: the same events for the same seed."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6)) * 30
    pipe = Standardise().fit(x)
    flow = spline_flow(6, preprocessing=pipe, steps=2, bins=4, hidden_features=8, num_blocks=1,
                       output_layer=OnShell([0.0, 4.7]))
    flow.compile(keras.optimizers.Adam(1e-3))
    flow.fit(pipe.transform(x).astype(np.float32), batch_size=100, epochs=1, verbose=0)
    raw = flow.sample(50, seed=3, physical=False)
    out = flow.sample(50, seed=3)
    assert raw.shape == (50, 6) and out.shape == (50, 8)
    three = pipe.inverse_transform(raw).reshape(50, 2, 3)
    np.testing.assert_allclose(out.reshape(50, 2, 4)[:, :, :3], three, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out.reshape(50, 2, 4)[:, :, 3], np.sqrt((three**2).sum(-1) + [0.0, 4.7**2]),
                               rtol=1e-5)
    flow.export(tmp_path / "f.keras")
    loaded = load_sampler(tmp_path / "f.keras")
    np.testing.assert_allclose(loaded.sample(50, seed=3), out, rtol=1e-6)
    np.testing.assert_allclose(loaded.log_prob_numpy(raw), flow.log_prob_numpy(raw), rtol=1e-5)
    plain = spline_flow(6, preprocessing=pipe, steps=1, bins=4, hidden_features=8, num_blocks=1)
    assert plain.output_layer is None and plain.sample(5, seed=1).shape == (5, 6)


def test_flow_recipe_and_flags():
    assert rc.presets("flow") is rc.FLOW_PRESETS and rc.presets("gan") is rc.PRESETS
    assert rc.label(rc.FLOW_QUICK) == "quick" and rc.label(rc.QUICK) == "quick"
    assert rc.FLOW_QUICK.model == "flow" and rc.FLOW_QUICK.train_events == rc.QUICK.train_events
    assert rc.FLOW_QUICK.select_best and rc.FLOW_QUICK.seed == rc.QUICK.seed  # same data, split and selection
    _, r = train.parse_args(["--out", "x", "--model", "flow", "--flow-hidden", "32", "--steps", "7"])
    assert (r.model, r.flow_hidden, r.steps, r.flow_bins) == ("flow", 32, 7, rc.FLOW_QUICK.flow_bins)
    with pytest.raises(ValueError, match="model must be one of"):
        rc.validate(rc.FLOW_QUICK.__class__(**{**rc.FLOW_QUICK.__dict__, "model": "vae"}))


def test_train_flow_chain_with_a_tiny_flow(tmp_path, monkeypatch, capsys):
    """train.py --model flow -> evaluation on independent events: the exported sampler emits (n, 24) GeV
    four-vectors with exact quark masses and zero ttbar pT; the run's metrics say model "flow", reference "test"."""
    from gan4hep import plotting

    monkeypatch.setattr(plotting, "save_figure", lambda fig, stem, **kw: __import__("matplotlib.pyplot").pyplot
                        .close(fig) or [])
    x, _ = _events(1700, seed=5)
    table = tmp_path / "events.csv"
    io.write_table(pd.DataFrame(x, columns=bpw.COLUMNS), table)
    out = tmp_path / "run"
    train.main(["--preset", "quick", "--model", "flow", "--input", str(table), "--train-events", "1200",
                "--test-events", "500", "--steps", "6", "--batch-size", "64", "--flow-transforms", "2",
                "--flow-hidden", "8", "--flow-blocks", "1", "--flow-bins", "4", "--no-classifier", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert "differs from the paper: model: flow" in stdout
    # the GAN-only fields (the compressed lr decay, the MMD weight, ...) are not the flow's deviations
    assert "differs from the paper: decay" not in stdout and "differs from the paper: mmd_weight" not in stdout
    ev = load_sampler(out / "model.keras").sample(400, seed=1)
    assert ev.shape == (400, 24) and np.isfinite(ev).all()
    p = ev.reshape(-1, 6, 4)
    np.testing.assert_allclose(np.sqrt(np.clip(p[:, :, 3] ** 2 - (p[:, :, :3] ** 2).sum(-1), 0, None)).mean(0),
                               bpw.MASSES, atol=0.5)
    np.testing.assert_allclose(p[:, :, :2].sum(1), 0, atol=0.05)
    m = json.loads((out / "metrics.json").read_text())
    assert (m["model"], m["reference"], m["label"]) == ("flow", "test", "Flow")
    assert m["n_generated"] == 500 and "Flow" in m["mass_peaks"]
    params = pd.read_csv(out / "network_parameters.csv").set_index("parameter")["this run"]
    assert params["Conditioner"] == "ResidualNet 8 units x 1 blocks"
    assert json.loads((out / "recipe.json").read_text())["model"] == "flow"
