"""Generative models: the contract every family meets (``base``) and the adversarial family (``gan``).

Normalising flows live in ``gan4hep.flows`` and meet the same contract.
"""

from .base import GenerativeModel, load_sampler, steps_per_epoch
from .gan import GAN, GeneratorSampler

__all__ = ["GenerativeModel", "GAN", "GeneratorSampler", "load_sampler", "steps_per_epoch"]
