"""Fidelity metrics for generated HEP samples (numpy/scipy; scikit-learn only for the classifier test).

Conventions
-----------
* ``reference`` is the truth (MC), ``generated`` the sample under test.
* 1-d input gives a float; 2-d input ``(n_events, n_features)`` gives one value per feature.
* Inputs may be numpy arrays, pandas Series or DataFrames; DataFrame column names appear in errors.
* ``weights`` (optional, per event) are supported wherever the weighted estimator is cheap.
* Negative weights (NLO Monte Carlo) follow one policy: they are accepted where the quantity is defined for a
  signed measure — weighted histograms (chi2; the separation power as long as every bin's total is >= 0), means,
  KS and W1 through the weighted CDFs, MMD, Pearson correlations, the quantile error — and refused by name
  (``InputError`` naming the argument and the function) where it is not: equal-weight quantile edges, the
  classifier test. Every weight array must be finite with a positive sum.
* NaN/inf, mismatched feature counts and bad weights raise ``gan4hep.errors.InputError`` (a ``ValueError``)
  naming the column or argument.
* Values that are not dimensionless (Wasserstein distances, means) are in the units of the input features.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from . import kernels
from .errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "quantile_edges",
    "separation_power",
    "separation_power_hist",
    "separation_power_floor",
    "relative_mean_difference",
    "wasserstein",
    "ks_statistic",
    "chi2_histograms",
    "chi2_ndf",
    "mmd2",
    "correlation_matrix",
    "correlation_difference",
    "max_abs_correlation_difference",
    "quantile_error",
    "expected_quantile_error",
    "equivalent_events",
    "amplification_factor",
    "classifier_two_sample_test",
    "fidelity_report",
]


# --------------------------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------------------------
def _column_names(x, n: int, names: Sequence[str] | None) -> list[str]:
    if names is not None:
        names = [str(v) for v in names]
        if len(names) != n:
            raise InputError(f"got {len(names)} names for {n} feature columns")
        return names
    cols = getattr(x, "columns", None)
    if cols is not None:
        return [str(c) for c in cols]
    name = getattr(x, "name", None)
    if name is not None and n == 1:
        return [str(name)]
    return [f"column {i}" for i in range(n)]


def _as_2d(x, what: str, names: Sequence[str] | None = None) -> tuple[np.ndarray, list[str], bool]:
    """Return ``(array (n, d) float64, column names, was_1d)``; reject NaN/inf naming the column."""
    if x is None:
        raise InputError(f"{what} is None")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"{what} is not a numeric sample ({err})") from None
    was_1d = arr.ndim == 1
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim != 2:
        raise InputError(f"{what} must be 1-d (events) or 2-d (events, features), got shape {arr.shape}")
    cols = _column_names(x, arr.shape[1], names)
    if arr.shape[0] == 0:
        raise InputError(f"{what} has no events")
    bad = ~np.isfinite(arr)
    if bad.any():
        j = int(np.argmax(bad.any(axis=0)))
        raise InputError(f"{what} has {int(bad[:, j].sum())} NaN/inf values in column {cols[j]!r}")
    return arr, cols, was_1d


def _pair(reference, generated, names=None):
    ref, cols, was_1d = _as_2d(reference, "reference", names)
    gen, gcols, _ = _as_2d(generated, "generated", names)
    if ref.shape[1] != gen.shape[1]:
        raise InputError(
            f"reference has {ref.shape[1]} feature columns ({cols}) but generated has {gen.shape[1]} ({gcols})"
        )
    return ref, gen, cols, was_1d


def _weights(w, n: int, what: str, refuse_negative: str | None = None) -> np.ndarray | None:
    """Checked per-event weights ``(n,)`` or None; ``refuse_negative`` names the function (and why) that is not
    defined for negative weights."""
    if w is None:
        return None
    try:
        w = np.asarray(w, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"{what} are not numbers ({err})") from None
    if w.shape != (n,):
        raise InputError(f"{what} must have shape ({n},) (one per event), got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise InputError(f"{what} contains {int((~np.isfinite(w)).sum())} NaN/inf values")
    if w.sum() <= 0:
        raise InputError(f"{what} must have a positive sum (got {w.sum():.6g})")
    if refuse_negative is not None and (w < 0).any():
        raise InputError(f"{what} has {int((w < 0).sum())} negative weights (of {n}): {refuse_negative}")
    return w


def _out(values, was_1d: bool):
    values = np.asarray(values, dtype=np.float64)
    return float(values[0]) if was_1d else values


# --------------------------------------------------------------------------------------------------------------
# binned shape comparisons
# --------------------------------------------------------------------------------------------------------------
def quantile_edges(x: ArrayLike, n_bins: int, weights: ArrayLike | None = None) -> np.ndarray:
    """Bin edges holding equal (weighted) fractions of ``x``: equal-statistics bins as used by Lin et al.
    (2019, sec. 3.3).

    Args:
        x: a 1-d sample ``(n_events,)`` (or ``(n_events, 1)``).
        n_bins: number of bins.
        weights: per-event weights ``(n_events,)``.

    Returns:
        Sorted unique edges, at most ``n_bins + 1`` of them (fewer where quantiles coincide), in the units of ``x``.

    Raises:
        ValueError: ``x`` empty, non-finite or with more than one column; bad weights.
    """
    arr, cols, _ = _as_2d(x, "x")
    if arr.shape[1] != 1:
        raise InputError("quantile_edges needs a 1-d sample")
    arr = arr[:, 0]
    w = _weights(weights, arr.size, "weights", refuse_negative="quantile_edges needs a cumulative weight that "
                 "only grows (pass |weights| or no weights)")
    q = np.linspace(0.0, 1.0, int(n_bins) + 1)
    if w is None:
        edges = np.quantile(arr, q)
    else:
        order = np.argsort(arr)
        cw = np.cumsum(w[order])
        cw /= cw[-1]
        edges = np.interp(q, np.concatenate([[0.0], cw]), np.concatenate([[arr[order][0]], arr[order]]))
    return np.unique(edges)


def _edges(a: np.ndarray, b: np.ndarray, bins, what: str) -> np.ndarray:
    if np.ndim(bins) == 0:
        n = int(bins)
        if n < 1:
            raise ValueError(f"bins must be >= 1 for {what}, got {bins}")
        lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
        if hi == lo:
            lo, hi = lo - 0.5, hi + 0.5
        return np.linspace(lo, hi, n + 1)
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bin edges for {what} must be 1-d and strictly increasing")
    return edges


def weighted_histogram(x: ArrayLike, edges: ArrayLike, weights: ArrayLike | None = None,
                       overflow: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Weighted counts and sum of squared weights (the variances) on ``edges``; with ``overflow`` events outside
    the edges are counted in the first/last bin instead of being dropped.

    ``x`` and ``weights`` are ``(n_events,)``; both outputs are float64 ``(len(edges) - 1,)``. Inputs are not
    checked for NaN.

    Raises:
        ValueError: edges not monotonically increasing, or ``weights`` of another shape (from ``np.histogram``).
    """
    return _hist(np.asarray(x, dtype=np.float64), np.asarray(edges, dtype=np.float64),
                 None if weights is None else np.asarray(weights, dtype=np.float64), overflow)


