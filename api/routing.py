"""The route class of every API router: who is calling is settled before the body is read,
and path, query, form and JSON values pass api.hygiene before FastAPI validates them.

A dependency made with `before_body` (API keys in api.deps, the dashboard session in
api.admin) is run by GuardedRoute ahead of the body, once per request: FastAPI's own call of
it later returns the memoised result. So an anonymous or throttled caller is answered from
its headers alone, whatever body it sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import FormData

from pushfan.api import hygiene

T = TypeVar("T")
_MEMO = "pushfan.before_body"


def before_body(
    dependency: Callable[[Request], Awaitable[T]], key: str
) -> Callable[[Request], Awaitable[T]]:
    """`dependency` as a dependency that GuardedRoute runs before the body, once a request.

    `key` names what it checks (e.g. "api-key:alerts:send"): the result is memoised under
    it, because FastAPI may build a route's dependencies more than once (each evaluation
    of a string annotation calls `require(...)` again), so the function is no identity.
    """

    async def once(request: Request) -> T:
        memo: dict[str, Any] = request.scope.setdefault(_MEMO, {})
        if key not in memo:
            memo[key] = await dependency(request)
        result: T = memo[key]
        return result

    once.before_body = key  # type: ignore[attr-defined]  # found by GuardedRoute
    return once


def _gates(dependant: Dependant) -> Iterator[tuple[str, Callable[[Request], Awaitable[object]]]]:
    for dependency in dependant.dependencies:
        yield from _gates(dependency)
        key = getattr(dependency.call, "before_body", None)
        if key is not None:
            yield key, dependency.call  # type: ignore[misc]


class CheckedRequest(Request):
    """A request whose JSON body and form values are parsed through api.hygiene."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = hygiene.parse_json(await self.body())
        return self._json

    async def _get_form(
        self,
        *,
        max_files: int | float = 1000,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> FormData:
        form = await super()._get_form(
            max_files=max_files, max_fields=max_fields, max_part_size=max_part_size
        )
        hygiene.check_strings(
            (("form", name), value) for name, value in form.multi_items() if isinstance(value, str)
        )
        return form


class GuardedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        gates = list(dict(_gates(self.dependant)).values())

        async def guarded(request: Request) -> Response:
            hygiene.check_strings(
                [
                    *((("path", k), str(v)) for k, v in request.path_params.items()),
                    *((("query", k), k + v) for k, v in request.query_params.multi_items()),
                ]
            )
            for gate in gates:
                await gate(request)
            return await handle(CheckedRequest(request.scope, request.receive))

        return guarded
