"""Tests of ``fedsim.algorithms``."""
