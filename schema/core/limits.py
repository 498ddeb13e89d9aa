"""What one GraphQL request may ask for: depth, aliases, tokens, and a cost budget by kind of viewer.

Cost: every field costs 1; a field taking `first` multiplies what is below it by `first` (its default when
not given); any other list multiplies by LIST_GUESS (a connection's `edges` are already counted by `first`).
Each limit refuses with its own `extensions.code` before anything runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    Visitor,
    get_named_type,
    parse,
    validate,
    visit,
)
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from resolvers.context import Viewer
from resolvers.state import Limits

LIST_GUESS = 10


def _unwrap_is_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


class _Walker:
    """Depth and cost of an operation, following fragments."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any]):
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def _fields(
        self, selection_set: SelectionSetNode | None, seen: frozenset[str] = frozenset()
    ) -> Iterator[FieldNode]:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                yield from self._fields(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    yield from self._fields(fragment.selection_set, seen | {selection.name.value})

    def depth(self, selection_set: SelectionSetNode | None) -> int:
        return max((1 + self.depth(f.selection_set) for f in self._fields(selection_set)), default=0)

    def _first(self, field: FieldNode, default: Any) -> int | None:
        for argument in field.arguments or ():
            if argument.name.value == "first":
                value = argument.value
                if isinstance(value, IntValueNode):
                    return int(value.value)
                if isinstance(value, VariableNode):
                    given = self.variables.get(value.name.value)
                    return int(given) if isinstance(given, int) else None
        return default if isinstance(default, int) else None

    def cost(self, selection_set: SelectionSetNode | None, parent: Any) -> int:
        total = 0
        owner = get_named_type(parent)
        for field in self._fields(selection_set):
            definition = owner.fields.get(field.name.value) if isinstance(owner, GraphQLObjectType) else None
            if definition is None:  # __typename, or an interface's field: count it, nothing below
                total += 1 + (self.cost(field.selection_set, parent) if field.selection_set else 0)
                continue
            multiplier = 1
            if "first" in definition.args:
                multiplier = self._first(field, definition.args["first"].default_value) or LIST_GUESS
            elif _unwrap_is_list(definition.type) and field.name.value != "edges":
                multiplier = LIST_GUESS
            below = self.cost(field.selection_set, definition.type) if field.selection_set else 0
            total += 1 + multiplier * below
        return total


def check(
    document: DocumentNode, schema: GraphQLSchema, limits: Limits, budget: int, variables: dict[str, Any]
) -> list[GraphQLError]:
    """The limits' verdict on a valid document: no errors, or one per limit broken."""
    errors: list[GraphQLError] = []
    aliases = sum(1 for d in document.definitions for _ in _aliases(d))
    if aliases > limits.max_aliases:
        errors.append(
            GraphQLError(
                f"{aliases} aliases; at most {limits.max_aliases} are allowed.", extensions={"code": "TOO_MANY_ALIASES"}
            )
        )
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    walker = _Walker(schema, fragments, variables)
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        depth = walker.depth(definition.selection_set)
        if depth > limits.max_depth:
            errors.append(
                GraphQLError(
                    f"The query is {depth} levels deep; at most {limits.max_depth}.",
                    extensions={"code": "QUERY_TOO_DEEP"},
                )
            )
            continue
        cost = walker.cost(definition.selection_set, schema.get_root_type(definition.operation))
        if cost > budget:
            extensions = {"code": "QUERY_TOO_COSTLY", "cost": cost, "budget": budget}
            errors.append(GraphQLError(f"The query would cost {cost}; your budget is {budget}.", extensions=extensions))
    return errors


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class _NulFinder(Visitor):
    found = False

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if "\x00" in node.value:
            self.found = True


# A document's verdict, by the document's identity (parse_cached hands out one object per text; hashing one walks
# it). The entry holds the document, so its id is not reused while the entry lives.
_NUL_IN_DOCUMENT: dict[int, tuple[DocumentNode, bool]] = {}


def nul_in(document: DocumentNode, variables: dict[str, Any]) -> bool:
    """Text with a NUL character: no database column takes it (PostgreSQL refuses), so no input may carry one. A
    document is walked once (graphql-core's visitor costs more than a small query's execution of a field or two)."""
    entry = _NUL_IN_DOCUMENT.get(id(document))
    if entry is None or entry[0] is not document:
        if len(_NUL_IN_DOCUMENT) >= 4096:
            _NUL_IN_DOCUMENT.clear()
        finder = _NulFinder()
        visit(document, finder)
        entry = _NUL_IN_DOCUMENT[id(document)] = (document, finder.found)
    return entry[1] or _has_nul(variables)


def _aliases(node: Any) -> Iterator[FieldNode]:
    selection_set = getattr(node, "selection_set", None)
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode) and selection.alias is not None:
            yield selection
        yield from _aliases(selection)


