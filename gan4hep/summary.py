"""Mean and spread of the numbers of several runs (seeds): what a README quotes for a preset.

    python -m gan4hep.summary runs/vaselli_quick_s1 runs/vaselli_quick_s2 runs/vaselli_quick_s3 \
        [--file metrics.json] [--keys classifier_auc speedup 'targets.*.wasserstein_over_std'] [--out summary.json]

Reads the same JSON file (``metrics.json`` by default) of every run, and for every numeric leaf (nested keys joined
by ``.``) gives the mean, the sample standard deviation (ddof = 1), the minimum, the maximum and the values in run
order. Leaves that are missing, null or not numbers in some run are reported with the runs that have them only,
and ``n`` says how many; booleans are not averaged.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gan4hep import io
from gan4hep.errors import InputError


def flatten(tree: Any, prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a JSON-like tree as ``{"a.b.c": value}`` (lists index as ``a.0``; booleans, strings
    and nulls left out)."""
    if isinstance(tree, Mapping):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        if isinstance(tree, (int, float)) and not isinstance(tree, bool) and math.isfinite(tree):
            return {prefix: float(tree)}
        return {}
    out: dict[str, float] = {}
    for key, value in items:
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def summarise(results: Sequence[Mapping], keys: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Mean and spread of every numeric leaf over several runs' results.

    Args:
        results: one JSON-like mapping per run (e.g. each run's ``metrics.json``), in run order.
        keys: shell-style patterns of the flattened keys to keep (``"targets.*.ks"``); None: all.

    Returns:
        ``{key: {"n", "mean", "std", "min", "max", "values"}}`` for every key present in at least one run;
        ``std`` is the sample standard deviation (None for one run), ``values`` has None where a run lacks it.

    Raises:
        ValueError: ``results`` is empty.
    """
    if not results:
        raise ValueError("summarise needs at least one run")
    flat = [flatten(r) for r in results]
    names = sorted({k for f in flat for k in f})
    if keys is not None:
        names = [k for k in names if any(fnmatch.fnmatchcase(k, p) for p in keys)]
    out = {}
    for name in names:
        values = [f.get(name) for f in flat]
        present = [v for v in values if v is not None]
        n = len(present)
        mean = sum(present) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in present) / (n - 1)) if n > 1 else None
        out[name] = {"n": n, "mean": mean, "std": std, "min": min(present), "max": max(present), "values": values}
    return out


def summarise_runs(runs: Sequence[str | Path], file: str = "metrics.json",
                   keys: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """``summarise`` of the file ``file`` of each run folder in ``runs``.

    Raises:
        InputError: a run folder without that file, or a file that is not JSON (names the file).
    """
    results = []
    for run in runs:
        path = Path(run) / file
        if not path.is_file():
            raise InputError(f"{path}: no such file (is {run} a finished run?)")
        try:
            results.append(json.loads(path.read_text()))
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: not valid JSON ({err})") from None
    return summarise(results, keys)


def mean_spread(stat: Mapping[str, Any], fmt: str = ".4g") -> str:
    """``"mean +- std"`` of one entry with ``mean`` and ``std`` (``summarise``'s, or a card's), each formatted with
    ``fmt``; the mean alone where ``std`` is None (one run)."""
    return f"{stat['mean']:{fmt}}" + ("" if stat.get("std") is None else f" +- {stat['std']:{fmt}}")


def markdown(summary: Mapping[str, Mapping[str, Any]], digits: int = 4) -> str:
    """The summary as a Markdown table: key, runs, mean +- std, min, max."""
    lines = ["| key | runs | mean +- std | min | max |", "| --- | --- | --- | --- | --- |"]
    for key, s in summary.items():
        lines.append(f"| {key} | {s['n']} | {mean_spread(s, f'.{digits}g')} | {s['min']:.{digits}g} | "
                     f"{s['max']:.{digits}g} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run folders (one per seed)")
    p.add_argument("--file", default="metrics.json", help="the JSON file of each run to summarise")
    p.add_argument("--keys", nargs="+", default=None, help="shell-style patterns of the keys to keep")
    p.add_argument("--out", type=Path, default=None, help="also write the summary as JSON here")
    args = p.parse_args(argv)
    try:
        summary = summarise_runs(args.runs, args.file, args.keys)
    except InputError as err:
        print(f"gan4hep.summary: error: {err}")
        return 2
    print(markdown(summary), end="")
    if args.out is not None:
        io.write_json(summary, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
