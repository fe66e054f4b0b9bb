// Readiness probe used by start.sh: waits until a Kafka broker answers a
// metadata request (kafkajs admin.listTopics) on the given bootstrap address.
//
//   node scripts/kafka/probe.mjs <host:port> <timeoutSeconds> [pid] [--warm]
//
// --warm also waits until the group coordinator is available (on a fresh broker
// this creates __consumer_offsets), so the first consumer group of a test run
// joins quickly instead of logging "The group coordinator is not available".
//
// Exit codes: 0 ready, 1 timed out, 2 the watched pid exited, 3 kafkajs missing.

// kafkajs as shipped arms a timer with a negative delay after every response (the engine's
// kafkajs patch 6 fixes that; this script runs before the build, without the patches):
// Node's TimeoutNegativeWarning on stderr would read as a problem in every start.sh and
// test run. That one warning is dropped here; any other is printed as Node would.
process.removeAllListeners("warning");
process.on("warning", (w) => {
  if (w.name !== "TimeoutNegativeWarning") console.error(`(probe) ${w.name}: ${w.message}`);
});

let kafkajs;
try {
  kafkajs = await import("kafkajs");
} catch {
  console.error("probe: cannot load kafkajs (run npm install)");
  process.exit(3);
}
const { Kafka, logLevel } = kafkajs.default ?? kafkajs;

const args = process.argv.slice(2);
const warm = args.includes("--warm");
const [broker, timeoutArg = "60", pidArg] = args.filter((a) => a !== "--warm");
const deadline = Date.now() + Number(timeoutArg) * 1000;
const pid = pidArg ? Number(pidArg) : undefined;

const alive = (p) => {
  try {
    process.kill(p, 0);
    return true;
  } catch (e) {
    return e.code === "EPERM";
  }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const kafka = new Kafka({
  clientId: "wallaroo-kafka-probe",
  brokers: [broker],
  logLevel: logLevel.NOTHING,
  connectionTimeout: 1000,
  requestTimeout: 3000,
  retry: { retries: 0 },
});

let lastError = "";
for (;;) {
  if (pid !== undefined && !alive(pid)) {
    console.error(`probe: broker process ${pid} exited`);
    process.exit(2);
  }
  const admin = kafka.admin({ retry: { retries: 0 } });
  try {
    await admin.connect();
    await admin.listTopics();
    if (warm) await admin.describeGroups(["wallaroo-kafka-probe"]);
    await admin.disconnect();
    process.exit(0);
  } catch (e) {
    lastError = e?.message ?? String(e);
    await admin.disconnect().catch(() => {});
  }
  if (Date.now() >= deadline) {
    console.error(`probe: ${broker} not ready: ${lastError}`);
    process.exit(1);
  }
  await sleep(250);
}
