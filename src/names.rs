//! Release names, checked the way helm checks them before anything is run.
//!
//! helm accepts `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`, at
//! most 53 characters (its `ValidateReleaseName`). Checking here makes a bad name bad
//! input (exit 2) with a hint, instead of a helm failure (exit 1), and guarantees the
//! name can never be read as a flag (`--all`) by a helm or kubectl the tool starts.

/// helm's limit: a release name ends up in label values and Secret names.
pub const MAX_RELEASE_NAME: usize = 53;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{name:?} is not a valid release name: {why}\nhint: release names are lowercase letters, digits, '-' and '.', start and end with a letter or digit, at most 53 characters (as helm requires)"
)]
pub struct NameError {
    pub name: String,
    pub why: &'static str,
}

pub fn check_release_name(name: &str) -> Result<(), NameError> {
    let fail = |why| Err(NameError { name: name.to_string(), why });
    if name.is_empty() {
        return fail("it is empty");
    }
    if name.len() > MAX_RELEASE_NAME {
        return fail("it is longer than 53 characters");
    }
    for label in name.split('.') {
        let bytes = label.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if bytes.is_empty() {
            return fail("it has an empty part between dots");
        }
        if !bytes.iter().all(|b| alnum(b) || *b == b'-') {
            return fail("only lowercase letters, digits, '-' and '.' are allowed");
        }
        if !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
            return fail("each part must start and end with a lowercase letter or a digit");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_names() {
        for ok in ["bsr", "my-app", "a", "web.v2", "0ab", &"a".repeat(53)] {
            assert_eq!(check_release_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "--all", "-x", "a b", "UPPER", "a_b", "a.", ".a", "a..b", "x-", &"a".repeat(54), "é"] {
            assert!(check_release_name(bad).is_err(), "{bad:?}");
        }
    }
}
