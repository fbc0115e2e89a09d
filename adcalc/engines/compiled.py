"""The compiled engine: the generated C of each quantity, built by the system C compiler.

adcalc.codegen prints the derivative graph of the quantity (gradient, Jacobian, Hessian,
HVP, JVP, VJP) as straight-line C for one point; this module wraps it in a loop over the
points (OpenMP across cores when the compiler takes -fopenmp), compiles it into a shared
library, loads it with ctypes and caches the library by the hash of its source and flags
in ADCALC_CACHE_DIR, else $XDG_CACHE_HOME/adcalc, else ~/.cache/adcalc (kernels/).

Exact path (the default): -O2 -fno-math-errno -ffp-contract=off, scalar libm, numpy's
summation orders; it agrees with the reverse engine to rounding (1e-14 relative).

fast=True (`--fast`): -O3 -march=native (same -fno-math-errno -ffp-contract=off, no
-ffast-math), points in blocks copied into columns and one `#pragma omp simd` loop per
block, with every libm function that glibc's vector math library (libmvec) provides
declared `omp declare simd`, so gcc calls its AVX-512/AVX2 variants (about 4 ulp instead
of libm's < 1 ulp).  NaN, infinities, signed zeros and the domain checks behave as on the
exact path; results agree with it to about 1e-15 relative (the benchmark checks 1e-12).
Without libmvec it is the same SIMD loop calling scalar libm.

Points outside the domain get NaN outputs and a flag; by default the engine then raises
DomainError naming the sub-expression and the point (as the reverse engine does); with
on_domain="nan" it returns the NaN rows and `Result.info["bad"]` = {row: message}.
"""
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading

import numpy as np

from adcalc import codegen
from adcalc.engines.base import Engine, Result, scalar_only
from adcalc.errors import DomainError, EngineError, InputError

_LOCK = threading.Lock()
_LIBS = {}          # source hash -> ctypes.CDLL
_PROBES = {}        # (compiler, what) -> result


def cache_dir():
    """Where compiled kernels are kept (created on first use)."""
    root = os.environ.get("ADCALC_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "adcalc")
    return os.path.join(root, "kernels")


def find_compiler():
    """Path of the C compiler ($CC, else cc, gcc, clang), or None."""
    names = [os.environ["CC"]] if os.environ.get("CC") else []
    for name in names + ["cc", "gcc", "clang"]:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(cmd, cwd=None):
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)


def _probe(cc, what):
    """Facts about the compiler, found once per process: version, openmp, libmvec."""
    key = (cc, what)
    if key in _PROBES:
        return _PROBES[key]
    with tempfile.TemporaryDirectory(prefix="adcalc-probe-") as d:
        if what == "version":
            r = _run([cc, "--version"])
            out = (r.stdout.splitlines() or ["unknown"])[0]
        elif what == "openmp":
            src = os.path.join(d, "p.c")
            with open(src, "w") as f:
                f.write("#include <omp.h>\nint adc_probe(void) { return omp_get_max_threads(); }\n")
            out = _run([cc, "-fopenmp", "-fPIC", "-shared", "-o", os.path.join(d, "p.so"), src]).returncode == 0
        else:   # libmvec: the functions with SIMD variants that link here
            out = ()
            ver = _glibc()
            funcs = next((v for k, v in sorted(codegen.LIBMVEC.items(), reverse=True) if ver and ver >= k), ())
            if funcs and platform.machine() in ("x86_64", "AMD64"):
                src = os.path.join(d, "p.c")
                with open(src, "w") as f:
                    f.write(codegen._c_header("float64", funcs) +
                            "void adc_probe(long n, const double *x, double *y) {\n#pragma omp simd\n"
                            "for (long i = 0; i < n; ++i) y[i] = cos(x[i]);\n}\n")
                so = os.path.join(d, "p.so")
                r = _run([cc, "-O3", "-march=native", "-fopenmp-simd", "-fPIC", "-shared", "-o", so, src,
                          "-lmvec", "-lm"])
                if r.returncode == 0:
                    try:
                        ctypes.CDLL(so)
                        out = funcs
                    except OSError:
                        out = ()
    _PROBES[key] = out
    return out


