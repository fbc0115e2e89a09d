"""Symbolic engine: the graph mapped to SymPy through the primitive table; SymPy differentiates.

This engine is an independent check of adcalc's own derivative rules: it never uses
them.  Each node becomes a numpy object array (of the node's shape) of SymPy
expressions, built in one loop over the graph's topological order (no recursion):

* element-wise primitives apply their table entry (`Primitive.sympy`: a SymPy
  function name or a callable `(sympy, *args)`) entry by entry, with broadcasting;
  chains of add/sub/neg and of mul whose inner links are used once are gathered into
  one n-ary `Add`/`Mul` (the table's `x + y` and `x * y` taken n at a time), so that
  a flat sum of 10^4 terms costs O(n) instead of O(n^2);
* reductions with a table entry (prod, max, min, logsumexp) get the flat list of
  their operand's entries; matmul is the matrix product, entry by entry;
* structural ops (sum_to, broadcast, reshape, transpose, getitem, scatter, stack)
  have no formula of their own: their numpy `impl` is applied to arrays of entry
  indices, which says which entries go where (sum_to: which entries add up).

Variables become real SymPy symbols named after the flat inputs (`x1`, `W[0,1]`).
SymPy's `diff` gives the derivatives, taken only along the symbols each term depends
on (a flat sum of many terms has a sparse gradient).  Values are float64: the
formulas are compiled once per problem with `lambdify(..., cse=True)` and evaluated
with numpy scalars (IEEE semantics: inf/nan rather than exceptions).  A point outside
the expression's domain raises the same DomainError as every other engine, because
`prob.evaluate(x)` runs first.  Everything is cached in `prob.graph.cache`.

Conventions where SymPy's differ from the table's kinks: SymPy's own (Heaviside(0) is
1/2 for max/min/relu ties); DiracDelta, the derivative of sign/step/abs', is taken as
0 when evaluating, like the table's "zero" kind.
"""
import math

import numpy as np


from adcalc.engines.base import Engine, Result
from adcalc.errors import EngineError, EngineUnavailable
from adcalc.evaluate import needed
from adcalc.points import component_names
from adcalc.core import PRIMS

_SYMPY = []


def sympy_module():
    """The sympy module (imported on first use); EngineUnavailable if it is missing."""
    if not _SYMPY:
        try:
            import sympy
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise EngineUnavailable(f"the symbolic engine needs the Python package 'sympy' ({e})") from None
        _SYMPY.append(sympy)
    return _SYMPY[0]


# ---- constants ------------------------------------------------------------------------
def _known_constants(s):
    return {math.pi: s.pi, math.e: s.E, math.log(2.0): s.log(2), math.log(10.0): s.log(10),
            math.sqrt(2.0): s.sqrt(2), 2.0 / math.sqrt(math.pi): 2 / s.sqrt(s.pi),
            1.0 / math.log(2.0): 1 / s.log(2), 1.0 / math.log(10.0): 1 / s.log(10)}


def const_to_sympy(s, v, known=None):
    """A float64 constant as SymPy: integers and small fractions exactly, pi, e, log 2, ...
    by name, anything else as a Float that holds the float64 value exactly."""
    v = float(v)
    if not math.isfinite(v):
        return s.nan if math.isnan(v) else (s.oo if v > 0 else -s.oo)
    if v.is_integer() and abs(v) < 2 ** 53:
        return s.Integer(int(v))
    known = known if known is not None else _known_constants(s)
    for c, sym in known.items():
        if v == c:
            return sym
        if v == -c:
            return -sym
    from fractions import Fraction
    fr = Fraction(v).limit_denominator(1000)
    if float(fr) == v:
        return s.Rational(fr.numerator, fr.denominator)
    return s.Float(v, precision=64)  # 64 bits: printed with enough digits to round-trip


def exact_constant(s, node, known):
    """A folded scalar constant as the SymPy formula it was made from (sin(pi/6) is 1/2,
    1/sqrt(2*pi) stays symbolic), from the records' SymPy counterparts; constants the
    formula cannot express exactly stay floats.  No recursion: an explicit stack."""
    done, stack = {}, [(node, False)]
    while stack:
        n, ready = stack.pop()
        if n.id in done:
            continue
        if n.exact is None:
            done[n.id] = const_to_sympy(s, float(n.value), known)
            continue
        if not ready:
            stack.append((n, True))
            stack.extend((a, False) for a in n.exact[1] if a.id not in done)
            continue
        name, args = n.exact
        f = _elementwise_fn(s, PRIMS[name])
        try:
            v = f(*[done[a.id] for a in args])
            done[n.id] = v if v.is_finite is not False else const_to_sympy(s, float(n.value), known)
        except (TypeError, ValueError, ArithmeticError):
            done[n.id] = const_to_sympy(s, float(n.value), known)
    return done[node.id]


