//! The ledger's rules: who may hold what, and how a movement of money becomes journal entries.
//!
//! Accounts are wallets (a balance row per currency, guarded against going negative) or system
//! accounts (through which money enters, leaves and changes currency; they may go negative and
//! their balance is derived, never updated in place, so they are never a hot row). A posting is
//! a balanced group of entries of one currency; every movement is one or more postings.

mod account;
pub mod chain;
mod lien;
mod posting;
pub mod refund;
pub mod wallets;

pub use account::{AccountId, AccountOpening, Metadata};
pub use lien::{
    capture_is_replay, capture_split, handle as lien_handle, lien_transition, CaptureRecorded,
    Lien, LienAsk, LienEffects, LienInput, LienStatus, Reserve,
};
pub use posting::{in_lock_order, lock_order, wallet_debits, Entry, Posting, PostingKind};

/// The system account money enters through (deposits) and leaves through (withdrawals).
pub const SYSTEM_ACCOUNT_WORLD: &str = "@world";

/// The system account that balances each currency's side of an exchange.
pub const SYSTEM_ACCOUNT_EXCHANGE: &str = "@exchange";

/// Every system account; each holds every registered currency.
pub const SYSTEM_ACCOUNTS: [&str; 2] = [SYSTEM_ACCOUNT_WORLD, SYSTEM_ACCOUNT_EXCHANGE];

/// The first character of every system account id, and of no wallet's.
pub const SYSTEM_ACCOUNT_PREFIX: char = '@';

/// Whether an account id names a system account.
pub fn is_system_account(account_id: &str) -> bool {
    account_id.starts_with(SYSTEM_ACCOUNT_PREFIX)
}
