"""GAN model: conditioning, preprocessing in sample, EMA, export with preprocessing, tf.distribute."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan4hep.layers import TrainableSwish
from gan4hep.models import GAN, load_sampler
from gan4hep.models.base import custom_modules
from gan4hep.networks import mlp
from gan4hep.preprocessing import MinMax, Pipeline


def test_conditional_gan_learns_condition_dependent_mean():
    """x ~ N(c, 0.1) with c ~ U[0, 1]: generated means at c = 0.2 and 0.8 follow the condition.

    The raw BCE generator's conditional mean wanders by ~0.1 from step to step (seeds 0-2 at 2048 steps: 0.10-0.18
    at c = 0.2); the EMA of its weights (decay 0.99) is within 0.01 of the truth for all three seeds.
    """
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    c = rng.uniform(0, 1, (256 * 32, 1)).astype("float32")
    x = (c + 0.1 * rng.standard_normal(c.shape)).astype("float32")
    model = GAN(mlp(5, [32, 32], 1, "leaky_relu"), mlp(2, [32, 32], 1, "leaky_relu"), 4, objective="bce",
                context_dim=1, ema_decay=0.99)
    model.compile(keras.optimizers.Adam(1e-3, 0.5, 0.9), keras.optimizers.Adam(1e-3, 0.5, 0.9))

    def means():
        return [float(model.sample(5000, context=np.full((5000, 1), v), seed=1).mean()) for v in (0.2, 0.8)]

    untrained = means()
    assert abs(untrained[1] - untrained[0] - 0.6) > 0.2
    model.fit((x, c), batch_size=256, epochs=64, verbose=0)  # also fit(x, c) and tf.data (x, c) pairs
    assert model.step == 2048
    m02, m08 = means()
    assert m02 == pytest.approx(0.2, abs=0.04)
    assert m08 == pytest.approx(0.8, abs=0.04)
    with pytest.raises(ValueError, match="conditional"):
        model.sample(10)


def test_generate_in_physical_units():
    keras.utils.set_random_seed(1)
    phys = np.random.default_rng(1).uniform([100, -3], [200, 3], (500, 2))
    prep = Pipeline([MinMax(0, 1)], names=["m", "eta"]).fit(phys)
    model = GAN(mlp(3, [8], 2, output_activation="sigmoid"), mlp(2, [8], 1), 3, preprocessing=prep)
    scaled = model.sample(1000, seed=4, physical=False)
    physical = model.sample(1000, seed=4)
    assert scaled.min() >= 0 and scaled.max() <= 1
    np.testing.assert_allclose(physical, prep.inverse_transform(scaled), rtol=1e-6)
    assert 100 <= physical[:, 0].min() and physical[:, 0].max() <= 200 and physical[:, 0].std() > 1
    cprep = Pipeline([MinMax(0, 1)]).fit(np.array([[10.0], [20.0]]))
    cmodel = GAN(mlp(4, [8], 2), mlp(3, [8], 1), 3, context_dim=1, context_preprocessing=cprep)
    # conditions are given in physical units and scaled before they reach the generator
    a = cmodel.sample(5, context=np.full((5, 1), 20.0), seed=0)
    z = cmodel.noise.sample(5, 3, seed=0)
    np.testing.assert_allclose(a, cmodel.generator(np.concatenate([z, np.ones((5, 1), "float32")], 1)), rtol=1e-5)


def test_ema_after_one_step_equals_hand_computation():
    keras.utils.set_random_seed(2)
    model = GAN(mlp(3, [8], 2), mlp(2, [8], 1), 3, objective="bce", ema_decay=0.9)
    model.compile(keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2))
    w0 = model.generator.get_weights()
    model.fit(np.random.default_rng(0).normal(size=(32, 2)).astype("float32"), batch_size=32, epochs=1, verbose=0)
    w1 = model.generator.get_weights()
    ema = model.ema_generator.get_weights()
    for a, b, e in zip(w0, w1, ema):
        assert not np.allclose(a, b)
        np.testing.assert_allclose(e, 0.9 * a + 0.1 * b, rtol=1e-5, atol=1e-7)
        assert not np.allclose(e, b)
    assert not np.allclose(model.sample(4, seed=0), model.sample(4, seed=0, use_ema=False))


def test_export_carries_preprocessing_and_trainable_swish(tmp_path):
    """The exported .keras file alone emits physical units: same events as the model for the same seed."""
    keras.utils.set_random_seed(3)
    gen = mlp(4, [8, 8], 3, "trainable_swish", output_activation="sigmoid")
    swish = [layer for layer in gen.layers if isinstance(layer, TrainableSwish)]
    assert swish
    for layer in swish:  # move beta off its initial value so a lost beta would show
        layer.set_weights([w + 0.7 for w in layer.get_weights()])
    phys = np.random.default_rng(0).uniform([100, -3, 0], [200, 3, 50], (200, 3))
    prep = Pipeline([MinMax(0, 1)], names=["pt", "eta", "m"]).fit(phys)
    model = GAN(gen, mlp(3, [8], 1), 4, noise="uniform", preprocessing=prep)
    path = model.export(tmp_path / "g.keras")
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically, nothing left behind
    loaded = load_sampler(path)
    np.testing.assert_allclose(loaded.sample(64, seed=5), model.sample(64, seed=5), rtol=1e-6)
    assert loaded.sample(64, seed=5)[:, 0].min() >= 100  # physical units, not the [0, 1] network output
    assert any(isinstance(layer, TrainableSwish) for layer in loaded.network.layers)
    assert "gan4hep.layers" in custom_modules(path)  # imported by load_sampler before deserialising
    cprep = Pipeline([MinMax(0, 1)]).fit(np.array([[10.0], [20.0]]))
    cmodel = GAN(mlp(5, [8], 3), mlp(4, [8], 1), 4, context_dim=1, context_preprocessing=cprep, preprocessing=prep)
    cloaded = load_sampler(cmodel.export(tmp_path / "c.keras"))
    ctx = np.linspace(10, 20, 32)[:, None]
    np.testing.assert_allclose(cloaded.sample(32, context=ctx, seed=1), cmodel.sample(32, context=ctx, seed=1),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="conditional"):
        cloaded.sample(4)
    with pytest.raises(FileNotFoundError, match="no exported model"):
        load_sampler(tmp_path / "missing.keras")



def test_xla_sampling_gives_the_plain_events_and_few_shapes(tmp_path):
    """``sample(..., jit_compile=True)``: the same events as the plain call (up to float rounding) for a draw that
    is not a multiple of the batch (the last batch padded), conditional or not, from the model and its export;
    padded shapes are powers of two from ``XLA_MIN_ROWS`` up to the batch size."""
    from gan4hep.models import gan as gan_module

    keras.utils.set_random_seed(2)
    model = GAN(mlp(5, [16, 16], 3, "trainable_swish"), mlp(3, [8], 1), 5)
    plain = model.sample(2500, seed=3, batch_size=2048)
    np.testing.assert_allclose(model.sample(2500, seed=3, batch_size=2048, jit_compile=True), plain,
                               rtol=1e-5, atol=1e-6)
    loaded = load_sampler(model.export(tmp_path / "g.keras"))
    np.testing.assert_allclose(loaded.sample(2500, seed=3, batch_size=2048, jit_compile=True), plain,
                               rtol=1e-5, atol=1e-6)
    cmodel = GAN(mlp(6, [8], 2), mlp(3, [8], 1), 5, context_dim=1)
    ctx = np.linspace(0, 1, 700)[:, None]
    np.testing.assert_allclose(cmodel.sample(700, context=ctx, seed=1, jit_compile=True),
                               cmodel.sample(700, context=ctx, seed=1), rtol=1e-5, atol=1e-6)
    assert [gan_module._xla_rows(r, 65536) for r in (1, 700, 1024, 1025, 40000, 65536)] == \
        [1024, 1024, 1024, 2048, 65536, 65536]
    assert gan_module._xla_rows(300, 512) == 512


def test_wrong_shapes_are_reported():
    with pytest.raises(ValueError, match="generator takes 4 inputs"):
        GAN(mlp(4, [8], 2), mlp(2, [8], 1), latent_dim=3)
    with pytest.raises(ValueError, match="critic takes 3 inputs"):
        GAN(mlp(3, [8], 2), mlp(3, [8], 1), latent_dim=3)


def test_default_strategy_scope():
    keras.utils.set_random_seed(4)
    with tf.distribute.get_strategy().scope():
        model = GAN(mlp(3, [8], 2), mlp(2, [8], 1), 3, n_critic=2)
        model.compile()
    hist = model.fit(np.random.default_rng(0).normal(size=(64, 2)).astype("float32"), batch_size=16, epochs=1,
                     verbose=0)
    assert model.step == 4
    assert set(hist.history) == {"d_loss", "g_loss", "gp"}
    assert all(np.isfinite(v[-1]) for v in hist.history.values())


MIRRORED = textwrap.dedent("""
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from gan4hep.models import GAN
    from gan4hep.networks import mlp
    from gan4hep.objectives import WassersteinClip
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = GAN(mlp(3, [8], 2), mlp(2, [8], 1), 3, objective=WassersteinClip(0.05), n_critic=2, ema_decay=0.9)
        model.compile()
    x = np.random.default_rng(0).normal(size=(128, 2)).astype("float32")
    hist = model.fit(x, batch_size=32, epochs=2, verbose=0)
    clipped = max(float(np.abs(w).max()) for w in model.critic.get_weights())
    print("RESULT", strategy.num_replicas_in_sync, model.step, clipped,
          all(np.isfinite(v[-1]) for v in hist.history.values()))
