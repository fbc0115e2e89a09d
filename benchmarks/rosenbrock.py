"""Extended Rosenbrock over one vector of n entries: f, grad and HVP of every framework,
each alone in a fresh process, as multiples of a hand-written numpy f timed in that process.

    python benchmarks/rosenbrock.py [--n 1e4 1e5 1e6] [--rounds 40] [--malloc default|steady]

f(x) = sum(100*(x[1:]-x[:-1]**2)**2 + (1-x[:-1])**2), written in adcalc's language and
differentiated by adcalc's reverse engine (gradient by one backward sweep, HVP by double
backprop through the cached derivative graph); beside it the hand-written numpy closed
forms (the floor, no AD), autograd and PyTorch eager (float64, one intra-op thread by
default, HVP by double backward) when they can be imported.

How it measures what a user sees (issue 12):
- Every framework runs in its OWN fresh Python process (this script, started again in
  a worker mode), with the environment and the allocator as they are: no mallopt, no
  other framework's memory history in the process.  `--malloc steady` tells glibc to
  keep freed memory in each worker instead (issue 3's setting, reported as such).
- Each worker also times the hand-written numpy f, in its own process: its f, grad and
  hvp are printed as multiples of that f, beside grad/f and hvp/f (its own f).
- The workers are driven round by round from here: every round asks every worker (in a
  shuffled order) for one timing of each of its operations (in a shuffled order inside
  the worker), so machine noise hits all of them alike.  Figures are the medians of the
  per-round ratios, with their spread (interquartile range, and min-max on the target
  lines).  At small n one timing is a loop of `--inner` calls (default: about 10^5/n).
- Minor page faults per call (getrusage) are printed beside: the allocator's share.

Targets: adcalc in a fresh process, allocator untouched, grad <= 3 and hvp <= 6 times the
numpy f (issue 12, at every n); grad/f <= 2.5 and hvp/f <= 7 (issue 8).  Every result
is checked against the closed-form derivatives (and adcalc against each peer); the exit
status is 1 if one is wrong, and with --strict also if adcalc misses a target.
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

EXPR = "sum(100*(x[1:]-x[:-1]**2)**2 + (1-x[:-1])**2)"
TARGETS_NUMPY_F = {"grad": 3.0, "hvp": 6.0}   # issue 12: x the hand-written numpy f, same process
TARGETS_OWN_F = {"grad": 2.5, "hvp": 7.0}     # issue 8: x adcalc's own f
FRAMEWORKS = ("numpy", "adcalc", "autograd", "torch")
TOL = 1e-9


from rosen_common import rel_diff, rosen_f, rosen_grad, rosen_hvp  # noqa: E402 (the scripts' folder)


def to_numpy(a):
    if hasattr(a, "detach"):
        a = a.detach().numpy()
    return np.asarray(a, dtype=float)


def problem_data(n, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(-2.0, 2.0, n), rng.standard_normal(n)


# ---- the frameworks (run inside a worker): {op: callable} and a note -----------------
def numpy_setup(x, v, args):
    return {"grad": lambda: rosen_grad(x), "hvp": lambda: rosen_hvp(x, v)}, \
        f"hand-written closed forms, no AD (numpy {np.__version__})", {}


def adcalc_setup(x, v, args):
    cold = {}
    t = time.perf_counter()
    from adcalc.engines.reverse import ReverseEngine
    from adcalc.problem import Problem
    cold["import"] = time.perf_counter() - t
    t = time.perf_counter()
    p = Problem(EXPR, point={"x": x})
    cold["Problem()"] = time.perf_counter() - t
    eng = ReverseEngine()
    ops = {"f": lambda: p.value(x), "grad": lambda: eng.grad(p, x), "hvp": lambda: eng.hvp(p, x, v)}
    return ops, "reverse engine, Problem(expr, point={'x': x})", cold


def autograd_setup(x, v, args):
    import autograd
    import autograd.numpy as anp

    def f(z):
        a, b = z[:-1], z[1:]
        return anp.sum(100.0 * (b - a ** 2) ** 2 + (1.0 - a) ** 2)

    g = autograd.grad(f)
    h = autograd.hessian_vector_product(f)  # grad of (grad f . v): double reverse
    version = getattr(autograd, "__version__", "")
    return {"f": lambda: f(x), "grad": lambda: g(x), "hvp": lambda: h(x, v)}, \
        f"autograd {version}".strip(), {}


def torch_setup(x, v, args):
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    xt = torch.from_numpy(x.copy())
    vt = torch.from_numpy(v.copy())

    def f(z):
        a, b = z[:-1], z[1:]
        return torch.sum(100.0 * (b - a ** 2) ** 2 + (1.0 - a) ** 2)

    def value():
        with torch.no_grad():
            return f(xt)

    def grad():
        z = xt.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(f(z), z)
        return g

    def hvp():
        z = xt.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(f(z), z, create_graph=True)
        (hv,) = torch.autograd.grad(g @ vt, z)
        return hv

    return {"f": value, "grad": grad, "hvp": hvp}, \
        f"torch {torch.__version__} eager, float64, {torch.get_num_threads()} intra-op thread(s)", {}


SETUPS = {"numpy": numpy_setup, "adcalc": adcalc_setup, "autograd": autograd_setup, "torch": torch_setup}


def steady_malloc():
    """Keep freed memory in the process (glibc): no page faults that depend on call order."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        ok = libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) and libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
    except (OSError, AttributeError):
        ok = False
    return ("glibc told to keep freed memory (mallopt: trim threshold 1 GiB, mmap threshold 32 MiB)"
            if ok else "could not pin the allocator (not glibc?): timings include page faults")