def _glibc():
    try:
        name, ver = os.confstr("CS_GNU_LIBC_VERSION").split()
        return tuple(int(x) for x in ver.split(".")[:2]) if name == "glibc" else None
    except (ValueError, OSError, AttributeError):
        return None


def _cpu_id():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return hashlib.sha256(line.encode()).hexdigest()[:12]
    except OSError:
        pass
    return platform.processor() or platform.machine()


class Toolchain:
    """The compiler, its flags and what it supports."""

    def __init__(self, fast=False, opt=None):
        self.cc = find_compiler()
        if self.cc is None:
            raise EngineError("no C compiler found (install gcc or clang, or set CC)")
        self.fast = fast
        self.version = _probe(self.cc, "version")
        self.openmp = _probe(self.cc, "openmp")
        self.simd_functions = _probe(self.cc, "libmvec") if fast else ()
        flags = [opt or ("-O3" if fast else "-O2"), "-fPIC", "-shared", "-fno-math-errno", "-ffp-contract=off"]
        if fast:
            flags += ["-march=native", "-fopenmp" if self.openmp else "-fopenmp-simd"]
        elif self.openmp:
            flags.append("-fopenmp")
        self.flags = flags
        self.libs = (["-lmvec"] if self.simd_functions else []) + ["-lm"]

    def describe(self):
        parts = [os.path.basename(self.cc), "OpenMP" if self.openmp else "one thread"]
        if self.fast:
            parts.append("libmvec vector math" if self.simd_functions else "no vector math library found")
        return ", ".join(parts)

    def with_opt(self, opt):
        """The flags with another optimisation level (big kernels: see opt_for)."""
        return [opt] + self.flags[1:] if opt else self.flags

    def key(self, source, opt=None):
        ident = [self.cc, self.version, " ".join(self.with_opt(opt) + self.libs)]
        if self.fast:
            ident.append(_cpu_id())
        h = hashlib.sha256("\0".join(ident + [source]).encode())
        return h.hexdigest()[:32]

    def build(self, source, opt=None):
        """The loaded library of `source`, compiled now or found in the cache."""
        key = self.key(source, opt)
        with _LOCK:
            lib = _LIBS.get(key)
            if lib is not None:
                return lib
            lib = _LIBS[key] = ctypes.CDLL(self._compile(source, key, opt))
            return lib

    def _compile(self, source, key, opt=None):
        d = _writable(cache_dir())
        so = os.path.join(d, key + ".so")
        if os.path.exists(so):
            return so
        src = os.path.join(d, key + ".c")
        fd, tmp = tempfile.mkstemp(prefix=key, suffix=".so.tmp", dir=d)
        os.close(fd)
        try:
            with open(src + ".tmp%d" % os.getpid(), "w") as f:
                f.write(source)
            os.replace(src + ".tmp%d" % os.getpid(), src)
            r = _run([self.cc, *self.with_opt(opt), "-o", tmp, src, *self.libs])
            if r.returncode != 0:
                tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-12:])
                raise EngineError(f"the C compiler failed on the generated kernel ({src}):\n{tail}")
            os.replace(tmp, so)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return so


# gcc's time on one straight-line block grows faster than its length (register allocation,
# combine): 13,500 statements take 25 s at -O2, 11 s at -O1, 1 s at -O0.  Big kernels (large
# Hessians and Jacobians) are compiled at lower levels so that compiling stays in seconds.
OPT_LEVELS = ((3000, None), (8000, "-O1"), (None, "-O0"))


def opt_for(n_statements, opt=None):
    """The optimisation flag for a kernel of this size (None: the toolchain's own)."""
    if opt:
        return opt
    for limit, level in OPT_LEVELS:
        if limit is None or n_statements <= limit:
            return level


