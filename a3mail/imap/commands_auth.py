"""Commands of any state and of authentication: CAPABILITY, NOOP, LOGOUT, ID, STARTTLS,
LOGIN, AUTHENTICATE (PLAIN/LOGIN with SASL-IR), ENABLE, NAMESPACE and QUOTA."""

from __future__ import annotations

import base64

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin

from a3mail.imap import framing
from a3mail.imap.compress import Deflate
from a3mail.imap.session import SessionAPI
from a3mail.imap.states import State
from a3mail.imap.tokens import Atom, ImapSyntaxError, ParenList, String, Token
from a3mail.imap.wire import astring, atom_upper, decode_mailbox, token_bytes
from a3mail.logs import get_logger
from a3mail.pop3 import sasl
from a3mail.pop3.server import is_loopback

log = get_logger(__name__)

PROTOCOL_NAME = "imap"
BASE_CAPABILITIES = (
    b"IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT CONDSTORE QRESYNC"
    b" MULTIAPPEND"
    b" SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES SPECIAL-USE LIST-EXTENDED LIST-STATUS"
    b" QUOTA QUOTA=RES-STORAGE CHILDREN ESEARCH SEARCHRES WITHIN STATUS=SIZE"
)
MAX_ID_FIELDS = 30


class AuthCommands(SessionAPI):
    """Mixed into :class:`~a3mail.imap.server.IMAPServer`."""

    def capability_string(self) -> bytes:
        """The capabilities of this session in its current state."""
        caps = [BASE_CAPABILITIES, b"APPENDLIMIT=%d" % self.factory.settings.max_append]
        if self.phase is State.NOT_AUTHENTICATED:
            if not self.secure and self.factory.tls is not None:
                caps.append(b"STARTTLS")
            if self.passwords_allowed():
                caps.append(b"AUTH=PLAIN AUTH=LOGIN")
            else:
                caps.append(b"LOGINDISABLED")
        elif self.deflate is None:
            caps.append(b"COMPRESS=DEFLATE")
        return b" ".join(caps)

    def passwords_allowed(self) -> bool:
        """Over TLS always; in plaintext only from loopback, and only if configured."""
        if self.secure:
            return True
        return bool(self.factory.settings.allow_plaintext_loopback) and is_loopback(self.peer_ip())

    async def cmd_capability(
        self, tag: bytes, args: list[Token], command: framing.Command
    ) -> bytes:
        """CAPABILITY."""
        self.send(b"* CAPABILITY " + self.capability_string() + b"\r\n")
        return b"OK CAPABILITY completed"

    async def cmd_noop(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """NOOP (and CHECK): a chance for pending untagged updates."""
        await self.refresh_selected()
        return b"OK " + command.name.split(b" ")[-1] + b" completed"

    async def refresh_selected(self) -> None:
        """Compare the selected mailbox with the store (for changes still on the bus)."""
        view = self.selected
        if view is None:
            return
        for mailbox in await self.factory.store.mailboxes.list(self.account.id):
            if mailbox.id == view.mailbox.id:
                view.note_possible_change(mailbox)

    async def cmd_logout(self, tag: bytes, args: list[Token], command: framing.Command) -> None:
        """LOGOUT."""
        self.send(b"* BYE Logging out\r\n" + tag + b" OK LOGOUT completed\r\n")
        self.close()

    async def cmd_id(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """ID (RFC 2971): the client's fields are logged, ours returned."""
        if len(args) != 1:
            raise ImapSyntaxError("ID takes one argument")
        if isinstance(args[0], ParenList):
            items = args[0].items
            if len(items) > 2 * MAX_ID_FIELDS or len(items) % 2:
                raise ImapSyntaxError("Invalid ID parameters")
            fields = {
                token_bytes(k)[:30].decode("utf-8", "replace"): token_bytes(v)[:100].decode(
                    "utf-8", "replace"
                )
                for k, v in zip(items[::2], items[1::2])
            }
            log.info("imap client from {peer}: {fields}", peer=self.peer_ip(), fields=fields)
        elif not (isinstance(args[0], Atom) and args[0].value.upper() == b"NIL"):
            raise ImapSyntaxError("Invalid ID parameters")
        self.send(b'* ID ("name" "a3mail" "vendor" "a3mail")\r\n')
        return b"OK ID completed"

    async def cmd_starttls(self, tag: bytes, args: list[Token], command: framing.Command) -> None:
        """STARTTLS (RFC 3501 6.2.1): plaintext pipelined after it is dropped."""
        if args:
            raise ImapSyntaxError("STARTTLS takes no arguments")
        if self.secure or self.factory.tls is None:
            self.send(tag + b" BAD STARTTLS not available\r\n")
            return
        self.send(tag + b" OK Begin TLS negotiation now\r\n")
        assert self.reader is not None
        self.reader.discard()  # command injection: plaintext after STARTTLS
        self.transport.startTLS(self.factory.tls)
        self.secure = True

    async def cmd_login(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """LOGIN user password."""
        if len(args) != 2 or isinstance(args[0], ParenList) or isinstance(args[1], ParenList):
            raise ImapSyntaxError("LOGIN takes a user name and a password")
        if not self.passwords_allowed():
            return b"NO [PRIVACYREQUIRED] Use STARTTLS first"
        return await self.log_in(args[0].value, args[1].value)

    async def cmd_authenticate(
        self, tag: bytes, args: list[Token], command: framing.Command
    ) -> bytes:
        """AUTHENTICATE PLAIN|LOGIN [initial-response] (SASL-IR)."""
        if not args or len(args) > 2 or not all(isinstance(a, Atom | String) for a in args):
            raise ImapSyntaxError("AUTHENTICATE takes a mechanism")
        if not self.passwords_allowed():
            return b"NO [PRIVACYREQUIRED] Use STARTTLS first"
        mechanism = sasl.mechanism(token_bytes(args[0]))
        if mechanism is None:
            return b"NO Unsupported authentication mechanism"
        response = token_bytes(args[1]) if len(args) == 2 else None
        challenge = mechanism.first_challenge
        while True:
            if response is None:
                self.send(b"+ " + base64.b64encode(challenge) + b"\r\n")
                line = await self.read_line()
                if line is None:
                    return b"NO Connection closed"
                if line is framing.LINE_TOO_LONG:
                    return b"BAD Response too long"
                response = line.strip()
            assert isinstance(response, bytes)
            if response == sasl.CANCEL:
                return b"BAD Authentication cancelled"
            try:
                result = mechanism.step(sasl.decode_response(response))
            except sasl.SaslError as e:
                return b"BAD " + str(e).encode("ascii")
            if isinstance(result, bytes):
                challenge, response = result, None
                continue
            return await self.log_in(result.username, result.password)

    async def log_in(self, username: bytes, password: bytes) -> bytes:
        """Check the credentials; on success enter the authenticated state."""
        name = username.decode("utf-8", "replace")
        ip = self.peer_ip()
        factory = self.factory
        try:
            avatar = await factory.checker.requestAvatarId(UsernamePassword(username, password))
        except UnauthorizedLogin:
            await factory.guard.failed(PROTOCOL_NAME, name, ip, "bad credentials")
            return b"NO [AUTHENTICATIONFAILED] Authentication failed"
        address = avatar.decode("utf-8")
        await factory.guard.succeeded(PROTOCOL_NAME, address, ip)
        account = await factory.store.accounts.get(address)
        if self.phase is not State.NOT_AUTHENTICATED:
            return b"NO Session ended"
        self.account = account
        self.phase = State.AUTHENTICATED
        self.setTimeout(factory.settings.idle_timeout)
        log.info("imap login {address} from {ip}", address=address, ip=ip)
        return b"OK [CAPABILITY " + self.capability_string() + b"] Logged in"

    async def cmd_enable(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """ENABLE (RFC 5161): CONDSTORE, QRESYNC (which implies CONDSTORE, RFC 7162)."""
        if not args:
            raise ImapSyntaxError("ENABLE takes capability names")
        enabled = []
        for arg in args:
            name = atom_upper(arg)
            if name in (b"CONDSTORE", b"QRESYNC") and name not in self.enabled:
                self.enabled.add(name)
                self.condstore = True
                self.qresync = self.qresync or name == b"QRESYNC"
                enabled.append(name)
        self.send(b"* ENABLED" + b"".join(b" " + n for n in enabled) + b"\r\n")
        return b"OK ENABLE completed"

    async def cmd_compress(self, tag: bytes, args: list[Token], command: framing.Command) -> None:
        """COMPRESS DEFLATE (RFC 4978): the OK goes out uncompressed, then both directions
        are deflated; whatever the client sent after the command is compressed already."""
        if len(args) != 1 or atom_upper(args[0]) != b"DEFLATE":
            raise ImapSyntaxError("COMPRESS takes the mechanism DEFLATE")
        if self.deflate is not None:
            self.send(tag + b" NO [COMPRESSIONACTIVE] Already compressing\r\n")
            return
        self.send(tag + b" OK DEFLATE active\r\n")
        assert self.reader is not None
        received = bytes(self.reader.buffer)
        self.reader.buffer.clear()
        self.deflate = Deflate()
        self.deflate.add(received)

    async def cmd_namespace(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """NAMESPACE (RFC 2342): personal only; no other users', no shared namespace."""
        if args:
            raise ImapSyntaxError("NAMESPACE takes no arguments")
        self.send(b'* NAMESPACE (("" "/")) NIL NIL\r\n')
        return b"OK NAMESPACE completed"

    # -- QUOTA (RFC 9208): one root "" per account ---------------------------------------

    async def _quota_line(self) -> bytes:
        account = await self.factory.store.accounts.get(self.account.address)
        if not account.quota_bytes:
            return b'* QUOTA "" ()\r\n'
        used = (account.used_bytes + 1023) // 1024
        return b'* QUOTA "" (STORAGE %d %d)\r\n' % (used, account.quota_bytes // 1024)

    async def cmd_getquotaroot(
        self, tag: bytes, args: list[Token], command: framing.Command
    ) -> bytes:
        """GETQUOTAROOT mailbox."""
        if len(args) != 1:
            raise ImapSyntaxError("GETQUOTAROOT takes a mailbox name")
        name = decode_mailbox(args[0])
        await self.factory.store.mailboxes.get(self.account.id, name)
        self.send(b'* QUOTAROOT %s ""\r\n' % astring(token_bytes(args[0])))
        self.send(await self._quota_line())
        return b"OK GETQUOTAROOT completed"

    async def cmd_getquota(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """GETQUOTA root (only ``""``)."""
        if len(args) != 1:
            raise ImapSyntaxError("GETQUOTA takes a quota root")
        if token_bytes(args[0]) != b"":
            return b"NO [NONEXISTENT] No such quota root"
        self.send(await self._quota_line())
        return b"OK GETQUOTA completed"

    async def cmd_setquota(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """SETQUOTA: quotas are set by the administrator."""
        return b"NO [NOPERM] Quotas are set by the administrator"
