// StreamFlow in a browser: this page does I/O only (camera, canvases, the
// relay's WebSocket, the DOM). Every byte sealed, opened, proven or signed
// goes through streamflow.wasm, the terminal client's own Rust core.
// Plain JavaScript, no framework and no build step: what runs is what is
// served, a few hundred lines anyone can read.

import { Voice, supported as voiceSupported } from "./voice.js";

const $ = (id) => document.getElementById(id);
const enc = new TextEncoder();
const dec = new TextDecoder();

// Test pages read this (window.streamflow.state()); people see the DOM.
const stats = {
  build: "", status: "", error: "", kdf_ms: null, verified_ms: null,
  // Keyed by ids the relay chose: no prototype, so no id is special.
  you: null, safety_words: "", peers: Object.create(null), chat: [], sent_frames: 0,
  latencies_ms: [], frames_received: 0, camera: "starting",
};

// ---- the WebAssembly core ------------------------------------------------

let wasm = null;

async function loadCore() {
  const bytes = await (await fetch("streamflow.wasm")).arrayBuffer();
  // crypto.subtle exists only in secure contexts (https, localhost).
  if (crypto.subtle) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    stats.build = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
    $("build").textContent = "build " + stats.build.slice(0, 16);
  } else {
    $("build").textContent = "build: not shown outside https or localhost";
  }
  const env = {
    streamflow_now_ms: () => performance.now(),
    streamflow_random_fill: (ptr, len) =>
      crypto.getRandomValues(new Uint8Array(wasm.memory.buffer, ptr, len)),
  };
  const { instance } = await WebAssembly.instantiate(bytes, { env });
  wasm = instance.exports;
}

/**
 * One command to the core: JSON, and a binary part (a frame's JPEG). The
 * reply is JSON, and the pictures it names by offset (`jpeg_at`).
 */
function core(cmd, data) {
  const json = enc.encode(JSON.stringify(cmd));
  const total = json.length + (data ? data.length : 0);
  const ptr = wasm.sf_alloc(total);
  const input = new Uint8Array(wasm.memory.buffer, ptr, total);
  input.set(json);
  if (data) input.set(data, json.length);
  const reply = wasm.sf_call(ptr, total, json.length);
  const view = new DataView(wasm.memory.buffer);
  const jsonLen = view.getUint32(reply, true);
  const bytesLen = view.getUint32(reply + 4, true);
  const out = JSON.parse(dec.decode(new Uint8Array(wasm.memory.buffer, reply + 8, jsonLen)));
  out.bytes = new Uint8Array(wasm.memory.buffer, reply + 8 + jsonLen, bytesLen).slice();
  wasm.sf_free_reply(reply);
  return out;
}

const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

// ---- the call ------------------------------------------------------------

let params = null;
let socket = null;
let everConnected = false;
let retry = 0;
let leaving = false;
const views = new Map(); // peer -> [w, h] it draws us at
const TILE_W = 320, TILE_H = 240;
const MAX_RELAY_MESSAGE = 4 * 1024 * 1024;

let dead = false;

function run(cmd, data) {
  if (dead) return;
  let reply;
  try {
    reply = core(cmd, data);
  } catch (e) {
    // The module stopped (a bug, or input it refused by aborting): the
    // call can't go on, and nothing on screen may claim it does.
    dead = true;
    stats.safety_words = "";
    drawWords();
    status(`the call stopped: ${e.message}. Reload the page to join again.`, true);
    if (socket) socket.close();
    return;
  }
  for (const text of reply.send) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(text);
  }
  for (const ev of reply.events) onEvent(ev, reply.bytes);
  return reply;
}

