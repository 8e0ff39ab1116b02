"""gan4hep.models.vae: loss terms against hand computation, prior and buffer sampling, training, export."""

import keras
import numpy as np
import pytest

from gan4hep.models import load_sampler
from gan4hep.models.vae import VAE, vae_loss_terms
from gan4hep.preprocessing import Pipeline, Standardise


def _linear_vae(d=3, latent=2, beta=0.5, smearing=0.1):
    """Encoder and decoder one Dense layer each, with weights set by hand."""
    enc = keras.Sequential([keras.Input((d,)), keras.layers.Dense(2 * latent)])
    dec = keras.Sequential([keras.Input((latent,)), keras.layers.Dense(d)])
    rng = np.random.default_rng(0)
    w_e, b_e = rng.normal(0, 0.5, (d, 2 * latent)), rng.normal(0, 0.1, 2 * latent)
    w_d, b_d = rng.normal(0, 0.5, (latent, d)), rng.normal(0, 0.1, d)
    enc.layers[0].set_weights([w_e.astype("float32"), b_e.astype("float32")])
    dec.layers[0].set_weights([w_d.astype("float32"), b_d.astype("float32")])
    vae = VAE(enc, dec, latent, beta=beta, buffer_smearing=smearing)
    return vae, (w_e, b_e, w_d, b_d)


def test_loss_terms_by_hand():
    x = np.array([[1.0, 2.0]], np.float32)
    rec, kl = vae_loss_terms(x, np.zeros_like(x), np.array([[1.0]], np.float32), np.array([[0.0]], np.float32))
    assert float(rec) == pytest.approx(5.0)  # 1 + 4
    assert float(kl) == pytest.approx(0.5)  # (1 + 1 - 1 - 0) / 2
    rec, kl = vae_loss_terms(x, x, np.zeros((1, 1), np.float32), np.array([[np.log(4.0)]], np.float32))
    assert float(rec) == 0.0
    assert float(kl) == pytest.approx(0.5 * (4.0 - 1.0 - np.log(4.0)), rel=1e-6)


def test_model_loss_on_a_fixed_batch_against_numpy():
    vae, (w_e, b_e, w_d, b_d) = _linear_vae()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 3)).astype("float32")
    eps = rng.normal(size=(5, 2)).astype("float32")
    h = x @ w_e + b_e
    mean, log_var = h[:, :2], h[:, 2:]
    z = mean + np.exp(0.5 * log_var) * eps
    rec = np.mean(np.sum((x - (z @ w_d + b_d)) ** 2, axis=1))
    kl = np.mean(0.5 * np.sum(mean ** 2 + np.exp(log_var) - 1 - log_var, axis=1))
    loss, r, k = vae.loss_terms(x, eps)
    assert float(r) == pytest.approx(rec, rel=1e-5)
    assert float(k) == pytest.approx(kl, rel=1e-5)
    assert float(loss) == pytest.approx(rec + 0.5 * kl, rel=1e-5)


def test_buffer_sampling_returns_smeared_training_codes():
    vae, (w_e, b_e, w_d, b_d) = _linear_vae(smearing=0.0)
    x = np.random.default_rng(2).normal(size=(40, 3)).astype("float32")
    buffer = vae.fill_buffer(x)
    np.testing.assert_allclose(buffer, (x @ w_e + b_e)[:, :2], rtol=1e-5, atol=1e-6)
    # no smearing: every latent draw is one of the buffered codes, and the events are their decodings
    z = vae._latent(200, seed=3)
    dist = np.abs(z[:, None, :] - buffer[None]).sum(-1).min(axis=1)
    assert dist.max() < 1e-6
    events = vae.sample(200, seed=3, physical=False)
    decoded = buffer @ w_d + b_d
    assert np.abs(events[:, None, :] - decoded[None]).sum(-1).min(axis=1).max() < 1e-4
    # smearing s: latent - chosen code ~ N(0, (s * std(codes))^2) per dimension
    vae.buffer_smearing = 0.05
    rng = np.random.default_rng(4)
    n = 20_000
    z = vae._latent(n, seed=4)
    codes = buffer[rng.integers(0, len(buffer), n)]  # the same draws as _latent's generator
    resid = (z - codes) / (0.05 * buffer.std(axis=0))
    assert abs(resid.mean()) < 0.05 and abs(resid.std() - 1.0) < 0.05


def test_prior_sampling_and_errors():
    vae, _ = _linear_vae()
    z = vae._latent(50_000, seed=1, sampling="prior")
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    with pytest.raises(ValueError, match="fill_buffer"):
        vae.sample(10, sampling="buffer")
    with pytest.raises(ValueError, match="sampling"):
        vae.sample(10, sampling="posterior")
    enc = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    dec = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="encoder"):
        VAE(enc, dec, 2)


def test_training_reduces_the_loss_and_export_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = np.stack([rng.normal(5, 2, 2000), rng.exponential(3, 2000)], axis=1)
    pipe = Pipeline([Standardise()]).fit(x)
    xs = pipe.transform(x).astype("float32")
    enc = keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(4)])
    dec = keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    vae = VAE(enc, dec, 2, beta=0.01, preprocessing=pipe, seed=1)
    vae.compile(keras.optimizers.Adam(1e-2))
    eps = np.zeros((2000, 2), np.float32)
    before = float(vae.loss_terms(xs, eps)[1])
    hist = vae.fit(xs, batch_size=200, epochs=5, verbose=0)
    assert set(hist.history) >= {"loss", "reconstruction", "kl"}
    assert float(vae.loss_terms(xs, eps)[1]) < 0.5 * before
    assert vae.step == 50
    vae.fill_buffer(xs)
    a = vae.sample(100, seed=7)
    assert a.shape == (100, 2) and abs(np.median(a[:, 0]) - 5) < 1.5  # physical units
    path = vae.export(tmp_path / "vae.keras")
    sampler = load_sampler(path)
    np.testing.assert_allclose(sampler.sample(100, seed=7), a, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sampler.sample(100, seed=7, sampling="prior"), vae.sample(100, seed=7,
                                                                                       sampling="prior"),
                               rtol=1e-5, atol=1e-5)
    # checkpoint round trip
    vae.save_checkpoint(tmp_path / "c.npz")
    w0 = [np.asarray(v) for v in vae.state_variables()]
    vae.fit(xs, batch_size=200, epochs=1, verbose=0)
    assert vae.load_checkpoint(tmp_path / "c.npz") == 50
    for a0, v in zip(w0, vae.state_variables()):
        np.testing.assert_array_equal(a0, np.asarray(v))
