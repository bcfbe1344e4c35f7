/**
 * The console in Debian's Chromium (Playwright, headless), shared by bench/console-scale.ts
 * (Redis + SQLite, 20,000 locks) and bench/scale.ts (each other backend at 10,000): the browser
 * launch and login, the first-rows / whole-list page loads, the scroll frame timing and its
 * floor, and the clock calibration of the live-update part.
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright';

import type { ConsoleServer } from '../../test/console/harness';
import { scaled, type BenchContext } from './context';
import { percentile, summarize, type Summary } from './stats';

export const ROW_SELECTOR = '[role="row"][data-lock-key]';
const SERVICES = ['billing', 'orders', 'reports', 'search', 'mail'];

/** Epoch ms on this process's monotonic clock (comparable with the page's `performance.timeOrigin + performance.now()`). */
export const epochNow = () => performance.timeOrigin + performance.now();

/** Debian's Chromium, headless, as the bench drives it; closed by ctx's deferred cleanup. */
export async function launchBrowser(ctx: BenchContext): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  ctx.defer(() => browser.close());
  ctx.versions.chromium = browser.version();
  return browser;
}

/** A 1440×900 browser context logged in to `server` as `token`, with the row observer installed. */
export async function consoleContext(browser: Browser, server: ConsoleServer, token: string): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  await context.addInitScript({ content: ROW_OBSERVER });
  const login = await context.request.post(`${server.url}/api/login`, { data: { token }, headers: { origin: server.url } });
  if (login.status() !== 200) throw new Error(`login: HTTP ${login.status()} ${await login.text()}`);
  return context;
}

export interface PageLoad {
  /** The page's /api/locks requests: query, time, size. */
  lists: string;
  /** ms from navigation start to the first lock row in the DOM. */
  firstRows: number;
  /** ms from navigation start to the last change of the count above the table, and that count. */
  completeAt: number;
  completeN: number;
  fcp: number | null;
  listMs: number | null;
  countText: string;
}

/**
 * `n` fresh navigations to /locks?sort=key, each measured in the page from navigation start: the
 * first lock row, first contentful paint, and the moment the count above the table reaches
 * `full` (or, a truncated listing, stops changing for 3 s). Returns the last page still open
 * (for the scroll figures).
 */
export async function measureLoads(context: BrowserContext, server: ConsoleServer, n: number, full: number): Promise<{ loads: PageLoad[]; page: Page }> {
  const loads: PageLoad[] = [];
  let last: Page | undefined;
  for (let i = 0; i < n; i++) {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('response', (r) => {
      if (!r.ok() && r.url().includes('/api/')) problems.push(`HTTP ${r.status()} ${r.url()}`);
    });
    await page.goto(`${server.url}/locks?sort=key`, { waitUntil: 'domcontentloaded', timeout: 60_000 });
    const h = await page
      .waitForFunction(() => (window as unknown as { __firstRowAt: number | null }).__firstRowAt, null, { timeout: 60_000, polling: 50 })
      .catch(async (err: unknown) => {
        const said = await page.getByTestId('lock-count').textContent().catch(() => null);
        throw new Error(`no lock row 60 s after navigation; the page says "${said}"; ${problems.join('; ') || 'no page errors'}`, { cause: err });
      });
    const firstRows = (await h.jsonValue()) as number;
    await page.locator(ROW_SELECTOR).first().waitFor({ state: 'visible', timeout: 10_000 });
    const m = await page.evaluate(() => {
      const fcp = performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null;
      const list = performance.getEntriesByType('resource').find((e) => e.name.includes('/api/locks')) as PerformanceResourceTiming | undefined;
      return { fcp, listMs: list ? list.responseEnd - list.startTime : null };
    });
    const done = await page.waitForFunction(
      `(() => { const w = window; return w.__countN === ${full} || (w.__countN > 0 && performance.now() - w.__countAt > 3000) ? { at: w.__countAt, n: w.__countN } : null; })()`,
      null,
      { timeout: 60_000, polling: 50 },
    );
    const complete = (await done.jsonValue()) as { at: number; n: number };
    const lists = (await page.evaluate(
      `performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/locks')).map((e) => new URL(e.name).search + ' ' + Math.round(e.responseEnd - e.startTime) + ' ms ' + Math.round(e.encodedBodySize / 1000) + ' kB').join(', ')`,
    )) as string;
    const countText = (await page.getByTestId('lock-count').textContent({ timeout: 10_000 })) ?? '';
    loads.push({ lists, firstRows, completeAt: complete.at, completeN: complete.n, fcp: m.fcp, listMs: m.listMs, countText: countText.trim() });
    if (i < n - 1) await page.close();
    else last = page;
  }
  return { loads, page: last! };
}

