"""The flow model: a transform and a base density (``Flow(transform, base)``, the layout of zuko and nflows), meeting
the model contract of ``gan4hep.models.base`` (sample in physical units, step, checkpoints, export).

Density (change of variables; Papamakarios et al., "Normalizing Flows for Probabilistic Modeling and Inference",
JMLR 2021, eq. (2)): ``log p(x | c) = log N(z; 0, 1) + log |det dz/dx|`` with ``z = transform.forward(x, c)``.
Sampling: ``x = transform.inverse(z, c)``, ``z ~ N(0, 1)``.

Training data for ``fit`` (the Keras ``(x, y, sample_weight)`` positions, with the context in the ``y`` slot):
``x``, ``(x,)``, ``(x, context)``, ``(x, context, weight)`` or ``(x, None, weight)`` -- x (B, D), context (B, C),
weight (B,). The loss is the mean negative log-likelihood per event, ``mean(-log p)``, or with weights
``mean(weight * -log p)`` over the batch (Keras' sample-weight convention: normalise the weights to mean 1 for the
loss to read in nats per event; negative weights are allowed). ``fit(x, sample_weight=w)`` on an unconditional flow
works too (Keras would drop the weights without a ``y``; ``Flow.fit`` passes a zero-width context for it). A
zero-width context, shape (B, 0), always reads as no context: ``gan4hep.training.train(build, (x, np.zeros((n, 0)),
w), ...)`` trains an unconditional flow on weighted events (``tf.data`` from numpy arrays cannot carry a None).
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from ..io import atomic_path
from ..models.base import GenerativeModel
from ..preprocessing import from_dict as pipeline_from_dict
from .base import deserialize, serialize

__all__ = ["StandardNormal", "Flow", "FlowSampler"]


@keras.saving.register_keras_serializable(package="gan4hep")
class StandardNormal:
    """The base density N(0, I_D).

    Args:
        features: D.
    """

    def __init__(self, features: int):
        self.features = int(features)

    def log_prob(self, z):
        """(B, D) tensor -> (B,) log density in nats."""
        return -0.5 * ops.sum(z * z, axis=-1) - 0.5 * self.features * math.log(2.0 * math.pi)

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """(n, D) float32 draws from ``numpy.random.default_rng(seed)``."""
        return np.random.default_rng(seed).standard_normal((int(n), self.features)).astype(np.float32)

    def get_config(self):
        return {"features": self.features}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _state(pipeline):
    return None if pipeline is None else pipeline.to_dict()


class _FlowMixin:
    """Density and sampling shared by ``Flow`` and the exported ``FlowSampler``."""

    def _setup_flow(self, transform, base, context_dim, output_layer=None):
        if isinstance(output_layer, dict):
            output_layer = deserialize(output_layer)
        self.output_layer = output_layer
        self.transform = transform
        self.base = base if base is not None else StandardNormal(transform.features)
        self.n_features = int(transform.features)
        if self.base.features != self.n_features:
            raise ValueError(f"base has {self.base.features} features, the transform {self.n_features}")
        if context_dim is not None and int(context_dim) != transform.context_dim:
            raise ValueError(f"context_dim={context_dim} but the transform takes a {transform.context_dim}-wide "
                             "context")
        self._compiled = {}

    def to_physical(self, x) -> np.ndarray:
        """``(n, D)`` model-space values -> physical units: the preprocessing undone, then ``output_layer`` (if
        any) applied, which may change the width (e.g. three-momenta -> four-vectors with ``gan4hep.layers.OnShell``).
        """
        x = super().to_physical(x)
        if self.output_layer is None:
            return x
        return np.asarray(self.output_layer(ops.convert_to_tensor(np.asarray(x, np.float32))), dtype=np.float64)

    def _check_context_tensor(self, context):
        if context is not None and len(context.shape) == 2 and context.shape[-1] == 0:
            context = None
        if self.context_dim and context is None:
            raise ValueError(f"this flow is conditional: pass a ({self.context_dim},)-wide context")
        if not self.context_dim and context is not None:
            raise ValueError("this flow is unconditional: do not pass a context (weights go third: (x, None, w))")
        if context is not None and len(context.shape) == 2 and context.shape[-1] not in (None, self.context_dim):
            raise ValueError(f"context has {context.shape[-1]} features, this flow takes {self.context_dim}")
        return None if context is None else ops.cast(context, "float32")

    def log_prob(self, x, context=None, training=False):
        """Log density of ``x`` given ``context``, in the model's (preprocessed) space.

        Args:
            x: (B, D) tensor or array (model space). context: (B, C) or None (model space).
            training: BatchNormalization in training mode (batch statistics).

        Returns:
            (B,) tensor of log p(x | c) in nats.

        Raises:
            ValueError: a context given to an unconditional flow, or missing for a conditional one.
        """
        x = ops.cast(ops.convert_to_tensor(x), "float32")
        context = self._check_context_tensor(None if context is None else ops.convert_to_tensor(context))
        z, logdet = self.transform.forward(x, context, training=training)
        return self.base.log_prob(z) + logdet

    def _function(self, name, conditional):
        key = (name, conditional)
        if key not in self._compiled:
            if name == "inverse":
                def fn(z, c=None):
                    return self.transform.inverse(z, c, training=False)[0]
            else:
                def fn(x, c=None):
                    return self.log_prob(x, c, training=False)
            self._compiled[key] = tf.function(fn, reduce_retracing=True)
        return self._compiled[key]

    def log_prob_numpy(self, x, context=None, batch_size: int = 65536) -> np.ndarray:
        """``log_prob`` over a large (n, D) model-space array in batches (inference mode, compiled): (n,) float64.

        Raises:
            ValueError: as ``log_prob``; ``x`` and ``context`` of different lengths.
        """
        x = np.asarray(x, dtype=np.float32)
        if context is not None:
            context = np.asarray(context, dtype=np.float32)
            if len(context) != len(x):
                raise ValueError(f"x has {len(x)} rows, context {len(context)}")
        self._check_context_tensor(None if context is None else ops.convert_to_tensor(context[:1]))
        fn = self._function("log_prob", context is not None)
        out = [np.asarray(fn(x[i:i + batch_size], *(() if context is None else (context[i:i + batch_size],))))
               for i in range(0, len(x), int(batch_size))]
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def _sample_scaled(self, n, context, seed, batch_size):
        z = self.base.sample(n, seed)
        fn = self._function("inverse", context is not None)
        out = []
        for start in range(0, n, int(batch_size)):
            args = (z[start:start + batch_size],)
            if context is not None:
                args += (context[start:start + batch_size],)
            out.append(np.asarray(fn(*args)))
        return np.concatenate(out, axis=0) if out else np.zeros((0, self.n_features), np.float32)


class Flow(_FlowMixin, GenerativeModel):
    """A normalising flow ``Flow(transform, base)`` trained by maximum likelihood with ``model.fit``.

    Args:
        transform: a ``gan4hep.flows`` transform (usually a ``Chain``) mapping data (B, D) to noise.
        base: the base density (default ``StandardNormal(D)``).
        context_dim: width of the context (default: the transform's); 0 for an unconditional flow.
        preprocessing, context_preprocessing: fitted ``gan4hep.preprocessing`` pipelines; ``sample`` takes the
            context and returns events in physical units through them.
        output_layer: optional Keras layer (registered for serialisation, no weights) applied to the physical
            events after the preprocessing is undone, in ``sample`` only (not in ``log_prob``); it may change the
            width, e.g. ``gan4hep.layers.OnShell`` (three-momenta -> four-vectors). Exported with the sampler.

    Raises:
        ValueError: a base of another dimension, or a ``context_dim`` the transform does not take.

    The model space is the preprocessed one: ``log_prob``, ``fit`` data and ``sample(physical=False)`` live there.
    Logged metric: ``nll`` (``val_nll`` on validation data), nats per event.
    """

    def __init__(self, transform, base=None, context_dim: int | None = None, preprocessing=None,
                 context_preprocessing=None, output_layer=None, **kwargs):
        super().__init__(preprocessing=preprocessing, context_preprocessing=context_preprocessing,
                         context_dim=transform.context_dim if context_dim is None else context_dim, **kwargs)
        self._setup_flow(transform, base, context_dim, output_layer)
        self._nll = keras.metrics.Mean(name="nll")
        self.built = True

    #: The weighted NLL ``mean(w * -log p)`` is defined for weights of any sign (``gan4hep.training.train``'s
    #: ``weights``; the contract's ``check_weights`` then accepts every finite weight).
    takes_event_weights = True

    # ---- training -------------------------------------------------------------------------------------------
    def compile(self, optimizer=None, **kwargs):
        """Default optimizer: Adam(1e-3). The optimizer's slots are created here (under the caller's strategy
        scope)."""
        super().compile(optimizer=optimizer if optimizer is not None else keras.optimizers.Adam(1e-3), **kwargs)
        if not self.optimizer.built:
            self.optimizer.build(self.transform.trainable_weights)

    def fit(self, x=None, y=None, *args, sample_weight=None, **kwargs):
        """``keras.Model.fit``; for an unconditional flow given ``sample_weight`` and no ``y``, a zero-width
        context is passed in the ``y`` slot so that Keras keeps the weights."""
        if y is None and sample_weight is not None and not self.context_dim:
            y = np.zeros((len(sample_weight), 0), np.float32)
        return super().fit(x, y, *args, sample_weight=sample_weight, **kwargs)

    @property
    def metrics(self):
        return [self._nll]

    def _unpack(self, data):
        if isinstance(data, (tuple, list)) and len(data) == 1:
            data = data[0]
        if not isinstance(data, (tuple, list)):
            return ops.cast(data, "float32"), None, None
        if len(data) > 3:
            raise ValueError(f"flow data must be x, (x, context) or (x, context, weight); got {len(data)} parts")
        x = ops.cast(data[0], "float32")
        context = data[1] if len(data) > 1 else None
        weight = None if len(data) < 3 or data[2] is None else ops.reshape(ops.cast(data[2], "float32"), (-1,))
        return x, context, weight

    def _loss(self, data, training):
        x, context, weight = self._unpack(data)
        nll = -self.log_prob(x, context, training=training)
        return ops.mean(nll) if weight is None else ops.mean(weight * nll)

    def train_step(self, data):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        variables = self.transform.trainable_weights
        with tf.GradientTape() as tape:
            loss = self._loss(data, training=True)
            scaled = loss / replicas
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self._nll.update_state(loss)
        return {"nll": self._nll.result()}

    def test_step(self, data):
        self._nll.update_state(self._loss(data, training=False))
        return {"nll": self._nll.result()}

    def call(self, inputs, training=False):
        """``log_prob`` of ``x`` or ``(x, context)``: (B,)."""
        if isinstance(inputs, (tuple, list)):
            return self.log_prob(inputs[0], inputs[1] if len(inputs) > 1 else None, training=training)
        return self.log_prob(inputs, None, training=training)

    # ---- the contract ---------------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        """Optimizer updates done so far (0 before ``compile``)."""
        return 0 if getattr(self, "optimizer", None) is None else int(self.optimizer.iterations.numpy())

    def state_variables(self) -> list:
        """Transform variables (weights, batch-norm statistics, permutations), then the optimizer's, in a fixed
        order."""
        opt = getattr(self, "optimizer", None)
        return list(self.transform.weights) + (list(opt.variables) if opt is not None else [])

    def export(self, path) -> Path:
        """Save transform, base and preprocessing as a standalone ``.keras`` file (atomically);
        ``gan4hep.models.load_sampler`` reads it back as a ``FlowSampler`` whose ``sample`` returns physical
        units and equals this model's for the same seed."""
        sampler = FlowSampler(self.transform, serialize(self.base), self.context_dim, _state(self.preprocessing),
                              _state(self.context_preprocessing),
                              None if self.output_layer is None else serialize(self.output_layer),
                              support=self.support)
        with atomic_path(path) as tmp:
            sampler.save(tmp)
        return Path(path)