function status(text, isError = false) {
  stats.status = text;
  if (isError) stats.error = text;
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

/** Lines kept in the chat pane (and in `stats.chat`): the oldest go. */
const MAX_LINES = 500;

function say(text, kind = "notice", who = null) {
  const li = document.createElement("li");
  li.className = kind;
  if (who !== null) {
    const name = document.createElement("span");
    name.className = "who";
    name.textContent = who;
    li.append(name);
  }
  li.append(document.createTextNode(text.length > 2000 ? text.slice(0, 2000) + "…" : text));
  $("chat").append(li);
  while ($("chat").childElementCount > MAX_LINES) $("chat").firstElementChild.remove();
  $("chat").scrollTop = $("chat").scrollHeight;
}

function peer(id) {
  if (!stats.peers[id]) {
    stats.peers[id] = { name: null, tag: "", verified: false, frames: 0, camera: "on", fps: 0, recent: [] };
  }
  return stats.peers[id];
}

/** A member's name, with its key's tag whenever the name isn't unique
 * here (ours counts too): a namesake can't pass for anyone. */
function label(p) {
  if (!p.name) return "joining…";
  const same = Object.values(stats.peers).filter((q) => q.name === p.name).length +
    (params && p.name === params.name ? 1 : 0);
  return same > 1 ? `${p.name}·${p.tag}` : p.name;
}

function onEvent(ev, bytes) {
  switch (ev.type) {
    case "opened":
      break;
    case "joined":
      stats.you = ev.you;
      status(ev.peers > 0 ? "verifying the passphrase…" : "waiting for others (the passphrase is checked when someone comes)");
      break;
    case "peer_joined":
      peer(ev.peer);
      drawRoster();
      break;
    case "peer_verified": {
      const p = peer(ev.peer);
      p.name = ev.name; p.tag = ev.tag; p.verified = true; p.identity = ev.identity;
      // Since the page began loading (navigation start).
      if (stats.verified_ms === null) stats.verified_ms = Math.round(performance.now());
      say(`${label(p)} joined (passphrase proven)`);
      status("in the call");
      run({ op: "view", w: TILE_W, h: TILE_H, now_us: nowUs() });
      // Members assume a camera until told otherwise.
      if (stats.camera === "off" || stats.camera === "absent") {
        run({ op: "camera", on: false, absent: stats.camera === "absent", now_us: nowUs() });
      }
      drawRoster();
      break;
    }
    case "peer_renamed":
      peer(ev.peer).name = ev.new;
      say(`${ev.old} is now ${ev.new}`);
      drawRoster();
      break;
    case "peer_left": {
      const p = stats.peers[ev.peer];
      if (p && p.name) say(`${label(p)} left`);
      delete stats.peers[ev.peer];
      views.delete(ev.peer);
      if (voice) voice.left(ev.peer);
      document.getElementById("tile-" + ev.peer)?.remove();
      drawRoster();
      break;
    }
    case "keys":
      stats.safety_words = ev.safety_words;
      drawWords();
      break;
    case "video":
      onVideo(ev, bytes.subarray(ev.jpeg_at, ev.jpeg_at + ev.jpeg_len));
      break;
    case "audio":
      if (voice) voice.receive(ev.from, ev.seq, bytes.subarray(ev.opus_at, ev.opus_at + ev.opus_len));
      break;
    case "chat": {
      stats.chat.push({ from: ev.from, name: ev.name, text: ev.text });
      if (stats.chat.length > MAX_LINES) stats.chat.shift();
      const p = stats.peers[ev.from];
      say(ev.text, "line", p ? label(p) : ev.name);
      break;
    }
    case "chat_undelivered":
      say(`not sent (${ev.reason}): ${ev.text}`, "error");
      break;
    case "peer_view":
      views.set(ev.peer, [ev.w, ev.h]);
      break;
    case "peer_camera":
      peer(ev.peer).camera = ev.camera;
      drawRoster();
      break;
    case "wrong_passphrase":
      status("wrong passphrase: the others here could not verify your invite — check every word and join again", true);
      break;
    case "passphrase_disagrees":
      status("the one member here has another passphrase: one of you has a different invite (waiting)", true);
      break;
    case "auth_mismatch":
      break;
    case "guessing":
      say(`someone keeps failing the passphrase (${ev.failed}); new handshakes now wait ${Math.round(ev.wait_ms / 1000)} s`, "error");
      break;
    case "unverified_churn":
      say(`${ev.count} members left before verifying in the last minute: the relay may be trying its luck at the safety words`, "error");
      break;
    case "relay_error":
      say(`relay: ${ev.code}: ${ev.message}`, "error");
      break;
    case "video_paused":
      say(ev.paused ? "your link can't carry video now: voice and chat only" : "video resumes");
      break;
    case "voice_error":
      // Counted; said once (a member's bad packets would flood the chat).
      stats.voice_errors = (stats.voice_errors || 0) + 1;
      if (stats.voice_errors === 1) say(ev.message, "error");
      break;
    case "error":
      status(ev.message, true);
      break;
  }
}

function drawWords() {
  const anyone = Object.values(stats.peers).length > 0;
  $("words").textContent = stats.safety_words ||
    (anyone ? "verifying the passphrase…" : "— (alone in the call)");
}

function drawRoster() {
  const ul = $("roster");
  ul.replaceChildren();
  const me = document.createElement("li");
  me.textContent = `${params.name} (you)` + (stats.camera === "on" ? "" : ` · camera ${stats.camera}`) +
    (voice && voice.muted ? " · muted" : "");
  ul.append(me);
  for (const [id, p] of Object.entries(stats.peers)) {
    const li = document.createElement("li");
    const camera = p.camera === "on" ? "" : ` · camera ${p.camera}`;
    li.textContent = `${label(p)}${p.verified ? "" : " (verifying)"}${camera} · ${p.fps} fps`;
    ul.append(li);
  }
  drawWords();
}

function tile(id) {
  let t = document.getElementById("tile-" + id);
  if (!t) {
    t = document.createElement("div");
    t.className = "tile";
    t.id = "tile-" + id;
    const canvas = document.createElement("canvas");
    canvas.width = TILE_W; canvas.height = TILE_H;
    const name = document.createElement("div");
    name.className = "name";
    t.append(canvas, name);
    $("grid").append(t);
  }
  const p = stats.peers[id];
  t.querySelector(".name").textContent = p ? label(p) : "";
  return t.querySelector("canvas");
}

async function onVideo(ev, jpeg) {
  const p = stats.peers[ev.from];
  // One decode at a time per member (a frame arriving meanwhile is
  // dropped, the next one shows), and none for a member who left.
  if (!p || p.decoding) return;
  p.decoding = true;
  try {
    // Contain: the whole picture, letterboxed, decoded straight to the
    // size drawn (the core checked the header's size first).
    const s = Math.min(TILE_W / ev.w, TILE_H / ev.h);
    const w = Math.max(1, Math.round(ev.w * s)), h = Math.max(1, Math.round(ev.h * s));
    const bitmap = await createImageBitmap(new Blob([jpeg], { type: "image/jpeg" }), {
      resizeWidth: w, resizeHeight: h, resizeQuality: "medium",
    });
    if (stats.peers[ev.from] !== p) { bitmap.close(); return; } // left meanwhile
    const ctx = tile(ev.from).getContext("2d");
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, TILE_W, TILE_H);
    ctx.drawImage(bitmap, (TILE_W - w) / 2, (TILE_H - h) / 2);
    bitmap.close();
    stats.frames_received += 1;
    p.frames += 1;
    p.recent.push(performance.now());
    // Capture (at the sender) to drawn (here): both clocks are this
    // machine's in tests and benchmarks.
    stats.latencies_ms.push((nowUs() - ev.timestamp_us) / 1000);
    if (stats.latencies_ms.length > 4000) stats.latencies_ms.splice(0, 2000);
  } catch {
    p.undecodable = (p.undecodable || 0) + 1;
  } finally {
    p.decoding = false;
  }
}

