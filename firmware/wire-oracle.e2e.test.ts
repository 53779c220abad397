import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { doorbell, publicKeyToPem, topicsFor } from '../proto/index.js';
import { type Harness, startHarness } from '../test-support/doorbell-harness.js';

const run = promisify(execFile);

/**
 * Independent oracles: bytes captured from the broker by `mosquitto_sub`
 * are decoded by `protoc` from the .proto files, and the device signature
 * over the body is checked by `openssl`. None of them shares code with us.
 */
let broker: RunningBroker;
let h: Harness;
let dir: string;
before(async () => {
  broker = await startMosquitto();
  h = await startHarness(broker.url);
  dir = await mkdtemp(join(tmpdir(), 'doorbell-oracle-'));
});
after(async () => {
  await h?.stop();
  await broker?.stop();
  await rm(dir, { recursive: true, force: true });
});

function captureOne(topic: string): { bytes: Promise<Buffer>; ready: Promise<void> } {
  // Line-buffered (coreutils' stdbuf): its debug lines arrive as they happen.
  const sub = spawn(
    'stdbuf',
    [
      '-oL',
      'mosquitto_sub',
      '-h',
      '127.0.0.1',
      '-p',
      String(broker.port),
      '-V',
      'mqttv5',
      '-q',
      '1',
      '-t',
      topic,
      '-C',
      '1',
      '-F',
      '%x',
      // Debug lines ("... received SUBACK") tell when it has subscribed.
      '-d',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  sub.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  sub.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const bytes = new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.kill('SIGKILL');
      reject(new Error(`mosquitto_sub captured nothing: ${err}`));
    }, 10_000);
    sub.once('exit', (code) => {
      clearTimeout(timer);
      // The message is the one line that is not a debug line.
      const hexLine = out.split('\n').find((l) => /^[0-9a-f]+$/.test(l.trim()));
      if (code === 0 && hexLine !== undefined) resolve(Buffer.from(hexLine.trim(), 'hex'));
      else reject(new Error(`mosquitto_sub exited ${code}: ${err}`));
    });
  });
  // Ready once mosquitto_sub reports the broker's SUBACK.
  const ready = new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (/received SUBACK/.test(out)) {
        sub.stdout.off('data', check);
        resolve();
      }
    };
    sub.stdout.on('data', check);
    sub.once('exit', (code) => reject(new Error(`mosquitto_sub exited ${code} before subscribing: ${err}`)));
  });
  return { bytes, ready };
}

test('protoc decodes an envelope and event captured from the broker; openssl verifies the signature', async () => {
  const capture = captureOne(topicsFor('front-door').evt);
  await capture.ready;
  await h.device.hal.sim?.press(60);
  const wire = await capture.bytes;
  assert.ok(wire.length > 64, 'captured a real message');

  const wirePath = join(dir, 'envelope.bin');
  await writeFile(wirePath, wire);
  const envText = (
    await run('sh', [
      '-c',
      `protoc --decode=doorbell.v1.Envelope -I proto proto/doorbell/v1/envelope.proto < ${wirePath}`,
    ])
  ).stdout;
  assert.match(envText, new RegExp(`key_id: "${h.device.key.keyId}"`));
  assert.match(envText, /^body: "/m);
  assert.match(envText, /^signature: "/m);

  const envelope = doorbell.v1.Envelope.decode(wire);
  const bodyPath = join(dir, 'body.bin');
  await writeFile(bodyPath, envelope.body);
  const evtText = (
    await run('sh', [
      '-c',
      `protoc --decode=doorbell.v1.Event -I proto proto/doorbell/v1/event.proto < ${bodyPath}`,
    ])
  ).stdout;
  assert.match(evtText, /device_id: "front-door"/);
  assert.match(evtText, /topic: "doorbell\/v1\/front-door\/evt"/);
  assert.match(evtText, /button_pressed \{/);
  assert.match(evtText, /counter: \d+/);

  const sigPath = join(dir, 'sig.bin');
  const pubPath = join(dir, 'device.pub.pem');
  await writeFile(sigPath, envelope.signature);
  await writeFile(pubPath, publicKeyToPem(h.device.key));
  const verify = (body: string) =>
    run('openssl', [
      'pkeyutl',
      '-verify',
      '-pubin',
      '-inkey',
      pubPath,
      '-rawin',
      '-in',
      body,
      '-sigfile',
      sigPath,
    ]);
  const ok = await verify(bodyPath);
  assert.match(ok.stdout, /Signature Verified Successfully/);

  const tampered = Buffer.from(envelope.body);
  tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
  const tamperedPath = join(dir, 'tampered.bin');
  await writeFile(tamperedPath, tampered);
  await assert.rejects(verify(tamperedPath), 'openssl refuses a tampered body');
});
