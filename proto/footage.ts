/**
 * The footage part of the wire contract that both ends check.
 *
 * Item ids: 13 decimal digits of the store time in ms (sorts lexicographically until the year
 * 2286), a dash, 12 random hex digits. Sorting ids sorts items by the time they were stored.
 */
export const ITEM_ID_PATTERN = /^\d{13}-[0-9a-f]{12}$/;

/** Ciphertext bytes per ItemChunk at most: a sealed chunk stays below the 16 KiB envelope cap. */
export const ITEM_CHUNK_BYTES = 12_288;
