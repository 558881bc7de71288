# bash completion for notes: commands, note ids, change ids, options.
# Install: source this file, or copy it to
# /usr/share/bash-completion/completions/notes
_notes()
{
    local cur prev cmd
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    cmd=${COMP_WORDS[1]}
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "$(notes help --commands 2>/dev/null)" -- "$cur"))
        return
    fi
    case "$prev" in
        --format) COMPREPLY=($(compgen -W "md json html bundle" -- "$cur")); return ;;
        -o|--template) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --at) COMPREPLY=($(compgen -W "$(notes log "${COMP_WORDS[2]}" 2>/dev/null | cut -c1-12)" -- "$cur")); return ;;
    esac
    if [[ $cur == -* ]]; then
        # The first line whose names (joined by |) hold the command gives
        # its options; a command not listed gets the common ones.
        local names rest words="--json --help -q --quiet --at --conflicts --format -o --owner --section --name --protect"
        while read -r names rest; do
            case "|$names|" in *"|$cmd|"*) words=$rest; break ;; esac
        done <<'OPTS'
serve --listen --peer --relay --no-relay --no-punch --sessions --no-discovery --discovery-port --announce-to --announce-interval --ui --no-ui --remote-interval --help
relay --listen --max-conns --max-per-addr --max-per-tag --rate --help
invite --address --relay --help
sync --space --relay --compact --compact-above --json --help
remote --space --json --help
publish --to --branch --path -q --quiet --help
open --no-browser --json --help
peers|trust --json --help
init --name --protect --device --help
export --format -o --attest --authors -q --quiet --help
resolve --keep --help
new --template --carry --carry-from --help
decisions --open --owner --json --help
import --again -q --quiet --help
search --limit --json --help
OPTS
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
        return
    fi
    case "$cmd" in
        import) COMPREPLY=($(compgen -f -- "$cur")) ;;
        verify) [ "$COMP_CWORD" -eq 2 ] &&
               COMPREPLY=($(compgen -f -- "$cur") $(compgen -W "$(notes list 2>/dev/null | cut -d' ' -f1)" -- "$cur")) ;;
        device) [ "$COMP_CWORD" -eq 2 ] && COMPREPLY=($(compgen -W "add link revoke list" -- "$cur")) ;;
        remote) [ "$COMP_CWORD" -eq 2 ] && COMPREPLY=($(compgen -W "add list remove" -- "$cur"))
                [ "$COMP_CWORD" -eq 3 ] && [ "$prev" = remove ] &&
                    COMPREPLY=($(compgen -W "$(notes remote list 2>/dev/null | cut -d' ' -f1)" -- "$cur")) ;;
        person) [ "$COMP_CWORD" -eq 2 ] && COMPREPLY=($(compgen -W "export import" -- "$cur"))
                [ "$COMP_CWORD" -eq 3 ] && COMPREPLY=($(compgen -f -- "$cur")) ;;
        help) COMPREPLY=($(compgen -W "$(notes help --commands 2>/dev/null)" -- "$cur")) ;;
        sync) [ "$COMP_CWORD" -eq 2 ] &&
               COMPREPLY=($(compgen -W "$(notes remote list 2>/dev/null | cut -d' ' -f1)" -- "$cur")) ;;
        init|whoami|list|peers|serve|trust|relay|invite|join) ;;
        *) [ "$COMP_CWORD" -eq 2 ] &&
               COMPREPLY=($(compgen -W "$(notes list 2>/dev/null | cut -d' ' -f1)" -- "$cur")) ;;
    esac
}
complete -F _notes notes
