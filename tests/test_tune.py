"""``glue-tf tune``: its grid, selection on a held-out slice of train, resume; recipes and the fresh-seed rule."""

import dataclasses
import json
import statistics

import pytest

from glue_tf import recipes, tune
from glue_tf.config import TrainConfig
from glue_tf.data.sources import TsvSource
from glue_tf.held_out import HeldOutSource
from glue_tf.tasks import TASKS


def test_the_default_grid_has_at_most_twelve_points_over_every_recipe_field():
    points = tune.points(tune.DEFAULT_GRID)
    assert 1 < len(points) <= 12 and len({tune.point_name(p) for p in points}) == len(points)
    assert all(set(p) == set(recipes.RECIPE_FIELDS) for p in points)
    with pytest.raises(recipes.RecipeError, match="no values for dropout"):
        tune.points({**tune.DEFAULT_GRID, "dropout": []})


def test_selection_takes_the_best_mean_then_the_smaller_std():
    scored = [{"mean": 60.0, "std": 3.0}, {"mean": 62.0, "std": 5.0}, {"mean": 62.0, "std": 1.0}]
    assert tune.select(scored) is scored[2]


def test_the_held_out_slice_is_a_seeded_tenth_of_train_and_never_dev(glue_dir):
    task = TASKS["rte"]
    sliced = HeldOutSource(TsvSource(glue_dir))
    train, held = sliced.examples(task, "train"), sliced.examples(task, "validation")
    everything = TsvSource(glue_dir).examples(task, "train")
    assert {e["idx"] for e in train} | {e["idx"] for e in held} == {e["idx"] for e in everything}
    assert not {e["idx"] for e in train} & {e["idx"] for e in held}
    assert len(held) == round(0.1 * len(everything))
    assert held == HeldOutSource(TsvSource(glue_dir)).examples(task, "validation")  # same slice every time
    assert sliced.available_splits(task) == ["train", "validation"]  # no test split to predict


@pytest.mark.long  # a whole sweep, killed and resumed: make test-long
def test_tune_writes_the_recipe_and_resumes_without_retraining(tmp_path, small_glue_dir, tiny_preset):
    config = TrainConfig(backbone=str(tiny_preset), batch_size=8, precision="float32", max_seq_length=64,
                         seed=tune.SEED, seeds=2)
    grid = {**{f: [v[0]] for f, v in tune.DEFAULT_GRID.items()}, "learning_rate": [1e-3, 1e-7], "epochs": [1]}
    recipe_path = tmp_path / "recipe.json"
    recipe = tune.tune(TsvSource(small_glue_dir), config, [TASKS["rte"]], grid, tmp_path / "sweep", recipe_path)
    entry = recipe["tasks"]["rte"]
    assert [p["learning_rate"] for p in entry["points"]] == [1e-3, 1e-7]
    best = max(entry["points"], key=lambda p: p["mean"])
    assert entry["learning_rate"] == best["learning_rate"] and entry["held_out_score_mean"] == best["mean"]
    assert all(p["seeds"] == [1000, 1001] and len(p["scores"]) == 2 and p["precision"] == "float32"
               for p in entry["points"])
    assert entry["sweep"] == {"seeds": [1000, 1001], "grid": grid, "settings": tune.settings(config, "float32")}
    assert recipe["held_out"]["fraction"] == 0.1
    assert json.loads(recipe_path.read_text()) == recipe
    point = tmp_path / "sweep" / "rte" / tune.point_name(entry["points"][0])
    assert not (point / "models").exists()  # a finished point keeps its records, not its export
    stamp = (point / "point.json").stat().st_mtime_ns
    again = tune.tune(TsvSource(small_glue_dir), config, [TASKS["rte"]], grid, tmp_path / "sweep", recipe_path)
    assert again["tasks"]["rte"]["points"] == entry["points"] and (point / "point.json").stat().st_mtime_ns == stamp
    assert "done before" in (tmp_path / "sweep" / "tune.log").read_text()


