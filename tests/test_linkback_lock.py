"""The link-back write lock: the scopes' drains share it, a closure write has it alone and goes first."""

from __future__ import annotations

import threading

from sh2jira.linkback import WriteLock


def test_drains_share_the_lock_and_a_closure_write_waits_for_the_calls_in_flight() -> None:
    lock = WriteLock()
    inside, release = threading.Event(), threading.Event()
    order: list[str] = []

    def drain(name: str) -> None:
        with lock.shared():
            order.append(f"{name} in")
            inside.set()
            release.wait(5)
            order.append(f"{name} out")

    drains = [threading.Thread(target=drain, args=(n,)) for n in ("a", "b")]
    for t in drains:
        t.start()
    while order.count("a in") + order.count("b in") < 2:  # both drains inside at once: shared
        inside.wait(0.01)

    def closure() -> None:
        with lock:
            order.append("closure")

    writer = threading.Thread(target=closure)
    writer.start()
    writer.join(0.2)
    assert "closure" not in order  # waits for the link-backs in flight
    late = threading.Thread(target=drain, args=("c",))
    late.start()
    late.join(0.2)
    assert "c in" not in order  # a new link-back waits behind the closure write
    release.set()
    for t in (*drains, writer, late):
        t.join(5)
    assert order.index("closure") > max(order.index("a out"), order.index("b out"))
    assert order.index("c in") > order.index("closure")
