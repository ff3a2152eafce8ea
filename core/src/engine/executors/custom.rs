//! Custom executors: what makes a registered function safe to run, checked when it is
//! registered and again before every run (its owner or body may have changed since).
//!
//! A custom executor runs with the rights of the role that registered it and never more: that
//! role must own both functions (EXECUTE alone would let whoever owns them change the body and
//! borrow the registrant's rights), neither may live in a temporary schema (which another
//! session's objects can shadow), and each must be a plain function of the contract's shape.
//!
//! 0.3.0 (SPEC §12): each must pin its own `search_path` with `pg_temp` last. PostgreSQL looks
//! for tables in the caller's `pg_temp` first unless the path names it elsewhere, so otherwise a
//! caller's temporary table (with a trigger) could stand in for one the function writes, and
//! run as the registrant. And the registrant may not be a superuser: its code would run every
//! trigger its statements reach as superuser, on any event a caller starts.

use crate::error::CteError;

/// What the catalog says of a function an executor names, now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionFacts {
    /// The stored signature still names a function.
    pub exists: bool,
    pub owned_by_registrant: bool,
    pub temporary: bool,
    /// A function (not a procedure, aggregate or window function) returning one value.
    pub plain: bool,
    pub executable_by_registrant: bool,
    /// Its own `SET search_path` ends with `pg_temp`.
    pub search_path_pinned: bool,
    pub returns: String,
    pub arguments: String,
}

/// Which of an executor's two functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Execute,
    Compensate,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Execute => "execute_fn",
            Role::Compensate => "compensate_fn",
        }
    }

    fn shape(self) -> (&'static str, &'static str) {
        match self {
            Role::Execute => ("jsonb", "uuid, jsonb"),
            Role::Compensate => ("void", "uuid, jsonb, jsonb"),
        }
    }
}

/// The elements of a list setting as PostgreSQL reads them (`SplitIdentifierString`): split
/// at commas; a double-quoted element keeps its text (`""` is one quote); an unquoted one ends
/// at a comma or white space and is lowercased. `None` for text PostgreSQL would refuse.
pub fn identifier_list(text: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = text.chars().collect();
    let mut at = 0;
    let skip_space = |at: &mut usize| {
        while *at < chars.len() && chars[*at].is_whitespace() {
            *at += 1;
        }
    };
    let mut names = Vec::new();
    skip_space(&mut at);
    if at == chars.len() {
        return Some(names);
    }
    loop {
        let at_start = at;
        let name = if chars[at] == '"' {
            let mut name = String::new();
            at += 1;
            loop {
                match (chars.get(at), chars.get(at + 1)) {
                    (Some('"'), Some('"')) => {
                        name.push('"');
                        at += 2;
                    }
                    (Some('"'), _) => {
                        at += 1;
                        break;
                    }
                    (Some(c), _) => {
                        name.push(*c);
                        at += 1;
                    }
                    (None, _) => return None,
                }
            }
            if name.is_empty() {
                return None;
            }
            name
        } else {
            let start = at;
            while at < chars.len() && chars[at] != ',' && !chars[at].is_whitespace() {
                at += 1;
            }
            if at == start {
                return None;
            }
            chars[start..at].iter().collect::<String>().to_lowercase()
        };
        // A quoted name may not be empty, and an unquoted one has at least one character.
        assert!(!name.is_empty(), "every name of a list has text");
        // Each pass reads a name of one character at least: the loop ends with the text.
        assert!(at > at_start, "every pass moves on");
        names.push(name);
        skip_space(&mut at);
        match chars.get(at) {
            None => return Some(names),
            Some(',') => {
                at += 1;
                skip_space(&mut at);
                if at == chars.len() {
                    return None;
                }
            }
            Some(_) => return None,
        }
    }
}

/// Whether a function's own `search_path` setting (as stored in `pg_proc.proconfig`) names
/// `pg_temp` last, so that the caller's temporary schema is searched after everything else.
pub fn pins_pg_temp_last(search_path: Option<&str>) -> bool {
    let names = search_path.and_then(identifier_list);
    names.is_some_and(|names| names.last().is_some_and(|last| last == "pg_temp"))
}

/// The fix the HINT of a refusal gives: how to write an executor that may run.
pub const FIX_SEARCH_PATH: &str = "pin the function's search_path with pg_temp last: ALTER \
    FUNCTION myschema.f(uuid, jsonb) SET search_path = myschema, pg_temp (and name every \
    object it uses from that path)";
pub const FIX_REGISTRANT: &str = "register as a dedicated role that is not a superuser: \
    CREATE ROLE fees_executor NOLOGIN IN ROLE cte_admin; ALTER FUNCTION ... OWNER TO \
    fees_executor (both functions); SET ROLE fees_executor; SELECT \
    cte_ctel.cte_register_executor(...)";
pub const FIX_FUNCTION: &str = "an executor's functions are execute_fn(uuid, jsonb) RETURNS \
    jsonb and compensate_fn(uuid, jsonb, jsonb) RETURNS void, owned by the registering role, \
    outside pg_temp";

