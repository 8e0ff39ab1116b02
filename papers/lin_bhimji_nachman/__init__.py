"""Lin, Bhimji & Nachman (2019), "Machine Learning Templates for QCD Factorization": histogram templates vs
conditional GANs for the large-R jet mass. Run ``python papers/lin_bhimji_nachman/templates.py --help``."""
