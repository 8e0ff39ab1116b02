"""Tests for papers/butter_plehn_winterhalder: exact networks, on-shell layer, MMD on the masses, the recipe and its
deviations, the run folder (resume, mismatch), LHE, every number evaluate.py writes against an independent value on
constructed events, a fast train.py --baseline -> evaluate chain with tiny networks (its numbers recomputed), the
same seed giving the same run, and a slow smoke run of the real networks on a Pythia sample."""

import ast
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gan4hep import callbacks, io, recipes, training
from gan4hep.layers import OnShell
from gan4hep.runs import Run
from papers.butter_plehn_winterhalder import data, evaluate, lhe, published, train
from papers.butter_plehn_winterhalder import model as bpw
from papers.butter_plehn_winterhalder import observables as obs
from papers.butter_plehn_winterhalder.recipe import PAPER, QUICK, Recipe, label, validate

DIR = Path(train.__file__).resolve().parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"}


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
    layer = OnShell(masses, eps=0.0)
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


def test_exported_sampler_emits_gev(tmp_path):
    """model.keras carries the 450 GeV scaling: a loaded sampler gives the b quarks their 4.7 GeV mass, and the same
    events as the GAN it was exported from."""
    from gan4hep.models import load_sampler

    gan = bpw.build_gan(dataclasses.replace(QUICK, jit_compile=False))
    sampler = load_sampler(gan.export(tmp_path / "model.keras"))
    x = sampler.sample(200, seed=5)
    np.testing.assert_allclose(x, gan.sample(200, seed=5), rtol=1e-6)
    q = x.reshape(200, 6, 4).astype(np.float64)
    m = np.sqrt(np.abs(q[..., 3] ** 2 - (q[..., :3] ** 2).sum(-1)))
    np.testing.assert_allclose(m[:, [2, 5]], 4.7, rtol=1e-2)


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


def _names(devs):
    return [d.split(":")[0] for d in devs]


def test_quick_deviations_from_the_paper_are_computed():
    """gan4hep.recipes.deviations lists exactly the fields QUICK replaces; a recipe round-trips through JSON."""
    devs = recipes.deviations(QUICK, PAPER)
    changed = [f.name for f in dataclasses.fields(Recipe) if getattr(QUICK, f.name) != getattr(PAPER, f.name)]
    assert _names(devs) == changed
    assert set(changed) == {"train_events", "test_events", "steps", "steps_per_epoch", "eval_every",
                            "checkpoint_every", "batch_size", "decay", "decay_steps", "mmd_weight",
                            "mmd_extra_widths", "select_best"}
    assert "mmd_weight: 10.0 (paper: 1.0)" in devs and "mmd_extra_widths: (10.0, 50.0) (paper: ())" in devs
    assert recipes.deviations(PAPER, PAPER) == []
    stored = json.loads(json.dumps(recipes.to_dict(QUICK)))
    assert recipes.from_dict(Recipe, stored, base=PAPER) == QUICK
    assert (label(PAPER), label(QUICK), label(dataclasses.replace(QUICK, steps=2))) == \
        ("paper", "quick", "quick (modified)")


