"""Generate large background-only dilepton samples with a trained Lebese & Ruan generator (look-elsewhere toys).

    python papers/lebese_ruan/generate.py --run runs/lebese_ruan_quick --samples 1000000 --out toys.parquet

Reads the run's exported sampler (model.keras: the generator selected on the validation MC, with its
preprocessing, so it emits physical units). Output by extension: .parquet, .csv or .root (TTree "events"),
written atomically; prints events/s.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from gan4hep.io import write_table
from gan4hep.models import load_sampler
from gan4hep.runs import Run

from papers.lebese_ruan import model  # registers DileptonKinematics for loading


def main(argv: list[str] | None = None) -> None:
    """Draw ``--samples`` events from the run's model.keras into ``--out``."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="run folder written by train.py")
    p.add_argument("--samples", type=int, required=True, help="events to draw from the generator")
    p.add_argument("--out", type=Path, required=True, help="output file (.parquet, .csv or .root)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=65536, help="events per generator call")
    args = p.parse_args(argv)

    sampler = load_sampler(Run(args.run) / Run.MODEL)
    sampler.sample(min(args.batch_size, args.samples), seed=args.seed)  # warm-up (graph tracing) not timed
    t0 = time.time()
    x = sampler.sample(args.samples, seed=args.seed, batch_size=args.batch_size)
    seconds = time.time() - t0
    write_table(pd.DataFrame(x, columns=list(model.FEATURES)), args.out)
    print(f"generated {args.samples} events in {seconds:.2f} s: {args.samples / seconds:.3g} events/s "
          f"({args.run}) -> {args.out}")


if __name__ == "__main__":
    main()
