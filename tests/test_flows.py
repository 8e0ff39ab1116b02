"""Tests of gan4hep.flows: transforms against independent references, flows fitted to known densities, the
FlashSim parameter count, and the model contract (checkpoint, resume, export)."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan4hep import preprocessing as pp
from gan4hep.flows import (MADE, MLP, AffineCoupling, AffineTransformer, Chain, Coupling, FlowSampler,
                           Inverse, LULinear, MaskedAutoregressive, RandomPermutation, RationalQuadraticSpline,
                           ResidualNet, alternating_mask, cinn, cinn_block, flashsim_flow, maf, spline_flow,
                           unconstrained_rational_quadratic_spline)
from gan4hep.flows.preprocessing import Clip, Dequantise, Logit
from gan4hep.models import load_sampler
from gan4hep.runs import Run
from gan4hep.training import train


@pytest.fixture(autouse=True)
def _seeded():
    """Every test builds its layers from the same seed, whatever ran before it (the round-trip and Jacobian
    tolerances are float32 ones: a test must not depend on the global random state another test left)."""
    keras.utils.set_random_seed(20261130)



# ---- an independent numpy reference of the rational-quadratic spline (Durkan et al. 2019, eqs. (2)-(5)) ---------
def _softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def reference_knots(uw, uh, ud, bound, min_w=1e-3, min_h=1e-3, min_d=1e-3):
    """Knot positions, heights and derivatives (float64) from unnormalised parameters, nflows' parameterisation:
    sizes = min + (1 - K min) softmax, knots on [-B, B], inner derivatives min_d + softplus, boundary ones 1."""
    k = uw.shape[-1]
    knots = []
    for u, m in ((uw, min_w), (uh, min_h)):
        sizes = m + (1 - m * k) * _softmax(u.astype(np.float64))
        edges = np.concatenate([np.zeros(u.shape[:-1] + (1,)), np.cumsum(sizes, axis=-1)], axis=-1)
        edges = -bound + 2 * bound * edges
        edges[..., 0], edges[..., -1] = -bound, bound
        knots.append(edges)
    inner = min_d + np.log1p(np.exp(ud.astype(np.float64)))
    ones = np.ones(ud.shape[:-1] + (1,))
    return knots[0], knots[1], np.concatenate([ones, inner, ones], axis=-1)


def reference_forward(x, xk, yk, d):
    """g(x) and log g'(x) of the monotone rational-quadratic spline, element by element (identity outside)."""
    out, logdet = np.array(x, dtype=np.float64), np.zeros(len(x))
    for i, xi in enumerate(x):
        if not xk[i, 0] <= xi <= xk[i, -1]:
            continue
        k = min(np.searchsorted(xk[i], xi, side="right") - 1, xk.shape[1] - 2)
        w, h = xk[i, k + 1] - xk[i, k], yk[i, k + 1] - yk[i, k]
        s = h / w
        xi_ = (xi - xk[i, k]) / w
        den = s + (d[i, k + 1] + d[i, k] - 2 * s) * xi_ * (1 - xi_)
        out[i] = yk[i, k] + h * (s * xi_ ** 2 + d[i, k] * xi_ * (1 - xi_)) / den
        num = s ** 2 * (d[i, k + 1] * xi_ ** 2 + 2 * s * xi_ * (1 - xi_) + d[i, k] * (1 - xi_) ** 2)
        logdet[i] = np.log(num) - 2 * np.log(den)
    return out, logdet


def reference_inverse(y, xk, yk, d):
    """The inverse by bisection on the monotone forward map (no closed form involved)."""
    lo, hi = np.full(len(y), xk[0, 0] - 1.0), np.full(len(y), xk[0, -1] + 1.0)
    lo, hi = np.minimum(lo, y - 1), np.maximum(hi, y + 1)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        above = reference_forward(mid, xk, yk, d)[0] > y
        hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
    return 0.5 * (lo + hi)


def _random_spline_params(rng, n, k, scale=2.0, dtype=np.float64):
    return (rng.normal(0, scale, (n, k)).astype(dtype), rng.normal(0, scale, (n, k)).astype(dtype),
            rng.normal(0, scale, (n, k - 1)).astype(dtype))


