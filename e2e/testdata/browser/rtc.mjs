// Drives Debian's Chromium (puppeteer-core) as a WebTorrent peer of seedctl over WebRTC, with
// no download page: a blank page of the test's site loads webtorrent.min.js and adds a torrent
// whose only source is a WebRTC peer. Run by e2e/webrtc_browser_test.go and
// webrtc_mixed_test.go inside a private network namespace (WebRTC needs an address other
// than lo):
//   node rtc.mjs get NODE_MODULES CHROMIUM PAGE_URL PROFILE_DIR PID_FILE TIMEOUT_MS TORRENT_URL [RELEASE_FILE]
// get: fetch TORRENT_URL, download it, hash the file in the page; logs "console: progress P"
//   as it goes and prints "RESULT {sha1, length, fromPeers, fromWebSeed, peers}" once done;
//   with RELEASE_FILE, the page stays in the swarm (seeding) until that file exists.
//   node rtc.mjs seed NODE_MODULES CHROMIUM PAGE_URL PROFILE_DIR PID_FILE TIMEOUT_MS FILE ANNOUNCE_URL TORRENT_OUT RELEASE_FILE
// seed: give FILE to the page's file input (as a visitor picks a file), seed it with
//   ANNOUNCE_URL as the only tracker, write the .torrent the page made to TORRENT_OUT and print
//   "RESULT {infoHash, length}"; then keep seeding until RELEASE_FILE exists, and print
//   "RESULT2 {uploaded, peers}".
// Chromium's PID goes to PID_FILE as soon as it runs, so that the test can stop it by PID.
import { existsSync, writeFileSync } from 'node:fs';
import { launch } from './launch.mjs';

const [mode, modules, chromium, url, profile, pidFile, timeoutMs, arg, announce, torrentOut, seedRelease] = process.argv.slice(2);
// The release file is get's second argument, seed's fourth.
const release = mode === 'get' ? announce : seedRelease;
const t0 = Date.now();
const timeout = Number(timeoutMs);
// Chromium's WebRTC defaults, as a visitor's browser has them: WebRtcHideLocalIpsWithMdns stays
// on (swarm.mjs turns it off so that two browsers meet), and seedctl must connect all the same.
const { browser, mark } = await launch({ modules, chromium, profile, pidFile, timeout });

// get runs in the page: the torrent's bytes come only from WebRTC peers (it has no web seed).
async function get (torrentURL) {
  const { default: WebTorrent } = await import('/webtorrent/webtorrent.min.js');
  const res = await fetch(torrentURL);
  if (!res.ok) throw new Error('the .torrent: ' + res.status);
  const meta = new Uint8Array(await res.arrayBuffer());
  // No STUN server: host candidates only, as nothing outside the namespace may be reached.
  const client = new WebTorrent({ tracker: { rtcConfig: { iceServers: [] } } });
  const from = { webSeed: 0, peers: 0 };
  const torrent = client.add(meta);
  torrent.on('wire', (wire) => {
    console.log('wire ' + wire.type + ' ' + (wire.remoteAddress || ''));
    wire.on('close', () => console.log('wire closed ' + wire.type + ' ' + (wire.remoteAddress || '')));
    wire.on('download', (n) => { if (wire.type === 'webSeed') from.webSeed += n; else from.peers += n; });
  });
  torrent.on('warning', (e) => console.log('warning: ' + (e.message || e)));
  // "progress P" (0 to 1) each time it moved, at most twice a second: a test acts mid-transfer.
  let shown = -1;
  const progress = setInterval(() => {
    if (torrent.progress !== shown) console.log('progress ' + (shown = torrent.progress).toFixed(4));
  }, 500);
  await new Promise((resolve, reject) => {
    torrent.on('done', resolve);
    torrent.on('error', reject);
    client.on('error', reject);
  }).finally(() => clearInterval(progress));
  const blob = await torrent.files[0].blob();
  const sum = new Uint8Array(await crypto.subtle.digest('SHA-1', await blob.arrayBuffer()));
  return {
    sha1: Array.from(sum, (b) => b.toString(16).padStart(2, '0')).join(''),
    length: blob.size,
    fromPeers: from.peers,
    fromWebSeed: from.webSeed,
    peers: torrent.wires.filter((w) => w.type !== 'webSeed').length,
  };
}

// seed runs in the page: the file the visitor picked, seeded with only the ws:// tracker. The
// client stays in window.rtcClient, so that the driver can read what it uploaded.
async function seed (announceURL) {
  const { default: WebTorrent } = await import('/webtorrent/webtorrent.min.js');
  const file = document.querySelector('input[type=file]').files[0];
  const client = new WebTorrent({ tracker: { rtcConfig: { iceServers: [] } } });
  window.rtcClient = client;
  const torrent = await new Promise((resolve, reject) => {
    client.on('error', reject);
    client.seed(file, { announce: [announceURL] }, resolve);
  });
  torrent.on('wire', (wire) => console.log('wire ' + wire.type + ' ' + (wire.remoteAddress || '')));
  torrent.on('warning', (e) => console.log('warning: ' + (e.message || e)));
  let bin = '';
  for (const b of torrent.torrentFile) bin += String.fromCharCode(b);
  return { infoHash: torrent.infoHash, torrent: btoa(bin), length: torrent.length };
}

// waitRelease returns once the release file exists (or the run's time is up).
async function waitRelease () {
  while (!existsSync(release) && Date.now() - t0 < timeout) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

try {
  const page = await browser.newPage();
  page.on('console', (m) => mark('console: ' + m.text()));
  page.on('pageerror', (e) => mark('error: ' + e.message));
  await page.goto(url, { waitUntil: 'load', timeout });
  let r;
  switch (mode) {
    case 'get':
      r = await page.evaluate(get, arg);
      if (release) {
        console.log('RESULT ' + JSON.stringify(r));
        r = null;
        await waitRelease();
      }
      break;
    case 'seed': {
      const input = await page.waitForSelector('input[type=file]', { timeout });
      await input.uploadFile(arg);
      r = await page.evaluate(seed, announce);
      writeFileSync(torrentOut, Buffer.from(r.torrent, 'base64'));
      delete r.torrent;
      console.log('RESULT ' + JSON.stringify(r));
      mark('seeding ' + r.infoHash);
      await waitRelease();
      r = await page.evaluate(() => ({
        uploaded: window.rtcClient.torrents[0].uploaded,
        peers: window.rtcClient.torrents[0].wires.length,
      }));
      console.log('RESULT2 ' + JSON.stringify(r));
      r = null;
      break;
    }
    default:
      throw new Error('unknown mode ' + mode);
  }
  mark('done');
  if (r) console.log('RESULT ' + JSON.stringify(r));
} finally {
  await browser.close();
}
