"""CHUNKING (RFC 3030): BDAT chunks are exact byte counts, stored byte for byte, never run
as commands; limits, refusals and resets; the chunk stuffer in isolation."""

from __future__ import annotations

import socket

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase

from a3mail.smtp.chunking import ChunkedMessage, parse_bdat
from a3mail.smtp.data import DataReceiver
from tests.smtp.support import SmtpTestCase, simple_message
from tests.store.helpers import in_thread


class _Sink:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data


class ChunkedMessageTests(SynchronousTestCase):
    def chunked(self) -> tuple[ChunkedMessage, _Sink]:
        sink = _Sink()
        receiver = DataReceiver(
            sink, max_size=10**6, max_line=1000, authserv_id="mx", drop_forged=True
        )
        return ChunkedMessage(receiver), sink

    def test_bytes_come_out_as_they_went_in_however_split(self) -> None:
        message = b"Subject: x\r\n\r\n.\r\n..two\r\n.\r\nMAIL FROM:<a@b>\r\n.end"
        for split in range(len(message) + 1):
            chunked, sink = self.chunked()
            chunked.add(message[:split])
            chunked.add(message[split:])
            chunked.end()
            self.assertTrue(chunked.receiver.done)
            self.assertEqual(sink.data, message + b"\r\n", split)  # a last CRLF added

    def test_parse(self) -> None:
        self.assertEqual(parse_bdat(b"100"), (100, False))
        self.assertEqual(parse_bdat(b"0 last"), (0, True))
        for bad in (b"", b"-1", b"10 LAST x", b"1e3", b"LAST", b"9" * 16):
            self.assertIsNone(parse_bdat(bad), bad)


class BdatTests(SmtpTestCase):
    async def transaction(self) -> object:
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<bob@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        return s

    async def test_ehlo_offers_chunking(self) -> None:
        s = await self.greeted()
        self.assertIn("CHUNKING", (await s.command("EHLO c.example")).lines)

    async def test_chunks_are_stored_byte_for_byte(self) -> None:
        s = await self.transaction()
        body = simple_message() + b".\r\n.hidden\r\nQUIT\r\n"
        first, second = body[:37], body[37:]
        replies = await s.send(b"BDAT %d\r\n%s" % (len(first), first))
        self.assertEqual(
            [(r.code, r.text) for r in replies], [(250, f"2.0.0 {len(first)} octets received")]
        )
        [reply] = await s.send(b"BDAT %d LAST\r\n%s" % (len(second), second))
        self.assertEqual((reply.code, reply.status), (250, "2.0.0"))
        [(info, data)] = await self.inbox("alice@example.com")
        self.assertTrue(data.startswith(b"Return-Path: <bob@example.net>\r\nReceived: from "))
        self.assertTrue(data.endswith(b"\r\n" + body), data[-80:])
        self.assertEqual(info.subject, "hello")
        self.assertFalse(s.closed)
        self.assertEqual(self.tmp_files(), [])

    async def test_pipelined_with_the_transaction_and_zero_last(self) -> None:
        await self.user("alice@example.com")
        s = await self.greeted()
        body = simple_message("piped")
        replies = await s.send(
            b"MAIL FROM:<bob@example.net>\r\nRCPT TO:<alice@example.com>\r\n"
            b"BDAT %d\r\n%sBDAT 0 LAST\r\nNOOP\r\n" % (len(body), body)
        )
        self.assertEqual([r.code for r in replies], [250, 250, 250, 250, 250])
        [(info, _)] = await self.inbox("alice@example.com")
        self.assertEqual(info.subject, "piped")

    async def test_refused_chunks_are_consumed_never_run(self) -> None:
        await self.user("alice@example.com")
        s = await self.greeted()
        evil = b"RCPT TO:<alice@example.com>\r\nDATA\r\n"
        replies = await s.send(b"BDAT %d LAST\r\n%sNOOP\r\n" % (len(evil), evil))
        self.assertEqual([(r.code, r.status) for r in replies], [(503, "5.5.1"), (250, "2.0.0")])
        await s.command("MAIL FROM:<bob@example.net>")
        self.assertEqual((await s.command("RCPT TO:<nobody@example.com>")).code, 550)
        replies = await s.send(b"BDAT 4 LAST\r\nNOOP")
        self.assertEqual([(r.code, r.status) for r in replies], [(554, "5.5.1")])
        self.assertEqual(await self.inbox("alice@example.com"), [])

    async def test_data_after_bdat_and_rset_between_chunks(self) -> None:
        s = await self.transaction()
        await s.send(b"BDAT 3\r\nabc")
        self.assertEqual((await s.command("DATA")).code, 503)
        self.assertEqual((await s.command("RSET")).code, 250)
        [reply] = await s.send(b"BDAT 1 LAST\r\nx")
        self.assertEqual(reply.code, 503)
        self.assertEqual(self.tmp_files(), [])
        self.assertEqual(await self.inbox("alice@example.com"), [])

    async def test_over_the_size_limit_is_refused_at_the_chunk(self) -> None:
        s = await self.transaction()
        limit = self.config.limits.max_message_size
        chunk = b"x" * 1000 + b"\r\n"
        count = limit // len(chunk) + 2
        replies = await s.send(b"BDAT %d\r\n%s" % (len(chunk) * count, chunk * count))
        self.assertEqual([(r.code, r.status) for r in replies], [(552, "5.3.4")])
        [reply] = await s.send(b"BDAT 2 LAST\r\nok")
        self.assertEqual(reply.code, 503)  # the transaction is over
        self.assertEqual(self.tmp_files(), [])

    async def test_bad_bdat_argument_closes(self) -> None:
        s = await self.transaction()
        reply = await s.command("BDAT ten")
        self.assertEqual((reply.code, reply.status), (501, "5.5.4"))
        self.assertTrue(s.closed)


class BdatSocketTests(SmtpTestCase):
    async def test_bdat_over_a_real_socket(self) -> None:
        await self.user("alice@example.com")
        listening = reactor.listenTCP(0, self.factory(), interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        port = listening.getHost().port
        body = simple_message("over tcp") + b".\r\n"

        def client() -> list[bytes]:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            reader = sock.makefile("rb")
            lines = [reader.readline()]
            sock.sendall(b"EHLO c.example\r\n")
            while not lines[-1].startswith(b"250 "):
                lines.append(reader.readline())
            sock.sendall(
                b"MAIL FROM:<bob@example.net>\r\nRCPT TO:<alice@example.com>\r\n"
                + b"BDAT %d LAST\r\n" % len(body)
                + body
                + b"QUIT\r\n"
            )
            for _ in range(4):
                lines.append(reader.readline())
            sock.close()
            return lines

        lines = await in_thread(client)
        self.assertIn(b"250-CHUNKING\r\n", lines)
        self.assertTrue(lines[-2].startswith(b"250 2.0.0"), lines)
        self.assertTrue(lines[-1].startswith(b"221 "), lines)
        [(_, data)] = await self.inbox("alice@example.com")
        self.assertTrue(data.endswith(b"\r\n" + body))
