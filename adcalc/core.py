"""The primitive record, the registry and the dispatch that every operation goes through.

`bind(name, *args, **params)` applies a primitive: when an argument is a `Traced`
value (a graph node) the graph builds a node, otherwise the record's numpy
implementation runs.  Derivative rules are written with the op functions made by
`op(name)`, so the same rule computes numbers or builds a derivative graph that
can be differentiated again.  This module imports nothing else from adcalc.
"""


class Traced:
    """Base of values that build graphs instead of computing (graph nodes).

    Python's operators build nodes too, so rules may read `1 / cosh(x) ** 2`: straight to
    the node's graph (Graph.binary is bind's and apply's path for two operands).
    """

    __slots__ = ()
    __array_ufunc__ = None  # numpy defers to our operators: array * node builds a node

    def __add__(self, o):
        return self.graph.binary("add", self, o)

    def __radd__(self, o):
        return self.graph.binary("add", o, self)

    def __sub__(self, o):
        return self.graph.binary("sub", self, o)

    def __rsub__(self, o):
        return self.graph.binary("sub", o, self)

    def __mul__(self, o):
        return self.graph.binary("mul", self, o)

    def __rmul__(self, o):
        return self.graph.binary("mul", o, self)

    def __truediv__(self, o):
        return self.graph.binary("div", self, o)

    def __rtruediv__(self, o):
        return self.graph.binary("div", o, self)

    def __pow__(self, o):
        return self.graph.binary("pow", self, o)

    def __rpow__(self, o):
        return self.graph.binary("pow", o, self)

    def __neg__(self):
        return bind("neg", self)


class Unit(float):
    """The constants 1 and -1 returned by a partial: the sweeps skip the multiply."""


ONE, MINUS = Unit(1.0), Unit(-1.0)


class Quotient:
    """A partial num / den[0] / den[1] ..., applied to a tangent t as ((t num) / den[0]) / ...:
    the tangent scales the numerator before anything divides, so a partial that would
    under- or overflow on its own (1/x at a subnormal x, y x^y / x at x = 1e200) never
    forms.  num may be ONE."""

    __slots__ = ("num", "dens")

    def __init__(self, num, *dens):
        self.num, self.dens = num, dens

    def apply(self, t):
        out = t if self.num is ONE else t * self.num
        for d in self.dens:
            out = out / d
        return out

    def value(self):
        return self.apply(1.0)

KINDS = ("elementwise", "zero", "linear", "custom")


class Primitive:
    """Everything about one function; see primitives.py for the fields' use.

    kind        elementwise: `partials`, one rule per argument f(*args, ans);
                zero: piecewise constant, derivative 0 where it exists;
                linear: `transpose(ct, node)`, forward mode applies the op to tangents;
                custom: `jvp(node, vals, ans, tans)` and `vjp(node, vals, ans, ct)`.
    pointwise   arguments broadcast against each other (elementwise, zero, select).
    spell       the names the parser accepts for it, with `arity` (min, max or None).
    domain      (predicate(*args) -> bool mask, message): outside it is an error.
    kink        (predicate(*args, ans) -> bool mask, convention text): where the
                function is not differentiable and which value the rules give there.
    singular    a partial can be infinite or undefined inside the domain (sqrt at 0, the
                exponent's partial of a negative base): there a zero tangent or
                cotangent contributes 0, not 0 * inf (a predicate on the node, or a bool).
    jvp, vjp    also on an elementwise record: rules that order the arithmetic better
                than the partials would (div: (t - q dt) / y).
    c, c_domain the C (and CUDA) spelling, placeholders {0}, {1}, ...; the C condition
                true inside the domain (a string, or a function of the node when it
                depends on the arguments, as pow's does on a constant exponent).
    complex_ok  the implementation takes complex input and is complex-analytic there
                (complex step may difference it); `complex_at(*args, varies)` narrows
                that to the points where it holds (varies: which arguments depend on a
                variable).
    period      the function is periodic with this period (sin, cos: 2 pi; tan: pi): an
                argument computed with a rounding error near a period leaves no digit.
    commutative f(x, y) = f(y, x) in float64 (add, mul): the graph keeps one node for both.
    selects     its value is one of its arguments' entries, or its negation (neg, abs,
                max, the structural ops): made of exact numbers by such records alone, a
                value is exact.
    """

    __slots__ = ("name", "nargs", "impl", "kind", "pointwise", "partials", "transpose", "jvp",
                 "vjp", "shape", "sympy", "c", "c_domain", "domain", "kink", "sample", "complex_ok", "cimpl",
                 "infix", "prec", "spell", "arity", "doc", "params", "complex_at", "singular",
                 "constant_partials", "period", "commutative", "selects")

    def __init__(self, name, nargs, impl, kind="elementwise", partials=None, transpose=None,
                 jvp=None, vjp=None, shape=None, sympy=None, c=None, domain=None, kink=None,
                 sample="real", complex_ok=True, cimpl=None, infix=None, prec=None, spell=(),
                 arity=None, doc=None, pointwise=None, params=(), complex_at=None, singular=False,
                 c_domain=None, period=None, commutative=False, selects=False):
        assert kind in KINDS, kind
        self.period, self.commutative, self.selects = period, commutative, selects
        self.name, self.nargs, self.impl, self.kind = name, nargs, impl, kind
        self.pointwise = kind in ("elementwise", "zero") if pointwise is None else pointwise
        self.partials, self.transpose, self.jvp, self.vjp = partials, transpose, jvp, vjp
        self.shape, self.sympy, self.c, self.domain, self.kink = shape, sympy, c, domain, kink
        self.c_domain = c_domain
        assert (c_domain is None) == (domain is None) or c is None, f"{name}: domain and c_domain go together"
        self.sample, self.complex_ok, self.cimpl = sample, complex_ok, cimpl
        self.infix, self.prec, self.doc, self.params = infix, prec, doc, tuple(params)
        self.spell, self.complex_at, self.singular = tuple(spell), complex_at, singular
        # partials that never look at values (add, sub, neg): the sweep keeps no values for them
        self.constant_partials = bool(partials) and jvp is None and all(
            isinstance(_try(f, nargs), Unit) for f in partials)
        self.arity = arity if arity is not None else (nargs, nargs)

    def __repr__(self):
        return f"Primitive({self.name!r})"


def _try(f, nargs):
    try:
        return f(*([1.0] * (nargs + 1)))
    except Exception:  # a partial that needs real values (or ops not yet defined)
        return None


PRIMS = {}


def bind(name, *args, **params):
    for a in args:
        if isinstance(a, Traced):
            return a.graph.apply(name, args, params)
    return PRIMS[name].impl(*args, **params)


def is_traced(x):
    return isinstance(x, Traced)


def register(name, nargs, impl, **fields):
    """Add a record to the table; returns the op function that applies it."""
    assert name not in PRIMS, name
    PRIMS[name] = Primitive(name, nargs, impl, **fields)
    return op(name)


def op(name):
    if PRIMS[name].nargs == 1:
        f = lambda x, **params: bind(name, x, **params)  # noqa: E731
    elif PRIMS[name].nargs == 2:
        f = lambda x, y, **params: bind(name, x, y, **params)  # noqa: E731
    else:
        f = lambda *xs, **params: bind(name, *xs, **params)  # noqa: E731
    f.__name__ = f.__qualname__ = name
    return f
