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
semaphores, conditions, simple queues, countdown and barriers, capacity
limiters, queues (shutdown, join), RWLock, mixed-deadlock detection,
synchronized, lowlevel and vendoring, cross-world tests, the announced example.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import copy
import functools
import gc
import inspect
import itertools
import json
import math
import os
import pathlib
import pickle
import random
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Coroutine, Iterator

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
        # End the hub's loop (as GeventWorld.run destroys its hub): a hub left
        # suspended in a thread that ends is never freed, with all it holds.
        w.eventlet.hubs.get_hub().abort(wait=True)
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


def _bench(*args: str, anchor: str = "", timeout: float = 300) -> Any:
    """Run bench.py with *args* (the anchor interpreter: *anchor*, none by
    default); skips the test where bench.py is not beside the tests."""
    bench = os.path.join(HERE, "bench.py")
    if not os.path.exists(bench):
        pytest.skip("bench.py is not beside the tests")
    return subprocess.run(
        [sys.executable, bench, *args],
        cwd=HERE,
        env=dict(os.environ, BENCH_ANCHOR_PYTHON=anchor),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_bench_k_matching_nothing_fails_and_lists_scenarios() -> None:
    """Issue 16: `bench.py -k PATTERN` that matches no scenario exits non-zero
    and names the scenarios there are, instead of printing an empty table."""
    proc = _bench("-k", "no such scenario", timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "no scenario matches -k 'no such scenario'" in proc.stderr
    assert "Lock uncontended, green `with`" in proc.stderr
    assert "memory per fresh instance" in proc.stderr
    assert "ops/s" not in proc.stdout  # no empty table


def test_bench_plain_report_prints_the_size_table() -> None:
    """The plain report prints the size table too (its rows carry the spread
    cells of the speed table; cutting them to the size columns is the job of
    the printer, which once raised IndexError after a whole run)."""
    proc = _bench("--quick", "-k", "import in a fresh process")
    assert proc.returncode == 0, proc.stderr
    assert "import aiologic" in proc.stdout and "import asyncio" in proc.stdout
    assert "(ratio = ours/baseline, lower is better)" in proc.stdout


def test_bench_isolate_runs_each_scenario_in_its_own_process() -> None:
    """Issue 15: `--isolate` (the default on PyPy, whose JIT carries one
    scenario's state into the next) runs each scenario in a fresh process and
    reports their rows as one run would."""
    proc = _bench("--quick", "--isolate", "-k", "import in a fresh")
    assert proc.returncode == 0, proc.stderr
    assert "each scenario in a fresh process" in proc.stdout
    assert "import aiologic" in proc.stdout and "import asyncio" in proc.stdout
    assert "done: import in a fresh process" in proc.stderr
    proc = _bench("--quick", "--isolate", "-k", "no such scenario")
    assert proc.returncode == 2
    assert "Lock uncontended, green `with`" in proc.stderr


def test_bench_rst_names_the_interpreter_and_runs_the_floor() -> None:
    """Issue 15: `bench.py --rst` prints README's tables (a grid table, the
    interpreter and machine named), with the floor beside the headline row and
    the quartiles of the paired ratios; an anchor that cannot start is
    reported and skipped, never required."""
    import platform

    proc = _bench(
        "--quick",
        "--rst",
        "-k",
        "Lock uncontended, asyncio",
        anchor=os.path.join(HERE, "no-python"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "bench.py: no anchor" in proc.stderr
    out = proc.stdout
    assert f"{platform.python_implementation()} {platform.python_version()}" in out
    assert f"{os.cpu_count()} CPUs" in out
    assert "| quartiles |" in out and "+=====" in out
    assert "floor: owned lock" in out
    assert "aiologic.Lock at " in out  # its distance to the floor


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
    # Generous: a loaded CI machine may also recompile the module here.
    assert result["elapsed"] < 1.0, result
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


@pytest.mark.parametrize("green", GREEN_WORLDS)
def test_owner_of_a_raw_greenlet_reads_the_same_from_every_thread(green: str) -> None:
    """Issue 13: a raw greenlet (eventlet.spawn_n, a bare greenlet.greenlet)
    owns a lock or borrows a limiter as a task of its thread's library, read
    from any thread (the reader's own library does not leak in)."""
    greenlet = _import("greenlet")
    lock = aiologic.Lock()
    limiter = aiologic.CapacityLimiter(2)
    seen: list[Any] = []
    done = threading.Event()

    def raw() -> None:
        assert lock.green_acquire(blocking=False)
        assert limiter.green_acquire(blocking=False)
        me = greenlet.getcurrent()
        assert type(me) is greenlet.greenlet
        seen.append((me, lock.owner, dict(limiter.borrowers)))

    async def body(w: World) -> None:
        if green == "eventlet":
            _import("eventlet").spawn_n(raw)
        else:
            greenlet.greenlet(raw).switch()
        await w.wait_until(lambda: seen)
        await w.wait_until(done.is_set)

    actor = Actor(green, body)
    try:
        wait_until(lambda: seen, actors=[actor])
        task, owner, borrowers = seen[0]
        assert owner == (green, id(task))
        assert borrowers == {(green, id(task)): 1}
        # From this thread (plain threading) it reads the same.
        assert lock.owner == owner
        assert dict(limiter.borrowers) == borrowers
    finally:
        done.set()
        actor.join()


def test_owner_of_a_task_subclass_names_its_library() -> None:
    """Owners whose type is a subclass defined elsewhere (here, in the tests)
    still name their library, not the module of their type."""
    import asyncio

    greenlet = _import("greenlet")

    class MyGreenlet(greenlet.greenlet):  # type: ignore[misc]
        pass

    lock = aiologic.Lock()
    task = MyGreenlet(lambda: lock.green_acquire(blocking=False))
    assert task.switch() is True
    assert lock.owner == ("threading", id(task))  # no hub in this thread

    class MyTask(asyncio.Task):  # type: ignore[type-arg]
        pass

    async def main() -> Any:
        async def hold() -> None:
            await lock2.async_acquire()

        child = MyTask(hold())
        await child
        return id(child)

    lock2 = aiologic.Lock()
    assert lock2.owner is None
    child_id = asyncio.run(main())
    assert lock2.owner == ("asyncio", child_id)


def test_library_tlocal_override(monkeypatch: pytest.MonkeyPatch) -> None:
    lowlevel = aiologic.lowlevel
    # An override makes the fast paths ask the full detection for good; the
    # tests after this one must still see (and test) the fast paths.
    monkeypatch.setattr(aiologic, "_overridden", [])
    monkeypatch.setattr(aiologic, "_checkpoint_look", aiologic._checkpoint_look)

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


def _open_portals() -> int:
    return sum(
        isinstance(o, aiologic._EventletPortal) and not o.closed
        for o in gc.get_objects()
    )


def _socket_fds() -> int:
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{name}").startswith("socket:")
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return count


def test_eventlet_threads_leave_no_portals() -> None:
    """A thread that ran an eventlet hub and waited once (which makes the
    hub's wake-up portal, a socket pair) leaves nothing of ours behind when
    it ends: no sockets, no open portal, no module-level entry. (eventlet
    itself keeps every hub that ran in a thread that has ended, with its
    epoll descriptor and its cancelled timers: what those reference lives
    on with it.)"""
    eventlet = _import("eventlet")
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("counts /proc/self/fd")
    ev = aiologic.Event()

    def one() -> None:
        eventlet.hubs.get_hub()
        assert ev.wait(0.001) is False  # parks: the portal is made

    def run_threads(n: int) -> None:
        for _ in range(n):
            outcome = Outcome()
            thread = threading.Thread(target=outcome.capture, args=((), one))
            thread.start()
            thread.join(DEADLINE)
            assert not thread.is_alive()
            outcome.unwrap()
        gc.collect()

    run_threads(2)  # warm-up: eventlet's own one-time state
    sockets, portals = _socket_fds(), _open_portals()
    entries = len(aiologic._eventlet_portals)
    run_threads(200)
    assert _socket_fds() <= sockets
    assert _open_portals() <= portals
    assert len(aiologic._eventlet_portals) <= entries


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


def test_checkpoint_look_follows_what_is_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """The look in front of the async fast paths' checkpoint filter: sniffio's
    thread-local for a trio that names itself there (>= 0.23), `_ASK` for
    one that does not (0.22: a context variable) and while checkpoints or
    library detection are overridden, back to the thread-local after."""
    trio = _import("trio")
    monkeypatch.setattr(aiologic, "_overridden", [])
    monkeypatch.setattr(aiologic, "_checkpoint_look", None)
    assert aiologic._bind_sniffio()
    sniffio = sys.modules["sniffio"]
    assert aiologic._checkpoint_look is sniffio.thread_local
    with aiologic.lowlevel.enable_checkpoints():
        assert aiologic._checkpoint_look is aiologic._ASK
        with aiologic.lowlevel.disable_checkpoints():
            assert aiologic._checkpoint_look is aiologic._ASK
        assert aiologic._checkpoint_look is aiologic._ASK
    assert aiologic._checkpoint_look is sniffio.thread_local
    for version in ("0.22.2", "0.9", "unknown"):
        monkeypatch.setattr(trio, "__version__", version)
        aiologic._renew_checkpoint_look()
        assert aiologic._checkpoint_look is aiologic._ASK, version
    monkeypatch.setattr(trio, "__version__", "1.0.0")
    aiologic._renew_checkpoint_look()
    assert aiologic._checkpoint_look is sniffio.thread_local
    aiologic.lowlevel.current_async_library_tlocal.name = None  # no override
    assert aiologic._checkpoint_look is sniffio.thread_local
    try:
        aiologic.lowlevel.current_async_library_tlocal.name = "asyncio"
        assert aiologic._checkpoint_look is aiologic._ASK
    finally:
        aiologic.lowlevel.current_async_library_tlocal.name = None
    assert aiologic._checkpoint_look is aiologic._ASK  # for good


def test_checkpoint_look_asks_for_trio_0_22(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the look cannot tell (a trio run named in sniffio's context
    variable only, as trio 0.22 does), the fast paths ask the full filter;
    where it can (no name in this thread), they do not call it at all."""
    import asyncio

    trio = _import("trio")
    sniffio = sys.modules["sniffio"]
    calls: list[bool] = []
    full = aiologic._async_checkpoint_due

    def counted() -> bool:
        calls.append(full())
        return calls[-1]

    monkeypatch.setattr(aiologic, "_async_checkpoint_due", counted)
    monkeypatch.setattr(aiologic, "_overridden", [])
    aiologic._bind_sniffio()
    sem = aiologic.BinarySemaphore()

    async def enter_exit() -> None:
        async with sem:
            pass

    asyncio.run(enter_exit())
    assert calls == []  # the look told: no trio here
    monkeypatch.setattr(trio, "__version__", "0.22.2")
    aiologic._renew_checkpoint_look()
    try:
        token = sniffio.current_async_library_cvar.set("trio")
        try:
            asyncio.run(enter_exit())
        finally:
            sniffio.current_async_library_cvar.reset(token)
    finally:
        monkeypatch.undo()
        aiologic._renew_checkpoint_look()
    assert calls == [True]


def test_checkpoint_look_renewed_by_a_racing_override(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thread binding sniffio while another enters enable_checkpoints():
    whichever renews the look last reads both changes, so the override is
    never lost (the binder paused between binding and renewing)."""
    _import("trio")
    monkeypatch.setattr(aiologic, "_overridden", [])
    monkeypatch.setattr(aiologic, "_sniffio_local", None)
    monkeypatch.setattr(aiologic, "_checkpoint_look", None)
    pause = Pause(aiologic._bind_sniffio, "_renew_checkpoint_look()")
    with pause.start(aiologic._bind_sniffio):
        switch = aiologic.lowlevel.enable_checkpoints()
        switch.__enter__()
    try:
        assert pause.outcome == [True]
        assert aiologic._checkpoint_look is aiologic._ASK
    finally:
        switch.__exit__(None, None, None)
    assert aiologic._checkpoint_look is sys.modules["sniffio"].thread_local


def test_checkpoint_look_renewed_by_a_racing_library_override(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two threads overriding the async library at once: the one that finds
    the override list non-empty (the other appended, has not renewed yet)
    still leaves the look at `_ASK` before its override is in force, so the
    fast paths never skip what `_async_checkpoint_due()` says is due."""
    _import("trio")
    monkeypatch.setattr(aiologic, "_overridden", [])
    monkeypatch.setattr(aiologic, "_checkpoint_look", aiologic._checkpoint_look)
    assert aiologic._bind_sniffio()
    tlocal = aiologic.lowlevel.current_async_library_tlocal
    setter = type(tlocal).name.fset
    pause = Pause(setter, "_renew_checkpoint_look()")

    def other() -> None:
        tlocal.name = "asyncio"

    with pause.start(other):
        tlocal.name = "trio"
        try:
            look = aiologic._checkpoint_look
            assert aiologic._async_checkpoint_due()
            assert look.name  # the fast paths ask it too
        finally:
            tlocal.name = None
    assert pause.outcome == [None]
    assert aiologic._checkpoint_look is aiologic._ASK


@pytest.mark.parametrize("paused", ["__enter__", "__exit__"])
def test_checkpoint_look_with_overrides_of_two_threads(
    monkeypatch: pytest.MonkeyPatch, paused: str
) -> None:
    """One thread enters or leaves an override, paused between changing the
    list of active overrides and renewing the look, while this thread enters
    and leaves its own: the look stays `_ASK` while either is active, and is
    the thread-local again once both are over (each renewal reads the list)."""
    _import("trio")
    monkeypatch.setattr(aiologic, "_overridden", [])
    monkeypatch.setattr(aiologic, "_overrides_active", [])
    monkeypatch.setattr(aiologic, "_checkpoint_look", None)
    assert aiologic._bind_sniffio()
    thread_local = sys.modules["sniffio"].thread_local
    theirs = aiologic.lowlevel.disable_checkpoints()
    ctx = contextvars.copy_context()  # theirs, entered and left in it
    if paused == "__exit__":
        ctx.run(theirs.__enter__)
    function = getattr(type(theirs), paused)
    pause = Pause(function, "_renew_checkpoint_look()")
    with pause.start(lambda: ctx.run(getattr(theirs, paused))):
        ours = aiologic.lowlevel.enable_checkpoints()
        ours.__enter__()
        assert aiologic._checkpoint_look is aiologic._ASK
    assert aiologic._checkpoint_look is aiologic._ASK  # ours still active
    ours.__exit__(None, None, None)
    if paused == "__enter__":
        assert aiologic._checkpoint_look is aiologic._ASK  # theirs active
        ctx.run(theirs.__exit__)
    assert aiologic._overrides_active == []
    assert aiologic._checkpoint_look is thread_local


def test_checkpoint_look_waits_for_trio_imported_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fast path in one thread while another still imports trio (in
    sys.modules, its __version__ not yet set): sniffio is not bound then, so
    the look does not settle on `_ASK` for good; it binds once trio is whole."""
    trio = _import("trio")
    monkeypatch.setattr(aiologic, "_overridden", [])
    monkeypatch.setattr(aiologic, "_sniffio_local", None)
    monkeypatch.setattr(aiologic, "_checkpoint_look", None)
    monkeypatch.setattr(trio.__spec__, "_initializing", True, raising=False)
    monkeypatch.delattr(trio, "__version__")
    assert not aiologic._async_checkpoint_due()  # no trio run can exist yet
    assert aiologic._checkpoint_look is None
    monkeypatch.undo()
    monkeypatch.setattr(aiologic, "_overridden", [])
    monkeypatch.setattr(aiologic, "_sniffio_local", None)
    monkeypatch.setattr(aiologic, "_checkpoint_look", None)
    assert not aiologic._async_checkpoint_due()
    assert aiologic._checkpoint_look is sys.modules["sniffio"].thread_local


@pytest.mark.parametrize("switch", ["enable_checkpoints", "disable_checkpoints"])
def test_checkpoint_switch_exit_without_enter(switch: str) -> None:
    """Issue 19: __exit__ without __enter__ is misuse (RuntimeError), and
    changes nothing: the switch still works afterwards."""
    make = getattr(aiologic.lowlevel, switch)
    manager = make()
    with pytest.raises(RuntimeError, match="without a matching __enter__"):
        manager.__exit__(None, None, None)
    with pytest.raises(RuntimeError, match="without a matching __enter__"):
        drive(manager.__aexit__(None, None, None))
    active = list(aiologic._overrides_active)
    with manager:
        assert aiologic._checkpoints_override.get() is (switch == "enable_checkpoints")
    assert aiologic._checkpoints_override.get() is None
    assert aiologic._overrides_active == active
    with pytest.raises(RuntimeError):
        manager.__exit__(None, None, None)


def test_checkpoint_switch_exit_in_another_context_changes_nothing() -> None:
    import contextvars

    manager = aiologic.lowlevel.disable_checkpoints()
    manager.__enter__()
    try:
        with pytest.raises(ValueError):
            contextvars.Context().run(manager.__exit__, None, None, None)
        assert aiologic._checkpoints_override.get() is False
    finally:
        manager.__exit__(None, None, None)
    assert aiologic._checkpoints_override.get() is None


def test_calls_that_do_not_wait_checkpoint_alike(cooperative_world: str) -> None:
    """With checkpoints on, a blocking call that returns without waiting
    (done at once, or timeout=0 and not available) checkpoints once, in green
    and async faces alike; with them off, it never does."""

    async def checkpoints(w: World, call: Callable[[], Awaitable[Any]]) -> bool:
        if "trio" in w.name:  # trio may run us again first: cancel instead
            trio = _import("trio")
            with trio.CancelScope() as scope:
                scope.cancel()
                await call()
            return bool(scope.cancelled_caught)
        try:
            await w.without_switching(call)
        except AssertionError as exc:
            assert "switched" in str(exc)
            return True
        return False

    async def body(w: World) -> None:
        ev = aiologic.Event()
        lock, rlock = aiologic.Lock(), aiologic.RLock()
        sem = aiologic.Semaphore(0)
        held = aiologic.Lock()
        assert await w.spawn(lambda w: w.acquire(held)).join()
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: w.wait(ev, 0),  # unset, timeout=0
            lambda: w.acquire(held, timeout=0),  # held by another task
            lambda: w.acquire(sem, timeout=0),  # no unit
            lambda: w.acquire(lock),  # free
            lambda: w.acquire(rlock),  # free
            lambda: w.acquire(rlock),  # re-entry
        ]
        with aiologic.lowlevel.enable_checkpoints():
            assert [await checkpoints(w, call) for call in calls] == [True] * 6
        if lock.locked():
            w.release(lock)
        face = "green" if w.green else "async"
        if rlock.locked():
            getattr(rlock, f"{face}_release")(rlock.count)
        with aiologic.lowlevel.disable_checkpoints():
            assert [await checkpoints(w, call) for call in calls] == [False] * 6
        ev.set()
        with aiologic.lowlevel.enable_checkpoints():
            assert await checkpoints(w, lambda: w.wait(ev, 0))  # set

    run_in(cooperative_world, body)


def test_default_checkpoints_in_a_trio_guest_run_on_asyncio() -> None:
    """The fast checkpoint filters ask sniffio whether trio runs here: in a
    trio guest run on an asyncio loop, the host's asyncio tasks make no
    checkpoint (asyncio's default) and the guest's trio tasks make trio's,
    with the primitives shared between both."""
    import asyncio

    trio = _import("trio")
    sem, lock, limiter = (
        aiologic.BinarySemaphore(),
        aiologic.Lock(),
        aiologic.CapacityLimiter(1),
    )
    primitives = (sem, lock, limiter)

    async def in_asyncio() -> list[bool]:
        assert aiologic.lowlevel.current_async_library() == "asyncio"
        switched = []
        for primitive in primitives:
            ran: list[int] = []
            asyncio.get_running_loop().call_soon(ran.append, 1)
            async with primitive:
                pass
            switched.append(bool(ran))
            await asyncio.sleep(0)
        return switched

    async def in_trio() -> list[bool]:
        assert aiologic.lowlevel.current_async_library() == "trio"
        cancelled = []
        for primitive in primitives:
            with trio.CancelScope() as scope:
                scope.cancel()
                async with primitive:
                    pass
            cancelled.append(bool(scope.cancelled_caught))
        return cancelled

    async def host() -> tuple[list[bool], list[bool]]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        trio.lowlevel.start_guest_run(
            in_trio,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=done.set_result,
        )
        switched = await in_asyncio()
        outcome = await asyncio.wait_for(done, DEADLINE)
        return switched, outcome.unwrap()

    switched, cancelled = asyncio.run(host())
    assert switched == [False, False, False]
    assert cancelled == [True, True, True]
    assert not lock.locked() and not sem.locked() and limiter.borrowed_tokens == 0


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


_PATCHED_SCRIPT = """
    import json, time
    library = "{library}"
    if library == "gevent":
        from gevent import monkey
        monkey.patch_all()
        original = lambda module, name: monkey.get_original(module, name)
    else:
        import eventlet
        from eventlet import patcher
        eventlet.monkey_patch()
        original = lambda module, name: getattr(patcher.original(module), name)
    import aiologic
    queue = aiologic.SimpleQueue()
    for i in range(3):
        queue.put(i)
    queue.clear()  # raises the fence: waits with the thread's own sleep
    queue.put(3)
    print(json.dumps({
        "sleep_patched": time.sleep is not original("time", "sleep"),
        "thread_sleep": aiologic._thread_sleep is original("time", "sleep"),
        "allocate_lock": aiologic._allocate_lock is original("_thread", "allocate_lock"),
        "get_ident": aiologic._get_ident is original("_thread", "get_ident"),
        "left": queue.get_nowait(),
    }))
"""


@pytest.mark.parametrize("library", ["gevent", "eventlet"])
def test_monkey_patched_before_import_uses_the_originals(library: str) -> None:
    """Under monkey-patching done before `import aiologic`, a thread that parks
    uses the original lock and identity, and the one spin that waits for
    other threads while holding a lock sleeps the OS thread (a patched
    time.sleep would switch to the hub while holding it)."""
    _import(library)
    result = _python(_PATCHED_SCRIPT.replace("{library}", library))
    assert result == {
        "sleep_patched": True,
        "thread_sleep": True,
        "allocate_lock": True,
        "get_ident": True,
        "left": 3,
    }


# fork: a child forked while another thread was inside the module's global
# state must find it usable. Run in a fresh interpreter (no hubs or loops of
# other tests around, and fork's warnings stay out of this process).
_FORK_HELPERS = """
    import inspect, json, os, sys, threading, time
    import aiologic

    DEADLINE = 20.0

    def paused_at(function, text, reached, resume):
        # A trace function that blocks this thread at the first line of
        # *function* whose source contains *text*, until *resume* is set.
        lines, first = inspect.getsourcelines(function)
        target = first + next(i for i, l in enumerate(lines) if text in l)
        code = function.__code__

        def local(frame, event, arg):
            if event == "line" and frame.f_lineno == target:
                reached.set()
                resume.wait(DEADLINE)
            return local

        def global_(frame, event, arg):
            return local if frame.f_code is code else None

        return global_

    def child_works():
        # What a child does first: new primitives that make their state on
        # first use, and the lock of `synchronized` for a slotted object.
        queue = aiologic.Queue()
        queue.green_put(1)
        assert queue.green_get() == 1
        assert not aiologic.Event().wait(0.001)  # makes its waiter deque
        with aiologic.synchronized(aiologic.Lock()):
            pass

    import faulthandler, linecache, re, signal, sysconfig, tempfile
    stacks = []  # what hung children were doing

    def fork_and_wait(seconds=DEADLINE):
        # 0: the child did its work and exited; "hung": it was made to dump
        # its stacks (into `stacks`) and killed after *seconds*.
        with tempfile.TemporaryFile("w+") as dump:
            # Inherited by the child from its first instruction on.
            faulthandler.register(signal.SIGUSR1, file=dump, all_threads=True)
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    child_works()
                    code = 0
                finally:
                    os._exit(code)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    return status >> 8
                time.sleep(0.01)  # polling a child's exit, not ordering threads
            os.kill(pid, signal.SIGUSR1)
            time.sleep(1)  # let it write its stacks before it is killed
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            dump.seek(0)
            stacks.append(dump.read() or "(no stacks)")
            return "hung"

    def hung_line():
        # The source line the last hung child was blocked on.
        match = re.search(r'File "(.*)", line (\\d+)', stacks[-1])
        if match is None:
            return ""
        return linecache.getline(match.group(1), int(match.group(2))).strip()

    # A free-threaded CPython without the fix of gh-144513 (python/cpython
    # #144524) can fork while another thread owns a builtin object's lock,
    # sys.modules included: the child hangs on its first touch of it,
    # whatever it runs (3.13.5t does, with no aiologic involved).
    FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("how", ["held", "inside_made_once"])
def test_fork_while_another_thread_holds_the_creation_lock(how: str) -> None:
    """Issue 13: the child of a fork that happened while another thread held
    the module's creation lock (forced: the lock held by a thread, or a
    thread paused inside `_made_once`) puts into a new Queue and exits."""
    result = _python(
        _FORK_HELPERS
        + f"""
    how = {how!r}
    reached, resume = threading.Event(), threading.Event()

    def holder():
        if how == "held":
            with aiologic._creation_lock:
                reached.set()
                resume.wait(DEADLINE)
        else:
            sys.settrace(paused_at(aiologic._made_once, "factory()", reached, resume))
            aiologic.Queue().green_put(1)  # makes its storage lock
            sys.settrace(None)

    thread = threading.Thread(target=holder)
    thread.start()
    assert reached.wait(DEADLINE)
    assert aiologic._creation_lock.locked()
    status = fork_and_wait()
    resume.set()
    thread.join(DEADLINE)
    print(json.dumps({{"status": status, "joined": not thread.is_alive()}}))
    """
    )
    assert result == {"status": 0, "joined": True}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_drops_eventlet_portals_of_other_threads() -> None:
    """A child keeps no wake-up portal of a hub whose thread is gone."""
    _import("eventlet")
    result = _python(
        _FORK_HELPERS
        + """
    import warnings
    warnings.simplefilter("ignore")
    import eventlet
    reached, resume = threading.Event(), threading.Event()

    def hub_thread():
        eventlet.sleep(0)
        aiologic.Event().wait(0.001)  # an eventlet token: its hub's portal
        reached.set()
        resume.wait(DEADLINE)

    eventlet.sleep(0)  # a hub in this thread too, which the child keeps
    aiologic.Event().wait(0.001)
    thread = threading.Thread(target=hub_thread)
    thread.start()
    assert reached.wait(DEADLINE)
    import gc

    def open_portals():
        gc.collect()
        return sum(
            isinstance(o, aiologic._EventletPortal) and not o.closed
            for o in gc.get_objects()
        )

    before = open_portals()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, str(open_portals()).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    after = int(os.read(read, 16))
    resume.set()
    thread.join(DEADLINE)
    print(json.dumps({"before": before, "after": after}))
    """
    )
    assert result == {"before": 2, "after": 1}


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


@pytest.mark.parametrize("face", ["green", "async"])
@pytest.mark.parametrize("line", ["waiters = self._waiters", "waiters.append(ticket)"])
def test_event_wait_racing_the_set_that_drops_its_deque(face: str, line: str) -> None:
    """set() wakes the waiters it finds, then drops the deque. A wait that
    found the event unset and is paused before it reads the deque, or with
    the old deque in hand before it publishes in it, runs on once set() is
    over: it returns True (its re-check sees the event set) and stays in
    no deque."""
    import asyncio

    ev = aiologic.Event()
    early = _Thread(lambda: ev.wait(DEADLINE))
    wait_until(lambda: ev.waiting == 1)
    old = ev._waiters
    if face == "green":
        function: Any = aiologic.Event._publish
        late: Any = lambda: ev.wait(DEADLINE)
    else:
        function = aiologic.Event._async_steps
        late = lambda: asyncio.run(ev.with_(DEADLINE))
    with Pause(function, line).start(late) as pause:
        ev.set()
        assert ev._waiters is None and ev.waiting == 0
    assert pause.outcome == [True]
    assert early.result() is True
    assert ev.waiting == 0 and not old


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
            # A timeout on a non-blocking call is refused, as threading does.
            result = await outcome_of(w.acquire(obj, blocking=False, timeout=DEADLINE))
            assert isinstance(result, ValueError), result
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
            # -1 waits without limit (test_acquire_minus_one_waits_without_limit).
            for bad in (math.nan, -2, -0.5, -math.inf):
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
            for bad in (math.nan, -2):
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

    def test_binary_with_max_value_is_bounded(self) -> None:
        """Issue 14: BinarySemaphore(v, max_value=1) and BinarySemaphore(v, 1)
        give a BoundedBinarySemaphore, as Semaphore(v, max_value) gives a
        BoundedSemaphore."""
        for sem, value in (
            (aiologic.BinarySemaphore(1, max_value=1), 1),
            (aiologic.BinarySemaphore(1, 1), 1),
            (aiologic.BinarySemaphore(0, 1), 0),
            (aiologic.BinarySemaphore(max_value=1), 1),
        ):
            assert type(sem) is aiologic.BoundedBinarySemaphore, sem
            assert (sem.value, sem.max_value) == (value, 1)
            if value == 0:
                sem.release()
            with pytest.raises(RuntimeError):
                sem.release()  # bounded: no release at 1
            assert sem.value == 1
        for plain in (aiologic.BinarySemaphore(), aiologic.BinarySemaphore(1, None)):
            assert type(plain) is aiologic.BinarySemaphore
            plain.release()  # stays at 1
            assert plain.value == 1
        with pytest.raises(ValueError):
            aiologic.BinarySemaphore(1, 2)  # a binary semaphore's max is 1
        with pytest.raises(ValueError):
            aiologic.BinarySemaphore(2, max_value=1)

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
        # The counter is shared by OS threads: without the GIL (3.13t) a bare
        # `+=` is not atomic, so the test's own bookkeeping takes a lock.
        count_lock = threading.Lock()

        async def worker(w: World, sem: Any) -> None:
            for _ in range(10):
                async with w.hold(sem):
                    with count_lock:
                        inside[0] += 1
                        peak[0] = max(peak[0], inside[0])
                    await w.sleep(0.0005)
                    with count_lock:
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


@pytest.mark.parametrize("fair", [True, False])
def test_semaphore_hand_offs_in_queue_order(fair: bool, monkeypatch: Any) -> None:
    """Perfect fairness: of two releasers in two threads, the first pauses
    right after it picked the head waiter. With fairness on, the head waiter
    is still in the deque, so the second releaser serves it, not the waiter
    behind it: wakes follow the queue. Off, the second one serves the second
    waiter first."""
    monkeypatch.setattr(aiologic, "_PERFECT_FAIRNESS", fair)
    sem = aiologic.Semaphore(0)
    order: list[int] = []

    def waiter(n: int) -> None:
        assert sem.green_acquire(timeout=DEADLINE)
        order.append(n)

    threads = []
    for n in (1, 2):
        thread = threading.Thread(target=waiter, args=(n,), daemon=True)
        thread.start()
        threads.append(thread)
        wait_until(lambda n=n: sem.waiting == n)  # type: ignore[misc]
    # Right after the head waiter is picked (the fair branch comes first).
    pause = Pause(
        aiologic.Semaphore._hand_off, "if self._names_owner:", 1 if fair else 2
    ).start(sem.release)
    sem.release()  # the second releaser
    first = 1 if fair else 2
    wait_until(lambda: order == [first])
    assert pause.join() is None
    for thread in threads:
        thread.join(DEADLINE)
        assert not thread.is_alive()
    assert order == ([1, 2] if fair else [2, 1])
    assert sem.waiting == 0 and sem.value == 0


def test_perfect_fairness_environment_switch() -> None:
    script = """
        import json, sys, aiologic
        print(json.dumps(aiologic._PERFECT_FAIRNESS))
    """
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    assert _python(script) is gil
    assert _python(script, AIOLOGIC_PERFECT_FAIRNESS="1") is True
    assert _python(script, AIOLOGIC_PERFECT_FAIRNESS="") is False


@pytest.mark.parametrize("timeout", [None, DEADLINE], ids=["untimed", "timed"])
def test_semaphore_trio_waiter_closed_while_its_wake_up_is_on_the_way(
    timeout: float | None,
) -> None:
    """A trio waiter's coroutine is closed while parked, after a release in
    another thread handed it the unit and sent its wake-up into the run: it
    passes the unit on, and the late wake-up leaves its task alone (it does
    not reschedule the task, now blocked in an unrelated wait)."""
    trio = pytest.importorskip("trio")
    sem = aiologic.Semaphore(0)

    async def main() -> None:
        coro = sem.async_acquire(timeout=timeout)
        assert coro.send(None) is not None  # parked: trio's trap, yielded to us
        assert sem.waiting == 1
        _in_thread(sem.release)  # claimed, wake-up queued into the run
        assert coro.close() is None  # the unit goes back
        assert sem.value == 1 and sem.waiting == 0
        event = trio.Event()  # never set: only its deadline may end the wait
        with trio.move_on_after(0.2) as scope:
            await event.wait()
        assert scope.cancelled_caught  # not woken by the stray wake-up

    trio.run(main)
    assert sem.value == 1 and sem.waiting == 0


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
                for bad in (math.nan, "1"):
                    error = ValueError if bad != "1" else TypeError
                    result = await outcome_of(w.wait(cv, bad))  # type: ignore[arg-type]
                    assert isinstance(result, error), (bad, result)
                    result = await outcome_of(w.wait_for(cv, lambda: 0, timeout=bad))  # type: ignore[arg-type]
                    assert isinstance(result, error), (bad, result)
                    assert cv.waiting == 0 and _lock_is_mine(w, cv.lock)
            assert not _held(cv.lock)

    def test_negative_timeout_has_expired(self, world: str, lock_name: str) -> None:
        """As threading.Condition: the usual `deadline - monotonic()` loop works."""

        async def body(w: World) -> None:
            cv = self.make(lock_name)
            async with w.hold(cv):
                for timeout in (-1, -0.5, -math.inf):
                    assert await w.wait(cv, timeout) is False
                    assert await w.wait_for(cv, lambda: 0, timeout) == 0
                    assert await w.wait_for(cv, lambda: "ok", timeout) == "ok"
                    assert cv.waiting == 0 and _lock_is_mine(w, cv.lock)
            assert not _held(cv.lock)

        run_in(world, body)


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


# -- every lock kind, and the races of a wait ------------------------------------
#
# The tests below force each interleaving of a wait with a notify, a timeout
# and a cancellation, for every kind of lock a Condition takes. In the
# cooperative worlds the order is set by where the test yields; in threads a
# `Pause` stops a thread (an OS thread running any world) at a
# chosen line of aiologic.py.

ANY_CONDITION_LOCKS: dict[str, Callable[[], Any]] = {
    **CONDITION_LOCKS,
    "None": lambda: None,
    "threading.Lock": threading.Lock,
}
# Locks whose waiters queue on the lock, so that `lock.waiting` shows them.
QUEUEING_LOCKS = ("Lock", "RLock", "BinarySemaphore")


class _NamedThread:
    """fn() run in a new thread called `name` (picked by Pause.new_threads)."""

    def __init__(self, name: str, fn: Callable[[], Any]) -> None:
        self.outcome = Outcome()
        self.thread = threading.Thread(
            target=self.outcome.capture, args=((), fn), name=name, daemon=True
        )
        self.thread.start()

    def join(self) -> Any:
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), _stack_of(self.thread)
        return self.outcome.unwrap()


def _lock_kind_in(world: str, lock_name: str) -> None:
    if lock_name == "threading.Lock" and world in ("gevent", "eventlet"):
        # A blocking threading lock would block the hub thread for good.
        pytest.skip("a threading lock held across a green switch blocks the hub")


async def _waiter_recording(
    w: World, cv: Any, name: str, log: list[tuple[str, Any]]
) -> str:
    """Wait once; log how it ended and whether the lock was held then."""
    async with w.hold(cv):
        try:
            notified = await w.wait(cv)
        except w.cancelled:
            log.append((name, _holds(w, cv)))
            raise
        log.append((name, notified))
        return name


def _holds(w: World, cv: Any) -> bool:
    lock = cv.lock
    if lock is None:
        return True
    if isinstance(lock, (aiologic.Lock, aiologic.Semaphore)):
        return _lock_is_mine(w, lock)
    return not lock.acquire(False)


@pytest.mark.parametrize("lock_name", list(ANY_CONDITION_LOCKS))
def test_condition_notified_then_cancelled_passes_on(
    cooperative_world: str, lock_name: str
) -> None:
    """notify() picks A; A is cancelled before it runs: B gets the wake-up.

    A still takes the lock back before its cancellation propagates. (In the
    worlds where a task that was already woken finishes its step, A may return
    normally instead: then it had the notification, and B still waits.)
    """
    _lock_kind_in(cooperative_world, lock_name)

    async def body(w: World) -> None:
        cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name]())
        log: list[tuple[str, Any]] = []
        a = w.spawn(_waiter_recording, cv, "A", log)
        await w.wait_until(lambda: cv.waiting == 1)
        b = w.spawn(_waiter_recording, cv, "B", log)
        await w.wait_until(lambda: cv.waiting == 2)
        async with w.hold(cv):
            assert cv.notify() == 1
            a.cancel()
        result = await a.join()
        if result is CANCELLED:
            assert log[0] == ("A", True), log  # it held the lock again
            # No other notify: B must have been passed the wake-up.
            assert await b.join() == "B"
        else:
            assert result == "A" and log == [("A", True)], log
            await w.wait_until(lambda: cv.waiting == 1)
            async with w.hold(cv):
                assert cv.notify() == 1
            assert await b.join() == "B"
        assert ("B", True) in log
        assert cv.waiting == 0 and not cv
        if lock_name in QUEUEING_LOCKS:
            assert cv.lock.waiting == 0

    run_in(cooperative_world, body)


def test_condition_notified_then_cancelled_asyncio_is_strict() -> None:
    """In asyncio the cancelled waiter always raises, whatever the lock."""

    async def body(w: World) -> None:
        for make in ANY_CONDITION_LOCKS.values():
            cv = aiologic.Condition(make())
            log: list[tuple[str, Any]] = []
            a = w.spawn(_waiter_recording, cv, "A", log)
            await w.wait_until(lambda cv=cv: cv.waiting == 1)
            b = w.spawn(_waiter_recording, cv, "B", log)
            await w.wait_until(lambda cv=cv: cv.waiting == 2)
            async with w.hold(cv):
                assert cv.notify() == 1
                a.cancel()
            assert await a.join() is CANCELLED
            assert await b.join() == "B"
            assert log == [("A", True), ("B", True)], (cv, log)
            assert cv.waiting == 0 and not cv

    run_in("asyncio", body)


@pytest.mark.parametrize("lock_name", list(ANY_CONDITION_LOCKS))
def test_condition_cancelled_then_notified_is_not_counted(
    cooperative_world: str, lock_name: str
) -> None:
    """A waiter cancelled before the notify is not woken by it, nor counted."""
    _lock_kind_in(cooperative_world, lock_name)

    async def body(w: World) -> None:
        cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name]())
        log: list[tuple[str, Any]] = []
        a = w.spawn(_waiter_recording, cv, "A", log)
        await w.wait_until(lambda: cv.waiting == 1)
        b = w.spawn(_waiter_recording, cv, "B", log)
        await w.wait_until(lambda: cv.waiting == 2)
        async with w.hold(cv):
            a.cancel()
            if w.green:  # the kill reaches A when it runs
                await w.wait_until(lambda: cv.waiting == 1)
            assert cv.notify_all() == 1
        assert await a.join() is CANCELLED
        assert await b.join() == "B"
        assert sorted(log) == [("A", True), ("B", True)], log
        assert cv.waiting == 0 and not cv

    run_in(cooperative_world, body)


@pytest.mark.parametrize("lock_name", list(ANY_CONDITION_LOCKS))
@pytest.mark.parametrize("waiter_world", ["threading", "asyncio", "trio"])
def test_condition_timeout_after_notify_counts_as_notified(
    waiter_world: str, lock_name: str
) -> None:
    """The wait's timeout fires, then a notify picks it before it looks:
    notify counted it, so the wait returns True (and nobody else is owed).

    In trio the timeout is a cancel scope, which withdraws the wait as it
    fires: the notify then neither counts nor wakes it, and it returns False.
    Either way, a wait is counted exactly when it returns True.
    """
    counted = waiter_world != "trio"
    cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name]())

    async def waiter(w: World) -> Any:
        async with w.hold(cv):
            return await w.wait(cv, SHORT)

    pause = Pause(aiologic.Condition._settle, "waiter.unnotified.pop()")
    with pause.new_threads():
        actor = Actor(waiter_world, waiter)
        pause.wait_reached()  # timed out, not yet looked at its claim
    assert cv.waiting == 1
    with cv:
        assert cv.notify() == counted
    pause.release()
    assert actor.join() is counted
    assert cv.waiting == 0 and not cv
    if lock_name in QUEUEING_LOCKS:
        assert cv.lock.waiting == 0


@pytest.mark.parametrize("lock_name", ["Lock", "RLock", "BinarySemaphore", "None"])
def test_condition_timeout_while_notify_hands_over(lock_name: str) -> None:
    """notify has claimed the waiter but not yet woken it (or queued it on the
    lock) when the waiter times out: it returns True, holding the lock, and
    the lock skips the token that notify queues too late."""
    cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name]())

    def waiter() -> Any:
        with cv:
            return cv.wait(SHORT), _holds(ThreadingWorld(), cv)

    def notifier() -> int:
        with cv:
            return int(cv.notify())

    # The waiter parks (and its timeout runs) only once notify has claimed
    # it: however slow the notifier is to get there, the timeout comes after.
    park = Pause(aiologic.Condition._green_wait, "ticket.park(timeout)")
    park.start(waiter)  # published, not parked yet
    assert cv.waiting == 1
    pause = Pause(aiologic.Condition._notify, "self._adapter.wake(waiter)")
    with pause.new_threads("notifier"):
        n = _NamedThread("notifier", notifier)
        pause.wait_reached()
    park.release()  # it parks now, and times out
    if lock_name == "None":
        assert park.join() == (True, True)
    else:  # the waiter timed out and now queues for the lock
        wait_until(lambda: cv.lock.waiting == 1)
    pause.release()
    assert n.join() == 1
    assert park.join() == (True, True)
    assert cv.waiting == 0 and not cv
    if lock_name != "None":
        assert cv.lock.waiting == 0


@pytest.mark.parametrize("lock_name", ["Lock", "RLock", "BinarySemaphore", "None"])
@pytest.mark.parametrize("waiter_world", ["threading", "asyncio", "trio"])
def test_condition_wait_for_gives_up_while_notify_asks(
    waiter_world: str, lock_name: str
) -> None:
    """A delegated wait_for times out while notify() evaluates its predicate
    (which then says no): the returned waiter is not left in `waiting`."""
    cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name]())
    asked: list[int] = []
    notifier = threading.get_ident()

    def predicate() -> bool:
        if threading.get_ident() == notifier:
            asked.append(1)
            if lock_name == "None":  # it returns as soon as it has given up
                wait_until(lambda: not actor.thread.is_alive())
            else:  # it gave up, and queues for the lock we hold
                wait_until(lambda: cv.lock.waiting == 1)
        return False

    async def waiter(w: World) -> Any:
        async with w.hold(cv):
            return await w.wait_for(cv, predicate, SHORT)

    actor = Actor(waiter_world, waiter)
    wait_until(lambda: cv.waiting == 1)
    with cv:
        assert cv.notify() == 0
        assert asked == [1]
        assert cv.waiting == 0
    assert actor.join() is False
    assert cv.waiting == 0 and not cv


@pytest.mark.parametrize("lock_name", list(ANY_CONDITION_LOCKS))
def test_condition_cancelled_while_taking_the_lock_back(
    async_backend: str, lock_name: str
) -> None:
    """A waiter that timed out and waits for the lock is cancelled: the
    cancellation waits until it holds the lock, then propagates (in trio, as
    trio's own Condition does, at the next checkpoint: the wait completed)."""

    async def body(w: World) -> None:
        cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name]())
        log: list[Any] = []
        deferred = w.library == "trio" and lock_name in QUEUEING_LOCKS

        async def waiter(w: World) -> Any:
            async with w.hold(cv):
                try:
                    result = await w.wait(cv, SHORT)
                except w.cancelled:
                    log.append(_holds(w, cv))
                    raise
                log.append(result)
            await w.sleep(0)

        task = w.spawn(waiter)
        await w.wait_until(lambda: cv.waiting == 1)
        if lock_name not in QUEUEING_LOCKS:
            # It takes a blocking lock back at once: nothing to cancel.
            task.cancel()
            assert await task.join() is CANCELLED and log == [True]
            return
        await w.lock(cv)
        await w.wait_until(lambda: cv.waiting == 0 and cv.lock.waiting == 1)
        task.cancel()
        await w.sleep(0.01)
        assert cv.lock.waiting == 1 and log == []
        await w.unlock(cv)
        assert await task.join() is CANCELLED
        assert log == ([False] if deferred else [True])
        assert not cv and cv.lock.waiting == 0

    run_in(async_backend, body)


def _scripted_timer(*stamps: int) -> Callable[[], int]:
    """A Condition timer that returns *stamps* in turn, then 100, 101..."""
    return itertools.chain(stamps, itertools.count(100)).__next__


def test_condition_notify_does_not_hide_a_waiter_from_another_notify() -> None:
    """Review: notify N1 began before wait W (W's stamp is later than N1's)
    and has taken W off the queue to look at it; notify N2, begun after W,
    runs meanwhile and must wake W (a lockless Condition: both at once)."""
    cv = aiologic.Condition(None, _scripted_timer(10, 5, 20))
    waiter = _Thread(lambda: cv.wait(DEADLINE))
    wait_until(lambda: cv.waiting == 1)
    notify = Pause(aiologic.Condition._notify, "if waiter is requeued")
    with notify.start(cv.notify) as first:
        woken = cv.notify()  # N2
        if not woken:  # the bug: set W free before failing the test
            first.join()
            cv.notify()
    assert first.outcome == [0]
    assert woken == 1
    assert waiter.result() is True
    assert cv.waiting == 0


def test_condition_notify_does_not_keep_a_waiter_that_left() -> None:
    """Review: a wait gives up (times out) while a notify that began before
    it holds it off the queue to look at it; the notify must not put the
    departed wait back (`waiting` would count it until some later notify)."""
    cv = aiologic.Condition(None, _scripted_timer(10, 5))
    waiter = _Thread(lambda: cv.wait(SHORT))
    wait_until(lambda: cv.waiting == 1)
    notify = Pause(aiologic.Condition._notify, "if waiter is requeued")
    with notify.start(cv.notify) as first:
        assert waiter.result() is False  # timed out, withdrawn
    assert first.outcome == [0]
    assert cv.waiting == 0


@pytest.mark.parametrize("lock_name", ["None", "threading.Lock"])
def test_condition_notify_skips_a_waiter_whose_loop_closed(lock_name: str) -> None:
    """Review (after the core's undeliverable wake-ups): the oldest waiter's
    loop closed; notify cannot hand it the notification, so it neither
    counts it nor spends the notification on it: the next waiter gets it."""
    import asyncio

    cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name]())

    async def dead_wait() -> Any:
        with cv:
            return await cv

    loop = asyncio.new_event_loop()
    task = loop.create_task(dead_wait())
    loop.run_until_complete(asyncio.sleep(0))  # it publishes, parks
    loop.close()
    task._log_destroy_pending = False
    assert cv.waiting == 1

    def wait() -> Any:
        with cv:
            return cv.wait(DEADLINE)

    waiter = _Thread(wait)
    wait_until(lambda: cv.waiting == 2)
    with cv:
        assert cv.notify() == 1
    assert waiter.result() is True
    assert cv.waiting == 0


class _FlakyLock:
    """A threading lock whose acquire() can be told to fail once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fail: list[BaseException] = []
        self.calls = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        self.calls += 1
        if self.fail:
            raise self.fail.pop()
        return self.lock.acquire(blocking, timeout)

    def release(self) -> None:
        self.lock.release()

    def locked(self) -> bool:
        return self.lock.locked()


def test_condition_error_while_taking_the_lock_back_is_not_retried() -> None:
    """Only the waiter's own cancellation is deferred: another exception from
    taking the lock back propagates at once, and a notification it had goes
    on to the next waiter."""
    lock = _FlakyLock()
    cv = aiologic.Condition(lock)

    def waiter(name: str, log: list[Any]) -> Any:
        lock.acquire()
        try:
            result = cv.wait(DEADLINE)
        except OSError as exc:
            log.append((name, str(exc), lock.locked()))
            return "failed"
        log.append((name, result))
        lock.release()
        return name

    log: list[Any] = []
    a = _NamedThread("A", lambda: waiter("A", log))
    wait_until(lambda: cv.waiting == 1)
    b = _NamedThread("B", lambda: waiter("B", log))
    wait_until(lambda: cv.waiting == 2)
    with cv:
        lock.fail.append(OSError("no lock for you"))
        calls = lock.calls
        assert cv.notify() == 1
    assert a.join() == "failed"
    assert b.join() == "B"  # passed on: no second notify
    assert sorted(log) == [("A", "no lock for you", False), ("B", True)], log
    # A called acquire() once to take the lock back, B once.
    assert lock.calls == calls + 2
    assert cv.waiting == 0 and not cv


def test_condition_notify_wakes_only_waits_that_began_before() -> None:
    """The timer stamps each wait; notify wakes only waits stamped before it."""
    stamps = iter([10, 20, 15, 30])  # A, B, notify, notify
    cv = aiologic.Condition(None, lambda: next(stamps))

    async def waiter(w: World) -> Any:
        return await w.wait(cv, DEADLINE)

    async def body(w: World) -> None:
        a = w.spawn(waiter)
        await w.wait_until(lambda: cv.waiting == 1)
        b = w.spawn(waiter)
        await w.wait_until(lambda: cv.waiting == 2)
        assert cv.notify_all() == 1  # at 15: A (10), not B (20)
        assert await a.join() is True and cv.waiting == 1
        assert cv.notify_all() == 1  # at 30
        assert await b.join() is True and cv.waiting == 0

    run_in("asyncio", body)


@pytest.mark.parametrize("lock_name", list(ANY_CONDITION_LOCKS))
def test_condition_delegated_no_goes_to_the_back(lock_name: str) -> None:
    """A delegated predicate that says no sends its waiter behind the others;
    notify_all ends even when the timer does not move."""
    cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name](), lambda: 0)
    ready = {"A": False}
    order: list[str] = []

    async def waiter(w: World, name: str) -> None:
        async with w.hold(cv):
            if name == "A":
                await w.wait_for(cv, lambda: ready["A"], DEADLINE)
            else:
                assert await w.wait(cv, DEADLINE)
            order.append(name)

    async def body(w: World) -> None:
        tasks = []
        for i, name in enumerate("ABC"):
            tasks.append(w.spawn(waiter, name))
            await w.wait_until(lambda i=i: cv.waiting == i + 1)
        async with w.hold(cv):
            assert cv.notify() == 1  # A says no, goes to the back; B
        await w.wait_until(lambda: order == ["B"])
        async with w.hold(cv):
            ready["A"] = True
            assert cv.notify() == 1  # C, not A
        await w.wait_until(lambda: order == ["B", "C"])
        async with w.hold(cv):
            ready["A"] = False
            assert cv.notify_all() == 0  # ends, although the timer stands
            assert cv.waiting == 1
            ready["A"] = True
            assert cv.notify_all() == 1
        for task in tasks:
            await task.join()
        assert order == ["B", "C", "A"] and cv.waiting == 0

    run_in("asyncio", body)


def test_condition_checks_its_lock_when_made() -> None:
    class OnlyAcquire:
        def acquire(self) -> bool:
            return True

    class AsyncLock:  # as asyncio.Lock
        async def acquire(self) -> bool:
            return True

        def release(self) -> None:
            pass

    for bad in (object(), "lock", OnlyAcquire(), AsyncLock(), aiologic.Event()):
        with pytest.raises(TypeError, match=r"acquire\(\) and release\(\)"):
            aiologic.Condition(bad)
    # Anything with a blocking acquire() and release() will do.
    cv = aiologic.Condition(_FlakyLock())
    with cv:
        assert cv and cv.notify() == 0
        assert cv.wait(0) is False
    assert not cv


def test_condition_notify_count_is_an_int_at_least_zero() -> None:
    class Two:
        def __index__(self) -> int:
            return 2

    cv = aiologic.Condition(None)
    waiters = [_NamedThread("w", lambda: cv.wait(DEADLINE)) for _ in range(3)]
    wait_until(lambda: cv.waiting == 3)
    for bad, error in [
        (1.5, TypeError),
        (math.nan, TypeError),
        ("1", TypeError),
        (None, TypeError),
        (-1, ValueError),
    ]:
        with pytest.raises(error):
            cv.notify(bad)  # type: ignore[arg-type]
        assert cv.waiting == 3  # nothing changed
    assert cv.notify(0) == 0 and cv.waiting == 3
    assert cv.notify(Two()) == 2  # type: ignore[arg-type]
    assert cv.notify(True) == 1
    assert [w.join() for w in waiters] == [True] * 3


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
# Forced interleavings
# ============================================================================


class Pause:
    """Stop one thread at a line of aiologic.py until `release()`.

    ``Pause(function, text)`` picks the line of *function* (of aiologic)
    whose source contains *text* (it must be on one line only, or name its
    *occurrence*, from 1), so the test survives edits around it. The first
    traced thread to reach the line stops there, for at most DEADLINE
    seconds, and sets `reached`; threads after it, and it once released,
    pass. Which threads are traced:

    - ``pause.start(fn)``: a new thread that runs fn(), returned once it
      stands at the line (with ``wait=False`` at once: `wait_reached()`
      later). `join()` releases it, joins it and returns what fn returned
      or the exception it raised; ``with pause.start(fn):`` joins on leaving.
      `outcome` is that value in a list, empty while fn runs; `thread`
      the thread.
    - ``with pause.new_threads(prefix):`` threads started inside the block
      whose name starts with *prefix* (``actor-trio``, a `_NamedThread`'s).
      Leaving the block releases the stopped thread only if the block raised.
    - ``with pause.this_thread():`` the calling thread, inside the block.
    """

    def __init__(self, function: Any, text: str, occurrence: int = 0) -> None:
        function = getattr(function, "__func__", function)
        lines, first = inspect.getsourcelines(function)
        found = [first + i for i, line in enumerate(lines) if text in line]
        if occurrence:
            assert len(found) >= occurrence, (function, text, found)
        else:
            assert len(found) == 1, (function, text, found)
        self.line = found[occurrence - 1 if occurrence else 0]
        self._code = function.__code__
        self._prefix = ""  # of the names of threads that new_threads() traces
        self._first = threading.Lock()  # taken by the thread that stops
        self._released = threading.Event()
        self.reached = threading.Event()
        self.outcome: list[Any] = []
        self.thread: threading.Thread | None = None

    def _calls(self, frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code is not self._code or self.reached.is_set():
            return None
        if not threading.current_thread().name.startswith(self._prefix):
            return None
        return self._lines

    def _lines(self, frame: Any, event: str, arg: Any) -> Any:
        here = event == "line" and frame.f_lineno == self.line
        if here and self._first.acquire(blocking=False):
            self.reached.set()
            assert self._released.wait(DEADLINE), f"line {self.line} not released"
        return self._lines

    def wait_reached(self) -> None:
        assert self.reached.wait(DEADLINE), f"no thread reached line {self.line}"

    def release(self) -> None:
        self._released.set()

    def start(self, fn: Callable[[], Any], *, wait: bool = True) -> Pause:
        def traced() -> Any:
            sys.settrace(self._calls)
            try:
                return fn()
            finally:
                sys.settrace(None)

        self.thread, self.outcome = _other_thread(traced)
        if wait:
            self.wait_reached()
        return self

    def join(self) -> Any:
        self.release()
        assert self.thread is not None, "join() is for a thread of start()"
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), _stack_of(self.thread)
        return self.outcome[0]

    def __enter__(self) -> Pause:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.join()

    @contextlib.contextmanager
    def new_threads(self, prefix: str = "") -> Iterator[Pause]:
        self._prefix = prefix
        threading.settrace(self._calls)
        try:
            yield self
        except BaseException:
            self.release()  # the test is failing already
            raise
        finally:
            threading.settrace(None)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def this_thread(self) -> Iterator[Pause]:
        sys.settrace(self._calls)
        try:
            yield self
        finally:
            sys.settrace(None)


@pytest.mark.parametrize("claimed", [True, False], ids=["claimed", "unclaimed"])
@pytest.mark.parametrize("kind", ["event", "lock"])
def test_timed_asyncio_park_ended_by_its_timer_asks_the_ticket(
    kind: str, claimed: bool
) -> None:
    """An untimed asyncio park ends only by a releaser's claim and wake, so
    it is taken as woken without a look at the ticket; a timed one may end
    by its timer and must look. Here the timer's resolve ends the park
    (called at once, not waited for) while a releaser in another thread
    stands after its claim, before its wake: the wait succeeds (the event
    is set, the lock is the waiter's). Without a claim it times out and
    leaves no ticket behind."""
    import asyncio

    ev, lock = aiologic.Event(), aiologic.Lock()
    primitive: Any = ev if kind == "event" else lock
    pause = Pause(aiologic._AsyncioTicket.set, "if _aio_get_running_loop() is")
    holding, go = threading.Event(), threading.Event()

    def releaser() -> None:
        if kind == "lock":
            assert lock.green_acquire()
        holding.set()
        assert go.wait(DEADLINE)
        if kind == "lock":
            lock.green_release()
        else:
            ev.set()

    pause.start(releaser, wait=False)
    assert holding.wait(DEADLINE)

    async def main() -> bool:
        if kind == "lock":
            waiter = asyncio.ensure_future(lock.async_acquire(timeout=DEADLINE))
        else:
            waiter = asyncio.ensure_future(ev.with_(DEADLINE))
        while primitive.waiting != 1:
            await asyncio.sleep(0)
        ticket = primitive._waiters[0]
        if claimed:
            go.set()
            await asyncio.get_running_loop().run_in_executor(None, pause.wait_reached)
        ticket._resolve()  # what the timer of a timed park does
        result: bool = await waiter
        return result

    assert asyncio.run(main()) is claimed
    go.set()
    assert pause.join() is None
    assert primitive.waiting == 0
    if kind == "lock":  # held by the waiter's (finished) task, or free
        assert lock.locked() is claimed
    else:
        assert ev.is_set()


@pytest.mark.parametrize("kind", ["lock", "semaphore"])
@pytest.mark.parametrize("library", ["asyncio", "trio"])
def test_untimed_async_park_cancelled_between_a_claim_and_its_wake(
    library: str, kind: str
) -> None:
    """An untimed async park is taken as woken without a look at its ticket
    (only a releaser's claim and wake end it). Here a releaser in another
    thread stands after its claim, before its wake, when the waiter is
    cancelled. asyncio: the cancellation ends the park with an exception,
    and the waiter passes the unit on. trio: the claim wins the abort, the
    wake that follows ends the park normally, and the waiter holds the unit
    (the cancellation comes at its next checkpoint). Either way exactly one
    unit exists afterwards."""
    lock = aiologic.Lock() if kind == "lock" else aiologic.Semaphore(1)
    line = (
        "if _aio_get_running_loop() is"
        if library == "asyncio"
        else "return self._wake()"
    )
    ticket_class: Any = (
        aiologic._AsyncioTicket if library == "asyncio" else aiologic._Ticket
    )
    pause = Pause(ticket_class.set, line)
    holding, go = threading.Event(), threading.Event()

    def releaser() -> None:
        assert lock.green_acquire()
        holding.set()
        assert go.wait(DEADLINE)
        lock.green_release()

    pause.start(releaser, wait=False)
    assert holding.wait(DEADLINE)
    outcome: list[Any] = []

    if library == "asyncio":
        import asyncio

        async def amain() -> None:
            async def waiter() -> None:
                outcome.append(await lock.async_acquire())

            task = asyncio.ensure_future(waiter())
            while lock.waiting != 1:
                await asyncio.sleep(0)
            go.set()
            await asyncio.get_running_loop().run_in_executor(None, pause.wait_reached)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            pause.release()
            await asyncio.get_running_loop().run_in_executor(None, pause.join)
            for _ in range(3):  # the releaser's wake (a no-op) runs meanwhile
                await asyncio.sleep(0)

        asyncio.run(amain())
        assert outcome == []  # cancelled: the unit was passed on
    else:
        import trio

        async def tmain() -> None:
            async with trio.open_nursery() as nursery:
                scope = trio.CancelScope()

                async def waiter() -> None:
                    with scope:
                        acquired = await lock.async_acquire()
                        outcome.append(acquired)
                        try:
                            await trio.sleep(DEADLINE)  # the cancellation comes here
                        finally:
                            lock.async_release()

                nursery.start_soon(waiter)
                while lock.waiting != 1:
                    await trio.sleep(0)
                go.set()
                await trio.to_thread.run_sync(pause.wait_reached)
                scope.cancel()  # its abort finds the ticket claimed: it waits on
                pause.release()
                await trio.to_thread.run_sync(pause.join)

        trio.run(tmain)
        assert outcome == [True]  # handed the unit, then cancelled after it
    assert lock.waiting == 0
    assert not lock.locked()
    if kind == "semaphore":
        assert lock.value == 1
    assert lock.green_acquire(blocking=False)


# ============================================================================
# CountdownEvent
# ============================================================================


def _in_thread(fn: Callable[[], Any]) -> None:
    """Run fn() in a plain thread of its own and wait (with the deadline)."""
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    thread.join(DEADLINE)
    assert not thread.is_alive(), "the thread is still running"


class TestCountdownEvent:
    def test_value_and_errors(self) -> None:
        ce = aiologic.CountdownEvent()
        assert (ce.value, ce.initial_value, ce.waiting) == (0, 0, 0) and ce
        assert not hasattr(ce, "set") and not hasattr(ce, "is_set")
        with pytest.raises(RuntimeError):
            ce.down()
        assert ce.value == 0 and ce
        ce.up()
        ce.up(3)
        assert ce.value == 4 and not ce
        for _ in range(4):
            ce.down()
        assert ce.value == 0 and ce
        with pytest.raises(RuntimeError):
            ce.down()
        assert ce.value == 0
        ce = aiologic.CountdownEvent(2)
        assert (ce.value, ce.initial_value) == (2, 2) and not ce
        ce.clear()
        assert ce.value == 0 and ce and ce.initial_value == 2
        with pytest.raises(ValueError):
            aiologic.CountdownEvent(-1)
        with pytest.raises(ValueError):
            ce.up(-1)
        assert ce.value == 0

    def test_wait(self, world: str) -> None:
        async def waiter(w: World, ce: Any, timeout: float | None) -> Any:
            return await w.wait(ce, timeout)

        async def body(w: World) -> None:
            ce = aiologic.CountdownEvent()
            await w.wait(ce)  # zero counts as set
            assert await w.wait(ce, 0) is True
            ce.up(2)
            assert await w.wait(ce, 0) is False
            start = time.monotonic()
            assert await w.wait(ce, SHORT) is False
            assert time.monotonic() - start >= SHORT / 2
            assert ce.waiting == 0 and ce.value == 2
            tasks = []
            for i, timeout in enumerate([None, DEADLINE, math.inf]):
                tasks.append(w.spawn(waiter, ce, timeout))
                await w.wait_until(lambda i=i: ce.waiting == i + 1)
            ce.down()
            ce.up()
            ce.down()
            assert ce.value == 1 and ce.waiting == 3  # not zero yet: nobody woken
            ce.down()
            results = [await task.join() for task in tasks]
            assert results[1:] == [True, True]
            assert ce.waiting == 0 and ce
            # clear() wakes the waiters too.
            ce.up(5)
            task = w.spawn(waiter, ce, DEADLINE)
            await w.wait_until(lambda: ce.waiting == 1)
            ce.clear()
            assert await task.join() is True
            assert ce.value == 0 and ce.waiting == 0

        run_in(world, body)

    def test_cancelled_waiter_leaves(self, cooperative_world: str) -> None:
        async def waiter(w: World, ce: Any) -> Any:
            return await w.wait(ce, DEADLINE)

        async def body(w: World) -> None:
            ce = aiologic.CountdownEvent(1)
            doomed = w.spawn(waiter, ce)
            await w.wait_until(lambda: ce.waiting == 1)
            other = w.spawn(waiter, ce)
            await w.wait_until(lambda: ce.waiting == 2)
            doomed.cancel()
            assert await doomed.join() is CANCELLED
            assert ce.waiting == 1
            ce.down()
            assert await other.join() is True
            assert ce.waiting == 0

        run_in(cooperative_world, body)

    def test_threads_release_asyncio_and_trio_at_zero(self) -> None:
        """Issue 3, acceptance 3: up()/down() from threads; the waiters in
        asyncio and trio wake exactly when the value reaches 0."""
        ce = aiologic.CountdownEvent(1)
        released: list[tuple[str, int]] = []

        async def waiter(w: World) -> Any:
            result = await w.wait(ce, DEADLINE)
            released.append((w.name, ce.value))
            return result

        actors = [Actor("asyncio", waiter), Actor("trio", waiter)]
        wait_until(lambda: ce.waiting == 2, actors=actors)
        for step in (lambda: ce.up(2), ce.down, ce.up, ce.down, ce.down):
            _in_thread(step)
            assert ce.value >= 1 and ce.waiting == 2 and released == []

        def churn() -> None:  # never brings the value to 0
            for _ in range(200):
                ce.up()
                ce.down()

        threads = [threading.Thread(target=churn, daemon=True) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DEADLINE)
        assert ce.value == 1
        # A timed wait gives a wrongly woken waiter the time to show up.
        assert ce.wait(SHORT) is False
        assert released == [] and ce.waiting == 2
        _in_thread(ce.down)
        assert join_all(actors) == [True, True]
        assert sorted(released) == [("asyncio", 0), ("trio", 0)]
        assert ce.waiting == 0 and ce
        with pytest.raises(RuntimeError):
            ce.down()

    def test_repr(self) -> None:
        ce = aiologic.CountdownEvent(3)
        before = repr(ce)
        assert "CountdownEvent" in before and re.search(r"\b3\b", before)
        thread = threading.Thread(target=ce.wait, daemon=True)
        thread.start()
        wait_until(lambda: ce.waiting == 1)
        assert "waiting=1" in repr(ce)
        ce.clear()
        thread.join(DEADLINE)
        assert repr(ce) != before and "waiting=1" not in repr(ce)


def test_countdown_wait_begun_before_zero_survives_a_quick_up() -> None:
    """Issue 12: a wait that began while the value was above zero is woken
    by the fall to zero even when up() follows before it parks."""
    ce = aiologic.CountdownEvent(1)
    pause = Pause(aiologic.CountdownEvent.wait, "return zero.wait(timeout)")
    pause.start(lambda: ce.wait(DEADLINE))
    ce.down()
    ce.up()
    assert pause.join() is True and ce.value == 1 and ce.waiting == 0
    assert ce.wait(0) is False


def test_countdown_up_while_down_is_waking() -> None:
    """down() took the value to zero and is about to wake: waits that begin
    now return at once, up() starts a new round, and the parked waiter is
    still woken."""
    ce = aiologic.CountdownEvent(1)
    parked: list[Any] = []
    thread = threading.Thread(
        target=lambda: parked.append(ce.wait(DEADLINE)), daemon=True
    )
    thread.start()
    wait_until(lambda: ce.waiting == 1)
    pause = Pause(aiologic.CountdownEvent.down, "zero.set()").start(ce.down)
    assert ce.value == 0 and ce.wait(0) is True
    ce.up()
    assert ce.wait(0) is False and parked == []
    pause.join()
    thread.join(DEADLINE)
    assert parked == [True] and ce.value == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: aiologic.CountdownEvent(2**100),
        lambda: aiologic.BoundedSemaphore(0, 2**100),
    ],
)
def test_huge_counts_in_constant_memory(make: Callable[[], Any]) -> None:
    """Issue 19: any int, in constant memory (one slot per unit would not
    even fit an index-sized integer)."""
    obj = make()
    if isinstance(obj, aiologic.CountdownEvent):
        obj.up(2**64)
        assert obj.value == 2**100 + 2**64 and not obj
        obj.down()
        assert obj.value == 2**100 + 2**64 - 1
        obj.clear()
        assert obj.value == 0 and obj.wait(0)
    else:
        for _ in range(3):
            obj.release()
        assert obj.value == 3 and obj.max_value == 2**100
        assert obj.green_acquire(blocking=False)
        assert obj.value == 2


def test_countdown_many_threads_count_exactly() -> None:
    """up() and down() from many threads at once lose no unit."""
    ce = aiologic.CountdownEvent()
    sem = aiologic.BoundedSemaphore(0, 4000)

    def work() -> None:
        for _ in range(500):
            ce.up(2)
            ce.down()
            sem.release()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    assert ce.value == 4000 and sem.value == 4000
    with pytest.raises(RuntimeError):
        sem.release()
    assert sem.value == 4000


class _HalfIndex:
    def __index__(self) -> Any:
        return 2.5


@pytest.mark.parametrize(
    "call",
    [
        lambda: aiologic.CountdownEvent(_HalfIndex()),  # type: ignore[arg-type]
        lambda: aiologic.CountdownEvent().up(_HalfIndex()),  # type: ignore[arg-type]
        lambda: aiologic.BoundedSemaphore(0, _HalfIndex()),  # type: ignore[arg-type]
        lambda: aiologic.BoundedSemaphore(_HalfIndex(), 5),  # type: ignore[arg-type]
        lambda: aiologic.BoundedSemaphore(0, 1).release(None),  # type: ignore[arg-type]
        lambda: aiologic.CapacityLimiter(_HalfIndex()),  # type: ignore[arg-type]
        lambda: aiologic.Semaphore(_HalfIndex()),  # type: ignore[arg-type]
        lambda: aiologic.Semaphore(0).release(_HalfIndex()),  # type: ignore[arg-type]
        lambda: aiologic.Barrier(_HalfIndex()),  # type: ignore[arg-type]
        lambda: aiologic.RCapacityLimiter(1).green_acquire(_HalfIndex()),  # type: ignore[arg-type]
    ],
)
def test_counts_go_through_operator_index(call: Callable[[], Any]) -> None:
    with pytest.raises(TypeError):
        call()


# ============================================================================
# Latch, Barrier, RBarrier
# ============================================================================

BARRIERS = pytest.mark.parametrize("factory", ["Barrier", "RBarrier"])


async def _party(w: World, barrier: Any, timeout: float | None = None) -> Any:
    """Wait on the barrier: its result, or the exception it raised."""
    return await outcome_of(w.wait(barrier, timeout))


def _broken(result: Any) -> bool:
    return isinstance(result, aiologic.BrokenBarrierError)


def test_broken_barrier_error() -> None:
    assert issubclass(aiologic.BrokenBarrierError, RuntimeError)
    for factory in ("Latch", "Barrier", "RBarrier"):
        with pytest.raises(ValueError):
            getattr(aiologic, factory)(-1)
    assert not hasattr(aiologic.Barrier(2), "reset")
    assert not hasattr(aiologic.Latch(2), "reset")


class TestLatch:
    def test_single_use_stays_open(self, world: str) -> None:
        async def body(w: World) -> None:
            latch = aiologic.Latch(3)
            assert latch.parties == 3 and not latch.broken and not latch
            tasks = []
            for i in range(2):
                tasks.append(w.spawn(_party, latch, [None, DEADLINE][i]))
                await w.wait_until(lambda i=i: latch.waiting == i + 1)
            assert not latch
            assert await w.wait(latch, DEADLINE) is None
            assert [await task.join() for task in tasks] == [None, None]
            assert latch and not latch.broken and latch.waiting == 0
            # It stays open: later waits return at once, timeout=0 included.
            assert await w.wait(latch, 0) is None
            assert await w.wait(latch) is None
            assert latch and not latch.broken

        run_in(world, body)

    def test_timeout_breaks_it_for_everybody(self, world: str) -> None:
        async def body(w: World) -> None:
            latch = aiologic.Latch(3)
            other = w.spawn(_party, latch, DEADLINE)
            await w.wait_until(lambda: latch.waiting == 1)
            assert _broken(await _party(w, latch, SHORT))
            assert _broken(await other.join())
            assert latch.broken and latch and latch.waiting == 0
            start = time.monotonic()
            assert _broken(await _party(w, latch, DEADLINE))  # at once
            assert time.monotonic() - start < DEADLINE / 4

        run_in(world, body)

    def test_abort(self, world: str) -> None:
        async def body(w: World) -> None:
            latch = aiologic.Latch(2)
            task = w.spawn(_party, latch)
            await w.wait_until(lambda: latch.waiting == 1)
            latch.abort()
            assert _broken(await task.join())
            assert latch.broken and latch and latch.waiting == 0
            assert _broken(await _party(w, latch))

        run_in(world, body)

    def test_late_timeout_does_not_break_a_full_latch(self) -> None:
        """Review: every party has arrived and the last one is about to open
        the latch when a late wait with timeout=0 comes: it is no party, so
        it waits for the outcome instead of breaking the latch for all."""
        latch = aiologic.Latch(2)
        first = _Thread(latch.wait)
        wait_until(lambda: latch.waiting == 1)
        arrive = Pause(aiologic._BarrierBase._arrive, "if index == last and")
        with arrive.start(latch.wait) as last:
            late = _Thread(lambda: latch.wait(0))
            # It gave up (and broke the latch), or waits beside the first.
            wait_until(lambda: not late.thread.is_alive() or latch.waiting == 2)
        assert last.outcome == [None]
        assert late.result() is None
        assert first.result() is None
        assert latch and not latch.broken and latch.waiting == 0


@BARRIERS
class TestBarrier:
    def test_abort_while_a_round_passes(self, factory: str) -> None:
        """Review: abort() lands after the last party passed the round and
        before the next round is installed: the barrier must end up broken
        (a later party raises), not silently fresh."""
        b = getattr(aiologic, factory)(2)
        first = _Thread(b.wait)
        wait_until(lambda: b.waiting == 1)
        # The last party stands after the pass, before the next round is in.
        arrive = Pause(aiologic._BarrierBase._arrive, "self._cycle = ")
        with arrive.start(b.wait) as last:
            b.abort()
        assert last.outcome == [1] and first.result() == 0  # the round passed
        assert b.broken
        with pytest.raises(aiologic.BrokenBarrierError):
            b.wait(DEADLINE)

    def test_indices_follow_arrival_order(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            barrier = getattr(aiologic, factory)(4)
            assert barrier.parties == 4 and not barrier.broken
            for _ in range(3):  # cyclic
                tasks = []
                for i in range(3):
                    tasks.append(w.spawn(_party, barrier, [None, DEADLINE, 1e10][i]))
                    await w.wait_until(lambda i=i: barrier.waiting == i + 1)
                assert await w.wait(barrier, DEADLINE) == 3
                assert [await task.join() for task in tasks] == [0, 1, 2]
                assert barrier.waiting == 0 and not barrier.broken

        run_in(world, body)

    def test_timeout_breaks_it_for_everybody(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            barrier = getattr(aiologic, factory)(3)
            other = w.spawn(_party, barrier, DEADLINE)
            await w.wait_until(lambda: barrier.waiting == 1)
            start = time.monotonic()
            assert _broken(await _party(w, barrier, SHORT))
            assert time.monotonic() - start >= SHORT / 2
            assert _broken(await other.join())
            assert barrier.broken and barrier.waiting == 0
            # It stays broken: later parties fail at once.
            assert _broken(await _party(w, barrier, DEADLINE))
            assert _broken(await _party(w, barrier))
            assert barrier.broken and barrier.waiting == 0

        run_in(world, body)

    def test_abort(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            barrier = getattr(aiologic, factory)(3)
            tasks = []
            for i in range(2):
                tasks.append(w.spawn(_party, barrier))
                await w.wait_until(lambda i=i: barrier.waiting == i + 1)
            barrier.abort()
            results = [await task.join() for task in tasks]
            assert all(_broken(result) for result in results), results
            assert barrier.broken and barrier.waiting == 0
            barrier.abort()  # harmless
            assert _broken(await _party(w, barrier))

        run_in(world, body)

    def test_cancelled_party_breaks_it(
        self, cooperative_world: str, factory: str
    ) -> None:
        async def body(w: World) -> None:
            barrier = getattr(aiologic, factory)(3)
            doomed = w.spawn(_party, barrier)
            await w.wait_until(lambda: barrier.waiting == 1)
            other = w.spawn(_party, barrier, DEADLINE)
            await w.wait_until(lambda: barrier.waiting == 2)
            doomed.cancel()
            assert await doomed.join() is CANCELLED
            assert _broken(await other.join())
            assert barrier.broken and barrier.waiting == 0

        run_in(cooperative_world, body)

    def test_context_manager_aborts_on_error(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            barrier = getattr(aiologic, factory)(2)
            task = w.spawn(_party, barrier)
            await w.wait_until(lambda: barrier.waiting == 1)
            async with w.hold(barrier) as index:
                assert index == 1
            assert await task.join() == 0
            assert not barrier.broken
            task = w.spawn(_party, barrier)
            await w.wait_until(lambda: barrier.waiting == 1)
            with pytest.raises(ZeroDivisionError):
                async with w.hold(barrier) as index:
                    assert index == 1
                    1 / 0  # noqa: B018
            assert await task.join() == 0  # it had passed already
            assert barrier.broken
            assert _broken(await _party(w, barrier))

        run_in(world, body)

    def test_repr(self, factory: str) -> None:
        barrier = getattr(aiologic, factory)(3)
        before = repr(barrier)
        assert factory in before and re.search(r"\b3\b", before)

        def party() -> None:
            with pytest.raises(aiologic.BrokenBarrierError):
                barrier.wait()

        thread = threading.Thread(target=party, daemon=True)
        thread.start()
        wait_until(lambda: barrier.waiting == 1)
        assert "waiting=1" in repr(barrier)
        barrier.abort()
        thread.join(DEADLINE)
        assert "broken" in repr(barrier)


@pytest.mark.parametrize("abort", [False, True])
def test_rbarrier_reset_while_a_round_passes(abort: bool) -> None:
    """Review: reset() (after an abort, or alone) lands while the last party
    stands between the pass and installing the next round: that late install
    must not bring back a round the reset replaced."""
    b = aiologic.RBarrier(2)
    first = _Thread(b.wait)
    wait_until(lambda: b.waiting == 1)
    arrive = Pause(aiologic._BarrierBase._arrive, "self._cycle = ")
    with arrive.start(b.wait) as last:
        if abort:
            b.abort()
        b.reset()
        assert not b.broken
    assert last.outcome == [1] and first.result() == 0
    assert not b.broken and b.waiting == 0
    other = _Thread(lambda: b.wait(DEADLINE))
    wait_until(lambda: b.waiting == 1)
    assert b.wait(DEADLINE) == 1
    assert other.result() == 0
    assert not b.broken and b.waiting == 0


@pytest.mark.parametrize("face", ["green", "async"])
def test_barrier_party_that_read_a_full_round_joins_the_next(face: str) -> None:
    """A party pauses after it read the current round; two others fill and
    pass that round meanwhile. It then finds the round full, waits it out
    and joins the next round as its first party."""
    barrier = aiologic.Barrier(2)
    pause = Pause(aiologic.Barrier._arrive, "index = cycle.arrivals()")

    def late() -> int:
        if face == "green":
            return barrier.wait(DEADLINE)  # type: ignore[no-any-return]
        asyncio = _import("asyncio")
        return asyncio.run(barrier.with_(DEADLINE))  # type: ignore[no-any-return]

    pause.start(late)
    others: list[int] = []
    fillers = [
        threading.Thread(target=lambda: others.append(barrier.wait(DEADLINE)))
        for _ in range(2)
    ]
    for filler in fillers:
        filler.start()
    for filler in fillers:
        filler.join(DEADLINE)
    assert sorted(others) == [0, 1] and pause.outcome == []
    pause.release()
    wait_until(lambda: barrier.waiting == 1)
    assert barrier.wait(DEADLINE) == 1
    assert pause.join() == 0 and not barrier.broken and barrier.waiting == 0


def test_rbarrier_reset(world: str) -> None:
    async def body(w: World) -> None:
        barrier = aiologic.RBarrier(3)
        tasks = []
        for i in range(2):
            tasks.append(w.spawn(_party, barrier, DEADLINE))
            await w.wait_until(lambda i=i: barrier.waiting == i + 1)
        barrier.reset()  # the parties waiting now are told it broke
        results = [await task.join() for task in tasks]
        assert all(_broken(result) for result in results), results
        assert not barrier.broken and barrier.waiting == 0
        barrier.abort()
        assert barrier.broken and _broken(await _party(w, barrier))
        barrier.reset()
        barrier.reset()  # harmless
        assert not barrier.broken
        for _ in range(2):
            tasks = []
            for i in range(2):
                tasks.append(w.spawn(_party, barrier))
                await w.wait_until(lambda i=i: barrier.waiting == i + 1)
            assert await w.wait(barrier, DEADLINE) == 2
            assert [await task.join() for task in tasks] == [0, 1]

    run_in(world, body)


_BARRIER_WORLDS = ("threading", "asyncio", "trio")


@BARRIERS
@pytest.mark.parametrize("how", ["timeout", "cancel"])
def test_barrier_across_threads_and_loops(factory: str, how: str) -> None:
    """Issue 3, acceptance 1: a plain thread, an asyncio task in a second
    thread and a trio task in a third pass together; one party that times out
    (or is cancelled) breaks it for the others; RBarrier.reset() repairs it."""
    _require("trio")
    barrier = getattr(aiologic, factory)(3)

    def start_round() -> list[Actor]:
        actors: list[Actor] = []
        for i, name in enumerate(_BARRIER_WORLDS):
            actors.append(Actor(name, _party, barrier, DEADLINE))
            if i < 2:
                wait_until(lambda i=i: barrier.waiting == i + 1, actors=actors)
        return actors

    for _ in range(2):
        indices = join_all(start_round())
        assert indices == [0, 1, 2]  # arrival order, whatever the world
        assert barrier.waiting == 0 and not barrier.broken

    async def cancelled_party(w: World, barrier: Any) -> Any:
        with w.move_on_after(SHORT):
            return await w.wait(barrier)
        return CANCELLED

    # The thread waits; the trio party gives up before the third arrives.
    waiting = Actor("threading", _party, barrier, DEADLINE)
    wait_until(lambda: barrier.waiting == 1, actors=[waiting])
    if how == "timeout":
        quitter = Actor("trio", _party, barrier, SHORT)
    else:
        quitter = Actor("trio", cancelled_party, barrier)
    first, last = join_all([waiting, quitter])
    assert _broken(first), first
    assert _broken(last) if how == "timeout" else last is CANCELLED
    assert barrier.broken and barrier.waiting == 0
    late = join_all([Actor("asyncio", _party, barrier, DEADLINE)])[0]
    assert _broken(late), late
    if factory == "RBarrier":
        barrier.reset()
        assert not barrier.broken
        assert join_all(start_round()) == [0, 1, 2]
    else:
        assert _broken(join_all([Actor("trio", _party, barrier)])[0])


# ============================================================================
# CapacityLimiter, RCapacityLimiter
# ============================================================================

LIMITERS = pytest.mark.parametrize("factory", ["CapacityLimiter", "RCapacityLimiter"])


async def _outsider(w: World, limiter: Any) -> tuple[bool, bool, Any]:
    """From a task that borrows nothing: release fails, a token is free."""
    with pytest.raises(RuntimeError):
        w.release(limiter)
    borrowed = await w.query(limiter, "borrowed")
    got = await w.acquire(limiter, blocking=False)
    if got:
        w.release(limiter)
    return borrowed, got, w.identity()


@LIMITERS
class TestCapacityLimiter:
    def test_borrow_and_release(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            limiter = getattr(aiologic, factory)(2)
            assert (limiter.total_tokens, limiter.available_tokens) == (2, 2)
            assert limiter.borrowed_tokens == 0 and limiter.waiting == 0
            assert not limiter and dict(limiter.borrowers) == {}
            assert await w.query(limiter, "borrowed") is False
            assert await w.acquire(limiter) is True
            me = w.identity()
            assert dict(limiter.borrowers) == {me: 1}
            assert limiter and limiter.borrowed_tokens == 1
            assert limiter.available_tokens == 1
            assert await w.query(limiter, "borrowed") is True
            with pytest.raises(TypeError):
                limiter.borrowers[me] = 5  # read-only
            borrowed, got, other = await w.spawn(_outsider, limiter).join()
            assert borrowed is False and got is True and other != me
            assert dict(limiter.borrowers) == {me: 1}
            w.release(limiter)
            assert not limiter and limiter.available_tokens == 2
            assert dict(limiter.borrowers) == {}
            with pytest.raises(RuntimeError):
                w.release(limiter)
            assert limiter.available_tokens == 2 and limiter.borrowed_tokens == 0
            async with w.hold(limiter):
                assert dict(limiter.borrowers) == {me: 1}
            assert not limiter

        run_in(world, body)

    def test_waiters_fifo_and_timeout(self, world: str, factory: str) -> None:
        async def waiter(w: World, limiter: Any, name: int, entered: list[int]) -> int:
            async with w.hold(limiter):
                entered.append(name)
            return name

        async def body(w: World) -> None:
            limiter = getattr(aiologic, factory)(1)
            assert await w.acquire(limiter) is True
            assert (await w.spawn(_outsider, limiter).join())[1] is False
            entered: list[int] = []
            tasks = []
            for i in range(3):
                tasks.append(w.spawn(waiter, limiter, i, entered))
                await w.wait_until(lambda i=i: limiter.waiting == i + 1)
            w.release(limiter)
            assert [await task.join() for task in tasks] == [0, 1, 2]
            assert entered == [0, 1, 2] and limiter.waiting == 0

            async def timed(w: World) -> tuple[bool, bool]:
                return (
                    await w.acquire(limiter, timeout=SHORT),
                    await w.acquire(limiter, timeout=0),
                )

            assert await w.acquire(limiter) is True
            assert await w.spawn(timed).join() == (False, False)
            assert limiter.waiting == 0 and limiter.borrowed_tokens == 1
            w.release(limiter)

        run_in(world, body)

    def test_release_from_another_thread(self, factory: str) -> None:
        limiter = getattr(aiologic, factory)(1)
        assert limiter.green_acquire()
        for name in ("threading", "asyncio"):
            borrowed, got, _ = run_in(name, _outsider, limiter)
            assert (borrowed, got) == (False, False)
        me = ("threading", threading.get_ident())
        assert dict(limiter.borrowers) == {me: 1}
        limiter.green_release()
        assert not limiter

    def test_repr(self, factory: str) -> None:
        limiter = getattr(aiologic, factory)(3)
        before = repr(limiter)
        assert factory in before and re.search(r"\b3\b", before)
        assert limiter.green_acquire()
        assert repr(limiter) != before
        limiter.green_release()
        assert repr(limiter) == before


def test_limiter_borrows_once(world: str) -> None:
    async def body(w: World) -> None:
        limiter = aiologic.CapacityLimiter(2)
        assert await w.acquire(limiter) is True
        for kwargs in ({}, {"blocking": False}, {"timeout": 0}, {"timeout": SHORT}):
            result = await outcome_of(w.acquire(limiter, **kwargs))
            assert isinstance(result, RuntimeError), (kwargs, result)
        with pytest.raises(RuntimeError):
            async with w.hold(limiter):
                pass
        assert dict(limiter.borrowers) == {w.identity(): 1}
        assert limiter.borrowed_tokens == 1 and limiter.waiting == 0
        w.release(limiter)
        assert not limiter and limiter.available_tokens == 2

    run_in(world, body)


def test_rlimiter_is_reentrant(world: str) -> None:
    async def other(w: World, limiter: Any) -> tuple[bool, int]:
        return await w.acquire(limiter, blocking=False), await w.query(limiter, "count")

    async def body(w: World) -> None:
        limiter = aiologic.RCapacityLimiter(1)
        assert await w.query(limiter, "count") == 0
        assert await w.acquire(limiter) is True
        assert await w.acquire(limiter, blocking=False) is True
        assert await w.acquire(limiter, count=2) is True
        me = w.identity()
        assert dict(limiter.borrowers) == {me: 4} and limiter.borrowed_tokens == 1
        assert limiter.available_tokens == 0 and await w.query(limiter, "count") == 4
        async with w.hold(limiter):
            assert dict(limiter.borrowers) == {me: 5}
        assert await w.spawn(other, limiter).join() == (False, 0)
        with pytest.raises(RuntimeError):
            w.release(limiter, count=5)
        assert dict(limiter.borrowers) == {me: 4}
        w.release(limiter, count=3)
        assert dict(limiter.borrowers) == {me: 1} and limiter
        w.release(limiter)
        assert not limiter and limiter.available_tokens == 1
        with pytest.raises(RuntimeError):
            w.release(limiter)

    run_in(world, body)


def test_limiter_across_worlds() -> None:
    """Issue 3, acceptance 4: at most 2 holders at any time, whatever their
    world; `borrowers` shows each holder as (library, id) -> 1."""
    limiter = aiologic.CapacityLimiter(2)
    count = threading.Lock()  # only to count; never held across a switch
    inside = [0]
    peak = [0]
    entries = [0]
    bad: list[Any] = []

    async def worker(w: World) -> None:
        for _ in range(12):
            async with w.hold(limiter):
                me = w.identity()
                with count:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                    entries[0] += 1
                borrowers = dict(limiter.borrowers)
                if borrowers.get(me) != 1 or len(borrowers) > 2:
                    bad.append((me, borrowers))
                await w.sleep(0.0002)
                with count:
                    inside[0] -= 1
            await w.sleep(0)

    async def actor(w: World) -> None:
        tasks = [w.spawn(worker) for _ in range(2)]
        for task in tasks:
            await task.join()

    run_actors(
        ("threading", actor), ("asyncio", actor), ("trio", actor), ("gevent", actor)
    )
    assert bad == [] and 1 <= peak[0] <= 2 and entries[0] == 96
    assert not limiter and limiter.waiting == 0 and limiter.available_tokens == 2

    # Deterministically: two holders of two worlds, a third world waits.
    go = threading.Event()
    seen: dict[str, Any] = {}

    async def holder(w: World) -> Any:
        async with w.hold(limiter):
            seen[w.name] = w.identity()
            await w.wait_until(go.is_set)
        return w.identity()

    assert limiter.green_acquire()
    me = ("threading", threading.get_ident())
    first = Actor("asyncio", holder)
    wait_until(lambda: "asyncio" in seen, actors=[first])
    assert dict(limiter.borrowers) == {me: 1, seen["asyncio"]: 1}
    assert seen["asyncio"][0] == "asyncio"
    second = Actor("trio", holder)
    wait_until(lambda: limiter.waiting == 1, actors=[first, second])
    assert limiter.available_tokens == 0 and "trio" not in seen
    limiter.green_release()
    wait_until(lambda: "trio" in seen, actors=[first, second])
    assert dict(limiter.borrowers) == {seen["asyncio"]: 1, seen["trio"]: 1}
    assert seen["trio"][0] == "trio"
    go.set()
    join_all([first, second])
    assert not limiter and dict(limiter.borrowers) == {}


def test_limiter_total_tokens_settable(world: str) -> None:
    """Part B5: raising the total admits the earliest waiters; lowering it
    below the borrowed count admits no one until borrowed < total."""

    async def waiter(
        w: World, limiter: Any, name: str, entered: list[str], go: list[str]
    ) -> str:
        async with w.hold(limiter):
            entered.append(name)
            await w.wait_until(lambda: name in go)
        return name

    async def body(w: World) -> None:
        limiter = aiologic.CapacityLimiter(1)
        entered: list[str] = []
        go: list[str] = []
        assert await w.acquire(limiter) is True
        tasks = {}
        for i, name in enumerate("ABCD"):
            tasks[name] = w.spawn(waiter, limiter, name, entered, go)
            await w.wait_until(lambda i=i: limiter.waiting == i + 1)
        limiter.total_tokens = 3  # two more tokens: the two earliest waiters
        assert limiter.total_tokens == 3
        await w.wait_until(lambda: len(entered) == 2)
        assert sorted(entered) == ["A", "B"] and limiter.waiting == 2
        assert limiter.borrowed_tokens == 3 and limiter.available_tokens == 0
        for bad in (-1, -5):
            with pytest.raises(ValueError):
                limiter.total_tokens = bad
            assert limiter.total_tokens == 3
        limiter.total_tokens = 1  # below the 3 borrowed
        assert limiter.total_tokens == 1 and limiter.borrowed_tokens == 3
        go.append("A")
        assert await tasks["A"].join() == "A"
        assert limiter.borrowed_tokens == 2 and limiter.waiting == 2
        w.release(limiter)
        assert limiter.borrowed_tokens == 1 and limiter.waiting == 2  # 1 == total
        assert limiter.available_tokens == 0 and sorted(entered) == ["A", "B"]
        go.append("B")
        assert await tasks["B"].join() == "B"  # 0 < 1: C is admitted, D is not
        await w.wait_until(lambda: len(entered) == 3)
        assert entered[2] == "C" and limiter.waiting == 1
        assert limiter.borrowed_tokens == 1
        limiter.total_tokens = 2  # D now
        await w.wait_until(lambda: len(entered) == 4)
        assert entered[3] == "D" and limiter.waiting == 0
        go.extend("CD")
        assert await tasks["C"].join() == "C" and await tasks["D"].join() == "D"
        assert limiter.borrowed_tokens == 0 and limiter.available_tokens == 2

    run_in(world, body)


# -- forced interleavings: every change goes through one admission step


def _named_waiter(limiter: Any, name: object) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(limiter.green_acquire_on_behalf_of(name, timeout=DEADLINE))
        except RuntimeError as exc:
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_limiter_lowered_while_a_holder_releases_in_another_thread() -> None:
    """The release decides admission against the total it sees inside the
    one admission step: lowering the total just before it admits no one."""
    limiter = aiologic.CapacityLimiter(2)
    assert limiter.green_acquire_on_behalf_of("A")
    assert limiter.green_acquire_on_behalf_of("B")
    waiter, got = _named_waiter(limiter, "W")
    wait_until(lambda: limiter.waiting == 1)
    pause = Pause(aiologic.CapacityLimiter._release, "with self._lock:")
    pause.start(lambda: limiter.green_release_on_behalf_of("A"))
    limiter.total_tokens = 1
    pause.join()
    assert dict(limiter.borrowers) == {"B": 1}  # 1 == total: W stays out
    assert limiter.waiting == 1 and limiter.available_tokens == 0 and got == []
    limiter.green_release_on_behalf_of("B")
    waiter.join(DEADLINE)
    assert got == [True] and dict(limiter.borrowers) == {"W": 1}
    limiter.green_release_on_behalf_of("W")
    assert limiter.borrowed_tokens == 0 and limiter.available_tokens == 1


def test_limiter_count_is_exact_right_after_a_hand_off() -> None:
    """The waiter is a borrower from the moment the token is handed to it,
    before it runs; lowering the total then counts it."""
    limiter = aiologic.CapacityLimiter(1)
    assert limiter.green_acquire_on_behalf_of("A")
    waiter, got = _named_waiter(limiter, "W")
    wait_until(lambda: limiter.waiting == 1)
    # Pause the releaser after the hand-off was decided, before the wake.
    pause = Pause(aiologic.CapacityLimiter._release, "self._wake(woken)")
    pause.start(lambda: limiter.green_release_on_behalf_of("A"))
    assert dict(limiter.borrowers) == {"W": 1} and limiter.borrowed_tokens == 1
    assert limiter.available_tokens == 0 and limiter.waiting == 0
    limiter.total_tokens = 0
    assert limiter.borrowed_tokens == 1 and limiter.available_tokens == 0
    assert limiter.green_acquire_on_behalf_of("X", blocking=False) is False
    pause.join()
    waiter.join(DEADLINE)
    assert got == [True]
    limiter.green_release_on_behalf_of("W")
    assert limiter.borrowed_tokens == 0 and limiter.available_tokens == 0


def test_limiter_from_inf_to_a_number_while_another_thread_acquires() -> None:
    limiter = aiologic.CapacityLimiter(math.inf)
    assert limiter.green_acquire_on_behalf_of("A")
    pause = Pause(aiologic.CapacityLimiter._begin, "with self._lock:", 1)
    pause.start(lambda: limiter.green_acquire_on_behalf_of("T", timeout=DEADLINE))
    limiter.total_tokens = 1
    assert limiter.available_tokens == 0
    pause.release()
    wait_until(lambda: limiter.waiting == 1)
    assert pause.outcome == [] and dict(limiter.borrowers) == {"A": 1}
    limiter.green_release_on_behalf_of("A")
    assert pause.join() is True and dict(limiter.borrowers) == {"T": 1}
    assert limiter.available_tokens == 0
    limiter.green_release_on_behalf_of("T")
    assert limiter.available_tokens == 1 and limiter.total_tokens == 1
    limiter.total_tokens = math.inf
    assert limiter.available_tokens == math.inf
    limiter.total_tokens = 3
    assert limiter.available_tokens == 3


def test_limiter_cancelled_after_the_hand_off_readmits_no_one_at_zero() -> None:
    """asyncio: the token is handed to a parked waiter, the total drops to 0,
    then the waiter is cancelled before it runs: it gives the token back and
    no one else gets in while the total is 0."""
    asyncio = _import("asyncio")

    async def main() -> None:
        limiter = aiologic.CapacityLimiter(1)
        assert await limiter.async_acquire()
        first = asyncio.ensure_future(limiter.async_acquire())
        second = asyncio.ensure_future(limiter.async_acquire())
        while limiter.waiting < 2:
            await asyncio.sleep(0)
        limiter.async_release()  # handed to `first`
        assert limiter.borrowed_tokens == 1 and limiter.waiting == 1
        limiter.total_tokens = 0
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert limiter.borrowed_tokens == 0 and limiter.waiting == 1
        for _ in range(5):
            await asyncio.sleep(0)
        assert not second.done() and limiter.borrowed_tokens == 0
        limiter.total_tokens = 1
        assert await asyncio.wait_for(second, DEADLINE) is True
        assert limiter.borrowed_tokens == 1

    asyncio.run(main())


class _Interrupted(BaseException):
    pass


def test_limiter_trio_checkpoint_interrupted_readmits_no_one_at_zero(
    monkeypatch: Any,
) -> None:
    """trio: a task borrows on the fast path and is interrupted at the
    checkpoint after it, by which time the total is 0 and another borrower
    waits: the token goes back, no one gets in."""
    trio = _import("trio")
    limiter = aiologic.CapacityLimiter(1)
    holder: list[Any] = []

    async def interrupt() -> None:
        limiter.total_tokens = 0
        holder.extend(_named_waiter(limiter, "W"))
        wait_until(lambda: limiter.waiting == 1)
        raise _Interrupted

    def interrupted_checkpoint(library: Any) -> Any:
        # The checkpoint the limiter takes, interrupted.
        return interrupt()

    async def main() -> None:
        monkeypatch.setattr(aiologic, "_async_yield", interrupted_checkpoint)
        with aiologic.enable_checkpoints():
            with pytest.raises(_Interrupted):
                await limiter.async_acquire()
        monkeypatch.undo()
        assert limiter.borrowed_tokens == 0 and limiter.waiting == 1

    trio.run(main)
    waiter, got = holder
    assert got == [] and limiter.borrowed_tokens == 0
    limiter.total_tokens = 1
    waiter.join(DEADLINE)
    assert got == [True] and dict(limiter.borrowers) == {"W": 1}


@pytest.mark.parametrize("factory", ["CapacityLimiter", "RCapacityLimiter"])
def test_limiter_waiter_withdraws_while_a_release_admits(factory: str) -> None:
    """Review (found by the PyPy stress run): a waiter that timed out takes
    its token out of the queue while a release, in another thread, admits
    waiters: the release saw the queue non-empty and must not find it
    emptied under its feet (IndexError, leaving claimed waiters unwoken)."""
    limiter = getattr(aiologic, factory)(1)
    assert limiter.green_acquire_on_behalf_of("x")
    pause = Pause(aiologic._WaiterQueue._park_ended, "self._withdraw(ticket)")
    waiter = pause.start(lambda: limiter.green_acquire(timeout=SHORT))
    assert limiter.waiting == 1  # timed out, its token still queued
    admit = Pause(aiologic.CapacityLimiter._admit, "ticket = waiters.popleft()")
    with admit.start(lambda: limiter.green_release_on_behalf_of("x")) as call:
        waiter.release()  # it withdraws now (or waits for the release)
        wait_until(lambda: _done_or_stuck_in(waiter.thread, "_withdraw"))
    assert call.outcome == [None], call.outcome
    assert waiter.join() is False
    assert limiter.borrowed_tokens == 0 and limiter.waiting == 0
    assert limiter.green_acquire(blocking=False)
    limiter.green_release()


@pytest.mark.parametrize("factory", ["CapacityLimiter", "RCapacityLimiter"])
def test_limiter_admits_past_a_waiter_whose_loop_closed(factory: str) -> None:
    """Review (after the core's undeliverable wake-ups): the head waiter's
    loop closed, so the token admitted for it cannot be delivered; its
    borrow is taken back and the next waiter gets in (no leaked token)."""
    import asyncio

    limiter = getattr(aiologic, factory)(1)
    assert limiter.green_acquire_on_behalf_of("x")
    loop = asyncio.new_event_loop()
    task = loop.create_task(limiter.async_acquire())
    loop.run_until_complete(asyncio.sleep(0))  # it publishes, parks
    loop.close()
    task._log_destroy_pending = False
    assert limiter.waiting == 1
    waiter = _Thread(lambda: limiter.green_acquire(timeout=DEADLINE))
    wait_until(lambda: limiter.waiting == 2)
    limiter.green_release_on_behalf_of("x")
    assert waiter.result() is True
    assert limiter.borrowed_tokens == 1 and limiter.waiting == 0
    assert list(limiter.borrowers.values()) == [1]


def test_limiter_acquire_on_behalf_of(world: str) -> None:
    """Issue 14: a borrower may be any hashable object; it shows in
    `borrowers`, may be released from any task, borrows once."""

    async def releaser(w: World, limiter: Any, borrower: object) -> None:
        if w.name in GREEN_WORLDS:
            limiter.green_release_on_behalf_of(borrower)
        else:
            limiter.async_release_on_behalf_of(borrower)

    async def body(w: World) -> None:
        green = w.name in GREEN_WORLDS
        limiter = aiologic.CapacityLimiter(2)

        async def acquire(borrower: object, **kwargs: Any) -> bool:
            if green:
                return limiter.green_acquire_on_behalf_of(borrower, **kwargs)
            return await limiter.async_acquire_on_behalf_of(borrower, **kwargs)

        key = ("job", 1)
        assert await acquire(key) is True
        assert dict(limiter.borrowers) == {key: 1} and limiter.borrowed_tokens == 1
        assert await w.query(limiter, "borrowed") is False  # the task holds none
        with pytest.raises(RuntimeError):
            await acquire(key, blocking=False)
        with pytest.raises(TypeError):
            await acquire([], blocking=False)  # not hashable
        assert dict(limiter.borrowers) == {key: 1}
        assert await acquire(7) is True  # an int is not a thread
        assert await acquire(8, blocking=False) is False
        assert await acquire(8, timeout=SHORT) is False
        assert limiter.waiting == 0 and limiter.borrowed_tokens == 2
        await w.spawn(releaser, limiter, key).join()
        assert dict(limiter.borrowers) == {7: 1}
        with pytest.raises(RuntimeError):
            await w.spawn(releaser, limiter, key).join()
        await releaser(w, limiter, 7)
        assert not limiter and limiter.available_tokens == 2

    run_in(world, body)


class _BadBool:
    def __bool__(self) -> bool:
        raise ZeroDivisionError


@LIMITERS
def test_limiter_bad_blocking_changes_nothing(factory: str) -> None:
    """Issue 19: every argument is read before a token is taken."""
    limiter = getattr(aiologic, factory)(1)
    for call in (
        lambda: limiter.green_acquire(blocking=_BadBool()),
        lambda: limiter.green_acquire_on_behalf_of("B", blocking=_BadBool()),
        lambda: limiter.green_acquire(timeout="soon"),
    ):
        with pytest.raises((ZeroDivisionError, TypeError)):
            call()
        assert limiter.borrowed_tokens == 0 and limiter.available_tokens == 1


def test_limiter_on_behalf_of_waits_in_order() -> None:
    limiter = aiologic.CapacityLimiter(1)
    assert limiter.green_acquire_on_behalf_of(0)
    waiters = []
    for name in (1, 2, 3):
        waiters.append(_named_waiter(limiter, name))
        wait_until(lambda name=name: limiter.waiting == name)
    for name, (thread, got) in enumerate(waiters, 1):
        limiter.green_release_on_behalf_of(name - 1)
        thread.join(DEADLINE)
        assert got == [True] and dict(limiter.borrowers) == {name: 1}
    limiter.green_release_on_behalf_of(3)
    assert not limiter


def test_limiter_same_borrower_waiting_twice_is_refused() -> None:
    """Two calls wait for the same named borrower: the first gets the token,
    the second is refused (`RuntimeError`) and takes nothing."""
    limiter = aiologic.CapacityLimiter(2)
    assert limiter.green_acquire_on_behalf_of("A")
    assert limiter.green_acquire_on_behalf_of("B")
    first, got1 = _named_waiter(limiter, "W")
    wait_until(lambda: limiter.waiting == 1)
    second, got2 = _named_waiter(limiter, "W")
    wait_until(lambda: limiter.waiting == 2)
    limiter.green_release_on_behalf_of("A")
    limiter.green_release_on_behalf_of("B")
    first.join(DEADLINE)
    second.join(DEADLINE)
    assert got1 == [True] and len(got2) == 1 and isinstance(got2[0], RuntimeError)
    assert dict(limiter.borrowers) == {"W": 1} and limiter.waiting == 0
    r = aiologic.RCapacityLimiter(1)
    assert r.green_acquire_on_behalf_of("W")
    assert r.green_acquire_on_behalf_of("W")
    assert dict(r.borrowers) == {"W": 2}


# ============================================================================
# Queue, LifoQueue, PriorityQueue
# ============================================================================

BOUNDED_QUEUES = pytest.mark.parametrize(
    "factory", ["Queue", "LifoQueue", "PriorityQueue"]
)
_ORDER: dict[str, Callable[[list[Any]], list[Any]]] = {
    "Queue": list,
    "LifoQueue": lambda items: items[::-1],
    "PriorityQueue": sorted,
}


async def _get_outcome(w: World, q: Any, **kwargs: Any) -> Any:
    return await outcome_of(w.get(q, **kwargs))


async def _put_outcome(w: World, q: Any, item: Any, **kwargs: Any) -> Any:
    return await outcome_of(w.put(q, item, **kwargs))


async def _timed_get(w: World, q: Any, timeout: float | None) -> Any:
    return await outcome_of(w.get(q, timeout=timeout))


async def _timed_put(w: World, q: Any, item: Any, timeout: float | None) -> Any:
    return await outcome_of(w.put(q, item, timeout=timeout))


def test_queue_exceptions() -> None:
    for name in ("QueueEmpty", "QueueFull", "QueueShutDown"):
        exc = getattr(aiologic, name)
        assert issubclass(exc, Exception), name
    assert not issubclass(
        aiologic.QueueShutDown, (aiologic.QueueEmpty, aiologic.QueueFull)
    )


@BOUNDED_QUEUES
class TestQueue:
    def test_constructor(self, factory: str) -> None:
        cls = getattr(aiologic, factory)
        for unbounded in (0, -1):  # as in queue.Queue (issue 14)
            assert cls(maxsize=unbounded).maxsize == 0
            assert cls([1], maxsize=unbounded).maxsize == 0
        for q in (cls(), cls(maxsize=None), cls([]), cls((), None)):
            assert q.maxsize == 0 and len(q) == 0 and not q
        q = cls([3, 1, 2], 5)
        assert q.maxsize == 5 and len(q) == 3 and q
        q = cls(iter([3, 1, 2]), maxsize=3)
        assert q.maxsize == 3 and len(q) == 3
        assert q.green_get(blocking=False) == _ORDER[factory]([3, 1, 2])[0]

    def test_maxsize_as_first_argument(self, factory: str) -> None:
        """As queue.Queue and asyncio.Queue (issue 14): None, 0, a negative
        number (and infinity) are unbounded, `maxsize` then reads 0; a float
        bound admits what ``qsize() < maxsize`` admits; `cls(q.maxsize)`
        builds an equivalent queue."""
        cls = getattr(aiologic, factory)
        unbounded = [None, 0, -1, -2.5, math.inf]
        for maxsize in unbounded:
            for q in (cls(maxsize), cls(maxsize=maxsize), cls((), maxsize)):
                assert q.maxsize == 0 and len(q) == 0
                for i in range(50):
                    q.green_put(i, blocking=False)
                assert cls(q.maxsize).maxsize == 0
        for maxsize, slots in ((2.5, 3), (1.0, 1), (0.1, 1), (3, 3)):
            q = cls(maxsize)
            assert q.maxsize == slots
            for i in range(slots):
                q.green_put(i, blocking=False)
            with pytest.raises(aiologic.QueueFull):
                q.green_put(-1, blocking=False)
            assert cls(q.maxsize).maxsize == q.maxsize
        with pytest.raises(ValueError, match="NaN"):
            cls(math.nan)
        with pytest.raises(TypeError):
            cls(maxsize="3")

    def test_order_and_size(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            q = getattr(aiologic, factory)([5, 1, 4], maxsize=6)
            assert len(q) == 3 and q
            got = [await w.get(q) for _ in range(3)]
            assert got == _ORDER[factory]([5, 1, 4])
            assert len(q) == 0 and not q
            items = [3, 9, 2, 7, 0, 8]
            await w.put(q, 3)
            await w.put(q, 9, blocking=False)
            await w.put(q, 2, timeout=0)
            await w.put(q, 7, timeout=DEADLINE)
            await w.put(q, 0, blocking=True, timeout=None)
            await w.put(q, 8)
            assert len(q) == 6 and q.putting == q.getting == q.waiting == 0
            got = [
                await w.get(q, blocking=False),
                await w.get(q, timeout=0),
                await w.get(q, timeout=DEADLINE),
                await w.get(q),
                await w.get(q),
                await w.get(q),
            ]
            assert got == _ORDER[factory](items)
            assert not q

        run_in(world, body)

    def test_empty_and_full(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            q = getattr(aiologic, factory)(maxsize=2)
            with pytest.raises(aiologic.QueueEmpty):
                await w.without_switching(lambda: w.get(q, blocking=False))
            with pytest.raises(aiologic.QueueEmpty):
                await w.get(q, timeout=0)
            start = time.monotonic()
            with pytest.raises(aiologic.QueueEmpty):
                await w.get(q, timeout=SHORT)
            assert time.monotonic() - start >= SHORT / 2
            await w.put(q, 1)
            await w.put(q, 2)
            assert len(q) == 2
            with pytest.raises(aiologic.QueueFull):
                await w.without_switching(lambda: w.put(q, 3, blocking=False))
            with pytest.raises(aiologic.QueueFull):
                await w.put(q, 3, timeout=0)
            start = time.monotonic()
            with pytest.raises(aiologic.QueueFull):
                await w.put(q, 3, timeout=SHORT)
            assert time.monotonic() - start >= SHORT / 2
            for bad in (math.nan, -1):
                result = await _put_outcome(w, q, 3, timeout=bad)
                assert isinstance(result, ValueError), (bad, result)
            assert len(q) == 2 and q.putting == q.getting == q.waiting == 0
            assert sorted([await w.get(q), await w.get(q)]) == [1, 2]
            for bad in (math.nan, -1):
                result = await _get_outcome(w, q, timeout=bad)
                assert isinstance(result, ValueError), (bad, result)
            assert q.putting == q.getting == q.waiting == 0 and not q

        run_in(world, body)

    def test_waiters_fifo(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            q = getattr(aiologic, factory)(maxsize=1)
            getters = []
            for i in range(3):
                getters.append(w.spawn(_get_outcome, q))
                await w.wait_until(lambda i=i: q.getting == i + 1)
                assert q.waiting == i + 1 and q.putting == 0
            for i in range(3):
                await w.put(q, 10 + i)
            assert [await task.join() for task in getters] == [10, 11, 12]
            assert q.getting == 0 and not q
            await w.put(q, 100)
            putters = []
            for i in range(3):
                putters.append(w.spawn(_put_outcome, q, 20 + i))
                await w.wait_until(lambda i=i: q.putting == i + 1)
                assert q.waiting == i + 1 and q.getting == 0
            assert len(q) == 1
            got = [await w.get(q) for _ in range(4)]
            assert got == [100, 20, 21, 22]  # one at a time: the putters' order
            assert [await task.join() for task in putters] == [None] * 3
            assert q.waiting == 0 and not q

        run_in(world, body)

    def test_cancelled_getter_loses_nothing(
        self, cooperative_world: str, factory: str
    ) -> None:
        async def body(w: World) -> None:
            for order in ("cancel-then-put", "put-then-cancel"):
                q = getattr(aiologic, factory)(maxsize=3)
                doomed = w.spawn(_get_outcome, q)
                await w.wait_until(lambda q=q: q.getting == 1)
                other = w.spawn(_get_outcome, q)
                await w.wait_until(lambda q=q: q.getting == 2)
                if order == "cancel-then-put":
                    doomed.cancel()
                    await w.put(q, 1)
                else:
                    await w.put(q, 1)
                    doomed.cancel()
                first = await doomed.join()
                assert first in (1, CANCELLED)
                if first == 1:
                    await w.put(q, 2)
                second = await other.join()
                assert second in (1, 2) and first != second
                assert not q and q.waiting == 0

        run_in(cooperative_world, body)

    def test_cancelled_putter_is_all_or_nothing(
        self, cooperative_world: str, factory: str
    ) -> None:
        async def body(w: World) -> None:
            for order in ("cancel-then-get", "get-then-cancel"):
                q = getattr(aiologic, factory)([0], maxsize=1)
                doomed = w.spawn(_put_outcome, q, 1)
                await w.wait_until(lambda q=q: q.putting == 1)
                other = w.spawn(_put_outcome, q, 2)
                await w.wait_until(lambda q=q: q.putting == 2)
                if order == "cancel-then-get":
                    doomed.cancel()
                    assert await w.get(q) == 0
                else:
                    assert await w.get(q) == 0
                    doomed.cancel()
                landed = await doomed.join() is None
                got = [await w.get(q, timeout=DEADLINE)]
                if landed:
                    got.append(await w.get(q, timeout=DEADLINE))
                assert await other.join() is None
                assert sorted(got) == ([1, 2] if landed else [2])
                assert not q and q.waiting == 0

        run_in(cooperative_world, body)

    def test_repr(self, factory: str) -> None:
        q = getattr(aiologic, factory)([1], maxsize=7)
        before = repr(q)
        assert factory in before and re.search(r"\b7\b", before)
        q.green_put(3)
        assert repr(q) != before
        q.green_get()
        q.green_get()
        empty = repr(q)
        thread = threading.Thread(
            target=lambda: q.green_get(timeout=DEADLINE), daemon=True
        )
        thread.start()
        wait_until(lambda: q.getting == 1)
        assert repr(q) != empty
        q.green_put(4)
        thread.join(DEADLINE)
        assert repr(q) == empty


class _TenfoldQueue(aiologic.Queue):  # type: ignore[type-arg]
    """Extends the storage hooks: stores ten times each item, logs the calls."""

    def _init(self, items: Any, maxsize: int) -> None:
        self.log: list[Any] = [("init", maxsize)]
        super()._init([item * 10 for item in items], maxsize)

    def _put(self, item: Any) -> None:
        self.log.append(("put", item))
        super()._put(item * 10)

    def _get(self) -> Any:
        item = super()._get()
        self.log.append(("get", item))
        return item


class _StackQueue(aiologic.Queue):  # type: ignore[type-arg]
    """Replaces the storage: a list used as a stack, with a detector of
    hooks that run at the same time."""

    def _init(self, items: Any, maxsize: int) -> None:
        self.stack = list(items)
        self.probe = threading.Lock()
        self.overlaps = 0

    def _qsize(self) -> int:
        return len(self.stack)

    def _exclusive(self) -> None:
        if not self.probe.acquire(blocking=False):
            self.overlaps += 1
            return
        time.sleep(0)  # let another thread in, if the hook is not exclusive
        self.probe.release()

    def _put(self, item: Any) -> None:
        self._exclusive()
        self.stack.append(item)

    def _get(self) -> Any:
        self._exclusive()
        return self.stack.pop()


def test_queue_subclass_hooks(world: str) -> None:
    async def body(w: World) -> None:
        q = _TenfoldQueue([1, 2], maxsize=4)
        assert q.log == [("init", 4)] and len(q) == 2
        await w.put(q, 3)
        assert [await w.get(q) for _ in range(3)] == [10, 20, 30]
        assert q.log == [("init", 4), ("put", 3), ("get", 10), ("get", 20), ("get", 30)]
        stack = _StackQueue([1, 2], maxsize=3)
        await w.put(stack, 3)
        assert len(stack) == 3 and stack
        with pytest.raises(aiologic.QueueFull):
            await w.put(stack, 4, blocking=False)
        assert [await w.get(stack) for _ in range(3)] == [3, 2, 1]
        assert not stack

    run_in(world, body)


class _DoublingQueue(aiologic.Queue):  # type: ignore[type-arg]
    def _put(self, item: Any) -> None:
        super()._put(item * 2)


class _NegatingQueue(_DoublingQueue):
    def _get(self) -> Any:
        return -super()._get()


def test_queue_subclass_overriding_one_hook(world: str) -> None:
    """Queue's own `_put`/`_get` run inline (no call); a hook a subclass
    overrides, or inherits from an overriding base, is still called."""

    async def body(w: World) -> None:
        doubling = _DoublingQueue()
        await w.put(doubling, 1)
        assert list(doubling._queue) == [2]
        assert await w.get(doubling) == 2
        negating = _NegatingQueue([5])
        await w.put(negating, 1)
        assert [await w.get(negating) for _ in range(2)] == [-5, -2]

    run_in(world, body)


def test_queue_hooks_seen_without_init_subclass() -> None:
    """A hook is seen when a queue is made: in a subclass of a class whose
    own __init_subclass__ skips super(), and when assigned to a class after
    its creation (before its queues are made)."""

    class Base(aiologic.Queue):  # type: ignore[type-arg]
        def __init_subclass__(cls, **kwargs: Any) -> None:
            pass  # no super(): Queue's own never runs for subclasses

    class Tenfold(Base):
        def _put(self, item: Any) -> None:
            super()._put(item * 10)

    class Negated(aiologic.Queue):  # type: ignore[type-arg]
        pass

    def negated_get(self: Any) -> Any:
        return -self._queue.popleft()

    Negated._get = negated_get  # type: ignore[method-assign]
    tenfold, negated, plain = Tenfold(), Negated([3]), aiologic.Queue([4])
    tenfold.put_nowait(1)
    assert tenfold.get_nowait() == 10
    assert negated.get_nowait() == -3
    assert plain.get_nowait() == 4  # Queue itself keeps its inline hooks
    assert aiologic.Queue._plain_put and aiologic.Queue._plain_get


def test_queue_hooks_run_exclusively() -> None:
    q = _StackQueue(maxsize=3)
    got: list[int] = []

    def producer(base: int) -> None:
        for i in range(150):
            q.green_put(base + i, timeout=DEADLINE)

    def consumer() -> None:
        for _ in range(150):
            got.append(q.green_get(timeout=DEADLINE))

    threads = [
        threading.Thread(target=producer, args=(1000 * k,), daemon=True)
        for k in range(3)
    ] + [threading.Thread(target=consumer, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
        assert not thread.is_alive()
    assert q.overlaps == 0
    assert sorted(got) == sorted(1000 * k + i for k in range(3) for i in range(150))
    assert not q and q.waiting == 0


def test_queue_across_worlds_exactly_once() -> None:
    """Issue 3, acceptance 2: Queue(maxsize=4), producers in two threads and
    an asyncio loop, consumers in a trio loop and a gevent hub thread that are
    randomly cancelled or time out: every item arrives exactly once."""
    _require("trio")
    _require("gevent")
    q = aiologic.Queue(maxsize=4)
    per_producer = 150
    total = 3 * per_producer
    received: list[Any] = []  # list.append is atomic

    async def producer(w: World, tag: str, seed: int) -> int:
        rng = random.Random(seed)
        items = [(tag, i) for i in range(per_producer)]

        async def one(w: World, part: list[Any]) -> int:
            retries = 0
            for item in part:
                while True:
                    if rng.random() < 0.5:
                        await w.put(q, item)
                        break
                    try:
                        await w.put(q, item, timeout=rng.choice([0, 0.0005, 0.002]))
                        break
                    except aiologic.QueueFull:
                        retries += 1
            return retries

        if w.green:
            return await one(w, items)
        tasks = [w.spawn(one, items[0::2]), w.spawn(one, items[1::2])]
        return sum([await task.join() for task in tasks])

    async def consumer(w: World, seed: int) -> int:
        rng = random.Random(seed)

        async def one(w: World) -> int:
            interrupted = 0
            while len(received) < total:
                choice = rng.random()
                if choice < 0.3:
                    with w.move_on_after(rng.choice([0.0002, 0.001, 0.003])):
                        received.append(await w.get(q))
                        continue
                    interrupted += 1
                else:
                    try:
                        timeout = 0.05 if choice < 0.6 else rng.choice([0, 0.001])
                        received.append(await w.get(q, timeout=timeout))
                    except aiologic.QueueEmpty:
                        interrupted += 1
            return interrupted

        tasks = [w.spawn(one) for _ in range(3)]
        return sum([await task.join() for task in tasks])

    actors = [
        Actor("threading", producer, "t1", 1),
        Actor("threading", producer, "t2", 2),
        Actor("asyncio", producer, "a", 3),
        Actor("trio", consumer, 4),
        Actor("gevent", consumer, 5),
    ]
    results = join_all(actors)
    assert len(received) == total and len(set(received)) == total
    assert set(received) == {
        (tag, i) for tag in ("t1", "t2", "a") for i in range(per_producer)
    }
    assert results[3] + results[4] > 0  # some gets were interrupted
    assert not q and q.waiting == 0 and q.putting == q.getting == 0


@pytest.mark.parametrize(
    "factory, worlds",
    [
        ("PriorityQueue", ("asyncio", "trio")),
        ("PriorityQueue", ("threading", "gevent")),
        ("LifoQueue", ("trio", "threading")),
        ("LifoQueue", ("eventlet", "asyncio")),
    ],
)
def test_priority_and_lifo_across_worlds(factory: str, worlds: tuple[str, str]) -> None:
    q = getattr(aiologic, factory)(maxsize=50)
    items = list(range(40))
    random.Random(7).shuffle(items)

    async def producer(w: World) -> None:
        for item in items:
            await w.put(q, item)

    async def consumer(w: World) -> list[int]:
        return [await w.get(q, blocking=False) for _ in range(len(items))]

    run_in(worlds[0], producer)
    got = run_in(worlds[1], consumer)
    assert got == (sorted(items) if factory == "PriorityQueue" else items[::-1])

    # A getter of one world blocked on the empty queue gets the item a task
    # of the other world puts.
    async def getter(w: World) -> Any:
        return await w.get(q, timeout=DEADLINE)

    async def put_one(w: World) -> None:
        await w.put(q, 99)

    actor = Actor(worlds[1], getter)
    wait_until(lambda: q.getting == 1, actors=[actor])
    run_in(worlds[0], put_one)
    assert actor.join() == 99
    assert not q and q.waiting == 0


# ============================================================================
# Queue shutdown (part B1)
# ============================================================================


def test_shutdown_wakes_blocked_across_worlds() -> None:
    """Issue 4: a getter blocked in a trio loop, one in a plain thread and a
    putter blocked on a full queue in an asyncio loop all raise QueueShutDown
    soon after shutdown() runs in a fourth thread."""
    _require("trio")
    empty = aiologic.Queue(maxsize=2)
    full = aiologic.Queue(["kept"], maxsize=1)
    actors = [
        Actor("trio", _get_outcome, empty),
        Actor("threading", _get_outcome, empty),
        Actor("asyncio", _put_outcome, full, "never"),
    ]
    wait_until(lambda: empty.getting == 2 and full.putting == 1, actors=actors)

    def shut_down() -> None:
        empty.shutdown()
        full.shutdown()

    _in_thread(shut_down)
    results = join_all(actors, timeout=5.0)
    assert all(isinstance(r, aiologic.QueueShutDown) for r in results), results
    for q in (empty, full):
        assert q.putting == q.getting == q.waiting == 0
    assert len(full) == 1 and full.green_get(blocking=False) == "kept"
    with pytest.raises(aiologic.QueueShutDown):
        full.green_get(blocking=False)


@BOUNDED_QUEUES
class TestShutdown:
    def test_graceful_drains_in_order(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            q = getattr(aiologic, factory)(maxsize=3)
            for item in (3, 1, 2):
                await w.put(q, item)
            assert q.unfinished_tasks == 3
            q.shutdown()
            # Puts are refused at once, QueueShutDown winning over QueueFull.
            for kwargs in (
                {"blocking": False},
                {"timeout": 0},
                {"timeout": DEADLINE},
                {},
            ):
                result = await _put_outcome(w, q, 0, **kwargs)
                assert isinstance(result, aiologic.QueueShutDown), (kwargs, result)
            assert len(q) == 3 and q.unfinished_tasks == 3
            got = [
                await w.get(q, blocking=False),
                await w.get(q),
                await w.get(q, timeout=0),
            ]
            assert got == _ORDER[factory]([3, 1, 2])
            for kwargs in (
                {"blocking": False},
                {"timeout": 0},
                {"timeout": DEADLINE},
                {},
            ):
                start = time.monotonic()
                result = await _get_outcome(w, q, **kwargs)
                assert isinstance(result, aiologic.QueueShutDown), (kwargs, result)
                assert time.monotonic() - start < DEADLINE / 4
            assert q.unfinished_tasks == 3  # a graceful shutdown keeps the count
            q.shutdown()
            q.shutdown(immediate=True)  # harmless
            assert q.putting == q.getting == q.waiting == 0 and not q
            for _ in range(3):
                q.task_done()
            assert await w.call(q, "join", timeout=0) is True

        run_in(world, body)

    def test_wakes_blocked_tasks(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            empty = getattr(aiologic, factory)(maxsize=1)
            full = getattr(aiologic, factory)([5], maxsize=1)
            tasks = []
            for i, timeout in enumerate([None, DEADLINE]):
                tasks.append(w.spawn(_timed_get, empty, timeout))
                await w.wait_until(lambda i=i: empty.getting == i + 1)
            for i, timeout in enumerate([None, DEADLINE]):
                tasks.append(w.spawn(_timed_put, full, 6, timeout))
                await w.wait_until(lambda i=i: full.putting == i + 1)
            empty.shutdown()
            full.shutdown()
            results = [await task.join() for task in tasks]
            assert all(isinstance(r, aiologic.QueueShutDown) for r in results), results
            for q in (empty, full):
                assert q.putting == q.getting == q.waiting == 0
            assert len(full) == 1 and await w.get(full) == 5  # 6 never landed
            assert len(empty) == 0

        run_in(world, body)

    def test_immediate(self, factory: str) -> None:
        q = getattr(aiologic, factory)(maxsize=5)
        for item in (3, 1, 2):
            q.green_put(item)
        assert q.green_get() == _ORDER[factory]([3, 1, 2])[0]
        assert q.unfinished_tasks == 3  # a get alone does not lower it
        q.shutdown(immediate=True)
        assert len(q) == 0 and not q and q.unfinished_tasks == 1
        with pytest.raises(aiologic.QueueShutDown):
            q.green_get(blocking=False)
        with pytest.raises(aiologic.QueueShutDown):
            q.green_put(4, blocking=False)
        q.task_done()
        assert q.unfinished_tasks == 0 and q.green_join(timeout=0) is True
        with pytest.raises(ValueError):
            q.task_done()
        assert q.unfinished_tasks == 0
        q.shutdown(immediate=True)  # harmless
        assert q.putting == q.getting == q.waiting == 0

    def test_graceful_then_immediate_empties(self, factory: str) -> None:
        q = getattr(aiologic, factory)()
        q.green_put(1)
        q.green_put(2)
        q.shutdown()
        assert len(q) == 2 and q.unfinished_tasks == 2
        q.shutdown(immediate=True)
        assert len(q) == 0 and q.unfinished_tasks == 0
        with pytest.raises(aiologic.QueueShutDown):
            q.green_get(timeout=DEADLINE)

    def test_immediate_never_below_zero(self, factory: str) -> None:
        q = getattr(aiologic, factory)()
        q.green_put(1)
        q.green_put(2)
        q.task_done()
        q.task_done()  # marked done before they were got
        assert q.unfinished_tasks == 0 and len(q) == 2
        q.shutdown(immediate=True)
        assert q.unfinished_tasks == 0 and len(q) == 0
        assert q.green_join(timeout=0) is True

    def test_repr_shows_it(self, factory: str) -> None:
        q = getattr(aiologic, factory)()
        before = repr(q)
        q.shutdown()
        assert repr(q) != before


@pytest.mark.parametrize("factory", ["SimpleQueue", "SimpleLifoQueue"])
class TestSimpleQueueShutdown:
    """API.md B1: shutdown() on every queue class, simple ones included."""

    def test_graceful(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            empty = getattr(aiologic, factory)()
            task = w.spawn(_timed_get, empty, DEADLINE)
            await w.wait_until(lambda: empty.getting == 1)
            empty.shutdown()
            assert isinstance(await task.join(), aiologic.QueueShutDown)
            assert empty.getting == empty.waiting == 0
            q = getattr(aiologic, factory)([1, 2])
            q.shutdown()
            with pytest.raises(aiologic.QueueShutDown):
                q.put(3)
            for kwargs in ({}, {"blocking": False}, {"timeout": 0}):
                result = await _put_outcome(w, q, 3, **kwargs)
                assert isinstance(result, aiologic.QueueShutDown), (kwargs, result)
            got = [await w.get(q), await w.get(q, blocking=False)]
            assert got == ([1, 2] if factory == "SimpleQueue" else [2, 1])
            for kwargs in ({"blocking": False}, {"timeout": DEADLINE}, {}):
                result = await _get_outcome(w, q, **kwargs)
                assert isinstance(result, aiologic.QueueShutDown), (kwargs, result)
            q.shutdown()  # harmless
            assert q.putting == q.getting == q.waiting == 0

        run_in(world, body)

    def test_immediate(self, factory: str) -> None:
        q = getattr(aiologic, factory)([1, 2, 3])
        q.shutdown(immediate=True)
        assert len(q) == 0 and not q
        with pytest.raises(aiologic.QueueShutDown):
            q.green_get(blocking=False)
        with pytest.raises(aiologic.QueueShutDown):
            q.put(4)


# ============================================================================
# Queue task tracking (part B2)
# ============================================================================


@BOUNDED_QUEUES
def test_join_semantics(world: str, factory: str) -> None:
    async def joiner(w: World, q: Any, timeout: float | None, done: list[Any]) -> Any:
        result = await w.call(q, "join", timeout=timeout)
        done.append(q.unfinished_tasks)
        return result

    async def body(w: World) -> None:
        q = getattr(aiologic, factory)(maxsize=1)
        assert q.unfinished_tasks == 0
        assert await w.call(q, "join", timeout=0) is True
        assert await w.call(q, "join") is True
        with pytest.raises(ValueError):
            q.task_done()
        assert q.unfinished_tasks == 0
        await w.put(q, 1)
        assert q.unfinished_tasks == 1
        with pytest.raises(aiologic.QueueFull):
            await w.put(q, 2, blocking=False)
        assert q.unfinished_tasks == 1  # a failed put is not counted
        assert await w.call(q, "join", timeout=0) is False
        start = time.monotonic()
        assert await w.call(q, "join", timeout=SHORT) is False
        assert time.monotonic() - start >= SHORT / 2
        assert await w.get(q) == 1
        assert q.unfinished_tasks == 1  # a get alone does not lower it
        done: list[Any] = []
        tasks = [w.spawn(joiner, q, timeout, done) for timeout in (None, DEADLINE)]
        # Give the joiners the time to block (and a wrong one the time to return).
        assert await w.call(q, "join", timeout=SHORT) is False
        assert done == []
        q.task_done()
        assert [await task.join() for task in tasks][1] is True
        assert done == [0, 0]
        with pytest.raises(ValueError):
            q.task_done()
        assert q.unfinished_tasks == 0
        assert await w.call(q, "join", timeout=0) is True

    run_in(world, body)


def test_join_across_worlds() -> None:
    """Issue 4: 1000 items processed by workers in three worlds; joiners in
    two more worlds return only after the last task_done()."""
    _require("trio")
    _require("gevent")
    q = aiologic.Queue(maxsize=16)
    n = 1000
    processed: list[int] = []
    hold_last = threading.Event()
    stop = threading.Event()

    async def worker(w: World) -> int:
        count = 0
        while True:
            try:
                item = await w.get(q, timeout=0.01)
            except aiologic.QueueEmpty:
                if stop.is_set():
                    return count
                continue
            if item == 0:  # the first item put is the last one marked done
                await w.wait_until(hold_last.is_set)
            processed.append(item)
            count += 1
            q.task_done()

    async def workers(w: World) -> int:
        tasks = [w.spawn(worker) for _ in range(2)]
        return sum([await task.join() for task in tasks])

    async def joiner(w: World) -> tuple[Any, int]:
        result = await w.call(q, "join")
        return result, len(processed)

    async def producer(w: World) -> None:
        for item in range(n):
            await w.put(q, item)

    crew = [Actor(name, workers) for name in ("threading", "asyncio", "trio")]
    feeder = Actor("threading", producer)
    wait_until(lambda: q.unfinished_tasks >= 1, actors=[*crew, feeder])
    joiners = [Actor("gevent", joiner), Actor("anyio-asyncio", joiner)]
    join_all([feeder])
    wait_until(lambda: len(processed) == n - 1, actors=crew + joiners)
    assert q.unfinished_tasks == 1
    assert q.green_join(timeout=SHORT) is False
    assert all(actor.thread.is_alive() for actor in joiners)
    hold_last.set()
    assert join_all(joiners) == [(True, n), (True, n)]
    stop.set()
    counts = join_all(crew)
    assert sum(counts) == n and all(counts), counts
    assert sorted(processed) == list(range(n))
    assert q.unfinished_tasks == 0 and q.green_join(timeout=0) is True
    assert not q and q.waiting == 0


# ============================================================================
# Queue edges: a failed call changes nothing, puts ordered with shutdown,
# copies, no reference cycles (issues 13 and 19)
# ============================================================================


def _done_or_stuck_in(thread: threading.Thread, function: str) -> bool:
    """True once `thread` has ended or waits inside aiologic's `function`
    (blocked on a lock held by a paused thread)."""
    if not thread.is_alive():
        return True
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == function and frame.f_code.co_filename == (
            aiologic.__file__
        ):
            return True
        frame = frame.f_back
    return False


def _other_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(fn())
        except Exception as exc:  # the outcome is checked
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


class _Refusing(aiologic.Queue):  # type: ignore[type-arg]
    """Storage hooks that raise on demand, having changed nothing."""

    def _init(self, items: Any, maxsize: int) -> None:
        super()._init(items, maxsize)
        self.fail_get = False

    def _put(self, item: Any) -> None:
        if item == "bad":
            raise KeyError(item)
        super()._put(item)

    def _get(self) -> Any:
        if self.fail_get:
            self.fail_get = False
            raise LookupError("refused")
        return super()._get()


def test_queue_hook_that_raises_changes_nothing(world: str) -> None:
    """Issue 13: a `_put` or `_get` that raises leaks no slot and no item;
    a waiter gets the slot or item the failed call did not use."""

    async def body(w: World) -> None:
        q = _Refusing(maxsize=2)
        for kwargs in ({}, {"blocking": False}, {"timeout": DEADLINE}):
            result = await _put_outcome(w, q, "bad", **kwargs)
            assert isinstance(result, KeyError), result
        assert len(q) == 0 and q.unfinished_tasks == 0
        await w.put(q, 1, blocking=False)
        await w.put(q, 2, blocking=False)  # both slots are still there
        with pytest.raises(aiologic.QueueFull):
            await w.put(q, 3, blocking=False)
        # A failed get gives its item back: to a blocked getter first.
        q.fail_get = True
        assert isinstance(await _get_outcome(w, q), LookupError)
        assert len(q) == 2
        assert [await w.get(q, blocking=False), await w.get(q, timeout=0)] == [1, 2]
        getter = w.spawn(_timed_get, q, DEADLINE)
        await w.wait_until(lambda: q.getting == 1)
        q.fail_get = True
        await w.put(q, 3)  # handed to the getter, whose _get raises
        assert isinstance(await getter.join(), LookupError)
        assert len(q) == 1 and q.getting == 0
        # The ready unit went back: a second getter gets the item at once.
        assert await w.get(q, blocking=False) == 3
        # The slots all work: a blocked putter gets the one freed by a get.
        await w.put(q, 4)
        await w.put(q, 5)
        putter = w.spawn(_timed_put, q, 6, DEADLINE)
        await w.wait_until(lambda: q.putting == 1)
        assert await w.get(q) == 4  # the slot goes to the putter
        assert await putter.join() is None
        assert [await w.get(q), await w.get(q)] == [5, 6]
        assert q.unfinished_tasks == 6 and q.waiting == 0 and not q

    run_in(world, body)


def test_queue_hook_that_raises_hands_the_slot_on() -> None:
    """Issue 13: a putter that got its slot by hand-off and whose `_put`
    raises passes the slot to the next blocked putter."""
    q = _Refusing([0], maxsize=1)
    bad = _Thread(lambda: q.green_put("bad", timeout=DEADLINE))
    wait_until(lambda: q.putting == 1)
    good = _Thread(lambda: q.green_put("good", timeout=DEADLINE))
    wait_until(lambda: q.putting == 2)
    assert q.green_get() == 0
    assert isinstance(bad.result(), KeyError)
    assert good.result() is None
    assert q.green_get(blocking=False) == "good"
    assert q.waiting == 0 and not q


class _Thread:
    """A plain thread running `fn`; `result()` joins it (with a deadline)
    and returns its value or the Exception it raised."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.thread, self._outcome = _other_thread(fn)

    def result(self) -> Any:
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), _stack_of(self.thread)
        return self._outcome[0]


class _Picky:
    """An orderable value whose comparisons raise while `broken` is set."""

    broken = False

    def __init__(self, value: int) -> None:
        self.value = value

    def __lt__(self, other: _Picky) -> bool:
        if _Picky.broken:
            raise ArithmeticError("cannot compare now")
        return self.value < other.value

    def __repr__(self) -> str:
        return f"_Picky({self.value})"


def test_priority_queue_refuses_incomparable_items_without_a_ghost() -> None:
    """Issue 13: `put` of an item that cannot be compared raises and leaves
    no ghost (len, slots, unfinished count and order unchanged)."""
    q = aiologic.PriorityQueue([5, 1, 4, 2], maxsize=6)
    for bad in ("x", None, (1,)):
        with pytest.raises(TypeError):
            q.green_put(bad)  # type: ignore[arg-type]
        assert len(q) == 4 and q.unfinished_tasks == 4
    q.green_put(3, blocking=False)
    q.green_put(0, blocking=False)  # the two slots are still free
    with pytest.raises(aiologic.QueueFull):
        q.green_put(9, blocking=False)
    assert [q.green_get(blocking=False) for _ in range(6)] == [0, 1, 2, 3, 4, 5]
    assert not q and len(q) == 0

    # The same when a comparison fails deep in the heap, on put or on get.
    picky = aiologic.PriorityQueue([_Picky(v) for v in (8, 3, 6, 1, 7, 2, 5)])
    for call in (lambda: picky.green_put(_Picky(0)), lambda: picky.green_get()):
        _Picky.broken = True
        try:
            with pytest.raises(ArithmeticError):
                call()
        finally:
            _Picky.broken = False
        assert len(picky) == 7 and picky.unfinished_tasks == 7
    got = [picky.green_get(blocking=False).value for _ in range(7)]
    assert got == [1, 2, 3, 5, 6, 7, 8]


def test_priority_queue_order_matches_heapq() -> None:
    rng = random.Random(13)
    q: aiologic.PriorityQueue[int] = aiologic.PriorityQueue()
    model: list[int] = []
    for _ in range(3000):
        if model and rng.random() < 0.45:
            model.sort()
            assert q.green_get(blocking=False) == model.pop(0)
        else:
            item = rng.randrange(50)
            q.green_put(item)
            model.append(item)
    assert sorted(model) == [q.green_get(blocking=False) for _ in model]


@pytest.mark.parametrize("factory", ["Queue", "LifoQueue", "PriorityQueue"])
def test_graceful_shutdown_racing_a_put(factory: str) -> None:
    """Issue 13: a put that passed its shutdown check when `shutdown()` runs
    in another thread: the blocked getter gets the item, not QueueShutDown.
    The putter is paused after it stored the item, before it tells getters."""
    q = getattr(aiologic, factory)(maxsize=2)
    getter = _Thread(lambda: q.green_get(timeout=DEADLINE))
    wait_until(lambda: q.getting == 1)
    store = Pause(aiologic.Queue._store, "ready = self._ready")
    with store.start(lambda: q.green_put(7)):
        stopper = _Thread(q.shutdown)
        # The shutdown either ran to the end, or waits for the put to finish.
        wait_until(lambda: _done_or_stuck_in(stopper.thread, "shutdown"))
    assert stopper.result() is None
    assert getter.result() == 7
    assert not q and q.waiting == 0
    with pytest.raises(aiologic.QueueShutDown):
        q.green_get(blocking=False)


def test_graceful_shutdown_between_a_hand_off_and_its_wake_up() -> None:
    """A put claims the oldest getter's ticket under the storage lock and
    wakes it after the lock: a shutdown in between runs to the end (the
    claimed getter has left the deque), and the getter gets the item."""
    q: aiologic.Queue[int] = aiologic.Queue()
    getter = _Thread(lambda: q.green_get(timeout=DEADLINE))
    wait_until(lambda: q.getting == 1)
    wake = Pause(aiologic.Queue._store, "ready.wake_claimed(woken)")
    with wake.start(lambda: q.green_put(7)):
        q.shutdown()
        assert q.getting == 0 and len(q) == 1
    assert wake.outcome == [None]
    assert getter.result() == 7
    assert not q and q.waiting == 0
    with pytest.raises(aiologic.QueueShutDown):
        q.green_get(blocking=False)


def test_getter_cancelled_between_a_hand_off_and_its_wake_up() -> None:
    """An asyncio getter whose ticket a put (in another thread) has claimed
    but not woken yet is cancelled: it passes the item's unit on, and the
    item stays in the queue for the next get."""
    import asyncio

    q: aiologic.Queue[int] = aiologic.Queue(maxsize=1)
    wake = Pause(aiologic.Queue._store, "ready.wake_claimed(woken)")

    async def main() -> None:
        getter = asyncio.ensure_future(q.async_get())
        deadline = time.monotonic() + DEADLINE
        while q.getting < 1:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.001)
        wake.start(lambda: q.green_put(7))  # claimed, not woken
        getter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await getter
        assert wake.join() is None  # the wake-up finds the getter gone
        assert q.getting == 0 and len(q) == 1
        assert await q.async_get(timeout=DEADLINE) == 7

    asyncio.run(main())
    assert not q and q.waiting == 0 and q._ready.value == 0


@pytest.mark.parametrize("factory", ["SimpleQueue", "SimpleLifoQueue"])
def test_simple_queue_graceful_shutdown_racing_a_put(factory: str) -> None:
    q = getattr(aiologic, factory)()
    getter = _Thread(lambda: q.green_get(timeout=DEADLINE))
    wait_until(lambda: q.getting == 1)
    put = Pause(aiologic.SimpleQueue.put, "self._items.append(item)")
    with put.start(lambda: q.put(7)):
        stopper = _Thread(q.shutdown)
        wait_until(lambda: _done_or_stuck_in(stopper.thread, "shutdown"))
    assert stopper.result() is None
    assert getter.result() == 7
    assert not q and q.waiting == 0


@pytest.mark.parametrize("factory", ["SimpleQueue", "SimpleLifoQueue"])
def test_simple_queue_get_during_a_graceful_shutdown_waits_for_a_put_in_flight(
    factory: str,
) -> None:
    """A graceful shutdown() waiting for a put in flight has not shut the
    queue yet: a get that empties the queue meanwhile does not find it shut
    down and drained, and a getter that comes then gets the put's item
    (not `QueueShutDown`, with the item left behind for nobody)."""
    q = getattr(aiologic, factory)([1])
    put = Pause(aiologic.SimpleQueue.put, "self._items.append(item)")
    with put.start(lambda: q.put(2)):
        stopper = _Thread(q.shutdown)
        wait_until(lambda: _done_or_stuck_in(stopper.thread, "_fence_puts"))
        assert q.green_get(blocking=False) == 1
        with pytest.raises(aiologic.QueueEmpty):  # the put is not over
            q.green_get(blocking=False)
        getter = _Thread(lambda: q.green_get(timeout=DEADLINE))
        wait_until(lambda: q.getting == 1 or not getter.thread.is_alive())
    assert put.outcome == [None] and stopper.result() is None
    assert getter.result() == 2
    assert not q and q.is_shutdown
    with pytest.raises(aiologic.QueueShutDown):
        q.green_get(blocking=False)


@pytest.mark.parametrize("factory", ["SimpleQueue", "SimpleLifoQueue"])
def test_simple_queue_put_racing_an_immediate_shutdown(factory: str) -> None:
    """Issue 13: a put paused past its shutdown check while
    `shutdown(immediate=True)` runs is ordered with it: it raises, or its
    item is dropped; the shut-down queue holds nothing afterwards."""
    q = getattr(aiologic, factory)([1])
    put = Pause(aiologic.SimpleQueue.put, "self._items.append(item)")
    with put.start(lambda: q.put(2)):
        stopper = _Thread(lambda: q.shutdown(immediate=True))
        wait_until(lambda: _done_or_stuck_in(stopper.thread, "shutdown"))
    assert stopper.result() is None
    [outcome] = put.outcome
    assert outcome is None or isinstance(outcome, aiologic.QueueShutDown)
    assert len(q) == 0 and not q
    with pytest.raises(aiologic.QueueShutDown):
        q.green_get(blocking=False)


@pytest.mark.parametrize("factory", ["SimpleQueue", "SimpleLifoQueue"])
def test_simple_queue_clear_waits_for_a_put_in_flight(factory: str) -> None:
    """A SimpleQueue put takes no lock: paused past its look for the fence
    when clear() runs in another thread, it is wholly before the clear,
    which waits for it and removes its item too."""
    q = getattr(aiologic, factory)([1])
    put = Pause(aiologic.SimpleQueue.put, "self._items.append(item)")
    with put.start(lambda: q.put(2)):
        clearer = _Thread(q.clear)
        wait_until(lambda: _done_or_stuck_in(clearer.thread, "clear"))
    assert clearer.result() is None and put.outcome == [None]
    assert len(q) == 0 and q._ready.value == 0


@pytest.mark.parametrize("factory", ["SimpleQueue", "SimpleLifoQueue"])
def test_simple_queue_put_during_a_clear_goes_after_it(factory: str) -> None:
    """A put that finds the fence of a clear() in progress waits for it on
    the storage lock: its item is not removed."""
    q = getattr(aiologic, factory)([1])
    with Pause(aiologic.SimpleQueue.clear, "items = self._items").start(q.clear):
        putter = _Thread(lambda: q.put(2))
        wait_until(lambda: _done_or_stuck_in(putter.thread, "_fenced_put"))
    assert putter.result() is None
    assert q.green_get(blocking=False) == 2
    assert len(q) == 0 and q._ready.value == 0
    q.put(3)  # the fence is down again
    assert q._gate == [] and q.green_get(blocking=False) == 3


@pytest.mark.parametrize("factory", ["Queue", "LifoQueue", "PriorityQueue"])
def test_queue_put_racing_an_immediate_shutdown(factory: str) -> None:
    q = getattr(aiologic, factory)([1], maxsize=3)
    store = Pause(aiologic.Queue._store, "ready = self._ready")
    with store.start(lambda: q.green_put(2)):
        stopper = _Thread(lambda: q.shutdown(immediate=True))
        wait_until(lambda: _done_or_stuck_in(stopper.thread, "shutdown"))
    assert stopper.result() is None
    assert len(q) == 0 and q.unfinished_tasks == 0
    with pytest.raises(aiologic.QueueShutDown):
        q.green_get(blocking=False)


ALL_QUEUE_NAMES = pytest.mark.parametrize(
    "factory",
    ["SimpleQueue", "SimpleLifoQueue", "Queue", "LifoQueue", "PriorityQueue"],
)


@ALL_QUEUE_NAMES
def test_graceful_shutdown_while_a_getter_splits_a_batch(factory: str) -> None:
    """Review: a getter takes one of two initial ready units (a batch of 2,
    the other unit out of sight until it is given back); a graceful
    shutdown at that moment must not refuse a second getter while the
    other item is still in the queue."""
    q = getattr(aiologic, factory)([1, 1])
    take = Pause(aiologic.Semaphore._try_take, "self._release(batch - 1)")
    with take.start(q.green_get) as first:
        q.shutdown()
        second = _Thread(lambda: q.green_get(timeout=DEADLINE))
        # Refused (the bug), or waiting for the unit the first gives back.
        wait_until(lambda: not second.thread.is_alive() or q.getting == 1)
    outcome = second.result()
    assert first.outcome == [1]
    assert outcome == 1, outcome
    assert len(q) == 0 and q.waiting == 0
    with pytest.raises(aiologic.QueueShutDown):
        q.green_get(blocking=False)


@ALL_QUEUE_NAMES
def test_graceful_shutdown_while_a_cancelled_getter_passes_its_item_on(
    factory: str,
) -> None:
    """Review (the open queue race): an asyncio getter is handed an item and
    cancelled before it runs; it passes the item on outside the storage
    lock. A graceful shutdown at that moment wakes the other (threading)
    getter, which must get the item, not QueueShutDown."""
    import asyncio

    q = getattr(aiologic, factory)()
    other: list[_Thread] = []

    async def main() -> Any:
        getter = asyncio.ensure_future(q.async_get())
        await asyncio.sleep(0)  # let it publish (no timing: checked below)
        assert q.getting == 1
        other.append(_Thread(lambda: q.green_get(timeout=DEADLINE)))
        deadline = time.monotonic() + DEADLINE
        while q.getting < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.001)
        q.green_put(7) if hasattr(q, "green_put") else q.put(7)  # to the getter
        getter.cancel()  # before it runs: it passes the item on
        try:
            return await getter
        except asyncio.CancelledError:
            return "cancelled"

    undo = Pause(aiologic._Acquirable._undo, "self._release_one()")
    with undo.start(lambda: asyncio.run(main())) as call:
        q.shutdown()  # wakes the threading getter while the item is in flight
        # Refused (the bug), or still waiting for the item in flight.
        wait_until(lambda: not other[0].thread.is_alive() or q.getting == 1)
    assert call.outcome == ["cancelled"], call.outcome
    assert other[0].result() == 7
    assert len(q) == 0 and q.waiting == 0


@pytest.mark.parametrize(
    ("factory", "function", "line"),
    [
        ("SimpleQueue", aiologic.Semaphore._release, "permits.append(count)"),
        ("SimpleLifoQueue", aiologic.Semaphore._release, "permits.append(count)"),
        ("Queue", aiologic.Queue._store, "ready._permits.append(1)"),
        ("LifoQueue", aiologic.Queue._store, "ready._permits.append(1)"),
        ("PriorityQueue", aiologic.Queue._store, "ready._permits.append(1)"),
    ],
)
def test_put_serves_a_getter_that_published_after_its_look(
    factory: str, function: Any, line: str
) -> None:
    """A put's no-waiter path (Queue's inline) found no getter, then a getter
    published (and found no unit) before the put freed its unit: the put's
    look after freeing it hands the unit to that getter."""
    q = getattr(aiologic, factory)()
    pause = Pause(function, line)
    with pause.start(lambda: q.green_put(7)) as call:
        getter = _Thread(lambda: q.green_get(timeout=DEADLINE))
        wait_until(lambda: q.getting == 1)
    assert call.outcome == [None]
    assert getter.result() == 7
    assert not q and q.waiting == 0 and q._ready.value == 0


@pytest.mark.parametrize("factory", ["Queue", "LifoQueue", "PriorityQueue"])
def test_get_serves_a_putter_that_published_after_its_look(factory: str) -> None:
    """The same on the side of free slots: a get found no putter waiting,
    then one published before the get freed its slot."""
    q = getattr(aiologic, factory)([1], maxsize=1)
    take = Pause(aiologic.Queue._take, "free._permits.append(1)")
    with take.start(q.green_get) as call:
        putter = _Thread(lambda: q.green_put(2, timeout=DEADLINE))
        wait_until(lambda: q.putting == 1)
    assert call.outcome == [1]
    assert putter.result() is None
    assert q.green_get(blocking=False) == 2
    assert q.waiting == 0 and q._free.value == 1 and q._ready.value == 0


@ALL_QUEUE_NAMES
def test_async_get_finds_its_unit_taken_since_its_look(factory: str) -> None:
    """`async_get`'s inline take saw a free unit, another thread took it
    before the pop: the get waits in line as any other, and gets the next
    item."""
    import asyncio

    q = getattr(aiologic, factory)([1])
    pop = Pause(aiologic._Gets.async_get, "batch = permits.pop()")
    getter = pop.start(lambda: asyncio.run(q.async_get(timeout=DEADLINE)))
    assert q.green_get(blocking=False) == 1
    pop.release()
    wait_until(lambda: q.getting == 1)
    q.green_put(2)
    assert getter.join() == 2
    assert not q and q.waiting == 0 and q._ready.value == 0


@ALL_QUEUE_NAMES
def test_async_graceful_shutdown_while_a_getter_splits_a_batch(factory: str) -> None:
    """test_graceful_shutdown_while_a_getter_splits_a_batch, for the batch
    split inline in `async_get`."""
    import asyncio

    q = getattr(aiologic, factory)([1, 1])
    split = Pause(aiologic._Gets.async_get, "ready.give(batch - 1)")
    with split.start(lambda: asyncio.run(q.async_get())) as first:
        q.shutdown()
        second = _Thread(lambda: q.green_get(timeout=DEADLINE))
        wait_until(lambda: not second.thread.is_alive() or q.getting == 1)
    assert second.result() == 1
    assert first.outcome == [1]
    assert len(q) == 0 and q.waiting == 0


class _BadBool:
    """An argument whose truth value cannot be known."""

    def __bool__(self) -> bool:
        raise ZeroDivisionError("no truth value")


ALL_QUEUES = pytest.mark.parametrize(
    "factory", ["SimpleQueue", "SimpleLifoQueue", "Queue", "LifoQueue", "PriorityQueue"]
)


def _make_queue(factory: str, items: Any = (), maxsize: int | None = None) -> Any:
    cls = getattr(aiologic, factory)
    if factory.startswith("Simple"):
        return cls(items)
    return cls(items, maxsize)


@ALL_QUEUES
def test_queue_arguments_checked_before_anything_changes(
    world: str, factory: str
) -> None:
    """Issue 19: `blocking=` and `shutdown(immediate=)` are evaluated before
    a slot or an item is taken: an argument that raises changes nothing."""

    async def body(w: World) -> None:
        q = _make_queue(factory, [1], maxsize=2)
        for kwargs in (
            {"blocking": _BadBool()},
            {"blocking": _BadBool(), "timeout": 0},
        ):
            result = await _get_outcome(w, q, **kwargs)
            assert isinstance(result, ZeroDivisionError), result
            assert len(q) == 1
            result = await _put_outcome(w, q, 2, **kwargs)
            assert isinstance(result, ZeroDivisionError), result
            assert len(q) == 1
        for bad in (math.nan, "soon"):
            result = await _put_outcome(w, q, 2, blocking=_BadBool(), timeout=bad)
            assert isinstance(result, (ValueError, TypeError)), result
        with pytest.raises(ZeroDivisionError):
            q.shutdown(immediate=_BadBool())
        await w.put(q, 2, blocking=False)  # not shut down; the slot is there
        assert [await w.get(q, blocking=False) for _ in range(2)] in ([1, 2], [2, 1])
        # A blocked getter is not woken by the shutdown that failed.
        getter = w.spawn(_timed_get, q, DEADLINE)
        await w.wait_until(lambda: q.getting == 1)
        with pytest.raises(ZeroDivisionError):
            q.shutdown(immediate=_BadBool())
        assert q.getting == 1
        await w.put(q, 3)
        assert await getter.join() == 3
        assert q.waiting == 0 and not q

    run_in(world, body)


def _clone(q: Any, how: str) -> Any:
    if how == "copy":
        return copy.copy(q)
    if how == "deepcopy":
        return copy.deepcopy(q)
    return pickle.loads(pickle.dumps(q))


@ALL_QUEUES
@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_queue_copy_is_a_new_queue_of_its_items(factory: str, how: str) -> None:
    """Issue 13: a queue's copy, deepcopy and pickle give a new queue built
    from its items and maxsize: no waiters, no shutdown, no task count; a
    used queue (storage lock, waiters, joins) copies and pickles."""
    q = _make_queue(factory, [[2], [1]], maxsize=5)
    q.green_put([3])
    for _ in range(3):
        q.green_get()
    getter = _Thread(lambda: q.green_get(timeout=DEADLINE))
    wait_until(lambda: q.getting == 1)
    empty = _clone(q, how)
    assert type(empty) is type(q) and len(empty) == 0 and empty.waiting == 0
    q.green_put([0])
    assert getter.result() == [0]
    for item in ([5], [4], [6]):
        q.green_put(item)
    if isinstance(q, aiologic.Queue):
        q.task_done()
        assert q.green_join(timeout=0.001) is False
        assert q.unfinished_tasks == 6
    q.shutdown()
    clone = _clone(q, how)
    assert type(clone) is type(q) and clone is not q
    assert len(clone) == 3 and clone.waiting == 0
    if isinstance(q, aiologic.Queue):
        assert clone.maxsize == 5 and clone.unfinished_tasks == 3
    got = [clone.green_get(blocking=False) for _ in range(3)]
    items = [q.green_get(blocking=False) for _ in range(3)]
    assert got == items and len(q) == 0
    assert all((a is b) == (how == "copy") for a, b in zip(got, items)), how
    clone.green_put([9], blocking=False)  # the copy is not shut down
    assert clone.green_get(blocking=False) == [9]
    if isinstance(q, aiologic.Queue):
        clone.task_done()
        assert clone.unfinished_tasks == 3


# PyPy has no reference counting: only its collector frees anything.
REFCOUNTED = pytest.mark.skipif(
    sys.implementation.name != "cpython", reason="needs reference counting"
)


@REFCOUNTED
@ALL_QUEUES
def test_dropped_queue_is_freed_without_the_collector(factory: str) -> None:
    """Issue 19: a queue and its parts form no reference cycle: with gc off,
    a used queue dies when its last reference goes."""
    gc.collect()
    gc.disable()
    try:
        for shut_down in (False, True):
            q = _make_queue(factory, [1], maxsize=3)
            q.green_put(2)
            assert sorted([q.green_get(), q.green_get()]) == [1, 2]
            thread = threading.Thread(
                target=lambda q=q: q.green_get(timeout=DEADLINE), daemon=True
            )
            thread.start()
            wait_until(lambda q=q: q.getting == 1)
            q.green_put(3)
            thread.join(DEADLINE)
            del thread
            if isinstance(q, aiologic.Queue):
                q.task_done()
                q.green_join(timeout=0.001)
            if shut_down:
                q.shutdown(immediate=True)
            ref = weakref.ref(q)
            del q
            assert ref() is None, gc.get_referrers(ref())
    finally:
        gc.enable()


@REFCOUNTED  # and tracemalloc
def test_queue_task_count_takes_constant_memory() -> None:
    """Issue 19: puts nobody marks done cost no memory per put."""
    import tracemalloc

    q: aiologic.Queue[int] = aiologic.Queue()
    for i in range(100):
        q.green_put(i)
        q.green_get()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20000):
            q.green_put(i)
            q.green_get()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert q.unfinished_tasks == 20100
    assert grown < 20000, grown  # a list slot per put would be 160 kB
    for _ in range(20100):
        q.task_done()
    assert q.unfinished_tasks == 0 and q.green_join(timeout=0) is True


# ============================================================================
# Queue: the stdlib's names, janus views, peek (issue 18)
# ============================================================================


async def _peek_outcome(w: World, q: Any, **kwargs: Any) -> Any:
    return await outcome_of(w.call(q, "peek", **kwargs))


@BOUNDED_QUEUES
def test_queue_stdlib_names(factory: str) -> None:
    q = getattr(aiologic, factory)(maxsize=2)
    assert q.qsize() == 0 and q.empty() and not q.full() and not q.is_shutdown
    with pytest.raises(aiologic.QueueEmpty):
        q.get_nowait()
    q.put_nowait(2)
    q.put_nowait(1)
    assert q.qsize() == 2 and not q.empty() and q.full()
    with pytest.raises(aiologic.QueueFull):
        q.put_nowait(3)
    assert q.qsize() == 2 and q.unfinished_tasks == 2
    assert [q.get_nowait(), q.get_nowait()] == _ORDER[factory]([2, 1])
    assert q.empty() and q.putting == q.getting == 0
    unbounded = getattr(aiologic, factory)()
    for i in range(5):
        unbounded.put_nowait(i)
    assert not unbounded.full() and unbounded.qsize() == 5
    q.put_nowait(1)
    q.shutdown()
    assert q.is_shutdown
    with pytest.raises(aiologic.QueueShutDown):
        q.put_nowait(1)
    assert q.get_nowait() == 1
    with pytest.raises(aiologic.QueueShutDown):
        q.get_nowait()


@pytest.mark.parametrize("factory", ["SimpleQueue", "SimpleLifoQueue"])
def test_simple_queue_stdlib_names(factory: str) -> None:
    q = getattr(aiologic, factory)()
    assert q.qsize() == 0 and q.empty() and not q.is_shutdown
    assert not hasattr(q, "full")  # never full: queue.SimpleQueue has none
    with pytest.raises(aiologic.QueueEmpty):
        q.get_nowait()
    q.put_nowait(1)
    q.put_nowait(2)
    assert q.qsize() == 2 and not q.empty()
    assert q.get_nowait() == (1 if factory == "SimpleQueue" else 2)
    q.shutdown()
    assert q.is_shutdown
    with pytest.raises(aiologic.QueueShutDown):
        q.put_nowait(3)


def test_negative_timeout_has_the_stdlib_words() -> None:
    q = aiologic.Queue(maxsize=1)
    for call in (
        lambda: q.green_put(1, timeout=-1),
        lambda: q.green_get(timeout=-1),
        lambda: q.sync_q.put(1, timeout=-1),
        lambda: q.sync_q.get(True, -1),
    ):
        with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
            call()
    assert len(q) == 0 and q.waiting == 0


@BOUNDED_QUEUES
def test_janus_views_are_thin(factory: str) -> None:
    q = getattr(aiologic, factory)(maxsize=3)
    sync_q, async_q = q.sync_q, q.async_q
    # The same object each time, with no state but the queue.
    assert q.sync_q is sync_q and q.async_q is async_q
    for view in (sync_q, async_q):
        assert not hasattr(view, "__dict__")
        assert type(view).__slots__ == ()
        assert repr(q) in repr(view)
        weakref.ref(view)
    assert isinstance(sync_q, aiologic.SyncQueueView)
    assert isinstance(async_q, aiologic.AsyncQueueView)
    # A view keeps its queue alive; the queue keeps no strong reference to
    # its views, so the two form no cycle.
    queue_ref = weakref.ref(q)
    del q
    assert queue_ref() is sync_q._queue
    if sys.implementation.name != "cpython":
        return  # the rest needs reference counting
    gc.disable()
    try:
        del sync_q, async_q, view
        assert queue_ref() is None
    finally:
        gc.enable()


@BOUNDED_QUEUES
def test_janus_view_members(factory: str) -> None:
    q = getattr(aiologic, factory)(maxsize=2)
    for view in (q.sync_q, q.async_q):
        assert view.maxsize == 2 and view.qsize() == 0 and view.empty()
        assert not view.full() and not view.closed and view.unfinished_tasks == 0
        view.put_nowait(5)
        view.put_nowait(4)
        assert view.full() and view.qsize() == 2 and q.qsize() == 2
        with pytest.raises(aiologic.QueueFull):
            view.put_nowait(3)
        assert view.get_nowait() == _ORDER[factory]([5, 4])[0]
        assert view.get_nowait() == _ORDER[factory]([5, 4])[1]
        with pytest.raises(aiologic.QueueEmpty):
            view.get_nowait()
        assert view.unfinished_tasks == 2
        view.task_done()
        view.task_done()
        assert q.unfinished_tasks == 0
    assert getattr(aiologic, factory)().sync_q.maxsize == 0  # unbounded
    sync_q = q.sync_q
    sync_q.put(1)
    sync_q.put(2, block=False)
    with pytest.raises(aiologic.QueueFull):
        sync_q.put(3, timeout=SHORT)
    with pytest.raises(aiologic.QueueFull):
        sync_q.put(3, False)
    assert sorted([sync_q.get(), sync_q.get(timeout=SHORT)]) == [1, 2]
    with pytest.raises(aiologic.QueueEmpty):
        sync_q.get(timeout=SHORT)
    with pytest.raises(aiologic.QueueEmpty):
        sync_q.get(False)
    sync_q.task_done()
    sync_q.task_done()
    sync_q.join()
    q.sync_q.put(1)
    q.sync_q.shutdown()
    assert q.closed and q.sync_q.closed and q.async_q.closed and q.is_shutdown
    with pytest.raises(aiologic.QueueShutDown):
        q.sync_q.put(2)
    assert q.sync_q.get() == 1  # shutdown() is graceful, as the queue's


def test_janus_views_in_every_world(world: str) -> None:
    async def body(w: World) -> None:
        q = aiologic.Queue(maxsize=1)
        if w.green:
            view = q.sync_q

            async def put(item: Any) -> None:
                view.put(item)

            async def get() -> Any:
                return view.get()

            async def join() -> None:
                view.join()

        else:
            view = q.async_q
            put, get, join = view.put, view.get, view.join

        async def consumer(w: World) -> list[Any]:
            got = []
            for _ in range(3):
                got.append(await get())
                view.task_done()
            return got

        task = w.spawn(consumer)
        for item in range(3):
            await put(item)  # waits for the consumer each time (maxsize=1)
        await join()
        assert await task.join() == [0, 1, 2]
        assert q.unfinished_tasks == 0 and q.waiting == 0

    run_in(world, body)


def test_janus_views_across_threads_and_loops() -> None:
    """One queue: a plain thread on sync_q, asyncio and trio on async_q."""
    _require("trio")
    q: aiologic.Queue[int] = aiologic.Queue(maxsize=2)
    n = 200

    async def async_producer(w: World, base: int) -> None:
        for i in range(n):
            await q.async_q.put(base + i)

    async def async_consumer(w: World) -> list[int]:
        got = []
        for _ in range(n):
            got.append(await q.async_q.get())
            q.async_q.task_done()
        return got

    async def green_producer(w: World) -> None:
        for i in range(n):
            q.sync_q.put(2 * n + i)

    async def green_consumer(w: World) -> list[int]:
        got = []
        for _ in range(n):
            got.append(q.sync_q.get())
            q.sync_q.task_done()
        return got

    results = run_actors(
        ("asyncio", async_producer, 0),
        ("trio", async_producer, n),
        ("threading", green_producer),
        ("asyncio", async_consumer),
        ("trio", async_consumer),
        ("threading", green_consumer),
    )
    got = [item for result in results[3:] for item in result]
    assert sorted(got) == list(range(3 * n))
    q.sync_q.join()
    assert q.unfinished_tasks == 0 and q.waiting == 0 and q.empty()


def test_janus_close_wait_closed_aclose(async_backend: str) -> None:
    async def body(w: World) -> None:
        q = aiologic.Queue(maxsize=2)
        assert not q.closed
        with pytest.raises(RuntimeError, match="Waiting for non-closed queue"):
            await q.wait_closed()
        assert not q.closed and not q.is_shutdown
        await q.async_q.put(1)
        joiner = w.spawn(lambda w: q.async_q.join())
        getter_q = aiologic.Queue()
        getter = w.spawn(lambda w: outcome_of(getter_q.async_q.get()))
        await w.wait_until(lambda: getter_q.getting == 1)
        q.close()  # immediate: the item is dropped and counted as done
        q.close()  # harmless
        await q.wait_closed()
        assert q.closed and q.sync_q.closed and q.async_q.closed
        assert q.empty() and q.unfinished_tasks == 0
        assert await joiner.join() is True
        with pytest.raises(aiologic.QueueShutDown):
            await q.async_q.put(2)
        with pytest.raises(aiologic.QueueShutDown):
            q.async_q.get_nowait()
        await getter_q.aclose()
        assert isinstance(await getter.join(), aiologic.QueueShutDown)
        assert getter_q.closed and getter_q.waiting == 0

    run_in(async_backend, body)


class TestPeek:
    @pytest.mark.parametrize(
        "factory",
        ["Queue", "LifoQueue", "PriorityQueue", "SimpleQueue", "SimpleLifoQueue"],
    )
    def test_peek_is_the_next_get(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            q = getattr(aiologic, factory)()
            for bad in ({"blocking": False}, {"timeout": 0}, {"timeout": SHORT}):
                result = await _peek_outcome(w, q, **bad)
                assert isinstance(result, aiologic.QueueEmpty), (bad, result)
            with pytest.raises(aiologic.QueueEmpty):
                q.peek_nowait()
            for item in (5, 2, 8, 1):
                await w.put(q, item)
            while q:
                peeked = [
                    q.peek_nowait(),
                    await w.call(q, "peek"),
                    await w.call(q, "peek", blocking=False),
                    await w.call(q, "peek", timeout=SHORT),
                ]
                assert len(set(peeked)) == 1
                assert await w.get(q) == peeked[0]
            assert q.waiting == 0 and len(q) == 0

        run_in(world, body)

    def test_blocking_peek_waits_in_line_with_getters(self, world: str) -> None:
        async def body(w: World) -> None:
            q = aiologic.Queue()
            log: list[Any] = []

            async def getter(w: World, name: str) -> None:
                log.append((name, await w.get(q)))

            async def peeker(w: World, name: str) -> None:
                log.append((name, await w.call(q, "peek")))

            tasks = [w.spawn(getter, "g1")]
            await w.wait_until(lambda: q.getting == 1)
            tasks.append(w.spawn(peeker, "p"))
            await w.wait_until(lambda: q.getting == 2)
            tasks.append(w.spawn(getter, "g2"))
            await w.wait_until(lambda: q.getting == 3)
            await w.put(q, "a")
            await w.wait_until(lambda: log == [("g1", "a")])
            assert q.getting == 2
            # The peeker sees "b" and hands its turn to g2 at once.
            await w.put(q, "b")
            for task in tasks:
                await task.join()
            assert log == [("g1", "a"), ("p", "b"), ("g2", "b")]
            assert q.waiting == 0 and len(q) == 0

        run_in(world, body)

    def test_cancelled_and_timed_out_peeks_lose_nothing(
        self, cooperative_world: str
    ) -> None:
        async def body(w: World) -> None:
            q = aiologic.Queue()
            peekers = [w.spawn(lambda w: w.call(q, "peek")) for _ in range(3)]
            await w.wait_until(lambda: q.getting == 3)
            result = await _peek_outcome(w, q, timeout=SHORT)
            assert isinstance(result, aiologic.QueueEmpty)
            getter = w.spawn(lambda w: w.get(q))
            await w.wait_until(lambda: q.getting == 4)
            for task in peekers[:2]:
                task.cancel()
            await w.put(q, 1)  # may be handed to a peeker as it is cancelled
            assert await getter.join() == 1
            for task in peekers[:2]:  # cancelled, or it saw the item
                assert await task.join() in (CANCELLED, 1)
            assert await peekers[2].join() == 1
            assert q.waiting == 0 and len(q) == 0 and q.unfinished_tasks == 1

        run_in(cooperative_world, body)

    @pytest.mark.parametrize("factory", ["Queue", "SimpleQueue"])
    def test_peek_and_shutdown(self, world: str, factory: str) -> None:
        async def body(w: World) -> None:
            q = getattr(aiologic, factory)()
            peeker = w.spawn(lambda w: _peek_outcome(w, q))
            await w.wait_until(lambda: q.getting == 1)
            await w.put(q, 1)
            assert await peeker.join() == 1
            peeker = w.spawn(lambda w: _peek_outcome(w, q, timeout=DEADLINE))
            q.shutdown()  # graceful: the item is still there for peeks and gets
            assert await peeker.join() == 1
            assert q.peek_nowait() == 1 and await w.get(q) == 1
            for kwargs in ({}, {"blocking": False}, {"timeout": DEADLINE}):
                result = await _peek_outcome(w, q, **kwargs)
                assert isinstance(result, aiologic.QueueShutDown), (kwargs, result)
            q2 = getattr(aiologic, factory)()
            peeker = w.spawn(lambda w: _peek_outcome(w, q2))
            await w.wait_until(lambda: q2.getting == 1)
            q2.shutdown()
            assert isinstance(await peeker.join(), aiologic.QueueShutDown)
            assert q2.waiting == 0

        run_in(world, body)


def _peeker_handed_a_unit(q: Any) -> Pause:
    """A thread peeks at the empty queue *q*; an item is put, handed to it,
    and the peeker pauses as it holds the item's unit."""
    pause = Pause(type(q)._peek_held, "with self._storage_lock():")
    pause.start(lambda: q.green_peek(timeout=DEADLINE), wait=False)
    wait_until(lambda: q.getting == 1)
    q.green_put(7)
    pause.wait_reached()
    return pause


@pytest.mark.parametrize("factory", ["Queue", "SimpleQueue"])
@pytest.mark.parametrize("shut_down", [False, True])
def test_peek_holding_the_unit_hands_it_to_a_parked_getter(
    factory: str, shut_down: bool
) -> None:
    """A getter that parks while a peeker holds the item's unit gets the item
    once the peek is over, also across a graceful shutdown (which tells the
    getters only once the queue is empty)."""
    q = getattr(aiologic, factory)()
    pause = _peeker_handed_a_unit(q)
    got: list[Any] = []
    getter = threading.Thread(
        target=lambda: got.append(q.green_get(timeout=DEADLINE)), daemon=True
    )
    getter.start()
    wait_until(lambda: q.getting == 1)
    if shut_down:
        q.shutdown()
        assert q.getting == 1  # the item is still there: the getter waits
    assert pause.join() == 7
    getter.join(DEADLINE)
    assert got == [7]
    assert len(q) == 0 and q.waiting == 0 and q._ready.value == 0
    if shut_down:
        with pytest.raises(aiologic.QueueShutDown):
            q.green_get(timeout=DEADLINE)


@pytest.mark.parametrize("factory", ["Queue", "SimpleQueue"])
def test_peek_holding_a_unit_through_an_immediate_shutdown(factory: str) -> None:
    q = getattr(aiologic, factory)()
    pause = _peeker_handed_a_unit(q)
    q.shutdown(immediate=True)
    assert isinstance(pause.join(), aiologic.QueueShutDown)
    assert len(q) == 0 and q._ready.value == 0 and q.waiting == 0
    with pytest.raises(aiologic.QueueShutDown):
        q.peek_nowait()
    with pytest.raises(aiologic.QueueShutDown):
        q.green_peek(timeout=DEADLINE)


# -- settable maxsize ------------------------------------------------------------


def _slots_balance(q: Any) -> int:
    """Free slots minus the slots owed: the bound less what is in use."""
    return q._free.value - q._debt


@BOUNDED_QUEUES
def test_shrinking_queue(factory: str) -> None:
    """CPython's test_shrinking_queue: lowering maxsize keeps every item, and
    puts wait until the size is below the new bound."""
    q = getattr(aiologic, factory)(maxsize=3)
    for item in (1, 2, 3):
        q.put_nowait(item)
    with pytest.raises(aiologic.QueueFull):
        q.put_nowait(4)
    assert q.qsize() == 3
    q.maxsize = 2  # shrink the queue
    assert q.maxsize == 2 and q.qsize() == 3 and q.full()
    with pytest.raises(aiologic.QueueFull):
        q.put_nowait(4)
    q.get_nowait()
    assert q.full()
    with pytest.raises(aiologic.QueueFull):
        q.put_nowait(4)  # 2 items: still not below the new bound
    q.get_nowait()
    q.put_nowait(4)
    assert q.qsize() == 2 and q.full()
    with pytest.raises(aiologic.QueueFull):
        q.put_nowait(5)
    q.maxsize = 4
    q.put_nowait(5)
    q.put_nowait(6)
    with pytest.raises(aiologic.QueueFull):
        q.put_nowait(7)
    assert q.qsize() == 4 and q.unfinished_tasks == 6
    assert _slots_balance(q) == 0


@BOUNDED_QUEUES
def test_maxsize_none_zero_negative_mean_unbounded(factory: str) -> None:
    q = getattr(aiologic, factory)([1, 2], maxsize=2)
    for unbounded in (0, -1, None):
        q.maxsize = 2
        assert q.full()
        q.maxsize = unbounded
        assert q.maxsize == 0 and not q.full() and q._free is None
        q.put_nowait(3)
        q.get_nowait()
    with pytest.raises(TypeError):
        q.maxsize = "3"  # type: ignore[assignment]
    assert q.maxsize == 0 and len(q) == 2
    # Bounded anew below what it holds: puts wait until it is below again.
    for item in (3, 4, 5):
        q.put_nowait(item)
    q.maxsize = 2
    assert q.full() and q._debt == 3 and _slots_balance(q) == -3
    for _ in range(3):
        q.get_nowait()
        with pytest.raises(aiologic.QueueFull):
            q.put_nowait(0)
    q.get_nowait()
    q.put_nowait(0)
    assert len(q) == 2 and _slots_balance(q) == 0


@BOUNDED_QUEUES
def test_raised_maxsize_lets_parked_putters_in_in_order(
    world: str, factory: str
) -> None:
    async def body(w: World) -> None:
        q = getattr(aiologic, factory)([0], maxsize=1)
        putters = []
        for item in (1, 2, 3, 4):
            putters.append(w.spawn(_timed_put, q, item, DEADLINE))
            await w.wait_until(lambda n=item: q.putting == n)
        q.maxsize = 3  # two slots: the two oldest putters
        assert await putters[0].join() is None
        assert await putters[1].join() is None
        await w.wait_until(lambda: len(q) == 3)
        assert q.putting == 2 and q.full()
        q.maxsize = None  # unbounded: everyone
        assert await putters[2].join() is None
        assert await putters[3].join() is None
        assert len(q) == 5 and q.waiting == 0
        # (The order the admitted store their items in is the scheduler's.)
        assert sorted([await w.get(q) for _ in range(5)]) == [0, 1, 2, 3, 4]

    run_in(world, body)


@BOUNDED_QUEUES
def test_lowered_maxsize_keeps_parked_putters_waiting(world: str, factory: str) -> None:
    async def body(w: World) -> None:
        q = getattr(aiologic, factory)([1, 2, 3], maxsize=3)
        putter = w.spawn(_timed_put, q, 4, DEADLINE)
        await w.wait_until(lambda: q.putting == 1)
        q.maxsize = 1
        await w.get(q)
        await w.get(q)
        # One item, bound 1: the putter still waits (give it the time to
        # enter wrongly).
        result = await _put_outcome(w, q, 5, timeout=SHORT)
        assert isinstance(result, aiologic.QueueFull)
        assert q.putting == 1 and len(q) == 1
        await w.get(q)  # below the bound: the parked putter is let in
        assert await putter.join() is None
        assert len(q) == 1 and q.full() and q.waiting == 0
        assert await w.get(q) == 4
        assert _slots_balance(q) == 1

    run_in(world, body)


def test_put_let_in_unbounded_owes_a_slot_after_the_bound_is_set() -> None:
    """A put that found the queue unbounded, paused before it stores: the
    bound set meanwhile counts its item once it lands."""
    q: aiologic.Queue[int] = aiologic.Queue()
    pause = Pause(aiologic.Queue.green_put, "self._store(item, free)")
    pause.start(lambda: q.green_put(1))
    q.maxsize = 1  # the queue is empty: one free slot
    assert _slots_balance(q) == 1
    assert pause.join() is None and len(q) == 1 and q.full()
    assert _slots_balance(q) == 0
    with pytest.raises(aiologic.QueueFull):
        q.put_nowait(2)
    assert q.get_nowait() == 1
    q.put_nowait(2)
    assert _slots_balance(q) == 0


def test_put_holding_a_slot_of_a_replaced_bound() -> None:
    """A put that holds a slot of a bound since dropped (unbounded, then
    bounded anew) counts against the new bound, and a refused one gives
    nothing back to it."""
    for shut_down in (False, True):
        q: aiologic.Queue[int] = aiologic.Queue(maxsize=2)
        pause = Pause(aiologic.Queue.green_put, "self._store(item, free)")
        pause.start(functools.partial(q.green_put, 1))
        q.maxsize = 0
        q.maxsize = 2
        assert _slots_balance(q) == 2
        if shut_down:
            q.shutdown()
        outcome = pause.join()
        if shut_down:
            assert isinstance(outcome, aiologic.QueueShutDown)
            assert len(q) == 0 and _slots_balance(q) == 2
        else:
            assert outcome is None and len(q) == 1 and _slots_balance(q) == 1


def test_maxsize_changed_under_getters_of_other_threads() -> None:
    """Getters in threads free slots while the bound moves: no put is let in
    beyond the bound in force, and the books balance at the end."""
    q: aiologic.Queue[int] = aiologic.Queue(maxsize=2)
    seen: list[int] = []
    too_full: list[tuple[int, int]] = []

    def consume() -> None:
        while True:
            try:
                item = q.green_get(timeout=DEADLINE)
            except aiologic.QueueShutDown:
                return
            seen.append(item)

    def produce(base: int) -> None:
        for i in range(300):
            q.green_put(base + i, timeout=DEADLINE)
            # The largest bound ever set is 3.
            if len(q) > 3:
                too_full.append((len(q), q.maxsize))

    threads = [threading.Thread(target=consume) for _ in range(2)]
    threads += [threading.Thread(target=produce, args=(k * 1000,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for bound in itertools.islice(itertools.cycle((1, 3, 2)), 300):
        q.maxsize = bound
        if not any(t.is_alive() for t in threads[2:]):
            break
    for thread in threads[2:]:
        thread.join(DEADLINE)
    q.shutdown()
    for thread in threads[:2]:
        thread.join(DEADLINE)
    assert not any(t.is_alive() for t in threads)
    assert sorted(seen) == sorted(k * 1000 + i for k in range(2) for i in range(300))
    assert not too_full, too_full[:5]
    assert q.waiting == 0 and _slots_balance(q) == q.maxsize


# -- clear -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "factory",
    ["Queue", "LifoQueue", "PriorityQueue", "SimpleQueue", "SimpleLifoQueue"],
)
def test_clear_removes_everything(factory: str) -> None:
    q = getattr(aiologic, factory)([3, 1, 2])
    q.clear()
    assert len(q) == 0 and q.empty()
    with pytest.raises(aiologic.QueueEmpty):
        q.get_nowait()
    q.put_nowait(5)
    assert q.peek_nowait() == 5 and q.get_nowait() == 5
    q.clear()  # empty: harmless
    assert q._ready.value == 0


@BOUNDED_QUEUES
def test_clear_releases_join_and_putters(world: str, factory: str) -> None:
    async def body(w: World) -> None:
        q = getattr(aiologic, factory)(maxsize=2)
        await w.put(q, 1)
        await w.put(q, 2)
        joiner = w.spawn(lambda w: w.call(q, "join", timeout=DEADLINE))
        putters = []
        for item in (3, 4, 5):  # parked in this order
            putters.append(w.spawn(_timed_put, q, item, DEADLINE))
            await w.wait_until(lambda n=item - 2: q.putting == n)
        # janus#645: join must not wait for items nobody will get.
        q.clear()
        assert await putters[0].join() is None  # two slots: two putters
        assert await putters[1].join() is None
        await w.wait_until(lambda: len(q) == 2)
        assert q.unfinished_tasks == 2 and q.putting == 1
        q.clear()
        assert await putters[2].join() is None
        assert q.unfinished_tasks == 1 and len(q) == 1
        assert await w.get(q) == 5
        q.task_done()
        assert await joiner.join() is True
        assert q.unfinished_tasks == 0 and q.waiting == 0 and not q
        assert _slots_balance(q) == 2

    run_in(world, body)


@pytest.mark.parametrize("factory", ["Queue", "SimpleQueue"])
def test_clear_leaves_the_item_of_a_get_in_progress(factory: str) -> None:
    """A getter in another thread holds its item's unit but has not taken the
    item yet: clear() removes the others and leaves it that one."""
    q = getattr(aiologic, factory)([1, 2, 3])
    cls = type(q)
    line = "mutex = self._mutex or self._storage_lock()"
    if factory == "SimpleQueue":
        line = "items = self._items"
    pause = Pause(cls._take, line).start(q.green_get)
    q.clear()
    assert len(q) == 1
    assert pause.join() == 1 and len(q) == 0 and q._ready.value == 0
    if factory == "Queue":
        assert q.unfinished_tasks == 1  # the item got, not yet done


def test_clear_racing_an_immediate_shutdown() -> None:
    """clear() between the drop and the retiring of units by an immediate
    shutdown finds no item and changes nothing."""
    q: aiologic.Queue[int] = aiologic.Queue([1, 2])
    pause = Pause(aiologic.Queue._drop_all, "while self._ready.take_nowait():")
    pause.start(lambda: q.shutdown(immediate=True))
    q.clear()
    assert pause.join() is None and len(q) == 0 and q._ready.value == 0
    assert q.unfinished_tasks == 0


# ============================================================================
# RWLock (part B3)
# ============================================================================


async def _rw_enter(
    w: World, side: Any, name: str, entered: list[str], go: list[str]
) -> str:
    """Hold `side` from entering until `name` is in `go`; record the entry."""
    async with w.hold(side):
        entered.append(name)
        await w.wait_until(lambda: name in go)
    return name


async def _rw_try(w: World, side: Any, kwargs: dict[str, Any]) -> bool:
    """Acquire from another task; release at once if that worked."""
    got = await w.acquire(side, **kwargs)
    if got:
        w.release(side)
    return bool(got)


class TestRWLock:
    def test_basics(self, world: str) -> None:
        async def body(w: World) -> None:
            rw = aiologic.RWLock()
            reader, writer = rw.reader, rw.writer
            assert rw.waiting == 0 and not reader.locked() and not writer.locked()
            assert await w.acquire(reader, timeout=0) is True
            assert reader.locked() and not writer.locked()
            # Readers share it; a writer does not get in.
            assert await w.spawn(_rw_try, reader, {"blocking": False}).join() is True
            assert await w.spawn(_rw_try, writer, {"blocking": False}).join() is False
            assert await w.spawn(_rw_try, writer, {"timeout": 0}).join() is False
            assert await w.spawn(_rw_try, writer, {"timeout": SHORT}).join() is False
            assert rw.waiting == 0 and reader.locked()
            w.release(reader)
            assert not reader.locked()
            assert await w.acquire(writer, timeout=0) is True
            assert writer.locked() and not reader.locked()
            assert await w.spawn(_rw_try, reader, {"blocking": False}).join() is False
            assert await w.spawn(_rw_try, reader, {"timeout": SHORT}).join() is False
            assert await w.spawn(_rw_try, writer, {"timeout": 0}).join() is False
            assert rw.waiting == 0
            w.release(writer)
            assert not writer.locked()
            for side in (reader, writer):
                with pytest.raises(RuntimeError):
                    w.release(side)  # not held
                async with w.hold(side):
                    assert side.locked()
                assert not side.locked()
                for bad in (math.nan, -2):  # -1: no limit, as threading
                    result = await outcome_of(w.acquire(side, timeout=bad))
                    assert isinstance(result, ValueError), (bad, result)
            assert rw.waiting == 0

        run_in(world, body)

    def test_writer_is_owned(self, world: str) -> None:
        async def intruder(w: World, writer: Any) -> None:
            with pytest.raises(RuntimeError):
                w.release(writer)

        async def body(w: World) -> None:
            rw = aiologic.RWLock()
            assert await w.acquire(rw.writer) is True
            await w.spawn(intruder, rw.writer).join()
            assert rw.writer.locked()
            w.release(rw.writer)
            assert not rw.writer.locked()

        run_in(world, body)

    def test_strict_arrival_order(self, world: str) -> None:
        """API.md B3: a writer holds it and R1, W2, R2 queue: R1 enters, then
        W2, then R2."""

        async def body(w: World) -> None:
            rw = aiologic.RWLock()
            entered: list[str] = []
            go: list[str] = []
            assert await w.acquire(rw.writer) is True
            tasks = []
            for i, (name, side) in enumerate(
                [("R1", rw.reader), ("W2", rw.writer), ("R2", rw.reader)]
            ):
                tasks.append(w.spawn(_rw_enter, side, name, entered, go))
                await w.wait_until(lambda i=i: rw.waiting == i + 1)
            assert rw.reader.waiting == 2 and rw.writer.waiting == 1
            w.release(rw.writer)
            await w.wait_until(lambda: entered == ["R1"])
            assert rw.waiting == 2  # R2 waits behind W2
            go.append("R1")
            await w.wait_until(lambda: entered == ["R1", "W2"])
            assert rw.waiting == 1 and rw.writer.locked() and not rw.reader.locked()
            go.append("W2")
            await w.wait_until(lambda: entered == ["R1", "W2", "R2"])
            go.append("R2")
            assert [await task.join() for task in tasks] == ["R1", "W2", "R2"]
            assert rw.waiting == 0 and not rw.reader.locked()

        run_in(world, body)

    def test_queued_readers_enter_together(self, world: str) -> None:
        async def body(w: World) -> None:
            rw = aiologic.RWLock()
            entered: list[str] = []
            go: list[str] = []
            assert await w.acquire(rw.writer) is True
            tasks = []
            for i, (name, side) in enumerate(
                [
                    ("R1", rw.reader),
                    ("R2", rw.reader),
                    ("R3", rw.reader),
                    ("W4", rw.writer),
                    ("R5", rw.reader),
                ]
            ):
                tasks.append(w.spawn(_rw_enter, side, name, entered, go))
                await w.wait_until(lambda i=i: rw.waiting == i + 1)
            w.release(rw.writer)
            await w.wait_until(lambda: len(entered) == 3)
            assert sorted(entered) == ["R1", "R2", "R3"] and rw.waiting == 2
            go.extend(["R1", "R2", "R3"])
            await w.wait_until(lambda: len(entered) == 4)
            assert entered[3] == "W4"
            go.extend(["W4", "R5"])
            assert [await task.join() for task in tasks] == [
                "R1",
                "R2",
                "R3",
                "W4",
                "R5",
            ]
            assert entered[4] == "R5" and rw.waiting == 0

        run_in(world, body)

    def test_waiting_writer_stops_new_readers(self, world: str) -> None:
        async def body(w: World) -> None:
            rw = aiologic.RWLock()
            entered: list[str] = []
            go: list[str] = []
            assert await w.acquire(rw.reader) is True
            writer = w.spawn(_rw_enter, rw.writer, "W", entered, go)
            await w.wait_until(lambda: rw.waiting == 1)
            # A reader acquire that does not wait fails while a writer waits.
            for kwargs in ({"blocking": False}, {"timeout": 0}, {"timeout": SHORT}):
                assert await w.spawn(_rw_try, rw.reader, kwargs).join() is False
                assert rw.waiting == 1
            reader = w.spawn(_rw_enter, rw.reader, "R", entered, go)
            await w.wait_until(lambda: rw.waiting == 2)
            assert entered == []
            w.release(rw.reader)
            await w.wait_until(lambda: entered == ["W"])
            go.extend(["W", "R"])
            assert await writer.join() == "W" and await reader.join() == "R"
            assert entered == ["W", "R"] and rw.waiting == 0

        run_in(world, body)

    def test_writer_timeout_lets_queued_readers_in(self, world: str) -> None:
        async def timed_writer(w: World, rw: Any) -> bool:
            got = await w.acquire(rw.writer, timeout=0.2)
            if got:
                w.release(rw.writer)
            return bool(got)

        async def body(w: World) -> None:
            rw = aiologic.RWLock()
            entered: list[str] = []
            go = ["R"]
            assert await w.acquire(rw.reader) is True
            writer = w.spawn(timed_writer, rw)
            await w.wait_until(lambda: rw.waiting == 1)
            reader = w.spawn(_rw_enter, rw.reader, "R", entered, go)
            assert await writer.join() is False
            # The reader behind it got in while this task still reads.
            assert await reader.join() == "R" and entered == ["R"]
            assert rw.reader.locked() and rw.waiting == 0
            w.release(rw.reader)
            assert not rw.reader.locked()

        run_in(world, body)

    def test_cancelled_writer_lets_queued_readers_in(
        self, cooperative_world: str
    ) -> None:
        async def body(w: World) -> None:
            rw = aiologic.RWLock()
            entered: list[str] = []
            go = ["R1", "R2"]
            assert await w.acquire(rw.reader) is True
            writer = w.spawn(_rw_enter, rw.writer, "W", entered, go)
            await w.wait_until(lambda: rw.waiting == 1)
            readers = []
            for i, name in enumerate(["R1", "R2"]):
                readers.append(w.spawn(_rw_enter, rw.reader, name, entered, go))
                await w.wait_until(lambda i=i: rw.waiting == i + 2)
            writer.cancel()
            assert await writer.join() is CANCELLED
            assert [await task.join() for task in readers] == ["R1", "R2"]
            assert sorted(entered) == ["R1", "R2"] and rw.waiting == 0
            w.release(rw.reader)
            assert not rw.reader.locked() and not rw.writer.locked()

        run_in(cooperative_world, body)

    def test_cancelled_waiters_leave(self, cooperative_world: str) -> None:
        async def body(w: World) -> None:
            rw = aiologic.RWLock()
            entered: list[str] = []
            go: list[str] = ["W", "R"]
            assert await w.acquire(rw.writer) is True
            tasks = {}
            for i, (name, side) in enumerate(
                [("r", rw.reader), ("w", rw.writer), ("R", rw.reader), ("W", rw.writer)]
            ):
                tasks[name] = w.spawn(_rw_enter, side, name, entered, go)
                await w.wait_until(lambda i=i: rw.waiting == i + 1)
            tasks["r"].cancel()
            tasks["w"].cancel(timeout=True)
            assert await tasks["r"].join() is CANCELLED
            assert await tasks["w"].join() is CANCELLED
            assert rw.waiting == 2
            w.release(rw.writer)
            assert await tasks["R"].join() == "R" and await tasks["W"].join() == "W"
            assert entered == ["R", "W"] and rw.waiting == 0
            assert not rw.reader.locked() and not rw.writer.locked()

        run_in(cooperative_world, body)

    def test_repr(self) -> None:
        rw = aiologic.RWLock()
        free = repr(rw)
        assert "RWLock" in free
        assert rw.reader.green_acquire()
        reading = repr(rw)
        assert reading != free
        thread = threading.Thread(
            target=lambda: (rw.writer.green_acquire(), rw.writer.green_release()),
            daemon=True,
        )
        thread.start()
        wait_until(lambda: rw.waiting == 1)
        assert "waiting=1" in repr(rw)
        rw.reader.green_release()
        thread.join(DEADLINE)
        assert repr(rw) == free
        assert rw.writer.green_acquire()
        assert repr(rw) not in (free, reading)
        rw.writer.green_release()

    def test_reader_is_owned(self, world: str) -> None:
        """Issue 12: a task that holds nothing cannot release another task's
        read lock (a writer would then get in while that reader reads)."""

        async def intruder(w: World, reader: Any) -> str:
            with pytest.raises(RuntimeError) as info:
                w.release(reader)
            return str(info.value)

        async def body(w: World) -> None:
            rw = aiologic.RWLock()
            assert await w.acquire(rw.reader) is True
            message = await w.spawn(intruder, rw.reader).join()
            assert "not holding" in message
            assert rw.reader.locked() and "readers=1" in repr(rw)
            assert (
                await w.spawn(_rw_try, rw.writer, {"blocking": False}).join() is False
            )
            w.release(rw.reader)
            assert not rw.reader.locked()
            message = await w.spawn(intruder, rw.reader).join()
            assert message == "release unlocked lock"
            assert await w.spawn(_rw_try, rw.writer, {"blocking": False}).join() is True
            assert rw.waiting == 0 and not rw.reader.locked()

        run_in(world, body)

    def test_reader_reenters_past_a_waiting_writer(self, world: str) -> None:
        """A task that reads may read again (counted), at once, even while a
        writer waits: waiting behind that writer would wait for itself."""

        async def body(w: World) -> None:
            rw = aiologic.RWLock()
            entered: list[str] = []
            go = ["W"]
            assert await w.acquire(rw.reader) is True
            writer = w.spawn(_rw_enter, rw.writer, "W", entered, go)
            await w.wait_until(lambda: rw.waiting == 1)
            assert await w.acquire(rw.reader, blocking=False) is True
            assert await w.acquire(rw.reader, timeout=0) is True
            assert await w.acquire(rw.reader) is True
            assert "readers=4" in repr(rw) and rw.waiting == 1
            for _ in range(3):
                w.release(rw.reader)
            assert rw.reader.locked() and rw.waiting == 1 and entered == []
            w.release(rw.reader)
            assert await writer.join() == "W" and entered == ["W"]
            with pytest.raises(RuntimeError):
                w.release(rw.reader)
            assert rw.waiting == 0 and not rw.reader.locked()

        run_in(world, body)

    def test_holder_asking_for_the_other_side_raises(self, world: str) -> None:
        """A reader asking for the writer (or a writer for either side) would
        wait for itself: it raises at once, blocking or not, and nothing
        changes."""

        async def body(w: World) -> None:
            rw = aiologic.RWLock()
            for held, asked in [
                (rw.reader, rw.writer),
                (rw.writer, rw.reader),
                (rw.writer, rw.writer),
            ]:
                assert await w.acquire(held) is True
                before = repr(rw)
                for kwargs in (
                    {"blocking": False},
                    {"timeout": 0},
                    {"timeout": SHORT},
                    {},
                ):
                    result = await outcome_of(w.acquire(asked, **kwargs))
                    assert isinstance(result, RuntimeError), (held, asked, kwargs)
                    assert "current task" in str(result)
                    assert repr(rw) == before and rw.waiting == 0
                w.release(held)
                assert not rw.reader.locked() and not rw.writer.locked()

        run_in(world, body)

    def test_bad_blocking_changes_nothing(self, world: str) -> None:
        """Issue 19: `blocking` is read before anything is taken; a call that
        raises leaves the lock as it was (free, or read once)."""

        class Bad:
            def __bool__(self) -> bool:
                raise ZeroDivisionError

        async def body(w: World) -> None:
            rw = aiologic.RWLock()
            for side in (rw.reader, rw.writer):
                result = await outcome_of(w.acquire(side, blocking=Bad()))
                assert isinstance(result, ZeroDivisionError)
                assert not rw.reader.locked() and not rw.writer.locked()
            assert await w.acquire(rw.reader) is True
            result = await outcome_of(w.acquire(rw.reader, blocking=Bad()))
            assert isinstance(result, ZeroDivisionError)
            assert "readers=1" in repr(rw)
            w.release(rw.reader)
            assert not rw.reader.locked() and rw.waiting == 0

        run_in(world, body)


_RW_WORLDS = ("threading", "asyncio", "trio")


def test_rwlock_across_worlds_exclusion() -> None:
    """Issue 4: readers and writers in threads and two loops; a writer never
    overlaps anyone."""
    _require("trio")
    rw = aiologic.RWLock()
    count = threading.Lock()  # only to count; never held across a switch
    state = {"readers": 0, "writers": 0, "reads": 0, "writes": 0}
    violations: list[Any] = []

    async def reader(w: World) -> None:
        for _ in range(20):
            async with w.hold(rw.reader):
                with count:
                    if state["writers"]:
                        violations.append(("read during write", dict(state)))
                    state["readers"] += 1
                    state["reads"] += 1
                await w.sleep(0)
                with count:
                    state["readers"] -= 1
            await w.sleep(0)

    async def writer(w: World) -> None:
        for _ in range(10):
            async with w.hold(rw.writer):
                with count:
                    if state["writers"] or state["readers"]:
                        violations.append(("write during", dict(state)))
                    state["writers"] += 1
                    state["writes"] += 1
                await w.sleep(0)
                with count:
                    state["writers"] -= 1
            await w.sleep(0)

    async def actor(w: World) -> None:
        tasks = [w.spawn(reader), w.spawn(reader), w.spawn(writer)]
        for task in tasks:
            await task.join()

    run_actors(*[(name, actor) for name in _RW_WORLDS])
    assert violations == []
    assert state == {"readers": 0, "writers": 0, "reads": 120, "writes": 30}
    assert rw.waiting == 0 and not rw.reader.locked() and not rw.writer.locked()


def test_rwlock_readers_overlap_across_worlds() -> None:
    """Each reader waits, holding the lock, until every reader holds it:
    possible only if readers of three worlds hold it at the same time."""
    _require("trio")
    rw = aiologic.RWLock()
    inside: list[str] = []

    async def reader(w: World) -> None:
        async with w.hold(rw.reader):
            inside.append(w.name)
            await w.wait_until(lambda: len(inside) == 2 * len(_RW_WORLDS))

    async def actor(w: World) -> None:
        tasks = [w.spawn(reader), w.spawn(reader)]
        for task in tasks:
            await task.join()

    run_actors(*[(name, actor) for name in _RW_WORLDS])
    assert sorted(inside) == sorted(2 * list(_RW_WORLDS))
    assert not rw.reader.locked() and rw.waiting == 0


def test_rwlock_readers_cannot_starve_a_writer() -> None:
    """Readers of three worlds pass the lock on to each other (each leaves
    only after another one entered, or after a while); a writer in a gevent
    hub thread must still get in soon."""
    _require("trio")
    _require("gevent")
    rw = aiologic.RWLock()
    stop = threading.Event()
    entries = [0]
    count = threading.Lock()
    patience = 0.2  # how long a reader waits for a successor

    async def reader(w: World) -> int:
        n = 0
        while not stop.is_set():
            async with w.hold(rw.reader):
                with count:
                    entries[0] += 1
                    mine = entries[0]
                deadline = time.monotonic() + patience
                while (
                    entries[0] == mine
                    and time.monotonic() < deadline
                    and not stop.is_set()
                ):
                    await w.sleep(0.0005)
            n += 1
        return n

    async def readers(w: World) -> int:
        tasks = [w.spawn(reader), w.spawn(reader)]
        return sum([await task.join() for task in tasks])

    async def writer(w: World) -> tuple[bool, float, int]:
        await w.wait_until(lambda: entries[0] >= 20)  # a steady stream
        start = time.monotonic()
        got = await w.acquire(rw.writer, timeout=5.0)
        elapsed = time.monotonic() - start
        seen = entries[0]
        if got:
            w.release(rw.writer)
        stop.set()
        return bool(got), elapsed, seen

    crew = [Actor(name, readers) for name in _RW_WORLDS]
    try:
        got, elapsed, _ = Actor("gevent", writer).join()
    finally:
        stop.set()
        counts = join_all(crew)
    assert got is True and elapsed < 5 * patience, elapsed
    assert all(counts), counts
    assert rw.waiting == 0 and not rw.reader.locked() and not rw.writer.locked()


def test_rwlock_strict_order_across_worlds() -> None:
    _require("trio")
    _require("gevent")
    rw = aiologic.RWLock()
    entered: list[str] = []
    go: list[str] = []

    async def one(w: World, name: str) -> str:
        side = rw.reader if name.startswith("R") else rw.writer
        return await _rw_enter(w, side, name, entered, go)

    assert rw.writer.green_acquire()
    actors = []
    for i, (world_name, name) in enumerate(
        [("asyncio", "R1"), ("trio", "W2"), ("gevent", "R2"), ("threading", "R3")]
    ):
        actors.append(Actor(world_name, one, name))
        wait_until(lambda i=i: rw.waiting == i + 1, actors=actors)
    rw.writer.green_release()
    wait_until(lambda: entered == ["R1"], actors=actors)
    go.append("R1")
    wait_until(lambda: entered == ["R1", "W2"], actors=actors)
    assert rw.waiting == 2
    go.append("W2")
    wait_until(lambda: len(entered) == 4, actors=actors)
    assert sorted(entered[2:]) == ["R2", "R3"]  # queued together, enter together
    go.extend(["R2", "R3"])
    assert join_all(actors) == ["R1", "W2", "R2", "R3"]
    assert rw.waiting == 0 and not rw.reader.locked()


def _writer_released_from_a_thread(
    rw: Any, pause: Pause
) -> tuple[threading.Thread, threading.Event, Outcome]:
    """A thread that holds the writer and, once the event returned is set,
    releases it under `pause`."""
    holding = threading.Event()
    release = threading.Event()
    outcome = Outcome()

    def run() -> None:
        assert rw.writer.green_acquire()
        holding.set()
        assert release.wait(DEADLINE)
        with pause.this_thread():
            rw.writer.green_release()

    thread = threading.Thread(target=outcome.capture, args=((), run), daemon=True)
    thread.start()
    assert holding.wait(DEADLINE)
    return thread, release, outcome


async def _rw_acquire_once(w: World, side: Any) -> bool:
    got = await w.acquire(side)
    if got:
        w.release(side)
    return bool(got)


@pytest.mark.parametrize("world_name", ["asyncio", "trio", "gevent", "eventlet"])
def test_rwlock_hand_off_lost_to_a_cancelled_waiter(world_name: str) -> None:
    """A release names the head waiter as the writer, then claims its token;
    the waiter is cancelled in between and claims it first. The release must
    take the name back: the lock ends free, not held by a task that left."""
    rw = aiologic.RWLock()
    pause = Pause(aiologic._RWCore._grant, "if ticket.claim():")
    granter, release, released = _writer_released_from_a_thread(rw, pause)
    tokens: list[Any] = []

    async def body(w: World) -> Any:
        task = w.spawn(_rw_acquire_once, rw.writer)
        await w.wait_until(lambda: rw.waiting == 1)
        tokens.extend(rw._core._waiters)  # to see when it has given up
        release.set()
        await w.wait_until(pause.reached.is_set)
        assert rw.writer.locked()  # named already
        task.cancel()
        return await task.join()

    actor = Actor(world_name, body)
    wait_until(lambda: tokens and tokens[0].withdrew, actors=[actor])
    pause.release()
    assert actor.join() is CANCELLED
    granter.join(DEADLINE)
    assert not granter.is_alive()
    released.unwrap()
    assert not rw.writer.locked() and not rw.reader.locked() and rw.waiting == 0
    assert rw.writer.green_acquire(blocking=False)
    rw.writer.green_release()


@pytest.mark.parametrize("world_name", ["asyncio", "gevent", "eventlet"])
def test_rwlock_reader_cancelled_after_its_grant(world_name: str) -> None:
    """A release grants two queued readers and is stopped before it wakes
    them; one is cancelled meanwhile. It gives its read lock back as itself
    (the reader side is owned) without waiting for the releaser, and the
    other reader still gets in."""
    rw = aiologic.RWLock()
    pause = Pause(aiologic._wake_admitted, "if not ticket.wake()")
    granter, release, released = _writer_released_from_a_thread(rw, pause)
    entered: list[str] = []
    go = ["R2"]

    async def body(w: World) -> Any:
        r1 = w.spawn(_rw_enter, rw.reader, "R1", entered, go)
        await w.wait_until(lambda: rw.waiting == 1)
        r2 = w.spawn(_rw_enter, rw.reader, "R2", entered, go)
        await w.wait_until(lambda: rw.waiting == 2)
        release.set()
        await w.wait_until(pause.reached.is_set)
        assert "readers=2" in repr(rw) and rw.waiting == 0
        r1.cancel()
        assert await r1.join() is CANCELLED
        assert "readers=1" in repr(rw)
        pause.release()
        assert await r2.join() == "R2"
        return entered

    assert Actor(world_name, body).join() == ["R2"]
    granter.join(DEADLINE)
    assert not granter.is_alive()
    released.unwrap()
    assert not rw.writer.locked() and not rw.reader.locked() and rw.waiting == 0


@REFCOUNTED
def test_rwlock_is_freed_by_reference_counting() -> None:
    """Issue 19: an RWLock (or a side kept alone) that was used and dropped
    is freed at once, without the cyclic garbage collector."""

    async def cancelled_wait(w: World, rw: Any) -> None:
        task = w.spawn(_rw_acquire_once, rw.writer)
        await w.wait_until(lambda: rw.waiting == 1)
        task.cancel()
        assert await task.join() is CANCELLED

    def use(rw: Any) -> None:
        with rw.reader:
            assert rw.reader.green_acquire()
            rw.reader.green_release()
            run_in("asyncio", cancelled_wait, rw)
            assert (
                _in_other_thread(lambda: rw.writer.green_acquire(timeout=SHORT))
                is False
            )
        with rw.writer:
            pass

    enabled = gc.isenabled()
    gc.disable()
    try:
        rw = aiologic.RWLock()
        use(rw)
        side = aiologic.RWLock().reader
        with side:
            assert side.locked()
        gc.collect()  # what the backends left: from here on, no collector
        refs = [weakref.ref(obj) for obj in (rw, rw.reader, rw.writer, side)]
        del rw, side
        assert [ref() for ref in refs] == [None] * 4
    finally:
        if enabled:
            gc.enable()


# ============================================================================
# Mixed-deadlock detection (part B4)
# ============================================================================

DEADLOCK_KINDS = {
    "Lock": lambda: aiologic.Lock(),
    "RLock": lambda: aiologic.RLock(),
    "RWLock.writer": lambda: aiologic.RWLock().writer,
}
DEADLOCKABLE = pytest.mark.parametrize("kind", list(DEADLOCK_KINDS))


def _owner_of(lock: Any) -> Any:
    return getattr(lock, "owner", None)


@DEADLOCKABLE
def test_green_acquire_of_a_lock_held_by_a_task_of_this_loop(
    async_backend: str, kind: str
) -> None:
    """`with lock:` in a loop thread while a task of that loop holds the lock
    raises RuntimeError at once instead of hanging the thread."""

    async def holder(w: World, lock: Any, go: list[int]) -> None:
        async with w.hold(lock):
            await w.wait_until(lambda: go)

    def enter(lock: Any) -> None:
        with lock:
            pass

    async def body(w: World) -> None:
        lock = DEADLOCK_KINDS[kind]()
        go: list[int] = []
        task = w.spawn(holder, lock, go)
        await w.wait_until(lock.locked)
        owner = _owner_of(lock)
        attempts = [
            lambda: lock.green_acquire(timeout=1),  # bounded first: no hang
            lambda: lock.green_acquire(timeout=DEADLINE),
            lock.green_acquire,
            lambda: enter(lock),
        ]
        if kind != "RWLock.writer":
            # Lock and RLock refuse even when they would not wait (issue 14).
            attempts[:0] = [
                lambda: lock.green_acquire(blocking=False),
                lambda: lock.green_acquire(timeout=0),
            ]
        for attempt in attempts:
            start = time.monotonic()
            with pytest.raises(RuntimeError) as info:
                attempt()
            assert time.monotonic() - start < 0.5
            assert str(info.value)  # says what happened
            assert lock.waiting == 0 and lock.locked() and _owner_of(lock) == owner
        go.append(1)
        await task.join()  # the holder was not disturbed
        assert not lock.locked() and lock.waiting == 0
        with lock:  # free now: green code of this thread may take it
            assert lock.locked()
        assert not lock.locked()

    run_in(async_backend, body)


@DEADLOCKABLE
def test_async_acquire_of_a_lock_held_by_green_code_of_this_thread(
    async_backend: str, kind: str
) -> None:
    async def body(w: World) -> None:
        lock = DEADLOCK_KINDS[kind]()
        assert lock.green_acquire()
        owner = _owner_of(lock)
        try:
            for kwargs in ({"timeout": 1}, {"timeout": DEADLINE}, {}):
                start = time.monotonic()
                result = await outcome_of(w.acquire(lock, **kwargs))
                assert isinstance(result, RuntimeError), (kwargs, result)
                assert time.monotonic() - start < 0.5
                assert str(result)
                assert lock.waiting == 0 and lock.locked()
                assert _owner_of(lock) == owner
            with pytest.raises(RuntimeError):
                async with lock:
                    pass
        finally:
            lock.green_release()
        assert not lock.locked() and lock.waiting == 0
        async with lock:
            assert lock.locked()

    run_in(async_backend, body)


@DEADLOCKABLE
def test_waiters_of_other_threads_are_never_refused(kind: str) -> None:
    lock = DEADLOCK_KINDS[kind]()
    go = threading.Event()

    async def holder(w: World) -> None:
        async with w.hold(lock):
            await w.wait_until(go.is_set)

    async def waiter(w: World) -> bool:
        got = await w.acquire(lock, timeout=DEADLINE)
        if got:
            w.release(lock)
        return bool(got)

    # An asyncio task holds it; a plain thread and a gevent hub thread wait.
    loop = Actor("asyncio", holder)
    wait_until(lock.locked, actors=[loop])
    waiters = [Actor("threading", waiter), Actor("gevent", waiter)]
    wait_until(lambda: lock.waiting == 2, actors=[loop, *waiters])
    go.set()
    assert join_all([loop, *waiters]) == [None, True, True]
    # Green code of this thread holds it; tasks of two loops in other
    # threads wait.
    go.clear()
    assert lock.green_acquire()
    waiters = [Actor("asyncio", waiter), Actor("trio", waiter)]
    wait_until(lambda: lock.waiting == 2, actors=waiters)
    lock.green_release()
    assert join_all(waiters) == [True, True]
    assert not lock.locked() and lock.waiting == 0


# RWLock: (what the other party holds, what this one asks for, whether a
# writer from another thread waits in between).
RW_DEADLOCKS = {
    "writer-then-reader": ("writer", "reader", False),
    "reader-then-writer": ("reader", "writer", False),
    "writer-then-writer": ("writer", "writer", False),
    "reader-then-queued-reader": ("reader", "reader", True),
}


def _queued_writer(rw: Any) -> threading.Thread:
    """A plain thread that waits for the writer (then releases it)."""

    def run() -> None:
        assert rw.writer.green_acquire(timeout=DEADLINE)
        rw.writer.green_release()

    waiting = rw.waiting
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(lambda: rw.waiting == waiting + 1)
    return thread


@pytest.mark.parametrize("case", list(RW_DEADLOCKS))
def test_rwlock_green_acquire_refused_while_a_task_of_this_loop_holds(
    async_backend: str, case: str
) -> None:
    """Issue 12: green code of a loop's thread that would wait for an RWLock
    side held by a task of that loop raises RuntimeError at once, whichever
    sides (a reader behind a queued writer waits for every reader)."""
    held, asked, queued = RW_DEADLOCKS[case]

    async def holder(w: World, side: Any, go: list[int]) -> None:
        async with w.hold(side):
            await w.wait_until(lambda: go)

    def enter(side: Any) -> None:
        with side:
            pass

    async def body(w: World) -> None:
        rw = aiologic.RWLock()
        held_side, side = getattr(rw, held), getattr(rw, asked)
        go: list[int] = []
        task = w.spawn(holder, held_side, go)
        await w.wait_until(held_side.locked)
        thread = _queued_writer(rw) if queued else None
        before = repr(rw)
        for attempt in [
            lambda: side.green_acquire(timeout=1),  # bounded first: no hang
            lambda: side.green_acquire(timeout=DEADLINE),
            side.green_acquire,
            lambda: enter(side),
        ]:
            start = time.monotonic()
            with pytest.raises(RuntimeError) as info:
                attempt()
            assert time.monotonic() - start < 0.5
            assert "deadlock" in str(info.value)
            assert repr(rw) == before
        # As for Lock, not even a green acquire that would not wait.
        for kwargs in ({"blocking": False}, {"timeout": 0}):
            with pytest.raises(RuntimeError):
                side.green_acquire(**kwargs)
        assert repr(rw) == before
        go.append(1)
        await task.join()  # the holder was not disturbed
        if thread is not None:
            thread.join(DEADLINE)
        assert not rw.reader.locked() and not rw.writer.locked()
        assert rw.waiting == 0
        with side:  # free now: green code of this thread may take it
            assert side.locked()

    run_in(async_backend, body)


@pytest.mark.parametrize("case", list(RW_DEADLOCKS))
def test_rwlock_async_acquire_refused_while_green_code_of_this_thread_holds(
    async_backend: str, case: str
) -> None:
    held, asked, queued = RW_DEADLOCKS[case]

    async def body(w: World) -> None:
        rw = aiologic.RWLock()
        held_side, side = getattr(rw, held), getattr(rw, asked)
        assert held_side.green_acquire()
        thread = _queued_writer(rw) if queued else None
        before = repr(rw)
        try:
            for kwargs in ({"timeout": 1}, {"timeout": DEADLINE}, {}):
                start = time.monotonic()
                result = await outcome_of(w.acquire(side, **kwargs))
                assert isinstance(result, RuntimeError), (kwargs, result)
                assert time.monotonic() - start < 0.5
                assert "deadlock" in str(result)
                assert repr(rw) == before
            with pytest.raises(RuntimeError):
                async with side:
                    pass
            assert await w.acquire(side, blocking=False) is False
        finally:
            held_side.green_release()
        if thread is not None:
            thread.join(DEADLINE)
        assert not rw.reader.locked() and not rw.writer.locked()
        assert rw.waiting == 0
        async with side:
            assert side.locked()

    run_in(async_backend, body)


def test_rwlock_readers_of_one_thread_share_across_faces(async_backend: str) -> None:
    """Reading together is no deadlock: green code of a loop's thread and a
    task of that loop read at once, both ways round."""

    async def body(w: World) -> None:
        rw = aiologic.RWLock()
        assert rw.reader.green_acquire(timeout=1)
        assert await w.acquire(rw.reader, timeout=1) is True
        assert "readers=2" in repr(rw)
        w.release(rw.reader)
        rw.reader.green_release()
        assert await w.acquire(rw.reader, timeout=1) is True
        assert rw.reader.green_acquire(timeout=1)
        rw.reader.green_release()
        w.release(rw.reader)
        assert not rw.reader.locked() and rw.waiting == 0

    run_in(async_backend, body)


def test_rwlock_waiters_of_other_threads_are_never_refused() -> None:
    """A task of a loop reads; a writer, then readers, of other threads and
    worlds wait for it without being refused, and get in in order."""
    _require("trio")
    _require("gevent")
    rw = aiologic.RWLock()
    go = threading.Event()
    entered: list[str] = []

    async def holder(w: World) -> None:
        async with w.hold(rw.reader):
            await w.wait_until(go.is_set)

    async def waiter(w: World, name: str) -> bool:
        side = rw.writer if name == "W" else rw.reader
        got = await w.acquire(side, timeout=DEADLINE)
        if got:
            entered.append(name)
            w.release(side)
        return bool(got)

    loop = Actor("asyncio", holder)
    wait_until(rw.reader.locked, actors=[loop])
    actors = [loop]
    for n, (name, world_name) in enumerate(
        [("W", "threading"), ("R1", "gevent"), ("R2", "trio")], 1
    ):
        actors.append(Actor(world_name, waiter, name))
        wait_until(lambda n=n: rw.waiting == n, actors=actors)
    go.set()
    assert join_all(actors) == [None, True, True, True]
    assert entered[0] == "W" and sorted(entered[1:]) == ["R1", "R2"]
    assert not rw.reader.locked() and not rw.writer.locked() and rw.waiting == 0


# ============================================================================
# synchronized
# ============================================================================


class _Peak:
    """Counts the callers inside a section; `peak` is the most at once."""

    def __init__(self) -> None:
        self.inside = 0
        self.peak = 0
        self.calls = 0

    def enter(self) -> None:
        self.inside += 1
        self.calls += 1
        self.peak = max(self.peak, self.inside)

    def leave(self) -> None:
        self.inside -= 1


def _hammer(fn: Callable[[], Any], threads: int = 4, calls: int = 40) -> None:
    """Call fn() `calls` times in each of `threads` threads, started together."""
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait(DEADLINE)
            for _ in range(calls):
                fn()
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(DEADLINE)
        assert not thread.is_alive()
    assert errors == []


class TestSynchronized:
    def test_function(self) -> None:
        peak = _Peak()

        @aiologic.synchronized
        def work(depth: int = 0) -> int:
            """Some work."""
            peak.enter()
            time.sleep(0)  # invite another thread in
            peak.leave()
            if depth:
                return work(depth - 1) + 1  # reentrant
            return 0

        assert work.__name__ == "work" and work.__doc__ == "Some work."
        assert work(3) == 3
        _hammer(work)
        assert peak.peak == 1 and peak.calls == 4 + 160

        @aiologic.synchronized
        def fail() -> None:
            raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            fail()

        def fail_again() -> None:
            with pytest.raises(ZeroDivisionError):
                fail()

        _in_thread(fail_again)  # the lock was not left held

    def test_method_is_per_object(self) -> None:
        class Account:
            def __init__(self) -> None:
                self.peak = _Peak()

            @aiologic.synchronized
            def step(self) -> None:
                self.peak.enter()
                time.sleep(0)
                self.peak.leave()

            @aiologic.synchronized
            def other(self) -> None:
                self.step()  # reentrant, and shared by the methods

            @aiologic.synchronized
            def meet(self, mine: threading.Event, theirs: threading.Event) -> bool:
                mine.set()
                return theirs.wait(DEADLINE)

        a, b = Account(), Account()
        _hammer(lambda: (a.step(), a.other()))
        assert a.peak.peak == 1 and a.peak.calls == 4 * 40 * 2
        # Two objects: their synchronized methods run at the same time.
        ready_a, ready_b = threading.Event(), threading.Event()
        met: list[bool] = []
        thread = threading.Thread(
            target=lambda: met.append(a.meet(ready_a, ready_b)), daemon=True
        )
        thread.start()
        assert b.meet(ready_b, ready_a) is True
        thread.join(DEADLINE)
        assert met == [True]
        # `with synchronized(obj):` takes the lock its methods use.
        entered: list[int] = []
        lock = aiologic.synchronized(a)
        assert aiologic.synchronized(a) is lock and aiologic.synchronized(b) is not lock
        with aiologic.synchronized(a):
            thread = threading.Thread(
                target=lambda: (a.step(), entered.append(1)), daemon=True
            )
            thread.start()
            wait_until(lambda: lock.waiting == 1)
            assert entered == []
        thread.join(DEADLINE)
        assert entered == [1]

    def test_class(self) -> None:
        @aiologic.synchronized
        class Box:
            def __init__(self) -> None:
                self.peak = _Peak()

            def put(self) -> None:
                self.peak.enter()
                time.sleep(0)
                self.peak.leave()

            def take(self) -> None:
                self.put()

            def wait_inside(self, inside: threading.Event, go: threading.Event) -> None:
                inside.set()
                assert go.wait(DEADLINE)

        box, other = Box(), Box()
        _hammer(lambda: (box.put(), box.take()))
        assert box.peak.peak == 1 and box.peak.calls == 4 * 40 * 2
        inside, go = threading.Event(), threading.Event()
        thread = threading.Thread(
            target=box.wait_inside, args=(inside, go), daemon=True
        )
        thread.start()
        assert inside.wait(DEADLINE)
        other.put()  # another object: not blocked
        lock = aiologic.synchronized(box)
        blocked = threading.Thread(target=box.put, daemon=True)
        blocked.start()
        wait_until(lambda: lock.waiting == 1)  # same object: blocked
        go.set()
        thread.join(DEADLINE)
        blocked.join(DEADLINE)
        assert not blocked.is_alive() and lock.waiting == 0

    def test_async_methods_across_worlds(self) -> None:
        _require("trio")
        peak = _Peak()

        class Service:
            @aiologic.synchronized
            async def handle(self, w: World) -> None:
                peak.enter()
                await w.sleep(0)
                await w.sleep(0)
                peak.leave()

            @aiologic.synchronized
            def handle_sync(self) -> None:
                peak.enter()
                time.sleep(0)
                peak.leave()

        service = Service()

        async def caller(w: World) -> None:
            async def one(w: World) -> None:
                for _ in range(20):
                    if w.green:
                        service.handle_sync()
                    else:
                        await service.handle(w)
                    await w.sleep(0)

            tasks = [w.spawn(one) for _ in range(3)]
            for task in tasks:
                await task.join()

        run_actors(("asyncio", caller), ("trio", caller), ("threading", caller))
        assert peak.peak == 1 and peak.calls == 9 * 20
        assert inspect.iscoroutinefunction(Service.handle)

    @pytest.mark.parametrize(
        "make",
        [
            lambda: aiologic.Lock(),
            lambda: aiologic.RLock(),
            lambda: aiologic.BinarySemaphore(),
            lambda: threading.Lock(),
            lambda: threading.RLock(),
        ],
        ids=["Lock", "RLock", "BinarySemaphore", "threading.Lock", "threading.RLock"],
    )
    def test_wraps_green_locks(self, make: Callable[[], Any]) -> None:
        lock = make()
        guard = aiologic.synchronized(lock)
        peak = _Peak()

        def work() -> None:
            with guard:
                peak.enter()
                time.sleep(0)
                peak.leave()

        _hammer(work)
        assert peak.peak == 1 and peak.calls == 160
        acquire = getattr(lock, "green_acquire", None) or lock.acquire
        release = getattr(lock, "green_release", None) or lock.release

        def try_lock() -> bool:
            got = acquire(blocking=False)
            if got:
                release()
            return bool(got)

        with guard:
            assert _in_other_thread(try_lock) is False
        assert _in_other_thread(try_lock) is True

    @pytest.mark.parametrize("factory", ["asyncio.Lock", "aiologic.Lock"])
    def test_wraps_async_locks(self, factory: str) -> None:
        async def body(w: World) -> int:
            import asyncio

            lock = asyncio.Lock() if factory == "asyncio.Lock" else aiologic.Lock()
            guard = aiologic.synchronized(lock)
            peak = _Peak()

            async def work(w: World) -> None:
                for _ in range(10):
                    async with guard:
                        peak.enter()
                        await w.sleep(0)
                        peak.leave()
                    await w.sleep(0)

            tasks = [w.spawn(work) for _ in range(4)]
            for task in tasks:
                await task.join()
            async with guard:
                assert lock.locked()
            assert not lock.locked()
            return peak.peak

        assert run_in("asyncio", body) == 1

    @pytest.mark.parametrize(
        "make",
        [
            lambda: aiologic.Lock(),
            lambda: aiologic.RLock(),
            lambda: aiologic.BinarySemaphore(),
            lambda: threading.Lock(),
            lambda: threading.RLock(),
        ],
        ids=["Lock", "RLock", "BinarySemaphore", "threading.Lock", "threading.RLock"],
    )
    def test_lock_guard_decorates_sync_and_async(self, make: Callable[[], Any]) -> None:
        """Issue 14: synchronized(lock) is a decorator of sync and async
        functions and a context manager (with, async with) over the lock."""
        lock = make()
        guard = aiologic.synchronized(lock)
        assert guard is not lock and guard.lock is lock
        assert repr(lock) in repr(guard)
        with guard as held:
            assert held is lock
            assert _in_other_thread(lambda: _try_lock(lock)) is False
        assert _in_other_thread(lambda: _try_lock(lock)) is True
        peak = _Peak()

        @guard
        def work(n: int) -> int:
            """Sync work."""
            peak.enter()
            time.sleep(0)
            peak.leave()
            return n + 1

        assert work.__name__ == "work" and work.__doc__ == "Sync work."
        assert work(1) == 2
        _hammer(lambda: work(0))
        assert peak.peak == 1 and peak.calls == 1 + 160

        @guard
        async def awork(n: int) -> int:
            inside.append(_in_other_thread(lambda: _try_lock(lock)))
            return n * 2

        inside: list[bool] = []

        async def body(w: World) -> int:
            async with guard as held:
                assert held is lock
                inside.append(_in_other_thread(lambda: _try_lock(lock)))
            return await awork(21)

        assert inspect.iscoroutinefunction(awork)
        assert run_in("asyncio", body) == 42
        assert inside == [False, False]
        assert _in_other_thread(lambda: _try_lock(lock)) is True

    def test_asyncio_lock_guard(self) -> None:
        """An asyncio lock guards async functions and `async with`; a sync
        function or `with` is refused with TypeError."""
        import asyncio

        order: list[str] = []

        async def main() -> list[str]:
            # Made in the loop: on Python < 3.10 an asyncio.Lock binds the
            # loop current when it is made.
            lock = asyncio.Lock()
            guard = aiologic.synchronized(lock)

            def sync() -> None:
                pass

            with pytest.raises(TypeError):
                guard(sync)
            with pytest.raises(TypeError):
                with guard:
                    pass
            assert not lock.locked()

            @guard
            async def step(name: str) -> str:
                order.append(name + ">")
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                order.append("<" + name)
                return name

            results = await asyncio.gather(step("a"), step("b"), step("c"))
            async with guard as held:
                assert held is lock and lock.locked()
            assert not lock.locked()
            return results

        assert asyncio.run(main()) == ["a", "b", "c"]
        assert order == ["a>", "<a", "b>", "<b", "c>", "<c"]

    def test_object_lock_is_the_rlock_of_its_methods(self) -> None:
        class Plain:
            pass

        class Handler:
            def __call__(self) -> None:
                pass

        for obj in (Plain(), Handler()):  # a callable object too
            assert isinstance(aiologic.synchronized(obj), aiologic.RLock)
            assert aiologic.synchronized(obj) is aiologic.synchronized(obj)


def _try_lock(lock: Any) -> bool:
    """Take and give back *lock* without waiting; False if it was held."""
    acquire = getattr(lock, "green_acquire", None) or lock.acquire
    release = getattr(lock, "green_release", None) or lock.release
    got = acquire(blocking=False)
    if got:
        release()
    return bool(got)


def _in_other_thread(fn: Callable[[], Any]) -> Any:
    result: list[Any] = []
    _in_thread(lambda: result.append(fn()))
    return result[0]


# ============================================================================
# The lowlevel namespace and vendoring
# ============================================================================


def test_lowlevel_is_a_submodule() -> None:
    import aiologic.lowlevel
    from aiologic.lowlevel import (
        async_checkpoint,
        async_sleep,
        current_async_library,
        current_async_library_tlocal,
        current_green_library,
        current_green_library_tlocal,
        disable_checkpoints,
        enable_checkpoints,
        green_checkpoint,
        green_sleep,
    )

    assert sys.modules["aiologic.lowlevel"] is aiologic.lowlevel
    assert current_green_library() == "threading"
    assert current_async_library(failsafe=True) is None
    for obj in (
        async_checkpoint,
        async_sleep,
        disable_checkpoints,
        enable_checkpoints,
        green_checkpoint,
        green_sleep,
    ):
        assert callable(obj)
    assert hasattr(current_async_library_tlocal, "name")
    assert hasattr(current_green_library_tlocal, "name")


def test_wheel_lowlevel_file_matches_the_module() -> None:
    """Issue 16: the wheel's aiologic/lowlevel.py (from .packaging/, for type
    checkers) re-exports exactly the names of the lowlevel module that
    aiologic.py registers, in the same `__all__`."""
    import ast

    path = pathlib.Path(HERE, ".packaging", "lowlevel.py")
    if not path.exists():  # an installed copy of the tests
        pytest.skip(".packaging/ is not beside the tests")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {
        alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.level == 1 and not node.module
        for alias in node.names
        if alias.asname == alias.name
    }
    (exported,) = (
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["__all__"]
    )
    assert tuple(exported) == tuple(aiologic.lowlevel.__all__)
    assert imported == set(aiologic.lowlevel.__all__)
    for name in imported:
        assert getattr(aiologic.lowlevel, name) is getattr(aiologic, name)


def test_vendored_copy(tmp_path: Any) -> None:
    """Issue 7 item 4: a copy vendored as myproject._vendor.aiologic works,
    its lowlevel namespace imports by the vendored name, and nothing named
    "aiologic" gets imported."""
    vendor = tmp_path / "myproject" / "_vendor"
    vendor.mkdir(parents=True)
    (tmp_path / "myproject" / "__init__.py").write_text("")
    (vendor / "__init__.py").write_text("")
    shutil.copy(os.path.join(HERE, "aiologic.py"), vendor / "aiologic.py")
    result = _python(
        """
        import asyncio, json, sys
        sys.path.insert(0, TMP)
        import myproject._vendor.aiologic as vendored
        from myproject._vendor.aiologic.lowlevel import (
            current_async_library,
            current_green_library,
        )

        async def main():
            lock = vendored.Lock()
            async with lock:
                owner = lock.owner[0]
            q = vendored.Queue(maxsize=1)
            await q.async_put(1)
            return current_async_library(), owner, await q.async_get()

        library, owner, item = asyncio.run(main())
        print(json.dumps({
            "library": library,
            "owner": owner,
            "item": item,
            "green": current_green_library(),
            "lowlevel": vendored.lowlevel.__name__,
            "registered": sys.modules.get("myproject._vendor.aiologic.lowlevel")
            is vendored.lowlevel,
            "version": vendored.__version__,
            "leaked": sorted(m for m in sys.modules if m.split(".")[0] == "aiologic"),
        }))
        """.replace("TMP", repr(str(tmp_path)))
    )
    assert result == {
        "library": "asyncio",
        "owner": "asyncio",
        "item": 1,
        "green": "threading",
        "lowlevel": "myproject._vendor.aiologic.lowlevel",
        "registered": True,
        "version": aiologic.__version__,
        "leaked": [],
    }


def test_readme_renders_without_warnings() -> None:
    """README.rst is valid reStructuredText: docutils stops at the first
    warning, so a broken table or directive fails here."""
    docutils_core = pytest.importorskip("docutils.core")
    readme = pathlib.Path(__file__).with_name("README.rst")
    if not readme.exists():  # an installed copy of the tests, without README
        pytest.skip("README.rst is not beside the tests")
    with warnings.catch_warnings():
        # docutils' own deprecation notices about its API are not README's.
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        html = docutils_core.publish_string(
            readme.read_text(encoding="utf-8"),
            writer_name="html",
            settings_overrides={"halt_level": 2, "report_level": 2},
        )
    assert b"The two commands" in html


def _readme_blocks() -> list[tuple[int, str]]:
    """(line, text) of every literal block of README.rst (after ``::``)."""
    readme = pathlib.Path(HERE, "README.rst")
    if not readme.exists():
        return []
    lines = readme.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.rstrip().endswith("::") or line.lstrip().startswith(".."):
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        start = j
        while j < len(lines) and (
            not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
        ):
            j += 1
        blocks.append((start + 1, textwrap.dedent("\n".join(lines[start:j]))))
        i = j
    return blocks


def _readme_block_kind(text: str) -> str:
    """The kind of a README block: "shell", "output" (bench.py) or "python"."""
    first_words = {line.split()[0] for line in text.splitlines() if line.strip()}
    if first_words <= {"python", "python3", "pypy3", "."}:
        return "shell"
    if text.startswith("aiologic ") and " on " in text.splitlines()[0]:
        return "output"
    return "python"


_README_PYTHON = [
    pytest.param(text, id=f"line-{line}")
    for line, text in _readme_blocks()
    if _readme_block_kind(text) == "python"
]


@pytest.mark.skipif(not _README_PYTHON, reason="README.rst is not beside the tests")
@pytest.mark.parametrize("code", _README_PYTHON)
def test_readme_example_runs(code: str) -> None:
    """Issue 16: every Python example of README.rst runs as written (in a fresh
    interpreter that imports the aiologic.py beside the tests)."""
    import ast
    import importlib.util

    for node in ast.walk(ast.parse(code)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if importlib.util.find_spec(top) is None:
                pytest.skip(f"the example needs {top}, which is not installed")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AIOLOGIC_")}
    environ["PYTHONPATH"] = HERE + os.pathsep + environ.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", code],
        cwd=HERE,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_readme_examples_are_all_classified() -> None:
    """Each literal block of README.rst is Python that runs (above), a shell
    command line, or bench.py output; the Python ones are most of them."""
    blocks = _readme_blocks()
    if not blocks:
        pytest.skip("README.rst is not beside the tests")
    kinds = [_readme_block_kind(text) for _, text in blocks]
    assert kinds.count("python") >= 7, kinds
    for (line, text), kind in zip(blocks, kinds):
        if kind == "shell":
            assert "import " not in text, (line, text)


def test_readme_holds_the_commands_ci_runs() -> None:
    """The commands README.rst promises are the ones .ci/run and users run."""
    readme = pathlib.Path(__file__).with_name("README.rst")
    if not readme.exists():
        pytest.skip("README.rst is not beside the tests")
    text = readme.read_text(encoding="utf-8")
    assert (
        'python -m pip install -e ".[test]" && python -m pytest test_aiologic.py -q'
        in text
    )
    assert "python bench.py" in text


# ============================================================================
# Every newer class: __slots__, weak references, copy
# ============================================================================

NEW_CLASSES: dict[str, Callable[[], Any]] = {
    "CountdownEvent": lambda: aiologic.CountdownEvent(2),
    "Latch": lambda: aiologic.Latch(3),
    "Barrier": lambda: aiologic.Barrier(3),
    "RBarrier": lambda: aiologic.RBarrier(3),
    "CapacityLimiter": lambda: aiologic.CapacityLimiter(2),
    "RCapacityLimiter": lambda: aiologic.RCapacityLimiter(2),
    "Queue": lambda: aiologic.Queue([1], maxsize=3),
    "LifoQueue": lambda: aiologic.LifoQueue([1], maxsize=3),
    "PriorityQueue": lambda: aiologic.PriorityQueue([1], maxsize=3),
    "RWLock": lambda: aiologic.RWLock(),
}


def _use(obj: Any) -> None:
    """Change the live state of one of NEW_CLASSES."""
    if isinstance(obj, aiologic.CountdownEvent):
        obj.up(5)
    elif isinstance(obj, (aiologic.Latch, aiologic.Barrier)):
        obj.abort()
    elif isinstance(obj, aiologic.CapacityLimiter):
        assert obj.green_acquire()
    elif isinstance(obj, aiologic.Queue):
        obj.green_put(2)
        obj.shutdown()
    else:
        assert obj.writer.green_acquire()


def _constructor_state(obj: Any) -> Any:
    """What the constructor arguments decide, and whether it is fresh."""
    if isinstance(obj, aiologic.CountdownEvent):
        return obj.initial_value, obj.value, obj.waiting
    if isinstance(obj, (aiologic.Latch, aiologic.Barrier)):
        return obj.parties, obj.broken, obj.waiting
    if isinstance(obj, aiologic.CapacityLimiter):
        return obj.total_tokens, obj.borrowed_tokens, obj.available_tokens
    if isinstance(obj, aiologic.Queue):
        return obj.maxsize, obj.waiting, obj.unfinished_tasks >= 0
    return obj.reader.locked(), obj.writer.locked(), obj.waiting


@pytest.mark.parametrize("name", list(NEW_CLASSES))
def test_new_classes_slots_weakref_copy(name: str) -> None:
    obj = NEW_CLASSES[name]()
    assert type(obj).__name__ == name
    assert not hasattr(obj, "__dict__"), type(obj)
    fresh = _constructor_state(obj)
    _use(obj)
    clone = copy.copy(obj)
    assert type(clone) is type(obj) and clone is not obj
    assert _constructor_state(clone) == fresh
    if isinstance(obj, aiologic.Queue):
        clone.green_put(5)  # not shut down like the original
        assert clone.green_get() in (1, 5)
    ref = weakref.ref(obj)
    assert ref() is obj
    del obj
    gc.collect()
    assert ref() is None


# copy.copy, copy.deepcopy and pickle (issue 13): a fresh primitive made from
# the constructor arguments, never a snapshot of its state. Each case: make it,
# hold it (or use it) and park a waiter on it, copy it, and compare the copy
# with a fresh one; then the copy must work on its own.


@dataclass
class CopyCase:
    make: Callable[[], Any]
    state: Callable[[Any], Any]  # what the constructor arguments decide
    hold: Callable[[Any], Any] = lambda obj: None  # use it: held, changed
    unhold: Callable[[Any], Any] = lambda obj: None  # undo `hold`, free the waiter
    waiter: Callable[[Any], Any] | None = None  # blocks in a thread until unhold


def _lock_waiter(obj: Any) -> None:
    assert obj.green_acquire(timeout=DEADLINE)
    obj.green_release()


def _wait_then_leave(obj: Any) -> None:
    obj.wait(DEADLINE)


def _barrier_waiter(obj: Any) -> None:
    with pytest.raises(aiologic.BrokenBarrierError):
        obj.wait(DEADLINE)


def _condition_waiter(cv: Any) -> None:
    with cv:
        assert cv.wait(DEADLINE)


def _notify_all(cv: Any) -> None:
    with cv:
        cv.notify_all()


def _semaphore_state(obj: Any) -> Any:
    return type(obj), obj.initial_value, obj.value, getattr(obj, "max_value", None)


def _drain(obj: Any) -> None:
    while obj.green_acquire(blocking=False):
        pass


def _refill(obj: Any) -> None:
    # Give back what `_drain` took (the waiter gives back what it gets); a
    # semaphore made empty gets one unit, for its waiter.
    for _ in range(max(obj.initial_value, 1)):
        obj.release()


def _barrier_case(factory: str) -> CopyCase:
    return CopyCase(
        make=lambda: getattr(aiologic, factory)(3),
        state=lambda obj: (obj.parties, obj.broken, obj.waiting),
        unhold=lambda obj: obj.abort(),
        waiter=_barrier_waiter,
    )


def _semaphore_case(make: Callable[[], Any]) -> CopyCase:
    return CopyCase(
        make=make,
        state=_semaphore_state,
        hold=_drain,
        unhold=_refill,
        waiter=_lock_waiter,
    )


COPY_CASES: dict[str, CopyCase] = {
    "Event": CopyCase(
        make=aiologic.Event,
        state=lambda obj: (obj.is_set(), obj.waiting),
        unhold=lambda obj: obj.set(),
        waiter=_wait_then_leave,
    ),
    "REvent": CopyCase(
        make=aiologic.REvent,
        state=lambda obj: (obj.is_set(), obj.waiting),
        unhold=lambda obj: obj.set(),
        waiter=_wait_then_leave,
    ),
    "CountdownEvent": CopyCase(
        make=lambda: aiologic.CountdownEvent(2),
        state=lambda obj: (obj.initial_value, obj.value, obj.waiting),
        hold=lambda obj: obj.up(3),
        unhold=lambda obj: obj.clear(),
        waiter=_wait_then_leave,
    ),
    "Latch": _barrier_case("Latch"),
    "Barrier": _barrier_case("Barrier"),
    "RBarrier": _barrier_case("RBarrier"),
    "Lock": CopyCase(
        make=aiologic.Lock,
        state=lambda obj: (obj.locked(), obj.owner, obj.waiting),
        hold=lambda obj: obj.green_acquire(),
        unhold=lambda obj: obj.green_release(),
        waiter=_lock_waiter,
    ),
    "RLock": CopyCase(
        make=aiologic.RLock,
        state=lambda obj: (obj.locked(), obj.owner, obj.count, obj.waiting),
        hold=lambda obj: obj.green_acquire(count=2),
        unhold=lambda obj: obj.green_release(count=2),
        waiter=_lock_waiter,
    ),
    "Semaphore": _semaphore_case(lambda: aiologic.Semaphore(3)),
    "Semaphore(0)": _semaphore_case(lambda: aiologic.Semaphore(0)),
    "BoundedSemaphore": _semaphore_case(lambda: aiologic.BoundedSemaphore(2, 5)),
    "BinarySemaphore": _semaphore_case(lambda: aiologic.BinarySemaphore(1)),
    "BoundedBinarySemaphore": _semaphore_case(aiologic.BoundedBinarySemaphore),
    "CapacityLimiter": CopyCase(
        make=lambda: aiologic.CapacityLimiter(1),
        state=lambda obj: (obj.total_tokens, obj.borrowed_tokens, dict(obj.borrowers)),
        hold=lambda obj: obj.green_acquire(),
        unhold=lambda obj: obj.green_release(),
        waiter=_lock_waiter,
    ),
    "RCapacityLimiter": CopyCase(
        make=lambda: aiologic.RCapacityLimiter(math.inf),
        state=lambda obj: (obj.total_tokens, obj.borrowed_tokens, dict(obj.borrowers)),
        hold=lambda obj: obj.green_acquire(count=2),
        unhold=lambda obj: obj.green_release(count=2),
    ),
    "Condition": CopyCase(
        make=aiologic.Condition,
        state=lambda cv: (type(cv.lock), bool(cv), cv.waiting),
        unhold=_notify_all,
        waiter=_condition_waiter,
    ),
    "Condition(Lock)": CopyCase(
        make=lambda: aiologic.Condition(aiologic.Lock()),
        state=lambda cv: (type(cv.lock), bool(cv), cv.waiting),
        unhold=_notify_all,
        waiter=_condition_waiter,
    ),
    "Condition(None)": CopyCase(
        make=lambda: aiologic.Condition(None),
        state=lambda cv: (cv.lock, cv.waiting),
    ),
    "ResourceGuard": CopyCase(
        make=lambda: aiologic.ResourceGuard("reading"),
        state=lambda obj: (obj.action, bool(obj)),
        hold=lambda obj: obj.__enter__(),
        unhold=lambda obj: obj.__exit__(None, None, None),
    ),
    "RWLock": CopyCase(
        make=aiologic.RWLock,
        state=lambda obj: (obj.reader.locked(), obj.writer.locked(), obj.waiting),
        hold=lambda obj: obj.writer.green_acquire(),
        unhold=lambda obj: obj.writer.green_release(),
        waiter=lambda obj: _lock_waiter(obj.reader),
    ),
    # A side alone: the same side of a new RWLock. (Readers share: a reader
    # would not wait.)
    **{
        f"RWLock.{name}": CopyCase(
            make=lambda name=name: getattr(aiologic.RWLock(), name),
            state=lambda side: (repr(side), side.locked(), side.waiting),
            hold=lambda side: side.green_acquire(),
            unhold=lambda side: side.green_release(),
            waiter=_lock_waiter if name == "writer" else None,
        )
        for name in ("reader", "writer")
    },
}


def _pickled(protocol: int) -> Callable[[Any], Any]:
    return lambda obj: pickle.loads(pickle.dumps(obj, protocol))


COPIERS: dict[str, Callable[[Any], Any]] = {
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
    **{f"pickle{p}": _pickled(p) for p in range(pickle.HIGHEST_PROTOCOL + 1)},
}


@pytest.mark.parametrize("how", list(COPIERS))
@pytest.mark.parametrize("name", list(COPY_CASES))
def test_copy_and_pickle_rebuild_from_constructor_arguments(
    name: str, how: str
) -> None:
    case = COPY_CASES[name]
    obj = case.make()
    fresh = case.state(obj)
    case.hold(obj)
    thread = None
    if case.waiter is not None:
        thread = threading.Thread(target=case.waiter, args=(obj,))
        thread.start()
        wait_until(lambda: obj.waiting == 1)
    clone = COPIERS[how](obj)
    assert type(clone) is type(obj) and clone is not obj
    assert case.state(clone) == fresh
    case.unhold(obj)
    if thread is not None:
        thread.join(DEADLINE)
        assert not thread.is_alive()
    case.hold(clone)  # the copy works on its own
    case.unhold(clone)


@pytest.mark.parametrize("how", list(COPIERS))
def test_copy_of_a_flag_holds_its_marker_or_none(how: str) -> None:
    flag: aiologic.Flag[str] = aiologic.Flag()
    assert not COPIERS[how](flag)
    flag.set("marker")
    assert COPIERS[how](flag).get() == "marker"
    flag.clear()
    flag.set("other")
    clone = COPIERS[how](flag)
    assert clone.get() == "other" and not clone.set("marker")


def test_copy_of_a_flag_is_shallow() -> None:
    marker = object()
    assert copy.copy(aiologic.Flag(marker)).get() is marker
    assert copy.deepcopy(aiologic.Flag(marker)).get() is not marker


def test_copy_of_a_condition_shares_its_lock_deepcopy_and_pickle_do_not() -> None:
    lock = aiologic.Lock()
    cv = aiologic.Condition(lock)
    assert copy.copy(cv).lock is lock
    assert copy.deepcopy(cv).lock is not lock
    assert type(pickle.loads(pickle.dumps(cv)).lock) is aiologic.Lock
    # deepcopy keeps what was shared shared.
    lock_copy, cv_copy = copy.deepcopy([lock, cv])
    assert cv_copy.lock is lock_copy
    # A timer of the caller's goes along; the default one is made anew.
    timer = time.monotonic
    assert copy.copy(aiologic.Condition(lock, timer)).timer is timer
    assert _pickled(2)(aiologic.Condition(lock, timer)).timer is timer
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no itertools pickling (gone in 3.14)
        assert copy.deepcopy(aiologic.Condition()).timer() == 0


# ============================================================================
# Habits users bring from threading, queue, asyncio, janus, anyio, trio
# ============================================================================


def test_revent_is_an_event() -> None:
    ev = aiologic.REvent()
    assert isinstance(ev, aiologic.Event) and issubclass(
        aiologic.REvent, aiologic.Event
    )
    assert not ev and not ev.is_set() and ev.wait(0) is False
    ev.set()
    assert ev and ev.is_set() and ev.wait(0) is True
    ev.clear()
    assert not ev and ev.waiting == 0
    weakref.ref(ev)


def test_resource_guard_as(world: str) -> None:
    async def body(w: World) -> None:
        guard = aiologic.ResourceGuard()
        with guard as entered:
            assert entered is guard and guard
        assert not guard
        async with guard as entered:
            assert entered is guard and guard
            with pytest.raises(aiologic.BusyResourceError):
                async with guard:
                    pass
        assert not guard

    run_in(world, body)


def test_exceptions_are_the_stdlib_ones_imported_before() -> None:
    import asyncio
    import queue

    assert issubclass(aiologic.QueueEmpty, queue.Empty)
    assert issubclass(aiologic.QueueEmpty, asyncio.QueueEmpty)
    assert issubclass(aiologic.QueueFull, queue.Full)
    assert issubclass(aiologic.QueueFull, asyncio.QueueFull)
    if sys.version_info >= (3, 13):
        assert issubclass(aiologic.QueueShutDown, queue.ShutDown)
        assert issubclass(aiologic.QueueShutDown, asyncio.QueueShutDown)
    assert issubclass(aiologic.BrokenBarrierError, threading.BrokenBarrierError)
    assert issubclass(aiologic.BrokenBarrierError, RuntimeError)
    if sys.version_info >= (3, 11):
        assert issubclass(aiologic.BrokenBarrierError, asyncio.BrokenBarrierError)
    q: Any = aiologic.Queue(1)
    with pytest.raises(queue.Empty):
        q.green_get(blocking=False)
    q.green_put(1)
    with pytest.raises(asyncio.QueueFull):
        q.green_put(2, blocking=False)
    latch = aiologic.Latch(2)
    latch.abort()
    with pytest.raises(threading.BrokenBarrierError):
        latch.wait()


def test_exceptions_become_the_stdlib_ones_imported_later() -> None:
    """aiologic imports neither asyncio nor queue; code that imports them
    after aiologic still catches our exceptions with theirs."""
    result = _python(
        """
        import json, sys
        import aiologic
        assert "asyncio" not in sys.modules and "queue" not in sys.modules
        import asyncio, queue, threading
        caught = []
        q = aiologic.Queue(1)
        try:
            q.green_get(blocking=False)
        except asyncio.QueueEmpty:
            caught.append("asyncio.QueueEmpty")
        try:
            q.green_get(blocking=False)
        except queue.Empty:
            caught.append("queue.Empty")
        q.green_put(0)
        try:
            q.green_put(1, blocking=False)
        except queue.Full:
            caught.append("queue.Full")
        q.shutdown()
        q.green_get()
        try:
            q.green_get()
        except getattr(queue, "ShutDown", aiologic.QueueShutDown):
            caught.append("ShutDown")
        latch = aiologic.Latch(2)
        latch.abort()
        try:
            latch.wait()
        except getattr(asyncio, "BrokenBarrierError", threading.BrokenBarrierError):
            caught.append("BrokenBarrierError")
        same = aiologic.QueueEmpty is aiologic.__dict__["QueueEmpty"]
        print(json.dumps([caught, same]))
        """
    )
    assert result == [
        [
            "asyncio.QueueEmpty",
            "queue.Empty",
            "queue.Full",
            "ShutDown",
            "BrokenBarrierError",
        ],
        True,
    ]


def test_exceptions_adopt_their_bases_once_under_contention() -> None:
    """Threads that raise at once, right after asyncio and queue appear,
    adopt each base once (the adoption runs under a lock) and all catch."""
    result = _python(
        """
        import json, sys, threading
        sys.setswitchinterval(1e-6)
        import aiologic
        import asyncio, queue
        start = threading.Barrier(8)
        caught = []
        def worker():
            start.wait()
            for _ in range(100):
                try:
                    raise aiologic.QueueFull
                except asyncio.QueueFull:
                    pass
                try:
                    raise aiologic.QueueEmpty
                except queue.Empty:
                    pass
            caught.append(1)
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        mros = [
            [c.__qualname__ for c in cls.__mro__]
            for cls in (aiologic.QueueFull, aiologic.QueueEmpty)
        ]
        print(json.dumps([len(caught), mros]))
        """
    )
    count, mros = result
    assert count == 8
    # Each foreign base once: ours and asyncio's share the name QueueFull.
    assert mros[0].count("Full") == 1 and mros[0].count("QueueFull") == 2
    assert mros[1].count("Empty") == 1 and mros[1].count("QueueEmpty") == 2


def test_bounded_semaphore_over_release_is_runtime_and_value_error() -> None:
    for sem in (aiologic.BoundedSemaphore(2), aiologic.BoundedSemaphore()):
        with pytest.raises(RuntimeError) as info:
            sem.release()
        assert isinstance(info.value, ValueError)
        with pytest.raises(ValueError, match="too many"):
            sem.release()


GENERIC_CLASSES = (
    "SimpleQueue",
    "SimpleLifoQueue",
    "Queue",
    "LifoQueue",
    "PriorityQueue",
    "Flag",
)


@pytest.mark.parametrize("name", GENERIC_CLASSES)
def test_generic_classes_make_real_aliases(name: str) -> None:
    import typing

    cls = getattr(aiologic, name)
    alias = cls[int]
    assert typing.get_args(alias) == (int,)
    assert typing.get_origin(alias) is cls
    assert type(alias()) is cls
    assert typing.get_args(cls[typing.Tuple[int, str]]) == (typing.Tuple[int, str],)


@pytest.mark.skipif(
    sys.version_info < (3, 9), reason="3.8 has no types.GenericAlias: typing is used"
)
def test_subscripting_imports_nothing() -> None:
    result = _python(
        """
        import json, sys
        import aiologic
        before = set(sys.modules)
        aiologic.Queue[int]
        print(json.dumps(sorted(set(sys.modules) - before - {"types"})))
        """
    )
    assert result == []


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: aiologic.Queue().green_get(True), "Queue.green_get()"),
        (lambda: aiologic.LifoQueue().green_get(True), "Queue.green_get()"),
        (lambda: aiologic.SimpleQueue().async_get(True), "SimpleQueue.async_get()"),
        (lambda: aiologic.Event().wait(1, 2), "Event.wait()"),
        (lambda: aiologic.Barrier(1, 2), "Barrier.__init__()"),
        (lambda: aiologic.Condition().with_(), "Condition.with_()"),
    ],
)
def test_argument_errors_name_the_public_class(call: Any, name: str) -> None:
    with pytest.raises(TypeError) as info:
        call()
    assert "_" + name not in str(info.value)
    if sys.version_info >= (3, 10):  # older versions name the function only
        assert str(info.value).startswith(name), info.value


def test_release_zero_is_refused() -> None:
    for sem in (aiologic.Semaphore(2), aiologic.BoundedSemaphore(2, 3)):
        with pytest.raises(ValueError):
            sem.release(0)
        assert sem.value == 2
    lock = aiologic.RLock()
    lock.green_acquire()
    with pytest.raises(ValueError):
        lock.green_release(0)
    assert lock.count == 1
    lock.green_release()


def test_non_blocking_call_with_a_timeout_is_refused(world: str) -> None:
    """threading: "can't specify a timeout for a non-blocking call"."""

    async def body(w: World) -> None:
        rw = aiologic.RWLock()
        for obj in (
            aiologic.Lock(),
            aiologic.RLock(),
            aiologic.Semaphore(1),
            aiologic.BoundedSemaphore(1),
            aiologic.CapacityLimiter(1),
            aiologic.RCapacityLimiter(1),
            rw.reader,
            rw.writer,
        ):
            for timeout in (0, 1, DEADLINE):
                result = await outcome_of(
                    w.acquire(obj, blocking=False, timeout=timeout)
                )
                assert isinstance(result, ValueError), (obj, result)
                assert not obj.locked() if hasattr(obj, "locked") else True
            assert await w.acquire(obj, blocking=False, timeout=None)
            w.release(obj)

    run_in(world, body)


def test_green_wait_in_a_running_loop_warns(async_backend: str) -> None:
    """A green face about to park in a thread whose loop runs warns, naming
    the async spelling; a green call that does not park does not warn."""
    busy = aiologic.Lock()
    busy.green_acquire()  # held by this (plain) thread: other threads may wait
    sem = aiologic.Semaphore(0)

    async def body(w: World) -> None:
        W = aiologic.GreenWaitInLoopWarning
        assert issubclass(W, RuntimeWarning)
        ev = aiologic.Event()
        q: Any = aiologic.Queue(1)
        cv = aiologic.Condition(aiologic.Lock())

        def cv_wait() -> None:
            with cv:
                cv.wait(SHORT)

        def enter(lock: Any) -> None:
            with lock:
                pass

        cases = [
            (lambda: ev.wait(SHORT), "await event"),
            (lambda: aiologic.REvent().wait(SHORT), "await event"),
            (lambda: aiologic.CountdownEvent(1).wait(SHORT), "await event"),
            (lambda: q.green_get(timeout=SHORT), r"await q\.async_get\(\)"),
            (lambda: q.green_peek(timeout=SHORT), r"await q\.async_peek\(\)"),
            (lambda: q.sync_q.get(timeout=SHORT), r"await q\.async_q\.get\(\)"),
            (lambda: busy.green_acquire(timeout=SHORT), "async with lock"),
            (lambda: sem.green_acquire(timeout=SHORT), "async with semaphore"),
            (lambda: aiologic.Barrier(2).wait(SHORT), "await barrier"),
            (cv_wait, "await cv"),
        ]
        for call, spelling in cases:
            with pytest.warns(W, match=spelling) as record:
                with contextlib.suppress(Exception):
                    call()
            assert record[0].filename == __file__  # points at the caller
        q.green_put(1)
        with pytest.warns(W, match=r"await q\.async_put\(item\)"):
            with pytest.raises(aiologic.QueueFull):
                q.green_put(2, timeout=SHORT)
        with pytest.warns(W, match=r"await q\.async_q\.put\(item\)"):
            with pytest.raises(aiologic.QueueFull):
                q.sync_q.put(2, timeout=SHORT)
        # Filtered as an error, the warning leaves no waiter behind.
        with warnings.catch_warnings():
            warnings.simplefilter("error", W)
            with pytest.raises(W):
                ev.wait()
            assert ev.waiting == 0
            with pytest.raises(W):
                busy.green_acquire()
            assert busy.waiting == 0 and busy.locked()
            # No park, no warning.
            ev.set()
            assert ev.wait() and ev.wait(0)
            assert q.green_get() == 1
            lock = aiologic.Lock()
            with lock:
                pass
            assert sem.green_acquire(blocking=False) is False
            assert sem.green_acquire(timeout=0) is False

    try:
        run_in(async_backend, body)
    finally:
        busy.green_release()


def test_green_wait_in_a_trio_run_named_in_the_context_variable_warns() -> None:
    """trio 0.22 names itself in sniffio's context variable of its tasks, not
    in the thread-local (trio >= 0.23): a green wait in its run still warns;
    a plain thread whose context carries the name (copied from a trio task)
    does not."""
    trio = pytest.importorskip("trio")
    sniffio = pytest.importorskip("sniffio")
    W = aiologic.GreenWaitInLoopWarning

    def in_a_worker() -> None:  # a context copied from a trio task, no run
        assert aiologic.Event().wait(0.001) is False

    async def main() -> None:
        local = sniffio.thread_local
        saved = local.name
        local.name = None
        token = sniffio.current_async_library_cvar.set("trio")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", W)
                ev = aiologic.Event()
                with pytest.raises(W, match="trio"):
                    ev.wait(SHORT)  # without the warning: a park of SHORT
                assert ev.waiting == 0
                context = contextvars.copy_context()
                _in_thread(lambda: context.run(in_a_worker))
        finally:
            sniffio.current_async_library_cvar.reset(token)
            local.name = saved

    trio.run(main)


def test_green_wait_in_a_plain_thread_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert aiologic.Event().wait(0.001) is False
        lock = aiologic.Lock()

        async def holder(w: World) -> None:
            async with w.hold(lock):
                await w.wait_until(lambda: lock.waiting == 1)

        actor = Actor("asyncio", holder)
        wait_until(lock.locked, actors=[actor])
        assert lock.green_acquire(timeout=DEADLINE)  # parks: another loop's thread
        lock.green_release()
        actor.join()


def test_errors_of_the_wrong_face_name_the_right_one(async_backend: str) -> None:
    async def body(w: World) -> None:
        cv = aiologic.Condition(aiologic.Lock())
        async with cv:
            with pytest.raises(RuntimeError, match="await cv"):
                cv.wait(SHORT)
        lock = aiologic.RLock()
        async with lock:
            with pytest.raises(RuntimeError, match="green face, use the async one"):
                lock.green_release()
            assert lock.locked()
        assert not lock.locked()
        limiter = aiologic.CapacityLimiter(1)
        async with limiter:
            with pytest.raises(RuntimeError, match="green face, use the async one"):
                limiter.green_release()
            assert limiter.borrowed_tokens == 1
        rw = aiologic.RWLock()
        async with rw.writer:
            with pytest.raises(RuntimeError, match="green face, use the async one"):
                rw.writer.green_release()
            assert rw.writer.locked()
        async with rw.reader:
            with pytest.raises(RuntimeError, match="green face, use the async one"):
                rw.reader.green_release()
            assert rw.reader.locked()
        assert rw.reader.green_acquire()
        with pytest.raises(RuntimeError, match="async face, use the green one"):
            w.release(rw.reader)
        rw.reader.green_release()
        assert not rw.writer.locked() and limiter.borrowed_tokens == 0
        assert not rw.reader.locked()

    run_in(async_backend, body)
    cv = aiologic.Condition()
    with cv:  # green code of this thread holds it; an async wait is refused
        result = run_async("asyncio", lambda: outcome_of(cv.with_(SHORT)))
        assert isinstance(result, RuntimeError), result
        assert "un-acquired" in str(result)


@pytest.mark.parametrize(
    "factory", ["SimpleQueue", "SimpleLifoQueue", "Queue", "LifoQueue", "PriorityQueue"]
)
def test_async_for_gets_items_until_shutdown(async_backend: str, factory: str) -> None:
    async def consumer(w: World, q: Any) -> list[int]:
        return [item async for item in q]

    async def body(w: World) -> None:
        q = getattr(aiologic, factory)([1, 2])
        task = w.spawn(consumer, q)
        await w.wait_until(lambda: len(q) == 0 and q.getting == 1)
        await w.put(q, 3)
        await w.wait_until(lambda: len(q) == 0 and q.getting == 1)
        q.shutdown()  # wakes the consumer: the loop ends
        assert sorted(await task.join()) == [1, 2, 3]
        # A graceful shutdown still yields what is left, then ends.
        q = getattr(aiologic, factory)([4, 5])
        q.shutdown()
        assert sorted([item async for item in q]) == [4, 5]

    run_in(async_backend, body)


def test_statistics_in_anyios_shape() -> None:
    lock = aiologic.Lock()
    stats = lock.statistics()
    assert stats == aiologic.LockStatistics(False, None, 0)
    assert (stats.locked, stats.owner, stats.tasks_waiting) == (False, None, 0)
    assert repr(stats) == "LockStatistics(locked=False, owner=None, tasks_waiting=0)"
    with pytest.raises(AttributeError):
        stats.locked = True  # type: ignore[misc]
    assert "__dict__" not in dir(stats)
    lock.green_acquire()
    me = ("threading", threading.get_ident())
    assert lock.statistics() == aiologic.LockStatistics(True, me, 0)

    async def waiter(w: World) -> bool:
        got = await w.acquire(lock, timeout=DEADLINE)
        w.release(lock)
        return bool(got)

    actor = Actor("asyncio", waiter)
    wait_until(lambda: lock.waiting == 1, actors=[actor])
    assert lock.statistics() == aiologic.LockStatistics(True, me, 1)
    cv = aiologic.Condition(lock)
    assert cv.statistics() == aiologic.ConditionStatistics(
        0, aiologic.LockStatistics(True, me, 1)
    )
    assert cv.statistics().lock_statistics.tasks_waiting == 1
    lock.green_release()
    assert actor.join() is True

    rlock = aiologic.RLock()
    rlock.green_acquire(count=2)
    assert rlock.statistics() == aiologic.LockStatistics(True, me, 0)
    rlock.green_release(count=2)
    for lockless in (aiologic.Condition(None), aiologic.Condition(threading.Lock())):
        assert lockless.statistics() == aiologic.ConditionStatistics(
            0, aiologic.LockStatistics(False, None, 0)
        )
    for other in (threading.Lock(), aiologic.BinarySemaphore()):
        cv = aiologic.Condition(other)
        with cv:  # held, by nobody in particular
            assert cv.statistics().lock_statistics == aiologic.LockStatistics(
                True, None, 0
            )

    sem = aiologic.Semaphore(0)
    assert sem.statistics() == aiologic.SemaphoreStatistics(0)
    assert sem.green_acquire(timeout=0) is False
    ev = aiologic.Event()
    assert ev.statistics() == aiologic.EventStatistics(0)
    assert aiologic.REvent().statistics().tasks_waiting == 0

    limiter = aiologic.CapacityLimiter(2)
    limiter.green_acquire()
    limiter.green_acquire_on_behalf_of("job")
    stats = limiter.statistics()
    assert stats == aiologic.CapacityLimiterStatistics(2, 2, stats.borrowers, 0)
    assert set(stats.borrowers) == {me, "job"}
    assert repr(stats).startswith("CapacityLimiterStatistics(borrowed_tokens=2,")
    limiter.green_release()
    limiter.green_release_on_behalf_of("job")

    q: Any = aiologic.Queue([1], maxsize=2)
    assert q.statistics() == aiologic.QueueStatistics(1, 2, 0, 0)
    unbounded: Any = aiologic.SimpleQueue()
    assert unbounded.statistics() == aiologic.QueueStatistics(0, math.inf, 0, 0)
    assert aiologic.Queue().statistics().max_buffer_size == math.inf


def test_statistics_count_waiters(async_backend: str) -> None:
    async def getter(w: World, q: Any) -> Any:
        return await w.get(q, timeout=DEADLINE)

    async def waiter(w: World, obj: Any) -> Any:
        return await w.wait(obj, DEADLINE)

    async def body(w: World) -> None:
        q: Any = aiologic.Queue(1)
        tasks = [w.spawn(getter, q), w.spawn(getter, q)]
        await w.wait_until(lambda: q.statistics().tasks_waiting_get == 2)
        await w.put(q, 1)
        await w.put(q, 2)
        assert sorted([await t.join() for t in tasks]) == [1, 2]
        ev = aiologic.Event()
        task = w.spawn(waiter, ev)
        await w.wait_until(lambda: ev.statistics().tasks_waiting == 1)
        ev.set()
        assert await task.join() is True
        assert ev.statistics().tasks_waiting == 0

    run_in(async_backend, body)


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


# ============================================================================
# Long runs keep nothing: a soak test in every world
# ============================================================================
#
# Rounds of the same work: every public primitive made, waited on with
# timeouts that expire, waits cancelled (where a world can cancel), units
# handed to waiters, a task in a thread of its own (whose loop or hub then
# ends) woken from this one; then everything is dropped. With the cyclic
# garbage collector off, what a round made must die with the round (reference
# counting alone frees it: no cycles). Some primitives last the whole run and
# are used by every round. After a few rounds of warm-up, the memory that
# aiologic's own code allocated (tracemalloc) and the open sockets must stay
# flat over the later rounds.

SOAK_WORLDS = ("threading", "gevent", "eventlet", "asyncio", "trio")
SOAK_WARM_UP = 3  # rounds before tracing starts
SOAK_WINDOW = 8  # the last measures, each after a traced round, must be flat
SOAK_MEASURED = 30  # at most this many traced rounds to get there
SOAK_TIMEOUT = 0.0002  # a wait that is meant to expire (it parks first)
# Memory that is not a leak also grows for a while, then stops: what each
# thread's first call allocates (thread-local dicts that live while threads
# that earlier tests left behind do), or the frame that CPython < 3.11 keeps
# per function once a path first runs (a race hits some late). A window is
# flat when the least of its second half is less than this above the least
# of its first half (the least: one measure can catch tasks parked at that
# moment). A leak never gets flat: 1 kB per 4 rounds is 256 B a round.
SOAK_FLAT = 1024 if sys.version_info >= (3, 11) else 3072


async def _soak_contend(
    w: World,
    obj: Any,
    take: Callable[[World, Any, Any], Awaitable[Any]],
    give: Callable[[World, Any], Awaitable[Any]],
) -> None:
    """A waiter times out, a waiter is cancelled, a waiter is served."""

    async def waiter(w: World, timeout: Any) -> Any:
        return await take(w, obj, timeout)

    before = obj.waiting
    task = w.spawn(waiter, SOAK_TIMEOUT)
    result = await task.join()
    assert not result or isinstance(result, aiologic.BrokenBarrierError), result
    if w.name != "threading":
        task = w.spawn(waiter, None)
        await w.wait_until(lambda: obj.waiting > before)
        task.cancel(timeout=w.name in ("gevent", "eventlet"))
        assert await task.join() is CANCELLED
        _forget_cancellation(task)
    task = w.spawn(waiter, None)
    await w.wait_until(lambda: obj.waiting > before)
    await give(w, obj)
    result = await task.join()
    assert result is not False and not isinstance(result, Exception), result


def _forget_cancellation(task: Task) -> None:
    # An asyncio task keeps the CancelledError that ended it (3.9+), whose
    # traceback holds the task's frames, which hold the task: a cycle of
    # asyncio's making. Awaiting the task, as programs do, ends it.
    if isinstance(task, _AsyncioTask):
        try:
            task.task.result()
        except task.asyncio.CancelledError:
            pass


async def _soak_take(w: World, obj: Any, timeout: Any) -> Any:
    got = await w.acquire(obj, timeout=timeout)
    if got:
        w.release(obj)
    return got


async def _soak_give(w: World, obj: Any) -> None:
    if isinstance(obj, aiologic.Semaphore):
        obj.release()
    else:
        w.release(obj)


async def _soak_locks(w: World, made: list[Any]) -> None:
    for make, units in (
        (aiologic.Lock, 1),
        (aiologic.RLock, 1),
        (aiologic.Semaphore, 1),
        (lambda: aiologic.Semaphore(2), 2),
        (aiologic.BoundedSemaphore, 1),
        (aiologic.BinarySemaphore, 1),
        (aiologic.BoundedBinarySemaphore, 1),
        (aiologic.CapacityLimiter, 1),
        (aiologic.RCapacityLimiter, 1),
    ):
        obj = make()
        made.append(obj)
        for _ in range(units):  # every unit is ours: the waiters must wait
            assert await w.acquire(obj, blocking=False)
        await _soak_contend(w, obj, _soak_take, _soak_give)  # gives one
        for _ in range(units - 1):
            await _soak_give(w, obj)
        assert obj.waiting == 0
    rw = aiologic.RWLock()
    made.append(rw)
    for side, other in ((rw.writer, rw.reader), (rw.reader, rw.writer)):
        assert await w.acquire(other)

        async def take(w: World, obj: Any, timeout: Any, side: Any = side) -> Any:
            return await _soak_take(w, side, timeout)

        async def give(w: World, obj: Any, other: Any = other) -> None:
            w.release(other)

        await _soak_contend(w, rw, take, give)
    async with w.hold(rw.reader):
        pass


async def _soak_events(w: World, made: list[Any]) -> None:
    async def wait(w: World, obj: Any, timeout: Any) -> Any:
        return await w.wait(obj, timeout)

    async def set_(w: World, obj: Any) -> None:
        obj.set()

    async def down(w: World, obj: Any) -> None:
        obj.down()

    ev = aiologic.Event()
    rev = aiologic.REvent()
    ce = aiologic.CountdownEvent(1)
    made += [ev, rev, ce]
    await _soak_contend(w, ev, wait, set_)
    await _soak_contend(w, rev, wait, set_)
    rev.clear()
    await _soak_contend(w, ce, wait, down)
    ce.up()
    ce.clear()
    flag: aiologic.Flag[int] = aiologic.Flag()
    guard = aiologic.ResourceGuard()
    made += [flag, guard]
    assert flag.set(1) and flag.get() == 1
    with guard:
        pass


async def _soak_barriers(w: World, made: list[Any]) -> None:
    async def wait(w: World, obj: Any, timeout: Any) -> Any:
        return await outcome_of(w.wait(obj, timeout))

    for make in (aiologic.Latch, aiologic.Barrier, aiologic.RBarrier):
        obj = make(2)
        made.append(obj)
        # A round that passes, then one broken by a party that timed out.
        task = w.spawn(wait, obj, None)
        await w.wait_until(lambda obj=obj: obj.waiting == 1)
        await w.wait(obj, DEADLINE)
        assert not isinstance(await task.join(), Exception)
        if make is not aiologic.Latch:
            result = await wait(w, obj, SOAK_TIMEOUT)
            assert isinstance(result, aiologic.BrokenBarrierError), result
            del result  # its traceback leads back to this frame: a cycle
        if make is aiologic.RBarrier:
            obj.reset()
            if w.name != "threading":
                task = w.spawn(wait, obj, None)
                await w.wait_until(lambda obj=obj: obj.waiting == 1)
                task.cancel(timeout=w.name in ("gevent", "eventlet"))
                await task.join()
                _forget_cancellation(task)
                assert obj.broken
                obj.reset()


async def _soak_conditions(w: World, made: list[Any]) -> None:
    async def wait(w: World, cv: Any, timeout: Any) -> Any:
        async with w.hold(cv):
            return await w.wait(cv, timeout)

    async def notify(w: World, cv: Any) -> None:
        async with w.hold(cv):
            cv.notify()

    for lock in (aiologic.RLock(), aiologic.Lock(), threading.Lock(), None):
        cv = aiologic.Condition(lock)
        made.append(cv)
        await _soak_contend(w, cv, wait, notify)


async def _soak_get(w: World, q: Any, timeout: Any) -> Any:
    try:
        await w.get(q, timeout=timeout)
    except aiologic.QueueEmpty:
        return False
    return True


async def _soak_put(w: World, q: Any) -> None:
    await w.put(q, 1)


async def _soak_queues(w: World, made: list[Any]) -> None:
    async def put_full(w: World, q: Any, timeout: Any) -> Any:
        try:
            await w.put(q, 2, timeout=timeout)
        except aiologic.QueueFull:
            return False
        return True

    async def get_one(w: World, q: Any) -> None:
        await w.get(q)

    for make in (
        aiologic.SimpleQueue,
        aiologic.SimpleLifoQueue,
        aiologic.Queue,
        aiologic.LifoQueue,
        aiologic.PriorityQueue,
    ):
        q = make()
        made.append(q)
        await _soak_contend(w, q, _soak_get, _soak_put)
        for n in range(100):  # puts nobody marks done
            await w.put(q, n)
            await w.get(q)
        if make not in (aiologic.SimpleQueue, aiologic.SimpleLifoQueue):
            bounded = make(maxsize=1)
            made.append(bounded)
            await w.put(bounded, 1)
            await _soak_contend(w, bounded, put_full, get_one)
            bounded.shutdown(immediate=True)
        q.shutdown()


async def _soak_synchronized(w: World, made: list[Any]) -> None:
    @aiologic.synchronized
    def work() -> int:
        return 1

    lock = aiologic.Lock()
    made.append(lock)
    with aiologic.synchronized(lock):
        pass
    assert work() == 1


def _soak_lasting() -> dict[str, Any]:
    """Primitives used by every round of a run: their memory must not grow."""
    return {
        "queue": aiologic.Queue(),
        "lock": aiologic.Lock(),
        "semaphore": aiologic.BoundedSemaphore(0, 10**6),
        "countdown": aiologic.CountdownEvent(),
        "revent": aiologic.REvent(),
        "limiter": aiologic.CapacityLimiter(1),
    }


async def _soak_use_lasting(w: World, lasting: dict[str, Any]) -> None:
    queue = lasting["queue"]
    for n in range(1000):  # puts nobody marks done
        await w.put(queue, n)
        await w.get(queue)
    await _soak_contend(w, queue, _soak_get, _soak_put)
    for name in ("lock", "limiter"):
        obj = lasting[name]
        assert await w.acquire(obj)
        await _soak_contend(w, obj, _soak_take, _soak_give)
    semaphore = lasting["semaphore"]
    for _ in range(100):
        semaphore.release()
    for _ in range(100):
        assert await w.acquire(semaphore, blocking=False)
    countdown = lasting["countdown"]
    countdown.up(100)
    for _ in range(100):
        countdown.down()
    revent = lasting["revent"]
    assert not await w.wait(revent, SOAK_TIMEOUT)
    revent.set()
    revent.clear()


_SOAK_PARTS = (
    _soak_locks,
    _soak_events,
    _soak_barriers,
    _soak_conditions,
    _soak_queues,
    _soak_synchronized,
)


async def _soak_other_world(w: World, other: str, made: list[Any]) -> None:
    """A task of world *other*, in a thread of its own, waits for a lock held
    here, then for an event set from here; then its loop (or hub) and thread
    end."""
    lock = aiologic.Lock()
    ev = aiologic.Event()
    made += [lock, ev]
    # The actor reaches them through `shared`, emptied once it is done: what
    # its world keeps of it afterwards (gevent keeps the frames of its hub's
    # teardown in a cycle) then keeps none of ours.
    shared = [lock, ev]

    async def body(w: World) -> None:
        async with w.hold(shared[0]):
            pass
        assert await w.wait(shared[1], DEADLINE)

    assert await w.acquire(lock)
    actor = Actor(other, body)
    # Plain polling from here (this task's loop or hub may stand still).
    wait_until(lambda: lock.waiting == 1, actors=[actor])
    w.release(lock)
    wait_until(lambda: ev.waiting == 1, actors=[actor])
    ev.set()
    actor.join()
    shared.clear()


def _aiologic_memory() -> int:
    """Bytes allocated by aiologic's own code and still alive (what the
    backends allocate when aiologic calls them is theirs: trio's heap of
    deadlines grows to a bound of its own, for one)."""
    import tracemalloc

    gc.collect()  # what other libraries keep in cycles goes
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, aiologic.__file__)]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


def _open_sockets() -> int:
    """Open sockets (what aiologic itself may open: eventlet portals).

    Other descriptors are left out: an eventlet hub whose thread ended keeps
    its epoll descriptor for good (eventlet's own, with or without aiologic).
    """
    count = 0
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:  # not Linux
        return 0
    for name in names:
        try:
            count += os.readlink(f"/proc/self/fd/{name}").startswith("socket:")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            pass
    return count


def _alive(refs: list[Any]) -> list[Any]:
    # Free-threaded builds may free an object a moment late (a reference
    # dropped by another thread is merged by its owner thread).
    deadline = time.monotonic() + 1.0
    while True:
        alive = [obj for obj in (ref() for ref in refs) if obj is not None]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.001)


@pytest.mark.skipif(
    sys.implementation.name != "cpython",
    reason="reference counting and tracemalloc: CPython only",
)
@pytest.mark.parametrize("world_name", SOAK_WORLDS)
def test_long_runs_keep_nothing(world_name: str) -> None:
    import tracemalloc

    # Imported here, in the main thread: eventlet imported first in a thread
    # that ends makes that thread hang in its exit once a hub ran elsewhere.
    _require(world_name)

    async def body(w: World) -> list[tuple[int, int]]:
        measures: list[tuple[int, int]] = []
        lasting = _soak_lasting()
        for round_ in range(SOAK_WARM_UP + SOAK_MEASURED):
            if round_ == SOAK_WARM_UP:
                tracemalloc.start()
            await _soak_use_lasting(w, lasting)
            made: list[Any] = []
            for part in _SOAK_PARTS:
                await part(w, made)
            # A thread of this world that waits once, is woken from this
            # thread, and ends (with its loop or hub).
            await _soak_other_world(w, w.name, made)
            refs = [weakref.ref(obj) for obj in made]
            del made
            alive = _alive(refs)
            assert not alive, f"round {round_}: kept alive with gc off: {alive}"
            if round_ >= SOAK_WARM_UP:
                measures.append((_aiologic_memory(), _open_sockets()))
                if _soak_flat([memory for memory, _ in measures]):
                    break
        return measures

    gc.disable()
    try:
        measures = run_in(world_name, body)
    finally:
        gc.enable()
        tracemalloc.stop()
    memory = [bytes_ for bytes_, _ in measures]
    sockets = [count for _, count in measures]
    assert _soak_flat(memory), f"still growing after {len(memory)} rounds: {memory}"
    # Never more than at the first measure (sockets left by earlier tests of
    # the process may close meanwhile).
    assert max(sockets[-SOAK_WINDOW:]) <= sockets[0], f"open sockets: {sockets}"


def _soak_flat(memory: list[int]) -> bool:
    if len(memory) < SOAK_WINDOW:
        return False
    window = memory[-SOAK_WINDOW:]
    half = SOAK_WINDOW // 2
    return min(window[half:]) - min(window[:half]) < SOAK_FLAT


# ============================================================================
# Stress: every world at once, random timeouts and random cancellation
# ============================================================================
#
# `pytest -m stress` runs this section alone (it is deselected by default).
# Each test starts its workers in several plain threads, two asyncio loops, a
# trio loop and a gevent and an eventlet hub thread (the worlds whose backend
# is installed), all released together by one barrier, lets them work for
# STRESS_SECONDS with the switch interval at 1 us, and checks its invariants
# on every entry and at the end. Joins have one global deadline, so a lost
# wake-up fails the test with the stacks of the stuck threads instead of
# hanging. TEST_STRESS_SECONDS and TEST_STRESS_SEED in the environment change
# the duration and the seed (the seed is in every failure message).

STRESS_SECONDS = float(os.environ.get("TEST_STRESS_SECONDS", "3"))
STRESS_DEADLINE = 30.0
STRESS_WORLDS = ("threading", "asyncio", "asyncio", "trio", "gevent", "eventlet")
STRESS_TASKS = 3  # tasks (threads, greenlets, coroutines) per world
STRESS_TIMEOUTS = (None, None, 0, 0.0005, 0.002, 0.01)
STRESS_CANCEL_DELAYS = (None, None, 0.0002, 0.001, 0.005)  # None: not cancelled

stress = pytest.mark.stress


def _installed(world: str) -> bool:
    for module in _REQUIRES[world]:
        try:
            _import(module)
        except pytest.skip.Exception:
            return False
    return True


@pytest.fixture
def fast_switching() -> Any:
    """The shortest switch interval CPython takes, for the length of a test."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


class StressRun:
    """One stress run: its worlds, its clock, its start barrier and its meter.

    Counters are guarded by `mutex`, a plain lock held for a few operations
    and never across a switch, so every world may take it.
    """

    def __init__(self, seconds: float = STRESS_SECONDS) -> None:
        import random

        self.worlds = [name for name in STRESS_WORLDS if _installed(name)]
        self.seconds = seconds
        self.seed = int(os.environ.get("TEST_STRESS_SEED") or random.randrange(1 << 30))
        self.stop_at = math.inf
        # Every actor and the test's own thread; the last to arrive starts
        # the clock.
        self.start = threading.Barrier(
            len(self.worlds) + 1, action=self._started, timeout=DEADLINE
        )
        self.mutex = threading.Lock()
        self.holders = {"hold": 0, "read": 0, "write": 0}
        self.violations: list[str] = []
        self.stats: dict[str, dict[str, int]] = {}

    def _started(self) -> None:
        self.stop_at = time.monotonic() + self.seconds

    def going(self) -> bool:
        return time.monotonic() < self.stop_at

    def rng(self, who: tuple[int, int]) -> Any:
        import random

        return random.Random(self.seed * 1000 + who[0] * 100 + who[1])

    def count(self, w: World, what: str) -> None:
        with self.mutex:
            stats = self.stats.setdefault(w.name, {})
            stats[what] = stats.get(what, 0) + 1

    def total(self, what: str) -> int:
        return sum(stats.get(what, 0) for stats in self.stats.values())

    def enter(self, role: str, limit: int = 1) -> None:
        """Count one more holder; the invariant must hold on every entry."""
        with self.mutex:
            holders = self.holders
            holders[role] += 1
            inside = sum(holders.values())
            if role == "write":
                ok = inside == 1
            elif role == "read":
                ok = holders["write"] == 0
            else:
                ok = inside <= limit
            if not ok:
                self.violations.append(f"{role} entered with {holders}")
        assert ok, f"{self}: {role} entered with {holders}"

    def leave(self, role: str) -> None:
        with self.mutex:
            self.holders[role] -= 1

    async def critical(self, w: World, role: str, limit: int = 1) -> None:
        self.enter(role, limit)
        try:
            self.count(w, "entered")
            await w.sleep(0)
        finally:
            self.leave(role)

    def run(self, worker: Body, *args: Any, tasks: int = STRESS_TASKS) -> list[Any]:
        """Start `tasks` workers per world, release them together, join all."""
        actors = [
            Actor(name, _stress_actor, self, serial, worker, tasks, args)
            for serial, name in enumerate(self.worlds)
        ]
        self.start.wait()
        return self.join(actors)

    def join(self, actors: list[Actor]) -> list[Any]:
        results = join_all(actors, STRESS_DEADLINE)
        assert self.violations == [], self
        assert self.holders == {"hold": 0, "read": 0, "write": 0}, self
        return results

    def __repr__(self) -> str:
        return f"<stress run seed={self.seed} worlds={self.worlds} stats={self.stats}>"


async def _stress_actor(
    w: World,
    run: StressRun,
    serial: int,
    worker: Body,
    tasks: int,
    args: tuple[Any, ...],
) -> list[Any]:
    run.start.wait()  # blocks this world's thread, before any task of it exists
    spawned = [w.spawn(worker, run, (serial, k), *args) for k in range(tasks)]
    return [await task.join() for task in spawned]


async def _maybe_cancel(
    w: World, delay: float | None, fn: Callable[[], Awaitable[Any]]
) -> bool:
    """Await fn(), cancelled after `delay` s (never if None or in a thread).

    True if it ran to the end, False if it was cancelled. The cancellation is
    the world's own: gevent/eventlet `Timeout`, a trio/anyio cancel scope, an
    asyncio task cancelled from a timer.
    """
    if delay is None or not w.cooperative:
        await fn()
        return True
    if isinstance(w, GeventWorld):
        with w.gevent.Timeout(delay, False):
            await fn()
            return True
        return False
    if isinstance(w, EventletWorld):
        with w.eventlet.Timeout(delay, False):
            await fn()
            return True
        return False
    if isinstance(w, StructuredWorld):
        with w.lib.module.move_on_after(delay):
            await fn()
            return True
        return False
    assert isinstance(w, AsyncioWorld)
    asyncio = w.asyncio
    task = asyncio.ensure_future(fn())
    handle = asyncio.get_running_loop().call_later(delay, task.cancel)
    try:
        await asyncio.wait({task})
    finally:
        handle.cancel()
    if task.cancelled():
        return False
    task.result()
    return True


# -- lock-likes -----------------------------------------------------------------


@dataclass(frozen=True)
class StressKind:
    name: str
    make: Callable[[], Any]
    limit: int
    free: Callable[[Any], bool]  # at the end: nobody holds it, nobody waits


def _lock_free(lock: Any) -> bool:
    return not lock.locked() and lock.owner is None and lock.waiting == 0


STRESS_LOCKS = [
    StressKind("Lock", aiologic.Lock, 1, _lock_free),
    StressKind(
        "RLock", aiologic.RLock, 1, lambda lock: _lock_free(lock) and lock.count == 0
    ),
    StressKind(
        "Semaphore(3)",
        lambda: aiologic.Semaphore(3),
        3,
        lambda sem: sem.value == 3 and sem.waiting == 0,
    ),
    StressKind(
        "BoundedSemaphore(2)",
        lambda: aiologic.BoundedSemaphore(2),
        2,
        lambda sem: sem.value == 2 and sem.waiting == 0,
    ),
    StressKind(
        "CapacityLimiter(2)",
        lambda: aiologic.CapacityLimiter(2),
        2,
        lambda lim: (
            lim.borrowed_tokens == 0
            and lim.available_tokens == 2
            and lim.waiting == 0
            and not lim.borrowers
        ),
    ),
    StressKind(
        "RCapacityLimiter(2)",
        lambda: aiologic.RCapacityLimiter(2),
        2,
        lambda lim: (
            lim.borrowed_tokens == 0 and lim.available_tokens == 2 and lim.waiting == 0
        ),
    ),
    StressKind(
        "RWLock",
        aiologic.RWLock,
        1,
        lambda rw: (
            not rw.reader.locked() and not rw.writer.locked() and rw.waiting == 0
        ),
    ),
]


async def _stress_hold_once(
    w: World, run: StressRun, obj: Any, kind: StressKind, rng: Any
) -> None:
    side, role = obj, "hold"
    if kind.name == "RWLock":
        role = rng.choice(("read", "read", "write"))
        side = obj.reader if role == "read" else obj.writer
    timeout = rng.choice(STRESS_TIMEOUTS)
    if timeout is None and rng.random() < 0.5:
        async with w.hold(side):
            await run.critical(w, role, kind.limit)
        return
    if not await w.acquire(side, timeout=timeout):
        run.count(w, "timed out")
        return
    try:
        if kind.name == "RLock":  # re-enter, several levels at once
            assert await w.acquire(side, count=2, blocking=False)
            assert await w.query(side, "count") == 3
            w.release(side, count=2)
        elif kind.name == "Lock":
            assert side.owner == w.identity()
        elif kind.name == "CapacityLimiter(2)":
            assert side.borrowed_tokens <= 2
        await run.critical(w, role, kind.limit)
    finally:
        w.release(side)


async def _stress_lock_worker(
    w: World, run: StressRun, who: tuple[int, int], obj: Any, kind: StressKind
) -> str:
    rng = run.rng(who)
    while run.going():
        delay = rng.choice(STRESS_CANCEL_DELAYS)
        done = await _maybe_cancel(
            w, delay, lambda: _stress_hold_once(w, run, obj, kind, rng)
        )
        if not done:
            run.count(w, "cancelled")
        await w.sleep(0)
    return "finished"


@stress
def test_stress_library_overrides_of_two_threads_keep_the_look_asking(
    monkeypatch: pytest.MonkeyPatch, fast_switching: None
) -> None:
    """Two threads override the async library at once, round after round
    from a fresh state: each finds the look at `_ASK` (the fast paths ask the
    full filter) once its own override is set."""
    _import("trio")
    monkeypatch.setattr(aiologic, "_overridden", [])
    monkeypatch.setattr(aiologic, "_checkpoint_look", None)
    assert aiologic._bind_sniffio()
    thread_local = sys.modules["sniffio"].thread_local
    tlocal = aiologic.lowlevel.current_async_library_tlocal
    stale: list[object] = []
    rounds = 0

    def override(start: threading.Barrier) -> None:
        start.wait(DEADLINE)
        tlocal.name = "asyncio"
        try:
            if aiologic._checkpoint_look is not aiologic._ASK:
                stale.append(aiologic._checkpoint_look)
        finally:
            tlocal.name = None

    stop_at = time.monotonic() + STRESS_SECONDS
    while time.monotonic() < stop_at and not stale:
        aiologic._overridden = []
        aiologic._checkpoint_look = thread_local
        start = threading.Barrier(2, timeout=DEADLINE)
        threads = [_Thread(functools.partial(override, start)) for _ in range(2)]
        assert [thread.result() for thread in threads] == [None, None]
        rounds += 1
    assert rounds and not stale, (rounds, stale)


@stress
@pytest.mark.parametrize("kind", STRESS_LOCKS, ids=lambda kind: kind.name)
def test_stress_lock_likes(kind: StressKind, fast_switching: None) -> None:
    obj = kind.make()
    run = StressRun()
    results = run.run(_stress_lock_worker, obj, kind)
    assert all(r == ["finished"] * STRESS_TASKS for r in results), results
    assert kind.free(obj), (obj, run)
    # Every world got in: FIFO hand-off starves no one.
    for name in run.worlds:
        assert run.stats.get(name, {}).get("entered", 0) > 0, run
    assert run.total("timed out") > 0, run
    if len(run.worlds) > 1:
        assert run.total("cancelled") > 0, run
    # Still usable.
    side = obj.writer if kind.name == "RWLock" else obj
    assert side.green_acquire(blocking=False)
    side.green_release()
    assert kind.free(obj), obj


# -- CapacityLimiter with its total changing under it ------------------------------


class _LimiterWatch:
    """Checks `borrowed <= total` on every observation of a limiter whose
    total changes under the workers.

    Lowering the total lets the holders finish: until borrowed is seen at or
    below the total again, it may not exceed the highest total it was lowered
    from. Observations and total changes happen under `run.mutex`.
    """

    def __init__(self, run: StressRun, limiter: Any) -> None:
        self.run = run
        self.limiter = limiter
        self.bound = 0.0

    def observe(self) -> None:
        borrowed = self.limiter.borrowed_tokens
        total = self.limiter.total_tokens
        if borrowed <= total:
            self.bound = 0.0
        elif borrowed > self.bound:
            self.run.violations.append(
                f"borrowed {borrowed} > total {total} (bound {self.bound})"
            )

    def set_total(self, value: float) -> None:
        with self.run.mutex:
            self.observe()
            old = self.limiter.total_tokens
            if value < old:
                self.bound = max(self.bound, old)
            self.limiter.total_tokens = value
            self.observe()


async def _stress_limiter_once(
    w: World, run: StressRun, limiter: Any, watch: _LimiterWatch, rng: Any
) -> None:
    timeout = rng.choice(STRESS_TIMEOUTS)
    green = w.name in GREEN_WORLDS
    named = rng.random() < 0.3
    borrower = object()
    if not named:
        got = await w.acquire(limiter, timeout=timeout)
    elif green:
        got = limiter.green_acquire_on_behalf_of(borrower, timeout=timeout)
    else:
        got = await limiter.async_acquire_on_behalf_of(borrower, timeout=timeout)
    if not got:
        run.count(w, "timed out")
        return
    try:
        with run.mutex:
            watch.observe()
        run.count(w, "entered")
        await w.sleep(0)
    finally:
        if not named:
            w.release(limiter)
        elif green:
            limiter.green_release_on_behalf_of(borrower)
        else:
            limiter.async_release_on_behalf_of(borrower)


async def _stress_limiter_worker(
    w: World,
    run: StressRun,
    who: tuple[int, int],
    limiter: Any,
    watch: _LimiterWatch,
) -> str:
    rng = run.rng(who)
    while run.going():
        delay = rng.choice(STRESS_CANCEL_DELAYS)
        done = await _maybe_cancel(
            w, delay, lambda: _stress_limiter_once(w, run, limiter, watch, rng)
        )
        if not done:
            run.count(w, "cancelled")
        await w.sleep(0)
    return "finished"


@stress
@LIMITERS
def test_stress_limiter_total_changing(factory: str, fast_switching: None) -> None:
    """Issue 12: random timeouts and cancellations in every world while the
    total moves among 0, 1, 2, 3 and inf: borrowed <= total at every
    observation (after a lowering, once the holders have left), and when the
    total settles every waiter gets in (no lost wake-up)."""
    import random

    run = StressRun()
    limiter = getattr(aiologic, factory)(2)
    watch = _LimiterWatch(run, limiter)
    actors = [
        Actor(
            name,
            _stress_actor,
            run,
            serial,
            _stress_limiter_worker,
            STRESS_TASKS,
            (limiter, watch),
        )
        for serial, name in enumerate(run.worlds)
    ]
    run.start.wait()
    rng = random.Random(run.seed)
    changes = 0
    while run.going():
        watch.set_total(rng.choice((0, 1, 1, 2, 3, math.inf)))
        changes += 1
        time.sleep(rng.choice((0, 0.0002, 0.001, 0.003)))  # pacing, not syncing
    watch.set_total(3)
    results = run.join(actors)
    assert all(r == ["finished"] * STRESS_TASKS for r in results), results
    assert changes > 10 and run.total("entered") > 0, run
    assert run.total("timed out") > 0, run
    assert limiter.borrowed_tokens == 0 and limiter.waiting == 0, (limiter, run)
    assert limiter.available_tokens == 3 and not limiter.borrowers


class _TicketBox:
    """Tickets made by producers and taken by consumers, counted exactly."""

    def __init__(self) -> None:
        self.mutex = threading.Lock()  # never held across a switch
        self.tickets = self.produced = self.consumed = self.done = 0
        self.closing = False

    def add(self) -> None:
        with self.mutex:
            self.tickets += 1
            self.produced += 1

    def take(self) -> bool:
        with self.mutex:
            if not self.tickets:
                return False
            self.tickets -= 1
            self.consumed += 1
            return True

    def any(self) -> bool:
        return self.tickets > 0

    def finished(self) -> None:
        with self.mutex:
            self.done += 1


async def _stress_condition_worker(
    w: World,
    run: StressRun,
    who: tuple[int, int],
    cv: Any,
    box: _TicketBox,
    exact_cv: Any,
    exact_box: _TicketBox,
) -> str:
    """Task 0 of each world sleeps on the condition, never cancelled, taking
    tickets until the test closes the run; the others produce tickets and wait
    for them with random timeouts and random cancellation, then, on a second
    condition, count notifications exactly."""
    rng = run.rng(who)
    if who[1] == 0:
        async with w.hold(cv):
            while not box.closing:
                await w.wait_for(cv, lambda: box.any() or box.closing)
                if box.take():
                    run.count(w, "slept")
        return "finished"

    async def once() -> None:
        if rng.random() < 0.4:
            async with w.hold(cv):
                box.add()
                if rng.random() < 0.2:
                    cv.notify_all()
                else:
                    cv.notify()
            return
        # "No timeout" waits until the end of the run at most.
        timeout = rng.choice(STRESS_TIMEOUTS)
        if timeout is None:
            timeout = max(0.0, run.stop_at - time.monotonic())
        async with w.hold(cv):
            try:
                got = await w.wait_for(
                    cv, box.any, timeout, delegate=rng.random() < 0.5
                )
                if got and box.take():
                    run.count(w, "consumed")
            except BaseException:
                if not _holds(w, cv):
                    run.violations.append(f"{w.name}: left wait() without the lock")
                raise
            if not _holds(w, cv):
                run.violations.append(f"{w.name}: returned without the lock")

    async def exactly() -> None:
        # Timeouts only, on a second condition: every notification counted
        # is taken by exactly one wait that returns True, even when its
        # timeout fires as the notify picks it; no look at the tickets first.
        async with w.hold(exact_cv):
            if rng.random() < 0.4:
                k = rng.choice((1, 1, 2))
                for _ in range(k):
                    exact_box.add()
                for _ in range(k - exact_cv.notify(k)):  # nobody to take them
                    if not exact_box.take():
                        run.violations.append(f"{w.name}: a ticket was taken twice")
            elif await w.wait(exact_cv, rng.choice(STRESS_TIMEOUTS[2:])):
                if not exact_box.take():
                    run.violations.append(f"{w.name}: True without a notification")
                run.count(w, "exact")

    while run.going():
        if not await _maybe_cancel(w, rng.choice(STRESS_CANCEL_DELAYS), once):
            run.count(w, "cancelled")
        await w.sleep(0)
    tail_end = time.monotonic() + 0.3
    while time.monotonic() < tail_end:
        await exactly()
        await w.sleep(0)
    box.finished()
    return "finished"


@stress
@pytest.mark.parametrize("lock_name", list(ANY_CONDITION_LOCKS))
def test_stress_condition(lock_name: str, fast_switching: None) -> None:
    """Producers notify, consumers wait with random timeouts and are cancelled
    at random, in every world at once, while one task per world sleeps on the
    condition without a timeout. Once the producers stop, the sleepers must
    get every ticket left with no further notify (a notification swallowed by
    a cancelled or timed-out waiter would leave one), and all is released.
    Then, with timeouts only, notify's count must match the True returns."""
    cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name]())
    box = _TicketBox()
    run = StressRun()
    if lock_name == "threading.Lock":  # it would block a green hub for good
        run.worlds = [n for n in run.worlds if n not in ("gevent", "eventlet")]
        run.start = threading.Barrier(
            len(run.worlds) + 1, action=run._started, timeout=DEADLINE
        )
    exact_cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name]())
    exact_box = _TicketBox()
    args = (_stress_condition_worker, STRESS_TASKS, (cv, box, exact_cv, exact_box))
    actors = [
        Actor(name, _stress_actor, run, serial, *args)
        for serial, name in enumerate(run.worlds)
    ]
    run.start.wait()
    sleepers = len(run.worlds)
    try:
        wait_until(
            lambda: box.done == sleepers * (STRESS_TASKS - 1),
            STRESS_SECONDS + STRESS_DEADLINE,
            actors,
        )
        if cv.lock is not None:
            # Without a lock a ticket can come between a sleeper's look at
            # the tickets and its wait: a Condition(None) cannot promise this.
            try:
                wait_until(
                    lambda: box.tickets == 0 and cv.waiting == sleepers,
                    STRESS_DEADLINE / 2,
                    actors,
                )
            except AssertionError:
                raise AssertionError(
                    f"lost wake-up: {box.tickets} tickets left while"
                    f" {cv.waiting} of {sleepers} sleepers wait on {cv!r}: {run}"
                ) from None
    finally:
        box.closing = True
        with cv:
            cv.notify_all()
    results = run.join(actors)
    assert all(r == ["finished"] * STRESS_TASKS for r in results), results
    assert cv.waiting == 0 and not cv, (cv, run)
    if lock_name in QUEUEING_LOCKS:
        assert cv.lock.waiting == 0, cv.lock
    assert box.consumed + box.tickets == box.produced, run
    # Each notification counted was taken by one wait that returned True.
    assert exact_box.tickets == 0 and run.total("exact") > 0, (exact_box, run)
    assert exact_cv.waiting == 0 and not exact_cv, exact_cv
    assert run.total("consumed") > 0 and run.total("slept") > 0, run
    if len(run.worlds) > 1:
        assert run.total("cancelled") > 0, run
    with cv:
        assert cv.notify() == 0


@stress
def test_stress_concurrent_notifies(fast_switching: None) -> None:
    """Review: notifiers in two threads at once (a lockless Condition),
    waiters in three with short timeouts: every notification counted is one
    wait returning True, and no waiter that left is kept in `waiting`."""
    cv = aiologic.Condition(None)
    stop = threading.Event()
    counted: list[int] = []
    returned: list[bool] = []

    def notifier() -> None:
        while not stop.is_set():
            counted.append(cv.notify())

    def waiter(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            returned.append(cv.wait(rng.choice((0.0, 1e-5, 1e-3))))

    threads = [threading.Thread(target=notifier, daemon=True) for _ in range(2)]
    threads += [
        threading.Thread(target=waiter, args=(i,), daemon=True) for i in range(3)
    ]
    for thread in threads:
        thread.start()
    time.sleep(STRESS_SECONDS)  # the length of the run, not a synchronisation
    stop.set()
    for thread in threads:
        thread.join(STRESS_DEADLINE)
        assert not thread.is_alive(), _stack_of(thread)
    assert sum(counted) == returned.count(True), (sum(counted), len(returned))
    assert cv.waiting == 0, cv


# -- RWLock ---------------------------------------------------------------------


async def _stress_rwlock_once(w: World, run: StressRun, rw: Any, rng: Any) -> None:
    role = rng.choice(("read", "read", "write"))
    side, other = (rw.reader, rw.writer) if role == "read" else (rw.writer, rw.reader)
    if rng.random() < 0.05:  # holding nothing, it may not release
        with pytest.raises(RuntimeError):
            w.release(side)
    timeout = rng.choice(STRESS_TIMEOUTS)
    if timeout is None and rng.random() < 0.5:
        async with w.hold(side):
            await run.critical(w, role)
        return
    if not await w.acquire(side, timeout=timeout):
        run.count(w, "timed out")
        return
    try:
        if role == "read" and rng.random() < 0.3:
            # Re-entry: at once, even past a waiting writer.
            assert await w.acquire(side, blocking=False)
            try:
                await run.critical(w, role)
            finally:
                w.release(side)
            run.count(w, "re-entered")
        if rng.random() < 0.1:  # the other side would wait for itself
            with pytest.raises(RuntimeError):
                await w.acquire(other, timeout=rng.choice((0, None)))
        await run.critical(w, role)
    finally:
        w.release(side)


async def _stress_rwlock_worker(
    w: World, run: StressRun, who: tuple[int, int], rw: Any
) -> str:
    rng = run.rng(who)
    while run.going():
        delay = rng.choice(STRESS_CANCEL_DELAYS)
        if not await _maybe_cancel(
            w, delay, lambda: _stress_rwlock_once(w, run, rw, rng)
        ):
            run.count(w, "cancelled")
        await w.sleep(0)
    return "finished"


@stress
def test_stress_rwlock(fast_switching: None) -> None:
    """Readers (re-entering, trying the writer side) and writers of every
    world, with timeouts and cancellations: a writer is always alone, no
    wake-up is lost (every worker ends, with the deadline), nothing is left
    held or queued."""
    rw = aiologic.RWLock()
    run = StressRun()
    results = run.run(_stress_rwlock_worker, rw)
    assert all(r == ["finished"] * STRESS_TASKS for r in results), results
    assert repr(rw).endswith("[unlocked, waiting=0]>"), (rw, run)
    assert rw.reader.waiting == rw.writer.waiting == 0
    for name in run.worlds:
        assert run.stats.get(name, {}).get("entered", 0) > 0, run
    assert run.total("timed out") > 0 and run.total("re-entered") > 0, run
    if len(run.worlds) > 1:
        assert run.total("cancelled") > 0, run
    assert rw.writer.green_acquire(blocking=False)
    rw.writer.green_release()
    assert rw.reader.green_acquire(blocking=False)
    rw.reader.green_release()


# -- queues ---------------------------------------------------------------------


class _QueueLedger:
    """What happened to every item a producer tried to put."""

    def __init__(self) -> None:
        # list.append is atomic everywhere, free-threading included.
        self.put: list[Any] = []  # the put returned: the item is in
        self.refused: list[Any] = []  # QueueFull/QueueShutDown: never in
        self.cancelled: list[Any] = []  # cancelled while putting: in or not
        self.got: list[Any] = []
        self.producers_done: list[int] = []


async def _stress_queue_worker(
    w: World, run: StressRun, who: tuple[int, int], q: Any, ledger: _QueueLedger
) -> str:
    rng = run.rng(who)
    if who[1] % 2 == 0:  # producer
        seq = 0
        while run.going():
            seq += 1
            item = (rng.random(), who, seq)
            timeout = rng.choice(STRESS_TIMEOUTS)

            async def put(item: Any = item, timeout: Any = timeout) -> None:
                try:
                    await w.put(q, item, timeout=timeout)
                except (aiologic.QueueFull, aiologic.QueueShutDown):
                    ledger.refused.append(item)
                    return
                ledger.put.append(item)

            if not await _maybe_cancel(w, rng.choice(STRESS_CANCEL_DELAYS), put):
                ledger.cancelled.append(item)
                run.count(w, "cancelled")
            await w.sleep(0)
        ledger.producers_done.append(1)
        return "finished"
    while True:  # consumer: until the queue is shut down and empty
        going = run.going()
        timeout = rng.choice(STRESS_TIMEOUTS) if going else None
        delay = rng.choice(STRESS_CANCEL_DELAYS) if going else None

        async def get(timeout: Any = timeout) -> None:
            try:
                item = await w.get(q, timeout=timeout)
            except aiologic.QueueEmpty:
                return
            ledger.got.append(item)

        try:
            if not await _maybe_cancel(w, delay, get):
                run.count(w, "cancelled")
        except aiologic.QueueShutDown:
            return "finished"
        await w.sleep(0)


STRESS_QUEUES = [
    ("SimpleQueue", lambda: aiologic.SimpleQueue()),
    ("Queue(maxsize=3)", lambda: aiologic.Queue(maxsize=3)),
    ("Queue()", lambda: aiologic.Queue()),
    ("PriorityQueue(maxsize=4)", lambda: aiologic.PriorityQueue(maxsize=4)),
    ("LifoQueue(maxsize=2)", lambda: aiologic.LifoQueue(maxsize=2)),
]


@stress
@pytest.mark.parametrize(
    "make", [make for _, make in STRESS_QUEUES], ids=[n for n, _ in STRESS_QUEUES]
)
def test_stress_queues(make: Callable[[], Any], fast_switching: None) -> None:
    q = make()
    ledger = _QueueLedger()
    run = StressRun()
    actors = [
        Actor(name, _stress_actor, run, serial, _stress_queue_worker, 4, (q, ledger))
        for serial, name in enumerate(run.worlds)
    ]
    run.start.wait()
    wait_until(lambda: not run.going(), STRESS_DEADLINE, actors)
    # Shut down while producers may still be blocked on a full queue.
    producers = 2 * len(run.worlds)
    wait_until(lambda: len(ledger.producers_done) >= producers // 2, actors=actors)
    q.shutdown()
    results = run.join(actors)
    assert all(r == ["finished"] * 4 for r in results), results

    left = []
    with pytest.raises(aiologic.QueueShutDown):
        while True:
            left.append(q.green_get(blocking=False))
    assert left == [] and len(q) == 0  # consumers drained a graceful shutdown
    seen: dict[Any, int] = {}
    for item in ledger.got + left:
        seen[item] = seen.get(item, 0) + 1
    duplicated = [item for item, n in seen.items() if n > 1]
    lost = set(ledger.put) - set(seen)
    ghosts = set(seen) - set(ledger.put) - set(ledger.cancelled)
    refused_but_in = set(ledger.refused) & set(seen)
    assert not duplicated, (duplicated, run)
    assert not lost, (sorted(lost), run)
    assert not ghosts and not refused_but_in, (ghosts, refused_but_in, run)
    assert len(ledger.put) > 100, run
    assert q.waiting == q.putting == q.getting == 0, q


class _WatchedQueue(aiologic.Queue):  # type: ignore[type-arg]
    """Records a put that lands beyond the largest bound ever set (4)."""

    __slots__ = ("overfull",)

    def _init(self, items: Any, maxsize: int) -> None:
        super()._init(items, maxsize)
        self.overfull: list[int] = []

    def _put(self, item: Any) -> None:
        if self._qsize() >= 4:
            self.overfull.append(self._qsize())
        super()._put(item)


async def _stress_janus_worker(
    w: World,
    run: StressRun,
    who: tuple[int, int],
    q: Any,
    ledger: _QueueLedger,
    peeked: list[Any],
) -> str:
    if who[1] % 3 == 0:  # producer, through the views half of the time
        if who[1] % 2 == 0:
            return await _stress_queue_worker(w, run, who, q, ledger)
        rng = run.rng(who)
        seq = 0
        while run.going():
            seq += 1
            item = (rng.random(), who, seq)
            try:
                if w.green:
                    q.sync_q.put(item, timeout=rng.choice((0.001, 0.01, None)))
                else:
                    await q.async_q.put(item)
            except (aiologic.QueueFull, aiologic.QueueShutDown):
                ledger.refused.append(item)
            else:
                ledger.put.append(item)
            await w.sleep(0)
        ledger.producers_done.append(1)
        return "finished"
    if who[1] % 3 == 1:  # consumer
        return await _stress_queue_worker(w, run, (who[0], 1), q, ledger)
    rng = run.rng(who)
    while True:  # peeker: until the queue is shut down and empty
        going = run.going()
        timeout = rng.choice(STRESS_TIMEOUTS) if going else None
        delay = rng.choice(STRESS_CANCEL_DELAYS) if going else None

        async def peek(timeout: Any = timeout) -> None:
            try:
                peeked.append(await w.call(q, "peek", timeout=timeout))
            except aiologic.QueueEmpty:
                pass

        try:
            if not await _maybe_cancel(w, delay, peek):
                run.count(w, "cancelled")
        except aiologic.QueueShutDown:
            return "finished"
        await w.sleep(0)


@stress
def test_stress_maxsize_peek_views_with_cancellation(fast_switching: None) -> None:
    """Producers (views and faces), consumers and peekers in every world,
    cancelled at random, while the test's thread moves maxsize between 1
    and 4: every item is got exactly once, no put lands beyond the largest
    bound, a peek sees only items put, and the slots balance at the end."""
    q = _WatchedQueue(maxsize=2)
    ledger = _QueueLedger()
    peeked: list[Any] = []
    run = StressRun()
    actors = [
        Actor(
            name,
            _stress_actor,
            run,
            serial,
            _stress_janus_worker,
            6,
            (q, ledger, peeked),
        )
        for serial, name in enumerate(run.worlds)
    ]
    run.start.wait()
    rng = run.rng((99, 99))
    changes = 0
    while run.going():
        q.maxsize = rng.randint(1, 4)
        changes += 1
        time.sleep(0.001)  # pacing only
    producers = 2 * len(run.worlds)
    wait_until(lambda: len(ledger.producers_done) >= producers // 2, actors=actors)
    q.shutdown()
    results = run.join(actors)
    assert all(r == ["finished"] * 6 for r in results), results
    assert len(q) == 0 and q.waiting == 0, q
    seen: dict[Any, int] = {}
    for item in ledger.got:
        seen[item] = seen.get(item, 0) + 1
    assert not [item for item, n in seen.items() if n > 1], run
    assert not set(ledger.put) - set(seen), run
    assert not set(seen) - set(ledger.put) - set(ledger.cancelled), run
    assert not set(peeked) - set(ledger.put) - set(ledger.cancelled), run
    assert not set(ledger.refused) & set(seen), run
    assert q.overfull == [], (q.overfull[:5], run)
    assert len(ledger.put) > 100 and peeked and changes > 10, run
    # Every slot is back: the bound in force, less nothing in use.
    assert q._free.value - q._debt == q.maxsize, (q._free, q._debt, q.maxsize)
    assert q._ready.value == 0


def _rounds(
    parties: list[Callable[[dict[str, Any]], Any]],
    new_round: Callable[[], dict[str, Any]],
    check: Callable[[dict[str, Any], list[Any]], None],
) -> int:
    """Run rounds of `parties` in plain threads released together by a
    barrier, for STRESS_SECONDS; `check` sees each round's state and the
    outcome of every party (a value or the Exception it raised)."""
    barrier = threading.Barrier(len(parties) + 1, timeout=STRESS_DEADLINE)
    rounds: list[dict[str, Any]] = []
    outcomes: list[list[Any]] = [[] for _ in parties]

    def party(index: int) -> None:
        fn = parties[index]
        while True:
            barrier.wait()
            if not rounds:
                return
            try:
                outcome = fn(rounds[-1])
            except Exception as exc:  # the outcome is checked
                outcome = exc
            outcomes[index].append(outcome)
            barrier.wait()

    threads = [
        threading.Thread(target=party, args=(i,), daemon=True)
        for i in range(len(parties))
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + STRESS_SECONDS
    try:
        while time.monotonic() < deadline:
            rounds.append(new_round())
            barrier.wait()  # go
            barrier.wait()  # all done
            check(rounds[-1], [outcome[-1] for outcome in outcomes])
    finally:
        rounds.clear()
        barrier.wait()  # an empty round list: leave
        for thread in threads:
            thread.join(STRESS_DEADLINE)
            assert not thread.is_alive(), _stack_of(thread)
    return len(outcomes[0])


@stress
@ALL_QUEUES
@pytest.mark.parametrize("immediate", [False, True], ids=["graceful", "immediate"])
def test_stress_put_racing_shutdown(
    factory: str, immediate: bool, fast_switching: None
) -> None:
    """Issue 13: rounds of one put, two getters and a shutdown in four
    threads. A put is ordered with the shutdown: before it (its item is got,
    or dropped by an immediate one) or after it (it raises); a getter gets
    QueueShutDown only once the item is gone."""
    shut_down = aiologic.QueueShutDown
    orders = {"before": 0, "after": 0}

    def get(state: dict[str, Any]) -> Any:
        return state["q"].green_get(timeout=DEADLINE)

    def put(state: dict[str, Any]) -> Any:
        return state["q"].green_put("item")

    def stop(state: dict[str, Any]) -> Any:
        return state["q"].shutdown(immediate=immediate)

    def check(state: dict[str, Any], outcomes: list[Any]) -> None:
        q = state["q"]
        got, put_outcome = outcomes[:2], outcomes[2]
        assert all(r == "item" or isinstance(r, shut_down) for r in got), outcomes
        assert put_outcome is None or isinstance(put_outcome, shut_down), outcomes
        received = got.count("item")
        if put_outcome is None:
            orders["before"] += 1
            assert received == 1 or (immediate and received == 0), outcomes
        else:
            orders["after"] += 1
            assert received == 0, outcomes
        assert len(q) == 0 and q.waiting == 0, (q, outcomes)

    rounds = _rounds(
        [get, get, put, stop],
        lambda: {"q": _make_queue(factory, maxsize=2)},
        check,
    )
    # The run did some work (a loaded machine does few rounds).
    assert rounds > 3, rounds
    assert orders["before"] and orders["after"], orders


@stress
@pytest.mark.parametrize("factory", ["SimpleQueue", "SimpleLifoQueue"])
def test_stress_puts_racing_clear(factory: str, fast_switching: None) -> None:
    """Rounds of two puts (no lock) and a clear() in three threads over a
    queue holding one item: the clear is atomic with each put (the put is
    before it, its item removed, or after it, its item kept), so the old
    item never survives and every item left has its ready unit."""

    def put(name: str) -> Callable[[dict[str, Any]], Any]:
        return lambda state: state["q"].put(name)

    def clear(state: dict[str, Any]) -> Any:
        return state["q"].clear()

    def check(state: dict[str, Any], outcomes: list[Any]) -> None:
        q = state["q"]
        assert outcomes == [None, None, None], outcomes
        left = list(q._items)
        assert set(left) <= {"a", "b"} and len(set(left)) == len(left), left
        assert q._ready.value == len(left) and q._gate == [], (q, left)

    rounds = _rounds(
        [put("a"), put("b"), clear],
        lambda: {"q": getattr(aiologic, factory)(["old"])},
        check,
    )
    assert rounds > 3, rounds


@stress
@pytest.mark.parametrize("factory", ["SimpleQueue", "SimpleLifoQueue"])
def test_stress_put_and_gets_racing_graceful_shutdown(
    factory: str, fast_switching: None
) -> None:
    """Review: rounds of two getters, a put (no lock) and a graceful shutdown
    in four threads over a queue holding one item: a put that went through
    is before the shutdown, so its item is got too; a getter is refused only
    once every item is gone, and nothing is left behind."""

    def get(state: dict[str, Any]) -> Any:
        return state["q"].green_get(timeout=DEADLINE)

    def put(state: dict[str, Any]) -> Any:
        return state["q"].put(2)

    def stop(state: dict[str, Any]) -> Any:
        return state["q"].shutdown()

    def check(state: dict[str, Any], outcomes: list[Any]) -> None:
        q = state["q"]
        got, put_outcome = outcomes[:2], outcomes[2]
        items = sorted(r for r in got if not isinstance(r, BaseException))
        assert all(
            not isinstance(r, BaseException) or isinstance(r, aiologic.QueueShutDown)
            for r in got
        ), outcomes
        if put_outcome is None:
            assert items == [1, 2], outcomes
        else:
            assert isinstance(put_outcome, aiologic.QueueShutDown), outcomes
            assert items == [1], outcomes
        assert outcomes[3] is None, outcomes
        assert len(q) == 0 and q.waiting == 0 and q._ready.value == 0, (q, outcomes)

    rounds = _rounds(
        [get, get, put, stop], lambda: {"q": getattr(aiologic, factory)([1])}, check
    )
    assert rounds > 3, rounds


@stress
@ALL_QUEUES
def test_stress_gets_racing_graceful_shutdown(
    factory: str, fast_switching: None
) -> None:
    """Review: rounds of three getters and a graceful shutdown in four
    threads over a queue made with two items (one batch of ready units,
    split by the first getter): no getter is refused while an item is left,
    so exactly two get one and the third gets QueueShutDown."""

    def get(state: dict[str, Any]) -> Any:
        return state["q"].green_get(timeout=DEADLINE)

    def stop(state: dict[str, Any]) -> Any:
        return state["q"].shutdown()

    def check(state: dict[str, Any], outcomes: list[Any]) -> None:
        q = state["q"]
        got = outcomes[:3]
        items = sorted(r for r in got if not isinstance(r, BaseException))
        refused = [r for r in got if isinstance(r, aiologic.QueueShutDown)]
        assert items == [1, 2] and len(refused) == 1, outcomes
        assert outcomes[3] is None, outcomes
        assert len(q) == 0 and q.waiting == 0, (q, outcomes)

    rounds = _rounds(
        [get, get, get, stop], lambda: {"q": _make_queue(factory, [1, 2])}, check
    )
    # The run did some work (a loaded machine does few rounds).
    assert rounds > 3, rounds


class _Flaky(aiologic.Queue):  # type: ignore[type-arg]
    """Hooks that raise now and then, having changed nothing."""

    def _init(self, items: Any, maxsize: int) -> None:
        super()._init(items, maxsize)
        self.gets = itertools.count()

    def _put(self, item: Any) -> None:
        if item % 5 == 0:
            raise KeyError(item)
        super()._put(item)

    def _get(self) -> Any:
        if next(self.gets) % 7 == 0:
            raise LookupError("not now")
        return super()._get()


@stress
def test_stress_queue_hooks_that_raise(fast_switching: None) -> None:
    """Issue 13: producers and consumers in four threads over a bounded queue
    whose hooks raise now and then: every item stored is got exactly once,
    and no slot or ready unit leaks."""
    q = _Flaky(maxsize=2)
    put: list[int] = []
    got: list[int] = []
    producers_done: list[int] = []
    deadline = time.monotonic() + STRESS_SECONDS
    start = threading.Barrier(4, timeout=STRESS_DEADLINE)

    def producer(base: int) -> None:
        start.wait()
        item = base
        while time.monotonic() < deadline:
            item += 1
            try:
                q.green_put(item, timeout=random.choice([None, 0, 0.001]))
            except (KeyError, aiologic.QueueFull):
                continue
            put.append(item)
        producers_done.append(base)

    def consumer() -> None:
        start.wait()
        while len(producers_done) < 2 or q:
            try:
                got.append(q.green_get(timeout=random.choice([0, 0.001, 0.01])))
            except (LookupError, aiologic.QueueEmpty):
                pass

    threads = [
        threading.Thread(target=producer, args=(base,), daemon=True)
        for base in (0, 10**9)
    ] + [threading.Thread(target=consumer, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(STRESS_DEADLINE + STRESS_SECONDS)
        assert not thread.is_alive(), _stack_of(thread)
    assert len(put) > 100
    assert sorted(got) == sorted(put)
    assert len(q) == 0 and q.waiting == 0 and q.unfinished_tasks == len(put)
    q.green_put(1, blocking=False)
    q.green_put(2, blocking=False)  # no slot leaked
    with pytest.raises(aiologic.QueueFull):
        q.green_put(3, blocking=False)
    left = []
    while len(left) < 2:
        try:
            left.append(q.green_get(blocking=False))
        except LookupError:  # the hook's turn to fail; the item stays
            pass
    assert sorted(left) == [1, 2]


# -- events, countdowns, barriers -----------------------------------------------


class _EventLedger:
    def __init__(self, waiters: int) -> None:
        self.sets: list[tuple[float, float]] = []  # (start, end) of each set()
        self.clears: list[tuple[float, float]] = []
        self.falses: list[tuple[float, float]] = []  # (start, end) of False waits
        self.trues = [0]
        self.waiters = waiters
        self.final: list[int] = []  # waiters in their final, untimed wait
        self.final_returned: list[int] = []
        self.setters_done: list[int] = []


async def _stress_event_worker(
    w: World, run: StressRun, who: tuple[int, int], ev: Any, ledger: _EventLedger
) -> str:
    rng = run.rng(who)
    reusable = isinstance(ev, aiologic.REvent)
    if who[1] == 0:  # one setter per world
        while run.going():
            if reusable and rng.random() < 0.5:
                start = time.monotonic()
                ev.clear()
                ledger.clears.append((start, time.monotonic()))
            elif reusable or rng.random() < 0.01:
                start = time.monotonic()
                ev.set()
                ledger.sets.append((start, time.monotonic()))
            await w.sleep(rng.choice((0, 0, 0.0005)))
        ledger.setters_done.append(1)
        return "finished"
    while run.going():
        timeout = rng.choice((0, 0.0005, 0.002, 0.01, 0.05))
        result: list[Any] = []

        async def wait(timeout: Any = timeout, result: Any = result) -> None:
            start = time.monotonic()
            value = await w.wait(ev, timeout)
            result.append((value, start, time.monotonic()))

        await _maybe_cancel(w, rng.choice(STRESS_CANCEL_DELAYS), wait)
        if result:
            value, start, end = result[0]
            if value:
                ledger.trues[0] += 1
            else:
                ledger.falses.append((start, end))
        await w.sleep(0)
    # The final wait: untimed, not cancelled; the test sets and clears at once
    # once every such waiter is published, and each of them must return True.
    ledger.final.append(1)
    value = await w.wait(ev)
    ledger.final_returned.append(1)
    assert value is True
    return "finished"


def _missed_sets(ledger: _EventLedger) -> list[Any]:
    """False waits that started after a set() that no clear() could undo.

    A wait that returned False over [t0, t1] contradicts a set() over [a, b]
    when b < t0 (the event was set before the wait began) and no clear() over
    [c, d] overlaps [a, t1] (none can have taken effect after the set). It is
    the sound half of "no waiter misses a set"; the other half, waiters
    present at a set() followed at once by clear(), is the final round.
    """
    import bisect

    sets = sorted(ledger.sets, key=lambda ab: ab[1])
    set_ends = [b for _, b in sets]
    latest_start: list[float] = []  # max set start among sets ending before
    for a, _ in sets:
        latest_start.append(max(a, latest_start[-1]) if latest_start else a)
    clears = sorted(ledger.clears)
    clear_starts = [c for c, _ in clears]
    latest_end: list[float] = []  # max clear end among clears starting before
    for _, d in clears:
        latest_end.append(max(d, latest_end[-1]) if latest_end else d)
    missed = []
    for t0, t1 in ledger.falses:
        i = bisect.bisect_left(set_ends, t0)
        if not i:
            continue
        j = bisect.bisect_left(clear_starts, t1)
        undone_until = latest_end[j - 1] if j else -math.inf
        if latest_start[i - 1] > undone_until:
            missed.append((t0, t1))
    return missed


@stress
@pytest.mark.parametrize("factory", ["Event", "REvent"])
def test_stress_events(factory: str, fast_switching: None) -> None:
    ev = getattr(aiologic, factory)()
    run = StressRun()
    waiters = len(run.worlds) * (STRESS_TASKS - 1)
    ledger = _EventLedger(waiters)
    actors = [
        Actor(
            name,
            _stress_actor,
            run,
            serial,
            _stress_event_worker,
            STRESS_TASKS,
            (ev, ledger),
        )
        for serial, name in enumerate(run.worlds)
    ]
    run.start.wait()
    wait_until(
        lambda: len(ledger.setters_done) == len(run.worlds), STRESS_DEADLINE, actors
    )
    if factory == "REvent":
        # Free the waiters still in a storm wait, then start from unset.
        start = time.monotonic()
        ev.set()
        ledger.sets.append((start, time.monotonic()))
        start = time.monotonic()
        ev.clear()
        ledger.clears.append((start, time.monotonic()))
        # Every waiter is in its final wait, and those that did not return at
        # once are published: set() then clear() must wake them all.
        try:
            wait_until(
                lambda: (
                    len(ledger.final) == waiters
                    and ev.waiting + len(ledger.final_returned) == waiters
                ),
                actors=actors,
            )
        except AssertionError:
            raise AssertionError(
                f"{waiters} waiters, {len(ledger.final)} in their final wait,"
                f" {len(ledger.final_returned)} returned, waiting={ev.waiting},"
                f" {ev!r}, {run}"
            ) from None
        ev.set()
        ev.clear()
    else:
        ev.set()
    run.join(actors)
    assert len(ledger.final_returned) == waiters
    assert ev.waiting == 0
    assert _missed_sets(ledger) == [], run
    assert ledger.trues[0] > 0 and ledger.sets, run


async def _stress_countdown_worker(
    w: World, run: StressRun, who: tuple[int, int], ce: Any, rounds: list[int]
) -> str:
    # Every worker waits for the countdown to reach 0, once per round; the test
    # thread counts down from another thread and raises it again at once.
    for r in range(len(rounds)):
        assert await w.wait(ce, DEADLINE) is True
        with run.mutex:
            rounds[r] += 1
        await w.wait_until(lambda r=r: ce.value or r + 1 == len(rounds))
    return "finished"


@stress
def test_stress_countdown(fast_switching: None) -> None:
    run = StressRun()
    rounds = [0] * 50
    parties = len(run.worlds) * STRESS_TASKS
    ce = aiologic.CountdownEvent(1)
    actors = [
        Actor(
            name,
            _stress_actor,
            run,
            s,
            _stress_countdown_worker,
            STRESS_TASKS,
            (ce, rounds),
        )
        for s, name in enumerate(run.worlds)
    ]
    run.start.wait()
    downers = 3
    for r in range(len(rounds)):
        wait_until(lambda: ce.waiting == parties, actors=actors)
        # Down from several threads at once, then up again right away: the
        # waiters present when the value hit 0 must all be woken anyway.
        ce.up(downers - 1)
        threads = [threading.Thread(target=ce.down) for _ in range(downers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DEADLINE)
        if r + 1 < len(rounds):
            ce.up()
        wait_until(lambda r=r: rounds[r] == parties, actors=actors)
    run.join(actors)
    assert rounds == [parties] * len(rounds)
    assert ce.value == 0 and ce.waiting == 0


async def _stress_barrier_worker(
    w: World, run: StressRun, who: tuple[int, int], barrier: Any, passes: list[Any]
) -> str:
    rng = run.rng(who)
    for generation in range(40):
        if rng.random() < 0.3:
            await w.sleep(rng.choice((0, 0.0005)))
        index = await w.wait(barrier, DEADLINE)
        passes.append((generation, index))
    return "finished"


@stress
@pytest.mark.parametrize("factory", ["Barrier", "RBarrier"])
def test_stress_barrier(factory: str, fast_switching: None) -> None:
    run = StressRun()
    parties = len(run.worlds) * STRESS_TASKS
    barrier = getattr(aiologic, factory)(parties)
    passes: list[Any] = []
    run.run(_stress_barrier_worker, barrier, passes)
    by_generation: dict[int, list[int]] = {}
    for generation, index in passes:
        by_generation.setdefault(generation, []).append(index)
    assert sorted(by_generation) == list(range(40))
    for indices in by_generation.values():
        assert sorted(indices) == list(range(parties))
    assert barrier.waiting == 0 and not barrier.broken


@stress
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_stress_fork_while_threads_make_primitives() -> None:
    """Issue 13: fork again and again while threads make primitives (which
    takes the module's creation lock); every child must do its work and exit
    in time. In a fresh interpreter, at the shortest switch interval."""
    result = _python(
        _FORK_HELPERS
        + f"""
    sys.setswitchinterval(1e-6)
    seconds = {STRESS_SECONDS!r}
    stop = threading.Event()
    made = [0] * 4

    class Slotted:
        __slots__ = ("__weakref__",)

    def maker(index):
        while not stop.is_set():
            aiologic.Queue().green_put(1)
            aiologic.Event().wait(1e-6)
            with aiologic.synchronized(Slotted()):
                pass
            made[index] += 1

    threads = [
        threading.Thread(target=maker, args=(i,), daemon=True) for i in range(4)
    ]
    for thread in threads:
        thread.start()
    statuses = {{}}
    forks = 0
    end = time.monotonic() + seconds
    while (
        (time.monotonic() < end or forks < 10)
        and "hung" not in statuses
        and statuses.get("cpython#144513", 0) < 3
    ):
        status = fork_and_wait(5.0)
        if status == "hung" and FREE_THREADED:
            line = hung_line()
            if "_creation_lock" not in line:
                status = "cpython#144513"  # no bug of ours: go on
                stacks[-1] = line
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        forks += 1
    stop.set()
    for thread in threads:
        thread.join(DEADLINE)
    print(json.dumps({{
        "stacks": stacks,
        "statuses": statuses,
        "made": min(made),
        "alive": sum(thread.is_alive() for thread in threads),
    }}))
    """,
    )
    statuses = result["statuses"]
    assert set(statuses) <= {"0", "cpython#144513"}, "\n".join(result["stacks"])
    assert statuses["0"] >= 10 and result["made"] > 0 and result["alive"] == 0


# ============================================================================
# Faults: loops that die, cancellation at the worst moment, interrupts
# ============================================================================


@pytest.mark.parametrize("stage", ["stopped", "closed"])
def test_fault_asyncio_loop_closed_with_wake_in_flight(stage: str) -> None:
    """A set() whose waiter belongs to a loop that stopped (the wake-up is
    queued and never runs) or closed (the wake-up cannot even be queued): the
    setter returns normally and the other waiters, in other worlds, are woken."""
    import asyncio

    ev = aiologic.Event()
    loop = asyncio.new_event_loop()
    parked = threading.Event()
    woken = threading.Event()
    errors: list[BaseException] = []

    async def waiter() -> Any:
        return await ev

    def loop_thread() -> None:
        try:
            task = loop.create_task(waiter())
            loop.run_until_complete(asyncio.sleep(0))  # the task publishes, parks
            assert not task.done()
            if stage == "closed":
                loop.close()
            parked.set()
            if stage == "stopped":
                assert woken.wait(DEADLINE)
                loop.close()  # the queued wake-up is dropped with the loop
            task._log_destroy_pending = False  # never finishes, by design
        except BaseException as exc:
            errors.append(exc)
            parked.set()

    thread = threading.Thread(target=loop_thread, daemon=True)
    thread.start()
    assert parked.wait(DEADLINE) and not errors, errors

    async def other(w: World) -> Any:
        return await w.wait(ev, DEADLINE)

    others = [Actor("threading", other), Actor("asyncio", other)]
    wait_until(lambda: ev.waiting == 3, actors=others)
    ev.set()  # must not raise, whatever the dead loop's state
    woken.set()
    assert join_all(others) == [True, True]
    thread.join(DEADLINE)
    assert not thread.is_alive() and not errors, errors
    assert ev.waiting == 0 and ev.is_set()


def test_fault_asyncio_loop_closed_under_a_semaphore_hand_off() -> None:
    """A task of a closed loop cannot take a unit: it goes to the other
    waiter or back to the semaphore, and nothing raises in the releaser."""
    import asyncio

    sem = aiologic.Semaphore(0)
    loop = asyncio.new_event_loop()
    task = loop.create_task(sem.async_acquire())
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    task._log_destroy_pending = False
    assert sem.waiting == 1

    async def other(w: World) -> Any:
        return await w.acquire(sem, timeout=DEADLINE)

    actor = Actor("threading", other)
    wait_until(lambda: sem.waiting == 2, actors=[actor])
    sem.release(2)
    assert actor.join() is True
    assert sem.waiting == 0 and sem.value == 1


DEAD_WAITERS = ("asyncio-closed", "trio-finished", "gevent-destroyed", "eventlet-ended")


def _abandoned_waiter(
    dead: str,
    green: Callable[[], Any],
    make_coro: Callable[[], Coroutine[Any, Any, Any]],
    parked: Callable[[], bool],
) -> list[Any]:
    """In a thread of its own, park a waiter until parked() holds, then make
    its scheduler go away for good without cancelling it: the loop closed,
    the trio run finished, the gevent hub destroyed, the eventlet thread
    ended. Returns what keeps the waiter from being collected."""
    keep: list[Any] = []
    # Imported here: a thread that first imports eventlet never ends.
    backend = _import(dead.split("-")[0])

    def in_thread() -> None:
        deadline = time.monotonic() + DEADLINE
        if dead == "asyncio-closed":
            loop = backend.new_event_loop()
            task = loop.create_task(make_coro())
            while not parked() and time.monotonic() < deadline:
                loop.run_until_complete(backend.sleep(0.001))
            loop.close()  # stopped and closed, its task still pending
            task._log_destroy_pending = False
            keep.append(task)
        elif dead == "trio-finished":

            async def main() -> None:
                coro = make_coro()
                coro.send(None)  # runs until it parks; never resumed by trio
                keep.append(coro)

            backend.run(main)
        elif dead == "gevent-destroyed":
            hub = backend.get_hub()
            keep.append(backend.spawn(green))
            while not parked() and time.monotonic() < deadline:
                backend.sleep(0.001)
            hub.destroy(destroy_loop=True)
        else:
            keep.append(backend.spawn(green))
            while not parked() and time.monotonic() < deadline:
                backend.sleep(0.001)
        assert parked()

    outcome = Outcome()
    thread = threading.Thread(target=outcome.capture, args=((), in_thread), daemon=True)
    thread.start()
    thread.join(DEADLINE)
    assert not thread.is_alive()
    outcome.unwrap()
    gc.collect()  # what the ended thread dropped goes now (eventlet's portal)
    return keep


def _close_abandoned(keep: list[Any]) -> None:
    # A waiter that is collected, or whose coroutine is closed, leaves at
    # last; it must change nothing.
    for item in keep:
        if inspect.iscoroutine(item):
            item.close()


def _past_a_dead_waiter(
    dead: str,
    keep: list[Any],
    green: Callable[[], Any],
    make_coro: Callable[[], Coroutine[Any, Any, Any]],
    waiting: Callable[[], int],
    release: Callable[[], Any],
    live: Body | None = None,
    *args: Any,
) -> Any:
    """The caller holds a primitive. Park a waiter that can never run again
    on it (`_abandoned_waiter`, by its green and async faces; what keeps it
    is added to *keep*), then, given *live*, a live one behind it (an Actor
    in a thread running live(w, *args)); then call release(). Returns what
    the live one returned. waiting() counts the waiters parked."""
    keep += _abandoned_waiter(dead, green, make_coro, lambda: waiting() == 1)
    if live is None:
        release()
        return None
    actor = Actor("threading", live, *args)
    wait_until(lambda: waiting() == 2, actors=[actor])
    release()
    return actor.join()


async def _acquires(w: World, primitive: Any) -> bool:
    """A live waiter: acquires *primitive* (with the deadline), releases it."""
    assert await w.acquire(primitive, timeout=DEADLINE)
    w.release(primitive)
    return True


@pytest.mark.parametrize("dead", DEAD_WAITERS)
def test_fault_lock_passes_over_a_waiter_that_can_no_longer_run(dead: str) -> None:
    """A release whose head waiter can never run again (its loop closed, its
    run or hub gone) hands the lock to the next waiter, or frees it."""
    lock = aiologic.Lock()
    keep: list[Any] = []
    faces = (lock.green_acquire, lock.async_acquire, lambda: lock.waiting)
    assert lock.green_acquire()
    live = _past_a_dead_waiter(dead, keep, *faces, lock.green_release, _acquires, lock)
    assert live is True
    assert not lock.locked() and lock.waiting == 0

    # The same with nobody behind it: the lock ends up free.
    assert lock.green_acquire()
    _past_a_dead_waiter(dead, keep, *faces, lock.green_release)
    assert not lock.locked() and lock.owner is None and lock.waiting == 0
    _close_abandoned(keep)
    assert not lock.locked() and lock.waiting == 0
    assert lock.green_acquire(blocking=False)
    lock.green_release()


def test_fault_dead_waiter_closed_while_its_wake_up_is_taken_back() -> None:
    """The releaser found the wake-up of a closed loop's task undeliverable
    and is about to take the lock back when that task's coroutine is closed
    in another thread (as when it is collected): exactly one of the two
    passes the lock on, to the waiter behind."""
    lock = aiologic.Lock()
    held, go = threading.Event(), threading.Event()
    pause = Pause(aiologic._Ticket._take_back, "self._pending.remove(False)")
    outcome = Outcome()

    def holder() -> None:
        assert lock.green_acquire()
        held.set()
        assert go.wait(DEADLINE)
        with pause.this_thread():
            lock.green_release()

    releaser = threading.Thread(target=outcome.capture, args=((), holder))
    releaser.start()
    assert held.wait(DEADLINE)
    keep: list[Any] = []

    def release() -> None:
        go.set()
        pause.wait_reached()
        keep[0].get_coro().close()  # the waiter leaves: it owns the lock, passes it

    faces = (lock.green_acquire, lock.async_acquire, lambda: lock.waiting)
    live = _past_a_dead_waiter("asyncio-closed", keep, *faces, release, _acquires, lock)
    assert live is True
    pause.release()
    releaser.join(DEADLINE)
    assert not releaser.is_alive()
    outcome.unwrap()
    assert not lock.locked() and lock.waiting == 0
    assert lock.green_acquire(blocking=False)
    lock.green_release()


@pytest.mark.parametrize("dead", DEAD_WAITERS)
def test_fault_semaphore_permit_survives_a_waiter_that_can_no_longer_run(
    dead: str,
) -> None:
    sem = aiologic.Semaphore(0)
    keep: list[Any] = []
    faces = (sem.green_acquire, sem.async_acquire, lambda: sem.waiting)

    async def acquires(w: World) -> Any:
        return await w.acquire(sem, timeout=DEADLINE)

    assert _past_a_dead_waiter(dead, keep, *faces, sem.release, acquires) is True
    assert sem.value == 0 and sem.waiting == 0

    _past_a_dead_waiter(dead, keep, *faces, sem.release)
    assert sem.value == 1 and sem.waiting == 0
    _close_abandoned(keep)
    assert sem.value == 1 and sem.waiting == 0


@pytest.mark.parametrize("dead", DEAD_WAITERS)
def test_fault_queue_item_survives_a_getter_that_can_no_longer_run(
    dead: str,
) -> None:
    queue = aiologic.Queue()
    keep: list[Any] = []
    faces = (queue.green_get, queue.async_get, lambda: queue.waiting)
    _past_a_dead_waiter(dead, keep, *faces, lambda: queue.green_put("item"))
    assert queue.green_get(blocking=False) == "item"
    assert queue.waiting == 0 and len(queue) == 0
    _close_abandoned(keep)
    assert queue.waiting == 0 and len(queue) == 0


@pytest.mark.parametrize(
    "factory", ["Queue", "LifoQueue", "PriorityQueue", "SimpleQueue"]
)
@pytest.mark.parametrize("dead", DEAD_WAITERS)
def test_fault_queue_item_goes_past_a_getter_that_can_no_longer_run(
    dead: str, factory: str
) -> None:
    """The item put for a getter that can never run again goes to the getter
    behind it; with nobody behind, it stays in the queue."""
    q = getattr(aiologic, factory)()
    keep: list[Any] = []
    faces = (q.green_get, q.async_get, lambda: q.getting)

    async def gets(w: World) -> Any:
        return await w.get(q, timeout=DEADLINE)

    assert _past_a_dead_waiter(dead, keep, *faces, lambda: q.green_put(1), gets) == 1
    assert q.getting == 0 and len(q) == 0
    _past_a_dead_waiter(dead, keep, *faces, lambda: q.green_put(2))
    assert q.getting == 0 and len(q) == 1
    _close_abandoned(keep)
    assert q.green_get(blocking=False) == 2
    assert q.getting == 0 and len(q) == 0


@pytest.mark.parametrize("factory", ["Queue", "LifoQueue", "PriorityQueue"])
@pytest.mark.parametrize("dead", DEAD_WAITERS)
def test_fault_queue_slot_goes_past_a_putter_that_can_no_longer_run(
    dead: str, factory: str
) -> None:
    """The slot freed for a putter that can never run again goes to the
    putter behind it; with nobody behind, it stays free."""
    q = getattr(aiologic, factory)(maxsize=1)
    q.green_put(0)
    keep: list[Any] = []
    faces = (lambda: q.green_put(-1), lambda: q.async_put(-1), lambda: q.putting)
    got: list[Any] = []

    async def puts(w: World) -> Any:
        await w.put(q, 1, timeout=DEADLINE)
        return True

    release = lambda: got.append(q.green_get(blocking=False))
    assert _past_a_dead_waiter(dead, keep, *faces, release, puts) is True
    assert got == [0] and q.putting == 0 and len(q) == 1
    _past_a_dead_waiter(dead, keep, *faces, release)
    assert got == [0, 1] and q.putting == 0 and len(q) == 0
    _close_abandoned(keep)
    q.green_put(2, blocking=False)  # the slot is free
    assert q.putting == 0 and list(q.green_get(blocking=False) for _ in "x") == [2]


@pytest.mark.parametrize("factory", ["CapacityLimiter", "RCapacityLimiter"])
@pytest.mark.parametrize("dead", DEAD_WAITERS)
def test_fault_limiter_token_goes_past_a_waiter_that_can_no_longer_run(
    dead: str, factory: str
) -> None:
    """A token given back, or made by a raised total, is admitted to the
    waiter behind one that can never run again; with nobody behind, it stays
    free. The dead waiter is never left counted as a borrower."""
    limiter = getattr(aiologic, factory)(1)
    keep: list[Any] = []
    faces = (limiter.green_acquire, limiter.async_acquire, lambda: limiter.waiting)
    release = lambda: limiter.green_release_on_behalf_of("holder")
    assert limiter.green_acquire_on_behalf_of("holder")
    live = _past_a_dead_waiter(dead, keep, *faces, release, _acquires, limiter)
    assert live is True
    assert limiter.borrowed_tokens == 0 and limiter.waiting == 0

    # A raised total admits past it too.
    limiter.total_tokens = 0
    raise_total = lambda: setattr(limiter, "total_tokens", 1)
    live = _past_a_dead_waiter(dead, keep, *faces, raise_total, _acquires, limiter)
    assert live is True
    assert limiter.borrowed_tokens == 0 and limiter.waiting == 0

    # Nobody behind: the token ends up free.
    assert limiter.green_acquire_on_behalf_of("holder")
    _past_a_dead_waiter(dead, keep, *faces, release)
    assert dict(limiter.borrowers) == {} and limiter.waiting == 0
    _close_abandoned(keep)
    assert limiter.borrowed_tokens == 0 and limiter.available_tokens == 1


def _dead_borrower_admitted(limiter: Any) -> tuple[list[Any], Pause]:
    """A holder's release admits B, a waiter that can no longer run; the
    releaser is paused once B is admitted, before its wake-up."""
    assert limiter.green_acquire_on_behalf_of("holder")
    keep = _abandoned_waiter(
        "asyncio-closed",
        lambda: None,
        lambda: limiter.async_acquire_on_behalf_of("B"),
        lambda: limiter.waiting == 1,
    )
    pause = Pause(aiologic.CapacityLimiter._release, "self._wake(woken)")
    pause.start(lambda: limiter.green_release_on_behalf_of("holder"))
    assert dict(limiter.borrowers) == {"B": 1}
    return keep, pause


def test_fault_limiter_dead_waiter_of_a_borrower_that_reentered() -> None:
    """An RCapacityLimiter waiter for a named borrower that got in by another
    call meanwhile is admitted on top of it; if its wake-up cannot be
    delivered, only its own depth is taken back."""
    limiter = aiologic.RCapacityLimiter(1)
    # B then gets in by another call.
    keep, pause = _dead_borrower_admitted(limiter)
    limiter.total_tokens = 2
    assert limiter.green_acquire_on_behalf_of("B", blocking=False)
    assert dict(limiter.borrowers) == {"B": 2}
    pause.join()
    assert dict(limiter.borrowers) == {"B": 1} and limiter.waiting == 0
    limiter.green_release_on_behalf_of("B")
    assert limiter.borrowed_tokens == 0
    _close_abandoned(keep)


def test_fault_limiter_dead_waiter_of_a_borrower_released_meanwhile() -> None:
    """A waiter for a named borrower is admitted, and before the releaser
    finds its wake-up undeliverable, another call releases that borrower:
    taking the admission back finds nothing to undo and raises nothing."""
    limiter = aiologic.CapacityLimiter(1)
    keep, pause = _dead_borrower_admitted(limiter)
    limiter.green_release_on_behalf_of("B")
    assert dict(limiter.borrowers) == {}
    assert pause.join() is None
    assert limiter.borrowed_tokens == 0 and limiter.waiting == 0
    assert limiter.available_tokens == 1
    _close_abandoned(keep)


def test_fault_limiter_dead_waiter_closed_while_its_wake_up_is_taken_back() -> None:
    """The releaser found the wake-up of a closed loop's task undeliverable
    and is about to take its admission back when that task's coroutine is
    closed (as when it is collected): exactly one of the two lets it out,
    and the token goes to the waiter behind."""
    limiter = aiologic.CapacityLimiter(1)
    assert limiter.green_acquire_on_behalf_of("holder")
    keep: list[Any] = []
    pause = Pause(aiologic._Ticket._take_back, "self._pending.remove(False)")

    def release() -> None:
        pause.start(lambda: limiter.green_release_on_behalf_of("holder"))
        keep[0].get_coro().close()  # the waiter leaves: its admission is its own

    faces = (limiter.green_acquire, limiter.async_acquire, lambda: limiter.waiting)
    live = _past_a_dead_waiter(
        "asyncio-closed", keep, *faces, release, _acquires, limiter
    )
    assert live is True
    assert pause.join() is None
    assert limiter.borrowed_tokens == 0 and limiter.waiting == 0
    assert limiter.available_tokens == 1


@pytest.mark.parametrize("dead", DEAD_WAITERS)
def test_fault_rwlock_passes_over_a_waiter_that_can_no_longer_run(dead: str) -> None:
    """A waiter let in whose wake-up cannot be delivered (its loop closed, its
    run or hub gone) does not keep its side: a dead writer at the head lets
    the reader behind it in, a dead reader leaves the live one reading."""
    rw = aiologic.RWLock()
    keep: list[Any] = []
    for side in (rw.writer, rw.reader):
        assert rw.writer.green_acquire()
        faces = (side.green_acquire, side.async_acquire, lambda: rw.waiting)
        release = rw.writer.green_release
        live = _past_a_dead_waiter(dead, keep, *faces, release, _acquires, rw.reader)
        assert live is True
        assert not rw.reader.locked() and not rw.writer.locked()
        assert rw.waiting == 0
    _close_abandoned(keep)
    assert repr(rw).endswith("[unlocked, waiting=0]>")
    assert rw.writer.green_acquire(blocking=False)
    rw.writer.green_release()


async def _enter_at_once(cv: Any, green: bool) -> None:
    # Take a Condition's free lock without a checkpoint (a non-blocking
    # acquire has none), so that the trio world's one step reaches the wait.
    lock = cv.lock
    if isinstance(lock, (aiologic.Lock, aiologic.Semaphore)):
        if green:
            assert lock.green_acquire(blocking=False)
        else:
            assert await lock.async_acquire(blocking=False)
    elif lock is not None:
        assert lock.acquire(False)


@pytest.mark.parametrize("lock_name", list(ANY_CONDITION_LOCKS))
@pytest.mark.parametrize("dead", DEAD_WAITERS)
def test_fault_condition_notify_passes_over_a_waiter_that_can_no_longer_run(
    dead: str, lock_name: str
) -> None:
    """A waiter that can never run again is not counted by notify, and the
    notification goes to the waiter behind it; the lock is never left with
    it."""
    cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name]())

    def green() -> Any:
        drive(_enter_at_once(cv, green=True))
        return cv.wait()

    async def coro() -> Any:
        await _enter_at_once(cv, green=False)
        return await cv

    def parked() -> bool:
        return cv.waiting == 1 and not cv  # type: ignore[no-any-return]

    async def other(w: World) -> Any:
        async with w.hold(cv):
            return await w.wait(cv, DEADLINE)

    def settled() -> bool:
        lock = cv.lock
        return cv.waiting == 0 and (lock is None or not lock.locked())

    keep: list[Any] = []
    # notify and notify_all count only those that can run.
    for notify in (cv.notify, cv.notify_all):
        keep += _abandoned_waiter(dead, green, coro, parked)
        actor = Actor("threading", other)
        wait_until(lambda: cv.waiting == 2, actors=[actor])
        with cv:
            assert notify() == 1
        assert actor.join() is True
        assert settled()

    # Nobody behind it: nothing is woken.
    keep += _abandoned_waiter(dead, green, coro, parked)
    with cv:
        assert cv.notify() == 0
    assert settled()
    if lock_name in QUEUEING_LOCKS:
        assert cv.lock.waiting == 0


@pytest.mark.parametrize("lock_name", QUEUEING_LOCKS)
@pytest.mark.parametrize(
    "dead", ["asyncio-closed", "gevent-destroyed", "eventlet-ended"]
)
def test_fault_condition_notified_waiter_that_can_no_longer_run_by_the_release(
    dead: str, lock_name: str
) -> None:
    """notify queues a live waiter on the lock; its loop or hub goes away
    before the lock is released: the release passes over it, and its
    notification goes to the waiter behind it."""
    _import(dead.split("-")[0])  # skipped here, not in the thread below
    cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name]())
    notified = threading.Event()

    def green() -> Any:
        drive(_enter_at_once(cv, green=True))
        return cv.wait()

    async def coro() -> Any:
        await _enter_at_once(cv, green=False)
        return await cv

    async def other(w: World) -> Any:
        async with w.hold(cv):
            return await w.wait(cv, DEADLINE)

    keep: list[Any] = []
    abandon = threading.Thread(
        target=lambda: keep.extend(
            _abandoned_waiter(dead, green, coro, notified.is_set)
        ),
        daemon=True,
    )
    abandon.start()
    wait_until(lambda: cv.waiting == 1 and not cv)
    actor = Actor("threading", other)
    wait_until(lambda: cv.waiting == 2, actors=[actor])
    with cv:
        assert cv.notify() == 1  # the first waiter: queued on the lock
        assert cv.lock.waiting == 1
        notified.set()
        abandon.join(DEADLINE)  # its world is gone now
        assert not abandon.is_alive() and keep
    assert actor.join() is True
    assert cv.waiting == 0 and not cv.lock.locked() and cv.lock.waiting == 0


@pytest.mark.parametrize("lock_name", list(ANY_CONDITION_LOCKS))
@pytest.mark.parametrize("notified", [False, True], ids=["waiting", "notified"])
def test_fault_condition_waiter_closed_once_its_loop_is_gone(
    lock_name: str, notified: bool
) -> None:
    """A coroutine waiting in ``async with cv:`` that is closed once its loop
    is closed (what the garbage collector does to a task left pending there)
    closes quietly: it takes no lock back (that could mean waiting), its
    ``async with`` leaves the lock to whoever holds it, and a notification
    it got goes to the next waiter."""

    cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name]())

    async def dead() -> None:
        async with cv:
            await cv

    async def other(w: World) -> Any:
        async with w.hold(cv):
            return await w.wait(cv, DEADLINE)

    loop, task = _dead_cv_waiter(cv, dead)
    actor = Actor("threading", other)
    wait_until(lambda: cv.waiting == 2, actors=[actor])
    lock = cv.lock
    with cv:
        if notified:  # its loop is still open: it is woken, or queued
            assert cv.notify() == 1
        loop.close()
        task._log_destroy_pending = False
        assert task.get_coro().close() is None  # nothing raised
        if lock is not None:
            assert lock.locked()  # still ours
        if not notified:
            assert cv.notify() == 1
    assert actor.join() is True
    assert cv.waiting == 0
    if lock is not None:
        assert not lock.locked()
    if lock_name in QUEUEING_LOCKS:
        assert lock.waiting == 0


def _close_elsewhere(coro: Any, where: str) -> None:
    """Close *coro* as the garbage collector would: with no loop running, or
    from inside a task of another loop of this thread."""
    import asyncio

    if where == "no loop":
        assert coro.close() is None  # nothing raised
        return

    async def closer() -> None:
        assert coro.close() is None

    asyncio.run(closer())


@pytest.mark.parametrize("where", ["no loop", "another loop"])
@pytest.mark.parametrize("lock_name", ["Lock", "RLock", "BinarySemaphore"])
def test_fault_lock_holder_closed_once_its_loop_is_gone(
    lock_name: str, where: str
) -> None:
    """A coroutine holding a lock in ``async with`` whose loop is closed
    under it, then closed itself (what the garbage collector does to a task
    left pending there), leaves its blocks as the holder: the lock goes to
    the next waiter, as it would had the task been cancelled."""
    import asyncio

    lock = getattr(aiologic, lock_name)()

    async def holder() -> None:
        async with lock:
            async with contextlib.AsyncExitStack() as stack:
                if lock_name == "RLock":  # two levels, two exits
                    await stack.enter_async_context(lock)
                await asyncio.get_running_loop().create_future()

    loop = asyncio.new_event_loop()
    task = loop.create_task(holder())
    deadline = time.monotonic() + DEADLINE
    while not lock.locked() and time.monotonic() < deadline:
        loop.run_until_complete(asyncio.sleep(0.001))
    actor = Actor("threading", _acquires, lock)
    wait_until(lambda: lock.waiting == 1, actors=[actor])
    loop.close()
    task._log_destroy_pending = False
    _close_elsewhere(task.get_coro(), where)
    assert actor.join() is True
    assert not lock.locked() and lock.waiting == 0


@pytest.mark.parametrize("where", ["no loop", "another loop"])
@pytest.mark.parametrize("lock_name", ["Lock", "RLock"])
def test_fault_lock_block_around_a_closed_condition_wait(
    lock_name: str, where: str
) -> None:
    """``async with lock: await cv`` (the lock's block, not the Condition's)
    in a coroutine closed while it waits: the wait took no lock back, so the
    lock's block leaves the lock to whoever holds it."""

    lock = getattr(aiologic, lock_name)()
    cv = aiologic.Condition(lock)

    async def dead() -> None:
        async with lock:
            await cv

    loop, task = _dead_cv_waiter(cv, dead)
    loop.close()
    task._log_destroy_pending = False
    with lock:
        _close_elsewhere(task.get_coro(), where)
        assert lock.locked() and cv.waiting == 0
    assert not lock.locked() and lock.waiting == 0


def _dead_cv_waiter(cv: Any, dead: Callable[[], Any] | None = None) -> Any:
    """An asyncio task running *dead()* (by default a wait in ``async with
    cv:``) until it waits on *cv*, then parked in a loop that is not running;
    returns (loop, task)."""
    import asyncio

    async def in_cv_block() -> None:
        async with cv:
            await cv

    loop = asyncio.new_event_loop()
    task = loop.create_task((dead or in_cv_block)())
    deadline = time.monotonic() + DEADLINE
    while cv.waiting == 0 and time.monotonic() < deadline:
        loop.run_until_complete(asyncio.sleep(0.001))
    assert cv.waiting == 1
    return loop, task


@pytest.mark.parametrize("lock_name", list(ANY_CONDITION_LOCKS))
@pytest.mark.parametrize("when", ["at-notify", "at-release"])
def test_fault_condition_dead_waiter_closed_as_its_notification_is_passed_on(
    lock_name: str, when: str
) -> None:
    """A notify (or, with our locks, the release it queued the waiter on)
    finds the head waiter's wake-up undeliverable (its loop is closed), and
    before it passes the notification on, that waiter's coroutine is closed
    (as the garbage collector does): exactly one of the two passes it on,
    so one notify wakes one waiter, not two."""
    if when == "at-release" and lock_name not in QUEUEING_LOCKS:
        pytest.skip("only our locks hand a notification over at the release")
    cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name]())
    loop, task = _dead_cv_waiter(cv)

    async def other(w: World) -> Any:
        async with w.hold(cv):
            return await w.wait(cv, DEADLINE)

    actors = [Actor("threading", other) for _ in range(2)]
    wait_until(lambda: cv.waiting == 3, actors=actors)
    notified = threading.Event()
    go = threading.Event()

    def notify() -> int:
        with cv:
            woken = cv.notify()
            notified.set()
            assert go.wait(DEADLINE)
        return woken

    if when == "at-notify" and lock_name in QUEUEING_LOCKS:
        # The dead waiter is not queued on the lock: passed over at once.
        pause = Pause(aiologic._OurLock.wake, "return False")
    else:  # the claimed ticket's wake-up was found undeliverable
        pause = Pause(aiologic._Ticket._take_back, "return False")
    if when == "at-notify":
        loop.close()
        go.set()
        pause.start(notify)
    else:
        pause.start(notify, wait=False)
        assert notified.wait(DEADLINE)
        loop.close()  # queued on the lock while alive; gone by the release
        go.set()
        pause.wait_reached()
    task._log_destroy_pending = False
    assert task.get_coro().close() is None  # passes its notification on
    assert pause.join() == 1
    # One notification: one of the two live waiters is woken, one waits on.
    assert cv.waiting == 1
    with cv:
        assert cv.notify() == 1
    assert join_all(actors) == [True, True]
    assert cv.waiting == 0
    lock = cv.lock
    if lock_name in QUEUEING_LOCKS:
        assert not lock.locked() and lock.waiting == 0


@pytest.mark.parametrize(
    ("lock_name", "block"),
    [
        *((name, "cv") for name in (*QUEUEING_LOCKS, "threading.Lock")),
        ("Lock", "lock"),
        ("RLock", "lock"),
    ],
)
def test_fault_condition_closed_waiter_outside_async_with_cv_marks_nothing(
    lock_name: str, block: str
) -> None:
    """A coroutine that waits holding the lock by a bare acquire, in no
    block of the Condition or its lock, is closed: a later such block closed
    in this thread (an async generator's aclose()) still releases the lock it
    holds."""
    import asyncio

    cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name]())

    async def dead() -> None:
        await _enter_at_once(cv, green=False)
        await cv

    loop, task = _dead_cv_waiter(cv, dead)
    loop.close()
    task._log_destroy_pending = False
    assert task.get_coro().close() is None
    assert not cv.lock.locked() and cv.waiting == 0

    async def holding() -> AsyncIterator[None]:
        async with cv if block == "cv" else cv.lock:
            yield

    async def main() -> bool:
        agen = holding()
        await agen.__anext__()
        assert cv.lock.locked()
        await agen.aclose()  # GeneratorExit through `async with cv:`
        return cv.lock.locked()  # type: ignore[no-any-return]

    assert asyncio.run(main()) is False


@pytest.mark.parametrize("lock_name", QUEUEING_LOCKS)
def test_fault_condition_waiter_closed_while_taking_the_lock_back(
    lock_name: str,
) -> None:
    """A cancelled waiter waits to take the lock back, held by another
    thread, when its loop is closed and its coroutine closed: it takes
    nothing back, and its ``async with cv:`` does not release the lock the
    other thread holds."""
    import asyncio

    cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name]())
    lock = cv.lock
    loop, task = _dead_cv_waiter(cv)
    held = threading.Event()
    done = threading.Event()

    def holder() -> None:
        with cv:
            held.set()
            assert done.wait(DEADLINE)

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    assert held.wait(DEADLINE)
    task.cancel()
    deadline = time.monotonic() + DEADLINE
    while lock.waiting == 0 and time.monotonic() < deadline:
        loop.run_until_complete(asyncio.sleep(0.001))
    assert lock.waiting == 1 and cv.waiting == 0  # taking the lock back
    loop.close()
    task._log_destroy_pending = False
    assert task.get_coro().close() is None  # nothing raised
    assert lock.locked() and lock.waiting == 0  # still the other thread's
    if lock_name == "BinarySemaphore":
        assert not lock.green_acquire(blocking=False)
    done.set()
    thread.join(DEADLINE)
    assert not thread.is_alive()
    assert not lock.locked() and lock.waiting == 0


@pytest.mark.parametrize("lock_name", ["RLock", "threading.RLock"])
def test_fault_condition_waiter_closed_in_nested_async_with_cv(lock_name: str) -> None:
    """A coroutine waiting two levels deep in an RLock (``async with cv:``
    twice) is closed once its loop is gone: it closes quietly, and neither
    of its two exits releases the lock another task holds meanwhile."""
    import asyncio

    lock = aiologic.RLock() if lock_name == "RLock" else threading.RLock()
    cv = aiologic.Condition(lock)

    async def dead() -> None:
        if lock_name == "RLock":
            async with cv, cv:
                await cv
        else:
            with cv, cv:
                await cv

    loop, task = _dead_cv_waiter(cv, dead)
    loop.close()
    task._log_destroy_pending = False
    with cv:
        assert task.get_coro().close() is None  # nothing raised
        assert cv  # still ours
    assert not cv and cv.waiting == 0

    async def holding() -> AsyncIterator[None]:
        async with cv:
            yield

    async def main() -> bool:
        agen = holding()
        await agen.__anext__()
        await agen.aclose()  # GeneratorExit through `async with cv:`
        return bool(cv)

    assert asyncio.run(main()) is False


def _dead_waiter_notify_round(lock_name: str, queued: bool) -> None:
    # One round of the stress test below.
    cv = aiologic.Condition(ANY_CONDITION_LOCKS[lock_name]())
    loop, task = _dead_cv_waiter(cv)
    task._log_destroy_pending = False
    woken: list[bool] = []

    def live() -> None:
        with cv:
            woken.append(cv.wait(DEADLINE))

    lives = [threading.Thread(target=live, daemon=True) for _ in range(2)]
    for thread in lives:
        thread.start()
    wait_until(lambda: cv.waiting == 3)
    counts: list[int] = []
    notified = threading.Event()
    start = threading.Barrier(3, timeout=DEADLINE)

    def notify() -> None:
        if queued:  # notified while alive: queued on the lock, then released
            with cv:
                counts.append(cv.notify())
                notified.set()
                start.wait()
        else:
            start.wait()
            with cv:
                counts.append(cv.notify())

    def close() -> None:
        start.wait()
        task.get_coro().close()

    racers = [threading.Thread(target=f, daemon=True) for f in (notify, close)]
    for thread in racers:
        thread.start()
    if queued:
        assert notified.wait(DEADLINE)
    loop.close()
    start.wait()
    for thread in racers:
        thread.join(DEADLINE)
        assert not thread.is_alive()
    assert counts == [1], (queued, counts)
    wait_until(lambda: len(woken) >= 1)
    assert cv.waiting == 1, (queued, cv)  # the other live waiter waits on
    with cv:
        assert cv.notify() == 1
    for thread in lives:
        thread.join(DEADLINE)
        assert not thread.is_alive()
    assert woken == [True, True]
    assert cv.waiting == 0 and not cv
    if lock_name in QUEUEING_LOCKS:
        assert cv.lock.waiting == 0


@stress
@pytest.mark.parametrize("lock_name", list(ANY_CONDITION_LOCKS))
def test_stress_condition_dead_waiter_closed_while_notified(
    lock_name: str, fast_switching: None
) -> None:
    """Rounds for a bounded time: a waiter whose loop is closed heads two
    live ones; a notify (with our locks, half the rounds: the release of a
    notify made while it was alive) races with the close of its coroutine.
    Each round exactly one live waiter is woken, notify counts one, and all
    ends released."""
    rng = random.Random(int(os.environ.get("TEST_STRESS_SEED") or 0) or None)
    stop_at = time.monotonic() + min(STRESS_SECONDS, 2.0)
    rounds = 0
    while time.monotonic() < stop_at:
        rounds += 1
        queued = lock_name in QUEUEING_LOCKS and rng.random() < 0.5
        _dead_waiter_notify_round(lock_name, queued)
    assert rounds > 10


@pytest.mark.parametrize("factory", ["Event", "REvent", "CountdownEvent"])
@pytest.mark.parametrize("dead", DEAD_WAITERS)
def test_fault_event_set_passes_over_a_waiter_that_can_no_longer_run(
    dead: str, factory: str
) -> None:
    """A waiter that can never run again is counted in `waiting` until the
    event is set, then no longer; the other waiters are woken."""
    ev = getattr(aiologic, factory)(*([1] if factory == "CountdownEvent" else []))
    keep = _abandoned_waiter(
        dead, ev.wait, lambda: ev.with_(None), lambda: ev.waiting == 1
    )

    async def other(w: World) -> Any:
        return await w.wait(ev, DEADLINE)

    actor = Actor("threading", other)
    wait_until(lambda: ev.waiting == 2, actors=[actor])
    if factory == "CountdownEvent":
        ev.down()
    else:
        ev.set()
    assert actor.join() is True
    assert ev.waiting == 0
    _close_abandoned(keep)
    assert ev.waiting == 0


def test_snapshot_copies_again_when_the_deque_changed_meanwhile() -> None:
    """On free-threaded builds copying a deque that another thread changes
    raises RuntimeError; the last party of a barrier round, looking whether
    a party can no longer run, then left the round unopened (stress on
    3.13t). A snapshot copies again."""

    class Changing(collections.deque):  # type: ignore[type-arg]
        failures = 2

        def copy(self) -> Any:
            if self.failures:
                self.failures -= 1
                raise RuntimeError("deque mutated during iteration")
            return super().copy()

    items = Changing([1, 2])
    assert aiologic._snapshot(items) == [1, 2] and items.failures == 0
    barrier = aiologic.Barrier(2)
    first = _Thread(barrier.wait)
    wait_until(lambda: barrier.waiting == 1)
    done = barrier._current().done
    done._waiters = Changing(done._waiters)
    assert barrier.wait(DEADLINE) == 1
    assert first.result() == 0 and not barrier.broken


@pytest.mark.parametrize("factory", ["Latch", "Barrier", "RBarrier"])
@pytest.mark.parametrize("dead", DEAD_WAITERS)
def test_fault_barrier_round_with_a_party_that_can_no_longer_run_breaks(
    dead: str, factory: str
) -> None:
    """A round that fills while one of its parties can never run again
    breaks, as if that party had been cancelled: nobody passes a round that
    a party cannot pass."""
    barrier = getattr(aiologic, factory)(3)
    keep = _abandoned_waiter(
        dead, barrier.wait, lambda: barrier.with_(None), lambda: barrier.waiting == 1
    )

    async def party(w: World) -> Any:
        try:
            return await w.wait(barrier, DEADLINE)
        except aiologic.BrokenBarrierError:
            return "broken"

    actor = Actor("threading", party)
    wait_until(lambda: barrier.waiting == 2, actors=[actor])
    with pytest.raises(aiologic.BrokenBarrierError):
        barrier.wait(DEADLINE)  # the last party
    assert actor.join() == "broken"
    assert barrier.broken and barrier.waiting == 0
    if factory == "RBarrier":
        barrier.reset()
        actors = [Actor("threading", party) for _ in range(2)]
        wait_until(lambda: barrier.waiting == 2, actors=actors)
        assert barrier.wait(DEADLINE) == 2
        assert sorted(join_all(actors)) == [0, 1]
    _close_abandoned(keep)


@pytest.mark.parametrize("order", ["release-then-cancel", "cancel-then-release"])
@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_fault_cancelled_at_hand_off(
    cooperative_world: str, order: str, how: str
) -> None:
    """The release and the cancellation of the head waiter happen in the same
    step of its loop/hub: the lock ends up with the next waiter (or with the
    cancelled one, which then releases it at once); it is never lost."""
    if how == "timeout" and cooperative_world not in GREEN_WORLDS:
        pytest.skip("only green worlds throw a Timeout into a task")

    async def body(w: World) -> Any:
        results = []
        for make in (aiologic.Lock, aiologic.RLock, aiologic.BinarySemaphore):
            lock = make()
            entered: list[str] = []
            await w.lock(lock)
            first = w.spawn(_enter_and_record, lock, "A", entered)
            await w.wait_until(lambda lock=lock: lock.waiting == 1)
            second = w.spawn(_enter_and_record, lock, "B", entered)
            await w.wait_until(lambda lock=lock: lock.waiting == 2)
            if order == "release-then-cancel":
                await w.unlock(lock)
                first.cancel(timeout=how == "timeout")
            else:
                first.cancel(timeout=how == "timeout")
                await w.unlock(lock)
            result_a, result_b = await first.join(), await second.join()
            assert result_a in ("A", CANCELLED) and result_b == "B", (make, result_a)
            assert entered in (["A", "B"], ["B"]), entered
            # A may also be cancelled after entering: it released on the way out.
            assert result_a != "A" or entered == ["A", "B"]
            assert lock.waiting == 0 and not lock.locked(), lock
            results.append(result_a)
        return results

    run_in(cooperative_world, body)


def test_fault_release_from_another_thread_right_after_cancel() -> None:
    """A plain thread holds a lock that two asyncio tasks wait for; it queues
    the cancellation of the first task into their loop and releases at once,
    so the hand-off races with the cancellation (repeated to hit both sides)."""
    lock = aiologic.Lock()
    outcomes = _fault_cross_thread_cancel(lock)
    for result_a, result_b, entered in outcomes:
        assert result_a in ("A", CANCELLED) and result_b == "B"
        assert entered in (["A", "B"], ["B"])
        assert result_a != "A" or entered == ["A", "B"]


def _fault_cross_thread_cancel(lock: Any) -> list[Any]:
    """Helper of the test above: a plain thread holds `lock`, two asyncio
    tasks queue for it, then that thread queues the cancellation of the
    first task into its loop and releases the lock right away."""
    results: list[Any] = []
    for _ in range(40):
        entered: list[str] = []
        tasks: list[Any] = []
        loops: list[Any] = []
        assert lock.green_acquire()

        async def body(
            w: World, loops: Any = loops, tasks: Any = tasks, entered: Any = entered
        ) -> Any:
            import asyncio

            loops.append(asyncio.get_running_loop())
            tasks.append(w.spawn(_enter_and_record, lock, "A", entered))
            await w.wait_until(lambda: lock.waiting == 1)
            tasks.append(w.spawn(_enter_and_record, lock, "B", entered))
            return [await task.join() for task in tasks]

        actor = Actor("asyncio", body)
        wait_until(lambda: lock.waiting == 2, actors=[actor])
        loops[0].call_soon_threadsafe(tasks[0].task.cancel)
        lock.green_release()
        result_a, result_b = actor.join()
        results.append((result_a, result_b, entered))
        assert lock.waiting == 0 and not lock.locked(), lock
    return results


def _main_thread_parked() -> bool:
    frame = sys._current_frames().get(threading.main_thread().ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "park":
            return True
        frame = frame.f_back
    return False


@pytest.mark.parametrize("race", ["interrupt", "interrupt-then-release"])
def test_fault_keyboard_interrupt_in_green_acquire(race: str) -> None:
    """SIGINT while the main thread is parked in green_acquire: the
    KeyboardInterrupt leaves no waiter behind; a hand-off racing with it is
    passed on to the next waiter; the lock stays usable."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread")
    if not hasattr(signal, "pthread_kill"):
        pytest.skip("needs signal.pthread_kill")
    lock = aiologic.Lock()
    release = threading.Event()

    async def holder(w: World) -> None:
        async with w.hold(lock):
            assert release.wait(DEADLINE)

    async def second(w: World) -> bool:
        # Queues behind the main thread, then takes and gives back the lock.
        await w.wait_until(lambda: lock.waiting == 1 and _main_thread_parked())
        async with w.hold(lock):
            return True

    def interrupter() -> None:
        wait_until(lambda: lock.waiting == 2 and _main_thread_parked())
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # type: ignore[arg-type]
        if race == "interrupt-then-release":
            release.set()

    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        first = Actor("threading", holder)
        wait_until(lambda: lock.locked(), actors=[first])
        other = Actor("threading", second)
        thread = threading.Thread(target=interrupter, daemon=True)
        thread.start()
        with pytest.raises(KeyboardInterrupt):
            lock.green_acquire(timeout=DEADLINE)
            pytest.fail("green_acquire returned instead of being interrupted")
    finally:
        signal.signal(signal.SIGINT, old)
        release.set()
    thread.join(DEADLINE)
    assert join_all([first, other]) == [None, True]
    assert not lock.locked() and lock.waiting == 0 and lock.owner is None
    assert lock.green_acquire(blocking=False)
    lock.green_release()


@pytest.mark.parametrize("green", ["gevent", "eventlet"])
@pytest.mark.parametrize("how", ["timeout", "kill"])
def test_fault_green_timeout_and_kill(green: str, how: str) -> None:
    """gevent/eventlet Timeout and GreenletExit thrown into tasks parked on
    every kind of primitive: each leaves no waiter, nothing is lost."""

    async def body(w: World) -> None:
        lock = aiologic.Lock()
        sem = aiologic.Semaphore(0)
        ev = aiologic.REvent()
        q = aiologic.Queue(maxsize=1)
        cv = aiologic.Condition()
        limiter = aiologic.CapacityLimiter(1)
        rw = aiologic.RWLock()
        await w.lock(lock)
        assert await w.acquire(limiter)
        assert await w.acquire(rw.writer)

        async def cv_wait(w: World) -> Any:
            async with w.hold(cv):
                return await w.wait(cv)

        waits: list[Callable[[World], Awaitable[Any]]] = [
            lambda w: w.acquire(lock),
            lambda w: w.acquire(sem),
            lambda w: w.wait(ev),
            lambda w: w.get(q),
            cv_wait,
            lambda w: w.acquire(limiter),
            lambda w: w.acquire(rw.reader),
        ]

        async def call(w: World, wait: Any) -> Any:
            if how == "timeout":
                # The waiter's own Timeout, raised out of the wait.
                with w.move_on_after(0.05):
                    await wait(w)
                    return "not interrupted"
                return "interrupted"
            return await wait(w)

        tasks = [w.spawn(call, wait) for wait in waits]
        if how == "timeout":
            assert [await task.join() for task in tasks] == ["interrupted"] * 7
        else:
            await w.wait_until(
                lambda: (
                    lock.waiting == sem.waiting == ev.waiting == 1
                    and q.getting == cv.waiting == limiter.waiting == rw.waiting == 1
                )
            )
            for task in tasks:
                task.cancel()
            assert [await task.join() for task in tasks] == [CANCELLED] * len(tasks)
        assert lock.waiting == sem.waiting == ev.waiting == q.waiting == 0
        assert cv.waiting == limiter.waiting == rw.waiting == 0
        assert not cv.lock.locked()
        # Nothing was lost: everything still works.
        await w.unlock(lock)
        assert await w.acquire(lock, blocking=False)
        await w.unlock(lock)
        sem.release()
        assert await w.acquire(sem, blocking=False)
        await w.put(q, 1)
        assert await w.get(q) == 1
        w.release(limiter)
        w.release(rw.writer)
        assert await w.acquire(limiter, blocking=False)
        assert await w.acquire(rw.reader, blocking=False)

    run_in(green, body)


def test_fault_trio_run_ended_before_the_wake() -> None:
    """A releaser still holds the token of a task whose trio run has ended:
    waking it afterwards is a no-op that raises nothing."""
    trio = _import("trio")
    lock = aiologic.Lock()
    assert lock.green_acquire()
    tokens: list[Any] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lock.async_acquire)
            while lock.waiting < 1:
                await trio.sleep(0.001)
            tokens.append(lock._waiters[0])  # what a releaser would pop
            nursery.cancel_scope.cancel()

    thread = threading.Thread(target=trio.run, args=(main,))
    thread.start()
    thread.join(DEADLINE)
    assert not thread.is_alive() and tokens
    token = tokens[0]
    # The waker claimed the token just before the run ended, and only now
    # gets to deliver the wake-up: the run is gone (RunFinishedError inside).
    token._wake()
    assert token.set() is False  # the cancelled task withdrew it
    assert lock.waiting == 0
    lock.green_release()
    assert not lock.locked()


def test_fault_trio_runs_ending_under_a_set_storm() -> None:
    """trio runs start and end (their waiters cancelled at random) while a
    plain thread sets and clears the event they wait on: nothing leaks."""
    trio = _import("trio")
    ev = aiologic.REvent()
    stop = threading.Event()
    errors: list[BaseException] = []

    def storm() -> None:
        try:
            while not stop.is_set():
                ev.set()
                ev.clear()
        except BaseException as exc:
            errors.append(exc)

    async def main(i: int) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(_trio_wait, ev)
            await trio.sleep(0.0005 * (i % 4))
            nursery.cancel_scope.cancel()

    thread = threading.Thread(target=storm, daemon=True)
    thread.start()
    try:
        for i in range(40):
            trio.run(main, i)
    finally:
        stop.set()
        thread.join(DEADLINE)
    assert not errors, errors
    assert ev.waiting == 0


async def _trio_wait(ev: Any) -> None:
    await ev


# ============================================================================
# Bad input: clear errors, state unchanged
# ============================================================================

# Negative timeouts are not bad everywhere: see test_negative_timeout.
BAD_TIMEOUTS = [
    pytest.param(math.nan, ValueError, id="nan"),
    pytest.param("1", TypeError, id="str-number"),
    pytest.param("soon", TypeError, id="str"),
    pytest.param(object(), TypeError, id="object"),
    pytest.param([1], TypeError, id="list"),
]


@dataclass(frozen=True)
class Blocking:
    """One blocking method: how to make its object, call it, check it."""

    name: str
    make: Callable[[], Any]
    call: Callable[[World, Any, Any], Awaitable[Any]]
    idle: Callable[[Any], bool]  # nobody waits, nothing taken or changed


def _no_waiters(obj: Any) -> bool:
    return bool(obj.waiting == 0)


async def _cv_wait(w: World, cv: Any, timeout: Any) -> Any:
    async with w.hold(cv):
        return await w.wait(cv, timeout)


async def _cv_wait_for(w: World, cv: Any, timeout: Any) -> Any:
    async with w.hold(cv):
        return await w.wait_for(cv, lambda: False, timeout)


async def _join(w: World, q: Any, timeout: Any) -> Any:
    return await w.call(q, "join", timeout=timeout)


BLOCKING = [
    Blocking(
        "Lock",
        aiologic.Lock,
        lambda w, o, t: w.acquire(o, timeout=t),
        lambda o: not o.locked() and o.waiting == 0,
    ),
    Blocking(
        "RLock",
        aiologic.RLock,
        lambda w, o, t: w.acquire(o, timeout=t),
        lambda o: not o.locked() and o.waiting == 0 and o.count == 0,
    ),
    Blocking(
        "Semaphore(2)",
        lambda: aiologic.Semaphore(2),
        lambda w, o, t: w.acquire(o, timeout=t),
        lambda o: o.value == 2 and o.waiting == 0,
    ),
    Blocking(
        "BoundedSemaphore",
        aiologic.BoundedSemaphore,
        lambda w, o, t: w.acquire(o, timeout=t),
        lambda o: o.value == 1 and o.waiting == 0,
    ),
    Blocking(
        "CapacityLimiter",
        aiologic.CapacityLimiter,
        lambda w, o, t: w.acquire(o, timeout=t),
        lambda o: o.borrowed_tokens == 0 and o.waiting == 0,
    ),
    Blocking(
        "RCapacityLimiter",
        aiologic.RCapacityLimiter,
        lambda w, o, t: w.acquire(o, timeout=t),
        lambda o: o.borrowed_tokens == 0 and o.waiting == 0,
    ),
    Blocking(
        "RWLock.reader",
        aiologic.RWLock,
        lambda w, o, t: w.acquire(o.reader, timeout=t),
        lambda o: not o.reader.locked() and not o.writer.locked() and o.waiting == 0,
    ),
    Blocking(
        "RWLock.writer",
        aiologic.RWLock,
        lambda w, o, t: w.acquire(o.writer, timeout=t),
        lambda o: not o.reader.locked() and not o.writer.locked() and o.waiting == 0,
    ),
    Blocking(
        "Event",
        aiologic.Event,
        lambda w, o, t: w.wait(o, t),
        lambda o: not o and o.waiting == 0,
    ),
    Blocking(
        "REvent",
        aiologic.REvent,
        lambda w, o, t: w.wait(o, t),
        lambda o: not o.is_set() and o.waiting == 0,
    ),
    Blocking(
        "CountdownEvent",
        lambda: aiologic.CountdownEvent(1),
        lambda w, o, t: w.wait(o, t),
        lambda o: o.value == 1 and o.waiting == 0,
    ),
    Blocking(
        "Latch",
        lambda: aiologic.Latch(2),
        lambda w, o, t: w.wait(o, t),
        lambda o: o.waiting == 0 and not o.broken,
    ),
    Blocking(
        "Barrier",
        lambda: aiologic.Barrier(2),
        lambda w, o, t: w.wait(o, t),
        lambda o: o.waiting == 0 and not o.broken,
    ),
    Blocking(
        "RBarrier",
        lambda: aiologic.RBarrier(2),
        lambda w, o, t: w.wait(o, t),
        lambda o: o.waiting == 0 and not o.broken,
    ),
    Blocking(
        "Condition.wait",
        aiologic.Condition,
        _cv_wait,
        lambda o: o.waiting == 0 and not o.lock.locked(),
    ),
    Blocking(
        "Condition.wait_for",
        lambda: aiologic.Condition(aiologic.Lock()),
        _cv_wait_for,
        lambda o: o.waiting == 0 and not o.lock.locked(),
    ),
    Blocking(
        "SimpleQueue.get",
        aiologic.SimpleQueue,
        lambda w, o, t: w.get(o, timeout=t),
        lambda o: len(o) == 0 and o.waiting == 0,
    ),
    Blocking(
        "SimpleQueue.put",
        aiologic.SimpleQueue,
        lambda w, o, t: w.put(o, "x", timeout=t),
        lambda o: len(o) == 0 and o.waiting == 0,
    ),
    Blocking(
        "Queue.get",
        lambda: aiologic.Queue(maxsize=1),
        lambda w, o, t: w.get(o, timeout=t),
        lambda o: len(o) == 0 and o.waiting == 0 and o.unfinished_tasks == 0,
    ),
    Blocking(
        "Queue.put",
        lambda: aiologic.Queue(["old"], maxsize=1),
        lambda w, o, t: w.put(o, "new", timeout=t),
        lambda o: list(o._iter_items()) == ["old"] and o.waiting == 0,
    ),
    Blocking(
        "PriorityQueue.put",
        lambda: aiologic.PriorityQueue([1], maxsize=1),
        lambda w, o, t: w.put(o, 0, timeout=t),
        lambda o: len(o) == 1 and o.waiting == 0,
    ),
    Blocking(
        "LifoQueue.get",
        lambda: aiologic.LifoQueue(maxsize=2),
        lambda w, o, t: w.get(o, timeout=t),
        lambda o: len(o) == 0 and o.waiting == 0,
    ),
    Blocking(
        "Queue.join",
        lambda: _unfinished_queue(),
        _join,
        lambda o: o.unfinished_tasks == 1 and o.waiting == 0,
    ),
]
ALL_BLOCKING = pytest.mark.parametrize("blocking", BLOCKING, ids=lambda b: b.name)


def _unfinished_queue() -> Any:
    q = aiologic.Queue()
    q.green_put("x")
    q.green_get()
    return q


@pytest.mark.parametrize("face", ["threading", "asyncio", "trio"])
@pytest.mark.parametrize(("timeout", "error"), BAD_TIMEOUTS)
@ALL_BLOCKING
def test_bad_timeout(face: str, timeout: Any, error: type, blocking: Blocking) -> None:
    expired = (
        blocking.name.startswith("Condition.") and error is ValueError and timeout < 0
    )

    async def body(w: World) -> None:
        obj = blocking.make()
        result = await outcome_of(blocking.call(w, obj, timeout))
        if expired:  # as threading.Condition: a negative timeout has expired
            assert not isinstance(result, Exception) and not result, result
        else:
            assert isinstance(result, error), result
            assert str(result), "the error says what is wrong"
        assert blocking.idle(obj), obj
        # Still usable: a valid short timeout behaves as usual.
        result = await outcome_of(blocking.call(w, obj, 0.001))
        assert not isinstance(result, (TypeError, ValueError)), result

    run_in(face, body)


# How each kind of call reads a negative timeout, as its stdlib counterpart:
# acquires as threading.Lock.acquire (-1: no limit, other negatives refused),
# waits as threading.Event.wait (expired already), queue puts and gets as
# queue.Queue (refused). Condition's waits: TestCondition.
_ACQUIRES = {
    "Lock",
    "RLock",
    "Semaphore(2)",
    "BoundedSemaphore",
    "CapacityLimiter",
    "RCapacityLimiter",
    "RWLock.reader",
    "RWLock.writer",
}
_WAITS = {"Event", "REvent", "CountdownEvent", "Latch", "Barrier", "RBarrier"}
_WAITS.add("Queue.join")
_BARRIERS = {"Latch", "Barrier", "RBarrier"}


@pytest.mark.parametrize("face", ["threading", "asyncio", "trio"])
@pytest.mark.parametrize(
    "timeout",
    [-1, -1.0, -0.001, -2, -math.inf, -(10**400)],
    ids=["-1", "-1.0", "-0.001", "-2", "-inf", "-10**400"],
)
@pytest.mark.parametrize(
    "blocking",
    [b for b in BLOCKING if not b.name.startswith("Condition.")],
    ids=lambda b: b.name,
)
def test_negative_timeout(face: str, timeout: Any, blocking: Blocking) -> None:
    """Issue 19: `while not ev.wait(deadline - time.monotonic())` works, and a
    negative timeout means the same to the green and the async face."""

    async def body(w: World) -> None:
        obj = blocking.make()
        result = await outcome_of(blocking.call(w, obj, timeout))
        if blocking.name in _ACQUIRES and timeout == -1:
            assert result is True, result  # free: taken at once
        elif blocking.name in _BARRIERS:
            # As threading.Barrier: the party times out, the barrier breaks.
            assert isinstance(result, aiologic.BrokenBarrierError), result
            assert obj.broken and obj.waiting == 0
        elif blocking.name in _WAITS:
            assert result is False, result
            assert blocking.idle(obj), obj
        else:
            assert isinstance(result, ValueError), result
            if blocking.name in _ACQUIRES:
                assert "-1" in str(result), result
            else:
                assert str(result) == "'timeout' must be a non-negative number"
            assert blocking.idle(obj), obj

    run_in(face, body)


@pytest.mark.parametrize("timeout", [-1, -1.0])
@pytest.mark.parametrize("world_name", WORLDS)
@pytest.mark.parametrize(
    "name", ["Lock", "RLock", "Semaphore", "BoundedSemaphore", "CapacityLimiter"]
)
def test_acquire_minus_one_waits_without_limit(
    name: str, world_name: str, timeout: Any
) -> None:
    """As threading.Lock.acquire(timeout=-1): no limit, in every face."""
    _require(world_name)
    obj = getattr(aiologic, name)()
    assert obj.green_acquire(blocking=False)

    async def body(w: World) -> bool:
        got = await w.acquire(obj, timeout=timeout)
        w.release(obj)
        return bool(got)

    actor = Actor(world_name, body)
    wait_until(lambda: obj.waiting == 1, actors=[actor])
    obj.release() if isinstance(obj, aiologic.Semaphore) else obj.green_release()
    assert actor.join() is True
    assert obj.waiting == 0


@pytest.mark.parametrize("timeout", [-1, -0.5, -math.inf])
def test_rwlock_minus_one_waits_without_limit(timeout: Any) -> None:
    rw = aiologic.RWLock()
    assert rw.writer.green_acquire()

    async def body(w: World) -> Any:
        return await outcome_of(w.acquire(rw.reader, timeout=timeout))

    actor = Actor("asyncio", body)
    if timeout == -1:
        wait_until(lambda: rw.waiting == 1, actors=[actor])
    rw.writer.green_release()
    result = actor.join()
    assert result is True if timeout == -1 else isinstance(result, ValueError)


@pytest.mark.parametrize("seconds", [-1, -0.5, -math.inf])
def test_sleep_negative_is_no_sleep(world: str, seconds: float) -> None:
    """As asyncio.sleep: a negative time has passed already (no error)."""

    async def body(w: World) -> None:
        start = time.monotonic()
        await w.call(aiologic.lowlevel, "sleep", seconds)
        assert time.monotonic() - start < DEADLINE / 2

    run_in(world, body)


@pytest.mark.parametrize(
    "timeout",
    [1e300, math.inf, 2**64, 10**400],
    ids=["1e300", "inf", "2**64", "10**400"],
)
@pytest.mark.parametrize("world_name", ["threading", "gevent", "asyncio", "trio"])
def test_huge_timeout_waits_and_wakes(world_name: str, timeout: Any) -> None:
    """A huge timeout means "forever": no OverflowError, no early expiry."""
    lock = aiologic.Lock()
    ev = aiologic.REvent()
    q = aiologic.Queue(maxsize=1)

    async def body(w: World) -> list[Any]:
        got = [await w.acquire(lock, timeout=timeout)]
        w.release(lock)
        got.append(await w.wait(ev, timeout))
        got.append(await w.get(q, timeout=timeout))
        return got

    assert lock.green_acquire()
    actor = Actor(world_name, body)
    wait_until(lambda: lock.waiting == 1, actors=[actor])
    lock.green_release()
    wait_until(lambda: ev.waiting == 1, actors=[actor])
    ev.set()
    wait_until(lambda: q.getting == 1, actors=[actor])
    q.green_put("item")
    assert actor.join() == [True, True, "item"]


BAD_COUNTS = [
    pytest.param(0, ValueError, id="0"),
    pytest.param(-1, ValueError, id="-1"),
    pytest.param(1.5, TypeError, id="1.5"),
    pytest.param("2", TypeError, id="str"),
    pytest.param(None, TypeError, id="None"),
]


@pytest.mark.parametrize(("count", "error"), BAD_COUNTS)
def test_bad_count(count: Any, error: type) -> None:
    """Wrong counts are refused with a clear error, before anything changes.

    `Semaphore.release(0)` and `CountdownEvent.up(0)` may be no-ops instead.
    """
    zero_is_noop = count == 0

    def check(
        call: Callable[[], Any], unchanged: Callable[[], bool], noop_ok: bool = False
    ) -> None:
        try:
            call()
        except (TypeError, ValueError) as exc:
            assert isinstance(exc, error), (call, exc)
        else:
            assert noop_ok and zero_is_noop, f"{count!r} was accepted"
        assert unchanged()

    rlock = aiologic.RLock()
    check(
        lambda: rlock.green_acquire(count=count),
        lambda: not rlock.locked() and rlock.count == 0,
    )
    assert rlock.green_acquire()
    check(lambda: rlock.green_acquire(count=count), lambda: rlock.count == 1)
    check(lambda: rlock.green_release(count=count), lambda: rlock.count == 1)
    rlock.green_release()
    assert not rlock.locked() and rlock.waiting == 0

    limiter = aiologic.RCapacityLimiter(2)
    check(
        lambda: limiter.green_acquire(count=count), lambda: limiter.borrowed_tokens == 0
    )
    assert limiter.green_acquire()
    check(
        lambda: limiter.green_release(count=count), lambda: limiter.green_count() == 1
    )
    limiter.green_release()
    assert limiter.borrowed_tokens == 0 and limiter.available_tokens == 2

    sem = aiologic.Semaphore(1)
    check(lambda: sem.release(count), lambda: sem.value == 1, noop_ok=True)
    check(lambda: sem.green_release(count), lambda: sem.value == 1, noop_ok=True)
    ce = aiologic.CountdownEvent(2)
    check(lambda: ce.up(count), lambda: ce.value == 2 and ce.waiting == 0, noop_ok=True)

    async def async_face(w: World) -> None:
        lock = aiologic.RLock()
        result = await outcome_of(w.acquire(lock, count=count))
        assert isinstance(result, error), result
        assert not lock.locked() and lock.count == 0

    run_in("asyncio", async_face)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        pytest.param(lambda: aiologic.Semaphore(-1), ValueError, id="Semaphore(-1)"),
        pytest.param(lambda: aiologic.Semaphore(1.5), TypeError, id="Semaphore(1.5)"),
        pytest.param(lambda: aiologic.Semaphore("2"), TypeError, id="Semaphore('2')"),
        pytest.param(
            lambda: aiologic.Semaphore(2, -1), ValueError, id="Semaphore(2,-1)"
        ),
        pytest.param(
            lambda: aiologic.BoundedSemaphore(-1), ValueError, id="BoundedSemaphore(-1)"
        ),
        pytest.param(
            lambda: aiologic.BoundedSemaphore(3, 2),
            ValueError,
            id="BoundedSemaphore(3,2)",
        ),
        pytest.param(
            lambda: aiologic.BinarySemaphore(2), ValueError, id="BinarySemaphore(2)"
        ),
        pytest.param(
            lambda: aiologic.BinarySemaphore(-1), ValueError, id="BinarySemaphore(-1)"
        ),
        pytest.param(
            lambda: aiologic.CapacityLimiter(-1), ValueError, id="CapacityLimiter(-1)"
        ),
        pytest.param(
            lambda: aiologic.CapacityLimiter(1.5), TypeError, id="CapacityLimiter(1.5)"
        ),
        pytest.param(
            lambda: aiologic.CapacityLimiter(math.nan),
            TypeError,
            id="CapacityLimiter(nan)",
        ),
        pytest.param(
            lambda: aiologic.RCapacityLimiter(-2), ValueError, id="RCapacityLimiter(-2)"
        ),
        pytest.param(
            lambda: aiologic.CountdownEvent(-1), ValueError, id="CountdownEvent(-1)"
        ),
        pytest.param(lambda: aiologic.Latch(-1), ValueError, id="Latch(-1)"),
        pytest.param(lambda: aiologic.Barrier(-1), ValueError, id="Barrier(-1)"),
        pytest.param(lambda: aiologic.RBarrier(-1), ValueError, id="RBarrier(-1)"),
        pytest.param(lambda: aiologic.Barrier(1.5), TypeError, id="Barrier(1.5)"),
        pytest.param(
            lambda: aiologic.Queue(maxsize=math.nan), ValueError, id="Queue(nan)"
        ),
        pytest.param(
            lambda: aiologic.Queue(maxsize="1"), TypeError, id="Queue(maxsize='1')"
        ),
        pytest.param(
            lambda: aiologic.Queue([1, 2, 3], maxsize=2),
            ValueError,
            id="Queue(3 items, maxsize=2)",
        ),
    ],
)
def test_bad_constructor_arguments(make: Callable[[], Any], error: type) -> None:
    with pytest.raises(error) as info:
        make()
    assert str(info.value), "the error says what is wrong"


def test_bad_total_tokens_keeps_the_old_total() -> None:
    limiter = aiologic.CapacityLimiter(2)
    for value, error in [
        (-1, ValueError),
        (1.5, TypeError),
        ("3", TypeError),
        (math.nan, TypeError),
    ]:
        with pytest.raises(error):
            limiter.total_tokens = value
        assert limiter.total_tokens == 2 and limiter.available_tokens == 2


@pytest.mark.parametrize(
    ("make", "release", "error"),
    [
        pytest.param(
            aiologic.Lock, lambda o: o.green_release(), RuntimeError, id="Lock"
        ),
        pytest.param(
            aiologic.RLock, lambda o: o.green_release(), RuntimeError, id="RLock"
        ),
        pytest.param(
            aiologic.BoundedSemaphore,
            lambda o: o.release(),
            RuntimeError,
            id="BoundedSemaphore",
        ),
        pytest.param(
            aiologic.BoundedBinarySemaphore,
            lambda o: o.release(),
            RuntimeError,
            id="BoundedBinarySemaphore",
        ),
        pytest.param(
            lambda: aiologic.BoundedSemaphore(2, 3),
            lambda o: o.release(2),
            (RuntimeError, ValueError),
            id="BoundedSemaphore-over",
        ),
        pytest.param(
            aiologic.CapacityLimiter,
            lambda o: o.green_release(),
            RuntimeError,
            id="CapacityLimiter",
        ),
        pytest.param(
            aiologic.RCapacityLimiter,
            lambda o: o.green_release(),
            RuntimeError,
            id="RCapacityLimiter",
        ),
        pytest.param(
            aiologic.RWLock,
            lambda o: o.reader.green_release(),
            RuntimeError,
            id="RWLock.reader",
        ),
        pytest.param(
            aiologic.RWLock,
            lambda o: o.writer.green_release(),
            RuntimeError,
            id="RWLock.writer",
        ),
        pytest.param(
            aiologic.CountdownEvent,
            lambda o: o.down(),
            RuntimeError,
            id="CountdownEvent.down",
        ),
        pytest.param(
            aiologic.Queue, lambda o: o.task_done(), ValueError, id="Queue.task_done"
        ),
        pytest.param(
            aiologic.Condition,
            lambda o: o.notify(),
            RuntimeError,
            id="Condition.notify",
        ),
        pytest.param(
            aiologic.ResourceGuard,
            lambda o: o.__exit__(None, None, None),
            RuntimeError,
            id="ResourceGuard.exit",
        ),
    ],
)
def test_release_never_acquired(
    make: Callable[[], Any], release: Callable[[Any], Any], error: Any
) -> None:
    obj = make()
    before = repr(obj).split(" at ")[-1].split(" ", 1)[-1]  # the state part
    with pytest.raises(error) as info:
        release(obj)
    assert str(info.value), "the error says what is wrong"
    assert repr(obj).split(" at ")[-1].split(" ", 1)[-1] == before
    # Still usable afterwards, twice in a row.
    for _ in range(2):
        if isinstance(obj, aiologic.RWLock):
            assert obj.writer.green_acquire(blocking=False)
            obj.writer.green_release()
        elif isinstance(obj, aiologic.CountdownEvent):
            obj.up()
            obj.down()
            assert obj.wait(0)
        elif isinstance(obj, aiologic.Queue):
            obj.green_put(1)
            obj.green_get()
            obj.task_done()
            assert obj.unfinished_tasks == 0
        elif isinstance(obj, aiologic.Condition):
            with obj:
                assert obj.notify() == 0
        elif isinstance(obj, aiologic.ResourceGuard):
            with obj:
                pass
        elif isinstance(obj, aiologic.Semaphore):
            assert obj.green_acquire(blocking=False)
            obj.release()
        else:
            assert obj.green_acquire(blocking=False)
            obj.green_release()
    assert getattr(obj, "waiting", 0) == 0


# Odd arguments against every public call that takes one: a call that raises
# leaves its primitive exactly as it was (same state, still usable).


class _NoFloat:
    """Has __index__ (returning a non-int) but no __float__ or __bool__ of note."""

    def __index__(self) -> Any:
        return 2.5


ODD_ARGUMENTS: list[Any] = [
    _BadBool(),
    _HalfIndex(),
    math.nan,
    math.inf,
    -1,
    -2,
    -(2**100),
    2**100,
    None,
    "1",
    1.5,
    True,
]


@dataclass(frozen=True)
class OddCall:
    """One argument of one public call: where odd values go."""

    name: str
    make: Callable[[World], Awaitable[Any]]  # in the world, the initial state
    call: Callable[[World, Any, Any], Awaitable[Any]]
    kind: str  # "blocking", "count" (an int >= 0 or >= 1), "timeout", "wait"


async def _made(obj: Any) -> Any:
    return obj


async def _held_by_me(w: World, obj: Any) -> Any:
    assert await w.acquire(obj)
    return obj


async def _release_count(w: World, obj: Any, value: Any) -> Any:
    w.release(obj, count=value)


def _odd_lock_calls(name: str, make: Callable[[], Any]) -> list[OddCall]:
    return [
        OddCall(
            f"{name}.acquire(blocking)",
            lambda w: _made(make()),
            lambda w, o, x: w.acquire(o, blocking=x),
            "blocking",
        ),
        OddCall(
            f"{name}.acquire(blocking, held)",
            lambda w: _held_by_other(make()),
            # A non-blocking call takes no timeout (as threading's acquire).
            lambda w, o, x: w.acquire(o, blocking=x, timeout=_zero_if_truthy(x)),
            "blocking",
        ),
        OddCall(
            f"{name}.acquire(timeout)",
            lambda w: _made(make()),
            lambda w, o, x: w.acquire(o, timeout=x),
            "timeout",
        ),
    ]


def _zero_if_truthy(value: Any) -> Any:
    try:
        return 0 if value else None
    except ZeroDivisionError:  # a _BadBool: let the call find out
        return 0


async def _held_by_other(obj: Any) -> Any:
    # Busy: taken in another thread (a Lock must not be re-acquired by us).
    _in_other_thread(lambda: obj.green_acquire())
    return obj


async def _sync_call(fn: Callable[[], Any]) -> Any:
    return fn()


ODD_CALLS: list[OddCall] = [
    *_odd_lock_calls("Lock", aiologic.Lock),
    *_odd_lock_calls("RLock", aiologic.RLock),
    *_odd_lock_calls("Semaphore", lambda: aiologic.Semaphore(2)),
    *_odd_lock_calls("BoundedSemaphore", lambda: aiologic.BoundedSemaphore(1, 2)),
    *_odd_lock_calls("BinarySemaphore", aiologic.BinarySemaphore),
    *_odd_lock_calls("BoundedBinarySemaphore", aiologic.BoundedBinarySemaphore),
    *_odd_lock_calls("CapacityLimiter", aiologic.CapacityLimiter),
    *_odd_lock_calls("RCapacityLimiter", aiologic.RCapacityLimiter),
    OddCall(
        "RLock.acquire(count)",
        lambda w: _made(aiologic.RLock()),
        lambda w, o, x: w.acquire(o, count=x),
        "count",
    ),
    OddCall(
        "RLock.acquire(count, held)",
        lambda w: _held_by_me(w, aiologic.RLock()),
        lambda w, o, x: w.acquire(o, count=x),
        "count",
    ),
    OddCall(
        "RLock.acquire(blocking, held)",
        lambda w: _held_by_me(w, aiologic.RLock()),
        lambda w, o, x: w.acquire(o, blocking=x),
        "blocking",
    ),
    OddCall(
        "RLock.release(count)",
        lambda w: _held_by_me(w, aiologic.RLock()),
        _release_count,
        "count",
    ),
    OddCall(
        "RCapacityLimiter.acquire(count)",
        lambda w: _made(aiologic.RCapacityLimiter(1)),
        lambda w, o, x: w.acquire(o, count=x),
        "count",
    ),
    OddCall(
        "RCapacityLimiter.release(count)",
        lambda w: _held_by_me(w, aiologic.RCapacityLimiter(1)),
        _release_count,
        "count",
    ),
    *(
        OddCall(
            f"{name}.release(count)",
            lambda w, make=make: _made(make()),
            _release_count,
            "count",
        )
        for name, make in [
            ("Semaphore", lambda: aiologic.Semaphore(1)),
            ("BoundedSemaphore", lambda: aiologic.BoundedSemaphore(1, 2)),
            ("BinarySemaphore", lambda: aiologic.BinarySemaphore(0)),
            ("BoundedBinarySemaphore", lambda: aiologic.BoundedBinarySemaphore(0)),
        ]
    ),
    OddCall(
        "Semaphore.release(plain)",
        lambda w: _made(aiologic.Semaphore(1)),
        lambda w, o, x: _sync_call(lambda: o.release(x)),
        "count",
    ),
    OddCall(
        "CountdownEvent.up",
        lambda w: _made(aiologic.CountdownEvent(1)),
        lambda w, o, x: _sync_call(lambda: o.up(x)),
        "count",
    ),
    *(
        OddCall(f"{name}.wait", lambda w, make=make: _made(make()), w_wait, "wait")
        for name, make, w_wait in [
            ("Event", lambda: _set(aiologic.Event()), lambda w, o, x: w.wait(o, x)),
            ("REvent", lambda: _set(aiologic.REvent()), lambda w, o, x: w.wait(o, x)),
            (
                "CountdownEvent",
                aiologic.CountdownEvent,
                lambda w, o, x: w.wait(o, x),
            ),
            ("Latch", lambda: aiologic.Latch(1), lambda w, o, x: w.wait(o, x)),
            ("Barrier", lambda: aiologic.Barrier(1), lambda w, o, x: w.wait(o, x)),
            ("RBarrier", lambda: aiologic.RBarrier(1), lambda w, o, x: w.wait(o, x)),
        ]
    ),
]


def _set(ev: Any) -> Any:
    ev.set()
    return ev


def _odd_state(obj: Any) -> str:
    return re.sub(r" at 0x[0-9a-f]+", "", repr(obj))


def _odd_error(kind: str, value: Any) -> Any:
    """The error a call must raise for *value*, None if it must accept it, or
    ... if either may happen (the value is valid, the call may refuse it for
    what it means, as a bounded semaphore refuses a release of 2**100)."""
    if kind == "blocking":
        return ZeroDivisionError if isinstance(value, _BadBool) else None
    if kind == "count":
        if isinstance(value, bool) or value.__class__ is int:
            return ValueError if value < 0 else ...
        return TypeError
    # A timeout.
    if value is None or isinstance(value, (_BadBool, _HalfIndex, str)):
        return None if value is None else TypeError
    if value != value:
        return ValueError
    if value < 0 and kind == "timeout":
        return None if value == -1 else ValueError
    return None


async def _still_works(w: World, obj: Any) -> None:
    if isinstance(obj, (aiologic.Event, aiologic.REvent, aiologic.CountdownEvent)):
        if isinstance(obj, aiologic.CountdownEvent):
            obj.up()
            obj.down()
        assert await w.wait(obj, 0) is (not obj.waiting and bool(obj)), obj
    elif isinstance(obj, (aiologic.Latch, aiologic.Barrier)):
        await w.wait(obj, DEADLINE)
    elif _held_elsewhere(obj):
        pass  # by another thread: it must still be held
    else:
        assert await w.acquire(obj, blocking=False), obj
        w.release(obj)


def _held_elsewhere(obj: Any) -> bool:
    if isinstance(obj, aiologic.Lock):
        owners = [obj.owner]
    elif isinstance(obj, aiologic.CapacityLimiter):
        owners = list(obj.borrowers)
    else:
        return isinstance(obj, aiologic.Semaphore) and obj.value == 0
    me = ("threading", threading.get_ident())
    return any(owner is not None and owner != me for owner in owners)


@pytest.mark.parametrize("face", ["threading", "asyncio", "trio"])
@pytest.mark.parametrize("odd", ODD_CALLS, ids=lambda odd: odd.name)
def test_odd_arguments_change_nothing(face: str, odd: OddCall) -> None:
    """Issue 19: every argument is read before anything changes."""

    async def body(w: World) -> list[str]:
        problems = []
        for value in ODD_ARGUMENTS:
            obj = await odd.make(w)
            before = _odd_state(obj)
            result = await outcome_of(odd.call(w, obj, value))
            expected = _odd_error(odd.kind, value)
            if isinstance(result, Exception):
                if expected is None or (
                    expected is not ... and not isinstance(result, expected)
                ):
                    problems.append(f"{value!r}: raised {result!r}")
                if _odd_state(obj) != before:
                    problems.append(f"{value!r}: {before} became {_odd_state(obj)}")
                    continue
                await _still_works(w, obj)
                if _odd_state(obj) != before and not isinstance(obj, aiologic.Latch):
                    problems.append(f"{value!r}: unusable afterwards: {obj!r}")
            elif expected not in (None, ...):
                problems.append(f"{value!r}: accepted ({result!r}), not {expected}")
        return problems

    problems = run_in(face, body)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("how", ["kill", "timeout"])
@pytest.mark.parametrize("green", ["gevent", "eventlet"])
def test_fault_condition_wait_interrupted_while_taking_the_lock_back(
    green: str, how: str
) -> None:
    """A green waiter whose wait timed out is taking the lock back (the lock
    is busy) when it is killed or its Timeout fires: the exception must come
    out of wait() with the lock held again, as with asyncio and trio, so that
    the caller's `with cv:` can release it."""

    async def body(w: World) -> None:
        for make in (aiologic.Lock, aiologic.RLock):
            cv = aiologic.Condition(make())

            async def waiter(w: World, cv: Any = cv) -> Any:
                async with w.hold(cv):
                    return await w.wait(cv, 0.01)

            await w.lock(cv)
            task = w.spawn(waiter)
            await w.unlock(cv)
            await w.wait_until(lambda cv=cv: cv.waiting == 1)
            await w.lock(cv)
            # The wait times out; the waiter then queues for the lock we hold.
            await w.wait_until(lambda cv=cv: cv.waiting == 0 and cv.lock.waiting == 1)
            task.cancel(timeout=how == "timeout")
            await w.sleep(0.01)
            await w.unlock(cv)
            assert await task.join() is CANCELLED
            assert not cv.lock.locked() and cv.lock.waiting == 0, cv.lock

    run_in(green, body)
