"""Tests of ``fedsim.privacy``."""
