#!/usr/bin/env bash
# daemons.sh NOTES_BIN [TEST...]: the browser tests (run.sh) against two real
# `notes serve` daemons with separate temporary replicas, syncing live on
# 127.0.0.1, one page on each: what ctest runs (label browser). Daemon A is
# restarted during the reload test (NOTES_BROWSER_RESTART=0: not). Exit codes as
# run.sh: 0 pass, 1 fail, 77 skip (no Chromium, node or npm packages).
set -euo pipefail
notes=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); shift
here=$(cd "$(dirname "$0")" && pwd)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "SKIP: no Chromium at $CHROMIUM (apt-get install -y chromium)"; exit 77; }
command -v node >/dev/null || { echo "SKIP: no node (apt-get install -y nodejs npm)"; exit 77; }
work=$(mktemp -d /tmp/notes-browser.XXXXXX)
declare -A pid=()
stop() { # stop NAME: SIGTERM, then a bounded wait for the daemon to exit
    local p=${pid[$1]:-}; [ -n "$p" ] || return 0
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    pid[$1]=
}
cleanup() { stop a; stop b; rm -rf "$work"; }
trap cleanup EXIT
freeport() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
export NOTES_PASSPHRASE=
A=$work/a B=$work/b
NOTES_HOME=$A "$notes" init --name Ana >/dev/null
NOTES_HOME=$B "$notes" init --name Ben >/dev/null
NOTES_HOME=$A "$notes" space create call >/dev/null
PA=$(freeport); UA=$(freeport); PB=$(freeport); UB=$(freeport)
code=$(NOTES_HOME=$A "$notes" invite call --address 127.0.0.1:$PA | grep -o 'notes1[a-z0-9]*' | head -1)
NOTES_HOME=$B "$notes" join "$code" >/dev/null 2>&1 || true   # A is not serving yet
id=$(NOTES_HOME=$A "$notes" new "Browser tests")
NOTES_HOME=$A "$notes" space add call "$id" >/dev/null
start() { # start NAME
    if [ "$1" = a ]; then
        NOTES_HOME=$A "$notes" serve --listen 127.0.0.1:$PA --no-discovery \
            --ui 127.0.0.1:$UA >>"$work/a.log" 2>&1 &
    else
        NOTES_HOME=$B "$notes" serve --listen 127.0.0.1:$PB --no-discovery \
            --peer 127.0.0.1:$PA --ui 127.0.0.1:$UB >>"$work/b.log" 2>&1 &
    fi
    pid[$1]=$!
    local home=$A; [ "$1" = b ] && home=$B
    for i in $(seq 100); do # bounded: the page is served
        NOTES_HOME=$home "$notes" open --no-browser >/dev/null 2>&1 && return 0
        kill -0 "${pid[$1]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "daemons.sh: daemon $1 did not start" >&2; cat "$work/$1.log" >&2; exit 1
}
start a; start b
for i in $(seq 100); do # bounded: B has the note (synced from A)
    NOTES_HOME=$B "$notes" list 2>/dev/null | grep -q "^${id:0:8}" && break
    [ "$i" -eq 100 ] && { echo "daemons.sh: B never got the note" >&2; cat "$work"/*.log >&2; exit 1; }
    sleep 0.1
done
export NOTES_URL_A=$(NOTES_HOME=$A "$notes" open "$id" --no-browser)
export NOTES_URL_B=$(NOTES_HOME=$B "$notes" open "$id" --no-browser)
body='let s="";process.stdin.setEncoding("utf8").on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s).text))'
export NOTES_TEXT_A="NOTES_HOME=$A '$notes' show \"\$NOTE\" --json | node -e '$body'"
export NOTES_TEXT_B="NOTES_HOME=$B '$notes' show \"\$NOTE\" --json | node -e '$body'"
# The restart step of the reload test: SIGTERM daemon A, start it again
# (a script of its own: the test runs it by name). On by default;
# NOTES_BROWSER_RESTART=0 leaves it out.
restart_script="$work/restart-a.sh"
[ "${NOTES_BROWSER_RESTART:-1}" = 1 ] && export NOTES_RESTART_A="$restart_script"
cat >"$restart_script" <<EOS
#!/usr/bin/env bash
# Written by daemons.sh: restart daemon A (same ports, same token).
set -eu
kill -TERM \$(cat "$work/a.pid") 2>/dev/null || true
for _ in \$(seq 100); do kill -0 \$(cat "$work/a.pid") 2>/dev/null || break; sleep 0.1; done
NOTES_HOME=$A '$notes' serve --listen 127.0.0.1:$PA --no-discovery --ui 127.0.0.1:$UA >>"$work/a.log" 2>&1 &
echo \$! > "$work/a.pid"
for _ in \$(seq 100); do NOTES_HOME=$A '$notes' open --no-browser >/dev/null 2>&1 && exit 0; sleep 0.1; done
echo "restart-a: daemon A did not come back" >&2; exit 1
EOS
chmod +x "$restart_script"
echo "${pid[a]}" > "$work/a.pid"
# The conflicts test edits the note on B while B is offline (stop, edit FROM TO
# with `notes edit`, start): a line rewritten on both sides at once.
offline_script="$work/offline-b.sh"
export NOTES_OFFLINE_B="$offline_script"
cat >"$work/editor.sh" <<'EOS'
#!/usr/bin/env bash
# `notes edit`'s editor for the conflicts test: replace $FROM by $TO.
python3 -c 'import os,sys;p=sys.argv[1];t=open(p).read();open(p,"w").write(t.replace(os.environ["FROM"],os.environ["TO"],1))' "$1"
EOS
chmod +x "$work/editor.sh"
cat >"$offline_script" <<EOS
#!/usr/bin/env bash
# Written by daemons.sh: offline-b.sh stop | edit FROM TO | start
set -eu
case "\$1" in
stop) kill -TERM \$(cat "$work/b.pid") 2>/dev/null || true
      for _ in \$(seq 100); do kill -0 \$(cat "$work/b.pid") 2>/dev/null || exit 0; sleep 0.1; done
      echo "offline-b: daemon B did not stop" >&2; exit 1 ;;
edit) FROM="\$2" TO="\$3" EDITOR="$work/editor.sh" NOTES_HOME=$B '$notes' edit $id ;;
start) NOTES_HOME=$B '$notes' serve --listen 127.0.0.1:$PB --no-discovery --peer 127.0.0.1:$PA --ui 127.0.0.1:$UB >>"$work/b.log" 2>&1 &
      echo \$! > "$work/b.pid"
      for _ in \$(seq 100); do NOTES_HOME=$B '$notes' open --no-browser >/dev/null 2>&1 && exit 0; sleep 0.1; done
      echo "offline-b: daemon B did not come back" >&2; exit 1 ;;
esac
EOS
chmod +x "$offline_script"
echo "${pid[b]}" > "$work/b.pid"
status=0
"$here/run.sh" "$@" || status=$?
# Daemons A and B may have been restarted by the tests: stop whichever run now.
pid[a]=$(cat "$work/a.pid")
pid[b]=$(cat "$work/b.pid")
[ $status -ne 0 ] && { echo "--- daemon logs"; tail -n "${NOTES_LOG_LINES:-20}" "$work/a.log" "$work/b.log"; }
exit $status
