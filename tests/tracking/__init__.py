"""Tests of ``fedsim.tracking``."""
