"""A griffe extension for the API reference (mkdocs.yml: mkdocstrings' `extensions`), applied in the build only.

gnnrisk's docstrings are Markdown prose that name their arguments inline (`` `run_dir`: the run folder ``)
rather than in Google-style `Args:` sections, and they open lists straight after a line of text
(`` `grid` is one of:`` then `  - a mapping ...`), which Markdown reads as one paragraph. When the site is
built, each docstring of the loaded package gets (the sources are not touched):

- a blank line before a list that follows a line of text, so that the list renders as a list;
- a parameters section made from the signature: every parameter with its annotation and default, and as
  its description the docstring's own `` `name`: ... `` sentence where it has one; mkdocstrings shows the
  section as a table (`docstring_section_style: table`). A docstring that already has such a section
  keeps it.

`python docs/griffe_docstrings.py gnnrisk.api.sweep` prints a docstring as the site gets it.
"""

from __future__ import annotations

import re
import sys
from typing import Any, Iterator

import griffe

_ITEM = re.compile(r"^(?P<indent> *)(?:[-*+]|\d+[.)]) +\S")
_SECTION = re.compile(r"^(?:Args|Arguments|Parameters|Params|Keyword Args|Other Parameters):[ \t]*$", re.M)
_FENCE = ("```", "~~~")
_SKIPPED = ("self", "cls")


def separate_lists(text: str) -> str:
    """The docstring with a blank line before each list that follows a line of text (fenced code untouched)."""
    out: list[str] = []
    fenced = False
    list_indent: int | None = None  # the indentation of the current list's items
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(_FENCE):
            fenced = not fenced
        if fenced or stripped.startswith(_FENCE) or not stripped:
            out.append(line)
            continue
        indent = len(line) - len(line.lstrip(" "))
        item = _ITEM.match(line)
        if item and list_indent is None:
            if out and out[-1].strip():
                out.append("")  # a list right after a line of text
            list_indent = indent
        elif not item and list_indent is not None and indent <= list_indent:
            if out and out[-1].strip():
                out.append("")  # text right after the last item: a new paragraph, not a lazy continuation
            list_indent = None
        out.append(line)
    return "\n".join(out)


def inline_description(text: str, name: str) -> str:
    """The docstring's `` `name`: ... `` sentence about a parameter (up to its first full stop), or ''."""
    flat = " ".join(text.split())
    match = re.search(rf"(?:^|[\s(;])`{re.escape(name)}`:\s+(?P<text>.+?)(?:(?<!e\.g\.)(?<!i\.e\.)(?<=[.;])\s|$)",
                      flat)
    if not match:
        return ""
    description = match["text"].rstrip(";").strip()
    return description[0].upper() + description[1:] if description else ""


def parameters_section(obj: griffe.Object, text: str) -> str:
    """An `Args:` section listing every parameter of the signature (the docstring's words where it has them)."""
    try:
        parameters = list(obj.parameters)  # type: ignore[attr-defined]
    except Exception:  # an __init__ inherited from a class outside the package: nothing to list
        return ""
    lines = []
    for parameter in parameters:
        if parameter.name in _SKIPPED:
            continue
        stars = {"variadic positional": "*", "variadic keyword": "**"}.get(parameter.kind.value, "")
        lines.append(f"    {stars}{parameter.name}: {inline_description(text, parameter.name)}".rstrip())
    return "Args:\n" + "\n".join(lines) if lines else ""


def rewrite(obj: griffe.Object) -> None:
    """Lists separated and, for a function or a class, the parameters section appended."""
    docstring = obj.docstring
    if docstring is None:
        return
    text = separate_lists(docstring.value)
    documented = obj.is_class or (obj.is_function and obj.name != "__init__" and "property" not in obj.labels)
    if documented and not _SECTION.search(text):  # an __init__'s parameters go to its class (merge_init_into_class)
        section = parameters_section(obj, text)
        if section:
            text = text.rstrip("\n") + "\n\n" + section
    docstring.value = text


def _objects(obj: griffe.Object) -> Iterator[griffe.Object]:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)  # type: ignore[arg-type]


class MarkdownDocstrings(griffe.Extension):
    """Rewrites every docstring of a loaded package once it is complete (dataclass `__init__`s included)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        griffe.DataclassesExtension().on_package(pkg=pkg)  # griffe runs it after this one; it skips done classes
        for obj in _objects(pkg):
            rewrite(obj)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 0
    path = argv[0]
    package = griffe.load(path.split(".")[0], search_paths=["."], extensions=griffe.load_extensions(MarkdownDocstrings))
    obj = package[path.split(".", 1)[1]] if "." in path else package
    print(obj.docstring.value if obj.docstring else "(no docstring)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
