"""The kernel generator (adcalc.codegen) and the compiled engine: the C twin of every kernel
against the reverse engine.

Few shared libraries are compiled: each test gathers its kernels and builds them into one
library (CompiledEngine.prepare), in a private cache directory.  Agreement with the reverse
engine is judged per point in the max norm: |compiled - reverse| <= RTOL * max|reverse|,
and non-finite entries must be the same (NaN where NaN, the same infinity).

Covered: every case of cases.py (all its commands, plus the value) at its point and at
points near it; hypothesis-generated expressions (strategies.py) with batches of points;
every pointwise record of the table against its numpy implementation, at ordinary and
special values (NaN, infinities, signed zeros); every other record has a printer; every
record with a domain has a C spelling of it that agrees with numpy's predicate; domain
errors give NaN rows and flags while the other rows stay right; the generated CUDA
compiles with nvcc -ptx; --fast agrees with the exact path.

Generated expressions are held to 1e-12 (RTOL_HYP): nested functions whose libm and numpy
values differ by an ulp, differentiated twice, lose a few more digits where terms cancel
(1.3e-14 was seen).  ADCALC_CODEGEN_EXAMPLES=60 runs more of them (one library each).
"""
import os
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import strategies as S
from adcalc import codegen
from adcalc.commands import read_vector
from adcalc.core import PRIMS
from adcalc.engines.compiled import CompiledEngine, Toolchain, find_compiler
from adcalc.engines.reverse import ReverseEngine
from adcalc.errors import DomainError
from adcalc.graph import Graph
from adcalc.problem import Problem
from cases import CASES

RTOL = 1e-14          # max-norm relative agreement with the reverse engine, exact path
RTOL_HYP = 1e-12      # generated expressions: nested functions whose libm and numpy differ by ulps
REVERSE = ReverseEngine()

pytestmark = pytest.mark.skipif(find_compiler() is None, reason="no C compiler (gcc or clang)")


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADCALC_CACHE_DIR", str(tmp_path_factory.mktemp("kernels")))
        yield


def engine(**kw):
    return CompiledEngine(opt=kw.pop("opt", "-O1"), **kw)


def quantity_of(prob, command, X, vector, eng):
    """The command at the points X with the vector shared by all points."""
    if command == "value":
        return eng.value_batch(prob, X).value if hasattr(eng, "value_batch") else \
            np.stack([prob.value(x) for x in X])
    return getattr(eng, command)(prob, X, vector).value if vector is not None else \
        getattr(eng, command)(prob, X).value


def assert_agree(got, want, rtol, what, strict=True):
    """Per point, in the max norm.  strict: the same NaN pattern; otherwise (points with
    infinite or NaN inputs) a NaN of the reverse engine may be a number here: its sweeps carry
    every cotangent through every node, and 0 * inf in a branch that does not matter gives
    NaN there, where the printed derivative graph computes each entry on its own."""
    got = np.asarray(got, dtype=float).reshape(len(want), -1)
    want = np.asarray(want, dtype=float).reshape(len(want), -1)
    fin = np.isfinite(want)
    if strict:
        assert np.array_equal(np.isnan(got), np.isnan(want)), f"{what}: NaN pattern differs\n{got}\n{want}"
    assert np.isfinite(got[fin]).all(), f"{what}: not finite where the reverse engine is\n{got}\n{want}"
    inf = np.isinf(want)
    assert np.all((got[inf] == want[inf]) | (np.isnan(got[inf]) & (not strict))), f"{what}: infinities differ"
    scale = np.max(np.where(fin, np.abs(want), 0.0), axis=1, initial=0.0)
    with np.errstate(invalid="ignore"):
        err = np.max(np.where(fin, np.abs(got - want), 0.0), axis=1, initial=0.0)
    bad = err > rtol * scale + 1e-300
    assert not bad.any(), (f"{what}: max-norm relative difference {np.max(err / np.maximum(scale, 1e-300)):.3g} "
                           f"> {rtol} at rows {np.flatnonzero(bad)[:5].tolist()}\ncompiled {got[bad][:3]}\n"
                           f"reverse  {want[bad][:3]}")


