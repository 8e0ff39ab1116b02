"""Butter, Plehn & Winterhalder (arXiv:1907.03764): the ttbar -> 6 quarks GAN, built from gan4hep parts.

Generator: z (18, normal) -> 10 x 512 LeakyReLU -> 18 three-momentum components -> on-shell layer
E = sqrt(m^2 + p^2) -> 24 four-vector components. Discriminator: 24 -> 10 x 512 LeakyReLU -> 1 logit. With these
shapes the trainable weights are 2,382,866 (G) and 2,377,217 (D): the slides' table. Loss: BCE with the Roth et
al. regulariser (lambda_D = 1e-3) plus lambda_G = 1 times an MMD with Breit-Wigner kernels on the masses of the two
W candidates (0+1, 3+4) and the two tops (0+1+2, 3+4+5). Momenta are divided by a fixed 450 GeV (the authors'
public code, EventGAN). Column order of an event: p{i}_px, p{i}_py, p{i}_pz, p{i}_E for i = 0..5 (q, q', b from
the top, q, q', b from the anti-top).

``build_gan(recipe)`` builds and compiles the GAN of a ``recipe.Recipe``. An exported sampler (``model.keras``)
contains the core's ``gan4hep.layers.OnShell`` layer, so ``gan4hep.models.load_sampler`` reads it without this module.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from gan4hep import networks, objectives, penalties
from gan4hep.layers import OnShell, TTbarDecayChain
from gan4hep.physics import TTBAR_DECAY_COORDINATES, ttbar_decay_coordinates
from gan4hep.models import GAN
from gan4hep.noise import NormalNoise
from gan4hep.preprocessing import Scale

N_PARTICLES = 6
LATENT_DIM = 18                     # EventGAN: latent_dim 18 (= 3 x 6 generated components)
SCALE = 450.0                       # EventGAN: "scaler 450 ... such that stdev(train_data) ~ 1"
MASSES = (0.0, 0.0, 4.7, 0.0, 0.0, 4.7)   # GeV; light quarks massless, b 4.7 GeV as in data_prep.ttbar_partons
UNITS, LAYERS = 512, 10             # slides: "Layers 10, Units per layer 512"
LEAKY_ALPHA = 0.3                   # tf.keras LeakyReLU() default slope, used by EventGAN
# Resonance candidates of the MMD: (name, indices of the quarks whose four-vectors are summed).
RESONANCES = (("W1", (0, 1)), ("W2", (3, 4)), ("t1", (0, 1, 2)), ("t2", (3, 4, 5)))
# GeV: physical widths of the W (2.1) and the top (1.5), one per candidate, the default Breit-Wigner kernel widths
# (README, ambiguity 1: EventGAN's card pairs them the other way round).
PHYSICAL_WIDTHS = (2.1, 2.1, 1.5, 1.5)
COLUMNS = [f"p{i}_{c}" for i in range(N_PARTICLES) for c in ("px", "py", "pz", "E")]


INITS = ("glorot", "kaiming")


def _dense(init: str):
    """Dense-layer factory for ``networks.mlp`` (None: the default Dense). "glorot": Keras' default Glorot-uniform
    (the paper names no initialisation); through 10 LeakyReLU layers it shrinks the signal (x ~0.55 in variance
    per layer), so a new generator emits nearly the same event for every z (output spread ~4 GeV). "kaiming" (not
    in the paper): variance-preserving for LeakyReLU(0.3), scale 2 / (1 + 0.3^2) over fan-in.

    Raises:
        ValueError: an unknown initialisation.
    """
    if init == "glorot":
        return None
    if init == "kaiming":
        return lambda units: keras.layers.Dense(units, kernel_initializer=keras.initializers.VarianceScaling(
            2.0 / (1.0 + LEAKY_ALPHA**2), mode="fan_in", distribution="truncated_normal"))
    raise ValueError(f"unknown initialisation {init!r}; choose one of {INITS}")


def build_generator(init: str = "glorot") -> keras.Sequential:
    """z (batch, 18) -> 10 x 512 LeakyReLU -> (batch, 18) three-momenta -> OnShell -> (batch, 24), in units of
    ``SCALE`` (450 GeV)."""
    g = networks.mlp(LATENT_DIM, [UNITS] * LAYERS, 3 * N_PARTICLES, activation="leaky_relu", alpha=LEAKY_ALPHA,
                     dense=_dense(init), name="generator")
    g.add(OnShell(np.asarray(MASSES) / SCALE, name="on_shell"))
    return g


def build_discriminator(init: str = "glorot") -> keras.Sequential:
    """(batch, 24) scaled four-vectors -> 10 x 512 LeakyReLU -> (batch, 1) logit."""
    return networks.mlp(4 * N_PARTICLES, [UNITS] * LAYERS, 1, activation="leaky_relu", alpha=LEAKY_ALPHA,
                        dense=_dense(init), name="discriminator")


def resonance_masses(x):
    """Masses in GeV of the W and top candidates, (batch, 4) in ``RESONANCES`` order, from a scaled (batch, 24)
    tensor.

    m = sign(m^2) sqrt(|m^2|), so a generated event with m^2 < 0 is penalised rather than undefined.
    """
    out = []
    for _, idx in RESONANCES:
        s = sum(x[:, 4 * i:4 * i + 4] for i in idx)
        m2 = ops.square(s[:, 3]) - ops.square(s[:, 0]) - ops.square(s[:, 1]) - ops.square(s[:, 2])
        out.append(SCALE * ops.sign(m2) * ops.sqrt(ops.abs(m2) + 1e-12))
    return ops.stack(out, axis=1)


def mmd_penalty(kernel: str = "breit_wigner", widths=PHYSICAL_WIDTHS, weight: float = 1.0,
                extra_widths=()) -> penalties.MMDPenalty:
    """lambda_G * sum over the four candidates of MMD^2 of their masses (slides, EventGAN).

    Args:
        kernel: MMD kernel (gan4hep.kernels).
        widths: four kernel widths in GeV, for m(W1), m(W2), m(t1), m(t2).
        weight: lambda_G.
        extra_widths: option (not in the paper): further kernel widths in GeV added to every candidate (a
            multi-scale MMD).
    """
    widths = list(widths)
    if extra_widths:
        widths = [[w, *extra_widths] for w in widths]
    return penalties.MMDPenalty(observables=resonance_masses, widths=widths, kernel=kernel, weight=weight)


COMPONENT_WIDTHS = (0.05, 0.2)  # scaled units (x 450 GeV: 22.5 and 90 GeV), for component_mmd_penalty


def component_mmd_penalty(weight: float) -> penalties.MMDPenalty:
    """Option (not in the paper): weight * sum over the 24 four-vector components (scaled) of a Gaussian MMD^2 of
    each component's distribution, kernels of 22.5 and 90 GeV. A batch-level term against mode collapse: a
    generator that emits nearly the same event for every z is penalised on every component."""
    return penalties.MMDPenalty(widths=[COMPONENT_WIDTHS] * 4 * N_PARTICLES, kernel="gaussian", weight=weight,
                                name="mmd_components")


def optimizer(lr: float = 1e-3, decay: float = 0.1, decay_steps: int = 1000, beta_1: float = 0.5,
              beta_2: float = 0.9) -> keras.optimizers.Adam:
    """Adam with inverse-time decay lr / (1 + decay * floor(step / decay_steps)) (EventGAN's schedule)."""
    schedule = keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps, decay, staircase=True)
    return keras.optimizers.Adam(schedule, beta_1=beta_1, beta_2=beta_2)


