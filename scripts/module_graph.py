#!/usr/bin/env python3
"""The provider's module graph, from the `crate::<module>` paths each top-level module uses.

    scripts/module_graph.py           check the rules, and that README.md shows the current graph
    scripts/module_graph.py --write   rewrite the graph in README.md

Rules: no cycles between top-level modules, and only `server` and `cli` (and the crate root's
`parsers` facade for the fuzz targets) use the request parser.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
README = ROOT / "README.md"
BEGIN, END = "<!-- module graph: begin -->", "<!-- module graph: end -->"
PARSER = "request"
MAY_USE_PARSER = {"server", "cli", "lib"}


def module_of(path: pathlib.Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs") if len(rel.parts) > 1 else rel.stem


def edges() -> dict:
    graph = {}
    for path in sorted(SRC.rglob("*.rs")):
        module = module_of(path)
        if module == "main":
            continue
        text = path.read_text()
        # Test modules may reach anywhere; only production code shapes the graph.
        text = text.split("#[cfg(test)]\nmod tests", 1)[0]
        text = text.split("#[cfg(test)]\npub(crate) mod tests", 1)[0]
        text = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("//"))
        used = set(re.findall(r"\bcrate::([a-z_]+)", text))
        for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
            used.update(re.findall(r"\b([a-z_]+)\b", group))
        graph.setdefault(module, set()).update(u for u in used if u != module and u != "proto")
    return graph


def cycles(graph: dict) -> list:
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def mermaid(graph: dict) -> str:
    lines = ["```mermaid", "graph LR"]
    for module in sorted(graph):
        if module == "lib":
            continue
        for used in sorted(graph[module]):
            lines.append(f"  {module} --> {used}")
    lines.append("```")
    return "\n".join(lines)


def main() -> int:
    graph = edges()
    problems = [f"cycle: {' -> '.join(c)}" for c in cycles(graph)]
    problems += [
        f"{m} uses the request parser (only {', '.join(sorted(MAY_USE_PARSER))} may)"
        for m, used in sorted(graph.items())
        if PARSER in used and m not in MAY_USE_PARSER
    ]
    picture = f"{BEGIN}\n{mermaid(graph)}\n{END}"
    readme = README.read_text()
    current = re.search(re.escape(BEGIN) + ".*?" + re.escape(END), readme, re.S)
    if "--write" in sys.argv:
        README.write_text(readme.replace(current.group(0), picture) if current else readme + "\n" + picture + "\n")
    elif not current or current.group(0) != picture:
        problems.append("README.md's module graph is out of date: run scripts/module_graph.py --write")
    for p in problems:
        print(f"module graph: {p}")
    if not problems:
        print(f"module graph: {len(graph)} modules, {sum(map(len, graph.values()))} edges, no cycles; only {', '.join(sorted(MAY_USE_PARSER))} use the parser")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
