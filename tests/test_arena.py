"""Arrays written in place and reused (adcalc/arena.py): results handed to the caller are
never overwritten by a later call, and every answer equals the one computed without reuse."""
import numpy as np
import pytest

from adcalc import arena
from adcalc.engines.forward import ForwardEngine
from adcalc.engines.reverse import ReverseEngine
from adcalc.problem import Problem

N = 6000   # entries: above the sizes where reuse starts (4096)
EXPRS = [
    "sum(100*(x[1:]-x[:-1]**2)**2 + (1-x[:-1])**2)",
    "sum(exp(-x) * sin(x) - x / (1 + x**2))",
    "logsumexp(x) + sum(sqrt(x**2 + 1) * tanh(x))",
    "sum((x - mean(x))**2) / sum(abs(x) + 1)",
]


def _closed_rosenbrock_grad(x):
    a, b = x[:-1], x[1:]
    g = np.zeros_like(x)
    g[:-1] = -400 * a * (b - a ** 2) - 2 * (1 - a)
    g[1:] += 200 * (b - a ** 2)
    return g


def _points(k):
    rng = np.random.default_rng(k)
    return rng.uniform(-2, 2, N), rng.standard_normal(N)


def test_rosenbrock_gradient_matches_the_closed_form_call_after_call():
    p = Problem(EXPRS[0], point={"x": np.zeros(N)})
    eng = ReverseEngine()
    for k in range(4):
        x, _ = _points(k)
        g = eng.grad(p, x).value
        ref = _closed_rosenbrock_grad(x)
        assert np.max(np.abs(g - ref)) <= 1e-13 * np.max(np.abs(ref))


@pytest.mark.parametrize("expr", EXPRS)
@pytest.mark.parametrize("engine", [ReverseEngine(), ForwardEngine()], ids=["reverse", "forward"])
def test_results_survive_later_calls_and_equal_answers_without_reuse(expr, engine, monkeypatch):
    p = Problem(expr, point={"x": np.zeros(N)})
    kept = []
    for k in range(3):
        x, v = _points(k)
        # the forward engine's gradient takes n directions: its hvp (one) is the case here
        g = engine.grad(p, x).value if engine.name == "reverse" else engine.jvp(p, x, v).value
        h, f = engine.hvp(p, x, v).value, p.value(x)
        kept.append((x, v, g, g.copy(), h, h.copy(), f, np.copy(f)))
    for x, v, g, g0, h, h0, f, f0 in kept:   # nothing handed out was written to afterwards
        assert np.array_equal(g, g0) and np.array_equal(h, h0) and np.array_equal(f, f0)
    monkeypatch.setattr(arena, "SMALLEST", 1 << 62)        # no arena
    monkeypatch.setattr(arena.ARENA, "budget", 0)
    from adcalc import ad, evaluate
    monkeypatch.setattr(evaluate, "_REUSE_FROM", 1 << 62)   # no writing into dead arguments
    monkeypatch.setattr(ad, "_INPLACE_FROM", 1 << 62)
    q = Problem(expr, point={"x": np.zeros(N)})
    for x, v, g, _, h, _, f, _ in kept:
        assert np.array_equal(engine.grad(q, x).value if engine.name == "reverse" else engine.jvp(q, x, v).value, g)
        assert np.array_equal(engine.hvp(q, x, v).value, h)
        assert np.array_equal(q.value(x), f)


def test_arena_keeps_within_its_budget_and_hands_out_each_array_once():
    a = arena.Arena(budget=3 * 8 * 8192)
    arrays = [np.empty(8192) for _ in range(5)]
    for x in arrays:
        a.give(x)
    assert a.bytes == 3 * 8 * 8192
    got = [a.take((8192,)) for _ in range(4)]
    assert got[3] is None and len({id(x) for x in got[:3]}) == 3
    assert a.take((8191,)) is None
    a.give(np.empty(10))   # small arrays are left to numpy's own cache
    a.give(np.empty((100, 100))[:, ::2])   # views are never kept
    assert a.bytes == 0
