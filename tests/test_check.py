"""`adcalc check` and the Python API adcalc.check_grad / adcalc.assert_grad."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from adcalc import check as C
from adcalc.check import assert_grad, check_grad


# ---- functions under test ----------------------------------------------------------------
def ex_f(x):  # the worked example log(x1) + x1*x2 - sin(x2)
    return np.log(x[0]) + x[0] * x[1] - np.sin(x[1])


def ex_g(x):
    return np.array([1 / x[0] + x[1], x[0] - np.cos(x[1])])


def rosen_f(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def rosen_g(x):
    g = np.zeros_like(x)
    g[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


def f32(fun):
    return lambda x: fun(np.asarray(x, dtype=np.float32))


def bump(g, i, factor=1.0001):
    def h(x):
        out = np.array(g(x), copy=True)
        out.flat[i] *= out.dtype.type(factor)
        return out
    return h


RX = np.array([-1.2, 1.0, 0.7, 1.1, 0.9])


# ---- API ---------------------------------------------------------------------------------
def test_correct_gradient_passes():
    r = check_grad(ex_f, ex_g, [2.0, 5.0])
    assert r.ok and bool(r)
    assert r.method == "complex-step" and r.dtype == "float64"
    assert [row.status for row in r.rows] == ["ok", "ok"]
    assert abs(r.taylor_order - 2) < 0.2
    name, value, ref, diff, tol, status = r.rows[1]
    assert name == "x[1]" and value == pytest.approx(1.7163378145367738, rel=1e-12) and status == "ok"
    assert diff <= tol < 1e-8


@pytest.mark.parametrize("f,g,x,i", [(ex_f, ex_g, [2.0, 5.0], i) for i in range(2)]
                         + [(rosen_f, rosen_g, RX, i) for i in range(5)])
def test_one_component_off_by_1e4_fails_and_is_named(f, g, x, i):
    r = check_grad(f, bump(g, i), x)
    assert not r.ok
    assert r.worst == f"x[{i}]"
    assert [row.name for row in r.mismatches] == [f"x[{i}]"]


def test_float32_correct_gradients_pass():
    x32 = np.array([2.0, 5.0], dtype=np.float32)
    r = check_grad(ex_f, ex_g, x32)            # generic numpy code given float32 x
    assert r.ok and r.dtype == "float32" and r.differenced_in == "float64"
    r = check_grad(f32(ex_f), f32(ex_g), x32)  # code that computes in float32 whatever it gets
    assert r.ok and r.dtype == "float32" and r.differenced_in == "float32"
    assert check_grad(f32(rosen_f), f32(rosen_g), RX.astype(np.float32)).ok


def test_float32_bug_of_1e4_is_caught():
    x32 = np.array([2.0, 5.0], dtype=np.float32)
    assert not check_grad(ex_f, bump(ex_g, 1), x32).ok
    assert not check_grad(f32(rosen_f), bump(f32(rosen_g), 2), RX.astype(np.float32)).ok


def test_badly_scaled_inputs():
    x = [1e-6, 1e-3, 1.0, 1e3, 1e6]
    f = lambda x: np.sum(np.log(x)) + np.sum(np.sqrt(x))  # noqa: E731
    g = lambda x: 1 / x + 0.5 / np.sqrt(x)  # noqa: E731
    assert check_grad(f, g, x).ok
    assert check_grad(f, bump(g, 0), x).worst == "x[0]"
    assert check_grad(f, bump(g, 4), x).worst == "x[4]"


def test_near_and_at_a_kink():
    f = lambda x: np.sum(np.abs(x)) + x[2] ** 2  # noqa: E731
    g = lambda x: np.sign(x) + np.array([0, 0, 2 * x[2]])  # noqa: E731
    assert check_grad(f, g, [3e-9, -5e-9, 1.0]).ok
    relu = lambda x: np.sum(np.maximum(x, 0))  # noqa: E731
    r = check_grad(relu, lambda x: (x > 0).astype(float), [0.0, 1.0])
    assert r.ok and r.rows[0].status == "kink" and "one-sided slopes" in r.rows[0].note
    r = check_grad(relu, lambda x: np.array([2.0, 1.0]), [0.0, 1.0])  # outside [0, 1]
    assert not r.ok and r.worst == "x[0]"


def test_code_that_is_not_complex_analytic_is_differenced():
    f = lambda x: np.sum(np.abs(x) ** 3) + x[0] * x[1]  # noqa: E731
    g = lambda x: 3 * x * np.abs(x) + np.array([x[1], x[0], 0])  # noqa: E731
    r = check_grad(f, g, [0.7, -1.3, 2.0])
    assert r.ok and r.method == "richardson"
    assert any("complex step" in w for w in r.warnings)
    assert not check_grad(f, bump(g, 2), [0.7, -1.3, 2.0]).ok


def test_jacobian():
    f = lambda x: np.array([x[0] * np.cos(x[1]), x[0] * np.sin(x[1])])  # noqa: E731
    J = lambda x: np.array([[np.cos(x[1]), -x[0] * np.sin(x[1])],  # noqa: E731
                            [np.sin(x[1]), x[0] * np.cos(x[1])]])
    r = check_grad(f, J, [2.0, 0.7], jacobian=True)
    assert r.ok and r.rows[1].name == "f[0]/x[1]" and r.gradient.shape == (2, 2)
    assert not check_grad(f, lambda x: J(x).T, [2.0, 0.7], jacobian=True).ok


def test_taylor_order_shows_a_wrong_gradient():
    assert abs(check_grad(rosen_f, rosen_g, RX).taylor_order - 2) < 0.2
    r = check_grad(rosen_f, lambda x: rosen_g(x) * 1.01, RX)
    assert abs(r.taylor_order - 1) < 0.2 and r.taylor_status == "suspect"


def test_random_points():
    g = lambda x: 3 * x ** 2 + (x[0] > 1.2) * np.array([1e-3, 0, 0])  # noqa: E731
    r = check_grad(lambda x: np.sum(x ** 3), g, [1.0, 2.0, 3.0], random=12, seed=5)
    assert r.points == 12 and not r.ok and len(r.failed_points) >= 1
    assert all(p[0] > 1.2 for p in r.failed_points)
    assert check_grad(lambda x: np.sum(x ** 3), lambda x: 3 * x ** 2, [1.0, 2.0, 3.0], random=5).ok


def test_assert_grad_is_a_one_liner():
    assert_grad(ex_f, ex_g, [2.0, 5.0])


def test_assert_grad_message_is_the_table():
    with pytest.raises(AssertionError) as info:
        assert_grad(ex_f, bump(ex_g, 1), [2.0, 5.0])
    text = str(info.value)
    for word in ("component", "your gradient", "reference", "tolerance", "x[1]", "mismatch", "taylor"):
        assert word in text
    assert "MISMATCH: the gradient is wrong at x[1]" in text


def test_bad_input_to_the_api():
    with pytest.raises(ValueError, match="not a scalar"):
        check_grad(lambda x: x, lambda x: x, [1.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        check_grad(ex_f, lambda x: np.ones(3), [2.0, 5.0])
    with pytest.raises(ZeroDivisionError):  # the user's own exception, unchanged
        check_grad(lambda x: 1 / 0, ex_g, [2.0, 5.0])
    with pytest.raises(ValueError, match="not finite"):
        check_grad(ex_f, ex_g, [-1.0, 5.0])


def test_lazy_export_from_the_package():
    import adcalc
    if "__getattr__" not in vars(adcalc):
        pytest.skip("adcalc/__init__.py does not export check_grad yet")
    assert adcalc.check_grad is check_grad and adcalc.assert_grad is assert_grad
    out = subprocess.run([sys.executable, "-c", "import sys, adcalc; print('adcalc.check' in sys.modules, "
                          "'numpy' in sys.modules)"], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ---- command line --------------------------------------------------------------------------
USER = textwrap.dedent("""
    import numpy as np
    def f(x): return np.log(x[0]) + x[0]*x[1] - np.sin(x[1])
    def g(x): return np.array([1/x[0] + x[1], x[0] - np.cos(x[1])])
    def gbad(x): return np.array([1/x[0] + x[1], (x[0] - np.cos(x[1]))*1.0001])
    def gshape(x): return np.ones(3)
    def boom(x): raise ValueError("kaboom")
    def vec(x): return np.array([x[0]*x[1], np.sin(x[0])])
    def jac(x): return np.array([[x[1], x[0]], [np.cos(x[0]), 0.0]])
    NUMBER = 3
