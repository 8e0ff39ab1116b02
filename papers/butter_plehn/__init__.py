"""Butter & Plehn, "Generative Networks for LHC events" (2020 review): the review's own figures on our data.

One script per figure (``camel.py``: Fig. 1, ``subtraction.py``: Fig. 3, ``zll.py``: Figs. 7-8, ``kernels.py``:
Fig. 15); see README.md.
"""
