"""``glue-tf data check`` and ``data show`` as a user runs them."""

import json
import shutil
import subprocess
import sys


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


def test_data_check_on_the_glue_folder(glue_dir):
    out = glue_tf("data", "check", "--glue-dir", str(glue_dir)).stdout
    counts = _counts(out)
    expected = {
        ("CoLA", "train"): 8551, ("CoLA", "validation"): 1043, ("CoLA", "test"): 1063,
        ("SST-2", "train"): 67349, ("SST-2", "validation"): 872, ("SST-2", "test"): 1821,
        ("MRPC", "train"): 3668, ("MRPC", "validation"): 408, ("MRPC", "test"): 1725,
        ("STS-B", "train"): 5749, ("STS-B", "validation"): 1500, ("STS-B", "test"): 1379,
        ("RTE", "train"): 2490, ("RTE", "validation"): 277, ("RTE", "test"): 3000,
        ("WNLI", "train"): 635, ("WNLI", "validation"): 71, ("WNLI", "test"): 146,
        ("QNLI", "validation"): 5463, ("QNLI", "test"): 5463,
        ("AX", "test"): 1104,
    }
    assert counts == expected
    assert "CoLA   validation                1043  unacceptable 322, acceptable 721" in out
    assert "MNLI   MISSING" in out and "QQP    MISSING" in out
    assert "missing tasks: QQP, MNLI" in out
    assert "not available: train" in out  # QNLI has dev and test only


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
    assert len(everything.splitlines()) == 71
    text = glue_tf("data", "show", "--glue-dir", str(glue_dir), "--task", "cola", "--limit", "1").stdout
    assert text.startswith("[0] (1 acceptable) sentence: The sailors rode the breeze clear of the rocks.")


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
