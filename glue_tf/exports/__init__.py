"""The read side of exports: what the service, ``predict`` and ``evaluate`` need of a written version.

:mod:`glue_tf.export` writes versions with Keras and KerasHub; everything that
only reads them lives here and imports TensorFlow and tensorflow-text at most,
never KerasHub nor a ``glue_tf`` module that does, so a serving container runs
without the training stack (``tests/test_exports_light.py`` checks it):

- :mod:`~glue_tf.exports.store`: complete versions, metadata, dev metrics;
- :mod:`~glue_tf.exports.signatures`: signature names, the compiled grid, the warm-up file;
- :mod:`~glue_tf.exports.saved_model`: loading the signatures and the token counter;
- :mod:`~glue_tf.exports.choice`: which signature runs on this machine;
- :mod:`~glue_tf.exports.predictor`: batches of similar length through it, and scoring.
"""
