"""The pages of the documentation site that are made from the repository, generated at build time.

`mkdocs build` runs this script through the mkdocs-gen-files plugin (mkdocs.yml); what it writes goes
into the build only, never into docs/:

- `config/<group>.md`: the hand-written page of a config group with the tables of every member of
  `configs/<group>/*.yaml` put in at its `<!-- config-fields -->` line: each field as it is overridden
  on the command line (`privacy.epsilon`), its default as the file writes it, and the file's comment
  on it. `config/index.md` gets the top-level settings of `configs/config.yaml` the same way.
- `studies/<name>.md`: the write-ups `experiments/<name>.md` with the figures they show, and in
  `studies.md` the table of studies (every `configs/experiment/*.yaml` with its write-up).
- `img/quick_test_auroc_true_vs_epsilon.png`: the headline figure (the quick study's utility against the
  spent epsilon), drawn by gnnrisk-report's plot from the committed `experiments/quick_figures/summary.csv`
  and shown on the home page and under the quick study's summary table. `docs/img/` holds a copy (so that
  the pages read in the repository show it too) that records the SHA-256 of the summary it was drawn from;
  the build uses it while that matches and draws the figure afresh otherwise, and
  `python docs/gen_config_pages.py --headline` rewrites the copy (the tests say when it is stale).
- `benchmarks.md`: the docstring of every `experiments/perf/*.py` at its `<!-- perf-scripts -->` line.
- `explain_time.md`: a short stand-in while that page is absent (docs/temporal.md links to it).
- every page: a relative link that leaves docs/ (`../experiments/quick.md`, `../configs/x.yaml`) works
  when the Markdown is read in the repository; in the site it points to the copy of the write-up under
  `studies/`, or becomes the repository path as code.

Generated rather than committed: the configs change with every feature, so committed tables would go
stale with each edit of a yaml comment; made at build time they always show the configs of the commit.

By hand: `python docs/gen_config_pages.py privacy` prints the privacy page as the site gets it
(`python docs/gen_config_pages.py --list` lists the generated pages).
"""

from __future__ import annotations

import ast
import hashlib
import posixpath
import re
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
CONFIGS = REPO / "configs"
EXPERIMENTS = REPO / "experiments"
PERF = EXPERIMENTS / "perf"
GROUPS = ("data", "model", "train", "privacy", "explain", "attack", "audit", "logger", "experiment")
FIELDS_MARKER = "<!-- config-fields -->"
STUDIES_MARKER = "<!-- study-table -->"
PERF_MARKER = "<!-- perf-scripts -->"
IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".gif")
HEADLINE = "img/quick_test_auroc_true_vs_epsilon.png"   # under docs/ and in the build
HEADLINE_SOURCE = EXPERIMENTS / "quick_figures" / "summary.csv"
HEADLINE_ALT = ("Test AUROC against the true outcome by spent epsilon in the quick study: EdgeRand, GAP-EDP and "
                "GAP-NDP against the non-private GCN and the edge-blind MLP, mean and 95% interval over five seeds")
SUMMARY_END = "<!-- gnnrisk-report:summary:end -->"
ISSUE_TAG = re.compile(r"\s*\(issues? \d+[^)]*\)")   # "(issue 6)": a tag of the tracker, not of the study
SKIPPED_PREFIXES = ("hydra.help",)  # the --help text templates of configs/config.yaml
COMMANDS = ("gnnrisk-run", "gnnrisk-report", "python", "bash ", "make ")  # an indented header line that runs


# ---------------------------------------------------------------------------------------------------
# Reading a config file: its fields with their comments
# ---------------------------------------------------------------------------------------------------

@dataclass
class Field:
    """One row of a member's table."""

    path: str
    default: str
    comment: str


@dataclass
class Member:
    """One file of a config group."""

    group: str
    name: str
    package: str | None
    description: list[str]
    defaults: list[tuple[str, str]]
    fields: list[Field]
    source: str


