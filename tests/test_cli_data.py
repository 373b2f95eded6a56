"""``glue-tf data check`` and ``data show`` as a user runs them."""

import json
import shutil
import subprocess
import sys

from glue_tf.tasks import TASKS
from support.glue_files import SIZES


def glue_tf(*args, check=True):
    exe = shutil.which("glue-tf", path=str(__import__("pathlib").Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "glue_tf.cli"]
    result = subprocess.run([*command, *args], capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _counts(stdout: str) -> dict:
    counts = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2].isdigit():
            counts[(parts[0], parts[1])] = int(parts[2])
    return counts


def test_data_check_on_a_glue_folder_with_tasks_missing(glue_dir, tmp_path):
    # As the workspace's copy of GLUE: no MNLI, no QQP, QNLI without its train split.
    folder = shutil.copytree(glue_dir, tmp_path / "glue", ignore=shutil.ignore_patterns("MNLI", "QQP"))
    (folder / "QNLI" / "train.tsv").unlink()
    out = glue_tf("data", "check", "--glue-dir", str(folder)).stdout
    expected = {
        (TASKS[name].display_name, split): count
        for name, sizes in SIZES.items() if name not in ("mnli", "qqp")
        for split, count in sizes.items() if (name, split) != ("qnli", "train")
    }
    assert _counts(out) == expected
    assert "CoLA   validation                  64  unacceptable 32, acceptable 32" in out
    assert "MNLI   MISSING" in out and "QQP    MISSING" in out
    assert "missing tasks: QQP, MNLI" in out
    assert "QNLI                          not available: train" in out


def test_data_check_through_tfds_offline(tfds_manual_dir, tmp_path):
    out = glue_tf(
        "data", "check", "--tfds-manual-dir", str(tfds_manual_dir), "--tfds-data-dir", str(tmp_path),
        "--tasks", "wnli,mnli",
    ).stdout
    assert _counts(out) == {("WNLI", "train"): 635, ("WNLI", "validation"): 71, ("WNLI", "test"): 146}
    assert "MNLI.zip" in out


def test_data_show_json_and_limits(glue_dir):
    out = glue_tf("data", "show", "--glue-dir", str(glue_dir), "--task", "rte", "--split", "validation",
                  "--limit", "3", "--json").stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["idx"] for r in rows] == [0, 1, 2]
    assert set(rows[0]) == {"idx", "label", "sentence1", "sentence2"}
    everything = glue_tf("data", "show", "--glue-dir", str(glue_dir), "--task", "wnli", "--split", "validation",
                         "--limit", "0", "--json").stdout
    assert len(everything.splitlines()) == SIZES["wnli"]["validation"]
    text = glue_tf("data", "show", "--glue-dir", str(glue_dir), "--task", "cola", "--limit", "1").stdout
    first = (glue_dir / "CoLA" / "dev.tsv").read_text().splitlines()[0].split("\t")
    assert first[1] == "1" and text == f"[0] (1 acceptable) sentence: {first[3]}\n"


def test_data_errors_are_one_clear_line(tmp_path):
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\n")
    result = glue_tf("data", "show", "--glue-dir", str(tmp_path), "--task", "rte", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == f"glue-tf: error: {tmp_path}/RTE/dev.tsv:2: expected 4 tab-separated columns, found 3"
    check = glue_tf("data", "check", "--glue-dir", str(tmp_path), "--tasks", "rte", check=False)
    assert check.returncode == 1 and "ERROR" in check.stdout
    unknown = glue_tf("data", "show", "--glue-dir", str(tmp_path), "--task", "squad", check=False)
    assert unknown.returncode == 2 and "unknown GLUE task 'squad'" in unknown.stderr
    assert unknown.stderr.startswith("glue-tf: error: ") and len(unknown.stderr.splitlines()) == 1  # no traceback
    ax = glue_tf("train", "--task", "ax", "--glue-dir", str(tmp_path), check=False)
    assert ax.returncode == 2 and "Traceback" not in ax.stderr  # (TensorFlow's start-up lines come first)
    assert ax.stderr.splitlines()[-1] == "glue-tf: error: ax has no training data; it is predicted with the mnli model"
