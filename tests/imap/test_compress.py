"""COMPRESS=DEFLATE (RFC 4978): both directions deflated after the command, pipelined
input, corrupt streams, and bounded memory for input that inflates enormously."""

from __future__ import annotations

import zlib
from typing import Any

from a3mail.imap import server as imap_server
from a3mail.imap.states import State
from tests.imap.support import MESSAGE, PASSWORD, ImapTestCase, tagged
from tests.imap.test_sockets import USER, SocketTestCase, raw_login
from tests.store.helpers import in_thread


class Client:
    """The client's side of the two deflate streams."""

    def __init__(self) -> None:
        self.out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflater = zlib.decompressobj(-15)

    def pack(self, data: bytes) -> bytes:
        return self.out.compress(data) + self.out.flush(zlib.Z_SYNC_FLUSH)

    def unpack(self, data: bytes) -> bytes:
        return self.inflater.decompress(data)


class CompressTests(ImapTestCase):
    async def compressed_session(self, extra: bytes = b"") -> tuple[Any, Client, bytes]:
        proto = await self.session()
        client = Client()
        out = await self.send(proto, b"z COMPRESS DEFLATE\r\n" + extra)
        head, _, rest = out.partition(b"z OK DEFLATE active\r\n")
        self.assertEqual(head, b"")
        return proto, client, rest

    async def test_both_directions_are_deflated(self) -> None:
        await self.deliver()
        proto, client, _ = await self.compressed_session()
        out = await self.send(proto, client.pack(b"a UID FETCH 1 BODY.PEEK[]\r\n"))
        self.assertNotIn(b"FETCH", out)  # compressed on the wire
        plain = client.unpack(out)
        self.assertIn(b"BODY[] {%d}\r\n%s)\r\n" % (len(MESSAGE), MESSAGE), plain)
        self.assertEqual(tagged(plain, b"a"), b"OK FETCH completed")
        plain = client.unpack(await self.send(proto, client.pack(b"b COMPRESS DEFLATE\r\n")))
        self.assertEqual(plain, b"b NO [COMPRESSIONACTIVE] Already compressing\r\n")
        plain = client.unpack(await self.send(proto, client.pack(b"c CAPABILITY\r\n")))
        self.assertNotIn(b"COMPRESS=DEFLATE", plain)

    async def test_input_pipelined_after_the_command_is_compressed_input(self) -> None:
        client = Client()
        proto, client, rest = await self.compressed_session(client.pack(b"a NOOP\r\n"))
        self.assertEqual(client.unpack(rest), b"a OK NOOP completed\r\n")
        plain = client.unpack(await self.send(proto, client.pack(b"b NOOP\r\n")))
        self.assertEqual(plain, b"b OK NOOP completed\r\n")

    async def test_offered_only_after_login(self) -> None:
        proto, _ = self.connect()
        proto.secure = True
        out = await self.send(proto, b"c CAPABILITY\r\nz COMPRESS DEFLATE\r\n")
        self.assertNotIn(b"COMPRESS=DEFLATE", out)
        self.assertTrue(tagged(out, b"z").startswith(b"BAD"), out)
        out = await self.send(proto, f'l LOGIN {USER} "{PASSWORD}"\r\nc CAPABILITY\r\n'.encode())
        self.assertIn(b" COMPRESS=DEFLATE", out)
        out = await self.send(proto, b"y COMPRESS GZIP\r\n")
        self.assertTrue(tagged(out, b"y").startswith(b"BAD"), out)

    async def test_corrupt_stream_ends_the_session(self) -> None:
        proto, client, _ = await self.compressed_session()
        out = await self.send(proto, b"\xff\xff\xff\xff not deflate")
        self.assertEqual(client.unpack(out), b"* BYE Invalid compressed data\r\n")
        self.assertIs(proto.phase, State.LOGOUT)
        self.flushLoggedErrors()

    async def test_input_that_inflates_enormously_stays_bounded(self) -> None:
        """64 MB of one long line in ~64 KB of deflate: inflated a chunk at a time, never
        more than MAX_BUFFERED plus one chunk buffered; the line is refused."""
        proto, client, _ = await self.compressed_session()
        biggest = [0]
        feed = proto.reader.feed

        def spying(data: bytes) -> None:
            feed(data)
            biggest[0] = max(biggest[0], len(proto.reader))

        self.patch(proto.reader, "feed", spying)
        bomb = client.pack(b"a " + b"x" * (64 * 1024 * 1024))
        self.assertLess(len(bomb), 100_000)
        out = client.unpack(await self.send(proto, bomb + client.pack(b"\r\nb NOOP\r\n")))
        self.assertLessEqual(biggest[0], imap_server.MAX_BUFFERED + 64 * 1024)
        self.assertIn(b" BAD ", out)
        self.flushLoggedErrors()


class CompressSocketTests(SocketTestCase):
    async def test_a_compressed_session_over_a_socket(self) -> None:
        await self.deliver()
        port = self.ports["imap"]

        def client() -> bytes:
            sock, reader = raw_login(port, b"b COMPRESS DEFLATE\r\n")
            line = b""
            while not line.startswith(b"b "):
                line = reader.readline()
            assert line == b"b OK DEFLATE active\r\n", line
            zip_ = Client()
            sock.sendall(zip_.pack(b"c SELECT INBOX\r\nd FETCH 1 BODY.PEEK[]\r\ne LOGOUT\r\n"))
            received = b""
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                received += zip_.unpack(data)
            sock.close()
            return received

        received = await in_thread(client)
        self.assertIn(b"c OK [READ-WRITE] SELECT completed\r\n", received)
        self.assertIn(MESSAGE, received)
        self.assertTrue(received.endswith(b"e OK LOGOUT completed\r\n"), received[-200:])