@dataclass
class _Entry:
    key: str
    path: tuple[str, ...]
    indent: int
    value: str
    comment: list[str]
    items: list[tuple[str, str]] = field(default_factory=list)  # block-sequence items: (first line, comment)
    has_children: bool = False


_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_$][\w.$/-]*|'[^']*'|\"[^\"]*\")\s*:(?:\s+(?P<rest>.*))?$")
_BLOCK_SCALAR = re.compile(r"^[|>][-+0-9]*$")


def split_comment(text: str) -> tuple[str, str]:
    """`value  # comment` -> (value, comment); a `#` inside quotes or glued to a word is part of the value."""
    quote = None
    for i, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip(), text[i + 1:].strip()
    return text.rstrip(), ""


def _header(lines: list[str]) -> tuple[list[str], str | None, int]:
    """The file's leading comment (the member's description), its `@package`, and where the body starts."""
    description, package, i = [], None, 0
    while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
        text = lines[i].strip()
        if text.startswith("# @package"):
            package = text.split()[2]
        elif text.startswith("#"):
            description.append(text[1:][1:] if text[1:].startswith(" ") else text[1:])
        i += 1
    return description, package, i


def _entries(lines: list[str]) -> list[_Entry]:
    """Every mapping key of the body with its path, raw value and comments (inline, continued, leading)."""
    entries: list[_Entry] = []
    stack: list[_Entry] = []
    pending: list[str] = []          # standalone comment lines: they describe the next key
    last: _Entry | None = None       # the key whose inline comment a following comment line continues
    block: _Entry | None = None      # inside a block scalar (`key: |`) or a block sequence of this key
    for line in lines:
        stripped = line.strip()
        if not stripped:
            last = None
            continue
        indent = len(line) - len(line.lstrip(" "))
        if block is not None:
            inside = indent > block.indent or (block.items and indent == block.indent and stripped.startswith("-"))
            if inside:
                if block.value == "" and not stripped.startswith("#"):   # a sequence: its items' comments
                    item, comment = split_comment(stripped[2:] if stripped.startswith("- ") else stripped)
                    if stripped.startswith("- ") or comment:
                        block.items.append((item, comment))
                continue
            block = None
        if stripped.startswith("#"):
            if last is not None and indent > last.indent:
                last.comment.append(stripped[1:].strip())
            else:
                pending.append(stripped[1:].strip())
                last = None
            continue
        if stripped.startswith("- ") and stack:   # a block sequence starts under the last key
            owner = stack[-1]
            item, comment = split_comment(stripped[2:])
            owner.items.append((item, comment))
            block, last = owner, None
            continue
        match = _KEY.match(line)
        if not match:
            last = None
            continue
        key = match["key"].strip("'\"")
        value, comment = split_comment(match["rest"] or "")
        while stack and stack[-1].indent >= indent:
            stack.pop()
        if stack:
            stack[-1].has_children = True
        entry = _Entry(key, tuple(e.key for e in stack) + (key,), indent, value,
                       pending + ([comment] if comment else []))
        pending = []
        entries.append(entry)
        stack.append(entry)
        last = entry if comment else None
        if _BLOCK_SCALAR.match(value):
            block = entry
    return entries


def _flow(value) -> str:
    """A loaded YAML value as one line of flow YAML."""
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10 ** 6).strip()
    return "null" if value is None else str(value)


def _unbalanced(value: str) -> bool:
    return value[:1] in "[{" and sum(value.count(c) for c in "[{") != sum(value.count(c) for c in "]}")


