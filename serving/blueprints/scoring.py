"""Scoring with the official metrics: ``/score/<task>`` and ``/score`` answer at once; ``/jobs`` scores
large sets in the background (any worker answers for any job, see ``serving.jobs``)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from glue_tf.tasks import TASKS
from serving import schemas
from serving import scoring as scores
from serving.errors import NotFound, Overloaded
from serving.http import json_body, note, require_token, service

scoring = Blueprint("scoring", __name__)


@scoring.post("/score/<task_name>")
def score_task(task_name):
    require_token()
    svc = service()
    task = schemas.task_or_404(task_name)
    parsed = scores.parse_task(task, json_body(), svc.limits)
    note(task, instances=scores.total_instances({task.name: parsed}))
    return svc.score({task.name: parsed})[task.name]


@scoring.post("/score")
def score_many():
    require_token()
    svc = service()
    parsed = scores.parse_many(json_body(), svc.limits)
    note(instances=scores.total_instances(parsed))
    return scores.summarize(svc.score(parsed))


@scoring.post("/jobs")
def create_job():
    require_token()
    svc = service()
    body = json_body()
    parsed, _ = scores.parse_job(body, svc.job_limits)
    for name in parsed:
        svc.model(TASKS[name])  # 404 now rather than a failed job later
    if svc.jobs.active() >= svc.settings.max_concurrent_jobs * 4:
        raise Overloaded("too many scoring jobs are queued or running; retry later", headers={"Retry-After": "10"})
    total = scores.total_instances(parsed)
    note(instances=total)
    job_id = svc.jobs.create(body, total)
    svc.runner.submit(job_id)
    return jsonify({"id": job_id, "status": "queued", "url": f"/jobs/{job_id}"}), 202, {"Location": f"/jobs/{job_id}"}


@scoring.get("/jobs/<job_id>")
def get_job(job_id):
    require_token()
    if len(job_id) != 32 or any(c not in "0123456789abcdef" for c in job_id):
        raise NotFound(f"no job {job_id!r}")
    job = service().jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return {
        "id": job["id"], "status": job["status"],
        "progress": {"done": job["done"], "total": job["total"]},
        "result": job["result"], "error": job["error"],
        "created_at": job["created_at"], "updated_at": job["updated_at"], "attempts": job["attempts"],
    }
