"""What every figure script of this folder shares: the command line, the run folder and its recipe, the
provenance line (preset, seed, date, machine) and the writers of tables (Markdown + CSV) and ``metrics.json``."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import pandas as pd

from gan4hep.io import atomic_path, markdown_table, write_json
from gan4hep.recipes import deviations, select
from gan4hep.runs import Run

from papers.butter_plehn.recipe import PRESETS


def parser(description: str) -> argparse.ArgumentParser:
    """``--preset quick|paper --out RUN --seed S --resume``; a script adds its own options."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/butter_plehn_<figure>_<preset>)")
    p.add_argument("--seed", type=int, default=None, help="seed of samples, networks and noise (preset: 1)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out with its own stored recipe")
    return p


def _presets_of(part: str, presets: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The preset table of ``part``: ``presets`` as given (a study outside ``Recipe``, e.g. ``BVAE_PRESETS``), or
    each preset's ``part`` of ``recipe.PRESETS``."""
    return presets if presets is not None else {name: getattr(r, part) for name, r in PRESETS.items()}


def start(args: argparse.Namespace, part: str, presets: Mapping[str, Any] | None = None,
          **changes: Any) -> tuple[Run, Any]:
    """The run folder of figure ``part`` and its recipe: the preset's part with ``--seed`` and ``changes``, or
    the run's own stored recipe with ``--resume``.

    Args:
        presets: the study's own preset table with a ``"paper"`` entry (None: the ``part`` of ``recipe.PRESETS``).

    Raises:
        gan4hep.runs.RunMismatch: the folder holds a run with another recipe (and no ``--resume``).
    """
    table = _presets_of(part, presets)
    asked = select(table, args.preset)
    changes = {k: v for k, v in changes.items() if v is not None}
    if args.seed is not None:
        changes["seed"] = args.seed
    asked = dataclasses.replace(asked, **changes)
    run = Run(args.out or Path("runs") / f"butter_plehn_{part}_{args.preset}")
    recipe, _ = run.start_recipe(asked, table["paper"], args.resume)
    return run, recipe


def provenance(recipe, part: str, preset: str | None = None, presets: Mapping[str, Any] | None = None) -> dict:
    """Preset, seed, date, machine and the deviations from the paper's recipe: stored in every metrics.json and
    printed under every table.

    Args:
        recipe: the run's recipe (one figure's part).
        part: its name in ``Recipe`` (``"camel"``, ...).
        preset: the preset asked for (None: the nearest one, the preset ``recipe`` differs from in the fewest
            fields). A recipe that differs from that preset in more than the seed is labelled
            ``"<preset>+changes"`` and the changes are listed.
        presets: the study's own preset table (as in ``start``).
    """
    table = _presets_of(part, presets)
    preset = preset or min(table, key=lambda name: sum(getattr(recipe, f.name) != getattr(table[name], f.name)
                                                       for f in dataclasses.fields(recipe)))
    changes = [line for line in deviations(recipe, table[preset], label=preset) if not line.startswith("seed:")]
    return {"preset": preset + ("+changes" if changes else ""), "changes_from_preset": changes,
            "seed": recipe.seed,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores, "
                       f"{platform.python_implementation()} {platform.python_version()})",
            "deviations_from_paper": deviations(recipe, table["paper"])}


def write_table(df: pd.DataFrame, run: Run, stem: str, prov: dict, title: str) -> str:
    """Write ``stem.md`` (title, table, provenance line) and ``stem.csv`` (with a ``preset`` column) into the run
    folder; returns the Markdown."""
    df = df.copy()
    df.insert(0, "preset", prov["preset"])
    text = (f"### {title}\n\n" + markdown_table(df) +
            f"\npreset {prov['preset']}, seed {prov['seed']}, {prov['date']}, {prov['machine']}\n")
    with atomic_path(run / f"{stem}.md") as tmp:
        Path(tmp).write_text(text)
    with atomic_path(run / f"{stem}.csv") as tmp:
        df.to_csv(tmp, index=False)
    return text


def write_metrics(run: Run, metrics: dict, prov: dict) -> Path:
    """``RUN/metrics.json``: the figure's numbers with the provenance under ``"provenance"``."""
    return write_json({**metrics, "provenance": prov}, run / "metrics.json")
