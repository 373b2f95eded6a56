"""Errors for bad or missing GLUE data, each saying what to fix."""

from glue_tf.errors import GlueTfError


class DataError(GlueTfError, ValueError):
    """A data file that cannot be read as its task's format."""

    def __init__(self, path, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class MissingDataError(GlueTfError, FileNotFoundError):
    """A task or split that the chosen source does not have, and how to get it."""
