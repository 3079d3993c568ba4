// Reconnect backoff: exponential growth with full jitter and a cap.

/** BackoffOptions configures the delay between failed transport attempts. */
export interface BackoffOptions {
  /** initialDelay is the ceiling of the first jittered delay in ms (default 250). */
  initialDelay?: number;
  /** maxDelay caps the ceiling in ms (default 15,000). */
  maxDelay?: number;
  /** multiplier grows the ceiling per failed attempt (default 2). */
  multiplier?: number;
}

/**
 * backoffDelay returns the delay before attempt n (0-based count of
 * consecutive failures): 0 for the first retry after a working transport was
 * lost, then uniformly random in [0, min(maxDelay, initialDelay·multiplier^(n-1))].
 */
export function backoffDelay(n: number, o: Required<BackoffOptions>, random: () => number = Math.random): number {
  if (n <= 0) return 0;
  const ceiling = Math.min(o.maxDelay, o.initialDelay * Math.pow(o.multiplier, n - 1));
  return Math.floor(random() * ceiling);
}

export function normaliseBackoff(b?: BackoffOptions): Required<BackoffOptions> {
  return {
    initialDelay: positive(b?.initialDelay, 250),
    maxDelay: positive(b?.maxDelay, 15_000),
    multiplier: Math.max(1, b?.multiplier ?? 2),
  };
}

function positive(v: number | undefined, def: number): number {
  return v !== undefined && Number.isFinite(v) && v >= 0 ? v : def;
}
