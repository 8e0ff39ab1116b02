"""Flows as importance samplers for integration on the unit hypercube (neural importance sampling).

A flow ``q`` on ``[0, 1]^D`` turns an integral into an expectation, ``I = int f dx = E_q[w]`` with event weights
``w = f(x) / q(x)``; the Monte Carlo error is ``std(w) / sqrt(N)`` and the unweighting efficiency ``<w> / w_max``
(Butter & Plehn review, Sec. 3.4: "the ratio of the average to the maximum event weights"). Training makes ``q``
follow ``f`` by minimising, on batches drawn from ``q`` itself (no training sample is needed, only integrand calls):

- ``"kl"``: the Kullback-Leibler divergence KL(f/I || q), gradient ``-E_q[w grad log q]``;
- ``"variance"``: the variance of the weights, ``int f^2 / q``, gradient ``-E_q[w^2 grad log q]``

(Mueller, McWilliams, Rousselle, Gross, Novak, "Neural Importance Sampling", ACM TOG 38 (2019), sec. 4; Gao,
Isaacson, Krause, "i-flow", arXiv:2001.05486, sec. 2; Bothmann et al., arXiv:2001.05478). The gradients are the
score-function form: events are drawn without a gradient and ``log q`` is re-evaluated on them with one, and the
weights are divided by their batch mean (a positive factor per batch, which leaves the minimum in place).

The flow (``box_flow``) lives on the box: a fixed map ``x -> 2x - 1`` onto ``[-1, 1]^D``, then rational-quadratic
splines with tail bound 1 (so every layer maps the box onto itself; no permutation or linear layer, which would
leave it), with a uniform base on ``[-1, 1]^D``: first one element-wise spline with free knots per dimension (a
VEGAS-like grid), then coupling splines with alternating masks (for D >= 2).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from .base import Chain, Transform
from .coupling import Coupling, alternating_mask, coupling_factory
from .flow import Flow
from .nets import MLP
from .spline import DEFAULT_MIN_DERIVATIVE, RationalQuadraticSpline

__all__ = ["UniformBox", "UnitToSymmetric", "ElementwiseSpline", "box_flow", "Estimate", "estimate",
           "unweighting_efficiency", "sample_with_log_prob", "weighted_sample", "train_importance_sampler"]


@keras.saving.register_keras_serializable(package="gan4hep")
class UniformBox:
    """The base density U([low, high]^D).

    Args:
        features: D.
        low, high: the box edges (low < high).

    Raises:
        ValueError: ``low >= high``.
    """

    def __init__(self, features: int, low: float = -1.0, high: float = 1.0):
        self.features, self.low, self.high = int(features), float(low), float(high)
        if not self.low < self.high:
            raise ValueError(f"UniformBox needs low < high, got {low}, {high}")

    def log_prob(self, z):
        """(B, D) tensor -> (B,) log density: ``-D log(high - low)`` inside the box, ``-inf`` outside (with a
        float32 rounding tolerance of 1e-5 of the width at the edges)."""
        tol = 1e-5 * (self.high - self.low)
        inside = ops.all(ops.logical_and(z >= self.low - tol, z <= self.high + tol), axis=-1)
        value = -self.features * math.log(self.high - self.low)
        return ops.where(inside, ops.full(ops.shape(z)[:1], value), ops.full(ops.shape(z)[:1], -np.inf))

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """(n, D) float32 draws from ``numpy.random.default_rng(seed)``."""
        rng = np.random.default_rng(seed)
        return rng.uniform(self.low, self.high, (int(n), self.features)).astype(np.float32)

    def get_config(self):
        return {"features": self.features, "low": self.low, "high": self.high}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="gan4hep")
class UnitToSymmetric(Transform):
    """The fixed map ``[0, 1]^D -> [-1, 1]^D``, ``z = 2x - 1`` (log |det| = D log 2)."""

    def forward(self, x, context=None, training=False):
        return 2.0 * x - 1.0, self._zeros(x) + self.features * math.log(2.0)

    def inverse(self, z, context=None, training=False):
        return 0.5 * (z + 1.0), self._zeros(z) - self.features * math.log(2.0)


@keras.saving.register_keras_serializable(package="gan4hep")
class ElementwiseSpline(Transform):
    """A rational-quadratic spline per feature with free (unconditioned) knots on ``[-B, B]`` (linear tails
    outside; ``gan4hep.flows.spline``): a trainable one-dimensional map per dimension, like a VEGAS grid. It
    starts as the identity (equal bins, all knot derivatives 1).

    Args:
        features: D.
        bins: K.
        tail_bound: B.
    """

    def __init__(self, features: int, bins: int = 16, tail_bound: float = 1.0, **kwargs):
        kwargs.pop("context_dim", None)
        super().__init__(features=features, context_dim=0, **kwargs)
        self.spline = RationalQuadraticSpline(bins, tail_bound)
        self.bins = int(bins)
        identity = math.log(math.expm1(1.0 - DEFAULT_MIN_DERIVATIVE))
        init = np.concatenate([np.zeros(2 * self.bins), np.full(self.bins - 1, identity)]).astype("float32")
        self.params = self.add_weight(shape=(self.features, self.spline.params_per_feature),
                                      initializer=keras.initializers.Constant(np.tile(init, (self.features, 1))),
                                      name="params")
        self.built = True

    def _apply(self, x, inverse):
        params = ops.broadcast_to(self.params[None], (ops.shape(x)[0], self.features,
                                                      self.spline.params_per_feature))
        fn = self.spline.inverse if inverse else self.spline.forward
        y, logdet = fn(x, params)
        return y, ops.sum(logdet, axis=1)

    def forward(self, x, context=None, training=False):
        return self._apply(x, inverse=False)

    def inverse(self, z, context=None, training=False):
        return self._apply(z, inverse=True)

    def get_config(self):
        config = super().get_config()
        config.pop("context_dim")
        config.update(bins=self.bins, tail_bound=self.spline.tail_bound)
        return config


def box_flow(features: int, couplings: int = 4, bins: int = 16, hidden_features: int = 64, num_layers: int = 2,
             activation: str = "relu", name: str | None = None) -> Flow:
    """A flow whose density lives on ``[0, 1]^D``: ``UnitToSymmetric``, an ``ElementwiseSpline`` grid, then
    ``couplings`` spline couplings (alternating masks, ``MLP`` conditioners with zero-initialised outputs, tail
    bound 1) and a ``UniformBox(D, -1, 1)`` base. ``log_prob(x)`` is ``log q(x)`` for ``x`` in the unit box and
    ``sample(n, physical=False)`` returns points in it.

    Args:
        features: D (for D = 1 there are no couplings: the grid alone).
        couplings: coupling layers (D >= 2).
        bins: spline bins of every layer.
        hidden_features, num_layers, activation: the conditioners.

    Returns:
        an uncompiled ``Flow``.
    """
    parts = [UnitToSymmetric(features), ElementwiseSpline(features, bins, 1.0)]
    if features >= 2:
        factory = coupling_factory(MLP, 0, hidden_features=hidden_features, num_layers=num_layers,
                                   activation=activation, zero_output=True)
        for i in range(couplings):
            parts.append(Coupling(alternating_mask(features, even=(i % 2 == 0)), factory,
                                  RationalQuadraticSpline(bins, 1.0)))
    return Flow(Chain(parts), base=UniformBox(features, -1.0, 1.0), context_dim=0, name=name)


# ---------------------------------------------------------------------------------------------------- estimates
@dataclasses.dataclass(frozen=True)
class Estimate:
    """A Monte Carlo integral from event weights.

    Attributes:
        integral: ``mean(w)``.
        error: its standard error ``std(w, ddof=1) / sqrt(n)``.
        unweighting_efficiency: ``mean(w) / max(w)`` (1 for constant weights).
        n: number of integrand calls.
        relative_std: ``std(w) / mean(w)`` (the error of one call, relative).
    """

    integral: float
    error: float
    unweighting_efficiency: float
    n: int
    relative_std: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def unweighting_efficiency(weights: np.ndarray) -> float:
    """``<w> / w_max`` of non-negative event weights (review Sec. 3.4).

    Raises:
        ValueError: an empty array or negative weights.
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size == 0 or (w < 0).any():
        raise ValueError("unweighting efficiency needs a non-empty array of non-negative weights")
    return float(w.mean() / w.max()) if w.max() > 0 else float("nan")


