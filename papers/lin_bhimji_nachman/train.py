"""Train the conditional jet-mass GANs of Lin, Bhimji & Nachman: vanilla / circle-WGAN x skew / noskew noise, several
random initialisations each, on the control-region training half, with the separation power (section 3.3)
evaluated every epoch (and at epoch 0) on the early-stopping half ("control_es") and on the validation region; the
epoch with the best early-stopping value is kept ("Adam optimizer with early stopping", section 2.1).

    python papers/lin_bhimji_nachman/train.py --preset quick --out runs/lbn
    python papers/lin_bhimji_nachman/train.py --resume --out runs/lbn      # continue with the run's own recipe
    python papers/lin_bhimji_nachman/train.py --model flow --out runs/lbn_flow   # our conditional spline flow

Each initialisation is a ``gan4hep.runs.Run`` in ``OUT/runs/<variant>_<noise>_<i>/``; OUT itself holds the
recipe (recipe.json), the input (input.json) and the summary (training.json). templates.py runs this as part of
the full reproduction. ``--model flow`` trains our conditional normalising flow (not in the paper; issue 20) instead:
``n_init`` flows in ``OUT/runs/flow_<i>/`` with the same data, split, per-epoch selection and evaluation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from data_prep import runner
from gan4hep import io, training
from gan4hep.errors import InputError
from gan4hep.models import GAN, steps_per_epoch
from gan4hep.recipes import override, select, to_dict
from gan4hep.runs import Run
from papers.lin_bhimji_nachman import data, model, observables
from papers.lin_bhimji_nachman.recipe import MODELS, NOISES, PAPER, PRESETS, TARGETS, VARIANTS, Recipe, presets

__all__ = ["add_arguments", "user_errors", "recipe_from_args", "start", "load_data", "initialisation_seed",
           "evaluation", "members", "train_one", "train_all", "main", "ADDED_FIELDS", "FLOW_KEY"]

#: Recipe fields added after runs were made (issue 20): an older run's recipe.json lacks them and reads them as
#: PAPER's values (``_compatible``).
ADDED_FIELDS = ("model", "flow_transforms", "flow_bins", "flow_hidden", "flow_blocks", "flow_tail_bound", "lr_flow")
#: The (variant, noise) key of the flow in ``train_all``'s result: its runs live in ``OUT/runs/flow_<i>/``.
FLOW_KEY = ("flow", "")


# ---- the command line (shared with templates.py) ---------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of train.py and templates.py (one meaning each across the project)."""
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick",
                   help="paper: the paper's statistics and 10 initialisations; quick: ~20 min on 2 cores")
    p.add_argument("--model", choices=list(MODELS), default=None,
                   help="gan: the paper's conditional GANs (default); flow: our conditional rational-quadratic spline "
                        "flow (recipe.FLOW_PRESETS) on the same data, split, selection and evaluation")
    p.add_argument("--flow-transforms", type=int, default=None, help="flow: spline steps")
    p.add_argument("--flow-bins", type=int, default=None, help="flow: spline bins")
    p.add_argument("--flow-hidden", type=int, default=None, help="flow: conditioner width")
    p.add_argument("--flow-blocks", type=int, default=None, help="flow: conditioner residual blocks")
    p.add_argument("--flow-tail-bound", type=float, default=None,
                   help="flow: spline interval half-width (standardised target)")
    p.add_argument("--lr-flow", type=float, default=None, help="flow: Adam learning rate (cosine decay)")
    p.add_argument("--out", type=Path, default=Path("runs/lin_bhimji_nachman"), help="run folder")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out with its own stored recipe (recipe options are then ignored)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed for the sample, splits, dressing and networks (default: the preset's, 1)")
    p.add_argument("--input", type=Path, default=None,
                   help="existing jet feature table (data_prep.qcd_jets *_features.root, or parquet/CSV with columns "
                        f"{', '.join(data.COLUMNS)}); default: generate one into OUT/sample/ (was --sample)")
    p.add_argument("--events", type=int, default=None, help="Pythia events to generate (default: the preset's)")
    p.add_argument("--variant", choices=VARIANTS, nargs="+", default=None, help="GAN variants (default: both)")
    p.add_argument("--noise", choices=NOISES, nargs="+", default=None,
                   help="noise: skew-normal alpha 5 and/or alpha 0 (default: both)")
    p.add_argument("--target", choices=TARGETS, default=None,
                   help="generator target: m_over_pt (default) or mass (literal reading, reported as such)")
    p.add_argument("--n-init", type=int, default=None, help="initialisations per variant and noise (default: preset)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: preset)")
    p.add_argument("--batch-size", type=int, default=None, help="jets per step (default: preset, 128)")
    runner.add_engine_args(p)  # how the sample is generated: --jobs, or a Dask cluster (--cluster, --scheduler)
    p.set_defaults(jobs=2)
    return p


@contextlib.contextmanager
def user_errors(prog: str):
    """Turn an error of the user's input (``gan4hep.errors.InputError``: a bad option value, table or run folder;
    a missing file) into one line on stderr and exit status 2; any other exception keeps its traceback."""
    try:
        yield
    except (InputError, FileNotFoundError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The preset named by ``--preset`` with the recipe options given on the command line.

    Raises:
        gan4hep.errors.InputError: an unusable value (e.g. ``--epochs 0``).
    """
    variants = () if getattr(args, "no_gan", False) else args.variant
    base = select(presets(getattr(args, "model", None) or "gan"), args.preset)
    flow = {k: getattr(args, k, None) for k in ADDED_FIELDS if k != "model"}
    return override(base, **flow, seed=args.seed, events=args.events,
                    variants=None if variants is None else tuple(variants),
                    noises=None if args.noise is None else tuple(args.noise), target=args.target,
                    n_init=args.n_init, epochs=args.epochs, batch_size=args.batch_size,
                    template_mass_bin=getattr(args, "template_mass_bin", None))


def start(args: argparse.Namespace) -> tuple[Run, Recipe, Path | None]:
    """Start the run in ``--out`` with the recipe asked for, or, with ``--resume``, continue it with its stored one.

    Returns (run, recipe, input table or None to generate the sample). The input is recorded in OUT/input.json and
    read back on ``--resume`` when no ``--input`` is given.

    Raises:
        gan4hep.runs.RunMismatch: ``--out`` holds a run with another recipe (without ``--resume``).
        FileNotFoundError: ``--resume`` of a folder without a run.
    """
    asked = recipe_from_args(args)
    run = Run(args.out)
    recipe, ignored = run.start_recipe(asked, PAPER, args.resume, ADDED_FIELDS)
    if args.resume and recipe != asked:
        print(f"resuming {run.path} with its own recipe (preset {recipe.preset}); not applied: {'; '.join(ignored)}")
    stored = run / "input.json"
    source = args.input
    if source is None and args.resume and stored.exists():
        source = json.loads(stored.read_text())["input"]
        source = None if source is None else Path(source)
    io.write_json({"input": None if source is None else str(source)}, stored)
    return run, recipe, source


def load_data(run: Run, recipe: Recipe, source: Path | None, engine: dict) -> tuple[pd.DataFrame, dict]:
    """The jet table (``source``, or the sample generated into OUT/sample/ with the ``engine`` options of
    ``data_prep.runner.engine_kwargs``) and its regions (``data.prepare``)."""
    df = data.load_sample(source, run.path, recipe.events, recipe.seed, engine)
    return df, data.prepare(df, recipe.seed)


def _compatible(asked: dict, run: Run) -> dict:
    """``asked`` (a recipe dict) without the ``ADDED_FIELDS`` that a run made before they existed lacks, where they
    hold PAPER's values: such a run continues as before."""
    stored = run.recipe() if run.exists() else {}
    return {k: v for k, v in asked.items()
            if not (k in ADDED_FIELDS and stored and k not in stored and v == to_dict(PAPER)[k])}


# ---- training ----------------------------------------------------------------------------------------------------
def initialisation_seed(recipe: Recipe, variant: str, noise: str, i: int) -> int:
    """Seed of initialisation ``i`` of ``variant`` x ``noise``: seed * 1000 + 100 * (variant's position in
    ``recipe.variants``) + 10 * (noise's position in ``recipe.noises``) + i; the flow (``FLOW_KEY``):
    seed * 1000 + 900 + i."""
    if (variant, noise) == FLOW_KEY:
        return recipe.seed * 1000 + 900 + i
    return recipe.seed * 1000 + 100 * recipe.variants.index(variant) + 10 * recipe.noises.index(noise) + i


def members(recipe: Recipe) -> list[tuple[str, str]]:
    """The (variant, noise) pairs a run trains: ``[FLOW_KEY]`` for ``model == "flow"``, else every variant x
    noise."""
    if recipe.model == "flow":
        return [FLOW_KEY]
    return [(v, n) for v in recipe.variants for n in recipe.noises]


def evaluation(jets: dict, recipe: Recipe, seed: int) -> Callable[[GAN], dict]:
    """The per-epoch evaluation: separation power (``observables.separation_power_8``) of generated masses on the
    early-stopping half (one mass per jet; "sp_control_es", the monitored value) and in the validation region
    (``recipe.dress`` masses per jet; "sp_validation")."""

    def evaluate(gan: GAN) -> dict:
        out = {}
        for name, copies in (("control_es", 1), ("validation", recipe.dress)):
            gen = model.generate_mass(gan, jets[name], copies=copies, seed=seed + 7)
            out[f"sp_{name}"] = observables.separation_power_8(jets[name], gen, recipe.mass_bins)["value"]
        return out

    return evaluate


def train_one(recipe: Recipe, variant: str, noise: str, i: int, jets: dict, run: Run,
              verbose: int = 0) -> tuple[GAN, dict]:
    """Train initialisation ``i`` of ``variant`` x ``noise`` (or of the flow, ``FLOW_KEY``) into ``run`` (or
    continue it; a finished one is only restored). Returns the model with its selected (best early-stopping) epoch
    loaded, and its record: the separation power per epoch (``history``), the best epoch, whether it started below
    ``init_threshold`` (``kept``; always True for a flow, the criterion is the paper's for GANs), time and
    divergence.

    ``jets``: ``data.prepare`` output (DataFrames ``train``, ``control_es``, ``validation``).
    """
    seed = initialisation_seed(recipe, variant, noise, i)
    run.start(_compatible({**to_dict(recipe), "variant": variant, "noise": noise, "init": i, "init_seed": seed}, run))
    if (run / "preprocessing.json").exists():
        target_p, context_p = run.load_preprocessing("preprocessing"), run.load_preprocessing("context_preprocessing")
    else:
        target_p, context_p = model.fit_preprocessing(jets["train"], recipe.target)
        run.save_preprocessing(target_p, "preprocessing")
        run.save_preprocessing(context_p, "context_preprocessing")
    x, c = model.training_arrays(jets["train"], recipe.target, target_p, context_p)
    spe = steps_per_epoch(len(x), recipe.batch_size)

    is_flow = (variant, noise) == FLOW_KEY

    def build() -> GAN:
        if is_flow:
            return model.build_flow(recipe, target_p, context_p, steps=recipe.epochs * spe)
        return model.build(recipe, variant, noise, target_p, context_p, seed=seed)

    results = run.results()
    if results.get("completed"):  # finished (possibly stopped early): restore, do not train on
        gan = build()
        run.restore(gan)
        evaluations = json.loads((run / Run.EVALUATION).read_text())
        seconds, diverged = results.get("train_seconds"), results.get("diverged")
    else:
        trained = training.train(build, (x, c), run, steps=recipe.epochs * spe, batch_size=recipe.batch_size,
                                 seed=seed, steps_per_epoch=spe, keep_checkpoints=1, shuffle_buffer=len(x),
                                 evaluate=evaluation(jets, recipe, seed), monitor="sp_control_es",
                                 evaluate_at_start=True, patience=recipe.patience, restore_best=True,
                                 on_divergence="stop", verbose=verbose)
        gan, evaluations, diverged = trained.model, trained.evaluations, trained.diverged
        seconds = run.results().get("train_seconds") or trained.seconds
        gan.export(run / Run.MODEL)
    history = [{"epoch": h["step"] / spe, **h} for h in evaluations]
    best = min(history, key=lambda h: h["sp_control_es"])
    record = {"variant": variant, "noise": noise, "seed": seed, "target": recipe.target, "history": history,
              "best_epoch": best["epoch"], "best": best, "initial": history[0],
              "kept": is_flow or history[0]["sp_validation"] < recipe.init_threshold, "seconds": seconds,
              "steps_per_epoch": spe, "diverged": diverged}
    run.update_results(completed=True, best_epoch=record["best_epoch"], kept=record["kept"])
    return gan, record


def train_all(recipe: Recipe, jets: dict, out: Path, log: Callable[[str], None] = print,
              verbose: int = 0) -> dict[tuple[str, str], list[tuple[GAN, dict]]]:
    """All ``recipe.variants`` x ``recipe.noises`` x ``recipe.n_init`` initialisations (or ``n_init`` flows), each
    in ``OUT/runs/<variant>_<noise>_<i>`` (``OUT/runs/flow_<i>``); writes the records to ``OUT/training.json``.
    Returns {(variant, noise): [(model, record), ...]} (the flow's key: ``FLOW_KEY``)."""
    runs = {}
    for variant, noise in members(recipe):
        runs[(variant, noise)] = []
        for i in range(recipe.n_init):
            run = Run(Path(out) / "runs" / "_".join(p for p in (variant, noise, str(i)) if p))
            gan, rec = train_one(recipe, variant, noise, i, jets, run, verbose)
            h = rec["best"]
            seconds = "" if rec["seconds"] is None else f" [{rec['seconds']:.0f} s]"
            log(f"  {variant:7s} {noise:6s} init {i}: start {rec['initial']['sp_validation']:.3f} "
                f"({'kept' if rec['kept'] else f'dropped, >= {recipe.init_threshold}'}), best epoch "
                f"{rec['best_epoch']:.0f}: S(control ES half) {h['sp_control_es']:.4f}, S(validation) "
                f"{h['sp_validation']:.4f}{seconds}" + (f" DIVERGED: {rec['diverged']}" if rec["diverged"] else ""))
            runs[(variant, noise)].append((gan, rec))
    io.write_json({"preset": recipe.preset, "model": recipe.model, "recipe": to_dict(recipe),
                   "runs": [rec for pairs in runs.values() for _, rec in pairs]}, Path(out) / "training.json")
    return runs


def main(argv: list[str] | None = None) -> dict:
    """``python papers/lin_bhimji_nachman/train.py``: the GANs alone (no templates, no figures)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    args = add_arguments(p).parse_args(argv)
    with user_errors(p.prog):
        run, recipe, source = start(args)
        _, jets = load_data(run, recipe, source, runner.engine_kwargs(args))
    print(f"preset {recipe.preset}: {len(jets['train'])} training jets, {len(jets['control_es'])} early-stopping "
          f"jets, {len(jets['validation'])} validation-region jets")
    runs = train_all(recipe, jets, run.path)
    print(f"wrote {run / 'training.json'}")
    return runs


if __name__ == "__main__":
    main()
