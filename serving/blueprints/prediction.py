"""``POST /predict/<task>``: labels with named probabilities (STS-B: scores), in input order."""

from __future__ import annotations

from flask import Blueprint

from glue_tf.tasks import Task
from serving import schemas
from serving.http import json_body, note, service

prediction = Blueprint("prediction", __name__)


@prediction.post("/predict/<task_name>")
def predict(task_name):
    svc = service()
    task = schemas.task_or_404(task_name)
    body = json_body()
    schemas.validate(body, "predict", task, svc.limits)
    columns = schemas.rows_to_columns(task, body["instances"], svc.limits)
    model = svc.model(task)
    note(task, model, len(body["instances"]))
    outputs = svc.predict(model, columns)
    return {"task": task.name, "model_version": model.version, "predictions": format_predictions(task, outputs)}


def format_predictions(task: Task, outputs: dict) -> list[dict]:
    if task.is_regression:
        return [{"score": float(score)} for score in outputs["score"]]
    rows = []
    for label_id, probabilities in zip(outputs["label_id"], outputs["probabilities"]):
        rows.append({
            "label": task.label_names[int(label_id)],
            "label_id": int(label_id),
            "probabilities": {name: float(p) for name, p in zip(task.label_names, probabilities)},
        })
    return rows
