"""The GLUE TSV reader on files the tests write in the real formats, and on the real files where they are."""

from pathlib import Path

import pytest

from glue_tf.data import tsv
from glue_tf.data.errors import DataError, MissingDataError
from glue_tf.data.sources import TsvSource
from glue_tf.tasks import TASKS
from support.glue_files import SIZES

REAL_COUNTS = {
    "cola": {"train": 8551, "validation": 1043, "test": 1063},
    "sst2": {"train": 67349, "validation": 872, "test": 1821},
    "mrpc": {"train": 3668, "validation": 408, "test": 1725},
    "stsb": {"train": 5749, "validation": 1500, "test": 1379},
    "rte": {"train": 2490, "validation": 277, "test": 3000},
    "wnli": {"train": 635, "validation": 71, "test": 146},
    "qnli": {"validation": 5463, "test": 5463},
    "ax": {"test": 1104},
}


def _check_complete(glue_dir, task, counts):
    """Every split of ``counts`` is there, read row for row into tfds-shaped examples."""
    assert tsv.available_splits(glue_dir, task) == list(counts), task.name
    for split, count in counts.items():
        examples = tsv.read_split(glue_dir, task, split)
        assert len(examples) == count, (task.name, split)
        assert [e["idx"] for e in examples] == list(range(count))
        for example in examples:
            assert set(example) == {"idx", "label", *task.text_features}
            if split.startswith("test"):
                assert example["label"] == -1
            elif task.is_regression:
                assert 0.0 <= example["label"] <= 5.0
            else:
                assert 0 <= example["label"] < len(task.label_names)
        if not split.startswith("test") and not task.is_regression:  # every class occurs
            assert {e["label"] for e in examples} == set(range(len(task.label_names))), (task.name, split)


@pytest.mark.parametrize("task_name", sorted(SIZES))
def test_files_in_every_tasks_format_read_completely(glue_dir, task_name):
    _check_complete(glue_dir, TASKS[task_name], SIZES[task_name])


def test_real_files_read_completely(real_glue_dir):
    for task_name, counts in REAL_COUNTS.items():
        _check_complete(real_glue_dir, TASKS[task_name], counts)


def test_file_quirks(glue_dir):
    # MRPC starts with a BOM and names its columns "#1 String"; the label is "Quality"; quotes are text.
    assert (glue_dir / "MRPC" / "train.tsv").read_bytes().startswith(b"\xef\xbb\xbfQuality\t")
    mrpc = [e for e in tsv.read_split(glue_dir, TASKS["mrpc"], "train") if e["sentence2"].startswith('"')]
    assert mrpc and mrpc[0]["label"] == 1 and '," a spokesman said.' in mrpc[0]["sentence2"]
    # CoLA dev has no header and no final newline: its last row is still read.
    cola_dev = glue_dir / "CoLA" / "dev.tsv"
    assert not cola_dev.read_text().endswith("\n")
    last = cola_dev.read_text().rsplit("\n", 1)[-1].split("\t")
    assert tsv.read_split(glue_dir, TASKS["cola"], "validation")[-1] == {
        "idx": SIZES["cola"]["validation"] - 1, "label": int(last[1]), "sentence": last[3]}
    # STS-B scores are floats, written "5.000" or "0"; label names map to ids (MNLI "contradiction" -> 2).
    scores = [line.rsplit("\t", 1)[1] for line in (glue_dir / "STS-B" / "train.tsv").read_text().splitlines()[1:]]
    assert "5.000" in scores and "0" in scores
    assert {e["label"] for e in tsv.read_split(glue_dir, TASKS["stsb"], "train")} == {0.0, 1.25, 2.5, 3.75, 5.0}
    mnli = (glue_dir / "MNLI" / "train.tsv").read_text().splitlines()[1].split("\t")
    assert tsv.read_split(glue_dir, TASKS["mnli"], "train")[0]["label"] == TASKS["mnli"].label_names.index(mnli[-1])


def test_real_file_quirks(real_glue_dir):
    glue_dir = real_glue_dir
    # MRPC starts with a BOM and names its columns "#1 String"; the label is "Quality".
    mrpc = tsv.read_split(glue_dir, TASKS["mrpc"], "validation")[0]
    assert mrpc["label"] == 1 and mrpc["sentence1"].startswith("He said the foodservice pie")
    # CoLA dev has no header and no final newline: its last row is still read.
    cola = tsv.read_split(glue_dir, TASKS["cola"], "validation")
    assert len(cola) == 1043 and cola[-1]["sentence"] == "John talked to Bill about himself."
    # Bare quotes are text, not quoting.
    assert mrpc["sentence2"].startswith('"The foodservice')
    # STS-B scores are floats; label names map to ids (RTE "not_entailment" -> 1).
    assert tsv.read_split(glue_dir, TASKS["stsb"], "train")[0]["label"] == 5.0
    assert tsv.read_split(glue_dir, TASKS["rte"], "train")[0]["label"] == 1


def _write(path: Path, rows: list[str], final_newline: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + ("\n" if final_newline else ""), encoding="utf-8")
    return path


MNLI_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2"
)


def _mnli_row(i, premise, hypothesis, labels):
    return f"{i}\t{1000 + i}\t{1000 + i}n\tfiction\t( x )\t( y )\t(ROOT x)\t(ROOT y)\t{premise}\t{hypothesis}\t{labels}"


