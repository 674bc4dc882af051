#!/usr/bin/env bash
# Private 3-node MariaDB Galera cluster on 127.0.0.1 for tests.
#
#   galera.sh start DIR BASEPORT [--owner PID]  create + start 3 nodes, print 3 URLs
#   galera.sh urls DIR                          print the 3 URLs again
#   galera.sh kill DIR N                        SIGKILL node N and wait until it is gone
#   galera.sh restart DIR N                     recover position, rejoin node N, wait Synced + size 3
#   galera.sh wait-synced DIR N                 wait until node N is Synced and wsrep_ready=ON
#   galera.sh stop DIR                          stop all nodes + watchdog, remove DIR (idempotent)
#
# Ports: node i uses SQL port BASEPORT+i-1; group comm gport=BASEPORT+10+(i-1)*3,
# IST gport+1, SST (rsync) gport+2.  stdout carries only URLs; progress goes to stderr.
set -euo pipefail

PROVIDER=/usr/lib/galera/libgalera_smm.so
TIMEOUT=120
SELF=$(readlink -f "$0")

die() { echo "galera.sh: $*" >&2; exit 1; }
log() { echo "galera.sh: $*" >&2; }

nd()    { echo "$DIR/node$1"; }
port()  { cat "$DIR/baseport" 2>/dev/null | awk -v i="$1" '{print $1+i-1}'; }
pid_of(){ cat "$(nd "$1")/pid" 2>/dev/null || true; }
# A process counts as alive unless it is gone or a zombie (a SIGKILLed mariadbd may linger as
# a zombie until init reaps it, and an owner PID may be an unreaped child of the caller).
alive() { local s; [ -n "${1:-}" ] && s=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $s != Z* ]]; }
sql()   { mariadb --no-defaults -uroot -S "$(nd "$1")/mysql.sock" -N -B -e "$2"; }

write_cnf() { # node index
  local i=$1 b; b=$(cat "$DIR/baseport")
  local g=$((b + 10 + (i - 1) * 3)) d; d=$(nd "$i")
  local addrs="127.0.0.1:$((b+10)),127.0.0.1:$((b+13)),127.0.0.1:$((b+16))"
  cat >"$d/my.cnf" <<EOF
[mariadbd]
# we run as root; mariadbd refuses that unless told explicitly
user=root
datadir=$d/data
socket=$d/mysql.sock
pid-file=$d/mariadbd.pid
log-error=$d/error.log
port=$((b + i - 1))
bind-address=127.0.0.1
# grant matching by IP only (root@127.0.0.1 is created at bootstrap); no DNS lookups
skip-name-resolve
max_allowed_packet=64M
# Galera requirements: row events, interleaved autoinc locking, InnoDB only
binlog_format=ROW
innodb_autoinc_lock_mode=2
default_storage_engine=InnoDB
# small footprint: test data is tiny; durability comes from replication, not fsync
innodb_buffer_pool_size=64M
innodb_log_file_size=32M
innodb_flush_log_at_trx_commit=2
wsrep_on=ON
wsrep_provider=$PROVIDER
wsrep_cluster_name=galera-$b
wsrep_cluster_address=gcomm://$addrs
wsrep_node_name=node$i
wsrep_node_address=127.0.0.1
wsrep_node_incoming_address=127.0.0.1:$((b + i - 1))
# mariabackup is not installed; rsync SST needs only rsync (wrapper: see "rsync SST gotcha")
wsrep_sst_method=rsync_root
wsrep_sst_receive_address=127.0.0.1:$((g + 2))
# Explicit gmcast/IST addresses keep everything on 127.0.0.1 and on this cluster's ports.
# evs.*: evict a dead node after ~3 s instead of ~6 s; gcache 64M saves disk and still holds
# plenty of write sets for IST; pc.wait_prim_timeout: a joiner that finds no primary
# component gives up after 30 s instead of hanging.
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:$g;ist.recv_addr=127.0.0.1:$((g + 1));gcache.size=64M;evs.suspect_timeout=PT2S;evs.inactive_timeout=PT3S;evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S;pc.wait_prim_timeout=PT30S"
EOF
}

launch() { # node index, extra mariadbd args...
  local i=$1 d; d=$(nd "$i"); shift
  # setsid + redirected fds: the node must not keep the caller's pipes open or share its
  # process group (Ctrl-C / test harness signals); stdout/stderr go to a file.
  PATH="$DIR/bin:$PATH" setsid mariadbd --defaults-file="$d/my.cnf" "$@" </dev/null >>"$d/stdout.log" 2>&1 &
  echo $! >"$d/pid"
}

