"""Train Lebese & Ruan's WGAN-GP on the dilepton + b sample and regenerate Table 1 and Figs. 3-5.

    python papers/lebese_ruan/train.py --preset quick --out runs/lebese_ruan_quick
    python papers/lebese_ruan/train.py --preset paper --out runs/lebese_ruan_paper     # GPU: 1e6 iterations
    python papers/lebese_ruan/train.py --out runs/lebese_ruan_quick --resume           # continue it, own recipe
    python papers/lebese_ruan/train.py --preset quick --model flow --out runs/lr_flow   # our spline flow instead

The sample is generated on the way (data_prep.dilepton) unless --input names a feature table or a Delphes file.
Events are split into training / validation / test; the checkpoint is chosen on the validation MC, Table 1 is
computed on the test MC only (evaluate.py). ``--model flow`` trains our normalising flow (not in the paper) on the
same sample, split and tail cut, with the same checkpoint selection and evaluation.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gan4hep import training
from gan4hep.metrics import classifier_two_sample_test, ks_statistic, relative_mean_difference
from gan4hep.recipes import deviations, override, select
from gan4hep.runs import Run, RunMismatch

from papers.lebese_ruan import data, evaluate, model
from papers.lebese_ruan.recipe import MODELS, PAPER, PRESETS, Recipe, presets, unused_fields

# command-line option -> recipe field (None: the preset's value)
RECIPE_FLAGS = ("events", "seed", "steps", "eval_every", "checkpoint_every", "batch_size", "objective", "gp_weight",
                "clip", "n_critic", "lr", "beta1", "beta2", "ema_decay", "generator", "tail_treatment", "swish",
                "select_by", "model", "flow_transforms", "flow_bins", "flow_hidden", "flow_blocks", "flow_tail_bound",
                "flow_space")
# fields added after runs were made (issue 20); an older run's recipe.json lacks them and reads them as PAPER's
ADDED_FIELDS = ("model", "flow_transforms", "flow_bins", "flow_hidden", "flow_blocks", "flow_tail_bound",
                "flow_space")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--model", choices=list(MODELS),
                   help="gan: the paper's WGAN-GP (default); flow: our rational-quadratic spline coupling flow with "
                        "the flow preset (recipe.FLOW_PRESETS) on the same data, split, selection and evaluation")
    p.add_argument("--flow-transforms", type=int, help="flow: coupling steps")
    p.add_argument("--flow-bins", type=int, help="flow: spline bins")
    p.add_argument("--flow-hidden", type=int, help="flow: conditioner width")
    p.add_argument("--flow-blocks", type=int, help="flow: conditioner residual blocks")
    p.add_argument("--flow-tail-bound", type=float, help="flow: spline interval half-width (standardised logit)")
    p.add_argument("--flow-space", choices=["features", "underlying"],
                   help="flow: density on the 8 features, or on the 6 quantities they are functions of, mapped "
                        "exactly to the features (README, 'Flow')")
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/lebese_ruan_<preset>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out with its own stored recipe (--preset and recipe options are "
                        "ignored; --steps extends its schedule)")
    p.add_argument("--seed", type=int, help="seed of the sample, split, weights and noise (preset: 1)")
    p.add_argument("--input", type=Path, default=None,
                   help="feature table (root/parquet/csv/h5 with the 8 feature columns) or Delphes ROOT file, "
                        "instead of generating the sample")
    p.add_argument("--data-dir", type=Path, default=data.DATA_DIR, help="where generated samples are cached")
    p.add_argument("--events", type=int, help="Pythia events to generate, before the selection")
    p.add_argument("--jobs", type=int, default=2, help="processes for sample generation")
    p.add_argument("--steps", type=int, help="generator iterations")
    p.add_argument("--eval-every", type=int, help="validation evaluation (checkpoint selection) interval")
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--batch-size", type=int, help="mini-batch size (paper: 1024)")
    p.add_argument("--objective", choices=["wgan_gp", "bce", "wgan_clip"],
                   help="gan4hep.objectives name: bce = vanilla GAN, wgan_clip = WGAN with weight clipping")
    p.add_argument("--gp-weight", type=float, help="gradient penalty lambda (paper: 10)")
    p.add_argument("--clip", type=float, help="weight clip c for --objective wgan_clip (paper: [0.001, 0.1])")
    p.add_argument("--n-critic", type=int, help="critic updates per generator update (paper: 1)")
    p.add_argument("--lr", type=float)
    p.add_argument("--beta1", type=float)
    p.add_argument("--beta2", type=float)
    p.add_argument("--ema-decay", type=float, help="EMA decay of the generator weights (0: off; paper: off)")
    p.add_argument("--generator", choices=["paper", "kinematic"],
                   help="paper: 8 free sigmoid outputs; kinematic: 6 underlying quantities + exact feature layer")
    p.add_argument("--tail-treatment", choices=["drop_events", "clip", "none"],
                   help="reading of '10%% of the tails is cut with re-bucketing to the last bin'")
    p.add_argument("--swish", choices=["per_unit", "scalar"])
    p.add_argument("--select-by", choices=["ks", "auc", "mean"],
                   help="checkpoint selection metric on validation MC (worst-feature KS, classifier AUC, worst "
                        "relative mean difference)")
    p.add_argument("--no-evaluate", action="store_true", help="train only; run evaluate.py later")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic TensorFlow ops (gan4hep.training.set_deterministic): for GPUs; a CPU run is "
                        "bit-reproducible without it")
    p.add_argument("--strategy", choices=["default", "mirrored"], default="default",
                   help="mirrored: tf.distribute.MirroredStrategy over all GPUs of this host (--batch-size stays the "
                        "global batch)")
    return p.parse_args(argv)


def validation_metric(recipe: Recipe, validation: np.ndarray) -> Callable[[object], dict]:
    """``model -> {metric: value}`` on the ``(n, 8)`` validation MC in physical units (lower is better): worst
    per-feature KS and relative mean difference, and the classifier AUC for ``select_by="auc"``; inf for a
    generator emitting non-finite numbers."""

    def evaluate_model(gan) -> dict:
        try:
            gen = gan.sample(max(len(validation), recipe.select_events), seed=recipe.seed)
        except (ValueError, RuntimeError):  # non-finite output, or nothing inside the support
            gen = np.full((1, 1), np.nan)
        if not np.all(np.isfinite(gen)):
            return {"ks": np.inf, "mean": np.inf, "auc": np.inf}
        out = {"ks": float(np.max(ks_statistic(validation, gen))),
               "mean": float(np.max(relative_mean_difference(validation, gen)))}
        if recipe.select_by == "auc":
            out["auc"] = classifier_two_sample_test(validation, gen, n_splits=1, seed=recipe.seed)["auc"]
        return out

    return evaluate_model


def start_run(args: argparse.Namespace) -> tuple[Run, Recipe]:
    """The run folder and its recipe: the preset with the command-line options, or, for a run already in
    ``--out``, the run's own stored recipe (``--resume``, or the same recipe asked again).

    Raises:
        RunMismatch: the folder holds a run with another recipe and no --resume.
        FileNotFoundError: --resume finds no run.
    """
    asked = override(select(presets(args.model or "gan"), args.preset),
                     **{k: getattr(args, k) for k in RECIPE_FLAGS})
    run = Run(args.out or Path("runs") / f"lebese_ruan_{args.preset}")
    recipe, ignored = run.start_recipe(asked, PAPER, args.resume, ADDED_FIELDS)
    extended = args.resume and args.steps is not None  # --steps extends a resumed run's schedule (main)
    ignored = [line for line in ignored if not (extended and line.startswith("steps:"))]
    if args.resume and ignored:
        print(f"--resume continues {run.path} with its own recipe; ignored: {'; '.join(ignored)}", flush=True)
    return run, recipe


def main(argv: list[str] | None = None) -> None:
    """Recipe -> run folder -> data -> ``gan4hep.training.train`` -> ``model.keras`` -> evaluation."""
    args = parse_args(argv)
    t_start = time.time()
    if args.deterministic:
        training.set_deterministic()
    try:
        run, recipe = start_run(args)
        table = run.input_table(args.input, data.SAMPLE)
    except (RunMismatch, FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    steps = args.steps if (args.resume and args.steps) else recipe.steps

    sample = data.prepare(data.load_events(recipe, table, args.data_dir, args.jobs), recipe)
    data.save(run, sample, table)
    kinematics = None
    if recipe.generator == "kinematic" and recipe.model == "gan":
        kinematics = model.kinematics_config(sample.train, sample.pipeline)
        run.write_json(model.KINEMATICS, kinematics)
    print(f"{run.path}: {recipe.model}, {len(sample.train)} training, {len(sample.validation)} validation, "
          f"{len(sample.test)} test "
          f"events after the tail treatment ({recipe.tail_treatment})", flush=True)
    differs = deviations(recipe, PAPER, unused=unused_fields(recipe))
    for line in differs:
        print(f"  differs from the paper: {line}")
    if steps != recipe.steps:
        print(f"  schedule extended on resume: {steps} generator steps (recipe: {recipe.steps})")

    trained = training.train(
        lambda: model.build_model(recipe, sample.pipeline, kinematics, sample.support),
        sample.model_space(sample.train), run,
        steps=steps, batch_size=recipe.batch_size, seed=recipe.seed, checkpoint_every=recipe.checkpoint_every,
        evaluate=validation_metric(recipe, sample.validation), eval_every=recipe.eval_every,
        monitor=recipe.select_by, mode="min", restore_best=True, strategy=training.get_strategy(args.strategy),
    )
    if trained.best_value is None:
        raise RuntimeError(f"{run.path}: no finite validation {recipe.select_by} was recorded; nothing to select")
    trained.model.export(run / Run.MODEL)  # the selected generator, with its preprocessing
    results = run.update_results(deviations=differs, scheduled_steps=steps)

    seconds = results["train_seconds"]
    took = "in an unknown time" if seconds is None else f"in {seconds / 60:.1f} min"
    what = "flow" if recipe.model == "flow" else "generator"
    print(f"trained {results['trained_steps']} {what} steps {took}; best validation {recipe.select_by} = "
          f"{trained.best_value:.4f} at step {trained.best_step}", flush=True)
    if not args.no_evaluate:
        evaluate.evaluate_run(run.path)
    print(f"total {(time.time() - t_start) / 60:.1f} min; outputs in {run.path}")


if __name__ == "__main__":
    main()
