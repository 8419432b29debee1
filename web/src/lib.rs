//! StreamFlow in a browser. The page loads this module and talks to it in
//! JSON through three exports, with no generated glue:
//!
//! - `sf_alloc(len) -> ptr`: room for a command the page then writes;
//! - `sf_call(ptr, len, json_len) -> reply`: runs the command (and frees
//!   it): `json_len` bytes of JSON, then its binary part (a JPEG); the
//!   reply is `json_len: u32 LE | bytes_len: u32 LE | JSON | bytes`
//!   ([`call::Reply`]);
//! - `sf_free_reply(reply)`.
//!
//! It imports two functions, `env.streamflow_now_ms` (`performance.now()`)
//! and `env.streamflow_random_fill` (`crypto.getRandomValues`); see the
//! core's `time` module. Everything else (sockets, camera, canvases) is the
//! page's.

pub mod call;
pub mod opus;

use std::cell::RefCell;

use call::{Call, Command, Reply};

thread_local! {
    /// The page's one call (a page is one member).
    static CALL: RefCell<Option<Call>> = const { RefCell::new(None) };
}

/// Runs one command from the page: JSON, and its binary part.
pub fn handle(json: &[u8], data: &[u8]) -> Reply {
    let cmd: Command = match serde_json::from_slice(json) {
        Ok(c) => c,
        Err(e) => return error_reply(format!("not a command: {e}")),
    };
    CALL.with(|slot| {
        let mut slot = slot.borrow_mut();
        match (cmd, slot.as_mut()) {
            (Command::Open { invite, name }, _) => match Call::open(&invite, &name) {
                Ok(call) => {
                    *slot = Some(call);
                    Reply::default()
                }
                Err(reply) => reply,
            },
            (cmd, Some(call)) => {
                let leaving = matches!(cmd, Command::Leave);
                let reply = call.handle(cmd, data);
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

fn error_reply(message: String) -> Reply {
    let mut r = Reply::default();
    r.events
        .push(serde_json::json!({ "type": "error", "message": message }));
    r
}

/// Room for `len` bytes of command, for `sf_call` to take back.
#[no_mangle]
pub extern "C" fn sf_alloc(len: usize) -> *mut u8 {
    let mut buf = Vec::<u8>::with_capacity(len.max(1));
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr
}

/// Runs the command at `ptr` (from `sf_alloc(len)`, `len` bytes written:
/// `json_len` of JSON, then the binary part).
///
/// # Safety
/// `ptr` must come from `sf_alloc(len)` and not be used again.
#[no_mangle]
pub unsafe extern "C" fn sf_call(ptr: *mut u8, len: usize, json_len: usize) -> *mut u8 {
    // SAFETY: the caller hands back sf_alloc's buffer of capacity `len`
    // (or 1 when len is 0), its first `len` bytes written.
    let input = unsafe { Vec::from_raw_parts(ptr, len, len.max(1)) };
    let (json, data) = input.split_at(json_len.min(input.len()));
    let reply = handle(json, data);
    let json = reply.to_json().into_bytes();
    let mut out = Vec::with_capacity(8 + json.len() + reply.bytes.len());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&(reply.bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&reply.bytes);
    Box::into_raw(out.into_boxed_slice()) as *mut u8
}

/// Frees a reply from `sf_call`.
///
/// # Safety
/// `ptr` must be a reply from `sf_call`, freed once.
#[no_mangle]
pub unsafe extern "C" fn sf_free_reply(ptr: *mut u8) {
    // SAFETY: a reply starts with its two lengths; the box is 8 + both.
    unsafe {
        let json = u32::from_le_bytes(std::ptr::read(ptr as *const [u8; 4])) as usize;
        let bytes = u32::from_le_bytes(std::ptr::read(ptr.add(4) as *const [u8; 4])) as usize;
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
            ptr,
            8 + json + bytes,
        )));
    }
}
