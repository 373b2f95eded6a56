"""Loads an export in a process that never imports KerasHub and prints its outputs as JSON.

Usage: export_probe.py EXPORT_DIR JSON_INPUTS
"""

import json
import sys

import tensorflow as tf
import tensorflow_text  # noqa: F401

path, inputs = sys.argv[1], json.loads(sys.argv[2])
loaded = tf.saved_model.load(path)
signature = loaded.signatures["serving_default"]
outputs = signature(**{name: tf.constant(values) for name, values in inputs.items()})
print(json.dumps({
    "outputs": {name: value.numpy().tolist() for name, value in outputs.items()},
    "inputs": sorted(signature.structured_input_signature[1]),
    "keras_hub_imported": "keras_hub" in sys.modules,
}))
