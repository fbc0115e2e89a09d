"""adcalc.explain: traces, DOT, N-th derivatives, Newton's method and plot series."""
import math
import re
import shutil

import numpy as np
import pytest

from adcalc import derivatives, explain
from adcalc.engines import get_engine
from adcalc.errors import DomainError, EngineUnavailable, InputError
from adcalc.problem import Problem

WORKED = "log(x1)+x1*x2-sin(x2)"


# ---- trace --------------------------------------------------------------------------------
def test_trace_of_the_worked_example_matches_the_textbook_node_by_node():
    tr = explain.trace(Problem(WORKED, at="2,5"))
    got = [(r.name, r.op, r.formula, float(r.value), float(r.tangent), float(r.adjoint)) for r in tr.rows]
    c5, s5 = math.cos(5.0), math.sin(5.0)
    want = [("v-1", "input", "x1", 2.0, 1.0, 5.5),
            ("v0", "input", "x2", 5.0, 0.0, 2.0 - c5),
            ("v1", "log", "log(v-1)", math.log(2.0), 0.5, 1.0),
            ("v2", "mul", "v-1 * v0", 10.0, 5.0, 1.0),
            ("v3", "add", "v1 + v2", math.log(2.0) + 10.0, 5.5, 1.0),
            ("v4", "sin", "sin(v0)", s5, 0.0, -1.0),
            ("v5", "sub", "v3 - v4", 11.652071455223084, 5.5, 1.0)]
    assert got == want
    assert tr.gradient.tolist() == [5.5, 1.7163378145367738]
    assert float(tr.tangent) == 5.5 and tr.direction == "x1"


def test_trace_tangent_along_the_second_input_is_the_partial():
    tr = explain.trace(Problem(WORKED, at="2,5"), "forward", "x2")
    assert tr.direction == "x2" and float(tr.tangent) == 1.7163378145367738
    assert all(r.adjoint is None for r in tr.rows) and tr.gradient is None


def test_trace_of_arrays_agrees_with_the_engines():
    prob = Problem("sum(W@x)+x[0]*2+sum(x**2)", at="x=[1,2],W=[[1,0],[0,3]]")
    tr = explain.trace(prob, "both", "x[1]")
    assert tr.gradient.tolist() == get_engine("reverse").grad(prob, prob.x0()).value.tolist()
    assert tr.gradient.tolist() == [1.0, 2.0, 1.0, 2.0, 5.0, 7.0]
    e = np.zeros(prob.n)
    e[prob.inputs.index("x[1]")] = 1.0
    assert float(tr.tangent) == float(get_engine("forward").jvp(prob, prob.x0(), e).value[0]) == 7.0
    rows = {r.name: r for r in tr.rows}
    assert rows["v-1"].formula == "W" and rows["v-1"].adjoint.tolist() == [[1.0, 2.0], [1.0, 2.0]]
    formulas = [r.formula for r in tr.rows]
    assert "v-1 @ v1" in formulas and "v0[0]" in formulas and "sum(v3)" in formulas


def test_trace_of_a_vector_expression_is_forward_only():
    tr = explain.trace(Problem("[x*y, x+y]", at="1,2"))
    assert tr.mode == "forward" and tr.tangent.tolist() == [2.0, 1.0]
    assert "scalar" in tr.warnings[0]
    with pytest.raises(InputError, match="scalar"):
        explain.trace(Problem("[x*y, x+y]", at="1,2"), "reverse")


def test_trace_without_variables_or_operations():
    tr = explain.trace(Problem("2+3"))
    assert [(r.name, r.op, r.formula, float(r.value)) for r in tr.rows] == [("v1", "const", "5", 5.0)]
    assert "no variables" in tr.warnings[0] and tr.gradient is None
    tr = explain.trace(Problem("x", at="3"))
    assert [(r.name, float(r.value), float(r.tangent), float(r.adjoint)) for r in tr.rows] == [("v0", 3.0, 1.0, 1.0)]


