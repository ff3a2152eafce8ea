-- Balance monitors (SPEC §11, 0.3.0): an administrator asks to be told when a wallet's available
-- balance (balance − reserved) crosses a threshold. `below` fires when a change takes it from
-- ≥ threshold to < threshold, `above` from ≤ threshold to > threshold. Each crossing writes one
-- change of kind `monitor` to the outbox in the transaction that made it, so it reaches the feed
-- with the posting, the hold or the release that crossed, or not at all if that rolls back.
--
-- No cost to wallets without a monitor: a trigger on cte_balances whose WHEN clause reads only
-- the row's own `monitored` flag (set while the wallet has a monitor), so an update of another
-- wallet queues nothing and runs no function.
CREATE TABLE cte_ctel.cte_monitors (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  text NOT NULL,
    currency    text NOT NULL,
    condition   text NOT NULL CHECK (condition IN ('below', 'above')),
    -- NaN and ±Infinity fail this too.
    threshold   numeric NOT NULL CHECK (abs(threshold) < 1e16),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text,
    -- The same request twice is one monitor (a replay returns its id).
    -- No foreign key to cte_balances: its check would be one more piece of work on every
    -- update of every wallet. cte_create_monitor finds and locks the wallet; wallets are never
    -- deleted.
    UNIQUE (account_id, currency, condition, threshold)
);
COMMENT ON TABLE cte_ctel.cte_monitors IS
    'Balance monitors: a change of kind monitor reaches the feed when a wallet''s available balance crosses the threshold.';
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_monitors', '');

CREATE FUNCTION cte_ctel.cte_monitor_crossed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    before_available numeric := OLD.balance - OLD.reserved;
    after_available numeric := NEW.balance - NEW.reserved;
    m record;
BEGIN
    FOR m IN
        SELECT id, condition, threshold FROM cte_ctel.cte_monitors
         WHERE account_id = NEW.account_id AND currency = NEW.currency
           AND ((condition = 'below' AND before_available >= threshold AND after_available < threshold)
             OR (condition = 'above' AND before_available <= threshold AND after_available > threshold))
         ORDER BY created_at, id
    LOOP
        INSERT INTO cte_ctel.cte_change_outbox
               (account_id, actor, reason, kinds, transaction_ids, lien_ids, old_statuses,
                new_statuses, amount, currency, monitor_id)
        VALUES (NEW.account_id, cte_ctel.cte_caller(),
                pg_catalog.format('available balance %s, was %s: %s %s', after_available,
                                  before_available, m.condition, m.threshold),
                ARRAY['monitor'], ARRAY[NULL::uuid], ARRAY[NULL::uuid], ARRAY[NULL::text],
                ARRAY[m.condition], after_available, NEW.currency, m.id);
    END LOOP;
    RETURN NULL;
END
$function$;

CREATE TRIGGER cte_balances_monitored
    AFTER UPDATE OF balance, reserved ON cte_ctel.cte_balances
    FOR EACH ROW
    WHEN (NEW.monitored AND OLD.balance - OLD.reserved IS DISTINCT FROM NEW.balance - NEW.reserved)
    EXECUTE FUNCTION cte_ctel.cte_monitor_crossed();