/**
 * Installed before any page script: stamps when each lock row enters or leaves the DOM.
 * In-page code is kept as source text: tsx (esbuild keepNames) would wrap nested functions of a
 * passed function in a `__name()` helper that does not exist in the page.
 */
export const ROW_OBSERVER = `(() => {
  const w = window;
  w.__seen = {};
  w.__gone = {};
  w.__firstRowAt = null;
  w.__countN = 0;
  w.__countAt = null;
  const SEL = '${ROW_SELECTOR}';
  const visit = (el, into, at) => {
    const key = el.getAttribute('data-lock-key');
    if (key === null) return;
    const id = el.getAttribute('data-backend') + '\\n' + key;
    if (!(id in into)) into[id] = at;
  };
  const scan = (n, into, at) => {
    if (n.nodeType !== 1) return;
    if (n.matches(SEL)) visit(n, into, at);
    n.querySelectorAll(SEL).forEach((e) => visit(e, into, at));
  };
  new MutationObserver((records) => {
    const at = performance.timeOrigin + performance.now();
    let added = false;
    // Row elements recycled for another lock (components/locks/lock-window.tsx): per element, the
    // lock it showed before this batch (old attribute values) left, the one it shows now entered.
    const reused = new Map();
    for (const r of records) {
      if (r.type === 'childList') {
        r.addedNodes.forEach((n) => scan(n, w.__seen, at));
        r.removedNodes.forEach((n) => scan(n, w.__gone, at));
        added = added || r.addedNodes.length > 0;
      } else if (r.type === 'attributes' && r.target.matches(SEL)) {
        const old = reused.get(r.target) || {};
        if (!(r.attributeName in old)) old[r.attributeName] = r.oldValue;
        reused.set(r.target, old);
      }
    }
    reused.forEach((old, el) => {
      const key = 'data-lock-key' in old ? old['data-lock-key'] : el.getAttribute('data-lock-key');
      const backend = 'data-backend' in old ? old['data-backend'] : el.getAttribute('data-backend');
      const before = backend + '\\n' + key;
      const now = el.getAttribute('data-backend') + '\\n' + el.getAttribute('data-lock-key');
      if (before === now) return;
      if (key !== null && !(before in w.__gone)) w.__gone[before] = at;
      visit(el, w.__seen, at);
    });
    if (added && w.__firstRowAt === null && document.querySelector(SEL)) w.__firstRowAt = performance.now();
    // The count above the table, each time its number changes: the last one is the whole list.
    const c = document.querySelector('[data-testid="lock-count"]');
    const n = c ? Number((/([\\d,]+) held lock/.exec(c.textContent || '') || ['', ''])[1].replace(/,/g, '')) : 0;
    if (n > 0 && n !== w.__countN) { w.__countN = n; w.__countAt = performance.now(); }
  }).observe(document, { childList: true, subtree: true, characterData: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-lock-key', 'data-backend'] });
})();`;

/** A static page shaped like the lock table: a 900 px scrolling region of `n` 36 px rows. */
export function staticRows(n: number): string {
  const rows: string[] = [];
  for (let i = 0; i < n; i++) {
    const svc = SERVICES[i % SERVICES.length]!;
    rows.push(
      `<div role="row" data-lock-key="k${i}" style="position:absolute;top:${i * 36}px;left:0;right:0;height:36px;display:grid;grid-template-columns:3fr 1fr 2fr 1fr 1fr 1fr;font:12px monospace;border-bottom:1px solid #ddd">` +
        `<span>${svc}/shard-${String(i).padStart(5, '0')}:job</span><span>cache</span><span>worker-${i % 64}.${svc}.internal</span><span>OK</span><span>${i % 3600}s</span><span>${i}</span></div>`,
    );
  }
  return `<!doctype html><html><body style="margin:0"><div role="region" aria-label="Held locks" style="height:900px;overflow:auto;position:relative"><div style="position:relative;height:${n * 36}px">${rows.join('')}</div></div></body></html>`;
}

