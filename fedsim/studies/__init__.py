"""Studies: sweeps of whole experiments with a table and plots at the end."""
