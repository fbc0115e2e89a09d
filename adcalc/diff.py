"""`adcalc diff`: derivative formulas from the symbolic engine, printed the way Theano's
`pp` shows a gradient after optimisation (SymPy's canonical form):

    $ adcalc diff "log(x1)+x1*x2-sin(x2)"
    d/dx1 = x2 + 1/x1
    d/dx2 = x1 - cos(x2)

One line per partial derivative (`df[0]/dx1` for an array-valued expression;
with --hessian `d2/dx1^2`, `d2/dx1 dx2`, ... over the upper triangle).  --at gives array variables their
shapes and appends each formula's value at the point; without it every variable is
a scalar.  --simplify runs SymPy's simplify, --cse pulls common subexpressions out
(named t0, t1, ... unless those are inputs), --latex prints LaTeX, --json one JSON
object.  The formulas come from the graph through the primitive table, never from
the user's text.
"""
import sys

import numpy as np

from adcalc.errors import InputError
from adcalc.render import dumps, fmt, to_json_value


def run_diff(exprs, wrt=None, at=None, vars_=None, hessian=False, simplify=False, cse=False,
             latex=False, as_json=False, stream=None):
    from adcalc.engines.symbolic import compile_exprs, graph_to_sympy, partials, sympy_module

    from adcalc.commands import read_expressions
    stream = stream or sys.stdout
    s = sympy_module()
    prob = _problem(read_expressions(exprs), at, vars_)
    symbols, outs = graph_to_sympy(prob)
    if not symbols:
        raise InputError("the expression has no variables to differentiate with respect to")
    sel = _select(prob, wrt)
    index = {symbols[j]: j for j in sel}
    inputs = prob.inputs
    multi = prob.m != 1
    outputs = _output_names(prob)

    # ---- the formulas: [(key, expr)], key = (out, in) or (in_i, in_j) ----------------
    entries = []
    if hessian:
        if multi:
            raise InputError(f"--hessian needs a scalar expression, but this one has {prob.m} "
                             f"outputs (shape {list(prob.out_shape)})")
        grad = partials(outs[0], index)
        for i in sel:
            row = partials(grad[i], index, lowest=i) if i in grad else {}
            for j in sel:
                if j >= i:
                    entries.append(((inputs[i], inputs[j]), row.get(j, s.S.Zero)))
    else:
        for k, e in enumerate(outs):
            d = partials(e, index)
            entries += [((outputs[k], inputs[j]), d.get(j, s.S.Zero)) for j in sel]
    if simplify:
        entries = [(key, s.simplify(e) if e != 0 else e) for key, e in entries]
    exprs_ = [e for _, e in entries]

    str_p, tex_p = _printers(s, prob, symbols)
    texts = [str_p.doprint(e) for e in exprs_]
    values = None
    warnings = []
    if at is not None:
        x = prob.x0()
        prob.evaluate(x)  # a point outside the domain: the usual domain error
        values = compile_exprs(symbols, exprs_)(x)
    reduced = subexprs = None
    if cse:
        taken = set(prob.inputs) | set(prob.variables)
        names = (s.Symbol(f"t{i}", real=True) for i in _count() if f"t{i}" not in taken)
        subexprs, reduced = s.cse(exprs_, symbols=names)

    if as_json:
        obj = {
            "command": "diff", "expression": prob.expression, "engine": "symbolic",
            "variables": prob.variables, "shapes": {v: list(sh) for v, sh in prob.shapes.items()},
            "inputs": inputs, "wrt": [inputs[j] for j in sel],
            "point": None if at is None else {v: prob.point[v].tolist() for v in prob.variables},
            "value": None, "warnings": warnings,
            "order": 2 if hessian else 1,
            "function": _one_or_list([str_p.doprint(e) for e in outs], multi),
        }
        if multi:
            obj["outputs"] = outputs
        if at is not None:
            obj["value"] = to_json_value(prob.value(prob.x0()), "value", warnings)
        obj["derivatives"] = _nest(entries, texts, hessian, multi)
        if latex:
            obj["latex"] = _nest(entries, [tex_p.doprint(e) for e in exprs_], hessian, multi)
        if cse:
            obj["cse"] = {"subexpressions": [[str_p.doprint(n), str_p.doprint(e)] for n, e in subexprs],
                          "derivatives": _nest(entries, [str_p.doprint(e) for e in reduced], hessian, multi)}
        if values is not None:
            flat = to_json_value(values, "derivative values", warnings)
            if not all(np.isfinite(values)):
                names = [_label(key, hessian, multi) for (key, _), v in zip(entries, values) if not np.isfinite(v)]
                warnings[-1] = (f"not finite at the point (written as null): {', '.join(names[:5])}"
                                + (" and more" if len(names) > 5 else ""))
            obj["values"] = _nest(entries, flat, hessian, multi)
        stream.write(dumps(obj) + "\n")
        return

    lines = []
    p = tex_p if latex else str_p
    by_name = dict(zip(prob.inputs, symbols))
    if cse:
        lines += [f"{p.doprint(n)} = {p.doprint(e)}" for n, e in subexprs]
        shown = [p.doprint(e) for e in reduced]
    else:
        shown = [tex_p.doprint(e) for e in exprs_] if latex else texts
    for k, ((key, _), text) in enumerate(zip(entries, shown)):
        lhs = _latex_label(key, hessian, multi, tex_p, by_name) if latex else _label(key, hessian, multi)
        line = f"{lhs} = {text}"
        if values is not None:
            line += f" = {fmt(values[k])}"
        lines.append(line)
    stream.write("\n".join(lines) + "\n")


