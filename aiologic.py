"""Synchronization primitives for threads, greenlets and coroutines at once.

One lock, queue or event can be shared by plain threads, gevent and eventlet
greenlets, and asyncio, trio and anyio tasks, in any number of threads and event
loops, without a global lock. State changes are single operations on builtin
containers that are atomic on their own (`list.pop`, `deque.append`...); where
one operation is not enough, a primitive keeps a short critical section of its
own (a plain lock, never held while anyone waits), and a module-wide one guards
state made on first use. Every wait is a one-shot ticket that is either set by a releaser or given up by
its owner, never both; a wake-up that can no longer be delivered (the waiter's
loop closed, its run or hub gone) counts as given up.
"""

from __future__ import annotations

__version__ = "0.2.0"

__all__ = (
    # events and flags
    "Event",
    "REvent",
    "CountdownEvent",
    "Flag",
    # barriers
    "Latch",
    "Barrier",
    "RBarrier",
    "BrokenBarrierError",
    # locks
    "Lock",
    "RLock",
    "RWLock",
    "ResourceGuard",
    "BusyResourceError",
    "synchronized",
    # semaphores and limiters
    "Semaphore",
    "BoundedSemaphore",
    "BinarySemaphore",
    "BoundedBinarySemaphore",
    "CapacityLimiter",
    "RCapacityLimiter",
    # conditions
    "Condition",
    # queues
    "SimpleQueue",
    "SimpleLifoQueue",
    "Queue",
    "LifoQueue",
    "PriorityQueue",
    "QueueEmpty",
    "QueueFull",
    "QueueShutDown",
    # calls in the wrong face
    "GreenWaitInLoopWarning",
    # statistics, in anyio's shape
    "LockStatistics",
    "SemaphoreStatistics",
    "EventStatistics",
    "ConditionStatistics",
    "CapacityLimiterStatistics",
    "QueueStatistics",
    "SyncQueueView",
    "AsyncQueueView",
    # low-level namespace
    "lowlevel",
)

import os
import sys
from _thread import TIMEOUT_MAX as _TIMEOUT_MAX
from _thread import _local
from _thread import allocate_lock as _allocate_lock
from _thread import get_ident as _get_ident
from _warnings import warn as _warn  # built in: `warnings` may be unimported
from _weakref import ref as _weakref_ref
from collections import deque
from contextvars import ContextVar
from heapq import heapify as _heapify
from itertools import count as _count
from operator import index as _index
from time import monotonic as _monotonic
from time import sleep as _sleep

# `typing` is not imported at run time: type checkers treat any name called
# TYPE_CHECKING as true, the interpreter sees False.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from _thread import LockType
    from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
    from types import MappingProxyType
    from typing import (
        Any,
        ClassVar,
        Final,
        Literal,
        NoReturn,
        Protocol,
        TypeVar,
        overload,
    )
    from typing import Generic as _GenericBase
    from weakref import WeakKeyDictionary

    from _typeshed import SupportsRichComparison
    from typing_extensions import ParamSpec, Self

    _T = TypeVar("_T")
    _OrderedT = TypeVar("_OrderedT", bound=SupportsRichComparison)
    _D = TypeVar("_D")
    _R_co = TypeVar("_R_co", covariant=True)
    _TicketT = TypeVar("_TicketT", bound="_Ticket")
    _P = ParamSpec("_P")
    _R = TypeVar("_R")
    _ClassT = TypeVar("_ClassT", bound="type[Any]")

    class _GreenLockLike(Protocol):
        # One of our locks: `synchronized` takes it with `with`/`async with`.
        def green_acquire(self, *args: Any, **kwargs: Any) -> Any: ...

    class _LockLike(Protocol):
        # A threading, asyncio, trio or anyio lock (or semaphore, condition).
        def acquire(self, *args: Any, **kwargs: Any) -> Any: ...

    _LockT = TypeVar("_LockT", bound="_GreenLockLike | _LockLike")
    _E = TypeVar("_E", bound=BaseException)

    class _AsyncWaitable(Protocol[_R_co]):
        def _async_wait(
            self, timeout: float | None, /
        ) -> Coroutine[Any, Any, _R_co]: ...

else:
    # Stand in for the TypeVars in class bases like Queue[_T].
    _T = _OrderedT = _LockT = _TypeVarStandIn = object()

    class _GenericBase:
        """Stands in for typing.Generic so that ``Queue[int]`` works at run time."""

        __slots__ = ()

        def __class_getitem__(cls, item):
            if item is _TypeVarStandIn:  # in a class statement: Queue(_Gets[_T])
                return cls
            # A real generic alias, as typing.Generic makes: typing.get_args()
            # sees the arguments, calling it makes an instance of cls.
            try:
                from types import GenericAlias
            except ImportError:  # Python 3.8
                from typing import _GenericAlias as GenericAlias

                if not isinstance(item, tuple):
                    item = (item,)
            return GenericAlias(cls, item)


_modules = sys.modules

# =============================================================================
# Compatibility
# =============================================================================

# Under gevent or eventlet monkey-patching, `_thread.allocate_lock` makes green
# locks; a thread that parks must use the original one, and identify itself
# with the original `get_ident`.
if "gevent.monkey" in _modules and _modules["gevent.monkey"].is_module_patched(
    "_thread"
):
    _get_original = _modules["gevent.monkey"].get_original
    _allocate_lock = _get_original("_thread", "allocate_lock")
    _get_ident = _get_original("_thread", "get_ident")
    _thread_local = _get_original("_thread", "_local")
    del _get_original
elif "eventlet.patcher" in _modules and _modules["eventlet.patcher"].is_monkey_patched(
    "thread"
):
    _original_thread = _modules["eventlet.patcher"].original("_thread")
    _allocate_lock = _original_thread.allocate_lock
    _get_ident = _original_thread.get_ident
    _thread_local = _original_thread._local
    del _original_thread
else:
    _thread_local = _local

# A sleep of the OS thread, for the rare spin that waits for another thread
# while holding a lock (`SimpleQueue._fence_puts`): a patched `time.sleep`
# would switch to the hub there instead.
_thread_sleep = _sleep
if "gevent.monkey" in _modules and _modules["gevent.monkey"].is_module_patched("time"):
    _thread_sleep = _modules["gevent.monkey"].get_original("time", "sleep")
elif "eventlet.patcher" in _modules and _modules["eventlet.patcher"].is_monkey_patched(
    "time"
):
    _thread_sleep = _modules["eventlet.patcher"].original("time").sleep


# Our exceptions are also the stdlib's ones of the same meaning (queue.Empty,
# asyncio.QueueEmpty, threading.BrokenBarrierError...), so that code written
# for the stdlib catches them. Their modules are not ours to import (asyncio
# alone takes ~30 ms), so each class takes the foreign base once its module
# has been imported by someone: checked at our import, when aiologic first
# meets asyncio, and whenever one of these exceptions is made. A class gains
# bases, never loses one, and stays the same class object throughout.
# Entries: (our class, module name, attribute name); done ones are removed.
_FOREIGN_BASES: list[tuple[type[BaseException], str, str]] = []


def _adopt_foreign_bases() -> None:
    with _creation_lock:
        for entry in _FOREIGN_BASES.copy():
            cls, module_name, name = entry
            module = _modules.get(module_name)
            if module is None:
                continue
            _FOREIGN_BASES.remove(entry)
            base = getattr(module, name, None)  # absent before some version
            if isinstance(base, type) and not issubclass(cls, base):
                # In front: the foreign base may subclass one of ours
                # (RuntimeError), and the MRO must see it first.
                try:
                    cls.__bases__ = (base, *cls.__bases__)
                except TypeError:  # pragma: no cover - an incompatible layout
                    pass


def _adopting_new(cls: type[_E], *args: object, **kwargs: object) -> _E:
    if _FOREIGN_BASES:
        _adopt_foreign_bases()
    return BaseException.__new__(cls, *args)


# The one base of each such exception: a plain subclass of the builtin one,
# without __slots__, so that CPython accepts the foreign bases (same layout).
class _StdlibError(Exception):
    __new__ = _adopting_new


class _StdlibRuntimeError(RuntimeError):
    __new__ = _adopting_new


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Final[Any] = _Missing()
# The answer a waiter of a shut-down queue gets instead of a unit.
_SHUT_DOWN: Final[Any] = object()

# =============================================================================
# Backend detection
# =============================================================================


class _LibraryLocal(_local):
    """A thread-local whose ``name``, when not None, overrides detection."""

    _name: str | None = None

    @property
    def name(self) -> str | None:
        return self._name

    @name.setter
    def name(self, value: str | None) -> None:
        if value is not None:
            if not _overridden:
                # From now on the fast paths ask the full detection.
                _overridden.append(None)
            # Before the override is in force, even when another thread
            # appended and has not renewed the look yet (once it is `_ASK`,
            # every renewal keeps it so).
            if _checkpoint_look is not _ASK:
                _renew_checkpoint_look()
        self._name = value


# Non-empty once any thread has overridden a library name.
_overridden: list[None] = []


current_green_library_tlocal = _LibraryLocal()
current_async_library_tlocal = _LibraryLocal()


def current_green_library() -> str:
    """Return the green library of this OS thread.

    ``"gevent"`` if a gevent hub exists in this thread, ``"eventlet"`` if an
    eventlet hub does, ``"threading"`` otherwise. Neither library is imported.
    """
    if _overridden:
        name = current_green_library_tlocal.name
        if name is not None:
            return name
    # gevent keeps its hubs in a thread-local; this lookup never creates one.
    # https://github.com/gevent/gevent/blob/master/src/gevent/_hub_local.py
    if (
        "gevent" in _modules
        and _modules["gevent._hub_local"].get_hub_if_exists() is not None
    ):
        return "gevent"
    # https://github.com/eventlet/eventlet/blob/master/eventlet/hubs/__init__.py
    if (
        "eventlet.hubs" in _modules
        and getattr(_modules["eventlet.hubs"]._threadlocal, "hub", None) is not None
    ):
        return "eventlet"
    return "threading"


if TYPE_CHECKING:

    @overload
    def current_async_library(*, failsafe: Literal[False] = False) -> str: ...
    @overload
    def current_async_library(*, failsafe: bool) -> str | None: ...


def current_async_library(*, failsafe: bool = False) -> str | None:
    """Return the async library running the current task.

    ``"trio"`` or ``"asyncio"`` (anyio reports the backend it runs on).
    Raises `RuntimeError` outside an event loop, or returns None when
    *failsafe* is true.
    """
    name: str | None
    if _overridden:
        name = current_async_library_tlocal.name
        if name is not None:
            return name
    sniffio = _modules.get("sniffio")
    if sniffio is not None:
        # trio sets sniffio's thread-local while it runs; others may set the
        # context variable.
        name = sniffio.thread_local.name
        if name is None:
            name = sniffio.current_async_library_cvar.get()
        if name is not None:
            return name
    asyncio = _modules.get("asyncio")
    loop = None
    if asyncio is not None:
        loop = asyncio._get_running_loop()
        # An asyncio task first: a trio guest run on this loop is "in a trio
        # run" between its ticks too, while the host's tasks run.
        if loop is not None and asyncio.current_task(loop) is not None:
            return "asyncio"
    trio = _modules.get("trio")
    if trio is not None and _in_trio_run(trio):
        return "trio"
    if loop is not None:
        return "asyncio"
    if failsafe:
        return None
    msg = "this code is not running in a known event loop (asyncio or trio)"
    raise RuntimeError(msg)


# asyncio's C functions, bound once asyncio has been imported by someone.
_aio_get_running_loop: Any = None
_aio_current_task: Any = None


def _bind_asyncio() -> Any:
    global _aio_get_running_loop, _aio_current_task
    if _FOREIGN_BASES:
        _adopt_foreign_bases()
    asyncio = _modules["asyncio"]
    current_task: Any = asyncio.current_task
    current_tasks: dict[Any, Any] | None = getattr(
        asyncio.tasks, "_current_tasks", None
    )
    if hasattr(current_task, "__code__") and isinstance(current_tasks, dict):
        # Python < 3.12 implements current_task() in Python, as a lookup in
        # this dict; asking the dict directly saves a frame on every acquire.
        # https://github.com/python/cpython/blob/3.11/Lib/asyncio/tasks.py
        current_task = current_tasks.get
    _aio_current_task = current_task
    get_running_loop = asyncio._get_running_loop
    running_loop = getattr(asyncio.events, "_running_loop", None)
    if hasattr(get_running_loop, "__code__") and hasattr(running_loop, "loop_pid"):
        # Without the C accelerator (PyPy) this function calls os.getpid(), a
        # system call, every time; compare with a pid cached at fork instead.
        # https://github.com/python/cpython/blob/3.11/Lib/asyncio/events.py
        get_running_loop = _running_loop_reader(running_loop)
    _aio_get_running_loop = get_running_loop
    return _aio_get_running_loop


_pid = os.getpid()


def _update_pid() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_update_pid)


def _running_loop_reader(running_loop: Any) -> Callable[[], Any]:
    def get_running_loop() -> Any:
        loop, pid = running_loop.loop_pid
        if loop is not None and pid == _pid:
            return loop
        return None

    return get_running_loop


def _asyncio_task() -> object:
    """The current asyncio task, or None (not in one, or names overridden)."""
    get_running_loop = _aio_get_running_loop
    if get_running_loop is None:
        if "asyncio" not in _modules:
            return None
        get_running_loop = _bind_asyncio()
    if _overridden:
        return None
    loop = get_running_loop()
    if loop is None:
        return None
    return _aio_current_task(loop)


def _async_library() -> str:
    """`current_async_library()` for our own use: the common case first.

    Code inside an asyncio task is asyncio (a trio guest run on an asyncio
    loop runs in callbacks, outside any asyncio task).
    """
    if _asyncio_task() is not None:
        return "asyncio"
    return current_async_library()


def _current_async_task() -> object:
    """The current async task object (an asyncio or trio task)."""
    get_running_loop = _aio_get_running_loop
    if get_running_loop is None or _overridden:
        task = _asyncio_task()
    else:  # `_asyncio_task()` inline
        loop = get_running_loop()
        task = None if loop is None else _aio_current_task(loop)
    if task is not None:
        return task
    return _other_async_task()


def _other_async_task() -> object:
    """`_current_async_task()` where `_asyncio_task()` found none."""
    trio = _modules.get("trio")
    if trio is not None and not _overridden:
        # Not in an asyncio task: in a trio task, the common case next.
        try:
            return trio.lowlevel.current_task()
        except RuntimeError:  # not in a trio task
            pass
    return _async_task(current_async_library())


def _in_trio_run(trio: Any) -> bool:
    try:
        return trio.lowlevel.in_trio_run()  # type: ignore[no-any-return]
    except AttributeError:  # trio < 0.23
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            return False
        return True


def _green_task() -> object:
    """The identity of the current green task, cheaply.

    The thread ident for a thread's main greenlet (so code of one thread is
    one task whether or not greenlet is imported), the greenlet otherwise.
    """
    greenlet = _modules.get("greenlet")
    if greenlet is not None:
        current = greenlet.getcurrent()
        if current.parent is not None:
            cls = current.__class__
            if not _type_libraries.get(cls) and not _library_of_type(cls):
                _note_library(current)
            return current
    return _get_ident()


# Task type -> the library of its type, "" for a raw greenlet (whose library
# is its thread's).
_type_libraries: dict[type, str] = {}


def _library_of_type(cls: type) -> str:
    try:
        return _type_libraries[cls]
    except KeyError:
        pass
    modules = [  # _asyncio.Task, gevent._gevent_cgreenlet.Greenlet...
        base.__module__.partition(".")[0].lstrip("_") for base in cls.__mro__
    ]
    for module in modules:  # subclasses of gevent.Greenlet, asyncio.Task...
        if module in ("gevent", "eventlet", "asyncio", "trio"):
            library = module
            break
    else:
        library = "" if "greenlet" in modules else modules[0]
    _type_libraries[cls] = library
    return library


# A raw greenlet (`eventlet.spawn_n`, a bare `greenlet.greenlet` under a
# gevent hub) belongs to the green library of the OS thread that runs it,
# which only that thread can find out: `_green_task()` notes it there, the
# first time it sees the greenlet, for readers in any thread.
_greenlet_libraries: WeakKeyDictionary[object, str] | None = None


def _note_library(greenlet: object) -> None:
    global _greenlet_libraries
    libraries = _greenlet_libraries
    if libraries is None:
        import weakref

        with _creation_lock:
            if _greenlet_libraries is None:
                _greenlet_libraries = weakref.WeakKeyDictionary()
            libraries = _greenlet_libraries
    if greenlet not in libraries:
        libraries[greenlet] = current_green_library()


def _async_task(library: str) -> object:
    """The current task object of *library*."""
    if library == "asyncio":
        task = _modules["asyncio"].current_task()
    elif library == "trio":
        task = _modules["trio"].lowlevel.current_task()
    else:
        msg = f"unsupported async library {library!r}"
        raise RuntimeError(msg)
    if task is None:
        msg = "no current task (called from a callback?)"
        raise RuntimeError(msg)
    return task


def _task_identity(task: object) -> tuple[str, int]:
    """Turn a stored task object into the public ``(library, id)`` form.

    The same from every thread: it never depends on the reader's library.
    """
    if isinstance(task, int):
        return ("threading", task)
    library = _library_of_type(type(task))
    if not library:
        libraries = _greenlet_libraries
        # Every green task object went through `_green_task()` first.
        library = "threading" if libraries is None else libraries.get(task, "threading")
    return (library, id(task))


# =============================================================================
# Time and checkpoints
# =============================================================================


# What a negative timeout means depends on the kind of call, as with the
# stdlib counterpart of each (`_check_timeout(timeout, negative)`):
_AS_WAIT: Final = 0  # waits and sleeps (threading.Event.wait): expired already
_AS_ACQUIRE: Final = 1  # acquires (threading.Lock.acquire): -1 is "no limit"
_AS_QUEUE: Final = 2  # queue puts and gets (queue.Queue): ValueError


def _check_timeout(timeout: float, negative: int = _AS_QUEUE) -> float | None:
    """Validate a timeout that is not None; return None for "forever".

    NaN and non-numbers are refused alike by every kind of call.
    """
    if timeout.__class__ is not float and timeout.__class__ is not int:
        try:
            timeout = timeout.__float__()  # numbers, not strings
        except AttributeError:
            msg = f"timeout must be a real number or None, not {timeout!r}"
            raise TypeError(msg) from None
    if timeout != timeout:
        msg = "timeout must not be NaN"
        raise ValueError(msg)
    if timeout < 0:
        if negative == _AS_WAIT:
            return 0.0
        if negative == _AS_ACQUIRE:
            if timeout == -1:
                return None
            msg = "timeout must be -1 (no limit) or a non-negative number"
            raise ValueError(msg)
        msg = "'timeout' must be a non-negative number"
        raise ValueError(msg)
    if timeout >= _TIMEOUT_MAX:
        # Larger than any backend accepts and than any program runs: forever.
        return None
    return timeout


# The waiting arguments of a call, read before anything changes: an argument
# whose __bool__ or __float__ raises leaves nothing taken.


def _wait_args(
    blocking: object, timeout: float | None, negative: int = _AS_QUEUE
) -> tuple[bool, float | None]:
    if timeout is not None:
        timeout = _check_timeout(timeout, negative)
    return bool(blocking), timeout


def _acquire_args(blocking: object, timeout: float | None) -> tuple[bool, float | None]:
    # As threading's acquire: -1 is no limit, and a non-blocking call takes
    # no other timeout (it could never mean anything).
    blocking = bool(blocking)
    if timeout is None:
        return blocking, None
    checked = _check_timeout(timeout, _AS_ACQUIRE)
    if not blocking and timeout != -1:
        msg = "can't specify a timeout for a non-blocking call"
        raise ValueError(msg)
    return blocking, checked


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return bool(value)


def _read_checkpoint_flags() -> dict[str, bool]:
    green = _env_flag("AIOLOGIC_GREEN_CHECKPOINTS")
    async_ = _env_flag("AIOLOGIC_ASYNC_CHECKPOINTS")
    flags: dict[str, bool] = {}
    for library, group, default in (
        ("threading", green, False),
        ("gevent", green, False),
        ("eventlet", green, False),
        ("asyncio", async_, False),
        ("trio", async_, True),
    ):
        own = _env_flag(f"AIOLOGIC_{library.upper()}_CHECKPOINTS")
        if own is not None:
            flags[library] = own
        elif group is not None:
            flags[library] = group
        else:
            flags[library] = default
    return flags


# Read once at import: library name -> checkpoints on.
_CHECKPOINTS: Final = _read_checkpoint_flags()
_GREEN_CHECKPOINTS_ANY: Final = any(
    _CHECKPOINTS[name] for name in ("threading", "gevent", "eventlet")
)
_ASYNC_CHECKPOINTS_ANY: Final = any(_CHECKPOINTS[name] for name in ("asyncio", "trio"))
_ASYNCIO_CHECKPOINTS: Final = _CHECKPOINTS["asyncio"]


def _read_perfect_fairness() -> bool:
    flag = _env_flag("AIOLOGIC_PERFECT_FAIRNESS")
    if flag is not None:
        return flag
    # On by default where the GIL is on (free-threaded 3.13+ reports False).
    gil_enabled = getattr(sys, "_is_gil_enabled", None)
    return gil_enabled is None or bool(gil_enabled())


# Read once at import: hand-offs peek at the head waiter and remove it only
# after it has been handed the unit (see `_Acquirable._hand_off`).
_PERFECT_FAIRNESS: Final = _read_perfect_fairness()

# The innermost enable_checkpoints()/disable_checkpoints() of this context.
_checkpoints_override: ContextVar[bool | None] = ContextVar(
    "_checkpoints_override", default=None
)
# One entry per override context active anywhere: lets the fast paths skip the
# context variable lookup when nobody uses the overrides.
_overrides_active: list[None] = []


def _green_checkpoints_on() -> bool:
    if _overrides_active:
        override = _checkpoints_override.get()
        if override is not None:
            return override
    return _GREEN_CHECKPOINTS_ANY and _CHECKPOINTS[current_green_library()]


def _async_checkpoints_on(library: str | None = None) -> bool:
    if _overrides_active:
        override = _checkpoints_override.get()
        if override is not None:
            return override
    if not _ASYNC_CHECKPOINTS_ANY:
        return False
    if library is None:
        library = _async_library()
    return _CHECKPOINTS.get(library, False)


# By default only trio checkpoints: the fast filters below then only ask
# whether trio runs here.
_TRIO_CHECKPOINTS_ONLY: Final = _ASYNC_CHECKPOINTS_ANY and not _ASYNCIO_CHECKPOINTS
# sniffio's thread-local and context variable, bound once trio (which imports
# sniffio) is imported. Trio >= 0.23 names itself in the thread-local while it
# runs here (guest ticks too, not the host's tasks); trio 0.22 in the context
# variable of its tasks. Nothing else makes `_async_library()` say "trio".
_sniffio_local: Any = None
_sniffio_cvar: Any = None


class _Named:
    """Stands in for sniffio's thread-local in `_checkpoint_look`."""

    __slots__ = ("name",)

    def __init__(self, name: str | None) -> None:
        self.name = name


_ASK: Final = _Named("ask")  # the full `_async_checkpoint_due()` decides
_NEVER: Final = _Named(None)  # no async checkpoints

# What the uncontended async paths look at before they call
# `_async_checkpoint_due()`, written inline as
#     look = _checkpoint_look
#     if (look.name if look is not None else "trio" in _modules) and ...
# A false look means "certainly no checkpoint due", for the price of an
# attribute instead of a call: None while trio is not imported; then sniffio's
# thread-local, where trio (>= 0.23) names itself while it runs in this
# thread; `_ASK` while the look cannot tell (asyncio checkpoints on, trio 0.22
# naming itself in a context variable, checkpoints or library detection
# overridden). Changed only by `_renew_checkpoint_look()`.
_checkpoint_look: Any = None
_look_lock = _allocate_lock()


def _trio_names_thread() -> bool:
    """Does the imported trio name itself in sniffio's thread-local (>= 0.23)?"""
    version = getattr(_modules.get("trio"), "__version__", "")
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:  # unknown: assume not
        return False
    return (major, minor) >= (0, 23)


def _renew_checkpoint_look() -> None:
    """Set `_checkpoint_look` from what is known now (after each change)."""
    global _checkpoint_look
    with _look_lock:  # rare calls, each reading all of what it depends on
        if _overrides_active or _overridden:
            look: Any = _ASK
        elif not _TRIO_CHECKPOINTS_ONLY:
            look = _ASK if _ASYNCIO_CHECKPOINTS else _NEVER
        elif _sniffio_local is None:
            look = None
        else:
            look = _sniffio_local if _trio_names_thread() else _ASK
        _checkpoint_look = look


def _bind_sniffio() -> bool:
    """Bind sniffio's names once trio is imported; False if not yet."""
    global _sniffio_local, _sniffio_cvar
    trio = _modules.get("trio")
    # Not while another thread still imports it (no run can exist yet): its
    # __version__ comes last, and the look would ask for good without it.
    if trio is None or getattr(getattr(trio, "__spec__", None), "_initializing", False):
        return False
    sniffio = _modules.get("sniffio")
    if sniffio is None:  # pragma: no cover - trio imports it
        return False
    _sniffio_cvar = sniffio.current_async_library_cvar
    _sniffio_local = sniffio.thread_local
    _renew_checkpoint_look()
    return True


_renew_checkpoint_look()  # the flags read at import


def _trio_named_here() -> bool:
    # After `_bind_sniffio()`: does sniffio say trio runs here?
    name = _sniffio_local.name
    if name is None:
        name = _sniffio_cvar.get()
    return name == "trio"  # type: ignore[no-any-return]


def _async_checkpoint_due() -> bool:
    """False if an async call here certainly has no checkpoint to make.

    A cheap filter in front of `_async_checkpoints_on()`: by default trio
    checkpoints and asyncio does not, and sniffio tells whether trio runs
    here, where the full detection costs several calls.
    """
    if _overrides_active:
        return True
    if not _TRIO_CHECKPOINTS_ONLY:
        return _ASYNCIO_CHECKPOINTS
    if _overridden:
        return True
    local = _sniffio_local
    if local is None:
        if not _bind_sniffio():
            return False  # no trio run anywhere: asyncio's "off" holds
        local = _sniffio_local
    # `_trio_named_here()` inline.
    name = local.name
    if name is None:
        name = _sniffio_cvar.get()
    return name == "trio"  # type: ignore[no-any-return]


def _async_checkpoint_library() -> str | None:
    """The library whose checkpoint an async call here makes, or None.

    `_async_checkpoint_due()` and `_async_checkpoints_on()` in one step, the
    default case answered from sniffio.
    """
    if not (_overrides_active or _overridden) and _TRIO_CHECKPOINTS_ONLY:
        if _sniffio_local is None and not _bind_sniffio():
            return None
        if not _trio_named_here():
            return None
        # trio runs here; an asyncio task here is a guest of it (trio-asyncio)
        return "trio" if _asyncio_task() is None else None
    library = _async_library()
    return library if _async_checkpoints_on(library) else None


def green_checkpoint(*, force: bool = False) -> None:
    """Let other green tasks run, if checkpoints are on here (or *force*)."""
    if force or _green_checkpoints_on():
        _green_yield(current_green_library())


def _green_yield(library: str) -> None:
    if library == "gevent":
        _modules["gevent"].sleep(0)
    elif library == "eventlet":
        _modules["eventlet"].sleep(0)
    else:
        _sleep(0)


async def async_checkpoint(*, force: bool = False) -> None:
    """Yield to the event loop and let cancellation in, if checkpoints are on."""
    if force or _async_checkpoints_on():
        await _async_yield(_async_library())


