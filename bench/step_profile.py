"""Where a fine-tuning step's time goes, TensorFlow beside PyTorch, at fixed batch shapes.

    python -m bench.step_profile --lengths 16,32,64

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
import json
import os
import sys
import time

from bench.common import (BACKBONE, ONEDNN, TRAIN_BATCH, append_json_lines, child_or_parent, child_rows, machine,
                          onednn_states, profiled_model)

MARK = "PROFILE "


def _timeit(function, repeats: int) -> float:
    function()
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def _tensorflow_gradients(task_model, model):
    """The traced forward+backward of ``model``: ``(x, y) -> gradients``, the embeddings' sparse as fit's are."""
    import tensorflow as tf

    loss_fn, variables = task_model.loss(), model.trainable_variables

    def gradients(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return tape.gradient(loss, variables)

    return gradients


def tensorflow_rows(backbone: str, length: int, repeats: int, precision: str) -> list[dict]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    task_model, model, x, y = profiled_model(backbone, precision, length)
    gradients = _tensorflow_gradients(task_model, model)
    rows = []
    for jit in (False, True):
        forward = tf.function(lambda x: model(x, training=False), jit_compile=jit)
        backward = tf.function(lambda x, y: [tf.convert_to_tensor(g) for g in gradients(x, y)], jit_compile=jit)
        rows.append({"step": "forward", "xla": jit, "seconds": _timeit(lambda: forward(x).numpy(), repeats)})
        rows.append({"step": "forward+backward", "xla": jit,
                     "seconds": _timeit(lambda: backward(x, y)[0].numpy(), repeats)})
    rows.append(input_pipeline_row(length))
    return rows


def _tensorflow_updates(backbone: str, length: int) -> dict:
    """``name -> update()``: the recipe's clipped AdamW on one batch's gradients, each ``optimizer_apply``."""
    import dataclasses

    import tensorflow as tf

    task_model, model, x, y = profiled_model(backbone, "float32", length)
    variables = model.trainable_variables
    grads = tf.function(_tensorflow_gradients(task_model, model))(x, y)
    updates = {}
    for apply, name in (("keras", "Keras AdamW + clip"), ("xla", "fused AdamW (XLA apply)"),
                        ("raw", "fused AdamW (raw ops)")):
        recipe = dataclasses.replace(task_model, config=dataclasses.replace(task_model.config, optimizer_apply=apply))
        optimizer = recipe.optimizer(1000)
        optimizer.build(variables)
        step = tf.function(lambda g, optimizer=optimizer: optimizer.apply_gradients(zip(g, variables)))
        updates[f"tensorflow: {name}"] = lambda step=step: step(grads)
    return updates


def _torch_updates(backbone: str, length: int) -> dict:
    """``name -> update()``: PyTorch's AdamW after ``clip_grad_norm_``, on one batch's gradients, as Hugging
    Face's trainer runs it (``foreach``, PyTorch's CPU default) and with ``fused=True``."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=2)
    x = torch.randint(1000, 20000, (TRAIN_BATCH, length))
    model(input_ids=x, attention_mask=torch.ones_like(x), labels=torch.randint(0, 2, (TRAIN_BATCH,))).loss.backward()
    updates = {}
    for kind in ("foreach", "fused"):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, **{kind: True})

        def update(optimizer=optimizer):
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()

        updates[f"torch: AdamW ({kind}) + clip_grad_norm_"] = update
    return updates


def update_rows(backbone: str, length: int, repeats: int, rounds: int) -> list[dict]:
    """The clipped AdamW update at batch 32 x ``length``, TensorFlow's three ways and PyTorch's, in this one
    process: ``rounds`` rounds that alternate the contenders, ``repeats`` updates each; the median round."""
    import statistics

    updates = {**_tensorflow_updates(backbone, length), **_torch_updates(backbone, length)}
    seconds = {name: [] for name in updates}
    for _ in range(rounds):
        for name, update in updates.items():
            seconds[name].append(_timeit(update, repeats))
    return [{"step": "optimizer (clip 1.0)", "update": name, "xla": "XLA apply" in name, "rounds": rounds,
             "seconds": statistics.median(times)} for name, times in seconds.items()]


