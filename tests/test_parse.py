"""The expression language: precedence, syntax, errors with columns, hostile input, limits."""
import builtins
import contextlib
import math
import re
import time

import numpy as np
import pytest

from adcalc.engines.reverse import ReverseEngine
from adcalc.errors import DomainError, InputError, ParseError
from adcalc.parse import FUNCTIONS, MAX_DEPTH, MAX_LENGTH, parse
from adcalc.problem import Problem


def value(text, at=None, vars=None, point=None):
    """Value of `text` at the --at string `at`, or at `point` (a dict that may name more)."""
    p = Problem(text, at=at, vars=vars, point=point)
    return p.value(p.x0())


# ---- precedence and associativity, against Python's own grammar ----------------------------
PYTHON_SAME = [
    "-2**2", "2**-1", "-2**-2", "2*-3", "--2", "-+-2", "+2", "2**3**2", "2**3**-1", "1/2/2",
    "2-3-4", "2-3+4", "2*3+4*5", "(2+3)*4", "2+3*4**2", "-3**2*2", "2/4*8", "1 - -1", "1e-3*1E+2",
    ".5 + 1.", "2**2**0.5", "-(2)**2", "(-2)**2", "(-2)**3", "0**0", "7 - 2*3**2/6",
]


@pytest.mark.parametrize("text", PYTHON_SAME)
def test_arithmetic_matches_python(text):
    assert value(text) == pytest.approx(eval(text, {"__builtins__": {}}), rel=1e-15)


@pytest.mark.parametrize("text,expected", [
    ("-2**2", -4.0), ("2^3^2", 512.0), ("2**3**2", 512.0), ("(2^3)^2", 64.0), ("2**-1", 0.5),
    ("-2^-2", -0.25), ("2^-x", 0.25), ("-x^2", -4.0), ("-x**2", -4.0), ("(-x)**2", 4.0),
    ("2*x^2", 8.0), ("x^2*3", 12.0), ("x^-1^2", 0.5), ("-x", -2.0), ("- - x", 2.0),
])
def test_power_and_unary_minus(text, expected):
    assert value(text, point={"x": 2.0}) == expected


def test_caret_is_power_not_xor():
    assert value("3^2") == 9.0      # Python's 3^2 (xor) would be 1


@pytest.mark.parametrize("text,py", [
    ("x @ W * 2", "(x @ W) * 2"), ("2 * x @ W", "(2 * x) @ W"), ("x @ W + x", "(x @ W) + x"),
    ("x + x @ W", "x + (x @ W)"), ("W @ W @ x", "(W @ W) @ x"), ("W @ x / 2", "(W @ x) / 2"),
    ("-x @ W", "(-x) @ W"), ("x @ W ** 2", "x @ (W ** 2)"), ("W.T @ x", "W.T @ x"),
    ("x @ W.T @ x", "(x @ W.T) @ x"),
])
def test_matmul_precedence_like_python(text, py):
    x, W = np.array([1.0, -2.0]), np.array([[1.0, 2.0], [3.0, 5.0]])
    got = value(text, at="W=[[1,2],[3,5]],x=[1,-2]")
    np.testing.assert_allclose(got, eval(py, {"__builtins__": {}}, {"x": x, "W": W}), rtol=1e-15)


def test_numbers_and_constants():
    assert value("pi") == math.pi
    assert value("e") == math.e
    assert value("2*pi") == 2 * math.pi
    assert value("1e3 + 2.5e-1 + .5 + 3.") == 1003.75


# ---- indexing, slicing, .T, lists --------------------------------------------------------------
A = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
V = np.array([1.0, 2.0, 3.0, 4.0, 5.0])


