"""The Keras callbacks of a training run: dev scores per epoch, checkpoints, progress within an epoch.

They sit next to :mod:`glue_tf.checkpoints`, whose ``TrainingState`` they save.
``fit`` and the multi-replica loop (:mod:`glue_tf.loop`) call them the same way,
and both pass ``logs["loss"]`` as the epoch's mean loss so far, as Keras does.
TensorBoard gets the dev metrics (run ``dev``) and, with ``--logging-steps``,
the loss and learning rate every N steps (run ``train``), beside the per-epoch
loss and learning rate that Keras' own TensorBoard callback writes.
"""

from __future__ import annotations

import math
import time

import keras

from glue_tf import checkpoints, evaluation, metrics


def current_learning_rate(optimizer) -> float:
    """The learning rate the optimizer's schedule gives at its current step."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class _Scalars:
    """A TensorBoard event writer for one run folder, opened on first use; off without a folder."""

    def __init__(self, folder: str | None):
        self.folder, self.writer = folder, None

    def write(self, values: dict[str, float], step: int) -> None:
        if not self.folder:
            return
        import tensorflow as tf

        self.writer = self.writer or tf.summary.create_file_writer(self.folder)
        with self.writer.as_default():
            for name, value in values.items():
                tf.summary.scalar(name, value, step=step)
        self.writer.flush()


class EpochTracker(keras.callbacks.Callback):
    """Dev metrics after each epoch (run log and TensorBoard), best weights kept, state checkpointed.

    ``best_predictions``: the dev predictions of the best epoch trained in this process (None if the best
    came before a resume), which the seed keeps (:mod:`glue_tf.dev_predictions`) without a second dev pass.
    """

    def __init__(self, task, predictor, dev, state_store, best_path, history, log, write, summary_dir=None):
        super().__init__()
        self.task, self.predictor, self.dev = task, predictor, dev
        self.labels = {split: encoded.labels for split, encoded in dev.items()}
        self.state_store, self.best_path = state_store, best_path
        self.history, self.log, self.write = history, log, write
        self.scalars = _Scalars(f"{summary_dir}/dev" if summary_dir and write else None)
        self.epoch_started = time.perf_counter()
        self.best_predictions = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        train_seconds = time.perf_counter() - self.epoch_started
        predictions = self.predictor.predictions(self.task, self.dev)
        components = evaluation.score(self.task, self.labels, predictions)
        score = metrics.task_score(self.task, components)
        record = {
            "epoch": epoch + 1,
            "train_loss": float(logs.get("loss", math.nan)) if logs else math.nan,
            "dev": components,
            "dev_score": score,
            "train_seconds": round(train_seconds, 2),
        }
        self.history["epochs"].append(record)
        best = self.history.get("best_score")
        if best is None or score > best:
            self.history.update(best_score=score, best_epoch=epoch + 1)
            self.best_predictions = predictions
            if self.write:
                checkpoints.save_weights_atomically(self.model, self.best_path)
        self.scalars.write({f"epoch_dev_{name}": value for name, value in {**components, "score": score}.items()}, epoch)
        shown = ", ".join(f"{k} {v:.2f}" for k, v in components.items())
        self.log(f"{self.task.name} epoch {epoch + 1}: dev {shown} (score {score:.2f}; best epoch {self.history['best_epoch']})")
        self.state_store.save(self.model, {"epoch": epoch + 1, **self.history})


class _WithinEpoch(keras.callbacks.Callback):
    """Counts steps within the epoch, a resumed epoch's earlier steps included (``offset``, set by the caller)."""

    def __init__(self):
        super().__init__()
        self.offset = 0  # steps of the current epoch done before this fit call (a resumed epoch)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def step(self, batch: int) -> int:
        return self.offset + batch + 1

    def on_epoch_end(self, epoch, logs=None):
        self.offset = 0


class StepCheckpoint(_WithinEpoch):
    """Saves the training state every ``every`` steps inside an epoch, so a kill loses at most that many."""

    def __init__(self, state_store, every: int, steps_per_epoch: int, history: dict):
        super().__init__()
        self.state_store, self.every, self.steps_per_epoch, self.history = state_store, every, steps_per_epoch, history

    def on_train_batch_end(self, batch, logs=None):
        step = self.step(batch)
        if self.every and step % self.every == 0 and step < self.steps_per_epoch:
            self.state_store.save(self.model, {"epoch": self.epoch, "step": step, **self.history})


class StepLogger(_WithinEpoch):
    """Every ``every`` steps: the epoch's mean loss so far, the learning rate and the examples/s since the
    last report, in the run log and TensorBoard. A run that is not on a terminal (CI, ``nohup``, a
    container) has no progress bar; this is its progress within an epoch (``--logging-steps``)."""

    def __init__(self, task_name: str, every: int, steps_per_epoch: int, batch_size: int, log, summary_dir=None):
        super().__init__()
        self.task_name, self.every, self.steps_per_epoch, self.batch_size = task_name, every, steps_per_epoch, batch_size
        self.log, self.scalars = log, _Scalars(f"{summary_dir}/train" if summary_dir else None)
        self.since = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self.since = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        step = self.step(batch)
        if not self.every or step % self.every or not logs:
            return
        loss, learning_rate = float(logs["loss"]), current_learning_rate(self.model.optimizer)
        now = time.perf_counter()
        rate = self.every * self.batch_size / max(now - self.since, 1e-9)
        self.since = now
        self.log(f"{self.task_name} epoch {self.epoch + 1} step {step}/{self.steps_per_epoch}: loss {loss:.4f}, "
                 f"learning rate {learning_rate:.3g}, {rate:.1f} examples/s")
        self.scalars.write({"step_loss": loss, "step_learning_rate": learning_rate},
                           int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))
