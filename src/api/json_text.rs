//! A `jsonb` argument kept as PostgreSQL gave it, read by the API itself.
//!
//! pgrx's `JsonB` parses in the argument conversion into a whole `serde_json::Value` (a heap
//! allocation per number and string) and panics (SQLSTATE XX000) on JSON nested deeper than
//! serde_json's limit of 128. So arguments arrive as `JsonbArg`, the datum itself: its size is
//! checked before it is printed, it is printed to text only when asked (bounded), parsed into a
//! `Value` only for small documents (metadata), and a step's payload goes into its row as the
//! datum it came as, never printed and parsed again by PostgreSQL.

use cte_ctel_core::limits::{JSON_DEPTH_MAX, PAYLOAD_BYTES_MAX};
use cte_ctel_core::CteError;
use pgrx::callconv::{Arg, ArgAbi};
use pgrx::nullable::Nullable;
use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::FromDatum;
use serde_json::Value;

use crate::store::jsonb_text;

/// A non-null `jsonb` argument, valid for the call it was given to.
pub struct JsonbText(pg_sys::Datum);

impl FromDatum for JsonbText {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<JsonbText> {
        (!is_null).then_some(JsonbText(datum))
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
    /// The document's text, refused (`limit_exceeded`, named `what`) if longer than
    /// `bytes_max`; measured before anything is printed.
    pub fn text(&self, what: &'static str, bytes_max: usize) -> Result<String, CteError> {
        jsonb_text(self.0, bytes_max).ok_or(CteError::LimitExceeded {
            what,
            value: bytes_max + 1,
            limit: bytes_max,
        })
    }

    /// The datum, to write as it is (valid for the call it was given to).
    pub fn datum(&self) -> pg_sys::Datum {
        self.0
    }

    /// The document as a value, and its text's length: refused if larger than
    /// `PAYLOAD_BYTES_MAX` or nested deeper than `JSON_DEPTH_MAX`. For small documents
    /// (metadata: its own bound is checked by the core on the length returned).
    pub fn parse(&self, what: &'static str) -> Result<(Value, usize), CteError> {
        let text = self.text(what, PAYLOAD_BYTES_MAX)?;
        Ok((value_of(&text)?, text.len()))
    }
}

/// The value of JSON text PostgreSQL printed (`jsonb_out`): refused if nested deeper than
/// `JSON_DEPTH_MAX`.
pub fn value_of(text: &str) -> Result<Value, CteError> {
    let too_deep = || CteError::LimitExceeded {
        what: "JSON nesting depth",
        value: JSON_DEPTH_MAX + 1,
        limit: JSON_DEPTH_MAX,
    };
    if cte_ctel_core::json::nests_deeper_than(text, JSON_DEPTH_MAX) {
        return Err(too_deep());
    }
    // jsonb_out prints valid JSON within the depth serde_json reads.
    serde_json::from_str(text).map_err(|_| too_deep())
}

/// A `jsonb` result made from JSON text by PostgreSQL's own `jsonb_in`, never through a
/// `serde_json::Value`: a document nested deeper than serde_json's limit (an executor's result)
/// is returned as PostgreSQL stored it, where pgrx's `JsonB` would fail with XX000.
pub struct JsonbOut(pub String);

impl pgrx::IntoDatum for JsonbOut {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        let text = std::ffi::CString::new(self.0.replace('\0', "\u{FFFD}")).unwrap_or_default();
        // SAFETY: jsonb_in takes one cstring argument, valid for the call; the jsonb it makes
        // lives in the current memory context, as any datum a set-returning function returns.
        unsafe {
            pgrx::direct_function_call_as_datum(
                pg_sys::jsonb_in,
                &[Some(pg_sys::Datum::from(text.as_ptr()))],
            )
        }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// SAFETY: returns the datum jsonb_in made of the text, as the SQL return type says.
unsafe impl pgrx::callconv::BoxRet for JsonbOut {
    unsafe fn box_into<'fcx>(
        self,
        fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
    ) -> pgrx::datum::Datum<'fcx> {
        match pgrx::IntoDatum::into_datum(self) {
            // SAFETY: a jsonb datum in the current memory context, returned at once.
            Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
            None => fcinfo.return_null(),
        }
    }
}

// SAFETY: the SQL type is jsonb, which `box_into` makes.
unsafe impl SqlTranslatable for JsonbOut {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(JsonbOut);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal("jsonb")));
}
