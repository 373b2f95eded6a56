"""Backbone + tokenizer from one ``--backbone`` value, with one clear error when it is wrong.

Accepts a KerasHub preset name, an ``hf://`` or ``kaggle://`` handle (both
downloaded by KerasHub where the network allows), a local Keras preset folder,
or a local Hugging Face checkpoint folder, which KerasHub converts itself. The
default, ``config.DEFAULT_BACKBONE``, is found under the project root from any
current directory. The tokenizer always comes from the same preset as the
backbone. KerasHub's generic ``Backbone`` / ``TextClassifierPreprocessor``
classes pick the family (BERT, RoBERTa, ...) from the preset's config.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from glue_tf.errors import GlueTfError


class BackboneError(GlueTfError, ValueError):
    """The ``--backbone`` value names nothing loadable; says what was looked for."""


HANDLE_PREFIXES = ("hf://", "kaggle://")


def _is_handle(spec: str) -> bool:
    """A Hugging Face Hub or Kaggle handle, which KerasHub downloads itself."""
    return spec.startswith(HANDLE_PREFIXES)


def _looks_like_path(spec: str) -> bool:
    if _is_handle(spec):
        return False
    return os.sep in spec or spec.startswith((".", "~")) or os.path.exists(spec)


def _local_folder(spec: str) -> Path:
    """The folder ``spec`` names; the default checkpoint is looked up under the project root."""
    from glue_tf.config import DEFAULT_BACKBONE, default_backbone_path

    if spec == DEFAULT_BACKBONE and not Path(spec).is_dir():
        return default_backbone_path()
    return Path(spec).expanduser()


def _check_handle(spec: str) -> str:
    """Fetches the handle's config.json (KerasHub caches it for the load that follows), so a
    handle that cannot be reached fails before any data is read or model built."""
    from keras_hub.src.utils.preset_utils import get_file  # what from_preset downloads with

    site = "Hugging Face Hub" if spec.startswith("hf://") else "Kaggle"
    try:
        get_file(spec, "config.json")
    except Exception as error:  # no network, no such model, no permission: all end here
        reason = " ".join(str(error).split())[:300]
        raise BackboneError(
            f"--backbone {spec}: could not fetch its config.json from {site} ({type(error).__name__}: {reason}); "
            "without network, download the model where there is one and pass its local folder "
            "(--backbone path/to/folder: a Keras preset or Hugging Face checkpoint folder)"
        ) from error
    return f"{site} handle {spec}"


def describe_local(folder: Path) -> str:
    """``keras preset`` or ``hugging face checkpoint``, from the folder's files."""
    config = folder / "config.json"
    if (folder / "metadata.json").is_file() and config.is_file():
        return "Keras preset"
    if config.is_file():
        try:
            model_type = json.loads(config.read_text()).get("model_type", "?")
        except ValueError:
            model_type = "?"
        return f"Hugging Face checkpoint ({model_type})"
    return "folder"


def local_folder(spec: str) -> Path | None:
    """The local folder ``spec`` names (a Keras preset or Hugging Face checkpoint), or None for a preset
    name or a hub handle."""
    return _local_folder(spec) if _looks_like_path(spec) else None


def check_spec(spec: str) -> str:
    """Validates ``spec`` before anything heavy runs; returns a short description."""
    if _is_handle(spec):
        return _check_handle(spec)
    if _looks_like_path(spec):
        folder = _local_folder(spec)
        if not folder.is_dir():
            raise BackboneError(
                f"--backbone {spec}: no folder at {folder.resolve()} "
                "(looked for a local Keras preset or Hugging Face checkpoint folder; "
                "run `make install` for the default MiniLM checkpoint)"
            )
        if not (folder / "config.json").is_file():
            raise BackboneError(
                f"--backbone {spec}: {folder.resolve()} has no config.json "
                "(a Keras preset folder has config.json and metadata.json; "
                "a Hugging Face checkpoint has config.json, weights and a vocabulary)"
            )
        return f"{describe_local(folder)} at {folder.resolve()}"
    import keras_hub

    known = sorted(keras_hub.models.Backbone.presets)
    if spec not in known:
        close = [name for name in known if spec.split("_")[0] in name][:8]
        hint = f"; presets of that family: {', '.join(close)}" if close else ""
        raise BackboneError(
            f"--backbone {spec}: not a local folder and not a KerasHub preset name{hint}"
        )
    return f"KerasHub preset {spec}"


def _preprocessor(source: str, sequence_length: int):
    """The family's ``TextClassifierPreprocessor``; for a family without one (ELECTRA in
    KerasHub 0.32), the generic class over the preset's tokenizer, which packs
    ``start a end b end`` with the tokenizer's own special tokens."""
    import keras_hub

    try:
        return keras_hub.models.TextClassifierPreprocessor.from_preset(source, sequence_length=sequence_length)
    except ValueError as error:
        if "Unable to find a subclass" not in str(error):
            raise
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(source)
    return keras_hub.models.TextClassifierPreprocessor(tokenizer=tokenizer, sequence_length=sequence_length)


def load(spec: str, sequence_length: int):
    """Returns ``(backbone, preprocessor)`` for ``spec`` (see module docstring)."""
    import keras_hub

    description = check_spec(spec)
    folder = local_folder(spec)
    source = str(folder) if folder is not None else spec
    try:
        backbone = keras_hub.models.Backbone.from_preset(source)
        preprocessor = _preprocessor(source, sequence_length)
    except BackboneError:
        raise
    except Exception as error:  # network, conversion or format errors from KerasHub
        raise BackboneError(f"--backbone {spec} ({description}) could not be loaded: {error}") from error
    return backbone, preprocessor