@pytest.mark.parametrize("bins,bound", [(5, 1.0), (8, 3.0), (128, 1.0)])
def test_spline_matches_numpy_reference(bins, bound):
    """The spline arithmetic is dtype-generic: run in float64 to compare the formulas, not float32 rounding."""
    rng = np.random.default_rng(bins)
    n = 300
    uw, uh, ud = _random_spline_params(rng, n, bins)
    x = rng.uniform(-1.3 * bound, 1.3 * bound, n)
    xk, yk, d = reference_knots(uw, uh, ud, bound)
    y_ref, ld_ref = reference_forward(x, xk, yk, d)
    y, ld = unconstrained_rational_quadratic_spline(x, uw, uh, ud, tail_bound=bound)
    np.testing.assert_allclose(np.asarray(y), y_ref, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.asarray(ld), ld_ref, rtol=1e-7, atol=1e-7)
    assert (np.abs(x) > bound).any() and (np.abs(x) < bound).sum() > n / 2
    x_back, ld_inv = unconstrained_rational_quadratic_spline(y_ref, uw, uh, ud, inverse=True, tail_bound=bound)
    x_ref = reference_inverse(y_ref, xk, yk, d)
    np.testing.assert_allclose(np.asarray(x_back), x_ref, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(np.asarray(ld_inv), -ld_ref, rtol=1e-5, atol=1e-5)


def test_spline_matches_tensorflow_probability():
    tfp = pytest.importorskip("tensorflow_probability")
    rng = np.random.default_rng(7)
    n, bins, bound = 400, 10, 2.5
    uw, uh, ud = _random_spline_params(rng, n, bins)
    xk, yk, d = reference_knots(uw, uh, ud, bound)
    spline = tfp.bijectors.RationalQuadraticSpline(bin_widths=np.diff(xk), bin_heights=np.diff(yk),
                                                   knot_slopes=d[:, 1:-1], range_min=-bound)
    x = rng.uniform(-1.2 * bound, 1.2 * bound, n)
    y, ld = unconstrained_rational_quadratic_spline(x, uw, uh, ud, tail_bound=bound)
    np.testing.assert_allclose(np.asarray(y), spline.forward(x).numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.asarray(ld), spline.forward_log_det_jacobian(x, event_ndims=0).numpy(),
                               rtol=1e-7, atol=1e-7)
    x_back, ld_inv = unconstrained_rational_quadratic_spline(x, uw, uh, ud, inverse=True, tail_bound=bound)
    np.testing.assert_allclose(np.asarray(x_back), spline.inverse(x).numpy(), rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(np.asarray(ld_inv), spline.inverse_log_det_jacobian(x, event_ndims=0).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_spline_float32_matches_float64():
    rng = np.random.default_rng(8)
    uw, uh, ud = _random_spline_params(rng, 500, 16, scale=1.0)
    x = rng.uniform(-1.2, 1.2, 500)
    y64, ld64 = unconstrained_rational_quadratic_spline(x, uw, uh, ud)
    y32, ld32 = unconstrained_rational_quadratic_spline(*(a.astype(np.float32) for a in (x, uw, uh, ud)))
    np.testing.assert_allclose(np.asarray(y32), np.asarray(y64), atol=1e-5)
    np.testing.assert_allclose(np.asarray(ld32), np.asarray(ld64), atol=1e-4)


@pytest.mark.parametrize("inverse", [False, True])
def test_spline_far_outside_tail_bound_is_finite(inverse):
    rng = np.random.default_rng(3)
    x = tf.constant([-1e30, -1e6, -3.0, -1.0, 1.0, 1.0 + 1e-7, 7.5, 1e6, 1e30, 0.3], tf.float32)
    params = [tf.Variable(p) for p in _random_spline_params(rng, len(x), 16, scale=5.0, dtype=np.float32)]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y, ld = unconstrained_rational_quadratic_spline(x, *params, inverse=inverse, tail_bound=1.0)
        total = tf.reduce_sum(y) + tf.reduce_sum(ld)
    assert np.isfinite(y.numpy()).all() and np.isfinite(ld.numpy()).all()
    outside = np.abs(x.numpy()) > 1.0
    np.testing.assert_array_equal(y.numpy()[outside], x.numpy()[outside])
    np.testing.assert_array_equal(ld.numpy()[outside], 0.0)
    for g in tape.gradient(total, [x, *params]):
        assert np.isfinite(g.numpy()).all()


def test_spline_boundary_slopes_are_one_and_map_is_continuous():
    rng = np.random.default_rng(4)
    uw, uh, ud = _random_spline_params(rng, 2, 6)
    x = np.array([1.0 - 1e-9, -1.0 + 1e-9, 1.0 + 1e-9, -1.0 - 1e-9])
    y, ld = unconstrained_rational_quadratic_spline(x, *(np.concatenate([p, p]) for p in (uw, uh, ud)))
    np.testing.assert_allclose(np.asarray(y), x, atol=1e-8)
    np.testing.assert_allclose(np.asarray(ld), 0.0, atol=1e-5)


def test_coupling_divides_widths_and_heights_by_sqrt_hidden_features():
    """nflows: unnormalised widths/heights / sqrt(conditioner.hidden_features), derivatives untouched."""
    rng = np.random.default_rng(5)
    spline = RationalQuadraticSpline(bins=4, tail_bound=2.0)
    coupling = Coupling([0, 1, 0, 1], lambda i, o: MLP(i, o, hidden_features=100), spline)
    coupling.conditioner.set_weights([rng.normal(0, 1, w.shape) for w in coupling.conditioner.get_weights()])
    x = rng.normal(0, 1, (6, 4)).astype(np.float32)
    z, ld = coupling.forward(x)
    params = np.asarray(coupling.conditioner(x[:, [0, 2]])).reshape(6, 2, 11)
    uw, uh, ud = params[..., :4] / 10.0, params[..., 4:8] / 10.0, params[..., 8:]
    y_ref, ld_ref = unconstrained_rational_quadratic_spline(x[:, [1, 3]], uw, uh, ud, tail_bound=2.0)
    np.testing.assert_allclose(np.asarray(z)[:, [1, 3]], np.asarray(y_ref), atol=1e-6)
    np.testing.assert_allclose(np.asarray(z)[:, [0, 2]], x[:, [0, 2]])
    np.testing.assert_allclose(np.asarray(ld), np.asarray(ld_ref).sum(1), atol=1e-5)
    assert coupling.hidden_features == 100


# ---- every transform: inverse(forward(x)) = x and log-det = log |det| of the autodiff Jacobian -------------------
def _perturb(transform, seed, scale=0.2):
    rng = np.random.default_rng(seed)
    for v in transform.trainable_weights:
        v.assign(np.asarray(v) + rng.normal(0, scale, v.shape).astype(np.float32))
    return transform


def _spline_coupling(d=4, c=2):
    return Coupling(alternating_mask(d, even=False),
                    lambda i, o: ResidualNet(i, o, 16, c, num_blocks=2, batch_norm=True),
                    RationalQuadraticSpline(bins=8, tail_bound=2.0), context_dim=c)


TRANSFORMS = {
    "spline_coupling": lambda: (_spline_coupling(), 2),
    "affine_coupling": lambda: (AffineCoupling([1, 1, 0, 0], lambda i, o: MLP(i, o, 16, 2), clamp=2.0,
                                               context_dim=2), 2),
    "cinn_block": lambda: (cinn_block(4, 2, hidden_features=16), 2),
    "lu_linear": lambda: (LULinear(4, identity_init=False), 0),
    "permutation": lambda: (RandomPermutation(4, seed=2), 0),
    "made_spline": lambda: (MaskedAutoregressive(MADE(4, 23, 24, 2, 2), RationalQuadraticSpline(8, 2.0)), 2),
    "made_affine": lambda: (MaskedAutoregressive(MADE(4, 2, 24, 2, 0), AffineTransformer(2.0)), 0),
    "inverse_made": lambda: (Inverse(MaskedAutoregressive(MADE(4, 2, 24, 2, 0), AffineTransformer(None))), 0),
    "spline_flow_chain": lambda: (spline_flow(4, 2, steps=3, bins=8, tail_bound=2.0, hidden_features=16,
                                              batch_norm=True).transform, 2),
}


def _batch(seed, d=4, c=0, n=64):
    rng = np.random.default_rng(seed)
    x = (rng.normal(0, 1.2, (n, d))).astype(np.float32)
    return x, (rng.normal(0, 1, (n, c)).astype(np.float32) if c else None)


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_inverse_of_forward_is_identity(name):
    transform, c = TRANSFORMS[name]()
    _perturb(transform, 11)
    x, ctx = _batch(1, c=c)
    z, ld = transform.forward(x, ctx)
    x_back, ld_inv = transform.inverse(z, ctx)
    np.testing.assert_allclose(np.asarray(x_back), x, rtol=1e-5, atol=1e-5)  # float32 through the whole chain
    np.testing.assert_allclose(np.asarray(ld) + np.asarray(ld_inv), 0.0, atol=5e-4)
    assert np.abs(np.asarray(z) - x).max() > 1e-2  # the transform is not the identity


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_log_det_equals_autodiff_jacobian(name):
    transform, c = TRANSFORMS[name]()
    _perturb(transform, 12)
    x, ctx = _batch(2, c=c, n=16)
    for direction in ("forward", "inverse"):
        xt = tf.constant(x)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(xt)
            out, ld = getattr(transform, direction)(xt, ctx)
            columns = [out[:, j] for j in range(4)]
        # events are independent (inference mode), so d out_j / d x of the batch sum is row j of each Jacobian
        jac = np.stack([tape.gradient(col, xt).numpy() for col in columns], axis=1).astype(np.float64)
        sign, logabs = np.linalg.slogdet(jac)
        assert (sign != 0).all()
        np.testing.assert_allclose(np.asarray(ld), logabs, atol=2e-4, err_msg=direction)


def test_made_is_autoregressive():
    made = _perturb(MADE(5, 3, 32, 2, 0), 3)
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = tf.reshape(made(x), (-1, 5, 3))
    jac = np.abs(tape.batch_jacobian(out, x).numpy()).sum(axis=(0, 2))  # (output feature, input feature)
    assert (jac[np.triu_indices(5)] == 0).all()
    assert (jac[np.tril_indices(5, k=-1)] > 0).all()


def test_lu_linear_identity_init_and_parameter_count():
    lu = LULinear(6)
    x = np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)
    z, ld = lu.forward(x)
    np.testing.assert_allclose(np.asarray(z), x, atol=1e-6)
    np.testing.assert_allclose(np.asarray(ld), 0.0, atol=1e-5)
    assert sum(int(np.prod(v.shape)) for v in lu.trainable_weights) == 6 * 6 + 6


def test_residual_net_matches_nflows_forward():
    """nflows ResidualNet in eval mode, written out in numpy from the layer weights: initial Linear on
    [x, c]; per block BN -> ReLU -> Linear -> BN -> ReLU -> Linear, times sigmoid(Linear(c)), plus the input."""
    net = _perturb(ResidualNet(3, 5, 8, 2, num_blocks=2, batch_norm=True), 9, scale=0.3)
    rng = np.random.default_rng(1)
    for block in net.blocks:
        for bn in block.norms:
            bn.moving_mean.assign(rng.normal(0, 0.5, 8).astype(np.float32))
            bn.moving_variance.assign(rng.uniform(0.5, 2, 8).astype(np.float32))
    x, c = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))

    def dense(layer, t):
        return t @ np.asarray(layer.kernel) + np.asarray(layer.bias)

    def bn(layer, t):
        return ((t - np.asarray(layer.moving_mean)) / np.sqrt(np.asarray(layer.moving_variance) + 1e-3)
                * np.asarray(layer.gamma) + np.asarray(layer.beta))

    t = dense(net.initial, np.concatenate([x, c], axis=1))
    for block in net.blocks:
        u = dense(block.linears[0], np.maximum(bn(block.norms[0], t), 0))
        u = dense(block.linears[1], np.maximum(bn(block.norms[1], u), 0))
        t = t + u / (1 + np.exp(-dense(block.gate, c)))
    expected = dense(net.final, t)
    got = net(x.astype(np.float32), c.astype(np.float32), training=False)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-5)
    assert net.blocks[0].norms[0].momentum == 0.9 and net.blocks[0].norms[0].epsilon == 1e-3