@pytest.mark.parametrize("text,expected", [
    ("v[0]", V[0]), ("v[-1]", V[-1]), ("v[1:3]", V[1:3]), ("v[:2]", V[:2]), ("v[3:]", V[3:]),
    ("v[::2]", V[::2]), ("v[::-1]", V[::-1]), ("v[-2:]", V[-2:]), ("v[1:-1]", V[1:-1]),
    ("A[1,0]", A[1, 0]), ("A[1][2]", A[1][2]), ("A[0]", A[0]), ("A[:,1]", A[:, 1]),
    ("A[1,:2]", A[1, :2]), ("A.T", A.T), ("A.T[2,1]", A.T[2, 1]), ("A.T.T", A), ("(A*2).T", (A * 2).T),
    ("[v[0], v[1]]", V[:2]), ("[[1, 2], [3, 4]]", [[1, 2], [3, 4]]), ("[A[0], A[1]]", A),
    ("[v[0], 7]", [1, 7]), ("sum(A)", A.sum()), ("sum(A.T @ A)", (A.T @ A).sum()),
    ("A @ v[:3]", A @ V[:3]), ("dot(v, v)", V @ V), ("max(v)", 5.0), ("min(A)", 1.0),
    ("mean(A)", A.mean()), ("prod(v)", 120.0), ("norm(v)", np.linalg.norm(V)),
    ("logsumexp(v)", np.log(np.exp(V).sum())), ("max(v, 3)", np.maximum(V, 3)),
    ("min(v, 3, v[::-1])", np.minimum(np.minimum(V, 3), V[::-1])), ("log(8, 2)", 3.0),
])
def test_indexing_and_arrays(text, expected):
    np.testing.assert_allclose(value(text, point={"A": A, "v": V}), expected, rtol=1e-14)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_listed_function_parses(name):
    lo = FUNCTIONS[name].arity[0]
    args = ", ".join(["x"] * max(lo, 1))
    expr = parse(f"{name}({args})")
    assert expr.names == ["x"]


def test_contract_functions_whitelisted():
    listed = ("sin cos tan asin acos atan atan2 sinh cosh tanh asinh acosh atanh exp expm1 log "
              "log1p log2 log10 sqrt cbrt abs sign pow hypot erf erfc sigmoid softplus relu max min "
              "sum mean prod dot norm logsumexp").split()
    assert [f for f in listed if f not in FUNCTIONS] == []


# ---- variables -------------------------------------------------------------------------------------
def test_natural_variable_order():
    assert Problem("x10 + x2 + x1 + x", at="1,2,3,4").variables == ["x", "x1", "x2", "x10"]
    p = Problem("b10*a + b9", at="1,2,3")
    assert p.variables == ["a", "b9", "b10"]
    assert p.point["b10"] == 3.0


def test_vars_option_orders_and_adds():
    p = Problem("y/x - x + y", at="3,2", vars="y,x")
    assert p.variables == ["y", "x"] and p.point["y"] == 3.0
    p = Problem("x*y", at="1,2,3", vars="x,y,z")
    assert p.variables == ["x", "y", "z"]
    np.testing.assert_array_equal(ReverseEngine().grad(p, p.x0()).value, [2.0, 1.0, 0.0])
    with pytest.raises(InputError, match="'y'"):
        Problem("x*y", at="1", vars="x")


def test_constants_are_not_variables():
    assert parse("pi*x + e").names == ["x"]