_FALLBACK = []


def _writable(d):
    try:
        os.makedirs(d, exist_ok=True)
        if os.access(d, os.W_OK):
            return d
    except OSError:
        pass
    if not _FALLBACK:
        _FALLBACK.append(tempfile.mkdtemp(prefix="adcalc-kernels-"))
    return _FALLBACK[0]


def function(lib, name="adcalc_kernel"):
    f = getattr(lib, name)
    f.restype = ctypes.c_longlong
    f.argtypes = [ctypes.c_longlong, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_longlong, ctypes.c_void_p,
                  ctypes.c_void_p]
    return f


def call(fn, kernel, X, D=None, flags=True):
    """Run a compiled kernel: X (N, n_in); D None, (n_dir,) shared or (N, n_dir).
    Returns (OUT (N, n_out), FLAG (N,) int32 or None without `flags`, flagged count)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    N = len(X)
    OUT = np.empty((N, kernel.n_out))
    FLAG = np.empty(N, dtype=np.int32) if flags else None
    if N == 0:
        return OUT, FLAG, 0
    dptr, stride = None, 0
    if kernel.n_dir:
        D = np.ascontiguousarray(D, dtype=np.float64)
        stride = 0 if D.ndim == 1 else kernel.n_dir
        dptr = D.ctypes.data
    nbad = fn(N, X.ctypes.data if X.size else None, dptr, stride, OUT.ctypes.data if OUT.size else None,
              None if FLAG is None else FLAG.ctypes.data)
    return OUT, FLAG, int(nbad)


# ---- the quantities from kernels (shared with the gpu engine) ------------------------------
SHAPES = {"value": lambda p: p.out_shape, "grad": lambda p: (p.n,), "jacobian": lambda p: (p.m, p.n),
          "hessian": lambda p: (p.n, p.n), "hvp": lambda p: (p.n,), "jvp": lambda p: (p.m,),
          "vjp": lambda p: (p.n,)}


class KernelEngine(Engine):
    """An engine whose every quantity is one generated kernel over the points; subclasses
    say how a kernel runs (`run_kernel`)."""

    def __init__(self, fast=False, on_domain="raise", **options):
        super().__init__(fast=fast, on_domain=on_domain, **options)
        if on_domain not in ("raise", "nan"):
            raise InputError("on_domain must be 'raise' or 'nan'")
        self.fast, self.on_domain = bool(fast), on_domain

    def run_kernel(self, prob, quantity, X, D=None):
        """(OUT (N, n_out) float64, FLAG (N,) int or None when no point is flagged, Kernel)."""
        raise NotImplementedError

    def _quantity(self, prob, quantity, X, D=None):
        X = np.asarray(X, dtype=float)
        if X.shape != (len(X), prob.n):
            X = X.reshape(len(X), prob.n)
        OUT, FLAG, kern = self.run_kernel(prob, quantity, X, D)
        info = {}
        rows = () if FLAG is None else np.flatnonzero(np.asarray(FLAG))
        if len(rows):
            flags = np.asarray(FLAG)
            bad = {int(r): kern.messages[int(flags[r]) - 1] for r in rows}
            r0 = int(rows[0])
            if self.on_domain == "raise":
                where = prob.describe(X[r0])
                if len(X) > 1:
                    where = f"row {r0} ({where})" + (f" and {len(rows) - 1} more" if len(rows) > 1 else "")
                raise DomainError(f"{bad[r0]} at {where}")
            info["bad"] = bad
        return Result(np.asarray(OUT, dtype=float).reshape((len(X),) + tuple(SHAPES[quantity](prob))), info=info)

    def _directed(self, prob, quantity, X, V):
        """K kernel runs, one per direction set; a direction shared by all points (a
        broadcast, as base.batch makes) goes once, with stride 0."""
        V = np.asarray(V, dtype=float)
        parts, info = [], {}
        for k in range(V.shape[0]):
            Vk = V[k]
            shared = len(X) > 1 and Vk.strides[0] == 0
            r = self._quantity(prob, quantity, X, Vk[0] if shared else Vk)
            parts.append(r.value)
            info.update(r.info)
        size = SHAPES[quantity](prob)
        val = np.stack(parts) if parts else np.zeros((0, len(X)) + tuple(size))
        return Result(val, info=info)

    def value_batch(self, prob, X):
        """(N,) + the output's shape."""
        return self._quantity(prob, "value", X)

    def grad_batch(self, prob, X):
        scalar_only(prob, "grad")
        return self._quantity(prob, "grad", X)

    def jacobian_batch(self, prob, X):
        return self._quantity(prob, "jacobian", X)

    def hessian_batch(self, prob, X):
        scalar_only(prob, "hessian")
        return self._quantity(prob, "hessian", X)

    def hvp_batch(self, prob, X, V):
        scalar_only(prob, "hvp")
        return self._directed(prob, "hvp", X, V)

    def jvp_batch(self, prob, X, V):
        return self._directed(prob, "jvp", X, V)

    def vjp_batch(self, prob, X, U):
        return self._directed(prob, "vjp", X, U)


