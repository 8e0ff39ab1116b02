"""The parton-level ttbar sample of Butter, Plehn & Winterhalder: generated with ``data_prep.ttbar_partons`` (Pythia
8 hard process, cached under ``data/butter_plehn_winterhalder/``) or read from a user's table, split into training
and test events by the recipe's ``seed``, and the validation part of ``--select-best``.

Events are ``(n, 24)`` float64 arrays in GeV, columns ``model.COLUMNS`` (p{i}_px, p{i}_py, p{i}_pz, p{i}_E for
i = 0..5: q, q', b from the top, then from the anti-top).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gan4hep import io
from papers.butter_plehn_winterhalder.model import COLUMNS

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "data" / "butter_plehn_winterhalder"
MAX_VALIDATION = 10_000   # ours: events of the validation part of --select-best (at most a tenth of the training part)


def sample_path(recipe) -> Path:
    """The feature table of a recipe: ``recipe.input``, or the cached data_prep sample of
    ``train_events + test_events`` events with ``sample_seed`` (it may not exist yet)."""
    if recipe.input:
        return Path(recipe.input)
    n = recipe.train_events + recipe.test_events
    return CACHE / f"ttbar_partons_e{n}_s{recipe.sample_seed}_features.root"


def load_events(recipe, jobs: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) events, ``(train_events, 24)`` and ``(test_events, 24)`` in GeV.

    Generates the Pythia sample (``jobs`` processes) when there is no ``input`` and no cached sample. The events are
    permuted with ``recipe.seed``; the first ``test_events`` are the test sample, the next ``train_events`` the
    training sample.

    Raises:
        ValueError: the table holds fewer events than requested (names the file).
        FileNotFoundError, KeyError: ``input`` missing or without the 24 columns (from ``gan4hep.io.read_table``).
    """
    path = sample_path(recipe)
    need = recipe.train_events + recipe.test_events
    if not path.exists() and not recipe.input:
        from data_prep import ttbar_partons

        raw = path.with_name(path.name.replace("_features.root", ".root"))
        print(f"generating {need} parton-level ttbar events -> {raw}")
        path = Path(ttbar_partons.make_sample(raw, events=need, seed=recipe.sample_seed, jobs=jobs))
    x = io.read_table(path, columns=COLUMNS).to_numpy(dtype=np.float64)
    if len(x) < need:
        raise ValueError(f"{path}: {len(x)} events, but {recipe.train_events} training + {recipe.test_events} "
                         "test events were requested")
    perm = np.random.default_rng(recipe.seed).permutation(len(x))[:need]
    return x[perm[recipe.test_events:]], x[perm[:recipe.test_events]]


def validation_split(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation): the last ``max(1, min(10000, n // 10))`` of the (already shuffled) ``(n, 24)`` training
    events are the validation sample of ``--select-best``; it never overlaps the test sample."""
    n_val = max(1, min(MAX_VALIDATION, len(x_train) // 10))
    return x_train[:-n_val], x_train[-n_val:]