def _async_yield(library: str | None) -> Awaitable[None]:
    # A plain function returning the library's checkpoint: no frame of ours
    # stays between the caller and the scheduler.
    if library == "trio":
        return _modules["trio"].lowlevel.checkpoint()  # type: ignore[no-any-return]
    return _modules["asyncio"].sleep(0)  # type: ignore[no-any-return]


def green_sleep(seconds: float) -> None:
    """Sleep in the current green world (blocks the thread, or yields to the hub)."""
    # The parameter is reused for the checked value (None: forever).
    seconds = _check_timeout(seconds, _AS_WAIT)  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
    library = current_green_library()
    if library == "gevent":
        _modules["gevent"].sleep(seconds)
    elif library == "eventlet":
        _modules["eventlet"].sleep(seconds)
    elif seconds is None:  # pyright: ignore[reportUnnecessaryComparison]
        _allocate_lock().acquire()  # pragma: no cover - sleeps forever
    else:
        _sleep(seconds)


async def async_sleep(seconds: float) -> None:
    """Sleep in the current async world."""
    checked = _check_timeout(seconds, _AS_WAIT)
    if _async_library() == "trio":
        trio = _modules["trio"]
        if checked is None:
            await trio.sleep_forever()
        else:
            await trio.sleep(checked)
    else:
        asyncio = _modules["asyncio"]
        if checked is None:  # a future nobody resolves: until cancelled
            await asyncio.get_running_loop().create_future()
        else:
            await asyncio.sleep(checked)


class _CheckpointsSwitch:
    """Context manager (sync and async) that turns checkpoints on or off."""

    __slots__ = ("_on", "_tokens")

    def __init__(self, on: bool) -> None:
        self._on = on
        self._tokens: list[Any] = []

    def __enter__(self) -> None:
        _overrides_active.append(None)
        _renew_checkpoint_look()
        self._tokens.append(_checkpoints_override.set(self._on))

    def __exit__(self, *exc_info: object) -> None:
        tokens = self._tokens
        try:
            token = tokens.pop()
        except IndexError:
            msg = "__exit__() without a matching __enter__()"
            raise RuntimeError(msg) from None
        try:
            _checkpoints_override.reset(token)
        except BaseException:  # ValueError: entered in another context
            tokens.append(token)
            raise
        _overrides_active.pop()
        _renew_checkpoint_look()

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__()


def enable_checkpoints() -> _CheckpointsSwitch:
    """Turn checkpoints on in this context (``with`` or ``async with``)."""
    return _CheckpointsSwitch(True)


def disable_checkpoints() -> _CheckpointsSwitch:
    """Turn checkpoints off in this context (``with`` or ``async with``)."""
    return _CheckpointsSwitch(False)


# =============================================================================
# Parkers and one-shot tickets
# =============================================================================
#
# Every blocking call makes one ticket and publishes it in the primitive's
# waiter deque. From then on two parties race to decide the ticket exactly once:
#
# * a releaser (any thread, any loop) that wants to hand the resource over calls
#   `set()`: it claims the ticket and wakes its owner;
# * the owner, when its wait ends by timeout or cancellation, calls `cancel()`:
#   it claims the ticket and withdraws.
#
# The claim is `list.pop()` on a one-element list, atomic under the GIL and
# under free-threading (each list has its own critical section). Whoever loses
# knows the other side won: a releaser whose `set()` fails moves on to the next
# waiter; a waiter whose `cancel()` fails owns what was handed to it, and if it
# is leaving anyway (an exception is in flight) it passes that on (`undo`).
#
# The ticket classes differ only in how they park and wake: a pre-acquired
# `_thread` lock for threads, a future for asyncio, `wait_task_rescheduled` for
# trio, a hub switch for gevent and eventlet. Wakes from the waiter's own
# thread take the direct path; wakes from elsewhere go through the backend's
# thread-safe entry (built for eventlet, which has none).


class _Ticket:
    """One-shot decision between a releaser (`set`) and the waiter (`cancel`)."""

    __slots__ = ("_pending", "payload", "withdrew")

    def __init__(self, payload: Any) -> None:
        # Invariants: `_pending` starts as [True, False] and only shrinks, by
        # `remove()`, which takes out the one item asked for or fails without
        # a change (a releaser that comes late changes nothing). Removing
        # True decides the ticket: a releaser's claim() or the waiter's
        # cancel(). After a releaser's claim, removing False decides the
        # delivery: the waiter's cancel() (it runs, so what was handed over
        # is its own) or the releaser whose wake-up could not be delivered
        # (it takes the hand-off back; the ticket counts as given up).
        # `withdrew` is None until the waiter's first cancel(), then its
        # answer; only the waiter writes it.
        # `payload` is what the primitive needs to finish the claim for the
        # waiter: None (Event, Semaphore, a queue's semaphores), its stamp
        # (CountdownEvent), its task (Lock), (task, depth) (RLock),
        # (borrower, depth) (CapacityLimiter), (kind, task) (RWLock); a
        # Condition waiter's ticket carries what its lock's would, as a notify
        # queues it on that lock. A queue's shutdown() overwrites it with
        # _SHUT_DOWN before it sets the ticket ("no unit: shut down").
        self._pending = [True, False]
        self.payload = payload
        self.withdrew: bool | None = None

    def set(self) -> bool:
        """Claim the ticket for the releaser and wake the waiter.

        False if the waiter gave up first, or if its wake-up cannot be
        delivered (its loop is closed, its run or hub is gone): the hand-off
        is then the releaser's again, and it moves on to the next waiter.
        """
        try:
            self._pending.remove(True)
        except ValueError:  # decided already
            return False
        return self._wake() or self._take_back()

    def claim(self) -> bool:
        """Claim the ticket for the releaser without waking the waiter yet.

        For hand-offs that record the new owner first: the record must only
        ever name a waiter that is certain to get the unit. Follow it with
        `wake()`, and move on if that returns False.
        """
        try:
            self._pending.remove(True)
        except ValueError:
            return False
        return True

    def wake(self) -> bool:
        """Wake the waiter of a ticket claimed with `claim()`.

        False if the wake-up cannot be delivered: the ticket then counts as
        given up (the waiter's cancel() says so if it ever runs) and the
        hand-off is the caller's again.
        """
        return self._wake() or self._take_back()

    def _take_back(self) -> bool:
        # After a wake-up that could not be delivered: False if the hand-off
        # is the releaser's again, True if the waiter ran and took it anyway.
        try:
            self._pending.remove(False)
        except ValueError:
            return True
        return False

    def cancel(self) -> bool:
        """Claim the ticket for the waiter; True if it has given up (or had).

        Called by the waiter only. False means a releaser handed it something
        that is now the waiter's to keep or to pass on.
        """
        withdrew = self.withdrew
        if withdrew is not None:
            return withdrew
        pending = self._pending
        # `True in pending` only saves a raised ValueError in the common case
        # (a releaser claimed it): True, once gone, never comes back.
        if True in pending:
            try:
                pending.remove(True)
            except ValueError:  # a releaser claimed it since
                pass
            else:
                self.withdrew = True
                return True
        try:
            pending.remove(False)
        except ValueError:  # the releaser found it undeliverable: nothing is ours
            self.withdrew = True
            return True
        self.withdrew = False
        return False

    @property
    def pending(self) -> bool:
        """True until the ticket is decided (set or given up)."""
        return True in self._pending

    def _wake(self) -> bool:
        # Deliver the wake-up; False if the waiter's scheduler is gone.
        raise NotImplementedError

    def _gone(self) -> bool:
        # True once the waiter's scheduler is gone (its loop closed, its run
        # finished, its hub destroyed or its thread ended): a wake-up would
        # not be delivered. False may turn True at any moment; True stays.
        return False


if TYPE_CHECKING:

    class _GreenTicket(_Ticket):
        def park(self, timeout: float | None) -> None: ...

    class _AsyncTicket(_Ticket):
        # Returns normally only once a releaser has claimed the ticket and
        # woken the waiter, or (with a timeout) once *timeout* expired: a
        # park without one that returns was handed the ticket, for sure.
        def park(self, timeout: float | None) -> Awaitable[None]: ...

else:
    # The two kinds of ticket, for type checkers only (`park` is sync or async).
    _GreenTicket = _AsyncTicket = _Ticket


class _ThreadingTicket(_GreenTicket):
    __slots__ = ("_lock",)

    def __init__(self, payload: Any) -> None:
        self._pending = [True, False]
        self.payload = payload
        self.withdrew = None
        lock = _allocate_lock()
        lock.acquire()
        self._lock = lock

    def _wake(self) -> bool:
        self._lock.release()
        return True

    def park(self, timeout: float | None) -> None:
        if timeout is None:
            self._lock.acquire()
        else:
            self._lock.acquire(True, timeout)


def _noop(*args: object) -> None:
    pass


class _GeventTicket(_GreenTicket):
    __slots__ = ("_greenlet", "_hub", "_parked", "_thread")

    def __init__(self, payload: Any) -> None:
        self._pending = [True, False]
        self.payload = payload
        self.withdrew = None
        gevent = _modules["gevent"]
        self._hub = gevent.get_hub()
        self._greenlet = gevent.getcurrent()
        self._thread = _get_ident()
        self._parked = False

    def _wake(self) -> bool:
        loop = self._hub.loop
        if loop is None:  # the hub was destroyed: its greenlets never run again
            return False
        try:
            if _get_ident() == self._thread:
                loop.run_callback(self._resume)
            else:
                loop.run_callback_threadsafe(self._resume)
        except Exception:  # noqa: BLE001 - a destroyed loop refuses callbacks
            return False
        return True

    def _gone(self) -> bool:
        return self._hub.loop is None

    def _resume(self) -> None:
        # Runs in the hub. A wake that arrives after the wait ended (timeout,
        # exception) must not switch into a greenlet doing something else.
        if self._parked:
            self._parked = False
            self._greenlet.switch()

    def park(self, timeout: float | None) -> None:
        hub = self._hub
        loop = hub.loop
        # A started watcher keeps the hub loop alive while the only thing
        # that can wake us is another thread: the timer, or without one an
        # async watcher.
        if timeout is None:
            watcher = loop.async_()
            watcher.start(_noop)
        else:
            watcher = loop.timer(timeout)
            watcher.start(self._resume)
        self._parked = True
        try:
            hub.switch()
        finally:
            self._parked = False
            watcher.close()


class _EventletPortal:
    """A thread-safe "call this in the hub" for one eventlet hub.

    A socketpair whose read end the hub listens to, and a deque of callbacks:
    `call` from any thread appends and writes a byte; the hub drains both.
    Closed when its hub's thread ends (see `_eventlet_portal`); `call` then
    returns False.
    """

    __slots__ = ("_callbacks", "_hub", "_listener", "_reader", "_writer", "closed")

    def __init__(self, hub: Any) -> None:
        socket = _modules["eventlet.patcher"].original("socket")
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._callbacks: deque[Callable[[], object]] = deque()
        self._hub: Any = hub
        self._listener = hub.add(
            hub.READ, self._reader.fileno(), self._drain, _noop, False
        )
        self.closed = False

    def call(self, callback: Callable[[], object]) -> bool:
        """Run *callback* in the hub soon; False if the portal is closed."""
        if self.closed:
            return False
        self._callbacks.append(callback)
        try:
            self._writer.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # the buffer is full: a wake-up is pending anyway
        except OSError:  # closed meanwhile
            return False
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._hub.remove(self._listener)
        except Exception:  # noqa: BLE001 - the hub may be half torn down
            pass
        self._hub = None
        self._callbacks.clear()
        self._reader.close()
        self._writer.close()

    def _drain(self, fileno: int) -> None:
        try:
            while self._reader.recv(4096):
                pass
        except OSError:
            pass
        callbacks = self._callbacks
        while callbacks:
            try:
                callback = callbacks.popleft()
            except IndexError:
                break
            callback()


class _EventletPortalKeeper:
    # The thread-local owner of a thread's portal: dropped when the thread
    # ends (or its hub is replaced), it closes the portal, so a thread that
    # ran a hub leaves no sockets behind. Tickets hold the portal, not this.
    __slots__ = ("hub", "portal")

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        portal = self.portal = _EventletPortal(hub)
        _eventlet_portals[id(portal)] = (_get_ident(), portal)

    def __del__(self) -> None:
        portal = self.portal
        _eventlet_portals.pop(id(portal), None)
        portal.close()


# This thread's _EventletPortalKeeper, as `.keeper`; eventlet hubs live in a
# thread-local too, and each is used by its own thread only.
_eventlet_local = _thread_local()
# id(portal) -> (thread ident, portal) for every open portal: an entry goes
# with its keeper, so with its thread. Only a forked child reads it, to close
# the portals of the threads that did not come along (see
# `_after_fork_in_child`).
_eventlet_portals: dict[int, tuple[int, _EventletPortal]] = {}


def _eventlet_portal(hub: Any) -> _EventletPortal:
    keeper = getattr(_eventlet_local, "keeper", None)
    if keeper is None or keeper.hub is not hub:
        keeper = _EventletPortalKeeper(hub)
        _eventlet_local.keeper = keeper  # the old one, if any, closes its portal
    return keeper.portal


class _EventletTicket(_GreenTicket):
    __slots__ = ("_greenlet", "_hub", "_parked", "_portal", "_thread")

    def __init__(self, payload: Any) -> None:
        self._pending = [True, False]
        self.payload = payload
        self.withdrew = None
        hub = _modules["eventlet.hubs"].get_hub()
        self._hub = hub
        self._greenlet = _modules["greenlet"].getcurrent()
        self._thread = _get_ident()
        self._portal = _eventlet_portal(hub)
        self._parked = False

    def _wake(self) -> bool:
        if _get_ident() == self._thread and not self._portal.closed:
            self._hub.schedule_call_global(0, self._resume)
            return True
        # False once the portal is closed: its hub (and thread) are gone.
        return self._portal.call(self._resume)

    def _gone(self) -> bool:
        return self._portal.closed

    def _resume(self) -> None:
        if self._parked:
            self._parked = False
            self._greenlet.switch()

    def park(self, timeout: float | None) -> None:
        hub = self._hub
        timer = None
        if timeout is not None:
            timer = hub.schedule_call_global(timeout, self._resume)
        self._parked = True
        try:
            hub.switch()
        finally:
            self._parked = False
            if timer is not None:
                timer.cancel()


class _AsyncioTicket(_AsyncTicket):
    __slots__ = ("_future", "_loop", "_thread")

    def __init__(self, payload: Any, loop: Any = None) -> None:
        self._pending = [True, False]
        self.payload = payload
        self.withdrew = None
        if loop is None:
            loop = _modules["asyncio"].get_running_loop()
        self._loop = loop
        self._future = loop.create_future()
        self._thread = _get_ident()

    @property
    def pending(self) -> bool:
        # Task.cancel() cancels the awaited future at once, before the task
        # runs again to claim its ticket: it is leaving already.
        return True in self._pending and not self._future.cancelled()

    # `set()` and `wake()` with the common wake-up, from a task of the
    # waiter's own loop, inline: one frame less per hand-off.

    def set(self) -> bool:
        try:
            self._pending.remove(True)
        except ValueError:  # decided already
            return False
        if _aio_get_running_loop() is self._loop:
            future = self._future
            if not future.done():  # cancelled meanwhile
                future.set_result(None)
            return True
        return self._wake() or self._take_back()

    def wake(self) -> bool:
        if _aio_get_running_loop() is self._loop:
            future = self._future
            if not future.done():
                future.set_result(None)
            return True
        return self._wake() or self._take_back()

    def _wake(self) -> bool:
        loop = self._loop
        if _aio_get_running_loop() is loop:  # ours, running: `_resolve()` inline
            future = self._future
            if not future.done():  # cancelled meanwhile
                future.set_result(None)
            return True
        if loop.is_closed():  # its tasks never run again
            return False
        if _get_ident() == self._thread:
            self._resolve()
            return True
        try:
            loop.call_soon_threadsafe(self._resolve)
        except RuntimeError:  # closed since we looked
            return False
        return True

    def _gone(self) -> bool:
        return self._loop.is_closed()  # type: ignore[no-any-return]

    def _resolve(self) -> None:
        future = self._future
        if not future.done():
            try:
                future.set_result(None)
            except RuntimeError:  # the loop is closed
                pass

    def park(self, timeout: float | None) -> Awaitable[None]:
        # Without a timeout the future itself is awaited: no extra frame.
        if timeout is None:
            return self._future  # type: ignore[no-any-return]
        return self._park_until(timeout)

    async def _park_until(self, timeout: float) -> None:
        handle = self._loop.call_later(timeout, self._resolve)
        try:
            await self._future
        finally:
            handle.cancel()


class _TrioTicket(_AsyncTicket):
    __slots__ = ("_parked", "_task", "_thread", "_trio_token")

    def __init__(self, payload: Any) -> None:
        self._pending = [True, False]
        self.payload = payload
        self.withdrew = None
        lowlevel = _modules["trio"].lowlevel
        self._task = lowlevel.current_task()
        self._trio_token = lowlevel.current_trio_token()
        self._thread = _get_ident()
        # The coroutine of the park while it may be parked (see `park`).
        self._parked: Any = None

    def _wake(self) -> bool:
        trio = _modules["trio"]
        if _get_ident() == self._thread:
            # The run of this ticket is the one running here (not a later one)?
            try:
                own = trio.lowlevel.current_trio_token() is self._trio_token
            except RuntimeError:  # no run here
                own = False
            if own:  # `_resume()` inline
                parked = self._parked
                if parked is not None and parked.cr_frame is not None:
                    self._parked = None
                    trio.lowlevel.reschedule(self._task)
                return True
        try:
            self._trio_token.run_sync_soon(self._resume)
        except trio.RunFinishedError:  # the run ended: its tasks never run again
            return False
        return True

    def _gone(self) -> bool:
        # trio tells only by refusing a callback; its entry queue knows.
        queue = getattr(self._trio_token, "_reentry_queue", None)
        return getattr(queue, "done", False) is True

    def _resume(self) -> None:
        # In the trio thread. A ticket can be set while its task never parks
        # on it (the waiter served itself on its re-check), or once its park
        # is over (its coroutine closed); rescheduling a task that is not
        # blocked here would break trio.
        parked = self._parked
        if parked is not None and parked.cr_frame is not None:
            self._parked = None
            _modules["trio"].lowlevel.reschedule(self._task)

    def _abort(self, raise_cancel: object) -> object:
        # Runs in the trio thread when the task is cancelled: give up unless a
        # releaser claimed the ticket first, in which case its reschedule is on
        # the way and the task succeeds (the cancellation comes at the next
        # checkpoint, as trio wants for operations that completed).
        abort = _modules["trio"].lowlevel.Abort
        return abort.SUCCEEDED if self.cancel() else abort.FAILED

    def park(self, timeout: float | None) -> Awaitable[None]:
        # `_parked` is the park's coroutine: the task is blocked in it while
        # that has a frame. `_resume()` clears it; any other way out (a
        # successful abort, the coroutine closed) ends the coroutine, frame
        # and all, without a frame of ours to clear it.
        wait = _modules["trio"].lowlevel.wait_task_rescheduled
        if timeout is None:  # no frame of ours between the task and trio
            parked = self._parked = wait(self._abort)
        else:
            parked = self._parked = self._park_until(wait, timeout)
        return parked  # type: ignore[no-any-return]

    async def _park_until(self, wait: Any, timeout: float) -> None:
        try:
            with _modules["trio"].move_on_after(timeout):
                await wait(self._abort)
        finally:
            self._parked = None


_GREEN_TICKETS: Final[dict[str, type[_GreenTicket]]] = {
    "threading": _ThreadingTicket,
    "gevent": _GeventTicket,
    "eventlet": _EventletTicket,
}
_ASYNC_TICKETS: Final[dict[str, type[_AsyncTicket]]] = {
    "asyncio": _AsyncioTicket,
    "trio": _TrioTicket,
}


def _green_ticket(payload: Any = None) -> _GreenTicket:
    return _GREEN_TICKETS[current_green_library()](payload)


def _async_ticket(payload: Any = None) -> _AsyncTicket:
    # In an asyncio task? (`_asyncio_task()` inline, keeping the loop.)
    get_running_loop = _aio_get_running_loop
    if get_running_loop is None and "asyncio" in _modules:
        get_running_loop = _bind_asyncio()
    if get_running_loop is not None and not _overridden:
        loop = get_running_loop()
        if loop is not None and _aio_current_task(loop) is not None:
            return _AsyncioTicket(payload, loop)  # the common case first
    if "trio" in _modules and not _overridden:
        try:  # in a trio task, the common case next
            return _TrioTicket(payload)
        except RuntimeError:  # not in a trio task
            pass
    library = current_async_library()
    try:
        ticket_class = _ASYNC_TICKETS[library]
    except KeyError:
        msg = f"unsupported async library {library!r}"
        raise RuntimeError(msg) from None
    return ticket_class(payload)


def _wake_admitted(
    admitted: Iterable[_Ticket],
    lock: Any,
    take_back: Callable[[_Ticket], None],
    admit: Callable[[], Iterable[_Ticket]],
) -> None:
    """Wake the waiters a primitive admitted under *lock*, outside it.

    A waiter whose wake-up cannot be delivered (its loop or hub is gone)
    counts as given up: under *lock*, `take_back` undoes its admission and
    `admit` lets in whoever that makes room for, to be woken in turn.
    """
    while True:
        lost = [ticket for ticket in admitted if not ticket.wake()]
        if not lost:
            return
        with lock:
            for ticket in lost:
                take_back(ticket)
            admitted = admit()


def _snapshot(items: deque[_T]) -> list[_T]:
    """A copy of a deque that other threads change meanwhile.

    Copying a deque looks at each item in turn: on free-threaded builds a
    concurrent append or remove makes it raise RuntimeError ("deque mutated
    during iteration"); with the GIL it cannot happen. Try again.
    """
    while True:
        try:
            return list(items.copy())
        except RuntimeError:
            continue


def _pop_claim(claims: list[Any]) -> bool:
    """Take one of *claims* (a list of one-shot claims): False if none is
    left. A list's pop() is atomic, so racing callers each get a distinct
    answer."""
    try:
        claims.pop()
    except IndexError:
        return False
    return True


def _discard(waiters: deque[Any], item: object) -> None:
    try:
        waiters.remove(item)
    except ValueError:  # a releaser popped it already
        pass


class _WaiterQueue:
    """A primitive's waiter deque, and parking on it: a waiter that leaves
    early withdraws its ticket or passes on what was handed to it."""

    __slots__ = ()

    _waiters: deque[Any] | None

    @property
    def waiting(self) -> int:
        """How many tasks are waiting now."""
        waiters = self._waiters
        return 0 if waiters is None else len(waiters)

    def _any_gone(self) -> bool:
        """True if a waiter can no longer run (its loop, run or hub is gone)."""
        waiters = self._waiters
        return waiters is not None and any(
            ticket._gone() for ticket in _snapshot(waiters)
        )

    def _withdraw(self, ticket: _Ticket) -> None:
        # The waiter gave up (its cancel() won): take its ticket out of the queue.
        waiters = self._waiters
        if waiters is not None:
            _discard(waiters, ticket)

    def _undo(self, ticket: _Ticket) -> None:
        # Something was handed to a waiter that is leaving anyway: pass it on.
        pass

    def _green_park(self, ticket: _GreenTicket, timeout: float | None) -> bool:
        """Park a published green ticket: True if it was set, False on timeout."""
        try:
            _check_green_park(self)  # a warning filtered as error leaves, too
            ticket.park(timeout)
        # Not only Exception: gevent's Timeout and GreenletExit, KeyboardInterrupt.
        except BaseException:
            self._park_failed(ticket)
            raise
        return self._park_ended(ticket)

    async def _async_park(self, ticket: _AsyncTicket, timeout: float | None) -> bool:
        """Park a published async ticket: True if it was set, False on timeout."""
        try:
            await ticket.park(timeout)
        except BaseException:  # asyncio.CancelledError, trio.Cancelled
            self._park_failed(ticket)
            raise
        return self._park_ended(ticket)

    def _park_failed(self, ticket: _Ticket) -> None:
        # The park raised: withdraw, or pass on what was handed over meanwhile.
        if ticket.cancel():
            self._withdraw(ticket)
        else:
            self._undo(ticket)

    def _park_ended(self, ticket: _Ticket) -> bool:
        # The park returned: True if the ticket was set, False if timed out.
        if ticket.cancel():
            self._withdraw(ticket)
            return False
        return True


# State made on first use: waiter deques (an empty deque costs ~760 bytes on
# 3.11, more than the rest of a lock), a queue's storage lock and its count of
# unfinished tasks. This lock guards only the moment of creation, once per
# object, and is never held while anyone waits.
_creation_lock = _allocate_lock()


def _made_once(obj: Any, name: str, factory: Callable[[], Any]) -> Any:
    """The value of attribute *name* of *obj*, made with *factory* if None.

    For state made on first use: racing callers agree on one object.
    """
    with _creation_lock:
        value = getattr(obj, name)
        if value is None:
            value = factory()
            setattr(obj, name, value)
    return value


def _new_waiters(obj: Any) -> deque[Any]:
    # `_made_once(obj, "_waiters", deque)` inline: a one-shot event makes one
    # on every first wait. Not `with`: twice as fast on CPython 3.11.
    lock = _creation_lock
    lock.acquire()
    try:
        waiters: deque[Any] | None = obj._waiters
        if waiters is None:
            waiters = deque()
            obj._waiters = waiters
    finally:
        lock.release()
    return waiters


