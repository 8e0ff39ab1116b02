"""Butter, Plehn & Winterhalder (arXiv:1907.03764), "How to GAN LHC Events": the ttbar -> 6 quark GAN."""