# ---- errors name the token and column, with a caret --------------------------------------------------
@pytest.mark.parametrize("text,col,token", [
    ("x + * y", 4, "*"), ("sin(x))", 6, ")"), ("x y", 2, "y"), ("foo(x) + 1", 0, "foo"),
    ("1 + ", 4, ""), ("2 $ 3", 2, "$"), ("x..T", 2, "."),
    ("sin", 0, "sin"), ("sin(x, y)", 0, "sin"), ("(x", 2, ""), ("[1, 2", 5, ""),
    ("x = 1", 2, "="), ("x == 1", 2, "="), ("x ** ", 5, ""), ("log()", 0, "log"),
    ("3 +\t# c", 4, "#"), ("x²", 1, "²"), ("1_000", 1, "_000"),
    ("x[1.5]", 2, "1.5"), ("x.y", 2, "y"), ("x[0](1)", 4, "("), ("x[]", 2, "]"),
])
def test_parse_error_names_token_and_column(text, col, token):
    with pytest.raises(ParseError) as info:
        Problem(text, point={"x": np.array([1.0, 2.0])})
    e = info.value
    assert e.col == col, str(e)
    assert f"column {col + 1}" in str(e)
    assert e.extra["column"] == col + 1
    assert e.extra["token"] == token
    if token:
        pattern = rf"\b{re.escape(token)}\b" if token.isidentifier() else re.escape(token)
        assert re.search(pattern, str(e).replace(f"at column {col + 1}", "")), str(e)
    expr_line, caret_line = e.caret().split("\n")
    assert expr_line == "  " + text.replace("\t", " ")   # one column per character
    assert caret_line == " " * (2 + col) + "^"


def test_unknown_function_is_parse_error():
    with pytest.raises(ParseError, match="unknown function 'foo'"):
        parse("foo(x)")
    with pytest.raises(ParseError, match="unknown function 'eval'"):
        parse("eval(x)")


@pytest.mark.parametrize("text", ["", " ", "\t\n  "])
def test_empty_expression_is_parse_error(text):
    with pytest.raises(ParseError, match="empty"):
        parse(text)


def test_wrong_argument_count():
    with pytest.raises(ParseError, match="atan2 takes 2 arguments"):
        parse("atan2(x)")
    with pytest.raises(ParseError, match="log takes 1 to 2"):
        parse("log(x, 2, 3)")


# ---- hostile strings: parse errors, and nothing runs -----------------------------------------------
HOSTILE = [
    "__import__('os').system('touch {pwned}')",
    '__import__("os").system("touch {pwned}")',
    "().__class__", "().__class__.__bases__[0].__subclasses__()", "x.__class__", "x.real",
    "sin.__globals__", "sum.__call__(x)", "e.__class__", "pi.__doc__",
    'exec("1")', "exec('open(\"{pwned}\", \"w\")')", "eval('1')", "eval(x)", "open(x)",
    "lambda: 1", "lambda x: x", "`touch {pwned}`", "x; import os", "x;1", "import os",
    "x if 1 else 2", "[i for i in x]", "{{}}", "{{'a': 1}}", "x == 1", "x = 1", "x\\\n1",
    "$(touch {pwned})", "x | 1", "x & 1", "~x", "x % 2", "x // 2", "x < 1", "not x", "'abc'",
    "b'a'", "x[0](1)", "x.T()", "x.T.__class__", "globals()", "getattr(x, 'T')", "\x00",
    "x @= 1", "x ** ** 2", "f'{{x}}'", "x\x1b[31m", "@x", "x[::]::",
]


@contextlib.contextmanager
def no_eval():
    """Make every eval-like entry point fail loudly inside the block; yields the calls seen."""
    import sympy
    calls = []

    def trap(name):
        def f(*a, **k):
            calls.append(name)
            raise AssertionError(f"{name} called on user text")
        return f

    saved = builtins.eval, builtins.exec, sympy.sympify, getattr(sympy, "parse_expr", None)
    builtins.eval, builtins.exec = trap("eval"), trap("exec")
    sympy.sympify, sympy.parse_expr = trap("sympify"), trap("parse_expr")
    try:
        yield calls
    finally:
        builtins.eval, builtins.exec, sympy.sympify, sympy.parse_expr = saved


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_strings_are_parse_errors(template, tmp_path):
    pwned = tmp_path / "pwned"
    text = template.format(pwned=pwned)
    with no_eval() as calls:
        try:
            Problem(text, at="x=1")
            error = None
        except ParseError as e:
            error = e
    assert calls == []
    assert error is not None, f"{text!r} was accepted"
    assert "column" in str(error)
    assert not pwned.exists()


