"""The built-in rules' prepared form equals what parsing their TOML and KQL gives."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from credwatch.kql._prepared import ASTS
from credwatch.kql.larktree import parse_text
from credwatch.kql.parser import parse
from credwatch.rules import _builtin as generated
from credwatch.rules import builtin, prepared
from credwatch.rules.loader import load_file


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    builtin._builtin_rules.cache_clear()
    yield
    builtin._builtin_rules.cache_clear()


def test_the_shipped_modules_are_current() -> None:
    rules_text, asts_text = prepared.render()
    assert Path(generated.__file__).read_text("utf-8") == rules_text
    assert Path(prepared._ASTS_MODULE).read_text("utf-8") == asts_text
    assert prepared.main(["--check"]) == 0


def test_prepared_rules_equal_the_toml_files_loaded_as_rule_files() -> None:
    files = sorted(Path(builtin.BUILTIN_DIR).glob("*.toml"))
    assert [name for name, _ in generated.RULES] == [f.name for f in files]
    for (name, rule), path in zip(generated.RULES, files, strict=True):
        [loaded] = load_file(path)
        # repr: every field, `source` (not part of equality) aside, which is set on load
        assert repr(rule) == repr(loaded).replace(f"source={str(path)!r}", "source=None"), name
    by_id = {r.rule_id: r for r in builtin.builtin_rules()}
    for path in files:
        [loaded] = load_file(path)
        assert repr(by_id[loaded.rule_id]) == repr(loaded)


def test_prepared_trees_equal_the_grammar_s_with_positions() -> None:
    queries = {rule.query for _, rule in generated.RULES}
    assert set(ASTS) == queries
    for query, tree in ASTS.items():
        assert repr(tree) == repr(parse_text(query))  # repr shows `pos`, which == ignores
        assert parse(query) is tree


def test_an_edited_rule_file_is_parsed_not_taken_from_the_stale_form(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_cache: None) -> None:
    folder = tmp_path / "builtin"
    shutil.copytree(builtin.BUILTIN_DIR, folder)
    seed = folder / "credential_path_access.toml"
    text = seed.read_text("utf-8")
    old_name = generated.RULES[0][1].name
    seed.write_text(text.replace(f'name = "{old_name}"', 'name = "Edited"', 1), "utf-8")
    (folder / "extra.toml").write_text(
        text.replace('rule_id = "5f0fff18-f340-444b-9a98-c49ade766ff4"', 'rule_id = "extra-1"', 1)
        .replace(f'name = "{old_name}"', 'name = "Extra"', 1), "utf-8")
    monkeypatch.setattr(builtin, "BUILTIN_DIR", str(folder))
    rules = builtin.builtin_rules()
    assert [r.name for r in rules] == ["Edited", "Credential File Access by Any Spelling (hardened)",
                                       "Extra"]
    assert rules[0].source == str(seed)
    assert prepared.main(["--check"]) == 1  # and the generator says so


def test_source_of_writes_what_evaluates_back() -> None:
    from credwatch.kql import ast

    namespace = {n: getattr(ast, n) for n in dir(ast)}
    for tree in ASTS.values():
        assert repr(eval(prepared.source_of(tree), namespace)) == repr(tree)
    with pytest.raises(TypeError, match="cannot write a set"):
        prepared.source_of({1})
