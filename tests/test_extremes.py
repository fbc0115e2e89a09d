"""No silent wrong answer (issue 9): every engine against a 60-digit reference.

Generated cases (tests/extremes.py) run through `adcalc grad/hessian/hvp ... --engine E
--json` in-process (`adcalc.cli.main`, the command-line contract and nothing else), for
E in reverse, forward, numeric; the reference is tests/mpref.py. Each component of each
answer is classified:

  ok            within the reference's tolerance (numeric engine: within
                max(tolerance, its own error estimate)); or null where the reference
                is not finite; or exit 2 kind "domain" where the point is outside the
                domain
  flagged       null (with its warning), a warning that names the component (or the
                whole answer) as a kink or not finite, or exit 2 with a sentence, where
                the reference had a number: honest, but not the answer
  bad estimate  numeric engine: a finite answer with a null error estimate, or with
                an estimate of 0 although it is not exactly the reference
  silent wrong  a finite number outside the tolerance (or where the reference is not
                finite, or outside the domain) with nothing flagged: the worst outcome
  error         the contract broken: an exception out of main(), a traceback, stdout
                that is not one strict JSON object, an exit status other than 0/2,
                missing keys, a null not named in the warnings, an internal error, or
                a valid case refused as a parse/input error (but a constant that
                overflows, an input error by the contract: flagged)
  unscored      the reference cannot judge: a kink, an indeterminate form, a point on a
                domain edge, a node beyond the reference's range

A call's class is the worst of its components' classes, from worst: error, silent
wrong, bad estimate, flagged, ok, unscored. The CI tests run CI_CASES cases of seed
CI_SEED in one spawned worker per core and assert no silent wrong answer, no contract
error and no bad estimate; on failure they print the first offenders with the command
line that reproduces each. The named regression tests run every command quoted in
issue 9 against its right answer, pinned (derived with mpmath, and checked against
mpref). benchmarks/extremes.py runs the long version (10^5 cases).
"""
import contextlib
import io
import json
import math
import multiprocessing
import os
import re
import shlex
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

import extremes
from adcalc.check.usercode import Deadline, _Timeout, _alarm as time_limit
import mpref
from adcalc.cli import main


def pytest_configure(config):
    """Registers the `extremes` marker (this module lists itself in pytest_plugins)."""
    config.addinivalue_line("markers", "extremes: the high-precision harness of issue 9 (tests/test_extremes.py)")


pytest_plugins = [__name__]  # a test module is not a plugin otherwise: pytest_configure above would not run


def __getattr__(name):
    """`pytestmark`, read by pytest after pytest_configure has registered the marker."""
    if name == "pytestmark":
        return [pytest.mark.extremes]
    raise AttributeError(name)


ENGINES = ("reverse", "forward", "numeric")
COMMANDS = ("grad", "hessian", "hvp")
CLASSES = ("error", "silent wrong", "bad estimate", "flagged", "ok", "unscored")  # worst first
OFFENDING = ("error", "silent wrong", "bad estimate")
KEY = {"grad": "gradient", "hessian": "hessian", "hvp": "hvp"}
REQUIRED = ("command", "expression", "engine", "variables", "shapes", "inputs", "point", "value", "warnings")
KINDS = ("parse", "input", "domain", "engine")
CALL_LIMIT_S = 30
CI_SEED, CI_CASES = 9, 2000


# ---- running adcalc -------------------------------------------------------------------------

@dataclass
class Outcome:
    """What one in-process call of adcalc did."""
    rc: int
    stdout: str
    stderr: str
    raised: str = ""
    seconds: float = 0.0


class _TooLong(Exception):
    pass


def _alarm(signum, frame):
    raise _TooLong()


def run(argv):
    """main(argv) with stdout and stderr captured (and a time limit where SIGALRM works)."""
    out, err = io.StringIO(), io.StringIO()
    timed = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    t0, rc, raised = time.perf_counter(), None, ""
    if timed:
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, CALL_LIMIT_S)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(list(argv))
    except _TooLong:
        raised = f"no answer within {CALL_LIMIT_S} s"
    except BaseException as e:  # SystemExit included: main() returns its status
        raised = f"{type(e).__name__}: {e}"
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    return Outcome(rc, out.getvalue(), err.getvalue(), raised, time.perf_counter() - t0)


