"""Keras callbacks for long runs: periodic checkpoints with resume, a divergence guard, periodic evaluation.

They talk to the model contract only (``gan4hep.models.base``: ``step``, ``finite``, ``save_checkpoint``,
``load_checkpoint``) and count the model's steps (generator steps for a GAN), so a resumed run continues the same
schedule whatever the model family.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import keras

from .errors import RunError
from .io import write_json

_CKPT = re.compile(r"ckpt-(\d+)\.npz$")


class TrainingDiverged(RunError):
    """Raised when a loss becomes NaN or infinite."""


def list_checkpoints(directory):
    """Checkpoints in ``directory`` as a sorted list of (step, path)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _CKPT.search(p.name))]
    return sorted(found)


def latest_checkpoint(directory):
    """Path of the newest checkpoint in ``directory`` or None."""
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def resume(model, directory):
    """Load the newest checkpoint in ``directory`` into ``model``; return the step it restores (0 if
    there is none)."""
    path = latest_checkpoint(directory)
    return 0 if path is None else model.load_checkpoint(path)


def _finite(logs):
    return all(math.isfinite(float(v)) for v in (logs or {}).values())


class StopAt(keras.callbacks.Callback):
    """End training exactly at ``steps`` model steps (``fit`` epochs need not divide the schedule)."""

    def __init__(self, steps):
        super().__init__()
        self.steps = int(steps)

    def on_train_batch_end(self, batch, logs=None):
        if self.model.step >= self.steps:
            self.model.stop_training = True


class PeriodicCheckpoint(keras.callbacks.Callback):
    """Save ``ckpt-<step>.npz`` (weights + optimizer state, atomically) every ``every`` model steps and at the
    end of training; keep the newest ``keep`` (None: all). Never writes a checkpoint after a non-finite loss or
    with non-finite weights (losses are logged before the update: a NaN gradient shows only in the weights), so the
    newest checkpoint is always the last good one."""

    def __init__(self, directory, every, keep=None):
        super().__init__()
        self.directory = Path(directory)
        self.every = int(every)
        self.keep = keep
        self._last_step = None

    def _save(self):
        """Write this step's checkpoint (replacing a stale file of an earlier run with the same name)."""
        step = self.model.step
        if step == self._last_step or not self.model.finite():
            return
        self.model.save_checkpoint(self.directory / f"ckpt-{step:09d}.npz")
        self._last_step = step
        if self.keep is not None:
            for _, old in list_checkpoints(self.directory)[: -self.keep]:
                old.unlink()

    def on_train_batch_end(self, batch, logs=None):
        if _finite(logs) and self.model.step % self.every == 0:
            self._save()

    def on_train_end(self, logs=None):
        if _finite(logs) and self.model.step > 0:
            self._save()


class DivergenceGuard(keras.callbacks.Callback):
    """Stop training with ``TrainingDiverged`` as soon as any logged loss is NaN or infinite, naming the loss,
    the step and the last good checkpoint (if ``checkpoint_dir`` is given)."""

    def __init__(self, checkpoint_dir=None):
        super().__init__()
        self.checkpoint_dir = checkpoint_dir

    def on_train_batch_end(self, batch, logs=None):
        bad = [k for k, v in (logs or {}).items() if not math.isfinite(float(v))]
        if bad:
            self.model.stop_training = True
            last = latest_checkpoint(self.checkpoint_dir) if self.checkpoint_dir else None
            raise TrainingDiverged(
                f"training diverged at step {self.model.step}: {', '.join(bad)} = "
                f"{', '.join(str(float(logs[k])) for k in bad)}; last good checkpoint: {last or 'none'}"
            )


class PeriodicEvaluation(keras.callbacks.Callback):
    """Every ``every`` model steps call ``evaluate(model) -> dict`` and record it with the step.

    With ``monitor`` set, the best value (``mode`` "min"/"max") is tracked and, if ``best_path`` is given, the
    model's checkpoint at that step is saved there (atomically). ``history`` is written to ``history_path`` as JSON
    after each evaluation if given; with ``resume`` an existing history file is read back first, so a resumed
    run keeps its earlier evaluations and best. This is how "best epoch" selection is done on a validation sample.
    """

    def __init__(self, every, evaluate, monitor=None, mode="min", best_path=None, history_path=None, resume=False):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.every = int(every)
        self.evaluate = evaluate
        self.monitor = monitor
        self.mode = mode
        self.best_path = best_path
        self.history_path = history_path
        self.history = []
        self.best = None
        self.best_step = None
        if resume and history_path is not None and Path(history_path).exists():  # keep the record and the best
            for entry in json.loads(Path(history_path).read_text()):
                self._record(entry)

    def _record(self, result):
        """Append ``result``; return True if it is the new best of the monitored metric."""
        self.history.append(result)
        if self.monitor is None:
            return False
        if self.monitor not in result:
            raise KeyError(f"evaluation returned {sorted(result)}, no monitored metric {self.monitor!r}")
        value = result[self.monitor]
        if value is not None and math.isfinite(value) and self._better(value):  # NaN is stored as null
            self.best, self.best_step = value, result["step"]
            return True
        return False

    def _better(self, value):
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def run(self):
        step = self.model.step
        if self.history and self.history[-1]["step"] == step:
            return
        result = {"step": step, **{k: float(v) for k, v in self.evaluate(self.model).items()}}
        if self._record(result) and self.best_path is not None:
            self.model.save_checkpoint(self.best_path)
        if self.history_path is not None:
            write_json(self.history, self.history_path)

    def on_train_batch_end(self, batch, logs=None):
        if self.model.step % self.every == 0:
            self.run()

    def on_train_end(self, logs=None):
        self.run()
