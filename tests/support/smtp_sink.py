"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1:<port>, each
received message written to <dir>/<n>.eml with its envelope recipients
in an `X-Envelope-To` header. Runs until killed.

    python3 tests/support/smtp_sink.py <port> <dir>
"""
import asyncio
import itertools
import pathlib
import sys

from aiosmtpd.controller import Controller


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


def main() -> None:
    port, directory = int(sys.argv[1]), pathlib.Path(sys.argv[2])
    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
