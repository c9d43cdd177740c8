"""Tests for aiologic: every primitive in every world, and across worlds.

A *world* is one way of running code: ``threading``, ``gevent`` and
``eventlet`` (the green worlds) and ``asyncio``, ``trio``, ``anyio-asyncio``
and ``anyio-trio`` (the async worlds).

Each test body is written once, as ``async def body(w, ...)``, where ``w`` is
an adapter for the world the body runs in (``w.acquire(lock)``, ``w.hold(lock)``,
``w.wait(event)``, ``w.spawn(fn)``, ``w.sleep(s)``...). In a green world the
adapter's coroutines never suspend: they call the ``green_*`` face, which
blocks the thread or switches to the hub, and ``drive()`` runs the body
synchronously. In an async world the adapter awaits the ``async_*`` face.

Every world runs in a fresh OS thread of its own (``Actor``): gevent and
eventlet create a private hub there and nothing is ever monkey-patched, so no
backend leaks into another test. Every join has a deadline, so a bug fails the
test with the stack of the stuck thread instead of hanging the run. Tests wait
on observable state (``lock.waiting == n``) with ``wait_until``; sleeps never
decide the order of events.

Sections follow the module: harness, lowlevel and import, events and flags,
resource guard, locks (generic suite over every lock-like, then Lock and RLock),
semaphores, conditions, queues, cross-world tests, the announced example.
"""

from __future__ import annotations

import functools
import gc
import inspect
import itertools
import json
import math
import os
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Coroutine

import pytest

import aiologic

HERE = os.path.dirname(os.path.abspath(__file__))

DEADLINE = 20.0  # the longest any join or wait_until may take, in seconds
SHORT = 0.05  # a timeout that is meant to expire

GREEN_WORLDS = ("threading", "gevent", "eventlet")
ASYNC_WORLDS = ("asyncio", "trio", "anyio-asyncio", "anyio-trio")
WORLDS = GREEN_WORLDS + ASYNC_WORLDS
# Worlds whose tasks switch only at explicit points, and can be cancelled.
COOPERATIVE_WORLDS = tuple(name for name in WORLDS if name != "threading")

_REQUIRES = {
    "threading": (),
    "gevent": ("gevent",),
    "eventlet": ("eventlet",),
    "asyncio": (),
    "trio": ("trio",),
    "anyio-asyncio": ("anyio",),
    "anyio-trio": ("anyio", "trio"),
}

Body = Callable[..., Coroutine[Any, Any, Any]]


# ============================================================================
# Harness: outcomes, driving green bodies, waiting on state
# ============================================================================


def _import(name: str) -> Any:
    """Import a backend or skip the test when it is not installed."""
    with warnings.catch_warnings():
        # eventlet announces its own deprecation on import.
        warnings.simplefilter("ignore", DeprecationWarning)
        return pytest.importorskip(name)


def _require(world: str) -> None:
    for module in _REQUIRES[world]:
        _import(module)


class _CancelledMarker:
    def __repr__(self) -> str:
        return "CANCELLED"


CANCELLED: Any = _CancelledMarker()  # what join() returns for a cancelled task


