"""Showing the work: evaluation traces, Graphviz drawings, N-th derivatives, Newton's method
and plots, as library calls that the `trace`, `graph`, `derivative`, `newton` and `plot`
commands (cli_explain.py) render.

  trace(prob, mode, direction)     the evaluation trace v_{-n+1} .. v_0, v_1 ..: values,
                                   forward tangents along one input, reverse adjoints
  to_dot(prob, title)              the graph (or a derivative graph) as Graphviz DOT
  render_dot(text, path)           .dot as is; .png/.svg through Graphviz's `dot`
  nth_derivative(prob, comps, e)   d^N f / dx_c1 ... dx_cN by one engine
  newton(prob, engine, ...)        trust-region Newton for a minimum (adcalc.newton)
  plot_series(prob, c, xs, ...)    f and its derivatives along one input, batched
"""
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adcalc import derivatives
from adcalc.ad import active, jvp_sweep, vjp_rule
from adcalc.core import PRIMS
from adcalc.errors import EngineUnavailable, InputError
from adcalc.evaluate import needed
from adcalc.graph import _fmt_const
from adcalc.points import listed, parse_value, split_top

ENGINE_NAMES = ("forward", "reverse", "symbolic", "numeric")
MAX_ORDER = 12           # nested sweeps grow with the order; beyond this they take too long
NUMERIC_MAX_ORDER = 2    # differences of differences lose too many digits beyond this
MAX_PLOT_ORDER = 4
GRAPHVIZ_HELP = ("install Graphviz (apt-get install graphviz, brew install graphviz or "
                 "https://graphviz.org/download/), or write DOT with --out FILE.dot")


def scalar_point():
    """A point for Problem(point=...) when none is given: every variable a scalar 0."""
    return defaultdict(float)


def input_index(prob, name, what="--wrt"):
    """The flat index of an input named x1 or x[0]; InputError naming the inputs otherwise."""
    name = name.strip()
    if name in prob.inputs:
        return prob.inputs.index(name)
    if name in prob.variables:
        first = next(c for c in prob.inputs if c.startswith(name + "["))
        raise InputError(f"{what}: {name!r} is an array; name one of its entries, such as {first!r}")
    raise InputError(f"{what}: {name!r} is not an input of the expression "
                     f"(inputs: {', '.join(prob.inputs[:12]) or 'none'}{', ...' if prob.n > 12 else ''})")


# ---- trace --------------------------------------------------------------------------------
@dataclass
class TraceRow:
    """One node: name (v-1, v0, v1, ...), graph id, op, formula in earlier names, shape,
    value, tangent along the direction (None when not asked), adjoint (None when not asked)."""

    name: str
    id: int
    op: str
    formula: str
    shape: tuple
    value: np.ndarray
    tangent: np.ndarray = None
    adjoint: np.ndarray = None


@dataclass
class Trace:
    rows: list
    mode: str
    direction: str = None          # the input the tangents are taken along
    tangent: np.ndarray = None     # the output's tangent: the directional derivative
    gradient: np.ndarray = None    # the inputs' adjoints, flat (n,)
    warnings: list = field(default_factory=list)


