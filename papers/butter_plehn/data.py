"""The samples of the review figures: the 1-d camel back and its 5-parameter fit (Fig. 1), the subtraction toy
(Fig. 3, Eq. (13)) and the binned B - S reference, and the Drell-Yan samples made with ``data_prep.drell_yan``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from scipy import optimize, special, stats

DATA_DIR = Path("data/butter_plehn")


# --------------------------------------------------------------------------------------------------- camel back
@dataclasses.dataclass(frozen=True)
class CamelBack:
    """``frac1 N(mu1, sigma1^2) + (1 - frac1) N(mu2, sigma2^2)``: the 1-d camel back of R Sec. 2, Fig. 1 (two
    Gaussians, five parameters). Units: none (x is a dimensionless coordinate)."""

    mu1: float
    sigma1: float
    mu2: float
    sigma2: float
    frac1: float

    @classmethod
    def of(cls, recipe) -> "CamelBack":
        """The truth of a ``recipe.Camel``."""
        return cls(recipe.mu1, recipe.sigma1, recipe.mu2, recipe.sigma2, recipe.frac1)

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """Density at ``x`` (any shape)."""
        return (self.frac1 * stats.norm.pdf(x, self.mu1, self.sigma1)
                + (1 - self.frac1) * stats.norm.pdf(x, self.mu2, self.sigma2))

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Cumulative distribution at ``x`` (any shape): what ``gan4hep.metrics.quantile_error`` takes."""
        return (self.frac1 * stats.norm.cdf(x, self.mu1, self.sigma1)
                + (1 - self.frac1) * stats.norm.cdf(x, self.mu2, self.sigma2))

    def ppf(self, q: np.ndarray) -> np.ndarray:
        """Inverse CDF at probabilities ``q`` in (0, 1) (root finding; +-inf at 0 and 1)."""
        q = np.atleast_1d(np.asarray(q, dtype=np.float64))
        lo = min(self.mu1 - 40 * self.sigma1, self.mu2 - 40 * self.sigma2)
        hi = max(self.mu1 + 40 * self.sigma1, self.mu2 + 40 * self.sigma2)
        out = np.empty_like(q)
        for i, v in enumerate(q):
            out[i] = (-np.inf if v <= 0 else np.inf if v >= 1 else
                      optimize.brentq(lambda x: self.cdf(x) - v, lo, hi, xtol=1e-12))
        return out

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n,)`` draws."""
        first = rng.random(n) < self.frac1
        return np.where(first, rng.normal(self.mu1, self.sigma1, n), rng.normal(self.mu2, self.sigma2, n))


def fit_camel(x: np.ndarray, starts: int = 5, seed: int = 0) -> CamelBack:
    """Maximum-likelihood fit of the 5-parameter camel back to the sample ``x`` (R Fig. 1, "5-parameter fit").

    Minimises the negative log-likelihood over (mu1, log sigma1, mu2, log sigma2, logit f) with Nelder-Mead from
    ``starts`` starting points (the first splits the sample at its median), keeping the best; the components are
    returned ordered by mean.

    Raises:
        ValueError: fewer than 5 points.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size < 5:
        raise ValueError(f"a 5-parameter fit needs at least 5 points, got {x.size}")

    def nll(p):
        m1, ls1, m2, ls2, lf = p
        f = special.expit(lf)
        a = np.log(f) + stats.norm.logpdf(x, m1, np.exp(ls1))
        b = np.log1p(-f) + stats.norm.logpdf(x, m2, np.exp(ls2))
        return -np.sum(np.logaddexp(a, b))

    rng = np.random.default_rng(seed)
    lo, hi = x[x <= np.median(x)], x[x > np.median(x)]
    best = None
    for k in range(starts):
        if k == 0:
            p0 = [lo.mean(), np.log(lo.std() + 1e-3), hi.mean(), np.log(hi.std() + 1e-3), 0.0]
        else:
            m = rng.choice(x, 2, replace=False)
            p0 = [m.min(), np.log(x.std() / 2), m.max(), np.log(x.std() / 2), rng.normal()]
        res = optimize.minimize(nll, p0, method="Nelder-Mead",
                                options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-8})
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    m1, ls1, m2, ls2, lf = best.x
    f = float(special.expit(lf))
    if m1 > m2:
        m1, ls1, m2, ls2, f = m2, ls2, m1, ls1, 1 - f
    return CamelBack(float(m1), float(np.exp(ls1)), float(m2), float(np.exp(ls2)), f)


