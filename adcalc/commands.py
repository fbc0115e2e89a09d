"""What the CLI commands do, kept apart from click: Problem -> engine(s) -> output."""
import sys

import numpy as np

from adcalc.engines import ENGINES, availability, get_engine
from adcalc.engines.base import compute
from adcalc.errors import AdcalcError, EngineUnavailable, InputError
from adcalc.points import component_names, parse_flat
from adcalc.problem import Problem
from adcalc.render import dumps, fmt, table, to_json_value

REFERENCE_ORDER = ("symbolic", "forward", "reverse", "gpu", "numeric")
KEYS = {"grad": "gradient"}  # JSON key per command (the contract's names)


def output_names(prob):
    return component_names("f", prob.out_shape)


def read_vector(command, prob, text):
    if text is None:
        what = "u (one number per output)" if command == "vjp" else "v (one number per input)"
        raise InputError(f"{command} needs --vector: {what}")
    if command == "vjp":
        return parse_flat(text, output_names(prob), [("f", prob.out_shape)])
    return parse_flat(text, prob.inputs, [(v, prob.shapes[v]) for v in prob.variables])


def engine_options(name, method):
    if method and name != "numeric":
        return {}
    return {"method": method} if method else {}


def run_engines_on(command, prob, names, vector, method, strict):
    """{name: Result | ('unavailable', reason) | ('error', message)} for each engine."""
    out = {}
    x = prob.x0()
    for name in names:
        try:
            engine = get_engine(name, **engine_options(name, method))
            out[name] = compute(engine, prob, command, x, vector)
        except EngineUnavailable as e:
            if strict:
                raise
            out[name] = ("unavailable", str(e).split(": ", 1)[-1])
        except AdcalcError as e:
            if strict or e.kind in ("domain", "input"):
                raise
            out[name] = ("error", str(e))
    return out


def run_derivative(command, exprs, at, vars_, engine, as_json, digits, vector_text, method):
    prob = Problem(list(exprs), at=at, vars=vars_)
    vector = read_vector(command, prob, vector_text) if command in ("hvp", "jvp", "vjp") else None
    if method and engine not in ("numeric", "all"):
        raise InputError("--method applies to the numeric engine (use --engine numeric)")
    names = list(ENGINES) if engine == "all" else [engine]
    if engine != "all" and engine not in ENGINES:
        get_engine(engine)  # raises the 'unknown engine' error
    results = run_engines_on(command, prob, names, vector, method, strict=engine != "all")
    value = prob.value(prob.x0())
    warnings = []
    obj = {
        "command": command, "expression": prob.expression, "engine": engine,
        "variables": prob.variables, "shapes": {v: list(s) for v, s in prob.shapes.items()},
        "inputs": prob.inputs, "point": {v: prob.point[v].tolist() for v in prob.variables},
        "value": to_json_value(value, "value", warnings), "warnings": warnings,
    }
    if command in ("jacobian", "jvp", "vjp"):
        obj["outputs"] = output_names(prob)
    if vector is not None:
        obj["vector"] = vector.tolist()
    shape = result_shape(command, prob)
    ok = {n: r for n, r in results.items() if not isinstance(r, tuple)}
    if engine == "all":
        ref = next((n for n in REFERENCE_ORDER if n in ok), None)
        if ref is None:
            raise EngineUnavailable("no engine could compute this here")
        obj["reference"] = ref
        obj[KEYS.get(command, command)] = to_json_value(ok[ref].value.reshape(shape), command, warnings)
        engines_obj = {}
        for n, r in results.items():
            if isinstance(r, tuple):
                engines_obj[n] = {"status": r[0], "reason": r[1]}
            else:
                engines_obj[n] = {"status": "ok", KEYS.get(command, command): to_json_value(r.value.reshape(shape), f"{n} {command}", warnings)}
                if r.error is not None:
                    engines_obj[n]["error_estimate"] = to_json_value(r.error.reshape(shape), f"{n} error estimate", warnings)
        obj["engines"] = engines_obj
        if len(ok) > 1:
            stack = np.stack([r.value.reshape(shape) for r in ok.values()])
            obj["spread"] = to_json_value(stack.max(0) - stack.min(0), "spread", warnings)
    else:
        r = ok[engine]
        obj[KEYS.get(command, command)] = to_json_value(r.value.reshape(shape), KEYS.get(command, command), warnings)
        if r.error is not None:
            obj["error_estimate"] = to_json_value(r.error.reshape(shape), "error estimate", warnings)
        obj.update(r.info)
    if as_json:
        sys.stdout.write(dumps(obj) + "\n")
        return
    show_human(command, prob, obj, results, digits)


