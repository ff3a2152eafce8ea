-- Read tenancy (SPEC §12, 0.3.0), off until an administrator turns it on. A marketplace's
-- application roles then read only their own accounts: a role that is a member of cte_tenant
-- sees, in every table, view and read function, the accounts whose owner is a role it has the
-- rights of (pg_has_role … 'USAGE'), and the events, steps, entries, liens and changes that
-- touch them. Roles outside cte_tenant, members of cte_admin and superusers read everything,
-- as before. Writes are not scoped by it (an operator still pays any account it names).
--
-- The caller is the role the session acts as (cte_caller(): the login role or the one set with
-- SET ROLE), as for cancelling an event, in the tables' policies as in the read functions.
--
-- The policies are made here, with the tables' row-level security, and say "everything" while
-- tenancy is off; the switch is a row of cte_read_tenancy, which pg_dump keeps (also in a
-- data-only dump). pg_dump leaves out the policies and the row-level security of an extension's
-- tables, and CREATE EXTENSION makes them again; pg_upgrade keeps them. So tenancy, once on,
-- comes back on with every copy of the database: it never opens by being lost.

-- The role an account belongs to, by name (as cte_events.created_by): by default the role that
-- opened it. An administrator sets it with cte_set_account_owner. Accounts opened before 0.3.0
-- and the system accounts have none: under tenancy only roles that read everything see them.
ALTER TABLE cte_ctel.cte_accounts ADD COLUMN owner text
    CHECK (owner IS NULL OR octet_length(owner) BETWEEN 1 AND 63);
ALTER TABLE cte_ctel.cte_accounts ALTER COLUMN owner SET DEFAULT cte_ctel.cte_caller();
CREATE INDEX cte_accounts_owner_idx ON cte_ctel.cte_accounts (owner) WHERE owner IS NOT NULL;

-- The switch: tenancy is on while this table has its row.
CREATE TABLE cte_ctel.cte_read_tenancy (
    id          int PRIMARY KEY CHECK (id = 1),
    enabled_at  timestamptz NOT NULL DEFAULT now(),
    enabled_by  text NOT NULL DEFAULT cte_ctel.cte_caller()
);
COMMENT ON TABLE cte_ctel.cte_read_tenancy IS
    'Read tenancy is on while this table holds its one row (cte_set_read_tenancy): who turned it on, when.';
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_read_tenancy', '');

-- Views run with their reader's rights, so that the tables' policies apply through them (the
-- readers have SELECT on every table they read, so without tenancy they show what they did).
ALTER VIEW cte_ctel.cte_event_history SET (security_invoker = true);
ALTER VIEW cte_ctel.cte_overdue_events SET (security_invoker = true);
ALTER VIEW cte_ctel.cte_ledger_balances SET (security_invoker = true);
ALTER VIEW cte_ctel.cte_steps_awaiting SET (security_invoker = true);
ALTER VIEW cte_ctel.cte_stats SET (security_invoker = true);

-- Whether the caller reads everything: tenancy is off, or neither the session's role nor the
-- session's login (session_user, unless a superuser) is a member of cte_tenant, or the session's
-- role has cte_admin's rights (superusers have every role's). The login counts so that a tenant
-- cannot step out of tenancy by SET ROLE to a role it is a member of (cte_reader, say).
CREATE FUNCTION cte_ctel.cte_reads_all() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT NOT EXISTS (SELECT 1 FROM cte_ctel.cte_read_tenancy)
        OR COALESCE(pg_catalog.pg_has_role(cte_ctel.cte_caller(),
                                           pg_catalog.to_regrole('cte_admin'), 'USAGE'), false)
        OR NOT (COALESCE(pg_catalog.pg_has_role(cte_ctel.cte_caller(),
                                                pg_catalog.to_regrole('cte_tenant'), 'MEMBER'), false)
                OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                            WHERE r.rolname = session_user AND NOT r.rolsuper
                              AND COALESCE(pg_catalog.pg_has_role(r.oid,
                                               pg_catalog.to_regrole('cte_tenant'), 'MEMBER'),
                                           false)))
