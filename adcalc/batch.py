"""Many points at once: read points in chunks, compute one quantity per chunk in one batched
engine call, write the results as they come.

Input (`--points FILE` or `-` for standard input, or `--at` given several times):
  .csv    a header of names (variables, or flat components such as x[0], W[1,0]), one
          point per row; standard input is CSV unless it starts with `{` or `[`
  .npy    an array (N, n) over the flat inputs in variable order
  .npz    one array per variable, each with a leading axis of N points
  .jsonl  one point per line: {"x1": 2, "x2": 5}, {"x": [1, 2]}, or [2, 5] (flat)
Output (`--out FILE` by its suffix, else JSON lines on standard output):
  .npy (N,) + the quantity's shape; .npz with the quantity's key (and "value");
  .csv the point's components then the quantity's; .jsonl one object per point with
  "point", the quantity's key and "warnings", in input order.

A row that cannot be read or lies outside the domain gives null (NaN in binary formats)
and is counted in one warning naming the first such rows; every other row is kept.  The
work streams in chunks, so memory stays bounded however many rows there are; an
interruption (Ctrl-C) or a failure part-way leaves every finished chunk written, and says
how many rows are complete.
"""
import csv
import itertools
import io
import json
import os
import re
import sys
import warnings

import numpy as np

from adcalc.engines.base import batch as compute_batch
from adcalc.errors import AdcalcError, InputError
from adcalc.evaluate import overflow_rows, through_overflow
from adcalc.points import listed, natural_key
from adcalc.quantities import QUANTITIES

CHUNK = 1 << 15           # rows per batched engine call (bounded memory)
FIRST_BAD = 5             # rows named in the warning about unreadable or outside rows
_COMPONENT = re.compile(r"([A-Za-z_][A-Za-z_0-9]*)(?:\[([0-9, ]+)\])?$")


class Source:
    """Points from a file or stream: `names` (variables), `shapes`, and chunks of flat rows
    (B, n) with NaN rows for unreadable ones (their messages in `errors` {row: text})."""

    def __init__(self, names, shapes, chunks, total=None):
        self.names, self.shapes, self._chunks, self.total = names, shapes, chunks, total
        self.errors = {}

    def chunks(self):
        return self._chunks(self)


def _flat_layout(columns):
    """(variable names in natural order, {name: shape}, per column (variable, flat index)) from
    CSV or JSON names such as x1, x[0], W[1,0]."""
    seen, layout = {}, []
    for col in columns:
        m = _COMPONENT.match(col.strip())
        if not m:
            raise InputError(f"--points: column {col!r} is not a variable or a component such as x[0]")
        name, idx = m.group(1), m.group(2)
        index = tuple(int(i) for i in idx.split(",")) if idx else ()
        seen.setdefault(name, []).append(index)
        layout.append((name, index))
    shapes = {}
    for name, idxs in seen.items():
        ranks = {len(i) for i in idxs}
        if len(ranks) != 1:
            raise InputError(f"--points: the columns of {name!r} mix scalar and indexed forms")
        rank = ranks.pop()
        shape = tuple(max(i[k] for i in idxs) + 1 for k in range(rank))
        if len(set(idxs)) != len(idxs) or len(idxs) != (int(np.prod(shape)) if shape else 1):
            raise InputError(f"--points: the columns of {name!r} do not cover its shape {list(shape)} once each")
        shapes[name] = shape
    names = sorted(shapes, key=natural_key)
    return names, shapes, layout


def _positions(names, shapes, layout):
    """Flat position (in variable order, row-major) of each column."""
    start, pos = {}, 0
    for v in names:
        start[v] = pos
        pos += int(np.prod(shapes[v])) if shapes[v] else 1
    return [start[v] + (int(np.ravel_multi_index(i, shapes[v])) if i else 0) for v, i in layout], pos


