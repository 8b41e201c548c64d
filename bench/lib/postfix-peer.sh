#!/bin/bash
# postfix-peer.sh -- a private, throw-away Postfix instance used as the
# reference relay in bench/run-bench.
#
#   postfix-peer.sh start DIR LISTEN_PORT SINK_ADDR
#   postfix-peer.sh stop DIR
#   postfix-peer.sh queue DIR       messages still in its queue (a number)
#   postfix-peer.sh flush DIR       ask it to retry deferred mail now
#   postfix-peer.sh cgroup DIR      its cgroup v2 directory (empty if none)
#
# "start" builds the instance in DIR (which must exist and be empty or hold
# an earlier instance of this script): configuration in DIR/etc, queue in
# DIR/queue, log in DIR/maillog.  It accepts mail on 127.0.0.1:LISTEN_PORT
# from 127.0.0.0/8 and relays every message to SINK_ADDR (host:port), whatever
# the recipient's domain.  The system's Postfix, /etc/postfix/main.cf and
# port 25 are not touched: /etc/postfix/master.cf is only read, as the
# template for the services.
#
# Needs root and Debian's (or Ubuntu's) "postfix" package.  Postfix runs with
# its defaults except for what relaying to a test sink requires; see
# write_config.  Its processes live in their own cgroup (cgroup v2, pure or
# the "unified" hierarchy of a hybrid set-up), so that a benchmark can read
# the CPU time of the whole instance -- master, smtpd, cleanup, qmgr, smtp --
# from one cpu.stat.  "stop" removes that cgroup.

set -u
export LC_ALL=C

die() { echo "postfix-peer.sh: $*" >&2; exit 1; }

POSTFIX=/usr/sbin/postfix
POSTCONF=/usr/sbin/postconf

cmd=${1:-}
DIR=${2:-}
[ -n "$cmd" ] && [ -n "$DIR" ] ||
    die "usage: postfix-peer.sh start DIR LISTEN_PORT SINK_ADDR | stop|queue|flush|cgroup DIR"
DIR=$(cd "$DIR" 2>/dev/null && pwd) || die "no directory $2"
ETC=$DIR/etc

# the cgroup's path is decided at start and remembered in DIR, so that
# every later command (and a different shell) finds the same one
cgroup() { cat "$DIR/cgroup" 2>/dev/null; }

new_cgroup() {
    local top
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then top=/sys/fs/cgroup
    elif [ -f /sys/fs/cgroup/unified/cgroup.controllers ]; then top=/sys/fs/cgroup/unified
    else return 1; fi
    # unique per instance: two benchmarks on one machine must not share it
    local cg=$top/sluice-bench-postfix.$$
    mkdir "$cg" 2>/dev/null || return 1
    echo "$cg" > "$DIR/cgroup"
}

