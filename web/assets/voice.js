// Voice in the browser, at the terminal client's settings: Opus through
// WebCodecs (48 kHz mono, 20 ms, 24 kbit/s hard CBR, no DTX: every packet
// the same size whether one speaks or not), and an AudioWorklet that keeps
// a short buffer per member and mixes them. Sealing and opening are the
// core's, as for video.

const OPUS = {
  codec: "opus",
  numberOfChannels: 1,
  bitrate: 24000,
  bitrateMode: "constant",
  opus: { frameDuration: 20000, usedtx: false, useinbandfec: false, format: "opus" },
};
const RATE = 48000;

/** Whether this browser can do voice (WebCodecs Opus and track readers). */
export function supported() {
  return typeof AudioEncoder !== "undefined" && typeof AudioDecoder !== "undefined" &&
    typeof MediaStreamTrackProcessor !== "undefined" && typeof AudioWorkletNode !== "undefined";
}

export class Voice {
  /**
   * @param send (seq, muted, opusBytes, captureUs) → seals and sends
   * @param nowUs () → wall-clock µs
   */
  constructor(send, nowUs) {
    this.send = send;
    this.nowUs = nowUs;
    this.seq = 0;
    this.muted = false;
    this.sent = 0;
    this.decoders = new Map(); // peer → { decoder, decoded }
    this.played = Object.create(null);
    this.context = null;
    this.mixer = null;
  }

  /** The speaker side: an AudioContext and the mixing worklet. */
  async startOutput() {
    this.context = new AudioContext({ sampleRate: RATE, latencyHint: "interactive" });
    await this.context.audioWorklet.addModule("voice-worklet.js");
    this.mixer = new AudioWorkletNode(this.context, "streamflow-mix", { outputChannelCount: [1] });
    this.mixer.port.onmessage = (m) => { this.played = m.data; };
    this.mixer.connect(this.context.destination);
  }

  /** Browsers start audio only after a gesture; call on the first one. */
  resume() {
    if (this.context && this.context.state === "suspended") this.context.resume();
  }

  get suspended() {
    return !this.context || this.context.state !== "running";
  }

  /** Everything off: the microphone's track, the encoder, the speakers. */
  stop() {
    this.stopped = true;
    if (this.track) this.track.stop();
    for (const peer of [...this.decoders.keys()]) this.left(peer);
    try { if (this.encoder) this.encoder.close(); } catch { /* closed already */ }
    if (this.context) this.context.close();
  }

  /** The microphone side: the track's 10 ms chunks → 20 ms Opus packets. */
  async startMic(track) {
    this.track = track;
    const reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
    let offsetUs = 0; // wall clock − the track's timeline
    this.encoder = new AudioEncoder({
      output: (chunk) => {
        const bytes = new Uint8Array(chunk.byteLength);
        chunk.copyTo(bytes);
        this.send(this.seq, this.muted, bytes, Math.round(chunk.timestamp + offsetUs));
        this.seq = (this.seq + 1) & 0xffff;
        this.sent += 1;
      },
      error: (e) => { this.error = `voice stopped: ${e.message}`; },
    });
    let configured = false;
    for (;;) {
      const { value: data, done } = await reader.read();
      if (done || this.stopped) break;
      offsetUs = this.nowUs() - data.timestamp;
      if (!configured) {
        this.encoder.configure({ ...OPUS, sampleRate: data.sampleRate });
        configured = true;
      }
      // Mono, and silence (the same size on the wire) while muted.
      const samples = new Float32Array(data.numberOfFrames);
      if (!this.muted) data.copyTo(samples, { planeIndex: 0, format: "f32-planar" });
      const mono = new AudioData({
        format: "f32-planar", sampleRate: data.sampleRate, numberOfChannels: 1,
        numberOfFrames: data.numberOfFrames, timestamp: data.timestamp, data: samples,
      });
      data.close();
      this.encoder.encode(mono);
      mono.close();
    }
  }

  /** A member's packet (opened by the core): decode, hand to the mixer. */
  receive(peer, seq, bytes) {
    let d = this.decoders.get(peer);
    if (!d) {
      d = { decoded: 0 };
      d.decoder = new AudioDecoder({
        output: (data) => {
          const samples = new Float32Array(data.numberOfFrames);
          data.copyTo(samples, { planeIndex: 0, format: "f32-planar" });
          data.close();
          d.decoded += 1;
          if (this.mixer) this.mixer.port.postMessage({ peer, samples }, [samples.buffer]);
        },
        error: () => { this.decoders.delete(peer); },
      });
      d.decoder.configure({ codec: "opus", sampleRate: RATE, numberOfChannels: 1 });
      this.decoders.set(peer, d);
    }
    d.decoder.decode(new EncodedAudioChunk({ type: "key", timestamp: seq * 20000, data: bytes }));
  }

  left(peer) {
    const d = this.decoders.get(peer);
    if (d) { try { d.decoder.close(); } catch { /* closed already */ } }
    this.decoders.delete(peer);
    if (this.mixer) this.mixer.port.postMessage({ peer, left: true });
  }

  stats() {
    const decoded = Object.create(null);
    for (const [peer, d] of this.decoders) decoded[peer] = d.decoded;
    return { sent: this.sent, muted: this.muted, decoded, played: this.played, suspended: this.suspended, error: this.error || null };
  }
}
