"""Scoring with the official metrics: ``/score/<task>`` and ``/score`` answer at once; ``/jobs`` scores
large sets in the background, listed, polled and cancelled on any worker of any replica sharing the job
store (``serving.jobs``). A job store that cannot be reached answers 503 with ``Retry-After``."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from serving import schemas
from serving import labelled_scores as scores
from serving.errors import ApiError, NotFound
from serving.http import json_body, note, require_token, service
from serving.jobs import STATES

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
    job_id, instances = service().create_job(json_body())
    note(instances=instances)
    return jsonify({"id": job_id, "status": "queued", "url": f"/jobs/{job_id}"}), 202, {"Location": f"/jobs/{job_id}"}


@scoring.get("/jobs")
def list_jobs():
    require_token()
    status = request.args.get("status")
    if status is not None and status not in STATES:
        raise ApiError(f"status {status!r} is not one of {list(STATES)}")
    limit = request.args.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        raise ApiError(f"limit {limit!r} must be a whole number from 1 to 1000")
    return {"jobs": service().jobs.list(status, int(limit))}


def _job_or_404(job_id: str) -> dict:
    if len(job_id) != 32 or any(c not in "0123456789abcdef" for c in job_id):
        raise NotFound(f"no job {job_id!r}")
    job = service().jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return job


@scoring.get("/jobs/<job_id>")
def get_job(job_id):
    require_token()
    return _job_or_404(job_id)


@scoring.delete("/jobs/<job_id>")
def cancel_job(job_id):
    require_token()
    job = _job_or_404(job_id)
    if not service().jobs.cancel(job_id):
        raise ApiError(f"job {job_id} has already {job['status']}", status=409, code="job_finished")
    return _job_or_404(job_id)
