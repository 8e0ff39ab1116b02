"""Tests for gan4hep.metrics: known answers, agreement with scipy and with direct loops."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gan4hep import metrics as m


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ---------------------------------------------------------------- separation power
def test_separation_power_identical_is_zero(rng):
    x = rng.normal(size=1000)
    assert m.separation_power(x, x, bins=20) == pytest.approx(0.0, abs=1e-15)


def test_separation_power_disjoint_is_one(rng):
    a = rng.uniform(0, 1, 500)
    b = rng.uniform(2, 3, 700)
    assert m.separation_power(a, b, bins=30) == pytest.approx(1.0)
    assert m.separation_power(a, b, bins=np.linspace(0, 3, 7)) == pytest.approx(1.0)


def test_separation_power_hand_computed():
    # p = (0.5, 0.5), q = (0.25, 0.75): 1/2 [0.0625/0.75 + 0.0625/1.25] = 1/24 + 1/40
    s = m.separation_power_hist([2, 2], [1, 3])
    assert s == pytest.approx(0.5 * (0.0625 / 0.75 + 0.0625 / 1.25))
    # the same from samples and explicit edges, with weights doubling the second bin of q
    s2 = m.separation_power([0.2, 0.3, 0.7, 0.8], [0.1, 0.6, 0.9], bins=[0, 0.5, 1.0],
                            weights_gen=[1.0, 1.5, 1.5])
    assert s2 == pytest.approx(s)


def test_separation_power_overflow_goes_to_end_bins():
    # the generated value 5 lies beyond the last edge: folded into the last bin, not dropped
    assert m.separation_power([0.1, 0.9], [0.1, 5.0], bins=[0, 0.5, 1]) == pytest.approx(0.0)
    assert m.separation_power([0.1, 0.9], [0.1, 5.0], bins=[0, 0.5, 1], overflow=False) > 0.1


def test_separation_power_floor_matches_simulation(rng):
    n, b = 2000, 20
    vals = [m.separation_power(rng.normal(size=n), rng.normal(size=n), bins=np.linspace(-3, 3, b + 1))
            for _ in range(40)]
    assert np.mean(vals) == pytest.approx(m.separation_power_floor(n, n, b), rel=0.2)


def test_separation_power_per_feature_and_quantile_edges(rng):
    x = rng.normal(size=(4000, 2))
    y = x.copy()
    y[:, 1] += 10
    sp = m.separation_power(x, y, bins=10)
    assert sp.shape == (2,)
    assert sp[0] == pytest.approx(0.0) and sp[1] == pytest.approx(1.0)
    edges = m.quantile_edges(x[:, 0], 8)
    counts, _ = np.histogram(x[:, 0], edges)
    assert len(edges) == 9 and np.all(np.abs(counts - 500) <= 1)


# ---------------------------------------------------------------- errors
def test_nan_names_the_column(rng):
    df = pd.DataFrame({"pt": rng.normal(size=10), "met": rng.normal(size=10)})
    bad = df.copy()
    bad.loc[3, "met"] = np.nan
    with pytest.raises(ValueError, match="met"):
        m.ks_statistic(df, bad)
    with pytest.raises(ValueError, match="met"):
        m.fidelity_report(df, bad, classifier=False)


def test_mismatched_columns_and_names(rng):
    with pytest.raises(ValueError, match="feature columns"):
        m.wasserstein(rng.normal(size=(10, 2)), rng.normal(size=(10, 3)))
    with pytest.raises(ValueError, match="names"):
        m.fidelity_report(rng.normal(size=(10, 2)), rng.normal(size=(10, 2)), names=["a"], classifier=False)
    with pytest.raises(ValueError, match="weights_gen"):
        m.wasserstein(rng.normal(size=10), rng.normal(size=10), weights_gen=np.ones(9))
    with pytest.raises(ValueError, match="shape"):
        m.ks_statistic(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))


# ---------------------------------------------------------------- 1-d distances
def test_ks_and_wasserstein_agree_with_scipy(rng):
    a = rng.normal(size=(800, 3))
    b = rng.normal(0.2, 1.3, size=(500, 3))
    ks = m.ks_statistic(a, b)
    w1 = m.wasserstein(a, b)
    for j in range(3):
        assert ks[j] == pytest.approx(stats.ks_2samp(a[:, j], b[:, j]).statistic)
        assert w1[j] == pytest.approx(stats.wasserstein_distance(a[:, j], b[:, j]))
    assert isinstance(m.ks_statistic(a[:, 0], b[:, 0]), float)
    assert w1[0] > 0.1


def test_weighted_ks_equals_repeated_events(rng):
    a = rng.normal(size=200)
    b = rng.normal(0.3, 1, size=150)
    w = rng.integers(1, 4, size=150).astype(float)
    assert m.ks_statistic(a, b, weights_gen=w) == pytest.approx(stats.ks_2samp(a, np.repeat(b, w.astype(int))).statistic)
    assert m.wasserstein(a, b, weights_gen=w) == pytest.approx(stats.wasserstein_distance(a, np.repeat(b, w.astype(int))))


def test_relative_mean_difference():
    ref = np.array([[1.0, -2.0], [3.0, -2.0]])  # means 2, -2
    gen = np.array([[2.0, -3.0], [3.0, -3.0]])  # means 2.5, -3
    np.testing.assert_allclose(m.relative_mean_difference(ref, gen), [0.25, 0.5])
    # weights: mean_gen of column 0 becomes (2*1 + 3*3)/4 = 2.75
    np.testing.assert_allclose(m.relative_mean_difference(ref, gen, weights_gen=[1, 3])[0], 0.375)


def test_chi2_ndf(rng):
    # hand case: normalised (0.5, 0.5) vs (0.25, 0.75) with Poisson errors of counts (2, 2) and (1, 3)
    chi2, ndf = m.chi2_histograms([2, 2], [1, 3])
    expect = 0.25**2 / (2 / 16 + 1 / 16) + 0.25**2 / (2 / 16 + 3 / 16)
    assert chi2 == pytest.approx(expect) and ndf == 1
    # two samples of one distribution: chi2/ndf ~ 1 (mean of 30 repeats, 19 dof each)
    vals = [m.chi2_ndf(rng.normal(size=5000), rng.normal(size=3000), bins=np.linspace(-2, 2, 21))
            for _ in range(30)]
    assert np.mean(vals) == pytest.approx(1.0, abs=0.15)
    assert m.chi2_ndf(rng.normal(size=5000), rng.normal(0.3, 1, size=3000), bins=20) > 5


# ---------------------------------------------------------------- MMD
def _mmd2_loop(x, y, k, unbiased):
    n, mm = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if not (unbiased and i == j))
    kyy = sum(k(y[i], y[j]) for i in range(mm) for j in range(mm) if not (unbiased and i == j))
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(mm))
    if unbiased:
        return kxx / (n * (n - 1)) + kyy / (mm * (mm - 1)) - 2 * kxy / (n * mm)
    return kxx / n**2 + kyy / mm**2 - 2 * kxy / (n * mm)


KERNELS = {
    "gaussian": lambda a, b, s: np.exp(-np.sum((a - b) ** 2) / (2 * s**2)),
    "cauchy": lambda a, b, s: 1 / (1 + np.sum((a - b) ** 2) / s**2),
    "breit_wigner": lambda a, b, s: (s / 2) ** 2 / (np.sum((a - b) ** 2) + (s / 2) ** 2),
}


@pytest.mark.parametrize("kernel", list(KERNELS))
@pytest.mark.parametrize("unbiased", [True, False])
def test_mmd2_equals_double_loop(rng, kernel, unbiased):
    x = rng.normal(size=(25, 2))
    y = rng.normal(0.5, 1.5, size=(18, 2))
    width = 0.8
    ref = _mmd2_loop(x, y, lambda a, b: KERNELS[kernel](a, b, width), unbiased)
    assert m.mmd2(x, y, kernel=kernel, width=width, unbiased=unbiased) == pytest.approx(ref, rel=1e-9)


def test_mmd2_blocks_and_weights(rng):
    x = rng.normal(size=(300, 1))
    y = rng.normal(0.3, 1, size=(200, 1))
    full = m.mmd2(x, y, width=0.5)
    blocked = m._kernel_sum(x, x, np.ones(300), np.ones(300), "gaussian", 0.5, True, block=7)
    assert blocked == pytest.approx(m._kernel_sum(x, x, np.ones(300), np.ones(300), "gaussian", 0.5, True))
    assert m.mmd2(x, y, width=0.5, weights_ref=np.full(300, 3.0)) == pytest.approx(full)
    # biased weighted = biased with repeated events
    w = rng.integers(1, 3, size=200)
    assert m.mmd2(x, y, width=0.5, unbiased=False, weights_gen=w) == pytest.approx(
        m.mmd2(x, np.repeat(y, w, axis=0), width=0.5, unbiased=False))


def test_mmd2_identical_and_different(rng):
    x = rng.normal(size=(400, 2))
    assert m.mmd2(x, x, unbiased=False) == pytest.approx(0.0, abs=1e-12)
    same = m.mmd2(x, rng.normal(size=(400, 2)), kernel="cauchy")
    diff = m.mmd2(x, rng.normal(1.0, 1, size=(400, 2)), kernel="cauchy")
    assert abs(same) < 0.01 and diff > 0.05
    with pytest.raises(ValueError, match="kernel"):
        m.mmd2(x, x, kernel="laplace")


# ---------------------------------------------------------------- correlations
def test_correlation_difference_hand_made():
    t = np.linspace(0, 1, 50)
    ref = np.column_stack([t, t, t**3])  # a-b: +1
    gen = np.column_stack([t, -t, t**3])  # a-b: -1
    d = m.correlation_difference(ref, gen)
    assert d.shape == (3, 3)
    assert d[0, 1] == pytest.approx(-2.0) and d[1, 0] == pytest.approx(-2.0)
    assert m.max_abs_correlation_difference(ref, gen) == pytest.approx(2.0)
    # Spearman sees t and t^3 as perfectly correlated, Pearson does not
    assert m.correlation_matrix(ref, "spearman")[0, 2] == pytest.approx(1.0)
    assert m.correlation_matrix(ref, "pearson")[0, 2] < 0.95
    np.testing.assert_allclose(m.correlation_matrix(ref[:, :2], "spearman"), [[1, 1], [1, 1]])
    # weighted Pearson equals repeated events
    w = np.arange(1, 51) % 3 + 1
    np.testing.assert_allclose(m.correlation_matrix(ref, weights=w), np.corrcoef(np.repeat(ref, w, axis=0).T))


def test_constant_column_is_named():
    x = pd.DataFrame({"pt": [1.0, 2.0, 3.0], "eta": [0.0, 0.0, 0.0]})
    with pytest.raises(ValueError, match="eta"):
        m.correlation_matrix(x)


# ---------------------------------------------------------------- quantile error / amplification
def test_quantile_error_known_answer():
    truth = stats.norm()
    # 2 quantiles: 3/4 of the sample below 0, 1/4 above -> MSE = 1/16; equivalent N = 1 / (4 / 16) = 4
    sample = np.array([-1.0, -0.5, -0.2, 0.7])
    assert m.quantile_error(sample, truth, n_quantiles=2) == pytest.approx(1 / 16)
    assert m.equivalent_events(sample, truth, n_quantiles=2) == pytest.approx(4.0)
    assert m.amplification_factor(sample, truth, n_train=2, n_quantiles=2) == pytest.approx(2.0)
    # the same with a truth sample and with a CDF callable
    assert m.quantile_error(sample, rng_sample(), n_quantiles=2) == pytest.approx(1 / 16)
    assert m.quantile_error(sample, truth.cdf, n_quantiles=2) == pytest.approx(1 / 16)
    # a perfect "fit": one event at the centre of each quantile has zero error, infinite worth
    centres = truth.ppf((np.arange(20) + 0.5) / 20)
    assert m.quantile_error(centres, truth) == 0.0
    assert m.amplification_factor(centres, truth, n_train=20) == np.inf


def rng_sample():
    return np.random.default_rng(5).normal(size=100001)


def test_truth_sample_has_amplification_one(rng):
    truth = stats.norm()
    n = 500
    mse = np.mean([m.quantile_error(rng.normal(size=n), truth) for _ in range(400)])
    assert mse == pytest.approx(m.expected_quantile_error(n), rel=0.05)
    # amplification defined from the mean error over repeats is ~1 relative to N true events
    assert (19 / (400 * mse)) / n == pytest.approx(1.0, rel=0.05)
    # a single draw fluctuates (chi2 with 19 dof) but stays of order one; a sample 4x larger is worth ~4x
    factors = [m.amplification_factor(rng.normal(size=4 * n), truth, n_train=n) for _ in range(200)]
    assert np.median(factors) == pytest.approx(4.0 * 19 / stats.chi2(19).median(), rel=0.1)


def test_biased_sample_saturates(rng):
    # a shifted "generator": more events stop adding information (review Fig. 1, GAN curve flattens)
    truth = stats.norm()
    small = m.equivalent_events(rng.normal(0.1, 1, 10_000), truth)
    large = m.equivalent_events(rng.normal(0.1, 1, 200_000), truth)
    assert large < 2 * small < 4000


# ---------------------------------------------------------------- classifier test and report
def test_classifier_same_distribution_auc_half(rng):
    x = rng.normal(size=(8000, 2))
    y = rng.normal(size=(6000, 2))
    res = m.classifier_two_sample_test(x, y, n_splits=3, seed=1, max_iter=30)
    assert set(res) == {"auc", "auc_uncertainty", "aucs"}
    assert len(res["aucs"]) == 3
    assert abs(res["auc"] - 0.5) < 0.02
    assert res["auc_uncertainty"] > 0


def test_classifier_disjoint_auc_one(rng):
    x = rng.uniform(0, 1, size=(1000, 2))
    y = rng.uniform(0, 1, size=(3000, 2)) + [2.0, 0.0]
    assert m.classifier_two_sample_test(x, y, n_splits=2, max_iter=20)["auc"] > 0.99


def test_classifier_gaussian_shift_reaches_optimal_auc(rng):
    d = 0.5
    optimal = stats.norm.cdf(d / np.sqrt(2))  # 0.638
    x = rng.normal(size=20_000)
    y = rng.normal(d, 1, size=20_000)
    res = m.classifier_two_sample_test(x, y, n_splits=2, seed=3, max_iter=30)
    assert res["auc"] == pytest.approx(optimal, abs=0.02)


def test_classifier_is_reproducible(rng):
    x = rng.normal(size=(600, 2))
    y = rng.normal(0.2, 1, size=(600, 2))
    a = m.classifier_two_sample_test(x, y, n_splits=2, seed=7, max_iter=10)
    b = m.classifier_two_sample_test(x, y, n_splits=2, seed=7, max_iter=10)
    assert a == b


def test_fidelity_report(rng):
    ref = pd.DataFrame({"pt": rng.exponential(50, 4000), "met": rng.normal(80, 20, 4000)})
    gen = pd.DataFrame({"pt": rng.exponential(70, 3000), "met": rng.normal(80, 20, 3000)})
    df = m.fidelity_report(ref, gen, seed=0)
    assert list(df.index) == ["pt", "met"]
    for col in ["relative_mean_difference", "ks", "wasserstein", "wasserstein_over_std", "mean_ref", "mean_gen"]:
        assert col in df.columns
    assert df.loc["pt", "mean_ref"] == pytest.approx(ref.pt.mean())
    assert df.loc["met", "ks"] == pytest.approx(stats.ks_2samp(ref.met, gen.met).statistic)
    assert df.loc["pt", "wasserstein_over_std"] == pytest.approx(
        stats.wasserstein_distance(ref.pt, gen.pt) / ref.pt.std(ddof=0))
    assert df.loc["pt", "relative_mean_difference"] > df.loc["met", "relative_mean_difference"]
    assert df.attrs["max_abs_correlation_difference"] == pytest.approx(
        np.max(np.abs(np.corrcoef(gen.T.values) - np.corrcoef(ref.T.values))))
    assert 0.54 < df.attrs["classifier_auc"] < 0.63  # optimal: 70/(50+70) = 0.583
    assert df.attrs["classifier_auc_uncertainty"] >= 0
    # numpy input with names, no classifier
    df2 = m.fidelity_report(ref.values, gen.values, names=["a", "b"], classifier=False)
    assert list(df2.index) == ["a", "b"] and np.isnan(df2.attrs["classifier_auc"])


def test_fidelity_report_survives_collapsed_feature(rng):
    ref = rng.normal(size=(500, 2))
    gen = np.column_stack([rng.normal(size=500), np.full(500, 0.3)])  # second feature mode-collapsed
    df = m.fidelity_report(ref, gen, names=["a", "b"], classifier=False)
    assert np.isnan(df.attrs["max_abs_correlation_difference"])
    assert df.loc["b", "ks"] > 0.3 and df.loc["b", "wasserstein_over_std"] > 0.5


def test_weighted_quantile_edges(rng):
    x = rng.uniform(0, 1, 20_000)
    w = 2 * x  # weighted density 2x: equal-weight edges at sqrt(k / n)
    np.testing.assert_allclose(m.quantile_edges(x, 4, weights=w)[1:-1], np.sqrt([0.25, 0.5, 0.75]), atol=0.01)


# ---------------------------------------------------------------- gan4hep evaluate
@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A tiny run of ``gan4hep train`` on a two-column table (its generator is replaced in the test below)."""
    from gan4hep import cli

    d = tmp_path_factory.mktemp("cli_evaluate")
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"a": rng.normal(10.0, 2.0, 1200), "b": rng.exponential(3.0, 1200)})
    path = d / "reference.csv"
    ref.to_csv(path, index=False)
    assert cli.main(["train", "--input", str(path), "--columns", "a,b", "--preset", "quick", "--steps", "2",
                     "--out", str(d / "run")]) == 0
    return d, ref, path


