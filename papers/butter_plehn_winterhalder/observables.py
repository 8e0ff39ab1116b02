"""Physics observables of (n, 24) parton events in GeV (numpy): particle and candidate kinematics, peak fits,
momentum balance, tail counts, bin-wise deviations, and the peak monitor of training (``peak_summary``; its
``peak_distance`` is the checkpoint-selection metric of ``--select-best``). Column order as model.COLUMNS."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize

from gan4hep import physics

PARTICLES = ("q1", "q2", "b1", "q3", "q4", "b2")      # q, q', b from the top; q, q', b from the anti-top
CANDIDATES = (("W1", (0, 1)), ("t1", (0, 1, 2)), ("W2", (3, 4)), ("t2", (3, 4, 5)))
POLES = {"W": 80.4, "t": 173.0}                      # GeV: centres of the peak fits and of the monitor
PEAK_WINDOW = 30.0                                   # GeV: masses are clipped to pole +- this for peak_distance
KINEMATICS = ("pt", "eta", "phi", "E")


def _vectors(x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 24:
        raise ValueError(f"expected events of shape (n, 24) (p0_px ... p5_E), got {x.shape}")
    return [tuple(x[:, 4 * i + k] for k in range(4)) for i in range(6)]


def table(x: np.ndarray) -> pd.DataFrame:
    """DataFrame (n rows) of pt/eta/phi/E of the six quarks and pt/eta/phi/E/m of the four candidates (GeV, rad)
    from (n, 24) events in GeV.

    Raises:
        ValueError: ``x`` is not (n, 24).
    """
    v = _vectors(x)
    cols = {}
    for name, p in zip(PARTICLES, v):
        cols[f"pt_{name}"], cols[f"eta_{name}"], cols[f"phi_{name}"], _ = physics.to_cylindrical(*p)
        cols[f"E_{name}"] = p[3]
    for name, idx in CANDIDATES:
        s = physics.sum_vectors(*(v[i] for i in idx))
        pt, eta, phi, m = physics.to_cylindrical(*s)
        cols.update({f"pt_{name}": pt, f"eta_{name}": eta, f"phi_{name}": phi, f"E_{name}": s[3], f"m_{name}": m})
    return pd.DataFrame(cols)


def masses(x: np.ndarray) -> np.ndarray:
    """(n, 4) masses in GeV of W1, W2, t1, t2 (the MMD observables, same order as model.RESONANCES)."""
    t = table(x)
    return t[["m_W1", "m_W2", "m_t1", "m_t2"]].to_numpy()


def _cauchy(m, norm, m0, gamma):
    return norm * (gamma / (2 * np.pi)) / ((m - m0) ** 2 + gamma**2 / 4)


def fit_peak(m, centre: float, half_window: float = 15.0, bin_width: float = 0.5) -> dict[str, float]:
    """Breit-Wigner (Cauchy) fit to the mass histogram within centre +- half_window.

    Returns dict: position, width (FWHM Gamma), their fit errors, fraction of candidates within +- 5 GeV of
    ``centre`` and in the window, median and interquartile range ``iqr``. Position/width are NaN where there is no
    peak: fewer than 50 candidates in the window, or a fitted FWHM of half the window or more (a slope across the
    window, not a peak). The IQR is a width defined for any distribution, peaked or not, and equals the FWHM for a
    pure Breit-Wigner line shape (its quartiles are M -+ Gamma/2).
    """
    m = np.asarray(m, dtype=np.float64)
    if m.size == 0:
        raise ValueError("fit_peak: no mass values")
    edges = np.arange(centre - half_window, centre + half_window + 1e-9, bin_width)
    counts, _ = np.histogram(m, edges)
    inside = counts.sum()
    q25, q50, q75 = np.quantile(m, (0.25, 0.5, 0.75))
    out = {"median": float(q50), "iqr": float(q75 - q25),
           "fraction_within_5GeV": float(np.mean(np.abs(m - centre) < 5.0)),
           "fraction_in_window": float(inside / len(m)), "position": np.nan, "width": np.nan,
           "position_error": np.nan, "width_error": np.nan}
    if inside < 50:
        return out
    c = 0.5 * (edges[1:] + edges[:-1])
    dens = counts / (len(m) * bin_width)
    err = np.sqrt(np.maximum(counts, 1)) / (len(m) * bin_width)
    p0 = (inside / len(m), c[np.argmax(counts)], 2.0)
    try:
        p, cov = optimize.curve_fit(_cauchy, c, dens, p0=p0, sigma=err, absolute_sigma=True,
                                    bounds=([0, centre - half_window, 0.01], [np.inf, centre + half_window, 1e3]))
    except (RuntimeError, ValueError):
        return out
    if p[2] >= half_window:
        return out
    e = np.sqrt(np.diag(cov))
    out.update(position=float(p[1]), width=float(p[2]), position_error=float(e[1]), width_error=float(e[2]))
    return out


def peaks(x: np.ndarray) -> dict[str, dict[str, float]]:
    """``fit_peak`` of the W peak (both candidates pooled) and the top peak (both pooled) of (n, 24) events in GeV:
    ``{"W": {...}, "top": {...}}``."""
    t = table(x)
    return {"W": fit_peak(np.r_[t.m_W1, t.m_W2], POLES["W"]), "top": fit_peak(np.r_[t.m_t1, t.m_t2], POLES["t"])}


def momentum_balance(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|sum px| / sum pT and |sum py| / sum pT per event, two (n,) arrays (0 for exact momentum conservation)."""
    v = _vectors(x)
    spt = sum(physics.pt(p[0], p[1]) for p in v)
    return np.abs(sum(p[0] for p in v)) / spt, np.abs(sum(p[1] for p in v)) / spt


