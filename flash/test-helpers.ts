// Helpers shared by the flashing and update tests (not shipped: excluded from the build).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type BundleMeta, HEADER_BYTES, parseManifestBytes } from '../board/manifest.js';

export const REPO = resolve(import.meta.dirname, '..');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one of the repository's TypeScript entry points through tsx, to completion. */
export function run(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolveRun) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(REPO, script), ...args],
      { cwd: REPO, env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolveRun({ code, stdout, stderr });
      },
    );
  });
}

/** The files of a bundle, to re-pack them with other metadata (the way an attacker or a mistake would). */
export function unpack(bundle: Buffer): {
  meta: BundleMeta;
  files: { path: string; data: Buffer; executable: boolean }[];
} {
  const len = bundle.readUInt32BE(12);
  const manifest = parseManifestBytes(bundle.subarray(HEADER_BYTES, HEADER_BYTES + len));
  let at = HEADER_BYTES + len;
  const files = manifest.files.map((f) => {
    const data = bundle.subarray(at, at + f.size);
    at += f.size;
    return { path: f.path, data, executable: f.executable };
  });
  const { format: _format, files: _files, ...meta } = manifest;
  return { meta, files };
}

/** Every path, type, mode, symlink target and content hash under `dir`: proves "nothing was written". */
export function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(d, name);
      const st = statSync(p, { throwIfNoEntry: false });
      const link = readlinkSafe(p);
      if (link !== undefined) out.push(`${p} -> ${link}`);
      else if (st?.isDirectory()) {
        out.push(`${p}/ ${st.mode.toString(8)}`);
        walk(p);
      } else if (st) {
        out.push(`${p} ${st.mode.toString(8)} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
      }
    }
  };
  walk(dir);
  return out;
}

function readlinkSafe(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}
