"""Network builders: fully connected generators and critics as plain ``keras.Sequential`` models.

Activations are given by name: any Keras activation ("relu", "sigmoid", ...), "leaky_relu" (slope ``alpha``),
"trainable_swish" / "trainable_swish_scalar" (gan4hep.layers.TrainableSwish per unit / one scalar beta), or None
for linear. Keeping the builders plain makes parameter counts easy to check against the papers.
"""

from __future__ import annotations

from typing import Callable, Sequence

import keras

from . import layers as g4l


def activation_layer(name: str | None, alpha: float = 0.2) -> keras.layers.Layer | None:
    """A Keras layer for the activation ``name``; None for None or "linear".

    Args:
        name: a Keras activation name, "leaky_relu", "trainable_swish" (one beta per unit),
            "trainable_swish_scalar" (one shared beta; Lebese & Ruan 2021, sec. 4.3), "linear" or None.
        alpha: negative slope of "leaky_relu"; ignored otherwise.

    Raises:
        ValueError: ``name`` is not a Keras activation (raised by ``keras.layers.Activation``).
    """
    if name is None or name == "linear":
        return None
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=alpha)
    if name == "trainable_swish":
        return g4l.TrainableSwish(per_unit=True)
    if name == "trainable_swish_scalar":
        return g4l.TrainableSwish(per_unit=False)
    return keras.layers.Activation(name)


def mlp(input_dim: int, widths: Sequence[int], output_dim: int, activation: str | None = "relu",
        output_activation: str | None = None, dropout: float = 0.0, alpha: float = 0.2, batch_norm: bool = False,
        dense: Callable[[int], keras.layers.Layer] | None = None, name: str | None = None) -> keras.Sequential:
    """Input(input_dim) -> [dense(w) -> (batch norm) -> activation -> (dropout)] for w in widths -> dense(output_dim)
    -> output_activation.

    Args:
        input_dim: number of input features (latent size plus any condition for a generator).
        widths: hidden layer widths, in order.
        output_dim: number of outputs (event features for a generator, 1 for a critic).
        activation, output_activation: names as for :func:`activation_layer`.
        dropout: dropout rate after each hidden activation (0 for none).
        alpha: LeakyReLU negative slope.
        batch_norm: add ``BatchNormalization`` after each hidden dense layer.
        dense: callable ``units -> layer`` (default ``keras.layers.Dense``), e.g. ``CircleDense`` for the modified
            WGAN critic of Lin, Bhimji & Nachman (2019, sec. 2.2).
        name: the model name.

    Returns:
        A built ``keras.Sequential`` mapping ``(batch, input_dim)`` to ``(batch, output_dim)``.

    Raises:
        ValueError: an unknown activation name.
    """
    dense = dense or (lambda units: keras.layers.Dense(units))
    model = keras.Sequential(name=name)
    model.add(keras.Input(shape=(int(input_dim),)))
    for width in widths:
        model.add(dense(int(width)))
        if batch_norm:
            model.add(keras.layers.BatchNormalization())
        act = activation_layer(activation, alpha)
        if act is not None:
            model.add(act)
        if dropout:
            model.add(keras.layers.Dropout(dropout))
    model.add(dense(int(output_dim)))
    act = activation_layer(output_activation, alpha)
    if act is not None:
        model.add(act)
    return model


def count_trainable(model: keras.Model | keras.layers.Layer) -> int:
    """Number of trainable scalars in ``model``."""
    return int(sum(int(keras.ops.size(w)) for w in model.trainable_weights))