def test_a_finished_point_is_reused_only_under_the_settings_it_ran_with(tmp_path, small_glue_dir):
    """sweeps/<backbone>/ carries finished points to the next machine: there a record is read back, not retrained,
    unless it ran under other settings (bfloat16 where this sweep runs float32), which one selection must not mix."""
    config = TrainConfig(seed=tune.SEED, seeds=2, precision="float32")
    grid = {f: [v[0]] for f, v in tune.DEFAULT_GRID.items()}
    point = tune.points(grid)[0]
    folder = tmp_path / "sweep" / "rte" / tune.point_name(point)
    folder.mkdir(parents=True)
    record = {**point, "seeds": [1000, 1001], "scores": [60.0, 62.0], "mean": 61.0, "std": 1.41,
              "precision": "float32", "settings": tune.settings(config, "float32")}
    (folder / "point.json").write_text(json.dumps(record))
    recipe = tune.tune(TsvSource(small_glue_dir), config, [TASKS["rte"]], grid, tmp_path / "sweep",
                       tmp_path / "recipe.json")  # no backbone loads: the record is the point
    entry = recipe["tasks"]["rte"]
    assert entry["held_out_score_mean"] == 61.0 and entry["sweep"]["settings"] == record.pop("settings")
    assert entry["points"] == [record]  # the settings once per task, not per point
    refused = (rf"{folder / 'point.json'} ran with precision='float32'; "
               r"this sweep has precision='mixed_bfloat16'\. One sweep selects among points run alike")
    with pytest.raises(recipes.RecipeError, match=refused):
        tune.tune(TsvSource(small_glue_dir), dataclasses.replace(config, precision="bfloat16"), [TASKS["rte"]], grid,
                  tmp_path / "sweep", tmp_path / "recipe.json")
    with pytest.raises(recipes.RecipeError, match=r"ran with max_seq_length=128, seeds=2; this sweep has "
                                                  r"max_seq_length=64, seeds=3\."):
        tune.tune(TsvSource(small_glue_dir), dataclasses.replace(config, seeds=3, max_seq_length=64), [TASKS["rte"]],
                  grid, tmp_path / "sweep", tmp_path / "recipe.json")


def test_a_sweep_stopped_in_its_second_task_keeps_the_first_task_s_recipe(tmp_path, small_glue_dir, monkeypatch):
    """Each task's recipe is written when its grid ends: a sweep of many CPU-hours loses only the task it was in."""
    def run_point(task, source, config, fixed, point, folder, log):
        if task.name == "wnli":
            raise KeyboardInterrupt  # killed inside WNLI's grid
        return {**point, "seeds": [1000], "scores": [61.0], "mean": 61.0, "std": 0.0, "precision": "float32"}

    monkeypatch.setattr(tune, "_run_point", run_point)
    grid = {f: [v[0]] for f, v in tune.DEFAULT_GRID.items()}
    recipe_path = tmp_path / "recipe.json"
    with pytest.raises(KeyboardInterrupt):
        tune.tune(TsvSource(small_glue_dir), TrainConfig(seed=tune.SEED), [TASKS["rte"], TASKS["wnli"]], grid,
                  tmp_path / "sweep", recipe_path)
    written = json.loads(recipe_path.read_text())
    assert list(written["tasks"]) == ["rte"] and written["tasks"]["rte"]["held_out_score_mean"] == 61.0
    assert written["tasks"]["rte"]["sweep"]["grid"] == grid


def test_two_sweeps_side_by_side_keep_each_other_s_tasks(tmp_path, small_glue_dir, monkeypatch):
    """SST-2's two-point sweep and the small tasks' grid run for hours at once: the one that ends last must not
    write back the recipe as it read it at its start, without the other's task."""
    recipe_path, grid = tmp_path / "recipe.json", {f: [v[0]] for f, v in tune.DEFAULT_GRID.items()}

    def run_point(task, source, config, fixed, point, folder, log):
        if task.name == "rte":  # while RTE's grid runs, the other sweep finishes WNLI and writes it
            tune.tune(TsvSource(small_glue_dir), dataclasses.replace(config, seed=2000), [TASKS["wnli"]], grid,
                      tmp_path / "other", recipe_path)
        return {**point, "seeds": [config.seed], "scores": [60.0], "mean": 60.0, "std": 0.0, "precision": "float32"}

    monkeypatch.setattr(tune, "_run_point", run_point)
    recipe = tune.tune(TsvSource(small_glue_dir), TrainConfig(seed=tune.SEED, seeds=1), [TASKS["rte"]], grid,
                       tmp_path / "sweep", recipe_path)
    assert sorted(recipe["tasks"]) == ["rte", "wnli"] and json.loads(recipe_path.read_text()) == recipe
    assert recipe["tasks"]["wnli"]["sweep"]["seeds"] == [2000] and recipe["tasks"]["rte"]["sweep"]["seeds"] == [1000]
    with pytest.raises(recipes.RecipeError, match=r"reuses seeds \[2000\]"):  # either sweep's seeds are refused
        recipes.check_fresh_seeds(TrainConfig(recipe=str(recipe_path), seed=2000, seeds=3))


def _recipe(tmp_path):
    path = tmp_path / "minilm.json"
    path.write_text(json.dumps({"sweep": {"seeds": [1000, 1001, 1002]}, "tasks": {"rte": {
        "learning_rate": 2e-4, "epochs": 5, "batch_size": 16, "warmup_fraction": 0.06, "dropout": 0.2}}}))
    return str(path)


