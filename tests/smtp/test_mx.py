"""The MX listener in memory: local domains only, per-recipient outcome, delivery into the
store with trace headers, aliases, quota, sizes, parameters, events and counters."""

from __future__ import annotations

from tests.smtp.support import HOSTNAME, SmtpTestCase, simple_message
from tests.store.helpers import aio, wait_for


class DeliveryTests(SmtpTestCase):
    async def test_message_is_delivered_with_trace_headers(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        self.assertEqual((await s.command("MAIL FROM:<bob@example.net>")).code, 250)
        reply = await s.command("RCPT TO:<alice@example.com>")
        self.assertEqual((reply.code, reply.status), (250, "2.1.5"))
        reply = await s.message(simple_message())
        self.assertEqual((reply.code, reply.status), (250, "2.0.0"))
        [(info, data)] = await self.inbox("alice@example.com")
        self.assertTrue(data.startswith(b"Return-Path: <bob@example.net>\r\nReceived: from "))
        self.assertTrue(data.endswith(simple_message()))
        self.assertEqual(info.subject, "hello")
        self.assertEqual(info.size, len(data))
        self.assertIn(f"by {HOSTNAME} (a3mail) with ESMTP".encode(), data)
        self.assertIn(b"for <alice@example.com>;", data)
        self.assertNotIn(b"\n", data.replace(b"\r\n", b""))
        self.assertEqual(self.tmp_files(), [])

    async def test_two_messages_in_one_session_and_rset(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        for subject in ("one", "two"):
            await s.command("MAIL FROM:<>")
            await s.command("RCPT TO:<Alice@Example.COM>")
            self.assertEqual((await s.message(simple_message(subject))).code, 250)
        await s.command("MAIL FROM:<x@example.net>")
        self.assertEqual((await s.command("RSET")).status, "2.0.0")
        self.assertEqual((await s.command("RCPT TO:<alice@example.com>")).code, 503)
        self.assertEqual(
            [info.subject for info, _ in await self.inbox("alice@example.com")], ["one", "two"]
        )
        [(_, data)] = (await self.inbox("alice@example.com"))[:1]
        self.assertTrue(data.startswith(b"Return-Path: <>\r\n"))

    async def test_dot_stuffing_is_undone_and_a_body_without_headers_is_kept(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        await s.command("DATA")
        [reply] = await s.send(b"no header here\r\n..leading dot\r\n...\r\n.\r\n")
        self.assertEqual(reply.code, 250)
        [(_, data)] = await self.inbox("alice@example.com")
        self.assertTrue(data.endswith(b"\r\nno header here\r\n.leading dot\r\n..\r\n"))

    async def test_empty_message(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        await s.command("DATA")
        self.assertEqual((await s.send(b".\r\n"))[0].code, 250)

    async def test_repeated_recipient_gets_one_copy(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        self.assertEqual((await s.command("RCPT TO:<ALICE@example.com>")).code, 250)
        self.assertEqual((await s.message(simple_message())).code, 250)
        self.assertEqual(len(await self.inbox("alice@example.com")), 1)

    async def test_received_header_for_several_recipients_names_none(self):
        await self.user("alice@example.com")
        await self.user("carol@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        await s.command("RCPT TO:<carol@example.com>")
        await s.message(simple_message())
        [(_, data)] = await self.inbox("carol@example.com")
        self.assertNotIn(b"for <", data.split(b"\r\n\r\n")[0])


class RecipientTests(SmtpTestCase):
    async def test_unknown_user_is_550_5_1_1(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        reply = await s.command("RCPT TO:<nobody@example.com>")
        self.assertEqual((reply.code, reply.status), (550, "5.1.1"))

    async def test_remote_domain_without_auth_is_554_5_7_1(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        for target in ("someone@example.org", "x@[192.0.2.25]", "x@[IPv6:2001:db8::1]"):
            reply = await s.command(f"RCPT TO:<{target}>")
            self.assertEqual((reply.code, reply.status), (554, "5.7.1"), target)
        self.assertEqual(await self.store.queue.counts(), dict.fromkeys(_STATES, 0))

    async def test_disabled_domain_is_not_local(self):
        await self.user("alice@example.com")
        await self.store.domains.update("example.com", enabled=False)
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        self.assertEqual((await s.command("RCPT TO:<alice@example.com>")).code, 554)

    async def test_disabled_account_is_550_5_2_1(self):
        await self.user("alice@example.com", enabled=False)
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        reply = await s.command("RCPT TO:<alice@example.com>")
        self.assertEqual((reply.code, reply.status), (550, "5.2.1"))

    async def test_bad_addresses(self):
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        cases = {
            "RCPT TO:<>": 553,
            "RCPT TO:<no-domain>": 553,
            "RCPT TO:<a@-bad-.example>": 553,
            "RCPT TO:<a@[300.1.1.1]>": 553,
            "RCPT TO:<a b@example.com>": 553,
            "RCPT TO:<a@example.com": 501,
            "RCPT TO <a@example.com>": 501,
            "RCPT TO:<a@example.com> NOTIFY=NEVER": 555,
        }
        for command, code in cases.items():
            self.assertEqual((await s.command(command)).code, code, command)

    async def test_postmaster_without_domain(self):
        await self.make_account(f"postmaster@{HOSTNAME}")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        self.assertEqual((await s.command("RCPT TO:<Postmaster>")).code, 250)
        self.assertEqual((await s.message(simple_message())).code, 250)
        self.assertEqual(len(await self.inbox(f"postmaster@{HOSTNAME}")), 1)

    async def test_alias_to_local_account_and_external_address(self):
        await self.user("alice@example.com")
        await self.store.accounts.add_alias("team@example.com", "alice@example.com")
        await self.store.accounts.add_alias("team@example.com", "partner@example.org")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        self.assertEqual((await s.command("RCPT TO:<team@example.com>")).code, 250)
        self.assertEqual((await s.message(simple_message())).code, 250)
        self.assertEqual(len(await self.inbox("alice@example.com")), 1)
        [entry] = await self.store.queue.list()
        self.assertEqual(entry.recipients, ("partner@example.org",))
        self.assertEqual(entry.sender, "a@example.net")
        queued = (self.data_dir / entry.blob_path).read_bytes()
        self.assertTrue(queued.startswith(b"Return-Path: <a@example.net>\r\n"))
        self.assertTrue(queued[entry.skip_bytes :].startswith(b"Received: from "))
        self.assertEqual(self.tmp_files(), [])

    async def test_catch_all_takes_unknown_addresses_of_its_domain(self):
        await self.user("alice@example.com")
        await self.user("bob@example.com")
        await self.store.accounts.add_alias("@example.com", "alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        self.assertEqual((await s.command("RCPT TO:<Stray.Name@example.com>")).code, 250)
        self.assertEqual((await s.command("RCPT TO:<bob@example.com>")).code, 250)
        self.assertEqual((await s.command("RCPT TO:<x@unknown.example>")).code, 554)
        self.assertEqual((await s.message(simple_message("to a stray"))).code, 250)
        [(info, _)] = await self.inbox("alice@example.com")
        self.assertEqual(info.subject, "to a stray")
        self.assertEqual(len(await self.inbox("bob@example.com")), 1)  # bob keeps his own

    async def test_address_extension_reaches_the_base_account(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        self.assertEqual((await s.command("RCPT TO:<alice+lists@example.com>")).code, 250)
        self.assertEqual((await s.command("RCPT TO:<bob+lists@example.com>")).code, 550)
        self.assertEqual((await s.message(simple_message("tagged"))).code, 250)
        [(info, data)] = await self.inbox("alice@example.com")
        self.assertEqual(info.subject, "tagged")
        self.assertIn(b"for <alice+lists@example.com>;", data)


class RecipientLimitTests(SmtpTestCase):
    overrides = {"limits.max_recipients": 2}

    async def test_too_many_recipients_is_452_4_5_3(self):
        for name in ("a", "b", "c"):
            await self.user(f"{name}@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<x@example.net>")
        codes = [(await s.command(f"RCPT TO:<{n}@example.com>")) for n in "abc"]
        self.assertEqual([(r.code, r.status) for r in codes][-1], (452, "4.5.3"))
        self.assertEqual([r.code for r in codes[:2]], [250, 250])
        self.assertEqual((await s.message(simple_message())).code, 250)
        self.assertEqual(len(await self.inbox("c@example.com")), 0)
        self.assertEqual(len(await self.inbox("b@example.com")), 1)


class QuotaTests(SmtpTestCase):
    async def fill(self, address: str, quota: int) -> None:
        """An account that holds one message and is then given a quota below its usage."""
        await self.user(address)
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        await s.command(f"RCPT TO:<{address}>")
        self.assertEqual((await s.message(b"Subject: fill\r\n\r\n" + b"x" * 300)).code, 250)
        await self.store.accounts.set_quota(address, quota)

    async def test_recipient_over_quota_gets_452_others_are_delivered(self):
        await self.fill("full@example.com", 200)
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        full = await s.command("RCPT TO:<full@example.com>")
        self.assertEqual((full.code, full.status), (452, "4.2.2"))
        self.assertEqual((await s.command("RCPT TO:<alice@example.com>")).code, 250)
        self.assertEqual((await s.message(simple_message())).code, 250)
        self.assertEqual(len(await self.inbox("alice@example.com")), 1)
        self.assertEqual(len(await self.inbox("full@example.com")), 1)  # only the filler

    async def test_announced_size_over_the_remaining_quota(self):
        await self.user("small@example.com", quota_bytes=1000)
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net> SIZE=5000")
        self.assertEqual((await s.command("RCPT TO:<small@example.com>")).code, 452)
        await s.command("RSET")
        await s.command("MAIL FROM:<a@example.net> SIZE=500")
        self.assertEqual((await s.command("RCPT TO:<small@example.com>")).code, 250)

    async def test_race_at_delivery_time_refuses_with_the_over_quota_reply(self):
        await self.user("small@example.com", quota_bytes=1000)
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        self.assertEqual((await s.command("RCPT TO:<small@example.com>")).code, 250)
        reply = await s.message(b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 30)
        self.assertEqual((reply.code, reply.status), (452, "4.2.2"))
        self.assertEqual(await self.inbox("small@example.com"), [])
        self.assertEqual(self.tmp_files(), [])


class PermanentQuotaTests(SmtpTestCase):
    overrides = {"smtp.over_quota_reply": "552"}

    async def test_configurable_552_5_2_2(self):
        await self.user("small@example.com", quota_bytes=100)
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net> SIZE=5000")
        reply = await s.command("RCPT TO:<small@example.com>")
        self.assertEqual((reply.code, reply.status), (552, "5.2.2"))


class SizeTests(SmtpTestCase):
    overrides = {"limits.max_message_size": 2000}

    async def test_size_parameter_over_the_limit_is_refused_at_mail_from(self):
        s = await self.greeted()
        self.assertIn("SIZE 2000", (await s.command("EHLO c.example.com")).lines)
        reply = await s.command("MAIL FROM:<a@example.net> SIZE=2001")
        self.assertEqual((reply.code, reply.status), (552, "5.3.4"))
        self.assertEqual((await s.command("MAIL FROM:<a@example.net> SIZE=2000")).code, 250)

    async def test_data_over_the_limit_is_552_and_the_file_is_removed(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        await s.command("DATA")
        [] = await s.send(b"Subject: big\r\n\r\n" + b"z" * 70 + b"\r\n")
        # small so far: held in memory (a3mail.smtp.spill), never more than the size limit
        self.assertEqual(self.tmp_files(), [])
        replies = await s.send((b"z" * 70 + b"\r\n") * 40 + b".\r\n")
        self.assertEqual([(r.code, r.status) for r in replies], [(552, "5.3.4")])
        self.assertEqual(await self.inbox("alice@example.com"), [])
        self.assertEqual(self.tmp_files(), [])
        self.assertEqual((await s.command("NOOP")).code, 250)
        self.assertEqual(self.stats.messages_rejected["size"], 1)


class ParameterTests(SmtpTestCase):
    async def test_mail_parameters(self):
        s = await self.greeted()
        cases = {
            "MAIL FROM:<a@example.net> BODY=8BITMIME SIZE=10": 250,
            "MAIL FROM:<a@example.net> BODY=7bit": 250,
            "MAIL FROM:<a@example.net> BODY=BINARYMIME": 555,
            "MAIL FROM:<a@example.net> FROB=1": 555,
            "MAIL FROM:<a@example.net> SIZE=ten": 501,
            "MAIL FROM:<a@example.net> SIZE=1 SIZE=2": 501,
            "MAIL FROM:<a@example.net> AUTH=<>": 250,
            "MAIL FROM:<a@[192.0.2.7]>": 250,
            "MAIL FROM:<@relay.example,@b.example:a@example.net>": 250,
            'MAIL FROM:<"quoted local"@example.net>': 250,
            "MAIL FROM: <spaced@example.net>": 250,
            "MAIL FROM:bare@example.net": 250,
        }
        for command, code in cases.items():
            reply = await s.command(command)
            self.assertEqual(reply.code, code, (command, reply))
            if code == 250:
                await s.command("RSET")
        self.assertEqual((await s.command("MAIL FROM:<a@example.net>")).code, 250)
        self.assertEqual((await s.command("MAIL FROM:<a@example.net>")).code, 503)

    async def test_helo_clients_get_no_parameters(self):
        s = self.connect()
        self.assertEqual((await s.command("HELO c.example.com")).code, 250)
        self.assertEqual((await s.command("MAIL FROM:<a@example.net> SIZE=10")).code, 555)
        self.assertEqual((await s.command("MAIL FROM:<a@example.net>")).code, 250)

    async def test_utf8_addresses_need_smtputf8(self):
        await self.user("jürgen@example.com")
        s = await self.greeted()
        reply = await s.command("MAIL FROM:<jörg@exämple.net>".encode())
        self.assertEqual((reply.code, reply.status), (553, "5.6.7"))
        self.assertEqual((await s.command("MAIL FROM:<a@example.net>")).code, 250)
        reply = await s.command("RCPT TO:<jürgen@example.com>".encode())
        self.assertEqual((reply.code, reply.status), (553, "5.6.7"))
        await s.command("RSET")
        await s.command("MAIL FROM:<jörg@exämple.net> SMTPUTF8".encode())
        self.assertEqual((await s.command("RCPT TO:<Jürgen@example.com>".encode())).code, 250)
        reply = await s.message("Subject: grüße\r\n\r\nhallo\r\n".encode())
        self.assertEqual(reply.code, 250)
        [(_, data)] = await self.inbox("jürgen@example.com")
        self.assertIn(b" with UTF8SMTP id ", data)
        self.assertTrue(data.startswith("Return-Path: <jörg@exämple.net>\r\n".encode()))

    async def test_invalid_utf8_address(self):
        s = await self.greeted()
        self.assertEqual((await s.command(b"MAIL FROM:<\xff@example.net> SMTPUTF8")).code, 553)


_STATES = ("queued", "sending", "sent", "failed", "bounced")


class EventTests(SmtpTestCase):
    async def test_accepted_and_rejected_messages_are_announced_and_counted(self):
        events = []
        self.addCleanup(self.store.events.subscribe(events.append))
        await aio(self.store.events.wait_connected(5))
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        await s.message(simple_message())
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        await s.command("DATA")
        await s.send(b"Subject: x\r\n\r\n" + b"l" * 2000 + b"\r\n.\r\n")
        await self.factory().context.reporter.idle()
        await wait_for(lambda: {e.type for e in events} >= {"smtp.received", "smtp.rejected"})
        received = next(e for e in events if e.type == "smtp.received")
        self.assertEqual(received.data["listener"], "mx")
        self.assertEqual(received.data["recipients"], 1)
        self.assertEqual(received.data["delivered"], 1)
        rejected = next(e for e in events if e.type == "smtp.rejected")
        self.assertEqual(rejected.data["reason"], "line_length")
        self.assertEqual(self.stats.messages_accepted, 1)
        self.assertEqual(dict(self.stats.messages_rejected), {"line_length": 1})
        self.assertEqual(self.stats.recipients_accepted, 2)
        self.assertGreater(self.stats.bytes_received, 100)
        self.assertEqual(self.stats.connections, 1)
