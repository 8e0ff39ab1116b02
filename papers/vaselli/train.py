"""Train FlashSim's jet flow (Vaselli 2022) on our FlashSim-style ttbar jets, then evaluate it.

    python papers/vaselli/train.py --preset quick --out runs/vaselli_quick      # 2 CPU cores, ~30 min of training
    python papers/vaselli/train.py --preset paper --out runs/vaselli_paper      # GPU: 5e6 jets, 600 epochs
    python papers/vaselli/train.py --preset quick --reading abstract            # the abstract's 15 flow steps
    python papers/vaselli/train.py --out runs/vaselli_quick --resume            # continue it, own recipe

The sample is generated on the way (data_prep.flashsim_jets, cached in data/vaselli/) unless --input names a
feature table of that module. Jets are split by event into training / validation / test; the checkpoint is chosen
by the validation negative log-likelihood, every number of evaluate.py is computed on the test jets only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from gan4hep.recipes import deviations, override, select

from papers.vaselli.recipe import PAPER, PREPROCESSINGS, PRESETS, READINGS

# Keras, TensorFlow and Pythia load inside the functions below, so that --help answers at once.
DATA_DIR = Path("data/vaselli")  # = data.DATA_DIR

# command-line option -> recipe field (None: the preset's value)
RECIPE_FLAGS = ("events", "pileup", "seed", "preprocessing", "reading", "hidden_features", "num_blocks", "bins",
                "tail_bound", "lr", "epochs", "batch_size", "max_train_jets", "oversample", "speed_events",
                "jit_compile")
# fields added after runs were made (issue 21); an older run's recipe.json lacks them and reads them as PAPER's
ADDED_FIELDS = ("jit_compile",)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/vaselli_<preset>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out with its own stored recipe (--preset and recipe options are "
                        "ignored)")
    p.add_argument("--input", type=Path, default=None,
                   help="a data_prep.flashsim_jets feature table instead of generating the sample")
    p.add_argument("--data-dir", type=Path, default=DATA_DIR, help="where generated samples are cached")
    p.add_argument("--jobs", type=int, default=1, help="processes for sample generation")
    p.add_argument("--events", type=int, help="ttbar events to generate (paper: 1e6 for 5e6 jets)")
    p.add_argument("--pileup", type=float, help="mean number of pile-up events (adds the pu_id target)")
    p.add_argument("--seed", type=int, help="seed of sample, split, weights and noise (preset: 1)")
    p.add_argument("--preprocessing", choices=PREPROCESSINGS,
                   help="thesis: FlashSim's jets_preprocessing.py; ours: + dequantisation, logs, standardising")
    p.add_argument("--reading", choices=sorted(READINGS),
                   help="flow steps: public_code = 17 (create_NDE_model(17, 14, 17)); abstract = 15 ('15 "
                        "transformations layers')")
    p.add_argument("--hidden-features", type=int, help="ResidualNet width (paper: 298)")
    p.add_argument("--num-blocks", type=int, help="ResidualNet blocks (paper: 10)")
    p.add_argument("--bins", type=int, help="spline bins (paper: 128)")
    p.add_argument("--tail-bound", type=float, help="spline box half-width (paper: 1)")
    p.add_argument("--lr", type=float, help="Adam learning rate, cosine-annealed to 0 (paper: 1e-5)")
    p.add_argument("--epochs", type=int, help="passes over the training jets (paper: 600)")
    p.add_argument("--batch-size", type=int, help="paper: 2048")
    p.add_argument("--max-train-jets", type=int, help="training jets kept at most (paper: 5e6)")
    p.add_argument("--oversample", type=int, help="flow jets per generator jet in the oversampling check")
    p.add_argument("--speed-events", type=int, help="full-chain events timed against the flow")
    p.add_argument("--no-xla", dest="jit_compile", action="store_const", const=False,
                   help="train without XLA (the recipe XLA-compiles the train step: speed only)")
    p.add_argument("--no-evaluate", action="store_true", help="train only; run evaluate.py later")
    p.add_argument("--no-speed", action="store_true", help="evaluation without the speed measurement")
    return p.parse_args(argv)


def start_run(args: argparse.Namespace):
    """The run folder and its recipe: the preset with the command-line options, or, for a run already in
    ``--out``, the run's own stored recipe (``--resume``, or the same recipe asked again).

    Raises:
        RunMismatch: the folder holds a run with another recipe and no --resume.
        FileNotFoundError: --resume finds no run.
    """
    from gan4hep.runs import Run

    asked = override(select(PRESETS, args.preset), **{k: getattr(args, k) for k in RECIPE_FLAGS})
    run = Run(args.out or Path("runs") / f"vaselli_{args.preset}")
    recipe, ignored = run.start_recipe(asked, PAPER, args.resume, ADDED_FIELDS)
    if args.resume and ignored:
        print(f"--resume continues {run.path} with its own recipe; ignored: {'; '.join(ignored)}", flush=True)
    return run, recipe


def validation_metric(flow_arrays: tuple[np.ndarray, np.ndarray]):
    """``flow -> {"val_nll": mean negative log-likelihood of the validation jets}`` (model space, nats per jet;
    inf when not finite): the checkpoint selection."""
    x_val, c_val = flow_arrays

    def evaluate_flow(flow) -> dict:
        nll = -flow.log_prob_numpy(x_val, c_val).mean()
        return {"val_nll": float(nll) if np.isfinite(nll) else float("inf")}

    return evaluate_flow


def main(argv: list[str] | None = None) -> None:
    """Recipe -> run folder -> data -> ``gan4hep.training.train`` -> ``model.keras`` -> evaluation."""
    args = parse_args(argv)
    t_start = time.time()
    from gan4hep import training
    from gan4hep.models.base import steps_per_epoch as spe_of
    from gan4hep.runs import Run, RunMismatch

    from papers.vaselli import data, evaluate, model

    try:
        run, recipe = start_run(args)
        table = run.input_table(args.input, data.SAMPLE)
        model.flow_steps(recipe)
    except (RunMismatch, FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None

    paper_params = model.paper_configuration_parameters()
    print(f"paper configuration (public code: 17 targets, 14 conditioning, 17 steps, hidden 298, 10 blocks, 128 "
          f"bins): {paper_params:,} trainable parameters", flush=True)
    sample = data.prepare(data.load_jets(recipe, table, args.data_dir, args.jobs), recipe)
    data.save(run, sample, table)
    n_t, n_c = len(sample.targets), len(data.CONDITIONING)
    print(f"{run.path}: {len(sample.train)} training, {len(sample.validation)} validation, {len(sample.test)} test "
          f"jets ({sample.n_events['train']} / {sample.n_events['validation']} / {sample.n_events['test']} events)",
          flush=True)
    print(model.describe(recipe, n_t, n_c))
    differs = deviations(recipe, PAPER)
    for line in differs:
        print(f"  differs from the paper: {line}")

    spe = spe_of(len(sample.train), recipe.batch_size)
    x_train, c_train = data.model_arrays(sample.train, sample, recipe, seed_offset=0)
    val = data.model_arrays(sample.validation, sample, recipe, seed_offset=1)
    trained = training.train(
        lambda: model.build_compiled(recipe, n_t, n_c, spe, sample.pipeline, sample.context_pipeline),
        (x_train, c_train), run, steps=recipe.epochs * spe, batch_size=recipe.batch_size, seed=recipe.seed,
        steps_per_epoch=spe, evaluate=validation_metric(val), eval_every=spe, monitor="val_nll", mode="min",
        restore_best=True, keep_checkpoints=3)
    params = model.count_parameters(trained.model)
    print(f"this run's flow: {params:,} trainable parameters", flush=True)
    if trained.best_value is None or not np.isfinite(trained.best_value):
        raise RuntimeError(f"{run.path}: no finite validation NLL was recorded; nothing to select")
    trained.model.export(run / Run.MODEL)  # the selected flow, with its preprocessing
    results = run.update_results(deviations=differs, steps_per_epoch=spe, run_parameters=params,
                                 paper_configuration_parameters=paper_params)
    seconds = results["train_seconds"]
    took = "in an unknown time" if seconds is None else f"in {seconds / 60:.1f} min"
    print(f"trained {results['trained_steps']} steps ({results['trained_steps'] / spe:.1f} epochs) {took}; best "
          f"validation NLL {trained.best_value:.4f} at step {trained.best_step}", flush=True)
    if not args.no_evaluate:
        evaluate.evaluate_run(run.path, speed=not args.no_speed)
    print(f"total {(time.time() - t_start) / 60:.1f} min; outputs in {run.path}")


if __name__ == "__main__":
    main()