# ---- worker: one framework in this fresh process, driven over stdin/stdout -----------
def worker(args):
    proto = sys.stdout
    sys.stdout = sys.stderr  # nothing but the protocol on the pipe
    note_malloc = steady_malloc() if args.malloc == "steady" else "allocator untouched"
    x, v = problem_data(args.n[0], args.seed)

    def send(obj):
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    try:
        ops, note, cold = SETUPS[args.worker](x, v, args)
    except ImportError as e:
        send({"skip": f"not importable ({e})"})
        return 0
    ops = dict(ops, npf=lambda: rosen_f(x))
    truth = {"f": rosen_f(x), "grad": rosen_grad(x), "hvp": rosen_hvp(x, v)}
    first = {}
    for name in ("f", "grad", "hvp"):  # first calls: the cold times (adcalc builds its HVP graph)
        if name in ops:
            t = time.perf_counter()
            first[name] = to_numpy(ops[name]())
            cold[name] = time.perf_counter() - t
    diffs = {k: rel_diff(first[k], truth[k]) for k in first}
    for k in ("grad", "hvp"):
        np.save(os.path.join(args.tmp, f"{args.worker}-{k}.npy"), first[k])
    for fn in ops.values():  # one warm-up call each
        fn()
    inner = args.inner
    send({"ready": True, "note": note, "malloc": note_malloc, "diffs": diffs, "cold": cold,
          "pid": os.getpid()})
    order = random.Random(args.seed * 7919 + FRAMEWORKS.index(args.worker))
    names = list(ops)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        order.shuffle(names)
        times, faults = {}, {}
        for name in names:
            fn = ops[name]
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t = time.perf_counter()
            for _ in range(inner):
                fn()
            times[name] = (time.perf_counter() - t) / inner
            faults[name] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / inner
        send({"times": times, "faults": faults})
    send({"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    return 0


# ---- the driver -----------------------------------------------------------------------
class Worker:
    """A fresh interpreter running this script's worker mode; one JSON line per request."""

    def __init__(self, name, argv, timeout):
        self.name, self.timeout, self.buf = name, timeout, b""
        self.err = tempfile.TemporaryFile()
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err)

    def read(self):
        deadline = time.monotonic() + self.timeout
        fd = self.p.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.p.kill()
                raise RuntimeError(f"no answer within {self.timeout:g} s")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    self.p.wait()
                    raise RuntimeError(f"worker exited with status {self.p.returncode}: {self.stderr_tail()}")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def ask(self, what):
        self.p.stdin.write(what.encode() + b"\n")
        self.p.stdin.flush()
        return self.read()

    def stderr_tail(self, n=600):
        self.err.seek(0)
        return self.err.read().decode(errors="replace").strip()[-n:]

    def close(self):
        try:
            out = self.ask("done")
        except (RuntimeError, BrokenPipeError, OSError):
            out = {}
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
        return out


def spread(xs):
    xs = sorted(xs)
    if len(xs) >= 4:
        q = statistics.quantiles(xs, n=4, method="inclusive")
        q1, q3 = q[0], q[2]
    else:
        q1, q3 = xs[0], xs[-1]
    return statistics.median(xs), q1, q3, xs[0], xs[-1]


def fmt(s, digits=2):
    med, q1, q3, _, _ = s
    return f"{med:.{digits}f} [{q1:.{digits}f}-{q3:.{digits}f}]"


def parse_sizes(values):
    out = []
    for v in values:
        for part in str(v).split(","):
            if part.strip():
                out.append(int(float(part)))
    return out


def run_size(n, args, tmp):
    """Drive one worker per framework at size n; returns (lines printed, target results, ok)."""
    inner = args.inner or max(1, round(1e5 / n))
    wanted = ["numpy", "adcalc"] + [p for p in ("autograd", "torch") if p in args.peer_list]
    workers, info, skipped = {}, {}, {}
    for name in wanted:
        argv = [sys.executable, os.path.abspath(__file__), "--worker", name, "--n", str(n),
                "--seed", str(args.seed), "--malloc", args.malloc, "--inner", str(inner),
                "--torch-threads", str(args.torch_threads), "--tmp", tmp]
        w = Worker(name, argv, args.timeout)
        try:
            msg = w.read()
        except RuntimeError as e:
            skipped[name] = f"failed to start: {e}"
            continue
        if "skip" in msg:
            skipped[name] = msg["skip"]
            w.close()
            continue
        workers[name], info[name] = w, msg
    rounds = {name: [] for name in workers}
    order = random.Random(args.seed + n)
    names = list(workers)
    for _ in range(args.rounds):
        order.shuffle(names)
        for name in names:
            rounds[name].append(workers[name].ask("round"))
    for name, w in workers.items():
        info[name]["final"] = w.close()

    print(f"\n== n = {n}: {args.rounds} rounds interleaved across {len(workers)} fresh processes"
          + (f", each timing a loop of {inner} calls" if inner > 1 else "") + " ==")
    ok = True
    print("agreement with the closed forms (max elementwise relative difference):")
    for name, msg in info.items():
        d = msg["diffs"]
        bad = any(val > TOL for val in d.values())
        ok &= not bad
        print(f"  {name:<9} " + "  ".join(f"{k} {val:.1e}" for k, val in d.items()) + ("   WRONG" if bad else ""))
    for name in info:
        if name not in ("adcalc", "numpy") and "adcalc" in info:
            dd = {k: rel_diff(np.load(os.path.join(tmp, f"adcalc-{k}.npy")),
                              np.load(os.path.join(tmp, f"{name}-{k}.npy"))) for k in ("grad", "hvp")}
            print(f"  adcalc vs {name}: grad {dd['grad']:.1e}  hvp {dd['hvp']:.1e}")

    stats = {}
    for name, rs in rounds.items():
        t = {op: [r["times"][op] for r in rs] for op in rs[0]["times"]}
        own_f = t.get("f", t["npf"])
        s = {"npf_ms": spread([a * 1e3 for a in t["npf"]])}
        for op in ("f", "grad", "hvp"):
            if op in t:
                s[op + "/npf"] = spread([a / b for a, b in zip(t[op], t["npf"])])
                s[op + "_ms"] = spread([a * 1e3 for a in t[op]])
        for op in ("grad", "hvp"):
            s[op + "/f"] = spread([a / b for a, b in zip(t[op], own_f)])
        s["faults"] = {op: statistics.median(r["faults"][op] for r in rs) for op in rs[0]["faults"]}
        stats[name] = s

    print("times as multiples of the hand-written numpy f of the SAME process "
          "(median [interquartile range] of the per-round ratios):")
    print(f"  {'':<9} {'numpy f ms':>10} {'f':>17} {'grad':>17} {'hvp':>17}   {'grad/f':>17} {'hvp/f':>17}"
          f"   {'faults per numpy f/f/grad/hvp':>30}")
    for name, s in stats.items():
        f_col = fmt(s["f/npf"]) if "f/npf" in s else "1 (it is)"
        fl = s["faults"]
        faults = "/".join(f"{fl.get(op, fl['npf']):.0f}" for op in ("npf", "f", "grad", "hvp"))
        print(f"  {name:<9} {s['npf_ms'][0]:10.3f} {f_col:>17} {fmt(s['grad/npf']):>17} {fmt(s['hvp/npf']):>17}"
              f"   {fmt(s['grad/f']):>17} {fmt(s['hvp/f']):>17}   {faults:>26}")
    print("  absolute medians, ms: " + "; ".join(
        f"{name} " + ", ".join(f"{op} {s[op + '_ms'][0]:.3f}" for op in ("f", "grad", "hvp") if op + "_ms" in s)
        for name, s in stats.items()))
    for name, msg in info.items():
        print(f"  ({name}: {msg['note']}; {msg['malloc']}; pid {msg['pid']}, peak RSS "
              f"{msg['final'].get('maxrss_mb', float('nan')):.0f} MB)")
    for name, why in skipped.items():
        print(f"  {name}: skipped, {why}")
    if "adcalc" in info:
        c = info["adcalc"]["cold"]
        print("  adcalc cold, first calls in its fresh process (ms): "
              + ", ".join(f"{k} {val * 1e3:.1f}" for k, val in c.items()))

    met = {}
    if "adcalc" in stats:
        s = stats["adcalc"]
        cond = "fresh process, allocator untouched" if args.malloc == "default" else \
            "fresh process, --malloc steady (NOT the issue-12 condition)"
        print(f"targets, adcalc, n = {n} ({cond}); median [IQR] (min-max) of the per-round ratios:")
        for op, lim in TARGETS_NUMPY_F.items():
            m = s[op + "/npf"]
            met[(n, op, "npf")] = m[0] <= lim
            print(f"  {op:<4} / numpy f  {fmt(m)} ({m[3]:.2f}-{m[4]:.2f})   target <= {lim:g} (issue 12): "
                  f"{'MET' if m[0] <= lim else 'MISSED'}")
        for op, lim in TARGETS_OWN_F.items():
            m = s[op + "/f"]
            met[(n, op, "f")] = m[0] <= lim
            print(f"  {op:<4} / own f    {fmt(m)} ({m[3]:.2f}-{m[4]:.2f})   target <= {lim:g} (issue 8):  "
                  f"{'MET' if m[0] <= lim else 'MISSED'}")
        for peer in ("torch", "autograd"):
            if peer in stats:
                print(f"  beside {peer}: grad {fmt(stats[peer]['grad/npf'])}, hvp {fmt(stats[peer]['hvp/npf'])} "
                      f"x its numpy f; grad/f {fmt(stats[peer]['grad/f'])}, hvp/f {fmt(stats[peer]['hvp/f'])}")
    return met, ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", nargs="+", default=["1e4", "1e5", "1e6"],
                    help="sizes of x, several allowed (default 1e4 1e5 1e6)")
    ap.add_argument("--rounds", "--repeat", type=int, default=40, dest="rounds",
                    help="interleaved rounds (default 40)")
    ap.add_argument("--inner", type=int, default=0,
                    help="calls per timing (default: about 10^5/n, at least 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peers", default="autograd,torch",
                    help="peers beside numpy and adcalc (default autograd,torch; '' for none)")
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="PyTorch intra-op threads (default 1, like numpy's element-wise loops; 0 = torch's default)")
    ap.add_argument("--malloc", choices=("default", "steady"), default="default",
                    help="default: leave the allocator alone (what a user's process sees); steady: each "
                         "worker tells glibc to keep freed memory (issue 3's setting, reported as such)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds a worker may take per answer")
    ap.add_argument("--strict", action="store_true", help="exit 1 if adcalc misses a target")
    ap.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.n = parse_sizes(args.n)
    if args.worker:
        return worker(args)
    if any(n < 2 for n in args.n) or args.rounds < 1:
        ap.error("need every --n >= 2 and --rounds >= 1")
    args.peer_list = {p.strip() for p in args.peers.split(",") if p.strip()}

    print(f"extended Rosenbrock, n = {', '.join(map(str, args.n))}; python {sys.version.split()[0]}, "
          f"numpy {np.__version__}, {os.cpu_count()} CPUs, load average "
          f"{', '.join(f'{a:.2f}' for a in os.getloadavg())}")
    print(f"adcalc expression: {EXPR}")
    print("each framework alone in a fresh process, environment untouched; memory: "
          + ("allocator untouched (--malloc default)" if args.malloc == "default"
             else "--malloc steady: every worker keeps freed memory (mallopt)"))
    tmp = tempfile.mkdtemp(prefix="adcalc-rosen-")
    met, ok = {}, True
    try:
        for n in args.n:
            m, good = run_size(n, args, tmp)
            met.update(m)
            ok &= good
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if met:
        print("\nsummary, adcalc: " + "; ".join(
            f"n={n} {op}/{'numpy f' if unit == 'npf' else 'f'} {'MET' if v else 'MISSED'}"
            for (n, op, unit), v in met.items()))
    print(f"load average at the end: {', '.join(f'{a:.2f}' for a in os.getloadavg())} "
          f"(a shared machine: compare the ratios, not the absolute times)")
    if not ok:
        print("error: some results disagree with the closed-form derivatives", file=sys.stderr)
        return 1
    if args.strict and not all(met.values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