def test_deviations_paper_preset_is_the_recipe():
    _, recipe = train.parse_args(["--preset", "paper", "--out", "x"])
    assert recipe == PAPER and recipes.deviations(recipe, PAPER) == []
    assert recipe.ema_decay is None and recipe.mmd_extra_widths == () and not recipe.select_best
    assert (recipe.lr, recipe.batch_size, recipe.mmd_weight, recipe.reg_weight) == (1e-3, 1024, 1.0, 1e-3)
    _, recipe = train.parse_args(["--preset", "paper", "--out", "x", "--ema-decay", "0.99", "--lr", "3e-4"])
    devs = recipes.deviations(recipe, PAPER)
    assert any(d.startswith("ema_decay: 0.99") for d in devs)
    assert any(d.startswith("lr: 0.0003") for d in devs)
    _, recipe = train.parse_args(["--preset", "paper", "--out", "x", "--ema-decay", "0"])
    assert recipe.ema_decay is None  # 0 switches it off
    _, quick = train.parse_args(["--preset", "quick", "--out", "x"])
    assert quick == QUICK
    devs = recipes.deviations(quick, PAPER)
    assert any(d.startswith("steps:") for d in devs)
    # every recipe setting the quick preset changes is listed
    changed = [f.name for f in dataclasses.fields(Recipe) if getattr(quick, f.name) != getattr(PAPER, f.name)]
    assert all(any(d.startswith(k + ":") for d in devs) for k in changed)
    # options given on the command line switch the quick preset's options off again: only its smaller sample and
    # schedule remain
    _, off = train.parse_args(["--preset", "quick", "--out", "x", "--mmd-extra-widths", "--no-select-best",
                               "--decay", "0.1", "--decay-steps", "1000", "--batch-size", "1024", "--mmd-weight", "1"])
    assert _names(recipes.deviations(off, PAPER)) == ["train_events", "test_events", "steps", "steps_per_epoch",
                                                      "eval_every", "checkpoint_every"]
    # renamed flags: --train-events (was --events), --input (was --data, stored as an absolute path)
    _, renamed = train.parse_args(["--out", "x", "--train-events", "500", "--input", "t.csv", "--steps", "20"])
    assert renamed.train_events == 500 and renamed.input == str(Path("t.csv").resolve())
    assert renamed.steps_per_epoch == 20  # at most the steps
    for bad in (["--decay-steps", "0"], ["--component-mmd", "-1"], ["--mmd-weight", "-1"], ["--events", "5"],
                ["--data", "t.csv"]):
        with pytest.raises(SystemExit):
            train.parse_args(["--out", "x", *bad])
    with pytest.raises(ValueError, match="kernel"):
        validate(dataclasses.replace(PAPER, kernel="box"))


def test_build_passes_the_options_on():
    """build_gan gives the networks and losses every recipe option, also for a recipe.json written before they
    existed (missing fields take the paper's values)."""
    _, recipe = train.parse_args(["--preset", "quick", "--out", "x", "--component-mmd", "1", "--init", "kaiming",
                                  "--no-xla"])
    devs = recipes.deviations(recipe, PAPER)
    assert any(d.startswith("component_mmd: 1.0") for d in devs)
    assert any(d.startswith("init: kaiming") for d in devs)
    gan = bpw.build_gan(dataclasses.replace(recipe, use_mmd=False))
    assert [p.name for p in gan.penalties] == ["mmd_components"]
    schedule = gan.g_optimizer._learning_rate
    assert (schedule.decay_steps, schedule.decay_rate) == (200, 1.0)
    assert type(gan.generator.layers[0].kernel_initializer).__name__ == "VarianceScaling"
    old = {k: v for k, v in recipes.to_dict(recipe).items() if k not in ("decay_steps", "init", "component_mmd")}
    gan = bpw.build_gan(recipes.from_dict(Recipe, old, base=PAPER))
    assert [p.name for p in gan.penalties] == ["mmd"] and gan.g_optimizer._learning_rate.decay_steps == 1000
    assert type(gan.generator.layers[0].kernel_initializer).__name__ == "GlorotUniform"


def test_peak_fractions_and_distance():
    m = obs.masses(_events(4000, seed=5))
    ref = obs.peak_fractions(m)
    assert ref["W_within_5GeV"] > 0.7 and ref["top_within_15GeV"] > 0.9
    shifted = obs.peak_fractions(m + np.array([20.0, 20.0, 0.0, 0.0]))
    assert shifted["W_within_5GeV"] < 0.1 and shifted["top_within_5GeV"] == ref["top_within_5GeV"]
    # the selection distance: ~0 for the same peaks, grows with a shift and with a broader peak, bounded far off
    m2 = obs.masses(_events(4000, seed=6))
    same = obs.peak_distance(m2, m)
    assert same < 0.3
    shift = [obs.peak_distance(m2 + np.array([d, d, 0.0, 0.0]), m) for d in (2.0, 5.0)]
    assert same < shift[0] < shift[1] and shift[1] == pytest.approx(2.5, abs=0.3)  # 5 GeV on 2 of 4 candidates
    centre = np.array([80.4, 80.4, 173.0, 173.0])
    broad = obs.peak_distance(centre + 3 * (m2 - centre), m)
    assert broad > 2 * same + 0.5
    assert obs.peak_distance(np.full_like(m2, 1e4), m) < obs.PEAK_WINDOW + 1


