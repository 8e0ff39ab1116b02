"""The training recipe of Lebese & Ruan (2021) as a frozen dataclass, and our presets.

``PAPER`` gives each value with the sentence of the paper it comes from (section numbers of the source text,
``../shared/seeds/lebese_ruan_2021_wgan_gp_multilepton.txt``) or marks it "ours" where the paper is silent (README,
Ambiguities). ``QUICK`` changes only the schedule and sample size so that it runs in minutes on a CPU; the options
of any run that differ from the paper are computed by ``gan4hep.recipes.deviations(recipe, PAPER)``.
The network architecture (layer widths, activations, latent size) is in ``model.py``.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Every value that defines a Lebese & Ruan run (the run folder's recipe.json)."""

    # sample
    events: int  # Pythia events generated, before the selection
    mpi: bool  # multi-parton interactions in Pythia
    seed: int  # seeds the sample, the split, the weights and the noise
    split: tuple[float, float, float]  # training / validation / test fractions
    tail_treatment: str  # "drop_events" | "clip" | "none": reading of "10% of the tails is cut"
    tail_quantile: float  # the quantile above which a tail starts
    # networks
    generator: str  # "paper": 8 free sigmoid outputs | "kinematic": 6 quantities + exact feature layer
    swish: str  # "per_unit" | "scalar": trainable Swish parameterisation
    # objective and optimizer
    objective: str  # gan4hep.objectives name: "wgan_gp" | "bce" | "wgan_clip"
    gp_weight: float  # lambda of the gradient penalty (wgan_gp)
    clip: float  # weight clip c (wgan_clip)
    lr: float  # Adam learning rate of both networks
    beta1: float
    beta2: float
    batch_size: int
    n_critic: int  # critic updates per generator update
    ema_decay: float  # EMA of the generator weights (0: none)
    # schedule and selection
    steps: int  # generator iterations
    checkpoint_every: int
    eval_every: int  # validation evaluation (checkpoint selection) interval, generator steps
    select_by: str  # "ks" | "auc" | "mean": worst-feature metric on the validation MC, lower is better
    select_events: int  # generated events compared with the validation MC (at least the validation size)
    # model family (issue 20): the paper's GAN, or our normalising flow on the same data, split and selection
    model: str  # "gan": the WGAN-GP above | "flow": rational-quadratic spline coupling flow (gan4hep.flows)
    flow_transforms: int  # coupling steps of the flow (gan4hep.flows.spline_flow ``steps``)
    flow_bins: int  # spline bins per feature
    flow_hidden: int  # ResidualNet width of each coupling's conditioner
    flow_blocks: int  # ResidualNet residual blocks
    flow_tail_bound: float  # spline interval [-B, B] in the flow's (standardised logit) space; linear outside
    flow_space: str  # "features": the flow's density is on the 8 features | "underlying": on the 6 quantities they
    #                  are functions of (gan4hep.physics.DILEPTON_UNDERLYING), mapped exactly to the 8 features by
    #                  gan4hep.layers.DileptonFeatures, events outside the selection's support redrawn


PAPER = Recipe(
    # 5: "The individual sample size of each feature increased from about 1x10^3 to 5x10^5 events"; ~14 % of our
    # Pythia events pass the selection (section 4.2), hence 3.6e6 generated for ~5e5 selected.
    events=3_600_000,
    mpi=True,  # 4.2: "generated using ... MadGraph5 and Pythia8": Pythia's default, MPI on
    seed=1,  # ours
    split=(0.6, 0.2, 0.2),  # ours; 2.3 speaks of "train, validation and test data-sets" without fractions
    tail_treatment="drop_events",  # 4.2: "10% of the tails is cut with re-bucketing to the last bin" (our reading)
    tail_quantile=0.9,  # 4.2: "10% of the tails"
    generator="paper",  # 4.3: "an output layer being the size of the number of MC specific features"
    swish="per_unit",  # 4.3: "a trainable Swish function" (parameterisation ours)
    objective="wgan_gp",  # 4.3: "The WGAN-GP Network architecture"
    gp_weight=10.0,  # 4.3: "The gradient penalty lambda is set to 10"
    clip=0.01,  # 5: "WGAN with different clipping values c in [0.001, 0.1]" (used by wgan_clip only; value ours)
    lr=2e-4,  # 4.3: "Adam optimizer ... with a learning rate of 0.0002"
    beta1=0.5,  # 4.3: "momentum parameters beta_1 = 0.5,
    beta2=0.999,  # beta_3 = 0.999" (sic)
    batch_size=1024,  # 4.3: "mini-batches of 1024 events for both G and C"
    n_critic=1,  # 4.3: "training in a (1-to-1) fashion"
    ema_decay=0.0,  # 4.3: no averaging of the generator weights is mentioned
    steps=1_000_000,  # 4.3: "Training is carried out for an overall of 1x10^6 epochs" (one mini-batch each)
    checkpoint_every=250_000,  # 4.3: "checkpoint savings at every quarter of the total epochs (2.5x10^5)"
    eval_every=250_000,  # 5: "the best epoch performance" among the saved checkpoints
    select_by="ks",  # ours: 5 chooses the "best epoch" by eye on the mean lines
    select_events=20_000,  # ours
    model="gan",  # 4.3: the WGAN-GP
    flow_transforms=6,  # ours (flow presets below; unused by the GAN)
    flow_bins=8,
    flow_hidden=64,
    flow_blocks=2,
    flow_tail_bound=5.0,
    flow_space="features",
)

