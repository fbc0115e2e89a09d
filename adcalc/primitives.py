"""The table: every fact about every function, one record each.

A record (core.Primitive) holds the numpy implementation (taking leading axes of
points and directions: reductions and structural ops are told their operand's
nominal shape `src`), the derivative rules written with the op functions of this
module (so a rule applied to graph nodes builds a graph that differentiates
again), the SymPy counterpart, the C spelling, the parser's spellings and arity,
the domain, the kink predicate with its convention, whether complex step may
difference it, and a line of documentation.  `FUNCTIONS` adds the parser's sugar
(sum, mean, norm, dot, prod, log with a base, n-ary max/min), built from records.
Adding a function is one record here; engines, parser, verify, docs and the tests
read it from the table.

Rule kinds (after JAX's ad.py): partials (elementwise; ONE and MINUS skip the
multiply), zero (piecewise constant), linear (a transpose rule) and custom.
"""
import math
import operator

import numpy as np

from adcalc.core import MINUS, ONE, PRIMS, Quotient, bind, is_traced, register

# np.real without its dispatch (which a numpy number pays dearly for): the domain checks and
# comparisons see arrays or numpy numbers, which all have .real
_re = operator.attrgetter("real")

LN2, LN10, TWO_OVER_SQRTPI = math.log(2.0), math.log(10.0), 2.0 / math.sqrt(math.pi)


def _vec(f):
    """Element-wise application of a math-module function (for functions numpy lacks)."""
    uf = np.frompyfunc(f, 1, 1)
    return lambda x: np.asarray(uf(x), dtype=float) if np.ndim(x) else np.float64(f(float(x)))


def _square(x, y, out=None):
    return np.square(x, out=out)


def _first(x, y, out=None):
    return np.multiply(x, 1.0, out=out)


_square.on_numbers = _first.on_numbers = True   # exact on a number as on an array (evaluate.Program)


def _pow_by(y):
    """The implementation for a real scalar exponent 2 or 1 (x*x, x), else None (np.power)."""
    if np.ndim(y) == 0 and not np.iscomplexobj(y):
        if y == 2:
            return _square
        if y == 1:
            return _first
    return None


def _pow(x, y, out=None):
    f = _pow_by(y)
    return np.power(x, y, out=out) if f is None else f(x, y, out=out)


_pow.takes_out = True   # evaluate may hand it a dead argument's array to write into
# for one node (evaluate.Program): a constant exponent's implementation decided once
_pow.bind = lambda node: _pow_by(node.args[1].value) if node.args[1].op == "const" else None


def _pow_ok(x, y):
    if np.ndim(y) == 0 and not np.iscomplexobj(y):  # constant exponent: one pass at most
        yf = float(y)
        if yf.is_integer():
            return True if yf >= 0 else _re(x) != 0
        return _re(x) > 0 if yf < 0 else _re(x) >= 0
    xr, yr = _re(x), _re(y)
    return ~(((xr < 0) & (yr != np.round(yr))) | ((xr == 0) & (yr < 0)))


def _sigmoid(x):
    if np.iscomplexobj(x):
        return 1 / (1 + np.exp(-x))
    return np.exp(-np.logaddexp(0.0, -x))


def _softplus(x):
    if np.iscomplexobj(x):
        return np.log1p(np.exp(x))
    return np.logaddexp(0.0, x)


def _cbrt_c(z):
    return np.where(np.real(z) >= 0, z ** (1 / 3), -((-z) ** (1 / 3)))


def _f(b):
    return np.asarray(b, dtype=float)


def _zero_at(i=0):
    return lambda *a, **p: a[i] == 0


# ---- comparisons and select (rules of piecewise functions are written with them) ------------
eq = register("eq", 2, lambda x, y: _f(x == y), kind="zero",
              sympy=lambda s, x, y: s.Piecewise((1, s.Eq(x, y)), (0, True)),
              c="(({0}) == ({1}) ? 1.0 : 0.0)", complex_ok=False)
gt = register("gt", 2, lambda x, y: _f(_re(x) > _re(y)), kind="zero",
              sympy=lambda s, x, y: s.Piecewise((1, s.Gt(x, y)), (0, True)),
              c="(({0}) > ({1}) ? 1.0 : 0.0)", complex_ok=False)
ge = register("ge", 2, lambda x, y: _f(_re(x) >= _re(y)), kind="zero",
              sympy=lambda s, x, y: s.Piecewise((1, s.Ge(x, y)), (0, True)),
              c="(({0}) >= ({1}) ? 1.0 : 0.0)", complex_ok=False)


def _select_jvp(node, vals, ans, tans):
    _, ta, tb = tans
    if ta is None and tb is None:
        return None
    return select(vals[0], 0.0 if ta is None else ta, 0.0 if tb is None else tb)


def _select_vjp(node, vals, ans, ct):
    c = vals[0]
    return None, select(c, ct, 0.0), select(c, 0.0, ct)


# select(c, a, b): a where c != 0, else b; only the chosen side's tangent passes (no 0*inf)
select = register("select", 3, lambda c, a, b: np.where(c != 0, a, b), kind="custom",
                  pointwise=True, jvp=_select_jvp, vjp=_select_vjp,
                  sympy=lambda s, c, a, b: s.Piecewise((a, s.Ne(c, 0)), (b, True)),
                  c="(({0}) != 0.0 ? ({1}) : ({2}))", complex_ok=False)

# ---- elementwise, binary ----------------------------------------------------------------------
add = register("add", 2, np.add, partials=(lambda x, y, a: ONE, lambda x, y, a: ONE),
               sympy=lambda s, x, y: x + y, c="({0} + {1})", infix="+", prec=1, commutative=True)