def from_csv(stream, what="--points"):
    """CSV with a header of names.  Each chunk of lines is parsed by numpy in one call; a
    chunk where that fails (a bad value, a short row, quotes) is read again row by row, so
    every bad row is named and the others are kept."""
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{what}: no header line (names of the variables)") from None
    names, shapes, layout = _flat_layout(header)
    where, n = _positions(names, shapes, layout)
    plain = list(where) == list(range(n))

    def place(block):
        if plain:
            return block
        out = np.empty((len(block), n))
        out[:, where] = block
        return out

    def rows_slowly(lines, first, line_nos, src):
        out = np.full((len(lines), n), np.nan)
        for k, row in enumerate(csv.reader(lines)):
            try:
                if len(row) != len(header):
                    raise ValueError(f"{len(row)} values for {len(header)} columns")
                out[k, where] = [float(c) for c in row]
                if not np.all(np.isfinite(out[k])):
                    raise ValueError("a value is not a finite number")
            except ValueError as e:
                src.errors[first + k] = f"line {line_nos[k]}: {' '.join(str(e).split())[:120]}"
                out[k] = np.nan
        return out

    def chunks(src):
        row_no, line_no = 0, 2   # the file's line number of the next line read (the header was 1)
        while True:
            raw = list(itertools.islice(stream, CHUNK))
            if not raw:
                return
            keep = [i for i, ln in enumerate(raw) if ln.strip()]   # blank lines are no rows
            lines = [raw[i] for i in keep]
            block = None
            if lines and not any('"' in ln for ln in lines):   # quoted fields: the csv module's job
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("error")
                        block = np.loadtxt(lines, delimiter=",", comments=None, ndmin=2, dtype=float)
                    if block.shape != (len(lines), len(header)) or not np.all(np.isfinite(block)):
                        block = None
                except ValueError:
                    block = None
            if lines:
                yield place(block) if block is not None else \
                    rows_slowly(lines, row_no, [line_no + i for i in keep], src)
            row_no += len(lines)
            line_no += len(raw)
    return Source(names, shapes, chunks)


def from_jsonl(stream, variables, shapes):
    """JSON lines: objects by variable or component name, or flat lists in variable order."""
    n = sum(int(np.prod(shapes[v])) if shapes[v] else 1 for v in variables)
    comps = {}
    pos = 0
    for v in variables:
        size = int(np.prod(shapes[v])) if shapes[v] else 1
        comps[v] = (pos, size, shapes[v])
        pos += size

    def chunks(src):
        row_no, rows = 0, []
        for line in stream:
            if not line.strip():
                continue
            flat = np.full(n, np.nan)
            try:
                obj = json.loads(line)
                if isinstance(obj, list):
                    arr = np.asarray(obj, dtype=float).ravel()
                    if arr.size != n:
                        raise ValueError(f"{arr.size} values for {n} inputs")
                    flat[:] = arr
                elif isinstance(obj, dict):
                    for k, val in obj.items():
                        if k not in comps:
                            raise ValueError(f"{k!r} is not a variable (variables: {listed(variables)})")
                        start, size, shape = comps[k]
                        arr = np.asarray(val, dtype=float)
                        if arr.shape != tuple(shape):
                            raise ValueError(f"{k} needs shape {list(shape)}, not {list(arr.shape)}")
                        flat[start:start + size] = arr.ravel()
                else:
                    raise ValueError("a line must be a JSON object or list")
                if not np.all(np.isfinite(flat)):
                    raise ValueError("a value is missing or not finite")
            except (ValueError, TypeError) as e:
                src.errors[row_no] = f"line {row_no + 1}: {' '.join(str(e).split())[:120]}"
                flat[:] = np.nan
            rows.append(flat)
            row_no += 1
            if len(rows) == CHUNK:
                yield np.array(rows)
                rows = []
        if rows:
            yield np.array(rows)
    return Source(variables, shapes, chunks)