CREATE FUNCTION cte_ctel.cte_create_monitor(account_id text, currency text, condition text,
                                            threshold numeric)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    -- The most monitors one wallet may have: each posting on a monitored wallet reads them all.
    -- (core/src/limits.rs keeps the engine's other bounds; this one lives only here.)
    monitors_max CONSTANT int := 16;
    wallet record;
    made uuid;
BEGIN
    IF account_id IS NULL OR currency IS NULL OR condition IS NULL OR threshold IS NULL THEN
        RAISE EXCEPTION 'account_id, currency, condition and threshold must not be NULL'
            USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    IF condition NOT IN ('below', 'above') THEN
        RAISE EXCEPTION 'condition is %; it must be ''below'' or ''above''',
            pg_catalog.quote_literal(pg_catalog.left(condition, 40))
            USING ERRCODE = 'L0033', DETAIL = 'reason: argument_out_of_range';
    END IF;
    IF threshold IN ('NaN', 'Infinity', '-Infinity') THEN
        RAISE EXCEPTION 'threshold is %; it must be finite', threshold
            USING ERRCODE = 'L0003', DETAIL = 'reason: amount_not_finite';
    END IF;
    IF pg_catalog.abs(pg_catalog.trunc(threshold)) >= 1e16 THEN
        RAISE EXCEPTION 'threshold has more than 16 digits before the point'
            USING ERRCODE = 'L0006', DETAIL = 'reason: amount_too_large';
    END IF;
    IF left(account_id, 1) = '@' THEN
        RAISE EXCEPTION 'account % is a system account; a monitor watches a wallet',
            pg_catalog.quote_literal(pg_catalog.left(account_id, 70))
            USING ERRCODE = 'L0019', DETAIL = 'reason: system_account_refused';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM cte_ctel.cte_accounts a WHERE a.id = cte_create_monitor.account_id) THEN
        RAISE EXCEPTION 'account % does not exist', pg_catalog.quote_literal(pg_catalog.left(account_id, 70))
            USING ERRCODE = 'L0016', DETAIL = 'reason: account_unknown';
    END IF;
    -- The wallet's row, locked: creating and dropping monitors of one wallet take turns, and a
    -- posting on it waits for the flag (wallets are the last locks a posting takes; this takes
    -- no other).
    SELECT b.status, c.scale INTO wallet
      FROM cte_ctel.cte_balances b JOIN cte_ctel.cte_currencies c ON c.code = b.currency
     WHERE b.account_id = cte_create_monitor.account_id AND b.currency = cte_create_monitor.currency
       FOR UPDATE OF b;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % holds no balance in %',
            pg_catalog.quote_literal(pg_catalog.left(account_id, 70)),
            pg_catalog.quote_literal(pg_catalog.left(currency, 20))
            USING ERRCODE = 'L0018', DETAIL = 'reason: currency_not_held';
    END IF;
    IF wallet.status = 'closed' THEN
        RAISE EXCEPTION 'account % is closed', pg_catalog.quote_literal(account_id)
            USING ERRCODE = 'L0038', DETAIL = 'reason: account_closed';
    END IF;
    IF threshold <> pg_catalog.round(threshold, wallet.scale) THEN
        RAISE EXCEPTION 'threshold % has more decimals than % allows (%)', threshold, currency,
            wallet.scale USING ERRCODE = 'L0005', DETAIL = 'reason: amount_scale_exceeded';
    END IF;
    -- One monitor per request: the same one again returns its id (a replay).
    SELECT m.id INTO made FROM cte_ctel.cte_monitors m
     WHERE m.account_id = cte_create_monitor.account_id AND m.currency = cte_create_monitor.currency
       AND m.condition = cte_create_monitor.condition AND m.threshold = cte_create_monitor.threshold;
    IF made IS NOT NULL THEN
        RETURN made;
    END IF;
    IF (SELECT count(*) FROM cte_ctel.cte_monitors m
         WHERE m.account_id = cte_create_monitor.account_id AND m.currency = cte_create_monitor.currency)
       >= monitors_max THEN
        RAISE EXCEPTION 'account % already has % monitors in %, the most a wallet may have',
            pg_catalog.quote_literal(account_id), monitors_max, currency
            USING ERRCODE = 'L0013', DETAIL = 'reason: limit_exceeded';
    END IF;
    INSERT INTO cte_ctel.cte_monitors (account_id, currency, condition, threshold, created_by)
    VALUES (account_id, currency, condition, threshold, cte_ctel.cte_caller())
    RETURNING id INTO made;
    UPDATE cte_ctel.cte_balances b SET monitored = true
     WHERE b.account_id = cte_create_monitor.account_id AND b.currency = cte_create_monitor.currency
       AND NOT b.monitored;
    RETURN made;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_create_monitor(text, text, text, numeric) IS
    'Watches a wallet''s available balance: a change of kind monitor reaches the feed each time it crosses threshold (below: from >= to <; above: from <= to >). The same request again returns the same monitor.';

CREATE FUNCTION cte_ctel.cte_drop_monitor(id uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    dropped cte_ctel.cte_monitors;
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'id must not be NULL' USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    -- The wallet first (the order cte_create_monitor takes), then the monitor.
    PERFORM 1 FROM cte_ctel.cte_balances b JOIN cte_ctel.cte_monitors m
        ON m.account_id = b.account_id AND m.currency = b.currency
     WHERE m.id = cte_drop_monitor.id FOR UPDATE OF b;
    DELETE FROM cte_ctel.cte_monitors m WHERE m.id = cte_drop_monitor.id RETURNING * INTO dropped;
    IF dropped.id IS NULL THEN
        RETURN false;
    END IF;
    UPDATE cte_ctel.cte_balances b SET monitored = false
     WHERE b.account_id = dropped.account_id AND b.currency = dropped.currency
       AND NOT EXISTS (SELECT 1 FROM cte_ctel.cte_monitors m
                        WHERE m.account_id = dropped.account_id AND m.currency = dropped.currency);
    RETURN true;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_drop_monitor(uuid) IS
    'Drops a balance monitor; returns whether it existed (dropping it again is a replay).';
