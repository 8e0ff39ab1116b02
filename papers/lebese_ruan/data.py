"""The Lebese & Ruan sample: generated with ``data_prep.dilepton`` (or read from a user's table), split into
training / validation / test MC, tail treatment fitted on the training split, min-max scaling to [0, 1] (the GAN)
or the bounded logit map of the selection's support (the flow, ``--model flow``); fresh reference MC for the
held-out check (``fresh_events``, ``reference_events``).

Section 4.2: "the MC data is then locally pre-processed where 10% of the tails is cut with re-bucketing to the last
bin"; section 4.3: the features are "scale transformed to a range of [0,1]".
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from gan4hep.errors import InputError
from gan4hep.io import read_table, write_table
from gan4hep.physics import DILEPTON_FEATURES as FEATURES
from gan4hep.physics import DILEPTON_UNDERLYING, dilepton_underlying
from gan4hep.preprocessing import MinMax, Pipeline, Standardise, TailClip
from gan4hep.preprocessing import from_dict as transform_from_dict
from gan4hep.runs import Run

from papers.lebese_ruan.recipe import PRESETS, Recipe

DATA_DIR = Path("data/lebese_ruan")
SAMPLE = "sample.json"  # in the run folder: the input table (None: generated), split counts, tail cut
TEST, VALIDATION = "test_mc.parquet", "validation_mc.parquet"  # in the run folder: the held-out MC

# Lower edges of the selection's support [GeV, rad]: both leptons pass pT > 25 GeV (data_prep.dilepton.Selection:
# el_pt_min = mu_pt_min = 25; Lebese & Ruan sec. 4.2), every other feature is >= 0 by definition. The upper edges
# are the event-level tail cut (each feature <= its training-split 90 % quantile), fitted per run.
LOWER_EDGES = {"pt_l0": 25.0, "pt_l1": 25.0, "pt_ll": 0.0, "m_ll": 0.0, "met": 0.0, "mt": 0.0, "dphi_ll": 0.0,
               "dr_ll": 0.0}
# The flow's training values are kept this fraction of the support's width inside its edges before the logit (the
# tail cut keeps values equal to the threshold, where the logit is infinite); moves at most a few events by
# ~1e-3 GeV.
EDGE_MARGIN = 1e-5


@dataclasses.dataclass
class Sample:
    """The split sample of one run.

    Attributes:
        train, validation, test: ``(n, 8)`` float64 arrays of the features ``FEATURES`` in physical units (GeV,
            rad), after the tail treatment.
        pipeline: the preprocessing fitted on ``train``: for the GAN min-max to [0, 1] (after clipping for
            ``"clip"``); for the flow ``flow_pipeline`` (logit of the support, standardised) of the 8 features, or
            of the 6 underlying quantities (``underlying_pipeline``) for ``flow_space="underlying"``.
        tail_cut: fitted state of the event-level tail cut (``"drop_events"``), else None.
        n_selected: events in the table before the split.
        support: ``(low, high)`` of the selection's support (``support``) with the event-level cut, else None.
        underlying: the model's space is ``gan4hep.physics.DILEPTON_UNDERLYING``, not the features.
    """

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    pipeline: Pipeline
    tail_cut: dict | None
    n_selected: int
    support: tuple[np.ndarray, np.ndarray] | None = None
    underlying: bool = False

    def model_space(self, x: np.ndarray) -> np.ndarray:
        """``(n, 8)`` features in physical units -> the model's training space (float32)."""
        return self.pipeline.transform(dilepton_underlying(x) if self.underlying else x).astype(np.float32)

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


def support(train: np.ndarray, threshold) -> tuple[np.ndarray, np.ndarray]:
    """The selection's support as a box: ``(low, high)``, 8 values each in physical units.

    ``low`` is ``LOWER_EDGES`` (lowered below the training minimum where a user's table goes below them); ``high``
    is the tail cut's ``threshold``.

    Args:
        train: ``(n, 8)`` training events after the tail cut.
        threshold: the fitted ``TailClip.threshold_`` (8 values).
    """
    high = np.asarray(threshold, dtype=np.float64)
    low = np.array([LOWER_EDGES[f] for f in FEATURES])
    below = train.min(axis=0) <= low
    low[below] = train.min(axis=0)[below] - EDGE_MARGIN * (high - train.min(axis=0))[below]
    return low, high


