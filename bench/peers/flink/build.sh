#!/usr/bin/env bash
# Fetches Flink 1.20 and its Kafka connector (Maven Central, cached in ~/.m2) and compiles
# FlinkPeer.java into target/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")"
mvn -B -q -f pom.xml dependency:copy-dependencies -DoutputDirectory=target/libs
mkdir -p target/classes
javac -nowarn -cp 'target/libs/*' -d target/classes FlinkPeer.java
echo "built: java -cp '$(pwd)/target/classes:$(pwd)/target/libs/*' FlinkPeer word_count|celsius BROKERS IN OUT GROUP PARALLELISM"