def _lookup(data, path: tuple[str, ...]):
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def read_member(path: Path, group: str) -> Member:
    """The description, defaults list and fields of one config file."""
    text = path.read_text()
    lines = text.splitlines()
    description, package, start = _header(lines)
    loaded = yaml.safe_load(text) or {}
    prefix = {None: group, "_global_": None}.get(package, package)
    entries = _entries(lines[start:])
    defaults: list[tuple[str, str]] = []
    fields: list[Field] = []
    commented = {e.path for e in entries if e.comment}
    skip: tuple[str, ...] | None = None
    for entry in entries:
        if skip is not None and entry.path[:len(skip)] == skip:
            continue
        skip = None
        dotted = ".".join(((prefix,) if prefix else ()) + entry.path)
        if entry.path == ("defaults",):
            defaults = entry.items
            skip = entry.path
            continue
        if dotted.startswith(SKIPPED_PREFIXES):
            continue
        comment = " ".join(entry.comment)
        if entry.items:
            item_notes = "; ".join(f"`{item}`: {note}" for item, note in entry.items if note)
            comment = "; ".join(part for part in (comment, item_notes) if part)
            fields.append(Field(dotted, _flow(_lookup(loaded, entry.path)), comment))
        elif entry.has_children:
            below = [p for p in commented if p[:len(entry.path)] == entry.path and p != entry.path]
            if entry.comment and not below:   # a mapping given whole (e.g. groups -> size fractions)
                fields.append(Field(dotted, _flow(_lookup(loaded, entry.path)), comment))
                skip = entry.path
            elif entry.comment:
                fields.append(Field(dotted, "", comment))
        elif _unbalanced(entry.value):   # a flow list or mapping continued on the next lines
            fields.append(Field(dotted, _flow(_lookup(loaded, entry.path)), comment))
        else:
            fields.append(Field(dotted, entry.value if entry.value != "" else "null", comment))
    return Member(group, path.stem, package, description, defaults, fields, text)


def read_group(group: str) -> list[Member]:
    """Every member of a config group; `none` first, then by name."""
    files = sorted((CONFIGS / group).glob("*.yaml"), key=lambda p: (p.stem != "none", p.stem))
    return [read_member(p, group) for p in files]


# ---------------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------------

_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def escape(text: str) -> str:
    """Plain text for Markdown (and a table cell): code spans kept, the rest taken literally."""
    out, pos = [], 0
    for match in _CODE_SPAN.finditer(text):
        out.append(_escape_plain(text[pos:match.start()]))
        out.append(match.group(0))  # a pipe inside a code span does not split a table cell
        pos = match.end()
    out.append(_escape_plain(text[pos:]))
    return "".join(out)


