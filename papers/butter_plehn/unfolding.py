"""Unfolding pp -> Z W -> (l+ l-)(q q') with a conditional INN, a noise-extended INN and a fully conditional GAN,
and their calibration: the review's Figs. 19-20 (R Secs. 2, 5.2-5.3, Eqs. (9), (10); Bellagente, Butter,
Kasieczka, Plehn, Rousselot, Winterhalder, Ardizzone, Koethe, arXiv:2006.06685).

    python papers/butter_plehn/unfolding.py --preset quick --out runs/bp_unfold --seed 1

Sample: ``data_prep.zw_pairs`` (Pythia 8 at 13 TeV, our detector response, 2-4 jets), cached in
``data/butter_plehn``; one sample (``sample_seed``) for every training seed. Each network learns p(parton |
detector) and unfolds a detector-level event into parton-level events:

* cINN: ``gan4hep.flows.cinn`` (Eq. (9) affine blocks, the detector event entering only the subnetworks), trained on
  Eq. (10), the negative log-likelihood of the parton event given the detector event;
* eINN: ``NoiseExtendedINN``, an unconditional INN from (parton event, noise) to (detector event, noise), trained
  in both directions (Bellagente et al.'s noise-extended INN; our reading of its losses: README, Ambiguities);
* FCGAN: ``gan4hep.models.GAN`` with the detector event as condition of generator and critic (Bellagente et al.
  2019's fully conditional GAN; BCE with Roth et al.'s regulariser).

Evaluation on held-out pairs (``n_calib`` = 1500, each unfolded ``n_unfold`` = 60 times): the calibration curve of
pT of the leading quark (``calibration_curve``: the fraction of pairs whose truth lies below the q-quantile of its
unfolded values), its largest deviation from the diagonal at the deciles; the posterior of one event from
``n_posterior`` = 3200 unfoldings; the parton-level distributions by detector jet multiplicity (Fig. 20; the pT
balance of the hard process is built into the target, ``PARTON_NAMES``); beyond the review, the rank statistics of
the truth among the unfoldings for every parton observable with a chi2 against the uniform distribution
(``rank_chi2``). The cINN's checkpoint is the one of least NLL on validation pairs (it overtrains early). With
``--resonance-mass M`` the trained networks also unfold detector events of a W' -> W Z of mass M that they never
saw (``resonance_test``; R Fig. 18's question of model dependence): ``RUN/fig18.png`` and
``metrics.json: injected_resonance``.

Writes ``RUN/metrics.json`` (``calibration_max_deviation.{cinn,einn,fcgan}``, ``calibration_curves``,
``calibration_max_deviation_pt_qmax``, ``rank_chi2``, ``w1_over_std_one_unfolding``, ``by_jet_multiplicity``,
``posterior_one_event``), ``RUN/unfolding.{md,csv}``, ``RUN/fig19.png`` (posterior and calibration curves) and
``RUN/fig20.png`` (distributions by jet multiplicity); each network is a run folder ``RUN/<model>`` (resumable).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import ops
from scipy import stats

from gan4hep import io, plotting, training
from gan4hep.flows import cinn as build_cinn_flow
from gan4hep.flows.affine import cinn_block
from gan4hep.flows.base import Chain
from gan4hep.flows.linear import RandomPermutation
from gan4hep.kernels import mmd2
from gan4hep.models import GAN
from gan4hep.models.base import GenerativeModel
from gan4hep.networks import mlp
from gan4hep.objectives import get_objective
from gan4hep.preprocessing import Pipeline, Standardise
from gan4hep.runs import Run

from papers.butter_plehn import report
from papers.butter_plehn.recipe import UNFOLDING_PRESETS, Unfolding

PART = "unfolding"
DATA_DIR = Path("data/butter_plehn")
MODELS = ("cinn", "einn", "fcgan")
PARTONS = ("lm", "lp", "q1", "q2")
#: the parton-level target: for l- and l+ the differences (log pT, eta, phi) from the detector-level lepton of the
#: same charge (``lepton_reference``); log pT [log GeV], eta, phi of the leading quark q1; eta of q2. The leptons are
#: measured to ~2 %, so their absolute parton values given the detector event have a near-singular density (a
#: probe's validation NLL jumped between 7 and 30 nats from one evaluation to the next); their differences,
#: standardised, are of unit width. The hard process balances in pT (``data_prep.zw_pairs``: the four pT vectors
#: sum to zero), so q2's pT vector is minus the sum of the other three: a 12-d target would lie on a 10-d surface
#: (tried: the validation likelihood diverges within a few hundred steps).
PARTON_NAMES = (tuple(f"{p}_d{c}" for p in PARTONS[:2] for c in ("logpt", "eta", "phi"))
                + ("q1_logpt", "q1_eta", "q1_phi", "q2_eta"))
#: the detector-level condition: the two leptons (log pT, eta, phi, charge), four jets (log(1 + pT), eta, phi,
#: log(1 + m); zero-padded), n_jets
DETECTOR_NAMES = (tuple(f"l{i}_{c}" for i in range(2) for c in ("logpt", "eta", "phi", "charge"))
                  + tuple(f"j{i}_{c}" for i in range(4) for c in ("logpt", "eta", "phi", "logm")) + ("n_jets",))
DECILES = tuple(np.round(np.arange(1, 10) / 10, 1))


# ------------------------------------------------------------------------------------------------------ data
def sample(recipe: Unfolding, data_dir: Path = DATA_DIR) -> pd.DataFrame:
    """The ``data_prep.zw_pairs`` table of the recipe (made once, cached in ``data_dir``)."""
    from data_prep import zw_pairs

    path = Path(data_dir) / f"zw_pairs_e{recipe.events}_s{recipe.sample_seed}_features.root"
    if not path.exists():
        path = zw_pairs.make_sample(Path(data_dir) / path.name.replace("_features", ""), recipe.events,
                                    recipe.sample_seed, block_size=min(recipe.events, 10_000), progress=False)
    return io.read_table(path)


def lepton_reference(df: pd.DataFrame) -> np.ndarray:
    """``(n, 6)``: log pT [log GeV], eta, phi of the detector-level l- and l+ (by charge) of a ``zw_pairs`` table."""
    minus0 = df["d_l0_charge"].to_numpy() < 0
    cols = []
    for sign in (True, False):  # l- first
        first = minus0 if sign else ~minus0
        for c in ("pt", "eta", "phi"):
            v = np.where(first, df[f"d_l0_{c}"].to_numpy(), df[f"d_l1_{c}"].to_numpy())
            cols.append(np.log(v) if c == "pt" else v)
    return np.stack(cols, axis=1)


def _wrap(phi):
    return np.mod(phi + np.pi, 2 * np.pi) - np.pi


def parton_array(df: pd.DataFrame) -> np.ndarray:
    """``(n, 10)`` parton-level target (``PARTON_NAMES``) from a ``data_prep.zw_pairs`` table."""
    ref = lepton_reference(df)
    cols = []
    for i, p in enumerate(PARTONS[:2]):
        cols += [np.log(df[f"p_{p}_pt"].to_numpy()) - ref[:, 3 * i], df[f"p_{p}_eta"].to_numpy() - ref[:, 3 * i + 1],
                 _wrap(df[f"p_{p}_phi"].to_numpy() - ref[:, 3 * i + 2])]
    cols += [np.log(df["p_q1_pt"].to_numpy()), df["p_q1_eta"].to_numpy(), df["p_q1_phi"].to_numpy(),
             df["p_q2_eta"].to_numpy()]
    return np.stack(cols, axis=1)


def detector_array(df: pd.DataFrame) -> np.ndarray:
    """``(n, 25)`` detector-level condition (``DETECTOR_NAMES``) from a ``data_prep.zw_pairs`` table."""
    cols = []
    for i in range(2):
        cols += [np.log(df[f"d_l{i}_pt"].to_numpy()), df[f"d_l{i}_eta"].to_numpy(), df[f"d_l{i}_phi"].to_numpy(),
                 df[f"d_l{i}_charge"].to_numpy()]
    for i in range(4):
        cols += [np.log1p(df[f"d_j{i}_pt"].to_numpy()), df[f"d_j{i}_eta"].to_numpy(), df[f"d_j{i}_phi"].to_numpy(),
                 np.log1p(df[f"d_j{i}_m"].to_numpy())]
    cols.append(df["n_jets"].to_numpy())
    return np.stack(cols, axis=1).astype(np.float64)


def parton_observables(x: np.ndarray, ref: np.ndarray) -> dict[str, np.ndarray]:
    """Observables of parton events in ``PARTON_NAMES`` layout: pT [GeV], eta, phi of each parton, m_ll, m_qq and
    pT_ll [GeV], and ``pt_qmax``, the larger of the two quark pTs. q2's pT vector is minus the sum of the other
    three (``PARTON_NAMES``). ``pt_q1`` is the network's leading quark (the truth's q1 is the leading one, and so is
    the coordinate the network learns); in a generated event the implied q2 can come out harder than q1, which
    ``pt_qmax`` then picks (biased upwards by the q2 errors: reported beside, not used for the calibration).

    Args:
        x: ``(n, 10)`` or ``(n, m, 10)`` (m unfoldings of each of n events).
        ref: ``(n, 6)`` the events' ``lepton_reference``.
    """
    x = np.asarray(x, np.float64)
    ref = np.asarray(ref, np.float64)
    if x.ndim == 3:
        ref = ref[:, None, :]
    lep = [x[..., j] + ref[..., j] for j in range(6)]
    pt = {p: np.exp(np.clip(lep[3 * i], -10, 10)) for i, p in enumerate(PARTONS[:2])}  # clip: no overflow
    eta = {p: lep[3 * i + 1] for i, p in enumerate(PARTONS[:2])}
    phi = {p: lep[3 * i + 2] for i, p in enumerate(PARTONS[:2])}
    pt["q1"], eta["q1"], phi["q1"] = np.exp(np.clip(x[..., 6], -10, 10)), x[..., 7], x[..., 8]
    sx = -sum(pt[p] * np.cos(phi[p]) for p in PARTONS[:3])
    sy = -sum(pt[p] * np.sin(phi[p]) for p in PARTONS[:3])
    pt["q2"], eta["q2"], phi["q2"] = np.hypot(sx, sy), x[..., 9], np.arctan2(sy, sx)
    out = {"pt_qmax": np.maximum(pt["q1"], pt["q2"])}
    for p in PARTONS:
        out[f"pt_{p}"], out[f"eta_{p}"], out[f"phi_{p}"] = pt[p], eta[p], _wrap(phi[p])

    def mass(a, b):
        return np.sqrt(np.maximum(2 * pt[a] * pt[b] * (np.cosh(np.clip(eta[a] - eta[b], -20, 20))
                                                       - np.cos(phi[a] - phi[b])), 0.0))

    out["m_ll"], out["m_qq"] = mass("lm", "lp"), mass("q1", "q2")
    out["pt_ll"] = np.hypot(pt["lm"] * np.cos(phi["lm"]) + pt["lp"] * np.cos(phi["lp"]),
                            pt["lm"] * np.sin(phi["lm"]) + pt["lp"] * np.sin(phi["lp"]))
    return out


def four_body_mass(obs: dict[str, np.ndarray]) -> np.ndarray:
    """m_ZW [GeV]: the invariant mass of the four partons (massless, from ``parton_observables``)."""
    e = px = py = pz = 0.0
    for p in PARTONS:
        pt, eta, phi = obs[f"pt_{p}"], np.clip(obs[f"eta_{p}"], -20, 20), obs[f"phi_{p}"]
        e, px, py, pz = e + pt * np.cosh(eta), px + pt * np.cos(phi), py + pt * np.sin(phi), pz + pt * np.sinh(eta)
    return np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


def resonance_sample(mass: float, events: int, seed: int, data_dir: Path = DATA_DIR) -> pd.DataFrame:
    """The W' -> W Z pairs of the injected-resonance test (``data_prep.zw_pairs`` with ``wprime_mass``; cached)."""
    from data_prep import zw_pairs

    path = Path(data_dir) / f"zw_pairs_wprime{mass:g}_e{events}_s{seed}_features.root"
    if not path.exists():
        path = zw_pairs.make_sample(Path(data_dir) / path.name.replace("_features", ""), events, seed,
                                    zw_pairs.Settings(wprime_mass=mass), block_size=min(events, 10_000),
                                    progress=False)
    return io.read_table(path)


