"""The contenders of the speed benchmarks, each measured in a process of its own.

Every function here runs in a fresh subprocess (see ``bench.speed``), so
TensorFlow and PyTorch never share a process, a thread pool or a warm cache,
and returns one flat dict of figures. Every contender reads the same examples
(glue-tf's TSV reader), the same checkpoint folder, batch size, maximum length,
learning rate and step count.

Fine-tuning contenders time ``steps`` optimizer steps after ``warmup`` steps:
- ``glue-tf``: the shipped pipeline (``features.train_datasets`` and the compiled
  Keras model of ``glue-tf train``, ``glue_tf.task_model``), with and without XLA.
- ``keras-hub``: KerasHub's own recipe, ``BertTextClassifier`` with its
  preprocessor inside ``fit`` (fixed-length padding), Keras' AdamW and Keras'
  default compile (XLA "auto"), at the preprocessor's default length and at 128.
- ``hf``: Hugging Face's ``Trainer`` as ``run_glue.py`` drives it, with dynamic
  padding (its ``DataCollatorWithPadding``) or padded to the maximum length.

Inference contenders run the whole dev split in batches of 64:
- ``glue-tf-export[-sorted]``: ``serving_default`` of an export written from the
  backbone, in file order (as a client sends) or length-sorted;
- ``glue-tf-chosen`` / ``glue-tf-serving-default``: ``glue-tf evaluate``'s own
  loop on a trained export (``--model-dir``; else one written and measured here),
  running the signature ``--precision auto`` chooses, or ``serving_default``;
  ``glue-tf-serving-default-by-characters``: the same, sorted by characters as
  for an export without a token counter;
- ``hf-dynamic`` / ``hf-pad-128``: Hugging Face at its best precision on this
  CPU (bf16 autocast where it has bf16 units, float32 elsewhere).
"""

from __future__ import annotations

import os
import tempfile
import time

from bench.common import INFERENCE_BATCH, SEED, TRAIN_BATCH, recipe
from bench.hf_predict import best_precision

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _examples(glue_dir: str, task_name: str, split: str):
    from glue_tf.data.sources import TsvSource
    from glue_tf.tasks import get_task

    task = get_task(task_name)
    return task, TsvSource(glue_dir).examples(task, split)


def _figures(examples: int, real_tokens: int, computed_tokens: int, seconds: float, **extra) -> dict:
    return {
        "examples": examples,
        "seconds": round(seconds, 3),
        "examples_per_second": round(examples / seconds, 2),
        "real_tokens_per_second": round(real_tokens / seconds, 1),
        "padding_efficiency": round(real_tokens / computed_tokens, 4),
        **extra,
    }


class _StepClock:
    """Timestamps at the end of every step (Keras callback and HF TrainerCallback share it)."""

    def __init__(self):
        self.ends = []

    def mark(self):
        self.ends.append(time.perf_counter())

    def timed(self, warmup: int) -> float:
        return self.ends[-1] - self.ends[warmup - 1]


def _keras_clock():
    import keras

    clock = _StepClock()

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            clock.mark()

    return clock, Clock()


def train_glue_tf(glue_dir, task_name, backbone, steps, warmup, learning_rate, max_length, jit_compile=False):
    import keras

    from glue_tf import distribute, features, precision
    from glue_tf import model as model_lib
    from glue_tf.data.sources import TsvSource

    task_model = recipe(backbone, task_name, epochs=1, learning_rate=learning_rate, max_seq_length=max_length,
                        jit_compile=jit_compile)
    task, cfg = task_model.task, task_model.config
    policy, _ = precision.resolve(cfg.precision, precision.Machine.detect())
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(cfg.seed)
    strategy, _ = distribute.select_strategy()
    backbone_model, preprocessor = task_model.load_backbone()
    encoded = features.encode(TsvSource(glue_dir).load(task, "train"), task, preprocessor)
    model = task_model.build(task_model.total_steps(len(encoded)), loaded=(backbone_model, preprocessor)).model
    datasets, _, _ = features.train_datasets(encoded, cfg, strategy, 0, 0, model_lib.input_names(model))
    clock, callback = _keras_clock()
    model.fit(datasets[0], epochs=1, steps_per_epoch=warmup + steps, callbacks=[callback], verbose=0, shuffle=False)
    # The same batch plan train_datasets drew, to count the timed steps' tokens.
    plan = features.epoch_plan(encoded.lengths, cfg, epoch=0)[warmup : warmup + steps]
    multiple = features.XLA_WIDTH_MULTIPLE if jit_compile else 1
    real = sum(int(encoded.lengths[b].sum()) for b in plan)
    computed = sum(features.bucket_width(int(encoded.lengths[b].max()), multiple, max_length) * b.size for b in plan)
    return _figures(sum(b.size for b in plan), real, computed, clock.timed(warmup), precision=policy)