def near(prob, x, count, seed, scale=0.05):
    """x and `count` points near it that stay inside the domain (as the reference says)."""
    rng = np.random.default_rng(seed)
    X = x[None] * (1 + scale * rng.uniform(-1, 1, (count, x.size))) + scale * rng.uniform(-1, 1, (count, x.size))
    X = np.concatenate([x[None], X])
    bad = {}
    prob.values(X, bad=bad)
    return np.delete(X, list(bad), axis=0)


# ---- cases.py: every command, at the case's point and near it -------------------------------------
def _case_items():
    items = []
    for case in CASES:
        prob = Problem(case.exprs, at=case.at, vars=case.vars)
        for command in ["value"] + case.commands:
            vector = None
            if command in ("hvp", "jvp", "vjp"):
                vector = read_vector(command, prob, case.u if command == "vjp" else case.v)
            items.append((case, prob, command, vector))
    return items


@pytest.fixture(scope="module")
def case_items():
    items = _case_items()
    eng = engine()
    eng.prepare([(prob, command) for _, prob, command, _ in items])   # one library for all
    return eng, items


def test_cases_agree_with_reverse_and_with_the_hand_derived_values(case_items):
    eng, items = case_items
    for case, prob, command, vector in items:
        X = near(prob, prob.x0(), 6, seed=len(case.id))
        what = f"{case.id} {command}"
        got = quantity_of(prob, command, X, vector, eng)
        want = quantity_of(prob, command, X, vector, REVERSE)
        assert_agree(got, want, RTOL, what)
        if command not in case.expected:
            continue
        expected = np.asarray(case.expected[command], dtype=float)
        np.testing.assert_allclose(got[0].reshape(expected.shape), expected, rtol=1e-12,
                                   atol=1e-12 * max(1.0, float(np.max(np.abs(expected)))), err_msg=what)


def test_direction_per_point_equals_shared_direction(case_items):
    eng, items = case_items
    for case, prob, command, vector in items:
        if vector is None:
            continue
        X = near(prob, prob.x0(), 4, seed=1)
        size = vector.size
        V = np.random.default_rng(2).standard_normal((1, len(X), size))
        V[0, 0] = vector
        got = getattr(eng, command + "_batch")(prob, X, V).value
        want = getattr(REVERSE, command + "_batch")(prob, X, V).value
        assert_agree(got[0], want[0], RTOL, f"{case.id} {command} per point")


def test_worked_example_through_the_engine_api():
    """The contract's example: one compile per quantity through the public methods."""
    prob = Problem("log(x1)+x1*x2-sin(x2)", at="2,5")
    eng = CompiledEngine()
    x = prob.x0()
    assert eng.grad(prob, x).value.tolist() == [5.5, 1.7163378145367738]
    np.testing.assert_allclose(eng.hessian(prob, x).value, [[-0.25, 1.0], [1.0, -0.9589242746631385]], rtol=1e-15)
    X = np.random.default_rng(0).uniform(0.5, 3.0, (10_000, 2))
    assert_agree(eng.grad(prob, X).value, REVERSE.grad(prob, X).value, RTOL, "grad")
    assert_agree(eng.value_batch(prob, X).value, prob.values(X)[prob.output.id], RTOL, "value")


def test_wrt_keeps_the_other_variables_at_the_point():
    prob = Problem("x*y**2 + sin(y)", at="x=2,y=3", wrt=["y"])
    eng = engine()
    X = np.array([[3.0], [1.5], [-2.0]])
    assert_agree(eng.grad(prob, X).value, REVERSE.grad(prob, X).value, RTOL, "grad --wrt y")
    assert_agree(eng.hessian(prob, X).value, REVERSE.hessian(prob, X).value, RTOL, "hessian --wrt y")


