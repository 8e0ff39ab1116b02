"""Drell-Yan pp -> gamma*/Z -> mu+ mu- at 13 TeV with Pythia 8, for the Butter & Plehn review figures.

Two levels:

* ``hard`` (Fig. 3, the subtraction GAN, R Sec. 3.2, Eq. (15)): the 2 -> 2 process with no shower, no MPI, no
  primordial kT and no hadronisation, so every event is two back-to-back muons. ``--mode B`` is
  ``WeakZ0:gmZmode = 0`` (full gamma*/Z with interference), ``--mode S`` is ``gmZmode = 1`` (gamma* only),
  ``--mode Z`` is ``gmZmode = 2`` (Z only). Each sample carries Pythia's generated cross section
  (``sigma_pb`` in its metadata): weight a sample by it to subtract.
* ``detector`` (Figs. 7-8, the Z -> ll GAN with regression terms, R Sec. 4.1): full Pythia (ISR, FSR, optional
  MPI, hadronisation), optional pile-up (a Poisson number of ``SoftQCD:nonDiffractive`` events, mean
  ``--pileup``, whose particles are added to the event before the detector), our ATLAS-like detector response
  (``data_prep.dilepton.detector_response``, jets stored above ``--jet-pt-min``), and the selection: at least two
  muons, the two leading of opposite charge, both with pT > 20 GeV. Features: the two muons (pT, eta, phi), five
  jets (pT, eta, phi, m; zero-padded), the missing-pT vector, the number of primary vertices, the muons'
  relative isolation, plus m_ll and the number of jets above 15 GeV.

The decay is restricted to muons with ``23:onMode = off``, ``23:onIfMatch = 13 -13`` (Pythia applies the Z0
decay table to the whole gamma*/Z0), and the mass window is ``PhaseSpace:mHatMin/mHatMax``.

    python -m data_prep.drell_yan --level hard --mode B --events 100000 --out samples/dy_B.root
    python -m data_prep.drell_yan --level hard --mode S --events 100000 --out samples/dy_S.root
    python -m data_prep.drell_yan --level detector --events 50000 --jobs 2 --out samples/zmumu.root
    python -m data_prep.drell_yan --level detector --mpi --pileup 20 --events 5000 --out samples/zmumu_pu.root
"""

from __future__ import annotations

import argparse
import dataclasses

import awkward as ak
import numpy as np
import pandas as pd

from gan4hep import io
from data_prep import runner
from data_prep.dilepton import Detector, detector_response

MODES = {"B": 0, "S": 1, "Z": 2}  # WeakZ0:gmZmode
LEVELS = ("hard", "detector")
HARD_TREE, DETECTOR_TREE = "events", "Delphes"
HARD_COLUMNS = ("pt_lm", "eta_lm", "phi_lm", "pt_lp", "eta_lp", "phi_lp", "m_ll", "y_ll", "pt_ll", "cos_theta")
N_JETS = 5
MUON_COLUMNS = tuple(f"mu{i}_{c}" for i in range(2) for c in ("pt", "eta", "phi"))
JET_COLUMNS = tuple(f"jet{i}_{c}" for i in range(N_JETS) for c in ("pt", "eta", "phi", "m"))
DETECTOR_COLUMNS = MUON_COLUMNS + JET_COLUMNS + ("met_x", "met_y", "n_pv", "mu0_iso", "mu1_iso")
DERIVED_COLUMNS = ("m_ll", "n_jets15", "met")
MU_PT_MIN = 20.0  # selection [GeV] (ours)
JET_COUNT_PT_MIN = 15.0  # R Sec. 4.1: "the number of jets with pT > 15 GeV"


@dataclasses.dataclass(frozen=True)
class Settings:
    """What defines a Drell-Yan sample (``data_prep.runner`` stores it as the sample's identity).

    Attributes:
        level: ``"hard"`` or ``"detector"``.
        mode: ``"B"`` (gamma*/Z), ``"S"`` (gamma*), ``"Z"`` (Z only).
        m_min, m_max: PhaseSpace:mHatMin / mHatMax [GeV].
        ecm: centre-of-mass energy [GeV].
        mpi: multiparton interactions (detector level only).
        pileup: mean number of pile-up interactions (0: none; detector level only).
        jet_pt_min: stored jets above this pT [GeV] (detector level).
    """

    level: str = "hard"
    mode: str = "B"
    m_min: float = 60.0
    m_max: float = 120.0
    ecm: float = 13000.0
    mpi: bool = False
    pileup: float = 0.0
    jet_pt_min: float = 15.0

    def __post_init__(self):
        if self.level not in LEVELS:
            raise runner.InputError(f"level must be one of {LEVELS}, got {self.level!r}")
        if self.mode not in MODES:
            raise runner.InputError(f"mode must be one of {sorted(MODES)}, got {self.mode!r}")
        if not 0 < self.m_min < self.m_max:
            raise runner.InputError(f"need 0 < m_min < m_max, got {self.m_min}, {self.m_max}")
        if self.pileup < 0:
            raise runner.InputError(f"pileup must be >= 0, got {self.pileup}")


