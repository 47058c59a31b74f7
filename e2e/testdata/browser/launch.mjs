// Starts Debian's Chromium through puppeteer-core for the browser tests, the way the machine
// allows it: no sandbox (the tests run as root), nothing that reaches for the network, a fresh
// profile; writes its PID to pidFile at once, so that the Go test can stop it by PID.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';

// launch returns the browser and a mark(what) that logs seconds since the start to stderr.
// extraArgs are Chromium flags a test needs beyond those.
export async function launch({ modules, chromium, profile, pidFile, timeout, extraArgs = [] }) {
  const puppeteer = createRequire(modules + '/')('puppeteer-core');
  const t0 = Date.now();
  const mark = (what) => console.error(((Date.now() - t0) / 1000).toFixed(1) + ' s: ' + what);
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...extraArgs],
    protocolTimeout: timeout,
  });
  writeFileSync(pidFile, String(browser.process().pid));
  mark('chromium started, pid ' + browser.process().pid);
  return { browser, mark };
}
