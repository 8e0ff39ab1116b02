"""Adversarial objectives and critic regularisers.

An objective turns critic outputs on real and generated batches into the two losses; a critic regulariser adds a
term to the critic loss that needs the critic itself (gradient penalty, Roth et al.'s Jensen-Shannon regulariser);
weight clipping is applied after each critic step. Models compose these instead of growing flags.

Critic outputs are always *unbounded* (logits for the BCE-type objectives, scores for Wasserstein), so every
critic network ends in a linear layer. Shapes: event batches ``(batch, n_features)``; critic outputs ``(batch, 1)``
or ``(batch,)``; every loss and penalty is a scalar tensor.

Per-event weights of the real events (``real_weight``, ``(batch,)``, any sign, normalised to mean 1 over the
training sample by ``gan4hep.training.train``): every expectation over the real batch becomes ``mean(w * term)``
(the batch estimate of the expectation under the weighted distribution); expectations over generated events are
unweighted. Which objectives take negative weights: see ``gan4hep.models.gan``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import keras
import tensorflow as tf
from keras import ops

#: A backend tensor (``tf.Tensor`` under TensorFlow).
Tensor = Any
#: The critic as a function of the event features only: ``(batch, n_features) -> (batch, 1)``.
CriticFn = Callable[[Tensor], Tensor]


# ----------------------------------------------------------------------------------------------------------------
# Critic regularisers: called as reg(critic_fn, real, fake) inside the critic's gradient tape.
# critic_fn maps an event batch to critic outputs (any conditioning is already bound in), so that gradients are
# taken with respect to the event features only.
# ----------------------------------------------------------------------------------------------------------------
def _input_gradient(critic_fn, x):
    """Critic output at ``x`` and its gradient with respect to ``x`` (kept differentiable for the outer tape)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = critic_fn(x)
    return out, tape.gradient(out, x)


def _squared_norm(grad):
    return ops.sum(ops.square(ops.reshape(grad, (ops.shape(grad)[0], -1))), axis=1)


def weighted_mean(term: Tensor, weight: Tensor | None = None) -> Tensor:
    """``mean(term)``, or with per-event weights ``mean(w_i * term_i)`` over the batch.

    Args:
        term: ``(batch,)`` or ``(batch, k)`` per-event values (``k`` values of one event share its weight).
        weight: ``(batch,)`` weights, or None.

    Returns:
        A scalar tensor.
    """
    if weight is None:
        return ops.mean(term)
    term = ops.reshape(term, (ops.shape(term)[0], -1))
    return ops.mean(ops.reshape(ops.cast(weight, term.dtype), (-1, 1)) * term)


class GradientPenalty:
    """WGAN-GP term lambda * E[(|grad D(x_hat)|_2 - 1)^2] on straight-line interpolates.

    x_hat = t * x_fake + (1 - t) * x_real with one t ~ U[0, 1] per event. Source: Gulrajani et al. 2017
    (arXiv:1704.00028), Eq. (3) and Algorithm 1; Lebese & Ruan 2021, sec. 3.2, eq. (3.2.5). The norm is taken
    as ``sqrt(|grad|^2 + 1e-12)`` so its gradient stays finite at 0.

    Args:
        weight: lambda (10 in both papers).
        seed: seed of the ``keras.random.SeedGenerator`` that draws ``t``. None (the default): a model trained
            through ``gan4hep.training.train`` derives it from the run seed (``GenerativeModel.seed_random_state``)
            and checkpoints its position, so the same run seed gives the same interpolates, resumed or not.

    Call ``gp(critic_fn, real, fake)`` with ``real`` and ``fake`` of the same shape ``(batch, ...)``; returns a
    scalar tensor. ``real_weight`` is accepted and not used: the penalty is a constraint on the critic on the
    interpolates of the batch as drawn, not an expectation over the data.
    """

    name = "gp"
    negative_weights = True

    def __init__(self, weight: float = 10.0, seed: int | None = None):
        self.weight = float(weight)
        self.seed = seed
        self._seeds = keras.random.SeedGenerator(seed)

    def __call__(self, critic_fn: CriticFn, real: Tensor, fake: Tensor, real_weight: Tensor | None = None) -> Tensor:
        shape = [ops.shape(real)[0]] + [1] * (len(real.shape) - 1)
        t = keras.random.uniform(shape, 0.0, 1.0, dtype=real.dtype, seed=self._seeds)
        x_hat = t * fake + (1.0 - t) * real
        _, grad = _input_gradient(critic_fn, x_hat)
        norm = ops.sqrt(_squared_norm(grad) + 1e-12)
        return self.weight * ops.mean(ops.square(norm - 1.0))


