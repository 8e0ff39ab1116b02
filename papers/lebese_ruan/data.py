"""The Lebese & Ruan sample: generated with ``data_prep.dilepton`` (or read from a user's table), split into
training / validation / test MC, tail treatment fitted on the training split, min-max scaling to [0, 1].

Section 4.2: "the MC data is then locally pre-processed where 10% of the tails is cut with re-bucketing to the last
bin"; section 4.3: the features are "scale transformed to a range of [0,1]".
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from gan4hep.io import read_table, write_table
from gan4hep.physics import DILEPTON_FEATURES as FEATURES
from gan4hep.preprocessing import MinMax, Pipeline, TailClip
from gan4hep.runs import Run

from papers.lebese_ruan.recipe import PRESETS, Recipe

DATA_DIR = Path("data/lebese_ruan")
SAMPLE = "sample.json"  # in the run folder: the input table (None: generated), split counts, tail cut
TEST, VALIDATION = "test_mc.parquet", "validation_mc.parquet"  # in the run folder: the held-out MC


@dataclasses.dataclass
class Sample:
    """The split sample of one run.

    Attributes:
        train, validation, test: ``(n, 8)`` float64 arrays of the features ``FEATURES`` in physical units (GeV,
            rad), after the tail treatment.
        pipeline: the preprocessing fitted on ``train`` (min-max to [0, 1], after clipping for ``"clip"``).
        tail_cut: fitted state of the event-level tail cut (``"drop_events"``), else None.
        n_selected: events in the table before the split.
    """

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    pipeline: Pipeline
    tail_cut: dict | None
    n_selected: int

    def counts(self) -> dict:
        """Event counts of the split, JSON-ready."""
        return {"n_selected": self.n_selected, "n_train": len(self.train), "n_val": len(self.validation),
                "n_test": len(self.test)}


def sample_path(recipe: Recipe, data_dir: Path = DATA_DIR) -> Path:
    """The cached feature table of the recipe's generated sample (events, seed, MPI), whether or not it exists.

    Samples written before the recipe redesign carry the preset name (``dilepton_quick_e300000_s1_nompi``); such
    a file with the same events, seed and MPI setting is reused.
    """
    tag = f"e{recipe.events}_s{recipe.seed}_{'mpi' if recipe.mpi else 'nompi'}"
    path = Path(data_dir) / f"dilepton_{tag}_features.root"
    if not path.exists():
        for name in PRESETS:
            legacy = Path(data_dir) / f"dilepton_{name}_{tag}_features.root"
            if legacy.exists():
                return legacy
    return path


def read_input(path: Path) -> pd.DataFrame:
    """A user's table with the 8 feature columns (.root, .parquet, .csv, .h5), or a Delphes ROOT file whose
    objects are turned into features with our selection (``data_prep.dilepton.read_delphes``).

    Raises:
        FileNotFoundError: no such file. KeyError: neither the feature columns nor the Delphes branches.
    """
    path = Path(path)
    try:
        return read_table(path, columns=list(FEATURES))
    except KeyError:
        if path.suffix.lower() != ".root":
            raise
        from data_prep.dilepton import read_delphes

        return read_delphes(path)


def load_events(recipe: Recipe, input: Path | None = None, data_dir: Path = DATA_DIR, jobs: int = 2) -> pd.DataFrame:
    """The 8-feature MC table: ``input`` if given, else the recipe's sample, generated with Pythia 8
    (``data_prep.dilepton.make_sample``, ``jobs`` processes) the first time and cached in ``data_dir``."""
    if input is not None:
        return read_input(input)
    features = sample_path(recipe, data_dir)
    if not features.exists():
        from data_prep.dilepton import make_sample

        out = features.with_name(features.name.replace("_features.root", ".root"))
        print(f"generating {recipe.events} dilepton events with Pythia 8 -> {out}", flush=True)
        features = make_sample(out, events=recipe.events, seed=recipe.seed, jobs=jobs, mpi=recipe.mpi)
    return read_table(features, columns=list(FEATURES))


def split(x: np.ndarray, seed: int, fractions=(0.6, 0.2, 0.2)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle the ``(n, d)`` events with ``numpy.random.default_rng(seed).permutation`` and cut them into
    training, validation and test parts of ``int(fraction * n)`` events (the test part takes the rest)."""
    x = x[np.random.default_rng(seed).permutation(len(x))]
    n_train, n_val = int(fractions[0] * len(x)), int(fractions[1] * len(x))
    return x[:n_train], x[n_train:n_train + n_val], x[n_train + n_val:]


