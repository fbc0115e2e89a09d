"""The gpu engine: its CUDA source, compiled by nvcc where the CUDA toolkit exists, run as C on
any machine, and on a real GPU where there is one (tests marked `gpu`).

Without a GPU the CUDA source is proven twice: `nvcc -ptx` compiles it (float64 with the
exact path's --fmad=false, float32 with --use_fast_math), and the very same text, with the
CUDA-only lines of the wrapper swapped for their C equivalents (`cuda_as_c`), is compiled by
the C compiler and run through the GpuEngine's own code (chunks, points kept on the device
across directions, float32, domain flags) by a launcher that calls the C twin; stand-in
`cupy` and `pycuda` modules that run the same C twin exercise both real launchers.  The
`gpu`-marked tests take no fixtures, so benchmarks/gpu_check.py can run them directly on a
machine whose pytest setup would skip them.
"""
import ctypes
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

from adcalc import codegen
from adcalc.commands import read_vector
from adcalc.engines import compiled as C
from adcalc.engines import gpu as G
from adcalc.engines.reverse import ReverseEngine
from adcalc.errors import DomainError, EngineUnavailable
from adcalc.problem import Problem
from cases import CASES

REVERSE = ReverseEngine()
EXPRS = [("log(x1)+x1*x2-sin(x2)", "2,5"), ("(1-x)**2 + 100*(y-x**2)**2", "-1.2,1"),
         ("sum(sigmoid(W @ v) * softplus(v)) + logsumexp(v) + norm(v) + max(v)", "W=[[1,2],[3,4]],v=[0.5,-1]"),
         ("x ** y + atan2(y, x) + sqrt(x*x + y*y) + cbrt(x - y) + erf(x) * erfc(y)", "0.7,1.3"),
         ("[x*y, exp(x) / y, sinh(x) * acosh(1 + y*y)]", "0.5,2")]
QUANTITIES = {True: ("value", "grad", "hessian", "hvp", "jacobian"), False: ("value", "jacobian", "jvp", "vjp")}


def nvcc():
    path = shutil.which("nvcc") or ("/usr/local/bin/nvcc" if os.path.exists("/usr/local/bin/nvcc") else None)
    return path


def _kernels(dtype):
    out = {}
    for i, (text, at) in enumerate(EXPRS):
        prob = Problem(text, at=at)
        for q in QUANTITIES[prob.m == 1]:
            out[f"k{i}_{q}"] = codegen.problem_kernel(prob, q, dtype)
    return out


