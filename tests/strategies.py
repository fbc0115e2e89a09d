"""Hypothesis strategies: random expression trees drawn from the primitive table, and points.

A `Term` carries the expression text for adcalc *and* an independent numpy
evaluator written here (not adcalc's), so tests can take central differences of a
function that adcalc never touched.  Every element-wise function is wrapped so that
its argument stays inside its domain and away from overflow (log(1+X^2),
sqrt(1+X^2), asin(tanh(X)/2), acosh(2+X^2), exp(tanh(X)), ...).  Functions with kinks
(abs, relu, sign, max/min, hypot, norm, reduction max/min) record how far the point
is from the kink, so tests can `assume` they are not differentiating across one.

Variables: scalars a, b, c; vectors u, v of length N; a matrix M (N x N).
"""
import math
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

N = 3
SCALARS = ("a", "b", "c")
VECTORS = ("u", "v")
MATRICES = ("M",)
SHAPES = {**{s: () for s in SCALARS}, **{s: (N,) for s in VECTORS}, **{s: (N, N) for s in MATRICES}}

_erf = np.vectorize(math.erf, otypes=[float])
_erfc = np.vectorize(math.erfc, otypes=[float])


@dataclass(frozen=True)
class Term:
    text: str
    fn: object          # fn(env, margins) -> ndarray; appends distances to kinks to `margins`
    vector: bool        # shape (N,) if True, else ()
    names: frozenset    # variables used

    def __call__(self, env, margins=None):
        return self.fn(env, [] if margins is None else margins)


def _kink(margins, value):
    margins.append(float(np.min(np.abs(value))) if np.size(value) else math.inf)


# ---- element-wise functions, each wrapped to stay in its domain -------------------------------
# name -> (template with {0} for the argument, numpy evaluator of the whole wrapped thing, kinked)
UNARY = {
    "sin": ("sin({0})", np.sin, False),
    "cos": ("cos({0})", np.cos, False),
    "tan": ("tan(tanh({0}))", lambda x: np.tan(np.tanh(x)), False),
    "asin": ("asin(tanh({0})/2)", lambda x: np.arcsin(np.tanh(x) / 2), False),
    "acos": ("acos(tanh({0})/2)", lambda x: np.arccos(np.tanh(x) / 2), False),
    "atan": ("atan({0})", np.arctan, False),
    "sinh": ("sinh(tanh({0}))", lambda x: np.sinh(np.tanh(x)), False),
    "cosh": ("cosh(tanh({0}))", lambda x: np.cosh(np.tanh(x)), False),
    "tanh": ("tanh({0})", np.tanh, False),
    "asinh": ("asinh({0})", np.arcsinh, False),
    "acosh": ("acosh(2+{0}**2)", lambda x: np.arccosh(2 + x ** 2), False),
    "atanh": ("atanh(tanh({0})/2)", lambda x: np.arctanh(np.tanh(x) / 2), False),
    "exp": ("exp(tanh({0}))", lambda x: np.exp(np.tanh(x)), False),
    "expm1": ("expm1(tanh({0}))", lambda x: np.expm1(np.tanh(x)), False),
    "log": ("log(1+{0}^2)", lambda x: np.log(1 + x ** 2), False),
    "log-base": ("log(2+{0}^2, 3)", lambda x: np.log(2 + x ** 2) / np.log(3), False),
    "log1p": ("log1p({0}**2)", lambda x: np.log1p(x ** 2), False),
    "log2": ("log2(1+{0}**2)", lambda x: np.log2(1 + x ** 2), False),
    "log10": ("log10(1+{0}**2)", lambda x: np.log10(1 + x ** 2), False),
    "sqrt": ("sqrt(1+{0}**2)", lambda x: np.sqrt(1 + x ** 2), False),
    "cbrt": ("cbrt(1+{0}**2)", lambda x: np.cbrt(1 + x ** 2), False),
    "erf": ("erf({0})", _erf, False),
    "erfc": ("erfc({0})", _erfc, False),
    "sigmoid": ("sigmoid({0})", lambda x: 1 / (1 + np.exp(-x)), False),
    "softplus": ("softplus({0})", lambda x: np.log1p(np.exp(x)), False),
    "square": ("{0}**2", lambda x: x ** 2, False),
    "cube": ("{0}^3", lambda x: x ** 3, False),
    "pow-real": ("(1+{0}**2)**1.5", lambda x: (1 + x ** 2) ** 1.5, False),
    "pow-neg": ("pow(1+{0}**2, -0.5)", lambda x: (1 + x ** 2) ** -0.5, False),
    "recip": ("1/(1+{0}**2)", lambda x: 1 / (1 + x ** 2), False),
    "neg": ("-{0}", np.negative, False),
    "abs": ("abs({0})", np.abs, True),
    "relu": ("relu({0})", lambda x: np.maximum(x, 0.0), True),
    "sign": ("sign({0})*{0}", lambda x: np.sign(x) * x, True),
}

