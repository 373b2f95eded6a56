"""The Python API: what the ``glue-tf`` commands do, for notebooks and scripts.

Researchers work in notebooks; shelling out to a CLI loses types, return values
and tracebacks. These functions take the same fields as
:class:`glue_tf.config.TrainConfig` (the CLI's flags come from the same class)
and return the records the CLI writes. :func:`load` and :func:`score` need
TensorFlow and tensorflow-text at most, never KerasHub, so a service or a
notebook that only predicts does not load the training stack.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping, Sequence

from glue_tf.errors import GlueTfError


@dataclasses.dataclass(frozen=True)
class Result:
    """One task's training result: its dev score (points), the export, and the whole ``result.json`` record."""

    task: str
    dev_score: float | None
    dev_score_std: float
    export_dir: Path | None
    record: dict


@dataclasses.dataclass(frozen=True)
class Report:
    """A ``train-all`` report: the GLUE score (None unless every task ran), per-task results, ``report.json``."""

    glue_score: float | None
    tasks: dict[str, Result]
    out_dir: Path
    record: dict


def _result(record: Mapping) -> Result:
    export = record.get("export")
    return Result(task=record["task"], dev_score=record.get("dev_score_mean", record.get("dev_score")),
                  dev_score_std=record.get("dev_score_std", 0.0), export_dir=Path(export) if export else None,
                  record=dict(record))


def _start_tensorflow() -> None:
    """oneDNN and the XLA cache as the CLI sets them, if TensorFlow is not loaded yet (glue_tf.tf_startup)."""
    from glue_tf import tf_startup

    tf_startup.prepare()


def _config(fields: Mapping):
    from glue_tf.config import TrainConfig

    known = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise GlueTfError(f"unknown training fields {unknown}; TrainConfig has {sorted(known)}")
    return TrainConfig(**fields)


def _source(glue_dir, tfds_manual_dir, tfds_data_dir, download: bool):
    """The data source the CLI's flags of the same names choose (a TSV folder wins, else tfds)."""
    from glue_tf.data.sources import make_source

    return make_source(glue_dir=glue_dir, tfds_manual_dir=tfds_manual_dir, tfds_data_dir=tfds_data_dir,
                       download=download)


def train(task: str, *, out="runs/latest", glue_dir=None, tfds_manual_dir=None, tfds_data_dir=None,
          download: bool = True, overwrite: bool = False, verbose=0, **config) -> Result:
    """Fine-tunes, exports and reports one task, like ``glue-tf train``.

    >>> result = glue_tf.train("rte", glue_dir="glue_data", epochs=1, out="runs/rte")  # doctest: +SKIP
    >>> result.dev_score, result.export_dir  # doctest: +SKIP
    """
    from glue_tf import suite
    from glue_tf.tasks import get_task

    chosen, settings = get_task(task), _config(config)  # a typo fails before any data is read
    source = _source(glue_dir, tfds_manual_dir, tfds_data_dir, download)
    _start_tensorflow()
    record = suite.train(chosen, source, settings, out, verbose=verbose, overwrite=overwrite)
    return _result(record)


def train_all(tasks: str | Sequence[str] = "all", *, out="runs/latest", glue_dir=None, tfds_manual_dir=None,
              tfds_data_dir=None, download: bool = True, overwrite: bool = False, verbose=0, **config) -> Report:
    """Every task in ``tasks`` whose data is found, then ``report.md``/``report.json``, like ``glue-tf train-all``.

    >>> report = glue_tf.train_all(["cola", "rte"], glue_dir="glue_data", epochs=1)  # doctest: +SKIP
    >>> report.tasks["cola"].dev_score  # doctest: +SKIP
    """
    from glue_tf import suite
    from glue_tf.tasks import parse_task_list

    chosen, settings = parse_task_list(tasks if isinstance(tasks, str) else ",".join(tasks)), _config(config)
    source = _source(glue_dir, tfds_manual_dir, tfds_data_dir, download)
    _start_tensorflow()
    record = suite.train_all(source, settings, out, chosen, verbose=verbose, overwrite=overwrite)
    results = {name: _result({"task": name, **entry}) for name, entry in (record.get("tasks") or {}).items()}
    return Report(glue_score=record.get("glue_score"), tasks=results, out_dir=Path(out), record=record)


