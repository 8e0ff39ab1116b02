"""papers/butter_plehn: the quantile error and amplification (Fig. 1), the B - S weighting (Fig. 3), the regression
terms of Eq. (19) (Figs. 7-8), and runs of the camel and subtraction scripts on tiny budgets."""

import dataclasses
import json
import math

import numpy as np
import pytest

from gan4hep import metrics
from gan4hep.penalties import PeakPenalty
from gan4hep.recipes import deviations

from papers.butter_plehn import camel, data, model, recipe, subtraction, zll

TRUTH = data.CamelBack.of(recipe.PAPER.camel)


# ------------------------------------------------------------------------------------------------- recipes
def test_quick_is_the_paper_recipe_with_a_smaller_budget():
    assert recipe.QUICK == dataclasses.replace(recipe.QUICK)
    camel_changes = {line.split(":")[0] for line in deviations(recipe.QUICK.camel, recipe.PAPER.camel)}
    assert camel_changes == {"repeats"}
    assert recipe.PAPER.zll.lambda_m == recipe.PAPER.zll.lambda_sigma == 1e-4
    assert recipe.preset_name(recipe.QUICK.subtraction, "subtraction") == "quick"
    assert recipe.preset_name(recipe.PAPER.zll, "zll") == "paper"


# ------------------------------------------------------------------------------------------ camel (Fig. 1)
def test_expected_quantile_error_matches_sampling():
    """E[MSE] of N truth events = (n_q - 1) / (n_q^2 N): the formula the amplification factor inverts."""
    rng = np.random.default_rng(3)
    for n, n_q in ((100, 20), (1000, 10)):
        mses = [metrics.quantile_error(TRUTH.sample(n, rng), TRUTH, n_q) for _ in range(3000)]
        expected = metrics.expected_quantile_error(n, n_q)
        assert expected == pytest.approx((n_q - 1) / (n_q**2 * n))
        # the MSE of one sample scatters by ~sqrt(2 / (n_q - 1)); its mean over 3000 samples to ~1 %
        assert np.mean(mses) == pytest.approx(expected, rel=0.05)


def test_truth_quantiles_and_fit_error():
    edges = TRUTH.ppf(np.arange(21) / 20)
    np.testing.assert_allclose(TRUTH.cdf(edges[1:-1]), np.arange(1, 20) / 20, atol=1e-10)
    assert camel.fit_quantile_error(TRUTH, TRUTH, 20) == pytest.approx(0.0, abs=1e-20)
    shifted = dataclasses.replace(TRUTH, mu1=TRUTH.mu1 + 0.3)
    assert camel.fit_quantile_error(shifted, TRUTH, 20) > 5e-5


def test_fit_recovers_the_camel_back():
    x = TRUTH.sample(4000, np.random.default_rng(1))
    fit = data.fit_camel(x)
    for name in ("mu1", "sigma1", "mu2", "sigma2", "frac1"):
        assert getattr(fit, name) == pytest.approx(getattr(TRUTH, name), abs=0.1)


def test_amplification_of_an_equivalent_sample():
    n_q = 20
    mse_500 = metrics.expected_quantile_error(500, n_q)
    a = camel.amplification(np.full(10, mse_500), 100, n_q)
    assert a["mean"] == pytest.approx(5.0)
    assert a["equivalent_events"] == pytest.approx(500.0)
    assert a["spread"] == pytest.approx(0.0, abs=1e-9)
    # truth samples of n_train events amplify by ~1 on average
    rng = np.random.default_rng(5)
    mses = [metrics.quantile_error(TRUTH.sample(100, rng), TRUTH, n_q) for _ in range(400)]
    b = camel.amplification(np.array(mses), 100, n_q)
    assert b["mean"] == pytest.approx(1.0, abs=4 * b["spread"])