# ---- judging one answer -----------------------------------------------------------------------

@dataclass
class Finding:
    """The class of one component (or of a whole call) with what a reader needs."""
    cls: str
    engine: str
    command: str
    shell: str
    ident: str
    label: str = ""
    expected: str = ""
    got: str = ""
    tol: str = ""
    why: str = ""


def _num(x):
    return "null" if x is None else repr(float(x)) if isinstance(x, (int, float)) else str(x)


def _reject(token):
    raise ValueError(f"non-standard JSON token {token}")


def _flat(value, command, n):
    """The answer as a flat list of n numbers or None, or None if its shape is wrong."""
    rows = value if command == "hessian" else [value]
    if not isinstance(rows, list) or len(rows) != (n if command == "hessian" else 1):
        return None
    flat = []
    for row in rows:
        if not isinstance(row, list) or len(row) != n:
            return None
        flat.extend(row)
    ok = all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)) for x in flat)
    return flat if ok else None


def _flagged_labels(warnings, labels, command):
    """Which components the warnings flag as a kink (or "not differentiable at this point":
    a tie of max or min, which may be a tie only after rounding), not finite or inexact
    (underflow in an intermediate derivative): those a warning names (`at [0], [1,0]`), or
    all of them for a warning that names none."""
    flagged = set()
    for w in warnings:
        if not isinstance(w, str) or not re.search(r"kink|not differentiable|not finite|inexact", w, re.I):
            continue
        if w.startswith("not differentiable at this point"):   # the point's, not a component's
            return set(range(len(labels)))
        named = re.findall(r"\[(\d+(?:,\s*\d+)?)\]", w.split(" at ", 1)[1]) if " at " in w else []
        if not named:
            return set(range(len(labels)))
        n = round(math.sqrt(len(labels))) if command == "hessian" else len(labels)
        for idx in named:
            parts = [int(p) for p in idx.split(",")]
            flagged.add(parts[0] * n + parts[1] if len(parts) == 2 else parts[0])
    return flagged


