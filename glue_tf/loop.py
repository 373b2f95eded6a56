"""A ``strategy.run`` training loop for multi-replica runs, where Keras 3's ``fit`` falls short.

``Model.fit`` cannot take the per-replica dataset that
``distribute_datasets_from_function`` builds under MultiWorkerMirroredStrategy
(it fails converting the ``PerReplica`` batch: an open upstream limitation), and
that dataset is what keeps every worker on the same number of steps. This loop
does what ``fit`` does for us — forward, loss averaged over the global batch
(scaled under mixed_float16), all-reduced gradients through the Keras optimizer,
callbacks, a progress bar — and nothing else.
"""

from __future__ import annotations


def fit_distributed(model, loss, dataset, strategy, epochs, initial_epoch, steps_per_epoch, global_batch_size,
                    callbacks, verbose=1, summary_dir=None, resume_step=0):
    """Trains epochs ``initial_epoch..epochs-1``; the first starts at step ``resume_step`` (a resumed epoch)."""
    import keras
    import tensorflow as tf

    from glue_tf.callbacks import current_learning_rate

    loss.reduction = None  # per-example losses; averaged over the global batch below
    optimizer = model.optimizer
    with strategy.scope():
        if not optimizer.built:
            optimizer.build(model.trainable_variables)

    def replica_step(features, labels):
        with tf.GradientTape() as tape:
            logits = model(features, training=True)
            per_example = loss(labels, logits)
            scaled = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
            # Under mixed_float16, compile() wrapped the optimizer in a LossScaleOptimizer, which unscales
            # the gradients it is given: the loss must be scaled here, as Keras' own train_step does.
            for_gradients = optimizer.scale_loss(scaled)
        gradients = tape.gradient(for_gradients, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return scaled

    @tf.function(reduce_retracing=True)
    def train_step(features, labels):
        per_replica = strategy.run(replica_step, args=(features, labels))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    callback_list = keras.callbacks.CallbackList(callbacks, model=model)
    writer = tf.summary.create_file_writer(summary_dir) if summary_dir else None
    iterator = iter(dataset)
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        progress = keras.utils.Progbar(steps_per_epoch, verbose=verbose if verbose != "auto" else 1)
        total = 0.0
        first_step = resume_step if epoch == initial_epoch else 0
        for step in range(first_step, steps_per_epoch):
            features, labels = next(iterator)
            value = float(train_step(features, labels))
            total += value
            progress.update(step + 1, values=[("loss", value)])
            callback_list.on_train_batch_end(step, {"loss": total / (step + 1 - first_step)})  # as fit: epoch mean
        logs = {"loss": total / max(steps_per_epoch - first_step, 1)}
        if writer:
            with writer.as_default():
                tf.summary.scalar("epoch_loss", logs["loss"], step=epoch)
                tf.summary.scalar("epoch_learning_rate", current_learning_rate(optimizer), step=epoch)
        callback_list.on_epoch_end(epoch, logs)
    callback_list.on_train_end()
