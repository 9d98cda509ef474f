// Browser tests of /settings and /admin: Debian chromium driven by playwright-core against the
// real `assent serve --demo` binary on a free port with a temporary data directory.
// Run by ctest (see CMakeLists.txt): ASSENT_BINARY, ASSENT_SOURCE_DIR and ASSENT_ARTIFACTS set.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BIN = process.env.ASSENT_BINARY;
const SRC = process.env.ASSENT_SOURCE_DIR;
const ARTIFACTS = process.env.ASSENT_ARTIFACTS || join(tmpdir(), 'assent-e2e');
mkdirSync(ARTIFACTS, { recursive: true });

let server, base, keys = {}, links = {}, data, browser;

async function startServer() {
  data = mkdtempSync(join(tmpdir(), 'assent-e2e-'));
  server = spawn(BIN, ['serve', '--data', data, '--listen', '127.0.0.1:0', '--demo', '--quiet',
                       '--threads', '2'], { cwd: SRC });
  let out = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start:\n' + out)), 30000);
    server.stdout.on('data', (d) => {
      out += d;
      if (out.includes('try:')) { clearTimeout(timer); resolve(); }
    });
    server.on('exit', (c) => reject(new Error('server exited ' + c + ':\n' + out)));
  });
  base = out.match(/on (http:\/\/127\.0\.0\.1:\d+)/)[1];
  for (const m of out.matchAll(/^ {2}(service|operator|auditor|portal) +(assent_[0-9a-f]+)$/gm)) keys[m[1]] = m[2];
  for (const m of out.matchAll(/^ {2}(person|admin) +(\w+).*?(http:\S+)$/gm)) links[m[2]] = m[3];
}

async function decide(body) {
  const r = await fetch(base + '/v1/decisions', {
    method: 'POST', body: JSON.stringify(body),
    headers: { Authorization: 'Bearer ' + keys.service, 'Content-Type': 'application/json' },
  });
  return r.json();
}

async function newLink(party) {
  const r = await fetch(base + '/v1/sessions', {
    method: 'POST', body: JSON.stringify(party),
    headers: { Authorization: 'Bearer ' + keys.portal, 'Content-Type': 'application/json' },
  });
  return base + (await r.json()).link;
}

before(async () => {
  await startServer();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill('SIGTERM');
  if (data) rmSync(data, { recursive: true, force: true });
});

const improvement = "Use data about how the app performs and which features I use to train the platform's own AI models.";
const productImprovement = "Use data about how the app performs and which features I use to improve the product.";

