"""Merges concurrent requests for the same model into one call, and keeps their failures apart.

Each model version has a queue and one thread. The thread takes the first
waiting request, then keeps taking requests until ``max_batch_size`` instances
or ``timeout_ms`` have passed, calls the model once, and hands each request its
rows. The export pads each call to the step of
:func:`glue_tf.exports.signatures.grid_widths` (16, 32, 64, 128 tokens, then
``max_seq_length``) that holds its longest text, so however varied the traffic,
a worker's per-shape caches see a few widths. Its rows are padded the same way, to the
next of :func:`allowed_rows` (1, 2, 3, 4, 6, 8, 12, ... ``max_batch_size``) with copies of its
last row, as TF Serving's ``allowed_batch_sizes`` pads its batches: oneDNN caches a primitive per
op and input shape, so a batch of every row count from 1 to 64 at every width made a worker's
memory grow with the traffic's mix (32 MiB over the second half of a 20,000-request run in which
a killed worker's load moved to the others), where 12 row counts bound it. A queue holding
``max_queue`` instances answers 429 instead of growing without bound.

Under load, when more than a batch's worth is waiting, the thread takes what is
queued (up to :data:`GROUPED_BATCHES` batches' worth), orders those requests by
the length of their longest text and cuts them into batches of at most
``max_batch_size`` instances: short texts are no longer padded to a long one
that happened to arrive beside them. Each request still gets its own rows, in
its own order.

A merged call that fails is split in halves and each half retried, down to
single requests, so only a request that fails on its own gets an error: one
bad request never fails the requests it happened to share a batch with.
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from serving.errors import Overloaded

GROUPED_BATCHES = 4  # how many batches' worth of queued instances are ordered by length together


def allowed_rows(max_batch_size: int) -> tuple[int, ...]:
    """The row counts merged calls are padded to: powers of two and one and a half times them, below
    ``max_batch_size``, then ``max_batch_size``. A padded call computes at most 1.5x its rows (2 rows
    and up), and a worker sees at most 2 log2(max_batch_size) + 2 row counts (12 for 64)."""
    steps = {size for power in range(max_batch_size.bit_length()) for size in (2**power, 3 * 2**power // 2)}
    return tuple(sorted(size for size in steps if size < max_batch_size)) + (max_batch_size,)


def _padded_rows(merged: dict[str, list], rows: int, allowed: tuple[int, ...]) -> dict[str, list]:
    """``merged`` with copies of its last row up to the smallest allowed count that holds ``rows`` (a single
    request over the largest is left as it is). A copied row keeps the call's longest text, so its width."""
    target = next((size for size in allowed if size >= rows), rows)
    return {name: texts + texts[-1:] * (target - rows) for name, texts in merged.items()}


class _Pending:
    __slots__ = ("columns", "size", "done", "result", "error")

    def __init__(self, columns: dict[str, list[str]], size: int):
        self.columns, self.size = columns, size
        self.done = threading.Event()
        self.result = None
        self.error = None


class Batcher:
    """``predict(columns) -> outputs``; ``on_batch(size)`` after every model call that answered."""

    def __init__(self, predict, max_batch_size: int = 64, timeout_ms: float = 5.0, max_queue: int = 2048,
                 on_batch=None, on_queue=None, name: str = "batcher"):
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.allowed_rows = allowed_rows(max_batch_size)
        self.timeout = timeout_ms / 1000.0
        self.max_queue = max_queue
        self._on_batch = on_batch
        self._on_queue = on_queue  # called with the change in queued instances (+n / -n)
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._queued = 0
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        return self._queued

    def submit(self, columns: dict[str, list[str]]) -> dict[str, np.ndarray]:
        size = len(next(iter(columns.values())))
        pending = _Pending(columns, size)
        with self._lock:
            queued = not self._closed
            if queued:
                if self._queued + size > self.max_queue:
                    raise Overloaded(
                        f"the prediction queue is full ({self._queued} instances waiting); retry shortly",
                        headers={"Retry-After": "1"},
                    )
                self._queued += size
                self._queue.put(pending)
        if not queued:  # its version was unloaded while this request held it: answer it directly
            return self._predict(columns)
        if self._on_queue:
            self._on_queue(size)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result

    def close(self) -> None:
        """Ends the thread once the requests already queued are answered (their model version was unloaded)."""
        with self._lock:
            self._closed = True
            self._queue.put(None)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            size = batch[0].size
            deadline = time.monotonic() + self.timeout
            while size < self.max_batch_size:
                nxt = self._next(deadline - time.monotonic())
                if nxt is None:
                    break
                batch.append(nxt)
                size += nxt.size
            while size < self.max_batch_size * GROUPED_BATCHES:  # under load: what is already queued, no waiting
                nxt = self._next(0)
                if nxt is None:
                    break
                batch.append(nxt)
                size += nxt.size
            with self._lock:
                self._queued -= size
            if self._on_queue:
                self._on_queue(-size)
            for group in self._by_length(batch) if size > self.max_batch_size else [batch]:
                self._execute(group)

    def _next(self, wait: float) -> _Pending | None:
        """The next queued request within ``wait`` seconds (0: only one already queued), else None."""
        try:
            nxt = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None
        if nxt is None:
            self._queue.put(None)  # close after this batch
        return nxt

    def _by_length(self, pending: list[_Pending]) -> list[list[_Pending]]:
        """Requests ordered by their longest text, cut into batches of at most ``max_batch_size`` instances
        (a larger request alone)."""
        def longest(request: _Pending) -> int:
            return max((sum(len(texts[i]) for texts in request.columns.values()) for i in range(request.size)), default=0)

        groups, size = [[]], 0
        for request in sorted(pending, key=longest):
            if groups[-1] and size + request.size > self.max_batch_size:
                groups.append([])
                size = 0
            groups[-1].append(request)
            size += request.size
        return groups

    def _execute(self, batch: list[_Pending]) -> None:
        """Answers every request of ``batch``; a failed call is retried in halves."""
        names = list(batch[0].columns)
        merged = {name: [text for p in batch for text in p.columns[name]] for name in names}
        try:
            outputs = self._predict(_padded_rows(merged, sum(p.size for p in batch), self.allowed_rows))
        except Exception as error:  # noqa: BLE001 - isolated below, delivered only to its cause
            if len(batch) == 1:
                batch[0].error = error
                batch[0].done.set()
                return
            middle = len(batch) // 2
            self._execute(batch[:middle])
            self._execute(batch[middle:])
            return
        if self._on_batch:
            self._on_batch(sum(p.size for p in batch))
        start = 0
        for pending in batch:
            pending.result = {name: value[start : start + pending.size] for name, value in outputs.items()}
            start += pending.size
            pending.done.set()
