//! The progress file's format number: which uspslink can read the file, so a version never
//! overwrites what a newer one wrote (a downgrade, or two versions sharing a profile).
//!
//! The number is a top-level entry of the file, beside the records. Files from before it have none
//! and are this format (their shapes are the ones this version reads). A newer number, or one that
//! is not a number at all, means another writer: this version then reads nothing from the file and
//! writes nothing to it until the owner chooses to start over here, which keeps the file aside.

use serde_json::Value;

/// Why nothing is saved, or changed in the keyring, while a newer version's file is open: one
/// wording for the progress store's refusal and the keyring's.
pub const NEWER_FILE_REFUSAL: &str = "this progress was saved by a newer version of uspslink, and this version \
     does not change it or its keys; choose Start over here in the notice at the top, or open the newer uspslink";

/// The file's entry that holds the number.
pub const FORMAT_KEY: &str = "format";

/// The format this version writes. Raise it when a record changes in a way an older version would
/// misread; keep reading the older numbers (migrations live behind the number they upgrade).
pub const CURRENT_FORMAT: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// This version's format, an older one, or a file from before the number.
    Readable,
    /// A newer uspslink wrote it.
    Newer(u64),
    /// The entry is there but is not a format number (hand-edited, or another program's file).
    Unrecognised,
}

/// The file's format, judged by its `format` entry (`None`: the file has none).
pub fn judge(entry: Option<&Value>) -> FileFormat {
    match entry {
        None => FileFormat::Readable,
        Some(v) => match v.as_u64() {
            Some(n) if n <= CURRENT_FORMAT => FileFormat::Readable,
            Some(n) => FileFormat::Newer(n),
            None => FileFormat::Unrecognised,
        },
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn only_this_format_or_older_is_read() {
        assert_eq!(judge(None), FileFormat::Readable, "files from before the number");
        assert_eq!(judge(Some(&json!(CURRENT_FORMAT))), FileFormat::Readable);
        assert_eq!(judge(Some(&json!(0))), FileFormat::Readable);
        assert_eq!(judge(Some(&json!(CURRENT_FORMAT + 1))), FileFormat::Newer(CURRENT_FORMAT + 1));
        assert_eq!(judge(Some(&json!(u64::MAX))), FileFormat::Newer(u64::MAX));
        for odd in [json!(-1), json!(1.5), json!("1"), json!(null), json!([1]), json!({"v": 1}), json!(true)] {
            assert_eq!(judge(Some(&odd)), FileFormat::Unrecognised, "{odd}");
        }
    }

    proptest! {
        // Whatever a file holds under the entry (text of any kind, any number), it is judged
        // without panicking, and only a whole number up to this format is read.
        #[test]
        fn any_entry_is_judged(text in "\\PC*", n in any::<i64>(), f in any::<f64>()) {
            for v in [json!(text), json!(n), json!(f)] {
                let readable = v.as_u64().is_some_and(|n| n <= CURRENT_FORMAT);
                prop_assert_eq!(judge(Some(&v)) == FileFormat::Readable, readable);
            }
        }
    }
}