def tail_fraction(values, thresholds) -> np.ndarray:
    """N_tail(pT) = 1 - N_cum(pT): fraction of events above each threshold."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    return 1.0 - np.searchsorted(values, thresholds, side="right") / len(values)


def bulk_deviation(ref, gen, n_bins: int = 40, quantiles=(0.01, 0.99), min_count: int = 100) -> dict[str, float]:
    """Bin-wise |gen/ref - 1| in the bulk: equal-width bins between the reference's 1 % and 99 % quantiles, bins
    with at least ``min_count`` reference entries. Returns mean and max deviation and the mean relative statistical
    uncertainty of a bin ratio."""
    ref, gen = np.asarray(ref, float), np.asarray(gen, float)
    lo, hi = np.quantile(ref, quantiles)
    edges = np.linspace(lo, hi, n_bins + 1)
    r, _ = np.histogram(ref, edges)
    g, _ = np.histogram(gen, edges)
    ok = r >= min_count
    if not ok.any():
        return {"mean_abs_dev": float("nan"), "max_abs_dev": float("nan"), "stat_rel_uncertainty_mean": float("nan"),
                "bins": 0}
    rn, gn = r[ok] / len(ref), g[ok] / len(gen)
    dev = np.abs(gn / rn - 1.0)
    stat = np.sqrt(1.0 / r[ok] + 1.0 / np.maximum(g[ok], 1))
    return {"mean_abs_dev": float(dev.mean()), "max_abs_dev": float(dev.max()),
            "stat_rel_uncertainty_mean": float(stat.mean()), "bins": int(ok.sum())}


def peak_fractions(m: np.ndarray) -> dict[str, float]:
    """Fractions of W and top candidates (each pooled) within 5 and 15 GeV of the poles, from (n, 4) masses in GeV
    (W1, W2, t1, t2)."""
    w, t = m[:, :2].ravel(), m[:, 2:].ravel()
    return {f"{name}_within_{d}GeV": float(np.mean(np.abs(v - pole) < d))
            for name, v, pole in (("W", w, POLES["W"]), ("top", t, POLES["t"])) for d in (5, 15)}


def peak_distance(m: np.ndarray, m_ref: np.ndarray) -> float:
    """Mean over the four candidates of the 1-d Wasserstein distance (GeV) between two (n, 4) mass samples, each
    mass clipped to pole +- PEAK_WINDOW: sensitive to the peak position and width, bounded for far-off events.
    NaN masses count as 0 GeV (clipped to the window's lower edge)."""
    from gan4hep.metrics import wasserstein

    poles = np.array([POLES["W"], POLES["W"], POLES["t"], POLES["t"]])
    lo, hi = poles - PEAK_WINDOW, poles + PEAK_WINDOW
    m = np.nan_to_num(np.asarray(m, np.float64), nan=0.0)
    return float(np.mean(wasserstein(np.clip(m_ref, lo, hi), np.clip(m, lo, hi))))


def peak_summary(model, n: int = 20000, seed: int = 12345, reference: np.ndarray | None = None) -> dict[str, float]:
    """The peak monitor of training: ``n`` events from ``model.sample(n, seed=seed)`` (GeV; the model contract),
    the fractions of W/top candidates near the poles (``peak_fractions``) and the quartiles of the pooled W and top
    masses. With ``reference`` (validation masses, (m, 4) GeV), ``peak_distance`` is added: the checkpoint-selection
    metric of ``--select-best`` (lower is better)."""
    m = masses(model.sample(n, seed=seed))
    out = peak_fractions(m)
    for name, pooled in (("W", m[:, :2]), ("top", m[:, 2:])):
        for q, v in zip(("q25", "median", "q75"), np.quantile(pooled, (0.25, 0.5, 0.75))):
            out[f"{name}_{q}"] = float(v)
    if reference is not None:
        out["peak_distance"] = peak_distance(m, reference)
    return out
