"""Evaluation as a precomputed program (adcalc/evaluate.py `Program`) and the reverse engine's
gradient and HVP by evaluating derivative graphs (adcalc/engines/reverse.py).

The program's rewrites leave every number as the plain interpreter computes it (uniform
constants read as one number, index transposes summed in place, reductions bound to their
axes), so the answers are compared bit for bit; and where the graph meets a non-finite
number or an underflow, the engine's answer is the numeric sweep's, notes included."""
import threading

import numpy as np
import pytest

from adcalc import derivatives, evaluate as E
from adcalc.engines.reverse import ReverseEngine
from adcalc.errors import DomainError
from adcalc.problem import Problem

REV = ReverseEngine()
CASES = [   # (expression, shapes): index transposes, uniform constants, reductions, matrices
    ("sum(100*(x[1:]-x[:-1]**2)**2 + (1-x[:-1])**2)", {"x": (7,)}),
    ("sum(x[2:] * x[:-2]) + x[0] * x[3] - 3 * sum(x**2)", {"x": (7,)}),
    ("sum(1/(1+exp(-W)))", {"W": (3, 4)}),
    ("sum(dot(x, W) ** 2) + sum(W[0, 1:] * x)", {"x": (3,), "W": (3, 4)}),
    ("logsumexp(x) + sum(sqrt(x**2 + 1) * tanh(x)) - mean(x)", {"x": (5,)}),
    ("sum((x - mean(x))**2) / sum(abs(x) + 1)", {"x": (6,)}),
]


def _problem(expr, shapes, rng):
    return Problem(expr, point={v: rng.uniform(-2, 2, s) for v, s in shapes.items()})


def _interpreted(dp, X, env=None):
    """The same values by the plain interpreter (no program, nothing released)."""
    return dp.values(X, env=env)[dp.output.id]


@pytest.mark.parametrize("points", [3, 2000], ids=["small", "slots"])
@pytest.mark.parametrize("expr,shapes", CASES, ids=[c[0][:30] for c in CASES])
def test_programs_compute_what_the_interpreter_computes_bit_for_bit(expr, shapes, points):
    rng = np.random.default_rng(points)
    p = _problem(expr, shapes, rng)
    X = rng.uniform(-2, 2, (points, p.n))
    V = rng.standard_normal((points, p.n))
    hp, dirs = derivatives.hvp(p)
    env = derivatives.direction_env(dirs, V)
    for dp, e in ((p, None), (derivatives.gradient(p), None), (hp, env)):
        first = dp.values(X, env=e, keep=frozenset())[dp.output.id]
        again = dp.values(X[::-1].copy(), env=e and {k: v[::-1].copy() for k, v in e.items()},
                          keep=frozenset())[dp.output.id]   # the slots reused
        np.testing.assert_array_equal(first, _interpreted(dp, X, e))
        np.testing.assert_array_equal(again, _interpreted(dp, X[::-1], e and {k: v[::-1] for k, v in e.items()}))


def test_engine_gradient_and_hvp_equal_the_numeric_sweeps():
    rng = np.random.default_rng(5)
    for expr, shapes in CASES:
        p = _problem(expr, shapes, rng)
        X = rng.uniform(-2, 2, (50, p.n))
        V = rng.standard_normal((1, 50, p.n))
        g = REV.grad_batch(p, X).value
        swept = REV.vjp_batch(p, X, np.ones((1, 50, 1))).value[0]
        np.testing.assert_allclose(g, swept, rtol=1e-13, atol=1e-13 * np.abs(swept).max())
        h = REV.hvp_batch(p, X, V).value
        doubled = REV.vjp_batch(derivatives.gradient(p), X, V).value   # double backprop
        np.testing.assert_allclose(h, doubled, rtol=1e-12, atol=1e-12 * np.abs(doubled).max())


def test_rows_the_graph_cannot_answer_take_the_sweep_the_others_keep_the_graph():
    """x*sqrt(y) at y = 0: the graph multiplies a zero cotangent by sqrt's infinite slope
    (NaN); the sweep gives that zero its meaning (0) and notes the possible underflow."""
    p = Problem("x*sqrt(y)", point={"x": 1.0, "y": 1.0})
    X = np.array([[2.0, 4.0], [0.0, 0.0], [3.0, 9.0], [2.0, 0.0]])
    r = REV.grad_batch(p, X)
    expect = [[2.0, 0.5], [0.0, 0.0], [3.0, 0.5], [0.0, np.inf]]
    np.testing.assert_array_equal(r.value, expect)
    assert r.info.get("underflow") is True
    for x, row in zip(X, expect):   # one point at a time: the same numbers
        np.testing.assert_array_equal(REV.grad(p, x).value, row)
    assert REV.grad(p, np.array([2.0, 4.0])).info == {}