def resonance_test(model, df: pd.DataFrame, mass: float, n_calib: int, n_unfold: int, seed: int) -> dict:
    """Unfold detector events of an injected resonance the network never saw (W' -> W Z): the four-parton mass
    of one unfolding per event against the truth (median, fraction within 10 % of the W' mass), and the pT_q1
    calibration on the first ``n_calib`` events."""
    xd, ref = detector_array(df), lepton_reference(df)
    truth = parton_observables(parton_array(df), ref)
    gen = parton_observables(unfold(model, xd, 1, seed)[:, 0], ref)
    k = min(n_calib, len(df))
    cal = parton_observables(unfold(model, xd[:k], n_unfold, seed + 1), ref[:k])
    curve = calibration_curve(truth["pt_q1"][:k], cal["pt_q1"])
    window = (0.9 * mass, 1.1 * mass)
    m_t, m_g = four_body_mass(truth), four_body_mass(gen)
    return {"m_zw_median_truth": float(np.median(m_t)), "m_zw_median_unfolded": float(np.median(m_g)),
            "fraction_in_window_truth": float(np.mean((m_t > window[0]) & (m_t < window[1]))),
            "fraction_in_window_unfolded": float(np.mean((m_g > window[0]) & (m_g < window[1]))),
            "pt_q1_calibration_max_deviation": max_deviation(curve), "calibration_pairs": k,
            "m_zw_truth": m_t, "m_zw_unfolded": m_g}


