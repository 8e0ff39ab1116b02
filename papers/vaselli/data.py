"""The FlashSim sample: our FlashSim-style ttbar jets (``data_prep.flashsim_jets``), split by event into training,
validation and test jets, and the preprocessing of targets and conditioning.

One row per generator jet matched to a reconstructed jet; conditioning = ``CONDITIONING`` (FlashSim's 14, in its
order), targets = ``targets(recipe)`` (our 15, plus ``pu_id`` with pile-up). Two preprocessings (``Recipe.
preprocessing``):

- ``"thesis"`` [FS preprocessing/jets_preprocessing.py]: massRatio saturated to [0, 7] and ptRatio to [0, 3];
  jetId (and puId) + 0.1 N(0, 1); nothing else (no dequantisation of the constituent count, no scaling of targets
  or conditioning, flavours as raw codes). FlashSim's "negative tagger -> -0.1" has nothing to act on: our
  discriminants lie in [0, 1).
- ``"ours"``: the same saturations; integer targets (constituent count, jetId, puId) dequantised with uniform +-0.5
  noise (the later CMS FlashSim's choice); the point masses of the bounded targets (a tag discriminant of exactly 0
  without displaced tracks, energy fractions of exactly 0 or 1) spread just outside [0, 1] by ``SPREAD`` and the
  jet area (a multiple of the ghost area) spread uniformly over its grid step, both undone by ``postprocess``;
  targets standardised; conditioning momenta and masses log(x + 1 GeV), then standardised.

``postprocess`` maps flow output to the values a reconstruction can give (both presets): bounded targets clipped to
[0, 1], the saturations, the area rounded to its grid, jetId / puId to the nearest admissible value (FlashSim's
postprocessing rounds them with rint [FS generation/nbd_func.py]).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from data_prep.flashsim_jets import CONDITIONING, PILEUP_TARGETS, TARGETS
from gan4hep.flows.preprocessing import Clip, Dequantise
from gan4hep.io import read_table, write_table
from gan4hep.preprocessing import Log, Pipeline, Standardise
from gan4hep.runs import Run

from papers.vaselli.recipe import PREPROCESSINGS, Recipe

DATA_DIR = Path("data/vaselli")
SAMPLE = "sample.json"  # in the run folder: input table, split counts, area grid step, column lists
TEST, VALIDATION = "test_jets.parquet", "validation_jets.parquet"  # in the run folder: held-out jets
CONTEXT_PREPROCESSING = "context_preprocessing"

#: targets bounded to [0, 1] (tag discriminants, quark/gluon likelihood, energy fractions)
BOUNDED = ("btag", "ctag", "qgl", "mu_ef", "ch_had_ef", "ne_had_ef", "ch_em_ef", "ne_em_ef")
#: integer-valued targets
INTEGER = ("n_constituents", "jet_id", "pu_id")
#: [FS jets_preprocessing.py] saturations
SATURATIONS = {"mass_ratio": (0.0, 7.0), "pt_ratio": (0.0, 3.0)}
#: admissible values of the flag targets (NanoAOD's jetId 0, 2, 6 [FS docs/results.md]; our puId bits)
ADMISSIBLE = {"jet_id": (0.0, 2.0, 6.0), "pu_id": (0.0, 4.0, 6.0, 7.0)}
#: the constituents' energy fractions: they sum to 1 (data_prep/README.md)
FRACTIONS = ("mu_ef", "ch_had_ef", "ne_had_ef", "ch_em_ef", "ne_em_ef")
#: continuous targets: the ones the acceptance's W1 / std applies to
DISCRETE = ("n_constituents", "jet_id", "pu_id")
#: conditioning columns taken as log(x + 1 GeV) in the "ours" preprocessing
LOG_CONTEXT = ("mu1_pt", "mu2_pt", "gen_mass", "gen_pt")
#: width by which the "ours" preprocessing spreads a point mass at 0 or 1 of a bounded target (outside [0, 1])
SPREAD = 0.02
#: reconstructed-jet columns kept with the held-out jets (evaluation: pT vs mass contours)
AUX_KEPT = ("event", "pt", "eta", "phi", "mass")


def targets(recipe: Recipe) -> list[str]:
    """The target columns of the recipe's sample (``TARGETS``, plus ``pu_id`` with pile-up)."""
    return list(TARGETS) + (list(PILEUP_TARGETS) if recipe.pileup > 0 else [])


