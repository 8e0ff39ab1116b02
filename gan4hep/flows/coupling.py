"""Coupling transforms (Dinh, Sohl-Dickstein, Bengio, "Density estimation using Real NVP", ICLR 2017, sec. 3.3;
Durkan et al. 2019 sec. 3.2 for spline couplings): the features with ``mask == 1`` are transformed element-wise with
parameters computed by a conditioner from the features with ``mask == 0`` and the context; the others pass
unchanged, so the Jacobian is triangular and the inverse needs one conditioner pass.

As nflows ``CouplingTransform``: ``mask[i] > 0`` marks a transformed feature; the conditioner input is the
identity features (in feature order) and, separately, the context; its output is reshaped to
(B, n_transformed, params_per_feature), feature-major.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from .base import Transform, deserialize, serialize

__all__ = ["alternating_mask", "Coupling", "coupling_factory"]


def alternating_mask(features: int, even: bool = True) -> np.ndarray:
    """nflows ``create_alternating_binary_mask``: (features,) int array, 1 at even indices if ``even`` else at odd
    indices (1 = transformed). FlashSim uses ``even = (step % 2 == 0)``."""
    mask = np.zeros(int(features), dtype=int)
    mask[0 if even else 1::2] = 1
    return mask


@keras.saving.register_keras_serializable(package="gan4hep")
class Coupling(Transform):
    """A coupling transform: ``z[mask] = f(x[mask]; conditioner(x[~mask], context))``, ``z[~mask] = x[~mask]``.

    Args:
        mask: (D,) 0/1 sequence, 1 = transformed (at least one 1).
        conditioner: a Keras layer called as ``conditioner(x_identity (B, n_id), context, training=...)`` returning
            (B, n_transformed * transformer.params_per_feature), or a factory ``(in_features, out_features) ->
            layer`` (nflows' ``transform_net_create_fn``). A conditioner with a ``hidden_features`` attribute makes a
            spline transformer divide its unnormalised widths and heights by sqrt(hidden_features) (nflows).
        transformer: the element-wise map (``gan4hep.flows.spline.RationalQuadraticSpline``,
            ``gan4hep.flows.affine.AffineTransformer``).
        context_dim: context width the conditioner takes (0: none).

    Raises:
        ValueError: a mask that is not 0/1 or transforms nothing; a conditioner whose declared in/out widths do not
            match; a context given to an unconditional coupling or missing for a conditional one (at call).
    """

    def __init__(self, mask, conditioner, transformer, context_dim: int = 0, **kwargs):
        mask = np.asarray(mask, dtype=int).reshape(-1)
        if mask.size == 0 or not np.isin(mask, (0, 1)).all():
            raise ValueError(f"Coupling mask must be a non-empty 0/1 sequence, got {mask.tolist()}")
        if not mask.any():
            raise ValueError("Coupling mask transforms no feature (all zeros)")
        kwargs.pop("features", None)
        super().__init__(features=mask.size, context_dim=context_dim, **kwargs)
        self.mask = mask
        self.identity_index = np.flatnonzero(mask == 0)
        self.transform_index = np.flatnonzero(mask == 1)
        self.inverse_order = np.argsort(np.concatenate([self.identity_index, self.transform_index]))
        self.transformer = transformer
        n_out = len(self.transform_index) * transformer.params_per_feature
        if not isinstance(conditioner, keras.layers.Layer) and callable(conditioner):
            conditioner = conditioner(len(self.identity_index), n_out)
        for attr, expected in (("in_features", len(self.identity_index)), ("out_features", n_out),
                               ("context_features", self.context_dim)):
            got = getattr(conditioner, attr, None)
            if got is not None and int(got) != expected:
                raise ValueError(f"Coupling: conditioner has {attr}={got}, this coupling needs {expected} "
                                 f"(mask {mask.tolist()}, {transformer.params_per_feature} parameters per feature, "
                                 f"context_dim {self.context_dim})")
        self.conditioner = conditioner
        self.built = True

    @property
    def hidden_features(self) -> int | None:
        return getattr(self.conditioner, "hidden_features", None)

    def _params(self, x_identity, context, training):
        if self.context_dim and context is None:
            raise ValueError(f"{self.name}: conditional coupling (context_dim={self.context_dim}) needs a context")
        params = self.conditioner(x_identity, context if self.context_dim else None, training=training)
        return ops.reshape(params, (-1, len(self.transform_index), self.transformer.params_per_feature))

    def _apply(self, x, context, training, inverse):
        x_id = ops.take(x, self.identity_index, axis=1)
        x_tr = ops.take(x, self.transform_index, axis=1)
        params = self._params(x_id, context, training)
        fn = self.transformer.inverse if inverse else self.transformer.forward
        y_tr, logdet = fn(x_tr, params, hidden_features=self.hidden_features)
        out = ops.take(ops.concatenate([x_id, y_tr], axis=1), self.inverse_order, axis=1)
        return out, ops.sum(logdet, axis=1)

    def forward(self, x, context=None, training=False):
        return self._apply(x, context, training, inverse=False)

    def inverse(self, z, context=None, training=False):
        return self._apply(z, context, training, inverse=True)

    def get_config(self):
        config = super().get_config()
        config.pop("features")
        config.update(mask=self.mask.tolist(), conditioner=serialize(self.conditioner),
                      transformer=serialize(self.transformer))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["conditioner"] = deserialize(config["conditioner"])
        config["transformer"] = deserialize(config["transformer"])
        return cls(**config)


def coupling_factory(net: Callable[..., keras.layers.Layer], context_dim: int = 0, **net_kwargs):
    """A conditioner factory ``(in_features, out_features) -> net(in_features, out_features,
    context_features=context_dim, **net_kwargs)`` for ``Coupling``'s ``conditioner`` argument."""
    def make(in_features, out_features):
        return net(in_features, out_features, context_features=context_dim, **net_kwargs)
    return make
