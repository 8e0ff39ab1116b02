"""The training recipe of Butter, Plehn & Winterhalder as a frozen dataclass: ``PAPER`` (each value citing its
source), ``QUICK`` (the same networks on 2 CPU cores, with named options that are not in the paper) and
``PRESETS``. ``gan4hep.recipes.deviations(recipe, PAPER)`` lists what a run changes from the paper.

Sources: the talk slides "How to GAN LHC Events" (table "Network Parameters"), the authors' public code (EventGAN),
and our choices where neither gives a value (named "ours"; README, "Ambiguities").
"""

from __future__ import annotations

import dataclasses

from gan4hep.kernels import KERNELS
from papers.butter_plehn_winterhalder.model import INITS, PHYSICAL_WIDTHS


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that defines a run (stored as the run folder's recipe.json). Energies and widths in GeV."""

    # -- the sample
    train_events: int                 # training events (the validation part of --select-best is taken from them)
    test_events: int                  # held-out events, used by the evaluation only
    input: str | None                 # feature table (absolute path); None: generate with data_prep.ttbar_partons
    sample_seed: int                  # Pythia seed of the generated sample
    seed: int                         # networks, noise, data split, shuffling
    # -- the schedule
    steps: int                        # generator steps
    steps_per_epoch: int              # steps per Keras epoch (logging)
    eval_every: int                   # steps between peak monitors (and checkpoint selections)
    checkpoint_every: int             # steps between checkpoints
    batch_size: int
    # -- the optimiser: Adam(lr / (1 + decay floor(step / decay_steps)), beta 0.5, 0.9)
    lr: float
    decay: float
    decay_steps: int
    # -- the loss
    reg_weight: float                 # lambda_D of the Roth regulariser
    use_mmd: bool                     # the MMD on the W and top masses (False: the no-MMD baseline)
    mmd_weight: float                 # lambda_G
    kernel: str                       # MMD kernel
    widths: tuple[float, ...]         # kernel widths for m(W1), m(W2), m(t1), m(t2)
    mmd_extra_widths: tuple[float, ...]  # option: further kernel widths added to every candidate
    component_mmd: float              # option: weight of a Gaussian MMD on each of the 24 components (0: off)
    # -- networks and selection
    init: str                         # weight initialisation of every Dense layer
    ema_decay: float | None           # option: EMA of the generator weights, used for generation (None: off)
    select_best: bool                 # option: keep the checkpoint closest to a validation sample
    jit_compile: bool                 # XLA-compile the train step
    # -- model family (issue 20): the paper's GAN, or our normalising flow on the same data, split and selection
    model: str = "gan"                # "gan" | "flow": spline coupling flow on decay coordinates (model.build_flow)
    flow_transforms: int = 8          # flow: coupling steps (gan4hep.flows.spline_flow ``steps``)
    flow_bins: int = 8                # flow: spline bins per coordinate
    flow_hidden: int = 96             # flow: ResidualNet width of each coupling's conditioner
    flow_blocks: int = 2              # flow: ResidualNet residual blocks
    flow_tail_bound: float = 5.0      # flow: spline interval [-B, B] in the standardised space; linear outside


PAPER = Recipe(
    train_events=1_000_000,           # slides' table: "Size of training data 1M"
    test_events=100_000,              # ours: the slides give no held-out sample
    input=None,                       # ours: a Pythia 8 sample (the paper: MadGraph; README ambiguity 4)
    sample_seed=1,                    # ours
    seed=0,                           # ours
    steps=1_000_000,                  # slides' table: "Epochs 1000" x "Iterations per epoch 1000"
    steps_per_epoch=1000,             # slides' table: "Iterations per epoch 1000"
    eval_every=10_000,                # ours: the peak monitor (no effect on the training without select_best)
    checkpoint_every=10_000,          # ours
    batch_size=1024,                  # slides' table: "Batch size 1024"
    lr=1e-3,                          # EventGAN: Adam learning rate 1e-3
    decay=0.1,                        # EventGAN: inverse-time decay 0.1 ...
    decay_steps=1000,                 # EventGAN: ... per 1000 steps, staircase
    reg_weight=1e-3,                  # slides' table: "lambda_D 1e-3"
    use_mmd=True,                     # slides: the peaks need "the additional loss", the MMD
    mmd_weight=1.0,                   # slides' table: "lambda_G 1"
    kernel="breit_wigner",            # slides, EventGAN: Breit-Wigner kernel
    widths=PHYSICAL_WIDTHS,           # the physical widths, W 2.1 and top 1.5 GeV (README ambiguity 1)
    mmd_extra_widths=(),              # not in the paper
    component_mmd=0.0,                # not in the paper
    init="glorot",                    # ours: Keras' default; the paper names none (README ambiguity 6)
    ema_decay=None,                   # not in the paper
    select_best=False,                # not in the paper: the final weights
    jit_compile=True,                 # ours: speed only
)

# Our choice: the same networks, ~5 minutes per network on 2 CPU cores. Options that differ from the paper's recipe
# (measured in the README): batch 256 (more steps per minute), lambda_G = 10 and MMD kernels of 10 and 50 GeV next
# to the physical widths (a gradient while the masses are still far from the poles), the paper's inverse-time decay
# compressed (x 1/(1 + floor(step / 200)) instead of 0.1 per 1000 steps), and the checkpoint chosen on a validation
# part of the training sample.
QUICK = dataclasses.replace(
    PAPER, train_events=100_000, test_events=50_000, steps=1600, steps_per_epoch=50, eval_every=50,
    checkpoint_every=100, batch_size=256, decay=1.0, decay_steps=200, mmd_weight=10.0, mmd_extra_widths=(10.0, 50.0),
    select_best=True)

PRESETS = {"paper": PAPER, "quick": QUICK}

# Our flow (issue 20, not in the paper), selected with --model flow: the same sample, split, validation part and
# checkpoint selection (peak_distance every eval_every steps) as the GAN; a rational-quadratic spline coupling flow
# on 16 decay coordinates (model.FLOW_COLUMNS) with DecayChain + OnShell rebuilding the 24 components. Adam 1e-3
# with a cosine decay to 1 % over the steps (the GAN's lr, decay, loss and network fields are unused). The quick
# flow (8 steps, 8 bins, ResidualNet 96 x 2 blocks, 450,128 weights, 2.1 MB model.keras) is sized to train in ~10
# minutes on 2 busy CPU cores.
FLOW_QUICK = dataclasses.replace(QUICK, model="flow", lr=1e-3, batch_size=512, steps=1500, steps_per_epoch=100,
                                 eval_every=100, checkpoint_every=500, use_mmd=False, mmd_extra_widths=(),
                                 flow_transforms=8, flow_bins=8, flow_hidden=96, flow_blocks=2, flow_tail_bound=5.0)
FLOW_PAPER = dataclasses.replace(PAPER, model="flow", lr=1e-3, steps=100_000, use_mmd=False, select_best=True,
                                 flow_transforms=10, flow_bins=16, flow_hidden=256, flow_blocks=2,
                                 flow_tail_bound=5.0)
FLOW_PRESETS = {"paper": FLOW_PAPER, "quick": FLOW_QUICK}
MODELS = ("gan", "flow")
# the fields only one model family reads (the other ignores them: ``unused_fields``)
GAN_FIELDS = ("decay", "decay_steps", "reg_weight", "use_mmd", "mmd_weight", "kernel", "widths", "mmd_extra_widths",
              "component_mmd", "init", "ema_decay", "jit_compile")
FLOW_FIELDS = ("flow_transforms", "flow_bins", "flow_hidden", "flow_blocks", "flow_tail_bound")


def unused_fields(recipe: Recipe) -> tuple[str, ...]:
    """The fields a run of ``recipe.model`` does not read (``gan4hep.recipes.deviations(..., unused=...)``)."""
    return GAN_FIELDS if recipe.model == "flow" else FLOW_FIELDS


def presets(model: str = "gan") -> dict:
    """The presets of a model family: ``PRESETS`` (the GAN) or ``FLOW_PRESETS``.

    Raises:
        ValueError: an unknown model family.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    return FLOW_PRESETS if model == "flow" else PRESETS


def validate(recipe: Recipe) -> Recipe:
    """Return ``recipe`` if its values are usable.

    Raises:
        ValueError: the first unusable value, named by its field.
    """
    checks = [
        (recipe.train_events >= 1 and recipe.test_events >= 1, "train_events and test_events must be >= 1"),
        (min(recipe.steps, recipe.steps_per_epoch, recipe.eval_every, recipe.checkpoint_every, recipe.batch_size)
         >= 1, "steps, steps_per_epoch, eval_every, checkpoint_every and batch_size must be >= 1"),
        (recipe.decay_steps >= 1, "decay_steps must be >= 1"),
        (recipe.lr > 0 and recipe.decay >= 0, "lr must be > 0 and decay >= 0"),
        (recipe.component_mmd >= 0 and recipe.mmd_weight >= 0 and recipe.reg_weight >= 0,
         "component_mmd, mmd_weight and reg_weight must be >= 0"),
        (recipe.kernel in KERNELS, f"kernel must be one of {', '.join(KERNELS)}, got {recipe.kernel!r}"),
        (len(recipe.widths) == 4 and min(recipe.widths) > 0, f"widths must be 4 positive values, got {recipe.widths}"),
        (all(w > 0 for w in recipe.mmd_extra_widths), "mmd_extra_widths must be positive"),
        (recipe.init in INITS, f"init must be one of {', '.join(INITS)}, got {recipe.init!r}"),
        (recipe.ema_decay is None or 0 < recipe.ema_decay < 1, "ema_decay must be in (0, 1) (or None: off)"),
        (recipe.model in MODELS, f"model must be one of {', '.join(MODELS)}, got {recipe.model!r}"),
        (min(recipe.flow_transforms, recipe.flow_bins, recipe.flow_hidden, recipe.flow_blocks) >= 1
         and recipe.flow_tail_bound > 0, "flow_transforms, flow_bins, flow_hidden, flow_blocks must be >= 1 and "
                                         "flow_tail_bound > 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    return recipe


def label(recipe: Recipe) -> str:
    """The preset ``recipe`` is, e.g. "quick", or the nearest preset with "(modified)" when it differs from every
    one (the name used in table headings)."""
    family = presets(recipe.model)
    for name, preset in family.items():
        if recipe == preset:
            return name
    fields = [f.name for f in dataclasses.fields(Recipe)]
    nearest = min(family, key=lambda name: sum(getattr(recipe, f) != getattr(family[name], f) for f in fields))
    return f"{nearest} (modified)"
