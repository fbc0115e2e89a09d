"""The hash-consed graph: CSE, constant folding, simplification, shapes and broadcasting."""
import subprocess
import sys

import numpy as np
import pytest

from adcalc import primitives as ops
from adcalc.engines.reverse import ReverseEngine
from adcalc.errors import DomainError, InputError
from adcalc.graph import Graph, to_text
from adcalc.problem import Problem


def ops_of(prob):
    return [n.op for n in prob.graph.nodes]


# ---- common subexpressions ------------------------------------------------------------------
def test_same_subexpression_built_twice_is_one_node():
    g = Graph()
    x = g.var("x", ())
    a = ops.sin(ops.add(x, 1.0))
    b = ops.sin(ops.add(x, 1.0))
    assert a is b
    assert [n.op for n in g.nodes] == ["var", "const", "add", "sin"]
    assert g.var("x", ()) is x
    assert g.const(1.0) is g.const(np.array(1.0))


def test_cse_from_text():
    p = Problem("sin(x)*cos(x) + sin(x) + cos(x)*sin(x)", at="2")
    assert ops_of(p).count("sin") == 1 and ops_of(p).count("cos") == 1
    p = Problem("exp(x**2) - exp(x**2) * exp(x**2)", at="0.5")
    assert ops_of(p).count("exp") == 1 and ops_of(p).count("pow") == 1
    assert p.value(p.x0()) == pytest.approx(np.exp(0.25) - np.exp(0.5), rel=1e-15)


def test_node_ids_are_topological():
    p = Problem("log(x1)+x1*x2-sin(x2) + sum(W @ v)", at="W=[[1,2],[3,4]],v=[1,2],x1=2,x2=5")
    for n in p.graph.nodes:
        assert n.id == p.graph.nodes.index(n)
        assert all(a.id < n.id for a in n.args)


# ---- constant folding --------------------------------------------------------------------------
def test_constant_folding():
    g = Graph()
    c = ops.add(g.const(2.0), g.const(3.0))
    assert c.op == "const" and c.value == 5.0
    p = Problem("(2*3+1)*x + sin(0) + 2**10", at="2")
    assert ops_of(p).count("mul") == 1
    assert [o for o in ops_of(p) if o not in ("var", "const")] == ["mul", "add"]
    assert p.value(p.x0()) == 14.0 + 1024.0
    assert Problem("sqrt(16) + log(e)").output.value == 5.0


def test_folded_array_constants():
    p = Problem("[1, 2] @ [[1, 2], [3, 4]] + x", at="x=[1,1]")
    assert ops_of(p).count("matmul") == 0
    np.testing.assert_array_equal(p.value(p.x0()), [8.0, 11.0])


def test_constant_outside_domain_is_domain_error():
    with pytest.raises(DomainError, match="log"):
        Problem("log(0) + x", at="1")
    with pytest.raises(DomainError, match="division by zero"):
        Problem("1/0 + x", at="1")


# ---- simplification --------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["x*1", "1*x", "x/1", "x+0", "0+x", "x-0", "x**1", "x^1", "--x",
                                  "+x", "(x)", "x*1+0", "1*(x+0)/1"])
def test_identities_return_the_variable(text):
    p = Problem(text, at="3")
    assert p.output is p.var_nodes[0]


def test_x_times_one_over_x_plus_zero():
    p = Problem("x*1/x+0", at="2")
    x = p.var_nodes[0]
    assert p.output.op == "div" and p.output.args == (x, x)
    assert [n.op for n in p.graph.nodes if n.op not in ("const",)] == ["var", "div"]
    assert p.value(p.x0()) == 1.0
    assert ReverseEngine().grad(p, p.x0()).value[0] == 0.0


@pytest.mark.parametrize("text,expected", [("x*0", 0.0), ("0*x", 0.0), ("x**0", 1.0), ("0-x", -3.0)])
def test_absorbing_identities(text, expected):
    p = Problem(text, at="3")
    assert p.value(p.x0()) == expected
    assert p.output.op in ("const", "neg")


