"""The linter flags upstream's v2 merged-pattern bug and other likely mistakes."""

from __future__ import annotations

from pathlib import Path

from credwatch.kql.lint import ERROR, HINT, WARNING, has_errors, lint

SEED = (Path(__file__).parent.parent / "fixtures" / "seed_v1.kql").read_text()

# v2's shape: two confluence paths added, the `or` after the second one missing.
V2_BUG = SEED.replace(
    "  */.config/gcloud/application_default_credentials.json or",
    "  */confluence/confluence.cfg.xml or\n"
    "  *confluence/conf/server.xml\n"
    "  */.config/gcloud/application_default_credentials.json or",
)


def test_v2_merged_pattern_is_an_error_at_the_right_place() -> None:
    findings = lint(V2_BUG)
    errors = [f for f in findings if f.severity == ERROR]
    assert len(errors) == 1 and errors[0].code == "KQL001"
    line = V2_BUG.splitlines()[errors[0].line - 1]
    assert line.strip() == "*confluence/conf/server.xml"
    assert errors[0].column == line.index("*") + 1
    assert has_errors(findings)


def test_whitespace_next_to_star_on_one_line() -> None:
    (finding,) = lint("process.args:(*/a.xml */b.json)")
    assert finding.code == "KQL002" and finding.severity == ERROR


def test_question_mark_mixed_case_duplicates_and_case_hints() -> None:
    findings = lint("process.name:(cat or CAT or cat) aNd file.name:id_rsa? and event.category:Process")
    codes = {(f.code, f.severity) for f in findings}
    assert ("KQL003", WARNING) in codes
    assert ("KQL004", WARNING) in codes
    assert ("KQL005", WARNING) in codes
    assert ("KQL007", HINT) in codes
    assert not has_errors(findings)


def test_upper_case_keywords_are_fine() -> None:
    assert lint("a:b OR c:d AND NOT e:f") == []


def test_syntax_error_is_reported_as_a_finding() -> None:
    (finding,) = lint("a:(b")
    assert finding.code == "KQL000" and finding.severity == ERROR
    assert finding.excerpt.endswith("^")
