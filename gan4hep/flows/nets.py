"""Conditioners: the networks that compute a transform's parameters from the features it leaves unchanged and the
context. Both are called as ``net(inputs, context=None, training=None) -> (B, out_features)`` and expose
``in_features``, ``out_features``, ``context_features`` and ``hidden_features`` (a spline coupling divides its
unnormalised widths and heights by sqrt(hidden_features), as nflows does).

``ResidualNet`` mirrors nflows ``nflows/nn/nets/resnet.py`` (the FlashSim conditioner); ``MLP`` is a plain
fully connected network. Dense layers use PyTorch's default initialisation (weights and biases uniform in
+-1/sqrt(fan_in)) so that a network starts as the nflows one does; BatchNormalization uses momentum 0.9 and
epsilon 1e-3, the Keras spelling of PyTorch's ``BatchNorm1d(momentum=0.1, eps=1e-3)``.
"""

from __future__ import annotations

import math

import keras
from keras import ops

__all__ = ["ResidualNet", "ResidualBlock", "MLP", "torch_dense"]


def torch_dense(units: int, fan_in: int, name: str | None = None, kernel_initializer=None,
                bias_initializer=None) -> keras.layers.Dense:
    """A built ``Dense(units)`` on ``fan_in`` inputs with torch ``nn.Linear``'s default initialisation:
    kernel and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5))."""
    bound = 1.0 / math.sqrt(max(1, fan_in))
    layer = keras.layers.Dense(
        units, name=name,
        kernel_initializer=kernel_initializer or keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"),
        bias_initializer=bias_initializer or keras.initializers.RandomUniform(-bound, bound))
    layer.build((None, fan_in))
    return layer


def _concat(inputs, context):
    return inputs if context is None else ops.concatenate([inputs, ops.cast(context, inputs.dtype)], axis=-1)


class _Conditioner(keras.layers.Layer):
    def __init__(self, in_features, out_features, hidden_features, context_features=0, activation="relu",
                 **kwargs):
        super().__init__(**kwargs)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.hidden_features, self.context_features = int(hidden_features), int(context_features)
        if self.in_features < 0 or self.out_features < 1 or self.hidden_features < 1 or self.context_features < 0:
            raise ValueError(f"{type(self).__name__}: bad sizes in={in_features} out={out_features} "
                             f"hidden={hidden_features} context={context_features}")
        self.activation_name = activation
        self.activation = keras.activations.get(activation)

    def _check_context(self, context):
        if self.context_features and context is None:
            raise ValueError(f"{self.name}: this conditioner takes a ({self.context_features},) context; none given")
        if not self.context_features:
            return None
        return context

    def get_config(self):
        config = super().get_config()
        config.update(in_features=self.in_features, out_features=self.out_features,
                      hidden_features=self.hidden_features, context_features=self.context_features,
                      activation=self.activation_name)
        return config


