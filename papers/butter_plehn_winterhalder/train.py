"""Train the Butter, Plehn & Winterhalder ttbar -> 6 quark GAN (10 x 512, BCE + Roth regulariser, MMD on W/top masses).

    python papers/butter_plehn_winterhalder/train.py --preset quick --baseline --out runs/bpw_quick
    python papers/butter_plehn_winterhalder/train.py --preset paper --baseline --out runs/bpw_paper   # GPU
    python papers/butter_plehn_winterhalder/train.py --resume --out runs/bpw_quick   # continue as it was started
    python papers/butter_plehn_winterhalder/train.py --preset quick --model flow --out runs/bpw_flow  # our flow

The parton sample is generated with data_prep.ttbar_partons (or read with --input). --no-mmd trains without the MMD
term; --baseline trains the no-MMD twin into OUT/no_mmd as well, so the evaluation shows what the MMD term does.
The quick preset uses the same networks with far fewer steps and events and switches on named options that are
not in the paper (batch 256, lambda_G 10, extra MMD kernel widths, a compressed learning-rate decay, checkpoint
selection on a validation sample); ``--model flow`` trains our normalising flow instead (not in the paper; a spline
coupling flow on decay coordinates, recipe.FLOW_PRESETS) on the same sample, split, selection and evaluation; every
setting that differs from the paper's recipe (recipe.PAPER) is printed,
and the run's recipe is stored in OUT/recipe.json. It does not reach the paper's precision.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from gan4hep import recipes, training  # noqa: E402
from gan4hep.runs import Run, RunMismatch  # noqa: E402
from papers.butter_plehn_winterhalder import data, evaluate, model, observables  # noqa: E402
from papers.butter_plehn_winterhalder.recipe import (  # noqa: E402
    MODELS, PAPER, Recipe, label, presets, unused_fields, validate)

#: Recipe fields added after runs were made (issue 20): a stored recipe without them is read with the defaults.
ADDED_FIELDS = ("model", "flow_transforms", "flow_bins", "flow_hidden", "flow_blocks", "flow_tail_bound")
KEEP_CHECKPOINTS = 2  # newest periodic checkpoints kept in RUN/checkpoints (besides best.npz)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, Recipe]:
    """The command line and the recipe it asks for: the preset with the options given (unset options keep the
    preset's values). With ``--resume`` the recipe is replaced by the run's own in ``main``.

    Raises:
        SystemExit: an unusable option value (one line, as argparse does).
    """
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=["paper", "quick"], default="quick")
    p.add_argument("--model", choices=list(MODELS), default="gan",
                   help="gan: the paper's GAN (default); flow: our spline coupling flow on decay coordinates with the "
                        "flow preset (recipe.FLOW_PRESETS), the same data, split, selection and evaluation")
    p.add_argument("--flow-transforms", type=int, help="flow: coupling steps")
    p.add_argument("--flow-bins", type=int, help="flow: spline bins")
    p.add_argument("--flow-hidden", type=int, help="flow: conditioner width")
    p.add_argument("--flow-blocks", type=int, help="flow: conditioner residual blocks")
    p.add_argument("--flow-tail-bound", type=float, help="flow: spline interval half-width (standardised space)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out with its own stored recipe (the preset and recipe options given "
                        "here are ignored)")
    p.add_argument("--seed", type=int, help="training seed: networks, noise, data split (default 0)")
    p.add_argument("--input", help="feature table with columns p{i}_px/py/pz/E, i=0..5 (default: generate one with "
                                   "Pythia; was --data)")
    p.add_argument("--sample-seed", type=int, help="Pythia seed of the generated sample (default 1)")
    p.add_argument("--train-events", type=int, help="training events (preset default; was --events)")
    p.add_argument("--test-events", type=int, help="held-out events for the evaluation (preset default)")
    p.add_argument("--steps", type=int, help="generator steps (preset default)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--no-mmd", action="store_true", help="drop the MMD term (lambda_G = 0)")
    p.add_argument("--baseline", action="store_true", help="also train the no-MMD twin into OUT/no_mmd")
    # Recipe options: default = the preset's value (the paper preset: the paper's recipe).
    p.add_argument("--kernel", choices=["breit_wigner", "gaussian", "cauchy"], help="MMD kernel (breit_wigner)")
    p.add_argument("--widths", type=float, nargs=4, metavar=("W1", "W2", "T1", "T2"),
                   help="kernel widths in GeV for m(W1), m(W2), m(t1), m(t2) (default: 2.1 2.1 1.5 1.5)")
    p.add_argument("--mmd-weight", type=float, help="lambda_G (slides: 1)")
    p.add_argument("--reg-weight", type=float, help="lambda_D, Roth regulariser (slides: 1e-3)")
    p.add_argument("--lr", type=float, help="Adam learning rate (EventGAN: 1e-3)")
    p.add_argument("--decay", type=float, help="inverse-time decay per --decay-steps steps (EventGAN: 0.1)")
    p.add_argument("--decay-steps", type=int, help="steps per inverse-time decay stage (EventGAN: 1000)")
    p.add_argument("--init", choices=model.INITS,
                   help="weight initialisation: glorot (Keras' default; the paper names none) or kaiming (option: "
                        "variance-preserving for LeakyReLU; not in the paper)")
    p.add_argument("--component-mmd", type=float, metavar="LAMBDA",
                   help="option: add LAMBDA x a Gaussian MMD on each of the 24 four-vector components, against mode "
                        "collapse, in both networks (not in the paper; 0: off)")
    p.add_argument("--ema-decay", type=float,
                   help="option: EMA of the generator weights, used for generation (not in the paper; 0: off)")
    p.add_argument("--mmd-extra-widths", type=float, nargs="*", metavar="GEV",
                   help="option: further MMD kernel widths in GeV added to every candidate, a multi-scale MMD "
                        "(not in the paper; the flag without values: none)")
    sel = p.add_mutually_exclusive_group()
    sel.add_argument("--select-best", dest="select_best", action="store_true", default=None,
                     help="option: hold out a validation part of the training sample and keep the checkpoint whose "
                          "W/top mass distributions are closest to it (clipped Wasserstein distance; not in the "
                          "paper; never uses the test sample)")
    sel.add_argument("--no-select-best", dest="select_best", action="store_false", default=None,
                     help="keep the final weights")
    p.add_argument("--no-xla", action="store_true", help="do not jit-compile the train step")
    p.add_argument("--no-evaluate", action="store_true", help="skip evaluate.py at the end")
    p.add_argument("--no-classifier", action="store_true", help="evaluation without the classifier test")
    p.add_argument("--jobs", type=int, default=1, help="processes for generating the sample")
    args = p.parse_args(argv)

    recipe = recipes.override(
        recipes.select(presets(args.model), args.preset), seed=args.seed, sample_seed=args.sample_seed,
        input=str(Path(args.input).resolve()) if args.input else None, train_events=args.train_events,
        test_events=args.test_events, steps=args.steps, batch_size=args.batch_size, kernel=args.kernel,
        widths=None if args.widths is None else tuple(args.widths), mmd_weight=args.mmd_weight,
        reg_weight=args.reg_weight, lr=args.lr, decay=args.decay, decay_steps=args.decay_steps, init=args.init,
        component_mmd=args.component_mmd, select_best=args.select_best,
        mmd_extra_widths=None if args.mmd_extra_widths is None else tuple(args.mmd_extra_widths),
        use_mmd=False if args.no_mmd else None, jit_compile=False if args.no_xla else None,
        flow_transforms=args.flow_transforms, flow_bins=args.flow_bins, flow_hidden=args.flow_hidden,
        flow_blocks=args.flow_blocks, flow_tail_bound=args.flow_tail_bound)
    if args.ema_decay is not None:
        recipe = dataclasses.replace(recipe, ema_decay=args.ema_decay or None)  # 0 switches it off
    recipe = dataclasses.replace(recipe, steps_per_epoch=min(recipe.steps_per_epoch, recipe.steps))
    try:
        validate(recipe)
    except ValueError as err:
        p.error(str(err))
    return args, recipe


def start(run: Run, recipe: Recipe, resume: bool) -> Recipe:
    """``Run.start``: the recipe the run in ``run`` trains with (its stored one when it exists).

    Raises:
        SystemExit: one line when the folder holds a run with another recipe (without ``resume``), nothing to
            resume, or a run of the layout before recipe.json (config.json).
    """
    if (run / "config.json").exists() and not run.exists():
        raise SystemExit(f"train.py: error: {run.path} holds a run of the former layout (config.json); "
                         "use a new --out")
    try:  # a run made before the flow fields existed continues: its missing fields are PAPER's
        return run.start_recipe(recipe, PAPER, resume, ADDED_FIELDS)[0]
    except (RunMismatch, FileNotFoundError) as err:
        raise SystemExit(f"train.py: error: {err}") from None


def fit(recipe: Recipe, run: Run, x_train: np.ndarray) -> training.Trained:
    """Train the GAN of ``recipe`` on ``x_train`` ((n, 24) events in GeV) into ``run`` and export it.

    With ``select_best`` the last ``max(1, min(10000, n // 10))`` training events are the validation sample, and
    the checkpoint with the lowest ``observables.peak_distance`` to it is selected (best.npz) and exported. Writes
    preprocessing.json, checkpoints/ (the newest two), evaluation.json (the peak monitor every ``eval_every``
    steps), best.npz, losses.json, results.json (with ``n_validation``), model.keras and training_curves.

    Returns:
        ``gan4hep.training.Trained`` (its model holds the exported weights).
    """
    x_fit, reference = x_train, None
    if recipe.select_best:
        x_fit, x_val = data.validation_split(x_train)
        reference = observables.masses(x_val)
    if recipe.model == "flow":
        coordinates = model.decay_coordinates(x_fit)
        pipeline = model.flow_preprocessing(coordinates)
        x_model, build = pipeline.transform(coordinates), lambda: model.build_flow(recipe, pipeline)
    else:
        pipeline = model.preprocessing()
        x_model, build = pipeline.transform(x_fit), lambda: model.build_gan(recipe)
    run.save_preprocessing(pipeline)

    trained = training.train(
        build, x_model.astype(np.float32), run,
        steps=recipe.steps, batch_size=recipe.batch_size, seed=recipe.seed, steps_per_epoch=recipe.steps_per_epoch,
        checkpoint_every=recipe.checkpoint_every, keep_checkpoints=KEEP_CHECKPOINTS,
        evaluate=lambda gan: observables.peak_summary(gan, reference=reference), eval_every=recipe.eval_every,
        monitor="peak_distance" if recipe.select_best else None, mode="min", restore_best=True)
    run.update_results(n_validation=len(x_train) - len(x_fit))
    if trained.best_step is not None:
        print(f"selected the checkpoint of step {trained.best_step} (validation peak_distance "
              f"{trained.best_value:.4f}, {len(x_train) - len(x_fit)} validation events)")
    trained.model.export(run / Run.MODEL)
    evaluate.training_curves(run)
    what = "flow" if recipe.model == "flow" else f"{'with' if recipe.use_mmd else 'without'} MMD"
    print(f"[{label(recipe)}] {what}: {trained.final_step} steps in {trained.seconds:.0f} s")
    return trained


def main(argv: list[str] | None = None) -> None:
    """Train (and the no-MMD twin with ``--baseline``), then evaluate unless ``--no-evaluate``."""
    args, recipe = parse_args(argv)
    run = Run(args.out)
    recipe = start(run, recipe, args.resume)
    if args.resume:
        print(f"resuming {run.path} with its own recipe ({label(recipe)}); --preset and recipe options ignored")
    else:
        print(f"preset: {args.preset}  (the quick preset does not reach the paper's precision)"
              if args.preset == "quick" else "preset: paper (1e6 steps: GPU work, ~26 h in the paper)")
    for line in recipes.deviations(recipe, PAPER, unused=unused_fields(recipe)):
        print(f"  differs from the paper: {line}")

    x_train, _ = data.load_events(recipe, args.jobs)
    fit(recipe, run, x_train)
    baseline = None
    if args.baseline and recipe.use_mmd and recipe.model == "gan":
        twin = Run(run / "no_mmd")
        twin_recipe = start(twin, dataclasses.replace(recipe, use_mmd=False), args.resume and twin.exists())
        fit(twin_recipe, twin, x_train)
        baseline = twin.path
    if not args.no_evaluate:
        evaluate.evaluate_run(run.path, baseline, classifier=not args.no_classifier, jobs=args.jobs)


if __name__ == "__main__":
    main()
