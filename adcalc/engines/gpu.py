"""The gpu engine: the generated kernel of each quantity as CUDA C, one thread per point.

adcalc.codegen prints the derivative graph (gradient, Jacobian, Hessian, HVP, JVP, VJP) as
straight-line code for one point; cuda_source wraps the same body as the compiled
engine's C in a `__global__` function with a grid-stride loop.  It is compiled once per
source and process (and cached on disk by the launcher), launched through pycuda (the
`[gpu]` extra; `pycuda.autoprimaryctx`) or, when pycuda is missing, CuPy's RawKernel
(NVRTC).  Both are imported lazily, inside functions.

Options: dtype "float64" (default) or "float32"; fast=True compiles with --use_fast_math
(CUDA's fast intrinsics: they change float32 results only; the double-precision kernel
has no faster variant and is memory-bound anyway); by default multiply-adds are not
fused (--fmad=false), so the double kernel rounds as the C twin does.

Data: X and the directions are copied to the device in chunks of `chunk` points; the
K directions of one hvp/jvp/vjp call reuse the points already there.  `run_device`
takes and returns device arrays for callers that keep their data on the device.
Domain errors: NaN rows and a flag per point, as in the compiled engine.
"""
import numpy as np

from adcalc import codegen
from adcalc.engines.compiled import KernelEngine
from adcalc.errors import EngineError, InputError

HOW_TO_FIX = ("on a machine with an NVIDIA GPU and its driver, install pycuda (pip install 'adcalc[gpu]', "
              "which builds against the CUDA toolkit) or CuPy (pip install cupy-cuda12x or cupy-cuda13x)")
BLOCK = 256
_STATE = {}
_FUNCTIONS = {}


def probe():
    """(launcher name or None, reason or None), found once per process."""
    if "probe" in _STATE:
        return _STATE["probe"]
    reasons, found = [], None
    try:
        import pycuda.driver as drv
    except ImportError:
        reasons.append("pycuda is not installed")
    except Exception as e:   # a broken install: missing libcuda, wrong toolkit
        reasons.append(f"pycuda does not load ({type(e).__name__}: {e})")
    else:
        try:
            drv.init()
            if drv.Device.count() > 0:
                found = "pycuda"
            else:
                reasons.append("pycuda found no CUDA device")
        except Exception as e:
            reasons.append(f"pycuda cannot reach an NVIDIA driver and device ({type(e).__name__}: {e})")
    if found is None:
        try:
            import cupy
        except ImportError:
            reasons.append("CuPy is not installed")
        except Exception as e:
            reasons.append(f"CuPy does not load ({type(e).__name__}: {e})")
        else:
            try:
                if cupy.cuda.runtime.getDeviceCount() > 0:
                    found = "cupy"
                else:
                    reasons.append("CuPy found no CUDA device")
            except Exception as e:
                reasons.append(f"no NVIDIA driver or device ({type(e).__name__}: {_short(e)})")
    reason = None if found else "; ".join(reasons) + "; " + HOW_TO_FIX
    _STATE["probe"] = (found, reason)
    return found, reason


def _short(e):
    text = " ".join(str(e).split())
    return text if len(text) < 120 else text[:117] + "..."


def launcher(name=None):
    """The launcher object (created once): pycuda's or CuPy's."""
    name = name or probe()[0]
    if name is None:
        raise EngineError("the gpu engine cannot run here: " + probe()[1])
    key = ("launcher", name)
    if key not in _STATE:
        _STATE[key] = {"pycuda": _Pycuda, "cupy": _Cupy}[name]()
    return _STATE[key]


