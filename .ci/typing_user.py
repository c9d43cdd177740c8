# pyright: strict
# User code type-checked against the *installed* wheel by `.ci/run checks`
# (mypy --strict and pyright strict). Each reveal_type line says what each
# checker must reveal: `# expect mypy: TYPE` and `# expect pyright: TYPE` (on the line
# itself or on the comment lines just above it). .ci/check_types.py compares.
from __future__ import annotations

import asyncio
import threading

import aiologic
from aiologic.lowlevel import current_async_library, green_checkpoint

# -- the lowlevel submodule resolves (a stub in the wheel)
# expect mypy: Overload(def (*, failsafe: Literal[False] =) -> str, def (*, failsafe: bool) -> str | None)
# expect pyright: Overload[(*, failsafe: Literal[False] = False) -> str, (*, failsafe: bool) -> (str | None)]
reveal_type(current_async_library)
reveal_type(green_checkpoint)  # expect mypy: def (*, force: bool =)  # expect pyright: (*, force: bool = False) -> None

# -- constructors typed as the class they return
reveal_type(aiologic.Semaphore(2))  # expect mypy: aiologic.Semaphore  # expect pyright: Semaphore
reveal_type(aiologic.Semaphore(1, max_value=2))  # expect mypy: aiologic.BoundedSemaphore  # expect pyright: BoundedSemaphore
reveal_type(aiologic.Semaphore(1, 1))  # expect mypy: aiologic.BoundedSemaphore  # expect pyright: BoundedSemaphore
reveal_type(aiologic.Semaphore(max_value=3))  # expect mypy: aiologic.BoundedSemaphore  # expect pyright: BoundedSemaphore
reveal_type(aiologic.BinarySemaphore())  # expect mypy: aiologic.BinarySemaphore  # expect pyright: BinarySemaphore
reveal_type(aiologic.BinarySemaphore(1, max_value=1))  # expect mypy: aiologic.BoundedBinarySemaphore  # expect pyright: BoundedBinarySemaphore
reveal_type(aiologic.BinarySemaphore(1, 1))  # expect mypy: aiologic.BoundedBinarySemaphore  # expect pyright: BoundedBinarySemaphore
reveal_type(aiologic.Queue[int]().green_get())  # expect mypy: int  # expect pyright: int

# -- with_() is a coroutine
event = aiologic.Event()
waiting = event.with_(1.0)
_ = reveal_type(waiting)  # expect mypy: typing.Coroutine[Any, Any, bool]  # expect pyright: Coroutine[Any, Any, bool]
waiting.close()


# -- synchronized, per use
@aiologic.synchronized
def work(n: int, label: str = "") -> bytes:
    return label.encode() * n


@aiologic.synchronized
async def async_work(n: int) -> str:
    return str(n)


@aiologic.synchronized
class Account:
    def deposit(self, amount: int) -> int:
        return amount


reveal_type(work)  # expect mypy: def (n: int, label: str =) -> bytes  # expect pyright: (n: int, label: str = "") -> bytes
# expect mypy: def (n: int) -> typing.Coroutine[Any, Any, str]
# expect pyright: (n: int) -> CoroutineType[Any, Any, str]
reveal_type(async_work)
reveal_type(Account)  # expect mypy: def () -> typing_user.Account  # expect pyright: type[Account]
reveal_type(aiologic.synchronized(Account()))  # expect mypy: aiologic.RLock  # expect pyright: RLock

lock = aiologic.Lock()
guard = aiologic.synchronized(lock)
reveal_type(guard)  # expect mypy: aiologic._Synchronized[aiologic.Lock]  # expect pyright: _Synchronized[Lock]
reveal_type(aiologic.synchronized(threading.Lock()))  # expect mypy: aiologic._Synchronized[_thread.LockType]  # expect pyright: _Synchronized[LockType]


@guard
def guarded(n: int) -> int:
    return n


reveal_type(guarded)  # expect mypy: def (n: int) -> int  # expect pyright: (n: int) -> int

# -- every __enter__ / __aenter__ is typed
with guard as held:
    reveal_type(held)  # expect mypy: aiologic.Lock  # expect pyright: Lock
with aiologic.RLock() as rlock:
    reveal_type(rlock)  # expect mypy: aiologic.RLock  # expect pyright: RLock
with aiologic.Semaphore(2, max_value=2) as bounded:
    reveal_type(bounded)  # expect mypy: aiologic.BoundedSemaphore  # expect pyright: BoundedSemaphore
with aiologic.Condition() as entered:
    reveal_type(entered)  # expect mypy: object  # expect pyright: object
with aiologic.CapacityLimiter(2) as limiter:
    reveal_type(limiter)  # expect mypy: aiologic.CapacityLimiter  # expect pyright: CapacityLimiter
with aiologic.Barrier(1) as index:
    reveal_type(index)  # expect mypy: int  # expect pyright: int


async def main() -> None:
    async with aiologic.synchronized(asyncio.Lock()) as alock:
        reveal_type(alock)  # expect mypy: asyncio.locks.Lock  # expect pyright: Lock
    async with aiologic.Lock() as owned:
        reveal_type(owned)  # expect mypy: aiologic.Lock  # expect pyright: Lock
    async with aiologic.RWLock().writer as writer:
        reveal_type(writer)  # expect mypy: aiologic._RWSide  # expect pyright: _RWSide
    reveal_type(await event)  # expect mypy: bool  # expect pyright: bool
    reveal_type(await async_work(1))  # expect mypy: str  # expect pyright: str
