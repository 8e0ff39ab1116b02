"""Published numbers of Vaselli (2022), FlashSim, for comparison only: never an output.

[A] thesis extended abstract (../shared/seeds/vaselli_2022_flashsim_thesis_abstract.txt); [FS] the public code and
its docs (github francesco-vaselli/FlashSim, as summarised in ../shared/notes/vaselli-facts.md). FlashSim learned
CMS NanoAOD jets (RunIIAutumn18 ttbar); our targets are our own reconstruction's, so only the orders of magnitude
and the qualitative statements carry over.
"""

ABSTRACT = {
    "flow_steps": 15,  # [A] "a neural spline normalizing flow composed of 15 transformations layers"
    "targets": 15,  # [A] "15 key variables for Jets"
    "training_events": 5_000_000,  # [A] "a NANOAOD sample of 5e6 events"
}

PUBLIC_CODE = {
    "targets": 17, "conditioning": 14, "flow_steps": 17,  # [FS] create_NDE_model(17, 14, 17, param_dict)
    "parameters": 47_986_595,  # derived from the nflows layer shapes; [FS docs] "50+ millions of parameters"
    "epochs_planned": 600, "lr": 1e-5, "batch_size": 2048,
    "epochs_reached": 420,  # [FS docs/img/lossesjets.png] stopped at ~420 epochs for the thesis deadline
    "train_nll_at_stop": -42.0, "validation_nll_at_stop": -34.0,  # read off the loss plot (their 17 targets)
    "gpu_days": 5,  # [FS docs/trainings.md] "about 5 days" on one V100
}

RESULTS = {
    "test_jets": 100_000,  # [FS docs/results.md] 1e5 unseen ttbar jets, one FlashSim jet per generator jet
    "tagger_wasserstein": 1e-3,  # [FS] tagging scores: W1 "of the order of 0.001"
    "bregcorr_wasserstein": 0.02,  # [FS] bRegCorr W1 ~ 0.02
    "sampling_jets_per_s_gpu": 33_000,  # [FS] batches of 1e4 in ~0.3 s on their GPU
    "speedup_vs_fullsim_orders": 6,  # [FS] "six orders of magnitude" faster than FullSim
    "speedup_vs_fastsim_orders": 4,  # [FS] "four" than FastSim
    "oversampling_factor": 25,  # [FS] VBF benchmark: x25 oversampling
    "oversampling_mean_stat_error": (32.3, 14.2),  # [FS] mean statistical error of the VBF-DNN output, x1 -> x25
}

SUMMARY = ("FlashSim (CMS NanoAOD jets; not our targets): tagger W1 ~1e-3, bRegCorr W1 ~0.02; ~3.3e4 jets/s on a "
           "GPU, 'six orders of magnitude' faster than FullSim; x25 oversampling cut the mean statistical error "
           "of the VBF-DNN output from 32.3 to 14.2.")