def test_peak_summary_of_a_sampler():
    """The training monitor works on anything with sample(n, seed=...) in GeV (the model contract)."""

    class Truth:
        def sample(self, n, seed=None):
            return _events(n, seed=seed)

    summary = obs.peak_summary(Truth(), n=3000, seed=1, reference=obs.masses(_events(3000, seed=2)))
    assert summary["peak_distance"] < 0.3 and summary["W_within_5GeV"] > 0.7
    assert summary["W_median"] == pytest.approx(80.4, abs=0.3) and summary["top_median"] == pytest.approx(173, abs=1)


def test_peak_fit_recovers_breit_wigner():
    rng = np.random.default_rng(0)
    m = 80.4 + 0.5 * 2.1 * rng.standard_cauchy(200_000)
    f = obs.fit_peak(m, 80.4)
    assert f["position"] == pytest.approx(80.4, abs=0.05)
    assert f["width"] == pytest.approx(2.1, rel=0.05)
    assert f["iqr"] == pytest.approx(2.1, rel=0.02)  # quartiles of a Breit-Wigner: M -+ Gamma / 2
    off = obs.fit_peak(81.2 + 0.5 * 2.1 * rng.standard_cauchy(200_000), 80.4)  # a peak 0.8 GeV off the pole
    assert off["position"] == pytest.approx(81.2, abs=0.05) and off["median"] == pytest.approx(81.2, abs=0.05)
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


def _sum_pt(x):
    return sum(np.hypot(x[:, 4 * i], x[:, 4 * i + 1]) for i in range(6))


def _numpy_momentum_balance(x):
    """|sum px| / sum pT and |sum py| / sum pT, written out with numpy (independent of observables.py)."""
    return (np.abs(x[:, 0::4].sum(axis=1)) / _sum_pt(x), np.abs(x[:, 1::4].sum(axis=1)) / _sum_pt(x))


def test_observables_table_against_vector():
    """pT, eta, phi, E of the six quarks and pT, eta, phi, E, m of the four candidates, against the vector
    package."""
    import vector

    x = _events(200, seed=9)
    t = obs.table(x)
    p4 = [vector.array({"px": x[:, 4 * i], "py": x[:, 4 * i + 1], "pz": x[:, 4 * i + 2], "E": x[:, 4 * i + 3]})
          for i in range(6)]
    objects = dict(zip(obs.PARTICLES, p4))
    objects.update({"W1": p4[0] + p4[1], "t1": p4[0] + p4[1] + p4[2], "W2": p4[3] + p4[4],
                    "t2": p4[3] + p4[4] + p4[5]})
    assert len(t.columns) == 6 * 4 + 4 * 5
    for name, v in objects.items():
        for col, want in (("pt", v.pt), ("eta", v.eta), ("phi", v.phi), ("E", v.E)):
            np.testing.assert_allclose(t[f"{col}_{name}"], want, rtol=1e-9, atol=1e-9, err_msg=f"{col}_{name}")
        if name in ("W1", "t1", "W2", "t2"):
            np.testing.assert_allclose(t[f"m_{name}"], v.mass, rtol=1e-7, err_msg=name)
    np.testing.assert_allclose(obs.masses(x), t[["m_W1", "m_W2", "m_t1", "m_t2"]].to_numpy())


def test_momentum_balance_on_a_known_imbalance():
    """Balanced events (|sum px| ~ 1e-13) with d added to the first quark's px and -d/2 to the second's py: the
    balance is d / sum pT and (d / 2) / sum pT, with sum pT of the modified event."""
    x = _events(300, seed=7)
    assert np.max(obs.momentum_balance(x)[0]) < 1e-9
    d = np.linspace(1.0, 60.0, len(x))
    y = x.copy()
    y[:, 0] += d
    y[:, 5] -= d / 2
    rx, ry = obs.momentum_balance(y)
    np.testing.assert_allclose(rx, d / _sum_pt(y), rtol=1e-9)
    np.testing.assert_allclose(ry, d / 2 / _sum_pt(y), rtol=1e-9)
    summary = evaluate.momentum_balance_summary(x, {"GAN": y})
    assert summary["Truth"]["median_px_over_sumpt"] < 1e-9
    assert summary["GAN"] == {"median_px_over_sumpt": pytest.approx(np.median(d / _sum_pt(y)), rel=1e-9),
                              "median_py_over_sumpt": pytest.approx(np.median(d / 2 / _sum_pt(y)), rel=1e-9),
                              "q90_px_over_sumpt": pytest.approx(np.quantile(d / _sum_pt(y), 0.9), rel=1e-9)}


