"""Lebese & Ruan (2021) WGAN-GP networks, built from gan4hep parts.

Section 4.3: "Each layer of the WGAN-GP generator (G) has Dense Layers, a trainable Swish function as
intra-activation functions and a Sigmoid at the end, where (G) consumes the latent space vectors with six hidden
layers with in an increasing arrangement culminating to an output layer being the size of the number of MC
specific features. A similar-like structure is used in the critic (C) ... except that batch normalization is never
an option. There are LeakyReLU functions in between and a Linear function used in the final outputs layer."
Layer widths and the Swish parameterisation are not given: our choices are named options (README, Ambiguities).
"""

from __future__ import annotations

import math

import keras
from keras import ops

from gan4hep.networks import mlp

FEATURES = ("pt_l0", "pt_l1", "pt_ll", "m_ll", "met", "mt", "dphi_ll", "dr_ll")
LATENT_DIM = 128  # "random noise vectors of the size 128"
GENERATOR_WIDTHS = (16, 32, 64, 128, 256, 512)  # our choice: six increasing hidden layers
CRITIC_WIDTHS = tuple(reversed(GENERATOR_WIDTHS))  # "similar-like structure", decreasing


def build_generator(latent_dim=LATENT_DIM, widths=GENERATOR_WIDTHS, swish="per_unit", n_out=len(FEATURES)):
    """Dense layers with trainable Swish, sigmoid output in [0, 1] (the min-max scaled features)."""
    act = {"per_unit": "trainable_swish", "scalar": "trainable_swish_scalar"}[swish]
    return mlp(latent_dim, widths, n_out, activation=act, output_activation="sigmoid", name="generator")


def build_critic(n_in=len(FEATURES), widths=CRITIC_WIDTHS, alpha=0.2):
    """Dense layers with LeakyReLU (slope ``alpha``: our choice), no batch normalisation, linear output."""
    return mlp(n_in, widths, 1, activation="leaky_relu", alpha=alpha, name="critic")


@keras.saving.register_keras_serializable(package="lebese_ruan")
class DileptonKinematics(keras.layers.Layer):
    """Map 6 numbers in [0, 1] to the 8 features, so the identities between them hold exactly.

    Inputs (sigmoid outputs) u0..u5 become pT0 = a0 + u0 (b0 - a0), pT1 = pT0 * u1 (so pT1 <= pT0),
    |Delta eta| = u2 * deta_max, Delta phi = pi u3, MET = u4 * met_max, and phi_rel = pi u5, the azimuth of MET
    relative to the dilepton pT. Then, for massless leptons:
      pT(ll)^2 = pT0^2 + pT1^2 + 2 pT0 pT1 cos(Delta phi),  m(ll)^2 = 2 pT0 pT1 (cosh Delta eta - cos Delta phi),
      m_T^2 = (sqrt(pT(ll)^2 + m(ll)^2) + MET)^2 - (pT(ll)^2 + MET^2 + 2 pT(ll) MET cos phi_rel),
      Delta R^2 = Delta phi^2 + Delta eta^2.
    The output is the 8 features min-max scaled with (``feature_min``, ``feature_max``), i.e. what the critic
    sees for MC events.
    """

    def __init__(self, pt0_range, deta_max, met_max, feature_min, feature_max, **kwargs):
        super().__init__(**kwargs)
        self.pt0_range = [float(v) for v in pt0_range]
        self.deta_max = float(deta_max)
        self.met_max = float(met_max)
        self.feature_min = [float(v) for v in feature_min]
        self.feature_max = [float(v) for v in feature_max]

    def physical(self, u):
        """The 8 features in physical units (GeV, rad) from ``u`` of shape (batch, 6)."""
        a, b = self.pt0_range
        pt0 = a + u[:, 0] * (b - a)
        pt1 = pt0 * u[:, 1]
        deta = u[:, 2] * self.deta_max
        dphi = math.pi * u[:, 3]
        met = u[:, 4] * self.met_max
        phi_rel = math.pi * u[:, 5]
        pt_ll2 = ops.maximum(pt0**2 + pt1**2 + 2 * pt0 * pt1 * ops.cos(dphi), 0.0)
        m_ll2 = ops.maximum(2 * pt0 * pt1 * (ops.cosh(deta) - ops.cos(dphi)), 0.0)
        pt_ll = ops.sqrt(pt_ll2 + 1e-12)
        et_ll = ops.sqrt(pt_ll2 + m_ll2 + 1e-12)
        mt2 = (et_ll + met) ** 2 - (pt_ll2 + met**2 + 2 * pt_ll * met * ops.cos(phi_rel))
        return ops.stack([pt0, pt1, pt_ll, ops.sqrt(m_ll2 + 1e-12), met, ops.sqrt(ops.maximum(mt2, 0.0) + 1e-12),
                          dphi, ops.sqrt(dphi**2 + deta**2)], axis=1)

    def call(self, u):
        lo = ops.convert_to_tensor(self.feature_min, u.dtype)
        hi = ops.convert_to_tensor(self.feature_max, u.dtype)
        return (self.physical(u) - lo) / (hi - lo)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(FEATURES))

    def get_config(self):
        return {**super().get_config(), "pt0_range": self.pt0_range, "deta_max": self.deta_max,
                "met_max": self.met_max, "feature_min": self.feature_min, "feature_max": self.feature_max}


def build_kinematic_generator(kinematics, latent_dim=LATENT_DIM, widths=GENERATOR_WIDTHS, swish="per_unit"):
    """The same network emitting 6 underlying quantities, followed by ``DileptonKinematics``."""
    body = build_generator(latent_dim, widths, swish, n_out=6)
    model = keras.Sequential([keras.Input((latent_dim,)), *body.layers, kinematics], name="kinematic_generator")
    return model
