"""The per-task model: backbone -> dropout -> dense on the pooled ``[CLS]`` output.

KerasHub's ``TextClassifier`` of the backbone's family already is that head
(``BertTextClassifier``: pooled output, dropout, dense ``[num_labels, hidden]``;
one output for STS-B regression), so we use it rather than a hand-written one.
A float32 linear layer on top keeps logits (and so losses and softmax) in
float32 under mixed precision.
"""

from __future__ import annotations

import inspect

from glue_tf.tasks import Task


def classifier_class(backbone):
    """The KerasHub ``TextClassifier`` subclass made for ``backbone``'s family, or None."""
    import keras_hub

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in subclasses(keras_hub.models.TextClassifier):
        if getattr(cls, "backbone_cls", None) is type(backbone):
            return cls
    return None


def _first_token_head(backbone, inputs, num_outputs: int, dropout: float):
    """Pooled output (or the first token's vector) -> dropout -> dense: the head of BERT-like
    classifiers, for a family KerasHub gives no classifier (ELECTRA in 0.32)."""
    import keras

    outputs = backbone(inputs)
    if isinstance(outputs, dict):
        pooled = outputs.get("pooled_output")
        if pooled is None:
            pooled = outputs["sequence_output"][:, 0, :]
    else:
        pooled = outputs[:, 0, :]
    pooled = keras.layers.Dropout(dropout, name="classifier_dropout")(pooled)
    return keras.layers.Dense(num_outputs, name="logits")(pooled)


def build(backbone, task: Task, dropout: float = 0.1):
    """A Keras model from packed inputs (``token_ids``, ``segment_ids``, ``padding_mask``) to float32 logits."""
    import keras

    cls = classifier_class(backbone)
    inputs = {name: keras.Input(shape=(None,), dtype=t.dtype, name=name) for name, t in backbone.input.items()}
    if cls is None:
        logits = _first_token_head(backbone, inputs, task.num_outputs, dropout)
    else:
        kwargs = {"backbone": backbone, "num_classes": task.num_outputs, "preprocessor": None}
        if "dropout" in inspect.signature(cls.__init__).parameters:
            kwargs["dropout"] = dropout
        logits = cls(**kwargs)(inputs)
    logits = keras.layers.Activation("linear", dtype="float32", name="float32_logits")(logits)
    return keras.Model(inputs, logits, name=f"glue_{task.name}")


def input_names(model) -> tuple[str, ...]:
    """The packed features a model reads (BERT: token, segment ids and mask; RoBERTa: no segments)."""
    return tuple(model.input)


def loss_for(task: Task):
    import keras

    if task.is_regression:
        return keras.losses.MeanSquaredError()
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def backbone_of(model):
    """The KerasHub backbone inside a model made by :func:`build`."""
    import keras_hub

    for layer in model._flatten_layers():
        if isinstance(layer, keras_hub.models.Backbone):
            return layer
    raise ValueError(f"{model.name} holds no KerasHub backbone")


def rebuild(model, task: Task, policy: str):
    """The same network with the same (float32) weights, computing under dtype policy ``policy``.

    Keras 3 fixes a layer's dtype policy when it is built and writes it into its
    config, so a model trained under ``mixed_bfloat16`` keeps computing in
    bfloat16 whatever the global policy later says. The backbone is rebuilt from
    its config with ``policy`` in place of the recorded one, the head by
    :func:`build` under ``policy`` as the global policy (its final float32 layer
    stays float32), and the weights copied: mixed policies keep variables in
    float32, so nothing is rounded. A model that computes under ``policy`` already is returned as it is,
    unless a distribution strategy holds its variables: an export must own plain variables, since a
    SavedModel function that reads one worker's replica of a mirrored variable (a dropout seed, under
    ``MultiWorkerMirroredStrategy``) cannot be saved.
    """
    import keras

    backbone = backbone_of(model)
    if model.dtype_policy.name == policy and backbone.dtype_policy.name == policy and not _distributed(model):
        return model  # computes under ``policy`` already: a copy would cost seconds and change nothing
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        clone = type(backbone).from_config({**backbone.get_config(), "dtype": policy})
        rebuilt = build(clone, task)
    finally:
        keras.config.set_dtype_policy(previous)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def _distributed(model) -> bool:
    """Whether a ``tf.distribute`` strategy made the model's variables (Keras wraps them: ``.value``)."""
    import tensorflow as tf

    return any(isinstance(getattr(v, "value", v), tf.distribute.DistributedValues) for v in model.weights)
