"""Exports measure a signature's timings once per machine and model shape, and reuse them after."""

import pytest

from glue_tf import backbones, export, timing_cache
from glue_tf import model as model_lib
from glue_tf.exports import store
from glue_tf.precision import Machine
from glue_tf.tasks import TASKS

KEY = {"format": timing_cache.FORMAT, "backbone": {"family": "BertBackbone"}, "max_seq_length": 16}
SIGNATURES = {"serving_default": {"precision": "float32", "examples_per_second": 812.5, "dev_score": 61.0}}


def _export(preset, task, out, dev, sequence_length: int, seed: int):
    import keras

    keras.utils.set_random_seed(seed)  # other weights each time: only the shape is shared
    backbone, preprocessor = backbones.load(str(preset), sequence_length=sequence_length)
    return store.read_metadata(export.export(model_lib.build(backbone, task), preprocessor, task, out,
                                             metadata={}, dev_examples=dev))


@pytest.mark.long  # three measured exports of a tiny model
def test_an_export_of_a_measured_shape_reuses_its_timings_and_scores_its_own_weights(
        tiny_preset, glue_dir, tmp_path, monkeypatch):
    from glue_tf.data.sources import TsvSource

    monkeypatch.setenv("GLUE_TF_XLA_CACHE", str(tmp_path / "cache"))
    source = TsvSource(glue_dir)
    cola, sst2 = TASKS["cola"], TASKS["sst2"]
    first = _export(tiny_preset, cola, tmp_path / "run", source.examples(cola, "validation"), 16, seed=1)
    assert first["timings"]["figures"] == "measured" and first["timings"]["measured_by"]["task"] == "cola"
    assert first["timings"]["cache"].startswith(str(tmp_path / "cache"))
    compiled = first["signatures"]["serving_compiled"]
    assert compiled["examples_per_second"] > 0 and sorted(compiled["compile_seconds"]) == ["1x16", "64x16", "8x16"]

    # Another task with one text field, other weights: the timings come from the CoLA export, and say so.
    second = _export(tiny_preset, sst2, tmp_path / "run", source.examples(sst2, "validation"), 16, seed=2)
    assert second["timings"] == {**first["timings"], "figures": "reused"}
    for name, described in second["signatures"].items():
        assert described["examples_per_second"] == first["signatures"][name]["examples_per_second"]
        assert described.get("compile_seconds") == first["signatures"][name].get("compile_seconds")
    # The dev score is its own: it depends on the weights (the compiled signature is not run at all).
    assert 0 <= second["signatures"]["serving_default"]["dev_score"] <= 100
    assert second["signatures"]["serving_compiled"]["dev_score"] is None
    assert second["export_seconds"]["measure"] < first["export_seconds"]["measure"]

    # Another max_seq_length is another shape: measured again.
    third = _export(tiny_preset, cola, tmp_path / "run", source.examples(cola, "validation"), 32, seed=1)
    assert third["timings"]["figures"] == "measured" and third["timings"]["measured_by"]["version"] == 2
    assert sorted(third["signatures"]["serving_compiled"]["compile_seconds"]) == sorted(
        f"{b}x{w}" for b in (1, 8, 64) for w in (16, 32))


def test_an_entry_is_found_only_under_its_own_key(tmp_path):
    cache = timing_cache.TimingCache(tmp_path / "timings")
    record = cache.store(KEY, SIGNATURES, {"task": "cola", "version": 3})
    assert record["figures"] == "measured" and record["cache"].startswith(str(tmp_path / "timings"))
    entry = cache.lookup(KEY)
    assert entry["signatures"] == {"serving_default": {"examples_per_second": 812.5, "compile_seconds": None}}
    assert cache.reused(entry) == {**record, "figures": "reused"}
    assert cache.lookup({**KEY, "max_seq_length": 32}) is None
    assert [p.name for p in (tmp_path / "timings").iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_an_unwritable_or_disabled_cache_measures_as_before_and_says_why(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    unwritable = timing_cache.TimingCache(blocked / "timings")
    record = unwritable.store(KEY, SIGNATURES, {"task": "cola", "version": 1})
    assert record["figures"] == "measured" and record["cache"].startswith(f"not kept (cannot write {blocked}")
    assert unwritable.lookup(KEY) is None
    off = timing_cache.TimingCache.here({"GLUE_TF_XLA_CACHE": "off"}, Machine.from_cpu())
    assert off.folder is None and off.lookup(KEY) is None
    assert off.store(KEY, SIGNATURES, {})["cache"] == "off (GLUE_TF_XLA_CACHE=off)"
    here = timing_cache.TimingCache.here({"GLUE_TF_XLA_CACHE": str(tmp_path / "xla")}, Machine.from_cpu())
    assert here.folder.parent.parent == tmp_path / "xla"  # beside the XLA entries of this TensorFlow and CPU