def test_flashsim_parameter_count_equals_nflows_layer_shapes():
    """17 targets, 14 conditioning, 17 steps, ResidualNet(hidden 298, 10 blocks, BN), 128 bins, linear tails."""
    d, c, h, blocks, k = 17, 14, 298, 10, 128
    per_feature = 3 * k - 1                                     # 383: K widths, K heights, K-1 inner slopes
    block = 2 * (2 * h) + 2 * (h * h + h) + (c * h + h)         # 2 BN (gamma, beta), 2 Linear, context gate
    def resnet(n_id, n_tr):
        return (n_id + c) * h + h + blocks * block + h * n_tr * per_feature + n_tr * per_feature
    even = resnet(8, 9)                                         # mask even: the 9 even-indexed features change
    odd = resnet(9, 8)
    lu = d * d + d                                              # LULinear: 2 x 136 triangles + 17 diag + 17 bias
    expected = 9 * even + 8 * odd + 18 * lu
    assert (even, odd, expected) == (2_876_167, 2_761_948, 47_986_595)
    flow = flashsim_flow()
    assert sum(int(np.prod(v.shape)) for v in flow.trainable_weights) == expected
    couplings = [t for t in flow.transform.transforms if isinstance(t, Coupling)]
    assert len(couplings) == 17 and [len(t.transform_index) for t in couplings[:2]] == [9, 8]
    assert couplings[0].transformer.tail_bound == 1.0 and couplings[0].transformer.bins == 128


