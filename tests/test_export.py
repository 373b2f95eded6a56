"""Text-in SavedModels: same outputs as the Keras model, loadable without KerasHub, written atomically."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from glue_tf import backbones, export, features, tf_serving_requirements
from glue_tf import model as model_lib
from glue_tf.exports import saved_model, store
from glue_tf.precision import Machine
from glue_tf.tasks import TASKS

PROBE = Path(__file__).parent / "support" / "export_probe.py"

TEXTS = {
    "sentence1": ["The cat sat on the mat.", "A man is playing a flute while the band waits.", "Yes."],
    "sentence2": ["A cat sat.", "Someone plays music.", "No, it is not the same at all, not even close."],
}


def _keras_outputs(model, preprocessor, task, texts):
    """The Keras model on the same text, through the training-side feature pipeline."""
    import tensorflow as tf

    examples = {f: tf.constant(v) for f, v in texts.items()}
    examples["label"] = tf.zeros(len(texts["sentence1"]), tf.float32 if task.is_regression else tf.int64)
    examples["idx"] = tf.range(len(texts["sentence1"]), dtype=tf.int32)
    encoded = features.encode(tf.data.Dataset.from_tensor_slices(examples), task, preprocessor)
    dataset = features.batches_dataset(encoded, [np.arange(len(encoded))], with_labels=False,
                                       feature_names=model_lib.input_names(model))
    return model.predict(dataset, verbose=0)


def _probe(path, texts):
    result = subprocess.run([sys.executable, str(PROBE), str(path), json.dumps(texts)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("task_name", ["mrpc", "stsb"])
def test_export_reloads_without_keras_hub_and_matches_keras(tiny_preset, tmp_path, task_name):
    task = TASKS[task_name]
    backbone, preprocessor = backbones.load(str(tiny_preset), sequence_length=32)
    model = model_lib.build(backbone, task)
    path = export.export(model, preprocessor, task, tmp_path, metadata={"note": "test"})

    expected = _keras_outputs(model, preprocessor, task, TEXTS)
    probe = _probe(path, TEXTS)
    assert probe["keras_hub_imported"] is False
    assert probe["inputs"] == ["sentence1", "sentence2"]
    outputs = probe["outputs"]
    if task.is_regression:
        assert np.allclose(outputs["raw_score"], expected[:, 0], atol=1e-5)
        assert np.allclose(outputs["score"], np.clip(expected[:, 0], 0, 5), atol=1e-5)
    else:
        assert np.allclose(outputs["logits"], expected, atol=1e-5)
        probabilities = np.asarray(outputs["probabilities"])
        assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
        assert outputs["label_id"] == np.argmax(expected, axis=1).tolist()
    metadata = json.loads((path / "metadata.json").read_text())
    measured = {key: metadata.pop(key) for key in ("signatures", "measured_on", "measured_dev_examples", "timings")}
    described = {key: metadata.pop(key) for key in ("versions", "requires", "keras_artifact")}
    assert described["keras_artifact"]["folder"] == "keras" and described["versions"]["tensorflow"]
    seconds = metadata.pop("export_seconds")
    assert seconds["save"] > 0 and seconds["measure"] < seconds["save"]  # nothing to measure: no compiles
    assert metadata == {"note": "test", "task": task_name, "version": 1, "score_unit": "points",
                        "weights_sha256": export.weights_digest(model)}
    # Exported without dev examples: nothing measured, so nothing can be chosen for its speed.
    assert all(entry["examples_per_second"] is None and entry["dev_score"] is None
               for entry in measured["signatures"].values())
    assert measured["signatures"]["serving_compiled"]["compile_seconds"] is None
    assert measured["timings"] is None  # nothing measured, nothing kept for the next export


def test_versions_increase_and_incomplete_exports_are_invisible(tiny_preset, tmp_path):
    task = TASKS["cola"]
    backbone, preprocessor = backbones.load(str(tiny_preset), sequence_length=16)
    model = model_lib.build(backbone, task)
    root = store.task_dir(tmp_path, "cola")
    # A crashed export leaves a hidden temporary folder and a version folder without metadata.
    (root / ".tmp-1-999").mkdir(parents=True)
    (root / "7").mkdir()
    assert store.latest(tmp_path, "cola") is None
    first = export.export(model, preprocessor, task, tmp_path, metadata={})
    assert first.name == "8"  # never reuses a number a reader might have seen
    assert not (root / ".tmp-1-999").exists()
    assert store.versions(root) == [8]
    second = export.export(model, preprocessor, task, tmp_path, metadata={})
    assert store.latest(tmp_path, "cola") == second and store.versions(root) == [8, 9]

    # A resumed run recognises the latest version as holding its weights, and only those.
    digest = export.weights_digest(model)
    assert store.latest_holding(tmp_path, "cola", digest) == second
    model.weights[-1].assign(model.weights[-1] + 1.0)
    assert export.weights_digest(model) != digest
    assert store.latest_holding(tmp_path, "cola", export.weights_digest(model)) is None


def test_long_inputs_are_truncated_to_max_length(tiny_preset, tmp_path):
    task = TASKS["cola"]
    backbone, preprocessor = backbones.load(str(tiny_preset), sequence_length=16)
    path = export.export(model_lib.build(backbone, task), preprocessor, task, tmp_path, metadata={})
    probe = _probe(path, {"sentence": ["word " * 500, "", "short one"]})
    assert len(probe["outputs"]["label_id"]) == 3


def test_the_export_counts_tokens_as_its_signatures_pad_and_callers_sort_by_them(tiny_exports):
    import tensorflow as tf

    from glue_tf.exports.predictor import ExportPredictor, run_length_sorted

    task = TASKS["mrpc"]
    _, preprocessor = backbones.load(str(tiny_exports / "tiny_bert_preset"), sequence_length=64)
    path = tiny_exports / "models" / "mrpc" / "1"
    pairs = {"sentence1": ["a", "the cat sat on the mat", "word " * 100, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"],
             "sentence2": ["b", "a dog", "", "it is"]}
    predictor = ExportPredictor(path, Machine.detect())
    counted = saved_model.token_counter(predictor.signatures)(*(tf.constant(pairs[f]) for f in task.text_features)).numpy()
    packed = preprocessor(x=tuple(tf.constant(pairs[f]) for f in task.text_features))
    assert counted.tolist() == tf.reduce_sum(tf.cast(packed["padding_mask"], tf.int32), axis=1).numpy().tolist()
    assert counted[2] == 64  # truncated to max length, as the signatures truncate

    calls = []

    def call(columns):
        calls.append(columns["sentence1"])
        return {"row": np.array([pairs["sentence1"].index(t) for t in columns["sentence1"]])}

    # Sorted by tokens, the 36-character word (few tokens) goes before the 22-character sentence (more).
    assert counted[3] < counted[1]
    by_tokens = run_length_sorted(call, pairs, rows=1, lengths=counted)
    assert [c[0] for c in calls] == [pairs["sentence1"][i] for i in np.argsort(counted, kind="stable")]
    assert by_tokens["row"].tolist() == [0, 1, 2, 3]  # answers back in input order
    examples = [{"sentence1": a, "sentence2": b, "label": 0, "idx": i}
                for i, (a, b) in enumerate(zip(pairs["sentence1"], pairs["sentence2"]))]
    assert len(predictor.outputs(task, examples)) == 4


def test_exports_need_tensorflow_text_ops_beyond_core_tensorflow(trained_exports):
    """The evidence behind the README's TF Serving note: which ops, and what stock TensorFlow says."""
    version = store.latest(trained_exports, "mrpc")
    root = Path(__file__).resolve().parents[1]
    listed = subprocess.run([sys.executable, str(root / "scripts" / "export_ops.py"), str(version)],
                            capture_output=True, text=True, check=True)
    ops = json.loads(listed.stdout)["not_in_core_tensorflow"]
    assert ops == sorted(tf_serving_requirements.TENSORFLOW_TEXT_OPS)  # the documented set, exactly

    bare = "import tensorflow as tf; tf.saved_model.load(%r)" % str(version)
    failed = subprocess.run([sys.executable, "-c", bare], capture_output=True, text=True)
    assert failed.returncode != 0 and "Op type not registered" in failed.stderr


