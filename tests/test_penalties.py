"""Generator penalties: MMD^2 against a numpy double loop, PeakPenalty against a hand computation; the kernels
are the same for the Keras penalty and the numpy metric."""

import numpy as np
import pytest
from keras import ops

from gan4hep.kernels import kernel_matrix, mmd2
from gan4hep.penalties import MMDPenalty, PeakPenalty


def _k(a, b, w, kernel):
    d2 = (a - b) ** 2
    if kernel == "gaussian":
        return np.exp(-d2 / (2 * w**2))
    if kernel == "cauchy":
        return 1 / (1 + d2 / w**2)
    return 1 / (1 + 4 * d2 / w**2)  # breit_wigner, w = full width at half maximum


def _mmd2_loop(x, y, w, kernel):
    """Biased (V-statistic) MMD^2 written out as double loops."""
    kxx = sum(_k(a, b, w, kernel) for a in x for b in x) / len(x) ** 2
    kyy = sum(_k(a, b, w, kernel) for a in y for b in y) / len(y) ** 2
    kxy = sum(_k(a, b, w, kernel) for a in x for b in y) / (len(x) * len(y))
    return kxx + kyy - 2 * kxy


@pytest.mark.parametrize("kernel", ["gaussian", "cauchy", "breit_wigner"])
def test_mmd2_matches_double_loop(kernel):
    rng = np.random.default_rng(1)
    x = rng.normal(80.4, 2.0, 23)
    y = rng.normal(81.5, 3.0, 17)
    got = float(mmd2(ops.convert_to_tensor(x), ops.convert_to_tensor(y), 2.1, kernel, lib=ops))
    assert got == pytest.approx(_mmd2_loop(x, y, 2.1, kernel), rel=1e-9, abs=1e-12)
    assert got > 1e-3


def test_breit_wigner_kernel_is_half_at_half_the_width():
    k = np.asarray(kernel_matrix(ops.convert_to_tensor([0.0]), ops.convert_to_tensor([1.0]), 2.0, "breit_wigner", lib=ops))
    assert k[0, 0] == pytest.approx(0.5)


@pytest.mark.parametrize("kernel", ["gaussian", "cauchy", "breit_wigner"])
def test_mmd_penalty_zero_for_identical_and_grows_with_shift(kernel):
    rng = np.random.default_rng(2)
    real = rng.normal(0.0, 1.0, (256, 1)).astype("float32")
    pen = MMDPenalty(widths=[1.0], kernel=kernel, weight=3.0)
    assert float(pen(real, real)) == pytest.approx(0.0, abs=1e-6)
    values = [float(pen(real, real + s)) for s in (0.25, 0.5, 1.0, 2.0)]
    assert values[0] > 1e-3
    assert np.all(np.diff(values) > 0), values
    # weight multiplies the term
    assert values[2] == pytest.approx(3.0 * float(mmd2(real[:, 0], real[:, 0] + 1.0, 1.0, kernel, lib=ops)), rel=1e-5)


def test_mmd_penalty_multiple_observables_one_width_each():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(40, 3))
    fake = rng.normal(0.3, 1.2, size=(30, 3))

    def observables(x):  # a sum and a product, like two invariant masses built from the features
        return ops.stack([x[:, 0] + x[:, 1], x[:, 1] * x[:, 2]], axis=1)

    pen = MMDPenalty(observables=observables, widths=[0.5, 2.0], kernel="gaussian", weight=0.7)
    o_r = np.stack([real[:, 0] + real[:, 1], real[:, 1] * real[:, 2]], axis=1)
    o_f = np.stack([fake[:, 0] + fake[:, 1], fake[:, 1] * fake[:, 2]], axis=1)
    want = 0.7 * (_mmd2_loop(o_r[:, 0], o_f[:, 0], 0.5, "gaussian") + _mmd2_loop(o_r[:, 1], o_f[:, 1], 2.0, "gaussian"))
    assert float(pen(ops.convert_to_tensor(real), ops.convert_to_tensor(fake))) == pytest.approx(want, rel=1e-9)
    # swapping the widths changes the value: each width belongs to its observable
    swapped = MMDPenalty(observables=observables, widths=[2.0, 0.5], kernel="gaussian", weight=0.7)
    assert float(swapped(ops.convert_to_tensor(real), ops.convert_to_tensor(fake))) != pytest.approx(want, rel=1e-3)
    with pytest.raises(ValueError, match="3 kernel widths given for 2 observables"):
        MMDPenalty(observables=observables, widths=[1, 2, 3])(real, fake)
    with pytest.raises(ValueError, match="unknown kernel"):
        MMDPenalty(kernel="laplace")


