"""Loading an export's SavedModel with TensorFlow and tensorflow-text only.

The tokenizer runs inside the graph, so a loaded export needs no KerasHub: the
service and ``predict`` load it here. Each signature keeps a reference to the
loaded object that owns its resources (the vocabulary table, the variables),
which would otherwise be freed while the signature is still called.
"""

from __future__ import annotations

from pathlib import Path

from glue_tf.exports.store import read_metadata


def loaded_signatures(path) -> dict:
    """The SavedModel's signatures by name, each holding the loaded object that owns its resources."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  registers the tokenizer ops the graph uses

    loaded = tf.saved_model.load(str(path))
    found = dict(loaded.signatures)
    for signature in found.values():
        signature._loaded = loaded  # keep the resources alive as long as the signature
    return found


def token_counter(signatures: dict):
    """The export's in-graph token counter, ``counter(*texts per text field) -> int32 lengths`` (special tokens
    included, truncated as the signatures truncate), or None for an export written before it was saved."""
    loaded = next(iter(signatures.values()))._loaded
    return getattr(loaded, "token_lengths", None)


def from_tokens(signatures: dict, name: str):
    """``(tokenize, run)`` for signature ``name``: ``tokenize(*texts per text field)`` returns the packed rows
    and their ``token_count``; ``run(packed rows)`` returns the signature's outputs for them. None for an
    export written before these functions were saved."""
    from glue_tf.exports.signatures import FROM_TOKENS, TOKENIZE

    loaded = next(iter(signatures.values()))._loaded
    tokenize, run = getattr(loaded, TOKENIZE, None), getattr(loaded, FROM_TOKENS[name], None)
    return (tokenize, run) if tokenize is not None and run is not None else None


def load_signatures(path) -> tuple[dict, dict]:
    """Loads an export; returns ``({name: signature}, metadata)``."""
    metadata = read_metadata(path)
    return loaded_signatures(path), metadata


def load(path):
    """The export's ``serving_default`` and its metadata: ``(signature, metadata)``."""
    signatures, metadata = load_signatures(path)
    return signatures["serving_default"], metadata


def signature_def_map(path) -> dict:
    """The export's SignatureDefs as JSON, as TF Serving renders them in ``GetModelMetadataResponse``."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((Path(path) / "saved_model.pb").read_bytes())
    defs = saved.meta_graphs[0].signature_def
    return {"signature_def": {name: json_format.MessageToDict(
        defs[name], preserving_proto_field_name=True, always_print_fields_with_no_presence=True) for name in defs}}