def _escape_plain(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for char in "*_[]|":
        text = text.replace(char, "\\" + char)
    return text


def code(text: str) -> str:
    """`text` as an inline code span (Python-Markdown's tables do not split cells inside one)."""
    if text == "":
        return ""
    ticks = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def description_markdown(lines: list[str]) -> str:
    """A file's header comment: prose lines as a paragraph, indented command lines as a code block."""
    blocks: list[str] = []
    prose: list[str] = []
    commands: list[str] = []

    def flush() -> None:
        if prose:
            blocks.append(escape(" ".join(prose)))
            prose.clear()
        if commands:
            blocks.append("```bash\n" + "\n".join(commands) + "\n```")
            commands.clear()

    for line in lines:
        if line.startswith("  ") and line.strip().startswith(COMMANDS):
            if prose:
                flush()
            commands.append(line.strip())
        elif line.strip():
            if commands:
                flush()
            prose.append(line.strip())
        else:
            flush()
    flush()
    return "\n\n".join(blocks)


def fields_table(fields: list[Field]) -> str:
    rows = ["| field | default | meaning (the config file's comment) |", "|---|---|---|"]
    rows += [f"| {code(f.path)} | {code(f.default)} | {escape(f.comment)} |" for f in fields]
    return "\n".join(rows)


def _selector(member: Member) -> str:
    return f"{member.group}={member.name}"


def _shared_fields(members: list[Member]) -> list[Field]:
    """The fields (same default, same comment) of every member that has fields, `none` aside."""
    with_fields = [m for m in members if m.name != "none" and m.fields]
    if len(with_fields) < 2:
        return []
    common = [f for f in with_fields[0].fields
              if all(any(g == f for g in m.fields) for m in with_fields[1:])]
    return common if len(common) >= 3 else []


def group_fields_markdown(group: str) -> str:
    """The generated part of a group's page: one section per member, its fields in a table."""
    members = read_group(group)
    names = {m.name for m in members}
    shared = _shared_fields(members)
    parts = [f"## Every member of `{group}`",
             f"Generated from `configs/{group}/*.yaml` when the site is built: each field as it is set on the "
             f"command line (`{group}=MEMBER FIELD=VALUE`), its default as the file writes it, and the file's "
             f"comment on it."]
    if group == "attack":
        parts.append("`attack` is a multi-select group: `attack=[lsa,mia]` merges the members' blocks into one "
                     "`attack` node, so each member's settings sit under `attack.<member>.`.")
    if shared:
        parts += ["### Fields every member shares",
                  "Every member below other than `none` has these fields, with these defaults:",
                  fields_table(shared)]
    for member in members:
        parts.append(f"### `{_selector(member)}`")
        if member.description:
            parts.append(description_markdown(member.description))
        bases = [item for item, _ in member.defaults if item in names]
        if bases:
            parts.append("Composes " + ", ".join(f"[`{b}`](#{_anchor(member.group, b)})" for b in bases)
                         + " (its Hydra defaults list): every field of " + ("those" if len(bases) > 1 else "it")
                         + " applies" + ("; the fields below add to or replace them." if member.fields else "."))
        other = [(item, note) for item, note in member.defaults if item not in names and item != "_self_"]
        if other:
            parts.append("Hydra defaults list:\n\n" + "\n".join(
                f"- {code(item)}" + (f": {escape(note)}" if note else "") for item, note in other))
        own = [f for f in member.fields if f not in shared]
        if own:
            if shared and member.name != "none":
                parts.append("Besides the shared fields above:")
            parts.append(fields_table(own))
        elif not member.defaults and not shared:
            parts.append("No fields.")
        if group == "experiment":
            body = member.source.rstrip("\n")
            parts.append(f'??? note "The file: configs/experiment/{member.name}.yaml"\n\n'
                         + "    ```yaml\n" + "\n".join(("    " + l) if l else "" for l in body.splitlines())
                         + "\n    ```")
    return "\n\n".join(parts) + "\n"


def _anchor(group: str, name: str) -> str:
    """The id of the heading `` `group=name` `` (GitHub's slugs, as mkdocs.yml sets them: `datasynthetic`)."""
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", f"{group}{name}").strip().lower())


def top_level_markdown() -> str:
    """The settings of configs/config.yaml that belong to no group."""
    member = read_member(CONFIGS / "config.yaml", "")
    member.fields = [Field(f.path.lstrip("."), f.default, f.comment) for f in member.fields]
    return ("## Top-level settings\n\nGenerated from `configs/config.yaml` when the site is built (the `--help` "
            "text templates under `hydra.help` aside).\n\n" + fields_table(member.fields) + "\n")


def insert_at(page: str, marker: str, generated: str) -> str:
    """The page with `generated` in place of its marker line (appended when the page has none)."""
    if marker in page:
        return page.replace(marker, generated.rstrip("\n"), 1)
    return page.rstrip("\n") + "\n\n" + generated


# ---------------------------------------------------------------------------------------------------
# Studies, benchmarks, links
# ---------------------------------------------------------------------------------------------------

_LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)")


def _title(markdown: str) -> str:
    for line in markdown.splitlines():
        if line.startswith("# "):
            return untagged(line[2:].strip())
    return ""


def untagged(text: str) -> str:
    """Text without the issue tracker's tags: `Study (issue 6): every attack` -> `Study: every attack`."""
    return ISSUE_TAG.sub("", text)


