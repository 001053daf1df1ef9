/**
 * Build identity. `build.ts` replaces these globals with literals through `define`;
 * running from source (bun run src/main.ts) falls back to "dev".
 */
declare const WEFT_VERSION: string | undefined;
declare const WEFT_COMMIT: string | undefined;

export const version: string = typeof WEFT_VERSION === "string" ? WEFT_VERSION : "0.0.0-dev";
export const commit: string = typeof WEFT_COMMIT === "string" ? WEFT_COMMIT : "unknown";
