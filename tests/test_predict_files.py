"""`glue-tf evaluate` and `glue-tf predict` on real exports (tiny models trained a few steps) and GLUE-format files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from glue_tf import cli
from glue_tf.data.errors import DataError
from glue_tf.data.sources import TsvSource
from glue_tf.exports import store
from glue_tf.exports.predictor import ExportPredictor
from glue_tf.metrics import compute_metrics
from glue_tf.precision import Machine
from glue_tf.predict_files import read_rows
from glue_tf.tasks import TASKS
from support.glue_files import SIZES

pytestmark = pytest.mark.slow


def test_evaluate_matches_in_process_scoring(trained_exports, glue_dir, capsys):
    task = TASKS["mrpc"]
    examples = TsvSource(glue_dir).examples(task, "validation")
    version = store.latest(trained_exports, "mrpc")
    predicted = ExportPredictor(version, Machine.detect()).outputs(task, examples)
    labels = np.array([e["label"] for e in examples])
    expected = compute_metrics(task, labels, predicted)
    assert expected["accuracy"] == pytest.approx(100 * np.mean(labels == predicted))  # points, as GLUE reports

    assert cli.main(["evaluate", "--model", str(trained_exports), "--task", "mrpc", "--glue-dir", str(glue_dir)]) == 0
    printed = capsys.readouterr()
    result = json.loads(printed.out)
    assert f"accuracy {expected['accuracy']:.2f}; task score {result['score']:.2f}" in printed.err
    assert result["examples"] == len(examples) == SIZES["mrpc"]["validation"] and result["split"] == "validation"
    assert result["metrics"] == pytest.approx(expected)
    assert result["score"] == pytest.approx((expected["f1"] + expected["accuracy"]) / 2)


def test_evaluate_refuses_test_splits_and_wrong_models(trained_exports, glue_dir, capsys):
    cola = str(store.latest(trained_exports, "cola"))
    assert cli.main(["evaluate", "--model", cola, "--split", "test", "--glue-dir", str(glue_dir)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        "glue-tf: error: cola test has no labels (a test split); evaluate a dev split (validation)"
    assert cli.main(["evaluate", "--model", cola, "--task", "rte", "--glue-dir", str(glue_dir)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        f"glue-tf: error: the export at {cola} is a cola model; rte needs a rte model"
    assert cli.main(["evaluate", "--model", str(glue_dir), "--glue-dir", str(glue_dir)]) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"glue-tf: error: --model {glue_dir}: no export there")


def test_a_bug_is_not_passed_off_as_a_user_error(tiny_exports, glue_dir, tmp_path):
    """An export whose metadata lacks its task is glue-tf's fault, not the user's: a KeyError with its
    traceback, never the one-line ``glue-tf: error: 'task'`` that catching every KeyError used to print."""
    broken = shutil.copytree(store.latest(tiny_exports, "rte"), tmp_path / "1")
    metadata = json.loads((broken / "metadata.json").read_text())
    del metadata["task"]
    (broken / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(KeyError, match="task"):
        cli.main(["evaluate", "--model", str(broken), "--glue-dir", str(glue_dir)])


@pytest.mark.parametrize("suffix", ["tsv", "jsonl"])
def test_predict_writes_every_row_in_order(trained_exports, glue_dir, tmp_path, suffix):
    task = TASKS["rte"]
    examples = TsvSource(glue_dir).examples(task, "validation")[:150]
    source = tmp_path / f"in.{suffix}"
    if suffix == "tsv":
        source.write_text("id\tsentence1\tsentence2\n" + "".join(
            f"{i}\t{e['sentence1']}\t{e['sentence2']}\n" for i, e in enumerate(examples)), encoding="utf-8")
    else:
        source.write_text("".join(json.dumps({"sentence1": e["sentence1"], "sentence2": e["sentence2"]}) + "\n"
                                  for e in examples), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    version = store.latest(trained_exports, "rte")
    assert cli.main(["predict", "--model", str(version), "--input", str(source), "--output", str(out)]) == 0

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected = ExportPredictor(version, Machine.detect()).outputs(task, examples)
    assert [r["label_id"] for r in rows] == expected.tolist()
    assert [r["line"] for r in rows] == list(range(2 if suffix == "tsv" else 1, len(examples) + (2 if suffix == "tsv" else 1)))
    assert all(r["label"] == task.label_names[r["label_id"]] for r in rows)
    assert np.allclose([sum(r["probabilities"]) for r in rows], 1.0, atol=1e-5)


def test_predict_stsb_writes_scores_as_tsv(trained_exports, tmp_path):
    source = tmp_path / "pairs.jsonl"
    source.write_text('{"sentence1": "A man plays.", "sentence2": "A man is playing."}\n\n'
                      '{"sentence1": "Hi", "sentence2": "Bye"}\n', encoding="utf-8")
    out = tmp_path / "scores.tsv"
    assert cli.main(["predict", "--model", str(trained_exports / "models" / "stsb"), "--input", str(source),
                     "--output", str(out)]) == 0
    header, *lines = out.read_text().splitlines()
    assert header == "line\tscore"
    assert [line.split("\t")[0] for line in lines] == ["1", "3"]
    assert all(0.0 <= float(line.split("\t")[1]) <= 5.0 for line in lines)


def test_a_row_without_a_field_is_named_and_nothing_is_written(trained_exports, tmp_path, capsys):
    source = tmp_path / "in.tsv"
    source.write_text("sentence1\tsentence2\n" + "a\tb\n" * 1500 + "only one field\n", encoding="utf-8")
    out = tmp_path / "out.tsv"
    code = cli.main(["predict", "--model", str(trained_exports / "models" / "rte"), "--input", str(source),
                     "--output", str(out)])
    assert code == 2
    assert f"{source}:1502: missing field sentence2" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".out.tsv.tmp-*"))


def test_reader_errors_name_file_and_line(tmp_path):
    task = TASKS["sst2"]
    cases = {
        "bad.jsonl": (b'{"sentence": "ok"}\n{"sentence": 3}\n', 2, "not a string"),
        "bad2.jsonl": (b'{"sentence": "ok"}\n\n[1]\n', 3, "expected a JSON object"),
        "bad3.jsonl": (b'{"sentence": "ok"}\n{"sentence": "\xff"}\n', 2, "not valid UTF-8"),
        "bad.tsv": (b"text\n", 1, "the header lacks sentence"),
        "empty.tsv": (b"", 1, "empty file"),
    }
    for name, (content, line, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DataError, match=message) as caught:
            list(read_rows(path, task))
        assert caught.value.line == line, name
    bom = tmp_path / "bom.tsv"
    bom.write_bytes("\ufeffsentence\nfine\n".encode())
    assert list(read_rows(bom, task)) == [(2, {"sentence": "fine"})]
