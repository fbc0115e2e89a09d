"""Dead arrays kept for reuse: the sweeps over numbers (adcalc.ad) write results into an
array of the same shape that an earlier node (or an earlier call) no longer needs, instead of
asking the allocator for fresh memory each time.  (Compiled evaluations keep their own
arrays: evaluate.Program's slots.)

Large numpy arrays come from mmap, and glibc returns them to the system when freed, so
every new one faults its pages in again: in a fresh process that page-faulting was most of
the time of a gradient at n = 10^5.  Only arrays that nothing else refers to are given
here (the callers track ownership), and the arena holds at most BUDGET bytes."""
import numpy as np

BUDGET = 64 << 20     # bytes kept between calls at most
SMALLEST = 1 << 15    # bytes: smaller arrays come from numpy's own cache or malloc's heap


class Arena:
    def __init__(self, budget=BUDGET):
        self.budget, self.bytes, self.free = budget, 0, {}

    def take(self, shape):
        """A float64 array of `shape` with garbage in it, or None."""
        spare = self.free.get(shape)
        if spare:
            try:
                a = spare.pop()
            except IndexError:   # another thread took the last one
                return None
            self.bytes -= a.nbytes
            return a
        return None

    def give(self, a):
        """Keep `a` (an array no one else refers to) for a later take, within the budget."""
        if (type(a) is np.ndarray and a.dtype == np.float64 and a.nbytes >= SMALLEST
                and a.flags.c_contiguous and a.flags.owndata and self.bytes + a.nbytes <= self.budget):
            self.free.setdefault(a.shape, []).append(a)
            self.bytes += a.nbytes

    def clear(self):
        self.free, self.bytes = {}, 0


ARENA = Arena()


def spare_for(arrays):
    """An arena array of the shape numpy would give the element-wise result of `arrays`, when
    they are large enough to be worth it; else None."""
    if not any(getattr(x, "nbytes", 0) >= SMALLEST for x in arrays):
        return None
    try:
        if np.result_type(*arrays) != np.float64:   # complex step, integer masks
            return None
        shape = np.broadcast_shapes(*[np.shape(x) for x in arrays])
    except (ValueError, TypeError):
        return None
    return ARENA.take(shape)
