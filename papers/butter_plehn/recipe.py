"""The recipes of the Butter & Plehn review figures we rebuild, as frozen dataclasses, and our presets.

The review (``../shared/seeds/butter_plehn_2020_generative_networks_review.txt``) shows figures of four original
papers and gives few of their numbers. Each value below cites the sentence it comes from ("R Sec. x") or says
"ours" where the review (and what we could read of the originals, ``../shared/notes/butter-plehn-facts.md``) is
silent; README.md, "Ambiguities", lists every "ours". One recipe class per figure; ``Recipe`` bundles them so that
``PAPER`` and ``QUICK = dataclasses.replace(PAPER, ...)`` are single objects. A script stores only its own part
(``to_dict(PAPER.camel)``) in its run folder, and ``gan4hep.recipes.deviations(recipe.camel, PAPER.camel)`` lists
what a run changed.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Camel:
    """GANplification on the 1-d camel back (R Sec. 2, Fig. 1; Butter, Diefenbacher, Kasieczka, Nachman & Plehn,
    arXiv:2008.06545)."""

    # truth: f N(mu1, sigma1) + (1 - f) N(mu2, sigma2), five parameters
    mu1: float
    sigma1: float
    mu2: float
    sigma2: float
    frac1: float
    n_train: tuple[int, ...]  # training sample sizes; the first is the review's
    n_quantiles: int
    repeats: int  # training samples (and GANs) averaged over, per n_train
    n_generate: tuple[int, ...]  # generated sample sizes of the quantile-error curve
    # GAN (all ours: the review gives no network)
    latent_dim: int
    widths: tuple[int, ...]
    objective: str  # gan4hep.objectives name
    roth_weight: float  # gamma of the Roth regulariser (objective "bce_roth")
    lr: float
    beta1: float
    beta2: float
    batch_size: int  # capped at n_train
    steps: int  # generator updates
    ema_decay: float  # 0: none
    seed: int


@dataclasses.dataclass(frozen=True)
class Subtraction:
    """The subtraction GAN (R Sec. 3.2, Eqs. (13)-(15), Fig. 3; Butter, Plehn & Winterhalder, arXiv:1912.08824)."""

    # 1-d toy, Eq. (13): P_B = 1/x + 0.1, P_S = 1/x on [x_min, x_max]
    x_min: float
    x_max: float
    toy_events: int  # events in each of the B and S samples
    toy_bins: int
    # LHC example, Eq. (15): B = pp -> gamma*/Z -> mu mu, S = pp -> gamma* -> mu mu (data_prep.drell_yan)
    lhc: bool  # run the LHC example too
    lhc_events: int  # generated events per sample
    m_min: float  # PhaseSpace:mHatMin [GeV]
    m_max: float  # PhaseSpace:mHatMax [GeV]
    lhc_bins: int
    # GAN ("follows Ref. [5]": BCE with the Roth regulariser, Adam; sizes ours)
    scaling: str  # "minmax": features to [margin, 1 - margin], sigmoid generator output | "standard": linear output
    margin: float  # of "minmax": the sigmoid need not saturate to reach the edges of the sample
    latent_dim: int
    widths: tuple[int, ...]
    roth_weight: float
    lr: float
    beta1: float
    beta2: float
    batch_size: int
    steps: int
    lhc_steps: int
    repeats: int  # independent B and S samples, each with its own GAN: the spread over seeds
    n_generate: int  # GAN events per repeat for the histograms
    seed: int


@dataclasses.dataclass(frozen=True)
class Zll:
    """The Z -> mu mu GAN with the regression terms of Eq. (19) (R Sec. 4.1, Figs. 7-8; Hashemi, Amin, Datta,
    Olivito & Pierini, arXiv:1901.05282)."""

    # sample: data_prep.drell_yan at detector level
    events: int  # generated Pythia events (about 38 % pass the selection without pile-up)
    m_min: float  # PhaseSpace:mHatMin [GeV]
    m_max: float  # PhaseSpace:mHatMax [GeV]
    mpi: bool
    pileup: float  # mean pile-up interactions (0: none; then no n_pv feature and no Fig. 8)
    test_fraction: float  # held out for the comparison
    # GAN
    latent_dim: int
    widths: tuple[int, ...]
    alpha: float  # LeakyReLU slope
    lr: float
    beta1: float
    beta2: float
    batch_size: int
    steps: int
    lambda_m: float  # Eq. (19)
    lambda_sigma: float  # Eq. (19)
    repeats: int  # seeds per variant (with / without the terms)
    n_generate: int
    seed: int


@dataclasses.dataclass(frozen=True)
class Kernels:
    """MMD kernels on the ttbar -> 6 quark GAN of papers/butter_plehn_winterhalder (R Sec. 4.3, Eq. (23), Fig. 15;
    Butter, Plehn & Winterhalder 2019, Ref. [5]). The networks, sample, loss and schedule are that folder's preset
    ``base``; only the MMD kernel and its widths change between runs (the same budget for each)."""

    base: str  # papers.butter_plehn_winterhalder preset: "paper" or "quick"
    runs: tuple[tuple[str, str], ...]  # (kernel, width assignment): "card" or "physical"
    card_widths: tuple[float, ...]  # GeV, for m(W1), m(W2), m(t1), m(t2): EventGAN's params_paper.yaml
    steps: int  # generator steps of every run (0: the base preset's)
    n_generate: int
    seed: int


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Every figure's recipe."""

    camel: Camel
    subtraction: Subtraction
    zll: Zll
    kernels: Kernels


