import { type Browser, chromium, type Page } from 'playwright-core';

/**
 * Debian's Chromium, headless, for tests. One place for its flags:
 *
 * - `--disable-dev-shm-usage`: Chromium keeps shared memory in /dev/shm and
 *   crashes when that is small (a container's 64 MiB). Debian's launcher adds
 *   the flag only when its `findmnt` check reads one number, and that check
 *   breaks when /dev/shm is mounted twice, so it is always passed here.
 * - no GPU, no background networking, no component updates, no sync, no QUIC:
 *   this machine's network is closed and has no GPU, and Chromium's attempts
 *   to reach Google's hosts only add noise and refused connections.
 */
export const CHROMIUM_ARGS = [
  '--disable-dev-shm-usage',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

export interface TestBrowser {
  browser: Browser;
  /** A new page whose crash fails the test with what the browser printed, not "target closed". */
  newPage(): Promise<Page>;
  /** What the browser process printed, most recent last (for failure messages). */
  log(): string;
  close(): Promise<void>;
}

const LOG_LINES = 200;

export async function launchChromium(): Promise<TestBrowser> {
  const lines: string[] = [];
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    logger: {
      isEnabled: (name) => name === 'browser',
      log: (_name, _severity, message) => {
        lines.push(String(message));
        if (lines.length > LOG_LINES) lines.shift();
      },
    },
  });
  const log = () => lines.join('\n');
  return {
    browser,
    log,
    async newPage() {
      const page = await browser.newPage();
      page.on('crash', () => lines.push('[test] the page crashed'));
      return page;
    },
    close: () => browser.close(),
  };
}

/**
 * Runs `step`; when it fails because the page or browser went away, the error
 * carries the browser's own output, so a crash says why it crashed.
 */
export async function withBrowserLog<T>(b: TestBrowser, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof Error && /closed|crash/i.test(err.message)) {
      err.message += `\n--- chromium output ---\n${b.log()}`;
    }
    throw err;
  }
}
