import numpy as np
import pandas as pd
import pytest

from gan4hep import io


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
