"""Histogram mass templates vs conditional GANs for the large-R jet mass (Lin, Bhimji & Nachman 2019), end to end.

Generates (or reads) the QCD jet sample, writes Table 1 with our yields, builds the baseline templates (control-region
jets in 4 |eta| x 15 log10(pT) bins = 60 weighted mass histograms), dresses validation- and signal-region jets with
masses drawn from their bin, trains the conditional GANs (train.py: vanilla / circle-WGAN x skew / noskew), and
evaluates both (evaluate.py) with the separation power of section 3.3 (Fig. 4), the mass in bins of pT, eta and
N_track (Fig. 5), the Sum m_J ratio error with N_track cuts (Fig. 6) and gan4hep's fidelity report.

    python papers/lin_bhimji_nachman/templates.py --preset quick --out runs/lin_bhimji_nachman
    python papers/lin_bhimji_nachman/templates.py --resume --out runs/lin_bhimji_nachman   # continue / re-evaluate
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from data_prep import runner
from gan4hep import io
from gan4hep.recipes import deviations, to_dict
from papers.lin_bhimji_nachman import data, evaluate, train
from papers.lin_bhimji_nachman.recipe import PAPER, Recipe

__all__ = ["MassTemplates", "fit_templates", "describe_sample", "gans", "main"]


class MassTemplates:
    """The baseline of section 3.2: weighted jet-mass histograms in ``n_eta`` |eta| bins uniform in [0, eta_max] x
    ``n_pt`` pT bins uniform in log10(pT) ("This results in 60 mass histograms in total").

    Our choices (the paper gives none): pT bins span [200 GeV, highest control-region pT] (jets outside go to the
    end bins); mass bins are ``mass_bin`` GeV wide from 0 to above the highest control-region mass; a (pT, |eta|)
    bin without control jets borrows the nearest filled pT bin of the same |eta| bin. Dressing draws a mass bin with
    probability proportional to its weighted content, then a mass uniformly inside it.
    """

    def __init__(self, n_eta: int = 4, eta_max: float = 2.0, n_pt: int = 15,
                 pt_range: tuple[float, float] | None = None, mass_bin: float = 5.0):
        self.n_eta, self.eta_max, self.n_pt, self.pt_range, self.mass_bin = n_eta, eta_max, n_pt, pt_range, mass_bin

    def fit(self, pt, eta, mass, weight=None) -> MassTemplates:
        """Fill the histograms from jets: pt, eta, mass (GeV) and weight, each (n_jets,)."""
        pt, eta, mass = (np.asarray(a, dtype=float) for a in (pt, eta, mass))
        weight = np.ones_like(pt) if weight is None else np.asarray(weight, dtype=float)
        lo, hi = self.pt_range or (data.PT_MIN, pt.max())
        self.eta_edges = np.linspace(0.0, self.eta_max, self.n_eta + 1)
        self.pt_edges = np.logspace(np.log10(lo), np.log10(hi), self.n_pt + 1)
        self.mass_edges = np.arange(0.0, mass.max() + 2 * self.mass_bin, self.mass_bin)
        idx = self.bin_index(pt, eta)
        hist = np.zeros((self.n_eta * self.n_pt, len(self.mass_edges) - 1))
        for b in np.unique(idx):
            hist[b], _ = np.histogram(mass[idx == b], self.mass_edges, weights=weight[idx == b])
        self.counts = hist.copy()
        self.source = np.arange(len(hist))  # which histogram each bin draws from (itself unless empty)
        for b in np.flatnonzero(hist.sum(axis=1) <= 0):
            e = b // self.n_pt
            filled = [e * self.n_pt + p for p in range(self.n_pt) if hist[e * self.n_pt + p].sum() > 0]
            filled = filled or list(np.flatnonzero(hist.sum(axis=1) > 0))
            self.source[b] = min(filled, key=lambda f: abs(f % self.n_pt - b % self.n_pt))
        self.cdf = np.cumsum(hist[self.source], axis=1)
        self.cdf /= self.cdf[:, -1:]
        return self

    def save(self, path: Path) -> None:
        """The 60 weighted histograms and their edges (.npz, atomically)."""
        with io.atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, counts=self.counts, source=self.source, eta_edges=self.eta_edges,
                         pt_edges=self.pt_edges, mass_edges=self.mass_edges)

    @property
    def n_templates(self) -> int:
        return self.n_eta * self.n_pt

    def bin_index(self, pt, eta) -> np.ndarray:
        """Template index = |eta| bin * n_pt + pT bin (values outside the edges go to the end bins)."""
        ie = np.clip(np.searchsorted(self.eta_edges, np.abs(eta), side="right") - 1, 0, self.n_eta - 1)
        ip = np.clip(np.searchsorted(self.pt_edges, pt, side="right") - 1, 0, self.n_pt - 1)
        return ie * self.n_pt + ip

    def dress(self, pt, eta, copies: int = 1, seed: int = 0) -> np.ndarray:
        """Masses (GeV) drawn from each jet's template for jets pt (GeV), eta (n_jets,): array (copies, n_jets)."""
        rng = np.random.default_rng(seed)
        b = np.tile(self.bin_index(np.asarray(pt, float), np.asarray(eta, float)), copies)
        u = rng.random(b.size)
        k = np.minimum((self.cdf[b] < u[:, None]).sum(axis=1), self.cdf.shape[1] - 1)
        m = self.mass_edges[k] + rng.random(b.size) * np.diff(self.mass_edges)[k]
        return m.reshape(copies, -1)


