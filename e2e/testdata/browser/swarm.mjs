// Drives Debian's Chromium (puppeteer-core) through a download page of `seedctl publish --page`
// in N browser contexts (N visitors who share nothing but the swarm), one after the other,
// then keeps them open, seeding, until RELEASE_FILE exists. Run by e2e/browser_swarm_test.go inside a private
// network namespace (WebRTC needs an address other than lo):
//   node swarm.mjs NODE_MODULES CHROMIUM PAGE_URL PROFILE_DIR PID_FILE TIMEOUT_MS N RELEASE_FILE
// Prints "RESULT [{sha1, fromWebSeed, fromPeers, status}, ...]" once every page says it is done.
import { existsSync } from 'node:fs';
import { launch } from './launch.mjs';

const [modules, chromium, url, profile, pidFile, timeoutMs, n, release] = process.argv.slice(2);
const timeout = Number(timeoutMs);
const t0 = Date.now();
// Host candidates as real addresses (10.77.0.1 in the test's namespace), not mDNS names.
const { browser, mark } = await launch({ modules, chromium, profile, pidFile, timeout,
  extraArgs: ['--disable-features=WebRtcHideLocalIpsWithMdns'] });

const read = () => {
  const root = document.querySelector('.webswarm-download');
  const save = root.querySelector('a[download]');
  return {
    done: root.dataset.done === 'true',
    sha1: save ? save.dataset.sha1 : '',
    fromWebSeed: Number(root.dataset.fromWebSeed || 0),
    fromPeers: Number(root.dataset.fromPeers || 0),
    status: root.querySelector('[data-ws="status"]').textContent,
  };
};

try {
  const pages = [];
  for (let i = 0; i < Number(n); i++) {
    const ctx = await browser.createBrowserContext();
    const page = await ctx.newPage();
    page.on('console', (m) => mark('page ' + i + ' console: ' + m.text()));
    page.on('pageerror', (e) => mark('page ' + i + ' error: ' + e.message));
    await page.goto(url, { waitUntil: 'load', timeout });
    await page.waitForSelector('.webswarm-download button:not([hidden])', { timeout });
    pages.push(page);
  }
  // The visitors press the button one after the other, each once the one before is done
  // (and seeds): two that start together fetch the same pieces from the web seed in the same
  // order and have nothing to give each other, while a later one meets a seeder.
  const results = [];
  for (const [i, p] of pages.entries()) {
    await p.click('.webswarm-download button');
    mark('page ' + i + ' started');
    await p.waitForFunction(() => {
      const root = document.querySelector('.webswarm-download');
      return root.dataset.done === 'true' || /failed/.test(root.querySelector('[data-ws="status"]').textContent);
    }, { timeout, polling: 200 });
    const r = await p.evaluate(read);
    mark('page ' + i + ': ' + JSON.stringify(r));
    results.push(r);
  }
  console.log('RESULT ' + JSON.stringify(results));
  // Stay in the swarm (the pages seed) until the test has looked at the tracker.
  while (!existsSync(release) && Date.now() - t0 < timeout) {
    await new Promise((r) => setTimeout(r, 100));
  }
} finally {
  await browser.close();
}
