"""Hostile input: random and mutated commands never break a session, never log an
unexpected error, and never send anything but protocol responses."""

from __future__ import annotations

import os
import random
import re

from tests.imap.support import ImapTestCase

COMMANDS = [
    b"FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From)]<0.10>)",
    b"UID FETCH 1:* (UID RFC822.SIZE ENVELOPE BODYSTRUCTURE) (CHANGEDSINCE 1)",
    b"STORE 1 +FLAGS.SILENT (\\Seen $X)",
    b"UID STORE 1:* (UNCHANGEDSINCE 5) -FLAGS (\\Flagged)",
    b'SEARCH CHARSET UTF-8 OR SUBJECT "x" FROM y NOT SEEN 1:2',
    b'LIST (SUBSCRIBED) "" ("INBOX" "*") RETURN (STATUS (MESSAGES UNSEEN) CHILDREN)',
    b"STATUS INBOX (MESSAGES UIDNEXT SIZE)",
    b'APPEND INBOX (\\Seen) " 1-Jan-2020 10:00:00 +0000" {12+}\r\nSubject: x\r\n',
    b"COPY 1 Trash",
    b"UID MOVE 2 Trash",
    b"EXAMINE INBOX",
    b"SELECT INBOX (CONDSTORE)",
    b"CREATE Fuzz/One",
    b"RENAME Fuzz/One Fuzz/Two",
    b"NAMESPACE",
    b"ID NIL",
    b"GETQUOTAROOT INBOX",
    b"EXPUNGE",
    b"SORT (REVERSE DATE SUBJECT) UTF-8 ALL",
    b"UID SORT (FROM CC TO SIZE ARRIVAL) US-ASCII UNSEEN",
    b"THREAD REFERENCES UTF-8 ALL",
    b"UID THREAD ORDEREDSUBJECT UTF-8 SUBJECT x",
    b"SEARCH RETURN (MIN MAX COUNT ALL) ALL",
    b"ENABLE QRESYNC",
    b"SELECT INBOX (QRESYNC (1 1 1:* (1:2 1:2)))",
    b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
]
ALPHABET = b'()[]<>{}"\\*%:,. 0123456789+-ABCXYZabc\x00\x7f\xff'


def mutate(rng: random.Random, command: bytes) -> bytes:
    data = bytearray(command)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        position = rng.randrange(len(data) + 1)
        if choice < 0.4 and data:
            del data[min(position, len(data) - 1)]
        elif choice < 0.8:
            data.insert(position, rng.choice(ALPHABET))
        else:
            data[position:position] = b"{%d}\r\n" % rng.randint(0, 5)
    return bytes(data).replace(b"\n", b"")


class FuzzTests(ImapTestCase):
    async def test_mutated_commands(self):
        for _ in range(3):
            await self.deliver()
        proto = await self.session()
        rng = random.Random(int(os.environ.get("A3MAIL_FUZZ_SEED", "20261121")))  # try others
        for i in range(300):
            command = mutate(rng, rng.choice(COMMANDS)) if i % 3 else rng.choice(COMMANDS)
            tag = b"t%d" % i
            out = await self.send(proto, tag + b" " + command + b"\r\n")
            if b"+ Ready for literal data" in out and not re.search(rb"\r\n" + tag + rb" ", out):
                out += await self.send(proto, b"x" * 16 + b"\r\n")
            self.assertFalse(proto._closed, (command, out))
            self.assertNotIn(b"Traceback", out)
            self.assertNotIn(b"SERVERBUG", out, command)
            self.assertFalse(proto._busy and proto._line_waiter is None, command)
        self.assertEqual(self.flushLoggedErrors(), [])
        out = await self.send(proto, b"z NOOP\r\n")
        self.assertTrue(out.endswith(b"z OK NOOP completed\r\n"), out)