# name -> (template, evaluator, kink distance or None)
BINARY = {
    "add": ("({0} + {1})", np.add, None),
    "sub": ("({0} - {1})", np.subtract, None),
    "mul": ("({0} * {1})", np.multiply, None),
    "div": ("({0} / (1 + {1}^2))", lambda x, y: x / (1 + y ** 2), None),
    "pow": ("(1 + {0}^2)**({1}/2)", lambda x, y: (1 + x ** 2) ** (y / 2), None),
    "atan2": ("atan2({0}, 2 + {1}**2)", lambda x, y: np.arctan2(x, 2 + y ** 2), None),
    "hypot": ("hypot({0}, {1})", np.hypot, lambda x, y: np.hypot(x, y)),
    "max": ("max({0}, {1})", np.maximum, lambda x, y: x - y),
    "min": ("min({0}, {1})", np.minimum, lambda x, y: x - y),
}


def _gap(x):
    """Distance between the largest two entries (a reduction max is kinked at ties)."""
    s = np.sort(np.ravel(x))
    return s[-1] - s[-2] if s.size > 1 else math.inf


# vector -> scalar; name -> (template, evaluator, kink distance or None)
REDUCTIONS = {
    "sum": ("sum({0})", np.sum, None),
    "mean": ("mean({0})", np.mean, None),
    "prod": ("prod({0})", np.prod, None),
    "norm": ("norm({0})", np.linalg.norm, np.linalg.norm),
    "logsumexp": ("logsumexp({0})", lambda x: np.log(np.sum(np.exp(x))), None),
    "max": ("max({0})", np.max, _gap),
    "min": ("min({0})", np.min, lambda x: _gap(-x)),
    "first": ("{0}[0]", lambda x: x[0], None),
    "last": ("{0}[-1]", lambda x: x[-1], None),
    "tail-sum": ("sum({0}[1:])", lambda x: np.sum(x[1:]), None),
}


def var(name):
    return Term(name, lambda env, m: np.asarray(env[name], dtype=float), SHAPES[name] == (N,),
                frozenset([name]))


def const(c):
    return Term(repr(c) if c >= 0 else f"({c!r})", lambda env, m: np.asarray(c), False, frozenset())


def unary(name, x):
    tmpl, f, kinked = UNARY[name]

    def fn(env, m):
        xv = x.fn(env, m)
        if kinked:
            _kink(m, xv)
        return f(xv)
    return Term(tmpl.format(_paren(x.text)), fn, x.vector, x.names)


def binary(name, x, y):
    tmpl, f, kink = BINARY[name]

    def fn(env, m):
        xv, yv = x.fn(env, m), y.fn(env, m)
        if kink is not None:
            _kink(m, kink(*np.broadcast_arrays(xv, yv)))
        return f(xv, yv)
    return Term(tmpl.format(_paren(x.text), _paren(y.text)), fn, x.vector or y.vector, x.names | y.names)


def reduction(name, x):
    tmpl, f, kink = REDUCTIONS[name]

    def fn(env, m):
        xv = x.fn(env, m)
        if kink is not None:
            _kink(m, kink(xv))
        return np.asarray(f(xv))
    return Term(tmpl.format(_paren(x.text)), fn, False, x.names)


def dot(x, y):
    return Term(f"dot({x.text}, {y.text})", lambda env, m: np.asarray(np.dot(x.fn(env, m), y.fn(env, m))),
                False, x.names | y.names)


def matvec(mat, x, left):
    text = f"({mat} @ {_paren(x.text)})" if left else f"({_paren(x.text)} @ {mat})"

    def fn(env, m):
        a, xv = np.asarray(env[mat]), x.fn(env, m)
        return a @ xv if left else xv @ a
    return Term(text, fn, True, x.names | {mat})