def _hist(x: np.ndarray, edges: np.ndarray, w: np.ndarray | None, overflow: bool):
    """Weighted counts and sum of squared weights; with ``overflow`` out-of-range events go to the end bins."""
    if overflow:
        x = np.clip(x, edges[0], edges[-1])
    counts, _ = np.histogram(x, bins=edges, weights=w)
    sumw2, _ = np.histogram(x, bins=edges, weights=None if w is None else w * w)
    return counts.astype(np.float64), sumw2.astype(np.float64)


def separation_power_hist(p_counts: ArrayLike, q_counts: ArrayLike) -> float:
    """Separation power (Lin, Bhimji & Nachman 2019, sec. 3.3, eq. 3.1) of two histograms on the same binning.

    ``S = 1/2 sum_i (p_i - q_i)^2 / (p_i + q_i)`` after normalising each histogram to unit sum; bins empty in
    both are skipped. ``S`` is 0 for identical shapes and 1 for histograms with no bin in common.

    Args:
        p_counts, q_counts: bin contents of the same shape (e.g. ``(n_bins,)``).

    Raises:
        ValueError: different shapes; NaN/inf contents; a histogram with non-positive sum.
    """
    p = np.asarray(p_counts, dtype=np.float64)
    q = np.asarray(q_counts, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"histograms have different binnings: {p.shape} vs {q.shape}")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))):
        raise ValueError("histogram contents contain NaN/inf")
    if p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("cannot normalise an empty histogram")
    p = p / p.sum()
    q = q / q.sum()
    s = p + q
    nz = s != 0
    return float(0.5 * np.sum((p[nz] - q[nz]) ** 2 / s[nz]))


