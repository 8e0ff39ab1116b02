"""pp -> Z W -> (l+ l-)(q q') at 13 TeV with Pythia 8: parton-level / detector-level event pairs for the cINN
unfolding of the Butter & Plehn review (Sec. 5.3, Figs. 19-20; Bellagente et al., arXiv:2006.06685, made theirs
with MadGraph5 + Pythia 8 + Delphes).

Pythia: ``WeakDoubleBoson:ffbar2ZW = on`` (pure Z0, no gamma*), Z -> e+ e- or mu+ mu- (``23:onMode = off``,
``23:onIfAny = 11 13``), W -> quarks (``24:onMode = off``, ``24:onIfAny = 1 2 3 4 5``), ISR, FSR, MPI and
hadronisation on (MPI switchable). Each event is passed through our simple ATLAS-like response
(``data_prep.dilepton.detector_response``: lepton efficiencies, isolation and smearing; anti-kt R = 0.4 FastJet
jets of the visible particles minus the reconstructed leptons, smeared) with jets kept above ``jet_pt_min``
(25 GeV) within ``|eta| < jet_eta_max`` (2.5). Selection: at least two reconstructed leptons of one
flavour and opposite charge (the leading such pair is taken), and 2 to 4 jets (``n_jets_min``, ``n_jets_max``).

One row per selected event (``COLUMNS``):

* parton level, the decay products of the Z and W (Pythia status -23) moved back into the hard 2 -> 2 frame
  (``to_hard_frame``: Pythia decays the bosons after the initial-state shower's recoil), so the four transverse
  momenta sum to zero: ``p_lm_*``, ``p_lp_*`` (the l- and l+), ``p_q1_*``, ``p_q2_*`` (the
  W's quark and antiquark ordered by pT), each (pt, eta, phi, e) [GeV, rad];
* detector level: ``d_l0_*``, ``d_l1_*`` (the selected leptons ordered by pT; pt, eta, phi, charge), ``d_j{0..3}_*``
  (jets by pT: pt, eta, phi, m; zero-padded), ``n_jets``, ``flavour`` (11 or 13), ``weight`` (1).

    python -m data_prep.zw_pairs --events 60000 --jobs 2 --out data/butter_plehn/zw_pairs.root
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

TREE = "events"
N_JETS = 4
PARTONS = ("lm", "lp", "q1", "q2")
PARTON_COLUMNS = tuple(f"p_{p}_{c}" for p in PARTONS for c in ("pt", "eta", "phi", "e"))
LEPTON_COLUMNS = tuple(f"d_l{i}_{c}" for i in range(2) for c in ("pt", "eta", "phi", "charge"))
JET_COLUMNS = tuple(f"d_j{i}_{c}" for i in range(N_JETS) for c in ("pt", "eta", "phi", "m"))
DETECTOR_COLUMNS = LEPTON_COLUMNS + JET_COLUMNS + ("n_jets",)
COLUMNS = PARTON_COLUMNS + DETECTOR_COLUMNS + ("flavour", "weight")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What defines a ZW pair sample (stored by ``data_prep.runner`` as the sample's identity).

    Attributes:
        ecm: centre-of-mass energy [GeV].
        mpi: multiparton interactions.
        jet_pt_min, jet_eta_max: stored jets [GeV] (the issue's anti-kt R = 0.4, pT > 25 GeV, |eta| < 2.5).
        lep_pt_min: both selected leptons above this pT [GeV] (ours).
        n_jets_min, n_jets_max: selected jet multiplicities (R Fig. 20: 2, 3 or 4 jets).
        wprime_mass: if > 0, the process is instead a W' of this mass [GeV] decaying to W Z
            (``NewGaugeBoson:ffbar2Wprime``, ``34:onIfAny = 23``, ``Wprime:coup2WZ = 1``), same decays, response and
            selection: the injected resonance of the model-dependence test (R Fig. 18's question).
    """

    ecm: float = 13000.0
    mpi: bool = True
    jet_pt_min: float = 25.0
    jet_eta_max: float = 2.5
    lep_pt_min: float = 15.0
    n_jets_min: int = 2
    n_jets_max: int = N_JETS
    wprime_mass: float = 0.0

    def __post_init__(self):
        if self.wprime_mass < 0:
            raise runner.InputError(f"wprime_mass must be >= 0 (0: the SM ZW sample), got {self.wprime_mass}")
        if not 0 < self.n_jets_min <= self.n_jets_max <= N_JETS:
            raise runner.InputError(f"need 0 < n_jets_min <= n_jets_max <= {N_JETS}, got {self.n_jets_min}, "
                                    f"{self.n_jets_max}")
        if self.jet_pt_min <= 0 or self.jet_eta_max <= 0:
            raise runner.InputError(f"jet_pt_min and jet_eta_max must be > 0, got {self.jet_pt_min}, "
                                    f"{self.jet_eta_max}")

    def detector(self) -> Detector:
        """The response parameters (``data_prep.dilepton.Detector`` with our jet cuts)."""
        return Detector(jet_pt_min=self.jet_pt_min, jet_eta_max=self.jet_eta_max)


