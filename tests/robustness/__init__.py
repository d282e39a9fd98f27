"""Tests of ``fedsim.robustness``."""
