"""One worker of a two-worker MultiWorkerMirroredStrategy run (started by test_multiworker.py).

Usage: multiworker_job.py WORKER_INDEX PORT0 PORT1 PRESET GLUE_DIR OUT RESULT_JSON
"""

import json
import os
import sys

index, port0, port1, preset, glue_dir, out, result_path = sys.argv[1:]
os.environ["TF_CONFIG"] = json.dumps(
    {"cluster": {"worker": [f"127.0.0.1:{port0}", f"127.0.0.1:{port1}"]}, "task": {"type": "worker", "index": int(index)}}
)
os.environ["CUDA_VISIBLE_DEVICES"] = ""

from glue_tf import distribute  # noqa: E402

strategy, name = distribute.select_strategy()  # before any other TensorFlow op

from glue_tf.config import TrainConfig  # noqa: E402
from glue_tf.data.sources import TsvSource  # noqa: E402
from glue_tf.tasks import TASKS  # noqa: E402
from glue_tf.training import train_task  # noqa: E402

config = TrainConfig(backbone=preset, epochs=1, batch_size=8, max_train_examples=48, max_eval_examples=16, precision="float32",
                     measure_export=False)
result = train_task(TASKS["rte"], TsvSource(glue_dir), config, out, strategy=strategy, strategy_name=name, verbose=0)
with open(result_path, "w") as handle:
    json.dump({"strategy": result["strategy"], "fingerprint": result["weights_fingerprint"], "export": result.get("export")}, handle)
