"""The configuration records: one frozen attrs class per section of the TOML file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attrs


@attrs.frozen
class DatabaseConfig:
    """The C{[database]} section (timeouts in seconds)."""

    dsn: str = attrs.field(repr=lambda dsn: "'***'" if dsn else "''")  # may hold a password
    pool_min: int
    pool_max: int
    connect_timeout: float
    statement_timeout: float
    schema: str

    @property
    def dsn_is_embedded(self) -> bool:
        """True if no DSN is configured: a3mail runs its embedded PostgreSQL."""
        return self.dsn == ""


@attrs.frozen
class TLSConfig:
    """
    The C{[tls]} section: PEM certificate (chain) and key files; C{generated}
    is True for the default pair under C{<data_dir>/tls}, which a3mail
    generates (self-signed) when missing.
    """

    certificate: Path
    private_key: Path
    generated: bool


@attrs.frozen
class LimitsConfig:
    """The C{[limits]} section (sizes in bytes)."""

    max_message_size: int
    max_recipients: int
    max_line_length: int


@attrs.frozen
class StoreConfig:
    """The C{[store]} section (sizes in bytes, durations in seconds)."""

    orphan_grace: float
    default_quota: int
    maildir_fsync: bool
    recipient_delimiter: str = "+"


@attrs.frozen
class AuthConfig:
    """The C{[auth]} section (durations in seconds)."""

    failure_delay: float
    allow_plaintext_loopback: bool


@attrs.frozen
class SmtpConfig:
    """The C{[smtp]} section (durations in seconds, sizes in bytes).

    C{static_dns} maps C{(record type, name)} to the record strings served
    instead of real DNS answers (tests, closed networks).
    """

    over_quota_reply: int
    dmarc_failure: str
    verify_inbound: bool
    dns_servers: tuple[str, ...]
    dns_timeout: float
    static_dns: Mapping[tuple[str, str], tuple[str, ...]] = attrs.field(hash=False)
    command_timeout: float
    data_timeout: float
    max_connections_per_ip: int
    max_errors: int
    max_data_line_length: int
    sent_copy: bool


@attrs.frozen
class Pop3Config:
    """The C{[pop3]} section (durations in seconds)."""

    idle_timeout: float
    max_errors: int


@attrs.frozen
class ImapConfig:
    """The C{[imap]} section (durations in seconds, sizes in octets)."""

    idle_timeout: float
    login_timeout: float
    max_line: int
    max_literal: int
    max_connections_per_ip: int


@attrs.frozen
class HttpConfig:
    """The C{[http]} section (sizes in bytes, durations in seconds).

    C{trusted_proxies} are networks whose C{X-Forwarded-For} is believed.
    """

    max_body: int
    request_timeout: float
    rate_limit_per_key: int
    rate_limit_per_ip: int
    rate_limit_window: float
    trusted_proxies: tuple[str, ...]


@attrs.frozen
class FreemailConfig:
    """The C{[freemail]} section: the freemail API's admin, guest, sessions and mailboxes
    (durations in seconds; C{domains} empty = the temp-mail domains)."""

    admin_token: str = attrs.field(repr=False)
    admin_name: str
    admin_password: str = attrs.field(repr=False)
    session_secret: str = attrs.field(repr=False)
    session_lifetime: float
    guest_enabled: bool
    guest_password: str = attrs.field(repr=False)
    mailbox_limit: int
    mailbox_lifetime: float
    domains: tuple[str, ...]
    cookie_name: str
    cookie_secure: bool
    cookie_samesite: str


@attrs.frozen
class WebhooksConfig:
    """The C{[webhooks]} section (durations in seconds)."""

    allow_private_targets: bool
    timeout: float
    max_attempts: int
    poll_interval: float
    retention: float


@attrs.frozen
class OutboundConfig:
    """The C{[outbound]} section (durations in seconds).

    C{static_mx} maps a destination domain to C{host:port} strings used instead of
    the DNS (tests, closed networks); C{smarthost} ("" = none) is C{host:port}.
    """

    poll_interval: float
    concurrency: int
    connections_per_domain: int
    connect_timeout: float
    command_timeout: float
    dns_timeout: float
    lease_time: float
    retry_schedule: tuple[float, ...]
    max_queue_lifetime: float
    delay_warning: float
    tls: str
    verify_certificates: bool
    smarthost: str
    smarthost_tls: str
    smarthost_username: str
    smarthost_password: str = attrs.field(repr=False)
    smarthost_domains: Mapping[str, Mapping[str, str]] = attrs.field(hash=False, repr=False)
    static_mx: Mapping[str, tuple[str, ...]] = attrs.field(hash=False)


@attrs.frozen
class LoggingConfig:
    """The C{[logging]} section; C{json_file} is L{None} when not configured."""

    level: str
    json_file: Path | None


@attrs.frozen
class ServerConfig:
    """The C{[server]} section: graceful shutdown and restart (durations in seconds)."""

    drain_timeout: float
    restart: str


@attrs.frozen
class ManholeConfig:
    """The C{[manhole]} section; C{authorized_keys} is L{None} when not configured."""

    authorized_keys: Path | None


@attrs.frozen
class SecurityConfig:
    """The C{[security]} section: the automatic block after failed logins and the
    blocklist refresh (durations in seconds; C{auto_block_failures} 0 = no automatic
    blocks; C{exempt_networks} never blocked automatically)."""

    auto_block_failures: int
    auto_block_window: float
    auto_block_duration: float
    exempt_loopback: bool
    exempt_networks: tuple[str, ...]
    refresh_interval: float


@attrs.frozen
class Config:
    """
    The whole configuration.

    @ivar listeners: enabled listeners only, name -> strports endpoint string,
        the file's values merged over L{LISTENER_DEFAULTS}.
    @ivar source: the file this was read from, or L{None} for built-in defaults.
    """

    hostname: str
    data_dir: Path
    database: DatabaseConfig
    tls: TLSConfig
    listeners: Mapping[str, str] = attrs.field(hash=False)
    limits: LimitsConfig
    store: StoreConfig
    auth: AuthConfig
    logging: LoggingConfig
    source: Path | None
    smtp: SmtpConfig
    pop3: Pop3Config
    imap: ImapConfig
    http: HttpConfig
    webhooks: WebhooksConfig
    outbound: OutboundConfig
    security: SecurityConfig
    server: ServerConfig
    manhole: ManholeConfig
    freemail: FreemailConfig

    @property
    def pgdata(self) -> Path:
        """Where the embedded PostgreSQL keeps its cluster."""
        return self.data_dir / "pgdata"
