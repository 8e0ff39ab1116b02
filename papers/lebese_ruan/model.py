"""Lebese & Ruan (2021) WGAN-GP networks, built from gan4hep parts, and the GAN of a recipe (``build_gan``).

Section 4.3: "Each layer of the WGAN-GP generator (G) has Dense Layers, a trainable Swish function as
intra-activation functions and a Sigmoid at the end, where (G) consumes the latent space vectors with six hidden
layers with in an increasing arrangement culminating to an output layer being the size of the number of MC
specific features. A similar-like structure is used in the critic (C) ... except that batch normalization is never
an option. There are LeakyReLU functions in between and a Linear function used in the final outputs layer."
Layer widths and the Swish parameterisation are not given: our choices are named options (README, Ambiguities).

``build_flow`` is not in the paper (issue 20): a rational-quadratic spline coupling flow (Durkan et al., "Neural
Spline Flows", NeurIPS 2019; ``gan4hep.flows.spline_transform``) on the same features, for the comparison in the README.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

import keras
import numpy as np
from keras import ops

from gan4hep.flows import Flow, spline_transform
from gan4hep.layers import DileptonFeatures
from gan4hep.models import GAN
from gan4hep.networks import mlp
from gan4hep.objectives import BCE, Objective, WassersteinClip, WassersteinGP
from gan4hep.physics import DILEPTON_FEATURES, DILEPTON_UNDERLYING, dilepton_features_massless

from papers.lebese_ruan.recipe import Recipe

FEATURES = DILEPTON_FEATURES  # pt_l0 pt_l1 pt_ll m_ll met mt dphi_ll dr_ll (gan4hep.physics)
LATENT_DIM = 128  # "random noise vectors of the size 128"
GENERATOR_WIDTHS = (16, 32, 64, 128, 256, 512)  # our choice: six increasing hidden layers
CRITIC_WIDTHS = tuple(reversed(GENERATOR_WIDTHS))  # "similar-like structure", decreasing
NOISE = "normal_to_uniform"  # "uniformly transformed random noise vectors ... drawn from Gaussian distributions"
N_UNDERLYING = 6  # pT0, pT1 / pT0, |Delta eta|, Delta phi, MET, azimuth of MET relative to the dilepton pT
KINEMATICS = "kinematics.json"  # in the run folder: the kinematic generator's data-derived ranges


def build_generator(latent_dim: int = LATENT_DIM, widths: Sequence[int] = GENERATOR_WIDTHS, swish: str = "per_unit",
                    n_out: int = len(FEATURES)) -> keras.Model:
    """Dense layers with trainable Swish, sigmoid output: ``(batch, latent_dim)`` noise -> ``(batch, n_out)`` in
    [0, 1] (the min-max scaled features)."""
    act = {"per_unit": "trainable_swish", "scalar": "trainable_swish_scalar"}[swish]
    return mlp(latent_dim, widths, n_out, activation=act, output_activation="sigmoid", name="generator")


def build_critic(n_in: int = len(FEATURES), widths: Sequence[int] = CRITIC_WIDTHS, alpha: float = 0.2) -> keras.Model:
    """Dense layers with LeakyReLU (slope ``alpha``: our choice), no batch normalisation, linear output:
    ``(batch, n_in)`` scaled features -> ``(batch, 1)`` score."""
    return mlp(n_in, widths, 1, activation="leaky_relu", alpha=alpha, name="critic")


@keras.saving.register_keras_serializable(package="lebese_ruan")
class DileptonKinematics(keras.layers.Layer):
    """Map 6 numbers in [0, 1] to the 8 features, so the identities between them hold exactly.

    Inputs (sigmoid outputs) u0..u5 become pT0 = a0 + u0 (b0 - a0), pT1 = pT0 * u1 (so pT1 <= pT0),
    |Delta eta| = u2 * deta_max, Delta phi = pi u3, MET = u4 * met_max, and phi_rel = pi u5, the azimuth of MET
    relative to the dilepton pT. The 8 features are then ``gan4hep.physics.dilepton_features_massless`` of these
    (the same definition the numpy code uses), and the output is them min-max scaled with (``feature_min``,
    ``feature_max``), i.e. what the critic sees for MC events.

    Args:
        pt0_range: [a0, b0], range of the leading lepton pT [GeV].
        deta_max: largest |Delta eta|; met_max: largest MET [GeV].
        feature_min, feature_max: 8 values each, the min-max scaling of the features (physical units).
    """

    EPS = 1e-12  # [GeV^2] under each square root: finite gradients where a quantity is 0

    def __init__(self, pt0_range, deta_max, met_max, feature_min, feature_max, **kwargs):
        super().__init__(**kwargs)
        self.pt0_range = [float(v) for v in pt0_range]
        self.deta_max = float(deta_max)
        self.met_max = float(met_max)
        self.feature_min = [float(v) for v in feature_min]
        self.feature_max = [float(v) for v in feature_max]

    def physical(self, u):
        """The 8 features in physical units (GeV, rad), shape (batch, 8), from ``u`` of shape (batch, 6)."""
        a, b = self.pt0_range
        pt0 = a + u[:, 0] * (b - a)
        f = dilepton_features_massless(pt0, pt0 * u[:, 1], u[:, 2] * self.deta_max, math.pi * u[:, 3],
                                       u[:, 4] * self.met_max, math.pi * u[:, 5], lib=ops, eps=self.EPS)
        return ops.stack([f[name] for name in FEATURES], axis=1)

    def call(self, u):
        lo = ops.convert_to_tensor(self.feature_min, u.dtype)
        hi = ops.convert_to_tensor(self.feature_max, u.dtype)
        return (self.physical(u) - lo) / (hi - lo)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(FEATURES))

    def get_config(self):
        return {**super().get_config(), "pt0_range": self.pt0_range, "deta_max": self.deta_max,
                "met_max": self.met_max, "feature_min": self.feature_min, "feature_max": self.feature_max}


def kinematics_config(train_physical: np.ndarray, pipeline=None) -> dict:
    """Ranges of the kinematic generator's underlying quantities, from the training sample (data-derived, so they
    are stored in the run as ``kinematics.json``, not in the recipe).

    Args:
        train_physical: ``(n, 8)`` training features in physical units, columns ``FEATURES``.
        pipeline: the run's fitted preprocessing; its final min-max (after any clipping) then scales the output
            like the critic's input. Without it, the sample's own min and max.

    Returns:
        The keyword arguments of ``DileptonKinematics`` (JSON-ready).
    """
    lo, hi = train_physical.min(axis=0), train_physical.max(axis=0)
    if pipeline is not None:
        lo, hi = pipeline.steps[-1].min_, pipeline.steps[-1].max_
    deta = np.sqrt(np.maximum(train_physical[:, 7] ** 2 - train_physical[:, 6] ** 2, 0.0))
    return dict(pt0_range=[float(lo[0]), float(hi[0])], deta_max=float(deta.max() * 1.05),
                met_max=float(hi[4] * 1.05), feature_min=[float(v) for v in lo], feature_max=[float(v) for v in hi])


def load_kinematics(run) -> dict | None:
    """The ``kinematics_config`` stored in a run folder (``gan4hep.runs.Run``), or None if it has none."""
    path = run / KINEMATICS
    return json.loads(path.read_text()) if path.exists() else None


def build_kinematic_generator(kinematics: DileptonKinematics, latent_dim: int = LATENT_DIM,
                              widths: Sequence[int] = GENERATOR_WIDTHS, swish: str = "per_unit") -> keras.Model:
    """The same network emitting 6 underlying quantities, followed by ``DileptonKinematics``:
    ``(batch, latent_dim)`` -> ``(batch, 8)`` scaled features."""
    body = build_generator(latent_dim, widths, swish, n_out=N_UNDERLYING)
    return keras.Sequential([keras.Input((latent_dim,)), *body.layers, kinematics], name="kinematic_generator")


def objective(recipe: Recipe) -> Objective:
    """The recipe's adversarial objective: ``wgan_gp`` (WassersteinGP, lambda = ``gp_weight``), ``bce`` (vanilla
    GAN) or ``wgan_clip`` (weight clipping at +-``clip``); names as in ``gan4hep.objectives``.

    Raises:
        ValueError: another name.
    """
    makers = {"wgan_gp": lambda: WassersteinGP(recipe.gp_weight), "bce": BCE,
              "wgan_clip": lambda: WassersteinClip(recipe.clip)}
    if recipe.objective not in makers:
        raise ValueError(f"objective {recipe.objective!r}: choose one of {', '.join(makers)}")
    return makers[recipe.objective]()


def build_gan(recipe: Recipe, pipeline, kinematics: Mapping | None = None) -> GAN:
    """The compiled GAN of a recipe: networks, objective, ``n_critic``, EMA and the two Adam optimizers.

    Args:
        recipe: the run's recipe.
        pipeline: the fitted preprocessing, attached so that ``sample`` returns physical units.
        kinematics: ``kinematics_config`` output; required for ``recipe.generator == "kinematic"``.

    Raises:
        ValueError: a kinematic generator without ``kinematics``, or an unknown generator kind.
    """
    if recipe.generator == "kinematic":
        if kinematics is None:
            raise ValueError("the kinematic generator needs its ranges (kinematics_config, the run's kinematics.json)")
        generator = build_kinematic_generator(DileptonKinematics(**kinematics), swish=recipe.swish)
    elif recipe.generator == "paper":
        generator = build_generator(swish=recipe.swish)
    else:
        raise ValueError(f"generator {recipe.generator!r}: choose 'paper' or 'kinematic'")
    loss = objective(recipe)  # before the critic: its random state is drawn in this order since the first runs
    gan = GAN(generator, build_critic(), latent_dim=generator.inputs[0].shape[-1], noise=NOISE, objective=loss,
              n_critic=recipe.n_critic, preprocessing=pipeline, ema_decay=recipe.ema_decay or None)

    def adam():
        return keras.optimizers.Adam(recipe.lr, beta_1=recipe.beta1, beta_2=recipe.beta2)

    gan.compile(g_optimizer=adam(), d_optimizer=adam())
    return gan


def build_flow(recipe: Recipe, pipeline, support: tuple[np.ndarray, np.ndarray] | None = None) -> Flow:
    """The compiled flow of a recipe (``recipe.model == "flow"``): ``gan4hep.flows.spline_flow`` with
    ``flow_transforms`` coupling steps of ``flow_bins``-bin rational-quadratic splines on
    [-``flow_tail_bound``, ``flow_tail_bound``] (linear tails), each conditioned by a ResidualNet of ``flow_hidden``
    units and ``flow_blocks`` blocks (no batch norm); Adam(``lr``, ``beta1``, ``beta2``) with a cosine decay of the
    learning rate to 1 % over ``steps``.

    ``flow_space="features"``: the density is on the 8 features. ``"underlying"``: on the 6 quantities they are
    functions of (``gan4hep.physics.DILEPTON_UNDERLYING``), followed by ``gan4hep.layers.DileptonFeatures`` (the
    exact map to the 8 features) and the selection's ``support`` (events outside redrawn), so pT(l1) <= pT(l0),
    Delta R >= Delta phi and the pT(ll), m(ll), m_T identities hold for every event (README, "Flow").

    Args:
        recipe: the run's recipe.
        pipeline: the fitted flow preprocessing (``data.flow_pipeline`` or ``data.underlying_pipeline``), attached
            so that ``sample`` returns physical units inside the selection's support.
        support: ``(low, high)`` of the 8 features (``data.support``); needed for ``"underlying"``.

    Raises:
        ValueError: ``"underlying"`` without a support; an unknown ``flow_space``.
    """
    extra = {}
    if recipe.flow_space == "underlying":
        if support is None:
            raise ValueError("flow_space='underlying' needs the selection's support (the event-level tail cut)")
        extra = dict(output_layer=DileptonFeatures(name="dilepton_features"), support=support)
    elif recipe.flow_space != "features":
        raise ValueError(f"flow space {recipe.flow_space!r}: choose features or underlying")
    features = len(DILEPTON_UNDERLYING) if recipe.flow_space == "underlying" else len(FEATURES)
    transform = spline_transform(features, steps=recipe.flow_transforms, bins=recipe.flow_bins,
                                 tail_bound=recipe.flow_tail_bound, hidden_features=recipe.flow_hidden,
                                 num_blocks=recipe.flow_blocks)
    flow = Flow(transform, preprocessing=pipeline, name="lebese_ruan_flow", **extra)
    lr = keras.optimizers.schedules.CosineDecay(recipe.lr, max(int(recipe.steps), 1), alpha=0.01)
    flow.compile(keras.optimizers.Adam(lr, beta_1=recipe.beta1, beta_2=recipe.beta2))
    return flow


def build_model(recipe: Recipe, pipeline, kinematics: Mapping | None = None,
                support: tuple[np.ndarray, np.ndarray] | None = None) -> GAN | Flow:
    """The recipe's model: ``build_flow`` for ``recipe.model == "flow"`` (with the selection's ``support``), else
    ``build_gan``.

    Raises:
        ValueError: an unknown model family (and as ``build_gan`` / ``build_flow``).
    """
    if recipe.model == "flow":
        return build_flow(recipe, pipeline, support)
    if recipe.model != "gan":
        raise ValueError(f"model {recipe.model!r}: choose 'gan' or 'flow'")
    return build_gan(recipe, pipeline, kinematics)
