"""dip-repro: a reproduction of Deep Image Prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018)."""

__version__ = "0.1.0"
