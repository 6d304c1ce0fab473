#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft) on loopback, assembled from its Maven Central jars.
#   scripts/kafka.sh start   resolve jars (cached in .cache/kafka-lib), format, start, wait
#   scripts/kafka.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
LIB=.cache/kafka-lib
RUN=var/kafka
free_port() {  # the preferred port if it is free, else any free one
  python3 -c 'import socket,sys
for p in (int(sys.argv[1]), 0):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    print(s.getsockname()[1]); break' "$1"
}

jars() {
  if [ ! -f "$LIB/.complete" ]; then
    echo "resolving Apache Kafka 4.1.1 from Maven Central (once; cached in $LIB)"
    mvn -q -B -f scripts/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory="$PWD/$LIB"
    touch "$LIB/.complete"
  fi
}

start() {
  jars
  stop >/dev/null 2>&1 || true
  PORT=${KAFKA_PORT:-$(free_port 29092)}
  CPORT=${KAFKA_CONTROLLER_PORT:-$(free_port 29093)}
  rm -rf "$RUN" && mkdir -p "$RUN/data"
  cat > "$RUN/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$PWD/$RUN/data
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
  local id
  id=$(java -cp "$LIB/*" kafka.tools.StorageTool random-uuid)
  java -cp "$LIB/*" kafka.tools.StorageTool format --standalone -t "$id" \
    -c "$RUN/server.properties" >"$RUN/format.log" 2>&1
  nohup java -Xmx512m -cp "$LIB/*" -Dlog4j.configuration=file:/dev/null kafka.Kafka \
    "$RUN/server.properties" >"$RUN/kafka.log" 2>&1 &
  echo $! >"$RUN/pid"
  for _ in $(seq 1 120); do
    if (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then
      echo "127.0.0.1:$PORT" >"$RUN/bootstrap"
      echo "Apache Kafka up on 127.0.0.1:$PORT"
      return 0
    fi
    kill -0 "$(cat "$RUN/pid")" 2>/dev/null || { tail -30 "$RUN/kafka.log"; exit 1; }
    sleep 0.5
  done
  echo "Apache Kafka did not start in 60 s; see $RUN/kafka.log"; exit 1
}

stop() {
  if [ -f "$RUN/pid" ]; then
    local pid; pid=$(cat "$RUN/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$RUN/pid"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop"; exit 2 ;;
esac
