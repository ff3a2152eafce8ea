//! Account ids, account opening and account metadata.

use serde_json::Value;

use super::SYSTEM_ACCOUNT_PREFIX;
use crate::error::CteError;
use crate::limits::{ACCOUNT_CURRENCIES_MAX, ACCOUNT_ID_BYTES_MAX, METADATA_BYTES_MAX};
use crate::money::Currency;

/// A checked account id: 1 to 64 bytes, no control characters, no surrounding whitespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    /// Checks an id that names an existing account of either kind (wallet or system).
    pub fn parse(id: &str) -> Result<AccountId, CteError> {
        if id.len() > ACCOUNT_ID_BYTES_MAX {
            return Err(CteError::TextTooLong {
                what: "account id",
                bytes: id.len(),
                bytes_max: ACCOUNT_ID_BYTES_MAX,
            });
        }
        let invalid =
            |why| CteError::IdentifierInvalid { what: "account id", value: id.to_string(), why };
        if id.is_empty() {
            return Err(invalid("it is empty"));
        }
        if id.chars().any(char::is_control) {
            return Err(invalid("it contains a control character"));
        }
        if id.trim() != id {
            return Err(invalid("it starts or ends with whitespace"));
        }
        assert!(!id.is_empty());
        assert!(id.len() <= ACCOUNT_ID_BYTES_MAX);
        Ok(AccountId(id.to_string()))
    }

    /// Checks an id for a new wallet: as `parse`, and not in the system accounts' namespace.
    pub fn parse_wallet(id: &str) -> Result<AccountId, CteError> {
        let id = AccountId::parse(id)?;
        if id.0.starts_with(SYSTEM_ACCOUNT_PREFIX) {
            return Err(CteError::IdentifierInvalid {
                what: "account id",
                value: id.0,
                why: "ids starting with '@' are reserved for system accounts",
            });
        }
        // A wallet is never a system account: postings tell the two apart by the prefix.
        assert!(!super::is_system_account(id.as_str()));
        Ok(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Account metadata: a JSON object of bounded size, or nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata(Option<Value>);

impl Metadata {
    /// Checks a metadata document given with its text length (the shell knows it cheaply).
    pub fn parse(value: Option<Value>, text_bytes: usize) -> Result<Metadata, CteError> {
        if text_bytes > METADATA_BYTES_MAX {
            return Err(CteError::LimitExceeded {
                what: "metadata size in bytes",
                value: text_bytes,
                limit: METADATA_BYTES_MAX,
            });
        }
        let metadata = match value {
            None | Some(Value::Object(_)) => Metadata(value),
            Some(Value::Null) => Metadata(None),
            Some(Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Array(_)) => {
                return Err(CteError::MetadataInvalid { why: "metadata must be a JSON object" })
            }
        };
        // An object or nothing: what the column's domain (`cte_json_object`) accepts, and a JSON
        // null is stored as SQL NULL rather than refused by it.
        assert!(metadata.0.as_ref().is_none_or(Value::is_object));
        Ok(metadata)
    }

    pub fn value(&self) -> Option<&Value> {
        self.0.as_ref()
    }
}

/// A checked request to open a wallet account.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountOpening {
    pub account_id: AccountId,
    /// The currencies it holds, sorted, without duplicates; each must be registered.
    pub currencies: Vec<String>,
    pub allow_negative: bool,
    pub metadata: Metadata,
}

impl AccountOpening {
    pub fn new(
        account_id: &str,
        currencies: &[Option<String>],
        allow_negative: bool,
        metadata: Metadata,
    ) -> Result<AccountOpening, CteError> {
        let account_id = AccountId::parse_wallet(account_id)?;
        let currencies = AccountOpening::currencies(currencies)?;
        assert!(!currencies.is_empty());
        assert!(currencies.windows(2).all(|pair| pair[0] < pair[1]));
        Ok(AccountOpening { account_id, currencies, allow_negative, metadata })
    }

    fn currencies(currencies: &[Option<String>]) -> Result<Vec<String>, CteError> {
        if currencies.is_empty() {
            return Err(CteError::CurrencyListInvalid {
                why: "an account holds at least one currency".into(),
            });
        }
        if currencies.len() > ACCOUNT_CURRENCIES_MAX {
            return Err(CteError::LimitExceeded {
                what: "currencies of one account",
                value: currencies.len(),
                limit: ACCOUNT_CURRENCIES_MAX,
            });
        }
        let mut codes = Vec::with_capacity(currencies.len());
        for code in currencies {
            let code =
                code.as_deref().ok_or(CteError::NullArgument { argument: "currencies[]" })?;
            codes.push(Currency::parse_code(code)?);
        }
        codes.sort();
        if let Some(pair) = codes.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(CteError::CurrencyListInvalid {
                why: format!("{} is listed twice", pair[0]),
            });
        }
        // Sorted, each once, within the bound (`new` checks the order again).
        assert!(codes.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(codes.len() <= ACCOUNT_CURRENCIES_MAX);
        Ok(codes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn some(codes: &[&str]) -> Vec<Option<String>> {
        codes.iter().map(|c| Some(c.to_string())).collect()
    }

    fn open(id: &str, codes: &[Option<String>]) -> Result<AccountOpening, CteError> {
        AccountOpening::new(id, codes, false, Metadata(None))
    }

    #[test]
    fn opens_with_sorted_currencies() {
        let opening = open("alice", &some(&["USD", "EUR"])).unwrap();
        assert_eq!(opening.currencies, vec!["EUR", "USD"]);
        assert_eq!(opening.account_id.as_str(), "alice");
    }

    #[test]
    fn accepts_ids_up_to_the_limit_including_unicode() {
        assert!(AccountId::parse_wallet(&"a".repeat(64)).is_ok());
        assert!(AccountId::parse_wallet("élodie's wallet #1").is_ok());
        let error = AccountId::parse_wallet(&"a".repeat(65)).unwrap_err();
        assert_eq!(error.reason(), "text_too_long");
    }

    #[test]
    fn refuses_bad_ids() {
        for id in ["", " alice", "alice ", "al\nice", "al\u{0}ice", "@world", "@mine"] {
            let error = AccountId::parse_wallet(id).unwrap_err();
            assert_eq!(error.reason(), "identifier_invalid", "{id:?}");
        }
        assert!(AccountId::parse("@world").is_ok());
    }

    #[test]
    fn refuses_bad_currency_lists() {
        assert_eq!(open("a", &[]).unwrap_err().reason(), "currency_list_invalid");
        assert_eq!(
            open("a", &some(&["USD", "USD"])).unwrap_err().reason(),
            "currency_list_invalid"
        );
        assert_eq!(open("a", &some(&["usd"])).unwrap_err().reason(), "identifier_invalid");
        assert_eq!(open("a", &[None]).unwrap_err().reason(), "null_argument");
        let many: Vec<String> = (0..33).map(|i| format!("C{i:02}X")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(open("a", &some(&many)).unwrap_err().reason(), "limit_exceeded");
    }

    #[test]
    fn metadata_is_an_object_of_bounded_size() {
        assert!(Metadata::parse(Some(json!({"tier": "gold"})), 16).is_ok());
        assert!(Metadata::parse(None, 0).is_ok());
        assert_eq!(Metadata::parse(Some(json!([1])), 3).unwrap_err().reason(), "metadata_invalid");
        assert_eq!(Metadata::parse(Some(json!("x")), 3).unwrap_err().reason(), "metadata_invalid");
        let error = Metadata::parse(Some(json!({})), 8 * 1024 + 1).unwrap_err();
        assert_eq!(error.reason(), "limit_exceeded");
    }
}
