//! The command line: space-separated words, `key=value` or a bare `key`.

/// The value of the first `key=value` word in `line` (a bare `key` reads
/// as the empty value), or `None`.
pub fn find<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_ascii_whitespace().find_map(|word| match word.split_once('=') {
        Some((name, value)) if name == key => Some(value),
        None if word == key => Some(""),
        _ => None,
    })
}

/// The value of `key` on this domain's command line (from the start-info
/// page), or `None` (also before the runtime has read the page).
pub fn argument(key: &str) -> Option<&'static str> {
    find(crate::start::start_info()?.command_line(), key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        let line = "  action=read-outside count=10 verbose  loglvl=debug x=a=b ";
        assert_eq!(find(line, "action"), Some("read-outside"));
        assert_eq!(find(line, "count"), Some("10"));
        assert_eq!(find(line, "verbose"), Some(""));
        assert_eq!(find(line, "x"), Some("a=b"));
        assert_eq!(find(line, "act"), None);
        assert_eq!(find(line, "missing"), None);
        assert_eq!(find("", "action"), None);
        assert_eq!(find("action=a action=b", "action"), Some("a"));
        assert_eq!(find("action=", "action"), Some(""));
    }

    #[test]
    fn argument_before_start_is_none() {
        assert_eq!(argument("action"), None);
    }
}
