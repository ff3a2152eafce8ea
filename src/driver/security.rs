//! Running a custom executor's functions with the rights of the role that registered them.
//!
//! The API's functions are SECURITY DEFINER (they own the tables), so anything they call runs
//! as the extension's owner, a superuser, unless told otherwise: an executor's body, and every
//! trigger, operator or function its statements reach. PostgreSQL's own answer for running user
//! code inside a privileged operation (REFRESH MATERIALIZED VIEW, an index expression) is to
//! switch the current user to the code's owner in a security-restricted operation for the call,
//! and to roll back any setting the code changed; `SET ROLE` is refused in a definer function.
//! This does the same: the function is called by oid (resolved and re-checked just before:
//! owner, schema, shape), as the registrant, in a new setting nest level undone afterwards, so
//! it cannot leave a `search_path` behind for the definer code that runs after it.
//! It runs inside the step's subtransaction: an error unwinds through the guard, and the
//! subtransaction's abort restores the user and settings too.

use std::ffi::c_int;

use cte_ctel_core::engine::executors::custom::{self, Role};
use cte_ctel_core::CteError;
use pgrx::pg_sys::{self, Datum, Oid};

use crate::store::executors::{Executor, ExecutorFunction};

/// The user and security context to return to.
struct Restore {
    user: Oid,
    context: c_int,
    nest_level: c_int,
}

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: undoes exactly what `as_registrant` did, in reverse order.
        unsafe {
            pg_sys::AtEOXact_GUC(false, self.nest_level);
            pg_sys::SetUserIdAndSecContext(self.user, self.context);
        }
    }
}

/// Runs `call` as `role`, restricted, with any setting it changes undone afterwards.
fn as_registrant<T>(role: Oid, call: impl FnOnce() -> T) -> T {
    let (mut user, mut context) = (Oid::INVALID, 0);
    // SAFETY: reads and sets the backend's current user, as PostgreSQL's own privileged
    // operations do around user code; `Restore` puts them back on every way out.
    let _restore = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        let nest_level = pg_sys::NewGUCNestLevel();
        let restricted = context
            | pg_sys::SECURITY_LOCAL_USERID_CHANGE as c_int
            | pg_sys::SECURITY_RESTRICTED_OPERATION as c_int;
        pg_sys::SetUserIdAndSecContext(role, restricted);
        Restore { user, context, nest_level }
    };
    call()
}

/// The role and function oid to run `role` of `executor` with, checked now.
pub fn checked(
    step_type: &str,
    executor: &Executor,
    role: Role,
) -> Result<Option<(Oid, Oid)>, CteError> {
    let function: Option<&ExecutorFunction> = match role {
        Role::Execute => Some(&executor.execute),
        Role::Compensate => executor.compensate.as_ref(),
    };
    let Some(function) = function else {
        return Ok(None);
    };
    let Some(registrant) = executor.registrant_oid else {
        return Err(CteError::ExecutorInvalid {
            step_type: step_type.into(),
            why: format!("its registrant {:?} no longer exists", executor.registrant),
            fix: custom::FIX_REGISTRANT,
        });
    };
    // Executors a superuser registered before 0.3.0 are refused here, with how to register
    // them again.
    custom::check_registrant(step_type, &executor.registrant, executor.registrant_superuser)?;
    custom::check(step_type, &executor.registrant, role, &function.facts)?;
    assert!(function.oid.is_some(), "a checked function exists");
    Ok(function.oid.map(|oid| (registrant, oid)))
}

/// PostgreSQL's `STATEMENT_TIMEOUT` timer (`utils/timeout.h`: the fourth `TimeoutId` in every
/// version since 9.3). Armed around an executor, its expiry is reported as PostgreSQL reports
/// a statement timeout: 57014, "canceling statement due to statement timeout".
const STATEMENT_TIMEOUT: c_int = 3;

// `utils/timeout.h`, which pgrx does not bind.
unsafe extern "C-unwind" {
    fn enable_timeout_after(id: c_int, delay_ms: c_int);
    fn disable_timeout(id: c_int, keep_indicator: bool);
    fn get_timeout_active(id: c_int) -> bool;
}

/// The statement timer armed for one executor call; disarmed when dropped (also when the call
/// raised), keeping its indicator so that a timeout that fired is reported as one.
struct ExecutorDeadline {
    armed: bool,
}

