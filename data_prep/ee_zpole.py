"""e+ e- -> Z/gamma* -> l+ l- (l = e, mu) at the Z pole with Pythia 8, no detector: the B-VAE sample of the
Butter & Plehn review (Sec. 4.1, Fig. 9; Otten et al., Ref. [14], made it with MadGraph5_aMC@NLO).

Pythia: lepton beams at ``sqrt(s)`` (default m_Z = 91.1876 GeV), ``WeakSingleBoson:ffbar2gmZ`` (gamma*/Z with
interference), Z decays to e+ e- and mu+ mu- only (``23:onMode = off``, ``23:onIfAny = 11 13``), the lepton beams'
QED initial-state radiation (``PDF:lepton`` on, Pythia's default, so the dilepton mass falls below sqrt(s) and
follows the Z line shape times the radiator) and QED final-state radiation; no MPI, no hadronisation, no detector.
``PhaseSpace:mHatMin`` (default 50 GeV) cuts the photon-pole region of the ISR tail.

One row per event: the final-state lepton and antilepton four-momenta (E, px, py, pz in GeV) in the columns of
their flavour, the other flavour's eight columns zero (the review: "depending on the lepton flavor one set of
4-momenta is always set to zero", 16 dimensions, ``FEATURE_COLUMNS``), plus ``flavour`` (11 or 13), ``m_ll``
[GeV] and ``weight`` (1).

    python -m data_prep.ee_zpole --events 100000 --out samples/ee_zpole.root
"""

from __future__ import annotations

import argparse
import dataclasses

import awkward as ak
import numpy as np
import pandas as pd

from gan4hep import io
from data_prep import runner

