"""Our FlashSim-style jet sample: generator-level jets and their reconstruction by our own full chain.

FlashSim (Vaselli 2022) learns the CMS reconstruction of AK4 jets conditioned on the generator-level jets of a
ttbar sample. We have no CMS simulation, so this module builds the same learning problem from our own chain, and
every piece of it is a stand-in of ours (listed in ``data_prep/FLASHSIM_JETS.md``):

* pp -> ttbar at 13 TeV, full Pythia 8 (ISR/FSR, MPI, hadronisation; all W decays), particles with
  c tau > 10 mm left undecayed as in CMS generation;
* generator jets: anti-kt R = 0.4 on stable visible particles, parton and hadron flavour by ghost association,
  FlashSim's muon conditioning (the two closest generator muons within Delta R < 0.4);
* a particle-level detector response in named steps (``reconstruct_tracks``, ``calorimeter_deposits``,
  ``particle_flow``, ``cluster_reco_jets``, ``match_jets``, ``flavour_tagging``, ``quark_gluon_variables``,
  ``jet_identification``, ``pileup_identification``), parameters in the frozen dataclass ``Detector``;
* optional pile-up: a Poisson number of Pythia minimum-bias events overlaid (``--pileup MU``; 0 by default).

One feature-table row per generator jet (pT > 15 GeV, |eta| < 2.5) matched to a reconstructed jet:
``CONDITIONING`` (FlashSim's 14, in its order), ``TARGETS`` (15; + ``PILEUP_TARGETS`` with pile-up) and ``AUX``
(bookkeeping and diagnostics, not targets). Units: GeV, rad, mm.

    python -m data_prep.flashsim_jets --events 20000 --seed 1 --jobs 2 --out samples/flashsim_jets.root
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any, Callable, Mapping

import awkward as ak
import numpy as np
import pandas as pd

from gan4hep import io
from data_prep import runner

__all__ = ["TREE", "CONDITIONING", "TARGETS", "PILEUP_TARGETS", "AUX", "PILEUP_AUX", "GenLevel", "Detector",
           "Particles", "ChargeTable", "pythia_settings", "pileup_settings", "flatten_events", "generator_jets",
           "muon_conditioning", "track_d0_resolution", "reconstruct_tracks", "calorimeter_deposits",
           "particle_flow", "cluster_reco_jets", "match_jets", "flavour_tagging", "quark_gluon_variables",
           "quark_gluon_likelihood", "calibrate_qgl", "jet_identification", "pileup_identification",
           "process_events", "feature_columns", "make_sample", "main"]

TREE = "events"
# FlashSim's 14 conditioning variables, in the order of its extraction code (jets_extraction.C, col_to_save)
CONDITIONING = ("mu1_dr", "mu1_pt", "mu1_deta", "mu1_dphi", "mu2_dr", "mu2_pt", "mu2_deta", "mu2_dphi",
                "gen_eta", "gen_mass", "gen_phi", "gen_pt", "parton_flavour", "hadron_flavour")
TARGETS = ("area", "btag", "ctag", "eta_minus_gen", "mass_ratio", "n_constituents", "phi_minus_gen", "pt_ratio",
           "qgl", "mu_ef", "ch_had_ef", "ne_had_ef", "ch_em_ef", "ne_em_ef", "jet_id")
PILEUP_TARGETS = ("pu_id",)
AUX = ("event", "pt", "eta", "phi", "mass", "match_dr", "n_charged", "mult", "pt_d", "axis2", "n_tag_tracks",
       "pt_res_expected", "n_pileup", "rho")
PILEUP_AUX = ("pu_beta",)

# particle-flow candidate types (CMS PF labels by PDG id)
PF_CHARGED_HADRON, PF_ELECTRON, PF_MUON, PF_PHOTON, PF_NEUTRAL_HADRON = 211, 11, 13, 22, 130
# calorimeter systems
ECAL, HCAL, HF_EM, HF_HAD = 0, 1, 2, 3
# ghost kinds in the generator-jet clustering
_REAL, _B_HADRON, _C_HADRON, _PARTON = 0, 1, 2, 3


@dataclasses.dataclass(frozen=True)
class GenLevel:
    """Generator-level definitions (ours, CMS-like)."""

    radius: float = 0.4  # anti-kt R
    particle_eta_max: float = 5.0  # stable visible particles clustered
    pt_min: float = 15.0  # generator jets kept as rows [GeV]
    eta_max: float = 2.5  # |eta| of rows: inside the tracker, where the taggers are defined
    match_pt_min: float = 5.0  # generator jets entering the reco matching (so a row's partner is not stolen)
    ghost_scale: float = 1e-18  # ghost hadrons and partons: momentum x this (CMS ghostRescaling)
    muon_cone: float = 0.4  # FlashSim's code: muons within Delta R < 0.4
    muon_pt_min: float = 0.0  # generator muons: every stable muon (NanoAOD keeps all |pdgId| = 13)
    mass_floor: float = 0.01  # generator-jet mass floor in mass_ratio [GeV]


@dataclasses.dataclass(frozen=True)
class Detector:
    """Our particle-level detector response (numbers are our choice, CMS-inspired; see FLASHSIM_JETS.md)."""

    # tracker
    track_eta_max: float = 2.5
    track_pt_min: float = 0.3  # GeV
    track_eff: float = 0.90  # per charged particle, flat
    track_rprod_max: float = 300.0  # mm: particles produced further out leave no track
    track_res_const: float = 0.01  # sigma_pT / pT = 1 % (+) 0.015 % x pT / GeV
    track_res_slope: float = 1.5e-4
    d0_res_const: float = 0.015  # mm: sigma_d0 = 15 um (+) 60 um GeV / pT
    d0_res_scale: float = 0.060  # mm GeV
    z0_res_const: float = 0.030  # mm: sigma_z0 = 30 um (+) 100 um GeV / pT
    z0_res_scale: float = 0.100  # mm GeV
    # muon system
    muon_eta_max: float = 2.4
    muon_pt_min: float = 3.0  # GeV; tracked muons below are charged hadrons
    # calorimeters: sigma_E / E = stoch / sqrt(E / GeV) (+) const; cells summed before smearing
    calo_eta_max: float = 5.0
    calo_charged_pt_min: float = 0.75  # GeV: untracked charged particles below curl up (3.8 T, r = 1.29 m)
    ecal_eta_max: float = 3.0  # beyond: HF
    ecal_stoch: float = 0.05
    ecal_const: float = 0.005
    ecal_cell_eta: float = 0.0174
    ecal_cell_nphi: int = 360
    ecal_threshold: float = 0.3  # GeV per cell after smearing
    hcal_stoch: float = 1.0
    hcal_const: float = 0.05
    hcal_cell_eta: float = 0.087
    hcal_cell_nphi: int = 72
    hcal_threshold: float = 1.0
    hf_stoch: float = 2.0
    hf_const: float = 0.10
    hf_cell_eta: float = 0.175
    hf_cell_nphi: int = 36
    hf_threshold: float = 2.0
    # jets
    jet_r: float = 0.4
    reco_pt_min: float = 5.0  # reconstructed jets (after the pile-up offset) [GeV]
    ghost_area: float = 0.01  # active area: explicit ghosts on a jittered grid
    ghost_eta_max: float = 3.5
    match_dr: float = 0.2  # generator <-> reconstructed jets, mutual nearest neighbours
    # pile-up
    pileup_sigma_z: float = 35.0  # mm, Gaussian z spread of pile-up vertices (hard vertex at 0)
    rho_eta_max: float = 2.5  # rho = median pT density of grid cells (0.5 x 2 pi / 12)
    rho_cell: float = 0.5
    rho_ue: float = 1.6  # GeV: median rho of our ttbar events without pile-up (measured), not subtracted
    # flavour tagging (tracks: from the primary vertex, pT > 1 GeV, Delta R < 0.3, |d0| < 2 mm)
    tag_track_pt_min: float = 1.0
    tag_track_dr: float = 0.3
    tag_track_d0_max: float = 2.0
    ctag_l_sat: float = 50.0  # ctag: -log10 JP of the two leading tracks beyond this is b-like (suppressed)
    # quark / gluon variables: charged constituents + neutral ones above this pT
    qg_neutral_pt_min: float = 1.0


def pythia_settings(mpi: bool = True) -> list[str]:
    """Pythia 8 settings of the hard sample: inclusive pp -> ttbar at 13 TeV, MPI ``mpi``, hadronisation on,
    only particles with c tau0 < 10 mm decayed (as CMS generation does; K0S, Lambda, ... reach the detector)."""
    return ["Beams:eCM = 13000.", "Top:gg2ttbar = on", "Top:qqbar2ttbar = on",
            f"PartonLevel:MPI = {'on' if mpi else 'off'}", "HadronLevel:all = on",
            "ParticleDecays:limitTau0 = on", "ParticleDecays:tau0Max = 10."]


def pileup_settings() -> list[str]:
    """Pythia 8 settings of the pile-up events: inelastic minimum bias (``SoftQCD:inelastic``) at 13 TeV."""
    return ["Beams:eCM = 13000.", "SoftQCD:inelastic = on", "ParticleDecays:limitTau0 = on",
            "ParticleDecays:tau0Max = 10."]


# ------------------------------------------------------------------------------------------- particles

@dataclasses.dataclass
class Particles:
    """The particles of a batch of events as flat numpy arrays of shape ``(n,)``, event-major.

    ``event``: event number in the batch (0..n_events-1); ``index``: position in the event's Pythia record
    (hard event) or -1 (pile-up); ``pileup``: 0 for the hard event, k >= 1 for its k-th pile-up event; ``id``,
    ``status``: PDG id and Pythia status; ``px, py, pz, e`` [GeV]; ``x, y, z``: production vertex [mm] (pile-up:
    shifted by its vertex); ``d1, d2``: daughter indices in the event record; ``charge`` [e]; ``vertex_z``: per
    event, the z [mm] of its vertices (array of arrays: hard vertex 0 first, then the pile-up vertices).
    """

    n_events: int
    event: np.ndarray
    index: np.ndarray
    pileup: np.ndarray
    id: np.ndarray
    status: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    charge: np.ndarray
    vertex_z: list

    @property
    def pt(self) -> np.ndarray:
        return np.hypot(self.px, self.py)

    @property
    def eta(self) -> np.ndarray:
        return np.arcsinh(self.pz / np.maximum(self.pt, 1e-12))

    @property
    def phi(self) -> np.ndarray:
        return np.arctan2(self.py, self.px)

    def take(self, mask: np.ndarray) -> "Particles":
        """The particles where ``mask`` is true (same events)."""
        kw = {f.name: getattr(self, f.name)[mask] for f in dataclasses.fields(self)
              if f.name not in ("n_events", "vertex_z")}
        return Particles(self.n_events, vertex_z=self.vertex_z, **kw)


class ChargeTable:
    """Electric charge [e] by PDG id from Pythia's particle data, cached (vectorised lookup)."""

    def __init__(self, pythia):
        self.pythia = pythia
        self.cache: dict[int, float] = {}

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        if not len(ids):
            return np.zeros(0)
        uniq, inv = np.unique(ids, return_inverse=True)
        for i in uniq:
            if int(i) not in self.cache:
                self.cache[int(i)] = float(self.pythia.particleData.charge(int(i)))
        return np.array([self.cache[int(i)] for i in uniq])[inv]