def test_bulk_deviation_known_answer():
    """Reference uniform on (0, 1); the generated sample has every reference value below 0.5 twice: normalised,
    gen / ref is 4/3 below 0.5 and 2/3 above, so |gen / ref - 1| = 1/3 in each of the 40 bins."""
    n = 40_000
    ref = (np.arange(n) + 0.5) / n
    gen = np.r_[ref, ref[ref < 0.5]]
    b = obs.bulk_deviation(ref, gen)
    assert b["bins"] == 40
    assert b["mean_abs_dev"] == pytest.approx(1 / 3, rel=1e-9) and b["max_abs_dev"] == pytest.approx(1 / 3, rel=1e-9)
    edges = np.linspace(np.quantile(ref, 0.01), np.quantile(ref, 0.99), 41)
    r, g = np.histogram(ref, edges)[0], np.histogram(gen, edges)[0]
    assert b["stat_rel_uncertainty_mean"] == pytest.approx(np.mean(np.sqrt(1 / r + 1 / g)), rel=1e-12)
    assert obs.bulk_deviation(ref, ref)["mean_abs_dev"] == 0.0
    low = ref < edges[10]  # the events of the first 10 bins twice (a fraction f of all): 2 / (1 + f) and 1 / (1 + f)
    f = low.mean()
    quarter = obs.bulk_deviation(ref, np.r_[ref, ref[low]])
    assert quarter["mean_abs_dev"] == pytest.approx((10 * (1 - f) / (1 + f) + 30 * f / (1 + f)) / 40, rel=1e-9)
    assert quarter["max_abs_dev"] == pytest.approx((1 - f) / (1 + f), rel=1e-9)
    empty = obs.bulk_deviation(ref, gen, min_count=10_000)  # no bin holds 10^4 reference events
    assert empty["bins"] == 0 and np.isnan(empty["mean_abs_dev"])


def test_observable_deviations_and_the_truth_floor():
    """44 observables (24 particle, 20 candidate); a sample against itself deviates by 0; the floor (even vs odd
    truth events) is the size of the bins' statistical fluctuations: E|N(0, s)| = s sqrt(2 / pi)."""
    truth_t = obs.table(_events(20_000, seed=8))
    same = evaluate.observable_deviations(truth_t, truth_t)
    assert len(same) == 44 == len(evaluate.PARTICLE_OBSERVABLES) + len(evaluate.CANDIDATE_OBSERVABLES)
    assert all(v["w1"] == 0 and v["mean_abs_dev"] == 0 for v in same.values())
    floor = evaluate.bulk_floor(truth_t)
    even, odd = truth_t.iloc[0::2].reset_index(drop=True), truth_t.iloc[1::2].reset_index(drop=True)
    halves = [obs.bulk_deviation(even[c], odd[c], min_count=50) for c in evaluate.PARTICLE_OBSERVABLES +
              evaluate.CANDIDATE_OBSERVABLES]
    assert floor == pytest.approx(np.mean([h["mean_abs_dev"] for h in halves]), rel=1e-12)
    expected = np.sqrt(2 / np.pi) * np.mean([h["stat_rel_uncertainty_mean"] for h in halves])
    assert floor == pytest.approx(expected, rel=0.25)
    shifted = truth_t.copy()
    shifted["pt_b1"] *= 1.3
    dev = evaluate.observable_deviations(truth_t, shifted)
    assert dev["pt_b1"]["w1"] == pytest.approx(0.3 * truth_t["pt_b1"].mean(), rel=1e-9)  # W1 of a scaling
    assert dev["pt_b1"]["mean_abs_dev"] > 3 * floor and dev["pt_q1"]["mean_abs_dev"] == 0


