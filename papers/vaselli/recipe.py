"""The training recipe of FlashSim's jet flow (Vaselli 2022) as a frozen dataclass, and our presets.

Sources, cited per value: [A] the thesis extended abstract (``../shared/seeds/vaselli_2022_flashsim_thesis_abstract
.txt``); [FS] the public code, github francesco-vaselli/FlashSim (``trainings/jets_trainings.py``,
``preprocessing/jets_preprocessing.py``, ``docs/``), as summarised in ``../shared/notes/vaselli-facts.md``. "ours"
marks a value neither gives (README, Ambiguities). The flow's layout is in ``model.py``; ``QUICK`` is a CPU-sized
``dataclasses.replace`` of ``PAPER`` and ``gan4hep.recipes.deviations(recipe, PAPER)`` lists what it changes.
"""

from __future__ import annotations

import dataclasses

#: flow steps per reading of the source (model.py): the public code's create_NDE_model(17, 14, 17) [FS], or the
#: abstract's "neural spline normalizing flow composed of 15 transformations layers" [A].
READINGS = {"public_code": 17, "abstract": 15}
#: the preprocessings of data.py: FlashSim's jets_preprocessing.py, or ours
PREPROCESSINGS = ("thesis", "ours")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Every value that defines a FlashSim run (the run folder's recipe.json)."""

    # sample (data_prep.flashsim_jets; one row per generator jet matched to a reconstructed jet)
    events: int  # Pythia ttbar events generated
    pileup: float  # mean number of overlaid minimum-bias events (0: none)
    mpi: bool  # multiparton interactions in the hard events
    seed: int  # seeds the sample, the split, the weights, the dequantisation noise and the flow's draws
    validation_fraction: float  # fraction of the events whose jets form the validation set (checkpoint selection)
    test_fraction: float  # fraction of the events whose jets form the test set (every number of evaluate.py)
    max_train_jets: int  # training jets kept at most (the first ones of the shuffled training events)
    # preprocessing
    preprocessing: str  # "thesis": FlashSim's jets_preprocessing.py | "ours": + dequantisation, logs, standardising
    # flow (model.py)
    reading: str  # "public_code": 17 flow steps (create_NDE_model(17, 14, 17)) | "abstract": 15 steps
    hidden_features: int  # ResidualNet width
    num_blocks: int  # ResidualNet residual blocks
    bins: int  # rational-quadratic spline bins
    tail_bound: float  # spline box [-B, B], linear tails outside
    batch_norm: bool  # batch normalisation in the residual blocks
    dropout: float
    activation: str
    # optimisation
    lr: float  # Adam learning rate (start of the cosine annealing)
    epochs: int  # passes over the training jets; the cosine annealing runs over exactly these
    batch_size: int
    jit_compile: bool  # XLA-compile the train step (ours: speed only; benchmarks/README.md)
    # evaluation
    oversample: int  # flow jets per generator jet in the oversampling check (each weighted 1 / oversample)
    speed_events: int  # full-chain (Pythia + response) events timed against the flow in evaluate.py


PAPER = Recipe(
    # [A] "a NANOAOD sample of 5e6 events"; [FS] jets_trainings.py MyDataset(..., limit=5000000). Our chain gives
    # ~5.8 matched jets per ttbar event (data_prep/README.md), so 1e6 events for >= 5e6 training jets.
    events=1_000_000,
    # [FS] the CMS RunIIAutumn18 sample has pile-up; ours is 0 by default (README, Ambiguities: our pile-up adds
    # the puId target, and the abstract's 15 variables are our 15 no-pile-up targets).
    pileup=0.0,
    mpi=True,  # [FS] full CMS generation (MPI on); data_prep's default
    seed=1,  # ours
    # [FS] validation ("test_loader") = first 4e5 rows of another file; docs: results on 1e5 unseen jets. Ours:
    # event fractions giving ~4e5 validation and ~1.2e5 test jets.
    validation_fraction=0.07,
    test_fraction=0.02,
    max_train_jets=5_000_000,  # [FS] limit=5000000
    preprocessing="thesis",  # [FS] preprocessing/jets_preprocessing.py: saturations + jetId / puId 0.1 N(0, 1)
    reading="public_code",  # [FS] create_NDE_model(17, 14, 17, param_dict): 17 steps
    hidden_features=298,  # [FS] param_dict "hidden_dim": 298
    num_blocks=10,  # [FS] "num_transform_blocks": 10
    bins=128,  # [FS] "num_bins": 128
    tail_bound=1.0,  # [FS] create_base_transform default tail_bound=1.0, never overridden
    batch_norm=True,  # [FS] "batch_norm": True
    dropout=0.0,  # [FS] dropout_probability default 0.0
    activation="relu",  # [FS] "activation": "relu"
    lr=1e-5,  # [FS] lr = 1e-5
    epochs=600,  # [FS] total_epochs = 600, CosineAnnealingLR(T_max=total_epochs)
    batch_size=2048,  # [FS] batch_size = 2048
    # ours, speed only (not in FlashSim, which trains in PyTorch): the train step under XLA is 2.4-3.3x faster on
    # 2 CPU cores (benchmarks/README.md, "Training"); the same model and loss, other float rounding
    jit_compile=True,
    oversample=25,  # [FS] docs/results.md: x25 oversampling in the VBF benchmark
    speed_events=2000,  # ours
)

# CPU-sized (2 cores; 8.8 min of training on two idle cores with the train step under XLA, 41-52 min without it on
# the shared machine at load 5-10; README, Results): ~1e5 jets, a smaller conditioner and fewer bins, the learning rate
# FlashSim's docs say also converges (~1e-3, "in fewer epochs"), batch 512 (on 2 cores as many jets per second as
# 2048, four times the updates), our preprocessing (standardised inputs; the tail bound widened to match), a few
# minutes of timing and oversampling checks.
QUICK = dataclasses.replace(
    PAPER, events=18_000, validation_fraction=0.1, test_fraction=0.2, preprocessing="ours", hidden_features=64,
    num_blocks=2, bins=16, tail_bound=3.5, lr=1e-3, epochs=40, batch_size=512, oversample=10, speed_events=300)

PRESETS = {"paper": PAPER, "quick": QUICK}


def preset_name(recipe: Recipe) -> str:
    """Name of the preset ``recipe`` is (or was made from by the fewest changes): the label of tables."""
    return min(PRESETS, key=lambda name: sum(getattr(recipe, f.name) != getattr(PRESETS[name], f.name)
                                             for f in dataclasses.fields(Recipe)))
