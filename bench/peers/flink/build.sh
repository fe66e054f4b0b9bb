#!/usr/bin/env bash
# Fetches Flink 1.20 and its Kafka connector (Maven Central, cached in ~/.m2) and compiles
# FlinkPeer.java into target/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")"
# quiet unless it fails (mvn -q still prints colour codes)
out=$(mvn -B -q -f pom.xml dependency:copy-dependencies -DoutputDirectory=target/libs 2>&1) || {
  echo "$out" >&2
  exit 1
}
mkdir -p target/classes
javac -nowarn -cp 'target/libs/*' -d target/classes FlinkPeer.java
echo "built: java -cp '$(pwd)/target/classes:$(pwd)/target/libs/*' FlinkPeer word_count|celsius BROKERS IN OUT GROUP PARALLELISM"