# Postfix's own parameters.  Everything not set here keeps Postfix's default,
# because the point is to compare with Postfix as shipped.
write_config() {
    local port=$1 sink=$2
    mkdir -p "$ETC" "$DIR/queue" "$DIR/data"
    # data_directory holds caches written by the unprivileged daemons
    chown postfix "$DIR/data" || return 1
    : > "$ETC/main.cf"
    local p=(
        # silence the backwards-compatibility warnings of an empty main.cf
        "compatibility_level = 3.6"
        "queue_directory = $DIR/queue"
        "data_directory = $DIR/data"
        # log to a file of our own: no syslog needed, nothing in /var/log
        "maillog_file = $DIR/maillog"
        "maillog_file_prefixes = $DIR"
        "myhostname = postfix-peer.bench.test"
        # a pure relay: no domain is local, so no local delivery and no
        # alias or recipient tables to look up
        "mydestination ="
        "local_recipient_maps ="
        "alias_maps ="
        "alias_database ="
        # loopback only
        "inet_interfaces = 127.0.0.1"
        "inet_protocols = ipv4"
        "mynetworks = 127.0.0.0/8"
        # everything goes to the sink; the brackets turn off MX lookups
        "relayhost = [${sink%:*}]:${sink##*:}"
        # the sink offers no TLS and the load tool asks for none
        "smtp_tls_security_level = none"
        "smtpd_tls_security_level = none"
    )
    "$POSTCONF" -c "$ETC" -e "${p[@]}" || return 1

    # Services: Debian's master.cf, with two changes.  No chroot, since the
    # private queue is not a prepared chroot jail (master(5): the default
    # since Postfix 3.0; Debian turns chroot on).  And the public "smtp inet" service listens on
    # 127.0.0.1:PORT instead of port 25.
    cp /etc/postfix/master.cf "$ETC/master.cf" || return 1
    local svc type rest
    while read -r svc type rest; do
        "$POSTCONF" -c "$ETC" -F -e "$svc/$type/chroot = n" || return 1
    done < <("$POSTCONF" -c "$ETC" -M)
    "$POSTCONF" -c "$ETC" -M -X smtp/inet || return 1
    "$POSTCONF" -c "$ETC" -M -e "127.0.0.1:$port/inet = 127.0.0.1:$port inet n - n - - smtpd" ||
        return 1
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
    local port=${1:-} sink=${2:-}
    [ -n "$port" ] && [ -n "$sink" ] || die "start needs LISTEN_PORT and SINK_ADDR"
    [ "$(id -u)" -eq 0 ] || die "run as root"
    [ -x "$POSTFIX" ] || die "postfix is not installed (Debian package postfix)"
    listening "$port" && die "something already listens on 127.0.0.1:$port"
    write_config "$port" "$sink" || die "could not write the configuration in $ETC"
    "$POSTFIX" -c "$ETC" check || die "postfix check refused $ETC"

    rm -f "$DIR/cgroup"
    new_cgroup || echo "postfix-peer.sh: note: no cgroup v2; Postfix's CPU time is not measured" >&2
    # The subshell joins the cgroup before it runs postfix, so that the
    # master daemon and every process it ever forks are accounted there.
    (
        cg=$(cgroup)
        [ -z "$cg" ] || echo $BASHPID > "$cg/cgroup.procs" ||
            echo "postfix-peer.sh: note: could not enter $cg" >&2
        exec "$POSTFIX" -c "$ETC" start
    ) >> "$DIR/start.log" 2>&1 || die "postfix start failed: $(tail -n 3 "$DIR/start.log")"
    local i
    for ((i = 0; i < 100; i++)); do
        listening "$port" && return 0
        sleep 0.1
    done
    die "Postfix does not listen on 127.0.0.1:$port after 10 s (see $DIR/maillog)"
}

stop() {
    local cg i pid
    cg=$(cgroup)
    [ -d "$ETC" ] && timeout 30 "$POSTFIX" -c "$ETC" stop > /dev/null 2>&1
    [ -n "$cg" ] && [ -d "$cg" ] || return 0
    # "postfix stop" returns once the master is told to stop; its children
    # finish on their own shortly after.  Wait for the cgroup to empty, then
    # kill what is left: the cgroup holds nothing but this instance.
    for ((i = 0; i < 100; i++)); do
        [ -s "$cg/cgroup.procs" ] || break
        sleep 0.1
    done
    for pid in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    for ((i = 0; i < 50; i++)); do
        rmdir "$cg" 2>/dev/null && break
        sleep 0.1
    done
    [ -d "$cg" ] && echo "postfix-peer.sh: could not remove $cg" >&2
    rm -f "$DIR/cgroup"
}

case $cmd in
    start)  start "${3:-}" "${4:-}" ;;
    stop)   stop ;;
    # every queue file, whatever its state (maildrop .. deferred)
    queue)  find "$DIR/queue/maildrop" "$DIR/queue/incoming" "$DIR/queue/active" \
                 "$DIR/queue/deferred" "$DIR/queue/hold" -type f 2>/dev/null | wc -l ;;
    flush)  /usr/sbin/postqueue -c "$ETC" -f ;;
    cgroup) cgroup ;;
    *)      die "unknown command $cmd" ;;
esac
