"""One training step of the multi-replica loop on two logical CPU devices (started by test_multiworker.py).

Usage: mirrored_step.py PRESET POLICY. Prints one JSON line: the strategy's replicas and the mean absolute
change of the trainable weights in that step.
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

from glue_tf import backbones, features, optimization  # noqa: E402
from glue_tf import model as model_lib  # noqa: E402
from glue_tf.config import TrainConfig  # noqa: E402
from glue_tf.loop import fit_distributed  # noqa: E402
from glue_tf.tasks import TASKS  # noqa: E402

keras.mixed_precision.set_global_policy(policy)
keras.utils.set_random_seed(0)
task, cfg = TASKS["rte"], TrainConfig(backbone=preset, batch_size=8, epochs=1, seed=0, max_seq_length=32)
with strategy.scope():
    backbone, _ = backbones.load(preset, cfg.max_seq_length)
    model = model_lib.build(backbone, task, 0.0)
    model.compile(optimizer=optimization.make_optimizer(1e-3, 2, 0.0, 0.01, 1.0), loss=model_lib.loss_for(task))
rng = np.random.default_rng(0)
lengths = rng.integers(8, 32, 16).astype(np.int32)
encoded = features.EncodedSplit(token_ids=rng.integers(5, backbone.vocabulary_size, lengths.sum()).astype(np.int32),
                                segment_ids=np.zeros(lengths.sum(), np.int32), lengths=lengths,
                                labels=rng.integers(0, 2, lengths.size), idx=np.arange(lengths.size))
datasets, _, _ = features.train_datasets(encoded, cfg, strategy, 0, 0, model_lib.input_names(model))
before = [v.numpy().astype(np.float64) for v in model.trainable_variables]
fit_distributed(model, model_lib.loss_for(task), datasets[0], strategy, 1, 0, 1, cfg.batch_size, [], verbose=0)
change = np.mean([np.abs(v.numpy() - b).mean() for v, b in zip(model.trainable_variables, before)])
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "optimizer": type(model.optimizer).__name__,
                  "change": float(change)}))
