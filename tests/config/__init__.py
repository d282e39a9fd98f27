"""Tests of ``fedsim.config``."""
