"""graphql-core's executor with a short path for the plain reads of `schema.plain_fields`.

graphql-core completes every field the same general way: a `Path`, a `GraphQLResolveInfo`,
the arguments, the resolver, two awaitable checks, then `complete_value`'s dispatch on the type
(non-null, list, leaf, object), a dozen calls per field. On a large page most fields are plain
reads of their root (a column, an edge's node, a connection's edges), and that machinery costs
several times the read itself (issue 12: ~3,000 fields per 100-video page).

`StudioExecutor.execute_fields` plans each selection set once per operation and then:

* reads a plain field of a leaf type (scalar or enum) and coerces its value in place;
* reads a plain field of an object type, or of a list of non-null objects, and goes straight
  to the sub-selection of each object.

Everything else takes graphql-core's own path: resolvers with arguments or loaders,
``__typename``, introspection, abstract types. So does every value the short path would have to
judge: a null where the type forbids one, a value the type does not coerce, an object of
another type, a resolver that raises. graphql-core then resolves the field again (a plain read
answers the same twice) and reports exactly what it always has. Errors below a short-path
object are handled as graphql-core's `execute_field` and `complete_list_item_value` handle them
(`handle_field_error`, with the same paths). Field middleware and incremental delivery
(``@defer``/``@stream``, not in this schema) turn the short path off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.executor import to_nodes
from graphql.execution.incremental.incremental_executor import DeliveryGroupMap
from graphql.execution.values import get_argument_values
from graphql.pyutils import AwaitableOrValue, Path, Undefined, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import CustomGraphQLEnumType

from schema.plain_fields import Resolve, is_context_only, is_read

# How a field is completed.
_GRAPHQL_CORE = 0  # graphql-core's `execute_field`
_LEAF = 1  # a plain read of a scalar or enum
_OBJECT = 2  # a plain read of an object
_OBJECTS = 3  # a plain read of a list of non-null objects
_LOADED = 4  # a `CONTEXT_ONLY` resolver (a loader), its arguments coerced once


class _Step:
    """How one field of a selection set is completed (`StudioExecutor._plan`)."""

    __slots__ = (
        "arguments",
        "coerce",
        "details",
        "field_def",
        "item_type",
        "kind",
        "name",
        "nullable",
        "object_type",
        "resolve",
        "return_type",
        "subfields",
    )

    def __init__(
        self,
        name: str,
        details: FieldDetailsList,
        kind: int = _GRAPHQL_CORE,
        resolve: Resolve | None = None,
        return_type: GraphQLOutputType | None = None,
        *,
        coerce: Callable[[Any], Any] | None = None,
        object_type: GraphQLObjectType | None = None,
        item_type: GraphQLOutputType | None = None,
        field_def: GraphQLField | None = None,
        arguments: dict[str, Any] | None = None,
    ) -> None:
        self.name = name  # the response name
        self.details = details
        self.kind = kind
        self.resolve = resolve or _unread
        self.return_type = return_type
        self.nullable = not isinstance(return_type, GraphQLNonNull)
        self.coerce = coerce or _unread
        self.object_type = object_type
        self.item_type = item_type
        self.field_def = field_def
        self.arguments = arguments or {}
        # The object's (or items') grouped sub-fields, once collected (`_complete_read`).
        self.subfields: GroupedFieldSet | None = None


class StudioExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor (``Schema(execution_context_class=...)``) with the short path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        self._short = (manager is None or not manager.middlewares) and not any(
            self.schema.get_directive(name) for name in ("defer", "stream")
        )
        self._plans: dict[tuple[GraphQLObjectType, int], tuple[GroupedFieldSet, list[_Step]]] = {}

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: DeliveryGroupMap | None,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if position_context is not None or not self._short:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        awaitable_fields: list[str] = []
        is_awaitable = self.is_awaitable
        planned = self._plans.get((parent_type, id(grouped_field_set)))
        steps = self._plan(parent_type, grouped_field_set) if planned is None else planned[1]
        try:
            for step in steps:
                name = step.name
                kind = step.kind
                if kind == _LEAF:
                    # Inline: most fields are these. A value not taken here goes on below.
                    try:
                        value = step.resolve(source_value, None)
                        if value is None:
                            if step.nullable:
                                results[name] = None
                                continue
                        elif not isinstance(value, Exception):  # graphql-core raises one
                            value = step.coerce(value)
                            if value is not None and value is not Undefined:
                                results[name] = value
                                continue
                    except Exception:  # noqa: S110  # graphql-core resolves it again and reports it
                        pass
                elif kind == _LOADED:
                    value = self._execute_loaded(step, source_value, path, parent_type)
                    results[name] = value
                    if is_awaitable(value):
                        awaitable_fields.append(name)
                    continue
                elif kind != _GRAPHQL_CORE:
                    value = self._complete_read(step, source_value, path, parent_type)
                    if value is not _UNREAD:
                        results[name] = value
                        if is_awaitable(value):
                            awaitable_fields.append(name)
                        continue
                value = self.execute_field(
                    parent_type,
                    source_value,
                    step.details,
                    Path(path, name, parent_type.name),
                    None,
                )
                if value is not Undefined:
                    results[name] = value
                    if is_awaitable(value):
                        awaitable_fields.append(name)
        except Exception:
            if awaitable_fields:  # settle the other fields' work, as graphql-core does
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return _gather_fields(results, awaitable_fields)

    def _plan(
        self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
    ) -> list[_Step]:
        # graphql-core memoizes a selection set's grouped fields per field group: the same
        # object for every item of a list (kept alive here, like graphql-core keeps its key).
        key = (parent_type, id(grouped_field_set))
        planned = self._plans.get(key)
        if planned is None:
            steps = [
                self._step(parent_type, name, details)
                for name, details in grouped_field_set.items()
            ]
            planned = self._plans[key] = (grouped_field_set, steps)
        return planned[1]

    def _step(self, parent_type: GraphQLObjectType, name: str, details: FieldDetailsList) -> _Step:
        field_def = self.schema.get_field(parent_type, details[0].node.name.value)
        if field_def is None or field_def.resolve is None:
            return _Step(name, details)
        if is_context_only(field_def) and details[0].fragment_variable_values is None:
            try:  # the same for every object of the list: one operation's variables
                arguments = get_argument_values(
                    field_def, details[0].node, self.variable_values, None, self.hide_suggestions
                )
            except Exception:  # graphql-core reports it for each object, as always
                return _Step(name, details)
            loaded = field_def.type
            inner = loaded.of_type if isinstance(loaded, GraphQLNonNull) else loaded
            return _Step(
                name,
                details,
                _LOADED,
                field_def.resolve,
                loaded,
                object_type=inner if isinstance(inner, GraphQLObjectType) else None,
                field_def=field_def,
                arguments=arguments,
            )
        if field_def.args or not is_read(field_def):
            return _Step(name, details)
        return_type = field_def.type
        inner = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
        resolve = field_def.resolve
        if is_leaf_type(inner):
            return _Step(name, details, _LEAF, resolve, return_type, coerce=_coercer(inner))
        if isinstance(inner, GraphQLObjectType):
            return _Step(name, details, _OBJECT, resolve, return_type, object_type=inner)
        if (
            isinstance(inner, GraphQLList)
            and isinstance(inner.of_type, GraphQLNonNull)
            and isinstance(inner.of_type.of_type, GraphQLObjectType)
        ):
            item_type = inner.of_type
            return _Step(
                name,
                details,
                _OBJECTS,
                resolve,
                return_type,
                object_type=item_type.of_type,
                item_type=item_type,
            )
        return _Step(name, details)

    def _execute_loaded(
        self, step: _Step, source: Any, path: Path | None, parent_type: GraphQLObjectType
    ) -> Any:
        # graphql-core's `execute_field`, with the arguments coerced once per operation.
        field_def, return_type, details = step.field_def, step.return_type, step.details
        if field_def is None or return_type is None:  # not a _LOADED step
            return Undefined
        field_path = Path(path, step.name, parent_type.name)
        info = self.build_resolve_info(field_def, to_nodes(details), parent_type, field_path)
        try:
            result = step.resolve(source, info, **step.arguments)
            if self.is_awaitable(result):
                return self._complete_loaded(step, info, field_path, result)
            completed = self.complete_value(return_type, details, info, field_path, result, None)
            if self.is_awaitable(completed):
                return self._await_field(completed, return_type, details, field_path)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, details, field_path)
            return None
        return completed

    async def _complete_loaded(
        self, step: _Step, info: GraphQLResolveInfo[Any], path: Path, result: Awaitable[Any]
    ) -> Any:
        # graphql-core's `complete_awaitable_value`; an object (a connection, a relation) goes
        # straight to its sub-selection, anything else through `complete_value`.
        return_type, details = step.return_type, step.details
        if return_type is None:  # not a _LOADED step
            return None
        try:
            resolved = await (
                result if self.abort_signal is None else self.with_abort_signal(result)
            )
            completed = self._complete_object(step, resolved, path)
            if completed is _UNREAD:
                completed = self.complete_value(return_type, details, info, path, resolved, None)
            if self.is_awaitable(completed):
                completed = await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, details, path)
            completed = None
        return completed

    def _complete_object(self, step: _Step, value: Any, path: Path) -> Any:
        """The sub-selection of ``value``, an object of the step's object type; `_UNREAD` for
        anything graphql-core must judge (errors raise, as in graphql-core)."""
        object_type = step.object_type
        if object_type is None:
            return _UNREAD
        if value is None:
            return None if step.nullable else _UNREAD
        is_type_of: Callable[[Any, Any], Any] | None = object_type.is_type_of
        if is_type_of is not None and is_type_of(value, None) is not True:
            return _UNREAD
        grouped_field_set = self._subfields(step, object_type)
        if grouped_field_set is None:
            return _UNREAD
        return self.execute_fields(object_type, value, path, grouped_field_set, None)

    def _subfields(self, step: _Step, object_type: GraphQLObjectType) -> GroupedFieldSet | None:
        """The step's grouped sub-fields; None when they defer some (graphql-core's path)."""
        grouped_field_set = step.subfields
        if grouped_field_set is None:
            grouped_field_set, new_defer_usages, _ = self.collect_subfields(
                object_type, step.details
            )
            if new_defer_usages:
                return None
            step.subfields = grouped_field_set
        return grouped_field_set

    def _complete_read(
        self, step: _Step, source: Any, path: Path | None, parent_type: GraphQLObjectType
    ) -> Any:
        """An object's (or a list of objects') completed value; `_UNREAD` for any value
        graphql-core must judge."""
        object_type, return_type = step.object_type, step.return_type
        if object_type is None or return_type is None:
            return _UNREAD
        try:
            value = step.resolve(source, None)
        except Exception:  # graphql-core resolves it again and reports the error
            return _UNREAD
        if value is None:
            return None if step.nullable else _UNREAD
        # Strawberry's `is_type_of` reads nothing of ``info``.
        is_type_of: Callable[[Any, Any], Any] | None = object_type.is_type_of
        kind, details = step.kind, step.details
        if kind == _OBJECT:
            if is_type_of is not None and is_type_of(value, None) is not True:
                return _UNREAD
        elif type(value) is not list or (
            is_type_of is not None
            and not all(item is not None and is_type_of(item, None) is True for item in value)
        ):
            return _UNREAD
        grouped_field_set = self._subfields(step, object_type)
        if grouped_field_set is None:
            return _UNREAD
        field_path = Path(path, step.name, parent_type.name)
        completed: AwaitableOrValue[Any]
        try:
            if kind == _OBJECT:
                completed = self.execute_fields(
                    object_type, value, field_path, grouped_field_set, None
                )
            else:
                completed = self._complete_objects(
                    step.item_type or object_type,
                    object_type,
                    details,
                    field_path,
                    value,
                    grouped_field_set,
                )
        except Exception as raw_error:  # as graphql-core's `execute_field`
            self.handle_field_error(raw_error, return_type, details, field_path)
            return None
        if self.is_awaitable(completed):
            return self._await_field(completed, return_type, details, field_path)
        return completed

    def _complete_objects(
        self,
        item_type: GraphQLOutputType,
        object_type: GraphQLObjectType,
        details: FieldDetailsList,
        path: Path,
        items: list[Any],
        grouped_field_set: GroupedFieldSet,
    ) -> AwaitableOrValue[list[Any]]:
        # graphql-core's `complete_iterable_value` and `complete_list_item_value`, for items
        # that are objects of ``object_type``.
        execute_fields = self.execute_fields
        is_awaitable = self.is_awaitable
        completed: list[Any] = []
        awaitable_indices: list[int] = []
        try:
            for index, item in enumerate(items):
                item_path = Path(path, index, None)
                try:
                    value = execute_fields(object_type, item, item_path, grouped_field_set, None)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, item_type, details, item_path)
                    value = None
                else:
                    if is_awaitable(value):
                        value = self._await_field(value, item_type, details, item_path)
                        awaitable_indices.append(index)
                completed.append(value)
        except Exception:
            if awaitable_indices:
                self.settle_in_background([completed[index] for index in awaitable_indices])
            raise
        if not awaitable_indices:
            return completed
        return _gather_items(completed, awaitable_indices)

    async def _await_field(
        self,
        completed: Awaitable[Any],
        return_type: GraphQLOutputType,
        details: FieldDetailsList,
        path: Path,
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, details, path)
            return None


class _Unread:
    """The value the short path leaves to graphql-core."""


_UNREAD: Any = _Unread()


def _unread(*_args: Any) -> Any:
    return _UNREAD


@lru_cache(maxsize=256)  # per type, not per operation (a schema has a few dozen leaf types)
def _coercer(leaf: GraphQLLeafType) -> Callable[[Any], Any]:
    """``leaf.coerce_output_value``, with Strawberry's enums looked up instead of searched."""
    if not isinstance(leaf, CustomGraphQLEnumType):
        return leaf.coerce_output_value
    # Strawberry's enum answers the first name whose value equals the member's value.
    wrapped_cls: type[Any] = leaf.wrapped_cls
    names: dict[Any, str] = {}
    member: Any
    for member in wrapped_cls:
        for name, value in leaf.values.items():
            if member.value == value.value:
                names[member] = name
                break
    coerce_output_value = leaf.coerce_output_value

    def coerce(value: Any) -> Any:
        if type(value) is wrapped_cls:
            name = names.get(value)
            if name is not None:
                return name
        return coerce_output_value(value)

    return coerce


async def _gather_fields(results: dict[str, Any], awaitable_fields: list[str]) -> dict[str, Any]:
    # As graphql-core's `execute_fields`.
    if len(awaitable_fields) == 1:
        field = awaitable_fields[0]
        results[field] = await results[field]
    else:
        awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
        results.update(zip(awaitable_fields, awaited, strict=True))
    return results


async def _gather_items(completed: list[Any], awaitable_indices: list[int]) -> list[Any]:
    # As graphql-core's `complete_iterable_value`.
    if len(awaitable_indices) == 1:
        index = awaitable_indices[0]
        completed[index] = await completed[index]
    else:
        awaited = await gather_with_cancel(*(completed[index] for index in awaitable_indices))
        for index, value in zip(awaitable_indices, awaited, strict=True):
            completed[index] = value
    return completed
