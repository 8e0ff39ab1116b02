"""The MMD kernels and the batch MMD^2, once, for numpy and for Keras ops (the array library is an argument, as in
scikit-hep ``vector``'s compute functions). ``gan4hep.penalties`` (the training loss, ``lib=keras.ops``) and
``gan4hep.metrics`` (the evaluation metric, numpy) both use them.

Kernels of a squared distance ``d2`` and a width ``w`` (all equal 1 at zero distance):

- gaussian: ``exp(-d2 / (2 w^2))``;
- cauchy: ``1 / (1 + d2 / w^2)`` (``w``: half width at half maximum);
- breit_wigner: ``1 / (1 + 4 d2 / w^2)``, i.e. ``w`` is the full width at half maximum as for a resonance
  (``breit_wigner(w) == cauchy(w / 2)``; Butter, Plehn & Winterhalder 2019, the MMD with a Breit-Wigner kernel).

The MMD^2 is that of Gretton et al. (2012), as used for the loss in Butter & Plehn's review, Sec. 4.3, Eq. (23).
"""

from __future__ import annotations

import numpy as np

__all__ = ["KERNELS", "check_kernel", "from_squared_distance", "kernel_matrix", "mmd2"]

KERNELS = ("gaussian", "cauchy", "breit_wigner")


def check_kernel(kernel: str, width: float) -> None:
    """Raises ValueError for an unknown kernel name or a width that is not positive."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {KERNELS}")
    if not float(width) > 0:
        raise ValueError(f"kernel width must be positive, got {width}")


def from_squared_distance(d2, width: float, kernel: str = "gaussian", lib=np):
    """Kernel values from squared distances ``d2`` (any shape) for one ``width`` (same units as the distances).

    Args:
        d2: squared distances, an array of ``lib``.
        width: kernel width (see the module docstring for its meaning per kernel).
        kernel: "gaussian", "cauchy" or "breit_wigner".
        lib: the array library: ``numpy`` or ``keras.ops``.

    Raises:
        ValueError: unknown kernel.
    """
    if kernel == "gaussian":
        return lib.exp(-d2 / (2.0 * width**2))
    if kernel == "cauchy":
        return 1.0 / (1.0 + d2 / width**2)
    if kernel == "breit_wigner":
        return 1.0 / (1.0 + 4.0 * d2 / width**2)
    raise ValueError(f"unknown kernel {kernel!r}; choose one of {KERNELS}")


def kernel_matrix(x, y, width: float, kernel: str = "gaussian", lib=np):
    """``k(x_i, y_j)`` for samples ``x`` (n,) or (n, d) and ``y`` (m,) or (m, d): an (n, m) array of ``lib``.

    Multi-dimensional samples use the squared Euclidean distance over all ``d`` features.
    """
    if len(x.shape) == 1:
        d2 = lib.square(lib.expand_dims(x, 1) - lib.expand_dims(y, 0))
    else:
        d2 = lib.maximum(lib.sum(x * x, axis=1)[:, None] + lib.sum(y * y, axis=1)[None, :]
                         - 2.0 * lib.matmul(x, lib.transpose(y)), 0.0)
    return from_squared_distance(d2, width, kernel, lib)


def mmd2(x, y, width: float, kernel: str = "gaussian", lib=np):
    """Biased (V-statistic) MMD^2 of two batches: ``mean k(x,x') + mean k(y,y') - 2 mean k(x,y)``.

    It is >= 0 and exactly 0 for identical batches, which is what a loss term wants. For the unbiased and the
    weighted estimator on large samples use ``gan4hep.metrics.mmd2``.
    """
    return (lib.mean(kernel_matrix(x, x, width, kernel, lib)) + lib.mean(kernel_matrix(y, y, width, kernel, lib))
            - 2.0 * lib.mean(kernel_matrix(x, y, width, kernel, lib)))
