#!/usr/bin/env python3
"""Runs the README's tour as written, so the README can never drift from the product.

Every ```sh block of README.md runs, in order, in one empty temporary directory (holding a copy
of the example files the tour names), with the binary under test as $A and first on PATH as
`assent`. A block preceded by a line `<!-- readme-test: skip (why) -->` is not run (set-up
commands, servers, a PostgreSQL cluster). Each command (continuation lines joined) must exit 0
unless its comment announces otherwise ("exit 1", "exit 0 allow, 1 deny", "fails"). Usage:
readme_test.py ASSENT_BINARY SOURCE_DIR
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile


def blocks(readme):
    """(line number, lines, skipped) of every ```sh block."""
    out, lines = [], readme.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            skip = i > 0 and "readme-test: skip" in lines[i - 1] or (
                i > 1 and "readme-test: skip" in lines[i - 2])
            start = i + 1
            j = start
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            out.append((start + 1, lines[start:j], skip))
            i = j
        i += 1
    return out


def commands(block_lines):
    """Logical commands: continuation lines joined; each with its comment text."""
    cmds, current = [], ""
    for line in block_lines:
        if not line.strip() and not current:
            continue
        if line.rstrip().endswith("\\") and "#" not in line.split("\\")[-1]:
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        code, _, comment = current.partition(" #")
        if current.lstrip().startswith("#"):
            code, comment = "", current
        if code.strip():
            cmds.append((code.strip(), comment))
        current = ""
    return cmds


def announced_nonzero(comment):
    return bool(re.search(r"\bexit [1-9]|\bexit 0 [a-z]+, 1\b|\bfails\b", comment))


def dead_links(source):
    """Links of README.md and docs/ that leave the repository or lead nowhere."""
    bad = []
    pages = ["README.md"] + [os.path.join(d, f) for d in ("docs", "docs/formats")
                             for f in sorted(os.listdir(os.path.join(source, d))) if f.endswith(".md")]
    for page in pages:
        text = open(os.path.join(source, page), encoding="utf-8").read()
        for m in re.finditer(r"\]\(([^)#\s]+)(#[^)]*)?\)", text):
            link = m.group(1)
            if re.match(r"^[a-z]+:", link):
                continue
            target = os.path.normpath(os.path.join(source, os.path.dirname(page), link))
            if not target.startswith(source + os.sep) or not os.path.exists(target):
                bad.append(f"{page} links to {link}, which is not a file of the repository")
    return bad


def main():
    binary, source = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    readme = open(os.path.join(source, "README.md"), encoding="utf-8").read()
    work = tempfile.mkdtemp(prefix="assent-readme-")
    failures = dead_links(source)
    try:
        shutil.copytree(os.path.join(source, "examples"), os.path.join(work, "examples"))
        os.makedirs(os.path.join(work, "test", "golden"))
        shutil.copy(os.path.join(source, "test", "golden", "events.jsonl"),
                    os.path.join(work, "test", "golden"))
        bindir = os.path.join(work, ".bin")
        os.makedirs(bindir)
        os.symlink(binary, os.path.join(bindir, "assent"))
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""), A=binary)
        env.pop("ASSENT_DATABASE", None)
        env.pop("ASSENT_AUDIT_KEY", None)
        ran = 0
        for line_no, lines, skip in blocks(readme):
            if skip:
                continue
            for code, comment in commands(lines):
                if re.match(r"^A=", code):
                    continue  # the tour's own binary path: $A is the binary under test here
                r = subprocess.run(["bash", "-c", code], cwd=work, env=env, capture_output=True,
                                   text=True, timeout=120)
                ran += 1
                if r.returncode != 0 and not announced_nonzero(comment):
                    failures.append(f"README.md block at line {line_no}: `{code}` exited "
                                    f"{r.returncode}\n{r.stdout[-800:]}{r.stderr[-800:]}")
        if ran < 20:
            failures.append(f"only {ran} commands ran: is the README's tour still in ```sh blocks?")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print("FAIL " + f)
    print(f"{ran - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
