"""Variable order, `--at`/`--vector` parsing and flat component names."""
import operator
import re

import numpy as np

from adcalc.errors import AdcalcError, InputError

_NAME_EQ = re.compile(r"\s*([A-Za-z_][A-Za-z_0-9]*(?:\[[-0-9, ]*\])?)\s*=(.*)", re.S)


def listed(names, most=12, none="no variables"):
    """Names for a message, shortened when there are many: 'x1, x2, ..., x16001'."""
    names = list(names)
    if not names:
        return none
    if len(names) <= most:
        return ", ".join(names)
    return f"{', '.join(names[:most - 2])}, ..., {names[-1]}"


_DIGIT_RUNS = re.compile(r"(\d+)")


def natural_key(name):
    """x2 before x10: the name's runs of digits compared as numbers."""
    parts = _DIGIT_RUNS.split(name)   # text, digits, text, ...: the digits at odd places
    if len(parts) > 1:
        parts[1::2] = [int(t) for t in parts[1::2]]
    return parts


_PREFIX = re.compile(r"[A-Za-z_]+")


def _in_natural_order(names):
    """Whether the names are one prefix with increasing numbers (x1, x2, ..., x100000 as a
    long expression names them), so in natural order already: found by one pass of a
    regular expression rather than a key per name."""
    first = _PREFIX.match(names[0]) if names else None
    if first is None:
        return False
    numbered = re.compile("^" + first.group() + "([0-9]+)$", re.M)
    digits = numbered.findall("\n".join(names))
    if len(digits) != len(names):
        return False
    numbers = list(map(int, digits))
    return all(map(operator.lt, numbers, numbers[1:]))