function everySecond() {
  const now = performance.now();
  for (const p of Object.values(stats.peers)) {
    p.recent = p.recent.filter((t) => now - t < 1000);
    p.fps = p.recent.length;
  }
  drawRoster();
}

// ---- voice ---------------------------------------------------------------

const can = voiceSupported();
const voice = can.hear
  ? new Voice({
    send: (seq, muted, bytes, at) => run({ op: "audio", seq, muted, now_us: at }, bytes),
    sendPcm: (seq, muted, bytes, at) => run({ op: "audio_pcm", seq, muted, now_us: at }, bytes),
    decode: (peer, bytes) => {
      const reply = run({ op: "decode_audio", peer }, bytes);
      return reply && reply.bytes.length ? new Float32Array(reply.bytes.buffer) : null;
    },
    forget: (peer) => run({ op: "forget_audio", peer }),
    nowUs,
  })
  : null;

async function startVoice() {
  if (!voice) {
    say("this browser has no AudioWorklet: no voice either way (video and chat work)", "error");
    return;
  }
  try {
    await voice.startOutput();
  } catch (e) {
    say(`no sound out (${e.message})`, "error");
  }
  if (!navigator.mediaDevices) return; // said with the camera
  let track;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    track = stream.getAudioTracks()[0];
    if (leaving) {
      for (const t of stream.getTracks()) t.stop();
      return;
    }
  } catch (e) {
    $("mic").disabled = true;
    say(`${e.name === "NotAllowedError" ? "microphone permission denied" : `no microphone (${e.name})`}: the others don't hear you`, "error");
    return;
  }
  voice.startMic(track).catch((e) => say(`voice stopped: ${e.message}`, "error"));
}

