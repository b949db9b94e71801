-- a3mail schema, version 12: a3mail_add_message also returns the mailbox's UIDVALIDITY (an
-- IMAP APPEND answers APPENDUID without a second query) and its message.added event
-- carries the new message's flags and keywords (sessions that have the mailbox selected
-- add it to their view without reading it back).  Otherwise as in version 1.
DROP FUNCTION a3mail_add_message(
    bigint, text, boolean, boolean, bigint, integer, text[], timestamptz, text, text,
    integer, timestamptz, text, text, text, text, boolean, text, text, jsonb, text, text
);

CREATE FUNCTION a3mail_add_message(
    p_account_id bigint, p_mailbox text, p_fallback_inbox boolean, p_check_quota boolean,
    p_size bigint, p_flags integer, p_keywords text[], p_internal_date timestamptz,
    p_blob_path text, p_channel text,
    p_header_size integer, p_sent_date timestamptz, p_subject text, p_from_addr text,
    p_to_addr text, p_message_id text, p_has_attachments boolean, p_verification_code text,
    p_preview text, p_parsed jsonb, p_body_text text, p_body_html text,
    OUT status text, OUT mailbox_id bigint, OUT uid bigint, OUT modseq bigint,
    OUT uidvalidity bigint
) LANGUAGE plpgsql AS $$
DECLARE
    v_enabled boolean;
BEGIN
    UPDATE accounts a
       SET used_bytes = a.used_bytes + p_size, message_count = a.message_count + 1
     WHERE a.id = p_account_id AND a.enabled
       AND (NOT p_check_quota OR a.quota_bytes = 0 OR a.used_bytes + p_size <= a.quota_bytes);
    IF NOT FOUND THEN
        SELECT a.enabled INTO v_enabled FROM accounts a WHERE a.id = p_account_id;
        status := CASE WHEN v_enabled IS NULL THEN 'unknown'
                       WHEN NOT v_enabled THEN 'disabled' ELSE 'over_quota' END;
        RETURN;
    END IF;
    SELECT m.id INTO mailbox_id FROM mailboxes m
     WHERE m.account_id = p_account_id AND m.name = p_mailbox;
    IF mailbox_id IS NULL AND p_fallback_inbox THEN
        SELECT m.id INTO mailbox_id FROM mailboxes m
         WHERE m.account_id = p_account_id AND m.name = 'INBOX';
    END IF;
    IF mailbox_id IS NULL THEN
        -- undo the usage added above: the caller turns this into "no such mailbox"
        UPDATE accounts a SET used_bytes = a.used_bytes - p_size,
               message_count = a.message_count - 1 WHERE a.id = p_account_id;
        status := 'no_mailbox';
        RETURN;
    END IF;
    UPDATE mailboxes m
       SET uidnext = m.uidnext + 1, highestmodseq = m.highestmodseq + 1,
           message_count = m.message_count + 1,
           unseen_count = m.unseen_count + CASE WHEN p_flags & 1 = 0 THEN 1 ELSE 0 END,
           total_bytes = m.total_bytes + p_size
     WHERE m.id = mailbox_id
    RETURNING m.uidnext - 1, m.highestmodseq, m.uidvalidity INTO uid, modseq, uidvalidity;
    INSERT INTO messages (mailbox_id, account_id, uid, modseq, flags, keywords, internal_date,
                          size, blob_path, header_size, sent_date, subject, from_addr, to_addr,
                          message_id, has_attachments, verification_code, preview, parsed,
                          body_text, body_html)
    VALUES (mailbox_id, p_account_id, uid, modseq, p_flags, p_keywords, p_internal_date,
            p_size, p_blob_path, p_header_size, p_sent_date, p_subject, p_from_addr, p_to_addr,
            p_message_id, p_has_attachments, p_verification_code, p_preview, p_parsed,
            p_body_text, p_body_html);
    PERFORM pg_notify(p_channel, json_build_object(
        'type', 'message.added', 'account_id', p_account_id, 'mailbox_id', mailbox_id,
        'uid', uid, 'modseq', modseq, 'flags', p_flags, 'keywords', p_keywords)::text);
    status := 'delivered';
END
$$;
