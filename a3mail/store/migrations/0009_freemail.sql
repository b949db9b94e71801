-- a3mail schema, version 9: the freemail API (users, their mailboxes, sent mail).
--
-- freemail_users: the API's own users (role user or admin; the strict admin lives in the
-- configuration, not here).  mailbox_limit: how many mailboxes the user may own.
-- freemail_mailboxes: one row per mailbox made through the freemail API (an ordinary
-- account, created_by_key = 'freemail'): its own login password (NULL: the default, the
-- address itself), whether it may log in, favourite, and the forward target.  The forward
-- is ALSO an alias row (address -> target) so SMTP delivery forwards through the outbound
-- queue; the trigger below removes that alias when the mailbox goes (cascade included).
-- freemail_user_mailboxes: which user owns which mailbox, and the user's pin.
-- freemail_sent: mail sent through POST /api/send; status follows the outbound queue
-- through the triggers on outbound_queue (queue rows vanish once finished).

CREATE TABLE freemail_users (
    id             bigserial PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username <> ''),
    password_hash  text NOT NULL,
    role           text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    mailbox_limit  integer NOT NULL DEFAULT 10 CHECK (mailbox_limit >= 0),
    can_send       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE freemail_mailboxes (
    account_id     bigint PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    address        text NOT NULL UNIQUE,
    password_hash  text,
    can_login      boolean NOT NULL DEFAULT false,
    is_favorite    boolean NOT NULL DEFAULT false,
    is_pinned      boolean NOT NULL DEFAULT false,   -- the admins' pin (they see all)
    forward_to     text,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE freemail_user_mailboxes (
    user_id     bigint NOT NULL REFERENCES freemail_users (id) ON DELETE CASCADE,
    account_id  bigint NOT NULL REFERENCES freemail_mailboxes (account_id) ON DELETE CASCADE,
    is_pinned   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, account_id)
);
CREATE INDEX freemail_user_mailboxes_account_idx ON freemail_user_mailboxes (account_id);

CREATE TABLE freemail_sent (
    id                bigserial PRIMARY KEY,
    account_id        bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    from_addr         text NOT NULL,
    recipients        text[] NOT NULL,
    subject           text NOT NULL DEFAULT '',
    html_content      text NOT NULL DEFAULT '',
    text_content      text NOT NULL DEFAULT '',
    status            text NOT NULL DEFAULT 'queued',
    scheduled_at      timestamptz,
    queue_message_id  bigint,              -- outbound_messages.id (gone once finished)
    queue_entry_ids   bigint[] NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX freemail_sent_account_idx ON freemail_sent (account_id, id);
CREATE INDEX freemail_sent_queue_idx ON freemail_sent (queue_message_id)
    WHERE queue_message_id IS NOT NULL;

-- A finished queue entry sets the status of the sent record it belongs to.
CREATE FUNCTION freemail_sent_follow_queue() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.state IS DISTINCT FROM OLD.state THEN
        UPDATE freemail_sent SET status = CASE
            WHEN EXISTS (SELECT 1 FROM outbound_queue q WHERE q.message_id = NEW.message_id
                         AND q.state IN ('queued', 'sending')) THEN status
            WHEN EXISTS (SELECT 1 FROM outbound_queue q WHERE q.message_id = NEW.message_id
                         AND q.state = 'bounced') THEN 'bounced'
            WHEN EXISTS (SELECT 1 FROM outbound_queue q WHERE q.message_id = NEW.message_id
                         AND q.state = 'failed') THEN 'failed'
            ELSE 'delivered' END
        WHERE queue_message_id = NEW.message_id AND status IN ('queued', 'scheduled', 'sending');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER freemail_sent_follow_queue AFTER UPDATE OF state ON outbound_queue
    FOR EACH ROW EXECUTE FUNCTION freemail_sent_follow_queue();

-- Queue entries removed before they finished (an operator's `a3mail queue delete`) leave
-- their send canceled once none of its entries is left open.
CREATE FUNCTION freemail_sent_entry_gone() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE freemail_sent SET status = 'canceled'
     WHERE queue_message_id = OLD.message_id AND status IN ('queued', 'scheduled', 'sending')
       AND NOT EXISTS (SELECT 1 FROM outbound_queue q WHERE q.message_id = OLD.message_id
                       AND q.state IN ('queued', 'sending'));
    RETURN NULL;
END $$;
CREATE TRIGGER freemail_sent_entry_gone AFTER DELETE ON outbound_queue
    FOR EACH ROW EXECUTE FUNCTION freemail_sent_entry_gone();

-- A mailbox that goes (deleted, reaped, its account removed) takes its forward alias along.
CREATE FUNCTION freemail_drop_forward() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF OLD.forward_to IS NOT NULL THEN
        DELETE FROM aliases WHERE address = OLD.address AND target = OLD.forward_to;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER freemail_drop_forward AFTER DELETE ON freemail_mailboxes
    FOR EACH ROW EXECUTE FUNCTION freemail_drop_forward();
