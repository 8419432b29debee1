# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_streamflow_global_optspecs
    string join \n h/help V/version
end

function __fish_streamflow_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_streamflow_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_streamflow_using_subcommand
    set -l cmd (__fish_streamflow_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c streamflow -n "__fish_streamflow_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c streamflow -n "__fish_streamflow_needs_command" -s V -l version -d 'Print version'
complete -c streamflow -n "__fish_streamflow_needs_command" -f -a "demo" -d 'A call with three synthetic peers on a built-in relay: the first thing to try'
complete -c streamflow -n "__fish_streamflow_needs_command" -f -a "host" -d 'Start a relay here, print an invite for the others, and join the call'
complete -c streamflow -n "__fish_streamflow_needs_command" -f -a "join" -d 'Join a call with an invite (ROOM-SECRET)'
complete -c streamflow -n "__fish_streamflow_needs_command" -f -a "invite" -d 'Print a fresh invite (alone on stdout line 1)'
complete -c streamflow -n "__fish_streamflow_needs_command" -f -a "id" -d 'Show your identity key\'s fingerprint (words, hex and a picture), creating the key on first use'
complete -c streamflow -n "__fish_streamflow_needs_command" -f -a "web" -d 'Serve the browser client on this machine, from this binary.'
complete -c streamflow -n "__fish_streamflow_needs_command" -f -a "devices" -d 'List cameras, microphones and speakers by the names --source, --audio-source and --audio-sink take'
complete -c streamflow -n "__fish_streamflow_needs_command" -f -a "relay" -d 'Run the relay alone: forwards sealed blobs and presence per room, holds no key'
complete -c streamflow -n "__fish_streamflow_needs_command" -f -a "bench" -d 'Measure the relay, the media pipeline, the renderer, the terminal path and the crypto'
complete -c streamflow -n "__fish_streamflow_needs_command" -f -a "completions" -d 'Print shell completions: `streamflow completions bash > /etc/bash_completion.d/streamflow` (also zsh, fish, elvish, powershell)'
complete -c streamflow -n "__fish_streamflow_needs_command" -f -a "man" -d 'Write the man pages (streamflow.1 and one per subcommand) into DIR'
complete -c streamflow -n "__fish_streamflow_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c streamflow -n "__fish_streamflow_using_subcommand demo" -l source -d 'Your video: the test pattern by default; `camera` to see yourself' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand demo" -l name -d 'Your name in the demo call' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand demo" -l audio-source -d 'Your voice, as in `join`: `mic[:NAME]`, `tone[:HZ]`, `none` or a WAV file. Default: the microphone if there is one, else none' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand demo" -l audio-sink -d 'Where the peers\' voices (they take turns speaking in tones) play: `speaker[:NAME]`, `none`, or a WAV file. Default: the speaker if there is one, else none' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand demo" -l colour -d 'Colour mode: truecolor, 256, 16 or mono (default: from COLORTERM, TERM and NO_COLOR)' -r -f -a "truecolor\t''
256\t''
16\t''
mono\t''"
complete -c streamflow -n "__fish_streamflow_using_subcommand demo" -l cells -d 'Video cells: auto (real pixels where the terminal answers the kitty graphics query or says it speaks sixel, and the link carries them; else sextants where the terminal is known to draw them: kitty, WezTerm, foot, Ghostty, VTE, Windows Terminal, xterm; half blocks elsewhere, e.g. inside tmux or over SSH), half (1×2 pixels a cell), quadrant (2×2), sextant (2×3), kitty or sixel (pixels; cells where the terminal doesn\'t take them). `p` cycles them' -r -f -a "auto\t''
half\t''
quadrant\t''
sextant\t''
kitty\t'Pixels where the terminal answers the kitty graphics query (cells until it has, and if it doesn\'t)'
sixel\t'Pixels where the terminal says it speaks sixel (cells until it has, and if it doesn\'t)'"
complete -c streamflow -n "__fish_streamflow_using_subcommand demo" -l peer-share -d 'Ada shares a terminal running CMD (80x24), to see what a shared terminal looks like: e.g. `--peer-share top`' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l listen -d 'Where the built-in relay listens. Use 0.0.0.0:8787 to accept others from the network (loopback suffices when everyone is on this machine, e.g. over SSH). Forms: IP:PORT, [IPv6]:PORT, HOST:PORT, :PORT or PORT (127.0.0.1 with that port), or an IP or host alone (port 8787)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l room -d 'Name the room instead of a random nameplate' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l web -d 'Also serve the browser client, for guests without streamflow: they open the printed address (the invite rides after #, which browsers never send to a server). ADDR as for --listen; default: the relay\'s address, port 8080. Guests trust you with the page\'s code, as they trust you with the invite. Browsers give pages a camera only over https or on localhost: a guest elsewhere joins view-only unless the page reaches them through an SSH tunnel (ssh -L 8080:localhost:8080)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l name -d 'Your name, shown to the others (sent end-to-end encrypted). Default: $USER, else "guest"' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l source -d 'Video source: `camera[:N]`, `test` (moving test pattern), `none` (view only), or a file (MJPEG stream or directory of JPEGs, looped). Default: the camera if there is one, else view only (said once)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l fps -d 'Frames per second to send, 1 to 30 (the most; adaptation may send fewer)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l audio-source -d 'Your voice: `mic[:NAME]`, `tone[:HZ]` (a sine, 440 Hz by default), `none`, or a 16-bit PCM WAV file (looped). Default: the microphone if there is one, else none (said once). `streamflow devices` lists names' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l audio-sink -d 'What you hear: `speaker[:NAME]`, `none`, or a WAV file that records exactly the mix you would hear, in real time. Default: the speaker if there is one, else none' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l tile -d 'Tile size in pixels to ask senders for (headless; the TUI uses its own). Default 80x48' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l duration -d 'Leave after this long and exit 0 (or 3 if the passphrase was refused and nobody confirmed it by then; 4 if the call never connected): 2s, 500ms, 1m, or plain seconds (2, 2.5). Headless' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l send-chat -d 'Send this chat message once, at half of --duration. Headless' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l events -d 'Which events to print: a list (`joined,chat,peer_left`) or what to leave out (`-frame,-audio_stats`); `error` always. Headless' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l share -d 'Share a terminal running CMD (through /bin/sh -c) as soon as the call is up: the others see its screen, sealed like video, and can\'t type unless you let them. In the TUI, `t` shares `$SHELL` instead' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l share-size -d 'The shared terminal\'s size in cells, e.g. 120x40 (default: your terminal\'s size; 80x24 headless)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l record-share -d 'Record what you see of the first terminal shared in the call to FILE.cast (asciinema v2: `asciinema play FILE.cast`). Local only' -r -F
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l colour -d 'Colour mode: truecolor, 256, 16 or mono (default: from COLORTERM, TERM and NO_COLOR)' -r -f -a "truecolor\t''
256\t''
16\t''
mono\t''"
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l cells -d 'Video cells: auto (real pixels where the terminal answers the kitty graphics query or says it speaks sixel, and the link carries them; else sextants where the terminal is known to draw them: kitty, WezTerm, foot, Ghostty, VTE, Windows Terminal, xterm; half blocks elsewhere, e.g. inside tmux or over SSH), half (1×2 pixels a cell), quadrant (2×2), sextant (2×3), kitty or sixel (pixels; cells where the terminal doesn\'t take them). `p` cycles them' -r -f -a "auto\t''
half\t''
quadrant\t''
sextant\t''
kitty\t'Pixels where the terminal answers the kitty graphics query (cells until it has, and if it doesn\'t)'
sixel\t'Pixels where the terminal says it speaks sixel (cells until it has, and if it doesn\'t)'"
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l fixed-quality -d 'Don\'t adapt quality, frame rate and size to the network'
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l no-voice-processing -d 'Turn off noise suppression and echo cancellation on the microphone'
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l headless -d 'No TUI: print events as JSON lines on stdout (for scripts and tests)'
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l anonymous -d 'A throwaway identity for this call: nobody can link it to your other calls, and nothing is read from or written to your identity file or known_peers'
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -l only-known -d 'Give your video, voice and chat only to people you have verified (w w after comparing the safety words, in this call or an earlier one): others are shown but see nothing until you verify them'
complete -c streamflow -n "__fish_streamflow_using_subcommand host" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l relay -d 'Relay URL (ws:// or wss://); repeat to give fallbacks, tried in order. A path is sent with the upgrade; a user name or password is refused. Default: STREAMFLOW_RELAY (comma-separated), else `relay` in the config file, else ws://127.0.0.1:8787' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l ca-cert -d 'Trust this CA (PEM) for wss:// relays, besides the system\'s: for a relay whose certificate your own CA signed' -r -F
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l invite-file -d 'Read the invite from this file (its first line that isn\'t blank)' -r -F
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l room -d 'Join the room with this name; the invite argument is then only the secret' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l name -d 'Your name, shown to the others (sent end-to-end encrypted). Default: $USER, else "guest"' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l source -d 'Video source: `camera[:N]`, `test` (moving test pattern), `none` (view only), or a file (MJPEG stream or directory of JPEGs, looped). Default: the camera if there is one, else view only (said once)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l fps -d 'Frames per second to send, 1 to 30 (the most; adaptation may send fewer)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l audio-source -d 'Your voice: `mic[:NAME]`, `tone[:HZ]` (a sine, 440 Hz by default), `none`, or a 16-bit PCM WAV file (looped). Default: the microphone if there is one, else none (said once). `streamflow devices` lists names' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l audio-sink -d 'What you hear: `speaker[:NAME]`, `none`, or a WAV file that records exactly the mix you would hear, in real time. Default: the speaker if there is one, else none' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l tile -d 'Tile size in pixels to ask senders for (headless; the TUI uses its own). Default 80x48' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l duration -d 'Leave after this long and exit 0 (or 3 if the passphrase was refused and nobody confirmed it by then; 4 if the call never connected): 2s, 500ms, 1m, or plain seconds (2, 2.5). Headless' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l send-chat -d 'Send this chat message once, at half of --duration. Headless' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l events -d 'Which events to print: a list (`joined,chat,peer_left`) or what to leave out (`-frame,-audio_stats`); `error` always. Headless' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l share -d 'Share a terminal running CMD (through /bin/sh -c) as soon as the call is up: the others see its screen, sealed like video, and can\'t type unless you let them. In the TUI, `t` shares `$SHELL` instead' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l share-size -d 'The shared terminal\'s size in cells, e.g. 120x40 (default: your terminal\'s size; 80x24 headless)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l record-share -d 'Record what you see of the first terminal shared in the call to FILE.cast (asciinema v2: `asciinema play FILE.cast`). Local only' -r -F
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l colour -d 'Colour mode: truecolor, 256, 16 or mono (default: from COLORTERM, TERM and NO_COLOR)' -r -f -a "truecolor\t''
256\t''
16\t''
mono\t''"
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l cells -d 'Video cells: auto (real pixels where the terminal answers the kitty graphics query or says it speaks sixel, and the link carries them; else sextants where the terminal is known to draw them: kitty, WezTerm, foot, Ghostty, VTE, Windows Terminal, xterm; half blocks elsewhere, e.g. inside tmux or over SSH), half (1×2 pixels a cell), quadrant (2×2), sextant (2×3), kitty or sixel (pixels; cells where the terminal doesn\'t take them). `p` cycles them' -r -f -a "auto\t''
half\t''
quadrant\t''
sextant\t''
kitty\t'Pixels where the terminal answers the kitty graphics query (cells until it has, and if it doesn\'t)'
sixel\t'Pixels where the terminal says it speaks sixel (cells until it has, and if it doesn\'t)'"
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l liveness-timeout -d 'Treat the relay as gone after this long without a word from it (not even a pong), then reconnect. Catches half-open connections. 500ms, 20s, 2m or plain seconds' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l fixed-quality -d 'Don\'t adapt quality, frame rate and size to the network'
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l no-voice-processing -d 'Turn off noise suppression and echo cancellation on the microphone'
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l headless -d 'No TUI: print events as JSON lines on stdout (for scripts and tests)'
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l anonymous -d 'A throwaway identity for this call: nobody can link it to your other calls, and nothing is read from or written to your identity file or known_peers'
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -l only-known -d 'Give your video, voice and chat only to people you have verified (w w after comparing the safety words, in this call or an earlier one): others are shown but see nothing until you verify them'
complete -c streamflow -n "__fish_streamflow_using_subcommand join" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c streamflow -n "__fish_streamflow_using_subcommand invite" -l room -d 'Name the room instead of a random nameplate (a-z 0-9 _)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand invite" -l relay -d 'The relay the others will use, for the join command printed with the invite. Default: STREAMFLOW_RELAY, else the config file\'s, else ws://127.0.0.1:8787' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand invite" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand id" -l new -d 'Replace your identity key with a new one. Everyone who verified you will see a warning until they verify you again. Asks first'
complete -c streamflow -n "__fish_streamflow_using_subcommand id" -l yes -d 'Don\'t ask (with --new, for scripts)'
complete -c streamflow -n "__fish_streamflow_using_subcommand id" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c streamflow -n "__fish_streamflow_using_subcommand web" -l listen -d 'Where to serve the page. Keep it on loopback unless you mean to serve others (they then trust you with the code their browser runs)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand web" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c streamflow -n "__fish_streamflow_using_subcommand devices" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l listen -d 'Address to accept WebSocket clients on (ws://, or wss:// with --tls-cert/--tls-key): IP:PORT, [IPv6]:PORT, HOST:PORT (a name, resolved at start), :PORT or PORT (127.0.0.1 with that port), or an IP or host alone (port 8787). 0.0.0.0:8787 takes calls from the network; port 0 picks a free one' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l metrics-listen -d 'Serve GET /healthz and GET /metrics (Prometheus text) on this address instead of the listen port; same forms as --listen (e.g. :9100)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l tls-cert -d 'PEM certificate chain; with --tls-key the relay speaks wss:// only' -r -F
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l tls-key -d 'PEM private key for --tls-cert' -r -F
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l max-message-bytes -d 'Largest client message accepted (JSON text as sent). Every size flag takes bytes or KiB, MiB, GiB (K/M/G alike, any case), e.g. 1MiB' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l max-control-bytes -d 'Largest control message (handshakes, keys, chat; real ones are under 1 KiB)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l max-bytes-per-sec -d 'Bytes per second one connection may send, sustained; bursts up to twice --max-message-bytes. Past it the relay reads that connection more slowly (TCP pushes back on the sender) and drops nothing. Far above any call (a video stream is ~0.5 Mbit/s), it keeps bulk senders from crowding out everyone else\'s calls' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l max-memory -d 'Memory the relay may hold for clients in all (buffers, unfinished messages, queued output). Near it new connections are refused and the biggest offenders are disconnected, so calls keep flowing' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l message-deadline -d 'A message must arrive whole within this long of its first byte, or the connection is closed (a slow or never-finished message pins memory). Every duration flag takes 500ms, 20s, 2m or plain seconds (fractions allowed)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l max-peers-per-room -d 'Most peers in one room; one more gets `room_full`' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l max-rooms -d 'Most rooms at once; a join that would open one more gets `too_many_rooms`' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l rate-per-sec -d 'Sustained messages per second per connection (directed sends included)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l rate-burst -d 'Messages a connection may send at once above the sustained rate' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l max-connections-per-ip -d 'Most simultaneous connections from one IP address (default: no per-IP limit)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l max-connections -d 'Most simultaneous connections in all; further ones are closed at once (/healthz and /metrics still answer). Default: as many as the open-file limit allows (the relay raises it to its maximum at start, and keeps some for itself), at most 100000. Asking for more than the limit allows is warned about at start' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l ping-interval -d 'Send a WebSocket ping this often (e.g. 20s, 500ms; at least 10ms)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l idle-timeout -d 'Drop a peer that sent nothing (not even a pong) for this long, announced as `peer_left` with reason `timeout`' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l media-queue-frames -d 'Media frames queued per receiver before its oldest media from the same sender is dropped (latest frame wins). At least 32' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l media-queue-bytes -d 'Media bytes queued per receiver before dropping (at most 8MiB)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l control-queue-messages -d 'Control messages queued per receiver. One member may hold a quarter of them at another (more is refused, and the sender told); a receiver that can\'t take the relay\'s own (presence) is disconnected. Default and minimum: 4 x --max-peers-per-room' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l control-queue-bytes -d 'Control bytes queued per receiver. One member may hold 4 x --max-control-bytes of them at another (more is refused)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l socket-unsent-limit -d 'Unsent bytes the kernel may hold per client socket (TCP_NOTSENT_LOWAT). Kept small so a slow receiver\'s backlog sits in the relay\'s queue, where stale media is dropped, rather than in the kernel, where it only adds delay. 0: the kernel\'s default' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l media-max-age -d 'Media that waited this long in a receiver\'s queue is dropped instead of sent: late video is worse than none' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l redis -d 'Redis URL (redis://HOST:PORT): relays sharing one Redis serve the same rooms. Without it the relay is a single process' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l redis-cluster -d 'Redis Cluster seed nodes (redis://HOST:PORT[,redis://HOST:PORT...]): like --redis, but each room\'s channel and keys live on the shard that owns the room\'s slot (sharded pub/sub, Redis >= 7), so the fleet grows by adding shards, and a failing master costs only its rooms a pause until its replica takes over' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l redis-presence-ttl -d 'With --redis or --redis-cluster: a relay that stops refreshing its presence for this long is considered crashed, and its peers are announced as left' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -l max-strikes -d 'Protocol violations (bad messages, rate-limit episodes, ...) tolerated within 30 s before the connection is closed (and its address must wait a few seconds before connecting again)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand relay" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and not __fish_seen_subcommand_from relay abuse pipeline render crypto e2e thin tty ladder audio words picture browser share help" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and not __fish_seen_subcommand_from relay abuse pipeline render crypto e2e thin tty ladder audio words picture browser share help" -f -a "relay" -d 'Load a relay with R rooms × P peers sending F fps of B-byte frames'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and not __fish_seen_subcommand_from relay abuse pipeline render crypto e2e thin tty ladder audio words picture browser share help" -f -a "abuse" -d 'The memory attacks together against a relay with a budget, while a canary room keeps a call going: peak RSS against the budget, and the canary\'s delivery and latency'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and not __fish_seen_subcommand_from relay abuse pipeline render crypto e2e thin tty ladder audio words picture browser share help" -f -a "pipeline" -d 'Per-stage cost of the media pipeline, per frame, both directions'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and not __fish_seen_subcommand_from relay abuse pipeline render crypto e2e thin tty ladder audio words picture browser share help" -f -a "render" -d 'Half-block rendering: µs and bytes written per frame, per colour mode'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and not __fish_seen_subcommand_from relay abuse pipeline render crypto e2e thin tty ladder audio words picture browser share help" -f -a "crypto" -d 'Seal/open per frame size, Argon2id and handshake cost per join'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and not __fish_seen_subcommand_from relay abuse pipeline render crypto e2e thin tty ladder audio words picture browser share help" -f -a "e2e" -d 'N headless members through an embedded relay: glass-to-glass latency'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and not __fish_seen_subcommand_from relay abuse pipeline render crypto e2e thin tty ladder audio words picture browser share help" -f -a "thin" -d 'A ~200 kbit/s link on the sender\'s uplink, then on one receiver: delay and fps with adaptation on and off'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and not __fish_seen_subcommand_from relay abuse pipeline render crypto e2e thin tty ladder audio words picture browser share help" -f -a "tty" -d 'The TUI behind a thin terminal link (emulated, or real SSH): keystroke → screen latency, frames shown, age of the shown video'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and not __fish_seen_subcommand_from relay abuse pipeline render crypto e2e thin tty ladder audio words picture browser share help" -f -a "ladder" -d 'Picture rungs replayed over simulated terminal links: which shows the most at each rate (the quality ladder\'s order and thresholds)'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and not __fish_seen_subcommand_from relay abuse pipeline render crypto e2e thin tty ladder audio words picture browser share help" -f -a "audio" -d 'Voice: mouth-to-ear latency (loopback and a jittery link), wire bitrate per stream, CPU per member with video and voice'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and not __fish_seen_subcommand_from relay abuse pipeline render crypto e2e thin tty ladder audio words picture browser share help" -f -a "words" -d 'What the safety words\' rounds cost: time until everyone shows the same words after a join or leave, handshakes and messages per change'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and not __fish_seen_subcommand_from relay abuse pipeline render crypto e2e thin tty ladder audio words picture browser share help" -f -a "picture" -d 'Each cell mode (half blocks, quadrants, sextants) against the source picture at full resolution: SSIM, mean error, bytes per frame'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and not __fish_seen_subcommand_from relay abuse pipeline render crypto e2e thin tty ladder audio words picture browser share help" -f -a "browser" -d 'A browser member (headless Chromium, fake camera) and N terminal members: frame latency and fps both ways, the page\'s CPU, the WebAssembly\'s size, page load → verified'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and not __fish_seen_subcommand_from relay abuse pipeline render crypto e2e thin tty ladder audio words picture browser share help" -f -a "share" -d 'A shared terminal through a loopback relay: sharer key → viewer\'s screen, bytes per viewer for vi, top and a 10 MB cat, and video\'s frame rate while a share scrolls'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and not __fish_seen_subcommand_from relay abuse pipeline render crypto e2e thin tty ladder audio words picture browser share help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from relay" -l relay -d 'Relay(s) to load; repeat for several (clients are spread over them). Without it, `streamflow relay` is started as a child process' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from relay" -l relays -d 'Without --relay: start this many child relays (clients are spread over them, so rooms span relays). More than one needs --redis or --redis-cluster' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from relay" -l redis -d 'Redis URL for the child relays (e.g. redis://127.0.0.1:6379)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from relay" -l redis-cluster -d 'Redis Cluster seeds for the child relays instead of --redis (redis://HOST:PORT[,redis://HOST:PORT...]): rooms spread over its shards by slot' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from relay" -l rooms -d 'Rooms, each with --peers members all sending to each other' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from relay" -l peers -d 'Members per room (at least 2)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from relay" -l fps -d 'Frames per second each member sends' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from relay" -l frame-bytes -d 'Bytes per frame before base64 (the relay\'s cost is per byte and per message), 8 to 1000000; sizes like 4KiB too' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from relay" -l seconds -d 'Seconds measured, after everyone joined: 10, 10s or 1m' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from relay" -l relay-cpus -d 'Pin the child relay(s) to these CPUs (a `taskset -c` list, e.g. `0`), to measure throughput per core; run the generator itself under `taskset -c 1` so the two don\'t share a core' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from relay" -l relay-flag -d 'Extra flags for the child relay(s), e.g. `--relay-flag=--socket-unsent-limit=64KiB`' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from relay" -l json -d 'Print one JSON object instead of a table'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from relay" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from abuse" -l max-memory -d 'The relay\'s --max-memory (e.g. 128MiB, 1GiB)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from abuse" -l seconds -d 'Seconds of attack (the canary runs 2 s more before it): 30, 30s or 1m' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from abuse" -l fragmenters -d 'Connections holding unfinished fragmented messages' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from abuse" -l non-readers -d 'Members that never read, each fed by its own flooding member' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from abuse" -l idle -d 'Upgraded connections that never say a word' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from abuse" -l json -d 'Print one JSON object instead of a table'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from abuse" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from pipeline" -l iterations -d 'Repetitions per measurement (the median is reported)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from pipeline" -l json -d 'Print one JSON object instead of a table'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from pipeline" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from render" -l iterations -d 'Repetitions per measurement (the median is reported)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from render" -l json -d 'Print one JSON object instead of a table'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from render" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from crypto" -l iterations -d 'Repetitions per measurement (the median is reported)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from crypto" -l json -d 'Print one JSON object instead of a table'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from crypto" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from e2e" -l peers -d 'Members in the call (at least 2), each sending the test pattern' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from e2e" -l seconds -d 'Seconds measured, after everyone is verified: 10, 10s or 1m' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from e2e" -l tile -d 'Tile each receiver shows, in cells (video is twice as tall in pixels)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from e2e" -l json -d 'Print one JSON object instead of a table'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from e2e" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from thin" -l seconds -d 'Measured seconds per run (after a settling period of 5 s): 15, 15s or 1m' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from thin" -l rate -d 'Link rate in bytes per second (25000 ≈ 200 kbit/s; sizes like 64KiB too), at least 1000' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from thin" -l json -d 'Print one JSON object instead of a table'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from thin" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from tty" -l rate -d 'Link rate toward the terminal, e.g. 1mbit, 256kbit, 4mbit (0 = unshaped)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from tty" -l delay -d 'One-way delay, each direction (e.g. 20ms)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from tty" -l size -d 'Terminal size in cells' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from tty" -l seconds -d 'Seconds measured, after the call is up and settled: 20, 20s or 1m' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from tty" -l via -d 'Through an emulated pty link, or real OpenSSH (sshd on loopback, a shaping proxy, tmux as the terminal)' -r -f -a "pty\t''
ssh\t''"
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from tty" -l cells -d 'Video cells in the TUI (as its `--cells`): half, quadrant, sextant' -r -f -a "auto\t''
half\t''
quadrant\t''
sextant\t''
kitty\t'Pixels where the terminal answers the kitty graphics query (cells until it has, and if it doesn\'t)'
sixel\t'Pixels where the terminal says it speaks sixel (cells until it has, and if it doesn\'t)'"
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from tty" -l no-replies -d 'The terminal never answers queries (the open-loop fallback)'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from tty" -l open-loop -d 'Run the TUI without terminal feedback (STREAMFLOW_TTY_QUERIES=0): the open-loop renderer, for comparison'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from tty" -l share -d 'Ada shares a terminal printing the time every 200 ms: how old the shared screen is on the far screen (sharer\'s pty → relay → renderer → link → terminal)'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from tty" -l json -d 'Print one JSON object instead of a table'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from tty" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from ladder" -l seconds -d 'Simulated seconds per run (the first third is not scored): 10, 10s or 1m' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from ladder" -l rates -d 'Link rates to try, e.g. 4mbit,1mbit,256kbit' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from ladder" -l size -d 'The terminal\'s size in cells, COLSxROWS' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from ladder" -l json -d 'Print one JSON object instead of a table'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from ladder" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from audio" -l seconds -d 'Seconds measured per run (after the call is up): 20, 20s or 2m' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from audio" -l delay -d 'One-way delay of the jittery link (the second run)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from audio" -l jitter -d 'The jittery link varies the delay by ± this' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from audio" -l peers -d 'Members in the CPU run, each sending video and voice' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from audio" -l case -d 'With --thin: only this case (unshaped, down_400k_40ms, down_1m_20ms, down_160k_80ms, up_300k_40ms)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from audio" -l thin -d 'Instead: voice on thin links, judged by what a listener hears. A speaker sends speech and video, a second member video; the listener\'s downlink (400 kbit/s 40 ms, 1 Mbit/s 20 ms, 160 kbit/s 80 ms) or the speaker\'s uplink (300 kbit/s 40 ms) goes through a link emulator. Speech scored with STOI (and PESQ-WB if Python\'s `pesq` is installed)'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from audio" -l json -d 'Print one JSON object instead of a table'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from audio" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from words" -l members -d 'Room sizes to measure (members after the join), comma-separated' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from words" -l changes -d 'Joins (and leaves) measured per room size' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from words" -l gap -d 'Time between changes (a room at rest between them: the relay\'s rate limit refills): 2s, 500ms, plain seconds, or 0' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from words" -l json -d 'Print one JSON object instead of a table'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from words" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from picture" -l frames -d 'Frames of the moving pattern per size and mode' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from picture" -l json -d 'Print one JSON object instead of a table'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from picture" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from browser" -l terminals -d 'Terminal members besides the browser (3: a call of four)' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from browser" -l seconds -d 'Seconds measured, after everyone is verified: 10, 10s or 1m' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from browser" -l module-opus -d 'Take WebCodecs audio away from the page before it loads, so its voice is encoded by the module\'s own Opus (browsers without it)'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from browser" -l json -d 'Print one JSON object instead of a table'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from browser" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from share" -l scenario -d 'Which scenario (default: all of them)' -r -f -a "keys\t''
vi\t''
top\t''
cat\t''
video\t''"
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from share" -l seconds -d 'Seconds each of `vi`, `top` and `video` runs: 10, 10s or 1m' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from share" -l keys -d 'Keystrokes timed in `keys`' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from share" -l megabytes -d 'Megabytes `cat` prints in `cat`' -r
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from share" -l json -d 'Print one JSON object instead of a table'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from share" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "relay" -d 'Load a relay with R rooms × P peers sending F fps of B-byte frames'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "abuse" -d 'The memory attacks together against a relay with a budget, while a canary room keeps a call going: peak RSS against the budget, and the canary\'s delivery and latency'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "pipeline" -d 'Per-stage cost of the media pipeline, per frame, both directions'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "render" -d 'Half-block rendering: µs and bytes written per frame, per colour mode'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "crypto" -d 'Seal/open per frame size, Argon2id and handshake cost per join'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "e2e" -d 'N headless members through an embedded relay: glass-to-glass latency'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "thin" -d 'A ~200 kbit/s link on the sender\'s uplink, then on one receiver: delay and fps with adaptation on and off'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "tty" -d 'The TUI behind a thin terminal link (emulated, or real SSH): keystroke → screen latency, frames shown, age of the shown video'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "ladder" -d 'Picture rungs replayed over simulated terminal links: which shows the most at each rate (the quality ladder\'s order and thresholds)'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "audio" -d 'Voice: mouth-to-ear latency (loopback and a jittery link), wire bitrate per stream, CPU per member with video and voice'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "words" -d 'What the safety words\' rounds cost: time until everyone shows the same words after a join or leave, handshakes and messages per change'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "picture" -d 'Each cell mode (half blocks, quadrants, sextants) against the source picture at full resolution: SSIM, mean error, bytes per frame'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "browser" -d 'A browser member (headless Chromium, fake camera) and N terminal members: frame latency and fps both ways, the page\'s CPU, the WebAssembly\'s size, page load → verified'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "share" -d 'A shared terminal through a loopback relay: sharer key → viewer\'s screen, bytes per viewer for vi, top and a 10 MB cat, and video\'s frame rate while a share scrolls'
complete -c streamflow -n "__fish_streamflow_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c streamflow -n "__fish_streamflow_using_subcommand completions" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand man" -s h -l help -d 'Print help'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and not __fish_seen_subcommand_from demo host join invite id web devices relay bench completions man help" -f -a "demo" -d 'A call with three synthetic peers on a built-in relay: the first thing to try'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and not __fish_seen_subcommand_from demo host join invite id web devices relay bench completions man help" -f -a "host" -d 'Start a relay here, print an invite for the others, and join the call'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and not __fish_seen_subcommand_from demo host join invite id web devices relay bench completions man help" -f -a "join" -d 'Join a call with an invite (ROOM-SECRET)'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and not __fish_seen_subcommand_from demo host join invite id web devices relay bench completions man help" -f -a "invite" -d 'Print a fresh invite (alone on stdout line 1)'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and not __fish_seen_subcommand_from demo host join invite id web devices relay bench completions man help" -f -a "id" -d 'Show your identity key\'s fingerprint (words, hex and a picture), creating the key on first use'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and not __fish_seen_subcommand_from demo host join invite id web devices relay bench completions man help" -f -a "web" -d 'Serve the browser client on this machine, from this binary.'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and not __fish_seen_subcommand_from demo host join invite id web devices relay bench completions man help" -f -a "devices" -d 'List cameras, microphones and speakers by the names --source, --audio-source and --audio-sink take'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and not __fish_seen_subcommand_from demo host join invite id web devices relay bench completions man help" -f -a "relay" -d 'Run the relay alone: forwards sealed blobs and presence per room, holds no key'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and not __fish_seen_subcommand_from demo host join invite id web devices relay bench completions man help" -f -a "bench" -d 'Measure the relay, the media pipeline, the renderer, the terminal path and the crypto'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and not __fish_seen_subcommand_from demo host join invite id web devices relay bench completions man help" -f -a "completions" -d 'Print shell completions: `streamflow completions bash > /etc/bash_completion.d/streamflow` (also zsh, fish, elvish, powershell)'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and not __fish_seen_subcommand_from demo host join invite id web devices relay bench completions man help" -f -a "man" -d 'Write the man pages (streamflow.1 and one per subcommand) into DIR'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and not __fish_seen_subcommand_from demo host join invite id web devices relay bench completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "relay" -d 'Load a relay with R rooms × P peers sending F fps of B-byte frames'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "abuse" -d 'The memory attacks together against a relay with a budget, while a canary room keeps a call going: peak RSS against the budget, and the canary\'s delivery and latency'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "pipeline" -d 'Per-stage cost of the media pipeline, per frame, both directions'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "render" -d 'Half-block rendering: µs and bytes written per frame, per colour mode'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "crypto" -d 'Seal/open per frame size, Argon2id and handshake cost per join'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "e2e" -d 'N headless members through an embedded relay: glass-to-glass latency'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "thin" -d 'A ~200 kbit/s link on the sender\'s uplink, then on one receiver: delay and fps with adaptation on and off'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "tty" -d 'The TUI behind a thin terminal link (emulated, or real SSH): keystroke → screen latency, frames shown, age of the shown video'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "ladder" -d 'Picture rungs replayed over simulated terminal links: which shows the most at each rate (the quality ladder\'s order and thresholds)'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "audio" -d 'Voice: mouth-to-ear latency (loopback and a jittery link), wire bitrate per stream, CPU per member with video and voice'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "words" -d 'What the safety words\' rounds cost: time until everyone shows the same words after a join or leave, handshakes and messages per change'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "picture" -d 'Each cell mode (half blocks, quadrants, sextants) against the source picture at full resolution: SSIM, mean error, bytes per frame'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "browser" -d 'A browser member (headless Chromium, fake camera) and N terminal members: frame latency and fps both ways, the page\'s CPU, the WebAssembly\'s size, page load → verified'
complete -c streamflow -n "__fish_streamflow_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "share" -d 'A shared terminal through a loopback relay: sharer key → viewer\'s screen, bytes per viewer for vi, top and a 10 MB cat, and video\'s frame rate while a share scrolls'
