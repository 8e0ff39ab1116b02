"""Monotone rational-quadratic splines with linear tails (Durkan, Bekasov, Murray, Papamakarios, "Neural Spline
Flows", NeurIPS 2019, arXiv:1906.04032, sec. 3.1 and appendix A), with the conventions of nflows
(``nflows/transforms/splines/rational_quadratic.py``), which the FlashSim flow uses:

- K bins on the square box [-B, B] x [-B, B] (B = ``tail_bound``); outside it the map is the identity (linear tails);
- widths / heights: ``min_bin + (1 - min_bin * K) * softmax(unnormalised)``, the box edges set exactly;
- inner knot derivatives: ``min_derivative + softplus(unnormalised)``; the two boundary derivatives are 1 (nflows
  pads the unnormalised derivatives with ``log(exp(1 - min_derivative) - 1)``), so the map is C1 at +-B;
- per transformed feature 3K - 1 parameters: K widths, K heights, K - 1 inner derivatives, in that order;
- a coupling or autoregressive transform divides the unnormalised widths and heights by sqrt(hidden width of its
  conditioner) before the softmax (nflows ``PiecewiseRationalQuadraticCouplingTransform._piecewise_cdf``).

Inputs outside the box are clipped to it before the spline arithmetic and the identity is selected afterwards
(as TensorFlow Probability does), so values and gradients stay finite for any finite input. The bin of each input
is the number of inner knots at or below it (the per-event ``searchsorted`` that nflows writes as a count).
The inverse uses the numerically stable root ``2c / (-b - sqrt(b^2 - 4ac))`` of Durkan et al. eq. (6)-(8), with the
discriminant floored at 0 (nflows asserts it is >= 0; issue bayesiains/nflows#87 reports rare float failures).
"""

from __future__ import annotations

import math

import keras
from keras import ops

__all__ = ["DEFAULT_MIN_BIN_WIDTH", "DEFAULT_MIN_BIN_HEIGHT", "DEFAULT_MIN_DERIVATIVE", "rational_quadratic_spline",
           "unconstrained_rational_quadratic_spline", "RationalQuadraticSpline"]

DEFAULT_MIN_BIN_WIDTH = 1e-3
DEFAULT_MIN_BIN_HEIGHT = 1e-3
DEFAULT_MIN_DERIVATIVE = 1e-3


def _knots(unnormalised, low, high, min_bin):
    """Softmax bin sizes with a floor -> (knot positions (..., K+1) with the edges set exactly, sizes (..., K))."""
    k = unnormalised.shape[-1]
    cum = ops.cumsum(min_bin + (1.0 - min_bin * k) * ops.softmax(unnormalised, axis=-1), axis=-1)
    edge = ops.ones_like(cum[..., :1])
    cum = ops.concatenate([edge * low, (high - low) * cum[..., :-1] + low, edge * high], axis=-1)
    return cum, cum[..., 1:] - cum[..., :-1]