class CompiledEngine(KernelEngine):
    """Generated C compiled by the system compiler; see the module docstring."""

    name = "compiled"

    def __init__(self, fast=False, on_domain="raise", opt=None, **options):
        super().__init__(fast=fast, on_domain=on_domain, **options)
        self.opt = opt
        self._toolchain = None

    def available(self):
        if find_compiler() is None:
            return "no C compiler found (install gcc or clang, or set CC to one)"
        return None

    @property
    def toolchain(self):
        if self._toolchain is None:
            self._toolchain = Toolchain(self.fast)
        return self._toolchain

    def function(self, kern):
        tc = self.toolchain
        source = codegen.c_source({"adcalc_kernel": kern}, openmp=tc.openmp, fast=self.fast,
                                  simd_functions=tc.simd_functions)
        return function(tc.build(source, opt_for(kern.n_statements, self.opt)))

    def _key(self, kern):
        return ("compiled-fn", self.fast, self.opt, id(kern))

    def prepare(self, items):
        """Compile the kernels of many (problem, quantity) pairs into one library (one
        compiler run instead of one each); later calls for them run at once."""
        todo, kernels, seen = [], {}, set()
        for prob, quantity in items:
            kern = codegen.problem_kernel(prob, quantity)
            if self._key(kern) not in prob.graph.cache and id(kern) not in seen:
                seen.add(id(kern))
                name = f"adcalc_kernel_{len(kernels)}"
                kernels[name] = kern
                todo.append((prob, kern, name))
        if not kernels:
            return
        tc = self.toolchain
        size = max(k.n_statements for k in kernels.values())   # gcc's time is per function
        lib = tc.build(codegen.c_source(kernels, openmp=tc.openmp, fast=self.fast,
                                        simd_functions=tc.simd_functions), opt_for(size, self.opt))
        for prob, kern, name in todo:
            prob.graph.cache[self._key(kern)] = function(lib, name)

    def run_kernel(self, prob, quantity, X, D=None):
        kern = codegen.problem_kernel(prob, quantity)
        key = self._key(kern)
        fn = prob.graph.cache.get(key)
        if fn is None:
            fn = prob.graph.cache[key] = self.function(kern)
        OUT, _, nbad = call(fn, kern, X, D, flags=False)
        FLAG = None
        if nbad:   # flagged points have NaN outputs: find which check failed, on those rows only
            rows = np.flatnonzero(np.isnan(OUT).any(axis=1)) if kern.n_out else np.arange(len(X))
            sub = D if D is None or np.ndim(D) == 1 else np.asarray(D)[rows]
            _, flags, _ = call(fn, kern, np.asarray(X)[rows], sub)
            FLAG = np.zeros(len(X), dtype=np.int32)
            FLAG[rows] = flags
        return OUT, FLAG, kern
