#!/usr/bin/env bash
# Start a single-node Apache Kafka broker (KRaft, combined broker+controller)
# on loopback, for tests, examples and benchmarks. Idempotent.
#
#   KAFKA_PORT=9092 KAFKA_CONTROLLER_PORT=9093 bash scripts/kafka/start.sh
#
# Environment:
#   KAFKA_PORT              client (PLAINTEXT) port          default 9092
#   KAFKA_CONTROLLER_PORT   KRaft controller port            default KAFKA_PORT+1
#   WALLAROO_KAFKA_HOME     jar cache + runtime state        default <repo>/.kafka
#   KAFKA_HEAP_OPTS         JVM heap                         default -Xms256m -Xmx512m
#   KAFKA_JVM_OPTS          extra JVM options                default none
#   KAFKA_START_TIMEOUT     seconds to wait for readiness    default 60
#
# Optional secured listeners, besides the PLAINTEXT one (for the TLS / SASL tests):
#   KAFKA_SSL_PORT          SSL listener (TLS)
#   KAFKA_SSL_CLIENT_AUTH   the SSL listener's ssl.client.auth: none, requested or required
#                           (mutual TLS)                              default requested
#   KAFKA_SASL_PORT         SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, and
#                           OAUTHBEARER with unsecured tokens: alg "none", for tests only)
#   KAFKA_SASL_SSL_PORT     SASL_SSL listener (the same mechanisms over TLS)
#   KAFKA_TLS_DIR           certificates; made with the JDK's keytool when absent:
#                             ca.pem (the CA clients trust), ca.p12, broker.p12, truststore.p12,
#                             password (of the PKCS12 stores), and a client certificate the CA
#                             signed, client.p12 and (with openssl) client-cert.pem and
#                             client-key.pem                      default run/<port>/tls
#   KAFKA_SASL_USERS        "user:password[,user:password...]": PLAIN users, and SCRAM-SHA-256
#                           and -512 credentials written into the storage at format time
#                                                                  default wallaroo:wallaroo-secret
#
# Layout under $WALLAROO_KAFKA_HOME (one broker per client port can coexist):
#   libs/                   broker jars fetched by Maven (kept between runs)
#   kafka-<port>.pid        pid of the broker
#   run/<port>/server.properties
#   data/<port>/            Kafka log.dirs (removed by stop.sh)
#   logs/<port>/            server.log, kafka.out (removed by stop.sh)
#
# The last line printed on success is
#   kafka: READY 127.0.0.1:<port> (started|reused) pid=<pid>
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd)"
KAFKA_HOME="${WALLAROO_KAFKA_HOME:-$REPO/.kafka}"
PORT="${KAFKA_PORT:-9092}"
CPORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
HOST=127.0.0.1
TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"

LIBS="$KAFKA_HOME/libs"
PID_FILE="$KAFKA_HOME/kafka-$PORT.pid"
RUN_DIR="$KAFKA_HOME/run/$PORT"
DATA_DIR="$KAFKA_HOME/data/$PORT"
LOG_DIR="$KAFKA_HOME/logs/$PORT"
CONFIG="$RUN_DIR/server.properties"

log() { echo "kafka: $*"; }

JAVA_LOG_OPTS=(-Dlog4j.configuration="file:$SCRIPT_DIR/log4j.properties" -Dkafka.logs.dir="$LOG_DIR")
TOOLS_LOG_OPTS=(-Dlog4j.configuration="file:$SCRIPT_DIR/tools-log4j.properties")  # StorageTool
die() { echo "kafka: ERROR: $*" >&2; exit 1; }

