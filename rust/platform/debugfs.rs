// SPDX-License-Identifier: GPL-2.0

//! debugfs directories and files whose `file_operations` pin the module.
//!
//! The kernel crate's `kernel::debugfs` builds `file_operations` without an
//! `.owner`. Built into the kernel that is fine; in a module it is not: an
//! open file does not hold the module, `rmmod` succeeds, and closing the file
//! afterwards calls into freed module memory (an oops, or a panic when the
//! reader is init). Here the C side (`helpers.c`) supplies the
//! `file_operations`, with `.owner = THIS_MODULE`: while any file is open the
//! module cannot be unloaded, exactly as for a C module's debugfs files, and
//! an open that races with `rmmod` fails cleanly with `ENXIO`.

use super::ffi::{
    tsg_debugfs_create_dir,
    tsg_debugfs_create_file,
    tsg_debugfs_file,
    tsg_debugfs_remove, //
};
use core::fmt;
use core::marker::PhantomPinned;
use kernel::{
    bindings,
    ffi::{
        c_char,
        c_int,
        c_void, //
    },
    prelude::*,
    seq_file::SeqFile,
    sync::Arc,
    types::Opaque, //
};

/// A debugfs directory. Files and subdirectories hold an [`Arc`] of their
/// parent, so a directory is removed only after everything in it.
///
/// # Invariants
///
/// `dentry` was returned by `debugfs_create_dir()` (an error pointer when
/// debugfs is unavailable, which every debugfs call accepts) and is removed
/// only in `drop`.
pub(crate) struct Dir {
    dentry: *mut bindings::dentry,
    _parent: Option<Arc<Dir>>,
}

// SAFETY: A dentry pointer may be used and removed from any task.
unsafe impl Send for Dir {}
// SAFETY: `&Dir` only lends the dentry to debugfs calls, which lock internally.
unsafe impl Sync for Dir {}

impl Dir {
    /// Creates `name` under `parent`, or at the debugfs root.
    ///
    /// As everywhere in debugfs, failure is not an error: the directory and
    /// its files are then simply absent.
    pub(crate) fn new(name: &CStr, parent: Option<Arc<Dir>>) -> Result<Arc<Self>> {
        let parent_dentry = parent.as_ref().map_or(core::ptr::null_mut(), |p| p.dentry);
        // SAFETY: `name` is NUL-terminated; `parent_dentry` is NULL or a live
        // directory (the `Arc` keeps it).
        let dentry = unsafe { tsg_debugfs_create_dir(name.as_char_ptr(), parent_dentry) };
        // INVARIANT: `dentry` was just returned by `debugfs_create_dir()`.
        Ok(Arc::new(
            Self {
                dentry,
                _parent: parent,
            },
            GFP_KERNEL,
        )?)
    }
    /// The directory's dentry (an error pointer when debugfs is
    /// unavailable), for C helpers that make files in it
    /// ([`super::fault`]). Valid while `self` is.
    pub(super) fn dentry(&self) -> *mut bindings::dentry {
        self.dentry
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: `dentry` came from `debugfs_create_dir()` (type invariant)
        // and is removed once; every child holds an `Arc` of this directory,
        // so all of them are gone already.
        unsafe { tsg_debugfs_remove(self.dentry) }
    }
}

/// Prints a file's content.
pub(crate) type ShowFn<T> = fn(&T, &mut fmt::Formatter<'_>) -> fmt::Result;
/// Takes one `write()` to a file (at most `TSG_DEBUGFS_WRITE_MAX`, 64 bytes: longer writes fail with `EINVAL`).
pub(crate) type WriteFn<T> = fn(&T, &[u8]) -> Result;

/// A debugfs file showing or taking `T` through the given functions; root
/// only (0400 to read, 0200 to write). Removed when dropped.
///
/// # Invariants
///
/// `raw.data` points to this `File` itself, which is pinned; `dentry` was
/// returned by `debugfs_create_file()` with `raw` as its private data and is
/// removed in `drop` before anything is freed.
#[pin_data(PinnedDrop)]
pub(crate) struct File<T: Send + Sync> {
    raw: Opaque<tsg_debugfs_file>,
    dentry: *mut bindings::dentry,
    data: T,
    show: Option<ShowFn<T>>,
    write: Option<WriteFn<T>>,
    _dir: Arc<Dir>,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The raw pointers refer to this pinned `File` and to its dentry,
// which may be removed from any task; `T` is `Send`.
unsafe impl<T: Send + Sync> Send for File<T> {}
// SAFETY: Shared access reaches `T` only as `&T` (and `T` is `Sync`); the
// file's callbacks may run concurrently, which `&T` allows.
unsafe impl<T: Send + Sync> Sync for File<T> {}

/// Formats through a [`ShowFn`].
struct Shown<'a, T>(&'a T, ShowFn<T>);

impl<T> core::fmt::Display for Shown<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.1)(self.0, f)
    }
}