// Waits up to 5 s for an attribute to take a value, then asserts it.
async function settles(locator, attribute, value) {
  for (let i = 0; i < 50 && (await locator.getAttribute(attribute)) !== value; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(await locator.getAttribute(attribute), value);
}

test('a person opens the link, withdraws and grants, and the state persists', async () => {
  const context = await browser.newContext({ viewport: { width: 1000, height: 1400 } });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(links.alice);
  assert.match(page.url(), /\/settings$/);
  const sw = page.getByRole('switch', { name: improvement });
  await sw.waitFor();
  assert.equal(await sw.getAttribute('aria-checked'), 'true', 'objectable: on until objected');
  // The promise made visible: necessary uses and prohibited uses, each with a clause.
  await page.getByText('Never, whatever you choose:').first().waitFor();
  await page.getByText('To deliver the service you asked for:').first().waitFor();
  // The cards read as sentences, the terms' own summaries.
  await page.getByText("We never use your audio, video, chat, screen shares, files or other meeting content to train AI models, ours or anyone else's.").waitFor();
  await page.getByText('We use data about how the app performs to run the service.').waitFor();
  // Where service-generated data is explained, what it covers is listed, by plain names.
  await page.getByText('Telemetry: Connection quality, latency and device performance measurements.').first()
    .waitFor({ state: 'attached' });
  await page.getByText('Product usage: Which features are used, when and how often.').first()
    .waitFor({ state: 'attached' });
  await page.getByText('No recorded training dataset includes your data.').waitFor();
  await page.screenshot({ path: join(ARTIFACTS, 'settings.png'), fullPage: true });

  await sw.click();
  await page.getByText(/Turned off: .*Saved on \d+ \w+ \d{4} at /).waitFor();
  // What a person reads holds no positions or hashes; the receipt is a download.
  const text = await page.locator('main').innerText();
  assert.ok(!/[0-9a-f]{64}/.test(text), 'no hash on the page');
  assert.ok(!/position \d+/.test(text), 'no ledger position on the page');
  const href = await page.getByRole('link', { name: 'Download the receipt' }).getAttribute('href');
  const receipt = await page.evaluate(async (h) => (await fetch(h)).json(), href);
  assert.equal(receipt.subject, 'alice');
  assert.ok(receipt.inclusion_proof, 'the receipt carries its proof');
  // It records the notice the card displayed: the listing's notice for that rule.
  const listing = await (await fetch(base + '/v1/subjects/alice/consents',
    { headers: { Authorization: 'Bearer ' + keys.service } })).json();
  const shown = listing.rules.find((r) => r.rule === receipt.rule).notice;
  assert.equal(receipt.method, 'settings');
  assert.deepEqual(receipt.notice, shown);
  assert.match(shown.sha256, /^[0-9a-f]{64}$/);
  await settles(sw, 'aria-checked', 'false');  // the page re-reads the state after saying so
  let d = await decide({ category: 'service_generated.telemetry', purpose: 'ai_training.first_party',
                         subjects: ['alice'] });
  assert.equal(d.reason, 'objected');
  // No to training alone: improving the product stays on (the example terms keep them apart).
  const improve = page.getByRole('switch', { name: productImprovement });
  assert.equal(await improve.getAttribute('aria-checked'), 'true', 'improving the product is a separate choice');
  d = await decide({ category: 'service_generated.telemetry', purpose: 'product_development.analytics',
                     subjects: ['alice'] });
  assert.equal(d.decision, 'allow');
  assert.equal(d.reason, 'not-objected');

  await page.reload();
  await sw.waitFor();
  assert.equal(await sw.getAttribute('aria-checked'), 'false', 'the choice persists');
  // The history says what, when and how in words, each row with its receipt to download.
  await page.getByRole('cell', { name: 'On this page' }).first().waitFor();
  await page.getByRole('cell', { name: /Data the service itself records about its operation/ }).first().waitFor();
  assert.ok(await page.getByRole('link', { name: 'Download receipt' }).count() >= 1);

  // One action back, no confirmation maze.
  await sw.click();
  await page.getByText(/Turned on:/).waitFor();
  d = await decide({ category: 'service_generated.telemetry', purpose: 'ai_training.first_party',
                     subjects: ['alice'] });
  assert.equal(d.reason, 'not-objected');
  // The same answer from the ledger on disk, through the CLI.
  const out = execFileSync(BIN, ['check', '--data', data, '--category', 'service_generated.telemetry',
                                 '--purpose', 'ai_training.first_party', '--subject', 'alice', '--json']);
  assert.equal(JSON.parse(out).reason, 'not-objected');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a German browser gets the page in German, the choice records the German notice, and the language can be switched', async () => {
  const context = await browser.newContext({ viewport: { width: 1000, height: 1400 }, locale: 'de-DE' });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(await newLink({ subject: 'jonas' }));
  const training = 'Daten darüber, wie die App funktioniert und welche Funktionen ich nutze, zum Training der eigenen KI-Modelle der Plattform verwenden.';
  const sw = page.getByRole('switch', { name: training });
  await sw.waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'de');
  await page.getByRole('heading', { name: 'Was Sie entscheiden' }).waitFor();
  await page.getByText('Niemals, wie auch immer Sie entscheiden:').first().waitFor();
  await page.getByText('Wir verwenden Daten darüber, wie die App funktioniert, um den Dienst zu betreiben.').waitFor();
  assert.equal(await sw.innerText(), 'An');
  await page.screenshot({ path: join(ARTIFACTS, 'settings-de.png'), fullPage: true });
  await sw.click();
  await page.getByText(/Ausgeschaltet: .*Gespeichert am \d+\. \w+ \d{4} um /).waitFor();
  // The receipt records the German notice the card displayed.
  const href = await page.getByRole('link', { name: 'Quittung herunterladen' }).first().getAttribute('href');
  const receipt = await page.evaluate(async (h) => (await fetch(h)).json(), href);
  const listing = await (await fetch(base + '/v1/subjects/jonas/consents?locale=de',
    { headers: { Authorization: 'Bearer ' + keys.service } })).json();
  assert.equal(receipt.notice.locale, 'de');
  assert.deepEqual(receipt.notice, listing.rules.find((r) => r.rule === receipt.rule).notice);
  // Switching to English is one choice, kept across reloads over the browser's language.
  await page.getByLabel('Sprache').selectOption('en');
  await page.getByRole('heading', { name: 'What you decide' }).waitFor();
  await page.getByRole('switch', { name: improvement }).waitFor();
  await page.reload();
  await page.getByRole('heading', { name: 'What you decide' }).waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a change without the CSRF token is refused', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(await newLink({ subject: 'dana' }));
  await page.getByRole('switch').first().waitFor();
  const status = await page.evaluate(async () => {
    const r = await fetch('/v1/subjects/dana/consents', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ rule: 'meeting-quality-review', action: 'grant' }),
    });
    return r.status;
  });
  assert.equal(status, 403);
  await context.close();
});