def train_keras_hub(glue_dir, task_name, backbone, steps, warmup, learning_rate, max_length, sequence_length=None):
    import keras
    import keras_hub
    import numpy as np
    import tensorflow as tf

    task, examples = _examples(glue_dir, task_name, "train")
    keras.utils.set_random_seed(SEED)
    kwargs = {"sequence_length": sequence_length} if sequence_length else {}
    preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(backbone, **kwargs)
    classifier = keras_hub.models.TextClassifier.from_preset(
        backbone, num_classes=task.num_outputs, preprocessor=preprocessor
    )
    order = np.random.default_rng(SEED).permutation(len(examples))[: (warmup + steps) * TRAIN_BATCH]
    texts = tuple(tf.constant([examples[i][f] for i in order]) for f in task.text_features)
    labels = tf.constant([examples[i]["label"] for i in order])
    dataset = tf.data.Dataset.from_tensor_slices((texts if len(texts) > 1 else texts[0], labels)).batch(TRAIN_BATCH)
    loss = keras.losses.MeanSquaredError() if task.is_regression else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    classifier.compile(optimizer=keras.optimizers.AdamW(learning_rate), loss=loss)  # Keras' default jit_compile
    clock, callback = _keras_clock()
    classifier.fit(dataset, epochs=1, callbacks=[callback], verbose=0)
    timed = dataset.skip(warmup).map(lambda x, y: preprocessor(x=x)["padding_mask"])
    masks = [m.numpy() for m in timed]
    real = sum(int(m.sum()) for m in masks)
    computed = sum(m.size for m in masks)
    return _figures(sum(m.shape[0] for m in masks), real, computed, clock.timed(warmup),
                    sequence_length=int(preprocessor.sequence_length))


def _hf_model(backbone, task):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=task.num_outputs)
    return tokenizer, model


def _hf_encode(tokenizer, task, examples, max_length, pad):
    columns = [[e[f] for e in examples] for f in task.text_features]
    return tokenizer(*columns, truncation=True, max_length=max_length, padding="max_length" if pad else False)


def _hf_trainer_precision(precision: str) -> tuple[str, dict]:
    """``precision`` ("best": bf16 where the CPU has bf16 units, as ``infer_hf``) and ``TrainingArguments``' switch for it."""
    precision = best_precision()[0] if precision == "best" else precision
    return precision, {"bf16": precision == "bfloat16"}  # the Trainer's CPU bf16 autocast


def train_hf(glue_dir, task_name, backbone, steps, warmup, learning_rate, max_length, pad_to_max_length=False,
             precision="best"):
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments, default_data_collator

    task, examples = _examples(glue_dir, task_name, "train")
    tokenizer, model = _hf_model(backbone, task)
    encoded = _hf_encode(tokenizer, task, examples, max_length, pad_to_max_length)
    rows = [
        {**{k: encoded[k][i] for k in encoded.keys()}, "labels": examples[i]["label"]}
        for i in range(len(examples))
    ]
    collate = default_data_collator if pad_to_max_length else DataCollatorWithPadding(tokenizer)
    batches = []

    def counting_collator(features):
        batch = collate(features)
        batches.append((int(batch["attention_mask"].sum()), int(batch["attention_mask"].numel()), len(features)))
        return batch

    clock = _StepClock()
    precision, autocast = _hf_trainer_precision(precision)

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            clock.mark()

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=TRAIN_BATCH, learning_rate=learning_rate,
            max_steps=warmup + steps, lr_scheduler_type="linear", warmup_steps=0.1, weight_decay=0.0,
            max_grad_norm=1.0, logging_strategy="no", save_strategy="no", report_to=[], seed=SEED,
            use_cpu=True, disable_tqdm=True, dataloader_num_workers=0, **autocast,
        )
        Trainer(model=model, args=args, train_dataset=rows, data_collator=counting_collator, callbacks=[Clock()]).train()
    timed = batches[warmup : warmup + steps]
    return _figures(sum(b[2] for b in timed), sum(b[0] for b in timed), sum(b[1] for b in timed), clock.timed(warmup),
                    precision=precision)