class Predictor:
    """An export, loaded with TensorFlow and tensorflow-text only, answering raw text.

    >>> predictor = glue_tf.load("runs/latest/models/sst2/1")  # doctest: +SKIP
    >>> predictor.predict(["a gripping film", "dull and far too long"])  # doctest: +SKIP
    [{'label': 'positive', ...}, {'label': 'negative', ...}]
    """

    def __init__(self, export_dir, precision: str = "auto", batch_size: int = 64):
        _start_tensorflow()  # before anything below imports TensorFlow
        from glue_tf.exports.predictor import ExportPredictor
        from glue_tf.precision import Machine
        from glue_tf.predict_files import resolve_export
        from glue_tf.tasks import get_task

        self.export_dir = resolve_export(export_dir)
        self._predictor = ExportPredictor(self.export_dir, Machine.detect(), batch_size, precision,
                                          setting="precision")
        self.metadata = self._predictor.metadata
        self.task = get_task(self.metadata["task"])
        self.signature = self._predictor.signature_name

    def _examples(self, texts) -> list[dict]:
        fields = self.task.text_features
        examples = []
        for number, text in enumerate(texts):
            if isinstance(text, str):
                text = (text,)
            values = [text.get(f) for f in fields] if isinstance(text, Mapping) else list(text)
            if len(values) != len(fields) or not all(isinstance(v, str) for v in values):
                raise GlueTfError(f"text {number}: {self.task.name} takes {len(fields)} string(s) {list(fields)}, "
                                  f"as a string, a tuple or a dict; got {text!r}")
            examples.append(dict(zip(fields, values)))
        return examples

    def predict(self, texts) -> list[dict]:
        """One answer per text: ``label``, ``label_id`` and ``probabilities`` (STS-B: ``score``).

        A text is a string (one-field tasks), a tuple in the task's field order, or a dict by field name.
        """
        outputs = self._predictor.raw_outputs(self.task, self._examples(texts))
        if self.task.is_regression:
            return [{"score": float(score)} for score in outputs["score"]]
        names = self.task.label_names
        return [{"label": names[int(label)], "label_id": int(label),
                 "probabilities": dict(zip(names, map(float, probabilities)))}
                for label, probabilities in zip(outputs["label_id"], outputs["probabilities"])]

    def evaluate(self, split: str | None = None, *, glue_dir=None, tfds_manual_dir=None, tfds_data_dir=None,
                 download: bool = True) -> dict:
        """Official metrics (points) on a labelled split (default: the task's first dev split)."""
        from glue_tf.exports.predictor import score_export

        source = _source(glue_dir, tfds_manual_dir, tfds_data_dir, download)
        split = split or self.task.score_components[0][1]
        scored = score_export(self._predictor, self.task, source, [split])
        return {"task": self.task.name, "split": split, "metrics": scored["metrics"][split], "score": scored["score"],
                "examples": scored["examples"][split]}


def load(export_dir, precision: str = "auto", batch_size: int = 64) -> Predictor:
    """The export at ``export_dir`` (a version folder, a task folder, or a run's ``models/<task>``)."""
    return Predictor(export_dir, precision, batch_size)


def score(task: str, predictions, labels) -> dict:
    """Official metrics (points) of ``predictions`` (label ids or STS-B scores) against ``labels``.

    >>> glue_tf.score("mrpc", [1, 0, 1, 1], [1, 0, 0, 1])  # doctest: +SKIP
    {'accuracy': 75.0, 'f1': 80.0}
    """
    import numpy as np

    from glue_tf import metrics
    from glue_tf.tasks import get_task

    return metrics.compute_metrics(get_task(task), np.asarray(labels), np.asarray(predictions))
