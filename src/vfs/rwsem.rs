// SPDX-License-Identifier: GPL-2.0
//! A reader/writer semaphore that owns the data it protects: 6.12's kernel
//! crate has `Mutex` and `SpinLock` but no `RwLock`, and the mount's engine
//! lock must let readers run side by side.
//!
//! It is a `struct rw_semaphore` (sleeping; lockdep sees it as the class
//! `ferrofs_engine`, made by the C shim because `init_rwsem` is a macro with
//! a static key per call site). Readers get `&T` through a [`ReadGuard`],
//! one writer at a time gets `&mut T` through a [`WriteGuard`]; the guards
//! release on drop and cannot be sent to another task (the semaphore is
//! released by the task that took it, which lockdep checks).

use crate::bindings;
use core::cell::UnsafeCell;
use core::marker::{PhantomData, PhantomPinned};
use core::ops::{Deref, DerefMut};
use kernel::prelude::*;
use kernel::types::Opaque;

/// `T` behind a `struct rw_semaphore`.
#[pin_data]
pub(crate) struct RwSem<T> {
    #[pin]
    sem: Opaque<bindings::rw_semaphore>,
    data: UnsafeCell<T>,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: the semaphore is a kernel object any task may take; the data moves
// with it, which is fine when `T` may move between threads.
unsafe impl<T: Send> Send for RwSem<T> {}
// SAFETY: readers on several CPUs share `&T` at once (hence `T: Sync`), and
// a writer on any CPU gets `&mut T`, exclusive of everyone (hence `T: Send`).
unsafe impl<T: Send + Sync> Sync for RwSem<T> {}

impl<T> RwSem<T> {
    /// The initialiser of the mount's engine lock (lockdep class
    /// `ferrofs_engine`; the only `RwSem` ferrofs has).
    pub(crate) fn new_engine_lock(t: T) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid, pinned memory for the semaphore while
            // the closure runs; init_rwsem needs nothing else.
            sem <- Opaque::ffi_init(|slot| unsafe { bindings::ferrofs_init_engine_rwsem(slot) }),
            data: UnsafeCell::new(t),
            _pin: PhantomPinned,
        })
    }

    /// Takes the semaphore shared (sleeps while a writer holds it).
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        // SAFETY: the semaphore was initialised by the constructor (the
        // only way to get a RwSem) and is pinned inside `self`.
        unsafe { bindings::down_read(self.sem.get()) };
        ReadGuard { lock: self, _not_send: PhantomData }
    }

    /// Takes the semaphore exclusive (sleeps while anyone holds it).
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        // SAFETY: as in `read`.
        unsafe { bindings::down_write(self.sem.get()) };
        WriteGuard { lock: self, _not_send: PhantomData }
    }
}

/// Shared access to a [`RwSem`]'s data; releases on drop.
pub(crate) struct ReadGuard<'a, T> {
    lock: &'a RwSem<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the semaphore is held shared for the guard's life, so no
        // writer has `&mut T` and no writer can take it until we drop.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this task took the semaphore shared in `read`.
        unsafe { bindings::up_read(self.lock.sem.get()) };
    }
}

/// Exclusive access to a [`RwSem`]'s data; releases on drop.
pub(crate) struct WriteGuard<'a, T> {
    lock: &'a RwSem<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the semaphore is held exclusive for the guard's life.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: held exclusive: nobody else has any reference to the data,
        // and `&mut self` makes this the only one through the guard.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this task took the semaphore exclusive in `write`.
        unsafe { bindings::up_write(self.lock.sem.get()) };
    }
}