fail_node() { log "node $1: $2"; tail -n 40 "$(nd "$1")/error.log" >&2 2>/dev/null || true; exit 1; }

wait_synced() { # node index, [expected cluster size]
  local i=$1 want=${2:-} deadline=$((SECONDS + TIMEOUT)) st
  while :; do
    alive "$(pid_of "$i")" || fail_node "$i" "mariadbd exited while waiting for Synced"
    st=$(sql "$i" "SHOW STATUS WHERE Variable_name IN
         ('wsrep_local_state_comment','wsrep_ready','wsrep_cluster_size','wsrep_cluster_status')" \
         2>/dev/null | sort | awk '{printf "%s=%s ", $1, $2}') || true
    if [[ $st == *"wsrep_cluster_status=Primary"* && $st == *"wsrep_local_state_comment=Synced"* \
          && $st == *"wsrep_ready=ON"* ]] && { [ -z "$want" ] || [[ $st == *"wsrep_cluster_size=$want "* ]]; }; then
      return 0
    fi
    [ $SECONDS -lt $deadline ] || fail_node "$i" "not Synced${want:+ with cluster size $want} after ${TIMEOUT}s (${st:-no answer})"
    sleep 0.3
  done
}

urls() { local i; for i in 1 2 3; do echo "mysql://root@127.0.0.1:$(port "$i")/test"; done; }

stop_all() { # [keep]: SIGKILL at once and leave DIR (and its logs) in place
  [ -d "$DIR" ] || return 0
  [ -n "${1:-}" ] || [ -f "$DIR/baseport" ] || [ -z "$(ls -A "$DIR")" ] || die "$DIR does not look like a galera.sh dir; not removing"
  local w; w=$(cat "$DIR/watchdog.pid" 2>/dev/null || true)
  [ -n "$w" ] && [ "$w" != $$ ] && kill "$w" 2>/dev/null || true
  # every process whose command line mentions this DIR: mariadbd, and SST helpers
  # (wsrep_sst_rsync, rsync --daemon) that a node killed mid-SST may leave behind
  local pids="" p i
  for i in 1 2 3; do p=$(pid_of "$i"); alive "$p" && pids+=" $p"; done
  for p in $(grep -lsF -- "$DIR/node" /proc/[0-9]*/cmdline | cut -d/ -f3); do
    case $(cat "/proc/$p/comm" 2>/dev/null) in mariadbd|rsync|wsrep_sst_*) pids+=" $p" ;; esac
  done
  pids=$(echo $pids | tr ' ' '\n' | sort -u)
  local sig=TERM; [ -z "${1:-}" ] || sig=KILL
  [ -n "$pids" ] && kill -$sig $pids 2>/dev/null || true
  for _ in $(seq 1 80); do   # up to 20 s for a clean shutdown
    local any=""; for p in $pids; do alive "$p" && any=1; done
    [ -z "$any" ] && break; sleep 0.25
  done
  for p in $pids; do alive "$p" && kill -KILL "$p" 2>/dev/null || true; done
  for p in $pids; do while alive "$p"; do sleep 0.1; done; done
  [ -n "${1:-}" ] || rm -rf -- "$DIR"
}