$$;
COMMENT ON FUNCTION cte_ctel.cte_reads_all() IS
    'Whether the calling role reads every account (read tenancy off, or the role outside cte_tenant, or an administrator).';

-- The roles whose accounts and events a tenant reads: those it has the rights of, but for the
-- extension's own, which every tenant has (an account opened while acting as cte_operator is
-- no tenant's).
CREATE FUNCTION cte_ctel.cte_tenant_roles() RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.rolname::text FROM pg_catalog.pg_roles r
     WHERE pg_catalog.pg_has_role(cte_ctel.cte_caller(), r.oid, 'USAGE')
       AND r.rolname NOT IN ('cte_reader', 'cte_operator', 'cte_admin', 'cte_tenant')
$$;
COMMENT ON FUNCTION cte_ctel.cte_tenant_roles() IS
    'The roles the calling role has the rights of, but for the extension''s own: whose accounts and events a tenant reads.';

-- The accounts a tenant owns: those whose owner is one of its roles.
CREATE FUNCTION cte_ctel.cte_owned_accounts() RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.id FROM cte_ctel.cte_accounts a
     WHERE a.owner IN (SELECT cte_ctel.cte_tenant_roles())
$$;
COMMENT ON FUNCTION cte_ctel.cte_owned_accounts() IS
    'The accounts whose owner is a role the calling role has the rights of.';

