//! Every benchmark runs once with tiny settings and reports sane JSON: proof
//! that they work, not a measurement (figures live in BENCHMARKS.md).

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_streamflow"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .expect("run streamflow bench");
    assert!(
        out.status.success(),
        "bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn value(v: &Value, key: &str) -> f64 {
    v[key]["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn crypto_pipeline_and_render() {
    let c = bench(&["crypto", "--iterations", "5"]);
    for k in [
        "seal_2k_us",
        "open_64k_us",
        "argon2id_join_ms",
        "handshake_pair_us",
    ] {
        assert!(value(&c, k) > 0.0, "{k}");
    }
    let p = bench(&["pipeline", "--iterations", "5"]);
    assert!(value(&p, "jpeg_bytes_on_wire") < value(&p, "jpeg_bytes"));
    assert!(value(&p, "wire_bytes") > value(&p, "jpeg_bytes_on_wire"));
    let r = bench(&["render", "--iterations", "40"]);
    for mode in ["truecolor", "256", "16", "mono"] {
        assert!(value(&r, &format!("{mode}_bytes_per_frame")) > 0.0);
    }
    // Fewer colours, fewer bytes.
    assert!(value(&r, "mono_bytes_per_frame") < value(&r, "truecolor_bytes_per_frame"));
}

#[test]
fn relay_and_e2e() {
    let r = bench(&[
        "relay",
        "--rooms",
        "2",
        "--peers",
        "3",
        "--fps",
        "10",
        "--frame-bytes",
        "512",
        "--seconds",
        "2",
    ]);
    assert!(value(&r, "delivery_ratio") > 0.5);
    assert!(value(&r, "latency_p50_ms") >= 0.0);
    assert!(value(&r, "relay_rss_max_mib") > 0.0);
    assert!(value(&r, "relay_kib_per_connection").is_finite());
    // The attacks, small: the budget holds and the canary call flows.
    let a = bench(&[
        "abuse",
        "--max-memory",
        "32MiB",
        "--seconds",
        "3",
        "--fragmenters",
        "20",
        "--non-readers",
        "2",
        "--idle",
        "50",
    ]);
    assert!(value(&a, "relay_rss_max_mib") > 0.0);
    assert!(value(&a, "canary_delivery_ratio") > 0.5);
    assert!(
        value(&a, "memory_shed") + value(&a, "upgrades_refused_503") > 0.0,
        "{a}"
    );
    let e = bench(&["e2e", "--peers", "2", "--seconds", "3"]);
    assert!(value(&e, "delivered_fps_per_stream") > 5.0);
    assert!(value(&e, "glass_to_glass_p50_ms") > 0.0);
}

#[test]
fn tty_and_ladder() {
    let t = bench(&[
        "tty",
        "--rate",
        "1mbit",
        "--size",
        "100x30",
        "--seconds",
        "3",
    ]);
    assert!(value(&t, "keys_measured") >= 3.0);
    assert!(value(&t, "key_p50_ms") > 0.0);
    assert!(value(&t, "fps_shown") > 0.0);
    assert!(value(&t, "link_used_pct") > 0.0);
    assert_eq!(value(&t, "clean_exit"), 1.0);
    let l = bench(&["ladder", "--seconds", "4", "--rates", "1mbit"]);
    for rung in ["truecolor", "256_h2", "256_h4"] {
        let unlimited = value(&l, &format!("{rung}_error_unlimited"));
        let thin = value(&l, &format!("{rung}_error_1000k"));
        assert!(unlimited > 0.0 && thin >= unlimited * 0.9, "{rung}");
    }
}

#[test]
fn audio() {
    let a = bench(&["audio", "--seconds", "2", "--peers", "2"]);
    assert!(value(&a, "loopback_clicks_heard_percent") >= 50.0);
    // Functional bounds only (figures are in BENCHMARKS.md): a click takes
    // a frame plus buffering, never seconds.
    let p50 = value(&a, "loopback_p50_ms");
    assert!(p50 > 20.0 && p50 < 200.0, "{p50}");
    assert!(value(&a, "jitter_clicks_heard_percent") > 0.0);
    assert!(value(&a, "wire_kbps_per_stream") > 24.0);
    assert!(value(&a, "cpu_percent_per_member") > 0.0);
}

#[test]
fn words() {
    let w = bench(&["words", "--members", "3", "--changes", "1", "--gap", "0.2"]);
    // Three members: each pair runs one handshake, from both sides.
    assert_eq!(value(&w, "n3_handshakes_per_join"), 6.0);
    assert!(value(&w, "n3_words_after_join_p50_ms") > 0.0);
    assert!(value(&w, "n3_words_after_leave_p50_ms") > 0.0);
}

#[test]
fn share() {
    let s = bench(&["share", "--scenario", "keys", "--keys", "5"]);
    assert!(value(&s, "key_p50_ms") > 0.0);
    assert!(value(&s, "idle_kbit_s") > 0.0);
    let s = bench(&[
        "share",
        "--scenario",
        "cat",
        "--megabytes",
        "1",
        "--seconds",
        "1",
    ]);
    assert!(value(&s, "cat_kbyte_s") > 0.0);
}

#[test]
fn picture() {
    let p = bench(&["picture", "--frames", "2"]);
    for mode in ["half", "quadrant", "sextant"] {
        let ssim = value(&p, &format!("80x24_{mode}_ssim"));
        assert!(ssim > 0.3 && ssim <= 1.0, "{mode}: {ssim}");
        assert!(value(&p, &format!("80x24_{mode}_bytes")) > 0.0);
    }
}

#[test]
fn browser() {
    let b = bench(&["browser", "--terminals", "1", "--seconds", "2"]);
    assert!(value(&b, "fps_drawn_by_browser") > 0.0);
    assert!(value(&b, "fps_from_browser") > 0.0);
    assert!(value(&b, "terminal_to_browser_p50_ms") > 0.0);
    assert!(value(&b, "browser_to_terminal_p50_ms") > 0.0);
    assert!(value(&b, "load_to_verified_ms") > 0.0);
    let gzip = value(&b, "wasm_gzip_kib");
    assert!(gzip > 50.0 && gzip < value(&b, "wasm_kib"), "{gzip}");
}