def test_recipe_fields_fill_in_except_flags_given_on_the_command_line(tmp_path):
    config = TrainConfig(recipe=_recipe(tmp_path), epochs=3)
    explicit = recipes.explicit_fields(["train", "--task", "rte", "--epochs", "3", "--learning-r", "1e-5"])
    assert explicit == {"epochs", "learning_rate"}
    rte = recipes.task_config(config, "rte", explicit)
    assert (rte.epochs, rte.batch_size, rte.warmup_fraction, rte.dropout) == (3, 16, 0.06, 0.2)
    assert recipes.task_config(config, "wnli", explicit) == config  # a task the recipe lacks: built-in defaults
    assert recipes.task_config(dataclasses.replace(config, recipe=None), "rte") == dataclasses.replace(config, recipe=None)
    assert recipes.resolve("none", config.backbone) is None
    with pytest.raises(recipes.RecipeError, match="no such file"):
        recipes.load(str(tmp_path / "missing.json"))


def test_training_with_a_recipe_refuses_the_seeds_its_sweep_used(tmp_path):
    recipe = _recipe(tmp_path)
    recipes.check_fresh_seeds(TrainConfig(recipe=recipe, seed=42, seeds=3))  # the defaults are fresh
    with pytest.raises(recipes.RecipeError, match=r"reuses seeds \[1001, 1002\]"):
        recipes.check_fresh_seeds(TrainConfig(recipe=recipe, seed=1001, seeds=3))


def test_the_sweep_table_shows_every_point_with_the_chosen_one_in_bold(tmp_path, small_glue_dir, monkeypatch):
    """``bench/results_doc.py --sweep``: docs/RESULTS.md's sweep table, rendered from the recipe tune wrote."""
    from bench.results_doc import render_sweep

    scores = {1e-4: [60.0, 64.0], 5e-5: [58.0, 59.0]}
    avx2 = {"cpu": "AMD EPYC", "family": "25", "model": "1", "vector_flags": ["avx2", "fma"], "cores": 2}

    def run_point(task, source, config, fixed, point, folder, log):
        got = scores[point["learning_rate"]]
        return {**point, "seeds": [1000, 1001], "scores": got, "mean": sum(got) / 2,
                "std": abs(got[0] - got[1]) / 2 ** 0.5, "precision": "float32", "machine": avx2}

    monkeypatch.setattr(tune, "_run_point", run_point)
    grid = {**{f: [v[0]] for f, v in tune.DEFAULT_GRID.items()}, "learning_rate": [5e-5, 1e-4]}
    recipe_path = tmp_path / "recipe.json"
    tune.tune(TsvSource(small_glue_dir), TrainConfig(seed=tune.SEED, seeds=2), [TASKS["rte"]], grid,
              tmp_path / "sweep", recipe_path)
    table = render_sweep(recipe_path)
    assert "**RTE**: 2 points x 2 seeds (1000, 1001), float32" in table
    rows = [line for line in table.splitlines() if line.startswith("| 5e-5") or line.startswith("| **1e-4")]
    assert rows == ["| 5e-5 | 3 | 32 | 0.1 | 0.1 | 58.5 ± 0.7 | 58.0, 59.0 |",
                    "| **1e-4** | **3** | **32** | **0.1** | **0.1** | **62.0 ± 2.8** | **60.0, 64.0** |"]
    assert "never on dev" in table and "10% held out (seed 2828)" in table
    assert "Ran on AMD EPYC (family 25, model 1; avx2, fma; 2 cores): 2 of the points." in table


def test_a_running_sweep_s_table_shows_its_finished_points_in_grid_order_with_none_chosen(tmp_path):
    """``bench/results_doc.py --sweep sweeps/<backbone>``: what a sweep spanning sessions has so far, from its
    committed point records, before any recipe exists."""
    from bench.results_doc import render_sweep

    for learning_rate, scores in ((1e-4, [60.0, 64.0]), (5e-5, [58.0, 59.0])):
        point = {**{f: v[0] for f, v in tune.DEFAULT_GRID.items()}, "learning_rate": learning_rate}
        folder = tmp_path / "rte" / tune.point_name(point)
        folder.mkdir(parents=True)
        (folder / "point.json").write_text(json.dumps({**point, "seeds": [1000, 1001], "scores": scores,
                                                       "mean": sum(scores) / 2, "std": abs(scores[0] - scores[1]) / 2 ** 0.5,
                                                       "precision": "float32"}))
    table = render_sweep(tmp_path)
    assert "**RTE**: 2 points x 2 seeds (1000, 1001), float32" in table and "**" not in table.split("float32")[1]
    assert [line for line in table.splitlines() if line.startswith("| 5e-5") or line.startswith("| 1e-4")] == [
        "| 5e-5 | 3 | 32 | 0.1 | 0.1 | 58.5 ± 0.7 | 58.0, 59.0 |", "| 1e-4 | 3 | 32 | 0.1 | 0.1 | 62.0 ± 2.8 | 60.0, 64.0 |"]
    assert "Ran on a machine its record does not name: 2 of the points." in table
    assert f"Selection: not yet made: the points finished so far in {tmp_path}." in table