PAPER = Recipe(
    camel=Camel(
        # R Sec. 2: "two Gaussians defined by two means, two widths, and a relative normalization"; values ours
        mu1=-2.0, sigma1=0.7, mu2=1.5, sigma2=1.0, frac1=0.3,
        n_train=(100, 1000),  # R Fig. 1: 100 sample points; 1000 is our extension (issue 16)
        n_quantiles=20,  # R Fig. 1: "shown for 20 quantiles"
        repeats=50,  # ours ("averaged over many seeds")
        n_generate=(10, 30, 100, 300, 1000, 3000, 10_000, 30_000, 100_000, 300_000, 1_000_000),  # R: "up to 10^6"
        # ours, chosen on 3 seeds of 100 points (README): Roth gamma 0.1 / 1 / 10 / 30 gave a GAN quantile MSE of
        # 1.2e-3 / 5.3e-4 / 1.9e-4 / 1.8e-4 after 3000 steps; 5000 steps at gamma 10 gave 3.9e-4 (memorising)
        latent_dim=4, widths=(64, 64, 64), objective="bce_roth", roth_weight=10.0,
        lr=1e-3, beta1=0.5, beta2=0.9, batch_size=100, steps=3000, ema_decay=0.999,
        seed=1,
    ),
    subtraction=Subtraction(
        x_min=1.0, x_max=10.0,  # ours: R Eq. (13) gives no range
        toy_events=100_000, toy_bins=30,  # ours
        lhc=True,
        lhc_events=200_000, m_min=50.0, m_max=130.0, lhc_bins=32,  # ours
        scaling="minmax", margin=0.1,  # ours
        # ours, chosen on one toy repeat (README): (128,)x3, batch 1024, Roth 1e-3 (Ref. [5]'s card) left the toy's
        # B - S 2.4 envelopes off on average after 2500 steps; (64,)x3, batch 256, Roth 1 / 10: 1.8 / 1.3 after
        # 5000 / 10000 steps
        latent_dim=8, widths=(64, 64, 64), roth_weight=10.0,
        lr=1e-3, beta1=0.5, beta2=0.9,  # Ref. [5]'s card: Adam 1e-3 (0.5, 0.9)
        batch_size=256,  # ours (Ref. [5]'s card: 1024)
        steps=40_000, lhc_steps=40_000, repeats=10, n_generate=1_000_000,  # ours
        seed=1,
    ),
    zll=Zll(
        events=1_000_000,  # ours
        m_min=60.0, m_max=120.0,  # ours: the review gives no window
        mpi=True, pileup=20.0,  # R Sec. 4.1: "a pile-up rate of 20 collisions on average"
        test_fraction=0.3,  # ours
        latent_dim=32, widths=(256, 256, 256), alpha=0.2,  # ours; R: "with a LeakyReLU activation"
        lr=2e-4, beta1=0.5, beta2=0.999,  # ours
        batch_size=512,  # ours: the terms use batch statistics (R: "uses an event batch")
        steps=50_000,  # ours
        lambda_m=1e-4, lambda_sigma=1e-4,  # R Sec. 4.1: "lambda_m = lambda_sigma = 10^-4"
        repeats=3, n_generate=200_000,  # ours
        seed=1,
    ),
    kernels=Kernels(
        base="paper",
        # R Fig. 15: Gaussian and Breit-Wigner ("for instance Gaussian or Breit-Wigner kernels"); Cauchy from
        # EventGAN's kernel options. "card": the public card's widths; "physical": the W and top widths
        runs=tuple((k, a) for a in ("card", "physical") for k in ("gaussian", "cauchy", "breit_wigner")),
        card_widths=(1.49, 1.49, 2.05, 2.05),  # EventGAN cards/params_paper.yaml (W pairs 1.49, tops 2.05: swapped)
        steps=0, n_generate=200_000, seed=0,
    ),
)

