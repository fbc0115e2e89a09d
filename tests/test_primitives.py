"""Every element-wise record of the primitive table, checked three independent ways.

* each partial rule against a central difference of the record's own numpy `impl`,
  at points inside the record's `sample` domain;
* each partial rule against SymPy's own `diff` of the record's `sympy` mapping;
* each `c` spelling compiled by the system C compiler and compared with `impl`.

Plus the kink conventions, which must be JAX's.  A record added to the table is
picked up here with no edit.
"""
import ctypes
import math
import shutil
import subprocess
import zlib

import numpy as np
import pytest

from adcalc.engines import engine_class
from adcalc.core import Quotient
from adcalc.primitives import MINUS, ONE, PRIMS
from adcalc.problem import Problem

ELEMENTWISE = sorted(n for n, p in PRIMS.items() if p.kind == "elementwise")
ZERO = sorted(n for n, p in PRIMS.items() if p.kind == "zero")
WITH_C = sorted(n for n, p in PRIMS.items() if p.kind in ("elementwise", "zero") and p.c)

DOMAINS = {  # sample name -> (lo, hi, exclude |x| below)
    "real": (-3.0, 3.0, 0.05),
    "positive": (0.1, 4.0, 0.0),
    "nonzero": (-3.0, 3.0, 0.2),
    "unit": (-0.9, 0.9, 0.0),
    "ge1": (1.1, 4.0, 0.0),
}
# values far out, where a C spelling and numpy can part ways (overflow, cancellation)
WIDE = {"real": [-800.0, -40.0, -1e-8, 0.0, 1e-8, 40.0, 800.0], "positive": [1e-300, 1e-8, 1e8, 1e300],
        "nonzero": [-1e300, -1e-8, 1e-8, 1e300], "unit": [-1.0, -1e-8, 0.0, 1e-8, 1.0],
        "ge1": [1.0, 1.0 + 1e-12, 1e300]}


def samples(name, n=6, seed=0):
    """n points (arrays of shape (nargs, n)) inside the record's sample domain."""
    p = PRIMS[name]
    lo, hi, gap = DOMAINS[p.sample]
    rng = np.random.default_rng(zlib.crc32(name.encode()) + seed)   # stable across runs
    pts = rng.uniform(lo, hi, size=(p.nargs, 4 * n))
    if gap:
        pts = pts[:, np.all(np.abs(pts) > gap, axis=0)]
    if p.nargs == 2:   # keep binary kinks (ties, the origin) away
        pts = pts[:, (np.abs(pts[0] - pts[1]) > 0.05) & (np.hypot(pts[0], pts[1]) > 0.1)]
    assert pts.shape[1] >= n, name
    return pts[:, :n]


def partial_values(name, pts):
    p = PRIMS[name]
    args = [np.asarray(a, dtype=float) for a in pts]
    ans = p.impl(*args)
    out = []
    for f in p.partials:
        d = f(*args, ans)
        d = d.value() if isinstance(d, Quotient) else d
        out.append(np.broadcast_to(np.asarray(float(d) if d is ONE or d is MINUS else d, dtype=float),
                                   ans.shape))
    return out


def central(f, x, h):
    return (f(x + h) - f(x - h)) / (2 * h)


def richardson(f, x):
    """Central difference with one Richardson step: error O(h^4)."""
    h = 1e-3 * np.maximum(1.0, np.abs(x))
    return (4 * central(f, x, h / 2) - central(f, x, h)) / 3


def test_table_is_complete():
    assert "log" in ELEMENTWISE and "sign" in ZERO
    for name in ELEMENTWISE + ZERO:
        p = PRIMS[name]
        assert p.sample in DOMAINS, (name, p.sample)
        assert p.sympy is not None and p.c, name
        if p.kind == "elementwise":
            assert len(p.partials) == p.nargs, name
        if not p.complex_ok and name not in ("erf", "erfc", "atan2", "hypot", "eq", "gt", "ge"):
            assert p.kink, f"{name} is not analytic but documents no kink convention"


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_partials_vs_central_difference(name):
    p = PRIMS[name]
    pts = samples(name)
    got = partial_values(name, pts)
    for i in range(p.nargs):
        def f(t, i=i):
            args = [a.copy() for a in pts]
            args[i] = t
            return p.impl(*args)
        fd = richardson(f, pts[i])
        np.testing.assert_allclose(got[i], fd, rtol=1e-7, atol=1e-8,
                                   err_msg=f"d{name}/d(arg {i}) at {pts.T.tolist()}")


INFIX = {"add": "a0 + a1", "sub": "a0 - a1", "mul": "a0 * a1", "div": "a0 / a1", "pow": "a0 ** a1",
         "neg": "-a0"}
