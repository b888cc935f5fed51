//! The script language of `action=script steps=...`: parsed in full before
//! anything runs, so a typo stops the script before its first hypercall.
//!
//! ```text
//! steps  = step *( ";" step ) [ ";" ]
//! step   = op *( ":" arg ) "=" expect
//! expect = "ok" | "deny" | "fail" | ERRNO-NAME | [ "GNTST_" ] GNTST-NAME
//! ```
//!
//! Arguments are decimal numbers (domain ids, ports, grant refs,
//! milliseconds), except `create`'s optional type name.

use core::fmt;

use alloc::vec::Vec;

use guest_runtime::grant::GrantStatus;

/// Most refs one `guess` tries.
pub const MAX_GUESS: u32 = 4096;
/// Longest `sleep`, in milliseconds (ten minutes).
pub const MAX_SLEEP_MS: u64 = 600_000;
/// Longest type name `create:TYPE` takes.
pub const MAX_TYPE_BYTES: usize = 40;

/// One operation of a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// `bind:D:P`: `bind_interdomain` to domain D's port P.
    Bind {
        /// The remote domain.
        domain: u16,
        /// Its port.
        port: u32,
    },
    /// `send:P`: send on our port P.
    Send {
        /// Our port.
        port: u32,
    },
    /// `close:P`: close our port P.
    Close {
        /// Our port.
        port: u32,
    },
    /// `alloc:D`: `alloc_unbound` a port of ours for domain D.
    Alloc {
        /// The domain that may bind it.
        domain: u16,
    },
    /// `status:P`: `EVTCHNOP_status` of our port P.
    Status {
        /// Our port.
        port: u32,
    },
    /// `map:D:R` (read-write) or `mapro:D:R` (read-only): map D's grant R,
    /// unmapping it at once if that works.
    Map {
        /// The granting domain.
        domain: u16,
        /// Its grant ref.
        reference: u32,
        /// `mapro`.
        readonly: bool,
    },
    /// `copy:D:R`: grant copy of 16 bytes from D's ref R into a page of ours.
    Copy {
        /// The granting domain.
        domain: u16,
        /// Its grant ref.
        reference: u32,
    },
    /// `guess:D:FIRST:LAST`: map (read-write) each of D's refs
    /// FIRST..=LAST; the expectation applies to each.
    Guess {
        /// The granting domain.
        domain: u16,
        /// The first ref tried.
        first: u32,
        /// The last ref tried.
        last: u32,
    },
    /// `pause:D` (domctl).
    Pause {
        /// The target.
        domain: u16,
    },
    /// `unpause:D` (domctl).
    Unpause {
        /// The target.
        domain: u16,
    },
    /// `destroy:D` (domctl).
    Destroy {
        /// The target.
        domain: u16,
    },
    /// `info:D` (domctl getdomaininfo of exactly D).
    Info {
        /// The target.
        domain: u16,
    },
    /// `create` or `create:TYPE`: domctl create the embedded `tiny` kernel,
    /// labelled `system_u:system_r:TYPE` (without a type: `child_label=`
    /// or the control action's default).
    Create {
        /// The new domain's type, if given.
        type_name: Option<&'a str>,
    },
    /// `setenforce:0|1` (xsm_op).
    SetEnforce {
        /// `1`.
        enforcing: bool,
    },
    /// `getenforce` (xsm_op).
    GetEnforce,
    /// `loadpolicy`: xsm_op LOAD of 64 bytes that are not a policy;
    /// `loadpolicy:HEX`: of the compiled policy those hex digits spell.
    LoadPolicy {
        /// The policy in hexadecimal, if given.
        hex: Option<&'a str>,
    },
    /// `sleep:MS`.
    Sleep {
        /// Milliseconds of system time.
        ms: u64,
    },
    /// `yield`.
    Yield,
}

