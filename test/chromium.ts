import { accessSync, constants } from 'node:fs';

/** How the browser tests start Debian's chromium: headless, no sandbox (containers), nothing fetched in the background. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

/**
 * Debian's chromium, or undefined when it is not installed. Under CI=true its absence is an error:
 * `.ci/run` installs it, and a skipped browser test would pass silently.
 */
export function chromiumPath(what: string): string | undefined {
  const path = '/usr/bin/chromium';
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {}
  if (process.env.CI === 'true') throw new Error(`${path} is missing; CI needs it for ${what} (apt-get install chromium)`);
  console.warn(`skipping: ${path} is not installed, so ${what} cannot run (apt-get install chromium)`);
  return undefined;
}
