"""Benchmark aiologic against what people use instead.

Every scenario times an aiologic primitive against its baseline in the same process:
the standard library (threading, queue, asyncio, and a hand-rolled thread/loop
bridge built on ``loop.call_soon_threadsafe``), plus trio and janus when they are
installed. Repeats are interleaved (ours, baseline, ours, baseline, ...) and the
median is reported, so a slow moment of the machine hits both sides alike.

Usage::

    python bench.py            # full run, about five minutes
    python bench.py --quick    # about a minute and a half
    python bench.py --json     # machine-readable output
    python bench.py --rst      # the README tables (reStructuredText)
    python bench.py -k queue   # only scenarios whose name contains "queue"

``ratio`` is ours/baseline: above 1 means aiologic is faster (for import time and
memory, where lower is better, the ratio is still ours/baseline and a value below
1 means aiologic is better). Each repeat times every implementation once, so
each repeat gives one paired ratio; the table shows their median and quartiles,
and ``noise`` when the quartiles straddle 1 (the two sides cannot be told apart
in this run). Every wait has a deadline, so a bug shows up as
``n/a (error: ...)`` in its row instead of a hang.

Floors are small reference implementations run beside the headline scenarios:
the least any implementation of that kind can do (an owned or unowned asyncio
lock with one atomic pop/append and one waiter check; a bare thread <-> loop
round trip through ``call_soon_threadsafe``; a thread <-> thread round trip
through two ``_thread`` locks). Their rows read "ours is at 0.9x the floor".

The anchor: ``--anchor PYTHON`` (or the environment variable
``BENCH_ANCHOR_PYTHON``) names the interpreter of another environment where
the published aiologic is installed (``pip install aiologic==0.17.1``, plus
culsans, janus, trio, gevent, eventlet if wanted). bench.py then starts
``PYTHON bench.py --serve`` beside itself: that process imports the installed
aiologic, not the aiologic.py here, and times, on request, every
implementation it has. Its aiologic is added to each row as "anchor ..." (the
no-regression column), and baselines only installed there (culsans) are
measured there, interleaved with ours as any other baseline. A row of ours
that needs what the anchor's aiologic lacks (``Impl.needs``, checked in the
anchor process) has no anchor column. Without it, bench.py needs the standard
library only.
"""

from __future__ import annotations

import _thread
import argparse
import asyncio
import faulthandler
import gc
import importlib
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections import deque
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Awaitable, Callable, ClassVar, Iterator, Sequence, TypeVar

HERE = os.path.dirname(os.path.abspath(__file__))


def load_aiologic() -> Any:
    """The aiologic.py beside this file; in a `--serve` process (the anchor),
    the aiologic installed in that interpreter's environment instead."""
    if os.environ.get("BENCH_SERVE"):
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
    return importlib.import_module("aiologic")


aiologic = load_aiologic()


# Importing eventlet warns that it is deprecated, once per process (the anchor too).
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")


def optional_import(name: str) -> Any:
    """The module, or None when it is not installed (trio and janus are extras)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


trio = optional_import("trio")
janus = optional_import("janus")
# culsans is built on aiologic: in this process it would run on the aiologic.py
# beside this file, so it is only measured by the anchor (see --anchor).
culsans = optional_import("culsans") if os.environ.get("BENCH_SERVE") else None
perf_counter = time.perf_counter

T = TypeVar("T")

# Run `n` operations, return the seconds they took (setup excluded).
Measure = Callable[[int], float]


class Config:
    """Knobs set once from the command line."""

    quick = False
    filter = ""  # only scenarios whose title contains this (case-insensitive)
    exact: str | None = None  # only the scenario of this title (--isolate's children)
    listing = False  # wanted() only records the titles
    # Every title offered to wanted(), and whether one matched: `-k` with a
    # pattern that matches nothing lists the titles and exits non-zero.
    titles: ClassVar[dict[str, None]] = {}
    matched = False
    deadline = 20.0  # seconds any single wait may take before the row fails
    target = 0.25  # seconds one timed measurement should last
    repeats = 7
    bulk_items = 100_000
    # In a `--serve` process: compare() records the implementations here, by
    # (scenario, name), instead of timing them.
    serving = False
    registry: ClassVar[dict[tuple[str, str], Impl]] = {}
    peer: Peer | None = None  # the anchor process, when there is one


CFG = Config()


def wanted(title: str) -> bool:
    if CFG.serving:  # the anchor only times what compare() records
        return False
    CFG.titles.setdefault(title, None)
    if CFG.listing:
        return False
    if CFG.exact is not None:
        if title == CFG.exact:
            CFG.matched = True
            return True
        return False
    if CFG.filter.lower() in title.lower():
        CFG.matched = True
        return True
    return False


class BenchTimeout(Exception):
    """A wait in the benchmark passed its deadline: the row reports an error."""


# ============================================================== results


Kind = str  # of a baseline: "baseline", "floor", "anchor"


@dataclass
class Row:
    scenario: str
    ours: str
    baseline: str
    ours_value: float | None = None
    baseline_value: float | None = None
    unit: str = "ops/s"
    ours_n: int | None = None  # ops per timed run
    baseline_n: int | None = None
    ours_error: str | None = None
    baseline_error: str | None = None
    note: str = ""
    kind: Kind = "baseline"
    # One ratio ours/baseline per repeat: both timed in the same round.
    paired: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.ours_error is not None or self.baseline_error is not None:
            return None
        if self.paired:
            return statistics.median(self.paired)
        if self.ours_value is None or not self.baseline_value:
            return None
        return self.ours_value / self.baseline_value

    @property
    def quartiles(self) -> tuple[float, float] | None:
        if self.ratio is None or len(self.paired) < 2:
            return None
        q1, _, q3 = statistics.quantiles(self.paired, n=4, method="inclusive")
        return q1, q3

    @property
    def noise(self) -> bool:
        """The quartiles of the paired ratios straddle 1: no difference shown."""
        q = self.quartiles
        return q is not None and q[0] <= 1.0 <= q[1]


@dataclass
class Impl:
    name: str
    measure: Measure
    n: int = 0  # ops per timed run
    times: list[float] = field(default_factory=list)
    error: str | None = None
    kind: Kind = "baseline"
    mine: str = ""  # an anchor: the name of our implementation it stands for
    # Of ours: the aiologic attributes it uses that an older aiologic may
    # lack ("Queue.sync_q"); an anchor without them is not offered the row.
    needs: tuple[str, ...] = ()


def has_all(needs: Sequence[str]) -> bool:
    """Whether this process's aiologic has every dotted attribute named."""
    for dotted in needs:
        obj: Any = aiologic
        for part in dotted.split("."):
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
    return True


def floor(name: str, measure: Measure) -> Impl:
    return Impl(f"floor: {name}", measure, kind="floor")


def describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def run_once(impl: Impl, n: int) -> float | None:
    if impl.error is not None:
        return None
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    # Every wait below has its own deadline; this is the last resort for a wait
    # that ignores it (e.g. a task that swallows its cancellation): dump every
    # thread's stack and exit rather than hang.
    faulthandler.dump_traceback_later(3 * CFG.deadline + 10, exit=True)
    try:
        elapsed = impl.measure(n)
    except Exception as exc:
        impl.error = describe(exc)
        if os.environ.get("BENCH_TRACEBACK"):
            traceback.print_exc()
        return None
    finally:
        faulthandler.cancel_dump_traceback_later()
        if gc_was_enabled:
            gc.enable()
    return max(elapsed, 1e-9)