def continuous(names) -> list[str]:
    """The continuous targets among ``names`` (not the constituent count, jetId, puId)."""
    return [n for n in names if n not in DISCRETE]


@dataclasses.dataclass
class Sample:
    """The split sample of one run.

    Attributes:
        train, validation, test: DataFrames (conditioning, targets, ``AUX_KEPT``) in physical units.
        pipeline, context_pipeline: the preprocessing of targets and conditioning, fitted on ``train``.
        area_quantum: the grid step of the jet area (the ghost area) measured on ``train``.
        area_grid: the distinct area values of ``train`` (``postprocess`` snaps flow areas onto them).
        targets: the target columns.
        n_events: events per split.
    """

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    pipeline: Pipeline
    context_pipeline: Pipeline
    area_quantum: float
    area_grid: list
    targets: list
    n_events: dict

    def counts(self) -> dict:
        """Jet and event counts of the split, JSON-ready."""
        return {"n_train": len(self.train), "n_val": len(self.validation), "n_test": len(self.test),
                **{f"events_{k}": int(v) for k, v in self.n_events.items()}}


def sample_path(recipe: Recipe, data_dir: Path = DATA_DIR) -> Path:
    """The cached feature table of the recipe's generated sample (events, seed, MPI, pile-up)."""
    tag = f"e{recipe.events}_s{recipe.seed}_{'mpi' if recipe.mpi else 'nompi'}_pu{recipe.pileup:g}"
    return Path(data_dir) / f"flashsim_jets_{tag}_features.root"


def columns(recipe: Recipe) -> list[str]:
    """Columns read from the feature table."""
    return list(CONDITIONING) + targets(recipe) + list(AUX_KEPT)


def load_jets(recipe: Recipe, input: Path | None = None, data_dir: Path = DATA_DIR, jobs: int = 1) -> pd.DataFrame:
    """The jet table: ``input`` (a ``data_prep.flashsim_jets`` feature table) if given, else the recipe's sample,
    generated with ``data_prep.flashsim_jets.make_sample`` (``jobs`` processes) the first time and cached in
    ``data_dir``.

    Raises:
        FileNotFoundError: ``input`` does not exist. KeyError: a column is missing.
    """
    if input is not None:
        return read_table(input, columns=columns(recipe))
    features = sample_path(recipe, data_dir)
    if not features.exists():
        from data_prep.flashsim_jets import make_sample

        out = features.with_name(features.name.replace("_features.root", ".root"))
        print(f"generating {recipe.events} ttbar events with Pythia 8 + our response -> {out}", flush=True)
        features = make_sample(out, events=recipe.events, seed=recipe.seed, jobs=jobs, pileup=recipe.pileup,
                               mpi=recipe.mpi)
    return read_table(features, columns=columns(recipe))


def split(df: pd.DataFrame, recipe: Recipe) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """Split by event (all jets of one event in one part): the events are shuffled with
    ``numpy.random.default_rng(seed)``; the first ``test_fraction`` go to the test set, the next
    ``validation_fraction`` to the validation set, the rest to training (at most ``max_train_jets`` jets, in the
    shuffled order). Returns ``(train, validation, test, events per part)``.

    Raises:
        ValueError: fractions outside (0, 1) or summing to 1 or more.
    """
    fv, ft = recipe.validation_fraction, recipe.test_fraction
    if not (0 < fv < 1 and 0 < ft < 1 and fv + ft < 1):
        raise ValueError(f"validation_fraction {fv} and test_fraction {ft} must be in (0, 1) and sum below 1")
    events = np.unique(df["event"].to_numpy())
    events = events[np.random.default_rng(recipe.seed).permutation(len(events))]
    n_test, n_val = int(round(ft * len(events))), int(round(fv * len(events)))
    part = pd.Series(np.zeros(len(events), int), index=events)
    part.iloc[:n_test], part.iloc[n_test:n_test + n_val] = 2, 1
    order = pd.Series(np.arange(len(events)), index=events)
    df = df.assign(_part=part.loc[df["event"].to_numpy()].to_numpy(),
                   _order=order.loc[df["event"].to_numpy()].to_numpy())
    df = df.sort_values(["_order"], kind="stable")
    train, val, test = (df[df["_part"] == k].drop(columns=["_part", "_order"]).reset_index(drop=True)
                        for k in (0, 1, 2))
    train = train.iloc[:recipe.max_train_jets]
    return train, val, test, {"train": train["event"].nunique(), "validation": n_val, "test": n_test}


