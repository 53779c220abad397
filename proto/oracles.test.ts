import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sealCommand, sealEvent } from './envelope.js';
import { doorbell } from './gen/doorbell.js';
import { privateKeyToPem, publicKeyToPem } from './keys.js';
import { commandCtx, DEVICE_KEY, EVENT_BODIES, eventCtx, HUB_KEY, header, TOPICS } from './test-fixtures.js';
import { openCommand, openEvent } from './verify.js';

/**
 * Independent oracles: protoc reads our bytes from the .proto files alone, and
 * OpenSSL checks our signatures. Neither shares code with protobufjs or with
 * us. Both are required (Debian: protobuf-compiler, openssl >= 3).
 */

const PROTO_ROOT = fileURLToPath(new URL('.', import.meta.url));

function run(
  cmd: string,
  args: string[],
  input?: Uint8Array,
): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => reject(new Error(`${cmd} is required for the oracle tests: ${e.message}`)));
    child.on('close', (code) =>
      resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }),
    );
    // A tool that exits before reading all of stdin causes EPIPE here; its exit
    // code and stderr, asserted by the caller, say why.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

async function protocDecode(type: string, file: string, bytes: Uint8Array): Promise<string> {
  const r = await run(
    'protoc',
    [`--decode=doorbell.v1.${type}`, '-I', PROTO_ROOT, join(PROTO_ROOT, file)],
    bytes,
  );
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString();
}

/** Reverses protoc's C escaping of a bytes field in text format. */
function unescapeC(text: string): Buffer {
  const simple: Record<string, number> = { n: 10, r: 13, t: 9, '"': 34, "'": 39, '\\': 92 };
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== '\\') {
      out.push(text.charCodeAt(i));
      continue;
    }
    const octal = /^[0-7]{1,3}/.exec(text.slice(i + 1))?.[0];
    if (octal) {
      out.push(Number.parseInt(octal, 8));
      i += octal.length;
    } else {
      const code = simple[text[i + 1] ?? ''];
      assert.ok(code !== undefined, `unexpected escape at ${i} in ${text}`);
      out.push(code);
      i += 1;
    }
  }
  return Buffer.from(out);
}

function field(textFormat: string, name: string): string {
  const match = new RegExp(`^${name}: "(.*)"$`, 'm').exec(textFormat);
  assert.ok(match?.[1] !== undefined, `${name} missing in\n${textFormat}`);
  return match[1];
}

describe('independent oracles', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'proto-oracles-'));
    await writeFile(join(dir, 'pub.pem'), publicKeyToPem(DEVICE_KEY));
    await writeFile(join(dir, 'priv.pem'), privateKeyToPem(DEVICE_KEY), { mode: 0o600 });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('protoc reads the envelope and its body, and OpenSSL accepts the signature', async () => {
    const h = header(TOPICS.evt);
    const sealed = sealEvent({ header: h, ...EVENT_BODIES.chimeRang }, DEVICE_KEY);
    const envelope = await protocDecode('Envelope', 'doorbell/v1/envelope.proto', sealed);
    assert.equal(field(envelope, 'key_id'), DEVICE_KEY.keyId);
    const body = unescapeC(field(envelope, 'body'));
    const signature = unescapeC(field(envelope, 'signature'));
    assert.equal(signature.length, 64);

    const event = await protocDecode('Event', 'doorbell/v1/event.proto', body);
    assert.equal(
      event,
      [
        'header {',
        `  device_id: "${h.deviceId}"`,
        `  topic: "${h.topic}"`,
        `  counter: ${h.counter}`,
        `  issued_at_ms: ${h.issuedAtMs}`,
        `  expires_at_ms: ${h.expiresAtMs}`,
        `  correlation_id: "${h.correlationId}"`,
        `  key_epoch: ${h.keyEpoch}`,
        '}',
        'chime_rang {',
        `  rang_at_ms: ${EVENT_BODIES.chimeRang.chimeRang?.rangAtMs}`,
        '  mode: "electronic"',
        '  press_to_chime_us: 1234',
        '  rang: true',
        '}',
        '',
      ].join('\n'),
    );

    await writeFile(join(dir, 'body.bin'), body);
    await writeFile(join(dir, 'sig.bin'), signature);
    const verifyArgs = ['pkeyutl', '-verify', '-pubin', '-inkey', join(dir, 'pub.pem'), '-rawin'];
    const ok = await run('openssl', [
      ...verifyArgs,
      '-in',
      join(dir, 'body.bin'),
      '-sigfile',
      join(dir, 'sig.bin'),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout.toString(), /Signature Verified Successfully/);

    const tampered = Buffer.from(body);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 0x01;
    await writeFile(join(dir, 'tampered.bin'), tampered);
    const bad = await run('openssl', [
      ...verifyArgs,
      '-in',
      join(dir, 'tampered.bin'),
      '-sigfile',
      join(dir, 'sig.bin'),
    ]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stdout.toString(), /Signature Verification Failure/);
  });

  test('protoc reads enums and nested status in a command result', async () => {
    const h = header(TOPICS.evt);
    const sealed = sealEvent({ header: h, ...EVENT_BODIES.commandResult }, DEVICE_KEY);
    const body = doorbell.v1.Envelope.decode(sealed).body;
    const text = await protocDecode('Event', 'doorbell/v1/event.proto', body);
    assert.match(
      text,
      /^command_result \{\n {2}error_kind: BUSY\n {2}error_message: "chime is ringing"\n {2}status \{\n {4}state: ONLINE\n/m,
    );
    assert.match(text, /^ {4}uptime_s: 34560000$/m);
    assert.match(text, /^ {4}presses_since_boot: 42$/m);
  });

  test('protoc reads a command', async () => {
    const h = header(TOPICS.cmd);
    const sealed = sealCommand({ header: h, ringChimeTest: {} }, HUB_KEY);
    const text = await protocDecode(
      'Command',
      'doorbell/v1/command.proto',
      doorbell.v1.Envelope.decode(sealed).body,
    );
    assert.match(
      text,
      new RegExp(`^header \\{\\n {2}device_id: "front-door"\\n {2}topic: "${TOPICS.cmd}"\\n`),
    );
    assert.match(text, /^ring_chime_test \{\n\}\n$/m);
    assert.equal(openCommand(sealed, commandCtx()).command.kind, 'ringChimeTest');
  });

  test('OpenSSL derives the same public key and signature from our PKCS#8 file', async () => {
    const pub = await run('openssl', ['pkey', '-in', join(dir, 'priv.pem'), '-pubout']);
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal(pub.stdout.toString(), publicKeyToPem(DEVICE_KEY));

    const sealed = sealEvent({ header: header(TOPICS.evt), ...EVENT_BODIES.buttonPressed }, DEVICE_KEY);
    const env = doorbell.v1.Envelope.decode(sealed);
    await writeFile(join(dir, 'press.bin'), env.body);
    const signed = await run('openssl', [
      'pkeyutl',
      '-sign',
      '-inkey',
      join(dir, 'priv.pem'),
      '-rawin',
      '-in',
      join(dir, 'press.bin'),
      '-out',
      join(dir, 'press.sig'),
    ]);
    assert.equal(signed.code, 0, signed.stderr);
    const signature = await readFile(join(dir, 'press.sig'));
    // Ed25519 is deterministic: OpenSSL's signature is ours, and it opens.
    assert.deepEqual(signature, Buffer.from(env.signature));
    const resealed = doorbell.v1.Envelope.encode({ body: env.body, signature, keyId: env.keyId }).finish();
    assert.equal(openEvent(resealed, eventCtx()).event.kind, 'buttonPressed');
  });
});
