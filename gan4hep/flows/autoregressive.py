"""Masked autoregressive transforms (Papamakarios, Pavlakou, Murray, "Masked Autoregressive Flow for Density
Estimation", NeurIPS 2017) with a MADE conditioner (Germain, Gregor, Murray, Larochelle, "MADE", ICML 2015), as
nflows ``MaskedPiecewiseRationalQuadraticAutoregressiveTransform`` / ``MaskedAffineAutoregressiveTransform``:
feature i is transformed with parameters that depend on features < i (natural order) and on the context.
``forward`` (data -> noise, density evaluation) is one network pass; ``inverse`` (sampling) needs D passes.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from .base import Transform, deserialize, serialize
from .nets import torch_dense

__all__ = ["MADE", "MaskedAutoregressive"]


def _hidden_degrees(features, units):
    """nflows: hidden degrees cycle through 1..D-1 (all 0 for D = 1)."""
    top = max(1, features - 1)
    return np.arange(units) % top + min(1, features - 1)


@keras.saving.register_keras_serializable(package="gan4hep")
class MADE(keras.layers.Layer):
    """Masked autoencoder: output block i (``params_per_feature`` values) depends only on inputs < i and on the
    context (added unmasked to the first hidden layer, as nflows ``MADE``).

    Call: ``made(x (B, D), context (B, C) or None, training) -> (B, D * params_per_feature)``, feature-major.

    Args:
        features: D. params_per_feature: outputs per feature. hidden_features: H (>= D - 1 so that every input
            reaches the outputs). num_layers: hidden layers. context_features: C. activation: Keras name.

    Raises:
        ValueError: bad sizes; a context missing for a conditional MADE (at call).
    """

    def __init__(self, features: int, params_per_feature: int, hidden_features: int = 64, num_layers: int = 2,
                 context_features: int = 0, activation: str = "relu", **kwargs):
        super().__init__(**kwargs)
        self.features, self.params_per_feature = int(features), int(params_per_feature)
        self.hidden_features, self.num_layers = int(hidden_features), int(num_layers)
        self.context_features, self.activation_name = int(context_features), activation
        if self.features < 1 or self.params_per_feature < 1 or self.hidden_features < 1 or self.num_layers < 1:
            raise ValueError(f"MADE: bad sizes features={features} params={params_per_feature} "
                             f"hidden={hidden_features} layers={num_layers}")
        self.activation = keras.activations.get(activation)
        d, h = self.features, self.hidden_features
        degrees_in = np.arange(1, d + 1)
        degrees_h = _hidden_degrees(d, h)
        masks = [(degrees_h[None, :] >= degrees_in[:, None])]
        masks += [(degrees_h[None, :] >= degrees_h[:, None])] * (self.num_layers - 1)
        degrees_out = np.repeat(degrees_in, self.params_per_feature)
        masks.append(degrees_out[None, :] > degrees_h[:, None])
        self._masks = [m.astype("float32") for m in masks]
        widths = [d] + [h] * self.num_layers + [d * self.params_per_feature]
        self.dense = [torch_dense(w_out, w_in) for w_in, w_out in zip(widths[:-1], widths[1:])]
        if self.context_features:
            self.context_layer = torch_dense(h, self.context_features)
        self.built = True

    @property
    def in_features(self):
        return self.features

    @property
    def out_features(self):
        return self.features * self.params_per_feature

    def _masked(self, i, t):
        layer = self.dense[i]
        return ops.matmul(t, layer.kernel * self._masks[i]) + layer.bias

    def call(self, x, context=None, training=None):
        t = self._masked(0, x)
        if self.context_features:
            if context is None:
                raise ValueError(f"{self.name}: this MADE takes a ({self.context_features},) context; none given")
            t = t + self.context_layer(context)
        for i in range(1, len(self.dense)):
            t = self._masked(i, self.activation(t))
        return t

    def get_config(self):
        config = super().get_config()
        config.update(features=self.features, params_per_feature=self.params_per_feature,
                      hidden_features=self.hidden_features, num_layers=self.num_layers,
                      context_features=self.context_features, activation=self.activation_name)
        return config


@keras.saving.register_keras_serializable(package="gan4hep")
class MaskedAutoregressive(Transform):
    """``z_i = f(x_i; made(x_<i, context)_i)`` with an element-wise transformer f (spline or affine).

    Args:
        made: a ``MADE`` with ``params_per_feature == transformer.params_per_feature``.
        transformer: ``RationalQuadraticSpline`` or ``AffineTransformer``.

    Raises:
        ValueError: the MADE's output per feature does not match the transformer.
    """

    def __init__(self, made, transformer, **kwargs):
        if made.params_per_feature != transformer.params_per_feature:
            raise ValueError(f"MaskedAutoregressive: MADE emits {made.params_per_feature} values per feature, the "
                             f"transformer needs {transformer.params_per_feature}")
        kwargs.pop("features", None)
        kwargs.pop("context_dim", None)
        super().__init__(features=made.features, context_dim=made.context_features, **kwargs)
        self.made, self.transformer = made, transformer
        self.built = True

    def _params(self, x, context, training):
        if self.context_dim and context is None:
            raise ValueError(f"{self.name}: conditional transform (context_dim={self.context_dim}) needs a context")
        params = self.made(x, context if self.context_dim else None, training=training)
        return ops.reshape(params, (-1, self.features, self.transformer.params_per_feature))

    def forward(self, x, context=None, training=False):
        z, logdet = self.transformer.forward(x, self._params(x, context, training), self.made.hidden_features)
        return z, ops.sum(logdet, axis=1)

    def inverse(self, z, context=None, training=False):
        x = ops.zeros_like(z)
        logdet = None
        for _ in range(self.features):
            x, logdet = self.transformer.inverse(z, self._params(x, context, training), self.made.hidden_features)
        return x, ops.sum(logdet, axis=1)

    def get_config(self):
        config = super().get_config()
        for key in ("features", "context_dim"):
            config.pop(key)
        config.update(made=serialize(self.made), transformer=serialize(self.transformer))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["made"] = deserialize(config["made"])
        config["transformer"] = deserialize(config["transformer"])
        return cls(**config)
