"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, each received
message written to <dir>/<n>.eml with its envelope recipients in an
`X-Envelope-To` header.

    python3 tests/support/smtp_sink.py <dir>

The port comes from the OS and is held from the start: the script binds
port 0, prints `port <n>`, and keeps the socket bound but not listening
(connections are refused: an SMTP server that is down) until a line arrives
on standard input. Then it listens on that same socket, prints `ready`, and
serves until standard input closes or it is killed. No other process can
take the port in between.
"""
import asyncio
import itertools
import pathlib
import socket
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, directory: pathlib.Path):
        self.directory = directory
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        header = f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n".encode()
        tmp = self.directory / f".{n:06}.tmp"
        tmp.write_bytes(header + envelope.original_content)
        tmp.rename(self.directory / f"{n:06}.eml")  # atomic: readers never see half a message
        return "250 Message accepted for delivery"


async def serve(sock: socket.socket, directory: pathlib.Path) -> None:
    loop = asyncio.get_running_loop()
    handler = Sink(directory)
    server = await loop.create_server(lambda: SMTP(handler, hostname="127.0.0.1"), sock=sock)
    print("ready", flush=True)
    # Serve until the test closes our standard input (or kills us).
    await loop.run_in_executor(None, sys.stdin.readline)
    server.close()


def main() -> None:
    directory = pathlib.Path(sys.argv[1])
    directory.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    print(f"port {sock.getsockname()[1]}", flush=True)
    if not sys.stdin.readline():
        return  # the test ended before asking us to listen
    asyncio.run(serve(sock, directory))


if __name__ == "__main__":
    main()
