"""The table of primitives: every engine derives its behaviour from these records.

A record holds the numpy implementation, the derivative rule(s) written with the
polymorphic op namespace (so a rule applied to graph nodes builds a graph that can
be differentiated again), the SymPy counterpart, the C/CUDA spelling, the domain
and the convention at kinks.  Adding a function is adding one record here.

Rule kinds (after JAX's ad.py):
  partials   elementwise op: one function per argument, f(*args, ans) -> dans/darg;
             ONE and MINUS stand for the constants 1 and -1 (no multiply is emitted).
  linear     structural op, linear in its arguments: `transpose(ct, node)` gives the
             cotangent of each argument; forward mode applies the op to tangents.
  custom     `jvp(node, vals, ans, tans)` and `vjp(node, vals, ans, ct)`.
  zero       piecewise constant (sign, step, eq): derivative 0 everywhere it exists.

Implementations of structural ops accept leading batch axes, so tangents and
cotangents of many directions travel through them at once.
"""
import math

import numpy as np



class Unit(float):
    """The constants 1 and -1 returned by a partial: the sweep skips the multiply."""


ONE, MINUS = Unit(1.0), Unit(-1.0)


class Primitive:
    __slots__ = ("name", "nargs", "impl", "kind", "partials", "transpose", "jvp", "vjp",
                 "shape", "sympy", "c", "domain", "kink", "sample", "analytic", "cimpl",
                 "infix", "prec")

    def __init__(self, name, nargs, impl, kind="elementwise", partials=None, transpose=None,
                 jvp=None, vjp=None, shape=None, sympy=None, c=None, domain=None, kink=None,
                 sample="real", analytic=True, cimpl=None, infix=None, prec=None):
        self.name, self.nargs, self.impl, self.kind = name, nargs, impl, kind
        self.partials, self.transpose, self.jvp, self.vjp = partials, transpose, jvp, vjp
        self.shape, self.sympy, self.c, self.domain, self.kink = shape, sympy, c, domain, kink
        self.sample, self.analytic, self.cimpl = sample, analytic, cimpl
        self.infix, self.prec = infix, prec

    def __repr__(self):
        return f"Primitive({self.name!r})"


PRIMS = {}


def prim(name, nargs, impl, **kw):
    PRIMS[name] = p = Primitive(name, nargs, impl, **kw)
    return p


def _vec(f):
    """Element-wise application of a math-module function (for functions numpy lacks)."""
    uf = np.frompyfunc(f, 1, 1)
    return lambda x: np.asarray(uf(x), dtype=float) if np.ndim(x) else np.float64(f(float(x)))


def _pow(x, y):
    if np.ndim(y) == 0 and not np.iscomplexobj(y):
        if y == 2:
            return np.square(x)
        if y == 1:
            return x * 1.0
    return np.power(x, y)


def _pow_ok(x, y):
    if np.ndim(y) == 0 and not np.iscomplexobj(y):  # constant exponent: one pass at most
        yf = float(y)
        if yf.is_integer():
            return True if yf >= 0 else np.real(x) != 0
        return np.real(x) > 0 if yf < 0 else np.real(x) >= 0
    xr, yr = np.real(x), np.real(y)
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


LN2, LN10, TWO_OVER_SQRTPI = math.log(2.0), math.log(10.0), 2.0 / math.sqrt(math.pi)
def _r(x):
    return o.div(1.0, x)



# ---- elementwise, binary -------------------------------------------------------------
prim("add", 2, np.add, partials=(lambda x, y, a: ONE, lambda x, y, a: ONE),
     sympy=lambda s, x, y: x + y, c="({0} + {1})", infix="+", prec=1)
prim("sub", 2, np.subtract, partials=(lambda x, y, a: ONE, lambda x, y, a: MINUS),
     sympy=lambda s, x, y: x - y, c="({0} - {1})", infix="-", prec=1)
prim("mul", 2, np.multiply, partials=(lambda x, y, a: y, lambda x, y, a: x),
     sympy=lambda s, x, y: x * y, c="({0} * {1})", infix="*", prec=2)
