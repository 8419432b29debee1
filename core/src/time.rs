//! The room's clock. Everywhere but a browser it is std's `Instant`; in a
//! browser (`wasm32-unknown-unknown`) it is the page's `performance.now()`,
//! imported as `env.streamflow_now_ms`, so the WebAssembly module needs no
//! generated glue: the page's few lines of JavaScript are all it imports.

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub use std::time::Instant;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub use web::Instant;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod web {
    use core::ops::{Add, AddAssign, Sub, SubAssign};
    use core::time::Duration;

    extern "C" {
        /// Milliseconds of a monotonic clock (`performance.now()`).
        fn streamflow_now_ms() -> f64;
        /// Fills `len` bytes at `ptr` from `crypto.getRandomValues`.
        fn streamflow_random_fill(ptr: *mut u8, len: usize);
    }

    /// A point on the page's monotonic clock.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub struct Instant(Duration);

    impl Instant {
        pub fn now() -> Instant {
            // SAFETY: an imported pure function of no arguments.
            let ms = unsafe { streamflow_now_ms() };
            Instant(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
        }

        pub fn duration_since(&self, earlier: Instant) -> Duration {
            self.0.saturating_sub(earlier.0)
        }

        pub fn saturating_duration_since(&self, earlier: Instant) -> Duration {
            self.duration_since(earlier)
        }

        pub fn checked_duration_since(&self, earlier: Instant) -> Option<Duration> {
            self.0.checked_sub(earlier.0)
        }

        pub fn elapsed(&self) -> Duration {
            Instant::now().duration_since(*self)
        }

        pub fn checked_add(&self, d: Duration) -> Option<Instant> {
            self.0.checked_add(d).map(Instant)
        }

        pub fn checked_sub(&self, d: Duration) -> Option<Instant> {
            self.0.checked_sub(d).map(Instant)
        }
    }

    impl Add<Duration> for Instant {
        type Output = Instant;
        fn add(self, d: Duration) -> Instant {
            Instant(self.0 + d)
        }
    }

    impl AddAssign<Duration> for Instant {
        fn add_assign(&mut self, d: Duration) {
            self.0 += d;
        }
    }

    impl Sub<Duration> for Instant {
        type Output = Instant;
        fn sub(self, d: Duration) -> Instant {
            Instant(self.0.saturating_sub(d))
        }
    }

    impl SubAssign<Duration> for Instant {
        fn sub_assign(&mut self, d: Duration) {
            self.0 = self.0.saturating_sub(d);
        }
    }

    impl Sub<Instant> for Instant {
        type Output = Duration;
        fn sub(self, earlier: Instant) -> Duration {
            self.duration_since(earlier)
        }
    }

    /// getrandom's hook on this target: the page's CSPRNG.
    fn fill(dest: &mut [u8]) -> Result<(), getrandom::Error> {
        // crypto.getRandomValues takes at most 65536 bytes a call.
        for chunk in dest.chunks_mut(65536) {
            // SAFETY: the import writes exactly `len` bytes at `ptr`, which
            // point into this live, exclusively borrowed chunk.
            unsafe { streamflow_random_fill(chunk.as_mut_ptr(), chunk.len()) };
        }
        Ok(())
    }

    getrandom::register_custom_getrandom!(fill);
}