/** Offset (page clock − this process's clock) by the round trip with the smallest delay. */
export async function calibrate(page: Page, n = 40): Promise<{ offset: number; rtt: number }> {
  let best = { offset: 0, rtt: Infinity };
  for (let i = 0; i < n; i++) {
    const a = epochNow();
    const p = await page.evaluate(() => performance.timeOrigin + performance.now());
    const b = epochNow();
    if (b - a < best.rtt) best = { offset: p - (a + b) / 2, rtt: b - a };
  }
  return best;
}

export interface ScrollFigures {
  idle: Summary;
  frames: Summary;
  /** 95th percentile of the frame deltas while scrolling. */
  p95: number;
  dropped: number;
  droppedPct: number;
  over50: number;
  rowsInDom: number;
  rowsInDomWhileScrolling: number;
  scrolledRows: number;
}

/** Idle frames, then `frames` frames scrolling `rowsPerFrame` rows each, all timed by rAF. */
export async function scrollFigures(page: Page, frames: number, rowsPerFrame: number): Promise<ScrollFigures> {
  const raw = (await page.evaluate(`(async ({ frames, rowsPerFrame }) => {
    const el = document.querySelector('[role="region"][aria-label="Held locks"]');
    if (!el) throw new Error('no scrolling region "Held locks"');
    const frame = () => new Promise((r) => requestAnimationFrame(r));
    const idle = [];
    let last = await frame();
    for (let i = 0; i < 90; i++) {
      const t = await frame();
      idle.push(t - last);
      last = t;
    }
    const rowsInDom = el.querySelectorAll('[role="row"]').length;
    const rowH = el.querySelector('${ROW_SELECTOR}')?.offsetHeight || 36;
    const deltas = [];
    let maxRows = 0;
    const top0 = el.scrollTop;
    last = await frame();
    for (let i = 0; i < frames; i++) {
      el.scrollTop += rowsPerFrame * rowH;
      const t = await frame();
      deltas.push(t - last);
      last = t;
      if (i % 10 === 0) maxRows = Math.max(maxRows, el.querySelectorAll('[role="row"]').length);
    }
    return { idle, deltas, rowsInDom, maxRows, scrolledRows: Math.round((el.scrollTop - top0) / rowH) };
  })(${JSON.stringify({ frames, rowsPerFrame })})`)) as { idle: number[]; deltas: number[]; rowsInDom: number; maxRows: number; scrolledRows: number };
  const idle = summarize(raw.idle);
  const interval = idle.p50;
  // A frame that took k display intervals dropped k − 1 of them.
  const dropped = raw.deltas.reduce((a, d) => a + Math.max(0, Math.round(d / interval) - 1), 0);
  return {
    idle,
    frames: summarize(raw.deltas),
    p95: percentile(raw.deltas, 95),
    dropped,
    droppedPct: (dropped / (raw.deltas.length + dropped)) * 100,
    over50: raw.deltas.filter((d) => d > 50).length,
    rowsInDom: raw.rowsInDom,
    rowsInDomWhileScrolling: raw.maxRows,
    scrolledRows: raw.scrolledRows,
  };
}

/**
 * The scroll figures of `page` (closed afterwards; 300 frames of 12 rows at full scale) and their
 * floor: the same scroll over a static page of plain rows (no script, same row height, similar
 * text) in the same browser context — what scrolling costs on this box at all, software
 * rasterisation and CPU contention included.
 */
export async function scrollWithFloor(ctx: BenchContext, context: BrowserContext, page: Page): Promise<{ scroll: ScrollFigures; floor: ScrollFigures }> {
  const frames = scaled(ctx, 300, 60);
  const scroll = await scrollFigures(page, frames, 12);
  await page.close();
  const floorPage = await context.newPage();
  await floorPage.setContent(staticRows(frames * 12 + 100));
  const floor = await scrollFigures(floorPage, frames, 12);
  await floorPage.close();
  return { scroll, floor };
}