test('Global Privacy Control is honoured as an objection, never a grant', async () => {
  const context = await browser.newContext({ extraHTTPHeaders: { 'Sec-GPC': '1' } });
  const page = await context.newPage();
  await page.goto(links.bob);
  await page.getByText(/Global Privacy Control\)\. We recorded that you said no to: "Use which features I use to suggest/).waitFor();
  const d = await decide({ category: 'service_generated.product_usage', purpose: 'marketing',
                           subjects: ['bob'] });
  assert.equal(d.reason, 'objected');
  assert.equal(d.parties[0].state, 'withdrawn');
  await context.close();
});

test("the account admin's lock wins over a person's grant", async () => {
  const person = await browser.newContext();
  const pp = await person.newPage();
  await pp.goto(await newLink({ subject: 'erin' }));
  const review = pp.getByRole('switch', { name: /Let the quality team review/ });
  await review.waitFor();
  await review.click();
  await pp.getByText(/Turned on:/).waitFor();
  const q = { category: 'content.audio', purpose: 'product_development.quality_review',
              account: 'acme', subjects: ['erin'] };
  let d = await decide(q);
  assert.equal(d.decision, 'deny');
  assert.equal(d.parties[0].account, 'acme');

  const admin = await browser.newContext({ viewport: { width: 1000, height: 1200 } });
  const ap = await admin.newPage();
  await ap.goto(links.acme);
  assert.match(ap.url(), /\/admin$/);
  const lock = ap.getByRole('switch', { name: /Let the quality team review/ });
  await lock.waitFor();
  await lock.click();  // the account agrees
  await ap.getByText(/Turned on:/).waitFor();
  assert.equal((await decide(q)).decision, 'allow');
  await ap.screenshot({ path: join(ARTIFACTS, 'admin.png'), fullPage: true });
  await lock.click();  // and withdraws: the lock
  await ap.getByText(/Turned off:/).waitFor();
  d = await decide(q);
  assert.equal(d.decision, 'deny');
  assert.equal(d.reason, 'withdrawn');
  assert.equal(d.parties[1].state, 'granted', "the person's grant stands, and does not win");
  await person.close();
  await admin.close();
});

test('a switch works with the keyboard alone', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(await newLink({ subject: 'fay' }));
  const sw = page.getByRole('switch', { name: improvement });
  await sw.waitFor();
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press('Tab');
    if (await sw.evaluate((el) => el === document.activeElement)) break;
  }
  assert.ok(await sw.evaluate((el) => el === document.activeElement), 'reachable by Tab');
  await page.keyboard.press('Space');
  await page.getByText(/Turned off:/).waitFor();
  await settles(page.getByRole('switch', { name: improvement }), 'aria-checked', 'false');
  await context.close();
});

test('the operator publishes terms with lint diagnostics shown inline', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(base + '/admin');
  await page.getByLabel('Operator API key').fill(keys.operator);
  await page.getByRole('button', { name: 'Use this key' }).click();
  await page.getByText(/example-meetings@2023-08-11 — effective/).waitFor();
  await page.getByLabel('Terms document (YAML)').fill('terms: t\nversion: "x"\n');
  await page.getByRole('button', { name: 'Lint and publish' }).click();
  await page.getByText(/Refused:/).waitFor();
  await page.getByText(/\[missing-field\]/).first().waitFor();
  await context.close();
});

test('the operator sees keys and creates one, shown once', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(base + '/admin');
  await page.getByLabel('Operator API key').fill(keys.operator);
  await page.getByRole('button', { name: 'Use this key' }).click();
  await page.getByRole('cell', { name: /^demo-service-/ }).waitFor();
  // Each key shows when it was created (a date, not a ledger position).
  await page.getByRole('cell', { name: /^\d+ \w{3} \d{4}, \d\d:\d\d$/ }).first().waitFor();
  await page.getByLabel('Name').fill('pipeline-7');
  await page.getByLabel('Role').selectOption('service');
  await page.getByRole('button', { name: 'Create key' }).click();
  await page.getByText(/^assent_[0-9a-f]{64}$/).waitFor();
  await page.getByRole('button', { name: 'Revoke pipeline-7' }).click();
  await page.getByText('Revoked pipeline-7.').waitFor();
  await context.close();
});

