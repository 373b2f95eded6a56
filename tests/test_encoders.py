"""Other KerasHub encoder families train and export through the same generic code path.

Each family is a tiny randomly initialised model saved as a local preset
(backbone + tokenizer only); KerasHub's generic classes find the rest.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from glue_tf import features
from glue_tf.config import TrainConfig
from glue_tf.data.sources import TsvSource
from glue_tf.evaluation import KerasScorer
from glue_tf.exports import saved_model, store
from glue_tf.tasks import TASKS
from glue_tf.training import train_task
from support.tiny import make_family_preset

pytestmark = pytest.mark.long  # 4 families x ~1 min of TF tracing: make test-long


@pytest.fixture(scope="module")
def rte_texts(glue_dir):
    examples = TsvSource(glue_dir).examples(TASKS["rte"], "train")[:300]
    return [e[f] for e in examples for f in ("sentence1", "sentence2")]


@pytest.mark.parametrize("family, backbone_class", [
    ("distil_bert", "DistilBertBackbone"),
    ("roberta", "RobertaBackbone"),
    ("electra", "ElectraBackbone"),  # KerasHub 0.32 has no ElectraTextClassifier: generic head and packer
    ("deberta_v3", "DebertaV3Backbone"),
])
def test_family_trains_and_exports(family, backbone_class, rte_texts, small_glue_dir, tmp_path):
    preset = make_family_preset(family, tmp_path / family, rte_texts)
    config = TrainConfig(backbone=str(preset), epochs=1, batch_size=8, precision="float32", learning_rate=1e-3,
                         max_seq_length=64)
    task = TASKS["rte"]
    source = TsvSource(small_glue_dir)
    result = train_task(task, source, config, tmp_path / "run", verbose=0)
    assert result["backbone"]["class"] == backbone_class
    assert 0.0 <= result["dev_score"] <= 100.0  # points

    # The text-in export computes what the Keras model computes on the same pairs.
    signature, metadata = saved_model.load(store.latest(tmp_path / "run", "rte"))
    assert metadata["backbone"]["class"] == backbone_class
    examples = source.examples(task, "validation")[:12]
    served = signature(**{f: tf.constant([e[f] for e in examples]) for f in task.text_features})["logits"].numpy()

    from glue_tf import backbones
    from glue_tf import model as model_lib

    backbone, preprocessor = backbones.load(str(preset), 64)
    model = model_lib.build(backbone, task)
    model.load_weights(tmp_path / "run" / "work" / "rte" / "best.weights.h5")
    encoded = features.encode(source.load(task, "validation").take(12), task, preprocessor)
    np.testing.assert_allclose(served, KerasScorer(model).logits(encoded), atol=1e-4)