def trace(prob, mode="both", direction=None):
    """The evaluation trace of prob's graph at its point.  mode: forward, reverse or both;
    direction: the flat input the forward tangents are taken along (default the first)."""
    if mode not in ("forward", "reverse", "both"):
        raise InputError(f"--mode: unknown mode {mode!r}; use forward, reverse or both")
    g, out = prob.graph, prob.output
    x = prob.x0()
    vals = prob.values(x[None])
    inputs = list(prob.var_nodes)
    ops = [g.nodes[i] for i in needed(g, [out]) if g.nodes[i].op not in ("var", "const")]
    names = trace_names(prob, [n.id for n in ops])
    rows = [TraceRow(names[v.id], v.id, "input", v.p["name"], v.shape, _at(vals[v.id], v)) for v in inputs]
    rows += [TraceRow(names[n.id], n.id, n.op, formula(n, names), n.shape, _at(vals[n.id], n)) for n in ops]
    if out.op == "const":
        rows.append(TraceRow("v1", out.id, "const", _const_text(out), out.shape, np.asarray(out.value)))
    result = Trace(rows, mode)
    if not inputs:
        result.warnings.append("the expression has no variables: there is nothing to differentiate")
        return result
    val = lambda n: vals[n.id]  # noqa: E731
    if mode in ("forward", "both"):
        c = 0 if direction is None else input_index(prob, direction)
        result.direction = prob.inputs[c]
        tans = _forward(prob, inputs, [n for n in g.nodes if n.id in names], c, val)
        for r in rows:
            r.tangent = tans.get(r.id, np.zeros(r.shape))
        result.tangent = tans.get(out.id, np.zeros(out.shape))
    if mode in ("reverse", "both"):
        if prob.m != 1:
            if mode == "reverse":
                raise InputError(f"the reverse trace needs a scalar expression, but this one has {prob.m} "
                                 f"outputs; use --mode forward")
            result.warnings.append(f"adjoints need a scalar expression; this one has {prob.m} outputs, "
                                   f"so only the forward trace is shown")
            result.mode = "forward"
        else:
            adj = _reverse(prob, inputs, val)
            for r in rows:
                r.adjoint = adj.get(r.id, np.zeros(r.shape))
            result.gradient = np.concatenate([np.ravel(adj.get(v.id, np.zeros(v.shape))) for v in inputs])
    return result


def trace_names(prob, ids):
    """{node id: v-1, v0 (the variables, in order), v1, v2, ... (the operations among ids)}."""
    nodes, k = prob.graph.nodes, len(prob.var_nodes)
    names = {v.id: f"v{j - k + 1}" for j, v in enumerate(prob.var_nodes)}
    ops = [i for i in ids if nodes[i].op not in ("var", "const")]
    names.update({i: f"v{j + 1}" for j, i in enumerate(ops)})
    return names


def _at(v, node):
    """One point's value: the leading axis of points dropped."""
    return np.array(np.broadcast_to(v, (1,) + node.shape)[0], dtype=float)


def _forward(prob, inputs, nodes, c, val):
    """{node id: tangent} along the unit tangent of flat input c (one jvp sweep)."""
    pos = 0
    for v, size in zip(inputs, prob.sizes):
        if c < pos + size:
            e = np.zeros(v.size)
            e[c - pos] = 1.0
            seed = {v.id: e.reshape((1, 1) + v.shape)}
            break
        pos += size
    ops = [n for n in nodes if n.op != "var"]
    with np.errstate(all="ignore"):
        tans = jvp_sweep(prob.graph, ops, seed, val) if ops else []
    out = {n.id: _shaped(t, n.shape) for n, t in zip(ops, tans) if t is not None}
    out.update({v.id: _shaped(seed[v.id], v.shape) if v.id in seed else np.zeros(v.shape) for v in inputs})
    return out


def _reverse(prob, inputs, val):
    """{node id: adjoint d output / d node} from one backward sweep with seed 1; the same
    rules as ad.vjp_sweep, keeping every node's cotangent instead of the inputs' only."""
    g, out = prob.graph, prob.output
    order, reach = active(g, [out], inputs)
    cts = {out.id: np.ones((1, 1) + out.shape)}
    with np.errstate(all="ignore"):
        for i in order:
            node, ct = g.nodes[i], cts.get(i)
            if ct is None or node.op == "var":
                continue
            need = [bool(reach[a.id]) for a in node.args]
            for a, c, nd in zip(node.args, vjp_rule(node, val, ct, need), need):
                if c is not None and nd:
                    cts[a.id] = c if a.id not in cts else cts[a.id] + c
    return {i: _shaped(c, g.nodes[i].shape) for i, c in cts.items()}