def input_pipeline_row(length: int) -> dict:
    """The input pipeline alone (``features.batches_dataset``), per batch, on lengths up to ``length``."""
    import numpy as np

    from glue_tf import features

    rng = np.random.default_rng(1)
    lengths = rng.integers(max(2, length // 2), length + 1, TRAIN_BATCH * 200).astype(np.int32)
    encoded = features.EncodedSplit(
        token_ids=rng.integers(1000, 20000, lengths.sum()).astype(np.int32),
        segment_ids=np.zeros(lengths.sum(), np.int32), lengths=lengths,
        labels=rng.integers(0, 2, lengths.size), idx=np.arange(lengths.size),
    )
    plan = features.batch_plan(lengths, TRAIN_BATCH, seed=0)
    started = time.perf_counter()
    for _ in features.batches_dataset(encoded, plan):
        pass
    return {"step": "input pipeline (per batch)", "xla": False, "seconds": (time.perf_counter() - started) / len(plan)}


def torch_rows(backbone: str, length: int, repeats: int, precision: str) -> list[dict]:
    import contextlib

    import torch
    from transformers import AutoModelForSequenceClassification

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bfloat16" else contextlib.nullcontext()

    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=2)
    x = torch.randint(1000, 20000, (TRAIN_BATCH, length))
    mask = torch.ones(TRAIN_BATCH, length, dtype=torch.long)
    y = torch.randint(0, 2, (TRAIN_BATCH,))
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
    return rows


def _precisions(requested: str) -> list[str]:
    if requested != "auto":
        return requested.split(",")
    from glue_tf import precision

    return ["float32", "bfloat16"] if precision.Machine.from_cpu().bf16_units else ["float32"]


def _child(argv: list[str]) -> None:
    """In the child process: one framework's rows at one length and precision, marked for the parent
    (``update``: both frameworks' updates, ``precision`` standing for the rounds)."""
    framework, backbone, length, repeats, precision = argv[0], argv[1], int(argv[2]), int(argv[3]), argv[4]
    if framework == "update":
        rows, precision = update_rows(backbone, length, repeats, int(precision)), "float32"
    else:
        rows = (tensorflow_rows if framework == "tensorflow" else torch_rows)(backbone, length, repeats, precision)
    onednn = {"onednn": os.environ[ONEDNN] == "1"} if framework != "torch" else {}
    for row in rows:
        print(MARK + json.dumps({"framework": framework, "length": length, "precision": precision, **onednn, **row}),
              flush=True)


def _measure(args, framework: str, state: str | None, length: int, precision: str) -> list[dict]:
    """One child process's rows, in milliseconds and tokens/s (none if it failed: its error goes to stderr)."""
    found = child_rows("step_profile", MARK, [framework, args.backbone, str(length), str(args.repeats), precision],
                       state, f"{framework} {precision} L={length}")
    for row in found:
        row["ms"] = round(1000 * row.pop("seconds"), 1)
        row["tokens_per_second"] = round(TRAIN_BATCH * length / (row["ms"] / 1000))
    return found


def main(argv=None) -> int:
    return child_or_parent(argv, _child, _profile)


def _profile(argv: list[str]) -> int:
    """In the parent: every piece at every length in child processes, as JSON lines, then the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default=BACKBONE)
    parser.add_argument("--lengths", default="16,32,64")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--onednn", default="on,off", help="TensorFlow's oneDNN kernels: on, off or on,off")
    parser.add_argument("--precisions", default="auto",
                        help="float32, bfloat16, or both; auto: bfloat16 too where the CPU has bf16 units")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the optimizer updates")
    parser.add_argument("--parts", default="steps,update",
                        help="steps: forward, backward, input pipeline per framework; update: the optimizer updates "
                             "side by side in one process (float32 weights and gradients, as every precision trains)")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    states = onednn_states(args.onednn)
    parts = args.parts.split(",")
    runs = [("tensorflow", state) for state in states] + [("torch", None)] if "steps" in parts else []
    rows, here = [], machine()
    cpu = {"cpu_model": here["cpu_model"], "isa": here["isa"]}
    for length in map(int, args.lengths.split(",")):
        measured = [(framework, state, length, precision) for precision in _precisions(args.precisions)
                    for framework, state in runs]
        measured += [("update", states[0], length, str(args.rounds))] if "update" in parts else []
        for framework, state, length, precision in measured:
            for row in _measure(args, framework, state, length, precision):
                rows.append(row)
                print(json.dumps({**row, **cpu}), flush=True)
                append_json_lines(args.json_out, [{"kind": "profile", **row}], here)
    print("\n| length | precision | framework | oneDNN | step | XLA | ms | tokens/s |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        onednn = {True: "on", False: "off"}.get(r.get("onednn"), "")
        step = f"{r['step']}: {r['update']}" if "update" in r else r["step"]
        print(f"| {r['length']} | {r['precision']} | {r['framework']} | {onednn} | {step} | {'on' if r['xla'] else 'off'} "
              f"| {r['ms']} | {r['tokens_per_second']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
