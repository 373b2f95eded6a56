"""The one base class of every error meant for the person running glue-tf.

A user's mistake (an unknown task, a missing folder, a model of the wrong task)
and a bug in glue-tf need opposite treatment: the first deserves one line saying
what to fix, the second its full traceback. Catching built-in types such as
``KeyError`` cannot tell them apart, so every error written for users derives
from ``GlueTfError`` and the command line (``glue_tf.cli.main``) catches that
class alone; anything else propagates with its traceback.

Errors that belong to one subsystem live beside it and derive from this class
(``glue_tf.data.errors``, ``BackboneError``, ``ConfigMismatchError``,
``OutputError``, ``serving.settings.SettingsError``); the ones below are the
mistakes that are not about any one of them. Messages name the exact thing to fix.
"""


class GlueTfError(Exception):
    """An error meant for users: its message alone says what went wrong and what to do."""


class UnknownTaskError(GlueTfError):
    """A task name that is not one of the GLUE tasks."""


class NotTrainableError(GlueTfError):
    """A task with no training data of its own (AX), asked to be trained."""


class ExportNotFoundError(GlueTfError, FileNotFoundError):
    """A ``--model`` path that holds no export."""


class ModelMismatchError(GlueTfError):
    """An export of one task's model, asked to score or predict another task."""


class UnlabelledSplitError(GlueTfError):
    """A split without labels (a test split), asked to be scored."""


class NoPredictionsError(GlueTfError, FileNotFoundError):
    """``glue-tf submit`` on a folder without test predictions."""
