import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../common/logger.js';
import {
  generateSigningKey,
  isDeviceId,
  newCorrelationId,
  type SigningKey,
  sealEvent,
  topicsFor,
} from '../proto/index.js';
import {
  EventWatcher,
  MAX_DEVICE_ID_CHARS,
  type RejectedMessage,
  type VerifiedEvent,
} from './event-watcher.js';

const NOW = 1_750_000_000_000;

function pressEvent(
  deviceId: string,
  key: SigningKey,
  counter: number,
  topic = topicsFor(deviceId).evt,
): Uint8Array {
  return sealEvent(
    {
      header: {
        deviceId,
        topic,
        counter,
        issuedAtMs: NOW - 10,
        expiresAtMs: NOW + 60_000,
        correlationId: newCorrelationId(),
      },
      buttonPressed: { pressedAtMs: NOW - 10, pressSeq: counter },
    },
    key,
  );
}

function watcherFor(devices: Map<string, SigningKey>) {
  const watcher = new EventWatcher(devices, silentLogger(), () => NOW);
  const events: VerifiedEvent[] = [];
  const rejected: RejectedMessage[] = [];
  watcher.on('event', (e) => events.push(e));
  watcher.on('rejected', (r) => rejected.push(r));
  return { watcher, events, rejected };
}

test('only events signed by the pinned key of the device whose topic they arrive on are accepted', () => {
  const front = generateSigningKey();
  const back = generateSigningKey();
  const { watcher, events, rejected } = watcherFor(
    new Map([
      ['front-door', front],
      ['back-door', back],
    ]),
  );
  const topic = topicsFor('front-door').evt;
  watcher.handle(topic, pressEvent('front-door', front, 1), false);
  watcher.handle(topic, pressEvent('front-door', generateSigningKey(), 2), false); // a forger
  watcher.handle(topic, pressEvent('front-door', back, 3), false); // another doorbell's key
  watcher.handle(topic, pressEvent('back-door', front, 4, topic), false); // front's key, about another device
  watcher.handle(topicsFor('side-door').evt, pressEvent('side-door', front, 5), false); // not pinned
  assert.deepEqual(
    events.map((e) => e.counter),
    [1],
  );
  assert.deepEqual(
    rejected.map((r) => r.kind),
    ['unknown-key', 'unknown-key', 'wrong-device', 'unknown-device'],
  );
});

test('a duplicate is dropped, but the same counter from a re-paired device (new key) is not', () => {
  const first = generateSigningKey();
  const devices = new Map([['front-door', first]]);
  const { watcher, events } = watcherFor(devices);
  const topic = topicsFor('front-door').evt;
  const sealed = pressEvent('front-door', first, 1);
  watcher.handle(topic, sealed, false);
  watcher.handle(topic, sealed, false);
  assert.equal(events.length, 1);
  const second = generateSigningKey(); // factory reset and pairing again
  devices.set('front-door', second);
  watcher.handle(topic, pressEvent('front-door', second, 1), false);
  assert.equal(events.length, 2);
});

test('the longest device id the watcher sizes packets for is the longest the wire contract accepts', () => {
  assert.equal(isDeviceId('a'.repeat(MAX_DEVICE_ID_CHARS)), true);
  assert.equal(isDeviceId('a'.repeat(MAX_DEVICE_ID_CHARS + 1)), false);
});