def test_an_underflow_on_the_graph_is_reported_as_the_sweep_reports_it():
    p = Problem("x*y*y", point={"x": 1.0, "y": 1.0})
    r = REV.grad(p, np.array([1e-160, 1e-160]))
    np.testing.assert_array_equal(r.value, [1e-320, 2e-320])
    assert r.info == {"underflow": True}
    for x in ([1e-160, 1e-160], [1e-300, 1.0], [1.0, 2.0]):   # the HVP: as double backprop says
        X, V = np.array([x]), np.array([[[0.5, 1.0]]])
        h, doubled = REV.hvp_batch(p, X, V), REV.vjp_batch(derivatives.gradient(p), X, V)
        np.testing.assert_array_equal(h.value, doubled.value)
        assert bool(h.info.get("underflow")) == bool(doubled.info.get("underflow"))


def test_domain_checks_stay_where_a_constant_exponent_cannot_decide_them():
    p = Problem("sum(x**2) + sum(x**0.5)", point={"x": np.ones(5000)})
    prog = E.program(p.graph, [p.output], frozenset(), p.base_output_id())
    checked = [p.graph.nodes[s[0]] for s in prog.steps if s[3] is not None]
    assert [n.args[1].uniform for n in checked] == [0.5]   # x**2 needs no check, x**0.5 does
    x = np.ones(5000)
    x[7] = -1.0
    with pytest.raises(DomainError, match="power of a negative number"):
        p.value(x)
    with pytest.raises(DomainError, match="power of a negative number"):
        REV.grad(p, x)


def test_results_are_fresh_arrays_and_slots_are_not_kept_beyond_the_budget(monkeypatch):
    rng = np.random.default_rng(0)
    p = Problem(CASES[0][0], point={"x": np.zeros(20000)})
    xs = [rng.uniform(-2, 2, 20000) for _ in range(3)]
    grads = [REV.grad(p, x).value for x in xs]
    for x, g in zip(xs, grads):   # none overwritten by a later call
        np.testing.assert_array_equal(g, REV.grad(Problem(CASES[0][0], point={"x": x}), x).value)
    gp = derivatives.gradient(p)
    prog = E.program(p.graph, [gp.output], frozenset(), p.base_output_id())
    assert prog.buffers and prog.kept[0] > 0
    monkeypatch.setattr(E, "HELD_BYTES", 0)
    before = E._HELD[0]
    REV.grad(p, xs[0])
    assert prog.buffers == [] and prog.kept[0] == 0 and E._HELD[0] < before


def test_threads_sharing_a_program_get_their_own_answers():
    p = Problem(CASES[0][0], point={"x": np.zeros(30000)})
    rng = np.random.default_rng(1)
    xs = [rng.uniform(-2, 2, 30000) for _ in range(8)]
    expect = [REV.grad(p, x).value for x in xs]
    got = [None] * len(xs)

    def work(k):
        for _ in range(5):
            got[k] = REV.grad(p, xs[k]).value

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, e in zip(got, expect):
        np.testing.assert_array_equal(g, e)


def test_exact_identities_fold_negations_and_share_commuted_products():
    p = Problem("2*x - x*2 + (-(3*x)) + y + (-x)", point={"x": 1.5, "y": 2.0})
    ops = [p.graph.nodes[i].op for i in E.needed(p.graph, [p.output])]
    assert "neg" not in ops and ops.count("mul") == 2   # -(3x) is (-3) x; y + (-x) is y - x
    assert p.value(np.array([1.5, 2.0])) == pytest.approx(2 * 1.5 - 1.5 * 2 - 4.5 + 2.0 - 1.5)


def test_a_sum_that_overflows_over_finite_entries_is_still_answered_by_the_graph():
    """The quick finiteness check sums the answer; huge finite entries whose sum overflows
    are looked at entry by entry and kept."""
    p = Problem("1e307 * (x + y)", point={"x": 1.0, "y": 1.0})
    r = REV.grad(p, np.array([1.0, 2.0]))
    np.testing.assert_array_equal(r.value, [1e307, 1e307])
    assert r.info == {}
    q = Problem("x * 1e308 + y * 1e308", point={"x": 1.0, "y": 1.0})
    np.testing.assert_array_equal(REV.grad_batch(q, np.ones((3, 2))).value, np.full((3, 2), 1e308))


def test_some_entry_finds_exactly_the_values_with_a_matching_entry():
    vals = [np.array([1.0, np.inf]), np.zeros(0), np.array(3.0), np.array([[1e-310, 1.0]]), None,
            np.array([True, False]), np.array([-np.inf])]
    ids = [0, 1, 2, 3, 5, 6]
    assert E.some_entry(vals, ids, np.isinf) == [0, 6]
    assert E.some_entry(vals, ids, lambda a: np.abs(a) < 2.0 ** -1022) == [3, 5]   # False is 0
    assert E.some_entry(vals, ids, np.isnan) == [] and E.some_entry(vals, [], np.isinf) == []
    assert E.some_entry(vals, [2, 5], lambda a: a == 0) == [5]