def _after_fork_in_child() -> None:
    """Make module state usable again in a forked child.

    Only the thread that called fork() lives on in the child, so anything
    another thread held or was changing at that moment stays as it was, for
    good. Of the module's global state:

    * `_creation_lock` may have been held by another thread (inside
      `_made_once`): it is replaced by a new, free lock. An object half-made
      there is harmless: its attribute is still None and is made again.
      `_look_lock` likewise (`_checkpoint_look` is renewed whole under it).
    * `_pid` (the pid cache of the asyncio fast path) is renewed by
      `_update_pid`, registered with the same hook.
    * `_eventlet_portals`: the portals of threads that are gone are closed
      (the child's copies of their sockets) and dropped; not every
      interpreter drops those threads' thread-locals, which would. A hub of
      the forking thread keeps its portal: eventlet itself does not support a
      running hub across fork() and warns about it.
    * The library thread-locals and the checkpoint context variable are
      per-thread and per-context: the child keeps the forking thread's.
      `_overrides_active` and `_overridden` may keep entries of threads that
      are gone; they only make the fast paths ask the full detection, never
      change an answer.

    Per-object state is not touched, as in `threading` and `queue`: a
    primitive that another thread held, waited on or was inside at the fork
    is left as the fork found it; a child makes its own primitives.
    """
    global _creation_lock, _look_lock
    _creation_lock = _allocate_lock()
    _look_lock = _allocate_lock()
    me = _get_ident()
    for key, (thread, portal) in list(_eventlet_portals.items()):
        if thread != me:
            _eventlet_portals.pop(key, None)
            portal.close()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Acquirable(_WaiterQueue):
    """The shared acquire algorithm: try, publish, re-check, park, hand off.

    A subclass keeps its free units in some atomic container and provides:

    * `_try_take()`: take one unit if one is free, atomically;
    * `_put_back()`: make one unit free (no waiter wanted it);
    * `_claimed_by(data)`: bookkeeping by the caller once it holds a unit
      (the owner records itself);
    * `_handing_to(ticket)`: what a releaser records *before* it claims the
      ticket of the waiter it hands a unit to (a lock names the ticket, so a
      waiter whose cancel() lost never finds a stale owner);
    * `_reenter(data)`: True if the caller holds a unit already and takes
      one more without one being free (RLock; counted there);
    * `_check_owner(data, waits)`: refuse a re-acquire by the holder, even
      when not blocking, and a wait that could never end (self-deadlock),
      before publishing (*waits*: the call will wait if it must);

    A unit freed while someone waits goes to the oldest waiter that can
    still take it (a waiter whose wake-up cannot be delivered is passed
    over), and does not become visible as free in between: no newcomer
    barges past the queue. A newcomer can still take a unit freed while
    nobody waited, ahead of a waiter that publishes a moment later. Two
    releasers in two threads serve waiters strictly in queue order only
    with perfect fairness (see `_hand_off`); without it the second may
    serve the second waiter while the first still serves the first.
    """

    __slots__ = ()

    # True if `_handing_to` records something (a lock names its new owner).
    _names_owner: ClassVar[bool] = False
    # True if `_reenter` may take a unit (RLock).
    _reentrant: ClassVar[bool] = False

    def _try_take(self) -> bool:
        raise NotImplementedError

    def _put_back(self) -> None:
        raise NotImplementedError

    def _claimed_by(self, payload: Any) -> None:
        pass

    def _handing_to(self, ticket: _Ticket) -> None:
        pass

    def _check_owner(self, payload: Any, waits: bool) -> None:
        pass

    def _reenter(self, payload: Any) -> bool:
        return False

    # True once waiting is refused for good (a shut-down queue's semaphore
    # has it as an instance attribute): read, not called, by every wait.
    _refusing: bool = False

    def _hand_off(self) -> bool:
        """Hand one unit to the oldest waiter that takes it; False if none.

        A waiter whose wake-up cannot be delivered (its loop or hub is gone)
        does not take it. With perfect fairness the head waiter is handed
        the unit before it leaves the deque, so a releaser in another thread
        finds it still there and cannot serve the waiter behind it first:
        hand-offs are decided strictly in queue order.
        """
        waiters = self._waiters
        if _PERFECT_FAIRNESS:
            while waiters:
                try:
                    ticket = waiters[0]
                except IndexError:
                    return False
                # Name the waiter before claiming: a waiter that wins the
                # ticket runs at once (its cancel() lost), and it then records
                # itself; nothing is written after that. (`set()` is
                # `claim()`, then `wake()`, in one call.)
                if self._names_owner:
                    self._handing_to(ticket)
                taken = ticket.set()
                # Decided either way (by us, its waiter, or another releaser):
                # out of the deque, unless someone else took it out. The
                # deque only grows at the right, so a ticket once at the head
                # is there or gone, and `remove()` finds it at once.
                try:
                    if waiters[0] is ticket:
                        waiters.remove(ticket)
                except (IndexError, ValueError):
                    pass
                if taken:
                    return True
            return False
        while waiters:
            try:
                ticket = waiters.popleft()
            except IndexError:
                return False
            if self._names_owner:
                self._handing_to(ticket)
            if ticket.set():
                return True
        return False

    def _release_one(self) -> None:
        """Give one unit back: to the oldest live waiter, or to the pool."""
        while not (self._waiters and self._hand_off()):
            self._put_back()
            # Publish-then-recheck, releaser side: a waiter that published
            # after our look at the deque may have missed the free unit.
            if not self._waiters or not self._try_take():
                return

    def _undo(self, ticket: _Ticket) -> None:
        # A unit was handed to a waiter that is leaving: pass it on.
        if ticket.payload is not _SHUT_DOWN:
            self._release_one()

    def _enqueue(self, ticket: _Ticket) -> bool:
        """Publish *ticket*, then look again: True if a unit is ours already."""
        waiters = self._waiters
        if waiters is None:
            waiters = _new_waiters(self)
        waiters.append(ticket)
        if not self._try_take():
            return False
        if ticket.cancel():
            _discard(waiters, ticket)
        else:
            # A releaser handed us a unit meanwhile: keep one, pass one on.
            self._undo(ticket)
        return True

    def _adopt(self, ticket: _Ticket) -> None:
        """Queue someone else's ticket for a unit (a Condition's notify)."""
        waiters = self._waiters
        if waiters is None:
            waiters = _new_waiters(self)
        waiters.append(ticket)
        # The unit may have been freed before the append: take it and hand it
        # to the oldest waiter.
        if self._try_take():
            self._release_one()

    def _begin(
        self,
        payload: Any,
        blocking: bool,
        timeout: float | None,
        make_ticket: Callable[[Any], _TicketT],
    ) -> bool | _TicketT:
        """The non-blocking part of an acquire.

        True: taken; False: not available now; a ticket: published, park on
        it, then call `_finish`.
        """
        if self._try_take():
            self._claimed_by(payload)
            return True
        if self._reentrant and self._reenter(payload):
            return True
        waits = blocking and timeout != 0
        self._check_owner(payload, waits)
        if not waits:
            return False
        ticket = make_ticket(payload)
        if self._enqueue(ticket):
            self._claimed_by(payload)
            return True
        if self._refusing and ticket.cancel():
            # Published after close() looked at the waiters: leave again.
            _discard(self._waiters, ticket)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
            return False
        return ticket

    def _finish(self, payload: Any, ticket: _Ticket, woken: bool) -> bool:
        """The end of an acquire that parked: was it handed a unit?"""
        if not woken or ticket.payload is _SHUT_DOWN:
            return False
        self._claimed_by(payload)
        return True

    def _green_checkpoint(self, payload: Any, held: bool = True) -> None:
        # The checkpoint of a blocking call that did not wait; a call that
        # took a unit (*held*) gives it back if the checkpoint raises.
        if _green_checkpoints_on():
            try:
                _green_yield(current_green_library())
            except BaseException:  # a green kill or Timeout: leave no unit held
                if held:
                    self._give_back(payload)
                raise

    async def _async_checkpoint(
        self, payload: Any, held: bool = True, library: str | None = None
    ) -> None:
        if library is None:
            library = _async_checkpoint_library()
            if library is None:
                return
        elif not _async_checkpoints_on(library):
            return
        try:
            await _async_yield(library)
        except BaseException:  # cancelled at the checkpoint
            if held:
                self._give_back(payload)
            raise

    def _green_acquire(
        self, payload: Any, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        result = self._begin(payload, blocking, timeout, _green_ticket)
        if result is True or result is False:
            if blocking and (_GREEN_CHECKPOINTS_ANY or _overrides_active):
                self._green_checkpoint(payload, result)
            return result
        return self._finish(payload, result, self._green_park(result, timeout))

    async def _async_acquire(
        self, payload: Any, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        result = self._begin(payload, blocking, timeout, _async_ticket)
        if result is True or result is False:
            look = _checkpoint_look  # see there
            if (
                blocking
                and (look.name if look is not None else "trio" in _modules)
                and _async_checkpoint_due()
            ):
                await self._async_checkpoint(payload, result)
            return result
        # `_async_park()` inline: one coroutine frame less per wait.
        try:
            await result.park(timeout)
        except BaseException:  # asyncio.CancelledError, trio.Cancelled
            self._park_failed(result)
            raise
        # `_park_ended()` inline; without a timeout only a releaser's claim
        # ends the park (see `_AsyncTicket.park`): no claim is left to try.
        if timeout is not None and result.cancel():
            self._withdraw(result)
            return False
        return self._finish(payload, result, True)

    def _give_back(self, payload: Any) -> None:
        """Give back a unit the caller holds (undoing `_claimed_by`)."""
        self._release_one()


# =============================================================================
# Events and flags
# =============================================================================


class _AwaitMixin:
    """Mixin for waitables: ``await obj``, ``await obj.with_(timeout)``."""

    __slots__ = ()

    def wait(self, timeout: float | None = None) -> Any:
        raise NotImplementedError

    async def _async_wait(self, timeout: float | None) -> Any:
        raise NotImplementedError

    def __await__(self: _AsyncWaitable[_R_co]) -> Generator[Any, None, _R_co]:
        return self._async_wait(None).__await__()

    def with_(
        self: _AsyncWaitable[_R_co], timeout: float | None
    ) -> Coroutine[Any, Any, _R_co]:
        """Wait asynchronously for at most *timeout* seconds."""
        return self._async_wait(timeout)


class _Steps:
    # Awaiting steps written as a generator, made awaitable for an `async def`
    # (`await` takes no plain generator, and `__await__` may not return one
    # marked as a coroutine).
    __slots__ = ("steps",)

    def __init__(self, steps: Generator[Any, None, Any]) -> None:
        self.steps = steps

    def __await__(self) -> Generator[Any, None, Any]:
        return self.steps


class Event(_AwaitMixin, _WaiterQueue):
    """A one-time event: once set, it stays set and every wait returns at once.

    ``ev.wait(timeout)`` blocks green code, ``await ev`` and
    ``await ev.with_(timeout)`` suspend async code; both return True when the
    event is set, False on timeout.
    """

    __slots__ = ("__weakref__", "_unset", "_waiters")

    def __init__(self) -> None:
        # Invariant: `_unset` is [True] until the first set() pops it. A wait
        # publishes its ticket (payload None) in `_waiters`, then looks at
        # `_unset` again; set() pops `_unset`, then wakes what it finds there.
        self._unset = [True]
        self._waiters: deque[_Ticket] | None = None

    # copy.copy, copy.deepcopy and pickle rebuild every primitive from this:
    # its class and constructor arguments, never its live state (a held lock
    # copies as free, a semaphore at its initial value, no waiter goes along).
    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), ()

    def __repr__(self) -> str:
        state = "set" if not self._unset else f"unset, waiting={self.waiting}"
        return f"<{_qualname(self)} object at {id(self):#x} [{state}]>"

    def __bool__(self) -> bool:
        return not self._unset

    def is_set(self) -> bool:
        """True once the event has been set."""
        return not self._unset

    def statistics(self) -> EventStatistics:
        """A snapshot in anyio's shape: how many tasks wait."""
        return EventStatistics(self.waiting)

    def set(self) -> None:
        """Set the event and wake every waiter, from any thread or loop."""
        try:
            self._unset.pop()
        except IndexError:
            return
        waiters = self._waiters
        if waiters is None:
            return
        while waiters:  # a look costs less than the raised IndexError at the end
            try:
                ticket = waiters.popleft()
            except IndexError:  # emptied since we looked
                break
            ticket.set()
        # Set for good: the deque goes (a set event keeps no memory of its
        # waiters, and a short-lived one leaves nothing behind for the
        # collector). A wait that published in it meanwhile finds the event
        # set on its re-check and withdraws from it; a later one makes a
        # new deque, which only such waits ever see.
        self._waiters = None

    # -- waiting (the state is looked at inline, `not self._unset`: a frame
    # less per look, and a wait looks twice)

    def _publish(self, ticket: _Ticket) -> bool:
        """Publish *ticket*; True if set by now (the ticket withdrawn)."""
        waiters = self._waiters
        if waiters is None:
            waiters = _new_waiters(self)
        waiters.append(ticket)
        if self._unset:
            return False
        if ticket.cancel():
            _discard(waiters, ticket)
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set; False if *timeout* expires first."""
        if timeout is not None:
            timeout = _check_timeout(timeout, _AS_WAIT)
        if not self._unset:
            result = True
        elif timeout == 0:
            result = False
        else:
            ticket = _green_ticket(None)
            if not self._publish(ticket):
                return self._green_park(ticket, timeout)
            result = True
        if _GREEN_CHECKPOINTS_ANY or _overrides_active:
            green_checkpoint()
        return result

    def _async_steps(self, timeout: float | None = None) -> Generator[Any, None, bool]:
        # The async wait, as a generator: ``await event`` iterates it
        # directly (it is `__await__`: no coroutine, no frame in between),
        # `with_()` awaits it from a coroutine, through `_Steps`.
        # `_publish()`, `_async_park()` and `_park_ended()` inline: a wait is
        # a few frames fewer.
        result = not self._unset
        if not result and timeout != 0:
            ticket = _async_ticket(None)
            waiters = self._waiters
            if waiters is None:
                waiters = _new_waiters(self)
            waiters.append(ticket)
            if self._unset:
                try:
                    yield from ticket.park(timeout).__await__()
                except BaseException:  # asyncio.CancelledError, trio.Cancelled
                    self._park_failed(ticket)
                    raise
                # Without a timeout only a set() that claimed the ticket ends
                # the park (see `_AsyncTicket.park`): no claim is left to try.
                if timeout is None or not ticket.cancel():
                    return True
                _discard(waiters, ticket)  # `_withdraw()`
                return False
            if ticket.cancel():
                _discard(waiters, ticket)
            result = True
        look = _checkpoint_look  # see there
        if look.name if look is not None else "trio" in _modules:
            library = _async_checkpoint_library()
            if library is not None:
                yield from _async_yield(library).__await__()
        return result

    if TYPE_CHECKING:

        def __await__(self) -> Generator[Any, None, bool]: ...

    else:
        __await__ = _async_steps  # no frame between ``await event`` and them

    async def _async_wait(self, timeout: float | None) -> bool:
        if timeout is not None:
            timeout = _check_timeout(timeout, _AS_WAIT)
        if not self._unset:  # the steps' first step, without making them
            look = _checkpoint_look  # see there
            if not (look.name if look is not None else "trio" in _modules):
                return True
        woken: bool = await _Steps(self._async_steps(timeout))
        return woken


# Set for good: what a wait that finds its state already reached waits on.
_SET_EVENT: Final = Event()
_SET_EVENT.set()


def _qualname(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


class _REventGeneration(Event):
    # One set/clear cycle of an REvent. `_clearable` is popped by the one
    # clear() that replaces this generation once it is set.
    __slots__ = ("_clearable",)

    def __init__(self) -> None:
        Event.__init__(self)
        self._clearable = [True]

    def retire(self) -> bool:
        """True for the one clear() that may replace this generation."""
        return _pop_claim(self._clearable)  # False: another clear() has it


class REvent(Event):
    """A reusable event: like `Event`, plus `clear()`.

    Tasks that were waiting when `set()` ran are woken even if `clear()`
    follows at once: each set/clear cycle is its own generation.
    """

    # A subclass of Event (as in the published aiologic), but the state lives
    # in the current generation: Event's own fields stay unused.
    __slots__ = ("_generation",)

    def __init__(self) -> None:
        self._generation = _REventGeneration()

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), ()

    def __repr__(self) -> str:
        generation = self._generation
        state = "set" if generation else f"unset, waiting={generation.waiting}"
        return f"<{_qualname(self)} object at {id(self):#x} [{state}]>"

    def __bool__(self) -> bool:
        return bool(self._generation)

    def is_set(self) -> bool:
        """True while the event is set."""
        return bool(self._generation)

    def set(self) -> None:
        """Set the event and wake every current waiter."""
        self._generation.set()

    def clear(self) -> None:
        """Reset to unset; later waits block until the next `set()`."""
        generation = self._generation
        if generation and generation.retire():
            self._generation = _REventGeneration()

    @property
    def waiting(self) -> int:
        return self._generation.waiting

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set; False if *timeout* expires first."""
        return self._generation.wait(timeout)

    def __await__(self) -> Generator[Any, None, bool]:
        return self._generation._async_steps(None)

    async def _async_wait(self, timeout: float | None) -> bool:
        return await self._generation.with_(timeout)


class CountdownEvent(_AwaitMixin):
    """An event that is set while its value is zero.

    ``up(n)`` raises the value, ``down()`` lowers it by one and wakes every
    waiter when it reaches zero, ``clear()`` sets it to zero. A wait that
    began while the value was above zero is woken when it reaches zero, even
    if ``up()`` follows at once. The value may be any int, in constant memory.
    """

    __slots__ = ("__weakref__", "_initial_value", "_lock", "_value", "_zero")

    def __init__(self, initial_value: int = 0) -> None:
        value = _check_value("initial_value", initial_value)
        self._initial_value = value
        # Invariants, under `_lock` (a critical section that is never held
        # while anyone waits): `_value` is the value; `_zero` is None or the
        # unset Event that the next fall to zero sets (made by the first wait
        # that needs it), and None whenever `_value` is zero.
        self._value = value
        self._zero: Event | None = None
        self._lock = _allocate_lock()

    def __repr__(self) -> str:
        return (
            f"<{_qualname(self)} object at {id(self):#x}"
            f" [value={self._value}, waiting={self.waiting}]>"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self._initial_value,)

    def __bool__(self) -> bool:
        return not self._value

    @property
    def value(self) -> int:
        return self._value

    @property
    def initial_value(self) -> int:
        return self._initial_value

    @property
    def waiting(self) -> int:
        zero = self._zero
        return 0 if zero is None else zero.waiting

    def up(self, count: int = 1) -> None:
        """Raise the value by *count*."""
        count = _check_value("count", count)
        with self._lock:
            self._value += count

    def down(self) -> None:
        """Lower the value by one; `RuntimeError` if it is zero already."""
        with self._lock:
            if not self._value:
                msg = "down() called more times than up()"
                raise RuntimeError(msg)
            self._value -= 1
            if self._value:
                return
            zero = self._zero
            self._zero = None
        if zero is not None:
            zero.set()

    def clear(self) -> None:
        """Set the value to zero, waking every waiter."""
        with self._lock:
            self._value = 0
            zero = self._zero
            self._zero = None
        if zero is not None:
            zero.set()

    def _event(self) -> Event:
        # What a wait that begins now waits on: the next fall to zero.
        with self._lock:
            if not self._value:
                return _SET_EVENT
            zero = self._zero
            if zero is None:
                zero = self._zero = Event()
            return zero

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the value is zero; False if *timeout* expires first."""
        zero = self._event()
        return zero.wait(timeout)

    async def _async_wait(self, timeout: float | None) -> bool:
        return await self._event().with_(timeout)


class Flag(_GenericBase[_T]):
    """A write-once slot: the first `set()` wins, later ones are ignored."""

    __slots__ = ("__weakref__", "_markers")

    def __init__(self, marker: _T = MISSING) -> None:
        # Invariant: `_markers[0]`, if any, is the winning marker; losers
        # remove themselves after appending.
        self._markers: list[_T] = [] if marker is MISSING else [marker]

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (*self._markers[:1],)

    def __repr__(self) -> str:
        try:
            state = f"set, marker={self._markers[0]!r}"
        except IndexError:
            state = "unset"
        return f"<{_qualname(self)} object at {id(self):#x} [{state}]>"

    def __bool__(self) -> bool:
        return bool(self._markers)

    if TYPE_CHECKING:

        @overload
        def get(self) -> _T: ...
        @overload
        def get(self, default: _D) -> _T | _D: ...
        @overload
        def get(self, *, default_factory: Callable[[], _D]) -> _T | _D: ...

    def get(
        self,
        default: Any = MISSING,
        *,
        default_factory: Callable[[], Any] | Any = MISSING,
    ) -> Any:
        """Return the marker; *default* (or ``default_factory()``) if unset.

        Raises `LookupError` when unset and no default is given.
        """
        try:
            return self._markers[0]
        except IndexError:
            pass
        if default is not MISSING:
            return default
        if default_factory is not MISSING:
            return default_factory()
        msg = "the flag is not set"
        raise LookupError(msg) from None

    if TYPE_CHECKING:

        @overload
        def set(self) -> bool: ...
        @overload
        def set(self, marker: _T) -> bool: ...

    def set(self, marker: Any = MISSING) -> bool:
        """Set the flag to *marker* if unset; True if *marker* is stored now.

        Without a marker a new unique object is used, so only the call that
        actually set the flag returns True.
        """
        markers = self._markers
        if marker is MISSING:
            marker = object()
        if markers:
            return markers[0] is marker
        markers.append(marker)
        try:
            if markers[0] is marker:
                return True
        except IndexError:  # cleared meanwhile
            return False
        _discard_list(markers, marker)
        return False

    def clear(self) -> None:
        """Unset the flag."""
        self._markers.clear()


def _discard_list(items: list[Any], item: object) -> None:
    for index in range(len(items) - 1, 0, -1):
        try:
            if items[index] is item:
                del items[index]
                return
        except IndexError:
            return


# =============================================================================
# Locks
# =============================================================================


class BusyResourceError(RuntimeError):
    """Raised when a `ResourceGuard` is entered while in use."""


class ResourceGuard:
    """Detects concurrent use of a resource that must be used by one task.

    ``with guard:`` raises `BusyResourceError` if another task is inside.
    """

    __slots__ = ("__weakref__", "_action", "_unused")

    def __init__(self, action: str = "using") -> None:
        self._action = action
        self._unused = [True]

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self._action,)

    def __repr__(self) -> str:
        state = "unused" if self._unused else "used"
        return (
            f"<{_qualname(self)} object at {id(self):#x}"
            f" [action={self._action!r}, {state}]>"
        )

    @property
    def action(self) -> str:
        return self._action

    def __bool__(self) -> bool:
        return not self._unused

    def __enter__(self) -> Self:
        try:
            self._unused.pop()
        except IndexError:
            msg = f"another task is already {self._action} this resource"
            raise BusyResourceError(msg) from None
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._unused:
            msg = "the resource is not in use"
            raise RuntimeError(msg)
        self._unused.append(True)

    # It never waits: the async form is the same check, for `async with`.
    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__()


def _deadlock(owner: Any, me: object) -> str | None:
    """Why waiting for *owner* from *me* in this thread can never end, or None.

    A green wait blocks the whole thread, so it can never see an async owner
    that runs in the same thread release; an async wait cannot see a green
    owner of the same thread release either, since that code only runs again
    after the loop returns.
    """
    if owner is None:
        return None
    if isinstance(owner, int):  # green code of a thread (its main greenlet)
        if owner == _get_ident() and not _is_green(me):
            return (
                "deadlock: an async task is acquiring a lock held by green code"
                " of the same thread, which cannot run until the event loop returns"
            )
        return None
    if not _is_green(me) or _is_green(owner):
        return None
    asyncio = _modules.get("asyncio")
    if asyncio is not None and isinstance(owner, asyncio.Task):
        if owner.get_loop() is asyncio._get_running_loop():
            return (
                "deadlock: green code is acquiring a lock held by an asyncio"
                " task of the event loop running in this thread"
            )
        return None
    trio = _modules.get("trio")
    if trio is not None and _in_trio_run(trio) and _trio_task_here(trio, owner):
        return (
            "deadlock: green code is acquiring a lock held by a trio task"
            " of the trio run in this thread"
        )
    return None


# -- calls in the wrong face
#
# The first trap: a green (blocking) call in a coroutine, `ev.wait()` where
# `await ev` was meant. It blocks the whole event loop, and if only a task of
# that loop could end the wait, forever. A green face that is about to park
# in a thread whose asyncio or trio loop is running warns, naming the async
# spelling; a lock held by a task of that loop refuses at once (`_deadlock`).
# The check runs only on the way to parking and imports nothing.


class GreenWaitInLoopWarning(RuntimeWarning):
    """A green (blocking) wait in a thread whose event loop is running.

    It blocks every task of that loop until it ends; in async code use the
    async face (``await event``, ``await q.async_get()``, ``async with lock``).
    """


def _loop_running_here() -> str | None:
    # Asked on every green park: the cheap lookups first.
    get_running_loop = _aio_get_running_loop
    if get_running_loop is None and "asyncio" in _modules:
        get_running_loop = _bind_asyncio()
    if get_running_loop is not None and get_running_loop() is not None:
        return "asyncio"
    trio = _modules.get("trio")
    if trio is None:
        return None
    # trio >= 0.23 names itself in sniffio's thread-local while it runs in
    # this thread; `in_trio_run()` costs more on a miss (an AttributeError
    # inside). trio 0.22 names itself in the context variable of its tasks,
    # which a worker thread's copied context carries too: confirmed then.
    # https://github.com/python-trio/trio/blob/main/src/trio/_core/_run.py
    sniffio = _modules.get("sniffio")
    if sniffio is not None:
        if sniffio.thread_local.name == "trio":
            return "trio"
        if sniffio.current_async_library_cvar.get() != "trio":
            return None
    return "trio" if _in_trio_run(trio) else None


def _noun(obj: object) -> str:
    # What the documentation calls such an object.
    if isinstance(obj, (SimpleQueue, Queue)):
        return "q"
    if isinstance(obj, Condition):
        return "cv"
    if isinstance(obj, (Lock, RWLock, _RWSide)):
        return "lock"
    if isinstance(obj, Semaphore):
        return "semaphore"
    if isinstance(obj, CapacityLimiter):
        return "limiter"
    if isinstance(obj, _BarrierBase):
        return "barrier"
    return "event"


def _async_spelling(obj: object, method: str) -> str:
    """How async code spells the green call `obj.method(...)`."""
    if isinstance(obj, SyncQueueView):  # janus's names: the other view's
        return f"await q.async_q.{method}({'item' if method == 'put' else ''})"
    noun = _noun(obj)
    if method in ("__enter__", "green_acquire"):
        return f"async with {noun}"
    if method == "wait_for":
        return f"await {noun}.for_(predicate)"
    if method.startswith("green_"):
        args = "item" if method == "green_put" else ""
        return f"await {noun}.async_{method[6:]}({args})"
    return f"await {noun}"


def _check_green_park(owner: object) -> None:
    library = _loop_running_here()
    if library is None:
        return
    # Find the caller's frame, outside this module, and the public call it
    # made (the outermost frame of this module): the warning points at the
    # one and spells the async form of the other.
    frame = sys._getframe(1)
    stacklevel = 2
    outer = frame
    while frame.f_back is not None and frame.f_globals is globals():
        outer = frame
        frame = frame.f_back
        stacklevel += 1
    obj = outer.f_locals.get("self", owner)
    spelling = _async_spelling(obj, outer.f_code.co_name)
    msg = (
        f"a green (blocking) wait on {_qualname(obj)} in a thread whose"
        f" {library} event loop is running blocks that loop until it ends;"
        f" in async code use `{spelling}`"
    )
    _warn(msg, GreenWaitInLoopWarning, stacklevel)


def _wrong_face_hint(owner: object, me: object) -> str:
    """Why a task that is not the holder may think it is: it used the wrong
    face (`cv.wait()` inside `async with cv`). Empty if not that."""
    if owner is None or me is None:
        return ""
    if _is_green(me):
        if _is_green(owner):
            return ""
        library = current_async_library(failsafe=True)
        if library not in ("asyncio", "trio"):
            return ""
        try:
            task = _async_task(library)
        except RuntimeError:  # not in a task (a callback)
            return ""
        if owner is not task:
            return ""
        return (
            "; the current async task holds it: this is the green face, use"
            " the async one (`async with`, `await`, the `async_*` methods)"
        )
    if owner == _get_ident() and isinstance(owner, int):
        return (
            "; green code of this thread holds it: this is the async face, use"
            " the green one (`with`, `wait()`, the `green_*` methods)"
        )
    return ""


def _is_green(task: object) -> bool:
    if isinstance(task, int):
        return True
    greenlet = _modules.get("greenlet")
    return greenlet is not None and isinstance(task, greenlet.greenlet)


def _trio_task_here(trio: Any, task: Any) -> bool:
    if not isinstance(task, trio.lowlevel.Task):
        return False
    root = trio.lowlevel.current_root_task()
    while task is not None:
        if task is root:
            return True
        nursery = task.parent_nursery
        task = None if nursery is None else nursery.parent_task
    return False


# A coroutine can be closed (GeneratorExit) away from its task: by the garbage
# collector once its loop is closed or its run finished, in any thread. The
# `async with` blocks it closes through must still leave what they hold, but
# the current task (if any) is not theirs. Inside ``async with lock:`` the
# coroutine holds the lock, except while a Condition wait has let it go: a
# wait closed then takes none back (Condition._abandon) and marks here
# thread -> (id(lock), id() of the frame that closes the coroutine, the
# levels it held), for the exits that follow at once in that thread (an id,
# not the frame: a stale mark keeps nothing alive): every frame of the
# coroutine is closed in turn from that frame, each with a GeneratorExit of
# its own. One mark per thread; a mark found by the exit of another close (a
# wait that no block of its lock enclosed) is stale, and dropped.
_left_unheld: dict[int, tuple[int, int, int]] = {}


def _closing_without(lock: object) -> bool:
    """True if a coroutine being closed in this thread does not hold *lock*,
    although it is inside a block of it (see `_left_unheld`); once per level."""
    thread = _get_ident()
    mark = _left_unheld.get(thread)
    if mark is None:
        return False
    lock_id, closer, levels = mark
    # The frame whose block is left is the first past our exit methods; it
    # was called by the frame that closes it.
    frame: Any = sys._getframe(1)
    while frame is not None and frame.f_code in _EXIT_CODES:
        frame = frame.f_back
    if frame is None or id(frame.f_back) != closer:
        del _left_unheld[thread]  # only this thread writes its entry
        return False
    if lock_id != id(lock):  # a block of another lock, inside
        return False
    if levels > 1:  # an RLock's level more: an enclosing block
        _left_unheld[thread] = (lock_id, closer, levels - 1)
    else:
        del _left_unheld[thread]
    return True


def _leaving_task(lock: Lock, task: object, exc_type: object) -> object:
    """Who leaves an ``async with lock:`` block: *task*, the current asyncio
    task (None: find the current one); for a coroutine being closed, the
    holder (_NOBODY: it holds nothing)."""
    if exc_type is GeneratorExit:
        if _closing_without(lock):
            return _NOBODY
        return lock._holder()
    if task is None:  # trio
        return _other_async_task()
    return task


_NOBODY: Final[Any] = object()


class Lock(_Acquirable):
    """A mutual-exclusion lock owned by the task that acquired it.

    Shared by threads, greenlets and coroutines of any loop: ``with lock:`` in
    green code, ``async with lock:`` in async code. Waiters are served in
    arrival order and a release hands the lock straight to the oldest waiter.
    Acquiring a lock you hold, or releasing one you do not, raises
    `RuntimeError`.
    """

    __slots__ = ("__weakref__", "_owner", "_unlocked", "_waiters")

    def __init__(self) -> None:
        # Invariants: `_unlocked` is [True] when free and [] when held (popped
        # by the acquirer, appended by a releaser that found no waiter);
        # `_owner` is the holder's task object, set by whoever takes or hands
        # the lock, None when free.
        self._unlocked = [True]
        self._owner: object = None
        self._waiters: deque[_Ticket] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), ()

    def __repr__(self) -> str:
        state = "locked" if not self._unlocked else "unlocked"
        return (
            f"<{_qualname(self)} object at {id(self):#x}"
            f" [{state}, waiting={self.waiting}]>"
        )

    def __bool__(self) -> bool:
        return not self._unlocked

    def locked(self) -> bool:
        """True while some task holds the lock."""
        return not self._unlocked

    def statistics(self) -> LockStatistics:
        """A snapshot in anyio's shape: locked, owner, tasks waiting."""
        return LockStatistics(not self._unlocked, self.owner, self.waiting)

    @property
    def owner(self) -> tuple[str, int] | None:
        """``(library, id)`` of the holder, or None."""
        owner = self._holder()
        return None if owner is None else _task_identity(owner)

    # -- the hooks of the shared algorithm

    def _try_take(self) -> bool:
        unlocked = self._unlocked
        if not unlocked:  # held: a look costs less than a raised IndexError
            return False
        try:
            unlocked.pop()
        except IndexError:  # taken since we looked
            return False
        return True

    def _put_back(self) -> None:
        self._owner = None
        self._unlocked.append(True)

    def _claimed_by(self, payload: Any) -> None:
        self._owner = payload

    _names_owner = True

    def _handing_to(self, ticket: _Ticket) -> None:
        # Until the new holder runs, `_owner` is its ticket: a marker that no
        # task identity equals.
        self._owner = ticket

    def _holder(self) -> object:
        owner = self._owner
        if isinstance(owner, _Ticket):
            return owner.payload
        return owner

    def _check_owner(self, payload: Any, waits: bool) -> None:
        owner = self._owner
        if owner == payload and payload is not None:
            msg = "the current task is already holding this lock"
            raise RuntimeError(msg)
        # A holder of the waiter's own kind (both threads, both asyncio tasks,
        # ...) is never a deadlock of `_deadlock()`'s: the common contended
        # case asks no more (the holder may still be named by its ticket).
        kind = payload.__class__
        if owner.__class__ is not kind:
            holder = self._holder()
            if holder.__class__ is not kind:
                self._refuse_deadlock(payload, holder, waits)

    def _refuse_deadlock(self, me: object, owner: object, waits: bool) -> None:
        # *owner*: the holder as `_holder()` read it. A green acquire that
        # would deadlock if it waited is refused even when it would not wait
        # (blocking=False, timeout): a loop task holds the lock, and the
        # green code blocks that loop.
        green = _is_green(me)
        if waits or green:
            # `_deadlock()` answers None at once for an async task waiting
            # for anything but green code of a thread.
            if owner is None or not (green or isinstance(owner, int)):
                return
            reason = _deadlock(owner, me)
            if reason is not None:
                raise RuntimeError(reason)

    def _saved_for_wait(self, me: object) -> Any:
        # For a Condition wait by *me*: what takes the lock back afterwards.
        owner = self._owner
        if owner != me or me is None:
            _not_held(owner, me)
        return me

    def _release_by(self, me: object) -> None:
        owner = self._owner
        if owner != me:
            if owner is None:
                msg = "release unlocked lock"
            else:
                msg = "the current task is not holding this lock"
                msg += _wrong_face_hint(owner, me)
            raise RuntimeError(msg)
        if not self._waiters:
            self._owner = None
            self._unlocked.append(True)
            # Publish-then-recheck, as in _release_one.
            if not self._waiters or not self._try_take():
                return
        if not self._hand_off():  # `_release_one()`, its first step inline
            self._release_one()

    # -- public face

    def green_acquire(
        self, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Acquire in green code; False if not acquired (non-blocking/timeout)."""
        blocking, timeout = _acquire_args(blocking, timeout)
        return self._green_acquire(_green_task(), blocking, timeout)

    async def async_acquire(
        self, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Acquire in async code; False if not acquired (non-blocking/timeout)."""
        blocking, timeout = _acquire_args(blocking, timeout)
        task = _current_async_task()
        return await self._async_acquire(task, blocking, timeout)

    def green_release(self) -> None:
        """Release, handing the lock to the oldest waiter if there is one."""
        self._release_by(_green_task())

    def async_release(self) -> None:
        """Release from async code (a plain call, it never blocks)."""
        self._release_by(_current_async_task())

    def green_owned(self) -> bool:
        """True if the current green task holds the lock."""
        return self._owner == _green_task()

    def async_owned(self) -> bool:
        """True if the current async task holds the lock."""
        library = current_async_library(failsafe=True)
        return library is not None and self._owner is _async_task(library)

    # The context managers put the uncontended path in front of the shared
    # one: a lock taken and released by one task costs a few list operations.

    def __enter__(self) -> Self:
        me = _green_task()
        try:
            self._unlocked.pop()
        except IndexError:
            self._green_acquire(me)
        else:
            self._owner = me
            if _GREEN_CHECKPOINTS_ANY or _overrides_active:
                self._green_checkpoint(me)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._release_by(_green_task())

    async def __aenter__(self) -> Self:
        task = _asyncio_task()
        library = "asyncio"
        if task is None:  # trio
            library = current_async_library()
            if library == "trio":  # `_async_task(library)`, the common case inline
                task = _modules["trio"].lowlevel.current_task()
            else:
                task = _async_task(library)
        if not self._unlocked:  # held: a look costs less than a raised IndexError
            await self._async_acquire(task)
            return self
        try:
            self._unlocked.pop()
        except IndexError:  # taken since we looked
            await self._async_acquire(task)
        else:
            self._owner = task
            if _overrides_active:
                await self._async_checkpoint(task, True, library)
            elif _CHECKPOINTS.get(library, False):  # `_async_checkpoint` inline
                try:
                    await _async_yield(library)
                except BaseException:  # cancelled at the checkpoint
                    self._give_back(task)
                    raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        task = _asyncio_task()
        if task is None and exc_info[0] is not GeneratorExit:  # trio
            task = _other_async_task()
        if task is not None and self._owner is task and not self._waiters:
            # `_release_by`'s uncontended path inline.
            self._owner = None
            self._unlocked.append(True)
            if self._waiters and self._try_take():  # published meanwhile
                self._release_one()
            return
        if task is None or exc_info[0] is GeneratorExit:  # trio, or closed
            task = _leaving_task(self, task, exc_info[0])
            if task is _NOBODY:
                return
        self._release_by(task)


class RLock(Lock):
    """A reentrant lock: the owner may acquire it again, and must release it
    as many times. Acquire and release take ``count`` (default 1)."""

    __slots__ = ("_count",)

    def __init__(self) -> None:
        Lock.__init__(self)
        # Invariant: `_count` is the holder's depth; written only by the holder
        # or by the releaser handing it over (before the hand-off).
        self._count = 0

    def __repr__(self) -> str:
        state = "locked" if not self._unlocked else "unlocked"
        return (
            f"<{_qualname(self)} object at {id(self):#x}"
            f" [{state}, count={self._count}, waiting={self.waiting}]>"
        )

    @property
    def count(self) -> int:
        """The owner's recursion depth (0 when free)."""
        owner = self._owner
        if isinstance(owner, _Ticket):
            return owner.payload[1]  # type: ignore[no-any-return]
        return self._count

    def _put_back(self) -> None:
        self._count = 0
        Lock._put_back(self)

    def _claimed_by(self, payload: Any) -> None:
        self._count = payload[1]
        self._owner = payload[0]

    def _holder(self) -> object:
        owner = self._owner
        if isinstance(owner, _Ticket):
            return owner.payload[0]
        return owner

    def _saved_for_wait(self, me: object) -> Any:
        # Every level: a Condition wait releases them all and takes them back.
        owner = self._owner
        if owner != me or me is None:
            _not_held(owner, me)
        return (me, self._count)

    _reentrant = True

    def _reenter(self, payload: Any) -> bool:
        # Only the owner can see itself in `_owner`: no hand-off races with
        # it. The shared steps (checkpoint, give-back) treat a re-entry as
        # one more acquire of payload[1] levels.
        if self._owner != payload[0]:
            return False
        self._count += payload[1]
        return True

    def _give_back(self, payload: Any) -> None:
        # Undo an acquire of payload[1] levels (a re-entry or the first one).
        self._release_by(payload[0], payload[1])

    def _check_owner(self, payload: Any, waits: bool) -> None:
        # The owner re-entered already (`_reenter`); a green caller is refused at
        # once when a loop task of its thread holds the lock (see Lock).
        me = payload[0]
        holder = self._holder()
        if holder.__class__ is not me.__class__:  # see Lock._check_owner
            self._refuse_deadlock(me, holder, waits)

    async def __aexit__(self, *exc_info: object) -> None:
        # Not Lock's inline path: a release may only lower the depth.
        task = _leaving_task(self, _asyncio_task(), exc_info[0])
        if task is not _NOBODY:
            self._release_by(task)

    def _release_by(self, me: object, count: int = 1) -> None:
        # *count* is checked by the public callers.
        owner = self._owner
        if owner != me:
            if owner is None:
                msg = "release unlocked lock"
            else:
                msg = "the current task is not holding this lock"
                msg += _wrong_face_hint(owner, me)
            raise RuntimeError(msg)
        depth = self._count
        if count > depth:
            msg = "the lock is released more times than it was acquired"
            raise RuntimeError(msg)
        if count < depth:
            self._count = depth - count
        else:
            self._release_one()

    def green_acquire(
        self, count: int = 1, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Acquire *count* levels in green code."""
        blocking, timeout = _acquire_args(blocking, timeout)
        count = _check_count(count)
        me = _green_task()
        if self._owner == me and not (_GREEN_CHECKPOINTS_ANY or _overrides_active):
            self._count += count  # the shortcut of `_begin`'s re-entry
            return True
        return self._green_acquire((me, count), blocking, timeout)

    async def async_acquire(
        self, count: int = 1, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Acquire *count* levels in async code."""
        blocking, timeout = _acquire_args(blocking, timeout)
        count = _check_count(count)
        me = _current_async_task()
        if self._async_reentered(me, count):
            return True
        return await self._async_acquire((me, count), blocking, timeout)

    def _async_reentered(self, me: object, count: int) -> bool:
        # The shortcut of `_begin`'s re-entry, where no checkpoint is due.
        look = _checkpoint_look  # see there
        if self._owner == me and not (
            (look.name if look is not None else "trio" in _modules)
            and _async_checkpoint_due()
        ):
            self._count += count
            return True
        return False

    def green_release(self, count: int = 1) -> None:
        """Release *count* levels."""
        self._release_by(_green_task(), _check_count(count))

    def async_release(self, count: int = 1) -> None:
        """Release *count* levels from async code."""
        self._release_by(_current_async_task(), _check_count(count))

    def green_count(self) -> int:
        """The current green task's depth (0 if it does not hold the lock)."""
        return self._count if self._owner == _green_task() else 0

    def async_count(self) -> int:
        """The current async task's depth (0 if it does not hold the lock)."""
        return self._count if self.async_owned() else 0

    def __enter__(self) -> Self:
        self.green_acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._release_by(_green_task())

    async def __aenter__(self) -> Self:
        # `async_acquire()` without its argument checks: one coroutine less.
        me = _current_async_task()
        if not self._async_reentered(me, 1):
            await self._async_acquire((me, 1))
        return self


# =============================================================================
# Semaphores and limiters
# =============================================================================


def _check_value(name: str, value: int) -> int:
    if value.__class__ is not int:
        try:
            value = _index(value)  # refuses an __index__ that returns a non-int
        except TypeError:
            msg = f"{name} must be an integer, not {value!r}"
            raise TypeError(msg) from None
    if value < 0:
        msg = f"{name} must be >= 0"
        raise ValueError(msg)
    return value


def _check_count(count: int) -> int:
    count = _check_value("count", count)
    if count < 1:
        msg = "count must be >= 1"
        raise ValueError(msg)
    return count


class Semaphore(_Acquirable):
    """A counting semaphore: acquire takes a unit, release adds units.

    Any task may release. ``Semaphore(value, max_value)`` and
    ``Semaphore(max_value=m)`` return a `BoundedSemaphore`.
    """

    __slots__ = ("__weakref__", "_initial_value", "_permits", "_waiters")

    if TYPE_CHECKING:

        @overload
        def __new__(
            cls, initial_value: int | None = None, max_value: None = None
        ) -> Self: ...
        @overload
        def __new__(
            cls, initial_value: int | None = None, *, max_value: int
        ) -> BoundedSemaphore: ...
        @overload
        def __new__(
            cls, initial_value: int | None, max_value: int
        ) -> BoundedSemaphore: ...

    def __new__(
        cls, initial_value: int | None = None, max_value: int | None = None
    ) -> Any:
        if cls is Semaphore and max_value is not None:
            # Not initialised here: type.__call__ calls __init__ on the result.
            return BoundedSemaphore.__new__(BoundedSemaphore, initial_value, max_value)
        return object.__new__(cls)

    if TYPE_CHECKING:
        # pyright takes the class from __new__; mypy takes it from __init__
        # when a class defines both, and from the declared type of `self`.
        @overload
        def __init__(  # pyright: ignore[reportInconsistentConstructor]  # one overload per __new__ overload
            self, initial_value: int | None = None, max_value: None = None
        ) -> None: ...
        @overload
        def __init__(  # type: ignore[misc]  # self: a subclass, on purpose
            self: BoundedSemaphore, initial_value: int | None = None, *, max_value: int
        ) -> None: ...
        @overload
        def __init__(  # type: ignore[misc]  # self: a subclass, on purpose
            self: BoundedSemaphore, initial_value: int | None, max_value: int
        ) -> None: ...

    def __init__(
        self, initial_value: int | None = None, max_value: int | None = None
    ) -> None:
        value = (
            1 if initial_value is None else _check_value("initial_value", initial_value)
        )
        self._initial_value = value
        # Invariant: `_permits` holds batches of free units (positive ints);
        # a taker pops a batch and gives back what it does not keep. A batch
        # out of the list is in somebody's hands for a moment only, and that
        # somebody re-checks the waiters after putting it back.
        self._permits = [value] if value else []
        self._waiters: deque[_Ticket] | None = None

    def __repr__(self) -> str:
        return (
            f"<{_qualname(self)} object at {id(self):#x}"
            f" [value={self.value}, waiting={self.waiting}]>"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self._initial_value,)

    @property
    def initial_value(self) -> int:
        return self._initial_value

    @property
    def value(self) -> int:
        """The number of free units now (a snapshot)."""
        return sum(self._permits.copy())

    def locked(self) -> bool:
        """True if an acquire would have to wait."""
        return not self._permits

    def statistics(self) -> SemaphoreStatistics:
        """A snapshot in anyio's shape: how many tasks wait."""
        return SemaphoreStatistics(self.waiting)

    # -- the hooks of the shared algorithm

    def _try_take(self) -> bool:
        permits = self._permits
        if not permits:  # none free: a look costs less than a raised IndexError
            return False
        try:
            batch = permits.pop()
        except IndexError:  # taken since we looked
            return False
        if batch > 1:
            self._release(batch - 1)
        return True

    def _release_one(self) -> None:
        self._release(1)

    def _release(self, count: int) -> None:
        """Hand *count* units to the oldest waiters, free the rest."""
        permits = self._permits
        while True:
            if self._waiters:
                while count and self._hand_off():
                    count -= 1
                if not count:
                    return
            permits.append(count)
            if not self._waiters:
                return
            # A waiter may have published after our look: take the units back
            # and serve it.
            try:
                count = permits.pop()
            except IndexError:
                return

    # -- public face

    def green_acquire(
        self, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Take a unit in green code; False if none (non-blocking/timeout)."""
        blocking, timeout = _acquire_args(blocking, timeout)
        return self._green_acquire(None, blocking, timeout)

    async def async_acquire(
        self, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Take a unit in async code; False if none (non-blocking/timeout)."""
        blocking, timeout = _acquire_args(blocking, timeout)
        return await self._async_acquire(None, blocking, timeout)

    def release(self, count: int = 1) -> None:
        """Add *count* units, waking as many waiters; never blocks.

        *count* must be >= 1 (``release(0)`` raises `ValueError`, as in
        threading).
        """
        self._release(_check_count(count))

    def green_release(self, count: int = 1) -> None:
        self.release(count)

    def async_release(self, count: int = 1) -> None:
        self.release(count)

    def __enter__(self) -> Self:
        self._green_acquire(None)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    async def __aenter__(self) -> Self:
        # The uncontended path in front of the shared one: a free unit taken
        # with one pop, in an asyncio task (the checkpoint is asyncio's).
        permits = self._permits
        if not permits:  # none free: a look costs less than a raised IndexError
            await self._async_acquire(None)
            return self
        try:
            batch = permits.pop()
        except IndexError:  # taken since we looked
            await self._async_acquire(None)
            return self
        if batch > 1:
            self._release(batch - 1)
        self._claimed_by(None)
        look = _checkpoint_look  # see there
        if (
            look.name if look is not None else "trio" in _modules
        ) and _async_checkpoint_due():
            await self._async_checkpoint(None)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # `_release(1)` with its no-waiter path inline.
        if self._waiters:
            self._release(1)
            return
        permits = self._permits
        permits.append(1)
        if self._waiters:  # a waiter published meanwhile: serve it
            self._reclaim()

    def _reclaim(self) -> None:
        # After freeing units while a waiter published: take them back and
        # hand them on (`_release`'s re-check).
        try:
            count = self._permits.pop()
        except IndexError:
            return
        self._release(count)


class _CappedSemaphore(Semaphore):
    # A semaphore that knows how many more releases its cap allows (its
    # "room"): every acquire adds one, every release takes one.
    __slots__ = ("_max_value", "_room", "_spare", "_spare_lock")

    _max_value: int
    # The room of a binary semaphore: at most one entry, appended by an
    # acquire, popped by a release (an IndexError means no room).
    _room: list[None]
    # The room of a BoundedSemaphore, an int of any size, read and changed
    # under `_spare_lock` only (a critical section that never waits).
    _spare: int
    _spare_lock: LockType

    def _init_room(self, room: int) -> None:
        self._room = [None] * room

    def _claimed_by(self, payload: Any) -> None:
        self._room.append(None)

    def _take_room(self) -> bool:
        return _pop_claim(self._room)

    def _give_back(self, payload: Any) -> None:
        self._take_room()  # never fails: the caller holds a unit
        self._release(1)


class _OverReleaseError(RuntimeError, ValueError):
    # RuntimeError for the published aiologic, ValueError for threading.
    pass


class BoundedSemaphore(_CappedSemaphore):
    """A semaphore that refuses to be released above ``max_value``.

    Release only one unit at a time; releasing too often raises
    `RuntimeError`.
    """

    __slots__ = ()

    def __new__(
        cls, initial_value: int | None = None, max_value: int | None = None
    ) -> Self:
        if (
            cls is BoundedSemaphore
            and initial_value in (None, 1)
            and max_value in (None, 1)
        ):
            # A subclass of cls, so type.__call__ still runs its __init__.
            return object.__new__(BoundedBinarySemaphore)  # type: ignore[return-value]  # pyright: ignore[reportReturnType]
        return object.__new__(cls)

    def __init__(
        self, initial_value: int | None = None, max_value: int | None = None
    ) -> None:
        if initial_value is None:
            initial_value = 1 if max_value is None else max_value
        Semaphore.__init__(self, initial_value)
        if max_value is None:
            max_value = self._initial_value
        max_value = _check_value("max_value", max_value)
        if max_value < self._initial_value:
            msg = "initial_value must be <= max_value"
            raise ValueError(msg)
        self._max_value = max_value
        self._init_room(max_value - self._initial_value)

    def __repr__(self) -> str:
        return (
            f"<{_qualname(self)} object at {id(self):#x}"
            f" [value={self.value}, max_value={self._max_value},"
            f" waiting={self.waiting}]>"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self._initial_value, self._max_value)

    @property
    def max_value(self) -> int:
        return self._max_value

    def _init_room(self, room: int) -> None:
        self._spare = room
        self._spare_lock = _allocate_lock()

    def _claimed_by(self, payload: Any) -> None:
        with self._spare_lock:
            self._spare += 1

    def _take_room(self) -> bool:
        with self._spare_lock:
            if not self._spare:
                return False
            self._spare -= 1
        return True

    # Not the binary semaphore's fast paths (its room is `_spare`).
    __aenter__ = Semaphore.__aenter__

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()

    def release(self, count: int = 1) -> None:
        """Add one unit; `RuntimeError` if that would exceed ``max_value``."""
        if _check_value("count", count) != 1:
            msg = "a bounded semaphore releases one unit at a time"
            raise ValueError(msg)
        if not self._take_room():
            msg = "semaphore released too many times"
            raise _OverReleaseError(msg)
        self._release(1)


class BinarySemaphore(_CappedSemaphore):
    """A semaphore whose value is 0 or 1: an unowned lock.

    Releasing it while its value is 1 leaves it at 1.
    ``BinarySemaphore(value, max_value)`` and ``BinarySemaphore(max_value=1)``
    return a `BoundedBinarySemaphore`.
    """

    __slots__ = ()

    if TYPE_CHECKING:

        @overload
        def __new__(
            cls, initial_value: int | None = None, max_value: None = None
        ) -> Self: ...
        @overload
        def __new__(
            cls, initial_value: int | None = None, *, max_value: int
        ) -> BoundedBinarySemaphore: ...
        @overload
        def __new__(
            cls, initial_value: int | None, max_value: int
        ) -> BoundedBinarySemaphore: ...

    def __new__(
        cls, initial_value: int | None = None, max_value: int | None = None
    ) -> Any:
        if cls is BinarySemaphore and max_value is not None:
            # A subclass of cls, so type.__call__ still runs its __init__
            # (which accepts only max_value=1).
            return object.__new__(BoundedBinarySemaphore)
        return object.__new__(cls)

    if TYPE_CHECKING:
        # As for Semaphore.
        @overload
        def __init__(  # pyright: ignore[reportInconsistentConstructor]  # one overload per __new__ overload
            self, initial_value: int | None = None, max_value: None = None
        ) -> None: ...
        @overload
        def __init__(  # type: ignore[misc]  # self: a subclass, on purpose
            self: BoundedBinarySemaphore,
            initial_value: int | None = None,
            *,
            max_value: int,
        ) -> None: ...
        @overload
        def __init__(  # type: ignore[misc]  # self: a subclass, on purpose
            self: BoundedBinarySemaphore, initial_value: int | None, max_value: int
        ) -> None: ...

    def __init__(
        self, initial_value: int | None = None, max_value: int | None = None
    ) -> None:
        Semaphore.__init__(self, initial_value)
        if self._initial_value > 1:
            msg = "initial_value must be 0 or 1"
            raise ValueError(msg)
        self._max_value = 1
        self._init_room(1 - self._initial_value)

    def release(self, count: int = 1) -> None:
        """Set the value to 1 (handing it to the oldest waiter, if any)."""
        if _check_value("count", count) != 1:
            msg = "a binary semaphore releases one unit at a time"
            raise ValueError(msg)
        if self._take_room():  # else at 1 already: stays 1
            self._release(1)

    # The uncontended `async with` inline: one pop and one append each way.

    async def __aenter__(self) -> Self:
        # No look before the pop: the free case is the one to serve fast here.
        try:
            self._permits.pop()  # a binary semaphore's batches are all 1
        except IndexError:  # taken
            await self._async_acquire(None)
            return self
        self._room.append(None)
        look = _checkpoint_look  # see there
        if (
            look.name if look is not None else "trio" in _modules
        ) and _async_checkpoint_due():
            await self._async_checkpoint(None)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            self._room.pop()
        except IndexError:  # at 1 already: stays 1
            return
        if self._waiters:
            self._release(1)
            return
        self._permits.append(1)
        if self._waiters:  # a waiter published meanwhile: serve it
            self._reclaim()


class BoundedBinarySemaphore(BoundedSemaphore, BinarySemaphore):
    """A binary semaphore that raises `RuntimeError` when released at 1."""

    __slots__ = ()

    def __new__(
        cls, initial_value: int | None = None, max_value: int | None = None
    ) -> Self:
        return object.__new__(cls)

    def __init__(
        self, initial_value: int | None = None, max_value: int | None = None
    ) -> None:
        if max_value not in (None, 1):
            msg = "max_value must be 1"
            raise ValueError(msg)
        BoundedSemaphore.__init__(self, initial_value, 1)

    release = BoundedSemaphore.release
    # Room for one release at most: the binary semaphore's list will do.
    _init_room = _CappedSemaphore._init_room
    _claimed_by = _CappedSemaphore._claimed_by
    _take_room = _CappedSemaphore._take_room


_mappingproxy: Final[type[MappingProxyType[Any, Any]]] = type(type.__dict__)


def _check_tokens(total_tokens: float) -> float:
    if total_tokens.__class__ is float and total_tokens == float("inf"):
        return total_tokens
    return _check_value("total_tokens", total_tokens)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


# Marks a borrower named by the caller (`*_on_behalf_of`) in a limiter's
# records, so that it can never be mistaken for a task (a thread's ident is an
# int, and so may be a borrower).
_BEHALF: Final[Any] = object()


class CapacityLimiter(_WaiterQueue):
    """Lets at most ``total_tokens`` borrowers in at once, each holding one token.

    A borrower is the current task, or any hashable object named with the
    ``*_on_behalf_of`` methods. A borrower may hold one token at a time and
    only it may give it back (both misuses raise `RuntimeError`).
    ``total_tokens`` may be changed at any time (``math.inf`` for no limit).
    """

    __slots__ = ("__weakref__", "_borrowers", "_lock", "_total_tokens", "_waiters")

    _reentrant: ClassVar[bool] = False

    def __init__(self, total_tokens: float = 1) -> None:
        self._total_tokens = _check_tokens(total_tokens)
        # Invariants, all kept under `_lock` (a critical section that is never
        # held while anyone waits, nor while a waiter is woken):
        # * `_borrowers` maps each borrower to its depth; a waiter is entered
        #   at the moment its ticket is claimed for it (the hand-off), so
        #   `borrowed_tokens` is exact at every moment;
        # * a borrower is added only while len(_borrowers) < _total_tokens
        #   (lowering the total below that admits no one until it holds);
        # * after every change, `_admit` has run: either len(_borrowers) >=
        #   _total_tokens or no live token is left in `_waiters`.
        # * `_waiters` (published tickets, oldest first) changes only under
        #   `_lock`: appended by `_begin`, popped by `_admit`, removed by
        #   `_withdraw`.
        # A waiter's ticket carries (borrower, depth); `_admit` replaces the
        # depth by 0 when it refuses a borrower that got in meanwhile.
        self._borrowers: dict[object, int] = {}
        self._waiters: deque[_Ticket] | None = None
        self._lock = _allocate_lock()

    def __repr__(self) -> str:
        return (
            f"<{_qualname(self)} object at {id(self):#x}"
            f" [total_tokens={self._total_tokens},"
            f" borrowed_tokens={self.borrowed_tokens}, waiting={self.waiting}]>"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self._total_tokens,)

    def __bool__(self) -> bool:
        return bool(self._borrowers)

    @property
    def total_tokens(self) -> float:
        return self._total_tokens

    @total_tokens.setter
    def total_tokens(self, value: float) -> None:
        value = _check_tokens(value)
        with self._lock:
            self._total_tokens = value
            woken = self._admit()
        self._wake(woken)

    @property
    def available_tokens(self) -> float:
        with self._lock:
            return max(self._total_tokens - len(self._borrowers), 0)

    @property
    def borrowed_tokens(self) -> int:
        return len(self._borrowers)

    def statistics(self) -> CapacityLimiterStatistics:
        """A snapshot in anyio's shape; `borrowers` as the property shows them."""
        borrowers = self._borrowers.copy()
        return CapacityLimiterStatistics(
            len(borrowers),
            self._total_tokens,
            tuple(_shown(key) for key in borrowers),
            self.waiting,
        )

    @property
    def borrowers(self) -> MappingProxyType[object, int]:
        """A read-only snapshot: each borrower -> its depth.

        A task is shown as its ``(library, id)``; a borrower named with
        ``*_on_behalf_of`` as itself.
        """
        return _mappingproxy(
            {_shown(key): depth for key, depth in self._borrowers.copy().items()}
        )

    # -- the one admission step

    def _admit(self) -> list[_Ticket]:
        """Hand tokens to the oldest waiters while borrowed < total.

        Called under `_lock` after every change (release, give-up, new
        total); returns the claimed tickets, to be woken once it is left.
        """
        woken: list[_Ticket] = []
        waiters = self._waiters
        borrowers = self._borrowers
        while waiters and len(borrowers) < self._total_tokens:
            ticket = waiters.popleft()
            if not ticket.claim():  # its waiter gave up first
                continue
            key, depth = ticket.payload
            held = borrowers.get(key)
            if held is None:
                borrowers[key] = depth
            elif self._reentrant:
                borrowers[key] = held + depth
            else:  # the same borrower got in by another call meanwhile
                ticket.payload = (key, 0)
            woken.append(ticket)
        return woken

    def _wake(self, woken: list[_Ticket]) -> None:
        # Outside `_lock`; see _wake_admitted.
        _wake_admitted(woken, self._lock, self._undo_admission, self._admit)

    def _undo_admission(self, ticket: _Ticket) -> None:
        # Under `_lock`: the borrow of a waiter that never runs to use it.
        borrowers = self._borrowers
        key, depth = ticket.payload
        held = borrowers.get(key)
        # depth 0: `_admit` refused it; None: a named borrower released by
        # another call meanwhile. Nothing to undo.
        if not depth or held is None:
            return
        if held > depth:  # the same borrower re-entered meanwhile
            borrowers[key] = held - depth
        else:
            del borrowers[key]

    def _take(self, key: object, depth: int) -> bool:
        """Borrow for *key* if that needs no wait (under `_lock`)."""
        borrowers = self._borrowers
        held = borrowers.get(key)
        if held is not None:
            if not self._reentrant:
                msg = "this borrower is already holding one of this limiter's tokens"
                raise RuntimeError(msg)
            borrowers[key] = held + depth
            return True
        if len(borrowers) < self._total_tokens and not self._waiters:
            borrowers[key] = depth
            return True
        return False

    def _begin(
        self,
        key: object,
        depth: int,
        blocking: bool,
        timeout: float | None,
        make_ticket: Callable[[Any], _TicketT],
    ) -> bool | _TicketT:
        """The non-blocking part of an acquire.

        True: borrowed; False: not now; a ticket: published, wait on it.
        """
        with self._lock:
            if self._take(key, depth):
                return True
        if not blocking or timeout == 0:
            return False
        ticket = make_ticket((key, depth))
        with self._lock:
            # Decided in one critical section with every release: either
            # we get in now or a later `_admit` sees our ticket.
            if self._take(key, depth):
                return True
            waiters = self._waiters
            if waiters is None:
                waiters = self._waiters = deque()
            waiters.append(ticket)
        return ticket

    def _handed(self, ticket: _Ticket) -> bool:
        """After a wait that was handed a token: borrowed, or refused."""
        with self._lock:  # `_admit` wrote the data under it
            depth = ticket.payload[1]
        if not depth:
            msg = "this borrower is already holding one of this limiter's tokens"
            raise RuntimeError(msg)
        return True

    def _withdraw(self, ticket: _Ticket) -> None:
        # The waiter gave up: its ticket leaves the queue under `_lock`, as
        # every change of `_waiters` does (`_admit` tests, then pops).
        with self._lock:
            waiters = self._waiters
            if waiters is not None:
                _discard(waiters, ticket)

    def _undo(self, ticket: _Ticket) -> None:
        # Handed a token while leaving with an exception: give it back.
        with self._lock:
            key, depth = ticket.payload
        if depth:
            self._release(key, depth)

    def _release(self, key: object, count: int) -> None:
        with self._lock:
            borrowers = self._borrowers
            held = borrowers.get(key)
            if held is None:
                msg = "this borrower is not holding any of this limiter's tokens"
                for borrower in list(borrowers):
                    hint = _wrong_face_hint(borrower, key)
                    if hint:
                        msg += hint
                        break
                raise RuntimeError(msg)
            if count > held:
                msg = "released more times than acquired"
                raise RuntimeError(msg)
            if count < held:
                borrowers[key] = held - count
                return
            del borrowers[key]
            if not self._waiters:  # it changes under `_lock` only
                return
            woken = self._admit()
        self._wake(woken)

    # -- the two faces: they only choose how to park

    def _green(
        self, key: object, depth: int, blocking: bool, timeout: float | None
    ) -> bool:
        result = self._begin(key, depth, blocking, timeout, _green_ticket)
        if result is True or result is False:
            if blocking and (_GREEN_CHECKPOINTS_ANY or _overrides_active):
                self._green_checkpoint(key, depth, result)
            return result
        return self._green_park(result, timeout) and self._handed(result)

    async def _async(
        self, key: object, depth: int, blocking: bool, timeout: float | None
    ) -> bool:
        result = self._begin(key, depth, blocking, timeout, _async_ticket)
        if result is True or result is False:
            library = _async_checkpoint_library() if blocking else None
            if library is not None:
                try:
                    await _async_yield(library)
                except BaseException:  # cancelled: leave nothing borrowed
                    if result:
                        self._release(key, depth)
                    raise
            return result
        return await self._async_park(result, timeout) and self._handed(result)

    def _green_checkpoint(self, key: object, depth: int, borrowed: bool) -> None:
        try:
            green_checkpoint()
        except BaseException:  # a green kill or Timeout: leave nothing borrowed
            if borrowed:
                self._release(key, depth)
            raise

    # -- public face

    def green_acquire(
        self, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Borrow a token in green code; False if none (non-blocking/timeout)."""
        blocking, timeout = _acquire_args(blocking, timeout)
        return self._green(_green_task(), 1, blocking, timeout)

    async def async_acquire(
        self, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Borrow a token in async code; False if none (non-blocking/timeout)."""
        blocking, timeout = _acquire_args(blocking, timeout)
        return await self._async(_current_async_task(), 1, blocking, timeout)

    def green_acquire_on_behalf_of(
        self, borrower: object, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Borrow a token for *borrower* (any hashable object) in green code.

        As trio's and anyio's ``acquire_on_behalf_of``: the ticket is held by
        *borrower*, not by the calling task, and is given back with
        `green_release_on_behalf_of` (or the async one) from any task.
        """
        key = _behalf(borrower)
        blocking, timeout = _acquire_args(blocking, timeout)
        return self._green(key, 1, blocking, timeout)

    async def async_acquire_on_behalf_of(
        self, borrower: object, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Borrow a token for *borrower* (any hashable object) in async code."""
        key = _behalf(borrower)
        blocking, timeout = _acquire_args(blocking, timeout)
        return await self._async(key, 1, blocking, timeout)

    def green_release(self) -> None:
        """Give the current green task's token back."""
        self._release(_green_task(), 1)

    def async_release(self) -> None:
        """Give the current async task's token back."""
        self._release(_current_async_task(), 1)

    def green_release_on_behalf_of(self, borrower: object) -> None:
        """Give back the token held by *borrower*; `RuntimeError` if none."""
        self._release(_behalf(borrower), 1)

    def async_release_on_behalf_of(self, borrower: object) -> None:
        """Give back the token held by *borrower*; `RuntimeError` if none."""
        self._release(_behalf(borrower), 1)

    def green_borrowed(self) -> bool:
        """True if the current green task holds a token."""
        return _green_task() in self._borrowers

    def async_borrowed(self) -> bool:
        """True if the current async task holds a token."""
        library = current_async_library(failsafe=True)
        return library is not None and _async_task(library) in self._borrowers

    def __enter__(self) -> Self:
        self._green(_green_task(), 1, True, None)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._release(_green_task(), 1)

    async def __aenter__(self) -> Self:
        await self._async(_current_async_task(), 1, True, None)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._release(_current_async_task(), 1)


def _behalf(borrower: object) -> tuple[object, object]:
    # The record of a named borrower; hashing it checks the borrower first.
    key = (_BEHALF, borrower)
    hash(key)
    return key


def _shown(key: Any) -> object:
    # A record of `_borrowers` as `borrowers` shows it.
    return key[1] if key.__class__ is tuple else _task_identity(key)


class RCapacityLimiter(CapacityLimiter):
    """A reentrant `CapacityLimiter`: a borrower may acquire again (one token
    held, the depth counted) and releases as many times."""

    __slots__ = ()

    _reentrant = True

    def green_acquire(
        self, count: int = 1, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Borrow (or re-enter *count* levels) in green code."""
        count = _check_count(count)
        blocking, timeout = _acquire_args(blocking, timeout)
        return self._green(_green_task(), count, blocking, timeout)

    async def async_acquire(
        self, count: int = 1, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Borrow (or re-enter *count* levels) in async code."""
        count = _check_count(count)
        blocking, timeout = _acquire_args(blocking, timeout)
        return await self._async(_current_async_task(), count, blocking, timeout)

    def green_release(self, count: int = 1) -> None:
        self._release(_green_task(), _check_count(count))

    def async_release(self, count: int = 1) -> None:
        self._release(_current_async_task(), _check_count(count))

    def green_count(self) -> int:
        """The current green task's depth (0 if it holds no token)."""
        return self._borrowers.get(_green_task(), 0)

    def async_count(self) -> int:
        """The current async task's depth (0 if it holds no token)."""
        library = current_async_library(failsafe=True)
        if library is None:
            return 0
        return self._borrowers.get(_async_task(library), 0)


# =============================================================================
# Conditions
# =============================================================================

# A Condition works with four kinds of lock. The kind is looked at once, when
# the Condition is made, and gives it an adapter (threading.Condition's
# `_release_save` / `_acquire_restore` / `_is_owned`, one object per kind);
# the waiting algorithm below is written once for all of them.
#
# A wait publishes a `_ConditionWaiter` in `_waiters`, releases the lock and
# parks on its ticket. Two one-shot claims decide what happened to it:
#
# * `unnotified` is popped by the notify that wakes it, or by the waiter when
#   it gives up (timeout, cancellation): a notify counts only waiters whose
#   claim it won, and a waiter that lost it knows it was notified, even if its
#   timeout fired at the same moment (it then returns True);
# * the ticket is set by whoever hands it what it waits for: with our own
#   locks, notify does not wake the waiter but queues its ticket on the lock
#   ("wait morphing"), and the lock's release hands the lock over through it;
#   otherwise notify sets it. The waiter claims it itself when it leaves early.
#
# A notified waiter that leaves with an exception (cancelled, killed) passes
# the notification to the next waiter once it holds the lock again, so a
# wake-up is never lost; one that leaves before any notify reached it is not
# counted. Every waiter takes the lock back before it returns or raises.


class _ConditionWaiter(_Ticket):
    """One wait on a Condition, from its publication to its return.

    With our locks it is also what a notify queues on the lock (wait
    morphing): the lock hands itself over through it as through the
    waiter's own ticket (`claim`, then `wake`). A wake-up that cannot be
    delivered then (the waiter's loop, run or hub went away after the
    notify) passes the notification on to the Condition's next waiter.
    """

    __slots__ = (
        "condition",
        "error",
        "fatal",
        "notified",
        "passing",
        "predicate",
        "relock",
        "saved",
        "stamp",
        "ticket",
        "unnotified",
    )

    def __init__(
        self,
        condition: Condition,
        ticket: _Ticket,
        stamp: Any,
        predicate: Callable[[], object] | None,
    ) -> None:
        # Invariants: `unnotified` holds one item until a notify or the
        # waiter pops it; `stamp` (the Condition's timer at publication) is
        # rewritten only by a notify whose delegated predicate said no, which
        # then moves the waiter to the back. The other fields belong to the
        # waiting task alone. `payload` is its ticket's: what the lock names
        # as its next owner. `passing` holds one item until whoever is to
        # pass a notification on pops it: the waiter leaving with it, or a
        # notifier or releaser that found its wake-up undeliverable (both
        # can happen at once when its coroutine is closed then).
        self.condition = condition
        self.ticket = ticket
        self.payload = ticket.payload
        self.stamp = stamp
        self.predicate = predicate
        self.unnotified = [None]
        self.passing = [None]
        self.saved: Any = None  # what the adapter needs to take the lock back
        self.notified = False
        self.relock = False  # the lock is still to be taken back
        self.fatal = False  # `error` is not a cancellation: no more retries
        self.error: BaseException | None = None

    # -- as a ticket in our lock's queue (the waiter's own `cancel()` is on
    # `ticket`)

    def set(self) -> bool:
        return self.claim() and self.wake()

    def claim(self) -> bool:
        return self.ticket.claim()

    def wake(self) -> bool:
        if self.ticket.wake():
            return True
        # Not notified after all: the next waiter is (unless its coroutine,
        # closed meanwhile, passed the notification on already).
        if self.undelivered():
            self.condition._notify(1)
        return False

    def undelivered(self) -> bool:
        """A notify or a release could not deliver the notification: True if
        the caller is to pass it on (the waiter has not taken that on)."""
        self.unnotified.append(None)  # a waiter that settles later was not
        return self.passes_on()

    def passes_on(self) -> bool:
        # The one-shot claim on passing the notification on.
        return _pop_claim(self.passing)

    @property
    def pending(self) -> bool:
        return self.ticket.pending


class _NoLock:
    """The adapter of ``Condition(None)``: nothing to hold."""

    __slots__ = ("lock",)

    morphs = False

    def __init__(self, lock: Any) -> None:
        self.lock = lock

    def held(self) -> bool:
        return True

    def __bool__(self) -> bool:
        return False

    def enter(self) -> Any:
        return None

    def exit(self, exc_info: Any) -> Any:
        return None

    # Awaitables (the `async with` of a Condition returns them as they are).

    async def async_enter(self) -> Any:
        return self.enter()

    async def async_exit(self, exc_info: Any) -> Any:
        return self.exit(exc_info)

    def owned_data(self, current_task: Callable[[], object]) -> Any:
        """What the caller's hold of the lock is (checked), before waiting."""
        return None

    def release_save(self, payload: Any) -> Any:
        return None

    def levels(self, saved: Any) -> int:
        """How many times the waiter held the lock (an RLock's depth)."""
        return 1

    def wake(self, waiter: _ConditionWaiter) -> bool:
        """Hand the notification over; False if its waiter is gone (its loop
        closed, its hub or run ended) and cannot take it."""
        ticket = waiter.ticket
        if not ticket.claim():
            # It gave up as we notified it; having lost its claim on the
            # notification, it returns True: it is counted.
            return True
        return ticket.wake()

    def handed_over(self, waiter: _ConditionWaiter) -> None:
        pass

    def withdraw(self, waiter: _ConditionWaiter) -> None:
        pass

    def green_restore(self, waiter: _ConditionWaiter) -> None:
        pass

    async def async_restore(self, waiter: _ConditionWaiter) -> None:
        pass


def _not_held(owner: object = None, me: object = None) -> NoReturn:
    msg = "cannot wait on un-acquired lock"
    hint = _wrong_face_hint(owner, me)
    if hint:  # `cv.wait()` inside `async with cv`, or the reverse
        face = "await cv" if _is_green(me) else "cv.wait()"
        msg += f"{hint} (`{face}`)"
    raise RuntimeError(msg)


class _ForeignLock(_NoLock):
    """A threading lock, or anything with ``acquire()`` and ``release()``.

    Woken waiters take it back with a blocking call, also in async code (as
    ``async with cv`` does).
    """

    __slots__ = ()

    def __bool__(self) -> bool:
        return self.held()

    def held(self) -> bool:
        locked = getattr(self.lock, "locked", None)
        return bool(locked()) if locked is not None else self._owned()

    def _owned(self) -> bool:
        lock = self.lock
        is_owned = getattr(lock, "_is_owned", None)
        if is_owned is not None:
            return bool(is_owned())
        # threading.Condition's test for a lock that cannot tell its owner.
        if lock.acquire(False):
            lock.release()
            return False
        return True

    def enter(self) -> Any:
        return self.lock.acquire()

    def exit(self, exc_info: Any) -> Any:
        return self.lock.release()

    def owned_data(self, current_task: Callable[[], object]) -> Any:
        if not self._owned():
            _not_held()
        return None

    def release_save(self, payload: Any) -> Any:
        lock = self.lock
        release_save = getattr(lock, "_release_save", None)
        return lock.release() if release_save is None else release_save()

    def levels(self, saved: Any) -> int:
        # A threading.RLock saves (count, owner); other locks save None.
        try:
            return int(saved[0])
        except (TypeError, LookupError, ValueError):
            return 1

    def green_restore(self, waiter: _ConditionWaiter) -> None:
        lock = self.lock
        acquire_restore = getattr(lock, "_acquire_restore", None)
        if acquire_restore is None:
            lock.acquire()
        else:
            acquire_restore(waiter.saved)
        waiter.relock = False

    async def async_restore(self, waiter: _ConditionWaiter) -> None:
        self.green_restore(waiter)


class _OurLock(_NoLock):
    """Our Lock, RLock or semaphore: notify queues the waiter on the lock."""

    __slots__ = ()

    morphs = True

    def __bool__(self) -> bool:
        return self.held()

    def held(self) -> bool:
        return bool(self.lock.locked())

    def enter(self) -> Any:
        return self.lock.__enter__()

    def exit(self, exc_info: Any) -> Any:
        return self.lock.__exit__(*exc_info)

    # The lock's own awaitables, not awaited here: no coroutine of ours
    # between the task and the lock.

    def async_enter(self) -> Any:
        return self.lock.__aenter__()

    def async_exit(self, exc_info: Any) -> Any:
        return self.lock.__aexit__(*exc_info)

    def owned_data(self, current_task: Callable[[], object]) -> Any:
        # A semaphore has no owner: it must be held by someone.
        if not self.lock.locked():
            _not_held()
        return None

    def release_save(self, payload: Any) -> Any:
        self.lock._give_back(payload)
        return payload

    def wake(self, waiter: _ConditionWaiter) -> bool:
        # Woken later, by the lock's hand-off; a waiter that can no longer
        # run is not queued (and if it cannot by then, it passes the
        # notification on: see _ConditionWaiter.wake).
        if waiter.ticket._gone():
            return False
        self.lock._adopt(waiter)
        return True

    def handed_over(self, waiter: _ConditionWaiter) -> None:
        self.lock._claimed_by(waiter.saved)

    def withdraw(self, waiter: _ConditionWaiter) -> None:
        # It may wait in the lock's queue (a notify moved it there).
        self.lock._withdraw(waiter)

    def green_restore(self, waiter: _ConditionWaiter) -> None:
        self.lock._green_acquire(waiter.saved)
        waiter.relock = False

    async def async_restore(self, waiter: _ConditionWaiter) -> None:
        if _async_library() == "trio":  # asyncio: the caller defers it
            with _modules["trio"].CancelScope(shield=True):
                await self.lock._async_acquire(waiter.saved)
        else:
            await self.lock._async_acquire(waiter.saved)
        waiter.relock = False


class _OurOwnedLock(_OurLock):
    """Our Lock or RLock: only its owner may wait (an RLock's wait releases
    every level and takes them all back)."""

    __slots__ = ()

    def owned_data(self, current_task: Callable[[], object]) -> Any:
        return self.lock._saved_for_wait(current_task())

    def levels(self, saved: Any) -> int:
        # An RLock saves (task, depth).
        return int(saved[1]) if isinstance(self.lock, RLock) else 1


def _lock_adapter(lock: Any) -> _NoLock:
    if lock is None:
        return _NoLock(lock)
    if isinstance(lock, Lock):
        return _OurOwnedLock(lock)
    if isinstance(lock, Semaphore):
        return _OurLock(lock)
    acquire = getattr(lock, "acquire", None)
    if (
        not callable(acquire)
        or not callable(getattr(lock, "release", None))
        or _is_coroutine_function(acquire)  # asyncio.Lock and its kin
    ):
        msg = (
            "a Condition's lock must be None, an aiologic lock or semaphore, or"
            " an object with blocking acquire() and release() methods (a"
            f" threading lock), not {lock!r}"
        )
        raise TypeError(msg)
    return _ForeignLock(lock)


def _cancels(exc: BaseException) -> bool:
    """True if *exc* cancels the task that catches it (not an error).

    asyncio's CancelledError, trio's Cancelled, a green kill (GreenletExit)
    and gevent's or eventlet's Timeout.
    """
    for module, name in _CANCELLATIONS:
        cls = getattr(_modules.get(module), name, None)
        if cls is not None and isinstance(exc, cls):
            return True
    return False


_CANCELLATIONS: Final = (
    ("asyncio", "CancelledError"),
    ("trio", "Cancelled"),
    ("greenlet", "GreenletExit"),
    ("gevent.timeout", "Timeout"),
    ("eventlet.timeout", "Timeout"),
)


def _wait_timeout(timeout: float | None) -> float | None:
    """A Condition's timeout: negative is already expired, as in threading."""
    if timeout is None:
        return None
    try:
        return _check_timeout(timeout)
    except ValueError:
        if timeout < 0:  # NaN is not
            return 0.0
        raise


class _Deadline:
    """The time left of a `wait_for`: None for no limit."""

    __slots__ = ("_at", "left")

    def __init__(self, timeout: float | None) -> None:
        self._at = None if timeout is None else _monotonic() + timeout
        self.left: float | None = timeout

    def running(self) -> bool:
        if self._at is None:
            return True
        self.left = self._at - _monotonic()
        return self.left > 0


class Condition(_AwaitMixin):
    """A condition variable over any of our locks, a threading lock, or none.

    ``wait()`` releases the lock (all levels of an `RLock`), waits for a
    notification and returns holding the lock again, also when it raises.
    With our own locks a notification moves the waiter onto the lock's queue
    instead of waking it, so it wakes once, already holding the lock.

    A notified waiter that is cancelled before it returns passes the
    notification on to the next waiter; `notify` counts only the waiters it
    woke, and wakes only waits that began before it.
    """

    __slots__ = ("__weakref__", "_adapter", "_timer", "_waiters")

    def __init__(
        self, lock: Any = MISSING, timer: Callable[[], object] = MISSING
    ) -> None:
        if lock is MISSING:
            lock = RLock()
        self._adapter = _lock_adapter(lock)
        self._timer = _count().__next__ if timer is MISSING else timer
        # Published waits, oldest first; see _ConditionWaiter for who pops.
        self._waiters: deque[_ConditionWaiter] = deque()

    def __repr__(self) -> str:
        return (
            f"<{_qualname(self)} object at {id(self):#x}"
            f" [lock={self.lock!r}, waiting={self.waiting}]>"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.lock, _timer_argument(self._timer))

    @property
    def lock(self) -> Any:
        return self._adapter.lock

    @property
    def timer(self) -> Callable[[], object]:
        return self._timer

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def statistics(self) -> ConditionStatistics:
        """A snapshot in anyio's shape: waiters, and its lock's statistics."""
        adapter = self._adapter
        return ConditionStatistics(
            self.waiting, _lock_statistics(adapter.lock, bool(adapter))
        )

    def __bool__(self) -> bool:
        return bool(self._adapter)

    # -- holding the lock

    # The lock's own __enter__ result (a Lock gives itself, a threading lock
    # True, no lock None).
    def __enter__(self) -> object:
        return self._adapter.enter()

    def __exit__(self, *exc_info: Any) -> Any:
        if exc_info[0] is GeneratorExit and _closing_without(self.lock):
            return None
        return self._adapter.exit(exc_info)

    # The adapter's awaitables as they are: a frame less on each side.

    def __aenter__(self) -> Awaitable[object]:
        return self._adapter.async_enter()

    def __aexit__(self, *exc_info: Any) -> Awaitable[Any]:
        if exc_info[0] is GeneratorExit and _closing_without(self.lock):
            return _nothing()
        return self._adapter.async_exit(exc_info)

    # -- waiting: the non-blocking steps, then two thin faces

    def _publish(
        self,
        predicate: Callable[[], object] | None,
        current_task: Callable[[], object],
        make_ticket: Callable[[Any], _TicketT],
    ) -> tuple[_ConditionWaiter, _TicketT]:
        """Check the caller holds the lock, publish a waiter, release the lock."""
        adapter = self._adapter
        payload = adapter.owned_data(current_task)
        ticket = make_ticket(payload)
        waiter = _ConditionWaiter(self, ticket, self._timer(), predicate)
        # Published before the release: a notify right after it finds us.
        self._waiters.append(waiter)
        try:
            waiter.saved = adapter.release_save(payload)
        except BaseException:
            _discard(self._waiters, waiter)
            raise
        return waiter, ticket

    def _settle(self, waiter: _ConditionWaiter) -> None:
        """After the park: was it notified, and is the lock still to take?"""
        try:
            waiter.unnotified.pop()
        except IndexError:
            waiter.notified = True
        else:  # no notify will count it now
            _discard(self._waiters, waiter)
        adapter = self._adapter
        if waiter.ticket.cancel():
            # Nothing handed over: take a ticket that a notify queued on our
            # lock out again (or that it is about to queue: the lock then
            # skips it), and take the lock back ourselves.
            if waiter.notified:
                adapter.withdraw(waiter)
            waiter.relock = adapter.lock is not None
        elif adapter.morphs:  # the lock was handed to us
            adapter.handed_over(waiter)
        else:
            waiter.relock = adapter.lock is not None

    def _interrupted(self, waiter: _ConditionWaiter, exc: BaseException) -> None:
        # Taking the lock back defers the waiter's own cancellation (raised
        # once the lock is held) and gives up on anything else at once.
        if not _cancels(exc):
            waiter.relock = False
            waiter.fatal = True
            waiter.error = exc
        elif waiter.error is None:
            waiter.error = exc

    def _finish(self, waiter: _ConditionWaiter, failed: bool) -> None:
        """The lock is held again (unless fatal): pass on, raise what is due."""
        error = waiter.error
        if waiter.notified and (failed or error is not None) and waiter.passes_on():
            # Leaving with an exception: the notification goes to the next
            # waiter, as if this one had not been there.
            self._notify(1)
        if error is not None and (waiter.fatal or not failed):
            waiter.error = None
            raise error

    def _green_wait(
        self, predicate: Callable[[], object] | None, timeout: float | None
    ) -> bool:
        waiter, ticket = self._publish(predicate, _green_task, _green_ticket)
        try:
            _check_green_park(self)
            ticket.park(timeout)
        except BaseException:  # gevent Timeout/GreenletExit, KeyboardInterrupt
            self._green_reacquire(waiter, True)
            raise
        self._green_reacquire(waiter, False)
        return waiter.notified

    def _green_reacquire(self, waiter: _ConditionWaiter, failed: bool) -> None:
        self._settle(waiter)
        while waiter.relock:
            try:
                self._adapter.green_restore(waiter)
            except BaseException as exc:  # noqa: BLE001 - see _interrupted
                self._interrupted(waiter, exc)
        self._finish(waiter, failed)

    async def _async_wait_core(
        self, predicate: Callable[[], object] | None, timeout: float | None
    ) -> bool:
        waiter, ticket = self._publish(predicate, _current_async_task, _async_ticket)
        try:
            await ticket.park(timeout)
        except GeneratorExit:
            self._abandon(waiter, True)
            raise
        except BaseException:  # asyncio.CancelledError, trio.Cancelled
            await self._async_reacquire(waiter, True)
            raise
        await self._async_reacquire(waiter, False)
        return waiter.notified

    def _abandon(self, waiter: _ConditionWaiter, parked: bool) -> None:
        # The waiting coroutine is being closed, never to run again (it is
        # collected once its loop or run is gone), while *parked* or while
        # taking the lock back: it must not wait for the lock. It takes none
        # back and gives back one handed to it; the blocks of the lock it
        # closes through next, in this thread and at once, leave the lock
        # alone (each frame of a closed coroutine gets a GeneratorExit of its
        # own: the mark cannot ride on it; all are closed from one frame, our
        # caller's caller). A notification is passed on.
        adapter = self._adapter
        if parked:
            self._settle(waiter)
            if not waiter.relock and adapter.morphs:  # the lock was handed to it
                adapter.release_save(waiter.saved)
        waiter.relock = False
        lock = adapter.lock
        if lock is not None:
            try:
                closer = id(sys._getframe(2))
            except ValueError:  # closed from no frame at all
                closer = id(None)
            mark = (id(lock), closer, adapter.levels(waiter.saved))
            _left_unheld[_get_ident()] = mark
        if waiter.notified and waiter.passes_on():
            self._notify(1)

    async def _async_reacquire(self, waiter: _ConditionWaiter, failed: bool) -> None:
        self._settle(waiter)
        while waiter.relock:
            try:
                await self._adapter.async_restore(waiter)
            except GeneratorExit:  # the acquire that raised it left nothing held
                self._abandon(waiter, False)
                raise
            except BaseException as exc:  # noqa: BLE001 - see _interrupted
                self._interrupted(waiter, exc)
        self._finish(waiter, failed)

    # -- public waiting API

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, wait for a notification, take the lock back.

        True if notified, False on timeout (a negative timeout has expired
        already). `RuntimeError` if the lock is not held by the caller.
        """
        return self._green_wait(None, _wait_timeout(timeout))

    async def _async_wait(self, timeout: float | None) -> bool:
        return await self._async_wait_core(None, _wait_timeout(timeout))

    def wait_for(
        self,
        predicate: Callable[[], _T],
        timeout: float | None = None,
        *,
        delegate: bool = True,
    ) -> _T:
        """Wait until ``predicate()`` is true; return its last value.

        With *delegate*, notifiers evaluate the predicate (under the lock)
        and wake this waiter only when it holds.
        """
        deadline = _Deadline(_wait_timeout(timeout))
        delegated = predicate if delegate else None
        result = predicate()
        while not result and deadline.running():
            self._green_wait(delegated, deadline.left)
            result = predicate()
        return result

    async def for_(
        self,
        predicate: Callable[[], _T],
        timeout: float | None = None,
        *,
        delegate: bool = True,
    ) -> _T:
        """Async `wait_for`."""
        deadline = _Deadline(_wait_timeout(timeout))
        delegated = predicate if delegate else None
        result = predicate()
        while not result and deadline.running():
            await self._async_wait_core(delegated, deadline.left)
            result = predicate()
        return result

    # -- notifying

    def notify(self, count: int = 1) -> int:
        """Wake up to *count* waiters; return how many were woken.

        The lock must be held (by anyone), unless the condition is lockless.
        Waits that begin during the call are not woken by it.
        """
        if count.__class__ is not int or count < 0:  # the common case first
            count = _check_value("count", count)
        if not self._adapter.held():
            msg = "cannot notify on un-acquired lock"
            raise RuntimeError(msg)
        return self._notify(count)

    def notify_all(self) -> int:
        """Wake every waiter; return how many were woken."""
        return self.notify(sys.maxsize)

    def _notify(self, count: int) -> int:
        waiters = self._waiters
        if not waiters:  # a look costs less than the IndexError below
            return 0
        timer = self._timer
        now: Any = timer()
        requeued = None  # the first waiter this call sent to the back
        woken = 0
        while woken < count:
            # Look before taking: a waiter taken off to be looked at and put
            # back would be hidden meanwhile from a concurrent notify (which
            # may be due to wake it), and might be put back after it left.
            try:
                waiter = waiters[0]
            except IndexError:
                break
            if waiter is requeued or waiter.stamp > now:
                break  # began after us: not ours to wake
            try:
                waiters.remove(waiter)  # the head: found at once
            except ValueError:  # another notify, or the waiter, took it
                continue
            # A ticket that was claimed, or whose future was cancelled, belongs
            # to a waiter that is leaving: it needs no notification.
            if not waiter.ticket.pending:
                continue
            predicate = waiter.predicate
            if predicate is not None and not _predicate_holds(predicate):
                waiter.stamp = timer()
                waiters.append(waiter)
                if not waiter.unnotified:  # it gave up meanwhile
                    _discard(waiters, waiter)
                elif requeued is None:
                    requeued = waiter
                continue
            try:
                waiter.unnotified.pop()
            except IndexError:  # it gave up first
                continue
            if self._adapter.wake(waiter) or not waiter.undelivered():
                # Woken; or its coroutine, closed as we found it could no
                # longer run, passes the notification on itself.
                woken += 1
            # Otherwise it can no longer run (its loop, run or hub is gone):
            # not counted; the next waiter is.
        return woken


async def _nothing() -> None:
    pass


def _predicate_holds(predicate: Callable[[], object]) -> bool:
    try:
        return bool(predicate())
    except Exception:  # noqa: BLE001 - let the waiter evaluate it and raise
        return True


# The exit methods between a block that a closed coroutine leaves and
# `_closing_without`.
_EXIT_CODES: Final = frozenset(
    method.__code__
    for method in (
        Condition.__exit__,
        Condition.__aexit__,
        _OurLock.exit,
        _OurLock.async_exit,
        Lock.__aexit__,
        RLock.__aexit__,
        _leaving_task,
    )
)


def _timer_argument(timer: Callable[[], object]) -> Any:
    # A copy of a Condition gets a new stamp counter of its own rather than a
    # copy of the itertools.count (which pickle and deepcopy stop supporting
    # in Python 3.14, with a DeprecationWarning from 3.12).
    counter = getattr(timer, "__self__", None)
    if type(counter) is _count and getattr(timer, "__name__", None) == "__next__":
        return MISSING
    return timer


# =============================================================================
# Barriers
# =============================================================================


class BrokenBarrierError(_StdlibRuntimeError):
    """Raised by a wait on a barrier that was aborted, reset or timed out.

    Also a `threading.BrokenBarrierError` and (3.11+) an
    `asyncio.BrokenBarrierError`, once those modules are imported.
    """


_FOREIGN_BASES.extend(
    (
        (BrokenBarrierError, "threading", "BrokenBarrierError"),
        (BrokenBarrierError, "asyncio", "BrokenBarrierError"),  # 3.11+
    )
)


_PASSED: Final[Any] = object()
_BROKEN: Final[Any] = object()


class _Cycle:
    # One round of a barrier. `arrivals` numbers the parties; `outcome` is
    # decided once (passed by the last party, or broken by an abort); `done`
    # wakes the parties when it is; `replaced` is popped by the one reset()
    # that installs the next round after a break.
    #
    # The rounds of a cyclic barrier form a chain: `passed_to` is the round
    # after a passed one (linked by the last party before it claims the
    # pass), `reset_to` the round a reset() put after a broken one. The
    # barrier's `_cycle` is only a hint that may lag behind (the last party
    # installs it after the pass); `_BarrierBase._current` follows the chain.
    __slots__ = ("arrivals", "done", "outcome", "passed_to", "replaced", "reset_to")

    def __init__(self) -> None:
        self.arrivals = _count().__next__
        self.done = Event()
        self.outcome: Flag[object] = Flag()
        self.replaced = [True]
        self.passed_to: _Cycle | None = None
        self.reset_to: _Cycle | None = None

    def following(self) -> _Cycle | None:
        """The round after this one, once this one is over; else None."""
        outcome = self.outcome.get(None)
        if outcome is _PASSED:
            return self.passed_to  # None for a latch
        if outcome is _BROKEN:
            return self.reset_to
        return None

    def break_(self) -> None:
        if self.outcome.set(_BROKEN):
            self.done.set()

    # `with cycle:` around a party's wait: leaving it with an exception
    # (cancelled, interrupted) breaks the round, as nobody else may pass it.
    def __enter__(self) -> None:
        pass

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        if exc_type is not None:
            self.break_()


class _Outsider:
    # What a wait that is no party of the round leaves with: nothing breaks.
    __slots__ = ()

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc_info: object) -> None:
        pass


_OUTSIDER: Final = _Outsider()


class _BarrierBase(_AwaitMixin):
    __slots__ = ("__weakref__", "_cycle", "_parties")

    # Does a passed round make way for a new one?
    _cyclic: ClassVar[bool] = True

    def __init__(self, parties: int = 0) -> None:
        self._parties = _check_value("parties", parties)
        self._cycle = _Cycle()

    def _current(self) -> _Cycle:
        """The round a party arriving now joins (see _Cycle)."""
        cycle = self._cycle
        while True:
            following = cycle.following()
            if following is None:
                return cycle
            cycle = following

    def __repr__(self) -> str:
        cycle = self._current()
        outcome = cycle.outcome.get(None)
        if outcome is _BROKEN:
            state = "broken"
        elif outcome is _PASSED:
            state = "passed"
        else:
            state = f"waiting={cycle.done.waiting}"
        return (
            f"<{_qualname(self)} object at {id(self):#x}"
            f" [parties={self._parties}, {state}]>"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self._parties,)

    @property
    def parties(self) -> int:
        return self._parties

    @property
    def broken(self) -> bool:
        """True once the barrier has been aborted (until reset, for RBarrier)."""
        return self._current().outcome.get(None) is _BROKEN

    @property
    def waiting(self) -> int:
        return self._current().done.waiting

    def abort(self) -> None:
        """Break the barrier: every waiting and later party gets `BrokenBarrierError`."""
        self._break_current()

    def _break_current(self) -> _Cycle:
        # Break the current round; if it passes first, the one after it.
        while True:
            cycle = self._current()
            cycle.break_()
            if cycle.outcome.get(None) is _BROKEN or not self._cyclic:
                return cycle

    def _arrive(self) -> tuple[_Cycle, int]:
        """Join the current round; index -1 means it is full, wait it out."""
        cycle = self._current()
        index = cycle.arrivals()
        last = max(self._parties, 1) - 1
        if index > last:
            if self._cyclic and cycle.outcome.get(None) is not _BROKEN:
                return cycle, -1
            return cycle, index  # a latch stays open (or broken) for good
        if index == last and cycle.done._any_gone():
            # A party that can no longer run (its loop, run or hub is gone)
            # breaks the round, as a cancelled one would.
            cycle.break_()
        elif index == last:
            # The last party: open the round for everybody. The next round
            # is linked first, so that whoever sees the pass finds it.
            following = _Cycle() if self._cyclic else None
            cycle.passed_to = following
            if cycle.outcome.set(_PASSED):
                if following is not None:
                    self._cycle = following
                cycle.done.set()
        return cycle, index

    def _join(
        self, timeout: float | None
    ) -> tuple[_Cycle | _Outsider, _Cycle, int, float | None]:
        """Arrive (the non-blocking core of a pass): what breaks the round if
        the wait fails, the round, the index and how long to wait for it.

        Index -1: wait out a full round that is passing, then join again.
        A late-comer to a latch (index >= parties) is no party: every party
        is in and the outcome is being decided, so it waits for it without
        a limit and its timeout or cancellation breaks nothing.
        """
        if timeout is not None:
            timeout = _check_timeout(timeout, _AS_WAIT)
        cycle, index = self._arrive()
        if 0 <= index < max(self._parties, 1):
            return cycle, cycle, index, timeout
        return _OUTSIDER, cycle, index, None

    def _result(self, cycle: _Cycle, index: int, passed: bool) -> int:
        """After the wait for the round: the index, or `BrokenBarrierError`."""
        if not passed:  # timed out: nobody else may pass this round
            cycle.break_()
        if cycle.outcome.get(None) is not _PASSED:
            raise BrokenBarrierError
        return index

    # The faces only choose how to wait (a wait on a round that is done
    # already is the checkpoint).

    def _green_pass(self, timeout: float | None) -> int:
        guard, cycle, index, wait = self._join(timeout)
        while index < 0:
            cycle.done.wait()
            guard, cycle, index, wait = self._join(timeout)
        with guard:
            passed = cycle.done.wait(wait)
        return self._result(cycle, index, passed)

    async def _async_pass(self, timeout: float | None) -> int:
        guard, cycle, index, wait = self._join(timeout)
        while index < 0:
            await cycle.done
            guard, cycle, index, wait = self._join(timeout)
        with guard:
            passed = await cycle.done.with_(wait)
        return self._result(cycle, index, passed)


class Latch(_BarrierBase):
    """A single-use barrier: the first *parties* waits block until all have
    arrived, then it stays open. A party that times out or is cancelled
    breaks it for everybody (`BrokenBarrierError`)."""

    __slots__ = ()

    _cyclic = False

    def __bool__(self) -> bool:
        return self._current().outcome.get(None) is not None

    def wait(self, timeout: float | None = None) -> None:
        """Arrive and block until all parties have."""
        self._green_pass(timeout)

    async def _async_wait(self, timeout: float | None) -> None:
        await self._async_pass(timeout)


class Barrier(_BarrierBase):
    """A cyclic barrier: every *parties* arrivals pass together, then the
    next round begins. ``wait()`` returns the party's index in the round
    (0 for the first to arrive). Once aborted it stays broken."""

    __slots__ = ()

    def wait(self, timeout: float | None = None) -> int:
        """Arrive and block until the round is complete; return the index."""
        return self._green_pass(timeout)

    async def _async_wait(self, timeout: float | None) -> int:
        return await self._async_pass(timeout)

    def __enter__(self) -> int:
        return self._green_pass(None)

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        if exc_type is not None:
            self.abort()

    async def __aenter__(self) -> int:
        return await self._async_pass(None)

    async def __aexit__(self, exc_type: object, *exc_info: object) -> None:
        if exc_type is not None:
            self.abort()


class RBarrier(Barrier):
    """A cyclic barrier that `reset()` makes usable again after a break."""

    __slots__ = ()

    def reset(self) -> None:
        """Break the current round (its parties get `BrokenBarrierError`) and
        start a fresh one."""
        cycle = self._break_current()
        try:
            cycle.replaced.pop()
        except IndexError:  # another reset() replaced it
            return
        following = cycle.reset_to = _Cycle()
        self._cycle = following


# =============================================================================
# Queues
# =============================================================================


class QueueEmpty(_StdlibError):
    """Raised by a non-blocking or timed-out get on an empty queue.

    Also a `queue.Empty` and an `asyncio.QueueEmpty`, once imported.
    """


class QueueFull(_StdlibError):
    """Raised by a non-blocking or timed-out put on a full queue.

    Also a `queue.Full` and an `asyncio.QueueFull`, once imported.
    """


class QueueShutDown(_StdlibError):
    """Raised by puts after `shutdown()`, and by gets once a shut-down queue is empty.

    Also (3.13+) a `queue.ShutDown` and an `asyncio.QueueShutDown`, once
    imported.
    """


_FOREIGN_BASES.extend(
    (
        # queue.Empty is _queue.Empty where that C module exists.
        (QueueEmpty, "_queue", "Empty"),
        (QueueEmpty, "queue", "Empty"),
        (QueueEmpty, "asyncio", "QueueEmpty"),
        (QueueFull, "queue", "Full"),
        (QueueFull, "asyncio", "QueueFull"),
        (QueueShutDown, "queue", "ShutDown"),  # 3.13+
        (QueueShutDown, "asyncio", "QueueShutDown"),  # 3.13+
    )
)


def _check_maxsize(maxsize: float | None) -> int:
    """The slots of a queue, 0 for unbounded, read as queue.Queue reads it.

    None, 0, a negative number and infinity are unbounded; a float bound
    admits as many items as ``qsize() < maxsize`` does (2.5: three).
    """
    if maxsize is None:
        return 0
    if maxsize.__class__ is not int:
        if isinstance(maxsize, float):
            if maxsize != maxsize:
                msg = "maxsize must not be NaN"
                raise ValueError(msg)
            if maxsize <= 0 or maxsize == float("inf"):
                return 0
            return -int(-maxsize // 1)  # math.ceil, without importing math
        try:
            maxsize = _index(maxsize)
        except TypeError:
            msg = f"maxsize must be a number or None, not {maxsize!r}"
            raise TypeError(msg) from None
    return max(maxsize, 0)  # pyright: ignore[reportReturnType]


class _QueueSemaphore(Semaphore):
    # Counts a queue's items or free slots; refuses waiters once shut down.
    # It knows nothing of its queue: a queue and its parts form no reference
    # cycle, so reference counting alone frees a dropped queue. Its queue
    # uses only what is named here, and, in the uncontended put and get
    # paths, `_permits`, `_waiters` and `_reclaim()` as Semaphore.__aenter__
    # and __aexit__ do (inline: a frame less per item).
    __slots__ = ("_refusing", "is_shut_down")

    if TYPE_CHECKING:
        # Semaphore.__new__ ignores the arguments of a subclass.
        def __new__(cls, value: int) -> Self: ...

    def __init__(self, value: int) -> None:
        Semaphore.__init__(self, value)
        # Invariants: both False until set (under the queue's storage lock),
        # then True for good. `is_shut_down`: the queue's shutdown() ran
        # (`shut_down()`). `_refusing`: waiting is refused (`refuse()`); for
        # free slots, from the shutdown on; for ready items, once the queue
        # is shut down *and* empty (a peek may hold the turn of the last
        # items for a moment: the getters waiting behind it must still get
        # them).
        self.is_shut_down = False
        self._refusing = False

    # A queue takes and gives units through these aliases (not wrappers: a
    # put or a get pays no extra call).
    green_take = Semaphore._green_acquire  # (None, blocking, timeout)
    async_take = Semaphore._async_acquire  # (None, blocking, timeout)
    take_nowait = Semaphore._try_take
    give = Semaphore._release  # (count)

    def give_claimed(self) -> _Ticket | None:
        # `give(1)` for a caller under its queue's storage lock, with the
        # wake-up left to it: the oldest waiter's ticket is claimed here (in
        # queue order, as `_hand_off` does) and returned, to be woken with
        # `wake_claimed()` once the lock is released. A wake-up may be a
        # system call, and the woken side's first step is to take that lock.
        # None: no waiter, the unit is free (or went to a waiter at once).
        waiters = self._waiters
        while waiters:
            try:
                ticket = waiters[0] if _PERFECT_FAIRNESS else waiters.popleft()
            except IndexError:
                break
            claimed = ticket.claim()
            if _PERFECT_FAIRNESS:
                try:  # decided either way: out of the deque (see `_hand_off`)
                    if waiters[0] is ticket:
                        waiters.remove(ticket)
                except (IndexError, ValueError):
                    pass
            if claimed:
                return ticket
        self._release(1)
        return None

    def wake_claimed(self, ticket: _Ticket) -> None:
        # Outside the lock. A waiter whose loop, run or hub is gone passes the
        # unit on, as a waiter cancelled after it was handed one does.
        if not ticket.wake():
            self._release(1)

    def shut_down(self) -> None:
        self.is_shut_down = True

    def refuse(self) -> None:
        # From now on; then `wake_shut_down()` the waiters of now.
        self._refusing = True

    def wake_shut_down(self) -> None:
        # Hand every waiter a "shut down" answer instead of a unit.
        waiters = self._waiters
        if waiters is None:
            return
        while True:
            try:
                ticket = waiters.popleft()
            except IndexError:
                return
            ticket.payload = _SHUT_DOWN
            ticket.set()


class _Gets(_GenericBase[_T]):
    # The getting half shared by every queue: take a ready unit, then the item.
    #
    # Every queue keeps a short critical section (`_mutex`, made on first use,
    # never held while anyone waits). A put stores its item *and* releases its
    # ready unit inside it, and shutdown() sets the flag inside it: a put is
    # wholly before a shutdown (its item reaches a getter before any getter
    # is told the queue shut down) or wholly after it (and raises).
    __slots__ = ()

    _mutex: LockType | None
    _ready: _QueueSemaphore

    @property
    def _shutdown(self) -> bool:
        return self._ready.is_shut_down

    def _storage_lock(self) -> LockType:
        mutex = self._mutex
        if mutex is None:
            mutex = _made_once(self, "_mutex", _allocate_lock)
        return mutex

    if TYPE_CHECKING:

        def __len__(self) -> int: ...
        @property
        def putting(self) -> int: ...
        @property
        def getting(self) -> int: ...

    def _take(self) -> _T:
        # Called holding a ready unit.
        raise NotImplementedError

    # `async for item in q:` gets items until the queue is shut down (and,
    # after a graceful shutdown, emptied), as anyio's and trio's receive
    # streams end when closed.

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> _T:
        try:
            return await self.async_get()
        except QueueShutDown:
            raise StopAsyncIteration from None

    def statistics(self) -> QueueStatistics:
        """A snapshot, named after anyio's MemoryObjectStreamStatistics:
        items, bound (``inf`` if unbounded), tasks waiting to put and to get."""
        maxsize: int = getattr(self, "_maxsize", 0)
        return QueueStatistics(
            len(self), maxsize or float("inf"), self.putting, self.getting
        )

    def _peek_held(self) -> _T:
        # Called holding a ready unit: read the item the next get would
        # return and hand the unit on (to the oldest waiting getter or peeker,
        # or free). A peek that waited is a getter that gives its unit back.
        raise NotImplementedError

    def _peek_now(self) -> Any:
        # The item the next get would return, or _NO_ITEM if empty. Read
        # under the storage lock without taking a unit, so that no get is
        # held back: a get already under way may take it right after (the
        # peek came first).
        raise NotImplementedError

    def _peek_first(
        self, blocking: bool, timeout: float | None
    ) -> tuple[Any, bool, float | None]:
        # A peek's non-waiting part: the arguments checked, then the item if
        # there is one (_NO_ITEM: wait in line with the getters).
        blocking, timeout = _wait_args(blocking, timeout)
        return self._peek_now(), blocking, timeout

    def _refuse_get(self) -> NoReturn:
        if self._shutdown:
            raise QueueShutDown
        raise QueueEmpty

    def green_get(self, *, blocking: bool = True, timeout: float | None = None) -> _T:
        """Remove and return an item; `QueueEmpty` if none in time.

        `QueueShutDown` once the queue is shut down and empty.
        """
        timeout = None if timeout is None else _check_timeout(timeout)
        blocking = blocking is True or bool(blocking)  # before a unit is taken
        if self._ready.take_nowait():  # `green_take`'s uncontended path, inline
            if blocking and (_GREEN_CHECKPOINTS_ANY or _overrides_active):
                self._ready._green_checkpoint(None)
        elif not self._ready.green_take(None, blocking, timeout):
            self._refuse_get()
        return self._take()

    async def async_get(
        self, *, blocking: bool = True, timeout: float | None = None
    ) -> _T:
        """Remove and return an item; `QueueEmpty` if none in time.

        `QueueShutDown` once the queue is shut down and empty.
        """
        if timeout is not None:
            timeout = _check_timeout(timeout)
        # Before a unit is taken: bool() may raise.
        blocking = blocking is True or bool(blocking)
        ready = self._ready
        # `async_take`'s uncontended path inline, `take_nowait()` too (as
        # Semaphore.__aenter__): one pop of a batch of free units.
        permits = ready._permits
        batch = 0
        if permits:  # none free: a look costs less than a raised IndexError
            try:
                batch = permits.pop()
            except IndexError:  # taken since we looked
                pass
        if batch:
            if batch > 1:
                ready.give(batch - 1)
            look = _checkpoint_look  # see there
            if (
                blocking
                and (look.name if look is not None else "trio" in _modules)
                and _async_checkpoint_due()
            ):
                await ready._async_checkpoint(None)
        elif not await ready.async_take(None, blocking, timeout):
            self._refuse_get()
        return self._take()

    def green_peek(self, *, blocking: bool = True, timeout: float | None = None) -> _T:
        """The item the next get would return, left in the queue.

        Waits in line with the getters while the queue is empty; `QueueEmpty`
        if no item in time, `QueueShutDown` once shut down and empty. A peek
        holds back no item from a getter: it passes its turn on at once.
        """
        item, blocking, timeout = self._peek_first(blocking, timeout)
        if item is _NO_ITEM:
            if not self._ready.green_take(None, blocking, timeout):
                self._refuse_get()
            return self._peek_held()
        if blocking and (_GREEN_CHECKPOINTS_ANY or _overrides_active):
            green_checkpoint()
        return item  # type: ignore[no-any-return]

    async def async_peek(
        self, *, blocking: bool = True, timeout: float | None = None
    ) -> _T:
        """The item the next get would return, left in the queue.

        Waits in line with the getters while the queue is empty; `QueueEmpty`
        if no item in time, `QueueShutDown` once shut down and empty.
        """
        item, blocking, timeout = self._peek_first(blocking, timeout)
        if item is _NO_ITEM:
            if not await self._ready.async_take(None, blocking, timeout):
                self._refuse_get()
            return self._peek_held()
        if blocking and (_ASYNC_CHECKPOINTS_ANY or _overrides_active):
            await async_checkpoint()
        return item  # type: ignore[no-any-return]

    def peek_nowait(self) -> _T:
        """The next item at once (`green_peek(blocking=False)`)."""
        return self.green_peek(blocking=False)

    # -- the stdlib's names: they never wait, so they belong to no face

    def qsize(self) -> int:
        """The number of items now (as `len()`)."""
        return len(self)

    def empty(self) -> bool:
        """True if the queue holds no item now."""
        return not len(self)

    def get_nowait(self) -> _T:
        """Remove and return an item at once (`green_get(blocking=False)`).

        `QueueEmpty` if there is none, `QueueShutDown` once the queue is shut
        down and empty.
        """
        return self.green_get(blocking=False)

    @property
    def is_shutdown(self) -> bool:
        """True once `shutdown()` has been called."""
        return self._shutdown


class SimpleQueue(_Gets[_T]):
    """An unbounded FIFO queue: `put` never blocks, gets wait for items.

    A deque of items plus a semaphore that counts them; a getter holding a
    unit of the semaphore is guaranteed an item. A copy (`copy`, `deepcopy`,
    pickle) is a new queue of the same items.
    """

    __slots__ = ("__weakref__", "_gate", "_items", "_mutex", "_ready")

    def __init__(self, items: Iterable[_T] = (), /) -> None:
        self._items: deque[_T] = deque(items)
        # Made on first use (see _Gets._storage_lock).
        self._mutex: LockType | None = None
        # Invariant: units of `_ready` <= len(`_items`); every put appends
        # first, then releases.
        self._ready = _QueueSemaphore(len(self._items))
        # The puts in flight, one None each, behind `_FENCE` at the head
        # while a clear() or shutdown() runs (for good after a shutdown): see
        # `put`. One list, so that a put and a fence are ordered by its own
        # atomic operations, free-threaded builds included.
        self._gate: list[object] = []

    def __repr__(self) -> str:
        return (
            f"<{_qualname(self)} object at {id(self):#x}"
            f" [length={len(self._items)}, getting={self.getting}]>"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # copy, deepcopy and pickle: a new queue of the items, nothing else.
        return (type(self), (_snapshot(self._items),))

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    @property
    def putting(self) -> int:
        return 0

    @property
    def getting(self) -> int:
        return self._ready.waiting

    @property
    def waiting(self) -> int:
        return self._ready.waiting

    def put(self, item: _T, /) -> None:
        """Add *item*; never blocks. `QueueShutDown` after `shutdown()`."""
        # Without a lock: a put announces itself in the gate, then looks for
        # the fence. clear() and shutdown() raise the fence (under the storage
        # lock), then wait until no put is in flight: a put is wholly before
        # them, or it finds the fence and goes through the lock, after them.
        gate = self._gate
        gate.append(None)
        try:
            fenced = gate[0] is _FENCE
            if not fenced:
                self._items.append(item)
                # Not `give(1)`'s no-waiter path inline, as Queue._store
                # does: on PyPy that made thread -> thread streams ~20%
                # slower (bench.py), for ~4% on CPython's same-loop stream.
                self._ready.give(1)
        finally:
            gate.pop()  # a None: the fence, if any, is at the head
        if fenced:
            self._fenced_put(item)

    def _fenced_put(self, item: _T) -> None:
        mutex = self._storage_lock()
        mutex.acquire()  # not `with`: twice as fast on CPython 3.11
        try:
            if self._ready.is_shut_down:
                raise QueueShutDown
            self._items.append(item)
            self._ready.give(1)
        finally:
            mutex.release()

    def _fence_puts(self) -> bool:
        # Under the storage lock: later puts go through it, and those in
        # flight (a few steps from leaving) end first. False if the fence was
        # up already (shut down: it stays).
        gate = self._gate
        try:  # one look (`gate and gate[0]` races with a put's pop)
            if gate[0] is _FENCE:
                return False
        except IndexError:  # no put in flight
            pass
        gate.insert(0, _FENCE)
        while len(gate) > 1:  # puts in flight: in other threads
            _thread_sleep(0)
        return True

    def _lower_fence(self) -> None:
        # Under the storage lock, after `_fence_puts()` returned True.
        del self._gate[0]

    def put_nowait(self, item: _T, /) -> None:
        """Same as `put` (the stdlib's name)."""
        self.put(item)

    def clear(self) -> None:
        """Remove every item at once (atomically for other threads); an item
        already handed to a get (or peek) that is returning is left to it."""
        ready = self._ready
        with self._storage_lock():
            fenced = self._fence_puts()
            # Only items whose ready unit is free: a unit held means a get
            # or peek in progress counts on its item, which is left (the
            # items gets return last go first). Units without items: an
            # immediate shutdown is retiring them.
            items = self._items
            drop = items.pop if self._NEXT == 0 else items.popleft
            removed = 0
            while len(items) > removed and ready.take_nowait():
                removed += 1
            for _ in range(removed):
                drop()
            if fenced:
                self._lower_fence()
        if ready.is_shut_down and not items:
            self._drained()

    def green_put(
        self, item: _T, /, *, blocking: bool = True, timeout: float | None = None
    ) -> None:
        """Same as `put` (the queue is unbounded)."""
        _wait_args(blocking, timeout)
        self.put(item)

    async def async_put(
        self, item: _T, /, *, blocking: bool = True, timeout: float | None = None
    ) -> None:
        """Same as `put`, with a checkpoint if they are on."""
        if timeout is not None:
            _check_timeout(timeout)
        # The checkpoint comes first: a cancelled put has not put anything.
        look = _checkpoint_look  # see there
        due = look.name if look is not None else "trio" in _modules
        if (blocking is True or bool(blocking)) and due and _async_checkpoint_due():
            await async_checkpoint()
        self.put(item)

    def _take(self) -> _T:
        items = self._items
        try:
            item = items.popleft() if self._NEXT == 0 else items.pop()
        except IndexError:  # emptied by shutdown(immediate=True)
            raise QueueShutDown from None
        if self._ready.is_shut_down and not items:
            self._drained()
        return item

    def _drained(self) -> None:
        # Shut down and empty: the waiting getters are told, and later ones
        # do not wait. (Items only leave a shut-down queue, and every call
        # that empties it reads the flag after the items: one of them, at
        # least, sees both.)
        ready = self._ready
        ready.refuse()
        ready.wake_shut_down()

    def _peek_now(self) -> Any:
        with self._storage_lock():
            items = self._items
            return items[self._NEXT] if items else _NO_ITEM

    def _peek_held(self) -> _T:
        with self._storage_lock():
            try:
                item = self._items[self._NEXT]
            except IndexError:  # emptied by shutdown(immediate=True)
                raise QueueShutDown from None
            # Inside the section: see Queue._peek_held.
            self._ready.give(1)
        return item

    # Where the next get takes from.
    _NEXT: ClassVar[int] = 0

    def shutdown(self, immediate: bool = False) -> None:
        """Shut the queue down (as `queue.Queue.shutdown` in Python 3.13).

        Later puts raise `QueueShutDown`; gets return what is left, then
        raise it. With *immediate*, what is left is dropped at once. Tasks
        blocked in a get are woken with `QueueShutDown` once nothing is left.
        A put that runs at the same time in another thread is either before
        the shutdown (its item is got, or dropped by *immediate*) or after it
        (it raises).
        """
        immediate = bool(immediate)
        ready = self._ready
        with self._storage_lock():
            # The fence first: a getter that sees the flag must find every
            # put before the shutdown stored (else it may find the queue
            # drained while a put in flight still adds its item).
            self._fence_puts()  # for good
            ready.shut_down()
            if immediate:
                self._items.clear()
        if immediate:
            # Retire the ready units of the dropped items (a getter holding
            # one finds the deque empty and raises); no put adds any now.
            while ready.take_nowait():
                pass
        if not self._items:
            self._drained()


class SimpleLifoQueue(SimpleQueue[_T]):
    """An unbounded LIFO queue (a stack)."""

    __slots__ = ()

    _NEXT: ClassVar[int] = -1


class Queue(_Gets[_T]):
    """A FIFO queue, optionally bounded, shared by every world.

    Two counting semaphores do the waiting: free slots for putters (when
    bounded) and ready items for getters. A caller that holds a unit runs the
    storage hook (`_put` or `_get`) inside a short critical section that is
    never held while anyone waits. A putter or getter that is cancelled while
    a unit is handed to it passes the unit on; the item never left the
    storage, so nothing is lost or duplicated.

    Subclasses may override `_init(items, maxsize)`, `_qsize()`, `_put(item)`
    and `_get()` (before its queues are made: while they are Queue's own,
    they run inline); they run one at a time and must not block. A hook that
    raises must leave the storage as it was: the call then raises the same
    exception and changes nothing else (no slot or item is lost).

    A copy (`copy`, `deepcopy`, pickle) is a new queue of the same items and
    maxsize: no waiters, no shutdown, no unfinished tasks beyond its items.
    """

    __slots__ = (
        "__weakref__",
        "_all_done",
        "_debt",
        "_free",
        "_maxsize",
        "_mutex",
        "_queue",
        "_ready",
        "_unfinished",
        "_views",
    )

    def __init__(
        self,
        items: Iterable[_T] | float | None = (),
        /,
        maxsize: float | None = None,
    ) -> None:
        if items is None or isinstance(items, (int, float)):
            # Queue(maxsize) as in queue.Queue: Queue(10), Queue(None), Queue(0)
            if maxsize is not None:
                msg = "maxsize given twice"
                raise TypeError(msg)
            maxsize = items
            items = ()
        maxsize = _check_maxsize(maxsize)
        self._maxsize = maxsize
        # Made on first use (see _Gets._storage_lock): an empty queue stays
        # small.
        self._mutex: LockType | None = None
        self._check_hooks()
        self._init(items, self._maxsize)
        size = self._qsize()
        if maxsize and size > maxsize:
            msg = "more initial items than maxsize"
            raise ValueError(msg)
        self._ready = _QueueSemaphore(size)
        # Invariants, all changed under `_mutex` only: `_free` is None while
        # unbounded, else the semaphore of free slots, and `_debt` counts the
        # slots that the next give-backs retire instead of freeing (owed after
        # `maxsize` was lowered below what is in use); `_maxsize` is the bound
        # in force (0: none). Every item in the storage holds a slot of the
        # `_free` in force (or is owed in `_debt`).
        self._free = _QueueSemaphore(maxsize - size) if maxsize else None
        self._debt = 0
        # Weak references to the janus views (sync_q, async_q), made on use.
        self._views: tuple[Callable[[], Any], Callable[[], Any]] = (_no_view, _no_view)
        # Invariants, both changed under `_mutex` only: `_unfinished` counts
        # the items put (initial ones included) and not yet marked done;
        # `_all_done` is None or the Event joiners wait on while it is > 0
        # (made by the first joiner, set and dropped when it reaches 0).
        self._unfinished = size
        self._all_done: Event | None = None

    def __repr__(self) -> str:
        state = (
            f"length={self._qsize()}, putting={self.putting}, getting={self.getting}"
        )
        if self._shutdown:
            state += ", shut down"
        return (
            f"<{_qualname(self)} object at {id(self):#x}"
            f" [maxsize={self._maxsize}, {state}]>"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # copy, deepcopy and pickle: a new queue of the items and maxsize.
        with self._storage_lock():
            items = list(self._iter_items())
        return (type(self), (items, self._maxsize))

    def _iter_items(self) -> Iterable[_T]:
        return self._queue

    # -- storage hooks

    def _init(self, items: Iterable[_T], maxsize: int) -> None:
        self._queue: deque[_T] = deque(items)

    def _qsize(self) -> int:
        return len(self._queue)

    def _put(self, item: _T) -> None:
        self._queue.append(item)

    def _get(self) -> _T:
        return self._queue.popleft()

    # True in a class whose `_put` (`_get`) is Queue's: `_store` (`_take`)
    # then does its deque operation inline. Only ever turned False, by
    # `_check_hooks()` when a queue of the class is made.
    _plain_put: ClassVar[bool] = True
    _plain_get: ClassVar[bool] = True

    @classmethod
    def _check_hooks(cls) -> None:
        # Looked at each time a queue is made (not once per class: a subclass
        # whose own __init_subclass__ skips super(), or a hook assigned to
        # the class later, before its queues are made, is still seen).
        queue: Any = Queue  # its hooks, of no particular item type
        if cls._plain_put and cls._put is not queue._put:
            cls._plain_put = False
        if cls._plain_get and cls._get is not queue._get:
            cls._plain_get = False

    def _peek(self) -> _T:
        # The item `_get()` would return; called with at least one item.
        return self._queue[0]

    def _drop(self, count: int) -> None:
        # Remove *count* items, those the gets would return last (the others
        # are promised to gets in progress). Through `_get` and `_put`, so
        # that a subclass with its own storage needs nothing more.
        kept = [self._get() for _ in range(self._qsize() - count)]
        for _ in range(count):
            self._get()
        for item in kept:
            self._put(item)

    # -- state

    @property
    def maxsize(self) -> int:
        """The bound, or 0 when unbounded. Settable, as in `queue.Queue`:
        raising it lets waiting putters in at once, in arrival order; lowering
        it keeps every item, and later puts wait until the queue is below the
        new bound; 0, a negative number or None make the queue unbounded."""
        return self._maxsize

    @maxsize.setter
    def maxsize(self, maxsize: float | None) -> None:
        bound = _check_maxsize(maxsize)
        flooded = None
        with self._storage_lock():
            free = self._free
            if bound == 0:
                # Unbounded: the old semaphore lets everyone in, for good
                # (below, outside the lock): its waiters and the puts that
                # read it before this change.
                flooded, self._free, self._debt = free, None, 0
            elif free is None:
                # Bounded anew: the semaphore counts the items of now; puts
                # let in without a slot before this change owe one (`_store`).
                size = self._qsize()
                free = _QueueSemaphore(max(bound - size, 0))
                if self._ready.is_shut_down:
                    free.shut_down()
                    free.refuse()
                self._free, self._debt = free, max(size - bound, 0)
            elif bound > self._maxsize:
                self._free_slots(bound - self._maxsize)
            else:
                # Lowered: take free slots, then owe the rest.
                cut = self._maxsize - bound
                while cut and free.take_nowait():
                    cut -= 1
                self._debt += cut
            self._maxsize = bound
        if flooded is not None:
            flooded.give(sys.maxsize)

    @property
    def putting(self) -> int:
        """How many tasks wait to put."""
        free = self._free
        return 0 if free is None else free.waiting

    @property
    def getting(self) -> int:
        """How many tasks wait to get."""
        return self._ready.waiting

    @property
    def waiting(self) -> int:
        return self.putting + self.getting

    def __len__(self) -> int:
        return self._qsize()

    def __bool__(self) -> bool:
        return self._qsize() > 0

    @property
    def unfinished_tasks(self) -> int:
        """Items put and not yet marked done with `task_done()`."""
        return self._unfinished

    # -- the non-blocking halves

    def _open_slots(
        self, blocking: bool, timeout: float | None
    ) -> tuple[_QueueSemaphore | None, bool, bool, float | None]:
        # A put's non-waiting part: its checks, before anything changes (an
        # argument whose __bool__ raises must not leave a slot taken), then a
        # free slot if there is one. The semaphore of free slots (None:
        # unbounded), True if the put may store now (holding a slot of it, or
        # unbounded; else it waits on it), and the checked arguments.
        # `_wait_args()`, inline.
        if timeout is not None:
            timeout = _check_timeout(timeout)
        blocking = blocking is True or bool(blocking)
        if self._ready.is_shut_down:
            raise QueueShutDown
        free = self._free
        return free, free is None or free.take_nowait(), blocking, timeout

    def _green_put_checkpoint(self, free: _QueueSemaphore | None) -> None:
        # Before storing: a put cancelled here puts nothing (its slot goes back).
        if free is None:
            green_checkpoint()
        else:
            free._green_checkpoint(None)

    async def _async_put_checkpoint(self, free: _QueueSemaphore | None) -> None:
        if free is None:
            await async_checkpoint()
        else:
            await free._async_checkpoint(None)

    def _store(self, item: _T, free: _QueueSemaphore | None) -> None:
        # Called holding a slot of *free* (or nothing, *free* being None).
        mutex = self._mutex or self._storage_lock()
        mutex.acquire()  # not `with`: see SimpleQueue._fenced_put
        try:
            same_bound = free is self._free
            try:
                if self._ready.is_shut_down:
                    raise QueueShutDown
                if self._plain_put:  # `_put()` inline: a frame less per put
                    self._queue.append(item)
                else:
                    self._put(item)
            except BaseException:
                # A put refused, or whose hook raised, did not use its slot:
                # the slot goes back (to the oldest putter, or free).
                if same_bound:
                    self._free_slots(1)
                raise
            if not same_bound:
                self._rebound_put()
            self._unfinished += 1
            # Inside the critical section: see _Gets. The getter it goes to
            # is woken after it.
            ready = self._ready
            woken = None
            if ready._waiters:
                woken = ready.give_claimed()
            else:  # nobody to wake: `give(1)`'s no-waiter path (as Semaphore.__aexit__)
                ready._permits.append(1)
                if ready._waiters:  # a getter published meanwhile
                    ready._reclaim()
        finally:
            mutex.release()
        if woken is not None:
            ready.wake_claimed(woken)

    def _rebound_put(self) -> None:
        # Under `_mutex`: the put was let in under a bound since replaced (see
        # the maxsize setter); the new bound counted the items of that moment
        # only, so this one takes a free slot, or owes one.
        free = self._free
        if free is not None and not free.take_nowait():
            self._debt += 1

    def _free_slots(self, count: int) -> None:
        # Under `_mutex`: the one admission step, for a get that frees a
        # slot, a clear() and a raised maxsize alike: pay the debt first,
        # then hand the slots to the oldest waiting putters, or free them.
        free = self._free
        if free is not None:
            paid = min(self._debt, count)
            self._debt -= paid
            if count > paid:
                free.give(count - paid)

    def _take(self) -> _T:
        # Called holding a ready unit; an immediate shutdown may have emptied
        # the storage (and retired the unit) since.
        ready = self._ready
        mutex = self._mutex or self._storage_lock()
        mutex.acquire()  # not `with`: see SimpleQueue._fenced_put
        try:
            try:
                # Only an immediate shutdown leaves a held unit without an
                # item (it dropped them all): no size asked before that.
                item: _T
                if ready.is_shut_down and not self._qsize():
                    item = _SHUT_DOWN
                elif self._plain_get:  # `_get()` inline: a frame less per get
                    item = self._queue.popleft()
                else:
                    item = self._get()
            except BaseException:
                # A hook raised, taking nothing: the item stays, and so does
                # its ready unit (for the oldest getter, or free).
                ready.give(1)
                raise
            free = self._free
            woken = None
            if item is _SHUT_DOWN or free is None:  # unbounded: no slot to free
                pass
            elif self._debt:
                self._free_slots(1)
            elif free._waiters:  # `_free_slots(1)`: the putter woken after the lock
                woken = free.give_claimed()
            else:  # nobody to wake: `give(1)`'s no-waiter path (as Semaphore.__aexit__)
                free._permits.append(1)
                if free._waiters:  # a putter published meanwhile
                    free._reclaim()
            drained = ready.is_shut_down and self._drained()
        finally:
            mutex.release()
        if woken is not None and free is not None:
            free.wake_claimed(woken)
        if drained:
            ready.wake_shut_down()
        if item is _SHUT_DOWN:
            raise QueueShutDown
        return item

    def _drained(self) -> bool:
        # Under `_mutex`, once shut down: True the first time the queue is
        # found empty, which refuses getters from then on (the caller wakes
        # those waiting, outside the lock). Until then, waiting getters stay:
        # a peek may hold the turn of the items left, and hands it on.
        ready = self._ready
        if ready._refusing or self._qsize():
            return False
        ready.refuse()
        return True

    def _peek_now(self) -> Any:
        with self._storage_lock():
            return self._peek() if self._qsize() else _NO_ITEM

    def _peek_held(self) -> _T:
        with self._storage_lock():
            if not self._qsize():
                # An immediate shutdown dropped the items (and retired the
                # other units): this one is retired here.
                raise QueueShutDown
            try:
                return self._peek()
            finally:
                # Inside the section, so that a concurrent immediate shutdown
                # retires the unit together with the items.
                self._ready.give(1)

    def _refuse_put(self) -> NoReturn:
        if self._shutdown:
            raise QueueShutDown
        raise QueueFull

    # -- public face

    def green_put(
        self, item: _T, /, *, blocking: bool = True, timeout: float | None = None
    ) -> None:
        """Put *item*, waiting for a free slot; `QueueFull` if none in time."""
        free, held, blocking, timeout = self._open_slots(blocking, timeout)
        if held:
            if blocking and (_GREEN_CHECKPOINTS_ANY or _overrides_active):
                self._green_put_checkpoint(free)
        elif not free.green_take(None, blocking, timeout):  # type: ignore[union-attr]  # pyright: ignore[reportOptionalMemberAccess]  # not held: bounded
            self._refuse_put()
        self._store(item, free)

    async def async_put(
        self, item: _T, /, *, blocking: bool = True, timeout: float | None = None
    ) -> None:
        """Put *item*, waiting for a free slot; `QueueFull` if none in time."""
        # `_open_slots()` inline: a frame and a tuple less per put.
        if timeout is not None:
            timeout = _check_timeout(timeout)
        blocking = blocking is True or bool(blocking)
        if self._ready.is_shut_down:
            raise QueueShutDown
        free = self._free
        if free is None or free.take_nowait():
            look = _checkpoint_look  # see there
            if (
                blocking
                and (look.name if look is not None else "trio" in _modules)
                and _async_checkpoint_due()
            ):
                await self._async_put_checkpoint(free)
        elif not await free.async_take(None, blocking, timeout):
            self._refuse_put()
        self._store(item, free)

    # -- the stdlib's and janus's names (no face: they never wait)

    def put_nowait(self, item: _T, /) -> None:
        """Put *item* at once (`green_put(item, blocking=False)`).

        `QueueFull` if there is no free slot, `QueueShutDown` after `shutdown()`.
        """
        self.green_put(item, blocking=False)

    def full(self) -> bool:
        """True if the queue is bounded and holds `maxsize` items or more."""
        maxsize = self._maxsize
        return 0 < maxsize <= self._qsize()

    def _made_view(self, index: int) -> Any:
        # The queue keeps its views by weak reference and a view keeps its
        # queue: no reference cycle, and racing callers agree on one view.
        with _creation_lock:
            view = self._views[index]()
            if view is None:
                view = (SyncQueueView, AsyncQueueView)[index](self)
                views = list(self._views)
                views[index] = _weakref_ref(view)
                self._views = (views[0], views[1])
        return view

    @property
    def sync_q(self) -> SyncQueueView[_T]:
        """This queue as janus's ``sync_q``: blocking `put`/`get` and the rest."""
        view = self._views[0]()
        if view is None:
            view = self._made_view(0)
        return view  # type: ignore[no-any-return]

    @property
    def async_q(self) -> AsyncQueueView[_T]:
        """This queue as janus's ``async_q``: awaitable `put`/`get`/`join`."""
        view = self._views[1]()
        if view is None:
            view = self._made_view(1)
        return view  # type: ignore[no-any-return]

    @property
    def closed(self) -> bool:
        """True once `shutdown()` or `close()` has been called (janus's name)."""
        return self._shutdown

    def close(self) -> None:
        """`shutdown(immediate=True)`, as janus 2.0's ``close()``."""
        self.shutdown(immediate=True)

    async def wait_closed(self) -> None:
        """Return at once after `close()` (nothing of ours lingers); before it,
        `RuntimeError`, as janus."""
        if not self._shutdown:
            msg = "Waiting for non-closed queue"
            raise RuntimeError(msg)

    async def aclose(self) -> None:
        """`close()`, then `wait_closed()` (janus's name)."""
        self.close()
        await self.wait_closed()

    def clear(self) -> None:
        """Remove every item at once (atomically for other threads).

        `unfinished_tasks` drops by the number removed, so `green_join` and
        `async_join` do not wait for items nobody will get, and waiting
        putters are let in. An item already handed to a get (or peek) that
        is returning is left to it.
        """
        ready = self._ready
        removed = 0
        with self._storage_lock():
            size = self._qsize()
            # Only items whose ready unit is free: a unit held means a get or
            # peek in progress counts on its item, which is left to it.
            # (Units without items: an immediate shutdown is retiring them.)
            while size > removed and ready.take_nowait():
                removed += 1
            try:
                self._drop(removed)
            finally:
                # Items that a hook which raised left in place keep their unit.
                left = removed - (size - self._qsize())
                if left > 0:
                    ready.give(left)
                    removed -= left
                self._free_slots(removed)
                all_done = self._mark_done(removed)
                drained = ready.is_shut_down and self._drained()
        if drained:
            ready.wake_shut_down()
        if all_done is not None:
            all_done.set()

    # -- task tracking

    def _mark_done(self, count: int) -> Event | None:
        # Under `_mutex`: lower the count by *count* (not below 0); the Event
        # to set once the lock is released, if the count reached 0.
        unfinished = self._unfinished
        if not unfinished:
            return None
        unfinished = max(unfinished - count, 0)
        self._unfinished = unfinished
        if unfinished:
            return None
        all_done, self._all_done = self._all_done, None
        return all_done

    def _join_event(self) -> Event:
        # What a join waits on: set already when nothing is unfinished.
        with self._storage_lock():
            if not self._unfinished:
                return _NOTHING_UNFINISHED
            all_done = self._all_done
            if all_done is None:
                all_done = self._all_done = Event()
        return all_done

    def task_done(self) -> None:
        """Mark one item got earlier as processed (for `green_join`/`async_join`)."""
        with self._storage_lock():
            if not self._unfinished:
                msg = "task_done() called too many times"
                raise ValueError(msg)
            all_done = self._mark_done(1)
        if all_done is not None:
            all_done.set()

    def green_join(self, timeout: float | None = None) -> bool:
        """Block until every item put has been marked done; False on timeout."""
        return self._join_event().wait(timeout)

    async def async_join(self, timeout: float | None = None) -> bool:
        """Wait until every item put has been marked done; False on timeout."""
        return await self._join_event().with_(timeout)

    # -- shutdown

    def shutdown(self, immediate: bool = False) -> None:
        """Shut the queue down (as `queue.Queue.shutdown` in Python 3.13).

        Later puts raise `QueueShutDown`; gets return what is left, then raise
        it. With *immediate*, what is left is dropped at once (and counted as
        done). Every task blocked in a put is woken with `QueueShutDown`, and
        every task blocked in a get once nothing is left. A put that runs at the same time in another thread is either before
        the shutdown (its item is got, or dropped by *immediate*) or after it
        (it raises).
        """
        immediate = bool(immediate)
        ready = self._ready
        with self._storage_lock():
            # Read under the lock: a maxsize change may replace it.
            free = self._free
            ready.shut_down()
            if free is not None:
                free.shut_down()
                free.refuse()
            self._drained()
        try:
            if immediate:
                self._drop_all()
        finally:
            if ready._refusing:
                ready.wake_shut_down()
            if free is not None:
                free.wake_shut_down()

    def _drop_all(self) -> None:
        with self._storage_lock():
            dropped = 0
            while self._qsize():
                self._get()
                dropped += 1
            all_done = self._mark_done(dropped)
            self._drained()  # the caller wakes the getters
        # Retire the ready units of the dropped items (a getter holding one
        # finds the storage empty and raises); no put adds any now.
        while self._ready.take_nowait():
            pass
        if all_done is not None:
            all_done.set()


# What a join waits on when nothing is unfinished.
_NOTHING_UNFINISHED: Final = Event()
_NOTHING_UNFINISHED.set()


# What `_peek_now` returns from an empty queue.
_NO_ITEM: Final[Any] = object()

# The head of a SimpleQueue's gate while puts go through the storage lock.
_FENCE: Final = object()


def _no_view() -> None:
    return None


class _QueueView(_GenericBase[_T]):
    # What both janus views share: the members that never wait. Every member
    # is one call into the queue; a view has no state but its queue.
    __slots__ = ("__weakref__", "_queue")

    def __init__(self, queue: Queue[_T]) -> None:
        self._queue = queue

    def __repr__(self) -> str:
        return f"<{_qualname(self)} of {self._queue!r}>"

    @property
    def maxsize(self) -> int:
        return self._queue.maxsize

    @property
    def closed(self) -> bool:
        return self._queue.closed

    @property
    def unfinished_tasks(self) -> int:
        return self._queue.unfinished_tasks

    def qsize(self) -> int:
        return self._queue.qsize()

    def empty(self) -> bool:
        return self._queue.empty()

    def full(self) -> bool:
        return self._queue.full()

    def put_nowait(self, item: _T) -> None:
        self._queue.put_nowait(item)

    def get_nowait(self) -> _T:
        return self._queue.get_nowait()

    def task_done(self) -> None:
        self._queue.task_done()

    def shutdown(self, immediate: bool = False) -> None:
        self._queue.shutdown(immediate)


class SyncQueueView(_QueueView[_T]):
    """``Queue.sync_q``: the queue with janus's (and `queue.Queue`'s) blocking
    calls, for threads and greenlets."""

    __slots__ = ()

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        """`green_put`; `QueueFull` if no slot in time, `QueueShutDown`."""
        self._queue.green_put(item, blocking=block, timeout=timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        """`green_get`; `QueueEmpty` if no item in time, `QueueShutDown`."""
        return self._queue.green_get(blocking=block, timeout=timeout)

    def join(self) -> None:
        """`green_join()`: block until every item put has been marked done."""
        self._queue.green_join()


class AsyncQueueView(_QueueView[_T]):
    """``Queue.async_q``: the queue with janus's (and `asyncio.Queue`'s)
    awaitable calls, for asyncio, trio and anyio."""

    __slots__ = ()

    # Plain functions that return the queue's coroutine: no second frame.
    def put(self, item: _T) -> Coroutine[Any, Any, None]:
        """``await q.async_q.put(item)``: `async_put`."""
        return self._queue.async_put(item)

    def get(self) -> Coroutine[Any, Any, _T]:
        """``await q.async_q.get()``: `async_get`."""
        return self._queue.async_get()

    def join(self) -> Coroutine[Any, Any, bool]:
        """``await q.async_q.join()``: `async_join()`."""
        return self._queue.async_join()


class LifoQueue(Queue[_T]):
    """A LIFO queue (last in, first out)."""

    __slots__ = ()

    def _get(self) -> _T:
        return self._queue.pop()

    def _peek(self) -> _T:
        return self._queue[-1]

    def _drop(self, count: int) -> None:
        for _ in range(count):
            self._queue.popleft()


def _heap_push(heap: list[Any], item: Any) -> None:
    # heapq.heappush, with every comparison made before the heap changes: an
    # item that cannot be compared with the others leaves no trace.
    pos = len(heap)
    while pos:
        parent = (pos - 1) >> 1
        if not item < heap[parent]:
            break
        pos = parent
    hole = len(heap)
    heap.append(item)
    while hole > pos:
        parent = (hole - 1) >> 1
        heap[hole] = heap[parent]
        hole = parent
    heap[pos] = item


def _heap_pop(heap: list[Any]) -> Any:
    # heapq.heappop (the classic sift-down), with every comparison made
    # before the heap changes: a comparison that raises leaves it as it was.
    last = heap[-1]
    size = len(heap) - 1
    path: list[int] = []
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and heap[child + 1] < heap[child]:
            child += 1
        if not heap[child] < last:
            break
        path.append(child)
        pos = child
    top = heap[0]
    hole = 0
    for child in path:
        heap[hole] = heap[child]
        hole = child
    heap[hole] = last
    heap.pop()
    return top


class PriorityQueue(Queue[_OrderedT]):
    """A queue that returns the smallest item first (a binary heap).

    An item that cannot be compared with the items in the queue is refused
    with the comparison's exception, and the queue stays as it was.
    """

    __slots__ = ()

    def _init(self, items: Iterable[_OrderedT], maxsize: int) -> None:
        # The heap is a list, not the deque of the other queues.
        self._queue: list[_OrderedT] = list(items)  # type: ignore[assignment]  # pyright: ignore[reportIncompatibleVariableOverride]
        _heapify(self._queue)

    def _put(self, item: _OrderedT) -> None:
        _heap_push(self._queue, item)

    def _get(self) -> _OrderedT:
        return _heap_pop(self._queue)  # type: ignore[no-any-return]

    def _peek(self) -> _OrderedT:
        return self._queue[0]


# =============================================================================
# Readers-writer lock
# =============================================================================

_READ: Final = "read"
_WRITE: Final = "write"


class RWLock:
    """A readers-writer lock, fair in arrival order, for every world at once.

    ``rw.reader`` and ``rw.writer`` are lock-likes (``with``, ``async with``,
    ``green_acquire``/``async_acquire``/``green_release``/``async_release``).
    Any number of readers may hold it together, a writer holds it alone.
    Waiters enter strictly in arrival order, readers queued one after another
    together; a waiting writer makes later readers wait, so neither side
    starves.

    Each side is owned: releasing a side the current task does not hold
    raises `RuntimeError`. A task that reads may take the reader again (it
    enters at once, and must release as many times); asking for the writer
    while reading, or for either side while writing, raises `RuntimeError`
    instead of waiting for itself. So does a wait that could never end: green
    code waiting for an async task of the loop that runs in its own thread,
    or an async task waiting for green code of its loop's thread.
    """

    __slots__ = ("__weakref__", "_core", "reader", "writer")

    def __init__(self) -> None:
        # The sides point to the shared core, never back here: a dropped
        # RWLock is freed by reference counting alone.
        core = _RWCore()
        self._core = core
        self.reader = _RWSide(core, _READ)
        self.writer = _RWSide(core, _WRITE)

    def __repr__(self) -> str:
        return (
            f"<{_qualname(self)} object at {id(self):#x}"
            f" [{self._core.state()}, waiting={self.waiting}]>"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), ()

    @property
    def waiting(self) -> int:
        """How many tasks are waiting now, on either side."""
        return self._core.waiting


class _RWCore(_Acquirable):
    """The state of one `RWLock`, shared by its two sides.

    The waiting is `_Acquirable`'s (a side calls `green_acquire` or
    `async_acquire` with ``(kind, task)``, then `release`), but a grant reads
    and changes the holders and the queue together, so the steps that
    `_Acquirable` does with single atomic operations (`_begin`, the hand-off,
    `_withdraw`) run here under `_mutex`: a plain lock held for a few
    operations, never while anyone waits, and released before the granted
    waiters are woken.
    """

    __slots__ = ("_mutex", "_readers", "_waiters", "_writer")

    def __init__(self) -> None:
        # Invariants (all changed under `_mutex`): `_readers` maps each task
        # that reads to how many read locks it holds; `_writer` is the task
        # that writes, or None; never both. `_waiters` (made on first wait)
        # holds tickets whose payload is (kind, task), in arrival order; a ticket
        # leaves it when granted or withdrawn. Whenever the mutex is free the
        # head of `_waiters` cannot enter yet (every change ends with
        # `_grant()`), so a newcomer may enter only when nobody waits.
        self._mutex = _allocate_lock()
        self._readers: dict[object, int] = {}
        self._writer: object = None
        self._waiters: deque[_Ticket] | None = None

    def state(self) -> str:
        if self._writer is not None:
            return "writing"
        readers = sum(self._readers.copy().values())
        if readers:
            return f"reading, readers={readers}"
        return "unlocked"

    # What a side calls: `_Acquirable`'s acquire (aliased, not wrapped: no
    # extra call), `release`, and the three views of the state.
    green_acquire = _Acquirable._green_acquire  # ((kind, task), blocking, timeout)
    async_acquire = _Acquirable._async_acquire

    def held(self, kind: str) -> bool:
        if kind is _WRITE:
            return self._writer is not None
        return bool(self._readers)

    def waiting_for(self, kind: str) -> int:
        waiters = self._waiters
        if waiters is None:
            return 0
        return sum(1 for ticket in _snapshot(waiters) if ticket.payload[0] is kind)

    # -- the hooks of the shared algorithm, under `_mutex`

    def _begin(
        self,
        payload: Any,
        blocking: bool,
        timeout: float | None,
        make_ticket: Callable[[Any], _TicketT],
    ) -> bool | _TicketT:
        kind, task = payload
        with self._mutex:
            if self._enter(kind, task):
                return True
            waits = blocking and timeout != 0
            if waits or _is_green(task):
                # As for Lock, a green acquire that would deadlock if it
                # waited is refused even when it would not wait.
                reason = self._deadlock(task)
                if reason is not None:
                    raise RuntimeError(reason)
            if not waits:
                return False
            ticket = make_ticket(payload)
            waiters = self._waiters
            if waiters is None:
                waiters = self._waiters = deque()
            waiters.append(ticket)
            return ticket

    def _enter(self, kind: str, task: object) -> bool:
        # Take `kind` for `task` now if it may enter without waiting; refuse
        # what the task itself would block.
        readers = self._readers
        writer = self._writer
        if kind is _READ:
            count = readers.get(task)
            if count is not None:
                # It reads already: a waiting writer waits for it anyway.
                readers[task] = count + 1
                return True
            if writer is not None and writer == task:
                msg = "the current task is holding this lock for writing"
                raise RuntimeError(msg)
            if writer is None and not self._waiters:
                readers[task] = 1
                return True
            return False
        if writer is not None and writer == task:
            msg = "the current task is already holding this lock for writing"
            raise RuntimeError(msg)
        if task in readers:
            msg = (
                "the current task is holding this lock for reading: it would"
                " wait for itself to become the writer"
            )
            raise RuntimeError(msg)
        if writer is None and not readers and not self._waiters:
            self._writer = task
            return True
        return False

    def _deadlock(self, task: object) -> str | None:
        # `task` must wait: it enters only after every holder of now has
        # left (a queued writer stands between a reader and the readers).
        for holder in (self._writer, *self._readers):
            reason = _deadlock(holder, task)
            if reason is not None:
                return reason
        return None

    def _grant(self) -> Iterable[_Ticket]:
        # Let the head of the queue in while it fits; returns the tickets
        # claimed, for the caller to wake once the mutex is free.
        waiters = self._waiters
        if not waiters:
            return ()
        granted: list[_Ticket] = []
        readers = self._readers
        while waiters and self._writer is None:
            ticket = waiters[0]
            kind, task = ticket.payload
            if kind is _WRITE and readers:
                break
            waiters.popleft()
            # Record the holder before the claim: a waiter whose own claim
            # loses (timed out meanwhile) returns holding the lock at once.
            if kind is _WRITE:
                self._writer = task
            else:
                readers[task] = readers.get(task, 0) + 1
            if ticket.claim():
                granted.append(ticket)
                if kind is _WRITE:
                    break
            else:  # it gave up first; its `_withdraw` finds it gone
                self._forget(kind, task)
        return granted

    def _wake(self, granted: Iterable[_Ticket]) -> None:
        # Outside the mutex; see _wake_admitted.
        _wake_admitted(granted, self._mutex, self._undo_admission, self._grant)

    def _undo_admission(self, ticket: _Ticket) -> None:
        # Under the mutex: the grant of a waiter that never runs to use it.
        self._forget(*ticket.payload)

    def _forget(self, kind: str, task: object) -> None:
        if kind is _WRITE:
            self._writer = None
            return
        readers = self._readers
        count = readers[task]
        if count > 1:
            readers[task] = count - 1
        else:
            del readers[task]

    def _withdraw(self, ticket: _Ticket) -> None:
        # A waiter gave up; a writer leaving the head lets the readers
        # behind it in.
        with self._mutex:
            waiters = self._waiters
            if waiters is not None:
                _discard(waiters, ticket)
            granted = self._grant()
        self._wake(granted)

    def release(self, payload: Any) -> None:
        kind, task = payload
        with self._mutex:
            if kind is _WRITE:
                writer = self._writer
                if writer is None or writer != task:
                    if writer is None:
                        msg = "release unlocked lock"
                    else:
                        msg = "the current task is not holding this lock for writing"
                        msg += _wrong_face_hint(writer, task)
                    raise RuntimeError(msg)
            elif task not in self._readers:
                if self._readers:
                    msg = "the current task is not holding this lock for reading"
                    for reader in self._readers:
                        hint = _wrong_face_hint(reader, task)
                        if hint:
                            msg += hint
                            break
                else:
                    msg = "release unlocked lock"
                raise RuntimeError(msg)
            self._forget(kind, task)
            granted = self._grant()
        self._wake(granted)

    def _undo(self, ticket: _Ticket) -> None:
        # Granted to a waiter that is leaving anyway: it releases.
        self.release(ticket.payload)

    def _give_back(self, payload: Any) -> None:
        self.release(payload)


class _RWSide:
    """One side (reading or writing) of an `RWLock`, as a lock-like."""

    __slots__ = ("__weakref__", "_core", "_kind")

    def __init__(self, core: _RWCore, kind: str) -> None:
        self._core = core
        self._kind = kind

    def __repr__(self) -> str:
        return (
            f"<{self._kind} side of an RWLock"
            f" [{self._core.state()}, waiting={self.waiting}]>"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Copied or pickled alone: the same side of a new RWLock.
        return getattr, (RWLock(), "reader" if self._kind is _READ else "writer")

    @property
    def waiting(self) -> int:
        """How many tasks are waiting for this side."""
        return self._core.waiting_for(self._kind)

    def locked(self) -> bool:
        """True while held on this side."""
        return self._core.held(self._kind)

    def green_acquire(
        self, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Acquire this side in green code; False if not acquired."""
        blocking, timeout = _acquire_args(blocking, timeout)
        payload = (self._kind, _green_task())
        return self._core.green_acquire(payload, blocking, timeout)

    async def async_acquire(
        self, *, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """Acquire this side in async code; False if not acquired."""
        blocking, timeout = _acquire_args(blocking, timeout)
        payload = (self._kind, _current_async_task())
        return await self._core.async_acquire(payload, blocking, timeout)

    def green_release(self) -> None:
        """Release this side, held by the current green task."""
        self._core.release((self._kind, _green_task()))

    def async_release(self) -> None:
        """Release this side, held by the current async task."""
        self._core.release((self._kind, _current_async_task()))

    def __enter__(self) -> Self:
        self.green_acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.green_release()

    async def __aenter__(self) -> Self:
        await self.async_acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.async_release()


# =============================================================================
# synchronized
# =============================================================================

# Where a per-object lock lives on objects that have a __dict__.
_SYNC_ATTRIBUTE: Final = "__synchronized_lock__"
_object_locks: WeakKeyDictionary[object, RLock] | None = None  # made on first need


def _lock_of(obj: object) -> RLock:
    """The reentrant lock that `synchronized` uses for *obj* (made once)."""
    try:
        namespace = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        namespace = None
    if namespace is not None and not isinstance(obj, type):
        lock = namespace.get(_SYNC_ATTRIBUTE)
        if lock is None:
            # dict.setdefault is atomic: racing callers agree on one lock.
            lock = namespace.setdefault(_SYNC_ATTRIBUTE, RLock())
        return lock  # type: ignore[no-any-return]
    global _object_locks
    if _object_locks is None:
        import weakref

        with _creation_lock:
            if _object_locks is None:
                _object_locks = weakref.WeakKeyDictionary()
    lock = _object_locks.get(obj)
    if lock is None:
        with _creation_lock:
            lock = _object_locks.setdefault(obj, RLock())
    return lock


def _is_lock_like(obj: object) -> bool:
    return (hasattr(obj, "__enter__") or hasattr(obj, "__aenter__")) and (
        hasattr(obj, "acquire") or hasattr(obj, "green_acquire")
    )


def _is_coroutine_function(function: object) -> bool:
    # inspect.iscoroutinefunction without importing inspect; a bound method
    # forwards __code__ to its function.
    code = getattr(function, "__code__", None)
    return code is not None and bool(code.co_flags & 0x80)  # CO_COROUTINE


class _Synchronized(_GenericBase[_LockT]):
    """What ``synchronized(lock)`` returns: a decorator and a context manager.

    ``with`` and ``async with`` take the lock (``as`` gives the lock); as a
    decorator it makes calls of a function, sync or async, hold the lock.
    A lock that only has an async face (asyncio, trio, anyio) refuses ``with``
    and sync functions with `TypeError`; a ``threading`` lock taken by
    ``async with`` blocks the thread as ``with`` does.
    """

    __slots__ = ("_async_only", "_lock")

    def __init__(self, lock: _LockT) -> None:
        self._lock = lock
        self._async_only = not hasattr(lock, "green_acquire") and (
            not hasattr(lock, "__enter__")
            or _is_coroutine_function(getattr(lock, "acquire", None))
        )

    def __repr__(self) -> str:
        return f"<{_qualname(self)} object at {id(self):#x} [lock={self._lock!r}]>"

    @property
    def lock(self) -> _LockT:
        return self._lock

    def _refuse_sync(self, what: str) -> None:
        if self._async_only:
            msg = (
                f"{_qualname(self._lock)} has no sync face: {what} is not"
                " possible (use async with, on an async function)"
            )
            raise TypeError(msg)

    def __call__(self, function: Callable[_P, _R]) -> Callable[_P, _R]:
        if not _is_coroutine_function(function):
            self._refuse_sync("synchronizing a sync function")
        return _synchronize_function(function, lambda args: self)  # type: ignore[no-any-return]

    def __enter__(self) -> _LockT:
        self._refuse_sync("with")
        lock: Any = self._lock
        lock.__enter__()
        return self._lock

    def __exit__(self, *exc_info: Any) -> None:
        lock: Any = self._lock
        lock.__exit__(*exc_info)

    async def __aenter__(self) -> _LockT:
        lock: Any = self._lock
        if hasattr(lock, "__aenter__"):
            await lock.__aenter__()
        else:
            lock.__enter__()
        return self._lock

    async def __aexit__(self, *exc_info: Any) -> None:
        lock: Any = self._lock
        if hasattr(lock, "__aexit__"):
            await lock.__aexit__(*exc_info)
        else:
            lock.__exit__(*exc_info)


if TYPE_CHECKING:
    # The last overload (any other object) overlaps the others on purpose:
    # the first that matches wins, as at run time. (At run time a callable
    # object that is not a function, such as a partial, counts as an object:
    # `with synchronized(self):` keeps working in a class with __call__.)
    @overload
    def synchronized(wrapped: _ClassT) -> _ClassT: ...  # type: ignore[overload-overlap]  # pyright: ignore[reportOverlappingOverload]
    @overload
    def synchronized(wrapped: Callable[_P, _R]) -> Callable[_P, _R]: ...  # type: ignore[overload-overlap]
    @overload
    def synchronized(wrapped: _LockT) -> _Synchronized[_LockT]: ...  # type: ignore[overload-overlap]
    @overload
    def synchronized(wrapped: object) -> RLock: ...


def synchronized(wrapped: Any) -> Any:
    """Make calls mutually exclusive, or get the lock guarding an object.

    * ``@synchronized`` on a function: one call at a time (sync or async);
      on a method (first parameter ``self`` or ``cls``): one call at a time
      per object. Reentrant: a synchronized call may call another.
    * ``@synchronized`` on a class: every function of its body, per object.
    * ``synchronized(lock)`` on a lock (ours, `threading`'s, `asyncio`'s,
      trio's, anyio's) returns an object that is both a decorator
      (``@synchronized(lock)`` on a sync or async function) and a context
      manager (``with``, ``async with``) over that lock.
    * ``synchronized(obj)`` on any other object: the `RLock` that synchronized
      methods of *obj* use (``with synchronized(obj): ...``).
    """
    if isinstance(wrapped, type):
        for name, value in list(vars(wrapped).items()):
            if _is_function(value):
                setattr(wrapped, name, _synchronize_function(value))
        return wrapped
    if _is_function(wrapped):
        return _synchronize_function(wrapped)
    if _is_lock_like(wrapped):
        return _Synchronized(wrapped)
    return _lock_of(wrapped)


def _is_function(value: object) -> bool:
    return hasattr(value, "__code__") and callable(value)


def _synchronize_function(
    function: Any, guard: Callable[[tuple[Any, ...]], Any] | None = None
) -> Any:
    # guard(args): what the call holds (`with`/`async with`); by default the
    # RLock of the object a method is called on, or of the function.
    from functools import wraps

    code = function.__code__
    per_object = code.co_argcount > 0 and code.co_varnames[0] in ("self", "cls")
    is_async = _is_coroutine_function(function)

    def lock_for(args: tuple[Any, ...]) -> Any:
        if guard is not None:
            return guard(args)
        return _lock_of(args[0]) if per_object and args else _lock_of(wrapper)

    if is_async:

        @wraps(function)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:  # pyright: ignore[reportRedeclaration]
            async with lock_for(args):
                return await function(*args, **kwargs)

    else:

        @wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with lock_for(args):
                return function(*args, **kwargs)

    return wrapper


# =============================================================================
# Statistics, in anyio's shape
# =============================================================================

# What `statistics()` returns: snapshots with the field names of anyio's
# (LockStatistics, CapacityLimiterStatistics...), read-only, compared by
# value. Plain slotted classes: `typing.NamedTuple` would import typing.


class _Statistics:
    __slots__ = ()

    # The fields in anyio's order.
    _fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *values: object) -> None:
        # Keep the fields read-only: set once, here.
        for name, value in zip(self._fields, values):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        msg = f"{type(self).__name__} is read-only"
        raise AttributeError(msg)

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"


class LockStatistics(_Statistics):
    """`Lock.statistics()`: held or not, by whom (``(library, id)``), waiters."""

    __slots__ = ("locked", "owner", "tasks_waiting")
    _fields = ("locked", "owner", "tasks_waiting")

    locked: bool
    owner: tuple[str, int] | None
    tasks_waiting: int

    if TYPE_CHECKING:

        def __init__(
            self, locked: bool, owner: tuple[str, int] | None, tasks_waiting: int
        ) -> None: ...


class SemaphoreStatistics(_Statistics):
    """`Semaphore.statistics()`: how many tasks wait."""

    __slots__ = ("tasks_waiting",)
    _fields = ("tasks_waiting",)

    tasks_waiting: int

    if TYPE_CHECKING:

        def __init__(self, tasks_waiting: int) -> None: ...


class EventStatistics(_Statistics):
    """`Event.statistics()`: how many tasks wait."""

    __slots__ = ("tasks_waiting",)
    _fields = ("tasks_waiting",)

    tasks_waiting: int

    if TYPE_CHECKING:

        def __init__(self, tasks_waiting: int) -> None: ...


class ConditionStatistics(_Statistics):
    """`Condition.statistics()`: its waiters, and its lock's statistics."""

    __slots__ = ("lock_statistics", "tasks_waiting")
    _fields = ("tasks_waiting", "lock_statistics")

    tasks_waiting: int
    lock_statistics: LockStatistics

    if TYPE_CHECKING:

        def __init__(
            self, tasks_waiting: int, lock_statistics: LockStatistics
        ) -> None: ...


class CapacityLimiterStatistics(_Statistics):
    """`CapacityLimiter.statistics()`: tokens borrowed and in total, the
    borrowers (as `borrowers` shows them) and how many tasks wait."""

    __slots__ = ("borrowed_tokens", "borrowers", "tasks_waiting", "total_tokens")
    _fields = ("borrowed_tokens", "total_tokens", "borrowers", "tasks_waiting")

    borrowed_tokens: int
    total_tokens: float
    borrowers: tuple[object, ...]
    tasks_waiting: int

    if TYPE_CHECKING:

        def __init__(
            self,
            borrowed_tokens: int,
            total_tokens: float,
            borrowers: tuple[object, ...],
            tasks_waiting: int,
        ) -> None: ...


class QueueStatistics(_Statistics):
    """`statistics()` of every queue, named after anyio's
    MemoryObjectStreamStatistics: items in the queue, its bound (``inf``
    when unbounded), tasks waiting to put and to get."""

    __slots__ = (
        "current_buffer_used",
        "max_buffer_size",
        "tasks_waiting_get",
        "tasks_waiting_put",
    )
    _fields = (
        "current_buffer_used",
        "max_buffer_size",
        "tasks_waiting_put",
        "tasks_waiting_get",
    )

    current_buffer_used: int
    max_buffer_size: float
    tasks_waiting_put: int
    tasks_waiting_get: int

    if TYPE_CHECKING:

        def __init__(
            self,
            current_buffer_used: int,
            max_buffer_size: float,
            tasks_waiting_put: int,
            tasks_waiting_get: int,
        ) -> None: ...


def _lock_statistics(lock: Any, locked: bool) -> LockStatistics:
    # Of any lock a Condition may hold: ours, a semaphore, threading's, none.
    if isinstance(lock, Lock):
        return lock.statistics()
    return LockStatistics(locked, None, getattr(lock, "waiting", 0))


# =============================================================================
# The lowlevel namespace
# =============================================================================


def _make_lowlevel() -> Any:
    # A module object registered as "<this module's name>.lowlevel", so that
    # `from aiologic.lowlevel import ...` works, and keeps working in a copy
    # vendored under another name.
    module = type(sys)(f"{__name__}.lowlevel", "Low-level helpers of the primitives.")
    names = (
        "current_green_library",
        "current_async_library",
        "current_green_library_tlocal",
        "current_async_library_tlocal",
        "green_checkpoint",
        "async_checkpoint",
        "enable_checkpoints",
        "disable_checkpoints",
        "green_sleep",
        "async_sleep",
        "MISSING",
    )
    namespace = globals()
    for name in names:
        setattr(module, name, namespace[name])
    module.__all__ = names  # type: ignore[attr-defined]
    _modules[module.__name__] = module
    return module


lowlevel = _make_lowlevel()


def _name_inherited_methods() -> None:
    """Give each public class its own copy of what it inherits from a private
    base, named after it: a TypeError for wrong arguments then says
    ``Queue.green_get()``, not ``_Gets.green_get()`` (Python 3.10+ names the
    function's qualified name). Classes are visited in `__all__` order, so a
    subclass listed after its public base (LifoQueue after Queue) inherits
    the base's copy and its name."""
    function_type: Any = type(_noop)  # types.FunctionType
    namespace = globals()
    for name in __all__:
        cls: Any = namespace[name]
        if not isinstance(cls, type) or issubclass(cls, BaseException):
            continue
        for base in cls.__mro__[1:]:
            if base.__module__ != __name__ or not base.__name__.startswith("_"):
                continue
            for attr, value in base.__dict__.items():
                if (
                    not isinstance(value, function_type)
                    or (attr.startswith("_") and attr not in ("__init__", "__await__"))
                    or any(
                        attr in c.__dict__
                        for c in cls.__mro__[: cls.__mro__.index(base)]
                    )
                ):
                    continue
                copy: Any = function_type(
                    value.__code__,
                    value.__globals__,
                    value.__name__,
                    value.__defaults__,
                    value.__closure__,
                )
                copy.__kwdefaults__ = value.__kwdefaults__
                copy.__dict__.update(value.__dict__)
                copy.__annotations__ = value.__annotations__
                copy.__doc__ = value.__doc__
                copy.__qualname__ = f"{cls.__qualname__}.{attr}"
                setattr(namespace[name], attr, copy)


_name_inherited_methods()

# queue.Empty lives in the C module _queue, which costs ~0.1 ms: import it, so
# that `except queue.Empty:` works whatever the import order. The others are
# taken from the modules imported by now, and later as they appear.
try:
    import _queue  # noqa: F401  # pyright: ignore[reportUnusedImport]
except ImportError:  # pragma: no cover - PyPy, or CPython built without it
    pass
_adopt_foreign_bases()
