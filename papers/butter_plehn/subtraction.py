"""The subtraction GAN: the review's Fig. 3 (R Sec. 3.2, Eqs. (13)-(15); Butter, Plehn & Winterhalder,
arXiv:1912.08824).

    python papers/butter_plehn/subtraction.py --preset quick --out runs/bp_subtraction --seed 1 [--no-lhc]

Two examples, each repeated ``repeats`` times with independent B and S samples and an independent GAN:

* the 1-d toy of Eq. (13): P_B = 1/x + 0.1, P_S = 1/x on [x_min, x_max], B - S = 0.1 (Eq. (14));
* the LHC example of Eq. (15): B = pp -> gamma*/Z -> mu mu (with interference), S = pp -> gamma* -> mu mu, hard
  process from Pythia 8 (``data_prep.drell_yan``), each sample normalised to its generated cross section; the GAN
  learns the events (m_ll, y_ll, cos theta_CS) of B - S, the Z-induced part with the interference.

Per example: the binned B - S with its statistical envelope (``data.binned_subtraction``), after checking per bin
that it is non-negative (a GAN cannot produce a negative density); the GANned B - S (``model.SubtractionGAN``),
normalised to sigma_B - sigma_S; and over the repeats, the GAN's spread per bin against the envelope. The review's
claim (Fig. 3, right): the GAN varies less than the binned envelope.

Writes ``RUN/metrics.json`` (``spread_ratio_gan_over_binned``: the GAN's std over repeats divided by the binned
envelope, averaged over bins, for the toy; the LHC numbers under ``lhc``), ``RUN/{toy,lhc}_bins.{md,csv}``,
``RUN/summary.{md,csv}`` and ``RUN/fig3.{png,pdf}``. Each GAN is a run folder ``RUN/<example>/r<k>``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from gan4hep import io, plotting, training
from gan4hep.preprocessing import MinMax, Pipeline, Standardise
from gan4hep.recipes import to_dict
from gan4hep.runs import Run

from papers.butter_plehn import data, model, published, report
from papers.butter_plehn.recipe import Subtraction

PART = "subtraction"
LHC_FEATURES = ("m_ll", "y_ll", "cos_theta")
LHC_LABELS = {"m_ll": r"$m_{\mu\mu}$ [GeV]", "y_ll": r"$y_{\mu\mu}$", "cos_theta": r"$\cos\theta_{CS}$",
              "pt_l": r"$p_{T,\mu}$ [GeV]"}


def repeat_seed(recipe: Subtraction, example: str, k: int) -> int:
    """Seed of repeat ``k`` of ``example`` ("toy" / "lhc"): its B and S samples (toy), GAN weights and noise."""
    return int(np.random.SeedSequence([recipe.seed, {"toy": 0, "lhc": 1}[example], k]).generate_state(1)[0]
               % 2**31)


def check_non_negative(bms: np.ndarray, err: np.ndarray) -> dict:
    """Per-bin check of the binned B - S before training: ``{"negative_bins", "significant_negative_bins"
    (below -2 sigma), "min_pull"}``."""
    pull = np.where(err > 0, bms / np.where(err > 0, err, 1), 0.0)
    return {"negative_bins": int(np.sum(bms < 0)), "significant_negative_bins": int(np.sum(pull < -2)),
            "min_pull": float(pull.min())}


def train_repeat(recipe: Subtraction, run: Run, b: np.ndarray, s: np.ndarray, sigma_b: float, sigma_s: float,
                 steps: int, seed: int, verbose: int = 0) -> np.ndarray:
    """Train one subtraction GAN on ``b`` against ``s`` (``(N, d)`` physical units) and return
    ``recipe.n_generate`` generated B - S events ``(n, d)`` (cached in the run folder)."""
    run.start({**to_dict(recipe), "example_seed": seed, "steps_used": steps})  # RunMismatch for another recipe
    cached = run / "generated.npy"
    if cached.exists() and run.results().get("trained_steps") == steps:
        return np.load(cached)
    scaler = (MinMax(recipe.margin, 1 - recipe.margin) if recipe.scaling == "minmax" else Standardise())
    pipeline = Pipeline([scaler]).fit(np.concatenate([b, s]))
    run.save_preprocessing(pipeline)
    sb = pipeline.transform(b).astype(np.float32)
    ss = pipeline.transform(s).astype(np.float32)
    trained = training.train(
        lambda: model.build_subtraction_gan(recipe, b.shape[1], ss, sigma_s / sigma_b, pipeline,
                                           output_activation="sigmoid" if recipe.scaling == "minmax" else None),
        sb, run, steps=steps, batch_size=recipe.batch_size, seed=seed, steps_per_epoch=min(steps, 1000),
        keep_checkpoints=1, verbose=verbose)
    gen = trained.model.sample(recipe.n_generate, seed=seed + 1)
    np.save(cached, gen.astype(np.float32))
    return gen


def bin_table(edges: np.ndarray, binned: np.ndarray, envelopes: np.ndarray, gans: np.ndarray,
              truth: np.ndarray | None = None) -> pd.DataFrame:
    """Per bin: the binned B - S (mean and std over repeats), the formula envelope (mean over repeats), the GAN
    (mean and std over repeats) and their ratio; ``binned``, ``envelopes``, ``gans`` are ``(repeats, n_bins)``
    cross sections per bin."""
    df = pd.DataFrame({"lo": edges[:-1], "hi": edges[1:], "binned mean": binned.mean(0),
                       "binned std over repeats": binned.std(0, ddof=1) if len(binned) > 1 else np.nan,
                       "binned envelope": envelopes.mean(0), "GAN mean": gans.mean(0),
                       "GAN std over repeats": gans.std(0, ddof=1) if len(gans) > 1 else np.nan})
    if truth is not None:
        df.insert(2, "truth", truth)
    df["GAN std / envelope"] = df["GAN std over repeats"] / df["binned envelope"]
    ref = df["truth"] if truth is not None else df["binned mean"]
    df["(GAN mean - ref) / envelope"] = (df["GAN mean"] - ref) / df["binned envelope"]
    return df


def summary(df: pd.DataFrame, mask: np.ndarray | None = None) -> dict:
    """The headline numbers of a bin table (optionally over the bins of ``mask``): mean GAN std / envelope,
    mean empirical binned std / envelope (the envelope's own check, ~1), and the GAN's mean |bias| / envelope."""
    d = df if mask is None else df[mask]
    return {"spread_ratio_gan_over_binned": float(d["GAN std / envelope"].mean()),
            "binned_std_over_envelope": float((d["binned std over repeats"] / d["binned envelope"]).mean()),
            "gan_abs_bias_over_envelope": float(d["(GAN mean - ref) / envelope"].abs().mean()),
            "bins": int(len(d))}


# ----------------------------------------------------------------------------------------------------- toy
def run_toy(recipe: Subtraction, run: Run, verbose: int = 0) -> tuple[pd.DataFrame, dict, dict]:
    """The 1-d toy of Eq. (13) over ``recipe.repeats``: (bin table, checks, the first repeat's samples).

    GANned events outside [x_min, x_max] (the sigmoid output reaches a little beyond the samples' range) are
    dropped and the rest normalised to sigma_B - sigma_S; their fraction is in the checks."""
    toy = data.SubtractionToy(recipe.x_min, recipe.x_max)
    edges = np.linspace(recipe.x_min, recipe.x_max, recipe.toy_bins + 1)
    truth = 0.1 * np.diff(edges)
    binned, envelopes, gans, checks, first, outside = [], [], [], [], {}, []
    for k in range(recipe.repeats):
        seed = repeat_seed(recipe, "toy", k)
        rng = np.random.default_rng(seed)
        b, s = toy.sample_b(recipe.toy_events, rng), toy.sample_s(recipe.toy_events, rng)
        bms, err = data.binned_subtraction(b, s, toy.sigma_b, toy.sigma_s, edges)
        checks.append(check_non_negative(bms, err))
        gen = train_repeat(recipe, Run(run / "toy" / f"r{k:03d}"), b[:, None], s[:, None], toy.sigma_b,
                           toy.sigma_s, recipe.steps, seed, verbose)[:, 0]
        counts, _ = np.histogram(gen, edges)
        inside = (gen >= recipe.x_min) & (gen <= recipe.x_max)  # the samples' phase space; outside is unphysical
        outside.append(1 - inside.mean())
        binned.append(bms)
        envelopes.append(err)
        gans.append(toy.sigma_bms * counts / inside.sum())
        if k == 0:
            first = {"b": b, "s": s, "gen": gen}
        checks[-1]["gan_fraction_outside"] = float(outside[-1])
        print(f"toy repeat {k}: GAN mean {gans[-1].mean():.4f} per bin (truth {truth.mean():.4f}), negative "
              f"bins {checks[-1]['negative_bins']}, GAN events outside [x_min, x_max] {outside[-1]:.3f}", flush=True)
    return bin_table(edges, np.array(binned), np.array(envelopes), np.array(gans), truth), checks, first


# ----------------------------------------------------------------------------------------------------- LHC
def lhc_samples(recipe: Subtraction, data_dir: Path = data.DATA_DIR, jobs: int = 1) -> dict:
    """The B and S hard-level Drell-Yan samples (``data_prep.drell_yan``), ``repeats`` seeded blocks of
    ``lhc_events`` each, made once and cached in ``data_dir``: ``{"B": (table, sigma per block [pb]), "S": ...}``.
    """
    from data_prep import drell_yan

    out = {}
    for mode in ("B", "S"):
        settings = drell_yan.Settings(level="hard", mode=mode, m_min=recipe.m_min, m_max=recipe.m_max)
        tag = f"dy_hard_{mode}_m{recipe.m_min:g}-{recipe.m_max:g}_e{recipe.lhc_events}x{recipe.repeats}_s{recipe.seed}"
        path = Path(data_dir) / f"{tag}_features.root"
        if not path.exists():
            path = drell_yan.make_sample(Path(data_dir) / f"{tag}.root", recipe.lhc_events * recipe.repeats,
                                         recipe.seed, settings, jobs=jobs, block_size=recipe.lhc_events,
                                         progress=False)
        meta = io.read_metadata(path)
        sigmas = [e["stats"]["sigma_pb"] for e in meta.get("manifest", [])] or [meta["sigma_pb"]] * recipe.repeats
        out[mode] = (io.read_table(path), np.asarray(sigmas, dtype=float))
    return out


def lhc_edges(recipe: Subtraction) -> dict:
    """Bin edges of the LHC observables."""
    return {"m_ll": np.linspace(recipe.m_min, recipe.m_max, recipe.lhc_bins + 1),
            "y_ll": np.linspace(-4, 4, recipe.lhc_bins + 1), "cos_theta": np.linspace(-1, 1, recipe.lhc_bins + 1),
            "pt_l": np.linspace(0, recipe.m_max / 2, recipe.lhc_bins + 1)}


def observables(x: np.ndarray) -> dict:
    """The plotted observables of ``(n, 3)`` events (m_ll, y_ll, cos theta): those and the muon pT =
    m / 2 sin theta (no dilepton pT at hard level; the muon mass neglected, ~1e-5 relative)."""
    out = {name: x[:, i] for i, name in enumerate(LHC_FEATURES)}
    out["pt_l"] = 0.5 * x[:, 0] * np.sqrt(np.clip(1 - x[:, 2] ** 2, 0, 1))
    return out


def run_lhc(recipe: Subtraction, run: Run, jobs: int = 1, verbose: int = 0):
    """The LHC example of Eq. (15) over ``recipe.repeats``: (bin tables per observable, checks, first repeat).
    GANned events outside the mass window or with |cos theta| > 1 are dropped (fraction in the checks)."""
    samples = lhc_samples(recipe, jobs=jobs)
    (tb, sb_all), (ts, ss_all) = samples["B"], samples["S"]
    edges = lhc_edges(recipe)
    res = {name: {"binned": [], "env": [], "gan": []} for name in edges}
    checks, first = [], {}
    n = recipe.lhc_events
    for k in range(recipe.repeats):
        seed = repeat_seed(recipe, "lhc", k)
        b = tb[list(LHC_FEATURES)].to_numpy()[k * n:(k + 1) * n]
        s = ts[list(LHC_FEATURES)].to_numpy()[k * n:(k + 1) * n]
        sig_b, sig_s = float(sb_all[k]), float(ss_all[k])
        gen = train_repeat(recipe, Run(run / "lhc" / f"r{k:03d}"), b, s, sig_b, sig_s, recipe.lhc_steps, seed,
                           verbose)
        inside = ((gen[:, 0] >= recipe.m_min) & (gen[:, 0] <= recipe.m_max) & (np.abs(gen[:, 2]) <= 1))
        chk = {"gan_fraction_outside": float(1 - inside.mean())}
        gen = gen[inside]  # the samples' phase space (mass window, |cos theta| <= 1); outside is unphysical
        ob, os_, og = observables(b), observables(s), observables(gen)
        for name, e in edges.items():
            bms, err = data.binned_subtraction(ob[name], os_[name], sig_b, sig_s, e)
            chk[name] = check_non_negative(bms, err)
            counts, _ = np.histogram(og[name], e)
            res[name]["binned"].append(bms)
            res[name]["env"].append(err)
            res[name]["gan"].append((sig_b - sig_s) * counts / len(gen))
        # two-dimensional check (m_ll, cos theta): the interference is odd in cos theta
        cells = (np.linspace(recipe.m_min, recipe.m_max, 11), np.linspace(-1, 1, 9))
        h2 = [np.histogram2d(o["m_ll"], o["cos_theta"], cells)[0] for o in (ob, os_)]
        d2 = sig_b * h2[0] / len(b) - sig_s * h2[1] / len(s)
        e2 = np.sqrt(sig_b**2 * h2[0] / len(b) ** 2 + sig_s**2 * h2[1] / len(s) ** 2)
        chk["m_ll x cos_theta"] = check_non_negative(d2.ravel(), e2.ravel())
        checks.append(chk)
        if k == 0:
            first = {"b": ob, "s": os_, "gen": og, "sigma_b": sig_b, "sigma_s": sig_s}
        print(f"lhc repeat {k}: sigma_B {sig_b:.4g} pb, sigma_S {sig_s:.4g} pb, negative m_ll bins "
              f"{chk['m_ll']['negative_bins']}", flush=True)
    tables = {name: bin_table(edges[name], np.array(r["binned"]), np.array(r["env"]), np.array(r["gan"]))
              for name, r in res.items()}
    return tables, checks, first


# ---------------------------------------------------------------------------------------------------- figure
def _panel(ax, rax, edges, table, truth_label, first_hists, title):
    centres = 0.5 * (edges[1:] + edges[:-1])
    width = np.diff(edges)
    for label, (h, color) in first_hists.items():
        ax.stairs(h / width, edges, color=color, label=label)
    ref = table["truth"].to_numpy() if "truth" in table else table["binned mean"].to_numpy()
    env = table["binned envelope"].to_numpy()
    ax.stairs((ref + env) / width, edges, baseline=(ref - env) / width, fill=True, alpha=0.3, color="black",
              label=f"{truth_label} +- binned envelope")
    ax.errorbar(centres, table["GAN mean"] / width, yerr=table["GAN std over repeats"] / width, fmt="o", ms=3,
                color="tab:orange", label="GAN B - S (mean +- std over repeats)")
    ax.set_title(title, fontsize="small")
    ax.legend(fontsize="x-small")
    with np.errstate(divide="ignore", invalid="ignore"):
        rax.stairs(env / np.abs(ref), edges, color="black", label="binned envelope / B - S")
        rax.stairs(table["GAN std over repeats"] / np.abs(ref), edges, color="tab:orange",
                   label="GAN std / B - S")
    rax.set_yscale("log")
    rax.set_ylabel("relative spread")
    rax.legend(fontsize="x-small")


def write_figure(recipe: Subtraction, run: Run, toy_table, toy_first, lhc_tables, lhc_first, prov) -> None:
    """Fig. 3: the toy and the LHC m_ll and cos theta: B, S and B - S of the first repeat, the binned B - S with
    its envelope, the GAN's mean and spread over repeats; below, the relative envelope and GAN spread."""
    import matplotlib.pyplot as plt

    panels = [("toy", "x", toy_table)] + ([("lhc", n, lhc_tables[n]) for n in ("m_ll", "cos_theta", "pt_l")]
                                          if lhc_tables else [])
    fig, axes = plt.subplots(2, len(panels), figsize=(5 * len(panels), 7), height_ratios=(3, 1.4), squeeze=False)
    for j, (example, name, table) in enumerate(panels):
        edges = np.append(table["lo"].to_numpy(), table["hi"].to_numpy()[-1])
        if example == "toy":
            toy = data.SubtractionToy(recipe.x_min, recipe.x_max)
            hb, _ = np.histogram(toy_first["b"], edges)
            hs, _ = np.histogram(toy_first["s"], edges)
            hists = {"B (repeat 0)": (toy.sigma_b * hb / len(toy_first["b"]), "tab:blue"),
                     "S (repeat 0)": (toy.sigma_s * hs / len(toy_first["s"]), "tab:green")}
            _panel(axes[0, j], axes[1, j], edges, table, "truth 0.1", hists,
                   f"toy, Eq. (13); preset {prov['preset']}, {recipe.repeats} repeats")
            axes[1, j].set_xlabel("x")
        else:
            hb, _ = np.histogram(lhc_first["b"][name], edges)
            hs, _ = np.histogram(lhc_first["s"][name], edges)
            hists = {"B (repeat 0)": (lhc_first["sigma_b"] * hb / len(lhc_first["b"][name]), "tab:blue"),
                     "S (repeat 0)": (lhc_first["sigma_s"] * hs / len(lhc_first["s"][name]), "tab:green")}
            _panel(axes[0, j], axes[1, j], edges, table, "binned B - S", hists,
                   f"pp -> mu mu, Eq. (15); preset {prov['preset']}")
            axes[0, j].set_yscale("log")
            axes[0, j].set_ylabel("d sigma / d x [pb / unit]")
            axes[1, j].set_xlabel(LHC_LABELS[name])
    plotting.save_figure(fig, run / "fig3")


def main(argv=None) -> dict:
    """The command line (``--preset --out --seed``, ``--no-lhc --repeats --steps --lhc-steps --jobs``); returns
    the metrics."""
    p = report.parser(__doc__)
    p.add_argument("--no-lhc", action="store_true", help="the toy only")
    p.add_argument("--repeats", type=int)
    p.add_argument("--steps", type=int, help="GAN steps of the toy")
    p.add_argument("--lhc-steps", type=int)
    p.add_argument("--jobs", type=int, default=1, help="processes for the Pythia samples")
    p.add_argument("--verbose", type=int, default=0)
    args = p.parse_args(argv)
    run, recipe = report.start(args, PART, repeats=args.repeats, steps=args.steps, lhc_steps=args.lhc_steps,
                               lhc=False if args.no_lhc else None)
    prov = report.provenance(recipe, PART, None if args.resume else args.preset)
    t0 = time.time()
    toy_table, toy_checks, toy_first = run_toy(recipe, run, args.verbose)
    report.write_table(toy_table, run, "toy_bins", prov, "Toy B - S per bin (cross section per bin)")
    out = {**summary(toy_table), "toy_checks": toy_checks}
    rows = [{"example": "toy", "observable": "x", **summary(toy_table)}]
    lhc_tables, lhc_first = None, None
    if recipe.lhc:
        lhc_tables, lhc_checks, lhc_first = run_lhc(recipe, run, args.jobs, args.verbose)
        out["lhc"] = {"checks": lhc_checks}
        for name, table in lhc_tables.items():
            report.write_table(table, run, f"lhc_{name}_bins", prov, f"pp -> mu mu: B - S per bin of {name} [pb]")
            keep = (table["binned mean"] > 0).to_numpy()  # bins where B - S is resolved
            out["lhc"][name] = summary(table, keep)
            rows.append({"example": "lhc", "observable": name, **out["lhc"][name]})
        out["lhc"]["spread_ratio_gan_over_binned"] = out["lhc"]["m_ll"]["spread_ratio_gan_over_binned"]
    print(report.write_table(pd.DataFrame(rows), run, "summary", prov,
                             "GAN spread over repeats / binned envelope (review: < 1)"))
    write_figure(recipe, run, toy_table, toy_first, lhc_tables, lhc_first, prov)
    out.update(repeats=recipe.repeats, published=published.SUBTRACTION, seconds=time.time() - t0,
               definition="mean over bins of (std over repeats of the GANned B - S) / (binned statistical "
                          "envelope of one repeat's B and S samples)")
    report.write_metrics(run, out, prov)
    return out


if __name__ == "__main__":
    main()