def prepare(df: pd.DataFrame, recipe: Recipe) -> Sample:
    """Split, apply the tail treatment fitted on the training split, fit min-max to [0, 1] on it.

    ``"drop_events"`` drops from every split the events with any feature above its training-split
    ``tail_quantile``; ``"clip"`` clips each feature there (a pipeline step); ``"none"`` does neither.

    Raises:
        ValueError: an unknown tail treatment, or fewer training events than one batch.
    """
    if recipe.tail_treatment not in ("drop_events", "clip", "none"):
        raise ValueError(f"tail treatment {recipe.tail_treatment!r}: choose drop_events, clip or none")
    x = df[list(FEATURES)].to_numpy(np.float64)
    train, val, test = split(x, recipe.seed, recipe.split)
    steps, tail_cut = [], None
    if recipe.tail_treatment == "drop_events":
        cut = TailClip(recipe.tail_quantile, mode="drop_events").fit(train, names=list(FEATURES))
        train, val, test = (a[cut.mask(a)] for a in (train, val, test))
        tail_cut = cut.to_dict()
    elif recipe.tail_treatment == "clip":
        steps.append(TailClip(recipe.tail_quantile, mode="clip"))
    steps.append(MinMax(0.0, 1.0))
    pipeline = Pipeline(steps, names=list(FEATURES)).fit(train)
    if len(train) < recipe.batch_size:
        raise ValueError(f"only {len(train)} training events after selection: fewer than one batch of "
                         f"{recipe.batch_size}; generate more events (--events)")
    return Sample(train, val, test, pipeline, tail_cut, len(x))


def run_input(run: Run, given: Path | None) -> Path | None:
    """The input table of a run: ``given`` (resolved) for a new run; for a run that already has ``sample.json``,
    the table it was started with (None: the generated sample), which ``given`` must not contradict.

    Raises:
        ValueError: ``given`` differs from the run's own input (names both).
    """
    path = run / SAMPLE
    if not path.exists():
        return None if given is None else Path(given).resolve()
    used = json.loads(path.read_text())["input"]
    if given is not None and str(Path(given).resolve()) != used:
        raise ValueError(f"{run.path} was trained on {used or 'the generated sample'}, not {given}")
    return None if used is None else Path(used)


def save(run: Run, sample: Sample, table: Path | None) -> None:
    """Write the data step's artefacts into the run: preprocessing.json, sample.json (input table, counts, tail
    cut) and the validation and test MC (physical units) as parquet."""
    run.save_preprocessing(sample.pipeline)
    run.write_json(SAMPLE, {"input": None if table is None else str(table), **sample.counts(),
                            "tail_cut": sample.tail_cut})
    write_table(pd.DataFrame(sample.test, columns=list(FEATURES)), run / TEST)
    write_table(pd.DataFrame(sample.validation, columns=list(FEATURES)), run / VALIDATION)


def load_mc(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The run's held-out ``(test, validation)`` MC as ``(n, 8)`` float64 arrays in physical units.

    Raises:
        FileNotFoundError: the run has not been through ``save`` (names the file).
    """
    return tuple(read_table(run / name)[list(FEATURES)].to_numpy(np.float64) for name in (TEST, VALIDATION))


def load_counts(run: Run) -> dict:
    """sample.json of the run (input, n_selected, n_train, n_val, n_test, tail_cut); empty if absent."""
    path = run / SAMPLE
    return json.loads(path.read_text()) if path.exists() else {}
