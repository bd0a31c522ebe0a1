"""Read ahead: fetch the next page in a background thread while the current one is planned and written, so
reading (3 GetFindings/s) overlaps Jira writes. At most `depth` pages wait in memory; stopping early (graceful
stop, an error downstream) stops the reader too."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(source: Iterator[T], depth: int = 1) -> Generator[T, None, None]:
    """Yield what `source` yields, fetched up to `depth` items ahead in another thread."""
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in source:
                if not put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(_Failure(exc))
            return
        put(_DONE)

    thread = threading.Thread(target=read, name="sh2jira-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=5)


class Ended:
    """`merged` yields this for a source that has run out (every item it had was yielded before)."""


class Failed:
    """`merged` yields this for a source that raised: only that source stops, the others go on."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def merged(sources: dict[str, Iterator[T]], depth: int = 1) -> Generator[tuple[str, T | Ended | Failed], None, None]:
    """Read every source in a thread of its own and yield `(name, item)` in the order items arrive.

    Why: each Security Hub scope (account + region) has its own GetFindings quota, so reading the scopes one
    after another leaves all but one idle. Each source's items keep their order; a source is at most `depth`
    items ahead of the consumer (a slot is given back when the consumer asks for the next item), so memory stays
    at a page or two per source. A source that raises yields `Failed` and stops alone; each source ends with
    `Ended`. Closing the generator early (graceful stop) stops every reader."""
    arrived: queue.Queue[tuple[str, object]] = queue.Queue()
    stop = threading.Event()
    slots = {name: threading.Semaphore(depth) for name in sources}

    def read(name: str, source: Iterator[T]) -> None:
        slot = slots[name]
        try:
            for item in source:
                while not slot.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                arrived.put((name, item))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, for this source alone
            arrived.put((name, Failed(exc)))
            return
        finally:
            close = getattr(source, "close", None)
            if callable(close) and stop.is_set():
                close()
        arrived.put((name, Ended()))

    threads = [threading.Thread(target=read, args=(name, source), name=f"sh2jira-read-{name}", daemon=True)
               for name, source in sources.items()]
    for t in threads:
        t.start()
    running = len(threads)
    held: str | None = None  # the source whose item the consumer holds: its slot is given back on the next ask
    try:
        while running:
            if held is not None:
                slots[held].release()
                held = None
            name, item = arrived.get()
            if isinstance(item, (Ended, Failed)):
                running -= 1
            else:
                held = name
            yield name, item  # type: ignore[misc]
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)