def flow_pipeline(low: np.ndarray, high: np.ndarray) -> Pipeline:
    """The flow's preprocessing of the 8 features (unfitted): ``Clip`` to ``EDGE_MARGIN`` inside the support box,
    ``Logit`` of the box (min-max to (0, 1), then logit; Dinh et al., Real NVP, sec. 4.1), ``Standardise``.

    The inverse maps any real number into the box, so every generated event respects the tail cut (the hard edge)
    and the lower edges; ``Clip`` only moves training values that sit on an edge (its inverse is the identity).
    """
    from gan4hep.flows.preprocessing import Clip, Logit

    margin = EDGE_MARGIN * (high - low)
    return Pipeline([Clip(low + margin, high - margin), Logit(low, high), Standardise()], names=list(FEATURES))


def underlying_pipeline(low: np.ndarray, high: np.ndarray) -> Pipeline:
    """The preprocessing of the 6 underlying quantities (``gan4hep.physics.DILEPTON_UNDERLYING``, unfitted) for a
    flow on them: ``flow_pipeline``'s clip, logit of a box and standardisation, the box derived from the 8-feature
    support ``(low, high)``: pT(l0) and MET in their feature ranges, the pT ratio in [pT(l1) low / pT(l0) high, 1],
    |Delta eta| in [0, Delta R high], Delta phi in [0, min(pi, Delta phi high)], the MET azimuth in [0, pi]. Every
    event inside the 8-feature support has its 6 quantities inside this box; the converse does not hold (the
    sampler redraws those events: ``GenerativeModel.support``).
    """
    from gan4hep.flows.preprocessing import Clip, Logit

    f = {name: i for i, name in enumerate(FEATURES)}
    box_low = np.array([low[f["pt_l0"]], low[f["pt_l1"]] / high[f["pt_l0"]], 0.0, 0.0, low[f["met"]], 0.0])
    box_high = np.array([high[f["pt_l0"]], 1.0, high[f["dr_ll"]], min(np.pi, high[f["dphi_ll"]]), high[f["met"]],
                         np.pi])
    margin = EDGE_MARGIN * (box_high - box_low)
    return Pipeline([Clip(box_low + margin, box_high - margin), Logit(box_low, box_high), Standardise()],
                    names=list(DILEPTON_UNDERLYING))


