"""The networks of the review figures, built from core parts (gan4hep.networks, objectives, penalties, models).

- ``build_camel_gan``: the 1-d GAN of Fig. 1 (sizes ours: the review gives none);
- ``SubtractionGAN`` / ``build_subtraction_gan``: the subtraction GAN of Fig. 3 (R Sec. 3.2, Eqs. (13)-(15)):
  the generator's events, mixed with true S events in the ratio of the cross sections, must look like B.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from gan4hep.models import GAN
from gan4hep.networks import mlp
from gan4hep.objectives import BCE, RothRegulariser, get_objective
from gan4hep.preprocessing import Pipeline

from papers.butter_plehn.recipe import Camel, Subtraction, Zll


def _adam(lr: float, beta1: float, beta2: float) -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(lr, beta_1=beta1, beta_2=beta2)


# ----------------------------------------------------------------------------------------------------- camel
def build_camel_gan(recipe: Camel, pipeline: Pipeline | None = None) -> GAN:
    """The compiled 1-d GAN of a ``recipe.Camel``: generator ``latent_dim -> widths -> 1`` (LeakyReLU, linear
    output), critic ``1 -> widths -> 1`` (LeakyReLU, logit), the recipe's objective, EMA of the generator.

    Args:
        recipe: a ``recipe.Camel``.
        pipeline: fitted preprocessing of x (attached: ``sample`` returns x in the truth's units).
    """
    generator = mlp(recipe.latent_dim, recipe.widths, 1, activation="leaky_relu", name="generator")
    critic = mlp(1, recipe.widths, 1, activation="leaky_relu", name="critic")
    objective = (get_objective("bce_roth", weight=recipe.roth_weight) if recipe.objective == "bce_roth"
                 else get_objective(recipe.objective))
    gan = GAN(generator, critic, latent_dim=recipe.latent_dim, noise="normal", objective=objective,
              preprocessing=pipeline, ema_decay=recipe.ema_decay or None)
    gan.compile(g_optimizer=_adam(recipe.lr, recipe.beta1, recipe.beta2),
                d_optimizer=_adam(recipe.lr, recipe.beta1, recipe.beta2))
    return gan


# ----------------------------------------------------------------------------------------------- subtraction
class SubtractionGAN(GAN):
    """The subtraction GAN (Butter, Plehn & Winterhalder, arXiv:1912.08824; R Sec. 3.2, Eqs. (13)-(15)).

    The training data are B events; the S events live in the model (``subtract``, ``(N_S, n_features)`` in the
    model's feature space) and a batch of them, drawn at random, enters every step. The critic tells B from the
    mixture ``w_S P_S + (1 - w_S) P_G`` with ``w_S = sigma_S / sigma_B``; its BCE loss weights the two parts of the
    mixture by ``w_S`` and ``1 - w_S``:

        L_D = <softplus(-D)>_B + w_S <softplus(D)>_S + (1 - w_S) <softplus(D)>_G,
        L_G = (1 - w_S) <softplus(-D)>_G     (non-saturating),

    so the optimal critic is ``sigmoid(D) = P_B / (P_B + w_S P_S + (1 - w_S) P_G)`` and the generator's optimum
    is ``P_G = (P_B - w_S P_S) / (1 - w_S)``, the normalised B - S. That needs ``sigma_B P_B >= sigma_S P_S``
    everywhere (check the binned B - S first). The Roth regulariser (Ref. [5]) is applied to B against G.

    Args:
        generator, critic, latent_dim: as ``GAN``.
        subtract: ``(N_S, n_features)`` S events in the model's space.
        s_fraction: ``w_S = sigma_S / sigma_B`` in [0, 1).
        roth_weight: gamma of the Roth regulariser (0: none).
        kwargs: further ``GAN`` arguments (preprocessing, noise, ema_decay).

    Raises:
        ValueError: ``s_fraction`` outside [0, 1) or ``subtract`` not 2-d with the generator's feature count.
    """

    def __init__(self, generator: keras.Model, critic: keras.Model, latent_dim: int, subtract: np.ndarray,
                 s_fraction: float, roth_weight: float = 0.0, **kwargs):
        regs = [RothRegulariser(roth_weight)] if roth_weight else []
        super().__init__(generator, critic, latent_dim, objective=BCE(regularisers=regs), **kwargs)
        if not 0.0 <= float(s_fraction) < 1.0:
            raise ValueError(f"s_fraction = sigma_S / sigma_B must be in [0, 1), got {s_fraction}")
        subtract = np.asarray(subtract, dtype=np.float32)
        if subtract.ndim != 2 or subtract.shape[1] != self.n_features:
            raise ValueError(f"subtract must be (N_S, {self.n_features}), got {subtract.shape}")
        self.s_fraction = float(s_fraction)
        self._subtract = tf.constant(subtract)
        self._n_subtract = int(len(subtract))
        self._draw = keras.random.SeedGenerator()  # seeded by keras.utils.set_random_seed (training.train)

    def _s_batch(self, batch):
        idx = keras.random.randint((batch,), 0, self._n_subtract, seed=self._draw)
        return ops.take(self._subtract, idx, axis=0)

    def train_step(self, data):
        x, _ = self._unpack(data)
        batch = ops.shape(x)[0]
        w_s = self.s_fraction
        w_g = 1.0 - w_s
        terms = {}
        s = self._s_batch(batch)
        z = self.noise.tf_sample(batch, self.latent_dim)
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            d_b, d_s, d_g = self.critic(x, training=True), self.critic(s, training=True), self.critic(fake,
                                                                                                     training=True)
            d_loss = (ops.mean(ops.softplus(-d_b)) + w_s * ops.mean(ops.softplus(d_s))
                      + w_g * ops.mean(ops.softplus(d_g)))
            for reg in self.objective.regularisers:
                terms[reg.name] = reg(lambda v: self.critic(v, training=True), x, fake)
                d_loss = d_loss + terms[reg.name]
        grads = tape.gradient(d_loss, self.critic.trainable_weights)
        self.d_optimizer.apply(grads, self.critic.trainable_weights)

        z = self.noise.tf_sample(batch, self.latent_dim)
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            g_loss = w_g * ops.mean(ops.softplus(-self.critic(fake, training=True)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply(grads, self.generator.trainable_weights)
        self.update_ema()
        return self.record(d_loss=d_loss, g_loss=g_loss, **terms)


def build_subtraction_gan(recipe: Subtraction, n_features: int, subtract: np.ndarray, s_fraction: float,
                          pipeline: Pipeline | None = None,
                          output_activation: str | None = None) -> SubtractionGAN:
    """The compiled subtraction GAN of a ``recipe.Subtraction``: MLPs of ``recipe.widths`` with LeakyReLU, BCE
    with the Roth regulariser, Adam for both (Ref. [5]'s card: lr 1e-3, betas (0.5, 0.9)).

    Args:
        recipe: a ``recipe.Subtraction``.
        n_features: event features (1 for the toy).
        subtract: ``(N_S, n_features)`` S events in the model's (preprocessed) space.
        s_fraction: ``sigma_S / sigma_B``.
        pipeline: fitted preprocessing of the features (attached to ``sample``).
        output_activation: of the generator ("sigmoid" for features min-max scaled to [0, 1]).
    """
    generator = mlp(recipe.latent_dim, recipe.widths, n_features, activation="leaky_relu",
                    output_activation=output_activation, name="generator")
    critic = mlp(n_features, recipe.widths, 1, activation="leaky_relu", name="critic")
    gan = SubtractionGAN(generator, critic, recipe.latent_dim, subtract, s_fraction, roth_weight=recipe.roth_weight,
                         noise="normal", preprocessing=pipeline)
    gan.compile(g_optimizer=_adam(recipe.lr, recipe.beta1, recipe.beta2),
                d_optimizer=_adam(recipe.lr, recipe.beta1, recipe.beta2))
    return gan


# ---------------------------------------------------------------------------------------------- Z -> mu mu
MUONS = ("mu0_pt", "mu0_eta", "mu0_phi", "mu1_pt", "mu1_eta", "mu1_phi")


class DimuonMass:
    """m_ll [GeV] of a batch in the model's (standardised) feature space, with Keras ops: the muon columns are
    un-standardised (``x std + mean``) and ``gan4hep.physics.pair_mass`` (massless muons) applied. The observable
    of the regression terms of R Eq. (19); it works on numpy arrays too (``lib=np``).

    Args:
        names: the feature names, in column order (must contain ``MUONS``).
        mean, std: per-feature standardisation of the model space (``(n_features,)``, physical units).

    Raises:
        ValueError: a muon column is missing from ``names``.
    """

    EPS = 1e-6  # [GeV^2] under the square root: a finite gradient at m = 0

    def __init__(self, names: Sequence[str], mean: Sequence[float], std: Sequence[float]):
        missing = [m for m in MUONS if m not in names]
        if missing:
            raise ValueError(f"DimuonMass needs the columns {missing}")
        self.idx = [list(names).index(m) for m in MUONS]
        self.mean = [float(mean[i]) for i in self.idx]
        self.std = [float(std[i]) for i in self.idx]

    def physical(self, x, lib=ops):
        """The six muon quantities in physical units: a list of ``(batch,)`` tensors."""
        return [x[:, i] * s + m for i, s, m in zip(self.idx, self.std, self.mean)]

    def __call__(self, x, lib=ops):
        """``(batch, 1)`` m_ll [GeV]."""
        from gan4hep.physics import pair_mass

        pt0, eta0, phi0, pt1, eta1, phi1 = self.physical(x, lib)
        m = pair_mass(pt0, pt1, eta0 - eta1, phi0 - phi1, lib=lib, eps=self.EPS)
        return lib.reshape(m, (-1, 1))


def build_zll_gan(recipe: Zll, pipeline: Pipeline, names: Sequence[str], target_mass: float | None = None,
                  target_width: float | None = None) -> GAN:
    """The compiled Z -> mu mu GAN of a ``recipe.Zll``: MLP generator (linear output in the standardised space)
    and critic with LeakyReLU (R Sec. 4.1), the BCE objective, and, with ``target_mass`` and ``target_width``
    given, the two batch-level regression terms of R Eq. (19) as ``gan4hep.penalties.PeakPenalty`` on
    ``DimuonMass``: ``lambda_m (m_Z - mean m_ll)^2 + lambda_sigma (sigma_Z - std m_ll)^2`` over each generated
    batch [GeV^2 x lambda].

    Args:
        recipe: a ``recipe.Zll``.
        pipeline: the fitted preprocessing, ``Pipeline([Standardise()])`` (its state defines ``DimuonMass``).
        names: the feature names.
        target_mass, target_width: m_Z and sigma_Z [GeV], measured on our detector-level sample (None: no terms).
    """
    from gan4hep.penalties import PeakPenalty

    n = len(names)
    generator = mlp(recipe.latent_dim, recipe.widths, n, activation="leaky_relu", alpha=recipe.alpha,
                    name="generator")
    critic = mlp(n, recipe.widths, 1, activation="leaky_relu", alpha=recipe.alpha, name="critic")
    penalties = []
    if target_mass is not None and target_width is not None:
        std = pipeline.steps[0]
        penalties.append(PeakPenalty(DimuonMass(names, std.mean_, std.std_), target_mean=[float(target_mass)],
                                     target_std=[float(target_width)], lambda_mean=recipe.lambda_m,
                                     lambda_std=recipe.lambda_sigma, name="z_terms"))
    gan = GAN(generator, critic, latent_dim=recipe.latent_dim, noise="normal", objective=BCE(),
              penalties=penalties, preprocessing=pipeline)
    gan.compile(g_optimizer=_adam(recipe.lr, recipe.beta1, recipe.beta2),
                d_optimizer=_adam(recipe.lr, recipe.beta1, recipe.beta2))
    return gan
