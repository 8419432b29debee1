// The mixer, on the audio thread: one short queue of decoded samples per
// member. A member starts playing once 60 ms are queued (the jitter
// buffer), is cut back to 60 ms when more than 200 ms pile up (a late
// burst must not become lasting delay), and plays silence when its queue
// runs dry, until 60 ms are there again. Once a second it reports what
// each member played, how often it ran dry, and its loudest sample.

const START = 48000 * 0.06;
const TOO_MUCH = 48000 * 0.2;

class Mixer extends AudioWorkletProcessor {
  constructor() {
    super();
    this.members = new Map(); // peer → { chunks, queued, offset, playing, played, dry }
    this.sinceReport = 0;
    this.port.onmessage = (m) => {
      const { peer, samples, left } = m.data;
      if (left) { this.members.delete(peer); return; }
      let s = this.members.get(peer);
      if (!s) {
        s = { chunks: [], queued: 0, offset: 0, playing: false, played: 0, dry: 0, peak: 0 };
        this.members.set(peer, s);
      }
      s.chunks.push(samples);
      s.queued += samples.length;
      while (s.queued - s.offset > TOO_MUCH && s.chunks.length > 1) {
        s.queued -= s.chunks.shift().length;
        s.offset = 0;
      }
    };
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    out.fill(0);
    for (const s of this.members.values()) {
      if (!s.playing) {
        if (s.queued - s.offset < START) continue;
        s.playing = true;
      }
      let i = 0;
      while (i < out.length && s.chunks.length) {
        const chunk = s.chunks[0];
        const n = Math.min(out.length - i, chunk.length - s.offset);
        for (let k = 0; k < n; k++) {
          const v = chunk[s.offset + k];
          out[i + k] += v;
          if (Math.abs(v) > s.peak) s.peak = Math.abs(v);
        }
        i += n;
        s.offset += n;
        if (s.offset >= chunk.length) {
          s.chunks.shift();
          s.queued -= chunk.length;
          s.offset = 0;
        }
      }
      s.played += i;
      if (i < out.length) {
        s.playing = false;
        s.dry += 1;
      }
    }
    for (let k = 0; k < out.length; k++) out[k] = Math.max(-1, Math.min(1, out[k]));
    this.sinceReport += out.length;
    if (this.sinceReport >= 48000) {
      this.sinceReport = 0;
      const report = Object.create(null);
      for (const [peer, s] of this.members) {
        report[peer] = { played_ms: Math.round(s.played / 48), dry: s.dry, peak: Math.round(s.peak * 1000) / 1000 };
        s.peak = 0;
      }
      this.port.postMessage(report);
    }
    return true;
  }
}

registerProcessor("streamflow-mix", Mixer);

// The microphone where the page has no MediaStreamTrackProcessor: the
// render quantum's samples (128 a time) gathered into 20 ms blocks, the
// size of one Opus packet, and handed to the page to encode.
class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(sampleRate / 50);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0][0];
    if (!input) return true; // the microphone isn't connected yet
    let i = 0;
    while (i < input.length) {
      const n = Math.min(input.length - i, this.block.length - this.filled);
      this.block.set(input.subarray(i, i + n), this.filled);
      this.filled += n;
      i += n;
      if (this.filled === this.block.length) {
        this.port.postMessage(this.block, [this.block.buffer]);
        this.block = new Float32Array(sampleRate / 50);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("streamflow-capture", Capture);