def test_identities_keep_broadcast_shape():
    p = Problem("x*[1, 1, 1]", at="2")
    assert p.out_shape == (3,)
    np.testing.assert_array_equal(p.value(p.x0()), [2.0, 2.0, 2.0])
    p = Problem("x*[0, 0]", at="2")
    assert p.out_shape == (2,)
    p = Problem("x + [0, 0]", at="2")
    assert p.out_shape == (2,)
    np.testing.assert_array_equal(ReverseEngine().jacobian(p, p.x0()).value, [[1.0], [1.0]])


# ---- shapes ------------------------------------------------------------------------------------------
POINT = {"s": 2.0, "x": np.array([1.0, 2.0, 3.0]), "W": np.arange(6.0).reshape(2, 3),
         "c": np.array([[1.0], [2.0]]), "r": np.array([[1.0, 2.0, 3.0]])}


@pytest.mark.parametrize("text,shape", [
    ("s", ()), ("x", (3,)), ("W", (2, 3)), ("W @ x", (2,)), ("x + W", (2, 3)), ("W + x", (2, 3)),
    ("s * W", (2, 3)), ("sum(W)", ()), ("mean(x)", ()), ("W.T", (3, 2)), ("x.T", (3,)), ("s.T", ()),
    ("x[1:]", (2,)), ("W[0]", (3,)), ("W[:, 0]", (2,)), ("W[1, 2]", ()), ("[x, x]", (2, 3)),
    ("[s, s, s, s]", (4,)), ("dot(x, x)", ()), ("W @ W.T", (2, 2)), ("W.T @ W", (3, 3)),
    ("x @ W.T", (2,)), ("c + r", (2, 3)), ("c * x", (2, 3)), ("max(x, s)", (3,)), ("max(W)", ()),
    ("norm(W)", ()), ("logsumexp(x)", ()), ("prod(W)", ()), ("sin(W) * exp(x)", (2, 3)),
    ("atan2(c, r)", (2, 3)), ("[[s, s], [s, s]]", (2, 2)), ("W[1:, ::2]", (1, 2)),
])
def test_shape_inference(text, shape):
    p = Problem(text, point=POINT)
    assert p.out_shape == shape
    assert np.shape(p.value(p.x0())) == shape
    with np.errstate(all="ignore"):
        expected = _numpy_eval(text)
    np.testing.assert_allclose(p.value(p.x0()), expected, rtol=1e-14)


def _numpy_eval(text):
    env = {k: np.asarray(v) for k, v in POINT.items()}
    env.update(sum=np.sum, mean=np.mean, dot=np.dot, norm=np.linalg.norm, sin=np.sin, exp=np.exp,
               prod=np.prod, atan2=np.arctan2,
               max=lambda *a: np.max(a[0]) if len(a) == 1 else np.maximum(*a),
               logsumexp=lambda a: np.log(np.sum(np.exp(a))))
    py = text
    if py.startswith("["):
        return np.array(eval(py, {"__builtins__": {}}, env))
    return eval(py, {"__builtins__": {}}, env)


def test_broadcast_gradients_sum_back():
    p = Problem("sum(c * r)", point=POINT)   # (2,1) * (1,3)
    g = ReverseEngine().grad(p, p.x0()).value
    # d/dc_i = sum_j r_j = 6; d/dr_j = sum_i c_i = 3 (variables c, r)
    np.testing.assert_array_equal(g, [6.0, 6.0, 3.0, 3.0, 3.0])
    p = Problem("sum(s * x + W)", point=POINT)   # variables W, s, x
    g = ReverseEngine().grad(p, p.x0()).value
    np.testing.assert_array_equal(g, [1.0] * 6 + [2 * 6.0] + [2 * 2.0] * 3)  # s*x is added to both rows


