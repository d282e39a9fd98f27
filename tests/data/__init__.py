"""Tests of ``fedsim.data``."""
