//! Custom executors in SQL: registering a step type's functions, and finding them again, with
//! everything needed to decide whether they may still run (who owns them, where they live).

use cte_ctel_core::engine::executors::custom::{self, FunctionFacts};
use cte_ctel_core::CteError;
use pgrx::pg_sys::Oid;
use pgrx::prelude::*;

use super::{required, run_cached, select_one, spi};

/// A function of an executor, resolved now from its stored signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorFunction {
    /// As stored: schema-qualified name and argument types.
    pub signature: String,
    /// What the signature names now, if anything.
    pub oid: Option<Oid>,
    pub facts: FunctionFacts,
}

/// A custom step type's functions and the role they run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executor {
    pub registrant: String,
    /// The registrant's role, if it still exists.
    pub registrant_oid: Option<Oid>,
    /// The registrant is a superuser now (refused since 0.3.0: SPEC §12).
    pub registrant_superuser: bool,
    pub execute: ExecutorFunction,
    pub compensate: Option<ExecutorFunction>,
}

// The facts of the function a stored signature names now, for the role whose oid is r.oid.
macro_rules! function_facts {
    ($signature:literal) => {
        concat!(
            "SELECT p.oid, p.proowner = r.oid AS owned,
                    n.nspname LIKE 'pg\\_temp\\_%' OR n.nspname LIKE 'pg\\_toast\\_temp\\_%'
                        AS temporary,
                    p.prokind = 'f' AND NOT p.proretset AS plain,
                    COALESCE(pg_catalog.has_function_privilege(r.oid, p.oid, 'EXECUTE'), false)
                        AS executable,
                    (SELECT pg_catalog.substr(c, 13) FROM pg_catalog.unnest(p.proconfig) AS c
                      WHERE c LIKE 'search\\_path=%' LIMIT 1) AS search_path,
                    p.prorettype::pg_catalog.regtype::text AS returns,
                    pg_catalog.oidvectortypes(p.proargtypes) AS arguments
               FROM pg_catalog.pg_proc p
               JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
              WHERE p.oid = pg_catalog.to_regprocedure(",
            $signature,
            ")"
        )
    };
}

const EXECUTOR: &str = concat!(
    "SELECT e.registrant, r.oid, e.execute_fn, e.compensate_fn,
            x.oid, x.owned, x.temporary, x.plain, x.executable, x.search_path, x.returns,
            x.arguments, c.oid, c.owned, c.temporary, c.plain, c.executable, c.search_path,
            c.returns, c.arguments,
            COALESCE(r.rolsuper, false)
       FROM cte_ctel.cte_executors e
       LEFT JOIN pg_catalog.pg_roles r ON r.rolname = e.registrant
       LEFT JOIN LATERAL (",
    function_facts!("e.execute_fn"),
    ") x ON true
       LEFT JOIN LATERAL (",
    function_facts!("e.compensate_fn"),
    ") c ON true
      WHERE e.type = $1"
);

// The facts of a signature ($1) for a registration by the role $2.
const FUNCTION: &str = concat!(
    "SELECT f.oid, f.owned, f.temporary, f.plain, f.executable, f.search_path, f.returns,
            f.arguments
       FROM (SELECT $2::oid AS oid) r
       LEFT JOIN LATERAL (",
    function_facts!("$1"),
    ") f ON true"
);

fn function_of(
    row: &pgrx::spi::SpiHeapTupleData,
    first: usize,
    signature: String,
    query: &str,
) -> ExecutorFunction {
    let flag = |ordinal| spi(row.get::<bool>(ordinal), query) == Some(true);
    let text = |ordinal| spi(row.get::<String>(ordinal), query);
    let oid = spi(row.get::<Oid>(first), query);
    ExecutorFunction {
        signature,
        oid,
        facts: FunctionFacts {
            exists: oid.is_some(),
            owned_by_registrant: flag(first + 1),
            temporary: flag(first + 2),
            plain: flag(first + 3),
            executable_by_registrant: flag(first + 4),
            // Read as PostgreSQL reads the setting (quotes, case, spaces): core decides.
            search_path_pinned: custom::pins_pg_temp_last(text(first + 5).as_deref()),
            // NULL where the function is gone (`exists` is then false and refuses it first).
            returns: text(first + 6).unwrap_or_else(|| "(none)".into()),
            arguments: text(first + 7).unwrap_or_else(|| "(none)".into()),
        },
    }
}

/// The executor of a custom type, if one is registered.
pub fn executor(step_type: &str) -> Option<Executor> {
    Spi::connect_mut(|client| {
        let table = run_cached(client, EXECUTOR, &[step_type.into()], false);
        let row = table.into_iter().next()?;
        let text = |ordinal| spi(row.get::<String>(ordinal), EXECUTOR);
        let signature = required(text(3), EXECUTOR, "the execute function's signature");
        let execute = function_of(&row, 5, signature, EXECUTOR);
        let compensate = text(4).map(|signature| function_of(&row, 13, signature, EXECUTOR));
        Some(Executor {
            registrant: required(text(1), EXECUTOR, "the registrant"),
            registrant_oid: spi(row.get::<Oid>(2), EXECUTOR),
            registrant_superuser: spi(row.get::<bool>(21), EXECUTOR) != Some(false),
            execute,
            compensate,
        })
    })
}

/// The facts of the function `oid` names, for a registration by `registrant`.
pub fn function(oid: Oid, registrant: Oid) -> ExecutorFunction {
    // `regprocedure` takes a bare number unchecked: an oid no function has names nothing.
    let Some(signature) = signature_of(oid) else {
        return ExecutorFunction {
            signature: format!("(no function has oid {})", u32::from(oid)),
            oid: None,
            facts: FunctionFacts {
                exists: false,
                owned_by_registrant: false,
                temporary: false,
                plain: false,
                executable_by_registrant: false,
                search_path_pinned: false,
                returns: "(none)".into(),
                arguments: "(none)".into(),
            },
        };
    };
    Spi::connect_mut(|client| {
        let args = [signature.as_str().into(), registrant.into()];
        let mut table = run_cached(client, FUNCTION, &args, false);
        let row = table.next();
        assert!(row.is_some(), "a lateral join returns its one row");
        match row {
            Some(row) => function_of(&row, 1, signature.clone(), FUNCTION),
            None => panic!("a lateral join returns its one row"),
        }
    })
}

// Spelled out (quoted schema and name, argument types): a text that names the same function
// whatever the search path, and that a dump and restore (or pg_upgrade) keep, as an oid would
// not be.
const SIGNATURE: &str = "
    SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname)
           || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')'
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE p.oid = $1";

/// The schema-qualified signature of a function; `None` when no function has this oid.
pub fn signature_of(oid: Oid) -> Option<String> {
    select_one::<String>(SIGNATURE, &[oid.into()])
}

const EXECUTOR_UPSERT: &str = "
    INSERT INTO cte_ctel.cte_executors (type, execute_fn, compensate_fn, registrant)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (type) DO UPDATE
       SET execute_fn = EXCLUDED.execute_fn, compensate_fn = EXCLUDED.compensate_fn,
           registrant = EXCLUDED.registrant, registered_at = now()";

/// Records an executor, already checked.
pub fn save(
    step_type: &str,
    execute_fn: &str,
    compensate_fn: Option<&str>,
    registrant: &str,
) -> Result<(), CteError> {
    let args = [step_type.into(), execute_fn.into(), compensate_fn.into(), registrant.into()];
    Spi::connect_mut(|client| {
        run_cached(client, EXECUTOR_UPSERT, &args, true);
    });
    Ok(())
}

const EXECUTOR_REGISTERED: &str =
    "SELECT EXISTS (SELECT 1 FROM cte_ctel.cte_executors WHERE type = $1)";

// 0.3.0: the types the application hosts (sql/external_types.sql). Before the update a
// database has no such table, and no such type.
const HOSTED_TABLE: &str =
    "SELECT pg_catalog.to_regclass('cte_ctel.cte_external_types') IS NOT NULL";
const HOSTED: &str = "SELECT EXISTS (SELECT 1 FROM cte_ctel.cte_external_types WHERE type = $1)";

const LOCK_HOSTED: &str = "LOCK TABLE cte_ctel.cte_external_types IN SHARE ROW EXCLUSIVE MODE";

/// Takes the lock both registrations take before they look at the other's table, so that no
/// type is both hosted and run by an executor however they race (a lock that conflicts with
/// itself, held to the end of the transaction).
pub fn lock_hosted_types() {
    if select_one::<bool>(HOSTED_TABLE, &[]) == Some(true) {
        Spi::connect_mut(|client| {
            run_cached(client, LOCK_HOSTED, &[], true);
        });
    }
}

/// Whether `step_type` is registered as hosted by the application (`cte_register_external_type`).
pub fn is_hosted(step_type: &str) -> bool {
    select_one::<bool>(HOSTED_TABLE, &[]) == Some(true)
        && select_one::<bool>(HOSTED, &[step_type.into()]) == Some(true)
}

const ROLE_IS_SUPERUSER: &str =
    "SELECT COALESCE((SELECT rolsuper FROM pg_catalog.pg_roles WHERE oid = $1), true)";

/// Whether a role is a superuser (an unknown one counts as one: it is refused either way).
pub fn is_superuser(role: Oid) -> bool {
    select_one::<bool>(ROLE_IS_SUPERUSER, &[role.into()]) != Some(false)
}

/// Whether a custom type has a registered executor.
pub fn is_registered(step_type: &str) -> bool {
    select_one::<bool>(EXECUTOR_REGISTERED, &[step_type.into()]) == Some(true)
}

const EXTENSION_OWNER: &str =
    "SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'cte_ctel'";

/// The role that owns the extension (None only where it is not installed).
pub fn extension_owner() -> Option<pgrx::pg_sys::Oid> {
    super::select_one::<pgrx::pg_sys::Oid>(EXTENSION_OWNER, &[])
}
