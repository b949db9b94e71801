"""FETCH of many small messages: files read in batches in a worker thread, responses
written together; big messages still streamed; one unreadable file spoils nothing else."""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from a3mail.imap import commands_fetch
from a3mail.imap.commands_fetch import chunk_bounds, file_bytes, in_memory_batches
from tests.imap.support import ImapTestCase, message, tagged


class Record:
    def __init__(self, size: int, header_size: int = 0) -> None:
        self.size = size
        self.header_size = header_size


class BatchSplitTests(SynchronousTestCase):
    def test_small_messages_go_together_up_to_the_byte_budget(self):
        self.patch(commands_fetch, "BATCH_BYTES", 100)
        self.patch(commands_fetch, "SMALL_MESSAGE", 60)
        pairs = [(Record(size), n) for n, size in enumerate([40, 40, 30, 70, 10], start=1)]
        batches = [[seq for _, seq in batch] for batch in in_memory_batches(pairs, True)]
        self.assertEqual(batches, [[1, 2], [3], [4], [5]])

    def test_a_header_sync_counts_only_the_headers(self):
        """BODY[HEADER]-only FETCHes batch big messages by their header size; a message
        without a known header size counts whole."""
        self.patch(commands_fetch, "BATCH_BYTES", 100)
        self.patch(commands_fetch, "SMALL_MESSAGE", 60)
        sizes = [(10**6, 40), (10**6, 40), (10**6, 30), (70, 0), (10**6, 10**7)]
        pairs = [(Record(*size), n) for n, size in enumerate(sizes, start=1)]
        batches = [[seq for _, seq in batch] for batch in in_memory_batches(pairs, True, True)]
        self.assertEqual(batches, [[1, 2], [3], [4], [5]])

    def test_chunk_bounds_start_small(self):
        self.assertEqual(list(chunk_bounds(14, 3, 5)), [(0, 3), (3, 8), (8, 13), (13, 14)])
        self.assertEqual(
            list(chunk_bounds(40, 2, 16)), [(0, 2), (2, 6), (6, 14), (14, 30), (30, 40)]
        )
        self.assertEqual(list(chunk_bounds(2, 3, 5)), [(0, 2)])
        self.assertEqual(list(chunk_bounds(0, 3, 5)), [])

    def test_without_files_everything_is_one_batch(self):
        pairs = [(Record(10**9), 1), (Record(10**9), 2)]
        self.assertEqual([len(b) for b in in_memory_batches(pairs, False)], [2])

    def test_a_short_file_is_padded_to_the_announced_length(self):
        self.assertEqual(file_bytes(b"abcdef", 2, 3), b"cde")
        self.assertEqual(file_bytes(b"abc", 1, 5), b"bc   ")
        self.flushLoggedErrors()


class BatchedFetchTests(ImapTestCase):
    async def test_bodies_are_byte_exact_with_few_reads_and_writes(self):
        bodies = [message(f"note {n}", "x" * (50 + n)) for n in range(6)]
        for body in bodies:
            await self.deliver(body)
        proto = await self.session()
        reads = self.count_calls(self.store.messages, "read_many")
        writes: list[bytes] = []
        write = proto.transport.write
        self.patch(proto.transport, "write", lambda data: (writes.append(data), write(data)))
        out = await self.send(proto, b"a FETCH 1:* (UID BODY.PEEK[])\r\n")
        for n, body in enumerate(bodies, start=1):
            self.assertIn(
                b"* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n" % (n, n, len(body), body), out
            )
        self.assertEqual(tagged(out, b"a"), b"OK FETCH completed")
        self.assertEqual([len(infos) for infos, _lengths in reads], [6])
        self.assertEqual(len(writes), 2)  # the responses, then the tagged line

    async def test_a_header_sync_reads_only_the_headers(self):
        """FETCH of header items reads each file's header only, big messages included, in
        one batch, and answers byte-exact."""
        self.patch(commands_fetch, "SMALL_MESSAGE", 200)
        bodies = [message(f"note {n}", "x" * (300 * n)) for n in range(1, 4)]
        for body in bodies:
            await self.deliver(body)
        proto = await self.session()
        reads = self.count_calls(self.store.messages, "read_many")
        out = await self.send(
            proto, b"a FETCH 1:* (BODY.PEEK[HEADER.FIELDS (Subject)] BODY.PEEK[HEADER])\r\n"
        )
        headers = [data[: data.index(b"\r\n\r\n") + 4] for data in bodies]
        self.assertEqual([lengths for _infos, lengths in reads], [[len(h) for h in headers]])
        for n, header in enumerate(headers, start=1):
            subject = b"Subject: note %d\r\n\r\n" % n
            self.assertIn(
                b"* %d FETCH (BODY[HEADER.FIELDS (Subject)] {%d}\r\n%s BODY[HEADER] {%d}\r\n%s)"
                % (n, len(subject), subject, len(header), header),
                out,
            )
        self.assertEqual(tagged(out, b"a"), b"OK FETCH completed")

    async def test_a_big_message_is_streamed_between_batched_ones(self):
        self.patch(commands_fetch, "SMALL_MESSAGE", 200)
        small, big = message("small", "s"), message("big", "b" * 500)
        for body in (small, big, small):
            await self.deliver(body)
        proto = await self.session()
        out = await self.send(proto, b"a FETCH 1:3 BODY.PEEK[]\r\n")
        self.assertIn(b"* 2 FETCH (BODY[] {%d}\r\n%s)\r\n" % (len(big), big), out)
        self.assertIn(b"* 3 FETCH (BODY[] {%d}\r\n%s)\r\n" % (len(small), small), out)
        self.assertEqual(tagged(out, b"a"), b"OK FETCH completed")

    async def test_an_unreadable_file_spoils_only_its_own_message(self):
        for n in range(3):
            await self.deliver(message(f"m{n}", "body"))
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        infos = await self.store.messages.list(self.alice.id, inbox.id)
        os.unlink(self.store.blobs.path(infos[1].blob_path))
        proto = await self.session()
        out = await self.send(proto, b"a FETCH 1:3 (UID BODY.PEEK[])\r\n")
        self.assertIn(b"* 1 FETCH (UID 1 BODY[]", out)
        self.assertIn(b"* 3 FETCH (UID 3 BODY[]", out)
        self.assertNotIn(b"* 2 FETCH", out)
        self.assertEqual(tagged(out, b"a"), b"NO [SERVERBUG] Some messages could not be fetched")
        self.flushLoggedErrors()