def test_dev_metrics_are_read_in_points_from_old_and_new_exports():
    assert store.dev_metrics({"score_unit": "points", "dev_metrics": {"accuracy": 84.25}}) == {"accuracy": 84.25}
    # Exports written before metadata.json recorded its unit held fractions.
    assert store.dev_metrics({"dev_metrics": {"accuracy": 0.8425}}) == {"accuracy": pytest.approx(84.25)}
    assert store.dev_metrics({"score_unit": "points"}) is None


# --- the three signatures (glue_tf.exports.signatures): compiled and bfloat16 beside serving_default ---

RAGGED_ROWS = (0, 1, 9, 65, 130)


def _texts(task, rows: int, seed: int = 0) -> dict:
    """``rows`` rows of 1 to 6 sentences per field; every seventh row far longer than max length."""
    from support.tiny import SENTENCES

    rng = np.random.default_rng(seed)
    texts = {f: [" ".join(rng.choice(SENTENCES, rng.integers(1, 7))) for _ in range(rows)]
             for f in task.text_features}
    for row in range(0, rows, 7):
        texts[task.text_features[0]][row] = "the cat sat on the mat " * 60
    return texts


def _call(signature, texts):
    import tensorflow as tf

    return {k: v.numpy() for k, v in signature(**{f: tf.constant(v, tf.string) for f, v in texts.items()}).items()}


