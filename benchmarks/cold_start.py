"""Whole-process cold start of a one-shot `adcalc grad`, against `python -c "import numpy"`.

    python benchmarks/cold_start.py [--runs 25]

Every command is a fresh interpreter: sys.executable as it is spelled (a virtual
environment's python is a link to the base interpreter, and resolving that link would
leave the environment and its packages behind).  The commands are run side by side in one run: each round runs every
command once, in a shuffled order, so machine noise hits all of them alike; the
ratios are of medians taken in the same run.  "Cold" means a new process; the
operating system's file cache is warm (two unrecorded warm-up rounds come first).

Timed:
  numpy       python -c "import numpy"                       the baseline
  json        python -m adcalc grad EXPR --at 2,5 --json     target <= 1.3 x numpy
  tty         python -m adcalc grad EXPR --at 2,5            target <= 2 x numpy
              (stdout a pseudo-terminal, so rich draws the table)
  references: python -c pass, python -c "import numpy, click, rich...", python -c
  "import sympy", and the `adcalc` console script beside the interpreter if there is one.

It also checks the answers (gradient [5.5, 1.7163378145367738], a drawn table on
the terminal) and that SymPy is not imported on either grad path
(`python -X importtime`), and lists what the grad path imports beyond numpy.
Exit status 1 if an answer is wrong or SymPy is imported (or, with --strict, if a
target is missed).
"""
import argparse
import fcntl
import json
import os
import random
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections import defaultdict

EXPR = "log(x1)+x1*x2-sin(x2)"
GRADIENT = [5.5, 1.7163378145367738]
TARGETS = {"json": 1.3, "tty": 2.0}
HEAVY = ("sympy", "mpmath", "jax", "torch", "scipy", "numba")


def commands(py, console_script):
    grad = ["-m", "adcalc", "grad", EXPR, "--at", "2,5"]
    cmds = {
        "python -c pass": ([py, "-c", "pass"], False),
        "numpy": ([py, "-c", "import numpy"], False),
        "json": ([py, *grad, "--json"], False),
        "tty": ([py, *grad], True),
        "numpy+click+rich": ([py, "-c", "import numpy, click, rich.console, rich.table"], False),
        "sympy": ([py, "-c", "import sympy"], False),
    }
    if console_script:
        cmds["adcalc script --json"] = ([console_script, *grad[2:], "--json"], False)
    return cmds


PYCACHE = {"prefix": None}  # set by --bytecode cached: a private bytecode cache for the children


def child_env(tty):
    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    if PYCACHE["prefix"]:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = PYCACHE["prefix"]
    if tty:
        env.pop("NO_COLOR", None)
        if env.get("TERM", "dumb") == "dumb":
            env["TERM"] = "xterm-256color"
    return env


def run_pipe(cmd, cwd, stderr=subprocess.PIPE):
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=child_env(False), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=stderr)
    return time.perf_counter() - t, p.returncode, p.stdout.decode(errors="replace"), \
        (p.stderr or b"").decode(errors="replace")