def rational_quadratic_spline(inputs, unnormalized_widths, unnormalized_heights, unnormalized_derivatives,
                              inverse: bool = False, left: float = -1.0, right: float = 1.0, bottom: float = -1.0,
                              top: float = 1.0, min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
                              min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
                              min_derivative: float = DEFAULT_MIN_DERIVATIVE):
    """The spline on the box [left, right] x [bottom, top] (Durkan et al. 2019, eqs. (4)-(8)).

    Args:
        inputs: (...) tensor, every value inside [left, right] (forward) or [bottom, top] (inverse); values
            outside are put in the first or last bin (use ``unconstrained_rational_quadratic_spline`` for tails).
        unnormalized_widths, unnormalized_heights: (..., K).
        unnormalized_derivatives: (..., K + 1), all knots including the two boundary ones.
        inverse: evaluate the inverse map.

    Returns:
        ``(outputs, logabsdet)``, both shaped like ``inputs``; ``logabsdet`` = log |d outputs / d inputs|.

    Raises:
        ValueError: ``min_bin_width * K > 1`` or ``min_bin_height * K > 1``.
    """
    k = unnormalized_widths.shape[-1]
    if min_bin_width * k > 1.0:
        raise ValueError(f"minimal bin width {min_bin_width} too large for {k} bins")
    if min_bin_height * k > 1.0:
        raise ValueError(f"minimal bin height {min_bin_height} too large for {k} bins")
    cumwidths, widths = _knots(unnormalized_widths, left, right, min_bin_width)
    cumheights, heights = _knots(unnormalized_heights, bottom, top, min_bin_height)
    derivatives = min_derivative + ops.softplus(unnormalized_derivatives)

    locations = cumheights if inverse else cumwidths
    # bin index = number of inner knots at or below the input; the bin's values are picked with a one-hot mask
    # (cheaper to trace and to differentiate than a batched gather)
    index = ops.sum(ops.cast(inputs[..., None] >= locations[..., 1:-1], "int32"), axis=-1)
    onehot = ops.one_hot(index, k, dtype=inputs.dtype)

    def pick(values):
        return ops.sum(values * onehot, axis=-1)

    x_k, w_k = pick(cumwidths[..., :-1]), pick(widths)
    y_k, h_k = pick(cumheights[..., :-1]), pick(heights)
    delta = h_k / w_k
    d_k, d_k1 = pick(derivatives[..., :-1]), pick(derivatives[..., 1:])
    curvature = d_k + d_k1 - 2.0 * delta

    if inverse:
        shifted = inputs - y_k
        a = shifted * curvature + h_k * (delta - d_k)
        b = h_k * d_k - shifted * curvature
        c = -delta * shifted
        discriminant = ops.maximum(b * b - 4.0 * a * c, 0.0)
        theta = ops.clip((2.0 * c) / (-b - ops.sqrt(discriminant)), 0.0, 1.0)
        outputs = theta * w_k + x_k
    else:
        theta = (inputs - x_k) / w_k
    theta_one_minus_theta = theta * (1.0 - theta)
    denominator = delta + curvature * theta_one_minus_theta
    if not inverse:
        numerator = h_k * (delta * theta * theta + d_k * theta_one_minus_theta)
        outputs = y_k + numerator / denominator
    derivative_numerator = delta * delta * (d_k1 * theta * theta + 2.0 * delta * theta_one_minus_theta
                                            + d_k * (1.0 - theta) * (1.0 - theta))
    logabsdet = ops.log(derivative_numerator) - 2.0 * ops.log(denominator)
    return outputs, (-logabsdet if inverse else logabsdet)


def unconstrained_rational_quadratic_spline(inputs, unnormalized_widths, unnormalized_heights,
                                            unnormalized_derivatives, inverse: bool = False,
                                            tail_bound: float = 1.0, min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
                                            min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
                                            min_derivative: float = DEFAULT_MIN_DERIVATIVE):
    """The spline on [-B, B] with linear (identity) tails outside: nflows ``tails="linear"``.

    Args:
        inputs: (...) tensor, any finite values.
        unnormalized_widths, unnormalized_heights: (..., K).
        unnormalized_derivatives: (..., K - 1), the inner knots (the boundary derivatives are fixed to 1).
        inverse, tail_bound, min_*: see ``rational_quadratic_spline``.

    Returns:
        ``(outputs, logabsdet)`` shaped like ``inputs`` (identity and 0 outside [-B, B]).
    """
    bound = float(tail_bound)
    constant = math.log(math.exp(1.0 - min_derivative) - 1.0)
    pad = [[0, 0]] * (len(unnormalized_derivatives.shape) - 1) + [[1, 1]]
    unnormalized_derivatives = ops.pad(unnormalized_derivatives, pad, constant_values=constant)
    inside = ops.logical_and(inputs >= -bound, inputs <= bound)
    clipped = ops.clip(inputs, -bound, bound)
    outputs, logabsdet = rational_quadratic_spline(
        clipped, unnormalized_widths, unnormalized_heights, unnormalized_derivatives, inverse=inverse,
        left=-bound, right=bound, bottom=-bound, top=bound, min_bin_width=min_bin_width,
        min_bin_height=min_bin_height, min_derivative=min_derivative)
    return ops.where(inside, outputs, inputs), ops.where(inside, logabsdet, ops.zeros_like(logabsdet))