# ---- one point of numbers (Program._run_point) --------------------------------------------
def _scalar_groups():
    """Every pointwise function of the table in a term over the scalars a and b, by sample
    domain."""
    from adcalc.core import PRIMS
    from adcalc.primitives import FUNCTIONS
    out = {}
    for name in sorted(FUNCTIONS):
        prim = PRIMS.get(name)
        if prim is None or not prim.pointwise:
            continue
        text = f"{name}(a, b) + {name}(b, a)" if FUNCTIONS[name].arity[0] >= 2 else f"{name}(a) * b + {name}(b)"
        out.setdefault(prim.sample, []).append(text)
    return out


SCALAR_TERMS = _scalar_groups()   # sample domain -> one term per function
SCALAR_GROUPS = {s: " + ".join(t) for s, t in SCALAR_TERMS.items()}
RANGES = {"real": (-2.0, 2.0), "positive": (0.2, 3.0), "nonzero": (0.3, 2.0), "unit": (-0.8, 0.8),
          "ge1": (1.2, 3.0)}


def _numbers_used(p):
    gp = derivatives.gradient(p)
    return any(prog and prog.numbers for key, prog in gp.graph.cache.items() if key[0] == "program")


@pytest.mark.parametrize("sample", sorted(SCALAR_TERMS))
def test_one_point_of_numbers_computes_what_arrays_compute_bit_for_bit(sample, monkeypatch):
    """A program over scalar variables whose steps are numpy ufuncs (or marked on_numbers)
    runs one point on numpy's numbers, its arithmetic by operators: the gradient and the
    value equal those of the same program on one-element arrays bit for bit, and the
    batch's to 1e-15.  Points include exponents of exactly 2, 1, 0.5 and -1."""
    lo, hi = RANGES[sample]
    X = np.random.default_rng(len(sample)).uniform(lo, hi, (40, 2))
    X[:8] = [[2.0, 2.0], [3.7, 2.0], [0.5, 1.0], [2.5, 0.5], [1.5, -1.0], [0.3, 3.0], [1.0, 1.0], [2.0, 0.5]]
    X = np.clip(X, lo, hi)
    terms = SCALAR_TERMS[sample]
    numbers, used = {}, {}
    for t in terms:
        p = Problem(t, point={"a": 1.0, "b": 1.0})
        numbers[t] = [(REV.grad(p, x).value, p.value(x)) for x in X]
        used[t] = _numbers_used(p)
        np.testing.assert_allclose(np.array([g for g, _ in numbers[t]]), REV.grad(p, X).value,
                                   rtol=1e-15, atol=1e-300, err_msg=t)
    monkeypatch.setattr(E.Program, "_run_point", lambda self, env, under: (_ for _ in ()).throw(E._NotOnePoint))
    for t in terms:
        q = Problem(t, point={"a": 1.0, "b": 1.0})
        for (g1, f1), x in zip(numbers[t], X):
            g2, f2 = REV.grad(q, x).value, q.value(x)
            np.testing.assert_array_equal(g1, g2, err_msg=f"{t} at {x}")
            np.testing.assert_array_equal(f1, f2, err_msg=f"{t} at {x}")
    assert sum(used.values()) >= len(terms) // 2, used
    for name, expect in (("sin(", True), ("log(", True), ("atan2(", True), ("pow(", False), ("erf(", False)):
        for t in terms:
            if t.startswith(name):
                assert used[t] is expect, t


def test_one_point_of_numbers_keeps_domain_errors_underflow_and_fallbacks():
    p = Problem("log(x1) + x1*x2 - sin(x2)", at="2,5")
    for _ in range(3):
        np.testing.assert_allclose(REV.grad(p, np.array([2.0, 5.0])).value, [5.5, 1.7163378145367738], rtol=1e-15)
    with pytest.raises(DomainError, match=r"log of a non-positive number in 'log\(x1\)' at x1=-1.0, x2=5.0"):
        REV.grad(p, np.array([-1.0, 5.0]))
    # an underflow inside the gradient graph: the sweep's answer and its note, as on arrays
    u = Problem("x*y*y", point={"x": 1.0, "y": 1.0})
    for _ in range(3):
        r = REV.grad(u, np.array([1e-160, 1e-160]))
    np.testing.assert_array_equal(r.value, [1e-320, 2e-320])
    assert r.info == {"underflow": True}
    assert REV.grad(u, np.array([1.0, 2.0])).info == {}
    # a non-finite gradient at one point takes the sweep (x*sqrt(y) at y = 0: 0, not NaN)
    s = Problem("x * sqrt(y)", point={"x": 0.0, "y": 1.0})
    for _ in range(3):
        g = REV.grad(s, np.array([0.0, 0.0])).value
    assert g[0] == 0.0 and g[1] == 0.0   # what the sweep says (test above: the rows that take it)
    # the stack of numbers: the gradient of scalars is one fresh array per call
    a, b = REV.grad(p, np.array([2.0, 5.0])).value, REV.grad(p, np.array([3.0, 5.0])).value
    assert a[0] == 5.5 and b[0] == 1 / 3 + 5
