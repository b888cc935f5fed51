//! Error codes. A hypercall returns a negative errno in `rax` on failure.
//! The values are Xen's (`xen/include/public/errno.h`, which follows Linux).

/// Operation not permitted (the policy or a structural check said no).
pub const EPERM: i64 = 1;
/// No such entry.
pub const ENOENT: i64 = 2;
/// No such domain.
pub const ESRCH: i64 = 3;
/// I/O error.
pub const EIO: i64 = 5;
/// Argument list too long (a batch or buffer over its limit).
pub const E2BIG: i64 = 7;
/// Bad handle or port.
pub const EBADF: i64 = 9;
/// Try again.
pub const EAGAIN: i64 = 11;
/// Out of memory.
pub const ENOMEM: i64 = 12;
/// Permission denied.
pub const EACCES: i64 = 13;
/// A guest address that is not the caller's memory.
pub const EFAULT: i64 = 14;
/// Busy.
pub const EBUSY: i64 = 16;
/// Already exists.
pub const EEXIST: i64 = 17;
/// No such device.
pub const ENODEV: i64 = 19;
/// Invalid argument.
pub const EINVAL: i64 = 22;
/// No space left.
pub const ENOSPC: i64 = 28;
/// Result out of range.
pub const ERANGE: i64 = 34;
/// No such hypercall or sub-operation.
pub const ENOSYS: i64 = 38;

/// The name of an errno, for logs.
pub fn name(errno: i64) -> &'static str {
    match errno.abs() {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        EIO => "EIO",
        E2BIG => "E2BIG",
        EBADF => "EBADF",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EFAULT => "EFAULT",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        ENODEV => "ENODEV",
        EINVAL => "EINVAL",
        ENOSPC => "ENOSPC",
        ERANGE => "ERANGE",
        ENOSYS => "ENOSYS",
        _ => "E?",
    }
}