#: observables of the rank-statistics test
RANK_OBSERVABLES = (tuple(f"{c}_{p}" for p in PARTONS for c in ("pt", "eta", "phi"))
                    + ("m_ll", "m_qq", "pt_ll", "pt_qmax"))


# ------------------------------------------------------------------------------------------------ calibration
def calibration_curve(truth: np.ndarray, samples: np.ndarray, quantiles=DECILES) -> np.ndarray:
    """The calibration curve of R Fig. 19 (right): for each quantile level q, the fraction of pairs whose truth lies
    below the q-quantile of its own unfolded values.

    A calibrated posterior gives C(q) = q up to the binomial error sqrt(q (1 - q) / n) (the sample quantile is the
    Weibull one, unbiased for this); too narrow a posterior gives C(q) > q below the median and C(q) < q above it (for a
    Gaussian of width s / k around the right centre, C(q) = Phi(z_q / k)); a posterior shifted up by d s gives
    C(q) = Phi(z_q + d) > q everywhere.

    Args:
        truth: ``(n,)`` the true value of each pair.
        samples: ``(n, m)`` m unfolded values per pair.
        quantiles: the levels q in (0, 1).

    Returns:
        ``(len(quantiles),)`` C(q).

    Raises:
        ValueError: shapes that do not match.
    """
    truth, samples = np.asarray(truth, np.float64), np.asarray(samples, np.float64)
    if samples.ndim != 2 or truth.shape != (samples.shape[0],):
        raise ValueError(f"need truth (n,) and samples (n, m), got {truth.shape} and {samples.shape}")
    # Weibull plotting positions (the q-quantile at order statistic q (m + 1)): for a truth exchangeable with the
    # m samples, P(truth < X_(k)) = k / (m + 1), so E[C(q)] = q exactly; numpy's default (q (m - 1) + 1) would give
    # (q (m - 1) + 1) / (m + 1), 0.113 at q = 0.1 for m = 60, for a perfect posterior
    q = np.quantile(samples, np.asarray(quantiles, np.float64), axis=1, method="weibull")  # (k, n)
    return np.mean(truth[None, :] < q, axis=1)