@pytest.fixture(scope="module")
def measured_export(tiny_preset, glue_dir, tmp_path_factory):
    """An MRPC export at max length 32 (grid widths 16 and 32), measured on glue_dir's MRPC dev split."""
    from glue_tf.data.sources import TsvSource

    task = TASKS["mrpc"]
    backbone, preprocessor = backbones.load(str(tiny_preset), sequence_length=32)
    dev = TsvSource(glue_dir).examples(task, "validation")
    with pytest.MonkeyPatch.context() as patch:  # a timing cache of its own: measured here, never reused
        patch.setenv("GLUE_TF_XLA_CACHE", str(tmp_path_factory.mktemp("timings")))
        path = export.export(model_lib.build(backbone, task), preprocessor, task,
                             tmp_path_factory.mktemp("measured"), metadata={}, dev_examples=dev)
    return path, len(dev)


@pytest.fixture(scope="module")
def stsb_export(tiny_preset, tmp_path_factory):
    task = TASKS["stsb"]
    backbone, preprocessor = backbones.load(str(tiny_preset), sequence_length=32)
    return export.export(model_lib.build(backbone, task), preprocessor, task, tmp_path_factory.mktemp("stsb"),
                         metadata={})


@pytest.mark.long  # shares measured_export: compiling its grid and timing bf16 take about a minute
def test_compiled_signature_equals_serving_default_on_ragged_batches(measured_export, stsb_export):
    for path, task in ((measured_export[0], TASKS["mrpc"]), (stsb_export, TASKS["stsb"])):
        loaded, _ = saved_model.load_signatures(path)
        assert sorted(loaded) == ["serving_bfloat16", "serving_compiled", "serving_default"]
        for rows in RAGGED_ROWS:
            texts = _texts(task, rows, seed=rows)
            default, compiled = _call(loaded["serving_default"], texts), _call(loaded["serving_compiled"], texts)
            assert sorted(compiled) == sorted(default)
            for key, value in default.items():
                assert compiled[key].shape == value.shape and compiled[key].dtype == value.dtype, key
            if task.is_regression:
                assert np.allclose(compiled["score"], default["score"], atol=1e-3)
                assert np.allclose(compiled["raw_score"], default["raw_score"], atol=1e-3)
            else:
                assert np.array_equal(compiled["label_id"], default["label_id"])
                assert np.allclose(compiled["probabilities"], default["probabilities"], atol=1e-4)
                assert np.all(np.isfinite(compiled["logits"]))  # padding rows leak nothing into real ones
            if rows > 1:  # answers follow the input order, whatever order the sub-batches ran in
                backwards = _call(loaded["serving_compiled"], {f: v[::-1] for f, v in texts.items()})
                first = "score" if task.is_regression else "probabilities"
                assert np.allclose(backwards[first][::-1], compiled[first], atol=1e-5)


@pytest.mark.long  # shares measured_export: compiling its grid and timing bf16 take about a minute
def test_bfloat16_signature_is_close_to_float32(measured_export):
    task = TASKS["mrpc"]
    loaded, _ = saved_model.load_signatures(measured_export[0])
    texts = _texts(task, 65)
    default, bfloat16 = _call(loaded["serving_default"], texts), _call(loaded["serving_bfloat16"], texts)
    assert bfloat16["probabilities"].dtype == np.float32
    assert np.allclose(bfloat16["probabilities"], default["probabilities"], atol=0.02)
    assert not np.array_equal(bfloat16["logits"], default["logits"])  # it does compute in bfloat16


XLA_PROBE = """
import sys
import tensorflow as tf
from glue_tf.exports import saved_model
signature = saved_model.load_signatures(sys.argv[1])[0]["serving_compiled"]
for rows in (9, 9, 3):  # 8 + 1 rows, then 1 + 1 + 1: both shapes compiled by then
    signature(sentence1=tf.constant(["A cat sat."] * rows), sentence2=tf.constant(["A dog."] * rows))
"""


