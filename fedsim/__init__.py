"""fedsim: a federated and decentralized learning simulator."""

__version__ = "0.1.0"