function toggleMute() {
  if (!voice) return;
  voice.muted = !voice.muted;
  $("mic").textContent = voice.muted ? "muted" : "mic on";
  drawRoster();
}

// ---- the camera ----------------------------------------------------------

const video = document.createElement("video");
video.muted = true; video.playsInline = true;
const grab = document.createElement("canvas");
let cameraOn = true;
let encoding = false;

async function startCamera() {
  if (!navigator.mediaDevices) {
    stats.camera = "absent";
    cameraOn = false;
    $("camera").disabled = true;
    say("this page isn't served over https or from localhost, so the browser gives it no camera: you joined view-only (chat works). Open it through an SSH tunnel to localhost to send video.", "error");
    drawRoster();
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    if (leaving) {
      // Granted after the person left: the light goes straight out.
      for (const t of stream.getTracks()) t.stop();
      return;
    }
    video.srcObject = stream;
    await video.play();
    stats.camera = "on";
  } catch (e) {
    stats.camera = "absent";
    cameraOn = false;
    $("camera").disabled = true;
    const why = e.name === "NotAllowedError" ? "camera permission denied" : `no camera (${e.name})`;
    say(`${why}: you joined view-only; the others don't see you, but chat works`, "error");
  }
  drawRoster();
}

/** The size receivers asked for: the largest of their views. */
function encodeSize() {
  let w = 0, h = 0;
  for (const [vw, vh] of views.values()) { w = Math.max(w, vw); h = Math.max(h, vh); }
  if (!w || !h) { w = 160; h = 120; }
  return [Math.min(w, 640), Math.min(h, 480)];
}

function captureFrame() {
  if (!cameraOn || encoding || !video.videoWidth || !socket || socket.readyState !== WebSocket.OPEN) return;
  if (!Object.values(stats.peers).some((p) => p.verified)) return;
  const [w, h] = encodeSize();
  if (grab.width !== w || grab.height !== h) { grab.width = w; grab.height = h; }
  // Cover: fill the asked size, cropping the camera's longer side.
  const s = Math.max(w / video.videoWidth, h / video.videoHeight);
  const sw = w / s, sh = h / s;
  grab.getContext("2d").drawImage(video, (video.videoWidth - sw) / 2, (video.videoHeight - sh) / 2, sw, sh, 0, 0, w, h);
  const at = nowUs();
  encoding = true;
  grab.toBlob(async (blob) => {
    try {
      if (!blob) return;
      run({ op: "video", now_us: at }, new Uint8Array(await blob.arrayBuffer()));
      stats.sent_frames += 1;
    } finally {
      encoding = false;
    }
  }, "image/jpeg", 0.6);
}

function toggleCamera() {
  if (stats.camera === "absent") return;
  cameraOn = !cameraOn;
  stats.camera = cameraOn ? "on" : "off";
  $("camera").textContent = cameraOn ? "camera on" : "camera off";
  run({ op: "camera", on: cameraOn, now_us: nowUs() });
  drawRoster();
}

// ---- the relay -----------------------------------------------------------

function connect() {
  let opened = false;
  socket = new WebSocket(params.relay);
  socket.onopen = () => {
    opened = true;
    everConnected = true;
    retry = 0;
    status("joining…");
    // A fresh room state on every connection, as the terminal client.
    run({ op: "join" });
  };
  socket.onmessage = (m) => {
    // The relay's limit is far below this; a larger message is hostile.
    if (typeof m.data === "string" && m.data.length <= MAX_RELAY_MESSAGE) {
      run({ op: "relay", text: m.data, now_us: nowUs() });
    }
  };
  socket.onclose = (e) => {
    core({ op: "disconnected" });
    if (leaving) return;
    for (const id of Object.keys(stats.peers)) {
      document.getElementById("tile-" + id)?.remove();
      if (voice) voice.left(id);
    }
    stats.peers = Object.create(null); stats.safety_words = ""; views.clear();
    drawRoster();
    if (e.code === 4000) {
      status(`the call was ended${e.reason ? ": " + e.reason : ""}`, true);
      return;
    }
    const wait = Math.min(30, 2 ** retry);
    retry += 1;
    status(opened || everConnected
      ? `relay connection lost; reconnecting in ${wait} s`
      : `relay unreachable at ${params.relay}: is it running, and is the address right? retrying in ${wait} s`, !everConnected);
    setTimeout(connect, wait * 1000);
  };
}

