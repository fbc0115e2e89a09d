"""The compiled engine through the command line: --fast, --dtype, size limits, verify rows."""
import json

import numpy as np
import pytest

from adcalc import codegen
from adcalc.cli import main
from adcalc.engines.compiled import CompiledEngine
from adcalc.problem import Problem

pytestmark = pytest.mark.skipif(CompiledEngine().available() is not None, reason="no C compiler here")


@pytest.fixture(autouse=True)
def _kernel_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADCALC_CACHE_DIR", str(tmp_path / "kernels"))


def run(capsys, argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fast", [[], ["--fast"]])
def test_worked_example_compiled_exact_and_fast(capsys, fast):
    code, out, err = run(capsys, ["grad", "log(x1)+x1*x2-sin(x2)", "--at", "2,5", "-e", "compiled", "--json"] + fast)
    assert code == 0, err
    g = json.loads(out)["gradient"]
    assert g[0] == 5.5
    assert abs(g[1] - (2 - np.cos(5.0))) <= 1e-15 * 2


@pytest.mark.parametrize("argv, message", [
    (["--fast"], "--fast applies to the compiled and the gpu engines"),
    (["--dtype", "float32", "-e", "compiled"], "--dtype applies to the gpu engine"),
    (["--method", "central", "-e", "compiled"], "--method applies to the numeric engine"),
])
def test_options_for_other_engines_are_input_errors(capsys, argv, message):
    code, out, err = run(capsys, ["grad", "x**2", "--at", "3"] + argv)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_many_points_through_the_compiled_engine_keep_good_rows(capsys):
    code, out, err = run(capsys, ["grad", "log(x1)+x1*x2-sin(x2)", "--at", "2,5", "--at", "-1,2", "--at", "3,4",
                                  "-e", "compiled", "--fast"])
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0]["gradient"] == [5.5, pytest.approx(2 - np.cos(5.0), rel=1e-15)]
    assert rows[1]["gradient"] == [None, None] and "log of a non-positive number" in rows[1]["warnings"][0]
    assert rows[2]["gradient"] == [pytest.approx(4 + 1 / 3, rel=1e-15), pytest.approx(3 - np.cos(4.0), rel=1e-15)]
    assert "1 of 3 rows outside the domain" in err


def test_a_kernel_too_large_is_declined_with_the_reason(capsys, monkeypatch):
    monkeypatch.setattr(codegen, "MAX_STATEMENTS", 50)
    expr = "+".join(f"sin(x{i})*x{i}" for i in range(20))
    at = ",".join(str(0.1 * i) for i in range(20))
    code, out, err = run(capsys, ["grad", expr, "--at", at, "-e", "compiled"])
    assert code == 2 and "C statements; generated kernels take up to 50" in err
    assert "the reverse engine computes the same" in err


def test_verify_declines_only_the_quantity_that_is_too_large(capsys, monkeypatch):
    """A Hessian kernel over the limit leaves the compiled engine's grad and hvp rows checked."""
    prob = Problem("sum(sin(x)*x)", point={"x": np.linspace(0.1, 0.9, 12)})
    sizes = {q: codegen.problem_kernel(prob, q).n_statements for q in ("grad", "hvp", "hessian")}
    assert sizes["hessian"] > max(sizes["grad"], sizes["hvp"])
    monkeypatch.setattr(codegen, "MAX_STATEMENTS", max(sizes["grad"], sizes["hvp"]))
    code, out, err = run(capsys, ["verify", "sum(sin(x)*x)", "--at", "x=" + json.dumps(list(np.linspace(0.1, 0.9, 12))),
                                  "--engines", "reverse,compiled", "--json"])
    assert code == 0, err
    rows = json.loads(out)["engines"]["compiled"]["quantities"]
    assert rows["grad"]["status"] == "ok" and rows["hvp"]["status"] == "ok"
    assert rows["hessian"]["status"] == "unavailable"
    assert "C statements" in rows["hessian"]["reason"]
