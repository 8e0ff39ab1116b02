"""Regenerate Table 1 and Figs. 3-5 of Lebese & Ruan from a trained run folder.

    python papers/lebese_ruan/evaluate.py --run runs/lebese_ruan_quick
    python papers/lebese_ruan/evaluate.py --run runs/lebese_ruan_quick --fresh-seed 1001    # held-out check
    python papers/lebese_ruan/evaluate.py --run runs/lebese_ruan_quick --reference mc.parquet

The model (the GAN, or the flow of ``--model flow``) is rebuilt from the run's own recipe (model.build_model) with
the checkpoint selected on the validation MC (best.npz) and compared with the held-out test MC (test_mc.parquet).
The held-out check compares it instead with a fresh reference sample: a feature table (``--reference``) or MC
regenerated with a seed the training never used (``--fresh-seed``, ``data.fresh_events``), with the run's own tail
cut; its artefacts go to ``RUN/fresh_<name>/`` (or ``--out``), the run's own ones are left alone. One function per
artefact:

| artefact | function |
| --- | --- |
| Table 1: ``table1.csv``, ``table1.md`` | ``write_table1`` |
| Fig. 3, histograms with mean lines and ratio: ``fig3.png/.pdf`` | ``write_fig3`` |
| Fig. 4, cumulative distributions: ``fig4.png/.pdf`` | ``write_fig4`` |
| Fig. 5, correlation matrices MC, GAN and difference: ``fig5.png/.pdf`` | ``write_fig5`` |
| every number of the comparison: ``metrics.json`` (headline numbers also in ``results.json``) | ``write_metrics`` |
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from gan4hep import metrics, plotting
from gan4hep.errors import InputError
from gan4hep.io import atomic_path, markdown_table, write_json
from gan4hep.models.base import GenerativeModel
from gan4hep.recipes import deviations, from_dict
from gan4hep.runs import Run

from papers.lebese_ruan import data, model, published
from papers.lebese_ruan.model import FEATURES
from papers.lebese_ruan.recipe import PAPER, Recipe, preset_name, unused_fields

LABELS = {"pt_l0": r"$p_T^{\ell_0}$ [GeV]", "pt_l1": r"$p_T^{\ell_1}$ [GeV]", "pt_ll": r"$p_T^{\ell\ell}$ [GeV]",
          "m_ll": r"$m_{\ell\ell}$ [GeV]", "met": r"$E_T^{miss}$ [GeV]", "mt": r"$m_T$ [GeV]",
          "dphi_ll": r"$\Delta\phi^{\ell\ell}$ [rad]", "dr_ll": r"$\Delta R^{\ell\ell}$"}


def load_run(run: Run) -> tuple[GenerativeModel, Recipe]:
    """The run's model (GAN or flow), rebuilt from its recipe, preprocessing and kinematic ranges, with the
    selected (best-on-validation) weights, and the recipe.

    Raises:
        FileNotFoundError: not a run folder, or no checkpoint yet.
    """
    recipe = from_dict(Recipe, run.recipe(), base=PAPER)
    gan = model.build_model(recipe, run.load_preprocessing(), model.load_kinematics(run), data.run_support(run))
    run.restore(gan)
    return gan, recipe


@dataclasses.dataclass
class Comparison:
    """The selected generator against the reference MC (the test MC, or a fresh sample); every number the
    artefacts show.

    Attributes:
        test, validation, generated: ``(n, 8)`` events in physical units: the reference MC, the MC it is compared
            with for the floor (the validation MC; the test MC for a fresh reference), the generated events.
        report: ``gan4hep.metrics.fidelity_report`` of reference MC vs generated (one row per feature).
        table: Table 1 (``table1``).
        separation: per-feature separation power (50 bins).
        floor: the same numbers for the two MC samples: the level MC statistics can resolve.
        events_per_second: generation speed of a second, warm draw of the same size (wall clock; None if not
            measured).
        outside_support: generated events outside the selection's support box (None: the run has no tail cut).
    """

    test: np.ndarray
    validation: np.ndarray
    generated: np.ndarray
    report: pd.DataFrame
    table: pd.DataFrame
    separation: np.ndarray
    floor: dict
    events_per_second: float | None = None
    outside_support: int | None = None

    @property
    def worst_rmd(self) -> float:
        return float(self.table["relative difference"].max())

    @property
    def worst_ks(self) -> float:
        return float(self.table["KS"].max())

    @property
    def auc(self) -> tuple[float, float]:
        return self.report.attrs["classifier_auc"], self.report.attrs["classifier_auc_uncertainty"]


def table1(report: pd.DataFrame) -> pd.DataFrame:
    """Table 1 from a fidelity report of the test MC vs the GAN: the paper's columns, shape metrics, and the
    published columns (labelled as such)."""
    rows = []
    for name, r in report.iterrows():
        pub = published.TABLE1[name]
        rows.append({
            "feature": name, "MC mean": r["mean_ref"], "GAN mean": r["mean_gen"],
            "relative difference": r["relative_mean_difference"], "KS": r["ks"],
            "W1 / std(MC)": r["wasserstein_over_std"], "published MC mean": pub["mc"],
            "published WGAN-GP mean": pub["wgan_gp"], "published relative difference": pub["rel_diff"],
            "MC mean / published MC mean": r["mean_ref"] / pub["mc"],
        })
    return pd.DataFrame(rows)


def compare(gan: GenerativeModel, test: np.ndarray, validation: np.ndarray, seed: int = 12345,
            n_generated: int = 20000, support: tuple[np.ndarray, np.ndarray] | None = None,
            time_generation: bool = False) -> Comparison:
    """Draw ``max(len(test), n_generated)`` events (cheap: the MC sets the statistical precision) and compute
    every metric of the artefacts.

    Args:
        gan: the model (GAN or flow). test: ``(n, 8)`` reference MC. validation: the MC for the floor.
        seed: seed of the generated sample and the classifier.
        support: ``(low, high)`` of the selection's support (``data.run_support``): generated events outside it
            are counted (not removed).
        time_generation: also time a second draw of the same size (events/s).

    Raises:
        RuntimeError: the generator emits non-finite numbers.
    """
    n = max(len(test), n_generated)
    try:  # the preprocessing refuses non-finite model output; a support sampler gives up on it
        gen = gan.sample(n, seed=seed)
    except ValueError as err:
        raise RuntimeError(f"the selected generator produced non-finite events ({err})") from None
    if not np.all(np.isfinite(gen)):
        raise RuntimeError("the selected generator produced non-finite events")
    speed = None
    if time_generation:  # warm (compiled), in physical units, as generate.py delivers them
        t0 = time.perf_counter()
        gan.sample(n, seed=seed + 1)
        speed = n / (time.perf_counter() - t0)
    outside = None if support is None else int(data.outside_support(gen, *support).sum())
    report = metrics.fidelity_report(test, gen, list(FEATURES), seed=seed, n_splits=5)
    c2st = metrics.classifier_two_sample_test(test, validation, n_splits=5, seed=seed)
    floor = {"worst_relative_mean_difference": float(np.max(metrics.relative_mean_difference(test, validation))),
             "worst_ks": float(np.max(metrics.ks_statistic(test, validation))),
             "classifier_auc": c2st["auc"], "classifier_auc_uncertainty": c2st["auc_uncertainty"]}
    return Comparison(test, validation, gen, report, table1(report),
                      metrics.separation_power(test, gen, bins=50), floor, speed, outside)


@dataclasses.dataclass(frozen=True)
class Reference:
    """What the generated events are compared with.

    Attributes:
        kind: "test" (the run's test MC) or "fresh" (a sample the run never saw).
        label: how tables name it.
        info: JSON-ready description (file, seed, event counts) for ``metrics.json``.
    """

    kind: str = "test"
    label: str = "the test MC"
    info: dict = dataclasses.field(default_factory=dict)


TEST = Reference()


def _model_label(recipe: Recipe) -> str:
    return "spline flow" if recipe.model == "flow" else f"WGAN-GP ({recipe.generator})"


def write_table1(run: Run, comparison: Comparison, recipe: Recipe, out: Path | None = None,
                 reference: Reference = TEST) -> Path:
    """Table 1 as ``table1.csv`` and ``table1.md`` in ``out`` (default: the run folder), with the run's
    description, its deviations from the paper, and the shape metrics and MC floor under the table; returns the
    Markdown path. (The "GAN mean" column holds the generated mean of either model, named as in the paper.)"""
    out = Path(out or run.path)
    out.mkdir(parents=True, exist_ok=True)
    results, counts, c = run.results(), data.load_counts(run), comparison
    seconds = results.get("train_seconds")
    took = "unknown time" if seconds is None else f"{seconds / 60:.1f} min"
    if results.get("resumed_from"):
        took += f", resumed at step {results['resumed_from']}"
    if recipe.model == "flow":
        trained = (f"model **flow** (rational-quadratic spline coupling flow: {recipe.flow_transforms} couplings, "
                   f"{recipe.flow_bins} bins, tail bound {recipe.flow_tail_bound}, ResidualNet {recipe.flow_hidden} "
                   f"x {recipe.flow_blocks} blocks; not in the paper), {results.get('trained_steps')} steps of "
                   f"{recipe.batch_size} events ({took}), Adam {recipe.lr} with cosine decay")
    else:
        ema = f"EMA {recipe.ema_decay}" if recipe.ema_decay else "no EMA"
        trained = (f"generator **{recipe.generator}**, objective {recipe.objective}, "
                   f"{results.get('trained_steps')} generator iterations ({took}), n_critic {recipe.n_critic}, {ema}")
    header = [
        f"# Lebese & Ruan Table 1, reproduced (preset: {preset_name(recipe)}, model: {recipe.model}, reference: "
        f"{reference.kind})",
        "",
        f"preset **{preset_name(recipe)}**, {trained}, "
        f"tail treatment {recipe.tail_treatment}; {counts.get('n_train')} training / {counts.get('n_val')} "
        f"validation / {counts.get('n_test')} test MC events; checkpoint at step {results.get('selected_step')} "
        f"selected by worst-feature {recipe.select_by} on the validation MC (never the test MC). Table computed on "
        f"{reference.label} ({len(c.test)} events) vs {len(c.generated)} generated events.",
        f"Made {datetime.date.today().isoformat()} on {platform.node() or 'unknown'} ({platform.machine()}).",
    ]
    differs = deviations(recipe, PAPER, unused=unused_fields(recipe))
    if differs:
        header += ["", "Differs from the paper: " + "; ".join(differs) + "."]
    pub_worst = max(v["rel_diff"] for v in published.TABLE1.values())
    auc, auc_err = c.auc
    floor = c.floor
    other = "validation MC" if reference.kind == "test" else "the run's test MC"
    footer = [
        f"Worst relative mean difference: {c.worst_rmd:.4f} (published worst: {pub_worst:.3f}); "
        f"{'meets' if c.worst_rmd <= pub_worst else 'DOES NOT meet'} the paper's level.",
        f"Worst KS: {c.worst_ks:.4f}. Classifier two-sample test on all 8 features (boosted trees, ROC AUC on "
        f"held-out halves, 0.5 = indistinguishable): AUC = {auc:.3f} +- {auc_err:.3f}.",
        f"Largest |Pearson correlation difference|: {c.report.attrs['max_abs_correlation_difference']:.3f}.",
        f"MC statistical floor ({other} vs {reference.label}, {len(c.validation)} vs {len(c.test)} events): worst "
        f"relative mean difference {floor['worst_relative_mean_difference']:.4f}, worst KS {floor['worst_ks']:.4f}, "
        f"classifier AUC {floor['classifier_auc']:.3f} +- {floor['classifier_auc_uncertainty']:.3f}.",
    ]
    if c.outside_support is not None:
        footer.append(f"Generated events outside the selection's support (lepton pT >= 25 GeV, features >= 0, "
                      f"each feature <= its tail cut): {c.outside_support} of {len(c.generated)}.")
    if c.events_per_second is not None:
        footer.append(f"Generation: {c.events_per_second:,.0f} events/s ({platform.machine()}, physical units).")
    footer.append("Published columns are from the paper's Table 1, for comparison only; " + published.NOTE)
    with atomic_path(out / "table1.csv") as tmp:
        c.table.to_csv(tmp, index=False)
    with atomic_path(out / "table1.md") as tmp:
        tmp.write_text("\n".join(header + ["", markdown_table(c.table)] + footer) + "\n")
    return out / "table1.md"


def _frames(comparison: Comparison) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (pd.DataFrame(comparison.test, columns=FEATURES), pd.DataFrame(comparison.generated, columns=FEATURES))


def write_fig3(run: Run, comparison: Comparison, recipe: Recipe, out: Path | None = None) -> list[Path]:
    """Fig. 3: per-feature histograms of MC and generated events with their mean lines and a ratio panel
    (fig3.png/.pdf in ``out``, default the run folder)."""
    ref, gen = _frames(comparison)
    fig, _ = plotting.grid_hist_ratio(ref, gen, list(FEATURES), labels=[LABELS[f] for f in FEATURES], bins=40,
                                      ref_label="MC", gen_label=_model_label(recipe), show_means=True)
    return plotting.save_figure(fig, Path(out or run.path) / "fig3")


def write_fig4(run: Run, comparison: Comparison, recipe: Recipe | None = None, out: Path | None = None) -> list[Path]:
    """Fig. 4: per-feature cumulative distributions of MC and generated events (fig4.png/.pdf)."""
    ref, gen = _frames(comparison)
    fig = plotting.grid_cdf_plot(ref, gen, list(FEATURES), labels=[LABELS[f] for f in FEATURES], ref_label="MC",
                                 gen_label="WGAN-GP" if recipe is None else _model_label(recipe))
    return plotting.save_figure(fig, Path(out or run.path) / "fig4")


def write_fig5(run: Run, comparison: Comparison, out: Path | None = None) -> list[Path]:
    """Fig. 5: Pearson correlation matrices of MC, generated events and their difference (fig5.png/.pdf)."""
    fig, _ = plotting.correlation_heatmaps(comparison.test, comparison.generated, names=list(FEATURES))
    return plotting.save_figure(fig, Path(out or run.path) / "fig5")


def write_metrics(run: Run, comparison: Comparison, recipe: Recipe, out: Path | None = None,
                  reference: Reference = TEST) -> dict:
    """metrics.json in ``out`` (default the run folder): per-feature relative mean difference, KS, W1 (absolute
    and over the MC std) and separation power, the classifier AUC, the correlation difference, the MC floor, the
    selection, the model family (``"model": "gan" | "flow"``), the reference (``"reference": "test" | "fresh"``,
    described in ``reference_sample``), generated events outside the support and the generation speed. For the
    test reference the headline numbers also go to results.json (``table1``). Returns the metrics."""
    c, results = comparison, run.results()
    auc, auc_err = c.auc
    out_dir = Path(out or run.path)
    result = {
        "preset": preset_name(recipe), "generator": recipe.generator, "objective": recipe.objective,
        "model": recipe.model, "reference": reference.kind,
        "features": {name: {"relative_mean_difference": float(c.table["relative difference"][i]),
                            "ks": float(c.table["KS"][i]), "wasserstein_over_std": float(c.table["W1 / std(MC)"][i]),
                            "wasserstein": float(c.report["wasserstein"].iloc[i]),
                            "separation_power": float(c.separation[i])}
                     for i, name in enumerate(FEATURES)},
        "worst_relative_mean_difference": c.worst_rmd, "worst_ks": c.worst_ks,
        "classifier_auc": auc, "classifier_auc_uncertainty": auc_err,
        "max_abs_correlation_difference": float(c.report.attrs["max_abs_correlation_difference"]),
        "mc_floor": c.floor, "n_generated": len(c.generated),
        "selected_checkpoint": results.get("selected_step"), "select_by": recipe.select_by,
        "selection_sample": "validation MC",
        "table_sample": "test MC" if reference.kind == "test" else "fresh MC",
        "n_test": len(c.test),
        "trained_steps": results.get("trained_steps"), "train_seconds": results.get("train_seconds"),
        "outside_support": c.outside_support,
        "generation_events_per_second": c.events_per_second,
        "reference_sample": {"kind": reference.kind, **reference.info},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(result, out_dir / "metrics.json")
    if reference.kind == "test" and out_dir == run.path:
        run.update_results(table1={k: result[k] for k in ("worst_relative_mean_difference", "worst_ks",
                                                          "classifier_auc", "classifier_auc_uncertainty")})
    return result


def fresh_reference(run: Run, recipe: Recipe, reference: Path | None = None, fresh_seed: int | None = None,
                    fresh_events: int | None = None, data_dir: Path = data.DATA_DIR,
                    jobs: int = 2) -> tuple[np.ndarray, Reference]:
    """The fresh reference sample of the held-out check, with the run's tail cut: a feature table or Delphes file
    (``reference``), or MC regenerated with ``fresh_seed`` (``data.fresh_events``, ``fresh_events`` Pythia events,
    default the recipe's).

    Raises:
        InputError: neither or both given; a fresh seed for a run trained on a user's table (our generator would
            not make the same process: pass --reference), or the run's own seed; a table without the features.
        FileNotFoundError: no such reference file.
    """
    if (reference is None) == (fresh_seed is None):
        raise InputError("give one of --reference FILE and --fresh-seed N")
    if reference is not None:
        table, path, info = data.read_input(reference), Path(reference), {}
    else:
        used = data.load_counts(run).get("input")
        if used:
            raise InputError(f"{run.path} was trained on {used}, not on our generated sample: pass --reference with "
                             "a fresh sample of that process")
        table, path = data.fresh_events(recipe, fresh_seed, fresh_events, data_dir, jobs)
        info = {"seed": int(fresh_seed), "events": int(fresh_events or recipe.events), "mpi": recipe.mpi}
    x, counts = data.reference_events(run, table)
    info = {"file": str(path), **info, **counts}
    what = f"fresh MC ({path.name}" + (f", seed {fresh_seed})" if fresh_seed is not None else ")")
    return x, Reference("fresh", what, info)


def evaluate_run(run, seed: int = 12345, n_generated: int = 20000, reference: Path | None = None,
                 fresh_seed: int | None = None, fresh_events: int | None = None, out: Path | None = None,
                 data_dir: Path = data.DATA_DIR, jobs: int = 2, figures: bool = True) -> dict:
    """Every artefact of the run folder ``run``: Table 1, Figs. 3-5, metrics.json; prints Table 1 and returns the
    metrics. With ``reference`` or ``fresh_seed`` (see ``fresh_reference``) the generated events are compared with
    that fresh sample instead of the test MC (the floor: fresh vs test MC) and the artefacts go to ``out``
    (default ``RUN/fresh_<name of the reference>``)."""
    run = Run(run)
    gan, recipe = load_run(run)
    test, validation = data.load_mc(run)
    ref = TEST
    if reference is not None or fresh_seed is not None:
        fresh, ref = fresh_reference(run, recipe, reference, fresh_seed, fresh_events, data_dir, jobs)
        test, validation = fresh, test
        out = Path(out or run / f"fresh_{Path(ref.info['file']).name.split('.')[0]}")
    comparison = compare(gan, test, validation, seed=seed, n_generated=n_generated, support=data.run_support(run),
                         time_generation=True)
    table = write_table1(run, comparison, recipe, out, ref)
    if figures:
        write_fig3(run, comparison, recipe, out)
        write_fig4(run, comparison, recipe, out)
        write_fig5(run, comparison, out)
    result = write_metrics(run, comparison, recipe, out, ref)
    print(table.read_text())
    return result


def main(argv: list[str] | None = None) -> None:
    """Every artefact of ``--run`` (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="run folder written by train.py")
    p.add_argument("--seed", type=int, default=12345, help="seed of the generated sample")
    p.add_argument("--reference", type=Path, default=None,
                   help="held-out check: a fresh reference table (the 8 feature columns, or a Delphes ROOT file) "
                        "instead of the test MC; the run's tail cut is applied to it")
    p.add_argument("--fresh-seed", type=int, default=None,
                   help="held-out check: regenerate the run's MC with this seed (never the run's own) and compare "
                        "with it; cached in --data-dir as dilepton_fresh_e<events>_s<seed>_*")
    p.add_argument("--fresh-events", type=int, default=None, help="Pythia events of --fresh-seed (default: the "
                                                                  "run's --events)")
    p.add_argument("--data-dir", type=Path, default=data.DATA_DIR, help="where fresh samples are cached")
    p.add_argument("--jobs", type=int, default=2, help="processes generating a fresh sample")
    p.add_argument("--out", type=Path, default=None,
                   help="folder of the held-out check's artefacts (default RUN/fresh_<reference name>)")
    p.add_argument("--no-figures", action="store_true", help="tables and metrics only (Figs. 3-5 skipped)")
    args = p.parse_args(argv)
    try:
        evaluate_run(args.run, seed=args.seed, reference=args.reference, fresh_seed=args.fresh_seed,
                     fresh_events=args.fresh_events, out=args.out, data_dir=args.data_dir, jobs=args.jobs,
                     figures=not args.no_figures)
    except (InputError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