def judge(case, ref, command, engine, out):
    """The Findings of one call: one per component, or one for the whole call."""
    shell = case.shell(command, engine)

    def call(cls, why, expected=""):
        return [Finding(cls, engine, command, shell, case.ident, "(call)", expected, "", "", why)]

    expected_call = ref.status + (f": {ref.note}" if ref.note else "")
    if out.raised:
        return call("error", f"main() raised {out.raised}", expected_call)
    if "Traceback" in out.stderr:
        return call("error", "a traceback on stderr", expected_call)
    try:
        obj = json.loads(out.stdout, parse_constant=_reject)
    except ValueError as e:
        return call("error", f"stdout is not one strict JSON object ({e}): {out.stdout[:200]!r}", expected_call)
    if not isinstance(obj, dict):
        return call("error", "stdout is JSON but not an object", expected_call)
    if out.rc == 2:
        message, kind = obj.get("error"), obj.get("kind")
        if not isinstance(message, str) or kind not in KINDS:
            return call("error", f"exit 2 without an error and a known kind: {obj}", expected_call)
        if "internal error" in message:
            return call("error", message, expected_call)
        if "error:" not in out.stderr:
            return call("error", "exit 2 without an `error:` line on stderr", expected_call)
        if kind == "input" and re.match(r"the constant '.*' overflows", message):
            # the contract: a constant that overflows is an input error (f cannot be evaluated
            # in float64 at any point): honest, though not the answer
            return call("flagged", f"exit 2 ({kind}): {message}", expected_call)
        if kind in ("parse", "input"):
            return call("error", f"a valid case refused ({kind}): {message}", expected_call)
        if ref.status == "domain":
            return call("ok" if kind == "domain" else "flagged", f"exit 2 ({kind}): {message}", expected_call)
        if ref.status != "ok":
            return call("unscored", f"exit 2 ({kind}): {message}", expected_call)
        return call("flagged", f"exit 2 ({kind}): {message}", expected_call)
    if out.rc != 0:
        return call("error", f"exit status {out.rc}", expected_call)
    missing = [k for k in REQUIRED + (KEY[command],) if k not in obj]
    if missing or "error" in obj:
        return call("error", f"exit 0 with keys missing {missing} or an error: {out.stdout[:200]!r}", expected_call)
    if obj["inputs"] != list(case.inputs):
        return call("error", f"inputs {obj['inputs']} where the contract gives {list(case.inputs)}", expected_call)
    n = len(case.inputs)
    got = _flat(obj[KEY[command]], command, n)
    if got is None:
        return call("error", f"{KEY[command]} has the wrong shape or non-numbers: {obj[KEY[command]]}", expected_call)
    warnings = obj["warnings"] if isinstance(obj["warnings"], list) else []
    if any(x is None for x in got) and not warnings:
        return call("error", "a null that no warning names", expected_call)
    labels = ([f"{a},{b}" for a in case.inputs for b in case.inputs] if command == "hessian"
              else list(case.inputs))
    est = [None] * len(got)
    if engine == "numeric" and "error_estimate" in obj:
        est = _flat(obj["error_estimate"], command, n) or est
    flags = _flagged_labels(warnings, labels, command)

    def one(k, cls, why, expected="", tol=""):
        return Finding(cls, engine, command, shell, case.ident, labels[k], expected,
                       _num(got[k]) + (f" +- {_num(est[k])}" if engine == "numeric" else ""), tol, why)

    if ref.status == "domain":
        return [one(k, "flagged" if g is None or k in flags else "silent wrong",
                    "an answer at a point outside the domain", expected_call)
                for k, g in enumerate(got)]
    if ref.status != "ok":
        return [one(k, "unscored", "", expected_call) for k in range(len(got))]
    findings = []
    for k, (c, g, e) in enumerate(zip(ref.flat(command), got, est)):
        if c.status in ("kink", "unresolved"):
            findings.append(one(k, "unscored", c.note, c.status))
        elif c.status == "not finite":
            cls = "ok" if g is None else "flagged" if k in flags else "silent wrong"
            findings.append(one(k, cls, c.note, "not finite"))
        elif g is None:
            findings.append(one(k, "flagged", "null where the reference is finite", _num(c.value), f"{c.tol:.2g}"))
        else:
            findings.append(one(k, *_score(c, g, e, engine, k in flags), _num(c.value), f"{c.tol:.2g}"))
    return findings


def _score(c, g, e, engine, flagged):
    """(class, why) of a finite answer g (estimate e) against a finite reference c."""
    err = abs(g - c.value)
    no_estimate = engine == "numeric" and (e is None or (e == 0 and g != c.value))
    limit = c.tol if engine != "numeric" or e is None else max(c.tol, e)
    if err <= limit:
        return ("bad estimate", f"error estimate {_num(e)}") if no_estimate else ("ok", "")
    why = f"off by {err:.3g} = {err / limit:.3g} x the tolerance"
    if no_estimate:
        return ("bad estimate" if flagged else "silent wrong"), why + f", error estimate {_num(e)}"
    return ("flagged" if flagged else "silent wrong"), why


def worst(findings):
    """The worst Finding of a call (the call's class)."""
    return min(findings, key=lambda f: CLASSES.index(f.cls))


# ---- running many cases ----------------------------------------------------------------------

SAMPLES = 20  # findings kept per class that does not offend (flagged, unscored)


