import os

import numpy as np
import pandas as pd
import pytest

from gan4hep import io
from gan4hep.errors import InputError


@pytest.fixture
def df():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=50), "b": rng.integers(0, 5, 50).astype(np.int32),
                         "process": pd.Categorical(rng.choice(["ttbar", "Wt"], 50))})


@pytest.mark.parametrize("suffix", [".root", ".parquet", ".csv", ".h5"])
def test_round_trip(tmp_path, df, suffix):
    path = io.write_table(df, tmp_path / f"t{suffix}", metadata={"x": 1})
    back = io.read_table(path)
    np.testing.assert_allclose(back["a"], df["a"])
    np.testing.assert_array_equal(back["b"], df["b"])
    assert list(back["process"].astype(str)) == list(df["process"].astype(str))
    assert list(io.read_table(path, columns=["b", "a"]).columns) == ["b", "a"]
    assert not list(tmp_path.glob(".*tmp*"))


def test_root_is_ttree_with_metadata(tmp_path, df):
    import uproot

    path = io.write_table(df, tmp_path / "t.root", tree="features", metadata={"sigma": 2.5})
    with uproot.open(path) as f:
        assert f.classnames()["features;1"] == "TTree"
    assert io.read_metadata(path) == {"sigma": 2.5}


def test_errors(tmp_path, df):
    with pytest.raises(FileNotFoundError, match="nope.root"):
        io.read_table(tmp_path / "nope.root")
    path = io.write_table(df, tmp_path / "t.root")
    with pytest.raises(KeyError, match="zzz"):
        io.read_table(path, columns=["a", "zzz"])
    bad = df.copy()
    bad.loc[3, "a"] = np.nan
    path = io.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="'a'"):
        io.read_table(path, columns=["a"])
    with pytest.raises(ValueError, match="unsupported"):
        io.write_table(df, tmp_path / "t.txt")


def test_atomic_write_leaves_old_file_on_failure(tmp_path, df):
    path = io.write_table(df, tmp_path / "t.parquet")
    with pytest.raises(RuntimeError):
        with io.atomic_path(path) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("crash")
    assert len(io.read_table(path)) == 50


# ---------------------------------------------------------------------------------------------------------------
# Issue 18: every branch read faithfully or refused by name; tables the reader did not recognise; strict JSON
# ---------------------------------------------------------------------------------------------------------------
def _ttree(path, branches, name="events"):
    """A TTree written the uproot way (mktree + extend), so fixed-size arrays keep their ROOT type."""
    import awkward as ak
    import uproot

    types = {k: (v.type.content if isinstance(v, ak.Array) else v.dtype if v.ndim == 1 else
                 np.dtype((v.dtype, v.shape[1:]))) for k, v in branches.items()}
    with uproot.recreate(path) as f:
        f.mktree(name, types).extend(branches)
    return path


def test_fixed_size_arrays_become_columns(tmp_path):
    n = 6
    p3 = np.arange(3 * n, dtype=np.float32).reshape(n, 3)
    m = np.arange(4 * n, dtype=np.float64).reshape(n, 2, 2)
    path = _ttree(tmp_path / "a.root", {"pt": np.linspace(1, 2, n), "p3": p3, "m": m,
                                       "njets": np.arange(n, dtype=np.int32), "ok": np.arange(n) % 2 == 0})
    df = io.read_table(path)
    assert list(df.columns) == ["pt", "p3_0", "p3_1", "p3_2", "m_0_0", "m_0_1", "m_1_0", "m_1_1", "njets", "ok"]
    np.testing.assert_array_equal(df[["p3_0", "p3_1", "p3_2"]].to_numpy(), p3)
    np.testing.assert_array_equal(df["m_1_0"], m[:, 1, 0])
    assert df["njets"].dtype == np.int32 and df["ok"].dtype == bool and df["p3_1"].dtype == np.float32
    # a branch name stands for its columns, in the order asked
    assert list(io.read_table(path, columns=["njets", "p3"]).columns) == ["njets", "p3_0", "p3_1", "p3_2"]
    assert io.table_columns(path, ["p3", "pt"]) == ["p3_0", "p3_1", "p3_2", "pt"]