# CPU-sized: fewer repeats and steps; the networks, objectives and the truth stay.
QUICK = dataclasses.replace(
    PAPER,
    camel=dataclasses.replace(PAPER.camel, repeats=10),
    subtraction=dataclasses.replace(PAPER.subtraction, toy_events=50_000, lhc_events=50_000, steps=10_000,
                                    lhc_steps=10_000, repeats=4, n_generate=200_000),
    # no MPI and no pile-up (pile-up costs ~20 minimum-bias events per event): no n_pv feature, no Fig. 8
    zll=dataclasses.replace(PAPER.zll, events=40_000, mpi=False, pileup=0.0, steps=4000, repeats=1,
                            n_generate=50_000),
    # that folder's quick preset (its networks, 1600 steps); the three kernels with the card's widths and the
    # Breit-Wigner with the physical widths
    kernels=dataclasses.replace(PAPER.kernels, base="quick",
                                runs=(("gaussian", "card"), ("cauchy", "card"), ("breit_wigner", "card"),
                                      ("breit_wigner", "physical")), n_generate=50_000),
)

PRESETS = {"paper": PAPER, "quick": QUICK}


def preset_name(recipe, part: str) -> str:
    """Name of the preset whose ``part`` (``"camel"``, ...) ``recipe`` is, or was made from by the fewest changes:
    the label of every table."""
    return min(PRESETS, key=lambda name: sum(getattr(recipe, f.name) != getattr(getattr(PRESETS[name], part), f.name)
                                             for f in dataclasses.fields(recipe)))


