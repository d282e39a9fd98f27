"""Differential privacy for fedsim: smoothing, clipping, the Gaussian mechanism, accounting, audits.

Pure math (:mod:`smoothing`, :mod:`clipping`, :mod:`mechanism`, :mod:`analysis`,
:mod:`calibration`) is kept apart from stateful bookkeeping (:mod:`accountant`), as in Opacus.
"""

from fedsim.privacy.accountant import PrivacyAccountant, sampling_note
from fedsim.privacy.analysis import (
    ACCOUNTANTS,
    compute_epsilon,
    epsilon_from_history,
    slide_theorem_dpfedls,
    slide_theorem_dpsgd,
)
from fedsim.privacy.calibration import calibrate_noise_multiplier
from fedsim.privacy.clipping import clip_l2
from fedsim.privacy.mechanism import add_gaussian_noise, gaussian_noise
from fedsim.privacy.smoothing import laplacian_smooth, ls_beta, ls_gamma, smooth_flat

__all__ = [
    "ACCOUNTANTS",
    "PrivacyAccountant",
    "add_gaussian_noise",
    "calibrate_noise_multiplier",
    "clip_l2",
    "compute_epsilon",
    "epsilon_from_history",
    "gaussian_noise",
    "laplacian_smooth",
    "ls_beta",
    "ls_gamma",
    "sampling_note",
    "slide_theorem_dpfedls",
    "slide_theorem_dpsgd",
    "smooth_flat",
]