def result_shape(command, prob):
    n, m = prob.n, prob.m
    return {"grad": (n,), "jacobian": (m, n), "hessian": (n, n), "hvp": (n,), "jvp": (m,), "vjp": (n,)}[command]


def show_human(command, prob, obj, results, digits):
    title = (f"{command} of {_expr_text(prob)} at {prob.describe(prob.x0())}"
             f"  [engine: {obj['engine']}]")
    value = np.asarray(prob.value(prob.x0()))
    vtext = fmt(value, digits) if value.ndim == 0 else np.array2string(
        value, separator=", ", threshold=20, formatter={"float_kind": lambda v: fmt(v, digits)})
    footer = "\n".join([f"value: {vtext}"] + [f"warning: {w}" for w in obj["warnings"]])
    rows_in, rows_out = prob.inputs, output_names(prob)
    if obj["engine"] == "all":
        ok = {n: r for n, r in results.items() if not isinstance(r, tuple)}
        bad = {n: r for n, r in results.items() if isinstance(r, tuple)}
        shape = result_shape(command, prob)
        labels = _labels(command, rows_in, rows_out)
        vals = {n: r.value.reshape(shape).ravel() for n, r in ok.items()}
        headers = ["component"] + list(ok) + (["spread"] if len(ok) > 1 else [])
        rows = []
        for i, lab in enumerate(labels):
            row = [lab] + [vals[n][i] for n in ok]
            if len(ok) > 1:
                col = [vals[n][i] for n in ok]
                row.append(max(col) - min(col))
            rows.append(row)
        footer += "".join(f"\n{n}: {kind}: {why}" for n, (kind, why) in bad.items())
        table(title, headers, rows, digits, footer)
        return
    r = next(r for r in results.values() if not isinstance(r, tuple))
    res = r.value
    err = r.error
    if command in ("grad", "hvp", "vjp", "jvp"):
        labels = rows_out if command == "jvp" else rows_in
        headers = ["output" if command == "jvp" else "input", KEYS.get(command, command)] + (["error estimate"] if err is not None else [])
        rows = [[lab, res[i]] + ([err[i]] if err is not None else []) for i, lab in enumerate(labels)]
    else:
        labels = rows_out if command == "jacobian" else rows_in
        res = res.reshape(len(labels), prob.n)
        headers = [("output \\ input" if command == "jacobian" else "")] + rows_in
        rows = [[lab] + list(res[i]) for i, lab in enumerate(labels)]
        if err is not None:
            footer += f"\nlargest error estimate: {fmt(np.max(err), 3)}"
    table(title, headers, rows, digits, footer)


def _labels(command, rows_in, rows_out):
    if command in ("grad", "hvp", "vjp"):
        return rows_in
    if command == "jvp":
        return rows_out
    rows = rows_out if command == "jacobian" else rows_in
    return [f"{r} / {c}" for r in rows for c in rows_in]


def _expr_text(prob):
    t = prob.expression if isinstance(prob.expression, str) else ", ".join(prob.expression)
    return t if len(t) <= 60 else t[:57] + "..."


def run_engines(as_json):
    rows = availability()
    if as_json:
        sys.stdout.write(dumps({"engines": {n: {"available": r is None, "reason": r} for n, r in rows}}) + "\n")
        return
    table("engines", ["engine", "status", "reason"],
          [[n, "available" if r is None else "unavailable", r or ""] for n, r in rows])
