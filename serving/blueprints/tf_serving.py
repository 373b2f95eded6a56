"""TF Serving's REST API (tensorflow/serving ``g3doc/api_rest.md``) over the same models, so its clients work unchanged.

Every route takes the model as ``/v1/models/<task>``, optionally pinned with
``/versions/<v>`` or ``/labels/<label>``: status, ``/metadata``, ``:predict``
(row ``instances`` or columnar ``inputs``), ``:classify`` and ``:regress`` (over
``examples``, mapped to the task's text fields by the service itself). Errors are
TF Serving's ``{"error": "<message>"}`` with its HTTP statuses (``serving.http``).
"""

from __future__ import annotations

import numpy as np
from flask import Blueprint
from werkzeug.routing import BaseConverter

from serving import schemas
from serving.errors import ApiError
from serving.http import json_body, note, service

tf_serving = Blueprint("tf_serving", __name__)
PINS = ("", "/versions/<int:version>", "/labels/<name:label>")


class NameConverter(BaseConverter):
    """A model name or version label, as TF Serving matches them: no '/' and no ':' (``cola:predict`` is a verb)."""

    regex = "[^/:]+"


tf_serving.record_once(lambda state: state.app.url_map.converters.setdefault("name", NameConverter))


def _model(task_name: str, version=None, label=None):
    task = schemas.task_or_404(task_name)
    return task, service().registry.resolve(task.name, version, label)


def status(task_name, version=None, label=None):
    task = schemas.task_or_404(task_name)
    return {"model_version_status": service().registry.status(task.name, version, label)}


def metadata(task_name, version=None, label=None):
    task, model = _model(task_name, version, label)
    return {"model_spec": {"name": task.name, "signature_name": "", "version": str(model.version)},
            "metadata": {"signature_def": model.signature_defs}}


def predict(task_name, version=None, label=None):
    svc = service()
    task = schemas.task_or_404(task_name)
    body = json_body()
    schemas.validate(body, "tf_predict", task, svc.limits)
    if ("instances" in body) == ("inputs" in body):
        raise ApiError("send exactly one of 'instances' (row format) or 'inputs' (columnar format)")
    if "instances" in body:
        columns = schemas.rows_to_columns(task, body["instances"], svc.limits)
    else:
        columns = schemas.inputs_to_columns(task, body["inputs"], svc.limits)
    _, model = _model(task_name, version, label)
    note(task, model, len(next(iter(columns.values()))))
    outputs = {name: np.asarray(value).tolist() for name, value in
               svc.predict(model, columns, body.get("signature_name")).items()}
    if len(outputs) == 1:  # TF Serving omits the name of a single output
        only = next(iter(outputs.values()))
        return {"outputs": only} if "inputs" in body else {"predictions": only}
    if "inputs" in body:
        return {"outputs": outputs}
    size = len(next(iter(outputs.values())))
    return {"predictions": [{name: values[i] for name, values in outputs.items()} for i in range(size)]}


def _examples_outputs(task_name, version, label, needed: str):
    svc = service()
    task = schemas.task_or_404(task_name)
    body = json_body()
    schemas.validate(body, "tf_examples", task, svc.limits)
    columns = schemas.examples_to_columns(task, body, svc.limits)
    _, model = _model(task_name, version, label)
    note(task, model, len(body["examples"]))
    outputs = svc.predict(model, columns, body.get("signature_name"))
    if needed not in outputs:
        verb = "classify" if needed == "probabilities" else "regress"
        other = "regress" if verb == "classify" else "classify"
        raise ApiError(f"{task.name} cannot {verb}: its signature has no {needed!r} output (use :{other} or :predict)",
                       code="wrong_method")
    return task, outputs


def classify(task_name, version=None, label=None):
    task, outputs = _examples_outputs(task_name, version, label, "probabilities")
    return {"result": [[[name, float(p)] for name, p in zip(task.label_names, row)]
                       for row in outputs["probabilities"]]}


def regress(task_name, version=None, label=None):
    _, outputs = _examples_outputs(task_name, version, label, "score")
    return {"result": [float(score) for score in outputs["score"]]}


for _pin in PINS:
    _base = "/v1/models/<name:task_name>" + _pin
    _kind = _pin.split("/")[1] if _pin else "latest"
    tf_serving.add_url_rule(_base, f"status_{_kind}", status, methods=["GET"])
    tf_serving.add_url_rule(_base + "/metadata", f"metadata_{_kind}", metadata, methods=["GET"])
    for _verb, _view in (("predict", predict), ("classify", classify), ("regress", regress)):
        tf_serving.add_url_rule(f"{_base}:{_verb}", f"{_verb}_{_kind}", _view, methods=["POST"])
