"""The recipe of Lin, Bhimji & Nachman (2019, arXiv:1903.02556): sample size, templates, GANs, evaluation.

``PAPER`` is the paper's recipe, each value citing its sentence (values the paper does not give are ours and say
so; the README lists them under "Ambiguities"); ``QUICK`` is a ``dataclasses.replace`` of it that runs in ~20 min on
two CPU cores. ``gan4hep.recipes.deviations(QUICK, PAPER)`` lists what the quick preset changes.
"""

from __future__ import annotations

import dataclasses

from gan4hep.errors import InputError

__all__ = ["Recipe", "PAPER", "QUICK", "PRESETS", "FLOW_PAPER", "FLOW_QUICK", "FLOW_PRESETS", "MODELS", "presets",
           "VARIANTS", "NOISES", "TARGETS"]

MODELS = ("gan", "flow")
VARIANTS = ("vanilla", "wgan")
NOISES = ("skew", "noskew")
TARGETS = ("mass", "m_over_pt")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that decides what a run computes (stored in the run folder's recipe.json).

    Attributes:
        preset: the preset's name, printed beside every table.
        events: Pythia events to generate when no ``--input`` table is given.
        seed: seed of the sample, the control split, the dressing and (through ``train.initialisation_seed``)
            the networks.
        template_n_eta, template_eta_max, template_n_pt, template_mass_bin: the 60 baseline mass templates
            (|eta| bins in [0, eta_max], log10 pT bins, mass bin width in GeV).
        variants: GAN variants ("vanilla", "wgan"); empty: templates only.
        noises: generator noise ("skew": skew-normal alpha 5, "noskew": alpha 0).
        target: what the generator emits, "m_over_pt" (m / pT, standardised) or "mass" (standardised jet mass).
        hidden, dropout, activation: generator and discriminator hidden layers, generator dropout, activation.
        n_init: random initialisations per variant and noise.
        epochs: passes over the training half (each ``n_train // batch_size`` steps).
        patience: early stopping after this many epochs without improvement on the early-stopping half (None:
            train all epochs and keep the best).
        batch_size: jets per step.
        lr_vanilla, betas_vanilla: Adam of the vanilla GAN (both networks).
        lr_wgan, betas_wgan, n_critic_wgan: Adam of the circle WGAN, critic steps per generator step.
        dress: generated (or template) masses per real jet in the evaluation.
        mass_bins: mass bins of equal real statistics per kinematic region in the separation power.
        init_threshold: initialisations whose untrained separation power (validation region) is at or above this
            are left out of the averages.
        min_jets: regions with fewer jets are not evaluated.
        model: "gan" (the paper's conditional GANs, ``variants`` x ``noises``) or "flow" (ours, issue 20: a
            conditional rational-quadratic spline flow for the same target given the same context; ``variants`` and
            ``noises`` are then unused).
        flow_transforms, flow_bins, flow_hidden, flow_blocks, flow_tail_bound: the flow (``model.build_flow``):
            spline steps, bins per spline, width and residual blocks of each step's conditioner (a ResidualNet of
            the context), spline interval [-B, B] in the standardised target (linear tails outside).
        lr_flow: Adam learning rate of the flow (cosine decay to 1 % over ``epochs``).

    Raises:
        gan4hep.errors.InputError (a ValueError): an unknown variant, noise, target or model, or a count below 1.
    """

    preset: str = "paper"
    # ---- sample (section 3.2) ----------------------------------------------------------------------------------
    # ours: the paper states "1.1 million jets in the control region" (section 3.3); our particle-level sample has
    # ~0.11 control jets per generated event, hence ~10 M events (batch work; generate with data_prep --n-jobs)
    events: int = 10_000_000
    seed: int = 1  # ours
    # ---- templates (section 3.2) -------------------------------------------------------------------------------
    # "jets in the control region divided into 4 |eta| bins defined uniformly between 0 and 2, and 15 pT bins
    # defined uniformly in log10(pT). This results in 60 mass histograms in total" (section 3.2)
    template_n_eta: int = 4
    template_eta_max: float = 2.0
    template_n_pt: int = 15
    template_mass_bin: float = 5.0  # GeV; ours (the paper gives no mass binning)
    # ---- GANs (sections 2.1, 2.2) ------------------------------------------------------------------------------
    # vanilla GAN (section 2.1) and "Modified WGAN" with weights on the unit circle (section 2.2, eq. 2.2)
    variants: tuple[str, ...] = ("vanilla", "wgan")
    # "The best value of the skew parameter was identified to be alpha = 5 (labeled skew in the results plots). This
    # will be compared to the ... (alpha = 0)" (section 2.1)
    noises: tuple[str, ...] = ("skew", "noskew")
    target: str = "m_over_pt"  # ours; the literal "outputs a jet mass" is target="mass" (slower here, README)
    # "three hidden layers ... The first layer has 160 neurons, the second has 80 neurons, and the last hidden layer
    # has 40 neurons" (section 2.1)
    hidden: tuple[int, ...] = (160, 80, 40)
    # "the generator network is made more robust by adding 50% dropout" (section 2.1)
    dropout: float = 0.5
    activation: str = "relu"  # ours; the paper names none
    # "the average value over ten random initializations are used" (section 3.3)
    n_init: int = 10
    # "Network weights were chosen using the Adam optimizer with early stopping" (section 2.1): epochs and patience
    # are ours
    epochs: int = 200
    patience: int | None = 40
    batch_size: int = 128  # ours
    # Adam (section 2.1); rates, betas and critic steps are ours
    lr_vanilla: float = 1e-3
    betas_vanilla: tuple[float, float] = (0.5, 0.999)
    lr_wgan: float = 1e-4
    betas_wgan: tuple[float, float] = (0.5, 0.9)
    n_critic_wgan: int = 5
    # ---- evaluation (section 3.3) ------------------------------------------------------------------------------
    dress: int = 10  # ours: masses drawn per real jet (template and GAN alike)
    # eq. 3.1 is binned; "not sensitive to increasing bin number beyond 8" (section 3.3, footnote 6): 20 is ours
    mass_bins: int = 20
    # "only those GANs with an initialized value below 0.6 are considered for Fig. 4" (section 3.3)
    init_threshold: float = 0.6
    min_jets: int = 100  # ours: smaller regions are not evaluated
    # ---- our conditional flow (issue 20; not in the paper), selected with --model flow ------------------------
    model: str = "gan"
    flow_transforms: int = 4
    flow_bins: int = 16
    flow_hidden: int = 64
    flow_blocks: int = 2
    flow_tail_bound: float = 5.0
    lr_flow: float = 1e-3

    def __post_init__(self):
        for name, values, allowed in (("variants", self.variants, VARIANTS), ("noises", self.noises, NOISES)):
            bad = [v for v in values if v not in allowed]
            if bad or len(set(values)) != len(values):
                raise InputError(f"{name} {list(values)}: choose distinct values among {', '.join(allowed)}")
        if self.model not in MODELS:
            raise InputError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        if self.target not in TARGETS:
            raise InputError(f"unknown target {self.target!r}; choose one of {', '.join(TARGETS)}")
        for name in ("events", "n_init", "epochs", "batch_size", "dress", "mass_bins", "n_critic_wgan",
                     "flow_transforms", "flow_bins", "flow_hidden", "flow_blocks"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.template_mass_bin > 0:
            raise InputError(f"template_mass_bin must be > 0 GeV, got {self.template_mass_bin}")
        if self.patience is not None and self.patience < 1:
            raise InputError(f"patience must be >= 1 or None, got {self.patience}")


PAPER = Recipe()

# a few minutes of Pythia on 2 cores (~15.7 k control / ~500 validation jets) and 2 x 30 epochs per GAN variant
QUICK = dataclasses.replace(PAPER, preset="quick", events=150_000, n_init=2, epochs=30, patience=None)

PRESETS = {"paper": PAPER, "quick": QUICK}

# Our flow (issue 20, not in the paper), selected with --model flow: the same sample, control split, target and
# context preprocessing, per-epoch selection on the early-stopping half and evaluation as the GANs of the same
# preset; maximum likelihood, Adam(lr_flow) with a cosine decay; ``n_init`` flows per run, seeded like the GANs.
# The GAN-only fields (variants, noises, hidden, dropout, lr_vanilla, ...) are unused.
FLOW_QUICK = dataclasses.replace(QUICK, model="flow", variants=(), noises=())
FLOW_PAPER = dataclasses.replace(PAPER, model="flow", variants=(), noises=(), flow_transforms=6, flow_hidden=128)
FLOW_PRESETS = {"paper": FLOW_PAPER, "quick": FLOW_QUICK}


def presets(model: str = "gan") -> dict:
    """The presets of a model family: ``PRESETS`` (the GANs) or ``FLOW_PRESETS``.

    Raises:
        gan4hep.errors.InputError: another model name.
    """
    if model not in MODELS:
        raise InputError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    return FLOW_PRESETS if model == "flow" else PRESETS