def from_npy(path, variables, shapes):
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"--points: cannot read {path!r} as .npy ({' '.join(str(e).split())[:160]})") from None
    n = sum(int(np.prod(shapes[v])) if shapes[v] else 1 for v in variables)
    if arr.ndim == 1 and n == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != n:
        raise InputError(f"--points: {path!r} has shape {list(arr.shape)}; it should be (N, {n}) "
                         f"over the inputs in variable order")

    def chunks(src):
        for lo in range(0, len(arr), CHUNK):
            yield np.asarray(arr[lo:lo + CHUNK], dtype=float)
    return Source(variables, shapes, chunks, total=len(arr))


def from_npz(path):
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"--points: cannot read {path!r} as .npz ({' '.join(str(e).split())[:160]})") from None
    names = sorted(data.files, key=natural_key)
    if not names:
        raise InputError(f"--points: {path!r} holds no arrays")
    arrays = {k: data[k] for k in names}
    counts = {len(a) if a.ndim else -1 for a in arrays.values()}
    if len(counts) != 1 or -1 in counts:
        raise InputError(f"--points: the arrays of {path!r} need one leading axis of points, the same for each")
    total = counts.pop()
    shapes = {k: a.shape[1:] for k, a in arrays.items()}

    def chunks(src):
        for lo in range(0, total, CHUNK):
            yield np.concatenate([arrays[k][lo:lo + CHUNK].reshape(min(CHUNK, total - lo), -1).astype(float)
                                  for k in names], axis=1)
    return Source(names, shapes, chunks, total=total)


def from_points(values, variables, shapes):
    """Points given as several --at values (already parsed into {name: array} each)."""
    rows = np.array([np.concatenate([np.ravel(p[v]) for v in variables]) if variables else np.zeros(0)
                     for p in values], dtype=float)
    return Source(variables, shapes, lambda src: iter([rows]), total=len(rows))


def open_source(spec, variables=None, shapes=None):
    """A Source from `--points SPEC`; variables and shapes (from --at, or scalars) serve the
    formats that do not name them (.npy, JSON lists)."""
    if spec == "-":
        text = sys.stdin.read()
        head = text.lstrip()[:1]
        if head in ("{", "["):
            return from_jsonl(io.StringIO(text), variables, shapes)
        return from_csv(io.StringIO(text))
    if not os.path.exists(spec):
        raise InputError(f"--points: no such file {spec!r}")
    low = spec.lower()
    if low.endswith(".npy"):
        return from_npy(spec, variables, shapes)
    if low.endswith(".npz"):
        return from_npz(spec)
    try:
        fh = open(spec, newline="", encoding="utf-8")
    except OSError as e:
        raise InputError(f"--points: cannot read {spec!r} ({e.strerror})") from None
    if low.endswith((".jsonl", ".json", ".ndjson")):
        return from_jsonl(fh, variables, shapes)
    if low.endswith((".csv", ".txt")):
        return from_csv(fh)
    raise InputError(f"--points: unknown file type {spec!r} (.csv, .npy, .npz or .jsonl)")


# ---- output ------------------------------------------------------------------------------------
class _NpyWriter:
    """A .npy file written chunk by chunk; its header is rewritten with the final row count
    (the header is padded so its length never changes)."""

    def __init__(self, path, tail_shape):
        self.path, self.tail, self.rows = path, tuple(tail_shape), 0
        self.fh = open(path, "wb")
        self._header()

    def _header(self):
        d = f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({self.rows},{''.join(f' {s},' for s in self.tail)}), }}"
        d = d.ljust(118) + "\n"
        self.fh.seek(0)
        self.fh.write(b"\x93NUMPY\x01\x00" + len(d).to_bytes(2, "little") + d.encode("latin1"))
        self.fh.seek(0, os.SEEK_END)

    def write(self, block, values, points):
        self.fh.write(np.ascontiguousarray(block, dtype="<f8").tobytes())
        self.rows += len(block)

    def close(self):
        self._header()
        self.fh.close()