def test_rntuple_is_read(tmp_path):
    """uproot 5.7 writes f[name] = {...} as an RNTuple: read like a TTree (records become name.field)."""
    import awkward as ak
    import uproot

    n = 5
    with uproot.recreate(tmp_path / "rn.root") as f:
        f["events"] = {"pt": np.arange(n, dtype=np.float32), "p3": np.ones((n, 3)),
                       "lep": ak.zip({"e": np.full(n, 2.0), "q": np.ones(n, dtype=np.int32)})}
    assert io.root_tree_names(tmp_path / "rn.root") == ["events"]
    df = io.read_table(tmp_path / "rn.root")
    assert sorted(df.columns) == ["lep.e", "lep.q", "p3_0", "p3_1", "p3_2", "pt"]  # (uproot's field order)
    np.testing.assert_array_equal(df["pt"], np.arange(n))
    assert df["lep.q"].dtype == np.int32 and len(df) == n


def test_branches_that_cannot_be_columns_are_refused_by_name(tmp_path):
    import awkward as ak
    import uproot

    jets = ak.Array([[1.0, 2.0], [], [3.0]])
    path = _ttree(tmp_path / "j.root", {"jet_pt": jets, "met": np.array([1.0, 2.0, 3.0])})
    for columns in (None, ["jet_pt"]):
        with pytest.raises(InputError) as err:
            io.read_table(path, columns=columns)
        text = str(err.value)
        assert "j.root" in text and "'events'" in text and "'jet_pt'" in text and "double[]" in text
        assert "jagged" in text
    # the flat branches of the same tree are still readable, including the jagged branch's counter
    assert list(io.read_table(path, columns=["met", "njet_pt"]).columns) == ["met", "njet_pt"]
    # a string branch is a (str) column, not "jagged"
    with uproot.recreate(tmp_path / "s.root") as f:
        f.mktree("events", {"process": ak.Array(["tt", "W"]).type.content, "x": "f8"}).extend(
            {"process": ak.Array(["tt", "W"]), "x": np.array([1.0, 2.0])})
    assert list(io.read_table(tmp_path / "s.root")["process"]) == ["tt", "W"]
    # an RNTuple field with missing values: refused naming the column and the count
    with uproot.recreate(tmp_path / "o.root") as f:
        f["events"] = {"x": ak.Array([1.0, None, 2.0])}
    with pytest.raises(InputError, match=r"o\.root.*'x' has 1 missing"):
        io.read_table(tmp_path / "o.root")


def test_files_without_a_table_say_what_they_hold(tmp_path):
    import uproot

    with uproot.recreate(tmp_path / "h.root") as f:
        f["note"] = "just a string"
    with pytest.raises(KeyError) as err:
        io.read_table(tmp_path / "h.root")
    assert "h.root" in str(err.value) and "TObjString 'note'" in str(err.value)
    path = _ttree(tmp_path / "two.root", {"x": np.ones(2)}, name="a")
    with uproot.update(path) as f:
        f.mktree("b", {"x": "f8"}).extend({"x": np.ones(2)})
    with pytest.raises(KeyError, match="--tree"):
        io.read_table(path)
    with pytest.raises(KeyError, match=r"no TTree or RNTuple 'c' \(--tree\).*\['a', 'b'\]"):
        io.read_table(path, tree="c")
    assert len(io.read_table(path, tree="b")) == 2


