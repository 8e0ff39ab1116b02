"""The affine coupling block of the conditional invertible network (cINN) reviewed by Butter & Plehn,
"Generative Networks for LHC events" (arXiv:2008.08558), sec. 2.3, Eq. (9):

    y_B = x_B * exp(m1(x_A, c)) + m2(x_A, c)    <=>    x_B = (y_B - m2(x_A, c)) * exp(-m1(x_A, c)),

with the subnetworks m1, m2 (one network with 2 |B| outputs here) evaluated only in the forward direction, so the
condition c enters them and nothing else (the cINN of Ardizzone et al., arXiv:1907.02392, used for unfolding by
Bellagente et al., arXiv:2006.06685). The log-scale is soft-clamped, ``s = (2 alpha / pi) atan(m1 / alpha)``
(Ardizzone et al. 2019 sec. 3.1; FrEIA's ``GLOWCouplingBlock`` with ``clamp=alpha``, default 2), which bounds
|log det| per feature by alpha.

In this package's direction convention ``forward`` is data -> noise and applies the exp-multiplication (as FrEIA's
forward pass of the cINN): Eq. (9)'s left side with x the data half and y the latent.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from .base import Chain
from .coupling import Coupling
from .nets import MLP

__all__ = ["AffineTransformer", "AffineCoupling", "cinn_block"]


@keras.saving.register_keras_serializable(package="gan4hep")
class AffineTransformer:
    """Element-wise ``y = x * exp(s) + t`` with ``s = soft_clamp(m1)``; params (B, n, 2) = (m1, t) per feature.

    Args:
        clamp: alpha of the soft clamp ``(2 alpha / pi) atan(m1 / alpha)``; None for an unclamped log-scale.

    Raises:
        ValueError: ``clamp <= 0``.
    """

    params_per_feature = 2

    def __init__(self, clamp: float | None = 2.0):
        if clamp is not None and not float(clamp) > 0:
            raise ValueError(f"AffineTransformer clamp must be > 0 or None, got {clamp}")
        self.clamp = None if clamp is None else float(clamp)

    def log_scale(self, raw):
        """Soft clamp of the raw log-scale (identity without a clamp)."""
        if self.clamp is None:
            return raw
        return (2.0 * self.clamp / math.pi) * ops.arctan(raw / self.clamp)

    def forward(self, x, params, hidden_features=None):
        """(B, n), (B, n, 2) -> (x * exp(s) + t, s)."""
        s = self.log_scale(params[..., 0])
        return x * ops.exp(s) + params[..., 1], s

    def inverse(self, y, params, hidden_features=None):
        """(B, n), (B, n, 2) -> ((y - t) * exp(-s), -s)."""
        s = self.log_scale(params[..., 0])
        return (y - params[..., 1]) * ops.exp(-s), -s

    def get_config(self):
        return {"clamp": self.clamp}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="gan4hep")
class AffineCoupling(Coupling):
    """One half of a cINN block: the ``mask == 1`` features are scaled and shifted by a subnetwork of the others and
    the context (Butter & Plehn Eq. (9), soft clamp).

    Args:
        mask: (D,) 0/1, 1 = transformed.
        conditioner: layer or factory ``(in, out) -> layer`` (out = 2 n_transformed); see ``Coupling``.
        clamp: soft-clamp alpha (None: no clamp).
        context_dim: context width.
    """

    def __init__(self, mask, conditioner, clamp: float | None = 2.0, context_dim: int = 0, **kwargs):
        transformer = kwargs.pop("transformer", None)
        if transformer is None:
            transformer = AffineTransformer(clamp)
        elif isinstance(transformer, dict):
            from .base import deserialize
            transformer = deserialize(transformer)
        super().__init__(mask, conditioner, transformer, context_dim=context_dim, **kwargs)

    @property
    def clamp(self):
        return self.transformer.clamp


def cinn_block(features: int, context_dim: int = 0, hidden_features: int = 128, num_layers: int = 2,
               clamp: float | None = 2.0, activation: str = "relu") -> Chain:
    """The GLOW-type cINN coupling block (FrEIA ``GLOWCouplingBlock``, as used by Bellagente et al. 2020):
    the second half of the features is transformed conditioned on the first half and the context, then the first
    half conditioned on the transformed second half; each subnetwork an ``MLP`` with a zero-initialised output
    layer, so the block starts as the identity.

    Args:
        features: D >= 2 (the first D // 2 features form the first half).
        context_dim: condition width (enters only the subnetworks).
        hidden_features, num_layers, activation: the subnetworks.
        clamp: soft-clamp alpha.

    Returns:
        a ``Chain`` of two ``AffineCoupling`` transforms.

    Raises:
        ValueError: ``features < 2``.
    """
    if features < 2:
        raise ValueError(f"cinn_block needs features >= 2, got {features}")
    first = np.zeros(features, dtype=int)
    first[: features // 2] = 1

    def subnet(n_in, n_out):
        return MLP(n_in, n_out, hidden_features, context_dim, num_layers, activation, zero_output=True)

    return Chain([AffineCoupling(1 - first, subnet, clamp, context_dim),
                  AffineCoupling(first, subnet, clamp, context_dim)])
