import type { doorbell } from './gen/doorbell.js';

/** The longest errorMessage a CommandResult carries: a refusal explains itself, it does not echo input. */
export const MAX_ERROR_MESSAGE_CHARS = 200;

/** A refused command's result: its typed kind and a message cut to MAX_ERROR_MESSAGE_CHARS. */
export function failure(kind: doorbell.v1.ErrorKind, message: string): doorbell.v1.ICommandResult {
  return { ok: false, errorKind: kind, errorMessage: message.slice(0, MAX_ERROR_MESSAGE_CHARS) };
}