def test_mnli_reader_on_the_real_format(tmp_path):
    glue = tmp_path / "glue"
    _write(glue / "MNLI/train.tsv", [MNLI_HEADER + "\tlabel1\tgold_label",
                                     _mnli_row(0, "A man eats.", "Someone eats.", "entailment\tentailment"),
                                     _mnli_row(1, 'He said "no".', "He agreed.", "contradiction\tcontradiction")])
    dev_header = MNLI_HEADER + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label"
    five = "neutral\tneutral\tentailment\tneutral\tneutral\tneutral"
    _write(glue / "MNLI/dev_matched.tsv", [dev_header, _mnli_row(0, "P m.", "H m.", five)])
    _write(glue / "MNLI/dev_mismatched.tsv", [dev_header, _mnli_row(0, "P mm.", "H mm.", five),
                                              _mnli_row(1, "P2.", "H2.", five)])
    _write(glue / "MNLI/test_matched.tsv", [MNLI_HEADER, _mnli_row(0, "T.", "U.", "").rstrip("\t")])
    source = TsvSource(glue)
    task = TASKS["mnli"]
    assert source.available_splits(task) == ["train", "validation_matched", "validation_mismatched", "test_matched"]
    train = source.examples(task, "train")
    assert train == [
        {"idx": 0, "label": 0, "premise": "A man eats.", "hypothesis": "Someone eats."},
        {"idx": 1, "label": 2, "premise": 'He said "no".', "hypothesis": "He agreed."},
    ]
    assert [e["label"] for e in source.examples(task, "validation_mismatched")] == [1, 1]
    assert source.examples(task, "test_matched")[0]["label"] == -1
    with pytest.raises(MissingDataError, match="test_mismatched.tsv"):
        source.examples(task, "test_mismatched")


def test_qqp_reader_on_the_real_format(tmp_path):
    glue = tmp_path / "glue"
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"
    _write(glue / "QQP/train.tsv", [header, "133273\t213221\t213222\tHow is the life of a math student?\tWhich level of prepration is enough?\t0",
                                    "402555\t536040\t536041\tHow do I control my horny emotions?\tHow do you control your horniness?\t1"])
    _write(glue / "QQP/dev.tsv", [header, "1\t2\t3\tWhy?\tWhy not?\t1"])
    _write(glue / "QQP/test.tsv", ["id\tquestion1\tquestion2", "0\tWhat?\tWho?"])
    source = TsvSource(glue)
    task = TASKS["qqp"]
    train = source.examples(task, "train")
    assert [e["label"] for e in train] == [0, 1]
    assert train[1]["question2"] == "How do you control your horniness?"
    assert source.examples(task, "test") == [{"idx": 0, "label": -1, "question1": "What?", "question2": "Who?"}]


def test_tsv_dataset_has_tfds_types(tmp_path):
    glue = tmp_path / "glue"
    _write(glue / "STS-B/dev.tsv", ["index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
                                    "0\tmain\tf\t2012\t1\tnone\tnone\tA.\tB.\t3.800"])
    import tensorflow as tf

    dataset = TsvSource(glue).load(TASKS["stsb"], "validation")
    spec = dataset.element_spec
    assert spec["idx"].dtype == tf.int32 and spec["label"].dtype == tf.float32
    assert spec["sentence1"].dtype == tf.string
    element = next(iter(dataset))
    assert element["label"].numpy() == pytest.approx(3.8) and element["sentence2"].numpy() == b"B."


RTE_HEADER = "index\tsentence1\tsentence2\tlabel"


@pytest.mark.parametrize(
    "rows, line, message",
    [
        ([RTE_HEADER, "0\ta\tb\tentailment", "1\ta\tb"], 3, "expected 4 tab-separated columns, found 3"),
        ([RTE_HEADER, "0\ta\tb\tentailment\textra"], 2, "found 5"),
        ([RTE_HEADER, "0\ta\tb\tentailment", "", "2\ta\tb\tentailment"], 3, "found 1"),
        ([RTE_HEADER, "0\ta\tb\tmaybe"], 2, "label 'maybe' is not one of"),
        ([RTE_HEADER, "0\ta\tb\t7"], 2, "label '7'"),
        (["index\tsentence1\tlabel", "0\ta\tentailment"], 1, "header has no column 'sentence2'"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, rows, line, message):
    path = _write(tmp_path / "glue/RTE/train.tsv", rows)
    with pytest.raises(DataError, match=message) as caught:
        tsv.read_split(tmp_path / "glue", TASKS["rte"], "train")
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_bad_scores_and_encoding_name_the_line(tmp_path):
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    _write(tmp_path / "g/STS-B/train.tsv", [header, "0\tg\tf\ty\t1\tn\tn\tA\tB\t4.0", "1\tg\tf\ty\t1\tn\tn\tA\tB\tfive"])
    with pytest.raises(DataError, match=r"train.tsv:3: score 'five' is not a number"):
        tsv.read_split(tmp_path / "g", TASKS["stsb"], "train")
    bad = tmp_path / "g/CoLA/train.tsv"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"gj04\t1\t\tfine.\ngj04\t0\t*\tbad \xff byte.\n")
    with pytest.raises(DataError, match=r"train.tsv:2: not valid UTF-8"):
        tsv.read_split(tmp_path / "g", TASKS["cola"], "train")


def test_missing_split_says_where_it_was_looked_for(tmp_path):
    (tmp_path / "CoLA").mkdir()
    with pytest.raises(MissingDataError) as caught:
        tsv.read_split(tmp_path, TASKS["cola"], "validation")
    assert str(tmp_path / "CoLA" / "dev.tsv") in str(caught.value)
    assert "glue/cola" in str(caught.value)
    with pytest.raises(MissingDataError, match="has no split 'validation'"):
        tsv.split_path(tmp_path, TASKS["ax"], "validation")
    with pytest.raises(MissingDataError, match="does not exist"):
        TsvSource(tmp_path / "nowhere")