def pythia_settings(s: Settings) -> list[str]:
    """The Pythia 8 settings of a sample (R Sec. 3.2 Eq. (15) for ``hard``, R Sec. 4.1 for ``detector``)."""
    common = [
        f"Beams:eCM = {s.ecm}",
        "WeakSingleBoson:ffbar2gmZ = on",
        f"WeakZ0:gmZmode = {MODES[s.mode]}",
        "23:onMode = off",
        "23:onIfMatch = 13 -13",
        f"PhaseSpace:mHatMin = {s.m_min}",
        f"PhaseSpace:mHatMax = {s.m_max}",
    ]
    if s.level == "hard":
        return common + ["PartonLevel:ISR = off", "PartonLevel:FSR = off", "PartonLevel:MPI = off",
                         "BeamRemnants:primordialKT = off", "HadronLevel:all = off"]
    return common + [f"PartonLevel:MPI = {'on' if s.mpi else 'off'}", "HadronLevel:all = on"]


def pileup_settings(ecm: float = 13000.0) -> list[str]:
    """Minimum-bias (inelastic non-diffractive) events for pile-up."""
    return [f"Beams:eCM = {ecm}", "SoftQCD:nonDiffractive = on", "HadronLevel:all = on"]


# --------------------------------------------------------------------------------------------------- features
def _pt_eta_phi(p):
    pt = np.hypot(p.px, p.py)
    return pt, np.arcsinh(p.pz / np.maximum(pt, 1e-12)), np.arctan2(p.py, p.px)


def hard_features(prt) -> pd.DataFrame:
    """Features of hard-level events: the mu- and mu+ (pT [GeV], eta, phi), m_ll [GeV], y_ll, pT_ll [GeV] and the
    Collins-Soper cos theta of the mu-, one row per event.

    Raises:
        RuntimeError: an event without exactly one final-state mu- and one mu+.
    """
    fin = prt[prt.status > 0]
    lm = fin[fin.id == 13]
    lp = fin[fin.id == -13]
    if not (ak.all(ak.num(lm) == 1) and ak.all(ak.num(lp) == 1)):
        raise RuntimeError("hard-level event without exactly one final-state mu- and one mu+")
    a, b = lm.p[:, 0], lp.p[:, 0]
    ax = {k: ak.to_numpy(a[k]).astype(np.float64) for k in ("px", "py", "pz", "e")}
    bx = {k: ak.to_numpy(b[k]).astype(np.float64) for k in ("px", "py", "pz", "e")}
    return pd.DataFrame(dilepton_kinematics(ax, bx))


def dilepton_kinematics(lm: dict, lp: dict) -> dict:
    """The hard-level features from the mu- and mu+ four-momenta (dicts of px, py, pz, e arrays in GeV).

    cos theta is Collins-Soper's: 2 (p1+ p2- - p1- p2+) / (m sqrt(m^2 + pT^2)), p+- = (E +- pz) / sqrt(2), with
    1 = mu-, 2 = mu+ (for a dilepton without pT: the mu- polar angle in the dilepton rest frame).
    """
    pt_m, phi_m = np.hypot(lm["px"], lm["py"]), np.arctan2(lm["py"], lm["px"])
    pt_p, phi_p = np.hypot(lp["px"], lp["py"]), np.arctan2(lp["py"], lp["px"])
    eta_m = np.arcsinh(lm["pz"] / np.maximum(pt_m, 1e-12))
    eta_p = np.arcsinh(lp["pz"] / np.maximum(pt_p, 1e-12))
    px, py, pz, e = (lm[k] + lp[k] for k in ("px", "py", "pz", "e"))
    m = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))
    pt = np.hypot(px, py)
    y = 0.5 * np.log((e + pz) / (e - pz))
    s2 = np.sqrt(2.0)
    p1p, p1m = (lm["e"] + lm["pz"]) / s2, (lm["e"] - lm["pz"]) / s2
    p2p, p2m = (lp["e"] + lp["pz"]) / s2, (lp["e"] - lp["pz"]) / s2
    cos = 2 * (p1p * p2m - p1m * p2p) / (m * np.sqrt(m**2 + pt**2))
    return {"pt_lm": pt_m, "eta_lm": eta_m, "phi_lm": phi_m, "pt_lp": pt_p, "eta_lp": eta_p, "phi_lp": phi_p,
            "m_ll": m, "y_ll": y, "pt_ll": pt, "cos_theta": cos}


