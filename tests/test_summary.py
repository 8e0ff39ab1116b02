"""gan4hep.summary: mean and spread over runs, against numpy."""

import json

import numpy as np
import pytest

from gan4hep import summary
from gan4hep.errors import InputError


def test_flatten_keeps_numeric_leaves_only():
    tree = {"a": 1, "b": {"c": 2.5, "d": [3, {"e": 4}]}, "f": True, "g": None, "h": "x", "i": float("nan")}
    assert summary.flatten(tree) == {"a": 1.0, "b.c": 2.5, "b.d.0": 3.0, "b.d.1.e": 4.0}


def test_mean_and_sample_std_against_numpy():
    runs = [{"auc": 0.61, "t": {"x": {"w": 0.01}, "y": {"w": 0.05}}},
            {"auc": 0.59, "t": {"x": {"w": 0.02}, "y": {"w": 0.04}}},
            {"auc": 0.64, "t": {"x": {"w": 0.03}}}]
    s = summary.summarise(runs)
    auc = np.array([0.61, 0.59, 0.64])
    assert s["auc"]["mean"] == pytest.approx(auc.mean()) and s["auc"]["std"] == pytest.approx(auc.std(ddof=1))
    assert s["auc"]["min"] == 0.59 and s["auc"]["max"] == 0.64 and s["auc"]["values"] == [0.61, 0.59, 0.64]
    # a key missing in one run: summarised over the others, n says so
    assert s["t.y.w"]["n"] == 2 and s["t.y.w"]["values"] == [0.05, 0.04, None]
    assert s["t.y.w"]["mean"] == pytest.approx(0.045)
    assert set(summary.summarise(runs, keys=["t.*.w"])) == {"t.x.w", "t.y.w"}
    assert summary.summarise(runs[:1])["auc"]["std"] is None


def test_runs_from_folders_and_errors_name_the_file(tmp_path):
    for i, v in enumerate((1.0, 3.0)):
        (tmp_path / f"r{i}").mkdir()
        (tmp_path / f"r{i}" / "metrics.json").write_text(json.dumps({"v": v}))
    s = summary.summarise_runs([tmp_path / "r0", tmp_path / "r1"])
    assert s["v"]["mean"] == 2.0 and s["v"]["std"] == pytest.approx(np.sqrt(2.0))
    assert "| v | 2 | 2 +- 1.414 | 1 | 3 |" in summary.markdown(s)
    with pytest.raises(InputError, match="r2.metrics.json"):
        summary.summarise_runs([tmp_path / "r0", tmp_path / "r2"])
    (tmp_path / "r1" / "metrics.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        summary.summarise_runs([tmp_path / "r1"])
    assert summary.main([str(tmp_path / "r0"), "--out", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["v"]["mean"] == 1.0


def test_mean_spread_gives_the_mean_alone_for_one_run():
    assert summary.mean_spread({"mean": 0.12345, "std": 0.0067}, ".3f") == "0.123 +- 0.007"
    assert summary.mean_spread({"mean": 0.12345, "std": None}, ".3f") == "0.123"  # one run: no spread
    one = summary.summarise([{"auc": 0.6}])["auc"]
    assert summary.mean_spread(one) == "0.6"