def _timed_batches(run_batch, batches, warmup_batches=2):
    for batch in batches[:warmup_batches]:
        run_batch(batch)
    started = time.perf_counter()
    for batch in batches:
        run_batch(batch)
    return time.perf_counter() - started


def infer_glue_tf(glue_dir, task_name, backbone, max_length, sort_by_length=False):
    """The exported SavedModel in-process: raw strings in, tokenization inside the graph."""
    import numpy as np
    import tensorflow as tf

    from glue_tf import export
    from glue_tf.exports import saved_model

    task, examples = _examples(glue_dir, task_name, task_dev_split(task_name))
    task_model = recipe(backbone, task_name, max_seq_length=max_length)
    backbone_model, preprocessor = task_model.load_backbone()
    model = task_model.head(backbone_model)
    with tempfile.TemporaryDirectory() as out:
        version = export.export(model, preprocessor, task, out, metadata={})
        signature, _ = saved_model.load(version)
        order = np.arange(len(examples))
        if sort_by_length:  # what `glue-tf evaluate` and `predict` do
            order = np.argsort([sum(len(e[f]) for f in task.text_features) for e in examples], kind="stable")
        batches = [
            {f: tf.constant([examples[i][f] for i in order[s : s + INFERENCE_BATCH]]) for f in task.text_features}
            for s in range(0, len(order), INFERENCE_BATCH)
        ]
        seconds = _timed_batches(lambda b: signature(**b)["logits"].numpy(), batches)
        packed = preprocessor(x=tuple(tf.constant([e[f] for e in examples]) for f in task.text_features))
        lengths = packed["padding_mask"].numpy().sum(axis=1)
        computed = sum(int(lengths[order[s : s + INFERENCE_BATCH]].max()) * min(INFERENCE_BATCH, len(order) - s)
                       for s in range(0, len(order), INFERENCE_BATCH))
    return _figures(len(examples), int(lengths.sum()), computed, seconds)


def infer_hf(glue_dir, task_name, backbone, max_length, pad_to_max_length=False, precision="best"):
    """Hugging Face under ``torch.inference_mode``; ``precision`` "best": bf16 autocast where the CPU has bf16
    units (``bench.hf_predict``'s rule), float32 elsewhere."""
    import contextlib

    import torch

    task, examples = _examples(glue_dir, task_name, task_dev_split(task_name))
    tokenizer, model = _hf_model(backbone, task)
    model.eval()
    precision = best_precision()[0] if precision == "best" else precision
    batches = [examples[s : s + INFERENCE_BATCH] for s in range(0, len(examples), INFERENCE_BATCH)]

    def inputs_of(batch):
        encoded = _hf_encode(tokenizer, task, batch, max_length, pad_to_max_length)
        return {k: torch.tensor(v) for k, v in encoded.items()} if pad_to_max_length else tokenizer.pad(encoded, return_tensors="pt")

    def run(batch):  # tokenization is timed, as it is inside glue-tf's graph
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bfloat16" else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            model(**inputs_of(batch)).logits.float().numpy()

    seconds = _timed_batches(run, batches)
    masks = [inputs_of(batch)["attention_mask"] for batch in batches]
    return _figures(len(examples), sum(int(m.sum()) for m in masks), sum(m.numel() for m in masks), seconds,
                    torch_threads=torch.get_num_threads(), precision=precision)


