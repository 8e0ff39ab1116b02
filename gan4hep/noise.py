"""Latent-space samplers for generators.

Each sampler has two paths that draw from the same distribution:

* ``sample(n, dim, seed=None)`` -> float32 numpy array, for generating events outside training;
* ``noise(shape)`` / ``noise.tf_sample(batch, dim)`` -> a backend tensor from ``keras.random``, seeded by a
  ``keras.random.SeedGenerator`` the sampler owns, so it can be called inside a compiled ``train_step`` and gives
  fresh noise at every step. ``batch`` may be a symbolic size such as ``ops.shape(x)[0]``. (On a stateless
  backend such as JAX the model must track ``noise.seed_generator``; on TensorFlow it is an ordinary variable.)

Build one by name with ``get_noise("normal" | "uniform" | "skewnormal" | "normal_to_uniform", **kw)``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import keras
import numpy as np
from keras import ops

__all__ = ["Noise", "NormalNoise", "UniformNoise", "SkewNormalNoise", "NormalToUniformNoise", "get_noise",
           "serialize"]

#: A backend tensor (``tf.Tensor`` under TensorFlow); batch sizes may be symbolic scalars of this type.
Tensor = Any


class Noise:
    """Base class: subclasses implement ``_np(rng, shape)`` and ``_tf(shape)``.

    Args:
        seed: seed of the sampler's ``keras.random.SeedGenerator`` (the tensor path); None for a random one.
    """

    name = "noise"

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def sample(self, n: int, dim: int, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """Draw ``(n, dim)`` float32 samples with numpy; the same ``seed`` gives the same array. The draws are made in
        float32 (numpy's float32 generators are about twice as fast as float64 ones; at a latent size of 128 the
        noise costs as much as a small generator network).

        Args:
            n: number of events (0 allowed).
            dim: latent dimension.
            seed: anything ``np.random.default_rng`` takes; independent of the sampler's own ``seed``.

        Raises:
            ValueError: ``n < 0`` or ``dim <= 0``.
        """
        n, dim = _check_size(n, dim)
        return self._np(np.random.default_rng(seed), (n, dim)).astype(np.float32)

    def __call__(self, shape: Sequence[int | Tensor]) -> Tensor:
        """Draw a float32 tensor of ``shape`` with ``keras.random`` (graph-safe; advances the seed generator)."""
        return self._tf(tuple(shape))

    def tf_sample(self, batch: int | Tensor, dim: int) -> Tensor:
        """Shorthand for ``self((batch, dim))``, for use inside ``train_step``: a float32 ``(batch, dim)`` tensor."""
        return self((batch, dim))

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serialisable."""
        return {"seed": self.seed}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Noise:
        """``cls(**config)``, the inverse of ``get_config``."""
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _check_size(n, dim):
    n, dim = int(n), int(dim)
    if n < 0 or dim <= 0:
        raise ValueError(f"noise size must have n >= 0 and dim > 0, got n={n}, dim={dim}")
    return n, dim


class NormalNoise(Noise):
    """Standard normal noise N(0, 1), the usual GAN prior."""

    name = "normal"

    def _np(self, rng, shape):
        return rng.standard_normal(shape, dtype=np.float32)

    def _tf(self, shape):
        return keras.random.normal(shape, dtype="float32", seed=self.seed_generator)


class UniformNoise(Noise):
    """Uniform noise on ``[low, high)``.

    Raises:
        ValueError: ``high <= low``.
    """

    name = "uniform"

    def __init__(self, low: float = 0.0, high: float = 1.0, seed: int | None = None):
        if not float(high) > float(low):
            raise ValueError(f"UniformNoise needs high > low, got low={low}, high={high}")
        super().__init__(seed)
        self.low, self.high = float(low), float(high)

    def _np(self, rng, shape):
        x = np.float32(self.low) + np.float32(self.high - self.low) * rng.random(shape, dtype=np.float32)
        return np.minimum(x, np.nextafter(np.float32(self.high), np.float32(self.low)))  # [low, high) in float32

    def _tf(self, shape):
        return keras.random.uniform(shape, self.low, self.high, dtype="float32", seed=self.seed_generator)

    def get_config(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, **super().get_config()}


