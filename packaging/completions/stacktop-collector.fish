# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_stacktop_collector_global_optspecs
    string join \n listen= config= history= max-agents= insecure metrics-listen= data-dir= memory-only tls-cert= tls-key= client-ca= agent-tokens-file= viewer-tokens-file= operator-tokens-file= h/help V/version
end

function __fish_stacktop_collector_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_stacktop_collector_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_stacktop_collector_using_subcommand
    set -l cmd (__fish_stacktop_collector_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -l listen -d 'Address to listen on. Anything but loopback needs --tls-cert and --tls-key, or --insecure. [default: 127.0.0.1:7411]' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -l config -d 'TOML config file (fields: listen, history, max-agents, insecure, data-dir, group-wait, metrics-listen, tls-cert, tls-key, client-ca, agent-tokens-file, viewer-tokens-file, operator-tokens-file, [[rules]], [[notify]], [[remote-write]]; see the README). Command-line options override it' -r -F
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -l history -d 'How long full-resolution history is kept, e.g. 15m or 1h. [default: 15m]' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -l max-agents -d 'Most agent streams served at once; more are refused and retry. [default: 10000]' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -l metrics-listen -d 'Serve the fleet as a Prometheus target on http://ADDR/metrics, e.g. 127.0.0.1:7412. Anything but loopback needs --insecure. [default: not served]' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -l data-dir -d 'Where the ingest journal (what was acknowledged), the coarse history (10 s buckets for 6 h, 1 min for 7 days), alert states, acknowledgements, silences and maintenance windows are kept across restarts. [default: $STATE_DIRECTORY when run by systemd (/var/lib/stacktop), else $XDG_STATE_HOME/stacktop/collector, else ~/.local/state/stacktop/collector]' -r -F
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -l tls-cert -d 'PEM certificate chain to serve TLS with (with --tls-key); reloaded on SIGHUP or when the file changes. [default: plain text]' -r -F
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -l tls-key -d 'PEM private key of --tls-cert' -r -F
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -l client-ca -d 'PEM CA that agents\' client certificates must chain to; an agent then needs one, and may report only under the name in it. [default: no client certificates]' -r -F
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -l agent-tokens-file -d 'Tokens (one a line) that may stream as agents. [default: Ingest open]' -r -F
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -l viewer-tokens-file -d 'Tokens (one a line) that may read the fleet. [default: Fleet open]' -r -F
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -l operator-tokens-file -d 'Tokens (one a line) that may read the fleet and acknowledge, silence and set maintenance. [default: Operator open]' -r -F
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -l insecure -d 'Serve plain-text gRPC (and /metrics) on a non-loopback address. Anyone on the network can then read the fleet and report as any node'
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -l memory-only -d 'Keep nothing on disk: no ingest journal, alert state in memory. Batches are then acknowledged before they are durable and a crash loses them; for benchmarks (`bench --memory-only`) and throw-away collectors'
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -s h -l help -d 'Print help'
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -s V -l version -d 'Print version'
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -f -a "bench" -d 'Load a collector with simulated agents and Watch subscribers and report samples/s, its CPU and memory, and sample -> Watch latency'
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -f -a "certs" -d 'Make a CA (or reuse DIR/ca.pem and ca.key), a collector certificate and one client certificate per node, as PEM files in DIR'
complete -c stacktop-collector -n "__fish_stacktop_collector_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand bench" -l agents -d 'Simulated agents, each on its own connection. [default: 1000]' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand bench" -l agents-per-connection -d 'Agents sharing one connection. 1 (the default) is what real agents do; more leaves out the load generator\'s and the kernel\'s cost per connection, to see what the collector itself can take' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand bench" -l series -d 'Series per agent (the standard set of 25-33 is always sent). [default: 50]' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand bench" -l interval -d 'Every agent\'s sampling interval. [default: 1s]' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand bench" -l watchers -d 'Watch subscriber counts to measure in turn, e.g. 1,10,100. [default: 1]' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand bench" -l measuring-watchers -d 'Of each set of subscribers, how many decode updates and measure latency; the others only receive the bytes. [default: 2]' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand bench" -l warmup -d 'Warm-up before each measurement. [default: 10s]' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand bench" -l duration -d 'Length of each measurement. [default: 30s]' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand bench" -l collector -d 'Load a collector that is already running instead of starting one' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand bench" -l collector-pid -d 'With --collector: its process id, to report its CPU and memory' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand bench" -l collector-log -d 'Where the started collector\'s log goes. [default: nowhere]' -r -F
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand bench" -l in-process -d 'Run the collector inside the benchmark process (its CPU figures then include the load generator\'s)'
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand bench" -l tls -d 'Serve and dial TLS with a throw-away CA (not with --collector): run once with and once without to see what TLS costs'
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand bench" -l memory-only -d 'Start the collector with --memory-only (no ingest journal): run once with and once without to see what durability costs'
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand bench" -l json -d 'Print the report as JSON'
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand bench" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand certs" -l out -d 'Directory the files are written to (created if missing)' -r -F
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand certs" -l collector-name -d 'A name (DNS name or IP address) agents and dashboards dial the collector by; repeat for several. [default: localhost, 127.0.0.1]' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand certs" -l node -d 'A node to make a client certificate for (its name as the agent reports it); repeat for several' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand certs" -l validity -d 'How long the certificates are valid (the CA ten times as long). [default: 365days]' -r
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand certs" -s h -l help -d 'Print help'
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand help; and not __fish_seen_subcommand_from bench certs help" -f -a "bench" -d 'Load a collector with simulated agents and Watch subscribers and report samples/s, its CPU and memory, and sample -> Watch latency'
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand help; and not __fish_seen_subcommand_from bench certs help" -f -a "certs" -d 'Make a CA (or reuse DIR/ca.pem and ca.key), a collector certificate and one client certificate per node, as PEM files in DIR'
complete -c stacktop-collector -n "__fish_stacktop_collector_using_subcommand help; and not __fish_seen_subcommand_from bench certs help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