# Same networks, objective, batch size, preprocessing and noise; CPU-sized: fewer events and steps, the WGAN-GP
# authors' 5:1 schedule with Adam(1e-4, 0.5, 0.9) and an EMA of the generator, which the facts measured on these
# machines show converge in minutes (../shared/notes/lebese-ruan-facts.md).
QUICK = dataclasses.replace(PAPER, events=300_000, mpi=False, lr=1e-4, beta2=0.9, n_critic=5, ema_decay=0.99,
                            steps=3000, checkpoint_every=500, eval_every=100)

PRESETS = {"paper": PAPER, "quick": QUICK}

# Our flow (issue 20, not in the paper), selected with --model flow: the same sample, split, tail cut, checkpoint
# selection on the validation MC and evaluation as the GAN of the same preset; maximum likelihood with Adam
# (Keras defaults for the betas) and a cosine decay of the learning rate over ``steps``; ``batch_size`` events per
# step; the GAN-only fields (objective, n_critic, ...) are unused. The quick flow is sized to train in ~10 minutes
# on 2 CPU cores (README, "Flow"). Both presets put the density on the 6 underlying quantities (flow_space
# "underlying": every event exactly consistent and inside the support); "features" is the first version's flow.
FLOW_QUICK = dataclasses.replace(QUICK, model="flow", lr=1e-3, beta1=0.9, beta2=0.999, ema_decay=0.0,
                                 batch_size=512, steps=2000, checkpoint_every=500, eval_every=500,
                                 flow_transforms=6, flow_bins=8, flow_hidden=64, flow_blocks=2, flow_tail_bound=5.0,
                                 flow_space="underlying")
FLOW_PAPER = dataclasses.replace(PAPER, model="flow", lr=1e-3, beta1=0.9, beta2=0.999, ema_decay=0.0,
                                 batch_size=1024, steps=100_000, checkpoint_every=10_000, eval_every=2_500,
                                 flow_transforms=8, flow_bins=16, flow_hidden=128, flow_blocks=2,
                                 flow_tail_bound=5.0, flow_space="underlying")
FLOW_PRESETS = {"paper": FLOW_PAPER, "quick": FLOW_QUICK}
MODELS = ("gan", "flow")
# the fields only one model family reads (the other ignores them: ``unused_fields``)
GAN_FIELDS = ("generator", "swish", "objective", "gp_weight", "clip", "n_critic", "ema_decay")
FLOW_FIELDS = ("flow_transforms", "flow_bins", "flow_hidden", "flow_blocks", "flow_tail_bound", "flow_space")


def unused_fields(recipe: Recipe) -> tuple[str, ...]:
    """The fields a run of ``recipe.model`` does not read (``gan4hep.recipes.deviations(..., unused=...)``)."""
    return GAN_FIELDS if recipe.model == "flow" else FLOW_FIELDS


def presets(model: str = "gan") -> dict:
    """The presets of a model family: ``PRESETS`` (the GAN) or ``FLOW_PRESETS``.

    Raises:
        ValueError: another model name.
    """
    if model not in MODELS:
        raise ValueError(f"model {model!r}: choose one of {', '.join(MODELS)}")
    return FLOW_PRESETS if model == "flow" else PRESETS


def preset_name(recipe: Recipe) -> str:
    """Name of the preset ``recipe`` is (or was made from by the fewest changes), among the presets of its model
    family: the label of tables."""
    candidates = presets(recipe.model)
    return min(candidates, key=lambda name: sum(getattr(recipe, f.name) != getattr(candidates[name], f.name)
                                                for f in dataclasses.fields(Recipe)))