SPELLED = {"maximum": "max", "minimum": "min"}


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_partials_differentiate_again(name):
    """Rules built as graph nodes (so derivatives can be differentiated again) give the
    same numbers as rules evaluated on arrays."""
    p = PRIMS[name]
    pts = samples(name, n=3)
    names = [f"a{i}" for i in range(p.nargs)]
    expr = INFIX.get(name) or f"{SPELLED.get(name, name)}({', '.join(names)})"
    rev = engine_class("reverse")()
    for k in range(pts.shape[1]):
        prob = Problem(expr, point={n: pts[i, k] for i, n in enumerate(names)})
        g = rev.grad(prob, prob.x0()).value
        want = [d[0] for d in partial_values(name, pts[:, k:k + 1])]
        np.testing.assert_allclose(g, np.ravel(want), rtol=1e-13, atol=1e-15)
        H = rev.hessian(prob, prob.x0()).value
        fd = np.stack([richardson(lambda t, j=j: _grad_at(rev, expr, names, pts[:, k], j, t), pts[j, k])
                       for j in range(p.nargs)], axis=1)
        np.testing.assert_allclose(H, fd, rtol=1e-6, atol=1e-7, err_msg=f"Hessian of {expr}")


def _grad_at(rev, expr, names, base, j, t):
    out = []
    for tj in np.atleast_1d(t):
        pt = {n: base[i] for i, n in enumerate(names)}
        pt[names[j]] = tj
        prob = Problem(expr, point=pt)
        out.append(rev.grad(prob, prob.x0()).value)
    return np.array(out).reshape(np.shape(t) + (len(names),))


# ---- SymPy ---------------------------------------------------------------------------------------
def sympy_of(sympy, name, syms):
    m = PRIMS[name].sympy
    return getattr(sympy, m)(*syms) if isinstance(m, str) else m(sympy, *syms)


def sym_eval(sympy, expr, subs):
    v = expr.subs(subs).evalf(30)
    v = v.replace(sympy.DiracDelta, lambda *a: sympy.Integer(0)) if v.has(sympy.DiracDelta) else v
    return float(sympy.N(v, 30))


@pytest.mark.parametrize("name", ELEMENTWISE + ZERO)
def test_sympy_mapping_value_and_diff(name):
    sympy = pytest.importorskip("sympy")
    p = PRIMS[name]
    syms = sympy.symbols(f"a0:{p.nargs}", real=True)
    expr = sympy_of(sympy, name, syms)
    pts = samples(name, n=4)
    vals = p.impl(*[np.asarray(a) for a in pts])
    got = partial_values(name, pts) if p.kind == "elementwise" else [np.zeros(pts.shape[1])] * p.nargs
    for k in range(pts.shape[1]):
        subs = {s: sympy.Float(float(pts[i, k]), 30) for i, s in enumerate(syms)}
        assert sym_eval(sympy, expr, subs) == pytest.approx(float(vals[k]), rel=1e-13, abs=1e-15), name
        for i, s in enumerate(syms):
            d = sym_eval(sympy, sympy.diff(expr, s), subs)
            assert d == pytest.approx(float(got[i][k]), rel=1e-10, abs=1e-12), \
                f"d{name}/d{s} at {pts[:, k].tolist()}: sympy {d}, rule {got[i][k]}"


