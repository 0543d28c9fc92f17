"""Every path, link and ``hpsearch`` command in the READMEs works as written on a fresh clone.

The documents are read as a user reads them:

- every relative link target (``[text](target)``, ``![alt](target)``, with its ``#anchor``)
  must exist, relative to the document; an anchor must name a heading of the target;
- every repository path in inline code or a code block (``studies/demo.toml``,
  ``hpsearch/core/``, ``benchmarks/storage.py``, ``Makefile``, globs such as
  ``studies/*.toml`` and brace lists such as ``studies/x-{a,b}.toml``) must exist relative to
  the repository root and must not be git-ignored (an ignored file is not in a fresh clone);
  names the commands write or the user makes are listed in ``NOT_IN_THE_REPOSITORY``;
- every ``hpsearch …`` command line (in code blocks, also as ``.venv/bin/hpsearch``,
  ``srun hpsearch``, ``$ hpsearch`` and the JSON list of a YAML ``command:``; in inline code
  when it is a command line rather than a mention, see ``_is_command_line``) must parse with
  the real parser, synopses such as ``[--out DIR]`` with every option given, and every study
  file a command names must pass ``hpsearch check``;
- every ``make TARGET`` must be a target of the Makefile.
"""

from __future__ import annotations

import contextlib
import glob
import io
import itertools
import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hpsearch.cli import build_parser, main
from tests.conftest import REPO

# The READMEs, and every page of docs/ (the background they link to).
DOCS = ["README.md", "dashboards/README.md"] + [
    f"docs/{p.name}" for p in sorted((REPO / "docs").glob("*.md"))
]

# A token in inline code or a code block names a path of the repository when its first part is
# one of these (a typo in a file name is then caught) or when it ends in a file extension (a typo
# in the folder is then caught too).
TOP_LEVEL = {"studies", "docs", "benchmarks", "dashboards", "hpsearch", "tests", ".ci", "Makefile"}
FILE_EXTENSION = re.compile(r"[^/]\.(toml|md|py|png|json|csv|txt|sh|ya?ml|db|log|cfg|ini)$")

# Names the documents mention that are deliberately not in the repository.
NOT_IN_THE_REPOSITORY = {
    # written by the commands the README shows (all in .gitignore or in --out folders):
    "hpsearch.db",  # the default storage of every command
    "demo-pareto.png",  # `make demo`: `hpsearch show ... --plot demo-pareto.png`
    "compare.png",  # `hpsearch compare` / `fill --out` write these four to DIR
    "compare.csv",
    "compare.md",
    "compare.json",
    "playground-axis-lr.png",  # `hpsearch playground` writes it to --out
    # made by the user in the README's examples:
    "my_setups.py",  # "Your own setup": the user's module
    "broken.toml",  # the example of a refused study file and its one-line error
    "plain-optuna.db",  # examples/plain_optuna.py writes it
    "data/wine.csv",  # a study file's data path, relative to examples/wine-csv.toml
    "data.csv",  # the user's data file in the study-file reference's example
}

# Placeholders of command lines and synopses, and what the test puts in their place. A study's
# name (STUDY) parses as any string and names no file. An unknown placeholder is left as it is,
# so an option that needs a number fails to parse and shows up here.
PLACEHOLDERS = {
    "STUDY_FILE": "studies/demo.toml",
    "PLAYGROUND_FILE": "studies/playground.toml",
    "MGS_FILE": "studies/mgs-digits.toml",
    "STUDY": "STUDY",
    "URL": "sqlite:///hpsearch.db",
    "N": "2",
    "S": "10",
    "K": "4",
    "E": "3",
    "P": "8080",
    "H": "127.0.0.1",
    "PORT": "8080",
    "DEVICE": "auto",
    "HOST": "127.0.0.1",
    "I,J": "0,1",
    "FILE": "studies/demo.toml",  # fill --study-file FILE
    "JSON": "importances.json",  # importance --json JSON
    "PNG": "front.png",
    "DIR": "out",
    "L1,L2": "1.0,1.0",
    "KEY=VALUE": "lambda_lr=0.5",
}
# The positional arguments that name files `hpsearch check` validates.
FILE_ARGUMENTS = ("study_file", "study_files", "playground_file", "mgs_file")

HPSEARCH = r"(?:\S*/)?hpsearch"  # hpsearch, .venv/bin/hpsearch
COMMAND = re.compile(
    rf"^(?:\$\s+)?(?:(?:srun|exec|nohup|time|env)\s+|[A-Z_]+=\S*\s+)*{HPSEARCH}(?:\s|$)"
)
SHELL_OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "2>", "2>&1", "<"}


