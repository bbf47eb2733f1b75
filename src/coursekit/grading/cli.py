"""``coursekit grade`` and ``coursekit labs generate|check``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _limits(args: argparse.Namespace):
    from coursekit.grading.sandbox import Limits

    return Limits(timeout=args.timeout, memory_mb=args.memory_mb, wall=args.wall_timeout)


def _positive(kind, most: float):
    """An argparse type: a number of ``kind`` in (0, most]; 0, negatives and nan refused."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (0 < value <= most):
            raise argparse.ArgumentTypeError(f"must be more than 0 and at most {most:g}, "
                                             f"got {text}")
        return value
    return parse


def _add_limits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=_positive(float, 3600), default=20.0,
                        help="CPU seconds per question, all its processes together "
                             "(default: 20)")
    parser.add_argument("--wall-timeout", type=_positive(float, 36000), default=None,
                        help="wall-clock backstop per question, for code that sleeps "
                             "(default: max(2 x timeout, timeout + 10))")
    parser.add_argument("--memory-mb", type=_positive(int, 1 << 20), default=1024,
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
    grade.add_argument("--jobs", type=_positive(int, 64), default=1,
                       help="submissions graded in parallel")
    grade.add_argument("--roster", type=Path,
                       help="CSV with a 'student' column and an optional 'file' column: grade "
                            "exactly these students (others in the folder are listed, not "
                            "graded)")
    _add_limits(grade)
    grade.set_defaults(func=_grade)

    labs = subparsers.add_parser(
        "labs", help="generate labs/ from solutions/, check them, or release the student bundle")
    labs.add_argument("action", choices=("generate", "check", "release"))
    labs.add_argument("target", nargs="?", type=Path,
                      help="release: the folder to write the student bundle to")
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
    from coursekit.grading.batch import fmt, grade_folder, read_roster

    lab = load_lab(_resolve_lab(args.lab))
    roster = read_roster(args.roster) if args.roster else None
    _exit_cleanly_on_signals()
    batch = grade_folder(lab, args.submissions, args.out, jobs=args.jobs,
                         limits=_limits(args), isolation=args.isolation, roster=roster)
    n = len(batch.results)
    per = batch.seconds / n if n else 0.0
    print(f"graded {n} submission(s) of {lab.name} in {batch.seconds:.1f} s "
          f"({per:.1f} s per student); isolation: {batch.isolation}")
    invalid = [r.student for r in batch.results if r.status == "invalid"]
    if invalid:
        print(f"not gradable (0 points, see their reports): {', '.join(invalid)}")
    print(f"gradebook: {args.out / 'gradebook.csv'} (max {fmt(lab.total_points)} points)")


def _exit_cleanly_on_signals() -> None:
    """SIGTERM and SIGHUP end the run like Ctrl-C: sandboxes killed, temp folders removed."""
    import signal

    def stop(signum, frame):
        raise SystemExit(f"coursekit grade: stopped by signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)


def _labs(args: argparse.Namespace) -> None:
    from coursekit.grading.generate import generate
    from coursekit.grading.validate import check_all

    if args.action == "release":
        from coursekit.grading.release import release

        if args.target is None:
            sys.exit("coursekit labs release: give the folder to write the bundle to")
        written = release(args.solutions, args.target)
        print(f"wrote {len(written)} file(s) of the student bundle to {args.target} "
              "(no solutions, no hidden tests; verified)")
        return
    if args.target is not None:
        sys.exit(f"coursekit labs {args.action}: unexpected argument {args.target}")
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
