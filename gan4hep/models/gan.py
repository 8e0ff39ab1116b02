"""Adversarial models: a ``keras.Model`` with a custom ``train_step`` (after the keras.io WGAN-GP example).

``GAN`` composes a generator, a critic, an objective (gan4hep.objectives), optional generator penalties
(gan4hep.penalties), ``n_critic`` critic updates per generator update, two optimizers, optional conditioning and an
optional exponential moving average (EMA) of the generator weights. Train it with ``model.fit`` on arrays or a
``tf.data.Dataset`` (or through ``gan4hep.training.train``); conditional data come as ``(x, context)`` pairs,
weighted events as ``(x, context, weight)`` (a zero-width ``(B, 0)`` context for an unconditional GAN). It meets
the model contract of ``gan4hep.models.base``.

Per-event weights (``gan4hep.training.train(..., weights=w)``, ``gan4hep train --weight COLUMN``) enter every
expectation over the *real* batch as ``mean(w * term)`` (the Keras sample-weight convention; ``train`` normalises
the weights to mean 1 over the sample), so each objective estimates its loss under the weighted distribution;
the generator loss has no real events and is unchanged. The gradient penalty stays unweighted (a constraint on
the critic on interpolates, not an expectation over the data). Negative weights (NLO samples): the critic losses
are linear in the real events' measure, so a batch with negative weights is an unbiased estimate of the weighted
loss; the Wasserstein objectives (``wgan``, ``wgan_clip``, ``wgan_gp``) stay bounded because the critic is
Lipschitz; ``bce`` and ``lsgan`` are bounded only where the weighted density is non-negative (the usual case of
an NLO sample, whose negative weights are a local minority). Refused by name (``check_weights``): negative weights
with Roth et al.'s regulariser (``bce_roth``: an expected squared gradient norm, which negative weights can make
negative), weights with generator penalties that read the real batch (MMD, peak regression without fixed
targets: their estimators are unweighted), and subclasses with their own ``train_step``.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from ..errors import InputError
from ..io import atomic_path
from ..noise import get_noise, serialize
from ..objectives import get_objective
from ..preprocessing import from_dict as pipeline_from_dict
from .base import GenerativeModel


class GAN(GenerativeModel):
    """Generator G([z, c]) -> x and critic D([x, c]) -> score, trained adversarially.

    Parameters
    ----------
    generator, critic : keras models. The generator takes ``latent_dim + context_dim`` inputs, the critic
        ``n_features + context_dim`` and returns one unbounded score (logit) per event.
    latent_dim : size of the noise vector z.
    noise : a gan4hep.noise sampler or its name ("normal", "uniform", "skewnormal", "normal_to_uniform").
    objective : a gan4hep.objectives.Objective or its name.
    penalties : generator-side penalties (MMDPenalty, PeakPenalty), each added to the generator loss.
    n_critic : critic updates per generator update. Each critic update within one ``train_step`` sees the same
        real batch with fresh noise (as in the keras.io WGAN-GP example).
    context_dim : number of conditioning (context) features (0: unconditional).
    preprocessing, context_preprocessing : fitted gan4hep.preprocessing.Pipeline objects; ``sample`` then
        takes the context in physical units and returns events in physical units.
    ema_decay : if set, keep an exponential moving average of the generator weights, updated after each generator
        step; ``sample`` uses it by default.
    """

    def __init__(self, generator, critic, latent_dim, noise="normal", objective="wgan_gp", penalties=(),
                 n_critic=1, context_dim=0, preprocessing=None, context_preprocessing=None, ema_decay=None,
                 **kwargs):
        super().__init__(preprocessing=preprocessing, context_preprocessing=context_preprocessing,
                         context_dim=context_dim, **kwargs)
        if int(n_critic) < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        self.generator = generator
        self.critic = critic
        self.latent_dim = int(latent_dim)
        self.noise = get_noise(noise)
        self.objective = get_objective(objective)
        self.penalties = list(penalties)
        self.n_critic = int(n_critic)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.ema_generator = None
        if self.ema_decay is not None:
            self.ema_generator = keras.models.clone_model(generator)
            self.ema_generator.set_weights(generator.get_weights())
            self.ema_generator.trainable = False
        self._check_shapes()
        names = ["d_loss", "g_loss"] + [r.name for r in self.objective.regularisers] + [p.name for p in self.penalties]
        self._trackers = {n: keras.metrics.Mean(name=n) for n in names}
        # generator and critic are built networks; without this, fit under a non-default tf.distribute strategy
        # "builds" the model by calling it on the data batch, which is not a generator input
        self.built = True

    def _check_shapes(self):
        g_in = self.generator.inputs[0].shape[-1] if self.generator.inputs else None
        if g_in is not None and g_in != self.latent_dim + self.context_dim:
            raise ValueError(
                f"generator takes {g_in} inputs but latent_dim + context_dim = "
                f"{self.latent_dim} + {self.context_dim}"
            )
        self.n_features = int(self.generator.outputs[0].shape[-1])
        c_in = self.critic.inputs[0].shape[-1] if self.critic.inputs else None
        if c_in is not None and c_in != self.n_features + self.context_dim:
            raise ValueError(
                f"critic takes {c_in} inputs but the generator emits {self.n_features} features + "
                f"{self.context_dim} context features"
            )

    # ------------------------------------------------------------------------------------------------------------
    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """Two optimizers (default: Adam 2e-4, beta1 0.5, beta2 0.999 as Lebese & Ruan)."""
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5, beta_2=0.999)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5, beta_2=0.999)
        # create the optimizer slots now (under the caller's strategy scope), not lazily inside a replica context
        for opt, net in ((self.g_optimizer, self.generator), (self.d_optimizer, self.critic)):
            if not opt.built:
                opt.build(net.trainable_weights)

    @property
    def metrics(self):
        return list(self._trackers.values())

    @property
    def step(self):
        """Number of generator updates done so far (restored with a checkpoint)."""
        return int(self.g_optimizer.iterations.numpy())

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def _gen_input(self, z, c):
        return z if c is None else ops.concatenate([z, ops.cast(c, z.dtype)], axis=-1)

    def _critic(self, x, c, training=True):
        inp = x if c is None else ops.concatenate([x, ops.cast(c, x.dtype)], axis=-1)
        return self.critic(inp, training=training)

    def _unpack(self, data):
        """``(x, context or None)`` of a batch (a weight, if any, is dropped: see ``_unpack_weighted``)."""
        return self._unpack_weighted(data)[:2]

    def _unpack_weighted(self, data):
        """``(x, context or None, weight or None)`` of a batch: ``x``, ``(x,)``, ``(x, c)`` or ``(x, c, w)``;
        x (B, D), c (B, C) (ignored by an unconditional GAN), w (B,)."""
        if isinstance(data, (tuple, list)) and len(data) == 1:  # fit((x, c)) arrives as ((x, c),)
            data = data[0]
        w = None
        if isinstance(data, (tuple, list)):
            x = data[0]
            c = data[1] if (len(data) > 1 and self.context_dim) else None
            w = data[2] if len(data) > 2 else None
        else:
            x, c = data, None
        if self.context_dim and c is None:
            raise ValueError("this GAN is conditional: feed (x, condition) pairs")
        return (ops.cast(x, "float32"), (None if c is None else ops.cast(c, "float32")),
                None if w is None else ops.reshape(ops.cast(w, "float32"), (-1,)))

    takes_event_weights = True

    def check_weights(self, weights):
        """Refuse per-event weights where this GAN's loss is not defined for them (see the module docstring).

        Raises:
            InputError: a subclass with its own ``train_step``; a generator penalty that reads the real batch;
                negative weights with a regulariser that needs non-negative ones (names each).
        """
        if type(self).train_step is not GAN.train_step:
            raise InputError(f"per-event weights: {type(self).__name__} has its own train_step, which does not take "
                             "them")
        unweighted = [p.name for p in self.penalties if not getattr(p, "takes_event_weights", False)]
        if unweighted:
            raise InputError(f"per-event weights: the generator penalties {unweighted} estimate from the "
                             "unweighted real batch: not defined for weighted events")
        negative = int((np.asarray(weights) < 0).sum())
        refused = [r.name for r in self.objective.regularisers if not getattr(r, "negative_weights", True)]
        if negative and refused:
            raise InputError(f"per-event weights: {negative} are negative; the {refused} regulariser of "
                             f"{self.objective!r} is not defined for negative weights (use a Wasserstein objective, "
                             "bce or lsgan)")

    def train_step(self, data):
        x, c, w = self._unpack_weighted(data)
        batch = ops.shape(x)[0]
        # Under tf.distribute the optimizers sum gradients over replicas: scale each replica's mean loss.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        weighted = {} if w is None else {"real_weight": w}
        terms = {}
        for _ in range(self.n_critic):
            z = self.noise.tf_sample(batch, self.latent_dim)
            with tf.GradientTape() as tape:
                fake = self.generator(self._gen_input(z, c), training=True)
                d_loss = self.objective.critic_loss(self._critic(x, c), self._critic(fake, c), **weighted)
                for reg in self.objective.regularisers:
                    terms[reg.name] = reg(lambda v: self._critic(v, c), x, fake, **weighted)
                    d_loss = d_loss + terms[reg.name]
                scaled = d_loss / replicas
            grads = tape.gradient(scaled, self.critic.trainable_weights)
            self.d_optimizer.apply(grads, self.critic.trainable_weights)
            self.objective.after_critic_step(self.critic)

        z = self.noise.tf_sample(batch, self.latent_dim)
        with tf.GradientTape() as tape:
            fake = self.generator(self._gen_input(z, c), training=True)
            g_loss = self.objective.generator_loss(self._critic(fake, c))
            for pen in self.penalties:
                terms[pen.name] = pen(x, fake)
                g_loss = g_loss + terms[pen.name]
            scaled = g_loss / replicas
        grads = tape.gradient(scaled, self.generator.trainable_weights)
        self.g_optimizer.apply(grads, self.generator.trainable_weights)
        self.update_ema()
        return self.record(d_loss=d_loss, g_loss=g_loss, **terms)

    def update_ema(self):
        """After a generator update: EMA weights <- decay * EMA + (1 - decay) * generator (no-op without EMA)."""
        if self.ema_generator is not None:
            for w_ema, w in zip(self.ema_generator.weights, self.generator.weights):
                w_ema.assign(self.ema_decay * w_ema + (1.0 - self.ema_decay) * w)

    def record(self, **terms):
        """Update the loss trackers with ``terms`` (name -> scalar) and return every tracker's mean: what a
        ``train_step`` returns. Subclasses with their own ``train_step`` (e.g. a subtraction GAN) end with it."""
        for name, value in terms.items():
            self._trackers[name].update_state(value)
        return {name: t.result() for name, t in self._trackers.items()}

    # ------------------------------------------------------------------------------------------------------------
    def sample(self, n, context=None, seed=None, batch_size=65536, physical=True, use_ema=True, jit_compile=False):
        """Draw ``n`` events (see ``GenerativeModel.sample``); ``use_ema`` picks the EMA generator if there is one;
        ``jit_compile`` runs the generator under XLA (``_run_generator``)."""
        return super().sample(n, context, seed, batch_size, physical, use_ema=use_ema, jit_compile=jit_compile)

    def sampling_network(self, use_ema=True):
        """The generator network used for sampling: the EMA copy if there is one and ``use_ema``."""
        return self.ema_generator if (use_ema and self.ema_generator is not None) else self.generator

    def _sample_scaled(self, n, context, seed, batch_size, use_ema=True, jit_compile=False):
        return _run_generator(self.sampling_network(use_ema), self.noise, self.latent_dim, self.n_features, n,
                              context, seed, batch_size, jit_compile)

    # ------------------------------------------------------------------------------------------------------------
    def _random_components(self):
        """The noise sampler, the objective and its critic regularisers, the penalties (their seed generators are
        part of the run state)."""
        return [self.noise, self.objective, *self.objective.regularisers, *self.penalties]

    def state_variables(self):
        """Every variable a resumed run needs, in a fixed order: networks, EMA copy, both optimizers (built in
        ``compile``). The random streams and loss trackers: ``run_state_variables``."""
        groups = [self.generator.weights, self.critic.weights,
                  self.ema_generator.weights if self.ema_generator is not None else [],
                  self.g_optimizer.variables, self.d_optimizer.variables]
        return [v for group in groups for v in group]

    def export(self, path, use_ema=True):
        """Save the sampling generator (EMA weights if present and ``use_ema``) with its noise and preprocessing as
        a standalone ``.keras`` file, atomically; ``gan4hep.models.load_sampler`` reads it back as a
        ``GeneratorSampler`` whose ``sample`` returns physical units."""
        sampler = GeneratorSampler(self.sampling_network(use_ema), self.latent_dim, serialize(self.noise),
                                   self.context_dim, _state(self.preprocessing), _state(self.context_preprocessing),
                                   support=self.support)
        with atomic_path(path) as tmp:
            sampler.save(tmp)
        return Path(path)


def _state(pipeline):
    return None if pipeline is None else pipeline.to_dict()


def _inference_function(net, jit_compile: bool = False):
    """``net(x, training=False)`` as one ``tf.function`` (cached on the network): without ``jit_compile`` traced
    once for any batch size, the same numbers as the eager call; with it, under XLA, compiled once per batch shape
    (``_run_generator`` keeps the shapes few)."""
    key = "_gan4hep_inference_xla" if jit_compile else "_gan4hep_inference"
    fn = getattr(net, key, None)
    if fn is None:
        if jit_compile:
            fn = tf.function(lambda x: net(x, training=False), jit_compile=True)
        else:
            spec = tf.TensorSpec((None, int(net.inputs[0].shape[-1])), tf.float32)
            fn = tf.function(lambda x: net(x, training=False), input_signature=[spec])
        object.__setattr__(net, key, fn)  # not a tracked attribute of the Keras model
    return fn


#: the fewest rows of an XLA call: a shorter last batch is padded to the next power of two from here up to the
#: batch size, so a process compiles at most ~log2(batch_size / XLA_MIN_ROWS) + 1 shapes per network
XLA_MIN_ROWS = 1024


def _xla_rows(rows: int, batch_size: int) -> int:
    return min(batch_size, max(XLA_MIN_ROWS, 1 << max(rows - 1, 0).bit_length()))


def _run_generator(net, noise, latent_dim, n_features, n, context, seed, batch_size, jit_compile=False):
    """``net([z, context])`` over batches of ``batch_size``: (n, n_features) float32 in the network's space.

    With ``jit_compile`` the network runs under XLA (the noise is drawn before, with numpy: XLA's random-number
    generators are slow on CPUs), each batch zero-padded to ``_xla_rows`` rows (events are independent rows, so
    the padding changes no event); the numbers equal the plain call's up to float rounding. On 2 CPU cores it took
    Lebese & Ruan's ``sample()`` from 0.53-0.55 to 0.64-0.66 of the matmul peak, at 1-4 s of compilation per new
    shape (benchmarks/README.md).
    """
    z = noise.sample(n, latent_dim, seed=seed)
    if context is not None:
        z = np.concatenate([z, np.asarray(context, np.float32)], axis=1)
    fn = _inference_function(net, jit_compile)
    out = []
    for start in range(0, n, batch_size):
        chunk = z[start:start + batch_size]
        rows = _xla_rows(len(chunk), batch_size) if jit_compile else len(chunk)
        if rows > len(chunk):
            chunk = np.concatenate([chunk, np.zeros((rows - len(chunk), z.shape[1]), np.float32)])
        out.append(fn(chunk).numpy()[:min(batch_size, n - start)])
    return np.concatenate(out, axis=0) if out else np.zeros((0, n_features), np.float32)


@keras.saving.register_keras_serializable(package="gan4hep")
class GeneratorSampler(GenerativeModel):
    """A trained generator with its latent sampler and preprocessing: what ``GAN.export`` writes.

    ``sample(n, context=None, seed=None)`` returns ``(n, n_features)`` events in physical units. It cannot be
    trained or resumed (no critic, no optimizer state): resume from the run folder's checkpoints instead.
    """

    def __init__(self, network, latent_dim, noise, context_dim=0, preprocessing=None, context_preprocessing=None,
                 **kwargs):
        super().__init__(preprocessing=None if preprocessing is None else pipeline_from_dict(preprocessing),
                         context_preprocessing=(None if context_preprocessing is None
                                                else pipeline_from_dict(context_preprocessing)),
                         context_dim=context_dim, **kwargs)
        self.network = network
        self.latent_dim = int(latent_dim)
        self.noise = get_noise(noise)
        self.n_features = int(network.outputs[0].shape[-1])
        self.built = True

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    @property
    def step(self):
        return 0

    def state_variables(self):
        return list(self.network.weights)

    def sample(self, n, context=None, seed=None, batch_size=65536, physical=True, jit_compile=False):
        """Draw ``n`` events (see ``GenerativeModel.sample``); ``jit_compile`` runs the generator under XLA
        (``_run_generator``)."""
        return super().sample(n, context, seed, batch_size, physical, jit_compile=jit_compile)

    def _sample_scaled(self, n, context, seed, batch_size, jit_compile=False):
        return _run_generator(self.network, self.noise, self.latent_dim, self.n_features, n, context, seed,
                              batch_size, jit_compile)

    def get_config(self):
        return {"network": keras.saving.serialize_keras_object(self.network), "latent_dim": self.latent_dim,
                "noise": serialize(self.noise), "context_dim": self.context_dim,
                "preprocessing": _state(self.preprocessing),
                "context_preprocessing": _state(self.context_preprocessing), **self.support_config()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)