# ------------------------------------------------------------------------------------ subtraction (Fig. 3)
def test_binned_subtraction_of_the_toy_is_flat_within_its_envelope():
    toy = data.SubtractionToy(1.0, 10.0)
    assert toy.sigma_b - toy.sigma_s == pytest.approx(0.9)
    edges = np.linspace(1, 10, 19)
    pulls = []
    for k in range(20):
        rng = np.random.default_rng(k)
        bms, err = data.binned_subtraction(toy.sample_b(40_000, rng), toy.sample_s(40_000, rng), toy.sigma_b,
                                           toy.sigma_s, edges)
        pulls.append((bms - 0.1 * np.diff(edges)) / err)
    pulls = np.array(pulls)
    assert abs(pulls.mean()) < 0.1  # unbiased
    assert pulls.std() == pytest.approx(1.0, abs=0.1)  # the envelope is the statistical error


def test_binned_subtraction_with_weights_matches_unweighted():
    rng = np.random.default_rng(2)
    b, s = rng.uniform(0, 1, 1000), rng.uniform(0, 1, 500)
    edges = np.linspace(0, 1, 6)
    v1, e1 = data.binned_subtraction(b, s, 3.0, 1.0, edges)
    v2, e2 = data.binned_subtraction(b, s, 3.0, 1.0, edges, np.full(1000, 2.5), np.full(500, 0.1))
    np.testing.assert_allclose(v1, v2)
    np.testing.assert_allclose(e1, e2)


def test_mixture_of_s_and_b_minus_s_in_the_cross_section_ratio_is_b():
    """What the subtraction GAN's critic sees: w_S P_S + (1 - w_S) P_(B-S) with w_S = sigma_S / sigma_B is P_B."""
    toy = data.SubtractionToy(1.0, 10.0)
    w_s = toy.sigma_s / toy.sigma_b
    rng = np.random.default_rng(4)
    n = 400_000
    from_s = rng.random(n) < w_s
    mixture = np.where(from_s, toy.sample_s(n, rng), rng.uniform(1, 10, n))
    edges = np.linspace(1, 10, 10)
    expected = np.diff(np.log(edges)) + 0.1 * np.diff(edges)
    counts, _ = np.histogram(mixture, edges)
    pull = (counts / n * toy.sigma_b - expected) / (np.sqrt(counts) / n * toy.sigma_b)
    assert np.all(np.abs(pull) < 4)


def test_subtraction_gan_losses_weight_the_mixture():
    """With a critic that outputs 0 and frozen weights: L_D = log 2 (1 + w_S + w_G) = 2 log 2 and
    L_G = w_G log 2."""
    import keras

    keras.utils.set_random_seed(0)
    rec = dataclasses.replace(recipe.QUICK.subtraction, widths=(8,), latent_dim=2, lr=0.0, roth_weight=0.0)
    s = np.random.default_rng(0).random((50, 1)).astype(np.float32)
    gan = model.build_subtraction_gan(rec, 1, s, 0.25)
    last = gan.critic.layers[-1]
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    logs = gan.train_step(np.random.default_rng(1).random((16, 1)).astype(np.float32))
    assert float(logs["d_loss"]) == pytest.approx(2 * math.log(2), rel=1e-5)
    assert float(logs["g_loss"]) == pytest.approx(0.75 * math.log(2), rel=1e-5)
    with pytest.raises(ValueError):
        model.build_subtraction_gan(rec, 1, s, 1.0)


def test_non_negative_check():
    chk = subtraction.check_non_negative(np.array([1.0, -0.1, -3.0]), np.array([0.5, 0.1, 1.0]))
    assert chk == {"negative_bins": 2, "significant_negative_bins": 1, "min_pull": -3.0}


# ------------------------------------------------------------------------------ regression terms (Eq. 19)
NAMES = model.MUONS + ("met_x",)


def _dimuons(masses):
    """Back-to-back muons at eta 0 with pT = m / 2, so m_ll = m exactly."""
    m = np.asarray(masses, dtype=np.float32)
    z = np.zeros_like(m)
    return np.stack([m / 2, z, z, m / 2, z, z + np.pi, z], axis=1)