# ---- structural ops, reductions and matmul at their edges ---------------------------------------------
EDGES = [  # (expression, point): ties, extremes, zeros, broadcasting along inner axes, slices
    ("max(x) + min(x)", "x=[1,3,3,-2,-2]"),
    ("sum(max(x, y) * min(y, x))", "x=[1,2,3],y=[1,0,4]"),
    ("logsumexp(x)", "x=[800,799,-1e300]"),
    ("logsumexp(x * 1000)", "x=[1,2,3,4,5,6,7,8,9,10]"),
    ("norm(x)", "x=[3e200,4e200]"),
    ("norm(x)", "x=[3e-200,4e-200,0]"),
    ("norm(W @ x)", "W=[[1,2],[3,4],[5,6]],x=[1,-1]"),
    ("sum(softplus(x) * relu(x - 1))", "x=[-3,0.5,2,40]"),
    ("sum((W + b)**2) + sum(W * W.T)", "W=[[1,2],[3,4]],b=[1,-1]"),
    ("sum(x[::-2] * x[1::2]) + x[-1] * sum(x[:3])", "x=[1,2,3,4,5,6]"),
    ("prod(x)", "x=[1.5,-2,0.25,3,1e-3,7,2,2,2,0.5]"),
    ("sum(x**2) ** 0.5 + sum(sin(x)) / len", "x=[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0,1.1],len=3"),
    ("sum(A.T @ B @ A)", "A=[[1,2],[0,1],[2,-1]],B=[[2,0,1],[0,1,0],[1,0,3]]"),
    ("mean(abs(x) * sign(x)) + hypot(x[0], x[1]) + atan2(x[1], x[0])", "x=[0.3,-0.4,2]"),
    ("x ** y + pow(x, 3) + y ** 2.5", "x=0.7,y=1.3"),
    ("sinc(x) + sinc(x * 0) + erf(x) * erfc(x) + cbrt(-x)", "x=0.3"),
]


@pytest.mark.parametrize("command", ["grad", "hessian", "hvp"])
def test_structural_ops_and_reductions_at_their_edges(command):
    eng = engine()
    probs = [Problem(text, at=at) for text, at in EDGES]
    eng.prepare([(p, command) for p in probs])
    for (text, _), prob in zip(EDGES, probs):
        X = prob.x0()[None]
        v = np.linspace(-1, 1, prob.n) if command == "hvp" else None
        with np.errstate(all="ignore"):
            want = quantity_of(prob, command, X, v, REVERSE)
        assert_agree(quantity_of(prob, command, X, v, eng), want, RTOL, f"{command} of {text}")


def test_vector_outputs_jacobian_jvp_vjp():
    eng = engine()
    exprs = [("[x*y, exp(x) / y, W[0,1] * x]", "W=[[1,2],[3,4]],x=0.5,y=2"),
             ("W @ v + s * sum(v)", "W=[[1,2,3],[3,4,5]],v=[1,-1,2],s=[2,3]"),
             ("softplus(v) * v[::-1]", "v=[-1,0.5,3]")]
    probs = [Problem(t, at=a) for t, a in exprs]
    eng.prepare([(p, q) for p in probs for q in ("jacobian", "jvp", "vjp", "value")])
    for (text, _), prob in zip(exprs, probs):
        X = near(prob, prob.x0(), 5, seed=3)
        assert_agree(eng.jacobian(prob, X).value, REVERSE.jacobian(prob, X).value, RTOL, f"jacobian {text}")
        V = np.random.default_rng(4).standard_normal((2, len(X), prob.n))
        U = np.random.default_rng(5).standard_normal((2, len(X), prob.m))
        assert_agree(eng.jvp_batch(prob, X, V).value.reshape(-1, prob.m),
                     REVERSE.jvp_batch(prob, X, V).value.reshape(-1, prob.m), RTOL, f"jvp {text}")
        assert_agree(eng.vjp_batch(prob, X, U).value.reshape(-1, prob.n),
                     REVERSE.vjp_batch(prob, X, U).value.reshape(-1, prob.n), RTOL, f"vjp {text}")


