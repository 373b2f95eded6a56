"""Serving throughput and latency: the chosen signature against ``serving_default``, batching on and off.

Starts the real service (``serving/gunicorn.conf.py``) on a loopback port over
one task's exports of a training run, sends single-instance requests of real
dev sentences to TF Serving's REST route ``/v1/models/<task>:predict`` from 1,
8 and 32 concurrent keep-alive clients for a fixed time each, and prints one
JSON line per measurement and the tables. Everything runs in one invocation,
so the ratios compare like with like:

- **signatures**, batching on: requests that name no signature run the one the
  service chose (``glue_tf.exports.choice``, ``GLUE_TF_PRECISION`` unset:
  auto); requests naming ``"signature_name": "serving_default"`` run the
  portable path of the same loaded version. The issue's targets: at 32
  clients the chosen signature at 2x the requests/s of ``serving_default``
  or more with p99 at most 300 ms; at 1 client its p50 no worse.
- **batching** on against off, for the chosen signature.
- the **in-process ceiling** of each signature: the SavedModel called in this
  process with random batches of the server's maximum batch size, after its
  warm-up requests.

    python -m bench.serving_load --model-dir runs/minilm-full --task sst2 --glue-dir ../shared/glue_data
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import GLUE_DIR, append_json_lines
from glue_tf.exports import saved_model, signatures, store
from glue_tf.data.sources import TsvSource
from glue_tf.tasks import get_task
from tests.support.server import Server, request

CHOSEN = "chosen"  # rows whose requests name no signature: the service's choice
TARGET_RATIO, TARGET_P99_MS = 2.0, 300.0


def in_process_ceiling(path, task, examples, batch_size, seconds, signature_name) -> dict:
    import tensorflow as tf

    loaded, _ = saved_model.load_signatures(path)
    signature = loaded[signature_name]
    for columns in signatures.warmup_requests(path):  # every compiled shape, as the service warms up
        signature(**{field: tf.constant(texts) for field, texts in columns.items()})
    rng = random.Random(0)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        batch = rng.sample(examples, batch_size)
        signature(**{f: tf.constant([e[f] for e in batch]) for f in task.text_features})
        done += batch_size
    elapsed = time.perf_counter() - started
    return {"mode": "in-process", "signature": signature_name, "batch_size": batch_size,
            "instances_per_s": done / elapsed}


def load(base_port, task, examples, clients, seconds, signature_name: str | None = None) -> dict:
    latencies, errors, lock = [], [], threading.Lock()
    stop_at = time.perf_counter() + seconds
    named = {"signature_name": signature_name} if signature_name else {}

    def client(seed):
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", base_port, timeout=60)
        mine = []
        while time.perf_counter() < stop_at:
            example = rng.choice(examples)
            body = json.dumps({**named, "instances": [{f: example[f] for f in task.text_features}]})
            t0 = time.perf_counter()
            conn.request("POST", f"/v1/models/{task.name}:predict", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - t0)
            if response.status != 200:
                with lock:
                    errors.append(response.status)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": len(errors),
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
    }


def task_only_view(version: Path, folder: Path) -> Path:
    """A model folder holding only ``version`` of one task, so the server loads and warms up one model.

    Files are hard-linked where the file system allows (else copied): the
    service refuses symlinks that lead out of its model folder.
    """
    def link_or_copy(source, target):
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    shutil.copytree(version, folder / "models" / version.parent.name / version.name, copy_function=link_or_copy)
    return folder


def measure_server(view, state, task, examples, args, batching: bool, signature_rows) -> tuple[list[dict], str]:
    """Rows for one server: each ``(label, signature_name or None)`` in ``signature_rows`` at every client count."""
    server = Server(view, state, workers=args.workers, GLUE_TF_BATCHING="1" if batching else "0",
                    GLUE_TF_MAX_BATCH_SIZE=args.max_batch_size, GLUE_TF_THREADS=64, GLUE_TF_ACCESS_LOG="",
                    GLUE_TF_MAX_QUEUE=100000)
    rows = []
    try:
        started = time.perf_counter()
        server.wait_until_up(timeout=600)  # /readyz: after the version's warm-up
        ready_seconds = time.perf_counter() - started
        chosen = request(server.base, "GET", "/v1/tasks")[2]["tasks"][task.name]["signature"]
        for label, name in signature_rows:
            load(server.port, task, examples, 4, 3.0, name)  # warm-up: the batcher's shapes, the connections
            for clients in [int(c) for c in args.clients.split(",")]:
                row = {"kind": "serving", "task": task.name, "batching": batching, "workers": args.workers,
                       "requested": label, "signature": name or chosen, "ready_seconds": round(ready_seconds, 1),
                       **load(server.port, task, examples, clients, args.seconds, name)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        server.stop()
    return rows, chosen


def verdict(rows: list[dict]) -> dict:
    """The issue's service targets, from the batching-on rows of the chosen signature and serving_default."""
    on = {(r["requested"], r["clients"]): r for r in rows if r["batching"]}
    out = {"kind": "serving-verdict"}
    many = max((c for _, c in on), default=None)
    if (CHOSEN, many) in on and (signatures.DEFAULT, many) in on:
        chosen, default = on[(CHOSEN, many)], on[(signatures.DEFAULT, many)]
        out.update(clients=many, ratio=round(chosen["requests_per_s"] / default["requests_per_s"], 2),
                   chosen_p99_ms=round(chosen["p99_ms"], 1))
        out["throughput_met"] = out["ratio"] >= TARGET_RATIO and chosen["p99_ms"] <= TARGET_P99_MS
    if (CHOSEN, 1) in on and (signatures.DEFAULT, 1) in on:
        out.update(one_client_p50_ms={"chosen": round(on[(CHOSEN, 1)]["p50_ms"], 1),
                                      signatures.DEFAULT: round(on[(signatures.DEFAULT, 1)]["p50_ms"], 1)})
        out["one_client_met"] = on[(CHOSEN, 1)]["p50_ms"] <= on[(signatures.DEFAULT, 1)]["p50_ms"]
    return out