def run_pty(cmd, cwd, stderr_pipe=False):
    """Run with stdin/stdout (and stderr unless stderr_pipe) on a fresh 100x30 pseudo-terminal."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    t = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=child_env(True), stdin=slave, stdout=slave,
                         stderr=subprocess.PIPE if stderr_pipe else slave, close_fds=True)
    os.close(slave)
    out = bytearray()
    while True:  # drain until the child closes the terminal (EIO on Linux)
        r, _, _ = select.select([master], [], [], 10.0)
        if not r:
            if p.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    err = p.stderr.read().decode(errors="replace") if stderr_pipe else ""
    rc = p.wait()
    elapsed = time.perf_counter() - t
    os.close(master)
    return elapsed, rc, out.decode(errors="replace"), err


def run(cmd_tty, cwd):
    cmd, tty = cmd_tty
    return run_pty(cmd, cwd) if tty else run_pipe(cmd, cwd, stderr=subprocess.DEVNULL)


def imported_modules(stderr):
    """{module: self microseconds} from `python -X importtime` output."""
    mods = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line[len("import time:"):].split("|")
        if len(parts) == 3:
            mods[parts[2].strip()] = int(parts[0])
    return mods


def check_answers(cmds, cwd):
    """Problems with the outputs of the timed adcalc commands ([] when all is right)."""
    problems = []
    for key in [k for k in cmds if k.startswith(("json", "adcalc script"))]:
        _, rc, out, err = run_pipe(cmds[key][0], cwd)
        try:
            got = json.loads(out)["gradient"]
        except (ValueError, KeyError, TypeError):
            got = None
        if rc != 0 or got != GRADIENT:
            problems.append(f"{key}: exit {rc}, gradient {got!r}, expected {GRADIENT} "
                            f"(stderr: {err.strip()[-300:]})")
    _, rc, out, _ = run_pty(cmds["tty"][0], cwd)
    drawn = "\x1b[" in out and any(c in out for c in "─│┃┏╭+") and "1.71633781" in out   # screens round
    if rc != 0 or not drawn:
        problems.append(f"tty: exit {rc}; expected a rich table with the gradient, got {out[-300:]!r}")
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=25, help="timed rounds (default 25)")
    ap.add_argument("--warmup", type=int, default=2, help="unrecorded rounds first (default 2)")
    ap.add_argument("--python", default=sys.executable, help="interpreter (default: this one, %(default)s)")
    ap.add_argument("--bytecode", choices=("cached", "env"), default="cached",
                    help="cached (default): the children write and reuse bytecode in a private "
                         "PYTHONPYCACHEPREFIX, as an installed package does from its second run on, "
                         "even where PYTHONDONTWRITEBYTECODE is set; env: leave the environment as it is")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    py = os.path.abspath(args.python)   # not realpath: that leaves a venv
    script = os.path.join(os.path.dirname(py), "adcalc")
    script = script if os.path.isfile(script) and os.access(script, os.X_OK) else None
    cmds = commands(py, script)
    # run from an empty folder, so `-m adcalc` finds the installed package, not ./adcalc
    cwd = tmp = tempfile.mkdtemp(prefix="adcalc-cold-")
    if args.bytecode == "cached":
        PYCACHE["prefix"] = os.path.join(tmp, ".pycache")
    if run_pipe(cmds["json"][0], cwd)[1] != 0:
        cwd = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        print(f"note: adcalc is not importable from an empty folder; running from {cwd}")

    problems = check_answers(cmds, cwd)

    # SymPy (and other heavy modules) must not be imported on the grad paths
    base_mods = imported_modules(run_pipe([py, "-X", "importtime", "-c", "import numpy"], cwd)[3])
    paths = {
        "json": imported_modules(run_pipe([py, "-X", "importtime", *cmds["json"][0][1:]], cwd)[3]),
        "tty": imported_modules(run_pty([py, "-X", "importtime", *cmds["tty"][0][1:]], cwd,
                                        stderr_pipe=True)[3]),
    }

    names = list(cmds)
    times = defaultdict(list)
    order = random.Random(args.seed)
    for r in range(args.warmup + args.runs):
        order.shuffle(names)
        for name in names:
            elapsed, rc, _, _ = run(cmds[name], cwd)
            if rc != 0:
                problems.append(f"{name}: exit status {rc} in round {r}")
            if r >= args.warmup:
                times[name].append(elapsed)
    shutil.rmtree(tmp, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["numpy"]
    print(f"cold start, whole processes: {args.runs} interleaved rounds (+{args.warmup} warm-up), "
          f"shuffled each round")
    print(f"interpreter: {py} (python {sys.version.split()[0]})")
    dont = os.environ.get("PYTHONDONTWRITEBYTECODE")
    if args.bytecode == "cached":
        print("bytecode: cached in a private PYTHONPYCACHEPREFIX, filled by the warm-up"
              + (" (PYTHONDONTWRITEBYTECODE is set here and was lifted for the children)" if dont else ""))
    else:
        print("bytecode: as the environment has it" + (
            " (PYTHONDONTWRITEBYTECODE is set: modules without a .pyc are compiled on every run)"
            if dont else ""))
    print(f"expression: {EXPR!r} --at 2,5\n")
    print(f"  {'command':<22} {'median':>9} {'min':>9} {'max':>9}  {'x numpy':>7}   target")
    for name in cmds:
        ts = times[name]
        target = f"<= {TARGETS[name]:g}x" if name in TARGETS else ""
        print(f"  {name:<22} {med[name] * 1e3:7.1f}ms {min(ts) * 1e3:7.1f}ms {max(ts) * 1e3:7.1f}ms  "
              f"{med[name] / base:7.2f}   {target}")
    print("  (ratios are medians over the numpy baseline's median, all from this run)")

    met = {k: med[k] / base <= t for k, t in TARGETS.items()}
    print()
    for k, t in TARGETS.items():
        print(f"{k} path: {med[k] / base:.2f}x numpy import (target <= {t:g}x): "
              f"{'MET' if met[k] else 'MISSED'}")

    print()
    for path, mods in paths.items():
        heavy = sorted(m for m in mods if m.split(".")[0] in HEAVY)
        sympy = [m for m in heavy if m.split(".")[0] in ("sympy", "mpmath")]
        print(f"{path} path imports {len(mods)} modules; sympy imported: "
              f"{'YES: ' + ', '.join(sympy[:5]) if sympy else 'no'}"
              + (f"; other heavy modules: {', '.join(heavy[:8])}" if heavy and not sympy else ""))
        if sympy:
            problems.append(f"{path} path imports SymPy ({', '.join(sympy[:5])})")
        extra = defaultdict(int)
        for m, us in mods.items():
            if m not in base_mods:
                extra[m.split(".")[0]] += us
        top = sorted(extra.items(), key=lambda kv: -kv[1])[:8]
        print("  beyond `import numpy` (self import time by top-level package, one -X importtime run): "
              + ", ".join(f"{k} {us / 1e3:.1f}ms" for k, us in top))

    if problems:
        print()
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        return 1
    if args.strict and not all(met.values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
