// The A/B slot library, in three parts: the boot state and layout (boot-state.ts), installing
// a bundle (install.ts) and the moves between slots (transitions.ts). Importers take it from here;
// the parts' own helpers stay theirs.

export {
  BOOT_SELECT_FILE,
  type BoardTrust,
  type BootState,
  bootSelectPath,
  bootStatePath,
  bootStateSchema,
  currentLink,
  currentSlot,
  DEFAULT_MAX_TRIAL_ATTEMPTS,
  FREE_SPACE_MARGIN_BYTES,
  INITIAL_BOOT_STATE,
  inactiveSlot,
  otherSlot,
  readBootState,
  SLOT_MANIFEST_FILE,
  SLOT_NAMES,
  SlotError,
  type SlotErrorKind,
  type SlotName,
  type SlotOptions,
  slotDir,
  slotsDir,
} from './boot-state.js';
export {
  freeBytes,
  type InstallResult,
  installToInactiveSlot,
  verifySlot,
} from './install.js';
export {
  type BootSelection,
  commit,
  rollback,
  selectSlotAtBoot,
  switchToTrial,
} from './transitions.js';
