//! Keyed hash state that is wiped when dropped.
//!
//! `hkdf` and `hmac` 0.12 keep their keyed state (the HMAC inner and outer
//! pads, already mixed with the key) in plain fields and have no `zeroize`
//! support, so a dropped `Hkdf` or `Hmac` leaves key-equivalent bytes on
//! the stack. [`Wiped`] owns one and overwrites all of its bytes on drop.

use std::ops::{Deref, DerefMut};

/// Types that are plain bytes all the way down: fixed-size arrays and
/// integers, no pointers, no heap, no drop glue of their own. Only these
/// may be wiped byte for byte.
///
/// # Safety
/// Implementors must hold no references, boxes, `Vec`s or other pointers
/// to data outside themselves, and must not implement `Drop`.
pub unsafe trait Flat {}

// The RustCrypto HKDF and HMAC cores over SHA-2 are `[u32; 8]`/`[u64; 8]`
// states, block buffers (`[u8; N]` plus a position byte) and counters.
unsafe impl Flat for hkdf::Hkdf<sha2::Sha256> {}
unsafe impl Flat for hkdf::Hkdf<sha2::Sha512> {}
unsafe impl Flat for hmac::Hmac<sha2::Sha256> {}

/// Owns a [`Flat`] value and zeroizes every byte of it when dropped.
pub struct Wiped<T: Flat>(T);

impl<T: Flat> Wiped<T> {
    pub fn new(value: T) -> Self {
        Wiped(value)
    }
}

impl<T: Flat> Deref for Wiped<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Flat> DerefMut for Wiped<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Flat> Drop for Wiped<T> {
    fn drop(&mut self) {
        // SAFETY: `T: Flat` promises a value with no pointers or drop glue,
        // so overwriting its bytes with zeros (volatile, then a fence, as
        // `zeroize` does) leaves nothing dangling; it is never read again.
        unsafe { zeroize::zeroize_flat_type(&mut self.0 as *mut T) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::Mac;

    /// The bytes really are gone: a keyed HMAC's state, seen through the
    /// wrapper just before and after the wipe.
    #[test]
    fn keyed_state_is_zeroed() {
        let mut mac = Wiped::new(
            <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&[0x5a; 32]).expect("any length"),
        );
        mac.update(b"data");
        let size = std::mem::size_of::<hmac::Hmac<sha2::Sha256>>();
        let bytes = |w: &Wiped<hmac::Hmac<sha2::Sha256>>| {
            // SAFETY: reading the initialised bytes of a flat value.
            unsafe { std::slice::from_raw_parts((&w.0 as *const _) as *const u8, size) }.to_vec()
        };
        assert!(bytes(&mac).iter().any(|b| *b != 0));
        unsafe { zeroize::zeroize_flat_type(&mut mac.0 as *mut _) };
        assert!(bytes(&mac).iter().all(|b| *b == 0));
        // (Dropping zeroes it again: harmless.)
    }
}