sub = register("sub", 2, np.subtract, partials=(lambda x, y, a: ONE, lambda x, y, a: MINUS),
               sympy=lambda s, x, y: x - y, c="({0} - {1})", infix="-", prec=1)
mul = register("mul", 2, np.multiply, partials=(lambda x, y, a: y, lambda x, y, a: x),
               sympy=lambda s, x, y: x * y, c="({0} * {1})", infix="*", prec=2, commutative=True)
def _ddiv_dy(x, y, a):
    """-x/y^2 as -a/y (no y^2 to overflow), but as -x/(y y) where a = x/y itself left the
    normal range (5e-324 / 2.3e-9 is a subnormal with 3 digits, while x/y^2 is normal)."""
    use = _moderate(a) + eq(x, 0.0)
    return Quotient(select(use, -a, -x), select(use, y, y * y))


div = register("div", 2, np.divide, partials=(lambda x, y, a: Quotient(ONE, y), _ddiv_dy),
               sympy=lambda s, x, y: x / y, c="({0} / {1})", infix="/", prec=2,
               c_domain="({1}) != 0.0", domain=(lambda x, y: y != 0, "division by zero"), sample="nonzero")


def _const_exponent(y):
    return float(y) if not is_traced(y) and np.ndim(y) == 0 and not np.iscomplexobj(y) else \
        float(y.value) if is_traced(y) and y.op == "const" and not y.shape else None


def _pow_c_domain(node):
    """pow's C domain condition, narrowed like _pow_ok when the exponent is a scalar constant."""
    y = node.args[1]
    if y.op == "const" and not y.shape:
        c = float(y.value)
        if c.is_integer():
            return None if c >= 0 else "({0}) != 0.0"
        return "({0}) > 0.0" if c < 0 else "({0}) >= 0.0"
    return "!((({0}) < 0.0 && ({1}) != floor({1})) || (({0}) == 0.0 && ({1}) < 0.0))"


def _dpow_dx(x, y, a):
    """y x^(y-1) as y a / x (then a tangent multiplies a before x divides: no power of x that
    under- or overflows while x^y is moderate); y x^(y-1) itself where x = 0 or where
    a = x^y itself under- or overflowed."""
    c = _const_exponent(y)
    if c == 2:
        return 2.0 * x
    if c == 1:
        return ONE
    if c is not None and c.is_integer() and 0 < c <= 4:
        return c * x ** (c - 1)
    use = _moderate(a) * (1.0 - eq(x, 0.0))
    return Quotient(select(use, y * a, y * x ** (y - 1.0)), select(use, x, 1.0))


def _moderate(a):
    """1 where 2^-1000 <= |a| <= 2^1000 (a normal number that keeps its digits through a
    division by x), else 0: a power that underflowed (b**1.5 at 1e-219) or overflowed."""
    return (gt(a, 2.0 ** -1000) + gt(-a, 2.0 ** -1000)) * ge(2.0 ** 1000, a) * ge(a, -(2.0 ** 1000))


def _one_minus_sq(x):
    """1 - x^2 with no cancellation: as written for x^2 < 1/4 (its derivative -2x exact
    at tiny x, where (1 - x)(1 + x) differentiates into -(1 + x) + (1 - x) = 0), as
    (1 - x)(1 + x) nearer 1 (exact where x*x would round)."""
    return select(ge(x * x, 0.25), (1.0 - x) * (1.0 + x), 1.0 - x * x)


def _dpow_dy(x, y, a):
    """x^y log x; 0 at x = 0 (x^y stays 0 there for y > 0); undefined (nan) for x < 0."""
    zero = eq(x, 0.0)
    return select(zero, 0.0, a * log(select(zero, 1.0, x)))


def _pow_singular(node):
    c = _const_exponent(node.args[1])
    return not (c is not None and c.is_integer() and c >= 1)


pow = register("pow", 2, _pow, partials=(_dpow_dx, _dpow_dy), singular=_pow_singular,
               sympy=lambda s, x, y: x ** y, c="pow({0}, {1})", infix="**", prec=4,
               spell=("pow",), sample="positive",
               complex_at=lambda x, y, varies: np.all(np.real(x) > 0) or not varies[1] and (
                   np.all(np.real(y) == np.round(np.real(y))) or np.all(np.real(x) != 0)),
               c_domain=_pow_c_domain, domain=(_pow_ok, "power of a negative number to a non-integer exponent, "
                                "or of zero to a negative one"),
               doc="x**y (also x^y); x < 0 needs an integer y")
atan2 = register("atan2", 2, np.arctan2,
                 partials=(lambda y, x, a: Quotient(x / hypot(x, y), hypot(x, y)),
                           lambda y, x, a: Quotient(-(y / hypot(x, y)), hypot(x, y))), singular=True,
                 sympy="atan2", c="atan2({0}, {1})", complex_ok=False, spell=("atan2",),
                 kink=(lambda y, x, a: (y == 0) & (x == 0), "atan2(0, 0) = 0; partials undefined (nan)"),
                 doc="angle of the point (x, y): atan2(y, x)")
def _over_hypot(u, x, y, a):
    """u / hypot(x, y), from 2^600 times each where the hypot is below 2^-1000: the
    hypot of two subnormals (7e-313, 7e-313) has 10 digits, that of the scaled ones 16."""
    big = 2.0 ** 600
    return select(gt(2.0 ** -1000, a), (u * big) / hypot(x * big, y * big), u / a)


hypot = register("hypot", 2, np.hypot, partials=(lambda x, y, a: _over_hypot(x, x, y, a),
                                                 lambda x, y, a: _over_hypot(y, x, y, a)), singular=True,
                 sympy=lambda s, x, y: s.sqrt(x ** 2 + y ** 2), c="hypot({0}, {1})",
                 complex_ok=False, spell=("hypot",),
                 kink=(lambda x, y, a: (x == 0) & (y == 0), "hypot at (0, 0): partials undefined (nan)"),
                 doc="sqrt(x**2 + y**2) without overflow")