def _count():
    i = 0
    while True:
        yield i
        i += 1


def _problem(exprs, at, vars_):
    from adcalc.parse import parse
    from adcalc.points import order_variables
    from adcalc.problem import Problem

    if at is not None:
        return Problem(list(exprs), at=at, vars=vars_)
    names = []
    for t in exprs:
        names += [n for n in parse(t).names if n not in names]
    variables = order_variables(names, vars_)
    try:
        return Problem(list(exprs), vars=vars_, point={v: 0.0 for v in variables})
    except InputError as e:
        raise InputError(f"{e} (without --at every variable is a scalar; give --at to set the "
                         f"shapes of array variables)") from None


def _select(prob, wrt):
    """Positions of the inputs to differentiate by: all, or those --wrt names
    (a variable stands for all its components)."""
    if not wrt:
        return list(range(prob.n))
    from adcalc.points import split_top

    starts, pos = {}, 0
    for v, size in zip(prob.variables, prob.sizes):
        starts[v] = (pos, size)
        pos += size
    chosen = set()
    for item in split_top(wrt):
        name = item.replace(" ", "")
        if not name:
            raise InputError(f"--wrt: empty name in {wrt!r}")
        if name in starts:
            start, size = starts[name]
            chosen.update(range(start, start + size))
        elif name in prob.inputs:
            chosen.add(prob.inputs.index(name))
        else:
            shown = ", ".join(prob.inputs[:8]) + (", ..." if prob.n > 8 else "")
            raise InputError(f"--wrt: {name!r} is not a variable or input of the expression "
                             f"(inputs: {shown or 'none'})")
    return sorted(chosen)


def _output_names(prob):
    from adcalc.points import component_names
    return component_names("f", prob.out_shape)


def _one_or_list(items, multi):
    return items if multi else items[0]


def _nest(entries, values, hessian, multi):
    """{in: v} (gradient), {out: {in: v}} (array-valued), {in_i: {in_j: v}} (Hessian, both
    triangles)."""
    if not hessian and not multi:
        return {key[1]: v for (key, _), v in zip(entries, values)}
    out = {}
    for (key, _), v in zip(entries, values):
        out.setdefault(key[0], {})[key[1]] = v
    if hessian:
        for (key, _), v in zip(entries, values):
            out.setdefault(key[1], {})[key[0]] = v
        order = list(dict.fromkeys(k[0] for k, _ in entries))
        out = {a: {b: out[a][b] for b in order} for a in order}
    return out


def _label(key, hessian, multi):
    a, b = key
    if hessian:
        return f"d2/d{a}^2" if a == b else f"d2/d{a} d{b}"
    return f"d{a}/d{b}" if multi else f"d/d{b}"


def _latex_label(key, hessian, multi, tex_p, by_name):
    a, b = key
    if len(by_name) == 1 and not multi:   # one variable: an ordinary derivative
        t = tex_p.doprint(by_name[b])
        return f"\\frac{{d^{{2}} f}}{{d {t}^{{2}}}}" if hessian else f"\\frac{{d f}}{{d {t}}}"
    if hessian:
        ta, tb = tex_p.doprint(by_name[a]), tex_p.doprint(by_name[b])
        den = f"\\partial {{{ta}}}^{{2}}" if a == b else f"\\partial {ta} \\partial {tb}"
        return f"\\frac{{\\partial^{{2}} f}}{{{den}}}"
    num = "f" if not multi else "f_{" + a[2:-1] + "}"
    return f"\\frac{{\\partial {num}}}{{\\partial {tex_p.doprint(by_name[b])}}}"


def _printers(s, prob, symbols):
    """Plain-text and LaTeX printers: floats shown as Python's repr (shortest round
    trip), array components as W[0,1] and W_{0,1}."""
    from sympy.printing.latex import LatexPrinter
    from sympy.printing.str import StrPrinter

    def float_text(e):
        return repr(float(e))

    class Str(StrPrinter):
        def _print_Float(self, e):
            return float_text(e)

        def _print_Exp1(self, e):
            return "e"

    class Latex(LatexPrinter):
        def _print_Float(self, e):
            t = float_text(e)
            if "e" in t:
                mant, ex = t.split("e")
                return f"{mant} \\cdot 10^{{{int(ex)}}}"
            return t

    names, pos = {}, 0
    for v, size in zip(prob.variables, prob.sizes):
        if prob.shapes[v]:
            base = s.latex(s.Symbol(v))
            base = base if base.isalnum() else f"{{{base}}}"
            for c, sym in zip(prob.inputs[pos:pos + size], symbols[pos:pos + size]):
                names[sym] = f"{base}_{{{c[len(v) + 1:-1]}}}"
        pos += size
    return Str(), Latex({"symbol_names": names})