def test_trace_errors():
    with pytest.raises(InputError, match="not an input"):
        explain.trace(Problem(WORKED, at="2,5"), "forward", "z")
    with pytest.raises(InputError, match="array"):
        explain.trace(Problem("sum(x)", at="x=[1,2]"), "forward", "x")
    with pytest.raises(InputError, match="mode"):
        explain.trace(Problem(WORKED, at="2,5"), "sideways")
    with pytest.raises(DomainError, match="log"):
        explain.trace(Problem(WORKED, at="-2,5"))


# ---- DOT ----------------------------------------------------------------------------------
def test_dot_has_one_node_per_graph_node_and_edges_from_argument_to_user():
    prob = Problem(WORKED, at="2,5")
    text = explain.to_dot(prob, "title")
    assert text.startswith("digraph adcalc {") and text.rstrip().endswith("}")
    assert 'n0 [label="v-1: x1\\n[]", shape=ellipse];' in text
    assert 'n2 [label="v1: log\\n[]"];' in text and "n0 -> n2;" in text
    assert 'n6 [label="v5: sub\\n[]", peripheries=2];' in text
    assert 'n4 -> n6 [label="0"];' in text and 'n5 -> n6 [label="1"];' in text   # order matters for sub
    assert explain.graph_counts(prob) == (7, 8) == (len(re.findall(r"^  n\d+ \[", text, re.M)), text.count(" -> "))


def test_dot_of_the_gradient_graph():
    prob = Problem(WORKED, at="2,5")
    grad = derivatives.gradient(prob)
    text = explain.to_dot(grad, 'a "quoted" title')
    assert 'label="a \\"quoted\\" title"' in text
    assert "cos" in text and "concat" in text and "peripheries=2" in text
    assert explain.graph_counts(grad)[0] > explain.graph_counts(prob)[0]


def test_render_dot_writes_dot_and_refuses_other_suffixes(tmp_path):
    out = explain.render_dot("digraph a {}\n", tmp_path / "g.dot")
    assert out.read_text() == "digraph a {}\n"
    with pytest.raises(InputError, match=r"\.dot, \.png or \.svg"):
        explain.render_dot("digraph a {}\n", tmp_path / "g.pdf")