def preprocessing() -> Scale:
    """The fixed preprocessing of an event: momenta / ``SCALE`` (450 GeV, EventGAN); nothing is fitted."""
    return Scale(SCALE).fit(np.zeros((1, 4 * N_PARTICLES)))


def build_gan(recipe) -> GAN:
    """The compiled GAN of a ``recipe.Recipe``: BCE + Roth regulariser (``reg_weight``), the MMD on the masses when
    ``use_mmd`` (False: the slides' "without the additional loss"), ``component_mmd_penalty`` when
    ``component_mmd`` > 0 (an option), Adam with inverse-time decay for both networks, normal noise seeded with
    ``recipe.seed``, the preprocessing attached (``sample`` returns GeV)."""
    pens = []
    if recipe.use_mmd:
        pens.append(mmd_penalty(recipe.kernel, recipe.widths, recipe.mmd_weight, recipe.mmd_extra_widths))
    if recipe.component_mmd:
        pens.append(component_mmd_penalty(recipe.component_mmd))
    gan = GAN(build_generator(recipe.init), build_discriminator(recipe.init), LATENT_DIM,
              noise=NormalNoise(seed=recipe.seed), objective=objectives.RothBCE(recipe.reg_weight), penalties=pens,
              ema_decay=recipe.ema_decay, preprocessing=preprocessing())
    gan.compile(optimizer(recipe.lr, recipe.decay, recipe.decay_steps),
                optimizer(recipe.lr, recipe.decay, recipe.decay_steps), jit_compile=recipe.jit_compile)
    return gan


# ---- the flow (issue 20; not in the paper) ------------------------------------------------------------------------
# A normalising flow on decay coordinates, our choice: in lab-frame momenta a narrow resonance is a thin curved
# surface a flow smears (facts file: W/top interquartile ranges of 20-24 GeV after 10 min); in these coordinates
# each resonance mass is one flow variable and the momenta are rebuilt exactly (``decay_chain``).
# Per event (16 numbers; the ttbar pT is exactly 0 at this parton level, so top 2's pT is minus top 1's):
#   px, py of top 1 (GeV); rapidities y of both tops; for each top t, then W: the mass as u = 1/2 + atan(2 (m - M)
#   / G) / pi in (0, 1) (the Breit-Wigner CDF of pole M and width G: a Breit-Wigner mass becomes uniform); the
#   direction (cos theta, phi) of the W in the top rest frame and of the quark q in the W rest frame (frames reached
#   by a pure boost from the lab; lab axes).
BW_POLES = {"W": (80.4, 2.1), "t": (173.0, 1.4)}   # GeV (PDG pole masses and widths, rounded): the u map only
FLOW_COLUMNS = list(TTBAR_DECAY_COORDINATES)  # gan4hep.physics
FLOW_U = [c for c in FLOW_COLUMNS if c.startswith("u_")]
FLOW_COS = [c for c in FLOW_COLUMNS if c.startswith("cos_")]
FLOW_PHI = [c for c in FLOW_COLUMNS if c.startswith("phi_")]
BEAM_GEV = 6500.0      # LHC beam energy at 13 TeV (data_prep.ttbar_partons: Beams:eCM = 13000): the top energy limit
U_EPS = 1e-6          # the u of a sampled mass is clamped to [U_EPS, 1 - U_EPS] (masses up to ~3e5 widths away)