TREE = "events"
M_Z = 91.1876  # GeV, PDG
PARTICLES = ("em", "ep", "mm", "mp")  # e-, e+, mu-, mu+
COMPONENTS = ("E", "px", "py", "pz")
FEATURE_COLUMNS = tuple(f"{p}_{c}" for p in PARTICLES for c in COMPONENTS)
COLUMNS = FEATURE_COLUMNS + ("flavour", "m_ll", "weight")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What defines an e+ e- -> l+ l- sample (stored by ``data_prep.runner`` as the sample's identity).

    Attributes:
        sqrt_s: centre-of-mass energy [GeV].
        m_min: PhaseSpace:mHatMin [GeV].
        isr, fsr: QED initial- / final-state radiation.
    """

    sqrt_s: float = M_Z
    m_min: float = 50.0
    isr: bool = True
    fsr: bool = True

    def __post_init__(self):
        if not 0 < self.m_min < self.sqrt_s:
            raise runner.InputError(f"need 0 < m_min < sqrt_s, got {self.m_min}, {self.sqrt_s}")


def pythia_settings(s: Settings) -> list[str]:
    """The Pythia 8 settings of a sample (module docstring)."""
    return ["Beams:idA = 11", "Beams:idB = -11", f"Beams:eCM = {s.sqrt_s}", "WeakSingleBoson:ffbar2gmZ = on",
            "23:onMode = off", "23:onIfAny = 11 13", f"PhaseSpace:mHatMin = {s.m_min}",
            f"PDF:lepton = {'on' if s.isr else 'off'}", f"PartonLevel:ISR = {'on' if s.isr else 'off'}",
            f"PartonLevel:FSR = {'on' if s.fsr else 'off'}", "PartonLevel:MPI = off", "HadronLevel:all = off"]


def lepton_table(prt) -> pd.DataFrame:
    """The feature table of a batch of events (``COLUMNS``).

    Args:
        prt: pythia8mc ``nextBatch(...).prt`` (jagged: id, status, p).

    Raises:
        RuntimeError: an event without a final-state l- and l+ of the flavour (e or mu) of its most energetic
            lepton. Of each charge the most energetic is taken.
    """
    fin = prt[prt.status > 0]
    aid = abs(fin.id)
    lep = fin[(aid == 11) | (aid == 13)]
    lep = lep[ak.argsort(lep.p.e, axis=1, ascending=False)]
    if not ak.all(ak.num(lep) >= 2):
        raise RuntimeError("event with fewer than two final-state charged leptons")
    # the hard flavour is the most energetic lepton's; photon splittings in the QED shower (gamma -> l+ l-) can
    # add softer pairs, which are not the decay products
    lep = lep[abs(lep.id) == abs(lep.id[:, 0])]
    minus, plus = lep[lep.id > 0], lep[lep.id < 0]
    if not (ak.all(ak.num(minus) >= 1) and ak.all(ak.num(plus) >= 1)):
        raise RuntimeError("event without a final-state l- and l+ of the hard flavour")
    minus, plus = minus[:, 0], plus[:, 0]
    flavour = ak.to_numpy(minus.id).astype(np.int32)
    cols = {c: np.zeros(len(flavour)) for c in FEATURE_COLUMNS}
    for name, part, fl in (("em", minus, 11), ("ep", plus, 11), ("mm", minus, 13), ("mp", plus, 13)):
        sel = flavour == fl
        for c, f in zip(COMPONENTS, ("e", "px", "py", "pz")):
            cols[f"{name}_{c}"][sel] = ak.to_numpy(part.p[f])[sel]
    df = pd.DataFrame(cols)
    df["flavour"] = flavour
    df["m_ll"] = dilepton_mass(df)
    df["weight"] = 1.0
    return df


def four_momenta(df: pd.DataFrame, particle: str) -> np.ndarray:
    """``(n, 4)`` (E, px, py, pz) of ``particle`` (one of ``PARTICLES``) from a table with ``FEATURE_COLUMNS``."""
    return np.stack([np.asarray(df[f"{particle}_{c}"], np.float64) for c in COMPONENTS], axis=1)


def mass(p: np.ndarray) -> np.ndarray:
    """Signed invariant mass ``sign(m^2) sqrt(|m^2|)`` of ``(n, 4)`` (E, px, py, pz) [GeV] (a generated
    four-vector may be space-like)."""
    m2 = p[:, 0] ** 2 - (p[:, 1:] ** 2).sum(axis=1)
    return np.sign(m2) * np.sqrt(np.abs(m2))


def dilepton_mass(df: pd.DataFrame) -> np.ndarray:
    """m_ll [GeV]: the mass of the sum of all four lepton four-vectors (the other flavour's are zero)."""
    return mass(sum(four_momenta(df, p) for p in PARTICLES))


def _generate_block(config, block, report):
    s = Settings(**config["settings"])
    pythia = runner.init_pythia(runner.configured_pythia(block.seed, pythia_settings(s)))
    chunk = int(config.get("chunk", 2000))
    parts, done = [], 0
    while done < block.events:
        n = min(chunk, block.events - done)
        parts.append(lepton_table(pythia.nextBatch(n, errorMode="skip").prt))
        done += n
        report(n)
    info = pythia.infoPython()
    return {"features": pd.concat(parts, ignore_index=True),
            "stats": {"sigma_pb": info.sigmaGen() * 1e9, "sigma_err_pb": info.sigmaErr() * 1e9, "events": done}}


def _block_tables(result):
    """One block's tree (the feature table itself), feature rows and statistics."""
    df = result["features"]
    return runner.BlockTables({TREE: {c: df[c].to_numpy() for c in df.columns}}, (), df, result["stats"])


_summarize = runner.cross_section_summary  # counts and the combined cross section (data_prep.merge)


def make_sample(out, events: int = 100_000, seed: int = 1, settings: Settings = Settings(), jobs: int = 1,
                job_index: int = 0, n_jobs: int = 1, block_size: int = 20_000, progress: bool = True,
                scheduler=None, cluster: str | None = None, workers: int | None = None, cluster_config=None,
                retries: int = 2, keep_parts: bool = False):
    """Generate the sample: ``out`` (tree ``events``) and ``out`` with ``_features`` (the same table, tree
    ``events``); returns the feature table's path (metadata: ``sigma_pb``, ``sigma_err_pb``). Seeded blocks,
    engines, resume and errors as ``data_prep.runner.produce``.

    Raises:
        data_prep.runner.InputError: bad settings or options.
    """
    out = runner.check_out(out)
    config = {"settings": dataclasses.asdict(settings)}
    blocks = runner.make_blocks(events, seed, block_size, job_index, n_jobs)
    meta = {"sample": "ee_zpole", "paper": "Butter & Plehn review, Sec. 4.1, Fig. 9 (B-VAE)", "seed": seed,
            "block_size": block_size, "job_index": job_index, "n_jobs": n_jobs, **dataclasses.asdict(settings),
            "pythia_settings": pythia_settings(settings), "columns": list(COLUMNS),
            "weight": "unweighted events (weight = 1); normalise to sigma_pb"}
    return runner.produce(runner.Sample.of("ee_zpole"), config, out, blocks, meta, progress=progress, jobs=jobs,
                          scheduler=scheduler, cluster=cluster, workers=workers, cluster_config=cluster_config,
                          retries=retries, keep_parts=keep_parts, desc="ee -> ll at the Z pole")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m data_prep.ee_zpole", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    runner.add_common_args(p, events=100_000, block_size=20_000, out="samples/ee_zpole.root")
    p.add_argument("--sqrt-s", type=float, default=Settings.sqrt_s, help="centre-of-mass energy [GeV]")
    p.add_argument("--m-min", type=float, default=Settings.m_min, help="PhaseSpace:mHatMin [GeV]")
    p.add_argument("--no-isr", action="store_true", help="no QED initial-state radiation (no lepton PDF)")
    p.add_argument("--no-fsr", action="store_true", help="no QED final-state radiation")
    args = p.parse_args(argv)
    with runner.cli_errors(p.prog):
        settings = Settings(sqrt_s=args.sqrt_s, m_min=args.m_min, isr=not args.no_isr, fsr=not args.no_fsr)
        path = make_sample(args.out, settings=settings, **runner.common_kwargs(args))
    meta = io.read_metadata(path)
    print(f"wrote {args.out} and {path}: {meta['events_generated']} events, "
          f"sigma = {meta['sigma_pb']:.4g} +- {meta['sigma_err_pb']:.2g} pb, {runner.rate_text(meta)}")


if __name__ == "__main__":
    main()
