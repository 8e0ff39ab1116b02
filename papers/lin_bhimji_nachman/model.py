"""The conditional jet-mass GANs of Lin, Bhimji & Nachman (2019), built from gan4hep parts.

Generator (pT, eta, N_track, noise) -> mass and discriminator (pT, eta, N_track, mass) -> logit, both 160-80-40:
"both the Generator and Discriminator networks are composed of three hidden layers ... The first layer has 160
neurons, the second has 80 neurons, and the last hidden layer has 40 neurons. Additionally, the generator network is
made more robust by adding 50% dropout" (section 2.1). Noise: one skew-normal number per jet, alpha = 5 ("skew") or
0 ("noskew") (section 2.1; one number because Fig. 1 feeds "particles with their mass replaced by noise").
Variants: "vanilla" (BCE on the logit, Goodfellow's loss) and "wgan", whose critic has every weight and bias an
angle on the unit circle (CircleDense, eq. 2.2) and no clipping (section 2.2).

Preprocessing (our choice; the paper gives none): context log(pT), eta, N_track, each standardised on the
training half; the generator's target is m / pT standardised ("m_over_pt", default), turned back into a mass by
multiplying with the jet's pT, or the jet mass standardised ("mass", the most literal reading of "outputs a jet
mass"; it trained much more slowly here, see the README).

``build_flow`` is not in the paper (issue 20): a conditional normalising flow for the same one-dimensional target
given the same standardised context, p(target | log pT, eta, N_track). A coupling flow cannot split one feature, so
each step is an element-wise rational-quadratic spline (Durkan et al., "Neural Spline Flows", NeurIPS 2019) whose
bin widths, heights and derivatives come from a ResidualNet of the context alone (``gan4hep.flows.spline_flow``
with ``features=1``: its coupling mask transforms the single feature and feeds the conditioner only the context),
with an affine ``LULinear`` between steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import pandas as pd

from gan4hep import networks
from gan4hep.flows import Flow, spline_flow
from gan4hep.layers import CircleDense
from gan4hep.models import GAN
from gan4hep.noise import SkewNormalNoise
from gan4hep.preprocessing import Log, Pipeline, Standardise
from papers.lin_bhimji_nachman.recipe import NOISES, TARGETS, VARIANTS, Recipe

__all__ = ["LATENT_DIM", "CONTEXT", "NOISE_ALPHA", "VARIANTS", "NOISES", "TARGETS", "generator", "discriminator",
           "circle_critic", "context_pipeline", "fit_preprocessing", "target_values", "to_mass", "build", "build_flow",
           "training_arrays", "generate_mass"]

LATENT_DIM = 1
CONTEXT = ("pt", "eta", "ntrk")
NOISE_ALPHA = {"skew": 5.0, "noskew": 0.0}


def generator(hidden: Sequence[int] = (160, 80, 40), dropout: float = 0.5, activation: str = "relu") -> keras.Model:
    """(noise, log pT, eta, N_track) -> target, all standardised: inputs (batch, 4), output (batch, 1)."""
    return networks.mlp(LATENT_DIM + len(CONTEXT), tuple(hidden), 1, activation=activation, dropout=dropout,
                        name="generator")


def discriminator(hidden: Sequence[int] = (160, 80, 40), activation: str = "relu") -> keras.Model:
    """Vanilla discriminator (target, context) (batch, 4) -> logit (batch, 1); the probability is its sigmoid,
    inside the BCE loss."""
    return networks.mlp(1 + len(CONTEXT), tuple(hidden), 1, activation=activation, name="discriminator")


def circle_critic(hidden: Sequence[int] = (160, 80, 40)) -> keras.Model:
    """Modified-WGAN critic (eq. 2.2), (batch, 4) -> (batch, 1): hidden layers |sum_m x_m e^{i theta} + e^{i phi}|
    with psi = identity (any ReLU-type psi is the identity on a modulus; our reading), and a signed output Re(...)
    so that the Wasserstein score is unbounded in both directions (CircleDense output_mode="real")."""
    model = keras.Sequential(name="circle_critic")
    model.add(keras.Input(shape=(1 + len(CONTEXT),)))
    for width in hidden:
        model.add(CircleDense(width))
    model.add(CircleDense(1, output_mode="real"))
    return model


def context_pipeline() -> Pipeline:
    """Unfitted context preprocessing: log of pT (GeV), then every column standardised."""
    return Pipeline([Log(columns=[0]), Standardise()], names=list(CONTEXT))


def target_values(jets: pd.DataFrame, target: str) -> np.ndarray:
    """The generator's target in physical units before standardisation, (n_jets,): the mass (GeV) or m / pT.

    Raises:
        ValueError: unknown ``target``.
    """
    mass = jets["mass"].to_numpy(float)
    if target == "mass":
        return mass
    if target == "m_over_pt":
        return mass / jets["pt"].to_numpy(float)
    raise ValueError(f"unknown target {target!r}; choose one of {TARGETS}")


def fit_preprocessing(train_jets: pd.DataFrame, target: str) -> tuple[Pipeline, Pipeline]:
    """(target pipeline, context pipeline), fitted on the training half."""
    tgt = Pipeline([Standardise()], names=[target])
    tgt.fit(target_values(train_jets, target)[:, None])
    ctx = context_pipeline()
    ctx.fit(train_jets[list(CONTEXT)].to_numpy(float))
    return tgt, ctx


def to_mass(values, jets: pd.DataFrame, target: str) -> np.ndarray:
    """Generated target (n_jets,) in physical units -> jet mass (GeV), clipped at 0 (a mass is non-negative; the
    linear output is not)."""
    values = np.asarray(values, dtype=float)
    if target == "m_over_pt":
        values = values * jets["pt"].to_numpy(float)
    return np.maximum(values, 0.0)


def build(recipe: Recipe, variant: str, noise: str, preprocessing: Pipeline | None = None,
          context_preprocessing: Pipeline | None = None, seed: int | None = None) -> GAN:
    """A compiled conditional GAN of ``variant`` with ``noise``, carrying the fitted pipelines.

    Optimisers: Adam ("Network weights were chosen using the Adam optimizer with early stopping", section 2.1);
    rates, betas and critic steps from the recipe (ours): vanilla ``lr_vanilla``, ``betas_vanilla``, one critic
    step; WGAN ``lr_wgan``, ``betas_wgan``, ``n_critic_wgan`` critic steps. ``seed`` seeds the noise sampler used
    in training (the weights follow the global seed: ``gan4hep.training.train`` sets it before calling this).

    Raises:
        ValueError: unknown ``variant`` or ``noise``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    if noise not in NOISE_ALPHA:
        raise ValueError(f"unknown noise {noise!r}; choose one of {sorted(NOISE_ALPHA)}")
    if variant == "vanilla":
        critic, objective, n_critic = discriminator(recipe.hidden, recipe.activation), "bce", 1
        lr, betas = recipe.lr_vanilla, recipe.betas_vanilla
    else:
        critic, objective, n_critic = circle_critic(recipe.hidden), "wgan", recipe.n_critic_wgan
        lr, betas = recipe.lr_wgan, recipe.betas_wgan
    gan = GAN(generator(recipe.hidden, recipe.dropout, recipe.activation), critic, latent_dim=LATENT_DIM,
              noise=SkewNormalNoise(NOISE_ALPHA[noise], seed=seed), objective=objective, n_critic=n_critic,
              context_dim=len(CONTEXT), preprocessing=preprocessing, context_preprocessing=context_preprocessing)
    gan.compile(keras.optimizers.Adam(lr, beta_1=betas[0], beta_2=betas[1]),
                keras.optimizers.Adam(lr, beta_1=betas[0], beta_2=betas[1]))
    gan.target = recipe.target
    return gan