@pytest.mark.slow
def test_flashsim_flow_samples_and_inverts():
    flow = flashsim_flow()
    _perturb(flow.transform, 0, scale=0.01)
    context = np.random.default_rng(0).normal(size=(64, 14)).astype(np.float32)
    x = flow.sample(64, context=context, seed=0)
    assert x.shape == (64, 17) and np.isfinite(x).all()
    z, logdet = flow.transform.forward(x, context)
    np.testing.assert_allclose(np.asarray(z), flow.base.sample(64, seed=0), rtol=1e-4, atol=1e-4)
    assert np.isfinite(np.asarray(logdet)).all()


# ---- flows fitted to known densities -------------------------------------------------------------------------------
def test_flow_fits_correlated_gaussian_to_analytic_nll():
    keras.utils.set_random_seed(0)
    cov = np.array([[1.0, 0.8 * 0.5], [0.8 * 0.5, 0.25]])
    rng = np.random.default_rng(0)
    chol = np.linalg.cholesky(cov)
    train_x = (rng.normal(size=(40_000, 2)) @ chol.T + [0.5, -1.0]).astype(np.float32)
    test_x = rng.normal(size=(40_000, 2)) @ chol.T + [0.5, -1.0]
    flow = spline_flow(2, steps=2, bins=8, tail_bound=4.0, hidden_features=32, num_blocks=1)
    flow.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(5e-3, 400)))
    data = tf.data.Dataset.from_tensor_slices(train_x).shuffle(40_000, seed=0).repeat().batch(256)
    flow.fit(data, steps_per_epoch=400, epochs=1, verbose=0, shuffle=False)
    centred = test_x - [0.5, -1.0]
    true_nll = 0.5 * np.einsum("ij,jk,ik->i", centred, np.linalg.inv(cov), centred) + 0.5 * np.log(
        np.linalg.det(2 * np.pi * cov))
    flow_nll = -np.asarray(flow.log_prob(test_x))
    assert abs(flow_nll.mean() - true_nll.mean()) < 0.02, (flow_nll.mean(), true_nll.mean())