class RothRegulariser:
    """Jensen-Shannon regulariser of Roth et al. (2017), as used by Butter, Plehn & Winterhalder.

    weight/2 * mean[(1 - sigmoid(D_real))^2 |grad D_real|^2 + sigmoid(D_fake)^2 |grad D_fake|^2], with D the
    critic's logit and the gradients taken with respect to the inputs. Source: Roth, Lucchi, Nowozin & Hofmann
    2017 (arXiv:1705.09367), the regulariser Omega for the JS-GAN; used by Butter, Plehn & Winterhalder 2019
    (arXiv:1907.03764; Butter & Plehn review, sec. 2, ref. [5]). The real and fake terms are added event by
    event, so both batches must have the same size.

    Args:
        weight: gamma of Roth et al. (the term is ``gamma / 2 * Omega``).

    Call ``reg(critic_fn, real, fake)`` with ``(batch, n_features)`` batches; returns a scalar tensor. With
    ``real_weight`` ``(batch,)`` the real events' term is weighted (``w_i`` times it, event by event); negative
    weights are not defined for it (Omega is an expected squared gradient norm, which they can make negative):
    ``GAN.check_weights`` refuses them.
    """

    name = "roth"
    negative_weights = False

    def __init__(self, weight: float = 1e-3):
        self.weight = float(weight)

    def __call__(self, critic_fn: CriticFn, real: Tensor, fake: Tensor, real_weight: Tensor | None = None) -> Tensor:
        d_real, g_real = _input_gradient(critic_fn, real)
        d_fake, g_fake = _input_gradient(critic_fn, fake)
        d_real = ops.reshape(d_real, (-1,))
        d_fake = ops.reshape(d_fake, (-1,))
        real_term = ops.square(1.0 - ops.sigmoid(d_real)) * _squared_norm(g_real)
        if real_weight is not None:
            real_term = ops.cast(ops.reshape(real_weight, (-1,)), real_term.dtype) * real_term
        term = real_term + ops.square(ops.sigmoid(d_fake)) * _squared_norm(g_fake)
        return 0.5 * self.weight * ops.mean(term)


# ----------------------------------------------------------------------------------------------------------------
# Objectives
# ----------------------------------------------------------------------------------------------------------------
class Objective:
    """Base: ``critic_loss(real_out, fake_out)``, ``generator_loss(fake_out)``, optional critic regularisers and a
    hook run after each critic update.

    Args:
        regularisers: critic regularisers (``GradientPenalty``, ``RothRegulariser``), called as
            ``reg(critic_fn, real, fake)`` and added to the critic loss by the model.
    """

    name = "objective"

    def __init__(self, regularisers: Iterable[GradientPenalty | RothRegulariser] = ()):
        self.regularisers = list(regularisers)

    def critic_loss(self, real_out: Tensor, fake_out: Tensor, real_weight: Tensor | None = None) -> Tensor:
        """Scalar critic loss from the critic outputs on real and generated batches (``(batch, 1)`` each), the
        real events weighted by ``real_weight`` ``(batch,)`` if given (``weighted_mean``).

        Raises:
            NotImplementedError: in the base class.
        """
        raise NotImplementedError

    def generator_loss(self, fake_out: Tensor) -> Tensor:
        """Scalar generator loss from the critic outputs on a generated batch.

        Raises:
            NotImplementedError: in the base class.
        """
        raise NotImplementedError

    def after_critic_step(self, critic: keras.Model) -> None:
        """Hook for constraints applied to the critic weights after its update (weight clipping)."""

    def __repr__(self):
        regs = ", ".join(f"{r.name}={r.weight:g}" for r in self.regularisers)
        return f"{type(self).__name__}({regs})"


class BCE(Objective):
    """Vanilla GAN (Goodfellow et al. 2014, arXiv:1406.2661) with binary cross-entropy on logits.

    Critic loss: Butter & Plehn review, sec. 2, Eq. (1), with D = sigmoid(logit). ``non_saturating=True`` trains
    the generator on -log D(G(z)) (review Eq. (2)); ``False`` minimises the minimax form log(1 - D(G(z))) directly.
    """

    name = "bce"

    def __init__(self, non_saturating: bool = True, regularisers: Iterable[GradientPenalty | RothRegulariser] = ()):
        super().__init__(regularisers)
        self.non_saturating = non_saturating

    def critic_loss(self, real_out: Tensor, fake_out: Tensor, real_weight: Tensor | None = None) -> Tensor:
        # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f)
        return weighted_mean(ops.softplus(-real_out), real_weight) + ops.mean(ops.softplus(fake_out))

    def generator_loss(self, fake_out: Tensor) -> Tensor:
        if self.non_saturating:
            return ops.mean(ops.softplus(-fake_out))
        return -ops.mean(ops.softplus(fake_out))