@dataclass(frozen=True)
class Command:
    where: str  # document:line
    text: str  # as written
    argv: tuple[str, ...]  # the arguments after `hpsearch`, placeholders substituted


def code_blocks(text: str) -> Iterator[tuple[str, str, int]]:
    """(language, body, line of the body's first line) of each fenced code block."""
    for m in re.finditer(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", text, re.M | re.S):
        yield m.group(1), m.group(2), text.count("\n", 0, m.start(2)) + 1


def prose(text: str) -> str:
    """The text with its code blocks blanked out (line numbers kept)."""
    return re.sub(
        r"^```.*?^```\s*$", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.M | re.S
    )


def inline_code(text: str) -> Iterator[tuple[str, int]]:
    """The inline code spans outside code blocks, a span broken over lines joined by a space."""
    body = prose(text)
    for m in re.finditer(r"`([^`]+)`", body):
        yield " ".join(m.group(1).split()), body.count("\n", 0, m.start()) + 1


def link_targets(text: str) -> Iterator[tuple[str, int]]:
    """Relative targets of the Markdown links and images outside code blocks."""
    body = prose(text)
    for m in re.finditer(
        # A backtick starts a code span only (not also a plain character): with both, an
        # unclosed "[" before many spans backtracks exponentially.
        r"!?\[(?:[^\]\[`]|`[^`]*`)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\)",
        body,
    ):
        target = m.group(1)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, mailto:, …
            yield target, body.count("\n", 0, m.start()) + 1


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown document."""
    anchors: set[str] = set()
    for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", prose(text), re.M):
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def _tokens(snippet: str) -> Iterator[str]:
    snippet = re.sub(r"\b[a-z][a-z0-9+.-]*://\S*", " ", snippet)  # URLs: sqlite:///x.db, …
    for m in re.finditer(r"(?:[\w.\-/*<>]|\{[\w.,\-]*\})+", snippet):
        yield m.group(0)


def looks_like_path(token: str) -> bool:
    """Whether a token of inline code or a code block names a path in the repository."""
    if token.startswith("./"):
        token = token[2:]
    if "<" in token or ">" in token or token.startswith(("/", "-", ".venv")):
        return False  # a pattern (`<study>-front.png`), an absolute path, an option, the venv
    if token.split("/")[0] in TOP_LEVEL and (token == "Makefile" or "/" in token):
        return True
    return bool(FILE_EXTENSION.search(token))


def path_mentions(text: str) -> Iterator[tuple[str, int]]:
    """Repository paths named in inline code and code blocks, with their line."""
    for span, line in inline_code(text):
        for token in _tokens(span):
            if looks_like_path(token):
                yield token.removeprefix("./"), line
    for _lang, body, first in code_blocks(text):
        for offset, code_line in enumerate(body.splitlines()):
            for token in _tokens(code_line):
                if looks_like_path(token):
                    yield token.removeprefix("./"), first + offset


def _expand_braces(pattern: str) -> list[str]:
    m = re.search(r"\{([^{}]*)\}", pattern)
    if m is None:
        return [pattern]
    return [
        expanded
        for choice in m.group(1).split(",")
        for expanded in _expand_braces(pattern[: m.start()] + choice + pattern[m.end() :])
    ]


def _path_problem(root: Path, path: str) -> str | None:
    for pattern in _expand_braces(path):
        if ".." in Path(pattern).parts:
            return f"{pattern} is outside the repository"
        if "*" in pattern:
            if not glob.glob(pattern, root_dir=root):
                return f"{pattern} matches no file"
        elif pattern.endswith("/"):
            if not (root / pattern).is_dir():
                return f"{pattern} is not a folder"
        elif not (root / pattern).exists():
            return f"{pattern} does not exist"
    return None


def _ignored(root: Path, paths: list[str]) -> set[str]:
    """Those of ``paths`` that git ignores (empty where ``root`` is not a git work tree)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "check-ignore", "--stdin"],
            input="\n".join(paths),
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError:
        return set()
    return set(out.stdout.splitlines()) if out.returncode in (0, 1) else set()


