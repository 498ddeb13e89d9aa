"""Statements built once (services/platform/statements.py): built on the first ask, kept while used, the least
recently used dropped past the limit."""

from __future__ import annotations

from services.platform import statements


def test_a_statement_is_built_once_and_the_least_recently_used_goes_first(monkeypatch):
    monkeypatch.setattr(statements, "MAX_BUILT", 3)
    monkeypatch.setattr(statements, "_built", type(statements._built)())
    built: list[str] = []

    def ask(key: str) -> object:
        def build() -> object:
            built.append(key)
            return object()

        return statements.built_once(("test", key), build)

    first = ask("a")
    assert ask("a") is first and built == ["a"]
    ask("b"), ask("c")
    ask("a")  # used again: now the most recent
    ask("d")  # past the limit: "b", the least recently used, goes
    assert ask("a") is first
    ask("b")
    assert built == ["a", "b", "c", "d", "b"]
