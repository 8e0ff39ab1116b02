"""Issue 18: one policy for negative event weights in every metric. Defined quantities (histograms, means, KS and
W1 through the weighted CDFs, MMD, Pearson correlations) accept them; the others refuse them by name."""

import numpy as np
import pytest

from gan4hep import metrics as m
from gan4hep.errors import InputError


@pytest.fixture
def samples():
    """``b`` and the same ``b`` plus 50 events entered once with +1 and once with -1 (an NLO-style cancellation):
    every quantity defined for signed weights must give the same value for both."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 2))
    a[:, 1] += a[:, 0]
    b = rng.normal(0.2, 1.1, size=(300, 2))
    b[:, 1] += 0.5 * b[:, 0]
    extra = rng.normal(3, 1, size=(50, 2))
    signed = np.concatenate([b, extra, extra])
    w = np.concatenate([np.ones(300), np.ones(50), -np.ones(50)])
    return a, b, signed, w


def test_signed_weights_where_defined(samples):
    a, b, signed, w = samples
    for metric in (m.wasserstein, m.ks_statistic, m.relative_mean_difference):
        np.testing.assert_allclose(metric(a, signed, weights_gen=w), metric(a, b, weights_gen=np.ones(300)),
                                   rtol=1e-9, err_msg=metric.__name__)
    edges = np.linspace(-4, 4, 9)
    np.testing.assert_allclose(m.weighted_histogram(signed[:, 0], edges, w)[0],
                               m.weighted_histogram(b[:, 0], edges)[0])  # the same counts, larger variances
    assert np.isfinite(m.chi2_ndf(a, signed, edges, weights_gen=w)).all()
    np.testing.assert_allclose(m.correlation_matrix(signed, weights=w), m.correlation_matrix(b), rtol=1e-9)
    assert m.mmd2(a, signed, weights_gen=w, unbiased=False) == pytest.approx(m.mmd2(a, b, unbiased=False), rel=1e-9)
    # W1 through the CDF agrees with scipy's where both are defined
    wp = np.random.default_rng(1).uniform(0.5, 2.0, 300)
    np.testing.assert_allclose(m._cdf_w1(a[:, 0], b[:, 0], None, wp), m.wasserstein(a[:, 0], b[:, 0], weights_gen=wp))


def test_signed_weights_refused_by_name_where_undefined(samples):
    a, _, signed, w = samples
    with pytest.raises(InputError, match="weights_gen has 50 negative weights.*classifier"):
        m.classifier_two_sample_test(a, signed, weights_gen=w)
    with pytest.raises(InputError, match="weights has 50 negative weights.*quantile_edges"):
        m.quantile_edges(signed[:, 0], 4, weights=w)
    lopsided = np.concatenate([np.ones(350), -np.ones(50) * 3])  # the extra events' bins go negative
    with pytest.raises(InputError, match="column 'column 0'.*negative total weight"):
        m.separation_power(a, signed, np.linspace(-4, 6, 11), weights_gen=lopsided)
    with pytest.raises(InputError, match="weights_ref must have a positive sum"):
        m.wasserstein(a[:, 0], signed[:, 0], weights_ref=-np.ones(400))
    with pytest.raises(InputError, match="weights_gen contains 1 NaN"):
        m.ks_statistic(a[:, 0], signed[:, 0], weights_gen=np.r_[w[:-1], np.nan])
