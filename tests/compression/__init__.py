"""Tests of ``fedsim.compression``."""
