"""`adcalc verify`, option by option, and its verdict rules (in-process through the CLI)."""
import json

import numpy as np
import pytest

from adcalc import verify as V
from adcalc.cli import main
from adcalc.problem import Problem

WORKED = "log(x1)+x1*x2-sin(x2)"
CPU = "reverse,forward,symbolic,numeric"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    return code, json.loads(out), err


def test_worked_example_every_engine_ok(capsys):
    code, obj, _ = run_json(capsys, "verify", WORKED, "--at", "2,5")
    assert code == 0 and obj["ok"] is True and obj["reference"] == "symbolic"
    for name in CPU.split(","):
        e = obj["engines"][name]
        assert e["status"] == "ok" and e["max_abs_diff"] <= e["tolerance"]
        assert set(e["quantities"]) == {"grad", "hessian", "hvp"}
    assert obj["engines"]["gpu"]["status"] == "unavailable" and obj["engines"]["gpu"]["reason"]
    for key in ("command", "expression", "engine", "variables", "shapes", "inputs", "point", "value", "warnings"):
        assert key in obj


def test_quantities_and_engines_options(capsys):
    code, obj, _ = run_json(capsys, "verify", WORKED, "--at", "2,5", "-q", "grad,hvp", "--engines", "reverse,forward")
    assert code == 0 and set(obj["engines"]) == {"reverse", "forward"}
    assert set(obj["engines"]["reverse"]["quantities"]) == {"grad", "hvp"}
    code, out, err = run(capsys, "verify", WORKED, "--at", "2,5", "-q", "nope")
    assert code == 2 and "unknown quantity" in err
    code, out, err = run(capsys, "verify", WORKED, "--at", "2,5", "--engines", "nope")
    assert code == 2 and "unknown engine" in err
    code, out, err = run(capsys, "verify", "[x, y]", "--at", "1,2", "-q", "grad")
    assert code == 2 and "scalar" in err


def test_vector_valued_defaults_to_jacobian_jvp_vjp(capsys):
    code, obj, _ = run_json(capsys, "verify", "[x*y, sin(x)]", "--at", "1,2", "--engines", "reverse,forward")
    assert code == 0 and set(obj["engines"]["forward"]["quantities"]) == {"jacobian", "jvp", "vjp"}


def test_random_points_and_seed(capsys):
    code, obj, _ = run_json(capsys, "verify", WORKED, "--at", "2,5", "--random", "5", "--seed", "3",
                            "--engines", "reverse,forward,numeric")
    assert code == 0 and obj["points"] == 5
    code2, obj2, _ = run_json(capsys, "verify", WORKED, "--at", "2,5", "--random", "5", "--seed", "3",
                              "--engines", "reverse,forward,numeric")
    assert obj2["engines"]["numeric"]["max_abs_diff"] == obj["engines"]["numeric"]["max_abs_diff"]


def test_box_draws_inside_the_domain_and_rejects_bad_boxes(capsys):
    code, obj, _ = run_json(capsys, "verify", "log(x)", "--at", "1", "--random", "6", "--box=-5,5",
                            "--engines", "reverse,forward")
    assert code == 0 and obj["points"] == 6   # points with x <= 0 are redrawn
    for bad in ("5,1", "1", "a,b", "-1e309,1e308"):
        code, out, err = run(capsys, "verify", "x", "--at", "1", "--random", "2", f"--box={bad}")
        assert code == 2 and "--box" in err


def test_box_over_the_whole_double_range_is_not_an_internal_error(capsys):
    code, out, err = run(capsys, "verify", "x", "--at", "1", "--random", "1", "--box=-1e308,1e308")
    assert code in (0, 2) and "internal error" not in err


def test_expect_grad_and_hessian(capsys):
    code, obj, _ = run_json(capsys, "verify", WORKED, "--at", "2,5", "--expect-grad", "1/x1 + x2, x1 - cos(x2)",
                            "--expect-hessian", "-1/x1**2, 1; 1, sin(x2)")
    assert code == 0 and obj["claims"]["expect-grad"]["status"] == "ok"
    assert obj["claims"]["expect-hessian"]["status"] == "ok"
    code, obj, _ = run_json(capsys, "verify", WORKED, "--at", "2,5", "--expect-grad", "1/x1 + x2, x1 + cos(x2)")
    assert code == 1 and obj["claims"]["expect-grad"]["worst"] == "x2"
    code, out, err = run(capsys, "verify", WORKED, "--at", "2,5", "--expect-grad", "1/x1")
    assert code == 2 and "components" in err
    code, out, err = run(capsys, "verify", WORKED, "--at", "2,5", "--expect-grad", "q, 1")
    assert code == 2 and "'q'" in err


