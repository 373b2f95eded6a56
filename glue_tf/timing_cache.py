"""Signature timings an export measured, kept so the next export of the same shape does not measure them again.

How fast each signature runs, and how long the compiled one's grid takes to
compile, depends on the machine, the TensorFlow version, the backbone's shape
(family, vocabulary, layers, heads, widths), the number of text fields and
``max_seq_length``: not on the weights. So an export measures them once per such
key (:func:`key`) and later exports of that key reuse them; ``train-all`` measures
once per backbone shape and number of text fields rather than once per task. Only
timings are reused: the dev scores depend on the weights, and each export still
measures them (:mod:`glue_tf.export_measure`). One-field and two-field tasks do
not share timings: their signatures pack different inputs, and pairs are longer.

The entries live beside the XLA cache, in the per-TensorFlow-version, per-CPU
folder :func:`glue_tf.xla_cache.machine_folder` names (``GLUE_TF_XLA_CACHE``; ``off``
turns this cache off too), one JSON file per key, written to a temporary file and
renamed so concurrent exports never read half an entry. Where the folder cannot be
written, exports measure as they would without it and say why in their metadata.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
from pathlib import Path

from glue_tf import xla_cache
from glue_tf.precision import Machine

FOLDER = "glue-tf-export-timings"
REUSED_FIGURES = ("examples_per_second", "compile_seconds")  # per signature; the rest is measured each export
SHAPE_FIELDS = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim", "max_sequence_length")
FORMAT = 1  # bumped when what an entry holds, or how it was measured, changes


def key(backbone, text_fields: int, max_seq_length: int, measured_on: dict, grid: dict) -> dict:
    """What a signature's timing depends on: ``backbone``'s family and shape, the inputs, the machine
    (``measured_on``, oneDNN state included), TensorFlow's version and the compiled ``grid`` measured."""
    import tensorflow as tf

    config = backbone.get_config()
    return {"format": FORMAT, "tensorflow": tf.__version__, "measured_on": measured_on, "grid": grid,
            "backbone": {"family": type(backbone).__name__, **{name: config.get(name) for name in SHAPE_FIELDS}},
            "text_fields": text_fields, "max_seq_length": max_seq_length}


class TimingCache:
    """The entries of one folder (``folder`` None: off, for the reason ``off``)."""

    def __init__(self, folder: Path | None, off: str = ""):
        self.folder, self.off = folder, off

    @classmethod
    def here(cls, environ, machine: Machine) -> "TimingCache":
        """``machine``'s cache, in the folder :mod:`glue_tf.xla_cache` chooses from ``environ``."""
        folder = xla_cache.machine_folder(environ, machine)
        if folder is None:
            return cls(None, f"off ({xla_cache.SETTING}={environ.get(xla_cache.SETTING)})")
        return cls(folder / FOLDER)

    def lookup(self, found: dict) -> dict | None:
        """The entry stored for key ``found``, or None (none yet, unreadable, or a key that differs)."""
        if self.folder is None:
            return None
        try:
            entry = json.loads(self._path(found).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) and entry.get("key") == found else None

    def store(self, found: dict, signatures: dict, measured_by: dict) -> dict:
        """Keeps the timings of ``signatures`` (the metadata's entries) under key ``found``; returns the
        metadata's ``timings`` record: measured now, by ``measured_by``, and where (or why not) they were kept."""
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        entry = {"key": found, "measured_at": now, "measured_by": measured_by,
                 "signatures": {name: {figure: described.get(figure) for figure in REUSED_FIGURES}
                                for name, described in signatures.items()}}
        record = {"figures": "measured", "measured_at": now, "measured_by": measured_by}
        if self.folder is None:
            return {**record, "cache": self.off}
        path = self._path(found)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(entry, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as error:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            return {**record, "cache": f"not kept (cannot write {path}: {error.strerror or error})"}
        return {**record, "cache": str(path)}

    def reused(self, entry: dict) -> dict:
        """The metadata's ``timings`` record for figures taken from ``entry`` (found by :meth:`lookup`)."""
        return {"figures": "reused", "measured_at": entry["measured_at"], "measured_by": entry["measured_by"],
                "cache": str(self._path(entry["key"]))}

    def _path(self, found: dict) -> Path:
        return self.folder / f"{hashlib.sha256(json.dumps(found, sort_keys=True).encode()).hexdigest()[:20]}.json"