def test_mmd_penalty_several_widths_per_observable_sum_and_reach():
    rng = np.random.default_rng(4)
    real = rng.normal(80.0, 1.0, (50, 2))
    fake = rng.normal(82.0, 3.0, (40, 2))
    # observable 0 gets a narrow and a wide kernel, observable 1 only a narrow one
    pen = MMDPenalty(widths=[[2.0, 30.0], 1.5], kernel="breit_wigner", weight=0.5)
    want = 0.5 * (_mmd2_loop(real[:, 0], fake[:, 0], 2.0, "breit_wigner")
                  + _mmd2_loop(real[:, 0], fake[:, 0], 30.0, "breit_wigner")
                  + _mmd2_loop(real[:, 1], fake[:, 1], 1.5, "breit_wigner"))
    got = float(pen(ops.convert_to_tensor(real), ops.convert_to_tensor(fake)))
    assert got == pytest.approx(want, rel=1e-9)
    assert float(pen(ops.convert_to_tensor(real), ops.convert_to_tensor(real))) == pytest.approx(0.0, abs=1e-9)
    # why a wide kernel: for a sample 60 widths away the narrow kernel's MMD^2 is saturated (hardly changes when
    # the sample moves closer), the wide one still falls steeply towards the data
    x = rng.normal(0.0, 0.1, 64)
    narrow = [float(mmd2(ops.convert_to_tensor(x), ops.convert_to_tensor(x + s), 1.0, "breit_wigner", lib=ops)) for s in (60, 50)]
    wide = [float(mmd2(ops.convert_to_tensor(x), ops.convert_to_tensor(x + s), 50.0, "breit_wigner", lib=ops)) for s in (60, 50)]
    assert narrow[0] - narrow[1] < 1e-3
    assert wide[0] - wide[1] > 0.05
    with pytest.raises(ValueError, match="positive"):
        MMDPenalty(widths=[[2.0, 0.0]])(real[:, :1], fake[:, :1])
    with pytest.raises(ValueError, match="positive"):
        MMDPenalty(widths=[[]])(real[:, :1], fake[:, :1])


def test_peak_penalty_hand_computation():
    real = np.array([[1.0, 10.0], [3.0, 14.0], [2.0, 12.0]])
    fake = np.array([[0.0, 11.0], [4.0, 11.0]])
    # fake mean (2, 11), population std (2, 0); real mean (2, 12), std (sqrt(2/3), sqrt(8/3))
    pen = PeakPenalty(lambda_mean=2.0, lambda_std=0.5)
    want = 2.0 * (0.0 + 1.0) + 0.5 * ((np.sqrt(2 / 3) - 2.0) ** 2 + (np.sqrt(8 / 3) - 0.0) ** 2)
    assert float(pen(real, fake)) == pytest.approx(want, rel=1e-9)
    fixed = PeakPenalty(target_mean=[80.4, 172.5], target_std=[2.0, 1.5], lambda_mean=1.0, lambda_std=3.0)
    want = (80.4 - 2.0) ** 2 + (172.5 - 11.0) ** 2 + 3.0 * ((2.0 - 2.0) ** 2 + 1.5**2)
    assert float(fixed(real, fake)) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("kernel", ["gaussian", "cauchy", "breit_wigner"])
def test_penalty_and_metric_share_the_kernel(kernel):
    """The Keras loss and the numpy metric are one formula: the V-statistic MMD^2 agrees on the same 1-d samples."""
    from gan4hep import metrics

    rng = np.random.default_rng(3)
    x, y = rng.normal(80.4, 2.0, 40), rng.normal(81.0, 2.5, 30)
    loss = float(mmd2(ops.convert_to_tensor(x), ops.convert_to_tensor(y), 2.1, kernel, lib=ops))
    assert metrics.mmd2(x, y, kernel=kernel, width=2.1, unbiased=False) == pytest.approx(loss, rel=1e-9)
    assert float(mmd2(x, y, 2.1, kernel)) == pytest.approx(loss, rel=1e-9)