def _np(x, dtype=np.float64):
    return np.asarray(ak.to_numpy(x), dtype=dtype)


def flatten_events(prt, charge_of: Callable[[np.ndarray], np.ndarray], pileup=None) -> Particles:
    """Flatten a batch of Pythia events (``nextBatch(...).prt``) and, optionally, their pile-up into ``Particles``.

    Args:
        prt: awkward array, events x particles with id, status, daughter1/2, p (px, py, pz, e) [GeV] and vProd
            (x, y, z, t) [mm] (None = origin).
        charge_of: PDG ids -> charges (``ChargeTable``).
        pileup: None, or ``(pu_prt, n_pu, z_vtx)``: the minimum-bias events (awkward, as ``prt``; only their
            stable particles are kept), how many go to each hard event (int array, shape ``(n_events,)``, summing
            to ``len(pu_prt)``) and each pile-up event's vertex z [mm] (shape ``(len(pu_prt),)``).
    """
    n_events = len(prt)
    counts = _np(ak.num(prt.id, axis=1), np.int64)
    flat = ak.flatten(prt)
    vp = flat.vProd
    cols = dict(
        event=np.repeat(np.arange(n_events), counts),
        index=np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts),
        id=_np(flat.id, np.int64), status=_np(flat.status, np.int64),
        px=_np(flat.p.px), py=_np(flat.p.py), pz=_np(flat.p.pz), e=_np(flat.p.e),
        x=_np(ak.fill_none(vp.px, 0.0)), y=_np(ak.fill_none(vp.py, 0.0)), z=_np(ak.fill_none(vp.pz, 0.0)),
        d1=_np(flat.daughter1, np.int64), d2=_np(flat.daughter2, np.int64))
    cols["pileup"] = np.zeros(len(cols["id"]), np.int64)
    vertex_z = [np.zeros(1) for _ in range(n_events)]
    if pileup is not None:
        pu_prt, n_pu, z_vtx = pileup
        n_pu = np.asarray(n_pu, np.int64)
        if int(n_pu.sum()) != len(pu_prt) or len(n_pu) != n_events:
            raise ValueError(f"pile-up: {len(pu_prt)} events for counts summing to {int(n_pu.sum())} over "
                             f"{len(n_pu)} hard events (expected {n_events})")
        pu_prt = pu_prt[pu_prt.status > 0]
        pc = _np(ak.num(pu_prt.id, axis=1), np.int64)
        pf = ak.flatten(pu_prt)
        pvp = pf.vProd
        owner = np.repeat(np.arange(n_events), n_pu)  # hard event of each pile-up event
        rank = np.arange(len(owner)) - np.repeat(np.cumsum(n_pu) - n_pu, n_pu) + 1
        z_vtx = np.asarray(z_vtx, float)
        pu = dict(
            event=np.repeat(owner, pc), index=np.full(int(pc.sum()), -1, np.int64),
            id=_np(pf.id, np.int64), status=_np(pf.status, np.int64),
            px=_np(pf.p.px), py=_np(pf.p.py), pz=_np(pf.p.pz), e=_np(pf.p.e),
            x=_np(ak.fill_none(pvp.px, 0.0)), y=_np(ak.fill_none(pvp.py, 0.0)),
            z=_np(ak.fill_none(pvp.pz, 0.0)) + np.repeat(z_vtx, pc),
            d1=np.zeros(int(pc.sum()), np.int64), d2=np.zeros(int(pc.sum()), np.int64),
            pileup=np.repeat(rank, pc))
        order = np.argsort(np.concatenate([cols["event"], pu["event"]]), kind="stable")
        cols = {k: np.concatenate([cols[k], pu[k]])[order] for k in cols}
        starts = np.cumsum(n_pu) - n_pu
        vertex_z = [np.concatenate([[0.0], z_vtx[s:s + k]]) for s, k in zip(starts, n_pu)]
    return Particles(n_events=n_events, charge=charge_of(cols["id"]), vertex_z=vertex_z, **cols)


# ----------------------------------------------------------------------------------------- small tools

def _wrap(dphi):
    return (np.asarray(dphi) + np.pi) % (2 * np.pi) - np.pi


def _kin(px, py, pz, e):
    pt = np.hypot(px, py)
    return pt, np.arcsinh(pz / np.maximum(pt, 1e-12)), np.arctan2(py, px), \
        np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


def _starts(counts):
    return np.cumsum(counts) - counts


def _best(group, key, mask, n_groups):
    """Per group, the position of the entry with the largest ``key`` among ``mask`` (-1 where none)."""
    pos = np.flatnonzero(mask)
    out = np.full(n_groups, -1, np.int64)
    if len(pos):
        order = pos[np.lexsort((-key[pos], group[pos]))]
        g = group[order]
        first = np.r_[True, g[1:] != g[:-1]]
        out[g[first]] = order[first]
    return out


def _pairs(ev_a, ev_b, n_events):
    """All (i, j) with ``ev_a[i] == ev_b[j]``; both arrays sorted by event."""
    cb = np.bincount(ev_b, minlength=n_events)
    sb = _starts(cb)
    per = cb[ev_a]
    i = np.repeat(np.arange(len(ev_a)), per)
    j = np.repeat(sb[ev_a], per) + (np.arange(int(per.sum())) - np.repeat(_starts(per), per))
    return i, j


def _cluster(event, px, py, pz, e, n_events, radius, min_pt):
    """Anti-kt jets (FastJet) of the inputs of every event: ``(jets, jet_of, member)`` where jets holds flat
    arrays event, px, py, pz, e (event-major; FastJet order within an event), ``member`` the input positions of
    all constituents and ``jet_of`` their jet."""
    import fastjet

    fastjet._swig.ClusterSequence.set_fastjet_banner_stream(None)
    order = np.argsort(event, kind="stable")
    counts = np.bincount(event, minlength=n_events)
    arr = ak.unflatten(ak.zip({"px": px[order], "py": py[order], "pz": pz[order], "E": e[order]},
                              with_name="Momentum4D"), counts)
    cs = fastjet.ClusterSequence(arr, fastjet.JetDefinition(fastjet.antikt_algorithm, radius))
    jets = cs.inclusive_jets(min_pt=min_pt)
    idx = cs.constituent_index(min_pt=min_pt)
    njet = _np(ak.num(jets, axis=1), np.int64)
    glob = ak.flatten(idx + _starts(counts), axis=1)
    ncon = _np(ak.num(glob, axis=1), np.int64)
    member = order[_np(ak.flatten(glob), np.int64)] if len(ncon) else np.zeros(0, np.int64)
    out = {"event": np.repeat(np.arange(n_events), njet)}
    for k, f in (("px", "px"), ("py", "py"), ("pz", "pz"), ("e", "E")):
        out[k] = _np(ak.flatten(getattr(jets, f))) if len(out["event"]) else np.zeros(0)
    return out, np.repeat(np.arange(len(ncon)), ncon), member


def _sum(group, weights, n):
    return np.bincount(group, weights=weights, minlength=n)[:n] if n else np.zeros(0)


