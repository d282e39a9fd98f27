"""Studies: work over whole experiments and their run folders (the topology sweep, the privacy audit of a run)."""
