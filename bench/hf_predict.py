"""Hugging Face's answer to ``glue-tf predict``: a TSV of texts in, a TSV of predictions out.

The contender ``bench.predict_speed`` times as a whole process (start-up
included), the way a user would write it with transformers: the checkpoint
folder loaded with ``AutoModelForSequenceClassification`` (a fresh classifier
head: speed is what is compared, not answers), dynamic padding (each batch
padded to its own longest text), batches of 64 in file order, under
``torch.inference_mode``, at Hugging Face's best precision on this CPU: bf16
autocast where the CPU has bf16 units (``glue_tf.precision``'s reading of
``/proc/cpuinfo``, the one test of bf16 hardware), float32 elsewhere.

    python -m bench.hf_predict --backbone models/pretrained/all-minilm-l6-v2 \
        --input sentences.tsv --output predictions.tsv [--fields sentence] [--precision best]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import sys

from bench.common import INFERENCE_BATCH, SEED


def best_precision() -> tuple[str, str]:
    """``("bfloat16" | "float32", why)``: bf16 autocast only where this CPU has bf16 units."""
    from glue_tf import precision

    units, why = precision.bf16_support(precision.Machine.from_cpu())  # the CPU's flags; this contender runs on the CPU
    return ("bfloat16" if units else "float32"), why


def read_columns(path: str, fields: list[str]) -> dict[str, list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return {field: [row[field] for row in rows] for field in fields}


def predict(backbone: str, columns: dict[str, list[str]], precision: str, max_length: int = 128):
    """Label ids and probabilities for every row, in file order."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=2).eval()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bfloat16" else contextlib.nullcontext()
    size = len(next(iter(columns.values())))
    labels, probabilities = [], []
    with torch.inference_mode(), autocast:
        for start in range(0, size, INFERENCE_BATCH):
            texts = [column[start : start + INFERENCE_BATCH] for column in columns.values()]
            inputs = tokenizer(*texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            probs = torch.softmax(model(**inputs).logits.float(), dim=-1)
            labels.extend(probs.argmax(dim=-1).tolist())
            probabilities.extend(probs.tolist())
    return labels, probabilities


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", required=True, help="a Hugging Face checkpoint folder")
    parser.add_argument("--input", required=True, help="TSV with a header naming --fields")
    parser.add_argument("--output", required=True)
    parser.add_argument("--fields", default="sentence", help="comma list of the text columns, in order")
    parser.add_argument("--precision", choices=["best", "float32", "bfloat16"], default="best")
    args = parser.parse_args(argv)
    precision, why = best_precision() if args.precision == "best" else (args.precision, "requested")
    labels, probabilities = predict(args.backbone, read_columns(args.input, args.fields.split(",")), precision)
    with open(args.output, "w", encoding="utf-8") as out:
        out.write("label_id\tprobabilities\n")
        for label, probs in zip(labels, probabilities):
            out.write(f"{label}\t{','.join(f'{p:.6f}' for p in probs)}\n")
    # The last line, which bench.predict_speed reads: the precision first.
    print(f"hf_predict: {precision} ({why}); {len(labels)} rows -> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
