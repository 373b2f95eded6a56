"""Where a fine-tuning step's time goes, TensorFlow beside PyTorch, at fixed batch shapes.

    python bench/step_profile.py --lengths 16,32,64

For each sequence length (batch 32, random token ids, the MiniLM checkpoint) it
times, in separate processes: TensorFlow forward, forward+backward (XLA off and
on), the optimizer update (glue-tf's fused AdamW, with and without global-norm
clipping) and the input pipeline alone, once with TensorFlow's oneDNN kernels on and
once with them off (``--onednn``; off is TensorFlow's own default on AVX2-only
CPUs); PyTorch forward and forward+backward. Each in float32 and, where the CPU has
bf16 units, in bfloat16 too (``--precisions``): TensorFlow under Keras'
``mixed_bfloat16`` policy (float32 variables and logits), PyTorch under bf16
autocast, as each framework's users run it. One JSON line each, then a table. The
answer to "why is the step slower than X" is in these rows, not in guesses.

The shapes are fixed, so each piece is traced for its one shape, while ``fit``
(``reduce_retracing``) runs most steps through a trace with the length left open.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 32
MARK = "PROFILE "
ONEDNN = "TF_ENABLE_ONEDNN_OPTS"  # read once, when TensorFlow is imported: set per child process


def _timeit(function, repeats: int) -> float:
    function()
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def tensorflow_rows(backbone: str, length: int, repeats: int, precision: str) -> list[dict]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf

    keras.mixed_precision.set_global_policy({"float32": "float32", "bfloat16": "mixed_bfloat16"}[precision])
    sys.path.insert(0, str(ROOT))
    from glue_tf import backbones, features, optimization
    from glue_tf import model as model_lib
    from glue_tf.tasks import get_task

    task = get_task("cola")
    backbone_model, _ = backbones.load(backbone, 128)
    model = model_lib.build(backbone_model, task)
    loss_fn = model_lib.loss_for(task)
    variables = model.trainable_variables
    rng = np.random.default_rng(0)
    x = {
        "token_ids": tf.constant(rng.integers(1000, 20000, (BATCH, length)), tf.int32),
        "segment_ids": tf.zeros((BATCH, length), tf.int32),
        "padding_mask": tf.ones((BATCH, length), tf.bool),
    }
    y = tf.constant(rng.integers(0, 2, BATCH))

    def gradients(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]

    rows = []
    for jit in (False, True):
        forward = tf.function(lambda x: model(x, training=False), jit_compile=jit)
        backward = tf.function(gradients, jit_compile=jit)
        rows.append({"step": "forward", "xla": jit, "seconds": _timeit(lambda: forward(x).numpy(), repeats)})
        rows.append({"step": "forward+backward", "xla": jit,
                     "seconds": _timeit(lambda: backward(x, y)[0].numpy(), repeats)})
    grads = tf.function(gradients)(x, y)
    for clip in (1.0, None):
        optimizer = optimization.make_optimizer(1e-4, 1000, 0.1, 0.01, clip)
        optimizer.build(variables)
        apply = tf.function(lambda g: optimizer.apply_gradients(zip(g, variables)))
        rows.append({"step": f"optimizer ({'clip 1.0' if clip else 'no clip'})", "xla": False,
                     "seconds": _timeit(lambda: apply(grads), repeats)})
    lengths = rng.integers(max(2, length // 2), length + 1, BATCH * 200).astype(np.int32)
    encoded = features.EncodedSplit(
        token_ids=rng.integers(1000, 20000, lengths.sum()).astype(np.int32),
        segment_ids=np.zeros(lengths.sum(), np.int32), lengths=lengths,
        labels=rng.integers(0, 2, lengths.size), idx=np.arange(lengths.size),
    )
    plan = features.batch_plan(lengths, BATCH, seed=0)
    started = time.perf_counter()
    for _ in features.batches_dataset(encoded, plan):
        pass
    rows.append({"step": "input pipeline (per batch)", "xla": False, "seconds": (time.perf_counter() - started) / len(plan)})
    return rows


def torch_rows(backbone: str, length: int, repeats: int, precision: str) -> list[dict]:
    import contextlib

    import torch
    from transformers import AutoModelForSequenceClassification

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bfloat16" else contextlib.nullcontext()

    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=2)
    x = torch.randint(1000, 20000, (BATCH, length))
    mask = torch.ones(BATCH, length, dtype=torch.long)
    y = torch.randint(0, 2, (BATCH,))
    model.eval()

    def forward():
        with torch.inference_mode(), autocast():
            model(input_ids=x, attention_mask=mask)

    def backward():
        model.zero_grad()
        with autocast():
            loss = model(input_ids=x, attention_mask=mask, labels=y).loss
        loss.backward()

    rows = [{"step": "forward", "xla": False, "seconds": _timeit(forward, repeats)}]
    model.train()
    rows.append({"step": "forward+backward", "xla": False, "seconds": _timeit(backward, repeats)})
    backward()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def update():
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    rows.append({"step": "optimizer (clip 1.0)", "xla": False, "seconds": _timeit(update, repeats)})
    return rows


def _precisions(requested: str) -> list[str]:
    if requested != "auto":
        return requested.split(",")
    sys.path.insert(0, str(ROOT))
    from glue_tf import precision

    return ["float32", "bfloat16"] if precision.bf16_units(gpus=[]) else ["float32"]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        framework, backbone, length, repeats, precision = argv[1], argv[2], int(argv[3]), int(argv[4]), argv[5]
        rows = (tensorflow_rows if framework == "tensorflow" else torch_rows)(backbone, length, repeats, precision)
        onednn = {"onednn": os.environ[ONEDNN] == "1"} if framework == "tensorflow" else {}
        for row in rows:
            print(MARK + json.dumps({"framework": framework, "length": length, "precision": precision, **onednn, **row}),
                  flush=True)
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default=str(ROOT / "models/pretrained/all-minilm-l6-v2"))
    parser.add_argument("--lengths", default="16,32,64")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--onednn", default="on,off", help="TensorFlow's oneDNN kernels: on, off or on,off")
    parser.add_argument("--precisions", default="auto",
                        help="float32, bfloat16, or both; auto: bfloat16 too where the CPU has bf16 units")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    states = [{"on": "1", "off": "0"}[state] for state in args.onednn.split(",")]
    runs = [("tensorflow", state) for state in states] + [("torch", None)]
    rows = []
    for length, precision in itertools.product(map(int, args.lengths.split(",")), _precisions(args.precisions)):
        for framework, state in runs:
            command = [sys.executable, __file__, "--child", framework, args.backbone, str(length), str(args.repeats),
                       precision]
            env = {**os.environ, **({ONEDNN: state} if state else {})}
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
            found = [json.loads(line[len(MARK):]) for line in done.stdout.splitlines() if line.startswith(MARK)]
            if not found:
                print(f"{framework} {precision} L={length} failed: {done.stderr.strip().splitlines()[-3:]}", file=sys.stderr)
            for row in found:
                row["ms"] = round(1000 * row.pop("seconds"), 1)
                row["tokens_per_second"] = round(BATCH * length / (row["ms"] / 1000))
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.json_out:
                    with open(args.json_out, "a", encoding="utf-8") as sink:
                        sink.write(json.dumps({"kind": "profile", **row}) + "\n")
    print("\n| length | precision | framework | oneDNN | step | XLA | ms | tokens/s |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        onednn = {True: "on", False: "off"}.get(r.get("onednn"), "")
        print(f"| {r['length']} | {r['precision']} | {r['framework']} | {onednn} | {r['step']} | {'on' if r['xla'] else 'off'} "
              f"| {r['ms']} | {r['tokens_per_second']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