# max/min tie: half of the derivative to each side, as jax's _balanced_eq
maximum = register("maximum", 2, np.maximum,
                   partials=(lambda x, y, a: select(gt(x, y), 1.0, select(eq(x, y), 0.5, 0.0)),
                             lambda x, y, a: select(gt(y, x), 1.0, select(eq(x, y), 0.5, 0.0))),
                   sympy="Max", c="((({0}) > ({1}) || ({0}) != ({0})) ? ({0}) : ({1}))", complex_ok=False,
                   kink=(lambda x, y, a: x == y, "a tie x == y gives 1/2 to each side (JAX)"))
minimum = register("minimum", 2, np.minimum,
                   partials=(lambda x, y, a: select(gt(y, x), 1.0, select(eq(x, y), 0.5, 0.0)),
                             lambda x, y, a: select(gt(x, y), 1.0, select(eq(x, y), 0.5, 0.0))),
                   sympy="Min", c="((({0}) < ({1}) || ({0}) != ({0})) ? ({0}) : ({1}))", complex_ok=False,
                   kink=(lambda x, y, a: x == y, "a tie x == y gives 1/2 to each side (JAX)"))

# ---- elementwise, unary -----------------------------------------------------------------------
neg = register("neg", 1, np.negative, partials=(lambda x, a: MINUS,), sympy=lambda s, x: -x,
               c="(-{0})", infix="-", prec=3, selects=True)
exp = register("exp", 1, np.exp, partials=(lambda x, a: a,), sympy="exp", c="exp({0})",
               spell=("exp",), doc="e**x")
expm1 = register("expm1", 1, np.expm1, partials=(lambda x, a: exp(x),),  # not a + 1: it rounds
                 sympy=lambda s, x: s.exp(x) - 1, c="expm1({0})", spell=("expm1",),
                 doc="exp(x) - 1, accurate near 0")
log = register("log", 1, np.log, partials=(lambda x, a: Quotient(ONE, x),), sympy="log", c="log({0})",
               c_domain="({0}) > 0.0", domain=(lambda x: _re(x) > 0, "log of a non-positive number"), sample="positive",
               doc="natural logarithm; log(x, base) divides by log(base)")
log1p = register("log1p", 1, np.log1p, partials=(lambda x, a: Quotient(ONE, x + 1.0),),
                 sympy=lambda s, x: s.log(1 + x), c="log1p({0})", spell=("log1p",),
                 c_domain="({0}) > -1.0", domain=(lambda x: _re(x) > -1, "log1p of a number at or below -1"),
                 sample="positive", doc="log(1 + x), accurate near 0")
log2 = register("log2", 1, np.log2, partials=(lambda x, a: Quotient(1 / LN2, x),),
                sympy=lambda s, x: s.log(x, 2), c="log2({0})", spell=("log2",),
                c_domain="({0}) > 0.0", domain=(lambda x: _re(x) > 0, "log2 of a non-positive number"),
                sample="positive", doc="base-2 logarithm")
log10 = register("log10", 1, np.log10, partials=(lambda x, a: Quotient(1 / LN10, x),),
                 sympy=lambda s, x: s.log(x, 10), c="log10({0})", spell=("log10",),
                 c_domain="({0}) > 0.0", domain=(lambda x: _re(x) > 0, "log10 of a non-positive number"),
                 sample="positive", doc="base-10 logarithm")
sqrt = register("sqrt", 1, np.sqrt, partials=(lambda x, a: Quotient(0.5, a),), singular=True, sympy="sqrt", c="sqrt({0})",
                complex_at=lambda x, varies: np.all(np.real(x) > 0),
                c_domain="({0}) >= 0.0", domain=(lambda x: _re(x) >= 0, "sqrt of a negative number"), sample="positive",
                spell=("sqrt",), doc="square root; its slope at 0 is infinite")
cbrt = register("cbrt", 1, np.cbrt, partials=(lambda x, a: Quotient(1 / 3, a, a),), singular=True,
                sympy=lambda s, x: s.sign(x) * s.Abs(x) ** s.Rational(1, 3), c="cbrt({0})",
                cimpl=_cbrt_c, spell=("cbrt",), complex_at=lambda x, varies: np.all(np.real(x) != 0), doc="real cube root; its slope at 0 is infinite")
sin = register("sin", 1, np.sin, partials=(lambda x, a: cos(x),), sympy="sin", c="sin({0})", period=2 * math.pi,
               spell=("sin",), doc="sine (radians)")
cos = register("cos", 1, np.cos, partials=(lambda x, a: -sin(x),), sympy="cos", c="cos({0})", period=2 * math.pi,
               spell=("cos",), doc="cosine (radians)")
tan = register("tan", 1, np.tan, partials=(lambda x, a: 1.0 + a * a,), sympy="tan", c="tan({0})", period=math.pi,
               sample="unit", spell=("tan",), doc="tangent (radians)")
asin = register("asin", 1, np.arcsin, partials=(lambda x, a: Quotient(ONE, sqrt(_one_minus_sq(x))),), singular=True,
                sympy="asin", c="asin({0})", sample="unit", spell=("asin",),
                complex_at=lambda x, varies: np.all(np.abs(np.real(x)) < 1),
                c_domain="fabs({0}) <= 1.0", domain=(lambda x: np.abs(_re(x)) <= 1, "asin of a number outside [-1, 1]"),
                doc="inverse sine; infinite slope at -1 and 1")
