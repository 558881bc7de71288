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
    case "$cur" in
        -*) case "$cmd" in
                serve) COMPREPLY=($(compgen -W "--listen --peer --relay --no-relay --no-punch --sessions --no-discovery --discovery-port --announce-to --announce-interval --ui --no-ui --remote-interval --help" -- "$cur")) ;;
                relay) COMPREPLY=($(compgen -W "--listen --max-conns --max-per-addr --max-per-tag --rate --help" -- "$cur")) ;;
                invite) COMPREPLY=($(compgen -W "--address --relay --help" -- "$cur")) ;;
                sync) COMPREPLY=($(compgen -W "--space --relay --compact --compact-above --json --help" -- "$cur")) ;;
                remote) COMPREPLY=($(compgen -W "--space --json --help" -- "$cur")) ;;
                publish) COMPREPLY=($(compgen -W "--to --branch --path -q --quiet --help" -- "$cur")) ;;
                open) COMPREPLY=($(compgen -W "--no-browser --json --help" -- "$cur")) ;;
                peers|trust) COMPREPLY=($(compgen -W "--json --help" -- "$cur")) ;;
                init) COMPREPLY=($(compgen -W "--name --protect --device --help" -- "$cur")) ;;
                export) COMPREPLY=($(compgen -W "--format -o --attest --authors -q --quiet --help" -- "$cur")) ;;
                resolve) COMPREPLY=($(compgen -W "--keep --help" -- "$cur")) ;;
                new) COMPREPLY=($(compgen -W "--template --carry --carry-from --help" -- "$cur")) ;;
                decisions) COMPREPLY=($(compgen -W "--open --owner --json --help" -- "$cur")) ;;
                import) COMPREPLY=($(compgen -W "--again -q --quiet --help" -- "$cur")) ;;
                search) COMPREPLY=($(compgen -W "--limit --json --help" -- "$cur")) ;;
                *) COMPREPLY=($(compgen -W "--json --help -q --quiet --at --conflicts --format -o --owner --section --name --protect" -- "$cur")) ;;
            esac
            return ;;
    esac
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