# ------------------------------------------------------------------------------------------- issue 17, parts 2-3
# Recipes of integration.py and bvae.py, kept beside (not inside) ``Recipe`` so that the figures above keep their
# stored recipes; each script passes its own preset table to ``report.start`` / ``report.provenance``.
@dataclasses.dataclass(frozen=True)
class Integration:
    """A flow as importance sampler for known integrands (R Secs. 3.1 and 3.4, Eq. (11), Fig. 6, Table 1; i-flow,
    Gao, Isaacson & Krause arXiv:2001.05486), against plain Monte Carlo and VEGAS (the ``vegas`` package) with the
    same number of integrand calls."""

    # Breit-Wigner of Eq. (11), C / ((s - m^2)^2 + m^2 Gamma^2) with C = m Gamma / pi, s in [sqrt_s_min^2, sqrt_s_max^2]
    bw_mass: float  # GeV
    bw_width: float  # GeV
    bw_sqrt_s_min: float  # GeV
    bw_sqrt_s_max: float  # GeV
    # camel on [0, 1]^n: (a sqrt(pi))^-n [exp(-|x - 1/3|^2 / a^2) + exp(-|x - 2/3|^2 / a^2)] (i-flow's, VEGAS's test)
    camel_dims: tuple[int, ...]
    camel_a: float
    # budget, the same for every method: train_calls (flow training, VEGAS adaptation, plain: part of its sample)
    # + eval_calls (the reported integral, weights and unweighting efficiency)
    batch_size: int  # flow: points per training step (steps = train_calls / batch_size)
    train_calls: int
    eval_calls: int
    vegas_iterations: int  # VEGAS adaptation iterations of train_calls / vegas_iterations calls each
    # flow (gan4hep.flows.integration.box_flow)
    couplings: int
    bins: int
    hidden_features: int
    num_layers: int
    loss: str  # "kl" | "variance"
    lr: float
    repeats: int  # seeds seed, seed + 1, ...
    seed: int


@dataclasses.dataclass(frozen=True)
class BVAE:
    """The B-VAE on e+ e- -> Z/gamma* -> l+ l- (R Secs. 2, 4.1, Eq. (5), Fig. 9; Otten et al., Ref. [14])."""

    # sample: data_prep.ee_zpole (Pythia 8, sqrt(s) = m_Z, l = e or mu, no detector)
    events: int
    sqrt_s: float  # GeV
    test_fraction: float
    # VAE (all sizes ours; R: "MSE and KL-divergence", small beta, "density information buffer")
    latent_dim: int
    beta: float
    widths: tuple[int, ...]
    lr: float
    batch_size: int
    steps: int
    buffer_smearing: float  # width of the Gaussian smearing of the buffered latent means, in units of their std
    scan_betas: tuple[float, ...]  # the small scan (each at latent_dim)
    scan_latent_dims: tuple[int, ...]  # (each at beta)
    scan_steps: int
    n_generate: int
    repeats: int
    seed: int


INTEGRATION_PAPER = Integration(
    bw_mass=91.1876, bw_width=2.4952,  # PDG m_Z, Gamma_Z (R Eq. (11) gives the form only)
    bw_sqrt_s_min=10.0, bw_sqrt_s_max=200.0,  # ours
    camel_dims=(2, 4, 8), camel_a=0.1,  # issue 17; a = 0.1 as i-flow's camel
    batch_size=5000, train_calls=5_000_000, eval_calls=1_000_000, vegas_iterations=20,  # ours
    # ours; the KL loss: on 500 quick steps it gave std(w)/<w> 0.36 / 0.37 (Breit-Wigner, lr 1e-2 / camel 4d,
    # lr 3e-3) against 0.86 / 0.94 with the variance loss (seed 1)
    couplings=6, bins=32, hidden_features=128, num_layers=2, loss="kl", lr=1e-3,
    repeats=3, seed=1,
)
INTEGRATION_QUICK = dataclasses.replace(INTEGRATION_PAPER, batch_size=1000, train_calls=500_000, eval_calls=100_000,
                                        vegas_iterations=10, couplings=4, bins=16, hidden_features=32, lr=5e-3)
INTEGRATION_PRESETS = {"paper": INTEGRATION_PAPER, "quick": INTEGRATION_QUICK}

