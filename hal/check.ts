/**
 * Argument checks for options and controls that bypass the config schema.
 * Each throws a TypeError naming the field and the value it got.
 */
export function checkNumber(
  field: string,
  value: unknown,
  range: { min: number; max: number; integer?: boolean; unit?: string },
): number {
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    value >= range.min &&
    value <= range.max &&
    (!range.integer || Number.isInteger(value));
  if (!ok) {
    const what = range.integer ? 'an integer' : `a finite number${range.unit ? ` of ${range.unit}` : ''}`;
    throw new TypeError(`${field} must be ${what} in ${range.min}..${range.max}, got ${String(value)}`);
  }
  return value;
}