def _shaped(t, shape):
    """A (1, 1) + shape tangent or cotangent (maybe broadcastable) as an array of `shape`."""
    return np.array(np.broadcast_to(t, (1, 1) + tuple(shape))[0, 0], dtype=float)


def formula(node, names):
    """The node's operation written in the names of its arguments: log(v-1), v-1 * v0."""
    args = [names[a.id] if a.id in names else _const_text(a) for a in node.args]
    prim = PRIMS[node.op]
    extra = {k: v for k, v in node.p.items() if k not in ("src", "srcs")}
    if prim.infix and len(args) == 2:
        return f"{args[0]} {prim.infix} {args[1]}"
    if prim.infix and len(args) == 1:
        return f"{prim.infix}{args[0]}"
    if node.op == "getitem":
        return f"{args[0]}[{', '.join(_index_text(i) for i in node.p['idx'])}]"
    if node.op == "transpose":
        return f"{args[0]}.T"
    if node.op == "stack" and not extra.get("axis"):
        return f"[{', '.join(args)}]"
    if node.op == "sum_to" and not node.shape:
        return f"sum({args[0]})"
    params = [f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in sorted(extra.items())]
    return f"{node.op}({', '.join(args + params)})"


def _const_text(node):
    return _fmt_const(node.value).replace("\n", "")


def _index_text(i):
    if isinstance(i, slice):
        text = ("" if i.start is None else str(i.start)) + ":" + ("" if i.stop is None else str(i.stop))
        return text + ("" if i.step is None else f":{i.step}")
    return str(i)


# ---- Graphviz -----------------------------------------------------------------------------
COMMUTATIVE = ("add", "mul", "maximum", "minimum", "hypot", "eq")


def to_dot(prob, title=None):
    """DOT text of the nodes prob.output needs: inputs as ellipses, constants as plain text,
    operations as boxes labelled with op and shape; edges run argument -> user (labelled with
    the argument's position where the order matters); the output has a double border."""
    g, out = prob.graph, prob.output
    ids = needed(g, [out])
    var_names = {v.id: v.p["name"] for v in g.vars.values()}
    lines = ["digraph adcalc {", "  rankdir=LR;",
             '  node [shape=box, fontname="Helvetica"];', '  edge [fontname="Helvetica", fontsize=10];']
    if title:
        lines.append(f'  label="{_esc(title)}"; labelloc=t;')
    names = trace_names(prob, ids)
    for i in ids:
        node = g.nodes[i]
        shape = f"[{', '.join(map(str, node.shape))}]"
        if node.op == "var":
            text = f"{names[i]}: {var_names[i]}" if i in names else var_names[i]
            attrs = f'label="{_esc(text)}\\n{shape}", shape=ellipse'
        elif node.op == "const":
            attrs = f'label="{_esc(_short_const(node))}", shape=plaintext'
        else:
            attrs = f'label="{names[i]}: {_esc(node.op)}\\n{shape}"'
        if i == out.id:
            attrs += ", peripheries=2"
        lines.append(f"  n{i} [{attrs}];")
    for i in ids:
        node = g.nodes[i]
        ordered = len(node.args) > 1 and node.op not in COMMUTATIVE
        for pos, a in enumerate(node.args):
            lines.append(f"  n{a.id} -> n{i}" + (f' [label="{pos}"];' if ordered else ";"))
    lines.append("}")
    return "\n".join(lines) + "\n"


def graph_counts(prob):
    """(nodes, edges) of the drawing to_dot makes."""
    ids = needed(prob.graph, [prob.output])
    return len(ids), sum(len(prob.graph.nodes[i].args) for i in ids)


def _short_const(node):
    text = _const_text(node)
    return text if len(text) <= 40 else text[:37] + "..."