def pythia_settings(s: Settings) -> list[str]:
    """The Pythia 8 settings of a sample (module docstring)."""
    process = (["WeakDoubleBoson:ffbar2ZW = on"] if not s.wprime_mass else
               ["NewGaugeBoson:ffbar2Wprime = on", f"34:m0 = {s.wprime_mass}", "34:onMode = off", "34:onIfAny = 23",
                "Wprime:coup2WZ = 1"])
    return [f"Beams:eCM = {s.ecm}", *process, "23:onMode = off", "23:onIfAny = 11 13",
            "24:onMode = off", "24:onIfAny = 1 2 3 4 5", f"PartonLevel:MPI = {'on' if s.mpi else 'off'}",
            "HadronLevel:all = on"]


# --------------------------------------------------------------------------------------------------- features
def _boost(p: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Lorentz boost of ``(n, 4)`` four-vectors (E, px, py, pz) by velocities ``(n, 3)``."""
    b2 = np.sum(beta**2, axis=1)
    gamma = 1.0 / np.sqrt(np.maximum(1.0 - b2, 1e-300))
    bp = np.sum(beta * p[:, 1:], axis=1)
    g2 = np.where(b2 > 0, (gamma - 1.0) / np.where(b2 > 0, b2, 1.0), 0.0)
    e = gamma * (p[:, 0] + bp)
    return np.column_stack([e, p[:, 1:] + (g2 * bp + gamma * p[:, 0])[:, None] * beta])


def _four(p) -> np.ndarray:
    return np.column_stack([ak.to_numpy(p[f]).astype(np.float64) for f in ("e", "px", "py", "pz")])


def to_hard_frame(daughters: list[np.ndarray], boson: np.ndarray) -> list[np.ndarray]:
    """Move the decay products of a boson from the event after initial-state radiation back to the hard 2 -> 2
    process: boost them into the rest frame of their sum, then with the boson's hard-process momentum.

    Pythia decays the Z and W after the initial-state shower has given them recoil (the status -23 products sum
    to the boson's last copy, not to its hard-process entry, status -22); the hard process's four transverse
    momenta sum to zero only in its own frame.

    Args:
        daughters: ``(n, 4)`` (E, px, py, pz) [GeV] of each decay product.
        boson: ``(n, 4)`` the boson's hard-process four-momentum [GeV].

    Returns:
        the daughters' four-momenta, summing to ``boson`` (up to rounding), masses unchanged.
    """
    total = sum(daughters)
    rest = [_boost(d, -total[:, 1:] / total[:, :1]) for d in daughters]
    # the rest-frame decay has the invariant mass of ``total``; the hard-process boson's mass is the same
    # resonance mass (Pythia keeps the mass through the recoil), so boosting with its velocity is exact
    return [_boost(d, boson[:, 1:] / boson[:, :1]) for d in rest]


def parton_features(prt) -> pd.DataFrame:
    """The four decay products of the hard process per event in the hard 2 -> 2 frame (``to_hard_frame``): l-,
    l+, and the W's two quarks ordered by pT (``PARTON_COLUMNS``).

    Args:
        prt: pythia8mc ``nextBatch(...).prt`` (jagged: id, status, p).

    Raises:
        RuntimeError: an event without one Z and one W of the hard process (status -22), or without exactly one
            l-, one l+ and two quarks among the resonance decay products (status -23).
    """
    bos = prt[prt.status == -22]
    z, w = bos[bos.id == 23], bos[abs(bos.id) == 24]
    hard = prt[abs(prt.status) == 23]
    aid = abs(hard.id)
    lep = hard[(aid == 11) | (aid == 13)]
    qrk = hard[(aid >= 1) & (aid <= 5)]
    lm, lp = lep[lep.id > 0], lep[lep.id < 0]
    if not (ak.all(ak.num(z) == 1) and ak.all(ak.num(w) == 1)):
        raise RuntimeError("event without one Z and one W in the hard process (status -22)")
    if not (ak.all(ak.num(lm) == 1) and ak.all(ak.num(lp) == 1) and ak.all(ak.num(qrk) == 2)):
        raise RuntimeError("event without one l-, one l+ and two quarks in the hard process (status -23)")
    lm4, lp4 = to_hard_frame([_four(lm[:, 0].p), _four(lp[:, 0].p)], _four(z[:, 0].p))
    qa, qb = to_hard_frame([_four(qrk[:, 0].p), _four(qrk[:, 1].p)], _four(w[:, 0].p))
    wprime = bos[abs(bos.id) == 34]
    if ak.any(ak.num(wprime) > 0):  # W' -> W Z: Pythia's Z and W carry the ISR recoil; the W' does not
        if not ak.all(ak.num(wprime) == 1):
            raise RuntimeError("a W' sample event without exactly one W' (status -22)")
        lm4, lp4, qa, qb = to_hard_frame([lm4, lp4, qa, qb], _four(wprime[:, 0].p))
    first = np.hypot(qa[:, 1], qa[:, 2]) >= np.hypot(qb[:, 1], qb[:, 2])
    q1, q2 = np.where(first[:, None], qa, qb), np.where(first[:, None], qb, qa)
    cols = {}
    for name, p in (("lm", lm4), ("lp", lp4), ("q1", q1), ("q2", q2)):
        pt = np.hypot(p[:, 1], p[:, 2])
        cols[f"p_{name}_pt"], cols[f"p_{name}_eta"] = pt, np.arcsinh(p[:, 3] / np.maximum(pt, 1e-12))
        cols[f"p_{name}_phi"], cols[f"p_{name}_e"] = np.arctan2(p[:, 2], p[:, 1]), p[:, 0]
    return pd.DataFrame(cols)


def select(objs, s: Settings) -> tuple[np.ndarray, pd.DataFrame]:
    """Apply the selection to ``detector_response`` output and build the detector-level columns.

    The leptons of each flavour are ordered by pT; an event is kept if the flavour of its leading lepton has at
    least two leptons, the two leading of which have opposite charge and pT > ``lep_pt_min``, and if it has
    ``n_jets_min`` to ``n_jets_max`` jets.

    Returns:
        (mask over the events (n_events,) bool, the selected events' ``DETECTOR_COLUMNS`` + ``flavour``).
    """
    n = len(objs["Jet"])
    mask = np.zeros(n, bool)
    pairs = {}
    for fl, key in ((11, "Electron"), (13, "Muon")):
        lep = ak.pad_none(objs[key], 2, axis=1)
        ok = ak.fill_none((ak.num(objs[key]) >= 2) & (lep.Charge[:, 0] * lep.Charge[:, 1] < 0)
                          & (lep.PT[:, 1] > s.lep_pt_min), False)
        pairs[fl] = (ak.to_numpy(ok), lep, ak.to_numpy(ak.fill_none(lep.PT[:, 0], 0.0)))
    use_mu = pairs[13][2] > pairs[11][2]
    flavour = np.where(use_mu, 13, 11)
    lep_ok = np.where(use_mu, pairs[13][0], pairs[11][0])
    n_jets = ak.to_numpy(ak.num(objs["Jet"]))
    mask = lep_ok & (n_jets >= s.n_jets_min) & (n_jets <= s.n_jets_max)
    cols = {}
    for i in range(2):
        for c, f in (("pt", "PT"), ("eta", "Eta"), ("phi", "Phi"), ("charge", "Charge")):
            e = ak.to_numpy(ak.fill_none(pairs[11][1][f][:, i], 0)).astype(np.float64)
            m = ak.to_numpy(ak.fill_none(pairs[13][1][f][:, i], 0)).astype(np.float64)
            cols[f"d_l{i}_{c}"] = np.where(use_mu, m, e)[mask]
    padded = ak.pad_none(objs["Jet"][mask], N_JETS, axis=1, clip=True)
    for i in range(N_JETS):
        for c, f in (("pt", "PT"), ("eta", "Eta"), ("phi", "Phi"), ("m", "Mass")):
            cols[f"d_j{i}_{c}"] = ak.to_numpy(ak.fill_none(padded[f][:, i], 0.0)).astype(np.float64)
    cols["n_jets"] = n_jets[mask].astype(np.float64)
    cols["flavour"] = flavour[mask].astype(np.float64)
    return mask, pd.DataFrame(cols)


# ------------------------------------------------------------------------------------------------- generation
def _generate_block(config, block, report):
    s = Settings(**config["settings"])
    pythia = runner.init_pythia(runner.configured_pythia(block.seed, pythia_settings(s)))
    rng = np.random.default_rng([block.seed, 23])
    det = s.detector()
    chunk = int(config.get("chunk", 500))
    parts, done = [], 0
    while done < block.events:
        n = min(chunk, block.events - done)
        prt = pythia.nextBatch(n, errorMode="skip").prt
        partons = parton_features(prt)
        mask, detector = select(detector_response(prt, rng, det), s)
        parts.append(pd.concat([partons[mask].reset_index(drop=True), detector], axis=1))
        done += n
        report(n)
    df = pd.concat(parts, ignore_index=True)[list(COLUMNS[:-1])]
    df["weight"] = 1.0
    info = pythia.infoPython()
    return {"features": df, "stats": {"sigma_pb": info.sigmaGen() * 1e9, "sigma_err_pb": info.sigmaErr() * 1e9,
                                      "n_accepted": int(info.nAccepted()), "events": done, "selected": len(df)}}


def _block_tables(result):
    """One block's tree (the pair table itself), feature rows and statistics."""
    df = result["features"]
    return runner.BlockTables({TREE: {c: df[c].to_numpy() for c in df.columns}}, (), df, result["stats"])


_summarize = runner.cross_section_summary  # counts and the combined cross section (data_prep.merge)


def make_sample(out, events: int = 50_000, seed: int = 1, settings: Settings = Settings(), jobs: int = 1,
                job_index: int = 0, n_jobs: int = 1, block_size: int = 10_000, progress: bool = True,
                scheduler=None, cluster: str | None = None, workers: int | None = None, cluster_config=None,
                retries: int = 2, keep_parts: bool = False):
    """Generate the pair sample: ``out`` (tree ``events``) and ``out`` with ``_features`` (the same table); returns
    the feature table's path (metadata: ``sigma_pb``, ``sigma_err_pb`` of pp -> ZW with the forced decays, before
    the selection; ``events_generated``, ``events_selected``). Seeded blocks, engines, resume and errors as
    ``data_prep.runner.produce``.

    Raises:
        data_prep.runner.InputError: bad settings or options.
    """
    out = runner.check_out(out)
    config = {"settings": dataclasses.asdict(settings)}
    blocks = runner.make_blocks(events, seed, block_size, job_index, n_jobs)
    meta = {"sample": "zw_pairs", "paper": "Butter & Plehn review, Sec. 5.3, Figs. 19-20 (cINN unfolding)",
            "seed": seed, "block_size": block_size, "job_index": job_index, "n_jobs": n_jobs,
            **dataclasses.asdict(settings), "pythia_settings": pythia_settings(settings), "columns": list(COLUMNS),
            "detector": dataclasses.asdict(settings.detector()),
            "selection": f"2 opposite-charge same-flavour leptons with pT > {settings.lep_pt_min} GeV, "
                         f"{settings.n_jets_min}-{settings.n_jets_max} jets (anti-kt 0.4, pT > "
                         f"{settings.jet_pt_min} GeV, |eta| < {settings.jet_eta_max})",
            "weight": "unweighted events (weight = 1); normalise to sigma_pb x events_selected / events_generated"}
    return runner.produce(runner.Sample.of("zw_pairs"), config, out, blocks, meta, progress=progress, jobs=jobs,
                          scheduler=scheduler, cluster=cluster, workers=workers, cluster_config=cluster_config,
                          retries=retries, keep_parts=keep_parts, desc="pp -> ZW -> ll qq")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m data_prep.zw_pairs", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    runner.add_common_args(p, events=50_000, block_size=10_000, out="samples/zw_pairs.root")
    p.add_argument("--no-mpi", action="store_true", help="switch off multiparton interactions")
    p.add_argument("--jet-pt-min", type=float, default=Settings.jet_pt_min, help="jet pT cut [GeV]")
    p.add_argument("--jet-eta-max", type=float, default=Settings.jet_eta_max, help="jet |eta| cut")
    p.add_argument("--wprime-mass", type=float, default=0.0, help="W' -> WZ of this mass instead of SM ZW [GeV]")
    args = p.parse_args(argv)
    with runner.cli_errors(p.prog):
        settings = Settings(mpi=not args.no_mpi, jet_pt_min=args.jet_pt_min, jet_eta_max=args.jet_eta_max,
                            wprime_mass=args.wprime_mass)
        path = make_sample(args.out, settings=settings, **runner.common_kwargs(args))
    meta = io.read_metadata(path)
    print(f"wrote {args.out} and {path}: {meta['events_generated']} events, {meta['events_selected']} selected, "
          f"sigma = {meta['sigma_pb']:.4g} +- {meta['sigma_err_pb']:.2g} pb, {runner.rate_text(meta)}")


if __name__ == "__main__":
    main()