CREATE FUNCTION cte_ctel.cte_may_read_account(account_id text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT cte_ctel.cte_reads_all()
        OR account_id IN (SELECT cte_ctel.cte_owned_accounts())
$$;
COMMENT ON FUNCTION cte_ctel.cte_may_read_account(text) IS
    'Whether the calling role may read the account (always, unless read tenancy limits it).';

-- An event a tenant may read: one it (or a role whose rights it has) created, or one that posted
-- to or held funds on an account it owns.
CREATE FUNCTION cte_ctel.cte_may_read_event(event_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT cte_ctel.cte_reads_all()
        OR EXISTS (SELECT 1 FROM cte_ctel.cte_events e
                    WHERE e.id = event_id AND e.created_by IN (SELECT cte_ctel.cte_tenant_roles()))
        OR EXISTS (SELECT 1 FROM cte_ctel.cte_transactions t
                     JOIN cte_ctel.cte_entries n ON n.transaction_id = t.id
                    WHERE t.event_id = cte_may_read_event.event_id
                      AND n.account_id IN (SELECT cte_ctel.cte_owned_accounts()))
        OR EXISTS (SELECT 1 FROM cte_ctel.cte_liens l
                    WHERE l.event_id = cte_may_read_event.event_id
                      AND l.account_id IN (SELECT cte_ctel.cte_owned_accounts()))
$$;
COMMENT ON FUNCTION cte_ctel.cte_may_read_event(uuid) IS
    'Whether the calling role may read the event: always, unless read tenancy limits it to those it created or that touched its accounts.';

-- A row of the change feed (or its outbox) a tenant may read: of an account it reads, of an
-- event it reads, or of a lien on an account it reads.
CREATE FUNCTION cte_ctel.cte_may_read_change(event_id uuid, account_id text, lien_ids uuid[])
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT cte_ctel.cte_reads_all()
        OR (account_id IS NOT NULL AND cte_ctel.cte_may_read_account(account_id))
        OR (event_id IS NOT NULL AND cte_ctel.cte_may_read_event(event_id))
        OR EXISTS (SELECT 1 FROM cte_ctel.cte_liens l
                    WHERE l.id = ANY (lien_ids)
                      AND l.account_id IN (SELECT cte_ctel.cte_owned_accounts()))
$$;
COMMENT ON FUNCTION cte_ctel.cte_may_read_change(uuid, text, uuid[]) IS
    'Whether the calling role may read a row of the change feed (always, unless read tenancy limits it).';

-- One policy per table: every row while the caller reads everything (asked once per query, as
-- the policy's InitPlan), otherwise the rows of what it may read.
DO $do$
DECLARE
    rule record;
BEGIN
    FOR rule IN SELECT * FROM (VALUES
        ('cte_accounts', 'id IN (SELECT cte_ctel.cte_owned_accounts())'),
        ('cte_balances', 'account_id IN (SELECT cte_ctel.cte_owned_accounts())'),
        ('cte_entries', 'account_id IN (SELECT cte_ctel.cte_owned_accounts())'),
        ('cte_liens', 'account_id IN (SELECT cte_ctel.cte_owned_accounts())'),
        ('cte_monitors', 'account_id IN (SELECT cte_ctel.cte_owned_accounts())'),
        ('cte_entry_links', 'EXISTS (SELECT 1 FROM cte_ctel.cte_entries n WHERE n.id = entry_id)'),
        ('cte_events', 'cte_ctel.cte_may_read_event(id)'),
        ('cte_transactions', 'cte_ctel.cte_may_read_event(event_id)'),
        ('cte_references',
         'EXISTS (SELECT 1 FROM cte_ctel.cte_transactions t WHERE t.id = transaction_id)'),
        ('cte_change_log', 'cte_ctel.cte_may_read_change(event_id, account_id, lien_ids)'),
        ('cte_change_outbox', 'cte_ctel.cte_may_read_change(event_id, account_id, lien_ids)'),
        ('cte_system_balances', 'false'),
        ('cte_system_deltas', 'false')) AS r(relation, visible)
    LOOP
        EXECUTE format('CREATE POLICY cte_read_tenancy ON cte_ctel.%I FOR SELECT '
                       'USING ((SELECT cte_ctel.cte_reads_all()) OR %s)',
                       rule.relation, rule.visible);
        EXECUTE format('ALTER TABLE cte_ctel.%I ENABLE ROW LEVEL SECURITY', rule.relation);
    END LOOP;
END
$do$;

-- Turns read tenancy on or off; either way again changes nothing. Returns whether it is on.
CREATE FUNCTION cte_ctel.cte_set_read_tenancy(enabled boolean) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF enabled IS NULL THEN
        RAISE EXCEPTION 'enabled must not be NULL'
            USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    IF enabled THEN
        INSERT INTO cte_ctel.cte_read_tenancy (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
    ELSE
        DELETE FROM cte_ctel.cte_read_tenancy;
    END IF;
    RETURN enabled;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_set_read_tenancy(boolean) IS
    'Turns read tenancy on or off: members of cte_tenant then read only the accounts they own and what touches them.';

-- Gives an account to a role (NULL: to none), for read tenancy. The role must exist.
CREATE FUNCTION cte_ctel.cte_set_account_owner(account_id text, owner text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    found boolean;
BEGIN
    IF account_id IS NULL THEN
        RAISE EXCEPTION 'account_id must not be NULL'
            USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    IF owner IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname::text = owner) THEN
        RAISE EXCEPTION 'owner % is not valid: no role has that name', pg_catalog.left(owner, 100)
            USING ERRCODE = 'L0008', DETAIL = 'reason: identifier_invalid',
                  HINT = 'name an existing role, or NULL for none';
    END IF;
    IF owner IN ('cte_reader', 'cte_operator', 'cte_admin', 'cte_tenant') THEN
        RAISE EXCEPTION 'owner % is not valid: every tenant has the rights of the extension''s roles', owner
            USING ERRCODE = 'L0008', DETAIL = 'reason: identifier_invalid',
                  HINT = 'give the account to a role of its own tenant, or NULL for none';
    END IF;
    UPDATE cte_ctel.cte_accounts a SET owner = cte_set_account_owner.owner
     WHERE a.id = cte_set_account_owner.account_id
    RETURNING true INTO found;
    IF found IS NULL THEN
        RAISE EXCEPTION 'account % does not exist', pg_catalog.left(account_id, 100)
            USING ERRCODE = 'L0016', DETAIL = 'reason: account_unknown';
    END IF;
    RETURN owner;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_set_account_owner(text, text) IS
    'Gives an account to a role (NULL: to none): under read tenancy, the members of cte_tenant with that role''s rights read it.';
