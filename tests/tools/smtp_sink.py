"""A real SMTP server for the tests (aiosmtpd): every message it receives is written to
<dir>/<n>.eml with an X-Envelope-To header first. Prints "ready" once listening and stops
when its standard input closes.

Usage: smtp_sink.py PORT DIR
"""
import pathlib
import sys
import uuid

from aiosmtpd.controller import Controller


class Keep:
    def __init__(self, directory):
        self.directory = pathlib.Path(directory)

    async def handle_DATA(self, server, session, envelope):
        name = uuid.uuid4().hex
        tmp = self.directory / f"{name}.tmp"
        head = ("X-Envelope-To: " + ",".join(envelope.rcpt_tos) + "\r\n").encode()
        tmp.write_bytes(head + envelope.original_content)
        tmp.rename(self.directory / f"{name}.eml")
        return "250 OK"


port, directory = int(sys.argv[1]), sys.argv[2]
controller = Controller(Keep(directory), hostname="127.0.0.1", port=port)
controller.start()
print("ready", flush=True)
try:
    sys.stdin.read()
finally:
    controller.stop()