def area_quantum(area: np.ndarray) -> float:
    """Grid step of the jet area (area = number of ghosts x ghost area): the smallest gap between distinct values,
    refined as the mean of value / multiple over the distinct values; 0 for fewer than two distinct values."""
    values = np.unique(np.round(np.asarray(area, dtype=np.float64), 9))
    gaps = np.diff(values)
    gaps = gaps[gaps > 1e-7]
    if not gaps.size:
        return 0.0
    values = values[values > 0]
    return float(np.mean(values / np.rint(values / gaps.min())))


def snap_to_grid(x: np.ndarray, quantum: float, grid=None) -> np.ndarray:
    """Round ``x`` to the nearest multiple k x ``quantum`` (k >= 1), taking for each k the value of ``grid`` (the
    training set's own floating-point values) where it has one, so that generated and reconstructed areas are the
    same numbers, not neighbours 1e-16 apart."""
    k = np.maximum(np.rint(np.asarray(x, np.float64) / quantum), 1.0)
    out = k * quantum
    if grid is not None and len(grid):
        grid = np.sort(np.asarray(grid, np.float64))
        gk = np.rint(grid / quantum)
        pos = np.clip(np.searchsorted(gk, k), 0, len(gk) - 1)
        hit = gk[pos] == k
        out[hit] = grid[pos[hit]]
    return out


def spread(x: np.ndarray, names, recipe: Recipe, quantum: float, rng: np.random.Generator) -> np.ndarray:
    """The "ours" spreading of point masses in physical units (identity for "thesis"): bounded targets at <= 0
    move to -U(0, SPREAD), at >= 1 to 1 + U(0, SPREAD); the area gets + U(-quantum/2, quantum/2). ``postprocess``
    undoes both. Returns a new array."""
    x = np.array(x, dtype=np.float64)
    if recipe.preprocessing != "ours":
        return x
    names = list(names)
    for name in BOUNDED:
        if name in names:
            j = names.index(name)
            low, high = x[:, j] <= 0.0, x[:, j] >= 1.0
            x[low, j] = -rng.uniform(0.0, SPREAD, int(low.sum()))
            x[high, j] = 1.0 + rng.uniform(0.0, SPREAD, int(high.sum()))
    if "area" in names and quantum > 0:
        j = names.index("area")
        x[:, j] += rng.uniform(-0.5 * quantum, 0.5 * quantum, len(x))
    return x


def postprocess(x: np.ndarray, names, quantum: float = 0.0, area_grid=None) -> np.ndarray:
    """Flow output (physical units, preprocessing undone) -> values a reconstruction can give: bounded targets
    clipped to [0, 1], the energy fractions divided by their sum (they sum to 1 in the reconstruction), the
    saturations, the area rounded to its grid (``quantum`` > 0; ``snap_to_grid``) and kept positive, the
    constituent count rounded and at least 1, jetId / puId to the nearest admissible value. Returns a new array."""
    x = np.array(x, dtype=np.float64)
    names = list(names)
    for j, name in enumerate(names):
        if name in BOUNDED:
            x[:, j] = np.clip(x[:, j], 0.0, 1.0)
        elif name in SATURATIONS:
            x[:, j] = np.clip(x[:, j], *SATURATIONS[name])
        elif name == "area":
            if quantum > 0:
                x[:, j] = snap_to_grid(x[:, j], quantum, area_grid)
            x[:, j] = np.maximum(x[:, j], 0.0)
        elif name == "n_constituents":
            x[:, j] = np.maximum(np.rint(x[:, j]), 1.0)
        elif name in ADMISSIBLE:
            allowed = np.asarray(ADMISSIBLE[name])
            x[:, j] = allowed[np.argmin(np.abs(x[:, j, None] - allowed[None, :]), axis=1)]
    if all(f in names for f in FRACTIONS):
        idx = [names.index(f) for f in FRACTIONS]
        total = x[:, idx].sum(axis=1, keepdims=True)
        x[:, idx] = np.where(total > 0, x[:, idx] / np.where(total > 0, total, 1.0), x[:, idx])
    return x


