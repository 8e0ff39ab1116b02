"""The conditional jet-mass GANs of Lin, Bhimji & Nachman (2019), built from gan4hep parts.

Generator (pT, eta, N_track, noise) -> mass and discriminator (pT, eta, N_track, mass) -> logit, both 160-80-40:
"both the Generator and Discriminator networks are composed of three hidden layers ... The first layer has 160
neurons, the second has 80 neurons, and the last hidden layer has 40 neurons. Additionally, the generator network is
made more robust by adding 50% dropout" (section 2.1). Noise: one skew-normal number per jet, alpha = 5 ("skew") or
0 ("noskew") (section 2.1; one number because Fig. 1 feeds "particles with their mass replaced by noise").
Variants: "vanilla" (BCE on the logit, Goodfellow's loss) and "wgan", whose critic has every weight and bias an
angle on the unit circle (CircleDense, eq. 2.2) and no clipping (section 2.2).

Preprocessing (our choice; the paper gives none): conditions log(pT), eta, N_track, each standardised on the
training half; the generator's target is m / pT standardised ("m_over_pt", default), turned back into a mass by
multiplying with the jet's pT, or the jet mass standardised ("mass", the most literal reading of "outputs a jet
mass"; it trained much more slowly here, see the README).
"""

from __future__ import annotations

import keras
import numpy as np

from gan4hep import networks
from gan4hep.layers import CircleDense
from gan4hep.models import GAN
from gan4hep.noise import SkewNormalNoise
from gan4hep.preprocessing import Log, Pipeline, Standardise

HIDDEN = (160, 80, 40)
DROPOUT = 0.5
LATENT_DIM = 1
CONDITIONS = ("pt", "eta", "ntrk")
NOISE_ALPHA = {"skew": 5.0, "noskew": 0.0}
VARIANTS = ("vanilla", "wgan")
TARGETS = ("mass", "m_over_pt")


def generator(activation="relu"):
    return networks.mlp(LATENT_DIM + len(CONDITIONS), HIDDEN, 1, activation=activation, dropout=DROPOUT,
                        name="generator")


def discriminator(activation="relu"):
    """Vanilla discriminator: linear logit (the probability is its sigmoid, inside the BCE loss)."""
    return networks.mlp(1 + len(CONDITIONS), HIDDEN, 1, activation=activation, name="discriminator")


def circle_critic():
    """Modified-WGAN critic (eq. 2.2): hidden layers |sum_m x_m e^{i theta} + e^{i phi}| with psi = identity (any
    ReLU-type psi is the identity on a modulus; our reading), and a signed output Re(...) so that the Wasserstein
    score is unbounded in both directions (CircleDense output_mode="real")."""
    model = keras.Sequential(name="circle_critic")
    model.add(keras.Input(shape=(1 + len(CONDITIONS),)))
    for width in HIDDEN:
        model.add(CircleDense(width))
    model.add(CircleDense(1, output_mode="real"))
    return model


def condition_pipeline():
    return Pipeline([Log(columns=[0]), Standardise()], names=list(CONDITIONS))


def target_values(jets, target):
    """The generator's target in physical units before standardisation."""
    mass = jets["mass"].to_numpy(float)
    if target == "mass":
        return mass
    if target == "m_over_pt":
        return mass / jets["pt"].to_numpy(float)
    raise ValueError(f"unknown target {target!r}; choose one of {TARGETS}")


def to_mass(values, jets, target):
    """Generated target -> jet mass (GeV), clipped at 0 (a mass is non-negative; the linear output is not)."""
    values = np.asarray(values, dtype=float)
    if target == "m_over_pt":
        values = values * jets["pt"].to_numpy(float)
    return np.maximum(values, 0.0)


def build(variant="vanilla", noise="skew", train_jets=None, target="m_over_pt", lr=None, seed=None):
    """A compiled conditional GAN with preprocessing fitted on ``train_jets``.

    Optimisers: Adam ("Network weights were chosen using the Adam optimizer with early stopping", section 2.1);
    learning rates and betas are ours: vanilla 1e-3, beta1 0.5; WGAN 1e-4, betas (0.5, 0.9), 5 critic steps.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    if noise not in NOISE_ALPHA:
        raise ValueError(f"unknown noise {noise!r}; choose one of {sorted(NOISE_ALPHA)}")
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    cond = condition_pipeline()
    tgt = Pipeline([Standardise()], names=[target])
    if train_jets is not None:
        cond.fit(train_jets[list(CONDITIONS)].to_numpy(float))
        tgt.fit(target_values(train_jets, target)[:, None])
    if variant == "vanilla":
        critic, objective, n_critic, betas, default_lr = discriminator(), "bce", 1, (0.5, 0.999), 1e-3
    else:
        critic, objective, n_critic, betas, default_lr = circle_critic(), "wgan", 5, (0.5, 0.9), 1e-4
    lr = default_lr if lr is None else lr
    gan = GAN(generator(), critic, latent_dim=LATENT_DIM, noise=SkewNormalNoise(NOISE_ALPHA[noise], seed=seed),
              objective=objective, n_critic=n_critic, condition_dim=len(CONDITIONS), preprocessing=tgt,
              condition_preprocessing=cond)
    gan.compile(keras.optimizers.Adam(lr, beta_1=betas[0], beta_2=betas[1]),
                keras.optimizers.Adam(lr, beta_1=betas[0], beta_2=betas[1]))
    gan.target = target
    return gan


def training_arrays(gan, jets):
    """(x, c) float32 arrays for ``GAN.fit``: standardised target and conditions."""
    x = gan.preprocessing.transform(target_values(jets, gan.target)[:, None]).astype(np.float32)
    c = gan.condition_preprocessing.transform(jets[list(CONDITIONS)].to_numpy(float)).astype(np.float32)
    return x, c


def generate_mass(gan, jets, copies=1, seed=0):
    """``copies`` generated masses per jet (GeV), shape (copies, len(jets)); generator in inference mode."""
    cond = np.tile(jets[list(CONDITIONS)].to_numpy(float), (copies, 1))
    values = gan.generate(len(cond), condition=cond, seed=seed)[:, 0].reshape(copies, len(jets))
    return np.stack([to_mass(v, jets, gan.target) for v in values])
