"""``glue-tf serve``: the REST service under gunicorn with the project's config.

The flags are generated from the settings dataclasses (``serving.settings``): each
is only another way to write its ``GLUE_TF_*`` variable, which
``serving/gunicorn.conf.py`` reads and checks in one place, so
``glue-tf serve --port 9000`` and ``PORT=9000 make serve`` start the same
server. The command then *becomes* gunicorn (``exec``): signals from a
terminal, a supervisor or a container runtime reach gunicorn's master itself,
which stops its workers gracefully.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from serving.settings import ServerSettings, Settings, default_text, described

CONFIG = Path(__file__).resolve().with_name("gunicorn.conf.py")
FIELDS = (*described(ServerSettings), *described(Settings))


def flag(field: dataclasses.Field) -> str:
    return "--" + field.name.replace("_", "-")


def _checked(field: dataclasses.Field):
    """An argparse type that checks a flag's text with its variable's parser and keeps the text."""
    def check(text: str) -> str:
        try:
            field.metadata["parse"](text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(" ".join(str(error).split())) from None
        return text

    check.__name__ = field.metadata["variable"]  # argparse names it in "invalid ... value"
    return check


def add_parser(commands) -> argparse.ArgumentParser:
    """Registers ``serve`` on the ``glue-tf`` subcommands, one flag per setting."""
    serve = commands.add_parser(
        "serve", help="serve a run's exports over REST (gunicorn with serving/gunicorn.conf.py)",
        description="Each flag overrides the GLUE_TF_* variable of the same meaning (docs/SERVING.md, "
                    "'Settings'); --port alone listens on 127.0.0.1:PORT.",
    )
    for field in FIELDS:
        help_text = field.metadata["help"].replace("`", "").replace("%", "%%")
        serve.add_argument(flag(field), type=_checked(field), metavar=field.name.upper(),
                           help=f"{help_text} ({field.metadata['variable']}; default {default_text(field)})")
    serve.set_defaults(func=run)
    return serve


def environment(args: argparse.Namespace, base: Mapping[str, str]) -> dict:
    """``base`` (:func:`run` passes this process's environment) with the given flags written over it."""
    env = dict(base)
    for field in FIELDS:
        value = getattr(args, field.name, None)
        if value is not None:
            env[field.metadata["variable"]] = str(value)
    if getattr(args, "port", None) is not None and getattr(args, "bind", None) is None:
        env.pop("GLUE_TF_BIND", None)  # --port means 127.0.0.1:PORT, whatever the environment binds
    return env


def command() -> list[str]:
    """gunicorn of this interpreter (the same virtual environment), with the project's config."""
    return [sys.executable, "-m", "gunicorn", "-c", str(CONFIG)]


def run(args: argparse.Namespace) -> int:
    """Replaces this process with gunicorn; returns only if that fails."""
    argv = command()
    os.execve(argv[0], argv, environment(args, os.environ))
    return 1  # not reached