def decay_coordinates(events: np.ndarray) -> np.ndarray:
    """(n, 24) events in GeV (``COLUMNS`` order) -> (n, 16) decay coordinates (``FLOW_COLUMNS``; GeV, 1, rad):
    the core's ``gan4hep.physics.ttbar_decay_coordinates`` with this sample's poles. The inverse is ``decay_chain``."""
    return ttbar_decay_coordinates(events, BW_POLES["W"], BW_POLES["t"])


def decay_chain(name: str = "decay_chain") -> TTbarDecayChain:
    """The flow's output layer: the core's ``gan4hep.layers.TTbarDecayChain`` with this sample's quark masses,
    Breit-Wigner poles and beam energy (a sampler with it loads without this package)."""
    return TTbarDecayChain(list(MASSES), BW_POLES["W"], BW_POLES["t"], BEAM_GEV, U_EPS, name=name)


@keras.saving.register_keras_serializable(package="gan4hep_bpw")
class DecayChain(TTbarDecayChain):
    """``decay_chain()`` under the name the samplers exported before the layer moved into the core carry
    (``gan4hep_bpw>DecayChain``, no arguments): those files still load."""

    def __init__(self, **kwargs):
        for key in ("masses", "w_pole", "t_pole", "beam_energy", "u_eps"):
            kwargs.pop(key, None)
        super().__init__(list(MASSES), BW_POLES["W"], BW_POLES["t"], BEAM_GEV, U_EPS, **kwargs)


def flow_preprocessing(coordinates: np.ndarray):
    """The flow's fitted preprocessing of (n, 16) decay coordinates: logit of the bounded ones (core
    ``gan4hep.flows.Logit``), then every column standardised. The mass variables u are mapped from the range of the
    training data [min, max] (not (0, 1)), so that sampled W and top masses stay inside the mass windows of the
    sample (like the GAN's data, e.g. m_W < 195 GeV): with (0, 1) a few events in 1e4 had m_W of ~1 TeV, whose
    clamped tops dominated the Pearson correlation of m_W and m_t. cos theta in [-1, 1], phi in [-pi, pi]."""
    from gan4hep.flows import preprocessing as fp
    from gan4hep.preprocessing import Pipeline, Standardise

    u = np.asarray(coordinates, dtype=np.float64)[:, [FLOW_COLUMNS.index(c) for c in FLOW_U]]
    steps = [fp.Logit(u.min(axis=0), u.max(axis=0), alpha=1e-6, columns=FLOW_U),
             fp.Logit(-1.0, 1.0, alpha=1e-6, columns=FLOW_COS),
             fp.Logit(-np.pi, np.pi, alpha=1e-6, columns=FLOW_PHI), Standardise()]
    return Pipeline(steps, names=FLOW_COLUMNS).fit(np.asarray(coordinates, dtype=np.float64))


def build_flow(recipe, pipeline):
    """The compiled flow of a recipe (``recipe.model == "flow"``; not in the paper): ``gan4hep.flows.spline_flow``
    on the 16 preprocessed decay coordinates, ``flow_transforms`` coupling steps of ``flow_bins``-bin
    rational-quadratic splines on [-``flow_tail_bound``, ``flow_tail_bound``], each conditioned by a ResidualNet of
    ``flow_hidden`` units and ``flow_blocks`` blocks; ``decay_chain()`` as the sampler's output layer, so ``sample``
    returns (n, 24) four-vectors in GeV like the GAN; Adam(``lr``) with a cosine decay to 1 % over ``steps``.

    Args:
        recipe: the run's ``recipe.Recipe``.
        pipeline: ``flow_preprocessing`` fitted on the training events' decay coordinates.
    """
    from gan4hep.flows import spline_flow

    flow = spline_flow(len(FLOW_COLUMNS), preprocessing=pipeline, steps=recipe.flow_transforms,
                       bins=recipe.flow_bins, tail_bound=recipe.flow_tail_bound, hidden_features=recipe.flow_hidden,
                       num_blocks=recipe.flow_blocks, name="bpw_flow", output_layer=decay_chain())
    schedule = keras.optimizers.schedules.CosineDecay(recipe.lr, max(int(recipe.steps), 1), alpha=0.01)
    flow.compile(keras.optimizers.Adam(schedule))
    return flow