def calibrate(impl: Impl, n0: int, n_max: int, step: int) -> None:
    """Set impl.n so that one timed run lasts about CFG.target seconds.

    Each implementation gets its own n (results are per op), so a fast one is
    not timed over a few milliseconds only because its baseline is slow.
    """
    n = n0
    while True:
        t = run_once(impl, n)
        if t is None:
            return
        if t >= CFG.target / 4 or n >= n_max:
            break
        n = min(n_max, n * 8)
    n = int(n * CFG.target / t)
    impl.n = max(step, min(n_max, n // step * step))


class Peer:
    """The anchor: `PYTHON bench.py --serve` in another environment, asked over
    its stdin/stdout (one JSON object a line) to time its implementations."""

    def __init__(self, python: str) -> None:
        env = dict(os.environ, BENCH_SERVE="1")
        argv = [python, os.path.join(HERE, "bench.py"), "--serve"]
        if CFG.quick:
            argv.append("--quick")
        self.proc = subprocess.Popen(
            argv,
            cwd=HERE,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = self._read()
        self.version: str = hello["aiologic"]
        self.python: str = hello["python"]
        # scenario -> implementation names -> kind ("ours" or a baseline kind)
        self.impls: dict[str, dict[str, str]] = hello["impls"]

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the anchor process exited")
        return json.loads(line)

    def measure(self, scenario: str, name: str) -> Measure:
        def measure(n: int) -> float:
            assert self.proc.stdin is not None
            request = {"scenario": scenario, "name": name, "n": n}
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            answer = self._read()
            if "error" in answer:
                raise RuntimeError(f"anchor: {answer['error']}")
            return float(answer["seconds"])

        return measure

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(CFG.deadline)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def serve() -> int:
    """The anchor's side: record every implementation, then time on request."""
    CFG.serving = True
    impls: dict[str, dict[str, str]] = {}
    for scenario in SCENARIOS:
        try:
            for _ in scenario():
                pass
        except Exception:  # a scenario this aiologic cannot even set up
            continue
    for (title, name), impl in CFG.registry.items():
        impls.setdefault(title, {})[name] = impl.kind
    hello = {
        "aiologic": getattr(aiologic, "__version__", "?"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "impls": impls,
    }
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        impl = CFG.registry[request["scenario"], request["name"]]
        impl.error = None
        elapsed = run_once(impl, int(request["n"]))
        answer = {"seconds": elapsed} if elapsed is not None else {"error": impl.error}
        print(json.dumps(answer), flush=True)
    return 0


def with_peer(scenario: str, ours: Sequence[Impl], baselines: list[Impl]) -> None:
    """Add the anchor's implementations of this scenario to the baselines: its
    aiologic for each of ours, and the baselines only it has (culsans)."""
    peer = CFG.peer
    if peer is None:
        return
    theirs = peer.impls.get(scenario, {})
    have = {impl.name for impl in baselines}
    for mine in ours:
        if mine.name in theirs and theirs[mine.name] == "ours":
            name = f"anchor {peer.version} {mine.name.replace('aiologic.', '')}"
            measure = peer.measure(scenario, mine.name)
            baselines.append(Impl(name, measure, kind="anchor", mine=mine.name))
    for name, kind in theirs.items():
        if kind == "baseline" and name not in have:
            baselines.append(Impl(f"{name} (anchor env)", peer.measure(scenario, name)))


def compare(
    scenario: str,
    ours: Sequence[Impl],
    baselines: Sequence[Impl],
    *,
    n0: int = 1000,
    n_max: int = 10_000_000,
    step: int = 1,
    fixed_n: int | None = None,
    note: str = "",
) -> list[Row]:
    """Time every implementation, interleaved, and pair ours with each baseline."""
    if CFG.serving:
        for impl in ours:
            if has_all(impl.needs):
                CFG.registry[scenario, impl.name] = Impl(
                    impl.name, impl.measure, kind="ours"
                )
        for impl in baselines:
            if impl.kind == "baseline":
                CFG.registry[scenario, impl.name] = impl
        return []
    if not wanted(scenario):
        return []
    bases = list(baselines)
    with_peer(scenario, ours, bases)
    impls = [*ours, *bases]
    for impl in impls:
        if fixed_n is None:
            calibrate(impl, n0, n_max, step)
        else:
            impl.n = fixed_n
            run_once(impl, fixed_n)  # warm-up (and JIT) run, not counted
    rounds: list[dict[str, float]] = []  # name -> ops/s, one dict per repeat
    for _ in range(CFG.repeats):
        speeds: dict[str, float] = {}
        for impl in impls:
            t = run_once(impl, impl.n)
            if t is not None:
                impl.times.append(t)
                speeds[impl.name] = impl.n / t
        rounds.append(speeds)

    def ops(impl: Impl) -> float | None:
        if impl.error is not None or not impl.times:
            return None
        return impl.n / statistics.median(impl.times)

    def paired(mine: Impl, base: Impl) -> list[float]:
        return [
            speeds[mine.name] / speeds[base.name]
            for speeds in rounds
            if mine.name in speeds and base.name in speeds
        ]

    if not bases:  # e.g. janus not installed: ours alone, to be seen
        return [
            Row(
                scenario,
                mine.name,
                "(no baseline installed)",
                ops(mine),
                ours_n=mine.n,
                ours_error=mine.error,
                note=note,
            )
            for mine in ours
        ]
    return [
        Row(
            scenario=scenario,
            ours=mine.name,
            baseline=base.name,
            ours_value=ops(mine),
            baseline_value=ops(base),
            ours_n=mine.n,
            baseline_n=base.n,
            ours_error=mine.error,
            baseline_error=base.error,
            note=note,
            kind=base.kind,
            paired=paired(mine, base),
        )
        for mine in ours
        for base in bases
        if base.kind != "anchor" or base.mine == mine.name
    ]


# ============================================================== plumbing


class Worker:
    """A daemon thread running fn(*args); join() re-raises what it raised."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[..., Any], args: Sequence[Any]) -> None:
        try:
            self.result = fn(*args)
        except BaseException as exc:  # reported to the joining thread
            self.error = exc

    def join(self) -> Any:
        self.thread.join(CFG.deadline)
        if self.thread.is_alive():
            raise BenchTimeout("worker thread did not finish")
        if self.error is not None:
            raise self.error
        return self.result


def wait_event(ev: threading.Event) -> None:
    if not ev.wait(CFG.deadline):
        raise BenchTimeout("helper did not get ready")


def run_asyncio(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """asyncio.run(fn(*args)) in this thread, bounded by the deadline."""

    async def bounded() -> T:
        try:
            return await asyncio.wait_for(fn(*args), CFG.deadline)
        except asyncio.TimeoutError:
            raise BenchTimeout("asyncio side timed out") from None

    return asyncio.run(bounded())


def run_trio(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    async def bounded() -> T:
        with trio.fail_after(CFG.deadline):
            return await fn(*args)

    result: T = trio.run(bounded)
    return result


def got(ok: bool) -> None:
    """Turn a False returned by a timed wait into an error."""
    if not ok:
        raise BenchTimeout("a timed wait returned False")


class _Lazy:
    """`lib.Name(...)` calls `aiologic.Name(...)`, looked up at call time, so a
    name the module does not have (yet) fails its own row, not the whole run."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def make(*args: Any, **kwargs: Any) -> Any:
            return getattr(aiologic, name)(*args, **kwargs)

        make.__name__ = name
        return make


lib: Any = _Lazy()


# ============================================================== floors


current_task = asyncio.current_task


class FloorUnownedLock:
    """The least an unowned asyncio lock can do per `async with`: one coroutine
    per side, one atomic pop/append (of the one permit), one waiter check.
    Single-loop only and no cancellation: a reference, not a primitive."""

    __slots__ = ("_permits", "_waiters")

    def __init__(self) -> None:
        self._permits = [None]
        self._waiters: deque[asyncio.Future[None]] = deque()

    def _park(self) -> asyncio.Future[None]:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter  # the releaser hands its permit over

    async def __aenter__(self) -> None:
        try:
            self._permits.pop()
        except IndexError:
            await self._park()

    async def __aexit__(self, *exc_info: object) -> None:
        if self._waiters:
            self._waiters.popleft().set_result(None)
        else:
            self._permits.append(None)


class FloorOwnedLock(FloorUnownedLock):
    """The same, owned: the current task is looked up with asyncio's own
    function on acquire (to record it) and on release (to check it)."""

    __slots__ = ("_owner",)

    async def __aenter__(self) -> None:
        task = current_task()
        try:
            self._permits.pop()
        except IndexError:
            await self._park()
        self._owner = task

    async def __aexit__(self, *exc_info: object) -> None:
        if self._owner is not current_task():
            raise RuntimeError("the lock is not held by this task")
        self._owner = None
        if self._waiters:
            self._waiters.popleft().set_result(None)
        else:
            self._permits.append(None)


def floor_thread_thread(n: int) -> float:
    """A thread <-> thread round trip through two `_thread` locks: the least a
    cross-thread ping-pong costs."""
    ping, pong = _thread.allocate_lock(), _thread.allocate_lock()
    ping.acquire()
    pong.acquire()
    deadline = CFG.deadline

    def echo() -> None:
        for _ in range(n):
            got(ping.acquire(timeout=deadline))
            pong.release()

    worker = Worker(echo)
    t0 = perf_counter()
    for _ in range(n):
        ping.release()
        got(pong.acquire(timeout=deadline))
    elapsed = perf_counter() - t0
    worker.join()
    return elapsed


def floor_thread_loop(n: int) -> float:
    """A bare thread <-> loop round trip: the task wakes the thread through a
    `_thread` lock, the thread wakes the task through call_soon_threadsafe."""
    ping = _thread.allocate_lock()
    ping.acquire()
    deadline = CFG.deadline

    async def main() -> float:
        loop = asyncio.get_running_loop()
        box: list[asyncio.Future[None]] = []

        def echo() -> None:
            call = loop.call_soon_threadsafe
            for _ in range(n):
                got(ping.acquire(timeout=deadline))
                call(box.pop().set_result, None)

        worker = Worker(echo)
        t0 = perf_counter()
        for _ in range(n):
            fut = loop.create_future()
            box.append(fut)
            ping.release()
            await fut
        elapsed = perf_counter() - t0
        worker.join()
        return elapsed

    return run_asyncio(main)


def floor_loop_loop(n: int) -> float:
    """A bare loop <-> loop round trip: each side sets a future of the other
    loop through that loop's call_soon_threadsafe."""
    sides: list[Future[Any]] = [Future(), Future()]

    async def side(me: int, count: int, first: bool) -> float:
        loop = asyncio.get_running_loop()
        box: list[asyncio.Future[None]] = [loop.create_future()]
        sides[me].set_result((loop, box))
        other_loop, other_box = await asyncio.wrap_future(sides[1 - me])
        call = other_loop.call_soon_threadsafe
        t0 = perf_counter()
        for _ in range(count):
            if first:
                call(other_box[0].set_result, None)
            await box[0]
            box[0] = loop.create_future()
            if not first:
                call(other_box[0].set_result, None)
        return perf_counter() - t0

    worker = Worker(run_asyncio, side, 1, n, False)
    elapsed = run_asyncio(side, 0, n, True)
    worker.join()
    return elapsed


# ============================================================== uncontended


def green_with(factory: Callable[[], Any]) -> Measure:
    def measure(n: int) -> float:
        lock = factory()
        t0 = perf_counter()
        for _ in range(n):
            with lock:
                pass
        return perf_counter() - t0

    return measure


def asyncio_with(factory: Callable[[], Any]) -> Measure:
    async def body(n: int) -> float:
        lock = factory()  # inside the loop: asyncio.Lock binds to it on 3.8/3.9
        t0 = perf_counter()
        for _ in range(n):
            async with lock:
                pass
        return perf_counter() - t0

    return lambda n: run_asyncio(body, n)


def trio_with(factory: Callable[[], Any]) -> Measure:
    async def body(n: int) -> float:
        lock = factory()
        t0 = perf_counter()
        for _ in range(n):
            async with lock:
                pass
        return perf_counter() - t0

    return lambda n: run_trio(body, n)


def scenario_uncontended() -> Iterator[list[Row]]:
    yield compare(
        "Lock uncontended, green `with`",
        [Impl("aiologic.Lock", green_with(lib.Lock))],
        [
            Impl("threading.Lock", green_with(threading.Lock)),
            Impl("threading.Semaphore", green_with(threading.Semaphore)),
        ],
        n0=10_000,
    )
    yield compare(
        "Lock uncontended, asyncio `async with`",
        [Impl("aiologic.Lock", asyncio_with(lib.Lock))],
        [
            Impl("asyncio.Lock", asyncio_with(asyncio.Lock)),
            floor("owned lock", asyncio_with(FloorOwnedLock)),
        ],
        n0=10_000,
    )
    yield compare(
        "BinarySemaphore uncontended, asyncio `async with`",
        [Impl("aiologic.BinarySemaphore", asyncio_with(lib.BinarySemaphore))],
        [
            Impl("asyncio.Lock", asyncio_with(asyncio.Lock)),
            floor("unowned lock", asyncio_with(FloorUnownedLock)),
        ],
        n0=10_000,
    )
    if trio is not None:
        yield compare(
            "Lock uncontended, trio `async with`",
            [Impl("aiologic.Lock", trio_with(lib.Lock))],
            [Impl("trio.Lock", trio_with(trio.Lock))],
            n0=10_000,
        )
    yield compare(
        "Semaphore(4) uncontended, green",
        [Impl("aiologic.Semaphore", green_with(lambda: lib.Semaphore(4)))],
        [Impl("threading.Semaphore", green_with(lambda: threading.Semaphore(4)))],
        n0=10_000,
    )
    yield compare(
        "Semaphore(4) uncontended, asyncio",
        [Impl("aiologic.Semaphore", asyncio_with(lambda: lib.Semaphore(4)))],
        [
            Impl("asyncio.Semaphore", asyncio_with(lambda: asyncio.Semaphore(4))),
            floor("unowned lock", asyncio_with(FloorUnownedLock)),
        ],
        n0=10_000,
    )
    if trio is not None:
        yield compare(
            "CapacityLimiter(4) uncontended, trio",
            [
                Impl(
                    "aiologic.CapacityLimiter",
                    trio_with(lambda: lib.CapacityLimiter(4)),
                )
            ],
            [Impl("trio.CapacityLimiter", trio_with(lambda: trio.CapacityLimiter(4)))],
            n0=10_000,
        )
    else:
        yield compare(
            "CapacityLimiter(4) uncontended, asyncio",
            [
                Impl(
                    "aiologic.CapacityLimiter",
                    asyncio_with(lambda: lib.CapacityLimiter(4)),
                )
            ],
            [Impl("asyncio.Semaphore", asyncio_with(lambda: asyncio.Semaphore(4)))],
            n0=10_000,
        )


# ============================================================== contended


TASKS = 100


def asyncio_contended(factory: Callable[[], Any]) -> Measure:
    """TASKS tasks each take the lock n/TASKS times, yielding while holding it."""

    async def body(n: int) -> float:
        lock = factory()
        rounds = n // TASKS
        sleep = asyncio.sleep

        async def worker() -> None:
            for _ in range(rounds):
                async with lock:
                    await sleep(0)

        t0 = perf_counter()
        await asyncio.gather(*(worker() for _ in range(TASKS)))
        return perf_counter() - t0

    return lambda n: run_asyncio(body, n)


def trio_contended(factory: Callable[[], Any]) -> Measure:
    """TASKS trio tasks each take the lock n/TASKS times, yielding while holding it."""

    async def body(n: int) -> float:
        lock = factory()
        rounds = n // TASKS
        sleep = trio.sleep

        async def worker() -> None:
            for _ in range(rounds):
                async with lock:
                    await sleep(0)

        t0 = perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(TASKS):
                nursery.start_soon(worker)
        return perf_counter() - t0

    return lambda n: run_trio(body, n)


def asyncio_cancel_waiter(factory: Callable[[], Any]) -> Measure:
    """The lock is held; a task starts waiting for it and is cancelled: one op
    = one task created, parked on the lock, cancelled and awaited."""

    async def body(n: int) -> float:
        lock = factory()
        sleep, create_task = asyncio.sleep, asyncio.ensure_future

        async def waiter() -> None:
            async with lock:
                raise AssertionError("the lock is held: the waiter cannot get it")

        async with lock:
            t0 = perf_counter()
            for _ in range(n):
                task = create_task(waiter())
                await sleep(0)  # it parks on the lock
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
            elapsed = perf_counter() - t0
        return elapsed

    return lambda n: run_asyncio(body, n)


def lock_ring(
    factory: Callable[[], Any],
    acquire: Callable[[Any], bool],
    release: Callable[[Any], None],
) -> Measure:
    """Two threads chase each other around a ring of three locks.

    Each thread holds one lock, acquires the next one in the ring, then releases
    the one it held. The leader always finds its next lock still held by the
    follower and the follower finds its next lock held by the leader, so every
    acquire waits for a release by the other thread: each step is a real
    hand-off between threads, whatever the lock's fairness policy (a plain
    contended `with lock` loop would mostly measure how often threading.Lock
    lets the releasing thread barge back in). Works with owned locks: every
    lock is released by the thread that acquired it. One op is one hand-off.
    """

    def measure(n: int) -> float:
        locks = [factory() for _ in range(3)]
        steps = n // 2
        start = threading.Barrier(2, timeout=CFG.deadline)

        def runner(position: int) -> float:
            got(acquire(locks[position]))
            start.wait()
            t0 = perf_counter()
            for _ in range(steps):
                following = (position + 1) % 3
                got(acquire(locks[following]))
                release(locks[position])
                position = following
            elapsed = perf_counter() - t0
            release(locks[position])
            return elapsed

        leader = Worker(runner, 1)
        elapsed = runner(0)
        leader.join()
        return elapsed

    return measure


def scenario_contended() -> Iterator[list[Row]]:
    yield compare(
        f"Lock, {TASKS} asyncio tasks contending",
        [Impl("aiologic.Lock", asyncio_contended(lib.Lock))],
        [
            Impl("asyncio.Lock", asyncio_contended(asyncio.Lock)),
            floor("owned lock", asyncio_contended(FloorOwnedLock)),
        ],
        n0=10 * TASKS,
        step=TASKS,
    )
    if trio is not None:
        yield compare(
            f"Lock, {TASKS} trio tasks contending",
            [Impl("aiologic.Lock", trio_contended(lib.Lock))],
            [Impl("trio.Lock", trio_contended(trio.Lock))],
            n0=10 * TASKS,
            step=TASKS,
        )
    yield compare(
        "Lock, cancel an asyncio task waiting for it",
        [Impl("aiologic.Lock", asyncio_cancel_waiter(lib.Lock))],
        [Impl("asyncio.Lock", asyncio_cancel_waiter(asyncio.Lock))],
        n0=1000,
    )
    deadline = CFG.deadline
    yield compare(
        "Lock hand-offs, 2 threads (3-lock ring)",
        [
            Impl(
                "aiologic.Lock",
                lock_ring(
                    lib.Lock,
                    lambda lock: lock.green_acquire(timeout=deadline),
                    lambda lock: lock.green_release(),
                ),
            )
        ],
        [
            Impl(
                "threading.Lock",
                lock_ring(
                    threading.Lock,
                    lambda lock: lock.acquire(timeout=deadline),
                    lambda lock: lock.release(),
                ),
            )
        ],
        n0=1000,
        step=2,
    )


# ============================================================== queues: thread <-> asyncio


def thread_async_pingpong_aiologic(make: Callable[[], Any]) -> Measure:
    """The task sends i to a thread, which sends it back: one op = one round trip."""

    def measure(n: int) -> float:
        to_thread, to_task = make(), make()
        ready = threading.Event()
        deadline = CFG.deadline

        def echo() -> None:
            ready.set()
            for _ in range(n):
                item = to_thread.green_get(timeout=deadline)
                to_task.green_put(item, timeout=deadline)

        async def main() -> float:
            t0 = perf_counter()
            for i in range(n):
                await to_thread.async_put(i)
                await to_task.async_get()
            return perf_counter() - t0

        worker = Worker(echo)
        wait_event(ready)
        elapsed: float = run_asyncio(main)
        worker.join()
        return elapsed

    return measure


def thread_async_pingpong_bridge(n: int) -> float:
    """stdlib: queue.Queue to the thread, call_soon_threadsafe + asyncio.Queue back."""
    to_thread: queue.Queue[int] = queue.Queue()
    ready = threading.Event()
    deadline = CFG.deadline

    async def main() -> float:
        loop = asyncio.get_running_loop()
        to_task: asyncio.Queue[int] = asyncio.Queue()

        def echo() -> None:
            ready.set()
            for _ in range(n):
                item = to_thread.get(timeout=deadline)
                loop.call_soon_threadsafe(to_task.put_nowait, item)

        worker = Worker(echo)
        wait_event(ready)
        t0 = perf_counter()
        for i in range(n):
            to_thread.put(i)
            await to_task.get()
        elapsed = perf_counter() - t0
        worker.join()
        return elapsed

    return run_asyncio(main)


def thread_async_pingpong_janus(maxsize: int) -> Measure:
    def measure(n: int) -> float:
        ready = threading.Event()
        deadline = CFG.deadline

        async def main() -> float:
            to_thread: Any = janus.Queue(maxsize)
            to_task: Any = janus.Queue(maxsize)

            def echo() -> None:
                ready.set()
                for _ in range(n):
                    item = to_thread.sync_q.get(timeout=deadline)
                    to_task.sync_q.put(item, timeout=deadline)

            try:
                worker = Worker(echo)
                wait_event(ready)
                t0 = perf_counter()
                for i in range(n):
                    await to_thread.async_q.put(i)
                    await to_task.async_q.get()
                elapsed = perf_counter() - t0
                worker.join()
            finally:
                await to_thread.aclose()
                await to_task.aclose()
            return elapsed

        return run_asyncio(main)

    return measure


def thread_thread_pingpong(make: Callable[[], Any], get: str, put: str) -> Measure:
    """Two threads bounce an item through two queues: one op = one round trip."""

    def measure(n: int) -> float:
        to_echo, back = make(), make()
        ready = threading.Event()
        deadline = CFG.deadline

        def echo() -> None:
            get_, put_ = getattr(to_echo, get), getattr(back, put)
            ready.set()
            for _ in range(n):
                put_(get_(timeout=deadline))

        worker = Worker(echo)
        wait_event(ready)
        get_, put_ = getattr(back, get), getattr(to_echo, put)
        t0 = perf_counter()
        for i in range(n):
            put_(i)
            get_(timeout=deadline)
        elapsed = perf_counter() - t0
        worker.join()
        return elapsed

    return measure


def thread_to_asyncio_stream_aiologic(make: Callable[[], Any], put: str) -> Measure:
    """A thread puts n items as fast as it can; an asyncio task gets them all."""

    def measure(n: int) -> float:
        q = make()
        go = threading.Event()
        deadline = CFG.deadline

        def produce() -> None:
            put_ = getattr(q, put)
            wait_event(go)
            if put == "put":  # SimpleQueue.put never blocks
                for i in range(n):
                    put_(i)
            else:
                for i in range(n):
                    put_(i, timeout=deadline)

        async def consume() -> float:
            get = q.async_get
            t0 = perf_counter()
            go.set()
            for _ in range(n):
                await get()
            return perf_counter() - t0

        worker = Worker(produce)
        elapsed: float = run_asyncio(consume)
        worker.join()
        return elapsed

    return measure


def asyncio_to_thread_stream_aiologic(make: Callable[[], Any]) -> Measure:
    """An asyncio task puts n items as fast as it can; a thread gets them all."""

    def measure(n: int) -> float:
        q = make()
        deadline = CFG.deadline

        def consume() -> None:
            get = q.green_get
            for _ in range(n):
                get(timeout=deadline)

        async def produce() -> float:
            put = q.async_put
            worker = Worker(consume)
            t0 = perf_counter()
            for i in range(n):
                await put(i)
            # The last item is taken once the consumer thread is done.
            await asyncio.get_running_loop().run_in_executor(None, worker.join)
            return perf_counter() - t0

        elapsed: float = run_asyncio(produce)
        return elapsed

    return measure


def thread_to_asyncio_bulk_bridge(n: int) -> float:
    go = threading.Event()

    async def consume() -> float:
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[int] = asyncio.Queue()

        def produce() -> None:
            call, put = loop.call_soon_threadsafe, q.put_nowait
            wait_event(go)
            for i in range(n):
                call(put, i)

        worker = Worker(produce)
        t0 = perf_counter()
        go.set()
        for _ in range(n):
            await q.get()
        elapsed = perf_counter() - t0
        worker.join()
        return elapsed

    return run_asyncio(consume)


def mixed_stream(module: Any, maxsize: int, to_thread: bool = False) -> Measure:
    """The same streams through a janus-style queue (janus, culsans): one object
    with a `sync_q` face for the thread and an `async_q` face for the task."""

    def measure(n: int) -> float:
        go = threading.Event()
        deadline = CFG.deadline

        async def main() -> float:
            q: Any = module.Queue(maxsize)

            def produce() -> None:
                put = q.sync_q.put
                wait_event(go)
                for i in range(n):
                    put(i, timeout=deadline)

            def consume() -> None:
                get = q.sync_q.get
                for _ in range(n):
                    get(timeout=deadline)

            try:
                if to_thread:
                    put = q.async_q.put
                    worker = Worker(consume)
                    t0 = perf_counter()
                    for i in range(n):
                        await put(i)
                    loop = asyncio.get_running_loop()
                    await loop.run_in_executor(None, worker.join)
                else:
                    worker = Worker(produce)
                    get = q.async_q.get
                    t0 = perf_counter()
                    go.set()
                    for _ in range(n):
                        await get()
                    worker.join()
                elapsed = perf_counter() - t0
            finally:
                await q.aclose()
            return elapsed

        return run_asyncio(main)

    return measure


def thread_thread_stream(make: Callable[[], Any], get: str, put: str) -> Measure:
    """A thread puts n items as fast as it can; another thread gets them all."""

    def measure(n: int) -> float:
        q = make()
        deadline = CFG.deadline
        go = threading.Event()

        def produce() -> None:
            put_ = getattr(q, put)
            wait_event(go)
            for i in range(n):
                put_(i)

        get_ = getattr(q, get)
        worker = Worker(produce)
        t0 = perf_counter()
        go.set()
        for _ in range(n):
            get_(timeout=deadline)
        elapsed = perf_counter() - t0
        worker.join()
        return elapsed

    return measure


def event_thread_async_pingpong(factory: Callable[[], Any]) -> Measure:
    """A fresh aiologic event per hop: the task sets ping[i] and awaits pong[i],
    which a thread sets once it has woken from ping[i]. One op = one round trip."""

    def measure(n: int) -> float:
        pings = [factory() for _ in range(n)]
        pongs = [factory() for _ in range(n)]
        deadline = CFG.deadline

        def echo() -> None:
            for ping, pong in zip(pings, pongs):
                got(ping.wait(deadline))
                pong.set()

        async def main() -> float:
            worker = Worker(echo)
            t0 = perf_counter()
            for ping, pong in zip(pings, pongs):
                ping.set()
                await pong
            elapsed = perf_counter() - t0
            worker.join()
            return elapsed

        return run_asyncio(main)

    return measure


def event_thread_async_bridge(n: int) -> float:
    """stdlib: a threading.Event to the thread, an asyncio.Event set through
    call_soon_threadsafe back; fresh events per hop."""
    pings = [threading.Event() for _ in range(n)]
    deadline = CFG.deadline

    async def main() -> float:
        loop = asyncio.get_running_loop()
        pongs = [asyncio.Event() for _ in range(n)]

        def echo() -> None:
            call = loop.call_soon_threadsafe
            for ping, pong in zip(pings, pongs):
                got(ping.wait(deadline))
                call(pong.set)

        worker = Worker(echo)
        t0 = perf_counter()
        for ping, pong in zip(pings, pongs):
            ping.set()
            await pong.wait()
        elapsed = perf_counter() - t0
        worker.join()
        return elapsed

    return run_asyncio(main)


def scenario_thread_queues() -> Iterator[list[Row]]:
    janus_unbounded = [Impl("janus.Queue()", thread_async_pingpong_janus(0))]
    janus_bounded = [Impl("janus.Queue(1)", thread_async_pingpong_janus(1))]

    # A fresh Impl per scenario: an Impl holds its scenario's times.
    def thread_loop() -> Impl:
        return floor("thread<->loop round trip", floor_thread_loop)

    def thread_thread() -> Impl:
        return floor("thread<->thread round trip", floor_thread_thread)

    yield compare(
        "ping-pong task<->thread, SimpleQueue",
        [Impl("aiologic.SimpleQueue", thread_async_pingpong_aiologic(lib.SimpleQueue))],
        [
            Impl("stdlib bridge", thread_async_pingpong_bridge),
            *(janus_unbounded if janus else []),
            thread_loop(),
        ],
        n0=500,
    )
    yield compare(
        "ping-pong task<->thread, Queue(1)",
        [
            Impl(
                "aiologic.Queue(1)",
                thread_async_pingpong_aiologic(lambda: lib.Queue(maxsize=1)),
            )
        ],
        [
            Impl("stdlib bridge", thread_async_pingpong_bridge),
            *(janus_bounded if janus else []),
            thread_loop(),
        ],
        n0=500,
    )
    yield compare(
        "Event ping-pong task<->thread, one-shot",
        [Impl("aiologic.Event", event_thread_async_pingpong(lib.Event))],
        [Impl("stdlib bridge", event_thread_async_bridge), thread_loop()],
        n0=500,
        n_max=200_000,
    )
    mixed = [("janus", janus), ("culsans", culsans)]
    yield compare(
        "stream thread->task, Queue(1)",
        [
            Impl(
                "aiologic.Queue(1)",
                thread_to_asyncio_stream_aiologic(
                    lambda: lib.Queue(maxsize=1), "green_put"
                ),
            )
        ],
        [Impl(f"{name}.Queue(1)", mixed_stream(mod, 1)) for name, mod in mixed if mod],
        n0=1000,
    )
    yield compare(
        "stream task->thread, Queue(1)",
        [
            Impl(
                "aiologic.Queue(1)",
                asyncio_to_thread_stream_aiologic(lambda: lib.Queue(maxsize=1)),
            )
        ],
        [
            Impl(f"{name}.Queue(1)", mixed_stream(mod, 1, to_thread=True))
            for name, mod in mixed
            if mod
        ],
        n0=1000,
    )
    yield compare(
        "ping-pong thread<->thread, SimpleQueue",
        [
            Impl(
                "aiologic.SimpleQueue",
                thread_thread_pingpong(lib.SimpleQueue, "green_get", "put"),
            )
        ],
        [
            Impl("queue.Queue", thread_thread_pingpong(queue.Queue, "get", "put")),
            Impl(
                "queue.SimpleQueue",
                thread_thread_pingpong(queue.SimpleQueue, "get", "put"),
            ),
            thread_thread(),
        ],
        n0=500,
    )
    yield compare(
        "stream thread->thread, unbounded",
        [
            Impl(
                "aiologic.Queue()",
                thread_thread_stream(lib.Queue, "green_get", "green_put"),
            ),
            Impl(
                "aiologic.SimpleQueue",
                thread_thread_stream(lib.SimpleQueue, "green_get", "put"),
            ),
        ],
        [
            Impl("queue.Queue", thread_thread_stream(queue.Queue, "get", "put")),
            Impl(
                "queue.SimpleQueue",
                thread_thread_stream(queue.SimpleQueue, "get", "put"),
            ),
        ],
        n0=10_000,
    )

    yield compare(
        "stream thread->thread, Queue(1)",
        [
            Impl(
                "aiologic.Queue(1)",
                thread_thread_stream(
                    lambda: _Bounded(lib.Queue(maxsize=1), "green_put"),
                    "green_get",
                    "put",
                ),
            )
        ],
        [
            Impl(
                "queue.Queue(1)",
                thread_thread_stream(
                    lambda: _Bounded(queue.Queue(1), "put"), "get", "put"
                ),
            )
        ],
        n0=1000,
    )
    n = CFG.bulk_items
    yield compare(
        f"bulk thread->asyncio, {n:,} items",
        [
            Impl(
                "aiologic.SimpleQueue",
                thread_to_asyncio_stream_aiologic(lib.SimpleQueue, "put"),
            ),
            Impl(
                "aiologic.Queue()",
                thread_to_asyncio_stream_aiologic(lib.Queue, "green_put"),
            ),
        ],
        [
            Impl("stdlib bridge", thread_to_asyncio_bulk_bridge),
            *(
                Impl(f"{name}.Queue()", mixed_stream(mod, 0))
                for name, mod in mixed
                if mod
            ),
        ],
        fixed_n=n,
    )


class _Bounded:
    """A bounded queue whose `put` waits with the bench's deadline, and whose
    `get` is the queue's own: for thread_thread_stream."""

    __slots__ = ("get", "green_get", "put")

    def __init__(self, q: Any, put: str) -> None:
        put_ = getattr(q, put)
        deadline = CFG.deadline
        self.put = lambda item: put_(item, timeout=deadline)
        self.get = self.green_get = getattr(q, "green_get", None) or q.get


def janus_workload(make: Callable[[], Any], faces: str, join: bool) -> Measure:
    """janus's own benchmark (its tests/test_benchmarks.py), one op = one round.

    Without *join*: an executor thread puts 5 items, the task gets them. With
    *join*: the task puts 5 items, a second task gets and marks them done
    while the first awaits join(). *faces* says how the queue is called:
    "views" (``q.sync_q.put``, ``q.async_q.get``..., janus's own API, as our
    views give it) or "direct" (our ``green_put``, ``async_get``...).
    """

    def measure(n: int) -> float:
        async def main() -> float:
            q = make()
            if faces == "views":
                put, get = q.sync_q.put, q.async_q.get
                task_done, join_ = q.async_q.task_done, q.async_q.join
                empty = q.async_q.empty
            else:
                put, get = q.green_put, q.async_get
                task_done, join_, empty = q.task_done, q.async_join, q.empty
            loop = asyncio.get_running_loop()

            def threaded() -> None:
                for i in range(5):
                    put(i)

            async def do_work() -> None:
                while not empty():
                    await get()
                    task_done()

            try:
                t0 = perf_counter()
                for _ in range(n):
                    if join:
                        threaded()
                        task = asyncio.ensure_future(do_work())
                        await join_()
                        await task
                    else:
                        f = loop.run_in_executor(None, threaded)
                        for i in range(5):
                            if await get() != i:
                                raise AssertionError("out of order")
                        await f
                    if not empty():
                        raise AssertionError("items left")
                elapsed = perf_counter() - t0
            finally:
                await q.aclose()
            return elapsed

        return run_asyncio(main)

    return measure


def scenario_janus_workload() -> Iterator[list[Row]]:
    """janus's mixed thread <-> asyncio workload, through our sync_q/async_q.
    The published aiologic before these views and task_done/join has no
    anchor column here."""
    views = ("Queue.sync_q", "Queue.async_q", "Queue.aclose")
    direct = ("Queue.task_done", "Queue.async_join", "Queue.aclose")
    for join in (False, True):
        what = "sync put, async join" if join else "executor sync put, async get"
        yield compare(
            f"janus workload: {what}, rounds of 5",
            [
                Impl(
                    "aiologic.Queue() views",
                    janus_workload(lib.Queue, "views", join),
                    needs=views,
                ),
                Impl(
                    "aiologic.Queue() direct",
                    janus_workload(lib.Queue, "direct", join),
                    needs=direct,
                ),
            ],
            [Impl("janus.Queue()", janus_workload(janus.Queue, "views", join))]
            if janus
            else [],
            n0=50,
        )


# ============================================================== asyncio loop <-> asyncio loop


def loop_loop_pingpong(make: Callable[[], Any], mixed: bool = False) -> Measure:
    """Two loops in two threads bounce an item through two queues (aiologic's,
    or the `async_q` face of a janus-style one when `mixed`)."""

    def measure(n: int) -> float:
        to_b, to_a = make(), make()
        if mixed:
            b_in, a_in = to_b.async_q, to_a.async_q
            b_put, b_get, a_put, a_get = b_in.put, b_in.get, a_in.put, a_in.get
        else:
            b_put, b_get = to_b.async_put, to_b.async_get
            a_put, a_get = to_a.async_put, to_a.async_get
        ready = threading.Event()

        async def echo() -> None:
            ready.set()
            for _ in range(n):
                await a_put(await b_get())

        async def main() -> float:
            t0 = perf_counter()
            for i in range(n):
                await b_put(i)
                await a_get()
            return perf_counter() - t0

        worker = Worker(run_asyncio, echo)
        wait_event(ready)
        elapsed: float = run_asyncio(main)
        worker.join()
        return elapsed

    return measure


def loop_loop_pingpong_bridge(n: int) -> float:
    """stdlib: each loop owns an asyncio.Queue that the other feeds threadsafe."""
    a_side: Future[Any] = Future()
    b_side: Future[Any] = Future()

    async def echo() -> None:
        loop, inbox = asyncio.get_running_loop(), asyncio.Queue()  # type: ignore[var-annotated]
        b_side.set_result((loop, inbox))
        a_loop, a_inbox = await asyncio.wrap_future(a_side)
        for _ in range(n):
            a_loop.call_soon_threadsafe(a_inbox.put_nowait, await inbox.get())

    async def main() -> float:
        loop, inbox = asyncio.get_running_loop(), asyncio.Queue()  # type: ignore[var-annotated]
        a_side.set_result((loop, inbox))
        b_loop, b_inbox = await asyncio.wrap_future(b_side)
        t0 = perf_counter()
        for i in range(n):
            b_loop.call_soon_threadsafe(b_inbox.put_nowait, i)
            await inbox.get()
        return perf_counter() - t0

    worker = Worker(run_asyncio, echo)
    elapsed: float = run_asyncio(main)
    worker.join()
    return elapsed


def scenario_loop_loop() -> Iterator[list[Row]]:
    yield compare(
        "ping-pong loop<->loop, SimpleQueue",
        [Impl("aiologic.SimpleQueue", loop_loop_pingpong(lib.SimpleQueue))],
        [
            Impl("call_soon_threadsafe bridge", loop_loop_pingpong_bridge),
            floor("loop<->loop round trip", floor_loop_loop),
        ],
        n0=500,
    )
    yield compare(
        "ping-pong loop<->loop, Queue(1)",
        [Impl("aiologic.Queue(1)", loop_loop_pingpong(lambda: lib.Queue(maxsize=1)))],
        [
            *(
                [
                    Impl(
                        "culsans.Queue(1)",
                        loop_loop_pingpong(lambda: culsans.Queue(1), mixed=True),
                    )
                ]
                if culsans
                else []
            ),
            floor("loop<->loop round trip", floor_loop_loop),
        ],
        n0=500,
    )


# ============================================================== one loop


def asyncio_queue_pingpong(make: Callable[[], Any], put: str, get: str) -> Measure:
    """Two tasks of one loop bounce an item through two queues: one op = one
    round trip."""

    async def body(n: int) -> float:
        there, back = make(), make()  # in the loop (asyncio.Queue on 3.8/3.9)

        async def echo() -> None:
            put_, get_ = getattr(back, put), getattr(there, get)
            for _ in range(n):
                await put_(await get_())

        task = asyncio.ensure_future(echo())
        put_, get_ = getattr(there, put), getattr(back, get)
        t0 = perf_counter()
        for i in range(n):
            await put_(i)
            await get_()
        elapsed = perf_counter() - t0
        await task
        return elapsed

    return lambda n: run_asyncio(body, n)


def asyncio_queue_stream(make: Callable[[], Any], put: str, get: str) -> Measure:
    """A task puts n items into an unbounded queue (it never waits), another
    task of the same loop gets them: one op = one item."""

    async def body(n: int) -> float:
        q = make()

        async def produce() -> None:
            put_ = getattr(q, put)
            for i in range(n):
                await put_(i)

        get_ = getattr(q, get)
        t0 = perf_counter()
        task = asyncio.ensure_future(produce())
        for _ in range(n):
            await get_()
        elapsed = perf_counter() - t0
        await task
        return elapsed

    return lambda n: run_asyncio(body, n)


def asyncio_event_pingpong(
    factory: Callable[[], Any], wait: Callable[[Any], Awaitable[Any]]
) -> Measure:
    """A fresh event per hop between two tasks of one loop: one op = one
    round trip (a set -> wake each way)."""

    async def body(n: int) -> float:
        pings = [factory() for _ in range(n)]
        pongs = [factory() for _ in range(n)]

        async def echo() -> None:
            for ping, pong in zip(pings, pongs):
                await wait(ping)
                pong.set()

        task = asyncio.ensure_future(echo())
        t0 = perf_counter()
        for ping, pong in zip(pings, pongs):
            ping.set()
            await wait(pong)
        elapsed = perf_counter() - t0
        await task
        return elapsed

    return lambda n: run_asyncio(body, n)


def asyncio_condition_pingpong(
    factory: Callable[[], Any], wait: Callable[[Any], Awaitable[Any]]
) -> Measure:
    """Two tasks of one loop take turns under one condition: one op = one
    round trip (each task has had one turn)."""

    async def body(n: int) -> float:
        cv = factory()
        turn = [0]

        async def play(me: int, other: int) -> None:
            for _ in range(n):
                async with cv:
                    while turn[0] != me:
                        await wait(cv)
                    turn[0] = other
                    cv.notify()

        task = asyncio.ensure_future(play(1, 0))
        t0 = perf_counter()
        await play(0, 1)
        elapsed = perf_counter() - t0
        await task
        return elapsed

    return lambda n: run_asyncio(body, n)


def awaited(obj: Any) -> Awaitable[Any]:
    """An aiologic event or condition is waited for by awaiting it."""
    waitable: Awaitable[Any] = obj
    return waitable


def scenario_one_loop() -> Iterator[list[Row]]:
    yield compare(
        "Event ping-pong, 2 asyncio tasks, one-shot",
        [Impl("aiologic.Event", asyncio_event_pingpong(lib.Event, awaited))],
        [
            Impl(
                "asyncio.Event",
                asyncio_event_pingpong(asyncio.Event, lambda e: e.wait()),
            )
        ],
        n0=1000,
        n_max=200_000,
    )
    yield compare(
        "Condition ping-pong, 2 asyncio tasks",
        [
            Impl(
                "aiologic.Condition", asyncio_condition_pingpong(lib.Condition, awaited)
            )
        ],
        [
            Impl(
                "asyncio.Condition",
                asyncio_condition_pingpong(asyncio.Condition, lambda c: c.wait()),
            )
        ],
        n0=1000,
    )
    yield compare(
        "ping-pong 2 asyncio tasks, Queue(1)",
        [
            Impl(
                "aiologic.Queue(1)",
                asyncio_queue_pingpong(
                    lambda: lib.Queue(maxsize=1), "async_put", "async_get"
                ),
            )
        ],
        [
            Impl(
                "asyncio.Queue(1)",
                asyncio_queue_pingpong(lambda: asyncio.Queue(1), "put", "get"),
            )
        ],
        n0=1000,
    )
    yield compare(
        "stream 2 asyncio tasks, unbounded",
        [
            Impl(
                "aiologic.Queue()",
                asyncio_queue_stream(lib.Queue, "async_put", "async_get"),
            ),
            Impl(
                "aiologic.SimpleQueue",
                asyncio_queue_stream(lib.SimpleQueue, "async_put", "async_get"),
            ),
        ],
        [Impl("asyncio.Queue()", asyncio_queue_stream(asyncio.Queue, "put", "get"))],
        n0=10_000,
    )


# ============================================================== events and conditions


def event_oneshot_pingpong(factory: Callable[[], Any]) -> Measure:
    """A fresh event per hop: the main thread sets ping[i] and waits for pong[i],
    which the other thread sets once it has woken from ping[i]. One op = one
    round trip = two set -> wake hops across threads."""

    def measure(n: int) -> float:
        pings = [factory() for _ in range(n)]
        pongs = [factory() for _ in range(n)]
        ready = threading.Event()
        deadline = CFG.deadline

        def echo() -> None:
            ready.set()
            for ping, pong in zip(pings, pongs):
                got(ping.wait(deadline))
                pong.set()

        worker = Worker(echo)
        wait_event(ready)
        t0 = perf_counter()
        for ping, pong in zip(pings, pongs):
            ping.set()
            got(pong.wait(deadline))
        elapsed = perf_counter() - t0
        worker.join()
        return elapsed

    return measure


def event_reusable_pingpong(factory: Callable[[], Any]) -> Measure:
    """Two reusable events, each cleared by its waiter before it answers."""

    def measure(n: int) -> float:
        ping, pong = factory(), factory()
        ready = threading.Event()
        deadline = CFG.deadline

        def echo() -> None:
            ready.set()
            for _ in range(n):
                got(ping.wait(deadline))
                ping.clear()
                pong.set()

        worker = Worker(echo)
        wait_event(ready)
        t0 = perf_counter()
        for _ in range(n):
            ping.set()
            got(pong.wait(deadline))
            pong.clear()
        elapsed = perf_counter() - t0
        worker.join()
        return elapsed

    return measure


def condition_pingpong(factory: Callable[[], Any]) -> Measure:
    """Two threads take turns under one condition: wait for my turn, flip, notify.
    One op = one round trip (each thread has had one turn)."""

    def measure(n: int) -> float:
        cv = factory()
        turn = [0]
        ready = threading.Event()
        deadline = CFG.deadline

        def play(me: int, other: int) -> None:
            for _ in range(n):
                with cv:
                    while turn[0] != me:
                        got(cv.wait(deadline))
                    turn[0] = other
                    cv.notify()

        def second() -> None:
            ready.set()
            play(1, 0)

        worker = Worker(second)
        wait_event(ready)
        t0 = perf_counter()
        play(0, 1)
        elapsed = perf_counter() - t0
        worker.join()
        return elapsed

    return measure


def scenario_events() -> Iterator[list[Row]]:
    yield compare(
        "Event set->wake, 2 threads, one-shot",
        [Impl("aiologic.Event", event_oneshot_pingpong(lib.Event))],
        [
            Impl("threading.Event", event_oneshot_pingpong(threading.Event)),
            floor("thread<->thread round trip", floor_thread_thread),
        ],
        n0=500,
        n_max=200_000,
    )
    yield compare(
        "REvent set->wake, 2 threads, reused",
        [Impl("aiologic.REvent", event_reusable_pingpong(lib.REvent))],
        [Impl("threading.Event", event_reusable_pingpong(threading.Event))],
        n0=500,
    )
    yield compare(
        "Condition ping-pong, 2 threads",
        [Impl("aiologic.Condition", condition_pingpong(lib.Condition))],
        [Impl("threading.Condition", condition_pingpong(threading.Condition))],
        n0=500,
    )


# ============================================================== gevent and eventlet


def green_stream(library: str, make: Callable[[], Any], get: str, put: str) -> Measure:
    """A greenlet puts n items, the main greenlet gets them (gevent or eventlet).

    Each run is a fresh OS thread: its hub lives and dies with it, so the
    threads of the other scenarios never find a hub and stay plain threads."""

    def measure(n: int) -> float:
        deadline = CFG.deadline

        def run() -> float:
            mod = importlib.import_module(library)
            q = make()
            get_, put_ = getattr(q, get), getattr(q, put)

            def produce() -> None:
                for i in range(n):
                    put_(i, timeout=deadline)

            t0 = perf_counter()
            producer = mod.spawn(produce)
            try:
                for _ in range(n):
                    get_(timeout=deadline)
                elapsed = perf_counter() - t0
            finally:
                if library == "gevent":
                    producer.join(deadline)
                    mod.get_hub().destroy(destroy_loop=True)
                else:
                    producer.wait()
            return elapsed

        return float(Worker(run).join())

    return measure


def green_queue(library: str, maxsize: int) -> Callable[[], Any]:
    def make() -> Any:
        return importlib.import_module(f"{library}.queue").Queue(maxsize or None)

    return make


def scenario_green_libraries() -> Iterator[list[Row]]:
    for library in ("gevent", "eventlet"):
        if optional_import(library) is None:
            continue
        sizes = (
            [("Queue()", 0), ("Queue(1)", 1)]
            if library == "gevent"
            else [("Queue()", 0)]
        )
        for label, maxsize in sizes:
            yield compare(
                f"stream 2 {library} greenlets, {label}",
                [
                    Impl(
                        f"aiologic.{label}",
                        green_stream(
                            library,
                            (lambda: lib.Queue(maxsize=1)) if maxsize else lib.Queue,
                            "green_get",
                            "green_put",
                        ),
                    )
                ],
                [
                    Impl(
                        f"{library}.queue.Queue({maxsize or ''})",
                        green_stream(
                            library, green_queue(library, maxsize), "get", "put"
                        ),
                    )
                ],
                n0=1000,
            )


# ============================================================== import time


BACKENDS = ("asyncio", "trio", "anyio", "sniffio", "gevent", "eventlet", "greenlet")

IMPORT_PROBE = """
import sys, time
t0 = time.perf_counter()
import {module}
t1 = time.perf_counter()
print(t1 - t0)
print(",".join(m for m in {backends!r} if m in sys.modules))
"""


def import_once(module: str) -> tuple[float, str]:
    code = IMPORT_PROBE.format(module=module, backends=BACKENDS)
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with bytecode cached
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=HERE,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CFG.deadline,
        check=True,
    ).stdout.split("\n")
    return float(out[0]), out[1]


def scenario_import() -> Iterator[list[Row]]:
    """Milliseconds to import a module in a fresh interpreter (bytecode cached),
    compared with what an asyncio/janus/trio user pays anyway."""
    title = "import in a fresh process"
    if not wanted(title):
        return
    modules = ["aiologic", "asyncio"]
    if janus is not None:
        modules.append("janus")
    if trio is not None:
        modules.append("trio")
    times: dict[str, list[float]] = {m: [] for m in modules}
    errors: dict[str, str] = {}
    loaded = ""
    runs = 5 if CFG.quick else 11
    for i in range(runs + 1):
        for module in modules:
            if module in errors:
                continue
            try:
                seconds, imported = import_once(module)
            except Exception as exc:
                errors[module] = describe(exc)
                continue
            if i == 0:  # warm-up: writes bytecode caches
                if module == "aiologic":
                    loaded = imported
                continue
            times[module].append(seconds * 1000)

    def ms(module: str) -> float | None:
        return statistics.median(times[module]) if times[module] else None

    note = "`import aiologic` imported these backends: " + (loaded or "none")
    yield [
        Row(
            title,
            "import aiologic",
            f"import {module}",
            ms("aiologic"),
            ms(module),
            unit="ms",
            ours_error=errors.get("aiologic"),
            baseline_error=errors.get(module),
            note=note,
        )
        for module in modules[1:]
    ]


# ============================================================== memory


def bytes_per_instance(factory: Callable[[], Any], count: int = 2000) -> float:
    import tracemalloc

    keep: list[Any] = [None] * count
    keep[0] = factory()  # warm-up: class-level caches, lazy imports
    gc.collect()
    tracemalloc.start()
    try:
        if not tracemalloc.is_tracing():
            raise RuntimeError("tracemalloc is not supported here")
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            keep[i] = factory()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / count


def scenario_memory() -> Iterator[list[Row]]:
    """Bytes per fresh instance, measured inside a running loop for asyncio."""
    title = "memory per fresh instance"
    if not wanted(title):
        return
    try:
        import tracemalloc  # noqa: F401
    except ImportError:  # PyPy has no tracemalloc
        yield [Row(title, "aiologic", "-", unit="B", ours_error="no tracemalloc here")]
        return
    Factory = Callable[[], Any]
    pairs: list[tuple[str, Factory, list[tuple[str, Factory]]]] = [
        (
            "Lock",
            lib.Lock,
            [("threading.Lock", threading.Lock), ("asyncio.Lock", asyncio.Lock)],
        ),
        (
            "Event",
            lib.Event,
            [("threading.Event", threading.Event), ("asyncio.Event", asyncio.Event)],
        ),
        (
            "Queue",
            lib.Queue,
            [("queue.Queue", queue.Queue), ("asyncio.Queue", asyncio.Queue)]
            + ([("janus.Queue", lambda: janus.Queue())] if janus else []),
        ),
        ("SimpleQueue", lib.SimpleQueue, [("queue.SimpleQueue", queue.SimpleQueue)]),
    ]

    def measure(factory: Factory) -> tuple[float | None, str | None]:
        try:
            return bytes_per_instance(factory), None
        except Exception as exc:
            return None, describe(exc)

    async def main() -> list[Row]:
        rows = []
        for name, ours, baselines in pairs:
            mine, mine_error = measure(ours)
            for base_name, base in baselines:
                value, error = measure(base)
                rows.append(
                    Row(
                        title,
                        f"aiologic.{name}",
                        base_name,
                        mine,
                        value,
                        unit="B",
                        ours_error=mine_error,
                        baseline_error=error,
                    )
                )
        return rows

    yield run_asyncio(main)


# ============================================================== main

SCENARIOS: list[Callable[[], Iterator[list[Row]]]] = [
    scenario_uncontended,
    scenario_contended,
    scenario_thread_queues,
    scenario_janus_workload,
    scenario_loop_loop,
    scenario_one_loop,
    scenario_events,
    scenario_green_libraries,  # last: importing gevent and eventlet is slow
    scenario_import,
    scenario_memory,
]


def fmt_value(value: float | None, unit: str, error: str | None) -> str:
    if error is not None:
        return f"n/a (error: {error.split(':')[0]})"
    if value is None:
        return "n/a"
    if unit == "ops/s":
        for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if value >= scale:
                return f"{value / scale:.2f}{suffix}"
        return f"{value:.0f}"
    if unit == "ms":
        return f"{value:.2f} ms"
    return f"{value:.0f} {unit}"


def fmt_ratio(row: Row) -> tuple[str, str, str]:
    """The median paired ratio, its quartiles, and "noise" when they straddle 1."""
    ratio = row.ratio
    if ratio is None:
        return "", "", ""
    q = row.quartiles
    spread = "" if q is None else f"{q[0]:.2f}-{q[1]:.2f}"
    return f"{ratio:.2f}", spread, "noise" if row.noise else ""


LEGEND = """\
One op: one acquire+release (uncontended, contended); one hand-off between the
threads (3-lock ring: each thread holds a lock, takes the next one of three, then
drops the one it held, so every acquire waits for the other thread); one round
trip of an item (ping-pong), of a set->wake each way (events) or of a turn each
(Condition); one item (stream, bulk: a producer puts, a consumer gets); one
cancelled waiter (cancel). "stdlib bridge": asyncio.Queue fed through
loop.call_soon_threadsafe one way, queue.Queue the other way. "floor: ...": a
minimal reference implementation (see bench.py), the least such a primitive
can cost. "anchor ...": the published aiologic, run in its own environment.
quartiles: of the paired ratios (one per interleaved repeat); "noise": they
straddle 1, so this run shows no difference."""


def table_cells(rows: Sequence[Row], repeat_scenario: bool) -> list[list[str]]:
    cells = []
    last = None
    for row in rows:
        cells.append(
            [
                row.scenario if repeat_scenario or row.scenario != last else "",
                row.ours,
                fmt_value(row.ours_value, row.unit, row.ours_error),
                row.baseline,
                fmt_value(row.baseline_value, row.unit, row.baseline_error),
                *fmt_ratio(row),
            ]
        )
        last = row.scenario
    return cells


def format_rows(rows: Sequence[Row], columns: Sequence[str]) -> list[str]:
    cells = [line[: len(columns)] for line in table_cells(rows, repeat_scenario=False)]
    widths = [
        max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(widths[i]) if i in (2, 4, 5, 6) else v.ljust(widths[i])
            for i, v in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    return [line(columns), line(["-" * w for w in widths])] + [line(c) for c in cells]


SPEED_COLUMNS = ("scenario", "ours", "ops/s", "baseline", "ops/s", "ratio")
SIZE_COLUMNS = ("cost", "ours", "value", "baseline", "value", "ratio")
SPREAD_COLUMNS = ("quartiles", "")


def summary(rows: Sequence[Row]) -> list[str]:
    """Each scenario's distance to its floor, and where the anchor is faster."""
    lines = []
    floors = [row for row in rows if row.kind == "floor" and row.ratio is not None]
    if floors:
        lines.append("Distance to the floors (ours/floor; 1.00 = at the floor):")
        for row in floors:
            ratio, spread, noise = fmt_ratio(row)
            lines.append(
                f"  {row.scenario}: {row.ours} at {ratio}x "
                f"{row.baseline[len('floor: ') :]} ({spread}) {noise}".rstrip()
            )
    anchors = [row for row in rows if row.kind == "anchor" and row.ratio is not None]
    if anchors:
        worse = [row for row in anchors if not row.noise and (row.ratio or 0) < 1]
        lines.append(
            f"Against the anchor: {len(anchors)} rows, "
            f"{sum(1 for r in anchors if r.noise)} within noise, "
            f"{len(worse)} slower beyond noise" + (":" if worse else ".")
        )
        for row in worse:
            ratio, spread, _ = fmt_ratio(row)
            lines.append(f"  {row.scenario}: {row.ours} {ratio}x ({spread})")
    return lines


def errors_of(rows: Sequence[Row]) -> list[str]:
    errors: dict[str, None] = {}
    for row in rows:
        for name, error in (
            (row.ours, row.ours_error),
            (row.baseline, row.baseline_error),
        ):
            if error is not None:
                errors.setdefault(f"{row.scenario} / {name}: {error}", None)
    return list(errors)


def print_report(rows: Sequence[Row], header: str) -> None:
    print(header)
    speed = [row for row in rows if row.unit == "ops/s"]
    size = [row for row in rows if row.unit != "ops/s"]
    if speed:
        print()
        print("\n".join(format_rows(speed, SPEED_COLUMNS + SPREAD_COLUMNS)))
        print("(ratio = ours/baseline, higher is better)")
    if size:
        print()
        print("\n".join(format_rows(size, SIZE_COLUMNS)))
        print("(ratio = ours/baseline, lower is better)")
    lines = summary(rows)
    if lines:
        print()
        print("\n".join(lines))
    for note in sorted({row.note for row in rows if row.note}):
        print(f"note: {note}")
    errors = errors_of(rows)
    if errors:
        print("errors:")
        for text in errors:
            print(f"  {text}")
    print()
    print(LEGEND)


def rst_text(text: str) -> str:
    """Cell text for reStructuredText: `code` becomes ``code``, * escaped."""
    return text.replace("``", "`").replace("`", "``").replace("*", "\\*")


def rst_table(rows: Sequence[Row], columns: Sequence[str]) -> list[str]:
    """A grid table whose scenario cell spans the rows of its scenario."""
    cells = [
        [rst_text(cell) for cell in line[: len(columns)]]
        for line in table_cells(rows, repeat_scenario=False)
    ]
    widths = [
        max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)
    ]

    def rule(char: str, span_first: bool = False) -> str:
        parts = [char * (w + 2) for w in widths]
        if span_first:
            return "|" + " " * (widths[0] + 2) + "+" + "+".join(parts[1:]) + "+"
        return "+" + "+".join(parts) + "+"

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"

    out = [rule("-"), line(columns), rule("=")]
    for i, values in enumerate(cells):
        out.append(line(values))
        spans = i + 1 < len(cells) and not cells[i + 1][0]
        out.append(rule("-", span_first=spans))
    return out


def print_rst(rows: Sequence[Row], meta: dict[str, Any]) -> None:
    """The README's tables, with the machine and the interpreter named."""
    title = f"{meta['implementation']} {meta['python']}"
    print(title)
    print("-" * len(title))
    print()
    anchor = meta.get("anchor")
    print(
        f"``{'pypy3' if meta['implementation'] == 'PyPy' else 'python'} bench.py"
        f"{' --quick' if meta['quick'] else ''} --rst``"
        f"{' (with the anchor)' if anchor else ''}: aiologic {meta['aiologic']}"
        f" on {meta['implementation']} {meta['python']}, {meta['platform']},"
        f" {meta['cpus']} CPUs ({meta['cpu']});"
        f" {'quick run, ' if meta['quick'] else ''}{meta['repeats']} interleaved"
        f" repeats{', each scenario in a fresh process' if meta['isolated'] else ''};"
        f" took {meta['seconds']} s."
        + (f" Anchor: aiologic {anchor}." if anchor else "")
    )
    speed = [row for row in rows if row.unit == "ops/s"]
    size = [row for row in rows if row.unit != "ops/s"]
    if speed:
        print()
        print("\n".join(rst_table(speed, (*SPEED_COLUMNS, "quartiles", "note"))))
    if size:
        print()
        print("\n".join(rst_table(size, SIZE_COLUMNS)))
    # A list, not a literal block: README's literal blocks are code it runs.
    for line in summary(rows):
        if line.startswith("  "):
            print(f"* {rst_text(line.strip())}")
        else:
            print()
            print(rst_text(line))
            print()
    notes = sorted({row.note for row in rows if row.note})
    errors = errors_of(rows)
    if notes or errors:
        print()
        for text in notes + [f"error: {e}" for e in errors]:
            print(f"* {rst_text(text)}")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run_scenarios(json_out: bool) -> list[Row]:
    """Every wanted scenario, in this process."""
    rows: list[Row] = []
    for scenario in SCENARIOS:
        try:
            for group in scenario():
                if not group:
                    continue
                rows.extend(group)
                if not json_out:
                    print(f"  done: {group[0].scenario}", file=sys.stderr)
        except Exception as exc:  # a broken scenario must not stop the others
            name = scenario.__name__.replace("scenario_", "")
            rows.append(Row(name, "aiologic", "-", ours_error=describe(exc)))
    return rows


def run_isolated(argv: Sequence[str], json_out: bool) -> tuple[list[Row], Any]:
    """Every wanted scenario in a fresh process of this interpreter (with its
    own anchor process): a JIT's state left by one scenario's code, ours or
    a baseline's, then weighs on no other. The anchor's meta, or None."""
    CFG.listing = True
    for scenario in SCENARIOS:
        try:
            for _ in scenario():
                pass
        except Exception:  # pragma: no cover - reported when it runs
            pass
    CFG.listing = False
    titles = [t for t in CFG.titles if CFG.filter.lower() in t.lower()]
    CFG.matched = bool(titles)
    rows: list[Row] = []
    anchor = None
    names = {f.name for f in fields(Row)}
    said: set[str] = set()  # the children's messages ("bench.py: no anchor ..."), once
    for title in titles:
        argv_one = [sys.executable, os.path.join(HERE, "bench.py"), *argv]
        argv_one += ["--json", "--no-isolate", "--exact", title]
        proc = subprocess.run(
            argv_one, cwd=HERE, capture_output=True, text=True, check=False
        )
        for line in proc.stderr.splitlines():
            if line.startswith("bench.py:") and line not in said:
                said.add(line)
                print(line, file=sys.stderr)
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            error = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            rows.append(Row(title, "aiologic", "-", ours_error=error))
            continue
        anchor = anchor or result["meta"]["anchor"]
        for data in result["rows"]:
            rows.append(Row(**{k: v for k, v in data.items() if k in names}))
        if not json_out:
            print(f"  done: {title}", file=sys.stderr)
    return rows, anchor


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a ~1 min run")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON, not a table")
    out.add_argument("--rst", action="store_true", help="print README's tables")
    parser.add_argument(
        "-k", dest="filter", default="", help="only scenarios whose name has this"
    )
    parser.add_argument(
        "--anchor",
        metavar="PYTHON",
        default=os.environ.get("BENCH_ANCHOR_PYTHON", ""),
        help="the interpreter of an environment with the published aiologic"
        " (default: $BENCH_ANCHOR_PYTHON; none: no anchor column)",
    )
    isolate = parser.add_mutually_exclusive_group()
    isolate.add_argument(
        "--isolate",
        action="store_true",
        default=None,
        help="each scenario in a fresh process (default on PyPy: its JIT)",
    )
    isolate.add_argument("--no-isolate", dest="isolate", action="store_false")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--exact", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    CFG.filter = args.filter
    CFG.exact = args.exact
    if args.isolate is None:
        args.isolate = platform.python_implementation() == "PyPy"
    if args.quick:
        CFG.quick = True
        CFG.target = 0.08
        CFG.repeats = 5
        CFG.bulk_items = 20_000
        CFG.deadline = 10.0
    if args.serve:
        return serve()
    if args.isolate:
        child_argv = ["--quick"] if args.quick else []
        child_argv += ["--anchor", args.anchor]
        t_start = perf_counter()
        rows, anchor = run_isolated(child_argv, args.json)
        return report(args, rows, anchor, t_start)
    if args.anchor:
        try:
            CFG.peer = Peer(args.anchor)
        except Exception as exc:
            print(f"bench.py: no anchor ({describe(exc)})", file=sys.stderr)
    here = f"{platform.python_implementation()} {platform.python_version()}"
    if (
        CFG.peer is not None
        and CFG.peer.python.rsplit(".", 1)[0] != here.rsplit(".", 1)[0]
    ):
        # Ratios across interpreters would measure the interpreters.
        print(
            f"bench.py: no anchor (it runs {CFG.peer.python}, this is {here})",
            file=sys.stderr,
        )
        CFG.peer.close()
        CFG.peer = None

    t_start = perf_counter()
    try:
        rows = run_scenarios(args.json)
    finally:
        if CFG.peer is not None:
            CFG.peer.close()
    peer = CFG.peer
    anchor = None if peer is None else f"{peer.version} on {peer.python}"
    return report(args, rows, anchor, t_start)


def report(args: Any, rows: list[Row], anchor: str | None, t_start: float) -> int:
    if not CFG.matched:
        print(
            f"bench.py: no scenario matches -k {CFG.filter!r}; the scenarios:",
            file=sys.stderr,
        )
        for title in CFG.titles:
            print(f"  {title}", file=sys.stderr)
        return 2

    meta = {
        "aiologic": getattr(aiologic, "__version__", "?"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "cpu": cpu_model(),
        "quick": CFG.quick,
        "repeats": CFG.repeats,
        "trio": getattr(trio, "__version__", None),
        "janus": getattr(janus, "__version__", None) if janus else None,
        "anchor": anchor,
        "seconds": round(perf_counter() - t_start, 1),
        "isolated": bool(args.isolate),
    }
    if args.json:
        out_rows = [
            dict(asdict(row), ratio=row.ratio, quartiles=row.quartiles, noise=row.noise)
            for row in rows
        ]
        json.dump({"meta": meta, "rows": out_rows}, sys.stdout, indent=2)
        print()
    elif args.rst:
        print_rst(rows, meta)
    else:
        header = (
            f"aiologic {meta['aiologic']} on {meta['implementation']} "
            f"{meta['python']} ({meta['platform']}, {meta['cpus']} CPUs); "
            f"median of {CFG.repeats} interleaved runs; took {meta['seconds']} s"
        )
        if args.isolate:
            header += "; each scenario in a fresh process"
        if anchor is not None:
            header += f"; anchor: aiologic {meta['anchor']}"
        print_report(rows, header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
