"""GLUE from TensorFlow Datasets, online or offline from the official archives.

tfds' ``glue`` builder downloads the official files, or, given a
``manual_dir``, takes them from there after checking their checksums; the
file names it expects are the registry's ``Task.tfds_archives``. Imported only
where used: the serving stack has no tfds.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from glue_tf.data.errors import MissingDataError
from glue_tf.tasks import Task

DEFAULT_DATA_DIR = os.environ.get("TFDS_DATA_DIR") or os.path.join("~", "tensorflow_datasets")
# The ways to get GLUE, named by every "no data" error (docs/TRAINING.md's "Data" section shows each).
WAYS_TO_GET_DATA = (
    "tfds with network (downloads to TFDS_DATA_DIR, default ~/tensorflow_datasets), "
    "GLUE_DIR=<a GLUE TSV folder> (--glue-dir), or "
    "TFDS_MANUAL_DIR=<a folder of the official GLUE archives> (--tfds-manual-dir)"
)
PROBE_TIMEOUT_SECONDS = 10


class DownloadUnreachableError(MissingDataError):
    """tfds would have to download a task, and its download URL cannot be reached."""


@functools.lru_cache(maxsize=None)
def _unreachable_reason(url: str) -> str | None:
    """Why ``url`` cannot be reached (None when any HTTP answer comes back).

    One request with no retries, through the same proxies tfds' downloader
    (requests) would use: without a network, tfds itself retries each archive
    for minutes before giving up.
    """
    import requests

    try:
        requests.head(url, timeout=PROBE_TIMEOUT_SECONDS, allow_redirects=True)
    except requests.RequestException as error:
        cause = getattr(error.args[0], "reason", error) if error.args else error  # urllib3's, if any
        return f"{type(error).__name__}: {' '.join(str(cause).split())[:200]}"
    return None


def check_download(task: Task, data_dir=None) -> None:
    """Raises ``DownloadUnreachableError`` when ``task`` is not prepared in ``data_dir`` and
    the network cannot give it, at once, naming every way to get the data."""
    glue_builder = builder(task, data_dir)
    if glue_builder.is_prepared():
        return
    url = glue_builder.builder_config.data_url
    reason = _unreachable_reason(url)
    if reason is not None:
        where = os.path.expanduser(data_dir or DEFAULT_DATA_DIR)
        raise DownloadUnreachableError(
            f"no GLUE data: tfds glue/{task.tfds_config} is not in {where} and its download "
            f"{url} cannot be reached ({reason}); get the data with {WAYS_TO_GET_DATA}"
        )


def _download_config(manual_dir):
    import tensorflow_datasets as tfds

    return tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)) if manual_dir else None


def missing_archives(task: Task, manual_dir) -> list[str]:
    """Archives of ``task`` that ``manual_dir`` lacks (tfds would have to download them)."""
    return [name for name in task.tfds_archives if not (Path(manual_dir) / name).is_file()]


def builder(task: Task, data_dir=None):
    import tensorflow_datasets as tfds

    return tfds.builder(
        f"glue/{task.tfds_config}", data_dir=os.path.expanduser(data_dir or DEFAULT_DATA_DIR)
    )


def is_prepared(task: Task, data_dir=None) -> bool:
    return builder(task, data_dir).is_prepared()


def prepare(task: Task, data_dir=None, manual_dir=None, download: bool = True):
    """Builds ``glue/<config>`` into ``data_dir`` if needed and returns the builder.

    With ``manual_dir`` nothing is downloaded: a task whose archives are not
    there is reported missing with the file names tfds needs. Without network
    and without ``manual_dir``, only datasets already prepared are used.
    """
    glue_builder = builder(task, data_dir)
    if glue_builder.is_prepared():
        return glue_builder
    where = os.path.expanduser(data_dir or DEFAULT_DATA_DIR)
    if manual_dir is not None:
        lacking = missing_archives(task, manual_dir)
        if lacking:
            raise MissingDataError(
                f"{task.display_name}: tfds glue/{task.tfds_config} needs {', '.join(lacking)} "
                f"in the manual dir {manual_dir} (the official GLUE archives, under the names "
                "tfds' checksums list)"
            )
    elif not download:
        raise MissingDataError(
            f"{task.display_name}: tfds glue/{task.tfds_config} is not prepared in {where}; "
            "allow downloads or pass a manual dir with the official archives"
        )
    else:
        check_download(task, data_dir)
    glue_builder.download_and_prepare(download_config=_download_config(manual_dir))
    return glue_builder


def load_split(task: Task, split: str, data_dir=None, manual_dir=None, download: bool = True):
    """One split as tfds gives it: a ``tf.data.Dataset`` of ``idx``/``label``/text dicts."""
    glue_builder = prepare(task, data_dir, manual_dir, download)
    if split not in glue_builder.info.splits:
        raise MissingDataError(
            f"tfds glue/{task.tfds_config} has no split {split!r}; "
            f"it has {', '.join(glue_builder.info.splits)}"
        )
    return glue_builder.as_dataset(split=split, shuffle_files=False)


def num_examples(task: Task, split: str, data_dir=None, manual_dir=None, download: bool = True) -> int:
    glue_builder = prepare(task, data_dir, manual_dir, download)
    return glue_builder.info.splits[split].num_examples
