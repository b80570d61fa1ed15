#!/usr/bin/env python3
"""Check the shell scripts of GitHub Actions workflows with shellcheck, as actionlint does.

    shellcheck_workflows.py --shellcheck BIN WORKFLOW...

Every `run:` step whose shell is bash or sh (the default on Linux runners is bash) is given to
shellcheck with `${{ ... }}` expressions replaced by underscores of the same length, and the
checks actionlint also disables for workflow scripts (variables set by the workflow's `env:`,
constant words left by expressions, files sourced at run time). Findings are printed as
FILE:LINE:COLUMN: SC#### message, with the line in the workflow file. Exit status 1 on findings.
"""

import argparse
import json
import pathlib
import re
import subprocess
import sys

import yaml

EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)
EXCLUDED = "SC1091,SC2050,SC2154,SC2157,SC2194"


def mapping(node):
    """A YAML mapping node as {key: value node}; {} for anything else."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def default_shell(node):
    shell = mapping(mapping(mapping(node).get("defaults")).get("run")).get("shell")
    return shell.value if isinstance(shell, yaml.ScalarNode) else None


def run_steps(path):
    """(first line, indentation of the script in the file, shell, script) of each `run:` step."""
    text = pathlib.Path(path).read_text()
    lines = text.splitlines()
    root = yaml.compose(text)
    workflow_shell = default_shell(root)
    for job in mapping(mapping(root).get("jobs")).values():
        job_shell = default_shell(job) or workflow_shell
        steps = mapping(job).get("steps")
        for step in steps.value if isinstance(steps, yaml.SequenceNode) else []:
            fields = mapping(step)
            run = fields.get("run")
            if not isinstance(run, yaml.ScalarNode):
                continue
            shell = fields.get("shell")
            shell = shell.value if isinstance(shell, yaml.ScalarNode) else job_shell or "bash"
            # A block scalar's text starts on the line after its indicator, indented.
            if run.style in ("|", ">"):
                line = run.start_mark.line + 2
                first = lines[line - 1] if line - 1 < len(lines) else ""
                indent = len(first) - len(first.lstrip(" "))
            else:
                line, indent = run.start_mark.line + 1, run.start_mark.column
            yield line, indent, shell, run.value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shellcheck", default="shellcheck")
    parser.add_argument("workflows", nargs="+")
    args = parser.parse_args()
    findings = scripts = 0
    for path in args.workflows:
        for line, indent, shell, script in run_steps(path):
            name = shell.split()[0]
            if name not in ("bash", "sh"):
                continue
            scripts += 1
            source = EXPRESSION.sub(lambda m: "_" * len(m.group(0)), script)
            result = subprocess.run([args.shellcheck, "--norc", "--format=json1", f"--shell={name}",
                                     f"--exclude={EXCLUDED}", "-"],
                                    input=source, capture_output=True, text=True, check=False)
            if result.returncode not in (0, 1):
                print(f"{path}:{line}: shellcheck failed: {result.stderr.strip()}", file=sys.stderr)
                return 2
            for comment in json.loads(result.stdout or "{}").get("comments", []):
                findings += 1
                print(f"{path}:{line + comment['line'] - 1}:{indent + comment['column']}: "
                      f"SC{comment['code']} ({comment['level']}) {comment['message']}")
    print(f"shellcheck: {scripts} run scripts in {len(args.workflows)} workflow file(s), "
          + ("clean" if findings == 0 else f"{findings} problem(s)"))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