def path_problems(root: Path, doc: str, text: str) -> list[str]:
    """Missing or git-ignored paths and links of the document ``doc`` (relative to ``root``)."""
    problems: list[str] = []
    present: list[str] = []
    for path, line in path_mentions(text):
        if path in NOT_IN_THE_REPOSITORY:
            continue
        problem = _path_problem(root, path)
        if problem:
            problems.append(f"{doc}:{line}: `{path}`: {problem}")
        else:
            present.extend(p for p in _expand_braces(path) if "*" not in p)
    folder = (root / doc).parent
    for target, line in link_targets(text):
        file, _, anchor = target.partition("#")
        resolved = (folder / file).resolve() if file else root / doc
        if not resolved.exists():
            problems.append(f"{doc}:{line}: link ({target}): {file} does not exist")
            continue
        if file:
            try:
                present.append(str(resolved.relative_to(root.resolve())))
            except ValueError:
                problems.append(f"{doc}:{line}: link ({target}) leaves the repository")
                continue
        if (
            anchor
            and resolved.suffix == ".md"
            and anchor not in heading_anchors(resolved.read_text(encoding="utf-8"))
        ):
            problems.append(f"{doc}:{line}: link ({target}): no heading #{anchor}")
    problems += [
        f"{doc}: {p} is git-ignored: not in a fresh clone" for p in _ignored(root, present)
    ]
    return problems


def _is_command_line(span: str) -> bool:
    """Whether inline code starting with `hpsearch` is a command line, not a mention such as
    `hpsearch show` or `hpsearch show --plot`: it has a synopsis's options, a placeholder or
    a file."""
    words = span.split()
    return "[-" in span or any(w.rstrip(".…") in PLACEHOLDERS or ".toml" in w for w in words)


def _argvs(text: str) -> list[tuple[str, ...]]:
    """The argument lists of one command line after `hpsearch`: a synopsis's brackets dropped
    (all of its options given), placeholders substituted, `a|b` once per alternative."""
    if "[-" in text:
        text = text.replace("[", " ").replace("]", " ")
    words = shlex.split(text, comments=True)
    for i, word in enumerate(words):
        if word in SHELL_OPERATORS:
            words = words[:i]
            break
    start = next(i for i, w in enumerate(words) if re.fullmatch(HPSEARCH, w))
    choices = []
    for word in words[start + 1 :]:
        word = word.removesuffix("...").removesuffix("…")
        if not word:  # the "..." of "STUDY [STUDY ...]"
            continue
        alternatives = word.split("|") if "|" in word and not word.startswith("-") else [word]
        choices.append([PLACEHOLDERS.get(a.lstrip("$").strip("{}"), a) for a in alternatives])
    return [tuple(argv) for argv in itertools.product(*choices)]


def commands(doc: str, text: str) -> list[Command]:
    """Every `hpsearch` command line of the document."""
    found = []
    for lang, body, first in code_blocks(text):
        lines = body.splitlines()
        for start, line in enumerate(lines):
            joined, end = line, start
            # A line continued with a backslash, or a synopsis whose options go on, indented, on
            # the next lines.
            while end + 1 < len(lines) and (
                joined.endswith("\\") or re.match(r"\s+\[-", lines[end + 1])
            ):
                end += 1
                joined = joined.removesuffix("\\") + " " + lines[end]
            if COMMAND.match(joined.strip()):
                for argv in _argvs(joined.strip().removeprefix("$ ")):
                    found.append(Command(f"{doc}:{first + start}", joined.strip(), argv))
        if lang in ("yaml", "yml"):  # command: ["hpsearch", "worker", …] (a JSON list)
            for m in re.finditer(r"command:\s*(\[[^\]]*\])", body):
                words = json.loads(m.group(1))
                if words and re.fullmatch(HPSEARCH, words[0]):
                    where = f"{doc}:{first + body.count(chr(10), 0, m.start())}"
                    for argv in _argvs(shlex.join(words)):
                        found.append(Command(where, " ".join(words), argv))
    for span, span_line in inline_code(text):
        if COMMAND.match(span) and _is_command_line(span):
            for argv in _argvs(span):
                found.append(Command(f"{doc}:{span_line}", span, argv))
    return found


def parse_problem(argv: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """(the parser's error or None, the files the command names for `hpsearch check`)."""
    parser = build_parser()
    # The documents spell options out: `--n-trial` would pass as an abbreviation of --n-trials.
    for action in parser._actions:
        if isinstance(action.choices, dict):  # the subcommands
            for sub in action.choices.values():
                sub.allow_abbrev = False
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            args = parser.parse_args(list(argv))
        except SystemExit:
            return err.getvalue().strip() or "refused by the parser", []
    files: list[str] = []
    for name in FILE_ARGUMENTS:
        value = getattr(args, name, None)
        files += value if isinstance(value, list) else [value] if value else []
    return None, [f for f in files if f not in PLACEHOLDERS]


def check_problem(root: Path, file: str) -> str | None:
    """`hpsearch check FILE` (globs expanded in ``root``): None, or what it printed."""
    if file in NOT_IN_THE_REPOSITORY:
        return None
    paths = sorted(glob.glob(file, root_dir=root)) if "*" in file else [file]
    if not paths:
        return f"{file} matches no file"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["check", *(str(root / p) for p in paths)])
    return None if code == 0 else out.getvalue().strip()


