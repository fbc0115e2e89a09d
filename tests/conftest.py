"""Shared pytest setup: hypothesis profiles and the `slow`/`gpu` markers.

HYPOTHESIS_PROFILE=dev runs many more examples; the default `ci` profile is
deterministic (derandomized) and small enough for the whole suite to stay fast.
"""
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=40, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile(
    "dev", max_examples=400, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    # pyproject.toml declares them too; repeated here so the tests run from any rootdir.
    config.addinivalue_line("markers", "slow: long-running tests (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "gpu: needs an NVIDIA GPU and pycuda")


def _gpu_reason():
    """Why the gpu tests cannot run here (None: they can): the engine's own check, which
    accepts pycuda or CuPy and asks for a device."""
    try:
        from adcalc.engines.gpu import GpuEngine
        return GpuEngine().available()
    except Exception as e:  # a broken CUDA install
        return f"the gpu engine cannot load ({type(e).__name__}: {e})"


def pytest_collection_modifyitems(config, items):
    gpu_items = [it for it in items if "gpu" in it.keywords]
    if not gpu_items:
        return
    reason = _gpu_reason()
    if reason:
        skip = pytest.mark.skip(reason=reason)
        for it in gpu_items:
            it.add_marker(skip)