acos = register("acos", 1, np.arccos, partials=(lambda x, a: Quotient(-1.0, sqrt(_one_minus_sq(x))),), singular=True,
                sympy="acos", c="acos({0})", sample="unit", spell=("acos",),
                complex_at=lambda x, varies: np.all(np.abs(np.real(x)) < 1),
                c_domain="fabs({0}) <= 1.0", domain=(lambda x: np.abs(_re(x)) <= 1, "acos of a number outside [-1, 1]"),
                doc="inverse cosine; infinite slope at -1 and 1")
atan = register("atan", 1, np.arctan, partials=(lambda x, a: Quotient(ONE, hypot(x, 1.0), hypot(x, 1.0)),),
                sympy="atan", c="atan({0})", spell=("atan",), doc="inverse tangent")
sinh = register("sinh", 1, np.sinh, partials=(lambda x, a: cosh(x),), sympy="sinh", c="sinh({0})",
                spell=("sinh",), doc="hyperbolic sine")
cosh = register("cosh", 1, np.cosh, partials=(lambda x, a: sinh(x),), sympy="cosh", c="cosh({0})",
                spell=("cosh",), doc="hyperbolic cosine")
# tanh' and sigmoid' not as 1-a^2 and a(1-a): those cancel to 0 once a rounds to 1
def _sech2(x, a):
    """tanh' as 1 - tanh^2 for |x| < 1 (its derivative -2 tanh tanh' is exact near 0) and as
    4 e^(-2|x|) / (1 + e^(-2|x|))^2 beyond (no cancellation once tanh rounds to 1, and it
    underflows to 0 at large |x| with no inf / inf in its own derivatives)."""
    small = gt(1.0, abs(x))
    e = exp(-2.0 * abs(select(small, 1.0, x)))
    return select(small, 1.0 - a * a, 4.0 * e / ((1.0 + e) * (1.0 + e)))


tanh = register("tanh", 1, np.tanh, partials=(_sech2,),
                sympy="tanh", c="tanh({0})", spell=("tanh",), doc="hyperbolic tangent")
asinh = register("asinh", 1, np.arcsinh, partials=(lambda x, a: Quotient(ONE, hypot(x, 1.0)),),
                 sympy="asinh", c="asinh({0})", spell=("asinh",), doc="inverse hyperbolic sine")
acosh = register("acosh", 1, np.arccosh, partials=(lambda x, a: Quotient(ONE, sqrt(x - 1.0), sqrt(x + 1.0)),),
                 singular=True,
                 sympy="acosh", c="acosh({0})", sample="ge1", spell=("acosh",),
                 complex_at=lambda x, varies: np.all(np.real(x) > 1),
                 c_domain="({0}) >= 1.0", domain=(lambda x: _re(x) >= 1, "acosh of a number below 1"),
                 doc="inverse hyperbolic cosine; infinite slope at 1")
atanh = register("atanh", 1, np.arctanh, partials=(lambda x, a: Quotient(ONE, _one_minus_sq(x)),),
                 sympy="atanh", c="atanh({0})", sample="unit", spell=("atanh",),
                 c_domain="fabs({0}) < 1.0", domain=(lambda x: np.abs(_re(x)) < 1, "atanh of a number outside (-1, 1)"),
                 doc="inverse hyperbolic tangent")
erf = register("erf", 1, _vec(math.erf), partials=(lambda x, a: TWO_OVER_SQRTPI * exp(-(x * x)),),
               sympy="erf", c="erf({0})", complex_ok=False, spell=("erf",), doc="error function")
erfc = register("erfc", 1, _vec(math.erfc), partials=(lambda x, a: -TWO_OVER_SQRTPI * exp(-(x * x)),),
                sympy="erfc", c="erfc({0})", complex_ok=False, spell=("erfc",),
                doc="complementary error function 1 - erf(x), accurate for large x")
sigmoid = register("sigmoid", 1, _sigmoid, partials=(lambda x, a: a * sigmoid(-x),),
                   sympy=lambda s, x: 1 / (1 + s.exp(-x)), c="(1.0 / (1.0 + exp(-({0}))))",
                   spell=("sigmoid",), doc="logistic function 1/(1 + exp(-x))")
softplus = register("softplus", 1, _softplus, partials=(lambda x, a: sigmoid(x),),
                    sympy=lambda s, x: s.log(1 + s.exp(x)),
                    c="(fmax({0}, 0.0) + log1p(exp(-fabs({0}))))", spell=("softplus",),
                    doc="log(1 + exp(x)) without overflow")
def _sinc(x):
    return np.where(x == 0, 1.0, np.sin(x) / np.where(x == 0, 1.0, x))


def _dsinc(x, a):
    """(cos x - sinc x) / x away from 0; its Taylor series (exact to rounding) for x^2 < 1/4,
    where the quotient cancels.  The quotient sees x only where it is used (JAX's double
    where), so no 0/0 reaches a derivative of any order."""
    big = ge(x * x, 0.25)
    safe = select(big, x, 1.0)
    x2 = x * x
    series = x * (-1 / 3 + x2 * (1 / 30 + x2 * (-1 / 840 + x2 * (1 / 45360 + x2 * (
        -1 / 3991680 + x2 * (1 / 518918400 + x2 * (-1 / 93405312000 + x2 / 22230464256000)))))))
    return select(big, (cos(safe) - sinc(safe)) / safe, series)


# unnormalised: sin(x)/x (numpy's np.sinc is sin(pi x)/(pi x)); sinc(0) = 1, sinc''(0) = -1/3
sinc = register("sinc", 1, _sinc, partials=(_dsinc,), sympy="sinc",
                c="((({0}) == 0.0) ? 1.0 : sin({0}) / ({0}))", spell=("sinc",),
                doc="sin(x)/x, unnormalised (numpy's sinc is sin(pi x)/(pi x)); sinc(0) = 1")
