"""The run folder: everything needed to resume a run, regenerate its tables and generate from it.

::

    RUN/
      recipe.json            the recipe, written once when the run starts and read back on resume
      preprocessing.json     fitted preprocessing state (``context_preprocessing.json`` for a conditional model)
      checkpoints/           ckpt-<step>.npz: weights and optimizer state, and the run state (random streams'
                             positions, the open loss window) that makes a resumed run exact (gan4hep.callbacks)
      best.npz               the checkpoint chosen by periodic evaluation, if any
      evaluation.json        the periodic evaluations, one entry per evaluation step
      losses.json            the logged losses, one entry per window of steps counted from step 0, written at
                             each window's end, across resumed invocations (gan4hep.training.LossLog)
      input.json             what the run was trained on: the input file's path, size and sha256, and what was read
                             from it (per column: dtype, kind, range, how it is trained and generated); written
                             once, checked on every later invocation (``check_input``)
      results.json           what training and evaluation found (steps, time, selected step, metrics); never the
                             recipe
      model.keras            the exported sampler (network + preprocessing; ``gan4hep.models.load_sampler``)

Every file is written atomically (temporary name, then rename): a process killed at any moment (``kill -9``
during a checkpoint write included) leaves the previous complete file, plus at most a temporary
``.<name>.<pid>.tmp*`` file that ``clean_partial`` removes. ``lock`` keeps a second process from training the
same folder at the same time.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .callbacks import latest_checkpoint
from .errors import InputError
from .io import stale_partial_files, write_json

__all__ = ["Run", "RunMismatch", "InputChanged", "RunLocked"]


class RunMismatch(InputError):
    """A run folder holds a run with another recipe than the one asked for."""


class InputChanged(RunMismatch):
    """The input file of a run differs from the one the run was trained on (size or content hash)."""


class RunLocked(InputError):
    """Another process is training in this run folder."""


def _diff(stored: Mapping, asked: Mapping) -> list[str]:
    keys = sorted(set(stored) | set(asked))
    return [f"{k}: {stored.get(k)!r} in the run, {asked.get(k)!r} asked" for k in keys if stored.get(k) != asked.get(k)]


class Run:
    """A run folder (see the module docstring for its layout).

    Args:
        path: the folder; created on ``start``.
    """

    RECIPE, RESULTS, EVALUATION, LOSSES, BEST, MODEL, INPUT = ("recipe.json", "results.json", "evaluation.json",
                                                                "losses.json", "best.npz", "model.keras",
                                                                "input.json")

    def __init__(self, path):
        self.path = Path(path.path if isinstance(path, Run) else path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __repr__(self):
        return f"Run({str(self.path)!r})"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    # ---- recipe ------------------------------------------------------------------------------------------------
    def exists(self) -> bool:
        """True if a run was started here (its recipe is written)."""
        return (self.path / self.RECIPE).exists()

    def recipe(self) -> dict:
        """The stored recipe.

        Raises:
            FileNotFoundError: not a run folder (no recipe.json).
        """
        path = self.path / self.RECIPE
        if not path.exists():
            raise FileNotFoundError(f"{self.path}: not a gan4hep run folder (no {self.RECIPE})")
        return json.loads(path.read_text())

    def start(self, recipe: Mapping[str, Any], resume: bool = False, mutable: tuple[str, ...] = ()) -> dict:
        """Start a run with ``recipe``, or continue the one already here.

        - a new folder: ``recipe`` is written and returned;
        - ``resume``: the run's own stored recipe is returned, whatever ``recipe`` says (a run made with another
          preset continues on its own schedule);
        - an existing run with the same recipe, up to the fields named in ``mutable`` (a longer schedule): continued
          with the new values of those fields, which are written back;
        - an existing run with another recipe and no ``resume``: ``RunMismatch``.

        Args:
            recipe: JSON-ready dict (``gan4hep.recipes.to_dict``).
            resume: continue the stored run.
            mutable: fields that may change between invocations without starting a new run (e.g. ``steps``).

        Raises:
            RunMismatch: the folder holds a run with another recipe (names the differing fields).
            FileNotFoundError: ``resume`` on a folder without a run.
        """
        recipe = json.loads(json.dumps(dict(recipe), default=float))  # as it will read back
        if not self.exists():
            if resume:
                raise FileNotFoundError(f"{self.path}: nothing to resume (no {self.RECIPE})")
            if self.latest_checkpoint() is not None:
                raise RunMismatch(f"{self.path} holds checkpoints but no {self.RECIPE} (a run of another version or "
                                  "program): use a new --out")
            self.path.mkdir(parents=True, exist_ok=True)
            write_json(recipe, self.path / self.RECIPE)
            return recipe
        stored = self.recipe()
        if resume:
            return stored
        self.check_recipe(recipe, mutable)
        if stored != recipe:
            write_json(recipe, self.path / self.RECIPE)
        return recipe

    def start_recipe(self, asked, base, resume: bool = False, added_fields: tuple[str, ...] = ()):
        """``start`` for a recipe dataclass: start or continue the run with ``asked`` and return the recipe the run
        goes on with, with what of ``asked`` it does not apply.

        Args:
            asked: the recipe asked for (a frozen dataclass: a preset with the command-line options).
            base: the paper's recipe: the value of every field a stored recipe lacks (``gan4hep.recipes.from_dict``).
            resume: continue the stored run with its own recipe.
            added_fields: fields added to the recipe after runs were made: a stored recipe without one continues
                (instead of a ``RunMismatch``) when ``asked`` holds ``base``'s value for it.

        Returns:
            ``(recipe, ignored)``: the run's recipe (same type as ``asked``) and the deviations of ``asked`` from it
            (``gan4hep.recipes.deviations`` lines; non-empty only on ``resume``).

        Raises:
            RunMismatch, FileNotFoundError: as ``start``.
        """
        from .recipes import deviations, from_dict, to_dict

        stored = self.recipe() if self.exists() else {}
        paper = to_dict(base)
        wanted = {k: v for k, v in to_dict(asked).items()
                  if not (k in added_fields and stored and k not in stored and v == paper[k])}
        recipe = from_dict(type(asked), self.start(wanted, resume=resume), base=base)
        return recipe, deviations(asked, recipe, label="run")

    def check_recipe(self, recipe: Mapping[str, Any], mutable: tuple[str, ...] = ()) -> None:
        """Refuse ``recipe`` if the run here has another one (up to the ``mutable`` fields); writes nothing.

        A field absent from an older run's recipe compares as None (the default of every optional field). A folder
        without a run accepts any recipe.

        Raises:
            RunMismatch: names the differing fields.
        """
        if not self.exists():
            return
        recipe = json.loads(json.dumps(dict(recipe), default=float))
        stored = self.recipe()
        if _diff({k: v for k, v in stored.items() if k not in mutable},
                 {k: v for k, v in recipe.items() if k not in mutable}):
            raise RunMismatch(f"{self.path} holds a run with another recipe ({'; '.join(_diff(stored, recipe))}); "
                              "pass --resume to continue it as it was, or use a new --out")

    # ---- input ---------------------------------------------------------------------------------------------
    def input_record(self) -> dict | None:
        """The stored ``input.json`` (see ``record_input``), or None for a run that has not recorded its input."""
        path = self.path / self.INPUT
        return json.loads(path.read_text()) if path.exists() else None

    def record_input(self, record: Mapping[str, Any]) -> dict:
        """Write ``input.json`` once: the input's ``fingerprint`` (``gan4hep.io.fingerprint``: path, size,
        sha256) and whatever describes what was read from it (columns, dtypes, ranges, methods).

        Returns:
            The record as stored.

        Raises:
            RunMismatch: the run already holds another input record (it is never overwritten).
        """
        record = json.loads(json.dumps(dict(record), default=float))
        stored = self.input_record()
        if stored is not None:
            if stored != record:
                raise RunMismatch(f"{self.path} already records its input ({self.INPUT}); it is written once")
            return stored
        write_json(record, self.path / self.INPUT)
        return record

    def require(self, *names: str, hint: str = "train and evaluate the run first") -> None:
        """Check that the files ``names`` exist in the run folder (e.g. before shipping a run's model).

        Raises:
            FileNotFoundError: ``"<run>: no <name>; <hint>"`` for the first one missing.
        """
        for name in names:
            if not (self.path / name).exists():
                raise FileNotFoundError(f"{self.path}: no {name}; {hint}")

    def input_table(self, given: str | Path | None, record: str = "sample.json") -> Path | None:
        """The input table of a paper run: ``given`` (resolved) for a new run; for a run whose ``record`` file
        (written by the paper's data step, key ``"input"``: a path, or null for a generated sample) exists, the
        table it was started with, which ``given`` must not contradict.

        Raises:
            RunMismatch: ``given`` differs from the run's own input (names both).
        """
        path = self.path / record
        if not path.exists():
            return None if given is None else Path(given).resolve()
        used = json.loads(path.read_text())["input"]
        if given is not None and str(Path(given).resolve()) != used:
            raise RunMismatch(f"{self.path} was trained on {used or 'the generated sample'}, not {given}")
        return None if used is None else Path(used)

    def check_input(self, fingerprint: Mapping[str, Any]) -> None:
        """Refuse an input file that differs from the one this run was trained on.

        The content (size and sha256) decides; a file that was moved or renamed with the same content is accepted.
        A run without ``input.json`` (a new run, or one of an older version) accepts any input.

        Args:
            fingerprint: ``gan4hep.io.fingerprint`` of the input about to be used.

        Raises:
            InputChanged: the size or sha256 differs (names the file, both hashes and what to do).
        """
        stored = (self.input_record() or {}).get("fingerprint")
        if stored is None:
            return
        if stored.get("size") == fingerprint.get("size") and stored.get("sha256") == fingerprint.get("sha256"):
            return
        raise InputChanged(
            f"{fingerprint.get('path')}: not the input this run was trained on: {self.path} was trained on "
            f"{stored.get('path')} ({stored.get('size')} bytes, sha256 {str(stored.get('sha256'))[:16]}...), this "
            f"file has {fingerprint.get('size')} bytes, sha256 {str(fingerprint.get('sha256'))[:16]}...; its "
            "preprocessing and checkpoints belong to the old data: restore that file, or start a new run with a "
            "new --out")

    # ---- crash safety ----------------------------------------------------------------------------------------
    def clean_partial(self) -> list[Path]:
        """Delete the temporary files left in the run folder and ``checkpoints/`` by a writer that was killed
        before its rename (see ``gan4hep.io.stale_partial_files``); returns what was deleted. The complete files
        they were to replace are untouched."""
        gone = stale_partial_files(self.path) + stale_partial_files(self.checkpoints)
        for p in gone:
            p.unlink(missing_ok=True)
        return gone

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the run folder (``RUN/.lock``, ``fcntl.flock``) for the block: a second
        process training the same folder is refused instead of corrupting it. The lock dies with its process
        (``kill -9`` included), so a killed run never leaves the folder locked.

        Raises:
            RunLocked: another live process holds the lock (names its pid).
        """
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        fh = open(self.path / ".lock", "a+")
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                holder = fh.read().strip() or "unknown"
                raise RunLocked(f"{self.path} is being trained by another process (pid {holder}); wait for it to "
                                "end or use another --out") from None
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            yield
        finally:
            fh.close()

    # ---- preprocessing -----------------------------------------------------------------------------------------
    def save_preprocessing(self, pipeline, name: str = "preprocessing") -> Path:
        """Write a fitted pipeline's state to ``RUN/<name>.json``."""
        return pipeline.save(self.path / f"{name}.json")

    def load_preprocessing(self, name: str = "preprocessing"):
        """Read ``RUN/<name>.json`` back as a fitted pipeline.

        Raises:
            FileNotFoundError: no such state file (names it).
        """
        from .preprocessing import load

        return load(self.path / f"{name}.json")

    # ---- results -----------------------------------------------------------------------------------------------
    def results(self) -> dict:
        """What training and evaluation recorded so far (empty for a new run)."""
        path = self.path / self.RESULTS
        return json.loads(path.read_text()) if path.exists() else {}

    def update_results(self, **values: Any) -> dict:
        """Merge ``values`` into results.json (atomically) and return the whole record."""
        results = {**self.results(), **values}
        write_json(results, self.path / self.RESULTS)
        return results

    def losses(self) -> dict[str, list]:
        """The logged losses of all invocations as ``{"step": [...], name: [...]}`` (empty for a new run)."""
        path = self.path / self.LOSSES
        record = json.loads(path.read_text()) if path.exists() else []
        keys = list(dict.fromkeys(k for entry in record for k in entry))
        return {k: [entry.get(k) for entry in record] for k in keys}

    def write_json(self, name: str, obj: Any) -> Path:
        """Write an artefact ``RUN/<name>`` as JSON, atomically."""
        return write_json(obj, self.path / name)

    # ---- weights -----------------------------------------------------------------------------------------------
    def latest_checkpoint(self) -> Path | None:
        return latest_checkpoint(self.checkpoints)

    def restore(self, model, prefer_best: bool = True) -> int:
        """Load the selected checkpoint (``best.npz``) if there is one and ``prefer_best``, else the newest
        periodic checkpoint, into an identically built ``model``; returns its step.

        Raises:
            FileNotFoundError: the run has no checkpoint (names the folder).
        """
        best = self.path / self.BEST
        path = best if (prefer_best and best.exists()) else self.latest_checkpoint()
        if path is None:
            raise FileNotFoundError(f"{self.path}: no checkpoint in {self.checkpoints}; train first")
        return model.load_checkpoint(path)