@dataclass
class Report:
    """Counts of calls per (engine, command, class), the offenders (worst finding of each
    offending call, in case order), the first SAMPLES calls of the other classes but ok,
    and where the time went."""
    counts: Counter = field(default_factory=Counter)
    offenders: list = field(default_factory=list)
    samples: list = field(default_factory=list)
    cases: int = 0
    ref_seconds: float = 0.0
    adcalc_seconds: float = 0.0
    wall_seconds: float = 0.0

    def add(self, other):
        """Merge another Report (of later cases) into this one."""
        self.counts.update(other.counts)
        self.offenders.extend(other.offenders)
        for f in other.samples:
            self.keep(f)
        self.cases += other.cases
        self.ref_seconds += other.ref_seconds
        self.adcalc_seconds += other.adcalc_seconds

    def keep(self, finding):
        """Record the worst finding of a call: every offender, the first few of the rest."""
        if finding.cls in OFFENDING:
            self.offenders.append(finding)
        elif finding.cls != "ok" and sum(f.cls == finding.cls for f in self.samples) < SAMPLES:
            self.samples.append(finding)

    def count(self, cls, engine=None, command=None):
        """How many calls ended in class `cls` (optionally for one engine / command)."""
        return sum(v for (e, q, c), v in self.counts.items()
                   if c == cls and engine in (None, e) and command in (None, q))

    def table(self):
        """Counts per engine x quantity x class, one row per engine and quantity."""
        head = f"{'engine':9} {'quantity':8} " + " ".join(f"{c:>12}" for c in CLASSES)
        rows = [head]
        for e in sorted({k[0] for k in self.counts}, key=lambda x: (ENGINES + (x,)).index(x)):
            for q in COMMANDS:
                if any(k[:2] == (e, q) for k in self.counts):
                    rows.append(f"{e:9} {q:8} " + " ".join(f"{self.counts[e, q, c]:12d}" for c in CLASSES))
        return "\n".join(rows)

    def summary(self):
        """The table with the number of cases and the times."""
        return (f"{self.cases} cases in {self.wall_seconds:.1f} s wall "
                f"(reference {self.ref_seconds:.1f} s, adcalc {self.adcalc_seconds:.1f} s, summed over workers)\n"
                + self.table())


def offenders_table(findings, limit=30):
    """A compact table of the first `limit` findings, each with the line that reproduces it."""
    lines = [f"{'class':12} {'component':14} {'expected':24} {'got':34} {'tol':8} why / reproduce"]
    for f in findings[:limit]:
        lines.append(f"{f.cls:12} {f.label[:14]:14} {f.expected[:24]:24} {f.got[:34]:34} {f.tol[:8]:8} {f.why}")
        lines.append(f"{'':12} {f.shell}")
    if len(findings) > limit:
        lines.append(f"... and {len(findings) - limit} more")
    return "\n".join(lines)


REFERENCE_SECONDS = 120   # a reference that takes longer (SymPy or mpmath running away) is unscored


def check_cases(cases, engines=ENGINES, commands=COMMANDS):
    """Run every case through every engine and command; the Report."""
    report = Report(cases=len(cases))
    for case in cases:
        t0 = time.perf_counter()
        why = None
        try:
            with time_limit(Deadline(REFERENCE_SECONDS)):   # check's own SIGALRM timer
                ref = mpref.reference(case)
        except MemoryError:   # under the workers' memory limit: the reference cannot judge
            why = "the 60-digit reference ran out of memory"
        except _Timeout:
            why = f"the 60-digit reference took over {REFERENCE_SECONDS} s"
        except Exception as e:   # a harness failure on one case must not lose a long run
            why = f"the reference failed: {type(e).__name__}: {e}"[:200]
        if why is not None:
            for engine in engines:
                for command in commands:
                    report.counts[engine, command, "unscored"] += 1
                    report.keep(Finding("unscored", engine, command, case.shell(command, engine), case.ident,
                                        why=why))
            continue
        report.ref_seconds += time.perf_counter() - t0
        for engine in engines:
            for command in commands:
                out = run(case.argv(command, engine))
                report.adcalc_seconds += out.seconds
                w = worst(judge(case, ref, command, engine, out))
                report.counts[engine, command, w.cls] += 1
                report.keep(w)
    return report


WORKER_MEMORY = 4 << 30   # bytes of address space per worker: a runaway case fails alone


