/** Percentile by nearest rank over a copy of `values` (ms). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

export const round3 = (n: number): number => Math.round(n * 1000) / 1000;

export function summary(values: readonly number[]): {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
} {
  return {
    n: values.length,
    p50: round3(percentile(values, 50)),
    p90: round3(percentile(values, 90)),
    p99: round3(percentile(values, 99)),
    max: round3(Math.max(...values)),
  };
}