def target_pipeline(recipe: Recipe, names) -> Pipeline:
    """The unfitted target preprocessing of ``recipe.preprocessing`` (module docstring).

    Raises:
        ValueError: an unknown preprocessing.
    """
    if recipe.preprocessing not in PREPROCESSINGS:
        raise ValueError(f"unknown preprocessing {recipe.preprocessing!r}; choose one of {PREPROCESSINGS}")
    names = list(names)
    sat = [n for n in SATURATIONS if n in names]
    steps = [Clip(low=[SATURATIONS[n][0] for n in sat], high=[SATURATIONS[n][1] for n in sat], columns=sat)]
    if recipe.preprocessing == "thesis":
        flags = [n for n in ("jet_id", "pu_id") if n in names]
        steps.append(Dequantise("gaussian", 0.1, seed=recipe.seed, columns=flags))
    else:
        steps.append(Dequantise("uniform", 1.0, seed=recipe.seed, columns=[n for n in INTEGER if n in names]))
        steps.append(Standardise())
    return Pipeline(steps, names=names)


def context_pipeline(recipe: Recipe) -> Pipeline:
    """The unfitted conditioning preprocessing: none for "thesis" (an empty pipeline), log(x + 1 GeV) of the
    momenta and masses then standardising for "ours"."""
    if recipe.preprocessing == "thesis":
        return Pipeline([], names=list(CONDITIONING))
    return Pipeline([Log(1.0, columns=list(LOG_CONTEXT)), Standardise()], names=list(CONDITIONING))


def prepare(df: pd.DataFrame, recipe: Recipe) -> Sample:
    """Split by event and fit the preprocessing on the training jets.

    Raises:
        ValueError: bad split fractions or preprocessing; fewer training jets than one batch.
    """
    train, val, test, n_events = split(df, recipe)
    if len(train) < recipe.batch_size:
        raise ValueError(f"only {len(train)} training jets: fewer than one batch of {recipe.batch_size}; generate "
                         "more events (--events)")
    names = targets(recipe)
    quantum = area_quantum(train["area"].to_numpy()) if "area" in names else 0.0
    grid = np.unique(train["area"].to_numpy()).tolist() if "area" in names else []
    rng = np.random.default_rng([recipe.seed, 7])
    pipeline = target_pipeline(recipe, names).fit(spread(train[names].to_numpy(), names, recipe, quantum, rng))
    ctx = context_pipeline(recipe).fit(train[list(CONDITIONING)].to_numpy(np.float64))
    return Sample(train, val, test, pipeline, ctx, quantum, grid, names, n_events)


def model_arrays(frame: pd.DataFrame, sample_or_run, recipe: Recipe, seed_offset: int = 0) -> tuple[np.ndarray,
                                                                                                     np.ndarray]:
    """``(x, context)`` float32 model-space arrays of ``frame``'s jets: targets spread (``"ours"``) and through
    the target pipeline (fresh dequantisation noise), conditioning through the context pipeline.

    Args:
        sample_or_run: a ``Sample`` or ``(pipeline, context_pipeline, area_quantum, targets)``.
    """
    if isinstance(sample_or_run, Sample):
        s = sample_or_run
        pipeline, ctx, quantum, names = s.pipeline, s.context_pipeline, s.area_quantum, s.targets
    else:
        pipeline, ctx, quantum, names = sample_or_run
    rng = np.random.default_rng([recipe.seed, 11, seed_offset])
    x = pipeline.transform(spread(frame[names].to_numpy(), names, recipe, quantum, rng))
    c = ctx.transform(frame[list(CONDITIONING)].to_numpy(np.float64))
    return x.astype(np.float32), c.astype(np.float32)


def save(run: Run, sample: Sample, table: Path | None) -> None:
    """Write the data step's artefacts into the run: preprocessing.json, context_preprocessing.json, sample.json
    (input, counts, area grid step, columns) and the validation and test jets (physical units) as parquet."""
    run.save_preprocessing(sample.pipeline)
    run.save_preprocessing(sample.context_pipeline, CONTEXT_PREPROCESSING)
    run.write_json(SAMPLE, {"input": None if table is None else str(table), **sample.counts(),
                            "area_quantum": sample.area_quantum, "area_grid": sample.area_grid,
                            "targets": sample.targets,
                            "conditioning": list(CONDITIONING)})
    write_table(sample.test, run / TEST)
    write_table(sample.validation, run / VALIDATION)


def load_info(run: Run) -> dict:
    """sample.json of the run; empty if absent."""
    path = run / SAMPLE
    return json.loads(path.read_text()) if path.exists() else {}


def load_held_out(run: Run) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's held-out ``(test, validation)`` jets (physical units).

    Raises:
        FileNotFoundError: the run has not been through ``save`` (names the file).
    """
    return read_table(run / TEST), read_table(run / VALIDATION)