class _Cupy:
    name = "cupy"

    def __init__(self):
        import cupy
        self.cp = cupy
        self.sms = cupy.cuda.Device().attributes["MultiProcessorCount"]
        self.dummy = {}

    def compile(self, source, name, options):
        """NVRTC first (CuPy's default, no toolkit needed), then nvcc where it exists."""
        errors = []
        for backend in ("nvrtc", "nvcc"):
            try:
                kernel = self.cp.RawKernel(source, name, options=tuple(options), backend=backend)
                kernel.compile()
                self.compiler = backend
                return kernel
            except Exception as e:
                errors.append(f"{backend}: {_short(e)}")
        raise EngineError("; ".join(errors))

    def to_device(self, a, dtype):
        return self.cp.ascontiguousarray(self.cp.asarray(a, dtype=dtype))

    def empty(self, shape, dtype):
        return self.cp.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        return self.cp.zeros(shape, dtype=dtype)

    def to_host(self, a):
        return self.cp.asnumpy(a)

    def none(self, dtype):
        if dtype not in self.dummy:
            self.dummy[dtype] = self.cp.zeros(1, dtype=dtype)
        return self.dummy[dtype]

    def launch(self, fn, n, X, D, stride, OUT, FLAG):
        grid = max(1, min((n + BLOCK - 1) // BLOCK, self.sms * 32))
        fn((grid,), (BLOCK,), (np.int64(n), X, D, np.int64(stride), OUT, FLAG))

    def synchronize(self):
        self.cp.cuda.Device().synchronize()


class _Pycuda:
    name = "pycuda"

    def __init__(self):
        import pycuda.autoprimaryctx  # noqa: F401  (the device's primary context, not autoinit)
        import pycuda.driver as drv
        import pycuda.gpuarray as gpuarray
        from pycuda.compiler import SourceModule
        self.drv, self.ga, self.SourceModule = drv, gpuarray, SourceModule
        self.sms = drv.Context.get_device().get_attribute(drv.device_attribute.MULTIPROCESSOR_COUNT)
        self.dummy = {}

    def compile(self, source, name, options):
        return self.SourceModule(source, no_extern_c=True, options=list(options)).get_function(name)

    def to_device(self, a, dtype):
        return self.ga.to_gpu(np.ascontiguousarray(a, dtype=dtype))

    def empty(self, shape, dtype):
        return self.ga.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        return self.ga.zeros(shape, dtype=dtype)

    def to_host(self, a):
        return a.get()

    def none(self, dtype):
        if dtype not in self.dummy:
            self.dummy[dtype] = self.ga.zeros(1, dtype=dtype)
        return self.dummy[dtype]

    def launch(self, fn, n, X, D, stride, OUT, FLAG):
        grid = max(1, min((n + BLOCK - 1) // BLOCK, self.sms * 32))
        fn(np.int64(n), X.gpudata, D.gpudata, np.int64(stride), OUT.gpudata, FLAG.gpudata,
           block=(BLOCK, 1, 1), grid=(grid, 1))

    def synchronize(self):
        self.drv.Context.synchronize()


class GpuEngine(KernelEngine):
    """Generated CUDA C on an NVIDIA GPU; see the module docstring."""

    name = "gpu"

    def __init__(self, fast=False, on_domain="raise", dtype="float64", backend=None, chunk=1 << 24, **options):
        super().__init__(fast=fast, on_domain=on_domain, **options)
        if dtype not in codegen.DTYPES:
            raise InputError(f"--dtype must be one of {', '.join(codegen.DTYPES)}")
        self.dtype, self.backend, self.chunk = dtype, backend, int(chunk)
        self._resident = None

    def available(self):
        return probe()[1]

    @property
    def np_dtype(self):
        return np.float32 if self.dtype == "float32" else np.float64

    def options_for_compiler(self):
        return ("--use_fast_math",) if self.fast else ("--fmad=false",)

    def source(self, kern):
        return codegen.cuda_source({"adcalc_kernel": kern})

    def function(self, kern):
        """The compiled kernel of a codegen.Kernel, once per source and process."""
        lau = launcher(self.backend)
        source = self.source(kern)
        key = (lau.name, source, self.options_for_compiler())
        fn = _FUNCTIONS.get(key)
        if fn is None:
            try:
                fn = lau.compile(source, "adcalc_kernel", self.options_for_compiler())
            except EngineError as e:
                raise EngineError(f"the CUDA compiler failed on the generated kernel: {e}") from None
            except Exception as e:
                raise EngineError(f"the CUDA compiler failed on the generated kernel: {_short(e)}") from None
            _FUNCTIONS[key] = fn
        return fn

    def kernel(self, prob, quantity):
        return codegen.problem_kernel(prob, quantity, self.dtype)

    def run_device(self, prob, quantity, X_dev, D_dev=None, shared=False):
        """Run on device arrays: X_dev (N, n) of the engine's dtype, D_dev (N, n_dir) or, with
        shared=True, (n_dir,).  Returns (OUT_dev (N, n_out), FLAG_dev (N,) int32, Kernel);
        nothing is copied to the host."""
        kern = self.kernel(prob, quantity)
        fn = self.function(kern)
        lau = launcher(self.backend)
        n = int(X_dev.shape[0])
        OUT = lau.empty((n, kern.n_out), self.np_dtype)
        FLAG = lau.empty((n,), np.int32)
        D = D_dev if kern.n_dir else lau.none(self.np_dtype)
        if n:
            lau.launch(fn, n, X_dev, D, 0 if shared or not kern.n_dir else kern.n_dir, OUT, FLAG)
        return OUT, FLAG, kern

    def run_kernel(self, prob, quantity, X, D=None):
        lau = launcher(self.backend)
        N = len(X)
        kern = self.kernel(prob, quantity)
        OUT = np.empty((N, kern.n_out))
        FLAG = np.zeros(N, dtype=np.int32)
        shared = D is not None and np.ndim(D) == 1
        D_shared = lau.to_device(D, self.np_dtype) if shared and kern.n_dir else None
        for lo in range(0, N, self.chunk):
            hi = min(N, lo + self.chunk)
            X_dev = self._points(lau, X, lo, hi)
            D_dev = D_shared if shared else (lau.to_device(D[lo:hi], self.np_dtype) if kern.n_dir else None)
            out, flag, _ = self.run_device(prob, quantity, X_dev, D_dev, shared)
            OUT[lo:hi] = lau.to_host(out)
            FLAG[lo:hi] = lau.to_host(flag)
        return OUT, FLAG, kern

    def _points(self, lau, X, lo, hi):
        """X[lo:hi] on the device; kept there across the directions of one call."""
        res = self._resident
        if res is not None and res[0] is X:
            hit = res[1].get(lo)
            if hit is None:
                hit = res[1][lo] = lau.to_device(X[lo:hi], self.np_dtype)
            return hit
        return lau.to_device(X[lo:hi], self.np_dtype)

    def _directed(self, prob, quantity, X, V):
        X = np.asarray(X, dtype=float).reshape(len(X), prob.n)
        self._resident = (X, {}) if len(X) <= self.chunk else None
        try:
            return super()._directed(prob, quantity, X, V)
        finally:
            self._resident = None
