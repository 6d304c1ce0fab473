#!/usr/bin/env bash
# Apache Kafka brokers (KRaft, each node broker and controller) on loopback, assembled from their
# Maven Central jars (cached in .cache/kafka-lib). The data stays in DIR between starts.
#   scripts/kafka.sh start [--nodes N] [--dir DIR]  first time: ports, format; then (re)start
#                                                   every node not running, wait until each answers
#   scripts/kafka.sh stop  [--dir DIR]              stop every node (the data stays)
#   scripts/kafka.sh kill  NODE [--dir DIR]         kill -9 one node (1..N): for fault tests
#   scripts/kafka.sh wipe  [--dir DIR]              stop, then delete DIR
#   scripts/kafka.sh jars                           resolve the jars only
# DIR defaults to $KAFKA_DIR, else var/kafka (N=1) or var/kafka-cluster (N>1). DIR/bootstrap holds
# the bootstrap list (host:port,host:port,...) once every node answers. With 3 or more nodes,
# internal topics have replication factor 3 and min.insync.replicas 2. Heap per node: $KAFKA_HEAP
# (default 512m).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIB=$ROOT/.cache/kafka-lib
CMD=${1:-}
shift || true
NODES=1 DIR=${KAFKA_DIR:-} NODE=
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    [0-9]*) NODE=$1; shift ;;
    *) echo "kafka.sh: unknown argument $1"; exit 2 ;;
  esac
done
[ -n "$DIR" ] || { [ "$NODES" = 1 ] && DIR=$ROOT/var/kafka || DIR=$ROOT/var/kafka-cluster; }
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

free_port() {  # the preferred port if it is free, else a free one below the ephemeral range
  # (an ephemeral port, bind(0)'s, can be taken by any client's outgoing connection before
  # the node binds it: "Address already in use")
  python3 -c 'import random,socket,sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for p in [int(sys.argv[1])] + random.sample(range(20000, min(low, 32768)), 200):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    print(p); break' "$1"
}

jars() {  # again when the pom changed (.complete holds the checksum of the pom resolved)
  local sum; sum=$(sha256sum "$ROOT/scripts/kafka/pom.xml" | cut -d' ' -f1)
  if [ "$(cat "$LIB/.complete" 2>/dev/null)" != "$sum" ]; then
    echo "resolving Apache Kafka 4.1.1 from Maven Central (once; cached in $LIB)"
    rm -rf "$LIB"
    # Maven's output (colour codes even when quiet) is shown only when it fails
    local log; log=$(mktemp)
    mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$LIB" >"$log" 2>&1 || { cat "$log"; rm -f "$log"; exit 1; }
    rm -f "$log"
    echo "$sum" >"$LIB/.complete"
  fi
}