@pytest.mark.parametrize("dtype,options", [("float64", ["--fmad=false"]), ("float32", ["--use_fast_math"])])
def test_generated_cuda_compiles_with_nvcc(tmp_path, dtype, options):
    cc = nvcc()
    if cc is None:
        pytest.skip("nvcc (the CUDA toolkit) is not installed here")
    kernels = _kernels(dtype)
    src = tmp_path / "k.cu"
    src.write_text(codegen.cuda_source(kernels))
    r = subprocess.run([cc, "-ptx", *options, "-o", str(tmp_path / "k.ptx"), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    ptx = (tmp_path / "k.ptx").read_text()
    assert all(f".entry {name}(" in ptx for name in kernels)
    if dtype == "float32":   # the data stays float: no double loads or stores
        assert "ld.global.f64" not in ptx and "st.global.f64" not in ptx


def test_the_c_and_cuda_wrappers_hold_the_same_body():
    for name, k in _kernels("float64").items():
        assert k.body in codegen.cuda_source({name: k}), name
        assert k.body in codegen.c_source({name: k}), name
        assert codegen.fast_body(k.body) in codegen.c_source({name: k}, fast=True), name


# ---- the CUDA source run as C: the GpuEngine's own code on the CPU ---------------------------------
CUDA_TO_C = [
    ('extern "C" __global__ void', "void"),
    ("__restrict__", "restrict"),
    ("for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n_points;"
     " i += (long long)blockDim.x * gridDim.x) {", "for (long long i = 0; i < n_points; ++i) {"),
]
C_PRELUDE = """#include <string.h>
#include <{math}>
static inline double __longlong_as_double(unsigned long long v) {{ double d; memcpy(&d, &v, 8); return d; }}
"""


def cuda_as_c(source, dtype):
    """The CUDA source as C: the wrapper's CUDA-only lines replaced, the body untouched."""
    for old, new in CUDA_TO_C:
        assert old in source, f"cuda_source changed: {old!r} not found"
        source = source.replace(old, new)
    return C_PRELUDE.format(math="tgmath.h" if dtype == "float32" else "math.h") + source


class CTwinLauncher:
    """A launcher with the interface of gpu._Cupy that runs the CUDA source as C on the host."""

    name = "ctwin"
    sms = 1

    def __init__(self, dtype):
        self.dtype, self.launches, self.uploads = dtype, 0, 0

    def compile(self, source, name, options):
        lib = C.Toolchain(opt="-O1").build(cuda_as_c(source, self.dtype))
        return C.function(lib, name)

    def to_device(self, a, dtype):
        self.uploads += 1
        return np.ascontiguousarray(a, dtype=dtype)

    def empty(self, shape, dtype):
        return np.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype=dtype)

    def to_host(self, a):
        return np.asarray(a)

    def none(self, dtype):
        return np.zeros(1, dtype=dtype)

    def launch(self, fn, n, X, D, stride, OUT, FLAG):
        self.launches += 1
        fn(n, X.ctypes.data, D.ctypes.data, stride, OUT.ctypes.data, FLAG.ctypes.data)

    def synchronize(self):
        pass


@pytest.fixture
def ctwin(tmp_path, monkeypatch):
    monkeypatch.setenv("ADCALC_CACHE_DIR", str(tmp_path))

    def make(dtype="float64", **kw):
        lau = CTwinLauncher(dtype)
        name = f"ctwin-{dtype}-{id(lau)}"
        lau.name = name
        G._STATE[("launcher", name)] = lau
        return G.GpuEngine(backend=name, dtype=dtype, **kw), lau
    yield make
    for key in [k for k in G._STATE if isinstance(k, tuple) and str(k[1]).startswith("ctwin")]:
        del G._STATE[key]


def _agree(got, want, rtol, what):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    scale = np.max(np.abs(want.reshape(len(want), -1)), axis=1)
    err = np.max(np.abs(got - want).reshape(len(want), -1), axis=1)
    assert np.all(err <= rtol * scale + 1e-300), f"{what}: relative difference {np.max(err / scale):.3g} > {rtol}"


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-14), ("float32", 2e-5)])
def test_cuda_source_run_as_c_agrees_with_reverse(ctwin, dtype, rtol):
    eng, lau = ctwin(dtype, chunk=7)     # several chunks per call
    rng = np.random.default_rng(0)
    for text, at in EXPRS:
        prob = Problem(text, at=at)
        X = prob.x0()[None] * (1 + 0.05 * rng.uniform(-1, 1, (20, prob.n)))
        if prob.m == 1:
            _agree(eng.grad(prob, X).value, REVERSE.grad(prob, X).value, rtol, f"grad {text}")
            _agree(eng.hessian(prob, X).value, REVERSE.hessian(prob, X).value, rtol, f"hessian {text}")
            V = rng.standard_normal((3, len(X), prob.n))
            _agree(eng.hvp_batch(prob, X, V).value[1], REVERSE.hvp_batch(prob, X, V).value[1], rtol, f"hvp {text}")
        _agree(eng.jacobian(prob, X).value, REVERSE.jacobian(prob, X).value, rtol, f"jacobian {text}")
        U = rng.standard_normal((2, len(X), prob.m))
        _agree(eng.vjp_batch(prob, X, U).value[1], REVERSE.vjp_batch(prob, X, U).value[1], rtol, f"vjp {text}")
        _agree(eng.value_batch(prob, X).value, prob.values(X)[prob.output.id], rtol, f"value {text}")


def test_points_stay_on_the_device_across_directions(ctwin):
    eng, lau = ctwin("float64")
    prob = Problem("log(x1)+x1*x2-sin(x2)", at="2,5")
    X = np.random.default_rng(1).uniform(0.5, 3, (100, 2))
    V = np.random.default_rng(2).standard_normal((5, 100, 2))
    eng.hvp_batch(prob, X, V)
    assert lau.launches == 5 and lau.uploads == 1 + 5      # X once, each direction set once
    lau.uploads = 0
    eng.hvp(prob, X, np.array([1.0, -2.0]))                 # one direction for all points: shared
    assert lau.uploads == 2


def test_domain_rows_on_the_device_path(ctwin):
    eng, _ = ctwin("float64", on_domain="nan")
    prob = Problem("log(x) + sqrt(y)", at="1,1")
    X = np.array([[1.0, 1.0], [-1.0, 1.0], [2.0, -3.0], [np.nan, 1.0], [3.0, 4.0]])
    r = eng.grad(prob, X)
    bad = {}
    prob.values(X, bad=bad)
    assert r.info["bad"] == bad and sorted(bad) == [1, 2, 3]
    assert np.isnan(r.value[[1, 2, 3]]).all()
    _agree(r.value[[0, 4]], REVERSE.grad(prob, X[[0, 4]]).value, 1e-14, "good rows")
    strict, _ = ctwin("float64")
    with pytest.raises(DomainError, match="sqrt of a negative number"):
        strict.grad(prob, X[[2]])


