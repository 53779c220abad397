import { mkdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { build } from 'esbuild';
import { DAEMON_FILE, DEFAULT_CONFIG_FILE, UNIT_TEMPLATE_FILE } from '../board/board-files.js';
import { type BundleInputFile, type BundleMeta, buildBundle, HARDWARE_PATTERN } from '../board/manifest.js';
import { BOOT_SELECT_FILE } from '../board/slots.js';
import { parseConfig } from '../firmware/config/load.js';
import { FIRMWARE_VERSION } from '../firmware/version.js';
import { DEFAULT_EXPIRY_DAYS, SECURITY_COUNTER } from '../flash/release.js';
import { loadOrCreateSigningKey, loadSigningKey, type SigningKey } from '../proto/keys.js';

export const REPO = resolve(import.meta.dirname, '..');

/**
 * Packages loaded at run time that are not bundled: onoff (loaded lazily by the
 * linux HAL) and its dependencies, including the native epoll addon, and
 * gstreamer-superficial, the media worker's GStreamer binding (a native addon
 * linked against the board's libgstreamer-1.0). serialport (test rig only) is
 * not shipped.
 */
const RUNTIME_PACKAGES: Record<string, { files: string[]; addons?: string[] }> = {
  onoff: { files: ['package.json', 'onoff.js', 'LICENSE'] },
  'lodash.debounce': { files: ['package.json', 'index.js', 'LICENSE'] },
  epoll: { files: ['package.json', 'epoll.js', 'LICENSE'], addons: ['build/Release/epoll.node'] },
  bindings: { files: ['package.json', 'bindings.js', 'LICENSE.md'] },
  'file-uri-to-path': { files: ['package.json', 'index.js', 'LICENSE'] },
  'gstreamer-superficial': {
    files: ['package.json', 'LICENSE'],
    addons: ['build/Release/gstreamer-superficial.node'],
  },
};

/** The media worker, where MediaSupervisor looks for it: `worker/main.js` next to the daemon. */
export const MEDIA_WORKER_FILE = 'worker/main.js';

/** ELF e_machine -> Node's arch name. */
const ELF_MACHINES: Record<number, string> = { 62: 'x64', 183: 'arm64', 40: 'arm', 3: 'ia32' };

/** The architecture a native addon was built for, from its ELF header. */
export function addonArch(bytes: Buffer): string {
  if (bytes.length < 20 || bytes.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF shared object');
  const machine = bytes[5] === 2 ? bytes.readUInt16BE(18) : bytes.readUInt16LE(18);
  return ELF_MACHINES[machine] ?? `elf-machine-${machine}`;
}

/** Default config per board: the sim HAL for sim boards, GPIO lines of the reference wiring otherwise. */
export function defaultConfigFor(hardware: string): Record<string, unknown> {
  const board = hardware.split('/')[1] ?? '';
  if (board.startsWith('sim-')) return { hal: { backend: 'sim' } };
  return {
    hal: {
      backend: 'linux',
      button: { gpio: { chip: 'gpiochip0', line: 17 } },
      chime: { gpio: { chip: 'gpiochip0', line: 27 } },
      led: { gpio: { chip: 'gpiochip0', line: 22 } },
    },
  };
}

export interface BundleBuildOptions {
  /** A release key (PKCS#8 PEM, mode 0600, outside the repository); without one a development build. */
  keyPath?: string;
  /** Where the development key is (created on first use). */
  devKeyPath: string;
  hardware: string;
  securityCounter?: number;
  version?: string;
  expiresDays?: number;
  nowMs?: number;
  out?: string;
  log?: (line: string) => void;
}

export interface BuiltBundle {
  path: string;
  bytes: number;
  key: SigningKey;
  development: boolean;
  meta: BundleMeta;
}

async function isInside(dir: string, path: string): Promise<boolean> {
  const real = await realpath(path).catch(() => resolve(path));
  const rel = relative(await realpath(dir), real);
  return !rel.startsWith('..') && !rel.startsWith('/');
}

/** Builds, signs and writes a firmware bundle from this working tree. */
export async function buildFirmwareBundle(options: BundleBuildOptions): Promise<BuiltBundle> {
  const log = options.log ?? (() => undefined);
  if (!HARDWARE_PATTERN.test(options.hardware)) throw new Error(`bad hardware string '${options.hardware}'`);
  const arch = options.hardware.split('-').at(-1) ?? '';
  let key: SigningKey;
  const development = options.keyPath === undefined;
  if (options.keyPath !== undefined) {
    if (await isInside(REPO, options.keyPath)) {
      throw new Error(`${options.keyPath} is inside the repository; keep release keys outside it`);
    }
    key = await loadSigningKey(options.keyPath);
  } else {
    if (await isInside(REPO, options.devKeyPath))
      throw new Error('the development key must live outside the repository');
    ({ key } = await loadOrCreateSigningKey(options.devKeyPath));
    log(`development build: signed with ${options.devKeyPath}`);
  }

  const bundled = async (entry: string): Promise<Buffer> => {
    const result = await build({
      entryPoints: [join(REPO, entry)],
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      write: false,
      outfile: 'out.js',
      external: Object.keys(RUNTIME_PACKAGES),
      // Packages' ES module builds where they have one: a UMD build's dynamic require()s
      // (jsonc-parser's) cannot be followed by the bundler.
      mainFields: ['module', 'main'],
      // Bundled CommonJS packages call require() for Node's built-ins.
      banner: {
        js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
      },
      minifySyntax: true,
      legalComments: 'none',
      logLevel: 'silent',
    });
    const file = result.outputFiles[0];
    if (!file) throw new Error(`esbuild produced nothing for ${entry}`);
    return Buffer.from(file.contents);
  };

  const files: BundleInputFile[] = [
    { path: DAEMON_FILE, data: await bundled('firmware/cli.ts'), executable: true },
    { path: BOOT_SELECT_FILE, data: await bundled('board/boot-select.ts'), executable: true },
    { path: MEDIA_WORKER_FILE, data: await bundled('media/worker/main.ts') },
    { path: UNIT_TEMPLATE_FILE, data: await readFile(join(REPO, 'board', 'doorbell.service')) },
  ];
  const config = defaultConfigFor(options.hardware);
  parseConfig(config, 'default config'); // refuses to build with a config the daemon would refuse
  files.push({ path: DEFAULT_CONFIG_FILE, data: Buffer.from(`${JSON.stringify(config, null, 2)}\n`) });
  for (const [pkg, spec] of Object.entries(RUNTIME_PACKAGES)) {
    for (const f of [...spec.files, ...(spec.addons ?? [])]) {
      const data = await readFile(join(REPO, 'node_modules', pkg, f));
      if (spec.addons?.includes(f)) {
        const built = addonArch(data);
        if (built !== arch) {
          throw new Error(
            `node_modules/${pkg}/${f} is built for ${built}, the bundle is for ${options.hardware}: build on the target architecture (docs/flashing.md)`,
          );
        }
      }
      files.push({ path: `node_modules/${pkg}/${f}`, data });
    }
  }

  const nowMs = options.nowMs ?? Date.now();
  const meta: BundleMeta = {
    hardware: options.hardware,
    version: options.version ?? FIRMWARE_VERSION,
    securityCounter: options.securityCounter ?? SECURITY_COUNTER,
    createdAtMs: nowMs,
    expiresAtMs: nowMs + (options.expiresDays ?? DEFAULT_EXPIRY_DAYS) * 86_400_000,
    development,
    entry: DAEMON_FILE,
  };
  const bundle = buildBundle(files, meta, key);
  const board = options.hardware.split('/')[1];
  const out =
    options.out ??
    join(
      REPO,
      'dist',
      'bundles',
      `open-doorbell-${meta.version}-${board}${development ? '-dev' : ''}.bundle`,
    );
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, bundle, { mode: 0o644 });
  return { path: resolve(out), bytes: bundle.length, key, development, meta };
}