prim("div", 2, np.divide,
     partials=(lambda x, y, a: _r(y), lambda x, y, a: o.neg(o.div(a, y))),
     sympy=lambda s, x, y: x / y, c="({0} / {1})", infix="/", prec=2,
     domain=(lambda x, y: y != 0, "division by zero"), sample="nonzero")
def _dpow_dx(x, y, a):
    if not o.is_node(y) and np.ndim(y) == 0 and not np.iscomplexobj(y):  # numbers: short forms
        if y == 2:
            return o.mul(2.0, x)
        if y == 1:
            return ONE
    return o.mul(y, o.pow(x, o.sub(y, 1.0)))


prim("pow", 2, _pow,
     partials=(_dpow_dx,
               lambda x, y, a: o.mul(a, o.log(x))),
     sympy=lambda s, x, y: x ** y, c="pow({0}, {1})", infix="**", prec=4,
     domain=(_pow_ok, "power of a negative number to a non-integer exponent, or of zero to a negative one"),
     sample="positive")
prim("atan2", 2, np.arctan2,
     partials=(lambda y, x, a: o.div(x, o.add(o.mul(x, x), o.mul(y, y))),
               lambda y, x, a: o.neg(o.div(y, o.add(o.mul(x, x), o.mul(y, y))))),
     sympy="atan2", c="atan2({0}, {1})", analytic=False,
     kink="atan2(0, 0) = 0 with both partials undefined (nan)")
prim("hypot", 2, np.hypot,
     partials=(lambda x, y, a: o.div(x, a), lambda x, y, a: o.div(y, a)),
     sympy=lambda s, x, y: s.sqrt(x ** 2 + y ** 2), c="hypot({0}, {1})", analytic=False,
     kink="hypot at (0, 0): partials undefined (nan)")
# max/min tie: half of the derivative to each argument, as jax's _balanced_eq.
prim("maximum", 2, np.maximum,
     partials=(lambda x, y, a: o.mul(0.5, o.add(1.0, o.sign(o.sub(x, y)))),
               lambda x, y, a: o.mul(0.5, o.sub(1.0, o.sign(o.sub(x, y))))),
     sympy="Max", c="fmax({0}, {1})", analytic=False, kink="tie x == y: 1/2 to each side (JAX)")
prim("minimum", 2, np.minimum,
     partials=(lambda x, y, a: o.mul(0.5, o.sub(1.0, o.sign(o.sub(x, y)))),
               lambda x, y, a: o.mul(0.5, o.add(1.0, o.sign(o.sub(x, y))))),
     sympy="Min", c="fmin({0}, {1})", analytic=False, kink="tie x == y: 1/2 to each side (JAX)")
prim("eq", 2, lambda x, y: (x == y).astype(float), kind="zero",
     sympy=lambda s, x, y: s.Piecewise((1, s.Eq(x, y)), (0, True)),
     c="(({0}) == ({1}) ? 1.0 : 0.0)", analytic=False)

# ---- elementwise, unary --------------------------------------------------------------
prim("neg", 1, np.negative, partials=(lambda x, a: MINUS,), sympy=lambda s, x: -x,
     c="(-{0})", infix="-", prec=3)
prim("exp", 1, np.exp, partials=(lambda x, a: a,), sympy="exp", c="exp({0})")
prim("expm1", 1, np.expm1, partials=(lambda x, a: o.add(a, 1.0),),
     sympy=lambda s, x: s.exp(x) - 1, c="expm1({0})")
prim("log", 1, np.log, partials=(lambda x, a: _r(x),), sympy="log", c="log({0})",
     domain=(lambda x: np.real(x) > 0, "log of a non-positive number"), sample="positive")
prim("log1p", 1, np.log1p, partials=(lambda x, a: _r(o.add(x, 1.0)),),
     sympy=lambda s, x: s.log(1 + x), c="log1p({0})",
     domain=(lambda x: np.real(x) > -1, "log1p of a number at or below -1"), sample="positive")