def test_run_device_keeps_data_on_the_device(ctwin):
    eng, lau = ctwin("float64")
    prob = Problem("log(x1)+x1*x2-sin(x2)", at="2,5")
    X = np.random.default_rng(3).uniform(0.5, 3, (50, 2))
    out, flag, kern = eng.run_device(prob, "grad", X)
    assert out.shape == (50, 2) and kern.n_out == 2 and not flag.any()
    _agree(out, REVERSE.grad(prob, X).value, 1e-14, "run_device")


# ---- availability ------------------------------------------------------------------------------------
def test_unavailable_says_why_and_how_to_fix():
    reason = G.GpuEngine().available()
    if reason is None:
        pytest.skip("a GPU is usable here")
    assert "pycuda" in reason and "CuPy" in reason and "install" in reason
    with pytest.raises(EngineUnavailable, match="the gpu engine cannot run here"):
        from adcalc.engines import get_engine
        get_engine("gpu")
    r = subprocess.run([sys.executable, "-m", "adcalc", "grad", "x**2", "--at", "1", "--engine", "gpu"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: the gpu engine cannot run here: ")
    assert len(r.stderr.strip().splitlines()) == 1


def test_engines_lists_gpu_and_compiled_with_state_and_reason():
    from adcalc.engines import availability
    rows = dict(availability())
    assert "gpu" in rows and "compiled" in rows
    assert rows["compiled"] is None or "C compiler" in rows["compiled"]
    assert rows["gpu"] == G.GpuEngine().available()


# ---- on a GPU (plain functions: benchmarks/gpu_check.py calls them directly) -------------------------
def _gpu(**kw):
    eng = G.GpuEngine(**kw)
    reason = eng.available()
    if reason:
        pytest.skip(reason)
    return eng


@pytest.mark.gpu
def test_gpu_agrees_with_reverse_on_every_case():
    eng = _gpu()
    for case in CASES:
        prob = Problem(case.exprs, at=case.at, vars=case.vars)
        x = prob.x0()
        for command in case.commands:
            vec = None
            if command in ("hvp", "jvp", "vjp"):
                vec = read_vector(command, prob, case.u if command == "vjp" else case.v)
            args = (prob, x) if vec is None else (prob, x, vec)
            got, want = getattr(eng, command)(*args).value, getattr(REVERSE, command)(*args).value
            scale = max(1e-300, float(np.max(np.abs(want))))
            assert np.max(np.abs(got - want)) <= 1e-13 * scale, f"{case.id} {command}: {got} vs {want}"


@pytest.mark.gpu
def test_gpu_many_points_domain_rows_and_float32():
    eng = _gpu(on_domain="nan")
    prob = Problem("log(x1)+x1*x2-sin(x2)", at="2,5")
    X = np.random.default_rng(0).uniform(0.5, 3, (1_000_003, 2))
    X[[5, 77]] = [[-1.0, 2.0], [np.nan, 1.0]]
    r = eng.grad(prob, X)
    assert sorted(r.info["bad"]) == [5, 77] and np.isnan(r.value[[5, 77]]).all()
    good = np.ones(len(X), bool)
    good[[5, 77]] = False
    _agree(r.value[good], REVERSE.grad(prob, X[good]).value, 1e-13, "grad at 10^6 points")
    r32 = _gpu(dtype="float32", on_domain="nan").grad(prob, X)
    _agree(r32.value[good], r.value[good], 1e-5, "float32 grad")
    rf = _gpu(fast=True, on_domain="nan").grad(prob, X)
    _agree(rf.value[good], r.value[good], 1e-12, "--fast grad")


@pytest.mark.gpu
def test_gpu_hvp_and_device_resident_run():
    eng = _gpu()
    prob = Problem("sum(sigmoid(W @ v) * softplus(v)) + logsumexp(v)", at="W=[[1,2],[3,4]],v=[0.5,-1]")
    X = prob.x0()[None] * np.random.default_rng(1).uniform(0.5, 1.5, (1000, prob.n))
    V = np.random.default_rng(2).standard_normal((3, 1000, prob.n))
    _agree(eng.hvp_batch(prob, X, V).value[2], REVERSE.hvp_batch(prob, X, V).value[2], 1e-13, "hvp")
    lau = G.launcher()
    Xd = lau.to_device(X, np.float64)
    out, flag, _ = eng.run_device(prob, "grad", Xd)
    _agree(lau.to_host(out), REVERSE.grad(prob, X).value, 1e-13, "device-resident grad")
    assert not lau.to_host(flag).any()


# ---- the two launchers' code, with stand-ins for CuPy and pycuda that run the C twin ------------------
def _twin_kernel(source, name):
    real = "float32" if "typedef float real;" in source else "float64"
    fn = getattr(C.Toolchain(opt="-O1").build(cuda_as_c(source, real)), name)
    fn.restype = None

    def run(*args):
        fn(*[ctypes.c_longlong(int(a)) if isinstance(a, np.integer) else ctypes.c_void_p(a.ctypes.data)
             for a in args])
    return run


def _fake_cupy():
    cp = types.ModuleType("cupy")

    class RawKernel:
        def __init__(self, source, name, options=(), backend="nvrtc"):
            assert backend in ("nvrtc", "nvcc") and ("--fmad=false" in options or "--use_fast_math" in options)
            self.source, self.name, self.fn = source, name, None

        def compile(self):
            self.fn = _twin_kernel(self.source, self.name)

        def __call__(self, grid, block, args):
            assert len(grid) == 1 and block == (G.BLOCK,)
            self.fn(*args)

    cp.RawKernel, cp.asarray, cp.ascontiguousarray, cp.empty, cp.zeros = (
        RawKernel, np.asarray, np.ascontiguousarray, np.empty, np.zeros)
    cp.asnumpy = lambda a: np.asarray(a)
    cp.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
        Device=lambda: types.SimpleNamespace(attributes={"MultiProcessorCount": 2}, synchronize=lambda: None))
    return {"cupy": cp}


def _fake_pycuda():
    class Array(np.ndarray):
        gpudata = property(lambda self: self)

        def get(self):
            return np.asarray(self).copy()

    drv = types.SimpleNamespace(
        init=lambda: None, Device=types.SimpleNamespace(count=lambda: 1),
        Context=types.SimpleNamespace(get_device=lambda: types.SimpleNamespace(get_attribute=lambda a: 2),
                                      synchronize=lambda: None),
        device_attribute=types.SimpleNamespace(MULTIPROCESSOR_COUNT=0))

    class SourceModule:
        def __init__(self, source, no_extern_c=False, options=()):
            assert no_extern_c
            self.source = source

        def get_function(self, name):
            fn = _twin_kernel(self.source, name)
            return lambda *args, block, grid: fn(*args)

    ga = types.SimpleNamespace(to_gpu=lambda a: np.ascontiguousarray(a).view(Array),
                               empty=lambda s, dtype: np.empty(s, dtype).view(Array),
                               zeros=lambda s, dtype: np.zeros(s, dtype).view(Array))
    mods = {"pycuda": types.ModuleType("pycuda"), "pycuda.autoprimaryctx": types.ModuleType("pycuda.autoprimaryctx"),
            "pycuda.driver": drv, "pycuda.gpuarray": ga,
            "pycuda.compiler": types.SimpleNamespace(SourceModule=SourceModule)}
    mods["pycuda"].driver, mods["pycuda"].gpuarray = drv, ga
    return mods


@pytest.mark.parametrize("which", ["cupy", "pycuda"])
def test_each_launcher_through_stand_ins(which, monkeypatch, tmp_path):
    """probe() finds the launcher, the engine compiles, launches and reads back through it."""
    monkeypatch.setenv("ADCALC_CACHE_DIR", str(tmp_path))
    mods = _fake_cupy() if which == "cupy" else _fake_pycuda()
    if which == "cupy":
        monkeypatch.setitem(sys.modules, "pycuda", None)        # import pycuda fails
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(G, "_STATE", {})
    monkeypatch.setattr(G, "_FUNCTIONS", {})
    assert G.probe() == (which, None) and G.GpuEngine().available() is None
    prob = Problem("log(x1)+x1*x2-sin(x2)", at="2,5")
    X = np.random.default_rng(0).uniform(0.5, 3, (300, 2))
    for eng in (G.GpuEngine(), G.GpuEngine(dtype="float32", fast=True)):
        rtol = 1e-14 if eng.dtype == "float64" else 1e-5
        _agree(eng.grad(prob, X).value, REVERSE.grad(prob, X).value, rtol, f"{which} {eng.dtype} grad")
        V = np.random.default_rng(1).standard_normal((2, 300, 2))
        _agree(eng.hvp_batch(prob, X, V).value[1], REVERSE.hvp_batch(prob, X, V).value[1], rtol * 10, "hvp")
    assert G.launcher().name == which
