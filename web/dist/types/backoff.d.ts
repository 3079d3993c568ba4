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
export declare function backoffDelay(n: number, o: Required<BackoffOptions>, random?: () => number): number;
export declare function normaliseBackoff(b?: BackoffOptions): Required<BackoffOptions>;
