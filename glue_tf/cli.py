"""The ``glue-tf`` command line: parse, call the library, print. No logic of its own.

A ``GlueTfError`` (a user's mistake, whose message says what to fix) becomes one
line, ``glue-tf: error: <message>``, and exit status 2. Any other exception is a
bug and propagates with its traceback. Scores are printed in points (0-100).
"""

from __future__ import annotations

import argparse
import sys

from glue_tf.errors import GlueTfError
from glue_tf.tasks import get_task, parse_task_list


def _add_source_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data source (a TSV folder wins over tfds)")
    group.add_argument("--glue-dir", help="GLUE TSV folder (download_glue_data.py layout)")
    group.add_argument("--tfds-manual-dir", help="folder with the official GLUE archives for tfds")
    group.add_argument("--tfds-data-dir", help="tfds data_dir (default ~/tensorflow_datasets)")
    group.add_argument(
        "--no-download",
        action="store_true",
        help="never let tfds download; use prepared datasets or the manual dir only",
    )


def _source(args, download_default: bool = True):
    from glue_tf.data.sources import make_source

    return make_source(
        glue_dir=args.glue_dir,
        tfds_manual_dir=args.tfds_manual_dir,
        tfds_data_dir=args.tfds_data_dir,
        download=download_default and not args.no_download,
    )


def _cmd_data_check(args) -> int:
    from glue_tf.data import commands

    summary = commands.check(_source(args), parse_task_list(args.tasks))
    return 1 if summary["errors"] else 0


def _cmd_data_show(args) -> int:
    from glue_tf.data import commands

    commands.show(_source(args), get_task(args.task), args.split, limit=args.limit, as_json=args.json)
    return 0


def _add_train_flags(parser: argparse.ArgumentParser) -> None:
    from glue_tf import config_flags

    _add_source_flags(parser)
    config_flags.add_flags(parser.add_argument_group("training (every field of glue_tf.config.TrainConfig)"))
    group = parser.add_argument_group("output")
    group.add_argument("--overwrite", action="store_true",
                       help="retrain into an --out folder made with another configuration")
    group.add_argument("--out", default="runs/latest", help="output folder (default: runs/latest)")


def _train_config(args):
    from glue_tf import config_flags

    return config_flags.config_from_args(args)


def _add_inference_flags(parser: argparse.ArgumentParser) -> None:
    from glue_tf.signature_choice import PRECISIONS, VARIABLE

    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help=f"which signature runs: auto (bfloat16 where this machine has bf16 units and the "
                             f"export measured it holding accuracy and winning, else the faster float32 path), "
                             f"float32 or bfloat16 (default: ${VARIABLE}, else auto)")


def _verbosity():
    """Progress bars on a terminal; one line per epoch in logs and CI."""
    return "auto" if sys.stdout.isatty() else 2


def _cmd_train(args) -> int:
    from glue_tf.suite import train

    train(get_task(args.task), _source(args), _train_config(args), args.out, verbose=_verbosity(),
          overwrite=args.overwrite)
    return 0


def _cmd_train_all(args) -> int:
    from glue_tf.suite import train_all

    train_all(_source(args), _train_config(args), args.out, parse_task_list(args.tasks), verbose=_verbosity(),
              overwrite=args.overwrite)
    return 0


def _cmd_evaluate(args) -> int:
    import json

    from glue_tf.predict_files import evaluate_export

    result = evaluate_export(args.model, args.task, _source(args), args.split, args.batch_size, args.precision)
    shown = ", ".join(f"{name} {value:.2f}" for name, value in result["metrics"].items())
    if "score" in result:
        shown += f"; task score {result['score']:.2f}"
    print(f"{result['task']} {result['split']} ({result['examples']} examples, {result['export']}, "
          f"{result['signature_reason']}): {shown}", file=sys.stderr)
    print(json.dumps(result))
    return 0