def separation_power(reference: ArrayLike, generated: ArrayLike, bins: int | ArrayLike = 20,
                     weights_ref: ArrayLike | None = None, weights_gen: ArrayLike | None = None,
                     overflow: bool = True) -> float | np.ndarray:
    """Binned separation power (Lin et al. 2019, sec. 3.3, eq. 3.1) in [0, 1], per feature.

    ``bins`` is an int (equal-width edges spanning both samples) or explicit edges (e.g. from
    :func:`quantile_edges` of the reference). With ``overflow`` (default) events outside explicit edges are
    counted in the first/last bin rather than dropped. Two finite samples of one distribution give about
    :func:`separation_power_floor`, not 0.

    Args:
        reference, generated: ``(n_events,)`` or ``(n_events, n_features)``; sizes may differ.
        bins: number of bins, or edges ``(n_bins + 1,)`` shared by all features (in the features' units).
        weights_ref, weights_gen: per-event weights.
        overflow: count events outside the edges in the end bins.

    Returns:
        A float for 1-d input, else an array ``(n_features,)``.

    Raises:
        ValueError: invalid samples, weights or edges (see the module conventions); ``bins < 1``; no events inside
            explicit edges without ``overflow``.
    """
    hists, was_1d = _feature_histograms(reference, generated, bins, weights_ref, weights_gen, overflow)
    out = []
    for c, p, _, q, _ in hists:
        if p.sum() <= 0 or q.sum() <= 0:
            raise InputError(f"column {c!r}: no events inside the bin edges")
        for label, h in (("reference", p), ("generated", q)):
            if (h < 0).any():
                raise InputError(f"column {c!r}: the {label} histogram has a negative total weight in bin "
                                 f"{int(np.argmax(h < 0))} (negative event weights); the separation power is not "
                                 "defined for it: use wider bins or chi2_ndf")
        out.append(separation_power_hist(p, q))
    return _out(out, was_1d)


def _feature_histograms(reference, generated, bins, weights_ref, weights_gen, overflow):
    """Per feature, on common edges: (column, ref counts, ref variances, gen counts, gen variances); and was_1d."""
    ref, gen, cols, was_1d = _pair(reference, generated)
    wr = _weights(weights_ref, ref.shape[0], "weights_ref")
    wg = _weights(weights_gen, gen.shape[0], "weights_gen")
    hists = []
    for j, c in enumerate(cols):
        edges = _edges(ref[:, j], gen[:, j], bins, repr(c))
        hists.append((c, *_hist(ref[:, j], edges, wr, overflow), *_hist(gen[:, j], edges, wg, overflow)))
    return hists, was_1d


def separation_power_floor(n_ref: float, n_gen: float, n_bins: int) -> float:
    """Expected binned separation power of two independent samples of one distribution: ``B (1/N1 + 1/N2) / 4``.

    This is the statistical floor (``B / 2N`` for equal sizes) to print beside any measured value: the leading
    order in ``1/N`` for Poisson bin counts (derived here, not taken from Lin et al.). ``n_ref``, ``n_gen`` are
    event counts (effective counts for weighted samples).

    Raises:
        ZeroDivisionError: ``n_ref`` or ``n_gen`` is a Python 0.
    """
    return float(n_bins * (1.0 / n_ref + 1.0 / n_gen) / 4.0)


def chi2_histograms(ref_counts: ArrayLike, gen_counts: ArrayLike, ref_var: ArrayLike | None = None,
                    gen_var: ArrayLike | None = None, normalise: bool = True) -> tuple[float, int]:
    """Chi-square of two histograms with both samples' statistical errors: returns ``(chi2, ndf)``.

    ``chi2 = sum_i (r_i - g_i)^2 / (var_r_i + var_g_i)`` over bins non-empty in at least one histogram. Variances
    default to the counts (Poisson; pass sum of squared weights for weighted histograms). With ``normalise``
    both histograms are scaled to unit sum (variances by the square of the scale) and ``ndf = n_bins - 1``,
    since the normalisation removes one degree of freedom; otherwise ``ndf = n_bins``. ``n_bins`` counts the
    bins used. All four arrays have one shape, e.g. ``(n_bins,)``.

    Raises:
        ValueError: counts or variances of different shapes; with ``normalise``, a histogram with non-positive sum.
    """
    r = np.asarray(ref_counts, dtype=np.float64)
    g = np.asarray(gen_counts, dtype=np.float64)
    if r.shape != g.shape:
        raise ValueError(f"histograms have different binnings: {r.shape} vs {g.shape}")
    vr = r.copy() if ref_var is None else np.asarray(ref_var, dtype=np.float64)
    vg = g.copy() if gen_var is None else np.asarray(gen_var, dtype=np.float64)
    if vr.shape != r.shape or vg.shape != g.shape:
        raise ValueError("variances must have the shape of their histograms")
    if normalise:
        if r.sum() <= 0 or g.sum() <= 0:
            raise ValueError("cannot normalise an empty histogram")
        sr, sg = 1.0 / r.sum(), 1.0 / g.sum()
        r, g, vr, vg = r * sr, g * sg, vr * sr**2, vg * sg**2
    var = vr + vg
    used = var > 0
    n = int(used.sum())
    chi2 = float(np.sum((r[used] - g[used]) ** 2 / var[used]))
    ndf = n - 1 if normalise else n
    return chi2, ndf


