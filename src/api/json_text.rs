//! A `jsonb` argument kept as its text, parsed by the API itself.
//!
//! pgrx's `JsonB` parses in the argument conversion and panics (SQLSTATE XX000) on JSON nested
//! deeper than serde_json's limit of 128; that is hostile input, and it deserves a catalog error
//! and its own SQLSTATE. So arguments arrive as `JsonbText` and `parse` turns them into a
//! `serde_json::Value` (numbers kept as their text, never a float) or a refusal.

use std::ffi::CStr;

use cte_ctel_core::limits::{JSON_DEPTH_MAX, PAYLOAD_BYTES_MAX};
use cte_ctel_core::CteError;
use pgrx::callconv::{Arg, ArgAbi};
use pgrx::nullable::Nullable;
use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::{direct_function_call, FromDatum};
use serde_json::Value;

/// The text of a `jsonb` argument.
pub struct JsonbText(pub String);

impl FromDatum for JsonbText {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<JsonbText> {
        if is_null {
            return None;
        }
        // SAFETY: a non-null jsonb datum, detoasted and printed by PostgreSQL's own jsonb_out.
        unsafe {
            let varlena = datum.cast_mut_ptr();
            let detoasted = pg_sys::pg_detoast_datum_packed(varlena);
            let text = direct_function_call::<&CStr>(pg_sys::jsonb_out, &[Some(detoasted.into())]);
            assert!(text.is_some(), "jsonb_out returns text for a jsonb");
            let owned = text.map(|text| text.to_string_lossy().into_owned()).unwrap_or_default();
            if let Some(text) = text {
                pg_sys::pfree(text.as_ptr().cast_mut().cast());
            }
            if detoasted != varlena {
                pg_sys::pfree(detoasted.cast());
            }
            Some(JsonbText(owned))
        }
    }
}

// SAFETY: as pgrx's own FromDatum-based argument types (its `argue_from_datum!`).
unsafe impl<'fcx> ArgAbi<'fcx> for JsonbText {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> JsonbText {
        let index = arg.index();
        // SAFETY: the argument is a jsonb, as the SQL signature says.
        unsafe { arg.unbox_arg_using_from_datum() }
            .unwrap_or_else(|| panic!("argument {index} must not be null"))
    }

    unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<JsonbText> {
        // SAFETY: as above.
        unsafe { arg.unbox_arg_using_from_datum() }.into()
    }
}

// SAFETY: the SQL type is jsonb, which `from_polymorphic_datum` reads.
unsafe impl SqlTranslatable for JsonbText {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(JsonbText);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal("jsonb")));
}

impl JsonbText {
    /// The document as a value: refused if larger than `PAYLOAD_BYTES_MAX` or nested deeper
    /// than `JSON_DEPTH_MAX`.
    pub fn parse(&self, what: &'static str) -> Result<Value, CteError> {
        if self.0.len() > PAYLOAD_BYTES_MAX {
            return Err(CteError::LimitExceeded {
                what,
                value: self.0.len(),
                limit: PAYLOAD_BYTES_MAX,
            });
        }
        let too_deep = || CteError::LimitExceeded {
            what: "JSON nesting depth",
            value: JSON_DEPTH_MAX + 1,
            limit: JSON_DEPTH_MAX,
        };
        if cte_ctel_core::json::nests_deeper_than(&self.0, JSON_DEPTH_MAX) {
            return Err(too_deep());
        }
        // jsonb_out prints valid JSON within the depth serde_json reads.
        serde_json::from_str(&self.0).map_err(|_| too_deep())
    }
}
