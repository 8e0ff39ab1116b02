"""Preprocessing for flows, as ``gan4hep.preprocessing.Transform`` subclasses (numpy in, numpy out, JSON state):
dequantisation of integer columns, the logit map of a bounded column, and named clipping ranges.

Why: a flow is a density on R^D, so integer-valued columns must be spread into a continuous density
(dequantisation; Uria, Murray, Larochelle, "RNADE", NIPS 2013; Theis et al., ICLR 2016), bounded columns mapped to
R (logit; Dinh et al., "Real NVP", ICLR 2017, sec. 4.1), and long tails saturated (clipping). FlashSim
[Vaselli, FlashSim docs/preprocessing.md, preprocessing/jets_preprocessing.py] adds 0.1 x N(0, 1) to jetId and
puId and clips massRatio to [0, 7] and ptRatio to [0, 3]; the later CMS FlashSim dequantises integers with
uniform +-0.5 noise.
"""

from __future__ import annotations

import numpy as np

from gan4hep.preprocessing import Transform

__all__ = ["Dequantise", "Logit", "Clip"]


def _per_column(value, n, who, what):
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        return np.full(n, float(arr[0]))
    if arr.size != n:
        raise ValueError(f"{who}: {what} has {arr.size} values for {n} selected columns")
    return arr


class Dequantise(Transform):
    """Add noise to integer-valued columns; ``inverse_transform`` rounds back to the nearest integer within the
    fitted [min, max] of each column, so ``inverse_transform(transform(x)) == x`` exactly.

    Args:
        kind: ``"uniform"``: + U(-width/2, width/2) (the CMS FlashSim choice with width 1); ``"gaussian"``:
            + width x N(0, 1) truncated to (-1/2, 1/2) (FlashSim's 0.1 x N(0, 1) for jetId / puId with width 0.1;
            the truncation, ours, removes the 6e-7 chance per value of crossing to the next integer).
        width: uniform full width (0 < width <= 1) or Gaussian sigma (> 0).
        seed: seed of the noise generator (each ``transform`` call draws fresh noise from it).
        columns: the integer columns (indices or names).

    Raises:
        ValueError: an unknown ``kind``, a bad ``width``; at fit, a selected column with non-integer values
            (names the column and row).
    """

    _params = ("kind", "width", "seed")
    _state = ("min_", "max_")
    KINDS = ("uniform", "gaussian")

    def __init__(self, kind: str = "uniform", width: float = 1.0, seed: int | None = None, columns=None):
        super().__init__(columns)
        if kind not in self.KINDS:
            raise ValueError(f"Dequantise kind must be one of {self.KINDS}, got {kind!r}")
        width = float(width)
        if not (width > 0 and (kind == "gaussian" or width <= 1.0)):
            raise ValueError(f"Dequantise: width must be in (0, 1] for uniform noise and > 0 for gaussian, got {width}")
        self.kind, self.width, self.seed = kind, width, seed
        self._rng = np.random.default_rng(seed)

    def _fit(self, xs):
        bad = xs != np.rint(xs)
        if bad.any():
            j = int(np.flatnonzero(bad.any(axis=0))[0])
            i = int(np.flatnonzero(bad[:, j])[0])
            raise ValueError(f"Dequantise.fit: {self._labels(j)} is not integer-valued (x = {xs[i, j]} at row {i})")
        self.min_, self.max_ = xs.min(axis=0), xs.max(axis=0)

    def _noise(self, shape):
        if self.kind == "uniform":
            return self._rng.uniform(-0.5, 0.5, shape) * self.width
        noise = self._rng.standard_normal(shape) * self.width
        bad = np.abs(noise) >= 0.5
        while bad.any():
            noise[bad] = self._rng.standard_normal(int(bad.sum())) * self.width
            bad = np.abs(noise) >= 0.5
        return noise

    def _forward(self, xs):
        return xs + self._noise(xs.shape)

    def _inverse(self, xs):
        return np.clip(np.rint(xs), self.min_, self.max_)


