"""``report.json``, ``report.md`` and a chart: dev scores next to the human baseline.

Reads task results (as ``train.train_task`` returns them) and the registry; the
GLUE score is printed only when all nine tasks are present, otherwise the mean
over the tasks present, labelled as such (``metrics.summarize``). Every score
is in points (0-100), as in the results and on the leaderboard; scores shown to
one decimal are rounded half up, as the leaderboard prints them.
"""

from __future__ import annotations

import json
from pathlib import Path

from glue_tf import metrics
from glue_tf.metrics import METRIC_LABELS, round_score
from glue_tf.tasks import GLUE_TASKS, TASKS


def build(results: dict[str, dict], skipped: dict[str, str], wall_seconds: float | None = None) -> dict:
    """The report as a JSON-able dict. ``results``: task -> result; ``skipped``: task -> reason."""
    # With several seeds, a task's figure is its mean over seeds, not its best seed.
    scored = {name: r.get("dev_mean") or r["dev"] for name, r in results.items() if r.get("dev")}
    summary = metrics.summarize(scored)
    tasks = {}
    for name, result in results.items():
        task = TASKS[name]
        tasks[name] = {
            "display_name": task.display_name,
            "dev": scored.get(name),
            "score": summary["task_scores"].get(name),
            "human_baseline": dict(task.human_baseline),
            "human_score": metrics.human_score(task),
            "best_epoch": result.get("best_epoch"),
            "epochs": result.get("epochs"),
            "wall_seconds": result.get("wall_seconds"),
            "train_examples_per_second": result.get("train_examples_per_second"),
            "padding_efficiency": result.get("padding_efficiency"),
            "export": result.get("export"),
            "precision": (result.get("precision") or {}).get("policy"),
            "majority_score": result.get("majority_score"),
            "below_majority": result.get("majority_score") is not None and result.get("dev_score") is not None
            and (result.get("dev_score_mean", result["dev_score"]) < result["majority_score"]),
            "seeds": len(result.get("seeds") or []) or None,
            "best_seed": result.get("best_seed"),
            "dev_score_std": result.get("dev_score_std"),
        }
    return {
        "tasks": tasks,
        "skipped": skipped,
        "present": summary["present"],
        "missing": summary["missing"],
        "glue_score": summary["glue_score"],
        "mean_over_present": summary["mean_over_present"],
        "summary_line": metrics.describe(summary),
        "human_glue_score": metrics.human_glue_score(),
        "wall_seconds": wall_seconds,
    }


def _components_text(name: str, values: dict | None) -> str:
    if not values:
        return "–"
    task = TASKS[name]
    parts = []
    for key, _, metric in task.score_components:
        label = METRIC_LABELS[metric] + (key[len(metric):].replace("_", " ") if key != metric else "")
        parts.append(f"{label} {round_score(values[key]):.1f}")
    return " / ".join(parts)


def to_markdown(report: dict) -> str:
    lines = ["# GLUE results (dev)", "", f"**{report['summary_line']}** (human baseline GLUE score {report['human_glue_score']})", ""]
    lines += [
        "| task | dev | score | majority class | human | best epoch | wall (s) | train ex/s | padding eff. |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for name in [n for n in TASKS if n in report["tasks"]]:
        row = report["tasks"][name]
        score = f"{round_score(row['score']):.1f}" if row["score"] is not None else "–"
        human = f"{round_score(row['human_score']):.1f}" if row["human_score"] is not None else "–"
        speed = f"{row['train_examples_per_second']:.1f}" if row.get("train_examples_per_second") else "–"
        eff = f"{100 * row['padding_efficiency']:.1f}%" if row.get("padding_efficiency") else "–"
        wall = f"{row['wall_seconds']:.0f}" if row.get("wall_seconds") else "–"
        if row.get("seeds") and row["seeds"] > 1:
            score += f" ± {row['dev_score_std']:.1f}"
            notes.append(f"{row['display_name']}: mean ± std over {row['seeds']} seeds; the export is seed "
                         f"{row['best_seed']}, the best by dev score.")
        majority = f"{round_score(row['majority_score']):.1f}" if row.get("majority_score") is not None else "–"
        if row.get("below_majority"):
            majority += " ⚠"
            notes.append(f"{row['display_name']}: below the majority-class score — the model has learned nothing "
                         "usable" + (" (GLUE's convention for WNLI is to submit the majority class)." if name == "wnli" else "."))
        lines.append(
            f"| {row['display_name']} | {_components_text(name, row['dev'])} | {score} | {majority} | {human} | "
            f"{row.get('best_epoch') or '–'} | {wall} | {speed} | {eff} |"
        )
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    if report["skipped"]:
        lines += ["", "Not trained:", ""]
        lines += [f"- **{TASKS[name].display_name}**: {reason}" for name, reason in report["skipped"].items()]
    if report["missing"]:
        names = ", ".join(TASKS[n].display_name for n in report["missing"])
        lines += ["", f"Missing for a GLUE score: {names}."]
    if report.get("wall_seconds"):
        lines += ["", f"Total wall time: {report['wall_seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def write_chart(report: dict, path: Path) -> Path | None:
    """A bar chart of each task's dev score beside the human baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in GLUE_TASKS if n in report["tasks"] and report["tasks"][n]["score"] is not None]
    if not names:
        return None
    ours = [report["tasks"][n]["score"] for n in names]
    human = [report["tasks"][n]["human_score"] for n in names]
    labels = [TASKS[n].display_name for n in names]
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 3, 4))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], ours, width=0.4, label="this run (dev)")
    ax.bar([x + 0.2 for x in xs], human, width=0.4, label="human baseline", color="#bbbbbb")
    ax.set_xticks(list(xs), labels)
    ax.set_ylabel("task score")
    ax.set_title(report["summary_line"], fontsize=9)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write(out_dir, results: dict, skipped: dict, wall_seconds: float | None = None) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = build(results, skipped, wall_seconds)
    chart = write_chart(report, out_dir / "report.png")
    report["chart"] = str(chart) if chart else None
    (out_dir / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    markdown = to_markdown(report)
    if chart:
        markdown += "\n![dev scores vs human baseline](report.png)\n"
    (out_dir / "report.md").write_text(markdown, encoding="utf-8")
    return report