[[ "$PORT" =~ ^[0-9]+$ && "$CPORT" =~ ^[0-9]+$ ]] || die "KAFKA_PORT/KAFKA_CONTROLLER_PORT must be numbers"
[[ "$PORT" != "$CPORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"
command -v java >/dev/null 2>&1 || die "java not found on PATH (Java 17+ is needed to run the Kafka broker)"

mkdir -p "$KAFKA_HOME"

# Serialise concurrent start.sh runs (e.g. two test runs at once). The lock fd
# is closed for the broker process below, so the broker never holds it.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$KAFKA_HOME/.start.lock"
  flock -w 300 9 || die "timed out waiting for another start.sh to finish ($KAFKA_HOME/.start.lock)"
fi

# --- helpers ---------------------------------------------------------------

# Is $1 the pid of a broker this script started for this port?
is_our_broker() {
  local pid="$1" cmd
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
  else
    cmd="$(ps -p "$pid" -o args= 2>/dev/null || true)"
  fi
  [[ "$cmd" == *kafka.Kafka* && "$cmd" == *"$CONFIG"* ]]
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# Wait until the broker answers a metadata request.
# $1 = seconds, $2 = pid to watch (optional), $3 = --warm (optional, see probe.mjs).
probe() {
  local timeout="$1" pid="${2:-}" warm="${3:-}"
  if command -v node >/dev/null 2>&1; then
    local rc=0
    # shellcheck disable=SC2086 # empty $pid / $warm must vanish
    (cd "$REPO" && node "$SCRIPT_DIR/probe.mjs" "$HOST:$PORT" "$timeout" $pid $warm) || rc=$?
    [[ $rc -ne 3 ]] && return $rc # 3 = kafkajs not installed: fall back to the JVM tool
  fi
  # No node/kafkajs: trust the broker's own "started" log line plus an open port.
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null && return 2
    if port_open "$PORT" && grep -q "Kafka Server started" "$LOG_DIR/server.log" 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  return 1
}

show_log_tail() {
  local f
  for f in "$LOG_DIR/kafka.out" "$LOG_DIR/server.log"; do
    if [[ -s "$f" ]]; then
      echo "----- tail -n 40 $f -----" >&2
      tail -n 40 "$f" >&2
    fi
  done
}

stop_pid() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
}

# --- 1. reuse a running broker -------------------------------------------------

if [[ -f "$PID_FILE" ]]; then
  OLD_PID="$(cat "$PID_FILE" 2>/dev/null || true)"
  if is_our_broker "$OLD_PID"; then
    log "broker already running (pid $OLD_PID), checking it answers on $HOST:$PORT ..."
    if probe 20 "$OLD_PID"; then
      log "READY $HOST:$PORT (reused) pid=$OLD_PID"
      exit 0
    fi
    log "broker pid $OLD_PID does not answer; restarting it"
    stop_pid "$OLD_PID"
  fi
  rm -f "$PID_FILE"
fi

for p in "$PORT" "$CPORT"; do
  if port_open "$p"; then
    die "port $HOST:$p is already in use by a process not started by this script; stop it or choose other ports (KAFKA_PORT=... KAFKA_CONTROLLER_PORT=...)"
  fi
done

# --- 2. broker jars (Maven Central, cached) -------------------------------------

POM="$SCRIPT_DIR/pom.xml"
POM_SUM="$(cksum <"$POM" | cut -d' ' -f1)"
if [[ "$(cat "$LIBS/.complete" 2>/dev/null || true)" != "$POM_SUM" ]]; then
  command -v mvn >/dev/null 2>&1 || die "mvn not found on PATH (needed once to download the Kafka jars into $LIBS)"
  KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
  log "downloading Kafka $KAFKA_VERSION jars with Maven into $LIBS (first run only) ..."
  t0=$SECONDS
  TMP_LIBS="$KAFKA_HOME/libs.tmp.$$"
  rm -rf "$TMP_LIBS"
  if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$TMP_LIBS" >"$KAFKA_HOME/mvn.log" 2>&1; then
    cat "$KAFKA_HOME/mvn.log" >&2
    rm -rf "$TMP_LIBS"
    die "Maven could not fetch the Kafka jars (see output above)"
  fi
  echo "$POM_SUM" >"$TMP_LIBS/.complete"
  rm -rf "$LIBS"
  mv "$TMP_LIBS" "$LIBS"
  rm -f "$KAFKA_HOME/mvn.log"
  log "fetched $(ls "$LIBS"/*.jar | wc -l | tr -d ' ') jars in $((SECONDS - t0))s"
fi

# --- 3. config + fresh storage --------------------------------------------------

rm -rf "$DATA_DIR" "$LOG_DIR" "$RUN_DIR"
mkdir -p "$DATA_DIR" "$LOG_DIR" "$RUN_DIR"

SSL_PORT="${KAFKA_SSL_PORT:-}"
SASL_PORT="${KAFKA_SASL_PORT:-}"
SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-}"
TLS_DIR="${KAFKA_TLS_DIR:-$RUN_DIR/tls}"
SASL_USERS="${KAFKA_SASL_USERS:-wallaroo:wallaroo-secret}"
LISTENERS="PLAINTEXT://$HOST:$PORT"
for p in $SSL_PORT $SASL_PORT $SASL_SSL_PORT; do
  [[ "$p" =~ ^[0-9]+$ ]] || die "KAFKA_SSL_PORT/KAFKA_SASL_PORT/KAFKA_SASL_SSL_PORT must be numbers"
  ! port_open "$p" || die "port $HOST:$p is already in use; choose another"
done
[[ -n "$SSL_PORT" ]] && LISTENERS="$LISTENERS,SSL://$HOST:$SSL_PORT"
[[ -n "$SASL_PORT" ]] && LISTENERS="$LISTENERS,SASL_PLAINTEXT://$HOST:$SASL_PORT"
[[ -n "$SASL_SSL_PORT" ]] && LISTENERS="$LISTENERS,SASL_SSL://$HOST:$SASL_SSL_PORT"

# A CA and a broker certificate it signs (for 127.0.0.1 and localhost), with the JDK's keytool:
# test certificates, made once per TLS_DIR; clients trust ca.pem.
make_tls() {
  command -v keytool >/dev/null 2>&1 || die "keytool not found on PATH (the JDK's; needed for KAFKA_SSL_PORT/KAFKA_SASL_SSL_PORT)"
  mkdir -p "$TLS_DIR"
  local pw d="$TLS_DIR"
  pw="$(head -c 12 /dev/urandom | base64 | tr -d '/+=\n')"
  local kt=(keytool -noprompt -storetype PKCS12 -storepass "$pw" -keypass "$pw")
  rm -f "$d"/ca.p12 "$d"/broker.p12 "$d"/truststore.p12 "$d"/*.pem "$d"/*.csr
  "${kt[@]}" -genkeypair -keystore "$d/ca.p12" -alias ca -dname "CN=wallaroo-test-ca" -keyalg RSA -keysize 2048 \
    -validity 3650 -ext bc:c >/dev/null 2>&1 || die "keytool could not make the CA"
  "${kt[@]}" -exportcert -rfc -keystore "$d/ca.p12" -alias ca -file "$d/ca.pem" >/dev/null 2>&1
  "${kt[@]}" -genkeypair -keystore "$d/broker.p12" -alias broker -dname "CN=localhost" -keyalg RSA -keysize 2048 \
    -validity 3650 >/dev/null 2>&1 || die "keytool could not make the broker key"
  "${kt[@]}" -certreq -keystore "$d/broker.p12" -alias broker -file "$d/broker.csr" >/dev/null 2>&1
  "${kt[@]}" -gencert -keystore "$d/ca.p12" -alias ca -infile "$d/broker.csr" -outfile "$d/broker.pem" -rfc \
    -validity 3650 -ext "SAN=IP:127.0.0.1,DNS:localhost" >/dev/null 2>&1 || die "keytool could not sign the broker certificate"
  "${kt[@]}" -importcert -keystore "$d/broker.p12" -alias ca -file "$d/ca.pem" >/dev/null 2>&1
  "${kt[@]}" -importcert -keystore "$d/broker.p12" -alias broker -file "$d/broker.pem" >/dev/null 2>&1 ||
    die "keytool could not import the broker certificate"
  "${kt[@]}" -importcert -keystore "$d/truststore.p12" -alias ca -file "$d/ca.pem" >/dev/null 2>&1
  # A client certificate for mutual TLS; its key as PEM needs openssl (keytool cannot export keys).
  "${kt[@]}" -genkeypair -keystore "$d/client.p12" -alias client -dname "CN=wallaroo-test-client" -keyalg RSA \
    -keysize 2048 -validity 3650 >/dev/null 2>&1 || die "keytool could not make the client key"
  "${kt[@]}" -certreq -keystore "$d/client.p12" -alias client -file "$d/client.csr" >/dev/null 2>&1
  "${kt[@]}" -gencert -keystore "$d/ca.p12" -alias ca -infile "$d/client.csr" -outfile "$d/client-cert.pem" -rfc \
    -validity 3650 >/dev/null 2>&1 || die "keytool could not sign the client certificate"
  "${kt[@]}" -importcert -keystore "$d/client.p12" -alias ca -file "$d/ca.pem" >/dev/null 2>&1
  "${kt[@]}" -importcert -keystore "$d/client.p12" -alias client -file "$d/client-cert.pem" >/dev/null 2>&1
  if command -v openssl >/dev/null 2>&1; then
    openssl pkcs12 -in "$d/client.p12" -passin "pass:$pw" -nocerts -nodes 2>/dev/null |
      sed -n '/-----BEGIN/,/-----END/p' >"$d/client-key.pem"
    [[ -s "$d/client-key.pem" ]] || rm -f "$d/client-key.pem"
  fi
  echo "$pw" >"$d/password"
  log "made test certificates in $d (CA: $d/ca.pem)"
}
if [[ -n "$SSL_PORT$SASL_SSL_PORT" && ! -s "$TLS_DIR/password" ]]; then make_tls; fi

# PLAIN users for the JAAS config, SCRAM credentials for the storage format.
JAAS_USERS=""
SCRAM_ARGS=()
if [[ -n "$SASL_PORT$SASL_SSL_PORT" ]]; then
  IFS=',' read -r -a pairs <<<"$SASL_USERS"
  for pair in "${pairs[@]}"; do
    u="${pair%%:*}" pwd="${pair#*:}"
    [[ -n "$u" && "$pair" == *:* ]] || die "KAFKA_SASL_USERS: \"$pair\" is not user:password"
    JAAS_USERS="$JAAS_USERS user_$u=\"$pwd\""
    SCRAM_ARGS+=(--add-scram "SCRAM-SHA-256=[name=$u,password=$pwd]" --add-scram "SCRAM-SHA-512=[name=$u,password=$pwd]")
  done
fi

cat >"$CONFIG" <<EOF
# Generated by scripts/kafka/start.sh -- single-node KRaft broker for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CPORT
listeners=$LISTENERS,CONTROLLER://$HOST:$CPORT
advertised.listeners=$LISTENERS
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
log.dirs=$DATA_DIR
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
log.segment.bytes=134217728
EOF

if [[ -n "$SSL_PORT$SASL_SSL_PORT" ]]; then
  TLS_PW="$(cat "$TLS_DIR/password")"
  cat >>"$CONFIG" <<EOF
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/broker.p12
ssl.keystore.password=$TLS_PW
ssl.key.password=$TLS_PW
ssl.truststore.type=PKCS12
ssl.truststore.location=$TLS_DIR/truststore.p12
ssl.truststore.password=$TLS_PW
ssl.client.auth=requested
listener.name.ssl.ssl.client.auth=${KAFKA_SSL_CLIENT_AUTH:-requested}
EOF
fi
if [[ -n "$SASL_PORT$SASL_SSL_PORT" ]]; then
  # OAUTHBEARER with Kafka's unsecured tokens (alg "none": for tests only; the broker checks expiry and
  # the "sub" claim, not a signature), so that a client's token provider can be tested.
  echo "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER" >>"$CONFIG"
  for l in ${SASL_PORT:+sasl_plaintext} ${SASL_SSL_PORT:+sasl_ssl}; do
    cat >>"$CONFIG" <<EOF
listener.name.$l.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$JAAS_USERS;
listener.name.$l.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.$l.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.$l.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker";
EOF
  done
fi

# Kafka cluster ids are 16 random bytes, base64url-encoded without padding. One in 64 starts
# with "-", which the tool's argument parser takes for an option unless given as --cluster-id=ID.
CLUSTER_ID="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"

log "formatting storage in $DATA_DIR (cluster id $CLUSTER_ID) ..."
if ! java -Xmx256m -cp "$LIBS/*" "${TOOLS_LOG_OPTS[@]}" kafka.tools.StorageTool format \
  --cluster-id="$CLUSTER_ID" -c "$CONFIG" ${SCRAM_ARGS[@]+"${SCRAM_ARGS[@]}"} >"$LOG_DIR/format.log" 2>&1; then
  cat "$LOG_DIR/format.log" >&2
  die "kafka-storage format failed"
fi

# --- 4. launch --------------------------------------------------------------------

log "starting broker on $HOST:$PORT (controller $HOST:$CPORT), logs in $LOG_DIR ..."
t0=$SECONDS
SETSID=()
command -v setsid >/dev/null 2>&1 && SETSID=(setsid)
# shellcheck disable=SC2086 # HEAP_OPTS / KAFKA_JVM_OPTS are intentionally word-split
nohup ${SETSID[@]+"${SETSID[@]}"} java $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
  ${KAFKA_JVM_OPTS:-} "${JAVA_LOG_OPTS[@]}" -cp "$LIBS/*" kafka.Kafka "$CONFIG" \
  >"$LOG_DIR/kafka.out" 2>&1 </dev/null 9>&- &
PID=$!
echo "$PID" >"$PID_FILE"

rc=0
probe "$TIMEOUT" "$PID" --warm || rc=$?
if [[ $rc -eq 0 ]]; then
  log "READY $HOST:$PORT (started) pid=$PID in $((SECONDS - t0))s${SSL_PORT:+ ssl=$HOST:$SSL_PORT}${SASL_PORT:+ sasl=$HOST:$SASL_PORT}${SASL_SSL_PORT:+ sasl_ssl=$HOST:$SASL_SSL_PORT}"
  exit 0
fi

if [[ $rc -eq 2 ]]; then
  echo "kafka: ERROR: broker process $PID exited during startup" >&2
else
  echo "kafka: ERROR: broker did not answer on $HOST:$PORT within ${TIMEOUT}s" >&2
fi
show_log_tail
stop_pid "$PID"
rm -f "$PID_FILE"
echo "kafka: logs kept in $LOG_DIR (bash scripts/kafka/stop.sh removes them)" >&2
exit 1
