"""Property-based fuzzing (hypothesis) of everything that parses outside input.

Any bytes in a GLUE TSV or a `glue-tf predict` input file give examples or a
`DataError` naming the file and a line, never a crash or a silently dropped row;
any JSON a client sends gives columns or a 4xx `ApiError`.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glue_tf.data.errors import DataError
from glue_tf.data.tsv import read_split
from glue_tf.predict_files import read_rows
from glue_tf.tasks import TASKS
from serving import labelled_scores, schemas
from serving.errors import ApiError

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Bytes that look like TSV often: tabs, newlines, digits, labels, BOMs, broken UTF-8.
TSV_PIECES = st.sampled_from([b"\t", b"\n", b"\r\n", b"\r", b"0", b"1", b"3.5", b"-1", b"entailment", b"x",
                              b"\xef\xbb\xbf", b"\xff", b"\xc3", b"\xc3\xa9", b"index", b"sentence1", b"sentence2",
                              b"label", b"quality", b"#1 String", b"#2 String", b" "])
TSV_BYTES = st.one_of(st.binary(max_size=300), st.lists(TSV_PIECES, max_size=60).map(b"".join))


def _row_count(raw: bytes, header: bool) -> int:
    text = raw.decode("utf-8").removeprefix("\ufeff")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return len(lines) - (1 if header else 0)


@FUZZ
@given(raw=TSV_BYTES, task_name=st.sampled_from(["cola", "rte", "stsb", "mrpc"]), split=st.sampled_from(["train", "test"]))
def test_glue_tsv_reader_never_crashes_or_drops_rows(tmp_path_factory, raw, task_name, split):
    task = TASKS[task_name]
    root = tmp_path_factory.mktemp("glue")
    path = root / task.tsv_dir / task.splits[split]
    path.parent.mkdir(parents=True)
    path.write_bytes(raw)
    try:
        examples = read_split(root, task, split)
    except DataError as error:
        assert error.path == str(path)
        assert error.line is None or 1 <= error.line <= raw.count(b"\n") + raw.count(b"\r") + 1
        return
    header = not (split == "train" and task.headerless_columns)
    assert len(examples) == _row_count(raw, header)  # one example per row, none dropped
    assert [e["idx"] for e in examples] == list(range(len(examples)))


@FUZZ
@given(raw=TSV_BYTES, suffix=st.sampled_from(["tsv", "jsonl"]))
def test_predict_input_reader_never_crashes(tmp_path_factory, raw, suffix):
    path = tmp_path_factory.mktemp("input") / f"rows.{suffix}"
    path.write_bytes(raw)
    try:
        rows = list(read_rows(path, TASKS["rte"]))
    except DataError as error:
        assert error.path == str(path) and error.line >= 1
        return
    assert all(set(row) == {"sentence1", "sentence2"} for _, row in rows)
    assert all(isinstance(value, str) for _, row in rows for value in row.values())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["sentence", "sentence1", "sentence2", "question", "premise", "x", "instances", "labels"]),
        children, max_size=4),
    max_leaves=20,
)


LIMITS = schemas.Limits(max_instances=16, max_chars=100)


def _parse(kind: str, task, body):
    """What each route does with a body before the model: validate, then convert."""
    if kind == "predict":
        schemas.validate(body, "predict", task, LIMITS)
        return schemas.rows_to_columns(task, body["instances"], LIMITS)
    if kind == "tf_predict":
        schemas.validate(body, "tf_predict", task, LIMITS)
        if "instances" in body:
            return schemas.rows_to_columns(task, body["instances"], LIMITS)
        return schemas.inputs_to_columns(task, body["inputs"], LIMITS) if "inputs" in body else {}
    if kind == "tf_examples":
        schemas.validate(body, "tf_examples", task, LIMITS)
        return schemas.examples_to_columns(task, body, LIMITS)
    if kind == "score":
        return labelled_scores.parse_task(task, body, LIMITS)
    return labelled_scores.parse_job(body, LIMITS)


WRAPPERS = [lambda b: b, lambda b: {"instances": b}, lambda b: {"inputs": b}, lambda b: {"examples": b},
            lambda b: {"instances": b, "labels": b}, lambda b: {"task": "rte", "instances": b, "labels": [0]}]


@FUZZ
@given(body=JSON, task_name=st.sampled_from(sorted(TASKS)), wrap=st.sampled_from(range(len(WRAPPERS))),
       kind=st.sampled_from(["predict", "tf_predict", "tf_examples", "score", "job"]))
def test_any_json_gives_model_inputs_or_a_client_error(body, task_name, wrap, kind):
    task = TASKS[task_name]
    try:
        result = _parse(kind, task, WRAPPERS[wrap](body))
    except ApiError as error:
        assert 400 <= error.status < 500
        json.dumps(error.body())  # always a serialisable {"error": {...}}
        return
    assert result is not None


@FUZZ
@given(texts=st.lists(st.text(st.characters(exclude_categories=()), max_size=30), min_size=1, max_size=4))
def test_any_python_text_is_accepted_or_refused_as_invalid_unicode(texts):
    """Strings straight from json.loads may hold lone surrogates; they never reach the model."""
    body = {"instances": texts}
    try:
        columns = _parse("predict", TASKS["cola"], body)
    except ApiError as error:
        assert error.status == 400 and error.code == "invalid_text" and "surrogate" in error.message
        assert any(0xD800 <= ord(c) <= 0xDFFF for t in texts for c in t)
        return
    assert columns == {"sentence": texts}
    for text in texts:
        text.encode("utf-8")  # what tf.constant needs