def order_variables(names, vars_option=None):
    """Natural order (x2 before x10) unless --vars gives it; --vars may add variables."""
    if not vars_option:
        return list(names) if _in_natural_order(names) else sorted(names, key=natural_key)
    given = [v.strip() for v in vars_option.split(",") if v.strip()]
    bad = [v for v in given if not re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*", v)]
    if bad:
        raise InputError(f"--vars: {bad[0]!r} is not a variable name")
    if len(set(given)) != len(given):
        raise InputError("--vars names a variable twice")
    missing = [n for n in names if n not in given]
    if missing:
        raise InputError(f"--vars does not name the variable {missing[0]!r} used in the expression")
    return given


def split_top(text):
    """Split at commas that are not inside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


_PLAIN = re.compile(r"[-+0-9.eE\[\], \t]+")
_LITERAL = re.compile(r"(?<![A-Za-z_0-9.])(\d+\.?\d*|\.\d+)(?:[eE]([+-]?\d+))?")


def parse_value(text, what, notes=None):
    """A number or nested list: plain numbers are read directly; anything else is written
    in the expression language (so `pi/2` works).  Not-a-number and infinite values are
    errors; a literal that underflows to 0 is noted in `notes` (a list) when given."""
    t = text.strip()
    if not t:
        raise InputError(f"{what}: a value is missing")
    if t.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        raise InputError(f"{what}: {t} is not a finite number; give a finite value")
    value = _plain(t) if _PLAIN.fullmatch(t) else None
    if value is None:
        value = _expression_value(t, what)
    if not np.all(np.isfinite(value)):
        raise InputError(f"{what}: {_short_text(t)} is not a finite number (it overflows a float64)")
    if notes is not None:
        for m in _LITERAL.finditer(t):
            if float(m.group(0)) == 0.0 and m.group(1).strip("0.") != "":
                notes.append(f"{what}: {m.group(0)} underflows to 0 in float64")
    return value


def _plain(t):
    """Numbers and nested lists of numbers, read without building a graph (JSON syntax)."""
    import json
    try:
        out = json.loads(t if not t.startswith("+") else t[1:], parse_constant=_no_constant)
    except ValueError:
        return None
    try:
        arr = np.array(out, dtype=float)
    except (ValueError, TypeError):
        return None
    return arr if arr.dtype == float and arr.dtype != object else None


def _no_constant(name):
    raise ValueError(name)


def _expression_value(t, what):
    from adcalc.graph import Graph
    from adcalc.parse import parse
    try:
        expr = parse(t)
        if expr.names:
            name = expr.names[0]
            raise InputError(f"{what}: {_short_text(t)} is not a number (it names {name!r})")
        node = expr.build(Graph(), {})
    except InputError as e:
        if str(e).startswith(what):
            raise
        raise InputError(f"{what}: cannot read the value {_short_text(t)}: {e}") from None
    except AdcalcError as e:
        raise InputError(f"{what}: cannot read the value {_short_text(t)}: {e}") from None
    return np.array(node.value, dtype=float)


def _short_text(t, limit=60):
    return repr(t if len(t) <= limit else t[:limit - 3] + "...")


def component_names(name, shape):
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, i))}]" for i in np.ndindex(*shape)]


def quantity_labels(inputs, outputs, quantity, sep="/"):
    """Names of a derivative's flat components: inputs, outputs, or row/column pairs."""
    if quantity in ("grad", "hvp", "vjp"):
        return inputs
    if quantity == "jvp":
        return outputs
    rows = outputs if quantity == "jacobian" else inputs
    return [f"{r}{sep}{c}" for r in rows for c in inputs]


def parse_point(text, variables, what="--at", notes=None):
    """Values for `variables`: positionally in order, or by name; returns {name: array}."""
    items = split_top(text)
    if any(not p.strip() for p in items):
        raise InputError(f"{what}: empty value in {text!r}")
    named = [_NAME_EQ.fullmatch(p) for p in items]
    if all(named):
        out = {}
        for m in named:
            name = m.group(1)
            if name not in variables:
                raise InputError(f"{what}: {name!r} is not a variable of the expression "
                                 f"(variables: {', '.join(variables) or 'none'})")
            if name in out:
                raise InputError(f"{what}: {name!r} is given twice")
            out[name] = parse_value(m.group(2), f"{what} {name}", notes)
        missing = [v for v in variables if v not in out]
        if missing:
            raise InputError(f"{what}: no value for {missing[0]!r}")
        return {v: out[v] for v in variables}
    if any(named):
        raise InputError(f"{what}: give every value by name or none")
    if len(items) != len(variables):
        hint = ""
        if len(variables) == 1 and len(items) > 1:
            hint = f"; if {variables[0]} is a vector, give it as an array: {what} '{variables[0]}=[{','.join(i.strip() for i in items[:6])}{',...' if len(items) > 6 else ''}]'"
        raise InputError(f"{what}: expected {len(variables)} value{'s' if len(variables) != 1 else ''} "
                         f"({listed(variables)}) but got {len(items)}{hint}")
    return {v: parse_value(p, f"{what} {v}", notes) for v, p in zip(variables, items)}


def parse_flat(text, names, shape_hint, what="--vector"):
    """A vector over flat components `names`: positional numbers, per-variable arrays
    (`shape_hint` = [(variable, shape)]) or by name (variable or component name)."""
    items = split_top(text)
    n = len(names)
    if all(_NAME_EQ.fullmatch(p) for p in items):
        out = np.full(n, np.nan)
        blocks, pos = {}, 0
        for var, shape in shape_hint:
            size = int(np.prod(shape)) if shape else 1
            blocks[var] = (pos, shape, size)
            pos += size
        for p in items:
            m = _NAME_EQ.fullmatch(p)
            key = m.group(1).replace(" ", "")
            val = parse_value(m.group(2), f"{what} {key}")
            if key in blocks:
                start, shape, size = blocks[key]
                if val.shape != tuple(shape) and val.size != size:
                    raise InputError(f"{what}: {key} needs shape {list(shape)}, not {list(val.shape)}")
                out[start:start + size] = np.broadcast_to(val, shape).ravel() if val.size == 1 else val.ravel()
            elif key in names:
                if val.shape:
                    raise InputError(f"{what}: {key} is one component; give one number")
                out[names.index(key)] = val
            else:
                raise InputError(f"{what}: {key!r} is not an input (inputs: {', '.join(names[:8])}"
                                 f"{', ...' if n > 8 else ''})")
        if np.isnan(out).any():
            raise InputError(f"{what}: no value for {names[int(np.flatnonzero(np.isnan(out))[0])]!r}")
        return out
    vals = [parse_value(p, what) for p in items]
    if shape_hint and len(vals) == len(shape_hint) and all(
            v.shape == tuple(s) for v, (_, s) in zip(vals, shape_hint)):
        return np.concatenate([v.ravel() for v in vals]) if vals else np.zeros(0)
    flat = np.concatenate([v.ravel() for v in vals])
    if flat.size != n:
        raise InputError(f"{what}: expected {n} number{'s' if n != 1 else ''} but got {flat.size}")
    return flat