def _export_for(glue_dir, task, backbone, max_length, model_dir, out):
    """The task's newest export under ``model_dir``; else one written to ``out`` from the backbone (a fresh
    head) with its signatures measured on the dev split, as ``glue-tf train`` exports."""
    from glue_tf import export
    from glue_tf.exports import store

    found = store.latest(model_dir, task.name) if model_dir else None
    if found is not None:
        return found
    task_model = recipe(backbone, task.name, max_seq_length=max_length)
    backbone_model, preprocessor = task_model.load_backbone()
    dev = _examples(glue_dir, task.name, task_dev_split(task.name))[1]
    return export.export(task_model.head(backbone_model), preprocessor, task, out, metadata={}, dev_examples=dev)


def _computed_tokens(lengths, call_rows: int, signature_name: str, max_seq_length: int) -> int:
    """Tokens a signature computes over calls of ``call_rows`` (rows in the order evaluate sends them).

    ``serving_default`` pads each call to its longest row; the compiled
    signature sorts a call by token length and pads each grid sub-batch to
    its grid shape (``glue_tf.exports.signatures``), padding rows included.
    """
    import numpy as np

    from glue_tf.exports import signatures

    total = 0
    for start in range(0, len(lengths), call_rows):
        call = np.sort(lengths[start : start + call_rows])
        if signature_name != signatures.COMPILED:
            total += int(call.max()) * len(call)
            continue
        done = 0
        for size in signatures.sub_batches(len(call)):
            longest = int(call[min(done + size, len(call)) - 1])
            total += size * min(w for w in signatures.grid_widths(max_seq_length) if w >= longest)
            done += size
    return total


def infer_glue_tf_signature(glue_dir, task_name, backbone, max_length, model_dir=None, signature="chosen",
                            sort_by="tokens"):
    """``glue-tf evaluate``'s in-process loop (``ExportPredictor``, length-sorted calls) over the dev split, timed
    after loading the export and replaying its warm-up requests (every compiled shape) on the signature:
    ``chosen`` by ``--precision auto`` here, or ``serving_default`` forced. ``sort_by="characters"``: rows
    sorted as for an export without a token counter, to show what sorting by tokens saves."""
    import numpy as np
    import tensorflow as tf

    from glue_tf import backbones
    from glue_tf.exports import signatures
    from glue_tf.exports.predictor import ExportPredictor, rows_per_call, run_length_sorted, sorted_outputs, text_call
    from glue_tf.precision import Machine

    task, examples = _examples(glue_dir, task_name, task_dev_split(task_name))
    with tempfile.TemporaryDirectory() as out:
        path = _export_for(glue_dir, task, backbone, max_length, model_dir, out)
        started = time.perf_counter()
        predictor = ExportPredictor(path, Machine.detect(), INFERENCE_BATCH, "auto")
        name, reason = predictor.signature_name, predictor.reason
        if signature == signatures.DEFAULT:
            name, reason = signatures.DEFAULT, "forced by the benchmark"
        rows = rows_per_call(name, INFERENCE_BATCH)
        columns = {field: [e[field] for e in examples] for field in task.text_features}
        loaded = time.perf_counter()
        for request in signatures.warmup_requests(path):
            predictor.signatures[name](**{field: tf.constant(texts) for field, texts in request.items()})
        warmed = time.perf_counter()
        if sort_by == "characters":
            run_length_sorted(text_call(predictor.signatures[name]), columns, rows)
        else:
            sorted_outputs(predictor.signatures, name, columns, rows)
        seconds = time.perf_counter() - warmed
        max_seq_length = int(predictor.metadata.get("max_seq_length") or max_length)
    _, preprocessor = backbones.load(backbone, max_seq_length)
    packed = preprocessor(x=tuple(tf.constant([e[f] for e in examples]) for f in task.text_features))
    lengths = packed["padding_mask"].numpy().sum(axis=1)
    by = lengths if sort_by == "tokens" else [sum(len(e[f]) for f in task.text_features) for e in examples]
    order = np.argsort(by, kind="stable")  # as run_length_sorted orders them: tokens, or characters for old exports
    computed = _computed_tokens(lengths[order], rows, name, max_seq_length)
    return _figures(len(examples), int(lengths.sum()), computed, seconds, signature=name,
                    reason=reason, load_seconds=round(loaded - started, 2),
                    warmup_seconds=round(warmed - loaded, 2), export=str(path))