def tables(records: list[dict]) -> str:
    """The service's tables from this script's JSON records (also what ``bench/benchmarks_doc.py`` renders)."""
    rows = [r for r in records if r.get("kind") == "serving"]
    if not rows:
        return ""
    summary = next((r for r in records if r.get("kind") == "serving-verdict"), {})
    ceilings = ", ".join(f"{c['signature']} {c['instances_per_s']:.0f}" for c in records
                         if c.get("kind") == "serving-ceiling")
    chosen = next((r["signature"] for r in rows if r["requested"] == CHOSEN), "?")
    first = rows[0]
    lines = [
        f"Task {first['task']}, export {first.get('export')}, {first['workers']} gunicorn worker(s), single-instance "
        f"requests of real dev sentences to `/v1/models/{first['task']}:predict`, "
        f"{first.get('seconds_per_row', 0):.0f} s per row; the service chose `{chosen}`; in-process ceiling "
        f"(instances/s): {ceilings}.",
        "",
        "| batching | signature | clients | requests/s | p50 ms | p99 ms | errors | vs. serving_default | vs. batching off |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    index = {(r["batching"], r["requested"], r["clients"]): r for r in rows}
    for r in rows:
        default = index.get((r["batching"], signatures.DEFAULT, r["clients"]))
        off = index.get((False, r["requested"], r["clients"]))
        ratio = lambda ref: f"{r['requests_per_s'] / ref['requests_per_s']:.2f}x" if ref else "–"  # noqa: E731
        shown = r["signature"] + (" (chosen)" if r["requested"] == CHOSEN else " (named)")
        lines.append(f"| {'on' if r['batching'] else 'off'} | {shown} | {r['clients']} | {r['requests_per_s']:.1f} | "
                     f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} | {ratio(default)} | {ratio(off)} |")
    if "ratio" in summary:
        lines += ["", f"Targets: at {summary['clients']} clients {summary['ratio']:.2f}x serving_default's requests/s "
                      f"(≥ {TARGET_RATIO}x) with p99 {summary['chosen_p99_ms']:.0f} ms (≤ {TARGET_P99_MS:.0f}): "
                      f"{'met' if summary['throughput_met'] else 'not met'}."]
    if "one_client_p50_ms" in summary:
        p50 = summary["one_client_p50_ms"]
        lines.append(f"At 1 client, p50 {p50['chosen']:.1f} ms against serving_default's {p50[signatures.DEFAULT]:.1f}: "
                     f"{'met' if summary['one_client_met'] else 'not met'}.")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="a training run's --out folder")
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--glue-dir", default=GLUE_DIR)
    parser.add_argument("--seconds", type=float, default=20.0, help="per measurement")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--no-batching-off", action="store_true", help="skip the batching-off server")
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--json-out", help="append the JSON lines to this file")
    args = parser.parse_args(argv)

    task = get_task(args.task)
    path = store.latest(args.model_dir, task.predicted_by)
    if path is None:
        parser.error(f"no export of {task.predicted_by} under {args.model_dir}/models/")
    examples = TsvSource(args.glue_dir).examples(task, task.dev_splits[0])
    records, rows = [], []
    with tempfile.TemporaryDirectory(prefix="serving-load-") as tmp:
        view = task_only_view(path, Path(tmp) / "run")
        on, chosen = measure_server(view, Path(tmp) / "state-on", task, examples, args, True,
                                    [(CHOSEN, None), (signatures.DEFAULT, signatures.DEFAULT)])
        rows += on
        if not args.no_batching_off:
            rows += measure_server(view, Path(tmp) / "state-off", task, examples, args, False, [(CHOSEN, None)])[0]
    for name in dict.fromkeys((chosen, signatures.DEFAULT)):
        ceiling = in_process_ceiling(path, task, examples, args.max_batch_size, args.seconds, name)
        records.append({"kind": "serving-ceiling", "task": task.name, **ceiling})
        print(json.dumps(records[-1]), flush=True)
    summary = {"task": task.name, **verdict(rows)}
    print(json.dumps(summary), flush=True)
    records = [{**record, "seconds_per_row": args.seconds, "export": str(path)} for record in [*rows, *records, summary]]
    text = tables(records)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    append_json_lines(args.json_out, records)
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
