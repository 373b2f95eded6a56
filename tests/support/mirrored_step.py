"""One training step of the multi-replica loop on two logical CPU devices (started by test_multiworker.py).

Usage: mirrored_step.py PRESET POLICY. Prints one JSON line: the strategy's replicas, the mean absolute
change of the trainable weights in that step, and how far the loop's step on one global batch lands from
``Model.fit``'s on one replica, from the same weights (dropout off): the loop runs fit's own step function.
Then, under the same strategy, glue-tf's fused AdamW against Keras' AdamW on adamw_case's model in float64,
``adamw_case.STEPS`` steps on the same data: how far Keras moved the weights and how far apart the two end.
"""

import json
import sys

import tensorflow as tf

preset, policy = sys.argv[1:]
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

import keras  # noqa: E402
import numpy as np  # noqa: E402
from adamw_case import BATCH, STEPS, data, gaps, optimizer  # noqa: E402
from adamw_case import model as case_model  # noqa: E402

from glue_tf import backbones, features, optimization  # noqa: E402
from glue_tf import model as model_lib  # noqa: E402
from glue_tf.config import TrainConfig  # noqa: E402
from glue_tf.loop import fit_distributed  # noqa: E402
from glue_tf.tasks import TASKS  # noqa: E402

keras.mixed_precision.set_global_policy(policy)
keras.utils.set_random_seed(0)
task, cfg = TASKS["rte"], TrainConfig(backbone=preset, batch_size=8, epochs=1, seed=0, max_seq_length=32)


def compiled_model(scope):
    """The classifier with every dropout off, so two runs of one step can be compared."""
    with scope:
        loaded, _ = backbones.load(preset, cfg.max_seq_length)
        backbone = type(loaded).from_config({**loaded.get_config(), "dropout": 0.0})
        backbone.set_weights(loaded.get_weights())
        model = model_lib.build(backbone, task, 0.0)
        model.compile(optimizer=optimization.make_optimizer(1e-3, 2, 0.0, 0.01, 1.0), loss=model_lib.loss_for(task))
    return model


model = compiled_model(strategy.scope())
backbone = model_lib.backbone_of(model)
rng = np.random.default_rng(0)
lengths = rng.integers(8, 32, 16).astype(np.int32)
encoded = features.EncodedSplit(token_ids=rng.integers(5, backbone.vocabulary_size, lengths.sum()).astype(np.int32),
                                segment_ids=np.zeros(lengths.sum(), np.int32), lengths=lengths,
                                labels=rng.integers(0, 2, lengths.size), idx=np.arange(lengths.size))
datasets, _, _ = features.train_datasets(encoded, cfg, strategy, 0, 0, model_lib.input_names(model))
before = [v.numpy().astype(np.float64) for v in model.trainable_variables]
fit_distributed(model, datasets[0], strategy, 1, 0, 1, [], verbose=0)
change = np.mean([np.abs(v.numpy() - b).mean() for v, b in zip(model.trainable_variables, before)])

# One global batch of 8 at one width: split 4 + 4 over the replicas for the loop, whole for fit on one replica.
x = {"token_ids": rng.integers(5, backbone.vocabulary_size, (8, 16)).astype(np.int32),
     "segment_ids": np.zeros((8, 16), np.int32), "padding_mask": np.ones((8, 16), bool)}
y = rng.integers(0, 2, 8)
batch = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
looped, fitted = compiled_model(strategy.scope()), compiled_model(tf.distribute.get_strategy().scope())
fitted.set_weights(looped.get_weights())
start = [v.numpy().astype(np.float64) for v in looped.trainable_variables]
fit_distributed(looped, strategy.experimental_distribute_dataset(batch.repeat()), strategy, 1, 0, 1, [], verbose=0)
fitted.fit(batch, epochs=1, steps_per_epoch=1, verbose=0)
moved = max(np.abs(v.numpy() - s).max() for v, s in zip(fitted.trainable_variables, start))
apart = max(np.abs(a.numpy() - b.numpy()).max() for a, b in zip(looped.trainable_variables, fitted.trainable_variables))


def adamw_weights(optimizer_cls):
    """Weights after ``STEPS`` steps of ``optimizer_cls`` over both replicas (each with half of a global batch
    of ``2 * BATCH``), float64 whatever the policy; and the weights they started from."""
    with strategy.scope():
        case = case_model("float64")
        case_optimizer = optimizer(optimizer_cls)
        case_optimizer.build(case.trainable_variables)
    variables, start = case.trainable_variables, [v.numpy() for v in case.trainable_variables]

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(case(x) - y)) / strategy.num_replicas_in_sync
        case_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    step = tf.function(lambda x, y: strategy.run(replica_step, (x, y)))
    batches = tf.data.Dataset.from_tensor_slices(data("float64")).batch(2 * BATCH).repeat().take(STEPS)
    for x_batch, y_batch in strategy.experimental_distribute_dataset(batches):
        step(x_batch, y_batch)
    return start, [v.numpy() for v in variables]


case_start, fused = adamw_weights(optimization.FusedAdamW)
_, reference = adamw_weights(keras.optimizers.AdamW)
print(json.dumps({"adamw_float64": gaps(case_start, fused, reference), "replicas": strategy.num_replicas_in_sync, "optimizer": type(model.optimizer).__name__,
                  "change": float(change), "fit_moved": float(moved), "fit_apart": float(apart)}))
