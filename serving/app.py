"""``create_app``: the Flask application factory of the glue-tf service (flaskr style).

Configuration comes from ``Settings`` (environment variables, checked when the
server starts). The ``Service`` (models, batching queues, jobs, metrics) is built
when the app is created, i.e. in each gunicorn worker after the fork (never
``preload_app``: TensorFlow's thread pools do not survive a fork). Routes live in
blueprints; ``serving.http`` finishes every answer and renders every error as a
4xx JSON body in the route's shape, and a bug as a JSON 500 while the worker lives on.
"""

from __future__ import annotations

from flask import Flask

from serving import blueprints, http
from serving.service import Service
from serving.settings import Settings


def create_app(settings: Settings) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions["glue_tf"] = Service(settings)
    http.install(app, settings.request_log)
    for blueprint in blueprints.ALL:
        app.register_blueprint(blueprint)
    return app
