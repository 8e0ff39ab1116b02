"""HEP-style comparison plots of reference (MC) and generated samples.

Figures are built as ``matplotlib.figure.Figure`` objects on the Agg canvas: no pyplot state, no display needed,
and the user's global backend and rcParams are left alone (the mplhep style is applied only while a figure is
drawn). Jupyter still shows a returned figure. Write figures with :func:`save_figure` (PNG + PDF, atomically).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import matplotlib.style
import mplhep
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike

from gan4hep import metrics
from gan4hep.io import atomic_path

if TYPE_CHECKING:
    import pandas as pd

    #: A table: a DataFrame (columns by name) or a 2-d array ``(n_events, n_features)`` (columns by index).
    Table = pd.DataFrame | np.ndarray

__all__ = [
    "STYLE",
    "HistRatio",
    "hist_ratio",
    "grid_hist_ratio",
    "cdf_plot",
    "grid_cdf_plot",
    "correlation_heatmaps",
    "hist2d",
    "hist2d_compare",
    "training_curves",
    "save_figure",
]

#: mplhep style used for every figure; replace (e.g. ``mplhep.style.CMS`` or ``{}``) to change the look.
STYLE = [mplhep.style.ATLAS, {"font.size": 13, "legend.fontsize": 10, "axes.titlesize": 12}]

_REF_COLOR = "black"
_COLORS = ["tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:cyan"]


@contextlib.contextmanager
def _styled():
    with matplotlib.style.context(STYLE):
        yield


def _figure(figsize) -> Figure:
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _col(data, name, what: str) -> np.ndarray:
    """One finite 1-d column from a DataFrame (by name) or a 2-d array (by index)."""
    if hasattr(data, "columns") or isinstance(data, Mapping):
        if name in data:
            return _arr(data[name], f"{what} column {name!r}")
        if not isinstance(name, (int, np.integer)):
            raise ValueError(f"{what} has no column {name!r}")
    arr = np.asarray(data)
    if arr.ndim != 2 or not isinstance(name, (int, np.integer)) or not -arr.shape[1] <= name < arr.shape[1]:
        raise ValueError(f"{what} (shape {arr.shape}) has no column {name!r}")
    return _arr(arr[:, name], f"{what} column {name}")


def _arr(x, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{what} must be 1-d, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} has {int((~np.isfinite(x)).sum())} NaN/inf values")
    return x


def _w(weights, key, n: int):
    if weights is None or weights.get(key) is None:
        return None
    w = np.asarray(weights[key], dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)):
        raise ValueError(f"weights for {key!r} must be {n} finite values, got shape {w.shape}")
    return w


def _as_gens(gens) -> dict:
    if isinstance(gens, Mapping):
        if not gens:
            raise ValueError("no generated samples given")
        return dict(gens)
    return {"Generated": gens}


# --------------------------------------------------------------------------------------------------------------
# histogram + ratio
# --------------------------------------------------------------------------------------------------------------
@dataclass
class HistRatio:
    """What :func:`hist_ratio` drew: the figure, its two axes and every plotted number.

    ``edges`` ``(n_bins + 1,)`` in the sample's units; every count, error and ratio array is ``(n_bins,)``; the
    dicts are keyed by the legend labels of the generated samples; ``means`` also holds the reference's, under
    its label (empty without ``show_means``).
    """

    fig: Figure
    ax: Axes
    rax: Axes
    edges: np.ndarray
    ref_counts: np.ndarray
    ref_errors: np.ndarray
    counts: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    ratio: dict = field(default_factory=dict)
    ratio_errors: dict = field(default_factory=dict)
    means: dict = field(default_factory=dict)


def _histogram(x, edges, w, overflow: bool, density: bool):
    """Counts and statistical errors sqrt(sum w^2); with ``density`` both divided by (sum of weights x bin width)."""
    counts, sumw2 = metrics.weighted_histogram(x, edges, w, overflow)
    err = np.sqrt(sumw2)
    if density:
        norm = counts.sum() * np.diff(edges)
        if counts.sum() > 0:
            counts, err = counts / norm, err / norm
    return counts, err


def _split_axes(fig, ax):
    """Main and ratio axes: new ones, a given ``(ax, rax)`` pair, or a ratio panel carved out of one ``ax``."""
    if ax is None:
        gs = fig.add_gridspec(2, 1, height_ratios=(3, 1), hspace=0.05)
        ax = fig.add_subplot(gs[0])
        return ax, fig.add_subplot(gs[1], sharex=ax)
    if isinstance(ax, (tuple, list)):
        return ax[0], ax[1]
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    rax = make_axes_locatable(ax).append_axes("bottom", size="33%", pad=0.05, sharex=ax)
    return ax, rax


def hist_ratio(ref: ArrayLike, gens: ArrayLike | Mapping[str, ArrayLike], bins: int | ArrayLike = 50,
               xlabel: str = "", ax: Axes | tuple[Axes, Axes] | None = None,
               weights: Mapping[str, ArrayLike] | None = None, show_means: bool = True,
               ratio_range: tuple[float, float] = (0.5, 1.5), ref_label: str = "Reference", density: bool = True,
               overflow: bool = True, logy: bool = False, ylabel: str | None = None,
               figsize: tuple[float, float] = (6, 6)) -> HistRatio:
    """Overlay of reference and generated histograms with a generated/reference ratio panel.

    ``gens`` maps legend labels to samples (a bare array is labelled "Generated"). ``bins`` is an int (equal-width
    over the reference's range) or edges. ``weights`` maps labels (``ref_label`` for the reference) to per-event
    weights. Errors are sqrt(sum w^2); the ratio error combines both histograms' relative errors in quadrature;
    bins with an empty reference have a NaN ratio. With ``overflow`` events beyond the edges are drawn in the
    end bins. ``show_means`` adds dashed vertical lines at each sample's mean (as in Lebese & Ruan Fig. 3).
    ``ax`` may be one Axes (a ratio panel is split off below it) or an ``(ax, ratio_ax)`` pair.

    Samples are 1-d ``(n_events,)``, sizes may differ; ``bins`` edges and ``xlabel`` carry the sample's units
    (e.g. "p_T [GeV]"). ``figsize`` in inches, used only when ``ax`` is None.

    Raises:
        ValueError: a sample not 1-d, empty or non-finite; weights not one finite value per event; edges not
            1-d and strictly increasing; an empty ``gens`` mapping.
    """
    gens = _as_gens(gens)
    r = _arr(ref, f"reference ({xlabel})" if xlabel else "reference")
    wr = _w(weights, ref_label, r.size)
    if np.ndim(bins) == 0:
        lo, hi = r.min(), r.max()
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError("bin edges must be 1-d and strictly increasing")
    with _styled():
        if ax is None:
            fig = _figure(figsize)
        else:
            fig = (ax[0] if isinstance(ax, (tuple, list)) else ax).figure
        ax, rax = _split_axes(fig, ax)
        rc, re = _histogram(r, edges, wr, overflow, density)
        res = HistRatio(fig, ax, rax, edges, rc, re)
        mplhep.histplot(rc, edges, yerr=re, ax=ax, color=_REF_COLOR, label=ref_label, histtype="step")
        centres = 0.5 * (edges[1:] + edges[:-1])
        rax.axhline(1.0, color=_REF_COLOR, lw=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel_ref = np.where(rc > 0, re / rc, np.nan)
        if show_means:
            res.means[ref_label] = float(np.average(r, weights=wr))
            ax.axvline(res.means[ref_label], color=_REF_COLOR, ls="--", lw=1)
        for i, (label, g) in enumerate(gens.items()):
            color = _COLORS[i % len(_COLORS)]
            g = _arr(g, f"generated sample {label!r}" + (f" ({xlabel})" if xlabel else ""))
            wg = _w(weights, label, g.size)
            gc, ge = _histogram(g, edges, wg, overflow, density)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(rc > 0, gc / rc, np.nan)
                rel_gen = np.where(gc > 0, ge / gc, 0.0)
            ratio_err = np.abs(ratio) * np.sqrt(rel_gen**2 + rel_ref**2)
            res.counts[label], res.errors[label] = gc, ge
            res.ratio[label], res.ratio_errors[label] = ratio, ratio_err
            mplhep.histplot(gc, edges, yerr=ge, ax=ax, color=color, label=label, histtype="step")
            rax.errorbar(centres, ratio, yerr=ratio_err, xerr=0.5 * np.diff(edges), fmt="o", ms=2.5,
                         color=color, elinewidth=1, capsize=0)
            if show_means:
                res.means[label] = float(np.average(g, weights=wg))
                ax.axvline(res.means[label], color=color, ls="--", lw=1)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylabel(ylabel if ylabel is not None else ("Normalised entries" if density else "Entries"))
        if logy:
            ax.set_yscale("log")
        ax.legend(loc="best", fontsize="small")
        ax.tick_params(labelbottom=False)
        ax.set_xlabel("")
        rax.set_ylim(*ratio_range)
        rax.yaxis.set_major_locator(MaxNLocator(nbins=4, prune="upper"))
        rax.set_ylabel("Gen./Ref.")
        rax.set_xlabel(xlabel)
    return res


def _grid(n: int, ncols: int, panel=(4.5, 4.5)):
    ncols = max(1, min(int(ncols), n))
    nrows = int(np.ceil(n / ncols))
    fig = _figure((panel[0] * ncols, panel[1] * nrows))
    return fig, nrows, ncols


def _names_labels(names, labels):
    names = list(names)
    if not names:
        raise ValueError("no feature names given")
    labels = [str(n) for n in names] if labels is None else list(labels)
    if len(labels) != len(names):
        raise ValueError(f"got {len(labels)} labels for {len(names)} features")
    return names, labels


def grid_hist_ratio(ref_df: Table, gen_df: Table | Mapping[str, Table], names: Sequence[str | int],
                    labels: Sequence[str] | None = None, bins: int | ArrayLike | Mapping[str | int, Any] = 50,
                    ncols: int = 4, gen_label: str = "Generated", ref_label: str = "Reference",
                    weights: Mapping[str, ArrayLike] | None = None,
                    **kwargs: Any) -> tuple[Figure, dict[str | int, HistRatio]]:
    """A grid of :func:`hist_ratio` panels, one per feature; returns ``(fig, {name: HistRatio})``.

    ``ref_df``/``gen_df`` are DataFrames (columns by name) or 2-d arrays (``names`` are then column indices or
    the labels of the columns in order). ``gen_df`` may map legend labels to several generated samples.
    ``labels`` are the x-axis labels; ``bins`` an int, edges, or a dict from name to either. ``weights`` maps
    sample labels to per-event weight arrays. ``kwargs`` go to :func:`hist_ratio`.

    Raises:
        ValueError: no ``names``; ``labels`` of another length; a missing column; as :func:`hist_ratio`.
    """
    names, labels = _names_labels(names, labels)
    gens = dict(gen_df) if isinstance(gen_df, Mapping) else {gen_label: gen_df}
    with _styled():
        fig, nrows, ncols = _grid(len(names), ncols, (4.5, 5.0))
        outer = fig.add_gridspec(nrows, ncols, hspace=0.35, wspace=0.35)
        out = {}
        for k, (name, label) in enumerate(zip(names, labels)):
            inner = outer[k // ncols, k % ncols].subgridspec(2, 1, height_ratios=(3, 1), hspace=0.05)
            ax = fig.add_subplot(inner[0])
            rax = fig.add_subplot(inner[1], sharex=ax)
            col = name if not _is_array(ref_df) or isinstance(name, (int, np.integer)) else k
            b = bins.get(name, 50) if isinstance(bins, Mapping) else bins
            out[name] = hist_ratio(
                _col(ref_df, col, "reference"),
                {lab: _col(g, col, f"generated {lab!r}") for lab, g in gens.items()},
                bins=b, xlabel=label, ax=(ax, rax), weights=weights, ref_label=ref_label, **kwargs,
            )
    return fig, out


def _is_array(x) -> bool:
    return isinstance(x, np.ndarray)


# --------------------------------------------------------------------------------------------------------------
# CDFs
# --------------------------------------------------------------------------------------------------------------
def cdf_plot(ref: ArrayLike, gens: ArrayLike | Mapping[str, ArrayLike], xlabel: str = "", ax: Axes | None = None,
             weights: Mapping[str, ArrayLike] | None = None, ref_label: str = "Reference", show_ks: bool = True,
             figsize: tuple[float, float] = (6, 4.5)) -> tuple[Figure, Axes]:
    """Empirical CDFs of the reference and generated samples; the legend gives each KS statistic.

    Where histograms hide shape differences in the tails or a squeezed spread, CDFs show them directly
    (Lebese & Ruan 2021, Fig. 4). Samples and ``weights`` as in :func:`hist_ratio`. Returns ``(fig, ax)``.

    Raises:
        ValueError: as :func:`hist_ratio`.
    """
    gens = _as_gens(gens)
    r = _arr(ref, f"reference ({xlabel})" if xlabel else "reference")
    wr = _w(weights, ref_label, r.size)
    with _styled():
        fig = _figure(figsize) if ax is None else ax.figure
        ax = fig.add_subplot() if ax is None else ax
        ax.ecdf(r, weights=wr, color=_REF_COLOR, label=ref_label)
        for i, (label, g) in enumerate(gens.items()):
            g = _arr(g, f"generated sample {label!r}" + (f" ({xlabel})" if xlabel else ""))
            wg = _w(weights, label, g.size)
            text = label
            if show_ks:
                text += f" (KS {metrics.ks_statistic(r, g, wr, wg):.3f})"
            ax.ecdf(g, weights=wg, color=_COLORS[i % len(_COLORS)], label=text)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Cumulative fraction")
        ax.set_ylim(0, 1.05)
        lo = min([r.min()] + [np.min(g) for g in gens.values()])
        hi = max([r.max()] + [np.max(g) for g in gens.values()])
        ax.set_xlim(lo, hi if hi > lo else lo + 1.0)
        ax.legend(loc="lower right", fontsize="small")
    return fig, ax


def grid_cdf_plot(ref_df: Table, gen_df: Table | Mapping[str, Table], names: Sequence[str | int],
                  labels: Sequence[str] | None = None, ncols: int = 4, gen_label: str = "Generated",
                  ref_label: str = "Reference", weights: Mapping[str, ArrayLike] | None = None,
                  **kwargs: Any) -> Figure:
    """A grid of :func:`cdf_plot` panels, one per feature (inputs as :func:`grid_hist_ratio`); returns the figure.

    Raises:
        ValueError: as :func:`grid_hist_ratio`.
    """
    names, labels = _names_labels(names, labels)
    gens = dict(gen_df) if isinstance(gen_df, Mapping) else {gen_label: gen_df}
    with _styled():
        fig, nrows, ncols = _grid(len(names), ncols, (4.5, 3.8))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for k, (name, label) in enumerate(zip(names, labels)):
            col = name if not _is_array(ref_df) or isinstance(name, (int, np.integer)) else k
            cdf_plot(_col(ref_df, col, "reference"), {lab: _col(g, col, f"generated {lab!r}") for lab, g in gens.items()},
                     xlabel=label, ax=axes.flat[k], weights=weights, ref_label=ref_label, **kwargs)
        for a in axes.flat[len(names):]:
            a.set_visible(False)
        fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------------------
# correlations and 2-d histograms
# --------------------------------------------------------------------------------------------------------------
def correlation_heatmaps(ref: Table, gen: Table, names: Sequence[str] | None = None, method: str = "pearson",
                         annot: bool = True, labels: Sequence[str] | None = None,
                         figsize: tuple[float, float] | None = None) -> tuple[Figure, tuple[np.ndarray, ...]]:
    """Reference, generated and difference (gen - ref) correlation matrices side by side (Lebese & Ruan Fig. 5).

    ``names`` select DataFrame columns (all columns if None) or label the columns of arrays; ``labels`` are the
    tick labels. Returns ``(fig, (corr_ref, corr_gen, corr_gen - corr_ref))``, each ``(n_features, n_features)``.

    Raises:
        ValueError: different feature counts; as :func:`gan4hep.metrics.correlation_matrix` (constant column,
            NaN/inf, unknown ``method``).
        KeyError: a name that is not a DataFrame column.
    """
    import seaborn as sns

    if names is not None and hasattr(ref, "columns"):
        ref, gen = ref[list(names)], gen[list(names)]
    n = np.shape(ref)[1] if np.ndim(ref) == 2 else 1
    if names is None:
        names = list(ref.columns) if hasattr(ref, "columns") else [f"x{i}" for i in range(n)]
    ticks = [str(v) for v in (labels if labels is not None else names)]
    c_ref = metrics.correlation_matrix(ref, method, names=names)
    c_gen = metrics.correlation_matrix(gen, method, names=names)
    if c_ref.shape != c_gen.shape:
        raise ValueError(f"reference has {c_ref.shape[0]} columns but generated has {c_gen.shape[0]}")
    diff = c_gen - c_ref
    dmax = max(float(np.max(np.abs(diff))), 1e-3)
    size = figsize or (3 * (1.2 + 0.55 * n), 1.0 + 0.55 * n)
    with _styled():
        fig = _figure(size)
        axes = fig.subplots(1, 3)
        common = dict(annot=annot and n <= 12, fmt=".2f", square=True, xticklabels=ticks, yticklabels=ticks,
                      annot_kws={"size": 7}, cbar_kws={"shrink": 0.8})
        sns.heatmap(c_ref, ax=axes[0], vmin=-1, vmax=1, cmap="coolwarm", **common)
        sns.heatmap(c_gen, ax=axes[1], vmin=-1, vmax=1, cmap="coolwarm", **common)
        sns.heatmap(diff, ax=axes[2], vmin=-dmax, vmax=dmax, cmap="PiYG", **common)
        for a, title in zip(axes, ["Reference", "Generated", "Generated - Reference"]):
            a.set_title(title, fontsize="medium")
            a.tick_params(labelsize=8, which="both", length=0)
            a.minorticks_off()
            cax = a.collections[0].colorbar.ax
            cax.tick_params(labelsize=8)
            cax.minorticks_off()
        fig.tight_layout()
    return fig, (c_ref, c_gen, diff)


def hist2d(x: ArrayLike, y: ArrayLike, bins: Any = 50, xlabel: str = "", ylabel: str = "", ax: Axes | None = None,
           weights: ArrayLike | None = None, log: bool = False, cmap: str = "viridis", vmax: float | None = None,
           title: str | None = None, clabel: str = "Entries",
           figsize: tuple[float, float] = (5.5, 4.5)) -> tuple[Figure, Axes, np.ndarray, np.ndarray, np.ndarray]:
    """2-d histogram with a colour bar (e.g. m_T vs MET); returns ``(fig, ax, counts, xedges, yedges)``.

    ``x``, ``y`` and ``weights`` are ``(n_events,)``; ``bins`` as for ``np.histogram2d``; ``counts`` is
    ``(n_xbins, n_ybins)``, edges in the units of ``x`` and ``y``. ``log`` uses a log colour scale (empty bins blank).

    Raises:
        ValueError: ``x`` or ``y`` not 1-d, empty or non-finite; different lengths; bad weights.
    """
    from matplotlib.colors import LogNorm

    x, y = _arr(x, f"x {xlabel!r}"), _arr(y, f"y {ylabel!r}")
    if x.size != y.size:
        raise ValueError(f"x ({xlabel!r}) has {x.size} events but y ({ylabel!r}) has {y.size}")
    w = None if weights is None else _w({"w": weights}, "w", x.size)
    counts, xe, ye = np.histogram2d(x, y, bins=bins, weights=w)
    with _styled():
        fig = _figure(figsize) if ax is None else ax.figure
        ax = fig.add_subplot() if ax is None else ax
        positive = counts[counts > 0]
        norm = LogNorm(vmin=positive.min() if positive.size else 1, vmax=vmax) if log else None
        mesh = ax.pcolormesh(xe, ye, np.where(counts > 0, counts, np.nan).T if log else counts.T, cmap=cmap,
                             norm=norm, vmin=None if log else 0, vmax=None if log else vmax)
        fig.colorbar(mesh, ax=ax, label=clabel)
        ax.set_xlim(xe[0], xe[-1])
        ax.set_ylim(ye[0], ye[-1])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title, fontsize="medium")
    return fig, ax, counts, xe, ye


def hist2d_compare(ref_xy: tuple[ArrayLike, ArrayLike], gen_xy: tuple[ArrayLike, ArrayLike], bins: Any = 50,
                   xlabel: str = "", ylabel: str = "", log: bool = False, ref_label: str = "Reference",
                   gen_label: str = "Generated",
                   figsize: tuple[float, float] = (11, 4.5)) -> tuple[Figure, tuple[np.ndarray, np.ndarray],
                                                                      np.ndarray, np.ndarray]:
    """Reference and generated 2-d histograms side by side on common bins and colour scale.

    ``ref_xy``/``gen_xy`` are ``(x, y)`` pairs. Densities are compared, so both are normalised to unit sum.
    Returns ``(fig, (counts_ref, counts_gen), xedges, yedges)``; an int ``bins`` gives equal-width bins spanning
    both samples.

    Raises:
        ValueError: a coordinate not 1-d, empty or non-finite; x and y of different lengths (from
            ``np.histogram2d``).
    """
    rx, ry = (_arr(v, f"reference {lab!r}") for v, lab in zip(ref_xy, (xlabel, ylabel)))
    gx, gy = (_arr(v, f"generated {lab!r}") for v, lab in zip(gen_xy, (xlabel, ylabel)))
    if np.ndim(bins) == 0:
        xe = np.linspace(min(rx.min(), gx.min()), max(rx.max(), gx.max()), int(bins) + 1)
        ye = np.linspace(min(ry.min(), gy.min()), max(ry.max(), gy.max()), int(bins) + 1)
        bins = (xe, ye)
    cr, xe, ye = np.histogram2d(rx, ry, bins=bins)
    cg, _, _ = np.histogram2d(gx, gy, bins=(xe, ye))
    cr, cg = cr / max(cr.sum(), 1), cg / max(cg.sum(), 1)
    vmax = max(cr.max(), cg.max())
    with _styled():
        fig = _figure(figsize)
        axes = fig.subplots(1, 2)
        for a, c, t in zip(axes, (cr, cg), (ref_label, gen_label)):
            hist2d(np.repeat(0.5 * (xe[1:] + xe[:-1]), len(ye) - 1),
                   np.tile(0.5 * (ye[1:] + ye[:-1]), len(xe) - 1),
                   bins=(xe, ye), weights=c.ravel(), xlabel=xlabel, ylabel=ylabel, ax=a, log=log, vmax=vmax,
                   title=t, clabel="Fraction of events")
        fig.tight_layout()
    return fig, (cr, cg), xe, ye


# --------------------------------------------------------------------------------------------------------------
# training curves and saving
# --------------------------------------------------------------------------------------------------------------
def training_curves(history: Mapping[str, Sequence[float]] | Any, keys: Sequence[str] | None = None,
                    ax: Axes | None = None, logy: bool = False, xlabel: str = "Epoch", ylabel: str = "Loss",
                    figsize: tuple[float, float] = (6.5, 4.5)) -> tuple[Figure, Axes]:
    """Loss/metric curves from a ``{name: [values per epoch]}`` dict or a Keras ``History``.

    ``val_<name>`` curves are drawn dashed in the colour of ``<name>``. Returns ``(fig, ax)``.

    Raises:
        ValueError: an empty or non-mapping ``history``; ``keys`` not in it.
    """
    history = getattr(history, "history", history)
    if not isinstance(history, Mapping) or not history:
        raise ValueError("history must be a non-empty {name: list of values} mapping or a keras History")
    keys = list(history) if keys is None else list(keys)
    missing = [k for k in keys if k not in history]
    if missing:
        raise ValueError(f"history has no curve(s) {missing}; available: {sorted(history)}")
    with _styled():
        fig = _figure(figsize) if ax is None else ax.figure
        ax = fig.add_subplot() if ax is None else ax
        colors = {}
        for k in keys:
            v = np.asarray(history[k], dtype=np.float64).ravel()
            base = k[4:] if k.startswith("val_") else k
            if base not in colors:
                colors[base] = _COLORS[len(colors) % len(_COLORS)]
            ax.plot(np.arange(1, v.size + 1), v, ls="--" if k.startswith("val_") else "-", color=colors[base],
                    label=k)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if logy:
            ax.set_yscale("log")
        ax.legend(loc="best", fontsize="small")
    return fig, ax


def save_figure(fig: Figure, path_stem: str | os.PathLike, formats: Sequence[str] = ("png", "pdf"),
                dpi: int = 150) -> list[Path]:
    """Write ``path_stem.png`` and ``path_stem.pdf`` (or ``formats``) atomically, then close the figure.

    A suffix of ``path_stem`` that is one of ``formats`` is dropped (``fig.png`` -> ``fig.png``, ``fig.pdf``);
    any other dot stays part of the name (``mT_1.5`` -> ``mT_1.5.png``). Returns the written paths. The figure
    is closed even when writing fails.

    Raises:
        ValueError: a format matplotlib cannot write.
        OSError: the folder cannot be created or written.
    """
    stem = Path(path_stem)
    if stem.suffix.lstrip(".").lower() in formats:
        stem = stem.with_suffix("")
    paths = []
    try:
        for fmt in formats:
            path = stem.with_name(f"{stem.name}.{fmt}")
            # mathtext and some layout settings are read at draw time, so draw under the same style
            with atomic_path(path) as tmp, _styled():
                fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
            paths.append(path)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return paths
