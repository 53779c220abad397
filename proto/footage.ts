/**
 * The footage part of the wire contract that both ends check.
 *
 * Item ids: 13 decimal digits of the store's sequence number (not a time: an id tells nothing of
 * when its item was recorded), a dash, 12 random hex digits. Sorting ids sorts items in the
 * order they were stored.
 */
export const ITEM_ID_PATTERN = /^\d{13}-[0-9a-f]{12}$/;

/**
 * Ciphertext bytes per ItemChunk at most (240 KiB): a sealed chunk (header,
 * fields, signature: under 1 KiB more) stays below the `data` topic's 256 KiB
 * envelope cap (MAX_DATA_ENVELOPE_BYTES).
 */
export const ITEM_CHUNK_BYTES = 240 * 1024;

/** The largest window one FetchItem may ask for (its max_bytes). */
export const MAX_WINDOW_BYTES = 4 * 1024 * 1024;