/// `show` of `struct tsg_debugfs_file`.
///
/// # Safety
///
/// `data` is the `raw.data` of a live `File<T>` and `m` a live `seq_file`.
unsafe extern "C" fn show_callback<T: Send + Sync>(
    m: *mut bindings::seq_file,
    data: *const c_void,
) -> c_int {
    // SAFETY: By the caller's contract `data` is a live `File<T>`: debugfs
    // runs this only while the file exists, and `File::drop` removes it
    // (waiting for callbacks in progress) before freeing anything.
    let file = unsafe { &*data.cast::<File<T>>() };
    // SAFETY: `m` is the live `seq_file` of this read.
    let seq = unsafe { SeqFile::from_raw(m) };
    if let Some(show) = file.show {
        seq.call_printf(format_args!("{}", Shown(&file.data, show)));
    }
    0
}

/// `write` of `struct tsg_debugfs_file`.
///
/// # Safety
///
/// `data` is the `raw.data` of a live `File<T>`; `buf` holds `len` bytes.
unsafe extern "C" fn write_callback<T: Send + Sync>(
    data: *const c_void,
    buf: *const c_char,
    len: usize,
) -> c_int {
    // SAFETY: As in `show_callback`.
    let file = unsafe { &*data.cast::<File<T>>() };
    // SAFETY: The C side copied `len` bytes from user space into `buf`.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
    match file.write {
        Some(write) => match write(&file.data, input) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        },
        None => EINVAL.to_errno(),
    }
}

impl<T: Send + Sync> File<T> {
    /// Creates `name` in `dir`: readable through `show` if given, writable
    /// through `write` if given.
    pub(crate) fn new(
        dir: &Arc<Dir>,
        name: &CStr,
        data: T,
        show: Option<ShowFn<T>>,
        write: Option<WriteFn<T>>,
    ) -> Result<Pin<KBox<Self>>> {
        let mut file = KBox::pin(
            Self {
                raw: Opaque::uninit(),
                dentry: core::ptr::null_mut(),
                data,
                show,
                write,
                _dir: dir.clone(),
                _pin: PhantomPinned,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: Only fields that are not structurally pinned are written;
        // the `File` itself stays where it is.
        let this = unsafe { file.as_mut().get_unchecked_mut() };
        // The callbacks coerce to the fields' types, as bindgen declared them.
        let raw = tsg_debugfs_file {
            show: show.and(Some(show_callback::<T>)),
            write: write.and(Some(write_callback::<T>)),
            data: core::ptr::from_ref::<Self>(this).cast(),
        };
        // SAFETY: `raw` is valid for writes and nobody reads it yet.
        unsafe { this.raw.get().write(raw) };
        // SAFETY: `name` is NUL-terminated; `dir.dentry` is a live directory;
        // `raw` is initialised and lives, pinned, as long as the dentry.
        this.dentry =
            unsafe { tsg_debugfs_create_file(name.as_char_ptr(), dir.dentry, this.raw.get()) };
        // INVARIANT: `raw.data` points to this pinned `File`, the dentry was
        // created with `raw`.
        Ok(file)
    }
}

#[pinned_drop]
impl<T: Send + Sync> PinnedDrop for File<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `dentry` is this file's (type invariant; NULL or an error
        // pointer are accepted). `debugfs_remove()` waits for the callbacks
        // in progress and makes later ones fail, so `raw` and `data` are
        // unused once it returns.
        unsafe { tsg_debugfs_remove(self.dentry) }
    }
}
