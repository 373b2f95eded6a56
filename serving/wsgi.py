"""The WSGI entry point gunicorn imports in each worker (after the fork): ``serving.wsgi:app``."""

import logging

from serving.app import create_app

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app()
