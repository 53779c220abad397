import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '../common/free-port.js';
import { type DaemonProcess, startDaemonProcess } from '../test-support/daemon-process.js';
import { type DocRun, docCommand, runDocCommand, withValues } from '../test-support/doc-commands.js';
import { runCli } from '../test-support/run-cli.js';
import { waitFor } from '../test-support/wait-for.js';

/**
 * The README's "Home installation with a locked-down broker", every command as
 * written with only its paths, port and host name replaced: build the plugin,
 * make the CA, certificates and configuration, start Mosquitto on them, run a
 * doorbell with its certificate, watch it from the hub over TLS, revoke it.
 * `hub.local` becomes `127.0.0.1` (the certificate then names that address: a
 * fresh machine may resolve no host name at all, not even localhost); the
 * broker listens on loopback instead of every interface.
 */

const run = promisify(execFile);
let dir = '';
let out = '';
let port = 0;
const runs: DocRun[] = [];
let daemon: DaemonProcess | undefined;
let values: Record<string, string> = {};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doorbell-readme-broker-'));
  await chmod(dir, 0o755); // Mosquitto's user must reach the files, as under /etc
  out = join(dir, 'etc', 'mosquitto', 'doorbell');
  port = await freePort();
  values = {
    '/etc/mosquitto/doorbell': out,
    'hub.local': '127.0.0.1',
    '0.0.0.0': '127.0.0.1',
    '8883': String(port),
  };
});

after(async () => {
  await daemon?.stop();
  for (const r of runs) await r.stop('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

function doc(text: string, env: NodeJS.ProcessEnv = {}): DocRun {
  const r = runDocCommand(text, { env });
  runs.push(r);
  return r;
}

/** Values for this command: only the placeholders it holds. */
function valuesFor(text: string): Record<string, string> {
  return Object.fromEntries(Object.entries(values).filter(([k]) => text.includes(k)));
}

async function finished(r: DocRun): Promise<DocRun> {
  const code = await r.exited(120_000);
  assert.equal(code, 0, `exit ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

function accepts(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(p, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test("the README's locked-down broker: plugin, certificates, Mosquitto, a doorbell and the hub over TLS, revocation", async () => {
  await finished(doc(docCommand('README.md', 'make -C broker/plugin').text));

  const makeDoc = docCommand(
    'README.md',
    'node --import tsx broker/make-broker-config.ts --out /etc/mosquitto/doorbell --device',
  );
  const made = await finished(doc(withValues(makeDoc, valuesFor(makeDoc.text))));
  assert.match(made.stdout, /run: mosquitto -c /);

  const mosquittoDoc = docCommand('README.md', 'mosquitto -c /etc/mosquitto/doorbell/mosquitto.conf');
  const broker = doc(withValues(mosquittoDoc, valuesFor(mosquittoDoc.text)));
  // Ready when the TLS port accepts connections (Mosquitto writes its log to its own file).
  await waitFor(
    async () => {
      assert.equal(broker.child.exitCode, null, `mosquitto exited: ${broker.stderr}`);
      return accepts(port);
    },
    'mosquitto accepting connections',
    10_000,
    25,
  );

  // The doorbell's broker section, as the README shows it, with this test's paths.
  const state = join(dir, 'board');
  const config = join(dir, 'doorbell.json');
  await writeFile(
    config,
    JSON.stringify({
      deviceId: 'front-door',
      stateDir: state,
      broker: {
        url: `mqtts://127.0.0.1:${port}`,
        ca: join(out, 'ca.crt'),
        cert: join(out, 'device-front-door.crt'),
        key: join(out, 'device-front-door.key'),
      },
      hal: { backend: 'sim' },
    }),
  );
  const hubEnv = { XDG_STATE_HOME: join(dir, 'hub-state') };
  const identity = await runCli('firmware/cli.ts', ['identity', '--config', config, '--no-qr']);
  const key = /ed25519:\S+/.exec(identity.stdout)?.[0];
  assert.ok(key, identity.stdout);
  const pinned = await runCli('hub/cli.ts', ['add-device', 'front-door', key], 30_000, hubEnv);
  assert.equal(pinned.code, 0, pinned.stderr);
  daemon = await startDaemonProcess(config, join(state, 'sim-wires.sock'));

  const watchDoc = docCommand('README.md', 'npm run doorbell-hub -- watch --broker mqtts://hub.local:8883');
  const watch = doc(withValues(watchDoc, valuesFor(watchDoc.text)), hubEnv);
  await watch.waitFor(/front-door status ONLINE/, 60_000);
  await daemon.wires.press(100);
  await watch.waitFor(/front-door button pressed #\d+ \(verified/, 15_000);

  const revokeDoc = docCommand(
    'README.md',
    'node --import tsx broker/make-broker-config.ts --out /etc/mosquitto/doorbell --revoke',
  );
  await finished(doc(withValues(revokeDoc, valuesFor(revokeDoc.text))));
  // The CRL now lists the doorbell's certificate (openssl, not our code, says so).
  const verify = await run('openssl', [
    'verify',
    '-crl_check',
    '-CAfile',
    join(out, 'ca.crt'),
    '-CRLfile',
    join(out, 'crl.pem'),
    join(out, 'device-front-door.crt'),
  ]).then(
    (r) => r.stdout + r.stderr,
    (err: { stdout: string; stderr: string }) => err.stdout + err.stderr,
  );
  assert.match(verify, /certificate revoked/);
  // `systemctl reload mosquitto` is a SIGHUP: the broker drops the revoked doorbell.
  assert.ok(broker.child.pid);
  process.kill(broker.child.pid, 'SIGHUP');
  // The doorbell is dropped, and its reconnections are refused at the TLS handshake.
  const board = daemon;
  await waitFor(
    () => /revoked/.test(board.stderr()),
    'the doorbell hearing its certificate was revoked',
    30_000,
    50,
  ).catch((err: Error) => assert.fail(`${err.message}:\n${board.stderr()}`));
  await watch.stop('SIGINT');
});