cmd=${1:-}; [ $# -ge 2 ] || die "usage: galera.sh start|urls|kill|restart|wait-synced|stop DIR [...]"
DIR=$(realpath -m -- "$2"); [ "$DIR" != / ] || die "refusing DIR=/"
N=${3:-}
need_node() { [[ $N =~ ^[123]$ ]] || die "node must be 1, 2 or 3"; [ -f "$DIR/baseport" ] || die "no cluster in $DIR"; }

case $cmd in
start)
  [[ ${3:-} =~ ^[0-9]+$ ]] || die "usage: galera.sh start DIR BASEPORT [--owner PID]"
  B=$3; owner=""
  if [ "${4:-}" = --owner ]; then [[ ${5:-} =~ ^[0-9]+$ ]] || die "--owner needs a PID"; owner=$5; fi
  command -v rsync >/dev/null || die "rsync not installed (needed for SST)"
  alive "$(cat "$DIR/node1/pid" 2>/dev/null || true)" && die "$DIR/node1 already has a running node"
  for p in $B $((B+1)) $((B+2)) $(seq $((B+10)) $((B+18))); do
    ss -Htln "sport = :$p" | grep -q . && die "port $p on this host is already in use"
  done
  stop_all   # leftovers of a previous (dead) run
  # a failed start must not leak nodes; DIR stays for its logs until `stop`
  trap '[ $? -eq 0 ] || stop_all keep' EXIT
  mkdir -p "$DIR"; echo "$B" >"$DIR/baseport"
  for i in 1 2 3; do mkdir -p "$(nd "$i")/data"; write_cnf "$i"; done
  # rsync SST gotcha: an rsync daemon started by root drops to uid nobody and then cannot
  # write the joiner's root-owned datadir ("mkdir failed: Permission denied").  mariadbd puts
  # /usr/bin first in the SST script's PATH, so a PATH shim for rsync alone is not seen; use
  # a custom SST method (wsrep_sst_rsync_root -> stock wsrep_sst_rsync with the shim in PATH).
  mkdir -p "$DIR/bin"
  printf '#!/bin/sh\nPATH="${0%%/*}:$PATH" exec /usr/bin/wsrep_sst_rsync "$@"\n' >"$DIR/bin/wsrep_sst_rsync_root"
  cat >"$DIR/bin/rsync" <<'EOF2'
#!/bin/sh
case " $* " in *" --daemon "*) exec /usr/bin/rsync "$@" --dparam=uid=root --dparam=gid=root ;; esac
exec /usr/bin/rsync "$@"
EOF2
  chmod +x "$DIR/bin/rsync" "$DIR/bin/wsrep_sst_rsync_root"
  # only node 1 needs system tables; joiners get a full copy by SST
  mariadb-install-db --no-defaults --user=root --datadir="$DIR/node1/data" --skip-test-db \
    >"$DIR/node1/install.log" 2>&1 || { tail -n 30 "$DIR/node1/install.log" >&2; die "mariadb-install-db failed"; }
  if [ -n "$owner" ]; then
    # detached watchdog: its fds must not hold the caller's pipes open
    setsid nohup "$SELF" __watchdog "$DIR" "$owner" </dev/null >"$DIR/watchdog.log" 2>&1 &
    echo $! >"$DIR/watchdog.pid"
  fi
  launch 1 --wsrep-new-cluster; wait_synced 1 1
  # root over TCP with empty password (sqlx URL mysql://root@127.0.0.1); created before the
  # joiners arrive so SST copies it.  install-db only made root@localhost (unix_socket).
  sql 1 "CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY '';
         GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;
         CREATE DATABASE IF NOT EXISTS test;"
  launch 2; wait_synced 2 2     # join one at a time: two simultaneous SSTs from one donor fail
  launch 3; wait_synced 3 3
  for i in 1 2; do wait_synced "$i" 3; done
  mariadb --no-defaults -h127.0.0.1 -P"$(port 3)" -uroot --protocol=TCP -e 'SELECT 1' test >/dev/null \
    || die "root over TCP does not work"
  urls ;;
urls) [ -f "$DIR/baseport" ] || die "no cluster in $DIR"; urls ;;
kill)
  need_node; p=$(pid_of "$N")
  alive "$p" || die "node $N is not running"
  kill -KILL "$p"; while alive "$p"; do sleep 0.1; done ;;
restart)
  need_node; alive "$(pid_of "$N")" && die "node $N is still running"
  d=$(nd "$N"); rm -f "$d/recover.log"
  # after SIGKILL grastate.dat has seqno -1; recover the real position from InnoDB so the
  # node can catch up by IST (incremental) instead of a full SST copy
  mariadbd --defaults-file="$d/my.cnf" --wsrep-recover --log-error="$d/recover.log" \
    </dev/null >/dev/null 2>&1 || true
  pos=$(sed -n 's/.*WSREP: Recovered position: *\([0-9a-f-]*:-\?[0-9]*\).*/\1/p' "$d/recover.log" | tail -n1)
  if [ -n "$pos" ]; then log "node $N recovered position $pos"; launch "$N" --wsrep-start-position="$pos"
  else log "node $N: no recovered position, will use SST"; launch "$N"; fi
  wait_synced "$N" 3 ;;
wait-synced) need_node; wait_synced "$N" ;;
stop) stop_all ;;
__watchdog)
  while alive "$N"; do sleep 1; done
  echo "owner $N gone at $(date), stopping $DIR"; exec "$SELF" stop "$DIR" ;;
*) die "unknown command '$cmd'" ;;
esac
