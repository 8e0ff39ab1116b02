"""Issue 18 through the ``gan4hep`` console script: a user's own ntuple is read faithfully or refused by name (one
line, exit 2, nothing written), integer / boolean / placeholder columns come back as they went in, a run freezes
its input and preprocessing, and a run killed with SIGKILL resumes with nothing lost."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from gan4hep import io
from gan4hep.cli import main

TRAIN = ["--preset", "quick", "--batch-size", "64", "--widths", "8,8", "--verbose", "0"]


def _events(n=512, seed=0):
    rng = np.random.default_rng(seed)
    mass = rng.normal(125, 20, n)
    mass[rng.random(n) < 0.15] = -999.0  # HiggsML-style placeholder for an undefined mass
    return pd.DataFrame({"pt": rng.exponential(30, n) + 20, "eta": rng.normal(0, 1.5, n),
                         "njets": rng.poisson(2, n).astype(np.int32), "flag": rng.random(n) < 0.3, "mass": mass,
                         "w": np.where(rng.random(n) < 0.1, -1.0, 1.0)})


def _train(path, run, columns, *extra):
    return main(["train", "--input", str(path), "--columns", columns, "--out", str(run), *TRAIN, *extra])


def _one_line(err):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("gan4hep "), err
    return lines[0]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "events.parquet"
    df = _events()
    df.to_parquet(path)
    return path, df


# ---------------------------------------------------------------------------------------------------------------
# bad inputs: one line naming file and column, exit 2, no run folder
# ---------------------------------------------------------------------------------------------------------------
def _jagged_root(path):
    import awkward as ak
    import uproot

    with uproot.recreate(path) as f:
        f.mktree("events", {"jet_pt": ak.Array([[1.0]]).type.content, "met": "f8"}).extend(
            {"jet_pt": ak.Array([[1.0, 2.0]] * 200), "met": np.ones(200)})


def _only_a_string(path):
    import uproot

    with uproot.recreate(path) as f:
        f["note"] = "no tree here"


def _ragged_h5(path):
    import h5py

    with h5py.File(path, "w") as f:
        f["met"] = np.ones(200)
        f.create_dataset("hits", (200,), dtype=h5py.vlen_dtype("f4"))


def _csv_with_text(path):
    df = pd.DataFrame({"met": np.arange(200.0), "hits": np.arange(200.0)}).astype({"hits": object})
    df.loc[17, "hits"] = "?"
    df.to_csv(path, index=False)


def _parquet_list(path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"met": np.ones(200), "hits": [[1.0]] * 200}), path)


def _empty(path):
    pd.DataFrame({"met": np.array([], float), "hits": np.array([], float)}).to_parquet(path)


BAD = {  # name: (writer, file name, --columns, words the message must contain)
    "jagged ROOT branch": (_jagged_root, "j.root", "met,jet_pt", ["j.root", "'jet_pt'", "double[]", "jagged"]),
    "no table in the file": (_only_a_string, "s.root", "met", ["s.root", "no table", "TObjString 'note'"]),
    "ragged HDF5 dataset": (_ragged_h5, "r.h5", "met,hits", ["r.h5", "'hits'", "jagged"]),
    "text in a numeric CSV column": (_csv_with_text, "t.csv", "met,hits", ["t.csv", "'hits'", "'?'", "row 17"]),
    "list column in parquet": (_parquet_list, "l.parquet", "met,hits", ["l.parquet", "'hits'", "jagged"]),
    "empty table": (_empty, "e.parquet", "met,hits", ["e.parquet", "empty"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_inputs_are_refused_by_name_and_write_nothing(case, tmp_path, capsys):
    writer, name, columns, words = BAD[case]
    writer(tmp_path / name)
    run = tmp_path / "run"
    assert _train(tmp_path / name, run, columns, "--steps", "2") == 2
    line = _one_line(capsys.readouterr().err)
    assert all(w in line for w in words), line
    assert not run.exists()


def test_placeholders_warned_dropped_or_refused_before_anything_is_written(table, tmp_path, capsys):
    path, df = table
    run = tmp_path / "run"
    big = ["--batch-size", "100000", "--steps", "2"]  # stops after the input checks: nothing is trained
    assert _train(path, run, "pt,mass", *big) == 2
    err = capsys.readouterr().err
    assert "column 'mass'" in err and "-999" in err and "--missing-value" in err and "fewer than one batch" in err
    assert _train(path, run, "pt,mass", *big, "--missing-value", "-999", "--missing", "drop") == 2
    dropped = int((df["mass"] == -999).sum())
    assert f"{dropped} of {len(df)} events dropped" in capsys.readouterr().out
    assert _train(path, run, "pt", *big, "--missing-value", "-999", "--context", "mass") == 2
    assert "context column 'mass'" in _one_line(capsys.readouterr().err)
    assert not run.exists()


# ---------------------------------------------------------------------------------------------------------------
# integer, boolean, non-negative and placeholder columns
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def typed_run(table, tmp_path_factory):
    path, df = table
    run = tmp_path_factory.mktemp("runs") / "typed"
    assert _train(path, run, "pt,njets,flag,mass", "--steps", "4", "--missing-value", "-999", "--lr", "1e-3") == 0
    return run


def test_run_records_columns_and_generates_their_types(table, typed_run, tmp_path, capsys):
    path, df = table
    record = json.loads((typed_run / "input.json").read_text())
    assert record["features"] == ["pt", "njets", "flag", "mass", "mass__missing"]
    cols = record["columns"]
    assert cols["njets"]["kind"] == "integer" and cols["njets"]["dtype"] == "int32"
    assert cols["njets"]["min"] == df["njets"].min() and cols["njets"]["max"] == df["njets"].max()
    assert cols["flag"]["kind"] == "boolean" and "Dequantise" in cols["flag"]["training"]
    assert cols["pt"]["kind"] == "float" and "set to 0" in cols["pt"]["generation"]
    assert record["placeholders"]["mass"]["fraction"] == pytest.approx((df["mass"] == -999).mean())
    assert record["fingerprint"] == io.fingerprint(path)

    out = tmp_path / "gen.parquet"
    assert main(["generate", "--run", str(typed_run), "--samples", "400", "--out", str(out), "--seed", "2"]) == 0
    gen = pd.read_parquet(out)
    assert list(gen.columns) == ["pt", "njets", "flag", "mass"]
    assert gen["njets"].dtype == np.int32 and gen["flag"].dtype == bool
    assert gen["njets"].between(df["njets"].min(), df["njets"].max()).all()
    assert (gen["pt"] >= 0).all()
    defined = gen["mass"][gen["mass"] != -999]
    assert (defined > -999).all()  # a placeholder is put back exactly, never generated as a value near it
    # the exported sampler rounds integers too (the dequantisation is part of its preprocessing)
    from gan4hep.models import load_sampler

    sample = load_sampler(typed_run / "model.keras").sample(100, seed=1)
    np.testing.assert_array_equal(sample[:, 1], np.rint(sample[:, 1]))


def test_evaluate_with_negative_weights_writes_strict_json(table, typed_run, tmp_path, capsys):
    path, _ = table
    out = tmp_path / "ev"
    assert main(["evaluate", "--run", str(typed_run), "--input", str(path), "--weight", "w", "--out", str(out)]) == 0
    assert "negative weights" in capsys.readouterr().err

    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")

    summary = json.loads((out / "summary.json").read_text(), parse_constant=refuse)
    assert summary["weight"] == "w" and summary["classifier_auc"] is None
    assert "negative weights" in summary["undefined"]["classifier_auc"]
    assert np.isfinite(pd.read_csv(out / "fidelity.csv", index_col=0)["ks"]).all()


# ---------------------------------------------------------------------------------------------------------------
# a run freezes its input
# ---------------------------------------------------------------------------------------------------------------
def test_a_changed_input_is_refused_and_preprocessing_never_refitted(table, tmp_path, capsys):
    _, df = table
    path = tmp_path / "events.parquet"
    df.to_parquet(path)
    run = tmp_path / "run"
    assert _train(path, run, "pt,eta", "--steps", "3") == 0
    frozen = (run / "preprocessing.json").read_bytes()
    capsys.readouterr()

    changed = df.assign(pt=df["pt"] * 1000)  # the same file name, now in MeV
    changed.to_parquet(path)
    for argv in (["train", "--input", str(path), "--columns", "pt,eta", "--out", str(run), *TRAIN, "--steps", "4"],
                 ["train", "--out", str(run), "--resume", "--verbose", "0"]):
        assert main(argv) == 2
        line = _one_line(capsys.readouterr().err)
        assert "events.parquet" in line and "not the input this run was trained on" in line and "--out" in line
    assert (run / "preprocessing.json").read_bytes() == frozen
    assert json.loads((run / "results.json").read_text())["trained_steps"] == 3

    moved = tmp_path / "moved.parquet"  # the original content under another name is the same input
    df.to_parquet(moved)
    assert main(["train", "--out", str(run), "--resume", "--input", str(moved), "--verbose", "0"]) == 0


def test_deliberate_errors_are_one_line_with_their_own_status(table, tmp_path, monkeypatch, capsys):
    from gan4hep import training
    from gan4hep.callbacks import TrainingDiverged
    from gan4hep.runs import Run

    path, _ = table
    with Run(tmp_path / "locked").lock():  # another process training the folder
        assert _train(path, tmp_path / "locked", "pt,eta", "--steps", "2") == 2
        assert "being trained by another process" in _one_line(capsys.readouterr().err)

    def diverges(*args, **kwargs):
        raise TrainingDiverged("training diverged at step 3: g_loss = nan; last good checkpoint: ckpt-2")

    monkeypatch.setattr(training, "train", diverges)
    assert _train(path, tmp_path / "nan", "pt,eta", "--steps", "5") == 3
    assert "diverged at step 3" in _one_line(capsys.readouterr().err)


# ---------------------------------------------------------------------------------------------------------------
# same seed, same input, same options: the same events; a run killed with SIGKILL resumes with nothing lost
# ---------------------------------------------------------------------------------------------------------------
def test_same_seed_same_events_byte_for_byte(table, typed_run, tmp_path):
    """A second run with the same seed, input and options generates the same bytes as the first."""
    path, _ = table
    twin = tmp_path / "twin"
    assert _train(path, twin, "pt,njets,flag,mass", "--steps", "4", "--missing-value", "-999", "--lr", "1e-3") == 0
    outs = []
    for run in (typed_run, twin, twin):
        out = tmp_path / "gen.parquet"
        assert main(["generate", "--run", str(run), "--samples", "300", "--out", str(out), "--seed", "9"]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]


KILL_STEPS = 120


@pytest.fixture(scope="module")
def killed_and_resumed(table, tmp_path_factory):
    """The same run twice: uninterrupted, and killed with SIGKILL at a random moment after its first checkpoint
    (there is one every step, so the kill may land inside a write; such a write's partial file is also planted)
    and then resumed to the end."""
    path, _ = table
    base = tmp_path_factory.mktemp("kill")
    argv = ["train", "--input", str(path), "--columns", "pt,eta", *TRAIN, "--steps", str(KILL_STEPS), "--seed", "1",
            "--checkpoint-every", "1", "--log-every", "50", "--objective", "bce"]
    whole, killed = base / "whole", base / "killed"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.Popen([sys.executable, "-m", "gan4hep.cli", *argv, "--out", str(killed)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not list((killed / "checkpoints").glob("ckpt-*.npz")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(random.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    _, stderr = proc.communicate(timeout=60)
    was_killed = proc.returncode == -signal.SIGKILL
    # what a kill inside a checkpoint write leaves (the write goes to a temporary name, renamed when complete)
    (killed / "checkpoints" / f".ckpt-{KILL_STEPS:09d}.npz.{proc.pid}.tmp.npz").write_bytes(b"PK\x03\x04 half")
    assert main(argv + ["--out", str(whole)]) == 0
    assert main(["train", "--out", str(killed), "--resume", "--verbose", "0"]) == 0
    return whole, killed, was_killed, stderr


def _final_weights(run):
    with np.load(run / "checkpoints" / f"ckpt-{KILL_STEPS:09d}.npz") as z:
        return [z[k] for k in sorted(z.files)]


def test_killed_run_resumes_with_nothing_lost(killed_and_resumed):
    whole, killed, was_killed, stderr = killed_and_resumed
    assert was_killed, "the training process ended before it could be killed: raise KILL_STEPS"
    assert "cuInit" not in stderr and "shuffle" not in stderr  # no noise on a machine without a GPU
    assert json.loads((killed / "results.json").read_text())["trained_steps"] == KILL_STEPS
    assert not [p for p in (killed / "checkpoints").iterdir() if p.name.startswith(".")]  # no partial file left
    for ckpt in (killed / "checkpoints").glob("ckpt-*.npz"):
        np.load(ckpt).files  # every checkpoint is complete
    assert json.loads((killed / "input.json").read_text()) == json.loads((whole / "input.json").read_text())
    assert (killed / "preprocessing.json").read_bytes() == (whole / "preprocessing.json").read_bytes()


def test_killed_run_ends_with_the_uninterrupted_weights_and_history(killed_and_resumed):
    """The batch order is a function of (seed, step), the noise position and the open loss window are in every
    checkpoint, and losses.json is written at each window's end: wherever the kill lands, the resumed run ends
    with the uninterrupted run's final checkpoint (weights, optimizer, random state) and its loss history."""
    whole, killed, _, _ = killed_and_resumed
    resumed_from = json.loads((killed / "results.json").read_text())["resumed_from"]
    assert 0 < resumed_from < KILL_STEPS  # the kill landed inside the training
    for a, b in zip(_final_weights(whole), _final_weights(killed), strict=True):
        np.testing.assert_array_equal(a, b)
    assert json.loads((killed / "losses.json").read_text()) == json.loads((whole / "losses.json").read_text())


# ---------------------------------------------------------------------------------------------------------------
# per-event training weights
# ---------------------------------------------------------------------------------------------------------------
def test_train_with_a_weight_column(table, tmp_path, capsys):
    """``gan4hep train --weight w``: NLO-style weights (10 % at -1) train a WGAN-GP and a flow, recorded in the
    run; an objective not defined for negative weights, or weights without a positive sum, are refused by name
    before anything is written."""
    path, df = table
    for model in ("gan", "flow"):
        run = tmp_path / model
        assert _train(path, run, "pt,eta", "--steps", "3", "--weight", "w", "--model", model) == 0
        assert "weighted by w" in capsys.readouterr().out
        record = json.loads((run / "input.json").read_text())["weight"]
        assert record["column"] == "w" and record["negative"] == int((df["w"] < 0).sum())
        assert record["sum"] == pytest.approx(df["w"].sum())
        assert json.loads((run / "recipe.json").read_text())["weight"] == "w"
    refused = tmp_path / "roth"
    assert _train(path, refused, "pt,eta", "--steps", "3", "--weight", "w", "--objective", "bce_roth") == 2
    line = _one_line(capsys.readouterr().err)
    assert "events.parquet" in line and "--weight 'w'" in line and "'roth'" in line and "negative" in line
    assert not refused.exists()
    negative = tmp_path / "negative.parquet"
    df.assign(w=-df["w"]).to_parquet(negative)
    assert _train(negative, refused, "pt,eta", "--steps", "3", "--weight", "w") == 2
    assert "weight column 'w' sums to" in _one_line(capsys.readouterr().err)
    assert _train(path, refused, "pt,eta", "--steps", "3", "--weight", "pt") == 2
    assert "--weight 'pt' is also a generated" in _one_line(capsys.readouterr().err)
    assert not refused.exists()
