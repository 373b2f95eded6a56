"""``TrainConfig``'s fields as command-line flags, generated from the dataclass.

One source of truth: a field added to :class:`glue_tf.config.TrainConfig` is a
``glue-tf train``/``train-all`` flag at once, with its help and its default in
``--help``, and :func:`config_from_args` reads it back. ``learning_rate`` is
``--learning-rate``; a boolean that is on by default is turned off by the flag
its field names as ``negative`` (``--skip-export-measurements``), one whose
default is None (an automatic choice) takes ``--flag`` or ``--no-flag``
(``--jit-compile``).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing

from glue_tf.config import TrainConfig


def _value_type(annotation):
    """int for ``int`` and ``int | None``; the type argparse converts a flag's text with."""
    options = [t for t in typing.get_args(annotation) if t is not type(None)] or [annotation]
    return options[0]


def add_flags(group) -> None:
    """Adds one flag per ``TrainConfig`` field to ``group`` (a parser or an argument group)."""
    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        meta, kind = field.metadata, _value_type(hints[field.name])
        flag = "--" + field.name.replace("_", "-")
        if kind is bool and field.default is None:  # three states: --flag, --no-flag, or the automatic choice
            group.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=None,
                               help=meta["help"])
        elif kind is bool and field.default:
            group.add_argument(meta["negative"], dest=field.name, action="store_false", help=meta["help"])
        elif kind is bool:
            group.add_argument(flag, dest=field.name, action="store_true", help=meta["help"])
        else:
            shown = "" if field.default is None else f" (default: {field.default})"
            group.add_argument(flag, dest=field.name, type=meta.get("parse", kind), default=field.default,
                               choices=meta.get("choices"), help=meta["help"] + shown)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` the flags of :func:`add_flags` describe."""
    return TrainConfig(**{field.name: getattr(args, field.name) for field in dataclasses.fields(TrainConfig)})
