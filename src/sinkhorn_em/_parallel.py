"""Threads for the row-block passes: a per-block function mapped over the blocks, results in block order.

Every pass of a fit (the costs, the E-step's row and column reductions, the M-step's
moment sums) is a sum over blocks of samples (:func:`._balanced.sample_blocks`). With
``n_jobs > 1`` the blocks' work runs on a thread pool (numpy's loops and BLAS release the
GIL), while the sums stay where they were: :meth:`Workers.map` yields each block's
partial results **in block order**, and the caller adds them one after the other, exactly
as the single-threaded loop does. The block boundaries do not depend on ``n_jobs``
either, so a fit's every floating-point operation, and therefore its result, is the same
bit for bit whatever ``n_jobs`` is: threads change when a block is computed, never what
is added to what.

Each worker thread has its own scratch arrays (:meth:`Workers.scratch`); the pool and the
BLAS limit (one BLAS thread while the workers run, so that ``n_jobs`` threads use
``n_jobs`` cores) live for one fit (``with Workers(n_jobs):``).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["SERIAL", "Workers", "check_n_jobs"]

# Blocks submitted ahead of the one being reduced, per worker: enough to keep every worker
# busy while the caller adds a partial result, few enough that the partial results waiting
# to be added (a K x K Gram product per block for the Newton Hessian) take little memory.
_LOOKAHEAD_PER_WORKER = 2
# Blocks per task: at least _TASKS_PER_WORKER tasks per thread and pass (so that the last task
# leaves a thread idle for a small part of the pass), at most _MAX_BLOCKS_PER_TASK (so that the
# partial results of the tasks in flight, a K x K Gram product per block, stay a few MiB).
_TASKS_PER_WORKER = 4
_MAX_BLOCKS_PER_TASK = 8


def check_n_jobs(n_jobs) -> int:
    """The number of threads ``n_jobs`` asks for: a positive integer, or ``-1`` for every core.

    Raises
    ------
    ValueError
        If ``n_jobs`` is not an integer >= 1 or -1 (``bool`` included: ``True`` is not a count).
    """
    if (
        isinstance(n_jobs, (bool, np.bool_))
        or not isinstance(n_jobs, (int, np.integer))
        or not (n_jobs >= 1 or n_jobs == -1)
    ):
        raise ValueError(
            f"n_jobs must be a positive integer (the number of threads) or -1 (all cores), got {n_jobs!r}; "
            "use n_jobs=1 for one thread."
        )
    if n_jobs == -1:
        return _available_cores()
    return int(n_jobs)


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Workers:
    """A thread pool for the block passes of one fit (a context manager).

    ``Workers(1)`` (and :data:`SERIAL`) runs every block in the calling thread, in order,
    interleaved with the caller's reduction: the single-threaded loop itself.

    Parameters
    ----------
    n_jobs : int
        Number of threads (already checked by :func:`check_n_jobs`).
    """

    def __init__(self, n_jobs: int = 1):
        self.n_jobs = int(n_jobs)
        self._executor = None
        self._limits = None
        self._local = threading.local()

    def __enter__(self):
        if self.n_jobs > 1:
            # One BLAS thread while the workers run: n_jobs threads each starting BLAS's own
            # threads would oversubscribe the cores (threadpoolctl, a scikit-learn dependency).
            from threadpoolctl import threadpool_limits

            self._limits = threadpool_limits(limits=1, user_api="blas")
            self._executor = ThreadPoolExecutor(
                max_workers=self.n_jobs, thread_name_prefix="sinkhorn-em", initializer=self._start_worker
            )
        return self

    def __exit__(self, *exc):
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._limits is not None:
            self._limits.restore_original_limits()
            self._limits = None
        return False

    def _start_worker(self):
        self._local.scratch = {}

    def map(self, function, blocks):
        """Yield ``function(b, cols)`` for every ``(b, cols)`` of ``enumerate(blocks)``, in block order.

        The caller reduces the yielded partial results in the order they come, which is the
        block order whatever the number of threads. ``function`` may write into disjoint
        slices of shared arrays (the columns ``cols`` of a row array, block ``b`` of a
        stored kernel); it must not add into shared arrays (that is the caller's reduction).
        """
        if self._executor is None or len(blocks) < 2:
            for b, cols in enumerate(blocks):
                yield function(b, cols)
            return
        # Consecutive blocks go to a thread together: a block of ~1 MiB takes 0.1-0.5 ms, about
        # ten times a task's hand-over (submit, lock, wake-up), which would otherwise idle the
        # threads for a third of a pass. Results still come back one per block, in block order.
        per_task = max(1, min(_MAX_BLOCKS_PER_TASK, len(blocks) // (_TASKS_PER_WORKER * self.n_jobs)))
        tasks = [list(enumerate(blocks))[start : start + per_task] for start in range(0, len(blocks), per_task)]

        def run(task):
            return [function(b, cols) for b, cols in task]

        pending = deque()
        remaining = iter(tasks)
        window = _LOOKAHEAD_PER_WORKER * self.n_jobs
        try:
            for task in remaining:
                pending.append(self._executor.submit(run, task))
                if len(pending) >= window:
                    break
            while pending:
                results = pending.popleft().result()
                for task in remaining:
                    pending.append(self._executor.submit(run, task))
                    break
                yield from results
        finally:
            # Stopped early (an error, or the caller closed the generator): no block may keep
            # writing into the caller's arrays after this returns.
            for future in pending:
                future.cancel()
            for future in pending:
                if not future.cancelled():
                    future.exception()

    def scratch(self, store, key, shape, dtype=float):
        """A reused work array: in a worker thread from that thread's own store, else from ``store``.

        Fresh block-sized arrays page-fault on their first write (about the cost of the
        write itself), so passes reuse them; a worker thread must not share one with another.
        """
        own = getattr(self._local, "scratch", None)
        if own is not None:
            store = own
        key = (key, shape, np.dtype(dtype).str)
        array = store.get(key)
        if array is None:
            array = store[key] = np.empty(shape, dtype=dtype)
        return array


#: Blocks in the calling thread (the default of every pass).
SERIAL = Workers(1)
