//! Scripts of checked operations: `action=script steps=STEPS [pace_ms=N]
//! [child_label=L]`. A new attack case is a new script, not new code.
//!
//! STEPS is `;`-separated steps `op:arg:...=expect` (see `script/syntax.rs`
//! and `frontends/README.md`), parsed in full before the first one runs:
//! `script: step <i>: cannot parse "<text>": <why>` and a crash otherwise.
//! Each step logs `script: step <i> <op>: <result> (expected <expect>):
//! PASS|FAIL`; the end is `script: <n> steps, <p> passed, <f> failed`, then
//! power-off if every step passed, a crash if not. `pace_ms=` sleeps between
//! steps (and between the maps of a `guess`) so the hypervisor's AVC log,
//! limited to 10 lines a second, shows every denial.


mod ops;
mod outcome;
mod syntax;

use guest_runtime::command_line::find;
use guest_runtime::{ShutdownReason, StartInfo};
use log::{error, info};

use crate::action::number;
use crate::control::DEFAULT_CHILD_LABEL;

use self::ops::{pace, perform, Context};
use self::outcome::Tally;
use self::syntax::parse_script;

/// Longest `pace_ms=`: one minute.
pub const MAX_PACE_MS: u64 = 60_000;

/// Runs the script in `steps=`.
pub fn run(info: &StartInfo) -> ShutdownReason {
    let line = info.command_line();
    let Some(script) = find(line, "steps") else {
        error!("script: no steps= on the command line");
        return ShutdownReason::Crash;
    };
    let pace_ms = match number(line, "pace_ms", 0, 0, MAX_PACE_MS) {
        Ok(ms) => ms,
        Err(problem) => {
            error!("script: {problem}");
            return ShutdownReason::Crash;
        }
    };
    let steps = match parse_script(script) {
        Ok(steps) => steps,
        Err(problem) => {
            error!("script: step {}: cannot parse \"{}\": {}", problem.index, problem.text, problem.why);
            return ShutdownReason::Crash;
        }
    };
    let context = Context { child_label: find(line, "child_label").unwrap_or(DEFAULT_CHILD_LABEL), pace_ms };
    let mut tally = Tally::default();
    for (position, step) in steps.iter().enumerate() {
        if position > 0 {
            pace(pace_ms);
        }
        let verdict = perform(step, &context);
        tally.record(&verdict);
        if verdict.passed {
            info!("script: step {} {}: {} (expected {}): PASS", step.index, step.text, verdict.text, step.expect);
        } else {
            error!("script: step {} {}: {} (expected {}): FAIL", step.index, step.text, verdict.text, step.expect);
        }
    }
    if tally.all_passed() {
        info!("script: {tally}");
        ShutdownReason::Poweroff
    } else {
        error!("script: {tally}");
        ShutdownReason::Crash
    }
}