def max_deviation(curve: np.ndarray, quantiles=DECILES) -> float:
    """max_q |C(q) - q|."""
    return float(np.max(np.abs(np.asarray(curve) - np.asarray(quantiles))))


def rank_chi2(truth: np.ndarray, samples: np.ndarray) -> dict[str, float]:
    """Rank statistic of the truth among its m unfolded values (the number of values below it, 0..m; simulation-
    based calibration, Talts et al. arXiv:1804.06788): uniform on {0, ..., m} for a calibrated posterior. Returns
    the chi2 of the rank histogram (m + 1 bins) against uniform, its ndf (m), chi2/ndf and the p-value."""
    truth, samples = np.asarray(truth, np.float64), np.asarray(samples, np.float64)
    m = samples.shape[1]
    ranks = np.sum(samples < truth[:, None], axis=1)
    counts = np.bincount(ranks, minlength=m + 1)
    expected = len(truth) / (m + 1)
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    return {"chi2": chi2, "ndf": m, "chi2_over_ndf": chi2 / m, "p_value": float(stats.chi2.sf(chi2, m))}


# ------------------------------------------------------------------------------------------------------ models
def _chain(features: int, context_dim: int, blocks: int, hidden: int, layers: int, clamp: float) -> Chain:
    parts = []
    for _ in range(blocks):
        parts += [RandomPermutation(features), *cinn_block(features, context_dim, hidden, layers, clamp).transforms]
    return Chain(parts)


