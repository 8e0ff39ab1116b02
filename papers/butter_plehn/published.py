"""Published numbers and statements of the Butter & Plehn review, for comparison only: never an output.

Source: ``../shared/seeds/butter_plehn_2020_generative_networks_review.txt``; section and figure per entry.
"""

#: R Sec. 2, Fig. 1 (20 quantiles, 100 training points): "the fit is worth around 500 events instead of the
#: 100-event sample"; "these 10,000 GANned events are worth almost 300 sampled events"; generating more than
#: 10,000 events "does not change the quantile error".
CAMEL = {"n_train": 100, "n_quantiles": 20, "fit_equivalent_events": 500, "gan_equivalent_events": 300,
         "fit_amplification": 5.0, "gan_amplification": 3.0, "gan_saturates_at_events": 10_000}

#: R Sec. 3.2, Fig. 3: "the error envelope of the binned subtraction are given by the statistical uncertainty of
#: the two original samples, the smaller variation of the GANned prediction benefits from the combined
#: subtraction and interpolation". No number is given; the claim is spread(GAN) / envelope < 1.
SUBTRACTION = {"claim": "GAN spread smaller than the binned envelope", "spread_ratio_below": 1.0}

#: R Sec. 4.1, Eq. (19) and Figs. 7-8: lambda_m = lambda_sigma = 1e-4; sigma_Z = 7.7 GeV "given by the detector
#: simulation" (their Delphes card, not ours); without the two Z terms the detector-level Z width comes out "by
#: almost a factor of two" too wide; N_jets (pT > 15 GeV) "reproduced reasonably well at least up to three jets".
ZLL = {"lambda_m": 1e-4, "lambda_sigma": 1e-4, "sigma_z_delphes_gev": 7.7, "width_ratio_without_terms": 2.0,
       "jet_pt_min_gev": 15.0, "n_jets_reproduced_up_to": 3}
