"""``glue-tf serve``: the REST service under gunicorn with the project's config.

The flags are only another way to write the ``GLUE_TF_*`` variables that
``serving/gunicorn.conf.py`` reads (one place checks every setting), so
``glue-tf serve --port 9000`` and ``PORT=9000 make serve`` start the same
server. The command then *becomes* gunicorn (``exec``): signals from a
terminal, a supervisor or a container runtime reach gunicorn's master itself,
which stops its workers gracefully.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

CONFIG = Path(__file__).resolve().with_name("gunicorn.conf.py")

# flag -> the variable gunicorn.conf.py reads (see serving/settings.py for what each takes)
VARIABLES = {
    "model_dir": "GLUE_TF_MODEL_DIR",
    "state_dir": "GLUE_TF_STATE_DIR",
    "port": "PORT",
    "bind": "GLUE_TF_BIND",
    "workers": "GLUE_TF_WORKERS",
    "threads": "GLUE_TF_THREADS",
}


def add_parser(commands) -> argparse.ArgumentParser:
    """Registers ``serve`` on the ``glue-tf`` subcommands."""
    serve = commands.add_parser(
        "serve", help="serve a run's exports over REST (gunicorn with serving/gunicorn.conf.py)",
        description="Flags override the GLUE_TF_* variables of the same meaning (README, 'Serving').",
    )
    serve.add_argument("--model-dir", help="a training run's --out folder (GLUE_TF_MODEL_DIR; default runs/latest)")
    serve.add_argument("--state-dir", help="writable folder for jobs and metrics (GLUE_TF_STATE_DIR)")
    where = serve.add_mutually_exclusive_group()
    where.add_argument("--port", type=int, help="listen on 0.0.0.0:PORT (PORT; default 8080)")
    where.add_argument("--bind", help="listen address, e.g. 127.0.0.1:8080 (GLUE_TF_BIND)")
    serve.add_argument("--workers", type=int, help="gunicorn worker processes (GLUE_TF_WORKERS; default 2)")
    serve.add_argument("--threads", type=int, help="threads per worker (GLUE_TF_THREADS; default 16)")
    serve.set_defaults(func=run)
    return serve


def environment(args: argparse.Namespace, base: dict | None = None) -> dict:
    """``base`` (default: this process's environment) with the given flags written over it."""
    env = dict(os.environ if base is None else base)
    for field, variable in VARIABLES.items():
        value = getattr(args, field, None)
        if value is not None:
            env[variable] = str(value)
    if args.port is not None:
        env.pop("GLUE_TF_BIND", None)  # --port means 0.0.0.0:PORT, whatever the environment binds
    return env


def command() -> list[str]:
    """gunicorn of this interpreter (the same virtual environment), with the project's config."""
    return [sys.executable, "-m", "gunicorn", "-c", str(CONFIG)]


def run(args: argparse.Namespace) -> int:
    """Replaces this process with gunicorn; returns only if that fails."""
    argv = command()
    os.execve(argv[0], argv, environment(args))
    return 1  # not reached