def stack(items):
    return Term("[" + ", ".join(t.text for t in items) + "]",
                lambda env, m: np.array([t.fn(env, m) for t in items], dtype=float), True,
                frozenset().union(*(t.names for t in items)))


def _paren(text):
    return text if text.replace("_", "").isalnum() or text[0] in "([" and _balanced_outer(text) else f"({text})"


def _balanced_outer(text):
    """True if the first bracket closes at the last character (so the text is one atom)."""
    close = {"(": ")", "[": "]"}[text[0]]
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth == 0:
                return i == len(text) - 1 and ch == close
    return False


# ---- strategies ------------------------------------------------------------------------------------
consts = st.sampled_from([0.5, 2.0, 3.0, -1.5, 0.25])


@st.composite
def scalar_terms(draw, depth=3):
    if depth <= 0:
        return draw(st.one_of(st.sampled_from(SCALARS).map(var), consts.map(const)))
    kind = draw(st.sampled_from(["leaf", "unary", "unary", "binary", "binary", "reduce", "dot"]))
    if kind == "leaf":
        return draw(scalar_terms(0))
    if kind == "unary":
        return unary(draw(st.sampled_from(sorted(UNARY))), draw(scalar_terms(depth - 1)))
    if kind == "binary":
        return binary(draw(st.sampled_from(sorted(BINARY))), draw(scalar_terms(depth - 1)),
                      draw(scalar_terms(depth - 1)))
    if kind == "reduce":
        return reduction(draw(st.sampled_from(sorted(REDUCTIONS))), draw(vector_terms(depth - 1)))
    return dot(draw(vector_terms(depth - 1)), draw(vector_terms(depth - 1)))


@st.composite
def vector_terms(draw, depth=3):
    if depth <= 0:
        return var(draw(st.sampled_from(VECTORS)))
    kind = draw(st.sampled_from(["leaf", "unary", "binary", "mixed", "list", "matvec"]))
    if kind == "leaf":
        return draw(vector_terms(0))
    if kind == "unary":
        return unary(draw(st.sampled_from(sorted(UNARY))), draw(vector_terms(depth - 1)))
    if kind == "binary":
        return binary(draw(st.sampled_from(sorted(BINARY))), draw(vector_terms(depth - 1)),
                      draw(vector_terms(depth - 1)))
    if kind == "mixed":   # broadcasting a scalar against a vector, on either side
        s, v = draw(scalar_terms(depth - 1)), draw(vector_terms(depth - 1))
        name = draw(st.sampled_from(sorted(BINARY)))
        return binary(name, s, v) if draw(st.booleans()) else binary(name, v, s)
    if kind == "list":
        return stack([draw(scalar_terms(depth - 1)) for _ in range(N)])
    return matvec(draw(st.sampled_from(MATRICES)), draw(vector_terms(depth - 1)), draw(st.booleans()))


def scalar_exprs(depth=3):
    """Scalar-valued expressions that use at least one variable."""
    return scalar_terms(depth).filter(lambda t: t.names)


def vector_exprs(depth=3):
    return vector_terms(depth).filter(lambda t: t.names)


# a grid of 1/256 steps in [-2, 2]: exactly representable, with zeros and ties possible, but
# no 1e-300 against 1 (prod's second derivatives lose everything there: see test_engines.py).
coords = st.integers(min_value=-512, max_value=512).map(lambda i: i / 256)


@st.composite
def points(draw, term):
    """{name: array} for the variables of `term`."""
    out = {}
    for name in sorted(term.names):
        shape = SHAPES[name]
        size = int(np.prod(shape)) if shape else 1
        vals = draw(st.lists(coords, min_size=size, max_size=size))
        out[name] = np.array(vals, dtype=float).reshape(shape)
    return out


@st.composite
def problems(draw, exprs=None):
    """(term, point) pairs."""
    term = draw(exprs if exprs is not None else scalar_exprs())
    return term, draw(points(term))


def flat(point, order):
    return np.concatenate([np.ravel(point[n]) for n in order]) if order else np.zeros(0)


def unflat(x, order):
    out, pos = {}, 0
    for n in order:
        shape = SHAPES[n]
        size = int(np.prod(shape)) if shape else 1
        out[n] = np.asarray(x[pos:pos + size]).reshape(shape)
        pos += size
    return out