# ---- graph -> SymPy ------------------------------------------------------------------
_ADDS = ("add", "sub", "neg")
_GATHER = ("broadcast", "reshape", "transpose", "getitem", "stack", "concat")


def _obj(items, shape):
    a = np.empty(len(items), dtype=object)
    for i, it in enumerate(items):
        a[i] = it
    return a.reshape(shape)


def _bidx(shape, out_shape):
    """Flat index of each entry of an operand of `shape` broadcast to `out_shape`."""
    size = int(np.prod(shape)) if shape else 1
    return np.broadcast_to(np.arange(size).reshape(shape), out_shape).ravel()


def _elementwise_fn(s, prim):
    f = prim.sympy
    if isinstance(f, str):
        g = getattr(s, f)
        return lambda *a: g(*a)
    return lambda *a: f(s, *a)


def graph_to_sympy(prob):
    """(symbols, outputs): real Symbols named after prob.inputs and the flat list of
    output entries as SymPy expressions; cached per problem."""
    cache = prob.graph.cache
    key = ("symbolic.exprs", prob.output.id)
    if key in cache:
        return cache[key]
    s = sympy_module()

    graph = prob.graph
    nodes = graph.nodes
    ids = needed(graph, [prob.output])
    size = sum(1 for i in ids if nodes[i].op not in _ADDS)  # sums become one flat Add
    if size > MAX_NODES:
        raise EngineUnavailable(f"the expression has {size} graph nodes besides its sums; the symbolic engine "
                                f"takes up to {MAX_NODES} (SymPy slows down beyond that); the other engines still run")
    uses, user = {}, {}
    for i in ids:
        for a in nodes[i].args:
            uses[a.id] = uses.get(a.id, 0) + 1
            user[a.id] = nodes[i]
    out_id = prob.output.id

    def absorbed(node, group):
        """node is an inner link of a chain of `group` ops: folded into its one user."""
        if node.op not in group or node.id == out_id or uses.get(node.id) != 1:
            return False
        u = user[node.id]
        return u.op in group and u.shape == node.shape

    symbols, vals = [], {}
    known = _known_constants(s)
    wrt = {v.id for v in prob.var_nodes}
    for vn in prob.all_var_nodes:
        name = vn.p["name"]
        if vn.id in wrt:
            syms = [s.Symbol(c, real=True) for c in component_names(name, vn.shape)]
            symbols += syms
            vals[vn.id] = _obj(syms, vn.shape)
        else:  # held constant (--wrt): its value at the point
            vals[vn.id] = _obj([const_to_sympy(s, v, known) for v in np.ravel(prob.point[name])], vn.shape)
    fns = {}
    for i in ids:
        node = nodes[i]
        op = node.op
        if op == "var":
            if i not in vals:
                raise EngineError(f"the symbolic engine found an unknown variable {node.p['name']!r}")
            continue
        if op == "const":
            vals[i] = _obj([exact_constant(s, node, known)] if node.exact else
                           [const_to_sympy(s, v, known) for v in np.ravel(node.value)], node.shape)
            continue
        if op in _ADDS and absorbed(node, _ADDS) or op == "mul" and absorbed(node, ("mul",)):
            continue
        vals[i] = _convert(s, node, vals, fns, absorbed)
    outs = list(vals[out_id].ravel())
    cache[key] = (symbols, outs)
    return cache[key]


