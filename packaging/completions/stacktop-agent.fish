# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_stacktop_agent_global_optspecs
    string join \n collector= name= role= interval= config= token-file= label= check log-level= h/help V/version
end

function __fish_stacktop_agent_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_stacktop_agent_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_stacktop_agent_using_subcommand
    set -l cmd (__fish_stacktop_agent_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c stacktop-agent -n "__fish_stacktop_agent_needs_command" -l collector -d 'Collector to stream to, as https://HOST:PORT (or http:// on loopback); repeat for several. [default: http://127.0.0.1:7411]' -r
complete -c stacktop-agent -n "__fish_stacktop_agent_needs_command" -l name -d 'Node name, unique in the fleet. [default: the host name]' -r
complete -c stacktop-agent -n "__fish_stacktop_agent_needs_command" -l role -d 'Role of this server: lb, web, app or db; repeat for several. [default: none]' -r
complete -c stacktop-agent -n "__fish_stacktop_agent_needs_command" -l interval -d 'Sampling interval, e.g. 1s or 500ms (100ms to 1h). [default: 1s]' -r
complete -c stacktop-agent -n "__fish_stacktop_agent_needs_command" -l config -d 'TOML config file; command-line values override its values' -r -F
complete -c stacktop-agent -n "__fish_stacktop_agent_needs_command" -l token-file -d 'File holding the agent token sent to every collector (`token-file` in the config file). [default: none]' -r -F
complete -c stacktop-agent -n "__fish_stacktop_agent_needs_command" -l label -d 'Label sent with this node, as key=value; repeat for several' -r
complete -c stacktop-agent -n "__fish_stacktop_agent_needs_command" -l log-level -d 'Log filter for stderr, e.g. info or stacktop_agent=debug; RUST_LOG is used when this is not given. [default: info]' -r
complete -c stacktop-agent -n "__fish_stacktop_agent_needs_command" -l check -d 'Check the configuration, print it resolved (with every check the agent would run, its target, and which role defaults are not configured), and exit (0 if valid; warnings go to stderr)'
complete -c stacktop-agent -n "__fish_stacktop_agent_needs_command" -s h -l help -d 'Print help'
complete -c stacktop-agent -n "__fish_stacktop_agent_needs_command" -s V -l version -d 'Print version'
complete -c stacktop-agent -n "__fish_stacktop_agent_needs_command" -f -a "check-logs" -d 'Parse a whole access log once and print its per-second request counts and malformed lines: check that a format is understood before deploying it. Exits 1 when any line is malformed'
complete -c stacktop-agent -n "__fish_stacktop_agent_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c stacktop-agent -n "__fish_stacktop_agent_using_subcommand check-logs" -l format -d 'nginx-combined, nginx-timed, stacktop, haproxy-http, or an Nginx log_format string such as \'$remote_addr [$time_local] "$request" $status\'' -r
complete -c stacktop-agent -n "__fish_stacktop_agent_using_subcommand check-logs" -l json -d 'Print JSON: {"lines", "malformed", "seconds": [{"unix", "requests", "2xx", ...}]}'
complete -c stacktop-agent -n "__fish_stacktop_agent_using_subcommand check-logs" -s h -l help -d 'Print help'
complete -c stacktop-agent -n "__fish_stacktop_agent_using_subcommand help; and not __fish_seen_subcommand_from check-logs help" -f -a "check-logs" -d 'Parse a whole access log once and print its per-second request counts and malformed lines: check that a format is understood before deploying it. Exits 1 when any line is malformed'
complete -c stacktop-agent -n "__fish_stacktop_agent_using_subcommand help; and not __fish_seen_subcommand_from check-logs help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