def _delink(text: str, repo_path: str) -> str:
    plain = text.strip("` ").rstrip("/")
    if plain in (repo_path, posixpath.basename(repo_path)) or not plain:
        return f"`{repo_path}`"
    return f"{text} (`{repo_path}`)"


def rewrite_links(markdown: str, page: str, studies: set[str]) -> str:
    """Relative links of the page `page` (a path under docs/) that leave docs/: a write-up -> its copy
    under studies/, anything else -> the repository path as code. Links within docs/ are kept as they are.

    Links inside fenced code are left alone.
    """
    out, fenced = [], False
    for line in markdown.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        if not fenced:
            line = _LINK.sub(lambda m: _rewrite_one(m, page, studies), line)
        out.append(line)
    return "\n".join(out)


def _rewrite_one(match: re.Match, page: str, studies: set[str]) -> str:
    target = match["target"]
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
        return match.group(0)
    path, _, fragment = target.partition("#")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname("docs/" + page), path))
    if not resolved.startswith("docs/"):                          # leaves docs/: a repository path
        if resolved.startswith("experiments/") and posixpath.basename(resolved) in studies:
            new = posixpath.relpath("docs/studies/" + posixpath.basename(resolved),
                                    posixpath.dirname("docs/" + page))
            return f"{match['bang']}[{match['text']}]({new}{'#' + fragment if fragment else ''})"
        if resolved == "experiments/README.md":
            new = posixpath.relpath("docs/studies.md", posixpath.dirname("docs/" + page))
            return f"[{match['text']}]({new})"
        return _delink(match["text"], resolved)
    return match.group(0)  # inside docs/: mkdocs checks it (a broken one fails `mkdocs build --strict`)


def study_pages() -> dict[str, str | bytes]:
    """The write-ups as studies/<name>.md, and the images they show, their links made to work in the site."""
    pages: dict[str, str | bytes] = {}
    writeups = sorted(p for p in EXPERIMENTS.glob("*.md") if p.name != "README.md")
    names = {p.name for p in writeups}
    for writeup in writeups:
        text = writeup.read_text()
        for match in _LINK.finditer(text):
            target = match["target"].partition("#")[0]
            image = (writeup.parent / target).resolve()
            if target.lower().endswith(IMAGE_SUFFIXES) and image.is_file() and EXPERIMENTS in image.parents:
                pages["studies/" + image.relative_to(EXPERIMENTS).as_posix()] = image.read_bytes()
        pages[f"studies/{writeup.name}"] = text
    sources = {p for p in pages if not p.endswith(".md")} | {f"studies/{n}" for n in names}
    for name in names:  # as if the write-up sat in docs/studies/: its own links resolve against experiments/
        text = pages[f"studies/{name}"]
        assert isinstance(text, str)
        pages[f"studies/{name}"] = _rewrite_studies(text, sources, names)
    if "studies/quick.md" in pages and HEADLINE_SOURCE.is_file():  # the headline figure under its table
        quick = pages["studies/quick.md"]
        assert isinstance(quick, str)
        figure = f"\n\n![{HEADLINE_ALT}](../{HEADLINE})\n"
        pages["studies/quick.md"] = (quick.replace(SUMMARY_END, SUMMARY_END + figure, 1) if SUMMARY_END in quick
                                     else quick.rstrip("\n") + figure)
    return pages


def _rewrite_studies(text: str, sources: set[str], names: set[str]) -> str:
    def one(match: re.Match) -> str:
        target = match["target"]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
            return match.group(0)
        path, _, fragment = target.partition("#")
        resolved = posixpath.normpath(posixpath.join("experiments", path))
        if resolved.startswith("experiments/"):
            rel = resolved[len("experiments/"):]
            if "studies/" + rel in sources:
                return match.group(0)
            if rel == "README.md":
                return f"[{match['text']}](../studies.md)"
        if resolved.startswith("docs/") and (DOCS / resolved[5:]).exists():
            return f"{match['bang']}[{match['text']}](../{resolved[5:]}{'#' + fragment if fragment else ''})"
        return _delink(match["text"], resolved)

    out, fenced = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        out.append(line if fenced else _LINK.sub(one, line))
    return "\n".join(out)