def _limit_memory():
    """Cap this worker's address space, so that a case that grows without bound (in the
    reference, the generator or adcalc) raises MemoryError instead of taking the machine."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY or soft > WORKER_MEMORY:
            resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, hard))
    except (ImportError, ValueError, OSError):
        pass


def _chunk(args):
    """One share of the run: cases start .. start+count-1 (a case the generator cannot build
    within the memory limit is counted unscored)."""
    seed, start, count, engines, commands = args
    cases, lost = [], 0
    for index in range(start, start + count):
        try:
            cases += extremes.generate(seed, 1, index)
        except MemoryError:
            lost += 1
    report = check_cases(cases, engines, commands)
    report.cases += lost
    for engine in engines:
        for command in commands:
            report.counts[engine, command, "unscored"] += lost
    return report


def _worker_chunk(args):
    """_chunk in a spawned worker, under WORKER_MEMORY."""
    _limit_memory()
    return _chunk(args)


_ONE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def check_stream(seed, count, engines=ENGINES, commands=COMMANDS, jobs=1, chunk=25):
    """Cases 0..count-1 of `seed`, in `jobs` worker processes; the merged Report.

    Workers are spawned, not forked, with one BLAS thread each: numpy's OpenBLAS threads
    spin after every call, and forked copies of an imported numpy fight over the cores
    (two forked workers ran no faster than one)."""
    t0 = time.perf_counter()
    work = [(seed, s, min(chunk, count - s), tuple(engines), tuple(commands)) for s in range(0, count, chunk)]
    report = Report()
    if jobs > 1:
        saved = {k: os.environ.get(k) for k in _ONE_THREAD}
        os.environ.update(_ONE_THREAD)
        try:
            with multiprocessing.get_context("spawn").Pool(jobs) as pool:
                for part in pool.imap(_worker_chunk, work):
                    report.add(part)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    else:
        for part in map(_chunk, work):
            report.add(part)
    report.wall_seconds = time.perf_counter() - t0
    return report


# ---- the CI run -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ci_report():
    """The CI run: CI_CASES cases of seed CI_SEED, every engine and command, all cores."""
    report = check_stream(CI_SEED, CI_CASES, jobs=os.cpu_count() or 1)
    print("\n" + report.summary())
    return report


def _fail_with(report, classes, what):
    found = [f for f in report.offenders if f.cls in classes]
    if found:
        pytest.fail(f"{len(found)} {what} in {report.cases} generated cases (seed {CI_SEED})\n"
                    f"{report.summary()}\n\nfirst offenders:\n{offenders_table(found)}", pytrace=False)


def test_generated_cases_have_no_silent_wrong_answer(ci_report):
    assert ci_report.cases >= 2000
    _fail_with(ci_report, ("silent wrong",), "silent wrong answers")


def test_generated_cases_keep_the_contract(ci_report):
    _fail_with(ci_report, ("error",), "contract errors")


def test_numeric_error_estimates_admit_error(ci_report):
    _fail_with(ci_report, ("bad estimate",), "inexact numeric answers with a null or zero error estimate")


# ---- the commands quoted in issue 9, with their right answers ---------------------------------

NF = "not finite"  # the answer is null with a warning (an infinite slope, an undefined partial)
REGRESSIONS = [  # (command as quoted, expression, point, hvp direction, the right answer, pinned)
    ("hvp 'prod([x,y])' --at 1e-17,2 -v 1,2", "prod([x,y])", {"x": 1e-17, "y": 2}, [1, 2], [2.0, 1.0]),
    ("hvp 'prod([x,y])' --at 1e-17,2 -v 1,2 --engine forward", "prod([x,y])", {"x": 1e-17, "y": 2}, [1, 2],
     [2.0, 1.0]),
    ("hessian 'prod(v)*x' --at 'x=-1.731938749625388,v=[1e-320,1,1.07,2.320992567935017]'", "prod(v)*x",
     {"x": -1.731938749625388, "v": [1e-320, 1, 1.07, 2.320992567935017]}, None,
     [0.0, -4.301204153619135, -4.019816965999192, -1.8531744620991653, 2.4834620476904687,
      -4.301204153619135, 0.0, -4.0197e-320, -1.853e-320, 2.4837e-320,
      -4.019816965999192, -4.0197e-320, 0.0, -1.7317e-320, 2.321e-320,
      -1.8531744620991653, -1.853e-320, -1.7317e-320, 0.0, 1.07e-320,
      2.4834620476904687, 2.4837e-320, 2.321e-320, 1.07e-320, 0.0]),
    ("hessian 'prod(v)' --at 'v=[0,2,3]'", "prod(v)", {"v": [0, 2, 3]}, None,
     [0.0, 3.0, 2.0, 3.0, 0.0, 0.0, 2.0, 0.0, 0.0]),
    ("hessian 'prod(v)' --at 'v=[0,2,3]' --engine forward", "prod(v)", {"v": [0, 2, 3]}, None,
     [0.0, 3.0, 2.0, 3.0, 0.0, 0.0, 2.0, 0.0, 0.0]),
    ("hessian 'logsumexp(exp(v))' --at 'v=[40,0]'", "logsumexp(exp(v))", {"v": [40, 0]}, None,
     [2.3538526683702e17, 0.0, 0.0, 0.0]),
    ("hessian 'logsumexp(exp(v))' --at 'v=[40,0]' --engine forward", "logsumexp(exp(v))", {"v": [40, 0]}, None,
     [2.3538526683702e17, 0.0, 0.0, 0.0]),
    ("hvp 'logsumexp(expm1(v))' --at 'v=[76.9,-0.9]' -v 1,0", "logsumexp(expm1(v))", {"v": [76.9, -0.9]},
     [1, 0], [2.4960061918082148e33, 0.0]),
    ("hvp 'logsumexp(expm1(v))' --at 'v=[76.9,-0.9]' -v 1,0 --engine forward", "logsumexp(expm1(v))",
     {"v": [76.9, -0.9]}, [1, 0], [2.4960061918082148e33, 0.0]),
    ("grad 'asinh(x)' --at 1e200", "asinh(x)", {"x": 1e200}, None, [1e-200]),
    ("grad 'asinh(x)' --at 1e200 --engine forward", "asinh(x)", {"x": 1e200}, None, [1e-200]),
    ("grad 'acosh(x)' --at 1e200", "acosh(x)", {"x": 1e200}, None, [1e-200]),
    ("grad 'acosh(x)' --at 1e200 --engine forward", "acosh(x)", {"x": 1e200}, None, [1e-200]),
    ("grad 'atan2(y,x)' --at 1e200,1e200", "atan2(y,x)", {"x": 1e200, "y": 1e200}, None, [-5e-201, 5e-201]),
    ("grad 'atan2(y,x)' --at 1e200,1e200 --engine forward", "atan2(y,x)", {"x": 1e200, "y": 1e200}, None,
     [-5e-201, 5e-201]),
    ("grad 'norm(v)' --at 'v=[1e200,1]'", "norm(v)", {"v": [1e200, 1]}, None, [1.0, 1e-200]),
    ("grad 'norm(v)' --at 'v=[1e200,1]' --engine forward", "norm(v)", {"v": [1e200, 1]}, None, [1.0, 1e-200]),
    ("grad 'norm(v)' --at 'v=[1e-200,1e-200]'", "norm(v)", {"v": [1e-200, 1e-200]}, None,
     [0.7071067811865476, 0.7071067811865476]),
    ("hessian 'tanh(x)' --at 400 --engine forward", "tanh(x)", {"x": 400}, None, [0.0]),
    ("hessian 'tanh(x)' --at 400", "tanh(x)", {"x": 400}, None, [0.0]),
    ("hessian 'log(exp(expm1(x))**0.25)' --at 6.09", "log(exp(expm1(x))**0.25)", {"x": 6.09}, None,
     [110.35535278649266]),
    ("hessian 'log(exp(expm1(x))**0.25)' --at 6.09 --engine forward", "log(exp(expm1(x))**0.25)", {"x": 6.09},
     None, [110.35535278649266]),
    ("grad 'x**y' --at=-2,3 --engine forward", "x**y", {"x": -2, "y": 3}, None, [12.0, NF]),
    ("grad 'x**y' --at=-2,3", "x**y", {"x": -2, "y": 3}, None, [12.0, NF]),
    ("grad x --at 5e-324 --engine numeric", "x", {"x": 5e-324}, None, [1.0]),
    ("grad 'x*x' --at 1e-200 --engine numeric", "x*x", {"x": 1e-200}, None, [2e-200]),
    ("grad 'x+y' --at 1e-300,1 --engine numeric", "x+y", {"x": 1e-300, "y": 1}, None, [1.0, 1.0]),
    ("grad 'sqrt(x)' --at 0 -e numeric", "sqrt(x)", {"x": 0}, None, [NF]),
    ("grad 'acos(x)' --at 1 -e numeric", "acos(x)", {"x": 1}, None, [NF]),
    ("grad 'asin(x)' --at -1 -e numeric", "asin(x)", {"x": -1}, None, [NF]),
    ("grad 'acosh(x)' --at 1 -e numeric", "acosh(x)", {"x": 1}, None, [NF]),
    ("grad 'cbrt(x)' --at 0 -e numeric", "cbrt(x)", {"x": 0}, None, [NF]),
    ("grad 'x**x' --at 0 -e numeric", "x**x", {"x": 0}, None, [NF]),
    ("grad 'x^y' --at=-2,3 -e numeric", "x^y", {"x": -2, "y": 3}, None, [12.0, NF]),
    ("grad 'softplus(x)' --at 750 -e numeric", "softplus(x)", {"x": 750}, None, [1.0]),
    ("grad 'softplus(x)' --at 1000 -e numeric", "softplus(x)", {"x": 1000}, None, [1.0]),
    ("grad 'sigmoid(x)' --at -750 -e numeric", "sigmoid(x)", {"x": -750}, None, [0.0]),
    ("grad x --at 1e200 -e numeric", "x", {"x": 1e200}, None, [1.0]),
]
VALUES = {"grad 'norm(v)' --at 'v=[1e-200,1e-200]'": 1.4142135623730951e-200}  # issue: the value came out 0


def _regression_case(quoted, text, point, direction):
    """(argv with --json, command, engine, Case) of one quoted command."""
    argv = shlex.split(quoted)
    engine = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--engine", "-e")), "reverse")
    return argv + ["--json"], argv[0], engine, extremes.case(text, point, direction, family="issue 9")


@pytest.mark.parametrize("quoted,text,point,direction,right", REGRESSIONS, ids=[r[0] for r in REGRESSIONS])
def test_issue_9_command(quoted, text, point, direction, right):
    """The quoted command gives the right answer: every component ok (null where the
    answer is not finite; the numeric engine within its own error estimate, never null)."""
    argv, command, engine, case = _regression_case(quoted, text, point, direction)
    ref = mpref.reference(case)
    out = run(argv)
    findings = judge(case, ref, command, engine, out)
    bad = [f for f in findings if f.cls != "ok"]
    assert not bad, f"adcalc {quoted} (right answer {right}):\n{offenders_table(bad)}\nstdout: {out.stdout}"
    if quoted in VALUES:
        value = json.loads(out.stdout)["value"]
        assert value is not None and abs(value - VALUES[quoted]) <= 8 * math.ulp(VALUES[quoted]), value


@pytest.mark.parametrize("quoted,text,point,direction,right", REGRESSIONS, ids=[r[0] for r in REGRESSIONS])
def test_issue_9_pinned_answers_are_the_reference(quoted, text, point, direction, right):
    """The pinned right answers (derived with mpmath) are what the reference computes."""
    _, command, _, case = _regression_case(quoted, text, point, direction)
    ref = mpref.reference(case)
    assert [c.value if c.status == "finite" else c.status for c in ref.flat(command)] == right


def test_issue_9_verify_softplus_at_750():
    """`verify "softplus(x)" --at 750` reported a false MISMATCH."""
    out = run(["verify", "softplus(x)", "--at", "750", "--json"])
    obj = json.loads(out.stdout, parse_constant=_reject)
    assert out.rc == 0 and obj.get("ok") is True, out.stdout


def test_issue_9_check_at_a_subnormal_coordinate(tmp_path):
    """`adcalc check` with a correct f and gradient at --at 5e-324,1 reported a false
    MISMATCH (tolerance NaN)."""
    module = tmp_path / "extremes_check_fg.py"
    module.write_text("import numpy as np\n\n\ndef f(x):\n    return x[0] * x[1] + np.sin(x[1])\n\n\n"
                      "def g(x):\n    return np.array([x[1], x[0] + np.cos(x[1])])\n")
    out = run(["check", f"{module}:f", "--grad", f"{module}:g", "--at", "5e-324,1", "--json"])
    obj = json.loads(out.stdout, parse_constant=_reject)
    assert out.rc == 0 and obj.get("ok") is True, out.stdout
    assert all(c.get("tolerance") is not None for c in obj.get("components", [])), out.stdout