class SkewNormalNoise(Noise):
    """Skew-normal noise ``f(x | alpha) = 2 phi(x) Phi(alpha x)`` (Lin, Bhimji & Nachman 2019, sec. 2.1).

    Lin et al. found ``alpha = 5`` speeds up learning the right-skewed jet-mass distribution; ``alpha = 0`` is
    the standard normal. Sampled exactly as ``z = delta |u0| + sqrt(1 - delta^2) u1`` with
    ``delta = alpha / sqrt(1 + alpha^2)`` and ``u0, u1`` independent standard normals (Henze 1986's
    representation; not standardised: mean ``delta sqrt(2/pi)``, as the paper's density).

    Raises:
        ValueError: ``alpha`` is not finite.
    """

    name = "skewnormal"

    def __init__(self, alpha: float = 5.0, seed: int | None = None):
        alpha = float(alpha)
        if not math.isfinite(alpha):
            raise ValueError(f"SkewNormalNoise needs a finite alpha, got {alpha}")
        super().__init__(seed)
        self.alpha = alpha
        self.delta = alpha / math.sqrt(1.0 + alpha * alpha)

    def _np(self, rng, shape):
        u0, u1 = rng.standard_normal(shape, dtype=np.float32), rng.standard_normal(shape, dtype=np.float32)
        return self.delta * np.abs(u0) + math.sqrt(1.0 - self.delta ** 2) * u1

    def _tf(self, shape):
        u = keras.random.normal((2, *shape), dtype="float32", seed=self.seed_generator)
        return self.delta * ops.abs(u[0]) + math.sqrt(1.0 - self.delta ** 2) * u[1]

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha, **super().get_config()}


class NormalToUniformNoise(Noise):
    """Gaussian noise mapped into [0, 1] by the standard normal CDF.

    One reading of Lebese & Ruan (2021, sec. 4.3): "uniformly transformed random noise vectors of the size 128,
    drawn from Gaussian distributions ... in the [0,1] domain". In distribution this is exactly U(0, 1); it
    exists so the paper's wording has a literal implementation. That literal map is the tensor path (training);
    ``sample`` (generation) draws U(0, 1) directly, the same distribution at a fifteenth of the cost (the normal
    CDF of 128 numbers per event cost as much as the Lebese & Ruan generator network itself, issue 21).
    """

    name = "normal_to_uniform"

    def _np(self, rng, shape):
        return rng.random(shape, dtype=np.float32)

    def _tf(self, shape):
        z = keras.random.normal(shape, dtype="float32", seed=self.seed_generator)
        return 0.5 * (1.0 + ops.erf(z / math.sqrt(2.0)))


_REGISTRY = {cls.name: cls for cls in (NormalNoise, UniformNoise, SkewNormalNoise, NormalToUniformNoise)}
_ALIASES = {"gaussian": "normal", "skew_normal": "skewnormal", "skew-normal": "skewnormal"}


def get_noise(name_or_obj: str | Mapping[str, Any] | Noise = "normal", **kwargs: Any) -> Noise:
    """Return a sampler from a name (``normal``, ``uniform``, ``skewnormal``, ``normal_to_uniform``), a
    ``{"name": ..., "config": {...}}`` dict, or pass a ``Noise`` instance through unchanged.

    Names are case-insensitive; aliases: gaussian, skew_normal, skew-normal. ``kwargs`` go to the constructor
    (for a dict they override its ``config``).

    Raises:
        ValueError: unknown name; keyword arguments given with a ``Noise`` instance; invalid constructor values.
        TypeError: ``name_or_obj`` of another type; a keyword the constructor does not take.
        KeyError: a dict without ``"name"``.
    """
    if isinstance(name_or_obj, Noise):
        if kwargs:
            raise ValueError("get_noise: keyword arguments are not allowed with a Noise instance")
        return name_or_obj
    if isinstance(name_or_obj, dict):
        return get_noise(name_or_obj["name"], **{**name_or_obj.get("config", {}), **kwargs})
    if isinstance(name_or_obj, str):
        key = name_or_obj.lower()
        key = _ALIASES.get(key, key)
        if key not in _REGISTRY:
            raise ValueError(f"unknown noise {name_or_obj!r}; choose one of {sorted(_REGISTRY)}")
        return _REGISTRY[key](**kwargs)
    raise TypeError(f"get_noise expects a name, a dict or a Noise, got {type(name_or_obj).__name__}")


def serialize(noise: Noise) -> dict:
    """``{"name": ..., "config": {...}}``, the inverse of ``get_noise(dict)``."""
    return {"name": noise.name, "config": noise.get_config()}