def studies_table() -> str:
    """Every study config with its write-up (when there is one) and the command its config gives."""
    rows = ['<div class="studies-table" markdown>', "",
            "| study | write-up | what its config says it runs |", "|---|---|---|"]
    for member in read_group("experiment"):
        prose = " ".join(l.strip() for l in member.description)
        named = [EXPERIMENTS / f"{member.name}.md"] + [EXPERIMENTS / m for m in re.findall(r"experiments/(\w+\.md)", prose)]
        writeup = next((w for w in named if w.exists()), None)
        link = f"[{escape(_title(writeup.read_text()) or writeup.stem)}](studies/{writeup.name})" if writeup else "(none yet)"
        summary = _first_sentences(re.sub(rf"^{re.escape(member.name)}:\s*", "", untagged(prose)))
        rows.append(f"| [`experiment={member.name}`](config/experiment.md#{_anchor('experiment', member.name)}) "
                    f"| {link} | {escape(summary)} |")
    return "\n".join(rows) + "\n\n</div>\n"


SOURCE_KEY = b"gnnrisk-source-sha256"   # the PNG text chunk naming the summary a figure was drawn from


def source_digest() -> str:
    return hashlib.sha256(HEADLINE_SOURCE.read_bytes()).hexdigest()


def png_text(png: bytes) -> dict[bytes, bytes]:
    """The tEXt chunks of a PNG (keyword -> text)."""
    out, pos = {}, 8
    while pos + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"tEXt":
            key, _, value = png[pos + 8:pos + 8 + length].partition(b"\0")
            out[key] = value
        pos += 12 + length
    return out


def with_png_text(png: bytes, key: bytes, value: bytes) -> bytes:
    """The PNG with a tEXt chunk `key: value` before its IEND chunk."""
    data = key + b"\0" + value
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
    end = png.rindex(b"IEND") - 4
    return png[:end] + chunk + png[end:]


def headline_png() -> bytes:
    """The headline figure: the committed copy in docs/img/ while it was drawn from the current summary.csv,
    otherwise drawn now (see `draw_headline`)."""
    committed = DOCS / HEADLINE
    if committed.is_file():
        png = committed.read_bytes()
        if png_text(png).get(SOURCE_KEY) == source_digest().encode():
            return png
    return draw_headline()


def draw_headline() -> bytes:
    """gnnrisk-report's `test_auroc_true` against the spent epsilon, drawn from the quick study's committed
    summary.csv (what `make figures` reads too), as PNG bytes naming that file's SHA-256."""
    import tempfile

    import pandas as pd

    from gnnrisk.report import plot_metric_vs_x

    with tempfile.TemporaryDirectory() as folder:
        paths = plot_metric_vs_x(pd.read_csv(HEADLINE_SOURCE), "test_auroc_true", "epsilon", Path(folder))
        png = next(p for p in paths if p.suffix == ".png").read_bytes()
    return with_png_text(png, SOURCE_KEY, source_digest().encode())


def _first_sentences(text: str, at_least: int = 80, at_most: int = 320) -> str:
    """The opening sentences of a description, enough to say what it is."""
    out = ""
    for sentence in re.split(r"(?<=[.;:])\s+(?=[A-Z(])", text):
        out = f"{out} {sentence}".strip()
        if len(out) >= at_least:
            break
    return out if len(out) <= at_most else out[:at_most].rsplit(" ", 1)[0] + " …"