def test_save_failures_and_replay_keep_the_claim(capsys, tmp_path):
    path = tmp_path / "fail.json"
    code, out, _ = run(capsys, "verify", WORKED, "--at", "2,5", "--expect-grad", "1/x1 + x2, x1 + cos(x2)",
                       "--save-failures", str(path))
    assert code == 1 and path.exists()
    saved = json.loads(path.read_text())
    assert saved["command"] == "verify" and saved["claims"] and "claim:expect-grad" in saved["differences"]
    code, obj, _ = run_json(capsys, "verify", "--replay", str(path))
    assert code == 1 and obj["claims"]["expect-grad"]["status"] == "mismatch"
    code, out, err = run(capsys, "verify", "--replay", str(tmp_path / "none.json"))
    assert code == 2 and "no such file" in err
    (tmp_path / "junk.json").write_text("[1, 2]")
    code, out, err = run(capsys, "verify", "--replay", str(tmp_path / "junk.json"))
    assert code == 2 and "--save-failures" in err


def test_replay_of_a_check_file_is_refused_with_the_right_command(capsys, tmp_path):
    path = tmp_path / "check.json"
    path.write_text(json.dumps({"command": "check", "function": "evil:f", "gradient_function": "evil:g",
                                "points": [[1.0]], "cwd": str(tmp_path)}))
    code, out, err = run(capsys, "verify", "--replay", str(path))
    assert code == 2 and "adcalc check" in err


def test_no_save_when_everything_agrees(capsys, tmp_path):
    path = tmp_path / "none.json"
    code, out, _ = run(capsys, "verify", WORKED, "--at", "2,5", "--save-failures", str(path))
    assert code == 0 and not path.exists()


def test_kink_rows_are_kink_never_ok_with_a_large_difference(capsys):
    code, obj, _ = run_json(capsys, "verify", "abs(x1)", "--at", "0")
    assert code == 0 and obj["reference"] in ("forward", "reverse") and obj["kinks"]
    for name, e in obj["engines"].items():
        for q, c in e["quantities"].items():
            assert c["status"] != "ok" or c["max_abs_diff"] is None or c["max_abs_diff"] <= c["tolerance"], (name, q)
    assert obj["engines"]["symbolic"]["quantities"]["grad"]["status"] == "kink"


@pytest.mark.parametrize("expr,at", [("exp(x)", "1000"), ("x**0.5", "0"), ("sqrt(x)", "0")])
def test_nothing_finite_to_compare_exits_2(capsys, expr, at):
    code, out, err = run(capsys, "verify", expr, "--at", at)
    assert code == 2 and "nothing finite to compare" in err


def test_judge_rules():
    labels = ["a", "b", "c"]
    ref = np.array([1.0, np.inf, 2.0])
    st, mabs, _, worst, tol, nf = V.judge([1.0, 5.0, 2.0], ref, labels, 1e-8, 1e-12)
    assert st == "not finite" and nf == 1 and mabs == 0.0
    st, *_ = V.judge([1.0, 5.0, np.inf], ref, labels, 1e-8, 1e-12)
    assert st == "not finite"         # the engine overflows: never ok, never a finite wrong number
    st, *_ = V.judge([1.0, 5.0, 7.0], [1.0, 5.0, 2.0], labels, 1e-8, 1e-12)
    assert st == "mismatch"
    st, *_ = V.judge([1.0, 5.0, 3.0], ref, labels, 1e-8, 1e-12, kinked=True)
    assert st == "kink"
    st, _, _, worst, _, _ = V.judge([1.0, 5.0, 2.5], [1.0, 5.0, 2.0], labels, 1e-8, 1e-12, error=[0, 0, 0.3])
    assert st == "ok" and worst == "c"          # within 2 x the engine's own error estimate
    st, *_ = V.judge([1.0, 5.0, 2.0], ref, labels, 1e-8, 1e-12, own=["ok", "ok", "kink"])
    assert st == "kink"


def test_taylor_order_shown_for_gradients():
    prob = Problem(WORKED, at="2,5")
    rep = V.verify(prob, ["grad"], ["reverse", "forward"])
    assert all(abs(c.order - 2) < 0.3 for c in rep.checks)


def test_a_wrong_engine_is_a_mismatch(monkeypatch):
    """A deliberately wrong engine is caught and named (scipy.fft's mock backend idea)."""
    from adcalc.engines.base import Result
    from adcalc.engines.reverse import ReverseEngine

    class Wrong(ReverseEngine):
        name = "wrong"

        def grad_batch(self, prob, X):
            return Result(super().grad_batch(prob, X).value * (1 + 1e-6))
    real = V.engine_class
    monkeypatch.setattr(V, "engine_class", lambda name: Wrong if name == "wrong" else real(name))
    rep = V.verify(Problem(WORKED, at="2,5"), ["grad"], ["reverse", "wrong"])
    bad = [c for c in rep.checks if c.status == "mismatch"]
    assert not rep.ok and rep.return_code == 1 and bad[0].engine == "wrong" and bad[0].worst == "x1"