def build_flow(recipe: Recipe, preprocessing: Pipeline | None = None,
               context_preprocessing: Pipeline | None = None, steps: int | None = None) -> Flow:
    """The compiled conditional flow of a recipe (``recipe.model == "flow"``; ours, issue 20): target (batch, 1)
    given context (batch, 3), both standardised as for the GANs.

    ``gan4hep.flows.spline_flow(1, context_dim=3)`` with ``flow_transforms`` steps of a ``flow_bins``-bin
    rational-quadratic spline on [-``flow_tail_bound``, ``flow_tail_bound``] (linear tails), each step's spline
    parameters from a ResidualNet of the context (``flow_hidden`` units, ``flow_blocks`` blocks, ReLU, no batch
    norm); Adam(``lr_flow``) with a cosine decay to 1 % over ``steps`` optimizer updates. The weights follow the
    global seed (``gan4hep.training.train`` sets it before calling this).

    Args:
        recipe: the run's recipe.
        preprocessing, context_preprocessing: the fitted pipelines, attached so that ``sample`` takes the context
            and returns the target in physical units (m / pT or GeV).
        steps: length of the learning-rate schedule (default: ``recipe.epochs`` x 100).
    """
    flow = spline_flow(1, context_dim=len(CONTEXT), preprocessing=preprocessing,
                       context_preprocessing=context_preprocessing, steps=recipe.flow_transforms,
                       bins=recipe.flow_bins, tail_bound=recipe.flow_tail_bound, hidden_features=recipe.flow_hidden,
                       num_blocks=recipe.flow_blocks, name="lin_bhimji_nachman_flow")
    lr = keras.optimizers.schedules.CosineDecay(recipe.lr_flow, max(int(steps or recipe.epochs * 100), 1),
                                                alpha=0.01)
    flow.compile(keras.optimizers.Adam(lr))
    flow.target = recipe.target
    return flow


def training_arrays(jets: pd.DataFrame, target: str, preprocessing: Pipeline,
                    context_preprocessing: Pipeline) -> tuple[np.ndarray, np.ndarray]:
    """(x, context) float32 arrays of shapes (n_jets, 1) and (n_jets, 3) for training: the standardised target and
    context of ``jets``."""
    x = preprocessing.transform(target_values(jets, target)[:, None]).astype(np.float32)
    c = context_preprocessing.transform(jets[list(CONTEXT)].to_numpy(float)).astype(np.float32)
    return x, c


def generate_mass(gan: GAN | Flow, jets: pd.DataFrame, copies: int = 1, seed: int = 0) -> np.ndarray:
    """``copies`` generated masses (GeV) per jet of ``jets``, shape (copies, n_jets); generator in inference mode
    (dropout off). ``gan``: a GAN, a flow or their exported samplers, with a ``target`` attribute."""
    context = np.tile(jets[list(CONTEXT)].to_numpy(float), (copies, 1))
    values = gan.sample(len(context), context=context, seed=seed)[:, 0].reshape(copies, len(jets))
    return np.stack([to_mass(v, jets, gan.target) for v in values])