# ---- C spellings ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clib(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("cprims")
    lines = ["#include <math.h>"]
    for name in WITH_C:
        p = PRIMS[name]
        params = ", ".join(f"double a{i}" for i in range(p.nargs))
        body = p.c.format(*[f"a{i}" for i in range(p.nargs)])
        lines.append(f"double prim_{name}({params}) {{ return {body}; }}")
    src = d / "prims.c"
    src.write_text("\n".join(lines) + "\n")
    lib = d / "libprims.so"
    r = subprocess.run([cc, "-O1", "-shared", "-fPIC", "-o", str(lib), str(src), "-lm"],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"the C spellings do not compile:\n{r.stderr}\n{src.read_text()}"
    so = ctypes.CDLL(str(lib))
    funcs = {}
    for name in WITH_C:
        f = getattr(so, f"prim_{name}")
        f.restype = ctypes.c_double
        f.argtypes = [ctypes.c_double] * PRIMS[name].nargs
        funcs[name] = f
    return funcs


def _c_points(name):
    p = PRIMS[name]
    pts = samples(name, n=5)
    wide = np.array(WIDE[p.sample])
    if p.nargs == 1:
        return np.concatenate([pts, wide[None, :]], axis=1)
    a, b = np.meshgrid(wide, wide)
    return np.concatenate([pts, np.stack([a.ravel(), b.ravel()])], axis=1)


@pytest.mark.parametrize("name", WITH_C)
def test_c_spelling_agrees_with_numpy(name, clib):
    p = PRIMS[name]
    pts = _c_points(name)
    with np.errstate(all="ignore"):
        want = np.asarray(p.impl(*[np.asarray(a) for a in pts]), dtype=float)
    got = np.array([clib[name](*map(float, pts[:, k])) for k in range(pts.shape[1])])
    same_special = (np.isnan(want) & np.isnan(got)) | (np.isinf(want) & (want == got))
    ok = same_special | np.isclose(got, want, rtol=2e-15 * 8, atol=0.0)
    assert ok.all(), (f"{name}: C {p.c!r} differs from numpy at {pts[:, ~ok].T.tolist()}: "
                      f"C {got[~ok].tolist()}, numpy {want[~ok].tolist()}")


def test_every_c_spelling_compiled(clib):
    assert sorted(clib) == WITH_C
    assert {"sin", "log", "abs", "sign", "maximum", "pow", "atan2"} <= set(clib)


# ---- kinks: the same conventions as JAX ----------------------------------------------------------------
RULE_ENGINES = ("reverse", "forward")


def _engine(name):
    e = engine_class(name)()
    reason = e.available()
    if reason:
        pytest.skip(f"{name}: {reason}")
    return e


def test_kink_rules_in_the_table():
    z = np.array([0.0])
    assert float(partial_values("abs", [z])[0][0]) == 1.0        # abs'(0) = +1
    assert float(partial_values("relu", [z])[0][0]) == 0.0       # relu'(0) = 0
    t = np.array([2.0])
    for name in ("maximum", "minimum"):
        dx, dy = partial_values(name, [t, t])
        assert (float(dx[0]), float(dy[0])) == (0.5, 0.5)
    assert PRIMS["sign"].kind == "zero"
    for name in ("abs", "relu", "maximum", "minimum", "sign", "max", "min"):
        assert PRIMS[name].kink, name


@pytest.mark.parametrize("engine", RULE_ENGINES)
@pytest.mark.parametrize("expr,at,grad", [
    ("abs(x)", "0", [1.0]), ("abs(x)", "-0.0", [1.0]), ("abs(x)", "-2", [-1.0]), ("abs(x)", "3", [1.0]),
    ("relu(x)", "0", [0.0]), ("relu(x)", "1e-300", [1.0]), ("relu(x)", "-1", [0.0]),
    ("sign(x)", "0", [0.0]), ("sign(x)", "2", [0.0]), ("sign(x)", "-2", [0.0]),
    ("max(x, y)", "2,2", [0.5, 0.5]), ("min(x, y)", "2,2", [0.5, 0.5]), ("max(x, y)", "3,2", [1.0, 0.0]),
    ("min(x, y)", "3,2", [0.0, 1.0]), ("max(x, 2)", "2", [0.5]), ("min(2, x)", "2", [0.5]),
    ("max(x)", "x=[1,3,3]", [0.0, 0.5, 0.5]), ("max(x)", "x=[3,3,3]", [1 / 3] * 3),
    ("min(x)", "x=[3,1,1]", [0.0, 0.5, 0.5]), ("max(x)", "x=[1,3,2]", [0.0, 1.0, 0.0]),
    ("max(W)", "W=[[5,1],[5,5]]", [1 / 3, 0.0, 1 / 3, 1 / 3]), ("sum(relu(x))", "x=[-1,0,2]", [0.0, 0.0, 1.0]),
])
def test_kink_conventions_match_jax(engine, expr, at, grad):
    e = _engine(engine)
    prob = Problem(expr, at=at)
    np.testing.assert_allclose(e.grad(prob, prob.x0()).value, grad, rtol=1e-15, atol=0)


@pytest.mark.parametrize("engine", RULE_ENGINES)
def test_kink_second_derivatives(engine):
    e = _engine(engine)
    prob = Problem("abs(x)**2 + max(x, y)*y", at="0,0")
    H = e.hessian(prob, prob.x0()).value
    np.testing.assert_allclose(H, [[2.0, 0.5], [0.5, 1.0]], rtol=1e-15)


def test_math_constants_used_by_rules():
    assert math.isclose(float(partial_values("log2", [np.array([1.0])])[0][0]), 1 / math.log(2.0), rel_tol=1e-15)
    assert math.isclose(float(partial_values("erf", [np.array([0.0])])[0][0]), 2 / math.sqrt(math.pi),
                        rel_tol=1e-15)
