"""adcalc against an independent AD system: autograd (HIPS), on the property-test expressions.

The expression text is evaluated here with autograd.numpy by a small walker over Python's
own syntax tree (test code over generated text; adcalc's parser, graph and rules are not
used), and autograd's grad, hessian and jacobian are compared with adcalc's reverse and
forward engines.  Points stay away from kinks (the strategies' margins), where the two
systems' conventions may differ.
"""
import ast
import functools
import math

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from autograd.extend import defvjp, primitive
from hypothesis import assume, example, given

import strategies as S
from adcalc.engines import engine_class
from test_properties import BIG, build, well_conditioned

REVERSE, FORWARD = engine_class("reverse")(), engine_class("forward")()
pytestmark = pytest.mark.filterwarnings("ignore:Output seems independent of input")


@primitive
def erf(x):
    return np.vectorize(math.erf, otypes=[float])(x)


@primitive
def erfc(x):
    return np.vectorize(math.erfc, otypes=[float])(x)


defvjp(erf, lambda ans, x: lambda g: g * 2 / anp.sqrt(anp.pi) * anp.exp(-x * x))
defvjp(erfc, lambda ans, x: lambda g: -g * 2 / anp.sqrt(anp.pi) * anp.exp(-x * x))


def logsumexp(x):
    m = anp.max(x)
    return m + anp.log(anp.sum(anp.exp(x - m)))


def _chooser(elementwise, reduce):
    return lambda *a: reduce(a[0]) if len(a) == 1 else functools.reduce(elementwise, a)


FUNCS = {
    "sin": anp.sin, "cos": anp.cos, "tan": anp.tan, "asin": anp.arcsin, "acos": anp.arccos,
    "atan": anp.arctan, "atan2": anp.arctan2, "sinh": anp.sinh, "cosh": anp.cosh, "tanh": anp.tanh,
    "asinh": anp.arcsinh, "acosh": anp.arccosh, "atanh": anp.arctanh, "exp": anp.exp,
    "expm1": anp.expm1, "log": lambda x, b=None: anp.log(x) if b is None else anp.log(x) / anp.log(b),
    "log1p": anp.log1p, "log2": anp.log2, "log10": anp.log10, "sqrt": anp.sqrt,
    "cbrt": lambda x: anp.sign(x) * anp.abs(x) ** (1 / 3), "abs": anp.abs, "sign": anp.sign,
    "pow": anp.power, "hypot": lambda x, y: anp.sqrt(x * x + y * y), "erf": erf, "erfc": erfc, "sigmoid": lambda x: 1 / (1 + anp.exp(-x)),
    "softplus": lambda x: anp.logaddexp(0.0, x), "relu": lambda x: anp.maximum(x, 0.0),
    "max": _chooser(anp.maximum, anp.max), "min": _chooser(anp.minimum, anp.min), "sum": anp.sum,
    "mean": anp.mean, "prod": anp.prod, "dot": anp.dot, "norm": lambda x: anp.sqrt(anp.sum(x * x)),
    "logsumexp": logsumexp, "sinc": lambda x: anp.sinc(x / anp.pi),
}
BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
          ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b, ast.MatMult: anp.dot}


def evaluate(text, env):
    """The expression's value with autograd.numpy (`^` is a power, as in adcalc, and binds
    like Python's `**`)."""
    return _walk(ast.parse(text.replace("^", "**"), mode="eval").body, env)


def _walk(node, env):
    if isinstance(node, ast.BinOp):
        return BINOPS[type(node.op)](_walk(node.left, env), _walk(node.right, env))
    if isinstance(node, ast.UnaryOp):
        v = _walk(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Call):
        return FUNCS[node.func.id](*[_walk(a, env) for a in node.args])
    if isinstance(node, ast.Name):
        return {"pi": np.pi, "e": np.e}.get(node.id, env.get(node.id))
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Attribute) and node.attr == "T":
        return anp.transpose(_walk(node.value, env))
    if isinstance(node, ast.List):
        return anp.stack([_walk(e, env) for e in node.elts])
    if isinstance(node, ast.Subscript):
        return _walk(node.value, env)[_index(node.slice)]
    raise AssertionError(f"unexpected syntax {ast.dump(node)}")


def _index(node):
    if isinstance(node, ast.Tuple):
        return tuple(_index(e) for e in node.elts)
    if isinstance(node, ast.Slice):
        part = [None if p is None else int(ast.literal_eval(p)) for p in (node.lower, node.upper, node.step)]
        return slice(*part)
    return int(ast.literal_eval(node))


def flat_function(prob):
    """f(flat x) with autograd, variables unflattened in the problem's order and shapes."""
    def f(x):
        env, pos = {}, 0
        for v in prob.variables:
            shape = prob.shapes[v]
            size = int(np.prod(shape)) if shape else 1
            env[v] = anp.reshape(x[pos:pos + size], shape)
            pos += size
        return evaluate(prob.expression, env)
    return f


def close(got, want, rtol, what, text):
    got, want = np.asarray(got, float), np.asarray(want, float)
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=f"{what} of {text}")


@given(S.problems())
@example((S.binary("mul", S.unary("log", S.var("a")), S.unary("sin", S.var("b"))),
          {"a": np.array(2.0), "b": np.array(5.0)}))
def test_gradient_and_hessian_agree_with_autograd(tp):
    term, point = tp
    prob = build(term, point)
    x = prob.x0()
    assume(well_conditioned(term, prob.variables, x))
    f = flat_function(prob)
    want_g = autograd.grad(f)(x)
    want_h = autograd.hessian(f)(x)
    assume(np.all(np.isfinite(want_h)) and np.max(np.abs(want_h), initial=0.0) < BIG)
    for engine in (REVERSE, FORWARD):
        close(engine.grad(prob, x).value, want_g, 1e-10, f"{engine.name} gradient", term.text)
        close(engine.hessian(prob, x).value, want_h, 1e-9, f"{engine.name} Hessian", term.text)


@given(S.problems(S.vector_exprs()))
def test_jacobian_agrees_with_autograd(tp):
    term, point = tp
    prob = build(term, point)
    x = prob.x0()
    assume(well_conditioned(term, prob.variables, x))
    want = autograd.jacobian(flat_function(prob))(x)
    assume(np.all(np.isfinite(want)) and np.max(np.abs(want), initial=0.0) < BIG)
    for engine in (REVERSE, FORWARD):
        close(engine.jacobian(prob, x).value, np.reshape(want, (prob.m, prob.n)), 1e-10,
              f"{engine.name} Jacobian", term.text)


def test_the_walker_is_independent_and_right():
    env = {"x": np.array([1.0, 2.0]), "a": 0.5}
    assert float(evaluate("sum(x^2) + log(8, 2) + max(x) * a", env)) == 5 + 3 + 1.0
