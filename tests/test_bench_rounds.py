"""Whole-process benchmarks in alternating rounds: the order they run in, the medians and ratios they quote,
and how docs/BENCHMARKS.md renders them (synthetic records: nothing is trained or timed here)."""

from __future__ import annotations

import json
from argparse import Namespace
from itertools import count

from bench import benchmarks_doc, end_to_end, evaluate_speed, predict_speed
from bench.common import alternating_rounds, median_ratios, median_wall
from bench.hf_predict import read_columns
from glue_tf.data.sources import TsvSource
from glue_tf.tasks import get_task


def test_alternating_rounds_reverse_the_order_every_other_round():
    order, clock = [], count(1)

    def run(name):
        def once():
            order.append(name)
            return {"wall_seconds": float(next(clock))}
        return once

    seen = []
    found = alternating_rounds({"A": run("A"), "B": run("B")}, 3, on_record=lambda name, r: seen.append((name, r["round"])))
    assert order == ["A", "B", "B", "A", "A", "B"]
    assert seen == [("A", 1), ("B", 1), ("B", 2), ("A", 2), ("A", 3), ("B", 3)]
    assert [r["round"] for r in found["A"]] == [1, 2, 3]
    assert [r["wall_seconds"] for r in found["A"]] == [1.0, 4.0, 5.0]
    assert [r["wall_seconds"] for r in found["B"]] == [2.0, 3.0, 6.0]


def test_medians_skip_failed_rounds_and_ratios_are_of_medians():
    found = {"hf": [{"wall_seconds": 90.0}, {"wall_seconds": 120.0}, {"wall_seconds": 80.0}],
             "ours": [{"wall_seconds": 40.0}, {"error": "exit 1"}, {"wall_seconds": 50.0}],
             "broken": [{"error": "exit 1"}]}
    assert median_wall(found["hf"]) == 90.0
    assert median_wall(found["ours"]) == 45.0  # the two that finished
    assert median_wall(found["broken"]) is None
    assert median_ratios(found, "hf") == {"ours": 2.0}  # 90 / 45; no ratio for a contender with no finished run


def test_end_to_end_summary_quotes_medians_per_task_and_per_hugging_face_precision():
    def run(wall, cola, mrpc, score, precision):
        return {"wall_seconds": wall, "task_walls": {"cola": cola, "mrpc": mrpc},
                "tasks": {"cola": score, "mrpc": 80.0}, "precision": precision}

    found = {"glue-tf": [run(100, 60, 40, 25.0, "bfloat16"), run(110, 66, 44, 26.0, "bfloat16"),
                         run(300, 200, 100, 24.0, "bfloat16")],
             "hf-trainer-best": [run(160, 100, 60, 20.0, "bfloat16"), run(150, 90, 60, 21.0, "bfloat16"),
                                 {"error": "cola: exit 1", "precision": "bfloat16"}],
             "hf-trainer-float32": [run(220, 130, 90, 22.0, "float32")] * 3}
    args = Namespace(epochs=3, rounds=3, max_train_examples=None)
    verdict = end_to_end.summary(found, ["cola", "mrpc"], args)
    assert verdict["median_wall_seconds"] == {"glue-tf": 110, "hf-trainer-best": 155, "hf-trainer-float32": 220}
    assert verdict["task_median_walls"]["glue-tf"] == {"cola": 66, "mrpc": 44}
    assert verdict["vs_hf"] == {"hf-trainer-best": 1.41, "hf-trainer-float32": 2.0}
    assert verdict["dev_scores"]["glue-tf"][2] == {"cola": 24.0, "mrpc": 80.0}
    assert verdict["precision"] == {"glue-tf": "bfloat16", "hf-trainer-best": "bfloat16", "hf-trainer-float32": "float32"}
    assert end_to_end.medians_line(verdict) == ("median wall over 3 rounds: glue-tf 110 s; Hugging Face (bfloat16) "
                                                "155 s (1.41x); Hugging Face (float32) 220 s (2.00x)")


def test_evaluate_input_holds_the_dev_rows_hugging_face_reads(glue_dir, tmp_path):
    task = get_task("mrpc")  # two text fields, a BOM in the real file
    rows = evaluate_speed.write_dev_input(str(glue_dir), task, tmp_path / "dev.tsv")
    examples = TsvSource(glue_dir).examples(task, "validation")
    columns = read_columns(str(tmp_path / "dev.tsv"), list(task.text_features))
    assert rows == len(examples) == len(columns["sentence1"])
    assert columns["sentence1"] == [e["sentence1"].replace("\t", " ") for e in examples]
    assert columns["sentence2"] == [e["sentence2"].replace("\t", " ") for e in examples]


