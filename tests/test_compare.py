"""Fresh seeds' spread and intervals in report.json, ``glue-tf compare``, and ``--below-majority majority``,
on a tiny BERT trained for seconds on a few RTE and WNLI rows."""

import json
import shutil

import numpy as np
import pytest

from glue_tf import compare, dev_predictions
from glue_tf.cli import main
from glue_tf.run_dir import RunDir

pytestmark = pytest.mark.long  # a two-seed train-all of two tasks: minutes (make test-long)


def _train_all(glue_dir, preset, out, *extra):
    return main(["train-all", "--glue-dir", str(glue_dir), "--backbone", str(preset), "--tasks", "rte,wnli",
                 "--epochs", "1", "--batch-size", "8", "--learning-rate", "1e-3", "--max-seq-length", "64",
                 "--precision", "float32", "--skip-export-measurements", "--seeds", "2", "--out", str(out), *extra])


@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory, small_glue_dir, tiny_preset):
    out = tmp_path_factory.mktemp("seeded") / "run"
    assert _train_all(small_glue_dir, tiny_preset, out) == 0
    return out


def test_train_all_reports_mean_std_interval_and_keeps_each_seeds_dev_predictions(seeded_run):
    report = json.loads((seeded_run / "report.json").read_text())
    rte = report["tasks"]["rte"]
    result = json.loads(RunDir(seeded_run).result("rte").read_text())
    scores = [s["best_score"] for s in result["seeds"]]
    assert rte["seed_numbers"] == [42, 43]
    assert rte["dev_score_mean"] == pytest.approx(np.mean(scores))
    assert rte["dev_score_std"] == pytest.approx(np.std(scores, ddof=1))
    lo, hi = rte["dev_score_ci95"]
    assert [lo, hi] == result["dev_score_ci95"] and rte["dev_score_ci95_method"] == result["dev_score_ci95_method"]
    assert rte["dev_score_ci95_method"] in ("BCa", "percentile")  # computed once, by training, and quoted
    assert 0.0 <= lo <= rte["dev_score_mean"] <= hi <= 100.0
    per_seed_glue = [np.mean([report_seed["best_score"] for report_seed in pair])
                     for pair in zip(result["seeds"], json.loads(RunDir(seeded_run).result("wnli").read_text())["seeds"])]
    assert report["glue_score_std"] == pytest.approx(np.std(per_seed_glue, ddof=1))
    for seed, score in zip((42, 43), scores):
        kept = dev_predictions.load(RunDir(seeded_run).work("rte", seed) / dev_predictions.FILE_NAME)["validation"]
        assert len(kept["idx"]) == 24
        assert 100 * np.mean(kept["predictions"] == kept["labels"]) == pytest.approx(score)
    assert "± " in (seeded_run / "report.md").read_text()


def test_compare_identical_runs_shows_no_difference(seeded_run, capsys):
    assert main(["compare", str(seeded_run), str(seeded_run), "--json"]) == 0
    printed = capsys.readouterr().out
    comparison = json.loads(printed.strip().splitlines()[-1])
    for row in [*comparison["tasks"].values(), comparison["mean"]]:
        assert row["difference"] == 0.0 and row["ci95"] == [0.0, 0.0] and row["verdict"] == "no difference shown"
    assert "RTE: A − B = +0.00 points, 95% CI [+0.00, +0.00] (percentile): no difference shown" in printed


def _edit_predictions(run, task, change):
    result = json.loads(RunDir(run).result(task).read_text())
    for path in dev_predictions.seed_paths(run, task, result):
        splits = dev_predictions.load(path)
        arrays = {f"{split}/{field}": value for split, fields in change(splits).items() for field, value in fields.items()}
        dev_predictions.save(path, arrays)


def test_compare_shows_clearly_better_predictions_and_refuses_other_dev_examples(seeded_run, tmp_path):
    better = tmp_path / "better"
    shutil.copytree(seeded_run, better)

    def all_right(splits):
        return {s: {**f, "predictions": f["labels"]} for s, f in splits.items()}

    _edit_predictions(better, "rte", all_right)
    _edit_predictions(better, "wnli", lambda splits: {s: {**f, "idx": f["idx"] + 1000} for s, f in splits.items()})
    found = compare.compare(better, seeded_run)
    assert found["tasks"]["rte"]["verdict"] == "difference shown" and found["tasks"]["rte"]["ci95"][0] > 0
    assert "wnli" in found["refused"] and "idx differ" in found["refused"]["wnli"]
    assert found["mean"]["label"] == "mean over 1 tasks"
    with pytest.raises(compare.CompareError, match="share no task"):
        compare.compare(better, tmp_path / "empty")


def test_below_majority_majority_submits_and_counts_the_majority_class(seeded_run, tmp_path, small_glue_dir,
                                                                       tiny_preset):
    run = tmp_path / "run"
    shutil.copytree(seeded_run, run)
    # Force WNLI below its majority class: a result the policy must act on, whatever the tiny model learned.
    path = RunDir(run).result("wnli")
    result = json.loads(path.read_text())
    result["majority_score"] = 101.0
    result["majority_baseline"] = {"accuracy": 101.0}
    path.write_text(json.dumps(result))
    own = (run / "predictions" / "WNLI.tsv").read_text()
    assert _train_all(small_glue_dir, tiny_preset, run, "--below-majority", "majority") == 0
    report = json.loads((run / "report.json").read_text())
    wnli = report["tasks"]["wnli"]
    assert wnli["counted"] == "majority" and wnli["score"] == 101.0 and wnli["model_score"] < 101.0
    assert report["below_majority_policy"] == "majority"
    lines = (run / "predictions" / "WNLI.tsv").read_text().splitlines()[1:]
    assert len({line.split("\t")[1] for line in lines}) == 1  # one class for every test example
    assert "(majority class; model" in (run / "report.md").read_text()
    assert _train_all(small_glue_dir, tiny_preset, run) == 0  # the default policy gives the model's own back
    assert (run / "predictions" / "WNLI.tsv").read_text() == own
    assert json.loads((run / "report.json").read_text())["tasks"]["wnli"]["counted"] == "model"