""")


def test_mirrored_strategy_two_cpus():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    res = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, env=env, timeout=300)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT")]
    assert line, res.stderr[-3000:]
    _, replicas, step, clipped, finite = line[0].split()
    assert (replicas, step, finite) == ("2", "8", "True")
    assert float(clipped) <= 0.05 + 1e-7


def _identity_gan(latent_dim=2, context_dim=0, **kwargs):
    """A GAN whose generator returns its normal noise (plus the context on the first column): known output."""
    gen = mlp(latent_dim + context_dim, [], latent_dim)
    kernel = np.vstack([np.eye(latent_dim), np.eye(context_dim, latent_dim)]).astype("float32")
    gen.set_weights([kernel, np.zeros(latent_dim, "float32")])
    return GAN(gen, mlp(latent_dim + context_dim, [4], 1), latent_dim, context_dim=context_dim, **kwargs)


def test_support_redraws_the_events_outside_it(tmp_path):
    """With a support box, ``sample`` returns the model's density restricted to the box: for normal noise through
    an identity generator, truncated normals (scipy.stats.truncnorm, independent); reproducible for a seed; kept by
    ``export``; per context row for a conditional model; an unreachable box is an error, not a hang."""
    from scipy import stats

    low, high = np.array([-1.0, -0.5]), np.array([1.0, 2.0])
    model = _identity_gan(support=(low, high))
    x = model.sample(20000, seed=3)
    assert x.shape == (20000, 2) and np.all((x >= low) & (x <= high))
    for j in range(2):
        assert stats.kstest(x[:, j], stats.truncnorm(low[j], high[j]).cdf).pvalue > 1e-3
    np.testing.assert_array_equal(model.sample(500, seed=4), model.sample(500, seed=4))
    assert not np.array_equal(model.sample(500, seed=4), model.sample(500, seed=5))
    loaded = load_sampler(model.export(tmp_path / "s.keras"))
    np.testing.assert_allclose(loaded.support, (low, high))
    np.testing.assert_allclose(loaded.sample(500, seed=4), model.sample(500, seed=4), rtol=1e-6)
    # conditional: a rejected row is redrawn with its own context (x0 = z0 + c, support x0 >= 0)
    cmodel = _identity_gan(context_dim=1, support=([0.0, -np.inf], [np.inf, np.inf]))
    ctx = np.repeat([[-2.0], [2.0]], 5000, axis=0)
    y = cmodel.sample(10000, context=ctx, seed=1)
    assert np.all(y[:, 0] >= 0)
    for c, rows in ((-2.0, slice(0, 5000)), (2.0, slice(5000, None))):
        assert y[rows, 0].mean() == pytest.approx(stats.truncnorm(-c, np.inf, loc=c).mean(), abs=0.05)
    with pytest.raises(RuntimeError, match="outside the support"):
        _identity_gan(support=([50.0, 50.0], [51.0, 51.0])).sample(10, seed=0)
    with pytest.raises(ValueError, match="low <= high"):
        _identity_gan(support=([1.0, 0.0], [0.0, 1.0]))
