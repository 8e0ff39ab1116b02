"""Generative models: the contract every family meets (``base``), the adversarial family (``gan``) and the
variational autoencoder (``vae``).

Normalising flows live in ``gan4hep.flows`` and meet the same contract.
"""

from .base import GenerativeModel, load_sampler, steps_per_epoch
from .gan import GAN, GeneratorSampler
from .vae import VAE, VAESampler

__all__ = ["GenerativeModel", "GAN", "GeneratorSampler", "VAE", "VAESampler", "load_sampler", "steps_per_epoch"]
