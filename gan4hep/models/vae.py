"""Variational autoencoders: a ``keras.Model`` with a custom ``train_step`` (as ``gan4hep.models.GAN``) meeting the
model contract of ``gan4hep.models.base``, with sampling from the prior or from a density information buffer.

Loss (Butter & Plehn review, Sec. 2, Eq. (5); Kingma & Welling, "Auto-Encoding Variational Bayes",
arXiv:1312.6114, Appendix B for the closed-form KL of two Gaussians), per event, averaged over the batch:

    L = sum_i (x_i - D(z)_i)^2 + beta * KL(N(mu(x), sigma(x)^2) || N(0, 1)),
    KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2),   z = mu(x) + sigma(x) * eps, eps ~ N(0, 1).

The encoder returns ``(mu, log sigma^2)`` concatenated, (B, 2 L); the decoder maps (B, L) to (B, D).

Sampling (``sampling``):

- ``"prior"``: ``z ~ N(0, 1)``, the naive VAE;
- ``"buffer"``: the B-VAE of Otten et al. (review Ref. [14], Sec. 2: small beta, so that the encoded latent space is
  no longer normal, and "a density information buffer to obtain a suitable prior"): ``z = m_k + s * std(m) * eps``
  with ``m_k`` the encoder mean of a training event drawn at random from the buffer (``fill_buffer``), ``std(m)``
  the per-dimension standard deviation of the buffered means and ``s = buffer_smearing`` (ours: the review does
  not give the smearing; Otten et al.'s own prescription was not readable here).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from ..io import atomic_path
from ..preprocessing import from_dict as pipeline_from_dict
from .base import GenerativeModel

__all__ = ["VAE", "VAESampler", "vae_loss_terms", "SAMPLING"]

SAMPLING = ("prior", "buffer")


def vae_loss_terms(x, x_reco, mean, log_var):
    """The two terms of the loss, each averaged over the batch.

    Args:
        x, x_reco: (B, D) events and their reconstructions (model space).
        mean, log_var: (B, L) encoder outputs, ``log_var`` = log sigma^2.

    Returns:
        ``(reconstruction, kl)``: scalars, ``mean_b sum_i (x - x_reco)^2`` and
        ``mean_b 1/2 sum_j (mean^2 + exp(log_var) - 1 - log_var)``.
    """
    reconstruction = ops.mean(ops.sum(ops.square(x - x_reco), axis=-1))
    kl = ops.mean(0.5 * ops.sum(ops.square(mean) + ops.exp(log_var) - 1.0 - log_var, axis=-1))
    return reconstruction, kl


class _BufferSampling:
    """Latent draws from the prior or the buffer, shared by ``VAE`` and ``VAESampler``."""

    def _latent(self, n: int, seed, sampling: str | None = None) -> np.ndarray:
        sampling = sampling or self.sampling
        if sampling not in SAMPLING:
            raise ValueError(f"sampling must be one of {SAMPLING}, got {sampling!r}")
        rng = np.random.default_rng(seed)
        if sampling == "prior":
            return rng.standard_normal((n, self.latent_dim)).astype(np.float32)
        buffer = self.buffer_array()
        if buffer is None or len(buffer) == 0:
            raise ValueError("buffer sampling needs a filled buffer: call fill_buffer(x_train) first")
        codes = buffer[rng.integers(0, len(buffer), n)]
        width = self.buffer_smearing * buffer.std(axis=0)
        return (codes + width * rng.standard_normal(codes.shape)).astype(np.float32)

    def _decode(self, z: np.ndarray, batch_size: int) -> np.ndarray:
        out = [np.asarray(self.decoder(z[i:i + batch_size], training=False)) for i in range(0, len(z), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.n_features), np.float32)

    def sample(self, n: int, context=None, seed: int | None = None, batch_size: int = 65536,
               physical: bool = True, sampling: str | None = None) -> np.ndarray:
        """``GenerativeModel.sample`` with ``sampling`` = ``"prior"`` or ``"buffer"`` (default: the model's).

        Raises:
            ValueError: a context (VAEs here are unconditional); an unknown sampling; an empty buffer.
        """
        return super().sample(n, context, seed, batch_size, physical, sampling=sampling)

    def _sample_scaled(self, n, context, seed, batch_size, sampling=None):
        return self._decode(self._latent(n, seed, sampling), batch_size)


class VAE(_BufferSampling, GenerativeModel):
    """Encoder E(x) -> (mu, log sigma^2), decoder D(z) -> x, trained on reconstruction + beta x KL (module
    docstring).

    Args:
        encoder: keras model (B, D) -> (B, 2 L).
        decoder: keras model (B, L) -> (B, D).
        latent_dim: L.
        beta: weight of the KL term.
        sampling: ``"prior"`` or ``"buffer"`` (the default of ``sample``).
        buffer_smearing: width of the Gaussian smearing of buffered codes, in units of their per-dimension std.
        preprocessing: fitted pipeline of the features (``sample`` returns physical units through it).

    Raises:
        ValueError: networks whose widths do not match ``latent_dim``; an unknown ``sampling``; ``beta < 0``.

    Logged metrics: ``loss``, ``reconstruction``, ``kl``.
    """

    def __init__(self, encoder, decoder, latent_dim: int, beta: float = 1.0, sampling: str = "buffer",
                 buffer_smearing: float = 0.1, preprocessing=None, seed: int | None = None, **kwargs):
        super().__init__(preprocessing=preprocessing, context_dim=0, **kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim, self.beta = int(latent_dim), float(beta)
        self.sampling, self.buffer_smearing = sampling, float(buffer_smearing)
        if sampling not in SAMPLING:
            raise ValueError(f"sampling must be one of {SAMPLING}, got {sampling!r}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        enc_out = int(encoder.outputs[0].shape[-1]) if encoder.outputs else None
        dec_in = int(decoder.inputs[0].shape[-1]) if decoder.inputs else None
        if enc_out is not None and enc_out != 2 * self.latent_dim:
            raise ValueError(f"encoder returns {enc_out} values, expected 2 x latent_dim = {2 * self.latent_dim}")
        if dec_in is not None and dec_in != self.latent_dim:
            raise ValueError(f"decoder takes {dec_in} inputs, expected latent_dim = {self.latent_dim}")
        self.n_features = int(decoder.outputs[0].shape[-1])
        self._seed = keras.random.SeedGenerator(seed)
        self._buffer = None
        self._trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", "reconstruction", "kl")}
        self.built = True

    # ---- training ---------------------------------------------------------------------------------------------
    def compile(self, optimizer=None, **kwargs):
        """Default optimizer: Adam(1e-3); its slots are created here."""
        super().compile(optimizer=optimizer if optimizer is not None else keras.optimizers.Adam(1e-3), **kwargs)
        if not self.optimizer.built:
            self.optimizer.build(self._weights_to_train())

    def _weights_to_train(self):
        return self.encoder.trainable_weights + self.decoder.trainable_weights

    @property
    def metrics(self):
        return list(self._trackers.values())

    def encode(self, x, training=False):
        """(B, D) -> ``(mean, log_var)``, each (B, L)."""
        h = self.encoder(ops.cast(x, "float32"), training=training)
        return h[:, :self.latent_dim], h[:, self.latent_dim:]

    def loss_terms(self, x, eps, training=False):
        """``(loss, reconstruction, kl)`` of batch ``x`` (B, D) with the reparametrisation noise ``eps`` (B, L)
        given (``vae_loss_terms``)."""
        mean, log_var = self.encode(x, training)
        z = mean + ops.exp(0.5 * log_var) * ops.cast(eps, "float32")
        rec, kl = vae_loss_terms(ops.cast(x, "float32"), self.decoder(z, training=training), mean, log_var)
        return rec + self.beta * kl, rec, kl

    def _x(self, data):
        if isinstance(data, (tuple, list)):
            data = data[0]
        return ops.cast(data, "float32")

    def train_step(self, data):
        x = self._x(data)
        eps = keras.random.normal((ops.shape(x)[0], self.latent_dim), seed=self._seed)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        variables = self._weights_to_train()
        with tf.GradientTape() as tape:
            loss, rec, kl = self.loss_terms(x, eps, training=True)
            scaled = loss / replicas
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        return self.record(loss=loss, reconstruction=rec, kl=kl)

    def test_step(self, data):
        x = self._x(data)
        eps = keras.random.normal((ops.shape(x)[0], self.latent_dim), seed=self._seed)
        loss, rec, kl = self.loss_terms(x, eps)
        return self.record(loss=loss, reconstruction=rec, kl=kl)

    def record(self, **terms):
        for name, value in terms.items():
            self._trackers[name].update_state(value)
        return {name: t.result() for name, t in self._trackers.items()}

    def call(self, inputs, training=False):
        """The reconstruction of ``inputs`` through the encoder mean (no noise): (B, D)."""
        mean, _ = self.encode(inputs, training)
        return self.decoder(mean, training=training)

    # ---- the buffer -------------------------------------------------------------------------------------------
    def fill_buffer(self, x, batch_size: int = 65536) -> np.ndarray:
        """Store the encoder means of ``x`` (n, D) (model space; the training events) as the density information
        buffer; returns it, (n, L) float32."""
        x = np.asarray(x, np.float32)
        self._buffer = np.concatenate([np.asarray(self.encode(x[i:i + batch_size])[0])
                                       for i in range(0, len(x), batch_size)]).astype(np.float32)
        return self._buffer

    def buffer_array(self) -> np.ndarray | None:
        """The buffered latent means, (n, L), or None before ``fill_buffer``."""
        return self._buffer

    # ---- the contract -----------------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        return 0 if getattr(self, "optimizer", None) is None else int(self.optimizer.iterations.numpy())

    def state_variables(self) -> list:
        """Encoder and decoder weights, then the optimizer's (the buffer is refilled from the training data)."""
        opt = getattr(self, "optimizer", None)
        return list(self.encoder.weights) + list(self.decoder.weights) + (list(opt.variables) if opt else [])

    def export(self, path) -> Path:
        """Save the decoder, the buffer (if filled), the sampling options and the preprocessing as a standalone
        ``.keras`` file (atomically); ``gan4hep.models.load_sampler`` reads it back as a ``VAESampler``."""
        buffer = self._buffer if self._buffer is not None else np.zeros((0, self.latent_dim), np.float32)
        sampler = VAESampler(self.decoder, self.latent_dim, self.sampling, self.buffer_smearing, len(buffer),
                             None if self.preprocessing is None else self.preprocessing.to_dict())
        sampler.buffer.assign(buffer)
        with atomic_path(path) as tmp:
            sampler.save(tmp)
        return Path(path)


@keras.saving.register_keras_serializable(package="gan4hep")
class VAESampler(_BufferSampling, GenerativeModel):
    """A trained VAE decoder with its buffer and preprocessing: what ``VAE.export`` writes. ``sample(n, seed=...,
    sampling=...)`` returns physical units and equals the VAE's for the same seed. Not trainable."""

    def __init__(self, decoder, latent_dim, sampling="buffer", buffer_smearing=0.1, buffer_size=0,
                 preprocessing=None, **kwargs):
        super().__init__(preprocessing=None if preprocessing is None else pipeline_from_dict(preprocessing),
                         context_dim=0, **kwargs)
        self.decoder, self.latent_dim = decoder, int(latent_dim)
        self.sampling, self.buffer_smearing, self.buffer_size = sampling, float(buffer_smearing), int(buffer_size)
        self.n_features = int(decoder.outputs[0].shape[-1])
        self.buffer = self.add_weight(shape=(self.buffer_size, self.latent_dim), initializer="zeros",
                                      trainable=False, name="buffer")
        self.built = True

    def buffer_array(self):
        return np.asarray(self.buffer) if self.buffer_size else None

    def call(self, inputs, training=False):
        return self.decoder(inputs, training=training)

    @property
    def step(self):
        return 0

    def state_variables(self):
        return list(self.decoder.weights) + [self.buffer]

    def get_config(self):
        return {"decoder": keras.saving.serialize_keras_object(self.decoder), "latent_dim": self.latent_dim,
                "sampling": self.sampling, "buffer_smearing": self.buffer_smearing, "buffer_size": self.buffer_size,
                "preprocessing": None if self.preprocessing is None else self.preprocessing.to_dict()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)
