// The delegated-credential connect flow in a REAL browser: Debian's headless chromium, driven by
// playwright-core over CDP, follows the gateway's single-use link to the real oidc-provider
// (auto-approving interactions), comes back to the gateway's /oauth/callback and shows the
// page a person sees. credentials-delegated.test.mjs covers the same flow with fetch; this
// file checks what only a browser does: its own redirect handling, its cookie jar (the
// SameSite=Lax flow cookie across the IdP round trip), and the pages it renders.
// Every request the browser makes, each redirect hop included, is checked to go to 127.0.0.1
// (anything else is failed and fails the file).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { startOidcProvider } from '../support/oidc-provider.mjs';
import { startCredentialUpstream } from '../support/credential-upstream.mjs';
import {
  DOWNSTREAM_API,
  DOWNSTREAM_CLIENT,
  callerToken,
  credentialSections,
  delegatedRoute,
  downstreamClient,
  linkOf,
  toolCall,
  whoami,
} from '../support/delegated.mjs';
import { TIME_SCALE, freePort, makeTempDir, mcpPost, raceTimeout, startGateway } from '../support/harness.mjs';

const CHROMIUM = '/usr/bin/chromium';  // Debian's package (scripts/test installs it)
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Belt and braces for "loopback only": no host name resolves, so nothing but IP literals
  // (and the CDP guard in newPage() fails any request not to 127.0.0.1) can be reached.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
  '--no-proxy-server',
];
const LAUNCH_TIMEOUT_MS = 30000 * TIME_SCALE;
const ACTION_TIMEOUT_MS = 10000 * TIME_SCALE;
const NAVIGATION_TIMEOUT_MS = 15000 * TIME_SCALE;
const TEST_TIMEOUT_MS = 60000 * TIME_SCALE;
const CLOSE_TIMEOUT_MS = 10000;

