"""Where an idle service worker's memory goes, step by step, and what a real gunicorn worker holds.

    python -m bench.worker_memory --model-dir RUN [--task cola] [--json-out FILE]

``RUN`` is a run folder with one export of ``--task`` (``glue-tf train ... --out RUN``).
Two parts, each in fresh processes, each under two allocator settings: TensorFlow's
own (its BFC arena for large tensors) and the service's (:mod:`serving.allocator`):

- ``steps``: one interpreter does what a worker does, in order, and reads VmRSS
  and RssAnon (``/proc/self/status``) after each step: TensorFlow and
  tensorflow-text imported (the floor), the service's modules, the SavedModel
  loaded (every signature's graph and the weights), the warm-up file replayed
  on ``serving_default``, on ``serving_compiled`` (its XLA grid compiled) and on
  ``serving_bfloat16``, the token counter, a batching queue, and the heap
  trimmed. It then times calls of the largest warm-up request.
- ``worker``: one gunicorn worker (``serving/gunicorn.conf.py``) over ``RUN``,
  read once it is ready and idle.

Prints one JSON line per step and per worker, each with the machine record (CPU model).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPO, append_json_lines, machine, module_command

# Each setting: the environment its processes start with. TensorFlow's default keeps its BFC arena.
SETTINGS = {"tensorflow-default": {"TF_ONEDNN_USE_SYSTEM_ALLOCATOR": "0"}, "service": {}}
TIMED_CALLS = 5
STATUS_FIELDS = ("VmRSS", "RssAnon", "RssFile")


def memory(pid: int | str = "self") -> dict[str, float]:
    """VmRSS, RssAnon and RssFile of a process, in MiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in STATUS_FIELDS:
            found[f"{key}_mib"] = round(int(value.split()[0]) / 1024, 1)
    return found


def _steps(model_path: str, setting: str) -> None:
    """The child of ``steps``: prints a JSON line after each step of a worker's start, then a timing."""
    from glue_tf import tf_startup
    from serving import allocator

    tf_startup.prepare()
    if setting == "service":
        allocator.prepare()
        allocator.return_large_blocks()
    emit = lambda step, **extra: print(json.dumps({"step": step, **memory(), **extra}), flush=True)  # noqa: E731
    emit("python")
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    emit("tensorflow + tensorflow_text (the floor)")
    from serving import service  # noqa: F401  Flask, jsonschema, prometheus, the job store
    from glue_tf.exports import saved_model
    from glue_tf.exports import signatures as names

    emit("service modules imported")
    signatures, _ = saved_model.load_signatures(model_path)
    emit("SavedModel loaded (every signature's graph, the weights)")
    requests = names.warmup_requests(model_path)
    run = lambda name, columns: signatures[name](**{k: tf.constant(v) for k, v in columns.items()})  # noqa: E731
    for name in names.NAMES:
        started = time.perf_counter()
        for columns in requests:
            run(name, columns)
        emit(f"{name}: warm-up replayed ({len(requests)} shapes)", seconds=round(time.perf_counter() - started, 1))
    counter = saved_model.token_counter(signatures)
    if counter is not None:
        counter(*(tf.constant(texts) for texts in requests[0].values()))
        emit("token counter called")
    _batching_step(signatures[names.DEFAULT], requests[0], emit)
    allocator.trim()
    emit("heap trimmed (idle)")
    _timed(lambda: run(names.DEFAULT, requests[-1]), requests[-1], emit)


def _batching_step(signature, columns, emit) -> None:
    import tensorflow as tf

    from serving.batching import Batcher

    batcher = Batcher(lambda cols: {k: v.numpy() for k, v in signature(
        **{n: tf.constant(t) for n, t in cols.items()}).items()}, name="bench-batcher")
    batcher.submit({name: texts[:1] for name, texts in columns.items()})
    emit("batching queue started, one request answered")


def _timed(call, columns, emit) -> None:
    """Seconds per call of the largest warm-up request on ``serving_default``: what the allocator costs."""
    rows = len(next(iter(columns.values())))
    started = time.perf_counter()
    for _ in range(TIMED_CALLS):
        call()
    emit(f"after {TIMED_CALLS} timed calls of {rows} rows", seconds_per_call=round(
        (time.perf_counter() - started) / TIMED_CALLS, 3))


def steps(model_path: Path, setting: str) -> list[dict]:
    env = {**_environ(), **SETTINGS[setting]}
    result = subprocess.run(module_command("worker_memory", "--steps-of", str(model_path), "--setting", setting),
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode:
        raise RuntimeError(f"the steps child failed: {result.stderr[-3000:]}")
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    floor = next(r["RssAnon_mib"] for r in records if "floor" in r["step"])
    previous = None
    for record in records:
        record.update(part="steps", setting=setting, over_floor_anon_mib=round(record["RssAnon_mib"] - floor, 1))
        if previous:
            record["delta_anon_mib"] = round(record["RssAnon_mib"] - previous, 1)
        previous = record["RssAnon_mib"]
    return records


def worker(run_dir: Path, setting: str, idle_seconds: float) -> dict:
    """One real gunicorn worker over ``run_dir``, read ``idle_seconds`` after it is ready."""
    from tests.support.server import Server

    with tempfile.TemporaryDirectory(prefix="worker-memory-") as state:
        server = Server(run_dir, Path(state) / "state", workers=1, **SETTINGS[setting]).wait_until_up(timeout=900)
        try:
            time.sleep(idle_seconds)
            (pid,) = server.worker_pids()
            return {"part": "worker", "setting": setting, "step": "gunicorn worker, ready and idle", **memory(pid)}
        finally:
            server.stop()


def _environ() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k not in SETTINGS["tensorflow-default"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", help="a run folder holding an export of --task")
    parser.add_argument("--task", default="cola")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="how long a ready worker idles first")
    parser.add_argument("--parts", default="steps,worker", help="comma-separated: steps, worker")
    parser.add_argument("--json-out", default=None)
    parser.add_argument("--steps-of", help=argparse.SUPPRESS)  # the child process of the steps part
    parser.add_argument("--setting", default="service", choices=sorted(SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps_of:
        _steps(args.steps_of, args.setting)
        return 0
    from glue_tf.exports import store

    if not args.model_dir or store.latest(args.model_dir, args.task) is None:
        parser.error(f"--model-dir must be a run folder with an export of {args.task}")
    here, records = machine(), []
    for setting in SETTINGS:
        if "steps" in args.parts:
            records += steps(store.latest(args.model_dir, args.task), setting)
        if "worker" in args.parts:
            records.append(worker(Path(args.model_dir), setting, args.idle_seconds))
    for record in records:
        print(json.dumps({**record, "cpu_model": here["cpu_model"], "machine": here}), flush=True)
    append_json_lines(args.json_out, records, here)
    return 0


if __name__ == "__main__":
    sys.exit(main())
