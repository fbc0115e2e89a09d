"""adcalc.junit: JUnit XML that always parses, with counts and verdict mapping."""
import xml.etree.ElementTree as ET

import pytest

from adcalc.errors import InputError
from adcalc.junit import STATUSES, JunitCase, clean_text, junit_xml, write_junit

CASES = [
    JunitCase("reverse", "verify.grad", "ok", time=0.0125),
    JunitCase("forward", "verify.grad", "mismatch",
              message="component x2 differs: 1.7163378145367738 vs 1.8 (max_abs_diff 0.084)",
              details="x1: 5.5 vs 5.5\nx2: 1.7163378145367738 vs 1.8", time=0.5),
    JunitCase("symbolic", "verify.grad", "kink", message="abs at x1 = 0 (abs'(0) = +1, as JAX)"),
    JunitCase("numeric", "verify.hessian", "not finite", message="exp(800) overflows"),
    JunitCase("gpu", "verify.grad", "unavailable", message="no CUDA device"),
    JunitCase("numeric", "verify.hvp", "error", message="DomainError: log of -1",
              details="Traceback (most recent call last):\n  ..."),
]


def parse(text):
    root = ET.fromstring(text.encode("utf-8"))
    return root, root.find("testsuite")


def by_name(suite, name, classname):
    hits = [tc for tc in suite.findall("testcase")
            if tc.get("name") == name and tc.get("classname") == classname]
    assert len(hits) == 1
    return hits[0]


def test_counts_on_suite_and_root():
    root, suite = parse(junit_xml("adcalc verify", CASES))
    assert root.tag == "testsuites"
    for el in (root, suite):
        assert el.get("name") == "adcalc verify"
        assert (el.get("tests"), el.get("failures"), el.get("errors"), el.get("skipped")) == \
            ("6", "1", "1", "1")
        assert float(el.get("time")) == pytest.approx(0.5125)
    assert len(suite.findall("testcase")) == 6


def test_names_and_classnames_in_order():
    _, suite = parse(junit_xml("s", CASES))
    assert [(t.get("classname"), t.get("name")) for t in suite] == \
        [(c.classname, c.name) for c in CASES]


def test_ok_is_a_bare_pass_with_time():
    _, suite = parse(junit_xml("s", CASES))
    tc = by_name(suite, "reverse", "verify.grad")
    assert list(tc) == []
    assert tc.get("time") == "0.012500"


def test_mismatch_is_a_failure_naming_the_component():
    _, suite = parse(junit_xml("s", CASES))
    tc = by_name(suite, "forward", "verify.grad")
    (failure,) = list(tc)
    assert failure.tag == "failure"
    assert failure.get("type") == "mismatch"
    assert "component x2 differs" in failure.get("message")
    assert failure.text == "x1: 5.5 vs 5.5\nx2: 1.7163378145367738 vs 1.8"


@pytest.mark.parametrize("name, classname, status", [
    ("symbolic", "verify.grad", "kink"), ("numeric", "verify.hessian", "not finite")])
def test_kink_and_not_finite_pass_with_a_note(name, classname, status):
    _, suite = parse(junit_xml("s", CASES))
    tc = by_name(suite, name, classname)
    assert [c.tag for c in tc] == ["system-out"]
    assert tc.find("system-out").text.startswith(f"{status}: ")


def test_unavailable_is_skipped_with_reason():
    _, suite = parse(junit_xml("s", CASES))
    skipped = by_name(suite, "gpu", "verify.grad").find("skipped")
    assert skipped.get("message") == "no CUDA device"


def test_error_element():
    _, suite = parse(junit_xml("s", CASES))
    err = by_name(suite, "numeric", "verify.hvp").find("error")
    assert err.get("message") == "DomainError: log of -1"
    assert err.get("type") == "error"
    assert err.text.startswith("Traceback")


def test_default_message_is_the_status():
    _, suite = parse(junit_xml("s", [JunitCase("a", "b", "mismatch"), JunitCase("c", "d", "error")]))
    assert suite.find("testcase/failure").get("message") == "mismatch"
    assert suite.find("testcase/error").get("message") == "error"
    assert suite.find("testcase/failure").text is None


def test_empty_suite():
    root, suite = parse(junit_xml("empty", []))
    assert suite.get("tests") == "0" and suite.get("failures") == "0"
    assert suite.get("time") is None and list(suite) == []


def test_unknown_status_is_an_input_error():
    with pytest.raises(InputError, match="unknown JUnit case status 'passed'.*ok, mismatch, kink"):
        junit_xml("s", [JunitCase("a", "b", "passed")])


def test_statuses_constant():
    assert STATUSES == ("ok", "mismatch", "kink", "not finite", "unavailable", "error")


HOSTILE = 'he said "hi" & <b>\'bye\'</b> ]]> \x00 nul \x1b[31mred\x1b[0m \x07 \x7f \ud800 \ufffe 😀𝔸 é\ttab'


def test_hostile_text_round_trips_through_a_parser():
    case = JunitCase(HOSTILE, HOSTILE, "mismatch", message=HOSTILE, details=HOSTILE + "\nline2")
    text = junit_xml(HOSTILE, [case, JunitCase(HOSTILE, "k", "kink", message=HOSTILE)])
    root, suite = parse(text)
    expected = clean_text(HOSTILE)
    assert suite.get("name") == expected
    tc = suite.find("testcase")
    assert tc.get("name") == expected and tc.get("classname") == expected
    assert tc.find("failure").get("message") == expected
    assert tc.find("failure").text == expected + "\nline2"
    assert suite.findall("testcase")[1].find("system-out").text == "kink: " + expected
    for kept in ('"hi"', "& <b>", "]]>", "😀𝔸", "é\ttab", "\\x00 nul", "\\x1b[31mred", "\\x07",
                 "\x7f", "\\ud800", "\\ufffe"):
        assert kept in expected
    assert "\x00" not in text and "\x1b" not in text


def test_clean_text_keeps_allowed_and_escapes_forbidden():
    assert clean_text("tab\tnl\ncr\r") == "tab\tnl\ncr\r"
    assert clean_text("\x00\x08\x0b\x0c\x1f") == "\\x00\\x08\\x0b\\x0c\\x1f"
    assert clean_text("\ud83d") == "\\ud83d"
    assert clean_text("\uffff") == "\\uffff"
    assert clean_text("\U0001f600") == "\U0001f600"
    assert clean_text(3.5) == "3.5"


def test_write_junit(tmp_path):
    path = write_junit(tmp_path / "report.xml", "adcalc verify", CASES)
    assert path == tmp_path / "report.xml"
    data = path.read_bytes()
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.parse(path).getroot()
    assert root.find("testsuite").get("failures") == "1"


def test_write_junit_hostile_file_parses(tmp_path):
    path = write_junit(tmp_path / "h.xml", HOSTILE, [JunitCase(HOSTILE, HOSTILE, "error", HOSTILE, HOSTILE)])
    root = ET.parse(path).getroot()
    assert root.find("testsuite/testcase/error").get("message") == clean_text(HOSTILE)


def test_write_junit_to_missing_directory_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot write the JUnit report to .*no/such/dir"):
        write_junit(tmp_path / "no" / "such" / "dir" / "r.xml", "s", CASES)