describe('delegated credentials: the connect flow in headless chromium', { timeout: 180000 * TIME_SCALE }, () => {
  let idp;
  let upstream;
  let gw;
  let base;
  let browser;
  let alice;
  let bob;
  let aliceLink;  // the link test 1 used, opened again by test 2
  const adminToken = 'admin-token-b7c3';
  const contexts = new Set();
  const offLoopback = [];  // requests the browser tried outside 127.0.0.1 (must stay empty)
  const shots = makeTempDir('itest-browser-');

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (scripts/test does)`);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    idp = await startOidcProvider({
      rotateRefreshTokens: true,
      clients: [downstreamClient(base)],
      clientTtls: { [DOWNSTREAM_CLIENT.clientId]: 600 },  // no renewal due during this file
    });
    upstream = await startCredentialUpstream({ issuer: idp.issuer, audience: DOWNSTREAM_API });
    gw = await startGateway({
      port,
      server: { public_url: base },
      admin: { token: adminToken },
      routes: [delegatedRoute(upstream.url)],
      extraYaml: credentialSections(idp),
    });
    [alice, bob] = await Promise.all([callerToken(idp, base), callerToken(idp, base, 'user', 'bob')]);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: LAUNCH_TIMEOUT_MS,
      // playwright-core makes a fresh temporary user-data-dir for launch() and removes it on close.
    });
  });

  after(async () => {
    try {
      for (const context of contexts) await raceTimeout(context.close().catch(() => {}), CLOSE_TIMEOUT_MS);
      if (browser) await raceTimeout(browser.close().catch(() => {}), CLOSE_TIMEOUT_MS);
      await gw?.stopCleanly();
    } finally {
      await Promise.all([idp?.stop(), upstream?.close()]);
    }
    assert.deepEqual(offLoopback, [], 'the browser contacted nothing outside 127.0.0.1');
  });

  /** A fresh browser context: its own empty cookie jar, bounded waits. */
  async function newContext() {
    const context = await browser.newContext({ viewport: { width: 1024, height: 640 } });
    contexts.add(context);
    context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(NAVIGATION_TIMEOUT_MS);
    return context;
  }

  /**
   * A page whose every request, each hop of a redirect chain included, is paused over CDP
   * (Fetch domain): one outside 127.0.0.1 is failed and recorded, one that `stopAt(url)`
   * picks is failed ('Aborted') and its URL kept in `page.stopped`. Playwright's own
   * page.route()/context.route() do not see redirect hops (by design), and the whole connect
   * flow is one redirect chain.
   */
  async function newPage(context, { stopAt } = {}) {
    const page = await context.newPage();
    page.stopped = [];
    const cdp = await context.newCDPSession(page);
    cdp.on('Fetch.requestPaused', ({ requestId, request }) => {
      const url = new URL(request.url);
      let errorReason;
      if (url.hostname !== '127.0.0.1') {
        offLoopback.push(url.href);
        errorReason = 'BlockedByClient';
      } else if (stopAt?.(url)) {
        page.stopped.push(url.href);
        errorReason = 'Aborted';
      }
      const answer = errorReason ? cdp.send('Fetch.failRequest', { requestId, errorReason }) : cdp.send('Fetch.continueRequest', { requestId });
      answer.catch(() => {});  // the page may be gone by then
    });
    await cdp.send('Fetch.enable', { patterns: [{ urlPattern: '*', requestStage: 'Request' }] });
    return page;
  }

  async function closeContext(context) {
    contexts.delete(context);
    await raceTimeout(context.close().catch(() => {}), CLOSE_TIMEOUT_MS);
  }

  const as = (token) => ({ authorization: `Bearer ${token}` });
  const admin = (method, subject) =>
    fetch(`${gw.adminUrl}/admin/v1/credentials/user-api/subjects/${encodeURIComponent(subject)}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}` },
      signal: AbortSignal.timeout(5000),
    });

  /** The connect link a caller gets from a tools/call while no account is linked. */
  async function connectLink(token) {
    const answer = await mcpPost(`${base}/user`, toolCall('whoami'), { headers: as(token) });
    assert.equal(answer.status, 200, answer.text);
    const link = linkOf(answer.messages[0]);
    assert.equal(link.form, 'plain', answer.text);
    assert.ok(link.url.startsWith(`${base}/oauth/connect/user-api?link=`), link.url);
    return link.url;
  }

  const heading = (page) => page.locator('h1').innerText();

  it('a link opened in chromium signs in at the IdP and lands on "Account connected"; the tool then gets the user\'s token', { timeout: TEST_TIMEOUT_MS }, async () => {
    aliceLink = await connectLink(alice);
    const context = await newContext();
    try {
      const page = await newPage(context);
      const navigations = [];
      page.on('request', (request) => {
        if (request.isNavigationRequest()) navigations.push(new URL(request.url()));
      });
      const response = await page.goto(aliceLink, { waitUntil: 'load' });
      assert.equal(response.status(), 200, await response.text());
      const final = new URL(page.url());
      assert.equal(final.origin, base);
      assert.equal(final.pathname, '/oauth/callback');
      assert.ok(final.searchParams.get('code'), 'the IdP answered with a code');
      assert.equal(final.searchParams.get('iss'), idp.issuer, 'RFC 9207 iss on the authorization response');
      assert.equal(await heading(page), 'Account connected');
      assert.match(await page.locator('body').innerText(), /You can close this tab and retry the request in your MCP client/);
      assert.equal(await page.title(), 'Account connected');

      // The browser itself followed the redirects: gateway -> IdP (authorize, interaction) -> gateway.
      const authorize = navigations.find((u) => u.origin === idp.issuer && u.searchParams.get('client_id') === DOWNSTREAM_CLIENT.clientId);
      assert.ok(authorize, `the browser went to the IdP: ${navigations.map((u) => u.href).join(' ')}`);
      assert.equal(authorize.searchParams.get('redirect_uri'), `${base}/oauth/callback`);
      assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
      assert.ok(navigations.some((u) => u.origin === idp.issuer && u.pathname.startsWith('/interaction/')), 'through the IdP interaction');
      assert.equal(navigations[0].href, aliceLink);
      assert.equal(navigations.at(-1).pathname, '/oauth/callback');
      const flowCookie = (await context.cookies(`${base}/oauth/callback`)).find((c) => c.name === 'mcpgate_connect');
      assert.equal(flowCookie, undefined, 'the flow cookie was cleared once the account was linked');

      // A temp dir removed at exit; MCPGATE_TEST_SCREENSHOT_DIR=<dir> keeps the picture for a person to look at.
      const screenshot = path.join(process.env.MCPGATE_TEST_SCREENSHOT_DIR ?? shots, 'account-connected.png');
      await page.screenshot({ path: screenshot, fullPage: true, timeout: ACTION_TIMEOUT_MS });
      const png = fs.readFileSync(screenshot);
      assert.ok(png.length > 0, 'a non-empty screenshot');
      assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')], 'a PNG');
    } finally {
      await closeContext(context);
    }

    const claims = whoami(await mcpPost(`${base}/user`, toolCall('whoami', 2), { headers: as(alice) }));
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.client_id, DOWNSTREAM_CLIENT.clientId, 'the downstream token, issued to the gateway\'s client');
    assert.equal(claims.aud, DOWNSTREAM_API);
    assert.notEqual(upstream.seen.at(-1).authorization, `Bearer ${alice}`, 'the caller\'s own token never reaches the upstream');
  });

  it('the same link opened again: 400 "This link was already used"', { timeout: TEST_TIMEOUT_MS }, async () => {
    assert.ok(aliceLink, 'the first test got a link');
    const context = await newContext();
    try {
      const page = await newPage(context);
      const response = await page.goto(aliceLink, { waitUntil: 'load' });
      assert.equal(response.status(), 400);
      assert.equal(new URL(page.url()).pathname, '/oauth/connect/user-api', 'no redirect to the IdP');
      assert.equal(await heading(page), 'This link was already used');
      assert.match(await page.locator('body').innerText(), /Each link works once/);
    } finally {
      await closeContext(context);
    }
  });

  it('a link with one character of its signature changed: 400 "This link does not work"', { timeout: TEST_TIMEOUT_MS }, async () => {
    const url = new URL(await connectLink(bob));
    const [payload, signature] = url.searchParams.get('link').split('.');
    assert.ok(payload && signature, url.href);
    // The FIRST character: the last one of unpadded base64url also holds padding bits that a
    // loose decoder drops, so changing it may leave the decoded signature as it was.
    const tampered = `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
    url.searchParams.set('link', `${payload}.${tampered}`);
    const context = await newContext();
    try {
      const page = await newPage(context);
      const response = await page.goto(url.href, { waitUntil: 'load' });
      assert.equal(response.status(), 400);
      assert.equal(await heading(page), 'This link does not work');
      assert.match(await page.locator('body').innerText(), /invalid or has expired/);
      assert.equal((await context.cookies(`${base}/oauth/callback`)).length, 0, 'no flow was started');
    } finally {
      await closeContext(context);
    }
  });

  it('a callback opened in another browser (no flow cookie): 400 "another browser", nothing linked', { timeout: TEST_TIMEOUT_MS }, async () => {
    const link = await connectLink(bob);
    const contextA = await newContext();
    const contextB = await newContext();
    try {
      // Browser A starts the flow; its way back to the gateway is stopped and the URL kept.
      const pageA = await newPage(contextA, { stopAt: (url) => url.origin === base && url.pathname === '/oauth/callback' });
      const stopped = await pageA.goto(link, { waitUntil: 'load' }).then(
        (response) => ({ response }),
        (error) => ({ error }),
      );
      assert.ok(stopped.error, `the navigation was stopped at the callback, got ${stopped.response?.status()} at ${pageA.url()}`);
      assert.match(stopped.error.message, /ERR_ABORTED/);
      assert.equal(pageA.stopped.length, 1, `the IdP redirected to the callback: ${stopped.error.message}`);
      const [callback] = pageA.stopped;
      const callbackUrl = new URL(callback);
      assert.ok(callbackUrl.searchParams.get('code') && callbackUrl.searchParams.get('state'), callback);
      const cookieA = (await contextA.cookies(`${base}/oauth/callback`)).find((c) => c.name === 'mcpgate_connect');
      assert.ok(cookieA, 'browser A holds the flow cookie');
      assert.equal(cookieA.value, callbackUrl.searchParams.get('state'));
      assert.equal(cookieA.httpOnly, true);
      assert.equal(cookieA.sameSite, 'Lax');

      // Browser B (its own, empty cookie jar) opens that callback URL.
      const pageB = await newPage(contextB);
      const response = await pageB.goto(callback, { waitUntil: 'load' });
      assert.equal(response.status(), 400);
      assert.equal(await heading(pageB), 'This sign-in was started in another browser');
      assert.match(await pageB.locator('body').innerText(), /another browser/);
    } finally {
      await closeContext(contextA);
      await closeContext(contextB);
    }

    assert.equal((await admin('GET', 'bob')).status, 404, 'nothing was linked');
    await connectLink(bob);  // and the next call still asks for a connection
  });
});
