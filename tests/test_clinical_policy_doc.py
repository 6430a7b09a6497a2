"""docs/clinical-policy.md: every policy cited, every rule listed, code tables true to the data.

Data-driven: the citations are read from every string and comment in `cds_service/` and
`fhir_mappings/` (rule sources included), and the rules from `catalogue`, so a new rule or a new
citation is checked without touching this file.
"""

from __future__ import annotations

import ast
import io
import re
import stat
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

from cds_service.rules import catalogue
from cds_service.rules.catalogue import ALL_RULES
from cds_service.rules.decision import Rule
from cds_service.settings import Settings

from . import clinical_policy_tables as tables

ROOT = Path(__file__).resolve().parents[1]
DOC_PATH = tables.DOC
DOC = DOC_PATH.read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
POLICIES = range(1, 16)
PENDING_RULE_ID = "(id to be assigned)"

# "policy 4", "policies 5 and 11", "Project policies 9, 10 and 11", "policies 1-11"
_CITATION = re.compile(r"\bpolic(?:y|ies)\s+(\d+(?:\s*(?:,|and|-|–)\s*\d+)*)", re.IGNORECASE)
_LABEL_SECTION = re.compile(r"§\d+(?:\.\d+)*|W&P \d+(?:\.\d+)*|boxed warning")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_RULE_ID_SHAPE = re.compile(r"`((?:label|policy|conservative|data-quality)-[a-z0-9.-]+)`")
_SETTING_SHAPE = re.compile(r"`((?:MIPOMERSEN_CDS_)?[A-Z]+(?:_[A-Z]+)+)`")


def cited_policies(text: str) -> set[int]:
    """Return every policy number a text cites, ranges expanded."""
    numbers: set[int] = set()
    for match in _CITATION.finditer(text):
        for part in re.split(r"\s*(?:,|and)\s*", match.group(1)):
            low, _, high = re.sub(r"\s*[-–]\s*", "-", part).partition("-")
            numbers.update(range(int(low), int(high or low) + 1))
    return numbers


def headings(document: str) -> list[str]:
    """Return the text of every Markdown heading outside code fences."""
    found: list[str] = []
    fenced = False
    for line in document.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)$", line)):
            found.append(match.group(1))
    return found


ANCHORS = {tables.github_anchor(heading) for heading in headings(DOC)}
POLICY_ANCHORS = tables.policy_anchors(DOC)


def code_texts() -> Iterator[tuple[str, str]]:
    """Yield (where, text) for every string constant and comment of the two packages."""
    for package in ("cds_service", "fhir_mappings"):
        for path in sorted((ROOT / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            where = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    yield f"{where}:{node.lineno}", node.value
            for token in tokenize.generate_tokens(io.StringIO(source).readline):
                if token.type == tokenize.COMMENT:
                    yield f"{where}:{token.start[0]}", token.string
    for rule in ALL_RULES:
        yield f"rule {rule.id}", rule.source


CITATIONS = sorted(
    {(number, where) for where, text in code_texts() for number in cited_policies(text)}
)


def rule_table() -> list[list[str]]:
    """Return the cells of each row of the doc's rule table."""
    section = DOC.split("## Rules and their sources", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[1:]]


def rule_row(rule: Rule) -> list[str]:
    rows = [row for row in rule_table() if row[0] == f"`{rule.id}`"]
    assert len(rows) == 1, f"{rule.id} has {len(rows)} rows in the doc's rule table"
    return rows[0]


def test_citation_reader_expands_lists_and_ranges() -> None:
    assert cited_policies("Project policies 9, 10 and 11 (an unreadable ...)") == {9, 10, 11}
    assert cited_policies("project policy 4; policies 1-3 and policy 12") == {1, 2, 3, 4, 12}
    assert cited_policies("policy-7-baseline, policy points 1-11") == set()


def test_policies_1_to_15_each_have_one_heading_in_order() -> None:
    numbers = [int(n) for n in re.findall(r"^## Policy (\d+): ", DOC, re.M)]
    assert numbers == list(POLICIES)


@pytest.mark.parametrize(("number", "where"), CITATIONS, ids=[f"{n}@{w}" for n, w in CITATIONS])
def test_every_policy_cited_in_the_code_has_a_heading(number: int, where: str) -> None:
    assert number in POLICY_ANCHORS, f"{where} cites policy {number}, not in the document"


def test_the_code_cites_policies_at_all() -> None:
    cited = {number for number, _ in CITATIONS}
    assert {4, 9, 10, 11} <= cited  # cards.py and catalogue cite these today


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda rule: rule.id)
def test_every_rule_has_one_row_citing_its_policies(rule: Rule) -> None:
    listed = {int(n) for n in re.findall(r"\d+", rule_row(rule)[-1])}
    assert cited_policies(rule.source) <= listed


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda rule: rule.id)
def test_every_label_section_a_rule_cites_has_a_heading(rule: Rule) -> None:
    for section in _LABEL_SECTION.findall(rule.source):
        assert any(section in heading for heading in headings(DOC)), section
    if "seed guide 003" in rule.source.lower():
        assert "Seed guide 003" in DOC


