"""papers/butter_plehn/unfolding.py: the calibration curve and rank statistics on constructed posteriors, the
parton observables, the eINN's invertibility, and the script end to end on a tiny budget."""

import json

import numpy as np
import pytest
from scipy import stats

from papers.butter_plehn import unfolding
from papers.butter_plehn.recipe import UNFOLDING_PAPER, UNFOLDING_PRESETS

Q = np.asarray(unfolding.DECILES)


def _posteriors(n, m, width=1.0, shift=0.0, seed=0):
    """Pairs whose truth is N(mu, 1) around a centre mu, and m 'unfoldings' each from N(mu + shift, width^2)."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0, 3, n)
    truth = mu + rng.standard_normal(n)
    samples = mu[:, None] + shift + width * rng.standard_normal((n, m))
    return truth, samples


def test_calibrated_posterior_gives_the_diagonal():
    truth, samples = _posteriors(20000, 60)
    curve = unfolding.calibration_curve(truth, samples)
    # binomial error sqrt(q (1 - q) / n) <= 0.0035 (numpy's default quantile would be 0.013 off at q = 0.1)
    np.testing.assert_allclose(curve, Q, atol=0.012)
    assert unfolding.max_deviation(curve) < 0.012


def test_narrow_posterior_deviates_as_expected():
    truth, samples = _posteriors(20000, 200, width=0.5)
    curve = unfolding.calibration_curve(truth, samples)
    expected = stats.norm.cdf(stats.norm.ppf(Q) * 0.5)  # Phi(z_q * width / 1)
    np.testing.assert_allclose(curve, expected, atol=0.02)
    assert curve[0] > 0.2 and curve[-1] < 0.8  # flatter than the diagonal
    assert unfolding.max_deviation(curve) > 0.1


def test_shifted_posterior_deviates_as_expected():
    truth, samples = _posteriors(20000, 200, shift=0.5)
    curve = unfolding.calibration_curve(truth, samples)
    np.testing.assert_allclose(curve, stats.norm.cdf(stats.norm.ppf(Q) + 0.5), atol=0.02)
    assert (curve > Q).all()


def test_calibration_curve_checks_shapes():
    with pytest.raises(ValueError):
        unfolding.calibration_curve(np.zeros(3), np.zeros((4, 10)))


def test_rank_chi2_uniform_for_calibrated_large_for_narrow():
    truth, samples = _posteriors(3000, 60, seed=3)
    good = unfolding.rank_chi2(truth, samples)
    assert good["ndf"] == 60 and good["p_value"] > 1e-3 and 0.6 < good["chi2_over_ndf"] < 1.5
    bad = unfolding.rank_chi2(*_posteriors(3000, 60, width=0.5, seed=3))
    assert bad["chi2_over_ndf"] > 10 and bad["p_value"] < 1e-10
    # exact count: every truth below every sample -> all ranks 0
    r = unfolding.rank_chi2(np.zeros(61), np.ones((61, 60)))
    assert r["chi2"] == pytest.approx((61 - 1) ** 2 / 1 + 60 * 1.0)


def test_parton_observables_rebuild_the_second_quark_from_the_balance():
    # reference zero: the first six entries are the leptons' own log pT, eta, phi
    # l- (pT 40, phi 0) and l+ (pT 30, phi pi) sum to (10, 0); q1 has pT 50 at phi pi, so q2 = (40, 0): pT 40
    x = np.array([[np.log(40), 0.5, 0.0, np.log(30), -0.5, np.pi, np.log(50), 1.0, np.pi, -0.7]])
    o = unfolding.parton_observables(x, np.zeros((1, 6)))
    assert o["pt_q1"][0] == pytest.approx(50) and o["eta_q1"][0] == pytest.approx(1.0)
    assert o["pt_q2"][0] == pytest.approx(40) and o["phi_q2"][0] == pytest.approx(0.0, abs=1e-9)
    assert o["eta_q2"][0] == pytest.approx(-0.7) and o["pt_ll"][0] == pytest.approx(10.0)
    assert o["m_ll"][0] == pytest.approx(np.sqrt(2 * 40 * 30 * (np.cosh(1.0) + 1)))
    assert o["m_qq"][0] == pytest.approx(np.sqrt(2 * 50 * 40 * (np.cosh(1.7) + 1)))
    x2 = np.array([[np.log(40), 0.0, 0.0, np.log(10), 0.0, 0.0, np.log(20), 2.0, np.pi, -1.0]])
    o2 = unfolding.parton_observables(x2, np.zeros((1, 6)))  # q2 = -(40 + 10 - 20) along x: pT 30 > 20
    assert o2["pt_q1"][0] == pytest.approx(20) and o2["pt_q2"][0] == pytest.approx(30)  # q1 = the network's
    assert o2["pt_qmax"][0] == pytest.approx(30) and o2["eta_q2"][0] == pytest.approx(-1.0)


def test_parton_array_round_trip_on_a_balanced_table():
    pt = {"lm": 40.0, "lp": 20.0, "q1": 60.0, "q2": 40.0}
    phi = {"lm": 0.0, "lp": np.pi, "q1": np.pi, "q2": 0.0}
    import pandas as pd

    df = pd.DataFrame({**{f"p_{p}_pt": [pt[p]] for p in pt}, **{f"p_{p}_phi": [phi[p]] for p in pt},
                       **{f"p_{p}_eta": [0.1 * i] for i, p in enumerate(pt)}})
    df["d_l0_charge"], df["d_l1_charge"] = [1.0], [-1.0]  # l1 is the l-
    for i, (p, ptd, etad, phid) in enumerate((("lp", 21.0, 0.05, 3.1), ("lm", 38.0, -0.02, 0.1))):
        df[f"d_l{i}_pt"], df[f"d_l{i}_eta"], df[f"d_l{i}_phi"] = [ptd], [etad], [phid]
    x = unfolding.parton_array(df)
    np.testing.assert_allclose(x[0, :3], [np.log(40 / 38), 0.02, -0.1], atol=1e-12)  # l- relative to d_l1
    o = unfolding.parton_observables(x, unfolding.lepton_reference(df))
    for p in pt:
        assert o[f"pt_{p}"][0] == pytest.approx(pt[p])
    assert o["phi_q2"][0] == pytest.approx(0.0, abs=1e-9) and o["eta_q2"][0] == pytest.approx(0.3)


def test_einn_is_invertible_and_unfolds_with_the_right_shape():
    import keras

    keras.utils.set_random_seed(0)
    model = unfolding.NoiseExtendedINN(4, 6, 8, blocks=2, hidden=8)
    model.compile()
    # break the identity start so that the check means something
    for w in model.transform.trainable_weights:
        w.assign(np.random.default_rng(1).normal(0, 0.1, w.shape))
    x = np.random.default_rng(2).standard_normal((5, 8)).astype(np.float32)
    y = np.asarray(model.transform.forward(x, None)[0])
    np.testing.assert_allclose(np.asarray(model.transform.inverse(y, None)[0]), x, atol=1e-4)
    out = model.sample(7, context=np.zeros((7, 6)), seed=1)
    assert out.shape == (7, 4) and np.isfinite(out).all()
    mse, mmd_f, mmd_i = model.losses_of(x[:, :4], x[:, :6])
    assert float(mse) >= 0 and float(mmd_f) >= 0 and float(mmd_i) >= 0


def test_presets_are_consistent():
    assert set(UNFOLDING_PRESETS) == {"paper", "quick"}
    assert UNFOLDING_PAPER.n_calib == 1500 and UNFOLDING_PAPER.n_unfold == 60 and UNFOLDING_PAPER.n_posterior == 3200
    q = UNFOLDING_PRESETS["quick"]
    assert (q.n_calib, q.n_unfold, q.n_posterior) == (1500, 60, 3200)
    assert q.einn_dim >= len(unfolding.DETECTOR_NAMES) and q.einn_dim > len(unfolding.PARTON_NAMES)


@pytest.mark.slow
def test_script_end_to_end_writes_the_metrics(tmp_path):
    """Pythia (400 ZW + 100 W' events) and 20 steps per network: ~30 s on an idle core (minutes under load)."""
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    out = unfolding.main(["--out", str(tmp_path / "run"), "--events", "400", "--steps", "20", "--n-calib", "10",
                          "--n-unfold", "8", "--n-posterior", "50", "--data-dir", str(tmp_path / "data"),
                          "--resonance-mass", "600", "--resonance-events", "100"])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["calibration_max_deviation"]) == set(unfolding.MODELS)
    for m in unfolding.MODELS:
        assert 0 <= metrics["calibration_max_deviation"][m] <= 1
        assert len(metrics["calibration_curves"][m]) == 9
        assert set(metrics["rank_chi2"][m]) == set(unfolding.RANK_OBSERVABLES) | {"all"}
    assert metrics["test_pairs"] >= 10  # ~20 % of 400 events selected, 20 % of those held out
    assert metrics["provenance"]["preset"] == "quick+changes" and metrics["n_calib"] == out["n_calib"] == 10
    assert (tmp_path / "run" / "fig19.png").exists() and (tmp_path / "run" / "fig20.png").exists()
    res = metrics["injected_resonance"]
    assert res["wprime_mass"] == 600 and res["generated"] == 100 and (tmp_path / "run" / "fig18.png").exists()
    for m in unfolding.MODELS:
        assert abs(res[m]["m_zw_median_truth"] - 600) < 30 and 0 <= res[m]["fraction_in_window_unfolded"] <= 1


def test_four_body_mass_of_back_to_back_pairs():
    # l-, l+ back to back (pT 40, eta 0) and q1, q2 back to back (pT 30, eta 0): m = 2 * 40 + 2 * 30
    obs = {"pt_lm": np.array([40.0]), "eta_lm": np.array([0.0]), "phi_lm": np.array([0.0]),
           "pt_lp": np.array([40.0]), "eta_lp": np.array([0.0]), "phi_lp": np.array([np.pi]),
           "pt_q1": np.array([30.0]), "eta_q1": np.array([0.0]), "phi_q1": np.array([1.0]),
           "pt_q2": np.array([30.0]), "eta_q2": np.array([0.0]), "phi_q2": np.array([1.0 - np.pi])}
    assert unfolding.four_body_mass(obs)[0] == pytest.approx(140.0)
