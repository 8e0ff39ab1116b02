"""Linear transforms: a fixed permutation of the features, and an invertible linear map parameterised by its LU
decomposition (Kingma & Dhariwal, "Glow", NeurIPS 2018, sec. 3.2; nflows ``nflows/transforms/lu.py`` and
``permutations.py``), the [RandomPermutation, LULinear] pair FlashSim puts before every coupling.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from .base import Transform

__all__ = ["Permutation", "RandomPermutation", "LULinear"]


@keras.saving.register_keras_serializable(package="gan4hep")
class Permutation(Transform):
    """``z = x[:, permutation]`` (log-det 0). The permutation is kept as a non-trainable int32 variable, so it
    travels with checkpoints and exported models (as nflows keeps it in a buffer).

    Args:
        permutation: a permutation of ``range(D)``.

    Raises:
        ValueError: not a permutation of 0..D-1.
    """

    def __init__(self, permutation, **kwargs):
        perm = np.asarray(permutation, dtype=int).reshape(-1)
        if perm.size == 0 or not np.array_equal(np.sort(perm), np.arange(perm.size)):
            raise ValueError(f"{type(self).__name__}: not a permutation of 0..{perm.size - 1}: {perm.tolist()}")
        kwargs.pop("features", None)
        kwargs.pop("context_dim", None)
        super().__init__(features=perm.size, **kwargs)
        self.permutation = self.add_weight(shape=(perm.size,), dtype="int32", trainable=False, name="permutation",
                                           initializer=keras.initializers.Constant(perm))
        self.built = True

    def forward(self, x, context=None, training=False):
        return ops.take(x, self.permutation, axis=1), self._zeros(x)

    def inverse(self, z, context=None, training=False):
        return ops.take(z, ops.argsort(self.permutation), axis=1), self._zeros(z)

    def get_config(self):
        config = super().get_config()
        for key in ("features", "context_dim"):
            config.pop(key)
        config["permutation"] = np.asarray(self.permutation).tolist()
        return config


@keras.saving.register_keras_serializable(package="gan4hep")
class RandomPermutation(Permutation):
    """A random but fixed permutation of D features (nflows ``RandomPermutation``).

    Args:
        features: D.
        seed: seed of the draw; None draws from numpy's global generator (seeded by ``keras.utils.set_random_seed``,
            hence by ``gan4hep.training.train``).
        permutation: an explicit permutation (used when reloading); overrides ``features`` / ``seed``.
    """

    def __init__(self, features: int | None = None, seed: int | None = None, permutation=None, **kwargs):
        if permutation is None:
            if features is None:
                raise ValueError("RandomPermutation needs features or permutation")
            rng = np.random if seed is None else np.random.default_rng(seed)
            permutation = rng.permutation(int(features))
        super().__init__(permutation, **kwargs)


@keras.saving.register_keras_serializable(package="gan4hep")
class LULinear(Transform):
    """``z = L U x + b`` with L unit lower-triangular, U upper-triangular with diagonal ``softplus(u) + eps``
    (nflows ``LULinear``); log |det| = sum log diag(U). Parameters: D(D-1)/2 lower + D(D-1)/2 upper + D diagonal
    + D bias = D^2 + D.

    Args:
        features: D.
        identity_init: start as the identity (zero triangles, diag 1, zero bias), as FlashSim; else uniform in
            +-1/sqrt(D) (nflows).
        eps: floor of the diagonal of U (nflows 1e-3).
    """

    def __init__(self, features: int, identity_init: bool = True, eps: float = 1e-3, **kwargs):
        kwargs.pop("context_dim", None)
        super().__init__(features=features, **kwargs)
        d = self.features
        self.identity_init, self.eps = bool(identity_init), float(eps)
        n_tri = d * (d - 1) // 2
        if self.identity_init:
            tri = keras.initializers.Zeros()
            diag = keras.initializers.Constant(math.log(math.exp(1.0 - self.eps) - 1.0))
        else:
            bound = 1.0 / math.sqrt(d)
            tri = diag = keras.initializers.RandomUniform(-bound, bound)
        self.lower_entries = self.upper_entries = None  # D = 1: no triangles
        if n_tri:
            self.lower_entries = self.add_weight(shape=(n_tri,), initializer=tri, name="lower_entries")
            self.upper_entries = self.add_weight(shape=(n_tri,), initializer=tri, name="upper_entries")
        self.unconstrained_upper_diag = self.add_weight(shape=(d,), initializer=diag, name="unconstrained_upper_diag")
        self.bias = self.add_weight(shape=(d,), initializer="zeros", name="bias")
        self._lower_index = np.stack(np.tril_indices(d, k=-1), axis=1).astype("int32")
        self._upper_index = np.stack(np.triu_indices(d, k=1), axis=1).astype("int32")
        self.built = True

    def upper_diag(self):
        return ops.softplus(self.unconstrained_upper_diag) + self.eps

    def lower_upper(self):
        """(L, U), each (D, D)."""
        d = self.features
        lower = ops.eye(d, dtype=self.bias.dtype)
        upper = ops.diag(self.upper_diag())
        if d > 1:
            lower = lower + ops.scatter(self._lower_index, self.lower_entries, (d, d))
            upper = upper + ops.scatter(self._upper_index, self.upper_entries, (d, d))
        return lower, upper

    def weight(self):
        """The (D, D) matrix W = L U."""
        lower, upper = self.lower_upper()
        return _full_precision_matmul(lower, upper)

    def weight_inverse(self):
        """W^-1 = U^-1 L^-1 (D, D), by triangular solves in float64."""
        lower, upper = (ops.cast(m, "float64") for m in self.lower_upper())
        eye = ops.eye(self.features, dtype="float64")
        w_inv = ops.solve_triangular(upper, ops.solve_triangular(lower, eye, lower=True), lower=False)
        return ops.cast(w_inv, self.bias.dtype)

    def logabsdet(self):
        """log |det W| (a scalar)."""
        return ops.sum(ops.log(self.upper_diag()))

    def forward(self, x, context=None, training=False):
        return _apply(self.weight(), x) + self.bias, self._zeros(x) + self.logabsdet()

    def inverse(self, z, context=None, training=False):
        return _apply(self.weight_inverse(), z - self.bias), self._zeros(z) - self.logabsdet()


#: Above this dimension ``LULinear`` uses ``matmul`` (which may run in TensorFloat-32 on recent NVIDIA GPUs, ~1e-3
#: relative precision) instead of an exact float32 broadcast-and-sum of (B, D, D) products.
EXACT_MATMUL_MAX_FEATURES = 64


def _full_precision_matmul(a, b):
    """a @ b for small square matrices without TensorFloat-32 rounding."""
    return ops.sum(a[:, :, None] * b[None, :, :], axis=1)


def _apply(w, x):
    """(B, D) rows mapped by W: x @ W^T. Exact float32 for D <= EXACT_MATMUL_MAX_FEATURES, so that forward and
    inverse stay inverse to ~1e-6 on GPUs whose matmul rounds float32 to TensorFloat-32 (TensorFlow's default)."""
    if w.shape[0] > EXACT_MATMUL_MAX_FEATURES:
        return ops.matmul(x, ops.transpose(w))
    return ops.sum(x[:, None, :] * w[None, :, :], axis=-1)

    def get_config(self):
        config = super().get_config()
        config.pop("context_dim")
        config.update(identity_init=self.identity_init, eps=self.eps)
        return config
