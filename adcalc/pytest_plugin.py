"""pytest plugin: gradient-check tables in pytest's own report.

Loaded through the entry point `[project.entry-points.pytest11] adcalc = "adcalc.pytest_plugin"`
(or `-p adcalc.pytest_plugin`).  It gives:

* a report section "adcalc gradient check" holding the component table under every
  test that fails in `adcalc.assert_grad`, and the same table as the test's
  `adcalc_gradient_check` property in --junitxml reports (CI pages show it);
* the table as the explanation of a failing comparison that involves a CheckResult,
  such as `assert check_grad(f, g, x) == True`;
* the fixture `assert_grad`: adcalc.assert_grad, for tests that prefer fixtures.
"""
import pytest

SECTION = "adcalc gradient check"
PROPERTY = "adcalc_gradient_check"
PREFIX = "gradient check failed\n"


def _is_result(obj):
    from adcalc.check import CheckResult
    return isinstance(obj, CheckResult)


def pytest_assertrepr_compare(config, op, left, right):
    """A comparison with a failed CheckResult explains itself with the check's table."""
    res = left if _is_result(left) else right if _is_result(right) else None
    if res is None:
        return None
    head = f"{res!r} {op} {right!r}" if res is left else f"{left!r} {op} {res!r}"
    table = res.table().rstrip("\n").splitlines()
    verdict = [ln for ln in table if ln.startswith(("MISMATCH", "worst:", "ok:"))]
    return [head] + verdict + [""] + table   # the verdict first: pytest shortens long explanations


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failure raised by adcalc.assert_grad gets the table as its own report section."""
    outcome = yield
    rep = outcome.get_result()
    exc = call.excinfo.value if call.excinfo is not None else None
    if rep.failed and isinstance(exc, AssertionError) and str(exc).startswith(PREFIX):
        table = str(exc)[len(PREFIX):]
        rep.sections.append((SECTION, table))
        item.user_properties.append((PROPERTY, table))   # --junitxml reads them after teardown


@pytest.fixture
def assert_grad():
    """adcalc.assert_grad(f, grad, x, **options): AssertionError with the table when wrong."""
    from adcalc.check import assert_grad as check
    return check
