#!/usr/bin/env bash
# Fetches kafka-streams (Maven Central, cached in ~/.m2) and compiles WordCount.java and Celsius.java into target/.
set -euo pipefail
cd "$(dirname "$0")"
mvn -q -f pom.xml dependency:copy-dependencies -DoutputDirectory=target/libs
mkdir -p target/classes
javac -cp 'target/libs/*' -d target/classes WordCount.java Celsius.java
echo "built: java -cp '$(pwd)/target/classes:$(pwd)/target/libs/*' WordCount BROKERS IN OUT APP_ID THREADS"
