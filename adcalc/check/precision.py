"""Which precision the user's code computes in, measured rather than assumed."""
import numpy as np

EPS64 = 2.0 ** -52
EPS32 = 2.0 ** -23
EPS16 = 2.0 ** -10


def eps_of(dt):
    dt = np.dtype(dt)
    if dt.kind == "c":
        dt = np.dtype(f"f{dt.itemsize // 2}")
    if dt.kind != "f":
        return EPS64
    return float(np.finfo(dt).eps) if dt.itemsize <= 8 else EPS64


def dtype_of(eps):
    return {EPS64: np.float64, EPS32: np.float32, EPS16: np.float16}.get(eps, np.float64)


def looks_float32(a):
    """True when float64 values are all exact float32 numbers and some of them use more than
    16 significant bits (a float64 computation almost never gives that)."""
    a = np.asarray(a, dtype=float).ravel()
    a = a[np.isfinite(a) & (a != 0)]
    if a.size == 0 or np.any(np.abs(a) > 3e38) or np.any(np.abs(a) < 1.2e-38):
        return False
    if not np.all(a.astype(np.float32).astype(float) == a):
        return False
    m, _ = np.frexp(a)
    return bool(np.any(m * 2.0 ** 16 != np.round(m * 2.0 ** 16)))


def judge_precisions(F, xu, f0, g0, what):
    """(the numpy type f is differenced in, eps of the gradient's tolerances, f at x in that
    precision (or None), warnings).  A float32 x whose f accepts float64 and really computes
    in float64 is differenced in float64."""
    warnings = []
    in_dt = xu.dtype
    eps_g = max(eps_of(in_dt), eps_of(f0.dtype), eps_of(g0.dtype))
    if eps_g == EPS64 and looks_float32(g0):
        eps_g = EPS32
        warnings.append(f"the {what} values are exact float32 numbers: judged as float32 code")
    f64 = None
    if in_dt == np.float64:
        if f0.dtype.kind == "f" and f0.dtype.itemsize < 8:
            prec = f0.dtype.type
        elif looks_float32(f0):
            prec = np.float32
            warnings.append("f returns exact float32 numbers: differenced as float32 code")
        else:
            prec = np.float64
    else:
        from adcalc.check.usercode import UserCodeError
        try:
            f64 = F(xu.astype(np.float64))
        except UserCodeError:
            f64 = None
        if (f64 is not None and f64.dtype == np.float64 and f64.shape == f0.shape
                and np.all(np.isfinite(f64)) and not looks_float32(f64)):
            prec = np.float64
            warnings.append(f"f accepts float64 input and computes in float64: differenced in float64 "
                            f"(the {what} is judged with {np.dtype(dtype_of(eps_g)).name} tolerances)")
        else:
            prec = np.dtype(in_dt).type if f0.dtype.itemsize >= np.dtype(in_dt).itemsize else f0.dtype.type
            f64 = None
    eps_f = eps_of(prec)
    eps_g = max(eps_g, eps_f) if prec != np.float64 else eps_g
    return prec, eps_g, f64, warnings