def test_the_signature_a_predict_or_evaluate_summary_line_names_first_is_read():
    line = ("rte validation (277 examples, runs/seeds42/models/rte/3, serving_compiled: measured fastest here; "
            "not bfloat16: serving_bfloat16: below the dev-score bar): accuracy 61.37; task score 61.37")
    assert predict_speed.signature_of(line) == "serving_compiled"
    assert predict_speed.signature_of("no signature named") is None
    assert predict_speed.signature_of("sst2: predicted 3 rows (serving_default: why) -> out") == "serving_default"


def _predict_records():
    runs = [{"kind": "predict", "task": "sst2", "rows": 20000, "contender": name, "round": number, **figures}
            for number, walls in enumerate([(40.0, 60.0, 90.0), (44.0, 66.0, 100.0), (42.0, 62.0, 80.0)], 1)
            for name, figures in zip(("glue-tf-auto", "glue-tf-default", "hf"), (
                {"wall_seconds": walls[0], "signature": "serving_bfloat16"},
                {"wall_seconds": walls[1], "signature": "serving_default"},
                {"wall_seconds": walls[2], "precision": "bfloat16"}))]
    verdict = {"kind": "predict-ratio", "task": "sst2", "rows": 20000, "rounds": 3,
               "median_wall_seconds": {"glue-tf-auto": 42.0, "glue-tf-default": 62.0, "hf": 90.0},
               "vs_hf": {"glue-tf-auto": 2.14, "glue-tf-default": 1.45}, "target": 2.2, "met": False,
               "auto_vs_default_label_agreement": 0.9995}
    return runs + [verdict]


def test_predict_table_shows_medians_each_round_and_the_ratio_of_medians():
    text = "\n".join(benchmarks_doc._predict_table(_predict_records()))
    assert "| glue-tf-auto | serving_bfloat16 | 42.0 | 40.0, 44.0, 42.0 | 476 | **2.14x** |" in text
    assert "| hf | transformers, bfloat16, dynamic padding, batches of 64 | 90.0 | 90.0, 100.0, 80.0 | 222 | – |" in text
    assert "Target ≥ 2.2x for `--precision auto`: 2.14x, not met" in text
    assert "Median of 3 alternating rounds." in text


def test_predict_table_still_renders_a_single_run_without_rounds():
    runs = [{"kind": "predict", "task": "sst2", "rows": 20000, "contender": "glue-tf-auto", "wall_seconds": 44.0,
             "rows_per_second": 454.5, "signature": "serving_compiled"},
            {"kind": "predict", "task": "sst2", "rows": 20000, "contender": "hf", "wall_seconds": 81.0,
             "rows_per_second": 246.9, "precision": "bfloat16"},
            {"kind": "predict-ratio", "vs_hf": {"glue-tf-auto": 1.84}, "met": False}]
    text = "\n".join(benchmarks_doc._predict_table(runs))
    assert "| glue-tf-auto | serving_compiled | 44.0 | 454 | **1.84x** |" in text


def _evaluate_block(task, rows, ours, theirs, ratio):
    runs = [{"kind": "evaluate", "task": task, "rows": rows, "contender": name, "round": number,
             "wall_seconds": wall, **extra}
            for number in (1, 2, 3)
            for name, wall, extra in (("glue-tf", ours[number - 1], {"signature": "serving_compiled"}),
                                      ("hf", theirs[number - 1], {"precision": "bfloat16"}))]
    return runs + [{"kind": "evaluate-ratio", "task": task, "rows": rows, "rounds": 3,
                    "median_wall_seconds": {"glue-tf": sorted(ours)[1], "hf": sorted(theirs)[1]},
                    "vs_hf": {"glue-tf": ratio}, "target": 1.8, "met": ratio >= 1.8}]


def test_evaluate_table_renders_the_newest_run_of_each_task():
    records = (_evaluate_block("cola", 1043, (30.0, 31.0, 29.0), (50.0, 52.0, 51.0), 1.65)
               + _evaluate_block("rte", 277, (20.0, 21.0, 22.0), (40.0, 44.0, 42.0), 2.0)
               + _evaluate_block("cola", 1043, (25.0, 26.0, 27.0), (50.0, 52.0, 51.0), 1.96))  # a rerun of CoLA
    text = "\n".join(benchmarks_doc._evaluate_process_table(records))
    assert "| cola | 1043 | glue-tf | serving_compiled | 26.0 | 25.0, 26.0, 27.0 | 40 | **1.96x** |" in text
    assert "| rte | 277 | glue-tf | serving_compiled | 21.0 | 20.0, 21.0, 22.0 | 13 | **2.00x** |" in text
    assert "30.0, 31.0, 29.0" not in text  # the older CoLA run
    assert "Target ≥ 1.8x: cola met, rte met." in text


