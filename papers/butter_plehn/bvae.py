"""The B-VAE on e+ e- -> Z/gamma* -> l+ l-: the review's Fig. 9 (R Secs. 2 and 4.1, Eq. (5); Otten et al.,
Ref. [14]): a VAE sampled from its standard-normal prior fails, the same VAE sampled from the density information
buffer (the latent means of the training events, smeared) reproduces the kinematics; the generated lepton masses
are smeared around zero.

    python papers/butter_plehn/bvae.py --preset quick --out runs/bp_bvae --seed 1

Sample: ``data_prep.ee_zpole`` (Pythia 8 at the Z pole, l = e or mu, QED ISR and FSR, no detector), 16 features:
the e-, e+, mu-, mu+ four-momenta (E, px, py, pz), the other flavour's zero; cached in ``data/butter_plehn``.
Each of ``repeats`` seeds trains one ``gan4hep.models.vae.VAE`` (beta, latent size from the recipe) on the training
part and samples ``n_generate`` events from the prior and from the buffer. Observables (``OBSERVABLES``) of the
held-out test events against each: W1 / std(truth) (``gan4hep.metrics.wasserstein``). A scan over beta and the
latent size (one seed each, ``scan_steps``) follows.

Writes ``RUN/metrics.json`` (``wasserstein_over_std.{prior,buffer}.{OBS}``: mean over seeds, with ``_spread``
(std over seeds) beside it under ``spread``; ``lepton_mass``; ``scan``), ``RUN/bvae.{md,csv}``, ``RUN/scan.{md,csv}``
and ``RUN/fig9.png``; each seed's VAE is a run folder ``RUN/r<k>`` (resumable), each scan point ``RUN/scan/...``.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from gan4hep import io, metrics, plotting, training
from gan4hep.models.vae import VAE
from gan4hep.networks import mlp
from gan4hep.preprocessing import Pipeline, Standardise
from gan4hep.runs import Run

from papers.butter_plehn import report
from papers.butter_plehn.recipe import BVAE, BVAE_PRESETS

PART = "bvae"
DATA_DIR = Path("data/butter_plehn")
#: observables compared (R Fig. 9 shows lepton energies, momenta, angles and m_ll; masses separately)
OBSERVABLES = ("E_lm", "pt_lm", "eta_lm", "E_lp", "pt_lp", "eta_lp", "m_ll", "pt_ll", "dphi_ll")


# ------------------------------------------------------------------------------------------------------ data
def sample(recipe: BVAE, data_dir: Path = DATA_DIR) -> pd.DataFrame:
    """The ``data_prep.ee_zpole`` table of the recipe (made once, cached)."""
    from data_prep import ee_zpole

    settings = ee_zpole.Settings(sqrt_s=recipe.sqrt_s)
    path = Path(data_dir) / f"ee_zpole_rs{recipe.sqrt_s:g}_e{recipe.events}_s{recipe.seed}_features.root"
    if not path.exists():
        path = ee_zpole.make_sample(Path(data_dir) / path.name.replace("_features", ""), recipe.events,
                                    recipe.seed, settings, block_size=min(recipe.events, 10_000), progress=False)
    return io.read_table(path)


def observables(x: np.ndarray) -> dict[str, np.ndarray]:
    """Observables of ``(n, 16)`` events in ``data_prep.ee_zpole.FEATURE_COLUMNS`` order (GeV). The flavour of
    an event is the one whose lepton pair carries more energy (a generated event has both blocks non-zero; in the
    truth one is exactly zero); ``l-`` and ``l+`` are that flavour's four-vectors. Returns their E, pT, eta, the
    dilepton mass, pT and azimuthal separation, the two lepton masses (signed, ``data_prep.ee_zpole.mass``:
    R Fig. 9's last panel), ``is_e`` (1 for electrons) and ``E_other``, the energy in the other flavour's block
    (0 in the truth).

    Returns:
        ``{name: (n,) array}`` with ``OBSERVABLES`` and ``m_lm``, ``m_lp``, ``is_e``, ``E_other``.
    """
    from data_prep.ee_zpole import mass

    x = np.asarray(x, np.float64)
    e_energy, mu_energy = x[:, 0] + x[:, 4], x[:, 8] + x[:, 12]
    is_e = (e_energy >= mu_energy)[:, None]
    lm = np.where(is_e, x[:, 0:4], x[:, 8:12])
    lp = np.where(is_e, x[:, 4:8], x[:, 12:16])
    out = {"is_e": is_e[:, 0].astype(np.float64), "E_other": np.where(is_e[:, 0], mu_energy, e_energy)}
    for tag, p in (("lm", lm), ("lp", lp)):
        pt = np.hypot(p[:, 1], p[:, 2])
        out[f"E_{tag}"], out[f"pt_{tag}"] = p[:, 0], pt
        out[f"eta_{tag}"] = np.arcsinh(p[:, 3] / np.maximum(pt, 1e-9))
        out[f"m_{tag}"] = mass(p)
    ll = lm + lp
    out["m_ll"], out["pt_ll"] = mass(ll), np.hypot(ll[:, 1], ll[:, 2])
    dphi = np.arctan2(lm[:, 2], lm[:, 1]) - np.arctan2(lp[:, 2], lp[:, 1])
    out["dphi_ll"] = np.abs((dphi + np.pi) % (2 * np.pi) - np.pi)
    return out


def w1_over_std(truth: dict, generated: dict, names=OBSERVABLES) -> dict[str, float]:
    """``W1(truth, generated) / std(truth)`` per observable."""
    return {k: float(metrics.wasserstein(truth[k], generated[k]) / np.std(truth[k])) for k in names}


# ------------------------------------------------------------------------------------------------------ model
def build_vae(recipe: BVAE, pipeline, n_features: int, beta: float | None = None,
              latent_dim: int | None = None, seed: int | None = None) -> VAE:
    """Encoder and decoder MLPs (``widths``, LeakyReLU) around a ``latent_dim`` latent space, compiled with
    Adam(``lr``). Options override the recipe's beta and latent size (the scan)."""
    beta = recipe.beta if beta is None else beta
    latent = recipe.latent_dim if latent_dim is None else latent_dim
    encoder = mlp(n_features, recipe.widths, 2 * latent, "leaky_relu", name="encoder")
    decoder = mlp(latent, tuple(reversed(recipe.widths)), n_features, "leaky_relu", name="decoder")
    vae = VAE(encoder, decoder, latent, beta=beta, sampling="buffer", buffer_smearing=recipe.buffer_smearing,
              preprocessing=pipeline, seed=seed)
    vae.compile(keras.optimizers.Adam(recipe.lr))
    return vae


def train_one(recipe: BVAE, x_train: np.ndarray, pipeline, run: Run, seed: int, steps: int,
              beta: float | None = None, latent_dim: int | None = None) -> VAE:
    """Train (or resume) one VAE in ``run`` and fill its buffer with the training events."""
    run.save_preprocessing(pipeline)
    trained = training.train(lambda: build_vae(recipe, pipeline, x_train.shape[1], beta, latent_dim, seed),
                             pipeline.transform(x_train).astype(np.float32), run, steps=steps,
                             batch_size=recipe.batch_size, seed=seed, steps_per_epoch=min(steps, 1000),
                             keep_checkpoints=1, verbose=0)
    vae = trained.model
    vae.fill_buffer(pipeline.transform(x_train).astype(np.float32))
    return vae


def evaluate(vae: VAE, truth: dict, n: int, seed: int) -> dict:
    """W1 / std per observable and the lepton-mass spread, for prior and buffer sampling."""
    out = {}
    for mode in ("prior", "buffer"):
        gen = observables(vae.sample(n, seed=seed, sampling=mode))
        out[mode] = {"w1_over_std": w1_over_std(truth, gen),
                     "lepton_mass_rms": float(np.sqrt(np.mean(np.concatenate([gen["m_lm"], gen["m_lp"]]) ** 2))),
                     "lepton_mass_abs_median": float(np.median(np.abs(np.concatenate([gen["m_lm"], gen["m_lp"]])))),
                     "electron_fraction": float(gen["is_e"].mean()),
                     "other_flavour_energy_mean": float(np.mean(np.abs(gen["E_other"]))),
                     "m_ll_mean": float(np.mean(gen["m_ll"])), "m_ll_std": float(np.std(gen["m_ll"]))}
    return out


# ------------------------------------------------------------------------------------------------------ report
def write_figure(truth: dict, gens: dict, run: Run, prov: dict) -> None:
    """R Fig. 9: truth, prior (naive VAE) and buffer (B-VAE) for the observables and the lepton masses."""
    import matplotlib.pyplot as plt

    names = list(OBSERVABLES) + ["m_lm"]
    fig, axes = plt.subplots(2, 5, figsize=(18, 7))
    for ax, name in zip(axes.ravel(), names):
        lo, hi = np.percentile(truth[name], [0.5, 99.5])
        if name == "m_ll":
            lo, hi = 70.0, 95.0
        if name == "m_lm":
            lo, hi = -30.0, 30.0
        bins = np.linspace(lo, hi, 50)
        ax.hist(truth[name], bins=bins, histtype="stepfilled", color="lightgray", label="truth", density=True)
        for mode, colour in (("prior", "tab:blue"), ("buffer", "tab:red")):
            ax.hist(gens[mode][name], bins=bins, histtype="step", color=colour, density=True,
                    label={"prior": "VAE, normal prior", "buffer": "B-VAE, buffer"}[mode])
        ax.set_xlabel(name)
    axes[0][0].legend(fontsize="small")
    fig.suptitle(f"e+e- -> l+l- at the Z pole; preset {prov['preset']}, seed {prov['seed']}", fontsize="small")
    plotting.save_figure(fig, run / "fig9")


def main(argv=None) -> dict:
    """The command line (``--preset --out --seed``, ``--beta --latent-dim --steps --repeats --no-scan``)."""
    from data_prep.ee_zpole import FEATURE_COLUMNS

    p = report.parser(__doc__)
    p.add_argument("--beta", type=float, help="KL weight (preset: 1e-3)")
    p.add_argument("--latent-dim", type=int, help="latent size (preset: 8)")
    p.add_argument("--steps", type=int, help="training steps per seed")
    p.add_argument("--repeats", type=int, help="seeds (preset: 3)")
    p.add_argument("--smearing", type=float, help="buffer smearing in units of the codes' std (preset: 0.1)")
    p.add_argument("--no-scan", action="store_true", help="skip the beta / latent-size scan")
    args = p.parse_args(argv)
    run, recipe = report.start(args, PART, BVAE_PRESETS, beta=args.beta, latent_dim=args.latent_dim,
                               steps=args.steps, repeats=args.repeats, buffer_smearing=args.smearing)
    prov = report.provenance(recipe, PART, presets=BVAE_PRESETS)
    t0 = time.time()
    df = sample(recipe)
    x = df[list(FEATURE_COLUMNS)].to_numpy(np.float64)
    idx = np.random.default_rng(recipe.seed).permutation(len(x))
    n_test = int(round(recipe.test_fraction * len(x)))
    x_train, x_test = x[idx[n_test:]], x[idx[:n_test]]
    truth = observables(x_test)
    pipeline = Pipeline([Standardise()], names=list(FEATURE_COLUMNS)).fit(x_train)
    print(f"{len(x_train)} training, {len(x_test)} test events ({time.time() - t0:.0f} s)", flush=True)

    per_seed, gens = [], {}
    for k in range(recipe.repeats):
        seed = recipe.seed + k
        vae = train_one(recipe, x_train, pipeline, Run(run / f"r{k}"), seed, recipe.steps)
        per_seed.append(evaluate(vae, truth, recipe.n_generate, seed + 1000))
        if k == 0:
            gens = {m: observables(vae.sample(recipe.n_generate, seed=seed + 1000, sampling=m))
                    for m in ("prior", "buffer")}
        print(f"seed {seed}: mean W1/std prior {np.mean(list(per_seed[-1]['prior']['w1_over_std'].values())):.3f}"
              f", buffer {np.mean(list(per_seed[-1]['buffer']['w1_over_std'].values())):.3f} "
              f"({time.time() - t0:.0f} s)", flush=True)

    w1 = {m: {o: float(np.mean([r[m]["w1_over_std"][o] for r in per_seed])) for o in OBSERVABLES}
          for m in ("prior", "buffer")}
    spread = {m: {o: float(np.std([r[m]["w1_over_std"][o] for r in per_seed], ddof=1)) if len(per_seed) > 1
                  else float("nan") for o in OBSERVABLES} for m in ("prior", "buffer")}
    truth_mass = np.concatenate([truth["m_lm"], truth["m_lp"]])
    masses = {"truth_rms": float(np.sqrt(np.mean(truth_mass ** 2))),
              "truth_abs_median": float(np.median(np.abs(truth_mass))),
              "truth_electron_fraction": float(truth["is_e"].mean()),
              **{f"{m}_{key}": float(np.mean([r[m][name] for r in per_seed])) for m in ("prior", "buffer")
                 for key, name in (("rms", "lepton_mass_rms"), ("abs_median", "lepton_mass_abs_median"),
                                   ("electron_fraction", "electron_fraction"),
                                   ("other_flavour_energy_mean", "other_flavour_energy_mean"))}}
    rows = [{"observable": o, "W1/std prior": w1["prior"][o], "spread prior": spread["prior"][o],
             "W1/std buffer": w1["buffer"][o], "spread buffer": spread["buffer"][o],
             "buffer better": w1["buffer"][o] < w1["prior"][o]} for o in OBSERVABLES]
    print(report.write_table(pd.DataFrame(rows), run, "bvae", prov,
                             f"W1 / std(truth) on {len(x_test)} test events, {recipe.n_generate} generated, mean and "
                             f"std over {recipe.repeats} seeds (beta {recipe.beta:g}, latent {recipe.latent_dim})"))
    write_figure(truth, gens, run, prov)

    scan = []
    if not args.no_scan:
        points = [(b, recipe.latent_dim) for b in recipe.scan_betas]
        points += [(recipe.beta, d) for d in recipe.scan_latent_dims if (recipe.beta, d) not in points]
        for beta, latent in points:
            vae = train_one(recipe, x_train, pipeline, Run(run / "scan" / f"beta{beta:g}_latent{latent}"),
                            recipe.seed, recipe.scan_steps, beta, latent)
            r = evaluate(vae, truth, recipe.n_generate, recipe.seed + 1000)
            scan.append({"beta": beta, "latent_dim": latent, "steps": recipe.scan_steps,
                         "mean W1/std prior": float(np.mean(list(r["prior"]["w1_over_std"].values()))),
                         "mean W1/std buffer": float(np.mean(list(r["buffer"]["w1_over_std"].values()))),
                         "m_ll W1/std prior": r["prior"]["w1_over_std"]["m_ll"],
                         "m_ll W1/std buffer": r["buffer"]["w1_over_std"]["m_ll"],
                         "lepton mass rms buffer [GeV]": r["buffer"]["lepton_mass_rms"]})
            print(f"scan beta {beta:g} latent {latent}: {scan[-1]} ({time.time() - t0:.0f} s)", flush=True)
        print(report.write_table(pd.DataFrame(scan), run, "scan", prov,
                                 f"beta and latent-size scan, seed {recipe.seed}, {recipe.scan_steps} steps each"))
    out = {"wasserstein_over_std": w1, "spread": spread, "buffer_better_everywhere":
           bool(all(w1["buffer"][o] < w1["prior"][o] for o in OBSERVABLES)), "lepton_mass": masses,
           "lepton_mass_definition": "GeV; signed mass of the generated l- and l+ four-vectors of the event's "
                                     "flavour (truth: m_e or m_mu); other_flavour_energy: mean |E| of the other "
                                     "flavour's block (truth 0)",
           "per_seed": per_seed, "scan": scan, "train_events": len(x_train), "test_events": len(x_test),
           "seconds": time.time() - t0}
    report.write_metrics(run, out, prov)
    return out


if __name__ == "__main__":
    main()
