"""FlashSim's jet flow, built from ``gan4hep.flows`` exactly as the public code builds it.

[FS trainings/jets_trainings.py] ``create_NDE_model(17, 14, 17, param_dict)``: a standard-normal base in the target
space; 17 steps of [RandomPermutation, LULinear(identity init), rational-quadratic coupling (alternating mask, even
features at even steps; 128 bins, linear tails, tail bound 1; conditioner nflows ResidualNet(hidden 298, 10 blocks,
ReLU, batch norm, no dropout) on the identity half and the 14 conditioning values)], then one more [RandomPermutation,
LULinear]; Adam(1e-5) with cosine annealing over 600 epochs, batch 2048. ``gan4hep.flows.flashsim_flow`` is that
flow (47,986,595 trainable parameters for 17 targets and 14 conditioning values).

The number of steps is the one ambiguity of the architecture (README, Ambiguities): the public code has 17 (its
rule: steps = targets, 17 targets); the thesis abstract speaks of "15 transformations layers" and "15 key
variables". ``READINGS`` names both; our sample has 15 targets (16 with pile-up).
"""

from __future__ import annotations

import functools

import keras
import numpy as np

from gan4hep.flows import FLASHSIM_JETS, Flow, flashsim_flow

from papers.vaselli.recipe import READINGS, Recipe

__all__ = ["READINGS", "PAPER_CONFIGURATION_PARAMETERS", "flow_steps", "flow_options", "build_flow",
           "learning_rate", "build_compiled", "count_parameters", "parameter_count",
           "paper_configuration_parameters", "describe"]

#: trainable parameters of the public code's configuration (17 targets, 14 conditioning values), from the nflows
#: layer shapes (../shared/notes/vaselli-facts.md, section 2); ``paper_configuration_parameters`` counts them on the
#: built flow.
PAPER_CONFIGURATION_PARAMETERS = 47_986_595


def flow_steps(recipe: Recipe) -> int:
    """Number of coupling steps of ``recipe.reading``.

    Raises:
        ValueError: an unknown reading (names the ones there are).
    """
    if recipe.reading not in READINGS:
        raise ValueError(f"unknown reading {recipe.reading!r}; choose one of {', '.join(READINGS)}")
    return READINGS[recipe.reading]


def flow_options(recipe: Recipe, n_targets: int, n_context: int) -> dict:
    """The ``gan4hep.flows.flashsim_flow`` overrides of ``recipe`` for a sample with ``n_targets`` targets and
    ``n_context`` conditioning values (the public code's values for ``PAPER``, ``FLASHSIM_JETS``)."""
    return dict(features=int(n_targets), context_dim=int(n_context), steps=flow_steps(recipe),
                hidden_features=recipe.hidden_features, num_blocks=recipe.num_blocks, bins=recipe.bins,
                tail_bound=recipe.tail_bound, batch_norm=recipe.batch_norm, dropout=recipe.dropout,
                activation=recipe.activation)


def build_flow(recipe: Recipe, n_targets: int, n_context: int, preprocessing=None,
               context_preprocessing=None) -> Flow:
    """The uncompiled FlashSim flow of ``recipe`` on ``n_targets`` targets given ``n_context`` conditioning values,
    with the fitted pipelines attached (``sample`` then takes the conditioning and returns targets in physical
    units, before ``data.postprocess``)."""
    return flashsim_flow(preprocessing=preprocessing, context_preprocessing=context_preprocessing,
                         **flow_options(recipe, n_targets, n_context))


def learning_rate(recipe: Recipe, steps_per_epoch: int):
    """Adam's learning rate: cosine annealing from ``recipe.lr`` to 0 over ``recipe.epochs`` epochs [FS:
    ``CosineAnnealingLR(optimizer, T_max=total_epochs)``, stepped once per epoch; Keras' ``CosineDecay`` decays
    per step, the same curve without the per-epoch staircase]."""
    return keras.optimizers.schedules.CosineDecay(recipe.lr, decay_steps=max(1, recipe.epochs * steps_per_epoch),
                                                  alpha=0.0)


def build_compiled(recipe: Recipe, n_targets: int, n_context: int, steps_per_epoch: int, preprocessing=None,
                   context_preprocessing=None) -> Flow:
    """``build_flow`` compiled with Adam and the cosine annealing, the train step under XLA if
    ``recipe.jit_compile`` (what ``gan4hep.training.train`` calls)."""
    flow = build_flow(recipe, n_targets, n_context, preprocessing, context_preprocessing)
    flow.compile(keras.optimizers.Adam(learning_rate(recipe, steps_per_epoch)), jit_compile=recipe.jit_compile)
    return flow


def count_parameters(flow) -> int:
    """Trainable parameters of a flow (weights, biases, batch-norm scales and offsets, LU factors)."""
    return int(sum(int(np.prod(v.shape)) for v in flow.trainable_weights))


def parameter_count(features: int, context: int, steps: int, hidden: int, blocks: int, bins: int,
                    batch_norm: bool = True) -> int:
    """Trainable parameters of the FlashSim layout from the nflows layer shapes (no build): per coupling a
    ResidualNet (initial Linear, ``blocks`` x [2 BN, 2 Linear, context gate], final Linear to 3 bins - 1 values per
    transformed feature), and ``steps`` + 1 LULinear (D^2 + D)."""
    def resnet(n_id, n_tr):
        block = (4 * hidden if batch_norm else 0) + 2 * (hidden * hidden + hidden) + (context * hidden + hidden)
        out = n_tr * (3 * bins - 1)
        return (n_id + context) * hidden + hidden + blocks * block + hidden * out + out

    total = 0
    for i in range(steps):
        n_tr = (features + 1) // 2 if i % 2 == 0 else features // 2
        total += resnet(features - n_tr, n_tr)
    return total + (steps + 1) * (features * features + features)


@functools.lru_cache(maxsize=None)
def paper_configuration_parameters() -> int:
    """Build the public code's configuration (``flashsim_flow()``: 17 targets, 14 conditioning, 17 steps, hidden
    298, 10 blocks, 128 bins) and count its trainable parameters: 47,986,595 (the docs: "50+ millions")."""
    return count_parameters(flashsim_flow())


def describe(recipe: Recipe, n_targets: int, n_context: int) -> str:
    """One line naming the flow of ``recipe`` (steps, reading, conditioner, bins)."""
    o = flow_options(recipe, n_targets, n_context)
    same = {k: v for k, v in o.items() if FLASHSIM_JETS.get(k) == v}
    return (f"neural spline flow: {o['steps']} steps ({recipe.reading} reading), {o['features']} targets | "
            f"{o['context_dim']} conditioning, ResidualNet(hidden {o['hidden_features']}, {o['num_blocks']} blocks, "
            f"{o['activation']}, batch norm {o['batch_norm']}), {o['bins']} bins, tail bound {o['tail_bound']} "
            f"({len(same)}/{len(o)} options as the public code)")
