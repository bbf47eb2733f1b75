"""``coursekit grade`` and ``coursekit labs generate|check``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _limits(args: argparse.Namespace):
    from coursekit.grading.sandbox import Limits

    return Limits(timeout=args.timeout, memory_mb=args.memory_mb)


def _add_limits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=20.0,
                        help="wall-clock seconds per question (default: 20)")
    parser.add_argument("--memory-mb", type=int, default=1024,
                        help="memory per question on top of the interpreter (default: 1024)")
    parser.add_argument("--isolation", default="auto",
                        choices=("auto", "namespaces", "userns", "basic"),
                        help="sandbox mode (default: the strongest this machine allows)")


def register(subparsers: argparse._SubParsersAction) -> None:
    grade = subparsers.add_parser(
        "grade", help="grade a folder of lab submissions into a gradebook and reports")
    grade.add_argument("lab", help="a solution notebook, or a lab name found in solutions/")
    grade.add_argument("submissions", type=Path,
                       help="folder of <student>.ipynb files or <student>/ folders")
    grade.add_argument("--out", type=Path, required=True,
                       help="where to write gradebook.csv, results.json and reports/")
    grade.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel")
    _add_limits(grade)
    grade.set_defaults(func=_grade)

    labs = subparsers.add_parser("labs", help="generate labs/ from solutions/, or check them")
    labs.add_argument("action", choices=("generate", "check"))
    labs.add_argument("--solutions", type=Path, default=Path("solutions"))
    labs.add_argument("--labs", type=Path, default=Path("labs"))
    labs.add_argument("--sync-only", action="store_true",
                      help="check: only compare labs/ with solutions/ (no grading runs)")
    _add_limits(labs)
    labs.set_defaults(func=_labs)


def _resolve_lab(name: str) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (Path("solutions") / name, Path("solutions") / f"{name}.ipynb"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no solution notebook {name!r}: give its path, or the name of a "
                            "notebook in solutions/ (run from the repository root)")


def _grade(args: argparse.Namespace) -> None:
    from coursekit.grading.authoring import load_lab
    from coursekit.grading.batch import fmt, grade_folder

    lab = load_lab(_resolve_lab(args.lab))
    batch = grade_folder(lab, args.submissions, args.out, jobs=args.jobs,
                         limits=_limits(args), isolation=args.isolation)
    n = len(batch.results)
    per = batch.seconds / n if n else 0.0
    print(f"graded {n} submission(s) of {lab.name} in {batch.seconds:.1f} s "
          f"({per:.1f} s per student); isolation: {batch.isolation}")
    invalid = [r.student for r in batch.results if r.status == "invalid"]
    if invalid:
        print(f"not gradable (0 points, see their reports): {', '.join(invalid)}")
    print(f"gradebook: {args.out / 'gradebook.csv'} (max {fmt(lab.total_points)} points)")


def _labs(args: argparse.Namespace) -> None:
    from coursekit.grading.generate import generate
    from coursekit.grading.validate import check_all

    if args.action == "generate":
        written = generate(args.solutions, args.labs)
        print("\n".join(f"wrote {p}" for p in written) or "labs/ already up to date")
        return
    problems = check_all(args.solutions, args.labs, run=not args.sync_only,
                         limits=_limits(args), isolation=args.isolation)
    if problems:
        sys.exit("\n".join(problems))
    print("labs are in sync" + ("" if args.sync_only else
                                ", solutions pass every test, blank labs pass none"))