def fit_templates(control: pd.DataFrame, recipe: Recipe, out: Path) -> MassTemplates:
    """The baseline templates from all control-region jets (weighted), saved to ``OUT/templates.npz``."""
    tmpl = MassTemplates(n_eta=recipe.template_n_eta, eta_max=recipe.template_eta_max, n_pt=recipe.template_n_pt,
                         mass_bin=recipe.template_mass_bin)
    tmpl.fit(control["pt"], control["eta"], control["mass"], control["weight"])
    tmpl.save(Path(out) / "templates.npz")
    print(f"\ntemplates: {tmpl.n_templates} histograms ({tmpl.n_eta} |eta| x {tmpl.n_pt} log10 pT bins, pT "
          f"{tmpl.pt_edges[0]:.0f}-{tmpl.pt_edges[-1]:.0f} GeV, {len(tmpl.mass_edges) - 1} mass bins of "
          f"{recipe.template_mass_bin:g} GeV) from {len(control)} control jets; "
          f"{int((tmpl.counts.sum(axis=1) <= 0).sum())} empty bins borrow a neighbour")
    return tmpl


def _show(title: str, table: pd.DataFrame) -> None:
    print(f"\n{title}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="templates.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_arguments(p)
    p.add_argument("--no-gan", action="store_true", help="templates only (no GAN training)")
    p.add_argument("--no-classifier", action="store_true", help="fidelity report without the classifier test")
    p.add_argument("--template-mass-bin", type=float, default=None,
                   help="template mass bin width in GeV (ours; default: the preset's, 5)")
    return p.parse_args(argv)


def describe_sample(df: pd.DataFrame, recipe: Recipe, seconds: float) -> dict:
    """Print the sample and the recipe's deviations from the paper's; return the head of the metrics record."""
    devs = deviations(recipe, PAPER)
    print(f"preset: {recipe.preset}  sample: {df.attrs['path']} ({len(df)} jets, {df['event'].nunique()} events "
          f"with jets; {seconds:.0f} s)" + "".join(f"\n  differs from the paper: {d}" for d in devs))
    return {"preset": recipe.preset, "recipe": to_dict(recipe), "deviations": devs, "seed": recipe.seed,
            "sample": df.attrs["path"], "sample_seconds": seconds,
            "table1_jets": {n: int((df["region"] == c).sum()) for c, n in data.REGIONS.items()}}


def generation_speed(models, jets: pd.DataFrame, copies: int, seed: int) -> dict:
    """Jet masses generated per second (wall clock, after one untimed call that traces the graph) by each of
    ``models`` ({label: model}) for ``copies`` x the jets of ``jets`` (the early-stopping half): {label: events/s}."""
    from papers.lin_bhimji_nachman import model as lbn_model

    speed = {}
    for label, m in models.items():
        lbn_model.generate_mass(m, jets.iloc[:100], copies=1, seed=seed)
        t0 = time.perf_counter()
        lbn_model.generate_mass(m, jets, copies=copies, seed=seed)
        speed[label] = copies * len(jets) / max(time.perf_counter() - t0, 1e-9)
    return speed


def gans(recipe: Recipe, jets: dict, regions: list[str], sp: dict, masses: dict, out: Path) -> dict:
    """Train the GANs or the flow (``train.train_all``), score them (``evaluate.gan_scores``, into ``sp``), add the
    figure model's masses to ``masses`` (label "GAN" or "Flow") and draw Fig. 4; returns the metrics record's
    training part, with the generation speed of the figure model.

    Figs. 5, 6 and the fidelity report use the vanilla skew GAN, as the paper's Fig. 5 (or the first trained
    variant; the flow for ``--model flow``): its initialisation with the best early-stopping value.
    """
    what = "flows" if recipe.model == "flow" else "GANs"
    print(f"\ntraining {what} (preset {recipe.preset}: {recipe.n_init} initialisations x {recipe.epochs} epochs per "
          f"variant, target {recipe.target}, {len(jets['train'])} training / {len(jets['control_es'])} "
          "early-stopping jets)", flush=True)
    runs = train.train_all(recipe, jets, out)
    records = {k: [rec for _, rec in v] for k, v in runs.items()}
    figure_key = ("vanilla", "skew") if ("vanilla", "skew") in runs else next(iter(runs))
    gan_sp, figure_masses = evaluate.gan_scores(runs, jets, recipe, regions, figure_key)
    sp.update(gan_sp)
    label = "Flow" if recipe.model == "flow" else "GAN"
    for r in regions:
        masses[r][label] = figure_masses[r]
    pairs = runs[figure_key]
    best = min(pairs, key=lambda p: p[1]["best"]["sp_control_es"])[0]
    speed = generation_speed({label: best}, jets["control_es"], recipe.dress, recipe.seed)
    print(f"generation ({label}, best initialisation): {speed[label]:.3g} jet masses/s")
    curves = evaluate.fig4(records, {r: sp["template"][r]["value"] for r in regions},
                           {r: sp["template"][r]["floor"] for r in regions}, out, recipe.preset)
    return {"training": {"_".join(p for p in k if p): recs for k, recs in records.items()},
            "figure_gan": "_".join(p for p in figure_key if p), "fig4_curves": curves,
            "epochs_to_reach": evaluate.epochs_to_reach(curves), "generation_events_per_second": speed}


def main(argv: list[str] | None = None) -> dict:
    """The reproduction as named steps; every artefact is written by one function of evaluate.py (or
    ``fit_templates`` / ``train.train_all``). Returns the metrics.json record."""
    args = parse_args(argv)
    t_start = time.time()
    with train.user_errors("templates.py"):
        run, recipe, source = train.start(args)
        df, jets = train.load_data(run, recipe, source, runner.engine_kwargs(args))
    out, preset = run.path, recipe.preset
    res = describe_sample(df, recipe, time.time() - t_start)
    res.update(model=recipe.model, reference="test")  # issue 20: the family, and the validation region as test

    _show(f"Table 1 (preset {preset}; events/jets in our sample, weighted = sum of event weights):",
          evaluate.table1(df, out))

    tmpl = fit_templates(jets["control"], recipe, out)
    res["templates"] = {"n": tmpl.n_templates, "pt_edges": tmpl.pt_edges.tolist(),
                        "eta_edges": tmpl.eta_edges.tolist(), "mass_bin_GeV": recipe.template_mass_bin}
    regions = evaluate.regions_to_evaluate(jets, recipe.min_jets)
    if len(regions) < len(evaluate.EVALUATED):
        print(f"not evaluated (fewer than {recipe.min_jets} jets in our sample): "
              + ", ".join(r for r in evaluate.EVALUATED if r not in regions))
    sp = {}
    sp["template"], dressed = evaluate.template_scores(jets, tmpl, recipe, regions)
    masses = {r: {"Template": dressed[r]} for r in regions}
    if recipe.variants or (recipe.model == "flow" and not args.no_gan):
        res.update(gans(recipe, jets, regions, sp, masses, out))
    res["separation_power"] = sp
    _show(f"Separation power (section 3.3: 8 equal-statistics regions x {recipe.mass_bins} mass bins; preset "
          f"{preset}; GAN: mean +- std over kept initialisations at the early-stopping epoch; template: +- spread "
          "over dressing seeds; floor: expected value for a perfect model; 'unweighted': the same without event "
          "weights, a diagnostic with more effective statistics):",
          evaluate.separation_power_table(sp, regions, recipe, tmpl.n_templates, out))

    res["fig5"] = evaluate.fig5(jets["validation"], masses["validation"], out, preset)
    res["fig6"] = evaluate.fig6(jets["validation"], masses["validation"], out, preset)

    fid = evaluate.fidelity(jets, masses, regions, recipe.seed, preset, out, classifier=not args.no_classifier)
    res["fidelity"] = fid.to_dict(orient="records")
    _show(f"Fidelity report, jet mass per region (preset {preset}; classifier AUC on (pT, |eta|, N_track, mass), "
          "0.5 = indistinguishable):", fid)

    res["comparison"] = evaluate.compare_with_paper(res, out)
    print(f"\nComparison with the paper (preset {preset}; published values from published.py):")
    print("\n".join("  - " + line for line in res["comparison"]))
    res["seconds"] = time.time() - t_start
    io.write_json(res, out / "metrics.json")
    print(f"\nwrote {out}/table1.csv, templates.npz, separation_power.csv, fidelity.csv, fig4/5/6 (.png/.pdf), "
          f"comparison.md, {'training.json, ' if recipe.variants else ''}metrics.json [{res['seconds']:.0f} s]")
    return res

if __name__ == "__main__":
    main()
