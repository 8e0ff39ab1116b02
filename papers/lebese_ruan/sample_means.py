"""Our dilepton MC means beside the MC means of Lebese & Ruan's Table 1 (published, reference only).

    python papers/lebese_ruan/sample_means.py --input samples/dilepton_features.root --out validation/

Writes ``dilepton_means_vs_published.md`` / ``.csv``: our means raw and after the event-level tail cut (drop
events with any feature above its 90 % quantile, ``data_prep.validate.tail_cut_events``: our reading of "10 % of
the tails is cut"), the published MC means (``published.TABLE1``) and their ratio. The published numbers are
compared against, never an output. The sample's plots and means alone: ``python -m data_prep.validate --dilepton``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from data_prep import validate
from gan4hep import io
from papers.lebese_ruan import published

UNPHYSICAL_PUBLISHED = ("dphi_ll", "dr_ll")  # published.NOTE: 0.002 is not a lepton pair's mean Delta phi / Delta R


def dilepton_means(df: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Table (feature, ours_raw, ours_tail_cut, published, ratio_raw, ratio_tail_cut, note): our weighted means
    raw and after the event-level tail cut (``data_prep.validate.dilepton_means``) beside the published MC means of
    Table 1, and the fraction of events the tail cut keeps."""
    table, frac = validate.dilepton_means(df)
    pub = np.array([published.TABLE1[c]["mc"] for c in table["feature"]])
    table["published"] = pub
    table["ratio_raw"] = table["ours_raw"] / pub
    table["ratio_tail_cut"] = table["ours_tail_cut"] / pub
    table["note"] = ["published value not physical (kept as published)" if c in UNPHYSICAL_PUBLISHED else ""
                     for c in table["feature"]]
    return table, frac


def write_means(path, out) -> str:
    """``OUT/dilepton_means_vs_published.md`` and ``.csv`` for the feature table ``path``; returns the Markdown
    text.

    Raises:
        FileNotFoundError, KeyError: as ``gan4hep.io.read_table`` (no such table, a feature column missing).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    df = io.read_table(path)
    table, frac = dilepton_means(df)
    md = ["# Dilepton sample: MC means vs Lebese & Ruan Table 1 (published, reference only)", "",
          f"Sample: {path}, {len(df)} selected events; tail cut (drop events with any feature above its 90 % "
          f"quantile) keeps {frac:.0%}.", "",
          "| feature | ours raw | ours tail-cut | published | ratio raw | ratio tail-cut | note |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in table.itertuples():
        md.append(f"| {r.feature} | {r.ours_raw:.3f} | {r.ours_tail_cut:.3f} | {r.published:.3f} | "
                  f"{r.ratio_raw:.2f} | {r.ratio_tail_cut:.2f} | {r.note} |")
    with io.atomic_path(out / "dilepton_means_vs_published.md") as tmp:
        tmp.write_text("\n".join(md) + "\n")
    io.write_table(table, out / "dilepton_means_vs_published.csv")
    return "\n".join(md)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path, required=True, help="dilepton feature table (data_prep.dilepton)")
    p.add_argument("--out", type=Path, default=Path("validation"), help="output folder (default %(default)s)")
    args = p.parse_args(argv)
    print(write_means(args.input, args.out))


if __name__ == "__main__":
    main()
