"""The docs stay true: every relative link and image resolves, the Python examples run on
the bundled data, and every `recsys ...` command they show exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsys.cli import app

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", ROOT / "benchmarks" / "README.md", *ROOT.glob("docs/*.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
# A command starts a line (or a code span), or follows a shell operator or prompt.
COMMAND = re.compile(r"(?:^|&& |; |\| |\$ )\s*recsys((?: [a-z][a-z0-9-]*)+)", re.MULTILINE)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings: lower case, punctuation dropped,
    spaces as hyphens."""
    text = FENCE.sub("", page.read_text())
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_there_are_pages_and_the_readme_is_a_front_door() -> None:
    assert len(PAGES) >= 10
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_resolves(page: Path) -> None:
    text = FENCE.sub("", page.read_text())
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        found = (page.parent / path).resolve() if path else page
        if not found.exists() or (
            anchor and found.suffix == ".md" and anchor not in anchors(found)
        ):
            broken.append(target)
    assert not broken, f"{page.name}: {broken}"


def examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for info, code in FENCE.findall(page.read_text()):
            if info.split()[:2] == ["python", "example"]:
                found.append((str(page.relative_to(ROOT)), code))
    return found


@pytest.mark.slow
@pytest.mark.parametrize(("page", "code"), examples(), ids=[page for page, _ in examples()])
def test_the_python_examples_run(
    page: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # what an example writes stays here
    exec(compile(code, page, "exec"), {"__name__": "__example__"})


def shown_commands() -> set[tuple[str, ...]]:
    """The `recsys` command paths (its words before any argument or option) in the pages'
    code: code blocks and inline code."""
    found = set()
    for page in PAGES:
        text = page.read_text()
        code = [block for _, block in FENCE.findall(text)]
        code += CODE_SPAN.findall(FENCE.sub("", text))
        for snippet in code:
            for words in COMMAND.findall(snippet):
                found.add(tuple(words.split()))
    return found


def test_every_command_shown_exists() -> None:
    commands = shown_commands()
    assert ("models", "forget") in commands  # the search finds them
    runner = CliRunner()
    missing = []
    for words in sorted(commands):
        result = runner.invoke(app, [*words, "--help"])
        if result.exit_code != 0:
            missing.append(" ".join(words))
    assert not missing, f"shown in the docs but not commands: {missing}"
