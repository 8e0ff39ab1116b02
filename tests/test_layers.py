import numpy as np
import pytest

import keras
import tensorflow as tf

from gan4hep.layers import CircleDense, TrainableSwish


def _np_swish(x, beta):
    return x / (1.0 + np.exp(-beta * x))


@pytest.mark.parametrize("per_unit", [True, False])
def test_swish_matches_numpy_default_and_set_beta(per_unit):
    rng = np.random.default_rng(0)
    x = rng.normal(scale=3.0, size=(64, 5)).astype("float32")
    layer = TrainableSwish(per_unit=per_unit)
    np.testing.assert_allclose(np.asarray(layer(x)), _np_swish(x, 1.0), rtol=1e-5, atol=1e-6)
    assert tuple(layer.beta.shape) == ((5,) if per_unit else ())

    beta = np.array([0.1, 0.5, 2.0, 7.0, -1.0], "float32") if per_unit else np.float32(2.5)
    layer.beta.assign(beta)
    np.testing.assert_allclose(np.asarray(layer(x)), _np_swish(x, beta), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("per_unit", [True, False])
def test_swish_gradient_reaches_beta(per_unit):
    x = tf.constant(np.random.default_rng(1).normal(size=(32, 4)).astype("float32"))
    layer = TrainableSwish(per_unit=per_unit)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(x))
    (g,) = tape.gradient(y, [layer.beta])
    assert g is not None
    # d/dbeta [x sigmoid(beta x)] = x^2 s (1 - s) at beta = 1
    s = 1.0 / (1.0 + np.exp(-x.numpy()))
    expected = (x.numpy() ** 2 * s * (1 - s)).sum(axis=0)
    np.testing.assert_allclose(g.numpy(), expected if per_unit else expected.sum(), rtol=1e-4)
    assert layer.beta in layer.trainable_weights


def _np_circle(x, theta, phi):
    z = x @ np.exp(1j * theta) + np.exp(1j * phi)
    return np.abs(z)


def test_circle_dense_matches_complex_numpy():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 6)).astype("float32")
    layer = CircleDense(4)
    out = np.asarray(layer(x))
    theta, phi = layer.theta.numpy().astype(float), layer.phi.numpy().astype(float)
    assert theta.shape == (6, 4) and phi.shape == (4,)
    assert np.all(theta >= -np.pi) and np.all(theta < np.pi) and np.ptp(theta) > 1.0
    np.testing.assert_allclose(out, _np_circle(x.astype(float), theta, phi), rtol=1e-5, atol=1e-5)

    relu_layer = CircleDense(4, activation="tanh")
    out = np.asarray(relu_layer(x))
    ref = np.tanh(_np_circle(x.astype(float), relu_layer.theta.numpy(), relu_layer.phi.numpy()))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_circle_dense_gradient_finite_at_zero_modulus():
    # x = 0 and phi chosen so that the bias is e^{i phi}; force re = im = 0 with a cancelling pair of inputs.
    layer = CircleDense(1, theta_initializer=keras.initializers.Constant(0.0),
                        phi_initializer=keras.initializers.Constant(np.pi))
    x = tf.constant([[1.0]])  # 1 * e^{0} + e^{i pi} = 0
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(x))
    grads = tape.gradient(y, layer.trainable_weights)
    assert float(y) == pytest.approx(0.0, abs=1e-5)
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


def test_circle_stack_lipschitz_bound():
    """For one CircleDense layer with unit-modulus complex weights W (out x in) and bias b:

        | |Wx+b| - |Wy+b| |_2 <= |W(x-y)|_2 <= ||W||_2 |x-y|_2 <= ||W||_F |x-y|_2 = sqrt(in*out) |x-y|_2

    (reverse triangle inequality per output, then the operator norm, then Frobenius with |w_nm| = 1; the eps
    under the square root only shrinks differences). ReLU is 1-Lipschitz, so the stack CircleDense(16, relu) ->
    CircleDense(1) has L = prod over layers of sqrt(in*out); we also check the tighter product of the actual
    spectral norms of exp(i theta).
    """
    in_dim = 5
    model = keras.Sequential([keras.Input((in_dim,)), CircleDense(16, activation="relu"), CircleDense(1)])
    L_frob, L_spec = 1.0, 1.0
    for layer in model.layers:
        w = np.exp(1j * layer.theta.numpy().astype(float))
        L_frob *= np.sqrt(w.shape[0] * w.shape[1])
        L_spec *= np.linalg.norm(w, 2)
    assert L_spec <= L_frob + 1e-9

    rng = np.random.default_rng(3)
    n = 20000
    x = rng.normal(size=(n, in_dim))
    # mix far-apart and very close pairs
    y = x + rng.normal(size=(n, in_dim)) * rng.choice([1e-3, 0.1, 1.0, 10.0], size=(n, 1))
    fx = np.asarray(model(x.astype("float32")), dtype=float)[:, 0]
    fy = np.asarray(model(y.astype("float32")), dtype=float)[:, 0]
    d_out = np.abs(fx - fy)
    d_in = np.linalg.norm(x - y, axis=1)
    tol = 1e-4 * (1 + np.abs(fx))  # float32 rounding of the forward pass
    assert np.all(d_out <= L_spec * d_in + tol)
    assert np.all(d_out <= L_frob * d_in + tol)
    assert np.max(d_out / d_in) > 0.01 * L_spec  # non-trivial function, bound not vacuous


@pytest.mark.parametrize("make_layer", [
    lambda: TrainableSwish(per_unit=True),
    lambda: TrainableSwish(per_unit=False),
    lambda: CircleDense(3, activation="relu"),
])
def test_save_load_round_trip(tmp_path, make_layer):
    layer = make_layer()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), layer, keras.layers.Dense(2)])
    if isinstance(layer, TrainableSwish):
        layer.beta.assign(np.linspace(0.3, 2.0, 4).astype("float32") if layer.per_unit else np.float32(1.7))
    x = np.random.default_rng(4).normal(size=(16, 4)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.layers[1]) is type(layer)
    assert loaded.layers[1].get_config() == layer.get_config()
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))


def test_circle_dense_rejects_bad_units():
    with pytest.raises(ValueError, match="units"):
        CircleDense(0)