def test_pt_t_vs_pt_b_relative_difference(tmp_path):
    """Three filled (pT,t, pT,b) bins with 100 truth events each; the GAN puts 300, 100, 100 events there:
    fractions 0.6, 0.2, 0.2 against 1/3, relative differences 0.8, -0.4, -0.4, median |.| 0.4."""
    points = [(101.0, 55.0), (155.0, 55.0), (255.0, 155.0)]  # the first in the pT,t slice of the figure
    truth = pd.DataFrame([p for p in points for _ in range(100)], columns=["pt_t1", "pt_b1"])
    gen = pd.DataFrame([p for p, k in zip(points, (300, 100, 100)) for _ in range(k)], columns=["pt_t1", "pt_b1"])
    assert evaluate.correlation_figure(truth, gen, tmp_path / "corr") == pytest.approx(0.4, rel=1e-12)
    assert evaluate.correlation_figure(truth, truth, tmp_path / "same") == 0.0
    assert (tmp_path / "corr.png").stat().st_size > 1000 and (tmp_path / "corr.pdf").exists()


def test_network_parameters_this_run_column_is_the_published_table(tmp_path):
    """The "this run" column is built from the networks (inputs, Dense layers, units, counted weights) and the
    recipe; for the paper preset it equals the slides' table."""
    table = evaluate.network_parameters_table(PAPER, {}, tmp_path / "np", "paper").set_index("parameter")
    run, pub = table["this run"], published.NETWORK_PARAMETERS
    n_in, n_masses = (int(v) for v in pub["input_dimension_G"].split(" + "))
    assert run["Input dimension G"].startswith(f"{n_in} (+ {n_masses} masses")
    for row, key in (("Layers", "layers"), ("Units per layer", "units_per_layer"),
                     ("Trainable weights G", "trainable_weights_G"), ("Trainable weights D", "trainable_weights_D"),
                     ("lambda_D", "lambda_D"), ("lambda_G", "lambda_G"), ("Batch size", "batch_size"),
                     ("Epochs", "epochs"), ("Iterations per epoch", "iterations_per_epoch"),
                     ("Size of training data", "training_data_size")):
        assert float(run[row]) == float(pub[key]), row
    assert list(table["published (slides)"]) == [str(v) for v in pub.values()]  # the rows in the slides' order


def _tiny(monkeypatch, units=16, layers=2):
    """The paper's networks at a size that trains in a second (the code path is the same)."""
    monkeypatch.setattr(bpw, "UNITS", units)
    monkeypatch.setattr(bpw, "LAYERS", layers)


def _masses(x):
    """(n, 4) masses of W1, W2, t1, t2 written out with numpy."""
    out = []
    for idx in ((0, 1), (3, 4), (0, 1, 2), (3, 4, 5)):
        p = sum(x[:, 4 * i:4 * i + 4] for i in idx)
        out.append(np.sqrt(np.maximum(p[:, 3] ** 2 - (p[:, :3] ** 2).sum(axis=1), 0.0)))
    return np.stack(out, axis=1)


