"""Tests of ``fedsim.cli``."""