class NoiseExtendedINN(GenerativeModel):
    """The noise-extended INN (eINN) of Bellagente et al., arXiv:2006.06685 (their Sec. 3; the review's Fig. 19):
    one invertible network g (``cinn_block``s, no condition) between (parton event x_p, noise r_p) and (detector
    event x_d, noise r_d), both sides ``dim`` wide. Trained in both directions on the pairs:

        forward  g(x_p, r_p) = (y, s):   MSE(y, x_d) + MMD(s, N(0, 1))
        inverse  g^-1(x_d, r_d) = (u, v): MMD(u, x_p) + MMD(v, N(0, 1))

    r_p, r_d ~ N(0, 1); MMD with a sum of Gaussian kernels (``widths`` in units of sqrt(d), d the block's width).
    (A first version with one MMD over the whole 32-d side and absolute widths <= 2 had no gradient for the parton
    block: its unfoldings came out 15x too wide.) Unfolding a detector event: x_p = the
    first n_parton entries of g^-1(x_d, r_d) for fresh r_d. The MMD terms match distributions over the batch, not
    per-event posteriors: that is the construction the review finds "too narrow". The relative weights of the terms
    are ours (1 each; the original's are not readable here).

    Args:
        n_parton, n_detector: widths of the parton and detector events (model space).
        dim: width of the network (>= both).
        blocks, hidden, layers, clamp: the ``cinn_block``s.
        widths: MMD kernel widths.
        preprocessing, context_preprocessing: fitted pipelines of the parton and detector events.

    Raises:
        ValueError: ``dim`` smaller than either event.
    """

    def __init__(self, n_parton: int, n_detector: int, dim: int, blocks: int = 8, hidden: int = 64,
                 layers: int = 2, clamp: float = 2.0, widths=(0.1, 0.5, 1.0, 2.0), preprocessing=None,
                 context_preprocessing=None, **kwargs):
        super().__init__(preprocessing=preprocessing, context_preprocessing=context_preprocessing,
                         context_dim=n_detector, **kwargs)
        if dim < max(n_parton, n_detector):
            raise ValueError(f"eINN dim {dim} must be >= the parton ({n_parton}) and detector ({n_detector}) widths")
        self.n_parton, self.n_detector, self.dim = int(n_parton), int(n_detector), int(dim)
        self.n_features = self.n_parton
        self.widths = tuple(float(w) for w in widths)
        self.transform = _chain(self.dim, 0, blocks, hidden, layers, clamp)
        self.noise_seed = keras.random.SeedGenerator()
        self._trackers = {k: keras.metrics.Mean(name=k) for k in ("loss", "mse", "mmd_forward", "mmd_inverse")}
        self.built = True

    def compile(self, optimizer=None, **kwargs):
        super().compile(**kwargs)
        self.optimizer = optimizer or keras.optimizers.Adam(1e-3)
        if not self.optimizer.built:
            self.optimizer.build(self.transform.trainable_weights)

    @property
    def metrics(self):
        return list(self._trackers.values())

    @property
    def step(self) -> int:
        return 0 if getattr(self, "optimizer", None) is None else int(self.optimizer.iterations.numpy())

    def state_variables(self) -> list:
        opt = getattr(self, "optimizer", None)
        return list(self.transform.weights) + (list(opt.variables) if opt is not None else [])

    def _mmd(self, a, b, d):
        # kernel widths in units of sqrt(d): the typical distance of two standard-normal points in d dimensions
        return sum(mmd2(a, b, w * float(np.sqrt(d)), "gaussian", lib=ops) for w in self.widths)

    def losses_of(self, xp, xd, training=False):
        """The three loss terms of a batch (parton ``(B, n_parton)``, detector ``(B, n_detector)``): the forward
        MSE on the detector part, the forward MMD of the detector-side noise against N(0, 1), and the inverse MMD
        of the unfolded parton part against the batch's partons plus that of the parton-side noise against
        N(0, 1) (each MMD on its own block, so that the 10 parton dimensions are not drowned in the noise's)."""
        b = ops.shape(xp)[0]
        n_rp, n_rd = self.dim - self.n_parton, self.dim - self.n_detector
        rp = keras.random.normal((b, n_rp), seed=self.noise_seed)
        fwd, _ = self.transform.forward(ops.concatenate([xp, rp], axis=1), None, training=training)
        mse = ops.mean(ops.square(fwd[:, :self.n_detector] - xd))
        mmd_f = self._mmd(fwd[:, self.n_detector:], keras.random.normal((b, n_rd), seed=self.noise_seed), n_rd)
        rd = keras.random.normal((b, n_rd), seed=self.noise_seed)
        inv, _ = self.transform.inverse(ops.concatenate([xd, rd], axis=1), None, training=training)
        mmd_i = (self._mmd(inv[:, :self.n_parton], xp, self.n_parton)
                 + self._mmd(inv[:, self.n_parton:], keras.random.normal((b, n_rp), seed=self.noise_seed), n_rp))
        return mse, mmd_f, mmd_i

    def train_step(self, data):
        xp, xd = data[0] if len(data) == 1 else data[:2]
        xp, xd = ops.cast(xp, "float32"), ops.cast(xd, "float32")
        variables = self.transform.trainable_weights
        with tf.GradientTape() as tape:
            mse, mmd_f, mmd_i = self.losses_of(xp, xd, training=True)
            loss = mse + mmd_f + mmd_i
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        for k, v in (("loss", loss), ("mse", mse), ("mmd_forward", mmd_f), ("mmd_inverse", mmd_i)):
            self._trackers[k].update_state(v)
        return {k: t.result() for k, t in self._trackers.items()}

    def call(self, inputs, training=False):
        return self.transform.forward(inputs, None, training=training)[0]

    def _sample_scaled(self, n, context, seed, batch_size):
        rd = np.random.default_rng(seed).standard_normal((n, self.dim - self.n_detector)).astype(np.float32)
        out = []
        for s in range(0, n, batch_size):
            z = np.concatenate([context[s:s + batch_size], rd[s:s + batch_size]], axis=1)
            out.append(np.asarray(self.transform.inverse(ops.convert_to_tensor(z), None)[0])[:, :self.n_parton])
        return np.concatenate(out) if out else np.zeros((0, self.n_parton), np.float32)


def build_model(name: str, recipe: Unfolding, parton_pp: Pipeline, detector_pp: Pipeline):
    """The compiled network ``name`` (``MODELS``) of the recipe, with the fitted pipelines attached (so ``sample``
    takes the detector event and returns the parton event in the ``*_array`` spaces)."""
    n_p, n_d = len(PARTON_NAMES), len(DETECTOR_NAMES)
    if name == "cinn":
        model = build_cinn_flow(n_p, n_d, blocks=recipe.cinn_blocks, hidden_features=recipe.cinn_hidden,
                                num_layers=recipe.cinn_layers, clamp=recipe.cinn_clamp, preprocessing=parton_pp,
                                context_preprocessing=detector_pp, name="cinn")
        model.compile(keras.optimizers.Adam(recipe.cinn_lr))
    elif name == "einn":
        model = NoiseExtendedINN(n_p, n_d, recipe.einn_dim, recipe.einn_blocks, recipe.einn_hidden, 2,
                                 recipe.cinn_clamp, recipe.einn_mmd_widths, preprocessing=parton_pp,
                                 context_preprocessing=detector_pp)
        model.compile(keras.optimizers.Adam(recipe.einn_lr))
    elif name == "fcgan":
        gen = mlp(recipe.gan_latent + n_d, recipe.gan_widths, n_p, "leaky_relu", name="generator")
        critic = mlp(n_p + n_d, recipe.gan_widths, 1, "leaky_relu", name="critic")
        model = GAN(gen, critic, recipe.gan_latent, objective=get_objective("bce_roth", weight=recipe.gan_roth_weight),
                    context_dim=n_d, preprocessing=parton_pp, context_preprocessing=detector_pp)
        model.compile(keras.optimizers.Adam(recipe.gan_lr, beta_1=0.5, beta_2=0.9),
                      keras.optimizers.Adam(recipe.gan_lr, beta_1=0.5, beta_2=0.9))
    else:
        raise ValueError(f"unknown model {name!r}; choose one of {MODELS}")
    return model