def test_baseline_chain_with_tiny_networks(tmp_path, monkeypatch, capsys):
    """train.py --baseline -> evaluate.py, the advertised command, with 2 x 16 networks and 4 steps: every output,
    and the numbers in them recomputed from the run's exported samplers and the test events with numpy / scipy."""
    from gan4hep import plotting
    from gan4hep.models import load_sampler

    _tiny(monkeypatch)
    save = plotting.save_figure

    def quick_save(fig, stem, **kwargs):
        """PNG only, at a low resolution; the two grids of 24 and 20 panels are built but not rendered (rendering
        them is most of the time; the slow smoke test and test_plotting.py render them)."""
        if len(fig.axes) > 24:
            import matplotlib.pyplot as plt

            plt.close(fig)
            return []
        return save(fig, stem, formats=("png",), dpi=20)

    monkeypatch.setattr(plotting, "save_figure", quick_save)
    table = tmp_path / "events.csv"
    io.write_table(pd.DataFrame(_events(5500, seed=4), columns=bpw.COLUMNS), table)
    out = tmp_path / "run"
    train.main(["--preset", "quick", "--input", str(table), "--train-events", "500", "--test-events", "5000",
                "--steps", "4", "--batch-size", "32", "--baseline", "--no-xla", "--no-classifier", "--seed", "3",
                "--out", str(out)])
    stdout = capsys.readouterr().out
    for name in ("network_parameters.csv", "mass_peaks.csv", "mass_peaks.png", "width_comparison.csv",
                 "corr_pt_t_pt_b.png", "momentum_conservation.png", "tail_pt.png", "fidelity.csv", "metrics.json",
                 "generated_events.root",
                 "generated_events.lhe", "model.keras", "no_mmd/model.keras", "training_curves.png"):
        assert (out / name).stat().st_size > 0, name

    # the "this run" column comes from the built networks: 18 -> 16 -> 16 -> 18 and 24 -> 16 -> 16 -> 1
    params = pd.read_csv(out / "network_parameters.csv").set_index("parameter")["this run"]
    assert (params["Layers"], params["Units per layer"]) == ("2", "16")
    assert params["Input dimension G"].startswith("18 (+ 6 masses")
    assert int(params["Trainable weights G"]) == 18 * 16 + 16 + 16 * 16 + 16 + 16 * 18 + 18
    assert int(params["Trainable weights D"]) == 24 * 16 + 16 + 16 * 16 + 16 + 16 + 1

    recipe = evaluate.load_recipe(out)
    _, truth = data.load_events(recipe)
    gen = io.read_table(out / "generated_events.root")[bpw.COLUMNS].to_numpy(np.float64)
    np.testing.assert_allclose(gen, load_sampler(out / "model.keras").sample(5000, seed=2024), rtol=1e-6)
    base = load_sampler(out / "no_mmd" / "model.keras").sample(5000, seed=2024).astype(np.float64)
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_generated"] == 5000 and m["label"] == "GAN (MMD)"
    for name, x in (("Truth", truth), ("GAN (MMD)", gen), ("GAN (no MMD)", base)):
        rx, ry = _numpy_momentum_balance(x)
        assert m["momentum_balance"][name]["median_px_over_sumpt"] == pytest.approx(np.median(rx), rel=1e-5)
        assert m["momentum_balance"][name]["median_py_over_sumpt"] == pytest.approx(np.median(ry), rel=1e-5)
        mass = _masses(x)
        assert m["mass_peaks"][name]["W"]["median"] == pytest.approx(np.median(mass[:, :2]), rel=1e-5, abs=1e-3)
        assert m["mass_peaks"][name]["top"]["iqr"] == pytest.approx(np.subtract(*np.quantile(mass[:, 2:], [0.75,
                                                                                                    0.25])),
                                                                   rel=1e-4, abs=1e-3)
    assert m["mass_peaks"]["Truth"]["W"]["median"] == pytest.approx(80.4, abs=1.0)
    assert len(m["width_comparison"]) == 4

    pt_b1 = lambda x: np.hypot(x[:, 8], x[:, 9])  # noqa: E731
    assert m["observables"]["pt_b1"]["w1"] == pytest.approx(stats.wasserstein_distance(pt_b1(truth), pt_b1(gen)),
                                                            rel=1e-5)
    assert len(m["observables"]) == 44 and all(v["mean_abs_dev"] is not None for v in m["observables"].values())
    assert m["observables"]["pt_b1"]["mean_abs_dev"] == pytest.approx(
        obs.bulk_deviation(pt_b1(truth), pt_b1(gen))["mean_abs_dev"], rel=1e-6)
    assert m["bulk_mean_abs_dev_all_observables"] == pytest.approx(
        np.mean([v["mean_abs_dev"] for v in m["observables"].values()]))
    assert m["bulk_mean_abs_dev_truth_halves"] == pytest.approx(evaluate.bulk_floor(obs.table(truth)), rel=1e-12)
    assert "over 44 observables (truth vs truth, two halves:" in stdout
    pt_t1 = np.hypot(*(truth[:, k] + truth[:, 4 + k] + truth[:, 8 + k] for k in (0, 1)))
    pt_t1_gen = np.hypot(*(gen[:, k] + gen[:, 4 + k] + gen[:, 8 + k] for k in (0, 1)))
    xe, ye = np.linspace(0, 400, 41), np.linspace(0, 300, 31)
    ct = np.histogram2d(pt_t1, pt_b1(truth), (xe, ye))[0]
    cg = np.histogram2d(pt_t1_gen, pt_b1(gen), (xe, ye))[0]
    ct, cg = ct / ct.sum(), cg / cg.sum()
    filled = ct > 0
    assert m["corr_pt_t_pt_b_median_abs_rel_diff"] == pytest.approx(
        np.median(np.abs(cg[filled] - ct[filled]) / ct[filled]), rel=1e-6)
    fid = pd.read_csv(out / "fidelity.csv").set_index("feature")
    np.testing.assert_allclose(fid.loc[bpw.COLUMNS, "ks"],
                               [stats.ks_2samp(truth[:, j], gen[:, j]).statistic for j in range(24)], atol=1e-6)
    assert fid.loc["p0_px", "mean_gen"] == pytest.approx(gen[:, 0].mean(), rel=1e-5, abs=1e-4)