class Outcome:
    """The value or the exception of a call made in another task or thread."""

    __slots__ = ("error", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None

    def capture(
        self,
        cancelled: tuple[type[BaseException], ...],
        fn: Callable[..., Any],
        *args: Any,
    ) -> None:
        try:
            self.value = fn(*args)
        except cancelled:
            self.value = CANCELLED
        except BaseException as exc:  # pytest's outcomes are BaseExceptions too
            self.error = exc

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


def drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a green test body to completion: its awaits never suspend."""
    try:
        coro.send(None)
    except StopIteration as exc:
        return exc.value
    coro.close()
    raise RuntimeError("a green test body awaited something that suspends")


def _drive_body(w: World, fn: Body, args: tuple[Any, ...]) -> Any:
    return drive(fn(w, *args))


async def outcome_of(awaitable: Awaitable[Any]) -> Any:
    """The value of `awaitable`, or the Exception it raised."""
    try:
        return await awaitable
    except Exception as exc:
        return exc


def _stack_of(thread: threading.Thread) -> str:
    frame = sys._current_frames().get(thread.ident or -1)
    return "".join(traceback.format_stack(frame)) if frame else "(no frame)"


def _describe(predicate: Callable[[], object]) -> str:
    try:
        return inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return repr(predicate)


def wait_until(
    predicate: Callable[[], object],
    timeout: float = DEADLINE,
    actors: list[Actor] | tuple[Actor, ...] = (),
) -> None:
    """Block the calling (plain) thread until predicate() is true.

    The error of any of `actors` that has already failed is raised instead.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        for actor in actors:
            if not actor.thread.is_alive():
                actor.outcome.unwrap()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {_describe(predicate)}")
        time.sleep(0.001)


# ============================================================================
# Harness: worlds
# ============================================================================


class World:
    """Adapter that runs the operations of a test body in one world."""

    name: str
    library: str  # what current_*_library() reports there
    green: bool
    cooperative = True
    prefix: str  # "green_" or "async_"
    cancelled: tuple[type[BaseException], ...] = ()

    # -- calls on primitives -------------------------------------------------

    async def call(self, obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def acquire(self, obj: Any, **kwargs: Any) -> bool:
        return await self.call(obj, "acquire", **kwargs)

    def release(self, obj: Any, **kwargs: Any) -> None:
        getattr(obj, self.prefix + "release")(**kwargs)

    async def get(self, queue: Any, **kwargs: Any) -> Any:
        return await self.call(queue, "get", **kwargs)

    async def put(self, queue: Any, item: Any, **kwargs: Any) -> Any:
        return await self.call(queue, "put", item, **kwargs)

    async def query(self, obj: Any, name: str) -> Any:
        """green_owned()/async_owned(), green_count()/async_count()..."""
        result = getattr(obj, self.prefix + name)()
        if inspect.isawaitable(result):
            result = await result
        return result

    # -- tasks and time --------------------------------------------------------

    async def sleep(self, seconds: float) -> None:
        raise NotImplementedError

    def spawn(self, fn: Body, *args: Any) -> Task:
        """Start fn(w, *args) as a new task of this world."""
        raise NotImplementedError

    def identity(self) -> tuple[str, int]:
        """The (library, id) identity of the current task, as API.md defines it."""
        raise NotImplementedError

    def move_on_after(self, seconds: float) -> Any:
        """A sync context manager that cancels its body after `seconds`."""
        raise NotImplementedError

    async def wait_until(
        self, predicate: Callable[[], object], timeout: float = DEADLINE
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: timed out waiting until {_describe(predicate)}"
                )
            await self.sleep(0.001)

    async def without_switching(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Await fn() and check, in a cooperative world, that no other task ran."""
        ran: list[int] = []

        async def probe(w: World) -> None:
            ran.append(1)

        task = self.spawn(probe)
        result = await fn()
        if self.cooperative:
            assert not ran, f"{self.name}: the call switched to another task"
        await task.join()
        return result


class Task:
    """A task spawned by World.spawn()."""

    async def join(self) -> Any:
        """Wait (with the deadline) and return the result, or CANCELLED."""
        raise NotImplementedError

    def cancel(self, timeout: bool = False) -> None:
        """Cancel the task; green worlds throw Timeout instead of GreenletExit
        when `timeout` is true."""
        raise NotImplementedError


# -- green worlds -------------------------------------------------------------


class _GreenHold:
    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    async def __aenter__(self) -> Any:
        return self.obj.__enter__()

    async def __aexit__(self, *exc_info: Any) -> Any:
        return self.obj.__exit__(*exc_info)


class GreenWorld(World):
    green = True
    prefix = "green_"

    async def call(self, obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(obj, "green_" + name)(*args, **kwargs)

    def hold(self, obj: Any) -> Any:
        """`with obj` as an async context manager."""
        return _GreenHold(obj)

    async def lock(self, obj: Any) -> None:
        obj.__enter__()

    async def unlock(self, obj: Any) -> None:
        obj.__exit__(None, None, None)

    async def wait(self, obj: Any, timeout: float | None = None) -> Any:
        return obj.wait() if timeout is None else obj.wait(timeout=timeout)

    async def wait_for(
        self,
        cv: Any,
        predicate: Callable[[], Any],
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        return cv.wait_for(predicate, timeout=timeout, **kwargs)

    async def sleep(self, seconds: float) -> None:
        self._sleep(seconds)

    def _sleep(self, seconds: float) -> None:
        raise NotImplementedError


class ThreadingWorld(GreenWorld):
    name = library = "threading"
    cooperative = False

    def _sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def spawn(self, fn: Body, *args: Any) -> Task:
        return _ThreadTask(self, fn, args)

    def identity(self) -> tuple[str, int]:
        return ("threading", threading.get_ident())

    @classmethod
    def run(cls, body: Body, args: tuple[Any, ...]) -> Any:
        return _drive_body(cls(), body, args)


class _ThreadTask(Task):
    def __init__(self, w: World, fn: Body, args: tuple[Any, ...]) -> None:
        self.outcome = Outcome()
        self.thread = threading.Thread(
            target=self.outcome.capture,
            args=((), _drive_body, w, fn, args),
            daemon=True,
        )
        self.thread.start()

    async def join(self) -> Any:
        self.thread.join(DEADLINE)
        if self.thread.is_alive():
            raise AssertionError(
                f"a thread task is still running:\n{_stack_of(self.thread)}"
            )
        return self.outcome.unwrap()

    def cancel(self, timeout: bool = False) -> None:
        raise AssertionError("threads cannot be cancelled")


class GeventWorld(GreenWorld):
    name = library = "gevent"

    def __init__(self) -> None:
        self.gevent = _import("gevent")
        self.cancelled = (self.gevent.GreenletExit, self.gevent.Timeout)

    def _sleep(self, seconds: float) -> None:
        self.gevent.sleep(seconds)

    def spawn(self, fn: Body, *args: Any) -> Task:
        return _GeventTask(self, fn, args)

    def identity(self) -> tuple[str, int]:
        return ("gevent", id(self.gevent.getcurrent()))

    def move_on_after(self, seconds: float) -> Any:
        return self.gevent.Timeout(seconds, False)

    @classmethod
    def run(cls, body: Body, args: tuple[Any, ...]) -> Any:
        w = cls()
        hub = w.gevent.get_hub()  # a new hub: this is a fresh thread
        try:
            outcome = Outcome()
            w.gevent.spawn(outcome.capture, (), _drive_body, w, body, args).join()
            return outcome.unwrap()
        finally:
            hub.destroy(destroy_loop=True)


class _GeventTask(Task):
    def __init__(self, w: GeventWorld, fn: Body, args: tuple[Any, ...]) -> None:
        self.gevent = w.gevent
        self.outcome = Outcome()
        self.greenlet = w.gevent.spawn(
            self.outcome.capture, w.cancelled, _drive_body, w, fn, args
        )

    async def join(self) -> Any:
        self.greenlet.join(timeout=DEADLINE)
        if not self.greenlet.dead:
            raise AssertionError("a greenlet is still running")
        return self.outcome.unwrap()

    def cancel(self, timeout: bool = False) -> None:
        exc = self.gevent.Timeout if timeout else self.gevent.GreenletExit
        self.greenlet.kill(exc, block=False)


class EventletWorld(GreenWorld):
    name = library = "eventlet"

    def __init__(self) -> None:
        self.eventlet = _import("eventlet")
        self.greenlet = _import("greenlet")
        self.cancelled = (self.greenlet.GreenletExit, self.eventlet.Timeout)

    def _sleep(self, seconds: float) -> None:
        self.eventlet.sleep(seconds)

    def spawn(self, fn: Body, *args: Any) -> Task:
        return _EventletTask(self, fn, args)

    def identity(self) -> tuple[str, int]:
        return ("eventlet", id(self.greenlet.getcurrent()))

    def move_on_after(self, seconds: float) -> Any:
        return self.eventlet.Timeout(seconds, False)

    @classmethod
    def run(cls, body: Body, args: tuple[Any, ...]) -> Any:
        w = cls()
        outcome = Outcome()
        w.eventlet.spawn(outcome.capture, (), _drive_body, w, body, args).wait()
        return outcome.unwrap()


class _EventletTask(Task):
    def __init__(self, w: EventletWorld, fn: Body, args: tuple[Any, ...]) -> None:
        self.w = w
        self.outcome = Outcome()
        self.thread = w.eventlet.spawn(
            self.outcome.capture, w.cancelled, _drive_body, w, fn, args
        )

    async def join(self) -> Any:
        timer = self.w.eventlet.Timeout(
            DEADLINE, AssertionError("a greenthread is still running")
        )
        try:
            self.thread.wait()
        finally:
            timer.cancel()
        return self.outcome.unwrap()

    def cancel(self, timeout: bool = False) -> None:
        self.thread.kill(
            self.w.eventlet.Timeout if timeout else self.w.greenlet.GreenletExit
        )


# -- async worlds -------------------------------------------------------------


class AsyncWorld(World):
    green = False
    prefix = "async_"

    async def call(self, obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        return await getattr(obj, "async_" + name)(*args, **kwargs)

    def hold(self, obj: Any) -> Any:
        """`async with obj`."""
        return obj

    async def lock(self, obj: Any) -> None:
        await obj.__aenter__()

    async def unlock(self, obj: Any) -> None:
        await obj.__aexit__(None, None, None)

    async def wait(self, obj: Any, timeout: float | None = None) -> Any:
        return await obj if timeout is None else await obj.with_(timeout)

    async def wait_for(
        self,
        cv: Any,
        predicate: Callable[[], Any],
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        return await cv.for_(predicate, timeout=timeout, **kwargs)

    def identity(self) -> tuple[str, int]:
        if self.library == "trio":
            return ("trio", id(sys.modules["trio"].lowlevel.current_task()))
        return ("asyncio", id(sys.modules["asyncio"].current_task()))


class AsyncioWorld(AsyncWorld):
    name = library = "asyncio"

    def __init__(self) -> None:
        import asyncio

        self.asyncio = asyncio
        self.cancelled = (asyncio.CancelledError,)

    async def sleep(self, seconds: float) -> None:
        await self.asyncio.sleep(seconds)

    def spawn(self, fn: Body, *args: Any) -> Task:
        return _AsyncioTask(self.asyncio, self.asyncio.ensure_future(fn(self, *args)))

    def move_on_after(self, seconds: float) -> Any:
        return _AsyncioMoveOnAfter(self.asyncio, seconds)

    @classmethod
    def run(cls, body: Body, args: tuple[Any, ...]) -> Any:
        w = cls()
        return w.asyncio.run(body(w, *args))


class _AsyncioTask(Task):
    def __init__(self, asyncio: Any, task: Any) -> None:
        self.asyncio = asyncio
        self.task = task
        # A task that fails after the body gave up on it must not be logged
        # from another thread while pytest formats the body's failure.
        task.add_done_callback(_retrieve)

    async def join(self) -> Any:
        done, _ = await self.asyncio.wait({self.task}, timeout=DEADLINE)
        if not done:
            raise AssertionError(f"a task is still running: {self.task!r}")
        return CANCELLED if self.task.cancelled() else self.task.result()

    def cancel(self, timeout: bool = False) -> None:
        self.task.cancel()


def _retrieve(task: Any) -> None:
    if not task.cancelled():
        task.exception()


class _AsyncioMoveOnAfter:
    """trio.move_on_after for asyncio (asyncio.timeout needs Python 3.11)."""

    def __init__(self, asyncio: Any, seconds: float) -> None:
        self.asyncio = asyncio
        self.seconds = seconds
        self.fired = False

    def __enter__(self) -> _AsyncioMoveOnAfter:
        self.task = self.asyncio.current_task()
        self.handle = self.asyncio.get_running_loop().call_later(
            self.seconds, self._fire
        )
        return self

    def _fire(self) -> None:
        self.fired = True
        self.task.cancel()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        self.handle.cancel()
        if not self.fired:
            return False
        if hasattr(self.task, "uncancel"):  # Python 3.11+
            self.task.uncancel()
        return exc_type is not None and issubclass(
            exc_type, self.asyncio.CancelledError
        )


class _Structured:
    """What a trio-like library offers: trio itself, or anyio."""

    def __init__(
        self, module: Any, open_group: Callable[[], Any], cancelled: type[BaseException]
    ) -> None:
        self.module = module
        self.open_group = open_group
        self.cancelled = cancelled


class StructuredWorld(AsyncWorld):
    """trio, or anyio on either backend: tasks live in one nursery/task group."""

    backend: str

    def __init__(self, lib: _Structured, group: Any) -> None:
        self.lib = lib
        self.group = group
        self.cancelled = (lib.cancelled,)

    async def sleep(self, seconds: float) -> None:
        await self.lib.module.sleep(seconds)

    def spawn(self, fn: Body, *args: Any) -> Task:
        task = _StructuredTask(self)
        self.group.start_soon(task.run, fn, args)
        return task

    def move_on_after(self, seconds: float) -> Any:
        return self.lib.module.move_on_after(seconds)

    @classmethod
    def _lib(cls) -> _Structured:
        raise NotImplementedError

    @classmethod
    def run(cls, body: Body, args: tuple[Any, ...]) -> Any:
        async def main() -> Any:
            lib = cls._lib()
            outcome = Outcome()
            async with lib.open_group() as group:
                try:
                    outcome.value = await body(cls(lib, group), *args)
                except lib.cancelled:
                    raise
                except BaseException as exc:
                    # Report the body's own error, not an exception group.
                    outcome.error = exc
                    group.cancel_scope.cancel()
            return outcome.unwrap()

        return cls._start(main)

    @classmethod
    def _start(cls, main: Callable[[], Any]) -> Any:
        raise NotImplementedError


class TrioWorld(StructuredWorld):
    name = library = "trio"

    @classmethod
    def _lib(cls) -> _Structured:
        trio = sys.modules["trio"]
        return _Structured(trio, trio.open_nursery, trio.Cancelled)

    @classmethod
    def _start(cls, main: Callable[[], Any]) -> Any:
        return _import("trio").run(main)


class AnyioAsyncioWorld(StructuredWorld):
    name = "anyio-asyncio"
    library = backend = "asyncio"

    @classmethod
    def _lib(cls) -> _Structured:
        anyio = sys.modules["anyio"]
        return _Structured(
            anyio, anyio.create_task_group, anyio.get_cancelled_exc_class()
        )

    @classmethod
    def _start(cls, main: Callable[[], Any]) -> Any:
        return _import("anyio").run(main, backend=cls.backend)


class AnyioTrioWorld(AnyioAsyncioWorld):
    name = "anyio-trio"
    library = backend = "trio"


class _StructuredTask(Task):
    def __init__(self, w: StructuredWorld) -> None:
        self.w = w
        self.outcome = Outcome()
        self.scope = w.lib.module.CancelScope()
        self.done = w.lib.module.Event()

    async def run(self, fn: Body, args: tuple[Any, ...]) -> None:
        try:
            with self.scope:
                self.outcome.value = await fn(self.w, *args)
            if self.scope.cancelled_caught:
                self.outcome.value = CANCELLED
        except self.w.cancelled:
            raise  # an outer scope's cancellation
        except BaseException as exc:
            self.outcome.error = exc
        finally:
            self.done.set()

    async def join(self) -> Any:
        with self.w.lib.module.fail_after(DEADLINE):
            await self.done.wait()
        return self.outcome.unwrap()

    def cancel(self, timeout: bool = False) -> None:
        self.scope.cancel()


WORLD_CLASSES: dict[str, Any] = {
    "threading": ThreadingWorld,
    "gevent": GeventWorld,
    "eventlet": EventletWorld,
    "asyncio": AsyncioWorld,
    "trio": TrioWorld,
    "anyio-asyncio": AnyioAsyncioWorld,
    "anyio-trio": AnyioTrioWorld,
}


# ============================================================================
# Harness: actors (one world per OS thread) and fixtures
# ============================================================================


class Actor:
    """Runs body(w, *args) in a fresh OS thread that runs `world`."""

    def __init__(self, world: str, body: Body, *args: Any) -> None:
        _require(world)
        self.world = world
        self.outcome = Outcome()
        self.thread = threading.Thread(
            target=self.outcome.capture,
            args=((), WORLD_CLASSES[world].run, body, args),
            name=f"actor-{world}",
            daemon=True,
        )
        self.thread.start()

    def join(self, timeout: float = DEADLINE) -> Any:
        return join_all([self], timeout)[0]


def join_all(actors: list[Actor], timeout: float = DEADLINE) -> list[Any]:
    """Join actors with one deadline; the first error wins over a hang."""
    deadline = time.monotonic() + timeout
    while True:
        for actor in actors:
            if not actor.thread.is_alive() and actor.outcome.error is not None:
                actor.outcome.unwrap()
        alive = [actor for actor in actors if actor.thread.is_alive()]
        if not alive:
            return [actor.outcome.value for actor in actors]
        if time.monotonic() > deadline:
            stacks = "\n".join(f"--- {a.world}:\n{_stack_of(a.thread)}" for a in alive)
            pytest.fail(
                f"actors still running after {timeout} s:\n{stacks}", pytrace=False
            )
        alive[0].thread.join(0.005)


def run_in(world: str, body: Body, *args: Any) -> Any:
    """Run body(w, *args) in `world` (in its own thread) and return its result."""
    return Actor(world, body, *args).join()


def run_actors(*specs: tuple[Any, ...]) -> list[Any]:
    """Start (world, body, *args) actors at once and join them all."""
    return join_all([Actor(*spec) for spec in specs])


def _world_fixture(names: tuple[str, ...]) -> Any:
    @pytest.fixture(params=names)
    def fixture(request: Any) -> str:
        _require(request.param)
        return str(request.param)

    return fixture


world = _world_fixture(WORLDS)
green_world = _world_fixture(GREEN_WORLDS)
async_backend = _world_fixture(ASYNC_WORLDS)
cooperative_world = _world_fixture(COOPERATIVE_WORLDS)


def run_async(backend: str, fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run the coroutine function fn() on an async backend, in its own thread."""
    assert backend in ASYNC_WORLDS

    async def body(w: World) -> Any:
        return await fn()

    return run_in(backend, body)


# ============================================================================
# Lowlevel: import, backend detection, sleeps and checkpoints
# ============================================================================

_BACKENDS = ("asyncio", "trio", "gevent", "eventlet", "anyio", "sniffio")


def _python(script: str, **env: str) -> Any:
    """Run a script in a fresh interpreter; it prints one JSON document."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AIOLOGIC_")}
    environ.update(env)
    environ["PYTHONPATH"] = HERE + os.pathsep + environ.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=HERE,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_is_lazy_and_fast() -> None:
    result = _python(
        """
        import json, sys, time
        before = set(sys.modules)
        start = time.perf_counter()
        import aiologic
        elapsed = time.perf_counter() - start
        new = set(sys.modules) - before
        print(json.dumps({
            "elapsed": elapsed,
            "backends": sorted(m for m in new if m.split(".")[0] in BACKENDS),
            "lowlevel": sys.modules.get("aiologic.lowlevel")
            is getattr(aiologic, "lowlevel", "missing"),
        }))
        """.replace("BACKENDS", repr(_BACKENDS))
    )
    assert result["backends"] == []
    assert result["elapsed"] < 0.2, result
    assert result["lowlevel"]


def test_lowlevel_namespace() -> None:
    from aiologic.lowlevel import current_async_library, current_green_library

    lowlevel = aiologic.lowlevel
    assert lowlevel.current_green_library is current_green_library
    assert lowlevel.current_async_library is current_async_library
    for name in (
        "current_green_library_tlocal",
        "current_async_library_tlocal",
        "green_checkpoint",
        "async_checkpoint",
        "enable_checkpoints",
        "disable_checkpoints",
        "green_sleep",
        "async_sleep",
    ):
        assert hasattr(lowlevel, name), name
    assert isinstance(aiologic.__version__, str)


def test_current_library(world: str) -> None:
    async def body(w: World) -> None:
        lowlevel = aiologic.lowlevel
        if w.green:
            assert lowlevel.current_green_library() == w.library
            assert lowlevel.current_async_library(failsafe=True) is None
            with pytest.raises(Exception):
                lowlevel.current_async_library()
        else:
            assert lowlevel.current_async_library() == w.library
            assert lowlevel.current_async_library(failsafe=True) == w.library
            assert lowlevel.current_green_library() == "threading"

    run_in(world, body)


def test_library_detection_is_per_thread() -> None:
    """A gevent hub in one thread does not change what other threads see."""

    async def hub_thread(w: World, seen: list[str], done: threading.Event) -> None:
        seen.append(aiologic.lowlevel.current_green_library())
        await w.wait_until(done.is_set)

    seen: list[str] = []
    done = threading.Event()
    actor = Actor("gevent", hub_thread, seen, done)
    wait_until(lambda: seen, actors=[actor])
    assert aiologic.lowlevel.current_green_library() == "threading"
    done.set()
    actor.join()
    assert seen == ["gevent"]


def test_library_tlocal_override() -> None:
    lowlevel = aiologic.lowlevel

    async def body(w: World) -> tuple[str, str | None]:
        lowlevel.current_green_library_tlocal.name = "gevent"
        lowlevel.current_async_library_tlocal.name = "trio"
        try:
            return lowlevel.current_green_library(), lowlevel.current_async_library()
        finally:
            lowlevel.current_green_library_tlocal.name = None
            lowlevel.current_async_library_tlocal.name = None

    assert run_in("threading", body) == ("gevent", "trio")
    # Thread-local: this thread never saw the override.
    assert lowlevel.current_green_library() == "threading"


def test_sniffio_is_honoured() -> None:
    sniffio = _import("sniffio")

    async def body(w: World) -> Any:
        sniffio.thread_local.name = "trio"
        try:
            return aiologic.lowlevel.current_async_library()
        finally:
            sniffio.thread_local.name = None

    assert run_in("threading", body) == "trio"


def test_async_waiter_woken_by_plain_thread(async_backend: str) -> None:
    ev = aiologic.Event()

    async def main() -> Any:
        return await ev.with_(DEADLINE)

    def setter() -> None:
        wait_until(lambda: ev.waiting == 1)
        ev.set()

    thread = threading.Thread(target=setter, daemon=True)
    thread.start()
    assert run_async(async_backend, main) is True
    thread.join(DEADLINE)


def test_green_wait_lets_other_tasks_run(green_world: str) -> None:
    """A green wait parks the greenlet, not the hub: its neighbours run on."""

    async def worker(w: World, progress: list[int], sem: Any) -> None:
        for i in range(5):
            progress.append(i)
            await w.sleep(0.001)
        sem.release()

    async def body(w: World) -> None:
        sem = aiologic.Semaphore(0)
        progress: list[int] = []
        task = w.spawn(worker, progress, sem)
        assert await w.acquire(sem, timeout=DEADLINE) is True
        await task.join()
        assert progress == list(range(5))

    run_in(green_world, body)


def test_sleep_and_checkpoint(world: str) -> None:
    async def body(w: World) -> None:
        start = time.monotonic()
        await w.call(aiologic.lowlevel, "sleep", 0.02)
        assert time.monotonic() - start >= 0.01
        await w.call(aiologic.lowlevel, "sleep", 0)
        await w.call(aiologic.lowlevel, "checkpoint")

    run_in(world, body)


async def _trio_steps(fn: Callable[[], Awaitable[Any]]) -> tuple[Any, int]:
    """Await fn() in trio and count how often the current task was rescheduled."""
    trio = sys.modules["trio"]
    me = trio.lowlevel.current_task()

    class Counter(trio.abc.Instrument):  # type: ignore[misc]
        steps = 0

        def before_task_step(self, task: Any) -> None:
            if task is me:
                self.steps += 1

    counter = Counter()
    trio.lowlevel.add_instrument(counter)
    try:
        result = await fn()
    finally:
        trio.lowlevel.remove_instrument(counter)
    return result, counter.steps


def test_checkpoint_switches_lowlevel() -> None:
    lowlevel = aiologic.lowlevel

    async def body(w: World) -> None:
        _, steps = await _trio_steps(lowlevel.async_checkpoint)
        assert steps == 1
        with lowlevel.disable_checkpoints():
            _, steps = await _trio_steps(aiologic.Lock().async_acquire)
            assert steps == 0
        async with lowlevel.disable_checkpoints():
            _, steps = await _trio_steps(aiologic.Lock().async_acquire)
            assert steps == 0
        _, steps = await _trio_steps(aiologic.Lock().async_acquire)
        assert steps == 1

    run_in("trio", body)


@pytest.mark.parametrize("world", ["asyncio", "anyio-asyncio", "gevent", "eventlet"])
def test_enable_checkpoints(world: str) -> None:
    async def body(w: World) -> None:
        lock = aiologic.Lock()
        with aiologic.lowlevel.enable_checkpoints():
            with pytest.raises(AssertionError, match="switched"):
                await w.without_switching(lambda: w.acquire(lock))
        w.release(lock)
        await w.without_switching(lambda: w.acquire(lock))  # off again
        w.release(lock)

    run_in(world, body)


_CHECKPOINT_SCRIPT = """
    import asyncio, json, trio, aiologic

    async def trio_main():
        lock = aiologic.Lock()
        with trio.CancelScope() as scope:
            scope.cancel()
            await lock.async_acquire()
            lock.async_release()
        return scope.cancelled_caught

    async def asyncio_main():
        ran = []
        async def other():
            ran.append(1)
        task = asyncio.ensure_future(other())
        await aiologic.Lock().async_acquire()
        switched = bool(ran)
        await task
        return switched

    def gevent_main():
        try:
            import gevent
        except ImportError:
            return None
        ran = []
        probe = gevent.spawn(ran.append, 1)
        aiologic.Lock().green_acquire()
        switched = bool(ran)
        probe.join()
        return switched

    print(json.dumps({
        "trio_cancelled": trio.run(trio_main),
        "asyncio_switched": asyncio.run(asyncio_main()),
        "gevent_switched": gevent_main(),
    }))
"""


def test_checkpoint_environment_switches() -> None:
    _import("trio")
    result = _python(
        _CHECKPOINT_SCRIPT,
        AIOLOGIC_TRIO_CHECKPOINTS="",
        AIOLOGIC_ASYNCIO_CHECKPOINTS="1",
        AIOLOGIC_GREEN_CHECKPOINTS="1",
    )
    assert result["trio_cancelled"] is False
    assert result["asyncio_switched"] is True
    assert result["gevent_switched"] in (True, None)  # None: no gevent here
    result = _python(_CHECKPOINT_SCRIPT)
    assert result["trio_cancelled"] is True
    assert result["asyncio_switched"] is False
    assert result["gevent_switched"] in (False, None)


# ============================================================================
# Events and flags
# ============================================================================


@pytest.mark.parametrize("factory", ["Event", "REvent"])
class TestEvents:
    def make(self, factory: str) -> Any:
        return getattr(aiologic, factory)()

    def test_set_wakes_every_waiter(self, world: str, factory: str) -> None:
        async def waiter(w: World, ev: Any, timeout: float | None) -> Any:
            return await w.wait(ev, timeout)

        async def body(w: World) -> None:
            ev = self.make(factory)
            assert not ev.is_set() and not ev and ev.waiting == 0
            tasks = []
            for i, timeout in enumerate([None, DEADLINE, 1e10, math.inf, 2**40]):
                tasks.append(w.spawn(waiter, ev, timeout))
                await w.wait_until(lambda i=i: ev.waiting == i + 1)
            ev.set()
            results = [await task.join() for task in tasks]
            assert results[1:] == [True] * 4
            assert ev.is_set() and ev and ev.waiting == 0
            # Already set: returns at once, also with timeout=0.
            assert await w.wait(ev, 0) is True
            await w.wait(ev)
            ev.set()  # harmless
            assert ev.is_set()

        run_in(world, body)

    def test_timeout(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            ev = self.make(factory)
            start = time.monotonic()
            assert await w.wait(ev, SHORT) is False
            assert time.monotonic() - start >= SHORT / 2
            assert await w.wait(ev, 0) is False
            assert ev.waiting == 0 and not ev.is_set()

        run_in(world, body)

    def test_cancelled_waiter_leaves(
        self, cooperative_world: str, factory: str
    ) -> None:
        async def waiter(w: World, ev: Any) -> Any:
            return await w.wait(ev, DEADLINE)

        async def body(w: World) -> None:
            ev = self.make(factory)
            doomed = w.spawn(waiter, ev)
            await w.wait_until(lambda: ev.waiting == 1)
            other = w.spawn(waiter, ev)
            await w.wait_until(lambda: ev.waiting == 2)
            doomed.cancel()
            assert await doomed.join() is CANCELLED
            assert ev.waiting == 1
            ev.set()
            assert await other.join() is True
            assert ev.waiting == 0

        run_in(cooperative_world, body)

    def test_repr_slots_weakref(self, factory: str) -> None:
        ev = self.make(factory)
        before = repr(ev)
        assert factory in before
        ev.set()
        assert repr(ev) != before
        assert not hasattr(ev, "__dict__")
        assert weakref.ref(ev)() is ev


def test_event_is_one_shot() -> None:
    assert not hasattr(aiologic.Event(), "clear")


def test_revent_set_then_clear_still_wakes_waiters(world: str) -> None:
    async def waiter(w: World, ev: Any, timeout: float | None) -> Any:
        return await w.wait(ev, timeout)

    async def body(w: World) -> None:
        ev = aiologic.REvent()
        for _ in range(2):  # reusable
            tasks = []
            for i, timeout in enumerate([DEADLINE, None, DEADLINE]):
                tasks.append(w.spawn(waiter, ev, timeout))
                await w.wait_until(lambda i=i: ev.waiting == i + 1)
            ev.set()
            ev.clear()
            results = [await task.join() for task in tasks]
            assert results[0] is True and results[2] is True
            assert not ev.is_set() and not ev and ev.waiting == 0
            # A wait that starts after clear() waits again.
            assert await w.wait(ev, SHORT) is False
            assert ev.waiting == 0

    run_in(world, body)


class TestFlag:
    def test_first_marker_wins(self) -> None:
        flag = aiologic.Flag()
        assert not flag
        with pytest.raises(LookupError):
            flag.get()
        assert flag.get(default=5) == 5
        assert flag.get(default_factory=list) == []
        assert flag.set("a") is True
        assert flag and flag.get() == "a"
        assert flag.set("b") is False
        assert flag.get() == "a"
        assert flag.set("a") is True  # "a" is the stored marker
        assert flag.set() is False
        assert flag.get(default=5) == "a"
        flag.clear()
        assert not flag
        with pytest.raises(LookupError):
            flag.get()
        assert flag.set() is True
        assert flag.set() is False  # each set() brings a fresh marker
        assert flag

    def test_racing_setters(self) -> None:
        flag = aiologic.Flag()
        start = threading.Barrier(8)
        won: list[int] = []

        def setter(i: int) -> None:
            start.wait()
            if flag.set(i):
                won.append(i)

        threads = [threading.Thread(target=setter, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DEADLINE)
        assert len(won) == 1 and flag.get() == won[0]

    def test_repr_slots_weakref(self) -> None:
        flag = aiologic.Flag()
        before = repr(flag)
        assert "Flag" in before
        flag.set("marker")
        assert repr(flag) != before
        assert not hasattr(flag, "__dict__")
        assert weakref.ref(flag)() is flag


# ============================================================================
# ResourceGuard
# ============================================================================


class TestResourceGuard:
    def test_busy(self, world: str) -> None:
        async def intruder(w: World, guard: Any) -> bool:
            with pytest.raises(
                aiologic.BusyResourceError,
                match="another task is already using this resource",
            ):
                with guard:
                    pass
            return bool(guard)

        async def body(w: World) -> None:
            guard = aiologic.ResourceGuard()
            assert guard.action == "using" and not guard
            with guard:
                assert guard
                with pytest.raises(
                    aiologic.BusyResourceError,
                    match="another task is already using this resource",
                ):
                    with guard:
                        pass
                assert guard  # the error did not free it
                assert await w.spawn(intruder, guard).join() is True
            assert not guard
            with guard:  # usable again
                assert guard
            assert not guard

        run_in(world, body)

    def test_action_and_error_class(self) -> None:
        assert issubclass(aiologic.BusyResourceError, RuntimeError)
        guard = aiologic.ResourceGuard(action="reading")
        assert guard.action == "reading"
        with guard:
            with pytest.raises(
                aiologic.BusyResourceError,
                match=r"^another task is already reading this resource$",
            ):
                with guard:
                    pass
        with pytest.raises(ZeroDivisionError):
            with guard:
                1 / 0  # noqa: B018
        assert not guard

    def test_repr_slots_weakref(self) -> None:
        guard = aiologic.ResourceGuard()
        before = repr(guard)
        assert "ResourceGuard" in before
        with guard:
            assert repr(guard) != before
        assert not hasattr(guard, "__dict__")
        assert weakref.ref(guard)() is guard


# ============================================================================
# Locks: the generic suite over every lock-like
# ============================================================================


@dataclass(frozen=True)
class Kind:
    """How to make and observe one lock-like."""

    name: str
    make: Callable[[], Any]
    held: Callable[[Any], bool]
    waiting: Callable[[Any], int]
    acquirable: bool = True  # has green_acquire/async_acquire/*_release
    owned: bool = False  # owned by a task (Lock, RLock)


def _locked(obj: Any) -> bool:
    return bool(obj.locked())


def _exhausted(obj: Any) -> bool:
    return bool(obj.value == 0)


def _waiting(obj: Any) -> int:
    return int(obj.waiting)


def _one_left(factory_name: str) -> Callable[[], Any]:
    """A counting (non-binary) semaphore with one unit left."""

    def make() -> Any:
        sem = getattr(aiologic, factory_name)(3)
        assert sem.green_acquire(blocking=False) and sem.green_acquire(blocking=False)
        return sem

    return make


LOCK_KINDS = [
    Kind("Lock", lambda: aiologic.Lock(), _locked, _waiting, owned=True),
    Kind("RLock", lambda: aiologic.RLock(), _locked, _waiting, owned=True),
    Kind("Semaphore(1)", lambda: aiologic.Semaphore(1), _exhausted, _waiting),
    Kind("Semaphore(3)-2", _one_left("Semaphore"), _exhausted, _waiting),
    Kind("BinarySemaphore", lambda: aiologic.BinarySemaphore(), _exhausted, _waiting),
    Kind(
        "BoundedSemaphore(1)",
        lambda: aiologic.BoundedSemaphore(1),
        _exhausted,
        _waiting,
    ),
    Kind("BoundedSemaphore(3)-2", _one_left("BoundedSemaphore"), _exhausted, _waiting),
    Kind(
        "BoundedBinarySemaphore",
        lambda: aiologic.BoundedBinarySemaphore(),
        _exhausted,
        _waiting,
    ),
]
CONDITION_KINDS = [
    # `with cv` / `async with cv` hold the condition's lock.
    Kind(
        "Condition(Lock)",
        lambda: aiologic.Condition(aiologic.Lock()),
        lambda cv: _locked(cv.lock),
        lambda cv: _waiting(cv.lock),
        acquirable=False,
    ),
    Kind(
        "Condition()",
        lambda: aiologic.Condition(),
        lambda cv: _locked(cv.lock),
        lambda cv: _waiting(cv.lock),
        acquirable=False,
    ),
    Kind(
        "Condition(BinarySemaphore)",
        lambda: aiologic.Condition(aiologic.BinarySemaphore()),
        lambda cv: _exhausted(cv.lock),
        lambda cv: _waiting(cv.lock),
        acquirable=False,
    ),
]
ACQUIRABLE = pytest.mark.parametrize("kind", LOCK_KINDS, ids=lambda kind: kind.name)
ALL_LOCK_LIKES = pytest.mark.parametrize(
    "kind", LOCK_KINDS + CONDITION_KINDS, ids=lambda kind: kind.name
)


async def _hold_until(w: World, obj: Any, go: list[int]) -> None:
    async with w.hold(obj):
        await w.wait_until(lambda: go)


async def _enter_and_record(w: World, obj: Any, name: Any, entered: list[Any]) -> Any:
    async with w.hold(obj):
        entered.append(name)
        await w.sleep(0)
    return name


class TestLockLike:
    @ALL_LOCK_LIKES
    def test_mutual_exclusion(self, world: str, kind: Kind) -> None:
        inside = [0]
        peak = [0]
        entries = [0]

        async def worker(w: World, obj: Any) -> None:
            for _ in range(15):
                async with w.hold(obj):
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                    await w.sleep(0)
                    inside[0] -= 1
                    entries[0] += 1
                await w.sleep(0)

        async def body(w: World) -> None:
            obj = kind.make()
            tasks = [w.spawn(worker, obj) for _ in range(4)]
            for task in tasks:
                await task.join()
            assert not kind.held(obj) and kind.waiting(obj) == 0

        run_in(world, body)
        assert peak[0] == 1 and entries[0] == 60

    @ALL_LOCK_LIKES
    def test_fifo(self, world: str, kind: Kind) -> None:
        async def body(w: World) -> None:
            obj = kind.make()
            entered: list[int] = []
            tasks = []
            async with w.hold(obj):
                for i in range(5):
                    tasks.append(w.spawn(_enter_and_record, obj, i, entered))
                    await w.wait_until(lambda i=i: kind.waiting(obj) == i + 1)
                assert entered == []
            assert [await task.join() for task in tasks] == list(range(5))
            assert entered == list(range(5))
            assert not kind.held(obj) and kind.waiting(obj) == 0

        run_in(world, body)

    @ACQUIRABLE
    def test_release_hands_off(self, world: str, kind: Kind) -> None:
        async def waiter(w: World, obj: Any, me: list[Any], go: list[int]) -> None:
            me.append(w.identity())
            assert await w.acquire(obj) is True
            await w.wait_until(lambda: go)
            w.release(obj)

        async def body(w: World) -> None:
            obj = kind.make()
            me: list[Any] = []
            go: list[int] = []
            assert await w.acquire(obj) is True
            task = w.spawn(waiter, obj, me, go)
            await w.wait_until(lambda: kind.waiting(obj) == 1)
            w.release(obj)
            # The waiter owns it before it even runs: no barging back.
            assert kind.held(obj)
            if kind.owned:
                assert obj.owner == me[0]
            assert await w.acquire(obj, blocking=False) is False
            await w.wait_until(lambda: kind.waiting(obj) == 0)
            go.append(1)
            await task.join()
            assert not kind.held(obj)

        run_in(world, body)

    @ACQUIRABLE
    def test_non_blocking(self, world: str, kind: Kind) -> None:
        async def body(w: World) -> None:
            obj = kind.make()
            assert (
                await w.without_switching(lambda: w.acquire(obj, blocking=False))
                is True
            )
            assert kind.held(obj)
            w.release(obj)
            assert not kind.held(obj)
            go: list[int] = []
            holder = w.spawn(_hold_until, obj, go)
            await w.wait_until(lambda: kind.held(obj))
            assert (
                await w.without_switching(lambda: w.acquire(obj, blocking=False))
                is False
            )
            assert await w.acquire(obj, blocking=False, timeout=DEADLINE) is False
            assert kind.waiting(obj) == 0 and kind.held(obj)
            go.append(1)
            await holder.join()
            assert not kind.held(obj)

        run_in(world, body)

    @ACQUIRABLE
    def test_timeout(self, world: str, kind: Kind) -> None:
        async def body(w: World) -> None:
            obj = kind.make()
            assert await w.acquire(obj, timeout=0) is True  # free now
            w.release(obj)
            go: list[int] = []
            holder = w.spawn(_hold_until, obj, go)
            await w.wait_until(lambda: kind.held(obj))
            start = time.monotonic()
            assert await w.acquire(obj, timeout=SHORT) is False
            assert time.monotonic() - start >= SHORT / 2
            assert kind.waiting(obj) == 0
            assert await w.acquire(obj, timeout=0) is False
            assert kind.waiting(obj) == 0 and kind.held(obj)
            go.append(1)
            await holder.join()
            assert await w.acquire(obj, timeout=1) is True  # ints are accepted
            w.release(obj)
            assert not kind.held(obj) and kind.waiting(obj) == 0

        run_in(world, body)

    @ACQUIRABLE
    def test_large_timeouts(self, world: str, kind: Kind) -> None:
        async def waiter(w: World, obj: Any, timeout: float) -> bool:
            result = await w.acquire(obj, timeout=timeout)
            w.release(obj)
            return result

        async def body(w: World) -> None:
            obj = kind.make()
            assert await w.acquire(obj, timeout=1e300) is True
            tasks = []
            for i, timeout in enumerate([1e10, math.inf, 2**63, float(sys.maxsize)]):
                tasks.append(w.spawn(waiter, obj, timeout))
                await w.wait_until(lambda i=i: kind.waiting(obj) == i + 1)
            w.release(obj)
            assert [await task.join() for task in tasks] == [True] * 4
            assert not kind.held(obj)

        run_in(world, body)

    @ALL_LOCK_LIKES
    @pytest.mark.parametrize("order", ["cancel-then-release", "release-then-cancel"])
    def test_cancel_while_waiting(
        self, cooperative_world: str, kind: Kind, order: str
    ) -> None:
        """A cancelled waiter never swallows the hand-off: the next one proceeds."""

        async def body(w: World) -> None:
            obj = kind.make()
            entered: list[str] = []
            await w.lock(obj)
            tasks = {}
            for i, name in enumerate("ACB"):
                tasks[name] = w.spawn(_enter_and_record, obj, name, entered)
                await w.wait_until(lambda i=i: kind.waiting(obj) == i + 1)
            if order == "cancel-then-release":
                tasks["A"].cancel()
                tasks["C"].cancel(timeout=True)
                await w.unlock(obj)
            else:
                await w.unlock(obj)
                tasks["A"].cancel()
                tasks["C"].cancel(timeout=True)
            results = {name: await task.join() for name, task in tasks.items()}
            assert results["B"] == "B"
            assert results["A"] in ("A", CANCELLED) and results["C"] in ("C", CANCELLED)
            # Whoever got in, got in in queue order; B always did.
            assert (
                entered == [name for name in "ACB" if name in entered]
                and "B" in entered
            )
            assert not kind.held(obj) and kind.waiting(obj) == 0
            async with w.hold(obj):  # still usable
                pass

        run_in(cooperative_world, body)

    @ALL_LOCK_LIKES
    def test_external_deadline_while_waiting(
        self, cooperative_world: str, kind: Kind
    ) -> None:
        """trio/anyio move_on_after, gevent/eventlet Timeout, asyncio cancel()."""

        async def body(w: World) -> None:
            obj = kind.make()
            go: list[int] = []
            holder = w.spawn(_hold_until, obj, go)
            await w.wait_until(lambda: kind.held(obj))
            entered = False
            with w.move_on_after(SHORT):
                async with w.hold(obj):
                    entered = True
            assert not entered
            assert kind.waiting(obj) == 0 and kind.held(obj)
            go.append(1)
            await holder.join()
            assert not kind.held(obj)
            async with w.hold(obj):
                pass

        run_in(cooperative_world, body)

    @ACQUIRABLE
    def test_timeout_races_release(self, kind: Kind) -> None:
        """Threads: a waiter timing out while the holder releases loses nothing."""
        for i in range(60):
            obj = kind.make()
            assert obj.green_acquire()
            result: list[bool] = []

            def waiter(
                obj: Any = obj,
                result: list[bool] = result,
                timeout: float = 0.0005 * (i % 4),
            ) -> None:
                result.append(obj.green_acquire(timeout=timeout))
                if result[-1]:
                    obj.green_release()

            thread = threading.Thread(target=waiter)
            thread.start()
            if i % 2:
                wait_until(
                    lambda obj=obj, thread=thread: obj.waiting or not thread.is_alive()
                )
            obj.green_release()
            thread.join(DEADLINE)
            assert not thread.is_alive() and len(result) == 1
            assert not kind.held(obj) and kind.waiting(obj) == 0, (i, result)
            assert obj.green_acquire(blocking=False)

    @ACQUIRABLE
    def test_trio_checkpoints(self, kind: Kind) -> None:
        """On trio an uncontended acquire checkpoints exactly once by default;
        blocking=False never does."""

        async def body(w: World) -> None:
            trio = sys.modules["trio"]
            obj = kind.make()
            result, steps = await _trio_steps(obj.async_acquire)
            assert result is True and steps == 1
            w.release(obj)
            result, steps = await _trio_steps(lambda: obj.async_acquire(blocking=False))
            assert result is True and steps == 0
            w.release(obj)
            with trio.CancelScope() as scope:
                scope.cancel()
                await obj.async_acquire()
            assert scope.cancelled_caught
            assert not kind.held(obj) and kind.waiting(obj) == 0
            with trio.CancelScope() as scope:
                scope.cancel()
                assert await obj.async_acquire(blocking=False) is True
            assert not scope.cancelled_caught and kind.held(obj)
            w.release(obj)

        run_in("trio", body)

    @ACQUIRABLE
    @pytest.mark.parametrize("world", ["asyncio", "gevent", "eventlet"])
    def test_no_checkpoint_by_default(self, world: str, kind: Kind) -> None:
        async def body(w: World) -> None:
            obj = kind.make()
            assert await w.without_switching(lambda: w.acquire(obj)) is True
            w.release(obj)
            async with w.hold(obj):
                pass

        run_in(world, body)

    @ACQUIRABLE
    def test_invalid_timeouts(self, world: str, kind: Kind) -> None:
        async def body(w: World) -> None:
            obj = kind.make()
            go: list[int] = []
            holder = w.spawn(_hold_until, obj, go)
            await w.wait_until(lambda: kind.held(obj))
            for bad in (math.nan, -1, -0.5, -math.inf):
                result = await outcome_of(w.acquire(obj, timeout=bad))
                assert isinstance(result, ValueError), (bad, result)
                assert kind.waiting(obj) == 0
            go.append(1)
            await holder.join()
            assert not kind.held(obj)
            async with w.hold(obj):
                pass

        run_in(world, body)

    @ACQUIRABLE
    def test_invalid_timeouts_when_free(self, world: str, kind: Kind) -> None:
        async def body(w: World) -> None:
            obj = kind.make()
            for bad in (math.nan, -1):
                result = await outcome_of(w.acquire(obj, timeout=bad))
                assert isinstance(result, ValueError), (bad, result)
                assert not kind.held(obj) and kind.waiting(obj) == 0

        run_in(world, body)


# ============================================================================
# Lock and RLock
# ============================================================================


async def _intrude(w: World, lock: Any) -> tuple[bool, Any]:
    """From another task: release must fail and the lock is not ours."""
    with pytest.raises(RuntimeError):
        w.release(lock)
    return await w.query(lock, "owned"), await w.acquire(lock, blocking=False)


@pytest.mark.parametrize("factory", ["Lock", "RLock"])
class TestOwnedLocks:
    def test_owner(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            lock = getattr(aiologic, factory)()
            assert lock.owner is None and not lock and not lock.locked()
            assert await w.query(lock, "owned") is False
            assert await w.acquire(lock) is True
            assert lock.owner == w.identity()
            assert lock.owner[0] == w.library
            assert lock and lock.locked() and await w.query(lock, "owned") is True
            # Another task of the same world (another thread for threading).
            assert await w.spawn(_intrude, lock).join() == (False, False)
            assert lock.owner == w.identity() and lock.waiting == 0
            w.release(lock)
            assert lock.owner is None and not lock.locked()

        run_in(world, body)

    def test_release_unlocked(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            lock = getattr(aiologic, factory)()
            with pytest.raises(RuntimeError):
                w.release(lock)
            assert not lock.locked() and lock.owner is None
            assert await w.acquire(lock, blocking=False) is True
            w.release(lock)

        run_in(world, body)

    def test_release_from_another_thread(self, factory: str) -> None:
        lock = getattr(aiologic, factory)()

        async def body(w: World) -> Any:
            return await _intrude(w, lock)

        assert lock.green_acquire()
        assert run_in("threading", body) == (False, False)
        assert run_in("asyncio", body) == (False, False)
        assert lock.locked() and lock.owner == ("threading", threading.get_ident())
        lock.green_release()
        assert not lock.locked()

    def test_repr_slots_weakref(self, factory: str) -> None:
        lock = getattr(aiologic, factory)()
        free = repr(lock)
        assert factory in free and "unlocked" in free
        lock.green_acquire()
        threads = [
            threading.Thread(
                target=lambda: (lock.green_acquire(), lock.green_release())
            )
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        wait_until(lambda: lock.waiting == 2)
        held = repr(lock)
        assert "locked" in held and "unlocked" not in held and "waiting=2" in held
        lock.green_release()
        for thread in threads:
            thread.join(DEADLINE)
        assert repr(lock) == free
        assert not hasattr(lock, "__dict__")
        assert weakref.ref(lock)() is lock


def test_lock_reacquire_raises_at_once(world: str) -> None:
    async def body(w: World) -> None:
        lock = aiologic.Lock()
        assert await w.acquire(lock) is True
        for kwargs in (
            {},
            {"blocking": False},
            {"timeout": SHORT},
            {"timeout": 0},
            {"timeout": DEADLINE},
        ):
            result = await outcome_of(w.acquire(lock, **kwargs))
            assert isinstance(result, RuntimeError), (kwargs, result)
            assert lock.owner == w.identity() and lock.waiting == 0
        with pytest.raises(RuntimeError):
            async with w.hold(lock):
                pass
        assert lock.locked() and lock.owner == w.identity()
        w.release(lock)
        assert not lock.locked()

    run_in(world, body)


def test_binary_semaphore_is_the_unowned_lock() -> None:
    sem = aiologic.BinarySemaphore()

    async def release(w: World) -> None:
        w.release(sem)

    assert sem.green_acquire()
    run_in("asyncio", release)  # any task may release it
    assert sem.value == 1


def test_rlock_counts(world: str) -> None:
    async def body(w: World) -> None:
        rlock = aiologic.RLock()
        assert isinstance(rlock, aiologic.Lock)
        assert rlock.count == 0 and await w.query(rlock, "count") == 0
        assert await w.acquire(rlock) is True
        assert await w.acquire(rlock, blocking=False) is True
        assert await w.acquire(rlock, timeout=0) is True
        assert await w.acquire(rlock, count=3) is True
        assert rlock.count == 6 and await w.query(rlock, "count") == 6
        assert rlock.owner == w.identity()

        async def other(w: World) -> Any:
            return await w.query(rlock, "count"), await _intrude(w, rlock)

        assert await w.spawn(other).join() == (0, (False, False))
        with pytest.raises(ValueError):
            await w.acquire(rlock, count=0)
        with pytest.raises(ValueError):
            w.release(rlock, count=0)
        with pytest.raises(RuntimeError):
            w.release(rlock, count=7)
        assert rlock.count == 6 and rlock.owner == w.identity()
        w.release(rlock, count=4)
        w.release(rlock)
        assert rlock.count == 1 and rlock.locked()
        w.release(rlock)
        assert rlock.count == 0 and not rlock.locked() and rlock.owner is None
        with pytest.raises(RuntimeError):
            w.release(rlock)
        with pytest.raises(ValueError):
            await w.acquire(rlock, count=-1)
        assert not rlock.locked() and rlock.waiting == 0

    run_in(world, body)


def test_rlock_waiter_gets_requested_depth(world: str) -> None:
    async def waiter(w: World, rlock: Any) -> int:
        assert await w.acquire(rlock, count=3) is True
        depth = await w.query(rlock, "count")
        w.release(rlock, count=3)
        return int(depth)

    async def body(w: World) -> None:
        rlock = aiologic.RLock()
        assert await w.acquire(rlock, count=2) is True
        task = w.spawn(waiter, rlock)
        await w.wait_until(lambda: rlock.waiting == 1)
        w.release(rlock)
        assert rlock.locked()  # still held: one level left
        w.release(rlock)
        assert await task.join() == 3
        assert not rlock.locked() and rlock.count == 0

    run_in(world, body)


# ============================================================================
# Semaphores
# ============================================================================


class TestSemaphore:
    def test_factory_types(self) -> None:
        sem = aiologic.Semaphore()
        assert sem.value == 1 and sem.initial_value == 1
        assert isinstance(sem, aiologic.Semaphore)
        sem = aiologic.Semaphore(5)
        assert sem.value == 5 and not isinstance(sem, aiologic.BoundedSemaphore)
        bounded = aiologic.Semaphore(2, 5)
        assert isinstance(bounded, aiologic.BoundedSemaphore)
        assert (bounded.value, bounded.initial_value, bounded.max_value) == (2, 2, 5)
        bounded = aiologic.Semaphore(max_value=3)
        assert isinstance(bounded, aiologic.BoundedSemaphore)
        assert (bounded.value, bounded.max_value) == (3, 3)
        bounded = aiologic.BoundedSemaphore(4)
        assert (bounded.value, bounded.max_value) == (4, 4)
        for binary in (
            aiologic.BoundedSemaphore(),
            aiologic.BoundedSemaphore(1),
            aiologic.Semaphore(1, 1),
        ):
            assert isinstance(binary, aiologic.BoundedBinarySemaphore), binary
            assert binary.value == 1 and binary.max_value == 1
        assert issubclass(aiologic.BoundedBinarySemaphore, aiologic.BoundedSemaphore)
        assert issubclass(aiologic.BoundedBinarySemaphore, aiologic.BinarySemaphore)
        assert issubclass(aiologic.BinarySemaphore, aiologic.Semaphore)
        assert issubclass(aiologic.BoundedSemaphore, aiologic.Semaphore)
        assert aiologic.BinarySemaphore().value == 1
        assert aiologic.BinarySemaphore(0).value == 0

    @pytest.mark.parametrize(
        "make",
        [
            lambda: aiologic.Semaphore(-1),
            lambda: aiologic.Semaphore(max_value=-1),
            lambda: aiologic.BoundedSemaphore(-1),
            lambda: aiologic.BinarySemaphore(-1),
            lambda: aiologic.BoundedBinarySemaphore(-1),
        ],
    )
    def test_negative_values(self, make: Callable[[], Any]) -> None:
        with pytest.raises(ValueError):
            make()

    def test_bounded_over_release(self, world: str) -> None:
        async def body(w: World) -> None:
            for sem in (
                aiologic.BoundedSemaphore(2),
                aiologic.Semaphore(1, 3),
                aiologic.BoundedBinarySemaphore(),
            ):
                value = sem.value
                for _ in range(sem.max_value - value):
                    w.release(sem)
                with pytest.raises(RuntimeError):
                    w.release(sem)
                with pytest.raises(RuntimeError):
                    sem.release()
                assert sem.value == sem.max_value and sem.waiting == 0
                assert await w.acquire(sem) is True
                w.release(sem)
                assert sem.value == sem.max_value

        run_in(world, body)

    def test_bounded_and_binary_release_one_at_a_time(self) -> None:
        for sem in (
            aiologic.BoundedSemaphore(0, 5),
            aiologic.BinarySemaphore(0),
            aiologic.BoundedBinarySemaphore(0),
        ):
            with pytest.raises(ValueError):
                sem.release(2)
            with pytest.raises(ValueError):
                sem.green_release(2)
            assert sem.value == 0
            sem.release(1)
            assert sem.value == 1

    def test_concurrency_limit(self, world: str) -> None:
        inside = [0]
        peak = [0]

        async def worker(w: World, sem: Any) -> None:
            for _ in range(10):
                async with w.hold(sem):
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                    await w.sleep(0.0005)
                    inside[0] -= 1
                await w.sleep(0)

        async def body(w: World) -> None:
            sem = aiologic.Semaphore(2)
            tasks = [w.spawn(worker, sem) for _ in range(5)]
            for task in tasks:
                await task.join()
            assert sem.value == 2 and sem.waiting == 0

        run_in(world, body)
        assert 1 <= peak[0] <= 2

    def test_release_count_wakes_in_order(self, world: str) -> None:
        async def waiter(w: World, sem: Any, i: int, got: list[int]) -> None:
            assert await w.acquire(sem) is True
            got.append(i)

        async def body(w: World) -> None:
            sem = aiologic.Semaphore(0)
            got: list[int] = []
            tasks = []
            for i in range(4):
                tasks.append(w.spawn(waiter, sem, i, got))
                await w.wait_until(lambda i=i: sem.waiting == i + 1)
            sem.release(2)
            await w.wait_until(lambda: len(got) == 2)
            assert sorted(got) == [0, 1] and sem.waiting == 2 and sem.value == 0
            w.release(sem)
            await w.wait_until(lambda: len(got) == 3)
            assert got[2] == 2
            w.release(sem, count=3)
            for task in tasks:
                await task.join()
            assert sorted(got) == [0, 1, 2, 3] and sem.value == 2 and sem.waiting == 0

        run_in(world, body)

    def test_any_task_may_release(self, world: str) -> None:
        async def releaser(w: World, sem: Any) -> None:
            w.release(sem)

        async def body(w: World) -> None:
            sem = aiologic.Semaphore(1)
            assert await w.acquire(sem) is True
            await w.spawn(releaser, sem).join()
            assert sem.value == 1

        run_in(world, body)

    def test_async_and_green_release(self) -> None:
        sem = aiologic.Semaphore(0)
        sem.async_release()
        sem.green_release(2)
        sem.release(count=2)
        assert sem.value == 5

    def test_repr_slots_weakref(self) -> None:
        for sem in (
            aiologic.Semaphore(2),
            aiologic.BoundedSemaphore(2),
            aiologic.BinarySemaphore(),
            aiologic.BoundedBinarySemaphore(),
        ):
            before = repr(sem)
            assert type(sem).__name__ in before
            assert sem.green_acquire()
            assert repr(sem) != before
            sem.release()
            assert repr(sem) == before
            assert not hasattr(sem, "__dict__")
            assert weakref.ref(sem)() is sem


# ============================================================================
# Conditions
# ============================================================================

CONDITION_LOCKS = {
    "Lock": lambda: aiologic.Lock(),
    "RLock": lambda: aiologic.RLock(),
    "BinarySemaphore": lambda: aiologic.BinarySemaphore(),
}
OWNED_CONDITION_LOCKS = ("Lock", "RLock")


def _held(lock: Any) -> bool:
    if isinstance(lock, aiologic.Lock):
        return bool(lock.locked())
    return bool(lock.value == 0)


def _lock_is_mine(w: World, lock: Any) -> bool:
    if isinstance(lock, aiologic.Lock):
        return bool(lock.owner == w.identity())
    return bool(lock.value == 0)


@pytest.mark.parametrize("lock_name", list(CONDITION_LOCKS))
class TestCondition:
    def make(self, lock_name: str) -> Any:
        lock = CONDITION_LOCKS[lock_name]()
        cv = aiologic.Condition(lock)
        assert cv.lock is lock and isinstance(cv, aiologic.Condition)
        return cv

    def test_notify_counts_and_order(self, world: str, lock_name: str) -> None:
        async def waiter(w: World, cv: Any, i: int, woke: list[int]) -> None:
            async with w.hold(cv):
                await w.wait(cv)
                assert _lock_is_mine(w, cv.lock) and _held(cv.lock)
                woke.append(i)

        async def body(w: World) -> None:
            cv = self.make(lock_name)
            woke: list[int] = []
            tasks = []
            for i in range(4):
                tasks.append(w.spawn(waiter, cv, i, woke))
                await w.wait_until(lambda i=i: cv.waiting == i + 1)
            async with w.hold(cv):
                assert cv.notify() == 1
                assert cv.waiting == 3
                # Wait morphing: the waiter now queues on the lock itself.
                assert cv.lock.waiting == 1
                assert woke == []  # it needs the lock first
            await w.wait_until(lambda: woke == [0])
            async with w.hold(cv):
                assert cv.notify(2) == 2
                assert cv.notify_all() == 1
                assert cv.notify_all() == 0 and cv.notify() == 0
                assert cv.waiting == 0 and cv.lock.waiting == 3
            for task in tasks:
                await task.join()
            assert woke == [0, 1, 2, 3]
            assert cv.waiting == 0 and not _held(cv.lock)

        run_in(world, body)

    def test_wait_timeout(self, world: str, lock_name: str) -> None:
        async def body(w: World) -> None:
            cv = self.make(lock_name)
            async with w.hold(cv):
                start = time.monotonic()
                assert await w.wait(cv, SHORT) is False
                assert time.monotonic() - start >= SHORT / 2
                assert cv.waiting == 0 and _lock_is_mine(w, cv.lock)
                assert await w.wait(cv, 0) is False
                assert cv.waiting == 0 and _lock_is_mine(w, cv.lock)
            assert not _held(cv.lock)

        run_in(world, body)

    def test_wait_for(self, world: str, lock_name: str) -> None:
        state = {"n": 0}

        async def waiter(w: World, cv: Any, delegate: bool) -> Any:
            async with w.hold(cv):
                result = await w.wait_for(
                    cv, lambda: state["n"] >= 3 and state["n"], delegate=delegate
                )
                assert _lock_is_mine(w, cv.lock)
                return result

        async def body(w: World) -> None:
            cv = self.make(lock_name)
            for delegate in (True, False):
                state["n"] = 0
                task = w.spawn(waiter, cv, delegate)
                for _ in range(3):
                    await w.wait_until(lambda: cv.waiting == 1)
                    async with w.hold(cv):
                        state["n"] += 1
                        cv.notify()
                assert await task.join() == 3
            async with w.hold(cv):
                assert await w.wait_for(cv, lambda: "ready") == "ready"
                assert await w.wait_for(cv, lambda: "ready", timeout=0) == "ready"
                assert await w.wait_for(cv, lambda: 0, timeout=SHORT) == 0
                assert await w.wait_for(cv, lambda: "", timeout=0) == ""
                assert cv.waiting == 0 and _lock_is_mine(w, cv.lock)

        run_in(world, body)

    def test_wait_for_delegate(self, world: str, lock_name: str) -> None:
        state = {"ready": False}
        callers: list[Any] = []

        async def waiter(w: World, cv: Any, delegate: bool) -> Any:
            def predicate() -> bool:
                callers.append(w.identity())
                return state["ready"]

            async with w.hold(cv):
                return await w.wait_for(cv, predicate, delegate=delegate)

        async def body(w: World) -> None:
            cv = self.make(lock_name)
            for delegate in (True, False):
                state["ready"] = False
                callers.clear()
                task = w.spawn(waiter, cv, delegate)
                await w.wait_until(lambda: cv.waiting == 1)
                async with w.hold(cv):
                    woken = cv.notify()
                if delegate:
                    # The notifier ran the predicate; the waiter stays asleep.
                    assert woken == 0 and cv.waiting == 1
                    assert w.identity() in callers
                else:
                    assert woken == 1
                    await w.wait_until(lambda: cv.waiting == 1)
                    assert w.identity() not in callers
                async with w.hold(cv):
                    state["ready"] = True
                    assert cv.notify() == 1
                assert await task.join() is True

        run_in(world, body)

    def test_without_the_lock(self, world: str, lock_name: str) -> None:
        async def body(w: World) -> None:
            cv = self.make(lock_name)
            with pytest.raises(RuntimeError, match="cannot wait on un-acquired lock"):
                await w.wait(cv)
            with pytest.raises(RuntimeError, match="cannot wait on un-acquired lock"):
                await w.wait(cv, SHORT)
            with pytest.raises(RuntimeError, match="cannot wait on un-acquired lock"):
                await w.wait_for(cv, lambda: False)
            with pytest.raises(RuntimeError, match="cannot notify on un-acquired lock"):
                cv.notify()
            with pytest.raises(RuntimeError, match="cannot notify on un-acquired lock"):
                cv.notify_all()
            assert cv.waiting == 0 and not _held(cv.lock)
            async with w.hold(cv):  # still usable
                assert await w.wait(cv, 0) is False

        run_in(world, body)

    def test_invalid_timeouts(self, world: str, lock_name: str) -> None:
        async def body(w: World) -> None:
            cv = self.make(lock_name)
            async with w.hold(cv):
                for bad in (math.nan, -1):
                    result = await outcome_of(w.wait(cv, bad))
                    assert isinstance(result, ValueError), (bad, result)
                    result = await outcome_of(w.wait_for(cv, lambda: 0, timeout=bad))
                    assert isinstance(result, ValueError), (bad, result)
                    assert cv.waiting == 0 and _lock_is_mine(w, cv.lock)
            assert not _held(cv.lock)

        run_in(world, body)

    def test_cancel_while_waiting(self, cooperative_world: str, lock_name: str) -> None:
        """A waiter cancelled while notified passes the notification on."""

        async def waiter(w: World, cv: Any, name: str, woke: list[str]) -> str:
            async with w.hold(cv):
                await w.wait(cv)
                woke.append(name)
            return name

        async def body(w: World) -> None:
            cv = self.make(lock_name)
            for order in ("cancel-then-notify", "notify-then-cancel"):
                woke: list[str] = []
                doomed = w.spawn(waiter, cv, "A", woke)
                await w.wait_until(lambda: cv.waiting == 1)
                other = w.spawn(waiter, cv, "B", woke)
                await w.wait_until(lambda: cv.waiting == 2)
                async with w.hold(cv):
                    if order == "cancel-then-notify":
                        doomed.cancel()
                        cv.notify()
                    else:
                        cv.notify()
                        doomed.cancel()
                result = await doomed.join()
                if result is CANCELLED and "B" not in woke and cv.waiting:
                    # A left before the notification reached it. Nothing lost.
                    async with w.hold(cv):
                        cv.notify()
                assert await other.join() == "B"
                assert result in ("A", CANCELLED)
                assert cv.waiting == 0 and not _held(cv.lock)

        run_in(cooperative_world, body)


def test_condition_default_lock_is_rlock_and_restores_depth(world: str) -> None:
    async def waiter(w: World, cv: Any) -> int:
        assert await w.acquire(cv.lock, count=3) is True
        await w.wait(cv)
        depth = await w.query(cv.lock, "count")
        w.release(cv.lock, count=3)
        return int(depth)

    async def body(w: World) -> None:
        cv = aiologic.Condition()
        assert isinstance(cv.lock, aiologic.RLock)
        task = w.spawn(waiter, cv)
        await w.wait_until(lambda: cv.waiting == 1)
        async with w.hold(cv):  # all three levels were released
            assert cv.notify() == 1
        assert await task.join() == 3
        assert not cv.lock.locked()

    run_in(world, body)


def test_condition_notify_needs_the_lock_held_by_someone(world: str) -> None:
    """notify only needs the lock held; wait needs it held by the caller."""

    async def body(w: World) -> None:
        cv = aiologic.Condition(aiologic.Lock())
        go: list[int] = []
        holder = w.spawn(_hold_until, cv, go)
        await w.wait_until(lambda: cv.lock.locked())
        assert cv.notify() == 0
        with pytest.raises(RuntimeError):
            await w.wait(cv, SHORT)
        assert cv.waiting == 0
        go.append(1)
        await holder.join()

    run_in(world, body)


def test_condition_lockless(world: str) -> None:
    async def waiter(w: World, cv: Any) -> Any:
        return await w.wait(cv, DEADLINE)

    async def body(w: World) -> None:
        cv = aiologic.Condition(None)
        assert cv.lock is None and isinstance(cv, aiologic.Condition)
        assert cv.notify() == 0
        tasks = []
        for i in range(3):
            tasks.append(w.spawn(waiter, cv))
            await w.wait_until(lambda i=i: cv.waiting == i + 1)
        assert cv.notify() == 1
        assert cv.notify_all() == 2
        assert [await task.join() for task in tasks] == [True] * 3
        assert await w.wait(cv, SHORT) is False and cv.waiting == 0
        assert await w.wait_for(cv, lambda: "yes") == "yes"

    run_in(world, body)


@pytest.mark.parametrize(
    "make_lock", [threading.Lock, threading.RLock], ids=["Lock", "RLock"]
)
def test_condition_with_threading_locks(make_lock: Callable[[], Any]) -> None:
    async def waiter(w: World, cv: Any, state: dict[str, int]) -> Any:
        with cv:
            return cv.wait_for(lambda: state["n"] >= 2 and state["n"], timeout=DEADLINE)

    async def body(w: World) -> None:
        lock = make_lock()
        cv = aiologic.Condition(lock)
        assert cv.lock is lock and isinstance(cv, aiologic.Condition)
        with pytest.raises(RuntimeError, match="cannot wait on un-acquired lock"):
            cv.wait(SHORT)
        with pytest.raises(RuntimeError, match="cannot notify on un-acquired lock"):
            cv.notify()
        state = {"n": 0}
        task = w.spawn(waiter, cv, state)
        for _ in range(2):
            await w.wait_until(lambda: cv.waiting == 1)
            with cv:
                assert cv
                state["n"] += 1
                cv.notify()
        assert await task.join() == 2
        with cv:
            assert cv.wait(SHORT) is False
        assert cv.waiting == 0 and not cv

    run_in("threading", body)


@pytest.mark.parametrize(
    "make_lock",
    [
        lambda: aiologic.Lock(),
        lambda: aiologic.RLock(),
        lambda: aiologic.BinarySemaphore(),
        threading.Lock,
    ],
    ids=["Lock", "RLock", "BinarySemaphore", "threading.Lock"],
)
def test_condition_bool_is_lock_held(make_lock: Callable[[], Any]) -> None:
    cv = aiologic.Condition(make_lock())
    assert not cv
    with cv:
        assert cv
    assert not cv


def test_condition_timer() -> None:
    timer = itertools.count(100).__next__
    cv = aiologic.Condition(aiologic.Lock(), timer)
    assert cv.timer is timer
    default = aiologic.Condition().timer
    first = default()
    assert default() > first


def test_condition_repr_slots_weakref() -> None:
    for cv in (
        aiologic.Condition(),
        aiologic.Condition(aiologic.Lock()),
        aiologic.Condition(aiologic.BinarySemaphore()),
        aiologic.Condition(threading.Lock()),
        aiologic.Condition(None),
    ):
        assert "Condition" in repr(cv)
        assert not hasattr(cv, "__dict__")
        assert weakref.ref(cv)() is cv
    cv = aiologic.Condition(aiologic.Lock())
    before = repr(cv)
    with cv:
        assert cv
        assert repr(cv) != before


# ============================================================================
# Simple queues
# ============================================================================

QUEUES = pytest.mark.parametrize("factory", ["SimpleQueue", "SimpleLifoQueue"])


def _queue(factory: str, items: Any = ()) -> Any:
    return getattr(aiologic, factory)(items)


@QUEUES
class TestSimpleQueue:
    def test_order_and_size(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            q = _queue(factory, [1, 2, 3])
            assert len(q) == 3 and q
            expected = [1, 2, 3] if factory == "SimpleQueue" else [3, 2, 1]
            assert [await w.get(q) for _ in range(3)] == expected
            assert len(q) == 0 and not q
            q.put("a")
            assert await w.put(q, "b") is None
            await w.put(q, "c", blocking=False)
            await w.put(q, "d", timeout=0)
            assert len(q) == 4 and q.putting == 0
            got = [await w.get(q, blocking=False) for _ in range(4)]
            assert got == (
                ["a", "b", "c", "d"]
                if factory == "SimpleQueue"
                else ["d", "c", "b", "a"]
            )

        run_in(world, body)

    def test_empty(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            q = _queue(factory)
            assert issubclass(aiologic.QueueEmpty, Exception)
            with pytest.raises(aiologic.QueueEmpty):
                await w.without_switching(lambda: w.get(q, blocking=False))
            with pytest.raises(aiologic.QueueEmpty):
                await w.get(q, timeout=0)
            start = time.monotonic()
            with pytest.raises(aiologic.QueueEmpty):
                await w.get(q, timeout=SHORT)
            assert time.monotonic() - start >= SHORT / 2
            for bad in (math.nan, -1):
                result = await outcome_of(w.get(q, timeout=bad))
                assert isinstance(result, ValueError), (bad, result)
            assert q.getting == 0 and q.waiting == 0 and q.putting == 0
            q.put(1)
            assert await w.get(q, timeout=0) == 1

        run_in(world, body)

    def test_getters_fifo(self, world: str, factory: str) -> None:
        async def getter(w: World, q: Any) -> Any:
            return await w.get(q)

        async def body(w: World) -> None:
            q = _queue(factory)
            tasks = []
            for i in range(4):
                tasks.append(w.spawn(getter, q))
                await w.wait_until(lambda i=i: q.getting == i + 1)
                assert q.waiting == i + 1 and q.putting == 0
            for i, task in enumerate(tasks):
                q.put(i)
                assert await task.join() == i
            assert q.getting == 0 and len(q) == 0

        run_in(world, body)

    def test_cancelled_getter_loses_nothing(
        self, cooperative_world: str, factory: str
    ) -> None:
        async def getter(w: World, q: Any) -> Any:
            return await w.get(q)

        async def body(w: World) -> None:
            for order in ("cancel-then-put", "put-then-cancel"):
                q = _queue(factory)
                doomed = w.spawn(getter, q)
                await w.wait_until(lambda q=q: q.getting == 1)
                other = w.spawn(getter, q)
                await w.wait_until(lambda q=q: q.getting == 2)
                if order == "cancel-then-put":
                    doomed.cancel()
                    q.put("x")
                else:
                    q.put("x")
                    doomed.cancel()
                first = await doomed.join()
                assert first in ("x", CANCELLED)
                if first == "x":
                    q.put("y")
                second = await other.join()
                assert sorted(x for x in (first, second) if x is not CANCELLED) == (
                    ["x", "y"] if first == "x" else ["x"]
                )
                assert len(q) == 0 and q.getting == 0 and q.waiting == 0

        run_in(cooperative_world, body)

    def test_repr_slots_weakref(self, factory: str) -> None:
        q = _queue(factory)
        before = repr(q)
        assert factory in before
        q.put(1)
        assert repr(q) != before
        assert not hasattr(q, "__dict__")
        assert weakref.ref(q)() is q


# ============================================================================
# Across worlds: one primitive shared by tasks of different worlds and threads
# ============================================================================

PAIRS = [
    ("asyncio", "trio"),
    ("threading", "asyncio"),
    ("asyncio", "asyncio"),
    ("gevent", "asyncio"),
    ("eventlet", "threading"),
    ("trio", "gevent"),
    ("eventlet", "anyio-trio"),
    ("gevent", "eventlet"),
]


@pytest.fixture(params=PAIRS, ids=["<->".join(pair) for pair in PAIRS])
def pair(request: Any) -> tuple[str, str]:
    for name in request.param:
        _require(name)
    return request.param  # type: ignore[no-any-return]


CROSS_LOCKS = pytest.mark.parametrize(
    "kind",
    [LOCK_KINDS[0], LOCK_KINDS[1], LOCK_KINDS[3], CONDITION_KINDS[0]],
    ids=lambda kind: kind.name,
)


@CROSS_LOCKS
def test_cross_mutual_exclusion(pair: tuple[str, str], kind: Kind) -> None:
    obj = kind.make()
    inside = [0]
    peak = [0]
    entries = [0]

    async def worker(w: World) -> None:
        for _ in range(25):
            async with w.hold(obj):
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
                await w.sleep(0)
                inside[0] -= 1
                entries[0] += 1
            await w.sleep(0)

    async def actor(w: World) -> None:
        tasks = [w.spawn(worker) for _ in range(2)]
        for task in tasks:
            await task.join()

    run_actors((pair[0], actor), (pair[1], actor))
    assert peak[0] == 1 and entries[0] == 100
    assert not kind.held(obj) and kind.waiting(obj) == 0


@CROSS_LOCKS
def test_cross_fifo(pair: tuple[str, str], kind: Kind) -> None:
    """Waiters of two worlds queue one at a time behind this thread; they
    enter in the order they asked, whatever their world."""
    obj = kind.make()
    entered: list[int] = []

    async def waiter(w: World, i: int) -> int:
        async with w.hold(obj):
            entered.append(i)
        return i

    with obj:
        actors = []
        for i in range(6):
            actors.append(Actor(pair[i % 2], waiter, i))
            wait_until(lambda i=i: kind.waiting(obj) == i + 1, actors=actors)
        assert entered == []
    assert join_all(actors) == list(range(6))
    assert entered == list(range(6))
    assert not kind.held(obj) and kind.waiting(obj) == 0


def test_cross_semaphore(pair: tuple[str, str]) -> None:
    sem = aiologic.Semaphore(2)
    inside = [0]
    peak = [0]
    lock = threading.Lock()  # only to count; never held across a switch

    async def worker(w: World) -> None:
        for _ in range(15):
            async with w.hold(sem):
                with lock:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                await w.sleep(0.0002)
                with lock:
                    inside[0] -= 1
            await w.sleep(0)

    async def actor(w: World) -> None:
        tasks = [w.spawn(worker) for _ in range(3)]
        for task in tasks:
            await task.join()

    run_actors((pair[0], actor), (pair[1], actor))
    assert 1 <= peak[0] <= 2
    assert sem.value == 2 and sem.waiting == 0


def test_cross_condition(pair: tuple[str, str]) -> None:
    """A producer in one world feeds a consumer in another through a Condition."""
    cv = aiologic.Condition(aiologic.Lock())
    items: list[int] = []

    async def consumer(w: World) -> list[int]:
        seen = []
        while len(seen) < 30:
            async with w.hold(cv):
                assert await w.wait_for(cv, lambda: items, timeout=DEADLINE)
                seen.extend(items)
                items.clear()
                cv.notify()
        return seen

    async def producer(w: World) -> None:
        for i in range(30):
            async with w.hold(cv):
                items.append(i)
                cv.notify()
                if len(items) >= 3:
                    assert await w.wait_for(cv, lambda: not items, timeout=DEADLINE)

    seen, _ = run_actors((pair[0], consumer), (pair[1], producer))
    assert seen == list(range(30))
    assert cv.waiting == 0 and not cv


@pytest.mark.parametrize("factory", ["Event", "REvent"])
def test_cross_event(pair: tuple[str, str], factory: str) -> None:
    """Waiters of one world are woken by a setter in another world."""
    ev = getattr(aiologic, factory)()

    async def waiters(w: World) -> list[Any]:
        async def one(w: World, timeout: float | None) -> Any:
            return await w.wait(ev, timeout)

        tasks = [w.spawn(one, None), w.spawn(one, DEADLINE)]
        return [await task.join() for task in tasks]

    async def setter(w: World) -> None:
        await w.wait_until(lambda: ev.waiting == 2)
        ev.set()
        if factory == "REvent":
            ev.clear()

    results, _ = run_actors((pair[0], waiters), (pair[1], setter))
    assert results[1] is True
    assert ev.waiting == 0 and ev.is_set() == (factory == "Event")


@QUEUES
def test_cross_queue_ping_pong(pair: tuple[str, str], factory: str) -> None:
    pings = _queue(factory)
    pongs = _queue(factory)

    async def client(w: World) -> list[int]:
        answers = []
        for i in range(100):
            if i % 2:
                pings.put(i)
            else:
                await w.put(pings, i)
            answers.append(await w.get(pongs, timeout=DEADLINE))
        await w.put(pings, None)
        return answers

    async def server(w: World) -> int:
        served = 0
        while True:
            item = await w.get(pings)
            if item is None:
                return served
            await w.put(pongs, item * 2)
            served += 1

    answers, served = run_actors((pair[0], client), (pair[1], server))
    assert answers == [2 * i for i in range(100)] and served == 100
    assert len(pings) == len(pongs) == 0 and pings.getting == pongs.getting == 0


def test_cross_cancel_keeps_hand_off(pair: tuple[str, str]) -> None:
    """A waiter cancelled in one world while this thread hands the lock over:
    a waiter of the other world still gets it."""
    cancelling, other = pair if pair[0] != "threading" else pair[::-1]
    lock = aiologic.Lock()
    entered: list[str] = []

    go = threading.Event()

    async def canceller(w: World) -> Any:
        task = w.spawn(_enter_and_record, lock, "A", entered)
        await w.wait_until(go.is_set)
        task.cancel()
        return await task.join()

    async def waiter(w: World) -> Any:
        return await _enter_and_record(w, lock, "B", entered)

    for i in range(6):
        entered.clear()
        go.clear()
        assert lock.green_acquire()
        first = Actor(cancelling, canceller)
        wait_until(lambda: lock.waiting == 1, actors=[first])
        second = Actor(other, waiter)
        wait_until(lambda: lock.waiting == 2, actors=[first, second])
        # The release races with the cancellation.
        if i % 2:
            go.set()
            lock.green_release()
        else:
            lock.green_release()
            go.set()
        result_a, result_b = join_all([first, second])
        assert result_a in ("A", CANCELLED) and result_b == "B"
        assert entered in (["A", "B"], ["B"])
        assert not lock.locked() and lock.waiting == 0


def test_cross_wake_asyncio_from_plain_thread() -> None:
    """The smallest case: a plain thread wakes a coroutine through each primitive."""
    lock = aiologic.Lock()
    sem = aiologic.Semaphore(0)
    ev = aiologic.Event()
    q = aiologic.SimpleQueue()

    async def body(w: World) -> list[Any]:
        got = [
            await w.acquire(lock),
            await w.acquire(sem),
            await w.wait(ev, DEADLINE),
            await w.get(q),
        ]
        w.release(lock)
        return got

    assert lock.green_acquire()
    actor = Actor("asyncio", body)
    wait_until(lambda: lock.waiting == 1, actors=[actor])
    lock.green_release()
    wait_until(lambda: sem.waiting == 1, actors=[actor])
    sem.release()
    wait_until(lambda: ev.waiting == 1, actors=[actor])
    ev.set()
    wait_until(lambda: q.getting == 1, actors=[actor])
    q.put("item")
    assert actor.join() == [True, True, True, "item"]


# ============================================================================
# The announced example: two threads, each anyio.run(main), one Lock
# ============================================================================


@pytest.mark.parametrize(
    "backends",
    [("asyncio", "asyncio"), ("trio", "asyncio")],
    ids=["asyncio+asyncio", "trio+asyncio"],
)
def test_announced_example(backends: tuple[str, str]) -> None:
    anyio = _import("anyio")
    if "trio" in backends:
        _import("trio")
    lock = aiologic.Lock()
    asked: list[int] = []
    entered: list[int] = []
    records: dict[int, dict[str, float]] = {}
    inside = [0]
    t0 = time.monotonic()

    async def task(k: int) -> None:
        record = records[k] = {"start": time.monotonic() - t0}
        # Make the order of asking well defined across threads: task k asks
        # once the previous k tasks hold or wait for the lock.
        while k and not (lock.locked() and lock.waiting == k - 1):
            await anyio.sleep(0.001)
        asked.append(k)
        record["ask"] = time.monotonic() - t0
        async with lock:
            inside[0] += 1
            assert inside[0] == 1
            entered.append(k)
            record["enter"] = time.monotonic() - t0
            await anyio.sleep(1)
            record["exit"] = time.monotonic() - t0
            inside[0] -= 1

    async def main(first: int) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(task, first)
            tg.start_soon(task, first + 2)

    outcomes = [Outcome(), Outcome()]
    threads = [
        threading.Thread(
            target=outcomes[i].capture,
            args=((), functools.partial(anyio.run, main, i, backend=backends[i])),
        )
        for i in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
        assert not thread.is_alive(), _stack_of(thread)
    for outcome in outcomes:
        outcome.unwrap()
    total = time.monotonic() - t0

    assert asked == entered == [0, 1, 2, 3]  # FIFO across loops and threads
    starts = [records[k]["start"] for k in range(4)]
    assert max(starts) - min(starts) < 0.5
    assert max(records[k]["ask"] for k in range(4)) < 0.5
    for k in range(4):
        assert records[k]["exit"] - records[k]["enter"] >= 0.99
        assert (k + 1) * 0.99 <= records[k]["exit"] <= k + 1 + 1.5, records
        if k:
            assert records[k]["enter"] >= records[k - 1]["exit"]  # no overlap
    assert 3.5 <= total <= 8, records
    assert not lock.locked() and lock.waiting == 0


# ============================================================================
# Every class: __slots__ and weak references
# ============================================================================


@pytest.mark.parametrize(
    "make",
    [
        lambda: aiologic.Lock(),
        lambda: aiologic.RLock(),
        lambda: aiologic.Semaphore(2),
        lambda: aiologic.BoundedSemaphore(2),
        lambda: aiologic.BinarySemaphore(),
        lambda: aiologic.BoundedBinarySemaphore(),
        lambda: aiologic.Condition(),
        lambda: aiologic.Condition(None),
        lambda: aiologic.Condition(threading.RLock()),
        lambda: aiologic.Event(),
        lambda: aiologic.REvent(),
        lambda: aiologic.ResourceGuard(),
        lambda: aiologic.SimpleQueue(),
        lambda: aiologic.SimpleLifoQueue(),
        lambda: aiologic.Flag(),
    ],
)
def test_slots_and_weakref(make: Callable[[], Any]) -> None:
    obj = make()
    assert not hasattr(obj, "__dict__"), type(obj)
    ref = weakref.ref(obj)
    assert ref() is obj
    del obj
    gc.collect()
    assert ref() is None