@pytest.mark.long  # shares measured_export: compiling its grid and timing bf16 take about a minute
def test_compiled_signature_runs_xla_after_loading_once_per_grid_shape(measured_export, tmp_path):
    import re

    dump = tmp_path / "xla"
    env = {**os.environ, "XLA_FLAGS": f"--xla_dump_to={dump}"}
    subprocess.run([sys.executable, "-c", XLA_PROBE, str(measured_export[0])], env=env, check=True,
                   capture_output=True, timeout=300)
    compiled = sorted(dump.glob("*before_optimizations.txt"))
    shapes = sorted(tuple(map(int, re.search(r"s32\[(\d+),(\d+)\]", path.read_text()).groups())) for path in compiled)
    assert shapes == [(1, 16), (8, 16)]


@pytest.mark.long  # shares measured_export: compiling its grid and timing bf16 take about a minute
def test_metadata_records_each_signature_and_what_was_measured(measured_export):
    path, dev_rows = measured_export
    metadata = store.read_metadata(path)
    described = metadata["signatures"]
    assert sorted(described) == ["serving_bfloat16", "serving_compiled", "serving_default"]
    assert [described[n]["precision"] for n in sorted(described)] == ["mixed_bfloat16", "float32", "float32"]
    assert [described[n]["compiled"] for n in sorted(described)] == [False, True, False]
    compiled = described["serving_compiled"]
    assert compiled["widths"] == [16, 32] and compiled["batch_sizes"] == [1, 8, 64]
    assert sorted(compiled["compile_seconds"]) == sorted(f"{b}x{w}" for b in (1, 8, 64) for w in (16, 32))
    assert all(0 < seconds < 600 for seconds in compiled["compile_seconds"].values())
    on = metadata["measured_on"]
    timed = [name for name in described if name != "serving_bfloat16" or on["bf16_units"]]
    for name in timed:
        assert described[name]["examples_per_second"] > 0 and 0 <= described[name]["dev_score"] <= 100
    # Same predictions, same score: the float32 paths agree exactly on labels.
    assert described["serving_compiled"]["dev_score"] == described["serving_default"]["dev_score"]
    if on["bf16_units"]:
        assert abs(described["serving_bfloat16"]["dev_score"] - described["serving_default"]["dev_score"]) < 25
    else:  # emulated bf16 is not timed: the choice ignores bf16 figures from a machine without bf16 units
        bf16 = described["serving_bfloat16"]
        assert bf16["examples_per_second"] is None and bf16["dev_score"] is None and "no bf16 units" in bf16["not_measured"]
    assert on["device"] in ("CPU", "GPU") and isinstance(on["model"], str) and on["model"]
    assert isinstance(on["bf16_units"], bool)
    from glue_tf import onednn

    assert on["onednn"] is onednn.is_on()  # the kernels the figures were timed on
    assert metadata["measured_dev_examples"] == {"count": min(dev_rows, 512), "cap": 512}
    assert metadata["timings"]["figures"] == "measured" and metadata["timings"]["measured_by"]["task"] == "mrpc"


@pytest.mark.long  # shares measured_export: compiling its grid and timing bf16 take about a minute
def test_warmup_file_is_tf_serving_predictionlogs_covering_every_grid_shape(measured_export, tiny_preset):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from glue_tf.exports import signatures

    path = measured_export[0]
    records = list(tf.data.TFRecordDataset(str(path / "assets.extra" / "tf_serving_warmup_requests")))
    logs = [prediction_log_pb2.PredictionLog.FromString(record.numpy()) for record in records]
    assert all(log.predict_log.request.model_spec.signature_name == "serving_default" for log in logs)
    requests = signatures.warmup_requests(path)
    assert len(logs) == len(requests) == 6
    _, preprocessor = backbones.load(str(tiny_preset), sequence_length=32)
    shapes = []
    for columns in requests:
        assert sorted(columns) == ["sentence1", "sentence2"]
        packed = preprocessor(x=(np.array(columns["sentence1"]), np.array(columns["sentence2"])))
        longest = int(np.asarray(packed["padding_mask"]).sum(axis=1).max())
        shapes.append((len(columns["sentence1"]), min(w for w in (16, 32) if w >= longest)))
    assert sorted(shapes) == sorted(signatures.grid_shapes(32))