def test_the_same_seed_gives_the_same_run(tmp_path, monkeypatch):
    """What the README states about run J and the preset: two runs with the same recipe and seed (tiny networks,
    XLA on as in the presets) log the same losses and peak monitor and export the same generator."""
    from gan4hep.models import load_sampler

    _tiny(monkeypatch)
    table = tmp_path / "events.csv"
    io.write_table(pd.DataFrame(_events(500, seed=4), columns=bpw.COLUMNS), table)
    runs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        train.main(["--preset", "quick", "--input", str(table), "--train-events", "400", "--test-events", "100",
                    "--steps", "4", "--batch-size", "32", "--seed", "5", "--no-evaluate", "--out", str(out)])
        runs.append(out)
    for name in (Run.LOSSES, Run.EVALUATION):
        assert (runs[0] / name).read_text() == (runs[1] / name).read_text(), name
    a, b = (load_sampler(r / Run.MODEL).sample(300, seed=1) for r in runs)
    np.testing.assert_array_equal(a, b)


def test_lhe_round_trip(tmp_path):
    x = _events(20)
    path = lhe.write_lhe(x, tmp_path / "ev.lhe")
    np.testing.assert_allclose(lhe.read_lhe_momenta(path), x, rtol=1e-9, atol=1e-6)
    text = Path(path).read_text()
    assert text.count("<event>") == 20 and "<init>" in text