class Logit(Transform):
    """``logit(u)`` of ``u = alpha + (1 - 2 alpha) (x - low) / (high - low)``: maps (low, high) onto R.

    Args:
        low, high: the range (scalars, or one value per selected column).
        alpha: squeeze (Real NVP sec. 4.1); with alpha > 0 the closed range [low, high] is allowed.
        columns: the bounded columns.

    Raises:
        ValueError: ``high <= low``, ``alpha`` outside [0, 0.5); at fit and transform, a value outside the range
            (open for alpha = 0, closed for alpha > 0), naming the column and row. Nothing is clipped.
    """

    _params = ("low", "high", "alpha")

    def __init__(self, low=0.0, high=1.0, alpha: float = 0.0, columns=None):
        super().__init__(columns)
        self.low = np.asarray(low, dtype=np.float64).tolist()
        self.high = np.asarray(high, dtype=np.float64).tolist()
        if not np.all(np.asarray(self.high) > np.asarray(self.low)):
            raise ValueError(f"Logit needs high > low, got low={low}, high={high}")
        if not 0.0 <= float(alpha) < 0.5:
            raise ValueError(f"Logit alpha must be in [0, 0.5), got {alpha}")
        self.alpha = float(alpha)

    def _bounds(self, n):
        who = "Logit"
        return _per_column(self.low, n, who, "low"), _per_column(self.high, n, who, "high")

    def _fit(self, xs):
        self._forward(xs)

    def _forward(self, xs):
        low, high = self._bounds(xs.shape[1])
        outside = (xs < low) | (xs > high) if self.alpha > 0 else (xs <= low) | (xs >= high)
        if outside.any():
            j = int(np.flatnonzero(outside.any(axis=0))[0])
            i = int(np.flatnonzero(outside[:, j])[0])
            kind = "[low, high]" if self.alpha > 0 else "(low, high); pass alpha > 0 to allow the end points"
            raise ValueError(f"Logit: {self._labels(j)} has x = {xs[i, j]} at row {i} outside {kind} = "
                             f"({low[j]}, {high[j]})")
        u = self.alpha + (1.0 - 2.0 * self.alpha) * (xs - low) / (high - low)
        return np.log(u) - np.log1p(-u)

    def _inverse(self, xs):
        low, high = self._bounds(xs.shape[1])
        u = 1.0 / (1.0 + np.exp(-xs))
        return (u - self.alpha) / (1.0 - 2.0 * self.alpha) * (high - low) + low


class Clip(Transform):
    """Saturate columns to fixed ranges, ``x -> clip(x, low, high)`` (FlashSim: massRatio to [0, 7], ptRatio to
    [0, 3]). ``inverse_transform`` is the identity (values beyond the range are not recoverable). The fraction of
    values clipped at fit is kept per column (``clipped_fraction_``), so a run folder records what was saturated.

    Args:
        low, high: range per selected column (scalars or sequences; None = unbounded on that side).
        columns: the columns to clip.

    Raises:
        ValueError: both bounds None, or ``high < low``.
    """

    _params = ("low", "high")
    _state = ("clipped_fraction_",)

    def __init__(self, low=None, high=None, columns=None):
        super().__init__(columns)
        if low is None and high is None:
            raise ValueError("Clip needs low or high")
        self.low = None if low is None else np.asarray(low, dtype=np.float64).tolist()
        self.high = None if high is None else np.asarray(high, dtype=np.float64).tolist()
        if low is not None and high is not None and np.any(np.asarray(self.high) < np.asarray(self.low)):
            raise ValueError(f"Clip needs high >= low, got low={low}, high={high}")

    def _bounds(self, n):
        low = np.full(n, -np.inf) if self.low is None else _per_column(self.low, n, "Clip", "low")
        high = np.full(n, np.inf) if self.high is None else _per_column(self.high, n, "Clip", "high")
        return low, high

    def _fit(self, xs):
        low, high = self._bounds(xs.shape[1])
        self.clipped_fraction_ = ((xs < low) | (xs > high)).mean(axis=0)

    def _forward(self, xs):
        return np.clip(xs, *self._bounds(xs.shape[1]))

    def _inverse(self, xs):
        return xs
