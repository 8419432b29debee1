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

/**
 * What this browser can do, by feature, not by name. An AudioWorklet is
 * all voice needs: Opus is WebCodecs' where it has it (Chromium, Firefox
 * ≥ 130, Safari ≥ 26) and the module's own elsewhere; the microphone is
 * read with MediaStreamTrackProcessor where there is one (Chromium) and
 * through a capture worklet otherwise.
 */
export function supported() {
  const worklet = typeof AudioWorkletNode !== "undefined";
  return {
    hear: worklet,
    speak: worklet,
    decoder: typeof AudioDecoder !== "undefined" ? "webcodecs" : "wasm",
    reader: typeof MediaStreamTrackProcessor !== "undefined" ? "track-processor" : "worklet",
  };
}

/** Whether WebCodecs can encode Opus at our settings. */
async function webcodecsEncodes(config) {
  if (typeof AudioEncoder === "undefined") return false;
  try {
    return (await AudioEncoder.isConfigSupported(config)).supported === true;
  } catch {
    return false;
  }
}

export class Voice {
  /**
   * @param io.send (seq, muted, opusBytes, captureUs) → seals and sends
   * @param io.sendPcm (seq, muted, samplesBytes, captureUs) → the module
   *   encodes (no WebCodecs Opus), seals and sends
   * @param io.decode (peer, opusBytes) → Float32Array of 20 ms, or null
   * @param io.forget (peer) → the module drops that member's decoder
   * @param io.nowUs () → wall-clock µs
   */
  constructor(io) {
    this.io = io;
    this.nowUs = io.nowUs;
    this.seq = 0;
    this.muted = false;
    this.sent = 0;
    this.decoders = new Map(); // peer → { decoder (WebCodecs only), decoded }
    this.played = Object.create(null);
    this.context = null;
    this.mixer = null;
    this.decoderKind = supported().decoder;
  }

  /** The AudioContext, made inside a gesture where one is at hand. */
  wake() {
    if (!this.context) this.context = new AudioContext({ sampleRate: RATE, latencyHint: "interactive" });
  }

  /** The speaker side: an AudioContext and the mixing worklet. */
  async startOutput() {
    this.wake();
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
    if (this.capture) this.capture.source.disconnect();
    for (const peer of [...this.decoders.keys()]) this.left(peer);
    try { if (this.encoder) this.encoder.close(); } catch { /* closed already */ }
    if (this.context) this.context.close();
  }

  /** The microphone side: 20 ms Opus packets, sealed and sent. */
  async startMic(track) {
    this.track = track;
    const config = { ...OPUS, sampleRate: RATE };
    this.encoderKind = (await webcodecsEncodes(config)) ? "webcodecs" : "wasm";
    if (this.stopped) {
      // Left while asking: the microphone's light goes out.
      track.stop();
      return;
    }
    const sent = () => {
      this.seq = (this.seq + 1) & 0xffff;
      this.sent += 1;
    };
    if (this.encoderKind === "wasm") {
      // The module encodes whole 20 ms blocks at 48 kHz: the capture
      // worklet's, in a 48 kHz context.
      if (!this.context || this.context.sampleRate !== RATE) throw new Error("no 48 kHz audio context");
      this.captureWithWorklet(track, (samples, _timestamp, captureUs) => {
        if (this.muted) samples.fill(0);
        this.io.sendPcm(this.seq, this.muted, new Uint8Array(samples.buffer), captureUs);
        sent();
      });
      return;
    }
    let offsetUs = 0; // wall clock − the encoder's timeline
    this.encoder = new AudioEncoder({
      output: (chunk) => {
        const bytes = new Uint8Array(chunk.byteLength);
        chunk.copyTo(bytes);
        this.io.send(this.seq, this.muted, bytes, Math.round(chunk.timestamp + offsetUs));
        sent();
      },
      error: (e) => { this.error = `voice stopped: ${e.message}`; },
    });
    // Mono, and silence (the same size on the wire) while muted.
    const encode = (samples, sampleRate, timestamp) => {
      if (this.muted) samples.fill(0);
      if (this.encoder.state === "unconfigured") this.encoder.configure({ ...config, sampleRate });
      const mono = new AudioData({
        format: "f32-planar", sampleRate, numberOfChannels: 1,
        numberOfFrames: samples.length, timestamp, data: samples,
      });
      this.encoder.encode(mono);
      mono.close();
    };
    if (supported().reader === "worklet") {
      this.captureWithWorklet(track, (samples, timestamp, captureUs) => {
        offsetUs = captureUs - timestamp;
        encode(samples, this.context.sampleRate, timestamp);
      });
      return;
    }
    this.reader = "track-processor";
    const reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
    for (;;) {
      const { value: data, done } = await reader.read();
      if (done || this.stopped) break;
      offsetUs = this.nowUs() - data.timestamp;
      const samples = new Float32Array(data.numberOfFrames);
      data.copyTo(samples, { planeIndex: 0, format: "f32-planar" });
      const { sampleRate, timestamp } = data;
      data.close();
      encode(samples, sampleRate, timestamp);
    }
  }

