"""Ready-made flows from the parts: the neural spline flow of FlashSim (nflows layout), a masked autoregressive
spline flow, and the cINN. Each returns an uncompiled ``Flow``; ``compile`` it and ``fit`` (or pass the builder to
``gan4hep.training.train``).
"""

from __future__ import annotations

from .affine import cinn_block
from .autoregressive import MADE, MaskedAutoregressive
from .base import Chain
from .coupling import Coupling, alternating_mask, coupling_factory
from .flow import Flow
from .linear import LULinear, RandomPermutation
from .nets import ResidualNet
from .spline import (DEFAULT_MIN_BIN_HEIGHT, DEFAULT_MIN_BIN_WIDTH, DEFAULT_MIN_DERIVATIVE,
                     RationalQuadraticSpline)

__all__ = ["spline_transform", "spline_flow", "flashsim_flow", "maf", "cinn", "FLASHSIM_JETS"]

#: The FlashSim jet flow [FlashSim trainings/jets_trainings.py, ``create_NDE_model(17, 14, 17, param_dict)``]:
#: 17 targets, 14 conditioning values, 17 steps, ResidualNet(298 hidden, 10 blocks, ReLU, batch norm, no dropout),
#: 128 bins, linear tails, tail bound 1 (nflows default), minimum bin width / height / derivative 1e-3.
FLASHSIM_JETS = dict(features=17, context_dim=14, steps=17, hidden_features=298, num_blocks=10, bins=128,
                     tail_bound=1.0, batch_norm=True, dropout=0.0, activation="relu")


def _linear(features, identity_init=True):
    return [RandomPermutation(features), LULinear(features, identity_init=identity_init)]


def spline_transform(features: int, context_dim: int = 0, steps: int = 5, bins: int = 8, tail_bound: float = 3.0,
                     conditioner=None, hidden_features: int = 64, num_blocks: int = 2, batch_norm: bool = False,
                     dropout: float = 0.0, activation: str = "relu", linear: bool = True,
                     min_bin_width: float = DEFAULT_MIN_BIN_WIDTH, min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
                     min_derivative: float = DEFAULT_MIN_DERIVATIVE) -> Chain:
    """The coupling neural spline flow transform in the FlashSim / lfi-gw / nsf layout: ``steps`` x
    [RandomPermutation, LULinear(identity init), rational-quadratic coupling (alternating mask, even at even steps)]
    then one more [RandomPermutation, LULinear].

    Args:
        features: D (for D = 1 every coupling transforms the single feature from the context alone).
        context_dim: C (0: unconditional).
        steps: coupling steps.
        bins, tail_bound, min_*: the spline (``RationalQuadraticSpline``).
        conditioner: factory ``(in_features, out_features) -> layer``; default ``ResidualNet`` with
            ``hidden_features``, ``num_blocks``, ``batch_norm``, ``dropout``, ``activation`` and the context.
        linear: include the [RandomPermutation, LULinear] pairs (False: couplings only).

    Returns:
        a ``Chain`` (data -> noise).

    Raises:
        ValueError: ``steps < 1``; ``features == 1`` without a context (nothing to condition on: use ``maf``).
    """
    if steps < 1:
        raise ValueError(f"spline_transform needs steps >= 1, got {steps}")
    if features == 1 and not context_dim:
        raise ValueError("a 1-d coupling flow needs a context to condition on; use maf() for an unconditional 1-d "
                         "flow")
    if conditioner is None:
        conditioner = coupling_factory(ResidualNet, context_dim, hidden_features=hidden_features,
                                       num_blocks=num_blocks, batch_norm=batch_norm, dropout=dropout,
                                       activation=activation)
    spline = dict(bins=bins, tail_bound=tail_bound, min_bin_width=min_bin_width, min_bin_height=min_bin_height,
                  min_derivative=min_derivative)
    parts = []
    for i in range(steps):
        if linear:
            parts += _linear(features)
        mask = [1] if features == 1 else alternating_mask(features, even=(i % 2 == 0))
        parts.append(Coupling(mask, conditioner, RationalQuadraticSpline(**spline), context_dim=context_dim))
    if linear:
        parts += _linear(features)
    return Chain(parts)


def spline_flow(features: int, context_dim: int = 0, preprocessing=None, context_preprocessing=None,
                name: str | None = None, output_layer=None, **transform_kwargs) -> Flow:
    """``Flow(spline_transform(features, context_dim, **transform_kwargs))`` with a standard-normal base, the
    given preprocessing pipelines and ``output_layer`` (see ``Flow``; ``spline_transform`` for the options)."""
    return Flow(spline_transform(features, context_dim, **transform_kwargs), context_dim=context_dim,
                preprocessing=preprocessing, context_preprocessing=context_preprocessing, name=name,
                output_layer=output_layer)


def flashsim_flow(preprocessing=None, context_preprocessing=None, **overrides) -> Flow:
    """The FlashSim jet flow (``FLASHSIM_JETS``; Vaselli, public code, jets_trainings.py), 47,986,595 trainable
    parameters; ``overrides`` replace any entry of ``FLASHSIM_JETS`` (e.g. a smaller ``hidden_features`` for a
    CPU preset). Train it as FlashSim does: ``compile(keras.optimizers.Adam(1e-5))`` with cosine decay over 600
    epochs, batch 2048 [FlashSim trainings/jets_trainings.py]."""
    options = {**FLASHSIM_JETS, **overrides}
    return spline_flow(preprocessing=preprocessing, context_preprocessing=context_preprocessing,
                       name="flashsim_flow", **options)


def maf(features: int, context_dim: int = 0, steps: int = 5, bins: int = 8, tail_bound: float = 3.0,
        hidden_features: int = 64, num_layers: int = 2, activation: str = "relu", transformer=None,
        preprocessing=None, context_preprocessing=None, name: str | None = None) -> Flow:
    """Masked autoregressive flow: ``steps`` x [RandomPermutation, LULinear, MaskedAutoregressive(MADE,
    transformer)] then [RandomPermutation, LULinear]; transformer default ``RationalQuadraticSpline(bins,
    tail_bound)`` (nflows' autoregressive neural spline flow). Returns an uncompiled ``Flow``."""
    parts = []
    for _ in range(steps):
        t = transformer if transformer is not None else RationalQuadraticSpline(bins, tail_bound)
        made = MADE(features, t.params_per_feature, hidden_features, num_layers, context_dim, activation)
        parts += _linear(features) + [MaskedAutoregressive(made, t)]
    parts += _linear(features)
    return Flow(Chain(parts), context_dim=context_dim, preprocessing=preprocessing,
                context_preprocessing=context_preprocessing, name=name)


def cinn(features: int, context_dim: int = 0, blocks: int = 8, hidden_features: int = 128, num_layers: int = 2,
         clamp: float | None = 2.0, activation: str = "relu", preprocessing=None, context_preprocessing=None,
         name: str | None = None) -> Flow:
    """The conditional INN of the Butter & Plehn review (sec. 2.3, Eq. (9)): ``blocks`` x [RandomPermutation,
    ``cinn_block``] (two soft-clamped affine couplings whose subnetworks see the condition). Returns an uncompiled
    ``Flow``.

    Raises:
        ValueError: ``features < 2``.
    """
    parts = []
    for _ in range(blocks):
        parts += [RandomPermutation(features), *cinn_block(features, context_dim, hidden_features, num_layers, clamp,
                                                           activation).transforms]
    return Flow(Chain(parts), context_dim=context_dim, preprocessing=preprocessing,
                context_preprocessing=context_preprocessing, name=name)
