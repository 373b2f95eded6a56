"""Which model server can run an export: the ops it needs beyond core TensorFlow.

The export tokenizes inside its graph with tensorflow-text ops. A model server
has kernels for them only if it links a tensorflow-text that registers them:
stock ``tensorflow_model_server`` 2.12 to 2.19 bundles tensorflow-text 2.12.1,
which lacks ``TFText>RoundRobinTrim`` (tensorflow/serving#2267), and 2.20
bundles tensorflow-text 2.20 (``tensorflow_serving/workspace.bzl``). KerasHub's
``MultiSegmentPacker`` emits that op even for one text field, so every export
needs TF Serving 2.20 or newer. The table below is the single statement of
that; a test reads an export's graph in a process without tensorflow-text and
checks that its non-core ops are exactly these, so a KerasHub upgrade that adds
an op fails the suite instead of a user's server.
"""

from __future__ import annotations

from pathlib import Path

# tensorflow-text op -> the first stock TF Serving release known to register it. The first three are in the
# tensorflow-text 2.12.1 that TF Serving 2.12-2.19 bundle; older releases were not checked, so 2.12 is a bound.
TENSORFLOW_TEXT_OPS = {
    "CaseFoldUTF8": "2.12",
    "RegexSplitWithOffsets": "2.12",
    "FastWordpieceTokenizeWithOffsets": "2.12",
    "TFText>RoundRobinTrim": "2.20",
}


def op_types(export_dir) -> set[str]:
    """Every op type a SavedModel's graph and function library use (its own functions excluded)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((Path(export_dir) / "saved_model.pb").read_bytes())
    types, functions = set(), set()
    for meta_graph in saved.meta_graphs:
        types.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            functions.add(function.signature.name)
            types.update(node.op for node in function.node_def)
    return types - functions


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def requirements(export_dir) -> dict:
    """``{"custom_ops": [...], "tf_serving_min": "2.20"}`` for the export at ``export_dir``.

    Raises ValueError for a tensorflow-text op the table does not know, since its TF Serving
    requirement would be a guess.
    """
    used = op_types(export_dir)
    unknown = sorted(op for op in used if op.startswith("TFText>") and op not in TENSORFLOW_TEXT_OPS)
    if unknown:
        raise ValueError(f"{export_dir}: tensorflow-text ops {unknown} are not in "
                         "glue_tf.tf_serving_requirements.TENSORFLOW_TEXT_OPS; add them with their first TF Serving")
    custom = sorted(op for op in used if op in TENSORFLOW_TEXT_OPS)
    minimum = max((TENSORFLOW_TEXT_OPS[op] for op in custom), key=_version_key, default=None)
    return {"custom_ops": custom, "tf_serving_min": minimum}
