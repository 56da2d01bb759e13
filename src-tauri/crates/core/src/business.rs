//! The businesses one install links (issue 24): a 3PL, a bookkeeper or an owner of several companies
//! keeps each business's progress, USPS link and Stamps.com account apart. This is the list itself
//! and its rules; the app files each business's records and keyring entries under its id.
//!
//! The first business has the id [`BusinessId::FIRST`], and its records keep the names they had
//! before there were businesses: a file written by a version with one business is that business
//! as it is, with nothing to move.

use serde::{Deserialize, Serialize};
use thiserror::Error;
use ts_rs::TS;

use crate::error::{ErrorKind, HasKind};
use crate::validate::Invalid;

/// The most characters a business's name has.
pub const MAX_NAME_CHARS: usize = 60;
/// What the first business is called until the owner names it.
pub const FIRST_NAME: &str = "My business";

/// A business's id: never reused in one install, so a removed business's records and keyring
/// entries can never be taken for a new one's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(transparent)]
pub struct BusinessId(pub u32);

impl BusinessId {
    /// The business of an install from before there were several.
    pub const FIRST: BusinessId = BusinessId(1);
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Business {
    pub id: BusinessId,
    pub name: String,
}

/// A name as typed: trimmed, 1 to [`MAX_NAME_CHARS`] characters, no control characters.
pub fn business_name(typed: &str) -> Result<String, Invalid> {
    let name = typed.trim();
    if name.is_empty() {
        return Err("enter the business's name".into());
    }
    if name.chars().any(char::is_control) {
        return Err("a business's name is one line of text".into());
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(format!("a business's name has at most {MAX_NAME_CHARS} characters; this has {chars}").into());
    }
    Ok(name.to_string())
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BusinessError {
    #[error(transparent)]
    Name(#[from] Invalid),
    #[error("another business is already called {0:?}: give this one another name")]
    NameTaken(String),
    #[error("that business is not in uspslink (it may have been removed)")]
    Unknown,
    #[error("uspslink needs one business: add another before removing this one")]
    LastOne,
    #[error("uspslink has given every business id it can: remove businesses you no longer need")]
    NoIdLeft,
}

impl HasKind for BusinessError {
    fn kind(&self) -> ErrorKind {
        match self {
            BusinessError::Name(_) | BusinessError::NameTaken(_) | BusinessError::LastOne | BusinessError::NoIdLeft => {
                ErrorKind::InvalidInput
            }
            BusinessError::Unknown => ErrorKind::NotConfigured,
        }
    }
}

/// The businesses, the one shown, and the next id to give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Businesses {
    list: Vec<Business>,
    current: BusinessId,
    next_id: u32,
}

impl Default for Businesses {
    /// One business, the first: what an install from before several businesses is.
    fn default() -> Self {
        Self {
            list: vec![Business { id: BusinessId::FIRST, name: FIRST_NAME.into() }],
            current: BusinessId::FIRST,
            next_id: BusinessId::FIRST.0 + 1,
        }
    }
}

impl Businesses {
    pub fn list(&self) -> &[Business] {
        &self.list
    }

    pub fn current(&self) -> BusinessId {
        self.current
    }

    pub fn get(&self, id: BusinessId) -> Option<&Business> {
        self.list.iter().find(|b| b.id == id)
    }

    /// A stored list that breaks a rule (none, a current one that is not in it, an id at or above
    /// the next one) is put right instead of trusted.
    pub fn repaired(mut self) -> Self {
        if self.list.is_empty() {
            return Self::default();
        }
        let highest = self.list.iter().map(|b| b.id.0).max().unwrap_or(0);
        self.next_id = self.next_id.max(highest.saturating_add(1));
        if self.get(self.current).is_none() {
            self.current = self.list[0].id;
        }
        self
    }

    fn check_name(&self, typed: &str, except: Option<BusinessId>) -> Result<String, BusinessError> {
        let name = business_name(typed)?;
        let taken = self.list.iter().any(|b| Some(b.id) != except && b.name.to_lowercase() == name.to_lowercase());
        if taken {
            return Err(BusinessError::NameTaken(name));
        }
        Ok(name)
    }

    /// Add a business and show it; returns its id.
    pub fn add(&mut self, typed_name: &str) -> Result<BusinessId, BusinessError> {
        let name = self.check_name(typed_name, None)?;
        let id = BusinessId(self.next_id);
        // Never the same id twice: at the end of the numbers, no more are given.
        self.next_id = self.next_id.checked_add(1).ok_or(BusinessError::NoIdLeft)?;
        self.list.push(Business { id, name });
        self.current = id;
        Ok(id)
    }

    pub fn rename(&mut self, id: BusinessId, typed_name: &str) -> Result<(), BusinessError> {
        let name = self.check_name(typed_name, Some(id))?;
        let business = self.list.iter_mut().find(|b| b.id == id).ok_or(BusinessError::Unknown)?;
        business.name = name;
        Ok(())
    }

    pub fn switch_to(&mut self, id: BusinessId) -> Result<(), BusinessError> {
        self.get(id).ok_or(BusinessError::Unknown)?;
        self.current = id;
        Ok(())
    }

    /// Take a business off the list (its records and secrets are the caller's to delete); the
    /// first left is shown if it was the one shown.
    pub fn remove(&mut self, id: BusinessId) -> Result<Business, BusinessError> {
        let at = self.list.iter().position(|b| b.id == id).ok_or(BusinessError::Unknown)?;
        if self.list.len() == 1 {
            return Err(BusinessError::LastOne);
        }
        let removed = self.list.remove(at);
        if self.current == id {
            self.current = self.list[0].id;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_install_from_before_is_its_first_business() {
        let b = Businesses::default();
        assert_eq!(b.list(), &[Business { id: BusinessId::FIRST, name: FIRST_NAME.into() }]);
        assert_eq!(b.current(), BusinessId::FIRST);
    }

    #[test]
    fn add_rename_switch_remove() {
        let mut b = Businesses::default();
        let shop = b.add("  Shop Two ").unwrap();
        assert_eq!((shop, b.current()), (BusinessId(2), shop), "added and shown");
        assert_eq!(b.get(shop).unwrap().name, "Shop Two");
        assert_eq!(b.add("shop two"), Err(BusinessError::NameTaken("shop two".into())), "names are told apart");
        b.rename(shop, "Shop 2").unwrap();
        b.rename(shop, "SHOP 2").unwrap();
        assert_eq!(b.rename(BusinessId(9), "x"), Err(BusinessError::Unknown));
        b.switch_to(BusinessId::FIRST).unwrap();
        assert_eq!(b.switch_to(BusinessId(9)), Err(BusinessError::Unknown));
        b.remove(BusinessId::FIRST).unwrap();
        assert_eq!(b.current(), shop, "the one left is shown");
        assert_eq!(b.remove(shop), Err(BusinessError::LastOne));
        assert_eq!(b.add("Third").unwrap(), BusinessId(3), "an id is never given twice");
    }

    #[test]
    fn a_stored_list_that_breaks_a_rule_is_put_right() {
        let broken: Businesses =
            serde_json::from_value(serde_json::json!({"list": [{"id": 4, "name": "A"}], "current": 7, "next_id": 2}))
                .unwrap();
        let fixed = broken.repaired();
        assert_eq!(fixed.current(), BusinessId(4));
        let mut fixed = fixed;
        assert_eq!(fixed.add("B").unwrap(), BusinessId(5), "never an id already given");
        let mut full: Businesses = serde_json::from_value(
            serde_json::json!({"list": [{"id": 1, "name": "A"}], "current": 1, "next_id": u32::MAX}),
        )
        .unwrap();
        assert_eq!(full.add("B"), Err(BusinessError::NoIdLeft), "the last number is never handed out twice");
        let empty: Businesses =
            serde_json::from_value(serde_json::json!({"list": [], "current": 1, "next_id": 1})).unwrap();
        assert_eq!(empty.repaired(), Businesses::default());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        /// Any text: a name is refused with words, or kept trimmed, on one line, within the limit.
        #[test]
        fn any_typed_name_is_refused_or_kept_clean(typed in "\\PC*|.*", control in proptest::char::any()) {
            for text in [typed.clone(), format!("{typed}{control}{typed}")] {
                match business_name(&text) {
                    Ok(name) => {
                        prop_assert_eq!(name.trim(), name.as_str());
                        prop_assert!(!name.is_empty() && name.chars().count() <= MAX_NAME_CHARS);
                        prop_assert!(!name.chars().any(char::is_control));
                    }
                    Err(why) => prop_assert!(!why.to_string().is_empty()),
                }
                let mut list = Businesses::default();
                match list.add(&text) {
                    Ok(id) => prop_assert_eq!(list.current(), id),
                    Err(_) => prop_assert_eq!(list.clone(), Businesses::default()),
                }
            }
        }
    }
}