def command_problems(root: Path, found: list[Command]) -> list[str]:
    """Commands the parser refuses and study files `hpsearch check` refuses."""
    problems = []
    files: dict[str, str] = {}  # file -> where first named
    for command in found:
        error, named = parse_problem(command.argv)
        if error:
            problems.append(f"{command.where}: `{command.text}` does not parse: {error}")
        for file in named:
            files.setdefault(file, command.where)
    for file, where in files.items():
        problem = check_problem(root, file)
        if problem:
            problems.append(f"{where}: `hpsearch check {file}` fails: {problem}")
    return problems


def make_problems(root: Path, doc: str, text: str) -> list[str]:
    """`make TARGET` lines whose target the Makefile lacks."""
    makefile = (root / "Makefile").read_text() if (root / "Makefile").exists() else ""
    targets = set(re.findall(r"^([\w.-]+)\s*:", makefile, re.M))
    problems = []
    for _lang, body, first in code_blocks(text):
        for offset, line in enumerate(body.splitlines()):
            m = re.match(r"^\s*make\s+([\w.-]+)", line)
            if m and m.group(1) not in targets:
                problems.append(f"{doc}:{first + offset}: `make {m.group(1)}`: no such target")
    return problems


def all_problems(root: Path, docs: list[str]) -> tuple[list[str], int, int]:
    """(problems, number of paths and links checked, number of commands checked)."""
    problems: list[str] = []
    n_paths = 0
    found: list[Command] = []
    for doc in docs:
        text = (root / doc).read_text(encoding="utf-8")
        problems += path_problems(root, doc, text)
        problems += make_problems(root, doc, text)
        n_paths += len(list(path_mentions(text))) + len(list(link_targets(text)))
        found += commands(doc, text)
    problems += command_problems(root, found)
    return problems, n_paths, len(found)


def test_every_path_link_and_command_of_the_documents_works() -> None:
    problems, n_paths, n_commands = all_problems(REPO, DOCS)
    assert not problems, "\n".join(problems)
    # Floors, so that extraction that silently finds nothing fails.
    assert n_paths >= 60, n_paths
    assert n_commands >= 25, n_commands


def test_included_tables_equal_their_results_files() -> None:
    """Every ``<!-- include FILE "HEADING" -->`` block is that section of the file, as
    ``python benchmarks/_include.py`` writes it (see benchmarks/_include.py)."""
    include = _include_module()
    blocks = 0
    for doc in DOCS:
        text = (REPO / doc).read_text()
        blocks += len(include.BLOCK.findall(text))
        assert include.stale_blocks(text) == [], f"{doc}: run python benchmarks/_include.py {doc}"
    assert blocks >= 3
    stale = '<!-- include benchmarks/results/own_study.md "## Known fronts: how often the verdict is right" -->\n| x |\n<!-- end include -->'  # noqa: E501
    assert include.stale_blocks(stale) != []
    assert include.stale_blocks(include.refreshed(stale)) == []
    # "table N" takes that table of the section alone, its notes left out
    one = stale.replace('right" -->', 'right" table 1 -->')
    body = include.BLOCK.search(include.refreshed(one))["body"]
    assert body.startswith("| front |") and all(line.startswith("|") for line in body.splitlines())


def test_the_study_file_reference_lists_every_key_and_registered_name() -> None:
    """Every key of a study file, every sampler, pruner, setup, setup option and built-in
    dataset appears in docs/study-files.md as inline code."""
    from hpsearch.core.data import DATASETS
    from hpsearch.core.setups import available_setups, get_setup
    from hpsearch.study.config import _DATA_FILE_KEYS, _STUDY_KEYS, BUDGET, CORE_PARAMS, DATA
    from hpsearch.study.samplers import PRUNERS, SAMPLERS

    page = (REPO / "docs" / "study-files.md").read_text()
    # hpsearch's own setups (other tests register theirs in the same process).
    setups = [n for n in available_setups() if get_setup(n).__module__.startswith("hpsearch.")]
    options = {k for name in setups for k in get_setup(name).options}
    names = {
        *_STUDY_KEYS, *DATA, *BUDGET, *CORE_PARAMS, *SAMPLERS, *PRUNERS, *setups,
        *options, *DATASETS, *_DATA_FILE_KEYS,
    }  # fmt: skip
    missing = sorted(n for n in names if f"`{n}`" not in page and f'"{n}"' not in page)
    assert missing == []


