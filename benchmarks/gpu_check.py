"""One script for a machine with an NVIDIA GPU: build, test and measure the gpu engine.

    python benchmarks/gpu_check.py [--budget 450] [--out gpu_check.json] [--sizes 1e6,1e7,1e8]

Meant for a short lease on a GPU machine (the project's: one H200, nvcc 13, CuPy, no
pycuda, no network), run once from the repository root.  Every step is guarded: a step
that fails prints why and the script goes on; steps that would overrun --budget seconds
are skipped and say so.  It prints, in order:

  1. the environment: Python, numpy, CuPy/pycuda, nvcc, the GPU, and the gpu engine's
     availability (its reason when it cannot run);
  2. `adcalc verify` with the gpu engine beside reverse, forward and compiled on several
     expressions (JSON verdicts per engine and quantity), and `adcalc grad --engine gpu`;
  3. the gpu tests of tests/test_gpu.py, called directly (tests/conftest.py skips them
     where pycuda is missing), then pytest on tests/test_gpu.py and tests/test_codegen.py;
  4. device-resident gradient throughput of the worked example, log(x1)+x1*x2-sin(x2),
     at N = 10^6, 10^7, 10^8 (float64; float32 and --fast at the largest N): points/s,
     effective bandwidth, and the fraction of the memory-bandwidth bound (4.8 TB/s on an
     H200 at 32 bytes per point: 16 in, 16 out; the engine also writes a 4-byte flag);
  5. benchmarks/batch.py at N = 10^6 (all contestants in one run), when time is left;
  6. a summary, also written as JSON to --out (default $OUT/gpu_check.json when $OUT is
     set, else ./gpu_check.json).

Exit status: 0 when every check passed, 1 when one failed, 2 when the gpu engine could
not run at all.
"""
import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

BANDWIDTH = 4.8e12          # bytes/s, H200 HBM3e
BYTES_PER_POINT = 32        # the issue's bound: 2 inputs + 2 outputs in float64
WORKED = "log(x1)+x1*x2-sin(x2)"
VERIFY = [
    (WORKED, "2,5", []),
    ("(1-x)**2 + 100*(y-x**2)**2", "-1.2,1", ["--random", "3", "--seed", "1"]),
    ("sum(sigmoid(W @ v) * softplus(v)) + logsumexp(v) + norm(v) + max(v)", "W=[[1,2],[3,4]],v=[0.5,-1]", []),
    ("x ** y + atan2(y, x) + hypot(x, y) + cbrt(x - y) + erf(x) * erfc(y) + sinc(x)", "0.7,1.3", []),
    ("[x*y, exp(x) / y, sinh(x) * acosh(1 + y*y)]", "0.5,2", []),
    ("sum(100*(x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2)", "x=[0.5,-1,2,1.5]", []),
]

REPORT = {"steps": {}, "failures": []}
START = time.monotonic()


def left(budget):
    return budget - (time.monotonic() - START)


def say(*a):
    print(*a, flush=True)


def step(name, budget, need):
    """Decorator running a step with error capture and a time check."""
    def wrap(fn):
        def run(*args, **kw):
            say(f"\n=== {name} ===")
            if left(budget) < need:
                say(f"skipped: {left(budget):.0f} s left, the step needs about {need} s")
                REPORT["steps"][name] = "skipped (time)"
                return None
            t = time.monotonic()
            try:
                out = fn(*args, **kw)
                REPORT["steps"][name] = f"done in {time.monotonic() - t:.1f} s"
                return out
            except Exception as e:
                tb = traceback.format_exc().strip().splitlines()
                say("FAILED: " + f"{type(e).__name__}: {e}")
                say("\n".join(tb[-8:]))
                REPORT["steps"][name] = f"failed: {type(e).__name__}: {e}"
                REPORT["failures"].append(name)
                return None
        return run
    return wrap


def sh(cmd, timeout):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        return r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        return 124, e.stdout or "", f"timed out after {timeout} s"
    except OSError as e:
        return 127, "", str(e)