def _cmd_predict(args) -> int:
    from glue_tf.predict_files import predict_file

    summary = predict_file(args.model, args.input, args.output, args.batch_size, args.input_format,
                           args.output_format, precision=args.precision)
    print(f"{summary['task']}: predicted {summary['rows']} rows with {summary['export']} "
          f"({summary['signature_reason']}) -> {summary['output']}", file=sys.stderr)
    return 0


def _cmd_submit(args) -> int:
    from glue_tf.submission import make_zip

    path, missing = make_zip(args.out, args.output)
    print(f"wrote {path}")
    if missing:
        print(f"not included (no test predictions): {', '.join(missing)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glue-tf", description="Fine-tune, score and serve GLUE with KerasHub.")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="inspect GLUE data sources")
    data_commands = data.add_subparsers(dest="data_command", required=True)

    check = data_commands.add_parser("check", help="count examples and labels per task and split")
    _add_source_flags(check)
    check.add_argument("--tasks", default="all", help="comma-separated task names (default: all)")
    check.set_defaults(func=_cmd_data_check)

    show = data_commands.add_parser("show", help="print examples as the pipeline sees them")
    _add_source_flags(show)
    show.add_argument("--task", required=True)
    show.add_argument("--split", default="validation")
    show.add_argument("--limit", type=int, default=10, help="how many examples (0: all)")
    show.add_argument("--json", action="store_true", help="one JSON object per line")
    show.set_defaults(func=_cmd_data_show)

    train = commands.add_parser("train", help="fine-tune, evaluate and export one task")
    train.add_argument("--task", required=True)
    _add_train_flags(train)
    train.set_defaults(func=_cmd_train)

    train_all = commands.add_parser("train-all", help="every GLUE task whose data is found, then the report")
    train_all.add_argument("--tasks", default="all", help="comma-separated subset (default: all)")
    _add_train_flags(train_all)
    train_all.set_defaults(func=_cmd_train_all)

    evaluate = commands.add_parser("evaluate", help="score an export on a labelled split with the official metrics")
    evaluate.add_argument("--model", required=True, help="export version folder, models/<task> folder, or run folder")
    evaluate.add_argument("--task", default=None, help="default: the export's task (needed with a run folder)")
    evaluate.add_argument("--split", default=None, help="default: the task's first dev split")
    _add_inference_flags(evaluate)
    _add_source_flags(evaluate)
    evaluate.set_defaults(func=_cmd_evaluate)

    predict = commands.add_parser("predict", help="predict a TSV or JSONL file of your own with an export")
    predict.add_argument("--model", required=True, help="export version folder or models/<task> folder")
    predict.add_argument("--input", required=True, help="TSV with a header naming the task's fields, or JSONL")
    predict.add_argument("--output", required=True, help="TSV or JSONL (by extension) with label, label_id, probabilities")
    predict.add_argument("--input-format", choices=["tsv", "jsonl"], default=None, help="default: from the extension")
    predict.add_argument("--output-format", choices=["tsv", "jsonl"], default=None, help="default: from the extension")
    _add_inference_flags(predict)
    predict.set_defaults(func=_cmd_predict)

    submit = commands.add_parser("submit", help="zip the test predictions for the GLUE leaderboard")
    submit.add_argument("--out", default="runs/latest", help="the training output folder")
    submit.add_argument("--output", default=None, help="zip path (default: <out>/glue_submission.zip)")
    submit.set_defaults(func=_cmd_submit)

    from serving.cli import add_parser as add_serve_parser  # serving's module: it owns the settings

    add_serve_parser(commands)
    return parser


# Commands that compute with TensorFlow: its faster oneDNN kernels and the XLA cache that survives runs are
# set up before it loads (glue_tf.tf_startup).
COMPUTE_COMMANDS = ("train", "train-all", "evaluate", "predict", "serve")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in COMPUTE_COMMANDS:
        from glue_tf import tf_startup

        for line in tf_startup.prepare():
            print(f"glue-tf: {line}", file=sys.stderr)
    try:
        return args.func(args)
    except GlueTfError as error:  # anything else is a bug: its traceback is what to report
        print(f"glue-tf: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `glue-tf data show ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
