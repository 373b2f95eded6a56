"""A training loop for multi-replica runs, where Keras 3's ``fit`` falls short, around ``fit``'s own step.

``Model.fit`` cannot take the per-replica dataset that
``distribute_datasets_from_function`` builds under MultiWorkerMirroredStrategy
(it fails converting the ``PerReplica`` batch: an open upstream limitation), and
that dataset is what keeps every worker on the same number of steps. So this loop
runs the step ``fit`` runs, ``Model.train_step``, under ``strategy.run`` itself:
the loss averaged over the global batch, scaled under mixed_float16, gradients
all-reduced into the Keras optimizer. It is not XLA-compiled, which TensorFlow
cannot do over several devices (:func:`glue_tf.precision.xla_default`). Keras' own
train function would take a distributed iterator, but its "auto" reduction of the
step's metrics fails under MultiWorkerMirroredStrategy: it reduces the scalar
metrics along an axis 0 they do not have. Around the step: callbacks, a progress
bar and the TensorBoard epoch scalars, and nothing else.
"""

from __future__ import annotations


def fit_distributed(model, dataset, strategy, epochs, initial_epoch, steps_per_epoch, callbacks, verbose=1,
                    summary_dir=None, resume_step=0):
    """Trains epochs ``initial_epoch..epochs-1``; the first starts at step ``resume_step`` (a resumed epoch)."""
    import keras
    import tensorflow as tf

    from glue_tf.callbacks import current_learning_rate

    with strategy.scope():  # TaskModel.compile built them already; a model compiled elsewhere gets them here
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)

    @tf.function(reduce_retracing=True)
    def train_step(batch):
        metrics = strategy.run(model.train_step, args=(batch,))  # each replica's running means
        return {name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None) for name, value in metrics.items()}

    callback_list = keras.callbacks.CallbackList(callbacks, model=model)
    writer = tf.summary.create_file_writer(summary_dir) if summary_dir else None
    iterator = iter(dataset)
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()  # as fit: the loss logged is the epoch's running mean
        callback_list.on_epoch_begin(epoch)
        progress = keras.utils.Progbar(steps_per_epoch, verbose=verbose if verbose != "auto" else 1,
                                       stateful_metrics=["loss"])
        logs = {}
        for step in range(resume_step if epoch == initial_epoch else 0, steps_per_epoch):
            logs = {name: float(value) for name, value in train_step(next(iterator)).items()}
            progress.update(step + 1, values=list(logs.items()))
            callback_list.on_train_batch_end(step, logs)
        if writer:
            with writer.as_default():
                tf.summary.scalar("epoch_loss", logs.get("loss", 0.0), step=epoch)
                tf.summary.scalar("epoch_learning_rate", current_learning_rate(model.optimizer), step=epoch)
        callback_list.on_epoch_end(epoch, logs)
    callback_list.on_train_end()
