"""TensorFlow's persistent XLA compilation cache, in a folder that survives runs.

Every process compiles its XLA programs afresh: an export's compiled signature
over its grid of shapes (measured at export, replayed at each service worker's
warm-up), and the compiled training step per bucket width where XLA is on.
TensorFlow can keep the compiled executables on disk and load them in the next
process (``--tf_xla_persistent_cache_directory`` in ``TF_XLA_FLAGS``), so a
second run or worker loads what the first compiled instead of compiling it again
(docs/BENCHMARKS.md measures it); what remains of a compile is the lowering to
HLO, which TensorFlow still runs to build the key. ``TF_XLA_FLAGS`` is read once,
when TensorFlow loads, so the entry points call :func:`enable` before importing
it, through :func:`glue_tf.tf_startup.prepare`.

An entry is keyed by the program's HLO and input signature, and written to a
temporary file and renamed, so workers and runs can share the folder. The key
does not name the TensorFlow version or the CPU, and XLA:CPU compiles for the
host's instruction set: the folder therefore has one subfolder per TensorFlow
version and CPU, so a cache on a volume shared between machines never hands one
machine's code to another. TensorFlow fails a compilation whose entry it cannot
write, so a folder that cannot be created or written leaves the cache off. It
never evicts; delete the folder to reclaim it. Each load logs one harmless ``Error parsing text-format
tensorflow.XlaSerializedCacheEntry`` line: TensorFlow tries the text format
before the binary one it wrote. On AVX-512 CPUs a load also logs ``Target machine
feature +prefer-no-gather is not supported``: XLA lists its tuning preferences among
the features it compares with the host's, and the entry was compiled on this CPU.

``GLUE_TF_XLA_CACHE`` names the folder (default ``$XDG_CACHE_HOME/glue-tf/xla``,
else ``~/.cache/glue-tf/xla``); ``off`` turns the cache off. A cache directory the
user already gave in ``TF_XLA_FLAGS`` is left alone.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from glue_tf.precision import Machine

SETTING = "GLUE_TF_XLA_CACHE"
FLAGS_VARIABLE = "TF_XLA_FLAGS"
FLAG = "--tf_xla_persistent_cache_directory"
OFF = "off"


def enable(environ: MutableMapping[str, str], machine: Machine) -> str:
    """Adds ``machine``'s cache folder to ``TF_XLA_FLAGS`` in ``environ`` unless the user chose otherwise;
    returns a log line. :func:`glue_tf.tf_startup.prepare` passes ``os.environ`` before TensorFlow loads."""
    flags = environ.get(FLAGS_VARIABLE, "")
    if FLAG in flags:
        return f"XLA cache: {FLAGS_VARIABLE} already names one ({flags})"
    folder = machine_folder(environ, machine)
    if folder is None:
        return f"XLA cache: off ({SETTING}={environ.get(SETTING)})"
    try:  # TensorFlow fails the compilation itself when it cannot write an entry
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(f"{folder} is not writable")
    except OSError as error:
        return f"XLA cache: off (cannot write to {folder}: {error.strerror or error})"
    environ[FLAGS_VARIABLE] = f"{flags} {FLAG}={folder}".strip()
    return f"XLA cache: {folder}"


def machine_folder(environ: Mapping[str, str], machine: Machine) -> Path | None:
    """The folder :func:`enable` gives TensorFlow for ``machine`` (None where ``GLUE_TF_XLA_CACHE`` turns the cache
    off); :mod:`glue_tf.timing_cache` keeps export timings beside TensorFlow's entries there."""
    setting = environ.get(SETTING)
    if setting is not None and setting.strip().lower() in (OFF, ""):
        return None
    return _root(environ, setting) / _machine_key(machine)


def describe(environ: Mapping[str, str]) -> str:
    """The cache this process's TensorFlow uses, from ``TF_XLA_FLAGS``, for the run log."""
    for flag in environ.get(FLAGS_VARIABLE, "").split():
        if flag.startswith(f"{FLAG}="):
            return f"XLA cache: {flag.split('=', 1)[1]}"
    return "XLA cache: off"


def _root(environ, setting: str | None) -> Path:
    if setting:
        return Path(setting).expanduser()
    cache_home = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".cache")
    return Path(cache_home) / "glue-tf" / "xla"


def _machine_key(machine: Machine) -> str:
    """``tf-<version>-<CPU digest>``: what an entry depends on that TensorFlow's key leaves out."""
    from importlib import metadata

    try:
        version = metadata.version("tensorflow")
    except metadata.PackageNotFoundError:
        version = "unknown"
    described = f"{machine.cpu_model}|{' '.join(sorted(machine.cpu_flags))}"
    return f"tf-{version}-{hashlib.sha256(described.encode()).hexdigest()[:12]}"
