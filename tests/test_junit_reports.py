"""JUnit reports of verify and check (adcalc.reports) and the pytest plugin (adcalc.pytest_plugin)."""
import xml.etree.ElementTree as ET

import numpy as np

from adcalc import reports
from adcalc import verify as V
from adcalc.check import check_grad
from adcalc.problem import Problem

pytest_plugins = ["pytester"]
WORKED = "log(x1)+x1*x2-sin(x2)"


def ex_f(x):
    return np.log(x[0]) + x[0] * x[1] - np.sin(x[1])


def ex_g(x):
    return np.array([1 / x[0] + x[1], x[0] - np.cos(x[1])])


def wrong_g(x):  # d/dx2 has the wrong sign on cos
    return np.array([1 / x[0] + x[1], x[0] + np.cos(x[1])])


def cases_of(path):
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    return root, suite, {tc.get("name"): tc for tc in suite.findall("testcase")}


def test_a_failing_check_names_the_failing_component(tmp_path):
    res = check_grad(ex_f, wrong_g, [2.0, 5.0])
    assert not res.ok
    path = reports.check_junit(res, tmp_path / "check.xml")
    root, suite, cases = cases_of(path)
    assert suite.get("tests") == "3" and suite.get("failures") == "1" and root.get("failures") == "1"
    failed = [tc for tc in suite.findall("testcase") if tc.find("failure") is not None]
    assert [tc.get("name") for tc in failed] == ["x[1] at x=[2.,5.]"]
    failure = failed[0].find("failure")
    assert "component x[1] is wrong" in failure.get("message")
    assert "component: x[1]" in failure.text and "status: mismatch" in failure.text
    assert f"value: {float(wrong_g(np.array([2.0, 5.0]))[1])!r}\nreference: 1.7163378145367738" in failure.text
    assert cases["x[0] at x=[2.,5.]"].find("failure") is None
    assert failed[0].get("classname") == "adcalc.check.wrong_g"


def test_a_passing_check_has_no_failures(tmp_path):
    res = check_grad(ex_f, ex_g, [2.0, 5.0], random=3, seed=1)
    assert res.ok
    _, suite, cases = cases_of(reports.check_junit(res, tmp_path / "ok.xml"))
    assert suite.get("failures") == "0" and suite.get("errors") == "0"
    assert any(name.startswith("taylor test") for name in cases)


def test_check_lists_every_failing_point(tmp_path):
    res = check_grad(ex_f, wrong_g, [2.0, 5.0], points=[[2.0, 5.0], [1.0, 1.0], [3.0, 2.0]])
    cases = reports.check_cases(res)
    extra = [c for c in cases if c.name.startswith("point x=")]
    assert len(extra) == len(res.failed_points) - 1 == 2 and all(c.status == "mismatch" for c in extra)


def test_verify_junit_one_case_per_engine_and_quantity(tmp_path):
    rep = V.run(Problem(WORKED, at="2,5"), ["grad", "hessian"], ["reverse", "forward", "symbolic", "gpu"])
    path = reports.verify_junit(rep, tmp_path / "verify.xml")
    _, suite, cases = cases_of(path)
    assert suite.get("name") == f"adcalc verify {WORKED}"
    assert set(cases) == {"reverse grad", "reverse hessian", "forward grad", "forward hessian",
                          "symbolic grad", "symbolic hessian", "gpu"}
    assert suite.get("failures") == "0" and suite.get("skipped") == "1"
    assert cases["gpu"].find("skipped") is not None
    assert cases["forward hessian"].get("classname") == "adcalc.verify.hessian"


def test_verify_junit_failure_carries_the_table_row(tmp_path):
    rep = V.run(Problem(WORKED, at="2,5"), ["grad"], ["reverse"], claims=[("grad", "1/x1 + x2, x1 + cos(x2)")])
    assert not rep.ok
    _, suite, cases = cases_of(reports.verify_junit(rep, tmp_path / "v.xml"))
    failure = cases["claim expect-grad"].find("failure")
    assert suite.get("failures") == "1" and failure is not None
    assert "at x2" in failure.get("message")
    assert "engine: claim\nquantity: expect-grad\nstatus: mismatch" in failure.text
    assert "worst: x2" in failure.text


def test_verify_junit_from_a_wrong_engine(tmp_path, monkeypatch):
    from adcalc.engines.base import Result
    from adcalc.engines.reverse import ReverseEngine

    class Wrong(ReverseEngine):
        name = "wrong"

        def grad_batch(self, prob, X):
            return Result(super().grad_batch(prob, X).value * (1 + 1e-6))
    real = V.engine_class
    monkeypatch.setattr(V, "engine_class", lambda name: Wrong if name == "wrong" else real(name))
    rep = V.verify(Problem(WORKED, at="2,5"), ["grad"], ["reverse", "wrong"])
    _, suite, cases = cases_of(reports.verify_junit(rep, tmp_path / "w.xml"))
    failure = cases["wrong grad"].find("failure")
    assert "wrong grad differs from reverse at x1" in failure.get("message")
    assert cases["reverse grad"].find("failure") is None


PLUGIN_TESTS = """
import numpy as np
import adcalc
from adcalc.check import check_grad


def f(x):
    return float(np.sum(x ** 3))


def bad(x):
    return 3 * x ** 2 + np.array([0.0, 1.0])


def test_fails_in_assert_grad():
    adcalc.assert_grad(f, bad, [1.0, 2.0])


def test_fixture(assert_grad):
    assert_grad(f, lambda x: 3 * x ** 2, [1.0, 2.0])


def test_comparison():
    assert check_grad(f, bad, [1.0, 2.0]) == True
"""


def _plugin_installed():
    """Whether the pytest11 entry point loads the plugin already (then -p would load it twice)."""
    from importlib.metadata import entry_points
    return any(ep.value == "adcalc.pytest_plugin" for ep in entry_points(group="pytest11"))


def test_pytest_plugin_shows_the_table(pytester):
    pytester.makepyfile(test_user=PLUGIN_TESTS)
    xml = pytester.path / "junit.xml"
    load = [] if _plugin_installed() else ["-p", "adcalc.pytest_plugin"]
    result = pytester.runpytest_inprocess(*load, "-q", f"--junitxml={xml}")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    assert "- adcalc gradient check -" in out
    assert "MISMATCH: the gradient is wrong at x[1]" in out
    assert "<CheckResult ok=False worst='x[1]'" in out           # the comparison's explanation
    props = {p.get("name"): p.get("value") for p in ET.parse(xml).getroot().iter("property")}
    assert "x[1]" in props["adcalc_gradient_check"] and "mismatch" in props["adcalc_gradient_check"]