class _NpzWriter:
    """.npz: the quantity and the values, each through a temporary .npy, zipped at the end."""

    wants_values = True

    def __init__(self, path, key, tail_shape, value_shape):
        self.path, self.key = path, key
        self.parts = {key: _NpyWriter(path + f".{key}.tmp", tail_shape),
                      "value": _NpyWriter(path + ".value.tmp", value_shape)}

    def write(self, block, values, points):
        self.parts[self.key].write(block, None, None)
        self.parts["value"].write(values, None, None)

    @property
    def rows(self):
        return self.parts[self.key].rows

    def close(self):
        import zipfile
        with zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, w in self.parts.items():
                w.close()
                zf.write(w.path, f"{name}.npy")
                os.remove(w.path)


class _TextWriter:
    """CSV (components) or JSON lines (objects with point, quantity and warnings)."""

    def __init__(self, stream, kind, key, inputs, labels, variables, shapes, errors):
        self.fh, self.kind, self.key = stream, kind, key
        self.variables, self.shapes, self.errors, self.rows = variables, shapes, errors, 0
        if kind == "csv":
            self.w = csv.writer(stream, lineterminator="\n")
            self.w.writerow(list(inputs) + [f"{key}:{lab}" for lab in labels])

    def write(self, block, values, points):
        from adcalc.render import dumps
        for k in range(len(block)):
            row = self.rows + k
            if self.kind == "csv":
                self.w.writerow([repr(float(v)) for v in points[k]] + [repr(float(v)) if np.isfinite(v) else ""
                                                                     for v in np.ravel(block[k])])
                continue
            point, pos = {}, 0
            for v in self.variables:
                size = int(np.prod(self.shapes[v])) if self.shapes[v] else 1
                part = points[k][pos:pos + size]
                point[v] = None if not np.all(np.isfinite(part)) else (
                    float(part[0]) if not self.shapes[v] else part.reshape(self.shapes[v]).tolist())
                pos += size
            val = np.asarray(block[k], dtype=float)
            warnings = [self.errors[row]] if row in self.errors else []
            if not np.all(np.isfinite(val)) and not warnings:
                warnings.append(f"{self.key}: not finite (null) at some components")
            obj = {"row": row, "point": point,
                   self.key: np.where(np.isfinite(val), val, None).tolist() if val.ndim else
                   (float(val) if np.isfinite(val) else None), "warnings": warnings}
            self.fh.write(dumps(obj) + "\n")
        self.rows += len(block)

    def close(self):
        self.fh.flush()
        if self.fh is not sys.stdout:
            self.fh.close()


def open_sink(path, quantity, prob):
    q = QUANTITIES[quantity]
    tail = q.shape(prob.n, prob.m)
    labels = q.labels(prob.inputs, [f"f[{i}]" for i in range(prob.m)] if prob.m > 1 else ["f"])
    if path is None or path == "-":
        return None, tail, labels
    low = path.lower()
    if low.endswith(".npy"):
        return _NpyWriter(path, tail), tail, labels
    if low.endswith(".npz"):
        return _NpzWriter(path, q.key, tail, prob.out_shape), tail, labels
    if low.endswith((".csv", ".jsonl", ".json", ".ndjson")):
        try:
            fh = open(path, "w", newline="", encoding="utf-8")
        except OSError as e:
            raise InputError(f"--out: cannot write {path!r} ({e.strerror})") from None
        return ("csv" if low.endswith(".csv") else "jsonl", fh), tail, labels
    raise InputError(f"--out: unknown file type {path!r} (.npy, .npz, .csv or .jsonl)")


