# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_stacktop_global_optspecs
    string join \n collector= log-file= ca-file= token-file= tls-cert= tls-key= h/help V/version
end

function __fish_stacktop_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_stacktop_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_stacktop_using_subcommand
    set -l cmd (__fish_stacktop_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c stacktop -n "__fish_stacktop_needs_command" -l collector -d 'Collector to watch, e.g. http://10.0.0.5:7411; repeat it to watch several as one fleet (merged by node name: the newest report of a node wins, and a node only a disconnected collector reports is shown unknown) [default: an embedded collector and agent watching this machine]' -r
complete -c stacktop -n "__fish_stacktop_needs_command" -l log-file -d 'Where logs go (never the terminal being drawn on) [default: $XDG_STATE_HOME/stacktop.log, else /tmp/stacktop-$USER.log]' -r -F
complete -c stacktop -n "__fish_stacktop_needs_command" -l ca-file -d 'PEM CA to verify an https:// collector against [default: the web PKI roots]' -r -F
complete -c stacktop -n "__fish_stacktop_needs_command" -l token-file -d 'File holding the bearer token to send (a viewer token reads the fleet; ack, silence and maintenance need an operator token)' -r -F
complete -c stacktop -n "__fish_stacktop_needs_command" -l tls-cert -d 'PEM client certificate, for a collector that wants one from dashboards too (with --tls-key)' -r -F
complete -c stacktop -n "__fish_stacktop_needs_command" -l tls-key -d 'PEM private key of --tls-cert' -r -F
complete -c stacktop -n "__fish_stacktop_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c stacktop -n "__fish_stacktop_needs_command" -s V -l version -d 'Print version'
complete -c stacktop -n "__fish_stacktop_needs_command" -f -a "status" -d 'Print the fleet once and exit: 0 if all is well, 1 if a node is down or the site is crit or down (see --fail-on), 2 if the collector cannot be reached or answers with an error'
complete -c stacktop -n "__fish_stacktop_needs_command" -f -a "alerts" -d 'Print the alerts (firing, pending, recently resolved), silences and maintenance windows, and exit: 0 if nothing fires, 1 if an alert fires, 2 if the collector cannot be reached or answers with an error'
complete -c stacktop -n "__fish_stacktop_needs_command" -f -a "ack" -d 'Acknowledge an alert: no more repeat notifications for it'
complete -c stacktop -n "__fish_stacktop_needs_command" -f -a "silence" -d 'Silence the alerts matching every --match, for a while or until they resolve: they are not notified'
complete -c stacktop -n "__fish_stacktop_needs_command" -f -a "unsilence" -d 'End a silence now'
complete -c stacktop -n "__fish_stacktop_needs_command" -f -a "forget" -d 'Forget a node that no longer exists: it leaves the fleet, with its history and alerts, and a collector restart does not bring it back (it is new again if it ever reports)'
complete -c stacktop -n "__fish_stacktop_needs_command" -f -a "maintenance" -d 'Put a node or a tier in maintenance for a while (its alerts are held, not notified), or end a maintenance window'
complete -c stacktop -n "__fish_stacktop_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c stacktop -n "__fish_stacktop_using_subcommand status" -l collector -d 'Collector to ask' -r
complete -c stacktop -n "__fish_stacktop_using_subcommand status" -l fail-on -d 'When to exit 1: `down` (a node or the site is down), `crit` (also when the site is crit), `warn` (also when it is warn), `never`' -r -f -a "down\t'A node is down, or the site is down'
crit\t'A node is down, or the site is crit or down'
warn\t'A node is down, or the site is warn, crit or down'
never\t'Never (still 2 when the collector cannot be asked)'"
complete -c stacktop -n "__fish_stacktop_using_subcommand status" -l ca-file -d 'PEM CA to verify an https:// collector against [default: the web PKI roots]' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand status" -l token-file -d 'File holding the bearer token to send (a viewer token reads the fleet; ack, silence and maintenance need an operator token)' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand status" -l tls-cert -d 'PEM client certificate, for a collector that wants one from dashboards too (with --tls-key)' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand status" -l tls-key -d 'PEM private key of --tls-cert' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand status" -l json -d 'Print JSON for scripts instead of a table'
complete -c stacktop -n "__fish_stacktop_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c stacktop -n "__fish_stacktop_using_subcommand alerts" -l collector -d 'Collector to ask' -r
complete -c stacktop -n "__fish_stacktop_using_subcommand alerts" -l ca-file -d 'PEM CA to verify an https:// collector against [default: the web PKI roots]' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand alerts" -l token-file -d 'File holding the bearer token to send (a viewer token reads the fleet; ack, silence and maintenance need an operator token)' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand alerts" -l tls-cert -d 'PEM client certificate, for a collector that wants one from dashboards too (with --tls-key)' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand alerts" -l tls-key -d 'PEM private key of --tls-cert' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand alerts" -l json -d 'Print JSON for scripts instead of a table: {"alerts": [{"id", "rule", "node", "severity", "state", "since_unix_ms", "summary", "labels", "acknowledged", "silenced", "root"}]}'
complete -c stacktop -n "__fish_stacktop_using_subcommand alerts" -s h -l help -d 'Print help'
complete -c stacktop -n "__fish_stacktop_using_subcommand ack" -l comment -d 'Why, or what is being done about it' -r
complete -c stacktop -n "__fish_stacktop_using_subcommand ack" -l collector -d 'Collector to ask' -r
complete -c stacktop -n "__fish_stacktop_using_subcommand ack" -l ca-file -d 'PEM CA to verify an https:// collector against [default: the web PKI roots]' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand ack" -l token-file -d 'File holding the bearer token to send (a viewer token reads the fleet; ack, silence and maintenance need an operator token)' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand ack" -l tls-cert -d 'PEM client certificate, for a collector that wants one from dashboards too (with --tls-key)' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand ack" -l tls-key -d 'PEM private key of --tls-cert' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand ack" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c stacktop -n "__fish_stacktop_using_subcommand silence" -l match -d 'Silence alerts whose label NAME is VALUE (`node` and `rule` work too); repeat it to match on several, e.g. --match node=web2 --match rule=check-failed' -r
complete -c stacktop -n "__fish_stacktop_using_subcommand silence" -l for -d 'For how long, e.g. 30s, 10m, 1h, 2d' -r
complete -c stacktop -n "__fish_stacktop_using_subcommand silence" -l comment -d 'Why' -r
complete -c stacktop -n "__fish_stacktop_using_subcommand silence" -l collector -d 'Collector to ask' -r
complete -c stacktop -n "__fish_stacktop_using_subcommand silence" -l ca-file -d 'PEM CA to verify an https:// collector against [default: the web PKI roots]' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand silence" -l token-file -d 'File holding the bearer token to send (a viewer token reads the fleet; ack, silence and maintenance need an operator token)' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand silence" -l tls-cert -d 'PEM client certificate, for a collector that wants one from dashboards too (with --tls-key)' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand silence" -l tls-key -d 'PEM private key of --tls-cert' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand silence" -l until-resolved -d 'Until every alert it matches resolved (at least one must match now)'
complete -c stacktop -n "__fish_stacktop_using_subcommand silence" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c stacktop -n "__fish_stacktop_using_subcommand unsilence" -l collector -d 'Collector to ask' -r
complete -c stacktop -n "__fish_stacktop_using_subcommand unsilence" -l ca-file -d 'PEM CA to verify an https:// collector against [default: the web PKI roots]' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand unsilence" -l token-file -d 'File holding the bearer token to send (a viewer token reads the fleet; ack, silence and maintenance need an operator token)' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand unsilence" -l tls-cert -d 'PEM client certificate, for a collector that wants one from dashboards too (with --tls-key)' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand unsilence" -l tls-key -d 'PEM private key of --tls-cert' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand unsilence" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c stacktop -n "__fish_stacktop_using_subcommand forget" -l collector -d 'Collector to ask' -r
complete -c stacktop -n "__fish_stacktop_using_subcommand forget" -l ca-file -d 'PEM CA to verify an https:// collector against [default: the web PKI roots]' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand forget" -l token-file -d 'File holding the bearer token to send (a viewer token reads the fleet; ack, silence and maintenance need an operator token)' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand forget" -l tls-cert -d 'PEM client certificate, for a collector that wants one from dashboards too (with --tls-key)' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand forget" -l tls-key -d 'PEM private key of --tls-cert' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand forget" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c stacktop -n "__fish_stacktop_using_subcommand maintenance" -l tier -d 'A whole tier instead of one node: lb, web, app or db' -r
complete -c stacktop -n "__fish_stacktop_using_subcommand maintenance" -l for -d 'For how long, e.g. 30m, 2h, 1d (required with NODE or --tier)' -r
complete -c stacktop -n "__fish_stacktop_using_subcommand maintenance" -l end -d 'End maintenance window ID now instead (`stacktop maintenance` printed it; `stacktop alerts` lists them)' -r
complete -c stacktop -n "__fish_stacktop_using_subcommand maintenance" -l comment -d 'Why' -r
complete -c stacktop -n "__fish_stacktop_using_subcommand maintenance" -l collector -d 'Collector to ask' -r
complete -c stacktop -n "__fish_stacktop_using_subcommand maintenance" -l ca-file -d 'PEM CA to verify an https:// collector against [default: the web PKI roots]' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand maintenance" -l token-file -d 'File holding the bearer token to send (a viewer token reads the fleet; ack, silence and maintenance need an operator token)' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand maintenance" -l tls-cert -d 'PEM client certificate, for a collector that wants one from dashboards too (with --tls-key)' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand maintenance" -l tls-key -d 'PEM private key of --tls-cert' -r -F
complete -c stacktop -n "__fish_stacktop_using_subcommand maintenance" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c stacktop -n "__fish_stacktop_using_subcommand help; and not __fish_seen_subcommand_from status alerts ack silence unsilence forget maintenance help" -f -a "status" -d 'Print the fleet once and exit: 0 if all is well, 1 if a node is down or the site is crit or down (see --fail-on), 2 if the collector cannot be reached or answers with an error'
complete -c stacktop -n "__fish_stacktop_using_subcommand help; and not __fish_seen_subcommand_from status alerts ack silence unsilence forget maintenance help" -f -a "alerts" -d 'Print the alerts (firing, pending, recently resolved), silences and maintenance windows, and exit: 0 if nothing fires, 1 if an alert fires, 2 if the collector cannot be reached or answers with an error'
complete -c stacktop -n "__fish_stacktop_using_subcommand help; and not __fish_seen_subcommand_from status alerts ack silence unsilence forget maintenance help" -f -a "ack" -d 'Acknowledge an alert: no more repeat notifications for it'
complete -c stacktop -n "__fish_stacktop_using_subcommand help; and not __fish_seen_subcommand_from status alerts ack silence unsilence forget maintenance help" -f -a "silence" -d 'Silence the alerts matching every --match, for a while or until they resolve: they are not notified'
complete -c stacktop -n "__fish_stacktop_using_subcommand help; and not __fish_seen_subcommand_from status alerts ack silence unsilence forget maintenance help" -f -a "unsilence" -d 'End a silence now'
complete -c stacktop -n "__fish_stacktop_using_subcommand help; and not __fish_seen_subcommand_from status alerts ack silence unsilence forget maintenance help" -f -a "forget" -d 'Forget a node that no longer exists: it leaves the fleet, with its history and alerts, and a collector restart does not bring it back (it is new again if it ever reports)'
complete -c stacktop -n "__fish_stacktop_using_subcommand help; and not __fish_seen_subcommand_from status alerts ack silence unsilence forget maintenance help" -f -a "maintenance" -d 'Put a node or a tier in maintenance for a while (its alerts are held, not notified), or end a maintenance window'
complete -c stacktop -n "__fish_stacktop_using_subcommand help; and not __fish_seen_subcommand_from status alerts ack silence unsilence forget maintenance help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
