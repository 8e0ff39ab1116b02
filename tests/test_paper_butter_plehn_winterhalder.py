"""Tests for papers/butter_plehn_winterhalder: exact networks, on-shell layer, MMD on the masses, LHE, smoke run."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

DIR = Path(__file__).resolve().parents[1] / "papers" / "butter_plehn_winterhalder"
_OWN = ("model", "observables", "lhe", "published", "train", "evaluate")


def _import(name):
    """Import a module of the paper folder without clashing with other papers' model.py etc."""
    saved = {k: sys.modules.pop(k) for k in _OWN if k in sys.modules}
    sys.path.insert(0, str(DIR))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(DIR))
        for k in _OWN:
            sys.modules.pop(k, None)
        sys.modules.update(saved)


bpw = _import("model")
obs = _import("observables")
lhe = _import("lhe")
published = _import("published")


def _events(n=2000, seed=0, shift=0.0):
    """Physical-looking events: two W -> q q' and t -> W b built by boosting at-rest decays (no Pythia needed)."""
    rng = np.random.default_rng(seed)

    def two_body(m, m1, m2, n):
        p = np.sqrt((m**2 - (m1 + m2) ** 2) * (m**2 - (m1 - m2) ** 2)) / (2 * m)
        cos, phi = rng.uniform(-1, 1, n), rng.uniform(-np.pi, np.pi, n)
        sin = np.sqrt(1 - cos**2)
        v = np.stack([p * sin * np.cos(phi), p * sin * np.sin(phi), p * cos], 1)
        e1, e2 = np.sqrt(p**2 + m1**2), np.sqrt(p**2 + m2**2)
        return np.c_[v, np.full(n, e1)], np.c_[-v, np.full(n, e2)]

    def boost(p4, parent):
        b = parent[:, :3] / parent[:, 3:4]
        b2 = (b**2).sum(1, keepdims=True)
        g = 1 / np.sqrt(1 - b2)
        bp = (b * p4[:, :3]).sum(1, keepdims=True)
        e = g * (p4[:, 3:4] + bp)
        p = p4[:, :3] + ((g - 1) * bp / np.where(b2 > 0, b2, 1) + g * p4[:, 3:4]) * b
        return np.c_[p, e]

    out = []
    p_top = rng.normal(0, 80, (n, 3)) * [1, 1, 2]
    for sign in (1, -1):
        mw = 80.4 + shift + 1.0 * rng.standard_cauchy(n).clip(-10, 10)
        top = np.c_[sign * p_top, np.zeros(n)]
        top[:, 3] = np.sqrt((top[:, :3] ** 2).sum(1) + 173.0**2)
        w, b = two_body(173.0, mw, 4.7, n)
        q1, q2 = two_body(mw, 0.0, 0.0, n)
        q1, q2 = boost(boost(q1, w), top), boost(boost(q2, w), top)
        out += [q1, q2, boost(b, top)]
    return np.concatenate(out, axis=1)


def test_parameter_counts_are_the_published_ones():
    from gan4hep.networks import count_trainable

    assert count_trainable(bpw.build_generator()) == published.NETWORK_PARAMETERS["trainable_weights_G"] == 2382866
    assert count_trainable(bpw.build_discriminator()) == published.NETWORK_PARAMETERS["trainable_weights_D"] \
        == 2377217


def test_kaiming_option_keeps_the_counts_and_spreads_the_untrained_generator():
    """Keras' Glorot default (the paper's reading) starts the 10-layer generator collapsed; --init kaiming does not."""
    import keras
    from gan4hep.networks import count_trainable

    z = np.random.default_rng(0).standard_normal((2000, 18)).astype(np.float32)
    spread = {}
    for init in bpw.INITS:
        keras.utils.set_random_seed(0)
        g = bpw.build_generator(init)
        assert count_trainable(g) == 2382866 and count_trainable(bpw.build_discriminator(init)) == 2377217
        p = np.asarray(g(z)).reshape(-1, 6, 4)[..., :3] * bpw.SCALE  # GeV
        spread[init] = float(p.std(axis=0).mean())
    assert spread["glorot"] < 20.0 < 200.0 < spread["kaiming"]
    with pytest.raises(ValueError, match="initialisation"):
        bpw.build_generator("zeros")


