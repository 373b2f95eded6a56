"""This machine's achievable matrix-product rate: the ceiling the step profile is measured against.

    python -m bench.roofline [--tokens 512,1536] [--json-out runs/bench/roofline.jsonl]

Times matrix products at MiniLM's own shapes (``tokens x 384 x 384``, ``tokens x 384 x
1536``, ``tokens x 1536 x 384``: the attention and feed-forward layers, and the weight
gradients' ``384 x tokens x 384``-like products of the backward pass) and one large square
product, for TensorFlow (oneDNN on and off: each in its own process, since TensorFlow reads
the setting once) and PyTorch, in float32 and, where the CPU has bf16 units, bfloat16. One
JSON line each, with GFLOP/s, the CPU model and flags. ``bench/benchmarks_doc.py`` divides
each profiled step's matrix-product FLOPs (:func:`matmul_flops`) by these rates.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from bench.common import BACKBONE, ONEDNN, append_json_lines, child_or_parent, child_rows, machine, onednn_states

MARK = "ROOFLINE "
SQUARE = 2048
HIDDEN, INTERMEDIATE = 384, 1536  # MiniLM-L6's widths: the shapes timed (matmul_flops reads the config)


def bert_config(backbone: str = BACKBONE) -> dict:
    """The sizes :func:`matmul_flops` needs, from a Hugging Face BERT checkpoint's ``config.json``."""
    from pathlib import Path

    config = json.loads((Path(backbone) / "config.json").read_text())
    return {key: config[key] for key in ("num_hidden_layers", "hidden_size", "intermediate_size",
                                         "num_attention_heads")}


def matmul_flops(config: dict, length: int, batch: int, train: bool = True, labels: int = 2) -> int:
    """The matrix-product FLOPs of one forward pass (``train``: forward and backward, the backward
    counted as twice the forward) of a BERT classifier on ``batch`` rows of ``length`` tokens.

    Per layer: the query, key, value and output projections (four ``tokens x h x h``), the
    feed-forward pair (``tokens x h x i`` and ``tokens x i x h``), and per head the scores
    (``length x d x length``) and their weighting of the values (``length x length x d``);
    then the pooler (``batch x h x h``) and the classifier (``batch x h x labels``). A product
    ``m x k x n`` is ``2 m k n`` FLOPs. Embedding lookups, softmax, norms and the element-wise
    rest are not matrix products and are left out.
    """
    h, i, heads = config["hidden_size"], config["intermediate_size"], config["num_attention_heads"]
    tokens = batch * length
    layer = 2 * tokens * h * h * 4 + 2 * tokens * h * i * 2 + 2 * batch * heads * length * length * (h // heads) * 2
    forward = config["num_hidden_layers"] * layer + 2 * batch * h * h + 2 * batch * h * labels
    return 3 * forward if train else forward


def shapes(tokens: int) -> list[tuple[int, int, int]]:
    """``(m, k, n)`` of a layer's products at ``tokens`` rows: forward (``x @ w``), input gradient
    (``dy @ w.T``) and weight gradient (``x.T @ dy``) of the 384x384 and 384x1536 weights."""
    products = []
    for k, n in ((HIDDEN, HIDDEN), (HIDDEN, INTERMEDIATE), (INTERMEDIATE, HIDDEN)):
        products += [(tokens, k, n), (tokens, n, k), (k, tokens, n)]
    return list(dict.fromkeys(products))


def _rate(product, m: int, k: int, n: int, budget: float) -> float:
    """GFLOP/s of ``product()`` (one ``m x k @ k x n``), the best of repeated timings over ``budget`` seconds."""
    product()
    best, spent = float("inf"), 0.0
    while spent < budget:
        started = time.perf_counter()
        product()
        elapsed = time.perf_counter() - started
        best, spent = min(best, elapsed), spent + elapsed
    return 2 * m * k * n / best / 1e9


def tensorflow_rates(products, dtypes: list[str], budget: float) -> list[dict]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    rows = []
    for dtype in dtypes:
        for m, k, n in products:
            a, b = tf.random.normal((m, k), dtype=dtype), tf.random.normal((k, n), dtype=dtype)
            matmul = tf.function(lambda a, b: tf.linalg.matmul(a, b))
            rate = _rate(lambda: matmul(a, b).numpy(), m, k, n, budget)
            rows.append({"framework": "tensorflow", "onednn": os.environ.get(ONEDNN) == "1", "dtype": dtype,
                         "m": m, "k": k, "n": n, "gflops": round(rate, 1)})
    return rows


def torch_rates(products, dtypes: list[str], budget: float) -> list[dict]:
    import torch

    rows = []
    for dtype in dtypes:
        for m, k, n in products:
            a, b = torch.randn(m, k, dtype=getattr(torch, dtype)), torch.randn(k, n, dtype=getattr(torch, dtype))
            with torch.inference_mode():
                rate = _rate(lambda: torch.matmul(a, b), m, k, n, budget)
            rows.append({"framework": "torch", "dtype": dtype, "m": m, "k": k, "n": n, "gflops": round(rate, 1)})
    return rows


def _dtypes(here: dict) -> list[str]:
    from glue_tf import precision

    if set(precision.CPU_BF16_FLAGS) & set(here["isa"]):
        return ["float32", "bfloat16"]
    print(f"bfloat16 skipped: {here['cpu_model']} has no bf16 units (flags {'/'.join(here['isa'])})", file=sys.stderr)
    return ["float32"]


def _child(argv: list[str]) -> None:
    framework, tokens, dtypes, budget = argv[0], argv[1], argv[2].split(","), float(argv[3])
    products = [shape for t in map(int, tokens.split(",")) for shape in shapes(t)] + [(SQUARE, SQUARE, SQUARE)]
    products = list(dict.fromkeys(products))
    for row in (tensorflow_rates if framework == "tensorflow" else torch_rates)(products, dtypes, budget):
        print(MARK + json.dumps(row), flush=True)


def main(argv=None) -> int:
    return child_or_parent(argv, _child, _measure)


def _measure(argv: list[str]) -> int:
    """In the parent: each framework's rates in its own child process, as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", default="512,1536", help="rows of the model's products: batch 32 x 16 and x 48")
    parser.add_argument("--onednn", default="on,off", help="TensorFlow's oneDNN kernels: on, off or on,off")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of timing per product (best one kept)")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    here = machine()
    dtypes = ",".join(_dtypes(here))
    runs = [("tensorflow", state) for state in onednn_states(args.onednn)] + [("torch", None)]
    cpu = {"cpu_model": here["cpu_model"], "isa": here["isa"]}
    for framework, state in runs:
        rows = child_rows("roofline", MARK, [framework, args.tokens, dtypes, str(args.budget)], state, framework)
        for row in rows:
            print(json.dumps({**row, **cpu}), flush=True)
        append_json_lines(args.json_out, [{"kind": "roofline", **row} for row in rows], here)
    return 0


if __name__ == "__main__":
    sys.exit(main())
