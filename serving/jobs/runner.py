"""Scores the chunks of any job, on every worker of every replica that shares the job store.

Each of a worker's ``concurrency`` threads loops: claim a chunk (a short
transaction), score it while renewing its lease, record its result (another
short transaction), and assemble any job whose chunks are all done. A worker
or replica that dies leaves leases that run out; another claims those chunks
again. Finished jobs are deleted after the retention time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid

from serving.jobs.store import MAX_CLAIMS, Chunk, JobStore, StoreUnavailable

log = logging.getLogger("glue_tf.serving")
IDLE_POLL_S = 1.0
PURGE_EVERY_S = 60.0
STOP_WAIT_S = 30.0  # how long stop() waits for each thread to finish the chunk it holds


class Superseded(Exception):
    """The chunk's lease ran out and another worker took it over."""


class JobRunner:
    """``score(job_id, chunk, keep_alive) -> result`` scores one chunk (calling ``keep_alive()`` between
    batches); ``assemble(job_id) -> result`` builds a job's result from its chunks' results."""

    def __init__(self, store: JobStore, score, assemble, concurrency: int = 2, lease_seconds: float = 30.0,
                 retention_seconds: float = 7 * 86400.0):
        self.store = store
        self.score = score
        self.assemble = assemble
        self.lease_seconds = lease_seconds
        self.retention_seconds = retention_seconds
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_purge = 0.0
        self._threads = [threading.Thread(target=self._loop, name=f"job-{i}", daemon=True) for i in range(concurrency)]
        for thread in self._threads:
            thread.start()

    def wake(self) -> None:
        """A job was just created: look for work now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stops claiming; returns once the threads have finished what they held (or after ``STOP_WAIT_S`` each)."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(STOP_WAIT_S)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.step()
            except StoreUnavailable as error:
                log.warning("%s; retrying", error)
                busy = False
            except Exception:  # noqa: BLE001 - the loop must outlive a bug in one job
                log.exception("job runner step failed")
                busy = False
            if not busy:
                self._wake.wait(IDLE_POLL_S)
                self._wake.clear()

    def step(self) -> bool:
        """Does one piece of work; False when there was none."""
        for job_id in self.store.complete_jobs():
            self._assemble(job_id)
        self._purge()
        chunk = self.store.claim(self.owner, self.lease_seconds)
        if chunk is None:
            return False
        if chunk.claims > MAX_CLAIMS:
            self.store.fail(chunk.job_id, f"abandoned: the workers scoring chunk {chunk.idx} stopped "
                                          f"{chunk.claims - 1} times")
            return True
        if chunk.claims > 1:
            log.warning("job %s chunk %d: lease ran out; taking it over (claim %d)", chunk.job_id, chunk.idx,
                        chunk.claims)
        self._score(chunk)
        return True

    def _score(self, chunk: Chunk) -> None:
        renewed = [time.monotonic()]

        def keep_alive() -> None:
            if time.monotonic() - renewed[0] > self.lease_seconds / 3:
                if not self.store.renew(chunk, self.owner, self.lease_seconds):
                    raise Superseded()
                renewed[0] = time.monotonic()

        try:
            result = self.score(chunk.job_id, chunk, keep_alive)
        except Superseded:
            return
        except StoreUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - the job fails, the worker lives
            log.exception("job %s failed in chunk %d", chunk.job_id, chunk.idx)
            self.store.fail(chunk.job_id, f"{type(error).__name__}: {error}")
            return
        if self.store.record(chunk, self.owner, result):
            self._wake.set()  # the job may be complete now

    def _assemble(self, job_id: str) -> None:
        try:
            result = self.assemble(job_id)
        except StoreUnavailable:
            raise
        except Exception as error:  # noqa: BLE001
            log.exception("job %s: assembling its result failed", job_id)
            self.store.fail(job_id, f"{type(error).__name__}: {error}")
            return
        self.store.finish(job_id, result)

    def _purge(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < PURGE_EVERY_S:
            return
        self._last_purge = now
        removed = self.store.purge(self.retention_seconds)
        if removed:
            log.info("deleted %d finished jobs older than %.0f s", removed, self.retention_seconds)