abs = register("abs", 1, np.abs, partials=(lambda x, a: select(ge(x, 0.0), 1.0, -1.0),),
               sympy="Abs", c="fabs({0})", complex_ok=False, spell=("abs",),
               kink=(_zero_at(), "abs'(0) = +1 (JAX)"), doc="absolute value", selects=True)
relu = register("relu", 1, lambda x: np.maximum(x, 0.0), partials=(lambda x, a: select(gt(x, 0.0), 1.0, 0.0),),
                sympy=lambda s, x: s.Max(x, 0), c="((({0}) > 0.0 || ({0}) != ({0})) ? ({0}) : 0.0)", complex_ok=False, spell=("relu",),
                kink=(_zero_at(), "relu'(0) = 0 (JAX)"), doc="max(x, 0)", selects=True)
sign = register("sign", 1, np.sign, kind="zero", sympy="sign", c="(({0}) > 0.0 ? 1.0 : ({0}) < 0.0 ? -1.0 : ({0}) == 0.0 ? 0.0 : ({0}))",
                complex_ok=False, spell=("sign",),
                kink=(_zero_at(), "sign' = 0, also at 0 where sign jumps (JAX)"),
                doc="-1, 0 or 1")


# ---- structural ops: linear; they take the nominal shape `src` of their operand ---------------
def _lead(x, src):
    return np.ndim(x) - len(src)


def _summed(shape, src):
    """The axes of a value of shape `src` (after the leading ones) that sum_to sums to `shape`."""
    extra = len(src) - len(shape)
    return tuple(range(extra)) + tuple(extra + i for i, (a, b) in enumerate(zip(src[extra:], shape)) if b == 1 and a != 1)


def _sum_to(x, shape, src):
    lead = _lead(x, src)
    axes = tuple(lead + a for a in _summed(shape, src))
    if not axes:
        return x
    out = np.sum(x, axis=axes, keepdims=True)
    return np.reshape(out, np.shape(x)[:lead] + tuple(shape))


def _bind_sum_to(node):
    """_sum_to for one node (evaluate.Program): the axes decided once; a node that reduces
    always returns a new array (`fresh`), never a view of its operand."""
    shape, src = tuple(node.p["shape"]), tuple(node.p["src"])
    axes = _summed(shape, src)
    if not axes:
        return None
    ndim = len(src)

    def sum_to(x):
        lead = x.ndim - ndim
        out = np.add.reduce(x, axis=tuple(lead + a for a in axes), keepdims=bool(shape))
        return out if not shape or out.shape[lead:] == shape else out.reshape(x.shape[:lead] + shape)
    sum_to.fresh = True
    return sum_to


_sum_to.bind = _bind_sum_to


def _broadcast(x, shape, src):
    lead = _lead(x, src)
    xs = np.shape(x)
    x = np.reshape(x, xs[:lead] + (1,) * (len(shape) - len(src)) + tuple(src))
    return np.broadcast_to(x, xs[:lead] + tuple(shape))


def _reshape(x, shape, src):
    return np.reshape(x, np.shape(x)[:_lead(x, src)] + tuple(shape))


def _bind_reshape(node):
    """_reshape for one node (evaluate.Program): the target's trailing shape decided once."""
    shape, nsrc = tuple(node.p["shape"]), len(node.p["src"])

    def reshape(x):
        return x.reshape(x.shape[:x.ndim - nsrc] + shape) if type(x) is np.ndarray else _reshape(x, shape, node.p["src"])
    return reshape


_reshape.bind = _bind_reshape


def _transpose(x, src):
    lead = _lead(x, src)
    return np.transpose(x, tuple(range(lead)) + tuple(range(np.ndim(x) - 1, lead - 1, -1)))


def full_index(idx, src):
    return (Ellipsis,) + tuple(idx) + (slice(None),) * (len(src) - len(idx))


def _getitem(x, idx, src):
    return np.asarray(x)[full_index(idx, src)]


def _index_shape(shapes, idx, src):
    return np.empty(shapes[0], dtype=np.int8)[tuple(idx)].shape


def _scatter(x, idx, shape, out=None):
    if out is None:
        lead = np.ndim(x) - len(_index_shape([shape], idx, shape))
        out = np.zeros(np.shape(x)[:lead] + tuple(shape), dtype=np.result_type(x, float))
    else:
        out.fill(0.0)
    out[full_index(idx, shape)] = x
    return out


_scatter.takes_out = True   # evaluate may hand it an array of the result's shape to write into


def _stack(*xs, src):
    xs = np.broadcast_arrays(*xs)
    return np.stack(xs, axis=np.ndim(xs[0]) - len(src))


def _concat(*xs, srcs):
    xs = [np.asarray(x) for x in xs]
    lead = np.broadcast_shapes(*[np.shape(x)[:_lead(x, s)] for x, s in zip(xs, srcs)])
    return np.concatenate([np.broadcast_to(x, lead + tuple(s)) for x, s in zip(xs, srcs)], axis=len(lead))


def _bind_concat(node):
    """_concat for one node (evaluate.Program): one np.concatenate when the pieces carry the
    same leading axes (the usual case), the general path otherwise."""
    srcs = tuple(tuple(s) for s in node.p["srcs"])
    dims = [len(s) for s in srcs]

    def concat(*xs):
        lead = None
        for x, d in zip(xs, dims):
            if type(x) is not np.ndarray:
                return _concat(*xs, srcs=srcs)
            own = x.shape[:x.ndim - d]
            if lead is None:
                lead = own
            elif own != lead:
                return _concat(*xs, srcs=srcs)
        return np.concatenate(xs, axis=len(lead))
    concat.fresh = True
    return concat


