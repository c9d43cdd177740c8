"""Type-check a user file against the installed wheel and compare reveal_type.

    python .ci/check_types.py USER_FILE TARGET_PYTHON

USER_FILE's reveal_type lines carry `# expect mypy: TYPE` and
`# expect pyright: TYPE` (inline, or on comment lines just above; not
`# mypy:`/`# pyright:`, which are the checkers' own directives). mypy --strict and pyright (strict,
by the file's own comment) run with TARGET_PYTHON's site-packages, i.e. the
installed wheel; both must report no error, and each revealed type must be the
expected one. Run from a directory that holds no aiologic.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

CHECKERS = ("mypy", "pyright")


def expectations(path: Path) -> dict[int, dict[str, str]]:
    expected: dict[int, dict[str, str]] = {}
    pending: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        code, _, comment = line.partition("  # ")
        found = dict(pending)
        if code.strip().startswith("#"):
            code, comment = "", code.strip()[2:]
        for part in comment.split("  # "):
            tag, sep, text = part.partition(": ")
            checker = tag[len("expect ") :]
            if sep and tag.startswith("expect ") and checker in CHECKERS:
                found[checker] = text.strip()
        if not code.strip():
            pending = found
            continue
        pending = {}
        if "reveal_type(" in code:
            missing = [c for c in CHECKERS if c not in found]
            if missing:
                sys.exit(f"{path}:{number}: no expectation for {missing}")
            expected[number] = found
    return expected


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, capture_output=True, text=True, check=False)


def mypy(path: Path, python: str) -> tuple[dict[int, str], list[str]]:
    done = run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--python-executable", python, path.name]
    )
    revealed, errors = {}, []
    for line in done.stdout.splitlines():
        match = re.match(r"[^:]+:(\d+): note: Revealed type is \"(.*)\"$", line)
        if match:
            revealed[int(match[1])] = match[2]
        elif ": error:" in line:
            errors.append(line)
    if done.returncode and not errors:
        errors.append(done.stdout + done.stderr)
    return revealed, errors


def pyright(path: Path, python: str) -> tuple[dict[int, str], list[str]]:
    done = run(["pyright", "--outputjson", "--pythonpath", python, path.name])
    try:
        report = json.loads(done.stdout)
    except ValueError:
        return {}, [done.stdout + done.stderr]
    revealed, errors = {}, []
    for diagnostic in report["generalDiagnostics"]:
        line = diagnostic["range"]["start"]["line"] + 1
        match = re.match(r'Type of ".*" is "(.*)"$', diagnostic["message"], re.S)
        if diagnostic["severity"] == "information" and match:
            revealed[line] = match[1]
        else:
            errors.append(f"{path.name}:{line}: {diagnostic['message']}")
    return revealed, errors


def main() -> int:
    path, python = Path(sys.argv[1]), sys.argv[2]
    expected = expectations(path)
    failures = []
    for checker, check in (("mypy", mypy), ("pyright", pyright)):
        revealed, errors = check(path, python)
        failures += [f"{checker}: {error}" for error in errors]
        for line, wanted in sorted(expected.items()):
            got = revealed.get(line)
            if got != wanted[checker]:
                failures.append(
                    f"{checker}: {path.name}:{line}: revealed {got!r},"
                    f" expected {wanted[checker]!r}"
                )
        extra = sorted(set(revealed) - set(expected))
        failures += [f"{checker}: {path.name}:{n}: unexpected reveal" for n in extra]
    for failure in failures:
        print(failure)
    print(f"{len(expected)} reveal_type lines, 2 checkers: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