def chi2_ndf(reference: ArrayLike, generated: ArrayLike, bins: int | ArrayLike = 20,
             weights_ref: ArrayLike | None = None, weights_gen: ArrayLike | None = None,
             overflow: bool = True) -> float | np.ndarray:
    """Chi-square per degree of freedom of the normalised histograms of two samples, per feature.

    Errors are the statistical ones of both samples (sqrt of sum of squared weights); see :func:`chi2_histograms`.
    Inputs, ``bins`` and the return shape as in :func:`separation_power`; NaN where ``ndf <= 0``. Two samples of
    one distribution give about 1.

    Raises:
        ValueError: as :func:`separation_power`; a feature with no events inside explicit edges.
    """
    hists, was_1d = _feature_histograms(reference, generated, bins, weights_ref, weights_gen, overflow)
    out = []
    for _, r, vr, g, vg in hists:
        chi2, ndf = chi2_histograms(r, g, vr, vg, normalise=True)
        out.append(chi2 / ndf if ndf > 0 else np.nan)
    return _out(out, was_1d)


# --------------------------------------------------------------------------------------------------------------
# unbinned 1-d comparisons
# --------------------------------------------------------------------------------------------------------------
def _mean(x: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    return x.mean(axis=0) if w is None else np.average(x, axis=0, weights=w)


def relative_mean_difference(reference: ArrayLike, generated: ArrayLike, weights_ref: ArrayLike | None = None,
                             weights_gen: ArrayLike | None = None) -> float | np.ndarray:
    """``|mean_gen - mean_ref| / |mean_ref|`` per feature (the Lebese & Ruan 2021 Table 1 criterion, sec. 5).

    A zero reference mean gives ``inf`` (0 if both means are 0). A weak test: means can agree while shapes do not.
    Inputs and return shape as in :func:`separation_power`; dimensionless.

    Raises:
        ValueError: invalid samples or weights.
    """
    ref, gen, _, was_1d = _pair(reference, generated)
    wr = _weights(weights_ref, ref.shape[0], "weights_ref")
    wg = _weights(weights_gen, gen.shape[0], "weights_gen")
    mr, mg = _mean(ref, wr), _mean(gen, wg)
    with np.errstate(divide="ignore", invalid="ignore"):
        rmd = np.abs(mg - mr) / np.abs(mr)
    rmd = np.where((mg == mr), 0.0, rmd)
    return _out(rmd, was_1d)


def wasserstein(reference: ArrayLike, generated: ArrayLike, weights_ref: ArrayLike | None = None,
                weights_gen: ArrayLike | None = None) -> float | np.ndarray:
    """1-d Wasserstein (earth mover's) distance per feature, in the features' units (scipy).

    Inputs and return shape as in :func:`separation_power`. With negative weights it is computed through the
    weighted CDFs, ``integral |F_ref - F_gen| dx`` (the same number as scipy's for non-negative weights).

    Raises:
        ValueError: invalid samples or weights.
    """
    ref, gen, _, was_1d = _pair(reference, generated)
    wr = _weights(weights_ref, ref.shape[0], "weights_ref")
    wg = _weights(weights_gen, gen.shape[0], "weights_gen")
    if (wr is not None and (wr < 0).any()) or (wg is not None and (wg < 0).any()):
        out = [_cdf_w1(ref[:, j], gen[:, j], wr, wg) for j in range(ref.shape[1])]
    else:
        out = [stats.wasserstein_distance(ref[:, j], gen[:, j], wr, wg) for j in range(ref.shape[1])]
    return _out(out, was_1d)


def _cdf_w1(a, b, wa, wb) -> float:
    """``integral |F_a - F_b| dx`` of the weighted empirical CDFs (normalised to their sums): W1 for non-negative
    weights (equal to scipy's), and its definition through the CDF for signed weights."""
    wa = np.ones_like(a) if wa is None else wa
    wb = np.ones_like(b) if wb is None else wb
    x = np.concatenate([a, b])
    order = np.argsort(x, kind="mergesort")
    x = x[order]
    dw = np.concatenate([wa / wa.sum(), -wb / wb.sum()])[order]
    diff = np.cumsum(dw)[:-1]
    return float(np.sum(np.abs(diff) * np.diff(x)))


def _weighted_ks(a, b, wa, wb) -> float:
    """Largest distance between two weighted empirical CDFs (evaluated at every data point)."""
    wa = np.ones_like(a) if wa is None else wa
    wb = np.ones_like(b) if wb is None else wb
    ia, ib = np.argsort(a), np.argsort(b)
    a, wa, b, wb = a[ia], wa[ia], b[ib], wb[ib]
    ca = np.concatenate([[0.0], np.cumsum(wa) / wa.sum()])
    cb = np.concatenate([[0.0], np.cumsum(wb) / wb.sum()])
    x = np.concatenate([a, b])
    fa = ca[np.searchsorted(a, x, side="right")]
    fb = cb[np.searchsorted(b, x, side="right")]
    return float(np.max(np.abs(fa - fb)))


def ks_statistic(reference: ArrayLike, generated: ArrayLike, weights_ref: ArrayLike | None = None,
                 weights_gen: ArrayLike | None = None) -> float | np.ndarray:
    """Two-sample Kolmogorov-Smirnov statistic per feature (scipy ``ks_2samp``; weighted ECDFs if weights).

    Inputs and return shape as in :func:`separation_power`; values in [0, 1] (can exceed 1 with negative weights,
    whose CDFs need not be monotone).

    Raises:
        ValueError: invalid samples or weights.
    """
    ref, gen, _, was_1d = _pair(reference, generated)
    wr = _weights(weights_ref, ref.shape[0], "weights_ref")
    wg = _weights(weights_gen, gen.shape[0], "weights_gen")
    out = []
    for j in range(ref.shape[1]):
        if wr is None and wg is None:
            out.append(stats.ks_2samp(ref[:, j], gen[:, j]).statistic)
        else:
            out.append(_weighted_ks(ref[:, j], gen[:, j], wr, wg))
    return _out(out, was_1d)


# --------------------------------------------------------------------------------------------------------------
# MMD
# --------------------------------------------------------------------------------------------------------------
def _kernel_sum(a, b, wa, wb, kernel, width, exclude_diagonal: bool, block: int = 2048):
    """``sum_ij wa_i wb_j k(a_i, b_j)`` in row blocks (bounded memory); optionally without ``i == j``."""
    total = 0.0
    for start in range(0, a.shape[0], block):
        k = kernels.kernel_matrix(a[start : start + block], b, width, kernel)
        if exclude_diagonal:
            rows = np.arange(k.shape[0])
            k[rows, start + rows] = 0.0
        total += float(wa[start : start + block] @ k @ wb)
    return total


def mmd2(reference: ArrayLike, generated: ArrayLike, kernel: str = "gaussian", width: float = 1.0,
         unbiased: bool = True, weights_ref: ArrayLike | None = None, weights_gen: ArrayLike | None = None) -> float:
    """Squared maximum mean discrepancy (Gretton et al. 2012, JMLR 13:723) over all features jointly.

    ``MMD^2 = <k(x,x')> + <k(y,y')> - 2 <k(x,y)>`` (Butter & Plehn review, sec. 4.3, Eq. (23), the MMD loss of
    Butter, Plehn & Winterhalder 2019), kernels as in :mod:`gan4hep.kernels` (the same as the training
    penalty's); ``width`` is in the units of the features (Euclidean distance over all of them).
    ``unbiased=True`` (default) is the U-statistic: the within-sample averages leave out
    ``x == x'`` pairs, so the value fluctuates around 0 (and can be negative) for one distribution.
    ``unbiased=False`` is the V-statistic, which includes them: always >= 0, biased up by about
    ``(1/N + 1/M)(1 - <k>)``. Weighted averages replace the plain ones when weights are given. Cost is
    ``O((N + M)^2)``: subsample large samples first.

    Args:
        reference, generated: ``(n_events,)`` or ``(n_events, n_features)``; sizes may differ.

    Raises:
        ValueError: unknown kernel or width <= 0; invalid samples or weights; ``unbiased`` with fewer than 2
            events in a sample.
    """
    kernels.check_kernel(kernel, width)
    ref, gen, _, _ = _pair(reference, generated)
    wr = _weights(weights_ref, ref.shape[0], "weights_ref")
    wg = _weights(weights_gen, gen.shape[0], "weights_gen")
    wr = np.ones(ref.shape[0]) if wr is None else wr
    wg = np.ones(gen.shape[0]) if wg is None else wg
    if unbiased and (ref.shape[0] < 2 or gen.shape[0] < 2):
        raise InputError("the unbiased MMD^2 needs at least 2 events per sample")

    def within(x, w, what):
        s = _kernel_sum(x, x, w, w, kernel, width, exclude_diagonal=unbiased)
        norm = w.sum() ** 2 - (np.sum(w * w) if unbiased else 0.0)
        if norm <= 0:
            raise InputError(f"{what}: the unbiased MMD^2 needs (sum w)^2 > sum w^2, not so for these (negative) "
                             "weights; pass unbiased=False")
        return s / norm

    cross = _kernel_sum(ref, gen, wr, wg, kernel, width, exclude_diagonal=False) / (wr.sum() * wg.sum())
    return float(within(ref, wr, "weights_ref") + within(gen, wg, "weights_gen") - 2.0 * cross)


# --------------------------------------------------------------------------------------------------------------
# correlations
# --------------------------------------------------------------------------------------------------------------
def correlation_matrix(x: ArrayLike, method: str = "pearson", weights: ArrayLike | None = None,
                       names: Sequence[str] | None = None) -> np.ndarray:
    """Feature-feature correlation matrix: ``pearson`` (linear; weighted if weights) or ``spearman`` (ranks).

    Args:
        x: ``(n_events, n_features)`` (or ``(n_events,)``, giving ``[[1.0]]``).
        names: feature names for error messages.

    Returns:
        ``(n_features, n_features)`` float64.

    Raises:
        ValueError: invalid sample or weights; a constant column; weighted Spearman; an unknown ``method``.
    """
    arr, cols, _ = _as_2d(x, "x", names)
    w = _weights(weights, arr.shape[0], "weights")
    const = np.ptp(arr, axis=0) == 0
    if const.any():
        raise InputError(f"column {cols[int(np.argmax(const))]!r} is constant: its correlation is undefined")
    if method == "pearson":
        if w is None:
            c = np.corrcoef(arr, rowvar=False)
        elif (w >= 0).all():
            c = _cov_to_corr(np.cov(arr, rowvar=False, aweights=w))
        else:  # signed weights: the weighted moments are still defined while every variance is positive
            d = arr - np.average(arr, axis=0, weights=w)
            cov = (d * w[:, None]).T @ d / w.sum()
            bad = np.diag(cov) <= 0
            if bad.any():
                raise InputError(f"column {cols[int(np.argmax(bad))]!r}: its weighted variance is <= 0 with these "
                                 "negative weights; the correlation is undefined")
            c = _cov_to_corr(cov)
    elif method == "spearman":
        if w is not None:
            raise InputError("weighted Spearman correlation is not supported; use method='pearson'")
        c = stats.spearmanr(arr).statistic
    else:
        raise InputError(f"unknown correlation method {method!r}; choose 'pearson' or 'spearman'")
    if arr.shape[1] == 1:
        return np.ones((1, 1))
    c = np.asarray(c, dtype=np.float64)
    if c.ndim == 0:  # scipy returns a scalar for two columns
        c = np.array([[1.0, float(c)], [float(c), 1.0]])
    return c


def _cov_to_corr(cov):
    cov = np.atleast_2d(cov)
    s = np.sqrt(np.diag(cov))
    return cov / np.outer(s, s)


def correlation_difference(reference: ArrayLike, generated: ArrayLike, method: str = "pearson",
                           weights_ref: ArrayLike | None = None, weights_gen: ArrayLike | None = None,
                           names: Sequence[str] | None = None) -> np.ndarray:
    """``corr(generated) - corr(reference)``, the matrix shown as the third heatmap of Lebese & Ruan Fig. 5.

    Returns ``(n_features, n_features)``; raises ValueError as :func:`correlation_matrix` or for a feature-count
    mismatch.
    """
    ref, gen, cols, _ = _pair(reference, generated, names)
    return correlation_matrix(gen, method, weights_gen, cols) - correlation_matrix(ref, method, weights_ref, cols)


def max_abs_correlation_difference(reference: ArrayLike, generated: ArrayLike, method: str = "pearson",
                                   weights_ref: ArrayLike | None = None, weights_gen: ArrayLike | None = None,
                                   names: Sequence[str] | None = None) -> float:
    """Largest absolute entry of :func:`correlation_difference`: one number for how well correlations match."""
    return float(np.max(np.abs(correlation_difference(reference, generated, method, weights_ref, weights_gen,
                                                      names))))


# --------------------------------------------------------------------------------------------------------------
# quantile error and amplification ("GANplification", Butter & Plehn review Fig. 1)
# --------------------------------------------------------------------------------------------------------------
def _truth_cdf(truth) -> Callable[[np.ndarray], np.ndarray]:
    if hasattr(truth, "cdf"):
        return truth.cdf
    if callable(truth):
        return truth
    t = np.sort(np.asarray(truth, dtype=np.float64).ravel())
    if t.size == 0 or not np.all(np.isfinite(t)):
        raise ValueError("truth sample is empty or contains NaN/inf")
    return lambda x: np.searchsorted(t, x, side="right") / t.size


def quantile_error(sample: ArrayLike, truth: Any, n_quantiles: int = 20, weights: ArrayLike | None = None) -> float:
    """Quantile mean squared error of a 1-d ``sample`` with respect to the true distribution.

    The x-axis is cut into ``n_quantiles`` quantiles of the truth, each of true probability ``1/n_q``, and
    ``MSE = 1/n_q sum_j (x_j - 1/n_q)^2`` with ``x_j`` the (weighted) fraction of the sample in quantile ``j``
    (the GANplification measure of Butter, Diefenbacher, Kasieczka, Nachman & Plehn 2020, arXiv:2008.06545;
    Butter & Plehn review, sec. 2, Fig. 1). ``truth`` is a scipy distribution (anything with ``.cdf``), a CDF
    callable mapping ``(n_events,)`` to probabilities, or a large sample drawn from the truth.

    Args:
        sample: ``(n_events,)`` (or ``(n_events, 1)``).
        weights: per-event weights ``(n_events,)``.

    Raises:
        ValueError: ``sample`` invalid or with more than one column; bad weights; ``n_quantiles < 2``; a truth
            sample that is empty or non-finite.
    """
    arr, cols, _ = _as_2d(sample, "sample")
    if arr.shape[1] != 1:
        raise ValueError("quantile_error needs a 1-d sample")
    w = _weights(weights, arr.shape[0], "weights")
    n_q = int(n_quantiles)
    if n_q < 2:
        raise ValueError(f"n_quantiles must be >= 2, got {n_quantiles}")
    u = np.asarray(_truth_cdf(truth)(arr[:, 0]), dtype=np.float64)
    idx = np.clip(np.floor(u * n_q).astype(int), 0, n_q - 1)
    frac = np.bincount(idx, weights=w, minlength=n_q)
    frac = frac / frac.sum()
    return float(np.mean((frac - 1.0 / n_q) ** 2))


def expected_quantile_error(n_events: float, n_quantiles: int = 20) -> float:
    """Mean quantile MSE of ``n_events`` drawn from the truth itself: ``(n_q - 1) / (n_q^2 N)`` (multinomial).

    Raises:
        ZeroDivisionError: ``n_events`` or ``n_quantiles`` is a Python 0.
    """
    n_q = int(n_quantiles)
    return float((n_q - 1) / (n_q**2 * n_events))


def equivalent_events(sample: ArrayLike, truth: Any, n_quantiles: int = 20,
                      weights: ArrayLike | None = None) -> float:
    """Number of events sampled from the truth whose expected quantile error equals this sample's.

    Inverts :func:`expected_quantile_error`; ``inf`` for a sample with zero quantile error. Arguments and errors
    as :func:`quantile_error`.
    """
    mse = quantile_error(sample, truth, n_quantiles, weights)
    n_q = int(n_quantiles)
    return float(np.inf) if mse == 0 else float((n_q - 1) / (n_q**2 * mse))


def amplification_factor(sample: ArrayLike, truth: Any, n_train: float, n_quantiles: int = 20,
                         weights: ArrayLike | None = None) -> float:
    """How many training events the (generated) sample is worth, per training event.

    ``equivalent_events / n_train``: above 1 the generator adds information beyond its ``n_train`` training
    events (Butter & Plehn review, Fig. 1: 10,000 GANned events worth ~300 sampled ones trained on 100 give ~3).
    A sample of ``N`` truth events has, on average over repeats, a factor of about 1 relative to ``N``.

    Raises:
        ValueError: ``n_train <= 0``; as :func:`quantile_error`.
    """
    if not n_train > 0:
        raise ValueError(f"n_train must be positive, got {n_train}")
    return equivalent_events(sample, truth, n_quantiles, weights) / float(n_train)


# --------------------------------------------------------------------------------------------------------------
# classifier two-sample test and the combined report
# --------------------------------------------------------------------------------------------------------------
def classifier_two_sample_test(reference: ArrayLike, generated: ArrayLike, n_splits: int = 5, seed: int = 0,
                               max_iter: int = 100, test_fraction: float = 0.5, weights_ref: ArrayLike | None = None,
                               weights_gen: ArrayLike | None = None, **classifier_kwargs: Any) -> dict[str, Any]:
    """ROC AUC of a boosted-tree classifier trained to tell generated from reference events.

    Each of ``n_splits`` repeats subsamples the larger sample to the size of the smaller (balanced classes), splits
    the events at random into training and test parts (``test_fraction``), fits scikit-learn's
    ``HistGradientBoostingClassifier`` and computes the AUC on the test part. AUC 0.5 means indistinguishable, 1
    fully separable; unlike means it sees shapes and correlations in all features together. Samples of equal size
    are split with one shared permutation, so row ``i`` of both lands in the same part: for row-paired samples (a
    sample against itself, generated events against the references they were conditioned on) no event's twin
    sits in the other part's training set, where it would be learned with the opposite label.
    Returns ``{"auc": mean, "auc_uncertainty": std over repeats (ddof=1; 0 for one repeat), "aucs": [...]}``.

    Args:
        reference, generated: ``(n_events,)`` or ``(n_events, n_features)``.
        classifier_kwargs: further arguments of ``HistGradientBoostingClassifier``.

    Raises:
        ValueError: invalid samples or weights (negative weights included: refused by name); ``n_splits < 1``;
            ``test_fraction`` outside (0, 1); fewer than 2 events per class in the training or test part.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    ref, gen, _, _ = _pair(reference, generated)
    why = ("the classifier test is not defined for negative event weights (a classifier cannot be trained on "
           "negative sample weights; the AUC would not be a probability); compare without it")
    wr = _weights(weights_ref, ref.shape[0], "weights_ref", refuse_negative=why)
    wg = _weights(weights_gen, gen.shape[0], "weights_gen", refuse_negative=why)
    if n_splits < 1:
        raise ValueError(f"n_splits must be >= 1, got {n_splits}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n = min(ref.shape[0], gen.shape[0])
    n_test = int(round(test_fraction * n))
    if n_test < 2 or n - n_test < 2:
        raise InputError(f"too few events for a classifier test: {n} per class after balancing")
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(int(n_splits)):
        ir = rng.permutation(ref.shape[0])[:n]
        ig = ir if ref.shape[0] == gen.shape[0] else rng.permutation(gen.shape[0])[:n]
        # split each class separately so that both halves stay balanced
        x_tr = np.concatenate([ref[ir[n_test:]], gen[ig[n_test:]]])
        x_te = np.concatenate([ref[ir[:n_test]], gen[ig[:n_test]]])
        y_tr = np.concatenate([np.zeros(n - n_test), np.ones(n - n_test)])
        y_te = np.concatenate([np.zeros(n_test), np.ones(n_test)])
        w_tr = w_te = None
        if wr is not None or wg is not None:
            a = np.ones(ref.shape[0]) if wr is None else wr
            b = np.ones(gen.shape[0]) if wg is None else wg
            w_tr = np.concatenate([a[ir[n_test:]], b[ig[n_test:]]])
            w_te = np.concatenate([a[ir[:n_test]], b[ig[:n_test]]])
        clf = HistGradientBoostingClassifier(max_iter=max_iter, random_state=int(rng.integers(2**31 - 1)),
                                             **classifier_kwargs)
        clf.fit(x_tr, y_tr, sample_weight=w_tr)
        aucs.append(float(roc_auc_score(y_te, clf.predict_proba(x_te)[:, 1], sample_weight=w_te)))
    unc = float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0
    return {"auc": float(np.mean(aucs)), "auc_uncertainty": unc, "aucs": aucs}


def fidelity_report(reference: ArrayLike, generated: ArrayLike, names: Sequence[str] | None = None,
                    classifier: bool = True, seed: int = 0, weights_ref: ArrayLike | None = None,
                    weights_gen: ArrayLike | None = None, n_splits: int = 3) -> pd.DataFrame:
    """One table of per-feature fidelity numbers, with the whole-event numbers in ``df.attrs``.

    Rows are features; columns: mean_ref, mean_gen, relative_mean_difference, ks, wasserstein and
    wasserstein_over_std (W1 over the reference's standard deviation, comparable across features).
    ``df.attrs`` holds ``max_abs_correlation_difference`` (Pearson; NaN if a feature is constant in either sample,
    e.g. a collapsed generator) and, with ``classifier``,
    ``classifier_auc`` / ``classifier_auc_uncertainty`` from :func:`classifier_two_sample_test` (else NaN).
    The table has ``n_features`` rows indexed by ``feature``; means and W1 are in the features' units.

    Raises:
        ValueError: invalid samples, names or weights; as :func:`classifier_two_sample_test` with ``classifier``.
    """
    import pandas as pd

    ref, gen, cols, _ = _pair(reference, generated, names)
    wr = _weights(weights_ref, ref.shape[0], "weights_ref")
    wg = _weights(weights_gen, gen.shape[0], "weights_gen")
    mr, mg = _mean(ref, wr), _mean(gen, wg)
    sd = np.sqrt(_mean((ref - mr) ** 2, wr))
    w1 = wasserstein(ref, gen, wr, wg)
    with np.errstate(divide="ignore", invalid="ignore"):
        w1_sd = w1 / sd
    df = pd.DataFrame(
        {
            "mean_ref": mr,
            "mean_gen": mg,
            "relative_mean_difference": relative_mean_difference(ref, gen, wr, wg),
            "ks": ks_statistic(ref, gen, wr, wg),
            "wasserstein": w1,
            "wasserstein_over_std": w1_sd,
        },
        index=pd.Index(cols, name="feature"),
    )
    constant = (np.ptp(ref, axis=0) == 0) | (np.ptp(gen, axis=0) == 0)
    if ref.shape[1] == 1:
        df.attrs["max_abs_correlation_difference"] = 0.0
    elif constant.any() or ref.shape[0] < 2 or gen.shape[0] < 2:
        # a collapsed (constant) generated feature has no correlation: report NaN rather than fail the report
        df.attrs["max_abs_correlation_difference"] = float("nan")
    else:
        df.attrs["max_abs_correlation_difference"] = max_abs_correlation_difference(ref, gen, "pearson", wr, wg,
                                                                                    cols)
    if classifier:
        res = classifier_two_sample_test(ref, gen, n_splits=n_splits, seed=seed, weights_ref=wr, weights_gen=wg)
        df.attrs["classifier_auc"] = res["auc"]
        df.attrs["classifier_auc_uncertainty"] = res["auc_uncertainty"]
    else:
        df.attrs["classifier_auc"] = float("nan")
        df.attrs["classifier_auc_uncertainty"] = float("nan")
    return df
