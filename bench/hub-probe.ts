// A hub for benchmarks, in its own process as a real hub would be: verifies
// every event against the pinned device key and prints one line per event:
//   "pressed <pressSeq> <CLOCK_MONOTONIC ns after verification> <envelope bytes>"
//   "chime <n-th ChimeRang> <device-measured recognition -> chime-on, us>"
import { lowerBackgroundThreads } from '../common/background-threads.js';
import { silentLogger } from '../common/logger.js';
import { MqttConnection } from '../common/mqtt-connection.js';
import { EventWatcher } from '../hub/event-watcher.js';
import { publicKeyFromText } from '../proto/index.js';

const [brokerUrl, deviceId, keyText] = process.argv.slice(2);
if (!brokerUrl || !deviceId || !keyText) {
  process.stderr.write('usage: hub-probe BROKER DEVICE-ID PUBLIC-KEY\n');
  process.exit(2);
}
const watcher = new EventWatcher(new Map([[deviceId, publicKeyFromText(keyText)]]), silentLogger());
let chimes = 0;
watcher.on('event', (e) => {
  const verifiedAtNs = process.hrtime.bigint();
  if (e.event.kind === 'buttonPressed') {
    process.stdout.write(`pressed ${e.event.buttonPressed?.pressSeq} ${verifiedAtNs} ${e.payloadBytes}\n`);
  } else if (e.event.kind === 'chimeRang' && e.event.chimeRang?.rang) {
    chimes += 1;
    process.stdout.write(`chime ${chimes} ${e.event.chimeRang.pressToChimeUs}\n`);
  }
});
const connection = new MqttConnection({
  url: brokerUrl,
  clientId: `bench-hub-${process.pid}`,
  logger: silentLogger(),
  subscriptions: EventWatcher.subscriptions,
});
connection.on('message', (topic, payload, packet) => watcher.handle(topic, payload, packet.retain));
connection.on('connected', () => process.stdout.write('ready\n'));
connection.start();
// As `doorbell-hub watch` does.
lowerBackgroundThreads(silentLogger());
process.on('SIGTERM', () => {
  connection.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
