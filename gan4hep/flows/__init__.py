"""Normalising flows in Keras 3 (TensorFlow backend): one transform family per module, a small
``Flow(transform, base)`` model meeting the gan4hep model contract, and the conditioner passed in.

- ``base``: the transform contract (``forward``: data -> noise with log |det|; ``inverse``), ``Chain``, ``Inverse``
- ``spline``: rational-quadratic spline with linear tails (Durkan et al. 2019; nflows conventions)
- ``coupling``: coupling with binary masks (``Coupling``, ``alternating_mask``)
- ``autoregressive``: ``MADE`` and ``MaskedAutoregressive``
- ``linear``: ``LULinear`` (identity init), ``Permutation`` / ``RandomPermutation``
- ``affine``: the cINN affine coupling with soft clamp (Butter & Plehn review Eq. (9)), ``cinn_block``
- ``nets``: conditioners ``ResidualNet`` (nflows, batch norm, context gate) and ``MLP``
- ``flow``: ``Flow`` (train with ``fit``; ``log_prob``, ``sample``, checkpoints, ``export``) and ``FlowSampler``
- ``builders``: ``spline_flow``, ``flashsim_flow`` (FlashSim jets, 47,986,595 parameters), ``maf``, ``cinn``
- ``preprocessing``: ``Dequantise``, ``Logit``, ``Clip`` (``gan4hep.preprocessing`` transforms)

Example::

    flow = spline_flow(features=4, context_dim=2, steps=6, bins=16, tail_bound=4.0)
    flow.compile(keras.optimizers.Adam(1e-3))
    flow.fit(tf.data.Dataset.from_tensor_slices((x, c)).shuffle(10_000).batch(512), epochs=20)
    events = flow.sample(1000, context=c_new, seed=1)
"""

from .affine import AffineCoupling, AffineTransformer, cinn_block
from .autoregressive import MADE, MaskedAutoregressive
from .base import Chain, Inverse, Transform
from .builders import FLASHSIM_JETS, cinn, flashsim_flow, maf, spline_flow, spline_transform
from .coupling import Coupling, alternating_mask, coupling_factory
from .flow import Flow, FlowSampler, StandardNormal
from .linear import LULinear, Permutation, RandomPermutation
from .nets import MLP, ResidualBlock, ResidualNet
from .spline import RationalQuadraticSpline, rational_quadratic_spline, unconstrained_rational_quadratic_spline

__all__ = ["Transform", "Chain", "Inverse", "RationalQuadraticSpline", "rational_quadratic_spline",
           "unconstrained_rational_quadratic_spline", "Coupling", "alternating_mask", "coupling_factory", "MADE",
           "MaskedAutoregressive", "LULinear", "Permutation", "RandomPermutation", "AffineTransformer",
           "AffineCoupling", "cinn_block", "ResidualNet", "ResidualBlock", "MLP", "StandardNormal", "Flow",
           "FlowSampler", "spline_transform", "spline_flow", "flashsim_flow", "maf", "cinn", "FLASHSIM_JETS"]
