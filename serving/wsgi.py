"""The WSGI entry point gunicorn imports in each worker (after the fork): ``serving.wsgi:app``."""

import logging

from serving import allocator
from serving.app import create_app
from serving.settings import Settings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
allocator.return_large_blocks()  # before TensorFlow loads: its freed tensors then leave the resident set
app = create_app(Settings.from_env())  # this worker's settings, read where it starts