alive() {  # node $1 runs (a killed node nobody has reaped yet, a zombie, does not)
  local pid; pid=$(cat "$DIR/pid-$1" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null && [ "$(cut -d')' -f2 "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f2)" != Z ]
}
started_lines() { cat "$DIR/kafka-$1.log" 2>/dev/null | grep -c "Kafka Server started" || true; }
port_of() { sed -n 's/^advertised.listeners=PLAINTEXT:\/\/127.0.0.1://p' "$DIR/server-$1.properties"; }
nodes() { for f in "$DIR"/server-*.properties; do [ -e "$f" ] || continue; f=${f##*/server-}; echo "${f%.properties}"; done; }

configure() {  # once: ports, properties, storage format (a cluster id shared by the nodes)
  local n=$1 i voters="" ports=() cports=() rf isr id base
  base=$(( n > 1 ? 29190 : 29090 ))  # (a cluster prefers other ports than the single node)
  for i in $(seq 1 "$n"); do
    ports[i]=$(free_port $((base + 2 * i)))
    cports[i]=$(free_port $((base + 1 + 2 * i)))
    # (a port chosen here stays free until the node binds it: start holds a lock until then,
    # so another start on this machine chooses after; two nodes never get the same one
    # because the preferred ones differ and an ephemeral one is unique)
    voters="$voters${voters:+,}$i@127.0.0.1:${cports[i]}"
  done
  rf=$(( n >= 3 ? 3 : n )); isr=$(( n >= 3 ? 2 : 1 ))
  for i in $(seq 1 "$n"); do
    mkdir -p "$DIR/data-$i"
    cat > "$DIR/server-$i.properties" <<PROPS
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:${ports[i]},CONTROLLER://127.0.0.1:${cports[i]}
advertised.listeners=PLAINTEXT://127.0.0.1:${ports[i]}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data-$i
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
unclean.leader.election.enable=false
PROPS
  done
  # warnings and errors, and the lines that say a node started or stopped
  cat > "$DIR/log4j2.properties" <<'PROPS'
appender.out.type=Console
appender.out.name=out
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=WARN
rootLogger.appenderRef.out.ref=out
logger.raft.name=kafka.server.KafkaRaftServer
logger.raft.level=INFO
logger.broker.name=kafka.server.BrokerServer
logger.broker.level=INFO
PROPS
  id=$(java -cp "$LIB/*" kafka.tools.StorageTool random-uuid)
  for i in $(seq 1 "$n"); do
    java -cp "$LIB/*" "-Dlog4j2.configurationFile=$DIR/log4j2.properties" \
      kafka.tools.StorageTool format -t "$id" -c "$DIR/server-$i.properties" \
      >"$DIR/format-$i.log" 2>&1 || { cat "$DIR/format-$i.log"; exit 1; }
  done
}

start() {
  jars
  # one start at a time on this machine, until its nodes have bound their ports: two suites
  # starting brokers at once both found the preferred port free and one of them failed with
  # "Address already in use" (the lock goes with this shell when it exits)
  exec 9>"${TMPDIR:-/tmp}/offsite-kafka-start.lock"
  flock 9
  local try
  for try in 1 2 3; do
    local fresh=
    [ -n "$(nodes)" ] || { configure "$NODES"; fresh=1; }
    launch "$fresh" && break
    # a port of a new cluster was taken between choosing and binding it (by something that
    # does not take the lock): choose again
    echo "a port was taken before Apache Kafka bound it; choosing others (try $try of 3)"
    stop
    rm -rf "$DIR"/server-*.properties "$DIR"/data-* "$DIR"/kafka-*.log "$DIR"/format-*.log
    [ "$try" -lt 3 ] || exit 1
  done
  exec 9>&-
  echo "Apache Kafka up on $(cat "$DIR/bootstrap") (data in $DIR)"
}

launch() {  # start the nodes not running and wait for each; 1: a new cluster's port was taken
  local fresh=$1 i bootstrap="" before=()
  for i in $(nodes); do
    before[i]=-1  # a node already running is not waited for
    alive "$i" && continue
    before[i]=$(started_lines "$i")
    # setsid: the node outlives the shell (and the process) that started it
    setsid nohup java "-Xmx${KAFKA_HEAP:-512m}" -Xms64m -cp "$LIB/*" \
      "-Dlog4j2.configurationFile=$DIR/log4j2.properties" kafka.Kafka "$DIR/server-$i.properties" \
      </dev/null >>"$DIR/kafka-$i.log" 2>&1 9>&- &  # (9: the start lock, not the node's)
    echo $! >"$DIR/pid-$i"
  done
  for i in $(nodes); do
    local port ready=; port=$(port_of "$i")
    for _ in $(seq 1 240); do
      # the port is bound before the node serves requests (after a kill -9 it first recovers
      # its logs): it is up once it has logged that it started, since this start
      if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null \
        && { [ "${before[i]}" = -1 ] || [ "$(started_lines "$i")" -gt "${before[i]}" ]; }; then
        ready=1; break
      fi
      if ! alive "$i"; then
        if grep -q "Address already in use" "$DIR/kafka-$i.log"; then
          [ -n "$fresh" ] && return 1
          # the ports of a cluster that has data are its own: say which one is taken
          echo "Apache Kafka node $i cannot bind 127.0.0.1:$port or its controller port: another" \
            "process holds it (ss -ltnp shows which); stop that process, or wipe $DIR to start" \
            "afresh on other ports (its topics and offsets are lost then)"
          exit 1
        fi
        tail -30 "$DIR/kafka-$i.log"; exit 1
      fi
      sleep 0.5
    done
    [ -n "$ready" ] \
      || { echo "Apache Kafka node $i did not start in 120 s; see $DIR/kafka-$i.log"; exit 1; }
    bootstrap="$bootstrap${bootstrap:+,}127.0.0.1:$port"
  done
  echo "$bootstrap" >"$DIR/bootstrap"
}

stop() {
  local i pids=()
  for i in $(nodes); do
    alive "$i" && { pids+=("$(cat "$DIR/pid-$i")"); kill "$(cat "$DIR/pid-$i")" 2>/dev/null || true; }
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$DIR"/pid-*
}

case "$CMD" in
  start) start ;;
  stop) stop ;;
  kill)  # kill -9, and return once the node is gone (a start right after must not find it alive)
    [ -n "$NODE" ] && alive "$NODE" && kill -9 "$(cat "$DIR/pid-$NODE")"
    while [ -n "$NODE" ] && alive "$NODE"; do sleep 0.05; done
    rm -f "$DIR/pid-$NODE" ;;
  wipe) stop; rm -rf "$DIR" ;;
  jars) jars ;;
  *) echo "usage: $0 start|stop|kill NODE|wipe|jars [--nodes N] [--dir DIR]"; exit 2 ;;
esac