const timers = [];

function leave() {
  if (leaving) return;
  leaving = true;
  // Voice first: its decoders (in the module, without WebCodecs) go while
  // the call is still open.
  if (voice) voice.stop();
  if (socket) {
    run({ op: "leave" });
    socket.close(1000);
  }
  for (const t of timers) clearInterval(t);
  // Camera and microphone off, for real: their lights go out.
  if (video.srcObject) for (const track of video.srcObject.getTracks()) track.stop();
  status("you left the call");
}

// ---- start ---------------------------------------------------------------

/**
 * The call from the address's fragment, taken out of the address bar and
 * this tab's history entry as the page starts (before anything slow): an
 * invite is a secret. The browser's own history may already hold the
 * address it opened; only not opening invites in a browser that syncs
 * history avoids that.
 */
function readFragment() {
  const f = new URLSearchParams(location.hash.slice(1));
  const p = { invite: f.get("invite"), relay: f.get("relay"), name: f.get("name") };
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  return p.invite && p.relay ? p : null;
}
const fromTheAddress = readFragment();

/** The call typed into the form (no page load, so nothing in history). */
function askForTheCall() {
  $("join").hidden = false;
  status("paste an invite to join");
  return new Promise((resolve) => {
    $("join").onsubmit = (e) => {
      e.preventDefault();
      const p = { invite: $("join-invite").value.trim(), relay: $("join-relay").value.trim(), name: $("join-name").value.trim(), typed: true };
      if (!p.invite || !p.relay) return;
      $("join").hidden = true;
      // This submit is the gesture that lets sound play: the speakers'
      // context starts now, not after the key derivation.
      if (voice) voice.wake();
      resolve(p);
    };
  });
}

async function start() {
  try {
    await loadCore();
  } catch (e) {
    status(`this browser can't run the call's WebAssembly: ${e.message}`, true);
    return;
  }
  params = fromTheAddress || await askForTheCall();
  params.name = params.name || "guest";
  status("deriving the room key from the passphrase (Argon2id)…");
  await new Promise((r) => setTimeout(r, 0)); // let the status paint first
  const t0 = performance.now();
  const reply = core({ op: "open", invite: params.invite, name: params.name });
  stats.kdf_ms = Math.round(performance.now() - t0);
  const failed = reply.events.find((e) => e.type === "error");
  if (failed) {
    status(failed.message, true);
    return;
  }
  // A link can come from anywhere: nothing is captured or sent until the
  // person says this is the call they meant. (A call typed into the form
  // was meant already.)
  if (!params.typed) {
    const room = params.invite.split("-")[0];
    $("confirm-what").textContent = `Join the call in room ${room} at ${params.relay} as ${params.name}?`;
    $("confirm").hidden = false;
    status("ready: check the call and join");
    await new Promise((resolve) => { $("confirm-join").onclick = resolve; });
    $("confirm").hidden = true;
  }
  drawRoster();
  startCamera();
  startVoice();
  connect();
  timers.push(
    setInterval(() => run({ op: "tick", now_us: nowUs() }), 100),
    setInterval(captureFrame, 33),
    setInterval(everySecond, 1000),
  );
  $("camera").onclick = toggleCamera;
  $("mic").onclick = toggleMute;
  // Browsers play sound only after a gesture.
  for (const gesture of ["click", "keydown"]) document.addEventListener(gesture, () => voice && voice.resume());
  $("leave").onclick = leave;
  $("say").onsubmit = (e) => {
    e.preventDefault();
    const text = $("say-text").value.trim();
    if (!text) return;
    $("say-text").value = "";
    window.streamflow.chat(text);
  };
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT") return;
    if (e.key === "v") toggleCamera();
    if (e.key === "m") toggleMute();
  });
}

window.streamflow = {
  state: () => ({
    ...stats,
    peers: Object.fromEntries(Object.entries(stats.peers).map(([id, p]) => [id, { ...p, recent: undefined }])),
    latencies_ms: undefined,
    latency_p50_ms: median(stats.latencies_ms),
    voice: voice ? voice.stats() : "unsupported",
  }),
  /** The last `n` capture-to-drawn delays, in ms (benchmarks). */
  latencies: (n) => stats.latencies_ms.slice(-n),
  chat: (text) => {
    say(text, "line", `${params.name} (you)`);
    run({ op: "chat", text, now_us: nowUs() });
  },
  leave,
};

function median(xs) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

start();