def test_conditional_flow_learns_gaussian_with_mean_2c_and_width_half():
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    c = rng.uniform(0, 2, (40_000, 1))
    x = 2 * c + 0.5 * rng.normal(size=c.shape)
    x_pipe, c_pipe = pp.Pipeline([pp.Standardise()]).fit(x), pp.Pipeline([pp.Standardise()]).fit(c)
    flow = spline_flow(1, context_dim=1, steps=2, bins=8, tail_bound=4.0, hidden_features=32, num_blocks=1,
                       preprocessing=x_pipe, context_preprocessing=c_pipe)
    flow.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(5e-3, 800)))
    data = tf.data.Dataset.from_tensor_slices((x_pipe.transform(x).astype(np.float32),
                                               c_pipe.transform(c).astype(np.float32)))
    flow.fit(data.shuffle(40_000, seed=1).repeat().batch(256), steps_per_epoch=800, epochs=1, verbose=0,
             shuffle=False)
    for value in (0.5, 1.0, 1.5):
        s = flow.sample(20_000, context=np.full((20_000, 1), value), seed=2)[:, 0]
        assert abs(s.mean() - 2 * value) < 0.05 * 2 * value, (value, s.mean())
        assert abs(s.std() - 0.5) < 0.05 * 0.5, (value, s.std())