@keras.saving.register_keras_serializable(package="gan4hep")
class RationalQuadraticSpline:
    """Element-wise rational-quadratic spline with linear tails, for coupling and autoregressive transforms
    (nflows ``PiecewiseRationalQuadraticCouplingTransform`` with ``tails="linear"``).

    An element-wise transformer maps ``x`` (B, n) with parameters ``params`` (B, n, ``params_per_feature``) to
    ``(y, logdet)``, both (B, n).

    Args:
        bins: K, number of bins (FlashSim: 128).
        tail_bound: B, half-width of the spline box (nflows default 1.0, never overridden by FlashSim).
        min_bin_width, min_bin_height, min_derivative: floors (nflows defaults 1e-3).

    Raises:
        ValueError: ``bins < 1``, ``tail_bound <= 0``, or a floor times K above 1.
    """

    def __init__(self, bins: int = 8, tail_bound: float = 1.0, min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
                 min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT, min_derivative: float = DEFAULT_MIN_DERIVATIVE):
        self.bins, self.tail_bound = int(bins), float(tail_bound)
        self.min_bin_width, self.min_bin_height = float(min_bin_width), float(min_bin_height)
        self.min_derivative = float(min_derivative)
        if self.bins < 1 or not self.tail_bound > 0:
            raise ValueError(f"RationalQuadraticSpline needs bins >= 1 and tail_bound > 0, got {bins}, {tail_bound}")
        if self.min_bin_width * self.bins > 1 or self.min_bin_height * self.bins > 1:
            raise ValueError(f"minimal bin width/height too large for {self.bins} bins")

    @property
    def params_per_feature(self) -> int:
        """3K - 1: K widths, K heights, K - 1 inner derivatives."""
        return 3 * self.bins - 1

    def _split(self, params, hidden_features):
        k = self.bins
        widths, heights, derivatives = params[..., :k], params[..., k:2 * k], params[..., 2 * k:]
        if hidden_features:
            scale = 1.0 / math.sqrt(hidden_features)
            widths, heights = widths * scale, heights * scale
        return widths, heights, derivatives

    def _apply(self, x, params, hidden_features, inverse):
        widths, heights, derivatives = self._split(params, hidden_features)
        return unconstrained_rational_quadratic_spline(
            x, widths, heights, derivatives, inverse=inverse, tail_bound=self.tail_bound,
            min_bin_width=self.min_bin_width, min_bin_height=self.min_bin_height,
            min_derivative=self.min_derivative)

    def forward(self, x, params, hidden_features: int | None = None):
        """(B, n), (B, n, 3K-1) -> (y, log |dy/dx|), both (B, n). ``hidden_features``: divide the unnormalised
        widths and heights by its square root (nflows)."""
        return self._apply(x, params, hidden_features, inverse=False)

    def inverse(self, y, params, hidden_features: int | None = None):
        """The inverse map: (B, n), (B, n, 3K-1) -> (x, log |dx/dy|)."""
        return self._apply(y, params, hidden_features, inverse=True)

    def get_config(self):
        return {"bins": self.bins, "tail_bound": self.tail_bound, "min_bin_width": self.min_bin_width,
                "min_bin_height": self.min_bin_height, "min_derivative": self.min_derivative}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"RationalQuadraticSpline(bins={self.bins}, tail_bound={self.tail_bound})"
