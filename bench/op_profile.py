"""Where one TensorFlow training step's CPU time goes, op by op: forward, backward and the update.

    python -m bench.op_profile --precision bfloat16 --length 16

Builds the MiniLM classifier as ``glue-tf train`` does (``--precision``: Keras'
``float32`` or ``mixed_bfloat16`` policy), traces one step (forward, backward,
the clipped fused AdamW update) at batch 32 and a fixed length, runs it under
TensorFlow's profiler and sums each op's time over the compute threads, per part
of the step and op type. Times are CPU time summed over threads (about the wall
time times the threads busy), per step. ``bench/step_profile.py`` times the parts
side by side with PyTorch; this says what is inside them.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import BACKBONE, TRAIN_BATCH, profiled_model



def compiled_step(backbone: str, precision: str, length: int):
    """One training step of ``glue-tf train``'s recipe on a fixed random batch (forward, backward, clipped fused
    AdamW) as a ``tf.function`` returning the loss: what this profile and ``bench/onednn_settings.py`` time."""
    import tensorflow as tf

    task_model, model, x, y = profiled_model(backbone, precision, length)
    loss_fn, variables = task_model.loss(), model.trainable_variables
    optimizer = task_model.optimizer(1000)
    optimizer.build(variables)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return step


def profiled_step(backbone: str, precision: str, length: int, steps: int, trace_dir: str) -> float:
    """Runs the step ``steps`` times under the profiler; returns its wall time per step without it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    step = compiled_step(backbone, precision, length)
    for _ in range(3):
        step().numpy()
    started = time.perf_counter()
    for _ in range(steps):
        step().numpy()
    wall = (time.perf_counter() - started) / steps
    tf.profiler.experimental.start(trace_dir)
    for _ in range(steps):
        step().numpy()
    tf.profiler.experimental.stop()
    return wall


def op_times(trace_dir: str, steps: int) -> collections.Counter:
    """``(part, op type) -> ms`` per step, from the profiler's trace: compute threads only."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(next(Path(trace_dir).rglob("*.xplane.pb")).read_bytes())
    times = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name  # "scope/op_name:OpType"
                if ":" not in name or "::" in name:
                    continue  # the executor's own spans (ExecutorState::Process), which enclose the ops
                part = ("update" if name.startswith(("fused_adam", "loss_scale")) else
                        "backward" if name.startswith("gradient_tape") else "forward")
                times[(part, name.rsplit(":", 1)[1])] += event.duration_ps / 1e9 / steps
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default=BACKBONE)
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                        help="auto: bfloat16 where the CPU has bf16 units, else float32")
    parser.add_argument("--length", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    if args.precision == "auto":
        from glue_tf import precision

        args.precision = "bfloat16" if precision.Machine.from_cpu().bf16_units else "float32"
    with tempfile.TemporaryDirectory() as trace_dir:
        wall = profiled_step(args.backbone, args.precision, args.length, args.steps, trace_dir)
        times = op_times(trace_dir, args.steps)
    total = sum(times.values())
    print(f"{args.precision}, batch {TRAIN_BATCH}, length {args.length}: {1000 * wall:.0f} ms a step unprofiled; "
          f"{total:.0f} ms of op time over the compute threads per step")
    for part in ("forward", "backward", "update"):
        share = sum(v for (p, _), v in times.items() if p == part)
        print(f"  {part}: {share:.0f} ms ({100 * share / total:.0f}%)")
    print("\n| part | op | ms per step | share |\n|---|---|---|---|")
    for (part, op), value in times.most_common(args.top):
        print(f"| {part} | {op} | {value:.1f} | {100 * value / total:.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
