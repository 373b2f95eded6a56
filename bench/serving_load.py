"""Serving throughput and latency: gunicorn with and without request batching, beside the in-process ceiling.

Starts the real service (``serving/gunicorn.conf.py``) on a loopback port over a
training run's exports, sends single-instance ``/predict/<task>`` requests of
real dev sentences from 1, 8 and 32 concurrent keep-alive clients for a fixed
time each, and prints one JSON line per measurement and a table. The ceiling
is the same SavedModel called in-process with batches of the server's maximum
batch size. Everything runs in one invocation, so the ratios compare like with like.

    python bench/serving_load.py --model-dir runs/minilm-full --task sst2 --glue-dir ../shared/glue_data
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.server import Server  # noqa: E402

from glue_tf import export  # noqa: E402
from glue_tf.data.sources import TsvSource  # noqa: E402
from glue_tf.tasks import get_task  # noqa: E402


def in_process_ceiling(path, task, examples, batch_size, seconds) -> dict:
    import tensorflow as tf

    signature, _ = export.load(path)
    rng = random.Random(0)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        batch = rng.sample(examples, batch_size)
        signature(**{f: tf.constant([e[f] for e in batch]) for f in task.text_features})
        done += batch_size
    elapsed = time.perf_counter() - started
    return {"mode": "in-process", "batch_size": batch_size, "instances_per_s": done / elapsed}


def load(base_port, task, examples, clients, seconds) -> dict:
    latencies, errors, lock = [], [], threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(seed):
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", base_port, timeout=60)
        mine = []
        while time.perf_counter() < stop_at:
            example = rng.choice(examples)
            body = json.dumps({"instances": [{f: example[f] for f in task.text_features}]})
            t0 = time.perf_counter()
            conn.request("POST", f"/predict/{task.name}", body, {"Content-Type": "application/json"})
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="a training run's --out folder")
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--glue-dir", default=str(REPO.parent / "shared" / "glue_data"))
    parser.add_argument("--seconds", type=float, default=20.0, help="per measurement")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)

    task = get_task(args.task)
    path = export.latest(args.model_dir, task.predicted_by)
    if path is None:
        parser.error(f"no export of {task.predicted_by} under {args.model_dir}/models/")
    examples = TsvSource(args.glue_dir).examples(task, task.dev_splits[0])
    rows = []
    ceiling = in_process_ceiling(path, task, examples, args.max_batch_size, args.seconds)
    print(json.dumps({"task": task.name, "export": str(path), **ceiling}), flush=True)
    for batching in ("1", "0"):
        state = Path(args.model_dir) / f".bench-state-{batching}"
        server = Server(args.model_dir, state, workers=args.workers, GLUE_TF_BATCHING=batching,
                        GLUE_TF_MAX_BATCH_SIZE=args.max_batch_size, GLUE_TF_THREADS=64, GLUE_TF_ACCESS_LOG="",
                        GLUE_TF_MAX_QUEUE=100000)
        try:
            server.wait_until_up()
            load(server.port, task, examples, 4, 3.0)  # warm-up: traces every batch shape once
            for clients in [int(c) for c in args.clients.split(",")]:
                row = {"task": task.name, "batching": batching == "1", "workers": args.workers,
                       **load(server.port, task, examples, clients, args.seconds)}
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            server.stop()
    table = [
        f"Task {task.display_name}, export {path}, {args.workers} gunicorn worker(s), single-instance requests of "
        f"real dev sentences, {args.seconds:.0f} s per row; in-process ceiling (batch {args.max_batch_size}): "
        f"{ceiling['instances_per_s']:.0f} instances/s.",
        "",
        "| batching | clients | requests/s | p50 ms | p99 ms | errors | vs. batching off | share of ceiling |",
        "|---|---|---|---|---|---|---|---|",
    ]
    off = {r["clients"]: r for r in rows if not r["batching"]}
    for row in rows:
        ratio = row["requests_per_s"] / off[row["clients"]]["requests_per_s"]
        table.append(
            f"| {'on' if row['batching'] else 'off'} | {row['clients']} | {row['requests_per_s']:.1f} | "
            f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['errors']} | {ratio:.2f}x | "
            f"{100 * row['requests_per_s'] / ceiling['instances_per_s']:.0f}% |"
        )
    text = "\n".join(table)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
