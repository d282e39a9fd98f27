"""Communication compression: one operator per module, error feedback wrappers and a registry.

Every operator maps a flat float vector to what the receiver decodes plus the exact bits sent
(see :mod:`fedsim.compression.base`); each module cites the paper its operator and constants come from.
"""

from fedsim.compression.base import *  # noqa: F401,F403
from fedsim.compression.base import __all__ as _base_all
from fedsim.compression.composition import SparsifyQuantize
from fedsim.compression.dropout import RandomDropout
from fedsim.compression.ef21 import EF21
from fedsim.compression.error_feedback import ErrorFeedback
from fedsim.compression.identity import Identity
from fedsim.compression.powersgd import PowerSGD
from fedsim.compression.qsgd import QSGD, qsgd_bits, qsgd_variance
from fedsim.compression.randomk import RandomK
from fedsim.compression.registry import (
    FEEDBACK,
    build_compressor,
    compressor_names,
    compressor_parameters,
    register_compressor,
)
from fedsim.compression.sign import ScaledSign
from fedsim.compression.topk import TopK

__all__ = [
    *_base_all,
    "EF21",
    "FEEDBACK",
    "QSGD",
    "ErrorFeedback",
    "Identity",
    "PowerSGD",
    "RandomDropout",
    "RandomK",
    "ScaledSign",
    "SparsifyQuantize",
    "TopK",
    "build_compressor",
    "compressor_names",
    "compressor_parameters",
    "qsgd_bits",
    "qsgd_variance",
    "register_compressor",
]
