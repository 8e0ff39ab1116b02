"""Network builders: fully connected generators and critics as plain ``keras.Sequential`` models.

Activations are given by name: any Keras activation ("relu", "sigmoid", ...), "leaky_relu" (slope ``alpha``),
"trainable_swish" / "trainable_swish_scalar" (gan4hep.layers.TrainableSwish per unit / one scalar beta), or None
for linear. Keeping the builders plain makes parameter counts easy to check against the papers.
"""

from __future__ import annotations

import keras

from . import layers as g4l


def activation_layer(name, alpha=0.2):
    """A Keras layer for the activation ``name`` (None -> no layer)."""
    if name is None or name == "linear":
        return None
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=alpha)
    if name == "trainable_swish":
        return g4l.TrainableSwish(per_unit=True)
    if name == "trainable_swish_scalar":
        return g4l.TrainableSwish(per_unit=False)
    return keras.layers.Activation(name)


def mlp(input_dim, widths, output_dim, activation="relu", output_activation=None, dropout=0.0, alpha=0.2,
        batch_norm=False, dense=None, name=None):
    """Input(input_dim) -> [dense(w) -> (batch norm) -> activation -> (dropout)] for w in widths -> dense(output_dim)
    -> output_activation.

    ``dense`` is a callable ``units -> layer`` (default ``keras.layers.Dense``), e.g. ``CircleDense`` for Lin et
    al.'s modified WGAN critic.
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


def count_trainable(model):
    """Number of trainable scalars in ``model``."""
    return int(sum(int(keras.ops.size(w)) for w in model.trainable_weights))
