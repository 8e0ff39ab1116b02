"""The QCD jet sample of Lin, Bhimji & Nachman (section 3.2): generated with ``data_prep.qcd_jets`` or read from a
table, checked column by column, cut into the regions of Table 1, and the control region split 50/50 by event into
the GANs' training and early-stopping halves (section 3.3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gan4hep import io
from gan4hep.errors import InputError

__all__ = ["COLUMNS", "REGIONS", "TABLE1", "PT_MIN", "sample_path", "load_sample", "read_jets", "region",
           "split_control", "prepare"]

COLUMNS = ["event", "pt", "eta", "mass", "ntrk", "njet", "region", "weight"]
REGIONS = {1: "control", 2: "validation", 3: "signal"}
PT_MIN = 200.0  # GeV: "only considered if pT > 200 GeV and |eta| < 2.0" (section 3.2)

# Table 1 of the paper, written out for table1.csv (the selection itself is data_prep.qcd_jets.assign_region):
# (region, N_jet(pT > 200 GeV), pT of the leading jet, |delta eta_12|, Sum m_J)
TABLE1 = [
    ("control", "= 3", "-", "-", "-"),
    ("validation", "= 4", "> 400 GeV", "> 1.4", "-"),
    ("validation", ">= 5", "-", "> 1.4", "-"),
    ("signal", "= 4", "> 400 GeV", "< 1.4", "> 1.0 TeV"),
    ("signal", ">= 5", "-", "< 1.4", "> 0.8 TeV"),
]


def sample_path(out: Path, events: int, seed: int) -> Path:
    """Where a generated sample of ``events`` Pythia events with ``seed`` lives: the jet feature table in
    ``OUT/sample/``."""
    return Path(out) / "sample" / f"qcd_jets_e{events}_s{seed}_features.root"


def load_sample(source: Path | None, out: Path, events: int, seed: int, engine: dict | None = None) -> pd.DataFrame:
    """The per-jet table: ``source`` if given, else a ``data_prep.qcd_jets`` sample of ``events`` events generated
    (once; ``engine``: ``data_prep.runner.engine_kwargs`` options, local processes or a Dask cluster; an interrupted
    sample resumes with its missing blocks) into ``OUT/sample/``. See ``read_jets`` for the table and its errors."""
    engine = {"jobs": 2, **(engine or {})}
    jobs = engine["jobs"]
    path = source
    if path is None:
        path = sample_path(out, events, seed)
        if not path.exists():
            from data_prep import qcd_jets

            root = path.with_name(path.name.replace("_features", ""))
            print(f"generating {events} QCD events with Pythia ({jobs} jobs) -> {root}", flush=True)
            path = qcd_jets.make_sample(root, events=events, seed=seed, block_size=5000, **engine)
    return read_jets(path)


def read_jets(path: Path) -> pd.DataFrame:
    """Read and check a jet table (data_prep.qcd_jets ``*_features.root``, or parquet / CSV with ``COLUMNS``).

    Returns:
        one row per jet: ``COLUMNS`` (pt, mass in GeV) plus ``rank`` (0 = leading jet of its event), sorted by
        event and decreasing pT; ``attrs["path"]`` names the file.

    Raises:
        FileNotFoundError: no such file. gan4hep.errors.MissingInput (a KeyError): a missing column (named).
        gan4hep.errors.InputError (a ValueError): an empty table, non-positive weights, or region codes other than
        0-3 (naming the file and column).
    """
    df = io.read_table(path, columns=COLUMNS)
    if len(df) == 0:
        raise InputError(f"{path}: the jet table is empty")
    if (df["weight"] <= 0).any():
        raise InputError(f"{path}: column 'weight' has {(df['weight'] <= 0).sum()} non-positive values")
    bad = ~df["region"].isin([0, *REGIONS])
    if bad.any():
        raise InputError(f"{path}: column 'region' holds codes {sorted(df['region'][bad].unique())}; "
                         "expected 0 (none), 1 (control), 2 (validation), 3 (signal)")
    df = df.sort_values(["event", "pt"], ascending=[True, False], kind="stable").reset_index(drop=True)
    df["rank"] = df.groupby("event").cumcount()
    df.attrs["path"] = str(path)
    return df


def region(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Jets of one region by name (control, validation, signal).

    Raises:
        gan4hep.errors.InputError: no jet in that region (names the file and the column value).
    """
    code = {v: k for k, v in REGIONS.items()}[name]
    sel = df[df["region"] == code]
    if len(sel) == 0:
        raise InputError(f"{df.attrs.get('path', 'sample')}: no jets in the {name} region "
                         f"(column 'region' == {code}); generate more events")
    return sel.reset_index(drop=True)


def split_control(control: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's split of the control region into training and early-stopping halves, by event: "The jets in the
    control region are split 50%-50% for the purpose of training the neural network and 'validating' the network to
    enforce the early stopping condition" (section 3.3). Returns (train, early_stopping)."""
    events = np.unique(control["event"])
    rng = np.random.default_rng([seed, 50])
    train_events = rng.choice(events, size=len(events) // 2, replace=False)
    is_train = control["event"].isin(train_events).to_numpy()
    return control[is_train].reset_index(drop=True), control[~is_train].reset_index(drop=True)


def prepare(df: pd.DataFrame, seed: int) -> dict[str, pd.DataFrame | None]:
    """The data of a run: ``train`` and ``control_es`` (the control region split by ``split_control``), all of
    ``control`` (for the templates), ``validation`` (the test set) and ``signal`` (None if our sample has none)."""
    control = region(df, "control")
    train, es = split_control(control, seed)
    return {"train": train, "control_es": es, "control": control, "validation": region(df, "validation"),
            "signal": region(df, "signal") if (df["region"] == 3).any() else None}