def _esc(text):
    return str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_dot(text, path):
    """Write DOT text to path: .dot/.gv as it is, .png/.svg rendered by Graphviz's `dot`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".dot", ".gv"):
        return _write(path, text)
    if suffix not in (".png", ".svg"):
        raise InputError(f"--out: cannot draw the graph as {path.name!r}: the file name must end in "
                         f".dot, .png or .svg")
    dot = shutil.which("dot")
    if dot is None:
        raise InputError(f"drawing {path.name} needs Graphviz's 'dot' program, which is not installed: "
                         + GRAPHVIZ_HELP)
    try:
        r = subprocess.run([dot, f"-T{suffix[1:]}", "-o", str(path)], input=text, text=True,
                           capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InputError(f"Graphviz's dot could not draw {path.name}: {e}") from None
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or ["no message"])[0]
        raise InputError(f"Graphviz's dot could not draw {path.name}: {why}")
    return path


def _write(path, text):
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
    return path


# ---- N-th derivatives ---------------------------------------------------------------------
def parse_wrt(prob, text, order=None):
    """(names, flat indices) of the inputs in `--wrt x1,x1,x2`; `--wrt x --order N` repeats x."""
    if not text:
        if prob.n != 1:
            raise InputError("derivative needs --wrt: the input(s) to differentiate by, such as "
                             f"--wrt {prob.inputs[0] if prob.inputs else 'x'} --order 2")
        text = prob.inputs[0]
    names = [t.strip() for t in split_top(text)]
    if any(not t for t in names):
        raise InputError(f"--wrt: empty name in {text!r}")
    if order is not None:
        if len(names) == 1:
            names = names * order
        elif len(names) != order:
            raise InputError(f"--order {order} does not match the {len(names)} names in --wrt; "
                             f"give one name with --order, or the names alone")
    if len(names) > MAX_ORDER:
        raise InputError(f"order {len(names)} is too high: derivatives up to order {MAX_ORDER} are offered")
    return names, [input_index(prob, t) for t in names]


@dataclass
class Derivative:
    value: float
    error: float = None       # numeric engine's error estimate
    status: str = "ok"        # numeric engine's own status (ok, kink, infinite, ...)
    method: str = None


def nth_derivative(prob, comps, engine):
    """d^N f / dx_c1 ... dx_cN at prob's point by `engine`: forward (nested forward sweeps on
    the graph), reverse (repeated reverse sweeps), symbolic (SymPy's diff) or numeric
    (N <= 2).  EngineUnavailable when the engine cannot give this one."""
    derivatives.scalar_output(prob, "derivative")
    x = prob.x0()
    prob.values(x[None])  # a point outside the domain is an input error for every engine
    if engine in ("forward", "reverse"):
        with np.errstate(all="ignore"):
            return Derivative(float(derivatives.partial(prob, comps, engine).value(x)) + 0.0, method=engine)
    if engine == "symbolic":
        return Derivative(_symbolic(prob, comps, x) + 0.0, method="sympy diff")
    if engine == "numeric":
        return _numeric(prob, comps, x)
    if engine == "gpu":
        from adcalc.engines import get_engine
        get_engine("gpu")  # says why it cannot run here
        raise EngineUnavailable("the gpu engine gives first and second derivatives only")
    raise InputError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINE_NAMES)} or all")


def _symbolic(prob, comps, x):
    from adcalc.engines.symbolic import SymbolicEngine, compile_exprs, graph_to_sympy
    reason = SymbolicEngine().available()
    if reason:
        raise EngineUnavailable(f"the symbolic engine cannot run here: {reason}")
    key = ("explain.symbolic", prob.output.id, tuple(comps))
    f = prob.graph.cache.get(key)
    if f is None:
        symbols, (expr,) = graph_to_sympy(prob)
        f = prob.graph.cache[key] = compile_exprs(symbols, [expr.diff(*[symbols[c] for c in comps])])
    return float(f(x)[0])


def _numeric(prob, comps, x):
    from adcalc import numdiff
    from adcalc.engines.numeric import ProblemBox
    if len(comps) > NUMERIC_MAX_ORDER:
        raise EngineUnavailable(f"numerical differences are offered up to order {NUMERIC_MAX_ORDER} "
                                f"(differences of differences lose too many digits beyond it)")
    box = ProblemBox(prob)
    with np.errstate(all="ignore"):
        if len(comps) == 1:
            e, at = numdiff.first_derivatives(box, x), (0, comps[0])
        else:
            e, at = numdiff.second_derivatives(box, x), tuple(comps)
    return Derivative(float(e.value[at]), float(e.error[at]), str(e.status[at]), e.method)


def compare_derivatives(prob, comps, label, engines=ENGINE_NAMES, rtol=1e-8, atol=1e-12):
    """(reference name, {engine: {"status", "derivative", "max_abs_diff", "tolerance", "reason",
    ...}}) for every engine: `--engine all`."""
    from adcalc import verify as V
    results = {}
    for name in engines:
        try:
            results[name] = nth_derivative(prob, comps, name)
        except EngineUnavailable as e:
            results[name] = ("unavailable", str(e).split(": ", 1)[-1] if "cannot run here" in str(e) else str(e))
    ok = [n for n in ("symbolic", "forward", "reverse", "numeric") if n in results
          and not isinstance(results[n], tuple)]
    if not ok:
        raise EngineUnavailable("no engine could compute this derivative here")
    ref = ok[0]
    kinked = bool(V.find_kinks(prob, prob.x0()))
    out = {}
    for name, r in results.items():
        if isinstance(r, tuple):
            out[name] = {"status": r[0], "derivative": None, "max_abs_diff": None, "tolerance": None,
                         "reason": r[1]}
            continue
        st, mabs, _, _, tol, _ = V.judge([r.value], [results[ref].value], [label], rtol, atol,
                                         None if r.error is None else [r.error], kinked,
                                         None if r.error is None else [r.status])
        out[name] = {"status": str(st), "derivative": r.value, "max_abs_diff": mabs, "tolerance": tol,
                     "reason": None if r.status == "ok" else f"numeric: {r.status}", "method": r.method}
        if r.error is not None:
            out[name]["error_estimate"] = r.error
    return ref, out


# ---- Newton's method ----------------------------------------------------------------------
def one_engine(name, command):
    """The engine called name; `all` is refused: these commands follow one engine's numbers."""
    from adcalc.engines import get_engine
    if name == "all":
        raise InputError(f"{command} runs one engine: name it with --engine (reverse, forward, symbolic, numeric, ...)")
    return get_engine(name)


def newton(prob, engine_name="reverse", tol=1e-10, max_iter=100, solver="auto"):
    """Minimize the scalar expression from prob's point with adcalc.newton.minimize, the
    gradient and the Hessian (or, for CG, Hessian-vector products) from one engine."""
    from adcalc.newton import DENSE_MAX_N, minimize
    derivatives.scalar_output(prob, "Newton's method")
    if prob.n == 0:
        raise InputError("Newton's method needs at least one variable to move")
    engine = one_engine(engine_name, "newton")
    dense = solver == "dense" or (solver == "auto" and prob.n <= DENSE_MAX_N)

    def f(x):
        return float(prob.value(x))

    def grad(x):
        return engine.grad(prob, x).value

    def hess(x):
        return engine.hessian(prob, x).value

    def hvp(x, v):
        return engine.hvp(prob, x, v).value
    with np.errstate(all="ignore"):
        return minimize(f, grad, prob.x0(), hess=hess if dense else None, hvp=None if dense else hvp,
                        tol=tol, max_iter=max_iter, method=solver)


# ---- plots --------------------------------------------------------------------------------
def parse_over(text):
    """'x=-2:2' -> ('x', -2.0, 2.0); the ends may be constant expressions (pi/2)."""
    name, eq, rng = (text or "").partition("=")
    ends = split_top(rng.replace(":", ","))
    if not eq or not name.strip() or len(ends) != 2:
        raise InputError(f"--over: give a variable and a range such as x=-2:2, not {text!r}")
    lo, hi = (parse_value(e, "--over") for e in ends)
    if lo.ndim or hi.ndim:
        raise InputError(f"--over: the ends of the range must be numbers, not {rng!r}")
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise InputError(f"--over: the range needs finite ends with LO < HI, not {lo!r}:{hi!r}")
    return name.strip(), lo, hi


def plot_problem(exprs, over, at=None, vars_=None):
    """(Problem with `over`'s variable at the range's start, flat index of that variable,
    lo, hi); the other variables take their values from --at."""
    from adcalc.parse import parse
    from adcalc.points import order_variables, parse_point
    from adcalc.problem import Problem
    name, lo, hi = parse_over(over)
    texts = [exprs] if isinstance(exprs, str) else list(exprs)
    names = order_variables(list(dict.fromkeys(n for t in texts for n in parse(t).names)), vars_)
    if name not in names:
        raise InputError(f"--over: {name!r} is not a variable of the expression "
                         f"(variables: {listed(names, none='none')})")
    others = [v for v in names if v != name]
    point = {}
    if others and at is None:
        raise InputError(f"--at is required: give values for {listed(others)} (the variables not in --over)")
    if at is not None:
        try:
            point = parse_point(at, others)
        except InputError as first:
            try:
                point = parse_point(at, names)
            except InputError:
                raise first from None
    point[name] = lo
    prob = Problem(texts, vars=vars_, point=point)
    return prob, prob.inputs.index(name), lo, hi


def plot_series(prob, c, xs, order=1, engine_name="reverse"):
    """(series [f, f', ...] over xs along flat input c, warnings): f from one batched
    evaluation, f' from one batched engine.grad, f'' from one batched engine.hvp along e_c
    (its c-th entry is the Hessian's diagonal), higher orders from the forward derivative
    graph evaluated at all points at once.  Points outside the domain are gaps (NaN)."""
    derivatives.scalar_output(prob, "plot")
    if not 0 <= order <= MAX_PLOT_ORDER:
        raise InputError(f"--order: plots show derivatives of order 0 to {MAX_PLOT_ORDER}, not {order}")
    engine = one_engine(engine_name, "plot")
    X = np.tile(prob.x0(), (len(xs), 1))
    X[:, c] = xs
    bad = {}
    with np.errstate(all="ignore"):
        f = np.asarray(prob.values(X, bad=bad)[prob.output.id], dtype=float).reshape(len(xs))
    good = np.ones(len(xs), bool)
    good[list(bad)] = False
    good &= np.isfinite(f)
    f = np.where(good, f, np.nan)
    series = [f]
    Xg = X[good]
    with np.errstate(all="ignore"):
        for k in range(1, order + 1):
            ys = np.full(len(xs), np.nan)
            if len(Xg):
                ys[good] = _along(prob, engine, Xg, c, k)
            series.append(ys)
    warnings = []
    if bad or not good.all():
        warnings.append(f"{int((~good).sum())} of {len(xs)} points are outside the domain or not finite "
                        f"(gaps in the plot)" + (f"; first: {next(iter(bad.values()))}" if bad else ""))
    return series, warnings


def _along(prob, engine, X, c, k):
    if k == 1:
        return np.asarray(engine.grad(prob, X).value, dtype=float)[:, c]
    if k == 2:
        e = np.zeros(prob.n)
        e[c] = 1.0
        return np.asarray(engine.hvp(prob, X, e).value, dtype=float)[:, c]
    q = derivatives.partial(prob, [c] * k, "forward")
    v = q.values(X, check=False)[q.output.id]
    return np.broadcast_to(np.asarray(v, dtype=float), (len(X),) + q.out_shape).reshape(len(X))