def muon_isolation(prt, muons, cone: float = 0.3, track_pt: float = 0.5, eta_max: float = 4.9):
    """Relative isolation of reconstructed muons: sum pT of the other visible final-state particles (pT >
    ``track_pt`` GeV, |eta| < ``eta_max``) within Delta R < ``cone``, over the muon pT. The definition of the
    isolation cut in ``data_prep.dilepton.reconstruct_leptons`` (the muon itself, at the same eta and phi, is
    excluded), evaluated here because the response does not store the value. Jagged like ``muons``."""
    fin = prt[prt.status > 0]
    aid = abs(fin.id)
    vis = fin[(aid != 12) & (aid != 14) & (aid != 16)]
    pt, eta, phi = _pt_eta_phi(vis.p)
    keep = (pt > track_pt) & (abs(eta) < eta_max)
    o = ak.zip({"pt": pt[keep], "eta": eta[keep], "phi": phi[keep]})
    m = ak.zip({"pt": muons.PT, "eta": muons.Eta, "phi": muons.Phi})
    mm, oo = ak.unzip(ak.cartesian([m, o], axis=1, nested=True))
    dphi = (oo.phi - mm.phi + np.pi) % (2 * np.pi) - np.pi
    dr2 = (oo.eta - mm.eta) ** 2 + dphi**2
    near = (dr2 < cone**2) & (dr2 > 1e-10)
    # the reconstructed muon pT is smeared; the isolation is relative to the reconstructed pT, as in the response
    return ak.sum(ak.where(near, oo.pt, 0.0), axis=2) / m.pt


def detector_features(objs, n_pv) -> pd.DataFrame:
    """The selected events' feature table (``DETECTOR_COLUMNS`` + ``DERIVED_COLUMNS`` + ``weight``).

    Args:
        objs: ``detector_response`` output with ``MuonIso`` (jagged like ``Muon``) added.
        n_pv: ``(n_events,)`` primary vertices (1 + pile-up interactions).
    """
    mu = objs["Muon"]
    iso = objs["MuonIso"]
    mu = ak.zip({"PT": mu.PT, "Eta": mu.Eta, "Phi": mu.Phi, "Charge": mu.Charge, "Iso": iso})
    mu = mu[ak.argsort(mu.PT, axis=1, ascending=False)]
    two = ak.pad_none(mu, 2, axis=1)
    ok = ak.fill_none((ak.num(mu) >= 2) & (two.Charge[:, 0] * two.Charge[:, 1] < 0)
                      & (two.PT[:, 1] > MU_PT_MIN), False)
    mask = ak.to_numpy(ok)
    m0, m1 = two[mask][:, 0], two[mask][:, 1]
    cols = {}
    for i, m in enumerate((m0, m1)):
        cols[f"mu{i}_pt"], cols[f"mu{i}_eta"], cols[f"mu{i}_phi"] = (ak.to_numpy(m.PT), ak.to_numpy(m.Eta),
                                                                   ak.to_numpy(m.Phi))
    jets = objs["Jet"][mask]
    padded = ak.pad_none(jets, N_JETS, axis=1, clip=True)
    for i in range(N_JETS):
        for c, f in (("pt", "PT"), ("eta", "Eta"), ("phi", "Phi"), ("m", "Mass")):
            cols[f"jet{i}_{c}"] = ak.to_numpy(ak.fill_none(padded[f][:, i], 0.0)).astype(np.float64)
    met = objs["MissingET"][mask][:, 0]
    cols["met_x"] = ak.to_numpy(met.MET * np.cos(met.Phi))
    cols["met_y"] = ak.to_numpy(met.MET * np.sin(met.Phi))
    cols["n_pv"] = np.asarray(n_pv)[mask].astype(np.float64)
    cols["mu0_iso"], cols["mu1_iso"] = ak.to_numpy(m0.Iso), ak.to_numpy(m1.Iso)
    df = pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in cols.items()})
    df["m_ll"] = pair_mass(df)
    df["n_jets15"] = ak.to_numpy(ak.sum(jets.PT > JET_COUNT_PT_MIN, axis=1)).astype(np.int32)
    df["met"] = np.hypot(df["met_x"], df["met_y"])
    df["weight"] = 1.0
    return df