def _convert(s, node, vals, fns, absorbed):
    op, shape = node.op, node.shape
    size = node.size
    if op in _ADDS or op == "mul":
        return _chain(s, node, vals, absorbed)
    prim = PRIMS[op]
    if prim.pointwise:
        f = fns.get(op)
        if f is None:
            f = fns[op] = _elementwise_fn(s, prim)
        args = [vals[a.id].ravel() for a in node.args]
        idx = [_bidx(a.shape, shape) for a in node.args]
        return _obj([f(*(arg[ix[k]] for arg, ix in zip(args, idx))) for k in range(size)], shape)
    if op in _GATHER:
        flat = np.concatenate([vals[a.id].ravel() for a in node.args])
        offs = np.cumsum([0] + [a.size for a in node.args])
        index = [np.arange(a.size).reshape(a.shape) + off for a, off in zip(node.args, offs)]
        where = np.asarray(prim.impl(*index, **node.p))
        return flat[where.ravel()].reshape(shape)
    if op == "sum_to":
        (a,) = node.args
        owner = np.asarray(PRIMS["broadcast"].impl(np.arange(size).reshape(shape),
                                                   shape=a.shape, src=shape)).ravel()
        groups = [[] for _ in range(size)]
        for e, k in zip(vals[a.id].ravel(), owner):
            groups[k].append(e)
        return _obj([s.Add(*g) for g in groups], shape)
    if op == "scatter":
        (a,) = node.args
        where = np.asarray(prim.impl(np.arange(1, a.size + 1).reshape(a.shape), **node.p))
        src = vals[a.id].ravel()
        return _obj([s.S.Zero if k == 0 else src[k - 1] for k in where.astype(int).ravel()], shape)
    if op == "matmul":
        a, b = (vals[x.id] for x in node.args)
        p, q = a.shape
        r = b.shape[1]
        return _obj([s.Add(*[a[i, k] * b[k, j] for k in range(q)]) for i in range(p) for j in range(r)],
                    shape)
    if prim.sympy is not None and prim.kind == "custom" and not node.shape:
        (a,) = node.args
        entries = list(vals[a.id].ravel())
        arg = entries if a.shape else entries[0]
        return _obj([prim.sympy(s, arg)], ())
    raise EngineError(f"the symbolic engine has no SymPy counterpart for the primitive {op!r}")


def _chain(s, node, vals, absorbed):
    """One n-ary Add (add/sub/neg) or Mul over a chain of links used only once."""
    shape, size = node.shape, node.size
    is_add = node.op != "mul"
    group = _ADDS if is_add else ("mul",)
    leaves, stack = [], [(node, 1)]
    while stack:
        n, sign = stack.pop()
        if n is not node and not absorbed(n, group):
            leaves.append((n, sign))
            continue
        if n.op == "neg":
            stack.append((n.args[0], -sign))
        elif n.op == "sub":
            stack += [(n.args[1], -sign), (n.args[0], sign)]
        else:
            stack += [(n.args[1], sign), (n.args[0], sign)]
    leaves.reverse()
    cols = [(vals[n.id].ravel(), _bidx(n.shape, shape), sign) for n, sign in leaves]
    if is_add:
        return _obj([s.Add(*[v[ix[k]] if sg > 0 else -v[ix[k]] for v, ix, sg in cols])
                     for k in range(size)], shape)
    return _obj([s.Mul(*[v[ix[k]] for v, ix, _ in cols]) for k in range(size)], shape)


# ---- differentiation -----------------------------------------------------------------
def partials(expr, index, lowest=0):
    """{position: d expr / d symbol} for the symbols in `index` (symbol -> position,
    only positions >= lowest) that expr depends on; zero derivatives are left out.
    An Add is differentiated term by term along each term's own symbols only."""
    s = sympy_module()
    terms = expr.args if expr.is_Add else (expr,)
    acc = {}
    for t in terms:
        for sym in t.free_symbols:
            j = index.get(sym)
            if j is None or j < lowest:
                continue
            d = _resolve(s, t.diff(sym))
            if d != 0:
                acc.setdefault(j, []).append(d)
    return {j: s.Add(*ds) for j, ds in sorted(acc.items())}


def _resolve(s, d):
    """SymPy leaves d/dy sign(g(y)) unevaluated (a Derivative); sign is piecewise constant,
    so it is 0, the table's 'zero' convention.  Any other unevaluated derivative is an
    engine error that names it."""
    if not d.has(s.Derivative):
        return d
    d = d.replace(lambda e: isinstance(e, s.Derivative) and e.expr.func in (s.sign, s.Heaviside),
                  lambda e: s.S.Zero)
    if d.has(s.Derivative):
        left = next(iter(d.atoms(s.Derivative)))
        raise EngineError(f"SymPy cannot differentiate {str(left)[:120]}")
    return d


def _jacobian(prob):
    cache = prob.graph.cache
    key = ("symbolic.jacobian", prob.output.id)
    if key not in cache:
        symbols, outs = graph_to_sympy(prob)
        index = {sym: j for j, sym in enumerate(symbols)}
        cache[key] = [partials(e, index) for e in outs]
    return cache[key]


