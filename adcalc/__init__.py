"""adcalc: a derivative calculator and verifier over one expression graph.

The command line is `adcalc` (see `adcalc --help`); importing this package loads
nothing heavy.
"""
__version__ = "0.1.0"
