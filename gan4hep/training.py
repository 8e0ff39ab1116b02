"""The one training entry point for every model family: seed, build, resume, ``tf.data``, callbacks, ``fit``,
periodic evaluation and checkpoint selection, all recorded in a ``gan4hep.runs.Run``.

A training script reads like the closing block of keras.io's "WGAN-GP overriding Model.train_step"::

    run = Run(out)
    recipe = from_dict(Recipe, run.start(to_dict(recipe), resume=args.resume), base=PAPER)
    trained = training.train(lambda: build_gan(recipe, pipeline), x_train, run, steps=recipe.steps,
                             batch_size=recipe.batch_size, seed=recipe.seed, evaluate=validation_metric,
                             eval_every=recipe.eval_every, monitor="ks")
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from .callbacks import DivergenceGuard, PeriodicCheckpoint, PeriodicEvaluation, StopAt, TrainingDiverged, resume
from .runs import Run

__all__ = ["Trained", "Patience", "dataset", "train", "get_strategy"]


@dataclasses.dataclass
class Trained:
    """What ``train`` returns.

    Attributes:
        model: the trained model (the selected checkpoint loaded if ``restore_best``).
        start_step: the step the run resumed from (0 for a new run).
        final_step: the model's step when training ended (before any ``restore_best``).
        seconds: wall time of this invocation's ``fit``.
        losses: this invocation's logged losses per epoch, ``{name: [value, ...]}``.
        evaluations: every periodic evaluation of the run, resumed ones included.
        best_step, best_value: the selected evaluation (None without ``monitor``).
        diverged: the divergence message if training stopped on a non-finite loss and ``on_divergence="stop"``.
    """

    model: Any
    start_step: int
    final_step: int
    seconds: float
    losses: dict
    evaluations: list
    best_step: int | None = None
    best_value: float | None = None
    diverged: str | None = None


class Patience(keras.callbacks.Callback):
    """Stop when the monitored evaluation of ``evaluation`` has not improved for ``patience`` x ``every`` steps
    (early stopping on a validation sample)."""

    def __init__(self, evaluation: PeriodicEvaluation, patience: int, every: int):
        super().__init__()
        self.evaluation, self.patience, self.every = evaluation, int(patience), int(every)

    def on_epoch_end(self, epoch, logs=None):
        best = self.evaluation.best_step
        if best is not None and (self.model.step - best) / self.every >= self.patience:
            self.model.stop_training = True


def get_strategy(name: str | None):
    """A ``tf.distribute`` strategy by name: None / "default" (none), "mirrored" (``MirroredStrategy`` over all
    GPUs of this host, or the CPU when there is none).

    Raises:
        ValueError: an unknown name.
    """
    if name in (None, "default"):
        return None
    if name == "mirrored":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose 'default' or 'mirrored'")


def dataset(data, batch_size: int, seed: int, shuffle_buffer: int = 200_000):
    """An endless shuffled ``tf.data.Dataset`` of full batches.

    Args:
        data: ``(n, d)`` float array, or a tuple of arrays with the same first dimension (``(x, context)``).
        batch_size: events per batch (the last partial batch of each pass is dropped).
        seed: shuffle seed (a resumed run passes ``seed + start_step`` so that it does not replay the same order).
        shuffle_buffer: shuffle buffer size (capped at the number of events).

    Raises:
        ValueError: fewer events than one batch.
    """
    import tensorflow as tf

    arrays = tuple(np.asarray(a, dtype=np.float32) for a in (data if isinstance(data, tuple) else (data,)))
    n = len(arrays[0])
    if n < batch_size:
        raise ValueError(f"{n} training events is fewer than one batch of {batch_size}")
    tensors = arrays if len(arrays) > 1 else arrays[0]
    return (tf.data.Dataset.from_tensor_slices(tensors).shuffle(min(n, shuffle_buffer), seed=seed)
            .repeat().batch(batch_size, drop_remainder=True).prefetch(2))


def train(build: Callable[[], Any], data, run: Run, *, steps: int, batch_size: int, seed: int,
          steps_per_epoch: int | None = None, checkpoint_every: int | None = None, keep_checkpoints: int | None = None,
          evaluate: Callable[[Any], dict] | None = None, eval_every: int | None = None, monitor: str | None = None,
          mode: str = "min", evaluate_at_start: bool = False, patience: int | None = None,
          restore_best: bool = False, on_divergence: str = "raise", callbacks: Sequence = (), verbose: int = 2,
          shuffle_buffer: int = 200_000, strategy=None) -> Trained:
    """Train a model of the contract (``gan4hep.models.base``) into ``run``.

    Seeds Python, numpy and the backend with ``seed``, calls ``build()`` (which returns a compiled model), resumes
    from the run's newest checkpoint, and fits up to exactly ``steps`` model steps on an endless shuffled dataset.
    Checkpoints go to ``run.checkpoints`` (every ``checkpoint_every`` steps and at the end); with ``evaluate``, it is
    called every ``eval_every`` steps and its results are kept in ``run/evaluation.json``; with ``monitor``, the best
    value's checkpoint is saved as ``run/best.npz`` (the checkpoint selection). Losses are appended to
    ``run/losses.json``; steps, time and the selection to ``run/results.json``.

    Args:
        build: returns the compiled model (called after seeding, so the initial weights follow ``seed``).
        data: training array ``(n, d)`` in the model's space, or ``(x, context)``.
        run: the run folder (its recipe already started with ``Run.start``).
        steps: total model steps of the run (a resumed run trains the rest).
        batch_size, seed, shuffle_buffer: see ``dataset``.
        steps_per_epoch: steps per Keras epoch (logging granularity); default ``eval_every`` or ``steps``.
        checkpoint_every: default ``steps_per_epoch``. keep_checkpoints: newest periodic checkpoints kept (None: all).
        evaluate: ``model -> {name: float}``; eval_every: its interval in steps (default ``steps_per_epoch``).
        monitor, mode: the evaluated value whose best ("min" / "max") is selected.
        evaluate_at_start: also evaluate the initialised model (step 0) of a new run.
        patience: stop when ``monitor`` has not improved for this many evaluations (early stopping).
        restore_best: load ``best.npz`` into the model before returning.
        on_divergence: "raise" (``TrainingDiverged``) or "stop" (record it in ``Trained.diverged`` and return).
        callbacks: further Keras callbacks.
        verbose: Keras ``fit`` verbosity.
        strategy: a ``tf.distribute`` strategy (e.g. ``MirroredStrategy``: all GPUs of one host) under whose scope
            the model is built; ``batch_size`` is then the global batch, split over the replicas. Checkpoints and
            resume are unchanged. (Several hosts: Keras 3 on TensorFlow has no maintained multi-worker path.)

    Raises:
        TrainingDiverged: a non-finite loss with ``on_divergence="raise"`` (names the loss, step and last
            checkpoint).
        ValueError: inconsistent options, or fewer events than one batch.
    """
    if on_divergence not in ("raise", "stop"):
        raise ValueError(f"on_divergence must be 'raise' or 'stop', got {on_divergence!r}")
    if monitor is not None and evaluate is None:
        raise ValueError("monitor needs an evaluate function")
    if patience is not None and monitor is None:
        raise ValueError("patience needs a monitored evaluation")
    keras.utils.set_random_seed(seed)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build()
    start = resume(model, run.checkpoints)
    if start:
        print(f"resumed {run.path} from step {start}", flush=True)
    remaining = max(int(steps) - start, 0)
    spe = int(steps_per_epoch or eval_every or steps)
    spe = max(1, min(spe, remaining or spe))
    every = int(eval_every or spe)

    cbs = [DivergenceGuard(run.checkpoints),
           PeriodicCheckpoint(run.checkpoints, checkpoint_every or spe, keep=keep_checkpoints)]
    evaluation = None
    if evaluate is not None:
        evaluation = PeriodicEvaluation(every, evaluate, monitor=monitor, mode=mode,
                                        best_path=run / Run.BEST if monitor else None,
                                        history_path=run / Run.EVALUATION, resume=start > 0)
        cbs.append(evaluation)
        if evaluate_at_start and start == 0:
            evaluation.set_model(model)
            evaluation.run()
        if patience:
            cbs.append(Patience(evaluation, patience, every))
    cbs += [*callbacks, StopAt(steps)]

    diverged, losses = None, {}
    t0 = time.time()
    if remaining > 0:
        try:
            ds = dataset(data, batch_size, seed + start, shuffle_buffer)
            history = model.fit(ds, epochs=math.ceil(remaining / spe), steps_per_epoch=spe, callbacks=cbs,
                                verbose=verbose, shuffle=False)
            losses = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        except TrainingDiverged as err:
            if on_divergence == "raise":
                raise
            diverged = str(err)
    seconds = time.time() - t0
    _append_losses(run, losses, start, spe, model.step)

    previous = run.results()
    earlier = previous.get("train_seconds") if start and previous.get("trained_steps") == start else None
    total = seconds if not start else (None if earlier is None else earlier + seconds)
    best_step = evaluation.best_step if evaluation is not None else None
    best_value = evaluation.best if evaluation is not None else None
    final_step = model.step
    run.update_results(trained_steps=final_step, resumed_from=start, train_seconds=total,
                       selected_step=best_step, selected_value=best_value, diverged=diverged)
    if restore_best and best_step is not None and (run / Run.BEST).exists():
        model.load_checkpoint(run / Run.BEST)
    return Trained(model, start, final_step, seconds, losses, evaluation.history if evaluation else [],
                   best_step, best_value, diverged)


def _append_losses(run: Run, losses: dict, start: int, steps_per_epoch: int, final_step: int) -> None:
    """Add this invocation's per-epoch losses to ``run/losses.json`` (a list of ``{"step": ..., name: value}``)."""
    import json

    path = run / Run.LOSSES
    record = json.loads(path.read_text()) if path.exists() else []
    n_epochs = len(next(iter(losses.values()), []))
    for i in range(n_epochs):
        record.append({"step": min(start + (i + 1) * steps_per_epoch, final_step),
                       **{k: v[i] for k, v in losses.items()}})
    run.write_json(Run.LOSSES, record)
