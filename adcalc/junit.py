"""JUnit XML reports of verdicts, for CI systems that read test results.

ok, kink and "not finite" pass (the last two with a <system-out> note), mismatch is a
<failure>, error an <error>, unavailable a <skipped>.  Text that XML 1.0 cannot
hold (NUL, ESC and other control characters, lone surrogates) is written as a
visible escape such as \\x1b, so the file always parses.
"""
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from adcalc.errors import InputError

STATUSES = ("ok", "mismatch", "kink", "not finite", "unavailable", "error")
_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass
class JunitCase:
    """One verdict: name and classname as CI shows them, status one of STATUSES."""

    name: str
    classname: str
    status: str
    message: str | None = None
    details: str | None = None
    time: float | None = None


def clean_text(text):
    r"""Text with every character XML 1.0 forbids written as a visible escape.

    >>> clean_text("a\x00b\x1b[31m")
    'a\\x00b\\x1b[31m'
    """
    return _FORBIDDEN.sub(_escape_char, str(text))


def _escape_char(match):
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def junit_xml(suite_name, cases):
    """The JUnit XML document for the cases, as a string.

    >>> doc = junit_xml("adcalc verify", [JunitCase("forward", "grad", "ok")])
    >>> '<testsuite name="adcalc verify" tests="1" failures="0"' in doc
    True
    """
    cases = list(cases)
    for case in cases:
        if case.status not in STATUSES:
            raise InputError(f"unknown JUnit case status {case.status!r} for {case.name!r}: "
                             f"use one of {', '.join(STATUSES)}")
    root = ET.Element("testsuites", _counts(suite_name, cases))
    suite = ET.SubElement(root, "testsuite", _counts(suite_name, cases))
    for case in cases:
        suite.append(_testcase(case))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path, suite_name, cases):
    """Write junit_xml(suite_name, cases) to path as UTF-8; returns the Path.

    >>> write_junit("report.xml", "adcalc verify", cases)  # doctest: +SKIP
    PosixPath('report.xml')
    """
    path = Path(path)
    text = junit_xml(suite_name, cases)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot write the JUnit report to {str(path)!r}: {e.strerror or e}") from e
    return path


def _counts(suite_name, cases):
    statuses = [c.status for c in cases]
    attrs = {"name": clean_text(suite_name), "tests": str(len(cases)),
             "failures": str(statuses.count("mismatch")), "errors": str(statuses.count("error")),
             "skipped": str(statuses.count("unavailable"))}
    times = [c.time for c in cases if c.time is not None]
    if times:
        attrs["time"] = _seconds(sum(times))
    return attrs


def _seconds(t):
    return f"{float(t):.6f}"


def _testcase(case):
    attrs = {"name": clean_text(case.name), "classname": clean_text(case.classname)}
    if case.time is not None:
        attrs["time"] = _seconds(case.time)
    el = ET.Element("testcase", attrs)
    message = clean_text(case.message) if case.message is not None else case.status
    details = clean_text(case.details) if case.details is not None else None
    if case.status == "mismatch":
        _child(el, "failure", details, message=message, type="mismatch")
    elif case.status == "error":
        _child(el, "error", details, message=message, type="error")
    elif case.status == "unavailable":
        _child(el, "skipped", details, message=message)
    elif case.status != "ok" or case.message is not None or details is not None:
        note = "\n".join(t for t in (f"{case.status}: {message}", details) if t)
        _child(el, "system-out", note)
    return el


def _child(parent, tag, text, **attrs):
    el = ET.SubElement(parent, tag, attrs)
    el.text = text
    return el
