"""Scoring with the official metrics: ``/score/<task>`` and ``/score`` answer at once; ``/jobs`` scores
large sets in the background, listed, polled and cancelled on any worker of any replica sharing the job
store (``serving.jobs``). A job store that cannot be reached answers 503 with ``Retry-After``."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from serving import schemas
from serving import labelled_scores as scores
from serving.errors import ApiError, NotFound
from serving.http import json_body, note, query_int, require_token, service
from serving.jobs import STATES

scoring = Blueprint("scoring", __name__)


@scoring.post("/score/<task_name>")
@require_token
def score_task(task_name):
    svc = service()
    task = schemas.task_or_404(task_name)
    parsed = scores.parse_task(task, json_body(), svc.limits)
    note(task, instances=scores.total_instances({task.name: parsed}))
    return svc.score({task.name: parsed})[task.name]


@scoring.post("/score")
@require_token
def score_many():
    svc = service()
    parsed = scores.parse_many(json_body(), svc.limits)
    note(instances=scores.total_instances(parsed))
    return scores.summarize(svc.score(parsed))


@scoring.post("/jobs")
@require_token
def create_job():
    job_id, instances = service().create_job(json_body())
    note(instances=instances)
    return jsonify({"id": job_id, "status": "queued", "url": f"/jobs/{job_id}"}), 202, {"Location": f"/jobs/{job_id}"}


@scoring.get("/jobs")
@require_token
def list_jobs():
    status = request.args.get("status")
    if status is not None and status not in STATES:
        raise ApiError(f"status {status!r} is not one of {list(STATES)}")
    return {"jobs": service().jobs.list(status, query_int("limit", 100, 1, 1000))}


def _job_or_404(job_id: str) -> dict:
    if len(job_id) != 32 or any(c not in "0123456789abcdef" for c in job_id):
        raise NotFound(f"no job {job_id!r}")
    job = service().jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return job


@scoring.get("/jobs/<job_id>")
@require_token
def get_job(job_id):
    return _job_or_404(job_id)


@scoring.delete("/jobs/<job_id>")
@require_token
def cancel_job(job_id):
    job = _job_or_404(job_id)
    if not service().jobs.cancel(job_id):
        raise ApiError(f"job {job_id} has already {job['status']}", status=409, code="job_finished")
    return _job_or_404(job_id)
