"""The training recipe of one GLUE task: backbone, head, loss, optimizer and its schedule, compiled.

In the spirit of TF Model Garden's ``Task`` (``official/nlp/tasks/sentence_prediction.py``):
one object owns how a task's model is made from a :class:`~glue_tf.config.TrainConfig`, so
that ``glue-tf train`` and every benchmark contender build the same model through it
instead of a copy that drifts. The data (``glue_tf.features``), the loop
(``glue_tf.training``) and the dtype policy (set once per process, before the model is
built) stay outside it.

Metrics: the task's official metrics (``glue_tf.metrics``) are computed on the dev split
after each epoch by ``glue_tf.callbacks.EpochTracker``, on every example at once; the
compiled model carries no running Keras metrics, which would cost every step and
measure nothing the report uses.

Example::

    from glue_tf.config import TrainConfig
    from glue_tf.task_model import TaskModel
    from glue_tf.tasks import get_task

    recipe = TaskModel(get_task("cola"), TrainConfig(epochs=1))
    built = recipe.build(recipe.total_steps(train_size=8551))
    built.model.fit(...)  # batches from glue_tf.features.train_datasets
"""

from __future__ import annotations

import dataclasses

from glue_tf.config import TrainConfig
from glue_tf.tasks import Task


@dataclasses.dataclass(frozen=True)
class Built:
    """What :meth:`TaskModel.build` returns: the compiled model, its backbone and the backbone's tokenizer."""

    model: object
    backbone: object
    preprocessor: object
    head_origin: str = "new head"  # or where a fine-tuned head was restored from (TaskModel.restore_head)


@dataclasses.dataclass(frozen=True)
class TaskModel:
    """The compiled model of ``task`` under ``config`` (the task's defaults filled in)."""

    task: Task
    config: TrainConfig

    def __post_init__(self):
        object.__setattr__(self, "config", self.config.for_task(self.task))

    def total_steps(self, train_size: int, replicas: int = 1) -> int:
        """Optimizer steps over the whole run: what the learning-rate schedule spans."""
        from glue_tf import features

        cfg = self.config
        return features.steps_per_epoch(train_size, cfg.batch_size, replicas > 1) * cfg.epochs

    def load_backbone(self):
        """``(backbone, preprocessor)`` of the config's backbone, packing to its ``max_seq_length``."""
        from glue_tf import backbones

        return backbones.load(self.config.backbone, self.config.max_seq_length)

    def head(self, backbone):
        """The uncompiled Keras model: ``backbone`` -> dropout -> dense, float32 logits (``glue_tf.model``)."""
        from glue_tf import model as model_lib

        return model_lib.build(backbone, self.task, self.config.dropout)

    def restore_head(self, model) -> str:
        """Copies a fine-tuned head into ``model`` where the config's backbone is a glue-tf Keras preset
        (an export's ``keras/`` folder) trained for this task with as many outputs; returns what happened.

        Continuing from a fine-tuned model keeps its head only where its labels mean the same thing;
        any other backbone starts a new head, and the run log says which.
        """
        from glue_tf import backbones, keras_preset

        folder = backbones.local_folder(self.config.backbone)
        if folder is None:
            return "new head (the backbone is a pretrained preset)"
        head, why = keras_preset.fine_tuned_head(folder, self.task)
        if head is None:
            return f"new head: {why}"
        keras_preset.classifier_in(model).set_weights(head.get_weights())
        return why

    def loss(self):
        from glue_tf import model as model_lib

        return model_lib.loss_for(self.task)

    def optimizer(self, total_steps: int):
        """AdamW with BERT's warm-up and linear decay over ``total_steps``, global-norm clipping, no decay on
        biases and LayerNorm, its update run as ``optimizer_apply`` says (``glue_tf.optimization``)."""
        from glue_tf import optimization

        cfg = self.config
        return optimization.make_optimizer(cfg.learning_rate, total_steps, cfg.warmup_fraction, cfg.weight_decay,
                                           cfg.clip_norm, cfg.optimizer_apply)

    def compile(self, model, total_steps: int):
        """``model`` compiled with the task's loss and optimizer (XLA as the config says); returns it.

        The optimizer's moments are built here, eagerly, under the caller's strategy scope. Without a
        strategy, Keras defers that build into ``fit``'s first trace, where each of the moment variables
        (210 for MiniLM) is created lifted out of a ``tf.function`` behind an initialization ``cond``: 5.9 s
        of every seed's first step (``py-spy`` on ``bench/fit_widths.py``), against milliseconds here.
        A checkpoint then restores into built moments, and the multi-replica loop finds them built.
        """
        model.compile(optimizer=self.optimizer(total_steps), loss=self.loss(), jit_compile=self.config.jit_compile)
        model.optimizer.build(model.trainable_variables)
        return model

    def build(self, total_steps: int, strategy=None, loaded=None) -> Built:
        """The compiled model under ``strategy``'s scope (default: the current strategy).

        ``loaded``: a ``(backbone, preprocessor)`` pair to build on, else the config's backbone is
        loaded now (every seed starts from the pretrained weights).
        """
        import tensorflow as tf

        strategy = strategy or tf.distribute.get_strategy()
        with strategy.scope():
            backbone, preprocessor = loaded or self.load_backbone()
            model = self.head(backbone)
            head_origin = self.restore_head(model)
            self.compile(model, total_steps)
        return Built(model, backbone, preprocessor, head_origin)