prim("log2", 1, np.log2, partials=(lambda x, a: _r(o.mul(x, LN2)),),
     sympy=lambda s, x: s.log(x, 2), c="log2({0})",
     domain=(lambda x: np.real(x) > 0, "log2 of a non-positive number"), sample="positive")
prim("log10", 1, np.log10, partials=(lambda x, a: _r(o.mul(x, LN10)),),
     sympy=lambda s, x: s.log(x, 10), c="log10({0})",
     domain=(lambda x: np.real(x) > 0, "log10 of a non-positive number"), sample="positive")
prim("sqrt", 1, np.sqrt, partials=(lambda x, a: o.div(0.5, a),), sympy="sqrt", c="sqrt({0})",
     domain=(lambda x: np.real(x) >= 0, "sqrt of a negative number"), sample="positive",
     kink="sqrt'(0) = inf")
prim("cbrt", 1, np.cbrt, partials=(lambda x, a: o.div(1 / 3, o.mul(a, a)),),
     sympy=lambda s, x: s.sign(x) * s.Abs(x) ** s.Rational(1, 3), c="cbrt({0})",
     cimpl=_cbrt_c, kink="cbrt'(0) = inf")
prim("sin", 1, np.sin, partials=(lambda x, a: o.cos(x),), sympy="sin", c="sin({0})")
prim("cos", 1, np.cos, partials=(lambda x, a: o.neg(o.sin(x)),), sympy="cos", c="cos({0})")
prim("tan", 1, np.tan, partials=(lambda x, a: o.add(1.0, o.mul(a, a)),), sympy="tan",
     c="tan({0})", sample="unit")
prim("asin", 1, np.arcsin, partials=(lambda x, a: _r(o.sqrt(o.sub(1.0, o.mul(x, x)))),),
     sympy="asin", c="asin({0})", sample="unit",
     domain=(lambda x: np.abs(np.real(x)) <= 1, "asin of a number outside [-1, 1]"))
prim("acos", 1, np.arccos, partials=(lambda x, a: o.neg(_r(o.sqrt(o.sub(1.0, o.mul(x, x))))),),
     sympy="acos", c="acos({0})", sample="unit",
     domain=(lambda x: np.abs(np.real(x)) <= 1, "acos of a number outside [-1, 1]"))
prim("atan", 1, np.arctan, partials=(lambda x, a: _r(o.add(1.0, o.mul(x, x))),),
     sympy="atan", c="atan({0})")
prim("sinh", 1, np.sinh, partials=(lambda x, a: o.cosh(x),), sympy="sinh", c="sinh({0})")
prim("cosh", 1, np.cosh, partials=(lambda x, a: o.sinh(x),), sympy="cosh", c="cosh({0})")
# tanh' and sigmoid' not as 1-a^2 and a(1-a): those cancel to 0 once a rounds to 1
prim("tanh", 1, np.tanh, partials=(lambda x, a: o.div(1.0, o.mul(o.cosh(x), o.cosh(x))),), sympy="tanh",
     c="tanh({0})")
prim("asinh", 1, np.arcsinh, partials=(lambda x, a: _r(o.sqrt(o.add(o.mul(x, x), 1.0))),),
     sympy="asinh", c="asinh({0})")
prim("acosh", 1, np.arccosh, partials=(lambda x, a: _r(o.sqrt(o.sub(o.mul(x, x), 1.0))),),
     sympy="acosh", c="acosh({0})", sample="ge1",
     domain=(lambda x: np.real(x) >= 1, "acosh of a number below 1"))
prim("atanh", 1, np.arctanh, partials=(lambda x, a: _r(o.sub(1.0, o.mul(x, x))),),
     sympy="atanh", c="atanh({0})", sample="unit",
     domain=(lambda x: np.abs(np.real(x)) < 1, "atanh of a number outside (-1, 1)"))
