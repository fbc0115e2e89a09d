"""The JSON envelope of every command, built in one place (cli-contract.md, "Output").

Keys always present: command, expression, engine, variables, shapes, inputs, point,
value, warnings.  Non-finite numbers anywhere become null and are named in warnings.
"""
import math
import sys

import numpy as np

from adcalc.points import component_names
from adcalc.render import dumps, to_json_value


def output_names(prob):
    return component_names("f", prob.out_shape)


def envelope(command, prob, engine, warnings, x=None, value=True):
    """The contract's keys for `prob` at its point (or at x); `warnings` is the list that
    later additions append to.  `value`: True computes f there, False leaves it null, an
    array is f's value already computed."""
    obj = {"command": command, "expression": prob.expression, "engine": engine,
           "variables": prob.variables, "shapes": {v: list(s) for v, s in prob.shapes.items()},
           "inputs": prob.inputs,
           "point": {v: a.tolist() for v, a in (prob.split(x) if x is not None else prob.point).items()},
           "value": None, "warnings": warnings}
    warnings.extend(getattr(prob, "warnings", ()))
    if prob.wrt != prob.variables:
        obj["wrt"] = prob.wrt
    if value is not False:
        f = prob.value(prob.x0() if x is None else x) if value is True else np.asarray(value, dtype=float)
        obj["value"] = to_json_value(f, "value", warnings, output_names(prob))
    return obj


def finite(obj, warnings, path=""):
    """A copy of obj with every non-finite float replaced by None, each named in warnings."""
    if isinstance(obj, (float, np.floating)):
        if not math.isfinite(obj):
            warnings.append(f"{path or 'a number'}: {'not a number' if math.isnan(obj) else 'infinite'}")
            return None
        return float(obj)
    if isinstance(obj, dict):
        return {k: finite(v, warnings, f"{path}.{k}" if path else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v, warnings, f"{path}[{i}]") for i, v in enumerate(obj)]
    return obj


def emit(obj, stream=None):
    """Exactly one strict JSON object and a newline."""
    (stream or sys.stdout).write(dumps(obj) + "\n")
