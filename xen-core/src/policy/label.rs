//! Security labels as domains carry them: `user:role:type` (Xen's
//! `seclabel = "system_u:system_r:banking_t"`) or a bare `type`, which
//! stands for `system_u:system_r:type`. Only the type takes part in
//! decisions; user and role are kept for the log.

use core::fmt;

use xen_abi::policy::{is_valid_name, DEFAULT_USER_ROLE};

/// A parsed label, borrowing its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label<'a> {
    user_role: Option<&'a str>,
    type_name: &'a str,
}

impl<'a> Label<'a> {
    /// Parses `type` or `user:role:type`; each part a policy name.
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.split(':');
        let first = parts.next()?;
        match (parts.next(), parts.next(), parts.next()) {
            (None, _, _) => Self::checked(None, first),
            (Some(role), Some(type_name), None) => {
                if !is_valid_name(first.as_bytes()) || !is_valid_name(role.as_bytes()) {
                    return None;
                }
                let user_role = text.get(..first.len() + 1 + role.len())?;
                Self::checked(Some(user_role), type_name)
            }
            _ => None,
        }
    }

    fn checked(user_role: Option<&'a str>, type_name: &'a str) -> Option<Self> {
        is_valid_name(type_name.as_bytes()).then_some(Label {
            user_role,
            type_name,
        })
    }

    /// The type part.
    pub fn type_name(&self) -> &'a str {
        self.type_name
    }

    /// `user:role`, [`DEFAULT_USER_ROLE`] for a bare type.
    pub fn user_role(&self) -> &'a str {
        self.user_role.unwrap_or(DEFAULT_USER_ROLE)
    }
}

impl fmt::Display for Label<'_> {
    /// The full context, as the AVC log prints it.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.user_role(), self.type_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn bare_types_and_full_contexts_parse() {
        let bare = Label::parse("banking_t").unwrap();
        assert_eq!(bare.type_name(), "banking_t");
        assert_eq!(bare.to_string(), "system_u:system_r:banking_t");
        let full = Label::parse("operator_u:admin_r:control_t").unwrap();
        assert_eq!(full.type_name(), "control_t");
        assert_eq!(full.user_role(), "operator_u:admin_r");
        assert_eq!(full.to_string(), "operator_u:admin_r:control_t");
    }

    #[test]
    fn malformed_labels_are_refused() {
        for text in [
            "",
            ":",
            "a:b",
            "a:b:c:d",
            "system_u:system_r:",
            "::banking_t",
            "system_u:system_r:bank-ing",
            "system_u:sys tem_r:banking_t",
            "banking_t ",
            "bänking_t",
        ] {
            assert_eq!(Label::parse(text), None, "{text:?}");
        }
    }
}