# ---- shape errors name the sub-expression ----------------------------------------------------------------
@pytest.mark.parametrize("text,where", [
    ("sin(x + y) * 2", "x + y"), ("W @ W", "W @ W"), ("1 + dot(x, y)", "dot(x, y)"), ("[x, y]", "[x, y]"),
    ("sum(x[5])", "x[5]"), ("x[0, 0]", "x[0, 0]"), ("x[1:1]", "x[1:1]"), ("exp(y @ W) + 1", "y @ W"),
    ("y * W.T", "y * W.T"), ("max(x, y)", "max(x, y)"), ("hypot(x, y)", "hypot(x, y)"),
])
def test_shape_errors_name_the_subexpression(text, where):
    with pytest.raises(InputError) as info:
        Problem(text, point={"x": np.ones(2), "y": np.ones(3), "W": np.ones((2, 3))})
    assert f"'{where}'" in str(info.value)
    assert info.value.kind == "input"


@pytest.mark.parametrize("text", ["x[5]", "x[0, 0]", "x[1:1]"])
def test_index_error_names_location_once(text):
    with pytest.raises(InputError) as info:
        Problem(text, point={"x": np.ones(2)})
    assert str(info.value).count(f"'{text}'") == 1, str(info.value)


def test_several_expressions_must_agree_in_shape():
    with pytest.raises(InputError, match="same shape"):
        Problem(["x", "[x, x]"], at="1")


def test_rank_three_matmul_is_input_error():
    with pytest.raises(InputError, match="rank"):
        Problem("x @ W", point={"x": np.ones((1, 1, 1)), "W": np.ones((1, 1))})


# ---- printing ------------------------------------------------------------------------------------------
def test_to_text_uses_source_text_and_truncates():
    p = Problem("log(x1) + x1*x2", at="2,5")
    assert to_text(p.output) == "log(x1) + x1*x2"
    g = Graph()
    x = g.var("x", ())
    n = x
    for _ in range(100):
        n = ops.sin(ops.add(n, 1.0))
    assert len(to_text(n, limit=50)) <= 50


@pytest.mark.parametrize("module", [
    "adcalc.core", "adcalc.primitives", "adcalc.graph", "adcalc.evaluate", "adcalc.parse", "adcalc.ad",
    "adcalc.derivatives", "adcalc.quantities", "adcalc.engines.base", "adcalc.engines.forward",
    "adcalc.engines.numeric", "adcalc.engines.symbolic", "adcalc.verify", "adcalc.check", "adcalc.diff",
    "adcalc.problem", "adcalc.points", "adcalc.engines", "adcalc.engines.reverse", "adcalc.cli",
    "adcalc.commands", "adcalc.render", "adcalc.errors"])
def test_every_module_imports_first(module):
    """Each module can be the first adcalc import of a fresh interpreter (no import cycle)."""
    r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-500:]


def test_two_operand_fast_path_makes_the_general_paths_nodes():
    """Graph.binary's common cases (same shapes; a node and a number) give the node the
    general path gives: interned, commuted products shared, no broadcast node for a number,
    constants folded, and a float constant is the array constant of the same bytes."""
    g = Graph()
    x, v = g.var("x", ()), g.var("v", (3,))
    assert g.const(2.0) is g.const(np.array(2.0)) and g.const(-0.0) is not g.const(0.0)
    two_v = g.apply("mul", (v, 2.0), {})
    assert two_v is g.apply("mul", (g.const(2.0), v), {}) and two_v.shape == (3,)
    assert [a.op for a in two_v.args] == ["var", "const"]          # no broadcast of the number
    assert g.apply("add", (v, 0.0), {}) is v and g.apply("mul", (x, 1.0), {}) is x
    xv = g.apply("mul", (x, v), {})                                 # shapes differ: broadcast
    assert xv.shape == (3,) and {a.op for a in xv.args} == {"broadcast", "var"}
    assert g.apply("add", (2.0, 3.0), {}).op == "const"
    assert g.apply("add", (x, g.apply("neg", (x,), {})), {}).op == "sub"
    assert g.apply("neg", (g.apply("neg", (x,), {}),), {}) is x
    assert g.apply("sin", (x,), {}) is g.apply("sin", (x,), {})