class QueryLimits(SchemaExtension):
    """Caps tokens while parsing; after the (cached) validation, checks depth, aliases and the viewer's budget.

    It must come after CachedValidation in the schema's extensions: it reads the verdict that one leaves.
    """

    def _limits(self) -> Limits:
        limits: Limits | None = getattr(getattr(self.execution_context.context, "app", None), "limits", None)
        return limits or Limits()

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self._limits().max_tokens
        yield

    def on_validate(self) -> Iterator[None]:
        ec = self.execution_context
        if ec.pre_execution_errors == [] and ec.graphql_document is not None:
            limits = self._limits()
            viewer: Viewer = getattr(ec.context, "viewer", None) or Viewer()
            broken = check(ec.graphql_document, ec.schema._schema, limits, limits.budget(viewer), ec.variables or {})
            if nul_in(ec.graphql_document, ec.variables or {}):
                broken.append(
                    GraphQLError("Text may not contain NUL characters.", extensions={"code": "BAD_USER_INPUT"})
                )
            if broken:
                ec.pre_execution_errors = broken
        yield


@lru_cache(maxsize=4096)
def parse_cached(query: str, max_tokens: int) -> DocumentNode:
    """A document parsed once: shared by CachedParse and the HTTP view's choice of operation."""
    return parse(query, max_tokens=max_tokens)


class CachedParse(SchemaExtension):
    """A document seen before is not parsed again. A document that fails to parse is left to strawberry, which
    parses it once more and reports the error the usual way (strawberry's ParserCache swallows its code)."""

    def on_parse(self) -> Iterator[None]:
        ec = self.execution_context
        if ec.query and ec.graphql_document is None:
            with suppress(GraphQLError):
                ec.graphql_document = parse_cached(ec.query, int(ec.parse_options.get("max_tokens") or 10_000))
        yield


@lru_cache(maxsize=4096)
def _validate(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...], hide_suggestions: bool
) -> list[GraphQLError]:
    # The rules strawberry's own validation adds to the execution context's (its validate_document does the same).
    return validate(
        schema, document, (*rules, MaybeNullValidationRule, OneOfInputValidationRule), hide_suggestions=hide_suggestions
    )


class CachedValidation(SchemaExtension):
    """A document validated before is not validated again (as strawberry's ValidationCache), and with
    `hide_suggestions` (production) no error names what the caller might have meant: graphql-core's own switch, so
    fields, arguments, types, enum values and input fields all stay unnamed."""

    def __init__(self, *, hide_suggestions: bool = False) -> None:
        super().__init__()
        self.hide_suggestions = hide_suggestions

    def on_validate(self) -> Iterator[None]:
        ec = self.execution_context
        assert ec.graphql_document is not None
        ec.pre_execution_errors = _validate(
            ec.schema._schema, ec.graphql_document, tuple(ec.validation_rules), self.hide_suggestions
        )
        yield


class QuietExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor with graphql-core's `hide_suggestions` on: a variable's bad enum value or unknown input
    field is refused without naming the right one (validation covers the document's own text)."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        return super().build(*args, **{**kwargs, "hide_suggestions": True})