/// What a step expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Success.
    Ok,
    /// The policy said no: `EACCES`, or `GNTST_permission_denied` from a
    /// grant operation.
    Deny,
    /// Any error.
    Fail,
    /// This errno (positive).
    Errno(i64),
    /// This `GNTST_*` status of a grant operation (negative).
    Grant(i16),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Expect::Ok => f.write_str("ok"),
            Expect::Deny => f.write_str("deny"),
            Expect::Fail => f.write_str("fail"),
            Expect::Errno(code) => f.write_str(xen_abi::errno::name(code)),
            Expect::Grant(code) => write!(f, "{}", GrantStatus(code)),
        }
    }
}

/// One step: its number (from 1), its operation as written, what it does
/// and what it expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step<'a> {
    /// 1-based position in the script.
    pub index: usize,
    /// The text before `=`, for the log.
    pub text: &'a str,
    /// The operation.
    pub op: Op<'a>,
    /// The expectation.
    pub expect: Expect,
}

/// Why a step does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError<'a> {
    /// 1-based step number.
    pub index: usize,
    /// The step as written.
    pub text: &'a str,
    /// What is wrong.
    pub why: Why<'a>,
}

/// What is wrong with a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why<'a> {
    /// The script has no steps.
    Empty,
    /// A step is empty (`;;`).
    EmptyStep,
    /// No `=expect`.
    NoExpectation,
    /// The expectation is not one the language knows.
    UnknownExpectation(&'a str),
    /// The operation is not one the language knows.
    UnknownOp(&'a str),
    /// Wrong number of arguments: the op, its usage, how many it got.
    Arguments(&'a str, &'static str, usize),
    /// Not a decimal number.
    NotANumber(&'a str),
    /// A number out of range for what it names.
    OutOfRange(&'a str, &'static str, u64),
    /// `guess` with LAST below FIRST.
    EmptyRange(u32, u32),
    /// `guess` over more than [`MAX_GUESS`] refs.
    TooManyRefs(u64),
    /// `setenforce` takes 0 or 1.
    NotABoolean(&'a str),
    /// A type name that is empty, too long or not `[A-Za-z0-9_]`.
    BadTypeName(&'a str),
}

impl fmt::Display for Why<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Why::Empty => f.write_str("the script has no steps"),
            Why::EmptyStep => f.write_str("empty step"),
            Why::NoExpectation => f.write_str("no =expect (ok, deny, fail, an errno or a GNTST name)"),
            Why::UnknownExpectation(text) => write!(f, "unknown expectation '{text}' (ok, deny, fail, an errno or a GNTST name)"),
            Why::UnknownOp(text) => write!(f, "unknown op '{text}'"),
            Why::Arguments(op, usage, got) => write!(f, "{op} takes {usage}, got {got} argument(s)"),
            Why::NotANumber(text) => write!(f, "'{text}' is not a decimal number"),
            Why::OutOfRange(text, what, max) => write!(f, "{what} {text} is out of range (at most {max})"),
            Why::EmptyRange(first, last) => write!(f, "guess range {first}..={last} is empty"),
            Why::TooManyRefs(count) => write!(f, "guess of {count} refs is more than {MAX_GUESS}"),
            Why::NotABoolean(text) => write!(f, "setenforce takes 0 or 1, not '{text}'"),
            Why::BadTypeName(text) => {
                write!(f, "type name '{text}' must be 1 to {MAX_TYPE_BYTES} characters of A-Z a-z 0-9 _")
            }
        }
    }
}

/// Parses a whole script; the first bad step is the error.
pub fn parse_script(script: &str) -> Result<Vec<Step<'_>>, ParseError<'_>> {
    let script = script.strip_suffix(';').unwrap_or(script);
    if script.is_empty() {
        return Err(ParseError { index: 0, text: "", why: Why::Empty });
    }
    script
        .split(';')
        .enumerate()
        .map(|(position, text)| parse_step(position + 1, text).map_err(|why| ParseError { index: position + 1, text, why }))
        .collect()
}

/// Parses one step (`index` is its 1-based number).
pub fn parse_step(index: usize, text: &str) -> Result<Step<'_>, Why<'_>> {
    if text.is_empty() {
        return Err(Why::EmptyStep);
    }
    let (op_text, expect_text) = text.split_once('=').ok_or(Why::NoExpectation)?;
    let op = parse_op(op_text)?;
    let expect = parse_expect(expect_text)?;
    Ok(Step { index, text: op_text, op, expect })
}

/// Parses an expectation.
pub fn parse_expect(text: &str) -> Result<Expect, Why<'_>> {
    match text {
        "ok" | "okay" | "GNTST_okay" => return Ok(Expect::Ok),
        "deny" => return Ok(Expect::Deny),
        "fail" => return Ok(Expect::Fail),
        _ => {}
    }
    // The name tables answer "E?" and "?" for what they do not know.
    let unknown = Err(Why::UnknownExpectation(text));
    if text.starts_with('E') {
        if text == "E?" {
            return unknown;
        }
        if let Some(code) = (1..=255).find(|&code| xen_abi::errno::name(code) == text) {
            return Ok(Expect::Errno(code));
        }
    }
    let bare = text.strip_prefix("GNTST_").unwrap_or(text);
    if bare == "?" {
        return unknown;
    }
    match (-64..0).find(|&code| GrantStatus(code).name() == bare) {
        Some(code) => Ok(Expect::Grant(code)),
        None => unknown,
    }
}