prim("erf", 1, _vec(math.erf),
     partials=(lambda x, a: o.mul(TWO_OVER_SQRTPI, o.exp(o.neg(o.mul(x, x)))),),
     sympy="erf", c="erf({0})", analytic=False)
prim("erfc", 1, _vec(math.erfc),
     partials=(lambda x, a: o.mul(-TWO_OVER_SQRTPI, o.exp(o.neg(o.mul(x, x)))),),
     sympy="erfc", c="erfc({0})", analytic=False)
prim("sigmoid", 1, _sigmoid, partials=(lambda x, a: o.mul(a, o.sigmoid(o.neg(x))),),
     sympy=lambda s, x: 1 / (1 + s.exp(-x)), c="(1.0 / (1.0 + exp(-({0}))))")
prim("softplus", 1, _softplus, partials=(lambda x, a: o.sigmoid(x),),
     sympy=lambda s, x: s.log(1 + s.exp(x)), c="(fmax({0}, 0.0) + log1p(exp(-fabs({0}))))")
# abs'(0) = +1, as jax's _abs_jvp_rule (select(x >= 0, g, -g)).
prim("abs", 1, np.abs, partials=(lambda x, a: o.sub(1.0, o.mul(2.0, o.step(o.neg(x)))),),
     sympy="Abs", c="fabs({0})", analytic=False, kink="abs'(0) = +1 (JAX)")
# relu'(0) = 0, as jax.nn.relu.
prim("relu", 1, lambda x: np.maximum(x, 0.0), partials=(lambda x, a: o.step(x),),
     sympy=lambda s, x: s.Max(x, 0), c="fmax({0}, 0.0)", analytic=False,
     kink="relu'(0) = 0 (JAX)")
prim("sign", 1, np.sign, kind="zero", sympy="sign", c="(({0} > 0) - ({0} < 0))",
     analytic=False, kink="sign' = 0, also at 0 (JAX)")
prim("step", 1, lambda x: (x > 0).astype(float), kind="zero",
     sympy=lambda s, x: s.Heaviside(x, 0), c="({0} > 0 ? 1.0 : 0.0)", analytic=False,
     kink="step(x) = 1 for x > 0 else 0; derivative 0")


# ---- reductions with their own rules --------------------------------------------------
def _prod_others(x, src):
    """Product of all other entries, computed without dividing (exact with zeros)."""
    lead = np.ndim(x) - len(src)
    flat = np.reshape(x, np.shape(x)[:lead] + (-1,))
    ones = np.ones(flat.shape[:-1] + (1,), dtype=flat.dtype)
    left = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    return np.reshape(left * right, np.shape(x))


def _prod_vjp(node, vals, ans, ct):
    (x,) = vals
    src = node.args[0].shape
    return (o.mul(o.expand(ct, (), len(src)), o.prod_others(x, src)),)


def _prod_jvp(node, vals, ans, tans):
    (x,), (t,) = vals, tans
    src = node.args[0].shape
    return o.sum_to(o.mul(t, o.prod_others(x, src)), (), src)


prim("prod", 1, lambda x: np.prod(x, axis=None) if np.ndim(x) else x * 1.0, kind="custom",
     jvp=_prod_jvp, vjp=_prod_vjp, shape=lambda shapes: (),
     sympy=lambda s, x: s.Mul(*x) if isinstance(x, list) else x, c=None)


def _po_vjp(node, vals, ans, ct):
    # d(prod of others)_i / dx_j = prod of all but i and j; written via (P - x_j*po_j)/x_j
    # is undefined at zeros, so second derivatives of prod at a zero entry are nan.
    (x,) = vals
    src = node.args[0].shape
    s = o.sum_to(o.mul(ct, ans), (), src)
    return (o.div(o.sub(o.expand(s, (), len(src)), o.mul(ct, ans)), x),)


def _po_jvp(node, vals, ans, tans):
    (x,), (t,) = vals, tans
    src = node.args[0].shape
    s = o.sum_to(o.mul(t, ans), (), src)
    return o.div(o.sub(o.expand(s, (), len(src)), o.mul(t, ans)), x)