def test_end_to_end_table_shows_medians_rounds_and_ratio_of_medians():
    runs = [{"kind": "end_to_end", "contender": name, "round": number, "wall_seconds": wall,
             "task_walls": {"cola": wall}, "tasks": {"cola": score}, "precision": precision}
            for number, (ours, theirs) in enumerate([(200.0, 320.0), (210.0, 310.0), (205.0, 330.0)], 1)
            for name, wall, score, precision in (("glue-tf", ours, 25.5, "bfloat16"),
                                                 ("hf-trainer-best", theirs, 20.8, "bfloat16"))]
    verdict = end_to_end.summary({"glue-tf": runs[0::2], "hf-trainer-best": runs[1::2]}, ["cola"],
                                 Namespace(epochs=3, rounds=3, max_train_examples=None))
    text = "\n".join(benchmarks_doc._end_to_end_rounds(runs + [json.loads(json.dumps(verdict))]))
    assert ("| cola (whole processes) | 3 | bfloat16 / bfloat16 | 205 | 320 | 200, 210, 205 / 320, 310, 330 | "
            "**1.56x** | 25.5, 25.5, 25.5 / 20.8, 20.8, 20.8 |") in text
    assert "Median of 3 alternating rounds" in text


def _end_to_end_block(tasks, walls):
    """One ``bench/end_to_end.py`` invocation's records: ``walls`` per round, (glue-tf, Hugging Face) per task."""
    runs = [{"kind": "end_to_end", "contender": name, "round": number, "precision": "float32",
             "wall_seconds": sum(w[side] for w in per_task), "task_walls": dict(zip(tasks, (w[side] for w in per_task))),
             "tasks": dict.fromkeys(tasks, 50.0)}
            for number, per_task in enumerate(walls, 1) for side, name in enumerate(("glue-tf", "hf-trainer-best"))]
    verdict = end_to_end.summary({"glue-tf": runs[0::2], "hf-trainer-best": runs[1::2]}, list(tasks),
                                 Namespace(epochs=3, rounds=len(walls), max_train_examples=None))
    return runs + [json.loads(json.dumps(verdict))]


def test_end_to_end_table_shows_the_newest_invocation_of_each_task_set():
    records = (_end_to_end_block(["cola"], [[(300.0, 330.0)]])
               + _end_to_end_block(["mrpc", "rte"], [[(500.0, 600.0), (450.0, 700.0)]] * 3)
               + _end_to_end_block(["cola"], [[(310.0, 340.0)]]))  # a rerun of CoLA alone
    text = "\n".join(benchmarks_doc._end_to_end_rounds(records))
    assert "| cola (whole processes) | 3 | float32 / float32 | 310 | 340 | 310 / 340 | **1.10x** |" in text
    assert "| 300 |" not in text  # the older CoLA invocation
    assert "| rte | 3 | float32 / float32 | 450 | 700 | 450, 450, 450 / 700, 700, 700 | **1.56x** |" in text
    assert "| mrpc,rte (whole processes) | 3 | float32 / float32 | 950 | 1300 |" in text
    assert "Median of 1 (cola), 3 (mrpc,rte) alternating rounds" in text


def test_benchmarks_doc_main_renders_the_evaluate_records(tmp_path):
    predict, evaluate, doc = tmp_path / "predict.jsonl", tmp_path / "evaluate.jsonl", tmp_path / "BENCHMARKS.md"
    predict.write_text("".join(json.dumps(r) + "\n" for r in _predict_records()))
    evaluate.write_text("".join(json.dumps(r) + "\n" for r in _evaluate_block("mrpc", 408, (10.0, 11.0, 12.0),
                                                                              (30.0, 33.0, 36.0), 3.0)))
    doc.write_text("# Benchmarks\n\nKept.\n")
    assert benchmarks_doc.main(["--predict", str(predict), "--evaluate", str(evaluate), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "Kept." in text and benchmarks_doc.PATHS_BEGIN in text
    assert "| mrpc | 408 | glue-tf | serving_compiled | 11.0 | 10.0, 11.0, 12.0 | 37 | **3.00x** |" in text
    assert "| glue-tf-auto | serving_bfloat16 | 42.0 |" in text