# ---- hypothesis: generated expressions and point batches ---------------------------------------------
def _batch(draw, term, size):
    order = sorted(term.names)
    pts = draw(st.lists(S.points(term), min_size=1, max_size=size))
    X = np.stack([S.flat(p, order) for p in pts])
    keep = []
    for x in X:
        margins = []
        with np.errstate(all="ignore"):
            term(S.unflat(x, order), margins)
        keep.append(not margins or min(margins) > 1e-9)   # not on a kink: conventions are tested elsewhere
    return X[np.array(keep, dtype=bool)], order


@settings(max_examples=int(os.environ.get("ADCALC_CODEGEN_EXAMPLES", "4")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_generated_expressions_agree_with_reverse(data):
    scalar = [data.draw(S.scalar_exprs(), label=f"scalar {i}") for i in range(6)]
    vector = [data.draw(S.vector_exprs(), label=f"vector {i}") for i in range(3)]
    items = []
    for term in scalar + vector:
        X, order = _batch(data.draw, term, 6)
        if not len(X):
            continue
        prob = Problem(term.text, point=S.unflat(X[0], order))
        quantities = ("grad", "hessian", "hvp") if term in scalar else ("jacobian", "jvp", "vjp")
        items.append((term, prob, X, quantities))
    eng = engine()
    eng.prepare([(prob, q) for _, prob, _, qs in items for q in qs])
    rng = np.random.default_rng(0)
    for term, prob, X, quantities in items:
        with np.errstate(all="ignore"):
            for q in quantities:
                if q in ("grad", "hessian", "jacobian"):
                    want, got = getattr(REVERSE, q)(prob, X).value, getattr(eng, q)(prob, X).value
                else:
                    W = rng.standard_normal((1, len(X), prob.m if q == "vjp" else prob.n))
                    want = getattr(REVERSE, q + "_batch")(prob, X, W).value[0]
                    got = getattr(eng, q + "_batch")(prob, X, W).value[0]
                assert_agree(got, want, RTOL_HYP, f"{q} of {term.text} at {X.tolist()}")


# ---- every record of the table prints ------------------------------------------------------------------
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -3.0, 1e-300, 1e300, -1e300, 40.0, -800.0]
POINTWISE = sorted(n for n, p in PRIMS.items() if p.pointwise)


def test_every_record_has_a_printer():
    """A record added to the table prints (pointwise: its C spelling) or this fails."""
    missing = [n for n in PRIMS if not codegen.printable(n)]
    assert not missing, f"records the code generator cannot print: {missing}"
    assert {n for n, p in PRIMS.items() if not p.pointwise} == set(codegen.PRINTERS)
    missing = [n for n, p in PRIMS.items() if p.domain is not None and p.c_domain is None]
    assert not missing, f"records with a domain but no C condition (c_domain): {missing}"


def _pointwise_graph(name, grid):
    g = Graph()
    prim = PRIMS[name]
    xs = [g.var(f"a{i}", ()) for i in range(prim.nargs)]
    node = g.apply(name, xs, {})
    pts = np.array(np.meshgrid(*([grid] * prim.nargs), indexing="ij")).reshape(prim.nargs, -1).T
    return g, xs, node, pts


def test_every_pointwise_record_agrees_with_numpy_at_special_values():
    """Values (NaN where numpy gives NaN, the same infinities, libm within a few ulp of numpy)
    and domain flags (where numpy's predicate is false) of each pointwise record."""
    eng = engine()
    kernels, setups = {}, {}
    for name in POINTWISE:
        g, xs, node, pts = _pointwise_graph(name, SPECIAL)
        checks = [node] if PRIMS[name].domain is not None else []
        kernels[f"k_{name}"] = codegen.generate(g, xs, [node], checks=checks)
        setups[name] = (node, pts)
    lib = eng.toolchain.build(codegen.c_source(kernels, openmp=False))
    from adcalc.engines.compiled import call, function
    for name in POINTWISE:
        node, pts = setups[name]
        kern = kernels[f"k_{name}"]
        out, flag, _ = call(function(lib, f"k_{name}"), kern, pts)
        prim = PRIMS[name]
        with np.errstate(all="ignore"):
            want = np.asarray(prim.impl(*pts.T), dtype=float)
            inside = np.ones(len(pts), bool) if prim.domain is None else \
                np.broadcast_to(prim.domain[0](*pts.T), (len(pts),))
        np.testing.assert_array_equal(flag == 0, inside, err_msg=f"{name}: domain flags differ from numpy's")
        got = out[:, 0]
        w = np.where(inside, want, np.nan)
        with np.errstate(invalid="ignore"):
            same = (np.isnan(got) & np.isnan(w)) | (got == w) | (np.abs(got - w) <= 1e-14 * np.abs(w))
        assert same.all(), (f"{name}: C differs from numpy at {pts[~same].tolist()}: C {got[~same].tolist()}, "
                            f"numpy {w[~same].tolist()}")


@pytest.mark.parametrize("exponent", ["2", "-1", "0.5", "-0.5", "3", "y"])
def test_pow_domain_as_numpy_for_constant_and_variable_exponents(exponent):
    prob = Problem(f"x ** {exponent}", at="x=1" if exponent != "y" else "x=1,y=1")
    kern = codegen.problem_kernel(prob, "value")
    eng = engine()
    eng.prepare([(prob, "value")])
    grid = np.array(SPECIAL)
    X = grid[:, None] if prob.n == 1 else np.array(np.meshgrid(grid, grid)).reshape(2, -1).T
    r = CompiledEngine(on_domain="nan", opt="-O1").value_batch(prob, X)
    bad = {}
    prob.values(X, bad=bad)
    assert sorted(r.info.get("bad", {})) == sorted(bad)
    assert all(r.info["bad"][k] == v for k, v in bad.items())
    assert kern.messages == ([] if exponent in ("2", "3") else
                             ["power of a negative number to a non-integer exponent, or of zero to a negative one "
                              f"in '{prob.output}'"])


# ---- domain errors: NaN rows and flags, the other rows right -------------------------------------------
DOMAIN = [("log(x) + x*y", 2), ("sqrt(x - 3) * y", 2), ("x / y + y", 2), ("asin(x) + acos(y)", 2),
          ("acosh(x) + atanh(y)", 2), ("log1p(x) + log2(y) + log10(x + y)", 2), ("x ** y", 2),
          ("sum(log(v)) + sqrt(v[0])", 3), ("logsumexp(v) / v[1]", 3)]


def test_domain_errors_give_nan_rows_and_flags_and_keep_the_others():
    rng = np.random.default_rng(7)
    eng = CompiledEngine(on_domain="nan", opt="-O1")
    probs = []
    for text, n in DOMAIN:
        names = "v=[1,1,1]" if "v" in text else "x=1,y=1"
        probs.append(Problem(text, at=names))
    eng.prepare([(p, q) for p in probs for q in ("value", "grad", "hessian")])
    for (text, n), prob in zip(DOMAIN, probs):
        X = rng.uniform(-3, 5, (400, n))
        X[:5] = [[np.nan] * n, [np.inf] * n, [-np.inf] * n, [1.0] + [0.0] * (n - 1), [-1.0] * n]
        bad = {}
        prob.values(X, bad=bad)
        assert 0 < len(bad) < len(X), text
        good = np.array([i for i in range(len(X)) if i not in bad])
        for q in ("value", "grad", "hessian"):
            r = eng.value_batch(prob, X) if q == "value" else getattr(eng, q)(prob, X)
            assert r.info["bad"] == bad, f"{q} of {text}: flagged rows or messages differ"
            rows = np.array(sorted(bad))
            assert np.isnan(r.value[rows]).all(), f"{q} of {text}: a flagged row is not NaN"
            with np.errstate(all="ignore"):
                want = (prob.values(X[good])[prob.output.id] if q == "value"
                        else getattr(REVERSE, q)(prob, X[good]).value)
            finite = np.isfinite(X[good]).all(axis=1)
            assert_agree(r.value[good][finite], want[finite], RTOL, f"{q} of {text} on the good rows")
            assert_agree(r.value[good], want, RTOL, f"{q} of {text} on the good rows", strict=False)


def test_domain_error_raises_by_default_naming_subexpression_and_point():
    prob = Problem("log(x1) + x1*x2", at="2,5")
    eng = engine()
    with pytest.raises(DomainError, match=r"log of a non-positive number in 'log\(x1\)' at x1=-1.0, x2=5.0"):
        eng.grad(prob, np.array([-1.0, 5.0]))
    with pytest.raises(DomainError, match=r"at row 1 \(x1=0.0, x2=1.0\) and 1 more"):
        eng.grad(prob, np.array([[1.0, 1.0], [0.0, 1.0], [-1.0, 1.0]]))


def test_nan_and_inf_propagate_inside_the_domain():
    prob = Problem("exp(x) * y + sin(y)", at="1,1")
    X = np.array([[800.0, 1.0], [np.nan, 1.0], [1.0, np.inf], [1.0, np.nan], [-np.inf, 2.0]])
    eng = engine()
    with np.errstate(all="ignore"):
        for q in ("grad", "hessian"):
            got, want = getattr(eng, q)(prob, X).value, getattr(REVERSE, q)(prob, X).value
            assert_agree(got, want, RTOL, q, strict=False)
            nan_x = got[1].reshape(-1)[:3] if q == "hessian" else got[1]   # d2f/dy2 = -sin(y) needs no x
            assert np.isnan(nan_x).all() and np.isnan(got[3].reshape(-1)[-1]), f"{q}: a NaN input was lost"


# ---- --fast ----------------------------------------------------------------------------------------------
FAST = ["log(x1)+x1*x2-sin(x2)", "(1-x)**2 + 100*(y-x**2)**2",
        "exp(-a*a) * cos(b) + tanh(c) * log1p(d*d) + sqrt(1 + e*e) * atan(f) + sinh(g) / cosh(h) + i ** 2.5 "
        "+ erf(j) + sigmoid(a + b)"]


@pytest.mark.parametrize("text", FAST)
def test_fast_agrees_with_exact_and_still_reports_domain_errors(text):
    prob = Problem(text, point={v: 1.0 for v in "x1 x2 x y a b c d e f g h i j".split()
                                if v in text.replace("(", " ").replace(")", " ").replace("*", " ").split() or
                                f"{v}" in text})
    rng = np.random.default_rng(0)
    X = rng.uniform(0.1, 3.0, (5000, prob.n))
    X[7, 0] = -1.0
    X[8, :] = np.nan
    fast, exact = CompiledEngine(fast=True, on_domain="nan"), CompiledEngine(on_domain="nan")
    rf, re_ = fast.grad(prob, X), exact.grad(prob, X)
    assert rf.info.get("bad") == re_.info.get("bad")
    assert_agree(rf.value, re_.value, 1e-12, f"--fast grad of {text}")


def test_fast_rewrites_keep_every_value():
    """--fast writes cos(x) as cos(0.0 + x) and pow(x, n) as pow(|x|, n) with x's sign for
    odd n: the same values at negative, signed-zero, infinite and NaN x."""
    prob = Problem("x**3 + x**2 * y + pow(x, -3) * 1e-3 + x**4 - pow(y, -2) + cos(x) * sin(x) + cos(y)",
                   at="x=1,y=1")
    grid = np.array([-2.5, -1.0, -0.5, -0.0, 0.0, 0.5, 3.0, np.inf, -np.inf, np.nan])
    X = np.array(np.meshgrid(grid, grid)).reshape(2, -1).T
    fast, exact = CompiledEngine(fast=True, on_domain="nan"), CompiledEngine(on_domain="nan")
    for q in ("value", "grad"):
        rf = fast.value_batch(prob, X) if q == "value" else fast.grad(prob, X)
        re_ = exact.value_batch(prob, X) if q == "value" else exact.grad(prob, X)
        assert rf.info.get("bad") == re_.info.get("bad")
        with np.errstate(all="ignore"):
            assert_agree(rf.value, re_.value, 1e-12, f"--fast {q}")


def test_fast_uses_vector_math_where_libmvec_exists():
    tc = Toolchain(fast=True)
    if not tc.simd_functions:
        pytest.skip("no libmvec (glibc's vector math library) here")
    prob = Problem("log(x1)+x1*x2-sin(x2)", at="2,5")
    src = codegen.c_source({"adcalc_kernel": codegen.problem_kernel(prob, "grad")}, openmp=tc.openmp, fast=True,
                           simd_functions=tc.simd_functions)
    so = os.path.join(os.environ["ADCALC_CACHE_DIR"], "kernels", tc.key(src) + ".so")
    tc.build(src)
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no nm to list the library's symbols")
    syms = subprocess.run([nm, "-D", so], capture_output=True, text=True).stdout
    assert "_ZGV" in syms and "cos" in syms, "the point loop was not vectorised with libmvec's cos"


# ---- the engine's plumbing -----------------------------------------------------------------------------
def test_unavailable_without_a_compiler(monkeypatch):
    import adcalc.engines.compiled as C
    monkeypatch.setattr(C, "find_compiler", lambda: None)
    assert CompiledEngine().available() == "no C compiler found (install gcc or clang, or set CC to one)"


def test_libraries_are_cached_by_source_hash():
    prob = Problem("x*y + cos(x)", at="1,2")
    eng = engine()
    eng.grad(prob, prob.x0())
    kdir = os.path.join(os.environ["ADCALC_CACHE_DIR"], "kernels")
    tc = eng.toolchain
    src = codegen.c_source({"adcalc_kernel": codegen.problem_kernel(prob, "grad")}, openmp=tc.openmp)
    assert os.path.exists(os.path.join(kdir, tc.key(src, "-O1") + ".so"))
    assert Toolchain(fast=True).key(src) != tc.key(src) != tc.key(src, "-O1")


def test_big_kernels_compile_at_lower_levels_and_stay_right():
    """A 30 x 30 Hessian of prod (about 6,000 statements) compiles at -O1, in seconds."""
    from adcalc.engines.compiled import opt_for
    prob = Problem("prod(x) + sum(sin(x) * x[::-1])", point={"x": np.linspace(0.5, 1.5, 30)})
    kern = codegen.problem_kernel(prob, "hessian")
    assert 3000 < kern.n_statements <= 8000 and opt_for(kern.n_statements) == "-O1"
    assert opt_for(100) is None and opt_for(10 ** 5) == "-O0" and opt_for(10 ** 5, "-O2") == "-O2"
    X = prob.x0()[None] * np.array([[1.0], [0.9], [1.1]])
    assert_agree(CompiledEngine().hessian(prob, X).value, REVERSE.hessian(prob, X).value, RTOL, "hessian 30x30")


def test_generated_cuda_of_every_case_compiles_with_nvcc(tmp_path):
    nvcc = shutil.which("nvcc") or ("/usr/local/bin/nvcc" if os.path.exists("/usr/local/bin/nvcc") else None)
    if nvcc is None:
        pytest.skip("nvcc (the CUDA toolkit) is not installed here")
    kernels = {}
    for i, (case, prob, command, _) in enumerate(_case_items()):
        kernels[f"k{i}"] = codegen.problem_kernel(prob, command)
    src = tmp_path / "cases.cu"
    src.write_text(codegen.cuda_source(kernels))
    r = subprocess.run([nvcc, "-ptx", "-o", str(tmp_path / "cases.ptx"), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    ptx = (tmp_path / "cases.ptx").read_text()
    assert all(f".entry k{i}(" in ptx for i in range(len(kernels)))