def _include_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_include", REPO / "benchmarks" / "_include.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_commands_that_must_be_found_are_found() -> None:
    found = {c.text for doc in DOCS for c in commands(doc, (REPO / doc).read_text())}
    assert (
        ".venv/bin/hpsearch run studies/demo.toml     # 40 trials, 10 at a time; progress on stderr"
        in found
    )
    assert any(t.startswith("srun hpsearch worker") for t in found)  # the SLURM script
    assert "hpsearch worker studies/weight_decay-digits-pareto.toml --no-progress" in found  # YAML
    assert "hpsearch check studies/*.toml" in found  # inline code
    assert "hpsearch show --plot" not in found  # a mention, not a command line


def test_the_python_api_example_does_not_write_into_the_demo_study() -> None:
    readme = (REPO / "docs" / "api.md").read_text()
    block = next(b for _lang, b, _ in code_blocks(readme) if "run_study(" in b)
    demo = re.search(r'^name = "([^"]+)"', (REPO / "studies/demo.toml").read_text(), re.M)
    assert demo is not None
    m = re.search(r'\bname="([^"]+)"', block)
    assert m is not None and m.group(1) != demo.group(1), block


SYNTHETIC = """\
# A README with mistakes

See [the notes](docs/notes.md), [a heading](#a-readme-with-mistakes), [no such
heading](#nowhere) and `studies/missing.toml`; `studies/good.toml` exists and so does
[it](studies/good.toml). `demo-pareto.png` is made by a command. Developer notes outside the
repository: [notes](../outside/NOTES.md), `../outside/NOTES.md`.

```bash
hpsearch run studies/good.toml --n-trial 5
.venv/bin/hpsearch show STUDY --top N --plot PNG
hpsearch check studies/bad.toml
hpsearch playground PLAYGROUND_FILE [--out DIR] [--steps S]
make demo
make tset
```

`hpsearch compare STUDY... [--stroage URL]` and `hpsearch show --plot` (a mention).
"""


def test_the_checks_report_missing_paths_and_bad_commands(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "studies").mkdir(parents=True)
    good = (REPO / "studies" / "demo.toml").read_text()
    (root / "studies" / "good.toml").write_text(good)
    bad = re.sub(r"^epochs = \d+", "epochs = 0", good, count=1, flags=re.M)
    assert bad != good
    (root / "studies" / "bad.toml").write_text(bad)
    (root / "studies" / "playground.toml").write_text(
        (REPO / "studies" / "playground.toml").read_text()
    )
    (root / "Makefile").write_text("demo:\n\techo\n")
    (root / "README.md").write_text(SYNTHETIC)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "NOTES.md").write_text("# Notes\n")
    problems, n_paths, n_commands = all_problems(root, ["README.md"])
    report = "\n".join(problems)
    assert n_commands == 5, report  # 4 in the block, 1 inline (the mention is not one)
    expected = [
        "README.md:3: link (docs/notes.md): docs/notes.md does not exist",
        "README.md:3: link (#nowhere): no heading #nowhere",
        "README.md:4: `studies/missing.toml`: studies/missing.toml does not exist",
        "README.md:6: link (../outside/NOTES.md) leaves the repository",
        "README.md:6: `../outside/NOTES.md`: ../outside/NOTES.md is outside the repository",
        "README.md:9: `hpsearch run studies/good.toml --n-trial 5` does not parse",
        "README.md:11: `hpsearch check studies/bad.toml` fails: hpsearch: error:",
        "README.md:14: `make tset`: no such target",
        "README.md:17: `hpsearch compare STUDY... [--stroage URL]` does not parse",
    ]
    for fragment in expected:
        assert any(p.startswith(fragment) for p in problems), (fragment, report)
    assert len(problems) == len(expected), report


@pytest.mark.parametrize(
    ("token", "is_path"),
    [
        ("studies/demo.toml", True),
        ("hpsearch/core/", True),
        ("Makefile", True),
        ("constraints.txt", True),
        ("benchmark/storage.py", True),  # a typo in the folder still counts
        ("studies/fonseca_fleming-{linear,mdmm}-pareto.toml", True),
        ("./hpsearch.db", True),
        ("<study>-front.png", False),
        ("train_/val_/test_loss1", False),
        ("hpsearch.results.analysis", False),
        ("db.example.org/hpsearch", False),
        ("--plot", False),
        (".py", False),  # "`.py` files": an extension, not a file
    ],
)
def test_what_counts_as_a_path(token: str, is_path: bool) -> None:
    assert looks_like_path(token) is is_path
