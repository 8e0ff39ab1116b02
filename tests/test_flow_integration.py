"""gan4hep.flows.integration: a flow on the unit box as importance sampler (density normalised on the box, weights,
estimates against exact values, training lowers the weight variance)."""

import math

import keras
import numpy as np
import pytest

from gan4hep.flows.integration import (ElementwiseSpline, UniformBox, box_flow, estimate, sample_with_log_prob,
                                       train_importance_sampler, unweighting_efficiency, weighted_sample)


def _perturbed(features, seed=0):
    """A box flow with random (not identity) weights: a non-trivial density on the box."""
    keras.utils.set_random_seed(seed)
    flow = box_flow(features, couplings=2, bins=6, hidden_features=8)
    rng = np.random.default_rng(seed)
    for v in flow.transform.trainable_weights:
        v.assign(np.asarray(v) + rng.normal(0, 0.5, v.shape).astype("float32"))
    return flow


def test_uniform_box_density_and_draws():
    base = UniformBox(3, -1.0, 1.0)
    z = base.sample(1000, seed=1)
    assert z.shape == (1000, 3) and z.min() >= -1 and z.max() <= 1
    np.testing.assert_allclose(np.asarray(base.log_prob(z)), -3 * math.log(2.0), rtol=1e-6)
    assert np.isneginf(np.asarray(base.log_prob(np.array([[0.0, 0.0, 1.5]], np.float32)))).all()
    with pytest.raises(ValueError):
        UniformBox(2, 1.0, 1.0)


def test_elementwise_spline_starts_as_identity():
    t = ElementwiseSpline(2, bins=5)
    x = np.random.default_rng(0).uniform(-1, 1, (50, 2)).astype("float32")
    z, logdet = t.forward(x)
    np.testing.assert_allclose(np.asarray(z), x, atol=1e-5)
    np.testing.assert_allclose(np.asarray(logdet), 0.0, atol=1e-5)


@pytest.mark.parametrize("features", [1, 2])
def test_box_flow_density_is_normalised_on_the_box(features):
    flow = _perturbed(features)
    x, log_q = sample_with_log_prob(flow, 2000, seed=3)
    assert x.min() >= 0.0 and x.max() <= 1.0
    # the density of the sampling pass equals the one of the density pass
    np.testing.assert_allclose(log_q, flow.log_prob_numpy(x), atol=2e-3)
    # int_box q = E_uniform[q] = 1
    u = np.random.default_rng(4).random((200_000, features))
    q = np.exp(flow.log_prob_numpy(u))
    assert abs(q.mean() - 1.0) < 4 * q.std() / math.sqrt(len(q))


def test_estimate_exact_values():
    e = estimate(np.array([1.0, 2.0, 3.0, 4.0]))
    assert e.integral == 2.5
    assert e.error == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    assert e.unweighting_efficiency == pytest.approx(2.5 / 4)
    assert e.n == 4
    c = estimate(np.full(10, 3.0))
    assert (c.integral, c.error, c.unweighting_efficiency) == (3.0, 0.0, 1.0)
    with pytest.raises(ValueError):
        unweighting_efficiency(np.array([1.0, -1.0]))
    with pytest.raises(ValueError):
        estimate(np.array([1.0]))


def test_weights_of_the_flow_density_itself_are_one():
    """f = 2 q: every weight is exactly 2 (up to float32), whatever the flow."""
    flow = _perturbed(2, seed=5)
    _, w = weighted_sample(flow, lambda x: 2.0 * np.exp(flow.log_prob_numpy(x)), 500, seed=1)
    np.testing.assert_allclose(w, 2.0, rtol=5e-3)


def test_importance_sampling_estimate_is_unbiased():
    """f = x0 + x1 on [0, 1]^2 (integral 1) through a non-trivial flow: the mean of 30 independent estimates is
    within 3.5 standard errors of 1 and their pulls scatter with unit width."""
    flow = _perturbed(2, seed=7)
    ests = [estimate(weighted_sample(flow, lambda x: x[:, 0] + x[:, 1], 2000, seed=s)[1]) for s in range(30)]
    values = np.array([e.integral for e in ests])
    errors = np.array([e.error for e in ests])
    assert abs(values.mean() - 1.0) < 3.5 * values.std(ddof=1) / math.sqrt(len(values))
    pulls = (values - 1.0) / errors
    assert 0.6 < pulls.std() < 1.5


def test_training_lowers_the_weight_variance():
    """A narrow 1-d Gaussian bump: 100 KL steps cut std(w)/<w> of uniform sampling by more than 3."""
    keras.utils.set_random_seed(0)
    sigma = 0.03

    def bump(x):
        return np.exp(-0.5 * ((x[:, 0] - 0.4) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))

    flow = box_flow(1, bins=16)
    flow.compile(keras.optimizers.Adam(2e-2))
    before = estimate(weighted_sample(flow, bump, 5000, seed=1)[1])
    history = train_importance_sampler(flow, bump, steps=100, batch_size=500, loss="kl", seed=0)
    after = estimate(weighted_sample(flow, bump, 5000, seed=2)[1])
    assert history["calls"] == 100 * 500
    assert after.relative_std < before.relative_std / 3
    assert abs(after.integral - 1.0) < 4 * after.error + 1e-9


def test_bad_loss_and_integrand_are_refused():
    flow = box_flow(1, bins=4)
    with pytest.raises(ValueError, match="loss"):
        train_importance_sampler(flow, lambda x: x[:, 0], steps=1, batch_size=8, loss="chi3")
    with pytest.raises(ValueError, match="negative"):
        train_importance_sampler(flow, lambda x: -x[:, 0], steps=1, batch_size=8)


def test_box_flow_export_round_trip(tmp_path):
    from gan4hep.models import load_sampler

    flow = _perturbed(2, seed=11)
    flow.compile(keras.optimizers.Adam(1e-3))
    sampler = load_sampler(flow.export(tmp_path / "box.keras"))
    x = np.random.default_rng(0).random((100, 2))
    np.testing.assert_allclose(sampler.log_prob_numpy(x), flow.log_prob_numpy(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sampler.sample(50, seed=3, physical=False), flow.sample(50, seed=3, physical=False),
                               atol=1e-6)