def _independent(n, shift_a, seed=12):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.normal(10.0 + shift_a, 2.0, n), rng.exponential(3.0, n)])


@pytest.mark.parametrize("case", ["itself", "shifted", "independent", "independent shifted"])
def test_cli_evaluate_values(cli_run, monkeypatch, case):
    """`gan4hep evaluate`'s numbers with a model that returns: the reference table itself (means equal, KS 0, W1
    0); the table with column a shifted by 1 = 0.5 sigma (the means and W1 differ by the shift, KS is scipy's); an
    independent sample of the same distribution (classifier AUC ~0.5); and one with a shifted by 2 sigma (AUC
    just below the optimal Phi(2 / sqrt 2) = 0.92). A sample against its exact copy:
    ``test_classifier_sample_against_itself_auc_half``."""
    import json

    from gan4hep import cli
    from gan4hep.models import GAN

    d, ref, path = cli_run
    x = ref[["a", "b"]].to_numpy()
    if case.startswith("independent"):
        shift = np.array([4.0 if "shifted" in case else 0.0, 0.0])
        gen = _independent(len(x), shift[0])
    else:
        shift = np.array([1.0 if "shifted" in case else 0.0, 0.0])
        gen = x + shift

    def sample(self, n, context=None, seed=None, **kwargs):
        assert n == len(x) and context is None
        return gen

    monkeypatch.setattr(GAN, "sample", sample)
    out = d / case.replace(" ", "_")
    classifier = case.startswith("independent")
    assert cli.main(["evaluate", "--run", str(d / "run"), "--input", str(path), "--out", str(out), "--seed", "1",
                     *([] if classifier else ["--no-classifier"])]) == 0
    rep = pd.read_csv(out / "fidelity.csv", index_col=0)
    summary = json.loads((out / "summary.json").read_text())
    assert list(rep.index) == ["a", "b"] and summary["events"] == len(x)
    np.testing.assert_allclose(rep["mean_ref"], x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(rep["mean_gen"], gen.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(rep["ks"], [stats.ks_2samp(x[:, j], gen[:, j]).statistic for j in range(2)])
    np.testing.assert_allclose(rep["wasserstein"], [stats.wasserstein_distance(x[:, j], gen[:, j])
                                                    for j in range(2)], rtol=1e-9)
    if case == "itself":
        assert (rep["ks"] == 0).all() and (rep["wasserstein"] == 0).all()
        assert (rep["relative_mean_difference"] == 0).all()
    elif case == "shifted":
        np.testing.assert_allclose(rep["mean_gen"] - rep["mean_ref"], shift, atol=1e-9)
        np.testing.assert_allclose(rep["wasserstein"], shift, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(rep["relative_mean_difference"], shift / x.mean(axis=0), atol=1e-12)
        assert rep.loc["a", "ks"] > 0.15 and rep.loc["b", "ks"] == 0
    if classifier:
        auc, err = summary["classifier_auc"], summary["classifier_auc_uncertainty"]
        optimal = stats.norm.cdf(shift[0] / 2.0 / np.sqrt(2))  # a shift of d sigma: Phi(d / sqrt 2)
        assert optimal - 0.05 - 3 * err < auc < optimal + 0.02 + 3 * err
    else:
        assert summary["classifier_auc"] is None and "classifier_auc" in summary["undefined"]


def test_classifier_sample_against_itself_auc_half(rng):
    x = rng.normal(size=(1000, 2))
    assert abs(m.classifier_two_sample_test(x, x.copy(), n_splits=2, seed=1, max_iter=30)["auc"] - 0.5) < 0.05
