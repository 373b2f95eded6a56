"""glue-tf: fine-tune KerasHub BERT backbones on GLUE, export text-in SavedModels, serve them.

    import glue_tf

    result = glue_tf.train("rte", glue_dir="glue_data", epochs=1, out="runs/rte")
    predictor = glue_tf.load(result.export_dir)
    predictor.predict([("A man is playing.", "Someone plays.")])

The names resolve lazily (PEP 562), so ``import glue_tf`` loads neither
TensorFlow nor KerasHub: the service imports ``glue_tf`` modules without the
training stack, and a notebook pays for TensorFlow only when it calls one.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("glue-tf")  # one source of truth: pyproject.toml
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

_API = ("train", "train_all", "load", "score", "Result", "Report", "Predictor")
__all__ = [*_API, "__version__"]


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module("glue_tf.api"), name)
    raise AttributeError(f"module 'glue_tf' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
