"""The ``coursekit`` command line.

Each subcommand lives in its own module, which exposes ``register(subparsers)``; this file only
lists those modules, so new tools (labs, grading, ...) slot in with one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

COMMANDS = (
    "coursekit.cli",
    "coursekit.book.cli",
    "coursekit.grading.cli",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """The book's own commands: build, execute, stale, data."""
    build = subparsers.add_parser("build", help="build the HTML book into _build/html")
    build.add_argument("--execute", action="store_true",
                       help="re-execute every chapter with papermill before building")
    build.add_argument("--profile", default="cpu", help="profile for --execute (default: cpu)")
    build.add_argument("--all", dest="fresh", action="store_true", help="rebuild every page")
    build.set_defaults(func=_build)

    execute = subparsers.add_parser(
        "execute", help="execute notebooks in a profile and stamp their fingerprint",
        description="Execute notebooks with papermill and stamp their fingerprint. A run in "
        "the committed profile (cpu) replaces the notebook; a run in any other profile is "
        "written to _build/executed/PROFILE/NAME unless --in-place or --output says otherwise. "
        "A failed run never replaces anything: it is kept in _build/failed/NAME.")
    execute.add_argument("notebooks", nargs="*", type=Path,
                         help="notebooks to run (default: every chapter under book/)")
    execute.add_argument("--profile", default="cpu", help="smoke | cpu | full | auto")
    execute.add_argument("--stale", action="store_true",
                         help="only the notebooks whose fingerprint no longer matches")
    where = execute.add_mutually_exclusive_group()
    where.add_argument("--output", type=Path,
                       help="write the executed copy here (one notebook only)")
    where.add_argument("--in-place", action="store_true",
                       help="overwrite the notebooks even when --profile is not cpu")
    execute.set_defaults(func=_execute)

    stale = subparsers.add_parser("stale", help="list notebooks whose outputs are stale")
    stale.set_defaults(func=_stale)

    data = subparsers.add_parser(
        "data", help="download or check the datasets (exit status 1 if any is missing or "
        "corrupt)")
    data.add_argument("action", choices=("download", "check"))
    data.add_argument("names", nargs="*", default=["mnist", "fashion_mnist", "cifar10"],
                      help="datasets (default: mnist fashion_mnist cifar10)")
    data.set_defaults(func=_data)


def _build(args: argparse.Namespace) -> None:
    from coursekit.book import build

    build.main(args.execute, args.profile, args.fresh)


def _execute(args: argparse.Namespace) -> None:
    from coursekit.book import fingerprint
    from coursekit.book.execute import chapters, execute_all, project_root
    from coursekit.book.profiles import resolve_name

    if args.output and len(args.notebooks) != 1:
        sys.exit("--output needs exactly one notebook")
    profile = resolve_name(args.profile, use_env=False)  # auto -> full or cpu
    paths = args.notebooks or chapters(project_root())
    if args.stale:
        paths = [p for p in paths if fingerprint.stale_reasons(p, profile)]
    if not paths:
        print("Nothing to execute: every notebook is up to date.")
    execute_all(paths, profile, output=args.output, in_place=args.in_place)


def _stale(args: argparse.Namespace) -> None:
    from coursekit.book import fingerprint
    from coursekit.book.execute import chapters, project_root

    root = project_root()
    bad = 0
    for path in chapters(root):
        reasons = fingerprint.stale_reasons(path)
        if reasons:
            bad += 1
            print(f"{path.relative_to(root)}: " + "; ".join(reasons), flush=True)
    if bad:
        sys.exit(f"{bad} stale notebook(s). Regenerate: coursekit execute --stale --profile cpu")
    print("Every chapter's outputs match its code.")


def _data(args: argparse.Namespace) -> None:
    from coursekit import data

    root, origin = data.data_root(), data.root_origin()
    if args.action == "check" and not root.is_dir():
        sys.exit(f"coursekit data check: the data folder {root} (given by {origin}) does not "
                 f"exist, so no dataset is there. Set {data.DATA_ENV} to the folder that holds "
                 "them, or run `coursekit data download`.")
    failed = []
    for name in args.names:
        found = data.problems(name, root)
        if args.action == "download":
            try:
                for split in ("train", "test"):
                    data.load(name, split)
            except data.DatasetNotFoundError as error:
                print(error, file=sys.stderr)
                failed.append(name)
                continue
            done = "nothing downloaded, it was complete" if not found else "downloaded"
            print(f"{name}: ready under {root} ({done})")
        elif found and all(p.kind == "missing" for p in found) and len(found) == len(
                data.expected_files(name)):
            failed.append(name)
            print(f"{name}: missing (none of its {len(found)} files is under "
                  f"{found[0].path.parent})\n    fix: {found[0].fix}")
        elif found:
            failed.append(name)
            print(f"{name}: {len(found)} problem(s) under {root}")
            for problem in found:
                print(f"  - {problem}\n    fix: {problem.fix}")
        else:
            print(f"{name}: ok")
    if failed:
        verb = "could not be made ready" if args.action == "download" else "missing or corrupt"
        sys.exit(f"coursekit data {args.action}: {', '.join(failed)} {verb} "
                 f"(data folder {root}, given by {origin}).")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="coursekit", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        sys.exit(f"coursekit {args.command}: {error}")


if __name__ == "__main__":
    main()
