//! A row of a query's result read by column, each read saying what the query promises of it:
//! a column it guarantees is `required` (an internal error naming the query and the column
//! when it is NULL), one that may be NULL is `optional`. Nothing reads as a default: a row the
//! store cannot read is a bug to stop at, never an empty name, a zero amount or a genesis.

use pgrx::spi::{SpiHeapTupleData, SpiTupleTable};
use pgrx::{FromDatum, IntoDatum};
use rust_decimal::Decimal;

use super::{required, spi, stored_decimal};

pub(crate) struct Row<'r, 'conn> {
    row: &'r SpiHeapTupleData<'conn>,
    query: &'static str,
}

impl<'r, 'conn> Row<'r, 'conn> {
    pub(crate) fn new(row: &'r SpiHeapTupleData<'conn>, query: &'static str) -> Self {
        Row { row, query }
    }

    /// The first row of a table the query guarantees has one (an aggregate, a checked
    /// non-empty result), read with `read`.
    #[track_caller]
    pub(crate) fn first_of<T>(
        table: SpiTupleTable<'conn>,
        query: &'static str,
        read: impl FnOnce(Row<'_, 'conn>) -> T,
    ) -> T {
        let row = required(spi(table.first().get_heap_tuple(), query), query, "a first row");
        read(Row::new(&row, query))
    }

    /// Every row of a table, each read with `read`.
    pub(crate) fn each<T>(
        table: SpiTupleTable<'conn>,
        query: &'static str,
        mut read: impl FnMut(Row<'_, 'conn>) -> T,
    ) -> Vec<T> {
        table.map(|row| read(Row::new(&row, query))).collect()
    }

    /// A column that may be NULL.
    #[track_caller]
    pub(crate) fn optional<T: FromDatum + IntoDatum>(&self, ordinal: usize) -> Option<T> {
        spi(self.row.get::<T>(ordinal), self.query)
    }

    /// A column the query guarantees (`what` names it in the error if it is NULL after all).
    #[track_caller]
    pub(crate) fn required<T: FromDatum + IntoDatum>(&self, ordinal: usize, what: &str) -> T {
        required(self.optional(ordinal), self.query, what)
    }

    /// An amount the query reads as text (`amount::text`), exact.
    #[track_caller]
    pub(crate) fn decimal(&self, ordinal: usize, what: &str) -> Decimal {
        stored_decimal(&self.required::<String>(ordinal, what), self.query)
    }
}