def test_render_png_without_graphviz_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(explain.shutil, "which", lambda name: None)
    with pytest.raises(InputError, match="apt-get install graphviz, brew install graphviz"):
        explain.render_dot("digraph a {}\n", tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_render_png_and_svg_with_graphviz(tmp_path):
    text = explain.to_dot(Problem(WORKED, at="2,5"))
    png = explain.render_dot(text, tmp_path / "g.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    svg = explain.render_dot(text, tmp_path / "g.svg").read_text()
    assert "<svg" in svg and "log" in svg
    with pytest.raises(InputError, match="dot could not draw"):
        explain.render_dot("digraph {", tmp_path / "bad.png")


# ---- N-th derivatives ---------------------------------------------------------------------
@pytest.mark.parametrize("engine", ["forward", "reverse", "symbolic"])
def test_sin_at_zero_orders_1_to_8(engine):
    prob = Problem("sin(x)", at="0")
    got = [explain.nth_derivative(prob, [0] * n, engine).value for n in range(1, 9)]
    assert got == [1.0, 0.0, -1.0, 0.0, 1.0, 0.0, -1.0, 0.0]


CLOSED = {  # expression, point, k-th derivative in closed form
    "sin(x)": (0.7, lambda x, k: math.sin(x + k * math.pi / 2)),
    "exp(x)": (0.7, lambda x, k: math.exp(x)),
    "log(x)": (0.7, lambda x, k: (-1) ** (k - 1) * math.factorial(k - 1) / x ** k),
    "x**3*exp(x)": (0.7, lambda x, k: math.exp(x) * sum(math.comb(k, j) * math.perm(3, j) * x ** (3 - j)
                                                       for j in range(4))),
}


@pytest.mark.parametrize("expr", list(CLOSED))
def test_engines_agree_for_orders_1_to_6(expr):
    x, exact = CLOSED[expr]
    prob = Problem(expr, at=str(x))
    for k in range(1, 7):
        ref, rows = explain.compare_derivatives(prob, [0] * k, "d")
        assert ref == "symbolic"
        ran = {n: r for n, r in rows.items() if r["status"] != "unavailable"}
        assert set(ran) == ({"forward", "reverse", "symbolic", "numeric"} if k <= 2
                            else {"forward", "reverse", "symbolic"})
        assert all(r["status"] == "ok" for r in ran.values()), (k, rows)
        for r in ran.values():
            assert r["derivative"] == pytest.approx(exact(x, k), rel=1e-12 if r["method"] != "complex-step" else 1e-9)
        if k > 2:
            assert "order 2" in rows["numeric"]["reason"]


def test_mixed_partials_of_a_product():
    prob = Problem("x1**2*x2**3*exp(x1)", at="0.5,1.5")
    names, comps = explain.parse_wrt(prob, "x1,x1,x2")
    assert names == ["x1", "x1", "x2"] and comps == [0, 0, 1]
    # d2/dx1^2 (x1^2 e^x1) = (2 + 4 x1 + x1^2) e^x1; d/dx2 x2^3 = 3 x2^2
    exact = (2 + 4 * 0.5 + 0.25) * math.exp(0.5) * 3 * 1.5 ** 2
    for engine in ("forward", "reverse", "symbolic"):
        assert explain.nth_derivative(prob, comps, engine).value == pytest.approx(exact, rel=1e-14)
    d = explain.nth_derivative(prob, [0, 1], "numeric")
    assert d.value == pytest.approx((2 * 0.5 + 0.25) * math.exp(0.5) * 3 * 1.5 ** 2, rel=1e-8)
    assert d.error is not None and d.status == "ok"


def test_parse_wrt():
    prob = Problem("x*y + sum(v)", at="x=1,y=2,v=[1,2]")
    assert prob.inputs == ["v[0]", "v[1]", "x", "y"]
    assert explain.parse_wrt(prob, "x", 3) == (["x", "x", "x"], [2, 2, 2])
    assert explain.parse_wrt(prob, "v[1],y") == (["v[1]", "y"], [1, 3])
    with pytest.raises(InputError, match="needs --wrt"):
        explain.parse_wrt(prob, None)
    assert explain.parse_wrt(Problem("sin(t)", at="1"), None, 2) == (["t", "t"], [0, 0])
    with pytest.raises(InputError, match="does not match"):
        explain.parse_wrt(prob, "x,y", 3)
    with pytest.raises(InputError, match="too high"):
        explain.parse_wrt(prob, "x", explain.MAX_ORDER + 1)
    with pytest.raises(InputError, match="empty name"):
        explain.parse_wrt(prob, "x,,y")


def test_nth_derivative_errors():
    prob = Problem("sin(x)", at="1")
    with pytest.raises(EngineUnavailable, match="order 2"):
        explain.nth_derivative(prob, [0, 0, 0], "numeric")
    with pytest.raises(EngineUnavailable):
        explain.nth_derivative(prob, [0], "gpu")
    with pytest.raises(InputError, match="unknown engine"):
        explain.nth_derivative(prob, [0], "magic")
    with pytest.raises(InputError, match="scalar"):
        explain.nth_derivative(Problem("[x, x]", at="1"), [0], "forward")
    with pytest.raises(DomainError):
        explain.nth_derivative(Problem("log(x)", at="-1"), [0], "forward")


# ---- Newton -------------------------------------------------------------------------------
def test_newton_quartic_from_2_converges_to_1():
    r = explain.newton(Problem("x**4 - 2*x**2", at="2"))
    assert r.converged and r.x[0] == pytest.approx(1.0, abs=1e-9) and r.f == -1.0
    assert r.iterations[0]["x"].tolist() == [2.0] and r.iterations[-1]["action"] == "converged"


@pytest.mark.parametrize("engine,solver", [("reverse", "auto"), ("forward", "cg"), ("symbolic", "dense")])
def test_newton_rosenbrock_reaches_1_1(engine, solver):
    r = explain.newton(Problem("100*(y-x**2)**2+(1-x)**2", at="-1.2,1"), engine, solver=solver)
    assert r.converged and np.allclose(r.x, [1.0, 1.0], atol=1e-9, rtol=0) and r.f < 1e-18


def test_newton_leaves_a_maximum_by_negative_curvature():
    r = explain.newton(Problem("x**4 - 2*x**2", at="0"))
    assert r.converged and abs(r.x[0]) == 1.0
    assert r.iterations[0]["action"] == "negative curvature"


def test_newton_reports_non_convergence():
    r = explain.newton(Problem("100*(y-x**2)**2+(1-x)**2", at="-1.2,1"), max_iter=3)
    assert not r.converged and "did not converge in 3 iterations" in r.message
    r = explain.newton(Problem("-x**2", at="1"))
    assert not r.converged and "unbounded below" in r.message


def test_newton_errors():
    with pytest.raises(InputError, match="scalar"):
        explain.newton(Problem("[x, y]", at="1,2"))
    with pytest.raises(InputError, match="at least one variable"):
        explain.newton(Problem("2", at=None))
    with pytest.raises(DomainError):
        explain.newton(Problem("log(x)", at="-1"))


# ---- plots --------------------------------------------------------------------------------
def test_parse_over():
    assert explain.parse_over("x=-2:2") == ("x", -2.0, 2.0)
    assert explain.parse_over("t = -pi : pi") == ("t", -math.pi, math.pi)
    for bad in ("x", "x=1", "x=2:1", "=1:2", "x=[1,2]:3"):
        with pytest.raises(InputError, match="--over"):
            explain.parse_over(bad)


def test_plot_problem_fixes_the_other_variables():
    prob, c, lo, hi = explain.plot_problem("x**3 - y*x", "x=-2:2", "y=1")
    assert prob.variables == ["x", "y"] and c == 0 and (lo, hi) == (-2.0, 2.0)
    assert prob.point["y"] == 1.0
    prob, c, _, _ = explain.plot_problem(["x**3 - y*x"], "y=0:1", "x=3,y=0.5")   # --at may name --over's variable
    assert c == 1 and prob.point["x"] == 3.0
    with pytest.raises(InputError, match="--at is required"):
        explain.plot_problem("x*y", "x=0:1")
    with pytest.raises(InputError, match="not a variable"):
        explain.plot_problem("x*y", "z=0:1", "1,2")
    with pytest.raises(InputError, match="expected 1 value"):
        explain.plot_problem("x*y", "x=0:1", "1,2,3")


def test_plot_series_in_one_batched_engine_call_per_order(monkeypatch):
    prob, c, lo, hi = explain.plot_problem("x**3 - y*x", "x=-2:2", "y=1")
    xs = np.linspace(lo, hi, 9)
    engine = get_engine("reverse")
    calls = []
    for name in ("grad", "hvp"):
        real = getattr(type(engine), name)
        monkeypatch.setattr(type(engine), name, lambda self, *a, _r=real, _n=name: calls.append(
            (_n, np.shape(a[1]))) or _r(self, *a))
    series, warnings = explain.plot_series(prob, c, xs, 3, "reverse")
    assert calls == [("grad", (9, 2)), ("hvp", (9, 2))]
    assert warnings == []
    np.testing.assert_allclose(series[0], xs ** 3 - xs, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(series[1], 3 * xs ** 2 - 1, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(series[2], 6 * xs, rtol=1e-15, atol=1e-15)
    assert series[3].tolist() == [6.0] * 9


def test_plot_series_leaves_gaps_outside_the_domain():
    prob, c, lo, hi = explain.plot_problem("log(x)", "x=-1:1", None)
    xs = np.linspace(lo, hi, 5)
    series, warnings = explain.plot_series(prob, c, xs, 1, "forward")
    assert np.isnan(series[0][:3]).all() and series[0][4] == 0.0 and series[1][4] == 1.0
    assert np.isnan(series[1][:3]).all()
    assert "3 of 5 points" in warnings[0] and "log" in warnings[0]


def test_plot_series_errors():
    prob, c, lo, hi = explain.plot_problem("x", "x=0:1")
    with pytest.raises(InputError, match="order"):
        explain.plot_series(prob, c, np.linspace(lo, hi, 3), explain.MAX_PLOT_ORDER + 1)
    with pytest.raises(EngineUnavailable):
        explain.plot_series(prob, c, np.linspace(lo, hi, 3), 1, "gpu")