test('a grant made stale by changed terms is shown, explained and asked again', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(await newLink({ subject: 'gus' }));
  const review = page.getByRole('switch', { name: /Let the quality team review/ });
  await review.waitFor();
  await review.click();
  await page.getByText(/Turned on:/).waitFor();
  // The operator publishes a version where "audio" means more than before.
  const yaml = (await (await fetch(base + '/v1/terms', {
    headers: { Authorization: 'Bearer ' + keys.operator } })).json());
  const source = execFileSync('cat', [join(SRC, 'examples/terms/example-meetings-2023-08-11.yaml')])
    .toString()
    .replace('version: "2023-08-11"', 'version: "2026-01-01"')
    .replace('effective: "2023-08-11T00:00:00Z"', 'effective: "' + new Date(Date.now() - 1000).toISOString().replace(/\.\d+Z$/, 'Z') + '"')
    .replace('audio: { description: "Recorded or streamed meeting audio." }',
             'audio: { description: "Recorded, streamed or uploaded meeting audio, and voice messages." }');
  assert.equal(yaml.version, '2023-08-11');
  const pub = await fetch(base + '/v1/terms', { method: 'POST', body: source,
    headers: { Authorization: 'Bearer ' + keys.operator, 'Content-Type': 'application/yaml' } });
  const published = await pub.json();
  assert.equal(pub.status, 201, JSON.stringify(published));
  // The publication says whom to ask again; the operator lists them.
  const count = published.stale.find((c) => c.rule === 'meeting-quality-review');
  assert.ok(count && count.parties >= 1 && count.grants >= 1, JSON.stringify(published.stale));
  const staleList = async () => (await (await fetch(base + '/v1/stale?rule=meeting-quality-review',
    { headers: { Authorization: 'Bearer ' + keys.operator } })).json());
  assert.ok((await staleList()).parties.some((p) => p.subject === 'gus'));
  await page.reload();
  await page.getByText(/The terms changed after you agreed to: "Let the quality team review/).waitFor();
  await page.getByText(/The meaning of "content.audio" changed/).waitFor();
  assert.equal(await review.getAttribute('aria-checked'), 'false');
  // Asked again in one action: yes, under the new wording — a fresh grant.
  await page.getByRole('button', { name: 'Yes, under the new wording' }).click();
  await page.getByText(/You agreed again, under the new wording: "Let the quality team review/).waitFor();
  await settles(review, 'aria-checked', 'true');
  assert.ok(!(await staleList()).parties.some((p) => p.subject === 'gus'), 'no longer stale');
  await context.close();
});

test('where my data was used lists the datasets that include the person', async () => {
  const reg = await fetch(base + '/v1/datasets', {
    method: 'POST', headers: { Authorization: 'Bearer ' + keys.service, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'assistant-training-1', purpose: 'ai_training.first_party', ledger_position: 1,
                           subjects: ['hana'], items: 1 }) });
  assert.equal(reg.status, 201, await reg.text());
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(await newLink({ subject: 'hana' }));
  await page.getByText(/assistant-training-1: for models the platform trains to improve its own services, built \d+ \w+ \d{4} at/).waitFor();
  await context.close();
});

test('every page fits a 390 px phone: settings with history, admin, a used link', async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 800 } });
  const page = await context.newPage();
  const fits = async (what) => {
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    const wide = await page.evaluate(() => [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > 390)
      .slice(0, 3).map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)));
    assert.ok(width <= 390, what + ' scrolls sideways: ' + width + ' px (' + wide.join(', ') + ')');
  };
  const person = await newLink({ subject: 'ines' });
  await page.goto(person);
  const sw = page.getByRole('switch').first();
  await sw.waitFor();
  await sw.click();  // a history row and a receipt link to lay out
  await page.getByText(/Saved on/).waitFor();
  await page.getByRole('cell', { name: 'On this page' }).first().waitFor();
  await fits('the settings page');
  await page.goto(person);  // the link again: used
  await page.getByText('This sign-in link cannot be used').waitFor();
  await fits('the used-link page');
  await page.goto(await newLink({ account: 'acme' }));
  await page.getByRole('switch').first().waitFor();
  await fits('the admin page');
  await context.close();
});

test('the page is usable on a phone-sized screen', async () => {
  const context = await browser.newContext({ viewport: { width: 375, height: 800 } });
  const page = await context.newPage();
  await page.goto(links.chen);
  const sw = page.getByRole('switch').first();
  await sw.waitFor();
  const box = await sw.boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 375, 'the switch fits the screen');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(overflow <= 375, 'no horizontal scrolling');
  await context.close();
});