def estimate(weights: np.ndarray) -> Estimate:
    """The integral, its error and the unweighting efficiency from ``(n,)`` weights ``f(x_i) / q(x_i)``, ``x_i ~ q``.

    Raises:
        ValueError: fewer than two weights, or negative ones.
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size < 2:
        raise ValueError(f"an estimate needs at least 2 weights, got {w.size}")
    mean, std = float(w.mean()), float(w.std(ddof=1))
    return Estimate(mean, std / math.sqrt(w.size), unweighting_efficiency(w), int(w.size),
                    std / mean if mean else float("nan"))


def sample_with_log_prob(flow: Flow, n: int, seed: int | None = None, batch_size: int = 65536):
    """Draw ``n`` points from ``flow`` (model space) together with their ``log q`` from the same inverse pass
    (``log q(x) = log base(z) - log |det dx/dz|``).

    Returns:
        ``(x (n, D) float64, log_q (n,) float64)``.
    """
    z = flow.base.sample(int(n), seed)
    key = ("inverse_with_logdet", False)
    if key not in flow._compiled:
        flow._compiled[key] = tf.function(lambda zz: flow.transform.inverse(zz, None, training=False),
                                          reduce_retracing=True)
    fn = flow._compiled[key]
    xs, logs = [], []
    for start in range(0, int(n), int(batch_size)):
        zb = z[start:start + batch_size]
        x, logdet = fn(zb)
        xs.append(np.asarray(x, np.float64))
        logs.append(np.asarray(flow.base.log_prob(ops.convert_to_tensor(zb)), np.float64)
                    - np.asarray(logdet, np.float64))
    return np.concatenate(xs), np.concatenate(logs)


def weighted_sample(flow: Flow, integrand: Callable[[np.ndarray], np.ndarray], n: int, seed: int | None = None):
    """``n`` points ``x ~ q`` and their weights ``w = f(x) / q(x)``.

    Args:
        flow: a ``box_flow`` (or any flow whose model space is the integration domain).
        integrand: ``f``, numpy ``(n, D) -> (n,)``, non-negative.

    Returns:
        ``(x (n, D), w (n,))``, float64.
    """
    x, log_q = sample_with_log_prob(flow, n, seed)
    f = np.asarray(integrand(x), dtype=np.float64).reshape(-1)
    return x, f * np.exp(-log_q)


def train_importance_sampler(flow: Flow, integrand: Callable[[np.ndarray], np.ndarray], steps: int,
                             batch_size: int, loss: str = "kl", seed: int = 0, log_every: int = 0,
                             optimizer=None) -> dict:
    """Train ``flow`` to follow the integrand: each step draws ``batch_size`` points from the current flow, calls
    the integrand once per point and takes one optimizer step on the ``loss`` (module docstring).

    Args:
        flow: an uncompiled or compiled ``Flow`` (compiled with Adam(1e-3) if not).
        integrand: numpy ``(n, D) -> (n,)``, non-negative, finite.
        steps: optimizer steps (``steps * batch_size`` integrand calls in all).
        batch_size: points per step.
        loss: ``"kl"`` or ``"variance"``.
        seed: seeds the base draws (step ``k`` uses ``seed * 1_000_003 + k``).
        log_every: print the batch estimate every so many steps (0: never).
        optimizer: used when the flow is not compiled yet.

    Returns:
        ``{"calls": integrand calls, "integral": per-step batch estimates, "relative_std": per-step std(w)/<w>}``.

    Raises:
        ValueError: an unknown loss; a negative or non-finite integrand value.
    """
    if loss not in ("kl", "variance"):
        raise ValueError(f"loss must be 'kl' or 'variance', got {loss!r}")
    power = 1.0 if loss == "kl" else 2.0
    if getattr(flow, "optimizer", None) is None:
        flow.compile(optimizer if optimizer is not None else keras.optimizers.Adam(1e-3))
    variables = flow.transform.trainable_weights

    @tf.function(reduce_retracing=True)
    def step(x, c):
        with tf.GradientTape() as tape:
            log_q = flow.log_prob(x, training=True)
            objective = -tf.reduce_mean(c * log_q)
        flow.optimizer.apply(tape.gradient(objective, variables), variables)
        return objective

    history = {"calls": 0, "integral": [], "relative_std": []}
    for k in range(int(steps)):
        x, log_q = sample_with_log_prob(flow, batch_size, seed * 1_000_003 + k)
        f = np.asarray(integrand(x), dtype=np.float64).reshape(-1)
        if not np.isfinite(f).all() or (f < 0).any():
            raise ValueError("the integrand returned a negative or non-finite value")
        w = f * np.exp(-log_q)
        history["calls"] += len(w)
        mean = w.mean()
        history["integral"].append(float(mean))
        history["relative_std"].append(float(w.std() / mean) if mean > 0 else float("nan"))
        if mean <= 0:
            continue  # no point of this batch sees the integrand: nothing to learn from it
        c = (w / mean) ** power
        step(tf.constant(x, tf.float32), tf.constant(c, tf.float32))
        if log_every and (k + 1) % log_every == 0:
            print(f"step {k + 1}: batch integral {mean:.5g}, std(w)/<w> {history['relative_std'][-1]:.3g}",
                  flush=True)
    return history
