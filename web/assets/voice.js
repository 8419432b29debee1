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
 * What this browser can do, by feature, not by name: `hear` needs WebCodecs'
 * AudioDecoder and an AudioWorklet; `speak` needs its AudioEncoder too. The
 * microphone is read with MediaStreamTrackProcessor where there is one
 * (Chromium) and through a capture worklet elsewhere (Firefox, Safari).
 */
export function supported() {
  const worklet = typeof AudioWorkletNode !== "undefined";
  return {
    hear: worklet && typeof AudioDecoder !== "undefined",
    speak: worklet && typeof AudioEncoder !== "undefined",
    reader: typeof MediaStreamTrackProcessor !== "undefined" ? "track-processor" : "worklet",
  };
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
    if (this.capture) this.capture.source.disconnect();
    for (const peer of [...this.decoders.keys()]) this.left(peer);
    try { if (this.encoder) this.encoder.close(); } catch { /* closed already */ }
    if (this.context) this.context.close();
  }

  /** The microphone side: 20 ms Opus packets, sealed and sent. */
  async startMic(track) {
    this.track = track;
    const config = { ...OPUS, sampleRate: RATE };
    const { supported: ok } = await AudioEncoder.isConfigSupported(config);
    if (!ok) throw new Error("this browser's WebCodecs has no Opus encoder");
    let offsetUs = 0; // wall clock − the encoder's timeline
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
    if (supported().reader === "track-processor") {
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
      return;
    }
    // No track reader: the audio thread hands over 20 ms blocks. It needs
    // a running context (the join click is the gesture that starts it).
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
    capture.port.onmessage = (m) => {
      if (this.stopped) return;
      const samples = m.data;
      const timestamp = Math.round((frames * 1e6) / this.context.sampleRate);
      frames += samples.length;
      // The block ended about now: its first sample is one block older.
      offsetUs = this.nowUs() - timestamp - (samples.length * 1e6) / this.context.sampleRate;
      encode(samples, this.context.sampleRate, timestamp);
    };
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
    return { reader: this.reader || null, sent: this.sent, muted: this.muted, decoded, played: this.played, suspended: this.suspended, error: this.error || null };
  }
}
