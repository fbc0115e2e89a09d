"""How adcalc scales in a user's own process: building, --wrt, the forward and numeric
engines, verify's cold start, and the per-point API loop (issue 12's acceptance).

    python benchmarks/scaling.py [--parts abcdef] [--rounds 5] [--quick]

Every measurement runs in a fresh Python process (this script started again in a worker
mode), with the environment and the allocator as they are.  Where two things are compared
(adcalc against PyTorch, the forward engine against the reverse one, a command against an
import) their processes are driven round by round from here, in a shuffled order, and the
figures are medians with their spread (min-max over the rounds); ratios are of timings taken
in the same run.  Peak memory is the process's high-water mark (/proc/self/status VmHWM),
printed beside its growth over the resident size before the measured call.

  a  build     Problem(text, point={...}) of a flat sum x1*x2 + x2*x3 + ... of 10^3, 10^4,
               10^5 distinct variables: time (and time per term: linear growth) and peak
               memory; target < 1 s and < 300 MB at 10^5.  The whole command
               `adcalc grad @FILE --at 0.7 --json` for 10^4 terms sin(k*x)*c_k (k, c_k
               literals), against `python -c "import numpy"`; target < 1 s (derived from
               the build target).
  b  wrt       jacobian of exp(A@x) with respect to x only, n = 1000 (Problem(..., wrt=["x"]),
               ReverseEngine().jacobian) against torch.func.jacrev (and jax.jacrev when JAX
               is importable), each in its own process; target <= 2 x PyTorch.
  c  forward   forward engine on the extended Rosenbrock function: grad at n = 10^4 (< 1 s,
               < 500 MB), hvp at n = 10^5 as a multiple of f (<= 10), Hessian at n = 1000
               against the reverse engine's (<= 3 x).
  d  numeric   numeric engine: Hessian at n = 1000 (peak memory <= 1 GiB, no MemoryError) and
               an hvp at n = 10^5 (expected to decline with a reason and an estimate; what it
               does is reported).
  e  verify    `adcalc verify "log(x1)+x1*x2-sin(x2)" --at 2,5` cold, against
               `python -c "import sympy"`; who imports SymPy, and how often.
  f  loop      the worked example at 10^4 points through the Python API, point by point
               (`for x in X: ReverseEngine().grad(prob, x)`, target <= 15 us per point) and
               in one batched call, beside numpy closed forms in the same process.

Each result line ends with its target and MET or MISSED.  Exit status 1 when a result
is wrong; with --strict also when a target is missed.
"""
import argparse
import json
import os
import random
import resource
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROSEN = "sum(100*(x[1:]-x[:-1]**2)**2 + (1-x[:-1])**2)"
WORKED = "log(x1)+x1*x2-sin(x2)"
MB = 1 << 20


