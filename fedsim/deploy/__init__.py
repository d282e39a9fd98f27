"""Deploying fedsim federations to real Flower processes (SuperLink and SuperNodes).

``cluster`` starts and stops the processes, ``tls`` makes throwaway certificates and
``ports`` finds free loopback ports. flwr itself is imported only by the Flower App that
``fedsim flower export`` writes, so the rest of fedsim never needs it.
"""
