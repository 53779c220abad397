import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statfsSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { type Logger, silentLogger } from '../common/logger.js';
import { mediaConfigSchema } from './config.js';
import { MediaConfigError } from './pipeline/preflight.js';
import { prepareRingDir } from './ring-dir.js';
import { MediaService } from './service.js';
import { PlainDirSink } from './test-helpers.js';

const RAM = new Set([0x01021994, 0x858458f6]);
const uid = process.getuid?.() ?? 0;

describe('the media ring directory (plaintext video) is only where nobody else controls it', () => {
  const shm = mkdtempSync('/dev/shm/ring-dir-test-');
  const disk: string[] = [];
  after(() => {
    rmSync(shm, { recursive: true, force: true });
    for (const d of disk) rmSync(d, { recursive: true, force: true });
  });
  const refused = (re: RegExp) => (err: unknown) => err instanceof MediaConfigError && re.test(err.message);

  it('a missing directory is created with mode 0700; an existing one of ours (0700) is used', async () => {
    const dir = path.join(shm, 'fresh');
    await prepareRingDir(dir, { allowPersistent: false });
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    await prepareRingDir(dir, { allowPersistent: false });
  });

  it('a symbolic link is refused, even to a directory of ours in RAM', async () => {
    const target = path.join(shm, 'target');
    mkdirSync(target, { mode: 0o700 });
    const link = path.join(shm, 'link');
    symlinkSync(target, link);
    await assert.rejects(prepareRingDir(link, { allowPersistent: false }), refused(/symbolic link/));
  });

  it("a directory owned by another user than the daemon's is refused", async () => {
    const dir = path.join(shm, 'foreign');
    mkdirSync(dir, { mode: 0o700 });
    // The daemon runs as uid 65534 here: the directory (ours) belongs to someone else.
    await assert.rejects(
      prepareRingDir(dir, { allowPersistent: false, uid: uid === 65534 ? 65533 : 65534 }),
      refused(new RegExp(`belongs to uid ${uid}, not to this daemon`)),
    );
  });

  it('a directory open to group or others is refused, and so is a file in its place', async () => {
    const open = path.join(shm, 'open');
    mkdirSync(open, { mode: 0o700 });
    for (const mode of [0o750, 0o705, 0o777]) {
      chmodSync(open, mode);
      await assert.rejects(prepareRingDir(open, { allowPersistent: false }), refused(/chmod 700/));
    }
    const file = path.join(shm, 'file');
    writeFileSync(file, '');
    await assert.rejects(prepareRingDir(file, { allowPersistent: false }), refused(/not a directory/));
    await assert.rejects(
      prepareRingDir(path.join(shm, 'no', 'parent'), { allowPersistent: false }),
      refused(/parent does not exist/),
    );
  });

  it('persistent storage is refused unless ringOnPersistentStorage accepts it (then warned)', async () => {
    const base = [path.resolve(import.meta.dirname, '..'), tmpdir(), '/var/tmp'].find(
      (d) => !RAM.has(statfsSync(d).type),
    );
    assert.ok(base, 'a directory on persistent storage to test with');
    const dir = mkdtempSync(path.join(base, '.ring-dir-test-'));
    disk.push(dir);
    await assert.rejects(prepareRingDir(dir, { allowPersistent: false }), refused(/is not in RAM/));
    const warnings: string[] = [];
    const logger = {
      ...silentLogger(),
      warn: (_o: unknown, msg: string) => warnings.push(msg),
    } as unknown as Logger;
    await prepareRingDir(dir, { allowPersistent: true, logger });
    assert.match(warnings.join('\n'), /not in RAM/);
  });

  it('a refused ring directory stops MediaService.start() with a MediaConfigError: no worker, no frame', async () => {
    const target = path.join(shm, 'svc-target');
    mkdirSync(target, { mode: 0o700 });
    const link = path.join(shm, 'svc-link');
    symlinkSync(target, link);
    const config = mediaConfigSchema.parse({ width: 160, height: 120, fps: 5, ringDir: link });
    const service = new MediaService({ config, sink: new PlainDirSink(shm) });
    await assert.rejects(service.start(), refused(/symbolic link/));
    assert.equal(service.workerPid, undefined);
    await service.stop();
  });
});