impl ExecutorDeadline {
    /// Arms the timer for `timeout_ms` (0: no limit), unless a statement timeout of the
    /// session's own is already running: that one governs, and is left alone.
    fn arm(timeout_ms: c_int) -> ExecutorDeadline {
        // SAFETY: timeout.c's API, used as PostgreSQL's own statement-timeout code uses it.
        let armed = timeout_ms > 0 && !unsafe { get_timeout_active(STATEMENT_TIMEOUT) };
        if armed {
            // SAFETY: as above; the timer handler only sets flags and signals this process.
            unsafe { enable_timeout_after(STATEMENT_TIMEOUT, timeout_ms) };
        }
        ExecutorDeadline { armed }
    }
}

impl Drop for ExecutorDeadline {
    fn drop(&mut self) {
        if self.armed {
            // SAFETY: disarms the timer this guard armed.
            unsafe { disable_timeout(STATEMENT_TIMEOUT, true) };
        }
    }
}

/// Calls `function` by oid with `args` (each `None` for SQL NULL) as `registrant`, under
/// `cte_ctel.executor_timeout`; returns its result (`None` for NULL). A strict function with a
/// NULL argument is not called, as SQL would not call it.
pub fn call(registrant: Oid, function: Oid, args: &[Option<Datum>]) -> Option<Datum> {
    let timeout_ms = crate::gucs::executor_timeout_ms();
    let deadline = ExecutorDeadline::arm(timeout_ms);
    let armed = deadline.armed;
    let started = std::time::Instant::now();
    let result = call_unbounded(registrant, function, args);
    let took = started.elapsed();
    drop(deadline);
    // A timeout that fired as the function returned is reported here, inside the step.
    pgrx::check_for_interrupts!();
    // One that fired during the call, and that the function caught (`EXCEPTION WHEN
    // query_canceled`) before returning, left no trace but the time: the call ran over it all the
    // same, and is failed as PostgreSQL fails a statement that does, whatever it returned.
    if armed && took.as_millis() >= u128::try_from(timeout_ms).unwrap_or(0) {
        crate::raise::unwinding(crate::raise::Unwinding {
            code: pgrx::PgSqlErrorCode::ERRCODE_QUERY_CANCELED,
            message: "canceling statement due to statement timeout".into(),
            detail: None,
            hint: None,
            function: "cte_ctel executor",
        });
    }
    result
}

fn call_unbounded(registrant: Oid, function: Oid, args: &[Option<Datum>]) -> Option<Datum> {
    as_registrant(registrant, || {
        // SAFETY: the FmgrInfo and the call data are set up as fmgr.h's InitFunctionCallInfoData
        // does, with room for `args.len()` arguments; the function was checked to be a plain
        // function taking exactly these arguments.
        unsafe {
            let mut flinfo: pg_sys::FmgrInfo = std::mem::zeroed();
            pg_sys::fmgr_info(function, &mut flinfo);
            if flinfo.fn_strict && args.iter().any(Option::is_none) {
                return None;
            }
            let size = std::mem::size_of::<pg_sys::FunctionCallInfoBaseData>()
                + std::mem::size_of::<pg_sys::NullableDatum>() * args.len();
            let fcinfo = pg_sys::palloc0(size).cast::<pg_sys::FunctionCallInfoBaseData>();
            (*fcinfo).flinfo = &mut flinfo;
            (*fcinfo).nargs = i16::try_from(args.len()).unwrap_or(i16::MAX);
            (*fcinfo).fncollation = pg_sys::InvalidOid;
            let slots = (*fcinfo).args.as_mut_slice(args.len());
            for (slot, arg) in slots.iter_mut().zip(args) {
                *slot = pg_sys::NullableDatum {
                    value: arg.unwrap_or(Datum::from(0)),
                    isnull: arg.is_none(),
                };
            }
            let call = flinfo.fn_addr;
            assert!(call.is_some(), "fmgr_info always sets fn_addr");
            // Through pgrx's boundary: an error the function raises (a longjmp) becomes a Rust
            // panic that unwinds through `Restore` to the step's subtransaction.
            let result = call
                .map(|function_addr| pg_sys::ffi::pg_guard_ffi_boundary(|| function_addr(fcinfo)))
                .unwrap_or(Datum::from(0));
            let is_null = (*fcinfo).isnull;
            pg_sys::pfree(fcinfo.cast());
            (!is_null).then_some(result)
        }
    })
}

/// Runs `call` as the extension's owner, whoever calls: for a SECURITY INVOKER entry point
/// (executor registration) to write the one row it checked the caller may have written.
pub fn as_extension_owner<T>(call: impl FnOnce() -> T) -> T {
    let owner = crate::store::executors::extension_owner();
    assert!(owner.is_some(), "the extension is installed when its functions run");
    let (mut user, mut context) = (Oid::INVALID, 0);
    // SAFETY: as `as_registrant`, without the restriction: this is our own statement.
    let _restore = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        let nest_level = pg_sys::NewGUCNestLevel();
        let local = context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as c_int;
        pg_sys::SetUserIdAndSecContext(owner.unwrap_or(user), local);
        Restore { user, context, nest_level }
    };
    call()
}