@keras.saving.register_keras_serializable(package="gan4hep")
class FlowSampler(_FlowMixin, GenerativeModel):
    """A trained flow with its preprocessing: what ``Flow.export`` writes. ``sample(n, context=None, seed=None)``
    returns (n, D) events in physical units; ``log_prob`` / ``log_prob_numpy`` evaluate the model-space density.
    It cannot be trained or resumed (no optimizer state): resume from the run folder's checkpoints."""

    def __init__(self, transform, base=None, context_dim=0, preprocessing=None, context_preprocessing=None,
                 output_layer=None, **kwargs):
        super().__init__(preprocessing=None if preprocessing is None else pipeline_from_dict(preprocessing),
                         context_preprocessing=(None if context_preprocessing is None
                                                else pipeline_from_dict(context_preprocessing)),
                         context_dim=context_dim, **kwargs)
        if isinstance(base, dict):
            base = deserialize(base)
        self._setup_flow(transform, base, context_dim, output_layer)
        self.built = True

    def call(self, inputs, training=False):
        if isinstance(inputs, (tuple, list)):
            return self.log_prob(inputs[0], inputs[1] if len(inputs) > 1 else None)
        return self.log_prob(inputs)

    @property
    def step(self):
        return 0

    def state_variables(self):
        return list(self.transform.weights)

    def get_config(self):
        return {"transform": serialize(self.transform), "base": serialize(self.base),
                "context_dim": self.context_dim, "preprocessing": _state(self.preprocessing),
                "context_preprocessing": _state(self.context_preprocessing),
                **({} if self.output_layer is None else {"output_layer": serialize(self.output_layer)}),
                **self.support_config()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["transform"] = deserialize(config["transform"])
        return cls(**config)
