"""Tests of ``fedsim.studies``."""