def test_an_export_trained_under_mixed_bfloat16_serves_float32_by_default(tiny_preset, tmp_path):
    import keras

    task = TASKS["cola"]
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        backbone, preprocessor = backbones.load(str(tiny_preset), sequence_length=16)
        trained = model_lib.build(backbone, task)
    finally:
        keras.config.set_dtype_policy("float32")
    assert trained.layers[-2].compute_dtype == "bfloat16"
    path = export.export(trained, preprocessor, task, tmp_path, metadata={})
    loaded, _ = saved_model.load_signatures(path)

    def bfloat16_ops(name):
        return str(loaded[name].graph.as_graph_def()).count("DT_BFLOAT16")

    assert bfloat16_ops("serving_default") == 0 and bfloat16_ops("serving_compiled") == 0
    assert bfloat16_ops("serving_bfloat16") > 0
    texts = {"sentence": ["The cat sat on the mat.", "Who did you say that you saw yesterday?"]}
    float32 = model_lib.rebuild(trained, task, "float32")
    expected = _keras_outputs(float32, preprocessor, task, {**texts, "sentence1": texts["sentence"]})
    assert np.allclose(_call(loaded["serving_default"], texts)["logits"], expected, atol=1e-5)


def test_the_rebuild_reuses_a_plain_model_and_copies_a_strategy_s_into_plain_variables(tiny_preset):
    """Exports read the rebuild's variables: a strategy's mirrored ones cannot be saved from a worker (the
    two-worker test in make test-long failed in ``tf.saved_model.save`` when the trained model was reused)."""
    import tensorflow as tf

    task = TASKS["rte"]
    backbone, _ = backbones.load(str(tiny_preset), sequence_length=16)
    plain = model_lib.build(backbone, task)
    assert model_lib.rebuild(plain, task, "float32") is plain
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        mirrored = model_lib.build(backbones.load(str(tiny_preset), sequence_length=16)[0], task)
    assert isinstance(mirrored.weights[0].value, tf.distribute.DistributedValues)
    copy = model_lib.rebuild(mirrored, task, "float32")
    assert copy is not mirrored
    assert not any(isinstance(v.value, tf.distribute.DistributedValues) for v in copy.weights)
    assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), mirrored.get_weights()))


def test_a_failed_measurement_leaves_no_version_behind(tiny_preset, tmp_path):
    task = TASKS["cola"]
    backbone, preprocessor = backbones.load(str(tiny_preset), sequence_length=16)
    with pytest.raises(KeyError):  # a dev example without the task's text field
        export.export(model_lib.build(backbone, task), preprocessor, task, tmp_path, metadata={},
                      dev_examples=[{"text": "no sentence field", "label": 1}])
    root = store.task_dir(tmp_path, "cola")
    assert store.latest(tmp_path, "cola") is None and list(root.iterdir()) == []


def test_the_predictor_tokenizes_once_and_answers_as_each_signature_does(tiny_exports, monkeypatch):
    from glue_tf.exports import predictor as predictor_module
    from glue_tf.exports import signatures
    from glue_tf.exports.predictor import ExportPredictor, run_tokenized

    task = TASKS["mrpc"]
    predictor = ExportPredictor(tiny_exports / "models" / "mrpc" / "1", Machine.detect())
    rows = _texts(task, 70, seed=3)
    for name in signatures.NAMES:  # sorted, cut to each call's longest row, answered in input order
        expected = _call(predictor.signatures[name], rows)
        tokenized = run_tokenized(*saved_model.from_tokens(predictor.signatures, name), rows, rows=16)
        assert sorted(tokenized) == sorted(expected)
        bfloat16 = signatures.PRECISION[name] == "bfloat16"
        for key, value in expected.items():
            assert tokenized[key].shape == value.shape, (name, key)
            if not bfloat16:
                assert np.allclose(tokenized[key], value, atol=1e-4), (name, key)
        # bfloat16 rounds differently where a row is padded to another width; on this tiny random model by more
        # than test_bfloat16_signature_is_close_to_float32 allows (the float32 paths pin the order and cutting)
        if bfloat16:
            assert np.all(np.isfinite(tokenized["probabilities"]))

    calls, from_tokens = [], saved_model.from_tokens

    def counting(loaded, name):
        tokenize, run = from_tokens(loaded, name)
        return (lambda *texts: calls.append(len(texts[0])) or tokenize(*texts), run)

    monkeypatch.setattr(saved_model, "from_tokens", counting)
    for text_path in ("token_lengths", "text_call"):  # neither the counter nor the text-in signature runs
        monkeypatch.setattr(predictor_module, text_path, lambda *args: pytest.fail(f"{text_path} was called"))
    examples = [{**{f: rows[f][i] for f in task.text_features}, "label": 0} for i in range(70)]
    outputs = predictor.raw_outputs(task, examples)
    assert calls == [70] and np.allclose(outputs["probabilities"], _call(predictor.signatures["serving_default"],
                                                                         rows)["probabilities"], atol=1e-4)
