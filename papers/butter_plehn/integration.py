"""Flow importance sampling of known integrands against plain Monte Carlo and VEGAS: the review's Secs. 3.1 and
3.4 (Eq. (11), Fig. 6, Table 1) on integrands with analytic integrals (the Sherpa matrix elements of Table 1 are
not available to us).

    python papers/butter_plehn/integration.py --preset quick --out runs/bp_integration --seed 1

Integrands: the Breit-Wigner of Eq. (11) in s (1-d, mapped onto [0, 1]) and the n-dimensional camel on [0, 1]^n
(n = 2, 4, 8; ``Integration.camel_dims``). Every method gets the same number of integrand calls,
``train_calls + eval_calls``:

- flow: ``gan4hep.flows.integration.box_flow`` trained with ``train_importance_sampler`` on ``train_calls`` calls
  (its own samples), then ``eval_calls`` fresh weighted points give the integral, its error and <w>/w_max;
- VEGAS (the ``vegas`` package, G. P. Lepage): ``vegas_iterations`` adaptation iterations on ``train_calls`` calls
  in all, then ``eval_calls`` points drawn through its adapted map (``AdaptiveMap``; importance sampling only, so
  that the weights are per-point weights as the flow's); VEGAS's own stratified estimate from the adaptation
  iterations is reported beside it (``vegas.stratified``);
- plain Monte Carlo: uniform points; the integral from all ``train_calls + eval_calls`` calls, <w>/w_max from
  the last ``eval_calls`` (the maximum grows with the sample, so every method's efficiency is taken on the same
  number of points).

Each of ``repeats`` seeds repeats everything. Writes ``RUN/metrics.json`` (``results.{INTEGRAND}.{analytic, flow,
vegas, plain}`` with the mean over seeds and ``per_seed``), ``RUN/integration.{md,csv}`` and ``RUN/weights.png``
(the weight distributions w / I of the first seed).
"""

from __future__ import annotations

import dataclasses
import math
import time

import keras
import numpy as np
import pandas as pd
from scipy import special

from gan4hep import plotting
from gan4hep.flows.integration import box_flow, estimate, train_importance_sampler, weighted_sample
from gan4hep.runs import Run

from papers.butter_plehn import report
from papers.butter_plehn.recipe import INTEGRATION_PRESETS, Integration

PART = "integration"


# ------------------------------------------------------------------------------------------------- integrands
@dataclasses.dataclass(frozen=True)
class BreitWigner:
    """Eq. (11): ``f(s) = C / ((s - m^2)^2 + m^2 Gamma^2)`` with ``C = m Gamma / pi`` (unit integral over all s),
    integrated over ``s`` in ``[s_min, s_max]`` and written on ``u = (s - s_min) / (s_max - s_min)`` in [0, 1]
    (the Jacobian ``s_max - s_min`` inside ``f``). Units: GeV."""

    mass: float
    width: float
    sqrt_s_min: float
    sqrt_s_max: float
    dims: int = 1

    @property
    def name(self) -> str:
        return "breit_wigner"

    def __call__(self, u: np.ndarray) -> np.ndarray:
        """``(n, 1)`` points in [0, 1] -> ``(n,)`` values (GeV^0: the Jacobian times the density in GeV^-2)."""
        s_min, s_max = self.sqrt_s_min ** 2, self.sqrt_s_max ** 2
        s = s_min + (s_max - s_min) * np.asarray(u, np.float64)[:, 0]
        mg = self.mass * self.width
        return (s_max - s_min) * (mg / math.pi) / ((s - self.mass ** 2) ** 2 + mg ** 2)

    def analytic(self) -> float:
        """Eq. (11): ``(1 / pi) [atan((s_max - m^2) / (m Gamma)) - atan((s_min - m^2) / (m Gamma))]``."""
        mg, m2 = self.mass * self.width, self.mass ** 2
        return (math.atan((self.sqrt_s_max ** 2 - m2) / mg) - math.atan((self.sqrt_s_min ** 2 - m2) / mg)) / math.pi


