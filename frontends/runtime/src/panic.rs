//! The panic handler: one console line, `panic: message at file:line`,
//! then shut the domain down as crashed. It formats into a stack buffer and
//! takes no lock, so it works wherever the panic happened.

use core::fmt::Write;
use core::panic::PanicInfo;

use log::Level;
use xen_abi::sched::ShutdownReason;

use crate::console::console_line;
use crate::logger::format_record;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let name = crate::start::start_info().map_or("?", |info| info.name());
    let mut line = console_line();
    let _ = format_record(&mut line, name, Level::Error, format_args!("panic: {}", info.message()));
    if let Some(location) = info.location() {
        let _ = write!(line, " at {}:{}", location.file(), location.line());
    }
    line.finish();
    crate::hypercall::shutdown(ShutdownReason::Crash)
}
