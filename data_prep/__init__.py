"""Sample generation for the gan4hep papers: Pythia 8 + FastJet + a simple detector response -> ROOT."""