/// Parses an operation with its arguments.
pub fn parse_op(text: &str) -> Result<Op<'_>, Why<'_>> {
    let mut parts = text.split(':');
    let name = parts.next().unwrap_or_default();
    let mut arguments: [&str; 3] = [""; 3];
    let mut count = 0;
    for part in parts {
        if count < arguments.len() {
            arguments[count] = part;
        }
        count += 1;
    }
    let want = |usage: &'static str, wanted: usize| if count == wanted { Ok(()) } else { Err(Why::Arguments(name, usage, count)) };
    let [a, b, c] = arguments;
    let op = match name {
        "bind" => {
            want("D:P", 2)?;
            Op::Bind { domain: domain(a)?, port: port(b)? }
        }
        "send" => {
            want("P", 1)?;
            Op::Send { port: port(a)? }
        }
        "close" => {
            want("P", 1)?;
            Op::Close { port: port(a)? }
        }
        "alloc" => {
            want("D", 1)?;
            Op::Alloc { domain: domain(a)? }
        }
        "status" => {
            want("P", 1)?;
            Op::Status { port: port(a)? }
        }
        "map" | "mapro" => {
            want("D:R", 2)?;
            Op::Map { domain: domain(a)?, reference: reference(b)?, readonly: name == "mapro" }
        }
        "copy" => {
            want("D:R", 2)?;
            Op::Copy { domain: domain(a)?, reference: reference(b)? }
        }
        "guess" => {
            want("D:FIRST:LAST", 3)?;
            let (domain, first, last) = (domain(a)?, reference(b)?, reference(c)?);
            if last < first {
                return Err(Why::EmptyRange(first, last));
            }
            let refs = u64::from(last - first) + 1;
            if refs > u64::from(MAX_GUESS) {
                return Err(Why::TooManyRefs(refs));
            }
            Op::Guess { domain, first, last }
        }
        "pause" => {
            want("D", 1)?;
            Op::Pause { domain: domain(a)? }
        }
        "unpause" => {
            want("D", 1)?;
            Op::Unpause { domain: domain(a)? }
        }
        "destroy" => {
            want("D", 1)?;
            Op::Destroy { domain: domain(a)? }
        }
        "info" => {
            want("D", 1)?;
            Op::Info { domain: domain(a)? }
        }
        "create" => match count {
            0 => Op::Create { type_name: None },
            1 => Op::Create { type_name: Some(type_name(a)?) },
            _ => return Err(Why::Arguments(name, "no argument or TYPE", count)),
        },
        "setenforce" => {
            want("0 or 1", 1)?;
            match a {
                "0" => Op::SetEnforce { enforcing: false },
                "1" => Op::SetEnforce { enforcing: true },
                _ => return Err(Why::NotABoolean(a)),
            }
        }
        "getenforce" => {
            want("no argument", 0)?;
            Op::GetEnforce
        }
        "loadpolicy" => {
            if count == 1 {
                if a.is_empty() || a.len() % 2 != 0 || !a.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                    return Err(Why::Arguments(name, "HEX (an even number of hex digits)", count));
                }
                Op::LoadPolicy { hex: Some(a) }
            } else {
                want("no argument or HEX", 0)?;
                Op::LoadPolicy { hex: None }
            }
        }
        "sleep" => {
            want("MS", 1)?;
            Op::Sleep { ms: bounded(a, "sleep of ms", MAX_SLEEP_MS)? }
        }
        "yield" => {
            want("no argument", 0)?;
            Op::Yield
        }
        _ => return Err(Why::UnknownOp(name)),
    };
    Ok(op)
}