def outside_support(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """``(n,)`` True for the events of ``(n, 8)`` ``x`` with any feature outside ``[low, high]``."""
    return ~np.all((x >= low) & (x <= high), axis=1)


def prepare(df: pd.DataFrame, recipe: Recipe) -> Sample:
    """Split, apply the tail treatment fitted on the training split, fit the model's preprocessing on it.

    ``"drop_events"`` drops from every split the events with any feature above its training-split
    ``tail_quantile``; ``"clip"`` clips each feature there (a pipeline step); ``"none"`` does neither. The GAN's
    preprocessing is min-max to [0, 1]; the flow's is ``flow_pipeline`` on the ``support`` (it needs
    ``"drop_events"``: the cut is its upper edge).

    Raises:
        ValueError: an unknown tail treatment, a flow without the event-level tail cut, or fewer training events
            than one batch.
    """
    if recipe.tail_treatment not in ("drop_events", "clip", "none"):
        raise ValueError(f"tail treatment {recipe.tail_treatment!r}: choose drop_events, clip or none")
    if recipe.model == "flow" and recipe.tail_treatment != "drop_events":
        raise ValueError(f"--model flow needs --tail-treatment drop_events (the tail cut is the upper edge of its "
                         f"support), not {recipe.tail_treatment!r}")
    x = df[list(FEATURES)].to_numpy(np.float64)
    train, val, test = split(x, recipe.seed, recipe.split)
    steps, tail_cut = [], None
    if recipe.tail_treatment == "drop_events":
        cut = TailClip(recipe.tail_quantile, mode="drop_events").fit(train, names=list(FEATURES))
        train, val, test = (a[cut.mask(a)] for a in (train, val, test))
        tail_cut = cut.to_dict()
    elif recipe.tail_treatment == "clip":
        steps.append(TailClip(recipe.tail_quantile, mode="clip"))
    box = support(train, cut.threshold_) if tail_cut else None
    underlying = recipe.model == "flow" and recipe.flow_space == "underlying"
    if recipe.model == "flow" and recipe.flow_space not in ("features", "underlying"):
        raise ValueError(f"flow space {recipe.flow_space!r}: choose features or underlying")
    if underlying:
        pipeline = underlying_pipeline(*box).fit(dilepton_underlying(train))
    elif recipe.model == "flow":
        pipeline = flow_pipeline(*box).fit(train)
    else:
        steps.append(MinMax(0.0, 1.0))
        pipeline = Pipeline(steps, names=list(FEATURES)).fit(train)
    if len(train) < recipe.batch_size:
        raise ValueError(f"only {len(train)} training events after selection: fewer than one batch of "
                         f"{recipe.batch_size}; generate more events (--events)")
    return Sample(train, val, test, pipeline, tail_cut, len(x), box, underlying)


def save(run: Run, sample: Sample, table: Path | None) -> None:
    """Write the data step's artefacts into the run: preprocessing.json, sample.json (input table, counts, tail
    cut) and the validation and test MC (physical units) as parquet."""
    run.save_preprocessing(sample.pipeline)
    record = {"input": None if table is None else str(table), **sample.counts(), "tail_cut": sample.tail_cut}
    if sample.tail_cut:
        record["support_low"] = support(sample.train, transform_from_dict(sample.tail_cut).threshold_)[0].tolist()
    run.write_json(SAMPLE, record)
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


def run_support(run: Run) -> tuple[np.ndarray, np.ndarray] | None:
    """The support box ``(low, high)`` of a run with the event-level tail cut (``support`` of its training split,
    rebuilt from ``sample.json`` and, for a flow, its preprocessing), or None without the cut."""
    counts = load_counts(run)
    if not counts.get("tail_cut"):
        return None
    high = np.asarray(transform_from_dict(counts["tail_cut"]).threshold_, dtype=np.float64)
    low = counts.get("support_low")
    if low is None:  # runs written before issue 20: the selection's edges (their training minimum is above them)
        low = [LOWER_EDGES[f] for f in FEATURES]
    return np.asarray(low, dtype=np.float64), high


def fresh_path(recipe: Recipe, seed: int, events: int, data_dir: Path = DATA_DIR) -> Path:
    """The cached feature table of a fresh reference sample (``events`` Pythia events, ``seed``, the recipe's MPI
    setting), a name no training sample uses: ``dilepton_fresh_e<events>_s<seed>_<mpi|nompi>_features.root``."""
    mpi = "mpi" if recipe.mpi else "nompi"
    return Path(data_dir) / f"dilepton_fresh_e{int(events)}_s{int(seed)}_{mpi}_features.root"


def fresh_events(recipe: Recipe, seed: int, events: int | None = None, data_dir: Path = DATA_DIR,
                 jobs: int = 2) -> tuple[pd.DataFrame, Path]:
    """A fresh MC sample for the held-out check: the recipe's process and selection (``data_prep.dilepton``) with
    a ``seed`` its training never used, generated once and cached under ``fresh_path``.

    Args:
        recipe: the run's recipe (MPI setting; its ``seed`` made the training sample).
        seed: the fresh sample's Pythia seed.
        events: Pythia events (default: the recipe's ``events``).

    Returns:
        The 8-feature table and its path.

    Raises:
        InputError: ``seed`` is the recipe's own seed (that would regenerate the training sample).
    """
    if int(seed) == int(recipe.seed):
        raise InputError(f"--fresh-seed {seed} is the seed of the run's own sample; choose a seed it never used")
    events = int(events or recipe.events)
    path = fresh_path(recipe, seed, events, data_dir)
    if not path.exists():
        from data_prep.dilepton import make_sample

        out = path.with_name(path.name.replace("_features.root", ".root"))
        print(f"generating a fresh reference: {events} dilepton events, seed {seed} -> {out}", flush=True)
        path = make_sample(out, events=events, seed=int(seed), jobs=jobs, mpi=recipe.mpi)
    return read_table(path, columns=list(FEATURES)), path


def reference_events(run: Run, table: pd.DataFrame) -> tuple[np.ndarray, dict]:
    """A reference sample for the run: the 8 features of ``table`` with the run's own tail cut (fitted on its
    training split) applied, as the test MC had.

    Returns:
        ``(n, 8)`` float64 events in physical units, and ``{"n_before_tail_cut", "n"}``.

    Raises:
        InputError: the table lacks a feature column (names it), or no event passes the cut.
    """
    missing = [f for f in FEATURES if f not in table.columns]
    if missing:
        raise InputError(f"reference table lacks the column(s) {', '.join(missing)}")
    x = table[list(FEATURES)].to_numpy(np.float64)
    x = x[np.all(np.isfinite(x), axis=1)]
    n_before = len(x)
    tail_cut = load_counts(run).get("tail_cut")
    if tail_cut:
        x = x[transform_from_dict(tail_cut).mask(x)]
    if not len(x):
        raise InputError(f"no event of the reference sample passes {run.path}'s tail cut")
    return x, {"n_before_tail_cut": n_before, "n": len(x)}