def task_dev_split(task_name: str) -> str:
    from glue_tf.tasks import get_task

    return get_task(task_name).dev_splits[0]


TRAINING = {
    "glue-tf": (train_glue_tf, {}),
    "keras-hub-default-length": (train_keras_hub, {}),
    "keras-hub-128": (train_keras_hub, {"sequence_length": 128}),
    "hf-dynamic": (train_hf, {}),
    "hf-pad-128": (train_hf, {"pad_to_max_length": True}),
}
# Not in the default set on CPU: over a short timed window it measures XLA's compilations of
# each new width bucket, not its steady state (see bench/step_profile.py for that).
OPTIONAL_TRAINING = {"glue-tf-xla": (train_glue_tf, {"jit_compile": True}),
                     # Hugging Face's default where its best is bf16 (a CPU with bf16 units)
                     "hf-dynamic-float32": (train_hf, {"precision": "float32"})}
INFERENCE = {
    "glue-tf-export": (infer_glue_tf, {}),
    "glue-tf-export-sorted": (infer_glue_tf, {"sort_by_length": True}),
    "glue-tf-chosen": (infer_glue_tf_signature, {"signature": "chosen"}),
    "glue-tf-serving-default": (infer_glue_tf_signature, {"signature": "serving_default"}),
    "glue-tf-serving-default-by-characters": (infer_glue_tf_signature,
                                              {"signature": "serving_default", "sort_by": "characters"}),
    "hf-dynamic": (infer_hf, {}),
    "hf-pad-128": (infer_hf, {"pad_to_max_length": True}),
}


def finetune_hf(glue_dir, task_name, backbone, epochs, learning_rate, max_length, max_train_examples=None,
                precision="best"):
    """Hugging Face's recipe end to end for one task, as ``run_glue.py`` runs it; dev metrics + wall.

    ``precision`` "best": ``--bf16`` where the CPU has bf16 units, as a user there would run it."""
    import numpy as np
    import torch
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from glue_tf.metrics import compute_metrics, predictions_from_outputs, score_components, task_score

    started = time.perf_counter()
    task, train = _examples(glue_dir, task_name, "train")
    train = train[:max_train_examples] if max_train_examples else train
    tokenizer, model = _hf_model(backbone, task)
    precision, autocast = _hf_trainer_precision(precision)

    def rows(examples):
        encoded = _hf_encode(tokenizer, task, examples, max_length, pad=False)
        return [{**{k: encoded[k][i] for k in encoded.keys()}, "labels": e["label"]} for i, e in enumerate(examples)]

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=TRAIN_BATCH, per_device_eval_batch_size=INFERENCE_BATCH,
            learning_rate=learning_rate, num_train_epochs=epochs, lr_scheduler_type="linear", warmup_steps=0.1,
            weight_decay=0.0, max_grad_norm=1.0, logging_strategy="no", save_strategy="no", report_to=[],
            seed=SEED, use_cpu=True, disable_tqdm=True, **autocast,
        )
        trainer = Trainer(model=model, args=args, train_dataset=rows(train), data_collator=DataCollatorWithPadding(tokenizer))
        trainer.train()
        per_split = {}
        for split in task.dev_splits:
            dev = _examples(glue_dir, task_name, split)[1]
            logits = trainer.predict(rows(dev)).predictions
            predictions = predictions_from_outputs(task, {"logits": logits})
            per_split[split] = compute_metrics(task, [e["label"] for e in dev], predictions)
    dev = score_components(task, per_split)  # points, as glue-tf's own results
    return {"dev": dev, "dev_score": task_score(task, dev), "wall_seconds": round(time.perf_counter() - started, 1),
            "torch_threads": torch.get_num_threads(), "precision": precision}

FINETUNE = {"hf": (finetune_hf, {})}
