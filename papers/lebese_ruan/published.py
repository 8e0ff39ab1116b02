"""Published numbers of Lebese & Ruan (2021), for comparison only: never used as an output.

Table 1, "Tabulated mean values of MC, WGAN-GP events and their relative mean difference" (units GeV; the Delta
phi row in rad, Delta R unitless).
"""

TABLE1 = {
    "pt_l0": {"mc": 64.876, "wgan_gp": 62.987, "rel_diff": 0.030},
    "pt_l1": {"mc": 35.042, "wgan_gp": 33.755, "rel_diff": 0.038},
    "pt_ll": {"mc": 53.060, "wgan_gp": 52.912, "rel_diff": 0.003},
    "m_ll": {"mc": 89.262, "wgan_gp": 85.795, "rel_diff": 0.040},
    "met": {"mc": 62.480, "wgan_gp": 62.543, "rel_diff": 0.001},
    "mt": {"mc": 154.800, "wgan_gp": 149.771, "rel_diff": 0.034},
    "dphi_ll": {"mc": 0.002, "wgan_gp": 0.002, "rel_diff": 0.004},
    "dr_ll": {"mc": 0.002, "wgan_gp": 0.002, "rel_diff": 0.007},
}

NOTE = ("the published Delta phi and Delta R means (0.002) are not physical values for a lepton pair (expected "
        "~2 rad and ~2.4): kept as published, their ratio to ours is meaningless.")