def _hessian(prob):
    """Upper triangle {(i, j): d2f/dxi dxj, i <= j} of a scalar problem."""
    cache = prob.graph.cache
    key = ("symbolic.hessian", prob.output.id)
    if key not in cache:
        symbols, _ = graph_to_sympy(prob)
        index = {sym: j for j, sym in enumerate(symbols)}
        (grad,) = _jacobian(prob)
        cache[key] = {(i, j): h for i, g in grad.items() for j, h in partials(g, index, lowest=i).items()}
    return cache[key]


# ---- evaluation ----------------------------------------------------------------------
def _zero_delta(s, expr):
    """DiracDelta (derivative of sign, step, abs') -> 0, the table's 'zero' convention."""
    if expr.has(s.DiracDelta):
        expr = expr.replace(lambda e: isinstance(e, s.DiracDelta), lambda e: s.S.Zero)
    return expr


def _erf(x):
    return np.asarray(np.frompyfunc(math.erf, 1, 1)(x), dtype=float)[()]


def _erfc(x):
    return np.asarray(np.frompyfunc(math.erfc, 1, 1)(x), dtype=float)[()]


WORKING_DIGITS = 40
MAX_NODES = 2000    # larger expressions: SymPy takes minutes; the engine declines
MAX_DIGITS = 2560