class LeastSquares(Objective):
    """LSGAN (Mao et al. 2017, arXiv:1611.04076; Butter & Plehn review, sec. 2): critic regresses real -> 1,
    fake -> 0; generator pulls fakes to 1 (the a = 0, b = c = 1 coding)."""

    name = "lsgan"

    def critic_loss(self, real_out: Tensor, fake_out: Tensor, real_weight: Tensor | None = None) -> Tensor:
        return 0.5 * weighted_mean(ops.square(real_out - 1.0), real_weight) + 0.5 * ops.mean(ops.square(fake_out))

    def generator_loss(self, fake_out: Tensor) -> Tensor:
        return 0.5 * ops.mean(ops.square(fake_out - 1.0))


class Wasserstein(Objective):
    """Wasserstein critic loss E[D(fake)] - E[D(real)] with no Lipschitz constraint of its own.

    The negative of the Kantorovich-Rubinstein estimate (Butter & Plehn review, sec. 2, Eq. (3); Lebese & Ruan
    eq. (3.2.4)). Alone it is only correct for a critic that is Lipschitz by construction (CircleDense, Lin et al.
    section 2.2).
    """

    name = "wgan"

    def critic_loss(self, real_out: Tensor, fake_out: Tensor, real_weight: Tensor | None = None) -> Tensor:
        return ops.mean(fake_out) - weighted_mean(real_out, real_weight)

    def generator_loss(self, fake_out: Tensor) -> Tensor:
        return -ops.mean(fake_out)


class WassersteinClip(Wasserstein):
    """WGAN with weight clipping (Arjovsky, Chintala & Bottou 2017, arXiv:1701.07875, Algorithm 1: c = 0.01,
    n_critic = 5): every critic trainable weight is clipped into [-clip, clip] after each critic step. Use with
    ``n_critic`` > 1 as in the original paper.

    Raises:
        ValueError: ``clip <= 0``.
    """

    name = "wgan_clip"

    def __init__(self, clip: float = 0.01, regularisers: Iterable[GradientPenalty | RothRegulariser] = ()):
        super().__init__(regularisers)
        if clip <= 0:
            raise ValueError(f"clip value must be positive, got {clip}")
        self.clip = float(clip)

    def after_critic_step(self, critic: keras.Model) -> None:
        for w in critic.trainable_weights:
            w.assign(ops.clip(w, -self.clip, self.clip))

    def __repr__(self):
        return f"WassersteinClip(clip={self.clip:g})"


class WassersteinGP(Wasserstein):
    """WGAN-GP (Gulrajani et al. 2017, Eq. (3); Lebese & Ruan eq. 3.2.5): Wasserstein loss plus
    GradientPenalty(weight), the penalty first in ``regularisers``.

    On 1-d data it is trapped: a critic with |D'| = 1 on the interpolates cannot turn from increasing to
    decreasing without passing |D'| = 0, so a generator that overshoots the data runs off (or saturates a bounded
    output). With two or more features the gradient can rotate instead (tests/test_objectives.py).
    """

    name = "wgan_gp"

    def __init__(self, weight: float = 10.0, regularisers: Iterable[GradientPenalty | RothRegulariser] = ()):
        super().__init__([GradientPenalty(weight), *regularisers])


def RothBCE(weight: float = 1e-3, non_saturating: bool = True) -> BCE:
    """BCE objective with the Roth et al. regulariser (Butter, Plehn & Winterhalder's setup)."""
    return BCE(non_saturating=non_saturating, regularisers=[RothRegulariser(weight)])


def get_objective(name: str | Objective, **kw: Any) -> Objective:
    """Objective by name: bce (alias gan), bce_minimax, lsgan, wgan (alias circle_wgan; unconstrained, for circle
    critics), wgan_clip, wgan_gp, bce_roth. Keyword arguments go to the constructor (clip=, weight=); an
    ``Objective`` instance is returned unchanged and ``kw`` ignored.

    Raises:
        ValueError: unknown name; ``clip <= 0`` for wgan_clip.
        TypeError: a keyword the chosen constructor does not take.
    """
    table = {
        "bce": lambda: BCE(**kw),
        "gan": lambda: BCE(**kw),
        "bce_minimax": lambda: BCE(non_saturating=False, **kw),
        "lsgan": lambda: LeastSquares(**kw),
        "wgan": lambda: Wasserstein(**kw),
        "circle_wgan": lambda: Wasserstein(**kw),
        "wgan_clip": lambda: WassersteinClip(**kw),
        "wgan_gp": lambda: WassersteinGP(**kw),
        "bce_roth": lambda: RothBCE(**kw),
    }
    if isinstance(name, Objective):
        return name
    if name not in table:
        raise ValueError(f"unknown objective {name!r}; choose one of {sorted(table)}")
    return table[name]()