def test_a_rerun_reproduces_the_tasks_whose_mean_is_within_two_reported_stds(tmp_path):
    """``bench/results_doc.py --reproduces``: issue 28's rule that the committed recipe reproduces, applied to
    two runs' report.json (the published three fresh seeds, and a rerun of the same recipe)."""
    from bench.results_doc import render_reproduction

    def run(name, tasks):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "report.json").write_text(json.dumps({"tasks": tasks}))
        return folder

    reported = run("reported", {"rte": {"dev_score_mean": 55.6, "dev_score_std": 1.1, "seeds": 3},
                                "mrpc": {"dev_score_mean": 82.2, "dev_score_std": 0.9, "seeds": 3},
                                "wnli": {"dev_score_mean": 46.5, "dev_score_std": 2.8, "seeds": 3}})
    rerun = run("rerun", {"rte": {"dev_score_mean": 57.5, "dev_score_std": None, "seeds": 1},
                          "mrpc": {"dev_score_mean": 80.0, "dev_score_std": None, "seeds": 1}})
    table = render_reproduction(reported, rerun)
    assert "| MRPC | 82.2 ± 0.9 (3) | 80.0 (1) | -2.2 | no: 2.2 > 2 × 0.9 |" in table
    assert "| RTE | 55.6 ± 1.1 (3) | 57.5 (1) | +1.9 | yes: 1.9 ≤ 2 × 1.1 |" in table
    assert "WNLI" not in table  # only the tasks both runs hold
    assert table.rstrip().endswith("1 of 2 tasks reproduce (rerun mean within 2 reported stds).")


def test_the_fresh_seed_table_joins_runs_of_the_same_seeds_each_over_its_own_tasks(tmp_path):
    """``bench/results_doc.py --seeds-run A B``: three fresh seeds of six tasks are hours, trained over several
    sessions into several run folders; one table joins them, pairing seed k of every task for the GLUE score's
    spread, and refuses a task found twice or runs of different seeds."""
    from bench.results_doc import render_seeds
    from glue_tf.run_dir import RunDir

    def run(name, task, scores, seeds=(42, 43, 44)):
        path = RunDir(tmp_path / name).result(task)
        path.parent.mkdir(parents=True, exist_ok=True)
        mean, std = sum(scores) / 3, statistics.stdev(scores)
        path.write_text(json.dumps({
            "task": task, "dev": {"accuracy": mean}, "dev_score": max(scores), "dev_score_mean": mean,
            "dev_score_std": std, "dev_score_ci95": [mean - 5, mean + 5], "majority_score": 50.0,
            "majority_baseline": {"accuracy": 50.0},
            "seeds": [{"seed": seed, "best_score": score} for seed, score in zip(seeds, scores)]}))
        return tmp_path / name

    rte, wnli = run("a", "rte", [54.0, 56.0, 58.0]), run("b", "wnli", [40.0, 46.0, 52.0])
    table = render_seeds([rte, wnli])
    assert "| RTE | 56.0 ± 2.0 | [51.0, 61.0] | 42: 54.0, 43: 56.0, 44: 58.0 |" in table
    assert "| WNLI | 46.0 ± 6.0 | [41.0, 51.0] | 42: 40.0, 43: 46.0, 44: 52.0 |" in table
    # per-seed means 47, 51, 55 (seed k of both tasks), std 4.0; counting WNLI as its majority class's 50: 52, 53, 54
    assert "the model's own answers: **51.0** ± 4.0 (std of the per-seed means)" in table
    assert "`--below-majority majority`: **53.0** ± 1.0 (std of the per-seed means); the majority class stands in for WNLI" in table
    with pytest.raises(SystemExit, match=r"RTE is in both .*a and .*c"):
        render_seeds([rte, run("c", "rte", [50.0, 51.0, 52.0])])
    with pytest.raises(SystemExit, match="the tasks trained different seeds"):
        render_seeds([rte, run("d", "mrpc", [80.0, 81.0, 82.0], seeds=(45, 46, 47))])
