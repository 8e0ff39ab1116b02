"""Vaselli (2022), FlashSim: a conditional neural spline flow that learns the reconstruction of jets from their
generator-level jets, on our own FlashSim-style ttbar sample (``data_prep.flashsim_jets``)."""