def test_evaluate_does_not_import_train():
    tree = ast.parse((DIR / "evaluate.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(name == "train" or name.endswith(".train") for name in imported), imported
    assert "__import__" not in (DIR / "evaluate.py").read_text()


def test_scripts_have_help(capsys):
    """train.py runs as a script (imports by package name, no sys.path); both scripts have --help."""
    res = subprocess.run([sys.executable, str(DIR / "train.py"), "--help"], capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr[-2000:]
    assert all(f in res.stdout for f in ("--train-events", "--input", "--resume", "--seed", "--out", "--ema-decay"))
    with pytest.raises(SystemExit) as err:
        evaluate.main(["--help"])
    text = capsys.readouterr().out
    assert err.value.code == 0 and all(f in text for f in ("--samples", "--seed", "--out", "--run"))


def test_resume_continues_the_runs_own_recipe(tmp_path, monkeypatch, capsys):
    """A quick-preset run stopped at step 2 of 4 (a job killed after its checkpoint), resumed with --preset paper:
    it finishes on its own stored recipe (4 steps of batch 16 on the 200-event table), not the paper's. The same
    recipe again continues the run; another recipe without --resume is a one-line error (no training started)."""
    table = tmp_path / "events.csv"
    io.write_table(pd.DataFrame(_events(300, seed=4), columns=bpw.COLUMNS), table)
    out = tmp_path / "run"
    first = ["--preset", "quick", "--input", str(table), "--train-events", "200", "--test-events", "50",
             "--steps", "4", "--batch-size", "16", "--no-xla", "--no-evaluate", "--out", str(out)]
    with monkeypatch.context() as m:
        m.setattr(training, "StopAt", lambda steps: callbacks.StopAt(2))
        train.main(first)
    run = Run(out)
    stored = run.recipe()
    assert run.results()["trained_steps"] == 2 and stored["steps"] == 4 and stored["batch_size"] == 16

    capsys.readouterr()
    train.main(["--preset", "paper", "--resume", "--steps", "1000", "--out", str(out), "--no-evaluate"])
    assert "resuming" in capsys.readouterr().out
    results = run.results()
    assert run.recipe() == stored
    assert (results["resumed_from"], results["trained_steps"], results["n_validation"]) == (2, 4, 20)
    assert [e["step"] for e in json.loads((run / Run.LOSSES).read_text())] == [2, 4]
    assert [e["step"] for e in json.loads((run / Run.EVALUATION).read_text())] == [2, 4]
    assert (run / Run.MODEL).exists() and (run / "training_curves.png").exists()

    # the same recipe without --resume continues the run; another recipe is refused
    _, same = train.parse_args(first)
    assert train.start(run, same, resume=False) == same and run.recipe() == stored
    with pytest.raises(SystemExit) as err:
        train.main([*first[:-2], "--steps", "8", "--out", str(out)])
    assert "another recipe" in str(err.value.code) and "steps" in str(err.value.code)
    assert "\n" not in str(err.value.code)
    with pytest.raises(SystemExit, match="nothing to resume"):
        train.main(["--resume", "--out", str(tmp_path / "empty")])
    (tmp_path / "former").mkdir()
    (tmp_path / "former" / "config.json").write_text("{}")
    with pytest.raises(SystemExit, match="former layout"):
        train.main(["--out", str(tmp_path / "former")])


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    pytest.importorskip("pythia8mc")
    from data_prep import ttbar_partons

    d = tmp_path_factory.mktemp("bpw")
    data = ttbar_partons.make_sample(d / "tp.root", events=1500, seed=7, block_size=1500, progress=False)
    out = d / "run"
    cmd = [sys.executable, str(DIR / "train.py"), "--preset", "quick", "--input", str(data), "--train-events", "1000",
           "--test-events", "500", "--steps", "2", "--batch-size", "32", "--baseline", "--no-xla", "--out",
           str(out), "--seed", "3"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out, res.stdout


@pytest.mark.slow
def test_smoke_run_writes_every_output(smoke_run):
    out, stdout = smoke_run
    for name in ("network_parameters.csv", "network_parameters.md", "mass_peaks.csv", "mass_peaks.png",
                 "mass_peaks.pdf", "width_comparison.csv", "width_comparison.md", "distributions_particles.png",
                 "distributions_candidates.png", "corr_pt_t_pt_b.png", "momentum_conservation.png", "tail_pt.png",
                 "fidelity.csv", "fidelity.md", "metrics.json", "generated_events.root", "generated_events.lhe",
                 "recipe.json", "results.json", "preprocessing.json", "best.npz", "model.keras", "losses.json",
                 "evaluation.json", "training_curves.png", "no_mmd/model.keras", "no_mmd/recipe.json",
                 "no_mmd/training_curves.png"):
        assert (out / name).exists(), name
    assert "preset: quick" in stdout and "differs from the paper: decay_steps" in stdout
    results = json.loads((out / "results.json").read_text())
    assert results["selected_step"] == 2 and results["n_validation"] == 100
    assert json.loads((out / "no_mmd" / "recipe.json").read_text())["use_mmd"] is False
    params = pd.read_csv(out / "network_parameters.csv").set_index("parameter")
    for row in ("Layers", "Units per layer", "Trainable weights G", "Trainable weights D"):  # this run = published
        assert params.loc[row, "this run"] == params.loc[row, "published (slides)"], row
    metrics = json.loads((out / "metrics.json").read_text())
    assert any(d.startswith("mmd_extra_widths") for d in metrics["deviations_from_paper"])
    assert set(metrics["mass_peaks"]) == {"Truth", "GAN (MMD)", "GAN (no MMD)"}
    assert metrics["mass_peaks"]["Truth"]["W"]["position"] == pytest.approx(80.4, abs=0.5)
    assert len(metrics["width_comparison"]) == 4
    assert "w1" in metrics["observables"]["pt_b1"] and "mean_abs_dev" in metrics["observables"]["m_t1"]
    fid = (out / "fidelity.csv").read_text()
    assert "p5_E" in fid and "m_t2" in fid
    assert len(io.read_table(out / "generated_events.root")) == 500
