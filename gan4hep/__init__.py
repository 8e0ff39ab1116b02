"""gan4hep: generative networks for LHC physics (Keras 3 on TensorFlow)."""

__version__ = "0.1.0"
