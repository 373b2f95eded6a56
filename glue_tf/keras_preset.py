"""The fine-tuned classifier as a Keras artifact, beside the SavedModel.

A SavedModel serves, but cannot be trained further, inspected layer by layer,
or shared the way KerasHub users share models. So each export version also
holds ``keras/``: for a family with a KerasHub ``TextClassifier``, a KerasHub
preset of that classifier with its ``TextClassifierPreprocessor`` attached at
the export's ``max_seq_length``, so that
``keras_hub.models.TextClassifier.from_preset(folder).predict(texts)`` takes
raw text; for a family without one (the custom head, e.g. ELECTRA), a
``model.keras`` that ``keras.saving.load_model`` reloads and that takes packed
token ids. ``glue_tf.json`` says which task and labels the head was trained
for, so ``--backbone <that folder>`` can restore the head only where it fits.
"""

from __future__ import annotations

import json
from pathlib import Path

FOLDER = "keras"  # inside a version folder; never read by the service or TF Serving
DESCRIPTION_FILE = "glue_tf.json"
KERAS_FILE = "model.keras"


def classifier_in(model):
    """The KerasHub ``TextClassifier`` inside a model made by ``glue_tf.model.build``, or None."""
    import keras_hub

    for layer in model._flatten_layers():
        if isinstance(layer, keras_hub.models.TextClassifier):
            return layer
    return None


def write(model, preprocessor, task, folder) -> str:
    """Writes ``model`` (float32 weights) to ``folder``; returns the format written.

    The classifier's preprocessor is attached only for the save, so the model
    that was trained and exported is left as it was.
    """
    folder = Path(folder)
    folder.mkdir(parents=True)
    classifier = classifier_in(model)
    if classifier is None:
        model.save(folder / KERAS_FILE)
        written = "keras"
    else:
        previous = classifier.preprocessor
        classifier.preprocessor = preprocessor
        try:
            classifier.save_to_preset(str(folder))
        finally:
            classifier.preprocessor = previous
        written = "keras_hub_preset"
    description = {"task": task.name, "label_names": list(task.label_names), "num_outputs": task.num_outputs,
                   "max_seq_length": int(preprocessor.sequence_length), "format": written}
    (folder / DESCRIPTION_FILE).write_text(json.dumps(description, indent=2), encoding="utf-8")
    return written


def fine_tuned_head(folder, task) -> tuple[object | None, str]:
    """The KerasHub classifier saved in ``folder`` when its head fits ``task``, else None; and why.

    A head fits when it was trained for the same task with the same number of
    outputs: the labels mean the same thing. Any other preset starts a new head.
    """
    path = Path(folder) / DESCRIPTION_FILE
    if not path.is_file():
        return None, "the backbone folder holds no fine-tuned glue-tf head"
    described = json.loads(path.read_text(encoding="utf-8"))
    if described.get("format") != "keras_hub_preset":
        return None, f"the head in {folder} is a {KERAS_FILE}, not a KerasHub preset"
    if described.get("task") != task.name or described.get("num_outputs") != task.num_outputs:
        return None, (f"the head in {folder} was trained for {described.get('task')} "
                      f"({described.get('num_outputs')} outputs), not {task.name}")
    import keras_hub

    return keras_hub.models.TextClassifier.from_preset(str(folder)), f"head restored from {folder}"
