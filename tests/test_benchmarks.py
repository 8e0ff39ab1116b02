"""The benchmarks' arithmetic (FLOP counts, ratios, the simulation profile); nothing here is timed."""

import math

import pytest

from benchmarks import common
from benchmarks.simulation import split_profile

LR_WIDTHS = [128, 16, 32, 64, 128, 256, 512, 8]


def test_mlp_flops_lebese_ruan_generator():
    # 2 x 180,736 multiply-adds + 1,016 biases: the ~0.36 MFLOP per event of the issue
    macs = sum(a * b for a, b in zip(LR_WIDTHS[:-1], LR_WIDTHS[1:]))
    assert macs == 180_736
    assert common.mlp_flops(LR_WIDTHS) == 2 * macs + sum(LR_WIDTHS[1:])
    assert common.mlp_flops(LR_WIDTHS, bias=False) == 2 * macs


def test_dense_flops_matches_the_formula_for_keras_networks():
    from gan4hep.networks import mlp

    net = mlp(128, LR_WIDTHS[1:-1], 8, "trainable_swish", output_activation="sigmoid")
    assert common.dense_flops(net) == common.mlp_flops(LR_WIDTHS)
    deep = mlp(18, [512] * 10, 18, "leaky_relu", dropout=0.5)
    assert common.dense_flops(deep) == common.mlp_flops([18] + [512] * 10 + [18])


def test_dense_flops_circle_dense_counts_cos_and_sin_products():
    import keras

    from gan4hep.layers import CircleDense

    modulus = keras.Sequential([keras.Input((4,)), CircleDense(3)])
    real = keras.Sequential([keras.Input((4,)), CircleDense(3, output_mode="real")])
    assert common.dense_flops(modulus) == 2 * (2 * 4 * 3 + 3)
    assert common.dense_flops(real) == 2 * 4 * 3 + 3


def test_graph_flops_counts_a_matmul():
    import tensorflow as tf

    w = tf.ones((3, 5))
    assert common.graph_flops(lambda a: tf.matmul(a, w), tf.TensorSpec((4, 3), tf.float32)) == 2 * 4 * 3 * 5


def test_ratios():
    assert common.gflops(1e5, 3.6e5) == pytest.approx(36.0)
    assert common.fraction_of_peak(1e5, 3.6e5, 72.0) == pytest.approx(0.5)
    assert common.per_event_cost(2.0, 0.01, 2000) == pytest.approx(0.011)
    assert common.selected_cost(0.014, 0.14) == pytest.approx(0.1)
    assert common.selected_cost(0.01, 0.0) == math.inf
    # 1e5 generated events/s against 10 selected/s of simulation
    assert common.speedup(1e5, 10.0) == pytest.approx(1e4)


def test_linear_fit_recovers_a_line_and_rejects_degenerate_input():
    a, b = common.linear_fit([100, 400, 1000], [1.5 + 0.002 * x for x in (100, 400, 1000)])
    assert a == pytest.approx(1.5) and b == pytest.approx(0.002)
    with pytest.raises(ValueError):
        common.linear_fit([1, 1], [2, 3])
    with pytest.raises(ValueError):
        common.linear_fit([1], [2])


def test_timing_rates():
    t = common.Timing(calls=2, items=100, wall_s=2.0, cpu_s=4.0)
    assert t.rate_wall == 50 and t.rate_cpu == 25 and t.cores_used == 2
    assert math.isnan(common.Timing(0, 0, 0.0, 0.0).rate_cpu)
    d = t.as_dict()
    assert d["per_s_cpu"] == 25 and d["items"] == 100


def test_timed_calls_at_least_min_calls():
    calls = []
    t = common.timed(lambda: calls.append(1), 10, min_seconds=0, min_calls=3)
    assert t.calls == 3 == len(calls) and t.items == 30


def test_split_profile_sums_to_the_per_event_cost():
    # pythia 6 s of which the Wt matrix element 1 s; detector 2 s of which clustering 0.5 s; init 1 s; total 10 s
    store = {"pythia init": 1.0, "pythia": 6.0, "Wt matrix element (Python)": 1.0,
             "detector response (other)": 2.0, "jet clustering (FastJet)": 0.5}
    out = split_profile(store, total=10.0, events=100, paper_block=1000)
    assert out["init_s"] == 1.0
    assert out["s_per_event"] == pytest.approx((10.0 - 1.0) / 100 + 1.0 / 1000)
    p = out["profile"]
    assert p["pythia"] == pytest.approx(0.05)  # 6 - 1 (the matrix element) over 100 events
    assert p["Wt matrix element (Python)"] == pytest.approx(0.01)
    assert p["detector response (other)"] == pytest.approx(0.015)
    assert p["other (Python glue, awkward)"] == pytest.approx(0.01)  # 10 - 1 - 6 - 2
    assert sum(p.values()) == pytest.approx(out["s_per_event"])


def test_format_and_markdown():
    assert common.fmt(123456.7) == "123,457"
    assert common.fmt(0.123456) == "0.123"
    assert common.fmt(2.5e8) == "2.5e+08"
    assert common.fmt(1024) == "1,024"
    assert common.fmt(None) == "-"
    table = common.markdown(["a", "b"], [[1, 0.5], ["x", None]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 0.5 |", "| x | - |"]


def test_machine_line_names_cores_and_load():
    m = common.machine(with_tf=False)
    assert m["cores"] >= 1
    line = common.machine_line(m)
    assert f"{m['cores']} cores usable" in line and line.startswith("machine: CPU")
    gpu = dict(m, gpus=["NVIDIA H200", "NVIDIA H200"])
    assert common.machine_line(gpu).startswith("machine: GPU NVIDIA H200 (+1); CPU")


def test_counting_error():
    assert common.counting_error(25) == pytest.approx(0.2)
    assert common.counting_error(0) == math.inf


def test_median_window_is_the_middle_rate_not_the_mean():
    windows = [common.Timing(1, 10.0, 1.0, cpu) for cpu in (1.0, 10.0, 2.0)]  # rates 10, 1, 5 per CPU-second
    assert common.median_window(windows).rate_cpu == 5.0
    assert common.median_window(windows[:1]) is windows[0]
