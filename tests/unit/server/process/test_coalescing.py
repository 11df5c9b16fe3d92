"""A connection's writes of one event loop turn leave in one write, in order."""

from __future__ import annotations

import asyncio

from modelport.server.process.coalescing import CoalescingTransport


class Recorded(asyncio.Transport):
    """A transport that records what reaches it, one entry per call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.calls.append(("write", bytes(data)))

    def writelines(self, list_of_data: object) -> None:
        self.calls.append(("writelines", b"".join(list_of_data)))  # type: ignore[arg-type]

    def write_eof(self) -> None:
        self.calls.append(("eof", b""))

    def close(self) -> None:
        self.calls.append(("close", b""))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", b""))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


def test_headers_and_body_written_in_one_turn_leave_as_one_call() -> None:
    async def scenario() -> list[tuple[str, bytes]]:
        inner = Recorded()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b'{"predictions": [1]}')
        assert inner.calls == []  # held until the turn ends
        assert transport.get_write_buffer_size() == 39
        await asyncio.sleep(0)
        transport.write(b"next turn")
        await asyncio.sleep(0)
        return inner.calls

    calls = asyncio.run(scenario())
    assert calls == [
        ("writelines", b'HTTP/1.1 200 OK\r\n\r\n{"predictions": [1]}'),
        ("write", b"next turn"),
    ]


def test_close_and_write_eof_send_what_is_held_first_and_abort_drops_it() -> None:
    async def scenario() -> tuple[list[tuple[str, bytes]], ...]:
        loop = asyncio.get_running_loop()
        closed, ended, aborted = Recorded(), Recorded(), Recorded()
        for inner, end in ((closed, "close"), (ended, "write_eof"), (aborted, "abort")):
            transport = CoalescingTransport(inner, loop)
            transport.write(b"answer")
            getattr(transport, end)()
        await asyncio.sleep(0)  # the turn's send finds nothing left to send
        return closed.calls, ended.calls, aborted.calls

    closed, ended, aborted = asyncio.run(scenario())
    assert closed == [("write", b"answer"), ("close", b"")]
    assert ended == [("write", b"answer"), ("eof", b"")]
    assert aborted == [("abort", b"")]


def test_nothing_is_written_to_a_transport_that_closed_meanwhile() -> None:
    async def scenario() -> list[tuple[str, bytes]]:
        inner = Recorded()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())
        transport.write(b"answer")
        inner.closing = True  # the peer went away
        await asyncio.sleep(0)
        return inner.calls

    assert asyncio.run(scenario()) == []