def test_hdf5_root_datasets_and_shapes(tmp_path):
    import h5py

    n = 7
    rng = np.random.default_rng(1)
    energies, showers = rng.uniform(1, 100, (n, 1)), rng.uniform(0, 1, (n, 4))
    with h5py.File(tmp_path / "calo.h5", "w") as f:  # CaloChallenge layout: datasets at the root, (N, 1) energies
        f["incident_energies"] = energies
        f["showers"] = showers
        f["version"] = 2  # a scalar: metadata, not a column
    df = io.read_table(tmp_path / "calo.h5")
    assert list(df.columns) == ["incident_energies", "showers_0", "showers_1", "showers_2", "showers_3"]
    np.testing.assert_array_equal(df["incident_energies"], energies[:, 0])
    np.testing.assert_array_equal(df[[f"showers_{i}" for i in range(4)]].to_numpy(), showers)
    assert len(io.read_table(tmp_path / "calo.h5", tree="/", columns=["incident_energies"])) == n

    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["a"] = np.ones(n)
        f["b"] = np.ones(n - 1)
        ragged = f.create_dataset("hits", (n,), dtype=h5py.vlen_dtype("f4"))
        ragged[0] = [1.0, 2.0]
        f["pair"] = np.zeros(n, dtype=[("x", "f4"), ("y", "i4")])
    with pytest.raises(InputError, match=r"bad\.h5.*different numbers of rows.*a 7, b 6"):
        io.read_table(tmp_path / "bad.h5", columns=["a", "b"])
    with pytest.raises(InputError, match=r"bad\.h5.*dataset 'hits'.*jagged"):
        io.read_table(tmp_path / "bad.h5", columns=["hits"])
    assert list(io.read_table(tmp_path / "bad.h5", columns=["pair"]).columns) == ["pair.x", "pair.y"]

    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_group("nothing")
    with pytest.raises(KeyError, match=r"empty\.h5.*no table.*group 'nothing'"):
        io.read_table(tmp_path / "empty.h5")


def test_parquet_nested_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"x": [1.0, 2.0], "p": pa.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], pa.list_(pa.float64(), 3)),
                      "hits": [[1.0], [2.0, 3.0]]})
    pq.write_table(table, tmp_path / "n.parquet")
    df = io.read_table(tmp_path / "n.parquet", columns=["x", "p"])
    assert list(df.columns) == ["x", "p_0", "p_1", "p_2"] and list(df["p_2"]) == [3.0, 6.0]
    with pytest.raises(InputError, match=r"n\.parquet.*'hits'.*list.*jagged"):
        io.read_table(tmp_path / "n.parquet")


def test_write_json_is_strict(tmp_path):
    import json

    path = io.write_json({"auc": float("nan"), "w1": np.float32(0.5), "v": np.array([1.0, np.inf]),
                          "n": np.int64(3)}, tmp_path / "m.json")

    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")

    back = json.loads(path.read_text(), parse_constant=refuse)
    assert back == {"auc": None, "w1": 0.5, "v": [1.0, None], "n": 3}


def test_suspect_placeholders_finds_sentinels_not_physical_edges():
    rng = np.random.default_rng(0)
    n = 2000
    mass = rng.normal(125, 20, n)
    mass[rng.random(n) < 0.15] = -999.0
    df = pd.DataFrame({"mass": mass, "pt": np.where(rng.random(n) < 0.3, 0.0, rng.exponential(50, n) + 20),
                       "njets": rng.poisson(1, n).astype(np.int32), "flag": rng.random(n) < 0.5})
    found = io.suspect_placeholders(df)
    assert [s["column"] for s in found] == ["mass"]
    assert found[0]["value"] == -999.0 and 0.13 < found[0]["fraction"] < 0.17


def test_fingerprint_and_stale_partial_files(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "t.csv"
    path.write_text("a\n1\n")
    fp = io.fingerprint(path)
    assert fp["size"] == 4 and len(fp["sha256"]) == 64
    path.write_text("a\n2\n")
    assert io.fingerprint(path)["sha256"] != fp["sha256"]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f".ckpt-000000005.npz.{dead}.tmp.npz").write_bytes(b"half")
    (tmp_path / f".ckpt-000000006.npz.{os.getppid()}.tmp.npz").write_bytes(b"a live writer")
    assert [p.name for p in io.stale_partial_files(tmp_path)] == [f".ckpt-000000005.npz.{dead}.tmp.npz"]
