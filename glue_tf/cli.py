"""The ``glue-tf`` command line: parse, call the library, print. No logic of its own."""

from __future__ import annotations

import argparse
import sys

from glue_tf.data.errors import DataError, MissingDataError
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, MissingDataError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"glue-tf: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `glue-tf data show ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
