// Drive the Prefect UI in headless Debian chromium as group members: sign in through the UI's own login
// prompt, open each page, and report what it showed (its text and every API call it made, with the request
// body and the answer), with a screenshot per page. Called by tests/ui/test_ui_browser.py, which makes the
// assertions.
//
// Usage: node ui_pages.js PLAN.json RESULT.json
//   PLAN: {"screenshots": DIR, "profiles": DIR,
//          "walks": [{"name": "a-classic", "base": "http://127.0.0.1:PORT/prefect", "secret": "lq_user_...",
//                     "pages": [{"name": "runs", "path": "/runs",
//                                "expect": "text that shows the page has loaded"}]}]}
//   A page may instead have "rotate": URL of POST /v1/users/me/secret, called with the walk's secret before
//   the page is opened, and "expect_login": true: the UI must then show its login prompt (signed out).
//   RESULT: {walk name: {page name: {url, shown, text, answers: [{method, path, request, status, body}],
//                                    screenshot}}}
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const PAGE_TIMEOUT_MS = 45000;
const SHOWN_TIMEOUT_MS = 30000; // until the page shows the text that says it has loaded
const QUIET_TIMEOUT_MS = 10000; // then until its API calls are done (the UI polls, so not forever)

// A first load that never shows the login prompt is reloaded this many times before the walk fails; each
// such load is reported (URL, text, API answers, screenshot), so a slow or stuck UI start stays visible.
const SIGN_IN_LOADS = 3;

async function signIn(page, base, secret, screenshots, walk) {
  const field = page.getByPlaceholder('admin:pass');
  for (let load = 1; ; load += 1) {
    const answers = [];
    const onResponse = (response) => answers.push(`${response.status()} ${new URL(response.url()).pathname}`);
    const onFailed = (request) => answers.push(`failed ${new URL(request.url()).pathname}: ${request.failure().errorText}`);
    page.on('response', onResponse);
    page.on('requestfailed', onFailed);
    const started = Date.now();
    try {
      await page.goto(`${base}/dashboard`, { timeout: PAGE_TIMEOUT_MS });
      await field.waitFor({ timeout: SHOWN_TIMEOUT_MS });
      break;
    } catch (error) {
      const text = (await page.locator('body').innerText().catch(() => '')).slice(0, 300);
      const screenshot = path.join(screenshots, `${walk}-sign-in-${load}.png`);
      await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
      console.error(`${walk} sign-in load ${load}: no login prompt after ${Date.now() - started} ms at ` +
                    `${page.url()}; text ${JSON.stringify(text)}; answers ${JSON.stringify(answers)}; ${error.message}`);
      if (load >= SIGN_IN_LOADS) throw error;
    } finally {
      page.off('response', onResponse);
      page.off('requestfailed', onFailed);
    }
  }
  await field.fill(secret);
  await page.getByRole('button', { name: 'Login' }).click();
  await page.waitForURL((url) => !url.pathname.endsWith('/login'), { timeout: PAGE_TIMEOUT_MS });
}

async function visit(page, base, secret, spec, screenshots, walk) {
  const answers = [];
  const onResponse = async (response) => {
    const url = new URL(response.url());
    if (!url.pathname.includes('/api/')) return;
    let body = '';
    try { body = await response.text(); } catch (e) { body = ''; }
    answers.push({ method: response.request().method(), path: url.pathname + url.search,
                   request: response.request().postData() || '', status: response.status(), body });
  };
  page.on('response', onResponse);
  let rotated = null;
  if (spec.rotate) {
    const response = await page.request.post(spec.rotate, { headers: { Authorization: `Bearer ${secret}` } });
    rotated = response.status();
  }
  const started = Date.now();
  await page.goto(`${base}${spec.path}`, { timeout: PAGE_TIMEOUT_MS });
  let shown = true;
  try {
    if (spec.expect_login) {
      await page.getByPlaceholder('admin:pass').waitFor({ timeout: SHOWN_TIMEOUT_MS });
    } else {
      await page.waitForFunction(
        (expected) => document.body.innerText.toLowerCase().includes(expected.toLowerCase()),
        spec.expect, { timeout: SHOWN_TIMEOUT_MS });
    }
  } catch (e) {
    shown = false;
  }
  await page.waitForLoadState('networkidle', { timeout: QUIET_TIMEOUT_MS }).catch(() => {});
  console.error(`${walk} ${spec.name}: shown=${shown} after ${Date.now() - started} ms`);
  const text = await page.locator('body').innerText();
  const screenshot = path.join(screenshots, `${walk}-${spec.name}.png`);
  await page.screenshot({ path: screenshot, fullPage: true });
  page.off('response', onResponse);
  return { url: page.url(), shown, text, answers, screenshot, rotated };
}

async function main() {
  const [planFile, resultFile] = process.argv.slice(2);
  const plan = JSON.parse(fs.readFileSync(planFile, 'utf8'));
  fs.mkdirSync(plan.screenshots, { recursive: true });
  const result = {};
  for (const walk of plan.walks) {
    // A fresh profile per walk: nothing (no stored password) carries over from another sign-in.
    const profile = fs.mkdtempSync(path.join(plan.profiles, `${walk.name}-`));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium', headless: true, args: ARGS, viewport: { width: 1400, height: 900 },
    });
    try {
      const page = context.pages()[0] || (await context.newPage());
      await signIn(page, walk.base, walk.secret, plan.screenshots, walk.name);
      const pages = {};
      for (const spec of walk.pages) {
        pages[spec.name] = await visit(page, walk.base, walk.secret, spec, plan.screenshots, walk.name);
      }
      result[walk.name] = pages;
    } finally {
      await context.close();
    }
  }
  fs.writeFileSync(resultFile, JSON.stringify(result));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