def test_component_mmd_penalises_a_collapsed_generator():
    x = (_events(512, seed=2) / bpw.SCALE).astype(np.float32)
    same_physics = (_events(512, seed=3) / bpw.SCALE).astype(np.float32)
    collapsed = np.repeat(same_physics[:1], 512, axis=0)
    pen = bpw.component_mmd_penalty(1.0)
    assert float(pen(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(pen(x, collapsed)) > 10 * float(pen(x, same_physics))


def test_on_shell_layer_gives_the_masses():
    masses = np.array([0.0, 0.0, 4.7, 0.0, 0.0, 4.7]) / bpw.SCALE
    layer = bpw.OnShell(masses, eps=0.0)
    p = np.random.default_rng(1).normal(0, 1, (500, 18)).astype(np.float32)
    out = np.asarray(layer(p)).reshape(500, 6, 4).astype(np.float64)
    np.testing.assert_array_equal(out[..., :3], p.reshape(500, 6, 3))
    m2 = out[..., 3] ** 2 - (out[..., :3] ** 2).sum(-1)
    e2 = out[..., 3] ** 2
    assert np.all(np.abs(m2 - masses**2) <= 4 * np.finfo(np.float32).eps * e2)
    gen = bpw.build_generator()
    x = np.asarray(gen(np.zeros((3, 18), np.float32))).reshape(3, 6, 4).astype(np.float64) * bpw.SCALE
    m = np.sqrt(np.abs(x[..., 3] ** 2 - (x[..., :3] ** 2).sum(-1)))
    np.testing.assert_allclose(m[:, [2, 5]], 4.7, rtol=1e-3)


def test_resonance_masses_match_numpy_kinematics():
    x = _events(300)
    m_tf = np.asarray(bpw.resonance_masses((x / bpw.SCALE).astype(np.float32)))
    np.testing.assert_allclose(m_tf, obs.masses(x), rtol=2e-3, atol=0.1)
    np.testing.assert_allclose(np.median(m_tf[:, 2:]), 173.0, atol=0.5)


def test_mmd_on_masses_zero_for_identical_and_grows_with_shift():
    x = (_events(512, seed=2) / bpw.SCALE).astype(np.float32)
    pen = bpw.mmd_penalty()
    assert float(pen(x, x)) == pytest.approx(0.0, abs=1e-6)
    values = [float(pen(x, (_events(512, seed=3, shift=s) / bpw.SCALE).astype(np.float32))) for s in (0, 3, 10)]
    assert values[0] < values[1] < values[2]
    assert values[2] > 5 * values[0]


def test_multiscale_mmd_on_masses_pulls_from_far_away():
    """--mmd-extra-widths: with a 50 GeV kernel added the MMD still changes when the masses are 60 GeV off."""
    x = (_events(256, seed=2) / bpw.SCALE).astype(np.float32)
    far = [(_events(256, seed=3, shift=s) / bpw.SCALE).astype(np.float32) for s in (-60, -50)]
    narrow, wide = bpw.mmd_penalty(), bpw.mmd_penalty(extra_widths=(50.0,))
    assert float(wide(x, x)) == pytest.approx(0.0, abs=1e-6)
    d_narrow = float(narrow(x, far[0])) - float(narrow(x, far[1]))
    d_wide = float(wide(x, far[0])) - float(wide(x, far[1]))
    assert d_wide > 10 * abs(d_narrow) and d_wide > 0.01


def test_deviations_paper_preset_is_the_recipe():
    train = _import("train")
    _, cfg = train.parse_args(["--preset", "paper", "--out", "x"])
    assert cfg["deviations"] == []
    assert cfg["ema_decay"] is None and cfg["mmd_extra_widths"] == [] and not cfg["select_best"]
    assert (cfg["lr"], cfg["batch_size"], cfg["mmd_weight"], cfg["reg_weight"]) == (1e-3, 1024, 1.0, 1e-3)
    _, cfg = train.parse_args(["--preset", "paper", "--out", "x", "--ema-decay", "0.99", "--lr", "3e-4"])
    assert any(d.startswith("ema_decay: 0.99") for d in cfg["deviations"])
    assert any(d.startswith("lr: 0.0003") for d in cfg["deviations"])
    _, quick = train.parse_args(["--preset", "quick", "--out", "x"])
    assert any(d.startswith("steps:") for d in quick["deviations"])
    # every recipe setting the quick preset changes is listed
    changed = [k for k, v in train.PAPER_RECIPE.items() if quick[k] != v]
    assert all(any(d.startswith(k + ":") for d in quick["deviations"]) for k in changed)
    # options given on the command line switch the quick preset's options off again
    _, off = train.parse_args(["--preset", "quick", "--out", "x", "--mmd-extra-widths", "--no-select-best",
                               "--decay", "0.1", "--decay-steps", "1000", "--batch-size", "1024", "--mmd-weight", "1"])
    assert [d.split(":")[0] for d in off["deviations"]] == ["train_events", "steps"]
    with pytest.raises(SystemExit):
        train.parse_args(["--out", "x", "--decay-steps", "0"])


def test_build_passes_the_options_on():
    """train.build gives build_gan every recipe option, also for a config.json written before they existed."""
    train = _import("train")
    _, cfg = train.parse_args(["--preset", "quick", "--out", "x", "--component-mmd", "1", "--init", "kaiming",
                               "--no-xla"])
    assert any(d.startswith("component_mmd: 1.0") for d in cfg["deviations"])
    assert any(d.startswith("init: kaiming") for d in cfg["deviations"])
    gan = train.build(cfg, use_mmd=False)
    assert [p.name for p in gan.penalties] == ["mmd_components"]
    schedule = gan.g_optimizer._learning_rate
    assert (schedule.decay_steps, schedule.decay_rate) == (200, 1.0)
    assert type(gan.generator.layers[0].kernel_initializer).__name__ == "VarianceScaling"
    old = {k: v for k, v in cfg.items() if k not in ("decay_steps", "init", "component_mmd")}
    gan = train.build(old, use_mmd=True)
    assert [p.name for p in gan.penalties] == ["mmd"] and gan.g_optimizer._learning_rate.decay_steps == 1000
    assert type(gan.generator.layers[0].kernel_initializer).__name__ == "GlorotUniform"


def test_peak_fractions_and_distance():
    train = _import("train")
    m = obs.masses(_events(4000, seed=5))
    ref = train._peak_fractions(m)
    assert ref["W_within_5GeV"] > 0.7 and ref["top_within_15GeV"] > 0.9
    shifted = train._peak_fractions(m + np.array([20.0, 20.0, 0.0, 0.0]))
    assert shifted["W_within_5GeV"] < 0.1 and shifted["top_within_5GeV"] == ref["top_within_5GeV"]
    # the selection distance: ~0 for the same peaks, grows with a shift and with a broader peak, bounded far off
    m2 = obs.masses(_events(4000, seed=6))
    same = train.peak_distance(m2, m)
    assert same < 0.3
    shift = [train.peak_distance(m2 + np.array([d, d, 0.0, 0.0]), m) for d in (2.0, 5.0)]
    assert same < shift[0] < shift[1] and shift[1] == pytest.approx(2.5, abs=0.3)  # 5 GeV on 2 of 4 candidates
    centre = np.array([80.4, 80.4, 173.0, 173.0])
    broad = train.peak_distance(centre + 3 * (m2 - centre), m)
    assert broad > 2 * same + 0.5
    assert train.peak_distance(np.full_like(m2, 1e4), m) < train.PEAK_WINDOW + 1


def test_peak_fit_recovers_breit_wigner():
    rng = np.random.default_rng(0)
    m = 80.4 + 0.5 * 2.1 * rng.standard_cauchy(200_000)
    f = obs.fit_peak(m, 80.4)
    assert f["position"] == pytest.approx(80.4, abs=0.05)
    assert f["width"] == pytest.approx(2.1, rel=0.05)
    assert f["iqr"] == pytest.approx(2.1, rel=0.02)  # quartiles of a Breit-Wigner: M -+ Gamma / 2
    broad = obs.fit_peak(80.4 + 6 * rng.standard_normal(200_000), 80.4)
    assert broad["width"] > 3 * f["width"] and broad["iqr"] > 2 * f["iqr"]
    # a FWHM of half the window or more is a slope across the window, not a peak: no fit, the IQR remains
    flat = obs.fit_peak(80.4 + 12 * rng.standard_normal(200_000), 80.4)
    assert np.isnan(flat["width"]) and np.isnan(flat["position"]) and flat["iqr"] > 12
    none = obs.fit_peak(rng.uniform(0, 60, 10_000), 80.4)  # nothing within +-15 GeV: no fit, the IQR remains
    assert np.isnan(none["width"]) and none["iqr"] == pytest.approx(30.0, rel=0.05)
    with pytest.raises(ValueError, match="no mass values"):
        obs.fit_peak([], 80.4)


def test_width_comparison_with_and_without_mmd():
    evaluate = _import("evaluate")
    rng = np.random.default_rng(1)

    def fits(w_gamma, t_gamma, shift=0.0):
        w = 80.4 + shift + 0.5 * w_gamma * rng.standard_cauchy(100_000)
        t = 173.0 + shift + 0.5 * t_gamma * rng.standard_cauchy(100_000)
        return {"W": obs.fit_peak(w, 80.4), "top": obs.fit_peak(t, 173.0)}

    truth = fits(2.1, 1.4)
    table = evaluate.width_comparison({"Truth": truth, "GAN (MMD)": fits(2.5, 2.0), "GAN (no MMD)": fits(6.0, 9.0)})
    assert table["mmd_closer"].all() and len(table) == 4
    swapped = evaluate.width_comparison({"Truth": truth, "GAN (MMD)": fits(6.0, 9.0),
                                         "GAN (no MMD)": fits(2.5, 2.0)})
    assert not swapped["mmd_closer"].any()
    # no peak without MMD (no candidate within 15 GeV of the poles): the fit row counts it as farther
    far = {"W": obs.fit_peak(rng.uniform(0, 50, 100_000), 80.4), "top": obs.fit_peak(rng.uniform(0, 120, 100_000),
                                                                                       173.0)}
    no_peak = evaluate.width_comparison({"Truth": truth, "GAN (MMD)": fits(2.5, 2.0), "GAN (no MMD)": far})
    fit_rows = no_peak[no_peak.measure == "Breit-Wigner FWHM"]
    assert fit_rows["without MMD"].isna().all() and no_peak["mmd_closer"].all()
    reverse = evaluate.width_comparison({"Truth": truth, "GAN (MMD)": far, "GAN (no MMD)": fits(2.5, 2.0)})
    assert not reverse["mmd_closer"].any()


def test_momentum_balance_and_tail():
    x = _events(1000)
    rx, ry = obs.momentum_balance(x)
    assert np.median(rx) < 1e-10 and np.median(ry) < 1e-10
    assert obs.tail_fraction([1, 2, 3, 4], [0, 2.5, 4]).tolist() == [1.0, 0.5, 0.0]


def test_lhe_round_trip(tmp_path):
    x = _events(20)
    path = lhe.write_lhe(x, tmp_path / "ev.lhe")
    np.testing.assert_allclose(lhe.read_lhe_momenta(path), x, rtol=1e-9, atol=1e-6)
    text = Path(path).read_text()
    assert text.count("<event>") == 20 and "<init>" in text


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    pytest.importorskip("pythia8mc")
    from data_prep import ttbar_partons

    d = tmp_path_factory.mktemp("bpw")
    data = ttbar_partons.make_sample(d / "tp.root", events=1500, seed=7, block_size=1500, progress=False)
    out = d / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, str(DIR / "train.py"), "--preset", "quick", "--data", str(data), "--events", "1000",
           "--test-events", "500", "--steps", "2", "--batch-size", "32", "--baseline", "--no-xla", "--out",
           str(out), "--seed", "3"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out, res.stdout


@pytest.mark.slow
def test_smoke_run_writes_every_output(smoke_run):
    out, stdout = smoke_run
    for name in ("network_parameters.csv", "network_parameters.md", "mass_peaks.csv", "mass_peaks.png",
                 "mass_peaks.pdf", "width_comparison.csv", "width_comparison.md", "distributions_particles.png",
                 "distributions_candidates.png", "corr_pt_t_pt_b.png", "momentum_conservation.png", "tail_pt.png",
                 "fidelity.csv", "fidelity.md", "metrics.json", "generated_events.root", "generated_events.lhe",
                 "config.json", "model.npz", "generator.keras", "history.json", "no_mmd/model.npz"):
        assert (out / name).exists(), name
    assert "preset: quick" in stdout and "differs from the paper: decay_steps" in stdout
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["selected_step"] == 2 and any(d.startswith("mmd_extra_widths") for d in cfg["deviations"])
    params = (out / "network_parameters.csv").read_text()
    assert "2382866" in params and "2377217" in params
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["mass_peaks"]) == {"Truth", "GAN (MMD)", "GAN (no MMD)"}
    assert metrics["mass_peaks"]["Truth"]["W"]["position"] == pytest.approx(80.4, abs=0.5)
    assert len(metrics["width_comparison"]) == 4
    assert "w1" in metrics["observables"]["pt_b1"] and "mean_abs_dev" in metrics["observables"]["m_t1"]
    fid = (out / "fidelity.csv").read_text()
    assert "p5_E" in fid and "m_t2" in fid
    from gan4hep import io

    assert len(io.read_table(out / "generated_events.root")) == 500