def perf_markdown() -> str:
    """One section per benchmark script: its docstring, with its commands as code."""
    parts = []
    for script in sorted(PERF.glob("*.py")):
        doc = ast.get_docstring(ast.parse(script.read_text())) or "(no docstring)"
        out: list[str] = []
        for line in doc.splitlines():
            if line.startswith("Usage:"):   # `Usage:  python ...`: the command as a code block
                out += ["", "    " + line[len("Usage:"):].strip(), ""]
                continue
            if line.startswith("- ") and out and out[-1].strip() and not out[-1].startswith(("- ", "  ")):
                out.append("")  # a list needs a blank line before it
            out.append(line if line.startswith("    ") else escape(line))
        parts.append(f"### `{script.name}`\n\n" + "\n".join(out))
    return "\n\n".join(parts) + "\n"


EXPLAIN_TIME_STAND_IN = """# Explanations over time

This page is being written. Until then: the explainers that run on data with periods (saliency,
integrated gradients, GNNExplainer and the random baseline over (tie, period) pairs, scored against
the planted transmissions) are documented in the docstrings of
[`gnnrisk.explain`](reference/explain.md) (module `gnnrisk/explain/temporal.py`).
"""


# ---------------------------------------------------------------------------------------------------
# The pages
# ---------------------------------------------------------------------------------------------------

def generated_pages() -> dict[str, str | bytes]:
    """Every page the build gets from this script: path under docs/ -> content."""
    pages: dict[str, str | bytes] = dict(study_pages())
    studies = {p.rsplit("/", 1)[1] for p in pages if p.startswith("studies/") and p.endswith(".md")}
    for group in GROUPS:
        page = f"config/{group}.md"
        source = DOCS / page
        text = source.read_text() if source.exists() else f"# `{group}`\n"
        pages[page] = insert_at(text, FIELDS_MARKER, group_fields_markdown(group))
    index = DOCS / "config" / "index.md"
    if index.exists():
        pages["config/index.md"] = insert_at(index.read_text(), FIELDS_MARKER, top_level_markdown())
    for page, marker, generated in (("studies.md", STUDIES_MARKER, studies_table),
                                    ("benchmarks.md", PERF_MARKER, perf_markdown)):
        if (DOCS / page).exists():
            pages[page] = insert_at((DOCS / page).read_text(), marker, generated())
    if not (DOCS / "explain_time.md").exists():
        pages["explain_time.md"] = EXPLAIN_TIME_STAND_IN
    if HEADLINE_SOURCE.is_file():
        pages[HEADLINE] = headline_png()
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*") if p.is_file()}
    for page in sorted(on_disk | set(pages)):
        if not page.endswith(".md") or page.startswith("studies/"):
            continue
        text = pages.get(page)
        text = (DOCS / page).read_text() if text is None else text
        assert isinstance(text, str)
        rewritten = rewrite_links(text, page, studies)
        if rewritten != text or page in pages:
            pages[page] = rewritten
    return pages


def write_with_gen_files() -> None:
    """Hand the pages to mkdocs-gen-files (the build's virtual docs folder)."""
    import mkdocs_gen_files

    for page, content in generated_pages().items():
        if isinstance(content, bytes):
            with mkdocs_gen_files.open(page, "wb") as handle:
                handle.write(content)
        else:
            with mkdocs_gen_files.open(page, "w") as handle:
                handle.write(content)


def main(argv: list[str]) -> int:
    pages = generated_pages()
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv[0] == "--list":
        print("\n".join(sorted(pages)))
        return 0
    if argv[0] == "--headline":   # the repository's copy of the headline figure (docs/img/), drawn afresh
        (DOCS / HEADLINE).write_bytes(draw_headline())
        print(DOCS / HEADLINE)
        return 0
    name = argv[0] if argv[0] in pages else f"config/{argv[0]}.md"
    if name not in pages or isinstance(pages[name], bytes):
        print(f"no generated text page {argv[0]!r}; --list lists them", file=sys.stderr)
        return 2
    print(pages[name])
    return 0


if __name__ == "<run_path>":   # mkdocs-gen-files runs the script with runpy.run_path
    write_with_gen_files()
elif __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