BVAE_PAPER = BVAE(
    events=200_000, sqrt_s=91.1876, test_fraction=0.3,  # ours
    latent_dim=8, beta=1e-3, widths=(128, 128, 128), lr=1e-3, batch_size=256, steps=50_000,  # ours
    buffer_smearing=0.1,  # ours
    scan_betas=(1e-4, 1e-3, 1e-2, 1e-1, 1.0), scan_latent_dims=(2, 4, 8, 16), scan_steps=20_000,  # ours
    n_generate=100_000, repeats=3, seed=1,
)
BVAE_QUICK = dataclasses.replace(BVAE_PAPER, events=30_000, widths=(64, 64, 64), steps=4000,
                                 scan_betas=(1e-3, 1e-1, 1.0), scan_latent_dims=(2, 8), scan_steps=2000,
                                 n_generate=20_000)
BVAE_PRESETS = {"paper": BVAE_PAPER, "quick": BVAE_QUICK}


# ---------------------------------------------------------------------------------------------- issue 17, part 1
@dataclasses.dataclass(frozen=True)
class Unfolding:
    """cINN, eINN and FCGAN unfolding of pp -> ZW -> (l+ l-)(q q') with calibration curves (R Secs. 2, 5.2-5.3,
    Eqs. (9), (10), Figs. 19-20; Bellagente et al., arXiv:2006.06685). Network sizes and budgets: ours (the
    review and the readable part of the original give none)."""

    # sample: data_prep.zw_pairs (Pythia 8 + our response, 2-4 jets), shared by all training seeds
    events: int  # generated (about 20 % pass the selection)
    sample_seed: int
    test_fraction: float
    val_fraction: float  # validation pairs: the cINN's checkpoint is the one of least validation NLL
    # cINN (gan4hep.flows.cinn): Eq. (9) blocks, soft clamp, Eq. (10) maximum likelihood
    cinn_blocks: int
    cinn_hidden: int
    cinn_layers: int
    cinn_clamp: float
    cinn_lr: float
    # eINN: an INN on (parton, noise) <-> (detector, noise), MSE + MMD both ways (unfolding.NoiseExtendedINN)
    einn_dim: int  # width of both sides (parton 10 + noise, detector 25 + noise)
    einn_blocks: int
    einn_hidden: int
    einn_lr: float
    einn_mmd_widths: tuple[float, ...]  # Gaussian kernel widths (standardised units)
    # FCGAN: generator(noise, detector) -> parton, critic(parton, detector) (gan4hep.models.GAN, BCE + Roth)
    gan_latent: int
    gan_widths: tuple[int, ...]
    gan_lr: float
    gan_roth_weight: float
    # training, the same for the three networks
    batch_size: int
    steps: int
    # evaluation (R Fig. 19: 1500 pairs x 60 unfoldings; one event x 3200)
    n_calib: int
    n_unfold: int
    n_posterior: int
    seed: int


UNFOLDING_PAPER = Unfolding(
    events=500_000, sample_seed=1, test_fraction=0.2, val_fraction=0.1,  # ours
    cinn_blocks=12, cinn_hidden=256, cinn_layers=3, cinn_clamp=2.0, cinn_lr=5e-4,  # ours; clamp 2 = FrEIA default
    einn_dim=32, einn_blocks=12, einn_hidden=256, einn_lr=5e-4, einn_mmd_widths=(0.1, 0.5, 1.0, 2.0),  # ours
    gan_latent=12, gan_widths=(256, 256, 256), gan_lr=2e-4, gan_roth_weight=1.0,  # ours
    batch_size=512, steps=50_000,  # ours
    n_calib=1500, n_unfold=60, n_posterior=3200,  # R Fig. 19
    seed=1,
)
UNFOLDING_QUICK = dataclasses.replace(UNFOLDING_PAPER, events=60_000, cinn_blocks=8, cinn_hidden=64, cinn_layers=2,
                                      einn_blocks=8, einn_hidden=64, gan_widths=(128, 128, 128), batch_size=256,
                                      steps=4000, cinn_lr=1e-3, einn_lr=1e-3)
UNFOLDING_PRESETS = {"paper": UNFOLDING_PAPER, "quick": UNFOLDING_QUICK}