/// The role the session acts as outside SECURITY DEFINER functions (`current_user` as the
/// caller saw it: its login role, or the role it SET ROLE to): its oid and name.
pub fn outer_role() -> (Oid, String) {
    // SAFETY: a read of the backend's outer user, which definer functions do not change, and
    // of its name from the syscache (no SPI: this runs as a column default, inside a query).
    unsafe {
        let user = pg_sys::GetOuterUserId();
        let name = pg_sys::GetUserNameFromId(user, false);
        assert!(!name.is_null(), "the outer user is a role");
        (user, std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned())
    }
}

/// Whether read tenancy may limit the caller (SPEC §12): the role it acts as, or its login, is
/// a member of `cte_tenant`, and neither is a superuser. A test of the catalog caches only, so
/// that callers outside tenancy pay no query for it; the rest of the rule (tenancy on, an
/// administrator's exemption) is `cte_reads_all()`'s.
pub fn may_be_tenant() -> bool {
    // SAFETY: catalog lookups by name and membership, as PostgreSQL's own ACL checks make them.
    unsafe {
        let tenant = pg_sys::get_role_oid(c"cte_tenant".as_ptr(), true);
        if tenant == Oid::INVALID {
            return false;
        }
        let outer = pg_sys::GetOuterUserId();
        let session = pg_sys::GetSessionUserId();
        if pg_sys::superuser_arg(outer) {
            return false;
        }
        pg_sys::is_member_of_role(outer, tenant)
            || (!pg_sys::superuser_arg(session) && pg_sys::is_member_of_role(session, tenant))
    }
}

/// Whether `role` has the rights of `cte_admin` (superusers have every role's).
pub fn acts_as_admin(role: Oid) -> bool {
    // SAFETY: catalog lookups by name and membership, as PostgreSQL's own ACL checks make them.
    unsafe {
        let admin = pg_sys::get_role_oid(c"cte_admin".as_ptr(), true);
        admin != Oid::INVALID && pg_sys::has_privs_of_role(role, admin)
    }
}

/// The role calling now (`current_user`): its oid and name.
pub fn current_role() -> (Oid, String) {
    // SAFETY: a read of the backend's current user, and of its name from the syscache (as
    // `outer_role`; it raises an error rather than return null for a role that is gone).
    unsafe {
        let user = pg_sys::GetUserId();
        let name = pg_sys::GetUserNameFromId(user, false);
        assert!(!name.is_null(), "the current user is a role");
        (user, std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned())
    }
}

/// Registers (or replaces) the functions of a custom step type for the calling role, which must
/// own both: they then run as it, and never as more.
pub fn register(
    type_name: &str,
    execute_fn: Oid,
    compensate_fn: Option<Oid>,
) -> Result<(), CteError> {
    use cte_ctel_core::engine::executors::StepType;
    let invalid = |why: &str| CteError::ExecutorInvalid {
        step_type: type_name.to_string(),
        why: why.to_string(),
        fix: "a custom type is lowercase words joined by dots, such as fees.collect",
    };
    match StepType::parse(type_name) {
        Ok(StepType::Custom(_)) => {}
        Ok(_) => return Err(invalid("the type is built in")),
        Err(_) => {
            return Err(invalid(
                "a type is lowercase words of letters, digits and _ joined by dots",
            ))
        }
    }
    as_extension_owner(crate::store::executors::lock_hosted_types);
    if crate::store::executors::is_hosted(type_name) {
        return Err(invalid("the application hosts it (cte_register_external_type)"));
    }
    let (registrant, name) = current_role();
    custom::check_registrant(type_name, &name, crate::store::executors::is_superuser(registrant))?;
    let execute = crate::store::executors::function(execute_fn, registrant);
    custom::check(type_name, &name, Role::Execute, &execute.facts)?;
    let compensate = compensate_fn.map(|oid| crate::store::executors::function(oid, registrant));
    if let Some(compensate) = &compensate {
        custom::check(type_name, &name, Role::Compensate, &compensate.facts)?;
    }
    let compensate_signature = compensate.as_ref().map(|function| function.signature.as_str());
    as_extension_owner(|| {
        crate::store::executors::save(type_name, &execute.signature, compensate_signature, &name)
    })
}