_concat.bind = _bind_concat


def _concat_t(ct, node):
    out, pos = [], 0
    for a in node.args:
        out.append(getitem(ct, idx=(slice(pos, pos + a.shape[0]),), src=node.shape))
        pos += a.shape[0]
    return tuple(out)


sum_to = register("sum_to", 1, _sum_to, kind="linear", shape=lambda shapes, shape, src: tuple(shape),
                  transpose=lambda ct, node: (broadcast(ct, shape=node.args[0].shape, src=node.shape),))
broadcast = register("broadcast", 1, _broadcast, kind="linear",
                     shape=lambda shapes, shape, src: tuple(shape),
                     transpose=lambda ct, node: (sum_to(ct, shape=node.args[0].shape, src=node.shape),), selects=True)
reshape = register("reshape", 1, _reshape, kind="linear", shape=lambda shapes, shape, src: tuple(shape),
                   transpose=lambda ct, node: (reshape(ct, shape=node.args[0].shape, src=node.shape),), selects=True)
transpose = register("transpose", 1, _transpose, kind="linear", shape=lambda shapes, src: tuple(src[::-1]),
                     transpose=lambda ct, node: (transpose(ct, src=node.shape),), selects=True)
getitem = register("getitem", 1, _getitem, kind="linear", shape=_index_shape,
                   transpose=lambda ct, node: (scatter(ct, idx=node.p["idx"], shape=node.args[0].shape),), selects=True)
scatter = register("scatter", 1, _scatter, kind="linear", shape=lambda shapes, idx, shape: tuple(shape),
                   transpose=lambda ct, node: (getitem(ct, idx=node.p["idx"], src=node.shape),))
stack = register("stack", None, _stack, kind="linear",
                 shape=lambda shapes, src: (len(shapes),) + tuple(src),
                 transpose=lambda ct, node: tuple(getitem(ct, idx=(i,), src=node.shape)
                                                  for i in range(len(node.args))), selects=True)
concat = register("concat", None, _concat, kind="linear",
                  shape=lambda shapes, srcs: (sum(s[0] for s in shapes),), transpose=_concat_t, selects=True)


def expand(t, src, rank):
    """Insert axes after the leading (batch) axes of array `t` so its nominal rank becomes
    `rank`; nodes need no such help (the graph broadcasts by nominal shapes)."""
    if is_traced(t) or len(src) >= rank:
        return t
    lead = np.ndim(t) - len(src)
    return np.reshape(t, np.shape(t)[:lead] + (1,) * (rank - len(src)) + tuple(src))


# ---- reductions with their own rules ------------------------------------------------------------
def _axes(x, src):
    return tuple(range(_lead(x, src), np.ndim(x)))


def _chooser(reduce):
    return lambda x, src: reduce(x, axis=_axes(x, src)) if src else x * 1.0


def _tie_weights(x, ans, src):
    """Weights of the entries equal to the result: averaged over ties (JAX)."""
    mask = eq(x, expand(ans, (), len(src)))
    return mask / expand(sum_to(mask, shape=(), src=src), (), len(src))


def _chooser_vjp(node, vals, ans, ct):
    src = node.args[0].shape
    return (expand(ct, (), len(src)) * _tie_weights(vals[0], ans, src),)


def _chooser_jvp(node, vals, ans, tans):
    src = node.args[0].shape
    return sum_to(tans[0] * _tie_weights(vals[0], ans, src), shape=(), src=src)


def _tie(x, ans, src):
    return np.sum(x == expand(ans, (), len(src)), axis=_axes(x, src)) > 1


def _reduction_sympy(f):
    return lambda s, x: f(s, x) if isinstance(x, list) else x


register("max", 1, _chooser(np.max), kind="custom", jvp=_chooser_jvp, vjp=_chooser_vjp,
         shape=lambda shapes, src: (), sympy=_reduction_sympy(lambda s, x: s.Max(*x)), complex_ok=False,
         kink=(lambda x, ans, src: _tie(x, ans, src), "a tie averages the derivative over the tied entries (JAX)"),
         params=("src",), selects=True)
register("min", 1, _chooser(np.min), kind="custom", jvp=_chooser_jvp, vjp=_chooser_vjp,
         shape=lambda shapes, src: (), sympy=_reduction_sympy(lambda s, x: s.Min(*x)), complex_ok=False,
         kink=(lambda x, ans, src: _tie(x, ans, src), "a tie averages the derivative over the tied entries (JAX)"),
         params=("src",), selects=True)