def _heavy_flavour(aid):
    """5 for b hadrons, 4 for c hadrons (without b), 0 otherwise (PDG numbering; quarks, diquarks excluded)."""
    code = aid % 10000
    is_hadron = (code > 100) & ((code // 10) % 10 != 0)
    q1, q2, q3 = (code // 1000) % 10, (code // 100) % 10, (code // 10) % 10
    mesons = q1 == 0
    b = is_hadron & ((q2 == 5) | (mesons & (q3 == 5)) | (~mesons & ((q1 == 5) | (q3 == 5))))
    c = is_hadron & ~b & ((q2 == 4) | (mesons & (q3 == 4)) | (~mesons & ((q1 == 4) | (q3 == 4))))
    return np.where(b, 5, np.where(c, 4, 0))


# -------------------------------------------------------------------------------------- generator level

def _global_offsets(parts):
    """Start of each event's hard-event record in the flat arrays (pile-up follows it)."""
    counts = np.bincount(parts.event, minlength=parts.n_events)
    return _starts(counts)


def _has_daughter(parts, flag, offsets):
    """Per particle: is any of its daughters (range d1..d2 of the hard record) flagged."""
    d1, d2 = parts.d1, np.where(parts.d2 > 0, parts.d2, parts.d1)
    lo, hi = np.minimum(d1, d2), np.maximum(d1, d2)
    ok = (d1 > 0) & (parts.pileup == 0)
    cs = np.concatenate([[0], np.cumsum(flag.astype(np.int64))])
    base = offsets[parts.event]
    glo = np.where(ok, base + lo, 0)
    ghi = np.where(ok, base + hi, 0)
    return ok & (cs[np.minimum(ghi + 1, len(flag))] - cs[glo] > 0)


def generator_jets(parts: Particles, gen: GenLevel = GenLevel()) -> dict[str, np.ndarray]:
    """Generator-level anti-kt jets of the hard event with ghost-associated flavours.

    Inputs: stable visible particles of the hard event (status > 0, no neutrinos, |eta| < ``particle_eta_max``),
    plus ghosts (momentum x ``ghost_scale``) of the weakly decaying b and c hadrons (no b / c hadron among their
    daughters) and of the partons that end the shower (quarks d..b and gluons whose first daughter is neither a
    parton nor a diquark). Hadron flavour: 5 with a b-hadron ghost, else 4 with a c-hadron ghost, else 0. Parton
    flavour: the PDG id of the hardest parton ghost (21 = gluon); the hardest b (c) parton when the hadron flavour
    is 5 (4) and there is one; for hadron flavour 0 and a hardest b/c parton, the hardest light parton if any;
    0 without parton ghosts.

    Returns:
        dict of flat arrays over all jets with pT > ``match_pt_min`` (event-major, pT-descending within an event):
        event, px, py, pz, e, pt, eta, phi, mass [GeV, rad], parton_flavour, hadron_flavour.
    """
    hard = parts.pileup == 0
    aid = np.abs(parts.id)
    pt, eta, _, _ = _kin(parts.px, parts.py, parts.pz, parts.e)
    visible = hard & (parts.status > 0) & ~np.isin(aid, (12, 14, 16)) & (np.abs(eta) < gen.particle_eta_max)
    offsets = _global_offsets(parts)
    hf = np.where(hard, _heavy_flavour(aid), 0)
    is_b, is_c = hf == 5, hf == 4
    last_b = is_b & ~_has_daughter(parts, is_b, offsets)
    last_c = is_c & ~_has_daughter(parts, is_c, offsets)
    is_parton = hard & (((aid >= 1) & (aid <= 5)) | (aid == 21))
    partonic = ((aid >= 1) & (aid <= 6)) | (aid == 21) | ((aid > 1000) & (aid < 6000) & ((aid // 10) % 10 == 0))
    d1g = np.where(parts.d1 > 0, offsets[parts.event] + parts.d1, 0)
    d1g = np.minimum(d1g, len(aid) - 1)
    end_parton = is_parton & (parts.d1 > 0) & ~partonic[d1g]
    kinds = np.concatenate([np.full(visible.sum(), _REAL), np.full(last_b.sum(), _B_HADRON),
                            np.full(last_c.sum(), _C_HADRON), np.full(end_parton.sum(), _PARTON)])
    src = np.concatenate([np.flatnonzero(m) for m in (visible, last_b, last_c, end_parton)])
    scale = np.where(kinds == _REAL, 1.0, gen.ghost_scale)
    jets, jet_of, member = _cluster(parts.event[src], parts.px[src] * scale, parts.py[src] * scale,
                                    parts.pz[src] * scale, parts.e[src] * scale, parts.n_events, gen.radius,
                                    gen.match_pt_min)
    n = len(jets["event"])
    ckind, cid, cpt = kinds[member], parts.id[src[member]], pt[src[member]]
    has_b = _sum(jet_of, ckind == _B_HADRON, n) > 0
    has_c = _sum(jet_of, ckind == _C_HADRON, n) > 0
    hadron = np.where(has_b, 5, np.where(has_c, 4, 0))
    cabs = np.abs(cid)
    part = ckind == _PARTON
    hardest = _best(jet_of, cpt, part, n)
    hb = _best(jet_of, cpt, part & (cabs == 5), n)
    hc = _best(jet_of, cpt, part & (cabs == 4), n)
    hl = _best(jet_of, cpt, part & ((cabs <= 3) | (cabs == 21)), n)

    def pid(pos):
        return np.where(pos >= 0, cid[np.maximum(pos, 0)], 0)

    parton = pid(hardest)
    parton = np.where((hadron == 5) & (hb >= 0), pid(hb), parton)
    parton = np.where((hadron == 4) & (hc >= 0), pid(hc), parton)
    parton = np.where((hadron == 0) & np.isin(np.abs(parton), (4, 5)) & (hl >= 0), pid(hl), parton)
    jpt, jeta, jphi, jm = _kin(jets["px"], jets["py"], jets["pz"], jets["e"])
    order = np.lexsort((-jpt, jets["event"]))
    out = dict(jets, pt=jpt, eta=jeta, phi=jphi, mass=jm, parton_flavour=parton.astype(np.int32),
               hadron_flavour=hadron.astype(np.int32))
    return {k: v[order] for k, v in out.items()}


def muon_conditioning(gj: Mapping[str, np.ndarray], parts: Particles, gen: GenLevel = GenLevel()) \
        -> dict[str, np.ndarray]:
    """FlashSim's muon conditioning of each generator jet: Delta R, pT [GeV], Delta eta and Delta phi (jet minus
    muon, phi wrapped to [-pi, pi]) of the closest and second-closest stable generator muons of the hard event
    with Delta R < ``muon_cone``; without one: Delta R = 0.5, pT = 0, Delta eta = 0.5, Delta phi = 0.5 (the
    defaults of FlashSim's jets_extraction.C). Returns arrays mu1_dr ... mu2_dphi, shape ``(n_jets,)``."""
    n = len(gj["event"])
    out = {}
    for k in (1, 2):
        out.update({f"mu{k}_dr": np.full(n, 0.5), f"mu{k}_pt": np.zeros(n), f"mu{k}_deta": np.full(n, 0.5),
                    f"mu{k}_dphi": np.full(n, 0.5)})
    mpt, meta, mphi, _ = _kin(parts.px, parts.py, parts.pz, parts.e)
    mu = np.flatnonzero((parts.pileup == 0) & (parts.status > 0) & (np.abs(parts.id) == 13) &
                        (mpt > gen.muon_pt_min))
    if not len(mu) or not n:
        return out
    i, j = _pairs(gj["event"], parts.event[mu], parts.n_events)
    deta = gj["eta"][i] - meta[mu][j]
    dphi = _wrap(gj["phi"][i] - mphi[mu][j])
    dr = np.hypot(deta, dphi)
    near = dr < gen.muon_cone
    i, j, deta, dphi, dr = i[near], j[near], deta[near], dphi[near], dr[near]
    order = np.lexsort((dr, i))
    i, j, deta, dphi, dr = i[order], j[order], deta[order], dphi[order], dr[order]
    rank = np.arange(len(i)) - _starts(np.bincount(i, minlength=n))[i]
    for k in (1, 2):
        s = rank == k - 1
        out[f"mu{k}_dr"][i[s]] = dr[s]
        out[f"mu{k}_pt"][i[s]] = mpt[mu][j[s]]
        out[f"mu{k}_deta"][i[s]] = deta[s]
        out[f"mu{k}_dphi"][i[s]] = dphi[s]
    return out


# ----------------------------------------------------------------------------------- detector response

def _stable_visible(parts):
    aid = np.abs(parts.id)
    return (parts.status > 0) & ~np.isin(aid, (12, 14, 16))


def track_d0_resolution(pt: np.ndarray, det: Detector = Detector()) -> np.ndarray:
    """Transverse impact-parameter resolution [mm] at transverse momentum ``pt`` [GeV]."""
    return np.hypot(det.d0_res_const, det.d0_res_scale / np.maximum(pt, 1e-3))


def reconstruct_tracks(parts: Particles, rng: np.random.Generator, det: Detector = Detector()) \
        -> dict[str, np.ndarray]:
    """Tracks: stable charged particles with |eta| < ``track_eta_max``, pT > ``track_pt_min`` and a production
    vertex inside ``track_rprod_max`` (transverse), kept with probability ``track_eff``; pT smeared by
    ``track_res_const`` (+) ``track_res_slope`` x pT; transverse impact parameter d0 = x sin(phi) - y cos(phi) of
    the straight line from the production vertex (x, y) (no magnetic field) smeared by
    ``track_d0_resolution``; z0 = z - (x cos(phi) + y sin(phi)) pz / pT smeared by ``z0_res_const`` (+)
    ``z0_res_scale`` / pT. Random draws, in this order: efficiency, pT, d0, z0 (one each per candidate).

    Returns:
        dict of arrays over tracks: particle (position in ``parts``), event, pt (measured), eta, phi, mass,
        d0, sigma_d0, z0 [mm], sigma_pt [GeV], id.
    """
    pt, eta, phi, m = _kin(parts.px, parts.py, parts.pz, parts.e)
    cand = np.flatnonzero(_stable_visible(parts) & (parts.charge != 0) & (np.abs(eta) < det.track_eta_max) &
                          (pt > det.track_pt_min) & (np.hypot(parts.x, parts.y) < det.track_rprod_max))
    u = rng.random(len(cand))
    g_pt, g_d0, g_z0 = (rng.standard_normal(len(cand)) for _ in range(3))
    keep = u < det.track_eff
    c, g_pt, g_d0, g_z0 = cand[keep], g_pt[keep], g_d0[keep], g_z0[keep]
    tpt, teta, tphi = pt[c], eta[c], phi[c]
    rel = np.hypot(det.track_res_const, det.track_res_slope * tpt)
    pt_meas = np.maximum(tpt * (1 + rel * g_pt), 1e-3)
    x, y, z = parts.x[c], parts.y[c], parts.z[c]
    d0_true = x * np.sin(tphi) - y * np.cos(tphi)
    sd0 = track_d0_resolution(tpt, det)
    z0_true = z - (x * np.cos(tphi) + y * np.sin(tphi)) * np.sinh(teta)
    sz0 = np.hypot(det.z0_res_const, det.z0_res_scale / tpt)
    return {"particle": c, "event": parts.event[c], "pt": pt_meas, "eta": teta, "phi": tphi, "mass": m[c],
            "d0": d0_true + sd0 * g_d0, "sigma_d0": sd0, "z0": z0_true + sz0 * g_z0, "sigma_pt": rel * tpt,
            "id": parts.id[c]}


def calorimeter_deposits(parts: Particles, tracked: np.ndarray, rng: np.random.Generator,
                         det: Detector = Detector()) -> dict[str, np.ndarray]:
    """Calorimeter cells: every stable visible particle without a track and |eta| < ``calo_eta_max`` (muons
    excepted: minimum ionising, not counted; charged particles with pT < ``calo_charged_pt_min`` excepted: they
    curl up in the magnetic field) deposits its energy in one cell of its system: ECAL (photons and
    electrons, |eta| < ``ecal_eta_max``), HCAL (hadrons, |eta| < ``ecal_eta_max``), HF (beyond, EM and hadronic
    cells kept apart); the energies of a cell are summed, then smeared by the system's resolution
    sigma_E / E = stoch / sqrt(E) (+) const (one standard normal per cell, cells in sorted key order), and cells
    below the system's threshold are dropped. Tracked particles leave nothing (perfect track-cluster linking).

    Args:
        tracked: positions in ``parts`` of the particles with a track (``reconstruct_tracks(...)["particle"]``).

    Returns:
        dict of arrays over cells: event, system (ECAL, HCAL, HF_EM, HF_HAD), e (measured) [GeV], eta, phi (cell
        centre), sigma_e [GeV], e_true [GeV].
    """
    pt, eta, phi, _ = _kin(parts.px, parts.py, parts.pz, parts.e)
    aid = np.abs(parts.id)
    free = np.ones(len(aid), bool)
    free[tracked] = False
    curl = (parts.charge != 0) & (pt < det.calo_charged_pt_min)
    dep = np.flatnonzero(_stable_visible(parts) & free & (aid != 13) & ~curl & (np.abs(eta) < det.calo_eta_max))
    em = np.isin(aid[dep], (11, 22))
    central = np.abs(eta[dep]) < det.ecal_eta_max
    system = np.where(central, np.where(em, ECAL, HCAL), np.where(em, HF_EM, HF_HAD))
    deta = np.array([det.ecal_cell_eta, det.hcal_cell_eta, det.hf_cell_eta, det.hf_cell_eta])[system]
    nphi = np.array([det.ecal_cell_nphi, det.hcal_cell_nphi, det.hf_cell_nphi, det.hf_cell_nphi])[system]
    ieta = np.floor(eta[dep] / deta).astype(np.int64)
    iphi = np.floor((phi[dep] + np.pi) / (2 * np.pi) * nphi).astype(np.int64) % nphi
    key = ((parts.event[dep] * 4 + system) * 4096 + (ieta + 2048)) * 4096 + iphi
    ukey, inv = np.unique(key, return_inverse=True)
    e_true = np.bincount(inv, weights=parts.e[dep], minlength=len(ukey))
    c_iphi = ukey % 4096
    c_ieta = (ukey // 4096) % 4096 - 2048
    c_sys = (ukey // 4096 // 4096) % 4
    c_ev = ukey // 4096 // 4096 // 4
    stoch = np.array([det.ecal_stoch, det.hcal_stoch, det.hf_stoch, det.hf_stoch])[c_sys]
    const = np.array([det.ecal_const, det.hcal_const, det.hf_const, det.hf_const])[c_sys]
    thr = np.array([det.ecal_threshold, det.hcal_threshold, det.hf_threshold, det.hf_threshold])[c_sys]
    c_deta = np.array([det.ecal_cell_eta, det.hcal_cell_eta, det.hf_cell_eta, det.hf_cell_eta])[c_sys]
    c_nphi = np.array([det.ecal_cell_nphi, det.hcal_cell_nphi, det.hf_cell_nphi, det.hf_cell_nphi])[c_sys]
    sigma = np.hypot(stoch * np.sqrt(e_true), const * e_true)
    e_meas = e_true + sigma * rng.standard_normal(len(ukey))
    keep = e_meas > thr
    return {"event": c_ev[keep], "system": c_sys[keep], "e": e_meas[keep],
            "eta": ((c_ieta + 0.5) * c_deta)[keep], "phi": ((c_iphi + 0.5) * 2 * np.pi / c_nphi - np.pi)[keep],
            "sigma_e": sigma[keep], "e_true": e_true[keep]}


def particle_flow(tracks: Mapping[str, np.ndarray], cells: Mapping[str, np.ndarray], parts: Particles,
                  det: Detector = Detector()) -> dict[str, np.ndarray]:
    """Particle-flow-like candidates: every track becomes an electron (|id| = 11), a muon (|id| = 13,
    pT > ``muon_pt_min``, |eta| < ``muon_eta_max``) or a charged hadron, with the track momentum and the
    particle's mass; every ECAL / HF-EM cell a photon and every HCAL / HF-hadronic cell a neutral hadron
    (massless, at the cell centre). Charged candidates are associated with the nearest vertex in z (truth vertex
    positions: hard vertex at 0, pile-up vertices); ``from_pv`` is false for those nearer a pile-up vertex
    (charged-hadron subtraction removes them from the jet inputs).

    Returns:
        dict of arrays over candidates (event-major): event, type (211, 11, 13, 22, 130), charge (-1, 0, 1),
        px, py, pz, e, pt, eta, phi [GeV, rad], d0, sigma_d0, z0 [mm] (0 for neutrals), from_pv (bool),
        sigma_pt (expected pT resolution from the configured resolutions) [GeV], track (position in ``tracks``
        or -1).
    """
    aid = np.abs(tracks["id"])
    tpt, teta = tracks["pt"], tracks["eta"]
    ttype = np.where(aid == 11, PF_ELECTRON,
                     np.where((aid == 13) & (tpt > det.muon_pt_min) & (np.abs(teta) < det.muon_eta_max), PF_MUON,
                              PF_CHARGED_HADRON))
    tp = tpt * np.cosh(teta)
    te = np.sqrt(tp**2 + tracks["mass"]**2)
    from_pv = np.ones(len(tpt), bool)
    if any(len(v) > 1 for v in parts.vertex_z):
        nv = np.array([len(v) for v in parts.vertex_z])
        vz = np.concatenate(parts.vertex_z)
        i, j = _pairs(tracks["event"], np.repeat(np.arange(parts.n_events), nv), parts.n_events)
        dz = np.abs(tracks["z0"][i] - vz[j])
        first = _best(i, -dz, np.ones(len(i), bool), len(tpt))
        is_pv = np.zeros(len(vz), bool)
        is_pv[_starts(nv)] = True
        from_pv = is_pv[j[first]]
    cpt = cells["e"] / np.cosh(cells["eta"])
    ctype = np.where(np.isin(cells["system"], (ECAL, HF_EM)), PF_PHOTON, PF_NEUTRAL_HADRON)
    n_t, n_c = len(tpt), len(cpt)
    cand = {
        "event": np.concatenate([tracks["event"], cells["event"]]),
        "type": np.concatenate([ttype, ctype]),
        "charge": np.concatenate([np.sign(parts.charge[tracks["particle"]]), np.zeros(n_c)]).astype(np.int32),
        "pt": np.concatenate([tpt, cpt]), "eta": np.concatenate([teta, cells["eta"]]),
        "phi": np.concatenate([tracks["phi"], cells["phi"]]), "e": np.concatenate([te, cells["e"]]),
        "d0": np.concatenate([tracks["d0"], np.zeros(n_c)]),
        "sigma_d0": np.concatenate([tracks["sigma_d0"], np.ones(n_c)]),
        "z0": np.concatenate([tracks["z0"], np.zeros(n_c)]),
        "from_pv": np.concatenate([from_pv, np.ones(n_c, bool)]),
        "sigma_pt": np.concatenate([tracks["sigma_pt"], cells["sigma_e"] / np.cosh(cells["eta"])]),
        "track": np.concatenate([np.arange(n_t), np.full(n_c, -1)]),
    }
    cand["px"] = cand["pt"] * np.cos(cand["phi"])
    cand["py"] = cand["pt"] * np.sin(cand["phi"])
    cand["pz"] = cand["pt"] * np.sinh(cand["eta"])
    order = np.argsort(cand["event"], kind="stable")
    return {k: v[order] for k, v in cand.items()}


def _rho(pf, n_events, det):
    """Median pT density [GeV / rad^2] of grid cells (|eta| < rho_eta_max) per event, from the CHS candidates."""
    n_eta = max(1, int(round(2 * det.rho_eta_max / det.rho_cell)))
    n_phi = max(1, int(round(2 * np.pi / det.rho_cell)))
    area = (2 * det.rho_eta_max / n_eta) * (2 * np.pi / n_phi)
    sel = np.abs(pf["eta"]) < det.rho_eta_max
    ie = np.clip(((pf["eta"][sel] + det.rho_eta_max) / (2 * det.rho_eta_max) * n_eta).astype(np.int64), 0,
                 n_eta - 1)
    ip = np.clip(((pf["phi"][sel] + np.pi) / (2 * np.pi) * n_phi).astype(np.int64), 0, n_phi - 1)
    grid = np.bincount((pf["event"][sel] * n_eta + ie) * n_phi + ip, weights=pf["pt"][sel],
                       minlength=n_events * n_eta * n_phi).reshape(n_events, n_eta * n_phi)
    return np.median(grid, axis=1) / area


def cluster_reco_jets(pf: Mapping[str, np.ndarray], rng: np.random.Generator, n_events: int,
                      det: Detector = Detector(), subtract_rho: bool = False) -> tuple[dict, np.ndarray, np.ndarray]:
    """Reconstructed anti-kt jets (radius ``jet_r``) of the charged-hadron-subtracted candidates (``from_pv``)
    with the active area: explicit ghosts of area ``ghost_area`` on a grid over |y| < ``ghost_eta_max``, each
    moved uniformly inside its grid cell (two uniform numbers per ghost, event by event), pT 1e-100 GeV; the area
    of a jet is its number of ghosts times the ghost area. With ``subtract_rho`` (pile-up on) the four-momentum
    is scaled by max(0, 1 - (rho - rho_ue) A / pT), rho the event's median pT density (``_rho``), rho_ue its
    median without pile-up (the underlying event is in the generator jets too, so it is not subtracted). Jets
    with pT >
    ``reco_pt_min`` are kept (pT-descending within an event).

    Returns:
        ``(jets, jet_of, member)``: jets is a dict of flat arrays event, px, py, pz, e, pt, eta, phi, mass,
        area, rho; ``member`` the positions in ``pf`` of the real constituents and ``jet_of`` their jet.
    """
    chs = np.flatnonzero(pf["from_pv"])
    n_y = max(1, int(round(2 * det.ghost_eta_max / math.sqrt(det.ghost_area))))
    n_p = max(1, int(round(2 * math.pi / math.sqrt(det.ghost_area))))
    dy, dp = 2 * det.ghost_eta_max / n_y, 2 * math.pi / n_p
    cell_area = dy * dp
    n_g = n_y * n_p
    gy0 = np.repeat(-det.ghost_eta_max + dy * np.arange(n_y), n_p)
    gp0 = np.tile(-math.pi + dp * np.arange(n_p), n_y)
    jit = rng.random((n_events, 2, n_g))
    gy = (gy0 + dy * jit[:, 0]).ravel()
    gp = (gp0 + dp * jit[:, 1]).ravel()
    gpt = 1e-100
    ev = np.concatenate([pf["event"][chs], np.repeat(np.arange(n_events), n_g)])
    px = np.concatenate([pf["px"][chs], gpt * np.cos(gp)])
    py = np.concatenate([pf["py"][chs], gpt * np.sin(gp)])
    pz = np.concatenate([pf["pz"][chs], gpt * np.sinh(gy)])
    e = np.concatenate([pf["e"][chs], gpt * np.cosh(gy)])
    min_pt = det.reco_pt_min
    jets, jet_of, member = _cluster(ev, px, py, pz, e, n_events, det.jet_r, min_pt)
    n = len(jets["event"])
    ghost = member >= len(chs)
    area = _sum(jet_of, ghost, n) * cell_area
    jet_of, member = jet_of[~ghost], chs[member[~ghost]]
    rho = _rho({k: v[chs] for k, v in pf.items()}, n_events, det) if subtract_rho else np.zeros(n_events)
    pt = np.hypot(jets["px"], jets["py"])
    offset = np.maximum(rho - det.rho_ue, 0.0) if subtract_rho else np.zeros(n_events)
    scale = np.maximum(0.0, 1.0 - offset[jets["event"]] * area / np.maximum(pt, 1e-12)) if n else np.zeros(0)
    for k in ("px", "py", "pz", "e"):
        jets[k] = jets[k] * scale
    jpt, jeta, jphi, jm = _kin(jets["px"], jets["py"], jets["pz"], jets["e"])
    jets.update(pt=jpt, eta=jeta, phi=jphi, mass=jm, area=area, rho=rho[jets["event"]] if n else np.zeros(0))
    keep = jpt > det.reco_pt_min
    order = np.flatnonzero(keep)[np.lexsort((-jpt[keep], jets["event"][keep]))]
    new = np.full(n, -1, np.int64)
    new[order] = np.arange(len(order))
    sel = new[jet_of] >= 0
    return {k: v[order] for k, v in jets.items()}, new[jet_of[sel]], member[sel]


def match_jets(gen_jets: Mapping[str, np.ndarray], reco_jets: Mapping[str, np.ndarray], n_events: int,
               det: Detector = Detector()) -> tuple[np.ndarray, np.ndarray]:
    """Generator <-> reconstructed jets of the same event: mutual nearest neighbours in Delta R with
    Delta R < ``match_dr`` (one-to-one by construction).

    Returns:
        ``(reco_of_gen, dr)``: per generator jet the index of its reconstructed jet (-1: none) and the Delta R
        (inf: none), shapes ``(n_gen,)``.
    """
    ng, nr = len(gen_jets["event"]), len(reco_jets["event"])
    reco_of, dr_of = np.full(ng, -1, np.int64), np.full(ng, np.inf)
    if not ng or not nr:
        return reco_of, dr_of
    i, j = _pairs(gen_jets["event"], reco_jets["event"], n_events)
    dr = np.hypot(gen_jets["eta"][i] - reco_jets["eta"][j], _wrap(gen_jets["phi"][i] - reco_jets["phi"][j]))
    bg = _best(i, -dr, np.ones(len(i), bool), ng)  # nearest reco of each gen jet (pair position)
    br = _best(j, -dr, np.ones(len(j), bool), nr)  # nearest gen of each reco jet
    has = bg >= 0
    g = np.flatnonzero(has)
    p = bg[has]
    ok = (br[j[p]] == p) & (dr[p] < det.match_dr)
    reco_of[g[ok]] = j[p[ok]]
    dr_of[g[ok]] = dr[p[ok]]
    return reco_of, dr_of


def _log_jet_probability(group, logp, n):
    """Per group, ln of the jet probability of the tracks with per-track ln P ``logp``:
    JP = Pi sum_{k < N} (-ln Pi)^k / k! (Pi the product of the N probabilities; 1 for N = 0)."""
    cnt = np.bincount(group, minlength=n)[:n] if n else np.zeros(0, np.int64)
    lnpi = _sum(group, logp, n)
    out = np.zeros(n)
    kmax = int(cnt.max()) if n and len(cnt) else 0
    if kmax == 0:
        return out
    y = -lnpi
    k = np.arange(kmax)
    from scipy.special import gammaln

    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(k[None, :] == 0, 0.0, k[None, :] * np.log(np.maximum(y, 1e-300))[:, None]) - gammaln(k + 1)
    terms = np.where(k[None, :] < cnt[:, None], terms, -np.inf)
    mx = np.where(cnt > 0, terms.max(axis=1), 0.0)
    with np.errstate(divide="ignore"):
        lse = mx + np.log(np.exp(terms - mx[:, None]).sum(axis=1))
    return np.where(cnt > 0, np.minimum(lnpi + lse, 0.0), 0.0)


def flavour_tagging(jets: Mapping[str, np.ndarray], jet_index: np.ndarray, pf: Mapping[str, np.ndarray],
                    n_events: int, det: Detector = Detector()) -> dict[str, np.ndarray]:
    """Our b and c discriminants from the signed transverse impact-parameter significances of the jet's tracks.

    Tracks: charged candidates from the primary vertex with pT > ``tag_track_pt_min``, |d0| < ``tag_track_d0_max``
    and Delta R < ``tag_track_dr`` to the jet axis. Significance S = sign * |d0| / sigma_d0, the sign positive when
    the track's point of closest approach lies on the jet's side (d0 sin(phi_track - phi_jet) > 0). Per track
    P = 2 (1 - Phi(S)) for S > 0 (the probability of a prompt track, our Gaussian d0 resolution), combined into jet
    probabilities JP = Pi sum_{k<N} (-ln Pi)^k / k! (ALEPH / CMS JetProbability). With L(JP) = -log10 JP:
    ``btag = L / (1 + L)`` over all positive-S tracks; ``ctag = L2 / (1 + L2) / (1 + (L2 / ctag_l_sat)^2) /
    (1 + L_rest)`` with L2 from the two most significant tracks and L_rest from the other positive-S tracks
    (c hadrons give one or two moderately displaced tracks; b hadrons, with their c cascade, more and further
    displaced ones). Both lie in [0, 1); 0 without positive-S tracks.

    Args:
        jet_index: the jets to tag (positions in ``jets``), shape ``(m,)``.

    Returns:
        dict of arrays of shape ``(m,)``: btag, ctag, n_tag_tracks (selected tracks, any sign), s1, s2
        (largest and second-largest significance; -10 when missing) and, when there are tracks, l_b, l_2, l_rest
        (the -log10 JP values above).
    """
    from scipy.special import log_ndtr

    m = len(jet_index)
    out = {"btag": np.zeros(m), "ctag": np.zeros(m), "n_tag_tracks": np.zeros(m, np.int64),
           "s1": np.full(m, -10.0), "s2": np.full(m, -10.0)}
    trk = np.flatnonzero((pf["charge"] != 0) & pf["from_pv"] & (pf["pt"] > det.tag_track_pt_min) &
                         (np.abs(pf["d0"]) < det.tag_track_d0_max))
    if not m or not len(trk):
        return out
    jev = jets["event"][jet_index]
    order = np.argsort(jev, kind="stable")
    i, j = _pairs(jev[order], pf["event"][trk], n_events)
    i = order[i]
    t = trk[j]
    jphi, jeta = jets["phi"][jet_index][i], jets["eta"][jet_index][i]
    dphi = _wrap(pf["phi"][t] - jphi)
    near = np.hypot(pf["eta"][t] - jeta, dphi) < det.tag_track_dr
    i, t, dphi = i[near], t[near], dphi[near]
    sign = np.where(pf["d0"][t] * np.sin(dphi) >= 0, 1.0, -1.0)
    s = sign * np.abs(pf["d0"][t]) / pf["sigma_d0"][t]
    out["n_tag_tracks"] = np.bincount(i, minlength=m)
    order = np.lexsort((-s, i))
    i, s = i[order], s[order]
    rank = np.arange(len(i)) - _starts(np.bincount(i, minlength=m))[i]
    out["s1"][i[rank == 0]] = s[rank == 0]
    out["s2"][i[rank == 1]] = s[rank == 1]
    pos = s > 0
    logp = np.log(2.0) + log_ndtr(-s)
    lb = -_log_jet_probability(i[pos], logp[pos], m) / np.log(10)
    top = pos & (rank < 2)
    rest = pos & (rank >= 2)
    l2 = -_log_jet_probability(i[top], logp[top], m) / np.log(10)
    lr = -_log_jet_probability(i[rest], logp[rest], m) / np.log(10)
    out.update(l_b=lb, l_2=l2, l_rest=lr)
    out["btag"] = lb / (1 + lb)
    out["ctag"] = l2 / (1 + l2) / (1 + (l2 / det.ctag_l_sat) ** 2) / (1 + lr)
    return out


def quark_gluon_variables(jets: Mapping[str, np.ndarray], jet_of: np.ndarray, member: np.ndarray,
                          pf: Mapping[str, np.ndarray], det: Detector = Detector()) -> dict[str, np.ndarray]:
    """CMS's quark/gluon inputs from the jet constituents (charged ones and neutral ones with pT >
    ``qg_neutral_pt_min``): ``mult`` (their number), ``pt_d`` = sqrt(sum pT^2) / sum pT and ``axis2`` [rad], the
    minor axis of their pT^2-weighted (eta, phi) ellipse (sqrt of the smaller eigenvalue of the weighted
    covariance). Arrays of shape ``(n_jets,)``; pt_d = axis2 = 0 for jets without such constituents."""
    n = len(jets["event"])
    sel = (pf["charge"][member] != 0) | (pf["pt"][member] > det.qg_neutral_pt_min)
    g, c = jet_of[sel], member[sel]
    w = pf["pt"][c] ** 2
    de = pf["eta"][c] - jets["eta"][g]
    dp = _wrap(pf["phi"][c] - jets["phi"][g])
    mult = np.bincount(g, minlength=n)[:n] if n else np.zeros(0, np.int64)
    spt = _sum(g, pf["pt"][c], n)
    sw = _sum(g, w, n)
    safe = np.maximum(sw, 1e-300)
    me, mp = _sum(g, w * de, n) / safe, _sum(g, w * dp, n) / safe
    a = _sum(g, w * de**2, n) / safe - me**2
    b = _sum(g, w * dp**2, n) / safe - mp**2
    cc = _sum(g, w * de * dp, n) / safe - me * mp
    lam = (a + b) / 2 - np.sqrt(((a - b) / 2) ** 2 + cc**2)
    return {"mult": mult, "pt_d": np.where(spt > 0, np.sqrt(sw) / np.maximum(spt, 1e-300), 0.0),
            "axis2": np.sqrt(np.maximum(lam, 0.0))}


# Our quark / gluon templates (Gaussians of mult, pt_d and -ln axis2 per generator-jet pT bin, for light-quark
# (|parton flavour| 1-3) and gluon jets), fitted by ``calibrate_qgl`` on the 34,709 jets of 6000 events of this
# chain at the defaults (Pythia seed 101, no pile-up); the likelihood picks the bin with the reconstructed pT.
QGL_PT_EDGES = (15.0, 30.0, 50.0, 80.0, 120.0, 200.0)
QGL_CALIBRATION: dict[str, dict[str, list[tuple[float, float]]]] = {
    "quark": {
        "mult": [(6.4692, 2.3323), (8.5233, 3.0959), (10.6687, 3.9181),
                 (12.5785, 4.7613), (15.6996, 6.3305), (19.5446, 9.092)],
        "pt_d": [(0.5325, 0.1331), (0.5071, 0.1401), (0.4849, 0.1414),
                 (0.4783, 0.1436), (0.4554, 0.1353), (0.4476, 0.133)],
        "log_axis2": [(3.5605, 1.2553), (3.7237, 1.0316), (3.8759, 0.948),
                      (4.0893, 0.8578), (4.1986, 0.7919), (4.4636, 0.821)],
    },
    "gluon": {
        "mult": [(7.6217, 2.784), (10.2229, 4.2423), (12.4899, 5.9982),
                 (15.5776, 7.3687), (19.2347, 9.1647), (26.0826, 11.3601)],
        "pt_d": [(0.4779, 0.1482), (0.4679, 0.2014), (0.476, 0.2364),
                 (0.4509, 0.2324), (0.4301, 0.2277), (0.3879, 0.1918)],
        "log_axis2": [(3.2435, 1.4763), (3.6081, 1.7554), (3.9754, 1.901),
                      (4.0789, 1.7841), (4.1752, 1.6094), (4.1314, 1.1611)],
    },
}


def quark_gluon_likelihood(pt: np.ndarray, mult: np.ndarray, pt_d: np.ndarray, axis2: np.ndarray,
                           calibration: Mapping[str, Mapping[str, Any]] | None = None) -> np.ndarray:
    """Our quark/gluon likelihood L_q / (L_q + L_g) in [0, 1] (1: quark-like), L the product of Gaussian
    templates of ``mult``, ``pt_d`` and -ln(``axis2`` [rad], floored at 1e-4) in the pT [GeV] bin of
    ``QGL_PT_EDGES`` (below the first edge: the first bin). Arrays of shape ``(n,)``.

    Raises:
        ValueError: an empty calibration (run ``calibrate_qgl`` first).
    """
    cal = QGL_CALIBRATION if calibration is None else calibration
    if not cal:
        raise ValueError("no quark/gluon calibration: QGL_CALIBRATION is empty (see calibrate_qgl)")
    b = np.clip(np.searchsorted(np.asarray(QGL_PT_EDGES), pt, side="right") - 1, 0, len(QGL_PT_EDGES) - 1)
    x = {"mult": np.asarray(mult, float), "pt_d": np.asarray(pt_d, float),
         "log_axis2": -np.log(np.maximum(np.asarray(axis2, float), 1e-4))}
    ll = {}
    for cls in ("quark", "gluon"):
        tot = np.zeros(len(b))
        for var, v in x.items():
            pars = np.asarray(cal[cls][var], float)
            mu, sd = pars[b, 0], np.maximum(pars[b, 1], 1e-6)
            tot += -0.5 * ((v - mu) / sd) ** 2 - np.log(sd)
        ll[cls] = tot
    d = np.clip(ll["gluon"] - ll["quark"], -700, 700)
    return 1.0 / (1.0 + np.exp(d))


def calibrate_qgl(table: pd.DataFrame) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """Fit the quark/gluon templates (mean, standard deviation per ``QGL_PT_EDGES`` bin of generator-jet pT) of
    ``mult``, ``pt_d`` and -ln ``axis2`` for light-quark (|parton_flavour| 1-3) and gluon (21) jets of a feature
    table (columns gen_pt, parton_flavour, mult, pt_d, axis2). Raises ValueError if a bin has < 10 jets of a
    class."""
    b = np.clip(np.searchsorted(np.asarray(QGL_PT_EDGES), table["gen_pt"], side="right") - 1, 0,
                len(QGL_PT_EDGES) - 1)
    flav = np.abs(table["parton_flavour"].to_numpy())
    x = {"mult": table["mult"].to_numpy(float), "pt_d": table["pt_d"].to_numpy(float),
         "log_axis2": -np.log(np.maximum(table["axis2"].to_numpy(float), 1e-4))}
    out = {}
    for cls, sel in (("quark", (flav >= 1) & (flav <= 3)), ("gluon", flav == 21)):
        out[cls] = {}
        for var, v in x.items():
            pars = []
            for k in range(len(QGL_PT_EDGES)):
                vals = v[sel & (b == k)]
                if len(vals) < 10:
                    raise ValueError(f"calibrate_qgl: only {len(vals)} {cls} jets in pT bin {k}")
                pars.append((round(float(vals.mean()), 4), round(float(vals.std()), 4)))
            out[cls][var] = pars
    return out


def jet_identification(fractions: Mapping[str, np.ndarray], n_constituents: np.ndarray, n_charged: np.ndarray,
                       n_neutral: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """CMS-style jet identification (2018 tight and tight-lepton-veto criteria) from our fractions: returns
    ``2 * tight + 4 * tight_lepton_veto`` (values 0, 2, 6 as NanoAOD's jetId), shape ``(n,)``.

    |eta| <= 2.6: tight = NHF < 0.90, NEMF < 0.90, N constituents > 1, CHF > 0, charged multiplicity > 0;
    lepton veto adds MUF < 0.80, CEMF < 0.80. 2.6 < |eta| <= 2.7: NHF < 0.90, NEMF < 0.99, charged multiplicity
    > 0 (veto as above). 2.7 < |eta| <= 3.0: 0.01 < NEMF < 0.99, neutral multiplicity > 1. |eta| > 3: NEMF < 0.90,
    NHF > 0.2, neutral multiplicity > 10. Beyond 2.7 the veto equals tight.
    """
    nhf, nemf, chf = fractions["ne_had_ef"], fractions["ne_em_ef"], fractions["ch_had_ef"]
    muf, cemf = fractions["mu_ef"], fractions["ch_em_ef"]
    a = np.abs(eta)
    veto = (muf < 0.80) & (cemf < 0.80)
    t1 = (nhf < 0.90) & (nemf < 0.90) & (n_constituents > 1) & (chf > 0) & (n_charged > 0)
    t2 = (nhf < 0.90) & (nemf < 0.99) & (n_charged > 0)
    t3 = (nemf > 0.01) & (nemf < 0.99) & (n_neutral > 1)
    t4 = (nemf < 0.90) & (nhf > 0.2) & (n_neutral > 10)
    tight = np.where(a <= 2.6, t1, np.where(a <= 2.7, t2, np.where(a <= 3.0, t3, t4)))
    lep = tight & np.where(a <= 2.7, veto, True)
    return (2 * tight + 4 * lep).astype(np.int32)


def pileup_identification(jets: Mapping[str, np.ndarray], jet_index: np.ndarray, pf: Mapping[str, np.ndarray],
                          n_events: int, det: Detector = Detector()) -> tuple[np.ndarray, np.ndarray]:
    """Our pile-up jet identification: beta = pT fraction of the tracks within Delta R < ``jet_r`` of the jet
    axis (all vertices, before charged-hadron subtraction) that come from the primary vertex (0 without tracks);
    ``pu_id = 4 (beta > 0.2) + 2 (beta > 0.5) + 1 (beta > 0.8)`` (loose / medium / tight bits as NanoAOD's puId:
    values 0, 4, 6, 7). Returns ``(pu_id, beta)``, shapes ``(m,)`` for the jets ``jet_index``."""
    m = len(jet_index)
    trk = np.flatnonzero(pf["charge"] != 0)
    beta = np.zeros(m)
    if m and len(trk):
        jev = jets["event"][jet_index]
        order = np.argsort(jev, kind="stable")
        i, j = _pairs(jev[order], pf["event"][trk], n_events)
        i = order[i]
        t = trk[j]
        near = np.hypot(pf["eta"][t] - jets["eta"][jet_index][i],
                        _wrap(pf["phi"][t] - jets["phi"][jet_index][i])) < det.jet_r
        i, t = i[near], t[near]
        tot = _sum(i, pf["pt"][t], m)
        pv = _sum(i, pf["pt"][t] * pf["from_pv"][t], m)
        beta = np.where(tot > 0, pv / np.maximum(tot, 1e-300), 0.0)
    pu_id = 4 * (beta > 0.2) + 2 * (beta > 0.5) + 1 * (beta > 0.8)
    return pu_id.astype(np.int32), beta


# --------------------------------------------------------------------------------------------- the chain

def process_events(parts: Particles, rng: np.random.Generator, det: Detector = Detector(),
                   gen: GenLevel = GenLevel(), first_event: int = 0, pileup: bool = False,
                   qgl_calibration: Mapping[str, Any] | None = None) -> tuple[pd.DataFrame, dict]:
    """The full chain on a batch of events: generator jets and muon conditioning, then the detector response
    steps in this order (the order of the random draws): ``reconstruct_tracks``, ``calorimeter_deposits``,
    ``particle_flow``, ``cluster_reco_jets``, ``match_jets``, ``flavour_tagging``, ``quark_gluon_variables``,
    ``jet_identification`` (and ``pileup_identification`` with ``pileup``).

    Args:
        parts: the batch (``flatten_events``).
        rng: the block's generator.
        first_event: global number of the batch's first event (column ``event``).
        pileup: pile-up is overlaid: rho subtraction and the pile-up identification columns.
        qgl_calibration: quark/gluon templates (default ``QGL_CALIBRATION``).

    Returns:
        ``(table, record)``: the feature table (one row per generator jet with pT > ``gen.pt_min``,
        |eta| < ``gen.eta_max`` and a matched reconstructed jet; columns ``feature_columns(pileup)``), and the
        event record (``GenJet``, ``Jet``, ``Event`` awkward collections per event, plus ``stats``).
    """
    n_ev = parts.n_events
    gj = generator_jets(parts, gen)
    tracks = reconstruct_tracks(parts, rng, det)
    cells = calorimeter_deposits(parts, tracks["particle"], rng, det)
    pf = particle_flow(tracks, cells, parts, det)
    rj, jet_of, member = cluster_reco_jets(pf, rng, n_ev, det, subtract_rho=pileup)
    reco_of, match_dr = match_jets(gj, rj, n_ev, det)
    rows = np.flatnonzero((gj["pt"] > gen.pt_min) & (np.abs(gj["eta"]) < gen.eta_max) & (reco_of >= 0))
    r = reco_of[rows]
    nr = len(rj["event"])

    # per reconstructed jet: energy fractions, counts, expected resolution
    ctype, ce = pf["type"][member], pf["e"][member]
    etot = _sum(jet_of, ce, nr)
    frac = {}
    for name, typ in (("ch_had_ef", PF_CHARGED_HADRON), ("ne_had_ef", PF_NEUTRAL_HADRON),
                      ("ch_em_ef", PF_ELECTRON), ("ne_em_ef", PF_PHOTON), ("mu_ef", PF_MUON)):
        frac[name] = np.where(etot > 0, _sum(jet_of, ce * (ctype == typ), nr) / np.maximum(etot, 1e-300), 0.0)
    n_const = np.bincount(jet_of, minlength=nr)[:nr] if nr else np.zeros(0, np.int64)
    n_charged = _sum(jet_of, pf["charge"][member] != 0, nr).astype(np.int64)
    raw_pt = np.hypot(_sum(jet_of, pf["px"][member], nr), _sum(jet_of, pf["py"][member], nr))
    res = np.sqrt(_sum(jet_of, pf["sigma_pt"][member] ** 2, nr)) / np.maximum(raw_pt, 1e-12)
    qg = quark_gluon_variables(rj, jet_of, member, pf, det)
    tags = flavour_tagging(rj, r, pf, n_ev, det)
    jet_id = jet_identification(frac, n_const, n_charged, n_const - n_charged, rj["eta"])
    qgl = quark_gluon_likelihood(rj["pt"][r], qg["mult"][r], qg["pt_d"][r], qg["axis2"][r], qgl_calibration)
    mu = muon_conditioning({k: v[rows] for k, v in gj.items()}, parts, gen)
    n_pu = np.array([len(v) - 1 for v in parts.vertex_z])

    t = {**{k: mu[k] for k in CONDITIONING[:8]},
         "gen_eta": gj["eta"][rows], "gen_mass": gj["mass"][rows], "gen_phi": gj["phi"][rows],
         "gen_pt": gj["pt"][rows], "parton_flavour": gj["parton_flavour"][rows],
         "hadron_flavour": gj["hadron_flavour"][rows],
         "area": rj["area"][r], "btag": tags["btag"], "ctag": tags["ctag"],
         "eta_minus_gen": rj["eta"][r] - gj["eta"][rows],
         "mass_ratio": rj["mass"][r] / np.maximum(gj["mass"][rows], gen.mass_floor),
         "n_constituents": n_const[r].astype(np.int32),
         "phi_minus_gen": _wrap(rj["phi"][r] - gj["phi"][rows]),
         "pt_ratio": rj["pt"][r] / gj["pt"][rows], "qgl": qgl,
         **{k: frac[k][r] for k in ("mu_ef", "ch_had_ef", "ne_had_ef", "ch_em_ef", "ne_em_ef")},
         "jet_id": jet_id[r]}
    if pileup:
        pu_id, beta = pileup_identification(rj, r, pf, n_ev, det)
        t["pu_id"] = pu_id
    t.update({"event": (first_event + gj["event"][rows]).astype(np.int64), "pt": rj["pt"][r],
              "eta": rj["eta"][r], "phi": rj["phi"][r], "mass": rj["mass"][r], "match_dr": match_dr[rows],
              "n_charged": n_charged[r].astype(np.int32), "mult": qg["mult"][r].astype(np.int32),
              "pt_d": qg["pt_d"][r], "axis2": qg["axis2"][r],
              "n_tag_tracks": tags["n_tag_tracks"].astype(np.int32), "pt_res_expected": res[r],
              "n_pileup": n_pu[gj["event"][rows]].astype(np.int32), "rho": rj["rho"][r]})
    if pileup:
        t["pu_beta"] = beta
    table = pd.DataFrame({c: t[c] for c in feature_columns(pileup)})

    # event record: all generator jets of the rows' kind (matched or not) and all reconstructed jets
    keep_g = (gj["pt"] > gen.pt_min) & (np.abs(gj["eta"]) < gen.eta_max)
    cg = np.bincount(gj["event"][keep_g], minlength=n_ev)
    cr = np.bincount(rj["event"], minlength=n_ev)
    rstart = _starts(cr)
    jet_idx = np.where(reco_of >= 0, reco_of - rstart[gj["event"]], -1)
    gen_rec = ak.unflatten(ak.zip({
        "PT": gj["pt"][keep_g], "Eta": gj["eta"][keep_g], "Phi": gj["phi"][keep_g], "Mass": gj["mass"][keep_g],
        "PartonFlavour": gj["parton_flavour"][keep_g], "HadronFlavour": gj["hadron_flavour"][keep_g],
        "JetIdx": jet_idx[keep_g].astype(np.int32)}), cg)
    gidx_of_reco = np.full(nr, -1, np.int64)
    gstart = _starts(cg)
    gpos = np.full(len(gj["event"]), -1, np.int64)
    gpos[keep_g] = np.arange(int(keep_g.sum())) - gstart[gj["event"][keep_g]]
    m = (reco_of >= 0) & keep_g
    gidx_of_reco[reco_of[m]] = gpos[m]
    reco_rec = ak.unflatten(ak.zip({
        "PT": rj["pt"], "Eta": rj["eta"], "Phi": rj["phi"], "Mass": rj["mass"], "Area": rj["area"],
        "NConstituents": n_const.astype(np.int32), "GenJetIdx": gidx_of_reco.astype(np.int32)}), cr)
    rho_ev = np.zeros(n_ev)
    if nr:
        rho_ev[rj["event"]] = rj["rho"]
    one = np.ones(n_ev, np.int64)
    event_rec = ak.unflatten(ak.zip({"Number": first_event + np.arange(n_ev), "NPileUp": n_pu.astype(np.int32),
                                     "Rho": rho_ev}), one)
    stats = {"gen_jets": int(keep_g.sum()), "matched_jets": int(len(rows))}
    return table, {"GenJet": gen_rec, "Jet": reco_rec, "Event": event_rec, "stats": stats}


def feature_columns(pileup: bool = False) -> list[str]:
    """The feature table's columns: CONDITIONING, TARGETS (+ PILEUP_TARGETS), AUX (+ PILEUP_AUX)."""
    cols = list(CONDITIONING) + list(TARGETS) + (list(PILEUP_TARGETS) if pileup else []) + list(AUX)
    return cols + (list(PILEUP_AUX) if pileup else [])


# --------------------------------------------------------------------------------------------- the sample

def _pileup_batch(pu_pythia, n_hard, mean, rng, det):
    """Poisson(mean) minimum-bias events per hard event and their vertex z: (pu_prt, counts, z)."""
    counts = rng.poisson(mean, n_hard)
    total = int(counts.sum())
    z = rng.normal(0.0, det.pileup_sigma_z, total)
    got = []
    while sum(len(g) for g in got) < total:
        got.append(pu_pythia.nextBatch(total - sum(len(g) for g in got), errorMode="skip").prt)
    prt = ak.concatenate(got) if got else None
    if prt is None:
        return None, counts, z
    return prt, counts, z


def _generate_block(config, block, report):
    det = Detector(**config.get("detector", {}))
    gen = GenLevel(**config.get("gen", {}))
    mean_pu = float(config.get("pileup", 0.0))
    pythia = runner.init_pythia(runner.configured_pythia(block.seed, pythia_settings(config.get("mpi", True))))
    charge = ChargeTable(pythia)
    pu_pythia = None
    if mean_pu > 0:
        pu_pythia = runner.init_pythia(runner.configured_pythia(runner.block_seed(block.seed, 1), pileup_settings()))
    rng = np.random.default_rng([block.seed, 15])
    chunk = int(config.get("chunk", 100))
    tables, records, done = [], [], 0
    stats = {"events": 0, "gen_jets": 0, "matched_jets": 0}
    while done < block.events:
        n = min(chunk, block.events - done)
        batch = pythia.nextBatch(n, errorMode="skip")
        pu = None
        if pu_pythia is not None:
            pu_prt, counts, z = _pileup_batch(pu_pythia, len(batch), mean_pu, rng, det)
            pu = (pu_prt, counts, z) if pu_prt is not None else None
        parts = flatten_events(batch.prt, charge, pu)
        table, rec = process_events(parts, rng, det, gen, first_event=block.first + done, pileup=mean_pu > 0)
        tables.append(table)
        records.append(rec)
        for k in ("gen_jets", "matched_jets"):
            stats[k] += rec["stats"][k]
        stats["events"] += len(batch)
        done += n
        report(n)
    info = pythia.infoPython()
    stats.update({"sigma_pb": info.sigmaGen() * 1e9, "sigma_err_pb": info.sigmaErr() * 1e9})
    trees = {k: ak.concatenate([r[k] for r in records]) for k in ("GenJet", "Jet", "Event")}
    return {"table": pd.concat(tables, ignore_index=True), "trees": trees, "stats": stats}


def _block_tables(result):
    """One block's event record (tree ``events``: GenJet, Jet, Event collections), jet rows and statistics."""
    return runner.BlockTables({TREE: result["trees"]}, (TREE,), result["table"], result["stats"])


def _summarize(entries):
    """Sample metadata from the manifest entries of all blocks (block order)."""
    gen_jets = sum(e["stats"]["gen_jets"] for e in entries)
    matched = sum(e["stats"]["matched_jets"] for e in entries)
    ev = [e["stats"]["events"] for e in entries]
    return {"events_generated": int(sum(ev)), "jets_selected": int(matched), "gen_jets": int(gen_jets),
            "match_efficiency": matched / gen_jets if gen_jets else None,
            "sigma_pb": float(np.average([e["stats"]["sigma_pb"] for e in entries], weights=ev)) if sum(ev) else None}


def make_sample(out, events: int = 2000, seed: int = 1, jobs: int = 1, pileup: float = 0.0, mpi: bool = True,
                job_index: int = 0, n_jobs: int = 1, block_size: int = 500, progress: bool = True,
                detector: Detector | None = None, gen: GenLevel | None = None, chunk: int = 100,
                scheduler=None, cluster: str | None = None, workers: int | None = None, cluster_config=None,
                retries: int = 2, keep_parts: bool = False):
    """Generate the sample: ``out`` (tree ``events``: GenJet, Jet, Event collections in Delphes-style names) and
    ``out`` with ``_features`` (one row per matched generator jet, columns ``feature_columns(pileup > 0)``; GeV,
    rad, mm). Returns the feature table's path.

    Args:
        events: generated ttbar events, in seeded blocks of ``block_size`` (same ``seed``, ``block_size`` and
            ``chunk`` -> the same table with any engine or number of ``jobs``).
        pileup: mean number of overlaid minimum-bias events (Poisson); 0 = none.
        mpi: multiparton interactions in the hard events.
        detector, gen: the response and generator-level definitions (defaults: ``Detector()``, ``GenLevel()``).
        chunk: events per Pythia ``nextBatch`` and detector call.
        Others: ``data_prep.runner.produce`` (engines, part files, resume).

    Raises:
        InputError (ValueError): bad ``events`` / ``block_size`` / ``out``, negative ``pileup``. EngineError,
        BlocksFailed: see ``runner.produce``.
    """
    out = runner.check_out(out)
    if pileup < 0:
        raise runner.InputError(f"--pileup must be >= 0, got {pileup}")
    if chunk <= 0:
        raise runner.InputError(f"chunk must be positive, got {chunk}")
    det, gl = detector or Detector(), gen or GenLevel()
    config = {"mpi": mpi, "pileup": float(pileup), "chunk": chunk, "detector": dataclasses.asdict(det),
              "gen": dataclasses.asdict(gl)}
    blocks = runner.make_blocks(events, seed, block_size, job_index, n_jobs)
    meta = {
        "sample": "flashsim_jets", "paper": "Vaselli 2022 (FlashSim), our stand-in for its CMS ttbar jets",
        "seed": seed, "block_size": block_size, "chunk": chunk, "job_index": job_index, "n_jobs": n_jobs,
        "process": "pp -> ttbar, 13 TeV, Pythia 8 (inclusive decays)", "mpi": mpi, "pileup_mean": float(pileup),
        "detector": dataclasses.asdict(det), "gen_level": dataclasses.asdict(gl),
        "conditioning": list(CONDITIONING), "targets": list(TARGETS) + (list(PILEUP_TARGETS) if pileup else []),
        "aux": list(AUX) + (list(PILEUP_AUX) if pileup else []),
        "flavour_association": "ghost (hadrons and shower-ending partons, momenta x 1e-18)",
        "muon_default": "no generator muon within Delta R < 0.4: dr 0.5, pt 0, deta 0.5, dphi 0.5",
        "qgl_calibration": QGL_CALIBRATION, "units": "GeV, rad, mm",
    }
    return runner.produce(runner.Sample.of("flashsim_jets"), config, out, blocks, meta, progress=progress,
                          jobs=jobs, scheduler=scheduler, cluster=cluster, workers=workers,
                          cluster_config=cluster_config, retries=retries, keep_parts=keep_parts,
                          desc="flashsim jets")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m data_prep.flashsim_jets", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    runner.add_common_args(p, events=2000, block_size=500, out="samples/flashsim_jets.root")
    p.add_argument("--pileup", type=float, default=0.0, help="mean number of pile-up events (Poisson; %(default)s)")
    p.add_argument("--no-mpi", action="store_true", help="switch multiparton interactions off in the hard events")
    args = p.parse_args(argv)
    with runner.cli_errors(p.prog):
        path = make_sample(args.out, pileup=args.pileup, mpi=not args.no_mpi, **runner.common_kwargs(args))
    meta = io.read_metadata(path)
    print(f"wrote {args.out} and {path}: {meta['events_generated']} events, {meta['jets_selected']} jets "
          f"(match efficiency {meta['match_efficiency']:.3f}), {runner.rate_text(meta)}")


if __name__ == "__main__":
    main()
