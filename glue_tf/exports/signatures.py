"""The export's signatures, the compiled path's shape grid, and TF Serving's warm-up file.

The ground floor that the export (which writes the signatures), the choice of
a signature (:mod:`glue_tf.exports.choice`) and the service (which replays the
warm-up) all read, so that each fact lives once: the signature names, the grid
of shapes the compiled signature pads to, the rule cutting a batch into
sub-batches of grid sizes, and the layout of
``<version>/assets.extra/tf_serving_warmup_requests``.

XLA compiles once per input shape. The compiled signature therefore pads each
sub-batch to a small, fixed grid (:data:`BATCH_SIZES` rows by one of
:func:`grid_widths` tokens), so a version compiles a dozen programs once, at
warm-up, and never on a request. The warm-up file holds one request per grid
shape, written as TF Serving documents it (``PredictionLog`` records of
``serving_default`` requests, since stock TF Serving runs only that signature
without its XLA flag); replayed against any signature, it covers every shape.
Reading it needs TensorFlow and ``tensorflow-serving-api`` only.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT = "serving_default"  # float32, uncompiled, pads to the grid width holding the call's longest text
COMPILED = "serving_compiled"  # float32, encoder under XLA on grid shapes
BFLOAT16 = "serving_bfloat16"  # uncompiled, computed under mixed_bfloat16
NAMES = (DEFAULT, COMPILED, BFLOAT16)
# The precision each signature computes in, a word of glue_tf.precision's vocabulary.
PRECISION = {DEFAULT: "float32", COMPILED: "float32", BFLOAT16: "bfloat16"}
# Functions of the SavedModel beside the signatures: text -> packed rows and their token counts, and for each
# signature the same computation from packed rows, so a caller that sorts by token count tokenizes once.
TOKENIZE = "tokenize"
TOKEN_COUNT = "token_count"
FROM_TOKENS = {DEFAULT: "from_tokens_float32", COMPILED: "from_tokens_compiled", BFLOAT16: "from_tokens_bfloat16"}

WIDTHS = (16, 32, 64, 128)
PAD_STEP = 16
BATCH_SIZES = (1, 8, 64)

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
_WORD = "the"  # one token in every vocabulary we ship: warm-up texts are this word repeated


def grid_widths(max_seq_length: int) -> tuple[int, ...]:
    """:data:`WIDTHS` capped at ``max_seq_length``, which ends the grid if it is not on it."""
    widths = tuple(w for w in WIDTHS if w < max_seq_length)
    return (*widths, int(max_seq_length))


def padded_widths(max_seq_length: int) -> tuple[int, ...]:
    """The widths uncompiled calls pad to: multiples of :data:`PAD_STEP` up to ``max_seq_length``.

    Few enough that per-shape caches stay bounded (8 shapes at 128 tokens), fine enough that a call
    pads fewer than ``PAD_STEP`` tokens a row past its longest text; the compiled grid is coarser
    because each of its widths is a compile.
    """
    widths = tuple(range(PAD_STEP, max_seq_length, PAD_STEP))
    return (*widths, int(max_seq_length))


def shape_key(batch: int, width: int) -> str:
    """How metadata names a grid shape: ``"<batch>x<width>"``."""
    return f"{batch}x{width}"


def grid_shapes(max_seq_length: int) -> list[tuple[int, int]]:
    """Every ``(batch, width)`` the compiled signature runs, smallest first."""
    return [(b, w) for b in BATCH_SIZES for w in grid_widths(max_seq_length)]


def sub_batch_size(rows_left: int) -> int:
    """The grid batch size for the next sub-batch: the largest at most twice the rows left.

    So 9 rows run as 8 + 1, 33 rows as one 64 (31 padding rows cost less than
    five more calls), 200 rows as 64 + 64 + 64 + 8. The compiled signature
    computes the same rule in its graph; this is its reference.
    """
    return max(b for b in BATCH_SIZES if b <= 2 * rows_left) if rows_left > 0 else 0


def sub_batches(rows: int) -> list[int]:
    """The grid batch sizes ``rows`` rows run as, in order (the rows they hold: all but the last full)."""
    sizes = []
    while rows > 0:
        sizes.append(sub_batch_size(rows))
        rows -= min(sizes[-1], rows)
    return sizes


def warmup_texts(preprocessor, text_features, max_seq_length: int) -> dict[int, dict[str, list[str]]]:
    """For each grid width, one row of text (a column per field) whose packed length lands in it.

    The common word repeated, as long as fits the width; two-field tasks split
    the words between their fields. ``preprocessor`` is the export's KerasHub
    preprocessor, which measures the packed length as the export will.
    """
    import numpy as np
    import tensorflow as tf

    widths = grid_widths(max_seq_length)
    counts = np.arange(1, max_seq_length + 1)
    fields = len(text_features)
    candidates = [[" ".join([_WORD] * -(-(n - k) // fields)) for n in counts] for k in range(fields)]
    packed = preprocessor(x=tuple(tf.constant(column, tf.string) for column in candidates))  # every family takes tensors
    lengths = np.asarray(packed["padding_mask"]).sum(axis=1)
    rows = {}
    for width in widths:
        fitting = np.flatnonzero(lengths <= width)
        pick = int(fitting[-1]) if fitting.size else 0
        rows[width] = {field: [candidates[k][pick]] for k, field in enumerate(text_features)}
    return rows


def write_warmup(version_dir, preprocessor, text_features, max_seq_length: int) -> list[dict[str, list[str]]]:
    """Writes the warm-up file (a request per grid shape) and returns its requests as columns."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    rows = warmup_texts(preprocessor, text_features, max_seq_length)
    requests = [{field: column * batch for field, column in rows[width].items()}
                for batch, width in grid_shapes(max_seq_length)]
    path = Path(version_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for columns in requests:
            request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(signature_name=DEFAULT))
            for field, texts in columns.items():
                request.inputs[field].CopyFrom(tf.make_tensor_proto(texts, dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return requests


def warmup_requests(version_dir) -> list[dict[str, list[str]]]:
    """The export's warm-up requests as columns (``[{field: [text, ...]}, ...]``); [] if it has none."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = Path(version_dir) / WARMUP_FILE
    if not path.is_file():
        return []
    requests = []
    for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record)
        inputs = log.predict_log.request.inputs
        requests.append({field: [v.decode("utf-8") for v in inputs[field].string_val] for field in inputs})
    return requests