/// A decimal number: digits only (no sign, no `0x`), at most `max`.
fn bounded<'a>(text: &'a str, what: &'static str, max: u64) -> Result<u64, Why<'a>> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(Why::NotANumber(text));
    }
    match text.parse::<u64>() {
        Ok(value) if value <= max => Ok(value),
        _ => Err(Why::OutOfRange(text, what, max)),
    }
}

fn domain(text: &str) -> Result<u16, Why<'_>> {
    bounded(text, "domain", u64::from(u16::MAX)).map(|value| value as u16)
}

fn port(text: &str) -> Result<u32, Why<'_>> {
    bounded(text, "port", u64::from(u32::MAX)).map(|value| value as u32)
}

fn reference(text: &str) -> Result<u32, Why<'_>> {
    bounded(text, "grant ref", u64::from(u32::MAX)).map(|value| value as u32)
}

fn type_name(text: &str) -> Result<&str, Why<'_>> {
    let valid = !text.is_empty()
        && text.len() <= MAX_TYPE_BYTES
        && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    if valid {
        Ok(text)
    } else {
        Err(Why::BadTypeName(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use xen_abi::errno::{EACCES, EINVAL, EPERM, ESRCH};
    use xen_abi::grant_table::status;

    fn op(text: &str) -> Op<'_> {
        parse_op(text).unwrap()
    }

    #[test]
    fn every_op() {
        assert_eq!(op("bind:3:1"), Op::Bind { domain: 3, port: 1 });
        assert_eq!(op("send:7"), Op::Send { port: 7 });
        assert_eq!(op("close:4095"), Op::Close { port: 4095 });
        assert_eq!(op("alloc:2"), Op::Alloc { domain: 2 });
        assert_eq!(op("status:1"), Op::Status { port: 1 });
        assert_eq!(op("map:3:8"), Op::Map { domain: 3, reference: 8, readonly: false });
        assert_eq!(op("mapro:3:8"), Op::Map { domain: 3, reference: 8, readonly: true });
        assert_eq!(op("copy:3:8"), Op::Copy { domain: 3, reference: 8 });
        assert_eq!(op("guess:3:0:15"), Op::Guess { domain: 3, first: 0, last: 15 });
        assert_eq!(op("guess:3:9:9"), Op::Guess { domain: 3, first: 9, last: 9 });
        assert_eq!(op("pause:2"), Op::Pause { domain: 2 });
        assert_eq!(op("unpause:2"), Op::Unpause { domain: 2 });
        assert_eq!(op("destroy:2"), Op::Destroy { domain: 2 });
        assert_eq!(op("info:0"), Op::Info { domain: 0 });
        assert_eq!(op("create"), Op::Create { type_name: None });
        assert_eq!(op("create:untrusted_t"), Op::Create { type_name: Some("untrusted_t") });
        assert_eq!(op("setenforce:0"), Op::SetEnforce { enforcing: false });
        assert_eq!(op("setenforce:1"), Op::SetEnforce { enforcing: true });
        assert_eq!(op("getenforce"), Op::GetEnforce);
        assert_eq!(op("loadpolicy"), Op::LoadPolicy { hex: None });
        assert_eq!(op("loadpolicy:0aFf"), Op::LoadPolicy { hex: Some("0aFf") });
        assert_eq!(op("sleep:250"), Op::Sleep { ms: 250 });
        assert_eq!(op("sleep:0"), Op::Sleep { ms: 0 });
        assert_eq!(op("yield"), Op::Yield);
    }

    #[test]
    fn numbers_at_their_limits() {
        assert_eq!(op("bind:65535:4294967295"), Op::Bind { domain: 65535, port: u32::MAX });
        assert_eq!(op("bind:32752:1"), Op::Bind { domain: 0x7ff0, port: 1 }, "DOMID_SELF is a number like any other");
        assert_eq!(op("map:0007:0"), Op::Map { domain: 7, reference: 0, readonly: false });
        assert_eq!(parse_op("bind:65536:1"), Err(Why::OutOfRange("65536", "domain", 65535)));
        assert_eq!(parse_op("send:4294967296"), Err(Why::OutOfRange("4294967296", "port", u64::from(u32::MAX))));
        assert_eq!(parse_op("copy:1:99999999999999999999999"), Err(Why::OutOfRange("99999999999999999999999", "grant ref", u64::from(u32::MAX))));
        assert_eq!(op("sleep:600000"), Op::Sleep { ms: MAX_SLEEP_MS });
        assert_eq!(parse_op("sleep:600001"), Err(Why::OutOfRange("600001", "sleep of ms", MAX_SLEEP_MS)));
        assert_eq!(op("guess:1:0:4095"), Op::Guess { domain: 1, first: 0, last: 4095 });
        assert_eq!(parse_op("guess:1:0:4096"), Err(Why::TooManyRefs(4097)));
        assert_eq!(parse_op("guess:1:0:4294967295"), Err(Why::TooManyRefs(1 << 32)));
        assert_eq!(parse_op("guess:1:5:4"), Err(Why::EmptyRange(5, 4)));
    }

    #[test]
    fn only_plain_decimals() {
        for bad in ["", "+1", "-1", "0x10", "1e3", " 1", "1 ", "one", "1.0"] {
            let text = std::format!("send:{bad}");
            assert_eq!(parse_op(&text), Err(Why::NotANumber(bad)), "{text}");
        }
    }

    #[test]
    fn argument_counts() {
        assert_eq!(parse_op("bind:3"), Err(Why::Arguments("bind", "D:P", 1)));
        assert_eq!(parse_op("bind:3:1:2"), Err(Why::Arguments("bind", "D:P", 3)));
        assert_eq!(parse_op("send"), Err(Why::Arguments("send", "P", 0)));
        assert_eq!(parse_op("map:3"), Err(Why::Arguments("map", "D:R", 1)));
        assert_eq!(parse_op("mapro:3:8:9"), Err(Why::Arguments("mapro", "D:R", 3)));
        assert_eq!(parse_op("guess:3:0"), Err(Why::Arguments("guess", "D:FIRST:LAST", 2)));
        assert_eq!(parse_op("guess:3:0:1:2:3:4"), Err(Why::Arguments("guess", "D:FIRST:LAST", 6)));
        assert_eq!(parse_op("yield:1"), Err(Why::Arguments("yield", "no argument", 1)));
        assert_eq!(parse_op("getenforce:1"), Err(Why::Arguments("getenforce", "no argument", 1)));
        assert_eq!(parse_op("loadpolicy:1"), Err(Why::Arguments("loadpolicy", "HEX (an even number of hex digits)", 1)));
        assert_eq!(parse_op("loadpolicy:zz"), Err(Why::Arguments("loadpolicy", "HEX (an even number of hex digits)", 1)));
        assert_eq!(parse_op("loadpolicy:00:11"), Err(Why::Arguments("loadpolicy", "no argument or HEX", 2)));
        assert_eq!(parse_op("create:a:b"), Err(Why::Arguments("create", "no argument or TYPE", 2)));
        assert_eq!(parse_op("setenforce"), Err(Why::Arguments("setenforce", "0 or 1", 0)));
        assert_eq!(parse_op("sleep"), Err(Why::Arguments("sleep", "MS", 0)));
        for name in ["pause", "unpause", "destroy", "info", "alloc"] {
            assert_eq!(parse_op(name), Err(Why::Arguments(name, "D", 0)));
        }
    }

    #[test]
    fn bad_words() {
        assert_eq!(parse_op("bnid:3:1"), Err(Why::UnknownOp("bnid")));
        assert_eq!(parse_op(""), Err(Why::UnknownOp("")));
        assert_eq!(parse_op("Bind:3:1"), Err(Why::UnknownOp("Bind")));
        assert_eq!(parse_op("setenforce:2"), Err(Why::NotABoolean("2")));
        assert_eq!(parse_op("setenforce:on"), Err(Why::NotABoolean("on")));
        assert_eq!(parse_op("create:"), Err(Why::BadTypeName("")));
        assert_eq!(parse_op("create:bad-type"), Err(Why::BadTypeName("bad-type")));
        let long = "t".repeat(MAX_TYPE_BYTES + 1);
        assert_eq!(parse_op(&std::format!("create:{long}")), Err(Why::BadTypeName(&long)));
    }

    #[test]
    fn every_expect_form() {
        assert_eq!(parse_expect("ok"), Ok(Expect::Ok));
        assert_eq!(parse_expect("okay"), Ok(Expect::Ok));
        assert_eq!(parse_expect("GNTST_okay"), Ok(Expect::Ok));
        assert_eq!(parse_expect("deny"), Ok(Expect::Deny));
        assert_eq!(parse_expect("fail"), Ok(Expect::Fail));
        assert_eq!(parse_expect("EINVAL"), Ok(Expect::Errno(EINVAL)));
        assert_eq!(parse_expect("ESRCH"), Ok(Expect::Errno(ESRCH)));
        assert_eq!(parse_expect("EPERM"), Ok(Expect::Errno(EPERM)));
        assert_eq!(parse_expect("EACCES"), Ok(Expect::Errno(EACCES)));
        assert_eq!(parse_expect("bad_gntref"), Ok(Expect::Grant(status::BAD_GNTREF)));
        assert_eq!(parse_expect("GNTST_bad_gntref"), Ok(Expect::Grant(status::BAD_GNTREF)));
        assert_eq!(parse_expect("permission_denied"), Ok(Expect::Grant(status::PERMISSION_DENIED)));
        assert_eq!(parse_expect("bad_domain"), Ok(Expect::Grant(status::BAD_DOMAIN)));
        assert_eq!(parse_expect("general_error"), Ok(Expect::Grant(status::GENERAL_ERROR)));
        for bad in ["", "OK", "Deny", "einval", "E?", "EWHAT", "GNTST_", "GNTST_?", "?", "bad_gntref ", "GNTST_EINVAL"] {
            assert_eq!(parse_expect(bad), Err(Why::UnknownExpectation(bad)), "{bad:?}");
        }
    }

    #[test]
    fn every_errno_and_status_name_round_trips() {
        for code in 1..=255 {
            let name = xen_abi::errno::name(code);
            if name != "E?" {
                assert_eq!(parse_expect(name), Ok(Expect::Errno(code)));
                assert_eq!(Expect::Errno(code).to_string(), name);
            }
        }
        for code in -64..0i16 {
            let status = GrantStatus(code);
            if status.name() != "?" {
                assert_eq!(parse_expect(status.name()), Ok(Expect::Grant(code)));
                assert_eq!(parse_expect(&status.to_string()), Ok(Expect::Grant(code)));
                assert_eq!(Expect::Grant(code).to_string(), status.to_string());
            }
        }
    }

    #[test]
    fn expect_display() {
        assert_eq!(Expect::Ok.to_string(), "ok");
        assert_eq!(Expect::Deny.to_string(), "deny");
        assert_eq!(Expect::Fail.to_string(), "fail");
        assert_eq!(Expect::Errno(EINVAL).to_string(), "EINVAL");
        assert_eq!(Expect::Grant(status::BAD_GNTREF).to_string(), "GNTST_bad_gntref");
    }

    #[test]
    fn scripts() {
        let steps = parse_script("sleep:100=ok;bind:3:1=deny;map:3:8=permission_denied;send:1=EINVAL").unwrap();
        assert_eq!(steps.len(), 4);
        assert_eq!(steps[0], Step { index: 1, text: "sleep:100", op: Op::Sleep { ms: 100 }, expect: Expect::Ok });
        assert_eq!(steps[1], Step { index: 2, text: "bind:3:1", op: Op::Bind { domain: 3, port: 1 }, expect: Expect::Deny });
        assert_eq!(steps[2].expect, Expect::Grant(status::PERMISSION_DENIED));
        assert_eq!(steps[3].index, 4);
        assert_eq!(steps[3].text, "send:1");
        // One trailing separator is fine.
        assert_eq!(parse_script("yield=ok;").unwrap().len(), 1);
    }

    #[test]
    fn script_errors_name_the_step() {
        let error = |script| parse_script(script).unwrap_err();
        assert_eq!(error(""), ParseError { index: 0, text: "", why: Why::Empty });
        assert_eq!(error(";"), ParseError { index: 0, text: "", why: Why::Empty });
        assert_eq!(error("yield=ok;;yield=ok"), ParseError { index: 2, text: "", why: Why::EmptyStep });
        assert_eq!(error("yield=ok;yield=ok;;"), ParseError { index: 3, text: "", why: Why::EmptyStep });
        assert_eq!(error("yield=ok;bind:3:1"), ParseError { index: 2, text: "bind:3:1", why: Why::NoExpectation });
        assert_eq!(error("yield=ok;yield=ok;bind:3:x=deny"), ParseError { index: 3, text: "bind:3:x=deny", why: Why::NotANumber("x") });
        assert_eq!(error("bind:3:1=deny=ok"), ParseError { index: 1, text: "bind:3:1=deny=ok", why: Why::UnknownExpectation("deny=ok") });
        assert_eq!(error("bind:3:1="), ParseError { index: 1, text: "bind:3:1=", why: Why::UnknownExpectation("") });
        assert_eq!(error("=ok"), ParseError { index: 1, text: "=ok", why: Why::UnknownOp("") });
    }

    #[test]
    fn reasons_read_well() {
        assert_eq!(Why::Arguments("bind", "D:P", 1).to_string(), "bind takes D:P, got 1 argument(s)");
        assert_eq!(Why::NotANumber("x").to_string(), "'x' is not a decimal number");
        assert_eq!(Why::OutOfRange("70000", "domain", 65535).to_string(), "domain 70000 is out of range (at most 65535)");
        assert_eq!(Why::UnknownOp("bnid").to_string(), "unknown op 'bnid'");
        assert_eq!(Why::EmptyRange(5, 4).to_string(), "guess range 5..=4 is empty");
        assert_eq!(Why::TooManyRefs(5000).to_string(), "guess of 5000 refs is more than 4096");
        assert!(Why::UnknownExpectation("x").to_string().starts_with("unknown expectation 'x'"));
        assert!(Why::NoExpectation.to_string().starts_with("no =expect"));
        assert!(Why::BadTypeName("a-b").to_string().starts_with("type name 'a-b'"));
        assert_eq!(Why::NotABoolean("2").to_string(), "setenforce takes 0 or 1, not '2'");
        assert_eq!(Why::EmptyStep.to_string(), "empty step");
        assert_eq!(Why::Empty.to_string(), "the script has no steps");
    }
}
