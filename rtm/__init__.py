"""The Runtime Standard Model: spec kinds, validation and the pure control algorithms.

Nothing in this package touches the network, threads, SDKs or textual; time is passed in.
"""

__version__ = "0.1.0"