@keras.saving.register_keras_serializable(package="gan4hep")
class ResidualBlock(keras.layers.Layer):
    """nflows ``ResidualBlock``: [BN] -> act -> Linear -> [BN] -> act -> dropout -> Linear (initialised
    U(-1e-3, 1e-3)) -> GLU context gate ``* sigmoid(Linear(context))`` -> added to the block input.

    Args:
        features: width H. context_features: 0 for no gate.
        activation, dropout, batch_norm, bn_momentum, bn_epsilon: as in ``ResidualNet``.
    """

    def __init__(self, features: int, context_features: int = 0, activation: str = "relu", dropout: float = 0.0,
                 batch_norm: bool = False, bn_momentum: float = 0.9, bn_epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.features, self.context_features = int(features), int(context_features)
        self.activation_name, self.dropout_rate, self.batch_norm = activation, float(dropout), bool(batch_norm)
        self.bn_momentum, self.bn_epsilon = float(bn_momentum), float(bn_epsilon)
        self.activation = keras.activations.get(activation)
        h = self.features
        if self.batch_norm:
            self.norms = [keras.layers.BatchNormalization(momentum=self.bn_momentum, epsilon=self.bn_epsilon)
                          for _ in range(2)]
            for bn in self.norms:
                bn.build((None, h))
        small = keras.initializers.RandomUniform(-1e-3, 1e-3)
        self.linears = [torch_dense(h, h), torch_dense(h, h, kernel_initializer=small, bias_initializer=small)]
        self.dropout = keras.layers.Dropout(self.dropout_rate)
        if self.context_features:
            self.gate = torch_dense(h, self.context_features)
        self.built = True

    def call(self, inputs, context=None, training=None):
        t = inputs
        if self.batch_norm:
            t = self.norms[0](t, training=training)
        t = self.linears[0](self.activation(t))
        if self.batch_norm:
            t = self.norms[1](t, training=training)
        t = self.dropout(self.activation(t), training=training)
        t = self.linears[1](t)
        if self.context_features:
            t = t * ops.sigmoid(self.gate(context))
        return inputs + t

    def get_config(self):
        config = super().get_config()
        config.update(features=self.features, context_features=self.context_features,
                      activation=self.activation_name, dropout=self.dropout_rate, batch_norm=self.batch_norm,
                      bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon)
        return config


@keras.saving.register_keras_serializable(package="gan4hep")
class ResidualNet(_Conditioner):
    """nflows ``ResidualNet``: Linear(in + context -> H), ``num_blocks`` residual blocks (each gated by the
    context), Linear(H -> out). The FlashSim conditioner is ``ResidualNet(in, out, 298, 14, num_blocks=10,
    batch_norm=True)`` [FlashSim trainings/jets_trainings.py; nflows nflows/nn/nets/resnet.py].

    Call: ``net(inputs (B, in_features), context (B, context_features) or None, training) -> (B, out_features)``.

    Args:
        in_features, out_features: input and output widths.
        hidden_features: H.
        context_features: context width (0: unconditional; then no gates).
        num_blocks: residual blocks (each two hidden Linear layers).
        activation: Keras activation name (nflows default ReLU).
        dropout: dropout rate in each block (FlashSim 0).
        batch_norm: BatchNormalization in each block (FlashSim True).
        bn_momentum, bn_epsilon: Keras BN momentum / epsilon (default 0.9 / 1e-3 = torch 0.1 / 1e-3).

    Raises:
        ValueError: negative or zero sizes; a context missing for a conditional net (at call).
    """

    def __init__(self, in_features: int, out_features: int, hidden_features: int, context_features: int = 0,
                 num_blocks: int = 2, activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False,
                 bn_momentum: float = 0.9, bn_epsilon: float = 1e-3, **kwargs):
        super().__init__(in_features, out_features, hidden_features, context_features, activation, **kwargs)
        self.num_blocks, self.dropout_rate, self.batch_norm = int(num_blocks), float(dropout), bool(batch_norm)
        self.bn_momentum, self.bn_epsilon = float(bn_momentum), float(bn_epsilon)
        h = self.hidden_features
        self.initial = torch_dense(h, self.in_features + self.context_features)
        self.blocks = [ResidualBlock(h, self.context_features, activation, self.dropout_rate, self.batch_norm,
                                     self.bn_momentum, self.bn_epsilon) for _ in range(self.num_blocks)]
        self.final = torch_dense(self.out_features, h)
        self.built = True

    def call(self, inputs, context=None, training=None):
        context = self._check_context(context)
        t = self.initial(_concat(inputs, context))
        for block in self.blocks:
            t = block(t, context, training=training)
        return self.final(t)

    def get_config(self):
        config = super().get_config()
        config.update(num_blocks=self.num_blocks, dropout=self.dropout_rate, batch_norm=self.batch_norm,
                      bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon)
        return config


@keras.saving.register_keras_serializable(package="gan4hep")
class MLP(_Conditioner):
    """A fully connected network on ``concat(inputs, context)``: ``num_layers`` hidden layers of width H with the
    activation, then a linear output layer.

    Call: ``net(inputs (B, in_features), context (B, context_features) or None, training) -> (B, out_features)``.

    Args:
        in_features, out_features, hidden_features, context_features, activation: see ``ResidualNet``.
        num_layers: hidden layers (>= 1).
        zero_output: initialise the output layer to zero, so that an affine coupling starts as the identity
            (the usual cINN subnet initialisation).

    Raises:
        ValueError: bad sizes; a context missing for a conditional net (at call).
    """

    def __init__(self, in_features: int, out_features: int, hidden_features: int = 64, context_features: int = 0,
                 num_layers: int = 2, activation: str = "relu", zero_output: bool = False, **kwargs):
        super().__init__(in_features, out_features, hidden_features, context_features, activation, **kwargs)
        self.num_layers, self.zero_output = int(num_layers), bool(zero_output)
        if self.num_layers < 1:
            raise ValueError(f"MLP needs num_layers >= 1, got {num_layers}")
        widths = [self.in_features + self.context_features] + [self.hidden_features] * self.num_layers
        self.hidden = [torch_dense(w_out, w_in) for w_in, w_out in zip(widths[:-1], widths[1:])]
        zeros = keras.initializers.Zeros() if self.zero_output else None
        self.final = torch_dense(self.out_features, self.hidden_features, kernel_initializer=zeros,
                                 bias_initializer=zeros)
        self.built = True

    def call(self, inputs, context=None, training=None):
        t = _concat(inputs, self._check_context(context))
        for layer in self.hidden:
            t = self.activation(layer(t))
        return self.final(t)

    def get_config(self):
        config = super().get_config()
        config.update(num_layers=self.num_layers, zero_output=self.zero_output)
        return config
