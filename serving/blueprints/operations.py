"""Operations: liveness, readiness, Prometheus metrics, the OpenAPI document, the task list and the page."""

from __future__ import annotations

from flask import Blueprint, Response, render_template

from glue_tf import metrics as glue_metrics
from glue_tf.exports import store
from glue_tf.tasks import GLUE_TASKS, TASKS
from serving import schemas
from serving.http import service
from serving.jobs import StoreUnavailable

operations = Blueprint("operations", __name__)


@operations.app_template_filter("points")
def points(value) -> str:
    """A score on the page as the leaderboard and report.md print it: one decimal, rounded half up."""
    return "–" if value is None else f"{glue_metrics.round_score(value):.1f}"


def task_rows() -> dict:
    rows = {}
    for name, task in TASKS.items():
        model = service().registry.get(name)
        if model is None:
            continue
        rows[name] = {
            "display_name": task.display_name,
            "version": model.version,
            "served_by": task.predicted_by,
            "fields": list(task.text_features),
            "label_names": list(task.label_names),
            "regression": task.is_regression,
            "dev_metrics": store.dev_metrics(model.metadata) if task.model_task is None else None,
            "human_baseline": dict(task.human_baseline),
            "backbone": (model.metadata.get("backbone") or {}).get("spec"),
            "path": str(model.path),
            "signature": model.chosen,
            "signature_reason": model.reason,
        }
    return rows


@operations.get("/v1/tasks")
def list_tasks():
    return {"tasks": task_rows(), "refused_versions": service().registry.refused()}


@operations.get("/healthz")
def healthz():
    return {"status": "ok"}


@operations.get("/readyz")
def readyz():
    svc = service()
    loaded = svc.registry.loaded()
    warmed = svc.registry.initial_load_done.is_set()
    # Readiness is about answering predictions: a job store that is down does not take a replica out of
    # the load balancer (its job routes answer 503 meanwhile); it is reported here.
    body = {"ready": bool(loaded) and warmed, "models": {name: m.version for name, m in loaded.items()},
            "job_store": {"backend": svc.jobs.backend, "available": svc.jobs.available}}
    if not warmed:
        loading = svc.registry.loading()
        body["reason"] = (f"warming up {len(loading)} version{'s' if len(loading) != 1 else ''}: "
                          f"{', '.join(f'{task}/{version}' for task, version in loading)}")
        return body, 503
    if not loaded:
        body["reason"] = f"no complete model export under {svc.settings.model_dir}/models/"
        return body, 503
    return body


@operations.get("/metrics")
def metrics_endpoint():
    svc = service()
    try:
        svc.telemetry.set_job_counts(svc.jobs.counts())
    except StoreUnavailable:
        pass  # the other metrics still matter most when the job store is down
    body, content_type = svc.telemetry.render()
    return Response(body, content_type=content_type)


@operations.get("/openapi.json")
def openapi():
    return schemas.openapi(service().settings)


@operations.get("/")
def index():
    rows = task_rows()
    components = {name: row["dev_metrics"] for name, row in rows.items() if row["dev_metrics"] and name in GLUE_TASKS}
    summary = glue_metrics.summarize(components)
    table = [{"name": name, "display": task.display_name, "row": rows.get(name),
              "score": summary["task_scores"].get(name), "human": glue_metrics.human_score(task)}
             for name, task in TASKS.items()]
    return render_template("index.html", table=table, summary=glue_metrics.describe(summary),
                           human_glue=glue_metrics.human_glue_score(), tasks=TASKS, rows=rows)
