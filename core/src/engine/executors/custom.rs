//! Custom executors: what makes a registered function safe to run, checked when it is
//! registered and again before every run (its owner or body may have changed since).
//!
//! A custom executor runs with the rights of the role that registered it and never more: that
//! role must own both functions (EXECUTE alone would let whoever owns them change the body and
//! borrow the registrant's rights), neither may live in a temporary schema (which another
//! session's objects can shadow), and each must be a plain function of the contract's shape.

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

/// Whether `function` may run as `registrant` in the executor of `step_type`.
pub fn check(
    step_type: &str,
    registrant: &str,
    role: Role,
    function: &FunctionFacts,
) -> Result<(), CteError> {
    let invalid = |why: String| CteError::ExecutorInvalid { step_type: step_type.into(), why };
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
        let cases: [(Spoil, &str); 6] = [
            (|f| f.exists = false, "no longer exists"),
            (|f| f.owned_by_registrant = false, "is not owned by"),
            (|f| f.temporary = true, "temporary schema"),
            (|f| f.plain = false, "must be a function"),
            (|f| f.executable_by_registrant = false, "may not execute"),
            (|f| f.arguments = "uuid".into(), "must be a function (uuid, jsonb) RETURNS jsonb"),
        ];
        for (spoil, expected) in cases {
            let mut facts = good(Role::Execute);
            spoil(&mut facts);
            let error = check("fee", "admin", Role::Execute, &facts).unwrap_err();
            assert_eq!(error.reason(), "executor_invalid");
            assert!(error.to_string().contains(expected), "{error} lacks {expected:?}");
        }
        let mut wrong_return = good(Role::Compensate);
        wrong_return.returns = "jsonb".into();
        assert!(check("fee", "admin", Role::Compensate, &wrong_return).is_err());
    }
}