""")
MOD = "adcalc_test_check_usermod"


@pytest.fixture(scope="module")
def userdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("user")
    (d / f"{MOD}.py").write_text(USER)
    return d


@pytest.fixture
def run(userdir, monkeypatch, capsys):
    """adcalc check ARGS in-process, through adcalc.cli.main (exit codes and error lines);
    returns (code, stdout, stderr)."""
    from adcalc import cli
    monkeypatch.chdir(userdir)

    def go(*args):
        code = cli.main(["check", *args])
        out = capsys.readouterr()
        return code, out.out, out.err
    return go


def test_cli_agrees_exit_0(run):
    code, out, err = run(f"{MOD}:f", "--grad", f"{MOD}:g", "--at", "2,5")
    assert code == 0 and err == ""
    assert "ok: the gradient agrees" in out and "x[1]" in out and "taylor" in out


def test_cli_at_as_a_list_and_default_module(run):
    code, out, _ = run(f"{MOD}:f", "--grad", "g", "--at", "[2,5]")
    assert code == 0


def test_cli_mismatch_exit_1_names_the_component(run):
    code, out, _ = run(f"{MOD}:f", "--grad", f"{MOD}:gbad", "--at", "2,5")
    assert code == 1
    assert "MISMATCH: the gradient is wrong at x[1]" in out


def test_cli_json(run):
    code, out, _ = run(f"{MOD}:f", "--grad", f"{MOD}:gbad", "--at", "2,5", "--json")
    obj = json.loads(out)
    assert code == 1
    for key in ("command", "function", "gradient_function", "point", "ok", "method", "dtype",
                "components", "worst", "taylor_order", "warnings"):
        assert key in obj
    assert obj["command"] == "check" and obj["ok"] is False and obj["worst"] == "x[1]"
    assert obj["point"] == [2.0, 5.0] and obj["method"] == "complex-step" and obj["dtype"] == "float64"
    assert [c["status"] for c in obj["components"]] == ["ok", "mismatch"]
    assert obj["gradient_function"] == f"{MOD}:gbad"


@pytest.mark.parametrize("args,message", [
    (("{m}:f", "--grad", "{m}:gshape", "--at", "2,5"), "shape"),
    (("{m}:boom", "--grad", "{m}:g", "--at", "2,5"), "raised ValueError: kaboom"),
    (("no_such_module_xyz:f", "--grad", "g", "--at", "2,5"), "no module named"),
    (("{m}:nope", "--grad", "{m}:g", "--at", "2,5"), "no attribute 'nope'"),
    (("{m}:NUMBER", "--grad", "{m}:g", "--at", "2,5"), "not a function"),
    (("missing_file.py:f", "--grad", "g", "--at", "2,5"), "no such file"),
    (("{m}:vec", "--grad", "{m}:jac", "--at", "1,2"), "not a scalar"),
    (("{m}:f", "--grad", "{m}:g"), "needs a point"),
    (("{m}:f", "--grad", "{m}:g", "--at", "2,x"), "--at"),
    (("{m}:f", "--at", "2,5"), "--grad"),
])
def test_cli_bad_input_exit_2(run, args, message):
    code, out, err = run(*[a.format(m=MOD) for a in args])
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_cli_error_with_json(run):
    code, out, err = run(f"{MOD}:boom", "--grad", f"{MOD}:g", "--at", "2,5", "--json")
    msg = json.loads(out)["error"]
    assert code == 2 and "at x=[2.,5.]" in msg and "--debug" in msg


def test_cli_file_path_jacobian_and_random(run, userdir):
    path = str(userdir / f"{MOD}.py")
    code, out, _ = run(f"{path}:vec", "--grad", f"{path}:jac", "--at", "1,2", "--jacobian")
    assert code == 0 and "f[1]/x[0]" in out
    code, out, _ = run(f"{MOD}:f", "--grad", f"{MOD}:g", "--at", "2,5", "--random", "4", "--seed", "1", "--json")
    assert code == 0 and json.loads(out)["points"] == 4


def test_cli_save_failures_and_replay(run, tmp_path):
    saved = tmp_path / "fail.json"
    code, out, _ = run(f"{MOD}:f", "--grad", f"{MOD}:gbad", "--at", "2,5", "--save-failures", str(saved))
    assert code == 1 and saved.exists()
    obj = json.loads(saved.read_text())
    assert obj["command"] == "check" and obj["points"] == [[2.0, 5.0]] and "x[1]" in obj["differences"]
    code, out, _ = run(f"{MOD}:f", "--grad", f"{MOD}:gbad", "--replay", str(saved))
    assert code == 1 and "x[1]" in out
    # the file alone decides nothing: the functions must be named on the command line
    code, out, err = run("--replay", str(saved))
    assert code == 2 and "imported only when you name them" in err
    code, out, err = run(f"{MOD}:f", "--grad", f"{MOD}:g", "--replay", str(saved))
    assert code == 2 and "saved for" in err


def test_cli_as_a_subprocess(userdir):
    base = [sys.executable, "-m", "adcalc", "check", f"{MOD}:f", "--at", "2,5", "--grad"]
    ok = subprocess.run(base + [f"{MOD}:g"], cwd=userdir, capture_output=True, text=True)
    bad = subprocess.run(base + [f"{MOD}:gbad", "--json"], cwd=userdir, capture_output=True, text=True)
    err = subprocess.run(base + [f"{MOD}:gshape"], cwd=userdir, capture_output=True, text=True)
    assert (ok.returncode, bad.returncode, err.returncode) == (0, 1, 2)
    assert json.loads(bad.stdout)["worst"] == "x[1]"
    assert err.stderr.startswith("error: ") and "Traceback" not in err.stderr


def test_package_stays_light_to_import():
    """`import adcalc` loads nothing heavy; adcalc.check_grad is imported on first use."""
    code = "import sys, adcalc; print('numpy' in sys.modules, callable(adcalc.check_grad))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
    assert C.check_grad is check_grad