  /**
   * The microphone through the capture worklet: `block(samples,
   * timestampUs, captureUs)` every 20 ms. It needs a running context (the
   * join click is the gesture that starts it).
   */
  captureWithWorklet(track, block) {
    this.reader = "worklet";
    const source = this.context.createMediaStreamSource(new MediaStream([track]));
    const capture = new AudioWorkletNode(this.context, "streamflow-capture", {
      numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1], channelCount: 1, channelCountMode: "explicit",
    });
    // Rendered only when connected towards the speakers: through a gain of
    // zero, so nothing of the microphone is heard locally.
    const silent = new GainNode(this.context, { gain: 0 });
    source.connect(capture).connect(silent).connect(this.context.destination);
    this.capture = { source, capture, silent };
    let frames = 0;
    const rate = this.context.sampleRate;
    capture.port.onmessage = (m) => {
      if (this.stopped) return;
      const samples = m.data;
      const timestamp = Math.round((frames * 1e6) / rate);
      frames += samples.length;
      // The block ended about now: its first sample is one block older.
      block(samples, timestamp, Math.round(this.nowUs() - (samples.length * 1e6) / rate));
    };
  }

  /** A member's packet (opened by the core): decode, hand to the mixer. */
  receive(peer, seq, bytes) {
    let d = this.decoders.get(peer);
    if (!d) {
      d = { decoded: 0 };
      if (this.decoderKind === "webcodecs") {
        d.decoder = new AudioDecoder({
          output: (data) => {
            const samples = new Float32Array(data.numberOfFrames);
            data.copyTo(samples, { planeIndex: 0, format: "f32-planar" });
            data.close();
            this.play(peer, d, samples);
          },
          error: () => { this.decoders.delete(peer); },
        });
        d.decoder.configure({ codec: "opus", sampleRate: RATE, numberOfChannels: 1 });
      }
      this.decoders.set(peer, d);
    }
    if (d.decoder) {
      d.decoder.decode(new EncodedAudioChunk({ type: "key", timestamp: seq * 20000, data: bytes }));
    } else {
      const samples = this.io.decode(peer, bytes);
      if (samples) this.play(peer, d, samples);
    }
  }

  play(peer, d, samples) {
    d.decoded += 1;
    if (this.mixer) this.mixer.port.postMessage({ peer, samples }, [samples.buffer]);
  }

  left(peer) {
    const d = this.decoders.get(peer);
    if (d && d.decoder) { try { d.decoder.close(); } catch { /* closed already */ } }
    if (d && !d.decoder) this.io.forget(peer);
    this.decoders.delete(peer);
    if (this.mixer) this.mixer.port.postMessage({ peer, left: true });
  }

  stats() {
    const decoded = Object.create(null);
    for (const [peer, d] of this.decoders) decoded[peer] = d.decoded;
    return { reader: this.reader || null, encoder: this.encoderKind || null, decoder: this.decoderKind, sent: this.sent, muted: this.muted, decoded, played: this.played, suspended: this.suspended, error: this.error || null };
  }
}
