"""Merges concurrent requests for the same task into one model call.

Each task has a queue and one thread. The thread takes the first waiting
request, then keeps taking requests until ``max_batch_size`` instances or
``timeout_ms`` have passed, calls the model once (the export pads the batch
only to its longest text), and hands each request its rows. A queue holding
``max_queue`` instances answers 429 instead of growing without bound.
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from serving.errors import Overloaded


class _Pending:
    __slots__ = ("columns", "size", "done", "result", "error")

    def __init__(self, columns: dict[str, list[str]], size: int):
        self.columns, self.size = columns, size
        self.done = threading.Event()
        self.result = None
        self.error = None


class Batcher:
    def __init__(self, predict, max_batch_size: int = 64, timeout_ms: float = 5.0, max_queue: int = 2048,
                 on_batch=None, name: str = "batcher"):
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.timeout = timeout_ms / 1000.0
        self.max_queue = max_queue
        self._on_batch = on_batch
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._queued = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, columns: dict[str, list[str]]) -> dict[str, np.ndarray]:
        size = len(next(iter(columns.values())))
        with self._lock:
            if self._queued + size > self.max_queue:
                raise Overloaded(
                    f"the prediction queue is full ({self._queued} instances waiting); retry shortly",
                    headers={"Retry-After": "1"},
                )
            self._queued += size
        pending = _Pending(columns, size)
        self._queue.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            size = batch[0].size
            deadline = time.monotonic() + self.timeout
            while size < self.max_batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    nxt = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                batch.append(nxt)
                size += nxt.size
            with self._lock:
                self._queued -= size
            self._execute(batch, size)

    def _execute(self, batch: list[_Pending], size: int) -> None:
        names = list(batch[0].columns)
        merged = {name: [text for p in batch for text in p.columns[name]] for name in names}
        try:
            outputs = self._predict(merged)
        except Exception as error:  # noqa: BLE001 - delivered to every waiting request
            for pending in batch:
                pending.error = error
                pending.done.set()
            return
        if self._on_batch:
            self._on_batch(size)
        start = 0
        for pending in batch:
            pending.result = {name: value[start : start + pending.size] for name, value in outputs.items()}
            start += pending.size
            pending.done.set()
