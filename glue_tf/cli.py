"""The ``glue-tf`` command line: parse, call the library, print. No logic of its own.

A ``GlueTfError`` (a user's mistake, whose message says what to fix) becomes one
line, ``glue-tf: error: <message>``, and exit status 2. Any other exception is a
bug and propagates with its traceback. Scores are printed in points (0-100).
"""

from __future__ import annotations

import argparse
import json
import sys

from glue_tf import __version__
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
    group.add_argument("--below-majority", choices=("model", "majority"), default="model",
                       help="a task whose dev score is below the majority class's: submit and count the model's "
                            "own answers (default), or the majority class, GLUE's convention for WNLI")


def _train_config(args):
    import dataclasses

    from glue_tf import config_flags, recipes

    config = config_flags.config_from_args(args)
    return dataclasses.replace(config, recipe=recipes.resolve(config.recipe, config.backbone))


def _recipe_and_policy(args) -> dict:
    """The flags given on the command line (they win over the recipe) and the below-majority policy."""
    from glue_tf import recipes

    return {"explicit": recipes.explicit_fields(args.argv), "below_majority": args.below_majority}


def _add_inference_flags(parser: argparse.ArgumentParser) -> None:
    from glue_tf.precision import VARIABLE, flag_value

    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", type=flag_value, default=None,
                        help=f"which signature runs: auto (bfloat16 where this machine has bf16 units and the "
                             f"export measured it holding accuracy and winning, else the faster float32 path), "
                             f"float32 or bfloat16 (default: ${VARIABLE}, else auto; glue_tf/precision.py)")


def _verbosity():
    """Progress bars on a terminal; one line per epoch in logs and CI."""
    return "auto" if sys.stdout.isatty() else 2


def _cmd_train(args) -> int:
    from glue_tf.suite import train

    train(get_task(args.task), _source(args), _train_config(args), args.out, verbose=_verbosity(),
          overwrite=args.overwrite, **_recipe_and_policy(args))
    return 0


def _cmd_train_all(args) -> int:
    from glue_tf.suite import train_all

    train_all(_source(args), _train_config(args), args.out, parse_task_list(args.tasks), verbose=_verbosity(),
              overwrite=args.overwrite, **_recipe_and_policy(args))
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


def _cmd_tune(args) -> int:
    from glue_tf import config_flags
    from glue_tf.tune import default_out, tune

    grid = {field: [kind(v) for v in getattr(args, f"grid_{field}").split(",")] for field, kind in _GRID_TYPES.items()}
    config = config_flags.config_from_args(args)
    recipe = tune(_source(args), config, parse_task_list(args.tasks), grid, args.out or default_out(config.backbone),
                  args.recipe_out)
    print(json.dumps({name: {f: entry[f] for f in _GRID_TYPES} for name, entry in recipe["tasks"].items()}))
    return 0


def _cmd_compare(args) -> int:
    from glue_tf.compare import compare, to_text

    comparison = compare(args.run_a, args.run_b)
    print(to_text(comparison))
    if args.json:
        print(json.dumps(comparison))
    return 0


_GRID_TYPES = {"learning_rate": float, "epochs": int, "batch_size": int, "warmup_fraction": float, "dropout": float}


def _add_tune_parser(commands) -> None:
    from glue_tf import config_flags
    from glue_tf.tune import DEFAULT_GRID, SEED, SEEDS

    tune = commands.add_parser("tune", help="sweep a grid per task on a held-out 10%% of train; write the recipe")
    tune.add_argument("--tasks", default="cola,sst2,mrpc,stsb,rte,wnli", help="comma-separated tasks")
    _add_source_flags(tune)
    config_flags.add_flags(tune.add_argument_group("training (fixed over the grid)"))
    grid = tune.add_argument_group("the grid (comma-separated values per field)")
    for field in _GRID_TYPES:
        grid.add_argument(f"--grid-{field.replace('_', '-')}", default=",".join(map(str, DEFAULT_GRID[field])),
                          help=f"default: {','.join(map(str, DEFAULT_GRID[field]))}")
    tune.add_argument("--out", default=None, help="the sweep's working folder (default: sweeps/<backbone-name>, "
                                                  "whose point records are committed)")
    tune.add_argument("--recipe-out", default=None, help="default: recipes/<backbone-name>.json")
    tune.set_defaults(func=_cmd_tune, seed=SEED, seeds=SEEDS)

    compare = commands.add_parser("compare", help="A − B per task with paired-bootstrap intervals over dev")
    compare.add_argument("run_a", help="a train or train-all output folder")
    compare.add_argument("run_b", help="another one")
    compare.add_argument("--json", action="store_true", help="also print the comparison as one JSON line")
    compare.set_defaults(func=_cmd_compare)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glue-tf", description="Fine-tune, score and serve GLUE with KerasHub.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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

    _add_tune_parser(commands)

    from serving.cli import add_parser as add_serve_parser  # serving's module: it owns the settings

    add_serve_parser(commands)
    return parser


# Commands that compute with TensorFlow: its faster oneDNN kernels and the XLA cache that survives runs are
# set up before it loads (glue_tf.tf_startup).
COMPUTE_COMMANDS = ("train", "train-all", "tune", "evaluate", "predict", "serve")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)  # which flags were given: they win over a recipe
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
