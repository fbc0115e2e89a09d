"""The user's code: loading `MODULE:FUNC`, and calling it safely.

A call captures what the code prints (so `--json` output stays one object), turns a
`sys.exit` or any exception into a UserCodeError naming the function, stops code that
runs past a deadline (SIGALRM, main thread, where the platform has it) and names a
return value that is not a number or an array of numbers.
"""
import contextlib
import importlib
import importlib.util
import io
import os
import signal
import sys
import threading
import time

from adcalc.errors import InputError


class CheckError(InputError, ValueError):
    """Bad input to check_grad: shapes, types, a function that cannot be called."""


class UserCodeError(CheckError):
    """The user's function raised (or exited, or ran too long); `original` is what it raised."""

    def __init__(self, message, original=None):
        super().__init__(message)
        self.original = original


class _Timeout(BaseException):
    pass


class Deadline:
    """A wall-clock budget shared by every call of one check (None: no limit)."""

    def __init__(self, seconds=None):
        self.seconds = seconds
        self.end = None if seconds is None else time.monotonic() + seconds

    def left(self):
        return None if self.end is None else self.end - time.monotonic()


@contextlib.contextmanager
def _alarm(deadline):
    left = None if deadline is None else deadline.left()
    usable = (left is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return
    if left <= 0:
        raise _Timeout()

    def ring(signum, frame):
        raise _Timeout()
    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, left)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def describe_value(out):
    """A short name for a value that is not a number or an array of numbers."""
    if out is None:
        return "None"
    if isinstance(out, bool):
        return f"a bool ({out})"
    if isinstance(out, str):
        return f"a string ({out[:30]!r})"
    return f"a {type(out).__name__}"


class UserFunction:
    """A user callable: call(x) -> numpy array; what it prints is kept in `printed`."""

    def __init__(self, fn, label, deadline=None, capture=False):
        if not callable(fn):
            raise CheckError(f"{label} must be callable, not {type(fn).__name__}")
        self.fn, self.label, self.deadline, self.capture = fn, label, deadline, capture
        self.calls = 0
        self.printed = io.StringIO()

    def __call__(self, x):
        import numpy as np
        self.calls += 1
        sink = contextlib.redirect_stdout(self.printed) if self.capture else contextlib.nullcontext()
        try:
            with sink, _alarm(self.deadline):
                out = self.fn(x)
        except _Timeout:
            raise UserCodeError(f"{self.label} did not finish within the time limit "
                                f"({self.deadline.seconds:g} s; see --timeout)") from None
        except KeyboardInterrupt:
            raise
        except SystemExit as e:
            raise UserCodeError(f"{self.label} called sys.exit({e.code!r}) at x={short(x)}: "
                                f"the code under check must return a value, not exit", e) from None
        except BaseException as e:  # noqa: BLE001  (anything the user's code raises)
            raise UserCodeError(f"{self.label} raised {type(e).__name__}: {' '.join(str(e).split())[:300]} "
                                f"at x={short(x)} (rerun with --debug for its traceback)", e) from e
        if out is None or isinstance(out, (bool, str, bytes)) or isinstance(out, np.bool_):
            raise CheckError(f"{self.label} returned {describe_value(out)}, not a number or an array of numbers")
        try:
            arr = np.asarray(out)
            if arr.dtype == object:
                arr = arr.astype(complex if any(isinstance(v, complex) for v in arr.ravel()) else float)
        except (TypeError, ValueError):
            raise CheckError(f"{self.label} returned {describe_value(out)}, which is not a number "
                             f"or an array of numbers") from None
        if arr.dtype.kind == "b":
            raise CheckError(f"{self.label} returned an array of booleans, not numbers")
        if arr.dtype.kind not in "fciu":
            raise CheckError(f"{self.label} returned an array of {arr.dtype}, not numbers")
        return arr


def short(a, width=72):
    import numpy as np
    a = np.asarray(a)
    if a.dtype.kind == "c":
        a = a.real
    if a.ndim == 0:
        return repr(float(a))
    t = np.array2string(a.astype(float), separator=",", threshold=8, precision=17,
                        floatmode="maxprec").replace("\n", "").replace(" ", "")
    return t if len(t) <= width else t[:width - 3] + "..."


_LOADED = {}


def load_callable(spec, what, default_module=None):
    """'MODULE:NAME' (a dotted module importable from the current directory, or a path to a
    .py file; NAME may be dotted) -> (object, module name).  Errors are InputError."""
    mod_name, sep, attr = spec.rpartition(":")
    if not sep:
        if default_module is None:
            raise InputError(f"{what}: expected MODULE:FUNCTION, got {spec!r}")
        mod_name, attr = default_module, spec
    if not mod_name or not attr:
        raise InputError(f"{what}: expected MODULE:FUNCTION, got {spec!r}")
    is_path = mod_name.endswith(".py") or os.sep in mod_name or "/" in mod_name
    key = os.path.abspath(mod_name) if is_path else mod_name
    module = _LOADED.get(key)
    if module is None:
        module = _LOADED[key] = _import(mod_name, key, is_path, what)
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InputError(f"{what}: module {mod_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise InputError(f"{what}: {mod_name}:{attr} is {type(obj).__name__}, not a function")
    return obj, mod_name


def _import(mod_name, key, is_path, what):
    try:
        with contextlib.redirect_stdout(sys.stderr):
            if is_path:
                if not os.path.isfile(mod_name):
                    raise InputError(f"{what}: no such file {mod_name!r}")
                folder = os.path.dirname(os.path.abspath(mod_name))
                if folder not in sys.path:
                    sys.path.insert(0, folder)
                name = "_adcalc_user_" + "".join(c if c.isalnum() else "_" for c in key)
                spec = importlib.util.spec_from_file_location(name, mod_name)
                if spec is None or spec.loader is None:
                    raise InputError(f"{what}: cannot load {mod_name!r} as a Python module")
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)
                return module
            cwd = os.getcwd()
            if cwd not in sys.path and "" not in sys.path:
                sys.path.insert(0, cwd)
            return importlib.import_module(mod_name)
    except InputError:
        raise
    except ModuleNotFoundError as e:
        if e.name and (e.name == mod_name or mod_name.startswith(e.name + ".")):
            raise InputError(f"{what}: no module named {mod_name!r} (looked in the current "
                             f"directory and on sys.path)") from None
        raise InputError(f"{what}: importing {mod_name!r} failed: ModuleNotFoundError: {e}") from None
    except KeyboardInterrupt:
        raise
    except SystemExit as e:
        raise InputError(f"{what}: importing {mod_name!r} called sys.exit({e.code!r})") from None
    except BaseException as e:  # noqa: BLE001  (the user's module raised while importing)
        raise InputError(f"{what}: importing {mod_name!r} failed: {type(e).__name__}: "
                         f"{' '.join(str(e).split())[:300]} (rerun with --debug for its traceback)") from None