def test_ordinary_parsing_never_evals():
    with no_eval() as calls:
        p = Problem("log(x1)+x1*x2-sin(x2) + sum(W @ v) + v.T[0]**2", at="W=[[1,2],[3,4]],v=[1,2],x1=2,x2=5")
        ReverseEngine().grad(p, p.x0()).value
    assert calls == []


# ---- limits: depth, length, huge constants, flat sums ------------------------------------------------
DEEP = [
    "(" * 100000 + "x" + ")" * 100000,
    "-" * 100000 + "x",
    "sin(" * 100000 + "x" + ")" * 100000,
    "[" * 20000 + "x" + "]" * 20000,
    "x" + "**x" * 100000,
    "x" + "^-x" * 1000,
    "(" * (MAX_DEPTH + 5) + "x" + ")" * (MAX_DEPTH + 5),
]


@pytest.mark.parametrize("text", DEEP, ids=lambda t: f"{t[:6]}...{len(t)}")
def test_deep_nesting_is_input_error_quickly(text):
    t0 = time.perf_counter()
    with pytest.raises(InputError) as info:
        Problem(text, at="1")
    assert not isinstance(info.value, ParseError)
    assert str(MAX_DEPTH) in str(info.value)
    assert time.perf_counter() - t0 < 5.0


def test_nesting_within_the_limit_works():
    depth = MAX_DEPTH // 2 - 5
    text = "sin(" * depth + "x" + ")" * depth
    p = Problem(text, at="0.5")
    expected = 0.5
    for _ in range(depth):
        expected = math.sin(expected)
    assert p.value(p.x0()) == pytest.approx(expected, rel=1e-14)
    assert np.isfinite(ReverseEngine().grad(p, p.x0()).value).all()


def test_too_long_is_input_error():
    with pytest.raises(InputError, match="limit"):
        parse("x" * (MAX_LENGTH + 1))


@pytest.mark.parametrize("text", ["10**10**10**10", "9**9**9", "2**2**2**2**2", "10^10^10^10 * x",
                                  "exp(exp(exp(10)))", "1e308*10", "x + 10**400"])
def test_huge_constants_are_input_errors_quickly(text):
    t0 = time.perf_counter()
    with pytest.raises(InputError) as info:
        Problem(text, point={"x": 1.0})
    assert info.value.kind == "input"
    assert "constant" in str(info.value)
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("text", ["1e999", "x * 1e400", "-1e999 + x", "1e999 - 1e999"])
def test_overflowing_literal_is_input_error(text):
    t0 = time.perf_counter()
    with pytest.raises(InputError) as info:
        Problem(text, point={"x": 1.0})
    assert "1e999" in str(info.value) or "1e400" in str(info.value) or "inf" in str(info.value)
    assert time.perf_counter() - t0 < 1.0


def test_flat_sum_of_5000_terms_parses_evaluates_and_differentiates():
    n = 5000
    text = " + ".join(f"x{i}**2" for i in range(1, n + 1))
    xs = np.arange(1, n + 1) / n
    t0 = time.perf_counter()
    p = Problem(text, at=",".join(repr(float(v)) for v in xs))
    assert p.variables[:3] == ["x1", "x2", "x3"] and p.variables[-1] == f"x{n}"
    assert p.value(p.x0()) == pytest.approx(float(np.sum(xs ** 2)), rel=1e-12)
    np.testing.assert_allclose(ReverseEngine().grad(p, p.x0()).value, 2 * xs, rtol=1e-15)
    assert time.perf_counter() - t0 < 15.0