# ---- the run -----------------------------------------------------------------------------------
def run(prob, engine, quantity, source, out=None, vector=None, progress=None):
    """Compute `quantity` at every point of `source`, chunk by chunk, into `out`; returns
    (rows done, rows total or None, warnings).  Rows outside the domain or unreadable give
    NaN/null and are counted; an interruption keeps every finished chunk."""
    sink, tail, labels = open_sink(out, quantity, prob)
    errors = source.errors
    if sink is None or isinstance(sink, tuple):
        kind, fh = ("jsonl", sys.stdout) if sink is None else sink
        sink = _TextWriter(fh, kind, QUANTITIES[quantity].key, prob.inputs, labels, prob.wrt, prob.shapes, errors)
    done, bad_domain, overflowed = 0, {}, []
    # an engine that reports the points outside the domain itself (compiled, gpu) needs no
    # separate evaluation of f, unless the output keeps f's values (.npz)
    own_domain = getattr(engine, "on_domain", None) == "nan" and not getattr(sink, "wants_values", False)
    try:
        for X in source.chunks():
            B = len(X)
            res = np.full((B,) + tuple(tail), np.nan)
            values = np.full((B,) + prob.out_shape, np.nan)
            readable = np.all(np.isfinite(X), axis=1)
            if readable.any() and own_domain:   # the engine flags the rows outside the domain
                rows = np.flatnonzero(readable)
                with np.errstate(all="ignore"):
                    r = compute_batch(engine, prob, quantity, X[rows], vector)
                res[rows] = r.value
                for k, msg in sorted((r.info or {}).get("bad", {}).items()):
                    row = done + int(rows[k])
                    bad_domain[row] = msg
                    errors.setdefault(row, f"row {row}: {msg}")
            elif readable.any():
                bad = {}
                vals = prob.values(X[readable], bad=bad)
                inside = np.ones(int(readable.sum()), bool)
                rows = np.flatnonzero(readable)
                for r, msg in bad.items():
                    inside[r] = False
                    bad_domain[done + int(rows[r])] = msg
                    errors.setdefault(done + int(rows[r]), f"row {done + int(rows[r])}: {msg}")
                ok_rows = rows[inside]
                if ok_rows.size:
                    with np.errstate(all="ignore"):
                        r = compute_batch(engine, prob, quantity, X[ok_rows], vector)
                    res[ok_rows] = r.value
                    values[ok_rows] = np.reshape(vals[prob.output.id], (len(rows),) + prob.out_shape)[inside]
                    if engine.name != "symbolic":   # derivatives through an overflow: null, counted
                        over = rows[overflow_rows(prob, vals, len(rows)) & inside]
                        res[over] = through_overflow(res[over])
                        overflowed.extend((done + over).tolist())
            sink.write(res, values, X)
            done += B
            if progress is not None:
                progress(B)
    except KeyboardInterrupt:
        sink.close()
        raise InterruptedRun(done, source.total) from None
    except AdcalcError:
        sink.close()
        raise
    sink.close()
    warnings = []
    if errors:
        kinds = "outside the domain" if len(bad_domain) == len(errors) else \
            "unreadable" if not bad_domain else "unreadable or outside the domain"
        warnings.append(f"{len(errors)} of {done} rows {kinds} (null): rows {_first_rows(sorted(errors))}; "
                        f"first: {errors[min(errors)]}")
    if overflowed:
        warnings.append(f"{len(overflowed)} of {done} rows overflow float64 inside f (derivatives null): rows "
                        f"{_first_rows(overflowed)}; what is computed through an overflow has lost its digits")
    return done, source.total, warnings


def _first_rows(rows):
    """The first FIRST_BAD row numbers, and ' ...' when there are more."""
    return ", ".join(map(str, rows[:FIRST_BAD])) + (" ..." if len(rows) > FIRST_BAD else "")


class InterruptedRun(AdcalcError):
    kind = "input"
    exit_code = 130

    def __init__(self, done, total):
        where = f"{done} of {total}" if total is not None else f"{done}"
        super().__init__(f"interrupted: {where} rows are complete and written")
        self.done = done