@dataclasses.dataclass(frozen=True)
class Camel:
    """The n-dimensional camel on [0, 1]^n (i-flow, Gao et al. arXiv:2001.05486; Lepage's VEGAS test):
    ``(a sqrt(pi))^-n [exp(-|x - 1/3|^2 / a^2) + exp(-|x - 2/3|^2 / a^2)]``: two Gaussians of width
    ``a / sqrt(2)`` on the diagonal, each of unit integral over R^n."""

    dims: int
    a: float

    @property
    def name(self) -> str:
        return f"camel_{self.dims}d"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``(n, dims)`` -> ``(n,)``."""
        x = np.asarray(x, np.float64)
        norm = (self.a * math.sqrt(math.pi)) ** -self.dims
        return norm * (np.exp(-((x - 1 / 3) ** 2).sum(axis=1) / self.a ** 2)
                       + np.exp(-((x - 2 / 3) ** 2).sum(axis=1) / self.a ** 2))

    def analytic(self) -> float:
        """``2 g^n`` with ``g = [erf(2 / (3a)) + erf(1 / (3a))] / 2``, each Gaussian's mass in [0, 1] per
        dimension (the same for both by symmetry)."""
        g = 0.5 * (special.erf(2 / (3 * self.a)) + special.erf(1 / (3 * self.a)))
        return float(2 * g ** self.dims)


def integrands(recipe: Integration) -> list:
    """The Breit-Wigner and one camel per ``camel_dims``."""
    return ([BreitWigner(recipe.bw_mass, recipe.bw_width, recipe.bw_sqrt_s_min, recipe.bw_sqrt_s_max)]
            + [Camel(d, recipe.camel_a) for d in recipe.camel_dims])


class Counted:
    """Wraps an integrand and counts its calls (points)."""

    def __init__(self, f):
        self.f, self.calls = f, 0

    def __call__(self, x):
        self.calls += len(x)
        return self.f(x)


# -------------------------------------------------------------------------------------------------- methods
def run_flow(recipe: Integration, f, seed: int) -> tuple[dict, np.ndarray]:
    """Train a ``box_flow`` on ``train_calls`` calls of ``f``, estimate on ``eval_calls``: (result, weights)."""
    keras.utils.set_random_seed(seed)
    counted = Counted(f)
    flow = box_flow(f.dims, couplings=recipe.couplings, bins=recipe.bins, hidden_features=recipe.hidden_features,
                    num_layers=recipe.num_layers)
    flow.compile(keras.optimizers.Adam(recipe.lr))
    t0 = time.time()
    train_importance_sampler(flow, counted, steps=recipe.train_calls // recipe.batch_size,
                             batch_size=recipe.batch_size, loss=recipe.loss, seed=seed)
    _, w = weighted_sample(flow, counted, recipe.eval_calls, seed=seed + 7919)
    out = estimate(w).as_dict()
    out.update(calls=counted.calls, seconds=time.time() - t0)
    return out, w


def run_vegas(recipe: Integration, f, seed: int) -> tuple[dict, np.ndarray]:
    """Adapt a ``vegas.Integrator`` on ``train_calls`` calls, then sample ``eval_calls`` points through its map."""
    import vegas

    counted = Counted(f)
    rng = np.random.default_rng(seed)
    adapt_rng = np.random.default_rng([seed, 1])
    integ = vegas.Integrator(f.dims * [[0.0, 1.0]], ran_array_generator=adapt_rng.random)
    t0 = time.time()
    adapt = integ(vegas.batchintegrand(counted), nitn=recipe.vegas_iterations,
                  neval=recipe.train_calls // recipe.vegas_iterations)
    y = rng.random((recipe.eval_calls, f.dims))
    x = np.empty_like(y)
    jac = np.empty(len(y))
    integ.map.map(y, x, jac)
    w = counted(x) * jac
    out = estimate(w).as_dict()
    out.update(calls=counted.calls, seconds=time.time() - t0,
               stratified={"integral": float(adapt.mean), "error": float(adapt.sdev), "Q": float(adapt.Q)})
    return out, w


def run_plain(recipe: Integration, f, seed: int) -> tuple[dict, np.ndarray]:
    """Uniform points: the integral from all ``train_calls + eval_calls``, <w>/w_max from the last
    ``eval_calls``."""
    counted = Counted(f)
    rng = np.random.default_rng(seed)
    w = counted(rng.random((recipe.train_calls + recipe.eval_calls, f.dims)))
    out = estimate(w).as_dict()
    last = estimate(w[-recipe.eval_calls:])
    out.update(calls=counted.calls, unweighting_efficiency=last.unweighting_efficiency,
               relative_std=last.relative_std)
    return out, w[-recipe.eval_calls:]


METHODS = {"flow": run_flow, "vegas": run_vegas, "plain": run_plain}


def summarise(analytic: float, per_seed: list[dict]) -> dict:
    """Mean over seeds: the integral (its error: the seeds' errors combined as for a mean), the unweighting
    efficiency (mean and standard deviation over seeds), the pulls ``(I - analytic) / error`` of each seed."""
    ints = np.array([r["integral"] for r in per_seed])
    errs = np.array([r["error"] for r in per_seed])
    effs = np.array([r["unweighting_efficiency"] for r in per_seed])
    mean = float(ints.mean())
    error = float(np.sqrt((errs ** 2).sum()) / len(errs))
    return {"integral": mean, "error": error, "pull": (mean - analytic) / error,
            "unweighting_efficiency": float(effs.mean()),
            "unweighting_efficiency_spread": float(effs.std(ddof=1)) if len(effs) > 1 else float("nan"),
            "relative_std": float(np.mean([r["relative_std"] for r in per_seed])),
            "pulls": [float((i - analytic) / e) for i, e in zip(ints, errs)],
            "per_seed": per_seed}


def write_figure(weights: dict, analytic: dict, run: Run, prov: dict) -> None:
    """The weight distributions ``w / I`` (first seed) per integrand and method, log-log (ideal: a spike at 1)."""
    import matplotlib.pyplot as plt

    names = list(weights)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        for method, colour in (("plain", "tab:gray"), ("vegas", "tab:blue"), ("flow", "tab:red")):
            w = weights[name][method] / analytic[name]
            w = w[w > 0]
            bins = np.logspace(-4, max(1.0, math.log10(w.max()) + 0.1), 80)
            ax.hist(w, bins=bins, histtype="step", color=colour, label=method)
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("w / I")
        ax.set_title(name, fontsize="small")
    axes[0][0].set_ylabel("points")
    axes[0][0].legend(fontsize="small")
    fig.suptitle(f"preset {prov['preset']}, seed {prov['seed']}", fontsize="small")
    plotting.save_figure(fig, run / "weights")


# -------------------------------------------------------------------------------------------------- command line
def main(argv=None) -> dict:
    """The command line (``--preset --out --seed``, ``--repeats --train-calls --only``); returns the metrics."""
    p = report.parser(__doc__)
    p.add_argument("--repeats", type=int, help="seeds (preset: 3)")
    p.add_argument("--train-calls", type=int, help="integrand calls for training / adaptation")
    p.add_argument("--eval-calls", type=int, help="integrand calls of the reported estimate")
    p.add_argument("--loss", choices=("kl", "variance"), help="flow training loss")
    p.add_argument("--only", nargs="+", help="integrands to run (breit_wigner, camel_2d, ...)")
    args = p.parse_args(argv)
    run, recipe = report.start(args, PART, INTEGRATION_PRESETS, repeats=args.repeats, train_calls=args.train_calls,
                               eval_calls=args.eval_calls, loss=args.loss)
    prov = report.provenance(recipe, PART, presets=INTEGRATION_PRESETS)
    t0 = time.time()
    results, rows, weights, analytic = {}, [], {}, {}
    for f in integrands(recipe):
        if args.only and f.name not in args.only:
            continue
        analytic[f.name] = f.analytic()
        per = {m: [] for m in METHODS}
        for k in range(recipe.repeats):
            for method, fn in METHODS.items():
                out, w = fn(recipe, f, recipe.seed + k)
                per[method].append(out)
                if k == 0:
                    weights.setdefault(f.name, {})[method] = w
            print(f"{f.name} seed {recipe.seed + k}: " + ", ".join(
                f"{m} {per[m][-1]['integral']:.5g} +- {per[m][-1]['error']:.2g} (eff "
                f"{per[m][-1]['unweighting_efficiency']:.3g})" for m in METHODS)
                + f"; analytic {analytic[f.name]:.6g} ({time.time() - t0:.0f} s)", flush=True)
        results[f.name] = {"analytic": analytic[f.name], "dims": f.dims,
                           **{m: summarise(analytic[f.name], per[m]) for m in METHODS}}
        for m in METHODS:
            r = results[f.name][m]
            rows.append({"integrand": f.name, "method": m, "analytic": analytic[f.name], "integral": r["integral"],
                         "error": r["error"], "pull": r["pull"], "max |pull| of a seed": max(map(abs, r["pulls"])),
                         "std(w)/<w>": r["relative_std"], "<w>/w_max": r["unweighting_efficiency"],
                         "<w>/w_max spread": r["unweighting_efficiency_spread"]})
    calls = recipe.train_calls + recipe.eval_calls
    print(report.write_table(pd.DataFrame(rows), run, "integration", prov,
                             f"Integrals, errors and unweighting efficiencies, {calls} integrand calls per method, "
                             f"mean over {recipe.repeats} seeds (efficiency on {recipe.eval_calls} points)"))
    write_figure(weights, analytic, run, prov)
    out = {"results": results, "calls_per_method": calls, "repeats": recipe.repeats, "seconds": time.time() - t0,
           "definitions": {"integral": "mean over seeds", "error": "error of that mean (seeds' errors in quadrature"
                           " / repeats)", "unweighting_efficiency": "<w>/w_max on eval_calls points, mean over seeds",
                           "pull": "(integral - analytic) / error"}}
    report.write_metrics(run, out, prov)
    return out


if __name__ == "__main__":
    main()
