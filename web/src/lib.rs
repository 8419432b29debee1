//! StreamFlow in a browser. The page loads this module and talks to it in
//! JSON through three exports, with no generated glue:
//!
//! - `sf_alloc(len) -> ptr`: room for a command the page then writes;
//! - `sf_call(ptr, len) -> reply`: runs the command (and frees it); the
//!   reply is `len: u32 LE | JSON` ([`call::Reply`]);
//! - `sf_free_reply(reply)`.
//!
//! It imports two functions, `env.streamflow_now_ms` (`performance.now()`)
//! and `env.streamflow_random_fill` (`crypto.getRandomValues`); see the
//! core's `time` module. Everything else (sockets, camera, canvases) is the
//! page's.

pub mod call;

use std::cell::RefCell;

use call::{Call, Command, Reply};

thread_local! {
    /// The page's one call (a page is one member).
    static CALL: RefCell<Option<Call>> = const { RefCell::new(None) };
}

/// Runs one command from the page.
pub fn handle_json(input: &[u8]) -> String {
    let cmd: Command = match serde_json::from_slice(input) {
        Ok(c) => c,
        Err(e) => return error_reply(format!("not a command: {e}")),
    };
    CALL.with(|slot| {
        let mut slot = slot.borrow_mut();
        match (cmd, slot.as_mut()) {
            (Command::Open { invite, name }, _) => match Call::open(&invite, &name) {
                Ok(call) => {
                    *slot = Some(call);
                    Reply::default().to_json()
                }
                Err(reply) => reply.to_json(),
            },
            (cmd, Some(call)) => {
                let leaving = matches!(cmd, Command::Leave);
                let reply = call.handle(cmd).to_json();
                if leaving {
                    // Keys are wiped as the room drops.
                    *slot = None;
                }
                reply
            }
            (_, None) => error_reply("no call open".into()),
        }
    })
}

fn error_reply(message: String) -> String {
    let mut r = Reply::default();
    r.events
        .push(serde_json::json!({ "type": "error", "message": message }));
    r.to_json()
}

/// Room for `len` bytes of command, for `sf_call` to take back.
#[no_mangle]
pub extern "C" fn sf_alloc(len: usize) -> *mut u8 {
    let mut buf = Vec::<u8>::with_capacity(len.max(1));
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr
}

/// Runs the command at `ptr` (from `sf_alloc(len)`, `len` bytes written).
///
/// # Safety
/// `ptr` must come from `sf_alloc(len)` and not be used again.
#[no_mangle]
pub unsafe extern "C" fn sf_call(ptr: *mut u8, len: usize) -> *mut u8 {
    // SAFETY: the caller hands back sf_alloc's buffer of capacity `len`
    // (or 1 when len is 0), its first `len` bytes written.
    let input = unsafe { Vec::from_raw_parts(ptr, len, len.max(1)) };
    let reply = handle_json(&input).into_bytes();
    let mut out = Vec::with_capacity(4 + reply.len());
    out.extend_from_slice(&(reply.len() as u32).to_le_bytes());
    out.extend_from_slice(&reply);
    Box::into_raw(out.into_boxed_slice()) as *mut u8
}

/// Frees a reply from `sf_call`.
///
/// # Safety
/// `ptr` must be a reply from `sf_call`, freed once.
#[no_mangle]
pub unsafe extern "C" fn sf_free_reply(ptr: *mut u8) {
    // SAFETY: a reply starts with its JSON's length; the box is 4 + that.
    unsafe {
        let len = u32::from_le_bytes(std::ptr::read(ptr as *const [u8; 4])) as usize;
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
            ptr,
            4 + len,
        )));
    }
}