# ---- helpers used on both sides ------------------------------------------------------
def proc_status():
    """(VmRSS, VmHWM) of this process in MB."""
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0]) / 1024
    except OSError:
        pass
    hwm = out.get("VmHWM", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out.get("VmRSS", float("nan")), hwm


def peak_of(pid):
    """VmHWM of another process in MB (nan when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


from rosen_common import rel_diff, rosen_f, rosen_grad, rosen_hess, rosen_hvp  # noqa: E402


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def flat_sum_text(k):
    return " + ".join(f"x{i}*x{i + 1}" for i in range(1, k))


def fourier_text(k, seed=0):
    """sin(1*x)*c1 + sin(2*x)*c2 - ... with literal coefficients (signs as + and -)."""
    c = np.round(np.random.default_rng(seed).uniform(-1, 1, k), 6)
    parts = []
    for i, ci in enumerate(c, 1):
        term = f"sin({i}*x)*{abs(float(ci))!r}"
        parts.append(("-" if ci < 0 else "") + term if i == 1 else (" - " if ci < 0 else " + ") + term)
    return "".join(parts), c


# ---- worker tasks: setup(params) -> (ops {name: callable} for the rounds, info) --------
def task_build(p):
    k = p["k"]
    t0, _ = timed(lambda: __import__("adcalc.problem"))
    from adcalc.problem import Problem
    if p.get("lift"):  # benchmark only: measure growth past the parser's length cap
        import adcalc.parse
        adcalc.parse.MAX_LENGTH = 1 << 40
    text = flat_sum_text(k)
    point = {f"x{i}": 0.5 + (i % 7) * 0.1 for i in range(1, k + 1)}
    rss0, hwm0 = proc_status()
    info = {"chars": len(text), "import_s": t0, "rss_before_mb": rss0}
    try:
        t, prob = timed(lambda: Problem(text, point=point))
    except Exception as e:  # a limit or a MemoryError is a result here
        info["error"] = f"{type(e).__name__}: {e}"
        info["hwm_mb"] = proc_status()[1]
        return {}, info
    info.update(build_s=t, hwm_mb=proc_status()[1], n=prob.n)
    # a cheap check that the right thing was built: the value at the point
    x = prob.x0()
    info["value_diff"] = abs(float(prob.value(x)) - float(np.sum(x[:-1] * x[1:]))) / max(1.0, abs(float(np.sum(x[:-1] * x[1:]))))
    return {}, info


def task_jac(p):
    n, fw, seed = p["n"], p["fw"], p["seed"]
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n)) / np.sqrt(n)
    x = rng.standard_normal(n)
    truth = np.exp(A @ x)[:, None] * A
    ops = {"numpy": lambda: np.exp(A @ x)[:, None] * A}
    info = {}
    if fw == "adcalc":
        t, _ = timed(lambda: __import__("adcalc.engines.reverse"))
        from adcalc.engines.reverse import ReverseEngine
        from adcalc.problem import Problem
        info["import_s"] = t
        info["build_s"], prob = timed(lambda: Problem("exp(A@x)", point={"A": A, "x": x}, wrt=["x"]))
        eng = ReverseEngine()
        ops["jac"] = lambda: eng.jacobian(prob, x).value
        info["note"] = "Problem('exp(A@x)', point={'A': A, 'x': x}, wrt=['x']); ReverseEngine().jacobian"
    elif fw == "torch":
        import torch
        if p.get("threads"):
            torch.set_num_threads(p["threads"])
        At, xt = torch.from_numpy(A), torch.from_numpy(x)
        jr = torch.func.jacrev(lambda z: torch.exp(At @ z))
        ops["jac"] = lambda: jr(xt).numpy()
        info["note"] = f"torch {torch.__version__} torch.func.jacrev, float64, {torch.get_num_threads()} threads"
    elif fw == "jax":
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        Aj, xj = jnp.asarray(A), jnp.asarray(x)
        jr = jax.jit(jax.jacrev(lambda z: jnp.exp(Aj @ z)))
        ops["jac"] = lambda: np.asarray(jr(xj).block_until_ready())
        info["note"] = f"jax {jax.__version__} jit(jacrev), float64"
    rss0, _ = proc_status()
    info["first_s"], J = timed(ops["jac"])
    info["hwm_mb"], info["rss_before_mb"] = proc_status()[1], rss0
    info["diff"] = rel_diff(J, truth)
    return ops, info


def task_fwd_grad(p):
    n, seed = p["n"], p["seed"]
    from adcalc.engines.forward import ForwardEngine
    from adcalc.engines.reverse import ReverseEngine
    from adcalc.problem import Problem
    x = np.random.default_rng(seed).uniform(-2, 2, n)
    prob = Problem(ROSEN, point={"x": x})
    eng = ForwardEngine()
    rss0, _ = proc_status()
    info = {"rss_before_mb": rss0}
    try:
        info["first_s"], g = timed(lambda: eng.grad(prob, x).value)
    except MemoryError as e:
        info["error"] = f"MemoryError: {e}"
        info["hwm_mb"] = proc_status()[1]
        return {}, info
    info["hwm_mb"] = proc_status()[1]
    info["diff"] = rel_diff(g, rosen_grad(x))
    rev = ReverseEngine()
    return {"fwd": lambda: eng.grad(prob, x), "rev": lambda: rev.grad(prob, x)}, info


def task_fwd_hvp(p):
    n, seed = p["n"], p["seed"]
    from adcalc.engines.forward import ForwardEngine
    from adcalc.problem import Problem
    rng = np.random.default_rng(seed)
    x, v = rng.uniform(-2, 2, n), rng.standard_normal(n)
    prob = Problem(ROSEN, point={"x": x})
    eng = ForwardEngine()
    rss0, _ = proc_status()
    info = {"rss_before_mb": rss0}
    try:
        info["first_s"], hv = timed(lambda: eng.hvp(prob, x, v).value)
    except MemoryError as e:
        info["error"] = f"MemoryError: {e}"
        return {}, info
    info["hwm_mb"] = proc_status()[1]
    info["diff"] = rel_diff(hv, rosen_hvp(x, v))
    return {"hvp": lambda: eng.hvp(prob, x, v), "f": lambda: prob.value(x), "npf": lambda: rosen_f(x)}, info


def task_hess(p):
    n, seed, engine = p["n"], p["seed"], p["engine"]
    from adcalc.engines import get_engine
    from adcalc.problem import Problem
    x = np.random.default_rng(seed).uniform(-2, 2, n)
    prob = Problem(ROSEN, point={"x": x})
    eng = get_engine(engine)
    rss0, _ = proc_status()
    info = {"rss_before_mb": rss0}
    t = time.perf_counter()
    try:
        info["first_s"], res = timed(lambda: eng.hessian(prob, x))
    except Exception as e:  # MemoryError, or a refusal (EngineError): both are results here
        info["error"] = f"{type(e).__name__}: {e}"
        info["error_type"] = type(e).__name__
        info["time_s"] = time.perf_counter() - t
        info["hwm_mb"] = proc_status()[1]
        return {}, info
    info["hwm_mb"] = proc_status()[1]
    H, T = res.value, rosen_hess(x)
    info["diff"] = rel_diff(H, T)
    info["scaled_err"] = float(np.max(np.abs(H - T)) / np.max(np.abs(T)))
    if res.error is not None:  # the numeric engine's own error estimate, entry by entry
        miss = np.abs(H - T) > res.error
        info["beyond_estimate"] = int(np.count_nonzero(miss))
        info["worst_over_estimate"] = float(np.max(np.abs(H - T) / np.maximum(res.error, 1e-300)))
    if engine == "numeric":
        return {}, info  # one call: its memory and time are the figures
    return {"hess": lambda: eng.hessian(prob, x)}, info


def task_num_hvp(p):
    n, seed = p["n"], p["seed"]
    from adcalc.engines.numeric import NumericEngine
    from adcalc.problem import Problem
    rng = np.random.default_rng(seed)
    x, v = rng.uniform(-2, 2, n), rng.standard_normal(n)
    prob = Problem(ROSEN, point={"x": x})
    t = time.perf_counter()
    info = {}
    try:
        hv = NumericEngine().hvp(prob, x, v).value
        info["outcome"] = f"computed, max rel diff to the closed form {rel_diff(hv, rosen_hvp(x, v)):.1e}"
    except Exception as e:
        info["outcome"] = f"{type(e).__name__}: {e}"
        info["error_type"] = type(e).__name__
    info["time_s"] = time.perf_counter() - t
    info["hwm_mb"] = proc_status()[1]
    return {}, info


def task_loop(p):
    N, seed = p["N"], p["seed"]
    from adcalc.engines.reverse import ReverseEngine
    from adcalc.problem import Problem
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(0.5, 3.0, N), rng.uniform(-3.0, 3.0, N)])
    prob = Problem(WORKED, point={"x1": 2.0, "x2": 5.0})
    eng = ReverseEngine()
    truth = np.column_stack([1 / X[:, 0] + X[:, 1], X[:, 0] - np.cos(X[:, 1])])

    def loop_new():
        return [ReverseEngine().grad(prob, x).value for x in X]

    def loop_one():
        return [eng.grad(prob, x).value for x in X]

    def numpy_loop():
        return [np.array([1 / x[0] + x[1], x[0] - np.cos(x[1])]) for x in X]

    info = {"first_s": timed(loop_new)[0]}
    info["diff_loop"] = rel_diff(np.array(loop_new()), truth)
    info["diff_batch"] = rel_diff(eng.grad(prob, X).value, truth)
    ops = {"loop": loop_new, "loop_one_engine": loop_one, "batched": lambda: eng.grad(prob, X),
           "numpy_loop": numpy_loop,
           "numpy_batched": lambda: np.column_stack([1 / X[:, 0] + X[:, 1], X[:, 0] - np.cos(X[:, 1])])}
    return ops, info


TASKS = {"build": task_build, "jac": task_jac, "fwd_grad": task_fwd_grad, "fwd_hvp": task_fwd_hvp,
         "hess": task_hess, "num_hvp": task_num_hvp, "loop": task_loop}


def worker(task, params):
    proto = sys.stdout
    sys.stdout = sys.stderr  # nothing but the protocol on the pipe

    def send(obj):
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    try:
        ops, info = TASKS[task](params)
    except ImportError as e:
        send({"skip": f"not importable ({e})"})
        return 0
    info["pid"] = os.getpid()
    send({"ready": True, "info": info})
    names = list(ops)
    order = random.Random(params.get("seed", 0) + len(task))
    for line in sys.stdin:
        if line.strip() != "round":
            break
        order.shuffle(names)
        send({"times": {name: timed(ops[name])[0] for name in names}})
    send({"hwm_mb": proc_status()[1]})
    return 0


# ---- the driver -----------------------------------------------------------------------
class Worker:
    """A fresh interpreter running one task; one JSON line per request."""

    def __init__(self, task, params, timeout):
        self.task, self.timeout, self.buf = task, timeout, b""
        self.err = tempfile.TemporaryFile()
        argv = [sys.executable, os.path.abspath(__file__), "--worker", task, "--params", json.dumps(params)]
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err)

    def read(self, timeout=None):
        timeout = timeout or self.timeout
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                hwm = peak_of(self.p.pid)
                self.p.kill()
                self.p.wait()
                raise RuntimeError(f"no answer within {timeout:g} s (killed; its peak memory until then "
                                   f"{hwm:.0f} MB)")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    self.p.wait()
                    raise RuntimeError(f"exited with status {self.p.returncode}: {self.stderr_tail()}")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def ask(self, what):
        self.p.stdin.write(what.encode() + b"\n")
        self.p.stdin.flush()
        return self.read()

    def stderr_tail(self, n=400):
        self.err.seek(0)
        return " ".join(self.err.read().decode(errors="replace").split())[-n:]

    def close(self):
        out = {}
        if self.p.poll() is None:
            try:
                out = self.ask("done")
            except (RuntimeError, BrokenPipeError, OSError):
                pass
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        return out


def start(task, params, timeout):
    """(worker or None, its ready info or {'error': ...} / {'skip': ...})."""
    w = Worker(task, params, timeout)
    try:
        msg = w.read()
    except RuntimeError as e:
        return None, {"error": str(e)}
    if "skip" in msg:
        w.close()
        return None, msg
    return w, msg["info"]


def interleave(workers, rounds, seed):
    """{name: [ {op: seconds} per round ]}: each round asks every worker once, shuffled."""
    out = {k: [] for k in workers}
    names = list(workers)
    rnd = random.Random(seed)
    for _ in range(rounds):
        rnd.shuffle(names)
        for k in names:
            out[k].append(workers[k].ask("round")["times"])
    return out


def st(xs):
    """(median, min, max)."""
    return statistics.median(xs), min(xs), max(xs)


def num(v, digits=3):
    """v to `digits` significant digits, without an exponent between 1e-3 and 1e7."""
    if v == 0 or not np.isfinite(v) or not 1e-3 <= abs(v) < 1e7:
        return f"{v:.{digits}g}"
    decimals = max(0, digits - 1 - int(np.floor(np.log10(abs(v)))))
    return f"{v:.{decimals}f}"


def fs(s, scale=1.0, digits=3, unit=""):
    med, lo, hi = (v * scale for v in s)
    return f"{num(med, digits)}{unit} ({num(lo, digits)}-{num(hi, digits)})"


class Report:
    def __init__(self):
        self.targets, self.wrong = [], []

    def target(self, label, ok, figure, target):
        word = "MET" if ok else "MISSED"
        self.targets.append((label, word))
        print(f"  -> {label}: {figure}   target {target}: {word}")

    def bad(self, what):
        self.wrong.append(what)
        print(f"  WRONG: {what}")


def check(rep, what, diff, tol):
    line = f"{what}: max rel diff to the closed form {diff:.1e}"
    if diff > tol:
        rep.bad(line)
    else:
        print(f"  ({line})")


# ---- parts ------------------------------------------------------------------------------
def part_build(args, rep):
    print("\n[a] parse and build: Problem(text, point={...}) of x1*x2 + x2*x3 + ... , "
          f"each a fresh process, {args.build_repeat} repeats")
    print(f"  {'variables':>9} {'chars':>9} {'build s, median (min-max)':>30} {'us per term':>12} "
          f"{'peak MB (VmHWM)':>16} {'growth MB':>10}")
    results, lifted = {}, {}
    for k in args.build_sizes:
        runs, failed = [], None
        for _ in range(args.build_repeat):
            w, info = start("build", {"k": k}, args.build_timeout)
            if w is not None:
                w.close()
            if "error" in info:
                failed = info
                break
            runs.append(info)
        if failed:
            print(f"  {k:>9} {failed.get('chars', ''):>9}   FAILED: {failed['error'][:300]}"
                  + (f" (peak {failed['hwm_mb']:.0f} MB)" if "hwm_mb" in failed else ""))
            results[k] = None
            if "characters long; the limit is" in failed["error"]:
                w, info = start("build", {"k": k, "lift": True}, args.build_timeout)
                if w is not None:
                    w.close()
                if "error" in info:
                    print(f"  {'':>9} {'':>9}   with the length cap lifted in the worker: {info['error'][:300]}")
                else:
                    print(f"  {k:>9} {info['chars']:>9} {num(info['build_s']) + ' s':>30} "
                          f"{info['build_s'] / (k - 1) * 1e6:12.1f} {info['hwm_mb']:16.0f} "
                          f"{info['hwm_mb'] - info['rss_before_mb']:10.0f}   <- parse.MAX_LENGTH lifted "
                          f"in the worker (benchmark only, one run): growth past the cap")
                    lifted[k] = (info["build_s"], info["hwm_mb"])
            continue
        b = st([r["build_s"] for r in runs])
        hwm = max(r["hwm_mb"] for r in runs)
        growth = max(r["hwm_mb"] - r["rss_before_mb"] for r in runs)
        results[k] = (b, hwm)
        if any(r["value_diff"] > 1e-12 or r["n"] != k for r in runs):
            rep.bad(f"build {k}: wrong value or variable count")
        print(f"  {k:>9} {runs[0]['chars']:>9} {fs(b, 1, 3, ' s'):>30} {b[0] / (k - 1) * 1e6:12.1f} "
              f"{hwm:16.0f} {growth:10.0f}")
    big = max(args.build_sizes)
    if results.get(big):
        (b, hwm) = results[big]
        rep.target(f"build at {big} variables", b[0] < 1.0 and hwm < 300,
                   f"{b[0]:.3f} s (min-max {b[1]:.3f}-{b[2]:.3f}), peak {hwm:.0f} MB", "< 1 s and < 300 MB")
    else:
        rep.target(f"build at {big} variables", False, "did not build (above)", "< 1 s and < 300 MB")
    per_term = {k: results[k][0][0] for k in results if results[k]}
    per_term.update(lifted)
    per_term = {k: (v[0] if isinstance(v, tuple) else v) for k, v in per_term.items()}
    sizes = sorted(per_term)
    if len(sizes) >= 2:
        per = [per_term[k] / (k - 1) * 1e6 for k in sizes]
        print("  time per term (us): " + ", ".join(f"{k}: {u:.1f}" for k, u in zip(sizes, per))
              + f"; last/first {per[-1] / per[0]:.2f} (1 = linear)")

    # the whole command on a file of 10^4 terms
    k = args.cli_terms
    tmp = tempfile.mkdtemp(prefix="adcalc-scaling-")
    try:
        text, c = fourier_text(k, args.seed)
        path = os.path.join(tmp, "fourier.txt")
        with open(path, "w") as fh:
            fh.write(text)
        x = 0.7
        want = float(np.sum(c * np.arange(1, k + 1) * np.cos(np.arange(1, k + 1) * x)))
        py = sys.executable  # the venv's interpreter (its realpath would leave the venv)
        cmds = {"import numpy": [py, "-c", "import numpy"],
                "grad 1 term": [py, "-m", "adcalc", "grad", "sin(2*x)*0.5", "--at", "0.7", "--json"],
                f"grad {k} terms": [py, "-m", "adcalc", "grad", "@" + path, "--at", "0.7", "--json"]}
        times = run_commands(cmds, args.cli_rounds, args.seed, tmp, timeout=args.build_timeout)
        out = subprocess.run(cmds[f"grad {k} terms"], capture_output=True, cwd=tmp, text=True)
        print(f"\n  `adcalc grad @FILE --at 0.7 --json`, FILE = {k} terms sin(k*x)*c_k ({len(text)} chars), "
              f"fresh processes, {args.cli_rounds} interleaved rounds:")
        show_commands(times, "import numpy")
        try:
            got = json.loads(out.stdout)["gradient"]
            got = float(np.ravel(got)[0])
            d = abs(got - want) / max(abs(want), 1e-300)
            if d > 1e-9:
                rep.bad(f"CLI gradient {got} != closed form {want}")
            else:
                print(f"  (gradient {got:.12g} agrees with the closed form, rel diff {d:.1e})")
        except (ValueError, KeyError, TypeError):
            rep.bad(f"CLI run: exit {out.returncode}, {out.stderr.strip()[-300:]}")
        key = f"grad {k} terms"
        if times.get(key):
            s = st(times[key])
            rep.target(f"CLI grad of {k} terms", s[0] < 1.0, fs(s, 1, 3, " s"), "< 1 s (derived)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_commands(cmds, rounds, seed, cwd, timeout=600, warmup=1):
    times = {k: [] for k in cmds}
    names = list(cmds)
    rnd = random.Random(seed)
    for r in range(warmup + rounds):
        rnd.shuffle(names)
        for k in names:
            t = time.perf_counter()
            try:
                p = subprocess.run(cmds[k], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, timeout=timeout)
                rc = p.returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
            dt = time.perf_counter() - t
            if rc != 0:
                print(f"  {k}: exit {rc}")
            if r >= warmup:
                times[k].append(dt)
    return times


def show_commands(times, base):
    bmed = statistics.median(times[base])
    for k, ts in times.items():
        s = st(ts)
        print(f"    {k:<28} {fs(s, 1e3, 4, ' ms'):>30}   x {base}: {s[0] / bmed:.2f}")


def part_wrt(args, rep):
    n = args.jac_n
    print(f"\n[b] jacobian of exp(A@x) with respect to x only, n = {n} (A random {n}x{n} / sqrt(n)), "
          f"each framework a fresh process, {args.rounds} interleaved rounds")
    workers, infos = {}, {}
    for fw in ("adcalc", "torch", "jax"):
        w, info = start("jac", {"n": n, "fw": fw, "seed": args.seed, "threads": args.torch_threads}, args.timeout)
        infos[fw] = info
        if w is not None:
            workers[fw] = w
        elif "skip" in info:
            print(f"  {fw}: skipped, {info['skip']}")
        else:
            print(f"  {fw}: FAILED, {info['error']}")
    slow = max((infos[fw].get("first_s", 0) for fw in workers), default=0)
    r = args.rounds if slow < args.slow else 2
    if r != args.rounds:
        print(f"  (a first call took {slow:.1f} s: {r} rounds only)")
    rounds = interleave(workers, r, args.seed)
    for w in workers.values():
        w.close()
    for fw in workers:
        i = infos[fw]
        jac = st([r["jac"] for r in rounds[fw]])
        per = st([r["jac"] / r["numpy"] for r in rounds[fw]])
        print(f"  {fw:<7} jacobian {fs(jac, 1e3, 3, ' ms'):>26}, first call {i['first_s'] * 1e3:.1f} ms"
              + (f", build {i['build_s'] * 1e3:.1f} ms" if "build_s" in i else "")
              + f"; x numpy closed form (same process) {fs(per, 1, 3)}; peak {i['hwm_mb']:.0f} MB")
        print(f"          ({i['note']})")
        check(rep, f"{fw} jacobian", i["diff"], 1e-12)
    if "adcalc" in workers and "torch" in workers:
        ratio = st([a["jac"] / b["jac"] for a, b in zip(rounds["adcalc"], rounds["torch"])])
        rep.target("jacobian exp(A@x) --wrt x, adcalc / torch.func.jacrev", ratio[0] <= 2.0,
                   fs(ratio, 1, 3) + " (per-round ratios)", "<= 2")
    elif "adcalc" not in workers:
        rep.target("jacobian exp(A@x) --wrt x", False, f"adcalc failed: {infos['adcalc'].get('error')}", "<= 2 x torch")
    if "jax" in workers and "adcalc" in workers:
        ratio = st([a["jac"] / b["jac"] for a, b in zip(rounds["adcalc"], rounds["jax"])])
        print(f"  adcalc / jax jit(jacrev): {fs(ratio, 1, 3)} (no target)")


def part_forward(args, rep):
    print(f"\n[c] forward engine, extended Rosenbrock ({ROSEN}), fresh processes")
    n = args.fwd_grad_n
    w, info = start("fwd_grad", {"n": n, "seed": args.seed}, args.timeout)
    if w is None:
        print(f"  grad n = {n}: FAILED {info.get('error')}")
        rep.target(f"forward grad at n = {n}", False, "failed", "< 1 s and < 500 MB")
    else:
        r = args.rounds if info.get("first_s", 0) < args.slow else 2
        rounds = interleave({"w": w}, r, args.seed)["w"] if "error" not in info else []
        w.close()
        if "error" in info:
            print(f"  grad n = {n}: {info['error']}")
            rep.target(f"forward grad at n = {n}", False, info["error"][:80], "< 1 s and < 500 MB")
        else:
            fwd = st([x["fwd"] for x in rounds])
            ratio = st([x["fwd"] / x["rev"] for x in rounds])
            print(f"  grad n = {n}: first call {info['first_s']:.3f} s, then {fs(fwd, 1, 3, ' s')} over {r} rounds; "
                  f"peak {info['hwm_mb']:.0f} MB (grew {info['hwm_mb'] - info['rss_before_mb']:.0f} MB); "
                  f"x reverse grad in the same process {fs(ratio, 1, 3)}")
            check(rep, "forward grad", info["diff"], 1e-9)
            worst = max(info["first_s"], fwd[0])
            rep.target(f"forward grad at n = {n}", worst < 1.0 and info["hwm_mb"] < 500,
                       f"{fwd[0]:.3f} s warm, {info['first_s']:.3f} s first, peak {info['hwm_mb']:.0f} MB",
                       "< 1 s and < 500 MB")

    n = args.fwd_hvp_n
    w, info = start("fwd_hvp", {"n": n, "seed": args.seed}, args.timeout)
    if w is None or "error" in info:
        msg = info.get("error", "failed")
        print(f"  hvp n = {n}: {msg}")
        rep.target(f"forward hvp at n = {n}", False, msg[:80], "<= 10 x f")
        if w is not None:
            w.close()
    else:
        r = args.rounds * 2
        rounds = interleave({"w": w}, r, args.seed)["w"]
        w.close()
        own = st([x["hvp"] / x["f"] for x in rounds])
        npf = st([x["hvp"] / x["npf"] for x in rounds])
        hv = st([x["hvp"] for x in rounds])
        print(f"  hvp n = {n}: {fs(hv, 1e3, 3, ' ms')} over {r} rounds, first call {info['first_s'] * 1e3:.1f} ms, "
              f"peak {info['hwm_mb']:.0f} MB; x numpy f (same process) {fs(npf, 1, 3)}")
        check(rep, "forward hvp", info["diff"], 1e-9)
        rep.target(f"forward hvp at n = {n} / adcalc f", own[0] <= 10, fs(own, 1, 3) + " (per-round)", "<= 10")

    n = args.hess_n
    workers, infos = {}, {}
    for eng in ("forward", "reverse"):
        w, info = start("hess", {"n": n, "seed": args.seed, "engine": eng}, args.timeout)
        infos[eng] = info
        if w is not None and "error" not in info:
            workers[eng] = w
        else:
            if w is not None:
                w.close()
            print(f"  hessian n = {n}, {eng}: FAILED {info.get('error')}")
    slow = max((infos[e].get("first_s", 0) for e in workers), default=0)
    r = args.rounds if slow < args.slow else 2
    rounds = interleave(workers, r, args.seed)
    for w in workers.values():
        w.close()
    for eng in workers:
        i = infos[eng]
        s = st([x["hess"] for x in rounds[eng]])
        print(f"  hessian n = {n}, {eng}: {fs(s, 1e3, 3, ' ms')} over {r} rounds, first call "
              f"{i['first_s'] * 1e3:.0f} ms, peak {i['hwm_mb']:.0f} MB")
        check(rep, f"{eng} hessian", i["diff"], 1e-9)
    if len(workers) == 2:
        ratio = st([a["hess"] / b["hess"] for a, b in zip(rounds["forward"], rounds["reverse"])])
        rep.target(f"forward hessian at n = {n} / reverse hessian", ratio[0] <= 3, fs(ratio, 1, 3) + " (per-round)",
                   "<= 3")
    else:
        rep.target(f"forward hessian at n = {n} / reverse hessian", False, "did not run", "<= 3")


def part_numeric(args, rep):
    n = args.hess_n
    print(f"\n[d] numeric engine (default method), extended Rosenbrock, fresh processes "
          f"(the Hessian took about 5 minutes when this script was written; --skip d, --numeric-timeout)")
    w, info = start("hess", {"n": n, "seed": args.seed, "engine": "numeric"}, args.numeric_timeout)
    if w is not None:
        w.close()
    if "error" in info:
        print(f"  hessian n = {n}: " + (f"after {info['time_s']:.2f} s (peak {info['hwm_mb']:.0f} MB): "
                                        if "time_s" in info else "") + info["error"][:600])
        what = ("declined (no MemoryError), so it does not finish" if info.get("error_type") == "EngineError"
                else info["error"][:100])
        rep.target(f"numeric hessian at n = {n}", False, what, "finishes within 1 GiB, no MemoryError")
    else:
        print(f"  hessian n = {n}: {info['first_s']:.2f} s, peak {info['hwm_mb']:.0f} MB "
              f"(grew {info['hwm_mb'] - info['rss_before_mb']:.0f} MB); max |H - H_exact| / max |H_exact| = "
              f"{info['scaled_err']:.1e} (entrywise, floored at 1e-8 max|H|: {info['diff']:.1e})")
        if "beyond_estimate" in info:
            print(f"  its error estimate covers the true error in {n * n - info['beyond_estimate']} of {n * n} "
                  f"entries (worst true error / estimate {info['worst_over_estimate']:.2g})")
            if info["beyond_estimate"]:
                rep.bad(f"numeric hessian: {info['beyond_estimate']} entries off by more than their error estimate")
        elif info["scaled_err"] > 1e-6:
            rep.bad(f"numeric hessian: max |H - H_exact| / max |H_exact| = {info['scaled_err']:.1e}")
        rep.target(f"numeric hessian at n = {n}", info["hwm_mb"] <= 1024,
                   f"peak {info['hwm_mb']:.0f} MB, {info['first_s']:.2f} s", "<= 1024 MB, no MemoryError")
    n = args.num_hvp_n
    w, info = start("num_hvp", {"n": n, "seed": args.seed}, args.numeric_timeout)
    if w is not None:
        w.close()
    if "error" in info:
        print(f"  hvp n = {n}: {info['error'][:300]}")
        rep.target(f"numeric hvp at n = {n}", False, info["error"][:100], "declines with a reason and an estimate")
    else:
        print(f"  hvp n = {n}: after {info['time_s']:.2f} s (peak {info['hwm_mb']:.0f} MB): {info['outcome'][:600]}")
        declined = info.get("error_type") not in (None, "MemoryError")
        rep.target(f"numeric hvp at n = {n}", declined,
                   "declined" if declined else info["outcome"][:60], "declines with a reason and an estimate, "
                   "no MemoryError (judge the message above)")


IMPORT_HOOK = r"""
import sys, traceback, runpy
class _Watch:
    hits = []
    def find_spec(self, name, path=None, target=None):
        if name == "sympy":
            stack = traceback.extract_stack()
            if any(f.name == "find_spec" and f.filename.endswith(("importlib/util.py", "importlib.util>")) for f in stack):
                return None   # importlib.util.find_spec: a lookup (is it installed?), not an import
            st = [f"{f.filename.split('/adcalc/')[-1]}:{f.lineno} {f.name}" for f in stack
                  if "/adcalc/" in f.filename]
            sys.stderr.write("SYMPY-IMPORT " + " > ".join(st[-4:]) + "\n")
        return None
sys.meta_path.insert(0, _Watch())
sys.argv = ["adcalc"] + sys.argv[1:]
runpy.run_module("adcalc", run_name="__main__")
"""


def part_verify(args, rep):
    py = sys.executable  # the venv's interpreter (its realpath would leave the venv)
    verify = [py, "-m", "adcalc", "verify", WORKED, "--at", "2,5"]
    cmds = {"import numpy": [py, "-c", "import numpy"], "import sympy": [py, "-c", "import sympy"],
            "adcalc verify": verify}
    tmp = tempfile.mkdtemp(prefix="adcalc-verify-")
    try:
        cwd = tmp if subprocess.run(verify, cwd=tmp, capture_output=True).returncode == 0 else os.getcwd()
        out = subprocess.run(verify, cwd=cwd, capture_output=True, text=True)
        print(f"\n[e] `adcalc verify \"{WORKED}\" --at 2,5` cold (python -m adcalc), fresh processes, "
              f"{args.cli_rounds} interleaved rounds; environment as it is"
              + (" (PYTHONDONTWRITEBYTECODE is set: adcalc's modules are compiled on every run)"
                 if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""))
        if out.returncode != 0:
            rep.bad(f"verify exited {out.returncode}: {out.stderr.strip()[-300:]}")
        times = run_commands(cmds, args.cli_rounds, args.seed, cwd)
        show_commands(times, "import sympy")
        vt, stt = statistics.median(times["adcalc verify"]), statistics.median(times["import sympy"])
        print(f"  verify - import sympy = {1e3 * (vt - stt):.0f} ms (the rest of verify, medians)")
        imp = subprocess.run([py, "-X", "importtime", *verify[1:]], cwd=cwd, capture_output=True, text=True)
        lines = [ln for ln in imp.stderr.splitlines() if ln.startswith("import time:")]
        sympy_top = [ln for ln in lines if ln.split("|")[-1].strip() == "sympy"]
        cum = [int(ln.split("|")[1]) for ln in sympy_top]
        hook = subprocess.run([py, "-c", IMPORT_HOOK, "verify", WORKED, "--at", "2,5"], cwd=cwd,
                              capture_output=True, text=True)
        who = [ln[len("SYMPY-IMPORT "):] for ln in hook.stderr.splitlines() if ln.startswith("SYMPY-IMPORT")]
        print(f"  -X importtime: 'sympy' imported {len(sympy_top)} time(s), cumulative "
              f"{', '.join(f'{c / 1e3:.0f} ms' for c in cum)} (one run)")
        print(f"  first asked for by (adcalc frames, innermost last): {who[0] if who else 'not imported'}"
              + (f"; asked {len(who)} times in all (later asks find it in sys.modules)" if len(who) > 1 else ""))
        by_check = bool(who) and " available > " in who[0] + " > "
        if by_check:
            print("  (that is the symbolic engine's availability check: issue 12 item 7 asks for no import there)")
        rep.target("verify imports SymPy once, not from an availability check",
                   len(sympy_top) == 1 and not by_check,
                   f"{len(sympy_top)} import(s), {'by available()' if by_check else 'by the computation'}",
                   "once, by the engine that uses it")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def part_loop(args, rep):
    N = args.loop_n
    print(f"\n[f] the worked example {WORKED!r} at {N} points through the Python API, a fresh process, "
          f"{args.rounds} rounds")
    w, info = start("loop", {"N": N, "seed": args.seed}, args.timeout)
    if w is None:
        print(f"  FAILED {info.get('error')}")
        rep.target("API loop", False, "failed", "<= 15 us per point")
        return
    rounds = interleave({"w": w}, args.rounds, args.seed)["w"]
    w.close()
    check(rep, "loop gradients", info["diff_loop"], 1e-12)
    check(rep, "batched gradients", info["diff_batch"], 1e-12)
    base = st([r["numpy_loop"] / N * 1e6 for r in rounds])
    for k, label in (("loop", "for x in X: ReverseEngine().grad(prob, x)"),
                     ("loop_one_engine", "for x in X: eng.grad(prob, x), one engine"),
                     ("batched", "eng.grad(prob, X), one batched call"),
                     ("numpy_loop", "numpy closed form, point by point"),
                     ("numpy_batched", "numpy closed form, vectorised")):
        us = st([r[k] / N * 1e6 for r in rounds])
        ratio = st([r[k] / r["numpy_loop"] for r in rounds])
        print(f"  {label:<46} {fs(us, 1, 3, ' us/point'):>28}   x numpy loop {fs(ratio, 1, 3)}")
    print(f"  (first loop, cold: {info['first_s'] / N * 1e6:.1f} us/point)")
    s = st([r["loop"] / N * 1e6 for r in rounds])
    rep.target("API loop, for x in X: ReverseEngine().grad(prob, x)", s[0] <= 15, fs(s, 1, 3, " us/point"),
               "<= 15 us/point")


PARTS = {"a": part_build, "b": part_wrt, "c": part_forward, "d": part_numeric, "e": part_verify, "f": part_loop}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="abcdef", help="which parts to run (default abcdef)")
    ap.add_argument("--skip", default="", help="parts to leave out, e.g. --skip cd")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds for in-process timings (default 5)")
    ap.add_argument("--cli-rounds", type=int, default=7, help="rounds of whole commands (default 7)")
    ap.add_argument("--build-repeat", type=int, default=3, help="fresh processes per build size (default 3)")
    ap.add_argument("--build-sizes", default="1000,10000,100000")
    ap.add_argument("--build-timeout", type=float, default=120)
    ap.add_argument("--cli-terms", type=int, default=10_000)
    ap.add_argument("--jac-n", type=int, default=1000)
    ap.add_argument("--fwd-grad-n", type=int, default=10_000)
    ap.add_argument("--fwd-hvp-n", type=int, default=100_000)
    ap.add_argument("--hess-n", type=int, default=1000)
    ap.add_argument("--num-hvp-n", type=int, default=100_000)
    ap.add_argument("--loop-n", type=int, default=10_000)
    ap.add_argument("--torch-threads", type=int, default=0,
                    help="PyTorch intra-op threads for part b (default 0: torch's default)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds a worker may take per answer")
    ap.add_argument("--numeric-timeout", type=float, default=600,
                    help="seconds for each numeric-engine measurement (default 600)")
    ap.add_argument("--slow", type=float, default=2.0,
                    help="a first call slower than this many seconds gets 2 rounds only (default 2)")
    ap.add_argument("--quick", action="store_true", help="fewer rounds (3, 3 commands, 1 build repeat)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    ap.add_argument("--worker", choices=sorted(TASKS), help=argparse.SUPPRESS)
    ap.add_argument("--params", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker, json.loads(args.params))
    if args.quick:
        args.rounds, args.cli_rounds, args.build_repeat = 3, 3, 1
    args.build_sizes = [int(float(s)) for s in args.build_sizes.split(",") if s.strip()]
    parts = [p for p in args.parts if p in PARTS and p not in args.skip]

    print(f"adcalc scaling; python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"load average {', '.join(f'{a:.2f}' for a in os.getloadavg())}; every measurement in a fresh "
          f"process, environment and allocator untouched")
    rep = Report()
    t0 = time.perf_counter()
    for p in parts:
        PARTS[p](args, rep)
    print(f"\nsummary ({time.perf_counter() - t0:.0f} s; load average at the end "
          f"{', '.join(f'{a:.2f}' for a in os.getloadavg())}: a shared machine, noise shows in the spreads):")
    for label, word in rep.targets:
        print(f"  {word:<6} {label}")
    for w in rep.wrong:
        print(f"  WRONG  {w}")
    if rep.wrong:
        return 1
    if args.strict and any(word != "MET" for _, word in rep.targets):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