def _others_sum(x, src):
    """Per entry, the sum of all the other entries (exclusive prefix plus suffix sums): no
    total minus a nearly equal entry, so 1 - p stays exact where p rounds to 1."""
    lead = _lead(x, src)
    flat = np.reshape(x, np.shape(x)[:lead] + (-1,))
    zero = np.zeros(flat.shape[:-1] + (1,), dtype=flat.dtype)
    before = np.cumsum(np.concatenate([zero, flat[..., :-1]], axis=-1), axis=-1)
    after = np.cumsum(np.concatenate([zero, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    return np.reshape(before + after, np.shape(x))


others_sum = register("others_sum", 1, _others_sum, kind="linear", shape=lambda shapes, src: shapes[0],
                      transpose=lambda ct, node: (others_sum(ct, src=node.shape),), params=("src",))


def _softmax(x, src):
    if not src:
        return np.ones(np.shape(x))
    axes = _axes(x, src)
    e = np.exp(x - np.max(np.real(x), axis=axes, keepdims=True))
    return e / np.sum(e, axis=axes, keepdims=True)


def _softmax_t(t, p, src):
    """p (t - sum(p t)) written as p (t q - others_sum(p t)), q = others_sum(p) = 1 - p: each
    entry's difference is formed from the other entries, never as a cancellation."""
    return p * (t * others_sum(p, src=src) - others_sum(p * t, src=src))


softmax = register("softmax", 1, _softmax, kind="custom", shape=lambda shapes, src: shapes[0], params=("src",),
                   jvp=lambda node, vals, ans, tans: _softmax_t(tans[0], ans, node.shape),
                   vjp=lambda node, vals, ans, ct: (_softmax_t(ct, ans, node.shape),),
                   sympy=None)


def _lse(x, src):
    if not src:
        return x * 1.0
    axes = _axes(x, src)
    m = np.max(np.real(x), axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    top = np.reshape(m, np.shape(m)[:_lead(x, src)])
    if np.iscomplexobj(x):
        return top + np.log(np.sum(np.exp(x - m), axis=axes))
    # log1p of the other terms: log(1 + 2.3e-6) keeps 10 digits, log1p all of them
    # (each maximum contributes exactly 1: a tie's extra ones are counted, not summed)
    tied = x == m
    rest = np.sum(np.where(tied, 0.0, np.exp(x - m)), axis=axes) + (np.sum(tied, axis=axes) - 1)
    return top + np.log1p(rest)


def _lse_vjp(node, vals, ans, ct):
    src = node.args[0].shape
    return (expand(ct, (), len(src)) * softmax(vals[0], src=src),)


def _lse_jvp(node, vals, ans, tans):
    src = node.args[0].shape
    return sum_to(tans[0] * softmax(vals[0], src=src), shape=(), src=src)


logsumexp = register("logsumexp", 1, _lse, kind="custom", jvp=_lse_jvp, vjp=_lse_vjp,
                     shape=lambda shapes, src: (), spell=("logsumexp",), params=("src",),
                     sympy=_reduction_sympy(lambda s, x: s.log(s.Add(*[s.exp(v) for v in x]))),
                     doc="log(sum(exp(x))) without overflow")


def _norm(x, src):
    """sqrt(sum(x^2)) scaled by the largest |entry|: no overflow at 1e200, no underflow at
    1e-200."""
    if not src:
        return np.abs(x) * 1.0
    axes = _axes(x, src)
    m = np.max(np.abs(x), axis=axes, keepdims=True)
    safe = np.where((m > 0) & np.isfinite(m), m, 1.0)
    out = safe * np.sqrt(np.sum(np.abs(x / safe) ** 2, axis=axes, keepdims=True))
    out = np.where(np.isinf(m), np.inf, out)
    return np.reshape(out, np.shape(out)[:_lead(x, src)])


def _norm_vjp(node, vals, ans, ct):
    src = node.args[0].shape
    return (expand(ct, (), len(src)) * (vals[0] / expand(ans, (), len(src))),)


def _norm_jvp(node, vals, ans, tans):
    src = node.args[0].shape
    return sum_to(tans[0] * (vals[0] / expand(ans, (), len(src))), shape=(), src=src)


register("norm", 1, _norm, kind="custom", jvp=_norm_jvp, vjp=_norm_vjp, shape=lambda shapes, src: (),
         params=("src",), spell=("norm",), complex_ok=False, singular=True,
         sympy=_reduction_sympy(lambda s, x: s.sqrt(s.Add(*[v ** 2 for v in x]))),
         kink=(lambda x, ans, src: ans == 0, "norm at 0: the derivative is undefined (nan)"),
         doc="Euclidean norm sqrt(sum(x**2)), without overflow or underflow")


# ---- matrix product (bilinear, 2-D x 2-D; matmul() below reshapes vectors) ---------------------
def _mm_shape(shapes):
    (p, q), (q2, r) = shapes
    if q != q2:
        raise ValueError(f"matrix product of shapes {list(shapes[0])} and {list(shapes[1])}")
    return (p, r)


def _mm_jvp(node, v, ans, t):
    a = None if t[0] is None else mm(t[0], v[1])
    b = None if t[1] is None else mm(v[0], t[1])
    return b if a is None else a if b is None else a + b


_ONE_PRODUCT_FROM = 1 << 24   # a.size * b.size: smaller stacks keep numpy's loop (and its rounding)


def _matmul(a, b):
    """np.matmul, with one matrix against a stack of many done as one BLAS product: numpy
    loops over a broadcast stack item by item, without BLAS when an operand is a transposed
    view (a Jacobian's 1000 cotangents through A @ x took 7 s, as one product 0.1 s)."""
    a, b = np.asarray(a), np.asarray(b)
    if (a.ndim >= 2 and b.ndim >= 2 and a.size * b.size >= _ONE_PRODUCT_FROM
            and not (np.iscomplexobj(a) or np.iscomplexobj(b))):
        la, lb = a.shape[:-2], b.shape[:-2]
        one_a, one_b = math.prod(la) == 1, math.prod(lb) == 1
        if one_a and not one_b:                    # A (p, q) against B (L.., q, r)
            A = a.reshape(a.shape[-2:])
            q, r = b.shape[-2:]
            B = np.moveaxis(b.reshape((-1, q, r)), 0, 1).reshape((q, -1))
            C = (A @ B).reshape((A.shape[0], -1, r))
            return np.moveaxis(C, 1, 0).reshape(np.broadcast_shapes(la, lb) + (A.shape[0], r))
        if one_b and not one_a:                    # A (L.., p, q) against B (q, r)
            B = b.reshape(b.shape[-2:])
            p, q = a.shape[-2:]
            return (a.reshape((-1, q)) @ B).reshape(np.broadcast_shapes(la, lb) + (p, B.shape[1]))
    return np.matmul(a, b)


register("matmul", 2, _matmul, kind="custom", shape=_mm_shape, jvp=_mm_jvp,
         vjp=lambda node, v, ans, ct, need=(True, True): (
             mm(ct, transpose(v[1], src=node.args[1].shape)) if need[0] else None,
             mm(transpose(v[0], src=node.args[0].shape), ct) if need[1] else None),
         sympy=lambda s, a, b: a * b, infix="@", prec=2)


def mm(a, b):
    return bind("matmul", a, b)


# ---- helpers over the records (shape-aware; used by rules, parser and engines) -----------------
def shape_of(x):
    return x.shape if is_traced(x) else np.shape(x)


def matmul(a, b):
    """numpy's matmul/dot for operands of rank 0, 1 or 2, built from the 2-D primitive."""
    sa, sb = tuple(shape_of(a)), tuple(shape_of(b))
    if not sa or not sb:
        return a * b
    if len(sa) > 2 or len(sb) > 2:
        raise ValueError("matrix products of arrays of rank above 2 are not supported")
    if sa[-1] != sb[0 if len(sb) == 1 else -2]:
        raise ValueError(f"a matrix product needs the last axis of the first ({list(sa)}) to match "
                         f"the {'only' if len(sb) == 1 else 'first'} axis of the second ({list(sb)})")
    a2 = reshape(a, shape=(1,) + sa, src=sa) if len(sa) == 1 else a
    b2 = reshape(b, shape=sb + (1,), src=sb) if len(sb) == 1 else b
    out = mm(a2, b2)
    shape = sa[:-1] + sb[1:]
    return reshape(out, shape=shape, src=shape_of(out)) if len(sa) == 1 or len(sb) == 1 else out


def total(x):
    return sum_to(x, shape=(), src=shape_of(x))


def stack_all(xs):
    """Stack equally shaped (or broadcastable) values along a new first axis."""
    shapes = [tuple(shape_of(x)) for x in xs]
    src = tuple(np.broadcast_shapes(*shapes))
    xs = [broadcast(x, shape=src, src=s) if s != src else x for x, s in zip(xs, shapes)]
    return stack(*xs, src=src)


def product(x):
    """prod(x) as a balanced tree of multiplications over halves of the entries: division-free,
    so every derivative of every order is exact, also at zero or subnormal entries."""
    shape = tuple(shape_of(x))
    if not shape:
        return x * 1.0
    n = int(np.prod(shape))
    if n == 0:
        return 1.0
    if len(shape) > 1:
        x = reshape(x, shape=(n,), src=shape)
    while n > 1:
        half = n // 2
        pairs = getitem(x, idx=(slice(0, 2 * half, 2),), src=(n,)) * \
            getitem(x, idx=(slice(1, 2 * half, 2),), src=(n,))
        if n % 2:
            pairs = concat(pairs, getitem(x, idx=(slice(n - 1, n),), src=(n,)), srcs=((half,), (1,)))
        x, n = pairs, half + n % 2
    return reshape(x, shape=(), src=(1,))


def _nary(elementwise, reduction):
    def f(*xs):
        if len(xs) == 1:
            return bind(reduction, xs[0], src=tuple(shape_of(xs[0])))
        out = xs[0]
        for x in xs[1:]:
            out = elementwise(out, x)
        return out
    return f


class Function:
    """A name the parser accepts: a record's op, or sugar built from records."""

    __slots__ = ("name", "arity", "build", "doc", "kink")

    def __init__(self, name, arity, build, doc, kink=None):
        self.name, self.arity, self.build, self.doc, self.kink = name, arity, build, doc, kink


FUNCTIONS = {}
for _p in PRIMS.values():
    for _s in _p.spell:
        FUNCTIONS[_s] = Function(_s, _p.arity, (lambda n: lambda *a: bind(n, *a, **(
            {"src": tuple(shape_of(a[0]))} if "src" in PRIMS[n].params else {})))(_p.name),
            _p.doc, _p.kink[1] if _p.kink else None)


def _sugar(name, arity, build, doc, kink=None):
    FUNCTIONS[name] = Function(name, arity, build, doc, kink)


_sugar("log", (1, 2), lambda x, base=None: log(x) if base is None else log(x) / log(base),
       PRIMS["log"].doc)
_sugar("max", (1, None), _nary(maximum, "max"),
       "max(x) of an array's entries; max(a, b, ...) entry by entry",
       "a tie gives 1/2 to each side; in max(x) the tied entries share the derivative (JAX)")
_sugar("min", (1, None), _nary(minimum, "min"),
       "min(x) of an array's entries; min(a, b, ...) entry by entry",
       "a tie gives 1/2 to each side; in min(x) the tied entries share the derivative (JAX)")
_sugar("sum", (1, 1), total, "sum of the entries")
_sugar("mean", (1, 1), lambda x: total(x) / float(max(1, int(np.prod(shape_of(x))))),
       "mean of the entries")
_sugar("prod", (1, 1), product, "product of the entries (exact derivatives of every order, also at 0)")

_sugar("dot", (2, 2), matmul, "dot product, matrix-vector or matrix product (as numpy.dot)")

INFIX = {p.infix: p.name for p in PRIMS.values() if p.infix and p.nargs == 2}

for _p in PRIMS.values():  # completeness: every record can be evaluated and differentiated
    assert _p.impl is not None, _p.name
    assert {"elementwise": _p.partials, "linear": _p.transpose, "zero": True,
            "custom": _p.jvp and _p.vjp}[_p.kind], _p.name
    if _p.pointwise:
        assert _p.c and _p.sympy, _p.name
        assert _p.kind != "elementwise" or len(_p.partials) == _p.nargs, _p.name
    assert not _p.spell or _p.doc, _p.name