def pair_mass(df) -> np.ndarray:
    """m_ll [GeV] of the two muons of a feature table (muon mass neglected)."""
    from gan4hep.physics import pair_mass as _pm

    return _pm(df["mu0_pt"].to_numpy(), df["mu1_pt"].to_numpy(), (df["mu0_eta"] - df["mu1_eta"]).to_numpy(),
               (df["mu0_phi"] - df["mu1_phi"]).to_numpy())


# ------------------------------------------------------------------------------------------------- generation
_KEEP = ("id", "status", "p")


def _pileup(pythia_mb, counts: np.ndarray):
    """Final-state particles of ``counts[i]`` minimum-bias events for each event i (jagged, fields id, status,
    p)."""
    total = int(counts.sum())
    if total == 0:
        return None
    events, got = [], 0
    while got < total:  # errorMode="skip" may return fewer events than asked
        ev = pythia_mb.nextBatch(total - got, errorMode="skip").prt
        events.append(ev[ev.status > 0][list(_KEEP)])
        got += len(ev)
    ev = ak.concatenate(events)[:total]
    return ak.flatten(ak.unflatten(ev, counts.astype(np.int64), axis=0), axis=2)


def _generate_block(config, block, report):
    s = Settings(**config["settings"])
    pythia = runner.init_pythia(runner.configured_pythia(block.seed, pythia_settings(s)))
    chunk = int(config.get("chunk", 1000))
    parts, done = [], 0
    if s.level == "hard":
        while done < block.events:
            n = min(chunk, block.events - done)
            parts.append(hard_features(pythia.nextBatch(n, errorMode="skip").prt))
            done += n
            report(n)
        df = pd.concat(parts, ignore_index=True)
        df["weight"] = 1.0
        result = {"features": df}
    else:
        det = Detector(jet_pt_min=s.jet_pt_min)
        rng = np.random.default_rng([block.seed, 11])
        mb = None
        if s.pileup > 0:
            mb = runner.init_pythia(runner.configured_pythia(runner.block_seed(block.seed, 7919),
                                                             pileup_settings(s.ecm)))
        objects, tables = [], []
        while done < block.events:
            n = min(chunk, block.events - done)
            prt = pythia.nextBatch(n, errorMode="skip").prt
            n_pu = rng.poisson(s.pileup, len(prt)) if mb is not None else np.zeros(len(prt), dtype=np.int64)
            if mb is not None:
                pu = _pileup(mb, n_pu)
                if pu is not None:
                    prt = ak.concatenate([prt[prt.status > 0][list(_KEEP)], pu], axis=1)
            objs = detector_response(prt, rng, det)
            objs["MuonIso"] = muon_isolation(prt, objs["Muon"])
            first = block.first + done
            objs["Event"] = ak.zip({"Number": _one(np.arange(first, first + len(prt))),
                                    "Weight": _one(np.ones(len(prt))),
                                    "NPrimaryVertices": _one((1 + n_pu).astype(np.int32))})
            tables.append(detector_features(objs, 1 + n_pu))
            objects.append(objs)
            done += n
            report(n)
        df = pd.concat(tables, ignore_index=True)
        merged = {k: ak.concatenate([o[k] for o in objects]) for k in objects[0]}
        merged["Muon"] = ak.zip({**{f: merged["Muon"][f] for f in merged["Muon"].fields},
                                 "IsolationVar": merged.pop("MuonIso")})
        result = {"features": df, "objects": merged}
    info = pythia.infoPython()
    result["stats"] = {"sigma_pb": info.sigmaGen() * 1e9, "sigma_err_pb": info.sigmaErr() * 1e9,
                       "n_accepted": int(info.nAccepted()), "events": done}
    return result


def _one(x):
    x = np.asarray(x)
    return ak.unflatten(x, np.ones(len(x), dtype=np.int64))


def _block_tables(result):
    """One block's trees, feature rows and statistics."""
    df = result["features"]
    if "objects" in result:
        return runner.BlockTables({DETECTOR_TREE: result["objects"]}, (DETECTOR_TREE,), df, result["stats"])
    return runner.BlockTables({HARD_TREE: {c: df[c].to_numpy() for c in df.columns}}, (), df, result["stats"])