def compile_exprs(symbols, exprs):
    """f(x) -> float64 array of len(exprs), the formulas' values at flat x.

    The formulas are lambdified once, with common subexpressions pulled out, and
    evaluated in mpmath at WORKING_DIGITS digits, then rounded to float64: the values
    are the exact derivatives correctly rounded, barring cancellation beyond 40
    digits, and do not overflow in intermediate steps (exp(x)/(1 + exp(x)) at
    x = 800 is 1).  Where mpmath stops (a division by zero: sqrt'(0)), the same
    formulas run in numpy float64 with IEEE semantics (inf, nan) instead.  A
    complex value (log of a negative number inside a derivative) is nan.
    """
    s = sympy_module()
    exprs = [_zero_delta(s, e) for e in exprs]
    if not exprs:
        return lambda x: np.zeros(0)
    # Arguments renamed to plain identifiers in one pass (lambdify's own dummify
    # substitutes argument by argument: quadratic in the number of inputs).
    args = [s.Symbol(f"_a{j}", real=True) for j in range(len(symbols))]
    rename = dict(zip(symbols, args))
    exprs = [e.xreplace(rename) for e in exprs]
    import mpmath
    precise = s.lambdify(args, exprs, modules="mpmath", cse=True, dummify=False)
    fallback = []

    def ieee(xs):
        if not fallback:
            fallback.append(s.lambdify(args, exprs, modules=[{"erf": _erf, "erfc": _erfc}, "numpy"],
                                       cse=True, dummify=False))
        with np.errstate(all="ignore"):
            return fallback[0](*[np.float64(v) for v in xs])

    each = []

    def one_by_one(xs):
        """Formula by formula: exact where mpmath can, the limit at a removable singularity
        (sinc'(0): 0/0 in the formula, 0 in the limit), else IEEE (inf, nan)."""
        if not each:
            each.extend(s.lambdify(args, e, modules="mpmath", dummify=False) for e in exprs)
        out = []
        for k, g in enumerate(each):
            try:
                with mpmath.workdps(WORKING_DIGITS):
                    out.append(_to_float(g(*[mpmath.mpf(v) for v in xs])))
                continue
            except (ArithmeticError, ValueError, TypeError):
                pass
            lim = _removable_limit(mpmath, g, xs)
            out.append(_to_float(ieee(xs)[k]) if lim is None else lim)
        return out

    def at(xs, digits):
        with mpmath.workdps(digits):
            return np.array([_to_float(v) for v in precise(*[mpmath.mpf(v) for v in xs])], dtype=float)

    def f(x):
        """Evaluated at WORKING_DIGITS (more for inputs beyond 1e+-15) and at 1.5 times as
        many; while the two differ beyond 1e-17 (cancellation: sinc''(1e-300) cancels terms
        of 1e600), the digits double, up to MAX_DIGITS."""
        xs = [float(v) for v in np.asarray(x, dtype=float).ravel()]
        # formulas of tiny or huge inputs cancel terms of their powers (1/x^3 at 1e-300):
        # start with enough digits for three times the inputs' decimal exponents
        spread = max([abs(math.log10(abs(v))) for v in xs if v != 0 and math.isfinite(v)], default=0.0)
        start = min(MAX_DIGITS, WORKING_DIGITS + 3 * int(spread if spread > 15 else 0))
        try:
            digits, lo = start, at(xs, start)
            while digits < MAX_DIGITS:
                hi = at(xs, digits * 3 // 2)
                with np.errstate(invalid="ignore"):
                    same = (lo == hi) | (np.abs(lo - hi) <= 1e-17 * np.abs(hi)) | (np.isnan(lo) & np.isnan(hi))
                if np.all(same):
                    return hi
                digits, lo = digits * 2, at(xs, digits * 2)
            return lo
        except (ArithmeticError, ValueError, TypeError):
            return np.array(one_by_one(xs), dtype=float)
    return f


def _removable_limit(mpmath, g, xs, digits=80):
    """The limit of formula g at xs when g is 0/0 there: its values at xs +- t d along a fixed
    direction d, t = 1e-12 and 1e-14 (relative), at `digits` digits.  Each side must settle
    (the values at the two t agree to 1e-6) and the sides must agree; the answer is the
    mean of the two sides at the smaller t (odd terms cancel: error O(t^2)).  Else None:
    a real singularity, where the caller falls back to inf or nan."""
    d = [(1.0 + 0.37 * k) % 1.7 + 0.3 for k in range(len(xs))]
    vals = {}
    try:
        with mpmath.workdps(digits):
            for t in ("1e-12", "1e-14"):
                for sign in (1, -1):
                    v = g(*[mpmath.mpf(x) + sign * mpmath.mpf(t) * max(1.0, abs(x)) * dk for x, dk in zip(xs, d)])
                    if isinstance(v, mpmath.mpc):
                        if v.imag != 0:
                            return None
                        v = v.real
                    vals[t, sign] = v
            tol = mpmath.mpf("1e-6") * max(1, max(abs(v) for v in vals.values()))
            settled = all(abs(vals["1e-12", sg] - vals["1e-14", sg]) <= tol for sg in (1, -1))
            if not settled or abs(vals["1e-14", 1] - vals["1e-14", -1]) > tol:
                return None
            out = float((vals["1e-14", 1] + vals["1e-14", -1]) / 2)
    except (ArithmeticError, ValueError, TypeError):
        return None
    return out if np.isfinite(out) else None


def _to_float(v):
    if isinstance(v, np.ndarray):
        v = v[()]
    if hasattr(v, "imag") and not isinstance(v, (int, float, np.floating)):
        if v.imag != 0:
            return math.nan
        v = v.real
    return float(v)


class SymbolicEngine(Engine):
    name = "symbolic"

    def available(self):
        """Whether SymPy is installed, without importing it (that takes half a second)."""
        import importlib.util
        if _SYMPY or importlib.util.find_spec("sympy") is not None:
            return None
        return "needs the Python package 'sympy', which is not installed"

    def _compiled(self, prob, what):
        cache = prob.graph.cache
        key = ("symbolic.compiled", what, prob.output.id)
        if key not in cache:
            symbols, _ = graph_to_sympy(prob)
            if what == "jacobian":
                entries = [((r, c), e) for r, row in enumerate(_jacobian(prob)) for c, e in row.items()]
            else:
                entries = list(_hessian(prob).items())
            f = compile_exprs(symbols, [e for _, e in entries])
            cache[key] = ([p for p, _ in entries], f)
        return cache[key]

    def _eval(self, prob, X, what):
        prob.values(X)  # domain errors, as every engine reports them
        where, f = self._compiled(prob, what)
        n = prob.n
        out = np.zeros((len(X),) + ((prob.m, n) if what == "jacobian" else (n, n)))
        for k, x in enumerate(X):
            for (r, c), v in zip(where, f(x)):
                out[k, r, c] = v
                if what == "hessian":
                    out[k, c, r] = v
        return out

    def jacobian_batch(self, prob, X):
        return Result(self._eval(prob, X, "jacobian"))

    def hessian_batch(self, prob, X):
        return Result(self._eval(prob, X, "hessian"))

    def hvp_batch(self, prob, X, V):
        return Result(np.einsum("nij,knj->kni", self._eval(prob, X, "hessian"), V))

    def jvp_batch(self, prob, X, V):
        return Result(np.einsum("nij,knj->kni", self._eval(prob, X, "jacobian"), V))

    def vjp_batch(self, prob, X, U):
        return Result(np.einsum("nij,kni->knj", self._eval(prob, X, "jacobian"), U))
