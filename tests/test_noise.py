import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import keras
from gan4hep.noise import (NormalNoise, NormalToUniformNoise, SkewNormalNoise, UniformNoise, get_noise,
                           serialize)

N = 200_000


def _tf_draw(noise, n, dim):
    """Draw through a compiled function with a symbolic batch size, as train_step does."""
    @tf.function
    def draw(x):
        return noise.tf_sample(tf.shape(x)[0], dim)

    return draw(tf.zeros((n, 1))).numpy()


def _check_moments(x, mean, std, skew):
    n = x.size
    assert abs(x.mean() - mean) < 5 * std / np.sqrt(n)
    assert abs(x.std() - std) < 5 * std * np.sqrt(2.0 / n) * 2  # loose: non-normal kurtosis
    assert abs(stats.skew(x) - skew) < 5 * np.sqrt(6.0 / n) * 2


@pytest.mark.parametrize("alpha", [5.0, 0.0, -2.0])
@pytest.mark.parametrize("path", ["numpy", "tf"])
def test_skewnormal_moments_match_scipy(alpha, path):
    noise = SkewNormalNoise(alpha, seed=1)
    x = noise.sample(N // 4, 4, seed=1) if path == "numpy" else _tf_draw(noise, N // 4, 4)
    assert x.dtype == np.float32 and x.shape == (N // 4, 4)
    ref = stats.skewnorm(alpha)
    m, v, s = (float(q) for q in ref.stats(moments="mvs"))
    _check_moments(x.ravel().astype(float), m, np.sqrt(v), s)
    # whole shape, not only moments
    assert stats.kstest(x.ravel()[:50_000], ref.cdf).pvalue > 1e-4


@pytest.mark.parametrize("path", ["numpy", "tf"])
def test_normal_moments(path):
    noise = NormalNoise(seed=2)
    x = noise.sample(N, 1, seed=2) if path == "numpy" else _tf_draw(noise, N, 1)
    _check_moments(x.ravel().astype(float), 0.0, 1.0, 0.0)


@pytest.mark.parametrize("cls", [UniformNoise, NormalToUniformNoise])
@pytest.mark.parametrize("path", ["numpy", "tf"])
def test_unit_uniform_in_range_and_flat(cls, path):
    noise = cls(seed=3)
    x = noise.sample(N, 2, seed=3) if path == "numpy" else _tf_draw(noise, N, 2)
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert stats.kstest(x.ravel()[:50_000], "uniform").pvalue > 1e-4


@pytest.mark.parametrize("path", ["numpy", "tf"])
def test_uniform_custom_range(path):
    noise = UniformNoise(-2.0, 3.0, seed=4)
    x = noise.sample(N, 1, seed=4) if path == "numpy" else _tf_draw(noise, N, 1)
    assert x.min() >= -2.0 and x.max() < 3.0
    assert x.min() < -1.99 and x.max() > 2.99
    assert abs(x.mean() - 0.5) < 0.02


@pytest.mark.parametrize("name", ["normal", "uniform", "skewnormal", "normal_to_uniform"])
def test_seeds_reproducible(name):
    noise = get_noise(name)
    a, b, c = noise.sample(100, 3, seed=7), noise.sample(100, 3, seed=7), noise.sample(100, 3, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)

    t1 = get_noise(name, seed=11)
    t2 = get_noise(name, seed=11)
    first = np.asarray(t1((50, 3)))
    np.testing.assert_array_equal(first, np.asarray(t2((50, 3))))
    assert not np.array_equal(first, np.asarray(t1((50, 3))))  # the generator advances


def test_tf_path_fresh_noise_each_compiled_call():
    noise = SkewNormalNoise(5.0, seed=5)

    @tf.function(jit_compile=True)
    def draw():
        return noise((8, 4))

    a, b = draw().numpy(), draw().numpy()
    assert a.shape == (8, 4) and not np.array_equal(a, b)


def test_usable_inside_keras_train_step():
    noise = get_noise("normal", seed=0)

    class Toy(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)
            self.draws = []

        def train_step(self, data):
            z = noise.tf_sample(tf.shape(data)[0], 3)
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(self.dense(z)))
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            return {"loss": loss, "zsum": tf.reduce_sum(z)}

    model = Toy()
    model.compile(optimizer="sgd")
    hist = model.fit(np.zeros((64, 1), "float32"), batch_size=16, epochs=2, verbose=0)
    zsum = hist.history["zsum"]
    assert len(set(np.round(zsum, 6))) == 2 and all(np.isfinite(zsum))


@pytest.mark.parametrize("noise", [NormalNoise(seed=1), UniformNoise(-1, 2), SkewNormalNoise(3.0),
                                   NormalToUniformNoise(seed=9)])
def test_config_round_trip(noise):
    clone = type(noise).from_config(noise.get_config())
    assert clone.get_config() == noise.get_config()
    again = get_noise(serialize(noise))
    assert type(again) is type(noise) and again.get_config() == noise.get_config()
    np.testing.assert_array_equal(again.sample(10, 2, seed=0), noise.sample(10, 2, seed=0))


def test_factory_errors():
    with pytest.raises(ValueError, match="unknown noise"):
        get_noise("cauchy")
    with pytest.raises(ValueError, match="high > low"):
        UniformNoise(1, 1)
    with pytest.raises(ValueError, match="dim"):
        NormalNoise().sample(10, 0)
    inst = NormalNoise()
    assert get_noise(inst) is inst
    assert isinstance(get_noise("gaussian"), NormalNoise)
