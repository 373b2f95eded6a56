"""Which model versions to serve and what to call them, as in TF Serving; pure Python.

``VersionPolicy`` is TF Serving's ``model_version_policy`` (``latest`` N, ``all`` or
``specific`` versions), ``ModelConfig`` one model's policy and ``version_labels``.
``parse_model_config_file`` reads TF Serving's ``--model_config_file`` (a
``ModelServerConfig`` holding a ``model_config_list``, in protobuf text format) with a
small parser of its own: the gunicorn master imports this module, so it must not
import TensorFlow or ``tensorflow-serving-api``.

The text format subset understood: ``field: value`` (strings in single or double
quotes with backslash escapes, whole numbers, ``[a, b]`` lists for repeated fields),
``field { ... }`` or ``field: { ... }`` for messages, ``#`` comments, and optional
``;`` or ``,`` after a field. Unknown fields are errors naming the field and line.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from glue_tf.errors import GlueTfError
from glue_tf.tasks import TASKS

LABEL = re.compile(r"[A-Za-z0-9_-]+")
POLICY_FORMS = "latest, latest:N, all or specific:V1,V2,... (N and versions whole numbers >= 1)"
LABEL_FORMS = "label=version pairs separated by commas, e.g. stable=1,canary=2 (labels of A-Za-z0-9_-, versions >= 1)"


class ModelConfigError(GlueTfError, ValueError):
    """A bad model config file; the message names the file and line (``path:line: what``)."""


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
    """Which of the complete versions on disk to serve (TF Serving's ``model_version_policy``)."""

    kind: str  # "latest" | "all" | "specific"
    num_versions: int = 1  # for latest
    versions: tuple[int, ...] = ()  # for specific

    def __post_init__(self):
        if self.kind not in ("latest", "all", "specific"):
            raise ValueError(f"unknown version policy {self.kind!r}: expected {POLICY_FORMS}")
        if self.kind == "latest" and (not isinstance(self.num_versions, int) or self.num_versions < 1):
            raise ValueError(f"latest needs a number of versions >= 1, not {self.num_versions!r}")
        if self.kind == "specific":
            if not self.versions or any(not isinstance(v, int) or v < 1 for v in self.versions):
                raise ValueError(f"specific needs one or more versions >= 1, not {list(self.versions)}")
            object.__setattr__(self, "versions", tuple(sorted(set(self.versions))))

    def select(self, available: list[int]) -> list[int]:
        """The versions to serve out of ``available`` (complete versions on disk), ascending."""
        present = sorted(set(available))
        if self.kind == "latest":
            return present[-self.num_versions:]
        if self.kind == "all":
            return present
        return [version for version in present if version in self.versions]

    @classmethod
    def parse(cls, text: str) -> "VersionPolicy":
        """``latest``, ``latest:3``, ``all`` or ``specific:1,2``; ``ValueError`` saying what is accepted."""
        kind, colon, argument = text.strip().partition(":")
        kind, argument = kind.strip().lower(), argument.strip()
        if kind == "latest" and not colon:
            return cls("latest")
        if kind == "all" and not colon:
            return cls("all")
        try:
            if kind == "latest" and colon:
                return cls("latest", num_versions=_whole(argument))
            if kind == "specific" and colon:
                return cls("specific", versions=tuple(_whole(part) for part in argument.split(",")))
        except ValueError:
            pass
        raise ValueError(f"expected {POLICY_FORMS}")

    def __str__(self) -> str:
        if self.kind == "latest":
            return "latest" if self.num_versions == 1 else f"latest:{self.num_versions}"
        if self.kind == "all":
            return "all"
        return "specific:" + ",".join(map(str, self.versions))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One model's version policy and labels (label -> version), as in TF Serving's ``ModelConfig``."""

    policy: VersionPolicy = VersionPolicy("latest")
    labels: dict[str, int] = dataclasses.field(default_factory=dict)


def _whole(text: str) -> int:
    text = text.strip()
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise ValueError(f"{text!r} is not a whole number >= 1")
    return int(text)


def parse_labels(text: str) -> dict[str, int]:
    """``stable=1,canary=2`` -> ``{"stable": 1, "canary": 2}``; ``ValueError`` saying what is accepted."""
    labels: dict[str, int] = {}
    for pair in text.split(","):
        label, equals, version = (part.strip() for part in pair.partition("="))
        if not equals or not LABEL.fullmatch(label) or label in labels:
            reason = f"label {label!r} is given twice; " if label in labels else ""
            raise ValueError(f"{reason}expected {LABEL_FORMS}")
        try:
            labels[label] = _whole(version)
        except ValueError:
            raise ValueError(f"expected {LABEL_FORMS}") from None
    return labels


def check_labels(policy: VersionPolicy, labels: dict[str, int]) -> None:
    """A label of a ``specific`` policy must name one of its versions: no other is ever served."""
    for label, version in labels.items():
        if policy.kind == "specific" and version not in policy.versions:
            raise ValueError(f"label {label!r} names version {version}, which {policy} never serves")


# --- the model config file -------------------------------------------------------------------
# message -> field -> (type, repeated); a type is "string", "int" or another message's name.
_SCHEMA: dict[str, dict[str, tuple[str, bool]]] = {
    "ModelServerConfig": {"model_config_list": ("ModelConfigList", False)},
    "ModelConfigList": {"config": ("ModelConfig", True)},
    "ModelConfig": {
        "name": ("string", False),
        "base_path": ("string", False),
        "model_platform": ("string", False),
        "model_version_policy": ("ModelVersionPolicy", False),
        "version_labels": ("VersionLabel", True),
    },
    "ModelVersionPolicy": {"latest": ("Latest", False), "all": ("All", False), "specific": ("Specific", False)},
    "Latest": {"num_versions": ("int", False)},
    "All": {},
    "Specific": {"versions": ("int", True)},
    "VersionLabel": {"key": ("string", False), "value": ("int", False)},
}

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\f\v]+|\#[^\n]*)
  | (?P<newline>\n)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<int>[-+]?[0-9]+)
  | (?P<string>["'])
  | (?P<punct>[{}:\[\];,])
""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
            "\\": "\\", "'": "'", '"': '"', "?": "?"}


@dataclasses.dataclass
class _Token:
    kind: str  # ident, int, string, one of {}:[];, or "end"
    value: str | int
    line: int


@dataclasses.dataclass
class _Value:
    value: str | int | dict  # a message is a dict: field -> list of _Value
    line: int


def _tokens(text: str, fail) -> list[_Token]:
    tokens, line, at = [], 1, 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            fail(line, f"unexpected character {text[at]!r}")
        kind, at = match.lastgroup, match.end()
        if kind == "newline":
            line += 1
        elif kind == "string":
            value, at = _string(text, at, match.group(), line, fail)
            tokens.append(_Token("string", value, line))
        elif kind in ("ident", "int"):
            tokens.append(_Token(kind, match.group() if kind == "ident" else int(match.group()), line))
        elif kind == "punct":
            tokens.append(_Token(match.group(), match.group(), line))
    tokens.append(_Token("end", "", line))
    return tokens


def _string(text: str, at: int, quote: str, line: int, fail) -> tuple[str, int]:
    chars = []
    while True:
        if at >= len(text) or text[at] == "\n":
            fail(line, f"unterminated string (no closing {quote})")
        char, at = text[at], at + 1
        if char == quote:
            return "".join(chars), at
        if char != "\\":
            chars.append(char)
            continue
        escape = text[at:at + 1]
        if escape in _ESCAPES:
            chars.append(_ESCAPES[escape])
            at += 1
        elif (octal := re.match(r"[0-7]{1,3}", text[at:at + 3])):
            chars.append(chr(int(octal.group(), 8)))
            at += octal.end()
        elif (hexa := re.match(r"x([0-9A-Fa-f]{1,2})", text[at:at + 3])):
            chars.append(chr(int(hexa.group(1), 16)))
            at += hexa.end()
        else:
            fail(line, f"unknown escape \\{escape} in a string")


class _Parser:
    def __init__(self, tokens: list[_Token], fail):
        self.tokens, self.at, self.fail = tokens, 0, fail

    def next(self) -> _Token:
        token = self.tokens[self.at]
        self.at += token.kind != "end"
        return token

    def peek(self) -> str:
        return self.tokens[self.at].kind

    def message(self, type_name: str, opened: _Token | None = None) -> dict[str, list[_Value]]:
        schema, fields = _SCHEMA[type_name], {}
        while True:
            token = self.next()
            if token.kind == ("}" if opened else "end"):
                return fields
            if token.kind == "end":
                self.fail(opened.line, "unterminated '{' (no closing '}')")
            if token.kind != "ident":
                self.fail(token.line, f"expected a field name, not {_show(token)}")
            if token.value not in schema:
                known = ", ".join(schema) or "none"
                self.fail(token.line, f"unknown field {token.value!r} in {type_name} (known fields: {known})")
            field_type, repeated = schema[token.value]
            colon = self.peek() == ":"
            if colon:
                self.next()
            values = fields.setdefault(token.value, [])
            if field_type in _SCHEMA:
                brace = self.next()
                if brace.kind != "{":
                    self.fail(brace.line, f"expected '{{' after {token.value}, not {_show(brace)}")
                values.append(_Value(self.message(field_type, brace), token.line))
            elif not colon:
                self.fail(token.line, f"expected ':' after {token.value}")
            elif repeated and self.peek() == "[":
                self.next()
                while self.peek() != "]":
                    values.append(self.scalar(token.value, field_type))
                    if self.peek() == ",":
                        self.next()
                    elif self.peek() != "]":
                        self.fail(self.tokens[self.at].line, f"expected ',' or ']' in the list of {token.value}")
                self.next()
            else:
                values.append(self.scalar(token.value, field_type))
            if len(values) > 1 and not repeated:
                self.fail(token.line, f"{token.value} is given more than once")
            if self.peek() in (";", ","):
                self.next()

    def scalar(self, name: str, field_type: str) -> _Value:
        token = self.next()
        if token.kind != field_type:
            wanted = "a quoted string" if field_type == "string" else "a whole number"
            self.fail(token.line, f"{name} must be {wanted}, not {_show(token)}")
        return _Value(token.value, token.line)


def _show(token: _Token) -> str:
    return "the end of the file" if token.kind == "end" else repr(token.value)


def parse_model_config_file(path) -> dict[str, ModelConfig]:
    """Task name -> ``ModelConfig`` from a TF Serving model config file; ``ModelConfigError`` names file and line.

    Names must be GLUE tasks that have a model of their own. ``base_path`` is
    accepted and ignored (models are always under ``<model dir>/models/<task>``);
    ``model_platform`` must be ``tensorflow`` if given.
    """

    def fail(line: int, message: str):
        raise ModelConfigError(f"{path}:{line}: {message}")

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ModelConfigError(f"{path}: cannot read it: {reason}") from None
    root = _Parser(_tokens(text, fail), fail).message("ModelServerConfig")
    if "model_config_list" not in root:
        fail(1, "no model_config_list { config { name: ... } }")
    configs = root["model_config_list"][0].value.get("config", [])
    if not configs:
        fail(root["model_config_list"][0].line, "the model_config_list names no model")
    models: dict[str, ModelConfig] = {}
    for config in configs:
        name = _model_name(config, models, fail)
        models[name] = _model_config(config.value, fail)
    return models


def _model_name(config: _Value, models: dict, fail) -> str:
    if "name" not in config.value:
        fail(config.line, "a config without a name")
    name = config.value["name"][0]
    if name.value not in TASKS:
        fail(name.line, f"unknown model {name.value!r}: expected a GLUE task ({', '.join(TASKS)})")
    task = TASKS[name.value]
    if task.predicted_by != task.name:
        fail(name.line, f"{task.name} has no model of its own (the {task.predicted_by} model answers it)")
    if name.value in models:
        fail(name.line, f"model {name.value!r} is configured twice")
    for platform in config.value.get("model_platform", []):
        if platform.value != "tensorflow":
            fail(platform.line, f"model_platform {platform.value!r}: only 'tensorflow' is served")
    return name.value


def _model_config(config: dict, fail) -> ModelConfig:
    policy = VersionPolicy("latest")
    if "model_version_policy" in config:
        choice = config["model_version_policy"][0]
        if len(choice.value) != 1:
            fail(choice.line, "model_version_policy needs exactly one of latest, all or specific")
        (kind, [chosen]), = choice.value.items()
        try:
            if kind == "latest":
                count = chosen.value.get("num_versions", [_Value(1, chosen.line)])[0]
                if count.value < 1:
                    fail(count.line, f"num_versions {count.value} is not a whole number >= 1")
                policy = VersionPolicy("latest", num_versions=count.value)
            elif kind == "all":
                policy = VersionPolicy("all")
            else:
                versions = chosen.value.get("versions", [])
                bad = next((v for v in versions if v.value < 1), None)
                if bad is not None:
                    fail(bad.line, f"version {bad.value} is not a whole number >= 1")
                policy = VersionPolicy("specific", versions=tuple(v.value for v in versions))
        except ModelConfigError:
            raise
        except ValueError as error:
            fail(chosen.line, str(error))
    labels: dict[str, int] = {}
    for entry in config.get("version_labels", []):
        fields = entry.value
        if "key" not in fields or "value" not in fields:
            fail(entry.line, "version_labels needs a key and a value")
        key, version = fields["key"][0], fields["value"][0]
        if not LABEL.fullmatch(key.value):
            fail(key.line, f"label {key.value!r}: labels are made of A-Za-z0-9_-")
        if key.value in labels:
            fail(key.line, f"label {key.value!r} is given twice")
        if version.value < 1:
            fail(version.line, f"label {key.value!r}: version {version.value} is not a whole number >= 1")
        labels[key.value] = version.value
        try:
            check_labels(policy, {key.value: version.value})
        except ValueError as error:
            fail(version.line, str(error))
    return ModelConfig(policy, labels)