prim("prod_others", 1, _prod_others, kind="custom", jvp=_po_jvp, vjp=_po_vjp,
     shape=lambda shapes, src: shapes[0], c=None, sympy=None,
     kink="second derivatives of prod at a zero entry are nan")


def _chooser_vjp(node, vals, ans, ct):
    # tie: the derivative is averaged over the tied entries (JAX _reduce_chooser_jvp_rule)
    (x,) = vals
    src = node.args[0].shape
    mask = o.eq(x, ans)
    return (o.mul(o.expand(ct, (), len(src)), o.div(mask, o.sum_to(mask, (), src))),)


def _chooser_jvp(node, vals, ans, tans):
    (x,), (t,) = vals, tans
    src = node.args[0].shape
    mask = o.eq(x, ans)
    return o.div(o.sum_to(o.mul(t, mask), (), src), o.sum_to(mask, (), src))


prim("max", 1, lambda x: np.max(x) if np.ndim(x) else x * 1.0, kind="custom",
     jvp=_chooser_jvp, vjp=_chooser_vjp, shape=lambda shapes: (),
     sympy=lambda s, x: s.Max(*x) if isinstance(x, list) else x, c=None, analytic=False,
     kink="tie: derivative averaged over the tied entries (JAX)")
prim("min", 1, lambda x: np.min(x) if np.ndim(x) else x * 1.0, kind="custom",
     jvp=_chooser_jvp, vjp=_chooser_vjp, shape=lambda shapes: (),
     sympy=lambda s, x: s.Min(*x) if isinstance(x, list) else x, c=None, analytic=False,
     kink="tie: derivative averaged over the tied entries (JAX)")


def _lse(x):
    if np.ndim(x) == 0:
        return x * 1.0
    m = np.max(np.real(x))
    if not np.isfinite(m):
        m = 0.0
    return m + np.log(np.sum(np.exp(x - m)))


def _lse_vjp(node, vals, ans, ct):
    (x,) = vals
    src = node.args[0].shape
    return (o.mul(o.expand(ct, (), len(src)), o.exp(o.sub(x, ans))),)


def _lse_jvp(node, vals, ans, tans):
    (x,), (t,) = vals, tans
    return o.sum_to(o.mul(t, o.exp(o.sub(x, ans))), (), node.args[0].shape)


prim("logsumexp", 1, _lse, kind="custom", jvp=_lse_jvp, vjp=_lse_vjp,
     shape=lambda shapes: (),
     sympy=lambda s, x: s.log(s.Add(*[s.exp(v) for v in x])) if isinstance(x, list) else x,
     c=None)


# ---- matrix product (bilinear, 2-D x 2-D; ops.matmul reshapes vectors) -----------------
def _mm_shape(shapes):
    (p, q), (q2, r) = shapes
    if q != q2:
        raise ValueError(f"matrix product of shapes {shapes[0]} and {shapes[1]}")
    return (p, r)


prim("matmul", 2, np.matmul, kind="custom", shape=_mm_shape,
     jvp=lambda node, v, ans, t: o.add_opt(None if t[0] is None else o.mm(t[0], v[1]),
                                           None if t[1] is None else o.mm(v[0], t[1])),
     vjp=lambda node, v, ans, ct: (o.mm(ct, o.transpose(v[1], node.args[1].shape)),
                                   o.mm(o.transpose(v[0], node.args[0].shape), ct)),
     sympy=lambda s, a, b: a * b, c=None, infix="@", prec=2)


# ---- structural, linear ---------------------------------------------------------------
def _lead(x, src):
    return np.ndim(x) - len(src)


def _sum_to(x, shape, src):
    lead = _lead(x, src)
    extra = len(src) - len(shape)
    axes = tuple(range(lead, lead + extra))
    axes += tuple(lead + extra + i for i, (a, b) in enumerate(zip(src[extra:], shape)) if b == 1 and a != 1)
    if not axes:
        return x
    out = np.sum(x, axis=axes, keepdims=True)
    return np.reshape(out, np.shape(x)[:lead] + tuple(shape))


