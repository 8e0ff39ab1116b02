"""FlashSim's checks of a trained jet flow, on the test jets of a run folder (jets neither training nor the
checkpoint selection saw).

    python papers/vaselli/evaluate.py --run runs/vaselli_quick [--oversample 25] [--no-speed]

The flow is rebuilt from the run's own recipe with the checkpoint selected on the validation NLL (best.npz); one
flow jet is drawn per test generator jet (FlashSim's 1-to-1 comparison) and post-processed (``data.postprocess``).
One function per artefact:

| artefact | function |
| --- | --- |
| per target W1, W1 / std(full chain), KS: ``targets.csv``, ``targets.md``; ``targets.png`` | ``target_table``, ``write_targets`` |
| 2-d contours at the 0.5 / 0.9 / 0.99 quantiles: ``contours.png``, coverages | ``contour_coverage``, ``write_contours`` |
| profile and RMS of pT(reco)/pT(gen) against generator pT: ``pt_ratio_profile.csv/.png`` | ``pt_ratio_profile``, ``write_profile`` |
| b-tag discriminant by parton flavour: ``btag_by_flavour.png`` | ``write_btag_by_flavour`` |
| b vs light ROC, flow against full chain: ``btag_roc.csv/.png`` | ``btag_roc``, ``write_roc`` |
| classifier two-sample AUC on (targets + conditioning) | ``classifier`` |
| speed, flow jets/s against full-chain jets/s in this process | ``flow_rate`` (``xla_sampler``), ``full_chain_rate`` |
| oversampling (N flow jets per generator jet, weight 1/N): ``oversampling.png`` | ``oversampling``, ``write_oversampling`` |
| every number: ``metrics.json`` (the issue's key names; headline numbers also in ``results.json``) | ``write_metrics`` |
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from data_prep.flashsim_jets import CONDITIONING
from gan4hep import metrics, plotting
from gan4hep.flows import Flow
from gan4hep.io import atomic_path, markdown_table, write_json
from gan4hep.recipes import deviations, from_dict
from gan4hep.runs import Run

from papers.vaselli import data, model, published
from papers.vaselli.recipe import PAPER, Recipe, preset_name

#: 2-d pairs of FlashSim's contour plots [FS docs/results.md: taggers among themselves, qgl vs nConstituents,
#: pT vs mass], plus two of our energy fractions
PAIRS = (("btag", "ctag"), ("qgl", "n_constituents"), ("pt", "mass"), ("ch_had_ef", "ne_em_ef"))
QUANTILES = (0.5, 0.9, 0.99)
#: generator-jet pT bins of the pT-ratio profile, GeV
PT_EDGES = (15.0, 20.0, 30.0, 40.0, 50.0, 70.0, 100.0, 150.0, 200.0, 300.0, 500.0, np.inf)
#: parton-flavour classes of the b-tag checks [FS docs/results.md: btagDeepB by partonFlavour, b vs udsg ROC]
FLAVOURS = {"b": (5,), "c": (4,), "udsg": (1, 2, 3, 21)}


# ------------------------------------------------------------------------------------------------- the flow
def load_run(run: Run) -> tuple[Flow, Recipe, dict]:
    """The run's flow, rebuilt from its recipe and preprocessing with the selected (best-on-validation) weights,
    its recipe and sample.json.

    Raises:
        FileNotFoundError: not a run folder, or no checkpoint yet.
    """
    recipe = from_dict(Recipe, run.recipe(), base=PAPER)
    info = data.load_info(run)
    spe = int(run.results().get("steps_per_epoch") or 1)  # the schedule; checkpoints hold the optimizer state too
    flow = model.build_compiled(recipe, len(info["targets"]), len(CONDITIONING), spe, run.load_preprocessing(),
                                run.load_preprocessing(data.CONTEXT_PREPROCESSING))
    run.restore(flow)
    return flow, recipe, info


def generate(flow, conditioning: np.ndarray, names, quantum: float, seed: int, repeats: int = 1,
             area_grid=None) -> np.ndarray:
    """``repeats`` post-processed flow jets per row of the ``(n, 14)`` physical conditioning, row-major
    (``repeats`` consecutive rows per generator jet); ``quantum`` and ``area_grid`` as ``data.postprocess``.

    Raises:
        RuntimeError: the flow emits non-finite values.
    """
    context = np.repeat(np.asarray(conditioning, np.float64), int(repeats), axis=0)
    x = flow.sample(len(context), context=context, seed=seed)
    if not np.all(np.isfinite(x)):
        raise RuntimeError(f"the flow produced {int((~np.isfinite(x)).sum())} non-finite values")
    return data.postprocess(x, names, quantum, area_grid)


def with_kinematics(frame: pd.DataFrame) -> pd.DataFrame:
    """Add reconstructed pt and mass from the ratios and the generator jet [FS generation/nbd_func.py:
    pT = ptRatio x GenJet pT, mass = massRatio x GenJet mass] (our mass ratio divides by max(m_gen, 0.01 GeV))."""
    out = frame.copy()
    out["pt"] = frame["pt_ratio"] * frame["gen_pt"]
    out["mass"] = frame["mass_ratio"] * np.maximum(frame["gen_mass"], 0.01)
    return out


@dataclasses.dataclass
class Comparison:
    """The test jets of the full chain and of the flow (same generator jets, physical units).

    Attributes:
        test: full-chain test jets (conditioning, targets, pt, mass, ...).
        flow: the flow's jets for the same conditioning (targets post-processed; pt and mass from the ratios).
        validation: full-chain validation jets.
        names: the targets.
    """

    test: pd.DataFrame
    flow: pd.DataFrame
    validation: pd.DataFrame
    names: list


def compare(flow, test: pd.DataFrame, validation: pd.DataFrame, names, quantum: float, seed: int,
            area_grid=None) -> Comparison:
    """One flow jet per test generator jet."""
    gen = generate(flow, test[list(CONDITIONING)].to_numpy(np.float64), names, quantum, seed, area_grid=area_grid)
    frame = test[list(CONDITIONING)].reset_index(drop=True).copy()
    frame[list(names)] = gen
    return Comparison(with_kinematics(test.reset_index(drop=True)), with_kinematics(frame), validation, list(names))


# ------------------------------------------------------------------------------------------------- 1-d
def target_table(test: pd.DataFrame, gen: pd.DataFrame, names) -> pd.DataFrame:
    """Per target: W1 (target units), W1 / std of the full chain, KS, means, and whether it is continuous."""
    report = metrics.fidelity_report(test[list(names)].to_numpy(), gen[list(names)].to_numpy(), list(names),
                                     classifier=False)
    table = report[["mean_ref", "mean_gen", "wasserstein", "wasserstein_over_std", "ks"]].copy()
    table.insert(0, "continuous", [n not in data.DISCRETE for n in names])
    return table


def write_targets(run: Run, comp: Comparison, table: pd.DataFrame, recipe: Recipe) -> list[Path]:
    """``targets.csv``, ``targets.md`` (with the run's description) and ``targets.png`` (histograms with ratio)."""
    table.to_csv(run / "targets.csv")
    head = [f"# FlashSim jet targets, flow vs our full chain (preset: {preset_name(recipe)})", "",
            describe_run(run, recipe), "",
            "W1 in the target's units; W1 / std divides by the full chain's standard deviation; KS the two-sample "
            "Kolmogorov-Smirnov statistic. One flow jet per test generator jet.", ""]
    with atomic_path(run / "targets.md") as tmp:
        Path(tmp).write_text("\n".join(head) + "\n" + markdown_table(table.reset_index()) + "\n")
    fig, _ = plotting.grid_hist_ratio(comp.test, comp.flow, list(comp.names), bins=40, ncols=4,
                                      ref_label="Full chain", gen_label="Flow", show_means=False)
    return plotting.save_figure(fig, run / "targets", formats=("png",))


# ------------------------------------------------------------------------------------------------- 2-d
def _levels(counts: np.ndarray, quantiles) -> list[float]:
    """Density levels of a 2-d histogram whose super-level sets hold the given fractions of the entries."""
    flat = np.sort(counts.ravel())[::-1]
    cum = np.cumsum(flat) / max(flat.sum(), 1e-300)
    return [float(flat[min(np.searchsorted(cum, q), len(flat) - 1)]) for q in quantiles]


def _hist2d(x, y, edges):
    from scipy.ndimage import gaussian_filter

    counts, _, _ = np.histogram2d(x, y, bins=edges)
    return gaussian_filter(counts / max(counts.sum(), 1), 1.0)


def pair_edges(test: pd.DataFrame, a: str, b: str, bins: int = 40):
    """Common 2-d bins of a pair: the 0.1 %-99.9 % range of the full chain in each coordinate."""
    return tuple(np.linspace(*np.quantile(test[c], [0.001, 0.999]), bins + 1) if test[c].nunique() > 1
                 else np.linspace(test[c].min() - 0.5, test[c].max() + 0.5, bins + 1) for c in (a, b))


def contour_coverage(test: pd.DataFrame, gen: pd.DataFrame, pairs=PAIRS, quantiles=QUANTILES) -> dict:
    """For each pair: the fraction of flow jets (and of full-chain jets) inside the full chain's q-contour
    (super-level set of its smoothed 2-d density holding the fraction q), per q. A flow with the right 2-d shape
    gives about q."""
    out = {}
    for a, b in pairs:
        edges = pair_edges(test, a, b)
        ref = _hist2d(test[a], test[b], edges)
        ix = np.clip(np.digitize(gen[a], edges[0]) - 1, 0, len(edges[0]) - 2)
        iy = np.clip(np.digitize(gen[b], edges[1]) - 1, 0, len(edges[1]) - 2)
        jx = np.clip(np.digitize(test[a], edges[0]) - 1, 0, len(edges[0]) - 2)
        jy = np.clip(np.digitize(test[b], edges[1]) - 1, 0, len(edges[1]) - 2)
        entry = {}
        for q, level in zip(quantiles, _levels(ref, quantiles)):
            entry[str(q)] = {"flow": float(np.mean(ref[ix, iy] >= level)),
                             "full_chain": float(np.mean(ref[jx, jy] >= level))}
        out[f"{a}:{b}"] = entry
    return out


def write_contours(run: Run, comp: Comparison, pairs=PAIRS, quantiles=QUANTILES) -> list[Path]:
    """``contours.png``: per pair, the 0.5 / 0.9 / 0.99 contours of the full chain (black) and the flow (red)."""
    fig = Figure(figsize=(4.8 * len(pairs), 4.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(pairs))
    for ax, (a, b) in zip(np.atleast_1d(axes), pairs):
        edges = pair_edges(comp.test, a, b)
        centres = [0.5 * (e[1:] + e[:-1]) for e in edges]
        for frame, colour, label in ((comp.test, "black", "full chain"), (comp.flow, "tab:red", "flow")):
            h = _hist2d(frame[a], frame[b], edges)
            levels = sorted(set(_levels(h, quantiles)))
            if len(levels) > 0 and max(levels) > 0:
                ax.contour(centres[0], centres[1], h.T, levels=levels, colors=colour, linewidths=1.2)
            ax.plot([], [], color=colour, label=label)
        ax.set_xlabel(a)
        ax.set_ylabel(b)
        ax.legend(fontsize="small", title="0.5 / 0.9 / 0.99", title_fontsize="small")
    fig.tight_layout()
    return plotting.save_figure(fig, run / "contours", formats=("png",))


# ------------------------------------------------------------------------------------------------- conditioning
def pt_ratio_profile(test: pd.DataFrame, gen: pd.DataFrame, edges=PT_EDGES, min_jets: int = 50) -> pd.DataFrame:
    """Per generator-pT bin: jets, mean and RMS (standard deviation) of pT(reco)/pT(gen) of the full chain and the
    flow (FlashSim's profile with RMS error bars). Bins with fewer than ``min_jets`` are left out."""
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = ((test["gen_pt"] >= lo) & (test["gen_pt"] < hi)).to_numpy()
        if sel.sum() < min_jets:
            continue
        r, g = test["pt_ratio"].to_numpy()[sel], gen["pt_ratio"].to_numpy()[sel]
        rows.append({"gen_pt_low": lo, "gen_pt_high": hi, "jets": int(sel.sum()), "mean_full_chain": r.mean(),
                     "mean_flow": g.mean(), "rms_full_chain": r.std(), "rms_flow": g.std()})
    return pd.DataFrame(rows, columns=["gen_pt_low", "gen_pt_high", "jets", "mean_full_chain", "mean_flow",
                                       "rms_full_chain", "rms_flow"])


def write_profile(run: Run, profile: pd.DataFrame) -> list[Path]:
    """``pt_ratio_profile.csv`` and ``.png`` (mean with RMS bars; RMS alone below; no figure without a filled
    bin)."""
    profile.to_csv(run / "pt_ratio_profile.csv", index=False)
    if profile.empty:
        return []
    fig = Figure(figsize=(6.5, 7))
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    hi = np.where(np.isfinite(profile["gen_pt_high"]), profile["gen_pt_high"], 2 * profile["gen_pt_low"])
    centre = np.sqrt(profile["gen_pt_low"] * hi)
    for key, colour, shift in (("full_chain", "black", 0.97), ("flow", "tab:red", 1.03)):
        top.errorbar(centre * shift, profile[f"mean_{key}"], yerr=profile[f"rms_{key}"], fmt="o", color=colour,
                     label=key.replace("_", " "), capsize=2)
        bottom.plot(centre, profile[f"rms_{key}"], "o-", color=colour, label=key.replace("_", " "))
    top.set_ylabel(r"$p_T^{reco}/p_T^{gen}$ (mean, RMS bars)")
    bottom.set_ylabel(r"RMS of $p_T^{reco}/p_T^{gen}$")
    bottom.set_xlabel(r"generator-jet $p_T$ [GeV]")
    bottom.set_xscale("log")
    top.legend()
    fig.tight_layout()
    return plotting.save_figure(fig, run / "pt_ratio_profile", formats=("png",))


def flavour_masks(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Parton-flavour classes (``FLAVOURS``, |parton_flavour|) as boolean masks."""
    pf = np.abs(frame["parton_flavour"].to_numpy()).astype(int)
    return {k: np.isin(pf, v) for k, v in FLAVOURS.items()}


def write_btag_by_flavour(run: Run, comp: Comparison) -> tuple[list[Path], dict]:
    """``btag_by_flavour.png``: the b-tag discriminant of full chain and flow for b, c and udsg jets (parton
    flavour); returns the paths and W1 per flavour."""
    masks = flavour_masks(comp.test)
    fig = Figure(figsize=(6.5, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    edges = np.linspace(0, 1, 41)
    w1 = {}
    for (name, mask), colour in zip(masks.items(), ("tab:red", "tab:green", "tab:blue")):
        if mask.sum() < 2:
            continue
        ref, gen = comp.test["btag"].to_numpy()[mask], comp.flow["btag"].to_numpy()[mask]
        ax.hist(ref, edges, density=True, histtype="step", color=colour, ls="-", label=f"{name} full chain")
        ax.hist(gen, edges, density=True, histtype="step", color=colour, ls="--", label=f"{name} flow")
        w1[name] = float(metrics.wasserstein(ref, gen))
    ax.set_xlabel("btag (our discriminant)")
    ax.set_ylabel("density")
    ax.set_yscale("log")
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    return plotting.save_figure(fig, run / "btag_by_flavour", formats=("png",)), w1


def btag_roc(comp: Comparison, n_boot: int = 50, seed: int = 0) -> dict:
    """ROC AUC of the b-tag discriminant, b vs udsg jets by parton flavour, for the full chain and the flow on the
    same generator jets, with bootstrap (over jets, paired) uncertainties of each and of their difference; and the
    curves."""
    from sklearn.metrics import roc_auc_score, roc_curve

    masks = flavour_masks(comp.test)
    sel = masks["b"] | masks["udsg"]
    y = masks["b"][sel].astype(int)
    ref, gen = comp.test["btag"].to_numpy()[sel], comp.flow["btag"].to_numpy()[sel]
    if y.min() == y.max():
        raise ValueError("the test jets need both b and udsg jets for the ROC")
    auc = {"full_chain": float(roc_auc_score(y, ref)), "flow": float(roc_auc_score(y, gen))}
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() == y[i].max():
            continue
        boot.append((roc_auc_score(y[i], ref[i]), roc_auc_score(y[i], gen[i])))
    boot = np.asarray(boot)
    curves = {}
    for key, score in (("full_chain", ref), ("flow", gen)):
        fpr, tpr, _ = roc_curve(y, score)
        curves[key] = (fpr, tpr)
    return {**auc, "difference": auc["flow"] - auc["full_chain"],
            "full_chain_uncertainty": float(boot[:, 0].std(ddof=1)), "flow_uncertainty": float(boot[:, 1].std(ddof=1)),
            "difference_uncertainty": float((boot[:, 1] - boot[:, 0]).std(ddof=1)), "b_jets": int(y.sum()),
            "udsg_jets": int((1 - y).sum()), "curves": curves,
            "definition": "b (|parton_flavour| 5) vs udsg (1, 2, 3, 21) jets of the test set, our btag"}


def write_roc(run: Run, roc: dict) -> list[Path]:
    """``btag_roc.png`` (light-jet efficiency against b efficiency, log scale) and ``btag_roc.csv``."""
    rows = [pd.DataFrame({"sample": k, "udsg_efficiency": f, "b_efficiency": t}) for k, (f, t) in roc["curves"].items()]
    pd.concat(rows).to_csv(run / "btag_roc.csv", index=False)
    fig = Figure(figsize=(6, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key, colour in (("full_chain", "black"), ("flow", "tab:red")):
        f, t = roc["curves"][key]
        ax.plot(t, np.maximum(f, 1e-5), color=colour, label=f"{key.replace('_', ' ')} (AUC {roc[key]:.3f})")
    ax.set_yscale("log")
    ax.set_xlabel("b-jet efficiency")
    ax.set_ylabel("udsg-jet efficiency")
    ax.legend()
    fig.tight_layout()
    return plotting.save_figure(fig, run / "btag_roc", formats=("png",))


def classifier(comp: Comparison, seed: int, n_splits: int = 5) -> dict:
    """Classifier two-sample AUC of (targets + conditioning), flow vs full chain on the test jets, as the mean and
    standard deviation over ``n_splits`` random halvings (``gan4hep.metrics.classifier_two_sample_test``).

    The two samples share their conditioning jet by jet, so a classifier could learn a generator jet from one
    class and meet its twin in the other; to prevent it the test generator jets are cut at random into halves A and
    B, and the full chain's jets of A are compared with the flow's jets of B. The same comparison of the full
    chain's A with its own B is the floor a perfect flow would reach (``floor_auc``)."""
    cols = list(comp.names) + list(CONDITIONING)
    perm = np.random.default_rng(seed).permutation(len(comp.test))
    a, b = perm[:len(perm) // 2], perm[len(perm) // 2:]
    ref = comp.test[cols].to_numpy()
    res = metrics.classifier_two_sample_test(ref[a], comp.flow[cols].to_numpy()[b], n_splits=n_splits, seed=seed)
    floor = metrics.classifier_two_sample_test(ref[a], ref[b], n_splits=n_splits, seed=seed)
    return {"auc": res["auc"], "auc_uncertainty": res["auc_uncertainty"], "aucs": res["aucs"],
            "floor_auc": floor["auc"], "floor_auc_uncertainty": floor["auc_uncertainty"],
            "jets_per_class": int(len(a)),
            "definition": "full chain (jets of half A of the test generator jets) vs flow (half B), targets + "
                          "conditioning; floor: full chain A vs full chain B"}


# ------------------------------------------------------------------------------------------------- speed
def _clock():
    return time.perf_counter(), time.process_time()


def xla_sampler(flow, batch_size: int = 8192):
    """``(n, context physical, seed) -> (n, D)`` physical flow jets (before ``data.postprocess``), the inverse
    transform compiled with XLA (``tf.function(jit_compile=True)``) in batches of ``batch_size`` (the last one
    padded, so one compiled shape serves all); the same numbers as ``flow.sample`` up to float rounding."""
    import tensorflow as tf

    def _inverse(z, c):
        return flow.transform.inverse(z, c, training=False)[0]

    inverse = tf.function(_inverse, jit_compile=True, autograph=False)

    def sample(n, context, seed):
        c = flow.context_preprocessing.transform(context) if flow.context_preprocessing is not None else context
        c = np.asarray(c, np.float32)
        z = flow.base.sample(n, seed)
        out = []
        for i in range(0, n, batch_size):
            zi, ci = z[i:i + batch_size], c[i:i + batch_size]
            pad = batch_size - len(zi)
            if pad:
                zi, ci = np.pad(zi, ((0, pad), (0, 0))), np.pad(ci, ((0, pad), (0, 0)))
            out.append(np.asarray(inverse(zi, ci))[:batch_size - pad])
        x = np.concatenate(out).astype(np.float64)
        return flow.preprocessing.inverse_transform(x) if flow.preprocessing is not None else x

    return sample


def flow_rate(flow, conditioning: np.ndarray, seed: int, names=None, quantum: float = 0.0, area_grid=None,
              batch_size: int = 8192) -> dict:
    """Flow jets per second for every row of the physical conditioning, preprocessing in and out and
    ``data.postprocess`` included, after one warm-up call (graph tracing and compilation not counted); wall and
    process CPU time; for ``flow.sample`` (TensorFlow graph) and for ``xla_sampler`` (XLA-compiled), the faster
    one the headline ``jets_per_s``."""
    conditioning = np.asarray(conditioning, np.float64)
    n = len(conditioning)
    post = (lambda x: data.postprocess(x, names, quantum, area_grid)) if names is not None else (lambda x: x)
    xla = xla_sampler(flow, batch_size)
    out = {}
    for key, fn in (("graph", lambda m, c, s: flow.sample(m, context=c, seed=s, batch_size=batch_size)),
                    ("xla", xla)):
        fn(min(n, 256), conditioning[:256], seed)
        w0, c0 = _clock()
        x = post(fn(n, conditioning, seed + 1))
        w1, c1 = _clock()
        out[key] = {"jets": len(x), "wall_s": w1 - w0, "cpu_s": c1 - c0, "jets_per_s": len(x) / (w1 - w0),
                    "jets_per_cpu_s": len(x) / max(c1 - c0, 1e-9)}
    best = max(out, key=lambda k: out[k]["jets_per_s"])
    return {**out[best], "sampler": best, "samplers": out, "batch_size": batch_size}


def full_chain_rate(recipe: Recipe, events: int, seed: int = 99, chunk: int = 100) -> dict:
    """Full-chain jets per second (the rows ``data_prep.flashsim_jets`` makes: Pythia ttbar + hadronisation,
    generator jets, the detector response, reconstruction, matching, taggers), timed over ``events`` events in
    this process after Pythia's initialisation (not counted); wall and process CPU time."""
    from data_prep import runner
    from data_prep.flashsim_jets import (ChargeTable, Detector, GenLevel, flatten_events, process_events,
                                         pileup_settings, pythia_settings)

    det, gen = Detector(), GenLevel()
    pythia = runner.init_pythia(runner.configured_pythia(seed, pythia_settings(recipe.mpi)))
    pu_pythia = None
    if recipe.pileup > 0:
        from data_prep.flashsim_jets import _pileup_batch  # the sample's own pile-up overlay

        pu_pythia = runner.init_pythia(runner.configured_pythia(runner.block_seed(seed, 1), pileup_settings()))
    charge = ChargeTable(pythia)
    rng = np.random.default_rng(seed)
    jets = done = 0
    w0, c0 = _clock()
    while done < events:
        n = min(chunk, events - done)
        batch = pythia.nextBatch(n, errorMode="skip")
        pu = None
        if pu_pythia is not None:
            prt, counts, z = _pileup_batch(pu_pythia, len(batch), recipe.pileup, rng, det)
            pu = (prt, counts, z) if prt is not None else None
        table, _ = process_events(flatten_events(batch.prt, charge, pu), rng, det, gen, first_event=done,
                                  pileup=recipe.pileup > 0)
        jets += len(table)
        done += n
    w1, c1 = _clock()
    return {"events": done, "jets": jets, "wall_s": w1 - w0, "cpu_s": c1 - c0, "jets_per_s": jets / (w1 - w0),
            "jets_per_cpu_s": jets / max(c1 - c0, 1e-9)}


# ------------------------------------------------------------------------------------------------- oversampling
def bin_errors(values: np.ndarray, groups: int, repeats: int, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted histogram of ``groups x repeats`` values (row-major: ``repeats`` per generator jet), each of weight
    1 / repeats, and its per-bin statistical error counting the jets of one generator jet as correlated [FS
    docs/results.md]: error_i = sqrt(sum over generator jets of (sum of its weights in bin i)^2)."""
    v = np.asarray(values, np.float64).reshape(groups, repeats)
    idx = np.clip(np.digitize(v, edges) - 1, 0, len(edges) - 2)
    per_jet = np.zeros((groups, len(edges) - 1))
    np.add.at(per_jet, (np.repeat(np.arange(groups), repeats), idx.ravel()), 1.0 / repeats)
    return per_jet.sum(axis=0), np.sqrt((per_jet ** 2).sum(axis=0))


def oversampling(flow, test: pd.DataFrame, names, quantum: float, factor: int, seed: int,
                 observables=("btag", "pt_ratio"), max_jets: int = 10_000, bins: int = 20, area_grid=None) -> dict:
    """FlashSim's oversampling: ``factor`` flow jets per generator jet (weights 1 / factor) for the first
    ``max_jets`` test generator jets; per observable, the mean relative statistical error of a histogram
    (bins over the full chain's 1-99 % range, only bins with entries) with one jet per generator jet and with
    ``factor``, and their ratio: for a bin of probability p the squared relative error goes from 1 / (n p) to
    (1 / factor + p (1 - 1 / factor)) / (n p), so 1 / sqrt(factor) only for rare bins (the generator-level
    fluctuation stays)."""
    sub = test.iloc[:max_jets]
    x = generate(flow, sub[list(CONDITIONING)].to_numpy(np.float64), names, quantum, seed, repeats=factor,
                 area_grid=area_grid)
    out = {"factor": int(factor), "generator_jets": len(sub), "observables": {}}
    for obs in observables:
        j = list(names).index(obs)
        edges = np.linspace(*np.quantile(test[obs], [0.01, 0.99]), bins + 1)
        h1, e1 = bin_errors(x[::factor, j], len(sub), 1, edges)
        hn, en = bin_errors(x[:, j], len(sub), factor, edges)
        ok = (h1 > 0) & (hn > 0)
        r1, rn = float(np.mean(e1[ok] / h1[ok])), float(np.mean(en[ok] / hn[ok]))
        out["observables"][obs] = {"mean_relative_error_1": r1, f"mean_relative_error_{factor}": rn,
                                   "reduction": rn / r1, "edges": edges.tolist(), "counts_1": h1.tolist(),
                                   "errors_1": e1.tolist(), f"counts_{factor}": hn.tolist(),
                                   f"errors_{factor}": en.tolist()}
    return out


def write_oversampling(run: Run, over: dict) -> list[Path]:
    """``oversampling.png``: relative bin errors with 1 and N flow jets per generator jet."""
    obs = over["observables"]
    n = over["factor"]
    fig = Figure(figsize=(5 * len(obs), 4.2))
    FigureCanvasAgg(fig)
    for ax, (name, o) in zip(np.atleast_1d(fig.subplots(1, len(obs))), obs.items()):
        centre = 0.5 * (np.asarray(o["edges"][1:]) + np.asarray(o["edges"][:-1]))
        for k, colour in ((1, "black"), (n, "tab:red")):
            c, e = np.asarray(o[f"counts_{k}"]), np.asarray(o[f"errors_{k}"])
            ax.plot(centre, np.where(c > 0, e / np.maximum(c, 1e-300), np.nan), "o-", color=colour,
                    label=f"x{k}: mean {o[f'mean_relative_error_{k}']:.3f}")
        ax.set_xlabel(name)
        ax.set_ylabel("relative statistical error per bin")
        ax.set_yscale("log")
        ax.legend(fontsize="small")
    fig.tight_layout()
    return plotting.save_figure(fig, run / "oversampling", formats=("png",))


# ------------------------------------------------------------------------------------------------- the record
def describe_run(run: Run, recipe: Recipe) -> str:
    """A paragraph naming preset, flow, schedule, selection, sample sizes, date and machine."""
    results, info = run.results(), data.load_info(run)
    seconds = results.get("train_seconds")
    took = "unknown time" if seconds is None else f"{seconds / 60:.1f} min"
    differs = deviations(recipe, PAPER)
    text = (f"preset **{preset_name(recipe)}** (seed {recipe.seed}); "
            f"{model.describe(recipe, len(info.get('targets', [])), len(CONDITIONING))}; preprocessing "
            f"{recipe.preprocessing}; Adam lr {recipe.lr} cosine-annealed over {recipe.epochs} epochs, batch "
            f"{recipe.batch_size}; {results.get('trained_steps')} steps ({took}); checkpoint at step "
            f"{results.get('selected_step')} selected by the validation NLL; {info.get('n_train')} training / "
            f"{info.get('n_val')} validation / {info.get('n_test')} test jets (split by event). Made "
            f"{datetime.date.today().isoformat()} on {platform.node() or 'unknown'} ({platform.machine()}, "
            f"{os.cpu_count()} CPUs).")
    if differs:
        text += " Differs from the paper: " + "; ".join(differs) + "."
    return text


def write_metrics(run: Run, recipe: Recipe, table: pd.DataFrame, clf: dict, roc: dict, speed: dict | None,
                  profile: pd.DataFrame, contours: dict, btag_w1: dict, over: dict | None,
                  paper_parameters: int) -> dict:
    """``metrics.json`` with the issue's key names (``targets``, ``classifier_auc``, ``classifier_auc_uncertainty``,
    ``btag_roc_auc``, ``jets_per_s``, ``speedup``, ``paper_configuration_parameters``) and the details; the
    headline numbers also go to ``results.json``."""
    cont = table[table["continuous"]]
    results = run.results()
    out = {
        "targets": {name: {"wasserstein": float(r["wasserstein"]), "wasserstein_over_std":
                           float(r["wasserstein_over_std"]), "ks": float(r["ks"]), "continuous": bool(r["continuous"])}
                    for name, r in table.iterrows()},
        "classifier_auc": clf["auc"],
        "classifier_auc_uncertainty": clf["auc_uncertainty"],
        "btag_roc_auc": {"flow": roc["flow"], "full_chain": roc["full_chain"]},
        "jets_per_s": {"flow": None if speed is None else speed["flow"]["jets_per_s"],
                       "full_chain": None if speed is None else speed["full_chain"]["jets_per_s"]},
        "speedup": None if speed is None else speed["flow"]["jets_per_s"] / speed["full_chain"]["jets_per_s"],
        "paper_configuration_parameters": int(paper_parameters),
        # details
        "max_wasserstein_over_std_continuous": float(cont["wasserstein_over_std"].max()),
        "worst_continuous_target": str(cont["wasserstein_over_std"].idxmax()),
        "classifier": {k: v for k, v in clf.items()},
        "btag_roc": {k: v for k, v in roc.items() if k != "curves"},
        "btag_wasserstein_by_flavour": btag_w1,
        "speed": speed,
        "speedup_cpu_time": None if speed is None else (speed["flow"]["jets_per_cpu_s"]
                                                        / speed["full_chain"]["jets_per_cpu_s"]),
        "pt_ratio_profile": profile.replace([np.inf], None).to_dict(orient="records"),
        "contour_coverage": contours,
        "oversampling": None if over is None else {
            "factor": over["factor"], "generator_jets": over["generator_jets"],
            "observables": {k: {kk: vv for kk, vv in v.items() if kk.startswith(("mean_", "reduction"))}
                            for k, v in over["observables"].items()}},
        "run_parameters": results.get("run_parameters"),
        "preset": preset_name(recipe),
        "seed": recipe.seed,
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.node() or 'unknown'} ({platform.machine()}, {os.cpu_count()} CPUs)",
        "published": published.SUMMARY,
    }
    speedup = out["speedup"]
    out["acceptance"] = {  # the targets for the quick preset on 2 CPU cores
        "max_wasserstein_over_std_continuous": {"value": out["max_wasserstein_over_std_continuous"],
                                                "target": "<= 0.05",
                                                "met": out["max_wasserstein_over_std_continuous"] <= 0.05},
        "btag_roc_auc_difference": {"value": roc["difference"], "uncertainty": roc["difference_uncertainty"],
                                    "target": "|flow - full chain| <= 0.02", "met": abs(roc["difference"]) <= 0.02},
        "classifier_auc": {"value": clf["auc"], "uncertainty": clf["auc_uncertainty"], "target": "goal <= 0.6",
                           "met": clf["auc"] <= 0.6},
        "speedup": {"value": speedup, "target": ">= 100", "met": None if speedup is None else speedup >= 100},
    }
    write_json(out, run / "metrics.json")
    run.update_results(**{k: out[k] for k in ("classifier_auc", "classifier_auc_uncertainty", "btag_roc_auc",
                                              "jets_per_s", "speedup", "max_wasserstein_over_std_continuous")})
    return out


def evaluate_run(path, seed: int = 12345, speed: bool = True, oversample: int | None = None,
                 speed_events: int | None = None) -> dict:
    """Every artefact of a trained run folder; returns the metrics.

    Args:
        path: the run folder.
        seed: the flow's draws and the classifier splits.
        speed: time flow and full chain (needs Pythia).
        oversample, speed_events: override the recipe's values (0 oversample: skip the check).
    """
    run = Run(path)
    flow, recipe, info = load_run(run)
    names, quantum, grid = info["targets"], float(info.get("area_quantum", 0.0)), info.get("area_grid")
    test, validation = data.load_held_out(run)
    if grid is None and "area" in names:  # a run made before sample.json kept the grid: the validation jets' values
        grid = np.unique(validation["area"].to_numpy()).tolist()
    comp = compare(flow, test, validation, names, quantum, seed, grid)
    table = target_table(comp.test, comp.flow, names)
    write_targets(run, comp, table, recipe)
    contours = contour_coverage(comp.test, comp.flow)
    write_contours(run, comp)
    profile = pt_ratio_profile(comp.test, comp.flow)
    write_profile(run, profile)
    _, btag_w1 = write_btag_by_flavour(run, comp)
    roc = btag_roc(comp, seed=seed)
    write_roc(run, roc)
    clf = classifier(comp, seed)
    timing = None
    if speed:
        timing = {"flow": flow_rate(flow, test[list(CONDITIONING)].to_numpy(np.float64), seed, names, quantum, grid),
                  "full_chain": full_chain_rate(recipe, speed_events or recipe.speed_events)}
    factor = recipe.oversample if oversample is None else oversample
    over = None
    if factor and factor > 1:
        over = oversampling(flow, test, names, quantum, factor, seed, area_grid=grid)
        write_oversampling(run, over)
    out = write_metrics(run, recipe, table, clf, roc, timing, profile, contours, btag_w1, over,
                        model.paper_configuration_parameters())
    print(markdown_table(table.reset_index()))
    worst = out["max_wasserstein_over_std_continuous"]
    print(f"max W1/std (continuous) {worst:.4f} ({out['worst_continuous_target']}); "
          f"classifier AUC {clf['auc']:.4f} +- {clf['auc_uncertainty']:.4f} (floor {clf['floor_auc']:.4f}); "
          f"b vs udsg ROC AUC flow {roc['flow']:.4f}, full chain {roc['full_chain']:.4f}")
    if timing is not None:
        print(f"jets/s: flow {timing['flow']['jets_per_s']:.0f}, full chain {timing['full_chain']['jets_per_s']:.1f}; "
              f"speed-up {out['speedup']:.0f} (CPU time: {out['speedup_cpu_time']:.0f})")
    if over is not None:
        for k, v in over["observables"].items():
            print(f"oversampling x{factor} ({k}): mean relative bin error {v['mean_relative_error_1']:.4f} -> "
                  f"{v[f'mean_relative_error_{factor}']:.4f}")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="a trained run folder")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--oversample", type=int, default=None,
                   help="flow jets per generator jet in the oversampling check (default: the recipe's; 0: skip)")
    p.add_argument("--speed-events", type=int, default=None, help="full-chain events timed (default: recipe's)")
    p.add_argument("--no-speed", action="store_true", help="skip the speed measurement")
    args = p.parse_args(argv)
    evaluate_run(args.run, args.seed, speed=not args.no_speed, oversample=args.oversample,
                 speed_events=args.speed_events)


if __name__ == "__main__":
    main()
