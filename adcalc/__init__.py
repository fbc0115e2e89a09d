"""adcalc: a derivative calculator and verifier over one expression graph.

The command line is `adcalc` (see `adcalc --help`); importing this package loads
nothing heavy.
"""
__version__ = "0.1.0"
__all__ = ["check_grad", "assert_grad", "__version__"]


def __getattr__(name):
    """adcalc.check_grad and adcalc.assert_grad, imported on first use: `import adcalc` stays light."""
    if name in ("check_grad", "assert_grad"):
        from adcalc import check
        return getattr(check, name)
    raise AttributeError(f"module 'adcalc' has no attribute {name!r}")