@pytest.mark.slow
@pytest.mark.parametrize("builder", ["maf", "cinn"])
def test_other_flows_fit_correlated_gaussian(builder):
    keras.utils.set_random_seed(0)
    cov = np.array([[1.0, 0.6], [0.6, 1.0]])
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(40_000, 2)) @ np.linalg.cholesky(cov).T).astype(np.float32)
    flow = maf(2, steps=2, hidden_features=32) if builder == "maf" else cinn(2, blocks=4, hidden_features=32)
    flow.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(3e-3, 3000)))
    flow.fit(tf.data.Dataset.from_tensor_slices(x).shuffle(40_000).repeat().batch(512), steps_per_epoch=1000,
             epochs=3, verbose=0, shuffle=False)
    test = rng.normal(size=(40_000, 2)) @ np.linalg.cholesky(cov).T
    true_nll = 0.5 * np.einsum("ij,jk,ik->i", test, np.linalg.inv(cov), test) + 0.5 * np.log(
        np.linalg.det(2 * np.pi * cov))
    assert abs(-flow.log_prob_numpy(test).mean() - true_nll.mean()) < 0.02


# ---- training data conventions ------------------------------------------------------------------------------------
def _small_flow(context_dim=1, d=2, **kwargs):
    return spline_flow(d, context_dim, steps=1, bins=4, tail_bound=3.0, hidden_features=8, num_blocks=1, **kwargs)


def test_weighted_loss_is_keras_sample_weight_mean_and_context_is_checked():
    keras.utils.set_random_seed(0)
    flow = _small_flow(context_dim=1)
    flow.compile()
    rng = np.random.default_rng(0)
    x, c, w = (rng.normal(size=(32, 2)).astype(np.float32), rng.normal(size=(32, 1)).astype(np.float32),
               rng.uniform(0, 2, 32).astype(np.float32))
    nll = -np.asarray(flow.log_prob(x, c))
    np.testing.assert_allclose(float(flow._loss((x, c, w), training=False)), np.mean(w * nll), rtol=1e-5)
    np.testing.assert_allclose(float(flow._loss((x, c), training=False)), np.mean(nll), rtol=1e-5)
    with pytest.raises(ValueError, match="conditional"):
        flow.log_prob(x)
    uncond = _small_flow(context_dim=0)
    uncond.compile()
    with pytest.raises(ValueError, match="unconditional"):
        uncond.log_prob(x, c)
    nll0 = -np.asarray(uncond.log_prob(x))
    np.testing.assert_allclose(float(uncond._loss((x, None, w), training=False)), np.mean(w * nll0), rtol=1e-5)
    no_context = np.zeros((32, 0), np.float32)
    np.testing.assert_allclose(float(uncond._loss((x, no_context, w), training=False)), np.mean(w * nll0), rtol=1e-5)
    with pytest.raises(ValueError, match="2 features"):
        flow.log_prob(x, np.zeros((32, 2), np.float32))
    # Keras drops sample_weight without y; Flow.fit keeps it (all-zero weights leave the loss at 0)
    history = uncond.fit(x, sample_weight=np.zeros(32, np.float32), batch_size=16, epochs=1, verbose=0,
                         shuffle=False)
    assert history.history["nll"] == [0.0] and uncond.step == 2


