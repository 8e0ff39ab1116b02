"""The transform contract of the flows, and their composition (``Chain``).

Direction (as nflows and zuko): ``forward`` maps data ``x`` to noise ``z`` and returns ``log |det dz/dx|``, so a flow's
density is ``log p(x) = log N(z) + log |det dz/dx|`` (one pass, used for training); ``inverse`` maps noise to data
(used for sampling) and returns ``log |det dx/dz|`` = minus the forward log-determinant at that point.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["Transform", "Chain", "Inverse", "serialize", "deserialize"]


def serialize(obj) -> dict:
    """Keras config of a transform, conditioner or element-wise transformer (for ``get_config``)."""
    return keras.saving.serialize_keras_object(obj)


def deserialize(config):
    """Inverse of ``serialize`` (for ``from_config``)."""
    return keras.saving.deserialize_keras_object(config)


class Transform(keras.layers.Layer):
    """A bijection of ``(batch, features)`` tensors, optionally conditioned on a ``(batch, context_dim)`` context.

    Subclasses create every variable in ``__init__`` (shapes are known there), so a transform is built when it is
    made, counts its parameters at once, and reloads from its config (``keras.saving``) with identical variables.

    Args:
        features: dimension D of the transformed vectors.
        context_dim: dimension of the context the transform accepts (0: none).
    """

    def __init__(self, features: int, context_dim: int = 0, **kwargs):
        super().__init__(**kwargs)
        if int(features) < 1:
            raise ValueError(f"{type(self).__name__}: features must be >= 1, got {features}")
        self.features = int(features)
        self.context_dim = int(context_dim)

    def forward(self, x, context=None, training=False):
        """Data -> noise. ``x``: (B, D) float32. Returns ``(z, logdet)``: (B, D) and (B,) = log |det dz/dx|."""
        raise NotImplementedError

    def inverse(self, z, context=None, training=False):
        """Noise -> data. ``z``: (B, D). Returns ``(x, logdet)``: (B, D) and (B,) = log |det dx/dz|."""
        raise NotImplementedError

    def call(self, x, context=None, training=None):
        return self.forward(x, context, training=bool(training))[0]

    def get_config(self):
        config = super().get_config()
        config.update(features=self.features, context_dim=self.context_dim)
        return config

    def _zeros(self, x):
        return ops.zeros(ops.shape(x)[:1], dtype=x.dtype)


@keras.saving.register_keras_serializable(package="gan4hep")
class Chain(Transform):
    """Transforms applied in order by ``forward`` and undone in reverse order by ``inverse``; log-determinants add
    (chain rule). Every member gets the same context.

    Args:
        transforms: the members, each a ``Transform`` of the same ``features``.

    Raises:
        ValueError: no transforms, or members of different dimension.
    """

    def __init__(self, transforms, **kwargs):
        transforms = list(transforms)
        if not transforms:
            raise ValueError("Chain needs at least one transform")
        dims = {t.features for t in transforms}
        if len(dims) != 1:
            raise ValueError(f"Chain members transform different dimensions: {sorted(dims)}")
        kwargs.pop("features", None)
        kwargs.pop("context_dim", None)
        super().__init__(features=dims.pop(), context_dim=max(t.context_dim for t in transforms), **kwargs)
        self.transforms = transforms
        self.built = True

    def forward(self, x, context=None, training=False):
        total = self._zeros(x)
        for t in self.transforms:
            x, logdet = t.forward(x, context, training=training)
            total = total + logdet
        return x, total

    def inverse(self, z, context=None, training=False):
        total = self._zeros(z)
        for t in reversed(self.transforms):
            z, logdet = t.inverse(z, context, training=training)
            total = total + logdet
        return z, total

    def __len__(self):
        return len(self.transforms)

    def __getitem__(self, i):
        return self.transforms[i]

    def get_config(self):
        config = super().get_config()
        config["transforms"] = [serialize(t) for t in self.transforms]
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["transforms"] = [deserialize(t) for t in config["transforms"]]
        return cls(**config)


@keras.saving.register_keras_serializable(package="gan4hep")
class Inverse(Transform):
    """The inverse of a transform: ``forward`` runs ``transform.inverse`` and vice versa (e.g. to make the cheap
    direction of an autoregressive transform the sampling one, as in an inverse autoregressive flow)."""

    def __init__(self, transform, **kwargs):
        kwargs.pop("features", None)
        kwargs.pop("context_dim", None)
        super().__init__(features=transform.features, context_dim=transform.context_dim, **kwargs)
        self.transform = transform
        self.built = True

    def forward(self, x, context=None, training=False):
        return self.transform.inverse(x, context, training=training)

    def inverse(self, z, context=None, training=False):
        return self.transform.forward(z, context, training=training)

    def get_config(self):
        config = super().get_config()
        config["transform"] = serialize(self.transform)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["transform"] = deserialize(config["transform"])
        return cls(**config)
