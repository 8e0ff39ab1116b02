"""Each paper's generative model as its own builder makes it, for the benchmarks: the networks, objective,
optimisers and preprocessing of the ``paper`` (or ``quick``) preset, the preprocessing fitted on a small synthetic
table of the right columns (speed does not depend on the values; no sample file is needed).

``CASES`` maps a name to a ``build(preset) -> Case``:

* ``lebese_ruan``: ``papers.lebese_ruan.model.build_gan(recipe, pipeline)``, generator 128 -> 16 ... 512 -> 8
  (trainable Swish, sigmoid), WGAN-GP; the pipeline of ``papers.lebese_ruan.data.prepare`` (tail cut, min-max).
* ``lin_bhimji_nachman``: ``papers.lin_bhimji_nachman.model.build(recipe, "vanilla", "skew", ...)``, the
  conditional jet-mass generator (noise, log pT, eta, N_track) -> 160-80-40 -> m / pT.
* ``butter_plehn_winterhalder``: ``papers.butter_plehn_winterhalder.model.build_gan(recipe)``, 18 -> 10 x 512 ->
  18 -> on-shell layer -> 24, BCE + Roth + MMD on the resonance masses.
* ``flashsim_flow``: ``gan4hep.flows.flashsim_flow()`` (FlashSim's jet flow: 17 targets given 14 conditioning
  values, 17 spline couplings with 10-block residual conditioners, 47,986,595 parameters; ``quick``: the same
  layout with 64 hidden features, 2 blocks, 16 bins as papers/vaselli's quick preset, and 6 coupling steps
  instead of 17, because tracing and XLA-compiling the 17-step training step takes minutes on a loaded CPU).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


@dataclass
class Case:
    """One paper's model with what the benchmarks need to drive it.

    Attributes:
        name, paper: labels.
        model: the ``GenerativeModel`` (a compiled ``GAN``, or a ``Flow``).
        network: the sampling network, (batch, latent + context) -> (batch, features) in model space (GANs), or
            None for a flow.
        latent_dim, context_dim, n_features: sizes.
        columns: feature names (for writing tables).
        context: ``context(n, rng) -> (n, context_dim)`` physical-unit context for ``model.sample``, or None.
        model_context: ``model_context(n, rng)`` the same in model space (for the compiled network path).
        sample: the simulated sample this generator replaces (``benchmarks.simulation.SAMPLES``).
        batch_size: the preset's training batch size; n_critic: critic updates per generator step.
        training_data: ``training_data(n, rng)`` -> x or (x, context), model-space float32, for ``fit``.
    """

    name: str
    paper: str
    model: Any
    network: Any
    latent_dim: int
    context_dim: int
    n_features: int
    columns: list
    sample: str
    batch_size: int
    n_critic: int
    context: Callable | None = None
    model_context: Callable | None = None
    training_data: Callable | None = None
    notes: dict = field(default_factory=dict)


def _rng(seed=0):
    return np.random.default_rng(seed)


def lebese_ruan(preset: str = "paper") -> Case:
    import pandas as pd

    from papers.lebese_ruan import data, model
    from papers.lebese_ruan.recipe import PRESETS

    recipe = PRESETS[preset]
    rng = _rng(1)
    n = max(4 * recipe.batch_size, 20_000)
    df = pd.DataFrame(rng.gamma(2.0, 40.0, size=(n, len(model.FEATURES))), columns=list(model.FEATURES))
    pipeline = data.prepare(df, recipe).pipeline
    gan = model.build_gan(recipe, pipeline)

    def train(n, rng):
        return rng.uniform(size=(n, len(model.FEATURES))).astype("float32")

    return Case("lebese_ruan", "Lebese & Ruan 2021", gan, gan.sampling_network(), gan.latent_dim, 0,
                gan.n_features, list(model.FEATURES), "dilepton", recipe.batch_size, recipe.n_critic,
                training_data=train)


def lin_bhimji_nachman(preset: str = "paper") -> Case:
    import pandas as pd

    from papers.lin_bhimji_nachman import model
    from papers.lin_bhimji_nachman.recipe import PRESETS

    recipe = PRESETS[preset]

    def jets(n, rng):
        pt = 200.0 * np.exp(rng.exponential(0.5, n))
        return pd.DataFrame({"pt": pt, "eta": rng.uniform(-2, 2, n), "ntrk": rng.integers(5, 60, n).astype(float),
                             "mass": pt * rng.uniform(0.02, 0.3, n)})

    train_jets = jets(20_000, _rng(2))
    tgt, ctx = model.fit_preprocessing(train_jets, recipe.target)
    gan = model.build(recipe, "vanilla", "skew", tgt, ctx, seed=0)

    def context(n, rng):
        return jets(n, rng)[list(model.CONTEXT)].to_numpy(float)

    def model_context(n, rng):
        return ctx.transform(context(n, rng)).astype("float32")

    def train(n, rng):
        return model.training_arrays(jets(n, rng), recipe.target, tgt, ctx)

    return Case("lin_bhimji_nachman", "Lin, Bhimji & Nachman 2019 (vanilla, skew)", gan, gan.sampling_network(),
                gan.latent_dim, len(model.CONTEXT), gan.n_features, ["mass"], "qcd_jets", recipe.batch_size, 1,
                context=context, model_context=model_context, training_data=train)


def butter_plehn_winterhalder(preset: str = "paper") -> Case:
    from papers.butter_plehn_winterhalder import model
    from papers.butter_plehn_winterhalder.recipe import PRESETS

    recipe = PRESETS[preset]
    gan = model.build_gan(recipe)

    def train(n, rng):
        p = rng.normal(0, 0.3, size=(n, model.N_PARTICLES, 3))
        e = np.sqrt((p ** 2).sum(-1, keepdims=True) + 1e-4)
        return np.concatenate([p, e], -1).reshape(n, -1).astype("float32")

    return Case("butter_plehn_winterhalder", "Butter, Plehn & Winterhalder 2019", gan, gan.sampling_network(),
                gan.latent_dim, 0, gan.n_features, list(model.COLUMNS), "ttbar_partons", recipe.batch_size,
                gan.n_critic, training_data=train, notes={"jit_compile": recipe.jit_compile})


def flashsim_flow(preset: str = "paper") -> Case:
    import keras

    from gan4hep.flows import FLASHSIM_JETS, flashsim_flow as build
    from papers.vaselli.recipe import PRESETS

    overrides = {} if preset == "paper" else dict(steps=6, hidden_features=64, num_blocks=2, bins=16, tail_bound=3.5)
    flow = build(**overrides)
    # the train step under XLA as papers/vaselli's recipe compiles it
    flow.compile(keras.optimizers.Adam(1e-5 if preset == "paper" else 1e-3), jit_compile=PRESETS[preset].jit_compile)
    d, c = FLASHSIM_JETS["features"], FLASHSIM_JETS["context_dim"]

    def context(n, rng):
        return rng.normal(size=(n, c)).astype("float32")

    def train(n, rng):
        return rng.normal(0, 0.3, size=(n, d)).clip(-0.9, 0.9).astype("float32"), context(n, rng)

    return Case("flashsim_flow", "Vaselli 2022 (FlashSim jets flow)", flow, None, d, c, d,
                [f"target_{i}" for i in range(d)], "flashsim_jets", 2048 if preset == "paper" else 512, 1,
                context=context, model_context=context, training_data=train,
                notes={"overrides": overrides})


CASES = {"lebese_ruan": lebese_ruan, "lin_bhimji_nachman": lin_bhimji_nachman,
         "butter_plehn_winterhalder": butter_plehn_winterhalder, "flashsim_flow": flashsim_flow}