# ---- the model contract ------------------------------------------------------------------------------------------
def _conditional_data(n=512, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.uniform(0, 2, (n, 1))
    x = np.concatenate([2 * c, c ** 2], axis=1) + rng.normal(size=(n, 2))
    return x, c


def test_checkpoint_round_trip_restores_state_and_density(tmp_path):
    x, c = _conditional_data()
    keras.utils.set_random_seed(0)
    flow = _small_flow(batch_norm=True)
    flow.compile()
    flow.fit(x.astype(np.float32), c.astype(np.float32), batch_size=64, epochs=1, verbose=0, shuffle=False)
    path = flow.save_checkpoint(tmp_path / "ckpt-000000008.npz")
    keras.utils.set_random_seed(123)  # other initial weights and permutations
    other = _small_flow(batch_norm=True)
    other.compile()
    assert other.load_checkpoint(path) == flow.step == 8
    for a, b in zip(flow.state_variables(), other.state_variables()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(np.asarray(other.log_prob(x, c)), np.asarray(flow.log_prob(x, c)), rtol=1e-6)
    np.testing.assert_array_equal(other.sample(50, context=c[:50], seed=4), flow.sample(50, context=c[:50], seed=4))
    with pytest.raises(ValueError, match="variables"):
        bigger = _small_flow(d=3)
        bigger.compile()
        bigger.load_checkpoint(path)


def test_training_resumes_through_run_folder(tmp_path):
    x, c = _conditional_data()
    run = Run(tmp_path / "run")
    run.start({"model": "flow", "steps": 12})

    def build():
        flow = _small_flow(batch_norm=True)
        flow.compile(keras.optimizers.Adam(1e-3))
        return flow

    first = train(build, (x, c), run, steps=6, batch_size=64, seed=0, checkpoint_every=3, verbose=0)
    assert (first.start_step, first.final_step) == (0, 6)
    weights = [np.asarray(v) for v in first.model.state_variables()]
    second = train(build, (x, c), run, steps=12, batch_size=64, seed=0, checkpoint_every=3, verbose=0)
    assert (second.start_step, second.final_step) == (6, 12)
    assert json.loads((run / Run.RESULTS).read_text())["trained_steps"] == 12
    fresh = build()
    assert run.restore(fresh, prefer_best=False) == 12
    restored = [np.asarray(v) for v in fresh.state_variables()]
    assert any(not np.array_equal(a, b) for a, b in zip(weights, restored))
    assert all(np.isfinite(v).all() for v in restored)


def test_export_and_load_sampler_give_the_same_physical_samples(tmp_path):
    x, c = _conditional_data()
    x_pipe = pp.Pipeline([pp.Standardise()]).fit(x)
    c_pipe = pp.Pipeline([pp.Standardise()]).fit(c)
    keras.utils.set_random_seed(0)
    flow = _small_flow(batch_norm=True, preprocessing=x_pipe, context_preprocessing=c_pipe)
    flow.compile()
    flow.fit(x_pipe.transform(x).astype(np.float32), c_pipe.transform(c).astype(np.float32), batch_size=64,
             epochs=1, verbose=0, shuffle=False)
    path = flow.export(tmp_path / "model.keras")
    sampler = load_sampler(path)
    assert isinstance(sampler, FlowSampler)
    context = np.linspace(0, 2, 200)[:, None]
    expected = flow.sample(200, context=context, seed=5)
    np.testing.assert_allclose(sampler.sample(200, context=context, seed=5), expected, rtol=1e-6, atol=1e-6)
    assert abs(expected[:, 0].mean() - x[:, 0].mean()) < 2.0  # physical units, not the standardised space
    xs, cs = x_pipe.transform(x[:50]), c_pipe.transform(c[:50])
    np.testing.assert_allclose(sampler.log_prob_numpy(xs, cs), flow.log_prob_numpy(xs, cs), rtol=1e-6)
    with pytest.raises(ValueError, match="conditional"):
        sampler.sample(3)


def test_unconditional_maf_and_cinn_export(tmp_path):
    for i, flow in enumerate([maf(3, steps=1, hidden_features=8), cinn(3, blocks=1, hidden_features=8)]):
        _perturb(flow.transform, i)
        path = flow.export(tmp_path / f"m{i}.keras")
        np.testing.assert_allclose(load_sampler(path).sample(20, seed=1), flow.sample(20, seed=1), atol=1e-6)


def test_transforms_reject_bad_configuration():
    with pytest.raises(ValueError, match="transforms no feature"):
        Coupling([0, 0], lambda i, o: MLP(i, o), RationalQuadraticSpline())
    with pytest.raises(ValueError, match="out_features"):
        Coupling([1, 0], MLP(1, 5), RationalQuadraticSpline(bins=4))
    with pytest.raises(ValueError, match="bins"):
        RationalQuadraticSpline(bins=2000)
    with pytest.raises(ValueError, match="permutation"):
        RandomPermutation(permutation=[0, 0, 1])
    with pytest.raises(ValueError, match="different dimensions"):
        Chain([LULinear(2), LULinear(3)])
    with pytest.raises(ValueError, match="context"):
        spline_flow(1, 0)


# ---- preprocessing for flows -------------------------------------------------------------------------------------
@pytest.fixture
def flow_transforms_registered():
    """The flow transforms register themselves in gan4hep.preprocessing when a state names them."""


def test_flow_transforms_load_from_json_without_registration(tmp_path):
    x = np.stack([np.arange(100) % 3, np.linspace(0.1, 0.9, 100)], axis=1)
    pipe = pp.Pipeline([Dequantise("uniform", seed=1, columns=[0]), Logit(columns=[1])]).fit(x)
    pipe.save(tmp_path / "p.json")
    back = pp.load(tmp_path / "p.json")
    assert [type(s).__name__ for s in back.steps] == ["Dequantise", "Logit"]
    t = back.transform(x)  # the dequantisation noise is drawn afresh; the logit column is deterministic
    np.testing.assert_allclose(t[:, 1], pipe.transform(x)[:, 1])
    np.testing.assert_allclose(back.inverse_transform(t), x)


@pytest.mark.parametrize("kind,width", [("uniform", 1.0), ("gaussian", 0.1), ("gaussian", 0.4)])
def test_dequantise_round_trips_exactly_and_spreads_values(kind, width, flow_transforms_registered, tmp_path):
    rng = np.random.default_rng(0)
    x = np.stack([rng.choice([0, 2, 6], 5000), rng.normal(size=5000), rng.integers(0, 40, 5000)], axis=1)
    pipe = pp.Pipeline([Dequantise(kind, width, seed=1, columns=["jetId", "nConstituents"])],
                       names=["jetId", "pt", "nConstituents"]).fit(x)
    t = pipe.transform(x)
    noise = t[:, [0, 2]] - x[:, [0, 2]]
    assert np.abs(noise).max() < 0.5 and noise.std() > 0.2 * width
    assert len(np.unique(t[:, 2])) > 4000
    np.testing.assert_array_equal(t[:, 1], x[:, 1])
    np.testing.assert_array_equal(pipe.inverse_transform(t), x)
    loaded = pp.load(pipe.save(tmp_path / "p.json"))
    np.testing.assert_array_equal(loaded.inverse_transform(t), x)
    with pytest.raises(ValueError, match="not integer-valued"):
        Dequantise(columns=[1]).fit(x)


def test_logit_and_clip(flow_transforms_registered, tmp_path):
    rng = np.random.default_rng(0)
    x = np.stack([rng.uniform(0, 1, 1000), rng.exponential(2, 1000)], axis=1)
    x[0, 0] = 0.0
    with pytest.raises(ValueError, match="column 0"):
        Logit(columns=[0]).fit(x)
    pipe = pp.Pipeline([Logit(alpha=1e-6, columns=[0]), Clip(0.0, 3.0, columns=[1])]).fit(x)
    t = pipe.transform(x)
    assert np.isfinite(t).all() and t[:, 1].max() == 3.0
    back = pipe.inverse_transform(t)
    np.testing.assert_allclose(back[:, 0], x[:, 0], atol=1e-12)
    np.testing.assert_array_equal(back[:, 1], np.minimum(x[:, 1], 3.0))
    clip = pipe.steps[1]
    np.testing.assert_allclose(clip.clipped_fraction_, [(x[:, 1] > 3).mean()])
    loaded = pp.load(pipe.save(tmp_path / "p.json"))
    np.testing.assert_allclose(loaded.transform(x), t)
    with pytest.raises(ValueError, match="high > low"):
        Logit(1.0, 0.0)