def _broadcast(x, shape, src):
    lead = _lead(x, src)
    xs = np.shape(x)
    x = np.reshape(x, xs[:lead] + (1,) * (len(shape) - len(src)) + tuple(src))
    return np.broadcast_to(x, xs[:lead] + tuple(shape))


def _reshape(x, shape, src):
    return np.reshape(x, np.shape(x)[:_lead(x, src)] + tuple(shape))


def _transpose(x, src):
    lead = _lead(x, src)
    return np.transpose(x, tuple(range(lead)) + tuple(range(np.ndim(x) - 1, lead - 1, -1)))


def _full_index(idx, src):
    return (Ellipsis,) + tuple(idx) + (slice(None),) * (len(src) - len(idx))


def _getitem(x, idx, src):
    return np.asarray(x)[_full_index(idx, src)]


def _scatter(x, idx, shape):
    lead = np.ndim(x) - len(np.empty(shape)[tuple(idx)].shape) if shape else np.ndim(x)
    out = np.zeros(np.shape(x)[:lead] + tuple(shape), dtype=np.result_type(x, float))
    out[_full_index(idx, shape)] = x
    return out


def _stack(*xs, src):
    xs = np.broadcast_arrays(*xs)
    return np.stack(xs, axis=np.ndim(xs[0]) - len(src))


def _index_shape(shapes, idx, src):
    return np.empty(shapes[0], dtype=np.int8)[tuple(idx)].shape


prim("sum_to", 1, _sum_to, kind="linear", shape=lambda shapes, shape, src: tuple(shape),
     transpose=lambda ct, node: (o.broadcast(ct, node.args[0].shape, node.shape),),
     sympy=None, c=None)
prim("broadcast", 1, _broadcast, kind="linear", shape=lambda shapes, shape, src: tuple(shape),
     transpose=lambda ct, node: (o.sum_to(ct, node.args[0].shape, node.shape),),
     sympy=None, c=None)
prim("reshape", 1, _reshape, kind="linear", shape=lambda shapes, shape, src: tuple(shape),
     transpose=lambda ct, node: (o.reshape(ct, node.args[0].shape, node.shape),),
     sympy=None, c=None)
prim("transpose", 1, _transpose, kind="linear", shape=lambda shapes, src: tuple(src[::-1]),
     transpose=lambda ct, node: (o.transpose(ct, node.shape),), sympy=None, c=None)
prim("getitem", 1, _getitem, kind="linear", shape=_index_shape,
     transpose=lambda ct, node: (o.scatter(ct, node.p["idx"], node.args[0].shape),),
     sympy=None, c=None)
prim("scatter", 1, _scatter, kind="linear", shape=lambda shapes, idx, shape: tuple(shape),
     transpose=lambda ct, node: (o.getitem(ct, node.p["idx"], node.shape),), sympy=None, c=None)
prim("stack", None, _stack, kind="linear", shape=lambda shapes, src: (len(shapes),) + tuple(src),
     transpose=lambda ct, node: tuple(o.getitem(ct, (i,), node.shape) for i in range(len(node.args))),
     sympy=None, c=None)

ELEMENTWISE = tuple(n for n, p in PRIMS.items() if p.kind in ("elementwise", "zero"))

for _p in PRIMS.values():  # completeness: every record can be evaluated and differentiated
    assert _p.impl is not None, _p.name
    assert {"elementwise": _p.partials, "linear": _p.transpose, "zero": True,
            "custom": _p.jvp and _p.vjp}[_p.kind], _p.name
    if _p.kind in ("elementwise", "zero"):
        assert _p.c and _p.sympy, _p.name
        assert _p.kind == "zero" or len(_p.partials) == _p.nargs, _p.name

from adcalc import ops as o  # noqa: E402 (last: ops reads the finished PRIMS table)