def unfold(model, detector: np.ndarray, m: int, seed: int) -> np.ndarray:
    """``(n, m, 10)``: m parton events for each of the ``(n, 25)`` detector events."""
    n = len(detector)
    out = model.sample(n * m, context=np.repeat(detector, m, axis=0), seed=seed)
    return np.asarray(out).reshape(n, m, -1)


# ------------------------------------------------------------------------------------------------------ report
def write_figures(post: dict, truth_post: float, curves: dict, by_jets: dict, run: Run, prov: dict) -> None:
    """fig19: the posterior of one event (pT_q1) and the calibration curves; fig20: pT_q1, pT_q2, pT_ll and m_qq,
    truth vs unfolded (cINN, one unfolding per test pair), stacked by detector jet multiplicity."""
    import matplotlib.pyplot as plt

    colours = {"cinn": "tab:red", "einn": "tab:blue", "fcgan": "tab:green"}
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5))
    hi = max(np.percentile(post.get("cinn", np.concatenate(list(post.values()))), 99.5), truth_post * 1.3)
    bins = np.linspace(0, hi, 60)
    for name, v in post.items():
        a.hist(v, bins=bins, histtype="step", color=colours[name], density=True, label=name)
    a.axvline(truth_post, color="k", ls="--", label="parton truth")
    a.set_xlabel("pT of the leading quark [GeV]")
    a.set_title(f"one event, {len(next(iter(post.values())))} unfoldings", fontsize="small")
    a.legend(fontsize="small")
    b.plot([0, 1], [0, 1], color="gray", lw=0.8)
    for name, c in curves.items():
        b.plot([0, *DECILES, 1], [0, *c, 1], "o-", color=colours[name], ms=3, label=name)
    b.set_xlim(0, 1)
    b.set_ylim(0, 1)
    b.set_xlabel("quantile q")
    b.set_ylabel("fraction of pairs with truth below the q-quantile")
    b.legend(fontsize="small")
    fig.suptitle(f"ZW unfolding, calibration of pT_q1; preset {prov['preset']}, seed {prov['seed']}",
                 fontsize="small")
    plotting.save_figure(fig, run / "fig19")

    obs = ("pt_q1", "pt_q2", "pt_ll", "m_qq")
    fig, axes = plt.subplots(1, len(obs), figsize=(4.2 * len(obs), 4))
    stack_colours = {2: "tab:blue", 3: "tab:orange", 4: "tab:green"}
    for ax, o in zip(axes, obs):
        hi = np.percentile(np.concatenate([by_jets[k]["truth"][o] for k in by_jets]), 99)
        bins = np.linspace(0, max(hi, 1e-3), 40)
        ks = sorted(by_jets)
        ax.hist([by_jets[k]["unfolded"][o] for k in ks], bins=bins, stacked=True, alpha=0.6,
                color=[stack_colours.get(k, "gray") for k in ks], label=[f"cINN, {k} jets" for k in ks])
        ax.hist(np.concatenate([by_jets[k]["truth"][o] for k in ks]), bins=bins, histtype="step", color="k",
                label="parton truth")
        ax.set_xlim(bins[0], bins[-1])
        ax.set_xlabel(o + " [GeV]")
    axes[0].legend(fontsize="small")
    fig.suptitle("parton level unfolded by the cINN, stacked by detector jet multiplicity (R Fig. 20)",
                 fontsize="small")
    plotting.save_figure(fig, run / "fig20")


def write_resonance_figure(resonance: dict, mass: float, run: Run, prov: dict) -> None:
    """fig18: the four-parton mass of the W' events (truth and unfolded by each network) beside the SM test pairs'
    (truth and cINN)."""
    import matplotlib.pyplot as plt

    colours = {"cinn": "tab:red", "einn": "tab:blue", "fcgan": "tab:green"}
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    bins = np.linspace(150, 1.6 * mass, 60)
    ax.hist(resonance["sm_truth_m_zw"], bins=bins, histtype="stepfilled", color="lightgray", density=True,
            label="SM ZW truth (test)")
    ax.hist(resonance["sm_cinn_m_zw"], bins=bins, histtype="step", color="gray", ls="--", density=True,
            label="SM ZW, cINN")
    ax.hist(resonance["cinn"]["m_zw_truth"], bins=bins, histtype="step", color="k", lw=2, density=True,
            label=f"W' ({mass:g} GeV) truth")
    for m in MODELS:
        ax.hist(resonance[m]["m_zw_unfolded"], bins=bins, histtype="step", color=colours[m], density=True,
                label=f"W', {m}")
    ax.set_xlabel("m_ZW of the four partons [GeV]")
    ax.legend(fontsize="small")
    ax.set_title(f"injected resonance, never seen in training; preset {prov['preset']}, seed {prov['seed']}",
                 fontsize="small")
    plotting.save_figure(fig, run / "fig18")