def test_dimuon_mass_in_the_standardised_space():
    from keras import ops

    x = _dimuons([80.0, 91.0, 100.0])
    mean, std = x.mean(0), x.std(0) + 1.0
    obs = model.DimuonMass(NAMES, mean, std)
    m = ops.convert_to_numpy(obs(ops.convert_to_tensor((x - mean) / std)))
    np.testing.assert_allclose(m[:, 0], [80.0, 91.0, 100.0], rtol=1e-5)
    with pytest.raises(ValueError):
        model.DimuonMass(("mu0_pt",), [0.0], [1.0])


def test_regression_terms_vanish_at_the_target_and_grow_away_from_it():
    from keras import ops

    rng = np.random.default_rng(0)
    masses = rng.normal(91.0, 5.0, 512)
    m_z, s_z = float(masses.mean()), float(masses.std())
    obs = model.DimuonMass(NAMES, np.zeros(7), np.ones(7))
    pen = PeakPenalty(obs, target_mean=[m_z], target_std=[s_z], lambda_mean=1e-4, lambda_std=1e-4)

    def value(ms):
        x = ops.convert_to_tensor(_dimuons(ms))
        return float(ops.convert_to_numpy(pen(x, x)))

    assert value(masses) == pytest.approx(0.0, abs=1e-8)
    shifts = [value(masses + d) for d in (1.0, 3.0, 10.0)]
    assert 0 < shifts[0] < shifts[1] < shifts[2]
    assert shifts[2] == pytest.approx(1e-4 * 10.0**2, rel=1e-3)
    wider = [value(m_z + (masses - m_z) * f) for f in (1.5, 2.0)]
    assert 0 < wider[0] < wider[1]
    assert wider[1] == pytest.approx(1e-4 * s_z**2, rel=1e-3)  # twice the width: (2 s - s)^2


def test_fit_peak_finds_the_core_of_a_peak_with_tails():
    rng = np.random.default_rng(1)
    m = np.concatenate([rng.normal(91.0, 3.0, 20_000), rng.uniform(60, 120, 4_000)])
    pos, width = zll.fit_peak(m)
    assert pos == pytest.approx(91.0, abs=0.15)
    assert width == pytest.approx(3.0, rel=0.06)
    with pytest.raises(ValueError):
        zll.fit_peak(np.ones(10))


def test_zll_gan_builds_with_and_without_terms():
    from gan4hep.preprocessing import Pipeline, Standardise

    x = _dimuons(np.random.default_rng(2).normal(91, 5, 256)) + np.random.default_rng(3).normal(0, 1, (256, 7))
    pipeline = Pipeline([Standardise()]).fit(x)
    rec = dataclasses.replace(recipe.QUICK.zll, widths=(16,), latent_dim=4)
    with_terms = model.build_zll_gan(rec, pipeline, NAMES, 91.0, 5.0)
    without = model.build_zll_gan(rec, pipeline, NAMES)
    assert [p.name for p in with_terms.penalties] == ["z_terms"] and not without.penalties
    logs = with_terms.train_step(pipeline.transform(x[:64]).astype(np.float32))
    assert np.isfinite(float(logs["z_terms"])) and float(logs["z_terms"]) > 0


# ------------------------------------------------------------------- scripts (tiny budgets: ~10 s of CPU each)
def test_camel_script_writes_its_outputs(tmp_path):
    out = camel.main(["--out", str(tmp_path / "c"), "--repeats", "2", "--steps", "30", "--n-train", "100"])
    m = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert set(m["amplification"]) == {"sample", "fit", "gan"} and m["n_train"] == 100 and m["n_quantiles"] == 20
    assert {"mean", "spread"} <= set(m["amplification"]["gan"]) and out["repeats"] == 2
    assert m["provenance"]["preset"] == "quick+changes"
    for name in ("amplification.md", "amplification.csv", "quantile_error.csv", "fig1.png", "fig1.pdf"):
        assert (tmp_path / "c" / name).exists()


