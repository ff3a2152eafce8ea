# Streaming replication and failover (SPEC §1 v2), with PostgreSQL's own TAP framework: a primary
# and a synchronous hot standby, both preloading cte_ctel. Clients run transfers against the
# primary and record each one acknowledged; the primary is killed with SIGKILL mid-load and the
# standby promoted. Every acknowledged transfer must be on the promoted node, the ledger must
# verify, the read functions must have worked on the standby while it was one (its worker doing
# nothing), and after promotion its worker must take over: a lien expires, a due retry runs.
# Run by tests/failover.sh (as the server's user, from a folder it may write).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $conf = qq(
shared_preload_libraries = 'cte_ctel'
cte_ctel.database = 'ledger'
cte_ctel.worker_interval = '200ms'
cte_ctel.retry_backoff_max_ms = 2000
synchronous_commit = on
);
my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $conf);
$primary->start;
$primary->safe_psql('postgres', 'CREATE DATABASE ledger');
$primary->safe_psql('ledger', q{
    CREATE EXTENSION cte_ctel;
    SELECT cte_ctel.cte_create_account('alice', ARRAY['USD']);
    SELECT cte_ctel.cte_create_account('bob', ARRAY['USD']);
    SELECT cte_ctel.cte_deposit('alice', 1000000, 'USD');
    CREATE FUNCTION public.busy(transaction_id uuid, payload jsonb) RETURNS jsonb
    LANGUAGE plpgsql AS $$ BEGIN
        IF pg_is_in_recovery() OR NOT EXISTS (SELECT 1 FROM public.promoted) THEN
            RAISE EXCEPTION 'not yet' USING ERRCODE = '40001';
        END IF;
        RETURN '{"ran": true}';
    END $$;
    CREATE TABLE public.promoted (at timestamptz);
    DO $do$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'script_registrar') THEN
            CREATE ROLE script_registrar NOLOGIN IN ROLE cte_admin;
        END IF;
    END $do$;
    GRANT SELECT ON public.promoted TO script_registrar;
    ALTER FUNCTION public.busy(uuid, jsonb) OWNER TO script_registrar;
    ALTER FUNCTION public.busy(uuid, jsonb) SET search_path = public, pg_temp;
    SET ROLE script_registrar;
    SELECT cte_ctel.cte_register_executor('test.busy', 'public.busy(uuid, jsonb)');
    RESET ROLE;
});
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
# Once promoted it has no standby of its own: it must not wait for one.
$standby->append_conf('postgresql.conf', "synchronous_standby_names = ''\n");
$standby->start;
# Synchronous from here on: a transfer is acknowledged only once the standby has it.
$primary->append_conf('postgresql.conf', "synchronous_standby_names = 'standby'\n");
$primary->reload;
$primary->poll_query_until('postgres',
    "SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'standby'")
  or die 'the standby became synchronous';

# A retry that falls due after the failover, and a lien that expires after it.
$primary->safe_psql('ledger', q{
    SET cte_ctel.retry_backoff_ms = 3000;
    SELECT cte_ctel.cte_start_event(e) FROM (SELECT cte_ctel.cte_create_event('retried', timeout => '1 hour') AS e) x,
        LATERAL cte_ctel.cte_add_transaction(x.e, 'busy', 'test.busy', '{}', max_attempts => 50);
    SELECT cte_ctel.ctel_create_lien(NULL, 'alice', 7, 'USD', now() + interval '6 seconds');
});

# The load: four clients, each recording a transfer's reference once it is acknowledged.
my $acked = "$PostgreSQL::Test::Utils::tmp_check/acked";
my $connstr = $primary->connstr('ledger');
my @clients;
for my $client (1 .. 4) {
    my $script = qq{
        for i in \$(seq 100000); do
            ref="c$client-\$i"
            psql -X -q -t -A -d '$connstr' -c "SELECT cte_ctel.cte_transfer('alice', 'bob', 0.01, 'USD', '\$ref')" \\
                >/dev/null 2>&1 && echo "\$ref" >> '$acked.$client'
        done
    };
    push @clients, IPC::Run::start(['bash', '-c', $script]);
}

# While it runs, the standby serves every read function, and its worker does nothing.
sleep 2;
my $reads = $standby->safe_psql('ledger', q{
    SELECT cte_ctel.cte_balance('bob', 'USD') > 0,
           cte_ctel.cte_available_balance('alice', 'USD') > 0,
           (SELECT count(*) FROM cte_ctel.cte_account_balances('alice')) = 1,
           (SELECT count(*) FROM cte_ctel.cte_verify_ledger()) = 0,
           (SELECT count(*) FROM cte_ctel.cte_changes(0, 100)) >= 0,
           (SELECT count(*) FROM cte_ctel.cte_event_history) > 0,
           pg_is_in_recovery()});
is($reads, 't|t|t|t|t|t|t', 'a hot standby serves every read function during the load');
my @standby_errors = grep { /ERROR|FATAL|PANIC/ } split /\n/, slurp_file($standby->logfile);
is(scalar(@standby_errors), 0, "the standby's worker idles without an error while it is one")
  or diag(join("\n", @standby_errors));

# SIGKILL the primary mid-load (PG15's framework has no poll_start: wait for the pid to go).
sleep 3;
my $primary_pid = $primary->{_pid};
my $killed_at = time;
$primary->kill9;
usleep(100_000) while kill(0, $primary_pid);
$_->kill_kill for @clients;
$standby->promote;
$standby->poll_query_until('ledger', 'SELECT NOT pg_is_in_recovery()') or die 'promoted';
my $unavailable = time - $killed_at;

my @acked;
for my $client (1 .. 4) {
    next unless -e "$acked.$client";
    open my $file, '<', "$acked.$client" or die $!;
    push @acked, map { chomp; $_ } <$file>;
    close $file;
}
ok(@acked > 20, scalar(@acked) . ' transfers were acknowledged before the kill');
my $list = join(',', map { "'$_'" } @acked);
my $missing = $standby->safe_psql('ledger', qq{
    SELECT count(*) FROM unnest(ARRAY[$list]::text[]) AS a(reference)
     WHERE NOT EXISTS (SELECT 1 FROM cte_ctel.cte_entries e WHERE e.reference = a.reference)});
is($missing, '0', 'every acknowledged transfer is on the promoted standby (none lost)');
is($standby->safe_psql('ledger', 'SELECT count(*) FROM cte_ctel.cte_verify_ledger()'), '0',
    'the promoted ledger verifies');
note("failover: acknowledged " . scalar(@acked) . ", lost $missing, seconds from kill to promoted $unavailable");

# After promotion the worker takes over.
$standby->safe_psql('ledger', 'INSERT INTO public.promoted VALUES (now())');
ok($standby->poll_query_until('ledger',
    "SELECT status = 'expired' FROM cte_ctel.cte_liens WHERE amount = 7"),
    'after promotion the worker expires a lien');
ok($standby->poll_query_until('ledger',
    "SELECT status = 'completed' FROM cte_ctel.cte_events WHERE name = 'retried'"),
    'after promotion the worker runs the due retry');
ok($standby->poll_query_until('ledger',
    'SELECT count(*) = 0 FROM cte_ctel.cte_change_outbox'),
    'after promotion the worker sequences the changes into the feed');
done_testing();
