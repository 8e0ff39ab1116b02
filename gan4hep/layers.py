"""Custom Keras layers used by the reproduced papers.

Written with ``keras.ops`` only, so they run on any Keras 3 backend, and registered for serialisation, so a
model containing them round-trips through ``model.save("x.keras")`` / ``keras.models.load_model``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import keras
import numpy as np
from keras import ops

from .physics import TTBAR_DECAY_COORDINATES, boost, dilepton_features_from_underlying

__all__ = ["TrainableSwish", "CircleDense", "OnShell", "DileptonFeatures", "TTbarDecayChain"]

#: A backend tensor (``tf.Tensor`` under TensorFlow) or a ``KerasTensor`` while a model is built.
Tensor = Any
#: A layer input shape: a tuple whose entries may be None (unknown).
Shape = tuple


@keras.saving.register_keras_serializable(package="gan4hep")
class TrainableSwish(keras.layers.Layer):
    """Swish with a trainable slope: ``x * sigmoid(beta * x)``, ``beta`` initialised to 1.

    Swish-beta of Ramachandran, Zoph & Le (2017, arXiv:1710.05941), the activation between the Dense layers of the
    Lebese & Ruan (2021, sec. 4.3, their ref. 58) WGAN-GP generator. With ``beta = 1`` it is SiLU; ``beta -> 0``
    tends to ``x / 2`` and ``beta -> inf`` to ReLU, so the network learns how sharp a kink it needs.

    Input shape ``(..., features)``; output the same shape.

    Args:
        per_unit: if True (default) one ``beta`` per feature of the last axis, shape ``(features,)``; if False a
            single scalar ``beta`` shared by all units (the original Swish paper's form).
        **kwargs: passed to ``keras.layers.Layer`` (``name``, ``dtype``, ...).

    Raises:
        ValueError: (at build) ``per_unit=True`` and the last input dimension is unknown.
    """

    def __init__(self, per_unit: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.per_unit = bool(per_unit)

    def build(self, input_shape: Shape) -> None:
        if self.per_unit:
            if input_shape[-1] is None:
                raise ValueError("TrainableSwish(per_unit=True) needs a known last dimension")
            shape = (int(input_shape[-1]),)
        else:
            shape = ()
        self.beta = self.add_weight(name="beta", shape=shape, initializer="ones", trainable=True)

    def call(self, inputs: Tensor) -> Tensor:
        return inputs * ops.sigmoid(self.beta * inputs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "per_unit": self.per_unit}


@keras.saving.register_keras_serializable(package="gan4hep")
class CircleDense(keras.layers.Layer):
    """Dense layer whose weights and biases lie on the unit circle (Lin, Bhimji & Nachman 2019, sec. 2.2, eq. 2.2).

    ``out_n = activation(|sum_m x_m exp(i theta_nm) + exp(i phi_n)|)``. The weights are angles, so the weight
    space is compact without a boundary: the critic is Lipschitz (each layer with constant at most
    ``sqrt(in_dim * units)`` times that of its activation) without the clipping that piles WGAN weights up at
    the clip value. Computed in real arithmetic::

        re = x @ cos(theta) + cos(phi);  im = x @ sin(theta) + sin(phi);  out = sqrt(re^2 + im^2 + eps)

    Args:
        units: number of output neurons.
        activation: Keras activation applied to the modulus (``psi`` in the paper); None for identity.
        eps: added under the square root so the gradient stays finite where the modulus is 0 (it shifts the
            output by at most ``sqrt(eps)``, 1e-6 with the default, and does not raise the Lipschitz constant).
        theta_initializer, phi_initializer: default uniform in [-pi, pi).
        output_mode: "modulus" (eq. 2.2, the default) or "real": Re(sum_m x_m e^{i theta_nm} + e^{i phi_n}), i.e. a
            linear layer with weights cos(theta) in [-1, 1]. The modulus is >= 0 and grows in every direction
            away from its zero, so a critic whose *last* layer is a modulus can be maximised by a generator
            running off to infinity; "real" keeps compact weights but gives a signed, linear critic score.
        **kwargs: passed to ``keras.layers.Layer``.

    Input shape ``(..., in_dim)``; output shape ``(..., units)``. The weights ``theta`` ``(in_dim, units)`` and
    ``phi`` ``(units,)`` are angles in rad (not wrapped: only their cos/sin enter).

    Raises:
        ValueError: ``output_mode`` not "modulus"/"real"; ``units <= 0``; an unknown ``activation`` or
            initializer; (at build) an unknown last input dimension.
    """

    def __init__(self, units: int, activation: str | Callable[..., Any] | None = None, eps: float = 1e-12,
                 theta_initializer: str | keras.initializers.Initializer | None = None,
                 phi_initializer: str | keras.initializers.Initializer | None = None, output_mode: str = "modulus",
                 **kwargs: Any):
        super().__init__(**kwargs)
        if output_mode not in ("modulus", "real"):
            raise ValueError(f"CircleDense output_mode must be 'modulus' or 'real', got {output_mode!r}")
        self.output_mode = output_mode
        if int(units) <= 0:
            raise ValueError(f"CircleDense needs units > 0, got {units}")
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.eps = float(eps)
        default = keras.initializers.RandomUniform(-math.pi, math.pi)
        self.theta_initializer = keras.initializers.get(theta_initializer or default)
        self.phi_initializer = keras.initializers.get(phi_initializer or default)

    def build(self, input_shape: Shape) -> None:
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError("CircleDense needs a known last input dimension")
        self.theta = self.add_weight(name="theta", shape=(int(in_dim), self.units),
                                     initializer=self.theta_initializer, trainable=True)
        self.phi = self.add_weight(name="phi", shape=(self.units,), initializer=self.phi_initializer,
                                   trainable=True)

    def call(self, inputs: Tensor) -> Tensor:
        re = ops.matmul(inputs, ops.cos(self.theta)) + ops.cos(self.phi)
        if self.output_mode == "real":
            return self.activation(re) if self.activation is not None else re
        im = ops.matmul(inputs, ops.sin(self.theta)) + ops.sin(self.phi)
        out = ops.sqrt(re * re + im * im + self.eps)
        return self.activation(out) if self.activation is not None else out

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "eps": self.eps,
            "output_mode": self.output_mode,
            "theta_initializer": keras.initializers.serialize(self.theta_initializer),
            "phi_initializer": keras.initializers.serialize(self.phi_initializer),
        }


@keras.saving.register_keras_serializable(package="gan4hep")
class OnShell(keras.layers.Layer):
    """(batch, 3n) three-momenta -> (batch, 4n) four-vectors (px, py, pz, E) per particle, E = sqrt(m^2 + p^2).

    The on-shell layer of Butter, Plehn & Winterhalder (arXiv:1907.03764, sec. 3; slides: "Input dimension G:
    18 + 6"): a generator (GAN or flow) emits three-momenta and the energies follow from the known masses.

    ``masses`` are in the same (scaled) units as the momenta. ``eps`` under the square root keeps the gradient
    finite for a massless particle at p = 0; it shifts m^2 by eps.
    """

    def __init__(self, masses: "list[float] | np.ndarray", eps: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        self.masses = [float(m) for m in masses]
        self.eps = float(eps)

    def call(self, inputs: Tensor) -> Tensor:
        p = ops.reshape(inputs, (-1, len(self.masses), 3))
        m2 = ops.convert_to_tensor(np.square(self.masses).reshape(1, -1, 1), dtype=p.dtype)
        e = ops.sqrt(ops.sum(ops.square(p), axis=-1, keepdims=True) + m2 + self.eps)
        return ops.reshape(ops.concatenate([p, e], axis=-1), (-1, 4 * len(self.masses)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 4 * len(self.masses))

    def get_config(self):
        return {**super().get_config(), "masses": self.masses, "eps": self.eps}


@keras.saving.register_keras_serializable(package="gan4hep")
class DileptonFeatures(keras.layers.Layer):
    """(batch, 6) ``gan4hep.physics.DILEPTON_UNDERLYING`` -> (batch, 8) ``DILEPTON_FEATURES`` in physical units.

    The 8 dilepton + MET features of Lebese & Ruan (2021, sec. 4.3; ``gan4hep.physics``) are functions
    of 6 quantities; a generator of the 6 followed by this layer emits features whose identities (pT(l1) <= pT(l0),
    Delta R >= Delta phi, pT(ll), m(ll) and m_T fixed by the others) hold exactly. No weights.
    """

    EPS = 1e-12  # [GeV^2] under each square root: finite gradients where a quantity is 0

    def call(self, inputs: Tensor) -> Tensor:
        return dilepton_features_from_underlying(inputs, lib=ops, eps=self.EPS)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], 8)


@keras.saving.register_keras_serializable(package="gan4hep")
class TTbarDecayChain(keras.layers.Layer):
    """(batch, 16) ``gan4hep.physics.TTBAR_DECAY_COORDINATES`` -> (batch, 24) four-vectors in GeV (px, py, pz, E of
    q, q', b from the top, then from the anti-top).

    The tops from (px, py, y, m) with the ttbar pT = 0, t -> W b and W -> q q' as two-body decays in the rest frames
    (momenta from the masses, light quarks massless in the W decay, directions from the angles), boosted to the
    lab, then ``OnShell`` on the 18
    three-momenta. Masses come from the ``u`` variables through the inverse Breit-Wigner CDF, clamped so that every
    decay is allowed (m_W >= 1 GeV, m_t >= m_W + m_b + 0.1 GeV); each top's rapidity is clipped at the kinematic
    limit of ``beam_energy``. No weights: the output layer of a flow on decay coordinates (Butter, Plehn &
    Winterhalder's ttbar -> 6 quarks, papers/butter_plehn_winterhalder, issue 20). Inverse:
    ``gan4hep.physics.ttbar_decay_coordinates``.

    Args:
        masses: the 6 quark masses [GeV] in the event's order (the b masses at indices 2 and 5).
        w_pole, t_pole: (pole mass, width) [GeV] of the W and the top (the ``u`` map).
        beam_energy: [GeV], the largest top energy.
        u_eps: each ``u`` is clamped to [u_eps, 1 - u_eps].
    """

    def __init__(self, masses: "list[float]", w_pole: "tuple[float, float]", t_pole: "tuple[float, float]",
                 beam_energy: float, u_eps: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        self.masses = [float(m) for m in masses]
        self.w_pole = [float(v) for v in w_pole]
        self.t_pole = [float(v) for v in t_pole]
        self.beam_energy = float(beam_energy)
        self.u_eps = float(u_eps)
        self.on_shell = OnShell(self.masses, name="on_shell")

    def build(self, input_shape: Shape) -> None:
        self.on_shell.build((input_shape[0], 18))
        self.built = True

    def _mass(self, u: Tensor, pole: "list[float]") -> Tensor:
        u = ops.clip(u, self.u_eps, 1.0 - self.u_eps)
        return pole[0] + 0.5 * pole[1] * ops.tan(math.pi * (u - 0.5))

    @staticmethod
    def _direction(cos: Tensor, phi: Tensor) -> Tensor:
        cos = ops.clip(cos, -1.0, 1.0)
        sin = ops.sqrt(ops.maximum(1.0 - cos * cos, 0.0))
        return ops.stack([sin * ops.cos(phi), sin * ops.sin(phi), cos], axis=-1)

    def call(self, inputs: Tensor) -> Tensor:
        x = {c: inputs[:, i] for i, c in enumerate(TTBAR_DECAY_COORDINATES)}
        out = []
        for side, sign, m_b in ((1, 1.0, self.masses[2]), (2, -1.0, self.masses[5])):
            m_w = ops.maximum(self._mass(x[f"u_W{side}"], self.w_pole), 1.0)
            m_t = ops.maximum(self._mass(x[f"u_t{side}"], self.t_pole), m_w + m_b + 0.1)
            px, py = sign * x["px_t1"], sign * x["py_t1"]
            mt_perp = ops.sqrt(m_t * m_t + px * px + py * py)
            # kinematic limit: no top above the beam energy, |y| <= acosh(E_beam / m_T)
            ratio = ops.maximum(self.beam_energy / mt_perp, 1.0)
            y_max = ops.log(ratio + ops.sqrt(ops.maximum(ratio * ratio - 1.0, 0.0)))
            y = ops.clip(x[f"y_t{side}"], -y_max, y_max)
            t_e, t_p = mt_perp * ops.cosh(y), ops.stack([px, py, mt_perp * ops.sinh(y)], axis=-1)
            lam = ops.maximum(ops.square(m_t * m_t - m_w * m_w - m_b * m_b) - 4.0 * m_w * m_w * m_b * m_b, 0.0)
            k = ops.sqrt(lam) / (2.0 * m_t)
            w_e, w_p = boost(ops.sqrt(m_w * m_w + k * k),
                             k[:, None] * self._direction(x[f"cos_W{side}"], x[f"phi_W{side}"]), t_e, t_p, m_t,
                             lib=ops)
            kq = 0.5 * m_w
            _, q_p = boost(kq, kq[:, None] * self._direction(x[f"cos_q{side}"], x[f"phi_q{side}"]), w_e, w_p, m_w,
                           lib=ops)
            out += [q_p, w_p - q_p, t_p - w_p]
        return self.on_shell(ops.concatenate(out, axis=-1))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], 24)

    def get_config(self) -> dict:
        return {**super().get_config(), "masses": self.masses, "w_pole": self.w_pole, "t_pole": self.t_pole,
                "beam_energy": self.beam_energy, "u_eps": self.u_eps}


# Samplers saved before OnShell moved into the core registered it as "gan4hep_bpw>OnShell".
keras.saving.get_custom_objects()["gan4hep_bpw>OnShell"] = OnShell