def test_subtraction_toy_script_writes_its_outputs(tmp_path):
    args = ["--out", str(tmp_path / "s"), "--no-lhc", "--repeats", "2", "--steps", "30"]
    subtraction.main(args)
    m = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert m["spread_ratio_gan_over_binned"] > 0 and len(m["toy_checks"]) == 2
    for name in ("toy_bins.md", "summary.csv", "fig3.png", "fig3.pdf"):
        assert (tmp_path / "s" / name).exists()


# ---------------------------------------------------------------------------------------- kernels (Fig. 15)
def test_kernel_runs_change_only_the_kernel_and_its_widths():
    from papers.butter_plehn import kernels
    from papers.butter_plehn_winterhalder import recipe as bpw_recipe

    rec = recipe.QUICK.kernels
    base = bpw_recipe.PRESETS[rec.base]
    card = kernels.bpw_recipe_of(rec, "gaussian", "card")
    physical = kernels.bpw_recipe_of(rec, "breit_wigner", "physical")
    assert card.widths == (1.49, 1.49, 2.05, 2.05) and card.kernel == "gaussian"
    assert physical.widths[0] > physical.widths[2]  # W wider than top: the physical assignment
    for r in (card, physical):
        changed = {f.name for f in dataclasses.fields(r) if getattr(r, f.name) != getattr(base, f.name)}
        assert changed <= {"kernel", "widths", "seed", "use_mmd"}
    assert kernels.run_name("cauchy", "card") == "cauchy"
    assert kernels.run_name("cauchy", "physical") == "cauchy_physical"
    with pytest.raises(ValueError):
        kernels.widths(rec, "swapped")


def test_zll_tables_on_synthetic_events(tmp_path):
    """The Fig. 7-8 tables and figures on made-up events with pile-up (the quick preset has none)."""
    from gan4hep.runs import Run
    from data_prep.drell_yan import DETECTOR_COLUMNS

    rng = np.random.default_rng(0)
    names = DETECTOR_COLUMNS
    n = 2000

    def events(shift):
        x = np.zeros((n, len(names)))
        c = {k: i for i, k in enumerate(names)}
        m = rng.normal(91 + shift, 3, n)
        x[:, c["mu0_pt"]] = x[:, c["mu1_pt"]] = m / 2
        x[:, c["mu1_phi"]] = np.pi
        x[:, c["jet0_pt"]] = np.where(rng.random(n) < 0.3, rng.uniform(16, 80, n), 0.0)
        x[:, c["n_pv"]] = rng.poisson(20, n) + 1
        x[:, c["met_x"]] = rng.normal(0, 1 + 0.3 * x[:, c["n_pv"]], n)
        return x

    test, gens = events(0.0), {"with_terms": [events(0.0)], "without_terms": [events(2.0)]}
    np.testing.assert_allclose(zll.mll(test, names)[:5], 2 * test[:5, 0], rtol=1e-9)
    peak = zll.peak_table(zll.mll(test, names), gens, names).set_index("sample")
    assert peak.loc["without_terms", "peak position"] == pytest.approx(93.0, abs=0.4)
    jets = zll.njet_table(test, gens, names)
    assert jets.iloc[0]["N_j = 1"] == pytest.approx(0.3, abs=0.05) and jets.iloc[0]["N_j = 2"] == 0
    met = zll.met_table(test, gens, names)
    truth = met[met["sample"] == "truth (test)"]["mean MET"].to_numpy()
    assert truth[1] > truth[0]  # more pile-up, more missing pT
    rec = recipe.QUICK.zll
    zll.write_figures(Run(tmp_path), test, gens, names, rec, {"preset": "quick", "seed": 1})
    assert (tmp_path / "fig7.png").exists() and (tmp_path / "fig8.pdf").exists()
