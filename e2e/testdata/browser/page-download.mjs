// Drives Debian's Chromium (puppeteer-core) through a download page of `seedctl publish --page`
// and prints what the page shows as one line "RESULT {json}". Run by e2e/browser_page_test.go:
//   node page-download.mjs MODE NODE_MODULES CHROMIUM PAGE_URL PROFILE_DIR DOWNLOAD_DIR PID_FILE TIMEOUT_MS
// MODE download: reach the button with the keyboard, press Enter, wait for the page to say it is
//   done and for Chromium to save the file the page hands over.
// MODE no-webrtc: the page in a browser without RTCPeerConnection: what it offers instead.
// MODE press: press the button and wait for the page's status to change (a failure path).
// Chromium's PID goes to PID_FILE as soon as it runs, so that the test can stop it by PID.
import { launch } from './launch.mjs';

const [mode, modules, chromium, url, profile, downloads, pidFile, timeoutMs] = process.argv.slice(2);
const timeout = Number(timeoutMs);
const { browser, mark } = await launch({ modules, chromium, profile, pidFile, timeout });

// What the page shows, read in the page.
const show = () => {
  const root = document.querySelector('.webswarm-download');
  const bar = root.querySelector('progress');
  const save = root.querySelector('a[download]');
  const button = root.querySelector('button');
  const direct = root.querySelector('[data-ws="direct"]');
  return {
    sha1: save && save.dataset.sha1,
    saveName: save && save.download,
    saveFocused: !!save && document.activeElement === save,
    fromWebSeed: Number(root.dataset.fromWebSeed || 0),
    fromPeers: Number(root.dataset.fromPeers || 0),
    progress: bar.value,
    progressText: bar.getAttribute('aria-valuetext'),
    percent: root.querySelector('[data-ws="percent"]').textContent,
    status: root.querySelector('[data-ws="status"]').textContent,
    buttonHidden: button.hidden,
    buttonDisabled: button.disabled,
    direct: direct.href,
    directFocused: document.activeElement === direct,
  };
};

try {
  const cdp = await browser.target().createCDPSession();
  await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads, eventsEnabled: true });
  // The Blob download the page starts when it is done: wait until Chromium has written it.
  const saved = new Promise((resolve) => {
    cdp.on('Browser.downloadProgress', (e) => { if (e.state !== 'inProgress') resolve(e.state); });
  });
  const page = await browser.newPage();
  page.on('console', (m) => console.error('console.' + m.type() + ': ' + m.text()));
  page.on('pageerror', (e) => console.error('pageerror: ' + e.message));
  page.on('requestfailed', (r) => console.error('requestfailed: ' + r.url() + ' ' + (r.failure() && r.failure().errorText)));
  if (mode === 'no-webrtc') {
    await page.evaluateOnNewDocument(() => { delete window.RTCPeerConnection; });
  }
  await page.goto(url, { waitUntil: 'load', timeout });
  let result;
  if (mode === 'no-webrtc') {
    await page.waitForFunction(() => document.querySelector('[data-ws="status"]').textContent !== '', { timeout, polling: 100 });
    result = await page.evaluate(show);
  } else {
    await page.waitForSelector('button[data-ws="start"]:not([hidden])', { timeout });
    // Keyboard only: Tab to the button, Enter.
    let tabs = 0;
    for (; tabs < 10; tabs++) {
      await page.keyboard.press('Tab');
      if (await page.evaluate(() => document.activeElement && document.activeElement.dataset.ws === 'start')) break;
    }
    await page.keyboard.press('Enter');
    mark('page loaded, button pressed after ' + (tabs + 1) + ' Tab');
    if (mode === 'press') {
      await page.waitForFunction(() => /direct download/.test(document.querySelector('[data-ws="status"]').textContent), { timeout, polling: 100 });
      result = await page.evaluate(show);
    } else {
      await page.waitForFunction(() => document.querySelector('.webswarm-download').dataset.done === 'true', { timeout, polling: 200 });
      mark('the page says done');
      result = await page.evaluate(show);
      let timer;
      result.saved = await Promise.race([saved, new Promise((resolve) => { timer = setTimeout(resolve, timeout, 'timeout'); })]);
      clearTimeout(timer); // or node waits for it after the browser is closed
      mark('download ' + result.saved);
    }
    result.tabs = tabs + 1;
  }
  console.log('RESULT ' + JSON.stringify(result));
} finally {
  await browser.close();
}
