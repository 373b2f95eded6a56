"""The micro-batcher keeps failures apart: one bad request never fails the requests merged with it.

A real ``serving.batching.Batcher`` in front of the tiny CoLA export's
``serving_default`` (called as the service calls it: ``tf.constant`` of the
merged texts, which itself raises on a lone UTF-16 surrogate), fed from many
threads at once so that requests really share model calls. Every valid request
must get exactly the answer it gets alone, every invalid one its own error.
No gunicorn: runs in seconds.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.batching import Batcher, allowed_rows
from support.tiny import SENTENCES

TOLERANCE = 1e-4
SURROGATES = ["\ud800", "\udfff", "\udbff", "\udc00"]
# Unicode the model must take: accents, emoji (with a skin tone), CJK, other scripts, a NUL, controls.
PIECES = sorted({w for s in SENTENCES for w in s.split()}) + [
    "café", "naïve", "Zürich", "😀", "👍🏽", "中文", "日本語の文", "Ελληνικά", "Привет", "עברית", "\x00", "\t", "…", "",
]


class Model:
    """``predict(columns)`` over the CoLA export, recording every call (its size and whether it answered)."""

    def __init__(self, signature):
        self.signature = signature
        self.calls: list[tuple[int, bool]] = []
        self.batches: list[int] = []

    def predict(self, columns: dict) -> dict:
        import tensorflow as tf

        texts = columns["sentence"]
        try:
            outputs = self.signature(sentence=tf.constant(texts))
        except Exception:
            self.calls.append((len(texts), False))
            raise
        self.calls.append((len(texts), True))
        return {name: value.numpy() for name, value in outputs.items()}

    def reset(self):
        self.calls.clear()
        self.batches.clear()


@pytest.fixture(scope="module")
def model(tiny_exports):
    from glue_tf.exports import saved_model, store

    signature, metadata = saved_model.load(store.latest(tiny_exports, "cola"))
    assert metadata["task"] == "cola"
    return Model(signature)


def send_concurrently(batcher: Batcher, requests: list[list]) -> list[tuple[dict | None, Exception | None]]:
    """Submits every request from its own thread, all released at once; ``(result, error)`` per request."""
    results: list = [None] * len(requests)
    start = threading.Barrier(len(requests))

    def send(position):
        start.wait()
        try:
            results[position] = (batcher.submit({"sentence": requests[position]}), None)
        except Exception as error:  # noqa: BLE001 - the property is about which requests raise
            results[position] = (None, error)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a request never got its answer"
    return results


def assert_same_answer(got: dict, alone: dict):
    assert got["label_id"].tolist() == alone["label_id"].tolist()
    np.testing.assert_allclose(got["probabilities"], alone["probabilities"], atol=TOLERANCE, rtol=0)


# --- strategies --------------------------------------------------------------------------------

valid_text = st.one_of(
    st.sampled_from(SENTENCES),
    st.lists(st.sampled_from(PIECES), max_size=12).map(" ".join),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),  # any Unicode but surrogates
)
# What makes the model call raise: a lone surrogate anywhere in a text (tf.constant cannot encode it),
# or a value that is no text at all (a merged column of mixed types).
bad_value = st.one_of(
    st.tuples(valid_text, st.sampled_from(SURROGATES), valid_text).map("".join),
    st.sampled_from([None, 5, 2.5]),
)
valid_request = st.lists(valid_text, min_size=1, max_size=4)
invalid_request = st.builds(lambda texts, bad, at: texts[:at] + [bad] + texts[at:],
                            st.lists(valid_text, max_size=3), bad_value, st.integers(0, 3))
requests_mix = st.lists(st.one_of(valid_request.map(lambda r: (True, r)), invalid_request.map(lambda r: (False, r))),
                        min_size=2, max_size=24)


def test_merged_requests_get_their_own_answers_and_only_bad_ones_fail(model):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mix=requests_mix)
    def check(mix):
        requests = [texts for _, texts in mix]
        total = sum(len(texts) for texts in requests)
        model.reset()
        # The batch closes exactly when every request is in: all of them share the first model call,
        # however loaded the machine is.
        batcher = Batcher(model.predict, max_batch_size=total, timeout_ms=10_000, on_batch=model.batches.append,
                          name="batcher-property")
        try:
            results = send_concurrently(batcher, requests)
        finally:
            batcher.close()
        calls, batches = list(model.calls), list(model.batches)
        assert calls[0][0] == total  # merged
        for (valid, texts), (result, error) in zip(mix, results):
            if not valid:
                assert error is not None and result is None, f"invalid request {texts!r} was answered"
                with pytest.raises(Exception):
                    model.predict({"sentence": texts})
                continue
            assert error is None, f"valid request {texts!r} failed: {error!r}"
            assert_same_answer(result, model.predict({"sentence": texts}))
            assert len(result["label_id"]) == len(texts)
        # Each valid instance was answered by exactly one model call, and no invalid one ever was.
        assert sum(batches) == sum(len(texts) for valid, texts in mix if valid)

    check()


def test_one_bad_request_among_20_good_ones_in_one_batch_fails_alone(model):
    good = [[s] for s in SENTENCES[:10]] + [["café 😀 中文"], ["naïve Zürich"], [""], ["\x00"]] + \
        [[s] for s in SENTENCES[10:16]]
    bad = ["The cat \ud800 sat on the mat."]
    requests = good[:7] + [bad] + good[7:]
    assert len(requests) == 21
    model.reset()
    # The batch closes exactly when all 21 single-instance requests are in: one merged call.
    batcher = Batcher(model.predict, max_batch_size=len(requests), timeout_ms=10_000, on_batch=model.batches.append,
                      name="batcher-one-bad")
    results = send_concurrently(batcher, requests)
    calls, batches = list(model.calls), list(model.batches)

    assert calls[0] == (21, False)  # all 21 merged, and the merged call failed
    errors = [(i, error) for i, (_, error) in enumerate(results) if error is not None]
    assert [i for i, _ in errors] == [requests.index(bad)]
    assert "unicode" in str(errors[0][1]).lower()
    for texts, (result, _) in zip(requests, results):
        if texts is not bad:
            assert_same_answer(result, model.predict({"sentence": texts}))
    assert sum(batches) == 20
    # Split in halves: the bad request is cornered in about 2 log2(21) calls, not 21 single retries.
    assert len(calls) <= 1 + 2 * 5


def test_a_closed_batcher_answers_what_it_holds_and_then_directly():
    """Closing (its version was unloaded) loses no request: queued ones are answered, later ones directly."""
    calls = []

    def predict(columns):
        calls.append(len(columns["sentence"]))
        return {"length": np.array([len(t) for t in columns["sentence"]])}

    batcher = Batcher(predict, max_batch_size=64, timeout_ms=200)
    answers = {}
    threads = [threading.Thread(target=lambda t=t: answers.__setitem__(t, batcher.submit({"sentence": [t]})))
               for t in ("a", "bb", "ccc")]
    for thread in threads:
        thread.start()
    time.sleep(0.05)  # queued, inside the 200 ms window
    batcher.close()
    for thread in threads:
        thread.join(timeout=10)
    assert {t: int(a["length"][0]) for t, a in answers.items()} == {"a": 1, "bb": 2, "ccc": 3}
    batcher._thread.join(timeout=10)
    assert not batcher._thread.is_alive()
    assert int(batcher.submit({"sentence": ["dddd"]})["length"][0]) == 4  # answered without the thread
    assert calls[-1] == 1


# --- under load: queued requests are grouped by length ----------------------------------------------

class Recorder:
    """A plain ``predict(columns)`` that echoes each text and records every batch it was called with.

    Its first call waits for ``release``, so requests pile up in the queue behind it exactly as under load.
    A text holding ``BAD`` fails the whole call, as a text the model cannot take does.
    """

    def __init__(self):
        self.batches: list[list[str]] = []
        self.entered, self.release = threading.Event(), threading.Event()

    def predict(self, columns: dict) -> dict:
        texts = list(columns["sentence"])
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30)
        if any("BAD" in t for t in texts):
            raise ValueError("the model cannot take BAD")
        self.batches.append(texts)
        return {"echo": np.array(texts, dtype=object), "length": np.array([len(t) for t in texts])}


def pile_up(requests: list[list[str]], max_batch_size: int):
    """Sends a gate request, queues ``requests`` behind it while the model is busy, then lets the model go.

    Returns the batches the model saw after the gate and ``(result, error)`` per request.
    """
    recorder = Recorder()
    batcher = Batcher(recorder.predict, max_batch_size=max_batch_size, timeout_ms=50, name="batcher-grouping")
    gate = threading.Thread(target=batcher.submit, args=({"sentence": ["gate"]},))
    gate.start()
    assert recorder.entered.wait(30)
    results: list = [None] * len(requests)

    def send(position):
        try:
            results[position] = (batcher.submit({"sentence": requests[position]}), None)
        except Exception as error:  # noqa: BLE001 - which requests fail is under test
            results[position] = (None, error)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while batcher.queued < sum(len(r) for r in requests) and time.monotonic() < deadline:
        time.sleep(0.01)
    recorder.release.set()
    for thread in [gate, *threads]:
        thread.join(timeout=30)
    batcher.close()
    return recorder.batches[1:], results


def test_queued_requests_are_batched_with_texts_of_similar_length():
    texts = ["x" * n for n in (7, 2, 11, 5, 12, 1, 9, 4, 10, 3, 8, 6)]  # lengths 1..12, shuffled
    batches, results = pile_up([[t] for t in texts], max_batch_size=4)
    assert [sorted(len(t) for t in batch) for batch in batches] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]
    for text, (result, error) in zip(texts, results):
        assert error is None and result["echo"].tolist() == [text]


def test_grouping_takes_at_most_four_batches_worth_at_once():
    texts = ["y" * n for n in range(20, 0, -1)]  # 20 queued, max 4: 16 grouped, then the rest
    batches, results = pile_up([[t] for t in texts], max_batch_size=4)
    assert [len(batch) for batch in batches] == [4] * 5
    grouped = [sorted(len(t) for t in batch) for batch in batches[:4]]
    assert all(a[-1] <= b[0] for a, b in zip(grouped, grouped[1:]))  # the first 16, in order of length
    assert all(error is None and result["echo"].tolist() == [t] for t, (result, error) in zip(texts, results))


def test_grouped_requests_get_their_own_rows_in_order_and_failures_stay_apart():
    requests = [["a" * 9, "b"], ["c" * 3, "d" * 12, "e" * 6], ["f" * 2], ["g BAD"], ["h" * 10, "i" * 4],
                ["j" * 7], ["k", "l" * 8]]
    batches, results = pile_up(requests, max_batch_size=4)
    assert all(sum(1 for _ in batch) <= 4 for batch in batches)
    for texts, (result, error) in zip(requests, results):
        if any("BAD" in t for t in texts):
            assert result is None and "cannot take BAD" in str(error)
            continue
        assert error is None and result["echo"].tolist() == texts
        assert result["length"].tolist() == [len(t) for t in texts]
    assert sorted(t for batch in batches for t in batch) == sorted(t for r in requests for t in r if "BAD" not in t)


# --- bounded shapes: merged calls come in a few row counts ------------------------------------------


def test_allowed_row_counts_are_few_and_pad_at_most_half_again():
    assert allowed_rows(64) == (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
    assert allowed_rows(100)[-2:] == (96, 100) and allowed_rows(1) == (1,)
    for rows in range(1, 101):
        padded = next(size for size in allowed_rows(100) if size >= rows)
        assert padded <= max(rows * 1.5, 1), rows


def test_a_merged_call_is_padded_with_its_last_row_and_each_request_gets_only_its_own():
    requests = [["one"], ["two two"], ["three", "four"], ["five"]]  # 5 rows: called as 6
    batches, results = pile_up(requests, max_batch_size=8)
    assert [len(batch) for batch in batches] == [6]
    assert batches[0][5] == batches[0][4]
    for texts, (result, error) in zip(requests, results):
        assert error is None and result["echo"].tolist() == texts