def test_flat_sum_and_product_of_one_variable():
    n = 2000
    k = np.arange(1, n + 1)
    p = Problem(" + ".join(f"sin({i}*x)" for i in k), at="0.3")
    eng = ReverseEngine()
    np.testing.assert_allclose(eng.grad(p, p.x0()).value, [np.sum(k * np.cos(k * 0.3))], rtol=1e-11)
    np.testing.assert_allclose(eng.hessian(p, p.x0()).value, [[-np.sum(k * k * np.sin(k * 0.3))]], rtol=1e-11)
    c = np.arange(1, 1001) * 1e-4
    p = Problem(" * ".join(f"(1+{float(ci)!r}*x)" for ci in c), at="0.1")
    f = np.prod(1 + 0.1 * c)
    assert p.value(p.x0()) == pytest.approx(f, rel=1e-12)
    np.testing.assert_allclose(eng.grad(p, p.x0()).value, [f * np.sum(c / (1 + 0.1 * c))], rtol=1e-11)


def test_natural_order_recognised_in_one_pass_equals_the_sort():
    """Names that are one prefix with increasing numbers are kept as they are; every other
    list is sorted by the natural key, and both give what the sort gives."""
    import random

    from adcalc.points import natural_key, order_variables
    rnd = random.Random(0)
    for _ in range(2000):
        prefix = rnd.choice(["x", "y", "ab", "_", "x_"])
        names = list(dict.fromkeys(rnd.choice([prefix, "x", "z", "yx"]) + str(rnd.choice(
            [rnd.randrange(0, 200), "0" + str(rnd.randrange(10))])) for _ in range(rnd.randrange(30))))
        if rnd.random() < 0.5:
            names = sorted(names, key=natural_key)
        if rnd.random() < 0.1:
            names.insert(rnd.randrange(len(names) + 1), rnd.choice(["x", "w", "x1y", "x01"]))
            names = list(dict.fromkeys(names))
        assert order_variables(names) == sorted(names, key=natural_key), names
    assert order_variables([f"x{i}" for i in range(1, 5001)]) == [f"x{i}" for i in range(1, 5001)]
    assert order_variables(["x1", "x10", "x2"]) == ["x1", "x2", "x10"]


def test_parser_code_is_postfix_and_labels_come_from_the_source():
    from adcalc import parse as P
    e = parse("a*b + -c**2 + (a - b)")
    assert e.code[:3] == ["a", "b", (P.BIN, "mul", 2, 0, 3)]
    assert e.names == ["a", "b", "c"] and e.text == "a*b + -c**2 + (a - b)"
    p = Problem("log(x - 3) + (x * y)", at="5,1")
    labels = {n.label for n in p.graph.nodes if n.span is not None}
    assert {"log(x - 3)", "x - 3", "(x * y)", "log(x - 3) + (x * y)"} <= labels
    with pytest.raises(DomainError, match=r"in 'log\(x - 3\)'"):
        ReverseEngine().grad(p, [1.0, 1.0])
    long = " + ".join(f"x{i}" for i in range(1, 3000)) + " + log(x1 - 5)"
    with pytest.raises(DomainError, match=r"in 'log\(x1 - 5\)'"):
        Problem(long, point={f"x{i}": 1.0 for i in range(1, 3000)}).value(np.ones(2999))


def test_digits_of_any_script_are_numbers_as_float_reads_them():
    p = Problem("x*\u0663 + v[\u0661]", point={"x": 1.0, "v": [1.0, 2.0]})   # Arabic-Indic 3 and 1
    assert float(p.value(p.x0())) == 5.0
    with pytest.raises(ParseError, match="unexpected character '\u00b2'"):
        parse("x\u00b2")   # a superscript is no digit


def test_labels_are_the_operands_text_with_its_sign_and_parentheses():
    for text, label in (("x/(y)", "x/(y)"), ("+x/y", "+x/y"), ("-(x)/y", "-(x)/y"), ("((x))/y", "((x))/y")):
        with pytest.raises(DomainError, match=re.escape(f"division by zero in '{label}'")):
            ReverseEngine().grad(Problem(text, at="1,0"), [1.0, 0.0])
