"""fedsim test suite; the folders mirror the package (tests/algorithms/ tests fedsim/algorithms/, ...)."""