def environment(budget):
    @step("environment", budget, 5)
    def run():
        import numpy as np
        info = {"python": sys.version.split()[0], "numpy": np.__version__, "machine": platform.machine(),
                "cpus": os.cpu_count()}
        for mod in ("cupy", "pycuda", "pytest", "hypothesis", "sympy", "jax"):
            try:
                m = importlib.import_module(mod)
                info[mod] = getattr(m, "__version__", "present")
            except Exception as e:
                info[mod] = f"missing ({type(e).__name__})"
        code, out, err = sh(["nvcc", "--version"], 30)
        info["nvcc"] = out.strip().splitlines()[-1] if code == 0 and out.strip() else f"missing ({err.strip()[:80]})"
        code, out, _ = sh(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"], 30)
        info["gpu"] = out.strip() if code == 0 else "nvidia-smi failed"
        from adcalc.engines.gpu import probe
        backend, reason = probe()
        info["launcher"], info["gpu_engine"] = backend, reason or "available"
        for k, v in info.items():
            say(f"  {k:<11} {v}")
        REPORT["environment"] = info
        return backend
    return run()


def verify(budget):
    @step("adcalc verify with the gpu engine", budget, 60)
    def run():
        results = {}
        for text, at, extra in VERIFY:
            if left(budget) < 40:
                say("  (stopping: time)")
                break
            cmd = [sys.executable, "-m", "adcalc", "verify", text, "--at", at, "--engines",
                   "reverse,forward,compiled,gpu", "--json", *extra]
            code, out, err = sh(cmd, 150)
            try:
                obj = json.loads(out)
            except ValueError:
                say(f"  {text}: exit {code}, no JSON: {(err or out).strip()[-300:]}")
                results[text] = {"exit": code, "error": (err or out).strip()[-300:]}
                REPORT["failures"].append(f"verify {text}")
                continue
            gpu = obj.get("engines", {}).get("gpu", {})
            say(f"  {text} at {at}: exit {code}, ok={obj.get('ok')}, gpu: {gpu.get('status')}"
                f" (max rel diff {gpu.get('max_rel_diff')}) {gpu.get('reason') or ''}")
            results[text] = {"exit": code, "ok": obj.get("ok"), "gpu": gpu}
            if code != 0 or gpu.get("status") != "ok":
                REPORT["failures"].append(f"verify {text}")
        code, out, err = sh([sys.executable, "-m", "adcalc", "grad", WORKED, "--at", "2,5", "--engine", "gpu",
                             "--json"], 120)
        say(f"  adcalc grad --engine gpu: exit {code}: {out.strip()[-200:] or err.strip()[-300:]}")
        try:
            got = json.loads(out)["gradient"]
            ok = abs(got[0] - 5.5) <= 1e-14 * 5.5 and abs(got[1] - 1.7163378145367738) <= 1e-14 * 5.5
        except (ValueError, KeyError, TypeError, IndexError):
            ok = False
        if not ok:
            REPORT["failures"].append("grad --engine gpu")
        results["grad --engine gpu"] = {"exit": code, "exact": ok}
        REPORT["verify"] = results
    return run()


def gpu_tests(budget):
    @step("gpu tests (tests/test_gpu.py, called directly)", budget, 60)
    def run():
        try:
            import pytest  # noqa: F401
        except ImportError:
            sys.modules["pytest"] = _pytest_stub()
            say("  (pytest is not installed: a stand-in provides its decorators)")
        import test_gpu
        out = {}
        for name in sorted(dir(test_gpu)):
            fn = getattr(test_gpu, name)
            marks = [m.name for m in getattr(fn, "pytestmark", [])]
            if not name.startswith("test_") or "gpu" not in marks:
                continue
            t = time.monotonic()
            try:
                fn()
                out[name] = f"passed in {time.monotonic() - t:.1f} s"
            except Exception as e:
                if type(e).__name__ == "Skipped":
                    out[name] = f"skipped: {e}"
                else:
                    out[name] = f"FAILED: {type(e).__name__}: {str(e)[:400]}"
                    REPORT["failures"].append(name)
            say(f"  {name}: {out[name]}")
        REPORT["gpu_tests"] = out
    return run()


class Skipped(Exception):
    pass


def _pytest_stub():
    """Just enough of pytest for tests/test_gpu.py to import and its gpu tests to run."""
    import types

    def marker(name):
        def make(*args, **kw):
            if len(args) == 1 and callable(args[0]) and not kw:
                return tag(args[0], name)
            return lambda f: tag(f, name)
        return make

    def tag(f, name):
        f.pytestmark = list(getattr(f, "pytestmark", [])) + [types.SimpleNamespace(name=name)]
        return f

    class Mark:
        def __getattr__(self, name):
            return marker(name)

    def fixture(*args, **kw):
        return args[0] if len(args) == 1 and callable(args[0]) else (lambda f: f)

    def skip(reason=""):
        raise Skipped(reason)

    return types.SimpleNamespace(mark=Mark(), fixture=fixture, skip=skip, raises=None, MonkeyPatch=None)


def pytest_run(budget):
    @step("pytest tests/test_gpu.py tests/test_codegen.py", budget, 90)
    def run():
        try:
            import pytest  # noqa: F401
        except ImportError:
            say("  pytest is not installed here: skipped")
            REPORT["pytest"] = "pytest missing"
            return
        code, out, err = sh([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                             "tests/test_gpu.py", "tests/test_codegen.py"], int(min(240, left(budget) - 20)))
        tail = "\n".join((out + err).strip().splitlines()[-15:])
        say(tail)
        REPORT["pytest"] = {"exit": code, "tail": tail}
        if code not in (0, 5):
            REPORT["failures"].append("pytest")
    return run()


def throughput(budget, sizes):
    @step("device-resident gradient throughput (worked example)", budget, 30)
    def run():
        import numpy as np
        from adcalc.engines.gpu import GpuEngine, launcher
        from adcalc.problem import Problem
        lau = launcher()
        prob = Problem(WORKED, at="2,5")
        rows = []
        configs = [("float64", False, n) for n in sizes]
        configs += [("float32", False, sizes[-1]), ("float64", True, sizes[-1])]
        for dtype, fast, n in configs:
            if left(budget) < 25:
                say("  (stopping: time)")
                break
            eng = GpuEngine(dtype=dtype, fast=fast)
            n = int(n)
            X = make_points(lau, n, eng.np_dtype)
            eng.run_device(prob, "grad", X)          # compile, first touch
            lau.synchronize()
            times = []
            for _ in range(7):
                t = time.perf_counter()
                out, flag, _ = eng.run_device(prob, "grad", X)
                lau.synchronize()
                times.append(time.perf_counter() - t)
                del out, flag
            med = statistics.median(times)
            item = 4 if dtype == "float32" else 8
            moved = n * (4 * item + 4)
            rate = n / med
            bound = BANDWIDTH / BYTES_PER_POINT
            row = {"dtype": dtype, "fast": fast, "N": n, "median_s": med, "points_per_s": rate,
                   "effective_GBps": moved / med / 1e9, "fraction_of_32B_bound": rate / bound}
            rows.append(row)
            say(f"  {dtype}{' --fast' if fast else '':7} N={n:>11,}: {rate / 1e9:7.2f} G points/s, "
                f"{moved / med / 1e9:7.0f} GB/s moved, {rate / bound:6.1%} of the 32 B/point bound "
                f"({bound / 1e9:.0f} G points/s); median {med * 1e3:.3f} ms")
            del X
            free_pool(lau)
        # host round trip at 10^7 points, for reference
        if left(budget) > 30:
            n = 10 ** 7
            X = np.random.default_rng(0).uniform(0.5, 3.0, (n, 2))
            eng = GpuEngine()
            eng.grad(prob, X[:10])
            t = time.perf_counter()
            g = eng.grad(prob, X).value
            dt = time.perf_counter() - t
            from adcalc.engines.reverse import ReverseEngine
            ref = ReverseEngine().grad(prob, X[:200000]).value
            err = float(np.max(np.abs(g[:200000] - ref) / np.abs(ref).max(axis=1, keepdims=True)))
            say(f"  host arrays in and out, N=10^7: {n / dt / 1e6:.0f} M points/s (with transfers); "
                f"max rel diff vs reverse {err:.2e}")
            REPORT["host_roundtrip"] = {"N": n, "points_per_s": n / dt, "max_rel_diff": err}
            if not err <= 1e-13:
                REPORT["failures"].append("host round trip accuracy")
        REPORT["throughput"] = rows
        if getattr(lau, "compiler", None):
            say(f"  kernels compiled by CuPy with {lau.compiler}")
            REPORT["cupy_compiler"] = lau.compiler
        goal = [r for r in rows if r["dtype"] == "float64" and not r["fast"]]
        if goal:
            best = max(r["fraction_of_32B_bound"] for r in goal)
            say(f"  goal (issue 13): at least 50% of the bound in float64; best {best:.1%}: "
                f"{'met' if best >= 0.5 else 'MISSED'}")
            REPORT["goal_met"] = best >= 0.5
    return run()


def make_points(lau, n, dtype):
    if lau.name == "cupy":
        cp = lau.cp
        X = cp.empty((n, 2), dtype=dtype)
        X[:, 0] = cp.random.uniform(0.5, 3.0, n).astype(dtype)
        X[:, 1] = cp.random.uniform(-3.0, 3.0, n).astype(dtype)
        return X
    import numpy as np
    rng = np.random.default_rng(0)
    return lau.to_device(np.column_stack([rng.uniform(0.5, 3.0, n), rng.uniform(-3.0, 3.0, n)]), dtype)


def free_pool(lau):
    if lau.name == "cupy":
        lau.cp.get_default_memory_pool().free_all_blocks()


def batch(budget):
    @step("benchmarks/batch.py (N = 10^6)", budget, 90)
    def run():
        code, out, err = sh([sys.executable, os.path.join("benchmarks", "batch.py"), "--rounds", "5"],
                            int(min(300, left(budget) - 10)))
        say(out.strip())
        if err.strip():
            say(err.strip()[-1500:])
        REPORT["batch"] = {"exit": code, "output": out.strip()}
        if code not in (0,):
            REPORT["failures"].append("batch.py")
    return run()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for the whole run (default 450)")
    ap.add_argument("--sizes", default="1e6,1e7,1e8")
    ap.add_argument("--out", default=None)
    ap.add_argument("--skip", default="", help="comma-separated: verify,tests,pytest,throughput,batch")
    a = ap.parse_args(argv)
    skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    sizes = [int(float(s)) for s in a.sizes.split(",") if s.strip()]
    os.environ.setdefault("ADCALC_CACHE_DIR", os.path.join(os.environ.get("OUT") or ROOT, ".gpu_check_cache"))
    say(f"gpu_check: budget {a.budget:.0f} s, repository {ROOT}")
    backend = environment(a.budget)
    usable = backend is not None
    if "verify" not in skip:
        verify(a.budget)
    if usable and "tests" not in skip:
        gpu_tests(a.budget)
    if "pytest" not in skip:
        pytest_run(a.budget)
    if usable and "throughput" not in skip:
        throughput(a.budget, sizes)
    if "batch" not in skip:
        batch(a.budget)
    say("\n=== summary ===")
    for k, v in REPORT["steps"].items():
        say(f"  {k}: {v}")
    say(f"  failures: {', '.join(REPORT['failures']) or 'none'}")
    say(f"  elapsed: {time.monotonic() - START:.0f} s")
    path = a.out or os.path.join(os.environ.get("OUT") or ".", "gpu_check.json")
    try:
        with open(path, "w") as f:
            json.dump(REPORT, f, indent=1, default=str)
        say(f"  report written to {path}")
    except OSError as e:
        say(f"  could not write {path}: {e}")
    if not usable:
        return 2
    return 1 if REPORT["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
