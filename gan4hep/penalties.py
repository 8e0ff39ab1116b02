"""Generator-side penalties added to the generator loss.

Each penalty is called as ``penalty(real, fake)`` on one batch (in the model's feature space) and returns a scalar
already multiplied by its weight. ``observables`` is a function mapping an event batch to a (batch, k) tensor of
the quantities the penalty acts on (for example W and top invariant masses); its output is what the kernel widths
and the targets refer to.

Per-event weights: a penalty whose estimate reads the real batch is unweighted, so ``GAN.check_weights`` refuses
weighted training with it (``takes_event_weights`` False): the MMD always, peak regression unless both targets are
fixed numbers.
"""

from __future__ import annotations

from keras import ops

from .kernels import KERNELS, mmd2

def _identity(x):
    return x


class MMDPenalty:
    """weight * sum_k sum_s MMD^2_s(obs_k(real), obs_k(fake)) (Butter et al.; several widths s: multi-scale).

    ``widths`` has one entry per observable column (a scalar is broadcast). An entry may itself be a sequence of
    widths: the MMD^2 of that observable is then summed over them (a multi-scale kernel). A kernel of the physical
    width of a narrow resonance only pulls on generated values within a few widths of the data; adding a wide
    kernel gives a gradient while the generated values are still far away. The sum over observables uses 1-d
    kernels, so a narrow resonance and a broad one each get widths matched to them.
    """

    takes_event_weights = False  # the MMD^2 estimator (gan4hep.kernels.mmd2) is unweighted

    def __init__(self, observables=None, widths=1.0, kernel="breit_wigner", weight=1.0, name="mmd"):
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; choose one of {KERNELS}")
        self.observables = observables or _identity
        self.widths = widths
        self.kernel = kernel
        self.weight = float(weight)
        self.name = name

    def _widths(self, k):
        """One list of kernel widths per observable column."""
        widths = list(self.widths) if hasattr(self.widths, "__len__") else [self.widths] * k
        if len(widths) != k:
            raise ValueError(f"{self.name}: {len(widths)} kernel widths given for {k} observables")
        out = []
        for w in widths:
            ws = [float(v) for v in w] if hasattr(w, "__len__") else [float(w)]
            if not ws or min(ws) <= 0:
                raise ValueError(f"{self.name}: kernel widths must be positive, got {w}")
            out.append(ws)
        return out

    def __call__(self, real, fake):
        obs_r = self.observables(real)
        obs_f = self.observables(fake)
        k = obs_r.shape[-1]
        total = 0.0
        for i, ws in enumerate(self._widths(k)):
            for w in ws:
                total = total + mmd2(obs_r[:, i], obs_f[:, i], w, self.kernel, lib=ops)
        return self.weight * total


class PeakPenalty:
    """Peak regression (Butter & Plehn review eq. 19):
    lambda_m (m_target - mean(obs))^2 + lambda_sigma (sigma_target - std(obs))^2 over the generated batch.

    Targets are given per observable column, or taken from the real batch when ``None``.
    """

    @property
    def takes_event_weights(self) -> bool:
        """True when both targets are fixed (the real batch, whose mean and width would need weights, is unused)."""
        return self.target_mean is not None and self.target_std is not None

    def __init__(self, observables=None, target_mean=None, target_std=None, lambda_mean=1.0, lambda_std=1.0,
                 name="peak"):
        self.observables = observables or _identity
        self.target_mean = target_mean
        self.target_std = target_std
        self.lambda_mean = float(lambda_mean)
        self.lambda_std = float(lambda_std)
        self.name = name
        self.weight = 1.0

    def __call__(self, real, fake):
        obs_f = self.observables(fake)
        if self.target_mean is None or self.target_std is None:
            obs_r = self.observables(real)
        m_t = ops.mean(obs_r, axis=0) if self.target_mean is None else ops.convert_to_tensor(self.target_mean,
                                                                                            obs_f.dtype)
        s_t = ops.std(obs_r, axis=0) if self.target_std is None else ops.convert_to_tensor(self.target_std,
                                                                                          obs_f.dtype)
        return ops.sum(
            self.lambda_mean * ops.square(m_t - ops.mean(obs_f, axis=0))
            + self.lambda_std * ops.square(s_t - ops.std(obs_f, axis=0))
        )