# ------------------------------------------------------------------------------------------- subtraction toy
@dataclasses.dataclass(frozen=True)
class SubtractionToy:
    """R Eq. (13): P_B(x) = 1/x + 0.1 and P_S(x) = 1/x on [x_min, x_max] (unnormalised densities, i.e.
    differential cross sections in arbitrary units), so that B - S = 0.1 (Eq. (14))."""

    x_min: float
    x_max: float

    @property
    def sigma_s(self) -> float:
        """Integral of 1/x: ln(x_max / x_min)."""
        return float(np.log(self.x_max / self.x_min))

    @property
    def sigma_b(self) -> float:
        """Integral of 1/x + 0.1."""
        return self.sigma_s + self.sigma_bms

    @property
    def sigma_bms(self) -> float:
        """Integral of B - S = 0.1 (x_max - x_min)."""
        return 0.1 * (self.x_max - self.x_min)

    def sample_s(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n,)`` events of P_S (log-uniform)."""
        return self.x_min * (self.x_max / self.x_min) ** rng.random(n)

    def sample_b(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n,)`` events of P_B: the mixture of P_S and the flat 0.1 by their integrals."""
        flat = rng.random(n) < self.sigma_bms / self.sigma_b
        return np.where(flat, rng.uniform(self.x_min, self.x_max, n), self.sample_s(n, rng))


def binned_subtraction(b: np.ndarray, s: np.ndarray, sigma_b: float, sigma_s: float, edges: np.ndarray,
                       weights_b: np.ndarray | None = None, weights_s: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The binned B - S with its statistical error (the envelope of R Fig. 3, right panels).

    Each sample is normalised to its cross section: per bin ``d sigma = sigma_B n_B / N_B - sigma_S n_S / N_S``
    with variance ``sigma_B^2 n_B / N_B^2 + sigma_S^2 n_S / N_S^2`` (unweighted events; with weights, ``n`` and
    ``N`` are sums of weights and the variance uses the sums of squared weights).

    Args:
        b, s: ``(N_B,)``, ``(N_S,)`` event values of one observable.
        sigma_b, sigma_s: the samples' cross sections (any unit; the output carries it).
        edges: ``(n_bins + 1,)`` bin edges; events outside are not counted but enter N.

    Returns:
        ``(d sigma per bin, its standard deviation)``, each ``(n_bins,)``, in units of sigma (not divided by the
        bin width).
    """
    out = []
    for x, w, sigma in ((b, weights_b, sigma_b), (s, weights_s, sigma_s)):
        w = np.ones(len(x)) if w is None else np.asarray(w, dtype=np.float64)
        n, _ = np.histogram(x, edges, weights=w)
        n2, _ = np.histogram(x, edges, weights=w * w)
        total = w.sum()
        out.append((sigma * n / total, sigma**2 * n2 / total**2))
    (vb, eb), (vs, es) = out
    return vb - vs, np.sqrt(eb + es)


# ---------------------------------------------------------------------------------------------- Z -> mu mu
def zll_sample(recipe, data_dir: Path = DATA_DIR, jobs: int = 1):
    """The detector-level Drell-Yan sample of a ``recipe.Zll`` (``data_prep.drell_yan``, made once and cached in
    ``data_dir``): the feature table (``drell_yan.DETECTOR_COLUMNS`` + m_ll, n_jets15, met, weight; GeV, rad)
    and its path."""
    from data_prep import drell_yan
    from gan4hep import io

    settings = drell_yan.Settings(level="detector", mode="B", m_min=recipe.m_min, m_max=recipe.m_max,
                                  mpi=recipe.mpi, pileup=recipe.pileup)
    tag = (f"dy_detector_m{recipe.m_min:g}-{recipe.m_max:g}_e{recipe.events}_s{recipe.seed}"
           f"_{'mpi' if recipe.mpi else 'nompi'}_pu{recipe.pileup:g}")
    path = Path(data_dir) / f"{tag}_features.root"
    if not path.exists():
        path = drell_yan.make_sample(Path(data_dir) / f"{tag}.root", recipe.events, recipe.seed, settings,
                                     jobs=jobs, block_size=min(recipe.events, 5000), progress=False)
    return io.read_table(path), path


def zll_features(recipe) -> tuple[str, ...]:
    """The GAN's features: ``drell_yan.DETECTOR_COLUMNS`` without ``n_pv`` when there is no pile-up (a constant
    cannot be learned or scaled)."""
    from data_prep import drell_yan

    return tuple(c for c in drell_yan.DETECTOR_COLUMNS if recipe.pileup > 0 or c != "n_pv")


def split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, test) index arrays of ``n`` events."""
    idx = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test_fraction * n))
    return idx[n_test:], idx[:n_test]
