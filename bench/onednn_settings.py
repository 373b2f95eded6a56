"""The two oneDNN settings TensorFlow reads that glue-tf leaves at their defaults, timed on the training step.

    python -m bench.onednn_settings --rounds 3

``TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD=1`` lets the calling thread work in oneDNN's
thread pool; ``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1`` makes oneDNN allocate with malloc rather
than TensorFlow's allocator. Each setting runs in a fresh process (TensorFlow reads them once),
with oneDNN on as ``glue-tf train`` runs it, timing the step of ``bench/op_profile.py``
(forward, backward, clipped fused AdamW) at batch 32 x ``--length``, in alternating rounds
(:func:`bench.common.alternating_rounds`). A setting is worth adopting only where its median
beats the default's in every round's comparison, not on one lucky round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench.common import BACKBONE, ONEDNN, REPO, alternating_rounds, append_json_lines, machine, module_command

SETTINGS = {
    "default": {},
    "caller-thread": {"TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD": "1"},
    "system-allocator": {"TF_ONEDNN_USE_SYSTEM_ALLOCATOR": "1"},
}
MARK = "onednn-step:"


def child(backbone: str, length: int, steps: int) -> None:
    """Times the step in this process, under the environment its parent set; prints one marked JSON line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from bench.op_profile import compiled_step

    step = compiled_step(backbone, "float32", length)
    for _ in range(3):
        step().numpy()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step().numpy()
        times.append(time.perf_counter() - started)
    print(MARK + json.dumps({"median_ms": round(1000 * statistics.median(times), 1),
                             "min_ms": round(1000 * min(times), 1)}), flush=True)


def run_setting(name: str, args) -> dict:
    env = {**os.environ, ONEDNN: "1", **SETTINGS[name]}
    command = module_command("onednn_settings", "--child", "--length", str(args.length), "--steps", str(args.steps))
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env)
    rows = [json.loads(line[len(MARK):]) for line in done.stdout.splitlines() if line.startswith(MARK)]
    return rows[0] if rows else {"error": " | ".join(done.stderr.strip().splitlines()[-2:])}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backbone", default=BACKBONE)
    parser.add_argument("--length", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    if args.child:
        child(args.backbone, args.length, args.steps)
        return 0
    runs = {name: lambda name=name: run_setting(name, args) for name in SETTINGS}
    found = alternating_rounds(runs, args.rounds, on_record=lambda name, record: print(
        json.dumps({"setting": name, **record}), flush=True))
    medians = {name: statistics.median(r["median_ms"] for r in records if "median_ms" in r)
               for name, records in found.items() if any("median_ms" in r for r in records)}
    summary = {"kind": "onednn-settings", "length": args.length, "rounds": args.rounds, "median_step_ms": medians,
               "vs_default": {name: round(medians["default"] / ms, 3) for name, ms in medians.items()
                              if name != "default" and "default" in medians}}
    print(json.dumps(summary), flush=True)
    append_json_lines(args.json_out, [{"kind": "onednn-setting", "setting": name, **r}
                                      for name, records in found.items() for r in records] + [summary], machine())
    return 0


if __name__ == "__main__":
    sys.exit(main())
