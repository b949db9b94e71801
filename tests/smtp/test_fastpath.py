"""The fast path of the DATA phase: pipelined replies written together (RFC 2920) and small
messages held in memory until their end (a3mail.smtp.spill), large ones streamed to a file."""

from __future__ import annotations

from a3mail.smtp import spill
from tests.smtp.support import SmtpTestCase, parse_replies, simple_message, stuff


class PipelinedReplyTests(SmtpTestCase):
    async def test_pipelined_commands_get_their_replies_in_one_write(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        writes: list[bytes] = []
        real = s.transport.write
        self.patch(s.transport, "write", lambda data: (writes.append(data), real(data)))
        # MAIL, RCPT (which waits for the store) and DATA in one packet
        replies = await s.send(
            b"MAIL FROM:<a@example.net>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n"
        )
        self.assertEqual([r.code for r in replies], [250, 250, 354])
        self.assertEqual(len(writes), 1)
        [reply] = await s.send(stuff(simple_message()) + b".\r\n")
        self.assertEqual(reply.code, 250)
        self.assertEqual(len(writes), 2)

    async def test_a_reply_is_not_held_when_the_client_waits_for_it(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        s.protocol.dataReceived(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<alice@example.com>\r\nRC")
        await s.settle()
        # the partial third command waits for the client: both replies are out
        self.assertEqual([r.code for r in parse_replies(s.new_output())], [250, 250])

    async def test_quit_after_the_dot_gets_both_replies_before_the_close(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        await s.command("DATA")
        replies = await s.send(stuff(simple_message()) + b".\r\nQUIT\r\n")
        self.assertEqual([r.code for r in replies], [250, 221])
        self.assertTrue(s.closed)


class SpillTests(SmtpTestCase):
    async def test_a_small_message_stays_in_memory_until_its_end(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        self.assertEqual((await s.command("DATA")).code, 354)
        await s.send(b"Subject: small\r\n\r\nfirst line\r\n")
        self.assertEqual(self.tmp_files(), [])
        [reply] = await s.send(b"last line\r\n.\r\n")
        self.assertEqual(reply.code, 250)
        [(info, data)] = await self.inbox("alice@example.com")
        self.assertTrue(data.endswith(b"Subject: small\r\n\r\nfirst line\r\nlast line\r\n"))
        self.assertEqual(info.subject, "small")
        self.assertEqual(self.tmp_files(), [])

    async def test_a_large_message_is_streamed_to_a_file(self):
        self.patch(spill, "MEMORY_LIMIT", 1000)
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        await s.command("DATA")
        body = b"".join(b"line %04d " % n + b"x" * 60 + b"\r\n" for n in range(40))
        await s.send(b"Subject: large\r\n\r\n" + body[:1500])
        sink = s.protocol._writer
        self.assertTrue(sink.spilled)
        await sink._opening  # the file is created in a worker thread
        self.assertEqual(len(self.tmp_files()), 1)  # past the limit: in a file, not memory
        self.assertEqual(bytes(sink._buffer), b"")
        [reply] = await s.send(body[1500:] + b".\r\n")
        self.assertEqual(reply.code, 250)
        [(info, data)] = await self.inbox("alice@example.com")
        self.assertTrue(data.endswith(b"Subject: large\r\n\r\n" + body))
        self.assertEqual(info.size, len(data))
        self.assertEqual(self.tmp_files(), [])

    async def test_a_client_leaving_a_large_message_leaves_no_file(self):
        self.patch(spill, "MEMORY_LIMIT", 100)
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        await s.command("DATA")
        await s.send(b"Subject: gone\r\n\r\n" + b"y" * 70 + b"\r\n" * 5)
        await s.protocol._writer._opening
        self.assertEqual(len(self.tmp_files()), 1)
        s.transport.loseConnection()
        s.protocol.connectionLost(None)
        self.assertEqual(self.tmp_files(), [])
        self.assertEqual(await self.inbox("alice@example.com"), [])
