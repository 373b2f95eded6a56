"""Which ops an export needs that core TensorFlow does not register (evidence for TF Serving).

    python scripts/export_ops.py runs/latest/models/sst2/1

Reads ``saved_model.pb`` (graph and function library) in a process that imports
TensorFlow but not tensorflow-text, and prints one JSON object: every op type the
export uses, and those unknown to core TensorFlow. A model server can load the
export only if it has kernels for the latter (tensorflow-text's ops).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "tensorflow_text" in sys.modules:
        raise SystemExit("run this in a fresh interpreter: tensorflow_text registers its ops on import")
    from tensorflow.python.framework import op_def_registry

    from glue_tf.tf_serving_requirements import op_types

    types = op_types(Path(argv[0]))
    missing = sorted(t for t in types if op_def_registry.get(t) is None)
    print(json.dumps({"export": argv[0], "op_types": len(types), "not_in_core_tensorflow": missing}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
