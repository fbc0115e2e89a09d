"""Engines by name, imported lazily so that a one-shot command loads only its own."""
import importlib

from adcalc.errors import EngineUnavailable, InputError

ENGINES = {
    "reverse": "adcalc.engines.reverse:ReverseEngine",
    "forward": "adcalc.engines.forward:ForwardEngine",
    "symbolic": "adcalc.engines.symbolic:SymbolicEngine",
    "numeric": "adcalc.engines.numeric:NumericEngine",
    "compiled": "adcalc.engines.compiled:CompiledEngine",
    "gpu": "adcalc.engines.gpu:GpuEngine",
}


def engine_class(name):
    if name not in ENGINES:
        raise InputError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)} or all")
    module, cls = ENGINES[name].split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("adcalc"):
            return _missing(name, "not built yet in this version of adcalc")
        return _missing(name, f"needs the Python package {e.name!r}, which is not installed")
    return getattr(mod, cls)


def _missing(name, reason):
    from adcalc.engines.base import Engine

    class Missing(Engine):
        def available(self):
            return reason
    Missing.name = name
    return Missing


def get_engine(name, **options):
    """An engine instance; raises EngineUnavailable with the reason if it cannot run here."""
    engine = engine_class(name)(**options)
    reason = engine.available()
    if reason:
        raise EngineUnavailable(f"the {name} engine cannot run here: {reason}")
    return engine


def availability():
    """[(name, None or reason)] for every engine."""
    out = []
    for name in ENGINES:
        try:
            out.append((name, engine_class(name)().available()))
        except Exception as e:  # an engine that fails to load is reported, not fatal
            out.append((name, f"failed to load: {e}"))
    return out