/// Whether a role may register (and run) executors: never a superuser.
pub fn check_registrant(
    step_type: &str,
    registrant: &str,
    superuser: bool,
) -> Result<(), CteError> {
    if superuser {
        return Err(CteError::ExecutorInvalid {
            step_type: step_type.into(),
            why: format!(
                "its registrant {registrant:?} is a superuser, whose executor would run every \
                 trigger its statements reach with superuser rights"
            ),
            fix: FIX_REGISTRANT,
        });
    }
    Ok(())
}

/// Whether `function` may run as `registrant` in the executor of `step_type`.
pub fn check(
    step_type: &str,
    registrant: &str,
    role: Role,
    function: &FunctionFacts,
) -> Result<(), CteError> {
    let invalid = |why: String| CteError::ExecutorInvalid {
        step_type: step_type.into(),
        why,
        fix: FIX_FUNCTION,
    };
    let name = role.name();
    let (returns, arguments) = role.shape();
    if !function.exists {
        return Err(invalid(format!("{name} no longer exists")));
    }
    if !function.plain || function.returns != returns || function.arguments != arguments {
        return Err(invalid(format!("{name} must be a function ({arguments}) RETURNS {returns}")));
    }
    if function.temporary {
        return Err(invalid(format!("{name} is in a temporary schema")));
    }
    if !function.owned_by_registrant {
        return Err(invalid(format!(
            "{name} is not owned by {registrant:?}, the role that registers it (and whose \
             rights it runs with)"
        )));
    }
    if !function.executable_by_registrant {
        return Err(invalid(format!("{registrant:?} may not execute {name}")));
    }
    if !function.search_path_pinned {
        return Err(CteError::ExecutorInvalid {
            step_type: step_type.into(),
            why: format!(
                "{name} does not pin its search_path with pg_temp last, so a caller's temporary \
                 table could stand in for one it uses"
            ),
            fix: FIX_SEARCH_PATH,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good(role: Role) -> FunctionFacts {
        let (returns, arguments) = role.shape();
        FunctionFacts {
            exists: true,
            owned_by_registrant: true,
            temporary: false,
            plain: true,
            executable_by_registrant: true,
            search_path_pinned: true,
            returns: returns.into(),
            arguments: arguments.into(),
        }
    }

    #[test]
    fn a_function_of_the_registrants_own_of_the_right_shape_may_run() {
        assert_eq!(check("fee", "admin", Role::Execute, &good(Role::Execute)), Ok(()));
        assert_eq!(check("fee", "admin", Role::Compensate, &good(Role::Compensate)), Ok(()));
    }

    #[test]
    fn each_missing_condition_is_refused_with_its_own_message() {
        type Spoil = fn(&mut FunctionFacts);
        let cases: [(Spoil, &str); 7] = [
            (|f| f.exists = false, "no longer exists"),
            (|f| f.owned_by_registrant = false, "is not owned by"),
            (|f| f.temporary = true, "temporary schema"),
            (|f| f.plain = false, "must be a function"),
            (|f| f.executable_by_registrant = false, "may not execute"),
            (|f| f.search_path_pinned = false, "does not pin its search_path"),
            (|f| f.arguments = "uuid".into(), "must be a function (uuid, jsonb) RETURNS jsonb"),
        ];
        for (spoil, expected) in cases {
            let mut facts = good(Role::Execute);
            spoil(&mut facts);
            let error = check("fee", "admin", Role::Execute, &facts).unwrap_err();
            assert_eq!(error.reason(), "executor_invalid");
            assert!(error.to_string().contains(expected), "{error} lacks {expected:?}");
        }
        let unpinned = FunctionFacts { search_path_pinned: false, ..good(Role::Execute) };
        let error = check("fee", "admin", Role::Execute, &unpinned).unwrap_err();
        assert!(error.hint().is_some_and(|hint| hint.contains("pg_temp")));
        let mut wrong_return = good(Role::Compensate);
        wrong_return.returns = "jsonb".into();
        assert!(check("fee", "admin", Role::Compensate, &wrong_return).is_err());
    }

    #[test]
    fn a_superuser_may_not_register_and_the_hint_says_how() {
        assert_eq!(check_registrant("fee", "fees_executor", false), Ok(()));
        let error = check_registrant("fee", "postgres", true).unwrap_err();
        assert_eq!(error.reason(), "executor_invalid");
        assert!(error.to_string().contains("superuser"));
        assert!(error.hint().is_some_and(|hint| hint.contains("SET ROLE")));
    }

    #[test]
    fn pg_temp_last_is_read_as_postgresql_reads_the_setting() {
        let pinned = |text: &str| pins_pg_temp_last(Some(text));
        assert!(pinned("fees, pg_temp"));
        assert!(pinned("fees,pg_temp"));
        assert!(pinned("  fees ,  PG_TEMP "), "unquoted: lowercased");
        assert!(pinned("\"fees, x\", pg_temp"));
        // As stored for SET search_path = 'fees, pg_temp' (one string, one schema).
        assert!(!pinned("\"fees, pg_temp\""));
        assert!(!pinned("fees, \"pg_temp \""));
        assert!(!pinned("fees, \" pg_temp\""));
        assert!(!pinned("fees, \"PG_TEMP\""), "quoted: case kept");
        assert!(!pinned("pg_temp, fees"));
        assert!(!pinned("fees, \"$user\""));
        assert!(!pinned("\"\""));
        assert!(!pinned(""));
        assert!(!pinned("fees, pg_temp,"));
        assert!(!pins_pg_temp_last(None));
    }
}