def main(argv=None) -> dict:
    """The command line (``--preset --out --seed``; budget options for tests and studies)."""
    p = report.parser(__doc__)
    p.add_argument("--events", type=int, help="generated Pythia events (preset: 60000 quick)")
    p.add_argument("--steps", type=int, help="training steps per network")
    p.add_argument("--n-calib", type=int, help="test pairs of the calibration curve (preset 1500)")
    p.add_argument("--n-unfold", type=int, help="unfoldings per pair (preset 60)")
    p.add_argument("--n-posterior", type=int, help="unfoldings of the single event (preset 3200)")
    p.add_argument("--data-dir", type=Path, default=DATA_DIR, help="sample cache")
    p.add_argument("--resonance-mass", type=float, default=0.0,
                   help="also unfold W' -> WZ events of this mass [GeV], never seen in training (0: skip)")
    p.add_argument("--resonance-events", type=int, default=10_000, help="generated W' events")
    args = p.parse_args(argv)
    run, recipe = report.start(args, PART, UNFOLDING_PRESETS, events=args.events, steps=args.steps,
                               n_calib=args.n_calib, n_unfold=args.n_unfold, n_posterior=args.n_posterior)
    prov = report.provenance(recipe, PART, presets=UNFOLDING_PRESETS)
    t0 = time.time()
    df = sample(recipe, args.data_dir)
    xp, xd, ref = parton_array(df), detector_array(df), lepton_reference(df)
    n_jets = df["n_jets"].to_numpy().astype(int)
    idx = np.random.default_rng(recipe.sample_seed).permutation(len(df))
    n_test = int(round(recipe.test_fraction * len(df)))
    n_val = int(round(recipe.val_fraction * len(df)))
    test, val_idx, train = idx[:n_test], idx[n_test:n_test + n_val], idx[n_test + n_val:]
    parton_pp = Pipeline([Standardise()], names=list(PARTON_NAMES)).fit(xp[train])
    detector_pp = Pipeline([Standardise()], names=list(DETECTOR_NAMES)).fit(xd[train])
    data = (parton_pp.transform(xp[train]).astype(np.float32), detector_pp.transform(xd[train]).astype(np.float32))
    val = (parton_pp.transform(xp[val_idx]).astype(np.float32),
           detector_pp.transform(xd[val_idx]).astype(np.float32))
    print(f"{len(train)} training, {n_val} validation, {n_test} test pairs ({time.time() - t0:.0f} s)", flush=True)

    n_calib = min(recipe.n_calib, n_test)
    calib = test[:n_calib]
    truth = parton_observables(xp[calib], ref[calib])
    post_index = int(calib[0])
    one_event = slice(post_index, post_index + 1)
    truth_post = parton_observables(xp[one_event], ref[one_event])["pt_q1"][0]
    curves, max_dev, qmax_dev, ranks, posts, marg, times = {}, {}, {}, {}, {}, {}, {}
    by_jets, selected_step = {}, None
    resonance, res_df = {}, None
    if args.resonance_mass > 0:
        res_df = resonance_sample(args.resonance_mass, args.resonance_events, recipe.sample_seed + 7, args.data_dir)
        print(f"W' ({args.resonance_mass:g} GeV): {len(res_df)} selected pairs ({time.time() - t0:.0f} s)",
              flush=True)
    for k, name in enumerate(MODELS):
        t1 = time.time()
        sub = Run(run / name)
        select = {}
        if name == "cinn":  # checkpoint selection on the validation pairs' NLL (Eq. (10)): no overtraining
            select = dict(evaluate=lambda mdl: {"val_nll": float(-np.mean(mdl.log_prob_numpy(*val)))},
                          eval_every=max(recipe.steps // 16, 1), monitor="val_nll", mode="min", restore_best=True)
        trained = training.train(lambda: build_model(name, recipe, parton_pp, detector_pp), data, sub,
                                 steps=recipe.steps, batch_size=min(recipe.batch_size, len(train)),
                                 seed=recipe.seed + 100 * k, steps_per_epoch=max(recipe.steps // 16, 1),
                                 keep_checkpoints=1, verbose=0, **select)
        model = trained.model
        # the run's cumulative training time (a resumed, finished run trains no further)
        results = Path(sub / "results.json")
        times[name] = float(json.loads(results.read_text()).get("train_seconds", time.time() - t1)
                            if results.exists() else time.time() - t1)
        if name == "cinn":
            selected_step = getattr(trained, "best_step", None)
        seed = recipe.seed + 1000 + k
        gen = parton_observables(unfold(model, xd[calib], recipe.n_unfold, seed), ref[calib])
        curves[name] = calibration_curve(truth["pt_q1"], gen["pt_q1"])
        max_dev[name] = max_deviation(curves[name])
        qmax_dev[name] = max_deviation(calibration_curve(truth["pt_qmax"], gen["pt_qmax"]))
        ranks[name] = {o: rank_chi2(truth[o], gen[o]) for o in RANK_OBSERVABLES}
        chi2 = sum(r["chi2"] for r in ranks[name].values())
        ndf = sum(r["ndf"] for r in ranks[name].values())
        ranks[name]["all"] = {"chi2": chi2, "ndf": ndf, "chi2_over_ndf": chi2 / ndf,
                              "p_value": float(stats.chi2.sf(chi2, ndf))}
        posts[name] = parton_observables(unfold(model, xd[one_event], recipe.n_posterior, seed + 7),
                                         ref[one_event])["pt_q1"][0]
        one = {o: v[:, 0] for o, v in gen.items()}  # one unfolding per pair: the distribution level
        marg[name] = {o: float(stats.wasserstein_distance(truth[o], one[o]) / np.std(truth[o]))
                      for o in ("pt_q1", "pt_q2", "pt_lm", "m_qq", "pt_ll")}
        if name == "cinn":
            for nj in (2, 3, 4):
                sel = n_jets[calib] == nj
                if sel.any():
                    by_jets[nj] = {"truth": {o: v[sel] for o, v in truth.items()},
                                   "unfolded": {o: v[sel] for o, v in one.items()}}
        if res_df is not None:
            resonance[name] = resonance_test(model, res_df, args.resonance_mass, n_calib, recipe.n_unfold, seed + 11)
            print(f"{name} on the W': m_ZW median truth {resonance[name]['m_zw_median_truth']:.0f}, unfolded "
                  f"{resonance[name]['m_zw_median_unfolded']:.0f} GeV; in +-10 %: truth "
                  f"{resonance[name]['fraction_in_window_truth']:.2f}, unfolded "
                  f"{resonance[name]['fraction_in_window_unfolded']:.2f}", flush=True)
            if name == "cinn":
                resonance["sm_truth_m_zw"] = four_body_mass(truth)
                resonance["sm_cinn_m_zw"] = four_body_mass({o: v[:, 0] for o, v in gen.items()})
        width = np.mean(np.std(gen["pt_q1"], axis=1) / truth["pt_q1"])
        print(f"{name}: trained {recipe.steps} steps in {times[name]:.0f} s; calibration max deviation "
              f"{max_dev[name]:.3f}; curve {np.round(curves[name], 3).tolist()}; mean posterior std/truth of "
              f"pT_q1 {width:.3f}; rank chi2/ndf (all) {ranks[name]['all']['chi2_over_ndf']:.2f} "
              f"({time.time() - t0:.0f} s)", flush=True)

    rows = [{"model": m, "calibration max abs(C(q) - q)": max_dev[m],
             **{f"C({q})": float(c) for q, c in zip(DECILES, curves[m])},
             "max dev. pT_qmax": qmax_dev[m], "rank chi2/ndf (all)": ranks[m]["all"]["chi2_over_ndf"],
             "rank chi2/ndf pT_q1": ranks[m]["pt_q1"]["chi2_over_ndf"],
             "W1/std pT_q1": marg[m]["pt_q1"], "train s": times[m]} for m in MODELS]
    print(report.write_table(pd.DataFrame(rows), run, "unfolding", prov,
                             f"calibration of pT_q1 on {n_calib} test pairs x {recipe.n_unfold} unfoldings "
                             f"({len(train)} training pairs, {recipe.steps} steps)"))
    write_figures(posts, truth_post, curves, by_jets, run, prov)
    jets_table = {str(nj): {"pairs": int(len(v["truth"]["pt_q1"])),
                            "truth_pt_q1_mean": float(np.mean(v["truth"]["pt_q1"])),
                            "cinn_pt_q1_mean": float(np.mean(v["unfolded"]["pt_q1"])),
                            "truth_pt_ll_mean": float(np.mean(v["truth"]["pt_ll"])),
                            "cinn_pt_ll_mean": float(np.mean(v["unfolded"]["pt_ll"]))}
                  for nj, v in by_jets.items()}
    out = {"calibration_max_deviation": max_dev, "calibration_max_deviation_pt_qmax": qmax_dev,
           "calibration_curves": {m: dict(zip(map(str, DECILES), map(float, c))) for m, c in curves.items()},
           "calibration_definition": "C(q) = fraction of test pairs whose parton pT_q1 lies below the q-quantile "
                                     "of its n_unfold unfolded values; max over the deciles of |C(q) - q|",
           "rank_chi2": ranks, "w1_over_std_one_unfolding": marg,
           "by_jet_multiplicity": jets_table,
           "posterior_one_event": {"truth_pt_q1": float(truth_post),
                                   **{m: {"mean": float(np.mean(v)), "std": float(np.std(v)),
                                          "truth_quantile": float(np.mean(v < truth_post))}
                                      for m, v in posts.items()}},
           "n_calib": n_calib, "n_unfold": recipe.n_unfold, "n_posterior": recipe.n_posterior,
           "train_pairs": len(train), "validation_pairs": n_val, "test_pairs": n_test,
           "cinn_selected_step": selected_step, "train_seconds": times, "seconds": time.time() - t0}
    if resonance:
        write_resonance_figure(resonance, args.resonance_mass, run, prov)
        out["injected_resonance"] = {"wprime_mass": args.resonance_mass, "pairs": len(res_df),
                                     "generated": args.resonance_events,
                                     **{m: {k: v for k, v in resonance[m].items()
                                            if k not in ("m_zw_truth", "m_zw_unfolded")} for m in MODELS}}
    report.write_metrics(run, out, prov)
    return out


if __name__ == "__main__":
    main()
