#!/usr/bin/env node
// `node boot-select.js --root DIR`: run by the unit's ExecStartPre before the daemon.
// Chooses the slot (see selectSlotAtBoot), points slots/current at it and prints the choice
// as one JSON line. Exit 0: slots/current is valid; exit 1: nothing bootable.
import { parseArgs } from 'node:util';
import { loadBoardTrust } from './board-files.js';
import { selectSlotAtBoot } from './slots.js';

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { root: { type: 'string' } }, strict: true });
  if (!values.root) {
    process.stderr.write('usage: boot-select --root DIR\n');
    return 2;
  }
  // A slot was fully verified when installed; development builds were allowed or not then.
  const trust = await loadBoardTrust(values.root, true);
  const choice = await selectSlotAtBoot(values.root, { trust });
  const { slot, mode, attempt, reason, manifest } = choice;
  process.stdout.write(`${JSON.stringify({ slot, mode, attempt, reason, version: manifest.version })}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`boot-select: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