_summarize = runner.cross_section_summary  # counts and the combined cross section (data_prep.merge)


def make_sample(out, events: int = 100_000, seed: int = 1, settings: Settings = Settings(), jobs: int = 1,
                job_index: int = 0, n_jobs: int = 1, block_size: int = 10_000, progress: bool = True,
                scheduler=None, cluster: str | None = None, workers: int | None = None, cluster_config=None,
                retries: int = 2, keep_parts: bool = False):
    """Generate a Drell-Yan sample: ``out`` (the event record: flat tree ``events`` at hard level, Delphes-style
    tree ``Delphes`` at detector level) and ``out`` with ``_features`` (the flat table, tree ``events``; GeV,
    radians). Returns the feature table's path; its metadata (``gan4hep.io.read_metadata``) holds ``sigma_pb``,
    Pythia's generated cross section of the sample [pb], and ``sigma_err_pb``.

    ``events`` generated events in seeded blocks of ``block_size`` (same ``seed``, ``block_size`` and
    ``settings`` -> the same events with any engine); engines, resume and errors as ``data_prep.runner.produce``.

    Raises:
        data_prep.runner.InputError: bad settings or options.
    """
    out = runner.check_out(out)
    config = {"settings": dataclasses.asdict(settings)}
    blocks = runner.make_blocks(events, seed, block_size, job_index, n_jobs)
    meta = {"sample": "drell_yan", "paper": "Butter & Plehn review, Sec. 3.2 Eq. (15) and Sec. 4.1",
            "seed": seed, "block_size": block_size, "job_index": job_index, "n_jobs": n_jobs,
            **dataclasses.asdict(settings), "pythia_settings": pythia_settings(settings),
            "weight": "unweighted events (weight = 1); normalise to sigma_pb",
            "columns": list(HARD_COLUMNS if settings.level == "hard" else DETECTOR_COLUMNS + DERIVED_COLUMNS)}
    if settings.level == "detector":
        meta.update(selection=f">= 2 muons, two leading of opposite charge, pT > {MU_PT_MIN} GeV",
                    detector=dataclasses.asdict(Detector(jet_pt_min=settings.jet_pt_min)),
                    pileup_settings=pileup_settings(settings.ecm) if settings.pileup else [])
    return runner.produce(runner.Sample.of("drell_yan"), config, out, blocks, meta, progress=progress, jobs=jobs,
                          scheduler=scheduler, cluster=cluster, workers=workers, cluster_config=cluster_config,
                          retries=retries, keep_parts=keep_parts, desc=f"drell-yan {settings.level} {settings.mode}")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m data_prep.drell_yan", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    runner.add_common_args(p, events=100_000, block_size=10_000, out="samples/drell_yan.root")
    p.add_argument("--level", choices=LEVELS, default="hard")
    p.add_argument("--mode", choices=sorted(MODES), default="B",
                   help="B: gamma*/Z with interference, S: gamma* only, Z: Z only (WeakZ0:gmZmode 0, 1, 2)")
    p.add_argument("--m-min", type=float, default=Settings.m_min, help="PhaseSpace:mHatMin [GeV]")
    p.add_argument("--m-max", type=float, default=Settings.m_max, help="PhaseSpace:mHatMax [GeV]")
    p.add_argument("--mpi", action="store_true", help="multiparton interactions (detector level)")
    p.add_argument("--pileup", type=float, default=0.0, help="mean pile-up interactions (detector level)")
    p.add_argument("--jet-pt-min", type=float, default=Settings.jet_pt_min, help="stored jets above [GeV]")
    args = p.parse_args(argv)
    with runner.cli_errors(p.prog):
        settings = Settings(level=args.level, mode=args.mode, m_min=args.m_min, m_max=args.m_max, mpi=args.mpi,
                            pileup=args.pileup, jet_pt_min=args.jet_pt_min)
        path = make_sample(args.out, settings=settings, **runner.common_kwargs(args))
    meta = io.read_metadata(path)
    print(f"wrote {args.out} and {path}: {meta['events_generated']} events, {meta['events_selected']} selected, "
          f"sigma = {meta['sigma_pb']:.4g} +- {meta['sigma_err_pb']:.2g} pb, {runner.rate_text(meta)}")


if __name__ == "__main__":
    main()
