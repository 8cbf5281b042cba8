"""clm for asyncio: ``clm.aio.Clm`` has every operation of ``clm.Clm`` as
a coroutine, with the same arguments, records and errors.

    import clm.aio

    async with await clm.aio.Clm.open(sqlite_dir="./clm-data",
                                      master_key_file="./master.key",
                                      create_master_key=True) as c:
        system = await c.system_actor()
        users = await c.list_users(system)

Each call runs on clm's own runtime (the one the synchronous client blocks
on) and completes an asyncio future of the calling loop, so many calls run
at once without threads in Python. Progress callbacks run on the loop.
Cancelling the awaiting task abandons the result; the operation itself runs
to its end (clm's operations are transactions, not interruptible).
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Callable

from . import _finish, _native, _open_options, _prepare
from ._operations import OPERATIONS, AsyncOperations
from ._record import wrap

__all__ = ["Clm"]


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # cancelled while clm worked
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _completion(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> Callable[[bool, Any], None]:
    """What the native side calls (from clm's runtime thread) with
    (True, result) or (False, exception)."""

    def done(ok: bool, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(_settle, future, ok, value)
        except RuntimeError:
            pass  # the loop is closed: nobody waits for the result any more

    return done


async def _run(start: Callable[[Callable[[bool, Any], None]], None]) -> Any:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    start(_completion(loop, future))
    return await future


class Clm(AsyncOperations):
    """An open clm for asyncio. ``await clm.aio.Clm.open(...)`` opens it;
    ``await close()`` (or leaving an ``async with`` block) closes it."""

    __slots__ = ("_handle",)

    def __init__(self, handle: Any) -> None:
        if not isinstance(handle, _native.Handle):
            raise TypeError("use await clm.aio.Clm.open(...) to open clm")
        self._handle = handle

    @classmethod
    async def _open(cls, options: dict[str, Any]) -> Clm:
        checked = _open_options(options)
        handle = await _run(lambda done: _native.Handle.open_async(checked, done))
        return cls(handle)

    async def close(self) -> None:
        """Closes both databases; later calls raise ``clm.Closed``. Idempotent."""
        await _run(self._handle.close_async)

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return bool(self._handle.closed)

    async def __aenter__(self) -> Clm:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<clm.aio.Clm {'closed' if self.closed else 'open'}>"

    async def _call(self, name: str, actor: Any, args: dict[str, Any], progress: Any = None) -> Any:
        given = _prepare(name, actor, args, progress)
        report = None
        if progress is not None:
            loop = asyncio.get_running_loop()
            spec = OPERATIONS[name].progress

            def report(value: Any) -> None:
                # From clm's runtime thread: the callback runs on the loop.
                loop.call_soon_threadsafe(lambda: progress(wrap(spec, value)))

        result = await _run(lambda done: self._handle.call_async(name, actor, given, report, done))
        return _finish(name, result)
