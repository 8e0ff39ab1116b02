"""What Lin, Bhimji & Nachman (2019, arXiv:1903.02556) published, with where it is stated. Compared against, never
used as an output. The paper gives its results as figures; the only numbers in the text are listed here."""

SAMPLE = {
    "control_jets": (1.1e6, "section 3.3: 'there were 1.1 million jets in the control region'"),
    "validation_jets": (30e3, "section 3.3: '... and 30k in the validation region'"),
}

FIG6 = {
    "ntrk_cut": (26, "section 3.3: 'For a 50% quark jet efficiency requirement on all four jets (N_track < 26)'"),
    "per_jet_efficiency": (0.50, "Fig. 6 caption: 'the efficiency is about 50% per jet'"),
    "event_efficiency": (0.06, "Fig. 6 caption: '(about 6% overall)'"),
    "gan_high_summj_error": (0.20, "section 3.3: 'the uncertainty for the GAN approach is about 20% in the high "
                                   "Sum m_j tail'"),
    "template_high_summj_error_above": (1.00, "section 3.3: 'while it is well over 100% for the template approach'"),
}

# Qualitative statements (Fig. 4, Fig. 5, Fig. 6), checked against our numbers by templates.py.
STATEMENTS = {
    "gan_below_template": "Fig. 4 / section 3.3: all GAN approaches converge to a separation power smaller than the "
                          "template method",
    "skew_faster": "section 3.3: for both the vanilla GAN and the WGAN, skew-normal noise accelerates the training",
    "vanilla_faster_than_wgan": "section 3.3: the vanilla GAN converges faster than the WGAN",
    "similar_final": "section 3.3: all GAN approaches have a similar final separation power",
    "ntrk_dependence": "Fig. 5: the GAN follows the mass shift with N_track (lower for low N, higher for high N); the "
                       "template can be more than a factor of 2 off for low and high N",
    "fig6_gan_better": "Fig. 6: the GAN outperforms the template in the low and high Sum m_J limits; more so with "
                       "the N_track cut",
}
