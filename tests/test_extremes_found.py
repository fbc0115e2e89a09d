"""Silent wrong answers found by the 10^5-case run of the issue-9 harness (seed 1), kept as
named regressions.  Each right answer is the 60-digit reference of tests/mpref.py (SymPy's
own diff evaluated with mpmath: none of adcalc's rules), pinned, and checked against
mpref here too; each case says what it caught."""
import json

import mpmath
import pytest

import extremes
import mpref
from test_extremes import run

EXACT = ("reverse", "forward")

# (quantity, expression, point, direction, engines, right answer, what it caught)
CASES = [
    ("hessian", "atanh(b)", "b=4e-161", None, EXACT, 8e-161,
     "(1 - x)(1 + x) differentiated into -(1 + x) + (1 - x) = 0 at tiny x"),
    ("hessian", "atanh(a)", "a=7e-314", None, EXACT, 1.40000000005e-313, "the same, subnormal"),
    ("grad", "expm1(a)", "a=-20.644806573781672", None, EXACT, 1.0816192925178623e-09,
     "expm1' as expm1 + 1 keeps 8 digits where expm1 is near -1"),
    ("hvp", "b**1.5", "b=1.3096970737845295e-219", "3", EXACT, 6.217232227209236e+109,
     "x**y' as y x**y / x is 0 where x**y underflows"),
    ("grad", "b + tan(b)", "b=-4.92e+120", None, ("numeric",), 2.2568900653523567,
     "a complex step of 2^-66 |b| saturates tan: the mean slope 1"),
    ("grad", "cos(b)", "b=2e+32", None, ("numeric",), -0.9490904985563537,
     "a complex step of 2^-66 |b| overflows cosh; real steps span periods"),
    ("grad", "cos(b**2)", "b=509.53113863786444", None, ("numeric",), -705.2595638856134,
     "the guard difference at 2^-12 |b| spans periods and vetoed a right complex step"),
    ("grad", "exp(log(c, 10))", "c=9e-50", None, ("numeric",), 2.4167958301242464e+27,
     "a complex step of the typical size (2e-28, far above c) looked more precise"),
]


@pytest.mark.parametrize("command,text,point,direction,engines,right,why", CASES,
                         ids=[f"{c[0]} {c[1]} at {c[2]}" for c in CASES])
def test_found_case_is_right(command, text, point, direction, engines, right, why):
    name, value = point.split("=")
    case = extremes.case(text, {name: float(value)}, None if direction is None else [float(direction)])
    (comp,) = mpref.reference(case).flat(command)
    assert comp.status == "finite" and float(comp.value) == pytest.approx(right, rel=1e-12, abs=0)
    for engine in engines:
        argv = [command, text, f"--at={point}", "--engine", engine, "--json"]
        if direction is not None:
            argv.append(f"--vector={direction}")
        out = run(argv)
        assert out.rc == 0, out.stderr
        obj = json.loads(out.stdout)
        got = obj[{"grad": "gradient"}.get(command, command)]
        got = got[0][0] if command == "hessian" else got[0]
        tol = 1e-13 * abs(right)
        if engine == "numeric":
            est = obj["error_estimate"]
            est = est[0][0] if command == "hessian" else est[0]
            assert abs(got - right) <= max(tol, est), (engine, why, got, est)
            # an estimate above the value must be said in words (exp(log(c, 10)) at 9e-50: the
            # rounding bound of the imaginary parts is far too pessimistic, and says so)
            assert est <= 0.6 * abs(right) or any("inexact" in w for w in obj["warnings"]), (engine, why, est)
        else:
            assert abs(got - right) <= tol, (engine, why, got)


@pytest.mark.parametrize("engine", ("reverse", "forward", "numeric", "compiled"))
def test_an_overflow_inside_f_nulls_the_derivatives(engine):
    """cbrt(c**2) at 2e186: c**2 overflows, cbrt(inf) = inf and its slope came out 0.0
    (right: 2 / (3 cbrt(c)) = 5.29e-63).  Nothing computed through an overflow is given."""
    out = run(["grad", "cbrt(c**2)", "--at=c=2e+186", "--engine", engine, "--json"])
    assert out.rc == 0, out.stderr
    obj = json.loads(out.stdout)
    assert obj["gradient"] == [None]
    assert any("c**2 overflows" in w for w in obj["warnings"])


def test_the_symbolic_engine_still_answers_through_an_overflow():
    out = run(["grad", "cbrt(c**2)", "--at=c=2e+186", "--engine", "symbolic", "--json"])
    right = float(2 / (3 * mpmath.cbrt(mpmath.mpf("2e186"))))
    assert json.loads(out.stdout)["gradient"][0] == pytest.approx(right, rel=1e-14)


def test_numeric_flags_a_function_it_cannot_resolve():
    """abs(cos(b)) at 2e32 (not complex-analytic: real differences only): every step from
    1e32 down to 1e27 spans periods; the quotients are noise.  Flagged, not 1e-32."""
    out = run(["grad", "abs(cos(b))", "--at=b=2e+32", "--engine", "numeric", "--json"])
    obj = json.loads(out.stdout)
    assert obj["gradient"] == [None] and obj["status"] == ["not finite"]
    assert any("varies faster than the difference steps" in w for w in obj["warnings"])


def test_batch_rows_that_overflow_inside_f_are_null_and_counted(tmp_path):
    """The same in batch mode: each row whose evaluation overflows is null and named; the
    other rows keep their answers."""
    pts = tmp_path / "pts.csv"
    pts.write_text("c\n2e186\n3\n1e200\n")
    out = run(["grad", "cbrt(c**2)", "--points", str(pts)])
    assert out.rc == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["gradient"][0] is None for r in rows] == [True, False, True]
    assert rows[1]["gradient"][0] == pytest.approx(2 / (3 * 3 ** (1 / 3)), rel=1e-15)
    assert "2 of 3 rows overflow float64 inside f" in out.stderr and "rows 0, 2" in out.stderr


def test_numeric_hessian_keeps_real_differences_where_the_complex_step_changed_scale():
    """logsumexp(exp(v)) at v0 = 45: the complex step at 2^-66 |v0| is garbage (exp(45 + ih)
    has an imaginary part near 21 inside the next exp), so the Hessian must not difference
    complex-step gradients at that scale; found when the gradient's own complex step
    learnt other scales (the reference: 4.624351810348064e19)."""
    point = [45.28045297891552, 3.59562448067277, 2.175058909841643]
    case = extremes.case("logsumexp(exp(v))", {"v": point})
    right = float(mpref.reference(case).flat("hessian")[0].value)
    out = run(["hessian", "logsumexp(exp(v))", f"--at=v={point}".replace(" ", ""), "--engine", "numeric", "--json"])
    obj = json.loads(out.stdout)
    got, est = obj["hessian"][0][0], obj["error_estimate"][0][0]
    assert abs(got - right) <= est and est <= 1e-6 * abs(right), (got, est, right)
