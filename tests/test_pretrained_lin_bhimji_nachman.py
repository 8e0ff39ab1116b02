"""The shipped Lin, Bhimji & Nachman jet-mass generators (issue 23): conditional models that generate m / pT (and
the derived mass) for the user's jets or for the shipped context table; small; their card names the context; the
context is checked column by column; ``gan4hep generate --pretrained ... --context FILE`` uses it. (The reference
table of each shipped model is checked by tests/test_pretrained.py for every shipped model.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gan4hep import cli, pretrained
from gan4hep.errors import InputError
from gan4hep.io import read_metadata, read_table

NAMES = ["lin_bhimji_nachman:gan", "lin_bhimji_nachman:flow"]
CONTEXT = ["pt", "eta", "ntrk"]


def _jets(n=500, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"ntrk": rng.integers(5, 60, n).astype(np.int32), "pt": rng.uniform(200, 1200, n),
                         "eta": rng.uniform(-2, 2, n), "other": np.arange(n)})


@pytest.mark.parametrize("name", NAMES)
def test_shipped_small_and_conditional(name):
    assert name in pretrained.available()
    item = pretrained.get(name)
    size = sum(p.stat().st_size for p in item.path.iterdir() if p.is_file())
    assert size < 2e6, f"{name} takes {size / 1e6:.2f} MB"
    assert item.context_columns == CONTEXT and item.features == ["m_over_pt"]
    assert item.columns == CONTEXT + ["m_over_pt", "mass"]
    assert item.card["context"]["file"] == "context.parquet" and item.card["units"]["mass"] == "GeV"
    table = item.context_table()
    assert list(table.columns) == CONTEXT and len(table) == item.card["context"]["rows"] >= 1000
    assert (table["pt"] > 200).all() and (table["eta"].abs() < 2).all()
    assert item.card["fidelity"]["spread"]["n_runs"] >= 1 and item.card["preset"] == "quick"


@pytest.mark.parametrize("name", NAMES)
def test_generate_for_given_jets(name):
    """One event per context row, the context passed through, mass = m / pT x pT clipped at 0, reproducible, and
    different contexts give different masses (heavier jets at higher pT)."""
    item = pretrained.get(name)
    jets = _jets()
    sampler = item.load()
    df = item.generate(context=jets, seed=3, sampler=sampler)
    assert list(df.columns) == item.columns and len(df) == len(jets)
    np.testing.assert_array_equal(df[CONTEXT].to_numpy(), jets[CONTEXT].to_numpy(float))
    np.testing.assert_allclose(df["mass"], np.maximum(df["m_over_pt"] * df["pt"], 0.0))
    assert (df["mass"] >= 0).all() and np.isfinite(df.to_numpy()).all()
    pd.testing.assert_frame_equal(df, item.generate(len(jets), context=jets, seed=3, sampler=sampler))
    low = jets.assign(pt=250.0)
    high = jets.assign(pt=1000.0)
    assert item.generate(context=high, seed=1, sampler=sampler)["mass"].mean() > \
        1.5 * item.generate(context=low, seed=1, sampler=sampler)["mass"].mean()


def test_without_a_context_the_shipped_table_is_resampled():
    item = pretrained.get("lin_bhimji_nachman:flow")
    df = item.generate(3000, seed=2)
    table = item.context_table()
    rows = set(map(tuple, table.to_numpy()))
    assert all(tuple(r) in rows for r in df[CONTEXT].to_numpy())
    assert len({tuple(r) for r in df[CONTEXT].to_numpy()}) > 1000  # drawn, not one row repeated
    pd.testing.assert_frame_equal(df, item.generate(3000, seed=2))


def test_bad_contexts_are_refused_by_name():
    item = pretrained.get("lin_bhimji_nachman:gan")
    jets = _jets(10)
    with pytest.raises(InputError, match="lacks column 'eta'"):
        item.generate(context=jets.drop(columns="eta"))
    with pytest.raises(InputError, match="column 'pt' holds NaN"):
        item.generate(context=jets.assign(pt=np.where(np.arange(10) == 3, np.nan, 300.0)))
    with pytest.raises(InputError, match="5 events asked with a context of 10 rows"):
        item.generate(5, context=jets)
    with pytest.raises(InputError, match="unconditional"):
        pretrained.get("lebese_ruan").generate(10, context=jets)


def test_reference_check_catches_a_shifted_mass():
    item = pretrained.get("lin_bhimji_nachman:gan")
    ref = item.card["reference"]
    df = item.generate(ref["test_events"], seed=ref["test_seed"])
    assert pretrained.check_reference(df, ref) == []
    shifted = df.assign(mass=df["mass"] + 0.15 * ref["statistics"]["mass"]["std"])
    failures = pretrained.check_reference(shifted, ref)
    assert failures and all(f.startswith("mass ") for f in failures)


def test_cli_generate_with_a_context_file(tmp_path, capsys):
    jets = _jets(700)
    ctx = tmp_path / "jets.parquet"
    jets.to_parquet(ctx)
    out = tmp_path / "masses.root"
    assert cli.main(["generate", "--pretrained", "lin_bhimji_nachman:flow", "--context", str(ctx), "--out",
                     str(out), "--seed", "4"]) == 0
    printed = capsys.readouterr().out
    assert "700 events from the pretrained lin_bhimji_nachman:flow" in printed and "events/s" in printed
    df = read_table(out)
    item = pretrained.get("lin_bhimji_nachman:flow")
    pd.testing.assert_frame_equal(df, item.generate(context=jets, seed=4), check_dtype=False)
    assert read_metadata(out)["context"] == str(ctx)
    # without --context: the shipped table, --events required
    out2 = tmp_path / "m.parquet"
    assert cli.main(["generate", "--pretrained", "lin_bhimji_nachman", "--events", "300", "--out", str(out2)]) == 0
    assert "resampled from the shipped table" in capsys.readouterr().out
    assert list(read_table(out2).columns) == pretrained.get("lin_bhimji_nachman").columns


def test_cli_context_errors(tmp_path, capsys):
    ctx = tmp_path / "jets.csv"
    _jets(20).drop(columns="ntrk").to_csv(ctx, index=False)
    out = tmp_path / "a.parquet"
    assert cli.main(["generate", "--pretrained", "lin_bhimji_nachman:gan", "--context", str(ctx), "--out",
                     str(out)]) == 2
    assert "no column 'ntrk'" in capsys.readouterr().err
    _jets(20).to_csv(ctx, index=False)
    assert cli.main(["generate", "--pretrained", "lin_bhimji_nachman:gan", "--context", str(ctx), "--events", "5",
                     "--out", str(out)]) == 2
    assert "has 20 rows" in capsys.readouterr().err
    assert cli.main(["generate", "--pretrained", "lebese_ruan", "--context", str(ctx), "--out", str(out)]) == 2
    assert "unconditional" in capsys.readouterr().err
    assert cli.main(["generate", "--pretrained", "lin_bhimji_nachman:gan", "--out", str(out)]) == 2
    assert "--context FILE" in capsys.readouterr().err
    assert not out.exists()