def test_rule_table_names_only_rules_of_the_catalogue() -> None:
    known = {f"`{rule.id}`" for rule in ALL_RULES}
    stale = [row[0] for row in rule_table() if row[0] not in known | {PENDING_RULE_ID}]
    assert stale == []


def test_every_rule_defined_in_a_rule_module_is_in_all_rules() -> None:
    import importlib
    import pkgutil

    import cds_service.rules as rules

    modules = [
        importlib.import_module(f"{rules.__name__}.{info.name}")
        for info in pkgutil.iter_modules(rules.__path__)
    ]
    defined = {
        value for module in modules for value in vars(module).values() if isinstance(value, Rule)
    }
    assert defined == set(ALL_RULES)


def test_every_rule_id_quoted_in_the_document_exists() -> None:
    known = {rule.id for rule in ALL_RULES}
    assert set(_RULE_ID_SHAPE.findall(DOC)) - known == set()


def test_every_setting_quoted_in_the_document_exists() -> None:
    known = set(Settings.variables())
    prefix = Settings.variable("profile").removesuffix("PROFILE")
    quoted = {n if n.startswith(prefix) else prefix + n for n in _SETTING_SHAPE.findall(DOC)}
    assert quoted - known == set()


def test_every_policy_says_what_its_source_is_and_how_it_is_applied() -> None:
    sections = re.split(r"^## ", DOC, flags=re.M)
    for number in POLICIES:
        (section,) = [s for s in sections if s.startswith(f"Policy {number}: ")]
        for part in ("**Policy", "**Source.**", "**How the service applies it.**"):
            assert part in section, f"policy {number} lacks {part}"


def test_every_link_inside_the_document_resolves() -> None:
    for target in _LINK.findall(DOC):
        if target.startswith("#"):
            assert target[1:] in ANCHORS, target
        elif not target.startswith("http"):
            assert (DOC_PATH.parent / target.split("#")[0]).exists(), target


def test_readme_links_the_document_and_its_anchors_resolve() -> None:
    links = re.findall(r"\]\(docs/clinical-policy\.md(#[^)]*)?\)", README)
    assert links, "README.md does not link docs/clinical-policy.md"
    for anchor in links:
        assert not anchor or anchor[1:] in ANCHORS, anchor


def test_catalogue_docstring_points_to_the_document() -> None:
    docstring = catalogue.__doc__ or ""
    assert "docs/clinical-policy.md" in docstring
    assert "REFERENCE.md" not in docstring


def test_generated_tables_match_the_data_files() -> None:
    assert tables.render(DOC) == DOC, "run: .venv/bin/python -m tests.clinical_policy_tables"


def test_a_code_row_removed_by_hand_is_restored_from_the_data() -> None:
    row = next(line for line in DOC.splitlines() if line.startswith("| Total bilirubin | `1975-2`"))
    edited = DOC.replace(row + "\n", "")
    assert edited != DOC
    assert tables.render(edited) == tables.render(DOC)


def test_a_block_missing_from_the_document_is_an_error() -> None:
    edited = DOC.replace("<!-- generated: units -->", "<!-- units -->")
    with pytest.raises(tables.DocumentError, match="units"):
        tables.render(edited)


def test_docs_folder_ships_only_markdown_and_nothing_executable() -> None:
    for path in (ROOT / "docs").rglob("*"):
        if path.is_file():
            assert path.suffix == ".md", path
            assert not path.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH), path
