// One headless Chromium (Debian's, through puppeteer-core) as WebTorrent peers for the WebRTC
// benchmark, driven by webrtcbench.py with one command a line on stdin and one answer a line
// on stdout:
//   node pages.mjs NODE_MODULES CHROMIUM PAGE_URL PROFILE_DIR PID_FILE TIMEOUT_MS
// Commands:
//   get TORRENT_URL      a fresh browser context downloads the torrent and closes again;
//                        answers "RESULT {ms, firstWireMs, length, sha1, fromPeers, fromWebSeed, peers}"
//                        (ms: torrent added -> every piece verified; the SHA-1 is taken after)
//   swarm N TORRENT_URL  N contexts download it at once; answers "RESULT [{...}, ...]"
//   seed FILE ANNOUNCE_URL TORRENT_OUT
//                        the page is given FILE through its file input and seeds it with
//                        webtorrent, ANNOUNCE_URL its only tracker; writes the .torrent it made
//                        to TORRENT_OUT and answers "SEEDING {infoHash, length}"; keeps seeding
//   uploaded             answers "UPLOADED {uploaded, peers}" of the seeding page
//   quit                 closes Chromium and exits
// A failed command answers "ERROR message". Chromium's PID goes to PID_FILE as soon as it
// runs; it leads its own process group, which the benchmark stops by that PID.
import { createInterface } from 'node:readline';
import { writeFileSync } from 'node:fs';
import { launch } from '../../e2e/testdata/browser/launch.mjs';

const [modules, chromium, pageURL, profile, pidFile, timeoutMs] = process.argv.slice(2);
const timeout = Number(timeoutMs);
// Host candidates as real addresses (the namespace's veth address), not mDNS names, so that
// two browsers meet; no throttling of pages that are not in front (the seeder, the swarm).
const { browser, mark } = await launch({
  modules, chromium, profile, pidFile, timeout,
  extraArgs: ['--disable-features=WebRtcHideLocalIpsWithMdns', '--disable-background-timer-throttling',
    '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows'],
});

// download runs in a page: the torrent's bytes can come only from WebRTC peers.
async function download (torrentURL) {
  const { default: WebTorrent } = await import('/webtorrent/webtorrent.min.js');
  const res = await fetch(torrentURL);
  if (!res.ok) throw new Error('the .torrent: ' + res.status);
  const meta = new Uint8Array(await res.arrayBuffer());
  const client = new WebTorrent({ tracker: { rtcConfig: { iceServers: [] } } });
  const from = { webSeed: 0, peers: 0 };
  const t0 = performance.now();
  let firstWire = 0;
  const torrent = client.add(meta);
  torrent.on('wire', (wire) => {
    if (!firstWire) firstWire = performance.now();
    wire.on('download', (n) => { if (wire.type === 'webSeed') from.webSeed += n; else from.peers += n; });
  });
  await new Promise((resolve, reject) => {
    torrent.on('done', resolve);
    torrent.on('error', reject);
    client.on('error', reject);
  });
  const ms = performance.now() - t0;
  const peers = torrent.wires.filter((w) => w.type !== 'webSeed').length;
  const blob = await torrent.files[0].blob();
  const sum = new Uint8Array(await crypto.subtle.digest('SHA-1', await blob.arrayBuffer()));
  await new Promise((resolve) => client.destroy(resolve));
  return {
    ms,
    firstWireMs: firstWire ? firstWire - t0 : -1,
    length: blob.size,
    sha1: Array.from(sum, (b) => b.toString(16).padStart(2, '0')).join(''),
    fromPeers: from.peers,
    fromWebSeed: from.webSeed,
    peers,
  };
}

// seedFile runs in the page: the file the visitor picked, seeded with only announceURL.
async function seedFile (announceURL) {
  const { default: WebTorrent } = await import('/webtorrent/webtorrent.min.js');
  const file = document.querySelector('input[type=file]').files[0];
  const client = new WebTorrent({ tracker: { rtcConfig: { iceServers: [] } } });
  window.benchClient = client;
  const torrent = await new Promise((resolve, reject) => {
    client.on('error', reject);
    client.seed(file, { announce: [announceURL] }, resolve);
  });
  let bin = '';
  for (const b of torrent.torrentFile) bin += String.fromCharCode(b);
  return { infoHash: torrent.infoHash, torrent: btoa(bin), length: torrent.length };
}

// fresh opens the benchmark's blank page in a new browser context (a visitor of its own).
async function fresh (name) {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  page.on('console', (m) => mark(name + ' console: ' + m.text()));
  page.on('pageerror', (e) => mark(name + ' error: ' + e.message));
  await page.goto(pageURL, { waitUntil: 'load', timeout });
  return { ctx, page };
}

async function get (torrentURL, name) {
  const { ctx, page } = await fresh(name);
  try {
    return await page.evaluate(download, torrentURL);
  } finally {
    await ctx.close();
  }
}

let seeder = null;
const commands = {
  async get (url) { return 'RESULT ' + JSON.stringify(await get(url, 'get')); },
  async swarm (n, url) {
    const runs = [];
    for (let i = 0; i < Number(n); i++) runs.push(get(url, 'swarm ' + i));
    return 'RESULT ' + JSON.stringify(await Promise.all(runs));
  },
  async seed (file, announce, out) {
    if (seeder) throw new Error('already seeding');
    seeder = await fresh('seed');
    const input = await seeder.page.waitForSelector('input[type=file]', { timeout });
    await input.uploadFile(file);
    const r = await seeder.page.evaluate(seedFile, announce);
    writeFileSync(out, Buffer.from(r.torrent, 'base64'));
    delete r.torrent;
    return 'SEEDING ' + JSON.stringify(r);
  },
  async uploaded () {
    if (!seeder) throw new Error('not seeding');
    const r = await seeder.page.evaluate(() => ({
      uploaded: window.benchClient.torrents[0].uploaded,
      peers: window.benchClient.torrents[0].wires.length,
    }));
    return 'UPLOADED ' + JSON.stringify(r);
  },
};

try {
  console.log('READY');
  for await (const line of createInterface({ input: process.stdin })) {
    const [cmd, ...args] = line.trim().split(' ');
    if (cmd === 'quit') break;
    if (!commands[cmd]) {
      console.log('ERROR unknown command ' + cmd);
      continue;
    }
    try {
      console.log(await commands[cmd](...args));
    } catch (e) {
      console.log('ERROR ' + String(e.message || e).replace(/\n/g, ' '));
    }
  }
} finally {
  await browser.close();
}
